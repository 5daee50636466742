/*
 * Replaying a trace file: read it in chunks through the streaming parser and
 * feed every second to a simulation engine (or a callback). The one trace
 * reader of sim, what-if, tune and calibrate.
 */
#ifndef CPS_SIM_REPLAY_H
#define CPS_SIM_REPLAY_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "trace.h"
#include "world.h"

/* Read a trace file ("-" for stdin) through the streaming parser in 1 MiB
 * chunks, handing each row to row_cb(ctx, row, err) in order; memory does
 * not grow with the file. A parse error or a failing row_cb (-1 with err
 * filled) stops the read. The one file reader of sim, tune and calibrate. */
int cps_trace_read_file(const char *path,
                        int (*row_cb)(void *ctx, const struct cps_trace_row *row,
                                      struct cps_err *err),
                        void *ctx, struct cps_err *err);

/* A trace fed into an engine as it is read. Shared by sim and tune. */
struct cps_trace_replay {
    double first_t;    /* epoch seconds of second 0 */
    int64_t seconds;   /* seconds fed */
    size_t rows;
    size_t gaps;
};

/* Read `path` ("-" for stdin) in chunks and feed every second to `sim`,
 * rates multiplied by `scale`, prices from the cost column or `price`.
 * Gap warnings go to `warnings` (NULL: silent). Returns 0 or -1 with err. */
int cps_trace_replay_file(const char *path, double scale, double price, struct cps_sim *sim,
                          FILE *warnings, struct cps_trace_replay *replay, struct cps_err *err);

/* The same, handing each run of seconds to feed_cb(feed_ctx, rate, price,
 * seconds, err) instead of an engine (a feed_cb that fails returns -1 with
 * err filled, and the replay stops). cps_trace_runs_load builds on it. */
int cps_trace_replay_file_cb(const char *path, double scale, double price,
                             int (*feed_cb)(void *ctx, double lambda, double price,
                                            int64_t seconds, struct cps_err *err),
                             void *feed_ctx, FILE *warnings, struct cps_trace_replay *replay,
                             struct cps_err *err);

#endif
