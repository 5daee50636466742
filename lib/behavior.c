/*
 * The HPA autoscaling/v2 `behavior` rails and the HPA replica calculator,
 * reproducing the Kubernetes HPA controller
 * (pkg/controller/podautoscaler/horizontal.go, replica_calculator.go):
 * the same comparisons (Go's strict After/Before), the same int32 results
 * and the same float64 arithmetic, in the same order, so that a Percent
 * policy or a utilization ratio rounds exactly as it does in Kubernetes.
 */
#include "behavior.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CPS_MS_PER_SECOND 1000
#define CPS_PERCENT_SCALE 100.0 /* Percent policies: value / 100 */

/* Kubernetes' defaults (autoscaling/v2 SetDefaults_HorizontalPodAutoscalerBehavior). */
#define CPS_DEFAULT_SCALE_UP_WINDOW_S 0
#define CPS_DEFAULT_SCALE_DOWN_WINDOW_S 300
#define CPS_DEFAULT_PERIOD_S 15
#define CPS_DEFAULT_SCALE_UP_PERCENT 100
#define CPS_DEFAULT_SCALE_UP_PODS 4
#define CPS_DEFAULT_SCALE_DOWN_PERCENT 100

/*
 * Ring sizing: with decisions at least interval apart, at most span/interval
 * entries are strictly inside a span; one more for the entry being added and
 * one for an entry sitting exactly on the cutoff. The floor keeps tiny
 * configurations (window 0, 15 s periods) from living on a knife edge.
 */
#define CPS_HISTORY_SLACK 2
#define CPS_HISTORY_MIN_CAPACITY 4
#define CPS_HISTORY_MIN_INTERVAL_MS 1

void cps_behavior_default(struct cps_behavior *behavior)
{
    memset(behavior, 0, sizeof(*behavior));

    behavior->scale_up.stabilization_window_seconds = CPS_DEFAULT_SCALE_UP_WINDOW_S;
    behavior->scale_up.select_policy = CPS_SELECT_MAX;
    behavior->scale_up.n_policies = 2;
    behavior->scale_up.policies[0].type = CPS_SCALING_PERCENT;
    behavior->scale_up.policies[0].value = CPS_DEFAULT_SCALE_UP_PERCENT;
    behavior->scale_up.policies[0].period_seconds = CPS_DEFAULT_PERIOD_S;
    behavior->scale_up.policies[1].type = CPS_SCALING_PODS;
    behavior->scale_up.policies[1].value = CPS_DEFAULT_SCALE_UP_PODS;
    behavior->scale_up.policies[1].period_seconds = CPS_DEFAULT_PERIOD_S;

    behavior->scale_down.stabilization_window_seconds = CPS_DEFAULT_SCALE_DOWN_WINDOW_S;
    behavior->scale_down.select_policy = CPS_SELECT_MAX;
    behavior->scale_down.n_policies = 1;
    behavior->scale_down.policies[0].type = CPS_SCALING_PERCENT;
    behavior->scale_down.policies[0].value = CPS_DEFAULT_SCALE_DOWN_PERCENT;
    behavior->scale_down.policies[0].period_seconds = CPS_DEFAULT_PERIOD_S;
}

/* ---- small arithmetic helpers ------------------------------------------ */

static int32_t saturate_i32(int64_t value)
{
    if (value > INT32_MAX)
        return INT32_MAX;
    if (value < INT32_MIN)
        return INT32_MIN;
    return (int32_t)value;
}

/*
 * Go's int32(f) for an already-rounded float64: truncation toward zero, as
 * C's cast does. Out-of-range values are undefined in C (and unspecified in
 * Go), so they saturate here; NaN, which no caller produces, maps to 0.
 */
static int32_t double_to_i32(double value)
{
    if (isnan(value))
        return 0;
    if (value >= (double)INT32_MAX)
        return INT32_MAX;
    if (value <= (double)INT32_MIN)
        return INT32_MIN;
    return (int32_t)value;
}

static int32_t min_i32(int32_t a, int32_t b)
{
    return a <= b ? a : b;
}

static int32_t max_i32(int32_t a, int32_t b)
{
    return a >= b ? a : b;
}

/*
 * now - seconds, as a cutoff for "strictly after": saturating, so that a
 * hostile now_ms cannot overflow (seconds is at most INT32_MAX, so
 * seconds * 1000 always fits in int64).
 */
static int64_t cutoff_ms(int64_t now_ms, int64_t span_ms)
{
    if (span_ms > 0 && now_ms < INT64_MIN + span_ms)
        return INT64_MIN;
    if (span_ms < 0 && now_ms > INT64_MAX + span_ms)
        return INT64_MAX;
    return now_ms - span_ms;
}

static int policy_count(const struct cps_scaling_rules *rules)
{
    if (rules->n_policies < 0)
        return 0;
    if (rules->n_policies > CPS_MAX_SCALING_POLICIES)
        return CPS_MAX_SCALING_POLICIES;
    return rules->n_policies;
}

/* ---- history rings ----------------------------------------------------- */

/*
 * One block: the struct, then the recommendations ring, then the events
 * ring (a ring of capacity 0 simply never keeps anything). One allocation
 * instead of three saves the per-block overhead on every target.
 */
struct cps_history *cps_history_new(size_t rec_capacity, size_t event_capacity)
{
    size_t entry = sizeof(struct cps_history_entry);
    if (rec_capacity > (SIZE_MAX - sizeof(struct cps_history)) / entry / 2 ||
        event_capacity > (SIZE_MAX - sizeof(struct cps_history)) / entry / 2)
        return NULL;
    struct cps_history *history =
        calloc(1, sizeof *history + (rec_capacity + event_capacity) * entry);
    if (!history)
        return NULL;
    history->recommendations = (struct cps_history_entry *)(history + 1);
    history->events = history->recommendations + rec_capacity;
    history->rec_capacity = rec_capacity;
    history->event_capacity = event_capacity;
    return history;
}

void cps_history_free(struct cps_history *history)
{
    free(history);
}

void cps_history_clear(struct cps_history *history)
{
    if (!history)
        return;
    history->rec_start = history->rec_count = 0;
    history->event_start = history->event_count = 0;
}

static size_t capacity_for_span(int64_t span_ms, int64_t interval_ms)
{
    size_t capacity;
    if (span_ms < 0)
        span_ms = 0;
    capacity = (size_t)(span_ms / interval_ms) + CPS_HISTORY_SLACK;
    return capacity < CPS_HISTORY_MIN_CAPACITY ? CPS_HISTORY_MIN_CAPACITY : capacity;
}

static int32_t longest_period_s(const struct cps_scaling_rules *rules)
{
    int32_t longest = 0;
    int n = policy_count(rules);
    for (int i = 0; i < n; i++)
        longest = max_i32(longest, rules->policies[i].period_seconds);
    return longest;
}

/*
 * Recommendations: max(up window, down window) / interval + 2; scale events:
 * longest policy period of either direction / interval + 2 (events of both
 * directions share one ring); both at least CPS_HISTORY_MIN_CAPACITY. An
 * interval below 1 ms is taken as 1 ms.
 */
void cps_history_capacity_for(const struct cps_behavior *behavior, int64_t interval_ms,
                              size_t *rec_capacity, size_t *event_capacity)
{
    int32_t window_s = max_i32(behavior->scale_up.stabilization_window_seconds,
                               behavior->scale_down.stabilization_window_seconds);
    int32_t period_s =
        max_i32(longest_period_s(&behavior->scale_up), longest_period_s(&behavior->scale_down));
    if (interval_ms < CPS_HISTORY_MIN_INTERVAL_MS)
        interval_ms = CPS_HISTORY_MIN_INTERVAL_MS;
    *rec_capacity = capacity_for_span((int64_t)window_s * CPS_MS_PER_SECOND, interval_ms);
    *event_capacity = capacity_for_span((int64_t)period_s * CPS_MS_PER_SECOND, interval_ms);
}

/* Slot for a new entry in a ring of `capacity`: append while there is room,
 * else overwrite the oldest (and advance the start). */
static size_t ring_push(size_t capacity, size_t *start, size_t *count)
{
    size_t slot;
    if (*count < capacity) {
        slot = (*start + *count) % capacity;
        (*count)++;
    } else {
        slot = *start;
        *start = (*start + 1) % capacity;
    }
    return slot;
}

static void set_entry(struct cps_history_entry *entry, int64_t t_ms, int32_t value)
{
    entry->t_high = (uint32_t)((uint64_t)t_ms >> 32);
    entry->t_low = (uint32_t)(uint64_t)t_ms;
    entry->value = value;
}

void cps_history_add_recommendation(struct cps_history *history, int64_t t_ms, int32_t replicas)
{
    size_t slot;
    if (!history || history->rec_capacity == 0)
        return;
    slot = ring_push(history->rec_capacity, &history->rec_start, &history->rec_count);
    set_entry(&history->recommendations[slot], t_ms, replicas);
}

void cps_history_add_scale_event(struct cps_history *history, int64_t t_ms, int32_t change)
{
    size_t slot;
    if (!history || history->event_capacity == 0)
        return;
    slot = ring_push(history->event_capacity, &history->event_start, &history->event_count);
    set_entry(&history->events[slot], t_ms, change);
}

/*
 * K8s getReplicasChangePerPeriod over its scale-up events minus the same over
 * its scale-down events: here one ring of signed changes, summed over those
 * strictly after now - period (an event exactly period old no longer counts).
 */
int32_t cps_history_change_since(const struct cps_history *history, int64_t now_ms,
                                 int64_t period_ms)
{
    int64_t cutoff = cutoff_ms(now_ms, period_ms);
    int64_t sum = 0;
    if (!history)
        return 0;
    /* the ring in order, stepping the slot instead of dividing per entry */
    size_t slot = history->event_start;
    for (size_t i = 0; i < history->event_count; i++) {
        const struct cps_history_entry *event = &history->events[slot];
        if (++slot == history->event_capacity)
            slot = 0;
        if (cps_history_entry_t_ms(event) > cutoff)
            sum += event->value;
    }
    return saturate_i32(sum);
}

/*
 * K8s recordInitialRecommendation: the first time the controller sees a
 * target it records the current count as a recommendation, so the very
 * first decision cannot scale down past the scale-down window.
 */
void cps_history_record_initial(struct cps_history *history, int64_t now_ms, int32_t current)
{
    if (history && history->rec_count == 0)
        cps_history_add_recommendation(history, now_ms, current);
}

/* ---- rate limits (step 2) ---------------------------------------------- */

/* The count at the start of a policy's period: current minus the signed sum
 * of the changes made in it (pods added come off, pods removed go back). */
static int32_t period_start_replicas(const struct cps_history *history, int64_t now_ms,
                                     int32_t current, int32_t period_seconds)
{
    int64_t period_ms = (int64_t)period_seconds * CPS_MS_PER_SECOND;
    return saturate_i32((int64_t)current - cps_history_change_since(history, now_ms, period_ms));
}

/*
 * One policy's proposal from the count at the start of its period. Up
 * (K8s calculateScaleUpLimitWithScalingRules): Pods start + value, Percent
 * ceil(float64(start) * (1 + float64(value)/100)), rounded up so that a small
 * percentage still adds a pod. Down (calculateScaleDownLimitWithBehaviors):
 * Pods start - value, Percent int32(float64(start) * (1 - float64(value)/100)),
 * truncated, so a scale-down never removes more than the percentage.
 * Returns 0 for a type validation rejects (K8s never sees one).
 */
static int policy_proposal(const struct cps_scaling_policy *policy, int32_t start, int up,
                           int32_t *proposed)
{
    double share = (double)policy->value / CPS_PERCENT_SCALE;
    switch (policy->type) {
    case CPS_SCALING_PODS:
        *proposed = saturate_i32((int64_t)start + (up ? policy->value : -(int64_t)policy->value));
        return 1;
    case CPS_SCALING_PERCENT:
        *proposed = up ? double_to_i32(ceil((double)start * (1 + share)))
                       : double_to_i32((double)start * (1 - share));
        return 1;
    default:
        return 0;
    }
}

/*
 * The limit the rules put on a change in one direction. Max (the default,
 * and any unknown value) selects the policy that allows the biggest change:
 * the largest proposal up, the smallest down; Min the opposite; Disabled
 * keeps current. With no policies the result is Go's initial value
 * (INT32_MIN when selecting the largest, INT32_MAX when the smallest), which
 * the caller then clamps.
 */
static int32_t scale_limit(const struct cps_scaling_rules *rules,
                           const struct cps_history *history, int64_t now_ms, int32_t current,
                           int up)
{
    if (rules->select_policy == CPS_SELECT_DISABLED)
        return current;
    int want_largest = (rules->select_policy == CPS_SELECT_MIN) != up;
    int32_t result = want_largest ? INT32_MIN : INT32_MAX;
    int n = policy_count(rules);
    for (int i = 0; i < n; i++) {
        const struct cps_scaling_policy *policy = &rules->policies[i];
        int32_t start = period_start_replicas(history, now_ms, current, policy->period_seconds);
        int32_t proposed;
        if (!policy_proposal(policy, start, up, &proposed))
            continue;
        result = want_largest ? max_i32(result, proposed) : min_i32(result, proposed);
    }
    return result;
}

int32_t cps_behavior_scale_up_limit(const struct cps_scaling_rules *rules,
                                    const struct cps_history *history, int64_t now_ms,
                                    int32_t current)
{
    return scale_limit(rules, history, now_ms, current, 1);
}

int32_t cps_behavior_scale_down_limit(const struct cps_scaling_rules *rules,
                                      const struct cps_history *history, int64_t now_ms,
                                      int32_t current)
{
    return scale_limit(rules, history, now_ms, current, 0);
}

/* ---- normalize (steps 1-3) --------------------------------------------- */

/*
 * K8s stabilizeRecommendationWithBehaviors: the current count raised to the
 * lowest recommendation of the up window and lowered to the highest of the
 * down window (both including the new one, both "strictly after now - W"),
 * then the raw recommendation is recorded. K8s reuses a slot older than both
 * windows; the ring overwrites its oldest entry instead, which is the same
 * thing while the ring is sized by cps_history_capacity_for.
 */
static int32_t stabilize(const struct cps_behavior *behavior, struct cps_history *history,
                         int64_t now_ms, int32_t current, int32_t recommendation)
{
    int32_t up = recommendation;
    int32_t down = recommendation;
    int32_t stabilized = current;

    if (history) {
        int64_t up_cutoff = cutoff_ms(
            now_ms, (int64_t)behavior->scale_up.stabilization_window_seconds * CPS_MS_PER_SECOND);
        int64_t down_cutoff = cutoff_ms(
            now_ms, (int64_t)behavior->scale_down.stabilization_window_seconds * CPS_MS_PER_SECOND);
        size_t slot = history->rec_start;
        for (size_t i = 0; i < history->rec_count; i++) {
            const struct cps_history_entry *rec = &history->recommendations[slot];
            if (++slot == history->rec_capacity)
                slot = 0;
            int64_t t_ms = cps_history_entry_t_ms(rec);
            if (t_ms > up_cutoff)
                up = min_i32(up, rec->value);
            if (t_ms > down_cutoff)
                down = max_i32(down, rec->value);
        }
    }

    if (stabilized < up)
        stabilized = up;
    if (stabilized > down)
        stabilized = down;

    cps_history_add_recommendation(history, now_ms, recommendation);
    return stabilized;
}

/*
 * K8s convertDesiredReplicasWithBehaviorRate. A scale-up is capped by the
 * policy limit (never below current) and max_replicas, reported as
 * ScaleUpLimit when the policy limit is strictly the tighter bound, else
 * TooManyReplicas; a scale-down symmetrically with min_replicas.
 */
static int32_t rate_limit(const struct cps_behavior *behavior, const struct cps_history *history,
                          int64_t now_ms, int32_t current, int32_t desired, int32_t min_replicas,
                          int32_t max_replicas, enum cps_behavior_limit *limit)
{
    *limit = CPS_BEHAVIOR_WITHIN_RANGE;
    if (desired > current) {
        int32_t up_limit =
            cps_behavior_scale_up_limit(&behavior->scale_up, history, now_ms, current);
        int32_t allowed = max_replicas;
        enum cps_behavior_limit reason = CPS_BEHAVIOR_TOO_MANY;
        if (up_limit < current)
            up_limit = current; /* events still in the period: hold, never shrink */
        if (allowed > up_limit) {
            allowed = up_limit;
            reason = CPS_BEHAVIOR_SCALE_UP_LIMIT;
        }
        if (desired > allowed) {
            *limit = reason;
            return allowed;
        }
    } else if (desired < current) {
        int32_t down_limit =
            cps_behavior_scale_down_limit(&behavior->scale_down, history, now_ms, current);
        int32_t allowed = min_replicas;
        enum cps_behavior_limit reason = CPS_BEHAVIOR_TOO_FEW;
        if (down_limit > current)
            down_limit = current;
        if (allowed < down_limit) {
            allowed = down_limit;
            reason = CPS_BEHAVIOR_SCALE_DOWN_LIMIT;
        }
        if (desired < allowed) {
            *limit = reason;
            return allowed;
        }
    }
    return desired;
}

/*
 * The HPA controller's order (reconcileAutoscaler and
 * normalizeDesiredReplicasWithBehaviors): a current count outside
 * [min, max] goes straight to the nearest bound without touching the
 * history; a negative recommendation counts as 0 (K8s starts desired at 0
 * and only takes larger metric proposals); then stabilize, then rate-limit.
 * The final clamp cannot change a result when min <= max; it only guards
 * against an invalid range.
 */
void cps_behavior_normalize(const struct cps_behavior *behavior, struct cps_history *history,
                            int64_t now_ms, int32_t current, int32_t recommendation,
                            int32_t min_replicas, int32_t max_replicas,
                            struct cps_behavior_result *result)
{
    int32_t desired;
    enum cps_behavior_limit limit;

    memset(result, 0, sizeof(*result));
    if (current > max_replicas || current < min_replicas) {
        int above = current > max_replicas;
        result->stabilized = result->desired = above ? max_replicas : min_replicas;
        result->limit = above ? CPS_BEHAVIOR_TOO_MANY : CPS_BEHAVIOR_TOO_FEW;
        return;
    }
    if (recommendation < 0)
        recommendation = 0;

    result->stabilized = stabilize(behavior, history, now_ms, current, recommendation);
    result->stabilization_held = result->stabilized != recommendation;

    desired = rate_limit(behavior, history, now_ms, current, result->stabilized, min_replicas,
                         max_replicas, &limit);
    if (desired > max_replicas) {
        desired = max_replicas;
        limit = CPS_BEHAVIOR_TOO_MANY;
    }
    if (desired < min_replicas) {
        desired = min_replicas;
        limit = CPS_BEHAVIOR_TOO_FEW;
    }
    result->desired = desired;
    result->limit = limit;
}

/* ---- replica calculator ------------------------------------------------ */

/* Go's int32(math.Ceil(x)), with no epsilon: 3.0000000000000004 gives 4. */
static int32_t ceil_to_i32(double value)
{
    return double_to_i32(ceil(value));
}

/*
 * K8s GetResourceReplicas for one resource metric where every ready pod
 * reports and the replicas - ready unready pods are ignored (no missing
 * pods). Without unready pods, or when not scaling up, the plain rule:
 * |1 - ratio| <= tolerance keeps the count, else ceil(ratio * ready). On a
 * scale-up with unready pods K8s skips that first check and recomputes the
 * ratio with the unready pods at 0 %; it keeps the count if the new ratio is
 * within tolerance or flips direction, else ceil(new ratio * all pods).
 * No ready pods means no metrics, an error in K8s, hence no change; a
 * non-positive or non-finite target or a NaN/negative utilization likewise.
 */
int32_t cps_hpa_replicas(double utilization, double target, double tolerance,
                         int32_t replicas, int32_t ready)
{
    int64_t unready, counted;
    double ratio, new_ratio;
    int32_t new_replicas;

    if (ready <= 0)
        return replicas;
    if (!(target > 0.0) || !isfinite(target) || !(utilization >= 0.0) || !isfinite(utilization))
        return replicas;

    unready = replicas > ready ? (int64_t)replicas - ready : 0;
    ratio = utilization / target;

    if (!(unready > 0 && ratio > 1.0)) {
        if (fabs(1.0 - ratio) <= tolerance)
            return replicas;
        return ceil_to_i32(ratio * (double)ready);
    }

    counted = (int64_t)ready + unready;
    new_ratio = (utilization * (double)ready) / (target * (double)counted);
    if (fabs(1.0 - new_ratio) <= tolerance || (ratio < 1.0 && new_ratio > 1.0) ||
        (ratio > 1.0 && new_ratio < 1.0))
        return replicas;

    new_replicas = ceil_to_i32(new_ratio * (double)counted);
    if ((new_ratio < 1.0 && new_replicas > replicas) || (new_ratio > 1.0 && new_replicas < replicas))
        return replicas;
    return new_replicas;
}
