/*
 * struct cps_config -> YAML the loader reads back (check-config), and the
 * tunable part of a target as `cpscale tune`'s config.yaml fragment. Both
 * are driven by the schema rows (config_schema.c). The contract is in
 * config.h and config_schema.h.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_schema.h"
#include "duration.h"
#include "strbuf.h"
#include "units.h"

#define PLAIN_INTEGER_MAX 1e15 /* integral values below this print as integers */
#define TUNE_DIGITS 10         /* significant digits of numbers in tune's fragment */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int needs_quotes(const char *s)
{
    static const char *const special[] = {"~",     "null",  "Null",  "NULL", "true", "True", "TRUE",
                                          "false", "False", "FALSE", "yes",  "Yes",  "YES",  "no",
                                          "No",    "NO",    "on",    "On",   "ON",   "off",  "Off",
                                          "OFF",   "y",     "Y",     "n",    "N"};
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
static void put_string(struct cps_strbuf *b, const char *s)
{
    if (!needs_quotes(s)) {
        cps_strbuf_printf(b, "%s", s);
        return;
    }
    int ascii = 1;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F)
            ascii = 0;
    if (ascii) {
        cps_strbuf_printf(b, "'");
        for (const char *p = s; *p; p++)
            cps_strbuf_printf(b, *p == '\'' ? "''" : "%c", *p);
        cps_strbuf_printf(b, "'");
        return;
    }
    cps_strbuf_printf(b, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p;
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
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
            cps_strbuf_printf(b, "\\x%02X", *p);
            p++;
            continue;
        }
        if (c == '"' || c == '\\')
            cps_strbuf_printf(b, "\\%c", (char)c);
        else if (c == '\t')
            cps_strbuf_printf(b, "\\t");
        else if (c == '\n')
            cps_strbuf_printf(b, "\\n");
        else if (!yaml_printable(c) || c == YAML_LINE_SEPARATOR || c == YAML_PARAGRAPH_SEPARATOR)
            cps_strbuf_printf(b,
                              c <= 0xFF     ? "\\x%02X"
                              : c <= 0xFFFF ? "\\u%04X"
                                            : "\\U%08X",
                              (unsigned)c);
        else
            cps_strbuf_printf(b, "%.*s", (int)n, (const char *)p);
        p += n;
    }
    cps_strbuf_printf(b, "\"");
}

/* How numbers are written: the shortest text that reads back (the loader's
 * round trip), or TUNE_DIGITS significant digits (tune's fragment). */
struct printer {
    struct cps_strbuf b;
    int tune_numbers;
};

/* The shortest decimal that reads back as the same double; 100, not 1e+02. */
static void put_double(struct printer *p, double x)
{
    char text[64];
    if (p->tune_numbers) {
        cps_strbuf_printf(&p->b, "%.*g", TUNE_DIGITS, x);
        return;
    }
    if (x == floor(x) && fabs(x) < PLAIN_INTEGER_MAX) {
        cps_strbuf_printf(&p->b, "%.0f", x == 0 ? 0.0 : x); /* no "-0" */
        return;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, x);
        if (strtod(text, NULL) == x)
            break;
    }
    cps_strbuf_printf(&p->b, "%s", text);
}

static void put_duration(struct printer *p, int64_t ms)
{
    char text[CPS_DURATION_TEXT_MAX];
    cps_duration_format(text, sizeof text, ms);
    cps_strbuf_printf(&p->b, "%s", text);
}

static void put_key(struct printer *p, int indent, const char *key)
{
    cps_strbuf_printf(&p->b, "%*s%s:", indent, "", key);
}

/* One row of `base` as "key: value\n"; string rows that are NULL and custom
 * rows print nothing. */
static void put_row(struct printer *p, int indent, const struct cps_config_row *row,
                    const void *base)
{
    const void *field = cps_config_cfield(row, base);
    if (!field || row->type == CPS_CFG_CUSTOM)
        return;
    if ((row->type == CPS_CFG_STRING || row->type == CPS_CFG_QUERY) && !*(const char *const *)field)
        return;
    put_key(p, indent, cps_config_row_name(row));
    cps_strbuf_printf(&p->b, " ");
    switch (row->type) {
    case CPS_CFG_INT32: cps_strbuf_printf(&p->b, "%d", (int)*(const int32_t *)field); break;
    case CPS_CFG_NUMBER:
        if (row->flags & CPS_CFG_PERCENT)
            cps_strbuf_printf(&p->b, "%.15g%%", *(const double *)field * 100.0);
        else
            put_double(p, *(const double *)field);
        break;
    case CPS_CFG_BOOL:
        cps_strbuf_printf(&p->b, "%s", *(const int *)field ? "true" : "false");
        break;
    case CPS_CFG_ENUM:
        cps_strbuf_printf(&p->b, "%s", cps_config_enum_name(row, *(const int *)field));
        break;
    case CPS_CFG_DURATION: put_duration(p, *(const int64_t *)field); break;
    case CPS_CFG_DURATION_MS: put_duration(p, llround(*(const double *)field)); break;
    case CPS_CFG_DURATION_S: put_duration(p, llround(*(const double *)field * CPS_MS_PER_S)); break;
    default: put_string(&p->b, *(const char *const *)field); break;
    }
    cps_strbuf_printf(&p->b, "\n");
}

/* The rows of a section (those with `flags`, when not 0), in row order. */
static void put_section(struct printer *p, int indent, enum cps_config_section section,
                        const void *base, unsigned flags)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    for (size_t i = 0; i < n; i++)
        if ((!flags || (rows[i].flags & flags)) && !(rows[i].flags & CPS_CFG_DEPRECATED))
            put_row(p, indent, &rows[i], base);
}

/* "key:\n" and the section's rows under it. */
static void put_mapping(struct printer *p, int indent, enum cps_config_key key,
                        enum cps_config_section section, const void *base, unsigned flags)
{
    put_key(p, indent, cps_config_key_name(key));
    cps_strbuf_printf(&p->b, "\n");
    put_section(p, indent + 2, section, base, flags);
}

static void put_rules(struct printer *p, int indent, enum cps_config_key key,
                      const struct cps_scaling_rules *rules)
{
    put_mapping(p, indent, key, CPS_SEC_RULES, rules, 0);
    if (rules->n_policies <= 0)
        return; /* nothing to say: the loader keeps the inherited list */
    put_key(p, indent + 2, cps_config_key_name(CPS_KEY_RULES_POLICIES));
    cps_strbuf_printf(&p->b, "\n");
    for (int i = 0; i < rules->n_policies && i < CPS_MAX_SCALING_POLICIES; i++) {
        size_t start = p->b.len;
        put_section(p, indent + 6, CPS_SEC_POLICY_ITEM, &rules->policies[i], 0);
        if (!p->b.failed && p->b.len > start + (size_t)indent + 4)
            p->b.data[start + (size_t)indent + 4] = '-'; /* "      type:" -> "    - type:" */
    }
}

static void put_behavior(struct printer *p, int indent, const struct cps_behavior *behavior)
{
    put_key(p, indent, cps_config_key_name(CPS_KEY_T_BEHAVIOR));
    cps_strbuf_printf(&p->b, "\n");
    put_rules(p, indent + 2, CPS_KEY_BEH_SCALE_UP, &behavior->scale_up);
    put_rules(p, indent + 2, CPS_KEY_BEH_SCALE_DOWN, &behavior->scale_down);
}

static void put_capacity(struct printer *p, int indent, const struct cps_target *t)
{
    put_key(p, indent, cps_config_key_name(CPS_KEY_T_CAPACITY));
    cps_strbuf_printf(&p->b, "\n");
    put_key(p, indent + 2, cps_config_key_name(CPS_KEY_CAPACITY_RPS));
    if (t->capacity_auto) {
        cps_strbuf_printf(&p->b, " auto\n");
    } else {
        cps_strbuf_printf(&p->b, " ");
        put_double(p, t->capacity_rps_per_pod);
        cps_strbuf_printf(&p->b, "\n");
    }
}

/* A target's queries. `inherit` is what the loader starts from: a NULL
 * query is written as `~` only when the inherited one is set, so it reads
 * back as NULL. */
static void put_target_queries(struct printer *p, int indent, const struct cps_queries *q,
                               const struct cps_queries *iq)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(CPS_SEC_QUERIES, &n);
    int any = 0;
    for (size_t k = 0; k < n; k++)
        any |= *(char *const *)cps_config_cfield(&rows[k], q) != NULL ||
               (iq && *(char *const *)cps_config_cfield(&rows[k], iq) != NULL);
    if (!any)
        return;
    put_key(p, indent, cps_config_key_name(CPS_KEY_T_QUERIES));
    cps_strbuf_printf(&p->b, "\n");
    for (size_t k = 0; k < n; k++) {
        const char *query = *(char *const *)cps_config_cfield(&rows[k], q);
        if (query) {
            put_row(p, indent + 2, &rows[k], q);
        } else if (iq && *(char *const *)cps_config_cfield(&rows[k], iq)) {
            put_key(p, indent + 2, cps_config_row_name(&rows[k]));
            cps_strbuf_printf(&p->b, " ~\n");
        }
    }
}

/*
 * One target body. `inherit` is what the loader would start from (the
 * defaults), NULL for `defaults:` itself, which has no identity.
 */
static void put_target(struct printer *p, int indent, const struct cps_target *t,
                       const struct cps_target *inherit)
{
    static const enum cps_config_key identity[] = {CPS_KEY_T_NAMESPACE, CPS_KEY_T_KIND,
                                                   CPS_KEY_T_NAME, CPS_KEY_T_API_VERSION};
    static const enum cps_config_key plain[] = {CPS_KEY_T_MIN_REPLICAS, CPS_KEY_T_MAX_REPLICAS,
                                                CPS_KEY_T_PAUSED};
    for (size_t i = 0; inherit && i < ARRAY_LEN(identity); i++)
        put_row(p, indent, &cps_config_rows[identity[i]], t);
    for (size_t i = 0; i < ARRAY_LEN(plain); i++)
        put_row(p, indent, &cps_config_rows[plain[i]], t);
    put_mapping(p, indent, CPS_KEY_T_SLO, CPS_SEC_SLO, t, 0);
    put_mapping(p, indent, CPS_KEY_T_COST, CPS_SEC_COST, t, 0);
    put_capacity(p, indent, t);
    put_key(p, indent, cps_config_key_name(CPS_KEY_T_ON_MISSING));
    if (t->on_missing == CPS_MISSING_FALLBACK) {
        cps_strbuf_printf(&p->b, "\n");
        put_row(p, indent + 2, &cps_config_rows[CPS_KEY_MISSING_FALLBACK], t);
    } else {
        cps_strbuf_printf(&p->b, " hold\n");
    }
    put_mapping(p, indent, CPS_KEY_T_POLICY, CPS_SEC_POLICY, &t->policy, 0);
    put_target_queries(p, indent, &t->queries, inherit ? &inherit->queries : NULL);
    put_behavior(p, indent, &t->behavior);
}

static void put_headers(struct printer *p, const struct cps_prometheus_config *prom)
{
    if (!prom->n_headers)
        return;
    put_key(p, 2, cps_config_key_name(CPS_KEY_PROM_HEADERS));
    cps_strbuf_printf(&p->b, "\n");
    for (size_t i = 0; i < prom->n_headers; i++) {
        cps_strbuf_printf(&p->b, "    ");
        put_string(&p->b, prom->header_names[i]);
        cps_strbuf_printf(&p->b, ": ");
        put_string(&p->b, prom->header_values[i]);
        cps_strbuf_printf(&p->b, "\n");
    }
}

static void put_prometheus(struct printer *p, const struct cps_prometheus_config *prom)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(CPS_SEC_PROMETHEUS, &n);
    put_key(p, 0, cps_config_key_name(CPS_KEY_PROMETHEUS));
    cps_strbuf_printf(&p->b, "\n");
    for (size_t i = 0; i < n; i++) {
        if (&rows[i] == &cps_config_rows[CPS_KEY_PROM_HEADERS])
            put_headers(p, prom);
        else if (&rows[i] == &cps_config_rows[CPS_KEY_PROM_LABELS])
            put_mapping(p, 2, CPS_KEY_PROM_LABELS, CPS_SEC_LABELS, prom, 0);
        else if (!(rows[i].flags & CPS_CFG_DEPRECATED))
            put_row(p, 2, &rows[i], prom);
    }
}

/* The buffer's text, or NULL when an allocation failed. */
static char *finish(struct printer *p)
{
    if (p->b.failed) {
        cps_strbuf_release(&p->b);
        return NULL;
    }
    return cps_strbuf_take(&p->b);
}

/*
 * Every key, defaults included, in the loader's own syntax, so that the
 * output is both the documentation of what is in force and a valid config:
 * loading it gives an equal struct (tested). Sim durations are stored as
 * doubles; they are written in whole milliseconds, the loader's resolution.
 */
char *cps_config_to_yaml(const struct cps_config *config)
{
    struct printer p = {CPS_STRBUF_INIT, 0};
    cps_strbuf_printf(&p.b, "# effective config%s%s: built-in defaults filled in\n",
                      config->source ? " of " : "", config->source ? config->source : "");
    put_section(&p, 0, CPS_SEC_TOP, config, 0);
    put_prometheus(&p, &config->prometheus);
    put_mapping(&p, 0, CPS_KEY_QUERIES, CPS_SEC_QUERIES, &config->queries, 0);
    put_mapping(&p, 0, CPS_KEY_LEADER, CPS_SEC_LEADER, &config->leader_election, 0);
    put_mapping(&p, 0, CPS_KEY_SHARDING, CPS_SEC_SHARDING, &config->sharding, 0);
    put_mapping(&p, 0, CPS_KEY_SIM, CPS_SEC_SIM, &config->sim, 0);
    put_key(&p, 0, cps_config_key_name(CPS_KEY_DEFAULTS));
    cps_strbuf_printf(&p.b, "\n");
    put_target(&p, 2, &config->defaults, NULL);
    put_key(&p, 0, cps_config_key_name(CPS_KEY_TARGETS));
    cps_strbuf_printf(&p.b, config->n_targets == 0 ? " []\n" : "\n");
    for (size_t i = 0; i < config->n_targets; i++) {
        size_t start = p.b.len;
        put_target(&p, 4, &config->targets[i], &config->defaults);
        if (!p.b.failed && p.b.len > start + 2)
            p.b.data[start + 2] = '-'; /* "    namespace: x" -> "  - namespace: x" */
    }
    return finish(&p);
}

/*
 * `cpscale tune`'s winning settings as a `defaults:` fragment of config.yaml:
 * the tunable policy rows, capacity and behavior, numbers with TUNE_DIGITS
 * significant digits.
 */
char *cps_config_tunables_yaml(const struct cps_target *t)
{
    struct printer p = {CPS_STRBUF_INIT, 1};
    put_key(&p, 0, cps_config_key_name(CPS_KEY_DEFAULTS));
    cps_strbuf_printf(&p.b, "\n");
    put_mapping(&p, 2, CPS_KEY_T_POLICY, CPS_SEC_POLICY, &t->policy, CPS_CFG_TUNABLE);
    put_capacity(&p, 2, t);
    put_behavior(&p, 2, &t->behavior);
    return finish(&p);
}
