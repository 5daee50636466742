/*
 * `cpscale run`: the controller's event loop, tick, reload and shutdown.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "config_file.h"
#include "controller.h"
#include "log.h"
#include "promql.h"

#define MS_PER_S 1000
#define DEFAULT_KUBE_TIMEOUT_MS 10000 /* one read or write of the API server */
#define KUBE_MAX_CONNECTIONS 8L      /* parallel connections per host */
#define HTTP_MAX_ACTIVE 32           /* transfers in curl at once; the rest queue */
#define BACKOFF_BASE_MS 1000         /* first retry after a 429/5xx */
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define DEFAULT_SHUTDOWN_GRACE_MS 5000
#define DEFAULT_WATCH_TIMEOUT_MS (5 * 60 * 1000) /* client-go reopens watches every 5-10 min */
#define LIVENESS_SLACK_MS 30000      /* /healthz tolerates this beyond 3 ticks */
#define FIRST_TICK_AFTER_ELECTION_S 1.0
#define FIRST_SYNC_WAIT_MS 5000      /* the first tick waits this long for the watch cache */
#define FIRST_SYNC_POLL_S 0.1

const double cps_tick_bucket_bounds[CPS_TICK_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1,    2.5,   5,    10,  30};

const char *cps_prom_metric_name(enum cps_prom_metric metric)
{
    static const char *const names[CPS_PROM_METRIC_COUNT] = {"qps", "p95_ms", "cpu_utilization",
                                                             "cost_per_pod_hour"};
    return metric < CPS_PROM_METRIC_COUNT ? names[metric] : "unknown";
}

static const unsigned metric_bits[CPS_PROM_METRIC_COUNT] = {CPS_METRIC_BIT(CPS_METRIC_QPS), CPS_METRIC_BIT(CPS_METRIC_P95),
                                                            CPS_METRIC_BIT(CPS_METRIC_CPU), CPS_METRIC_BIT(CPS_METRIC_COST)};

static void tick_finish(struct cps_controller *ctl);
static void shutdown_begin(struct cps_controller *ctl, const char *why);

/* ---- target index ------------------------------------------------------ */

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

/* The target with this namespace and name, or -1. */
static long find_target(const struct cps_controller *ctl, const char *namespace, const char *name)
{
    if (!namespace || !name || ctl->n_target_slots == 0)
        return -1;
    size_t mask = ctl->n_target_slots - 1;
    for (size_t i = hash_key(namespace, name) & mask;; i = (i + 1) & mask) {
        long index = ctl->target_slots[i];
        if (index < 0)
            return -1;
        const struct cps_target *t = &ctl->targets[index].target;
        if (strcmp(t->namespace, namespace) == 0 && strcmp(t->name, name) == 0)
            return index;
    }
}

/* Build the index (load factor <= 1/2). The first target wins a duplicate
 * namespace/name (two kinds with one name), as label matching cannot tell
 * them apart. */
static int index_targets(struct cps_controller *ctl)
{
    size_t slots = 16;
    while (slots < 2 * ctl->n_targets + 2)
        slots *= 2;
    long *table = malloc(slots * sizeof *table);
    if (!table)
        return -1;
    for (size_t i = 0; i < slots; i++)
        table[i] = -1;
    free(ctl->target_slots);
    ctl->target_slots = table;
    ctl->n_target_slots = slots;
    for (size_t t = 0; t < ctl->n_targets; t++) {
        const struct cps_target *target = &ctl->targets[t].target;
        if (find_target(ctl, target->namespace, target->name) >= 0)
            continue;
        size_t i = hash_key(target->namespace, target->name) & (slots - 1);
        while (table[i] >= 0)
            i = (i + 1) & (slots - 1);
        table[i] = (long)t;
    }
    return 0;
}

/* ---- targets: build from config, keep learned state across reloads ---- */

static void target_runtime_release(struct cps_target_runtime *rt)
{
    cps_target_release(&rt->target);
    free(rt->key);
    free(rt->scale_path);
    free(rt->object_path);
    free(rt->events_path);
    cps_history_free(rt->history);
    free(rt->policy);
    memset(rt, 0, sizeof *rt);
}

/* Set up a runtime for a config target: paths, history sized for its
 * behavior windows, fresh policy state. */
static int target_runtime_init(struct cps_target_runtime *rt, const struct cps_target *target,
                               int64_t interval_ms)
{
    memset(rt, 0, sizeof *rt);
    rt->informer_index = -1;
    if (cps_target_copy(&rt->target, target) != 0)
        return -1;
    size_t key_len = strlen(target->namespace) + strlen(target->name) + 2;
    rt->key = malloc(key_len);
    if (!rt->key)
        goto fail;
    snprintf(rt->key, key_len, "%s/%s", target->namespace, target->name);
    if (cps_kube_resource_of_kind(target->kind, rt->resource, sizeof rt->resource) != 0)
        goto fail;
    rt->scale_path =
        cps_kube_path(target->api_version, target->namespace, rt->resource, target->name, "scale");
    rt->object_path =
        cps_kube_path(target->api_version, target->namespace, rt->resource, target->name, NULL);
    rt->events_path = cps_kube_path("events.k8s.io/v1", target->namespace, "events", NULL, NULL);
    size_t recs, events;
    cps_history_capacity_for(&target->behavior, interval_ms, &recs, &events);
    rt->history = cps_history_new(recs, events);
    rt->policy = malloc(sizeof *rt->policy);
    if (!rt->scale_path || !rt->object_path || !rt->events_path || !rt->history || !rt->policy)
        goto fail;
    cps_policy_state_init(rt->policy);
    return 0;
fail:
    target_runtime_release(rt);
    return -1;
}

/* Replace the targets with those of `config`. A target that stays (same
 * kind, namespace and name) keeps its history, learned capacity and
 * counters, so a reload does not forget what was learned. */
static int adopt_targets(struct cps_controller *ctl, const struct cps_config *config)
{
    struct cps_target_runtime *fresh = calloc(config->n_targets ? config->n_targets : 1,
                                              sizeof *fresh);
    if (!fresh)
        return -1;
    for (size_t i = 0; i < config->n_targets; i++) {
        const struct cps_target *target = &config->targets[i];
        if (target_runtime_init(&fresh[i], target, config->interval_ms) != 0) {
            for (size_t j = 0; j < i; j++)
                target_runtime_release(&fresh[j]);
            free(fresh);
            return -1;
        }
        long old = find_target(ctl, target->namespace, target->name);
        if (old >= 0 && strcmp(ctl->targets[old].target.kind, target->kind) == 0 &&
            ctl->targets[old].history) {
            struct cps_target_runtime *prev = &ctl->targets[old];
            /* keep what was learned; the history is re-sized only when the
             * behavior windows changed (the new one then starts empty) */
            size_t recs, events;
            cps_history_capacity_for(&target->behavior, config->interval_ms, &recs, &events);
            size_t old_recs, old_events;
            cps_history_capacity_for(&prev->target.behavior, ctl->config->interval_ms, &old_recs,
                                     &old_events);
            if (recs == old_recs && events == old_events) {
                struct cps_history *swap = fresh[i].history;
                fresh[i].history = prev->history;
                prev->history = swap;
            }
            struct cps_policy_state *policy = fresh[i].policy;
            fresh[i].policy = prev->policy;
            prev->policy = policy;
            memcpy(fresh[i].decisions, prev->decisions, sizeof prev->decisions);
            memcpy(fresh[i].failures, prev->failures, sizeof prev->failures);
            fresh[i].scale_ups = prev->scale_ups;
            fresh[i].scale_downs = prev->scale_downs;
            fresh[i].backoff_until_ms = prev->backoff_until_ms;
            fresh[i].read_failures = prev->read_failures;
            fresh[i].write_failures = prev->write_failures;
        }
    }
    for (size_t i = 0; i < ctl->n_targets; i++)
        target_runtime_release(&ctl->targets[i]);
    free(ctl->targets);
    ctl->targets = fresh;
    ctl->n_targets = config->n_targets;
    return index_targets(ctl);
}

/* ---- the watch cache ----------------------------------------------------- */

#define INFORMER_MAX_NAMESPACES 8 /* beyond this, one cluster-wide watch */

static int is_plain_deployment(const struct cps_target *target)
{
    return strcmp(target->kind, "Deployment") == 0 && strcmp(target->api_version, "apps/v1") == 0;
}

/* informer: an object was listed or changed. */
static void cache_item_cb(const struct cps_kube_deployment *deployment, int deleted,
                          uint64_t stamp, void *user)
{
    struct cps_controller *ctl = user;
    long t = find_target(ctl, deployment->namespace, deployment->name);
    if (t < 0 || ctl->targets[t].informer_index < 0)
        return;
    struct cps_target_runtime *rt = &ctl->targets[t];
    rt->cached = *deployment;
    rt->cached_present = !deleted;
    if (stamp)
        rt->cached_stamp = stamp;
}

/* informer: a LIST is complete; what it did not contain is gone. */
static void cache_list_done_cb(const char *namespace, uint64_t stamp, void *user)
{
    struct cps_controller *ctl = user;
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        if (rt->informer_index < 0 || (namespace && strcmp(namespace, rt->target.namespace)))
            continue;
        if (rt->cached_stamp != stamp)
            rt->cached_present = 0;
    }
}

static void free_informers(struct cps_controller *ctl)
{
    for (size_t i = 0; i < ctl->n_informers; i++)
        cps_informer_free(ctl->informers[i]);
    free(ctl->informers);
    ctl->informers = NULL;
    ctl->n_informers = 0;
}

/* One LIST+WATCH per namespace that has Deployment targets (one for all
 * namespaces past INFORMER_MAX_NAMESPACES), started now; each target
 * learns which informer covers it. Rebuilt on every accepted reload. */
static int start_informers(struct cps_controller *ctl)
{
    free_informers(ctl);
    for (size_t t = 0; t < ctl->n_targets; t++)
        ctl->targets[t].informer_index = -1;
    if (!ctl->options.watch)
        return 0;
    const char *namespaces[INFORMER_MAX_NAMESPACES];
    size_t n = 0;
    int cluster_wide = 0;
    for (size_t t = 0; t < ctl->n_targets && !cluster_wide; t++) {
        if (!is_plain_deployment(&ctl->targets[t].target))
            continue;
        size_t i = 0;
        while (i < n && strcmp(namespaces[i], ctl->targets[t].target.namespace) != 0)
            i++;
        if (i == n) {
            if (n == INFORMER_MAX_NAMESPACES)
                cluster_wide = 1;
            else
                namespaces[n++] = ctl->targets[t].target.namespace;
        }
    }
    size_t count = cluster_wide ? 1 : n;
    if (count == 0)
        return 0;
    ctl->informers = calloc(count, sizeof *ctl->informers);
    if (!ctl->informers)
        return -1;
    struct cps_informer_callbacks callbacks = {cache_item_cb, cache_list_done_cb, ctl};
    for (size_t i = 0; i < count; i++) {
        ctl->informers[i] = cps_informer_new(ctl->loop, ctl->kube,
                                             cluster_wide ? NULL : namespaces[i],
                                             ctl->options.kube_timeout_ms,
                                             ctl->options.watch_timeout_ms, &callbacks);
        if (!ctl->informers[i])
            return -1;
        ctl->n_informers++;
    }
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        if (!is_plain_deployment(&rt->target))
            continue;
        for (size_t i = 0; i < count; i++)
            if (cluster_wide || strcmp(namespaces[i], rt->target.namespace) == 0)
                rt->informer_index = (int)i;
    }
    for (size_t i = 0; i < count; i++)
        cps_informer_start(ctl->informers[i]);
    return 0;
}

static int all_informers_synced(const struct cps_controller *ctl, int64_t now_ms)
{
    for (size_t i = 0; i < ctl->n_informers; i++)
        if (!cps_informer_synced(ctl->informers[i], now_ms))
            return 0;
    return 1;
}

/* Fill this tick's reads from the watch cache when it can be trusted.
 * 1 when it did (no GETs needed), 0 when the target must be read. */
static int read_from_cache(struct cps_controller *ctl, struct cps_target_runtime *rt,
                           int64_t now_ms)
{
    if (rt->informer_index < 0 ||
        !cps_informer_synced(ctl->informers[rt->informer_index], now_ms))
        return 0;
    rt->read_from_cache = 1;
    if (!rt->cached_present) {
        snprintf(rt->read_error, sizeof rt->read_error, "%s not found (watch cache)",
                 rt->target.kind);
        return 1;
    }
    /* the scale subresource shares the Deployment's resourceVersion */
    rt->scale.spec_replicas = rt->cached.spec_replicas;
    rt->scale.status_replicas = rt->cached.status_replicas;
    memcpy(rt->scale.resource_version, rt->cached.resource_version,
           sizeof rt->scale.resource_version);
    rt->object_ready = rt->cached.ready_replicas;
    rt->have_scale = rt->have_object = 1;
    return 1;
}

/* ---- config load and reload -------------------------------------------- */

/* Log a refused config with its file:line:col, and count it. */
static void log_config_error(const char *message, const struct cps_err *err)
{
    char text[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
    cps_err_format(err, text, sizeof text);
    cps_log_message(CPS_LOG_ERROR, message, text);
}

/* Load the config file again; an invalid one is refused and the old one
 * stays in force. Called between ticks only. */
static void reload_config(struct cps_controller *ctl, const char *why)
{
    struct stat st;
    if (stat(ctl->options.config_path, &st) == 0)
        ctl->config_stat = st;
    struct cps_err err = {0};
    struct cps_config *config = cps_load_config_file_err(ctl->options.config_path, &err);
    if (!config) {
        ctl->reloads_refused++;
        log_config_error("config refused; the previous config stays in force", &err);
        return;
    }
    struct cps_prom *prom = cps_prom_new(ctl->http, &config->prometheus, &err);
    if (!prom || adopt_targets(ctl, config) != 0) {
        cps_prom_free(prom);
        cps_config_free(config);
        ctl->reloads_refused++;
        log_config_error("config refused; the previous config stays in force", &err);
        return;
    }
    cps_prom_free(ctl->prom);
    ctl->prom = prom;
    if (start_informers(ctl) != 0)
        cps_log_message(CPS_LOG_ERROR, "cannot start the watches; reading with GETs", NULL);
    if (strcmp(config->listen, ctl->config->listen) != 0 ||
        config->leader_election.enabled != ctl->config->leader_election.enabled)
        cps_log_message(CPS_LOG_WARN,
                        "listen and leader_election changes take effect on restart", NULL);
    if (config->interval_ms != ctl->config->interval_ms) {
        ev_timer_stop(ctl->loop, &ctl->tick_timer);
        ev_timer_set(&ctl->tick_timer, (double)config->interval_ms / MS_PER_S,
                     (double)config->interval_ms / MS_PER_S);
        ev_timer_start(ctl->loop, &ctl->tick_timer);
    }
    cps_config_free(ctl->config);
    ctl->config = config;
    ctl->config_generation++;
    ctl->reloads_ok++;
    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_INFO, "config loaded");
    cps_log_str(&line, "file", ctl->options.config_path);
    cps_log_str(&line, "why", why);
    cps_log_int(&line, "generation", (long long)ctl->config_generation);
    cps_log_int(&line, "targets", (long long)ctl->n_targets);
    cps_log_end(&line);
}

/* Reload now, or after the tick in flight. */
static void request_reload(struct cps_controller *ctl, const char *why)
{
    if (ctl->tick_running) {
        ctl->reload_pending = 1;
        return;
    }
    reload_config(ctl, why);
}

/* 1 when the file behind the config path is no longer the one loaded (a
 * ConfigMap update swaps a symlink: the inode changes). */
static int config_file_changed(const struct cps_controller *ctl)
{
    struct stat st;
    if (stat(ctl->options.config_path, &st) != 0)
        return 0;
    return st.st_ino != ctl->config_stat.st_ino || st.st_dev != ctl->config_stat.st_dev ||
           st.st_size != ctl->config_stat.st_size ||
           st.st_mtim.tv_sec != ctl->config_stat.st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != ctl->config_stat.st_mtim.tv_nsec;
}

static void config_changed_cb(struct ev_loop *loop, ev_stat *watcher, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_controller *ctl = watcher->data;
    if (config_file_changed(ctl))
        request_reload(ctl, "file changed");
}

/* ---- retry discipline --------------------------------------------------- */

/* After a 429 or 5xx: wait base * 2^(n-1), capped, times a jitter in
 * [0.5, 1.5), and never less than Retry-After. `failures` counts the
 * consecutive failures of that kind of call (reads and writes apart, so a
 * successful read does not reset the backoff of a failing PATCH). */
static void back_off(struct cps_target_runtime *rt, int *failures, int64_t now_ms,
                     int64_t retry_after_ms)
{
    (*failures)++;
    int shift = *failures - 1 < 20 ? *failures - 1 : 20;
    int64_t delay = (int64_t)BACKOFF_BASE_MS << shift;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    double jitter = 0.5 + (double)rand() / ((double)RAND_MAX + 1.0);
    delay = (int64_t)((double)delay * jitter);
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    rt->backoff_until_ms = now_ms + delay;
}

static int is_retryable(long status)
{
    return status == 429 || status >= 500;
}

/* ---- fetch -------------------------------------------------------------- */

/* One fewer answer outstanding; the last one moves the tick on. */
static void tick_answer_arrived(struct cps_controller *ctl)
{
    if (ctl->tick_pending > 0)
        ctl->tick_pending--;
    if (ctl->tick_pending == 0)
        tick_finish(ctl);
}

/* Note a Kubernetes read failure for a target's log line. */
static void note_read_error(struct cps_target_runtime *rt, const char *what,
                            const struct cps_kube_answer *answer, const char *decode_error)
{
    if (rt->read_error[0])
        return;
    if (decode_error)
        snprintf(rt->read_error, sizeof rt->read_error, "%s: %.280s", what, decode_error);
    else if (answer->transport_error)
        snprintf(rt->read_error, sizeof rt->read_error, "%s: %.280s", what, answer->error);
    else {
        struct cps_kube_status status;
        cps_kube_decode_status(answer->body, answer->body_len, &status);
        snprintf(rt->read_error, sizeof rt->read_error, "%s: HTTP %ld %s", what, answer->status,
                 status.reason);
    }
}

/* The target a callback's user pointer refers to (targets are an array,
 * stable during a tick; reloads wait for the tick to end). */
static struct cps_target_runtime *runtime_of(struct cps_controller *ctl, void *user)
{
    return &ctl->targets[(size_t)user - 1];
}

static struct cps_controller *the_controller; /* the one controller of this process */

static void scale_read_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_controller *ctl = the_controller;
    struct cps_target_runtime *rt = runtime_of(ctl, user);
    rt->scale_request = NULL;
    struct cps_err err = {0};
    if (answer->status == 200 &&
        cps_kube_decode_scale(answer->body, answer->body_len, rt->key, &rt->scale, &err) == 0) {
        rt->have_scale = 1;
        rt->read_failures = 0;
    } else {
        char text[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8];
        if (answer->status == 200)
            cps_err_format(&err, text, sizeof text);
        note_read_error(rt, "GET scale", answer, answer->status == 200 ? text : NULL);
        if (is_retryable(answer->status))
            back_off(rt, &rt->read_failures, cps_monotonic_ms(), answer->retry_after_ms);
    }
    tick_answer_arrived(ctl);
}

static void object_read_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_controller *ctl = the_controller;
    struct cps_target_runtime *rt = runtime_of(ctl, user);
    rt->object_request = NULL;
    struct cps_err err = {0};
    struct cps_kube_deployment object;
    if (answer->status == 200 && cps_kube_decode_deployment(answer->body, answer->body_len,
                                                            rt->key, &object, &err) == 0) {
        rt->have_object = 1;
        rt->object_ready = object.ready_replicas;
    } else {
        char text[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8];
        if (answer->status == 200)
            cps_err_format(&err, text, sizeof text);
        note_read_error(rt, "GET object", answer, answer->status == 200 ? text : NULL);
        if (is_retryable(answer->status))
            back_off(rt, &rt->read_failures, cps_monotonic_ms(), answer->retry_after_ms);
    }
    tick_answer_arrived(ctl);
}

/* Put one sample's value into a target's observation; NaN, Inf, negative
 * and stale values are left missing (the decision then never scales down). */
static void store_sample(struct cps_controller *ctl, struct cps_target_runtime *rt,
                         enum cps_prom_metric metric, const struct cps_prom_sample *sample,
                         int64_t wall_now_ms)
{
    unsigned bit = metric_bits[metric];
    if (rt->received & bit) {
        /* two series for one target: ambiguous, so missing */
        rt->received &= ~bit;
        rt->observation.missing |= bit;
        return;
    }
    int64_t staleness = ctl->config->prometheus.max_staleness_ms;
    if (!isfinite(sample->value) || sample->value < 0 ||
        (staleness > 0 && wall_now_ms - sample->timestamp_ms > staleness))
        return;
    rt->received |= bit;
    switch (metric) {
    case CPS_PROM_METRIC_QPS:
        rt->observation.qps = sample->value;
        break;
    case CPS_PROM_METRIC_P95:
        rt->observation.p95_ms = sample->value;
        break;
    case CPS_PROM_METRIC_CPU:
        rt->observation.cpu_utilization = sample->value;
        break;
    case CPS_PROM_METRIC_COST:
        rt->observation.cost_per_pod_hour = sample->value;
        break;
    default:
        break;
    }
}

static void query_done_cb(enum cps_prom_error error, const struct cps_prom_result *result,
                          const char *message, void *user)
{
    struct cps_tick_query *query = user;
    struct cps_controller *ctl = query->controller;
    query->request = NULL;
    if (error != CPS_PROM_OK) {
        ctl->query_errors[query->metric][error]++;
        struct cps_log_line line;
        cps_log_begin(&line, CPS_LOG_WARN, "query failed");
        cps_log_str(&line, "metric", cps_prom_metric_name(query->metric));
        cps_log_str(&line, "error", message);
        cps_log_end(&line);
        tick_answer_arrived(ctl);
        return;
    }
    int64_t wall_now = cps_wall_ms();
    size_t query_index = (size_t)(query - ctl->queries);
    for (size_t i = 0; i < result->n_samples; i++) {
        const struct cps_prom_sample *sample = &result->samples[i];
        long t = query->target_index;
        if (t < 0) {
            t = find_target(ctl, sample->namespace, sample->name);
            if (t < 0 || ctl->targets[t].query_index[query->metric] != (int)query_index)
                continue;
        } else if (result->n_samples > 1 && sample->name &&
                   strcmp(sample->name, ctl->targets[t].target.name) != 0) {
            continue; /* a per-target query may still return other series */
        }
        store_sample(ctl, &ctl->targets[t], query->metric, sample, wall_now);
    }
    tick_answer_arrived(ctl);
}

/* The query text a target uses for a metric (its own or the cluster's). */
static const char *query_text(const struct cps_controller *ctl, const struct cps_target *target,
                              enum cps_prom_metric metric)
{
    const struct cps_queries *own = &target->queries, *all = &ctl->config->queries;
    switch (metric) {
    case CPS_PROM_METRIC_QPS:
        return own->qps ? own->qps : all->qps;
    case CPS_PROM_METRIC_P95:
        return own->p95_ms ? own->p95_ms : all->p95_ms;
    case CPS_PROM_METRIC_CPU:
        return own->cpu_utilization ? own->cpu_utilization : all->cpu_utilization;
    case CPS_PROM_METRIC_COST:
        return own->cost_per_pod_hour ? own->cost_per_pod_hour : all->cost_per_pod_hour;
    default:
        return NULL;
    }
}

static void free_queries(struct cps_controller *ctl)
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
static int plan_queries(struct cps_controller *ctl)
{
    free_queries(ctl);
    size_t cap = 8;
    ctl->queries = calloc(cap, sizeof *ctl->queries);
    if (!ctl->queries)
        return -1;
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        for (int m = 0; m < CPS_PROM_METRIC_COUNT; m++) {
            rt->query_index[m] = -1;
            const char *text = query_text(ctl, &rt->target, (enum cps_prom_metric)m);
            if (!text || !*text)
                continue;
            char *promql = NULL;
            long owner = -1;
            if (cps_promql_has_placeholders(text)) {
                struct cps_err err = {0};
                promql = cps_promql_substitute(text, rt->target.namespace, rt->target.name, &err);
                if (!promql) {
                    ctl->query_errors[m][CPS_PROM_ERROR_DECODE]++;
                    continue;
                }
                owner = (long)t;
            } else {
                /* shared texts are few: a linear scan of the plan is enough */
                size_t q = 0;
                while (q < ctl->n_queries &&
                       !(ctl->queries[q].target_index < 0 && (int)ctl->queries[q].metric == m &&
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
            query->metric = (enum cps_prom_metric)m;
            query->target_index = owner;
            query->controller = ctl;
            rt->query_index[m] = (int)ctl->n_queries++;
        }
    }
    return 0;
}

/* libev: the tick. Skipped (and counted) while the previous one runs. */
static void tick_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_controller *ctl = timer->data;
    int64_t now = cps_monotonic_ms();
    if (ctl->server)
        cps_server_heartbeat(ctl->server, now);
    if (ctl->shutting_down)
        return;
    if (ctl->ticks == 0 && !ctl->tick_running && now - ctl->started_ms < FIRST_SYNC_WAIT_MS &&
        !all_informers_synced(ctl, now)) {
        /* the first tick reads from the cache rather than sending two GETs
         * per target while the first LIST is still on its way */
        ev_timer_stop(ctl->loop, &ctl->sync_timer);
        ev_timer_set(&ctl->sync_timer, FIRST_SYNC_POLL_S, 0.0);
        ev_timer_start(ctl->loop, &ctl->sync_timer);
        return;
    }
    if (ctl->tick_running) {
        ctl->ticks_skipped++;
        cps_log_message(CPS_LOG_WARN, "tick skipped: the previous tick is still running", NULL);
        return;
    }
    if (config_file_changed(ctl))
        reload_config(ctl, "file changed");
    ctl->tick_running = 1;
    ctl->tick_pending = 1; /* held until every request has been sent */
    ctl->tick_started_ms = now;
    ctl->tick_now_ms = now + ctl->wall_offset_ms;
    cps_kube_refresh_token(ctl->kube, now);
    cps_prom_refresh_token(ctl->prom);
    ctl->targets_from_cache = 0;
    if (plan_queries(ctl) != 0)
        cps_log_message(CPS_LOG_ERROR, "out of memory planning queries", NULL);
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        rt->have_scale = rt->have_object = 0;
        rt->decided = 0;
        rt->action = CPS_ACTION_NONE;
        rt->read_error[0] = '\0';
        memset(&rt->observation, 0, sizeof rt->observation);
        rt->received = 0;
        rt->read_from_cache = 0;
        if (now < rt->backoff_until_ms) {
            rt->action = CPS_ACTION_BACKING_OFF;
            continue;
        }
        if (read_from_cache(ctl, rt, now)) {
            ctl->targets_from_cache++;
            continue;
        }
        void *user = (void *)(t + 1);
        if (cps_kube_request(ctl->kube, "get", "deployments/scale", "GET", rt->scale_path, NULL,
                             NULL, ctl->options.kube_timeout_ms, scale_read_cb, user,
                             &rt->scale_request) == 0)
            ctl->tick_pending++;
        char resource[80];
        snprintf(resource, sizeof resource, "%s", rt->resource);
        if (cps_kube_request(ctl->kube, "get", resource, "GET", rt->object_path, NULL, NULL,
                             ctl->options.kube_timeout_ms, object_read_cb, user, &rt->object_request) == 0)
            ctl->tick_pending++;
    }
    for (size_t q = 0; q < ctl->n_queries; q++) {
        struct cps_tick_query *query = &ctl->queries[q];
        char source[64];
        snprintf(source, sizeof source, "prometheus: %s", cps_prom_metric_name(query->metric));
        if (cps_prom_query(ctl->prom, query->promql, source, query_done_cb, query,
                           &query->request) == 0)
            ctl->tick_pending++;
        else
            ctl->query_errors[query->metric][CPS_PROM_ERROR_TRANSPORT]++;
    }
    tick_answer_arrived(ctl); /* drop the hold */
}

/* ---- decide and act ----------------------------------------------------- */

static void event_posted_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_controller *ctl = the_controller;
    struct cps_target_runtime *rt = runtime_of(ctl, user);
    rt->event_request = NULL;
    if (answer->status != 201 && answer->status != 200) {
        struct cps_log_line line;
        cps_log_begin(&line, CPS_LOG_WARN, "could not post the event");
        cps_log_str(&line, "target", rt->key);
        cps_log_int(&line, "code", answer->status);
        if (answer->error)
            cps_log_str(&line, "error", answer->error);
        cps_log_end(&line);
    }
    tick_answer_arrived(ctl);
}

/* Post an events.k8s.io/v1 Event about a rescale (best effort). */
static void post_event(struct cps_controller *ctl, size_t index, int success, int32_t from,
                       int32_t to, const char *why)
{
    struct cps_target_runtime *rt = &ctl->targets[index];
    char note[512];
    snprintf(note, sizeof note, "%d\xe2\x86\x92%d: %s", from, to, why);
    struct cps_kube_event event = {
        .namespace = rt->target.namespace,
        .regarding_kind = rt->target.kind,
        .regarding_api_version = rt->target.api_version,
        .regarding_name = rt->target.name,
        .type = success ? "Normal" : "Warning",
        .reason = success ? "SuccessfulRescale" : "FailedRescale",
        .action = "Scale",
        .note = note,
        .reporting_controller = "cpscale.io/controller",
        .reporting_instance = ctl->identity,
        .event_time_us = cps_wall_ms() * 1000,
    };
    char *body = cps_kube_encode_event(&event);
    if (!body)
        return;
    if (cps_kube_request(ctl->kube, "create", "events", "POST", rt->events_path,
                         "application/json", body, ctl->options.kube_timeout_ms, event_posted_cb,
                         (void *)(index + 1), &rt->event_request) == 0)
        ctl->tick_pending++;
    free(body);
}

/* Count a failed PATCH under its HTTP code (0: transport). */
static void count_failure(struct cps_target_runtime *rt, long code)
{
    for (int i = 0; i < CPS_SCALE_FAILURE_CODES; i++) {
        if (rt->failures[i].count == 0 || rt->failures[i].code == code) {
            rt->failures[i].code = code;
            rt->failures[i].count++;
            return;
        }
    }
}

static void patch_done_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_controller *ctl = the_controller;
    size_t index = (size_t)user - 1;
    struct cps_target_runtime *rt = &ctl->targets[index];
    rt->patch_request = NULL;
    int32_t from = rt->patched_from, to = rt->decision.desired;
    const char *reason = cps_reason_name(rt->decision.reason);
    if (answer->status == 200) {
        rt->action = CPS_ACTION_PATCHED;
        rt->write_failures = 0;
        /* as HPA does: the event enters the history once it has happened */
        cps_history_add_scale_event(rt->history, ctl->tick_now_ms, to - from);
        if (to > from)
            rt->scale_ups++;
        else
            rt->scale_downs++;
        ctl->scale_events_total++;
        post_event(ctl, index, 1, from, to, reason);
    } else if (answer->status == 409) {
        rt->action = CPS_ACTION_CONFLICT; /* changed under us: read again next tick */
        count_failure(rt, 409);
    } else {
        rt->action = CPS_ACTION_FAILED;
        count_failure(rt, answer->status);
        note_read_error(rt, "PATCH scale", answer, NULL);
        if (is_retryable(answer->status) || answer->transport_error)
            back_off(rt, &rt->write_failures, cps_monotonic_ms(), answer->retry_after_ms);
        if (answer->status != 429) {
            char why[400];
            snprintf(why, sizeof why, "%s (failed: %s)", reason, rt->read_error);
            post_event(ctl, index, 0, from, to, why);
        }
    }
    tick_answer_arrived(ctl);
}

/* Decide for one target from what was read, and PATCH when the decision
 * differs from the current count, this replica leads (checked right
 * now, not at the start of the tick), and it is not a dry run. */
static void decide_and_act(struct cps_controller *ctl, size_t index)
{
    struct cps_target_runtime *rt = &ctl->targets[index];
    if (rt->action == CPS_ACTION_BACKING_OFF)
        return;
    if (!rt->have_scale) {
        rt->action = CPS_ACTION_NO_READ; /* no current count: nothing safe to do */
        return;
    }
    struct cps_observation *obs = &rt->observation;
    obs->replicas = rt->scale.spec_replicas;
    obs->ready_replicas = rt->have_object ? rt->object_ready : 0;
    unsigned missing = 0;
    if (!rt->have_object)
        missing |= CPS_METRIC_BIT(CPS_METRIC_READY);
    for (int m = 0; m < CPS_PROM_METRIC_COUNT; m++)
        if (!(rt->received & metric_bits[m]))
            missing |= metric_bits[m];
    if (missing & CPS_METRIC_BIT(CPS_METRIC_COST)) {
        /* no price from the cost query: the configured one (not missing) */
        obs->cost_per_pod_hour = rt->target.cost_pod_hour_usd;
        missing &= ~CPS_METRIC_BIT(CPS_METRIC_COST);
    }
    obs->missing = missing;
    cps_decide(&rt->target, obs, rt->history, rt->policy, ctl->tick_now_ms, NULL, &rt->decision);
    rt->decided = 1;
    rt->decisions[rt->decision.reason]++;
    double pods = obs->replicas > 0 ? obs->replicas : 0;
    rt->cost_per_hour = pods * obs->cost_per_pod_hour;
    rt->cost_per_million = (obs->missing & CPS_METRIC_BIT(CPS_METRIC_QPS)) || obs->qps <= 0
                               ? NAN
                               : rt->cost_per_hour / (obs->qps * 3600.0) * 1e6;

    int32_t desired = rt->decision.desired;
    if (desired == obs->replicas)
        return;
    if (rt->target.paused) {
        rt->action = CPS_ACTION_PAUSED;
        return;
    }
    if (ctl->options.dry_run) {
        rt->action = CPS_ACTION_DRY_RUN;
        return;
    }
    if (ctl->lease && !cps_lease_held(ctl->lease, cps_monotonic_ms())) {
        rt->action = CPS_ACTION_NOT_LEADER;
        return;
    }
    /* the rails already clamp; this is the last line of defence */
    if (desired < rt->target.min_replicas || desired > rt->target.max_replicas) {
        rt->action = CPS_ACTION_FAILED;
        return;
    }
    char *body = cps_kube_encode_scale_patch(rt->scale.resource_version, desired);
    if (!body)
        return;
    rt->patched_from = obs->replicas;
    char resource[80];
    snprintf(resource, sizeof resource, "%s/scale", rt->resource);
    if (cps_kube_request(ctl->kube, "patch", resource, "PATCH", rt->scale_path,
                         "application/merge-patch+json", body, ctl->options.kube_timeout_ms, patch_done_cb,
                         (void *)(index + 1), &rt->patch_request) == 0)
        ctl->tick_pending++;
    free(body);
}

static const char *action_name(enum cps_action action)
{
    static const char *const names[] = {"none",     "patched",      "dry_run",
                                        "not_leader", "paused",     "conflict",
                                        "failed",   "backing_off",  "no_read"};
    return names[action];
}

/* One log line per target per tick. */
static void log_target(const struct cps_controller *ctl, const struct cps_target_runtime *rt)
{
    (void)ctl;
    struct cps_log_line line;
    enum cps_log_level level = rt->action == CPS_ACTION_FAILED || rt->action == CPS_ACTION_NO_READ
                                   ? CPS_LOG_WARN
                                   : CPS_LOG_INFO;
    cps_log_begin(&line, level, "tick");
    cps_log_str(&line, "target", rt->key);
    if (rt->decided) {
        const struct cps_observation *obs = &rt->observation;
        cps_log_int(&line, "current", obs->replicas);
        cps_log_int(&line, "ready", obs->ready_replicas);
        cps_log_int(&line, "desired", rt->decision.desired);
        cps_log_str(&line, "reason", cps_reason_name(rt->decision.reason));
        cps_log_num(&line, "qps", (obs->missing & CPS_METRIC_BIT(CPS_METRIC_QPS)) ? NAN : obs->qps);
        cps_log_num(&line, "p95_ms", (obs->missing & CPS_METRIC_BIT(CPS_METRIC_P95)) ? NAN : obs->p95_ms);
        cps_log_num(&line, "cost_per_million", rt->cost_per_million);
        char detail[512];
        cps_decision_describe(&rt->decision, detail, sizeof detail);
        cps_log_str(&line, "detail", detail);
    }
    cps_log_str(&line, "action", action_name(rt->action));
    if (rt->read_error[0])
        cps_log_str(&line, "error", rt->read_error);
    cps_log_end(&line);
}

/* Publish /metrics. */
static void publish_metrics(struct cps_controller *ctl)
{
    if (!ctl->server)
        return;
    size_t len = 0;
    char *text = cps_metrics_render(ctl, &len);
    if (text)
        cps_server_publish_metrics(ctl->server, text, len);
}

static double process_cpu_seconds(void)
{
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    return (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
}

/* Everything read: decide and act for each target. Everything acted on:
 * report, and run what waited for the tick (reload, shutdown, --once). */
static void tick_finish(struct cps_controller *ctl)
{
    if (!ctl->tick_acting) {
        ctl->tick_acting = 1;
        ctl->tick_pending = 1;
        for (size_t t = 0; t < ctl->n_targets && !ctl->shutting_down; t++)
            decide_and_act(ctl, t);
        if (--ctl->tick_pending > 0)
            return; /* writes out: come back when they are answered */
    }
    ctl->tick_acting = 0;
    for (size_t t = 0; t < ctl->n_targets; t++)
        log_target(ctl, &ctl->targets[t]);
    int64_t now = cps_monotonic_ms();
    double seconds = (double)(now - ctl->tick_started_ms) / MS_PER_S;
    for (int b = 0; b < CPS_TICK_BUCKETS; b++)
        if (seconds <= cps_tick_bucket_bounds[b])
            ctl->tick_buckets[b]++;
    ctl->tick_seconds_sum += seconds;
    ctl->tick_count++;
    ctl->ticks++;
    ctl->tick_running = 0;
    double cpu = process_cpu_seconds();
    ctl->last_tick_cpu_s = cpu;
    publish_metrics(ctl);
    if (ctl->server)
        cps_server_set_ready(ctl->server, !ctl->shutting_down);
    if (ctl->reload_pending && !ctl->shutting_down) {
        ctl->reload_pending = 0;
        reload_config(ctl, "deferred until the tick ended");
    }
    if (ctl->shutting_down)
        shutdown_begin(ctl, NULL);
    else if (ctl->options.once)
        shutdown_begin(ctl, "--once: one tick done");
}

/* ---- leadership, signals and shutdown ---------------------------------- */

static void leadership_cb(int leading, void *user)
{
    struct cps_controller *ctl = user;
    ctl->leading = leading;
    publish_metrics(ctl);
}

static void released_cb(void *user)
{
    struct cps_controller *ctl = user;
    ev_break(ctl->loop, EVBREAK_ALL);
}

/* Cancel the tick's requests still out (shutdown grace is over). */
static void cancel_tick_requests(struct cps_controller *ctl)
{
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        cps_http_cancel(rt->scale_request);
        cps_http_cancel(rt->object_request);
        cps_http_cancel(rt->patch_request);
        cps_http_cancel(rt->event_request);
        rt->scale_request = rt->object_request = rt->patch_request = rt->event_request = NULL;
    }
    for (size_t q = 0; q < ctl->n_queries; q++) {
        cps_http_cancel(ctl->queries[q].request);
        ctl->queries[q].request = NULL;
    }
}

/* Stop ticking; once no tick is running, release the Lease and leave the
 * loop. Called again by tick_finish when a tick was in flight. */
static void shutdown_begin(struct cps_controller *ctl, const char *why)
{
    if (why) {
        struct cps_log_line line;
        cps_log_begin(&line, CPS_LOG_INFO, "shutting down");
        cps_log_str(&line, "why", why);
        cps_log_end(&line);
    }
    if (!ctl->shutting_down) {
        ctl->shutting_down = 1;
        ev_timer_stop(ctl->loop, &ctl->tick_timer);
        ev_timer_stop(ctl->loop, &ctl->sync_timer);
        ev_stat_stop(ctl->loop, &ctl->config_watcher);
        if (ctl->server)
            cps_server_set_ready(ctl->server, 0);
        if (ctl->tick_running) {
            ev_timer_set(&ctl->grace_timer, (double)ctl->options.shutdown_grace_ms / MS_PER_S,
                         0.0);
            ev_timer_start(ctl->loop, &ctl->grace_timer);
            return; /* tick_finish calls back */
        }
    } else if (ctl->tick_running) {
        return;
    }
    ev_timer_stop(ctl->loop, &ctl->grace_timer);
    if (ctl->lease)
        cps_lease_release(ctl->lease, released_cb, ctl);
    else
        ev_break(ctl->loop, EVBREAK_ALL);
}

static void grace_expired_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_controller *ctl = timer->data;
    cps_log_message(CPS_LOG_WARN, "shutdown grace over: cancelling the tick's requests", NULL);
    cancel_tick_requests(ctl);
    ctl->tick_running = 0;
    ctl->tick_acting = 0;
    ctl->tick_pending = 0;
    shutdown_begin(ctl, NULL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *watcher, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_controller *ctl = watcher->data;
    if (watcher->signum == SIGHUP) {
        request_reload(ctl, "SIGHUP");
        return;
    }
    shutdown_begin(ctl, watcher->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- command line ------------------------------------------------------- */

static void run_usage(FILE *out)
{
    fputs("NAME\n"
          "    cpscale run - the controller: keep each target at the cheapest replica\n"
          "    count that meets its SLO, cost target and budget\n"
          "\n"
          "SYNOPSIS\n"
          "    cpscale run --config FILE [--kubeconfig FILE [--context NAME]]\n"
          "                [--dry-run] [--once] [--leader-elect=true|false]\n"
          "                [--log-format text|json] [--log-level debug|info|warn|error]\n"
          "                [--listen ADDR:PORT] [--identity NAME] [--serviceaccount-dir DIR]\n"
          "\n"
          "DESCRIPTION\n"
          "    Every `interval` the controller sends, in parallel on one event loop, one\n"
          "    Prometheus instant query per distinct query. Deployments are read from a\n"
          "    LIST+WATCH cache (client-go's informer pattern, re-listing on 410 Gone);\n"
          "    while that cache is not in sync, and for other kinds, each target gets a\n"
          "    GET of its scale subresource and of the object. It decides with the same code as\n"
          "    `cpscale sim` and, only while holding the leader Lease, PATCHes the scale\n"
          "    subresource (merge patch carrying the resourceVersion) and posts an\n"
          "    events.k8s.io/v1 Event. A missing, stale, NaN or negative metric never\n"
          "    leads to a scale-down. One log line per target per tick; /metrics,\n"
          "    /healthz and /readyz are served on `listen`.\n"
          "\n"
          "    The config file is reloaded when it changes (a ConfigMap update swaps a\n"
          "    symlink) and on SIGHUP; an invalid file is refused, logged and counted,\n"
          "    and the previous config stays in force. SIGTERM lets the tick in flight\n"
          "    finish (at most --shutdown-grace), releases the Lease and exits 0.\n"
          "\n"
          "OPTIONS\n"
          "    --config FILE            the config (see config/default.yaml)\n"
          "    --kubeconfig FILE        use this kubeconfig's current context instead of\n"
          "                             the in-cluster service account\n"
          "    --context NAME           a kubeconfig context other than the current one\n"
          "    --serviceaccount-dir DIR token and ca.crt in-cluster (default\n"
          "                             " CPS_KUBE_DEFAULT_SA_DIR ")\n"
          "    --dry-run                decide, log and export metrics; never PATCH\n"
          "    --once                   run one tick, then exit\n"
          "    --leader-elect=BOOL      override leader_election.enabled; false runs a\n"
          "                             single replica without a Lease\n"
          "    --identity NAME          Lease holder identity (default $POD_NAME, then\n"
          "                             the host name)\n"
          "    --listen ADDR:PORT       override `listen` (port 0 picks a free port)\n"
          "    --log-format text|json   logfmt (default) or one JSON object per line\n"
          "    --log-level LEVEL        debug, info (default), warn or error\n"
          "    --shutdown-grace DURATION  how long SIGTERM waits for a tick (default 5s)\n"
          "    --kube-timeout DURATION    timeout of each Kubernetes request (default 10s)\n"
          "    --watch=BOOL             read Deployments from a LIST+WATCH cache (default\n"
          "                             true); false sends two GETs per target per tick\n"
          "    --watch-timeout DURATION   reopen each watch after this (default 5m)\n"
          "    -h, --help               this text\n"
          "\n"
          "EXIT STATUS\n"
          "    0 after SIGTERM/SIGINT or --once; 1 when it cannot start (Kubernetes\n"
          "    credentials, the listen address); 2 for a usage or config error.\n"
          "\n"
          "EXAMPLES\n"
          "    cpscale run --config /etc/cpscale/config.yaml\n"
          "    cpscale run --config config.yaml --kubeconfig ~/.kube/config --dry-run --once\n",
          out);
}

/* Parse "true"/"false" (and 1/0, yes/no). -1 when neither. */
static int parse_bool(const char *text)
{
    if (!strcasecmp(text, "true") || !strcmp(text, "1") || !strcasecmp(text, "yes"))
        return 1;
    if (!strcasecmp(text, "false") || !strcmp(text, "0") || !strcasecmp(text, "no"))
        return 0;
    return -1;
}

enum run_option_id {
    OPT_CONFIG = 1000,
    OPT_KUBECONFIG,
    OPT_CONTEXT,
    OPT_SA_DIR,
    OPT_DRY_RUN,
    OPT_ONCE,
    OPT_LEADER_ELECT,
    OPT_IDENTITY,
    OPT_LISTEN,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_GRACE,
    OPT_KUBE_TIMEOUT,
    OPT_WATCH,
    OPT_WATCH_TIMEOUT,
};

/* Fill options from argv; 0, or an exit code (usage errors print why). */
static int parse_run_args(int argc, char **argv, struct cps_run_options *options,
                          enum cps_log_format *format, int *level)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"context", required_argument, NULL, OPT_CONTEXT},
        {"serviceaccount-dir", required_argument, NULL, OPT_SA_DIR},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"once", no_argument, NULL, OPT_ONCE},
        {"leader-elect", optional_argument, NULL, OPT_LEADER_ELECT},
        {"identity", required_argument, NULL, OPT_IDENTITY},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"shutdown-grace", required_argument, NULL, OPT_GRACE},
        {"kube-timeout", required_argument, NULL, OPT_KUBE_TIMEOUT},
        {"watch", optional_argument, NULL, OPT_WATCH},
        {"watch-timeout", required_argument, NULL, OPT_WATCH_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    options->leader_elect = -1;
    options->shutdown_grace_ms = DEFAULT_SHUTDOWN_GRACE_MS;
    options->kube_timeout_ms = DEFAULT_KUBE_TIMEOUT_MS;
    options->watch = 1;
    options->watch_timeout_ms = DEFAULT_WATCH_TIMEOUT_MS;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG: options->config_path = optarg; break;
        case OPT_KUBECONFIG: options->kubeconfig = optarg; break;
        case OPT_CONTEXT: options->context = optarg; break;
        case OPT_SA_DIR: options->serviceaccount_dir = optarg; break;
        case OPT_DRY_RUN: options->dry_run = 1; break;
        case OPT_ONCE: options->once = 1; break;
        case OPT_IDENTITY: options->identity = optarg; break;
        case OPT_LISTEN: options->listen = optarg; break;
        case OPT_LEADER_ELECT:
            options->leader_elect = optarg ? parse_bool(optarg) : 1;
            if (options->leader_elect < 0) {
                fprintf(stderr, "cpscale run: --leader-elect takes true or false\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "text") == 0)
                *format = CPS_LOG_TEXT;
            else if (strcmp(optarg, "json") == 0)
                *format = CPS_LOG_JSON;
            else {
                fprintf(stderr, "cpscale run: --log-format takes text or json\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_LOG_LEVEL:
            *level = cps_log_level_parse(optarg);
            if (*level < 0) {
                fprintf(stderr, "cpscale run: --log-level takes debug, info, warn or error\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_GRACE:
            if (cps_duration_parse(optarg, &options->shutdown_grace_ms) != 0 ||
                options->shutdown_grace_ms < 0) {
                fprintf(stderr, "cpscale run: --shutdown-grace takes a duration (5s)\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_WATCH:
            options->watch = optarg ? parse_bool(optarg) : 1;
            if (options->watch < 0) {
                fprintf(stderr, "cpscale run: --watch takes true or false\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_WATCH_TIMEOUT:
            if (cps_duration_parse(optarg, &options->watch_timeout_ms) != 0 ||
                options->watch_timeout_ms < 1000) {
                fprintf(stderr, "cpscale run: --watch-timeout takes a duration of 1s or more\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case OPT_KUBE_TIMEOUT:
            if (cps_duration_parse(optarg, &options->kube_timeout_ms) != 0 ||
                options->kube_timeout_ms <= 0) {
                fprintf(stderr, "cpscale run: --kube-timeout takes a duration (10s)\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case 'h':
            run_usage(stdout);
            return CPS_EXIT_OK + 100; /* "done, exit 0" */
        default:
            fprintf(stderr, "cpscale run: unknown or incomplete option \"%s\" (see --help)\n",
                    argv[optind - 1]);
            return CPS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cpscale run: unexpected argument \"%s\"\n", argv[optind]);
        return CPS_EXIT_USAGE;
    }
    if (!options->config_path) {
        fprintf(stderr, "cpscale run: --config FILE is required (see --help)\n");
        return CPS_EXIT_USAGE;
    }
    return 0;
}

/* The Lease holder identity: --identity, $POD_NAME, or the host name. */
static void choose_identity(struct cps_controller *ctl)
{
    const char *pod = getenv("POD_NAME");
    if (ctl->options.identity)
        snprintf(ctl->identity, sizeof ctl->identity, "%s", ctl->options.identity);
    else if (pod && *pod)
        snprintf(ctl->identity, sizeof ctl->identity, "%s", pod);
    else if (gethostname(ctl->identity, sizeof ctl->identity) != 0 || !ctl->identity[0])
        snprintf(ctl->identity, sizeof ctl->identity, "cpscale-%ld", (long)getpid());
    ctl->identity[sizeof ctl->identity - 1] = '\0';
}

static void controller_free(struct cps_controller *ctl)
{
    free_informers(ctl);
    cps_lease_free(ctl->lease);
    if (ctl->http)
        cps_http_cancel_all(ctl->http);
    free_queries(ctl);
    for (size_t t = 0; t < ctl->n_targets; t++)
        target_runtime_release(&ctl->targets[t]);
    free(ctl->targets);
    free(ctl->target_slots);
    cps_prom_free(ctl->prom);
    cps_kube_free(ctl->kube);
    cps_http_free(ctl->http);
    cps_server_stop(ctl->server);
    cps_config_free(ctl->config);
}

int cps_cmd_run(int argc, char **argv)
{
    struct cps_controller ctl_storage;
    struct cps_controller *ctl = &ctl_storage;
    memset(ctl, 0, sizeof *ctl);
    enum cps_log_format format = CPS_LOG_TEXT;
    int level = CPS_LOG_INFO;
    int rc = parse_run_args(argc, argv, &ctl->options, &format, &level);
    if (rc == CPS_EXIT_OK + 100)
        return CPS_EXIT_OK;
    if (rc != 0)
        return rc;
    cps_log_setup(format, (enum cps_log_level)level, 2);
    the_controller = ctl;
    srand((unsigned)(cps_wall_ms() ^ (int64_t)getpid()));

    struct cps_err err = {0};
    ctl->config = cps_load_config_file_err(ctl->options.config_path, &err);
    if (!ctl->config) {
        log_config_error("cannot start: invalid config", &err);
        return CPS_EXIT_USAGE;
    }
    stat(ctl->options.config_path, &ctl->config_stat);
    ctl->config_generation = 1;
    choose_identity(ctl);
    ctl->wall_offset_ms = cps_wall_ms() - cps_monotonic_ms();
    ctl->started_ms = cps_monotonic_ms();
    ctl->loop = ev_default_loop(EVFLAG_AUTO);
    if (!ctl->loop || cps_http_global_init() != 0) {
        cps_log_message(CPS_LOG_ERROR, "cannot start the event loop or libcurl", NULL);
        cps_config_free(ctl->config);
        return CPS_EXIT_RUNTIME;
    }
    int exit_code = CPS_EXIT_RUNTIME;
    ctl->http = cps_http_new(ctl->loop, KUBE_MAX_CONNECTIONS, HTTP_MAX_ACTIVE);
    struct cps_kube_options kube_options = {ctl->options.kubeconfig, ctl->options.context,
                                            ctl->options.serviceaccount_dir};
    if (!ctl->http)
        goto done;
    ctl->kube = cps_kube_new(ctl->http, &kube_options, &err);
    if (!ctl->kube) {
        log_config_error("cannot start: Kubernetes credentials", &err);
        goto done;
    }
    ctl->prom = cps_prom_new(ctl->http, &ctl->config->prometheus, &err);
    if (!ctl->prom) {
        log_config_error("cannot start: Prometheus settings", &err);
        goto done;
    }
    if (adopt_targets(ctl, ctl->config) != 0 || start_informers(ctl) != 0) {
        cps_log_message(CPS_LOG_ERROR, "cannot start: out of memory", NULL);
        goto done;
    }
    const char *listen = ctl->options.listen ? ctl->options.listen : ctl->config->listen;
    int64_t liveness = 3 * ctl->config->interval_ms + LIVENESS_SLACK_MS;
    ctl->server = cps_server_start(listen, liveness, &err);
    if (!ctl->server) {
        log_config_error("cannot start: HTTP endpoint", &err);
        goto done;
    }
    cps_server_heartbeat(ctl->server, cps_monotonic_ms());

    int leader_elect = ctl->options.leader_elect >= 0 ? ctl->options.leader_elect
                                                      : ctl->config->leader_election.enabled;
    double first_tick_s = 0.0;
    if (leader_elect) {
        const struct cps_leader_election_config *le = &ctl->config->leader_election;
        struct cps_lease_options lease_options = {
            .namespace = le->lease_namespace,
            .name = le->lease_name,
            .identity = ctl->identity,
            .lease_duration_ms = le->lease_duration_ms,
            .renew_deadline_ms = le->renew_deadline_ms,
            .retry_period_ms = le->retry_period_ms,
            .request_timeout_ms = le->retry_period_ms < ctl->options.kube_timeout_ms
                                      ? le->retry_period_ms
                                      : ctl->options.kube_timeout_ms,
        };
        ctl->lease = cps_lease_new(ctl->loop, ctl->kube, &lease_options, leadership_cb, ctl);
        if (!ctl->lease)
            goto done;
        cps_lease_start(ctl->lease);
        /* give the first election attempt a moment before the first tick */
        first_tick_s = FIRST_TICK_AFTER_ELECTION_S;
    }
    double interval_s = (double)ctl->config->interval_ms / MS_PER_S;
    ev_timer_init(&ctl->tick_timer, tick_cb, first_tick_s, interval_s);
    ctl->tick_timer.data = ctl;
    ev_timer_start(ctl->loop, &ctl->tick_timer);
    ev_timer_init(&ctl->grace_timer, grace_expired_cb, 0.0, 0.0);
    ctl->grace_timer.data = ctl;
    ev_timer_init(&ctl->sync_timer, tick_cb, FIRST_SYNC_POLL_S, 0.0);
    ctl->sync_timer.data = ctl;
    ev_signal_init(&ctl->sigterm_watcher, signal_cb, SIGTERM);
    ev_signal_init(&ctl->sigint_watcher, signal_cb, SIGINT);
    ev_signal_init(&ctl->sighup_watcher, signal_cb, SIGHUP);
    ctl->sigterm_watcher.data = ctl->sigint_watcher.data = ctl->sighup_watcher.data = ctl;
    ev_signal_start(ctl->loop, &ctl->sigterm_watcher);
    ev_signal_start(ctl->loop, &ctl->sigint_watcher);
    ev_signal_start(ctl->loop, &ctl->sighup_watcher);
    ev_stat_init(&ctl->config_watcher, config_changed_cb, ctl->options.config_path, 1.0);
    ctl->config_watcher.data = ctl;
    ev_stat_start(ctl->loop, &ctl->config_watcher);
    signal(SIGPIPE, SIG_IGN);

    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_INFO, "started");
    cps_log_str(&line, "version", CPS_VERSION);
    cps_log_str(&line, "config", ctl->options.config_path);
    cps_log_int(&line, "targets", (long long)ctl->n_targets);
    cps_log_str(&line, "kubernetes", cps_kube_server(ctl->kube));
    cps_log_str(&line, "prometheus", ctl->config->prometheus.url);
    cps_log_int(&line, "listen_port", cps_server_port(ctl->server));
    cps_log_str(&line, "identity", ctl->identity);
    cps_log_str(&line, "leader_election", leader_elect ? "on" : "off");
    cps_log_str(&line, "dry_run", ctl->options.dry_run ? "true" : "false");
    cps_log_end(&line);
    publish_metrics(ctl);

    ev_run(ctl->loop, 0);
    exit_code = CPS_EXIT_OK;
    cps_log_message(CPS_LOG_INFO, "stopped", NULL);
done:
    ev_timer_stop(ctl->loop, &ctl->tick_timer);
    ev_timer_stop(ctl->loop, &ctl->sync_timer);
    ev_timer_stop(ctl->loop, &ctl->grace_timer);
    ev_signal_stop(ctl->loop, &ctl->sigterm_watcher);
    ev_signal_stop(ctl->loop, &ctl->sigint_watcher);
    ev_signal_stop(ctl->loop, &ctl->sighup_watcher);
    ev_stat_stop(ctl->loop, &ctl->config_watcher);
    controller_free(ctl);
    ev_loop_destroy(ctl->loop);
    cps_http_global_cleanup();
    return exit_code;
}
