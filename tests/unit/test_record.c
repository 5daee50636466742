/*
 * The pure parts of `cpscale record` (sim/record.c): times on the command
 * line, the query each column sends, the column names.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cps_test.h"
#include "record.h"

static void test_parse_time(void)
{
    static const struct {
        const char *text;
        int rc;
        double want;
    } rows[] = {
        {"now", 0, 1000000.0},
        {"now-90m", 0, 1000000.0 - 5400.0},
        {"now-7d", 0, 1000000.0 - 7 * 86400.0},
        {"now-1.5d", 0, 1000000.0 - 1.5 * 86400.0},
        {"1714564800", 0, 1714564800.0},
        {"2024-05-01T12:00:00Z", 0, 1714564800.0},
        {"now-", -1, 0},
        {"now-xd", -1, 0},
        {"-5", -1, 0},
        {"yesterday", -1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        double got = 0;
        ASSERT_EQ(cps_record_parse_time(rows[i].text, 1000000.0, &got), rows[i].rc);
        if (rows[i].rc == 0)
            ASSERT_NEAR(got, rows[i].want, 1e-6);
        CPS_ROW_END(rows[i].text);
    }
}

static void test_build_query(void)
{
    struct cps_prometheus_config prom;
    memset(&prom, 0, sizeof prom);
    prom.namespace_label = "namespace";
    prom.deployment_label = "deployment";
    static const struct {
        const char *query;
        int single;
        const char *want;
    } rows[] = {
        {"sum(rate(r{namespace=\"$namespace\", pod=~\"$deployment-.*\"}[1m]))", 1,
         "sum(rate(r{namespace=\"shop\", pod=~\"web-.*\"}[1m]))"},
        {"sum by (namespace, deployment) (q)", 0,
         "(sum by (namespace, deployment) (q)) and on(namespace, deployment) "
         "label_replace(label_replace(vector(1), \"namespace\", \"shop\", \"__name__\", \".*\"), "
         "\"deployment\", \"web\", \"__name__\", \".*\")"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        struct cps_err err;
        cps_err_clear(&err);
        int single = -1;
        char *got = cps_prom_target_query(rows[i].query, &prom, "shop", "web", &single, &err);
        ASSERT_EQ(single, rows[i].single);
        ASSERT_STR_EQ(got, rows[i].want);
        free(got);
        CPS_ROW_END(rows[i].query);
    }
}

static void test_column_names(void)
{
    static const char *const want[CPS_RECORD_COLUMNS] = {"qps", "p95_ms", "replicas",
                                                         "cost_per_pod_hour"};
    for (int m = 0; m < CPS_RECORD_COLUMNS; m++) {
        CPS_ROW_BEGIN();
        ASSERT_STR_EQ(cps_record_column_name(cps_record_metrics[m]), want[m]);
        CPS_ROW_END(want[m]);
    }
    ASSERT_STR_EQ(cps_metric_query_key(cps_record_metrics[2]), "ready_replicas");
}

int main(void)
{
    CPS_RUN(test_parse_time);
    CPS_RUN(test_build_query);
    CPS_RUN(test_column_names);
    CPS_TEST_END();
}
