#include "metric.h"

static const char *const query_keys[CPS_METRIC_QUERIED] = {
    [CPS_METRIC_QPS] = "qps",
    [CPS_METRIC_P95] = "p95_ms",
    [CPS_METRIC_CPU] = "cpu_utilization",
    [CPS_METRIC_READY] = "ready_replicas",
    [CPS_METRIC_COST] = "cost_per_pod_hour",
    [CPS_METRIC_BUDGET_QPS] = "budget_qps",
    [CPS_METRIC_BUDGET_P95] = "budget_p95_ms",
};

const char *cps_metric_query_key(enum cps_metric m)
{
    return (unsigned)m < CPS_METRIC_QUERIED ? query_keys[m] : 0;
}

int cps_metric_is_optional(enum cps_metric m)
{
    return m == CPS_METRIC_COST || m == CPS_METRIC_BUDGET_QPS || m == CPS_METRIC_BUDGET_P95;
}
