/*
 * Table tests for lib/behavior.c: the HPA autoscaling/v2 behavior rails and
 * the HPA replica calculator, against the Kubernetes HPA controller's rules
 * (pkg/controller/podautoscaler/horizontal.go, replica_calculator.go).
 *
 * Every expected value is worked out by hand from those rules; the
 * arithmetic is in the comment above each row. Times are written as "N s
 * ago" relative to a fixed NOW_MS. "In the window" always means strictly
 * after now - W (Go's After), so an entry exactly W old does not count.
 *
 * Float notes used below (IEEE-754 binary64, round to nearest even):
 *   double(0.1)  = 0.1000000000000000055511...
 *   double(0.9)  = 0.9000000000000000222044...
 *   double(1.1)  = 1.1000000000000000888178...
 *   double(0.8)  = 0.8000000000000000444089...
 *   double(0.55) = 0.5500000000000000444089...
 *   double(0.45) = 0.4500000000000000111022...
 *   a - b for a, b within a factor of 2 is exact (Sterbenz); x / 0.5 is exact.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "behavior.h"
#include "cps_test.h"

#define NOW_MS INT64_C(1000000000)
#define AGO(s) (NOW_MS - (int64_t)(s) * 1000)
#define AGO_MS(ms) (NOW_MS - (int64_t)(ms))
#define AT(s) ((int64_t)(s) * 1000)

#define TABLE_RING_CAPACITY 16
#define MAX_ROW_ENTRIES 8
#define INTERVAL_MS 15000

#define PCT(v, p) {CPS_SCALING_PERCENT, (v), (p)}
#define PODS(v, p) {CPS_SCALING_PODS, (v), (p)}
#define RULES(window, select, n, ...) {(window), (select), (n), {__VA_ARGS__}}

/* Kubernetes' defaults, spelled out. */
#define K8S_UP RULES(0, CPS_SELECT_MAX, 2, PCT(100, 15), PODS(4, 15))
#define K8S_DOWN RULES(300, CPS_SELECT_MAX, 1, PCT(100, 15))
#define K8S_DEFAULT {K8S_UP, K8S_DOWN}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct timed {
    int64_t t_ms;
    int32_t value;
};

static const char *limit_name(enum cps_behavior_limit limit)
{
    switch (limit) {
    case CPS_BEHAVIOR_WITHIN_RANGE: return "DesiredWithinRange";
    case CPS_BEHAVIOR_SCALE_UP_LIMIT: return "ScaleUpLimit";
    case CPS_BEHAVIOR_SCALE_DOWN_LIMIT: return "ScaleDownLimit";
    case CPS_BEHAVIOR_TOO_MANY: return "TooManyReplicas";
    case CPS_BEHAVIOR_TOO_FEW: return "TooFewReplicas";
    }
    return "?";
}

/* ---- cps_behavior_default ---------------------------------------------- */

static void test_default_behavior(void)
{
    struct cps_behavior b;
    memset(&b, 0xa5, sizeof(b));
    cps_behavior_default(&b);

    ASSERT_EQ(b.scale_up.stabilization_window_seconds, 0);
    ASSERT_EQ(b.scale_up.select_policy, CPS_SELECT_MAX);
    ASSERT_EQ(b.scale_up.n_policies, 2);
    ASSERT_EQ(b.scale_up.policies[0].type, CPS_SCALING_PERCENT);
    ASSERT_EQ(b.scale_up.policies[0].value, 100);
    ASSERT_EQ(b.scale_up.policies[0].period_seconds, 15);
    ASSERT_EQ(b.scale_up.policies[1].type, CPS_SCALING_PODS);
    ASSERT_EQ(b.scale_up.policies[1].value, 4);
    ASSERT_EQ(b.scale_up.policies[1].period_seconds, 15);

    ASSERT_EQ(b.scale_down.stabilization_window_seconds, 300);
    ASSERT_EQ(b.scale_down.select_policy, CPS_SELECT_MAX);
    ASSERT_EQ(b.scale_down.n_policies, 1);
    ASSERT_EQ(b.scale_down.policies[0].type, CPS_SCALING_PERCENT);
    ASSERT_EQ(b.scale_down.policies[0].value, 100);
    ASSERT_EQ(b.scale_down.policies[0].period_seconds, 15);
}

/* ---- cps_behavior_normalize tables ------------------------------------- */

struct normalize_row {
    const char *name;
    struct cps_behavior behavior;
    int n_recs;
    struct timed recs[MAX_ROW_ENTRIES];   /* past recommendations */
    int n_events;
    struct timed events[MAX_ROW_ENTRIES]; /* past scale events (signed) */
    int32_t current, recommendation, min, max;
    int32_t want_stabilized, want_desired;
    enum cps_behavior_limit want_limit;
};

/*
 * Run one table at NOW_MS. Besides the result, check the recording rule:
 * inside [min, max] the raw recommendation (negative -> 0) is appended at
 * now; outside it nothing is recorded.
 */
static void run_normalize_table(const struct normalize_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct normalize_row *row = &rows[i];
        struct cps_behavior_result result;
        struct cps_history *history;
        int in_range = row->current >= row->min && row->current <= row->max;

        CPS_ROW_BEGIN();
        history = cps_history_new(TABLE_RING_CAPACITY, TABLE_RING_CAPACITY);
        ASSERT_TRUE(history != NULL);
        if (!history) {
            CPS_ROW_END(row->name);
            continue;
        }
        for (int r = 0; r < row->n_recs; r++)
            cps_history_add_recommendation(history, row->recs[r].t_ms, row->recs[r].value);
        for (int e = 0; e < row->n_events; e++)
            cps_history_add_scale_event(history, row->events[e].t_ms, row->events[e].value);

        cps_behavior_normalize(&row->behavior, history, NOW_MS, row->current,
                               row->recommendation, row->min, row->max, &result);

        ASSERT_EQ(result.stabilized, row->want_stabilized);
        ASSERT_EQ(result.desired, row->want_desired);
        if (result.limit != row->want_limit)
            CPS_FAIL_AT("limit == %s, expected %s", limit_name(result.limit),
                        limit_name(row->want_limit));
        if (in_range) {
            int32_t raw = row->recommendation < 0 ? 0 : row->recommendation;
            const struct cps_history_entry *last;
            ASSERT_EQ(result.stabilization_held, result.stabilized != raw);
            ASSERT_EQ(history->rec_count, (size_t)row->n_recs + 1);
            last = &history->recommendations[(history->rec_start + history->rec_count - 1) %
                                             history->rec_capacity];
            ASSERT_EQ(cps_history_entry_t_ms(last), NOW_MS);
            ASSERT_EQ(last->value, raw);
        } else {
            ASSERT_EQ(history->rec_count, (size_t)row->n_recs);
            ASSERT_EQ(result.stabilization_held, 0);
        }
        cps_history_free(history);
        CPS_ROW_END(row->name);
    }
}

/*
 * Default behavior, scaling up with no history: up window 0 and an empty
 * down window leave stabilized = recommendation; the limit is
 * max(ceil(current * 2.0), current + 4).
 */
static const struct normalize_row default_up_rows[] = {
    /* 1 pod: Percent ceil(1*2.0)=2, Pods 1+4=5 -> 5; max 100 > 5 -> ScaleUpLimit. */
    {"default up: 1 pod, +4 pods beats +100%", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     1, 10, 1, 100, 10, 5, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* 3 pods: ceil(3*2.0)=6, 3+4=7 -> 7. */
    {"default up: 3 pods, +4 pods (7) beats +100% (6)", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     3, 20, 1, 100, 20, 7, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* 4 pods: ceil(4*2.0)=8, 4+4=8 -> 8. */
    {"default up: 4 pods, the two policies tie at 8", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     4, 20, 1, 100, 20, 8, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* 5 pods: ceil(5*2.0)=10, 5+4=9 -> 10. */
    {"default up: 5 pods, +100% (10) beats +4 pods (9)", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     5, 20, 1, 100, 20, 10, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* 50 pods: ceil(50*2.0)=100, 54 -> 100; max 1000 > 100. */
    {"default up: 50 pods, +100% doubles", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     50, 400, 1, 1000, 400, 100, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* 10 pods: limit max(20, 14) = 20; 15 <= 20 -> DesiredWithinRange. */
    {"default up: desired within the limit", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     10, 15, 1, 100, 15, 15, CPS_BEHAVIOR_WITHIN_RANGE},
    /* limit 20; max 15 is not > 20 -> TooManyReplicas, allowed 15; 30 > 15 -> 15. */
    {"default up: max below the limit -> TooManyReplicas", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     10, 30, 1, 15, 30, 15, CPS_BEHAVIOR_TOO_MANY},
    /* limit 20; max 20 is not > 20 -> TooManyReplicas (a tie goes to max). */
    {"default up: max equal to the limit -> TooManyReplicas", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     10, 30, 1, 20, 30, 20, CPS_BEHAVIOR_TOO_MANY},
    /* current 20 == max: in range; limit 40; max 20 not > 40 -> TooMany, 20. */
    {"default up: already at max", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     20, 25, 1, 20, 25, 20, CPS_BEHAVIOR_TOO_MANY},
    /* rec == current: stabilized 7, neither branch -> DesiredWithinRange. */
    {"default: recommendation equals current", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     7, 7, 1, 100, 7, 7, CPS_BEHAVIOR_WITHIN_RANGE},
};

/* Up window 60 s; down window 0 so that only the up window acts. */
#define UP60 {RULES(60, CPS_SELECT_MAX, 2, PCT(100, 15), PODS(4, 15)), \
              RULES(0, CPS_SELECT_MAX, 1, PCT(100, 15))}

static const struct normalize_row up_window_rows[] = {
    /* up = min(6, 8, 12, new 10) = 6; down (window 0, cutoff now) = 10;
     * 5 raised to 6. Limit max(10, 9) = 10 >= 6 -> within. */
    {"up window: min over the window", UP60,
     3, {{AGO(45), 6}, {AGO(30), 8}, {AGO(15), 12}}, 0, {{0}},
     5, 10, 1, 100, 6, 6, CPS_BEHAVIOR_WITHIN_RANGE},
    /* the 3 at exactly 60 s is not after now-60: up = min(8, 10) = 8. */
    {"up window: entry exactly 60 s old not counted", UP60,
     2, {{AGO(60), 3}, {AGO(30), 8}}, 0, {{0}},
     5, 10, 1, 100, 8, 8, CPS_BEHAVIOR_WITHIN_RANGE},
    /* 59.999 s old counts: up = 3; 5 is not below 3 -> stays 5 = current. */
    {"up window: entry 59.999 s old counted", UP60,
     2, {{AGO_MS(59999), 3}, {AGO(30), 8}}, 0, {{0}},
     5, 10, 1, 100, 5, 5, CPS_BEHAVIOR_WITHIN_RANGE},
    /* scale-down: up = min(12, 4) = 4, down = 4; 10 lowered to 4. Down limit
     * int(10*0.0) = 0; min 1 not < 0 -> TooFew bound 1; 4 >= 1 -> within. */
    {"up window: does not hold a scale-down", UP60,
     1, {{AGO(30), 12}}, 0, {{0}},
     10, 4, 1, 100, 4, 4, CPS_BEHAVIOR_WITHIN_RANGE},
};

static const struct normalize_row down_window_rows[] = {
    /* down = max(10, 8, 6, new 4) = 10, up = 4; 10 stays 10. */
    {"down window: max over 300 s", K8S_DEFAULT,
     3, {{AGO(285), 10}, {AGO(150), 8}, {AGO(15), 6}}, 0, {{0}},
     10, 4, 1, 100, 10, 10, CPS_BEHAVIOR_WITHIN_RANGE},
    /* the 12 at exactly 300 s is out: down = max(7, 4) = 7; 10 -> 7. Down
     * limit int(10*0.0) = 0 -> TooFew bound 1; 7 >= 1 -> within. */
    {"down window: entry exactly 300 s old not counted", K8S_DEFAULT,
     2, {{AGO(300), 12}, {AGO(200), 7}}, 0, {{0}},
     10, 4, 1, 100, 7, 7, CPS_BEHAVIOR_WITHIN_RANGE},
    /* 299 s old counts: down = 12; 10 not above 12 -> 10. */
    {"down window: entry 299 s old counted", K8S_DEFAULT,
     2, {{AGO(299), 12}, {AGO(200), 7}}, 0, {{0}},
     10, 4, 1, 100, 10, 10, CPS_BEHAVIOR_WITHIN_RANGE},
    /* down = max(8, 6, 3) = 8: partly held, 10 -> 8. */
    {"down window: partly holds a scale-down", K8S_DEFAULT,
     2, {{AGO(100), 8}, {AGO(50), 6}}, 0, {{0}},
     10, 3, 1, 100, 8, 8, CPS_BEHAVIOR_WITHIN_RANGE},
    /* up = 12 (window 0), down = max(15, 12) = 15: 10 raised to 12, not
     * lowered. Limit max(20, 14) = 20 -> within. */
    {"down window: does not hold a scale-up", K8S_DEFAULT,
     1, {{AGO(100), 15}}, 0, {{0}},
     10, 12, 1, 100, 12, 12, CPS_BEHAVIOR_WITHIN_RANGE},
    /* no history: stabilized 1. Limit 0; min 4 not < 0 -> TooFew 4. */
    {"down: below min -> TooFewReplicas", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     10, 1, 4, 100, 1, 4, CPS_BEHAVIOR_TOO_FEW},
    /* K8s starts desired at 0 and keeps larger proposals: -3 counts as 0
     * (and 0 is recorded); 10 -> 0 -> TooFew 2. */
    {"down: negative recommendation counts as 0", K8S_DEFAULT, 0, {{0}}, 0, {{0}},
     10, -3, 2, 100, 0, 2, CPS_BEHAVIOR_TOO_FEW},
};

/* Pods policies over 60 s periods, windows 0 to isolate the rate limits. */
#define DOWN_PODS2 {K8S_UP, RULES(0, CPS_SELECT_MAX, 1, PODS(2, 60))}
#define UP_PODS2 {RULES(0, CPS_SELECT_MAX, 1, PODS(2, 60)), K8S_DOWN}
#define UP_NONE {RULES(0, CPS_SELECT_MAX, 0, PODS(0, 0)), K8S_DOWN}
#define UP_DISABLED {RULES(0, CPS_SELECT_DISABLED, 2, PCT(100, 15), PODS(4, 15)), K8S_DOWN}
#define DOWN_DISABLED {K8S_UP, RULES(0, CPS_SELECT_DISABLED, 1, PCT(100, 15))}

static const struct normalize_row period_rows[] = {
    /* start = 8 - 4 = 4: max(ceil(4*2.0)=8, 4+4=8) = 8 = current; 100 > 8
     * -> ScaleUpLimit 8. */
    {"period: +4 pods 10 s ago count", K8S_DEFAULT,
     0, {{0}}, 1, {{AGO(10), 4}},
     8, 20, 1, 100, 20, 8, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* exactly 15 s old: not after now-15; start 8: max(16, 12) = 16. */
    {"period: event exactly 15 s old not counted", K8S_DEFAULT,
     0, {{0}}, 1, {{AGO(15), 4}},
     8, 20, 1, 100, 20, 16, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* 14.999 s old counts: as the first row, 8. */
    {"period: event 14.999 s old counted", K8S_DEFAULT,
     0, {{0}}, 1, {{AGO_MS(14999), 4}},
     8, 20, 1, 100, 20, 8, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* signed sum -2 + 3 = +1: start 9: max(18, 13) = 18. */
    {"period: signed sum of down and up events", K8S_DEFAULT,
     0, {{0}}, 2, {{AGO(10), -2}, {AGO(5), 3}},
     10, 40, 1, 100, 40, 18, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* pods removed come back: start = 4 + 6 = 10: max(20, 14) = 20. */
    {"period: a recent scale-down raises the up start", K8S_DEFAULT,
     0, {{0}}, 1, {{AGO(10), -6}},
     4, 40, 1, 100, 40, 20, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* down Pods 2/60: start = 10 + 2 = 12 -> 10 = current; min 1 < 10 ->
     * ScaleDownLimit 10; 5 < 10 -> 10. */
    {"period: pods removed in the period count back", DOWN_PODS2,
     0, {{0}}, 1, {{AGO(30), -2}},
     10, 5, 1, 100, 5, 10, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    /* start = 10 - 3 = 7 -> 5; ScaleDownLimit 5; 4 < 5 -> 5. */
    {"period: pods added in the period come off the down start", DOWN_PODS2,
     0, {{0}}, 1, {{AGO(30), 3}},
     10, 4, 1, 100, 4, 5, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    /* exactly 60 s old: start 10 -> 8. */
    {"period: down event exactly 60 s old not counted", DOWN_PODS2,
     0, {{0}}, 1, {{AGO(60), -2}},
     10, 5, 1, 100, 5, 8, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    /* up Pods 2/60: start = 10 - 6 = 4 -> 6 < current -> 10; 100 > 10 ->
     * ScaleUpLimit 10 (hold, never shrink). */
    {"period: up limit below current is raised to current", UP_PODS2,
     0, {{0}}, 1, {{AGO(5), 6}},
     10, 15, 1, 100, 15, 10, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* down Pods 2/60: start = 10 + 6 = 16 -> 14 > current -> 10; ScaleDownLimit 10. */
    {"period: down limit above current is lowered to current", DOWN_PODS2,
     0, {{0}}, 1, {{AGO(5), -6}},
     10, 3, 1, 100, 3, 10, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    /* limit 10 - 2 = 8; min 8 not < 8 -> TooFew 8 (a tie goes to min). */
    {"period: min equal to the down limit -> TooFewReplicas", DOWN_PODS2,
     0, {{0}}, 0, {{0}},
     10, 3, 8, 100, 3, 8, CPS_BEHAVIOR_TOO_FEW},
    /* limit 8; min 7 < 8 -> ScaleDownLimit 8. */
    {"period: min below the down limit -> ScaleDownLimit", DOWN_PODS2,
     0, {{0}}, 0, {{0}},
     10, 3, 7, 100, 3, 8, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    /* no up policies, Max: Go's initial INT32_MIN < current -> 5;
     * ScaleUpLimit 5. */
    {"period: no up policies holds at current", UP_NONE, 0, {{0}}, 0, {{0}},
     5, 10, 1, 100, 10, 5, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* Disabled up: limit = current 5; 100 > 5 -> ScaleUpLimit 5. */
    {"select Disabled: no scale-up", UP_DISABLED, 0, {{0}}, 0, {{0}},
     5, 10, 1, 100, 10, 5, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    /* Disabled up at max: limit 5; max 5 not > 5 -> TooMany 5. */
    {"select Disabled at max -> TooManyReplicas", UP_DISABLED, 0, {{0}}, 0, {{0}},
     5, 10, 1, 5, 10, 5, CPS_BEHAVIOR_TOO_MANY},
    /* Disabled down: limit = current 5; min 1 < 5 -> ScaleDownLimit 5. */
    {"select Disabled: no scale-down", DOWN_DISABLED, 0, {{0}}, 0, {{0}},
     5, 2, 1, 100, 2, 5, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
};

/* current outside [min, max]: the nearest bound, no metrics, no recording. */
static const struct normalize_row range_rows[] = {
    {"range: current above max, recommendation higher", K8S_DEFAULT,
     1, {{AGO(30), 12}}, 0, {{0}},
     12, 20, 1, 10, 10, 10, CPS_BEHAVIOR_TOO_MANY},
    {"range: current above max, recommendation lower", K8S_DEFAULT,
     0, {{0}}, 0, {{0}},
     12, 3, 1, 10, 10, 10, CPS_BEHAVIOR_TOO_MANY},
    {"range: current below min, recommendation equal", K8S_DEFAULT,
     0, {{0}}, 0, {{0}},
     1, 1, 3, 10, 3, 3, CPS_BEHAVIOR_TOO_FEW},
    /* not min(10, limit): K8s goes straight to min without the metrics. */
    {"range: current below min, recommendation higher", K8S_DEFAULT,
     0, {{0}}, 0, {{0}},
     2, 10, 3, 10, 3, 3, CPS_BEHAVIOR_TOO_FEW},
};

static void test_normalize_tables(void)
{
    run_normalize_table(default_up_rows, ARRAY_LEN(default_up_rows));
    run_normalize_table(up_window_rows, ARRAY_LEN(up_window_rows));
    run_normalize_table(down_window_rows, ARRAY_LEN(down_window_rows));
    run_normalize_table(period_rows, ARRAY_LEN(period_rows));
    run_normalize_table(range_rows, ARRAY_LEN(range_rows));
}

/* ---- the limit functions alone ----------------------------------------- */

enum direction { UP, DOWN };

struct limit_row {
    const char *name;
    enum direction direction;
    struct cps_scaling_rules rules;
    int n_events;
    struct timed events[MAX_ROW_ENTRIES];
    int32_t current;
    int32_t want;
};

#define UPMIX(select) RULES(0, (select), 2, PCT(100, 60), PODS(4, 60))
#define DOWNMIX(select) RULES(0, (select), 2, PCT(50, 60), PODS(3, 60))
#define UP_MULTI(select) RULES(0, (select), 2, PODS(4, 60), PCT(100, 15))
#define DOWN_MULTI(select) RULES(0, (select), 2, PODS(1, 60), PCT(50, 15))
#define ONE(policy) RULES(0, CPS_SELECT_MAX, 1, policy)

static const struct limit_row limit_rows[] = {
    /* Percent rounding, up: ceil(float64(start) * (1 + float64(v)/100)). */
    /* 3 * 1.5 = 4.5 -> 5. */
    {"percent up: 50% of 3 rounds up to 5", UP, ONE(PCT(50, 60)), 0, {{0}}, 3, 5},
    /* 1 + 10/100 = double(1.1); 10 * double(1.1) = 11 + 8.88e-16, exactly half
     * an ulp (2^-49) above 11 -> ties to even -> 11.0 -> 11. */
    {"percent up: 10% of 10 is exactly 11", UP, ONE(PCT(10, 60)), 0, {{0}}, 10, 11},
    /* 50 * double(1.1) = 55 + 4.44e-15 > half an ulp (3.55e-15) -> 55 + 2^-47
     * -> ceil 56, not 55: Go's float64, no epsilon. */
    {"percent up: 10% of 50 is 56 in float64", UP, ONE(PCT(10, 60)), 0, {{0}}, 50, 56},
    /* 1 * 1.01 -> 2: a small percentage still adds a pod. */
    {"percent up: 1% of 1 still adds a pod", UP, ONE(PCT(1, 60)), 0, {{0}}, 1, 2},
    /* 3 * 3.0 = 9. */
    {"percent up: 200% of 3", UP, ONE(PCT(200, 60)), 0, {{0}}, 3, 9},
    /* Percent rounding, down: int32(float64(start) * (1 - float64(v)/100)). */
    /* 5 * 0.5 = 2.5 -> 2. */
    {"percent down: 50% of 5 truncates to 2", DOWN, ONE(PCT(50, 60)), 0, {{0}}, 5, 2},
    /* 1 - 0.1 = double(0.9); 7 * 0.9 = 6.3 -> 6. */
    {"percent down: 10% of 7 truncates to 6", DOWN, ONE(PCT(10, 60)), 0, {{0}}, 7, 6},
    /* 10 * 0.99 = 9.9 -> 9. */
    {"percent down: 1% of 10 truncates to 9", DOWN, ONE(PCT(1, 60)), 0, {{0}}, 10, 9},
    /* 80/100 = double(0.8); 1 - it = 0.19999999999999995559 (exact);
     * * 5 = 0.99999999999999977796 = 1 - 2^-52 exactly -> int32 -> 0, not 1. */
    {"percent down: 80% of 5 truncates to 0 in float64", DOWN, ONE(PCT(80, 60)), 0, {{0}}, 5, 0},
    /* 1 - double(0.9) = 0.09999999999999997780 (exact); * 10 = 1 - 2^-52 -> 0. */
    {"percent down: 90% of 10 truncates to 0 in float64", DOWN, ONE(PCT(90, 60)), 0, {{0}}, 10, 0},
    /* Pods policies. */
    {"pods up: 5 + 3", UP, ONE(PODS(3, 60)), 0, {{0}}, 5, 8},
    {"pods down: 5 - 3", DOWN, ONE(PODS(3, 60)), 0, {{0}}, 5, 2},
    /* 5 - 8 = -3: the raw limit may go below zero (normalize clamps to min). */
    {"pods down: limit below zero", DOWN, ONE(PODS(8, 60)), 0, {{0}}, 5, -3},
    /* selectPolicy, up: proposals ceil(10*2.0)=20 and 10+4=14. */
    {"select up Max: 20 vs 14", UP, UPMIX(CPS_SELECT_MAX), 0, {{0}}, 10, 20},
    {"select up Min: 20 vs 14", UP, UPMIX(CPS_SELECT_MIN), 0, {{0}}, 10, 14},
    {"select up Disabled: current", UP, UPMIX(CPS_SELECT_DISABLED), 0, {{0}}, 10, 10},
    /* 2 pods: ceil(2*2.0)=4 and 2+4=6. */
    {"select up Max: 4 vs 6", UP, UPMIX(CPS_SELECT_MAX), 0, {{0}}, 2, 6},
    {"select up Min: 4 vs 6", UP, UPMIX(CPS_SELECT_MIN), 0, {{0}}, 2, 4},
    /* selectPolicy, down: proposals int(10*0.5)=5 and 10-3=7. Max = the
     * biggest change = the smallest count. */
    {"select down Max: 5 vs 7", DOWN, DOWNMIX(CPS_SELECT_MAX), 0, {{0}}, 10, 5},
    {"select down Min: 5 vs 7", DOWN, DOWNMIX(CPS_SELECT_MIN), 0, {{0}}, 10, 7},
    {"select down Disabled: current", DOWN, DOWNMIX(CPS_SELECT_DISABLED), 0, {{0}}, 10, 10},
    /* 4 pods: int(4*0.5)=2 and 4-3=1. */
    {"select down Max: 2 vs 1", DOWN, DOWNMIX(CPS_SELECT_MAX), 0, {{0}}, 4, 1},
    {"select down Min: 2 vs 1", DOWN, DOWNMIX(CPS_SELECT_MIN), 0, {{0}}, 4, 2},
    /* Different periods, +4 event 30 s ago: Pods/60 start 4 -> 8; Percent/15
     * start 8 (event outside 15 s) -> 16. */
    {"multi-period up Max: 8 vs 16", UP, UP_MULTI(CPS_SELECT_MAX), 1, {{AGO(30), 4}}, 8, 16},
    {"multi-period up Min: 8 vs 16", UP, UP_MULTI(CPS_SELECT_MIN), 1, {{AGO(30), 4}}, 8, 8},
    /* -4 event 30 s ago: Pods/60 start 12 -> 11; Percent/15 start 8 -> 4. */
    {"multi-period down Max: 11 vs 4", DOWN, DOWN_MULTI(CPS_SELECT_MAX), 1, {{AGO(30), -4}}, 8, 4},
    {"multi-period down Min: 11 vs 4", DOWN, DOWN_MULTI(CPS_SELECT_MIN), 1, {{AGO(30), -4}}, 8, 11},
    /* No policies: Go's initial values come back unchanged. */
    {"no policies up Max: INT32_MIN", UP, RULES(0, CPS_SELECT_MAX, 0, PODS(0, 0)), 0, {{0}},
     5, INT32_MIN},
    {"no policies up Min: INT32_MAX", UP, RULES(0, CPS_SELECT_MIN, 0, PODS(0, 0)), 0, {{0}},
     5, INT32_MAX},
    {"no policies down Max: INT32_MAX", DOWN, RULES(0, CPS_SELECT_MAX, 0, PODS(0, 0)), 0, {{0}},
     5, INT32_MAX},
};

static void test_limit_table(void)
{
    for (size_t i = 0; i < ARRAY_LEN(limit_rows); i++) {
        const struct limit_row *row = &limit_rows[i];
        struct cps_history *history;
        int32_t got;

        CPS_ROW_BEGIN();
        history = cps_history_new(TABLE_RING_CAPACITY, TABLE_RING_CAPACITY);
        ASSERT_TRUE(history != NULL);
        if (!history) {
            CPS_ROW_END(row->name);
            continue;
        }
        for (int e = 0; e < row->n_events; e++)
            cps_history_add_scale_event(history, row->events[e].t_ms, row->events[e].value);
        if (row->direction == UP)
            got = cps_behavior_scale_up_limit(&row->rules, history, NOW_MS, row->current);
        else
            got = cps_behavior_scale_down_limit(&row->rules, history, NOW_MS, row->current);
        ASSERT_EQ(got, row->want);
        cps_history_free(history);
        CPS_ROW_END(row->name);
    }
}

/* ---- history rings ----------------------------------------------------- */

struct capacity_row {
    const char *name;
    struct cps_behavior behavior;
    int64_t interval_ms;
    size_t want_recs, want_events;
};

static const struct capacity_row capacity_rows[] = {
    /* 300000/15000 + 2 = 22; 15000/15000 + 2 = 3 -> floor 4. */
    {"capacity: defaults at 15 s", K8S_DEFAULT, 15000, 22, 4},
    /* 300000/10000 + 2 = 32; 15000/10000 = 1, + 2 = 3 -> 4. */
    {"capacity: defaults at 10 s", K8S_DEFAULT, 10000, 32, 4},
    /* 300000/7000 = 42 (floor), + 2 = 44; 15000/7000 = 2, + 2 = 4. */
    {"capacity: defaults at 7 s", K8S_DEFAULT, 7000, 44, 4},
    /* max(600, 60) s / 15 s + 2 = 42; max(120, 300) s / 15 s + 2 = 22. */
    {"capacity: longest window and longest period, either direction",
     {RULES(600, CPS_SELECT_MAX, 1, PODS(4, 120)), RULES(60, CPS_SELECT_MAX, 1, PCT(10, 300))},
     15000, 42, 22},
    /* windows 0: 0 + 2 = 2 -> floor 4. */
    {"capacity: floor of 4",
     {RULES(0, CPS_SELECT_MAX, 1, PODS(4, 15)), RULES(0, CPS_SELECT_MAX, 1, PCT(10, 15))},
     15000, 4, 4},
    /* interval 0 taken as 1 ms: 300000 + 2, 15000 + 2. */
    {"capacity: interval 0 taken as 1 ms", K8S_DEFAULT, 0, 300002, 15002},
};

static void test_capacity_table(void)
{
    for (size_t i = 0; i < ARRAY_LEN(capacity_rows); i++) {
        const struct capacity_row *row = &capacity_rows[i];
        size_t recs = 0, events = 0;
        CPS_ROW_BEGIN();
        cps_history_capacity_for(&row->behavior, row->interval_ms, &recs, &events);
        ASSERT_EQ(recs, row->want_recs);
        ASSERT_EQ(events, row->want_events);
        CPS_ROW_END(row->name);
    }
}

/* A too-small recommendation ring loses the entry that held the scale-down. */
static void test_ring_overflow_recommendations(void)
{
    struct cps_behavior b = K8S_DEFAULT;
    struct cps_behavior_result r;
    struct cps_history *small = cps_history_new(2, 4);
    struct cps_history *big = cps_history_new(8, 4);
    ASSERT_TRUE(small && big);
    if (!small || !big)
        goto out;

    cps_history_add_recommendation(small, AGO(60), 20);
    cps_history_add_recommendation(small, AGO(45), 5);
    cps_history_add_recommendation(small, AGO(30), 6);
    ASSERT_EQ(small->rec_count, 2);
    ASSERT_EQ(cps_history_entry_t_ms(&small->recommendations[small->rec_start]), AGO(45));
    ASSERT_EQ(small->recommendations[small->rec_start].value, 5);
    ASSERT_EQ(small->recommendations[(small->rec_start + 1) % 2].value, 6);

    cps_history_add_recommendation(big, AGO(60), 20);
    cps_history_add_recommendation(big, AGO(45), 5);
    cps_history_add_recommendation(big, AGO(30), 6);

    /* small: down = max(5, 6, 4) = 6 (the 20 is gone); limit 0 -> bound 1 -> 6. */
    cps_behavior_normalize(&b, small, NOW_MS, 10, 4, 1, 100, &r);
    ASSERT_EQ(r.stabilized, 6);
    ASSERT_EQ(r.desired, 6);
    /* the new entry overwrote the oldest (5 at 45 s): ring is 6, 4. */
    ASSERT_EQ(small->rec_count, 2);
    ASSERT_EQ(small->recommendations[small->rec_start].value, 6);
    ASSERT_EQ(cps_history_entry_t_ms(&small->recommendations[(small->rec_start + 1) % 2]), NOW_MS);

    /* big: down = max(20, 5, 6, 4) = 20; 10 not above 20 -> 10. */
    cps_behavior_normalize(&b, big, NOW_MS, 10, 4, 1, 100, &r);
    ASSERT_EQ(r.stabilized, 10);
    ASSERT_EQ(r.desired, 10);
    ASSERT_EQ(big->rec_count, 4);
out:
    cps_history_free(small);
    cps_history_free(big);
}

static void test_ring_overflow_events(void)
{
    struct cps_history *h = cps_history_new(4, 2);
    ASSERT_TRUE(h != NULL);
    if (!h)
        return;
    cps_history_add_scale_event(h, AGO(12), 1);
    cps_history_add_scale_event(h, AGO(10), 2);
    cps_history_add_scale_event(h, AGO(5), 3);
    /* the +1 was overwritten: 2 + 3 = 5, not 6. */
    ASSERT_EQ(h->event_count, 2);
    ASSERT_EQ(cps_history_change_since(h, NOW_MS, 15000), 5);
    cps_history_free(h);
}

static void test_change_since(void)
{
    struct cps_history *h = cps_history_new(4, 8);
    ASSERT_TRUE(h != NULL);
    if (!h)
        return;
    cps_history_add_scale_event(h, AGO(15), 1);          /* exactly 15 s: out */
    cps_history_add_scale_event(h, AGO_MS(14999), 2);    /* in */
    cps_history_add_scale_event(h, AGO(5), -7);          /* in */
    cps_history_add_scale_event(h, NOW_MS, 4);           /* in (after now - 15) */
    ASSERT_EQ(cps_history_change_since(h, NOW_MS, 15000), 2 - 7 + 4);
    ASSERT_EQ(cps_history_change_since(h, NOW_MS, 15001), 1 + 2 - 7 + 4);
    /* period 0: cutoff = now, nothing is strictly after it. */
    ASSERT_EQ(cps_history_change_since(h, NOW_MS, 0), 0);
    ASSERT_EQ(cps_history_change_since(NULL, NOW_MS, 15000), 0);
    cps_history_free(h);
}

/* Entries keep their whole 64-bit time: times whose high halves differ,
 * negative ones and both ends of the range are counted or left out by
 * the cutoff exactly as the int64 comparison says. */
static void test_history_times_full_range(void)
{
    static const int64_t times[] = {INT64_MIN + 1, -4294967296LL - 1, -1, 0,
                                    4294967295LL, 4294967296LL, INT64_MAX - 1};
    size_t n = sizeof times / sizeof times[0];
    struct cps_history *h = cps_history_new(n, n);
    ASSERT_TRUE(h != NULL);
    for (size_t i = 0; i < n; i++) {
        cps_history_add_recommendation(h, times[i], (int32_t)i - 3);
        cps_history_add_scale_event(h, times[i], (int32_t)1 << i);
    }
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(cps_history_entry_t_ms(&h->recommendations[i]), times[i]);
        ASSERT_EQ(h->recommendations[i].value, (int32_t)i - 3);
    }
    /* strictly after now - period: from 2^32 ms on, the events 1 << 5 and 1 << 6 */
    ASSERT_EQ(cps_history_change_since(h, INT64_MAX - 1, INT64_MAX - 1 - 4294967295LL),
              (1 << 5) + (1 << 6));
    /* from -1 on (cutoff -2^32 - 1 is not after itself): 1 << 2 ... 1 << 6 */
    ASSERT_EQ(cps_history_change_since(h, 0, 4294967297LL),
              (1 << 2) + (1 << 3) + (1 << 4) + (1 << 5) + (1 << 6));
    cps_history_free(h);
}

static void test_history_lifecycle(void)
{
    struct cps_history *h = cps_history_new(0, 0);
    ASSERT_TRUE(h != NULL);
    if (h) {
        /* zero capacity keeps nothing */
        cps_history_add_recommendation(h, NOW_MS, 3);
        cps_history_add_scale_event(h, NOW_MS, 3);
        ASSERT_EQ(h->rec_count, 0);
        ASSERT_EQ(h->event_count, 0);
        ASSERT_EQ(cps_history_change_since(h, NOW_MS, 15000), 0);
        cps_history_free(h);
    }
    cps_history_free(NULL);

    h = cps_history_new(3, 3);
    ASSERT_TRUE(h != NULL);
    if (!h)
        return;
    cps_history_add_recommendation(h, AGO(10), 3);
    cps_history_add_scale_event(h, AGO(10), 3);
    cps_history_clear(h);
    ASSERT_EQ(h->rec_count, 0);
    ASSERT_EQ(h->event_count, 0);
    ASSERT_EQ(cps_history_change_since(h, NOW_MS, 15000), 0);
    cps_history_free(h);
}

/* K8s records the current count on its first look at a target, so the
 * first tick cannot scale down while the scale-down window is non-zero. */
static void test_record_initial(void)
{
    struct cps_behavior b = K8S_DEFAULT;
    struct cps_behavior_result r;
    struct cps_history *h = cps_history_new(8, 8);
    ASSERT_TRUE(h != NULL);
    if (!h)
        return;
    cps_history_record_initial(h, NOW_MS, 10);
    cps_history_record_initial(h, NOW_MS, 99); /* no-op: not the first */
    ASSERT_EQ(h->rec_count, 1);
    ASSERT_EQ(h->recommendations[h->rec_start].value, 10);
    /* down = max(10, 4) = 10 (t = now is after now-300); up window 0 does
     * not see t = now; 10 stays 10. */
    cps_behavior_normalize(&b, h, NOW_MS, 10, 4, 1, 100, &r);
    ASSERT_EQ(r.stabilized, 10);
    ASSERT_EQ(r.desired, 10);
    ASSERT_EQ(r.stabilization_held, 1);
    ASSERT_EQ(h->rec_count, 2);
    cps_history_free(h);
}

/* NULL history: nothing in the windows, nothing recorded, no events. */
static void test_null_history(void)
{
    struct cps_behavior b = K8S_DEFAULT;
    struct cps_behavior_result r;
    /* as "default up: 3 pods": 7. */
    cps_behavior_normalize(&b, NULL, NOW_MS, 3, 20, 1, 100, &r);
    ASSERT_EQ(r.stabilized, 20);
    ASSERT_EQ(r.desired, 7);
    ASSERT_EQ(r.limit, CPS_BEHAVIOR_SCALE_UP_LIMIT);
}

/* ---- cps_hpa_replicas -------------------------------------------------- */

struct hpa_row {
    const char *name;
    double utilization, target, tolerance;
    int32_t replicas, ready;
    int32_t want;
};

#define TOL CPS_HPA_DEFAULT_TOLERANCE

static const struct hpa_row hpa_rows[] = {
    /* 0.75/0.7 = 1.0714: |1 - r| = 0.0714 <= 0.1 -> keep. */
    {"hpa: within tolerance above", 0.75, 0.7, TOL, 10, 10, 10},
    /* 0.65/0.7 = 0.9286: 0.0714 <= 0.1 -> keep. */
    {"hpa: within tolerance below", 0.65, 0.7, TOL, 10, 10, 10},
    /* double(0.55)/0.5 = double(1.1) (exact); 1 - it = -0.10000000000000008882
     * (exact), above double(0.1) -> not within; 10 * double(1.1) ties to 11.0
     * -> ceil 11. The upper edge of the band scales. */
    {"hpa: ratio 1.1 in float64 scales up", 0.55, 0.5, TOL, 10, 10, 11},
    /* double(0.45)/0.5 = double(0.9); 1 - it = 0.09999999999999997780 <=
     * double(0.1) -> keep. The lower edge of the band holds. */
    {"hpa: ratio 0.9 in float64 holds", 0.45, 0.5, TOL, 10, 10, 10},
    /* 0.44/0.5 = 0.88: outside; ceil(8.8) = 9. */
    {"hpa: just below the band scales down", 0.44, 0.5, TOL, 10, 10, 9},
    /* double(0.9)/double(0.6) = 1.50000000000000009 -> rounds to 1.5; * 4 = 6. */
    {"hpa: plain scale-up", 0.9, 0.6, TOL, 4, 4, 6},
    /* double(0.8)/double(0.6) = 1.33333333333333345679 -> 1.3333333333333334813
     * (nearest); * 9 = 12.0000000000000013 -> 12 + 2^-49 (above half an ulp)
     * -> ceil 13, not 12: no epsilon. */
    {"hpa: ceil of 12.000000000000002 is 13", 0.8, 0.6, TOL, 9, 9, 13},
    /* double(0.2)/double(0.6) -> 0.33333333333333337034 (nearest); * 9 =
     * 3.00000000000000033 -> 3 + 2^-51 -> ceil 4, not 3. */
    {"hpa: ceil of 3.0000000000000004 is 4", 0.2, 0.6, TOL, 9, 9, 4},
    /* 2 unready, ratio 1.8 > 1: new = (0.9*8)/(0.5*10) = 7.2/5 = 1.44;
     * outside, no flip -> ceil(1.44 * 10) = ceil(14.4) = 15 (ceil(1.8*8) = 15
     * too, but by a different road: see the next rows). */
    {"hpa: unready pods at 0% on a scale-up", 0.9, 0.5, TOL, 10, 8, 15},
    /* ratio 1.3; new = (0.65*8)/(0.5*10) = 5.2/5 = 1.04 -> within -> keep
     * (ignoring the unready pods would give ceil(1.3*8) = 11). */
    {"hpa: unready, rebalanced ratio within tolerance", 0.65, 0.5, TOL, 10, 8, 10},
    /* ratio 1.2; new = (0.6*5)/(0.5*10) = 3/5 = 0.6 < 1: direction flips ->
     * keep (not ceil(0.6*10) = 6, nor ceil(1.2*5) = 6). */
    {"hpa: unready, direction flips -> keep", 0.6, 0.5, TOL, 10, 5, 10},
    /* ratio 1.05 (the first tolerance check is skipped with unready pods);
     * new = (0.525*9)/5 = 0.945 < 1 -> flip (and within) -> keep. */
    {"hpa: unready, small scale-up flips -> keep", 0.525, 0.5, TOL, 10, 9, 10},
    /* ratio exactly 1.0 is not a scale-up: within -> keep. */
    {"hpa: unready, ratio exactly 1", 0.5, 0.5, TOL, 10, 8, 10},
    /* no ready pods: no metrics, K8s errors out -> keep. */
    {"hpa: no ready pods keeps", 0.9, 0.5, TOL, 10, 0, 10},
    /* ratio 0.4 <= 1: unready pods are not used; 0.6 > 0.1 ->
     * ceil(0.4 * 6) = ceil(2.4000000000000004) = 3 (over the ready pods). */
    {"hpa: scale-down with unready pods counts ready only", 0.2, 0.5, TOL, 10, 6, 3},
    /* ratio 0.94: within -> keep. */
    {"hpa: scale-down with unready pods within tolerance", 0.47, 0.5, TOL, 10, 6, 10},
    /* ratio 0: |1 - 0| = 1 -> ceil(0 * 10) = 0 (min/max applied later). */
    {"hpa: zero utilization proposes 0", 0.0, 0.5, TOL, 10, 10, 0},
    /* ready > replicas: no unready pods; double(0.9)/0.5 = double(1.8);
     * * 5 = 9.0000000000000002 -> 9.0 -> 9. */
    {"hpa: more ready than replicas", 0.9, 0.5, TOL, 4, 5, 9},
    /* tolerance 0: 0.51/0.5 = 1.02 -> ceil(10.2) = 11. */
    {"hpa: tolerance 0 scales on any change", 0.51, 0.5, 0.0, 10, 10, 11},
    {"hpa: target 0 keeps", 0.5, 0.0, TOL, 10, 10, 10},
    {"hpa: NaN utilization keeps", NAN, 0.5, TOL, 10, 10, 10},
    {"hpa: negative utilization keeps", -0.5, 0.5, TOL, 10, 10, 10},
};

static void test_hpa_table(void)
{
    for (size_t i = 0; i < ARRAY_LEN(hpa_rows); i++) {
        const struct hpa_row *row = &hpa_rows[i];
        CPS_ROW_BEGIN();
        ASSERT_EQ(cps_hpa_replicas(row->utilization, row->target, row->tolerance, row->replicas,
                                   row->ready),
                  row->want);
        CPS_ROW_END(row->name);
    }
}

/* ---- multi-step scenarios ---------------------------------------------- */

struct step {
    int64_t t_ms;
    int32_t recommendation;
    int32_t want_current; /* before the decision */
    int32_t want_stabilized, want_desired;
    enum cps_behavior_limit want_limit;
};

/*
 * Replay decisions: at each step normalize, then (as the caller does after a
 * successful PATCH) record the change as a scale event and move current.
 */
static void run_scenario(const char *name, const struct cps_behavior *b, int32_t start,
                         int32_t min, int32_t max, const struct step *steps, size_t n,
                         size_t want_rec_capacity, size_t want_event_capacity)
{
    size_t rec_capacity, event_capacity;
    struct cps_history *h;
    int32_t current = start;
    char row_name[160];

    cps_history_capacity_for(b, INTERVAL_MS, &rec_capacity, &event_capacity);
    CPS_ROW_BEGIN();
    ASSERT_EQ(rec_capacity, want_rec_capacity);
    ASSERT_EQ(event_capacity, want_event_capacity);
    snprintf(row_name, sizeof(row_name), "%s: ring sizes", name);
    CPS_ROW_END(row_name);

    h = cps_history_new(rec_capacity, event_capacity);
    ASSERT_TRUE(h != NULL);
    if (!h)
        return;
    for (size_t i = 0; i < n; i++) {
        const struct step *s = &steps[i];
        struct cps_behavior_result r;
        CPS_ROW_BEGIN();
        ASSERT_EQ(current, s->want_current);
        cps_behavior_normalize(b, h, s->t_ms, current, s->recommendation, min, max, &r);
        ASSERT_EQ(r.stabilized, s->want_stabilized);
        ASSERT_EQ(r.desired, s->want_desired);
        if (r.limit != s->want_limit)
            CPS_FAIL_AT("limit == %s, expected %s", limit_name(r.limit),
                        limit_name(s->want_limit));
        if (r.desired != current) {
            cps_history_add_scale_event(h, s->t_ms, r.desired - current);
            current = r.desired;
        }
        snprintf(row_name, sizeof(row_name), "%s: t=%llds", name, (long long)(s->t_ms / 1000));
        CPS_ROW_END(row_name);
    }
    cps_history_free(h);
}

/*
 * Default behavior, 1 pod, a constant recommendation of 40, max 50: the
 * classic ramp. Each +N event is exactly 15 s old at the next decision and
 * no longer counts, so each step starts its period from the current count.
 *   t=0:  start 1:  max(2, 5)   = 5   (+4)
 *   t=15: start 5:  max(10, 9)  = 10  (+5)
 *   t=30: start 10: max(20, 14) = 20  (+10)
 *   t=45: start 20: max(40, 24) = 40 >= 40 -> within (+20)
 *   t=60: 40 == 40.
 * Stabilized is 40 throughout (up window 0; the down window only holds
 * values of 40).
 */
static const struct step ramp_steps[] = {
    {AT(0), 40, 1, 40, 5, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    {AT(15), 40, 5, 40, 10, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    {AT(30), 40, 10, 40, 20, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    {AT(45), 40, 20, 40, 40, CPS_BEHAVIOR_WITHIN_RANGE},
    {AT(60), 40, 40, 40, 40, CPS_BEHAVIOR_WITHIN_RANGE},
};

/*
 * Up: K8s default. Down: window 60 s, Pods 2 per 30 s. min 1, max 20.
 * Rings from cps_history_capacity_for at 15 s: recommendations 60/15 + 2 = 6,
 * events max(15, 30)/15 + 2 = 4 (both rings wrap during the run).
 *
 * t    cur rec  stabilization (down window is (t-60, t])      rate limit
 * 0    2   9    up 9, down 9 -> 9                             start 2: max(4, 6) = 6 -> 6 ScaleUpLimit (+4)
 * 15   6   9    down max(9@0, 9) = 9 -> 9                     +4@0 is 15 s old: start 6: max(12, 10) = 12 -> 9 (+3)
 * 30   9   25   down 25 -> 25                                 +3@15 out: start 9: max(18, 13) = 18 -> 18 ScaleUpLimit (+9)
 * 45   18  25   -> 25                                         start 18: max(36, 22) = 36; max 20 -> 20 TooMany (+2)
 * 60   20  4    up 4; down max(9@15, 25@30, 25@45, 4) = 25 -> 20 (held)
 * 75   20  4    down max(25@30, 25@45, 4@60, 4) = 25 -> 20
 * 90   20  4    down max(25@45, 4, 4, 4) = 25 -> 20
 * 105  20  4    25@45 is 60 s old: down 4 -> 4                events in (75,105]: none; start 20 - 2 = 18 ScaleDownLimit (-2)
 * 120  18  4    -> 4                                          -2@105: start 20 -> 18 = current: 18 ScaleDownLimit
 * 135  18  4    -> 4                                          -2@105 is 30 s old: start 18 -> 16 ScaleDownLimit (-2)
 * 150  16  4    -> 4                                          -2@135: start 18 -> 16 = current: 16 ScaleDownLimit
 * 165  16  4    -> 4                                          start 16 -> 14 ScaleDownLimit (-2)
 * 180  14  15   up 15; down max(4, 4, 4, 15) = 15 -> 15       -2@165 out: start 14: max(28, 18); max 20 -> 15 within (+1)
 * 195  15  4    up 4; down max(4@150, 4@165, 15@180, 4) = 15 -> 15 = current (held)
 */
#define SCENARIO_BEHAVIOR {K8S_UP, RULES(60, CPS_SELECT_MAX, 1, PODS(2, 30))}

static const struct step window_steps[] = {
    {AT(0), 9, 2, 9, 6, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    {AT(15), 9, 6, 9, 9, CPS_BEHAVIOR_WITHIN_RANGE},
    {AT(30), 25, 9, 25, 18, CPS_BEHAVIOR_SCALE_UP_LIMIT},
    {AT(45), 25, 18, 25, 20, CPS_BEHAVIOR_TOO_MANY},
    {AT(60), 4, 20, 20, 20, CPS_BEHAVIOR_WITHIN_RANGE},
    {AT(75), 4, 20, 20, 20, CPS_BEHAVIOR_WITHIN_RANGE},
    {AT(90), 4, 20, 20, 20, CPS_BEHAVIOR_WITHIN_RANGE},
    {AT(105), 4, 20, 4, 18, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    {AT(120), 4, 18, 4, 18, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    {AT(135), 4, 18, 4, 16, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    {AT(150), 4, 16, 4, 16, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    {AT(165), 4, 16, 4, 14, CPS_BEHAVIOR_SCALE_DOWN_LIMIT},
    {AT(180), 15, 14, 15, 15, CPS_BEHAVIOR_WITHIN_RANGE},
    {AT(195), 4, 15, 15, 15, CPS_BEHAVIOR_WITHIN_RANGE},
};

static void test_scenarios(void)
{
    const struct cps_behavior defaults = K8S_DEFAULT;
    const struct cps_behavior windowed = SCENARIO_BEHAVIOR;
    /* defaults: 300/15 + 2 = 22 recommendations, 15/15 + 2 = 3 -> 4 events. */
    run_scenario("scenario ramp", &defaults, 1, 1, 50, ramp_steps, ARRAY_LEN(ramp_steps), 22, 4);
    run_scenario("scenario windows", &windowed, 2, 1, 20, window_steps, ARRAY_LEN(window_steps),
                 6, 4);
}

int main(void)
{
    CPS_RUN(test_default_behavior);
    test_normalize_tables();
    test_limit_table();
    test_capacity_table();
    CPS_RUN(test_ring_overflow_recommendations);
    CPS_RUN(test_ring_overflow_events);
    CPS_RUN(test_change_since);
    CPS_RUN(test_history_times_full_range);
    CPS_RUN(test_history_lifecycle);
    CPS_RUN(test_record_initial);
    CPS_RUN(test_null_history);
    test_hpa_table();
    test_scenarios();
    CPS_TEST_END();
}
