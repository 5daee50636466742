/*
 * The decision in words: the names of reasons and bounds (the log line's
 * and the metrics' labels) and the one-line detail (logs, Events, `cpscale
 * decide`). Apart from decide.c, which makes the decision, so that what is
 * decided and how it is told can each be read alone.
 */
#include "decide.h"

#include <stdio.h>

static const char *const reason_names[CPS_REASON_COUNT] = {
    [CPS_REASON_STEADY] = "steady",
    [CPS_REASON_SCALE_UP] = "scale_up",
    [CPS_REASON_SCALE_DOWN] = "scale_down",
    [CPS_REASON_SCALE_UP_LIMITED] = "scale_up_limited",
    [CPS_REASON_SCALE_DOWN_LIMITED] = "scale_down_limited",
    [CPS_REASON_STABILIZED] = "stabilized",
    [CPS_REASON_CLAMPED_MIN] = "clamped_min",
    [CPS_REASON_CLAMPED_MAX] = "clamped_max",
    [CPS_REASON_BUDGET_CAP] = "budget_cap",
    [CPS_REASON_MISSING_HOLD] = "missing_metrics_hold",
    [CPS_REASON_MISSING_FALLBACK] = "missing_metrics_fallback",
    [CPS_REASON_PAUSED] = "paused",
};

static const char *const bound_names[CPS_BOUND_COUNT] = {
    [CPS_BOUND_FORECAST] = "forecast",
    [CPS_BOUND_FEEDBACK] = "budget_feedback",
    [CPS_BOUND_BURST] = "burst_memory",
    [CPS_BOUND_PEAK_CAP] = "peak_cap",
    [CPS_BOUND_COST_TARGET] = "cost_target",
};

const char *cps_bound_name(enum cps_bound bound)
{
    if ((unsigned)bound >= CPS_BOUND_COUNT)
        return "unknown";
    return bound_names[bound];
}

/*
 * See decide.h. A decision not on the forecast had no forecast to be bound
 * by: "rail" when a rail set the count, else what the count was based on.
 */
const char *cps_decision_bound_name(const struct cps_decision *d)
{
    switch (d->basis) {
    case CPS_BASIS_FORECAST:
        return d->rail_bound ? "rail" : cps_bound_name(d->bound);
    case CPS_BASIS_LEARNING:
        return d->rail_bound ? "rail" : "learning";
    case CPS_BASIS_SLO_UNREACHABLE:
        return d->rail_bound ? "rail" : "slo_unreachable";
    case CPS_BASIS_GIVEN:
        return d->rail_bound ? "rail" : "given";
    case CPS_BASIS_MISSING:
        return "missing_metrics";
    case CPS_BASIS_PAUSED:
        return "paused";
    }
    return "unknown";
}

const char *cps_reason_name(enum cps_reason reason)
{
    if ((unsigned)reason >= CPS_REASON_COUNT)
        return "unknown";
    return reason_names[reason];
}

static const char *first_missing_name(unsigned missing)
{
    if (missing & CPS_METRIC_BIT(CPS_METRIC_QPS))
        return "qps";
    if (missing & CPS_METRIC_BIT(CPS_METRIC_P95))
        return "p95_ms";
    if (missing & CPS_METRIC_BIT(CPS_METRIC_CPU))
        return "cpu_utilization";
    if (missing & CPS_METRIC_BIT(CPS_METRIC_READY))
        return "ready_replicas";
    if (missing & CPS_METRIC_BIT(CPS_METRIC_REPLICAS))
        return "replicas";
    return "cost_per_pod_hour";
}

/* What a burst-bound decision's detail says of the memory that set it. */
static const char *burst_words(enum cps_burst_source source)
{
    switch (source) {
    case CPS_BURST_ON_THE_CLOCK:
        return "a minute that bursts in many hours (on the clock) is near:";
    case CPS_BURST_HOUR_OF_DAY:
        return "this hour of the day usually starts at";
    case CPS_BURST_RECURRING:
    case CPS_BURST_NONE:
        break;
    }
    return "a burst that came back at this minute in recent hours is due:";
}

/* One line of detail from the decision's figures. */
void cps_decision_describe(const struct cps_decision *d, char *buf, size_t size)
{
    switch (d->basis) {
    case CPS_BASIS_PAUSED:
        snprintf(buf, size, "paused in config");
        return;
    case CPS_BASIS_MISSING:
        snprintf(buf, size, "metric %s is missing, stale, NaN, negative or implausible (over 1e12): %s",
                 first_missing_name(d->missing),
                 d->reason == CPS_REASON_MISSING_FALLBACK ? "fallback count" : "holding");
        return;
    case CPS_BASIS_GIVEN:
        snprintf(buf, size, "given recommendation %d", d->recommendation);
        return;
    case CPS_BASIS_LEARNING:
        snprintf(buf, size, "learning capacity: cpu %.3f, keeping cpu <= %.2f, never down",
                 d->cpu_utilization, CPS_BOOTSTRAP_CPU);
        return;
    case CPS_BASIS_SLO_UNREACHABLE:
        snprintf(buf, size, "SLO is below the learned base latency: sizing for cpu <= %.2f",
                 CPS_BOOTSTRAP_CPU);
        return;
    case CPS_BASIS_FORECAST:
        break;
    }
    int n = snprintf(buf, size,
                     "%s%s: qps %.1f -> %.1f (spread %.3f, tail %+.2f, headroom %+.2f from the "
                     "budget feedback, budget %.0f%% spent, burn rate %.2f); %.1f req/s per pod "
                     "within the SLO (queue %.2f x M/M/1)",
                     d->rail_bound ? "rail over " : "", cps_bound_name(d->bound), d->level_qps,
                     d->forecast_qps, d->surprise_sd, d->surprise_tail, d->headroom_adjust,
                     100.0 * d->budget_spent, d->burn_rate, d->rps_per_pod, d->latency_shape);
    /* the spread above is the level's own; where the octave above's
     * quantile set the forecast, say so, and with what spread */
    if (n > 0 && (size_t)n < size && d->octave_bound &&
        (d->bound == CPS_BOUND_FORECAST || d->bound == CPS_BOUND_FEEDBACK))
        n += snprintf(buf + n, size - (size_t)n,
                      "; bounded by the octave of load above (spread %.3f)", d->octave_sd);
    /* the spread shown is narrowed already; say by how much, and why */
    if (n > 0 && (size_t)n < size && d->minute_factor > 0.0 && d->minute_factor < 1.0)
        n += snprintf(buf + n, size - (size_t)n,
                      "; spread x%.2f: a quiet minute of the hour", d->minute_factor);
    if (n > 0 && (size_t)n < size && d->bound == CPS_BOUND_BURST)
        n += snprintf(buf + n, size - (size_t)n, "; %s %.1f qps%s", burst_words(d->burst_source),
                      d->burst_qps,
                      !d->burst_capped ? ""
                      : d->burst_source == CPS_BURST_RECURRING ? " (capped by the day's peak)"
                                                               : " (capped by the recent peak)");
    if (n > 0 && (size_t)n < size && d->startup_observed)
        n += snprintf(buf + n, size - (size_t)n, "; pods take %.0f s to be ready (observed)",
                      d->startup_s);
    if (n > 0 && (size_t)n < size && d->bound == CPS_BOUND_PEAK_CAP)
        n += snprintf(buf + n, size - (size_t)n, "; capped at %.1f qps from the recent peak",
                      d->peak_cap_qps);
    if (n > 0 && (size_t)n < size && d->cost_target_pods > 0)
        n += snprintf(buf + n, size - (size_t)n, "; cost target trims to %d", d->cost_target_pods);
    if (n > 0 && (size_t)n < size && d->budget_pods > 0)
        snprintf(buf + n, size - (size_t)n, "; budget cap %d pods", d->budget_pods);
}

