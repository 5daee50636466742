/*
 * History replayed through the policy: what a target's metrics were over
 * a span (one value per step, as a range query answers) fed to cps_decide
 * step by step, in time order, so the learned state (capacity, demand
 * spread, the violation budget, burst memory) comes out as if the policy
 * had decided live through that span. The controller's backfill uses it
 * after a restart.
 *
 * Pure: no I/O, no clock. The decisions are thrown away; a scratch
 * history takes the rails' records, so the caller's history is untouched.
 */
#ifndef CPS_POLICY_REPLAY_H
#define CPS_POLICY_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "decide.h"
#include "metric.h"

/* A target's metrics over a span: values[m][i] is metric m at
 * from_ms + i * step_ms, NAN where there was no sample. values[m] may be
 * NULL for a metric not queried. */
struct cps_replay_series {
    int64_t from_ms;   /* wall clock, ms since the epoch */
    int64_t step_ms;   /* > 0: the controller's interval */
    size_t n_points;
    const double *values[CPS_METRIC_QUERIED];
};

/* What a replay did. */
struct cps_replay_stats {
    size_t replayed;   /* steps fed to the policy */
    size_t skipped;    /* steps with a rate, latency, CPU or ready count missing */
};

/* The observation the live tick would have made at point i: replicas are
 * the ready replicas (history has no spec.replicas series), the price is
 * the configured one where the cost series has none. 1 when every metric
 * the policy needs is there, 0 when the step teaches nothing (skip it, as
 * the live tick does with missing data). */
int cps_replay_observation(const struct cps_target *target, const struct cps_replay_series *series,
                           size_t i, struct cps_observation *obs);

/* Feed every complete step of `series` to cps_decide on `state`, in time
 * order. 0, or -1 when out of memory (the scratch history). */
int cps_policy_replay(const struct cps_target *target, const struct cps_replay_series *series,
                      struct cps_policy_state *state, struct cps_replay_stats *stats);

#endif
