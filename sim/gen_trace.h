/*
 * The generator of `cpscale gen-trace`: a synthetic request-rate trace in the trace format:
 * a diurnal and weekly cycle, multiplicative noise, and random bursts.
 * Deterministic for a given seed, so tests and the demo can rely on it.
 */
#ifndef CPS_GEN_TRACE_H
#define CPS_GEN_TRACE_H

#include <stdint.h>
#include <stdio.h>

struct cps_gen_params {
    double days;
    double step_s;        /* seconds per row */
    double peak_qps;      /* weekday daily peak before noise and bursts */
    double trough_ratio;  /* night trough as a share of the peak */
    double weekend_ratio; /* weekend level as a share of weekdays */
    double noise;         /* sd of the log-normal noise per row */
    double bursts_per_day;
    double start_epoch;   /* timestamp of the first row (a Monday 00:00 UTC) */
    uint64_t seed;
    int with_cost;        /* add a cost_per_pod_hour column (spot-like prices) */
};

void cps_gen_params_default(struct cps_gen_params *params);

/* Write the CSV to `out`. Returns 0, or -1 on a write error. */
int cps_gen_trace_write(FILE *out, const struct cps_gen_params *params);

#endif
