/*
 * Prometheus range queries, pure parts (for `cpscale record` and the
 * controller's backfill): splitting a span into query_range
 * requests that stay under Prometheus' points-per-series limit, decoding a
 * range answer (a matrix) into one value per step for one target,
 * finding the gaps in a series, and a target's query as sent. No I/O:
 * controller/prom.c sends the requests. (The instant-query decoder lives
 * in lib/promql.)
 */
#ifndef CPS_PROM_RANGE_H
#define CPS_PROM_RANGE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

/* Prometheus refuses a range query of more than 11,000 points per series;
 * each request asks for at most this many. */
#define CPS_PROM_RANGE_POINTS 10000
/* Most series one range answer may hold. */
#define CPS_PROM_RANGE_MAX_SERIES 100000

/* A span of evaluation times: from, from + step, ..., from + (n - 1) step. */
struct cps_prom_span {
    double from;  /* epoch seconds */
    double step;  /* seconds, > 0 */
    size_t n_points;
};

/* The span [from, to] at `step`: every time from + i step <= to. 0, or -1
 * with err when to < from, step <= 0 or the span has too many points. */
int cps_prom_span_init(struct cps_prom_span *span, double from, double to, double step,
                       struct cps_err *err);

/* Requests needed for a span (each at most CPS_PROM_RANGE_POINTS points). */
size_t cps_prom_span_chunks(const struct cps_prom_span *span);

/* Chunk i: its first point's index, and its start and end times. */
void cps_prom_span_chunk(const struct cps_prom_span *span, size_t i, size_t *first_point,
                         double *start, double *end);

/* Which series of an answer belong to the target. */
struct cps_prom_match {
    const char *namespace_label; /* label names (config prometheus.labels) */
    const char *name_label;
    const char *namespace;       /* the target's values */
    const char *name;
    int single;                  /* 1: the query was written for this target
                                    ($namespace/$deployment): take its one series */
};

struct cps_prom_range_stats {
    size_t series;       /* series in the answer */
    size_t matched;      /* of those, the target's */
    size_t samples;      /* values written */
    size_t not_finite;   /* NaN, +-Inf or over CPS_METRIC_IMPLAUSIBLE (left missing) */
    size_t negative;     /* negative values (left missing) */
};

/*
 * Decode the JSON body of /api/v1/query_range. Values of the target's
 * series go to values[i] for the span's point i (the caller fills values
 * with NAN first; a point without a sample stays NAN). NaN, infinite and
 * negative samples are left NAN and counted. An answer that is not JSON, a
 * status other than success (the message quotes errorType and error), a
 * result that is not a matrix, a malformed sample, a sample at a time that is
 * not a point of the span, more than one series for the target, or more
 * than CPS_PROM_RANGE_MAX_SERIES series is an error naming `source`.
 */
int cps_prom_decode_range(const char *body, size_t len, const struct cps_prom_span *span,
                          const struct cps_prom_match *match, const char *source, double *values,
                          struct cps_prom_range_stats *stats, struct cps_err *err);

/* A run of missing points [first, first + count). */
struct cps_prom_gap {
    size_t first, count;
};

/* Call found_cb(gap, ctx) for every run of NAN values in values[0, n) and
 * return how many there were. */
size_t cps_prom_find_gaps(const double *values, size_t n,
                          void (*found_cb)(const struct cps_prom_gap *gap, void *ctx), void *ctx);

/* The query as sent for one target (malloc'd, the caller frees):
 * placeholders ($namespace, $deployment) become escaped literals (*single =
 * 1: the answer is the target's one series); a cluster-wide query is
 * filtered to the target with `and on(<labels>)` (*single = 0). NULL with
 * err. */
char *cps_prom_target_query(const char *query, const struct cps_prometheus_config *prom,
                            const char *ns, const char *name, int *single,
                            struct cps_err *err);

#endif
