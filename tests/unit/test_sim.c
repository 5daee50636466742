/*
 * The simulated world against docs/model.md: the tiny trace's check values
 * (§9), the oracle with per-second prices (§7), streaming invariance, and
 * the report's totals against the per-second steps.
 */
#include <stdlib.h>

#include "cps_test.h"
#include "decide.h"
#include "world.h"

/* docs/model.md §9 defaults. */
static void default_setup(struct cps_sim_setup *s, const char *policies)
{
    memset(s, 0, sizeof *s);
    s->world.service_rate = 100;
    s->world.base_latency_ms = 20;
    s->world.startup_s = 30;
    s->world.price = 0.05;
    s->world.scale = 1;
    s->world.routing = CPS_ROUTING_RANDOM;
    s->world.interval_s = 15;
    s->world.window_s = 60;
    s->world.lag_s = 15;
    s->world.hpa_target = 0.7;
    s->slo_ms = 100;
    s->min_replicas = 1;
    s->max_replicas = 1000;
    struct cps_err err;
    if (cps_sim_parse_policies(policies, s->policies, &s->n_policies, &err) < 0)
        fprintf(stderr, "bad policy list %s: %s\n", policies, err.message);
}

/* The tiny trace: 0,50 / 60,500 / 120,50 / 180,50 (240 s). */
static void feed_tiny(struct cps_sim *sim, int one_second_at_a_time)
{
    static const double rates[] = {50, 500, 50, 50};
    struct cps_err err;
    for (int row = 0; row < 4; row++) {
        if (one_second_at_a_time)
            for (int k = 0; k < 60; k++)
                cps_sim_feed(sim, rates[row], 0.05, 1, &err);
        else
            cps_sim_feed(sim, rates[row], 0.05, 60, &err);
    }
}

static void test_tiny_trace_check_values(void)
{
    struct cps_sim_setup setup;
    default_setup(&setup, "oracle,static:9,hpa:0.5");
    struct cps_err err;
    struct cps_sim *sim = cps_sim_new(&setup, &err);
    ASSERT_TRUE(sim != NULL);
    if (!sim)
        return;
    feed_tiny(sim, 0);
    struct cps_sim_result r[3];
    ASSERT_EQ(cps_sim_finish(sim, r, &err), 0);
    ASSERT_EQ(cps_sim_seconds(sim), 240);
    /* oracle: 1 pod, 8 for [60,120), then 1: 870 pod-seconds, $0.012083 */
    ASSERT_NEAR(r[0].pod_seconds, 870, 1e-9);
    ASSERT_NEAR(r[0].cost_usd, 0.0120833333, 1e-9);
    ASSERT_NEAR(r[0].violation_pct, 0, 0);
    /* static:9: 8 pod starts, $0.030000, no violations */
    ASSERT_EQ(r[1].pod_starts, 8);
    ASSERT_NEAR(r[1].cost_usd, 0.03, 1e-12);
    ASSERT_NEAR(r[1].violation_pct, 0, 0);
    /* hpa 0.5: $0.012500, 76.923077 % (25 % of seconds), 3 actions, 6 starts, peak 7 */
    ASSERT_NEAR(r[2].cost_usd, 0.0125, 1e-12);
    ASSERT_NEAR(r[2].violation_pct, 76.923077, 1e-6);
    ASSERT_NEAR(r[2].violation_time_pct, 25.0, 1e-9);
    ASSERT_EQ(r[2].scale_actions, 3);
    ASSERT_EQ(r[2].pod_starts, 6);
    ASSERT_EQ(r[2].peak_pods, 7);
    /* requests: 60 * (50 + 500 + 50 + 50) */
    ASSERT_NEAR(r[2].requests, 39000, 1e-9);
    ASSERT_NEAR(r[1].cost_vs_oracle, 0.03 / 0.0120833333333, 1e-6);
    cps_sim_free(sim);
}

/* Feeding a run at once or second by second is the same simulation. */
static void test_feed_granularity(void)
{
    struct cps_sim_result a[3], b[3];
    struct cps_err err;
    for (int pass = 0; pass < 2; pass++) {
        struct cps_sim_setup setup;
        default_setup(&setup, "oracle,static:9,hpa:0.5");
        struct cps_sim *sim = cps_sim_new(&setup, &err);
        ASSERT_TRUE(sim != NULL);
        if (!sim)
            return;
        feed_tiny(sim, pass);
        cps_sim_finish(sim, pass ? b : a, &err);
        cps_sim_free(sim);
    }
    for (int i = 0; i < 3; i++) {
        ASSERT_NEAR(a[i].cost_usd, b[i].cost_usd, 0);
        ASSERT_NEAR(a[i].violating_requests, b[i].violating_requests, 0);
        ASSERT_EQ(a[i].pod_starts, b[i].pod_starts);
    }
}

/*
 * Oracle with per-second prices (docs/model.md §7). λ 100 needs 2 pods, 50
 * needs 1. Seconds 0-9: 100; 10-99: 50; 100-109: 100. Price 3600/h (1 USD
 * per pod-second) for seconds 0-49, 7200/h (2 USD) after.
 *   level 1, busy all 110 s: 50*1 + 60*2 = 170
 *   level 2: busy 0-9 = 10; gap 10-99 (90 s > startup 30): keep = 40*1 +
 *   50*2 = 140, recreate in [70, 100) = 30*2 = 60 -> 60, one start;
 *   busy 100-109 = 20. Total 90.
 *   Oracle: 260 USD, 160 pod-seconds, 1 pod start.
 */
static void test_oracle_varying_price(void)
{
    struct cps_sim_setup setup;
    default_setup(&setup, "oracle");
    struct cps_err err;
    struct cps_sim *sim = cps_sim_new(&setup, &err);
    ASSERT_TRUE(sim != NULL);
    if (!sim)
        return;
    cps_sim_feed(sim, 100, 3600, 10, &err);
    cps_sim_feed(sim, 50, 3600, 40, &err);
    cps_sim_feed(sim, 50, 7200, 50, &err);
    cps_sim_feed(sim, 100, 7200, 10, &err);
    struct cps_sim_result r[1];
    ASSERT_EQ(cps_sim_finish(sim, r, &err), 0);
    ASSERT_NEAR(r[0].cost_usd, 260, 1e-9);
    ASSERT_NEAR(r[0].pod_seconds, 160, 1e-9);
    ASSERT_EQ(r[0].pod_starts, 1);
    ASSERT_EQ(r[0].peak_pods, 2);
    cps_sim_free(sim);
}

/*
 * A short gap is kept (min(gap, startup)); a level first needed after
 * second 0 pays its startup once. λ: 0-9 at 50 (1 pod), 10-19 at 100
 * (2 pods: level 2 created, 30 s), 20-29 at 50, 30-39 at 100 (gap 10 s
 * kept), then 50 for 10 s. Constant $0.05.
 *   level 1: 50 s; level 2: 30 (startup) + 10 + 10 (gap) + 10 = 60.
 */
static void test_oracle_constant_price(void)
{
    struct cps_sim_setup setup;
    default_setup(&setup, "oracle");
    struct cps_err err;
    struct cps_sim *sim = cps_sim_new(&setup, &err);
    ASSERT_TRUE(sim != NULL);
    if (!sim)
        return;
    cps_sim_feed(sim, 50, 0.05, 10, &err);
    cps_sim_feed(sim, 100, 0.05, 10, &err);
    cps_sim_feed(sim, 50, 0.05, 10, &err);
    cps_sim_feed(sim, 100, 0.05, 10, &err);
    cps_sim_feed(sim, 50, 0.05, 10, &err);
    struct cps_sim_result r[1];
    ASSERT_EQ(cps_sim_finish(sim, r, &err), 0);
    ASSERT_NEAR(r[0].pod_seconds, 110, 1e-9);
    ASSERT_NEAR(r[0].cost_usd, 110 * 0.05 / 3600, 1e-12);
    ASSERT_EQ(r[0].pod_starts, 1);
    /* where even max pods miss the SLO, the oracle violates too */
    setup.max_replicas = 1;
    struct cps_sim *capped = cps_sim_new(&setup, &err);
    ASSERT_TRUE(capped != NULL);
    if (capped) {
        cps_sim_feed(capped, 50, 0.05, 10, &err);
        cps_sim_feed(capped, 100, 0.05, 10, &err);
        ASSERT_EQ(cps_sim_finish(capped, r, &err), 0);
        ASSERT_EQ(r[0].violating_seconds, 10);
        ASSERT_NEAR(r[0].violation_pct, 100.0 * 1000 / 1500, 1e-9);
        cps_sim_free(capped);
    }
    cps_sim_free(sim);
}

/* Sum a column of the steps CSV for one policy. */
static double sum_steps_column(FILE *f, const char *policy, int column, int *rows, int *min_replicas,
                               int *max_replicas)
{
    char line[512];
    double sum = 0;
    *rows = 0;
    *min_replicas = 1 << 30;
    *max_replicas = -1;
    rewind(f);
    if (!fgets(line, sizeof line, f))
        return -1;
    while (fgets(line, sizeof line, f)) {
        char *fields[16];
        int n = 0;
        for (char *p = strtok(line, ",\n"); p && n < 16; p = strtok(NULL, ",\n"))
            fields[n++] = p;
        if (n < 11 || strcmp(fields[0], policy) != 0)
            continue;
        sum += atof(fields[column]);
        int replicas = atoi(fields[4]);
        if (replicas < *min_replicas)
            *min_replicas = replicas;
        if (replicas > *max_replicas)
            *max_replicas = replicas;
        (*rows)++;
    }
    return sum;
}

/*
 * The steps file lets anyone recompute the totals (docs/model.md §8), and every
 * policy stays inside [min, max] on a load that swings far outside them.
 */
static void test_steps_recompute_totals(void)
{
    struct cps_sim_setup setup;
    default_setup(&setup, "cpscale,hpa,static:3");
    setup.min_replicas = 2;
    setup.max_replicas = 6;
    struct cps_target target;
    ASSERT_EQ(cps_target_init_defaults(&target), 0);
    target.min_replicas = 2;
    target.max_replicas = 6;
    setup.target = &target;
    struct cps_err err;
    struct cps_sim *sim = cps_sim_new(&setup, &err);
    FILE *steps = tmpfile();
    ASSERT_TRUE(sim != NULL && steps != NULL);
    if (!sim || !steps)
        return;
    ASSERT_EQ(cps_sim_set_steps(sim, steps, 7), 0);
    for (int i = 0; i < 40; i++)
        cps_sim_feed(sim, i % 4 == 0 ? 900 : 30 + 10 * i, 0.05, 60, &err);
    struct cps_sim_result r[3];
    ASSERT_EQ(cps_sim_finish(sim, r, &err), 0);
    fflush(steps);
    const char *names[] = {"cpscale", "hpa", "static:3"};
    for (int i = 0; i < 3; i++) {
        int rows, lo, hi;
        double cost = sum_steps_column(steps, names[i], 10, &rows, &lo, &hi);
        ASSERT_NEAR(cost, r[i].cost_usd, 1e-6 * r[i].cost_usd + 1e-9);
        double violating = sum_steps_column(steps, names[i], 9, &rows, &lo, &hi);
        ASSERT_NEAR(violating, r[i].violating_requests, 1e-3 + 1e-9 * r[i].violating_requests);
        ASSERT_EQ(rows, (2400 + 6) / 7);
        ASSERT_TRUE(lo >= 2);
        ASSERT_TRUE(hi <= 6);
        ASSERT_TRUE(r[i].peak_pods <= 6);
    }
    fclose(steps);
    cps_target_release(&target);
    cps_sim_free(sim);
}

/* Bad setups are refused with a message, not simulated. */
static void test_bad_setup(void)
{
    struct cps_sim_setup setup;
    struct cps_err err;
    default_setup(&setup, "oracle");
    setup.world.service_rate = 0;
    ASSERT_TRUE(cps_sim_new(&setup, &err) == NULL);
    default_setup(&setup, "oracle");
    setup.min_replicas = 5;
    setup.max_replicas = 4;
    ASSERT_TRUE(cps_sim_new(&setup, &err) == NULL);
    struct cps_sim_policy_spec specs[CPS_SIM_MAX_POLICIES];
    size_t n;
    ASSERT_EQ(cps_sim_parse_policies("cpscale,bogus", specs, &n, &err), -1);
    ASSERT_CONTAINS(err.message, "bogus");
    ASSERT_EQ(cps_sim_parse_policies("hpa:1.5", specs, &n, &err), -1);
    ASSERT_EQ(cps_sim_parse_policies("static:x", specs, &n, &err), -1);
    ASSERT_EQ(cps_sim_parse_policies("oracle,oracle", specs, &n, &err), -1);
    ASSERT_EQ(cps_sim_parse_policies("cpscale,", specs, &n, &err), -1);
    ASSERT_EQ(cps_sim_parse_policies("hpa:0.45,static:12", specs, &n, &err), 0);
    ASSERT_EQ(n, 2);
    ASSERT_NEAR(specs[0].hpa_target, 0.45, 0);
    ASSERT_EQ(specs[1].static_replicas, 12);
}

int main(void)
{
    CPS_RUN(test_tiny_trace_check_values);
    CPS_RUN(test_feed_granularity);
    CPS_RUN(test_oracle_varying_price);
    CPS_RUN(test_oracle_constant_price);
    CPS_RUN(test_steps_recompute_totals);
    CPS_RUN(test_bad_setup);
    CPS_TEST_END();
}
