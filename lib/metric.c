#include "metric.h"

static const char *const query_keys[CPS_METRIC_QUERIED] = {
    [CPS_METRIC_QPS] = "qps",
    [CPS_METRIC_P95] = "p95_ms",
    [CPS_METRIC_CPU] = "cpu_utilization",
    [CPS_METRIC_READY] = "ready_replicas",
    [CPS_METRIC_COST] = "cost_per_pod_hour",
};

const char *cps_metric_query_key(enum cps_metric m)
{
    return (unsigned)m < CPS_METRIC_QUERIED ? query_keys[m] : 0;
}
