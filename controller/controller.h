/*
 * The live controller (`cpscale run`): state shared by the tick (run.c)
 * and the /metrics rendering (metrics.c).
 *
 * One tick per `interval`: fetch every query and Kubernetes read in
 * parallel, decide for each target with the same pure code the simulator
 * runs, act (PATCH the scale subresource) only while holding the Lease,
 * then report (one log line per target, /metrics).
 */
#ifndef CPS_CONTROLLER_H
#define CPS_CONTROLLER_H

#include <ev.h>
#include <stdint.h>
#include <sys/stat.h>

#include "behavior.h"
#include "config.h"
#include "decide.h"
#include "http.h"
#include "informer.h"
#include "kube.h"
#include "kube_json.h"
#include "lease.h"
#include "prom.h"
#include "server.h"

/* The metrics read from Prometheus for each target (ready replicas come
 * from the Deployment). */
enum cps_prom_metric {
    CPS_PROM_METRIC_QPS = 0,
    CPS_PROM_METRIC_P95,
    CPS_PROM_METRIC_CPU,
    CPS_PROM_METRIC_COST,
    CPS_PROM_METRIC_COUNT
};

#define CPS_SCALE_FAILURE_CODES 8 /* distinct HTTP codes counted per target */
#define CPS_TICK_BUCKETS 12       /* tick duration histogram buckets */

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
};

struct cps_scale_failure_count {
    long code;
    uint64_t count;
};

struct cps_target_runtime {
    struct cps_target target;  /* owned copy of the config entry */
    char *key;                 /* "namespace/name" */
    char *scale_path, *object_path, *events_path;
    char resource[64];         /* "deployments" */
    struct cps_history *history;
    struct cps_policy_state *policy;
    /* this tick */
    struct cps_http_request *scale_request, *object_request, *patch_request, *event_request;
    struct cps_kube_scale scale;
    int32_t object_ready;      /* status.readyReplicas of the object */
    int have_scale, have_object;
    /* the watch cache (LIST+WATCH of Deployments) */
    int informer_index;        /* -1: read with GETs */
    struct cps_kube_deployment cached;
    int cached_present;
    uint64_t cached_stamp;
    int read_from_cache;       /* this tick */
    struct cps_observation observation;
    unsigned received;                      /* CPS_METRIC_* bits set this tick */
    int query_index[CPS_PROM_METRIC_COUNT]; /* into the tick's query table */
    struct cps_decision decision;
    int decided;
    enum cps_action action;
    int32_t patched_from;
    char read_error[320];
    /* Retry discipline for 429/5xx (per target, with jitter and Retry-After) */
    int64_t backoff_until_ms;
    int read_failures, write_failures; /* consecutive, for the backoff */
    /* figures and counters for /metrics */
    double cost_per_hour, cost_per_million;
    uint64_t decisions[CPS_REASON_COUNT];
    uint64_t scale_ups, scale_downs;
    struct cps_scale_failure_count failures[CPS_SCALE_FAILURE_CODES];
};

/* One distinct PromQL query of a tick. */
struct cps_tick_query {
    char *promql;
    enum cps_prom_metric metric;
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
};

struct cps_controller {
    struct ev_loop *loop;
    struct cps_run_options options;
    struct cps_config *config;
    struct stat config_stat;
    uint64_t config_generation;
    uint64_t reloads_ok, reloads_refused;
    int reload_pending;
    char identity[CPS_KUBE_IDENTITY_MAX];
    int64_t wall_offset_ms;  /* wall - monotonic at start: decide's clock */

    struct cps_http *http;
    struct cps_kube *kube;
    struct cps_prom *prom;
    struct cps_lease *lease; /* NULL without leader election */
    struct cps_informer **informers;
    size_t n_informers;
    size_t targets_from_cache; /* last tick */
    struct cps_server *server;
    int leading;

    size_t n_targets;
    struct cps_target_runtime *targets;
    /* open-addressing index "namespace/name" -> target, for label matching */
    long *target_slots;
    size_t n_target_slots;

    /* the tick in progress */
    int tick_running;
    int tick_acting;         /* 0: reads out; 1: writes out */
    size_t tick_pending;
    int64_t tick_started_ms;
    int64_t tick_now_ms;     /* decide's clock for this tick */
    size_t n_queries;
    struct cps_tick_query *queries;

    /* counters */
    uint64_t ticks, ticks_skipped;
    uint64_t query_errors[CPS_PROM_METRIC_COUNT][CPS_PROM_ERROR_COUNT];
    uint64_t tick_buckets[CPS_TICK_BUCKETS];
    double tick_seconds_sum;
    uint64_t tick_count;
    double last_tick_cpu_s;
    uint64_t scale_events_total;

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

/* The Prometheus text of every metric (metrics.c). Returns a malloc'd
 * string and its length, or NULL when out of memory. */
char *cps_metrics_render(const struct cps_controller *controller, size_t *len);

/* Upper bounds of the tick duration histogram, seconds. */
extern const double cps_tick_bucket_bounds[CPS_TICK_BUCKETS];

const char *cps_prom_metric_name(enum cps_prom_metric metric);

/* `cpscale run`. */
int cps_cmd_run(int argc, char **argv);

#endif
