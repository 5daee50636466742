/*
 * The config schema: every config.yaml key, its type, field, default and
 * range. The contract is in config_schema.h.
 */
#include "config_schema.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "k8s_names.h"
#include "metric.h"
#include "service_times.h"
#include "shard.h"
#include "units.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define QUANTILE_MIN 0.5
#define QUANTILE_MAX 0.9999
#define MAX_POLICY_WINDOW_S 3600 /* HPA: stabilizationWindowSeconds <= 1 h */
#define MAX_POLICY_PERIOD_S 1800 /* HPA: periodSeconds <= 30 min */
#define PORT_MAX 65535

/* ---- built-in defaults ---------------------------------------------------- */

#define DEF_INTERVAL_MS (15 * CPS_MS_PER_S)
#define DEF_LISTEN "0.0.0.0:8080"
#define DEF_PROM_URL "http://prometheus.monitoring.svc:9090"
#define DEF_PROM_TIMEOUT_MS (5 * CPS_MS_PER_S)
#define DEF_PROM_NAMESPACE_LABEL "namespace"
#define DEF_PROM_DEPLOYMENT_LABEL "deployment"
#define DEF_PROM_MAX_STALENESS_MS (5 * CPS_MS_PER_MIN)
#define DEF_LEASE_NAMESPACE "cpscale"
#define DEF_LEASE_NAME "cpscale-leader"
#define DEF_LEASE_DURATION_MS (15 * CPS_MS_PER_S)
#define DEF_RENEW_DEADLINE_MS (10 * CPS_MS_PER_S)
#define DEF_RETRY_PERIOD_MS (2 * CPS_MS_PER_S)
#define DEF_MIN_REPLICAS 1
#define DEF_MAX_REPLICAS 100
#define DEF_SLO_P95_MS 100.0
#define DEF_VIOLATION_BUDGET 0.01 /* 1 % of requests over the SLO */
#define DEF_BUDGET_WINDOW_MS (7 * 24 * MS_PER_HOUR_DEF)
#define MS_PER_HOUR_DEF 3600000.0
#define MAX_VIOLATION_BUDGET 0.5 /* more than half the requests late is no objective */
#define MAX_BUDGET_WINDOW_MS (90 * 24 * MS_PER_HOUR_DEF)
#define DEF_POD_HOUR_USD 0.05
#define DEF_HEADROOM_QUANTILE 0.95
#define DEF_SCALE_DOWN_QUANTILE 0.95
#define DEF_STARTUP_MS (30 * CPS_MS_PER_S)
#define DEF_METRICS_LAG_MS (15 * CPS_MS_PER_S)
#define DEF_VOLATILITY_HALFLIFE_MS (6 * (double)CPS_MS_PER_HOUR)
#define DEF_SIM_SERVICE_RATE 100.0
#define DEF_SIM_BASE_LATENCY_MS 20.0
#define DEF_SIM_STARTUP_S 30.0
#define DEF_SIM_PRICE 0.05
#define DEF_SIM_SCALE 1.0
#define DEF_SIM_INTERVAL_S 15.0
#define DEF_SIM_WINDOW_S 60.0
#define DEF_SIM_LAG_S 15.0
#define DEF_SIM_HPA_TARGET 0.7

/* The rate window of the default queries: decide.c's CPS_METRICS_WINDOW_S
 * (test_config checks that the two agree). */
#define RATE(series) "rate(" series "[" CPS_METRICS_WINDOW_PROMQL "])"

/* Deployment pods are named <deployment>-<replicaset hash>-<pod hash>. */
#define POD_TO_DEPLOYMENT(expr)                                                \
    "label_replace(" expr ", \"deployment\", \"$1\", \"pod\", \"(.+)-[a-z0-9]+-[a-z0-9]+\")"

/* The rate and p95 of the last scrape interval only (the budget's): irate
 * takes each series' last two samples in the range, so these are as fine
 * as the scrapes are. `and` the series now keeps only pods still exposed: a
 * range still holds a deleted pod's last samples, and irate would go on
 * counting its last rate for up to the range after it is gone. */
#define IRATE(series) "(irate(" series "[" CPS_METRICS_WINDOW_PROMQL "]) and " series ")"

/* Requests/s and p95 ms of the client-library metrics, over `over` (RATE
 * or IRATE). */
#define REQUESTS_PER_S(over)                                                   \
    "sum by (namespace, deployment) (" POD_TO_DEPLOYMENT(over("http_requests_total")) ")"
#define P95_MS(over)                                                           \
    "1000 * histogram_quantile(0.95, sum by (namespace, deployment, le) ("     \
    POD_TO_DEPLOYMENT(over("http_request_duration_seconds_bucket")) "))"

/* Cluster-wide queries; each returns one series per (namespace, deployment). */
#define DEF_QUERY_QPS REQUESTS_PER_S(RATE)
#define DEF_QUERY_P95_MS P95_MS(RATE)
#define DEF_QUERY_BUDGET_QPS REQUESTS_PER_S(IRATE)
#define DEF_QUERY_BUDGET_P95_MS P95_MS(IRATE)
#define DEF_QUERY_CPU_UTILIZATION                                              \
    "sum by (namespace, deployment) ("                                         \
    POD_TO_DEPLOYMENT(RATE("container_cpu_usage_seconds_total{container!=\"\", container!=\"POD\"}")) \
    ") / sum by (namespace, deployment) ("                                     \
    POD_TO_DEPLOYMENT("kube_pod_container_resource_requests{resource=\"cpu\"}") ")"
#define DEF_QUERY_READY_REPLICAS                                               \
    "sum by (namespace, deployment) (kube_deployment_status_replicas_ready)"
#define DEF_QUERY_COST_PER_POD_HOUR                                            \
    "avg by (namespace, deployment) ("                                         \
    POD_TO_DEPLOYMENT("sum by (namespace, pod) (container_cpu_allocation * on(node) group_left() node_cpu_hourly_cost) + sum by (namespace, pod) (container_memory_allocation_bytes / 1024^3 * on(node) group_left() node_ram_hourly_cost)") \
    ")"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- string checks -------------------------------------------------------- */

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int is_namespace(const char *s) { return cps_k8s_is_dns_label(s, strlen(s)); }

static int is_nonempty(const char *s) { return *s != '\0'; }

int cps_config_is_kind(const char *s)
{
    if (!(s[0] >= 'A' && s[0] <= 'Z') || strlen(s) > CPS_K8S_DNS_LABEL_MAX)
        return 0;
    for (; *s; s++)
        if (!is_alpha((unsigned char)*s) && !is_digit((unsigned char)*s))
            return 0;
    return 1;
}

/* "v1" or "group/version". */
int cps_config_is_api_version(const char *s)
{
    const char *slash = strchr(s, '/');
    const char *version = slash ? slash + 1 : s;
    if (slash) {
        char group[CPS_K8S_DNS_SUBDOMAIN_MAX + 1];
        size_t n = (size_t)(slash - s);
        if (n == 0 || n >= sizeof group)
            return 0;
        memcpy(group, s, n);
        group[n] = '\0';
        if (!cps_k8s_is_dns_subdomain(group))
            return 0;
    }
    return cps_k8s_is_dns_label(version, strlen(version));
}

const char *cps_config_known_api_version(const char *kind)
{
    static const char *const apps_v1[] = {"Deployment", "StatefulSet", "ReplicaSet"};
    for (size_t i = 0; i < ARRAY_LEN(apps_v1); i++)
        if (!strcmp(kind, apps_v1[i]))
            return "apps/v1";
    return NULL;
}

static int is_label_name(const char *s)
{
    if (!is_alpha((unsigned char)s[0]) && s[0] != '_')
        return 0;
    for (; *s; s++)
        if (!is_alpha((unsigned char)*s) && !is_digit((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

/* RFC 9110 token. */
int cps_config_is_header_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!is_alpha((unsigned char)*s) && !is_digit((unsigned char)*s) &&
            !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

int cps_config_is_header_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return 0;
    }
    return 1;
}

/* A string with no whitespace or control characters (URLs, listen address). */
static int is_token(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7F)
            return 0;
    return 1;
}

/* "host:port" with a numeric port 0..65535; the host may be empty or [v6]. */
static int is_listen_address(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || !colon[1] || !is_token(s))
        return 0;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (!is_digit((unsigned char)*p) || p - colon > 5)
            return 0;
        port = port * 10 + (*p - '0');
    }
    return port <= PORT_MAX;
}

/* An http:// or https:// URL without user:password@ in its authority: a
 * password there would be written in every log line that names the
 * endpoint and sent through a proxy in clear over http://. */
static int is_http_url(const char *s)
{
    const char *rest = !strncmp(s, "http://", 7)    ? s + 7
                       : !strncmp(s, "https://", 8) ? s + 8
                                                    : NULL;
    if (!rest || !*rest || !is_token(s))
        return 0;
    size_t authority = strcspn(rest, "/?#");
    return memchr(rest, '@', authority) == NULL;
}

/* ---- the rows ------------------------------------------------------------- */

static const char *const select_names[] = {
    [CPS_SELECT_MAX] = "Max",
    [CPS_SELECT_MIN] = "Min",
    [CPS_SELECT_DISABLED] = "Disabled",
};
static const char *const policy_type_names[] = {
    [CPS_SCALING_PODS] = "Pods",
    [CPS_SCALING_PERCENT] = "Percent",
};
static const char *const seasonality_names[] = {
    [CPS_SEASONALITY_NONE] = "none",
    [CPS_SEASONALITY_DAILY] = "daily",
};
static const char *const routing_names[] = {
    [CPS_ROUTING_RANDOM] = "random",
    [CPS_ROUTING_POOLED] = "pooled",
};

/* The longest value of each duration row (.hi, in ms), from what the
 * value is cast to or sized by (`lease_duration: 4294967297s` used to be
 * written as leaseDurationSeconds: 1). */
#define MS_PER_HOUR 3600000.0
#define MAX_INT32_SECONDS_MS (2147483647.0 * 1000.0) /* a Lease's *Seconds fields: int32 */
#define MAX_CURL_TIMEOUT_MS 2147483647.0 /* CURLOPT_TIMEOUT_MS is a long: 32 bits on ILP32 */
#define MAX_INTERVAL_MS (24 * MS_PER_HOUR) /* liveness is 3 intervals; history rings per tick */
#define MAX_POLICY_SPAN_MS (7 * 24 * MS_PER_HOUR) /* added up in int64 ms with the interval */
#define MAX_SIM_SPAN_MS (24 * MS_PER_HOUR) /* sizes the simulator's per-second rings */
#define MAX_STALENESS_MS (7 * 24 * MS_PER_HOUR)

#define NAMES(a) .names = (a), .n_names = ARRAY_LEN(a)
#define F(type, field) .offset = offsetof(type, field)
#define NO_FIELD .offset = CPS_CFG_NO_FIELD
#define ANY_NUMBER .lo = 0, .flags = CPS_CFG_NO_HI
#define POSITIVE .lo = 0, .flags = CPS_CFG_LO_OPEN | CPS_CFG_NO_HI
#define QUANTILE .lo = QUANTILE_MIN, .hi = QUANTILE_MAX
#define REPLICAS .lo = 1, .hi = CPS_CONFIG_MAX_REPLICAS
#define QUERY(key, metric_, m, def_)                                           \
    [key] = {CPS_SEC_QUERIES, NULL, CPS_CFG_QUERY, F(struct cps_queries, m), .def_text = def_, \
             .metric = metric_}
#define TARGET_NAME_HINT "(lowercase letters, digits, '-' and '.', at most " \
    STR(CPS_K8S_DNS_SUBDOMAIN_MAX) ")"

const struct cps_config_row cps_config_rows[CPS_KEY_COUNT] = {
    [CPS_KEY_INTERVAL] = {CPS_SEC_TOP, "interval", CPS_CFG_DURATION,
                          F(struct cps_config, interval_ms), .def = DEF_INTERVAL_MS, .hi = MAX_INTERVAL_MS},
    [CPS_KEY_LISTEN] = {CPS_SEC_TOP, "listen", CPS_CFG_STRING, F(struct cps_config, listen),
                        .def_text = DEF_LISTEN, .valid = is_listen_address,
                        .invalid = "%s: expected host:port, got %s"},
    [CPS_KEY_PROMETHEUS] = {CPS_SEC_TOP, "prometheus", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_QUERIES] = {CPS_SEC_TOP, "queries", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_LEADER] = {CPS_SEC_TOP, "leader_election", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_SHARDING] = {CPS_SEC_TOP, "sharding", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_DEFAULTS] = {CPS_SEC_TOP, "defaults", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_TARGETS] = {CPS_SEC_TOP, "targets", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_SIM] = {CPS_SEC_TOP, "sim", CPS_CFG_CUSTOM, NO_FIELD},

    [CPS_KEY_PROM_URL] = {CPS_SEC_PROMETHEUS, "url", CPS_CFG_STRING,
                          F(struct cps_prometheus_config, url), .def_text = DEF_PROM_URL,
                          .valid = is_http_url,
                          /* the value is not echoed: it may hold a password */
                          .invalid = "%s: expected an http:// or https:// URL without "
                                     "user:password@ (a token goes in bearer_token_file, "
                                     "other credentials under headers)"},
    [CPS_KEY_PROM_TIMEOUT] = {CPS_SEC_PROMETHEUS, "timeout", CPS_CFG_DURATION,
                              F(struct cps_prometheus_config, timeout_ms),
                              .def = DEF_PROM_TIMEOUT_MS, .hi = MAX_CURL_TIMEOUT_MS},
    [CPS_KEY_PROM_TOKEN_FILE] = {CPS_SEC_PROMETHEUS, "bearer_token_file", CPS_CFG_STRING,
                                 F(struct cps_prometheus_config, bearer_token_file),
                                 .flags = CPS_CFG_NULL_OK, .valid = is_nonempty,
                                 .invalid = "%s: must not be empty"},
    [CPS_KEY_PROM_HEADERS] = {CPS_SEC_PROMETHEUS, "headers", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_PROM_LABELS] = {CPS_SEC_PROMETHEUS, "labels", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_PROM_MAX_STALENESS] = {CPS_SEC_PROMETHEUS, "max_staleness", CPS_CFG_DURATION,
                                    F(struct cps_prometheus_config, max_staleness_ms),
                                    .flags = CPS_CFG_DEPRECATED,
                                    .def = DEF_PROM_MAX_STALENESS_MS, .hi = MAX_STALENESS_MS},

    [CPS_KEY_LABEL_NAMESPACE] = {CPS_SEC_LABELS, "namespace", CPS_CFG_STRING,
                                 F(struct cps_prometheus_config, namespace_label),
                                 .def_text = DEF_PROM_NAMESPACE_LABEL, .valid = is_label_name,
                                 .invalid = "%s: %s is not a valid Prometheus label name"},
    [CPS_KEY_LABEL_DEPLOYMENT] = {CPS_SEC_LABELS, "deployment", CPS_CFG_STRING,
                                  F(struct cps_prometheus_config, deployment_label),
                                  .def_text = DEF_PROM_DEPLOYMENT_LABEL, .valid = is_label_name,
                                  .invalid = "%s: %s is not a valid Prometheus label name"},

    QUERY(CPS_KEY_QUERY_QPS, CPS_METRIC_QPS, qps, DEF_QUERY_QPS),
    QUERY(CPS_KEY_QUERY_P95, CPS_METRIC_P95, p95_ms, DEF_QUERY_P95_MS),
    QUERY(CPS_KEY_QUERY_CPU, CPS_METRIC_CPU, cpu_utilization, DEF_QUERY_CPU_UTILIZATION),
    QUERY(CPS_KEY_QUERY_READY, CPS_METRIC_READY, ready_replicas, DEF_QUERY_READY_REPLICAS),
    QUERY(CPS_KEY_QUERY_COST, CPS_METRIC_COST, cost_per_pod_hour, DEF_QUERY_COST_PER_POD_HOUR),
    QUERY(CPS_KEY_QUERY_BUDGET_QPS, CPS_METRIC_BUDGET_QPS, budget_qps, DEF_QUERY_BUDGET_QPS),
    QUERY(CPS_KEY_QUERY_BUDGET_P95, CPS_METRIC_BUDGET_P95, budget_p95_ms, DEF_QUERY_BUDGET_P95_MS),

    [CPS_KEY_LE_ENABLED] = {CPS_SEC_LEADER, "enabled", CPS_CFG_BOOL,
                            F(struct cps_leader_election_config, enabled), .def = 1},
    [CPS_KEY_LE_NAMESPACE] = {CPS_SEC_LEADER, "namespace", CPS_CFG_STRING,
                              F(struct cps_leader_election_config, lease_namespace),
                              .def_text = DEF_LEASE_NAMESPACE, .valid = is_namespace,
                              .invalid = "%s: %s is not a valid namespace"},
    [CPS_KEY_LE_NAME] = {CPS_SEC_LEADER, "name", CPS_CFG_STRING,
                         F(struct cps_leader_election_config, lease_name),
                         .def_text = DEF_LEASE_NAME, .valid = cps_k8s_is_dns_subdomain,
                         .invalid = "%s: %s is not a valid Lease name"},
    [CPS_KEY_LE_LEASE_DURATION] = {CPS_SEC_LEADER, "lease_duration", CPS_CFG_DURATION,
                                   F(struct cps_leader_election_config, lease_duration_ms),
                                   .def = DEF_LEASE_DURATION_MS, .hi = MAX_INT32_SECONDS_MS},
    [CPS_KEY_LE_RENEW_DEADLINE] = {CPS_SEC_LEADER, "renew_deadline", CPS_CFG_DURATION,
                                   F(struct cps_leader_election_config, renew_deadline_ms),
                                   .def = DEF_RENEW_DEADLINE_MS, .hi = MAX_INT32_SECONDS_MS},
    [CPS_KEY_LE_RETRY_PERIOD] = {CPS_SEC_LEADER, "retry_period", CPS_CFG_DURATION,
                                 F(struct cps_leader_election_config, retry_period_ms),
                                 .def = DEF_RETRY_PERIOD_MS, .hi = MAX_INT32_SECONDS_MS},

    [CPS_KEY_SH_SHARDS] = {CPS_SEC_SHARDING, "shards", CPS_CFG_INT32,
                           F(struct cps_sharding_config, shards), .def = 1, .lo = 1,
                           .hi = CPS_SHARD_MAX},
    [CPS_KEY_SH_WARM_STANDBY] = {CPS_SEC_SHARDING, "warm_standby", CPS_CFG_BOOL,
                                 F(struct cps_sharding_config, warm_standby), .def = 1},

    [CPS_KEY_SIM_SERVICE_RATE] = {CPS_SEC_SIM, "service_rate", CPS_CFG_NUMBER,
                                  F(struct cps_sim_params, service_rate),
                                  .def = DEF_SIM_SERVICE_RATE, .lo = CPS_SIM_MIN_SERVICE_RATE,
                                  .hi = CPS_SIM_MAX_RATE},
    [CPS_KEY_SIM_BASE_LATENCY] = {CPS_SEC_SIM, "base_latency", CPS_CFG_DURATION_MS,
                                  F(struct cps_sim_params, base_latency_ms),
                                  .def = DEF_SIM_BASE_LATENCY_MS, .flags = CPS_CFG_ZERO_OK, .hi = MAX_SIM_SPAN_MS},
    [CPS_KEY_SIM_STARTUP] = {CPS_SEC_SIM, "startup", CPS_CFG_DURATION_S,
                             F(struct cps_sim_params, startup_s), .def = DEF_SIM_STARTUP_S,
                             .flags = CPS_CFG_ZERO_OK, .hi = MAX_SIM_SPAN_MS},
    [CPS_KEY_SIM_PRICE] = {CPS_SEC_SIM, "price", CPS_CFG_NUMBER, F(struct cps_sim_params, price),
                           .def = DEF_SIM_PRICE, .lo = 0, .hi = CPS_SIM_MAX_PRICE},
    [CPS_KEY_SIM_SCALE] = {CPS_SEC_SIM, "scale", CPS_CFG_NUMBER, F(struct cps_sim_params, scale),
                           .def = DEF_SIM_SCALE, .lo = 0, .hi = CPS_SIM_MAX_RATE,
                           .flags = CPS_CFG_LO_OPEN},
    [CPS_KEY_SIM_ROUTING] = {CPS_SEC_SIM, "routing", CPS_CFG_ENUM,
                             F(struct cps_sim_params, routing), .def = CPS_ROUTING_RANDOM,
                             NAMES(routing_names)},
    [CPS_KEY_SIM_INTERVAL] = {CPS_SEC_SIM, "interval", CPS_CFG_DURATION_S,
                              F(struct cps_sim_params, interval_s), .def = DEF_SIM_INTERVAL_S,
                              .lo = CPS_MS_PER_S, .hi = MAX_SIM_SPAN_MS},
    [CPS_KEY_SIM_WINDOW] = {CPS_SEC_SIM, "window", CPS_CFG_DURATION_S,
                            F(struct cps_sim_params, window_s), .def = DEF_SIM_WINDOW_S,
                            .lo = CPS_MS_PER_S, .hi = MAX_SIM_SPAN_MS},
    [CPS_KEY_SIM_LAG] = {CPS_SEC_SIM, "lag", CPS_CFG_DURATION_S, F(struct cps_sim_params, lag_s),
                         .def = DEF_SIM_LAG_S, .flags = CPS_CFG_ZERO_OK, .hi = MAX_SIM_SPAN_MS},
    [CPS_KEY_SIM_HPA_TARGET] = {CPS_SEC_SIM, "hpa_target", CPS_CFG_NUMBER,
                                F(struct cps_sim_params, hpa_target), .def = DEF_SIM_HPA_TARGET,
                                .lo = CPS_SIM_MIN_HPA_TARGET, .hi = 1},
    [CPS_KEY_SIM_SERVICE_TIMES] = {CPS_SEC_SIM, "service_times", CPS_CFG_STRING,
                                   F(struct cps_sim_params, service_times),
                                   .def_text = "exponential", .valid = cps_service_times_valid,
                                   .invalid = "%s: %s is not exponential, deterministic or "
                                              "lognormal:CV (0.01 <= CV <= 10)"},

    [CPS_KEY_T_NAMESPACE] = {CPS_SEC_TARGET, "namespace", CPS_CFG_STRING,
                             F(struct cps_target, namespace), .valid = is_namespace,
                             .invalid = "%s: %s is not a valid namespace (lowercase letters, "
                                        "digits and '-', at most " STR(CPS_K8S_DNS_LABEL_MAX) ")"},
    [CPS_KEY_T_DEPLOYMENT] = {CPS_SEC_TARGET, "deployment", CPS_CFG_CUSTOM,
                              F(struct cps_target, name), .valid = cps_k8s_is_dns_subdomain,
                              .invalid = "%s: %s is not a valid name " TARGET_NAME_HINT},
    [CPS_KEY_T_KIND] = {CPS_SEC_TARGET, "kind", CPS_CFG_STRING, F(struct cps_target, kind),
                        .def_text = "Deployment", .valid = cps_config_is_kind,
                        .invalid = "%s: %s is not a valid kind"},
    [CPS_KEY_T_NAME] = {CPS_SEC_TARGET, "name", CPS_CFG_STRING, F(struct cps_target, name),
                        .valid = cps_k8s_is_dns_subdomain,
                        .invalid = "%s: %s is not a valid name " TARGET_NAME_HINT},
    [CPS_KEY_T_API_VERSION] = {CPS_SEC_TARGET, "api_version", CPS_CFG_STRING,
                               F(struct cps_target, api_version), .def_text = "apps/v1",
                               .valid = cps_config_is_api_version,
                               .invalid = "%s: %s is not a valid api_version"},
    [CPS_KEY_T_MIN_REPLICAS] = {CPS_SEC_TARGET, "min_replicas", CPS_CFG_INT32,
                                F(struct cps_target, min_replicas), .def = DEF_MIN_REPLICAS,
                                REPLICAS},
    [CPS_KEY_T_MAX_REPLICAS] = {CPS_SEC_TARGET, "max_replicas", CPS_CFG_INT32,
                                F(struct cps_target, max_replicas), .def = DEF_MAX_REPLICAS,
                                REPLICAS},
    [CPS_KEY_T_SLO] = {CPS_SEC_TARGET, "slo", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_T_COST] = {CPS_SEC_TARGET, "cost", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_T_CAPACITY] = {CPS_SEC_TARGET, "capacity", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_T_PAUSED] = {CPS_SEC_TARGET, "paused", CPS_CFG_BOOL, F(struct cps_target, paused)},
    [CPS_KEY_T_QUERIES] = {CPS_SEC_TARGET, "queries", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_T_BEHAVIOR] = {CPS_SEC_TARGET, "behavior", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_T_ON_MISSING] = {CPS_SEC_TARGET, "on_missing_metrics", CPS_CFG_CUSTOM, NO_FIELD},
    [CPS_KEY_T_POLICY] = {CPS_SEC_TARGET, "policy", CPS_CFG_CUSTOM, NO_FIELD},

    [CPS_KEY_SLO_P95] = {CPS_SEC_SLO, "latency_p95_ms", CPS_CFG_NUMBER,
                         F(struct cps_target, slo_latency_p95_ms), .def = DEF_SLO_P95_MS,
                         .lo = CPS_SIM_MIN_SLO_MS, .hi = CPS_SIM_MAX_SLO_MS},
    [CPS_KEY_SLO_BUDGET] = {CPS_SEC_SLO, "violation_budget", CPS_CFG_NUMBER,
                            F(struct cps_target, slo_violation_budget),
                            .def = DEF_VIOLATION_BUDGET, .lo = 0, .hi = MAX_VIOLATION_BUDGET,
                            .flags = CPS_CFG_LO_OPEN | CPS_CFG_PERCENT},
    [CPS_KEY_SLO_BUDGET_WINDOW] = {CPS_SEC_SLO, "budget_window", CPS_CFG_DURATION,
                                   F(struct cps_target, slo_budget_window_ms),
                                   .def = DEF_BUDGET_WINDOW_MS, .hi = MAX_BUDGET_WINDOW_MS},
    [CPS_KEY_COST_PER_MILLION] = {CPS_SEC_COST, "target_per_million_requests", CPS_CFG_NUMBER,
                                  F(struct cps_target, cost_target_per_million), ANY_NUMBER},
    [CPS_KEY_COST_MAX_PER_HOUR] = {CPS_SEC_COST, "max_per_hour", CPS_CFG_NUMBER,
                                   F(struct cps_target, cost_max_per_hour), ANY_NUMBER},
    [CPS_KEY_COST_POD_HOUR] = {CPS_SEC_COST, "pod_hour_usd", CPS_CFG_NUMBER,
                               F(struct cps_target, cost_pod_hour_usd), .def = DEF_POD_HOUR_USD,
                               ANY_NUMBER},
    [CPS_KEY_CAPACITY_RPS] = {CPS_SEC_CAPACITY, "rps_per_pod", CPS_CFG_CUSTOM,
                              F(struct cps_target, capacity_rps_per_pod), .lo = 0,
                              .flags = CPS_CFG_LO_OPEN | CPS_CFG_NO_HI | CPS_CFG_TUNABLE},
    [CPS_KEY_MISSING_FALLBACK] = {CPS_SEC_MISSING, "fallback", CPS_CFG_INT32,
                                  F(struct cps_target, fallback_replicas), REPLICAS},

    [CPS_KEY_POL_HEADROOM] = {CPS_SEC_POLICY, "headroom_quantile", CPS_CFG_NUMBER,
                              F(struct cps_policy_params, headroom_quantile),
                              .def = DEF_HEADROOM_QUANTILE, QUANTILE, .flags = CPS_CFG_TUNABLE},
    [CPS_KEY_POL_SCALE_DOWN] = {CPS_SEC_POLICY, "scale_down_quantile", CPS_CFG_NUMBER,
                                F(struct cps_policy_params, scale_down_quantile),
                                .def = DEF_SCALE_DOWN_QUANTILE, QUANTILE,
                                .flags = CPS_CFG_TUNABLE},
    [CPS_KEY_POL_STARTUP] = {CPS_SEC_POLICY, "startup", CPS_CFG_DURATION,
                             F(struct cps_policy_params, startup_ms), .def = DEF_STARTUP_MS,
                             .flags = CPS_CFG_ZERO_OK, .hi = MAX_POLICY_SPAN_MS},
    [CPS_KEY_POL_METRICS_LAG] = {CPS_SEC_POLICY, "metrics_lag", CPS_CFG_DURATION,
                                 F(struct cps_policy_params, metrics_lag_ms),
                                 .def = DEF_METRICS_LAG_MS, .flags = CPS_CFG_ZERO_OK, .hi = MAX_POLICY_SPAN_MS},
    [CPS_KEY_POL_HALFLIFE] = {CPS_SEC_POLICY, "volatility_halflife", CPS_CFG_DURATION,
                              F(struct cps_policy_params, volatility_halflife_ms),
                              .def = DEF_VOLATILITY_HALFLIFE_MS,
                              .flags = CPS_CFG_TUNABLE, .hi = MAX_POLICY_SPAN_MS},
    [CPS_KEY_POL_SEASONALITY] = {CPS_SEC_POLICY, "seasonality", CPS_CFG_ENUM,
                                 F(struct cps_policy_params, seasonality),
                                 .def = CPS_SEASONALITY_NONE, .flags = CPS_CFG_DEPRECATED,
                                 NAMES(seasonality_names)},
    [CPS_KEY_POL_TREND] = {CPS_SEC_POLICY, "trend", CPS_CFG_BOOL,
                           F(struct cps_policy_params, trend), .flags = CPS_CFG_DEPRECATED},

    [CPS_KEY_BEH_SCALE_UP] = {CPS_SEC_BEHAVIOR, "scaleUp", CPS_CFG_CUSTOM,
                              F(struct cps_behavior, scale_up)},
    [CPS_KEY_BEH_SCALE_DOWN] = {CPS_SEC_BEHAVIOR, "scaleDown", CPS_CFG_CUSTOM,
                                F(struct cps_behavior, scale_down)},

    [CPS_KEY_RULES_WINDOW] = {CPS_SEC_RULES, "stabilizationWindowSeconds", CPS_CFG_INT32,
                              F(struct cps_scaling_rules, stabilization_window_seconds), .lo = 0,
                              .hi = MAX_POLICY_WINDOW_S},
    [CPS_KEY_RULES_SELECT] = {CPS_SEC_RULES, "selectPolicy", CPS_CFG_ENUM,
                              F(struct cps_scaling_rules, select_policy), NAMES(select_names)},
    [CPS_KEY_RULES_POLICIES] = {CPS_SEC_RULES, "policies", CPS_CFG_CUSTOM, NO_FIELD},

    [CPS_KEY_ITEM_TYPE] = {CPS_SEC_POLICY_ITEM, "type", CPS_CFG_ENUM,
                           F(struct cps_scaling_policy, type), NAMES(policy_type_names)},
    [CPS_KEY_ITEM_VALUE] = {CPS_SEC_POLICY_ITEM, "value", CPS_CFG_INT32,
                            F(struct cps_scaling_policy, value), .lo = 1, .hi = INT32_MAX},
    [CPS_KEY_ITEM_PERIOD] = {CPS_SEC_POLICY_ITEM, "periodSeconds", CPS_CFG_INT32,
                             F(struct cps_scaling_policy, period_seconds), .lo = 1,
                             .hi = MAX_POLICY_PERIOD_S},
};

/* ---- access --------------------------------------------------------------- */

/* The first key of each section; a section ends where the next begins (the
 * enum lists keys grouped by section: test_config checks the rows agree). */
static const enum cps_config_key section_first[CPS_SEC_COUNT + 1] = {
    [CPS_SEC_TOP] = CPS_KEY_INTERVAL,
    [CPS_SEC_PROMETHEUS] = CPS_KEY_PROM_URL,
    [CPS_SEC_LABELS] = CPS_KEY_LABEL_NAMESPACE,
    [CPS_SEC_QUERIES] = CPS_KEY_QUERY_QPS,
    [CPS_SEC_LEADER] = CPS_KEY_LE_ENABLED,
    [CPS_SEC_SHARDING] = CPS_KEY_SH_SHARDS,
    [CPS_SEC_SIM] = CPS_KEY_SIM_SERVICE_RATE,
    [CPS_SEC_TARGET] = CPS_KEY_T_NAMESPACE,
    [CPS_SEC_SLO] = CPS_KEY_SLO_P95,
    [CPS_SEC_COST] = CPS_KEY_COST_PER_MILLION,
    [CPS_SEC_CAPACITY] = CPS_KEY_CAPACITY_RPS,
    [CPS_SEC_MISSING] = CPS_KEY_MISSING_FALLBACK,
    [CPS_SEC_POLICY] = CPS_KEY_POL_HEADROOM,
    [CPS_SEC_BEHAVIOR] = CPS_KEY_BEH_SCALE_UP,
    [CPS_SEC_RULES] = CPS_KEY_RULES_WINDOW,
    [CPS_SEC_POLICY_ITEM] = CPS_KEY_ITEM_TYPE,
    [CPS_SEC_COUNT] = CPS_KEY_COUNT,
};

const struct cps_config_row *cps_config_section_rows(enum cps_config_section section,
                                                     size_t *n_rows)
{
    if ((unsigned)section >= CPS_SEC_COUNT) {
        *n_rows = 0;
        return cps_config_rows;
    }
    *n_rows = (size_t)(section_first[section + 1] - section_first[section]);
    return &cps_config_rows[section_first[section]];
}

const char *cps_config_row_name(const struct cps_config_row *row)
{
    if (row->type == CPS_CFG_QUERY)
        return cps_metric_query_key((enum cps_metric)row->metric);
    return row->name;
}

const char *cps_config_key_name(enum cps_config_key key)
{
    return (unsigned)key < CPS_KEY_COUNT ? cps_config_row_name(&cps_config_rows[key]) : NULL;
}

size_t cps_config_section_names(enum cps_config_section section, const char **names,
                                size_t max)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    for (size_t i = 0; i < n && i < max; i++)
        names[i] = cps_config_row_name(&rows[i]);
    return n < max ? n : max;
}

const char *cps_config_enum_name(const struct cps_config_row *row, int value)
{
    return value >= 0 && (size_t)value < row->n_names ? row->names[value] : row->names[0];
}

void *cps_config_field(const struct cps_config_row *row, void *base)
{
    return row->offset == CPS_CFG_NO_FIELD ? NULL : (char *)base + row->offset;
}

const void *cps_config_cfield(const struct cps_config_row *row, const void *base)
{
    return row->offset == CPS_CFG_NO_FIELD ? NULL : (const char *)base + row->offset;
}

static int is_string_row(const struct cps_config_row *row)
{
    return row->type == CPS_CFG_STRING || row->type == CPS_CFG_QUERY;
}

/* Enum fields are C enums: int sized on every ABI we build for. */
_Static_assert(sizeof(enum cps_routing) == sizeof(int), "enum fields are int sized");

int cps_config_section_defaults(enum cps_config_section section, void *base)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    for (size_t i = 0; i < n; i++) {
        void *field = cps_config_field(&rows[i], base);
        if (!field)
            continue;
        switch (rows[i].type) {
        case CPS_CFG_INT32: *(int32_t *)field = (int32_t)rows[i].def; break;
        case CPS_CFG_NUMBER:
        case CPS_CFG_DURATION_MS:
        case CPS_CFG_DURATION_S: *(double *)field = rows[i].def; break;
        case CPS_CFG_BOOL:
        case CPS_CFG_ENUM: *(int *)field = (int)rows[i].def; break;
        case CPS_CFG_DURATION: *(int64_t *)field = (int64_t)rows[i].def; break;
        case CPS_CFG_STRING:
        case CPS_CFG_QUERY: {
            char **slot = field, *copy = NULL;
            if (rows[i].def_text && !(copy = strdup(rows[i].def_text)))
                return -1;
            free(*slot);
            *slot = copy;
            break;
        }
        default: break; /* custom: the section walker's own default */
        }
    }
    return 0;
}

void cps_config_section_release(enum cps_config_section section, void *base)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    for (size_t i = 0; i < n; i++) {
        char **slot = cps_config_field(&rows[i], base);
        if (slot && is_string_row(&rows[i])) {
            free(*slot);
            *slot = NULL;
        }
    }
}

static int string_equal(const void *x, const void *y)
{
    const char *s = *(const char *const *)x, *t = *(const char *const *)y;
    return s == t || (s && t && !strcmp(s, t));
}

/* Two behavior rules, row by row, and their policies item by item. */
static int rules_equal(const struct cps_scaling_rules *a, const struct cps_scaling_rules *b)
{
    size_t n_rules, n_items;
    const struct cps_config_row *rules = cps_config_section_rows(CPS_SEC_RULES, &n_rules);
    const struct cps_config_row *items = cps_config_section_rows(CPS_SEC_POLICY_ITEM, &n_items);
    for (size_t i = 0; i < n_rules; i++)
        if (!cps_config_field_equal(&rules[i], a, b))
            return 0;
    if (a->n_policies != b->n_policies)
        return 0;
    for (int p = 0; p < a->n_policies && p < CPS_MAX_SCALING_POLICIES; p++)
        for (size_t i = 0; i < n_items; i++)
            if (!cps_config_field_equal(&items[i], &a->policies[p], &b->policies[p]))
                return 0;
    return 1;
}

int cps_config_field_equal(const struct cps_config_row *row, const void *a, const void *b)
{
    const void *x = cps_config_cfield(row, a), *y = cps_config_cfield(row, b);
    if (!x)
        return 1; /* a mapping: compared through its own rows */
    switch (row->type) {
    case CPS_CFG_INT32: return *(const int32_t *)x == *(const int32_t *)y;
    case CPS_CFG_NUMBER:
    case CPS_CFG_DURATION_MS:
    case CPS_CFG_DURATION_S: return *(const double *)x == *(const double *)y;
    case CPS_CFG_BOOL:
    case CPS_CFG_ENUM: return *(const int *)x == *(const int *)y;
    case CPS_CFG_DURATION: return *(const int64_t *)x == *(const int64_t *)y;
    case CPS_CFG_STRING:
    case CPS_CFG_QUERY: return string_equal(x, y);
    case CPS_CFG_CUSTOM:
        if (row->section == CPS_SEC_CAPACITY) /* rps_per_pod */
            return *(const double *)x == *(const double *)y;
        if (row->section == CPS_SEC_BEHAVIOR)
            return rules_equal(x, y);
        return string_equal(x, y); /* deployment: the target's name */
    }
    return 1;
}

/* Bytes of a field of each type (custom rows: rps_per_pod is a double). */
static size_t field_size(const struct cps_config_row *row)
{
    switch (row->type) {
    case CPS_CFG_INT32: return sizeof(int32_t);
    case CPS_CFG_NUMBER:
    case CPS_CFG_DURATION_MS:
    case CPS_CFG_DURATION_S: return sizeof(double);
    case CPS_CFG_BOOL:
    case CPS_CFG_ENUM: return sizeof(int);
    case CPS_CFG_DURATION: return sizeof(int64_t);
    case CPS_CFG_CUSTOM: return row->section == CPS_SEC_CAPACITY ? sizeof(double) : 0;
    default: return 0; /* strings and queries are not settings */
    }
}

void cps_config_section_fold(enum cps_config_section section, const void *base,
                             cps_config_fold_cb fold, void *ctx)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    for (size_t i = 0; i < n; i++) {
        const void *field = cps_config_cfield(&rows[i], base);
        if (!field)
            continue;
        if (section == CPS_SEC_BEHAVIOR) {
            const struct cps_scaling_rules *r = field;
            cps_config_section_fold(CPS_SEC_RULES, r, fold, ctx);
            fold(ctx, &r->n_policies, sizeof r->n_policies);
            for (int p = 0; p < r->n_policies && p < CPS_MAX_SCALING_POLICIES; p++)
                cps_config_section_fold(CPS_SEC_POLICY_ITEM, &r->policies[p], fold, ctx);
        } else if (field_size(&rows[i]) > 0) {
            fold(ctx, field, field_size(&rows[i]));
        }
    }
}

void cps_config_target_fold(const struct cps_target *t, cps_config_fold_cb fold, void *ctx)
{
    static const enum cps_config_section in_target[] = {
        CPS_SEC_TARGET, CPS_SEC_SLO, CPS_SEC_COST, CPS_SEC_CAPACITY, CPS_SEC_MISSING,
    };
    for (size_t i = 0; i < ARRAY_LEN(in_target); i++)
        cps_config_section_fold(in_target[i], t, fold, ctx);
    cps_config_section_fold(CPS_SEC_POLICY, &t->policy, fold, ctx);
    cps_config_section_fold(CPS_SEC_BEHAVIOR, &t->behavior, fold, ctx);
    fold(ctx, &t->capacity_auto, sizeof t->capacity_auto);
    fold(ctx, &t->on_missing, sizeof t->on_missing);
}
