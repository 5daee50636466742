/*
 * tune's merge: shard objects -> the final result (winner, HPA's best target
 * per trace, their test figures), and its report as a table or JSON.
 */
#include "tune_merge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_schema.h"
#include "tune_score.h"

#define PERCENT 100.0
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

#define MERGE_FAIL(...)                                                        \
    do {                                                                       \
        cps_err_set(err, source, 0, 0, __VA_ARGS__);                           \
        goto fail;                                                             \
    } while (0)

/* Find the candidate_tests entry for candidate k in any shard. */
static const json_t *find_candidate_test(json_t *const *shards, size_t n_shards, size_t k)
{
    for (size_t i = 0; i < n_shards; i++) {
        const json_t *list = json_object_get(shards[i], "candidate_tests");
        size_t idx;
        const json_t *o;
        json_array_foreach(list, idx, o) {
            const json_t *v = json_object_get(o, "index");
            if (json_is_integer(v) && (size_t)json_integer_value(v) == k)
                return o;
        }
    }
    return NULL;
}

static const json_t *find_hpa_test(json_t *const *shards, size_t n_shards, size_t j, size_t t)
{
    for (size_t i = 0; i < n_shards; i++) {
        const json_t *list = json_object_get(shards[i], "hpa_tests");
        size_t idx;
        const json_t *o;
        json_array_foreach(list, idx, o) {
            const json_t *vi = json_object_get(o, "index"), *vt = json_object_get(o, "trace");
            if (json_is_integer(vi) && json_is_integer(vt) &&
                (size_t)json_integer_value(vi) == j && (size_t)json_integer_value(vt) == t)
                return o;
        }
    }
    return NULL;
}

/* Per-trace figures of an item list ("items" or "hpa") into dst[index * T + t]. */
static int take_items(const json_t *list, size_t limit, size_t T, size_t offset, int shard,
                      int shards, struct cps_tune_figures *dst, unsigned char *seen,
                      const char *source, struct cps_err *err)
{
    size_t idx;
    const json_t *o;
    if (!json_is_array(list))
        return cps_err_set(err, source, 0, 0, "no item list");
    json_array_foreach(list, idx, o) {
        const json_t *vi = json_object_get(o, "index"), *train = json_object_get(o, "train");
        if (!json_is_integer(vi) || json_integer_value(vi) < 0 ||
            (size_t)json_integer_value(vi) >= limit || !json_is_array(train) ||
            json_array_size(train) != T)
            return cps_err_set(err, source, 0, 0, "malformed item %zu", idx);
        size_t k = (size_t)json_integer_value(vi);
        if ((int)((k + offset) % (size_t)shards) != shard)
            return cps_err_set(err, source, 0, 0, "item %zu does not belong to shard %d", k,
                               shard);
        if (seen[k])
            return cps_err_set(err, source, 0, 0, "item %zu appears twice", k);
        seen[k] = 1;
        for (size_t t = 0; t < T; t++)
            if (cps_tune_figures_from_json(json_array_get(train, t), &dst[k * T + t]) < 0)
                return cps_err_set(err, source, 0, 0, "malformed figures of item %zu", k);
    }
    return 0;
}

/*
 * Check that the shards belong together (same format, fingerprint and shard
 * count, each index once), gather every item's training figures, choose the
 * winner and HPA's best targets by the same order a shard uses, and look up
 * their test figures, which the shard that owned each winner computed.
 */
int cps_tune_merge(json_t *const *shards, const char *const *sources, size_t n_shards,
                   struct cps_tune_merged *m, struct cps_err *err)
{
    struct cps_tune_figures *cand = NULL, *hpa = NULL;
    unsigned char *seen = NULL, *seen_hpa = NULL;
    int *have_shard = NULL;
    const char *source = sources[0];
    memset(m, 0, sizeof *m);
    const json_t *first = shards[0];
    const char *format = json_string_value(json_object_get(first, "format"));
    if (!format || strcmp(format, CPS_TUNE_SHARD_FORMAT) != 0)
        MERGE_FAIL("not a cpscale tune shard file (format \"%s\")", format ? format : "none");
    const char *fingerprint = json_string_value(json_object_get(first, "fingerprint"));
    json_int_t n_of_shards = json_integer_value(json_object_get(first, "shards"));
    const json_t *traces = json_object_get(first, "traces");
    json_int_t n_candidates = json_integer_value(json_object_get(first, "candidates"));
    const json_t *targets = json_object_get(first, "hpa_targets");
    if (!fingerprint || n_of_shards < 1 || !json_is_array(traces) || json_array_size(traces) == 0 ||
        json_array_size(traces) > CPS_TUNE_MAX_TRACES || n_candidates < 1 ||
        n_candidates > CPS_TUNE_MAX_CANDIDATES || !json_is_array(targets) ||
        json_array_size(targets) != CPS_TUNE_HPA_TARGETS ||
        cps_tune_json_real(first, "budget_pct", &m->budget_pct) < 0 ||
        cps_tune_json_real(first, "train_fraction", &m->train_fraction) < 0 ||
        !json_is_integer(json_object_get(first, "seed")))
        MERGE_FAIL("malformed shard header");
    m->seed = json_integer_value(json_object_get(first, "seed"));
    size_t T = json_array_size(traces), N = (size_t)n_candidates;
    m->n_traces = T;
    m->n_candidates = N;
    for (size_t j = 0; j < CPS_TUNE_HPA_TARGETS; j++)
        m->hpa_targets[j] = json_number_value(json_array_get(targets, j));
    for (size_t t = 0; t < T; t++) {
        const json_t *o = json_array_get(traces, t), *orc = json_object_get(o, "oracle");
        struct cps_tune_merged_trace *mt = &m->traces[t];
        mt->label = json_string_value(json_object_get(o, "trace"));
        if (!mt->label || cps_tune_json_real(o, "scale", &mt->scale) < 0 ||
            cps_tune_json_int(o, "seconds", &mt->seconds) < 0 ||
            cps_tune_json_int(o, "split_s", &mt->split_s) < 0 ||
            cps_tune_figures_from_json(json_object_get(orc, "train"),
                                       &mt->oracle[CPS_TUNE_TRAIN]) < 0 ||
            cps_tune_figures_from_json(json_object_get(orc, "test"),
                                       &mt->oracle[CPS_TUNE_TEST]) < 0)
            MERGE_FAIL("malformed trace %zu", t);
    }
    if ((size_t)n_of_shards != n_shards)
        MERGE_FAIL("the run has %lld shards, %zu shard files were given",
                   (long long)n_of_shards, n_shards);
    cand = calloc(N * T, sizeof *cand);
    hpa = calloc(CPS_TUNE_HPA_TARGETS * T, sizeof *hpa);
    seen = calloc(N, 1);
    seen_hpa = calloc(CPS_TUNE_HPA_TARGETS, 1);
    have_shard = calloc(n_shards, sizeof *have_shard);
    if (!cand || !hpa || !seen || !seen_hpa || !have_shard)
        MERGE_FAIL("out of memory");
    for (size_t i = 0; i < n_shards; i++) {
        source = sources[i];
        const json_t *s = shards[i];
        const char *f = json_string_value(json_object_get(s, "format"));
        const char *fp = json_string_value(json_object_get(s, "fingerprint"));
        json_int_t index = json_integer_value(json_object_get(s, "shard"));
        if (!f || strcmp(f, CPS_TUNE_SHARD_FORMAT) != 0)
            MERGE_FAIL("not a cpscale tune shard file");
        if (!fp || strcmp(fp, fingerprint) != 0)
            MERGE_FAIL("belongs to another run (fingerprint %s, %s has %s): same traces, "
                       "config, seed, budget, split and candidates are needed",
                       fp ? fp : "none", sources[0], fingerprint);
        if (json_integer_value(json_object_get(s, "shards")) != n_of_shards || index < 0 ||
            index >= n_of_shards)
            MERGE_FAIL("bad shard index %lld of %lld", (long long)index, (long long)n_of_shards);
        if (have_shard[index]++)
            MERGE_FAIL("shard %lld is given twice", (long long)index);
        if (take_items(json_object_get(s, "items"), N, T, 0, (int)index, (int)n_of_shards, cand,
                       seen, source, err) < 0 ||
            take_items(json_object_get(s, "hpa"), CPS_TUNE_HPA_TARGETS, T, N, (int)index,
                       (int)n_of_shards, hpa, seen_hpa, source, err) < 0)
            goto fail;
        double simulated = 0.0;
        if (cps_tune_json_real(s, "simulated_seconds", &simulated) == 0)
            m->simulated_seconds += simulated;
    }
    source = "merge";
    for (size_t k = 0; k < N; k++)
        if (!seen[k])
            MERGE_FAIL("candidate %zu is missing from every shard", k);
    for (size_t j = 0; j < CPS_TUNE_HPA_TARGETS; j++)
        if (!seen_hpa[j])
            MERGE_FAIL("HPA target %zu is missing from every shard", j);
    /* the winner */
    struct cps_tune_figures oracle_train[CPS_TUNE_MAX_TRACES];
    for (size_t t = 0; t < T; t++)
        oracle_train[t] = m->traces[t].oracle[CPS_TUNE_TRAIN];
    double budgets[CPS_TUNE_MAX_TRACES];
    cps_tune_trace_budgets(hpa, CPS_TUNE_HPA_TARGETS, T, m->budget_pct, budgets);
    struct cps_tune_score best_score = {0, INFINITY, INFINITY};
    m->best = SIZE_MAX;
    for (size_t k = 0; k < N; k++) {
        struct cps_tune_score sc = cps_tune_score_of(&cand[k * T], oracle_train, T, budgets);
        m->feasible += sc.feasible;
        if (m->best == SIZE_MAX || cps_tune_score_better(&sc, k, &best_score, m->best)) {
            m->best = k;
            best_score = sc;
        }
    }
    m->best_feasible = best_score.feasible;
    const json_t *win = find_candidate_test(shards, n_shards, m->best);
    const json_t *base = find_candidate_test(shards, n_shards, 0);
    if (!win || !base)
        MERGE_FAIL("no shard has the test figures of candidate %zu", win ? (size_t)0 : m->best);
    m->fragment = json_string_value(json_object_get(win, "fragment"));
    m->params = json_object_get(win, "params");
    if (!m->fragment || !json_is_object(m->params))
        MERGE_FAIL("malformed test entry of candidate %zu", m->best);
    for (size_t t = 0; t < T; t++) {
        struct cps_tune_merged_trace *mt = &m->traces[t];
        mt->tuned[CPS_TUNE_TRAIN] = cand[m->best * T + t];
        mt->base[CPS_TUNE_TRAIN] = cand[t];
        if (cps_tune_figures_from_json(json_array_get(json_object_get(win, "test"), t),
                              &mt->tuned[CPS_TUNE_TEST]) < 0 ||
            cps_tune_figures_from_json(json_array_get(json_object_get(base, "test"), t),
                              &mt->base[CPS_TUNE_TEST]) < 0)
            MERGE_FAIL("malformed test figures for trace %zu", t);
        size_t bj = 0;
        for (size_t j = 1; j < CPS_TUNE_HPA_TARGETS; j++)
            if (cps_tune_hpa_better(&hpa[j * T + t], j, &hpa[bj * T + t], bj, m->budget_pct))
                bj = j;
        mt->hpa_index = bj;
        mt->hpa[CPS_TUNE_TRAIN] = hpa[bj * T + t];
        const json_t *ht = find_hpa_test(shards, n_shards, bj, t);
        if (!ht ||
            cps_tune_figures_from_json(json_object_get(ht, "test"), &mt->hpa[CPS_TUNE_TEST]) < 0)
            MERGE_FAIL("no shard has the test figures of hpa:%.2f on trace %zu",
                       m->hpa_targets[bj], t);
    }
    free(have_shard);
    free(seen_hpa);
    free(seen);
    free(hpa);
    free(cand);
    return 0;
fail:
    free(have_shard);
    free(seen_hpa);
    free(seen);
    free(hpa);
    free(cand);
    return -1;
}

/* ---- output ------------------------------------------------------------------ */

static double ratio(double a, double b)
{
    return b > 0.0 ? a / b : NAN;
}

static void ratio_text(char *buf, size_t size, double r)
{
    if (isnan(r))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.3f", r);
}

/* The human report: header, one block per trace (train and test rows for the
 * tuned and default configs, HPA at its best target and the oracle, each
 * cost also against HPA's and the oracle's), then the fragment. Nothing in
 * it depends on --jobs, sharding or time, so runs can be compared by bytes. */
int cps_tune_write_table(FILE *out, const struct cps_tune_merged *m)
{
    fprintf(out, "cpscale tune: %zu trace(s), %zu candidates and %d HPA targets (seed %lld); "
            "objective: lowest cost with violations <= %g %% on every training part\n",
            m->n_traces, m->n_candidates, CPS_TUNE_HPA_TARGETS, (long long)m->seed, m->budget_pct);
    fprintf(out, "train: the first %g %% of each trace; test: the rest, replayed as a trace of "
            "its own\n",
            PERCENT * m->train_fraction);
    if (m->best_feasible)
        fprintf(out, "winner: candidate %zu (%zu of %zu candidates met the budget on every "
                "training part; candidate 0 is the starting config)\n\n",
                m->best, m->feasible, m->n_candidates);
    else
        fprintf(out, "WARNING: no candidate met the budget on every training part; shown is "
                "candidate %zu, the closest to it\n\n",
                m->best);
    fprintf(out, "%-32s %-5s %-10s %14s %9s %8s %9s\n", "trace", "part", "policy", "cost $",
            "viol %", "x HPA", "x oracle");
    for (size_t t = 0; t < m->n_traces; t++) {
        const struct cps_tune_merged_trace *mt = &m->traces[t];
        char name[64], hpa_name[32];
        snprintf(name, sizeof name, "%s", mt->label);
        snprintf(hpa_name, sizeof hpa_name, "hpa:%.2f", m->hpa_targets[mt->hpa_index]);
        for (int part = CPS_TUNE_TRAIN; part <= CPS_TUNE_TEST; part++) {
            const struct cps_tune_figures *rows[] = {&mt->tuned[part], &mt->base[part],
                                                     &mt->hpa[part], &mt->oracle[part]};
            const char *names[] = {"tuned", "default", hpa_name, "oracle"};
            for (size_t r = 0; r < N_OF(rows); r++) {
                char x_hpa[32], x_oracle[32];
                ratio_text(x_hpa, sizeof x_hpa, ratio(rows[r]->cost_usd, mt->hpa[part].cost_usd));
                ratio_text(x_oracle, sizeof x_oracle,
                           ratio(rows[r]->cost_usd, mt->oracle[part].cost_usd));
                fprintf(out, "%-32s %-5s %-10s %14.4f %9.4f %8s %9s\n",
                        part == CPS_TUNE_TRAIN && r == 0 ? name : "",
                        r == 0 ? (part == CPS_TUNE_TRAIN ? "train" : "test") : "", names[r],
                        rows[r]->cost_usd, rows[r]->violation_pct, x_hpa, x_oracle);
            }
        }
    }
    fprintf(out, "\nx HPA: cost against HPA at its best CPU target on that trace (the cheapest "
            "meeting the budget on the training part%s).\n\n",
            "; if none did, the one with the fewest violations");
    fprintf(out, "# config.yaml fragment from cpscale tune (seed %lld, candidate %zu); "
            "check it with cpscale check-config\n%s",
            (long long)m->seed, m->best, m->fragment);
    return ferror(out) ? -1 : 0;
}

static json_t *part_json(const struct cps_tune_figures *f, const struct cps_tune_figures *hpa,
                         const struct cps_tune_figures *oracle)
{
    json_t *o = cps_tune_figures_json(f);
    json_object_set_new(o, "cost_vs_hpa", json_real(ratio(f->cost_usd, hpa->cost_usd)));
    json_object_set_new(o, "cost_vs_oracle", json_real(ratio(f->cost_usd, oracle->cost_usd)));
    return o;
}

/* The report as JSON; elapsed_s < 0 leaves the timing out (a merge has none
 * of its own). */
json_t *cps_tune_merged_json(const struct cps_tune_merged *m, double elapsed_s)
{
    json_t *root = json_object(), *traces = json_array();
    json_object_set_new(root, "seed", json_integer(m->seed));
    json_object_set_new(root, "budget_pct", json_real(m->budget_pct));
    json_object_set_new(root, "train_fraction", json_real(m->train_fraction));
    json_object_set_new(root, "candidates", json_integer((json_int_t)m->n_candidates));
    json_object_set_new(root, "feasible", json_integer((json_int_t)m->feasible));
    json_object_set_new(root, "best", json_integer((json_int_t)m->best));
    json_object_set_new(root, "best_meets_budget", json_boolean(m->best_feasible));
    for (size_t t = 0; t < m->n_traces; t++) {
        const struct cps_tune_merged_trace *mt = &m->traces[t];
        json_t *o = json_object();
        json_object_set_new(o, "trace", json_string(mt->label));
        json_object_set_new(o, "scale", json_real(mt->scale));
        json_object_set_new(o, "train_seconds", json_integer(mt->split_s));
        json_object_set_new(o, "test_seconds", json_integer(mt->seconds - mt->split_s));
        json_object_set_new(o, cps_config_key_name(CPS_KEY_SIM_HPA_TARGET),
                            json_real(m->hpa_targets[mt->hpa_index]));
        const char *names[] = {"tuned", "default", "hpa", "oracle"};
        const struct cps_tune_figures *sets[] = {mt->tuned, mt->base, mt->hpa, mt->oracle};
        for (size_t r = 0; r < N_OF(names); r++) {
            json_t *p = json_object();
            json_object_set_new(p, "train",
                                part_json(&sets[r][CPS_TUNE_TRAIN], &mt->hpa[CPS_TUNE_TRAIN],
                                          &mt->oracle[CPS_TUNE_TRAIN]));
            json_object_set_new(p, "test",
                                part_json(&sets[r][CPS_TUNE_TEST], &mt->hpa[CPS_TUNE_TEST],
                                          &mt->oracle[CPS_TUNE_TEST]));
            json_object_set_new(o, names[r], p);
        }
        json_array_append_new(traces, o);
    }
    json_object_set_new(root, "traces", traces);
    json_object_set_new(root, "params", json_deep_copy(m->params));
    json_object_set_new(root, "fragment", json_string(m->fragment));
    json_object_set_new(root, "simulated_seconds", json_real(m->simulated_seconds));
    if (elapsed_s >= 0.0)
        json_object_set_new(root, "elapsed_s", json_real(elapsed_s));
    return root;
}
