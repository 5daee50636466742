/*
 * The simulator engine's state, shared by the files that implement it
 * (world.c: pods, policies, the oracle and the per-second loop;
 * world_plot.c: the --plot buckets). Not for other users: they go through world.h.
 */
#ifndef CPS_SIM_WORLD_INTERNAL_H
#define CPS_SIM_WORLD_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "decide.h"
#include "queue_model.h"
#include "world.h"
#include "world_variant.h"

/* A batch of pods created at the same second, not ready yet. */
struct cohort {
    int64_t ready_at;
    int32_t count;
};

/* Aggregation of one --steps row for one policy. */
struct steps_accumulator {
    int64_t start;
    int64_t seconds;
    double lambda_sum, p95_sum, violating_requests, cost;
    int64_t violating;
    int32_t replicas, ready, desired;
};

/* Plot buckets for one policy. */
struct plot_track {
    double *ready_sum;
    double *violating;
    double *cost_end;
};

/*
 * One observed series of a policy: its value this second (cached while λ
 * and the ready count stay), the running sum, and the ring of prefix sums
 * (cum[k mod ring] = Σ over seconds [0, k)). The p95 and cpu tracks are
 * separate structs, not neighbouring fields, so the compiler does not
 * pair them into one 16-byte load of two 8-byte stores: a load the CPU
 * cannot forward from the store buffer, and stalls on.
 */
struct observed_track {
    double *cum;
    double sum;
    double now;
};

struct policy_run {
    struct cps_sim_policy_spec spec;
    /* pods */
    int32_t ready;
    int32_t total;
    struct cohort *cohorts; /* ring of pending cohorts, oldest first */
    size_t cohort_capacity, cohort_start, cohort_count;
    int32_t desired;
    /* what the policy observes: capped p95 and cpu busy share */
    struct observed_track p95, cpu;
    /* the (λ, c) of p95.now and cpu.now */
    double cache_lambda;
    int32_t cache_c;
    double inv_capacity; /* 1 / (c μ) for cache_c */
    int needs_p95, needs_cpu;
    /* totals */
    int64_t pod_seconds;
    double cost, requests_violating;
    int64_t violating_seconds, pod_starts, scale_actions;
    int32_t peak;
    /* decision state */
    struct cps_history *history;
    struct cps_policy_state *policy_state;
    struct steps_accumulator steps;
    struct plot_track plot;
    uint64_t jitter_stream; /* --startup-jitter draws (docs/model.md §10) */
};

/*
 * The oracle (docs/model.md §7) runs online: c*_k per second, and per pod level
 * the last busy second, so each idle gap is priced when the level is busy
 * again. With per-second prices, a timeline of price runs gives the sum of
 * prices over any past interval.
 */
struct price_run {
    int64_t start;
    double price;
    double prefix; /* Σ price over [0, start) */
};

/*
 * The idle levels above the oracle's current count, as a stack of runs of
 * levels that went idle together: the top run starts at current + 1 and
 * ends at `top`; each run below it starts where the one above ended. Every
 * level of a run shares its last busy second, so a run wakes at one price.
 */
struct idle_run {
    int32_t top;  /* the run's highest level */
    int64_t last; /* the levels' last busy second, -1 never busy */
};

/* A remembered c* for a load. */
#define PODS_MEMO_BITS 8
#define PODS_MEMO_SLOTS (1u << PODS_MEMO_BITS)
struct pods_memo {
    double load;
    int32_t c;
};

struct oracle_run {
    int active;
    size_t index; /* in setup->policies */
    struct idle_run *idle; /* stack of idle runs, bottom first */
    size_t n_idle;
    int32_t current;    /* c* of the previous second */
    int32_t peak;
    int64_t pod_seconds; /* whole pod-seconds: exact as an integer */
    double cost;
    int64_t starts, actions, violating_seconds;
    double violating_requests;
    /* price timeline, only when prices vary */
    struct price_run *prices;
    size_t n_prices, price_capacity;
    struct pods_memo memo[PODS_MEMO_SLOTS]; /* load -> c*, see oracle_pods_for */
    struct plot_track plot;
    uint64_t jitter_stream;
};

struct cps_sim {
    struct cps_sim_setup setup;
    struct cps_queue_model model;
    struct cps_lambda_table table;
    struct cps_behavior hpa_behavior; /* the setup's, or Kubernetes' defaults */
    double p95_scale_ms; /* 1000 ln(20) / μ: random routing's p95 above base at λ = 0 */
    int64_t interval_s, window_s, lag_s, startup_s;
    size_t ring_mask;
    double *cum_lambda;
    double run_lambda;
    int64_t k; /* next second to simulate */
    int64_t next_decision; /* the next second that is a multiple of interval_s */
    double lambda0;
    int32_t n0;
    double requests;
    double first_price;
    int prices_vary;
    size_t n_runs;
    struct policy_run runs[CPS_SIM_MAX_POLICIES];
    struct oracle_run oracle;
    /* world variants (docs/model.md §10): mu_now is μ(k), μ in the default world */
    struct cps_variant_state variant;
    int latency_variant, mu_varies;
    int variants; /* any variant on: the per-second path with variants */
    int64_t jitter_s;
    struct cps_budget budget;
    int64_t next_hour; /* the second that closes the next budget bucket */
    int extras; /* --steps, an observer or --plot: policy_extras runs */
    FILE *steps_out;
    int64_t steps_every;
    /* cps_sim_set_observer: one policy's pods, second by second */
    void (*observer_cb)(void *ctx, int64_t k, double lambda, int32_t ready, double price);
    void *observer_ctx;
    const struct policy_run *observed;
    /* plot */
    size_t plot_max, plot_count;
    int64_t plot_width;
    double *plot_demand;
    int64_t plot_bucket_fill;
};

/* Advance the plot's bucket cursor by one second (world_plot.c); returns
 * the bucket index. */
size_t cps_world_plot_bucket(struct cps_sim *sim);

#endif
