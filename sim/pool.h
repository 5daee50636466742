/*
 * A parallel for-loop over independent work items on POSIX threads, with a
 * progress bar on a terminal. Items are handed out by index, and every item
 * writes only its own slot of the caller's results, so the results are the
 * same whatever the number of threads and whichever thread ran an item.
 */
#ifndef CPS_SIM_POOL_H
#define CPS_SIM_POOL_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

/* Most threads a pool runs. */
#define CPS_POOL_MAX_JOBS 256

/* Online CPUs (at least 1, at most CPS_POOL_MAX_JOBS). */
int cps_pool_default_jobs(void);

/*
 * Run work_cb(ctx, i, err) for i in [0, n_items) on `jobs` threads.
 * `progress`, when not NULL, gets a one-line bar redrawn in place (use a
 * terminal's stderr; pass NULL when it is not a terminal), labelled
 * `label`. After the first failure no new item starts; the call returns -1
 * with the error of the lowest failing index among those that ran, else 0.
 */
int cps_pool_run(size_t n_items, int jobs, int (*work_cb)(void *ctx, size_t index,
                                                          struct cps_err *err),
                 void *ctx, FILE *progress, const char *label, struct cps_err *err);

/* Draw "label [#####.....] done/total  elapsed, ETA" on `out` with a
 * carriage return; `final` ends the line. */
void cps_progress_draw(FILE *out, const char *label, size_t done, size_t total,
                       double elapsed_s, int final);

/* Seconds on the monotonic clock, for elapsed times and rates. */
double cps_pool_now_s(void);

#endif
