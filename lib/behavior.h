/*
 * The HPA autoscaling/v2 `behavior` rails, as the Kubernetes HPA controller
 * applies them (pkg/controller/podautoscaler/horizontal.go):
 *
 *   1. stabilization: the current count is pulled up to the minimum of the
 *      recommendations in the scale-up window and down to the maximum of the
 *      recommendations in the scale-down window, both counting the new one;
 *      the new (unstabilized) recommendation is then recorded;
 *   2. rate limits: each policy (Pods or Percent per periodSeconds) proposes a
 *      limit from the count at the start of its period (current count minus
 *      pods added plus pods removed by scale events inside the period);
 *      selectPolicy Max/Min/Disabled picks among them;
 *   3. min/max.
 *
 * "Within the last W seconds" means strictly after now - W (Go's After), for
 * recommendations and scale events alike.
 *
 * Pure: no clock, no I/O. Time is passed in as now_ms. The history is owned
 * by the caller (cps_history_new / cps_history_free).
 */
#ifndef CPS_BEHAVIOR_H
#define CPS_BEHAVIOR_H

#include <stddef.h>
#include <stdint.h>

enum cps_select_policy {
    CPS_SELECT_MAX = 0, /* the default: the biggest change */
    CPS_SELECT_MIN,
    CPS_SELECT_DISABLED,
};

enum cps_scaling_policy_type {
    CPS_SCALING_PODS = 0,
    CPS_SCALING_PERCENT,
};

struct cps_scaling_policy {
    enum cps_scaling_policy_type type;
    int32_t value;
    int32_t period_seconds;
};

#define CPS_MAX_SCALING_POLICIES 8

struct cps_scaling_rules {
    int32_t stabilization_window_seconds;
    enum cps_select_policy select_policy;
    int n_policies;
    struct cps_scaling_policy policies[CPS_MAX_SCALING_POLICIES];
};

struct cps_behavior {
    struct cps_scaling_rules scale_up;
    struct cps_scaling_rules scale_down;
};

/* Kubernetes' defaults: up window 0 s, max(+100 %, +4 pods) per 15 s;
 * down window 300 s, -100 % per 15 s; selectPolicy Max. */
void cps_behavior_default(struct cps_behavior *behavior);

/* One ring entry: a time in ms and a value (a recommendation's replicas,
 * or a scale event's signed change: + up, - down). The time is kept as
 * two 32-bit halves so that an entry is 12 bytes instead of 16: at a 5 s
 * interval a target's rings hold ~75 entries, and the controller keeps
 * one pair of rings per target. Read it with cps_history_entry_t_ms. */
struct cps_history_entry {
    uint32_t t_high, t_low;
    int32_t value;
};

static inline int64_t cps_history_entry_t_ms(const struct cps_history_entry *entry)
{
    return (int64_t)(((uint64_t)entry->t_high << 32) | entry->t_low);
}

/*
 * Bounded rings of past recommendations and scale events. When a ring is full
 * the oldest entry is overwritten; size the rings with
 * cps_history_capacity_for() so that nothing still inside a window is lost.
 * cps_history_new allocates the rings in the same block as the struct.
 */
struct cps_history {
    struct cps_history_entry *recommendations;
    size_t rec_capacity, rec_start, rec_count;
    struct cps_history_entry *events;
    size_t event_capacity, event_start, event_count;
};

/* Allocate a history; returns NULL on allocation failure. Free with
 * cps_history_free (NULL is a no-op). */
struct cps_history *cps_history_new(size_t rec_capacity, size_t event_capacity);
void cps_history_free(struct cps_history *history);
void cps_history_clear(struct cps_history *history);

/* Ring sizes that keep every entry a behavior can look at, when decisions
 * come at most every interval_ms. */
void cps_history_capacity_for(const struct cps_behavior *behavior, int64_t interval_ms,
                              size_t *rec_capacity, size_t *event_capacity);

void cps_history_add_recommendation(struct cps_history *history, int64_t t_ms, int32_t replicas);
void cps_history_add_scale_event(struct cps_history *history, int64_t t_ms, int32_t change);

/* As the HPA controller does the first time it sees a target
 * (recordInitialRecommendation): if no recommendation has been recorded yet,
 * record `current` at now_ms. Call it before the first cps_behavior_normalize
 * to get Kubernetes' first-tick behavior (no scale-down on the first tick
 * while the scale-down window is non-zero). */
void cps_history_record_initial(struct cps_history *history, int64_t now_ms, int32_t current);

/* Sum of signed scale-event changes strictly after now_ms - period_ms. */
int32_t cps_history_change_since(const struct cps_history *history, int64_t now_ms,
                                 int64_t period_ms);

enum cps_behavior_limit {
    CPS_BEHAVIOR_WITHIN_RANGE = 0, /* DesiredWithinRange */
    CPS_BEHAVIOR_SCALE_UP_LIMIT,   /* ScaleUpLimit */
    CPS_BEHAVIOR_SCALE_DOWN_LIMIT, /* ScaleDownLimit */
    CPS_BEHAVIOR_TOO_MANY,         /* TooManyReplicas (max) */
    CPS_BEHAVIOR_TOO_FEW,          /* TooFewReplicas (min) */
};

struct cps_behavior_result {
    int32_t stabilized;  /* after step 1 */
    int32_t desired;     /* after steps 2 and 3 */
    enum cps_behavior_limit limit;
    int stabilization_held; /* 1 when step 1 changed the recommendation */
};

/*
 * Normalize a recommendation the way the HPA controller does with a
 * behavior set: stabilize (and record `recommendation` in the history at
 * now_ms), then rate-limit against the scale events in the history, then
 * clamp to [min_replicas, max_replicas]. When current is outside
 * [min, max] the result is the nearest bound, as HPA does before it looks
 * at metrics, and nothing is recorded.
 *
 * The caller records the scale event (cps_history_add_scale_event) after the
 * change has actually been made.
 */
void cps_behavior_normalize(const struct cps_behavior *behavior, struct cps_history *history,
                            int64_t now_ms, int32_t current, int32_t recommendation,
                            int32_t min_replicas, int32_t max_replicas,
                            struct cps_behavior_result *result);

/* The limits alone (step 2), exposed for tests and for `decide`. */
int32_t cps_behavior_scale_up_limit(const struct cps_scaling_rules *rules,
                                    const struct cps_history *history, int64_t now_ms,
                                    int32_t current);
int32_t cps_behavior_scale_down_limit(const struct cps_scaling_rules *rules,
                                      const struct cps_history *history, int64_t now_ms,
                                      int32_t current);

/*
 * The HPA replica calculator for a resource utilization target (docs/model.md
 * §6, after Kubernetes' GetResourceReplicas): tolerance, unready pods counted
 * at 0 % on a scale-up, no ready pods -> keep. `replicas` is the current
 * spec count, `ready` the ready pods, `utilization` the mean utilization of
 * the ready pods (0..1), `target` the target utilization (0..1).
 */
int32_t cps_hpa_replicas(double utilization, double target, double tolerance,
                         int32_t replicas, int32_t ready);

#define CPS_HPA_DEFAULT_TOLERANCE 0.1

#endif
