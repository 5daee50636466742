/*
 * The decision's safety rules: missing data never scales down, min/max and
 * the budget cap hold, paused targets are left alone, a given
 * recommendation only goes through the rails, and the policy follows a
 * load it has learned.
 */
#include <stdlib.h>

#include "cps_test.h"
#include "decide.h"

static struct cps_target make_target(void)
{
    struct cps_target t;
    cps_target_init_defaults(&t);
    t.min_replicas = 2;
    t.max_replicas = 20;
    return t;
}

static struct cps_observation healthy(double qps, int32_t replicas)
{
    struct cps_observation o;
    memset(&o, 0, sizeof o);
    o.qps = qps;
    o.replicas = replicas;
    o.ready_replicas = replicas;
    o.cpu_utilization = qps / (replicas * 100.0);
    o.p95_ms = 20.0 + 1000.0 * log(20.0) / (100.0 - qps / replicas);
    o.cost_per_pod_hour = 0.05;
    return o;
}

struct missing_case {
    const char *name;
    unsigned missing_bit;   /* reported missing by the caller */
    double qps, p95, cpu;   /* garbage values instead */
    int32_t replicas;
    enum cps_missing_mode mode;
    int32_t fallback;
    int32_t expected;
    enum cps_reason reason;
};

/* Each row would scale down to min if the data were believed. */
static const struct missing_case missing_cases[] = {
    {"qps missing, hold", CPS_METRIC_BIT(CPS_METRIC_QPS), 1, 50, 0.01, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    {"p95 missing, hold", CPS_METRIC_BIT(CPS_METRIC_P95), 1, 50, 0.01, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    {"cpu missing, hold", CPS_METRIC_BIT(CPS_METRIC_CPU), 1, 50, 0.01, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    {"ready missing, hold", CPS_METRIC_BIT(CPS_METRIC_READY), 1, 50, 0.01, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    {"qps NaN", 0, NAN, 50, 0.01, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    {"qps negative", 0, -5, 50, 0.01, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    {"p95 +Inf", 0, 1, INFINITY, 0.01, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    {"cpu NaN", 0, 1, 50, NAN, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    /* finite but absurd (a division by a tiny CPU request): its pod
     * arithmetic overflowed to inf - inf = NaN and scaled to min */
    {"cpu 5e307", 0, 1, 50, 5e307, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    {"qps 1e13", 0, 1e13, 50, 0.01, 10, CPS_MISSING_HOLD, 0, 10, CPS_REASON_MISSING_HOLD},
    /* fallback goes up to N, never down to it */
    {"fallback above current", CPS_METRIC_BIT(CPS_METRIC_QPS), 1, 50, 0.01, 10, CPS_MISSING_FALLBACK, 15, 15, CPS_REASON_MISSING_FALLBACK},
    {"fallback below current", CPS_METRIC_BIT(CPS_METRIC_QPS), 1, 50, 0.01, 10, CPS_MISSING_FALLBACK, 4, 10, CPS_REASON_MISSING_HOLD},
    /* the bounds still hold */
    {"current above max", CPS_METRIC_BIT(CPS_METRIC_QPS), 1, 50, 0.01, 30, CPS_MISSING_HOLD, 0, 20, CPS_REASON_MISSING_HOLD},
    {"current below min", CPS_METRIC_BIT(CPS_METRIC_QPS), 1, 50, 0.01, 1, CPS_MISSING_HOLD, 0, 2, CPS_REASON_MISSING_HOLD},
};

static void test_missing_metrics_never_scale_down(void)
{
    for (size_t i = 0; i < sizeof missing_cases / sizeof missing_cases[0]; i++) {
        const struct missing_case *tc = &missing_cases[i];
        CPS_ROW_BEGIN();
        struct cps_target t = make_target();
        t.on_missing = tc->mode;
        t.fallback_replicas = tc->fallback;
        struct cps_observation o = healthy(1.0, tc->replicas);
        o.missing = tc->missing_bit;
        o.qps = tc->qps;
        o.p95_ms = tc->p95;
        o.cpu_utilization = tc->cpu;
        struct cps_history *h = cps_history_new(32, 32);
        struct cps_policy_state *s = calloc(1, sizeof *s);
        struct cps_decision d;
        cps_decide(&t, &o, h, s, 1000000, NULL, &d);
        ASSERT_EQ(d.desired, tc->expected);
        ASSERT_EQ(d.reason, tc->reason);
        char detail[256];
        cps_decision_describe(&d, detail, sizeof detail);
        ASSERT_CONTAINS(detail, "missing");
        free(s);
        cps_history_free(h);
        cps_target_release(&t);
        CPS_ROW_END(tc->name);
    }
}

/* A paused target keeps its count whatever the load. */
static void test_paused(void)
{
    struct cps_target t = make_target();
    t.paused = 1;
    struct cps_observation o = healthy(1900, 5); /* way over capacity */
    struct cps_history *h = cps_history_new(32, 32);
    struct cps_policy_state s;
    cps_policy_state_init(&s);
    struct cps_decision d;
    cps_decide(&t, &o, h, &s, 0, NULL, &d);
    ASSERT_EQ(d.desired, 5);
    ASSERT_EQ(d.reason, CPS_REASON_PAUSED);
    cps_history_free(h);
    cps_target_release(&t);
}

struct given_case {
    const char *name;
    int32_t current, given, min, max;
    double max_per_hour;
    int32_t expected;
    enum cps_reason reason;
    double price; /* per pod-hour; 0: healthy()'s $0.05 */
};

/*
 * A given recommendation goes through the rails only (Kubernetes' default
 * behavior here, empty history): up by at most max(+100 %, +4); down at
 * once to the recommendation (the down window holds only what was seen);
 * min/max; budget cap at floor(max_per_hour / 0.05).
 */
static const struct given_case given_cases[] = {
    {"within range", 10, 14, 2, 20, 0, 14, CPS_REASON_SCALE_UP, 0},
    /* 3 pods: max(3 * 2, 3 + 4) = 7 */
    {"up limited to max(+100 %, +4)", 3, 15, 2, 20, 0, 7, CPS_REASON_SCALE_UP_LIMITED, 0},
    /* 9 pods: max(18, 13) = 18 */
    {"up limited to +100 %", 9, 19, 2, 20, 0, 18, CPS_REASON_SCALE_UP_LIMITED, 0},
    /* 2 pods: max(4, 6) = 6 */
    {"up limited to +4 pods", 2, 15, 2, 20, 0, 6, CPS_REASON_SCALE_UP_LIMITED, 0},
    {"clamped to max", 15, 40, 2, 20, 0, 20, CPS_REASON_CLAMPED_MAX, 0},
    {"clamped to min", 4, 0, 2, 20, 0, 2, CPS_REASON_CLAMPED_MIN, 0},
    {"down", 10, 4, 2, 20, 0, 4, CPS_REASON_SCALE_DOWN, 0},
    /* $0.40/h at $0.05 per pod-hour: 8 pods */
    {"budget cap", 6, 12, 2, 20, 0.40, 8, CPS_REASON_BUDGET_CAP, 0},
    /* the cap never goes below min */
    {"budget cap under min", 6, 12, 2, 20, 0.01, 2, CPS_REASON_BUDGET_CAP, 0},
    /* round figures whose quotient is just under the integer in binary
     * (0.30 / 0.05 = 5.999...): the cap is exact */
    {"budget cap 0.30 / 0.05", 5, 12, 2, 20, 0.30, 6, CPS_REASON_BUDGET_CAP, 0},
    {"budget cap 0.30 / 0.10", 2, 12, 2, 20, 0.30, 3, CPS_REASON_BUDGET_CAP, 0.10},
    {"budget cap 0.60 / 0.20", 2, 12, 2, 20, 0.60, 3, CPS_REASON_BUDGET_CAP, 0.20},
    {"budget cap 0.70 / 0.07", 6, 12, 2, 20, 0.70, 10, CPS_REASON_BUDGET_CAP, 0.07},
    {"steady", 7, 7, 2, 20, 0, 7, CPS_REASON_STEADY, 0},
};

static void test_given_recommendation_rails(void)
{
    for (size_t i = 0; i < sizeof given_cases / sizeof given_cases[0]; i++) {
        const struct given_case *tc = &given_cases[i];
        CPS_ROW_BEGIN();
        struct cps_target t = make_target();
        t.min_replicas = tc->min;
        t.max_replicas = tc->max;
        t.cost_max_per_hour = tc->max_per_hour;
        struct cps_observation o = healthy(100, tc->current);
        if (tc->price > 0)
            o.cost_per_pod_hour = tc->price;
        struct cps_history *h = cps_history_new(64, 64);
        struct cps_decision d;
        cps_decide(&t, &o, h, NULL, 1000000, &tc->given, &d);
        ASSERT_EQ(d.desired, tc->expected);
        ASSERT_EQ(d.reason, tc->reason);
        ASSERT_EQ(d.recommendation, tc->given);
        cps_history_free(h);
        cps_target_release(&t);
        CPS_ROW_END(tc->name);
    }
}

struct price_case {
    const char *name;
    double observed;    /* the cost query's price */
    int missing;        /* the cost query had nothing */
    double configured;  /* cost.pod_hour_usd */
    int32_t expected;   /* a recommendation of 12 under a $0.30/h cap */
};

/* The budget cap is computed with the cost query's price, else the
 * configured one: a missing, zero or garbage price never lifts it. */
static const struct price_case price_cases[] = {
    {"the query's price", 0.10, 0, 0.05, 3},
    {"no price from the query: the configured one", 0.10, 1, 0.05, 6},
    {"no price from the query, another configured one", 0.0, 1, 0.10, 3},
    {"a price of 0 is no price", 0.0, 0, 0.05, 6},
    {"a NaN price is no price", NAN, 0, 0.05, 6},
    {"a negative price is no price", -0.05, 0, 0.05, 6},
};

static void test_budget_cap_price(void)
{
    for (size_t i = 0; i < sizeof price_cases / sizeof price_cases[0]; i++) {
        const struct price_case *tc = &price_cases[i];
        CPS_ROW_BEGIN();
        struct cps_target t = make_target();
        t.cost_max_per_hour = 0.30;
        t.cost_pod_hour_usd = tc->configured;
        struct cps_observation o = healthy(100, 6); /* 6 -> 12 is within the rate limits */
        o.cost_per_pod_hour = tc->observed;
        o.missing = tc->missing ? CPS_METRIC_BIT(CPS_METRIC_COST) : 0;
        struct cps_history *h = cps_history_new(64, 64);
        const int32_t given = 12;
        struct cps_decision d;
        cps_decide(&t, &o, h, NULL, 1000000, &given, &d);
        ASSERT_EQ(d.desired, tc->expected);
        ASSERT_EQ(d.reason, CPS_REASON_BUDGET_CAP);
        /* the policy's own path: a missing price holds nothing */
        struct cps_policy_state *s = calloc(1, sizeof *s);
        cps_policy_state_init(s);
        cps_decide(&t, &o, h, s, 1000000, NULL, &d);
        ASSERT_TRUE(d.reason != CPS_REASON_MISSING_HOLD);
        ASSERT_TRUE(d.desired <= tc->expected);
        free(s);
        cps_history_free(h);
        cps_target_release(&t);
        CPS_ROW_END(tc->name);
    }
    /* the on_missing fallback raises the count, but not past the cap */
    CPS_ROW_BEGIN();
    struct cps_target t = make_target();
    t.cost_max_per_hour = 0.30; /* 6 pods at $0.05 */
    t.on_missing = CPS_MISSING_FALLBACK;
    t.fallback_replicas = 15;
    struct cps_observation o = healthy(100, 3);
    o.missing = CPS_METRIC_BIT(CPS_METRIC_QPS);
    struct cps_history *h = cps_history_new(64, 64);
    struct cps_policy_state *s = calloc(1, sizeof *s);
    cps_policy_state_init(s);
    struct cps_decision d;
    cps_decide(&t, &o, h, s, 1000000, NULL, &d);
    ASSERT_EQ(d.desired, 6);
    ASSERT_EQ(d.reason, CPS_REASON_MISSING_FALLBACK);
    free(s);
    cps_history_free(h);
    cps_target_release(&t);
    CPS_ROW_END("the fallback stops at the budget cap");
}

/*
 * The budget cap bounds the recommendation before the rails. Eleven pods
 * under a $1/h cap at $0.05 (20 pods): one tick's price of $1e11 (a bad
 * sample: the cap is then 1 pod) must not take ten pods away at once, as
 * the recommendations in the scale-down window hold the count; the price
 * back, the count stays. A price rise that lasts (to $0.25: 4 pods) brings
 * the count down to the cap at the scale-down policy's pace (10 % a
 * minute, once the window has passed), never below it, and the cap is
 * never scaled up past (a recommendation of 12 at 4 pods' cap asks for 4).
 */
static void test_budget_cap_comes_down_through_the_rails(void)
{
    struct cps_target t = make_target();
    t.min_replicas = 1;
    t.cost_max_per_hour = 1.0;
    t.behavior.scale_down.stabilization_window_seconds = 600;
    t.behavior.scale_down.n_policies = 1;
    t.behavior.scale_down.policies[0] =
        (struct cps_scaling_policy){CPS_SCALING_PERCENT, 10, 60};
    struct cps_history *h = cps_history_new(256, 256);
    const int32_t keep = 11;
    int64_t now = 1000000;
    struct cps_decision d;
    struct cps_observation o = healthy(100, 11);
    cps_decide(&t, &o, h, NULL, now, &keep, &d); /* the window now holds 11 */
    ASSERT_EQ(d.desired, 11);
    now += 15000;
    o.cost_per_pod_hour = 1e11;
    cps_decide(&t, &o, h, NULL, now, &keep, &d);
    ASSERT_EQ(d.desired, 11);
    ASSERT_EQ(d.budget_pods, 1);
    ASSERT_TRUE(d.reason != CPS_REASON_BUDGET_CAP);
    now += 15000;
    o.cost_per_pod_hour = 0.05;
    cps_decide(&t, &o, h, NULL, now, &keep, &d);
    ASSERT_EQ(d.desired, 11);

    /* the price rises for good: held for the window, then 10 % a minute */
    o.cost_per_pod_hour = 0.25;
    int32_t current = 11;
    int64_t first_down_ms = 0, at_cap_ms = 0;
    for (int tick = 0; tick < 200 && current > 4; tick++) {
        now += 15000;
        o = healthy(100, current);
        o.cost_per_pod_hour = 0.25;
        cps_decide(&t, &o, h, NULL, now, &keep, &d);
        ASSERT_TRUE(d.desired >= 4 && d.desired <= current);
        if (d.desired < current) {
            if (!first_down_ms)
                first_down_ms = now;
            cps_history_add_scale_event(h, now, d.desired - current);
            current = d.desired;
            at_cap_ms = now;
        }
    }
    ASSERT_EQ(current, 4);
    ASSERT_EQ(d.reason, CPS_REASON_BUDGET_CAP);
    /* the last recommendation of 11 is 15 s before the rise: 600 s on */
    ASSERT_TRUE(first_down_ms - (1000000 + 30000) >= 600000);
    /* 10 % a minute of the count at the minute's start, truncated: 11, 9,
     * 8, 7, 6, 5, 4, a minute apart */
    ASSERT_TRUE(at_cap_ms - first_down_ms >= 5 * 60000);
    /* at the cap: a recommendation above it asks for the cap */
    const int32_t more = 12;
    now += 15000;
    o = healthy(100, 4);
    o.cost_per_pod_hour = 0.25;
    cps_decide(&t, &o, h, NULL, now, &more, &d);
    ASSERT_EQ(d.desired, 4);
    ASSERT_EQ(d.reason, CPS_REASON_BUDGET_CAP);
    cps_history_free(h);
    cps_target_release(&t);
}

/*
 * Closed loop on a steady then doubled load with known μ = 100 and base
 * 20 ms (SLO 100 ms: 62.55 req/s per pod): after learning, the policy asks
 * for at least the pods the load needs, and never leaves [min, max].
 */
static void test_policy_follows_load(void)
{
    struct cps_target t = make_target();
    t.max_replicas = 60;
    struct cps_history *h = cps_history_new(64, 64);
    struct cps_policy_state *s = calloc(1, sizeof *s);
    cps_policy_state_init(s);
    int32_t replicas = 10;
    struct cps_decision d;
    int64_t now = 0;
    for (int i = 0; i < 400; i++, now += 15000) {
        double qps = i < 200 ? 500.0 : 1000.0;
        struct cps_observation o = healthy(qps, replicas);
        if (qps / replicas >= 100.0) {
            o.cpu_utilization = 1.0;
            o.p95_ms = 1000.0;
        }
        cps_decide(&t, &o, h, s, now, NULL, &d);
        ASSERT_TRUE(d.desired >= 2 && d.desired <= 60);
        if (d.desired != replicas)
            cps_history_add_scale_event(h, now, d.desired - replicas);
        replicas = d.desired;
        if (i == 199)
            ASSERT_TRUE(replicas >= 8); /* 500 / 62.55 = 7.99 */
    }
    ASSERT_TRUE(replicas >= 16); /* 1000 / 62.55 = 15.99 */
    ASSERT_TRUE(replicas <= 40);  /* and not runaway */
    ASSERT_NEAR(s->service_rate_estimate, 100.0, 1.0);
    ASSERT_NEAR(s->latency.base_ms, 20.0, 1.0);
    char detail[256];
    cps_decision_describe(&d, detail, sizeof detail);
    ASSERT_CONTAINS(detail, "per pod within the SLO");
    free(s);
    cps_history_free(h);
    cps_target_release(&t);
}

/* What a ready pod shows at `mu` req/s (M/M/1, base 20 ms): CPU capped at
 * 1, and a saturated pod's p95 at 10 x the SLO, as the simulator caps it. */
static struct cps_observation served_by(double qps, int32_t replicas, double mu)
{
    struct cps_observation o = healthy(qps, replicas);
    double per_pod = qps / replicas;
    o.cpu_utilization = per_pod / mu < 1.0 ? per_pod / mu : 1.0;
    o.p95_ms = per_pod < mu ? 20.0 + 1000.0 * log(20.0) / (mu - per_pod) : 1000.0;
    if (o.p95_ms > 1000.0)
        o.p95_ms = 1000.0;
    return o;
}

/*
 * A release makes the pods slower, by more than the policy's margin: every
 * window is then over the SLO (1.6 x slower) or saturated (2 x), and
 * windows like that used to teach nothing, so the old capacity stood and
 * the target stayed over the SLO for good. A window over the SLO says the
 * pods are at most this fast, which is taken when it is slower than the
 * estimate: within two hours the estimate is the new rate, the count is
 * what 500 req/s needs at it, and the last hour's windows are within the
 * SLO.
 */
static void test_policy_relearns_slower_pods(void)
{
    static const double slower[] = {1.6, 2.0};
    for (size_t row = 0; row < sizeof slower / sizeof slower[0]; row++) {
        struct cps_target t = make_target();
        t.max_replicas = 100;
        struct cps_history *h = cps_history_new(64, 64);
        struct cps_policy_state *s = calloc(1, sizeof *s);
        if (!h || !s) {
            ASSERT_TRUE(0);
            free(s);
            cps_history_free(h);
            cps_target_release(&t);
            return;
        }
        cps_policy_state_init(s);
        int32_t replicas = 10;
        struct cps_decision d;
        int64_t now = 0;
        double mu_after = 100.0 / slower[row];
        int late_violations = 0;
        for (int i = 0; i < 960; i++, now += 15000) {
            double mu = i < 480 ? 100.0 : mu_after; /* 2 h, then the release */
            struct cps_observation o = served_by(500.0, replicas, mu);
            if (i >= 720 && o.p95_ms > t.slo_latency_p95_ms)
                late_violations++;
            cps_decide(&t, &o, h, s, now, NULL, &d);
            if (d.desired != replicas)
                cps_history_add_scale_event(h, now, d.desired - replicas);
            replicas = d.desired;
        }
        /* SLO 100 ms, base 20: mu - ln 20 / 0.08 s per pod within the SLO */
        int32_t needed = (int32_t)ceil(500.0 / (mu_after - log(20.0) / 0.08));
        CPS_ROW_BEGIN();
        ASSERT_NEAR(s->service_rate_estimate, mu_after, 0.02 * mu_after);
        ASSERT_TRUE(replicas >= needed);
        ASSERT_EQ(late_violations, 0);
        CPS_ROW_END(slower[row] == 1.6 ? "1.6 x slower (over the SLO)" : "2 x slower (saturated)");
        free(s);
        cps_history_free(h);
        cps_target_release(&t);
    }
}

/*
 * A queue `shape` times M/M/1's (base 20 ms, mu 100): what the policy
 * learns of it over two days of a daily cycle (300 req/s +- 60 %, with a
 * deterministic +-5 % jitter per minute), deciding every 15 s, its pods
 * ready at once. Sets the learned SLO-safe rate and shape at the end, the
 * lowest rate it had after learning, and the share of the second day's
 * windows over the SLO.
 */
struct queue_run {
    double rps_per_pod, shape, lowest_rps, late_over_slo;
    double worst_line_miss_ms; /* the latency line against the window just learned from */
    /* with an odd window at the end of the first day: the shape before
     * and after it, and the lowest safe rate and most pods in the hour after */
    double shape_before_odd, shape_after_odd, lowest_rps_after_odd;
    int32_t most_pods_after_odd;
};

static struct queue_run run_queue_with_shape(double shape, double p95_noise, int odd_window)
{
    struct queue_run run = {0, 0, 1e9, 0, 0, 0, 0, 1e9, 0};
    struct cps_target t = make_target();
    t.max_replicas = 200;
    struct cps_history *h = cps_history_new(64, 64);
    struct cps_policy_state *s = calloc(1, sizeof *s);
    if (!h || !s) {
        ASSERT_TRUE(0);
        free(s);
        cps_history_free(h);
        cps_target_release(&t);
        return run;
    }
    cps_policy_state_init(s);
    int32_t replicas = 10;
    struct cps_decision d;
    int late = 0, late_over = 0;
    int odd_at = -1, unchanged = 0; /* the odd window: once the count held 2 minutes */
    uint32_t jitter = 12345;
    double minute_jitter = 1.0;
    for (int i = 0; i < 2 * 5760; i++) {
        int64_t now = (int64_t)i * 15000;
        if (i % 4 == 0) {
            jitter = jitter * 1664525u + 1013904223u;
            minute_jitter = 0.8 + 0.4 * (double)(jitter >> 8) / 16777216.0;
        }
        double qps = 300.0 * (1.0 + 0.6 * sin(6.283185307179586 * (double)now / 86400000.0)) * minute_jitter;
        double per_pod = qps / replicas;
        struct cps_observation o = healthy(qps, replicas);
        o.cpu_utilization = per_pod < 100.0 ? per_pod / 100.0 : 1.0;
        o.p95_ms = per_pod < 100.0 ? 20.0 + shape * 1000.0 * log(20.0) / (100.0 - per_pod) : 1000.0;
        jitter = jitter * 1664525u + 1013904223u;
        o.p95_ms *= 1.0 + p95_noise * (2.0 * (double)(jitter >> 8) / 16777216.0 - 1.0);
        if (o.p95_ms > 1000.0)
            o.p95_ms = 1000.0;
        if (odd_window && odd_at < 0 && i >= 5760 && unchanged >= 8)
            odd_at = i;
        if (i == odd_at) {
            /* four times the load, its p95 read just within the SLO */
            run.shape_before_odd = cps_latency_line_shape(&s->latency);
            o.qps *= 4.0;
            o.cpu_utilization = o.qps / replicas / 100.0 < 1.0 ? o.qps / replicas / 100.0 : 1.0;
            o.p95_ms = 99.0;
        }
        if (i >= 5760) {
            late++;
            late_over += o.p95_ms > t.slo_latency_p95_ms;
        }
        cps_decide(&t, &o, h, s, now, NULL, &d);
        if (d.basis == CPS_BASIS_FORECAST && d.rps_per_pod < run.lowest_rps)
            run.lowest_rps = d.rps_per_pod;
        if (d.basis == CPS_BASIS_FORECAST && o.p95_ms <= t.slo_latency_p95_ms) {
            double line = s->latency.base_ms +
                          cps_latency_line_shape(&s->latency) * 1000.0 * log(20.0) /
                              (s->service_rate_estimate - per_pod);
            if (fabs(line - o.p95_ms) > run.worst_line_miss_ms)
                run.worst_line_miss_ms = fabs(line - o.p95_ms);
        }
        if (i == odd_at)
            run.shape_after_odd = cps_latency_line_shape(&s->latency);
        if (odd_at >= 0 && i >= odd_at && i < odd_at + 240) {
            if (d.rps_per_pod < run.lowest_rps_after_odd)
                run.lowest_rps_after_odd = d.rps_per_pod;
            if (d.desired > run.most_pods_after_odd)
                run.most_pods_after_odd = d.desired;
        }
        unchanged = d.desired == replicas ? unchanged + 1 : 0;
        if (d.desired != replicas)
            cps_history_add_scale_event(h, now, d.desired - replicas);
        replicas = d.desired;
    }
    ASSERT_TRUE(!odd_window || odd_at >= 0);
    run.rps_per_pod = d.rps_per_pod;
    run.shape = d.latency_shape;
    run.late_over_slo = (double)late_over / late;
    free(s);
    cps_history_free(h);
    cps_target_release(&t);
    return run;
}

/*
 * The SLO-safe rate is mu - ln20 / (SLO - base) only for an M/M/1 queue.
 * A queue twice as heavy (heavy-tailed service times) used to hide in the
 * learned base latency, and the safe rate came out too high; the policy
 * fits the queue's slope over the day's loads, and learns the true rate
 * (mu - 2 ln20 / 0.08 s = 25.1 req/s) within 10 % (it was 30.3), without
 * ever dropping far under it while the fit moves. M/M/1 stays M/M/1. A
 * lighter queue keeps the M/M/1 shape (the floor), and so a rate under
 * its true one. With the p95 read +-10 % or +-20 %, the shape still rises
 * where the queue is heavier and stays near 1 where it is not, and the
 * latency line stays near the windows it learns from.
 */
static void test_policy_learns_the_queue_shape(void)
{
    static const struct {
        double shape, p95_noise;
        const char *name;
    } rows[] = {
        {2.0, 0.0, "twice M/M/1: learned"},
        {1.0, 0.0, "M/M/1 stays M/M/1"},
        {0.5, 0.0, "half M/M/1: the M/M/1 floor"},
        {2.0, 0.1, "twice M/M/1, p95 read +-10 %"},
        {1.0, 0.1, "M/M/1, p95 read +-10 %"},
        {2.0, 0.2, "twice M/M/1, p95 read +-20 %"},
        {1.0, 0.2, "M/M/1, p95 read +-20 %"},
    };
    for (size_t row = 0; row < sizeof rows / sizeof rows[0]; row++) {
        double k = rows[row].shape;
        double true_rate = 100.0 - k * log(20.0) / 0.08;
        struct queue_run run = run_queue_with_shape(k, rows[row].p95_noise, 0);
        CPS_ROW_BEGIN();
        if (rows[row].p95_noise == 0.0 && k > 1.0) {
            ASSERT_NEAR(run.rps_per_pod, true_rate, 0.1 * true_rate); /* was 30.3 */
            ASSERT_TRUE(run.shape >= 1.5);
            ASSERT_TRUE(run.lowest_rps >= 0.9 * true_rate);
        } else if (rows[row].p95_noise == 0.0 && k == 1.0) {
            ASSERT_NEAR(run.shape, 1.0, 0.01);
            ASSERT_NEAR(run.rps_per_pod, true_rate, 0.5);
        } else if (rows[row].p95_noise == 0.0) {
            ASSERT_TRUE(run.shape == 1.0);
            ASSERT_TRUE(run.rps_per_pod <= 0.9 * true_rate);
        } else if (k > 1.0 && rows[row].p95_noise < 0.15) {
            ASSERT_TRUE(run.shape >= 1.3);
            ASSERT_TRUE(run.late_over_slo <= 0.02);
        } else if (k > 1.0) {
            /* 1.81; fitted on windows within the SLO only: 1.00 */
            ASSERT_TRUE(run.shape >= 1.5);
        } else if (rows[row].p95_noise > 0.15) {
            ASSERT_TRUE(run.shape <= 1.2);
        } else {
            ASSERT_TRUE(run.shape <= 1.2);
            ASSERT_NEAR(run.rps_per_pod, true_rate, 0.1 * true_rate);
            ASSERT_TRUE(run.late_over_slo <= 0.01);
            /* the intercept moves with the slope: 12.7 ms; against a
             * standing intercept each wobble left the line 50 ms off */
            ASSERT_TRUE(run.worst_line_miss_ms <= 25.0);
        }
        CPS_ROW_END(rows[row].name);
    }
}

/*
 * One window far from the day's loads must not carry the latency line: in
 * the queue twice M/M/1 (true safe rate 25.1 req/s), at the end of the
 * first day one window shows four times the load with its p95 read just
 * within the SLO (a misaligned or glitched reading). The slope keeps its
 * value, the safe rate stays above 0.8 x the true one and the pods below
 * twice what the day needed (the window itself asks for pods for its
 * load, 35). Letting the window into the slope took it from 1.67 to 1;
 * in review, before such a window was kept out of the slope, turning the
 * intercept about the window (not the fit's centre) sent the safe rate to
 * -1, then 3 req/s, and the pods from 17 to 120.
 */
static void test_policy_shrugs_off_one_odd_window(void)
{
    struct queue_run run = run_queue_with_shape(2.0, 0.0, 1);
    double true_rate = 100.0 - 2.0 * log(20.0) / 0.08;
    ASSERT_TRUE(run.shape_before_odd >= 1.5);
    ASSERT_NEAR(run.shape_after_odd, run.shape_before_odd, 0.05);
    ASSERT_TRUE(run.lowest_rps_after_odd >= 0.8 * true_rate);
    ASSERT_TRUE(run.most_pods_after_odd <= 2 * (int32_t)ceil(480.0 / true_rate));
}

/*
 * The shape is bounded, whatever the p95 says: a p95 that climbs ten times
 * as fast as M/M/1's with load (a heavy queue, or anything else that grows
 * with load) is read as 4, the ceiling. Told not to fit the slope (the
 * policy's capacity estimate not yet trusted), the line keeps M/M/1's.
 */
static void test_latency_shape_is_bounded(void)
{
    struct cps_latency_line line;
    memset(&line, 0, sizeof line);
    for (int i = 0; i < 480; i++) {
        double x = i % 2 ? 45.0 : 35.0; /* the M/M/1 term at mu 100 */
        cps_latency_line_learn(&line, 100.0, 100.0 - 1000.0 * log(20.0) / x,
                               20.0 + 10.0 * (x - 35.0), 15000, 1, i == 0);
    }
    ASSERT_TRUE(cps_latency_line_shape(&line) == 4.0);
    struct cps_latency_line untrusted;
    memset(&untrusted, 0, sizeof untrusted);
    for (int i = 0; i < 480; i++) {
        double x = i % 2 ? 45.0 : 35.0;
        cps_latency_line_learn(&untrusted, 100.0, 100.0 - 1000.0 * log(20.0) / x,
                               20.0 + 2.0 * x, 15000, 0, i == 0);
    }
    ASSERT_TRUE(cps_latency_line_shape(&untrusted) == 1.0);
}

/* Until capacity is learned, the policy never scales down. */
static void test_learning_never_scales_down(void)
{
    struct cps_target t = make_target();
    struct cps_history *h = cps_history_new(64, 64);
    struct cps_policy_state s;
    cps_policy_state_init(&s);
    struct cps_observation o = healthy(10, 12); /* nearly idle */
    struct cps_decision d;
    cps_decide(&t, &o, h, &s, 0, NULL, &d);
    ASSERT_EQ(d.desired, 12);
    ASSERT_EQ(d.basis, CPS_BASIS_LEARNING);
    cps_history_free(h);
    cps_target_release(&t);
}

/* While learning, the policy keeps CPU at 50 %: 25 pods at 56 % want
 * exactly 28, though 25 * 0.56 / 0.5 is 28.000000000000004 in binary. */
static void test_learning_rounds_exactly(void)
{
    struct cps_target t = make_target();
    struct cps_history *h = cps_history_new(64, 64);
    struct cps_policy_state s;
    cps_policy_state_init(&s);
    t.max_replicas = 50;
    struct cps_observation o = healthy(10, 25);
    o.cpu_utilization = 0.56;
    struct cps_decision d;
    cps_decide(&t, &o, h, &s, 0, NULL, &d);
    ASSERT_EQ(d.basis, CPS_BASIS_LEARNING);
    ASSERT_EQ(d.recommendation, 28);
    cps_history_free(h);
    cps_target_release(&t);
}

static void test_reason_names(void)
{
    ASSERT_STR_EQ(cps_reason_name(CPS_REASON_SCALE_UP_LIMITED), "scale_up_limited");
    ASSERT_STR_EQ(cps_reason_name(CPS_REASON_MISSING_HOLD), "missing_metrics_hold");
    ASSERT_STR_EQ(cps_reason_name((enum cps_reason)999), "unknown");
    for (int r = 0; r < CPS_REASON_COUNT; r++)
        ASSERT_TRUE(cps_reason_name((enum cps_reason)r) != NULL);
}

int main(void)
{
    test_missing_metrics_never_scale_down();
    CPS_RUN(test_paused);
    test_given_recommendation_rails();
    CPS_RUN(test_budget_cap_price);
    CPS_RUN(test_budget_cap_comes_down_through_the_rails);
    CPS_RUN(test_policy_follows_load);
    CPS_RUN(test_policy_relearns_slower_pods);
    CPS_RUN(test_policy_learns_the_queue_shape);
    CPS_RUN(test_policy_shrugs_off_one_odd_window);
    CPS_RUN(test_latency_shape_is_bounded);
    CPS_RUN(test_learning_never_scales_down);
    CPS_RUN(test_learning_rounds_exactly);
    CPS_RUN(test_reason_names);
    CPS_TEST_END();
}
