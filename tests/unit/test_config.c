/*
 * lib/config*.c: the schema, the YAML loader, the JSON target merge,
 * durations and the effective-config printer. Run from the repository root (ctest does), so
 * config/default.yaml and config/config.yaml can be read.
 *
 * Every expected line:col in the error table was worked out by hand from
 * the YAML text (libyaml marks are 0-based; ours are 1-based, and a value's
 * column is the one of its first character, or of its tag/anchor).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_schema.h"
#include "decide.h"
#include "duration.h"
#include "json_pos.h"
#include "k8s_names.h"
#include "cps_test.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FILE_MAX_BYTES (1 << 20)

static struct cps_config *load(const char *yaml, struct cps_err *err)
{
    cps_err_clear(err);
    return cps_config_load_bytes(yaml, strlen(yaml), "test.yaml", err);
}

/* Load or fail the current test, printing the error. */
static struct cps_config *load_ok(const char *yaml)
{
    struct cps_err err;
    struct cps_config *config = load(yaml, &err);
    if (!config) {
        char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
        cps_err_format(&err, msg, sizeof msg);
        CPS_FAIL_AT("unexpected error: %s", msg);
    }
    return config;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *bytes = malloc(FILE_MAX_BYTES);
    if (bytes)
        *len = fread(bytes, 1, FILE_MAX_BYTES, f);
    fclose(f);
    return bytes;
}

/* ---- equality, row by row of the schema (for the round trip) -------------- */

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Every row of a section equal in a and b (behavior rows compare their rules
 * and policies row by row). */
static int section_eq(enum cps_config_section section, const void *a, const void *b)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    for (size_t i = 0; i < n; i++) /* a deprecated key has no effect and is not printed */
        if (!(rows[i].flags & CPS_CFG_DEPRECATED) && !cps_config_field_equal(&rows[i], a, b))
            return 0;
    return 1;
}

/* Two behavior rules: their rows, and their policies' rows. */
static int rules_eq(const struct cps_scaling_rules *a, const struct cps_scaling_rules *b)
{
    if (!section_eq(CPS_SEC_RULES, a, b) || a->n_policies != b->n_policies)
        return 0;
    for (int i = 0; i < a->n_policies; i++)
        if (!section_eq(CPS_SEC_POLICY_ITEM, &a->policies[i], &b->policies[i]))
            return 0;
    return 1;
}

/* Everything but line/col, which depend on the text: the rows of every
 * section that lives in a target, and the two fields no row holds. */
static int target_eq(const struct cps_target *a, const struct cps_target *b)
{
    static const enum cps_config_section in_target[] = {
        CPS_SEC_TARGET, CPS_SEC_SLO, CPS_SEC_COST, CPS_SEC_CAPACITY, CPS_SEC_MISSING,
    };
    for (size_t i = 0; i < ARRAY_LEN(in_target); i++)
        if (!section_eq(in_target[i], a, b))
            return 0;
    return section_eq(CPS_SEC_POLICY, &a->policy, &b->policy) &&
           section_eq(CPS_SEC_BEHAVIOR, &a->behavior, &b->behavior) &&
           section_eq(CPS_SEC_QUERIES, &a->queries, &b->queries) &&
           a->capacity_auto == b->capacity_auto && a->on_missing == b->on_missing;
}

/* Everything but `source`: the rows of every section, the headers (no row:
 * free-form) and the targets. */
static int config_eq(const struct cps_config *a, const struct cps_config *b)
{
    const struct cps_prometheus_config *pa = &a->prometheus, *pb = &b->prometheus;
    if (!section_eq(CPS_SEC_TOP, a, b) || !section_eq(CPS_SEC_PROMETHEUS, pa, pb) ||
        !section_eq(CPS_SEC_LABELS, pa, pb) || !section_eq(CPS_SEC_QUERIES, &a->queries, &b->queries) ||
        !section_eq(CPS_SEC_LEADER, &a->leader_election, &b->leader_election) ||
        !section_eq(CPS_SEC_SHARDING, &a->sharding, &b->sharding) ||
        !section_eq(CPS_SEC_SIM, &a->sim, &b->sim) || pa->n_headers != pb->n_headers ||
        !target_eq(&a->defaults, &b->defaults) || a->n_targets != b->n_targets)
        return 0;
    for (size_t i = 0; i < pa->n_headers; i++)
        if (!str_eq(pa->header_names[i], pb->header_names[i]) ||
            !str_eq(pa->header_values[i], pb->header_values[i]))
            return 0;
    for (size_t i = 0; i < a->n_targets; i++)
        if (!target_eq(&a->targets[i], &b->targets[i]))
            return 0;
    return 1;
}

/* to_yaml, load it back, compare; fails the current test on a difference. */
static void check_round_trip(const struct cps_config *config)
{
    char *yaml = cps_config_to_yaml(config);
    ASSERT_TRUE(yaml != NULL);
    if (!yaml)
        return;
    struct cps_config *again = load_ok(yaml);
    if (again) {
        ASSERT_TRUE(config_eq(config, again));
        if (!config_eq(config, again))
            fprintf(stderr, "--- round trip differs; printed:\n%s\n", yaml);
        /* and printing is stable */
        char *yaml2 = cps_config_to_yaml(again);
        ASSERT_TRUE(yaml2 != NULL);
        if (yaml2) {
            const char *a = strchr(yaml, '\n'), *b = strchr(yaml2, '\n'); /* skip header */
            ASSERT_TRUE(a && b && !strcmp(a, b));
        }
        free(yaml2);
    }
    cps_config_free(again);
    free(yaml);
}

/* ---- durations ------------------------------------------------------------ */

static void test_duration_parse(void)
{
    static const struct {
        const char *text;
        int ok;
        int64_t ms;
    } cases[] = {
        {"15s", 1, 15000},      {"5m", 1, 300000},      {"1h", 1, 3600000},
        {"250ms", 1, 250},      {"1.5s", 1, 1500},      {"0.1s", 1, 100},
        {"15", 1, 15000},       {"2.5", 1, 2500},       {"0", 1, 0},
        {"1h30m", 1, 5400000},  {"1m30s", 1, 90000},    {".5s", 1, 500},
        {"6h", 1, 21600000},    {"1.0005s", 1, 1001},   {"", 0, 0},
        {"-5s", 0, 0},          {"+5s", 0, 0},          {"5 s", 0, 0},
        {"5d", 1, 432000000},   {"1d12h", 1, 129600000}, {"d", 0, 0},
        {"5dd", 0, 0},          {"s", 0, 0},            {"5sm", 0, 0},
        {"1e3s", 0, 0},         {"nan", 0, 0},          {"inf", 0, 0},
        {"15s ", 0, 0},         {"5m15", 0, 0},         {"99999999999999999999h", 0, 0},
        {"999999999999h", 0, 0}, {"0x10s", 0, 0},        {".s", 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        CPS_ROW_BEGIN();
        int64_t ms = -1;
        int rc = cps_duration_parse(cases[i].text, &ms);
        ASSERT_EQ(rc, cases[i].ok ? 0 : -1);
        if (cases[i].ok)
            ASSERT_EQ(ms, cases[i].ms);
        char name[64];
        snprintf(name, sizeof name, "duration \"%s\"", cases[i].text);
        CPS_ROW_END(name);
    }
    ASSERT_EQ(cps_duration_parse(NULL, NULL), -1);
}

/* The formatter picks the largest unit that divides exactly; days only from
 * two days up, so a printed 24h (an old range hint) reads as before. */
static void test_duration_format(void)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {250, "250ms"},       {15000, "15s"},      {300000, "5m"},
        {86400000, "24h"},    {172800000, "2d"},   {604800000, "7d"},
        {90000000, "25h"},    {0, "0s"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char buf[CPS_DURATION_TEXT_MAX];
        cps_duration_format(buf, sizeof buf, cases[i].ms);
        ASSERT_STR_EQ(buf, cases[i].text);
    }
}

/* ---- the violation budget, and the keys it replaced ------------------------- */

/* slo.violation_budget reads "N%" or the fraction; out of range names the
 * place; policy.trend and policy.seasonality still load, with a warning at
 * their place, and are never printed. */
static void test_violation_budget(void)
{
    static const struct {
        const char *text;
        double share;
    } ok[] = {{"1%", 0.01}, {"0.5%", 0.005}, {"0.02", 0.02}, {"50%", 0.5}, {"2.5%", 0.025}};
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        char yaml[160];
        snprintf(yaml, sizeof yaml, "defaults:\n  slo:\n    violation_budget: %s\n"
                 "    budget_window: 30d\n", ok[i].text);
        struct cps_config *c = load_ok(yaml);
        if (!c)
            continue;
        ASSERT_NEAR(c->defaults.slo_violation_budget, ok[i].share, 1e-15);
        ASSERT_EQ(c->defaults.slo_budget_window_ms, 30LL * 86400 * 1000);
        cps_config_free(c);
    }
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"0%", "defaults.slo.violation_budget: \"0%\" is out of range (must be > 0% and <= 50%)"},
        {"60%", "is out of range (must be > 0% and <= 50%)"},
        {"1%%", "expected a number or a percentage (1%), got \"1%%\""},
        {"one", "expected a number or a percentage"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char yaml[160];
        snprintf(yaml, sizeof yaml, "defaults:\n  slo:\n    violation_budget: %s\n", bad[i].text);
        struct cps_err err;
        struct cps_config *c = load(yaml, &err);
        ASSERT_TRUE(c == NULL);
        ASSERT_CONTAINS(err.message, bad[i].message);
        ASSERT_EQ(err.line, 3);
        ASSERT_EQ(err.col, 23);
        cps_config_free(c);
    }
    struct cps_err err;
    struct cps_config *c = load("defaults:\n  slo:\n    budget_window: 91d\n", &err);
    ASSERT_TRUE(c == NULL);
    ASSERT_CONTAINS(err.message, "budget_window");
    cps_config_free(c);

    c = load_ok("defaults:\n  policy:\n    trend: true\n    seasonality: daily\n");
    if (c) {
        ASSERT_CONTAINS(c->warning, "test.yaml:4:18: defaults.policy.seasonality is deprecated and "
                                    "has no effect");
        char *yaml = cps_config_to_yaml(c);
        ASSERT_TRUE(yaml && !strstr(yaml, "trend") && !strstr(yaml, "seasonality"));
        ASSERT_TRUE(yaml && strstr(yaml, "violation_budget: 1%\n") != NULL);
        free(yaml);
        cps_config_free(c);
    }
    c = load("defaults:\n  policy:\n    seasonality: weekly\n", &err);
    ASSERT_TRUE(c == NULL); /* still checked */
    cps_config_free(c);
}

/* ---- built-in defaults ---------------------------------------------------- */

/* cpscale's default scale-down stabilization window (Kubernetes': 300 s) */
#define CPSCALE_DOWN_WINDOW_S 120

/* Kubernetes' default policies; the windows are Kubernetes' except the
 * scale-down window, which is cpscale's own default. */
static void check_k8s_behavior(const struct cps_behavior *b, int32_t down_window_s)
{
    /* what Kubernetes documents (policy order does not matter) */
    ASSERT_EQ(b->scale_up.stabilization_window_seconds, 0);
    ASSERT_EQ(b->scale_down.stabilization_window_seconds, down_window_s);
    ASSERT_EQ(b->scale_up.select_policy, CPS_SELECT_MAX);
    ASSERT_EQ(b->scale_up.n_policies, 2);
    int pods = 0, percent = 0;
    for (int i = 0; i < b->scale_up.n_policies; i++) {
        const struct cps_scaling_policy *p = &b->scale_up.policies[i];
        ASSERT_EQ(p->period_seconds, 15);
        if (p->type == CPS_SCALING_PODS && p->value == 4)
            pods++;
        if (p->type == CPS_SCALING_PERCENT && p->value == 100)
            percent++;
    }
    ASSERT_EQ(pods, 1);
    ASSERT_EQ(percent, 1);
    ASSERT_EQ(b->scale_down.n_policies, 1);
    ASSERT_EQ(b->scale_down.policies[0].type, CPS_SCALING_PERCENT);
    ASSERT_EQ(b->scale_down.policies[0].value, 100);
    ASSERT_EQ(b->scale_down.policies[0].period_seconds, 15);
}

static void test_builtin_defaults(void)
{
    struct cps_config c;
    ASSERT_EQ(cps_config_init_defaults(&c), 0);
    ASSERT_EQ(c.interval_ms, 15000);
    ASSERT_STR_EQ(c.listen, "0.0.0.0:8080");
    ASSERT_STR_EQ(c.prometheus.url, "http://prometheus.monitoring.svc:9090");
    ASSERT_EQ(c.prometheus.timeout_ms, 5000);
    ASSERT_TRUE(c.prometheus.bearer_token_file == NULL);
    ASSERT_EQ(c.prometheus.n_headers, 0);
    ASSERT_STR_EQ(c.prometheus.namespace_label, "namespace");
    ASSERT_STR_EQ(c.prometheus.deployment_label, "deployment");
    ASSERT_EQ(c.prometheus.max_staleness_ms, 300000);
    ASSERT_CONTAINS(c.queries.qps, "http_requests_total[1m]");
    ASSERT_CONTAINS(c.queries.qps, "label_replace(");
    ASSERT_CONTAINS(c.queries.p95_ms, "histogram_quantile(0.95");
    ASSERT_CONTAINS(c.queries.p95_ms, "http_request_duration_seconds_bucket");
    ASSERT_CONTAINS(c.queries.p95_ms, "1000 *");
    ASSERT_CONTAINS(c.queries.cpu_utilization, "container_cpu_usage_seconds_total");
    ASSERT_CONTAINS(c.queries.cpu_utilization, "kube_pod_container_resource_requests{resource=\"cpu\"}");
    ASSERT_CONTAINS(c.queries.ready_replicas, "kube_deployment_status_replicas_ready");
    ASSERT_CONTAINS(c.queries.cost_per_pod_hour, "node_cpu_hourly_cost");
    ASSERT_CONTAINS(c.queries.cost_per_pod_hour, "node_ram_hourly_cost");
    ASSERT_CONTAINS(c.queries.cost_per_pod_hour, "1024^3");
    ASSERT_CONTAINS(c.queries.budget_qps, "irate(http_requests_total[1m]) and http_requests_total");
    ASSERT_CONTAINS(c.queries.budget_p95_ms, "irate(http_request_duration_seconds_bucket[1m])");
    ASSERT_EQ(c.leader_election.enabled, 1);
    ASSERT_STR_EQ(c.leader_election.lease_namespace, "cpscale");
    ASSERT_STR_EQ(c.leader_election.lease_name, "cpscale-leader");
    ASSERT_EQ(c.leader_election.lease_duration_ms, 15000);
    ASSERT_EQ(c.leader_election.renew_deadline_ms, 10000);
    ASSERT_EQ(c.leader_election.retry_period_ms, 2000);
    ASSERT_EQ(c.sharding.shards, 1);
    ASSERT_EQ(c.sharding.warm_standby, 1);
    ASSERT_NEAR(c.sim.service_rate, 100, 0);
    ASSERT_NEAR(c.sim.base_latency_ms, 20, 0);
    ASSERT_NEAR(c.sim.startup_s, 30, 0);
    ASSERT_NEAR(c.sim.price, 0.05, 0);
    ASSERT_NEAR(c.sim.scale, 1, 0);
    ASSERT_EQ(c.sim.routing, CPS_ROUTING_RANDOM);
    ASSERT_NEAR(c.sim.interval_s, 15, 0);
    ASSERT_NEAR(c.sim.window_s, 60, 0);
    ASSERT_NEAR(c.sim.lag_s, 15, 0);
    ASSERT_NEAR(c.sim.hpa_target, 0.7, 0);
    const struct cps_target *t = &c.defaults;
    ASSERT_STR_EQ(t->kind, "Deployment");
    ASSERT_STR_EQ(t->api_version, "apps/v1");
    ASSERT_TRUE(t->namespace == NULL && t->name == NULL);
    ASSERT_EQ(t->min_replicas, 1);
    ASSERT_EQ(t->max_replicas, 100);
    ASSERT_NEAR(t->slo_latency_p95_ms, 100, 0);
    ASSERT_NEAR(t->cost_target_per_million, 0, 0);
    ASSERT_NEAR(t->cost_max_per_hour, 0, 0);
    ASSERT_NEAR(t->cost_pod_hour_usd, 0.05, 0);
    ASSERT_EQ(t->capacity_auto, 1);
    ASSERT_EQ(t->paused, 0);
    ASSERT_EQ(t->on_missing, CPS_MISSING_HOLD);
    ASSERT_NEAR(t->policy.headroom_quantile, 0.95, 0);
    ASSERT_NEAR(t->policy.scale_down_quantile, 0.95, 0);
    ASSERT_NEAR(t->slo_violation_budget, 0.01, 0);
    ASSERT_EQ(t->slo_budget_window_ms, 7 * 24 * 3600 * 1000LL);
    ASSERT_EQ(t->policy.startup_ms, 30000);
    ASSERT_EQ(t->policy.metrics_lag_ms, 15000);
    ASSERT_EQ(t->policy.volatility_halflife_ms, 6 * 3600 * 1000LL);
    ASSERT_EQ(t->policy.seasonality, CPS_SEASONALITY_NONE);
    ASSERT_EQ(t->policy.trend, 0);
    ASSERT_TRUE(t->queries.qps == NULL && t->queries.cost_per_pod_hour == NULL);
    check_k8s_behavior(&t->behavior, CPSCALE_DOWN_WINDOW_S);
    ASSERT_EQ(c.n_targets, 0);
    cps_config_release(&c);
    cps_config_release(&c); /* released twice is harmless: it was zeroed */
    cps_config_release(NULL);
    cps_config_free(NULL);
}

/* ---- a full valid config ---------------------------------------------------- */

static const char full_yaml[] =
    "# every section, most keys\n"
    "interval: 30s\n"
    "listen: \"127.0.0.1:9100\"\n"
    "prometheus:\n"
    "  url: https://prom.example.com:9091/prefix\n"
    "  timeout: 2500ms\n"
    "  bearer_token_file: /var/run/secrets/prom/token\n"
    "  headers:\n"
    "    X-Scope-OrgID: tenant-a\n"
    "    X-Extra: \"yes please\"\n"
    "  labels:\n"
    "    namespace: kube_namespace\n"
    "    deployment: app\n"
    "  max_staleness: 2m\n"
    "queries:\n"
    "  qps: sum by (kube_namespace, app) (rate(requests_total[2m]))\n"
    "  ready_replicas: 'sum by (kube_namespace, app) (kube_deployment_status_replicas_ready)'\n"
    "leader_election:\n"
    "  enabled: yes\n"
    "  namespace: ops\n"
    "  name: cpscale-lock\n"
    "  lease_duration: 1m\n"
    "  renew_deadline: 40s\n"
    "  retry_period: 5s\n"
    "sharding:\n"
    "  shards: 6\n"
    "  warm_standby: false\n"
    "sim:\n"
    "  service_rate: 250.5\n"
    "  base_latency: 5ms\n"
    "  startup: 1m30s\n"
    "  price: 0.1\n"
    "  scale: 2\n"
    "  routing: pooled\n"
    "  interval: 10s\n"
    "  window: 2m\n"
    "  lag: 0s\n"
    "  hpa_target: 0.5\n"
    "defaults:\n"
    "  min_replicas: 2\n"
    "  max_replicas: 40\n"
    "  slo:\n"
    "    latency_p95_ms: 250\n"
    "  cost:\n"
    "    pod_hour_usd: 0.08\n"
    "  on_missing_metrics:\n"
    "    fallback: 4\n"
    "  policy:\n"
    "    headroom_quantile: 0.995\n"
    "    seasonality: none\n"
    "  behavior:\n"
    "    scaleDown:\n"
    "      stabilizationWindowSeconds: 600\n"
    "targets:\n"
    "  - namespace: shop\n"
    "    deployment: web\n"
    "    max_replicas: 80\n"
    "    slo: {latency_p95_ms: 120.5}\n"
    "    cost:\n"
    "      target_per_million_requests: 1.25\n"
    "      max_per_hour: 10\n"
    "    capacity:\n"
    "      rps_per_pod: 75\n"
    "    paused: true\n"
    "    queries:\n"
    "      p95_ms: histogram_quantile(0.95, sum by (le) (rate(lat_bucket{namespace=\"$namespace\", "
    "app=\"$deployment\"}[1m]))) * 1000\n"
    "    behavior:\n"
    "      scaleUp:\n"
    "        selectPolicy: Min\n"
    "        policies:\n"
    "          - type: Pods\n"
    "            value: 2\n"
    "            periodSeconds: 60\n"
    "          - {type: Percent, value: 50, periodSeconds: 30}\n"
    "    policy:\n"
    "      trend: off\n"
    "      startup: 45s\n"
    "  - namespace: batch\n"
    "    kind: StatefulSet\n"
    "    name: worker.v2\n"
    "    on_missing_metrics: hold\n"
    "    capacity: {rps_per_pod: auto}\n"
    "  - namespace: shop\n"
    "    kind: Rollout\n"
    "    api_version: argoproj.io/v1alpha1\n"
    "    name: web-canary\n";

/* "" turns off an optional query (the cost's, the budget's two), at the top
 * level and in a target; the required ones are errors (bad_cases). */
static void test_optional_queries_off(void)
{
    struct cps_config *c = load_ok("queries:\n"
                                   "  cost_per_pod_hour: ''\n"
                                   "  budget_qps: ''\n"
                                   "  budget_p95_ms: ''\n"
                                   "targets:\n"
                                   "  - namespace: a\n"
                                   "    deployment: b\n"
                                   "    queries: {budget_p95_ms: ''}\n");
    if (!c)
        return;
    ASSERT_STR_EQ(c->queries.cost_per_pod_hour, "");
    ASSERT_STR_EQ(c->queries.budget_qps, "");
    ASSERT_STR_EQ(c->queries.budget_p95_ms, "");
    ASSERT_STR_EQ(c->targets[0].queries.budget_p95_ms, "");
    ASSERT_TRUE(c->targets[0].queries.budget_qps == NULL);
    ASSERT_CONTAINS(c->queries.qps, "http_requests_total[1m]");
    cps_config_free(c);
}

/* A budget query follows its partner: where a layer changes qps or p95_ms
 * and leaves the budget query beside it as its parent had it, that budget
 * query is turned off there (it would read the parent's metric). */
static void test_budget_queries_follow_their_partners(void)
{
    struct cps_config *c = load_ok("queries:\n"
                                   "  qps: sum by (namespace, deployment) (rate(jobs_total[1m]))\n"
                                   "defaults:\n"
                                   "  queries: {p95_ms: p95_jobs}\n"
                                   "targets:\n"
                                   "  - {namespace: a, deployment: plain}\n"
                                   "  - {namespace: a, deployment: own, queries: {qps: own_qps}}\n"
                                   "  - namespace: a\n"
                                   "    deployment: both\n"
                                   "    queries: {qps: own_qps, budget_qps: own_last}\n");
    if (!c)
        return;
    /* the top level changed qps, not p95_ms */
    ASSERT_STR_EQ(c->queries.budget_qps, "");
    ASSERT_CONTAINS(c->queries.budget_p95_ms, "irate(http_request_duration_seconds_bucket");
    /* defaults: changed p95_ms */
    ASSERT_STR_EQ(c->defaults.queries.budget_p95_ms, "");
    ASSERT_TRUE(c->defaults.queries.budget_qps == NULL);
    if (c->n_targets == 3) {
        ASSERT_STR_EQ(c->targets[0].queries.budget_p95_ms, "");
        ASSERT_TRUE(c->targets[0].queries.budget_qps == NULL);
        ASSERT_STR_EQ(c->targets[1].queries.budget_qps, "");
        ASSERT_STR_EQ(c->targets[2].queries.budget_qps, "own_last");
    } else {
        ASSERT_EQ(c->n_targets, 3);
    }
    cps_config_free(c);
    /* the built-in queries and a budget query given with its partner: kept */
    c = load_ok("queries:\n  qps: q\n  budget_qps: q_last\n");
    if (!c)
        return;
    ASSERT_STR_EQ(c->queries.budget_qps, "q_last");
    ASSERT_CONTAINS(c->queries.budget_p95_ms, "irate(");
    cps_config_free(c);
}

static void test_full_config(void)
{
    struct cps_config *c = load_ok(full_yaml);
    if (!c)
        return;
    ASSERT_STR_EQ(c->source, "test.yaml");
    ASSERT_EQ(c->interval_ms, 30000);
    ASSERT_STR_EQ(c->listen, "127.0.0.1:9100");
    ASSERT_STR_EQ(c->prometheus.url, "https://prom.example.com:9091/prefix");
    ASSERT_EQ(c->prometheus.timeout_ms, 2500);
    ASSERT_STR_EQ(c->prometheus.bearer_token_file, "/var/run/secrets/prom/token");
    ASSERT_EQ(c->prometheus.n_headers, 2);
    if (c->prometheus.n_headers == 2) {
        ASSERT_STR_EQ(c->prometheus.header_names[0], "X-Scope-OrgID");
        ASSERT_STR_EQ(c->prometheus.header_values[0], "tenant-a");
        ASSERT_STR_EQ(c->prometheus.header_names[1], "X-Extra");
        ASSERT_STR_EQ(c->prometheus.header_values[1], "yes please");
    }
    ASSERT_STR_EQ(c->prometheus.namespace_label, "kube_namespace");
    ASSERT_STR_EQ(c->prometheus.deployment_label, "app");
    ASSERT_EQ(c->prometheus.max_staleness_ms, 120000);
    /* deprecated: still read and checked, with a warning at its place */
    ASSERT_CONTAINS(c->warning, "test.yaml:14:18: prometheus.max_staleness is deprecated and has "
                                "no effect");
    ASSERT_STR_EQ(c->queries.qps, "sum by (kube_namespace, app) (rate(requests_total[2m]))");
    ASSERT_STR_EQ(c->queries.ready_replicas,
                  "sum by (kube_namespace, app) (kube_deployment_status_replicas_ready)");
    ASSERT_CONTAINS(c->queries.p95_ms, "http_request_duration_seconds_bucket"); /* default kept */
    ASSERT_EQ(c->leader_election.enabled, 1); /* shards need it */
    ASSERT_STR_EQ(c->leader_election.lease_namespace, "ops");
    ASSERT_STR_EQ(c->leader_election.lease_name, "cpscale-lock");
    ASSERT_EQ(c->leader_election.lease_duration_ms, 60000);
    ASSERT_EQ(c->leader_election.renew_deadline_ms, 40000);
    ASSERT_EQ(c->leader_election.retry_period_ms, 5000);
    ASSERT_EQ(c->sharding.shards, 6);
    ASSERT_EQ(c->sharding.warm_standby, 0);
    ASSERT_NEAR(c->sim.service_rate, 250.5, 0);
    ASSERT_NEAR(c->sim.base_latency_ms, 5, 0);
    ASSERT_NEAR(c->sim.startup_s, 90, 0);
    ASSERT_NEAR(c->sim.price, 0.1, 0);
    ASSERT_NEAR(c->sim.scale, 2, 0);
    ASSERT_EQ(c->sim.routing, CPS_ROUTING_POOLED);
    ASSERT_NEAR(c->sim.interval_s, 10, 0);
    ASSERT_NEAR(c->sim.window_s, 120, 0);
    ASSERT_NEAR(c->sim.lag_s, 0, 0);
    ASSERT_NEAR(c->sim.hpa_target, 0.5, 0);

    ASSERT_EQ(c->defaults.min_replicas, 2);
    ASSERT_EQ(c->defaults.on_missing, CPS_MISSING_FALLBACK);
    ASSERT_EQ(c->defaults.fallback_replicas, 4);

    ASSERT_EQ(c->n_targets, 3);
    if (c->n_targets != 3)
        goto done;
    const struct cps_target *web = &c->targets[0];
    ASSERT_STR_EQ(web->namespace, "shop");
    ASSERT_STR_EQ(web->kind, "Deployment");
    ASSERT_STR_EQ(web->api_version, "apps/v1");
    ASSERT_STR_EQ(web->name, "web");
    ASSERT_EQ(web->line, 55);
    ASSERT_EQ(web->col, 5);
    ASSERT_EQ(web->min_replicas, 2);  /* inherited */
    ASSERT_EQ(web->max_replicas, 80); /* own */
    ASSERT_NEAR(web->slo_latency_p95_ms, 120.5, 0);
    ASSERT_NEAR(web->cost_target_per_million, 1.25, 0);
    ASSERT_NEAR(web->cost_max_per_hour, 10, 0);
    ASSERT_NEAR(web->cost_pod_hour_usd, 0.08, 0); /* cost: merged key by key */
    ASSERT_EQ(web->capacity_auto, 0);
    ASSERT_NEAR(web->capacity_rps_per_pod, 75, 0);
    ASSERT_EQ(web->paused, 1);
    ASSERT_TRUE(web->queries.qps == NULL);
    ASSERT_STR_EQ(web->queries.p95_ms,
                  "histogram_quantile(0.95, sum by (le) (rate(lat_bucket{namespace=\"$namespace\", "
                  "app=\"$deployment\"}[1m]))) * 1000");
    ASSERT_EQ(web->on_missing, CPS_MISSING_FALLBACK);
    ASSERT_EQ(web->fallback_replicas, 4);
    ASSERT_NEAR(web->policy.headroom_quantile, 0.995, 0);
    ASSERT_NEAR(web->policy.scale_down_quantile, 0.95, 0);
    ASSERT_EQ(web->policy.seasonality, CPS_SEASONALITY_NONE);
    ASSERT_EQ(web->policy.trend, 0);
    ASSERT_EQ(web->policy.startup_ms, 45000);
    ASSERT_EQ(web->policy.metrics_lag_ms, 15000);
    const struct cps_scaling_rules *up = &web->behavior.scale_up;
    ASSERT_EQ(up->stabilization_window_seconds, 0);
    ASSERT_EQ(up->select_policy, CPS_SELECT_MIN);
    ASSERT_EQ(up->n_policies, 2);
    ASSERT_EQ(up->policies[0].type, CPS_SCALING_PODS);
    ASSERT_EQ(up->policies[0].value, 2);
    ASSERT_EQ(up->policies[0].period_seconds, 60);
    ASSERT_EQ(up->policies[1].type, CPS_SCALING_PERCENT);
    ASSERT_EQ(up->policies[1].value, 50);
    ASSERT_EQ(up->policies[1].period_seconds, 30);
    ASSERT_EQ(web->behavior.scale_down.stabilization_window_seconds, 600);
    ASSERT_EQ(web->behavior.scale_down.n_policies, 1);

    const struct cps_target *worker = &c->targets[1];
    ASSERT_STR_EQ(worker->kind, "StatefulSet");
    ASSERT_STR_EQ(worker->api_version, "apps/v1");
    ASSERT_STR_EQ(worker->name, "worker.v2");
    ASSERT_EQ(worker->line, 78);
    ASSERT_EQ(worker->on_missing, CPS_MISSING_HOLD);
    ASSERT_EQ(worker->fallback_replicas, 0);
    ASSERT_EQ(worker->capacity_auto, 1);
    ASSERT_EQ(worker->max_replicas, 40);
    ASSERT_EQ(worker->behavior.scale_up.n_policies, 2);

    const struct cps_target *rollout = &c->targets[2];
    ASSERT_STR_EQ(rollout->kind, "Rollout");
    ASSERT_STR_EQ(rollout->api_version, "argoproj.io/v1alpha1");
    ASSERT_STR_EQ(rollout->namespace, "shop");
done:
    cps_config_free(c);
}

/* ---- inheritance ------------------------------------------------------------ */

static void test_defaults_inheritance(void)
{
    struct cps_config *c = load_ok(
        "targets:\n"
        "  - namespace: a\n"
        "    deployment: x\n"
        "  -   namespace: b\n"
        "      deployment: y\n"
        "      slo: {latency_p95_ms: 50}\n"
        "      policy: {scale_down_quantile: 0.9}\n"
        "      cost: {max_per_hour: 3}\n"
        "      min_replicas: 3\n"
        "defaults:\n" /* after targets: still applies to them */
        "  max_replicas: 7\n"
        "  cost: {target_per_million_requests: 0.5, pod_hour_usd: 0.02}\n"
        "  policy: {startup: 1m, trend: false}\n"
        "  paused: yes\n"
        "  queries:\n"
        "    qps: sum(rate(r{namespace=\"$namespace\"}[1m]))\n");
    if (!c)
        return;
    ASSERT_EQ(c->n_targets, 2);
    if (c->n_targets == 2) {
        const struct cps_target *x = &c->targets[0], *y = &c->targets[1];
        ASSERT_EQ(x->line, 2);
        ASSERT_EQ(x->col, 5);
        ASSERT_EQ(y->line, 4);
        ASSERT_EQ(y->col, 7);
        ASSERT_EQ(x->min_replicas, 1);
        ASSERT_EQ(x->max_replicas, 7);
        ASSERT_EQ(x->paused, 1);
        ASSERT_NEAR(x->slo_latency_p95_ms, 100, 0);
        ASSERT_NEAR(x->cost_target_per_million, 0.5, 0);
        ASSERT_NEAR(x->cost_pod_hour_usd, 0.02, 0);
        ASSERT_STR_EQ(x->queries.qps, "sum(rate(r{namespace=\"$namespace\"}[1m]))");
        ASSERT_EQ(x->policy.startup_ms, 60000);
        ASSERT_EQ(x->policy.trend, 0);
        ASSERT_EQ(y->min_replicas, 3);
        ASSERT_EQ(y->max_replicas, 7);
        ASSERT_NEAR(y->slo_latency_p95_ms, 50, 0);
        ASSERT_NEAR(y->cost_target_per_million, 0.5, 0); /* deep merge */
        ASSERT_NEAR(y->cost_max_per_hour, 3, 0);
        ASSERT_NEAR(y->cost_pod_hour_usd, 0.02, 0);
        ASSERT_NEAR(y->policy.scale_down_quantile, 0.9, 0);
        ASSERT_EQ(y->policy.startup_ms, 60000);
        ASSERT_EQ(y->policy.trend, 0);
        ASSERT_NEAR(y->policy.headroom_quantile, 0.95, 0);
    }
    check_round_trip(c);
    cps_config_free(c);

    /* a target can drop an inherited query (null) and switch fallback off */
    c = load_ok("defaults:\n"
                "  on_missing_metrics: {fallback: 3}\n"
                "  queries: {qps: up}\n"
                "targets:\n"
                "  - {namespace: a, deployment: x, queries: {qps: ~}, on_missing_metrics: hold}\n"
                "  - {namespace: a, deployment: z, max_replicas: 3}\n");
    if (c && c->n_targets == 2) {
        ASSERT_TRUE(c->targets[0].queries.qps == NULL);
        ASSERT_EQ(c->targets[0].on_missing, CPS_MISSING_HOLD);
        ASSERT_STR_EQ(c->targets[1].queries.qps, "up");
        ASSERT_EQ(c->targets[1].fallback_replicas, 3);
        check_round_trip(c);
    }
    cps_config_free(c);
}

/* ---- behavior --------------------------------------------------------------- */

static void test_behavior(void)
{
    struct cps_config *c = load_ok(
        "defaults:\n"
        "  behavior:\n"
        "    scaleUp:\n"
        "      stabilizationWindowSeconds: 60\n" /* given without policies: K8s default ones */
        "targets:\n"
        "  - namespace: a\n"
        "    deployment: plain\n"
        "  - namespace: a\n"
        "    deployment: tuned\n"
        "    behavior:\n"
        "      scaleUp:\n"
        "        selectPolicy: Disabled\n"
        "      scaleDown:\n"
        "        stabilizationWindowSeconds: 3600\n"
        "        policies:\n"
        "          - type: Pods\n"
        "            value: 1\n"
        "            periodSeconds: 1800\n"
        "  - namespace: a\n"
        "    deployment: pasted\n"
        "    behavior:\n" /* as `kubectl get hpa -o yaml` shows it */
        "      scaleDown:\n"
        "        policies:\n"
        "        - periodSeconds: 15\n"
        "          type: Percent\n"
        "          value: 100\n"
        "        selectPolicy: Max\n"
        "        stabilizationWindowSeconds: 300\n"
        "      scaleUp:\n"
        "        policies:\n"
        "        - periodSeconds: 15\n"
        "          type: Pods\n"
        "          value: 4\n"
        "        - periodSeconds: 15\n"
        "          type: Percent\n"
        "          value: 100\n"
        "        selectPolicy: Max\n"
        "        stabilizationWindowSeconds: 0\n");
    if (!c)
        return;
    ASSERT_EQ(c->n_targets, 3);
    if (c->n_targets == 3) {
        struct cps_behavior k8s;
        cps_behavior_default(&k8s);
        k8s.scale_down.stabilization_window_seconds = CPSCALE_DOWN_WINDOW_S;
        const struct cps_behavior *plain = &c->targets[0].behavior;
        ASSERT_EQ(plain->scale_up.stabilization_window_seconds, 60);
        ASSERT_EQ(plain->scale_up.select_policy, CPS_SELECT_MAX);
        ASSERT_EQ(plain->scale_up.n_policies, k8s.scale_up.n_policies);
        ASSERT_TRUE(rules_eq(&plain->scale_down, &k8s.scale_down));

        const struct cps_behavior *tuned = &c->targets[1].behavior;
        ASSERT_EQ(tuned->scale_up.stabilization_window_seconds, 60); /* deep merge */
        ASSERT_EQ(tuned->scale_up.select_policy, CPS_SELECT_DISABLED);
        ASSERT_EQ(tuned->scale_up.n_policies, 2);
        ASSERT_EQ(tuned->scale_down.stabilization_window_seconds, 3600);
        ASSERT_EQ(tuned->scale_down.select_policy, CPS_SELECT_MAX);
        ASSERT_EQ(tuned->scale_down.n_policies, 1);
        ASSERT_EQ(tuned->scale_down.policies[0].type, CPS_SCALING_PODS);
        ASSERT_EQ(tuned->scale_down.policies[0].value, 1);
        ASSERT_EQ(tuned->scale_down.policies[0].period_seconds, 1800);

        check_k8s_behavior(&c->targets[2].behavior, 300); /* pasted: Kubernetes' 300 s */
    }
    check_round_trip(c);
    cps_config_free(c);

    /* eight policies is the limit, and fine */
    c = load_ok("defaults:\n"
                "  behavior:\n"
                "    scaleUp:\n"
                "      policies:\n"
                "        - {type: Pods, value: 1, periodSeconds: 1}\n"
                "        - {type: Pods, value: 2, periodSeconds: 2}\n"
                "        - {type: Pods, value: 3, periodSeconds: 3}\n"
                "        - {type: Pods, value: 4, periodSeconds: 4}\n"
                "        - {type: Percent, value: 5, periodSeconds: 5}\n"
                "        - {type: Percent, value: 6, periodSeconds: 6}\n"
                "        - {type: Percent, value: 7, periodSeconds: 7}\n"
                "        - {type: Percent, value: 800, periodSeconds: 8}\n");
    if (c) {
        ASSERT_EQ(c->defaults.behavior.scale_up.n_policies, 8);
        ASSERT_EQ(c->defaults.behavior.scale_up.policies[7].value, 800);
        check_round_trip(c);
    }
    cps_config_free(c);
}

/* ---- kinds, names, YAML details ---------------------------------------------- */

static void test_yaml_details(void)
{
    struct cps_config *c = load_ok(
        "%YAML 1.1\n"
        "---\n"
        "interval: !!str 20s\n"
        "listen: :9000\n"
        "leader_election: {enabled: ON}\n"
        "defaults:\n"
        "  paused: Off\n"
        "  min_replicas: !!int 3\n"
        "  max_replicas: +12\n"
        "  slo: {latency_p95_ms: 1e2}\n"
        "prometheus:\n"
        "  headers: {X-A: \"caf\\u00e9\"}\n"
        "  bearer_token_file: ~\n"
        "sim: ~\n"
        "targets:\n"
        "  - namespace: \"123\"\n"
        "    deployment: 'web'\n"
        "    queries:\n"
        "      qps: |\n"
        "        sum(rate(x[1m]))\n"
        "...\n");
    if (!c)
        return;
    ASSERT_EQ(c->interval_ms, 20000);
    ASSERT_STR_EQ(c->listen, ":9000");
    ASSERT_EQ(c->leader_election.enabled, 1);
    ASSERT_EQ(c->defaults.paused, 0);
    ASSERT_EQ(c->defaults.min_replicas, 3);
    ASSERT_EQ(c->defaults.max_replicas, 12);
    ASSERT_NEAR(c->defaults.slo_latency_p95_ms, 100, 0);
    ASSERT_EQ(c->prometheus.n_headers, 1);
    if (c->prometheus.n_headers == 1)
        ASSERT_STR_EQ(c->prometheus.header_values[0], "caf\xc3\xa9");
    ASSERT_TRUE(c->prometheus.bearer_token_file == NULL);
    ASSERT_EQ(c->n_targets, 1);
    if (c->n_targets == 1) {
        ASSERT_STR_EQ(c->targets[0].namespace, "123");
        ASSERT_STR_EQ(c->targets[0].name, "web");
        ASSERT_STR_EQ(c->targets[0].queries.qps, "sum(rate(x[1m]))\n");
    }
    check_round_trip(c); /* newline and é in strings survive printing */
    cps_config_free(c);

    /* a long string is fine */
    size_t n = 200000;
    char *big = malloc(n + 64);
    if (big) {
        int k = snprintf(big, 64, "queries:\n  qps: ");
        memset(big + k, 'x', n);
        strcpy(big + k + n, "\n");
        c = load_ok(big);
        if (c)
            ASSERT_EQ(strlen(c->queries.qps), n);
        cps_config_free(c);
        free(big);
    }
}

/* A kind is at most 63 characters (a DNS label's length, as Kubernetes
 * allows): 63 loads, 64 is refused where it is written. The controller
 * makes a runtime for every kind this accepts (test_controller_targets.c's
 * test_longest_kind). */
static void test_kind_length(void)
{
    static const struct {
        const char *name;
        size_t length;
        int ok;
    } rows[] = {
        {"a kind of 63 characters loads", CPS_K8S_DNS_LABEL_MAX, 1},
        {"a kind of 64 characters is refused", CPS_K8S_DNS_LABEL_MAX + 1, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        CPS_ROW_BEGIN();
        char kind[CPS_K8S_DNS_LABEL_MAX + 2], yaml[256];
        memset(kind, 'k', rows[i].length);
        kind[0] = 'K';
        kind[rows[i].length] = '\0';
        snprintf(yaml, sizeof yaml,
                 "targets:\n  - namespace: shop\n    api_version: example.com/v1\n"
                 "    name: web\n    kind: %s\n",
                 kind);
        struct cps_err err;
        struct cps_config *c = load(yaml, &err);
        ASSERT_EQ(c != NULL, rows[i].ok);
        if (c && c->n_targets == 1)
            ASSERT_STR_EQ(c->targets[0].kind, kind);
        if (!c) {
            ASSERT_EQ(err.line, 5);
            ASSERT_EQ(err.col, 11);
            ASSERT_CONTAINS(err.message, "targets[0].kind: ");
            ASSERT_CONTAINS(err.message, "is not a valid kind");
        }
        cps_config_free(c);
        CPS_ROW_END(rows[i].name);
    }
}

/* ---- the error table ------------------------------------------------------------ */

struct bad_case {
    const char *name;
    const char *yaml;
    int line, col;
    const char *message; /* a substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"unknown top-level key", "interval: 15s\nintervl: 30s\n", 2, 1,
     "unknown key \"intervl\" in the top level (expected one of: interval, listen,"},
    {"unknown target key",
     "targets:\n  - namespace: shop\n    deployment: web\n    min_replica: 2\n", 4, 5,
     "unknown key \"min_replica\" in targets[0] (expected one of: namespace,"},
    {"unknown nested key",
     "targets:\n  - namespace: shop\n    deployment: web\n    slo:\n      latencyp95: 100\n", 5, 7,
     "unknown key \"latencyp95\" in targets[0].slo (expected one of: latency_p95_ms, violation_budget, budget_window)"},
    {"unknown key deep in behavior",
     "defaults:\n  behavior:\n    scaleUp:\n      tolerance: 0.1\n", 4, 7,
     "in defaults.behavior.scaleUp"},
    {"string for an integer", "defaults:\n  min_replicas: abc\n", 2, 17,
     "defaults.min_replicas: expected an integer, got \"abc\""},
    {"quoted integer", "defaults:\n  min_replicas: \"2\"\n", 2, 17,
     "expected an integer, got the string \"2\""},
    {"float for an integer", "defaults:\n  max_replicas: 2.5\n", 2, 17, "expected an integer"},
    {"mapping for a duration", "interval:\n  seconds: 15\n", 2, 3,
     "interval: expected a duration like 15s, 5m or 250ms, got a mapping"},
    {"scalar for a mapping", "prometheus: http://x\n", 1, 13,
     "prometheus: expected a mapping, got \"http://x\""},
    {"negative replicas", "defaults:\n  max_replicas: -3\n", 2, 17,
     "defaults.max_replicas: \"-3\" is out of range (1..100000)"},
    {"max above limit", "defaults:\n  max_replicas: 100001\n", 2, 17, "out of range (1..100000)"},
    {"huge integer", "defaults:\n  max_replicas: 99999999999999999999999\n", 2, 17,
     "is out of range"},
    {"min above max",
     "defaults:\n  min_replicas: 5\ntargets:\n  - namespace: shop\n    deployment: web\n"
     "    max_replicas: 3\n",
     6, 19, "targets[0].max_replicas (3) is below min_replicas (5)"},
    {"min above inherited max",
     "defaults:\n  max_replicas: 4\ntargets:\n  - namespace: shop\n    deployment: web\n"
     "    min_replicas: 9\n",
     6, 19, "targets[0].min_replicas (9) is above max_replicas (4)"},
    {"bad duration", "prometheus:\n  timeout: 5 seconds\n", 2, 12,
     "prometheus.timeout: expected a duration"},
    {"zero interval", "interval: 0s\n", 1, 11, "interval: must be longer than 0"},
    {"bad enum", "sim:\n  routing: roundrobin\n", 2, 12,
     "sim.routing: expected random or pooled, got \"roundrobin\""},
    {"bad selectPolicy", "defaults:\n  behavior:\n    scaleDown:\n      selectPolicy: Maximum\n", 4,
     21, "defaults.behavior.scaleDown.selectPolicy: expected Max, Min or Disabled"},
    {"duplicate key", "interval: 15s\nlisten: \":9090\"\ninterval: 30s\n", 3, 1,
     "duplicate key \"interval\" in the top level (first at line 1, column 1)"},
    {"duplicate nested key", "sim:\n  price: 1\n  scale: 2\n  price: 3\n", 4, 3,
     "duplicate key \"price\" in sim"},
    {"duplicate target",
     "targets:\n  - namespace: shop\n    deployment: web\n  - namespace: shop\n    name: web\n", 4,
     5, "targets[1]: duplicate target shop/Deployment web (first at targets[0], line 2)"},
    /* one index key and one label set for two objects */
    {"kind collision",
     "targets:\n  - namespace: shop\n    deployment: web\n  - namespace: shop\n    kind: "
     "StatefulSet\n    name: web\n",
     4, 5,
     "targets[1]: StatefulSet shop/web has the namespace and name of Deployment shop/web "
     "(targets[0], line 2)"},
    {"empty file", "", 1, 1, "the config is empty"},
    {"only comments", "# nothing here\n\n", 1, 1, "the config is empty"},
    {"empty document", "---\n", 2, 1, "the config is empty"},
    {"list document", "- a\n- b\n", 1, 1, "the config must be a mapping of settings, got a list"},
    {"scalar document", "hello\n", 1, 1, "must be a mapping of settings, got \"hello\""},
    {"scalar where a list is expected", "targets: web\n", 1, 10,
     "targets: expected a list of targets, got \"web\""},
    {"target not a mapping", "targets:\n  - 42\n", 2, 5,
     "targets[0]: expected a mapping, got \"42\""},
    {"unterminated quote", "listen: \"0.0.0.0:8080\ninterval: 15s\n", 3, 1,
     "invalid YAML: found unexpected end of stream while scanning a quoted scalar at line 1, "
     "column 9"},
    {"invalid YAML", "listen: a: b\n", 1, 10,
     "invalid YAML: mapping values are not allowed in this context"},
    {"bad indentation", "sim:\n  price: 1\n scale: 2\n", 3, 2, "invalid YAML"},
    {"alias", "defaults: &d\n  min_replicas: 2\ntargets:\n  - namespace: shop\n"
              "    deployment: web\n    slo: *d\n",
     6, 10, "aliases (*d) are not supported"},
    {"NaN", "defaults:\n  slo:\n    latency_p95_ms: .nan\n", 3, 21,
     "defaults.slo.latency_p95_ms: expected a number, got \".nan\""},
    {"nan", "defaults:\n  cost: {max_per_hour: nan}\n", 2, 24, "expected a number, got \"nan\""},
    {"infinite", "sim:\n  price: 1e999\n", 2, 10, "sim.price: \"1e999\" is too large"},
    {"zero SLO", "defaults:\n  slo: {latency_p95_ms: 0}\n", 2, 25,
     "out of range (must be >= 0.001 and <= 1e+09)"},
    /* YAML 1.1 (kubectl, go-yaml) reads 010 as octal 8; it was read as 10 */
    {"octal-looking integer", "defaults:\n  max_replicas: 010\n", 2, 17,
     "defaults.max_replicas: \"010\" has a leading zero, an octal number in YAML 1.1"},
    {"octal-looking number", "sim:\n  scale: -07\n", 2, 10,
     "sim.scale: \"-07\" has a leading zero"},
    {"octal-looking duration", "interval: 010\n", 1, 11,
     "interval: \"010\" has a leading zero"},
    /* the world's ranges are the command line's (docs/model.md section 3):
     * these ran to inf or NaN figures, or a policy that never scaled up */
    {"SLO of 1e12 ms", "defaults:\n  slo: {latency_p95_ms: 1e12}\n", 2, 25,
     "defaults.slo.latency_p95_ms: \"1e12\" is out of range (must be >= 0.001 and <= 1e+09)"},
    {"sim scale 1e300", "sim:\n  scale: 1e300\n", 2, 10,
     "sim.scale: \"1e300\" is out of range (must be > 0 and <= 1e+12)"},
    {"sim price 1e308", "sim:\n  price: 1e308\n", 2, 10,
     "sim.price: \"1e308\" is out of range (must be >= 0 and <= 1e+09)"},
    {"sim service rate 1e-12", "sim:\n  service_rate: 1e-12\n", 2, 17,
     "sim.service_rate: \"1e-12\" is out of range (must be >= 1e-09 and <= 1e+12)"},
    {"quantile out of range", "defaults:\n  policy:\n    headroom_quantile: 1.5\n", 3, 24,
     "defaults.policy.headroom_quantile: \"1.5\" is out of range (must be >= 0.5 and <= 0.9999)"},
    {"hpa_target zero", "sim: {hpa_target: 0}\n", 1, 19, "out of range (must be >= 0.01 and <= 1)"},
    {"fallback outside range",
     "targets:\n  - namespace: shop\n    deployment: web\n    max_replicas: 10\n"
     "    on_missing_metrics:\n      fallback: 20\n",
     6, 17, "on_missing_metrics.fallback (20) is outside min_replicas..max_replicas (1..10)"},
    {"inherited fallback outside own max",
     "defaults:\n  on_missing_metrics: {fallback: 8}\ntargets:\n  - namespace: shop\n"
     "    deployment: web\n    max_replicas: 5\n",
     6, 19, "targets[0].on_missing_metrics.fallback (8) is outside"},
    {"bad on_missing_metrics", "defaults:\n  on_missing_metrics: drop\n", 2, 23,
     "expected hold or {fallback: N}, got \"drop\""},
    {"missing namespace", "targets:\n  - deployment: web\n", 2, 5,
     "targets[0]: missing namespace"},
    {"missing name", "targets:\n  - namespace: shop\n    min_replicas: 2\n", 2, 5,
     "targets[0]: missing deployment (or kind and name)"},
    {"deployment and name", "targets:\n  - namespace: shop\n    deployment: web\n    name: web2\n",
     4, 5, "give either deployment or kind and name"},
    {"unknown kind without api_version",
     "targets:\n  - namespace: shop\n    kind: Rollout\n    name: web\n", 3, 11,
     "kind \"Rollout\" needs an api_version"},
    {"invalid namespace", "targets:\n  - namespace: Shop_1\n    deployment: web\n", 2, 16,
     "\"Shop_1\" is not a valid namespace"},
    {"namespace in defaults", "defaults:\n  namespace: shop\n", 2, 3,
     "namespace is not allowed here"},
    {"deep nesting",
     "a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     1, 67, "nested deeper than 64 levels"},
    {"too many policies",
     "defaults:\n  behavior:\n    scaleUp:\n      policies:\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n"
     "        - {type: Pods, value: 1, periodSeconds: 15}\n",
     13, 11, "policies[8]: at most 8 policies are allowed"},
    {"empty policy list", "defaults:\n  behavior:\n    scaleUp:\n      policies: []\n", 4, 17,
     "must list at least one policy"},
    {"policy without value",
     "defaults:\n  behavior:\n    scaleUp:\n      policies:\n        - type: Pods\n"
     "          periodSeconds: 15\n",
     5, 11, "defaults.behavior.scaleUp.policies[0]: missing value"},
    {"periodSeconds out of range",
     "defaults:\n  behavior:\n    scaleDown:\n      policies:\n"
     "        - {type: Percent, value: 10, periodSeconds: 1801}\n",
     5, 53, "periodSeconds: \"1801\" is out of range (1..1800)"},
    {"stabilization window out of range",
     "defaults:\n  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 3601\n", 4, 35,
     "out of range (0..3600)"},
    {"bad policy type", "defaults:\n  behavior:\n    scaleUp:\n      policies:\n"
                        "        - {type: pods, value: 1, periodSeconds: 15}\n",
     5, 18, "expected Pods or Percent, got \"pods\""},
    {"renew_deadline not below lease_duration",
     "leader_election:\n  lease_duration: 10s\n  renew_deadline: 10s\n", 3, 19,
     "renew_deadline (10s) must be shorter than lease_duration (10s)"},
    {"retry_period too long", "leader_election:\n  retry_period: 9s\n", 2, 17,
     "renew_deadline (10s) must be longer than 1.2 x retry_period (9s)"},
    {"shards out of range", "sharding:\n  shards: 257\n", 2, 11,
     "sharding.shards: \"257\" is out of range (1..256)"},
    {"no shards", "sharding:\n  shards: 0\n", 2, 11, "out of range (1..256)"},
    {"unknown sharding key", "sharding:\n  shard: 3\n", 2, 3, "unknown key \"shard\""},
    {"bad boolean", "leader_election:\n  enabled: maybe\n", 2, 12,
     "leader_election.enabled: expected true or false, got \"maybe\""},
    {"second document", "interval: 15s\n---\ninterval: 20s\n", 2, 1, "one YAML document"},
    {"placeholder typo", "queries:\n  qps: sum(rate(x{namespace=\"$ns\"}[1m]))\n", 2, 8,
     "queries.qps: unknown placeholder \"$ns\""},
    {"empty query", "queries:\n  qps: ''\n", 2, 8, "a query must not be empty"},
    {"empty query in a target",
     "targets:\n  - namespace: a\n    deployment: b\n    queries: {p95_ms: ''}\n", 4, 23,
     "a query must not be empty"},
    {"invalid UTF-8", "interval: 15s\nlisten: \xff\n", 2, 9,
     "invalid input: invalid leading UTF-8 octet"},
    {"unsupported tag", "interval: !duration 15s\n", 1, 11, "unsupported YAML tag \"!duration\""},
    {"non-specific tag on a mapping", "sim: ! {scale: 2}\n", 1, 6, "unsupported YAML tag \"!\""},
    {"header value with a newline", "prometheus:\n  headers:\n    X-Org: \"a\\nb\"\n", 3, 12,
     "prometheus.headers.X-Org: a header value must be one line of text"},
    {"header name", "prometheus:\n  headers:\n    \"X Org\": b\n", 3, 5,
     "is not a valid HTTP header name"},
    {"listen without port", "listen: 8080\n", 1, 9, "listen: expected host:port, got \"8080\""},
    {"url scheme", "prometheus:\n  url: prom:9090\n", 2, 8, "expected an http:// or https:// URL"},
    {"sim interval under a second", "sim:\n  interval: 500ms\n", 2, 13,
     "sim.interval: must be at least 1s"},
    {"shards without leader election",
     "leader_election: {enabled: false}\nsharding:\n  shards: 2\n", 3, 3,
     "sharding.shards (2) needs leader_election.enabled: true"},
    {"budget cap without a fallback price",
     "targets:\n  - namespace: a\n    deployment: b\n    cost: {max_per_hour: 0.3, pod_hour_usd: 0}\n",
     2, 5, "targets[0].cost.max_per_hour (0.3) needs targets[0].cost.pod_hour_usd above 0"},
    {"url with credentials", "prometheus:\n  url: https://alice:s3cr3t@prom:9090/x\n", 2, 8,
     "URL without user:password@ (a token goes in bearer_token_file"},
    {"label name", "prometheus:\n  labels: {namespace: kube-ns}\n", 2, 23,
     "is not a valid Prometheus label name"},
    {"capacity zero", "defaults:\n  capacity:\n    rps_per_pod: 0\n", 3, 18,
     "defaults.capacity.rps_per_pod: \"0\" is out of range (must be > 0)"},
    {"capacity word", "defaults:\n  capacity: {rps_per_pod: lots}\n", 2, 27,
     "expected auto or a number, got \"lots\""},
    {"mapping as a key", "? {a: 1}\n: 2\n", 1, 3, "keys must be strings, got a mapping"},
    {"seasonality", "defaults:\n  policy: {seasonality: weekly}\n", 2, 25,
     "expected none or daily, got \"weekly\""},
    {"zero halflife", "defaults:\n  policy: {volatility_halflife: 0}\n", 2, 33,
     "must be longer than 0"},
    {"negative startup", "defaults:\n  policy:\n    startup: -30s\n", 3, 14,
     "defaults.policy.startup: \"-30s\" is negative"},
    {"defaults as a list", "defaults:\n  - min_replicas: 1\n", 2, 3,
     "defaults: expected a mapping, got a list"},
};

static void test_bad_configs(void)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        CPS_ROW_BEGIN();
        struct cps_err err;
        struct cps_config *c = load(bc->yaml, &err);
        ASSERT_TRUE(c == NULL);
        cps_config_free(c);
        ASSERT_STR_EQ(err.source, "test.yaml");
        ASSERT_EQ(err.line, bc->line);
        ASSERT_EQ(err.col, bc->col);
        ASSERT_CONTAINS(err.message, bc->message);
        ASSERT_TRUE(strstr(err.message, "s3cr3t") == NULL); /* a password is never echoed */
        if (cps_test_current_failed)
            fprintf(stderr, "  (%s: got %d:%d: %s)\n", bc->name, err.line, err.col, err.message);
        CPS_ROW_END(bc->name);
    }
    /* the formatted form, as check-config prints it */
    struct cps_err err;
    char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
    cps_config_free(load("defaults:\n  max_replicas: 3\n  min_replicas: 5\n", &err));
    cps_err_format(&err, msg, sizeof msg);
    ASSERT_STR_EQ(msg, "test.yaml:2:17: defaults.max_replicas (3) is below min_replicas (5)");
    /* NULL bytes and a NULL source are handled */
    cps_err_clear(&err);
    ASSERT_TRUE(cps_config_load_bytes(NULL, 0, NULL, &err) == NULL);
    ASSERT_CONTAINS(err.message, "empty");
    ASSERT_TRUE(cps_config_load_bytes("a: 1", 4, "x", NULL) == NULL); /* err may be NULL */
}

/* ---- round trip --------------------------------------------------------------- */

static void test_round_trip(void)
{
    struct cps_config *c = load_ok(full_yaml);
    if (c)
        check_round_trip(c);
    cps_config_free(c);

    struct cps_config d;
    ASSERT_EQ(cps_config_init_defaults(&d), 0);
    check_round_trip(&d);
    char *yaml = cps_config_to_yaml(&d);
    ASSERT_TRUE(yaml != NULL);
    if (yaml) {
        ASSERT_CONTAINS(yaml, "\ninterval: 15s\n");
        ASSERT_TRUE(strstr(yaml, "max_staleness") == NULL); /* deprecated: never printed */
        ASSERT_CONTAINS(yaml, "    volatility_halflife: 6h\n");
        ASSERT_CONTAINS(yaml, "  base_latency: 20ms\n");
        ASSERT_CONTAINS(yaml, "targets: []\n");
    }
    free(yaml);
    cps_config_release(&d);

    /* awkward strings and numbers survive: quotes, backslashes, unicode,
     * values that look like booleans or numbers, shortest doubles */
    c = load_ok("prometheus:\n"
                "  bearer_token_file: \"yes\"\n"
                "  headers:\n"
                "    X-Quote: \"it's \\\"quoted\\\" \\\\ back\"\n"
                "    X-Tab: \"a\\tb\"\n"
                "    X-Num: \"123\"\n"
                "    X-Uni: \"\\u00e9\\U0001F600\"\n"
                "queries:\n"
                "  cost_per_pod_hour: '0.5'\n"
                "sim: {price: 0.1, service_rate: 1e-3, scale: 123456789.123}\n"
                "defaults:\n"
                "  slo: {latency_p95_ms: 0.30000000000000004}\n"
                "  cost: {target_per_million_requests: 3.14159}\n");
    if (c) {
        ASSERT_STR_EQ(c->prometheus.bearer_token_file, "yes");
        check_round_trip(c);
    }
    cps_config_free(c);
}

/* ---- JSON targets ---------------------------------------------------------------- */

/* The target in `text` over base; with_text, its errors are placed in text
 * (as decide does), otherwise they have no position. */
static int target_from_json_text(const char *text, const struct cps_target *base,
                                 int with_text, struct cps_target *out, struct cps_err *err)
{
    json_error_t jerr;
    json_t *json = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!json) {
        CPS_FAIL_AT("bad JSON in test: %s", jerr.text);
        return -1;
    }
    struct cps_json_cursor at;
    cps_json_cursor_init(&at, text, strlen(text));
    cps_err_clear(err);
    int rc = cps_target_from_json(json, base, "obs.json", with_text ? &at : NULL, out, err);
    json_decref(json);
    return rc;
}

static void test_json_target(void)
{
    struct cps_config *c = load_ok("defaults:\n"
                                   "  min_replicas: 2\n"
                                   "  max_replicas: 20\n"
                                   "  slo: {latency_p95_ms: 150}\n"
                                   "  cost: {pod_hour_usd: 0.07, max_per_hour: 4}\n"
                                   "  behavior:\n"
                                   "    scaleUp: {stabilizationWindowSeconds: 30}\n");
    if (!c)
        return;
    struct cps_target t;
    struct cps_err err;
    int rc = target_from_json_text(
        "{\"max_replicas\": 50, \"slo\": {\"latency_p95_ms\": 80.5},"
        " \"cost\": {\"max_per_hour\": 9},"
        " \"capacity\": {\"rps_per_pod\": 40},"
        " \"policy\": {\"startup\": \"45s\", \"metrics_lag\": 20},"
        " \"on_missing_metrics\": {\"fallback\": 10},"
        " \"behavior\": {\"scaleDown\": {\"stabilizationWindowSeconds\": 60,"
        "   \"policies\": [{\"type\": \"Pods\", \"value\": 2, \"periodSeconds\": 30}]}}}",
        &c->defaults, 1, &t, &err);
    ASSERT_EQ(rc, 0);
    if (rc == 0) {
        ASSERT_EQ(t.min_replicas, 2); /* from base */
        ASSERT_EQ(t.max_replicas, 50);
        ASSERT_NEAR(t.slo_latency_p95_ms, 80.5, 0);
        ASSERT_NEAR(t.cost_max_per_hour, 9, 0);
        ASSERT_NEAR(t.cost_pod_hour_usd, 0.07, 0);
        ASSERT_EQ(t.capacity_auto, 0);
        ASSERT_NEAR(t.capacity_rps_per_pod, 40, 0);
        ASSERT_EQ(t.policy.startup_ms, 45000);
        ASSERT_EQ(t.policy.metrics_lag_ms, 20000); /* a bare number is seconds */
        ASSERT_EQ(t.on_missing, CPS_MISSING_FALLBACK);
        ASSERT_EQ(t.fallback_replicas, 10);
        ASSERT_EQ(t.behavior.scale_up.stabilization_window_seconds, 30);
        ASSERT_EQ(t.behavior.scale_up.n_policies, 2);
        ASSERT_EQ(t.behavior.scale_down.stabilization_window_seconds, 60);
        ASSERT_EQ(t.behavior.scale_down.n_policies, 1);
        ASSERT_EQ(t.behavior.scale_down.policies[0].type, CPS_SCALING_PODS);
        ASSERT_EQ(t.behavior.scale_down.policies[0].value, 2);
        ASSERT_EQ(t.line, 0);
        ASSERT_STR_EQ(t.kind, "Deployment");
        ASSERT_TRUE(t.namespace == NULL); /* names are optional for decide */
        cps_target_release(&t);
    }
    /* the base is untouched */
    ASSERT_EQ(c->defaults.max_replicas, 20);

    /* names, and NULL base = built-in defaults */
    rc = target_from_json_text("{\"namespace\": \"shop\", \"kind\": \"StatefulSet\", "
                               "\"name\": \"db\", \"paused\": true}",
                               NULL, 1, &t, &err);
    ASSERT_EQ(rc, 0);
    if (rc == 0) {
        ASSERT_STR_EQ(t.namespace, "shop");
        ASSERT_STR_EQ(t.api_version, "apps/v1");
        ASSERT_STR_EQ(t.name, "db");
        ASSERT_EQ(t.paused, 1);
        ASSERT_EQ(t.max_replicas, 100);
        check_k8s_behavior(&t.behavior, CPSCALE_DOWN_WINDOW_S);
        cps_target_release(&t);
    }

    /* col: where the error is in the one-line JSON, counted by hand (the
     * offending value; the key, for an unknown key) */
    static const struct {
        const char *json;
        const char *message;
        int col;
    } bad[] = {
        {"{\"slo\": {\"latency_p95_ms\": \"fast\"}}",
         "target.slo.latency_p95_ms: expected a number, got the string \"fast\"", 28},
        {"{\"min_replicas\": 1.5}", "target.min_replicas: expected an integer, got \"1.5\"", 18},
        {"{\"min_replicas\": \"3\"}", "target.min_replicas: expected an integer", 18},
        {"{\"paused\": \"true\"}", "target.paused: expected true or false", 12},
        {"{\"foo\": 1}", "unknown key \"foo\" in target (expected one of: namespace,", 2},
        {"{\"behavior\": {\"scaleUp\": {\"policies\": [{\"type\": \"Pods\", \"value\": 0, "
         "\"periodSeconds\": 15}]}}}",
         "target.behavior.scaleUp.policies[0].value: \"0\" is out of range", 66},
        {"{\"max_replicas\": 1}", "target.max_replicas (1) is below min_replicas (2)", 18},
        {"{\"on_missing_metrics\": {\"fallback\": 30}}",
         "target.on_missing_metrics.fallback (30) is outside min_replicas..max_replicas (2..20)",
         37},
        {"{\"behavior\": [1]}", "target.behavior: expected a mapping, got a list", 14},
        {"{\"max_replicas\": 12345678901234}",
         "target.max_replicas: \"12345678901234\" is out of range", 18},
        {"{\"queries\": {\"qps\": \"a\\u0000b\"}}", "target.queries.qps: contains a NUL", 21},
        {"{\"slo\": null, \"cost\": {\"pod_hour_usd\": -1}}",
         "target.cost.pod_hour_usd: \"-1\" is out of range (must be >= 0)", 40},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        for (int with_text = 0; with_text <= 1; with_text++) {
            CPS_ROW_BEGIN();
            memset(&t, 0x5A, sizeof t); /* out is released on failure: must not be read */
            rc = target_from_json_text(bad[i].json, &c->defaults, with_text, &t, &err);
            ASSERT_EQ(rc, -1);
            ASSERT_STR_EQ(err.source, "obs.json");
            ASSERT_EQ(err.line, with_text ? 1 : 0);
            ASSERT_EQ(err.col, with_text ? bad[i].col : 0);
            ASSERT_CONTAINS(err.message, bad[i].message);
            ASSERT_TRUE(t.namespace == NULL && t.kind == NULL && t.queries.qps == NULL);
            CPS_ROW_END(bad[i].json);
        }
    }
    char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
    target_from_json_text("{\"slo\": {\"latency_p95_ms\": [1]}}", &c->defaults, 0, &t, &err);
    cps_err_format(&err, msg, sizeof msg);
    ASSERT_STR_EQ(msg, "obs.json: target.slo.latency_p95_ms: expected a number, got a list");
    target_from_json_text("{\"slo\": {\"latency_p95_ms\": [1]}}", &c->defaults, 1, &t, &err);
    cps_err_format(&err, msg, sizeof msg);
    ASSERT_STR_EQ(msg, "obs.json:1:28: target.slo.latency_p95_ms: expected a number, got a list");

    /* not an object; too deep */
    json_t *arr = json_array();
    ASSERT_EQ(cps_target_from_json(arr, NULL, "obs.json", NULL, &t, &err), -1);
    ASSERT_CONTAINS(err.message, "target: expected an object");
    json_t *deep = json_object(), *cur = deep;
    for (int i = 0; i < 100; i++) {
        json_t *next = json_object();
        json_object_set_new(cur, "slo", next);
        cur = next;
    }
    ASSERT_EQ(cps_target_from_json(deep, NULL, "obs.json", NULL, &t, &err), -1);
    ASSERT_CONTAINS(err.message, "nested deeper than");
    json_decref(deep);
    json_decref(arr);
    cps_config_free(c);
}

/* A target's errors at line:col of the JSON text (counted by hand), across
 * lines, past multi-byte characters and escapes, and from a target inside
 * a larger document (found with cps_json_locate, as decide does). */
static void test_json_target_positions(void)
{
    static const struct {
        const char *json;
        const char *message;
        int line, col;
    } bad[] = {
        {"{\n"
         "  \"max_replicas\": 30,\n"
         "  \"behavior\": {\n"
         "    \"scaleDown\": {\"policies\": [\n"
         "      {\"type\": \"Pods\", \"value\": 1, \"periodSeconds\": 60},\n"
         "      {\"type\": \"Percent\", \"value\": 10, \"periodSeconds\": \"1m\"}\n"
         "    ]}\n"
         "  }\n"
         "}\n",
         "target.behavior.scaleDown.policies[1].periodSeconds: expected an integer", 6, 57},
        {"{\n"
         "  \"behavior\": {\n"
         "    \"scaleDown\": {\"policy\": []}}}\n",
         "unknown key \"policy\" in target.behavior.scaleDown", 3, 19},
        /* é is one column; the escaped quote and backslash do not end the string */
        {"{\"queries\": {\"qps\": \"x{a=\\\"\xc3\xa9\\\\\\\"}\"}, \"min_replicas\": -1}",
         "target.min_replicas: \"-1\" is out of range", 1, 54},
    };
    struct cps_target t;
    struct cps_err err;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        CPS_ROW_BEGIN();
        ASSERT_EQ(target_from_json_text(bad[i].json, NULL, 1, &t, &err), -1);
        ASSERT_EQ(err.line, bad[i].line);
        ASSERT_EQ(err.col, bad[i].col);
        ASSERT_CONTAINS(err.message, bad[i].message);
        CPS_ROW_END(bad[i].message);
    }

    /* the target of a decide input: found in the document, then read */
    const char *doc = "{\"now\": 1, \"target\": {\"paused\": 3}}";
    json_t *root = json_loads(doc, 0, NULL);
    struct cps_json_step target_step = {.key = "target"};
    struct cps_json_cursor at;
    ASSERT_EQ(cps_json_locate(doc, strlen(doc), &target_step, 1, 0, &at), 0);
    ASSERT_EQ(cps_target_from_json(json_object_get(root, "target"), NULL, "obs.json", &at, &t,
                                   &err), -1);
    ASSERT_EQ(err.line, 1);
    ASSERT_EQ(err.col, 33);
    ASSERT_CONTAINS(err.message, "target.paused: expected true or false");

    /* not an object: at the value that is not one */
    ASSERT_EQ(target_from_json_text("[1]", NULL, 1, &t, &err), -1);
    ASSERT_EQ(err.line, 1);
    ASSERT_EQ(err.col, 1);
    ASSERT_CONTAINS(err.message, "target: expected an object");

    /* text that is not the tree's: no position rather than a wrong one */
    json_t *tree = json_loads("{\"min_replicas\": \"x\"}", 0, NULL);
    const char *other = "{\"max_replicas\": 5, \"min_replicas\": \"x\"}";
    cps_json_cursor_init(&at, other, strlen(other));
    ASSERT_EQ(cps_target_from_json(tree, NULL, "obs.json", &at, &t, &err), -1);
    ASSERT_EQ(err.line, 0);
    ASSERT_EQ(err.col, 0);
    ASSERT_CONTAINS(err.message, "target.min_replicas: expected an integer");
    json_decref(tree);
    json_decref(root);
}

/* ---- copy / release ------------------------------------------------------------------ */

static void test_copy_release(void)
{
    struct cps_config *c = load_ok(full_yaml);
    if (!c)
        return;
    struct cps_target copy;
    ASSERT_EQ(cps_target_copy(&copy, &c->targets[0]), 0);
    ASSERT_TRUE(target_eq(&copy, &c->targets[0]));
    ASSERT_TRUE(copy.name != c->targets[0].name);
    ASSERT_TRUE(copy.queries.p95_ms != c->targets[0].queries.p95_ms);
    ASSERT_EQ(copy.line, c->targets[0].line);
    cps_target_release(&copy);
    ASSERT_TRUE(copy.name == NULL && copy.queries.p95_ms == NULL);
    cps_target_release(&copy);
    cps_target_release(NULL);
    struct cps_target d;
    ASSERT_EQ(cps_target_init_defaults(&d), 0);
    ASSERT_TRUE(target_eq(&d, &(struct cps_config){0}.defaults) == 0); /* it sets things */
    struct cps_config builtin;
    ASSERT_EQ(cps_config_init_defaults(&builtin), 0);
    ASSERT_TRUE(target_eq(&d, &builtin.defaults));
    cps_config_release(&builtin);
    cps_target_release(&d);
    cps_config_free(c);
}

/* ---- the schema ------------------------------------------------------------------------ */

/* Change the field of `row` in `base` to a different valid value. */
static void mutate(const struct cps_config_row *row, void *base)
{
    void *field = cps_config_field(row, base);
    switch (row->type) {
    case CPS_CFG_INT32: *(int32_t *)field += 1; break;
    case CPS_CFG_NUMBER:
    case CPS_CFG_DURATION_MS:
    case CPS_CFG_DURATION_S: *(double *)field += 1; break;
    case CPS_CFG_BOOL: *(int *)field = !*(int *)field; break;
    case CPS_CFG_ENUM: *(int *)field = (*(int *)field + 1) % (int)row->n_names; break;
    case CPS_CFG_DURATION: *(int64_t *)field += 1; break;
    default: {
        char **slot = field;
        free(*slot);
        *slot = strdup("changed-by-the-test");
        break;
    }
    }
}

/* The struct a section's rows live in, inside a config (targets: defaults). */
static void *section_base(struct cps_config *c, enum cps_config_section section)
{
    switch (section) {
    case CPS_SEC_TOP: return c;
    case CPS_SEC_PROMETHEUS:
    case CPS_SEC_LABELS: return &c->prometheus;
    case CPS_SEC_QUERIES: return &c->queries;
    case CPS_SEC_LEADER: return &c->leader_election;
    case CPS_SEC_SHARDING: return &c->sharding;
    case CPS_SEC_SIM: return &c->sim;
    case CPS_SEC_POLICY: return &c->defaults.policy;
    case CPS_SEC_BEHAVIOR: return &c->defaults.behavior;
    case CPS_SEC_RULES: return &c->defaults.behavior.scale_up;
    case CPS_SEC_POLICY_ITEM: return &c->defaults.behavior.scale_up.policies[0];
    default: return &c->defaults;
    }
}

/*
 * The rows: named, no name twice in a section, a field where they have a
 * type; and the equality the round trip relies on sees a change of every
 * row's field, so it compares every field the rows hold.
 */
static void test_schema_rows(void)
{
    for (int s = 0; s < CPS_SEC_COUNT; s++) {
        size_t n;
        const struct cps_config_row *rows = cps_config_section_rows((enum cps_config_section)s, &n);
        ASSERT_TRUE(n > 0 && n <= 32);
        for (size_t i = 0; i < n; i++) {
            ASSERT_EQ((int)rows[i].section, s);
            ASSERT_TRUE(cps_config_row_name(&rows[i]) != NULL);
            for (size_t j = 0; j < i; j++)
                ASSERT_TRUE(strcmp(cps_config_row_name(&rows[i]), cps_config_row_name(&rows[j])));
            ASSERT_TRUE(rows[i].type == CPS_CFG_CUSTOM || rows[i].offset != CPS_CFG_NO_FIELD);
        }
    }
    for (int k = 0; k < CPS_KEY_COUNT; k++) {
        const struct cps_config_row *row = &cps_config_rows[k];
        if (cps_config_field(row, &(struct cps_config){0}) == NULL ||
            row->section == CPS_SEC_BEHAVIOR || (row->flags & CPS_CFG_DEPRECATED))
            continue;
        struct cps_config *a = load_ok(full_yaml), *b = load_ok(full_yaml);
        if (!a || !b) {
            cps_config_free(a);
            cps_config_free(b);
            return;
        }
        ASSERT_TRUE(config_eq(a, b));
        struct cps_config_row as = *row; /* custom: deployment (a name), rps_per_pod */
        if (row->type == CPS_CFG_CUSTOM)
            as.type = row->section == CPS_SEC_CAPACITY ? CPS_CFG_NUMBER : CPS_CFG_STRING;
        mutate(&as, section_base(b, row->section));
        if (config_eq(a, b))
            fprintf(stderr, "a change of %s goes unseen\n", cps_config_row_name(row));
        ASSERT_TRUE(!config_eq(a, b));
        cps_config_free(a);
        cps_config_free(b);
    }
}

/* A fold that sums the bytes it sees, position-weighted. */
static void sum_cb(void *ctx, const void *bytes, size_t n)
{
    uint64_t *h = ctx;
    for (size_t i = 0; i < n; i++)
        *h = *h * 31 + ((const unsigned char *)bytes)[i];
}

/* The target fold (tune's fingerprint) sees every setting but no name. */
static void test_target_fold(void)
{
    struct cps_target a, b;
    ASSERT_EQ(cps_target_init_defaults(&a), 0);
    ASSERT_EQ(cps_target_init_defaults(&b), 0);
    uint64_t ha = 0, hb = 0;
    cps_config_target_fold(&a, sum_cb, &ha);
    free(b.kind);
    b.kind = strdup("StatefulSet");
    cps_config_target_fold(&b, sum_cb, &hb);
    ASSERT_TRUE(ha == hb);
    b.policy.trend = 1;
    b.behavior.scale_down.policies[0].value += 1;
    hb = 0;
    cps_config_target_fold(&b, sum_cb, &hb);
    ASSERT_TRUE(ha != hb);
    b.policy.trend = 0;
    hb = 0;
    cps_config_target_fold(&b, sum_cb, &hb);
    ASSERT_TRUE(ha != hb); /* the policy value alone */
    cps_target_release(&a);
    cps_target_release(&b);
}

/* decide.c's metrics window and the default queries' `[1m]` are one value. */
static void test_metrics_window(void)
{
    int64_t ms = 0;
    ASSERT_EQ(cps_duration_parse(CPS_METRICS_WINDOW_PROMQL, &ms), 0);
    ASSERT_EQ(ms, (int64_t)CPS_METRICS_WINDOW_S * 1000);
    struct cps_config c;
    ASSERT_EQ(cps_config_init_defaults(&c), 0);
    const char *window = "[" CPS_METRICS_WINDOW_PROMQL "]";
    ASSERT_TRUE(strstr(c.queries.qps, window) != NULL);
    ASSERT_TRUE(strstr(c.queries.p95_ms, window) != NULL);
    ASSERT_TRUE(strstr(c.queries.cpu_utilization, window) != NULL);
    cps_config_release(&c);
}

/* ---- the shipped files ------------------------------------------------------------------ */

static void test_shipped_files(void)
{
    static const char *const paths[] = {"config/default.yaml", "config/config.yaml"};
    for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
        CPS_ROW_BEGIN();
        size_t len = 0;
        char *bytes = read_file(paths[i], &len);
        ASSERT_TRUE(bytes != NULL);
        if (bytes) {
            struct cps_err err;
            cps_err_clear(&err);
            struct cps_config *c = cps_config_load_bytes(bytes, len, paths[i], &err);
            if (!c) {
                char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
                cps_err_format(&err, msg, sizeof msg);
                CPS_FAIL_AT("%s", msg);
            } else if (i == 0) {
                /* default.yaml is exactly the built-in defaults, written out */
                struct cps_config builtin;
                ASSERT_EQ(cps_config_init_defaults(&builtin), 0);
                ASSERT_TRUE(config_eq(c, &builtin));
                cps_config_release(&builtin);
            } else {
                ASSERT_EQ(c->n_targets, 2);
                check_round_trip(c);
            }
            cps_config_free(c);
        }
        free(bytes);
        CPS_ROW_END(paths[i]);
    }
}

/* ---- never crash ------------------------------------------------------------------------ */

/*
 * A poor man's fuzz run (ASan/UBSan builds make it meaningful): every prefix
 * of a rich config, and copies with single bytes replaced by YAML's special
 * characters. Each load must either succeed or fill the error, never crash.
 */
static void test_mutations_never_crash(void)
{
    static const char specials[] = {':', '-', '[', '{', '"', '\'', '&', '*', '!', '#', '\n',
                                    ' ', '\t', '|', '>', '?', ',', '%', '@', '\0', '\xff'};
    size_t len = strlen(full_yaml);
    char *buf = malloc(len + 1);
    int failures = 0, loads = 0;
    if (!buf)
        return;
    for (size_t cut = 0; cut <= len; cut++) {
        struct cps_err err;
        cps_err_clear(&err);
        struct cps_config *c = cps_config_load_bytes(full_yaml, cut, "cut.yaml", &err);
        if (!c && !err.message[0])
            failures++;
        if (c) {
            char *yaml = cps_config_to_yaml(c);
            free(yaml);
        }
        cps_config_free(c);
        loads++;
    }
    for (size_t pos = 0; pos < len; pos += 3) {
        for (size_t s = 0; s < sizeof specials; s++) {
            memcpy(buf, full_yaml, len + 1);
            buf[pos] = specials[s];
            struct cps_err err;
            cps_err_clear(&err);
            struct cps_config *c = cps_config_load_bytes(buf, len, "mut.yaml", &err);
            if (!c && !err.message[0])
                failures++;
            if (c) {
                char *yaml = cps_config_to_yaml(c);
                struct cps_config *again = yaml ? load_ok(yaml) : NULL;
                if (again && !config_eq(c, again))
                    failures++;
                cps_config_free(again);
                free(yaml);
            }
            cps_config_free(c);
            loads++;
        }
    }
    ASSERT_EQ(failures, 0);
    ASSERT_TRUE(loads > 1000);
    free(buf);

    /* a long query in defaults copied into many targets is bounded: 1 MiB +
     * 20 bytes of kind and api_version per target; the 64th copy passes
     * 64 MiB. targets[i] is on line 5 + i. */
    size_t qlen = 1u << 20, ntargets = 100;
    char *expand = malloc(qlen + ntargets * 48 + 64);
    if (expand) {
        size_t used = (size_t)sprintf(expand, "defaults:\n  queries:\n    qps: ");
        memset(expand + used, 'q', qlen);
        used += qlen;
        used += (size_t)sprintf(expand + used, "\ntargets:\n");
        for (size_t i = 0; i < ntargets; i++)
            used += (size_t)sprintf(expand + used, "  - {namespace: a, deployment: d%zu}\n", i);
        struct cps_err err;
        struct cps_config *c = load(expand, &err);
        ASSERT_TRUE(c == NULL);
        ASSERT_EQ(err.line, 5 + 63);
        ASSERT_EQ(err.col, 5);
        ASSERT_CONTAINS(err.message, "targets[63]: the targets inherit more than 64 MiB");
        cps_config_free(c);
        free(expand);
    }

    /* many targets: the duplicate check is not quadratic */
    size_t n = 20000;
    size_t cap = n * 48 + 32;
    char *many = malloc(cap);
    if (many) {
        size_t used = (size_t)snprintf(many, cap, "targets:\n");
        for (size_t i = 0; i < n; i++)
            used += (size_t)snprintf(many + used, cap - used,
                                     "  - {namespace: ns%zu, deployment: d}\n", i % (n - 1));
        struct cps_err err;
        struct cps_config *c = load(many, &err);
        ASSERT_TRUE(c == NULL);
        ASSERT_EQ(err.line, (int)n + 1);
        ASSERT_CONTAINS(err.message, "duplicate target ns0/Deployment d (first at targets[0]");
        cps_config_free(c);
        free(many);
    }
}

int main(void)
{
    CPS_RUN(test_duration_parse);
    CPS_RUN(test_duration_format);
    CPS_RUN(test_violation_budget);
    CPS_RUN(test_builtin_defaults);
    CPS_RUN(test_optional_queries_off);
    CPS_RUN(test_budget_queries_follow_their_partners);
    CPS_RUN(test_full_config);
    CPS_RUN(test_defaults_inheritance);
    CPS_RUN(test_behavior);
    CPS_RUN(test_yaml_details);
    CPS_RUN(test_kind_length);
    CPS_RUN(test_bad_configs);
    CPS_RUN(test_round_trip);
    CPS_RUN(test_json_target);
    CPS_RUN(test_json_target_positions);
    CPS_RUN(test_copy_release);
    CPS_RUN(test_schema_rows);
    CPS_RUN(test_metrics_window);
    CPS_RUN(test_target_fold);
    CPS_RUN(test_shipped_files);
    CPS_RUN(test_mutations_never_crash);
    CPS_TEST_END();
}
