/*
 * The loader's typed values and the schema-driven reading of a section.
 * The contract is in config_walk.h.
 */
#include "config_walk.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "metric.h"
#include "units.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SHOW_MAX CPS_YAML_SHOWN_MAX
#define SHOW_TEXT_MAX CPS_YAML_SHOW_MAX /* bytes of a placeholder quoted in a message */

const struct cps_yaml_style cps_config_yaml_style = {
    .what = "config",
    .max_nodes = CPS_CONFIG_MAX_NODES,
    .secret_safe = 0,
};

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* ---- messages -------------------------------------------------------------- */

static int vfail_pos(const struct cps_config_walk *w, int line, int col, const char *fmt,
                     va_list ap)
{
    char message[CPS_ERR_MESSAGE_MAX];
    vsnprintf(message, sizeof message, fmt, ap);
    return cps_err_set(w->err, w->source, line, col, "%s", message);
}

int cps_config_fail_pos(const struct cps_config_walk *w, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_pos(w, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

int cps_config_fail_at(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_pos(w, node ? node->line : 0, node ? node->col : 0, fmt, ap);
    va_end(ap);
    return -1;
}

const char *cps_config_show(const struct cps_yaml_node *node, char *buf, size_t size)
{
    return cps_yaml_show(node, 0, buf, size);
}

/* A path that does not fit ends in "..." (only absurd nesting gets there). */
static void path_fit(char *buf, size_t size, int written)
{
    if ((written < 0 || (size_t)written >= size) && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

void cps_config_path_key(char *buf, size_t size, const char *parent, const char *key)
{
    int n;
    if (!parent || !*parent)
        n = snprintf(buf, size, "%s", key);
    else
        n = snprintf(buf, size, "%s.%s", parent, key);
    path_fit(buf, size, n);
}

void cps_config_path_index(char *buf, size_t size, const char *parent, size_t index_)
{
    path_fit(buf, size, snprintf(buf, size, "%s[%zu]", parent, index_));
}

int cps_config_map_fields(const struct cps_config_walk *w, const struct cps_yaml_node *map,
                          const char *path, enum cps_config_section section,
                          const struct cps_yaml_node **values,
                          const struct cps_yaml_node **key_nodes)
{
    const char *names[CPS_CONFIG_MAX_KEYS];
    char shown[SHOW_MAX];
    size_t n = cps_config_section_names(section, names, ARRAY_LEN(names));
    if (map->type != CPS_YAML_MAP && !cps_yaml_is_null(map))
        return cps_config_fail_at(w, map, "%s: expected a mapping, got %s", path,
                                  cps_config_show(map, shown, sizeof shown));
    return cps_yaml_map_match(map, path, names, n, values, key_nodes, &cps_config_yaml_style,
                              w->source, w->err);
}

/* ---- typed values ---------------------------------------------------------- */

/* Digits only, after an optional sign, with a leading zero ("010", "-07"):
 * YAML 1.1, which kubectl and go-yaml read, makes that an octal number (8),
 * where strtod and strtoll read 10. Refused rather than guessed. */
static int looks_octal(const char *text)
{
    const char *p = text;
    if (p && (*p == '-' || *p == '+'))
        p++;
    if (!p || p[0] != '0' || !is_digit((unsigned char)p[1]))
        return 0;
    for (const char *q = p; *q; q++)
        if (!is_digit((unsigned char)*q))
            return 0;
    return 1;
}

static int fail_octal(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                      const char *path)
{
    char shown[SHOW_MAX];
    return cps_config_fail_at(w, node, "%s: %s has a leading zero, an octal number in YAML 1.1 "
                              "(as Kubernetes' tools read it): write it without", path,
                              cps_config_show(node, shown, sizeof shown));
}

int cps_config_get_int(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                       const char *path, long long lo, long long hi, int32_t *out)
{
    char shown[SHOW_MAX];
    const char *text = cps_yaml_plain_text(node);
    const char *p = text;
    if (p && (*p == '-' || *p == '+'))
        p++;
    if (!p || !is_digit((unsigned char)*p))
        return cps_config_fail_at(w, node, "%s: expected an integer, got %s", path,
                                  cps_config_show(node, shown, sizeof shown));
    for (const char *q = p; *q; q++)
        if (!is_digit((unsigned char)*q))
            return cps_config_fail_at(w, node, "%s: expected an integer, got %s", path,
                                      cps_config_show(node, shown, sizeof shown));
    if (looks_octal(text))
        return fail_octal(w, node, path);
    errno = 0;
    long long value = strtoll(text, NULL, 10);
    if (errno == ERANGE || value < lo || value > hi)
        return cps_config_fail_at(w, node, "%s: %s is out of range (%lld..%lld)", path,
                                  cps_config_show(node, shown, sizeof shown), lo, hi);
    *out = (int32_t)value;
    return 0;
}

/*
 * A finite decimal number (digits, '.', exponent; no hex, nan or inf) in the
 * range [lo, hi] with the bounds opened by `flags`.
 */
int cps_config_get_number(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                          const char *path, double lo, double hi, unsigned flags, double *out)
{
    char shown[SHOW_MAX];
    const char *text = cps_yaml_plain_text(node);
    int ok = text && *text;
    /* a percent row takes "1%" (or the fraction itself, 0.01) */
    size_t len = ok ? strlen(text) : 0;
    int percent = (flags & CPS_CFG_PERCENT) && len > 1 && text[len - 1] == '%';
    size_t digits_len = percent ? len - 1 : len;
    for (size_t i = 0; ok && i < digits_len; i++) {
        char q = text[i];
        ok = is_digit((unsigned char)q) || q == '.' || q == 'e' || q == 'E' || q == '+' || q == '-';
    }
    if (ok && !percent && looks_octal(text))
        return fail_octal(w, node, path);
    char *end = NULL;
    double value = ok ? strtod(text, &end) : 0;
    if (!ok || end == text || end != text + digits_len)
        return cps_config_fail_at(w, node, "%s: expected a number%s, got %s", path,
                                  (flags & CPS_CFG_PERCENT) ? " or a percentage (1%)" : "",
                                  cps_config_show(node, shown, sizeof shown));
    if (percent)
        value /= 100.0;
    if (!isfinite(value))
        return cps_config_fail_at(w, node, "%s: %s is too large", path,
                                  cps_config_show(node, shown, sizeof shown));
    int below = (flags & CPS_CFG_LO_OPEN) ? !(value > lo) : !(value >= lo);
    int above = (flags & CPS_CFG_NO_HI)     ? 0
                : (flags & CPS_CFG_HI_OPEN) ? !(value < hi)
                                            : !(value <= hi);
    if ((below || above) && (flags & CPS_CFG_PERCENT))
        return cps_config_fail_at(w, node, "%s: %s is out of range (must be %s %g%% and %s %g%%)",
                                  path, cps_config_show(node, shown, sizeof shown),
                                  (flags & CPS_CFG_LO_OPEN) ? ">" : ">=", lo * 100.0,
                                  (flags & CPS_CFG_HI_OPEN) ? "<" : "<=", hi * 100.0);
    if (below || above) {
        const char *lo_op = (flags & CPS_CFG_LO_OPEN) ? ">" : ">=";
        if (flags & CPS_CFG_NO_HI)
            return cps_config_fail_at(w, node, "%s: %s is out of range (must be %s %g)", path,
                                      cps_config_show(node, shown, sizeof shown), lo_op, lo);
        return cps_config_fail_at(w, node, "%s: %s is out of range (must be %s %g and %s %g)", path,
                                  cps_config_show(node, shown, sizeof shown), lo_op, lo,
                                  (flags & CPS_CFG_HI_OPEN) ? "<" : "<=", hi);
    }
    *out = value;
    return 0;
}

/* YAML 1.1 booleans, in the three spellings the spec lists. */
/* YAML 1.1 booleans, in the three spellings the spec lists. */
int cps_config_get_bool(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                        const char *path, int *out)
{
    char shown[SHOW_MAX];
    int value = cps_yaml_plain_text(node) ? cps_yaml_bool(node) : -1;
    if (value < 0)
        return cps_config_fail_at(w, node, "%s: expected true or false, got %s", path,
                                  cps_config_show(node, shown, sizeof shown));
    *out = value;
    return 0;
}

/* A duration in ms within (0 or allow_zero, max_ms]: max_ms is the row's
 * .hi, what the value is cast to (config_schema.c); 0 means no bound
 * beyond int64 ms. */
static int get_duration(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                        const char *path, int allow_zero, double max_ms, int64_t *out)
{
    char shown[SHOW_MAX];
    int64_t ms;
    if (node->type != CPS_YAML_SCALAR || cps_yaml_is_null(node) || strlen(node->text) != node->len)
        return cps_config_fail_at(w, node, "%s: expected a duration like 15s, 5m or 250ms, got %s",
                                  path, cps_config_show(node, shown, sizeof shown));
    if (node->text[0] == '-')
        return cps_config_fail_at(w, node, "%s: %s is negative", path,
                                  cps_config_show(node, shown, sizeof shown));
    if (looks_octal(cps_yaml_plain_text(node))) /* a bare number of seconds, "010" */
        return fail_octal(w, node, path);
    if (cps_duration_parse(node->text, &ms) < 0)
        return cps_config_fail_at(w, node, "%s: expected a duration like 15s, 5m or 250ms, got %s",
                                  path, cps_config_show(node, shown, sizeof shown));
    if (ms == 0 && !allow_zero)
        return cps_config_fail_at(w, node, "%s: must be longer than 0, got %s", path,
                                  cps_config_show(node, shown, sizeof shown));
    if (max_ms > 0 && (double)ms > max_ms) {
        char max[CPS_DURATION_TEXT_MAX];
        cps_duration_format(max, sizeof max, (int64_t)max_ms);
        return cps_config_fail_at(w, node, "%s: %s is out of range: at most %s", path,
                                  cps_config_show(node, shown, sizeof shown), max);
    }
    *out = ms;
    return 0;
}

/* A string value: any scalar but null (the raw text, so `namespace: 123` is
 * "123"). With allow_null, null sets *out to NULL. */
int cps_config_get_string(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                          const char *path, int allow_null, char **out)
{
    char shown[SHOW_MAX];
    if (allow_null && cps_yaml_is_null(node)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (node->type != CPS_YAML_SCALAR || cps_yaml_is_null(node))
        return cps_config_fail_at(w, node, "%s: expected a string, got %s", path,
                                  cps_config_show(node, shown, sizeof shown));
    if (strlen(node->text) != node->len)
        return cps_config_fail_at(w, node, "%s: contains a NUL character", path);
    char *copy = strdup(node->text);
    if (!copy)
        return cps_config_fail_at(w, node, "%s: out of memory", path);
    free(*out);
    *out = copy;
    return 0;
}

static int get_enum(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                    const char *path, const char *const *names, size_t n_names, int *out)
{
    char shown[SHOW_MAX];
    if (node->type == CPS_YAML_SCALAR && strlen(node->text) == node->len) {
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
                                 i == 0             ? ""
                                 : i + 1 == n_names ? " or "
                                                    : ", ",
                                 names[i]);
    return cps_config_fail_at(w, node, "%s: expected %s, got %s", path, expected,
                              cps_config_show(node, shown, sizeof shown));
}
/* Only $namespace and $deployment are substituted; `$1` (label_replace) and
 * a `$` that ends a regex are left alone; any other $word is a typo. */
static int check_placeholders(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                              const char *path, const char *query)
{
    static const char *const known[] = {"namespace", "deployment"};
    for (const char *p = strchr(query, '$'); p; p = strchr(p + 1, '$')) {
        size_t n = 0;
        while (is_alpha((unsigned char)p[1 + n]) || p[1 + n] == '_' ||
               (n > 0 && is_digit((unsigned char)p[1 + n])))
            n++;
        int ok = n == 0;
        for (size_t i = 0; i < ARRAY_LEN(known) && !ok; i++)
            ok = n == strlen(known[i]) && !strncmp(p + 1, known[i], n);
        if (ok)
            continue;
        return cps_config_fail_at(w, node,
                                  "%s: unknown placeholder \"$%.*s\" (use $namespace or "
                                  "$deployment)",
                                  path, (int)(n < SHOW_TEXT_MAX ? n : SHOW_TEXT_MAX), p + 1);
    }
    return 0;
}

/* A string row: the text, then the row's check with its own message. */
static int read_string(const struct cps_config_walk *w, const struct cps_config_row *row,
                       const struct cps_yaml_node *node, const char *path, char **slot)
{
    char shown[SHOW_MAX];
    if (cps_config_get_string(w, node, path, (row->flags & CPS_CFG_NULL_OK) != 0, slot) < 0)
        return -1;
    if (*slot && row->valid && !row->valid(*slot))
        return cps_config_fail_at(w, node, row->invalid, path,
                                  cps_config_show(node, shown, sizeof shown));
    return 0;
}

/* A query: in a target, null means "the cluster-wide query" (NULL); at the
 * top level (null_keeps) it means "the built-in default". "" turns off an
 * optional one (cps_metric_is_optional: its stand-in serves) and is an
 * error for the others, which the policy cannot do without. */
static int read_query(const struct cps_config_walk *w, const struct cps_yaml_node *node,
                      const char *path, char **slot, int null_keeps, int may_be_empty)
{
    if (null_keeps && cps_yaml_is_null(node))
        return 0;
    if (cps_config_get_string(w, node, path, !null_keeps, slot) < 0)
        return -1;
    if (*slot && !**slot && !may_be_empty)
        return cps_config_fail_at(w, node, "%s: a query must not be empty", path);
    if (*slot && check_placeholders(w, node, path, *slot) < 0)
        return -1;
    return 0;
}

int cps_config_read_row(const struct cps_config_walk *w, const struct cps_config_row *row,
                        const struct cps_yaml_node *node, const char *path, void *base,
                        int null_keeps)
{
    void *field = cps_config_field(row, base);
    int allow_zero = (row->flags & CPS_CFG_ZERO_OK) != 0;
    int64_t ms = 0;
    int value = 0;
    switch (row->type) {
    case CPS_CFG_INT32:
        return cps_config_get_int(w, node, path, (long long)row->lo, (long long)row->hi, field);
    case CPS_CFG_NUMBER:
        return cps_config_get_number(w, node, path, row->lo, row->hi, row->flags, field);
    case CPS_CFG_BOOL: return cps_config_get_bool(w, node, path, field);
    case CPS_CFG_ENUM:
        if (get_enum(w, node, path, row->names, row->n_names, &value) < 0)
            return -1;
        *(int *)field = value;
        return 0;
    case CPS_CFG_DURATION: return get_duration(w, node, path, allow_zero, row->hi, field);
    case CPS_CFG_DURATION_MS:
        if (get_duration(w, node, path, allow_zero, row->hi, &ms) < 0)
            return -1;
        *(double *)field = (double)ms;
        return 0;
    case CPS_CFG_DURATION_S:
        if (get_duration(w, node, path, allow_zero, row->hi, &ms) < 0)
            return -1;
        /* the simulator's resolution is a second: below .lo it refuses */
        if (row->lo > 0 && (double)ms < row->lo)
            return cps_config_fail_at(w, node, "%s: must be at least %gs", path,
                                      row->lo / CPS_MS_PER_S);
        *(double *)field = (double)ms / CPS_MS_PER_S;
        return 0;
    case CPS_CFG_STRING: return read_string(w, row, node, path, field);
    case CPS_CFG_QUERY:
        return read_query(w, node, path, field, null_keeps,
                          cps_metric_is_optional((enum cps_metric)row->metric));
    case CPS_CFG_CUSTOM: break;
    }
    return 0; /* custom rows are their section walker's */
}

int cps_config_read_section(const struct cps_config_walk *w, const struct cps_yaml_node *map,
                            const char *path, enum cps_config_section section, void *base,
                            int null_keeps, cps_config_custom_cb custom, void *ctx,
                            const struct cps_yaml_node **values)
{
    const struct cps_yaml_node *own[CPS_CONFIG_MAX_KEYS];
    const struct cps_yaml_node **v = values ? values : own;
    char sub[CPS_CONFIG_PATH_MAX];
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    if (cps_config_map_fields(w, map, path, section, v, NULL) < 0)
        return -1;
    for (size_t k = 0; k < n; k++) {
        if (!v[k])
            continue;
        cps_config_path_key(sub, sizeof sub, path, cps_config_row_name(&rows[k]));
        if ((rows[k].flags & CPS_CFG_DEPRECATED) && w->warning && !w->warning[0])
            snprintf(w->warning, w->warning_size,
                     "%s:%d:%d: %s is deprecated and has no effect (README: configuration "
                     "reference); delete it",
                     w->source, v[k]->line, v[k]->col, sub);
        int rc = rows[k].type == CPS_CFG_CUSTOM
                     ? (custom ? custom(w, &rows[k], v[k], sub, base, ctx) : 0)
                     : cps_config_read_row(w, &rows[k], v[k], sub, base, null_keeps);
        if (rc < 0)
            return -1;
    }
    return 0;
}
