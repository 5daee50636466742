/*
 * One YAML document as a tree of positioned nodes (libyaml's event API): the
 * one YAML front end of config.yaml (config_load.c) and kubeconfig
 * (kubeconfig.c).
 *
 * Policy, the same for every document: one document whose root may be
 * anything (NULL for an empty stream); aliases refused (no billion laughs);
 * only the standard tags that agree with the node's kind (`!!str 5` is the
 * string "5"); nesting capped at CPS_YAML_MAX_DEPTH and node count at the
 * style's max_nodes, so any input is safe to hand over; positions are
 * 1-based line:col as libyaml counts them (0:0 for trees built from JSON).
 *
 * What differs between documents is a struct cps_yaml_style: the document's
 * name in messages, the node cap, and whether messages may quote text from
 * the file (a kubeconfig holds tokens and keys: secret_safe never repeats a
 * value, and repeats a key, tag or anchor only when it looks like a name).
 *
 * Ownership: cps_yaml_parse gives a tree the caller frees with
 * cps_yaml_node_free (NULL is a no-op), which zeroes the text first.
 */
#ifndef CPS_YAML_DOC_H
#define CPS_YAML_DOC_H

#include <stddef.h>

#include "err.h"

#define CPS_YAML_MAX_DEPTH 64 /* nesting levels of mappings and lists */
#define CPS_YAML_SHOW_MAX 40  /* bytes of text quoted in a message */
#define CPS_YAML_SHOWN_MAX (CPS_YAML_SHOW_MAX + 32) /* a shown value: the string "abc..." */

enum cps_yaml_type {
    CPS_YAML_SCALAR,
    CPS_YAML_MAP, /* items hold key, value, key, value, ... */
    CPS_YAML_SEQ,
};

struct cps_yaml_node {
    enum cps_yaml_type type;
    int line, col; /* 1-based; 0 when unknown (JSON) */
    int quoted;    /* a string for sure: quoted, block or !!str; never a number, bool or null */
    char *text;    /* scalar bytes, NUL-terminated (may also contain NULs: see len) */
    size_t len;
    struct cps_yaml_node **items;
    size_t n_items, cap_items;
};

struct cps_yaml_style {
    const char *what; /* "config": "a config is one YAML document; ..." */
    int max_nodes;    /* scalars + mappings + lists in one document */
    int secret_safe;  /* never quote what may be a credential (kubeconfig) */
    int bang_collections; /* accept the non-specific tag `!` on mappings and lists too */
};

/* Parse one YAML document into *root (NULL for an empty stream). 0, or -1
 * with err filled as "source:line:col: message". */
int cps_yaml_parse(const char *bytes, size_t len, const char *source,
                   const struct cps_yaml_style *style, struct cps_yaml_node **root,
                   struct cps_err *err);

/* Zero the text (it may hold a token) and free the tree. NULL is a no-op. */
void cps_yaml_node_free(struct cps_yaml_node *node);

/* Building blocks for trees from other sources (JSON): NULL / -1 when out of
 * memory. set_text copies len bytes and adds a NUL; append takes ownership
 * of child only on success. */
struct cps_yaml_node *cps_yaml_node_new(enum cps_yaml_type type, int line, int col);
int cps_yaml_node_set_text(struct cps_yaml_node *node, const char *text, size_t len);
int cps_yaml_node_append(struct cps_yaml_node *parent, struct cps_yaml_node *child);

/* A plain scalar spelled as YAML 1.1 null: "", ~, null, Null, NULL. */
int cps_yaml_is_null(const struct cps_yaml_node *node);

/* A plain scalar spelled as a YAML 1.1 boolean (true/True/TRUE/yes/.../OFF):
 * 1 or 0; -1 when it is not one. */
int cps_yaml_bool(const struct cps_yaml_node *node);

/* A plain scalar's text as number parsers see it; NULL when the node is not
 * a plain, non-null scalar without NUL bytes. */
const char *cps_yaml_plain_text(const struct cps_yaml_node *node);

/* Whether a key node spells `name` exactly. */
int cps_yaml_key_is(const struct cps_yaml_node *key, const char *name);

/* Bytes as a message quotes them, "abc", cut at CPS_YAML_SHOW_MAX bytes
 * (never inside a UTF-8 sequence), control bytes and '"' as '?'. A cut text
 * ends in `..."` (dots_inside) or `"...`. Returns buf. */
const char *cps_yaml_quote(char *buf, size_t size, const char *text, size_t len,
                           int dots_inside);

/* A value as a message shows it: "a mapping", "a list", "null", and for a
 * scalar its quoted text ("abc", or `the string "5"` when quoted) or, with
 * secret_safe, only "a string". Returns buf or a literal. */
const char *cps_yaml_show(const struct cps_yaml_node *node, int secret_safe, char *buf,
                          size_t size);

/* Whether file text that is not a value (a key, tag, anchor) may be quoted
 * in a secret_safe message: letters, '-', '_' and `extra`, at most
 * CPS_YAML_SHOW_MAX bytes. */
int cps_yaml_looks_like_name(const char *text, size_t len, const char *extra);

/*
 * Match the keys of `map` (a mapping; null counts as an empty one) against
 * names[0..n_names): values[i] and key_nodes[i] (either may be NULL) point at
 * the value and key of names[i], or NULL when absent. Unknown, duplicate and
 * non-string keys are errors in the style's wording; `where` names the
 * mapping ("" is the top level). 0, or -1 with err filled. A map of another
 * type is left to the caller (not checked).
 */
int cps_yaml_map_match(const struct cps_yaml_node *map, const char *where,
                       const char *const *names, size_t n_names,
                       const struct cps_yaml_node **values,
                       const struct cps_yaml_node **key_nodes,
                       const struct cps_yaml_style *style, const char *source,
                       struct cps_err *err);

#endif
