/*
 * The simulated world of docs/model.md: pods that cost from creation and serve
 * from readiness, the queueing model, lagged windowed observations, and the
 * policies cpscale, hpa, static:N and oracle, all advanced in lockstep over
 * one stream of per-second arrival rates.
 *
 * The engine is fed runs of seconds (rate, price, count) in order, so a trace
 * is replayed while it is read and memory does not grow with its length.
 *
 * Ownership: cps_sim_new returns an engine freed by cps_sim_free (NULL is a
 * no-op). The setup, its target and behavior must outlive the engine.
 */
#ifndef CPS_SIM_WORLD_H
#define CPS_SIM_WORLD_H

#include <stdint.h>
#include <stdio.h>

#include "behavior.h"
#include "config.h"
#include "err.h"
#include "world_variant.h"

#define CPS_SIM_MAX_POLICIES 32
#define CPS_SIM_POLICY_NAME_MAX 32

enum cps_sim_policy_kind {
    CPS_SIM_POLICY_CPSCALE = 0,
    CPS_SIM_POLICY_HPA,
    CPS_SIM_POLICY_STATIC,
    CPS_SIM_POLICY_ORACLE,
};

struct cps_sim_policy_spec {
    enum cps_sim_policy_kind kind;
    int32_t static_replicas; /* static:N */
    double hpa_target;       /* hpa (0: the setup's world.hpa_target) */
    char name[CPS_SIM_POLICY_NAME_MAX];
};

/* Parse "cpscale,hpa,oracle,static:9,hpa:0.5" into specs. 0 or -1 with err. */
int cps_sim_parse_policies(const char *list, struct cps_sim_policy_spec *specs, size_t *n_specs,
                           struct cps_err *err);

struct cps_sim_setup {
    struct cps_sim_params world;
    double slo_ms;
    int32_t min_replicas;
    int32_t max_replicas;
    const struct cps_target *target;       /* the cpscale policy's config */
    const struct cps_behavior *hpa_behavior; /* NULL: Kubernetes' defaults */
    size_t n_policies;
    struct cps_sim_policy_spec policies[CPS_SIM_MAX_POLICIES];
    struct cps_sim_variant variant; /* docs/model.md §10; zeroed: the default world */
};

struct cps_sim_result {
    char name[CPS_SIM_POLICY_NAME_MAX];
    double cost_usd;
    double requests;
    double cost_per_million;
    double violation_pct;      /* request-weighted */
    double violation_time_pct;
    int64_t pod_starts;
    int64_t scale_actions;
    double avg_pods;
    int32_t peak_pods;
    double cost_vs_oracle;     /* NAN when no oracle ran */
    double pod_seconds;
    double violating_requests;
    int64_t violating_seconds;
    double worst_window_violation_pct; /* docs/model.md §8 */
};

struct cps_sim;

struct cps_sim *cps_sim_new(const struct cps_sim_setup *setup, struct cps_err *err);
void cps_sim_free(struct cps_sim *sim);

/* Write per-step rows (docs/model.md §8) to `out`, one row per policy every
 * `every_seconds` seconds, aggregating the seconds in between. */
int cps_sim_set_steps(struct cps_sim *sim, FILE *out, int64_t every_seconds);

/* After each simulated second, call second_cb(ctx, k, λ, ready pods, price)
 * for the policy at `policy_index` in the setup (not the oracle, which has
 * no pods of its own). For `cpscale sim --record-trace`. 0, or -1 when the
 * index names no such policy. */
int cps_sim_set_observer(struct cps_sim *sim, size_t policy_index,
                         void (*second_cb)(void *ctx, int64_t k, double lambda, int32_t ready,
                                           double price),
                         void *ctx);

/* Collect a downsampled series for the plot (at most ~2 x max_points buckets). */
int cps_sim_enable_plot(struct cps_sim *sim, size_t max_points);

/* Advance every policy by `seconds` seconds at arrival rate `lambda` (already
 * scaled) and pod price `price` (USD/pod-hour). Returns 0, or -1 on a write
 * error of the steps file. */
int cps_sim_feed(struct cps_sim *sim, double lambda, double price, int64_t seconds,
                 struct cps_err *err);

/* Totals per policy, in setup order (results has setup->n_policies entries). */
int cps_sim_finish(struct cps_sim *sim, struct cps_sim_result *results, struct cps_err *err);

/* Seconds simulated so far. */
int64_t cps_sim_seconds(const struct cps_sim *sim);

struct cps_plot;
/* After cps_sim_finish: fill a plot description whose arrays live in the
 * engine (valid until cps_sim_free). `series` must have room for
 * n_policies entries. */
int cps_sim_plot_data(struct cps_sim *sim, double start_epoch_s, const char *title,
                      struct cps_plot *plot, void *series);

#endif
