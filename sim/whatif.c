#include "whatif.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "pool.h"
#include "report.h"
#include "trace_runs.h"
#include "units.h"

#define PERCENT 100.0
/* Ranges of the values, as `cpscale sim` accepts them one at a time. */
#define MAX_DURATION_S 86400.0
#define MAX_SEED 9007199254740992.0 /* 2^53: every seed is an exact double */

struct param_info {
    const char *name;  /* the flag without dashes */
    int duration;      /* 1: written as a duration (30s), stored in seconds */
    double lo, hi;     /* accepted range, in the stored unit */
};

static const struct param_info params[CPS_WHATIF_PARAM_COUNT] = {
    [CPS_WHATIF_SERVICE_RATE] = {"service-rate", 0, CPS_SIM_MIN_SERVICE_RATE, CPS_SIM_MAX_RATE},
    [CPS_WHATIF_BASE_LATENCY] = {"base-latency", 1, 0, MAX_DURATION_S},
    [CPS_WHATIF_STARTUP] = {"startup", 1, 0, MAX_DURATION_S},
    [CPS_WHATIF_PRICE] = {"price", 0, 0, CPS_SIM_MAX_PRICE},
    [CPS_WHATIF_SCALE] = {"scale", 0, 0, CPS_SIM_MAX_RATE}, /* 0 itself refused below */
    [CPS_WHATIF_ROUTING] = {"routing", 0, 0, 1},
    [CPS_WHATIF_INTERVAL] = {"interval", 1, 1, MAX_DURATION_S},
    [CPS_WHATIF_WINDOW] = {"window", 1, 1, MAX_DURATION_S},
    [CPS_WHATIF_LAG] = {"lag", 1, 0, MAX_DURATION_S},
    [CPS_WHATIF_HPA_TARGET] = {"hpa-target", 0, CPS_SIM_MIN_HPA_TARGET, 1},
    [CPS_WHATIF_SLO] = {"slo", 0, CPS_SIM_MIN_SLO_MS, CPS_SIM_MAX_SLO_MS},
    [CPS_WHATIF_SERVICE_TIMES] = {"service-times", 0, -1, CPS_SERVICE_CV_MAX},
    [CPS_WHATIF_CAPACITY_DRIFT] = {"capacity-drift", 0, 0, 1}, /* 1 itself refused below */
    [CPS_WHATIF_STARTUP_JITTER] = {"startup-jitter", 1, 0, MAX_DURATION_S},
    [CPS_WHATIF_WORLD_SEED] = {"world-seed", 0, 0, MAX_SEED},
};

/* --service-times as one number: -1 exponential, 0 deterministic, CV for
 * lognormal:CV (so lognormal:1 and exponential stay two values). */
static int parse_service_times(const char *flag, const char *text, double *v,
                               struct cps_err *err)
{
    struct cps_service_times st;
    if (cps_service_times_parse(text, &st) < 0)
        return cps_err_set(err, flag, 0, 0,
                           "\"%s\" is not exponential, deterministic or lognormal:CV "
                           "(%g <= CV <= %g)", text, CPS_SERVICE_CV_MIN, CPS_SERVICE_CV_MAX);
    *v = st.kind == CPS_SERVICE_EXPONENTIAL ? -1.0
         : st.kind == CPS_SERVICE_DETERMINISTIC ? 0.0 : st.cv;
    return 0;
}

int cps_whatif_param_of_flag(const char *flag)
{
    while (*flag == '-')
        flag++;
    for (int i = 0; i < CPS_WHATIF_PARAM_COUNT; i++)
        if (strcmp(params[i].name, flag) == 0)
            return i;
    return -1;
}

const char *cps_whatif_param_name(enum cps_whatif_param param)
{
    return (unsigned)param < CPS_WHATIF_PARAM_COUNT ? params[param].name : "?";
}

int cps_whatif_parse_value(enum cps_whatif_param param, const char *text, double *value,
                           struct cps_err *err)
{
    const struct param_info *info = &params[param];
    char flag[48];
    snprintf(flag, sizeof flag, "--%s", info->name);
    double v = 0.0;
    if (param == CPS_WHATIF_SERVICE_TIMES) {
        if (parse_service_times(flag, text, &v, err) < 0)
            return -1;
    } else if (param == CPS_WHATIF_ROUTING) {
        if (strcmp(text, "random") == 0)
            v = CPS_ROUTING_RANDOM;
        else if (strcmp(text, "pooled") == 0)
            v = CPS_ROUTING_POOLED;
        else
            return cps_err_set(err, flag, 0, 0, "\"%s\" is not random or pooled", text);
    } else if (info->duration) {
        int64_t ms = 0;
        if (cps_duration_parse(text, &ms) < 0)
            return cps_err_set(err, flag, 0, 0, "\"%s\" is not a duration (e.g. 30s, 5m, 250ms)",
                               text);
        v = (double)ms / CPS_MS_PER_S;
    } else {
        char *end = NULL;
        errno = 0;
        v = cps_strtod_decimal(text, &end);
        if (errno || end == text || *end || !isfinite(v))
            return cps_err_set(err, flag, 0, 0, "\"%s\" is not a number", text);
        if (param == CPS_WHATIF_CAPACITY_DRIFT && v >= 1.0)
            return cps_err_set(err, flag, 0, 0, "\"%s\" must be in [0, 1)", text);
        /* scale 0 replays no request at all: every policy "wins" at min
         * replicas, a result that only looks like one (the config's
         * sim.scale is > 0 too) */
        if (param == CPS_WHATIF_SCALE && (!(v > 0.0) || v > info->hi))
            return cps_err_set(err, flag, 0, 0, "\"%s\" is outside (0, %g]", text, info->hi);
        if (param == CPS_WHATIF_WORLD_SEED && v != floor(v))
            return cps_err_set(err, flag, 0, 0, "\"%s\" is not a whole number", text);
    }
    if (v < info->lo || v > info->hi)
        return cps_err_set(err, flag, 0, 0, "\"%s\" is outside [%g, %g]%s", text, info->lo,
                           info->hi, info->duration ? " s" : "");
    *value = v;
    return 0;
}

/* Split on commas; every item must parse, and none may repeat. */
int cps_whatif_parse_list(enum cps_whatif_param param, const char *list, struct cps_whatif *out,
                          struct cps_err *err)
{
    char flag[48];
    snprintf(flag, sizeof flag, "--%s", params[param].name);
    memset(out, 0, sizeof *out);
    out->param = param;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[CPS_WHATIF_LABEL_MAX];
        if (len == 0 || len >= sizeof item)
            return cps_err_set(err, flag, 0, 0, "bad list item \"%.*s\" in \"%s\"",
                               (int)(len < sizeof item ? len : sizeof item), p, list);
        if (out->n_values == CPS_WHATIF_MAX_VALUES)
            return cps_err_set(err, flag, 0, 0, "more than %d values",
                               CPS_WHATIF_MAX_VALUES);
        memcpy(item, p, len);
        item[len] = '\0';
        double v;
        if (cps_whatif_parse_value(param, item, &v, err) < 0)
            return -1;
        for (size_t i = 0; i < out->n_values; i++)
            if (out->values[i] == v)
                return cps_err_set(err, flag, 0, 0, "value \"%s\" is listed twice",
                                   item);
        out->values[out->n_values] = v;
        memcpy(out->labels[out->n_values], item, len + 1);
        out->n_values++;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

void cps_whatif_apply(enum cps_whatif_param param, double value, struct cps_sim_setup *setup,
                      struct cps_target *target)
{
    struct cps_sim_params *w = &setup->world;
    switch (param) {
    case CPS_WHATIF_SERVICE_RATE: w->service_rate = value; break;
    case CPS_WHATIF_BASE_LATENCY: w->base_latency_ms = value * CPS_MS_PER_S; break;
    case CPS_WHATIF_STARTUP: w->startup_s = value; break;
    case CPS_WHATIF_PRICE: w->price = value; break;
    case CPS_WHATIF_SCALE: w->scale = value; break;
    case CPS_WHATIF_ROUTING: w->routing = value > 0.5 ? CPS_ROUTING_POOLED : CPS_ROUTING_RANDOM; break;
    case CPS_WHATIF_INTERVAL: w->interval_s = value; break;
    case CPS_WHATIF_WINDOW: w->window_s = value; break;
    case CPS_WHATIF_LAG: w->lag_s = value; break;
    case CPS_WHATIF_HPA_TARGET: w->hpa_target = value; break;
    case CPS_WHATIF_SLO:
        setup->slo_ms = value;
        if (target)
            target->slo_latency_p95_ms = value;
        break;
    case CPS_WHATIF_SERVICE_TIMES:
        setup->variant.service.kind = value < 0.0    ? CPS_SERVICE_EXPONENTIAL
                                      : value == 0.0 ? CPS_SERVICE_DETERMINISTIC
                                                     : CPS_SERVICE_LOGNORMAL;
        setup->variant.service.cv = value < 0.0 ? 1.0 : value;
        break;
    case CPS_WHATIF_CAPACITY_DRIFT: setup->variant.capacity_drift = value; break;
    case CPS_WHATIF_STARTUP_JITTER: setup->variant.startup_jitter_s = value; break;
    case CPS_WHATIF_WORLD_SEED: setup->variant.world_seed = (uint64_t)value; break;
    case CPS_WHATIF_PARAM_COUNT: break;
    }
}

/* One value's run: its own setup and target copy, results per policy. */
struct whatif_run {
    struct cps_sim_setup setup;
    struct cps_target target; /* shallow copy of the base's: strings are shared, never freed */
    struct cps_sim_result results[CPS_SIM_MAX_POLICIES];
    int64_t seconds;
};

struct whatif_ctx {
    const struct cps_trace_runs *trace;
    struct whatif_run *runs;
};

/* Pool work: replay the trace in memory through a fresh engine. */
static int run_value_cb(void *ctx, size_t index, struct cps_err *err)
{
    struct whatif_ctx *c = ctx;
    struct whatif_run *r = &c->runs[index];
    struct cps_sim *sim = cps_sim_new(&r->setup, err);
    if (!sim)
        return -1;
    int rc = cps_trace_runs_feed(c->trace, 0, c->trace->seconds, r->setup.world.scale,
                                 r->setup.world.price, sim, err);
    if (rc == 0)
        rc = cps_sim_finish(sim, r->results, err);
    r->seconds = cps_sim_seconds(sim);
    cps_sim_free(sim);
    return rc;
}

static double delta_pct(double value, double first)
{
    return first > 0.0 ? PERCENT * (value - first) / first : (value == first ? 0.0 : NAN);
}

/* The table: per value and policy, cost and violation % and their change
 * against the first value (change % is "-" when the first cost is 0). */
static int write_table(FILE *out, const char *trace_path, const struct cps_whatif *w,
                       const struct whatif_run *runs)
{
    const struct whatif_run *first = &runs[0];
    fprintf(out, "what-if --%s on %s: %lld s, %.0f requests (at the first value)\n",
            params[w->param].name, trace_path, (long long)first->seconds,
            first->results[0].requests);
    fprintf(out, "changes are against the first value, %s; everything else is equal\n\n",
            w->labels[0]);
    fprintf(out, "%-12s %-12s %14s %12s %9s %9s %10s %9s\n", "value", "policy", "cost $",
            "change $", "change %", "viol %", "change pp", "x oracle");
    for (size_t v = 0; v < w->n_values; v++) {
        const struct whatif_run *r = &runs[v];
        for (size_t i = 0; i < r->setup.n_policies; i++) {
            const struct cps_sim_result *x = &r->results[i], *x0 = &first->results[i];
            char ratio[32], change[32];
            if (isnan(x->cost_vs_oracle))
                snprintf(ratio, sizeof ratio, "-");
            else
                snprintf(ratio, sizeof ratio, "%.3f", x->cost_vs_oracle);
            double pct = delta_pct(x->cost_usd, x0->cost_usd);
            if (isnan(pct))
                snprintf(change, sizeof change, "-");
            else
                snprintf(change, sizeof change, "%+.2f", pct);
            fprintf(out, "%-12s %-12s %14.6f %+12.6f %9s %9.4f %+10.4f %9s\n",
                    i == 0 ? w->labels[v] : "", x->name, x->cost_usd, x->cost_usd - x0->cost_usd,
                    change, x->violation_pct, x->violation_pct - x0->violation_pct, ratio);
        }
    }
    return ferror(out) ? -1 : 0;
}

static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/*
 * JSON: each value's object is exactly what `cpscale sim --json` prints for
 * that value (written by the same report code, then parsed back), plus the
 * value and per-policy changes against the first value.
 */
static int write_json(FILE *out, const char *trace_path, const struct cps_whatif *w,
                      const struct whatif_run *runs, size_t gaps, struct cps_err *err)
{
    json_t *root = json_object(), *values = json_array();
    json_object_set_new(root, "trace", json_string(trace_path));
    json_object_set_new(root, "parameter", json_string(params[w->param].name));
    json_object_set_new(root, "values", values);
    for (size_t v = 0; v < w->n_values; v++) {
        const struct whatif_run *r = &runs[v];
        struct cps_sim_report report = {
            .trace = trace_path,
            .seconds = r->seconds,
            .requests = r->results[0].requests,
            .setup = &r->setup,
            .target = &r->target,
            .n_results = r->setup.n_policies,
            .results = r->results,
            .gaps = gaps,
        };
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (!mem || cps_report_write_json(mem, &report) < 0 || fclose(mem) != 0) {
            free(text);
            json_decref(root);
            return cps_err_set(err, "what-if", 0, 0, "out of memory");
        }
        json_error_t jerr;
        json_t *one = json_loadb(text, len, 0, &jerr);
        free(text);
        if (!one) {
            json_decref(root);
            return cps_err_set(err, "what-if", 0, 0, "report JSON: %s", jerr.text);
        }
        json_object_set_new(one, "value", json_string(w->labels[v]));
        json_t *policies = json_object_get(one, "policies");
        for (size_t i = 0; i < r->setup.n_policies; i++) {
            const struct cps_sim_result *x = &r->results[i], *x0 = &runs[0].results[i];
            json_t *p = json_array_get(policies, i);
            json_object_set_new(p, "change_cost_usd", json_real(x->cost_usd - x0->cost_usd));
            json_object_set_new(p, "change_cost_pct",
                                number_or_null(delta_pct(x->cost_usd, x0->cost_usd)));
            json_object_set_new(p, "change_violation_pct",
                                json_real(x->violation_pct - x0->violation_pct));
        }
        json_array_append_new(values, one);
    }
    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (rc < 0 || fputc('\n', out) == EOF || ferror(out))
        return cps_err_set(err, "what-if", 0, 0, "write failed");
    return 0;
}

/*
 * Load the trace once, check every value's world before running anything (a
 * bad value is a usage error, not a failure halfway), run, report.
 */
int cps_whatif_run(const char *trace_path, const struct cps_sim_setup *base,
                   const struct cps_whatif *w, int jobs, int json, FILE *out, FILE *warnings,
                   int *input_error, struct cps_err *err)
{
    struct cps_trace_runs trace;
    struct whatif_run *runs = NULL;
    *input_error = 1;
    if (cps_trace_runs_load(trace_path, warnings, &trace, err) < 0) {
        *input_error = !strstr(err->message, "out of memory");
        return -1;
    }
    runs = calloc(w->n_values, sizeof *runs);
    if (!runs) {
        *input_error = 0;
        cps_err_set(err, "what-if", 0, 0, "out of memory");
        goto fail;
    }
    for (size_t v = 0; v < w->n_values; v++) {
        struct whatif_run *r = &runs[v];
        r->setup = *base;
        if (base->target)
            r->target = *base->target;
        cps_whatif_apply(w->param, w->values[v], &r->setup, &r->target);
        r->setup.target = base->target ? &r->target : NULL;
        struct cps_sim *probe = cps_sim_new(&r->setup, err);
        if (!probe) {
            char message[CPS_ERR_MESSAGE_MAX];
            snprintf(message, sizeof message, "%s", err->message);
            char flag[48];
            snprintf(flag, sizeof flag, "--%s", params[w->param].name);
            cps_err_set(err, flag, 0, 0, "%s: %s", w->labels[v], message);
            goto fail;
        }
        cps_sim_free(probe);
    }
    struct whatif_ctx ctx = {&trace, runs};
    *input_error = 0;
    if (cps_pool_run(w->n_values, jobs, run_value_cb, &ctx, NULL, "what-if", err) < 0)
        goto fail;
    if (json ? write_json(out, trace_path, w, runs, trace.gaps, err) < 0
             : write_table(out, trace_path, w, runs) < 0) {
        if (!json)
            cps_err_set(err, "what-if", 0, 0, "write failed");
        goto fail;
    }
    free(runs);
    cps_trace_runs_release(&trace);
    return 0;
fail:
    free(runs);
    cps_trace_runs_release(&trace);
    return -1;
}
