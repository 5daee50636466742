/*
 * `cpscale record`: read one target's history from Prometheus (query_range,
 * with the target's own queries from config.yaml) and write it as a trace
 * CSV. The options and the flow are here; the requests go through
 * controller/prom.c (the one Prometheus request setup), the answers are
 * decoded by sim/prom_range.c and the trace is written by sim/record.c.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "cli_flags.h"
#include "commands.h"
#include "config_file.h"
#include "duration.h"
#include "err.h"
#include "k8s_names.h"
#include "pool.h"
#include "prom.h"
#include "prom_range.h"
#include "record.h"
#include "units.h"

#define DEFAULT_STEP_MS 60000
#define MIN_STEP_MS 1000
/* Range queries read far more than the controller's instant queries: each
 * request gets at least this long, or the config's timeout if longer. */
#define MIN_TIMEOUT_MS 30000
#define DEFAULT_MAX_BODY (64u << 20)
#define MIN_MAX_BODY 1024.0
#define MAX_MAX_BODY 4294967296.0
#define HTTP_OK 200
#define HELP_SHOWN (-1)

/* What the command line asked for. */
struct record_args {
    const char *url, *ns, *name, *from_text, *to_text, *config_path, *output;
    int64_t step_ms, timeout_ms;
    double max_body;
    int quiet;
};

/* The run: the client, the columns, progress. */
struct recorder {
    struct cps_prom_range_client *client;
    FILE *progress;
    size_t requests_done, requests_total;
    double started;
    char label[128];
};

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
          "    (docs/model.md §1) with the columns timestamp, qps, p95_ms, replicas\n"
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
          "    zeros (a replay carries the last rate forward, as docs/model.md says). Missing\n"
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

/* One option with a value to check; 0, or CPS_EXIT_USAGE after saying why. */
static int parse_value(int opt, const char *text, struct record_args *a)
{
    switch (opt) {
    case CLI_FLAG_STEP:
        if (cps_duration_parse(text, &a->step_ms) < 0 || a->step_ms < MIN_STEP_MS) {
            fprintf(stderr, "cpscale record: --step: \"%s\" is not a duration of at least "
                    "1s\n", text);
            return CPS_EXIT_USAGE;
        }
        return 0;
    case CLI_FLAG_TIMEOUT:
        if (cps_duration_parse(text, &a->timeout_ms) < 0 || a->timeout_ms < 1) {
            fprintf(stderr, "cpscale record: --timeout: \"%s\" is not a duration\n", text);
            return CPS_EXIT_USAGE;
        }
        return 0;
    default: {
        char *end = NULL;
        errno = 0;
        a->max_body = strtod(text, &end);
        if (errno || end == text || *end || !(a->max_body >= MIN_MAX_BODY) ||
            a->max_body > MAX_MAX_BODY) {
            fprintf(stderr, "cpscale record: --max-body: \"%s\" is not a byte count in "
                    "[%.0f, %.0f]\n", text, MIN_MAX_BODY, MAX_MAX_BODY);
            return CPS_EXIT_USAGE;
        }
        return 0;
    }
    }
}

/* Fill args from argv: 0, HELP_SHOWN, or an exit code (usage errors say
 * why). Names are checked before they can reach a query. */
static int parse_record_args(int argc, char **argv, struct record_args *a)
{
    static const enum cli_flag record_flags[] = {
        CLI_FLAG_PROMETHEUS, CLI_FLAG_NAMESPACE, CLI_FLAG_DEPLOYMENT, CLI_FLAG_FROM,
        CLI_FLAG_TO, CLI_FLAG_STEP, CLI_FLAG_CONFIG, CLI_FLAG_OUTPUT, CLI_FLAG_TIMEOUT,
        CLI_FLAG_MAX_BODY, CLI_FLAG_QUIET, CLI_FLAG_HELP,
    };
    memset(a, 0, sizeof *a);
    a->step_ms = DEFAULT_STEP_MS;
    a->timeout_ms = -1;
    a->max_body = DEFAULT_MAX_BODY;
    int opt;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "", record_flags, CLI_N_FLAGS(record_flags))) != -1) {
        switch (opt) {
        case CLI_FLAG_PROMETHEUS: a->url = optarg; break;
        case CLI_FLAG_NAMESPACE: a->ns = optarg; break;
        case CLI_FLAG_DEPLOYMENT: a->name = optarg; break;
        case CLI_FLAG_FROM: a->from_text = optarg; break;
        case CLI_FLAG_TO: a->to_text = optarg; break;
        case CLI_FLAG_CONFIG: a->config_path = optarg; break;
        case CLI_FLAG_OUTPUT: a->output = optarg; break;
        case CLI_FLAG_QUIET: a->quiet = 1; break;
        case CLI_FLAG_STEP:
        case CLI_FLAG_TIMEOUT:
        case CLI_FLAG_MAX_BODY:
            if (parse_value(opt, optarg, a) != 0)
                return CPS_EXIT_USAGE;
            break;
        case CLI_FLAG_HELP: record_usage(stdout); return HELP_SHOWN;
        default:
            fprintf(stderr, "usage: cpscale record --namespace NS --deployment NAME --from T "
                    "--to T [options] (see --help)\n");
            return CPS_EXIT_USAGE;
        }
    }
    if (optind != argc || !a->ns || !a->name || !a->from_text || !a->to_text) {
        fprintf(stderr, "cpscale record: --namespace, --deployment, --from and --to are "
                "required (see --help)\n");
        return CPS_EXIT_USAGE;
    }
    if (!cps_k8s_is_dns_label(a->ns, strlen(a->ns))) {
        fprintf(stderr, "cpscale record: --namespace: \"%s\" is not a namespace name\n", a->ns);
        return CPS_EXIT_USAGE;
    }
    if (!cps_k8s_is_dns_subdomain(a->name)) {
        fprintf(stderr, "cpscale record: --deployment: \"%s\" is not a Deployment name\n",
                a->name);
        return CPS_EXIT_USAGE;
    }
    return 0;
}

/* The span from --from, --to and --step; 0, or CPS_EXIT_USAGE after
 * saying why. */
static int parse_span(const struct record_args *a, struct cps_prom_span *span)
{
    double now = (double)time(NULL), from, to;
    if (cps_record_parse_time(a->from_text, now, &from) < 0 ||
        cps_record_parse_time(a->to_text, now, &to) < 0) {
        int bad_from = cps_record_parse_time(a->from_text, now, &from) < 0;
        fprintf(stderr, "cpscale record: --%s: \"%s\" is not a time (RFC 3339, epoch seconds, "
                "now or now-7d)\n",
                bad_from ? "from" : "to", bad_from ? a->from_text : a->to_text);
        return CPS_EXIT_USAGE;
    }
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_prom_span_init(span, from, to, (double)a->step_ms / CPS_MS_PER_S, &err) < 0) {
        fprintf(stderr, "cpscale record: %s: %s\n", err.source, err.message);
        return CPS_EXIT_USAGE;
    }
    return 0;
}

/* Fetch one column over the whole span, chunk by chunk. Returns 0, or -1
 * with err; *usage says the error is the query's or config's, not the
 * network's. */
static int fetch_column(struct recorder *r, const struct cps_prom_span *span,
                        const struct cps_prom_match *match, enum cps_metric metric,
                        struct cps_record_column *col, int *usage, struct cps_err *err)
{
    char source[96];
    snprintf(source, sizeof source, "prometheus: queries.%s", cps_metric_query_key(metric));
    for (size_t i = 0; i < span->n_points; i++)
        col->values[i] = NAN;
    size_t chunks = cps_prom_span_chunks(span);
    for (size_t c = 0; c < chunks; c++) {
        size_t first, len = 0;
        double start, end;
        long status = 0;
        const char *body = NULL;
        cps_prom_span_chunk(span, c, &first, &start, &end);
        if (cps_prom_query_range(r->client, col->query, start, end, span->step, &status, &body,
                                 &len, err) < 0)
            return -1;
        if (status != HTTP_OK) {
            *usage = cps_record_status_error(status, body, len, span, match, source,
                                             cps_prom_range_endpoint(r->client), err);
            return -1;
        }
        if (cps_prom_decode_range(body, len, span, match, source, col->values, &col->stats,
                                  err) < 0)
            return -1;
        r->requests_done++;
        if (r->progress)
            cps_progress_draw(r->progress, r->label, r->requests_done, r->requests_total,
                              cps_pool_now_s() - r->started, 0);
    }
    return 0;
}

/* The columns' buffers and queries; 0, or an exit code after saying why.
 * An optional query turned off ("", the cost's) leaves its column empty
 * (NaN: the price of the world stands in) and is not sent. */
static int build_columns(const struct record_args *a, const struct cps_config *config,
                         const struct cps_prom_span *span, struct cps_record_column *cols)
{
    struct cps_err err;
    cps_err_clear(&err);
    for (int m = 0; m < CPS_RECORD_COLUMNS; m++) {
        enum cps_metric metric = cps_record_metrics[m];
        const char *text = cps_record_pick_query(config, a->ns, a->name, metric);
        cols[m].values = malloc(span->n_points * sizeof(double));
        if (cols[m].values && text && !*text && cps_metric_is_optional(metric)) {
            for (size_t i = 0; i < span->n_points; i++)
                cols[m].values[i] = NAN;
            continue; /* cols[m].query stays NULL: not fetched */
        }
        cols[m].query = cps_prom_target_query(text, &config->prometheus, a->ns, a->name,
                                              &cols[m].single, &err);
        if (!cols[m].values || !cols[m].query) {
            fprintf(stderr, "cpscale record: queries.%s: %s\n", cps_metric_query_key(metric),
                    cols[m].values ? err.message : "out of memory");
            return cols[m].values && !strstr(err.message, "memory") ? CPS_EXIT_USAGE
                                                                     : CPS_EXIT_RUNTIME;
        }
    }
    return 0;
}

/* Every column from Prometheus; 0, or an exit code after saying why. */
static int fetch_columns(struct recorder *r, const struct record_args *a,
                         const struct cps_prometheus_config *prom,
                         const struct cps_prom_span *span, struct cps_record_column *cols)
{
    struct cps_prom_match match = {prom->namespace_label, prom->deployment_label, a->ns, a->name,
                                   0};
    r->progress = !a->quiet && isatty(STDERR_FILENO) ? stderr : NULL;
    int fetched = 0;
    for (int m = 0; m < CPS_RECORD_COLUMNS; m++)
        fetched += cols[m].query != NULL;
    r->requests_total = (size_t)fetched * cps_prom_span_chunks(span);
    r->started = cps_pool_now_s();
    snprintf(r->label, sizeof r->label, "record %s/%s", a->ns, a->name);
    for (int m = 0; m < CPS_RECORD_COLUMNS; m++) {
        int usage = 0;
        struct cps_err err;
        cps_err_clear(&err);
        if (!cols[m].query)
            continue; /* turned off (build_columns) */
        match.single = cols[m].single;
        if (fetch_column(r, span, &match, cps_record_metrics[m], &cols[m], &usage, &err) < 0) {
            if (r->progress)
                fputc('\n', stderr);
            cps_err_print(stderr, "cpscale record: ", &err);
            return usage ? CPS_EXIT_USAGE : CPS_EXIT_RUNTIME;
        }
    }
    if (r->progress)
        cps_progress_draw(r->progress, r->label, r->requests_done, r->requests_total,
                          cps_pool_now_s() - r->started, 1);
    return 0;
}

/* Write the trace to --output or stdout; 0, or an exit code. A partly
 * written --output file is removed. */
static int write_output(const char *output, const struct cps_prom_span *span,
                        const struct cps_record_column *cols)
{
    FILE *out = output ? fopen(output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "cpscale record: %s: %s\n", output, strerror(errno));
        return CPS_EXIT_RUNTIME;
    }
    int rc = cps_record_write_trace(out, span, cols);
    if (output)
        rc |= fclose(out) != 0 ? -1 : 0;
    else if (fflush(stdout) == EOF)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "cpscale record: %s: write failed\n", output ? output : "stdout");
        if (output)
            unlink(output);
        return CPS_EXIT_RUNTIME;
    }
    return CPS_EXIT_OK;
}

/* The config, or the built-in defaults without --config. NULL after
 * saying why. */
static struct cps_config *load_config(const char *path)
{
    if (path)
        return cps_load_config_file(path);
    struct cps_config *config = calloc(1, sizeof *config);
    if (config && cps_config_init_defaults(config) < 0) {
        cps_config_free(config);
        return NULL;
    }
    return config;
}

/* The client for --prometheus (or the config's URL); NULL after saying
 * why, with *exit_code set. */
static struct cps_prom_range_client *open_client(const struct record_args *a,
                                                 const struct cps_prometheus_config *prom,
                                                 int *exit_code)
{
    const char *url = a->url ? a->url : prom->url;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fprintf(stderr, "cpscale record: --prometheus: \"%s\" is not an http:// or https:// URL\n",
                url);
        *exit_code = CPS_EXIT_USAGE;
        return NULL;
    }
    int64_t timeout_ms = a->timeout_ms > 0 ? a->timeout_ms
                         : prom->timeout_ms > MIN_TIMEOUT_MS ? prom->timeout_ms
                                                             : MIN_TIMEOUT_MS;
    int usage = 0;
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_prom_range_client *client =
        cps_prom_range_client_new(prom, url, timeout_ms, (size_t)a->max_body, &usage, &err);
    if (!client) {
        cps_err_print(stderr, "cpscale record: ", &err);
        *exit_code = usage ? CPS_EXIT_USAGE : CPS_EXIT_RUNTIME;
    }
    return client;
}

/*
 * Parse and check everything first (a usage error costs no request), then
 * fetch the four columns, report gaps, and write the rows that have a rate.
 */
int cli_record(int argc, char **argv)
{
    struct record_args a;
    int exit_code = parse_record_args(argc, argv, &a);
    if (exit_code == HELP_SHOWN)
        return CPS_EXIT_OK;
    struct cps_prom_span span;
    if (exit_code != 0 || (exit_code = parse_span(&a, &span)) != 0)
        return exit_code;
    struct cps_config *config = load_config(a.config_path);
    if (!config)
        return a.config_path ? CPS_EXIT_USAGE : CPS_EXIT_RUNTIME;
    const struct cps_prometheus_config *prom = &config->prometheus;
    struct recorder r;
    struct cps_record_column cols[CPS_RECORD_COLUMNS];
    memset(&r, 0, sizeof r);
    memset(cols, 0, sizeof cols);
    if (!(r.client = open_client(&a, prom, &exit_code)) ||
        (exit_code = build_columns(&a, config, &span, cols)) != 0 ||
        (exit_code = fetch_columns(&r, &a, prom, &span, cols)) != 0)
        goto done;
    if (cols[0].stats.samples == 0) {
        char from[32], to[32];
        cps_record_time_text(from, sizeof from, span.from);
        cps_record_time_text(to, sizeof to, span.from + (double)(span.n_points - 1) * span.step);
        fprintf(stderr,
                "cpscale record: no qps for %s/%s from %s to %s (%zu series answered, %zu with "
                "%s=\"%s\", %s=\"%s\"); check queries.qps, prometheus.labels and the span\n",
                a.ns, a.name, from, to, cols[0].stats.series, cols[0].stats.matched,
                prom->namespace_label, a.ns, prom->deployment_label, a.name);
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    if (!a.quiet)
        cps_record_warn(stderr, &span, cols);
    exit_code = write_output(a.output, &span, cols);
done:
    for (int m = 0; m < CPS_RECORD_COLUMNS; m++) {
        free(cols[m].values);
        free(cols[m].query);
    }
    cps_prom_range_client_free(r.client);
    cps_config_free(config);
    return exit_code;
}
