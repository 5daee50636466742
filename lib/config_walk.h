/*
 * The loader's walk over a YAML node tree (private to lib/config_*.c):
 * messages with full key paths at file:line:col, the typed value readers,
 * and the schema-driven reading of a section's rows (config_value.c).
 *
 * Every reader returns 0, or -1 with the walk's cps_err filled. Nothing here
 * owns the tree; strings read are malloc'd into the struct's fields (the
 * old value freed).
 */
#ifndef CPS_CONFIG_WALK_H
#define CPS_CONFIG_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "config_schema.h"
#include "err.h"
#include "yaml_doc.h"

#define CPS_CONFIG_PATH_MAX 256 /* "targets[12].behavior.scaleUp.policies[3].value" */
#define CPS_CONFIG_MAX_KEYS 32  /* keys in the largest section */

struct cps_config_walk {
    const char *source;
    struct cps_err *err;
    char *warning;          /* the first deprecated key's "file:line:col: ...", or NULL */
    size_t warning_size;
};

/* The YAML style of config files: values are quoted in messages. */
extern const struct cps_yaml_style cps_config_yaml_style;

int cps_config_fail_pos(const struct cps_config_walk *w, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cps_config_fail_at(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A value as messages show it ("abc", the string "5", null, a mapping). */
const char *cps_config_show(const struct cps_yaml_node *node, char *buf, size_t size);

/* "parent.key" ("key" when parent is empty) and "parent[i]"; a path that
 * does not fit ends in "...". */
void cps_config_path_key(char *buf, size_t size, const char *parent, const char *key);
void cps_config_path_index(char *buf, size_t size, const char *parent, size_t index_);

/* Check that `map` is a mapping (null counts as an empty one) of the
 * section's keys, each at most once; values[i] (and key_nodes[i], if given)
 * point at the value (key) of the section's i-th row, or NULL. */
int cps_config_map_fields(const struct cps_config_walk *w, const struct cps_yaml_node *map,
                          const char *path, enum cps_config_section section,
                          const struct cps_yaml_node **values,
                          const struct cps_yaml_node **key_nodes);

int cps_config_get_int(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                       const char *path, long long lo, long long hi, int32_t *out);
int cps_config_get_number(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                          const char *path, double lo, double hi, unsigned flags, double *out);
int cps_config_get_bool(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                        const char *path, int *out);
int cps_config_get_string(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                          const char *path, int allow_null, char **out);

/* Read `node` into the row's field of `base` by the row's type, range and
 * check. `path` is the key's full path. null_keeps: a null query keeps the
 * field (top-level queries: the built-in default) instead of clearing it. */
int cps_config_read_row(const struct cps_config_walk *w, const struct cps_config_row *row,
                        const struct cps_yaml_node *node, const char *path, void *base,
                        int null_keeps);

/* A section walker's hook for its CPS_CFG_CUSTOM rows. */
typedef int (*cps_config_custom_cb)(const struct cps_config_walk *w,
                                    const struct cps_config_row *row,
                                    const struct cps_yaml_node *node, const char *path,
                                    void *base, void *ctx);

/*
 * Read a section's mapping over `base`: the keys present, in row order, by
 * cps_config_read_row, custom rows through `custom` (may be NULL when the
 * section has none). values (CPS_CONFIG_MAX_KEYS, may be NULL) receives the
 * value nodes, for cross-key checks.
 */
int cps_config_read_section(const struct cps_config_walk *w, const struct cps_yaml_node *map,
                            const char *path, enum cps_config_section section, void *base,
                            int null_keeps, cps_config_custom_cb custom, void *ctx,
                            const struct cps_yaml_node **values);

/* ---- target bodies (config_target.c) ------------------------------------ */

/* Where a value was set, for checks that involve two keys. */
struct cps_config_mark {
    int line, col;
    int own; /* set in the body being read (not inherited from defaults:) */
};

struct cps_config_marks {
    struct cps_config_mark min_replicas, max_replicas, fallback;
};

enum cps_config_body {
    CPS_BODY_DEFAULTS, /* `defaults:`: no namespace, deployment, kind, name */
    CPS_BODY_TARGET,   /* an entry of `targets:` */
    CPS_BODY_JSON,     /* `cpscale decide`'s target: names optional */
};

/*
 * Apply one target body (a mapping of target keys) over *t, key by key and
 * mapping by mapping, so a target overrides only what it names of what it
 * inherited. `marks` records where min/max/fallback were set.
 */
int cps_config_read_target(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                           const char *path, enum cps_config_body mode, struct cps_target *t,
                           struct cps_config_marks *marks);

/*
 * Checks across keys, once a target is complete (inherited + own keys):
 * names present (need_name, for `targets:` entries), min <= max, fallback
 * within them. The error points at the key this body set, when it set one,
 * because that is what the author has to change; otherwise at line:col.
 */
int cps_config_check_target(const struct cps_config_walk *w, const struct cps_target *t,
                            const struct cps_config_marks *m, const char *path, int need_name,
                            int line, int col);

/* Free prometheus.headers (config.c). */
void cps_config_headers_release(struct cps_prometheus_config *prom);

#endif
