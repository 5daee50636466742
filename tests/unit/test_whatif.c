/*
 * What-if lists (sim/whatif.c), the in-memory trace that what-if and tune
 * replay (sim/trace_runs.c) and the thread pool under both (sim/pool.c):
 *  - lists parse into the setup's units and refuse what a single flag would;
 *  - a trace replayed from memory, whole or in pieces, gives the same figures
 *    as `cpscale sim` replaying the file;
 *  - the pool runs every item once whatever the thread count, and reports
 *    the failure of the lowest failing index.
 */
#include <stdlib.h>
#include <unistd.h>

#include "cps_test.h"
#include "pool.h"
#include "replay.h"
#include "trace_runs.h"
#include "whatif.h"

static void test_parse_lists(void)
{
    static const struct {
        const char *flag, *list;
        size_t n;
        double first, last;
    } good[] = {
        {"--startup", "5s,30s,2m", 3, 5, 120},
        {"--base-latency", "20ms,1.5s", 2, 0.02, 1.5},
        {"--price", "0.02,0.05", 2, 0.02, 0.05},
        {"--service-rate", "50,100,200", 3, 50, 200},
        {"--routing", "random,pooled", 2, CPS_ROUTING_RANDOM, CPS_ROUTING_POOLED},
        {"--interval", "15s,1m", 2, 15, 60},
        {"--lag", "0s,15s", 2, 0, 15},
        {"--scale", "1,10", 2, 1, 10},
        {"--hpa-target", "0.5,0.7", 2, 0.5, 0.7},
        {"--slo", "100,250", 2, 100, 250},
        {"--window", "30s,5m", 2, 30, 300},
        {"--service-times", "exponential,deterministic,lognormal:2", 3, -1, 2},
        {"--capacity-drift", "0,0.2", 2, 0, 0.2},
        {"--startup-jitter", "0s,90s", 2, 0, 90},
        {"--world-seed", "1,2,3", 3, 1, 3},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CPS_ROW_BEGIN();
        struct cps_whatif w;
        struct cps_err err;
        int param = cps_whatif_param_of_flag(good[i].flag);
        ASSERT_TRUE(param >= 0);
        if (param >= 0) {
            ASSERT_EQ(cps_whatif_parse_list((enum cps_whatif_param)param, good[i].list, &w, &err),
                      0);
            ASSERT_EQ(w.n_values, good[i].n);
            ASSERT_NEAR(w.values[0], good[i].first, 1e-12);
            ASSERT_NEAR(w.values[w.n_values - 1], good[i].last, 1e-12);
            ASSERT_STR_EQ(cps_whatif_param_name((enum cps_whatif_param)param), good[i].flag + 2);
        }
        CPS_ROW_END(good[i].flag);
    }
    static const struct {
        const char *flag, *list, *message;
    } bad[] = {
        {"--startup", "5s,,30s", "bad list item"},
        {"--startup", "5s,30s,", "bad list item"},
        {"--startup", "5s,5s", "listed twice"},
        {"--startup", "5s,2x", "not a duration"},
        {"--startup", "5s,2d", "outside"},
        {"--interval", "0s,15s", "outside"},
        {"--price", "0.02,-1", "outside"},
        {"--service-rate", "100,fast", "not a number"},
        {"--routing", "random,round-robin", "not random or pooled"},
        {"--hpa-target", "0.5,1.5", "outside"},
        {"--scale", "0,1", "\"0\" is outside (0, 1e+12]"},
        {"--scale", "1,-0.5", "outside (0,"},
        {"--scale", "1,nan", "not a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CPS_ROW_BEGIN();
        struct cps_whatif w;
        struct cps_err err;
        cps_err_clear(&err);
        int param = cps_whatif_param_of_flag(bad[i].flag);
        ASSERT_EQ(cps_whatif_parse_list((enum cps_whatif_param)param, bad[i].list, &w, &err), -1);
        ASSERT_CONTAINS(err.message, bad[i].message);
        CPS_ROW_END(bad[i].list);
    }
    ASSERT_EQ(cps_whatif_param_of_flag("--policy"), -1);
    ASSERT_EQ(cps_whatif_param_of_flag("--json"), -1);
}

static void test_apply(void)
{
    struct cps_sim_setup setup;
    struct cps_target target;
    memset(&setup, 0, sizeof setup);
    memset(&target, 0, sizeof target);
    cps_whatif_apply(CPS_WHATIF_BASE_LATENCY, 0.035, &setup, &target);
    ASSERT_NEAR(setup.world.base_latency_ms, 35, 1e-9);
    cps_whatif_apply(CPS_WHATIF_SLO, 250, &setup, &target);
    ASSERT_NEAR(setup.slo_ms, 250, 0);
    ASSERT_NEAR(target.slo_latency_p95_ms, 250, 0);
    cps_whatif_apply(CPS_WHATIF_ROUTING, CPS_ROUTING_POOLED, &setup, &target);
    ASSERT_EQ(setup.world.routing, CPS_ROUTING_POOLED);
}

/* docs/model.md §9 defaults with a cpscale target. */
static void setup_for(struct cps_sim_setup *s, struct cps_target *t, const char *policies)
{
    memset(s, 0, sizeof *s);
    cps_target_init_defaults(t);
    s->world.service_rate = 100;
    s->world.base_latency_ms = 20;
    s->world.startup_s = 30;
    s->world.price = 0.05;
    s->world.scale = 3;
    s->world.interval_s = 15;
    s->world.window_s = 60;
    s->world.lag_s = 15;
    s->world.hpa_target = 0.7;
    s->slo_ms = 100;
    s->min_replicas = 1;
    s->max_replicas = 1000;
    t->max_replicas = 1000;
    s->target = t;
    struct cps_err err;
    cps_sim_parse_policies(policies, s->policies, &s->n_policies, &err);
}

static void write_trace(const char *path)
{
    FILE *f = fopen(path, "w");
    fputs("timestamp,qps,cost_per_pod_hour\n", f);
    double rate = 100;
    for (int i = 0; i < 400; i++) {
        rate *= i % 7 == 0 ? 1.6 : i % 5 == 0 ? 0.6 : 1.02;
        if (rate > 4000)
            rate = 300;
        /* a gap (rows 200..209 missing) and an empty price on some rows */
        if (i >= 200 && i < 210)
            continue;
        if (i % 11 == 0)
            fprintf(f, "%d,%.3f,\n", 1700000000 + 60 * i, rate);
        else
            fprintf(f, "%d,%.3f,%.4f\n", 1700000000 + 60 * i, rate, 0.03 + 0.0001 * (i % 50));
    }
    fclose(f);
}

static void results_equal(const struct cps_sim_result *x, const struct cps_sim_result *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ASSERT_STR_EQ(x[i].name, y[i].name);
        ASSERT_NEAR(x[i].cost_usd, y[i].cost_usd, 0);
        ASSERT_NEAR(x[i].violation_pct, y[i].violation_pct, 0);
        ASSERT_EQ(x[i].pod_starts, y[i].pod_starts);
        ASSERT_EQ(x[i].scale_actions, y[i].scale_actions);
        ASSERT_NEAR(x[i].requests, y[i].requests, 0);
    }
}

/* Memory replay == file replay, and feeding in pieces == feeding at once. */
static void test_runs_match_file(void)
{
    char path[] = "/tmp/cps-test-runs-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    write_trace(path);
    struct cps_sim_setup setup;
    struct cps_target target;
    setup_for(&setup, &target, "cpscale,hpa,oracle,static:20");
    struct cps_err err;
    struct cps_sim_result from_file[4], from_memory[4], in_pieces[4];
    struct cps_sim *sim = cps_sim_new(&setup, &err);
    struct cps_trace_replay replay;
    ASSERT_EQ(cps_trace_replay_file(path, setup.world.scale, setup.world.price, sim, NULL, &replay,
                                    &err), 0);
    ASSERT_EQ(cps_sim_finish(sim, from_file, &err), 0);
    cps_sim_free(sim);
    struct cps_trace_runs runs;
    ASSERT_EQ(cps_trace_runs_load(path, NULL, &runs, &err), 0);
    ASSERT_EQ(runs.seconds, replay.seconds);
    ASSERT_EQ(runs.rows, replay.rows);
    ASSERT_EQ(runs.gaps, 1);
    sim = cps_sim_new(&setup, &err);
    ASSERT_EQ(cps_trace_runs_feed(&runs, 0, runs.seconds, setup.world.scale, setup.world.price, sim,
                                  &err), 0);
    ASSERT_EQ(cps_sim_finish(sim, from_memory, &err), 0);
    cps_sim_free(sim);
    results_equal(from_file, from_memory, 4);
    sim = cps_sim_new(&setup, &err);
    int64_t cuts[] = {0, 1, 59, 61, 7777, 12000, runs.seconds};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++)
        ASSERT_EQ(cps_trace_runs_feed(&runs, cuts[i], cuts[i + 1], setup.world.scale,
                                      setup.world.price, sim, &err), 0);
    ASSERT_EQ(cps_sim_finish(sim, in_pieces, &err), 0);
    cps_sim_free(sim);
    results_equal(from_file, in_pieces, 4);
    cps_trace_runs_release(&runs);
    cps_trace_runs_release(&runs); /* released twice: a no-op */
    cps_target_release(&target);
    unlink(path);
    ASSERT_EQ(cps_trace_runs_load("/nonexistent/trace.csv", NULL, &runs, &err), -1);
    ASSERT_CONTAINS(err.message, "cannot open");
}

#define POOL_ITEMS 1000

struct pool_ctx {
    int hits[POOL_ITEMS];
    size_t fail_from; /* items at or above this fail */
};

static int square_cb(void *ctx, size_t i, struct cps_err *err)
{
    struct pool_ctx *c = ctx;
    c->hits[i]++;
    if (i >= c->fail_from)
        return cps_err_set(err, "item", (int)i, 0, "failed at %zu", i);
    return 0;
}

static void test_pool(void)
{
    static const int jobs[] = {1, 2, 7, 64};
    for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++) {
        struct pool_ctx c;
        memset(&c, 0, sizeof c);
        c.fail_from = POOL_ITEMS;
        struct cps_err err;
        ASSERT_EQ(cps_pool_run(POOL_ITEMS, jobs[j], square_cb, &c, NULL, "test", &err), 0);
        int once = 1;
        for (size_t i = 0; i < POOL_ITEMS; i++)
            once &= c.hits[i] == 1;
        ASSERT_TRUE(once);
        /* failures: the lowest failing index that ran is reported */
        memset(&c, 0, sizeof c);
        c.fail_from = 500;
        ASSERT_EQ(cps_pool_run(POOL_ITEMS, jobs[j], square_cb, &c, NULL, "test", &err), -1);
        ASSERT_EQ(err.line, 500);
        for (size_t i = 0; i < 500; i++)
            if (c.hits[i] != 1)
                CPS_FAIL_AT("item %zu ran %d times before the failure", i, c.hits[i]);
    }
    struct cps_err err;
    ASSERT_EQ(cps_pool_run(0, 2, square_cb, NULL, NULL, "test", &err), 0);
    ASSERT_TRUE(cps_pool_default_jobs() >= 1);
}

int main(void)
{
    test_parse_lists();
    CPS_RUN(test_apply);
    CPS_RUN(test_runs_match_file);
    CPS_RUN(test_pool);
    CPS_TEST_END();
}
