/*
 * A trace held in memory as runs of seconds at one rate and one price, for
 * the commands that replay the same trace many times (`cpscale tune`, the
 * what-if mode of `cpscale sim`). The runs are exactly what `cpscale sim`
 * feeds its engine (docs/model.md §1: carry-forward, the last row's length,
 * whole seconds), before --scale and --price are applied, so a replay from
 * memory gives the same figures as one from the file.
 *
 * Ownership: cps_trace_runs_load fills a caller-owned struct whose arrays
 * are freed by cps_trace_runs_release (a zeroed struct is safe to release).
 */
#ifndef CPS_SIM_TRACE_RUNS_H
#define CPS_SIM_TRACE_RUNS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "world.h"

struct cps_trace_run {
    double qps;      /* unscaled rate of the row */
    double price;    /* the row's cost_per_pod_hour, or NAN: the world's price */
    int64_t seconds;
};

struct cps_trace_runs {
    struct cps_trace_run *runs;
    size_t n_runs, capacity;
    int64_t seconds;  /* total */
    double first_t;   /* epoch seconds of second 0 */
    size_t rows;
    size_t gaps;
};

/* Read a trace file ("-": stdin). Gap warnings go to `warnings` (NULL:
 * silent). Returns 0, or -1 with err (file:line:col for bad input). */
int cps_trace_runs_load(const char *path, FILE *warnings, struct cps_trace_runs *out,
                        struct cps_err *err);

void cps_trace_runs_release(struct cps_trace_runs *runs);

/* Feed seconds [from_s, to_s) of the trace to an engine, rates multiplied by
 * `scale`, runs without a price column at `price`. Returns 0 or -1 with err. */
int cps_trace_runs_feed(const struct cps_trace_runs *runs, int64_t from_s, int64_t to_s,
                        double scale, double price, struct cps_sim *sim, struct cps_err *err);

#endif
