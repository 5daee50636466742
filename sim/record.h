/*
 * The pure parts of `cpscale record`: which query each trace column runs,
 * the query as sent (placeholders substituted, or a cluster-wide query
 * filtered to the target), times on the command line, what an answer
 * other than 200 means, the warnings about gaps, and the trace CSV
 * (docs/model.md): timestamp, qps, p95_ms, replicas, cost_per_pod_hour.
 *
 * No network here: controller/cli/cli_record.c runs the command and sends
 * the requests through controller/prom.c; prom_range.c decodes answers.
 */
#ifndef CPS_SIM_RECORD_H
#define CPS_SIM_RECORD_H

#include <stdio.h>

#include "config.h"
#include "err.h"
#include "metric.h"
#include "prom_range.h"

/* The trace's columns after the timestamp, in order (replicas are the
 * ready replicas, CPS_METRIC_READY). */
#define CPS_RECORD_COLUMNS 4
extern const enum cps_metric cps_record_metrics[CPS_RECORD_COLUMNS];

/* The column's name in the CSV and in messages ("replicas" for READY). */
const char *cps_record_column_name(enum cps_metric metric);

/* One column: its values (one per span point, NAN where missing), the
 * query as sent and what decoding saw. Owned by the caller. */
struct cps_record_column {
    double *values;
    char *query;
    int single; /* written for this target ($namespace/$deployment) */
    struct cps_prom_range_stats stats;
};

/* The query a column runs: a listed target's own (kind Deployment), else
 * the defaults', else the cluster-wide one. NULL when none. */
const char *cps_record_pick_query(const struct cps_config *config, const char *ns,
                                  const char *name, enum cps_metric metric);

/* now, now-7d, now-90m, RFC 3339 or epoch seconds; 0 or -1. */
int cps_record_parse_time(const char *text, double now, double *out);

/* "2024-05-01T12:00:00Z" for messages. */
void cps_record_time_text(char *buf, size_t size, double epoch);

/* Fill err for an answer with HTTP `status` other than 200: Prometheus'
 * own explanation when the body has one, else a quote of the body. Returns
 * 1 when the query or config is at fault (400, 422), else 0. */
int cps_record_status_error(long status, const char *body, size_t len,
                            const struct cps_prom_span *span, const struct cps_prom_match *match,
                            const char *source, const char *endpoint, struct cps_err *err);

/* Warnings on `out` about left-out samples, empty optional columns and
 * gaps (qps gaps one by one; optional ones up to a few, then counted). */
void cps_record_warn(FILE *out, const struct cps_prom_span *span,
                     const struct cps_record_column *cols);

/* The trace: rows that have a rate; optional fields empty where missing.
 * 0, or -1 on a write error. */
int cps_record_write_trace(FILE *out, const struct cps_prom_span *span,
                           const struct cps_record_column *cols);

#endif
