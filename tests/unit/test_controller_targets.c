/*
 * The controller's target table (controller/targets.c) and retry
 * discipline (controller/backoff.c): adoption on reload, query planning,
 * backoff. No network: the table is driven with configs parsed from YAML.
 */
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "controller.h"
#include "cps_test.h"
#include "k8s_names.h"
#include "kube.h"

/* Cluster-wide queries for every metric, so each test states only what it
 * overrides. */
#define QUERIES                                                                \
    "queries:\n"                                                               \
    "  qps: sum by (namespace, deployment) (rate(r[1m]))\n"                    \
    "  p95_ms: p95_all\n"                                                      \
    "  cpu_utilization: cpu_all\n"                                             \
    "  cost_per_pod_hour: cost_all\n"                                          \
    "  budget_qps: qps_last_scrape\n"                                          \
    "  budget_p95_ms: p95_last_scrape\n"

static struct cps_config *load(const char *yaml)
{
    struct cps_err err = {0};
    struct cps_config *config = cps_config_load_bytes(yaml, strlen(yaml), "test.yaml", &err);
    if (!config)
        CPS_FAIL_AT("config: %s", err.message);
    return config;
}

/* A controller holding `yaml`'s targets (config kept in ctl->config). */
static int start(struct cps_controller *ctl, const char *yaml)
{
    memset(ctl, 0, sizeof *ctl);
    ctl->config = load(yaml);
    if (!ctl->config)
        return -1;
    return cps_targets_adopt(ctl, ctl->config);
}

static void stop(struct cps_controller *ctl)
{
    cps_targets_free_queries(ctl);
    cps_targets_release_all(ctl);
    cps_config_free(ctl->config);
}

/* Swap in a new config as a reload does (lifecycle.c's reload_config):
 * adopt, then replace; a refused one is freed and the old one stays. */
static int reload(struct cps_controller *ctl, const char *yaml)
{
    struct cps_config *config = load(yaml);
    if (!config)
        return -1;
    if (cps_targets_adopt(ctl, config) != 0) {
        cps_config_free(config);
        return -1;
    }
    cps_config_free(ctl->config);
    ctl->config = config;
    return 0;
}

/* ---- adoption -------------------------------------------------------------- */

#define TWO_TARGETS                                                            \
    QUERIES "targets:\n"                                                       \
            "  - {namespace: a, deployment: x}\n"                              \
            "  - {namespace: b, deployment: y}\n"

static void test_adoption(void)
{
    static const struct {
        const char *name;
        const char *reloaded;
        const char *kept_ns, *kept_name; /* NULL: nothing kept */
        const char *gone_ns, *gone_name; /* must not be found; NULL: none */
        size_t n_targets;
        int changed; /* b/y's settings changed: learned state kept, backoff cleared */
    } rows[] = {
        {"same targets keep state", TWO_TARGETS, "b", "y", NULL, NULL, 2, 0},
        {"a removed target is dropped",
         QUERIES "targets:\n  - {namespace: b, deployment: y}\n", "b", "y", "a", "x", 1, 0},
        {"a new target starts fresh",
         QUERIES "targets:\n  - {namespace: b, deployment: y}\n  - {namespace: c, deployment: z}\n",
         "b", "y", "a", "x", 2, 0},
        {"another kind is another target",
         QUERIES "targets:\n  - {namespace: a, deployment: x}\n"
                 "  - {namespace: b, name: y, kind: StatefulSet}\n",
         NULL, NULL, NULL, NULL, 2, 0},
        {"a changed target keeps what it learned but not its backoff",
         QUERIES "targets:\n  - {namespace: a, deployment: x}\n"
                 "  - {namespace: b, deployment: y, max_replicas: 7}\n",
         "b", "y", NULL, NULL, 2, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        struct cps_controller ctl;
        if (start(&ctl, TWO_TARGETS) != 0) {
            CPS_ROW_END(rows[i].name);
            continue;
        }
        /* learned state on b/y */
        long t = cps_targets_find(&ctl, "b", "y");
        ASSERT_EQ(t, 1);
        ctl.targets[t].scale_ups = 7;
        ctl.targets[t].decisions[0] = 3;
        ctl.targets[t].backoff_until_ms = 12345;
        ctl.targets[t].write_failures = 2;
        struct cps_history *history = ctl.targets[t].history;
        struct cps_policy_state *policy = ctl.targets[t].policy;
        ASSERT_EQ(reload(&ctl, rows[i].reloaded), 0);
        ASSERT_EQ(ctl.n_targets, rows[i].n_targets);
        long after = cps_targets_find(&ctl, "b", "y");
        ASSERT_TRUE(after >= 0);
        if (after >= 0) {
            const struct cps_target_runtime *rt = &ctl.targets[after];
            int kept = rows[i].kept_ns != NULL;
            ASSERT_EQ(rt->scale_ups, kept ? 7 : 0);
            ASSERT_EQ(rt->decisions[0], kept ? 3 : 0);
            ASSERT_EQ(rt->backoff_until_ms, kept && !rows[i].changed ? 12345 : 0);
            ASSERT_EQ(rt->write_failures, kept && !rows[i].changed ? 2 : 0);
            ASSERT_EQ(rt->history == history, kept);
            ASSERT_EQ(rt->policy == policy, kept);
        }
        if (rows[i].gone_ns)
            ASSERT_EQ(cps_targets_find(&ctl, rows[i].gone_ns, rows[i].gone_name), -1);
        for (size_t k = 0; k < ctl.n_targets; k++)
            ASSERT_EQ(cps_targets_find(&ctl, ctl.targets[k].target->namespace,
                                       ctl.targets[k].target->name) >= 0, 1);
        stop(&ctl);
        CPS_ROW_END(rows[i].name);
    }
}

/* The index finds every target among many (collisions, growth). */
static void test_index_many(void)
{
    char yaml[65536];
    size_t n = 0;
    int len = snprintf(yaml, sizeof yaml, "%stargets:\n", QUERIES);
    for (; n < 200; n++)
        len += snprintf(yaml + len, sizeof yaml - (size_t)len,
                        "  - {namespace: ns%zu, deployment: d%zu}\n", n % 7, n);
    struct cps_controller ctl;
    if (start(&ctl, yaml) != 0)
        return;
    ASSERT_EQ(ctl.n_targets, n);
    for (size_t i = 0; i < n; i++) {
        char ns[16], name[16];
        snprintf(ns, sizeof ns, "ns%zu", i % 7);
        snprintf(name, sizeof name, "d%zu", i);
        ASSERT_EQ(cps_targets_find(&ctl, ns, name), (long)i);
    }
    ASSERT_EQ(cps_targets_find(&ctl, "ns1", "d0"), -1);
    ASSERT_EQ(cps_targets_find(&ctl, NULL, "d0"), -1);
    stop(&ctl);
}

/* A kind of 63 characters, the longest Kubernetes allows and the longest
 * the config accepts (test_config.c), makes a runtime: its plural resource
 * fits CPS_KUBE_RESOURCE_MAX, so the reload that adds it is not refused and
 * the target that stays keeps what it learned. */
static void test_longest_kind(void)
{
    char kind[CPS_K8S_DNS_LABEL_MAX + 1], resource[CPS_KUBE_RESOURCE_MAX] = "";
    memset(kind, 'k', CPS_K8S_DNS_LABEL_MAX);
    kind[0] = 'K';
    kind[CPS_K8S_DNS_LABEL_MAX] = '\0';
    ASSERT_EQ(cps_kube_resource_of_kind(kind, resource, sizeof resource), 0);
    ASSERT_EQ(strlen(resource), CPS_K8S_DNS_LABEL_MAX + 1);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "%s  - {namespace: c, name: z, kind: %s, api_version: example.com/v1}\n",
             TWO_TARGETS, kind);
    struct cps_controller ctl;
    if (start(&ctl, TWO_TARGETS) != 0)
        return;
    ctl.targets[1].scale_ups = 7;
    ASSERT_EQ(reload(&ctl, yaml), 0);
    ASSERT_EQ(ctl.n_targets, 3);
    long kept = cps_targets_find(&ctl, "b", "y"), added = cps_targets_find(&ctl, "c", "z");
    ASSERT_TRUE(kept >= 0 && added >= 0);
    if (kept >= 0 && added >= 0) {
        ASSERT_EQ(ctl.targets[kept].scale_ups, 7);
        char *path = cps_targets_path(&ctl.targets[added], CPS_PATH_OBJECT);
        char want[256];
        snprintf(want, sizeof want, "/apis/example.com/v1/namespaces/c/%s/z", resource);
        ASSERT_STR_EQ(path, want);
        free(path);
        /* the longest kind's scale subresource still fits the counter's
         * resource buffer the controller makes for it */
        char scale_of[CPS_KUBE_RESOURCE_MAX + sizeof "/scale"];
        cps_targets_scale_resource(&ctl.targets[added], scale_of, sizeof scale_of);
        snprintf(want, sizeof want, "%s/scale", resource);
        ASSERT_STR_EQ(scale_of, want);
    }
    stop(&ctl);
}

/* Every request on a target's scale subresource is counted under its own
 * kind's resource: a StatefulSet's GETs were counted as
 * "deployments/scale" (its PATCHes were right), so its 403s were not
 * where cpscale_kube_requests_total is said to show them. */
static void test_scale_resource_by_kind(void)
{
    struct cps_controller ctl;
    if (start(&ctl, QUERIES "targets:\n  - {namespace: a, deployment: x}\n"
                            "  - {namespace: b, name: y, kind: StatefulSet}\n") != 0)
        return;
    char scale_of[CPS_KUBE_RESOURCE_MAX + sizeof "/scale"];
    long deployment = cps_targets_find(&ctl, "a", "x"), sts = cps_targets_find(&ctl, "b", "y");
    ASSERT_TRUE(deployment >= 0 && sts >= 0);
    if (deployment >= 0 && sts >= 0) {
        cps_targets_scale_resource(&ctl.targets[deployment], scale_of, sizeof scale_of);
        ASSERT_STR_EQ(scale_of, "deployments/scale");
        cps_targets_scale_resource(&ctl.targets[sts], scale_of, sizeof scale_of);
        ASSERT_STR_EQ(scale_of, "statefulsets/scale");
        cps_targets_scale_resource(&ctl.targets[sts], scale_of, 8); /* too small: empty */
        ASSERT_STR_EQ(scale_of, "");
    }
    stop(&ctl);
}

/* ---- a refused reload changes nothing ------------------------------------- */

/* Allocation failure, for the test only: tests/CMakeLists.txt links this
 * runner with -Wl,--wrap=malloc,--wrap=calloc, so every malloc and calloc
 * of the code under test comes through here. Armed, the allocation
 * numbered fail_at (0: the next one) returns NULL, the others go through;
 * disarmed (the default), nothing changes. */
#ifdef CPS_TEST_WRAPPED_ALLOC
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);

static struct {
    int armed;
    size_t fail_at, count;
} alloc_failure;

static int alloc_should_fail(void)
{
    return alloc_failure.armed && alloc_failure.count++ == alloc_failure.fail_at;
}

void *__wrap_malloc(size_t size)
{
    return alloc_should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_should_fail() ? NULL : __real_calloc(n, size);
}

static void alloc_fail_arm(size_t fail_at)
{
    alloc_failure.armed = 1;
    alloc_failure.fail_at = fail_at;
    alloc_failure.count = 0;
}

/* Disarm; 1 when the armed allocation was reached (and failed). */
static int alloc_fail_disarm(void)
{
    alloc_failure.armed = 0;
    return alloc_failure.count > alloc_failure.fail_at;
}
#endif

/* b/y as it learned it, to compare with after a reload. */
struct learned_state {
    struct cps_history *history;
    struct cps_policy_state *policy;
    struct cps_event_series *events;
    struct cps_scale_failure_count *failures;
};

/* 1 when the runtime still holds `learned` and its figures. */
static int holds_learned_state(const struct cps_target_runtime *rt,
                               const struct learned_state *learned)
{
    return rt->history == learned->history && rt->policy == learned->policy &&
           rt->events == learned->events && rt->failures == learned->failures &&
           rt->policy->service_rate_estimate == 42 && rt->policy->capacity_samples == 9 &&
           rt->scale_ups == 7 && rt->decisions[0] == 3 && rt->backoff_until_ms == 12345 &&
           rt->write_failures == 2;
}

/* A reload refused by cps_targets_adopt (out of memory at any of its
 * allocations: a runtime of a target after the one that stays, or the
 * index) leaves the table, the index, the series memo and every target's
 * learned state as they were; the reload that then succeeds moves the
 * learned state across. Fails every allocation in turn until none is
 * left to fail. */
static void test_refused_reload_changes_nothing(void)
{
#ifdef CPS_TEST_WRAPPED_ALLOC
    struct cps_controller ctl;
    if (start(&ctl, TWO_TARGETS) != 0)
        return;
    struct cps_target_runtime *rt = &ctl.targets[1];
    rt->policy->service_rate_estimate = 42;
    rt->policy->capacity_samples = 9;
    rt->scale_ups = 7;
    rt->decisions[0] = 3;
    rt->backoff_until_ms = 12345;
    rt->write_failures = 2;
    rt->events = calloc(1, sizeof *rt->events);
    rt->failures = calloc(CPS_SCALE_FAILURE_CODES, sizeof *rt->failures);
    ctl.series_memo[CPS_METRIC_QPS].targets = calloc(2, sizeof(int32_t));
    ctl.series_memo[CPS_METRIC_QPS].n = 2;
    const struct learned_state learned = {rt->history, rt->policy, rt->events, rt->failures};
    const struct cps_target_runtime *table = ctl.targets;
    const struct cps_target_slot *slots = ctl.target_index.slots;
    const int32_t *memo = ctl.series_memo[CPS_METRIC_QPS].targets;
    /* b/y stays and comes first: its state is taken before c/z and the
     * index are made */
    struct cps_config *config = load(QUERIES "targets:\n"
                                             "  - {namespace: b, deployment: y}\n"
                                             "  - {namespace: c, deployment: z}\n"
                                             "  - {namespace: a, deployment: x}\n");
    if (!config) {
        stop(&ctl);
        return;
    }
    size_t fail_at = 0;
    for (;; fail_at++) {
        alloc_fail_arm(fail_at);
        int rc = cps_targets_adopt(&ctl, config);
        if (!alloc_fail_disarm()) {
            ASSERT_EQ(rc, 0);
            break;
        }
        ASSERT_EQ(rc, -1);
        ASSERT_TRUE(ctl.targets == table && ctl.n_targets == 2 && ctl.target_index.slots == slots);
        ASSERT_TRUE(ctl.series_memo[CPS_METRIC_QPS].targets == memo);
        ASSERT_EQ(cps_targets_find(&ctl, "a", "x"), 0);
        ASSERT_EQ(cps_targets_find(&ctl, "b", "y"), 1);
        ASSERT_EQ(cps_targets_find(&ctl, "c", "z"), -1);
        ASSERT_TRUE(ctl.targets == table && holds_learned_state(&ctl.targets[1], &learned));
        ASSERT_TRUE(ctl.targets[1].target == &ctl.config->targets[1]);
        if (cps_test_current_failed) {
            fprintf(stderr, "  (with allocation %zu of the reload failed)\n", fail_at);
            break;
        }
    }
    if (!cps_test_current_failed) {
        /* the table, three runtimes of two allocations each, the index's two */
        ASSERT_TRUE(fail_at >= 9);
        cps_config_free(ctl.config);
        ctl.config = config;
        ASSERT_EQ(ctl.n_targets, 3);
        ASSERT_EQ(cps_targets_find(&ctl, "b", "y"), 0);
        ASSERT_TRUE(holds_learned_state(&ctl.targets[0], &learned));
        ASSERT_TRUE(ctl.series_memo[CPS_METRIC_QPS].targets == NULL);
    } else if (ctl.config != config) {
        cps_config_free(config);
    }
    stop(&ctl);
#else
    fprintf(stderr, "  skipped test_refused_reload_changes_nothing: needs the linker's --wrap\n");
#endif
}

/* ---- query planning ------------------------------------------------------ */

static void test_plan(void)
{
    static const struct {
        const char *name;
        const char *yaml;
        size_t n_queries;
        /* the qps query of target 1: its index and text */
        int qps_index_1;
        const char *qps_text_1;
        long qps_owner_1;
    } rows[] = {
        {"shared texts: one query per metric", TWO_TARGETS, 6, 0,
         "sum by (namespace, deployment) (rate(r[1m]))", -1},
        {"an empty optional query is not sent",
         "queries:\n"
         "  qps: sum by (namespace, deployment) (rate(r[1m]))\n"
         "  budget_qps: ''\n"
         "  budget_p95_ms: ''\n"
         "targets:\n"
                 "  - {namespace: a, deployment: x}\n"
                 "  - {namespace: b, deployment: y}\n",
         4, 0, "sum by (namespace, deployment) (rate(r[1m]))", -1},
        {"$namespace/$deployment: one query per target",
         "queries:\n"
         "  qps: sum(rate(r{namespace=\"$namespace\", pod=~\"$deployment-.*\"}[1m]))\n"
         "targets:\n"
         "  - {namespace: a, deployment: x}\n"
         "  - {namespace: b, deployment: y}\n",
         /* its own qps turns the built-in budget_qps off (config_load.c) */
         2 + 4, 5, "sum(rate(r{namespace=\"b\", pod=~\"y-.*\"}[1m]))", 1},
        {"a target's own text is its own query",
         QUERIES "targets:\n"
                 "  - {namespace: a, deployment: x}\n"
                 "  - {namespace: b, deployment: y, queries: {qps: mine}}\n",
         6 + 1, 6, "mine", -1}, /* y has no budget_qps: its own qps changed */
        {"equal own texts are shared",
         QUERIES "targets:\n"
                 "  - {namespace: a, deployment: x, queries: {qps: mine}}\n"
                 "  - {namespace: b, deployment: y, queries: {qps: mine}}\n",
         5, 0, "mine", -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        struct cps_controller ctl;
        if (start(&ctl, rows[i].yaml) == 0 && cps_targets_plan_queries(&ctl) == 0) {
            ASSERT_EQ(ctl.n_queries, rows[i].n_queries);
            int q = ctl.targets[1].query_index[CPS_METRIC_QPS];
            ASSERT_EQ(q, rows[i].qps_index_1);
            if (q >= 0 && (size_t)q < ctl.n_queries) {
                ASSERT_STR_EQ(ctl.queries[q].promql, rows[i].qps_text_1);
                ASSERT_EQ(ctl.queries[q].metric, CPS_METRIC_QPS);
                ASSERT_EQ(ctl.queries[q].target_index, rows[i].qps_owner_1);
            }
            /* ready replicas come from the Deployment, never a query */
            ASSERT_EQ(ctl.targets[1].query_index[CPS_METRIC_READY], -1);
        }
        stop(&ctl);
        CPS_ROW_END(rows[i].name);
    }
}

/* ---- backoff ----------------------------------------------------------------- */

static void test_backoff(void)
{
    static const struct {
        const char *name;
        int failures;
        int64_t retry_after_ms;
        double jitter;
        int64_t want_ms;
    } rows[] = {
        {"first failure: the base", 1, 0, 1.0, 1000},
        {"doubles", 2, 0, 1.0, 2000},
        {"doubles again", 4, 0, 1.0, 8000},
        {"jitter low", 3, 0, 0.5, 2000},
        {"jitter high", 3, 0, 1.499, 5996},
        {"capped at 5 min", 10, 0, 1.0, 300000},
        {"capped long after", 60, 0, 1.0, 300000},
        {"jitter on the cap", 60, 0, 0.5, 150000},
        {"jitter never stretches the cap", 60, 0, 1.499, 300000},
        {"nor a Retry-After at the cap", 60, INT64_C(1000000000000), 1.499, 300000},
        {"Retry-After longer wins", 1, 30000, 1.0, 30000},
        {"Retry-After shorter loses", 4, 500, 1.0, 8000},
        {"Retry-After past the cap is capped", 60, 600000, 1.0, 300000},
        {"a 31-year Retry-After is capped", 1, INT64_C(1000000000000), 1.0, 300000},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        ASSERT_EQ(cps_backoff_delay_ms(rows[i].failures, rows[i].retry_after_ms, rows[i].jitter),
                  rows[i].want_ms);
        CPS_ROW_END(rows[i].name);
    }
    static const struct {
        long status;
        int retry;
    } codes[] = {{200, 0}, {404, 0}, {409, 0}, {429, 1}, {500, 1}, {503, 1}, {0, 0}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CPS_ROW_BEGIN();
        ASSERT_EQ(cps_backoff_is_retryable(codes[i].status), codes[i].retry);
        CPS_ROW_END("retryable status");
    }
}

int main(void)
{
    CPS_RUN(test_adoption);
    CPS_RUN(test_index_many);
    CPS_RUN(test_longest_kind);
    CPS_RUN(test_scale_resource_by_kind);
    CPS_RUN(test_refused_reload_changes_nothing);
    CPS_RUN(test_plan);
    CPS_RUN(test_backoff);
    CPS_TEST_END();
}
