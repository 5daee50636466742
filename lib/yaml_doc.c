/*
 * One YAML document as a positioned node tree. The contract is in yaml_doc.h.
 */
#include "yaml_doc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"
#define KEYS_TEXT_MAX (CPS_ERR_MESSAGE_MAX / 2) /* the "(expected one of: ...)" hint */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* memset through a volatile pointer, so wiping text about to be freed is not
 * optimized away. */
static void *(*const volatile wipe)(void *, int, size_t) = memset;

/* Recursion is bounded: trees are never deeper than CPS_YAML_MAX_DEPTH. */
void cps_yaml_node_free(struct cps_yaml_node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n_items; i++)
        cps_yaml_node_free(node->items[i]);
    free(node->items);
    if (node->text)
        wipe(node->text, 0, node->len);
    free(node->text);
    free(node);
}

struct cps_yaml_node *cps_yaml_node_new(enum cps_yaml_type type, int line, int col)
{
    struct cps_yaml_node *node = calloc(1, sizeof *node);
    if (node) {
        node->type = type;
        node->line = line;
        node->col = col;
    }
    return node;
}

int cps_yaml_node_set_text(struct cps_yaml_node *node, const char *text, size_t len)
{
    if (len == SIZE_MAX || !(node->text = malloc(len + 1)))
        return -1;
    if (len)
        memcpy(node->text, text, len);
    node->text[len] = '\0';
    node->len = len;
    return 0;
}

int cps_yaml_node_append(struct cps_yaml_node *parent, struct cps_yaml_node *child)
{
    if (parent->n_items == parent->cap_items) {
        size_t cap = parent->cap_items ? 2 * parent->cap_items : 8;
        struct cps_yaml_node **items = realloc(parent->items, cap * sizeof *items);
        if (!items)
            return -1;
        parent->items = items;
        parent->cap_items = cap;
    }
    parent->items[parent->n_items++] = child;
    return 0;
}

int cps_yaml_is_null(const struct cps_yaml_node *node)
{
    if (!node || node->type != CPS_YAML_SCALAR || node->quoted)
        return 0;
    const char *t = node->text;
    return node->len == 0 || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
           !strcmp(t, "NULL");
}

int cps_yaml_bool(const struct cps_yaml_node *node)
{
    static const char *const truths[] = {"true", "True", "TRUE", "yes", "Yes",
                                         "YES",  "on",   "On",   "ON"};
    static const char *const lies[] = {"false", "False", "FALSE", "no", "No",
                                       "NO",    "off",   "Off",   "OFF"};
    if (!node || node->type != CPS_YAML_SCALAR || node->quoted)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(truths); i++) {
        if (!strcmp(node->text, truths[i]))
            return 1;
        if (!strcmp(node->text, lies[i]))
            return 0;
    }
    return -1;
}

const char *cps_yaml_plain_text(const struct cps_yaml_node *node)
{
    if (node->type != CPS_YAML_SCALAR || node->quoted || cps_yaml_is_null(node) ||
        strlen(node->text) != node->len)
        return NULL;
    return node->text;
}

int cps_yaml_key_is(const struct cps_yaml_node *key, const char *name)
{
    return key->type == CPS_YAML_SCALAR && strlen(name) == key->len &&
           !memcmp(name, key->text, key->len);
}

const char *cps_yaml_quote(char *buf, size_t size, const char *text, size_t len, int dots_inside)
{
    char shown[CPS_YAML_SHOW_MAX + 1];
    size_t n = len < CPS_YAML_SHOW_MAX ? len : CPS_YAML_SHOW_MAX;
    if (n < len)
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        shown[i] = (c < 0x20 || c == 0x7F || c == '"') ? '?' : (char)c;
    }
    shown[n] = '\0';
    const char *dots = n < len ? "..." : "";
    if (dots_inside)
        snprintf(buf, size, "\"%s%s\"", shown, dots);
    else
        snprintf(buf, size, "\"%s\"%s", shown, dots);
    return buf;
}

const char *cps_yaml_show(const struct cps_yaml_node *node, int secret_safe, char *buf, size_t size)
{
    char text[CPS_YAML_SHOW_MAX + 8];
    if (node->type == CPS_YAML_MAP)
        return "a mapping";
    if (node->type == CPS_YAML_SEQ)
        return "a list";
    if (cps_yaml_is_null(node))
        return "null";
    if (secret_safe)
        return "a string";
    if (!node->quoted)
        return cps_yaml_quote(buf, size, node->text, node->len, 1);
    snprintf(buf, size, "the string %s",
             cps_yaml_quote(text, sizeof text, node->text, node->len, 1));
    return buf;
}

int cps_yaml_looks_like_name(const char *text, size_t len, const char *extra)
{
    if (len == 0 || len > CPS_YAML_SHOW_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
              (c != '\0' && strchr(extra, c))))
            return 0;
    }
    return 1;
}

static int fail_node(const struct cps_yaml_node *node, const char *source, struct cps_err *err,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Fill err at `node` (0:0 without one) and return -1. */
static int fail_node(const struct cps_yaml_node *node, const char *source, struct cps_err *err,
                     const char *fmt, ...)
{
    char message[CPS_ERR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return cps_err_set(err, source, node ? node->line : 0, node ? node->col : 0, "%s", message);
}

/* "unknown key ..." for a key not in names: the key is quoted unless the
 * style is secret_safe and it does not look like a name. */
static int fail_unknown_key(const struct cps_yaml_node *key, const char *where,
                            const char *const *names, size_t n_names,
                            const struct cps_yaml_style *style, const char *source,
                            struct cps_err *err)
{
    char expected[KEYS_TEXT_MAX], shown[CPS_YAML_SHOWN_MAX];
    size_t used = 0;
    expected[0] = '\0';
    for (size_t i = 0; i < n_names && used < sizeof expected; i++)
        used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s", i ? ", " : "",
                                 names[i]);
    if (style->secret_safe && !cps_yaml_looks_like_name(key->text, key->len, ""))
        return fail_node(key, source, err,
                         "unknown key in %s (not quoted: it may be a secret; expected one of: %s)",
                         where, expected);
    return fail_node(key, source, err, "unknown key %s in %s (expected one of: %s)",
                     cps_yaml_quote(shown, sizeof shown, key->text, key->len, !style->secret_safe),
                     where, expected);
}

int cps_yaml_map_match(const struct cps_yaml_node *map, const char *where, const char *const *names,
                       size_t n_names, const struct cps_yaml_node **values,
                       const struct cps_yaml_node **key_nodes, const struct cps_yaml_style *style,
                       const char *source, struct cps_err *err)
{
    const char *place = *where ? where : "the top level";
    char shown[CPS_YAML_SHOWN_MAX];
    for (size_t i = 0; i < n_names; i++) {
        if (values)
            values[i] = NULL;
        if (key_nodes)
            key_nodes[i] = NULL;
    }
    if (!map || cps_yaml_is_null(map) || map->type != CPS_YAML_MAP)
        return 0;
    for (size_t p = 0; p + 1 < map->n_items; p += 2) {
        const struct cps_yaml_node *key = map->items[p];
        if (key->type != CPS_YAML_SCALAR) {
            if (style->secret_safe)
                return fail_node(key, source, err, "keys in %s must be strings, got %s", place,
                                 cps_yaml_show(key, 1, shown, sizeof shown));
            return fail_node(key, source, err, "%s: keys must be strings, got %s",
                             *where ? where : "config", cps_yaml_show(key, 0, shown, sizeof shown));
        }
        size_t k = 0;
        while (k < n_names && !cps_yaml_key_is(key, names[k]))
            k++;
        if (k == n_names)
            return fail_unknown_key(key, place, names, n_names, style, source, err);
        /* a duplicate: the first one's value or key is already set */
        const struct cps_yaml_node *first = NULL;
        for (size_t q = 0; q < p && !first; q += 2)
            if (cps_yaml_key_is(map->items[q], names[k]))
                first = map->items[q];
        if (first && first->line > 0)
            return fail_node(key, source, err,
                             "duplicate key \"%s\" in %s (first at line %d, column %d)", names[k],
                             place, first->line, first->col);
        if (first)
            return fail_node(key, source, err, "duplicate key \"%s\" in %s", names[k], place);
        if (values)
            values[k] = map->items[p + 1];
        if (key_nodes)
            key_nodes[k] = key;
    }
    return 0;
}

/* libyaml marks are size_t and 0-based; ours are int and 1-based. */
static int mark_int(size_t zero_based)
{
    return zero_based >= (size_t)INT_MAX ? INT_MAX : (int)zero_based + 1;
}

/*
 * Accept the standard tags that agree with the node's kind (so `!!str 5` is
 * the string "5") and refuse everything else: a custom tag means the author
 * expects some processing we do not do. *as_string is set for `!` and
 * `!!str` on a scalar; `!` on a collection only passes with
 * bang_collections (kubeconfig; config files refuse it). 0, or -1 when
 * refused.
 */
static int check_tag(const char *tag, enum cps_yaml_type type, int bang_collections, int *as_string)
{
    static const char *const scalar_tags[] = {"str", "int", "float", "bool", "null"};
    const size_t prefix = sizeof YAML_TAG_PREFIX - 1;
    *as_string = 0;
    if (!tag)
        return 0;
    if (!strcmp(tag, "!")) {
        *as_string = type == CPS_YAML_SCALAR;
        return type == CPS_YAML_SCALAR || bang_collections ? 0 : -1;
    }
    if (strncmp(tag, YAML_TAG_PREFIX, prefix) != 0)
        return -1;
    tag += prefix;
    if (type == CPS_YAML_MAP)
        return !strcmp(tag, "map") ? 0 : -1;
    if (type == CPS_YAML_SEQ)
        return !strcmp(tag, "seq") ? 0 : -1;
    for (size_t i = 0; i < ARRAY_LEN(scalar_tags); i++) {
        if (!strcmp(tag, scalar_tags[i])) {
            *as_string = i == 0;
            return 0;
        }
    }
    return -1;
}

/* Line and column of a byte offset, counting characters as libyaml does
 * (reader errors only carry an offset). */
static void offset_position(const char *bytes, size_t len, size_t offset, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        unsigned char b = (unsigned char)bytes[i];
        if (b == '\n' || (b == '\r' && (i + 1 >= len || bytes[i + 1] != '\n'))) {
            l += l < INT_MAX;
            c = 1;
        } else if ((b & 0xC0) != 0x80 && b != '\r') {
            c += c < INT_MAX;
        }
    }
    *line = l;
    *col = c;
}

/* libyaml's error as ours, at the position libyaml noticed it. The
 * offending byte's value is left out when secret_safe: it may be a byte of a
 * token. */
static int yaml_error(const yaml_parser_t *parser, const char *bytes, size_t len,
                      const char *source, int secret_safe, struct cps_err *err)
{
    const char *problem = parser->problem ? parser->problem : "syntax error";
    int line, col;
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return cps_err_set(err, source, 0, 0, "out of memory while parsing YAML");
    case YAML_READER_ERROR:
        offset_position(bytes, len, parser->problem_offset, &line, &col);
        problem = parser->problem ? parser->problem : "unreadable";
        if (parser->problem_value != -1 && !secret_safe)
            return cps_err_set(err, source, line, col, "invalid input: %s (#%X)", problem,
                               (unsigned)parser->problem_value);
        return cps_err_set(err, source, line, col, "invalid input: %s", problem);
    default:
        line = mark_int(parser->problem_mark.line);
        col = mark_int(parser->problem_mark.column);
        if (parser->context)
            return cps_err_set(err, source, line, col, "invalid YAML: %s %s at line %d, column %d",
                               problem, parser->context, mark_int(parser->context_mark.line),
                               mark_int(parser->context_mark.column));
        return cps_err_set(err, source, line, col, "invalid YAML: %s", problem);
    }
}

/* The state of one tree build: the open mappings and lists, innermost last. */
struct builder {
    const struct cps_yaml_style *style;
    const char *source;
    struct cps_err *err;
    struct cps_yaml_node *open[CPS_YAML_MAX_DEPTH];
    size_t depth;
    int n_nodes;
    struct cps_yaml_node *root;
};

/* "unsupported YAML tag ..." in the style's quoting. */
static int fail_tag(const struct builder *b, const struct cps_yaml_node *at, const char *tag)
{
    const size_t prefix = sizeof YAML_TAG_PREFIX - 1;
    if (!b->style->secret_safe)
        return fail_node(at, b->source, b->err, "unsupported YAML tag \"%.*s\"", CPS_YAML_SHOW_MAX,
                         tag);
    if (!strncmp(tag, YAML_TAG_PREFIX, prefix) &&
        cps_yaml_looks_like_name(tag + prefix, strlen(tag + prefix), ""))
        return fail_node(at, b->source, b->err, "unsupported YAML tag \"!!%s\" here", tag + prefix);
    if (cps_yaml_looks_like_name(tag, strlen(tag), "!/"))
        return fail_node(at, b->source, b->err, "unsupported YAML tag \"%s\"", tag);
    return fail_node(at, b->source, b->err,
                     "unsupported YAML tag (not quoted: it may be a secret)");
}

/*
 * Add the node a scalar, sequence-start or mapping-start event opens: check
 * its tag and the limits, store its text, link it under the innermost open
 * collection (or make it the root) and open it if it is a collection.
 */
static int tree_add(struct builder *b, const yaml_event_t *event)
{
    struct cps_yaml_node at = {.line = mark_int(event->start_mark.line),
                               .col = mark_int(event->start_mark.column)};
    enum cps_yaml_type type = CPS_YAML_SCALAR;
    const char *tag;
    int as_string;
    if (event->type == YAML_SCALAR_EVENT) {
        tag = (const char *)event->data.scalar.tag;
    } else if (event->type == YAML_SEQUENCE_START_EVENT) {
        type = CPS_YAML_SEQ;
        tag = (const char *)event->data.sequence_start.tag;
    } else {
        type = CPS_YAML_MAP;
        tag = (const char *)event->data.mapping_start.tag;
    }
    if (check_tag(tag, type, b->style->bang_collections, &as_string) < 0)
        return fail_tag(b, &at, tag);
    if (type != CPS_YAML_SCALAR && b->depth == CPS_YAML_MAX_DEPTH)
        return fail_node(&at, b->source, b->err, "nested deeper than %d levels",
                         CPS_YAML_MAX_DEPTH);
    if (b->n_nodes == b->style->max_nodes)
        return fail_node(&at, b->source, b->err, "more than %d values in one file",
                         b->style->max_nodes);
    b->n_nodes++;
    struct cps_yaml_node *node = cps_yaml_node_new(type, at.line, at.col);
    if (!node)
        return fail_node(&at, b->source, b->err, "out of memory");
    if (type == CPS_YAML_SCALAR) {
        yaml_scalar_style_t style = event->data.scalar.style;
        /* !!int "5" is the number 5 */
        node->quoted = as_string ||
                       (!tag && style != YAML_PLAIN_SCALAR_STYLE && style != YAML_ANY_SCALAR_STYLE);
        if (cps_yaml_node_set_text(node, (const char *)event->data.scalar.value,
                                   event->data.scalar.length) < 0) {
            cps_yaml_node_free(node);
            return fail_node(&at, b->source, b->err, "out of memory");
        }
    }
    if (b->depth == 0) {
        b->root = node; /* one document, one root */
    } else if (cps_yaml_node_append(b->open[b->depth - 1], node) < 0) {
        cps_yaml_node_free(node);
        return fail_node(&at, b->source, b->err, "out of memory");
    }
    if (type != CPS_YAML_SCALAR)
        b->open[b->depth++] = node;
    return 0;
}

/* "aliases ... are not supported", the anchor quoted in the style's way. */
static int fail_alias(const struct builder *b, const struct cps_yaml_node *at, const char *anchor)
{
    if (!b->style->secret_safe)
        return fail_node(at, b->source, b->err,
                         "aliases (*%.*s) are not supported; write the value out",
                         CPS_YAML_SHOW_MAX, anchor);
    if (cps_yaml_looks_like_name(anchor, strlen(anchor), ""))
        return fail_node(at, b->source, b->err,
                         "aliases (*%s) are not supported; write the value out", anchor);
    return fail_node(at, b->source, b->err, "aliases are not supported; write the value out");
}

/*
 * Iterative: the only stack is builder.open, CPS_YAML_MAX_DEPTH deep. A
 * partly built tree is freed on failure.
 */
int cps_yaml_parse(const char *bytes, size_t len, const char *source,
                   const struct cps_yaml_style *style, struct cps_yaml_node **root,
                   struct cps_err *err)
{
    yaml_parser_t parser;
    yaml_event_t event;
    struct builder b = {.style = style, .source = source, .err = err};
    int documents = 0, have_event = 0, done = 0;

    *root = NULL;
    if (!yaml_parser_initialize(&parser))
        return cps_err_set(err, source, 0, 0, "out of memory while parsing YAML");
    yaml_parser_set_input_string(&parser, (const unsigned char *)bytes, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &event)) {
            yaml_error(&parser, bytes, len, source, style->secret_safe, err);
            goto fail;
        }
        have_event = 1;
        struct cps_yaml_node at = {.line = mark_int(event.start_mark.line),
                                   .col = mark_int(event.start_mark.column)};
        switch (event.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                fail_node(&at, source, err, "a %s is one YAML document; found a second one",
                          style->what);
                goto fail;
            }
            break;
        case YAML_ALIAS_EVENT:
            fail_alias(&b, &at, (const char *)event.data.alias.anchor);
            goto fail;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b.depth > 0)
                b.depth--;
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (tree_add(&b, &event) < 0)
                goto fail;
            break;
        default: break;
        }
        yaml_event_delete(&event);
        have_event = 0;
    }
    yaml_parser_delete(&parser);
    *root = b.root;
    return 0;

fail:
    if (have_event)
        yaml_event_delete(&event);
    yaml_parser_delete(&parser);
    cps_yaml_node_free(b.root);
    return -1;
}
