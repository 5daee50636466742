#include "prom_range.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "metric.h"
#include "promql.h"

/* Most points a recorded span may have (about 19 years at 60 s). */
#define MAX_SPAN_POINTS 10000000.0
/* A sample's time must be within this of a point of the span (seconds):
 * Prometheus answers with the requested times, in milliseconds. */
#define TIME_TOLERANCE_S 0.0015
/* A label-filter wrapper and escaped values may add this much to a query. */
#define LITERAL_MAX 1024
/* Slack when counting points, so that `to` itself counts despite rounding. */
#define POINT_EPSILON 1e-9

int cps_prom_span_init(struct cps_prom_span *span, double from, double to, double step,
                       struct cps_err *err)
{
    if (!(step > 0.0) || !isfinite(step))
        return cps_err_set(err, "--step", 0, 0, "must be a positive duration");
    if (!isfinite(from) || !isfinite(to) || to < from)
        return cps_err_set(err, "--to", 0, 0, "the end of the span is before its start");
    double n = floor((to - from) / step + POINT_EPSILON) + 1.0;
    if (n > MAX_SPAN_POINTS)
        return cps_err_set(err, "--step", 0, 0,
                           "%.0f points from --from to --to; at most %.0f (take a longer step)",
                           n, MAX_SPAN_POINTS);
    span->from = from;
    span->step = step;
    span->n_points = (size_t)n;
    return 0;
}

size_t cps_prom_span_chunks(const struct cps_prom_span *span)
{
    return (span->n_points + CPS_PROM_RANGE_POINTS - 1) / CPS_PROM_RANGE_POINTS;
}

void cps_prom_span_chunk(const struct cps_prom_span *span, size_t i, size_t *first_point,
                         double *start, double *end)
{
    size_t first = i * CPS_PROM_RANGE_POINTS;
    size_t last = first + CPS_PROM_RANGE_POINTS - 1;
    if (last >= span->n_points)
        last = span->n_points - 1;
    *first_point = first;
    *start = span->from + (double)first * span->step;
    *end = span->from + (double)last * span->step;
}

/* The value of a label as a string, or NULL. */
static const char *label(const json_t *metric, const char *name)
{
    return name ? json_string_value(json_object_get(metric, name)) : NULL;
}

static int is_target(const json_t *metric, const struct cps_prom_match *m)
{
    if (m->single)
        return 1;
    const char *ns = label(metric, m->namespace_label), *name = label(metric, m->name_label);
    return ns && name && strcmp(ns, m->namespace) == 0 && strcmp(name, m->name) == 0;
}

/*
 * Write one series' samples into values[]. Each sample is [time, "value"];
 * the time must fall on a point of the span, since query_range evaluates at
 * exactly start + k step.
 */
static int take_series(const json_t *samples, size_t series, const struct cps_prom_span *span,
                       const char *source, double *values, struct cps_prom_range_stats *stats,
                       struct cps_err *err)
{
    size_t i;
    const json_t *pair;
    if (!json_is_array(samples))
        return cps_err_set(err, source, 0, 0, "data.result[%zu].values is not a list", series);
    json_array_foreach(samples, i, pair) {
        const json_t *t = json_array_get(pair, 0), *v = json_array_get(pair, 1);
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_number(t) ||
            !json_is_string(v))
            return cps_err_set(err, source, 0, 0,
                               "data.result[%zu].values[%zu]: expected [time, \"value\"]", series,
                               i);
        double at = (json_number_value(t) - span->from) / span->step;
        double k = nearbyint(at);
        if (!(k >= 0.0 && k < (double)span->n_points) ||
            fabs(at - k) * span->step > TIME_TOLERANCE_S)
            return cps_err_set(err, source, 0, 0,
                               "data.result[%zu].values[%zu]: time %.3f is not a step of the "
                               "requested range",
                               series, i, json_number_value(t));
        const char *text = json_string_value(v);
        char *end = NULL;
        errno = 0;
        double x = strtod(text, &end);
        if (end == text || *end)
            return cps_err_set(err, source, 0, 0,
                               "data.result[%zu].values[%zu]: \"%.40s\" is not a number", series,
                               i, text);
        if (!isfinite(x) || x > CPS_METRIC_IMPLAUSIBLE) {
            stats->not_finite++;
            continue;
        }
        if (x < 0.0) {
            stats->negative++;
            continue;
        }
        values[(size_t)k] = x;
        stats->samples++;
    }
    return 0;
}

int cps_prom_decode_range(const char *body, size_t len, const struct cps_prom_span *span,
                          const struct cps_prom_match *match, const char *source, double *values,
                          struct cps_prom_range_stats *stats, struct cps_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (!root)
        return cps_err_set(err, source, jerr.line, jerr.column, "the answer is not JSON: %s",
                           jerr.text);
    const char *status = json_string_value(json_object_get(root, "status"));
    if (!status) {
        cps_err_set(err, source, 0, 0, "the answer has no \"status\"");
        goto done;
    }
    if (strcmp(status, "success") != 0) {
        const char *type = json_string_value(json_object_get(root, "errorType"));
        const char *message = json_string_value(json_object_get(root, "error"));
        cps_err_set(err, source, 0, 0, "Prometheus answered %.20s: %.40s: %.300s", status,
                    type ? type : "?", message ? message : "(no message)");
        goto done;
    }
    if (cps_prom_check_warnings(root, source, err) != 0)
        goto done;
    const json_t *data = json_object_get(root, "data");
    const char *type = json_string_value(json_object_get(data, "resultType"));
    const json_t *result = json_object_get(data, "result");
    if (!type || !json_is_array(result)) {
        cps_err_set(err, source, 0, 0, "data.resultType or data.result is missing");
        goto done;
    }
    if (strcmp(type, "matrix") != 0) {
        cps_err_set(err, source, 0, 0, "data.resultType is \"%.20s\"; a range query answers a "
                    "matrix", type);
        goto done;
    }
    size_t n = json_array_size(result);
    if (n > CPS_PROM_RANGE_MAX_SERIES) {
        cps_err_set(err, source, 0, 0, "%zu series, more than the limit of %d", n,
                    CPS_PROM_RANGE_MAX_SERIES);
        goto done;
    }
    stats->series += n;
    size_t matched = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *entry = json_array_get(result, i);
        const json_t *metric = json_object_get(entry, "metric");
        if (!json_is_object(metric)) {
            cps_err_set(err, source, 0, 0, "data.result[%zu]: no \"metric\" object", i);
            goto done;
        }
        if (!is_target(metric, match))
            continue;
        if (++matched > 1) {
            if (match->single)
                cps_err_set(err, source, 0, 0,
                            "the query returned %zu series; a query written for one target "
                            "($namespace/$deployment) must return one (aggregate it, e.g. "
                            "sum(...))",
                            n);
            else
                cps_err_set(err, source, 0, 0,
                            "more than one series has %s=\"%s\" and %s=\"%s\"; aggregate the "
                            "query by those labels",
                            match->namespace_label, match->namespace, match->name_label,
                            match->name);
            goto done;
        }
        if (take_series(json_object_get(entry, "values"), i, span, source, values, stats, err) <
            0)
            goto done;
    }
    stats->matched += matched;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

size_t cps_prom_find_gaps(const double *values, size_t n,
                          void (*found_cb)(const struct cps_prom_gap *gap, void *ctx), void *ctx)
{
    size_t gaps = 0;
    for (size_t i = 0; i < n;) {
        if (!isnan(values[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && isnan(values[j]))
            j++;
        struct cps_prom_gap gap = {i, j - i};
        if (found_cb)
            found_cb(&gap, ctx);
        gaps++;
        i = j;
    }
    return gaps;
}

/*
 * A target's query as sent to Prometheus (`cpscale record`, the
 * controller's backfill).
 * Placeholders are substituted as escaped literals; a cluster-wide query is
 * filtered to the target with `and on(<labels>)` against a one-series vector
 * carrying the target's label values, so Prometheus sends only its series.
 */
char *cps_prom_target_query(const char *query, const struct cps_prometheus_config *prom,
                            const char *ns, const char *name, int *single,
                            struct cps_err *err)
{
    if (cps_promql_has_placeholders(query)) {
        *single = 1;
        return cps_promql_substitute(query, ns, name, err);
    }
    *single = 0;
    char ns_literal[LITERAL_MAX], name_literal[LITERAL_MAX];
    if (cps_promql_escape_string(ns, ns_literal, sizeof ns_literal) < 0 ||
        cps_promql_escape_string(name, name_literal, sizeof name_literal) < 0) {
        cps_err_set(err, "prometheus", 0, 0, "namespace or deployment too long");
        return NULL;
    }
    const char *nsl = prom->namespace_label, *dl = prom->deployment_label;
    size_t size = strlen(query) + 2 * strlen(nsl) + 2 * strlen(dl) + strlen(ns_literal) +
                  strlen(name_literal) + LITERAL_MAX;
    char *out = malloc(size);
    if (!out) {
        cps_err_set(err, "prometheus", 0, 0, "out of memory");
        return NULL;
    }
    snprintf(out, size,
             "(%s) and on(%s, %s) label_replace(label_replace(vector(1), \"%s\", %s, \"__name__\", "
             "\".*\"), \"%s\", %s, \"__name__\", \".*\")",
             query, nsl, dl, nsl, ns_literal, dl, name_literal);
    return out;
}
