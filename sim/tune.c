#include "err.h"
#include "tune.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_file.h"
#include "config_schema.h"
#include "pool.h"
#include "queue_model.h"
#include "trace_runs.h"
#include "world.h"


#define MS_PER_S 1000
#define MS_PER_MIN (60 * MS_PER_S)
#define MS_PER_HOUR (60 * MS_PER_MIN)
#define PERCENT 100.0

#define DEFAULT_CANDIDATES 256
#define MAX_CANDIDATES 100000
#define MAX_TRACES 64
#define DEFAULT_BUDGET_PCT 1.0
#define DEFAULT_TRAIN_FRACTION 0.5
#define DEFAULT_SEED 1
#define DEFAULT_MIN_REPLICAS 1
#define DEFAULT_MAX_REPLICAS 1000
/* Each part of a trace must be at least this long to say anything. */
#define MIN_PART_S 1800
/* The HPA's CPU targets searched for its best: 0.10, 0.15, ..., 0.95. */
#define HPA_TARGET_FIRST 0.10
#define HPA_TARGET_STEP 0.05
#define HPA_TARGETS 18
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
/* 2^53: doubles in [0, 1) from the top 53 bits of a 64-bit draw. */
#define TWO_POW_53 9007199254740992.0
/* Redraws before a repeated candidate is accepted (a tiny grid). */
#define MAX_REDRAWS 64
/* Shard files are small; anything bigger is not one. */
#define SHARD_FILE_MAX_BYTES (256u << 20)
#define SHARD_FORMAT "cpscale-tune-shard/1"
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define JSON_EXACT (JSON_REAL_PRECISION(17))

/* ---- the search space ---------------------------------------------------- */

static const double headroom_levels[] = {0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995,
                                         0.9999};
static const double down_quantile_levels[] = {0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999};
static const int64_t halflife_levels_ms[] = {15 * MS_PER_MIN, 1 * MS_PER_HOUR, 3 * MS_PER_HOUR,
                                             6 * MS_PER_HOUR, 12 * MS_PER_HOUR, 24 * MS_PER_HOUR,
                                             72 * (int64_t)MS_PER_HOUR};
static const int32_t down_window_levels[] = {0, 30, 60, 120, 180, 300, 600, 900, 1800};
static const int32_t down_percent_levels[] = {5, 10, 25, 50, 100};
static const int32_t down_period_levels[] = {15, 30, 60, 120};
static const int32_t up_pods_levels[] = {2, 4, 8, 16, 32};
static const int32_t up_percent_levels[] = {50, 100, 200, 400};
/* Shares of the SLO-safe rate per pod; 0: the base config's capacity setting. */
static const double capacity_levels[] = {0, 1.0, 0.85, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3};
/* Significant digits of a tuned rps_per_pod (it is written into the fragment). */
#define CAPACITY_DIGITS 4

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const size_t level_counts[CPS_TUNE_DIMS] = {
    [CPS_TUNE_HEADROOM_QUANTILE] = N_OF(headroom_levels),
    [CPS_TUNE_SCALE_DOWN_QUANTILE] = N_OF(down_quantile_levels),
    [CPS_TUNE_VOLATILITY_HALFLIFE] = N_OF(halflife_levels_ms),
    [CPS_TUNE_TREND] = 2,
    [CPS_TUNE_SEASONALITY] = 2,
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

static uint8_t nearest_double(const double *levels, size_t n, double v)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (fabs(levels[i] - v) < fabs(levels[best] - v))
            best = i;
    return (uint8_t)best;
}

static uint8_t nearest_int(const int32_t *levels, size_t n, int64_t v)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (llabs(levels[i] - v) < llabs(levels[best] - v))
            best = i;
    return (uint8_t)best;
}

static uint8_t nearest_ms(const int64_t *levels, size_t n, int64_t v)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (llabs(levels[i] - v) < llabs(levels[best] - v))
            best = i;
    return (uint8_t)best;
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
        nearest_ms(halflife_levels_ms, N_OF(halflife_levels_ms), p->volatility_halflife_ms);
    level[CPS_TUNE_TREND] = p->trend ? 1 : 0;
    level[CPS_TUNE_SEASONALITY] = p->seasonality == CPS_SEASONALITY_DAILY;
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

/* splitmix64, seeded per candidate, so candidate i needs no other stream. */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double next_uniform(uint64_t *state)
{
    return (double)(next_u64(state) >> 11) / TWO_POW_53;
}

static size_t next_below(uint64_t *state, size_t n)
{
    return (size_t)(next_uniform(state) * (double)n);
}

/* A local move: some dimensions step one or two levels from the base. */
static void draw_local(uint64_t *rng, const uint8_t *base, uint8_t *level)
{
    int moved = 0;
    memcpy(level, base, CPS_TUNE_DIMS);
    while (!moved) {
        for (int d = 0; d < CPS_TUNE_DIMS; d++) {
            if (next_uniform(rng) >= LOCAL_MOVE_PROBABILITY)
                continue;
            int step = next_uniform(rng) < LOCAL_FAR ? 2 : 1;
            if (next_uniform(rng) < LOCAL_DOWN_PROBABILITY)
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
    t->policy.trend = l[CPS_TUNE_TREND];
    t->policy.seasonality = l[CPS_TUNE_SEASONALITY] ? CPS_SEASONALITY_DAILY : CPS_SEASONALITY_NONE;
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

enum part { PART_TRAIN = 0, PART_TEST = 1 };

struct figures {
    double cost_usd;
    double violation_pct;
    double violation_time_pct;
    double avg_pods;
    double requests;
    int64_t pod_starts;
    int64_t scale_actions;
    int64_t peak_pods;
    int64_t seconds;
};

struct tune_trace {
    const char *label; /* as given on the command line */
    char *path;
    double scale;
    struct cps_trace_runs runs;
    int64_t split_s;   /* train: [0, split_s), test: [split_s, seconds) */
};

struct tune_setup {
    struct cps_sim_params world;
    double slo_ms;
    int32_t min_replicas, max_replicas;
    struct cps_target base; /* shallow copy of the config's defaults; strings borrowed */
    size_t n_traces;
    struct tune_trace traces[MAX_TRACES];
    size_t n_candidates;
    struct cps_tune_candidate *candidates;
    double hpa_targets[HPA_TARGETS];
    double safe_rps_per_pod; /* λmax(1) of the world at the SLO */
    double budget_pct, train_fraction;
    uint64_t seed;
    int shard, shards, jobs;
    FILE *progress;
    char fingerprint[24];
};

enum work_kind { WORK_ORACLE, WORK_CANDIDATE, WORK_HPA };

struct work {
    enum work_kind kind;
    size_t index; /* candidate or HPA target index */
    size_t trace;
    enum part part;
    struct figures *out;
};

struct eval_ctx {
    const struct tune_setup *setup;
    const struct work *work;
};

static int64_t part_seconds(const struct tune_trace *t, enum part part)
{
    return part == PART_TRAIN ? t->split_s : t->runs.seconds - t->split_s;
}

/* Simulate one policy on one part of one trace, as `cpscale sim` would. */
static int eval_cb(void *ctx, size_t i, struct cps_err *err)
{
    const struct eval_ctx *c = ctx;
    const struct tune_setup *s = c->setup;
    const struct work *w = &c->work[i];
    const struct tune_trace *t = &s->traces[w->trace];
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
    int64_t from = w->part == PART_TRAIN ? 0 : t->split_s;
    int64_t to = w->part == PART_TRAIN ? t->split_s : t->runs.seconds;
    struct cps_sim_result r;
    int rc = cps_trace_runs_feed(&t->runs, from, to, t->scale * s->world.scale, s->world.price, sim,
                                 err);
    if (rc == 0)
        rc = cps_sim_finish(sim, &r, err);
    cps_sim_free(sim);
    if (rc < 0)
        return -1;
    struct figures *f = w->out;
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

/* ---- selection (the same for a shard and for the merge) ------------------- */

/* How a candidate did on the training parts. */
struct score {
    int feasible;    /* every trace within the budget */
    double excess;   /* worst violation % above the budget */
    double relative; /* mean over traces of cost / oracle cost */
};

/* Score a candidate's training figures against the budget; cost is taken
 * relative to the oracle so that traces of different sizes weigh alike. */
static struct score score_of(const struct figures *train, const struct figures *oracle_train,
                             size_t n_traces, double budget)
{
    struct score s = {1, 0.0, 0.0};
    for (size_t t = 0; t < n_traces; t++) {
        double over = train[t].violation_pct - budget;
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

/* A total order: feasible first, then cheaper (infeasible: less excess,
 * then cheaper); ties go to the lower index, so any split agrees. */
static int score_better(const struct score *a, size_t ia, const struct score *b, size_t ib)
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
static int hpa_better(const struct figures *a, size_t ia, const struct figures *b, size_t ib,
                      double budget)
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

static json_t *figures_json(const struct figures *f)
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

static int get_real(const json_t *o, const char *key, double *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

static int get_int(const json_t *o, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int figures_from_json(const json_t *o, struct figures *f)
{
    if (!json_is_object(o) || get_real(o, "cost_usd", &f->cost_usd) < 0 ||
        get_real(o, "violation_pct", &f->violation_pct) < 0 ||
        get_real(o, "violation_time_pct", &f->violation_time_pct) < 0 ||
        get_real(o, "avg_pods", &f->avg_pods) < 0 || get_real(o, "requests", &f->requests) < 0 ||
        get_int(o, "pod_starts", &f->pod_starts) < 0 ||
        get_int(o, "scale_actions", &f->scale_actions) < 0 ||
        get_int(o, "peak_pods", &f->peak_pods) < 0 || get_int(o, "seconds", &f->seconds) < 0)
        return -1;
    return 0;
}

static json_t *figures_array(const struct figures *f, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, figures_json(&f[i]));
    return a;
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
static void compute_fingerprint(struct tune_setup *s)
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
    for (size_t i = 0; i < HPA_TARGETS; i++)
        fnv_double(&h, s->hpa_targets[i]);
    fnv_double(&h, s->safe_rps_per_pod);
    fnv_i64(&h, (int64_t)s->n_traces);
    for (size_t t = 0; t < s->n_traces; t++) {
        const struct tune_trace *tr = &s->traces[t];
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

static int owns(const struct tune_setup *s, size_t global_index)
{
    return (int)(global_index % (size_t)s->shards) == s->shard;
}

static int run_pool(const struct tune_setup *s, const struct work *work, size_t n, const char *label,
                    struct cps_err *err)
{
    struct eval_ctx ctx = {s, work};
    return cps_pool_run(n, s->jobs, eval_cb, &ctx, s->progress, label, err);
}

/*
 * Evaluate this shard's candidates and HPA targets on every training part
 * (and the oracle on every part), pick the shard's best candidate and best
 * HPA target per trace by the global order, score those (and candidate 0,
 * the defaults, if this shard owns it) on the test parts, and return it all
 * as the shard's JSON object. NULL with err on failure.
 */
static json_t *run_shard(const struct tune_setup *s, double *simulated, struct cps_err *err)
{
    size_t T = s->n_traces, N = s->n_candidates;
    struct figures *cand = calloc(N * T, sizeof *cand);
    struct figures *hpa = calloc(HPA_TARGETS * T, sizeof *hpa);
    struct figures *oracle = calloc(2 * T, sizeof *oracle);
    struct figures *tests = calloc(3 * T, sizeof *tests); /* best, candidate 0, HPA */
    struct work *work = calloc((N + HPA_TARGETS + 2) * T + 2 * T, sizeof *work);
    json_t *root = NULL;
    double sim_seconds = 0.0;
    if (!cand || !hpa || !oracle || !tests || !work) {
        cps_err_set(err, "tune", 0, 0, "out of memory");
        goto fail;
    }
    size_t n = 0;
    for (size_t t = 0; t < T; t++)
        for (int part = PART_TRAIN; part <= PART_TEST; part++)
            work[n++] = (struct work){WORK_ORACLE, 0, t, (enum part)part, &oracle[2 * t + part]};
    for (size_t k = 0; k < N; k++)
        if (owns(s, k))
            for (size_t t = 0; t < T; t++)
                work[n++] = (struct work){WORK_CANDIDATE, k, t, PART_TRAIN, &cand[k * T + t]};
    for (size_t j = 0; j < HPA_TARGETS; j++)
        if (owns(s, N + j))
            for (size_t t = 0; t < T; t++)
                work[n++] = (struct work){WORK_HPA, j, t, PART_TRAIN, &hpa[j * T + t]};
    if (run_pool(s, work, n, "tune: search", err) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        sim_seconds += (double)part_seconds(&s->traces[work[i].trace], work[i].part);
    /* this shard's best candidate and best HPA target per trace */
    struct figures oracle_train[MAX_TRACES];
    for (size_t t = 0; t < T; t++)
        oracle_train[t] = oracle[2 * t + PART_TRAIN];
    size_t best = SIZE_MAX;
    struct score best_score = {0, INFINITY, INFINITY};
    for (size_t k = 0; k < N; k++) {
        if (!owns(s, k))
            continue;
        struct score sc = score_of(&cand[k * T], oracle_train, T, s->budget_pct);
        if (best == SIZE_MAX || score_better(&sc, k, &best_score, best)) {
            best = k;
            best_score = sc;
        }
    }
    size_t best_hpa[MAX_TRACES];
    for (size_t t = 0; t < T; t++) {
        best_hpa[t] = SIZE_MAX;
        for (size_t j = 0; j < HPA_TARGETS; j++)
            if (owns(s, N + j) &&
                (best_hpa[t] == SIZE_MAX ||
                 hpa_better(&hpa[j * T + t], j, &hpa[best_hpa[t] * T + t], best_hpa[t],
                            s->budget_pct)))
                best_hpa[t] = j;
    }
    /* test parts: tests[0..T) the best candidate, [T..2T) candidate 0, [2T..3T) HPA */
    n = 0;
    size_t tested[2] = {best, owns(s, 0) && best != 0 ? 0 : SIZE_MAX};
    for (int row = 0; row < 2; row++)
        if (tested[row] != SIZE_MAX)
            for (size_t t = 0; t < T; t++)
                work[n++] = (struct work){WORK_CANDIDATE, tested[row], t, PART_TEST,
                                          &tests[(size_t)row * T + t]};
    for (size_t t = 0; t < T; t++)
        if (best_hpa[t] != SIZE_MAX)
            work[n++] = (struct work){WORK_HPA, best_hpa[t], t, PART_TEST, &tests[2 * T + t]};
    if (run_pool(s, work, n, "tune: test", err) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        sim_seconds += (double)part_seconds(&s->traces[work[i].trace], work[i].part);
    /* the shard's JSON */
    root = json_object();
    json_object_set_new(root, "format", json_string(SHARD_FORMAT));
    json_object_set_new(root, "fingerprint", json_string(s->fingerprint));
    json_object_set_new(root, "shard", json_integer(s->shard));
    json_object_set_new(root, "shards", json_integer(s->shards));
    json_object_set_new(root, "seed", json_integer((json_int_t)s->seed));
    json_object_set_new(root, "budget_pct", json_real(s->budget_pct));
    json_object_set_new(root, "train_fraction", json_real(s->train_fraction));
    json_object_set_new(root, "candidates", json_integer((json_int_t)N));
    json_t *targets = json_array();
    for (size_t j = 0; j < HPA_TARGETS; j++)
        json_array_append_new(targets, json_real(s->hpa_targets[j]));
    json_object_set_new(root, "hpa_targets", targets);
    json_t *traces = json_array();
    for (size_t t = 0; t < T; t++) {
        const struct tune_trace *tr = &s->traces[t];
        json_t *o = json_object(), *orc = json_object();
        json_object_set_new(o, "trace", json_string(tr->label));
        json_object_set_new(o, "scale", json_real(tr->scale * s->world.scale));
        json_object_set_new(o, "seconds", json_integer(tr->runs.seconds));
        json_object_set_new(o, "split_s", json_integer(tr->split_s));
        json_object_set_new(orc, "train", figures_json(&oracle[2 * t + PART_TRAIN]));
        json_object_set_new(orc, "test", figures_json(&oracle[2 * t + PART_TEST]));
        json_object_set_new(o, "oracle", orc);
        json_array_append_new(traces, o);
    }
    json_object_set_new(root, "traces", traces);
    json_t *items = json_array(), *hpa_items = json_array();
    for (size_t k = 0; k < N; k++)
        if (owns(s, k)) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer((json_int_t)k));
            json_object_set_new(o, "train", figures_array(&cand[k * T], T));
            json_array_append_new(items, o);
        }
    for (size_t j = 0; j < HPA_TARGETS; j++)
        if (owns(s, N + j)) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer((json_int_t)j));
            json_object_set_new(o, "train", figures_array(&hpa[j * T], T));
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
        json_object_set_new(o, "test", figures_array(&tests[(size_t)row * T], T));
        json_array_append_new(cand_tests, o);
        free(fragment);
    }
    for (size_t t = 0; t < T; t++)
        if (best_hpa[t] != SIZE_MAX) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer((json_int_t)best_hpa[t]));
            json_object_set_new(o, "trace", json_integer((json_int_t)t));
            json_object_set_new(o, "test", figures_json(&tests[2 * T + t]));
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

struct merged_trace {
    const char *label;
    double scale;
    int64_t seconds, split_s;
    struct figures oracle[2];
    struct figures tuned[2], base[2], hpa[2];
    size_t hpa_index;
};

struct merged {
    size_t n_traces, n_candidates, feasible;
    struct merged_trace traces[MAX_TRACES];
    double hpa_targets[HPA_TARGETS];
    double budget_pct, train_fraction;
    json_int_t seed;
    size_t best;
    int best_feasible;
    const char *fragment;   /* borrowed from the shard JSON */
    json_t *params;         /* borrowed */
    double simulated_seconds;
};

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
                      int shards, struct figures *dst, unsigned char *seen, const char *source,
                      struct cps_err *err)
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
            if (figures_from_json(json_array_get(train, t), &dst[k * T + t]) < 0)
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
static int merge_shards(json_t *const *shards, const char *const *sources, size_t n_shards,
                        struct merged *m, struct cps_err *err)
{
    struct figures *cand = NULL, *hpa = NULL;
    unsigned char *seen = NULL, *seen_hpa = NULL;
    int *have_shard = NULL;
    const char *source = sources[0];
    memset(m, 0, sizeof *m);
    const json_t *first = shards[0];
    const char *format = json_string_value(json_object_get(first, "format"));
    if (!format || strcmp(format, SHARD_FORMAT) != 0)
        MERGE_FAIL("not a cpscale tune shard file (format \"%s\")", format ? format : "none");
    const char *fingerprint = json_string_value(json_object_get(first, "fingerprint"));
    json_int_t n_of_shards = json_integer_value(json_object_get(first, "shards"));
    const json_t *traces = json_object_get(first, "traces");
    json_int_t n_candidates = json_integer_value(json_object_get(first, "candidates"));
    const json_t *targets = json_object_get(first, "hpa_targets");
    if (!fingerprint || n_of_shards < 1 || !json_is_array(traces) || json_array_size(traces) == 0 ||
        json_array_size(traces) > MAX_TRACES || n_candidates < 1 ||
        n_candidates > MAX_CANDIDATES || !json_is_array(targets) ||
        json_array_size(targets) != HPA_TARGETS ||
        get_real(first, "budget_pct", &m->budget_pct) < 0 ||
        get_real(first, "train_fraction", &m->train_fraction) < 0 ||
        !json_is_integer(json_object_get(first, "seed")))
        MERGE_FAIL("malformed shard header");
    m->seed = json_integer_value(json_object_get(first, "seed"));
    size_t T = json_array_size(traces), N = (size_t)n_candidates;
    m->n_traces = T;
    m->n_candidates = N;
    for (size_t j = 0; j < HPA_TARGETS; j++)
        m->hpa_targets[j] = json_number_value(json_array_get(targets, j));
    for (size_t t = 0; t < T; t++) {
        const json_t *o = json_array_get(traces, t), *orc = json_object_get(o, "oracle");
        struct merged_trace *mt = &m->traces[t];
        mt->label = json_string_value(json_object_get(o, "trace"));
        if (!mt->label || get_real(o, "scale", &mt->scale) < 0 ||
            get_int(o, "seconds", &mt->seconds) < 0 || get_int(o, "split_s", &mt->split_s) < 0 ||
            figures_from_json(json_object_get(orc, "train"), &mt->oracle[PART_TRAIN]) < 0 ||
            figures_from_json(json_object_get(orc, "test"), &mt->oracle[PART_TEST]) < 0)
            MERGE_FAIL("malformed trace %zu", t);
    }
    if ((size_t)n_of_shards != n_shards)
        MERGE_FAIL("the run has %lld shards, %zu shard files were given",
                   (long long)n_of_shards, n_shards);
    cand = calloc(N * T, sizeof *cand);
    hpa = calloc(HPA_TARGETS * T, sizeof *hpa);
    seen = calloc(N, 1);
    seen_hpa = calloc(HPA_TARGETS, 1);
    have_shard = calloc(n_shards, sizeof *have_shard);
    if (!cand || !hpa || !seen || !seen_hpa || !have_shard)
        MERGE_FAIL("out of memory");
    for (size_t i = 0; i < n_shards; i++) {
        source = sources[i];
        const json_t *s = shards[i];
        const char *f = json_string_value(json_object_get(s, "format"));
        const char *fp = json_string_value(json_object_get(s, "fingerprint"));
        json_int_t index = json_integer_value(json_object_get(s, "shard"));
        if (!f || strcmp(f, SHARD_FORMAT) != 0)
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
            take_items(json_object_get(s, "hpa"), HPA_TARGETS, T, N, (int)index,
                       (int)n_of_shards, hpa, seen_hpa, source, err) < 0)
            goto fail;
        double simulated = 0.0;
        if (get_real(s, "simulated_seconds", &simulated) == 0)
            m->simulated_seconds += simulated;
    }
    source = "merge";
    for (size_t k = 0; k < N; k++)
        if (!seen[k])
            MERGE_FAIL("candidate %zu is missing from every shard", k);
    for (size_t j = 0; j < HPA_TARGETS; j++)
        if (!seen_hpa[j])
            MERGE_FAIL("HPA target %zu is missing from every shard", j);
    /* the winner */
    struct figures oracle_train[MAX_TRACES];
    for (size_t t = 0; t < T; t++)
        oracle_train[t] = m->traces[t].oracle[PART_TRAIN];
    struct score best_score = {0, INFINITY, INFINITY};
    m->best = SIZE_MAX;
    for (size_t k = 0; k < N; k++) {
        struct score sc = score_of(&cand[k * T], oracle_train, T, m->budget_pct);
        m->feasible += sc.feasible;
        if (m->best == SIZE_MAX || score_better(&sc, k, &best_score, m->best)) {
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
        struct merged_trace *mt = &m->traces[t];
        mt->tuned[PART_TRAIN] = cand[m->best * T + t];
        mt->base[PART_TRAIN] = cand[t];
        if (figures_from_json(json_array_get(json_object_get(win, "test"), t),
                              &mt->tuned[PART_TEST]) < 0 ||
            figures_from_json(json_array_get(json_object_get(base, "test"), t),
                              &mt->base[PART_TEST]) < 0)
            MERGE_FAIL("malformed test figures for trace %zu", t);
        size_t bj = 0;
        for (size_t j = 1; j < HPA_TARGETS; j++)
            if (hpa_better(&hpa[j * T + t], j, &hpa[bj * T + t], bj, m->budget_pct))
                bj = j;
        mt->hpa_index = bj;
        mt->hpa[PART_TRAIN] = hpa[bj * T + t];
        const json_t *ht = find_hpa_test(shards, n_shards, bj, t);
        if (!ht || figures_from_json(json_object_get(ht, "test"), &mt->hpa[PART_TEST]) < 0)
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
static int write_table(FILE *out, const struct merged *m)
{
    fprintf(out, "cpscale tune: %zu trace(s), %zu candidates and %d HPA targets (seed %lld); "
            "objective: lowest cost with violations <= %g %% on every training part\n",
            m->n_traces, m->n_candidates, HPA_TARGETS, (long long)m->seed, m->budget_pct);
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
        const struct merged_trace *mt = &m->traces[t];
        char name[64], hpa_name[32];
        snprintf(name, sizeof name, "%s", mt->label);
        snprintf(hpa_name, sizeof hpa_name, "hpa:%.2f", m->hpa_targets[mt->hpa_index]);
        for (int part = PART_TRAIN; part <= PART_TEST; part++) {
            const struct figures *rows[] = {&mt->tuned[part], &mt->base[part], &mt->hpa[part],
                                            &mt->oracle[part]};
            const char *names[] = {"tuned", "default", hpa_name, "oracle"};
            for (size_t r = 0; r < N_OF(rows); r++) {
                char x_hpa[32], x_oracle[32];
                ratio_text(x_hpa, sizeof x_hpa, ratio(rows[r]->cost_usd, mt->hpa[part].cost_usd));
                ratio_text(x_oracle, sizeof x_oracle,
                           ratio(rows[r]->cost_usd, mt->oracle[part].cost_usd));
                fprintf(out, "%-32s %-5s %-10s %14.4f %9.4f %8s %9s\n",
                        part == PART_TRAIN && r == 0 ? name : "",
                        r == 0 ? (part == PART_TRAIN ? "train" : "test") : "", names[r],
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

static json_t *part_json(const struct figures *f, const struct figures *hpa,
                         const struct figures *oracle)
{
    json_t *o = figures_json(f);
    json_object_set_new(o, "cost_vs_hpa", json_real(ratio(f->cost_usd, hpa->cost_usd)));
    json_object_set_new(o, "cost_vs_oracle", json_real(ratio(f->cost_usd, oracle->cost_usd)));
    return o;
}

/* The report as JSON; elapsed_s < 0 leaves the timing out (a merge has none
 * of its own). */
static json_t *merged_json(const struct merged *m, double elapsed_s)
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
        const struct merged_trace *mt = &m->traces[t];
        json_t *o = json_object();
        json_object_set_new(o, "trace", json_string(mt->label));
        json_object_set_new(o, "scale", json_real(mt->scale));
        json_object_set_new(o, "train_seconds", json_integer(mt->split_s));
        json_object_set_new(o, "test_seconds", json_integer(mt->seconds - mt->split_s));
        json_object_set_new(o, cps_config_key_name(CPS_KEY_SIM_HPA_TARGET),
                            json_real(m->hpa_targets[mt->hpa_index]));
        const char *names[] = {"tuned", "default", "hpa", "oracle"};
        const struct figures *sets[] = {mt->tuned, mt->base, mt->hpa, mt->oracle};
        for (size_t r = 0; r < N_OF(names); r++) {
            json_t *p = json_object();
            json_object_set_new(p, "train", part_json(&sets[r][PART_TRAIN], &mt->hpa[PART_TRAIN],
                                                      &mt->oracle[PART_TRAIN]));
            json_object_set_new(p, "test", part_json(&sets[r][PART_TEST], &mt->hpa[PART_TEST],
                                                     &mt->oracle[PART_TEST]));
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

/* Print the merged result: the table and fragment, or JSON; the fragment
 * also to `fragment_path` when given. */
static int report(const struct merged *m, int json, const char *fragment_path, double elapsed_s)
{
    int rc = 0;
    if (json) {
        json_t *root = merged_json(m, elapsed_s);
        rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
        json_decref(root);
        if (rc == 0 && fputc('\n', stdout) == EOF)
            rc = -1;
    } else {
        rc = write_table(stdout, m);
    }
    if (rc == 0 && fflush(stdout) == EOF)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "cpscale tune: writing the report failed\n");
        return CPS_EXIT_RUNTIME;
    }
    if (fragment_path) {
        FILE *f = fopen(fragment_path, "w");
        int failed = !f;
        if (f) {
            failed = fputs(m->fragment, f) == EOF;
            failed |= fclose(f) != 0;
        }
        if (failed) {
            fprintf(stderr, "cpscale tune: %s: cannot write the fragment: %s\n", fragment_path,
                    strerror(errno));
            return CPS_EXIT_RUNTIME;
        }
    }
    if (!m->best_feasible)
        fprintf(stderr, "cpscale tune: warning: no candidate met the %g %% budget on every "
                "training part\n",
                m->budget_pct);
    return CPS_EXIT_OK;
}

/* ---- the command ---------------------------------------------------------------- */

static void tune_usage(FILE *out)
{
    fputs("NAME\n"
          "    cpscale tune - search the cpscale policy's parameters on recorded traces\n"
          "\n"
          "SYNOPSIS\n"
          "    cpscale tune TRACE.csv[:SCALE]... [--config FILE] [--scale S] [--budget 1%]\n"
          "                 [--train-fraction 0.5] [--candidates N] [--seed N] [--jobs N]\n"
          "                 [--min-replicas N] [--max-replicas N] [--shard i/N]\n"
          "                 [--output FILE] [--json] [--quiet]\n"
          "    cpscale tune --merge FILE|DIR... [--output FILE] [--json]\n"
          "\n"
          "DESCRIPTION\n"
          "    Searches the `policy:` keys headroom_quantile, scale_down_quantile,\n"
          "    volatility_halflife, trend and seasonality, and the `behavior:` rails\n"
          "    (scale-down stabilization window, scale-down Percent policy and its\n"
          "    period, scale-up Pods and Percent policies per 15 s) and capacity.rps_per_pod\n"
          "    (auto, or 30..100 % of the world's SLO-safe rate per pod: a fixed safety\n"
          "    factor, for traffic with spikes faster than pods start) for the lowest cost\n"
          "    whose SLO violation % stays within --budget on the training part of every\n"
          "    trace. The training part is the first --train-fraction of each trace;\n"
          "    the rest is the test part, replayed as a trace of its own. The world is\n"
          "    the config's `sim:` section (see cpscale calibrate).\n"
          "\n"
          "    The candidates are one list drawn from --seed: candidate 0 is the config\n"
          "    as it is, then alternately a local move from it and a draw from the whole\n"
          "    grid. Cost is compared as the mean over traces of cost / oracle cost;\n"
          "    ties go to the lower candidate. HPA's best CPU target (0.10 .. 0.95 in\n"
          "    steps of 0.05) is searched per trace the same way: the cheapest meeting\n"
          "    the budget on the training part.\n"
          "\n"
          "    It prints, per trace and part, the cost and violation % of the tuned\n"
          "    config, the starting config (default), HPA at its best target and the\n"
          "    oracle, each cost also against HPA's and the oracle's, then the\n"
          "    `defaults:` fragment of config.yaml with the winning policy and behavior.\n"
          "\n"
          "    The work runs on --jobs threads; the result depends only on the traces,\n"
          "    the config, the flags and --seed, never on --jobs or on sharding. With\n"
          "    --shard i/N it evaluates only its share of the candidates (those whose\n"
          "    index is i modulo N, and the HPA targets likewise) and writes its figures\n"
          "    as JSON; --merge reads the N shard files (or directories of *.json) and\n"
          "    prints exactly what one unsharded run prints. manifests/tune-job.yaml runs\n"
          "    the shards as a Kubernetes Indexed Job.\n"
          "\n"
          "OPTIONS\n"
          "    TRACE.csv[:SCALE]    a trace; SCALE multiplies its rates (on top of --scale)\n"
          "    --config FILE        start from this config's defaults: and sim: sections\n"
          "    --scale S            multiply every trace's rates (default: the config's 1)\n"
          "    --budget P[%]        violation % allowed on each training part (default 1%)\n"
          "    --train-fraction F   share of each trace used for the search (default 0.5)\n"
          "    --candidates N       candidates to evaluate, candidate 0 included (default\n"
          "                         256)\n"
          "    --seed N             draws the candidates (default 1)\n"
          "    --jobs N             threads (default: online CPUs)\n"
          "    --min-replicas N     (default 1)    --max-replicas N   (default 1000)\n"
          "    --shard i/N          evaluate shard i of N (0 <= i < N) and write its JSON\n"
          "    --merge              the arguments are shard files or directories\n"
          "    --output FILE        the config fragment (with --shard: the shard JSON) to\n"
          "                         FILE; the report still goes to stdout\n"
          "    --json               the report as one JSON object\n"
          "    --quiet              no progress bar, no gap warnings\n"
          "    --help               this page\n"
          "\n"
          "EXIT STATUS\n"
          "    0 done (a warning on stderr when no candidate met the budget); 1 runtime\n"
          "    failure; 2 usage, config, trace or shard-file error.\n"
          "\n"
          "EXAMPLES\n"
          "    cpscale tune web-week.csv api-week.csv --budget 0.5% --config config.yaml\n"
          "    cpscale tune ../shared/traces/nasa-jul95-1m.csv:900 \\\n"
          "        ../shared/traces/twitter-aug21-1m.csv:15 --output tuned.yaml\n"
          "    for i in 0 1 2; do cpscale tune t.csv --shard $i/3 --output s$i.json; done\n"
          "    cpscale tune --merge s0.json s1.json s2.json\n",
          out);
}

/* The command's number flags (shared parser, this command's name). */
static int parse_double_arg(const char *flag, const char *text, double lo, double hi, double *out)
{
    return cps_parse_number_arg("tune", flag, text, lo, hi, out);
}

/* "1%", "1", "0.5 %" -> percent. */
static int parse_budget(const char *text, double *out)
{
    char buf[64];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof buf) {
        fprintf(stderr, "cpscale tune: --budget: \"%s\" is not a percentage\n", text);
        return -1;
    }
    memcpy(buf, text, n + 1);
    while (n > 0 && (buf[n - 1] == '%' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return parse_double_arg("--budget", buf, 0.0, PERCENT, out);
}

/* "i/N" with 0 <= i < N; prints the problem and returns -1 otherwise. */
static int parse_shard(const char *text, int *shard, int *shards)
{
    char *end = NULL;
    errno = 0;
    long i = strtol(text, &end, 10);
    if (errno || end == text || *end != '/') {
        fprintf(stderr, "cpscale tune: --shard: \"%s\" is not i/N\n", text);
        return -1;
    }
    const char *rest = end + 1;
    long n = strtol(rest, &end, 10);
    if (errno || end == rest || *end || n < 1 || n > MAX_CANDIDATES || i < 0 || i >= n) {
        fprintf(stderr, "cpscale tune: --shard: \"%s\" needs 0 <= i < N\n", text);
        return -1;
    }
    *shard = (int)i;
    *shards = (int)n;
    return 0;
}

/* "FILE" or "FILE:SCALE" (when FILE:SCALE itself is not a file and SCALE is a
 * positive number). */
static int parse_trace_arg(const char *arg, char **path, double *scale)
{
    struct stat st;
    const char *colon = strrchr(arg, ':');
    *scale = 1.0;
    if (colon && stat(arg, &st) != 0) {
        char *end = NULL;
        errno = 0;
        double v = strtod(colon + 1, &end);
        if (!errno && end != colon + 1 && !*end && isfinite(v) && v > 0.0) {
            *path = strndup(arg, (size_t)(colon - arg));
            *scale = v;
            return *path ? 0 : -1;
        }
    }
    *path = strdup(arg);
    return *path ? 0 : -1;
}

/* Shard files from the arguments: files as given, directories' *.json sorted. */
static int collect_shard_files(char **args, int n, char ***files, size_t *n_files)
{
    size_t cap = 16, count = 0;
    char **list = malloc(cap * sizeof *list);
    if (!list)
        return -1;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **entries = NULL;
            int m = scandir(args[i], &entries, NULL, alphasort);
            if (m < 0) {
                fprintf(stderr, "cpscale tune: %s: %s\n", args[i], strerror(errno));
                goto fail;
            }
            for (int e = 0; e < m; e++) {
                const char *name = entries[e]->d_name;
                size_t len = strlen(name);
                if (len > 5 && strcmp(name + len - 5, ".json") == 0 && name[0] != '.') {
                    if (count == cap) {
                        char **grown = realloc(list, 2 * cap * sizeof *list);
                        if (!grown)
                            goto fail;
                        list = grown;
                        cap *= 2;
                    }
                    size_t size = strlen(args[i]) + len + 2;
                    list[count] = malloc(size);
                    if (!list[count])
                        goto fail;
                    snprintf(list[count++], size, "%s/%s", args[i], name);
                }
                free(entries[e]);
            }
            free(entries);
            continue;
        }
        if (count == cap) {
            char **grown = realloc(list, 2 * cap * sizeof *list);
            if (!grown)
                goto fail;
            list = grown;
            cap *= 2;
        }
        if (!(list[count++] = strdup(args[i])))
            goto fail;
    }
    *files = list;
    *n_files = count;
    return 0;
fail:
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
    return -1;
}

/* `tune --merge`: read every shard file (JSON syntax errors name
 * file:line:col), merge, report. Returns the exit code. */
static int merge_main(char **args, int n, int json, const char *output)
{
    char **files = NULL;
    size_t n_files = 0;
    int exit_code = CPS_EXIT_USAGE;
    if (n < 1) {
        fprintf(stderr, "cpscale tune --merge: give the shard files (see --help)\n");
        return CPS_EXIT_USAGE;
    }
    if (collect_shard_files(args, n, &files, &n_files) < 0)
        return CPS_EXIT_RUNTIME;
    json_t **shards = calloc(n_files ? n_files : 1, sizeof *shards);
    if (!shards) {
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    if (n_files == 0) {
        fprintf(stderr, "cpscale tune --merge: no shard files found\n");
        goto done;
    }
    for (size_t i = 0; i < n_files; i++) {
        char *bytes = NULL;
        size_t len = 0;
        if (cps_read_file(files[i], SHARD_FILE_MAX_BYTES, &bytes, &len) < 0)
            goto done;
        json_error_t jerr;
        shards[i] = json_loadb(bytes, len, 0, &jerr);
        free(bytes);
        if (!shards[i] || !json_is_object(shards[i])) {
            if (shards[i])
                fprintf(stderr, "%s: not a JSON object\n", files[i]);
            else
                fprintf(stderr, "%s:%d:%d: %s\n", files[i], jerr.line, jerr.column, jerr.text);
            goto done;
        }
    }
    struct merged m;
    struct cps_err err;
    cps_err_clear(&err);
    if (merge_shards(shards, (const char *const *)files, n_files, &m, &err) < 0) {
        char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
        cps_err_format(&err, msg, sizeof msg);
        fprintf(stderr, "cpscale tune --merge: %s\n", msg);
        goto done;
    }
    exit_code = report(&m, json, output, -1.0);
done:
    if (shards)
        for (size_t i = 0; i < n_files; i++)
            json_decref(shards[i]);
    free(shards);
    for (size_t i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    return exit_code;
}

enum tune_option {
    OPT_CONFIG = 256, OPT_SCALE, OPT_BUDGET, OPT_TRAIN_FRACTION, OPT_CANDIDATES, OPT_SEED,
    OPT_JOBS, OPT_MIN, OPT_MAX, OPT_SHARD, OPT_MERGE, OPT_OUTPUT, OPT_JSON, OPT_QUIET, OPT_HELP,
};

static void release_setup(struct tune_setup *s)
{
    for (size_t t = 0; t < s->n_traces; t++) {
        free(s->traces[t].path);
        cps_trace_runs_release(&s->traces[t].runs);
    }
    free(s->candidates);
}

/*
 * Parse, load the config and every trace (a trace error stops before any
 * work), draw the candidates, then run this shard (all of it unless
 * --shard) and either write the shard JSON or merge it on the spot.
 */
int cps_tune_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"scale", required_argument, NULL, OPT_SCALE},
        {"budget", required_argument, NULL, OPT_BUDGET},
        {"train-fraction", required_argument, NULL, OPT_TRAIN_FRACTION},
        {"candidates", required_argument, NULL, OPT_CANDIDATES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"jobs", required_argument, NULL, OPT_JOBS},
        {"min-replicas", required_argument, NULL, OPT_MIN},
        {"max-replicas", required_argument, NULL, OPT_MAX},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"merge", no_argument, NULL, OPT_MERGE},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct tune_setup s;
    memset(&s, 0, sizeof s);
    s.budget_pct = DEFAULT_BUDGET_PCT;
    s.train_fraction = DEFAULT_TRAIN_FRACTION;
    s.seed = DEFAULT_SEED;
    s.jobs = cps_pool_default_jobs();
    s.shards = 1;
    s.n_candidates = DEFAULT_CANDIDATES;
    s.min_replicas = DEFAULT_MIN_REPLICAS;
    s.max_replicas = DEFAULT_MAX_REPLICAS;
    const char *config_path = NULL, *output = NULL;
    double scale = NAN, v;
    int merge = 0, json = 0, quiet = 0, sharded = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_CONFIG: config_path = optarg; break;
        case OPT_SCALE:
            if (parse_double_arg("--scale", optarg, 0, 1e12, &scale) < 0)
                return CPS_EXIT_USAGE;
            break;
        case OPT_BUDGET:
            if (parse_budget(optarg, &s.budget_pct) < 0)
                return CPS_EXIT_USAGE;
            break;
        case OPT_TRAIN_FRACTION:
            if (parse_double_arg("--train-fraction", optarg, 0, 1, &s.train_fraction) < 0)
                return CPS_EXIT_USAGE;
            if (!(s.train_fraction > 0.0 && s.train_fraction < 1.0)) {
                fprintf(stderr, "cpscale tune: --train-fraction: must be strictly between 0 "
                        "and 1\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_CANDIDATES:
            if (parse_double_arg("--candidates", optarg, 1, MAX_CANDIDATES, &v) < 0)
                return CPS_EXIT_USAGE;
            s.n_candidates = (size_t)v;
            break;
        case OPT_SEED:
            if (parse_double_arg("--seed", optarg, 0, TWO_POW_53, &v) < 0)
                return CPS_EXIT_USAGE;
            s.seed = (uint64_t)v;
            break;
        case OPT_JOBS:
            if (parse_double_arg("--jobs", optarg, 1, CPS_POOL_MAX_JOBS, &v) < 0)
                return CPS_EXIT_USAGE;
            s.jobs = (int)v;
            break;
        case OPT_MIN:
            if (parse_double_arg("--min-replicas", optarg, 0, 1000000, &v) < 0)
                return CPS_EXIT_USAGE;
            s.min_replicas = (int32_t)v;
            break;
        case OPT_MAX:
            if (parse_double_arg("--max-replicas", optarg, 1, 1000000, &v) < 0)
                return CPS_EXIT_USAGE;
            s.max_replicas = (int32_t)v;
            break;
        case OPT_SHARD:
            if (parse_shard(optarg, &s.shard, &s.shards) < 0)
                return CPS_EXIT_USAGE;
            sharded = 1;
            break;
        case OPT_MERGE: merge = 1; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_JSON: json = 1; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_HELP: tune_usage(stdout); return CPS_EXIT_OK;
        default:
            fprintf(stderr, "usage: cpscale tune TRACE.csv... [options] (see --help)\n");
            return CPS_EXIT_USAGE;
        }
    }
    if (merge) {
        if (sharded) {
            fprintf(stderr, "cpscale tune: --merge and --shard do not go together\n");
            return CPS_EXIT_USAGE;
        }
        return merge_main(argv + optind, argc - optind, json, output);
    }
    int n_traces = argc - optind;
    if (n_traces < 1 || n_traces > MAX_TRACES) {
        fprintf(stderr, "cpscale tune: give 1 to %d trace files (see --help)\n", MAX_TRACES);
        return CPS_EXIT_USAGE;
    }
    if (s.min_replicas > s.max_replicas) {
        fprintf(stderr, "cpscale tune: --min-replicas is above --max-replicas\n");
        return CPS_EXIT_USAGE;
    }
    struct cps_config *config = NULL;
    if (config_path) {
        config = cps_load_config_file(config_path);
        if (!config)
            return CPS_EXIT_USAGE;
    } else {
        config = calloc(1, sizeof *config);
        if (!config || cps_config_init_defaults(config) < 0) {
            cps_config_free(config);
            fprintf(stderr, "cpscale tune: out of memory\n");
            return CPS_EXIT_RUNTIME;
        }
    }
    int exit_code = CPS_EXIT_USAGE;
    json_t *shard_json = NULL;
    struct cps_err err;
    cps_err_clear(&err);
    s.world = config->sim;
    if (isfinite(scale))
        s.world.scale = scale;
    s.base = config->defaults;
    s.base.min_replicas = s.min_replicas;
    s.base.max_replicas = s.max_replicas;
    s.slo_ms = s.base.slo_latency_p95_ms;
    for (size_t j = 0; j < HPA_TARGETS; j++)
        s.hpa_targets[j] = HPA_TARGET_FIRST + HPA_TARGET_STEP * (double)j;
    struct cps_queue_model model = {s.world.routing, s.world.service_rate,
                                    s.world.base_latency_ms};
    s.safe_rps_per_pod = cps_queue_lambda_max(&model, s.slo_ms, 1);
    for (int i = 0; i < n_traces; i++) {
        struct tune_trace *t = &s.traces[s.n_traces];
        t->label = argv[optind + i];
        if (parse_trace_arg(t->label, &t->path, &t->scale) < 0) {
            fprintf(stderr, "cpscale tune: out of memory\n");
            exit_code = CPS_EXIT_RUNTIME;
            goto done;
        }
        s.n_traces++;
        if (cps_trace_runs_load(t->path, quiet ? NULL : stderr, &t->runs, &err) < 0) {
            char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
            cps_err_format(&err, msg, sizeof msg);
            fprintf(stderr, "%s\n", msg);
            exit_code = strstr(err.message, "out of memory") ? CPS_EXIT_RUNTIME : CPS_EXIT_USAGE;
            goto done;
        }
        t->split_s = (int64_t)floor((double)t->runs.seconds * s.train_fraction);
        if (t->split_s < MIN_PART_S || t->runs.seconds - t->split_s < MIN_PART_S) {
            fprintf(stderr, "%s: %lld s is too short to split at %g: each part needs at least "
                    "%d s\n",
                    t->path, (long long)t->runs.seconds, s.train_fraction, MIN_PART_S);
            goto done;
        }
    }
    s.candidates = calloc(s.n_candidates, sizeof *s.candidates);
    if (!s.candidates) {
        fprintf(stderr, "cpscale tune: out of memory\n");
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    cps_tune_candidates(&s.base, s.seed, s.n_candidates, s.candidates);
    compute_fingerprint(&s);
    s.progress = !quiet && isatty(STDERR_FILENO) ? stderr : NULL;
    /* a world the simulator refuses is a usage error, before any work */
    struct cps_sim_setup probe_setup;
    memset(&probe_setup, 0, sizeof probe_setup);
    probe_setup.world = s.world;
    probe_setup.slo_ms = s.slo_ms;
    probe_setup.min_replicas = s.min_replicas;
    probe_setup.max_replicas = s.max_replicas;
    probe_setup.target = &s.base;
    probe_setup.n_policies = 1;
    struct cps_sim *probe = cps_sim_new(&probe_setup, &err);
    if (!probe) {
        fprintf(stderr, "cpscale tune: %s\n", err.message);
        goto done;
    }
    cps_sim_free(probe);
    double started = cps_pool_now_s(), simulated = 0.0;
    shard_json = run_shard(&s, &simulated, &err);
    if (!shard_json) {
        fprintf(stderr, "cpscale tune: %s\n", err.message);
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    double elapsed = cps_pool_now_s() - started;
    json_object_set_new(shard_json, "elapsed_s", json_real(elapsed));
    if (!quiet)
        fprintf(stderr, "cpscale tune: %.4g simulated seconds in %.2f s on %d thread(s): %.4g "
                "simulated seconds/s\n",
                simulated, elapsed, s.jobs, elapsed > 0.0 ? simulated / elapsed : 0.0);
    if (sharded) {
        int to_stdout = output == NULL;
        FILE *out = to_stdout ? stdout : fopen(output, "w");
        int rc = out ? json_dumpf(shard_json, out, JSON_INDENT(1) | JSON_EXACT) : -1;
        if (rc == 0 && fputc('\n', out) == EOF)
            rc = -1;
        if (out && (to_stdout ? fflush(out) : fclose(out)) != 0)
            rc = -1;
        if (rc < 0) {
            fprintf(stderr, "cpscale tune: %s: cannot write the shard: %s\n",
                    output ? output : "stdout", strerror(errno));
            exit_code = CPS_EXIT_RUNTIME;
            goto done;
        }
        exit_code = CPS_EXIT_OK;
        goto done;
    }
    /* unsharded: the merge of this one shard, through the same path as --merge
     * (after a round trip through JSON text, as a shard file would take) */
    char *text = json_dumps(shard_json, JSON_EXACT);
    json_decref(shard_json);
    shard_json = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    struct merged m;
    const char *source = "tune";
    if (!shard_json || merge_shards(&shard_json, &source, 1, &m, &err) < 0) {
        fprintf(stderr, "cpscale tune: %s\n", shard_json ? err.message : "out of memory");
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    exit_code = report(&m, json, output, elapsed);
done:
    json_decref(shard_json);
    release_setup(&s);
    cps_config_free(config);
    return exit_code;
}
