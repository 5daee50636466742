/*
 * The queueing model of docs/model.md §3: p95 response time of c ready pods
 * serving λ req/s, each pod at μ req/s, plus a fixed base latency, for
 * random routing (c independent M/M/1 queues) and pooled routing (one
 * M/M/c FCFS queue), and λmax(c), the largest rate c pods serve within an
 * SLO. Pure; times in milliseconds, rates in requests per second.
 */
#ifndef CPS_QUEUE_MODEL_H
#define CPS_QUEUE_MODEL_H

#include <stdint.h>

#include "config.h"

struct cps_queue_model {
    enum cps_routing routing;
    double service_rate;    /* μ */
    double base_latency_ms;
};

/* p95 in ms; INFINITY when c = 0 and λ > 0, or λ >= cμ. */
double cps_queue_p95_ms(const struct cps_queue_model *model, double lambda, int32_t c);

/* λmax(c) for an SLO in ms: the largest λ with p95(λ, c) <= slo (0 if even
 * an idle pod misses it). */
double cps_queue_lambda_max(const struct cps_queue_model *model, double slo_ms, int32_t c);

/* λmax(0..max_c) tabulated once. */
struct cps_lambda_table {
    int32_t max_c;
    double *lambda_max; /* max_c + 1 entries */
    double linear_step; /* > 0 when λmax(c) = c * linear_step (random routing) */
};

/* Fill a table; returns 0, or -1 on allocation failure. Free with
 * cps_lambda_table_release. */
int cps_lambda_table_init(struct cps_lambda_table *table, const struct cps_queue_model *model,
                          double slo_ms, int32_t max_c);
void cps_lambda_table_release(struct cps_lambda_table *table);

/* Smallest c in [lo, hi] with λ <= λmax(c); hi when none does. */
int32_t cps_lambda_table_pods_for(const struct cps_lambda_table *table, double lambda,
                                  int32_t lo, int32_t hi);

/* Pooled routing's largest pod count: the λmax table is exact, by
 * bisection per count, each step an O(c) Erlang C, so it costs O(c²):
 * 0.2 s at 1,000 pods, 3 s at 5,000, 46 s at 20,000. */
#define CPS_POOLED_MAX_REPLICAS 10000

#endif
