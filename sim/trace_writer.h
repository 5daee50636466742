/*
 * `cpscale sim --record-trace FILE`: write what one policy's simulated
 * deployment would have shown a monitoring system, as a trace in the format
 * of docs/model.md §1 (timestamp, qps, p95_ms, replicas, cost_per_pod_hour), one
 * row per `step` seconds. It is the input `cpscale calibrate` expects, made
 * from a world whose parameters are known.
 *
 * Per step: qps is the mean arrival rate; replicas the mean number of ready
 * pods; p95_ms the request-weighted mean of each second's p95 (docs/model.md
 * §3), left empty when a second of the step was saturated (p95 unbounded)
 * and, in a step without arrivals, the plain mean; cost_per_pod_hour the
 * mean price.
 *
 * Ownership: the writer borrows `out` (the caller closes it).
 */
#ifndef CPS_SIM_TRACE_WRITER_H
#define CPS_SIM_TRACE_WRITER_H

#include <stdint.h>
#include <stdio.h>

#include "queue_model.h"

struct cps_trace_writer {
    FILE *out;
    int64_t step_s;
    const double *first_t; /* epoch of second 0, known once the replay starts */
    struct cps_queue_model model;
    int failed;
    /* the step being summed */
    int64_t start;
    int64_t seconds;
    double lambda_sum, ready_sum, price_sum, weighted_p95, plain_p95;
    int saturated;
    /* last second's p95, reused while λ and the ready count hold */
    double cache_lambda;
    int32_t cache_ready;
    double cache_p95;
};

/* Write the header. Returns 0, or -1 on a write error. */
int cps_trace_writer_init(struct cps_trace_writer *w, FILE *out, int64_t step_s,
                          const double *first_t,
                          const struct cps_queue_model *model);

/* The observer callback for cps_sim_set_observer (ctx: the writer). */
void cps_trace_writer_second_cb(void *ctx, int64_t k, double lambda, int32_t ready, double price);

/* Write the last, possibly partial, step. 0, or -1 if any write failed. */
int cps_trace_writer_finish(struct cps_trace_writer *w);

#endif
