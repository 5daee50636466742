/*
 * /metrics: the controller's state in the Prometheus text format 0.0.4,
 * rendered once per tick by the loop (the server thread only copies it).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "metrics.h"
#include "strbuf.h"

#define text_printf cps_strbuf_printf

const enum cps_metric cps_controller_queried[CPS_CONTROLLER_N_QUERIED] = {
    CPS_METRIC_QPS, CPS_METRIC_P95, CPS_METRIC_CPU, CPS_METRIC_COST};

const double cps_tick_bucket_bounds[CPS_TICK_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1,    2.5,   5,    10,  30};

void cps_metrics_record_tick(struct cps_metrics *m, double seconds, double cpu_seconds)
{
    for (int b = 0; b < CPS_TICK_BUCKETS; b++)
        if (seconds <= cps_tick_bucket_bounds[b])
            m->tick_buckets[b]++;
    m->tick_seconds_sum += seconds;
    m->ticks++;
    m->last_tick_cpu_s = cpu_seconds;
}

void cps_metrics_record_tick_skipped(struct cps_metrics *m)
{
    m->ticks_skipped++;
}

void cps_metrics_record_query_error(struct cps_metrics *m, enum cps_metric metric,
                                    enum cps_prom_error error)
{
    if ((unsigned)metric < CPS_METRIC_QUERIED && (unsigned)error < CPS_PROM_ERROR_COUNT)
        m->query_errors[metric][error]++;
}

void cps_metrics_record_scale(struct cps_metrics *m)
{
    m->scale_events++;
}

void cps_metrics_record_write_dropped(struct cps_metrics *m, int stale)
{
    if (stale)
        m->writes_dropped_stale++;
    else
        m->writes_dropped_not_leader++;
}

void cps_metrics_record_reload(struct cps_metrics *m, int ok)
{
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_refused++;
}

/* A label value escaped per the text format (\\, \" and \n). */
void cps_metrics_record_backfill(struct cps_metrics *m, enum cps_backfill_result result,
                                 size_t targets, double replayed_seconds)
{
    if ((unsigned)result < CPS_BACKFILL_RESULT_COUNT)
        m->backfill.results[result] += targets;
    m->backfill.replayed_seconds += replayed_seconds;
}

static void append_label_value(struct cps_strbuf *text, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            text_printf(text, "\\\\");
        else if (*p == '"')
            text_printf(text, "\\\"");
        else if (*p == '\n')
            text_printf(text, "\\n");
        else
            text_printf(text, "%c", *p);
    }
}

static void header(struct cps_strbuf *text, const char *name, const char *type, const char *help)
{
    text_printf(text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{namespace="..",name=".."[,extra]} value */
static void target_sample(struct cps_strbuf *text, const char *metric, const struct cps_target *target,
                          const char *extra_label, const char *extra_value, double value)
{
    text_printf(text, "%s{namespace=\"", metric);
    append_label_value(text, target->namespace);
    text_printf(text, "\",name=\"");
    append_label_value(text, target->name);
    text_printf(text, "\"");
    if (extra_label) {
        text_printf(text, ",%s=\"", extra_label);
        append_label_value(text, extra_value);
        text_printf(text, "\"");
    }
    if (isnan(value))
        text_printf(text, "} NaN\n");
    else
        text_printf(text, "} %.17g\n", value);
}

/* One per-target family of `type`; `pick` reads the value (NaN: no sample). */
static void target_family(struct cps_strbuf *text, const struct cps_controller *ctl, const char *metric,
                          const char *type, const char *help,
                          double (*pick)(const struct cps_target_runtime *rt))
{
    header(text, metric, type, help);
    for (size_t t = 0; t < ctl->n_targets; t++) {
        double value = pick(&ctl->targets[t]);
        if (!isnan(value))
            target_sample(text, metric, &ctl->targets[t].target, NULL, NULL, value);
    }
}

void cps_metrics_count_slo(struct cps_target_runtime *rt, int sign)
{
    const struct cps_decision *d = &rt->decision;
    if (d->basis != CPS_BASIS_FORECAST)
        return;
    rt->slo_requests += sign * d->tick_requests;
    if (d->tick_violating)
        rt->slo_violating_requests += sign * d->tick_requests;
    if (rt->slo_requests < 0.0)
        rt->slo_requests = 0.0; /* rounding of a take-back: counters never go down */
    if (rt->slo_violating_requests < 0.0)
        rt->slo_violating_requests = 0.0;
    if (sign > 0) {
        rt->slo_counted = 1;
        rt->slo_budget_spent = d->budget_spent;
        rt->slo_burn_rate = d->burn_rate;
        rt->headroom_adjust = d->headroom_adjust;
    }
}

/* A value read at the last tick: NaN (no sample) before any decision. */
static double decided(const struct cps_target_runtime *rt, double value)
{
    return rt->decided ? value : NAN;
}
/* An observed metric: NaN when it was missing at the last tick. */
static double observed(const struct cps_target_runtime *rt, enum cps_metric metric, double value)
{
    return !(rt->observation.missing & CPS_METRIC_BIT(metric)) ? decided(rt, value) : NAN;
}
/* A configured figure where 0 means "none". */
static double configured(double value)
{
    return value > 0 ? value : NAN;
}

static double pick_desired(const struct cps_target_runtime *rt)
{
    return decided(rt, rt->decision.desired);
}
static double pick_current(const struct cps_target_runtime *rt)
{
    return decided(rt, rt->observation.replicas);
}
static double pick_ready(const struct cps_target_runtime *rt)
{
    return observed(rt, CPS_METRIC_READY, rt->observation.ready_replicas);
}
static double pick_min(const struct cps_target_runtime *rt)
{
    return rt->target.min_replicas;
}
static double pick_max(const struct cps_target_runtime *rt)
{
    return rt->target.max_replicas;
}
static double pick_qps(const struct cps_target_runtime *rt)
{
    return observed(rt, CPS_METRIC_QPS, rt->observation.qps);
}
static double pick_p95(const struct cps_target_runtime *rt)
{
    return observed(rt, CPS_METRIC_P95, rt->observation.p95_ms);
}
static double pick_slo(const struct cps_target_runtime *rt)
{
    return rt->target.slo_latency_p95_ms;
}
static double pick_cost_per_million(const struct cps_target_runtime *rt)
{
    return decided(rt, rt->cost_per_million);
}
static double pick_cost_target(const struct cps_target_runtime *rt)
{
    return configured(rt->target.cost_target_per_million);
}
static double pick_cost_per_hour(const struct cps_target_runtime *rt)
{
    return decided(rt, rt->cost_per_hour);
}
static double pick_budget(const struct cps_target_runtime *rt)
{
    return configured(rt->target.cost_max_per_hour);
}
/* The SLO budget's figures: NaN (no sample) before a decision on the forecast. */
static double slo_figure(const struct cps_target_runtime *rt, double value)
{
    return rt->slo_counted ? value : NAN;
}
static double pick_slo_requests(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->slo_requests);
}
static double pick_slo_violating(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->slo_violating_requests);
}
static double pick_budget_spent(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->slo_budget_spent);
}
static double pick_burn_rate(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->slo_burn_rate);
}
static double pick_headroom_adjust(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->headroom_adjust);
}
static double pick_violation_budget(const struct cps_target_runtime *rt)
{
    return rt->target.slo_violation_budget;
}

/* The per-target families. */
static void render_targets(struct cps_strbuf *text, const struct cps_controller *ctl)
{
    static const struct {
        const char *name, *help;
        double (*pick)(const struct cps_target_runtime *rt);
    } gauges[] = {
        {"cpscale_target_desired_replicas",
         "Replicas the last decision asked for.",
         pick_desired},
        {"cpscale_target_current_replicas",
         "spec.replicas of the scale subresource at the last tick.",
         pick_current},
        {"cpscale_target_ready_replicas",
         "Ready replicas of the target at the last tick.",
         pick_ready},
        {"cpscale_target_min_replicas",
         "Configured min_replicas.",
         pick_min},
        {"cpscale_target_max_replicas",
         "Configured max_replicas.",
         pick_max},
        {"cpscale_target_qps",
         "Requests per second seen at the last tick.",
         pick_qps},
        {"cpscale_target_p95_latency_ms",
         "p95 latency seen at the last tick, milliseconds.",
         pick_p95},
        {"cpscale_target_slo_latency_p95_ms",
         "The p95 latency SLO, milliseconds.",
         pick_slo},
        {"cpscale_target_cost_per_million_requests_usd",
         "Cost per million requests at the last tick, USD.",
         pick_cost_per_million},
        {"cpscale_target_cost_target_per_million_requests_usd",
         "Configured cost target per million requests, USD.",
         pick_cost_target},
        {"cpscale_target_cost_per_hour_usd",
         "Cost of the current replicas per hour, USD.",
         pick_cost_per_hour},
        {"cpscale_target_cost_max_per_hour_usd",
         "Configured budget cap per hour, USD.",
         pick_budget},
        {"cpscale_slo_violation_budget_ratio",
         "Configured SLO violation budget: the share of requests that may be served over the "
         "SLO (0.01 = 1 %).",
         pick_violation_budget},
        {"cpscale_slo_budget_spent_ratio",
         "Share of the violation budget spent over the budget window (1 = all), at the last "
         "decision on the forecast.",
         pick_budget_spent},
        {"cpscale_slo_burn_rate",
         "Violating share of the requests over the last hour divided by the budget (1 = "
         "spending exactly the budget), at the last decision on the forecast.",
         pick_burn_rate},
        {"cpscale_policy_headroom_adjust",
         "The budget feedback's offset on the headroom, in z units of the demand spread "
         "(bounded to -4..4), at the last decision on the forecast.",
         pick_headroom_adjust},
    };
    static const struct {
        const char *name, *help;
        double (*pick)(const struct cps_target_runtime *rt);
    } counters[] = {
        {"cpscale_slo_requests_total",
         "Requests accounted to the SLO violation budget (the observed rate times the time "
         "since the last tick), on ticks decided on the forecast.",
         pick_slo_requests},
        {"cpscale_slo_violating_requests_total",
         "Of cpscale_slo_requests_total, those of ticks whose observed p95 was over the SLO.",
         pick_slo_violating},
    };
    for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++)
        target_family(text, ctl, gauges[g].name, "gauge", gauges[g].help, gauges[g].pick);
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++)
        target_family(text, ctl, counters[c].name, "counter", counters[c].help, counters[c].pick);

    header(text, "cpscale_decisions_total", "counter", "Decisions by reason.");
    for (size_t t = 0; t < ctl->n_targets; t++)
        for (int r = 0; r < CPS_REASON_COUNT; r++)
            if (ctl->targets[t].decisions[r])
                target_sample(text, "cpscale_decisions_total", &ctl->targets[t].target, "reason",
                              cps_reason_name((enum cps_reason)r),
                              (double)ctl->targets[t].decisions[r]);
    header(text, "cpscale_scale_events_total", "counter",
           "Successful rescales (PATCH of the scale subresource) by direction.");
    for (size_t t = 0; t < ctl->n_targets; t++) {
        target_sample(text, "cpscale_scale_events_total", &ctl->targets[t].target, "direction",
                      "up", (double)ctl->targets[t].scale_ups);
        target_sample(text, "cpscale_scale_events_total", &ctl->targets[t].target, "direction",
                      "down", (double)ctl->targets[t].scale_downs);
    }
    header(text, "cpscale_scale_failures_total", "counter",
           "Failed rescales by HTTP code (0: no answer).");
    for (size_t t = 0; t < ctl->n_targets; t++)
        for (int i = 0; i < CPS_SCALE_FAILURE_CODES && ctl->targets[t].failures[i].count; i++) {
            char code[16];
            snprintf(code, sizeof code, "%ld", ctl->targets[t].failures[i].code);
            target_sample(text, "cpscale_scale_failures_total", &ctl->targets[t].target, "code",
                          code, (double)ctl->targets[t].failures[i].count);
        }
}

static void emit_kube_count(const char *verb, const char *resource, long code,
                            unsigned long long count, void *user)
{
    struct cps_strbuf *text = user;
    text_printf(text, "cpscale_kube_requests_total{verb=\"%s\",resource=\"%s\",code=\"%ld\"} %llu\n",
                verb, resource, code, count);
}

/* The backfill's block: results per target, and the history replayed. */
static void render_backfill(struct cps_strbuf *text, const struct cps_backfill_metrics *b)
{
    static const char *const names[CPS_BACKFILL_RESULT_COUNT] = {"ok", "failed", "skipped"};
    header(text, "cpscale_policy_backfill_total", "counter",
           "Policy state backfills from Prometheus history, per target, by result.");
    for (int r = 0; r < CPS_BACKFILL_RESULT_COUNT; r++)
        text_printf(text, "cpscale_policy_backfill_total{result=\"%s\"} %llu\n", names[r],
                    (unsigned long long)b->results[r]);
    header(text, "cpscale_policy_backfill_replayed_seconds_total", "counter",
           "Seconds of history replayed into the policy states that were swapped in.");
    text_printf(text, "cpscale_policy_backfill_replayed_seconds_total %.9g\n",
                b->replayed_seconds);
}

char *cps_metrics_render(const struct cps_controller *ctl, size_t *len)
{
    struct cps_strbuf text = CPS_STRBUF_INIT;
    const struct cps_metrics *m = &ctl->metrics;
    render_targets(&text, ctl);

    header(&text, "cpscale_query_errors_total", "counter",
           "Prometheus queries that failed, by metric and kind of error.");
    for (int q = 0; q < CPS_CONTROLLER_N_QUERIED; q++)
        for (int e = 1; e < CPS_PROM_ERROR_COUNT; e++)
            text_printf(&text, "cpscale_query_errors_total{metric=\"%s\",error=\"%s\"} %llu\n",
                        cps_metric_query_key(cps_controller_queried[q]),
                        cps_prom_error_name((enum cps_prom_error)e),
                        (unsigned long long)m->query_errors[cps_controller_queried[q]][e]);
    header(&text, "cpscale_prometheus_queries_per_tick", "gauge",
           "Distinct Prometheus queries sent in the last tick.");
    text_printf(&text, "cpscale_prometheus_queries_per_tick %zu\n", ctl->n_queries);
    header(&text, "cpscale_targets_read_from_watch", "gauge",
           "Targets whose replicas came from the LIST+WATCH cache in the last tick.");
    text_printf(&text, "cpscale_targets_read_from_watch %zu\n", ctl->targets_from_cache);
    uint64_t lists = 0;
    for (size_t i = 0; i < ctl->n_informers; i++)
        lists += cps_informer_lists(ctl->informers[i]);
    header(&text, "cpscale_watch_lists_total", "counter",
           "Complete LISTs of Deployments (the first, then one per 410 Gone or failure).");
    text_printf(&text, "cpscale_watch_lists_total %llu\n", (unsigned long long)lists);
    header(&text, "cpscale_watch_relists_total", "counter",
           "LISTs started again after a backoff, by reason (gone, watch_error, bad_event, "
           "event_too_large, no_progress, list_failed).");
    for (int r = 0; r < CPS_INFORMER_RELIST_REASON_COUNT; r++) {
        uint64_t relists = 0;
        for (size_t i = 0; i < ctl->n_informers; i++)
            relists += cps_informer_relists(ctl->informers[i], (enum cps_informer_relist_reason)r);
        text_printf(&text, "cpscale_watch_relists_total{reason=\"%s\"} %llu\n",
                    cps_informer_relist_reason_name((enum cps_informer_relist_reason)r),
                    (unsigned long long)relists);
    }
    header(&text, "cpscale_kube_requests_total", "counter",
           "Kubernetes API requests by verb, resource and HTTP code (0: no answer).");
    if (ctl->kube)
        cps_kube_each_count(ctl->kube, emit_kube_count, &text);

    header(&text, "cpscale_tick_duration_seconds", "histogram",
           "Time from the start of a tick to its last answer.");
    for (int b = 0; b < CPS_TICK_BUCKETS; b++)
        text_printf(&text, "cpscale_tick_duration_seconds_bucket{le=\"%g\"} %llu\n",
                    cps_tick_bucket_bounds[b], (unsigned long long)m->tick_buckets[b]);
    text_printf(&text, "cpscale_tick_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)m->ticks);
    text_printf(&text, "cpscale_tick_duration_seconds_sum %.9g\n", m->tick_seconds_sum);
    text_printf(&text, "cpscale_tick_duration_seconds_count %llu\n",
                (unsigned long long)m->ticks);
    header(&text, "cpscale_ticks_total", "counter", "Ticks completed.");
    text_printf(&text, "cpscale_ticks_total %llu\n", (unsigned long long)m->ticks);
    header(&text, "cpscale_ticks_skipped_total", "counter",
           "Ticks skipped because the previous one was still running.");
    text_printf(&text, "cpscale_ticks_skipped_total %llu\n",
                (unsigned long long)m->ticks_skipped);
    header(&text, "cpscale_process_cpu_seconds", "gauge",
           "CPU time the controller had used at the end of the last tick.");
    text_printf(&text, "cpscale_process_cpu_seconds %.9g\n", m->last_tick_cpu_s);

    header(&text, "cpscale_writes_dropped_total", "counter",
           "PATCHes dropped unsent when they left the queue: the Lease was lost, or the "
           "decision was older than one interval.");
    text_printf(&text, "cpscale_writes_dropped_total{reason=\"not_leader\"} %llu\n",
                (unsigned long long)m->writes_dropped_not_leader);
    text_printf(&text, "cpscale_writes_dropped_total{reason=\"stale\"} %llu\n",
                (unsigned long long)m->writes_dropped_stale);
    header(&text, "cpscale_leader", "gauge", "1 while this replica holds the leader Lease.");
    text_printf(&text, "cpscale_leader %d\n", ctl->lease || ctl->shards ? ctl->leading : 1);
    cps_shards_render_metrics(ctl->shards, cps_monotonic_ms(), &text);
    header(&text, "cpscale_config_generation", "gauge",
           "Configs loaded so far (1 at start, +1 per accepted reload).");
    text_printf(&text, "cpscale_config_generation %llu\n",
                (unsigned long long)ctl->config_generation);
    header(&text, "cpscale_config_reloads_total", "counter", "Config reloads by result.");
    text_printf(&text, "cpscale_config_reloads_total{result=\"ok\"} %llu\n",
                (unsigned long long)m->reloads_ok);
    text_printf(&text, "cpscale_config_reloads_total{result=\"refused\"} %llu\n",
                (unsigned long long)m->reloads_refused);
    render_backfill(&text, &m->backfill);
    header(&text, "cpscale_build_info", "gauge", "The running version.");
    text_printf(&text, "cpscale_build_info{version=\"%s\"} 1\n", CPS_VERSION);
    size_t text_len = text.len;
    char *out = cps_strbuf_take(&text);
    if (out)
        *len = text_len;
    return out;
}
