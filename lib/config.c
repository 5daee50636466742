/*
 * config.yaml -> struct cps_config. The contract is in config.h.
 *
 * Two passes. First the bytes become a small tree of nodes that remember
 * where they were written (libyaml's event API). Aliases are refused, and
 * depth and node count are capped, so no input can blow the stack or the
 * memory. Then a schema walk checks every key against the key tables below
 * and fills the structs, so every error can say file:line:col. JSON targets
 * (`cpscale decide`) are turned into the same tree, without positions, and
 * go through the same walk, so YAML and JSON accept exactly the same keys.
 */
#include "config.h"
#include "duration.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* ---- limits and built-in defaults ---------------------------------------- */

#define CFG_PATH_MAX 256          /* "targets[12].behavior.scaleUp.policies[3].value" */
#define CFG_SHOW_MAX 40           /* bytes of an offending value quoted in a message */
#define CFG_MAX_KEYS 32           /* keys in the largest schema mapping */
#define CFG_MAX_POLICY_WINDOW_S 3600 /* HPA: stabilizationWindowSeconds <= 1 h */
#define CFG_MAX_POLICY_PERIOD_S 1800 /* HPA: periodSeconds <= 30 min */
#define CFG_QUANTILE_MIN 0.5
#define CFG_QUANTILE_MAX 0.9999
#define CFG_LEADER_JITTER 1.2     /* client-go JitterFactor: renew_deadline > 1.2 x retry_period */
#define CFG_DNS_LABEL_MAX 63
#define CFG_DNS_SUBDOMAIN_MAX 253
#define CFG_PORT_MAX 65535
#define CFG_INHERITED_MAX_BYTES (64u << 20) /* strings copied from defaults: into all targets */

#define MS_PER_S 1000
#define MS_PER_MIN (60 * MS_PER_S)
#define MS_PER_HOUR (60 * MS_PER_MIN)

#define DEF_INTERVAL_MS (15 * MS_PER_S)
#define DEF_LISTEN "0.0.0.0:8080"
#define DEF_PROM_URL "http://prometheus.monitoring.svc:9090"
#define DEF_PROM_TIMEOUT_MS (5 * MS_PER_S)
#define DEF_PROM_NAMESPACE_LABEL "namespace"
#define DEF_PROM_DEPLOYMENT_LABEL "deployment"
#define DEF_PROM_MAX_STALENESS_MS (5 * MS_PER_MIN)
#define DEF_LEASE_NAMESPACE "cpscale"
#define DEF_LEASE_NAME "cpscale-leader"
#define DEF_LEASE_DURATION_MS (15 * MS_PER_S)
#define DEF_RENEW_DEADLINE_MS (10 * MS_PER_S)
#define DEF_RETRY_PERIOD_MS (2 * MS_PER_S)
#define DEF_MIN_REPLICAS 1
#define DEF_MAX_REPLICAS 100
#define DEF_SLO_P95_MS 100.0
#define DEF_POD_HOUR_USD 0.05
#define DEF_HEADROOM_QUANTILE 0.99
#define DEF_SCALE_DOWN_QUANTILE 0.999
#define DEF_SCALE_DOWN_WINDOW_S 120
#define DEF_STARTUP_MS (30 * MS_PER_S)
#define DEF_METRICS_LAG_MS (15 * MS_PER_S)
#define DEF_VOLATILITY_HALFLIFE_MS (6 * (int64_t)MS_PER_HOUR)
#define DEF_SIM_SERVICE_RATE 100.0
#define DEF_SIM_BASE_LATENCY_MS 20.0
#define DEF_SIM_STARTUP_S 30.0
#define DEF_SIM_PRICE 0.05
#define DEF_SIM_SCALE 1.0
#define DEF_SIM_INTERVAL_S 15.0
#define DEF_SIM_WINDOW_S 60.0
#define DEF_SIM_LAG_S 15.0
#define DEF_SIM_HPA_TARGET 0.7

/* Deployment pods are named <deployment>-<replicaset hash>-<pod hash>. */
#define POD_TO_DEPLOYMENT(expr)                                                \
    "label_replace(" expr ", \"deployment\", \"$1\", \"pod\", \"(.+)-[a-z0-9]+-[a-z0-9]+\")"

/* Cluster-wide queries; each returns one series per (namespace, deployment). */
#define DEF_QUERY_QPS                                                          \
    "sum by (namespace, deployment) ("                                         \
    POD_TO_DEPLOYMENT("rate(http_requests_total[1m])") ")"
#define DEF_QUERY_P95_MS                                                       \
    "1000 * histogram_quantile(0.95, sum by (namespace, deployment, le) ("     \
    POD_TO_DEPLOYMENT("rate(http_request_duration_seconds_bucket[1m])") "))"
#define DEF_QUERY_CPU_UTILIZATION                                              \
    "sum by (namespace, deployment) ("                                         \
    POD_TO_DEPLOYMENT("rate(container_cpu_usage_seconds_total{container!=\"\", container!=\"POD\"}[1m])") \
    ") / sum by (namespace, deployment) ("                                     \
    POD_TO_DEPLOYMENT("kube_pod_container_resource_requests{resource=\"cpu\"}") ")"
#define DEF_QUERY_READY_REPLICAS                                               \
    "sum by (namespace, deployment) (kube_deployment_status_replicas_ready)"
#define DEF_QUERY_COST_PER_POD_HOUR                                            \
    "avg by (namespace, deployment) ("                                         \
    POD_TO_DEPLOYMENT("sum by (namespace, pod) (container_cpu_allocation * on(node) group_left() node_cpu_hourly_cost) + sum by (namespace, pod) (container_memory_allocation_bytes / 1024^3 * on(node) group_left() node_ram_hourly_cost)") \
    ")"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- small string helpers ------------------------------------------------ */

static char *str_dup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

/* Replace *slot with a copy of s (NULL stays NULL). -1 on allocation failure,
 * leaving *slot unchanged. */
static int str_set(char **slot, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = str_dup(s)))
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_lower_alnum(int c) { return (c >= 'a' && c <= 'z') || is_digit(c); }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* ---- durations ----------------------------------------------------------- */

#define DURATION_TEXT_MAX CPS_DURATION_TEXT_MAX

/* ---- built-in defaults --------------------------------------------------- */

static void queries_release(struct cps_queries *q)
{
    free(q->qps);
    free(q->p95_ms);
    free(q->cpu_utilization);
    free(q->ready_replicas);
    free(q->cost_per_pod_hour);
    memset(q, 0, sizeof *q);
}

/* Deep copy; on failure dst owns nothing. */
static int queries_copy(struct cps_queries *dst, const struct cps_queries *src)
{
    memset(dst, 0, sizeof *dst);
    if ((src->qps && !(dst->qps = str_dup(src->qps))) ||
        (src->p95_ms && !(dst->p95_ms = str_dup(src->p95_ms))) ||
        (src->cpu_utilization && !(dst->cpu_utilization = str_dup(src->cpu_utilization))) ||
        (src->ready_replicas && !(dst->ready_replicas = str_dup(src->ready_replicas))) ||
        (src->cost_per_pod_hour && !(dst->cost_per_pod_hour = str_dup(src->cost_per_pod_hour)))) {
        queries_release(dst);
        return -1;
    }
    return 0;
}

void cps_target_release(struct cps_target *target)
{
    if (!target)
        return;
    free(target->kind);
    free(target->api_version);
    free(target->namespace);
    free(target->name);
    target->kind = target->api_version = target->namespace = target->name = NULL;
    queries_release(&target->queries);
}

int cps_target_copy(struct cps_target *dst, const struct cps_target *src)
{
    *dst = *src;
    dst->kind = dst->api_version = dst->namespace = dst->name = NULL;
    memset(&dst->queries, 0, sizeof dst->queries);
    if ((src->kind && !(dst->kind = str_dup(src->kind))) ||
        (src->api_version && !(dst->api_version = str_dup(src->api_version))) ||
        (src->namespace && !(dst->namespace = str_dup(src->namespace))) ||
        (src->name && !(dst->name = str_dup(src->name))) ||
        queries_copy(&dst->queries, &src->queries) < 0) {
        cps_target_release(dst);
        return -1;
    }
    return 0;
}

int cps_target_init_defaults(struct cps_target *target)
{
    memset(target, 0, sizeof *target);
    target->min_replicas = DEF_MIN_REPLICAS;
    target->max_replicas = DEF_MAX_REPLICAS;
    target->slo_latency_p95_ms = DEF_SLO_P95_MS;
    target->cost_target_per_million = 0;
    target->cost_max_per_hour = 0;
    target->cost_pod_hour_usd = DEF_POD_HOUR_USD;
    target->capacity_auto = 1;
    target->capacity_rps_per_pod = 0;
    target->paused = 0;
    cps_behavior_default(&target->behavior);
    /* cpscale's own default: its scale-down quantile already absorbs noise,
     * so it holds recommendations 2 minutes instead of HPA's 5 (measured in
     * bench/quality.py: cheaper at the same violations on the real traces) */
    target->behavior.scale_down.stabilization_window_seconds = DEF_SCALE_DOWN_WINDOW_S;
    target->on_missing = CPS_MISSING_HOLD;
    target->fallback_replicas = 0;
    target->policy.headroom_quantile = DEF_HEADROOM_QUANTILE;
    target->policy.scale_down_quantile = DEF_SCALE_DOWN_QUANTILE;
    target->policy.startup_ms = DEF_STARTUP_MS;
    target->policy.metrics_lag_ms = DEF_METRICS_LAG_MS;
    target->policy.volatility_halflife_ms = DEF_VOLATILITY_HALFLIFE_MS;
    target->policy.seasonality = CPS_SEASONALITY_NONE;
    target->policy.trend = 0;
    if (!(target->kind = str_dup("Deployment")) || !(target->api_version = str_dup("apps/v1"))) {
        cps_target_release(target);
        return -1;
    }
    return 0;
}

int cps_config_init_defaults(struct cps_config *config)
{
    memset(config, 0, sizeof *config);
    config->interval_ms = DEF_INTERVAL_MS;
    config->prometheus.timeout_ms = DEF_PROM_TIMEOUT_MS;
    config->prometheus.max_staleness_ms = DEF_PROM_MAX_STALENESS_MS;
    config->leader_election.enabled = 1;
    config->leader_election.lease_duration_ms = DEF_LEASE_DURATION_MS;
    config->leader_election.renew_deadline_ms = DEF_RENEW_DEADLINE_MS;
    config->leader_election.retry_period_ms = DEF_RETRY_PERIOD_MS;
    config->sim.service_rate = DEF_SIM_SERVICE_RATE;
    config->sim.base_latency_ms = DEF_SIM_BASE_LATENCY_MS;
    config->sim.startup_s = DEF_SIM_STARTUP_S;
    config->sim.price = DEF_SIM_PRICE;
    config->sim.scale = DEF_SIM_SCALE;
    config->sim.routing = CPS_ROUTING_RANDOM;
    config->sim.interval_s = DEF_SIM_INTERVAL_S;
    config->sim.window_s = DEF_SIM_WINDOW_S;
    config->sim.lag_s = DEF_SIM_LAG_S;
    config->sim.hpa_target = DEF_SIM_HPA_TARGET;
    if (cps_target_init_defaults(&config->defaults) < 0)
        return -1;
    if (!(config->listen = str_dup(DEF_LISTEN)) ||
        !(config->prometheus.url = str_dup(DEF_PROM_URL)) ||
        !(config->prometheus.namespace_label = str_dup(DEF_PROM_NAMESPACE_LABEL)) ||
        !(config->prometheus.deployment_label = str_dup(DEF_PROM_DEPLOYMENT_LABEL)) ||
        !(config->queries.qps = str_dup(DEF_QUERY_QPS)) ||
        !(config->queries.p95_ms = str_dup(DEF_QUERY_P95_MS)) ||
        !(config->queries.cpu_utilization = str_dup(DEF_QUERY_CPU_UTILIZATION)) ||
        !(config->queries.ready_replicas = str_dup(DEF_QUERY_READY_REPLICAS)) ||
        !(config->queries.cost_per_pod_hour = str_dup(DEF_QUERY_COST_PER_POD_HOUR)) ||
        !(config->leader_election.lease_namespace = str_dup(DEF_LEASE_NAMESPACE)) ||
        !(config->leader_election.lease_name = str_dup(DEF_LEASE_NAME)))
        return -1;
    return 0;
}

static void headers_release(struct cps_prometheus_config *prom)
{
    for (size_t i = 0; i < prom->n_headers; i++) {
        free(prom->header_names[i]);
        free(prom->header_values[i]);
    }
    free(prom->header_names);
    free(prom->header_values);
    prom->header_names = prom->header_values = NULL;
    prom->n_headers = 0;
}

void cps_config_release(struct cps_config *config)
{
    if (!config)
        return;
    free(config->source);
    free(config->listen);
    free(config->prometheus.url);
    free(config->prometheus.bearer_token_file);
    headers_release(&config->prometheus);
    free(config->prometheus.namespace_label);
    free(config->prometheus.deployment_label);
    queries_release(&config->queries);
    free(config->leader_election.lease_namespace);
    free(config->leader_election.lease_name);
    cps_target_release(&config->defaults);
    for (size_t i = 0; i < config->n_targets; i++)
        cps_target_release(&config->targets[i]);
    free(config->targets);
    memset(config, 0, sizeof *config);
}

void cps_config_free(struct cps_config *config)
{
    if (!config)
        return;
    cps_config_release(config);
    free(config);
}

/* ---- the node tree ------------------------------------------------------- */

enum node_type {
    NODE_SCALAR,
    NODE_MAP, /* items hold key, value, key, value, ... */
    NODE_SEQ,
};

struct node {
    enum node_type type;
    int line, col; /* 1-based; 0 when unknown (JSON) */
    int quoted;    /* a string for sure: quoted, block or !!str; never a number, bool or null */
    char *text;    /* scalar bytes, NUL-terminated (may also contain NULs: see len) */
    size_t len;
    struct node **items;
    size_t n_items, cap_items;
};

/* Recursion is bounded: trees are never deeper than CPS_CONFIG_MAX_DEPTH. */
static void node_free(struct node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n_items; i++)
        node_free(node->items[i]);
    free(node->items);
    free(node->text);
    free(node);
}

static struct node *node_new(enum node_type type, int line, int col)
{
    struct node *node = calloc(1, sizeof *node);
    if (node) {
        node->type = type;
        node->line = line;
        node->col = col;
    }
    return node;
}

static int node_set_text(struct node *node, const char *text, size_t len)
{
    node->text = malloc(len + 1);
    if (!node->text)
        return -1;
    if (len)
        memcpy(node->text, text, len);
    node->text[len] = '\0';
    node->len = len;
    return 0;
}

static int node_append(struct node *parent, struct node *child)
{
    if (parent->n_items == parent->cap_items) {
        size_t cap = parent->cap_items ? 2 * parent->cap_items : 8;
        struct node **items = realloc(parent->items, cap * sizeof *items);
        if (!items)
            return -1;
        parent->items = items;
        parent->cap_items = cap;
    }
    parent->items[parent->n_items++] = child;
    return 0;
}

static int is_null(const struct node *node)
{
    if (!node || node->type != NODE_SCALAR || node->quoted)
        return 0;
    const char *t = node->text;
    return node->len == 0 || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
           !strcmp(t, "NULL");
}

/* libyaml marks are size_t and 0-based; ours are int and 1-based. */
static int mark_int(size_t zero_based)
{
    return zero_based >= (size_t)INT_MAX ? INT_MAX : (int)zero_based + 1;
}

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

/*
 * Accept the standard tags that agree with the node's kind (so `!!str 5` is
 * the string "5") and refuse everything else: a custom tag means the author
 * expects some processing we do not do.
 */
static int check_tag(const char *tag, enum node_type type, int *as_string)
{
    *as_string = 0;
    if (!tag)
        return 0;
    if (!strcmp(tag, "!") || !strcmp(tag, YAML_TAG_PREFIX "str")) {
        *as_string = 1;
        return type == NODE_SCALAR ? 0 : -1;
    }
    if (!strcmp(tag, YAML_TAG_PREFIX "int") || !strcmp(tag, YAML_TAG_PREFIX "float") ||
        !strcmp(tag, YAML_TAG_PREFIX "bool") || !strcmp(tag, YAML_TAG_PREFIX "null"))
        return type == NODE_SCALAR ? 0 : -1;
    if (!strcmp(tag, YAML_TAG_PREFIX "map"))
        return type == NODE_MAP ? 0 : -1;
    if (!strcmp(tag, YAML_TAG_PREFIX "seq"))
        return type == NODE_SEQ ? 0 : -1;
    return -1;
}

/* Line and column of a byte offset, counting characters as libyaml does. */
static void offset_position(const char *bytes, size_t len, size_t offset, int *line, int *col)
{
    int l = 1, c = 1;
    if (offset > len)
        offset = len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char b = (unsigned char)bytes[i];
        if (b == '\n' || (b == '\r' && (i + 1 >= len || bytes[i + 1] != '\n'))) {
            if (l < INT_MAX)
                l++;
            c = 1;
        } else if ((b & 0xC0) != 0x80 && b != '\r' && c < INT_MAX) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* Turn libyaml's error into ours, at the position libyaml noticed it. */
static int yaml_error(const yaml_parser_t *parser, const char *bytes, size_t len,
                      const char *source, struct cps_err *err)
{
    int line, col;
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return cps_err_set(err, source, 0, 0, "out of memory while parsing YAML");
    case YAML_READER_ERROR:
        offset_position(bytes, len, parser->problem_offset, &line, &col);
        if (parser->problem_value != -1)
            return cps_err_set(err, source, line, col, "invalid input: %s (#%X)",
                               parser->problem ? parser->problem : "unreadable",
                               (unsigned)parser->problem_value);
        return cps_err_set(err, source, line, col, "invalid input: %s",
                           parser->problem ? parser->problem : "unreadable");
    default:
        line = mark_int(parser->problem_mark.line);
        col = mark_int(parser->problem_mark.column);
        if (parser->context)
            return cps_err_set(err, source, line, col, "invalid YAML: %s %s at line %d, column %d",
                               parser->problem ? parser->problem : "syntax error", parser->context,
                               mark_int(parser->context_mark.line),
                               mark_int(parser->context_mark.column));
        return cps_err_set(err, source, line, col, "invalid YAML: %s",
                           parser->problem ? parser->problem : "syntax error");
    }
}

/*
 * Parse one YAML document into a node tree (*out is NULL for an empty
 * stream). Iterative, with an explicit stack capped at CPS_CONFIG_MAX_DEPTH;
 * at most CPS_CONFIG_MAX_NODES nodes; aliases refused (no billion laughs).
 */
static int yaml_tree(const char *bytes, size_t len, const char *source, struct node **out,
                     struct cps_err *err)
{
    yaml_parser_t parser;
    yaml_event_t event;
    struct node *stack[CPS_CONFIG_MAX_DEPTH];
    size_t depth = 0, n_nodes = 0;
    int documents = 0, have_event = 0, done = 0;
    struct node *root = NULL;

    *out = NULL;
    if (!yaml_parser_initialize(&parser))
        return cps_err_set(err, source, 0, 0, "out of memory while parsing YAML");
    yaml_parser_set_input_string(&parser, (const unsigned char *)bytes, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &event)) {
            yaml_error(&parser, bytes, len, source, err);
            goto fail;
        }
        have_event = 1;
        int line = mark_int(event.start_mark.line), col = mark_int(event.start_mark.column);
        enum node_type type = NODE_SCALAR;
        const char *tag = NULL;
        switch (event.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                cps_err_set(err, source, line, col,
                            "a config is one YAML document; found a second one");
                goto fail;
            }
            break;
        case YAML_ALIAS_EVENT:
            cps_err_set(err, source, line, col,
                        "aliases (*%.*s) are not supported; write the value out", CFG_SHOW_MAX,
                        (const char *)event.data.alias.anchor);
            goto fail;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (event.type == YAML_SCALAR_EVENT) {
                tag = (const char *)event.data.scalar.tag;
            } else if (event.type == YAML_SEQUENCE_START_EVENT) {
                type = NODE_SEQ;
                tag = (const char *)event.data.sequence_start.tag;
            } else {
                type = NODE_MAP;
                tag = (const char *)event.data.mapping_start.tag;
            }
            int as_string;
            if (check_tag(tag, type, &as_string) < 0) {
                cps_err_set(err, source, line, col, "unsupported YAML tag \"%.*s\"", CFG_SHOW_MAX,
                            tag);
                goto fail;
            }
            if (type != NODE_SCALAR && depth == CPS_CONFIG_MAX_DEPTH) {
                cps_err_set(err, source, line, col, "nested deeper than %d levels",
                            CPS_CONFIG_MAX_DEPTH);
                goto fail;
            }
            if (++n_nodes > CPS_CONFIG_MAX_NODES) {
                cps_err_set(err, source, line, col, "more than %d values in one file",
                            CPS_CONFIG_MAX_NODES);
                goto fail;
            }
            struct node *node = node_new(type, line, col);
            if (!node) {
                cps_err_set(err, source, line, col, "out of memory");
                goto fail;
            }
            if (type == NODE_SCALAR) {
                node->quoted = as_string || (event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
                                             event.data.scalar.style != YAML_ANY_SCALAR_STYLE);
                if (tag && !as_string)
                    node->quoted = 0; /* !!int "5" is the number 5 */
                if (node_set_text(node, (const char *)event.data.scalar.value,
                                  event.data.scalar.length) < 0) {
                    node_free(node);
                    cps_err_set(err, source, line, col, "out of memory");
                    goto fail;
                }
            }
            if (depth == 0) {
                root = node; /* one document, one root */
            } else if (node_append(stack[depth - 1], node) < 0) {
                node_free(node);
                cps_err_set(err, source, line, col, "out of memory");
                goto fail;
            }
            if (type != NODE_SCALAR)
                stack[depth++] = node;
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&event);
        have_event = 0;
    }
    yaml_parser_delete(&parser);
    *out = root;
    return 0;

fail:
    if (have_event)
        yaml_event_delete(&event);
    yaml_parser_delete(&parser);
    node_free(root);
    return -1;
}

/*
 * A jansson value as a node tree without positions: strings become quoted
 * scalars (so "5" is not a number, as in YAML), numbers, true, false and null
 * plain ones. Depth is capped like YAML's.
 */
static struct node *json_node(const json_t *value, size_t depth, size_t *n_nodes, int *too_deep)
{
    if (depth >= CPS_CONFIG_MAX_DEPTH || ++*n_nodes > CPS_CONFIG_MAX_NODES) {
        *too_deep = 1;
        return NULL;
    }
    char number[64];
    struct node *node = NULL;
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        if (!(node = node_new(NODE_MAP, 0, 0)))
            return NULL;
        json_object_foreach((json_t *)value, key, member) {
            struct node *k = node_new(NODE_SCALAR, 0, 0);
            if (!k || node_append(node, k) < 0) {
                node_free(k);
                goto fail;
            }
            k->quoted = 1;
            if (node_set_text(k, key, strlen(key)) < 0)
                goto fail;
            struct node *v = json_node(member, depth + 1, n_nodes, too_deep);
            if (!v || node_append(node, v) < 0) {
                node_free(v);
                goto fail;
            }
        }
        return node;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        if (!(node = node_new(NODE_SEQ, 0, 0)))
            return NULL;
        json_array_foreach(value, i, item) {
            struct node *v = json_node(item, depth + 1, n_nodes, too_deep);
            if (!v || node_append(node, v) < 0) {
                node_free(v);
                goto fail;
            }
        }
        return node;
    }
    case JSON_STRING:
        if (!(node = node_new(NODE_SCALAR, 0, 0)))
            return NULL;
        node->quoted = 1;
        if (node_set_text(node, json_string_value(value), json_string_length(value)) < 0)
            goto fail;
        return node;
    case JSON_INTEGER:
        snprintf(number, sizeof number, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        break;
    case JSON_REAL:
        snprintf(number, sizeof number, "%.17g", json_real_value(value));
        break;
    case JSON_TRUE:
        snprintf(number, sizeof number, "true");
        break;
    case JSON_FALSE:
        snprintf(number, sizeof number, "false");
        break;
    case JSON_NULL:
    default:
        number[0] = '\0';
        break;
    }
    if (!(node = node_new(NODE_SCALAR, 0, 0)))
        return NULL;
    if (node_set_text(node, number, strlen(number)) < 0)
        goto fail;
    return node;

fail:
    node_free(node);
    return NULL;
}

/* ---- the schema walk: messages ------------------------------------------- */

struct walk {
    const char *source;
    struct cps_err *err;
};

/* Where a value was set, for checks that involve two keys. */
struct mark {
    int line, col;
    int own; /* set in the body being read (not inherited from defaults:) */
};

struct target_marks {
    struct mark min_replicas, max_replicas, fallback;
};

static int vfail_pos(const struct walk *w, int line, int col, const char *fmt, va_list ap)
{
    char message[CPS_ERR_MESSAGE_MAX];
    vsnprintf(message, sizeof message, fmt, ap);
    return cps_err_set(w->err, w->source, line, col, "%s", message);
}

static int fail_pos(const struct walk *w, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_pos(const struct walk *w, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_pos(w, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_at(const struct walk *w, const struct node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(const struct walk *w, const struct node *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_pos(w, node ? node->line : 0, node ? node->col : 0, fmt, ap);
    va_end(ap);
    return -1;
}

/* A scalar's text for a message: "abc", cut at CFG_SHOW_MAX bytes (never
 * inside a UTF-8 sequence), control bytes and '"' as '?'. */
static const char *show_text(const struct node *node, char *buf, size_t size)
{
    char text[CFG_SHOW_MAX + 4];
    size_t n = node->len < CFG_SHOW_MAX ? node->len : CFG_SHOW_MAX;
    if (n < node->len)
        while (n > 0 && ((unsigned char)node->text[n] & 0xC0) == 0x80)
            n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)node->text[i];
        text[i] = (c < 0x20 || c == 0x7F || c == '"') ? '?' : (char)c;
    }
    snprintf(text + n, sizeof text - n, "%s", n < node->len ? "..." : "");
    snprintf(buf, size, "\"%s\"", text);
    return buf;
}

/* A value as a message shows it: "abc", the string "5" (quoted: never a
 * number), null, a mapping, a list. */
static const char *show(const struct node *node, char *buf, size_t size)
{
    if (node->type == NODE_MAP)
        return "a mapping";
    if (node->type == NODE_SEQ)
        return "a list";
    if (is_null(node))
        return "null";
    if (!node->quoted)
        return show_text(node, buf, size);
    char text[CFG_SHOW_MAX + 8];
    snprintf(buf, size, "the string %s", show_text(node, text, sizeof text));
    return buf;
}

#define SHOW_MAX (CFG_SHOW_MAX + 32)

/* A path that does not fit ends in "..." (only absurd nesting gets there). */
static void path_fit(char *buf, size_t size, int written)
{
    if ((written < 0 || (size_t)written >= size) && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

static void path_key(char *buf, size_t size, const char *parent, const char *key)
{
    int n;
    if (!parent || !*parent)
        n = snprintf(buf, size, "%s", key);
    else
        n = snprintf(buf, size, "%s.%s", parent, key);
    path_fit(buf, size, n);
}

static void path_index(char *buf, size_t size, const char *parent, size_t index_)
{
    path_fit(buf, size, snprintf(buf, size, "%s[%zu]", parent, index_));
}

/* ---- the schema walk: typed values --------------------------------------- */

/*
 * Check that `map` is a mapping (null counts as an empty one) whose keys are
 * all in `keys`, each at most once, and point values[i] (and key_nodes[i], if
 * given) at the value (key) for keys[i], or NULL when absent.
 */
static int map_fields(const struct walk *w, const struct node *map, const char *path,
                      const char *const *keys, size_t n_keys, const struct node **values,
                      const struct node **key_nodes)
{
    const struct node *seen[CFG_MAX_KEYS];
    char shown[SHOW_MAX];
    for (size_t i = 0; i < n_keys; i++) {
        values[i] = NULL;
        seen[i] = NULL;
        if (key_nodes)
            key_nodes[i] = NULL;
    }
    if (is_null(map))
        return 0;
    if (map->type != NODE_MAP)
        return fail_at(w, map, "%s: expected a mapping, got %s", path,
                       show(map, shown, sizeof shown));
    for (size_t p = 0; p + 1 < map->n_items; p += 2) {
        const struct node *key = map->items[p];
        if (key->type != NODE_SCALAR)
            return fail_at(w, key, "%s: keys must be strings, got %s", path[0] ? path : "config",
                           show(key, shown, sizeof shown));
        size_t k = 0;
        while (k < n_keys && (strlen(keys[k]) != key->len || memcmp(keys[k], key->text, key->len)))
            k++;
        if (k == n_keys) {
            char expected[CPS_ERR_MESSAGE_MAX / 2];
            size_t used = 0;
            expected[0] = '\0';
            for (size_t i = 0; i < n_keys && used < sizeof expected; i++)
                used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s",
                                         i ? ", " : "", keys[i]);
            return fail_at(w, key, "unknown key %s in %s (expected one of: %s)",
                           show_text(key, shown, sizeof shown), path[0] ? path : "the top level",
                           expected);
        }
        if (seen[k]) {
            if (seen[k]->line > 0)
                return fail_at(w, key, "duplicate key \"%s\" in %s (first at line %d, column %d)",
                               keys[k], path[0] ? path : "the top level", seen[k]->line,
                               seen[k]->col);
            return fail_at(w, key, "duplicate key \"%s\" in %s", keys[k],
                           path[0] ? path : "the top level");
        }
        seen[k] = key;
        values[k] = map->items[p + 1];
        if (key_nodes)
            key_nodes[k] = key;
    }
    return 0;
}

/* A plain scalar's text as the number parsers see it; NULL if not one. */
static const char *plain_text(const struct node *node)
{
    if (node->type != NODE_SCALAR || node->quoted || is_null(node) ||
        strlen(node->text) != node->len)
        return NULL;
    return node->text;
}

static int get_int(const struct walk *w, const struct node *node, const char *path, long long lo,
                   long long hi, int32_t *out)
{
    char shown[SHOW_MAX];
    const char *text = plain_text(node);
    const char *p = text;
    if (p && (*p == '-' || *p == '+'))
        p++;
    if (!p || !is_digit((unsigned char)*p))
        return fail_at(w, node, "%s: expected an integer, got %s", path,
                       show(node, shown, sizeof shown));
    for (const char *q = p; *q; q++)
        if (!is_digit((unsigned char)*q))
            return fail_at(w, node, "%s: expected an integer, got %s", path,
                           show(node, shown, sizeof shown));
    errno = 0;
    long long value = strtoll(text, NULL, 10);
    if (errno == ERANGE || value < lo || value > hi)
        return fail_at(w, node, "%s: %s is out of range (%lld..%lld)", path,
                       show(node, shown, sizeof shown), lo, hi);
    *out = (int32_t)value;
    return 0;
}

enum {
    RANGE_LO_OPEN = 1 << 0, /* lo itself is not allowed */
    RANGE_NO_HI = 1 << 1,   /* no upper bound */
    RANGE_HI_OPEN = 1 << 2,
};

/*
 * A finite decimal number (digits, '.', exponent; no hex, nan or inf) in the
 * range [lo, hi] with the bounds opened by `flags`.
 */
static int get_number(const struct walk *w, const struct node *node, const char *path, double lo,
                      double hi, unsigned flags, double *out)
{
    char shown[SHOW_MAX];
    const char *text = plain_text(node);
    int ok = text && *text;
    for (const char *q = text; ok && *q; q++)
        ok = is_digit((unsigned char)*q) || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' ||
             *q == '-';
    char *end = NULL;
    double value = ok ? strtod(text, &end) : 0;
    if (!ok || end == text || *end != '\0')
        return fail_at(w, node, "%s: expected a number, got %s", path,
                       show(node, shown, sizeof shown));
    if (!isfinite(value))
        return fail_at(w, node, "%s: %s is too large", path, show(node, shown, sizeof shown));
    int below = (flags & RANGE_LO_OPEN) ? !(value > lo) : !(value >= lo);
    int above = (flags & RANGE_NO_HI) ? 0 : (flags & RANGE_HI_OPEN) ? !(value < hi) : !(value <= hi);
    if (below || above) {
        const char *lo_op = (flags & RANGE_LO_OPEN) ? ">" : ">=";
        if (flags & RANGE_NO_HI)
            return fail_at(w, node, "%s: %s is out of range (must be %s %g)", path,
                           show(node, shown, sizeof shown), lo_op, lo);
        return fail_at(w, node, "%s: %s is out of range (must be %s %g and %s %g)", path,
                       show(node, shown, sizeof shown), lo_op, lo,
                       (flags & RANGE_HI_OPEN) ? "<" : "<=", hi);
    }
    *out = value;
    return 0;
}

/* YAML 1.1 booleans, in the three spellings the spec lists. */
static int get_bool(const struct walk *w, const struct node *node, const char *path, int *out)
{
    static const char *const truths[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                         "on",   "On",   "ON"};
    static const char *const lies[] = {"false", "False", "FALSE", "no", "No", "NO",
                                       "off",   "Off",   "OFF"};
    char shown[SHOW_MAX];
    const char *text = plain_text(node);
    for (size_t i = 0; text && i < ARRAY_LEN(truths); i++) {
        if (!strcmp(text, truths[i])) {
            *out = 1;
            return 0;
        }
        if (!strcmp(text, lies[i])) {
            *out = 0;
            return 0;
        }
    }
    return fail_at(w, node, "%s: expected true or false, got %s", path,
                   show(node, shown, sizeof shown));
}

static int get_duration(const struct walk *w, const struct node *node, const char *path,
                        int allow_zero, int64_t *out)
{
    char shown[SHOW_MAX];
    int64_t ms;
    if (node->type != NODE_SCALAR || is_null(node) || strlen(node->text) != node->len)
        return fail_at(w, node, "%s: expected a duration like 15s, 5m or 250ms, got %s", path,
                       show(node, shown, sizeof shown));
    if (node->text[0] == '-')
        return fail_at(w, node, "%s: %s is negative", path, show(node, shown, sizeof shown));
    if (cps_duration_parse(node->text, &ms) < 0)
        return fail_at(w, node, "%s: expected a duration like 15s, 5m or 250ms, got %s", path,
                       show(node, shown, sizeof shown));
    if (ms == 0 && !allow_zero)
        return fail_at(w, node, "%s: must be longer than 0, got %s", path,
                       show(node, shown, sizeof shown));
    *out = ms;
    return 0;
}

/* A string value: any scalar but null (the raw text, so `namespace: 123` is
 * "123"). With allow_null, null sets *out to NULL. */
static int get_string(const struct walk *w, const struct node *node, const char *path,
                      int allow_null, char **out)
{
    char shown[SHOW_MAX];
    if (allow_null && is_null(node)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (node->type != NODE_SCALAR || is_null(node))
        return fail_at(w, node, "%s: expected a string, got %s", path,
                       show(node, shown, sizeof shown));
    if (strlen(node->text) != node->len)
        return fail_at(w, node, "%s: contains a NUL character", path);
    if (str_set(out, node->text) < 0)
        return fail_at(w, node, "%s: out of memory", path);
    return 0;
}

static int get_enum(const struct walk *w, const struct node *node, const char *path,
                    const char *const *names, size_t n_names, int *out)
{
    char shown[SHOW_MAX];
    if (node->type == NODE_SCALAR && strlen(node->text) == node->len) {
        for (size_t i = 0; i < n_names; i++) {
            if (!strcmp(node->text, names[i])) {
                *out = (int)i;
                return 0;
            }
        }
    }
    char expected[128];
    size_t used = 0;
    expected[0] = '\0';
    for (size_t i = 0; i < n_names && used < sizeof expected; i++)
        used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s",
                                 i == 0 ? "" : i + 1 == n_names ? " or " : ", ", names[i]);
    return fail_at(w, node, "%s: expected %s, got %s", path, expected,
                   show(node, shown, sizeof shown));
}

/* ---- the schema walk: name checks ---------------------------------------- */

/* RFC 1123 label: what Kubernetes accepts as a namespace. */
static int is_dns_label(const char *s, size_t len)
{
    if (len == 0 || len > CFG_DNS_LABEL_MAX || !is_lower_alnum((unsigned char)s[0]) ||
        !is_lower_alnum((unsigned char)s[len - 1]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_lower_alnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* RFC 1123 subdomain: what Kubernetes accepts as an object name. */
static int is_dns_subdomain(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CFG_DNS_SUBDOMAIN_MAX)
        return 0;
    const char *label = s;
    for (;;) {
        const char *dot = strchr(label, '.');
        size_t n = dot ? (size_t)(dot - label) : strlen(label);
        if (!is_dns_label(label, n))
            return 0;
        if (!dot)
            return 1;
        label = dot + 1;
    }
}

static int is_kind(const char *s)
{
    if (!(s[0] >= 'A' && s[0] <= 'Z') || strlen(s) > CFG_DNS_LABEL_MAX)
        return 0;
    for (; *s; s++)
        if (!is_alpha((unsigned char)*s) && !is_digit((unsigned char)*s))
            return 0;
    return 1;
}

/* "v1" or "group/version". */
static int is_api_version(const char *s)
{
    const char *slash = strchr(s, '/');
    const char *version = slash ? slash + 1 : s;
    if (slash) {
        char group[CFG_DNS_SUBDOMAIN_MAX + 1];
        size_t n = (size_t)(slash - s);
        if (n == 0 || n >= sizeof group)
            return 0;
        memcpy(group, s, n);
        group[n] = '\0';
        if (!is_dns_subdomain(group))
            return 0;
    }
    return is_dns_label(version, strlen(version));
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
static int is_header_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!is_alpha((unsigned char)*s) && !is_digit((unsigned char)*s) &&
            !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

static int is_header_value(const char *s)
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
    return port <= CFG_PORT_MAX;
}

/* Only $namespace and $deployment are substituted; `$1` (label_replace) and
 * a `$` that ends a regex are left alone; any other $word is a typo. */
static int check_placeholders(const struct walk *w, const struct node *node, const char *path,
                              const char *query)
{
    for (const char *p = strchr(query, '$'); p; p = strchr(p + 1, '$')) {
        size_t n = 0;
        while (is_alpha((unsigned char)p[1 + n]) || p[1 + n] == '_' ||
               (n > 0 && is_digit((unsigned char)p[1 + n])))
            n++;
        if (n == 0 || (n == strlen("namespace") && !strncmp(p + 1, "namespace", n)) ||
            (n == strlen("deployment") && !strncmp(p + 1, "deployment", n)))
            continue;
        return fail_at(w, node, "%s: unknown placeholder \"$%.*s\" (use $namespace or $deployment)",
                       path, (int)(n < CFG_SHOW_MAX ? n : CFG_SHOW_MAX), p + 1);
    }
    return 0;
}

/* ---- the schema walk: sections ------------------------------------------- */

enum query_key { QK_QPS, QK_P95, QK_CPU, QK_READY, QK_COST, QK_COUNT };
static const char *const query_keys[QK_COUNT] = {
    [QK_QPS] = "qps",
    [QK_P95] = "p95_ms",
    [QK_CPU] = "cpu_utilization",
    [QK_READY] = "ready_replicas",
    [QK_COST] = "cost_per_pod_hour",
};

static char **query_slot(struct cps_queries *q, int key)
{
    switch (key) {
    case QK_QPS: return &q->qps;
    case QK_P95: return &q->p95_ms;
    case QK_CPU: return &q->cpu_utilization;
    case QK_READY: return &q->ready_replicas;
    default: return &q->cost_per_pod_hour;
    }
}

static const char *query_get(const struct cps_queries *q, int key)
{
    return *query_slot((struct cps_queries *)q, key);
}

/* `queries:`. In a target, null means "the cluster-wide query" (NULL); at
 * the top level it means "the built-in default" (left as it is). */
static int parse_queries(const struct walk *w, const struct node *node, const char *path,
                         int in_target, struct cps_queries *q)
{
    const struct node *v[QK_COUNT];
    char sub[CFG_PATH_MAX];
    if (map_fields(w, node, path, query_keys, QK_COUNT, v, NULL) < 0)
        return -1;
    for (int k = 0; k < QK_COUNT; k++) {
        if (!v[k] || (!in_target && is_null(v[k])))
            continue;
        path_key(sub, sizeof sub, path, query_keys[k]);
        char **slot = query_slot(q, k);
        if (get_string(w, v[k], sub, in_target, slot) < 0)
            return -1;
        if (*slot && !**slot)
            return fail_at(w, v[k], "%s: a query must not be empty", sub);
        if (*slot && check_placeholders(w, v[k], sub, *slot) < 0)
            return -1;
    }
    return 0;
}

enum rules_key { RK_WINDOW, RK_SELECT, RK_POLICIES, RK_COUNT };
static const char *const rules_keys[RK_COUNT] = {
    [RK_WINDOW] = "stabilizationWindowSeconds",
    [RK_SELECT] = "selectPolicy",
    [RK_POLICIES] = "policies",
};
enum policy_item_key { PK_TYPE, PK_VALUE, PK_PERIOD, PK_COUNT };
static const char *const policy_item_keys[PK_COUNT] = {
    [PK_TYPE] = "type",
    [PK_VALUE] = "value",
    [PK_PERIOD] = "periodSeconds",
};
static const char *const select_names[] = {
    [CPS_SELECT_MAX] = "Max",
    [CPS_SELECT_MIN] = "Min",
    [CPS_SELECT_DISABLED] = "Disabled",
};
static const char *const policy_type_names[] = {
    [CPS_SCALING_PODS] = "Pods",
    [CPS_SCALING_PERCENT] = "Percent",
};

/*
 * behavior.scaleUp / scaleDown, HPA autoscaling/v2 shape, over `rules`: keys
 * that are absent keep their value (the Kubernetes default, or what
 * `defaults:` said); a `policies:` list replaces the whole list and must hold
 * 1..CPS_MAX_SCALING_POLICIES entries, as the API server requires.
 */
static int parse_rules(const struct walk *w, const struct node *node, const char *path,
                       struct cps_scaling_rules *rules)
{
    const struct node *v[RK_COUNT];
    char sub[CFG_PATH_MAX], item_path[CFG_PATH_MAX], field[CFG_PATH_MAX], shown[SHOW_MAX];
    if (map_fields(w, node, path, rules_keys, RK_COUNT, v, NULL) < 0)
        return -1;
    if (v[RK_WINDOW]) {
        path_key(sub, sizeof sub, path, rules_keys[RK_WINDOW]);
        if (get_int(w, v[RK_WINDOW], sub, 0, CFG_MAX_POLICY_WINDOW_S,
                    &rules->stabilization_window_seconds) < 0)
            return -1;
    }
    if (v[RK_SELECT]) {
        int select = 0;
        path_key(sub, sizeof sub, path, rules_keys[RK_SELECT]);
        if (get_enum(w, v[RK_SELECT], sub, select_names, ARRAY_LEN(select_names), &select) < 0)
            return -1;
        rules->select_policy = (enum cps_select_policy)select;
    }
    const struct node *list = v[RK_POLICIES];
    if (!list || is_null(list))
        return 0;
    path_key(sub, sizeof sub, path, rules_keys[RK_POLICIES]);
    if (list->type != NODE_SEQ)
        return fail_at(w, list, "%s: expected a list of policies, got %s", sub,
                       show(list, shown, sizeof shown));
    if (list->n_items == 0)
        return fail_at(w, list, "%s: must list at least one policy", sub);
    struct cps_scaling_policy policies[CPS_MAX_SCALING_POLICIES];
    for (size_t i = 0; i < list->n_items; i++) {
        const struct node *item = list->items[i];
        const struct node *f[PK_COUNT];
        path_index(item_path, sizeof item_path, sub, i);
        if (i == CPS_MAX_SCALING_POLICIES)
            return fail_at(w, item, "%s: at most %d policies are allowed", item_path,
                           CPS_MAX_SCALING_POLICIES);
        if (map_fields(w, item, item_path, policy_item_keys, PK_COUNT, f, NULL) < 0)
            return -1;
        for (int k = 0; k < PK_COUNT; k++)
            if (!f[k])
                return fail_at(w, item, "%s: missing %s", item_path, policy_item_keys[k]);
        int type = 0;
        path_key(field, sizeof field, item_path, policy_item_keys[PK_TYPE]);
        if (get_enum(w, f[PK_TYPE], field, policy_type_names, ARRAY_LEN(policy_type_names),
                     &type) < 0)
            return -1;
        policies[i].type = (enum cps_scaling_policy_type)type;
        path_key(field, sizeof field, item_path, policy_item_keys[PK_VALUE]);
        if (get_int(w, f[PK_VALUE], field, 1, INT32_MAX, &policies[i].value) < 0)
            return -1;
        path_key(field, sizeof field, item_path, policy_item_keys[PK_PERIOD]);
        if (get_int(w, f[PK_PERIOD], field, 1, CFG_MAX_POLICY_PERIOD_S,
                    &policies[i].period_seconds) < 0)
            return -1;
    }
    memcpy(rules->policies, policies, list->n_items * sizeof policies[0]);
    rules->n_policies = (int)list->n_items;
    return 0;
}

enum behavior_key { BK_UP, BK_DOWN, BK_COUNT };
static const char *const behavior_keys[BK_COUNT] = {[BK_UP] = "scaleUp", [BK_DOWN] = "scaleDown"};

static int parse_behavior(const struct walk *w, const struct node *node, const char *path,
                          struct cps_behavior *behavior)
{
    const struct node *v[BK_COUNT];
    char sub[CFG_PATH_MAX];
    if (map_fields(w, node, path, behavior_keys, BK_COUNT, v, NULL) < 0)
        return -1;
    if (v[BK_UP]) {
        path_key(sub, sizeof sub, path, behavior_keys[BK_UP]);
        if (parse_rules(w, v[BK_UP], sub, &behavior->scale_up) < 0)
            return -1;
    }
    if (v[BK_DOWN]) {
        path_key(sub, sizeof sub, path, behavior_keys[BK_DOWN]);
        if (parse_rules(w, v[BK_DOWN], sub, &behavior->scale_down) < 0)
            return -1;
    }
    return 0;
}

enum policy_key {
    PL_HEADROOM, PL_SCALE_DOWN, PL_STARTUP, PL_LAG, PL_HALFLIFE, PL_SEASONALITY, PL_TREND, PL_COUNT
};
static const char *const policy_keys[PL_COUNT] = {
    [PL_HEADROOM] = "headroom_quantile",
    [PL_SCALE_DOWN] = "scale_down_quantile",
    [PL_STARTUP] = "startup",
    [PL_LAG] = "metrics_lag",
    [PL_HALFLIFE] = "volatility_halflife",
    [PL_SEASONALITY] = "seasonality",
    [PL_TREND] = "trend",
};
static const char *const seasonality_names[] = {
    [CPS_SEASONALITY_NONE] = "none",
    [CPS_SEASONALITY_DAILY] = "daily",
};

static int parse_policy(const struct walk *w, const struct node *node, const char *path,
                        struct cps_policy_params *policy)
{
    const struct node *v[PL_COUNT];
    char sub[CFG_PATH_MAX];
    if (map_fields(w, node, path, policy_keys, PL_COUNT, v, NULL) < 0)
        return -1;
    for (int k = 0; k < PL_COUNT; k++) {
        if (!v[k])
            continue;
        path_key(sub, sizeof sub, path, policy_keys[k]);
        int rc = 0, value = 0;
        switch (k) {
        case PL_HEADROOM:
            rc = get_number(w, v[k], sub, CFG_QUANTILE_MIN, CFG_QUANTILE_MAX, 0,
                            &policy->headroom_quantile);
            break;
        case PL_SCALE_DOWN:
            rc = get_number(w, v[k], sub, CFG_QUANTILE_MIN, CFG_QUANTILE_MAX, 0,
                            &policy->scale_down_quantile);
            break;
        case PL_STARTUP:
            rc = get_duration(w, v[k], sub, 1, &policy->startup_ms);
            break;
        case PL_LAG:
            rc = get_duration(w, v[k], sub, 1, &policy->metrics_lag_ms);
            break;
        case PL_HALFLIFE:
            rc = get_duration(w, v[k], sub, 0, &policy->volatility_halflife_ms);
            break;
        case PL_SEASONALITY:
            rc = get_enum(w, v[k], sub, seasonality_names, ARRAY_LEN(seasonality_names), &value);
            if (rc == 0)
                policy->seasonality = (enum cps_seasonality)value;
            break;
        default:
            rc = get_bool(w, v[k], sub, &policy->trend);
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

enum target_key {
    TK_NAMESPACE, TK_DEPLOYMENT, TK_KIND, TK_NAME, TK_API_VERSION,
    TK_MIN, TK_MAX, TK_SLO, TK_COST, TK_CAPACITY, TK_PAUSED, TK_QUERIES,
    TK_BEHAVIOR, TK_ON_MISSING, TK_POLICY, TK_COUNT
};
static const char *const target_keys[TK_COUNT] = {
    [TK_NAMESPACE] = "namespace",
    [TK_DEPLOYMENT] = "deployment",
    [TK_KIND] = "kind",
    [TK_NAME] = "name",
    [TK_API_VERSION] = "api_version",
    [TK_MIN] = "min_replicas",
    [TK_MAX] = "max_replicas",
    [TK_SLO] = "slo",
    [TK_COST] = "cost",
    [TK_CAPACITY] = "capacity",
    [TK_PAUSED] = "paused",
    [TK_QUERIES] = "queries",
    [TK_BEHAVIOR] = "behavior",
    [TK_ON_MISSING] = "on_missing_metrics",
    [TK_POLICY] = "policy",
};
enum slo_key { SK_P95, SK_COUNT };
static const char *const slo_keys[SK_COUNT] = {[SK_P95] = "latency_p95_ms"};
enum cost_key { CK_PER_MILLION, CK_MAX_PER_HOUR, CK_POD_HOUR, CK_COUNT };
static const char *const cost_keys[CK_COUNT] = {
    [CK_PER_MILLION] = "target_per_million_requests",
    [CK_MAX_PER_HOUR] = "max_per_hour",
    [CK_POD_HOUR] = "pod_hour_usd",
};
enum capacity_key { CAP_RPS, CAP_COUNT };
static const char *const capacity_keys[CAP_COUNT] = {[CAP_RPS] = "rps_per_pod"};
enum missing_key { MK_FALLBACK, MK_COUNT };
static const char *const missing_keys[MK_COUNT] = {[MK_FALLBACK] = "fallback"};

/* Kinds with a scale subresource whose API group we know. */
static const char *known_api_version(const char *kind)
{
    static const char *const apps_v1[] = {"Deployment", "StatefulSet", "ReplicaSet"};
    for (size_t i = 0; i < ARRAY_LEN(apps_v1); i++)
        if (!strcmp(kind, apps_v1[i]))
            return "apps/v1";
    return NULL;
}

enum body_mode {
    BODY_DEFAULTS, /* `defaults:`: no namespace, deployment, kind, name */
    BODY_TARGET,   /* an entry of `targets:` */
    BODY_JSON,     /* `cpscale decide`'s target: names optional */
};

/* namespace / deployment / kind / name / api_version of a target body. */
static int parse_identity(const struct walk *w, const struct node *const *v,
                          const struct node *const *keys, const char *path,
                          struct cps_target *t)
{
    char sub[CFG_PATH_MAX], shown[SHOW_MAX];
    if (v[TK_NAMESPACE]) {
        path_key(sub, sizeof sub, path, "namespace");
        if (get_string(w, v[TK_NAMESPACE], sub, 0, &t->namespace) < 0)
            return -1;
        if (!is_dns_label(t->namespace, strlen(t->namespace)))
            return fail_at(w, v[TK_NAMESPACE],
                           "%s: %s is not a valid namespace (lowercase letters, digits and '-', "
                           "at most %d)",
                           sub, show(v[TK_NAMESPACE], shown, sizeof shown), CFG_DNS_LABEL_MAX);
    }
    if (v[TK_DEPLOYMENT] && v[TK_NAME])
        return fail_at(w, keys[TK_NAME], "%s: give either deployment or kind and name, not both",
                       path);
    if (v[TK_DEPLOYMENT] && v[TK_KIND] && !(v[TK_KIND]->type == NODE_SCALAR &&
                                             !strcmp(v[TK_KIND]->text, "Deployment")))
        return fail_at(w, keys[TK_DEPLOYMENT],
                       "%s: deployment names a Deployment; with kind, use name", path);
    if (v[TK_KIND]) {
        path_key(sub, sizeof sub, path, "kind");
        if (get_string(w, v[TK_KIND], sub, 0, &t->kind) < 0)
            return -1;
        if (!is_kind(t->kind))
            return fail_at(w, v[TK_KIND], "%s: %s is not a valid kind", sub,
                           show(v[TK_KIND], shown, sizeof shown));
        const char *api = known_api_version(t->kind);
        if (!api && !v[TK_API_VERSION])
            return fail_at(w, v[TK_KIND], "%s: kind \"%s\" needs an api_version (e.g. apps/v1)",
                           sub, t->kind);
        if (api && str_set(&t->api_version, api) < 0)
            return fail_at(w, v[TK_KIND], "%s: out of memory", sub);
    } else if (v[TK_DEPLOYMENT]) {
        if (str_set(&t->kind, "Deployment") < 0 || str_set(&t->api_version, "apps/v1") < 0)
            return fail_at(w, v[TK_DEPLOYMENT], "%s: out of memory", path);
    }
    if (v[TK_API_VERSION]) {
        path_key(sub, sizeof sub, path, "api_version");
        if (get_string(w, v[TK_API_VERSION], sub, 0, &t->api_version) < 0)
            return -1;
        if (!is_api_version(t->api_version))
            return fail_at(w, v[TK_API_VERSION], "%s: %s is not a valid api_version", sub,
                           show(v[TK_API_VERSION], shown, sizeof shown));
    }
    const struct node *name = v[TK_DEPLOYMENT] ? v[TK_DEPLOYMENT] : v[TK_NAME];
    if (name) {
        path_key(sub, sizeof sub, path, v[TK_DEPLOYMENT] ? "deployment" : "name");
        if (get_string(w, name, sub, 0, &t->name) < 0)
            return -1;
        if (!is_dns_subdomain(t->name))
            return fail_at(w, name,
                           "%s: %s is not a valid name (lowercase letters, digits, '-' and '.', "
                           "at most %d)",
                           sub, show(name, shown, sizeof shown), CFG_DNS_SUBDOMAIN_MAX);
    }
    return 0;
}

static void mark_set(struct mark *m, const struct node *node)
{
    m->line = node->line;
    m->col = node->col;
    m->own = 1;
}

/* The small mappings of a target: slo, cost, capacity, on_missing_metrics. */
static int parse_target_maps(const struct walk *w, const struct node *const *v, const char *path,
                             struct cps_target *t, struct target_marks *marks)
{
    char sub[CFG_PATH_MAX], field[CFG_PATH_MAX], shown[SHOW_MAX];
    if (v[TK_SLO]) {
        const struct node *f[SK_COUNT];
        path_key(sub, sizeof sub, path, "slo");
        if (map_fields(w, v[TK_SLO], sub, slo_keys, SK_COUNT, f, NULL) < 0)
            return -1;
        path_key(field, sizeof field, sub, slo_keys[SK_P95]);
        if (f[SK_P95] && get_number(w, f[SK_P95], field, 0, 0, RANGE_LO_OPEN | RANGE_NO_HI,
                                    &t->slo_latency_p95_ms) < 0)
            return -1;
    }
    if (v[TK_COST]) {
        const struct node *f[CK_COUNT];
        double *slots[CK_COUNT] = {[CK_PER_MILLION] = &t->cost_target_per_million,
                                   [CK_MAX_PER_HOUR] = &t->cost_max_per_hour,
                                   [CK_POD_HOUR] = &t->cost_pod_hour_usd};
        path_key(sub, sizeof sub, path, "cost");
        if (map_fields(w, v[TK_COST], sub, cost_keys, CK_COUNT, f, NULL) < 0)
            return -1;
        for (int k = 0; k < CK_COUNT; k++) {
            path_key(field, sizeof field, sub, cost_keys[k]);
            if (f[k] && get_number(w, f[k], field, 0, 0, RANGE_NO_HI, slots[k]) < 0)
                return -1;
        }
    }
    if (v[TK_CAPACITY]) {
        const struct node *f[CAP_COUNT];
        path_key(sub, sizeof sub, path, "capacity");
        if (map_fields(w, v[TK_CAPACITY], sub, capacity_keys, CAP_COUNT, f, NULL) < 0)
            return -1;
        path_key(field, sizeof field, sub, capacity_keys[CAP_RPS]);
        if (f[CAP_RPS] && f[CAP_RPS]->type == NODE_SCALAR && !strcmp(f[CAP_RPS]->text, "auto")) {
            t->capacity_auto = 1;
            t->capacity_rps_per_pod = 0;
        } else if (f[CAP_RPS]) {
            const char *text = plain_text(f[CAP_RPS]);
            if (!text || strspn(text, "0123456789.eE+-") != strlen(text))
                return fail_at(w, f[CAP_RPS], "%s: expected auto or a number, got %s", field,
                               show(f[CAP_RPS], shown, sizeof shown));
            if (get_number(w, f[CAP_RPS], field, 0, 0, RANGE_LO_OPEN | RANGE_NO_HI,
                           &t->capacity_rps_per_pod) < 0)
                return -1;
            t->capacity_auto = 0;
        }
    }
    if (v[TK_ON_MISSING]) {
        const struct node *node = v[TK_ON_MISSING];
        path_key(sub, sizeof sub, path, "on_missing_metrics");
        if (node->type == NODE_SCALAR && !strcmp(node->text, "hold")) {
            t->on_missing = CPS_MISSING_HOLD;
            t->fallback_replicas = 0;
            marks->fallback.own = 0;
        } else if (node->type == NODE_MAP) {
            const struct node *f[MK_COUNT];
            if (map_fields(w, node, sub, missing_keys, MK_COUNT, f, NULL) < 0)
                return -1;
            if (!f[MK_FALLBACK])
                return fail_at(w, node, "%s: missing fallback", sub);
            path_key(field, sizeof field, sub, missing_keys[MK_FALLBACK]);
            if (get_int(w, f[MK_FALLBACK], field, 1, CPS_CONFIG_MAX_REPLICAS,
                        &t->fallback_replicas) < 0)
                return -1;
            t->on_missing = CPS_MISSING_FALLBACK;
            mark_set(&marks->fallback, f[MK_FALLBACK]);
        } else {
            return fail_at(w, node, "%s: expected hold or {fallback: N}, got %s", sub,
                           show(node, shown, sizeof shown));
        }
    }
    return 0;
}

/*
 * Apply one target body (a mapping of target keys) over *t, key by key and
 * mapping by mapping, so a target overrides only what it names of what it
 * inherited. `marks` records where min/max/fallback were set.
 */
static int apply_target_body(const struct walk *w, const struct node *node, const char *path,
                             enum body_mode mode, struct cps_target *t, struct target_marks *marks)
{
    const struct node *v[TK_COUNT], *keys[TK_COUNT];
    char sub[CFG_PATH_MAX];
    if (map_fields(w, node, path, target_keys, TK_COUNT, v, keys) < 0)
        return -1;
    if (mode == BODY_DEFAULTS)
        for (int k = TK_NAMESPACE; k <= TK_API_VERSION; k++)
            if (keys[k])
                return fail_at(w, keys[k],
                               "%s: %s is not allowed here: it names one target (put it in "
                               "targets:)",
                               path, target_keys[k]);
    if (parse_identity(w, v, keys, path, t) < 0)
        return -1;
    if (v[TK_MIN]) {
        path_key(sub, sizeof sub, path, "min_replicas");
        if (get_int(w, v[TK_MIN], sub, 1, CPS_CONFIG_MAX_REPLICAS, &t->min_replicas) < 0)
            return -1;
        mark_set(&marks->min_replicas, v[TK_MIN]);
    }
    if (v[TK_MAX]) {
        path_key(sub, sizeof sub, path, "max_replicas");
        if (get_int(w, v[TK_MAX], sub, 1, CPS_CONFIG_MAX_REPLICAS, &t->max_replicas) < 0)
            return -1;
        mark_set(&marks->max_replicas, v[TK_MAX]);
    }
    if (parse_target_maps(w, v, path, t, marks) < 0)
        return -1;
    if (v[TK_PAUSED]) {
        path_key(sub, sizeof sub, path, "paused");
        if (get_bool(w, v[TK_PAUSED], sub, &t->paused) < 0)
            return -1;
    }
    if (v[TK_QUERIES]) {
        path_key(sub, sizeof sub, path, "queries");
        if (parse_queries(w, v[TK_QUERIES], sub, 1, &t->queries) < 0)
            return -1;
    }
    if (v[TK_BEHAVIOR]) {
        path_key(sub, sizeof sub, path, "behavior");
        if (parse_behavior(w, v[TK_BEHAVIOR], sub, &t->behavior) < 0)
            return -1;
    }
    if (v[TK_POLICY]) {
        path_key(sub, sizeof sub, path, "policy");
        if (parse_policy(w, v[TK_POLICY], sub, &t->policy) < 0)
            return -1;
    }
    return 0;
}

/*
 * Checks across keys, once a target is complete (inherited + own keys):
 * names present (for `targets:` entries), min <= max, fallback within them.
 * The error points at the key this body set, when it set one, because that
 * is what the author has to change; otherwise at the target itself.
 */
static int check_target(const struct walk *w, const struct cps_target *t,
                        const struct target_marks *m, const char *path, int need_name, int line,
                        int col)
{
    if (need_name && !t->namespace)
        return fail_pos(w, line, col, "%s: missing namespace", path);
    if (need_name && !t->name)
        return fail_pos(w, line, col, "%s: missing deployment (or kind and name)", path);
    if (t->min_replicas > t->max_replicas) {
        if (m->max_replicas.own || !m->min_replicas.own)
            return fail_pos(w, m->max_replicas.own ? m->max_replicas.line : line,
                            m->max_replicas.own ? m->max_replicas.col : col,
                            "%s.max_replicas (%d) is below min_replicas (%d)", path,
                            t->max_replicas, t->min_replicas);
        return fail_pos(w, m->min_replicas.line, m->min_replicas.col,
                        "%s.min_replicas (%d) is above max_replicas (%d)", path, t->min_replicas,
                        t->max_replicas);
    }
    if (t->on_missing == CPS_MISSING_FALLBACK &&
        (t->fallback_replicas < t->min_replicas || t->fallback_replicas > t->max_replicas)) {
        const struct mark *at = m->fallback.own ? &m->fallback
                                : t->fallback_replicas > t->max_replicas && m->max_replicas.own
                                    ? &m->max_replicas
                                : t->fallback_replicas < t->min_replicas && m->min_replicas.own
                                    ? &m->min_replicas
                                    : NULL;
        return fail_pos(w, at ? at->line : line, at ? at->col : col,
                        "%s.on_missing_metrics.fallback (%d) is outside min_replicas..max_replicas "
                        "(%d..%d)",
                        path, t->fallback_replicas, t->min_replicas, t->max_replicas);
    }
    return 0;
}

enum prom_key { PR_URL, PR_TIMEOUT, PR_TOKEN, PR_HEADERS, PR_LABELS, PR_STALENESS, PR_COUNT };
static const char *const prom_keys[PR_COUNT] = {
    [PR_URL] = "url",
    [PR_TIMEOUT] = "timeout",
    [PR_TOKEN] = "bearer_token_file",
    [PR_HEADERS] = "headers",
    [PR_LABELS] = "labels",
    [PR_STALENESS] = "max_staleness",
};
enum labels_key { LK_NAMESPACE, LK_DEPLOYMENT, LK_COUNT };
static const char *const labels_keys[LK_COUNT] = {
    [LK_NAMESPACE] = "namespace",
    [LK_DEPLOYMENT] = "deployment",
};

/* prometheus.headers: a free-form mapping of HTTP header names to values.
 * Names are tokens and values single lines (no header injection); names
 * compare case-insensitively, as HTTP does. */
static int parse_headers(const struct walk *w, const struct node *node, const char *path,
                         struct cps_prometheus_config *prom)
{
    char sub[CFG_PATH_MAX], shown[SHOW_MAX];
    headers_release(prom);
    if (is_null(node))
        return 0;
    if (node->type != NODE_MAP)
        return fail_at(w, node, "%s: expected a mapping of header names to values, got %s", path,
                       show(node, shown, sizeof shown));
    size_t n = node->n_items / 2;
    if (n > CPS_CONFIG_MAX_HEADERS)
        return fail_at(w, node->items[2 * CPS_CONFIG_MAX_HEADERS], "%s: at most %d headers", path,
                       CPS_CONFIG_MAX_HEADERS);
    if (n == 0)
        return 0;
    if (!(prom->header_names = calloc(n, sizeof *prom->header_names)) ||
        !(prom->header_values = calloc(n, sizeof *prom->header_values)))
        return fail_at(w, node, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const struct node *key = node->items[2 * i], *value = node->items[2 * i + 1];
        prom->n_headers = i + 1;
        if (get_string(w, key, path, 0, &prom->header_names[i]) < 0)
            return -1;
        if (!is_header_name(prom->header_names[i]))
            return fail_at(w, key, "%s: %s is not a valid HTTP header name", path,
                           show(key, shown, sizeof shown));
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(prom->header_names[j], prom->header_names[i]))
                return fail_at(w, key, "duplicate key \"%s\" in %s", prom->header_names[i], path);
        path_key(sub, sizeof sub, path, prom->header_names[i]);
        if (get_string(w, value, sub, 0, &prom->header_values[i]) < 0)
            return -1;
        if (!is_header_value(prom->header_values[i]))
            return fail_at(w, value, "%s: a header value must be one line of text", sub);
    }
    return 0;
}

static int parse_prometheus(const struct walk *w, const struct node *node,
                            struct cps_prometheus_config *prom)
{
    const struct node *v[PR_COUNT];
    char sub[CFG_PATH_MAX], shown[SHOW_MAX];
    const char *path = "prometheus";
    if (map_fields(w, node, path, prom_keys, PR_COUNT, v, NULL) < 0)
        return -1;
    if (v[PR_URL]) {
        path_key(sub, sizeof sub, path, prom_keys[PR_URL]);
        if (get_string(w, v[PR_URL], sub, 0, &prom->url) < 0)
            return -1;
        const char *rest = !strncmp(prom->url, "http://", 7)    ? prom->url + 7
                           : !strncmp(prom->url, "https://", 8) ? prom->url + 8
                                                                : NULL;
        if (!rest || !*rest || !is_token(prom->url))
            return fail_at(w, v[PR_URL], "%s: expected an http:// or https:// URL, got %s", sub,
                           show(v[PR_URL], shown, sizeof shown));
    }
    if (v[PR_TIMEOUT]) {
        path_key(sub, sizeof sub, path, prom_keys[PR_TIMEOUT]);
        if (get_duration(w, v[PR_TIMEOUT], sub, 0, &prom->timeout_ms) < 0)
            return -1;
    }
    if (v[PR_TOKEN]) {
        path_key(sub, sizeof sub, path, prom_keys[PR_TOKEN]);
        if (get_string(w, v[PR_TOKEN], sub, 1, &prom->bearer_token_file) < 0)
            return -1;
        if (prom->bearer_token_file && !*prom->bearer_token_file)
            return fail_at(w, v[PR_TOKEN], "%s: must not be empty", sub);
    }
    if (v[PR_HEADERS]) {
        path_key(sub, sizeof sub, path, prom_keys[PR_HEADERS]);
        if (parse_headers(w, v[PR_HEADERS], sub, prom) < 0)
            return -1;
    }
    if (v[PR_LABELS]) {
        const struct node *f[LK_COUNT];
        char field[CFG_PATH_MAX];
        char **slots[LK_COUNT] = {[LK_NAMESPACE] = &prom->namespace_label,
                                  [LK_DEPLOYMENT] = &prom->deployment_label};
        path_key(sub, sizeof sub, path, prom_keys[PR_LABELS]);
        if (map_fields(w, v[PR_LABELS], sub, labels_keys, LK_COUNT, f, NULL) < 0)
            return -1;
        for (int k = 0; k < LK_COUNT; k++) {
            if (!f[k])
                continue;
            path_key(field, sizeof field, sub, labels_keys[k]);
            if (get_string(w, f[k], field, 0, slots[k]) < 0)
                return -1;
            if (!is_label_name(*slots[k]))
                return fail_at(w, f[k], "%s: %s is not a valid Prometheus label name", field,
                               show(f[k], shown, sizeof shown));
        }
    }
    if (v[PR_STALENESS]) {
        path_key(sub, sizeof sub, path, prom_keys[PR_STALENESS]);
        if (get_duration(w, v[PR_STALENESS], sub, 0, &prom->max_staleness_ms) < 0)
            return -1;
    }
    return 0;
}

enum leader_key { LE_ENABLED, LE_NAMESPACE, LE_NAME, LE_LEASE, LE_RENEW, LE_RETRY, LE_COUNT };
static const char *const leader_keys[LE_COUNT] = {
    [LE_ENABLED] = "enabled",
    [LE_NAMESPACE] = "namespace",
    [LE_NAME] = "name",
    [LE_LEASE] = "lease_duration",
    [LE_RENEW] = "renew_deadline",
    [LE_RETRY] = "retry_period",
};

/* leader_election, with client-go's rules: lease_duration > renew_deadline >
 * 1.2 x retry_period, so a leader that cannot renew stops before it expires. */
static int parse_leader(const struct walk *w, const struct node *node,
                        struct cps_leader_election_config *le)
{
    const struct node *v[LE_COUNT];
    char sub[CFG_PATH_MAX], shown[SHOW_MAX];
    const char *path = "leader_election";
    if (map_fields(w, node, path, leader_keys, LE_COUNT, v, NULL) < 0)
        return -1;
    if (v[LE_ENABLED] && get_bool(w, v[LE_ENABLED], "leader_election.enabled", &le->enabled) < 0)
        return -1;
    if (v[LE_NAMESPACE]) {
        path_key(sub, sizeof sub, path, leader_keys[LE_NAMESPACE]);
        if (get_string(w, v[LE_NAMESPACE], sub, 0, &le->lease_namespace) < 0)
            return -1;
        if (!is_dns_label(le->lease_namespace, strlen(le->lease_namespace)))
            return fail_at(w, v[LE_NAMESPACE], "%s: %s is not a valid namespace", sub,
                           show(v[LE_NAMESPACE], shown, sizeof shown));
    }
    if (v[LE_NAME]) {
        path_key(sub, sizeof sub, path, leader_keys[LE_NAME]);
        if (get_string(w, v[LE_NAME], sub, 0, &le->lease_name) < 0)
            return -1;
        if (!is_dns_subdomain(le->lease_name))
            return fail_at(w, v[LE_NAME], "%s: %s is not a valid Lease name", sub,
                           show(v[LE_NAME], shown, sizeof shown));
    }
    int64_t *durations[] = {[LE_LEASE] = &le->lease_duration_ms,
                            [LE_RENEW] = &le->renew_deadline_ms,
                            [LE_RETRY] = &le->retry_period_ms};
    for (int k = LE_LEASE; k <= LE_RETRY; k++) {
        path_key(sub, sizeof sub, path, leader_keys[k]);
        if (v[k] && get_duration(w, v[k], sub, 0, durations[k]) < 0)
            return -1;
    }
    char lease[DURATION_TEXT_MAX], renew[DURATION_TEXT_MAX], retry[DURATION_TEXT_MAX];
    cps_duration_format(lease, sizeof lease, le->lease_duration_ms);
    cps_duration_format(renew, sizeof renew, le->renew_deadline_ms);
    cps_duration_format(retry, sizeof retry, le->retry_period_ms);
    if (le->renew_deadline_ms >= le->lease_duration_ms)
        return fail_at(w, v[LE_RENEW] ? v[LE_RENEW] : v[LE_LEASE],
                       "leader_election: renew_deadline (%s) must be shorter than "
                       "lease_duration (%s)",
                       renew, lease);
    if ((double)le->renew_deadline_ms <= CFG_LEADER_JITTER * (double)le->retry_period_ms)
        return fail_at(w, v[LE_RETRY] ? v[LE_RETRY] : v[LE_RENEW],
                       "leader_election: renew_deadline (%s) must be longer than %g x "
                       "retry_period (%s)",
                       renew, CFG_LEADER_JITTER, retry);
    return 0;
}

enum sim_key {
    SM_SERVICE_RATE, SM_BASE_LATENCY, SM_STARTUP, SM_PRICE, SM_SCALE, SM_ROUTING,
    SM_INTERVAL, SM_WINDOW, SM_LAG, SM_HPA_TARGET, SM_COUNT
};
static const char *const sim_keys[SM_COUNT] = {
    [SM_SERVICE_RATE] = "service_rate",
    [SM_BASE_LATENCY] = "base_latency",
    [SM_STARTUP] = "startup",
    [SM_PRICE] = "price",
    [SM_SCALE] = "scale",
    [SM_ROUTING] = "routing",
    [SM_INTERVAL] = "interval",
    [SM_WINDOW] = "window",
    [SM_LAG] = "lag",
    [SM_HPA_TARGET] = "hpa_target",
};
static const char *const routing_names[] = {
    [CPS_ROUTING_RANDOM] = "random",
    [CPS_ROUTING_POOLED] = "pooled",
};

/* `sim:` (SIM-MODEL §3, §5). Durations are written like everywhere else and
 * stored in the units struct cps_sim_params uses. */
static int parse_sim(const struct walk *w, const struct node *node, struct cps_sim_params *sim)
{
    const struct node *v[SM_COUNT];
    char sub[CFG_PATH_MAX];
    if (map_fields(w, node, "sim", sim_keys, SM_COUNT, v, NULL) < 0)
        return -1;
    for (int k = 0; k < SM_COUNT; k++) {
        if (!v[k])
            continue;
        path_key(sub, sizeof sub, "sim", sim_keys[k]);
        int64_t ms = 0;
        int rc = 0, routing = 0;
        switch (k) {
        case SM_SERVICE_RATE:
            rc = get_number(w, v[k], sub, 0, 0, RANGE_LO_OPEN | RANGE_NO_HI, &sim->service_rate);
            break;
        case SM_PRICE:
            rc = get_number(w, v[k], sub, 0, 0, RANGE_NO_HI, &sim->price);
            break;
        case SM_SCALE:
            rc = get_number(w, v[k], sub, 0, 0, RANGE_LO_OPEN | RANGE_NO_HI, &sim->scale);
            break;
        case SM_HPA_TARGET:
            rc = get_number(w, v[k], sub, 0, 1, RANGE_LO_OPEN, &sim->hpa_target);
            break;
        case SM_ROUTING:
            rc = get_enum(w, v[k], sub, routing_names, ARRAY_LEN(routing_names), &routing);
            if (rc == 0)
                sim->routing = (enum cps_routing)routing;
            break;
        case SM_BASE_LATENCY:
            if ((rc = get_duration(w, v[k], sub, 1, &ms)) == 0)
                sim->base_latency_ms = (double)ms;
            break;
        case SM_STARTUP:
            if ((rc = get_duration(w, v[k], sub, 1, &ms)) == 0)
                sim->startup_s = (double)ms / MS_PER_S;
            break;
        case SM_INTERVAL:
            if ((rc = get_duration(w, v[k], sub, 0, &ms)) == 0)
                sim->interval_s = (double)ms / MS_PER_S;
            break;
        case SM_WINDOW:
            if ((rc = get_duration(w, v[k], sub, 0, &ms)) == 0)
                sim->window_s = (double)ms / MS_PER_S;
            break;
        default: /* SM_LAG */
            if ((rc = get_duration(w, v[k], sub, 1, &ms)) == 0)
                sim->lag_s = (double)ms / MS_PER_S;
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* For finding duplicate targets: order by (namespace, kind, name), then by
 * position in the array (all pointers point into config->targets). */
static int target_order_cb(const void *a, const void *b)
{
    const struct cps_target *x = *(const struct cps_target *const *)a;
    const struct cps_target *y = *(const struct cps_target *const *)b;
    int c = strcmp(x->namespace, y->namespace);
    if (!c)
        c = strcmp(x->kind, y->kind);
    if (!c)
        c = strcmp(x->name, y->name);
    if (!c)
        c = x < y ? -1 : x > y ? 1 : 0;
    return c;
}

static int same_object(const struct cps_target *x, const struct cps_target *y)
{
    return !strcmp(x->namespace, y->namespace) && !strcmp(x->kind, y->kind) &&
           !strcmp(x->name, y->name);
}

/*
 * Two targets for the same object would fight each other. Report the first
 * repeat in file order, at the repeat, naming the original. O(n log n),
 * since a file may hold many targets.
 */
static int check_duplicate_targets(const struct walk *w, const struct cps_config *config)
{
    size_t n = config->n_targets;
    const struct cps_target **order, *dup = NULL, *first = NULL;
    if (n < 2)
        return 0;
    if (!(order = malloc(n * sizeof *order)))
        return cps_err_set(w->err, w->source, 0, 0, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = &config->targets[i];
    qsort(order, n, sizeof *order, target_order_cb);
    for (size_t i = 1, group = 0; i < n; i++) {
        if (!same_object(order[i - 1], order[i])) {
            group = i;
            continue;
        }
        /* order[group] is the original, order[group + 1] its first repeat */
        if (i == group + 1 && (!dup || order[i] < dup)) {
            dup = order[i];
            first = order[group];
        }
    }
    free(order);
    if (!dup)
        return 0;
    return fail_pos(w, dup->line, dup->col,
                    "targets[%zu]: duplicate target %s/%s %s (first at targets[%zu], line %d)",
                    (size_t)(dup - config->targets), dup->namespace, dup->kind, dup->name,
                    (size_t)(first - config->targets), first->line);
}

enum top_key {
    TOP_INTERVAL, TOP_LISTEN, TOP_PROMETHEUS, TOP_QUERIES, TOP_LEADER, TOP_DEFAULTS,
    TOP_TARGETS, TOP_SIM, TOP_COUNT
};
static const char *const top_keys[TOP_COUNT] = {
    [TOP_INTERVAL] = "interval",
    [TOP_LISTEN] = "listen",
    [TOP_PROMETHEUS] = "prometheus",
    [TOP_QUERIES] = "queries",
    [TOP_LEADER] = "leader_election",
    [TOP_DEFAULTS] = "defaults",
    [TOP_TARGETS] = "targets",
    [TOP_SIM] = "sim",
};

/* Bytes of strings a copy of `t` allocates. */
static size_t target_string_bytes(const struct cps_target *t)
{
    const char *strings[] = {t->kind, t->api_version, t->namespace, t->name};
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(strings); i++)
        n += strings[i] ? strlen(strings[i]) + 1 : 0;
    for (int k = 0; k < QK_COUNT; k++)
        n += query_get(&t->queries, k) ? strlen(query_get(&t->queries, k)) + 1 : 0;
    return n;
}

/*
 * Each target starts as a copy of `defaults:`. The copies are bounded
 * (CFG_INHERITED_MAX_BYTES in all), or a small file with a long query in
 * defaults and many targets would expand without limit.
 */
static int parse_targets(const struct walk *w, const struct node *list,
                         const struct target_marks *default_marks, struct cps_config *config)
{
    char path[CFG_PATH_MAX], shown[SHOW_MAX];
    size_t inherited = target_string_bytes(&config->defaults), copied = 0;
    if (is_null(list))
        return 0;
    if (list->type != NODE_SEQ)
        return fail_at(w, list, "targets: expected a list of targets, got %s",
                       show(list, shown, sizeof shown));
    if (list->n_items > CPS_CONFIG_MAX_TARGETS)
        return fail_at(w, list->items[CPS_CONFIG_MAX_TARGETS], "targets: more than %d targets",
                       CPS_CONFIG_MAX_TARGETS);
    if (list->n_items == 0)
        return 0;
    if (!(config->targets = calloc(list->n_items, sizeof *config->targets)))
        return fail_at(w, list, "targets: out of memory");
    for (size_t i = 0; i < list->n_items; i++) {
        const struct node *item = list->items[i];
        struct cps_target *t = &config->targets[i];
        struct target_marks marks = *default_marks;
        marks.min_replicas.own = marks.max_replicas.own = marks.fallback.own = 0;
        path_index(path, sizeof path, "targets", i);
        if (item->type != NODE_MAP)
            return fail_at(w, item, "%s: expected a mapping, got %s", path,
                           show(item, shown, sizeof shown));
        copied += inherited;
        if (copied > CFG_INHERITED_MAX_BYTES)
            return fail_at(w, item,
                           "%s: the targets inherit more than %u MiB of strings from defaults "
                           "(shorten the queries in defaults:, or give them at the top level)",
                           path, CFG_INHERITED_MAX_BYTES >> 20);
        if (cps_target_copy(t, &config->defaults) < 0)
            return fail_at(w, item, "%s: out of memory", path);
        config->n_targets = i + 1;
        t->line = item->line;
        t->col = item->col;
        if (apply_target_body(w, item, path, BODY_TARGET, t, &marks) < 0 ||
            check_target(w, t, &marks, path, 1, item->line, item->col) < 0)
            return -1;
    }
    return check_duplicate_targets(w, config);
}

/* The whole document: every section over the built-in defaults. */
static int parse_root(const struct walk *w, const struct node *root, struct cps_config *config)
{
    const struct node *v[TOP_COUNT];
    char shown[SHOW_MAX];
    if (!root)
        return fail_pos(w, 1, 1, "the config is empty (expected a mapping of settings)");
    if (is_null(root))
        return fail_at(w, root, "the config is empty (expected a mapping of settings)");
    if (root->type != NODE_MAP)
        return fail_at(w, root, "the config must be a mapping of settings, got %s",
                       show(root, shown, sizeof shown));
    if (map_fields(w, root, "", top_keys, TOP_COUNT, v, NULL) < 0)
        return -1;
    if (v[TOP_INTERVAL] && get_duration(w, v[TOP_INTERVAL], "interval", 0, &config->interval_ms) < 0)
        return -1;
    if (v[TOP_LISTEN]) {
        if (get_string(w, v[TOP_LISTEN], "listen", 0, &config->listen) < 0)
            return -1;
        if (!is_listen_address(config->listen))
            return fail_at(w, v[TOP_LISTEN], "listen: expected host:port, got %s",
                           show(v[TOP_LISTEN], shown, sizeof shown));
    }
    if (v[TOP_PROMETHEUS] && parse_prometheus(w, v[TOP_PROMETHEUS], &config->prometheus) < 0)
        return -1;
    if (v[TOP_QUERIES] && parse_queries(w, v[TOP_QUERIES], "queries", 0, &config->queries) < 0)
        return -1;
    if (v[TOP_LEADER] && parse_leader(w, v[TOP_LEADER], &config->leader_election) < 0)
        return -1;
    if (v[TOP_SIM] && parse_sim(w, v[TOP_SIM], &config->sim) < 0)
        return -1;
    struct target_marks marks;
    memset(&marks, 0, sizeof marks);
    if (v[TOP_DEFAULTS]) {
        config->defaults.line = v[TOP_DEFAULTS]->line;
        config->defaults.col = v[TOP_DEFAULTS]->col;
        if (apply_target_body(w, v[TOP_DEFAULTS], "defaults", BODY_DEFAULTS, &config->defaults,
                              &marks) < 0 ||
            check_target(w, &config->defaults, &marks, "defaults", 0, v[TOP_DEFAULTS]->line,
                         v[TOP_DEFAULTS]->col) < 0)
            return -1;
    }
    if (v[TOP_TARGETS] && parse_targets(w, v[TOP_TARGETS], &marks, config) < 0)
        return -1;
    return 0;
}

struct cps_config *cps_config_load_bytes(const char *bytes, size_t len, const char *source,
                                         struct cps_err *err)
{
    struct walk w = {.source = source ? source : "<config>", .err = err};
    struct node *root = NULL;
    struct cps_config *config = calloc(1, sizeof *config);
    if (!config) {
        cps_err_set(err, w.source, 0, 0, "out of memory");
        return NULL;
    }
    if (cps_config_init_defaults(config) < 0 || !(config->source = str_dup(w.source))) {
        cps_err_set(err, w.source, 0, 0, "out of memory");
        goto fail;
    }
    if (yaml_tree(bytes ? bytes : "", bytes ? len : 0, w.source, &root, err) < 0)
        goto fail;
    if (parse_root(&w, root, config) < 0)
        goto fail;
    node_free(root);
    return config;

fail:
    node_free(root);
    cps_config_free(config);
    return NULL;
}

int cps_target_from_json(const struct json_t *object, const struct cps_target *base,
                         const char *source, struct cps_target *out, struct cps_err *err)
{
    struct walk w = {.source = source ? source : "<json>", .err = err};
    struct target_marks marks;
    struct node *root = NULL;
    size_t n_nodes = 0;
    int too_deep = 0;

    memset(&marks, 0, sizeof marks);
    if ((base ? cps_target_copy(out, base) : cps_target_init_defaults(out)) < 0)
        return cps_err_set(err, w.source, 0, 0, "out of memory");
    out->line = out->col = 0; /* JSON has no positions */
    if (!object || !json_is_object(object)) {
        cps_err_set(err, w.source, 0, 0, "target: expected an object");
        goto fail;
    }
    if (!(root = json_node(object, 0, &n_nodes, &too_deep))) {
        if (too_deep)
            cps_err_set(err, w.source, 0, 0, "target: nested deeper than %d levels",
                        CPS_CONFIG_MAX_DEPTH);
        else
            cps_err_set(err, w.source, 0, 0, "out of memory");
        goto fail;
    }
    if (apply_target_body(&w, root, "target", BODY_JSON, out, &marks) < 0 ||
        check_target(&w, out, &marks, "target", 0, 0, 0) < 0)
        goto fail;
    node_free(root);
    return 0;

fail:
    node_free(root);
    cps_target_release(out);
    return -1;
}

/* ---- cps_config_to_yaml -------------------------------------------------- */

struct sbuf {
    char *data;
    size_t len, cap;
    int failed;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt,
                          ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->failed = 1;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
}

/* Would the loader read this plain scalar as something else than the same
 * text, or would a reader think it is a number, boolean or null? */
static int needs_quotes(const char *s)
{
    static const char *const special[] = {"~", "null", "Null", "NULL", "true", "True", "TRUE",
                                          "false", "False", "FALSE", "yes", "Yes", "YES", "no",
                                          "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
                                          "y", "Y", "n", "N"};
    if (!*s || !is_alpha((unsigned char)s[0]))
        return 1;
    for (const char *p = s; *p; p++)
        if (!is_alpha((unsigned char)*p) && !is_digit((unsigned char)*p) && !strchr("_-./", *p))
            return 1;
    for (size_t i = 0; i < ARRAY_LEN(special); i++)
        if (!strcmp(s, special[i]))
            return 1;
    return 0;
}

/* libyaml's printable set (reader.c); anything else must be escaped. */
static int yaml_printable(uint32_t c)
{
    return c == 0x9 || (c >= 0x20 && c <= 0x7E) || (c >= 0xA0 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD && c != 0xFEFF) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* U+2028 and U+2029 are printable, but libyaml reads them as line breaks,
 * so inside a double-quoted string they fold (eating the spaces before
 * them) unless escaped. (U+0085, the third such break, is not printable.) */
#define YAML_LINE_SEPARATOR 0x2028u
#define YAML_PARAGRAPH_SEPARATOR 0x2029u

/*
 * A string as YAML the loader reads back byte for byte: plain when that is
 * unambiguous, single-quoted when it is printable ASCII (PromQL is full of
 * double quotes), double-quoted with escapes otherwise. Invalid UTF-8 bytes
 * cannot come from either loader; they are escaped as \xNN regardless.
 */
static void put_string(struct sbuf *b, const char *s)
{
    if (!needs_quotes(s)) {
        sb_printf(b, "%s", s);
        return;
    }
    int ascii = 1;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F)
            ascii = 0;
    if (ascii) {
        sb_printf(b, "'");
        for (const char *p = s; *p; p++)
            sb_printf(b, *p == '\'' ? "''" : "%c", *p);
        sb_printf(b, "'");
        return;
    }
    sb_printf(b, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p;
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                 : (c & 0xF8) == 0xF0 ? 4 : 0;
        int valid = n > 0;
        if (n > 1) {
            c &= 0xFFu >> (n + 1);
            for (size_t i = 1; i < n && valid; i++) {
                if ((p[i] & 0xC0) != 0x80)
                    valid = 0;
                else
                    c = (c << 6) | (p[i] & 0x3F);
            }
        }
        if (!valid) {
            sb_printf(b, "\\x%02X", *p);
            p++;
            continue;
        }
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", (char)c);
        else if (c == '\t')
            sb_printf(b, "\\t");
        else if (c == '\n')
            sb_printf(b, "\\n");
        else if (!yaml_printable(c) || c == YAML_LINE_SEPARATOR || c == YAML_PARAGRAPH_SEPARATOR)
            sb_printf(b, c <= 0xFF ? "\\x%02X" : c <= 0xFFFF ? "\\u%04X" : "\\U%08X", (unsigned)c);
        else
            sb_printf(b, "%.*s", (int)n, (const char *)p);
        p += n;
    }
    sb_printf(b, "\"");
}

#define PLAIN_INTEGER_MAX 1e15 /* integral values below this print as integers */

/* The shortest decimal that reads back as the same double; 100, not 1e+02. */
static void put_double(struct sbuf *b, double x)
{
    char text[64];
    if (x == floor(x) && fabs(x) < PLAIN_INTEGER_MAX) {
        sb_printf(b, "%.0f", x == 0 ? 0.0 : x); /* no "-0" */
        return;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, x);
        if (strtod(text, NULL) == x)
            break;
    }
    sb_printf(b, "%s", text);
}

static void put_duration(struct sbuf *b, int64_t ms)
{
    char text[DURATION_TEXT_MAX];
    cps_duration_format(text, sizeof text, ms);
    sb_printf(b, "%s", text);
}

static void put_key(struct sbuf *b, int indent, const char *key)
{
    sb_printf(b, "%*s%s:", indent, "", key);
}

static void put_rules(struct sbuf *b, int indent, const char *key,
                      const struct cps_scaling_rules *rules)
{
    put_key(b, indent, key);
    sb_printf(b, "\n");
    put_key(b, indent + 2, "stabilizationWindowSeconds");
    sb_printf(b, " %d\n", (int)rules->stabilization_window_seconds);
    put_key(b, indent + 2, "selectPolicy");
    sb_printf(b, " %s\n", select_names[rules->select_policy <= CPS_SELECT_DISABLED
                                            ? rules->select_policy : CPS_SELECT_MAX]);
    if (rules->n_policies <= 0)
        return; /* nothing to say: the loader keeps the inherited list */
    put_key(b, indent + 2, "policies");
    sb_printf(b, "\n");
    for (int i = 0; i < rules->n_policies && i < CPS_MAX_SCALING_POLICIES; i++) {
        const struct cps_scaling_policy *p = &rules->policies[i];
        sb_printf(b, "%*s- type: %s\n", indent + 4, "",
                  policy_type_names[p->type == CPS_SCALING_PERCENT]);
        sb_printf(b, "%*svalue: %d\n", indent + 6, "", (int)p->value);
        sb_printf(b, "%*speriodSeconds: %d\n", indent + 6, "", (int)p->period_seconds);
    }
}

/*
 * One target body. `inherit` is what the loader would start from (the
 * defaults), NULL for `defaults:` itself. A NULL query is written as `~`
 * only when the inherited one is set, so it reads back as NULL.
 */
static void put_target(struct sbuf *b, int indent, const struct cps_target *t,
                       const struct cps_target *inherit)
{
    if (inherit) {
        if (t->namespace) {
            put_key(b, indent, "namespace");
            sb_printf(b, " ");
            put_string(b, t->namespace);
            sb_printf(b, "\n");
        }
        if (t->kind) {
            put_key(b, indent, "kind");
            sb_printf(b, " ");
            put_string(b, t->kind);
            sb_printf(b, "\n");
        }
        if (t->name) {
            put_key(b, indent, "name");
            sb_printf(b, " ");
            put_string(b, t->name);
            sb_printf(b, "\n");
        }
        if (t->api_version) {
            put_key(b, indent, "api_version");
            sb_printf(b, " ");
            put_string(b, t->api_version);
            sb_printf(b, "\n");
        }
    }
    put_key(b, indent, "min_replicas");
    sb_printf(b, " %d\n", (int)t->min_replicas);
    put_key(b, indent, "max_replicas");
    sb_printf(b, " %d\n", (int)t->max_replicas);
    put_key(b, indent, "paused");
    sb_printf(b, " %s\n", t->paused ? "true" : "false");
    put_key(b, indent, "slo");
    sb_printf(b, "\n");
    put_key(b, indent + 2, "latency_p95_ms");
    sb_printf(b, " ");
    put_double(b, t->slo_latency_p95_ms);
    sb_printf(b, "\n");
    put_key(b, indent, "cost");
    sb_printf(b, "\n");
    const double costs[CK_COUNT] = {[CK_PER_MILLION] = t->cost_target_per_million,
                                    [CK_MAX_PER_HOUR] = t->cost_max_per_hour,
                                    [CK_POD_HOUR] = t->cost_pod_hour_usd};
    for (int k = 0; k < CK_COUNT; k++) {
        put_key(b, indent + 2, cost_keys[k]);
        sb_printf(b, " ");
        put_double(b, costs[k]);
        sb_printf(b, "\n");
    }
    put_key(b, indent, "capacity");
    sb_printf(b, "\n");
    put_key(b, indent + 2, "rps_per_pod");
    if (t->capacity_auto) {
        sb_printf(b, " auto\n");
    } else {
        sb_printf(b, " ");
        put_double(b, t->capacity_rps_per_pod);
        sb_printf(b, "\n");
    }
    put_key(b, indent, "on_missing_metrics");
    if (t->on_missing == CPS_MISSING_FALLBACK)
        sb_printf(b, "\n%*sfallback: %d\n", indent + 2, "", (int)t->fallback_replicas);
    else
        sb_printf(b, " hold\n");
    put_key(b, indent, "policy");
    sb_printf(b, "\n");
    put_key(b, indent + 2, "headroom_quantile");
    sb_printf(b, " ");
    put_double(b, t->policy.headroom_quantile);
    sb_printf(b, "\n");
    put_key(b, indent + 2, "scale_down_quantile");
    sb_printf(b, " ");
    put_double(b, t->policy.scale_down_quantile);
    sb_printf(b, "\n");
    put_key(b, indent + 2, "startup");
    sb_printf(b, " ");
    put_duration(b, t->policy.startup_ms);
    sb_printf(b, "\n");
    put_key(b, indent + 2, "metrics_lag");
    sb_printf(b, " ");
    put_duration(b, t->policy.metrics_lag_ms);
    sb_printf(b, "\n");
    put_key(b, indent + 2, "volatility_halflife");
    sb_printf(b, " ");
    put_duration(b, t->policy.volatility_halflife_ms);
    sb_printf(b, "\n");
    put_key(b, indent + 2, "seasonality");
    sb_printf(b, " %s\n", seasonality_names[t->policy.seasonality == CPS_SEASONALITY_DAILY]);
    put_key(b, indent + 2, "trend");
    sb_printf(b, " %s\n", t->policy.trend ? "true" : "false");

    const struct cps_queries *iq = inherit ? &inherit->queries : NULL;
    int any = 0;
    for (int k = 0; k < QK_COUNT; k++)
        any |= query_get(&t->queries, k) != NULL || (iq && query_get(iq, k) != NULL);
    if (any) {
        put_key(b, indent, "queries");
        sb_printf(b, "\n");
        for (int k = 0; k < QK_COUNT; k++) {
            const char *query = query_get(&t->queries, k);
            if (!query && !(iq && query_get(iq, k)))
                continue;
            put_key(b, indent + 2, query_keys[k]);
            sb_printf(b, " ");
            if (query)
                put_string(b, query);
            else
                sb_printf(b, "~");
            sb_printf(b, "\n");
        }
    }
    put_key(b, indent, "behavior");
    sb_printf(b, "\n");
    put_rules(b, indent + 2, "scaleUp", &t->behavior.scale_up);
    put_rules(b, indent + 2, "scaleDown", &t->behavior.scale_down);
}

static void put_field_string(struct sbuf *b, int indent, const char *key, const char *value)
{
    if (!value)
        return;
    put_key(b, indent, key);
    sb_printf(b, " ");
    put_string(b, value);
    sb_printf(b, "\n");
}

static void put_field_duration(struct sbuf *b, int indent, const char *key, int64_t ms)
{
    put_key(b, indent, key);
    sb_printf(b, " ");
    put_duration(b, ms);
    sb_printf(b, "\n");
}

static void put_field_double(struct sbuf *b, int indent, const char *key, double x)
{
    put_key(b, indent, key);
    sb_printf(b, " ");
    put_double(b, x);
    sb_printf(b, "\n");
}

/*
 * Every key, defaults included, in the loader's own syntax, so that the
 * output is both the documentation of what is in force and a valid config:
 * loading it gives an equal struct (tested). Sim durations are stored as
 * doubles; they are written in whole milliseconds, the loader's resolution.
 */
char *cps_config_to_yaml(const struct cps_config *config)
{
    struct sbuf b = {0};
    const struct cps_prometheus_config *prom = &config->prometheus;
    const struct cps_leader_election_config *le = &config->leader_election;
    const struct cps_sim_params *sim = &config->sim;

    sb_printf(&b, "# effective config%s%s: built-in defaults filled in\n",
              config->source ? " of " : "", config->source ? config->source : "");
    put_field_duration(&b, 0, "interval", config->interval_ms);
    put_field_string(&b, 0, "listen", config->listen);
    sb_printf(&b, "prometheus:\n");
    put_field_string(&b, 2, "url", prom->url);
    put_field_duration(&b, 2, "timeout", prom->timeout_ms);
    put_field_string(&b, 2, "bearer_token_file", prom->bearer_token_file);
    if (prom->n_headers) {
        sb_printf(&b, "  headers:\n");
        for (size_t i = 0; i < prom->n_headers; i++) {
            sb_printf(&b, "    ");
            put_string(&b, prom->header_names[i]);
            sb_printf(&b, ": ");
            put_string(&b, prom->header_values[i]);
            sb_printf(&b, "\n");
        }
    }
    sb_printf(&b, "  labels:\n");
    put_field_string(&b, 4, "namespace", prom->namespace_label);
    put_field_string(&b, 4, "deployment", prom->deployment_label);
    put_field_duration(&b, 2, "max_staleness", prom->max_staleness_ms);
    sb_printf(&b, "queries:\n");
    for (int k = 0; k < QK_COUNT; k++)
        put_field_string(&b, 2, query_keys[k], query_get(&config->queries, k));
    sb_printf(&b, "leader_election:\n");
    put_key(&b, 2, "enabled");
    sb_printf(&b, " %s\n", le->enabled ? "true" : "false");
    put_field_string(&b, 2, "namespace", le->lease_namespace);
    put_field_string(&b, 2, "name", le->lease_name);
    put_field_duration(&b, 2, "lease_duration", le->lease_duration_ms);
    put_field_duration(&b, 2, "renew_deadline", le->renew_deadline_ms);
    put_field_duration(&b, 2, "retry_period", le->retry_period_ms);
    sb_printf(&b, "sim:\n");
    put_field_double(&b, 2, "service_rate", sim->service_rate);
    put_field_duration(&b, 2, "base_latency", llround(sim->base_latency_ms));
    put_field_duration(&b, 2, "startup", llround(sim->startup_s * MS_PER_S));
    put_field_double(&b, 2, "price", sim->price);
    put_field_double(&b, 2, "scale", sim->scale);
    put_key(&b, 2, "routing");
    sb_printf(&b, " %s\n", routing_names[sim->routing == CPS_ROUTING_POOLED]);
    put_field_duration(&b, 2, "interval", llround(sim->interval_s * MS_PER_S));
    put_field_duration(&b, 2, "window", llround(sim->window_s * MS_PER_S));
    put_field_duration(&b, 2, "lag", llround(sim->lag_s * MS_PER_S));
    put_field_double(&b, 2, "hpa_target", sim->hpa_target);
    sb_printf(&b, "defaults:\n");
    put_target(&b, 2, &config->defaults, NULL);
    if (config->n_targets == 0)
        sb_printf(&b, "targets: []\n");
    else
        sb_printf(&b, "targets:\n");
    for (size_t i = 0; i < config->n_targets; i++) {
        size_t start = b.len;
        put_target(&b, 4, &config->targets[i], &config->defaults);
        if (!b.failed && b.len > start + 2)
            b.data[start + 2] = '-'; /* "    namespace: x" -> "  - namespace: x" */
    }
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (!b.data) /* cannot happen: the header line is always written */
        return str_dup("");
    return b.data;
}
