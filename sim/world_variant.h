/*
 * World variants of docs/model.md §10: service times other than
 * exponential, a daily drift of the pods' service rate, a random extra
 * startup per pod, and the worst rolling budget window of the report. The
 * engine (world.c) holds one cps_variant_state and asks it, per second,
 * for the capacity and latency of the variant world; with every variant at
 * its default the engine never calls in and the default world is unchanged.
 */
#ifndef CPS_SIM_WORLD_VARIANT_H
#define CPS_SIM_WORLD_VARIANT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "service_times.h"

/* Seconds in the drift's period and in a budget bucket. */
#define CPS_VARIANT_DAY_S 86400
#define CPS_BUDGET_BUCKET_S 3600
/* The rolling budget window's default, 7 days, and its largest value. */
#define CPS_BUDGET_WINDOW_DEFAULT_S (7 * 86400.0)
#define CPS_BUDGET_WINDOW_MAX_S (366 * 86400.0)

/* The variant settings of a setup; all zero except world_seed = 1 and
 * budget_window_s = 7d is the default world (budget_window_s 0 also means
 * 7d, so a zeroed setup is the default world). */
struct cps_sim_variant {
    struct cps_service_times service; /* kind 0: exponential */
    double capacity_drift;            /* A in [0, 1) */
    double startup_jitter_s;          /* D, rounded to whole seconds */
    uint64_t world_seed;
    double budget_window_s;           /* whole hours; 0: 7d */
};

/* The defaults: exponential, no drift, no jitter, seed 1, window 7d. */
void cps_sim_variant_defaults(struct cps_sim_variant *v);

/* Ranges, and the combinations the model does not define (pooled routing
 * with non-exponential service times or with drift). 0, or -1 with err. */
int cps_sim_variant_check(const struct cps_sim_variant *v, enum cps_routing routing,
                          struct cps_err *err);

/* Per-run constants and the per-second service rate. */
struct cps_variant_state {
    struct cps_service_table table;
    double mu, base_ms, slo_ms, drift;
    double lambda_max_1; /* λmax(1) at μ: the engine's table is c times this */
    double mu_now;       /* μ(k) of the current second */
};

/* Build the G(ρ) table and λmax(1) (a few ms for lognormal). */
void cps_variant_init(struct cps_variant_state *v, const struct cps_sim_variant *settings,
                      double mu, double base_ms, double slo_ms);

/* μ(k) = μ (1 + A sin(2π k / 86400)). */
double cps_variant_mu_at(const struct cps_variant_state *v, int64_t k);

/*
 * Second k with drift: set mu_now = μ(k) and return λ scaled to the
 * engine's capacity table, λ · λmax(1) / λmax₁(k), so that comparing it
 * with c · λmax(1) is comparing λ with c · λmax₁(k). INFINITY when no pod
 * meets the SLO at μ(k) and λ > 0; λ unchanged when none does at μ.
 */
double cps_variant_load(struct cps_variant_state *v, double lambda, int64_t k);

/* p95 in ms of c pods at rate λ when each serves mu req/s (§10). */
double cps_variant_p95_ms(const struct cps_variant_state *v, double lambda, int32_t c,
                          double mu);

/* The jitter stream of the policy at `position` in --policy (§10). */
uint64_t cps_variant_stream(uint64_t seed, size_t position);

/* One pod's extra startup: uniform in {0, ..., d} seconds. */
int64_t cps_variant_jitter(uint64_t *stream, int64_t d);

/*
 * Worst rolling budget window (docs/model.md §8): hourly buckets of
 * requests and, per track (a policy), of violating requests; a window is
 * `hours` consecutive buckets. Memory is one ring of `hours` buckets per
 * track, whatever the trace's length.
 */
struct cps_budget {
    int64_t hours;
    size_t n_tracks;
    int64_t closed;           /* buckets closed so far */
    double last_requests;     /* cumulative requests at the last close */
    double *requests;         /* ring: hours */
    double *violating;        /* ring: n_tracks x hours */
    double *last_violating;   /* per track, cumulative at the last close */
    double *worst;            /* per track, % */
};

/* 0, or -1 when out of memory. window_s: whole hours (0: 7d). */
int cps_budget_init(struct cps_budget *b, size_t n_tracks, double window_s);
void cps_budget_release(struct cps_budget *b);

/* Close the next bucket, given each track's cumulative violating requests
 * and the cumulative requests. */
void cps_budget_close(struct cps_budget *b, const double *cum_violating, double cum_requests);

/* At the end of `seconds`: close the last bucket, and when fewer
 * buckets than a window were closed, take the whole trace as the window. */
void cps_budget_finish(struct cps_budget *b, const double *cum_violating, double cum_requests,
                       int64_t seconds);

#endif
