/*
 * config.yaml -> struct cps_config: the top level, its sections, the
 * targets list and the entry point. The contract is in config.h.
 *
 * Two passes. First the bytes become a tree of positioned nodes
 * (yaml_doc.h: aliases refused, depth and node count capped). Then a walk
 * checks every key against the schema rows (config_schema.c) and fills the
 * structs, so every error can say file:line:col. JSON targets (`cpscale
 * decide`, config_target.c) go through the same walk, so YAML and JSON
 * accept exactly the same keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_walk.h"
#include "duration.h"
#include "query_pick.h"
#include "units.h"

#define SHOW_MAX CPS_YAML_SHOWN_MAX
#define CFG_PATH_MAX CPS_CONFIG_PATH_MAX
#define CFG_LEADER_JITTER 1.2 /* client-go JitterFactor: renew_deadline > 1.2 x retry_period */
#define CFG_INHERITED_MAX_BYTES (64u << 20) /* strings copied from defaults: into all targets */
#define LE(key) (CPS_KEY_LE_##key - CPS_KEY_LE_ENABLED)
#define TOP(key) (CPS_KEY_##key - CPS_KEY_INTERVAL)
#define NAME(key) cps_config_key_name(key)

/* prometheus.headers: a free-form mapping of HTTP header names to values.
 * Names are tokens and values single lines (no header injection); names
 * compare case-insensitively, as HTTP does. */
static int parse_headers(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                         const char *path, struct cps_prometheus_config *prom)
{
    char sub[CFG_PATH_MAX], shown[SHOW_MAX];
    cps_config_headers_release(prom);
    if (cps_yaml_is_null(node))
        return 0;
    if (node->type != CPS_YAML_MAP)
        return cps_config_fail_at(w, node,
                                  "%s: expected a mapping of header names to values, got %s", path,
                                  cps_config_show(node, shown, sizeof shown));
    size_t n = node->n_items / 2;
    if (n > CPS_CONFIG_MAX_HEADERS)
        return cps_config_fail_at(w, node->items[2 * CPS_CONFIG_MAX_HEADERS],
                                  "%s: at most %d headers", path, CPS_CONFIG_MAX_HEADERS);
    if (n == 0)
        return 0;
    if (!(prom->header_names = calloc(n, sizeof *prom->header_names)) ||
        !(prom->header_values = calloc(n, sizeof *prom->header_values)))
        return cps_config_fail_at(w, node, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const struct cps_yaml_node *key = node->items[2 * i], *value = node->items[2 * i + 1];
        prom->n_headers = i + 1;
        if (cps_config_get_string(w, key, path, 0, &prom->header_names[i]) < 0)
            return -1;
        if (!cps_config_is_header_name(prom->header_names[i]))
            return cps_config_fail_at(w, key, "%s: %s is not a valid HTTP header name", path,
                                      cps_config_show(key, shown, sizeof shown));
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(prom->header_names[j], prom->header_names[i]))
                return cps_config_fail_at(w, key, "duplicate key \"%s\" in %s",
                                          prom->header_names[i], path);
        cps_config_path_key(sub, sizeof sub, path, prom->header_names[i]);
        if (cps_config_get_string(w, value, sub, 0, &prom->header_values[i]) < 0)
            return -1;
        if (!cps_config_is_header_value(prom->header_values[i]))
            return cps_config_fail_at(w, value, "%s: a header value must be one line of text", sub);
    }
    return 0;
}

/* For finding duplicate targets: order by (namespace, name), then by
 * position in the array (all pointers point into config->targets). The
 * kind is left out on purpose: see check_duplicate_targets(). */
static int target_order_cb(const void *a, const void *b)
{
    const struct cps_target *x = *(const struct cps_target *const *)a;
    const struct cps_target *y = *(const struct cps_target *const *)b;
    int c = strcmp(x->namespace, y->namespace);
    if (!c)
        c = strcmp(x->name, y->name);
    if (!c)
        c = x < y ? -1 : x > y ? 1 : 0;
    return c;
}

static int same_name(const struct cps_target *x, const struct cps_target *y)
{
    return !strcmp(x->namespace, y->namespace) && !strcmp(x->name, y->name);
}

/*
 * Two targets for the same object would fight each other, and two of
 * different kinds with one namespace and name (a Deployment and a
 * StatefulSet "web") cannot be told apart by the controller's index nor by
 * the Prometheus labels (namespace, deployment) its queries match on:
 * both are refused. Report the first repeat in file
 * order, at the repeat, naming the original. O(n log n), since a file may
 * hold many targets.
 */
static int check_duplicate_targets(const struct cps_config_walk *w, const struct cps_config *config)
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
        if (!same_name(order[i - 1], order[i])) {
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
    if (strcmp(dup->kind, first->kind) != 0)
        return cps_config_fail_pos(
            w, dup->line, dup->col,
            "targets[%zu]: %s %s/%s has the namespace and name of %s %s/%s (targets[%zu], "
            "line %d): the controller and the Prometheus labels cannot tell them apart",
            (size_t)(dup - config->targets), dup->kind, dup->namespace, dup->name, first->kind,
            first->namespace, first->name, (size_t)(first - config->targets), first->line);
    return cps_config_fail_pos(
        w, dup->line, dup->col,
        "targets[%zu]: duplicate target %s/%s %s (first at targets[%zu], line %d)",
        (size_t)(dup - config->targets), dup->namespace, dup->kind, dup->name,
        (size_t)(first - config->targets), first->line);
}

/* ---- the budget's queries follow their partners ------------------------------ */

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * budget_qps measures what qps does, over the last scrape interval, and
 * budget_p95_ms what p95_ms does. Where a layer (the top level over the
 * built-in defaults, `defaults:` over the top level, a target over
 * `defaults:`) changes qps or p95_ms but leaves the budget query beside it
 * as its parent had it, that budget query would go on reading the parent's
 * metric (the built-in ones read http_requests_total): it is turned off
 * there (""), and the budget counts by the layer's own qps or p95_ms.
 * `check-config` shows it as ''. `parent` is NULL for the top level, whose
 * parent is the built-in defaults; below it, a NULL query is the
 * cluster-wide one, `cluster`'s (cps_query_pick). 0, or -1 out of memory.
 */
static int budget_queries_follow(struct cps_queries *layer, const struct cps_queries *parent,
                                 const struct cps_queries *cluster)
{
    static const enum cps_config_key pairs[][2] = {
        {CPS_KEY_QUERY_QPS, CPS_KEY_QUERY_BUDGET_QPS},
        {CPS_KEY_QUERY_P95, CPS_KEY_QUERY_BUDGET_P95},
    };
    const struct cps_queries *all = cluster ? cluster : layer;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const struct cps_config_row *partner = &cps_config_rows[pairs[i][0]];
        const struct cps_config_row *budget = &cps_config_rows[pairs[i][1]];
        const char *parent_partner = partner->def_text, *parent_budget = budget->def_text;
        if (parent) {
            parent_partner = cps_query_pick(parent, cluster, (enum cps_metric)partner->metric);
            parent_budget = cps_query_pick(parent, cluster, (enum cps_metric)budget->metric);
        }
        if (same_text(cps_query_pick(layer, all, (enum cps_metric)partner->metric),
                      parent_partner) ||
            !same_text(cps_query_pick(layer, all, (enum cps_metric)budget->metric),
                       parent_budget))
            continue;
        char *off = strdup("");
        if (!off)
            return -1;
        char **slot = cps_config_field(budget, layer);
        free(*slot);
        *slot = off;
    }
    return 0;
}

/* Bytes of the strings of a section's string rows in `base`. */
static size_t section_string_bytes(enum cps_config_section section, const void *base)
{
    size_t n_rows, n = 0;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n_rows);
    for (size_t i = 0; i < n_rows; i++) {
        const char *const *slot = cps_config_cfield(&rows[i], base);
        if (slot && (rows[i].type == CPS_CFG_STRING || rows[i].type == CPS_CFG_QUERY) && *slot)
            n += strlen(*slot) + 1;
    }
    return n;
}

/* Bytes of strings a copy of `t` allocates. */
static size_t target_string_bytes(const struct cps_target *t)
{
    return section_string_bytes(CPS_SEC_TARGET, t) +
           section_string_bytes(CPS_SEC_QUERIES, &t->queries);
}

/*
 * Each target starts as a copy of `defaults:`. The copies are bounded
 * (CFG_INHERITED_MAX_BYTES in all), or a small file with a long query in
 * defaults and many targets would expand without limit.
 */
static int parse_targets(const struct cps_config_walk *w, const struct cps_yaml_node *list,
                         const struct cps_config_marks *default_marks, struct cps_config *config)
{
    char path[CFG_PATH_MAX], shown[SHOW_MAX];
    size_t inherited = target_string_bytes(&config->defaults), copied = 0;
    if (cps_yaml_is_null(list))
        return 0;
    if (list->type != CPS_YAML_SEQ)
        return cps_config_fail_at(w, list, "targets: expected a list of targets, got %s",
                                  cps_config_show(list, shown, sizeof shown));
    if (list->n_items > CPS_CONFIG_MAX_TARGETS)
        return cps_config_fail_at(w, list->items[CPS_CONFIG_MAX_TARGETS],
                                  "targets: more than %d targets", CPS_CONFIG_MAX_TARGETS);
    if (list->n_items == 0)
        return 0;
    if (!(config->targets = calloc(list->n_items, sizeof *config->targets)))
        return cps_config_fail_at(w, list, "targets: out of memory");
    for (size_t i = 0; i < list->n_items; i++) {
        const struct cps_yaml_node *item = list->items[i];
        struct cps_target *t = &config->targets[i];
        struct cps_config_marks marks = *default_marks;
        marks.min_replicas.own = marks.max_replicas.own = marks.fallback.own = 0;
        cps_config_path_index(path, sizeof path, NAME(CPS_KEY_TARGETS), i);
        if (item->type != CPS_YAML_MAP)
            return cps_config_fail_at(w, item, "%s: expected a mapping, got %s", path,
                                      cps_config_show(item, shown, sizeof shown));
        copied += inherited;
        if (copied > CFG_INHERITED_MAX_BYTES)
            return cps_config_fail_at(
                w, item,
                "%s: the targets inherit more than %u MiB of strings from defaults "
                "(shorten the queries in defaults:, or give them at the top level)",
                path, CFG_INHERITED_MAX_BYTES >> 20);
        if (cps_target_copy(t, &config->defaults) < 0)
            return cps_config_fail_at(w, item, "%s: out of memory", path);
        config->n_targets = i + 1;
        t->line = item->line;
        t->col = item->col;
        if (cps_config_read_target(w, item, path, CPS_BODY_TARGET, t, &marks) < 0 ||
            cps_config_check_target(w, t, &marks, path, 1, item->line, item->col) < 0)
            return -1;
        if (budget_queries_follow(&t->queries, &config->defaults.queries, &config->queries) < 0)
            return cps_config_fail_at(w, item, "%s: out of memory", path);
    }
    return check_duplicate_targets(w, config);
}

/* The custom rows of prometheus: headers and labels. */
static int prometheus_cb(const struct cps_config_walk *w, const struct cps_config_row *row,
                         const struct cps_yaml_node *node, const char *path, void *base, void *ctx)
{
    (void)ctx;
    if (row == &cps_config_rows[CPS_KEY_PROM_HEADERS])
        return parse_headers(w, node, path, base);
    return cps_config_read_section(w, node, path, CPS_SEC_LABELS, base, 0, NULL, NULL, NULL);
}

/* leader_election, with client-go's rules: lease_duration > renew_deadline >
 * 1.2 x retry_period, so a leader that cannot renew stops before it expires. */
static int parse_leader(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                        struct cps_leader_election_config *le)
{
    const struct cps_yaml_node *v[CPS_CONFIG_MAX_KEYS];
    if (cps_config_read_section(w, node, NAME(CPS_KEY_LEADER), CPS_SEC_LEADER, le, 0, NULL, NULL,
                                v) < 0)
        return -1;
    char lease[CPS_DURATION_TEXT_MAX], renew[CPS_DURATION_TEXT_MAX], retry[CPS_DURATION_TEXT_MAX];
    cps_duration_format(lease, sizeof lease, le->lease_duration_ms);
    cps_duration_format(renew, sizeof renew, le->renew_deadline_ms);
    cps_duration_format(retry, sizeof retry, le->retry_period_ms);
    if (le->lease_duration_ms % CPS_MS_PER_S != 0)
        return cps_config_fail_at(w, v[LE(LEASE_DURATION)],
                                  "%s.%s: %s is not a whole number of seconds (the Lease "
                                  "stores leaseDurationSeconds)",
                                  NAME(CPS_KEY_LEADER), NAME(CPS_KEY_LE_LEASE_DURATION), lease);
    if (le->renew_deadline_ms >= le->lease_duration_ms)
        return cps_config_fail_at(
            w, v[LE(RENEW_DEADLINE)] ? v[LE(RENEW_DEADLINE)] : v[LE(LEASE_DURATION)],
            "%s: %s (%s) must be shorter than %s (%s)", NAME(CPS_KEY_LEADER),
            NAME(CPS_KEY_LE_RENEW_DEADLINE), renew, NAME(CPS_KEY_LE_LEASE_DURATION), lease);
    if ((double)le->renew_deadline_ms <= CFG_LEADER_JITTER * (double)le->retry_period_ms)
        return cps_config_fail_at(w,
                                  v[LE(RETRY_PERIOD)] ? v[LE(RETRY_PERIOD)] : v[LE(RENEW_DEADLINE)],
                                  "%s: %s (%s) must be longer than %g x %s (%s)",
                                  NAME(CPS_KEY_LEADER), NAME(CPS_KEY_LE_RENEW_DEADLINE), renew,
                                  CFG_LEADER_JITTER, NAME(CPS_KEY_LE_RETRY_PERIOD), retry);
    return 0;
}

/* `defaults:`, then `targets:` over copies of it. */
static int parse_bodies(const struct cps_config_walk *w, const struct cps_yaml_node *defaults,
                        const struct cps_yaml_node *targets, struct cps_config *config)
{
    struct cps_config_marks marks;
    memset(&marks, 0, sizeof marks);
    if (defaults) {
        const char *path = NAME(CPS_KEY_DEFAULTS);
        config->defaults.line = defaults->line;
        config->defaults.col = defaults->col;
        if (cps_config_read_target(w, defaults, path, CPS_BODY_DEFAULTS, &config->defaults,
                                   &marks) < 0 ||
            cps_config_check_target(w, &config->defaults, &marks, path, 0, defaults->line,
                                    defaults->col) < 0)
            return -1;
        if (budget_queries_follow(&config->defaults.queries, &config->queries, &config->queries) <
            0)
            return cps_config_fail_at(w, defaults, "%s: out of memory", path);
    }
    if (targets && parse_targets(w, targets, &marks, config) < 0)
        return -1;
    return 0;
}

/* The whole document: every section over the built-in defaults, in the
 * order interval, listen, prometheus, queries, leader_election, sharding, sim,
 * defaults, targets. */
static int parse_root(const struct cps_config_walk *w, const struct cps_yaml_node *root,
                      struct cps_config *config)
{
    const struct cps_yaml_node *v[CPS_CONFIG_MAX_KEYS];
    char shown[SHOW_MAX];
    if (!root)
        return cps_config_fail_pos(w, 1, 1, "the config is empty (expected a mapping of settings)");
    if (cps_yaml_is_null(root))
        return cps_config_fail_at(w, root, "the config is empty (expected a mapping of settings)");
    if (root->type != CPS_YAML_MAP)
        return cps_config_fail_at(w, root, "the config must be a mapping of settings, got %s",
                                  cps_config_show(root, shown, sizeof shown));
    if (cps_config_map_fields(w, root, "", CPS_SEC_TOP, v, NULL) < 0)
        return -1;
    for (enum cps_config_key k = CPS_KEY_INTERVAL; k <= CPS_KEY_LISTEN; k++)
        if (v[k - CPS_KEY_INTERVAL] &&
            cps_config_read_row(w, &cps_config_rows[k], v[k - CPS_KEY_INTERVAL], NAME(k), config,
                                0) < 0)
            return -1;
    if (v[TOP(PROMETHEUS)] &&
        cps_config_read_section(w, v[TOP(PROMETHEUS)], NAME(CPS_KEY_PROMETHEUS), CPS_SEC_PROMETHEUS,
                                &config->prometheus, 0, prometheus_cb, NULL, NULL) < 0)
        return -1;
    if (v[TOP(QUERIES)] &&
        cps_config_read_section(w, v[TOP(QUERIES)], NAME(CPS_KEY_QUERIES), CPS_SEC_QUERIES,
                                &config->queries, 1, NULL, NULL, NULL) < 0)
        return -1;
    if (budget_queries_follow(&config->queries, NULL, NULL) < 0)
        return cps_config_fail_at(w, root, "queries: out of memory");
    if (v[TOP(LEADER)] && parse_leader(w, v[TOP(LEADER)], &config->leader_election) < 0)
        return -1;
    if (v[TOP(SHARDING)] &&
        cps_config_read_section(w, v[TOP(SHARDING)], NAME(CPS_KEY_SHARDING), CPS_SEC_SHARDING,
                                &config->sharding, 0, NULL, NULL, NULL) < 0)
        return -1;
    /* shards are Leases: without leader election every replica would act
     * on every target, the very thing the shards were asked to prevent */
    if (config->sharding.shards > 1 && !config->leader_election.enabled)
        return cps_config_fail_at(w, v[TOP(SHARDING)], "%s.%s (%d) needs %s.enabled: true",
                                  NAME(CPS_KEY_SHARDING), NAME(CPS_KEY_SH_SHARDS),
                                  config->sharding.shards, NAME(CPS_KEY_LEADER));
    if (v[TOP(SIM)] && cps_config_read_section(w, v[TOP(SIM)], NAME(CPS_KEY_SIM), CPS_SEC_SIM,
                                               &config->sim, 0, NULL, NULL, NULL) < 0)
        return -1;
    return parse_bodies(w, v[TOP(DEFAULTS)], v[TOP(TARGETS)], config);
}

struct cps_config *cps_config_load_bytes(const char *bytes, size_t len, const char *source,
                                         struct cps_err *err)
{
    struct cps_config_walk w = {.source = source ? source : "<config>", .err = err};
    struct cps_yaml_node *root = NULL;
    struct cps_config *config = calloc(1, sizeof *config);
    if (!config) {
        cps_err_set(err, w.source, 0, 0, "out of memory");
        return NULL;
    }
    w.warning = config->warning;
    w.warning_size = sizeof config->warning;
    if (cps_config_init_defaults(config) < 0 || !(config->source = strdup(w.source))) {
        cps_err_set(err, w.source, 0, 0, "out of memory");
        goto fail;
    }
    if (cps_yaml_parse(bytes ? bytes : "", bytes ? len : 0, w.source, &cps_config_yaml_style, &root,
                       err) < 0)
        goto fail;
    if (parse_root(&w, root, config) < 0)
        goto fail;
    cps_yaml_node_free(root);
    return config;

fail:
    cps_yaml_node_free(root);
    cps_config_free(config);
    return NULL;
}
