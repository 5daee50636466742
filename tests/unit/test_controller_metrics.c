/*
 * The controller's counters (controller/metrics.c): what the tick records
 * through cps_metrics_record_*() is what /metrics shows.
 */
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

int main(void)
{
    CPS_RUN(test_recorded_counters);
    CPS_TEST_END();
}
