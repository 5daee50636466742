#include "report.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "config_schema.h"
#include "decide.h"
#include "duration.h"

#define SECONDS_PER_DAY 86400.0
#define SECONDS_PER_HOUR 3600.0

/* The rolling budget window in seconds (0 in a setup means the default). */
static double budget_window_s(const struct cps_sim_variant *v)
{
    return v->budget_window_s > 0.0 ? v->budget_window_s : CPS_BUDGET_WINDOW_DEFAULT_S;
}

/* A span as "2d 03:00:00" or "4m 00s", for the table's header line. */
static void format_span(char *buf, size_t size, int64_t seconds)
{
    int64_t days = seconds / 86400, rest = seconds % 86400;
    if (days > 0)
        snprintf(buf, size, "%lldd %02lld:%02lld:%02lld", (long long)days, (long long)(rest / 3600),
                 (long long)(rest % 3600 / 60), (long long)(rest % 60));
    else
        snprintf(buf, size, "%02lld:%02lld:%02lld", (long long)(rest / 3600),
                 (long long)(rest % 3600 / 60), (long long)(rest % 60));
}

/*
 * Print the comparison table: one row per policy with the docs/model.md §8
 * figures. Money with enough digits to compare small runs; NaN (no oracle)
 * prints as "-".
 */
int cps_report_write_table(FILE *out, const struct cps_sim_report *r)
{
    char span[64];
    format_span(span, sizeof span, r->seconds);
    const struct cps_sim_params *w = &r->setup->world;
    fprintf(out, "trace %s: %lld s (%s), %.0f requests, mean %.2f req/s\n", r->trace,
            (long long)r->seconds, span, r->requests,
            r->seconds ? r->requests / (double)r->seconds : 0.0);
    fprintf(out,
            "world: service rate %g/s, base %g ms, startup %g s, $%g/pod-h, scale %g, %s routing; "
            "SLO p95 %g ms; interval %g s, window %g s, lag %g s\n",
            w->service_rate, w->base_latency_ms, w->startup_s, w->price, w->scale,
            w->routing == CPS_ROUTING_POOLED ? "pooled" : "random", r->setup->slo_ms, w->interval_s,
            w->window_s, w->lag_s);
    const struct cps_sim_variant *v = &r->setup->variant;
    char service[CPS_SERVICE_TEXT_MAX];
    cps_service_times_format(&v->service, service, sizeof service);
    char window[CPS_DURATION_TEXT_MAX];
    cps_duration_format(window, sizeof window, llround(budget_window_s(v) * 1000.0));
    if (v->service.kind != CPS_SERVICE_EXPONENTIAL || v->capacity_drift != 0.0 ||
        v->startup_jitter_s != 0.0)
        fprintf(out, "variants: %s service times, capacity drift %g, startup jitter %g s "
                "(seed %llu)\n", service, v->capacity_drift, v->startup_jitter_s,
                (unsigned long long)v->world_seed);
    fprintf(out, "worst win %%: the largest violation %% of any rolling %s window\n\n", window);
    fprintf(out, "%-12s %12s %10s %9s %9s %10s %8s %9s %6s %8s %10s\n", "policy", "cost $",
            "$/M req", "viol %", "viol t %", "pod starts", "actions", "avg pods", "peak", "x oracle",
            "worst win %");
    for (size_t i = 0; i < r->n_results; i++) {
        const struct cps_sim_result *x = &r->results[i];
        char ratio[32];
        if (isnan(x->cost_vs_oracle))
            snprintf(ratio, sizeof ratio, "-");
        else
            snprintf(ratio, sizeof ratio, "%.3f", x->cost_vs_oracle);
        fprintf(out, "%-12s %12.6f %10.4f %9.4f %9.4f %10lld %8lld %9.2f %6d %8s %11.4f\n",
                x->name, x->cost_usd, x->cost_per_million, x->violation_pct, x->violation_time_pct,
                (long long)x->pod_starts, (long long)x->scale_actions, x->avg_pods, x->peak_pods,
                ratio, x->worst_window_violation_pct);
    }
    if (r->gaps)
        fprintf(out, "\n%zu gap(s) in the trace were bridged by carrying the last rate forward.\n",
                r->gaps);
    return ferror(out) ? -1 : 0;
}

/* A number, or null when it is not finite (JSON has no NaN). */
static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Config keys by their schema row (config_schema.h). */
#define KEY(key) cps_config_key_name(CPS_KEY_##key)

static json_t *params_json(const struct cps_sim_report *r)
{
    const struct cps_sim_params *w = &r->setup->world;
    json_t *p = json_object();
    json_object_set_new(p, KEY(SIM_SERVICE_RATE), json_real(w->service_rate));
    json_object_set_new(p, "base_latency_ms", json_real(w->base_latency_ms));
    json_object_set_new(p, "startup_s", json_real(w->startup_s));
    json_object_set_new(p, KEY(SIM_PRICE), json_real(w->price));
    json_object_set_new(p, KEY(SIM_SCALE), json_real(w->scale));
    json_object_set_new(p, KEY(SIM_ROUTING), json_string(cps_config_enum_name(
                            &cps_config_rows[CPS_KEY_SIM_ROUTING], (int)w->routing)));
    json_object_set_new(p, "slo_ms", json_real(r->setup->slo_ms));
    json_object_set_new(p, "interval_s", json_real(w->interval_s));
    json_object_set_new(p, "window_s", json_real(w->window_s));
    json_object_set_new(p, "lag_s", json_real(w->lag_s));
    json_object_set_new(p, KEY(SIM_HPA_TARGET), json_real(w->hpa_target));
    json_object_set_new(p, "hpa_tolerance", json_real(CPS_HPA_DEFAULT_TOLERANCE));
    json_object_set_new(p, KEY(T_MIN_REPLICAS), json_integer(r->setup->min_replicas));
    json_object_set_new(p, KEY(T_MAX_REPLICAS), json_integer(r->setup->max_replicas));
    const struct cps_sim_variant *v = &r->setup->variant;
    char service[CPS_SERVICE_TEXT_MAX];
    cps_service_times_format(&v->service, service, sizeof service);
    json_object_set_new(p, KEY(SIM_SERVICE_TIMES), json_string(service));
    json_object_set_new(p, "capacity_drift", json_real(v->capacity_drift));
    json_object_set_new(p, "startup_jitter_s", json_real(v->startup_jitter_s));
    json_object_set_new(p, "world_seed", json_integer((json_int_t)v->world_seed));
    json_object_set_new(p, "budget_window_s", json_real(budget_window_s(v)));
    if (r->target) {
        const struct cps_target *t = r->target;
        json_t *c = json_object();
        json_object_set_new(c, KEY(POL_HEADROOM), json_real(t->policy.headroom_quantile));
        json_object_set_new(c, KEY(POL_SCALE_DOWN), json_real(t->policy.scale_down_quantile));
        json_object_set_new(c, "startup_s", json_real((double)t->policy.startup_ms / 1000.0));
        json_object_set_new(c, "metrics_lag_s", json_real((double)t->policy.metrics_lag_ms / 1000.0));
        json_object_set_new(c, "volatility_halflife_s",
                            json_real((double)t->policy.volatility_halflife_ms / 1000.0));
        json_object_set_new(c, KEY(SLO_BUDGET), json_real(t->slo_violation_budget));
        json_object_set_new(c, "budget_window_s",
                            json_real((double)t->slo_budget_window_ms / 1000.0));
        json_object_set_new(c, "cost_target_per_million", json_real(t->cost_target_per_million));
        json_object_set_new(c, "cost_max_per_hour", json_real(t->cost_max_per_hour));
        json_object_set_new(c, "scale_up_stabilization_s",
                            json_integer(t->behavior.scale_up.stabilization_window_seconds));
        json_object_set_new(c, "scale_down_stabilization_s",
                            json_integer(t->behavior.scale_down.stabilization_window_seconds));
        json_object_set_new(p, "cpscale", c);
    }
    return p;
}

int cps_report_write_json(FILE *out, const struct cps_sim_report *r)
{
    json_t *root = json_object();
    json_object_set_new(root, "trace", json_string(r->trace));
    json_object_set_new(root, "seconds", json_integer(r->seconds));
    json_object_set_new(root, "requests", json_real(r->requests));
    json_object_set_new(root, "params", params_json(r));
    json_object_set_new(root, "gaps", json_integer((json_int_t)r->gaps));
    json_t *policies = json_array();
    for (size_t i = 0; i < r->n_results; i++) {
        const struct cps_sim_result *x = &r->results[i];
        json_t *p = json_object();
        json_object_set_new(p, "policy", json_string(x->name));
        json_object_set_new(p, "cost_usd", json_real(x->cost_usd));
        json_object_set_new(p, "cost_per_million", number_or_null(x->cost_per_million));
        json_object_set_new(p, "violation_pct", json_real(x->violation_pct));
        json_object_set_new(p, "violation_time_pct", json_real(x->violation_time_pct));
        json_object_set_new(p, "pod_starts", json_integer(x->pod_starts));
        json_object_set_new(p, "scale_actions", json_integer(x->scale_actions));
        json_object_set_new(p, "avg_pods", json_real(x->avg_pods));
        json_object_set_new(p, "peak_pods", json_integer(x->peak_pods));
        json_object_set_new(p, "cost_vs_oracle", number_or_null(x->cost_vs_oracle));
        json_object_set_new(p, "pod_seconds", json_real(x->pod_seconds));
        json_object_set_new(p, "violating_seconds", json_integer(x->violating_seconds));
        json_object_set_new(p, "worst_window_violation_pct",
                            json_real(x->worst_window_violation_pct));
        json_array_append_new(policies, p);
    }
    json_object_set_new(root, "policies", policies);
    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (rc < 0 || fputc('\n', out) == EOF)
        return -1;
    return ferror(out) ? -1 : 0;
}
