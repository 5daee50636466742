#include "err.h"
#include "tune.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_schema.h"
#include "duration.h"
#include "pool.h"
#include "queue_model.h"
#include "rng.h"
#include "trace_runs.h"
#include "tune_score.h"
#include "units.h"
#include "world.h"


#define PERCENT 100.0

/* The HPA's CPU targets searched for its best: 0.10, 0.15, ..., 0.95. */
#define HPA_TARGET_FIRST 0.10
#define HPA_TARGET_STEP 0.05
/* Kubernetes' rate-limit period, used for the searched scale-up policies. */
#define SCALE_UP_PERIOD_S 15
/* Local moves: each dimension moves with this probability, by one level,
 * or by two with probability LOCAL_FAR. */
#define LOCAL_MOVE_PROBABILITY 0.3
#define LOCAL_FAR 0.3
/* Kubernetes' default rails, where a base config's list lacks the policy. */
#define K8S_SCALE_DOWN_PERCENT 100
#define K8S_SCALE_UP_PODS 4
#define K8S_SCALE_UP_PERCENT 100
/* A local move steps down (rather than up) with this probability. */
#define LOCAL_DOWN_PROBABILITY 0.5
/* Odd constant that spreads candidate indices over the seed's bits. */
#define SEED_MIX 0xD1B54A32D192ED03ULL
/* Redraws before a repeated candidate is accepted (a tiny grid). */
#define MAX_REDRAWS 64
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* ---- the search space ---------------------------------------------------- */

static const double headroom_levels[] = {0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995,
                                         0.9999};
static const double down_quantile_levels[] = {0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999};
static const int64_t halflife_levels_ms[] = {
    15 * CPS_MS_PER_MIN, 1 * CPS_MS_PER_HOUR, 3 * CPS_MS_PER_HOUR, 6 * CPS_MS_PER_HOUR,
    12 * CPS_MS_PER_HOUR, 24 * CPS_MS_PER_HOUR, 72 * (int64_t)CPS_MS_PER_HOUR,
};
static const int64_t down_window_levels[] = {0, 30, 60, 120, 180, 300, 600, 900, 1800};
static const int64_t down_percent_levels[] = {5, 10, 25, 50, 100};
static const int64_t down_period_levels[] = {15, 30, 60, 120};
static const int64_t up_pods_levels[] = {2, 4, 8, 16, 32};
static const int64_t up_percent_levels[] = {50, 100, 200, 400};
/* Shares of the SLO-safe rate per pod; 0: the base config's capacity setting. */
static const double capacity_levels[] = {0, 1.0, 0.85, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3};
/* Significant digits of a tuned rps_per_pod (it is written into the fragment). */
#define CAPACITY_DIGITS 4

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const size_t level_counts[CPS_TUNE_DIMS] = {
    [CPS_TUNE_HEADROOM_QUANTILE] = N_OF(headroom_levels),
    [CPS_TUNE_SCALE_DOWN_QUANTILE] = N_OF(down_quantile_levels),
    [CPS_TUNE_VOLATILITY_HALFLIFE] = N_OF(halflife_levels_ms),
    [CPS_TUNE_DOWN_WINDOW] = N_OF(down_window_levels),
    [CPS_TUNE_DOWN_PERCENT] = N_OF(down_percent_levels),
    [CPS_TUNE_DOWN_PERIOD] = N_OF(down_period_levels),
    [CPS_TUNE_UP_PODS] = N_OF(up_pods_levels),
    [CPS_TUNE_UP_PERCENT] = N_OF(up_percent_levels),
    [CPS_TUNE_CAPACITY] = N_OF(capacity_levels),
};

size_t cps_tune_levels(enum cps_tune_dim dim)
{
    return (unsigned)dim < CPS_TUNE_DIMS ? level_counts[dim] : 0;
}

/* The index of the level nearest v (the first of equally near ones). */
static uint8_t nearest_double(const double *levels, size_t n, double v)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (fabs(levels[i] - v) < fabs(levels[best] - v))
            best = i;
    return (uint8_t)best;
}

/* The same over integer levels (exact in a double: all are far below 2^53). */
static uint8_t nearest_int(const int64_t *levels, size_t n, int64_t v)
{
    double wide[UINT8_MAX + 1];
    size_t m = n <= UINT8_MAX ? n : UINT8_MAX + 1;
    for (size_t i = 0; i < m; i++)
        wide[i] = (double)levels[i];
    return nearest_double(wide, m, (double)v);
}

/* The base config's position on the grid (nearest level per dimension). */
static void base_levels(const struct cps_target *t, uint8_t *level)
{
    const struct cps_policy_params *p = &t->policy;
    level[CPS_TUNE_HEADROOM_QUANTILE] =
        nearest_double(headroom_levels, N_OF(headroom_levels), p->headroom_quantile);
    level[CPS_TUNE_SCALE_DOWN_QUANTILE] =
        nearest_double(down_quantile_levels, N_OF(down_quantile_levels), p->scale_down_quantile);
    level[CPS_TUNE_VOLATILITY_HALFLIFE] =
        nearest_int(halflife_levels_ms, N_OF(halflife_levels_ms), p->volatility_halflife_ms);
    const struct cps_scaling_rules *down = &t->behavior.scale_down, *up = &t->behavior.scale_up;
    level[CPS_TUNE_DOWN_WINDOW] = nearest_int(down_window_levels, N_OF(down_window_levels),
                                              down->stabilization_window_seconds);
    int32_t percent = K8S_SCALE_DOWN_PERCENT, period = SCALE_UP_PERIOD_S;
    int32_t pods = K8S_SCALE_UP_PODS, up_percent = K8S_SCALE_UP_PERCENT;
    for (int i = 0; i < down->n_policies; i++)
        if (down->policies[i].type == CPS_SCALING_PERCENT) {
            percent = down->policies[i].value;
            period = down->policies[i].period_seconds;
        }
    for (int i = 0; i < up->n_policies; i++) {
        if (up->policies[i].type == CPS_SCALING_PODS)
            pods = up->policies[i].value;
        else
            up_percent = up->policies[i].value;
    }
    level[CPS_TUNE_DOWN_PERCENT] = nearest_int(down_percent_levels, N_OF(down_percent_levels),
                                               percent);
    level[CPS_TUNE_DOWN_PERIOD] = nearest_int(down_period_levels, N_OF(down_period_levels), period);
    level[CPS_TUNE_UP_PODS] = nearest_int(up_pods_levels, N_OF(up_pods_levels), pods);
    level[CPS_TUNE_UP_PERCENT] = nearest_int(up_percent_levels, N_OF(up_percent_levels),
                                             up_percent);
    level[CPS_TUNE_CAPACITY] = 0;
}

static size_t next_below(uint64_t *state, size_t n)
{
    return (size_t)(cps_rng_uniform(state) * (double)n);
}

/* A local move: some dimensions step one or two levels from the base. */
static void draw_local(uint64_t *rng, const uint8_t *base, uint8_t *level)
{
    int moved = 0;
    memcpy(level, base, CPS_TUNE_DIMS);
    while (!moved) {
        for (int d = 0; d < CPS_TUNE_DIMS; d++) {
            if (cps_rng_uniform(rng) >= LOCAL_MOVE_PROBABILITY)
                continue;
            int step = cps_rng_uniform(rng) < LOCAL_FAR ? 2 : 1;
            if (cps_rng_uniform(rng) < LOCAL_DOWN_PROBABILITY)
                step = -step;
            int v = base[d] + step, n = (int)level_counts[d];
            if (v < 0)
                v = 0;
            if (v >= n)
                v = n - 1;
            if (v != base[d]) {
                level[d] = (uint8_t)v;
                moved = 1;
            }
        }
    }
}

static void draw_global(uint64_t *rng, uint8_t *level)
{
    for (int d = 0; d < CPS_TUNE_DIMS; d++)
        level[d] = (uint8_t)next_below(rng, level_counts[d]);
}

void cps_tune_candidates(const struct cps_target *base, uint64_t seed, size_t n,
                         struct cps_tune_candidate *out)
{
    if (n == 0)
        return;
    memset(out, 0, n * sizeof *out);
    base_levels(base, out[0].level);
    out[0].is_base = 1;
    for (size_t i = 1; i < n; i++) {
        uint64_t rng = seed ^ (SEED_MIX * (uint64_t)i);
        for (int attempt = 0; attempt < MAX_REDRAWS; attempt++) {
            if (i % 2 == 1)
                draw_local(&rng, out[0].level, out[i].level);
            else
                draw_global(&rng, out[i].level);
            int repeated = 0;
            for (size_t j = 1; j < i && !repeated; j++)
                repeated = memcmp(out[j].level, out[i].level, CPS_TUNE_DIMS) == 0;
            if (!repeated)
                break;
        }
    }
}

void cps_tune_apply(const struct cps_tune_candidate *c, double safe_rps_per_pod,
                    struct cps_target *t)
{
    if (c->is_base)
        return;
    double share = capacity_levels[c->level[CPS_TUNE_CAPACITY]];
    if (share > 0.0 && safe_rps_per_pod > 0.0) {
        char text[32];
        snprintf(text, sizeof text, "%.*g", CAPACITY_DIGITS, share * safe_rps_per_pod);
        t->capacity_auto = 0;
        t->capacity_rps_per_pod = strtod(text, NULL);
    }
    const uint8_t *l = c->level;
    t->policy.headroom_quantile = headroom_levels[l[CPS_TUNE_HEADROOM_QUANTILE]];
    t->policy.scale_down_quantile = down_quantile_levels[l[CPS_TUNE_SCALE_DOWN_QUANTILE]];
    t->policy.volatility_halflife_ms = halflife_levels_ms[l[CPS_TUNE_VOLATILITY_HALFLIFE]];
    struct cps_scaling_rules *down = &t->behavior.scale_down, *up = &t->behavior.scale_up;
    down->stabilization_window_seconds = down_window_levels[l[CPS_TUNE_DOWN_WINDOW]];
    down->select_policy = CPS_SELECT_MAX;
    down->n_policies = 1;
    down->policies[0].type = CPS_SCALING_PERCENT;
    down->policies[0].value = down_percent_levels[l[CPS_TUNE_DOWN_PERCENT]];
    down->policies[0].period_seconds = down_period_levels[l[CPS_TUNE_DOWN_PERIOD]];
    up->select_policy = CPS_SELECT_MAX;
    up->n_policies = 2;
    up->policies[0].type = CPS_SCALING_PODS;
    up->policies[0].value = up_pods_levels[l[CPS_TUNE_UP_PODS]];
    up->policies[0].period_seconds = SCALE_UP_PERIOD_S;
    up->policies[1].type = CPS_SCALING_PERCENT;
    up->policies[1].value = up_percent_levels[l[CPS_TUNE_UP_PERCENT]];
    up->policies[1].period_seconds = SCALE_UP_PERIOD_S;
}

/* ---- the config fragment ------------------------------------------------ */

char *cps_tune_fragment(const struct cps_target *t)
{
    return cps_config_tunables_yaml(t);
}

/* ---- one run of the tuner ------------------------------------------------ */

enum work_kind { WORK_ORACLE, WORK_CANDIDATE, WORK_HPA };

struct work {
    enum work_kind kind;
    size_t index; /* candidate or HPA target index */
    size_t trace;
    enum cps_tune_part part;
    struct cps_tune_figures *out;
};

struct eval_ctx {
    const struct cps_tune_setup *setup;
    const struct work *work;
};

static int64_t part_seconds(const struct cps_tune_trace *t, enum cps_tune_part part)
{
    return part == CPS_TUNE_TRAIN ? t->split_s : t->runs.seconds - t->split_s;
}

/* Simulate one policy on one part of one trace, as `cpscale sim` would. */
static int eval_cb(void *ctx, size_t i, struct cps_err *err)
{
    const struct eval_ctx *c = ctx;
    const struct cps_tune_setup *s = c->setup;
    const struct work *w = &c->work[i];
    const struct cps_tune_trace *t = &s->traces[w->trace];
    struct cps_sim_setup setup;
    struct cps_target target = s->base;
    memset(&setup, 0, sizeof setup);
    setup.world = s->world;
    setup.slo_ms = s->slo_ms;
    setup.min_replicas = s->min_replicas;
    setup.max_replicas = s->max_replicas;
    setup.target = &target;
    setup.n_policies = 1;
    struct cps_sim_policy_spec *spec = &setup.policies[0];
    switch (w->kind) {
    case WORK_ORACLE:
        spec->kind = CPS_SIM_POLICY_ORACLE;
        snprintf(spec->name, sizeof spec->name, "oracle");
        break;
    case WORK_HPA:
        spec->kind = CPS_SIM_POLICY_HPA;
        spec->hpa_target = s->hpa_targets[w->index];
        snprintf(spec->name, sizeof spec->name, "hpa:%.2f", spec->hpa_target);
        break;
    case WORK_CANDIDATE:
        spec->kind = CPS_SIM_POLICY_CPSCALE;
        snprintf(spec->name, sizeof spec->name, "cpscale");
        cps_tune_apply(&s->candidates[w->index], s->safe_rps_per_pod, &target);
        break;
    }
    struct cps_sim *sim = cps_sim_new(&setup, err);
    if (!sim)
        return -1;
    int64_t from = w->part == CPS_TUNE_TRAIN ? 0 : t->split_s;
    int64_t to = w->part == CPS_TUNE_TRAIN ? t->split_s : t->runs.seconds;
    struct cps_sim_result r;
    int rc = cps_trace_runs_feed(&t->runs, from, to, t->scale * s->world.scale, s->world.price, sim,
                                 err);
    if (rc == 0)
        rc = cps_sim_finish(sim, &r, err);
    cps_sim_free(sim);
    if (rc < 0)
        return -1;
    struct cps_tune_figures *f = w->out;
    f->cost_usd = r.cost_usd;
    f->violation_pct = r.violation_pct;
    f->violation_time_pct = r.violation_time_pct;
    f->avg_pods = r.avg_pods;
    f->requests = r.requests;
    f->pod_starts = r.pod_starts;
    f->scale_actions = r.scale_actions;
    f->peak_pods = r.peak_pods;
    f->seconds = to - from;
    return 0;
}

/* The searched settings of a target, in the config's key names. */
static json_t *params_json(const struct cps_target *t)
{
    return cps_config_tunables_json(t);
}

/* ---- fingerprint: what must be equal for shards to be merged ---------------- */

static void fnv_bytes(uint64_t *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= FNV_PRIME;
    }
}

static void fnv_double(uint64_t *h, double v)
{
    fnv_bytes(h, &v, sizeof v);
}

static void fnv_i64(uint64_t *h, int64_t v)
{
    fnv_bytes(h, &v, sizeof v);
}

/* cps_config_fold_cb onto an FNV hash. */
static void fnv_fold_cb(void *h, const void *bytes, size_t n)
{
    fnv_bytes(h, bytes, n);
}

/*
 * Hash everything a result depends on: the world, the base config's knobs
 * (both through the config schema, so a new key is hashed too),
 * the candidates, the HPA targets, the budget and split, and each trace's
 * content and scale. Shards of different runs have different fingerprints.
 */
static void compute_fingerprint(struct cps_tune_setup *s)
{
    uint64_t h = FNV_OFFSET;
    double setup[] = {s->slo_ms, s->budget_pct, s->train_fraction};
    cps_config_section_fold(CPS_SEC_SIM, &s->world, fnv_fold_cb, &h); /* every sim: key */
    for (size_t i = 0; i < N_OF(setup); i++)
        fnv_double(&h, setup[i]);
    fnv_i64(&h, s->min_replicas);
    fnv_i64(&h, s->max_replicas);
    fnv_i64(&h, (int64_t)s->seed);
    cps_config_target_fold(&s->base, fnv_fold_cb, &h); /* every setting of the base target */
    fnv_i64(&h, (int64_t)s->n_candidates);
    for (size_t i = 0; i < s->n_candidates; i++)
        fnv_bytes(&h, s->candidates[i].level, CPS_TUNE_DIMS);
    for (size_t i = 0; i < CPS_TUNE_HPA_TARGETS; i++)
        fnv_double(&h, s->hpa_targets[i]);
    fnv_double(&h, s->safe_rps_per_pod);
    fnv_i64(&h, (int64_t)s->n_traces);
    for (size_t t = 0; t < s->n_traces; t++) {
        const struct cps_tune_trace *tr = &s->traces[t];
        fnv_bytes(&h, tr->label, strlen(tr->label) + 1);
        fnv_double(&h, tr->scale);
        fnv_i64(&h, tr->split_s);
        for (size_t i = 0; i < tr->runs.n_runs; i++) {
            fnv_double(&h, tr->runs.runs[i].qps);
            fnv_double(&h, isnan(tr->runs.runs[i].price) ? -1.0 : tr->runs.runs[i].price);
            fnv_i64(&h, tr->runs.runs[i].seconds);
        }
    }
    snprintf(s->fingerprint, sizeof s->fingerprint, "%016" PRIx64, h);
}

/* ---- a shard: evaluate its share, pick its local bests, score them ---------- */

static int owns(const struct cps_tune_setup *s, size_t global_index)
{
    return (int)(global_index % (size_t)s->shards) == s->shard;
}

static int run_pool(const struct cps_tune_setup *s, const struct work *work, size_t n,
                    const char *label, struct cps_err *err)
{
    struct eval_ctx ctx = {s, work};
    return cps_pool_run(n, s->jobs, eval_cb, &ctx, s->progress, label, err);
}

/* This shard's best candidate by the global order (SIZE_MAX: it owns none)
 * and, per trace, its best HPA target (best_hpa[t], SIZE_MAX: none). */
static size_t shard_best(const struct cps_tune_setup *s, const struct cps_tune_figures *cand,
                         const struct cps_tune_figures *hpa, const struct cps_tune_figures *oracle,
                         size_t *best_hpa)
{
    size_t T = s->n_traces, N = s->n_candidates;
    struct cps_tune_figures oracle_train[CPS_TUNE_MAX_TRACES];
    for (size_t t = 0; t < T; t++)
        oracle_train[t] = oracle[2 * t + CPS_TUNE_TRAIN];
    /* every shard runs every HPA target's training parts, so all agree on
     * the budgets (the merge checks it against the HPA figures it gathers) */
    double budgets[CPS_TUNE_MAX_TRACES];
    cps_tune_trace_budgets(hpa, CPS_TUNE_HPA_TARGETS, T, s->budget_pct, budgets);
    size_t best = SIZE_MAX;
    struct cps_tune_score best_score = {0, INFINITY, INFINITY};
    for (size_t k = 0; k < N; k++) {
        if (!owns(s, k))
            continue;
        struct cps_tune_score sc = cps_tune_score_of(&cand[k * T], oracle_train, T, budgets);
        if (best == SIZE_MAX || cps_tune_score_better(&sc, k, &best_score, best)) {
            best = k;
            best_score = sc;
        }
    }
    for (size_t t = 0; t < T; t++) {
        best_hpa[t] = SIZE_MAX;
        for (size_t j = 0; j < CPS_TUNE_HPA_TARGETS; j++)
            if (owns(s, N + j) &&
                (best_hpa[t] == SIZE_MAX ||
                 cps_tune_hpa_better(&hpa[j * T + t], j, &hpa[best_hpa[t] * T + t], best_hpa[t],
                            s->budget_pct)))
                best_hpa[t] = j;
    }
    return best;
}

/* The shard JSON's head: what the merge checks shards agree on, and every
 * trace with its oracle figures on both parts. */
static json_t *shard_header_json(const struct cps_tune_setup *s,
                                 const struct cps_tune_figures *oracle)
{
    size_t T = s->n_traces, N = s->n_candidates;
    json_t *root = json_object();
    json_object_set_new(root, "format", json_string(CPS_TUNE_SHARD_FORMAT));
    json_object_set_new(root, "fingerprint", json_string(s->fingerprint));
    json_object_set_new(root, "shard", json_integer(s->shard));
    json_object_set_new(root, "shards", json_integer(s->shards));
    json_object_set_new(root, "seed", json_integer((json_int_t)s->seed));
    json_object_set_new(root, "budget_pct", json_real(s->budget_pct));
    json_object_set_new(root, "train_fraction", json_real(s->train_fraction));
    json_object_set_new(root, "candidates", json_integer((json_int_t)N));
    json_t *targets = json_array();
    for (size_t j = 0; j < CPS_TUNE_HPA_TARGETS; j++)
        json_array_append_new(targets, json_real(s->hpa_targets[j]));
    json_object_set_new(root, "hpa_targets", targets);
    json_t *traces = json_array();
    for (size_t t = 0; t < T; t++) {
        const struct cps_tune_trace *tr = &s->traces[t];
        json_t *o = json_object(), *orc = json_object();
        json_object_set_new(o, "trace", json_string(tr->label));
        json_object_set_new(o, "scale", json_real(tr->scale * s->world.scale));
        json_object_set_new(o, "seconds", json_integer(tr->runs.seconds));
        json_object_set_new(o, "split_s", json_integer(tr->split_s));
        json_object_set_new(orc, "train", cps_tune_figures_json(&oracle[2 * t + CPS_TUNE_TRAIN]));
        json_object_set_new(orc, "test", cps_tune_figures_json(&oracle[2 * t + CPS_TUNE_TEST]));
        json_object_set_new(o, "oracle", orc);
        json_array_append_new(traces, o);
    }
    json_object_set_new(root, "traces", traces);
    return root;
}

/*
 * Evaluate this shard's candidates and HPA targets on every training part
 * (and the oracle on every part), pick the shard's best candidate and best
 * HPA target per trace by the global order, score those (and candidate 0,
 * the defaults, if this shard owns it) on the test parts, and return it all
 * as the shard's JSON object. NULL with err on failure.
 */
json_t *cps_tune_run_shard(const struct cps_tune_setup *s, double *simulated, struct cps_err *err)
{
    size_t T = s->n_traces, N = s->n_candidates;
    struct cps_tune_figures *cand = calloc(N * T, sizeof *cand);
    struct cps_tune_figures *hpa = calloc(CPS_TUNE_HPA_TARGETS * T, sizeof *hpa);
    struct cps_tune_figures *oracle = calloc(2 * T, sizeof *oracle);
    struct cps_tune_figures *tests = calloc(3 * T, sizeof *tests); /* best, candidate 0, HPA */
    struct work *work = calloc((N + CPS_TUNE_HPA_TARGETS + 2) * T + 2 * T, sizeof *work);
    json_t *root = NULL;
    double sim_seconds = 0.0;
    if (!cand || !hpa || !oracle || !tests || !work) {
        cps_err_set(err, "tune", 0, 0, "out of memory");
        goto fail;
    }
    size_t n = 0;
    for (size_t t = 0; t < T; t++)
        for (int part = CPS_TUNE_TRAIN; part <= CPS_TUNE_TEST; part++)
            work[n++] =
                (struct work){WORK_ORACLE, 0, t, (enum cps_tune_part)part, &oracle[2 * t + part]};
    for (size_t k = 0; k < N; k++)
        if (owns(s, k))
            for (size_t t = 0; t < T; t++)
                work[n++] = (struct work){WORK_CANDIDATE, k, t, CPS_TUNE_TRAIN, &cand[k * T + t]};
    for (size_t j = 0; j < CPS_TUNE_HPA_TARGETS; j++)
        for (size_t t = 0; t < T; t++)
            work[n++] = (struct work){WORK_HPA, j, t, CPS_TUNE_TRAIN, &hpa[j * T + t]};
    if (run_pool(s, work, n, "tune: search", err) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        sim_seconds += (double)part_seconds(&s->traces[work[i].trace], work[i].part);
    /* this shard's best candidate and best HPA target per trace */
    size_t best_hpa[CPS_TUNE_MAX_TRACES];
    size_t best = shard_best(s, cand, hpa, oracle, best_hpa);
    /* test parts: tests[0..T) the best candidate, [T..2T) candidate 0, [2T..3T) HPA */
    n = 0;
    size_t tested[2] = {best, owns(s, 0) && best != 0 ? 0 : SIZE_MAX};
    for (int row = 0; row < 2; row++)
        if (tested[row] != SIZE_MAX)
            for (size_t t = 0; t < T; t++)
                work[n++] = (struct work){WORK_CANDIDATE, tested[row], t, CPS_TUNE_TEST,
                                          &tests[(size_t)row * T + t]};
    for (size_t t = 0; t < T; t++)
        if (best_hpa[t] != SIZE_MAX)
            work[n++] = (struct work){WORK_HPA, best_hpa[t], t, CPS_TUNE_TEST, &tests[2 * T + t]};
    if (run_pool(s, work, n, "tune: test", err) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        sim_seconds += (double)part_seconds(&s->traces[work[i].trace], work[i].part);
    /* the shard's JSON */
    root = shard_header_json(s, oracle);
    json_t *items = json_array(), *hpa_items = json_array();
    for (size_t k = 0; k < N; k++)
        if (owns(s, k)) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer((json_int_t)k));
            json_object_set_new(o, "train", cps_tune_figures_array(&cand[k * T], T));
            json_array_append_new(items, o);
        }
    for (size_t j = 0; j < CPS_TUNE_HPA_TARGETS; j++)
        if (owns(s, N + j)) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer((json_int_t)j));
            json_object_set_new(o, "train", cps_tune_figures_array(&hpa[j * T], T));
            json_array_append_new(hpa_items, o);
        }
    json_object_set_new(root, "items", items);
    json_object_set_new(root, "hpa", hpa_items);
    json_t *cand_tests = json_array(), *hpa_tests = json_array();
    for (int row = 0; row < 2; row++) {
        if (tested[row] == SIZE_MAX)
            continue;
        struct cps_target target = s->base;
        cps_tune_apply(&s->candidates[tested[row]], s->safe_rps_per_pod, &target);
        char *fragment = cps_tune_fragment(&target);
        if (!fragment) {
            cps_err_set(err, "tune", 0, 0, "out of memory");
            goto fail;
        }
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer((json_int_t)tested[row]));
        json_object_set_new(o, "params", params_json(&target));
        json_object_set_new(o, "fragment", json_string(fragment));
        json_object_set_new(o, "test", cps_tune_figures_array(&tests[(size_t)row * T], T));
        json_array_append_new(cand_tests, o);
        free(fragment);
    }
    for (size_t t = 0; t < T; t++)
        if (best_hpa[t] != SIZE_MAX) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer((json_int_t)best_hpa[t]));
            json_object_set_new(o, "trace", json_integer((json_int_t)t));
            json_object_set_new(o, "test", cps_tune_figures_json(&tests[2 * T + t]));
            json_array_append_new(hpa_tests, o);
        }
    json_object_set_new(root, "candidate_tests", cand_tests);
    json_object_set_new(root, "hpa_tests", hpa_tests);
    json_object_set_new(root, "simulated_seconds", json_real(sim_seconds));
    *simulated = sim_seconds;
    free(work);
    free(tests);
    free(oracle);
    free(hpa);
    free(cand);
    return root;
fail:
    json_decref(root);
    free(work);
    free(tests);
    free(oracle);
    free(hpa);
    free(cand);
    return NULL;
}

/* ---- the merge: shard objects -> the final result ------------------------------ */

/* ---- the setup a command fills --------------------------------------------- */

/*
 * The world and base target from the config (--scale, when finite, over the
 * world's), the HPA targets searched and the world's SLO-safe rate per pod;
 * min/max replicas must be set before.
 */
void cps_tune_setup_base(struct cps_tune_setup *s, const struct cps_config *config, double scale)
{
    s->world = config->sim;
    if (isfinite(scale))
        s->world.scale = scale;
    s->base = config->defaults;
    s->base.min_replicas = s->min_replicas;
    s->base.max_replicas = s->max_replicas;
    s->slo_ms = s->base.slo_latency_p95_ms;
    for (size_t j = 0; j < CPS_TUNE_HPA_TARGETS; j++)
        s->hpa_targets[j] = HPA_TARGET_FIRST + HPA_TARGET_STEP * (double)j;
    struct cps_queue_model model = {s->world.routing, s->world.service_rate,
                                    s->world.base_latency_ms};
    s->safe_rps_per_pod = cps_queue_lambda_max(&model, s->slo_ms, 1);
}

/* Draw the candidate list and the fingerprint shards are merged by. */
int cps_tune_draw(struct cps_tune_setup *s)
{
    s->candidates = calloc(s->n_candidates, sizeof *s->candidates);
    if (!s->candidates)
        return -1;
    cps_tune_candidates(&s->base, s->seed, s->n_candidates, s->candidates);
    compute_fingerprint(s);
    return 0;
}

void cps_tune_setup_release(struct cps_tune_setup *s)
{
    for (size_t t = 0; t < s->n_traces; t++) {
        free(s->traces[t].path);
        cps_trace_runs_release(&s->traces[t].runs);
    }
    free(s->candidates);
}
