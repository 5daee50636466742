/*
 * A self-contained SVG of a simulation run: demand and ready pods over time,
 * seconds over the SLO, and cumulative cost, one line per policy, with axes,
 * grid, tick labels and a legend. No external fonts, scripts or images.
 */
#ifndef CPS_PLOT_H
#define CPS_PLOT_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

/* One policy's line in every panel; arrays have plot->n_points entries. */
struct cps_plot_series {
    const char *name;               /* "cpscale", "hpa", "oracle", "static:9" */
    const double *ready_pods;       /* mean ready pods in the bucket */
    const double *violation_seconds;/* seconds over the SLO in the bucket */
    const double *cumulative_cost;  /* USD spent up to the end of the bucket */
};

struct cps_plot {
    const char *title;              /* e.g. the trace file name */
    size_t n_points;                /* buckets, left to right */
    double start_epoch_s;           /* wall time of bucket 0's start (Unix s), for labels */
    double bucket_seconds;          /* width of one bucket */
    const double *demand_qps;       /* mean arrival rate in the bucket */
    size_t n_series;
    const struct cps_plot_series *series;
};

/* Write the SVG to `out`. Returns 0, or -1 with err filled (bad input such as
 * n_points == 0, or a write error). Never writes NaN/Inf into the SVG.
 *
 * Input rules: n_points must be 1..CPS_PLOT_MAX_POINTS; demand_qps and every
 * series array must be non-NULL (a NULL name is drawn as "(unnamed)");
 * bucket_seconds must be finite and at least CPS_PLOT_MIN_BUCKET_SECONDS;
 * start_epoch_s must be finite and the whole span must fall in years
 * 0001..9999. Data values that are NaN, infinite or negative are drawn as 0
 * (a cumulative cost carries its last good value forward instead), and
 * values above CPS_PLOT_VALUE_MAX are drawn at it. The caller owns (and
 * frees) `plot` and closes `out`; nothing is kept after the call. */
int cps_plot_write_svg(FILE *out, const struct cps_plot *plot, struct cps_err *err);

#define CPS_PLOT_MIN_BUCKET_SECONDS 1e-3
#define CPS_PLOT_VALUE_MAX 1e15
#define CPS_PLOT_MAX_POINTS 10000000 /* the caller downsamples to ~2000 */

/* The smallest step of the form {1, 2, 5} x 10^k that splits [0, range] into
 * at most max_ticks intervals (max_ticks < 1 counts as 1). Returns 1 for a
 * range that is zero, negative or not finite. */
double cps_plot_nice_step(double range, int max_ticks);

/* The smallest "round" duration in seconds (1/2/5/10/15/30 s, the same in
 * minutes, 1/2/3/6/12 h, 1/2/7/14 days, then {1, 2, 5} x 10^k days) that
 * splits span_seconds into at most max_ticks intervals. Spans shorter than
 * max_ticks seconds get a {1, 2, 5} x 10^k step in seconds. */
double cps_plot_time_step(double span_seconds, int max_ticks);

/* Format an axis tick value with an SI suffix (k, M, G, T, P) chosen by the
 * value itself and as many decimals as `step` needs, trailing zeros dropped:
 * (1500, 500) -> "1.5k", (2e6, 1e6) -> "2M", (0.012, 0.002) -> "0.012".
 * Always NUL-terminates buf when size > 0. */
void cps_plot_format_tick(double value, double step, char *buf, size_t size);

#endif
