#include "trace_runs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

#define FIRST_CAPACITY 1024

/* Two prices are the same run when equal, or both "the world's price". */
static int same_price(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/*
 * The replay's feed callback: append a run, merging it into the previous
 * one when rate and price are the same (a flat stretch of a trace costs one
 * entry, whatever its length).
 */
static int append_run_cb(void *ctx, double lambda, double price, int64_t seconds,
                         struct cps_err *err)
{
    struct cps_trace_runs *r = ctx;
    if (seconds <= 0)
        return 0;
    if (r->n_runs) {
        struct cps_trace_run *last = &r->runs[r->n_runs - 1];
        if (last->qps == lambda && same_price(last->price, price)) {
            last->seconds += seconds;
            r->seconds += seconds;
            return 0;
        }
    }
    if (r->n_runs == r->capacity) {
        size_t cap = r->capacity ? 2 * r->capacity : FIRST_CAPACITY;
        struct cps_trace_run *grown = realloc(r->runs, cap * sizeof *grown);
        if (!grown)
            return cps_err_set(err, "trace", 0, 0, "out of memory");
        r->runs = grown;
        r->capacity = cap;
    }
    r->runs[r->n_runs].qps = lambda;
    r->runs[r->n_runs].price = price;
    r->runs[r->n_runs].seconds = seconds;
    r->n_runs++;
    r->seconds += seconds;
    return 0;
}

/* The file replay itself decides every second's rate; scale 1 and a NAN
 * price keep the rows' own values for cps_trace_runs_feed to finish. */
int cps_trace_runs_load(const char *path, FILE *warnings, struct cps_trace_runs *out,
                        struct cps_err *err)
{
    memset(out, 0, sizeof *out);
    struct cps_trace_replay replay;
    if (cps_trace_replay_file_cb(path, 1.0, NAN, append_run_cb, out, warnings, &replay, err) < 0) {
        cps_trace_runs_release(out);
        return -1;
    }
    out->first_t = replay.first_t;
    out->rows = replay.rows;
    out->gaps = replay.gaps;
    return 0;
}

void cps_trace_runs_release(struct cps_trace_runs *runs)
{
    if (!runs)
        return;
    free(runs->runs);
    memset(runs, 0, sizeof *runs);
}

/* Walk the runs, clipping the first and last to [from_s, to_s). */
int cps_trace_runs_feed(const struct cps_trace_runs *runs, int64_t from_s, int64_t to_s,
                        double scale, double price, struct cps_sim *sim, struct cps_err *err)
{
    int64_t start = 0;
    for (size_t i = 0; i < runs->n_runs && start < to_s; i++) {
        const struct cps_trace_run *r = &runs->runs[i];
        int64_t end = start + r->seconds;
        int64_t a = start > from_s ? start : from_s;
        int64_t b = end < to_s ? end : to_s;
        if (b > a &&
            cps_sim_feed(sim, r->qps * scale, isnan(r->price) ? price : r->price, b - a, err) < 0)
            return -1;
        start = end;
    }
    return 0;
}
