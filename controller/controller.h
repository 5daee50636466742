/*
 * The live controller (`cpscale run`): the state its rooms share.
 * targets.c (the table, its index, adoption on reload, the query plan),
 * watch_cache.c (LIST+WATCH), tick.c (fetch, decide, act, report),
 * lifecycle.c (start, reload, signals, shutdown) and metrics.c (counters
 * and the /metrics text, which depends on nothing of the tick).
 *
 * One tick per `interval`: fetch every query and Kubernetes read in
 * parallel, decide for each target with the same pure code the simulator
 * runs, act (PATCH the scale subresource) only while holding the Lease
 * (with shards: the Lease of the target's shard),
 * then report (one log line per target, /metrics).
 */
#ifndef CPS_CONTROLLER_H
#define CPS_CONTROLLER_H

#include <ev.h>
#include <stdint.h>
#include <sys/stat.h>

#include "backfill.h"
#include "behavior.h"
#include "config.h"
#include "decide.h"
#include "http.h"
#include "informer.h"
#include "kube.h"
#include "kube_json.h"
#include "lease.h"
#include "metric.h"
#include "metrics.h"
#include "prom.h"
#include "server.h"
#include "shards.h"

#define CPS_SCALE_FAILURE_CODES 8 /* distinct HTTP codes counted per target */

/* What happened to the target's scale this tick (log field `action`). */
enum cps_action {
    CPS_ACTION_NONE = 0,     /* desired == current */
    CPS_ACTION_PATCHED,
    CPS_ACTION_DRY_RUN,
    CPS_ACTION_NOT_LEADER,
    CPS_ACTION_PAUSED,
    CPS_ACTION_CONFLICT,     /* 409: re-read next tick */
    CPS_ACTION_FAILED,
    CPS_ACTION_BACKING_OFF,  /* 429/5xx earlier: waiting */
    CPS_ACTION_NO_READ,      /* the scale could not be read: nothing to decide on */
    CPS_ACTION_STALE,        /* the PATCH waited in the queue past one interval: dropped */
};

struct cps_controller;

#define CPS_EVENT_KEY_MAX 400
#define CPS_EVENT_PATH_MAX 600

/* A target's open Event series and its write budget (events.c). */
struct cps_event_series {
    char key[CPS_EVENT_KEY_MAX];   /* message key of the open series; "": none */
    char name[CPS_KUBE_NAME_MAX];  /* its Event's metadata.name */
    int32_t count;                 /* occurrences seen */
    int32_t written, sending;      /* the count the server holds; the one being written */
    int64_t last_observed_ms, last_observed_us; /* monotonic; wall (for the Event) */
    int64_t written_ms;            /* monotonic, last successful write */
    double tokens;                 /* the write budget (token bucket) */
    int64_t tokens_ms;
    int tokens_started;
    void (*answered_cb)(struct cps_controller *ctl);
};

/* What the watch cache keeps of a target's Deployment (its names are the
 * target's: not kept twice). */
struct cps_cached_deployment {
    int32_t spec_replicas, status_replicas, ready_replicas;
    char resource_version[CPS_KUBE_RV_MAX];
    char uid[CPS_KUBE_UID_MAX];
};

struct cps_scale_failure_count {
    long code;
    uint64_t count;
};

/* What a target keeps to take a PATCH back when it meets a 409: allocated
 * on its first PATCH, so that targets never scaled do not carry it. */
struct cps_patch_memory {
    struct cps_policy_state policy_before; /* the state before the PATCHed decision */
    char sent_rv[CPS_KUBE_RV_MAX];         /* the resourceVersion the PATCH carried */
};

/* One per target, 720 bytes: 1,000 targets hold ~0.7 MB of them, so
 * flags are bytes and what only a PATCH needs is allocated with it. */
struct cps_target_runtime {
    const struct cps_target *target; /* the config entry (ctl->config's, not a copy) */
    struct cps_controller *controller; /* the request context of its callbacks */
    struct cps_history *history;
    struct cps_policy_state *policy;
    /* this tick */
    struct cps_http_request *scale_request, *object_request, *patch_request, *event_request;
    struct cps_kube_scale scale;
    int32_t object_ready;      /* status.readyReplicas of the object */
    uint8_t have_scale, have_object;
    uint8_t cached_present;
    uint8_t read_from_cache;   /* this tick */
    uint8_t decided;
    uint8_t standby_reset;     /* warm_standby off, shard not held: state forgotten, not read */
    uint8_t conflict_retried;  /* this tick: a 409 is re-read and decided once more */
    uint8_t slo_counted;       /* 1 once a decision counted toward the SLO budget */
    /* the watch cache (LIST+WATCH of Deployments) */
    int informer_index;        /* -1: read with GETs */
    struct cps_cached_deployment cached;
    uint64_t cached_stamp;
    struct cps_observation observation;
    unsigned received;                   /* CPS_METRIC_BIT()s set this tick */
    unsigned series_seen;                /* ... and those with a series, valid or not */
    int query_index[CPS_METRIC_QUERIED]; /* into the tick's query table; -1: none */
    struct cps_decision decision;
    int64_t decided_at_ms;     /* monotonic; a PATCH older than one interval is dropped */
    enum cps_action action;
    int32_t patched_from;
    char *read_error;          /* this tick's first read/write error; NULL: none */
    struct cps_patch_memory *patch; /* for a 409's decide_again; NULL until the first PATCH */
    uint32_t history_rec_start, history_rec_count; /* the rings before this tick's decide */
    struct cps_event_series *events; /* NULL until its first Event (events.c) */
    /* Retry discipline for 429/5xx (per target, with jitter and Retry-After) */
    int64_t backoff_until_ms;
    int read_failures, write_failures; /* consecutive, for the backoff */
    /* figures and counters for /metrics */
    double cost_per_hour, cost_per_million;
    uint32_t decisions[CPS_REASON_COUNT]; /* 32 bits: one a tick is 136 years at a 1 s interval */
    uint64_t scale_ups, scale_downs;
    struct cps_scale_failure_count *failures; /* CPS_SCALE_FAILURE_CODES of them, allocated
                                              * on the first failed PATCH; NULL: none */
    /* the SLO violation budget, from the decisions on the forecast */
    double slo_requests, slo_violating_requests; /* counters */
    double slo_budget_spent, slo_burn_rate, headroom_adjust; /* the last such decision's */
    double forecast_tail;                                    /* (its learned quantile offset) */
    double minute_factor;                /* (its spread's factor for the minute of the hour) */
    double latency_shape, pod_safe_rps;  /* (its latency line: queue shape, SLO-safe rate a pod) */
    double startup_s;                    /* (the start-up it led bursts by) */
    double startup_learned_s;            /* (the observed one, 0 when none) */
};

/* "namespace/name" of a target, for log lines and messages, written into
 * `out` (made when needed rather than kept per target). Returns `out`. */
#define CPS_TARGET_KEY_MAX (CPS_KUBE_NAME_MAX + CPS_KUBE_NAME_MAX + 2)
const char *cps_target_key(const struct cps_target_runtime *rt, char *out, size_t cap);

/* A slot of the target index: the key's hash (low 32 bits), the target
 * (-1: empty) and where its "namespace\0name\0" is in the index's key
 * pool. A lookup reads the slot and the pool, two cache lines, instead of
 * following the runtime, its config entry and two strings. */
struct cps_target_slot {
    uint32_t hash;
    int32_t index;
    uint32_t key_at;
};

/* An index "namespace/name" -> target: open-addressing slots over a pool
 * of "namespace\0name\0" keys (targets.c builds it aside, then installs it). */
struct cps_target_index {
    struct cps_target_slot *slots;
    size_t n_slots; /* a power of two; 0: empty */
    char *keys;
};

/* One distinct PromQL query of a tick. */
struct cps_tick_query {
    char *promql;
    enum cps_metric metric;
    long target_index; /* -1: cluster-wide (matched by labels); else that target */
    struct cps_http_request *request;
    struct cps_controller *controller;
};

struct cps_run_options {
    const char *config_path;
    const char *kubeconfig;
    const char *context;
    const char *serviceaccount_dir;
    const char *listen;      /* overrides config `listen` */
    const char *identity;
    int dry_run;
    int once;
    int leader_elect;        /* -1: as the config says */
    int64_t shutdown_grace_ms;
    int64_t kube_timeout_ms;
    int watch;               /* 1: LIST+WATCH Deployments instead of GETs */
    int64_t watch_timeout_ms;
    int64_t watch_progress_timeout_ms; /* a watch silent this long is closed, re-listed */
    int64_t backfill_ms;     /* history replayed into a fresh policy state; 0: none */
};

struct cps_controller {
    struct ev_loop *loop;
    struct cps_run_options options;
    struct cps_config *config;
    struct stat config_stat;
    uint64_t config_generation;
    int reload_pending;
    char identity[CPS_KUBE_IDENTITY_MAX];
    int64_t wall_offset_ms;  /* wall - monotonic at start: decide's clock */

    struct cps_http *http;
    struct cps_kube *kube;
    struct cps_prom *prom;
    struct cps_lease *lease; /* NULL without leader election, or with shards */
    struct cps_shards *shards; /* sharding.shards > 1: one Lease per shard (shards.h) */
    struct cps_informer **informers;
    size_t n_informers;
    size_t targets_from_cache; /* last tick */
    struct cps_server *server;
    int leading;
    struct cps_backfill *backfill; /* backfill.c: batches in flight */

    size_t n_targets;
    struct cps_target_runtime *targets;
    struct cps_target_index target_index; /* "namespace/name" -> target, for label matching */
    /* an answer's matched samples until it has decoded (targets.c), reused */
    struct cps_answer_sample *answer_samples;
    size_t answer_samples_cap;
    /* per queried metric: the target each series of its last shared
     * answer matched (-1: none), the decoder's guess for the next one
     * (targets.c); dropped whenever the target table is rebuilt */
    struct cps_series_memo {
        int32_t *targets;
        size_t n;
    } series_memo[CPS_METRIC_QUERIED];

    /* the tick in progress */
    int tick_running;
    int tick_acting;         /* 0: reads out; 1: writes out */
    size_t tick_pending;
    int64_t tick_started_ms;
    int64_t tick_now_ms;     /* decide's clock for this tick */
    size_t n_queries;
    struct cps_tick_query *queries;
    struct cps_policy_state policy_before; /* decide_and_act's: copied to a target's on PATCH */

    uint64_t ticks;          /* completed */
    struct cps_metrics metrics;
    /* lifecycle.c's: a tick has reported (reload, shutdown, --once) */
    void (*tick_done_cb)(struct cps_controller *ctl);

    /* lifecycle */
    ev_timer tick_timer;
    ev_timer grace_timer;
    ev_timer sync_timer;     /* the first tick's wait for the watch cache */
    int64_t started_ms;
    ev_signal sigterm_watcher, sigint_watcher, sighup_watcher;
    ev_stat config_watcher;
    int shutting_down;
    int exit_code;
};

/* ---- targets.c: the table, its index, adoption, the query plan ---- */

/* The target with this namespace and name, or -1. */
long cps_targets_find(const struct cps_controller *ctl, const char *namespace, const char *name);

/* Replace the targets with those of `config`, which must outlive the
 * table: each runtime points at its config entry instead of copying it
 * (the caller makes `config` ctl->config). A target that
 * stays (same kind, namespace and name) keeps its history, policy state,
 * counters and backoff; removed ones are dropped. 0, or -1 out of memory
 * (the old table then stays). */
int cps_targets_adopt(struct cps_controller *ctl, const struct cps_config *config);

/* Note the target's first error of the tick (later ones are dropped),
 * at most CPS_TARGET_ERROR_MAX bytes; out of memory it is not noted. */
#define CPS_TARGET_ERROR_MAX 320
void cps_target_note_error(struct cps_target_runtime *rt, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* The noted error, or "". */
const char *cps_target_error(const struct cps_target_runtime *rt);

/* The request counter's resource for a target's scale subresource, by its
 * kind: "deployments/scale", "statefulsets/scale", ... (every GET and
 * PATCH of it is counted so, where the README sends a 403 to be looked
 * for). Empty when `cap` is too small; CPS_KUBE_RESOURCE_MAX + sizeof
 * "/scale" always holds it. */
void cps_targets_scale_resource(const struct cps_target_runtime *rt, char *out, size_t cap);

/* The API path of a target's scale subresource, its object, or its
 * namespace's Events: made when a request needs it (the caller frees),
 * not kept per target, as the watch cache leaves most ticks without a GET.
 * NULL out of memory. */
enum cps_target_path { CPS_PATH_SCALE, CPS_PATH_OBJECT, CPS_PATH_EVENTS };
char *cps_targets_path(const struct cps_target_runtime *rt, enum cps_target_path which);

/* Free every target and the index. */
void cps_targets_release_all(struct cps_controller *ctl);

/* The tick's distinct queries (ctl->queries): one per distinct
 * cluster-wide text and metric, one per target for texts with
 * $namespace/$deployment. 0, or -1 out of memory. */
int cps_targets_plan_queries(struct cps_controller *ctl);
void cps_targets_free_queries(struct cps_controller *ctl);

/* Decode the body of ctl->queries[query_index]'s answer into the
 * observations of the targets it answers for: a cluster-wide query's
 * series are matched by their namespace and deployment labels, a
 * per-target query's go to its target. NaN, +-Inf, negative values and
 * answers evaluated more than cps_prom_max_answer_age_ms(interval) before
 * or after `wall_now_ms` stay missing; two series for one target (valid or not)
 * make it missing. 0, or -1 with
 * err when the answer is not a valid instant answer (nothing is stored). */
int cps_targets_take_answer(struct cps_controller *ctl, size_t query_index, const char *body,
                            size_t len, int64_t wall_now_ms, struct cps_err *err);

/* ---- watch_cache.c: the LIST+WATCH cache of Deployments ---- */

/* One informer per namespace with Deployment targets (one cluster-wide
 * past a few), started now; rebuilt on every accepted reload. */
int cps_watch_cache_start(struct cps_controller *ctl);
void cps_watch_cache_free(struct cps_controller *ctl);
int cps_watch_cache_synced(const struct cps_controller *ctl, int64_t now_ms);
/* Fill the target's reads from the cache when it can be trusted: 1 when
 * it did (no GETs), 0 when the target must be read. */
int cps_watch_cache_read(struct cps_controller *ctl, struct cps_target_runtime *rt,
                         int64_t now_ms);

/* ---- tick.c: fetch, decide and act, report ---- */

/* Start a tick at monotonic `now_ms`: every read and query goes out; the
 * last answer decides, acts, logs, publishes and calls ctl->tick_done_cb. */
void cps_tick_begin(struct cps_controller *ctl, int64_t now_ms);
/* Cancel the tick's requests still out (shutdown grace is over). */
void cps_tick_cancel(struct cps_controller *ctl);
/* Render /metrics and hand it to the server. */
void cps_tick_publish_metrics(struct cps_controller *ctl);

/* ---- events.c: Events about rescales, aggregated and rate limited ---- */

/* Record one occurrence of `event` on `rt` (regarding_uid must be set);
 * occurrences with one `key` within a window are one Event whose series
 * is PATCHed. Each write asks start_cb(rt) when it leaves the HTTP queue
 * (see http.h) and is dropped unsent when it refuses. 1 when a write went
 * out (answered_cb(ctl) follows, for a dropped one too), 0 when it was
 * only counted. */
int cps_events_record(struct cps_controller *ctl, struct cps_target_runtime *rt,
                      struct cps_kube_event *event, const char *key,
                      void (*answered_cb)(struct cps_controller *ctl),
                      int (*start_cb)(void *rt));

/* ---- lifecycle.c ---- */

/* Run the controller until SIGTERM/SIGINT or --once; the exit code.
 * Logging is set up by the caller. */
int cps_controller_run(const struct cps_run_options *options);

#define CPS_RUN_DEFAULT_KUBE_TIMEOUT_MS 10000 /* one read or write of the API server */
#define CPS_RUN_DEFAULT_SHUTDOWN_GRACE_MS 5000
#define CPS_RUN_DEFAULT_WATCH_TIMEOUT_MS (5 * 60 * 1000) /* client-go reopens every 5-10 min */

/* The Prometheus text of every metric (metrics.c), as a scrape would get
 * it right after a publish. Returns a malloc'd string (the caller frees)
 * and its length, or NULL when out of memory. For tests. */
char *cps_metrics_render(const struct cps_controller *controller, size_t *len);

/* ---- metrics.c: /metrics snapshots, published by the loop and streamed
 * by the server thread (the consistency rules are in metrics.c) ---- */
struct cps_metrics_publisher;
struct cps_metrics_publisher *cps_metrics_publisher_new(void);
/* Only once no stream is open (the server stopped). NULL is a no-op. */
void cps_metrics_publisher_free(struct cps_metrics_publisher *pub);
/* Publish the controller-wide counters and, with `with_targets` (at the
 * end of a tick), every target's figures; without, the last published
 * target figures stay. 0, or -1 out of memory (scrapes may then see a
 * snapshot missing parts until the next publish). */
int cps_metrics_publish(struct cps_metrics_publisher *pub, const struct cps_controller *ctl,
                        int with_targets);
/* A scrape: open on the publisher (a reference to the current snapshot;
 * NULL out of memory), read blocks of text (bytes put in `buf`, 0 at the
 * end), close. Safe on any thread. */
void *cps_metrics_stream_open(void *publisher);
long cps_metrics_stream_read(void *stream, char *buf, size_t cap);
void cps_metrics_stream_close(void *stream);

/* Account the target's decision (rt->decision) to its SLO budget metrics,
 * when it ran the policy on the forecast (a missing metric, the capacity
 * still being learned, a given count or a pause count nothing). `sign` -1
 * takes back what +1 added for the same decision (a 409 decides again). */
void cps_metrics_count_slo(struct cps_target_runtime *rt, int sign);

#endif
