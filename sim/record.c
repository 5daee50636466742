#include "err.h"
#include "record.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "config_file.h"
#include "pool.h"
#include "prom_range.h"
#include "promql.h"
#include "trace.h"


#define MS_PER_S 1000.0
#define SECONDS_PER_DAY 86400.0
#define DEFAULT_STEP_MS 60000
#define MIN_STEP_MS 1000
/* Range queries read far more than the controller's instant queries: each
 * request gets at least this long, or the config's timeout if longer. */
#define MIN_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY (64u << 20)
#define MIN_MAX_BODY 1024.0
#define MAX_MAX_BODY 4294967296.0
#define TOKEN_MAX_BYTES 65536
#define BODY_FIRST_CAPACITY 65536
#define NOW_MINUS "now-"
/* An RFC 3339 time has '-' right after its four-digit year. */
#define RFC3339_DASH_AT 4
#define DNS_LABEL_MAX 63
#define DNS_SUBDOMAIN_MAX 253
/* A label-filter wrapper and escaped values may add this much to a query. */
#define LITERAL_MAX 1024
/* Gaps of an optional column listed one by one before a summary. */
#define GAPS_LISTED 10
/* Bytes of an unexpected answer quoted in an error. */
#define BODY_QUOTED 200
#define HTTP_OK 200
#define HTTP_BAD_REQUEST 400
#define HTTP_UNPROCESSABLE 422

enum metric { M_QPS, M_P95, M_REPLICAS, M_COST, M_COUNT };
static const char *const metric_names[M_COUNT] = {"qps", "p95_ms", "replicas",
                                                  "cost_per_pod_hour"};
/* the config's query key behind each column */
static const char *const query_keys[M_COUNT] = {"qps", "p95_ms", "ready_replicas",
                                                "cost_per_pod_hour"};

struct body {
    char *data;
    size_t len, cap, max;
    int too_big;
};

/* curl write callback: append, refusing to grow past the cap (returning a
 * short count makes curl abort the transfer). */
static size_t body_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > b->max) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : BODY_FIRST_CAPACITY;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

struct recorder {
    CURL *curl;
    struct curl_slist *headers;
    char *endpoint;   /* URL/api/v1/query_range */
    long timeout_ms;
    size_t max_body;
    FILE *progress;
    size_t requests_done, requests_total;
    double started;
    char label[128];
};

/* "2024-05-01T12:00:00Z" for messages. */
static void time_text(char *buf, size_t size, double epoch)
{
    time_t t = (time_t)floor(epoch);
    struct tm tm;
    if (gmtime_r(&t, &tm) && strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        return;
    snprintf(buf, size, "%.0f", epoch);
}

/* Printable excerpt of an unexpected body (control bytes shown as '.'). */
static void excerpt(char *buf, size_t size, const char *data, size_t len)
{
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        buf[i] = c >= ' ' && c < 0x7f ? (char)c : '.';
    }
    buf[n] = '\0';
}

/*
 * One POST to /api/v1/query_range (a form body, so long queries need no
 * URL limits). The body is capped and the request bounded in time. Returns
 * 0 with the HTTP status and body, or -1 with err for a transport failure.
 */
static int query_range(struct recorder *r, const char *query, double start, double end,
                       double step, struct body *body, long *status, struct cps_err *err)
{
    char *escaped = curl_easy_escape(r->curl, query, 0);
    if (!escaped)
        return cps_err_set(err, "record", 0, 0, "out of memory");
    size_t size = strlen(escaped) + 128;
    char *form = malloc(size);
    if (!form) {
        curl_free(escaped);
        return cps_err_set(err, "record", 0, 0, "out of memory");
    }
    snprintf(form, size, "query=%s&start=%.3f&end=%.3f&step=%.3f", escaped, start, end, step);
    curl_free(escaped);
    char errbuf[CURL_ERROR_SIZE] = "";
    body->len = 0;
    body->too_big = 0;
    curl_easy_setopt(r->curl, CURLOPT_URL, r->endpoint);
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, body_write_cb);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     r->timeout_ms < CONNECT_TIMEOUT_MS ? r->timeout_ms : CONNECT_TIMEOUT_MS);
    curl_easy_setopt(r->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
    CURLcode rc = curl_easy_perform(r->curl);
    free(form);
    if (body->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        return cps_err_set(err, r->endpoint, 0, 0,
                           "the answer is larger than %zu bytes (--max-body); query a shorter "
                           "span or a longer step",
                           r->max_body);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return cps_err_set(err, r->endpoint, 0, 0, "no answer within %.1f s (--timeout)",
                           (double)r->timeout_ms / MS_PER_S);
    if (rc != CURLE_OK)
        return cps_err_set(err, r->endpoint, 0, 0, "request failed: %s%s%s",
                           curl_easy_strerror(rc), errbuf[0] ? ": " : "", errbuf);
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

struct column {
    double *values;
    char *query;    /* as sent */
    int single;     /* written for this target ($namespace/$deployment) */
    struct cps_prom_range_stats stats;
};

/*
 * The query for one column: the target's own, else the cluster-wide one.
 * Placeholders are substituted as escaped literals; a cluster-wide query is
 * filtered to the target with `and on(<labels>)` against a one-series vector
 * carrying the target's label values, so Prometheus sends only its series.
 */
static char *build_query(const char *query, const struct cps_prometheus_config *prom,
                         const char *ns, const char *name, int *single, struct cps_err *err)
{
    if (cps_promql_has_placeholders(query)) {
        *single = 1;
        return cps_promql_substitute(query, ns, name, err);
    }
    *single = 0;
    char ns_literal[LITERAL_MAX], name_literal[LITERAL_MAX];
    if (cps_promql_escape_string(ns, ns_literal, sizeof ns_literal) < 0 ||
        cps_promql_escape_string(name, name_literal, sizeof name_literal) < 0) {
        cps_err_set(err, "record", 0, 0, "namespace or deployment too long");
        return NULL;
    }
    const char *nsl = prom->namespace_label, *dl = prom->deployment_label;
    size_t size = strlen(query) + 2 * strlen(nsl) + 2 * strlen(dl) + strlen(ns_literal) +
                  strlen(name_literal) + LITERAL_MAX;
    char *out = malloc(size);
    if (!out) {
        cps_err_set(err, "record", 0, 0, "out of memory");
        return NULL;
    }
    snprintf(out, size,
             "(%s) and on(%s, %s) label_replace(label_replace(vector(1), \"%s\", %s, \"__name__\", "
             "\".*\"), \"%s\", %s, \"__name__\", \".*\")",
             query, nsl, dl, nsl, ns_literal, dl, name_literal);
    return out;
}

/* Fetch one column over the whole span, chunk by chunk. Returns 0, or -1
 * with err; *usage says the error is the query's or config's, not the
 * network's. */
static int fetch_column(struct recorder *r, const struct cps_prom_span *span,
                        const struct cps_prom_match *match, enum metric m, struct column *col,
                        int *usage, struct cps_err *err)
{
    struct body body = {NULL, 0, 0, r->max_body, 0};
    char source[96];
    snprintf(source, sizeof source, "prometheus: queries.%s", query_keys[m]);
    for (size_t i = 0; i < span->n_points; i++)
        col->values[i] = NAN;
    size_t chunks = cps_prom_span_chunks(span);
    for (size_t c = 0; c < chunks; c++) {
        size_t first;
        double start, end;
        long status = 0;
        cps_prom_span_chunk(span, c, &first, &start, &end);
        if (query_range(r, col->query, start, end, span->step, &body, &status, err) < 0)
            goto fail;
        if (status != HTTP_OK) {
            /* Prometheus explains 400/422/503 in a JSON body; anything else
             * (a proxy's page, a redirect) is quoted */
            struct cps_prom_range_stats ignored = {0};
            if (body.len && cps_prom_decode_range(body.data, body.len, span, match, source,
                                                  col->values, &ignored, err) < 0 &&
                strstr(err->message, "Prometheus answered")) {
                char message[CPS_ERR_MESSAGE_MAX];
                snprintf(message, sizeof message, "%s", err->message);
                cps_err_set(err, source, 0, 0, "HTTP %ld: %s", status, message);
            } else {
                char quoted[BODY_QUOTED + 1];
                excerpt(quoted, sizeof quoted, body.data ? body.data : "", body.len);
                cps_err_set(err, source, 0, 0, "HTTP %ld from %s: %s", status, r->endpoint,
                            quoted);
            }
            *usage = status == HTTP_BAD_REQUEST || status == HTTP_UNPROCESSABLE;
            goto fail;
        }
        if (cps_prom_decode_range(body.data ? body.data : "", body.len, span, match, source,
                                  col->values, &col->stats, err) < 0)
            goto fail;
        r->requests_done++;
        if (r->progress)
            cps_progress_draw(r->progress, r->label, r->requests_done, r->requests_total,
                              cps_pool_now_s() - r->started, 0);
    }
    free(body.data);
    return 0;
fail:
    free(body.data);
    return -1;
}

struct gap_report {
    const struct cps_prom_span *span;
    const char *column;
    size_t listed, total_steps;
    int is_qps;
};

/* Warn about one gap: every qps gap by name (its rows are left out), and the
 * first GAPS_LISTED gaps of an optional column (counted after that). */
static void report_gap_cb(const struct cps_prom_gap *gap, void *ctx)
{
    struct gap_report *g = ctx;
    g->total_steps += gap->count;
    if (!g->is_qps && g->listed >= GAPS_LISTED) {
        g->listed++;
        return;
    }
    char a[32], b[32];
    time_text(a, sizeof a, g->span->from + (double)gap->first * g->span->step);
    time_text(b, sizeof b, g->span->from + (double)(gap->first + gap->count - 1) * g->span->step);
    if (g->is_qps)
        fprintf(stderr, "cpscale record: warning: gap: no qps from %s to %s (%zu step%s); "
                "those rows are left out, never filled with zeros (a replay carries the last "
                "rate forward)\n",
                a, b, gap->count, gap->count == 1 ? "" : "s");
    else
        fprintf(stderr, "cpscale record: warning: no %s from %s to %s (%zu step%s): fields "
                "left empty\n",
                g->column, a, b, gap->count, gap->count == 1 ? "" : "s");
    g->listed++;
}

/* Write the rows that have a rate; optional fields are empty where missing. */
static int write_trace(FILE *out, const struct cps_prom_span *span, struct column *cols)
{
    fprintf(out, "timestamp,qps,p95_ms,replicas,cost_per_pod_hour\n");
    for (size_t i = 0; i < span->n_points; i++) {
        if (isnan(cols[M_QPS].values[i]))
            continue;
        fprintf(out, "%.15g", span->from + (double)i * span->step);
        for (int m = 0; m < M_COUNT; m++) {
            double v = cols[m].values[i];
            if (isnan(v))
                fputc(',', out);
            else
                fprintf(out, ",%.12g", v);
        }
        fputc('\n', out);
    }
    return ferror(out) ? -1 : 0;
}

/* now, now-7d, now-90m, RFC 3339 or epoch seconds. */
static int parse_time(const char *text, double now, double *out)
{
    if (strcmp(text, "now") == 0) {
        *out = now;
        return 0;
    }
    if (strncmp(text, NOW_MINUS, strlen(NOW_MINUS)) == 0) {
        const char *d = text + strlen(NOW_MINUS);
        size_t n = strlen(d);
        int64_t ms = 0;
        if (n > 1 && d[n - 1] == 'd') {
            char *end = NULL;
            errno = 0;
            double days = strtod(d, &end);
            if (errno || end != d + n - 1 || !(days >= 0.0) || days > CPS_TRACE_MAX_SPAN_S)
                return -1;
            *out = now - days * SECONDS_PER_DAY;
            return 0;
        }
        if (cps_duration_parse(d, &ms) < 0)
            return -1;
        *out = now - (double)ms / MS_PER_S;
        return 0;
    }
    size_t bad = 0;
    if (strlen(text) > RFC3339_DASH_AT && text[RFC3339_DASH_AT] == '-')
        return cps_rfc3339_parse(text, strlen(text), out, &bad);
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < 0.0 || v >= CPS_TRACE_MAX_EPOCH)
        return -1;
    *out = v;
    return 0;
}

/* A Kubernetes name: lower-case letters, digits and '-' (and '.' when
 * `dots`), alphanumeric at both ends, at most `max` bytes. Checked before any
 * name goes into a query, escaped or not. */
static int is_dns_name(const char *s, size_t max, int dots)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (dots && c == '.');
        if (!ok)
            return 0;
    }
    return s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.';
}

/* Read the bearer token file: one line, trailing whitespace dropped. */
static char *read_token(const char *path)
{
    char *bytes = NULL;
    size_t len = 0;
    if (cps_read_file(path, TOKEN_MAX_BYTES, &bytes, &len) < 0)
        return NULL;
    while (len > 0 && (bytes[len - 1] == '\n' || bytes[len - 1] == '\r' ||
                       bytes[len - 1] == ' ' || bytes[len - 1] == '\t'))
        bytes[--len] = '\0';
    if (len == 0 || strpbrk(bytes, "\r\n") || strlen(bytes) != len) {
        fprintf(stderr, "%s: the bearer token must be one non-empty line\n", path);
        free(bytes);
        return NULL;
    }
    return bytes;
}

static void record_usage(FILE *out)
{
    fputs("NAME\n"
          "    cpscale record - write a target's history from Prometheus as a trace\n"
          "\n"
          "SYNOPSIS\n"
          "    cpscale record --namespace NS --deployment NAME --from T --to T\n"
          "                   [--prometheus URL] [--step 60s] [--config FILE]\n"
          "                   [--output FILE] [--timeout D] [--max-body BYTES] [--quiet]\n"
          "\n"
          "DESCRIPTION\n"
          "    Runs the target's queries over [--from, --to] through Prometheus'\n"
          "    /api/v1/query_range, one value per --step, and writes a trace CSV\n"
          "    (SIM-MODEL.md §1) with the columns timestamp, qps, p95_ms, replicas\n"
          "    (ready replicas) and cost_per_pod_hour, for `cpscale sim`, `calibrate`\n"
          "    and `tune`.\n"
          "\n"
          "    The queries are the config's: the target's own `queries:` when it is listed\n"
          "    in `targets:`, else those of `defaults:`, else the cluster-wide `queries:`.\n"
          "    In a query with $namespace / $deployment the placeholders become escaped\n"
          "    PromQL string literals and the query must return one series. A cluster-\n"
          "    wide query is filtered to the target with `and on(LABELS)`, LABELS being\n"
          "    prometheus.labels (namespace and deployment by default), and the series\n"
          "    with those label values is taken. prometheus.bearer_token_file and\n"
          "    prometheus.headers are sent with every request.\n"
          "\n"
          "    Spans longer than 10,000 steps are split into several requests, under\n"
          "    Prometheus' limit of 11,000 points per series. A step with no rate is a\n"
          "    gap: it is named in a warning and its row is left out, never filled with\n"
          "    zeros (a replay carries the last rate forward, as SIM-MODEL says). Missing\n"
          "    optional values leave their field empty, also with a warning. NaN,\n"
          "    infinite and negative samples count as missing. A progress bar is drawn\n"
          "    on stderr when it is a terminal.\n"
          "\n"
          "OPTIONS\n"
          "    --namespace NS        the target's namespace (a DNS label)\n"
          "    --deployment NAME     the Deployment's name\n"
          "    --from T, --to T      RFC 3339 (2024-05-01T12:00:00Z), epoch seconds, now,\n"
          "                          or now-DURATION (now-7d, now-36h, now-90m)\n"
          "    --prometheus URL      default: the config's prometheus.url\n"
          "    --step D              resolution (default 60s, at least 1s)\n"
          "    --config FILE         config.yaml for queries, labels, token and headers\n"
          "                          (default: the built-in defaults)\n"
          "    --output FILE         the trace (default stdout)\n"
          "    --timeout D           per request (default: the config's prometheus.timeout,\n"
          "                          at least 30s)\n"
          "    --max-body BYTES      largest answer accepted (default 67108864)\n"
          "    --quiet               no warnings, no progress\n"
          "    --help                this page\n"
          "\n"
          "EXIT STATUS\n"
          "    0 written; 1 runtime failure (Prometheus unreachable, a timeout, an answer\n"
          "    too large or malformed, no qps at all); 2 usage or config error, or a query\n"
          "    Prometheus refused (HTTP 400/422).\n"
          "\n"
          "EXAMPLES\n"
          "    cpscale record --prometheus http://prometheus.monitoring:9090 \\\n"
          "        --namespace shop --deployment web --from now-14d --to now \\\n"
          "        --config config.yaml --output web.csv\n"
          "    cpscale record --namespace shop --deployment web \\\n"
          "        --from 2024-05-01T00:00:00Z --to 2024-05-08T00:00:00Z --step 30s\n"
          "    cpscale calibrate web.csv && cpscale tune web.csv\n",
          out);
}

enum record_option {
    OPT_PROMETHEUS = 256, OPT_NAMESPACE, OPT_DEPLOYMENT, OPT_FROM, OPT_TO, OPT_STEP, OPT_CONFIG,
    OPT_OUTPUT, OPT_TIMEOUT, OPT_MAX_BODY, OPT_QUIET, OPT_HELP,
};

/* The target's queries: a listed target's, else the defaults', else the
 * cluster-wide ones. */
static const char *pick_query(const struct cps_config *config, const char *ns, const char *name,
                              enum metric m)
{
    const struct cps_target *target = &config->defaults;
    for (size_t i = 0; i < config->n_targets; i++) {
        const struct cps_target *t = &config->targets[i];
        if (t->namespace && t->name && strcmp(t->namespace, ns) == 0 &&
            strcmp(t->name, name) == 0 && (!t->kind || strcmp(t->kind, "Deployment") == 0))
            target = t;
    }
    const struct cps_queries *own = &target->queries, *all = &config->queries;
    switch (m) {
    case M_QPS: return own->qps ? own->qps : all->qps;
    case M_P95: return own->p95_ms ? own->p95_ms : all->p95_ms;
    case M_REPLICAS: return own->ready_replicas ? own->ready_replicas : all->ready_replicas;
    default: return own->cost_per_pod_hour ? own->cost_per_pod_hour : all->cost_per_pod_hour;
    }
}

/* Headers for every request: the config's, then the bearer token. */
static int build_headers(const struct cps_prometheus_config *prom, struct curl_slist **list)
{
    for (size_t i = 0; i < prom->n_headers; i++) {
        size_t size = strlen(prom->header_names[i]) + strlen(prom->header_values[i]) + 3;
        char *line = malloc(size);
        if (!line)
            return -1;
        snprintf(line, size, "%s: %s", prom->header_names[i], prom->header_values[i]);
        struct curl_slist *grown = curl_slist_append(*list, line);
        free(line);
        if (!grown)
            return -1;
        *list = grown;
    }
    if (prom->bearer_token_file) {
        char *token = read_token(prom->bearer_token_file);
        if (!token)
            return -2;
        size_t size = strlen(token) + 32;
        char *line = malloc(size);
        if (line)
            snprintf(line, size, "Authorization: Bearer %s", token);
        /* the token never stays in memory longer than needed, nor in messages */
        memset(token, 0, strlen(token));
        free(token);
        if (!line)
            return -1;
        struct curl_slist *grown = curl_slist_append(*list, line);
        memset(line, 0, strlen(line));
        free(line);
        if (!grown)
            return -1;
        *list = grown;
    }
    struct curl_slist *grown = curl_slist_append(*list, "Accept: application/json");
    if (!grown)
        return -1;
    *list = grown;
    return 0;
}

/*
 * Parse and check everything first (a usage error costs no request), then
 * fetch the four columns, report gaps, and write the rows that have a rate.
 */
int cps_record_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"prometheus", required_argument, NULL, OPT_PROMETHEUS},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"deployment", required_argument, NULL, OPT_DEPLOYMENT},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"step", required_argument, NULL, OPT_STEP},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *ns = NULL, *name = NULL, *from_text = NULL, *to_text = NULL;
    const char *config_path = NULL, *output = NULL;
    int64_t step_ms = DEFAULT_STEP_MS, timeout_ms = -1;
    double max_body = DEFAULT_MAX_BODY;
    int quiet = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_PROMETHEUS: url = optarg; break;
        case OPT_NAMESPACE: ns = optarg; break;
        case OPT_DEPLOYMENT: name = optarg; break;
        case OPT_FROM: from_text = optarg; break;
        case OPT_TO: to_text = optarg; break;
        case OPT_CONFIG: config_path = optarg; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_STEP:
            if (cps_duration_parse(optarg, &step_ms) < 0 || step_ms < MIN_STEP_MS) {
                fprintf(stderr, "cpscale record: --step: \"%s\" is not a duration of at least "
                        "1s\n", optarg);
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_TIMEOUT:
            if (cps_duration_parse(optarg, &timeout_ms) < 0 || timeout_ms < 1) {
                fprintf(stderr, "cpscale record: --timeout: \"%s\" is not a duration\n", optarg);
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_MAX_BODY: {
            char *end = NULL;
            errno = 0;
            max_body = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(max_body >= MIN_MAX_BODY) ||
                max_body > MAX_MAX_BODY) {
                fprintf(stderr, "cpscale record: --max-body: \"%s\" is not a byte count in "
                        "[%.0f, %.0f]\n", optarg, MIN_MAX_BODY, MAX_MAX_BODY);
                return CPS_EXIT_USAGE;
            }
            break;
        }
        case OPT_HELP: record_usage(stdout); return CPS_EXIT_OK;
        default:
            fprintf(stderr, "usage: cpscale record --namespace NS --deployment NAME --from T "
                    "--to T [options] (see --help)\n");
            return CPS_EXIT_USAGE;
        }
    }
    if (optind != argc || !ns || !name || !from_text || !to_text) {
        fprintf(stderr, "cpscale record: --namespace, --deployment, --from and --to are "
                "required (see --help)\n");
        return CPS_EXIT_USAGE;
    }
    if (!is_dns_name(ns, DNS_LABEL_MAX, 0)) {
        fprintf(stderr, "cpscale record: --namespace: \"%s\" is not a namespace name\n", ns);
        return CPS_EXIT_USAGE;
    }
    if (!is_dns_name(name, DNS_SUBDOMAIN_MAX, 1)) {
        fprintf(stderr, "cpscale record: --deployment: \"%s\" is not a Deployment name\n", name);
        return CPS_EXIT_USAGE;
    }
    double now = (double)time(NULL), from, to;
    if (parse_time(from_text, now, &from) < 0 || parse_time(to_text, now, &to) < 0) {
        fprintf(stderr, "cpscale record: --%s: \"%s\" is not a time (RFC 3339, epoch seconds, "
                "now or now-7d)\n",
                parse_time(from_text, now, &from) < 0 ? "from" : "to",
                parse_time(from_text, now, &from) < 0 ? from_text : to_text);
        return CPS_EXIT_USAGE;
    }
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_prom_span span;
    if (cps_prom_span_init(&span, from, to, (double)step_ms / MS_PER_S, &err) < 0) {
        fprintf(stderr, "cpscale record: %s: %s\n", err.source, err.message);
        return CPS_EXIT_USAGE;
    }
    struct cps_config *config = NULL;
    if (config_path)
        config = cps_load_config_file(config_path);
    else if ((config = calloc(1, sizeof *config)) && cps_config_init_defaults(config) < 0) {
        cps_config_free(config);
        config = NULL;
    }
    if (!config)
        return config_path ? CPS_EXIT_USAGE : CPS_EXIT_RUNTIME;
    int exit_code = CPS_EXIT_USAGE;
    struct recorder r;
    struct column cols[M_COUNT];
    FILE *out = NULL;
    memset(&r, 0, sizeof r);
    memset(cols, 0, sizeof cols);
    const struct cps_prometheus_config *prom = &config->prometheus;
    if (!url)
        url = prom->url;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fprintf(stderr, "cpscale record: --prometheus: \"%s\" is not an http:// or https:// URL\n",
                url);
        goto done;
    }
    size_t url_len = strlen(url);
    while (url_len > 0 && url[url_len - 1] == '/')
        url_len--;
    r.endpoint = malloc(url_len + sizeof "/api/v1/query_range");
    if (!r.endpoint) {
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    memcpy(r.endpoint, url, url_len);
    strcpy(r.endpoint + url_len, "/api/v1/query_range");
    r.timeout_ms = (long)(timeout_ms > 0 ? timeout_ms
                          : prom->timeout_ms > MIN_TIMEOUT_MS ? prom->timeout_ms
                                                              : MIN_TIMEOUT_MS);
    r.max_body = (size_t)max_body;
    int headers = build_headers(prom, &r.headers);
    if (headers < 0) {
        if (headers == -1)
            fprintf(stderr, "cpscale record: out of memory\n");
        exit_code = headers == -2 ? CPS_EXIT_USAGE : CPS_EXIT_RUNTIME;
        goto done;
    }
    struct cps_prom_match match = {prom->namespace_label, prom->deployment_label, ns, name, 0};
    for (int m = 0; m < M_COUNT; m++) {
        cols[m].values = malloc(span.n_points * sizeof(double));
        cols[m].query = build_query(pick_query(config, ns, name, (enum metric)m), prom, ns, name,
                                    &cols[m].single, &err);
        if (!cols[m].values || !cols[m].query) {
            fprintf(stderr, "cpscale record: queries.%s: %s\n", query_keys[m],
                    cols[m].values ? err.message : "out of memory");
            exit_code = cols[m].values && !strstr(err.message, "memory") ? CPS_EXIT_USAGE
                                                                          : CPS_EXIT_RUNTIME;
            goto done;
        }
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(r.curl = curl_easy_init())) {
        fprintf(stderr, "cpscale record: cannot initialise libcurl\n");
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    curl_easy_setopt(r.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r.curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(r.curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r.curl, CURLOPT_USERAGENT, "cpscale/" CPS_VERSION " (record)");
    curl_easy_setopt(r.curl, CURLOPT_ACCEPT_ENCODING, "");
    r.progress = !quiet && isatty(STDERR_FILENO) ? stderr : NULL;
    r.requests_total = M_COUNT * cps_prom_span_chunks(&span);
    r.started = cps_pool_now_s();
    snprintf(r.label, sizeof r.label, "record %s/%s", ns, name);
    for (int m = 0; m < M_COUNT; m++) {
        int usage = 0;
        match.single = cols[m].single;
        if (fetch_column(&r, &span, &match, (enum metric)m, &cols[m], &usage, &err) < 0) {
            if (r.progress)
                fputc('\n', stderr);
            char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
            cps_err_format(&err, msg, sizeof msg);
            fprintf(stderr, "cpscale record: %s\n", msg);
            exit_code = usage ? CPS_EXIT_USAGE : CPS_EXIT_RUNTIME;
            goto done;
        }
    }
    if (r.progress)
        cps_progress_draw(r.progress, r.label, r.requests_done, r.requests_total,
                          cps_pool_now_s() - r.started, 1);
    char a[32], b[32];
    time_text(a, sizeof a, span.from);
    time_text(b, sizeof b, span.from + (double)(span.n_points - 1) * span.step);
    if (cols[M_QPS].stats.samples == 0) {
        fprintf(stderr,
                "cpscale record: no qps for %s/%s from %s to %s (%zu series answered, %zu with "
                "%s=\"%s\", %s=\"%s\"); check queries.qps, prometheus.labels and the span\n",
                ns, name, a, b, cols[M_QPS].stats.series, cols[M_QPS].stats.matched,
                prom->namespace_label, ns, prom->deployment_label, name);
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    if (!quiet) {
        for (int m = 0; m < M_COUNT; m++) {
            const struct column *c = &cols[m];
            if (c->stats.not_finite || c->stats.negative)
                fprintf(stderr, "cpscale record: warning: %s: %zu NaN or infinite and %zu "
                        "negative samples left out\n",
                        metric_names[m], c->stats.not_finite, c->stats.negative);
            if (m != M_QPS && c->stats.samples == 0) {
                fprintf(stderr, "cpscale record: warning: no %s at all from %s to %s: the "
                        "column is left empty (check queries.%s)\n",
                        metric_names[m], a, b, query_keys[m]);
                continue;
            }
            struct gap_report g = {&span, metric_names[m], 0, 0, m == M_QPS};
            cps_prom_find_gaps(c->values, span.n_points, report_gap_cb, &g);
            if (m != M_QPS && g.listed > GAPS_LISTED)
                fprintf(stderr, "cpscale record: warning: ... and %zu more gaps in %s (%zu steps "
                        "missing in all)\n",
                        g.listed - GAPS_LISTED, metric_names[m], g.total_steps);
        }
    }
    out = output ? fopen(output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "cpscale record: %s: %s\n", output, strerror(errno));
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    int rc = write_trace(out, &span, cols);
    if (output) {
        rc |= fclose(out) != 0 ? -1 : 0;
        out = NULL;
    } else if (fflush(stdout) == EOF) {
        rc = -1;
    }
    if (rc < 0) {
        fprintf(stderr, "cpscale record: %s: write failed\n", output ? output : "stdout");
        if (output)
            unlink(output);
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    exit_code = CPS_EXIT_OK;
done:
    for (int m = 0; m < M_COUNT; m++) {
        free(cols[m].values);
        free(cols[m].query);
    }
    if (r.curl)
        curl_easy_cleanup(r.curl);
    curl_slist_free_all(r.headers);
    free(r.endpoint);
    if (r.curl)
        curl_global_cleanup();
    cps_config_free(config);
    return exit_code;
}
