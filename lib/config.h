/*
 * config.yaml -> struct cps_config (libyaml), and the same target keys from
 * JSON (jansson) for `cpscale decide`.
 *
 * Every key is checked: an unknown key, a wrong type or an out-of-range value
 * is an error "file:line:col: message" (cps_err). Durations are written as
 * 15s, 5m, 1h, 250ms (or a bare number of seconds).
 *
 * Ownership: cps_config_load* returns a config the caller frees with
 * cps_config_free (NULL is a no-op). All strings inside are owned by it.
 */
#ifndef CPS_CONFIG_H
#define CPS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "duration.h"

#include "behavior.h"
#include "err.h"

struct json_t;
struct cps_json_cursor;

#define CPS_CONFIG_MAX_DEPTH 64        /* nesting levels (CPS_YAML_MAX_DEPTH) */
#define CPS_CONFIG_MAX_NODES 1000000   /* scalars + mappings + lists in one file */
#define CPS_CONFIG_MAX_TARGETS 100000
#define CPS_CONFIG_MAX_REPLICAS 100000 /* upper bound of min/max_replicas */
#define CPS_CONFIG_MAX_HEADERS 64      /* prometheus.headers entries */

enum cps_missing_mode {
    CPS_MISSING_HOLD = 0,     /* keep the current count */
    CPS_MISSING_FALLBACK,     /* go to fallback_replicas, but never down */
};

enum cps_routing {
    CPS_ROUTING_RANDOM = 0,
    CPS_ROUTING_POOLED,
};

enum cps_seasonality {
    CPS_SEASONALITY_NONE = 0,
    CPS_SEASONALITY_DAILY,
};

/* PromQL for each metric. NULL means "use the cluster-wide/default query". */
struct cps_queries {
    char *qps;
    char *p95_ms;
    char *cpu_utilization;
    char *ready_replicas;
    char *cost_per_pod_hour;
    char *budget_qps;
    char *budget_p95_ms;
};

/* The knobs of the cpscale policy (`policy:`), the ones `cpscale tune` searches. */
struct cps_policy_params {
    double headroom_quantile;     /* share of demand surprises to cover, 0.5..0.9999 */
    double scale_down_quantile;   /* quantile used when deciding to remove pods */
    int64_t startup_ms;           /* pod creation -> ready, as the user knows it */
    int64_t metrics_lag_ms;       /* scrape + rule delay of the metrics */
    int64_t volatility_halflife_ms; /* memory of the demand-surprise estimator */
    enum cps_seasonality seasonality;
    int trend;                    /* 1: extrapolate the recent trend */
};

struct cps_target {
    char *kind;        /* "Deployment" unless `kind:` says otherwise */
    char *api_version; /* "apps/v1" for Deployment */
    char *namespace;
    char *name;        /* `deployment:` or `name:` */
    int32_t min_replicas;
    int32_t max_replicas;
    double slo_latency_p95_ms;
    double slo_violation_budget;    /* share of requests allowed over the SLO (0.01 = 1 %) */
    int64_t slo_budget_window_ms;   /* the rolling window that share is measured over */
    double cost_target_per_million; /* 0: no target */
    double cost_max_per_hour;       /* 0: no cap */
    double cost_pod_hour_usd;       /* fallback price when the query has none */
    int capacity_auto;              /* 1: learn it online */
    double capacity_rps_per_pod;    /* when not auto: rps one pod serves within the SLO */
    int paused;
    struct cps_behavior behavior;
    enum cps_missing_mode on_missing;
    int32_t fallback_replicas;
    struct cps_policy_params policy;
    struct cps_queries queries;
    int line, col; /* where the target was defined, for messages */
};

/* The ranges of the simulated world (docs/model.md §3), the same for the
 * `sim:` keys, `cpscale sim`'s flags and what-if lists, and `tune`'s
 * TRACE:SCALE. */
#define CPS_SIM_MIN_SERVICE_RATE 1e-9
#define CPS_SIM_MAX_RATE 1e12 /* service rate and scale */
#define CPS_SIM_MAX_PRICE 1e9
#define CPS_SIM_MIN_HPA_TARGET 0.01
#define CPS_SIM_MIN_SLO_MS 0.001
#define CPS_SIM_MAX_SLO_MS 1e9

/* `sim:` (docs/model.md §3 and §5), also settable by `cpscale sim` flags. */
struct cps_sim_params {
    double service_rate;     /* μ, req/s per ready pod */
    double base_latency_ms;
    double startup_s;
    double price;            /* USD per pod-hour */
    double scale;
    enum cps_routing routing;
    double interval_s;
    double window_s;
    double lag_s;
    double hpa_target;
    char *service_times; /* "exponential", "deterministic" or "lognormal:CV" (docs/model.md §10) */
};

struct cps_prometheus_config {
    char *url;
    int64_t timeout_ms;
    char *bearer_token_file;
    size_t n_headers;
    char **header_names;
    char **header_values;
    char *namespace_label;  /* label that carries the namespace, "namespace" */
    char *deployment_label; /* label that carries the deployment, "deployment" */
    int64_t max_staleness_ms;   /* deprecated: read and checked, no effect (README) */
};

struct cps_leader_election_config {
    int enabled;
    char *lease_namespace;
    char *lease_name;
    int64_t lease_duration_ms;
    int64_t renew_deadline_ms;
    int64_t retry_period_ms;
};

/* sharding: targets split over `shards` Leases (1: the one leader Lease). */
struct cps_sharding_config {
    int32_t shards;
    int warm_standby; /* 1: decide for every target; 0: only for held shards */
};

#define CPS_CONFIG_WARNING_MAX 512

struct cps_config {
    char *source;               /* file name given to the loader */
    /* "file:line:col: message" of a deprecated key that was set (loaded,
     * checked, without effect), or "": check-config prints it, the
     * controller logs it at WARN on every load. */
    char warning[CPS_CONFIG_WARNING_MAX];
    int64_t interval_ms;        /* controller tick */
    char *listen;               /* address:port of /metrics, /healthz, /readyz */
    struct cps_prometheus_config prometheus;
    struct cps_queries queries; /* cluster-wide defaults for every target */
    struct cps_leader_election_config leader_election;
    struct cps_sharding_config sharding;
    struct cps_target defaults;
    size_t n_targets;
    struct cps_target *targets;
    struct cps_sim_params sim;
};

/* Fill with the built-in defaults (no targets). The strings are malloc'd:
 * release them with cps_config_release (for a config on the stack) or
 * cps_config_free (for a heap one). Returns 0, or -1 when an allocation
 * failed (the config is then still safe to release). */
int cps_config_init_defaults(struct cps_config *config);

/* Free everything a config owns but not the struct itself, leaving it zeroed.
 * For configs filled by cps_config_init_defaults on the stack. NULL is a no-op. */
void cps_config_release(struct cps_config *config);

/* Fill a target with the built-in target defaults (Deployment, apps/v1,
 * min 1, max 100, SLO 100 ms, HPA default behavior, ...; no namespace or
 * name). Release with cps_target_release. 0, or -1 on allocation failure. */
int cps_target_init_defaults(struct cps_target *target);

/* Parse YAML bytes; `source` names the file in messages. NULL on error.
 * One YAML 1.1 document whose root is a mapping; aliases, unknown tags,
 * nesting deeper than CPS_CONFIG_MAX_DEPTH and more than CPS_CONFIG_MAX_NODES
 * nodes are refused, so any input is safe to hand over. */
struct cps_config *cps_config_load_bytes(const char *bytes, size_t len, const char *source,
                                         struct cps_err *err);

void cps_config_free(struct cps_config *config);

/* Merge a JSON target object (same keys as a YAML target) over `base`
 * (usually config->defaults), writing the result to `out`. `out` owns its
 * strings afterwards: release them with cps_target_release. Errors name the
 * JSON path, and where it is in the text when `at` (json_pos.h) is where
 * the object's text starts in the document it was parsed from, e.g.
 * "obs.json:4:31: target.slo.latency_p95_ms: expected a number"; with `at`
 * NULL (no text), "obs.json: target.slo...: ...". */
int cps_target_from_json(const struct json_t *object, const struct cps_target *base,
                         const char *source, const struct cps_json_cursor *at,
                         struct cps_target *out, struct cps_err *err);

/* Deep copy and release of a target's owned strings. cps_target_copy
 * overwrites dst without releasing it; on failure (-1, out of memory) dst owns
 * nothing. cps_target_release frees the strings and sets them to NULL; NULL
 * is a no-op. */
int cps_target_copy(struct cps_target *dst, const struct cps_target *src);
void cps_target_release(struct cps_target *target);

/* The effective config (defaults filled in) as YAML that this loader accepts.
 * Returns a malloc'd string the caller frees, or NULL on allocation failure. */
char *cps_config_to_yaml(const struct cps_config *config);

/* The settings `cpscale tune` searches (the tunable policy keys, capacity
 * and behavior) as a `defaults:` fragment of config.yaml, numbers with 10
 * significant digits. malloc'd, the caller frees; NULL when out of memory. */
char *cps_config_tunables_yaml(const struct cps_target *target);

/* The same settings as a JSON object in the config's key names (policy,
 * behavior) plus capacity_rps_per_pod (a number or "auto"). The caller owns
 * the reference; NULL when out of memory. */
struct json_t *cps_config_tunables_json(const struct cps_target *target);


#endif
