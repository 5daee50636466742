/*
 * History replayed through the policy (lib/policy_replay.c), the pure half
 * of the controller's backfill: the state it leaves is the state the same
 * observations leave when fed live through cps_decide, step by step, with
 * missing data fed as missing; and what it learned matches the history
 * (the burst minute, the violating share), worked out here from the
 * arrays themselves.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cps_test.h"
#include "decide.h"
#include "policy_replay.h"

#define STEP_MS 15000LL
#define HOUR_MS 3600000LL
#define HOURS 6
#define N_POINTS ((size_t)(HOURS * HOUR_MS / STEP_MS))
/* 2026-12-05T00:00:00Z: a start on the hour, so the clock minutes are known */
#define FROM_MS 1796428800000LL
#define BURST_MINUTE 30
#define READY 4
#define SERVICE_RATE 100.0

struct history {
    double qps[N_POINTS], p95[N_POINTS], cpu[N_POINTS], ready[N_POINTS], cost[N_POINTS];
};

/* Steady 100 req/s with a 4x burst in minute :30 of every hour (of the
 * metrics window's middle, as the policy files it); p95 over a 250 ms SLO
 * at every 10th step; gaps: qps every 97th step, p95 for a block of 40
 * steps, cost everywhere odd (the configured price then stands in). */
static void make_history(struct history *h, const struct cps_target *t)
{
    for (size_t i = 0; i < N_POINTS; i++) {
        int64_t now = FROM_MS + (int64_t)i * STEP_MS;
        int64_t seen = now - t->policy.metrics_lag_ms - 30000;
        int minute = (int)((seen / 60000) % 60);
        double qps = minute == BURST_MINUTE ? 400.0 : 100.0;
        h->qps[i] = i % 97 == 50 ? NAN : qps;
        h->p95[i] = i >= 300 && i < 340 ? NAN : i % 10 == 3 ? 400.0 : 60.0;
        h->cpu[i] = qps / (READY * SERVICE_RATE);
        h->ready[i] = READY;
        h->cost[i] = i % 2 ? NAN : 0.05;
    }
}

static struct cps_target make_target(void)
{
    struct cps_target t;
    cps_target_init_defaults(&t);
    t.min_replicas = 1;
    t.max_replicas = 100;
    t.slo_latency_p95_ms = 250.0;
    t.cost_pod_hour_usd = 0.07;
    return t;
}

/* The live tick's way: every step goes to cps_decide, a missing value as a
 * missing bit, replicas as the ready count the history shows. */
static void feed_live(const struct cps_target *t, const struct history *h,
                      struct cps_policy_state *s)
{
    size_t recs, events;
    cps_history_capacity_for(&t->behavior, STEP_MS, &recs, &events);
    struct cps_history *rails = cps_history_new(recs, events);
    for (size_t i = 0; i < N_POINTS; i++) {
        struct cps_observation o;
        memset(&o, 0, sizeof o);
        o.qps = isnan(h->qps[i]) ? 0.0 : h->qps[i];
        o.p95_ms = isnan(h->p95[i]) ? 0.0 : h->p95[i];
        o.cpu_utilization = h->cpu[i];
        o.replicas = o.ready_replicas = READY;
        o.cost_per_pod_hour = isnan(h->cost[i]) ? 0.07 : h->cost[i];
        if (isnan(h->qps[i]))
            o.missing |= CPS_METRIC_BIT(CPS_METRIC_QPS);
        if (isnan(h->p95[i]))
            o.missing |= CPS_METRIC_BIT(CPS_METRIC_P95);
        struct cps_decision d;
        cps_decide(t, &o, rails, s, FROM_MS + (int64_t)i * STEP_MS, NULL, &d);
    }
    cps_history_free(rails);
}

static struct cps_replay_series series_of(const struct history *h)
{
    struct cps_replay_series s = {FROM_MS, STEP_MS, N_POINTS, {0}};
    s.values[CPS_METRIC_QPS] = h->qps;
    s.values[CPS_METRIC_P95] = h->p95;
    s.values[CPS_METRIC_CPU] = h->cpu;
    s.values[CPS_METRIC_READY] = h->ready;
    s.values[CPS_METRIC_COST] = h->cost;
    return s;
}

/* The replayed state is the live one, field by field, but for the
 * start-up timer: history has no count asked for to time pods against, so
 * the replay leaves the timer as it found it (here, a start-up of 100 s
 * learned at the start). */
static void test_replay_equals_live(void)
{
    struct cps_target t = make_target();
    struct history *h = calloc(1, sizeof *h);
    struct cps_policy_state *replayed = calloc(1, sizeof *replayed);
    struct cps_policy_state *live = calloc(1, sizeof *live);
    if (!h || !replayed || !live) {
        ASSERT_TRUE(0);
        goto done;
    }
    make_history(h, &t);
    cps_policy_state_init(replayed);
    cps_policy_state_init(live);
    replayed->startup.learned_ms = live->startup.learned_ms = 100000;
    replayed->startup.learned_at_ms = live->startup.learned_at_ms = FROM_MS;
    struct cps_replay_series s = series_of(h);
    struct cps_replay_stats stats;
    ASSERT_EQ(cps_policy_replay(&t, &s, replayed, &stats), 0);
    feed_live(&t, h, live);
    /* steps skipped: the qps gaps and the p95 block, counted here */
    size_t gaps = 0;
    for (size_t i = 0; i < N_POINTS; i++)
        gaps += isnan(h->qps[i]) || isnan(h->p95[i]);
    ASSERT_EQ(stats.skipped, gaps);
    ASSERT_EQ(stats.replayed, N_POINTS - gaps);
    ASSERT_EQ(memcmp(replayed->bursts.minute, live->bursts.minute, sizeof live->bursts.minute), 0);
    ASSERT_EQ(memcmp(replayed->bursts.hour, live->bursts.hour, sizeof live->bursts.hour), 0);
    ASSERT_TRUE(replayed->budget.window_requests == live->budget.window_requests);
    ASSERT_TRUE(replayed->budget.window_violating == live->budget.window_violating);
    ASSERT_TRUE(replayed->budget.burn_requests == live->budget.burn_requests);
    ASSERT_TRUE(replayed->budget.burn_violating == live->budget.burn_violating);
    ASSERT_TRUE(replayed->budget.adjust == live->budget.adjust);
    ASSERT_EQ(replayed->budget.t_ms, live->budget.t_ms);
    ASSERT_TRUE(replayed->service_rate_estimate == live->service_rate_estimate);
    ASSERT_EQ(replayed->capacity_samples, live->capacity_samples);
    ASSERT_EQ(memcmp(replayed->surprise_samples, live->surprise_samples,
                     sizeof live->surprise_samples), 0);
    ASSERT_EQ(replayed->startup.learned_ms, 100000);
    ASSERT_EQ(replayed->startup.learned_at_ms, FROM_MS);
    ASSERT_EQ(replayed->startup.pending_pods, 0);
    ASSERT_TRUE(memcmp(&replayed->startup, &live->startup, sizeof live->startup) != 0);
    live->startup = replayed->startup;
    ASSERT_EQ(memcmp(replayed, live, sizeof *live), 0);
done:
    free(h);
    free(replayed);
    free(live);
    cps_target_release(&t);
}

/* What the replay learned is what the history holds: the burst minute's
 * slot alone is set; the violating share is the requests of the violating
 * steps over all requests of the replayed ones, each step standing for the
 * time since the one before, but a step after a gap of more than four
 * steps (the 40-step p95 block: an outage) for one step only; capacity is
 * the CPU-derived rate the history was made with. */
static void test_replay_learns_the_history(void)
{
    struct cps_target t = make_target();
    struct history *h = calloc(1, sizeof *h);
    struct cps_policy_state *s = calloc(1, sizeof *s);
    if (!h || !s) {
        ASSERT_TRUE(0);
        goto done;
    }
    make_history(h, &t);
    cps_policy_state_init(s);
    struct cps_replay_series series = series_of(h);
    struct cps_replay_stats stats;
    ASSERT_EQ(cps_policy_replay(&t, &series, s, &stats), 0);
    ASSERT_EQ(s->started, 1);
    ASSERT_TRUE(s->bursts.minute[BURST_MINUTE] > 0);
    /* ln(4) / 0.03 = 46 steps; learned half way per round over 5 rounds */
    ASSERT_TRUE(s->bursts.minute[BURST_MINUTE] >= 40);
    for (int m = 0; m < CPS_BURST_MINUTES; m++)
        if (m != BURST_MINUTE && m != BURST_MINUTE + 1)
            ASSERT_TRUE(s->bursts.minute[m] <= 2);
    /* the share over 6 h: the week-long decay weighs every step within
     * 4 % of every other, so the plain ratio is within 1 % relative */
    double all = 0, bad = 0;
    int64_t last = -1;
    for (size_t i = 0; i < N_POINTS; i++) {
        if (isnan(h->qps[i]) || isnan(h->p95[i]))
            continue;
        int64_t steps = last < 0 ? 1 : (int64_t)i - last;
        double dt = (steps > 4 ? 1 : steps) * 15.0;
        last = (int64_t)i;
        all += h->qps[i] * dt;
        if (h->p95[i] > t.slo_latency_p95_ms)
            bad += h->qps[i] * dt;
    }
    ASSERT_NEAR(cps_slo_budget_violating_share(&s->budget), bad / all, 0.01 * bad / all);
    ASSERT_NEAR(s->service_rate_estimate, SERVICE_RATE, 1e-6);
done:
    free(h);
    free(s);
    cps_target_release(&t);
}

/* The observation of one step: replicas are the ready count, the price
 * the configured one where the series has none, and a step missing any of
 * rate, latency, CPU or ready count (or holding garbage) is not used. */
static void test_replay_observation(void)
{
    struct cps_target t = make_target();
    double qps[] = {10, 10, NAN, 10, -1, 10};
    double p95[] = {50, 50, 50, 50, 50, INFINITY};
    double cpu[] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1};
    double ready[] = {3, 2.9999, 3, NAN, 3, 3};
    double cost[] = {0.2, NAN, 0.2, 0.2, 0.2, 0.2};
    struct cps_replay_series s = {FROM_MS, STEP_MS, 6, {0}};
    s.values[CPS_METRIC_QPS] = qps;
    s.values[CPS_METRIC_P95] = p95;
    s.values[CPS_METRIC_CPU] = cpu;
    s.values[CPS_METRIC_READY] = ready;
    s.values[CPS_METRIC_COST] = cost;
    struct cps_observation o;
    ASSERT_EQ(cps_replay_observation(&t, &s, 0, &o), 1);
    ASSERT_EQ(o.replicas, 3);
    ASSERT_EQ(o.ready_replicas, 3);
    ASSERT_NEAR(o.cost_per_pod_hour, 0.2, 0);
    ASSERT_EQ(cps_replay_observation(&t, &s, 1, &o), 1);
    ASSERT_EQ(o.replicas, 3); /* a sum of floats: rounded, not truncated */
    ASSERT_NEAR(o.cost_per_pod_hour, 0.07, 0);
    ASSERT_EQ(cps_replay_observation(&t, &s, 2, &o), 0);
    ASSERT_EQ(cps_replay_observation(&t, &s, 3, &o), 0);
    ASSERT_EQ(cps_replay_observation(&t, &s, 4, &o), 0);
    ASSERT_EQ(cps_replay_observation(&t, &s, 5, &o), 0);
    /* no cost query at all: the configured price */
    s.values[CPS_METRIC_COST] = NULL;
    ASSERT_EQ(cps_replay_observation(&t, &s, 0, &o), 1);
    ASSERT_NEAR(o.cost_per_pod_hour, 0.07, 0);
    /* no ready query: nothing is usable */
    s.values[CPS_METRIC_READY] = NULL;
    ASSERT_EQ(cps_replay_observation(&t, &s, 0, &o), 0);
    cps_target_release(&t);
}

int main(void)
{
    CPS_RUN(test_replay_equals_live);
    CPS_RUN(test_replay_learns_the_history);
    CPS_RUN(test_replay_observation);
    CPS_TEST_END();
}
