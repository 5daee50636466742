/*
 * Target bodies (`defaults:`, each entry of `targets:`, and `cpscale
 * decide`'s JSON target): their identity, their sections through the schema
 * rows, and the checks across their keys. The contract is in config_walk.h
 * (cps_config_read_target, cps_config_check_target) and config.h
 * (cps_target_from_json).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_walk.h"
#include "json_pos.h"

#define SHOW_MAX CPS_YAML_SHOWN_MAX
#define PATH_MAX_ CPS_CONFIG_PATH_MAX
#define NUMBER_TEXT_MAX 64 /* a JSON number as text */

/* A target key's index among the target section's rows. */
#define TK(key) (CPS_KEY_T_##key - CPS_KEY_T_NAMESPACE)
#define ROW(key) (&cps_config_rows[key])
#define NAME(key) cps_config_key_name(key)

static void mark_set(struct cps_config_mark *m, const struct cps_yaml_node *node)
{
    m->line = node->line;
    m->col = node->col;
    m->own = 1;
}

static int set_text(char **slot, const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* behavior.*.policies: a list that replaces the inherited one and must hold
 * 1..CPS_MAX_SCALING_POLICIES entries, as the API server requires. */
static int read_policies(const struct cps_config_walk *w, const struct cps_yaml_node *list,
                         const char *path, struct cps_scaling_rules *rules)
{
    char item_path[PATH_MAX_], field[PATH_MAX_], shown[SHOW_MAX];
    size_t n_rows;
    const struct cps_config_row *rows = cps_config_section_rows(CPS_SEC_POLICY_ITEM, &n_rows);
    if (cps_yaml_is_null(list))
        return 0;
    if (list->type != CPS_YAML_SEQ)
        return cps_config_fail_at(w, list, "%s: expected a list of policies, got %s", path,
                                  cps_config_show(list, shown, sizeof shown));
    if (list->n_items == 0)
        return cps_config_fail_at(w, list, "%s: must list at least one policy", path);
    struct cps_scaling_policy policies[CPS_MAX_SCALING_POLICIES];
    for (size_t i = 0; i < list->n_items; i++) {
        const struct cps_yaml_node *item = list->items[i];
        const struct cps_yaml_node *f[CPS_CONFIG_MAX_KEYS];
        cps_config_path_index(item_path, sizeof item_path, path, i);
        if (i == CPS_MAX_SCALING_POLICIES)
            return cps_config_fail_at(w, item, "%s: at most %d policies are allowed", item_path,
                                      CPS_MAX_SCALING_POLICIES);
        if (cps_config_map_fields(w, item, item_path, CPS_SEC_POLICY_ITEM, f, NULL) < 0)
            return -1;
        for (size_t k = 0; k < n_rows; k++)
            if (!f[k])
                return cps_config_fail_at(w, item, "%s: missing %s", item_path, rows[k].name);
        for (size_t k = 0; k < n_rows; k++) {
            cps_config_path_key(field, sizeof field, item_path, rows[k].name);
            if (cps_config_read_row(w, &rows[k], f[k], field, &policies[i], 0) < 0)
                return -1;
        }
    }
    memcpy(rules->policies, policies, list->n_items * sizeof policies[0]);
    rules->n_policies = (int)list->n_items;
    return 0;
}

/* The custom rows of behavior, scaleUp/scaleDown (HPA autoscaling/v2
 * shape): keys that are absent keep their value (the Kubernetes default, or
 * what `defaults:` said). */
static int behavior_cb(const struct cps_config_walk *w, const struct cps_config_row *row,
                       const struct cps_yaml_node *node, const char *path, void *base, void *ctx)
{
    (void)ctx;
    if (row->section == CPS_SEC_RULES) /* policies */
        return read_policies(w, node, path, base);
    return cps_config_read_section(w, node, path, CPS_SEC_RULES, cps_config_field(row, base), 0,
                                   behavior_cb, NULL, NULL);
}

/* capacity.rps_per_pod: auto, or a number of requests/s. */
static int capacity_cb(const struct cps_config_walk *w, const struct cps_config_row *row,
                       const struct cps_yaml_node *node, const char *path, void *base, void *ctx)
{
    struct cps_target *t = base;
    char shown[SHOW_MAX];
    (void)ctx;
    if (node->type == CPS_YAML_SCALAR && !strcmp(node->text, "auto")) {
        t->capacity_auto = 1;
        t->capacity_rps_per_pod = 0;
        return 0;
    }
    const char *text = cps_yaml_plain_text(node);
    if (!text || strspn(text, "0123456789.eE+-") != strlen(text))
        return cps_config_fail_at(w, node, "%s: expected auto or a number, got %s", path,
                                  cps_config_show(node, shown, sizeof shown));
    if (cps_config_get_number(w, node, path, row->lo, row->hi, row->flags,
                              &t->capacity_rps_per_pod) < 0)
        return -1;
    t->capacity_auto = 0;
    return 0;
}

/* on_missing_metrics: hold, or {fallback: N}. */
static int read_on_missing(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                           const char *path, struct cps_target *t, struct cps_config_marks *marks)
{
    char shown[SHOW_MAX], field[PATH_MAX_];
    const struct cps_yaml_node *f[CPS_CONFIG_MAX_KEYS];
    if (node->type == CPS_YAML_SCALAR && !strcmp(node->text, "hold")) {
        t->on_missing = CPS_MISSING_HOLD;
        t->fallback_replicas = 0;
        marks->fallback.own = 0;
        return 0;
    }
    if (node->type != CPS_YAML_MAP)
        return cps_config_fail_at(w, node, "%s: expected hold or {fallback: N}, got %s", path,
                                  cps_config_show(node, shown, sizeof shown));
    if (cps_config_map_fields(w, node, path, CPS_SEC_MISSING, f, NULL) < 0)
        return -1;
    if (!f[0])
        return cps_config_fail_at(w, node, "%s: missing %s", path, NAME(CPS_KEY_MISSING_FALLBACK));
    cps_config_path_key(field, sizeof field, path, NAME(CPS_KEY_MISSING_FALLBACK));
    if (cps_config_read_row(w, ROW(CPS_KEY_MISSING_FALLBACK), f[0], field, t, 0) < 0)
        return -1;
    t->on_missing = CPS_MISSING_FALLBACK;
    mark_set(&marks->fallback, f[0]);
    return 0;
}

/* kind (and the api_version it implies), or deployment's Deployment. */
static int read_kind(const struct cps_config_walk *w, const struct cps_yaml_node *const *v,
                     const char *path, struct cps_target *t)
{
    char sub[PATH_MAX_];
    if (!v[TK(KIND)]) {
        if (v[TK(DEPLOYMENT)] &&
            (set_text(&t->kind, ROW(CPS_KEY_T_KIND)->def_text) < 0 ||
             set_text(&t->api_version, ROW(CPS_KEY_T_API_VERSION)->def_text) < 0))
            return cps_config_fail_at(w, v[TK(DEPLOYMENT)], "%s: out of memory", path);
        return 0;
    }
    cps_config_path_key(sub, sizeof sub, path, NAME(CPS_KEY_T_KIND));
    if (cps_config_read_row(w, ROW(CPS_KEY_T_KIND), v[TK(KIND)], sub, t, 0) < 0)
        return -1;
    const char *api = cps_config_known_api_version(t->kind);
    if (!api && !v[TK(API_VERSION)])
        return cps_config_fail_at(
            w, v[TK(KIND)], "%s: kind \"%s\" needs an api_version (e.g. apps/v1)", sub, t->kind);
    if (api && set_text(&t->api_version, api) < 0)
        return cps_config_fail_at(w, v[TK(KIND)], "%s: out of memory", sub);
    return 0;
}

/* namespace / deployment / kind / name / api_version of a target body. */
static int read_identity(const struct cps_config_walk *w, const struct cps_yaml_node *const *v,
                         const struct cps_yaml_node *const *keys, const char *path,
                         struct cps_target *t)
{
    char sub[PATH_MAX_];
    if (v[TK(NAMESPACE)]) {
        cps_config_path_key(sub, sizeof sub, path, NAME(CPS_KEY_T_NAMESPACE));
        if (cps_config_read_row(w, ROW(CPS_KEY_T_NAMESPACE), v[TK(NAMESPACE)], sub, t, 0) < 0)
            return -1;
    }
    if (v[TK(DEPLOYMENT)] && v[TK(NAME)])
        return cps_config_fail_at(w, keys[TK(NAME)],
                                  "%s: give either deployment or kind and name, not both", path);
    if (v[TK(DEPLOYMENT)] && v[TK(KIND)] &&
        !(v[TK(KIND)]->type == CPS_YAML_SCALAR &&
          !strcmp(v[TK(KIND)]->text, ROW(CPS_KEY_T_KIND)->def_text)))
        return cps_config_fail_at(w, keys[TK(DEPLOYMENT)],
                                  "%s: deployment names a Deployment; with kind, use name", path);
    if (read_kind(w, v, path, t) < 0)
        return -1;
    if (v[TK(API_VERSION)]) {
        cps_config_path_key(sub, sizeof sub, path, NAME(CPS_KEY_T_API_VERSION));
        if (cps_config_read_row(w, ROW(CPS_KEY_T_API_VERSION), v[TK(API_VERSION)], sub, t, 0) < 0)
            return -1;
    }
    /* deployment: shares name's field and check */
    enum cps_config_key key = v[TK(DEPLOYMENT)] ? CPS_KEY_T_DEPLOYMENT : CPS_KEY_T_NAME;
    const struct cps_yaml_node *name = v[TK(DEPLOYMENT)] ? v[TK(DEPLOYMENT)] : v[TK(NAME)];
    if (name) {
        cps_config_path_key(sub, sizeof sub, path, NAME(key));
        struct cps_config_row as_string = *ROW(key);
        as_string.type = CPS_CFG_STRING;
        if (cps_config_read_row(w, &as_string, name, sub, t, 0) < 0)
            return -1;
    }
    return 0;
}

/* The custom rows of a target body that are plain sections. */
static int target_cb(const struct cps_config_walk *w, const struct cps_config_row *row,
                     const struct cps_yaml_node *node, const char *path, void *base, void *ctx)
{
    struct cps_target *t = base;
    (void)ctx;
    if (row == ROW(CPS_KEY_T_SLO))
        return cps_config_read_section(w, node, path, CPS_SEC_SLO, t, 0, NULL, NULL, NULL);
    if (row == ROW(CPS_KEY_T_COST))
        return cps_config_read_section(w, node, path, CPS_SEC_COST, t, 0, NULL, NULL, NULL);
    if (row == ROW(CPS_KEY_T_CAPACITY))
        return cps_config_read_section(w, node, path, CPS_SEC_CAPACITY, t, 0, capacity_cb, NULL,
                                       NULL);
    if (row == ROW(CPS_KEY_T_QUERIES))
        return cps_config_read_section(w, node, path, CPS_SEC_QUERIES, &t->queries, 0, NULL, NULL,
                                       NULL);
    if (row == ROW(CPS_KEY_T_BEHAVIOR))
        return cps_config_read_section(w, node, path, CPS_SEC_BEHAVIOR, &t->behavior, 0,
                                       behavior_cb, NULL, NULL);
    return cps_config_read_section(w, node, path, CPS_SEC_POLICY, &t->policy, 0, NULL, NULL, NULL);
}

/* Read the rows `keys` of a target body, in that order. */
static int read_rows(const struct cps_config_walk *w, const struct cps_yaml_node *const *v,
                     const char *path, const enum cps_config_key *keys, size_t n_keys,
                     struct cps_target *t)
{
    char sub[PATH_MAX_];
    for (size_t i = 0; i < n_keys; i++) {
        const struct cps_config_row *row = ROW(keys[i]);
        const struct cps_yaml_node *node = v[keys[i] - CPS_KEY_T_NAMESPACE];
        if (!node)
            continue;
        cps_config_path_key(sub, sizeof sub, path, row->name);
        int rc = row->type == CPS_CFG_CUSTOM ? target_cb(w, row, node, sub, t, NULL)
                                             : cps_config_read_row(w, row, node, sub, t, 0);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The walk's order (which error of several is reported first): identity,
 * replicas, the small mappings, on_missing_metrics, then the rest. */
int cps_config_read_target(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                           const char *path, enum cps_config_body mode, struct cps_target *t,
                           struct cps_config_marks *marks)
{
    static const enum cps_config_key maps[] = {CPS_KEY_T_SLO, CPS_KEY_T_COST, CPS_KEY_T_CAPACITY};
    static const enum cps_config_key rest[] = {CPS_KEY_T_PAUSED, CPS_KEY_T_QUERIES,
                                               CPS_KEY_T_BEHAVIOR, CPS_KEY_T_POLICY};
    const struct cps_yaml_node *v[CPS_CONFIG_MAX_KEYS], *keys[CPS_CONFIG_MAX_KEYS];
    char sub[PATH_MAX_];
    if (cps_config_map_fields(w, node, path, CPS_SEC_TARGET, v, keys) < 0)
        return -1;
    if (mode == CPS_BODY_DEFAULTS)
        for (int k = TK(NAMESPACE); k <= TK(API_VERSION); k++)
            if (keys[k])
                return cps_config_fail_at(w, keys[k],
                                          "%s: %s is not allowed here: it names one target (put "
                                          "it in targets:)",
                                          path, NAME(CPS_KEY_T_NAMESPACE + k));
    if (read_identity(w, v, keys, path, t) < 0)
        return -1;
    if (v[TK(MIN_REPLICAS)]) {
        cps_config_path_key(sub, sizeof sub, path, NAME(CPS_KEY_T_MIN_REPLICAS));
        if (cps_config_read_row(w, ROW(CPS_KEY_T_MIN_REPLICAS), v[TK(MIN_REPLICAS)], sub, t, 0) < 0)
            return -1;
        mark_set(&marks->min_replicas, v[TK(MIN_REPLICAS)]);
    }
    if (v[TK(MAX_REPLICAS)]) {
        cps_config_path_key(sub, sizeof sub, path, NAME(CPS_KEY_T_MAX_REPLICAS));
        if (cps_config_read_row(w, ROW(CPS_KEY_T_MAX_REPLICAS), v[TK(MAX_REPLICAS)], sub, t, 0) < 0)
            return -1;
        mark_set(&marks->max_replicas, v[TK(MAX_REPLICAS)]);
    }
    if (read_rows(w, v, path, maps, sizeof maps / sizeof maps[0], t) < 0)
        return -1;
    if (v[TK(ON_MISSING)]) {
        cps_config_path_key(sub, sizeof sub, path, NAME(CPS_KEY_T_ON_MISSING));
        if (read_on_missing(w, v[TK(ON_MISSING)], sub, t, marks) < 0)
            return -1;
    }
    return read_rows(w, v, path, rest, sizeof rest / sizeof rest[0], t);
}

int cps_config_check_target(const struct cps_config_walk *w, const struct cps_target *t,
                            const struct cps_config_marks *m, const char *path, int need_name,
                            int line, int col)
{
    if (need_name && !t->namespace)
        return cps_config_fail_pos(w, line, col, "%s: missing namespace", path);
    if (need_name && !t->name)
        return cps_config_fail_pos(w, line, col, "%s: missing deployment (or kind and name)", path);
    if (t->min_replicas > t->max_replicas) {
        if (m->max_replicas.own || !m->min_replicas.own)
            return cps_config_fail_pos(w, m->max_replicas.own ? m->max_replicas.line : line,
                                       m->max_replicas.own ? m->max_replicas.col : col,
                                       "%s.%s (%d) is below %s (%d)", path,
                                       NAME(CPS_KEY_T_MAX_REPLICAS), t->max_replicas,
                                       NAME(CPS_KEY_T_MIN_REPLICAS), t->min_replicas);
        return cps_config_fail_pos(w, m->min_replicas.line, m->min_replicas.col,
                                   "%s.%s (%d) is above %s (%d)", path,
                                   NAME(CPS_KEY_T_MIN_REPLICAS), t->min_replicas,
                                   NAME(CPS_KEY_T_MAX_REPLICAS), t->max_replicas);
    }
    if (t->on_missing == CPS_MISSING_FALLBACK &&
        (t->fallback_replicas < t->min_replicas || t->fallback_replicas > t->max_replicas)) {
        const struct cps_config_mark *at =
            m->fallback.own                                                 ? &m->fallback
            : t->fallback_replicas > t->max_replicas && m->max_replicas.own ? &m->max_replicas
            : t->fallback_replicas < t->min_replicas && m->min_replicas.own ? &m->min_replicas
                                                                            : NULL;
        return cps_config_fail_pos(w, at ? at->line : line, at ? at->col : col,
                                   "%s.%s.%s (%d) is outside %s..%s (%d..%d)", path,
                                   NAME(CPS_KEY_T_ON_MISSING), NAME(CPS_KEY_MISSING_FALLBACK),
                                   t->fallback_replicas, NAME(CPS_KEY_T_MIN_REPLICAS),
                                   NAME(CPS_KEY_T_MAX_REPLICAS), t->min_replicas, t->max_replicas);
    }
    /* the cap is computed with the configured price whenever the cost query
     * has none: at $0 a pod it would allow any count, silently */
    if (t->cost_max_per_hour > 0.0 && !(t->cost_pod_hour_usd > 0.0))
        return cps_config_fail_pos(w, line, col,
                                   "%s.%s.%s (%g) needs %s.%s.%s above 0: the price the cap is "
                                   "computed with when the cost query has none",
                                   path, NAME(CPS_KEY_T_COST), NAME(CPS_KEY_COST_MAX_PER_HOUR),
                                   t->cost_max_per_hour, path, NAME(CPS_KEY_T_COST),
                                   NAME(CPS_KEY_COST_POD_HOUR));
    return 0;
}

/*
 * The JSON text a tree came from, read alongside it so that each node gets
 * the line:col of its value (a member's key node, of its key). `ok` drops
 * to 0 when there is no text or it stops matching the tree: the nodes are
 * then 0:0 (positions unknown) rather than wrong. It never does for the
 * text jansson parsed, whose objects keep the order of the text (jansson
 * 2.8 and later); a member's key is compared all the same.
 */
struct json_text {
    struct cps_json_cursor cursor;
    int ok;
};

/* Where the next value or key starts: *line, *col (0:0 without text). */
static void text_mark(struct json_text *t, int *line, int *col)
{
    *line = *col = 0;
    if (t->ok && cps_json_skip_space(&t->cursor) >= 0) {
        *line = t->cursor.line;
        *col = t->cursor.col;
    }
}

/* Past `byte` ('{', ',', ':', ...). */
static void text_take(struct json_text *t, char byte)
{
    t->ok = t->ok && cps_json_take(&t->cursor, byte) == 0;
}

/* Past the next value. */
static void text_skip(struct json_text *t)
{
    t->ok = t->ok && cps_json_skip_value(&t->cursor) == 0;
}

/* At the member key `key` (the next one in the text): where it starts, and
 * past it and its ':'. */
static void text_key(struct json_text *t, const char *key, int *line, int *col)
{
    t->ok = t->ok && cps_json_skip_space(&t->cursor) == '"' &&
            cps_json_string_is(&t->cursor, key, strlen(key));
    text_mark(t, line, col);
    text_skip(t);
    text_take(t, ':');
}

/*
 * A jansson value as a node tree, positioned by `text` (see struct
 * json_text): strings become quoted scalars (so "5" is not a number, as in
 * YAML), numbers, true, false and null plain ones. Depth is capped like
 * YAML's.
 */
static struct cps_yaml_node *json_node(const json_t *value, struct json_text *text, size_t depth,
                                       size_t *n_nodes, int *too_deep)
{
    if (depth >= CPS_YAML_MAX_DEPTH || ++*n_nodes > CPS_CONFIG_MAX_NODES) {
        *too_deep = 1;
        return NULL;
    }
    char number[NUMBER_TEXT_MAX];
    struct cps_yaml_node *node = NULL;
    int line, col;
    text_mark(text, &line, &col);
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        size_t i = 0;
        if (!(node = cps_yaml_node_new(CPS_YAML_MAP, line, col)))
            return NULL;
        text_take(text, '{');
        json_object_foreach((json_t *)value, key, member)
        {
            if (i++ > 0)
                text_take(text, ',');
            text_key(text, key, &line, &col);
            struct cps_yaml_node *k = cps_yaml_node_new(CPS_YAML_SCALAR, line, col);
            if (!k || cps_yaml_node_append(node, k) < 0) {
                cps_yaml_node_free(k);
                goto fail;
            }
            k->quoted = 1;
            if (cps_yaml_node_set_text(k, key, strlen(key)) < 0)
                goto fail;
            struct cps_yaml_node *v = json_node(member, text, depth + 1, n_nodes, too_deep);
            if (!v || cps_yaml_node_append(node, v) < 0) {
                cps_yaml_node_free(v);
                goto fail;
            }
        }
        text_take(text, '}');
        return node;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        if (!(node = cps_yaml_node_new(CPS_YAML_SEQ, line, col)))
            return NULL;
        text_take(text, '[');
        json_array_foreach(value, i, item)
        {
            if (i > 0)
                text_take(text, ',');
            struct cps_yaml_node *v = json_node(item, text, depth + 1, n_nodes, too_deep);
            if (!v || cps_yaml_node_append(node, v) < 0) {
                cps_yaml_node_free(v);
                goto fail;
            }
        }
        text_take(text, ']');
        return node;
    }
    case JSON_STRING:
        text_skip(text);
        if (!(node = cps_yaml_node_new(CPS_YAML_SCALAR, line, col)))
            return NULL;
        node->quoted = 1;
        if (cps_yaml_node_set_text(node, json_string_value(value), json_string_length(value)) < 0)
            goto fail;
        return node;
    case JSON_INTEGER:
        snprintf(number, sizeof number, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        break;
    case JSON_REAL: snprintf(number, sizeof number, "%.17g", json_real_value(value)); break;
    case JSON_TRUE: snprintf(number, sizeof number, "true"); break;
    case JSON_FALSE: snprintf(number, sizeof number, "false"); break;
    case JSON_NULL:
    default: number[0] = '\0'; break;
    }
    text_skip(text);
    if (!(node = cps_yaml_node_new(CPS_YAML_SCALAR, line, col)))
        return NULL;
    if (cps_yaml_node_set_text(node, number, strlen(number)) < 0)
        goto fail;
    return node;

fail:
    cps_yaml_node_free(node);
    return NULL;
}

int cps_target_from_json(const struct json_t *object, const struct cps_target *base,
                         const char *source, const struct cps_json_cursor *at,
                         struct cps_target *out, struct cps_err *err)
{
    struct cps_config_walk w = {.source = source ? source : "<json>", .err = err};
    struct cps_config_marks marks;
    struct cps_yaml_node *root = NULL;
    size_t n_nodes = 0;
    int too_deep = 0;
    struct json_text text = {.ok = at != NULL};
    if (at)
        text.cursor = *at;
    int line, col; /* where the target starts, for errors about it as a whole */
    text_mark(&text, &line, &col);

    memset(&marks, 0, sizeof marks);
    if ((base ? cps_target_copy(out, base) : cps_target_init_defaults(out)) < 0)
        return cps_err_set(err, w.source, 0, 0, "out of memory");
    out->line = out->col = 0; /* a target from JSON has no line in a config */
    if (!object || !json_is_object(object)) {
        cps_err_set(err, w.source, line, col, "target: expected an object");
        goto fail;
    }
    if (!(root = json_node(object, &text, 0, &n_nodes, &too_deep))) {
        if (too_deep)
            cps_err_set(err, w.source, line, col, "target: nested deeper than %d levels",
                        CPS_YAML_MAX_DEPTH);
        else
            cps_err_set(err, w.source, 0, 0, "out of memory");
        goto fail;
    }
    if (cps_config_read_target(&w, root, "target", CPS_BODY_JSON, out, &marks) < 0 ||
        cps_config_check_target(&w, out, &marks, "target", 0, line, col) < 0)
        goto fail;
    cps_yaml_node_free(root);
    return 0;

fail:
    cps_yaml_node_free(root);
    cps_target_release(out);
    return -1;
}
