/*
 * The metrics cpscale observes for a target: one set, one name each.
 * enum cps_metric names a metric; a set of them (what arrived this tick,
 * what is missing) is a bit mask of CPS_METRIC_BIT(m).
 *
 * The first CPS_METRIC_QUERIED come from Prometheus queries, whose config
 * keys (`queries.<key>`) cps_metric_query_key() gives; replicas come from
 * the Kubernetes API.
 */
#ifndef CPS_METRIC_H
#define CPS_METRIC_H

enum cps_metric {
    CPS_METRIC_QPS = 0,  /* requests/s */
    CPS_METRIC_P95,      /* p95 latency, ms */
    CPS_METRIC_CPU,      /* busy share of the ready pods */
    CPS_METRIC_READY,    /* ready pods */
    CPS_METRIC_COST,     /* USD per pod-hour */
    CPS_METRIC_BUDGET_QPS, /* requests/s over the last scrape interval */
    CPS_METRIC_BUDGET_P95, /* p95 latency over the last scrape interval, ms */
    CPS_METRIC_QUERIED,  /* the ones above come from Prometheus */
    CPS_METRIC_REPLICAS = CPS_METRIC_QUERIED, /* the scale's current count */
    CPS_METRIC_COUNT
};

#define CPS_METRIC_BIT(m) (1u << (m))

/* Above this a metric's value is garbage, not load: a rate of 10^12
 * requests/s, a p95 of 30 years, a CPU share of 10^12 (a division by a tiny
 * request). Such values are left missing, like NaN; it is also the trace
 * format's largest rate. */
#define CPS_METRIC_IMPLAUSIBLE 1e12
/* The budget's two last-scrape metrics. */
#define CPS_METRIC_BUDGET_BITS                                                 \
    (CPS_METRIC_BIT(CPS_METRIC_BUDGET_QPS) | CPS_METRIC_BIT(CPS_METRIC_BUDGET_P95))

/* The `queries:` key of a queried metric ("qps", "p95_ms",
 * "cpu_utilization", "ready_replicas", "cost_per_pod_hour", "budget_qps",
 * "budget_p95_ms"), NULL for the others. */
const char *cps_metric_query_key(enum cps_metric m);

/* 1 for a queried metric the policy does without: the cost (the configured
 * price stands in) and the budget's last-scrape rate and p95 (the window's
 * stand in). A query for one may be "" (off), and its absence is never a
 * missing metric. */
int cps_metric_is_optional(enum cps_metric m);

#endif
