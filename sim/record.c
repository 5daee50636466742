#include "record.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "query_pick.h"
#include "trace.h"
#include "units.h"

#define NOW_MINUS "now-"
/* An RFC 3339 time has '-' right after its four-digit year. */
#define RFC3339_DASH_AT 4
/* Gaps of an optional column listed one by one before a summary. */
#define GAPS_LISTED 10
/* Bytes of an unexpected answer quoted in an error. */
#define BODY_QUOTED 200
#define HTTP_BAD_REQUEST 400
#define HTTP_UNPROCESSABLE 422

const enum cps_metric cps_record_metrics[CPS_RECORD_COLUMNS] = {CPS_METRIC_QPS, CPS_METRIC_P95,
                                                                CPS_METRIC_READY, CPS_METRIC_COST};

const char *cps_record_column_name(enum cps_metric metric)
{
    return metric == CPS_METRIC_READY ? "replicas" : cps_metric_query_key(metric);
}

void cps_record_time_text(char *buf, size_t size, double epoch)
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

struct gap_report {
    FILE *out;
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
    cps_record_time_text(a, sizeof a, g->span->from + (double)gap->first * g->span->step);
    cps_record_time_text(b, sizeof b, g->span->from + (double)(gap->first + gap->count - 1) * g->span->step);
    if (g->is_qps)
        fprintf(g->out, "cpscale record: warning: gap: no qps from %s to %s (%zu step%s); "
                "those rows are left out, never filled with zeros (a replay carries the last "
                "rate forward)\n",
                a, b, gap->count, gap->count == 1 ? "" : "s");
    else
        fprintf(g->out, "cpscale record: warning: no %s from %s to %s (%zu step%s): fields "
                "left empty\n",
                g->column, a, b, gap->count, gap->count == 1 ? "" : "s");
    g->listed++;
}

/* now, now-7d, now-90m, RFC 3339 or epoch seconds. */
int cps_record_parse_time(const char *text, double now, double *out)
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
            *out = now - days * CPS_S_PER_DAY;
            return 0;
        }
        if (cps_duration_parse(d, &ms) < 0)
            return -1;
        *out = now - (double)ms / CPS_MS_PER_S;
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

const char *cps_record_pick_query(const struct cps_config *config, const char *ns,
                                  const char *name, enum cps_metric metric)
{
    const struct cps_target *target = &config->defaults;
    for (size_t i = 0; i < config->n_targets; i++) {
        const struct cps_target *t = &config->targets[i];
        if (t->namespace && t->name && strcmp(t->namespace, ns) == 0 &&
            strcmp(t->name, name) == 0 && (!t->kind || strcmp(t->kind, "Deployment") == 0))
            target = t;
    }
    return cps_query_pick(&target->queries, &config->queries, metric);
}

int cps_record_status_error(long status, const char *body, size_t len,
                            const struct cps_prom_span *span, const struct cps_prom_match *match,
                            const char *source, const char *endpoint, struct cps_err *err)
{
    /* Prometheus explains 400/422/503 in a JSON body; anything else (a
     * proxy's page, a redirect) is quoted */
    struct cps_prom_range_stats ignored = {0};
    double *scratch = len ? malloc((span->n_points ? span->n_points : 1) * sizeof *scratch) : NULL;
    if (scratch && cps_prom_decode_range(body, len, span, match, source, scratch, &ignored, err) < 0 &&
        strstr(err->message, "Prometheus answered")) {
        char message[CPS_ERR_MESSAGE_MAX];
        snprintf(message, sizeof message, "%s", err->message);
        cps_err_set(err, source, 0, 0, "HTTP %ld: %s", status, message);
    } else {
        char quoted[BODY_QUOTED + 1];
        excerpt(quoted, sizeof quoted, body ? body : "", len);
        cps_err_set(err, source, 0, 0, "HTTP %ld from %s: %s", status, endpoint, quoted);
    }
    free(scratch);
    return status == HTTP_BAD_REQUEST || status == HTTP_UNPROCESSABLE;
}

void cps_record_warn(FILE *out, const struct cps_prom_span *span,
                     const struct cps_record_column *cols)
{
    char a[32], b[32];
    cps_record_time_text(a, sizeof a, span->from);
    cps_record_time_text(b, sizeof b, span->from + (double)(span->n_points - 1) * span->step);
    for (int m = 0; m < CPS_RECORD_COLUMNS; m++) {
        const struct cps_record_column *c = &cols[m];
        enum cps_metric metric = cps_record_metrics[m];
        const char *name = cps_record_column_name(metric);
        int is_qps = metric == CPS_METRIC_QPS;
        if (c->stats.not_finite || c->stats.negative)
            fprintf(out, "cpscale record: warning: %s: %zu NaN, infinite or implausible "
                    "(over 1e12) and %zu "
                    "negative samples left out\n",
                    name, c->stats.not_finite, c->stats.negative);
        if (!is_qps && c->stats.samples == 0) {
            fprintf(out, "cpscale record: warning: no %s at all from %s to %s: the "
                    "column is left empty (check queries.%s)\n",
                    name, a, b, cps_metric_query_key(metric));
            continue;
        }
        struct gap_report g = {out, span, name, 0, 0, is_qps};
        cps_prom_find_gaps(c->values, span->n_points, report_gap_cb, &g);
        if (!is_qps && g.listed > GAPS_LISTED)
            fprintf(out, "cpscale record: warning: ... and %zu more gaps in %s (%zu steps "
                    "missing in all)\n",
                    g.listed - GAPS_LISTED, name, g.total_steps);
    }
}

/* Write the rows that have a rate; optional fields are empty where missing. */
int cps_record_write_trace(FILE *out, const struct cps_prom_span *span,
                           const struct cps_record_column *cols)
{
    fprintf(out, "timestamp,qps,p95_ms,replicas,cost_per_pod_hour\n");
    for (size_t i = 0; i < span->n_points; i++) {
        if (isnan(cols[0].values[i]))
            continue;
        fprintf(out, "%.15g", span->from + (double)i * span->step);
        for (int m = 0; m < CPS_RECORD_COLUMNS; m++) {
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
