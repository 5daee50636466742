#include "query_pick.h"

#include <stddef.h>

/* The field of `queries` behind a queried metric, or NULL. */
static const char *field(const struct cps_queries *queries, enum cps_metric metric)
{
    switch (metric) {
    case CPS_METRIC_QPS: return queries->qps;
    case CPS_METRIC_P95: return queries->p95_ms;
    case CPS_METRIC_CPU: return queries->cpu_utilization;
    case CPS_METRIC_READY: return queries->ready_replicas;
    case CPS_METRIC_COST: return queries->cost_per_pod_hour;
    case CPS_METRIC_BUDGET_QPS: return queries->budget_qps;
    case CPS_METRIC_BUDGET_P95: return queries->budget_p95_ms;
    default: return NULL;
    }
}

const char *cps_query_pick(const struct cps_queries *own, const struct cps_queries *all,
                           enum cps_metric metric)
{
    const char *text = field(own, metric);
    return text ? text : field(all, metric);
}
