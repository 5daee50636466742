/*
 * The controller's counters (controller/metrics.c): what the tick records
 * through cps_metrics_record_*() is what /metrics shows.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "cps_test.h"

static void test_recorded_counters(void)
{
    struct cps_controller ctl;
    memset(&ctl, 0, sizeof ctl);
    struct cps_metrics *m = &ctl.metrics;
    cps_metrics_record_tick(m, 0.02, 1.5);
    cps_metrics_record_tick(m, 3.0, 2.25);
    cps_metrics_record_tick_skipped(m);
    cps_metrics_record_query_error(m, CPS_METRIC_COST, CPS_PROM_ERROR_DECODE);
    cps_metrics_record_query_error(m, CPS_METRIC_COST, CPS_PROM_ERROR_DECODE);
    cps_metrics_record_query_error(m, CPS_METRIC_QPS, CPS_PROM_ERROR_HTTP);
    cps_metrics_record_query_error(m, CPS_METRIC_READY, CPS_PROM_ERROR_HTTP); /* not shown */
    cps_metrics_record_reload(m, 1);
    cps_metrics_record_reload(m, 0);
    cps_metrics_record_reload(m, 0);
    size_t len = 0;
    char *text = cps_metrics_render(&ctl, &len);
    ASSERT_TRUE(text != NULL);
    if (!text)
        return;
    ASSERT_EQ(len, strlen(text));
    static const char *const want[] = {
        "cpscale_ticks_total 2\n",
        "cpscale_ticks_skipped_total 1\n",
        "cpscale_tick_duration_seconds_bucket{le=\"0.025\"} 1\n",
        "cpscale_tick_duration_seconds_bucket{le=\"2.5\"} 1\n",
        "cpscale_tick_duration_seconds_bucket{le=\"5\"} 2\n",
        "cpscale_tick_duration_seconds_bucket{le=\"+Inf\"} 2\n",
        "cpscale_tick_duration_seconds_sum 3.02\n",
        "cpscale_tick_duration_seconds_count 2\n",
        "cpscale_process_cpu_seconds 2.25\n",
        "cpscale_query_errors_total{metric=\"cost_per_pod_hour\",error=\"decode\"} 2\n",
        "cpscale_query_errors_total{metric=\"qps\",error=\"http\"} 1\n",
        "cpscale_query_errors_total{metric=\"qps\",error=\"transport\"} 0\n",
        "cpscale_config_reloads_total{result=\"ok\"} 1\n",
        "cpscale_config_reloads_total{result=\"refused\"} 2\n",
        "cpscale_leader 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ASSERT_CONTAINS(text, want[i]);
    /* ready replicas are never queried: no series for them */
    ASSERT_TRUE(strstr(text, "metric=\"ready_replicas\"") == NULL);
    /* the four queried metrics, in the plan's order */
    const char *qps = strstr(text, "metric=\"qps\"");
    const char *p95 = strstr(text, "metric=\"p95_ms\"");
    const char *cpu = strstr(text, "metric=\"cpu_utilization\"");
    const char *cost = strstr(text, "metric=\"cost_per_pod_hour\"");
    ASSERT_TRUE(qps && p95 && cpu && cost && qps < p95 && p95 < cpu && cpu < cost);
    free(text);
}

/* The text of one per-target sample of target shop/web. */
static void sample(char *buf, size_t size, const char *metric, const char *value)
{
    snprintf(buf, size, "%s{namespace=\"shop\",name=\"web\"} %s\n", metric, value);
}

static void assert_sample(const char *text, const char *metric, const char *value)
{
    char want[256];
    sample(want, sizeof want, metric, value);
    ASSERT_CONTAINS(text, want);
}

/* A decision on the forecast with these SLO budget figures. */
static void forecast_decision(struct cps_target_runtime *rt, double requests, int violating,
                              double spent, double burn, double adjust, double tail,
                              double shape, double safe_rps)
{
    memset(&rt->decision, 0, sizeof rt->decision);
    rt->decision.basis = CPS_BASIS_FORECAST;
    rt->decision.tick_requests = requests;
    rt->decision.tick_violating = violating;
    rt->decision.budget_spent = spent;
    rt->decision.burn_rate = burn;
    rt->decision.headroom_adjust = adjust;
    rt->decision.surprise_tail = tail;
    rt->decision.latency_shape = shape;
    rt->decision.rps_per_pod = safe_rps;
}

/* The SLO budget families: the configured budget always; the counters and
 * the budget's gauges from the first decision on the forecast; decisions on
 * missing data count nothing; a take-back (-1) undoes its +1. */
static void test_slo_budget_metrics(void)
{
    struct cps_controller ctl;
    memset(&ctl, 0, sizeof ctl);
    struct cps_target_runtime rt;
    memset(&rt, 0, sizeof rt);
    struct cps_target target;
    memset(&target, 0, sizeof target);
    rt.target = &target;
    target.namespace = "shop";
    target.name = "web";
    target.slo_violation_budget = 0.01;
    ctl.targets = &rt;
    ctl.n_targets = 1;

    size_t len = 0;
    char *text = cps_metrics_render(&ctl, &len);
    ASSERT_TRUE(text != NULL);
    if (!text)
        return;
    assert_sample(text, "cpscale_slo_violation_budget_ratio", "0.01");
    ASSERT_CONTAINS(text, "# TYPE cpscale_slo_requests_total counter\n");
    ASSERT_CONTAINS(text, "# TYPE cpscale_slo_violating_requests_total counter\n");
    ASSERT_CONTAINS(text, "# TYPE cpscale_slo_burn_rate gauge\n");
    ASSERT_CONTAINS(text, "# HELP cpscale_policy_headroom_adjust ");
    ASSERT_CONTAINS(text, "# TYPE cpscale_policy_forecast_tail gauge\n");
    ASSERT_TRUE(strstr(text, "cpscale_policy_forecast_tail{") == NULL);
    ASSERT_CONTAINS(text, "# TYPE cpscale_policy_minute_spread_factor gauge\n");
    ASSERT_TRUE(strstr(text, "cpscale_policy_minute_spread_factor{") == NULL);
    ASSERT_CONTAINS(text, "# TYPE cpscale_policy_latency_shape gauge\n");
    ASSERT_CONTAINS(text, "# TYPE cpscale_policy_pod_safe_rps gauge\n");
    ASSERT_TRUE(strstr(text, "cpscale_policy_pod_safe_rps{") == NULL);
    ASSERT_CONTAINS(text, "# TYPE cpscale_policy_startup_seconds gauge\n");
    ASSERT_TRUE(strstr(text, "cpscale_policy_startup_seconds{") == NULL);
    ASSERT_CONTAINS(text, "# TYPE cpscale_policy_startup_learned_seconds gauge\n");
    ASSERT_TRUE(strstr(text, "cpscale_policy_startup_learned_seconds{") == NULL);
    ASSERT_TRUE(strstr(text, "cpscale_slo_requests_total{") == NULL); /* nothing decided yet */
    ASSERT_TRUE(strstr(text, "cpscale_slo_budget_spent_ratio{") == NULL);
    free(text);

    forecast_decision(&rt, 600, 0, 0.25, 0.5, -0.75, 0.5, 1, 60); /* 10 qps for 60 s, within the SLO */
    cps_metrics_count_slo(&rt, 1);
    forecast_decision(&rt, 300, 1, 0.5, 2, 1.25, -0.625, 2.25, 28.5); /* 5 qps for 60 s, over it */
    rt.decision.startup_s = 112.5;
    rt.decision.startup_learned_s = 97.25;
    rt.decision.minute_factor = 0.625;
    cps_metrics_count_slo(&rt, 1);
    forecast_decision(&rt, 1000, 1, 9, 9, 9, 9, 9, 9); /* on missing data: nothing */
    rt.decision.basis = CPS_BASIS_MISSING;
    cps_metrics_count_slo(&rt, 1);
    forecast_decision(&rt, 1000, 1, 9, 9, 9, 9, 9, 9); /* still learning capacity: nothing */
    rt.decision.basis = CPS_BASIS_LEARNING;
    cps_metrics_count_slo(&rt, 1);
    forecast_decision(&rt, 50, 1, 0.5, 2, 1.25, -0.625, 2.25, 28.5); /* decided, then taken back (409) */
    rt.decision.startup_s = 112.5;
    rt.decision.startup_learned_s = 97.25;
    rt.decision.minute_factor = 0.625;
    cps_metrics_count_slo(&rt, 1);
    cps_metrics_count_slo(&rt, -1);

    text = cps_metrics_render(&ctl, &len);
    ASSERT_TRUE(text != NULL);
    if (!text)
        return;
    assert_sample(text, "cpscale_slo_requests_total", "900");
    assert_sample(text, "cpscale_slo_violating_requests_total", "300");
    assert_sample(text, "cpscale_slo_budget_spent_ratio", "0.5");
    assert_sample(text, "cpscale_slo_burn_rate", "2");
    assert_sample(text, "cpscale_policy_headroom_adjust", "1.25");
    assert_sample(text, "cpscale_policy_forecast_tail", "-0.625");
    assert_sample(text, "cpscale_policy_minute_spread_factor", "0.625");
    assert_sample(text, "cpscale_policy_latency_shape", "2.25");
    assert_sample(text, "cpscale_policy_pod_safe_rps", "28.5");
    assert_sample(text, "cpscale_policy_startup_seconds", "112.5");
    assert_sample(text, "cpscale_policy_startup_learned_seconds", "97.25");
    assert_sample(text, "cpscale_slo_violation_budget_ratio", "0.01");
    free(text);
}

/* The per-target lines are built without printf: each must read as the
 * format "%s{namespace=\"%s\",name=\"%s\"} %.17g" would write it (the
 * expected text is made here with snprintf), label values escaped (\\,
 * \" and \n), NaN as "NaN", and rows for decisions, scale events and
 * failures with their extra label. */
static void test_sample_lines(void)
{
    struct cps_controller ctl;
    memset(&ctl, 0, sizeof ctl);
    struct cps_target_runtime rt;
    memset(&rt, 0, sizeof rt);
    struct cps_target target;
    memset(&target, 0, sizeof target);
    rt.target = &target;
    target.namespace = "a\"b";
    target.name = "c\\d\ne";
    target.min_replicas = -3;
    target.max_replicas = 2147483647;
    target.slo_latency_p95_ms = 0.1;
    target.cost_max_per_hour = 1e20;
    target.slo_violation_budget = 1.0 / 3;
    rt.decided = 1;
    rt.decision.desired = 7;
    rt.observation.qps = 123456789012.5;
    rt.observation.missing = CPS_METRIC_BIT(CPS_METRIC_P95);
    rt.cost_per_hour = -0.0;
    rt.cost_per_million = NAN;
    rt.decisions[CPS_REASON_SCALE_UP] = 3;
    rt.scale_downs = 9007199254740993ULL; /* past 2^53: the double rounds */
    struct cps_scale_failure_count failures[CPS_SCALE_FAILURE_CODES] = {{409, 2}, {0, 1}};
    rt.failures = failures;
    ctl.targets = &rt;
    ctl.n_targets = 1;
    size_t len = 0;
    char *text = cps_metrics_render(&ctl, &len);
    ASSERT_TRUE(text != NULL);
    if (!text)
        return;
    static const struct {
        const char *metric, *extra;
        double value;
    } rows[] = {
        {"cpscale_target_desired_replicas", "", 7},
        {"cpscale_target_min_replicas", "", -3},
        {"cpscale_target_max_replicas", "", 2147483647},
        {"cpscale_target_qps", "", 123456789012.5},
        {"cpscale_target_slo_latency_p95_ms", "", 0.1},
        {"cpscale_target_cost_per_hour_usd", "", -0.0},
        {"cpscale_target_cost_max_per_hour_usd", "", 1e20},
        {"cpscale_slo_violation_budget_ratio", "", 1.0 / 3},
        {"cpscale_decisions_total", ",reason=\"scale_up\"", 3},
        {"cpscale_scale_events_total", ",direction=\"up\"", 0},
        {"cpscale_scale_events_total", ",direction=\"down\"", 9007199254740993.0},
        {"cpscale_scale_failures_total", ",code=\"409\"", 2},
        {"cpscale_scale_failures_total", ",code=\"0\"", 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char want[512];
        snprintf(want, sizeof want, "\n%s{namespace=\"a\\\"b\",name=\"c\\\\d\\ne\"%s} %.17g\n",
                 rows[i].metric, rows[i].extra, rows[i].value);
        ASSERT_CONTAINS(text, want);
    }
    /* missing p95 and a NaN cost: no sample; */
    ASSERT_TRUE(strstr(text, "cpscale_target_p95_latency_ms{") == NULL);
    ASSERT_TRUE(strstr(text, "cpscale_target_cost_per_million_requests_usd{") == NULL);
    free(text);
}

/* Failure rows across targets: each target's rows name its own codes and
 * counts, whether the targets before it had failures or not (the snapshot
 * keeps only the codes seen, one run per target). */
static void test_failures_per_target(void)
{
    struct cps_controller ctl;
    memset(&ctl, 0, sizeof ctl);
    struct cps_target targets[3];
    struct cps_target_runtime rts[3];
    memset(targets, 0, sizeof targets);
    memset(rts, 0, sizeof rts);
    static char names[3][8] = {"none", "two", "one"};
    for (int i = 0; i < 3; i++) {
        targets[i].namespace = "ns";
        targets[i].name = names[i];
        rts[i].target = &targets[i];
    }
    struct cps_scale_failure_count two[CPS_SCALE_FAILURE_CODES] = {{503, 4}, {0, 6}};
    struct cps_scale_failure_count one[CPS_SCALE_FAILURE_CODES] = {{409, 5}};
    rts[1].failures = two;
    rts[2].failures = one;
    ctl.targets = rts;
    ctl.n_targets = 3;
    size_t len = 0;
    char *text = cps_metrics_render(&ctl, &len);
    ASSERT_TRUE(text != NULL);
    if (!text)
        return;
    ASSERT_CONTAINS(text, "\ncpscale_scale_failures_total{namespace=\"ns\",name=\"two\",code=\"503\"} 4\n");
    ASSERT_CONTAINS(text, "\ncpscale_scale_failures_total{namespace=\"ns\",name=\"two\",code=\"0\"} 6\n");
    ASSERT_CONTAINS(text, "\ncpscale_scale_failures_total{namespace=\"ns\",name=\"one\",code=\"409\"} 5\n");
    ASSERT_TRUE(strstr(text, "cpscale_scale_failures_total{namespace=\"ns\",name=\"none\"") == NULL);
    size_t rows = 0;
    for (const char *p = text; (p = strstr(p, "\ncpscale_scale_failures_total{")) != NULL; p++)
        rows++;
    ASSERT_EQ(rows, (size_t)3);
    free(text);
}

/* A scrape that ends while the loop fills a spare snapshot (the current
 * one was being read when the tick published) must not free that spare
 * under the loop's hands. The loop publishes over and over while another
 * thread scrapes over and over; enough targets that the snapshot's table
 * is its own mapping, so a write into a freed one faults even without
 * ASan. Bounded by counts, not time; the check is that every scrape reads
 * a whole, untorn text. */
#define RACE_TARGETS 2000
#define RACE_PUBLISHES 3000

struct race {
    struct cps_metrics_publisher *pub;
    _Atomic int done;
    size_t scrapes, whole, publish_failures;
};

static void *scrape_until_done(void *user)
{
    struct race *r = user;
    static char buf[4096];
    for (size_t k = 0; !r->done; k++) {
        void *stream = cps_metrics_stream_open(r->pub);
        if (!stream)
            continue;
        /* mostly short scrapes (a client that hangs up after a block), so
         * that many end while the loop fills a spare; every 16th whole */
        int whole = k % 16 == 0;
        size_t lines = 0;
        long n;
        while ((n = cps_metrics_stream_read(stream, buf, sizeof buf)) > 0) {
            for (long i = 0; i < n; i++)
                lines += buf[i] == '\n';
            if (!whole)
                break;
        }
        cps_metrics_stream_close(stream);
        if (whole) {
            r->scrapes++;
            r->whole += lines > RACE_TARGETS;
        }
    }
    return NULL;
}

static void test_scrape_ends_while_publishing(void)
{
    struct cps_controller ctl;
    memset(&ctl, 0, sizeof ctl);
    struct cps_target *targets = calloc(RACE_TARGETS, sizeof *targets);
    struct cps_target_runtime *rts = calloc(RACE_TARGETS, sizeof *rts);
    ASSERT_TRUE(targets && rts);
    if (!targets || !rts)
        return;
    static char names[RACE_TARGETS][16];
    for (int i = 0; i < RACE_TARGETS; i++) {
        snprintf(names[i], sizeof names[i], "app-%d", i);
        targets[i].namespace = "ns";
        targets[i].name = names[i];
        rts[i].target = &targets[i];
    }
    ctl.targets = rts;
    ctl.n_targets = RACE_TARGETS;
    struct race r = {.pub = cps_metrics_publisher_new()};
    ASSERT_TRUE(r.pub != NULL);
    if (!r.pub || cps_metrics_publish(r.pub, &ctl, 1) != 0)
        return;
    pthread_t scraper;
    ASSERT_EQ(pthread_create(&scraper, NULL, scrape_until_done, &r), 0);
    for (int i = 0; i < RACE_PUBLISHES; i++)
        r.publish_failures += cps_metrics_publish(r.pub, &ctl, 1) != 0;
    r.done = 1;
    pthread_join(scraper, NULL);
    ASSERT_EQ(r.publish_failures, (size_t)0);
    ASSERT_TRUE(r.scrapes > 0);
    ASSERT_EQ(r.whole, r.scrapes);
    cps_metrics_publisher_free(r.pub);
    free(targets);
    free(rts);
}

int main(void)
{
    CPS_RUN(test_sample_lines);
    CPS_RUN(test_recorded_counters);
    CPS_RUN(test_slo_budget_metrics);
    CPS_RUN(test_failures_per_target);
    CPS_RUN(test_scrape_ends_while_publishing);
    CPS_TEST_END();
}
