#include "policy_replay.h"

#include <math.h>
#include <string.h>

#include "behavior.h"

/* One value of a series, NAN when the metric was not queried. */
static double value_at(const struct cps_replay_series *s, enum cps_metric m, size_t i)
{
    return s->values[m] ? s->values[m][i] : NAN;
}

static int usable(double v)
{
    return isfinite(v) && v >= 0.0;
}

/* The live tick's observation for one step. The ready count comes from
 * the ready_replicas series and is also taken as spec.replicas: history
 * has no series of the scale's desired count, and between rescales the
 * two agree (a rollout in progress makes capacity samples wait, as live). */
int cps_replay_observation(const struct cps_target *t, const struct cps_replay_series *s,
                           size_t i, struct cps_observation *obs)
{
    memset(obs, 0, sizeof *obs);
    obs->qps = value_at(s, CPS_METRIC_QPS, i);
    obs->p95_ms = value_at(s, CPS_METRIC_P95, i);
    obs->cpu_utilization = value_at(s, CPS_METRIC_CPU, i);
    double ready = value_at(s, CPS_METRIC_READY, i);
    obs->cost_per_pod_hour = value_at(s, CPS_METRIC_COST, i);
    obs->cost_per_pod_hour = cps_decision_price(t, obs); /* else the configured one */
    if (!usable(obs->qps) || !usable(obs->p95_ms) || !usable(obs->cpu_utilization) ||
        !usable(ready) || ready > (double)INT32_MAX)
        return 0;
    obs->ready_replicas = obs->replicas = (int32_t)llround(ready);
    return 1;
}

/* Decide at every complete step; the decisions are dropped. A step with a
 * metric missing is skipped rather than fed as missing: cps_decide learns
 * nothing from it either way, and skipping keeps the step count honest. */
int cps_policy_replay(const struct cps_target *t, const struct cps_replay_series *s,
                      struct cps_policy_state *state, struct cps_replay_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    size_t recs, events;
    cps_history_capacity_for(&t->behavior, s->step_ms, &recs, &events);
    struct cps_history *scratch = cps_history_new(recs, events);
    if (!scratch)
        return -1;
    /* history has the ready count only, not the count asked for, so how
     * long pods took to be ready cannot be read from it: the start-up timer
     * keeps what it had and learns live */
    struct cps_startup_timer timer = state->startup;
    for (size_t i = 0; i < s->n_points; i++) {
        struct cps_observation obs;
        if (!cps_replay_observation(t, s, i, &obs)) {
            stats->skipped++;
            continue;
        }
        struct cps_decision d;
        cps_decide(t, &obs, scratch, state, s->from_ms + (int64_t)i * s->step_ms, NULL, &d);
        stats->replayed++;
    }
    state->startup = timer;
    cps_history_free(scratch);
    return 0;
}
