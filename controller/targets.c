/*
 * The controller's target table: one runtime per config target, the hash
 * index "namespace/name" -> target used to match Prometheus series, the
 * adoption of learned state on reload, and the tick's query plan.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_schema.h"
#include "controller.h"
#include "promql.h"
#include "query_pick.h"

#define FIRST_INDEX_SLOTS 16
#define FIRST_PLAN_CAPACITY 8
#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL


/* FNV-1a over "namespace/name". */
static uint64_t hash_key(const char *namespace, const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = namespace; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* The target with this namespace and name in `index`, or -1. */
static long index_find(const struct cps_target_index *index, const char *namespace, const char *name)
{
    if (!namespace || !name || index->n_slots == 0)
        return -1;
    uint64_t h = hash_key(namespace, name);
    size_t mask = index->n_slots - 1;
    size_t namespace_len = strlen(namespace);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct cps_target_slot *slot = &index->slots[i];
        if (slot->index < 0)
            return -1;
        if (slot->hash != (uint32_t)h)
            continue;
        const char *key = index->keys + slot->key_at;
        if (strcmp(key, namespace) == 0 && strcmp(key + namespace_len + 1, name) == 0)
            return slot->index;
    }
}

/* The target with this namespace and name, or -1. Called for every
 * series of every answer (40,000 a tick at 10,000 targets). */
long cps_targets_find(const struct cps_controller *ctl, const char *namespace, const char *name)
{
    return index_find(&ctl->target_index, namespace, name);
}

/* Build the index of `targets` (load factor <= 1/2) and its key pool into
 * *out, touching nothing else, so that a reload can make it before it
 * commits to the new table; -1 (and nothing allocated) when out of memory
 * or too large for the slots' 32-bit fields. The first target wins a
 * duplicate namespace/name (two kinds with one name), as label matching
 * cannot tell them apart. */
static int index_build(const struct cps_target_runtime *targets, size_t n_targets,
                       struct cps_target_index *out)
{
    size_t slots = FIRST_INDEX_SLOTS, pool_len = 0;
    while (slots < 2 * n_targets + 2)
        slots *= 2;
    for (size_t t = 0; t < n_targets; t++)
        pool_len += strlen(targets[t].target->namespace) + strlen(targets[t].target->name) + 2;
    if (pool_len > UINT32_MAX || n_targets > INT32_MAX)
        return -1;
    struct cps_target_slot *table = malloc(slots * sizeof *table);
    char *pool = malloc(pool_len ? pool_len : 1);
    if (!table || !pool) {
        free(table);
        free(pool);
        return -1;
    }
    for (size_t i = 0; i < slots; i++)
        table[i] = (struct cps_target_slot){0, -1, 0};
    *out = (struct cps_target_index){table, slots, pool};
    size_t used = 0;
    for (size_t t = 0; t < n_targets; t++) {
        const struct cps_target *target = targets[t].target;
        if (index_find(out, target->namespace, target->name) >= 0)
            continue;
        uint64_t h = hash_key(target->namespace, target->name);
        size_t i = h & (slots - 1);
        while (table[i].index >= 0)
            i = (i + 1) & (slots - 1);
        size_t namespace_len = strlen(target->namespace) + 1, name_len = strlen(target->name) + 1;
        memcpy(pool + used, target->namespace, namespace_len);
        memcpy(pool + used + namespace_len, target->name, name_len);
        table[i] = (struct cps_target_slot){(uint32_t)h, (int32_t)t, (uint32_t)used};
        used += namespace_len + name_len;
    }
    return 0;
}

/* Make `index` the controller's, freeing the one it replaces. */
static void index_install(struct cps_controller *ctl, const struct cps_target_index *index)
{
    free(ctl->target_index.slots);
    free(ctl->target_index.keys);
    ctl->target_index = *index;
}

/* ---- targets: build from config, keep learned state across reloads ---- */

void cps_target_note_error(struct cps_target_runtime *rt, const char *format, ...)
{
    if (rt->read_error)
        return;
    char text[CPS_TARGET_ERROR_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    rt->read_error = strdup(text);
}

const char *cps_target_error(const struct cps_target_runtime *rt)
{
    return rt->read_error ? rt->read_error : "";
}

static void target_runtime_release(struct cps_target_runtime *rt)
{
    cps_history_free(rt->history);
    free(rt->policy);
    free(rt->patch);
    free(rt->events);
    free(rt->read_error);
    free(rt->failures);
    memset(rt, 0, sizeof *rt);
}

/* Set up a runtime for a config target: paths, history sized for its
 * behavior windows, fresh policy state. */
static int target_runtime_init(struct cps_target_runtime *rt, const struct cps_target *target,
                               int64_t interval_ms)
{
    memset(rt, 0, sizeof *rt);
    rt->informer_index = -1;
    rt->target = target;
    char resource[CPS_KUBE_RESOURCE_MAX];
    if (cps_kube_resource_of_kind(target->kind, resource, sizeof resource) != 0)
        goto fail;
    size_t recs, events;
    cps_history_capacity_for(&target->behavior, interval_ms, &recs, &events);
    rt->history = cps_history_new(recs, events);
    rt->policy = malloc(sizeof *rt->policy);
    if (!rt->history || !rt->policy)
        goto fail;
    cps_policy_state_init(rt->policy);
    return 0;
fail:
    target_runtime_release(rt);
    return -1;
}

const char *cps_target_key(const struct cps_target_runtime *rt, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", rt->target->namespace, rt->target->name);
    return out;
}

void cps_targets_scale_resource(const struct cps_target_runtime *rt, char *out, size_t cap)
{
    if (cap < sizeof "/scale" ||
        cps_kube_resource_of_kind(rt->target->kind, out, cap - (sizeof "/scale" - 1)) != 0) {
        if (cap > 0)
            out[0] = '\0';
        return;
    }
    strcat(out, "/scale");
}

char *cps_targets_path(const struct cps_target_runtime *rt, enum cps_target_path which)
{
    const struct cps_target *t = rt->target;
    char resource[CPS_KUBE_RESOURCE_MAX];
    if (which != CPS_PATH_EVENTS &&
        cps_kube_resource_of_kind(t->kind, resource, sizeof resource) != 0)
        return NULL;
    switch (which) {
    case CPS_PATH_SCALE:
        return cps_kube_path(t->api_version, t->namespace, resource, t->name, "scale");
    case CPS_PATH_OBJECT:
        return cps_kube_path(t->api_version, t->namespace, resource, t->name, NULL);
    case CPS_PATH_EVENTS:
        return cps_kube_path("events.k8s.io/v1", t->namespace, "events", NULL, NULL);
    }
    return NULL;
}

/* FNV-1a over one field's bytes (cps_config_target_fold's mixer). */
static void fingerprint_fold(void *ctx, const void *bytes, size_t n)
{
    uint64_t *hash = ctx;
    for (size_t i = 0; i < n; i++)
        *hash = (*hash ^ ((const unsigned char *)bytes)[i]) * FNV_PRIME;
}

/* What a target's decisions depend on, hashed: a reload that changes it
 * clears the target's backoff (an operator fixing a target should not wait
 * out a Retry-After given to the old one). */
static uint64_t target_fingerprint(const struct cps_target *target)
{
    uint64_t hash = FNV_OFFSET;
    cps_config_target_fold(target, fingerprint_fold, &hash);
    return hash;
}

/* Drop every answer's series memo (the guesses are target indexes). */
static void forget_series(struct cps_controller *ctl)
{
    for (int m = 0; m < CPS_METRIC_QUERIED; m++) {
        free(ctl->series_memo[m].targets);
        ctl->series_memo[m] = (struct cps_series_memo){NULL, 0};
    }
}

/* Move what `prev` learned into `fresh`, the runtime made for `target`
 * (the same kind, namespace and name) by a reload from a config of
 * `prev_interval_ms` to one of `interval_ms`: history, policy state,
 * decision and SLO counters, scale failures and the open Event series.
 * The history moves only when the behavior windows size it as before
 * (else the fresh, empty one is kept); the backoff and failure streaks
 * move only when nothing the decisions depend on changed. Nothing is
 * allocated, so it cannot fail: `prev` is left holding fresh's unused
 * pieces, to be released with the old table. */
static void carry_learned_state(struct cps_target_runtime *fresh, struct cps_target_runtime *prev,
                                const struct cps_target *target, int64_t interval_ms,
                                int64_t prev_interval_ms)
{
    size_t recs, events, old_recs, old_events;
    cps_history_capacity_for(&target->behavior, interval_ms, &recs, &events);
    cps_history_capacity_for(&prev->target->behavior, prev_interval_ms, &old_recs, &old_events);
    if (recs == old_recs && events == old_events) {
        struct cps_history *swap = fresh->history;
        fresh->history = prev->history;
        prev->history = swap;
    }
    struct cps_policy_state *policy = fresh->policy;
    fresh->policy = prev->policy;
    prev->policy = policy;
    memcpy(fresh->decisions, prev->decisions, sizeof prev->decisions);
    fresh->failures = prev->failures;
    prev->failures = NULL;
    fresh->scale_ups = prev->scale_ups;
    fresh->scale_downs = prev->scale_downs;
    fresh->slo_requests = prev->slo_requests;
    fresh->slo_violating_requests = prev->slo_violating_requests;
    fresh->slo_budget_spent = prev->slo_budget_spent;
    fresh->slo_burn_rate = prev->slo_burn_rate;
    fresh->headroom_adjust = prev->headroom_adjust;
    fresh->forecast_tail = prev->forecast_tail;
    fresh->minute_factor = prev->minute_factor;
    fresh->latency_shape = prev->latency_shape;
    fresh->pod_safe_rps = prev->pod_safe_rps;
    fresh->startup_s = prev->startup_s;
    fresh->slo_counted = prev->slo_counted;
    if (target_fingerprint(prev->target) == target_fingerprint(target)) {
        fresh->backoff_until_ms = prev->backoff_until_ms;
        fresh->read_failures = prev->read_failures;
        fresh->write_failures = prev->write_failures;
    }
    fresh->events = prev->events; /* an open Event series goes on */
    prev->events = NULL;
}

/* Replace the targets with those of `config`. A target that stays (same
 * kind, namespace and name) keeps its history, learned capacity and
 * counters, so a reload does not forget what was learned.
 *
 * In two phases, so that a refused reload changes nothing: first every
 * allocation (the table, each runtime, the index) is made aside, and any
 * failure releases them and returns -1 with ctl as it was (its config and
 * learned state still in force); only then is the learned state moved
 * across and the tables swapped, which cannot fail. */
int cps_targets_adopt(struct cps_controller *ctl, const struct cps_config *config)
{
    size_t n = config->n_targets;
    struct cps_target_runtime *fresh = calloc(n ? n : 1, sizeof *fresh);
    if (!fresh)
        return -1;
    size_t made = 0;
    while (made < n && target_runtime_init(&fresh[made], &config->targets[made],
                                           config->interval_ms) == 0)
        made++;
    struct cps_target_index index;
    if (made < n || index_build(fresh, n, &index) != 0) {
        for (size_t i = 0; i < made; i++)
            target_runtime_release(&fresh[i]);
        free(fresh);
        return -1;
    }
    /* committed: nothing below fails */
    for (size_t i = 0; i < n; i++) {
        const struct cps_target *target = &config->targets[i];
        long old = cps_targets_find(ctl, target->namespace, target->name);
        if (old >= 0 && strcmp(ctl->targets[old].target->kind, target->kind) == 0 &&
            ctl->targets[old].history)
            carry_learned_state(&fresh[i], &ctl->targets[old], target, config->interval_ms,
                                ctl->config->interval_ms);
    }
    for (size_t i = 0; i < ctl->n_targets; i++)
        target_runtime_release(&ctl->targets[i]);
    free(ctl->targets);
    forget_series(ctl); /* its indexes are of the old table */
    ctl->targets = fresh;
    ctl->n_targets = n;
    index_install(ctl, &index);
    return 0;
}

void cps_targets_free_queries(struct cps_controller *ctl)
{
    for (size_t i = 0; i < ctl->n_queries; i++)
        free(ctl->queries[i].promql);
    free(ctl->queries);
    ctl->queries = NULL;
    ctl->n_queries = 0;
}

/* Build this tick's distinct queries: one per distinct cluster-wide text,
 * one per target for texts with $namespace/$deployment. Targets sharing a
 * text share its index, so queries per tick do not grow with targets. */
int cps_targets_plan_queries(struct cps_controller *ctl)
{
    cps_targets_free_queries(ctl);
    size_t cap = FIRST_PLAN_CAPACITY;
    ctl->queries = calloc(cap, sizeof *ctl->queries);
    if (!ctl->queries)
        return -1;
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        for (int m = 0; m < CPS_METRIC_QUERIED; m++)
            rt->query_index[m] = -1;
        for (int k = 0; k < CPS_CONTROLLER_N_QUERIED; k++) {
            enum cps_metric m = cps_controller_queried[k];
            const char *text = cps_query_pick(&rt->target->queries, &ctl->config->queries, m);
            if (!text || !*text)
                continue;
            char *promql = NULL;
            long owner = -1;
            if (cps_promql_has_placeholders(text)) {
                struct cps_err err = {0};
                promql = cps_promql_substitute(text, rt->target->namespace, rt->target->name, &err);
                if (!promql) {
                    cps_metrics_record_query_error(&ctl->metrics, m, CPS_PROM_ERROR_DECODE);
                    continue;
                }
                owner = (long)t;
            } else {
                /* shared texts are few: a linear scan of the plan is enough */
                size_t q = 0;
                while (q < ctl->n_queries &&
                       !(ctl->queries[q].target_index < 0 && ctl->queries[q].metric == m &&
                         strcmp(ctl->queries[q].promql, text) == 0))
                    q++;
                if (q < ctl->n_queries) {
                    rt->query_index[m] = (int)q;
                    continue;
                }
                promql = strdup(text);
                if (!promql)
                    return -1;
            }
            if (ctl->n_queries == cap) {
                struct cps_tick_query *grown = realloc(ctl->queries, 2 * cap * sizeof *grown);
                if (!grown) {
                    free(promql);
                    return -1;
                }
                ctl->queries = grown;
                cap *= 2;
            }
            struct cps_tick_query *query = &ctl->queries[ctl->n_queries];
            memset(query, 0, sizeof *query);
            query->promql = promql;
            query->metric = m;
            query->target_index = owner;
            query->controller = ctl;
            rt->query_index[m] = (int)ctl->n_queries++;
        }
    }
    return 0;
}

/* ---- answers: Prometheus series into the targets' observations ---- */

/* Put one sample's value into a target's observation; NaN, Inf, negative
 * values and answers evaluated too far from the controller's clock are
 * left missing (the decision then never scales down). A second series for
 * the same target makes the metric missing whatever either one holds: the
 * query did not aggregate to one series per target (per-pod series, say),
 * so one series' value is not the target's. */
static void store_sample(struct cps_target_runtime *rt, enum cps_metric metric, double value,
                         int64_t timestamp_ms, int64_t wall_now_ms, int64_t max_age_ms)
{
    unsigned bit = CPS_METRIC_BIT(metric);
    if (rt->observation.missing & bit)
        return; /* already ambiguous this tick: a third series must not revive it */
    if (rt->series_seen & bit) {
        rt->received &= ~bit;
        rt->observation.missing |= bit;
        return;
    }
    rt->series_seen |= bit;
    /* an instant sample's time is its evaluation time: one far from now is
     * an old answer (a cache, a replay) or a skewed clock, never fresh data */
    int64_t skew_ms = wall_now_ms - timestamp_ms;
    if (!isfinite(value) || value < 0 || skew_ms > max_age_ms || skew_ms < -max_age_ms)
        return;
    rt->received |= bit;
    switch (metric) {
    case CPS_METRIC_QPS:
        rt->observation.qps = value;
        break;
    case CPS_METRIC_P95:
        rt->observation.p95_ms = value;
        break;
    case CPS_METRIC_CPU:
        rt->observation.cpu_utilization = value;
        break;
    case CPS_METRIC_COST:
        rt->observation.cost_per_pod_hour = value;
        break;
    case CPS_METRIC_BUDGET_QPS:
        rt->observation.budget_qps = value;
        break;
    case CPS_METRIC_BUDGET_P95:
        rt->observation.budget_p95_ms = value;
        break;
    default:
        break;
    }
}

/* One sample of an answer, matched to its target, waiting for the whole
 * answer to decode. */
struct cps_answer_sample {
    long target;
    double value;
    int64_t timestamp_ms;
};

/* What the decoder's visitor needs to match a sample. */
struct answer_walk {
    struct cps_controller *ctl;
    const struct cps_tick_query *query;
    int query_index;
    size_t n;
    struct cps_series_memo *memo; /* a shared query's; NULL for a per-target one */
};

/* The decoder's guess at series k: the target it matched in the last
 * answer to this metric's shared query, or a per-target query's owner.
 * The decoder takes it only when the series' bytes are that target's. */
static int guess_series_cb(size_t k, const char **namespace, const char **name, void *user)
{
    const struct answer_walk *walk = user;
    long t = walk->query->target_index;
    if (t < 0)
        t = walk->memo && k < walk->memo->n ? walk->memo->targets[k] : -1;
    if (t < 0 || (size_t)t >= walk->ctl->n_targets)
        return -1;
    *namespace = walk->ctl->targets[t].target->namespace;
    *name = walk->ctl->targets[t].target->name;
    return 0;
}

/* Remember that series k of this metric's shared answer matched target t
 * (-1: none), sizing the memo to the answer's n series; a memo that
 * cannot grow is dropped (the guesses only save time). */
static void remember_series(struct cps_series_memo *memo, size_t k, size_t n, long t)
{
    if (memo->n < n) {
        int32_t *grown = realloc(memo->targets, n * sizeof *grown);
        if (!grown) {
            free(memo->targets);
            *memo = (struct cps_series_memo){NULL, 0};
            return;
        }
        for (size_t i = memo->n; i < n; i++)
            grown[i] = -1;
        memo->targets = grown;
        memo->n = n;
    }
    if (k < memo->n)
        memo->targets[k] = (int32_t)t;
}

/* The decoder's visitor: match one sample to its target, through the
 * memo when the decoder matched its guess, else through the index (no key
 * string is built), and keep it in ctl->answer_samples. */
static int match_sample_cb(const struct cps_prom_sample_ref *sample, size_t n, void *user)
{
    struct answer_walk *walk = user;
    struct cps_controller *ctl = walk->ctl;
    long t = walk->query->target_index;
    if (t < 0) {
        if (sample->guessed) {
            t = walk->memo->targets[sample->series];
        } else {
            t = cps_targets_find(ctl, sample->namespace, sample->name);
            remember_series(walk->memo, sample->series, n, t);
        }
        if (t < 0 || ctl->targets[t].query_index[walk->query->metric] != walk->query_index)
            return 0;
    } else if (n > 1 && sample->name && strcmp(sample->name, ctl->targets[t].target->name) != 0) {
        return 0; /* a per-target query may still return other series */
    }
    if (walk->n == ctl->answer_samples_cap) {
        size_t cap = ctl->answer_samples_cap ? 2 * ctl->answer_samples_cap : FIRST_PLAN_CAPACITY;
        struct cps_answer_sample *grown = realloc(ctl->answer_samples, cap * sizeof *grown);
        if (!grown)
            return -1;
        ctl->answer_samples = grown;
        ctl->answer_samples_cap = cap;
    }
    ctl->answer_samples[walk->n++] =
        (struct cps_answer_sample){t, sample->value, sample->timestamp_ms};
    return 0;
}

int cps_targets_take_answer(struct cps_controller *ctl, size_t query_index, const char *body,
                            size_t len, int64_t wall_now_ms, struct cps_err *err)
{
    const struct cps_tick_query *query = &ctl->queries[query_index];
    char source[64];
    snprintf(source, sizeof source, "prometheus: %s", cps_metric_query_key(query->metric));
    struct answer_walk walk = {ctl, query, (int)query_index, 0,
                               query->target_index < 0 ? &ctl->series_memo[query->metric] : NULL};
    if (cps_prom_decode_instant_guided(body, len, ctl->config->prometheus.namespace_label,
                                       ctl->config->prometheus.deployment_label,
                                       cps_prom_max_series(ctl->n_targets), source,
                                       guess_series_cb, match_sample_cb, &walk, err) != 0)
        return -1; /* a bad answer stores nothing */
    int64_t max_age_ms = cps_prom_max_answer_age_ms(ctl->config->interval_ms);
    for (size_t i = 0; i < walk.n; i++) {
        const struct cps_answer_sample *s = &ctl->answer_samples[i];
        store_sample(&ctl->targets[s->target], query->metric, s->value, s->timestamp_ms,
                     wall_now_ms, max_age_ms);
    }
    return 0;
}

void cps_targets_release_all(struct cps_controller *ctl)
{
    for (size_t t = 0; t < ctl->n_targets; t++)
        target_runtime_release(&ctl->targets[t]);
    free(ctl->targets);
    ctl->targets = NULL;
    ctl->n_targets = 0;
    free(ctl->target_index.slots);
    free(ctl->target_index.keys);
    ctl->target_index = (struct cps_target_index){NULL, 0, NULL};
    free(ctl->answer_samples);
    ctl->answer_samples = NULL;
    ctl->answer_samples_cap = 0;
    forget_series(ctl);
}
