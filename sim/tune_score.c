/*
 * The figures of one simulated run in tune, the order that picks a winner
 * (the same in a shard and in the merge), and figures <-> shard JSON.
 */
#include "tune_score.h"

#include <math.h>
#include <stdint.h>

/* ---- selection (the same for a shard and for the merge) ------------------- */

/* How a candidate did on the training parts. */

/* Score a candidate's training figures against the budget; cost is taken
 * relative to the oracle so that traces of different sizes weigh alike. */
struct cps_tune_score cps_tune_score_of(const struct cps_tune_figures *train,
                                        const struct cps_tune_figures *oracle_train,
                                        size_t n_traces, const double *budgets)
{
    struct cps_tune_score s = {1, 0.0, 0.0};
    for (size_t t = 0; t < n_traces; t++) {
        double over = train[t].violation_pct - budgets[t];
        if (over > 0.0) {
            s.feasible = 0;
            if (over > s.excess)
                s.excess = over;
        }
        double oracle = oracle_train[t].cost_usd;
        s.relative += oracle > 0.0 ? train[t].cost_usd / oracle : train[t].cost_usd;
    }
    s.relative /= (double)n_traces;
    return s;
}

void cps_tune_trace_budgets(const struct cps_tune_figures *hpa_train, size_t n_hpa,
                            size_t n_traces, double budget, double *budgets)
{
    for (size_t t = 0; t < n_traces; t++) {
        double fewest = INFINITY;
        for (size_t j = 0; j < n_hpa; j++)
            if (hpa_train[j * n_traces + t].violation_pct < fewest)
                fewest = hpa_train[j * n_traces + t].violation_pct;
        budgets[t] = fewest > budget && isfinite(fewest) ? fewest : budget;
    }
}

/* A total order: feasible first, then cheaper (infeasible: less excess,
 * then cheaper); ties go to the lower index, so any split agrees. */
int cps_tune_score_better(const struct cps_tune_score *a, size_t ia, const struct cps_tune_score *b,
                          size_t ib)
{
    if (a->feasible != b->feasible)
        return a->feasible;
    if (!a->feasible && a->excess != b->excess)
        return a->excess < b->excess;
    if (a->relative != b->relative)
        return a->relative < b->relative;
    return ia < ib;
}

/* HPA at its best target on one trace: the cheapest within the budget, or
 * failing that the fewest violations (then the cheapest). */
int cps_tune_hpa_better(const struct cps_tune_figures *a, size_t ia,
                        const struct cps_tune_figures *b, size_t ib, double budget)
{
    int fa = a->violation_pct <= budget, fb = b->violation_pct <= budget;
    if (fa != fb)
        return fa;
    if (!fa && a->violation_pct != b->violation_pct)
        return a->violation_pct < b->violation_pct;
    if (a->cost_usd != b->cost_usd)
        return a->cost_usd < b->cost_usd;
    return ia < ib;
}

/* ---- figures <-> JSON ------------------------------------------------------ */

json_t *cps_tune_figures_json(const struct cps_tune_figures *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "cost_usd", json_real(f->cost_usd));
    json_object_set_new(o, "violation_pct", json_real(f->violation_pct));
    json_object_set_new(o, "violation_time_pct", json_real(f->violation_time_pct));
    json_object_set_new(o, "avg_pods", json_real(f->avg_pods));
    json_object_set_new(o, "requests", json_real(f->requests));
    json_object_set_new(o, "pod_starts", json_integer(f->pod_starts));
    json_object_set_new(o, "scale_actions", json_integer(f->scale_actions));
    json_object_set_new(o, "peak_pods", json_integer(f->peak_pods));
    json_object_set_new(o, "seconds", json_integer(f->seconds));
    return o;
}

int cps_tune_json_real(const json_t *o, const char *key, double *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

int cps_tune_json_int(const json_t *o, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int cps_tune_figures_from_json(const json_t *o, struct cps_tune_figures *f)
{
    if (!json_is_object(o) || cps_tune_json_real(o, "cost_usd", &f->cost_usd) < 0 ||
        cps_tune_json_real(o, "violation_pct", &f->violation_pct) < 0 ||
        cps_tune_json_real(o, "violation_time_pct", &f->violation_time_pct) < 0 ||
        cps_tune_json_real(o, "avg_pods", &f->avg_pods) < 0 ||
        cps_tune_json_real(o, "requests", &f->requests) < 0 ||
        cps_tune_json_int(o, "pod_starts", &f->pod_starts) < 0 ||
        cps_tune_json_int(o, "scale_actions", &f->scale_actions) < 0 ||
        cps_tune_json_int(o, "peak_pods", &f->peak_pods) < 0 ||
        cps_tune_json_int(o, "seconds", &f->seconds) < 0)
        return -1;
    return 0;
}

json_t *cps_tune_figures_array(const struct cps_tune_figures *f, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, cps_tune_figures_json(&f[i]));
    return a;
}
