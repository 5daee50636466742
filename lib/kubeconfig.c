/*
 * kubeconfig -> struct cps_kubeconfig. The contract is in kubeconfig.h.
 *
 * Two passes, as for config.yaml. First the bytes become a positioned node
 * tree (yaml_doc.h, in its secret_safe style: messages never repeat a
 * value); input size, depth and node count are capped and aliases refused,
 * so no input can exhaust the stack or the memory. Then a walk checks the
 * shape of every list entry, picks the context, applies the rules about
 * meaning to the chosen context, cluster and user only, and copies what the
 * controller needs into the result.
 */
#include "kubeconfig.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "k8s_names.h"
#include "yaml_doc.h"

#define KC_DEFAULT_SOURCE "<kubeconfig>"
#define KC_PATH_TEXT_MAX 96    /* "contexts[4294967295].context.namespace" and the like */
#define KC_SHOWN_MAX CPS_YAML_SHOWN_MAX /* a quoted, cut name: "abc"... */
#define KC_NAMES_LIST_MAX 160  /* the "(contexts: ...)" hint in messages */
#define KC_MAX_KEYS 16         /* keys in the largest mapping we read (user: 15) */
#define KC_HTTPS "https://"
#define KC_B64_PAD 64          /* b64 symbol value of '=' */
#define KC_B64_QUAD 4          /* symbols per group of 3 bytes */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(CPS_KUBECONFIG_MAX_DEPTH == CPS_YAML_MAX_DEPTH, "one depth cap for YAML");

/* A kubeconfig holds tokens and keys: messages never quote a value. */
static const struct cps_yaml_style kc_style = {
    .what = "kubeconfig",
    .max_nodes = CPS_KUBECONFIG_MAX_NODES,
    .secret_safe = 1,
    .bang_collections = 1,
};

/* ---- messages ------------------------------------------------------------- */

struct kc_walk {
    const char *source;
    struct cps_err *err;
};

static int fail_at(const struct kc_walk *w, const struct cps_yaml_node *node, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));

/* Fill the error at `node` (0:0 without one) and return -1. */
static int fail_at(const struct kc_walk *w, const struct cps_yaml_node *node, const char *fmt,
                   ...)
{
    char message[CPS_ERR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return cps_err_set(w->err, w->source, node ? node->line : 0, node ? node->col : 0, "%s",
                       message);
}

/* Quote bytes for a message: only for text that cannot be a credential
 * (names, schemes, booleans, known keys). */
static const char *quote(char *buf, size_t size, const char *text, size_t len)
{
    return cps_yaml_quote(buf, size, text, len, 0);
}

/* What a value is, for "expected X, got Y". Never the value itself: it may
 * be a token. */
static const char *kind_of(const struct cps_yaml_node *node)
{
    return cps_yaml_show(node, 1, NULL, 0);
}

/* ---- typed values --------------------------------------------------------- */

/* What a key's value may be. The checks are about shape only; meaning is
 * checked later, for the chosen context, cluster and user. */
enum kc_kind {
    KK_STRING,  /* any scalar but null; null or "" mean absent */
    KK_BOOL,    /* true/false (YAML 1.1 spellings) or null */
    KK_DATA,    /* a base64 string, or null */
    KK_MAP,     /* a mapping or null, not read further */
    KK_SEQ,     /* a list or null, not read further */
    KK_ANY,     /* anything, not read (extensions) */
};

struct kc_key {
    const char *name;
    enum kc_kind kind;
};

/* "parent.key", or "key" at the top level (parent ""). Our paths are only
 * list keys, indices and schema keys, so KC_PATH_TEXT_MAX always holds them;
 * were one cut, it would end in "...". */
static void path_join(char *buf, size_t size, const char *parent, const char *key)
{
    int n = snprintf(buf, size, "%s%s%s", parent, *parent ? "." : "", key);
    if ((n < 0 || (size_t)n >= size) && size > sizeof "...")
        memcpy(buf + size - sizeof "...", "...", sizeof "...");
}

/*
 * Check that `map` is a mapping (null counts as an empty one) whose keys are
 * all in `keys`, each at most once, and point values[i] and key_nodes[i] at
 * the value and key for keys[i] (NULL when absent). A NULL map has no keys.
 * `what` names the mapping in messages ("clusters[0].cluster"; "" is the top
 * level).
 */
static int map_keys(const struct kc_walk *w, const struct cps_yaml_node *map, const char *what,
                    const struct kc_key *keys, size_t n_keys, const struct cps_yaml_node **values,
                    const struct cps_yaml_node **key_nodes)
{
    const char *names[KC_MAX_KEYS];
    for (size_t i = 0; i < n_keys; i++)
        names[i] = keys[i].name;
    if (map && !cps_yaml_is_null(map) && map->type != CPS_YAML_MAP)
        return fail_at(w, map, "%s: expected a mapping, got %s", *what ? what : "the top level",
                       kind_of(map));
    return cps_yaml_map_match(map, what, names, n_keys, values, key_nodes, &kc_style, w->source,
                              w->err);
}

/* The text of a string value, or NULL when it is absent (null or ""). Only
 * valid after check_value accepted the node as KK_STRING or KK_DATA. */
static const char *string_of(const struct cps_yaml_node *node)
{
    if (!node || cps_yaml_is_null(node) || node->len == 0)
        return NULL;
    return node->text;
}

/* ---- base64 --------------------------------------------------------------- */

/* The value of a base64 digit (RFC 4648 standard alphabet), KC_B64_PAD for
 * '=', or -1. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    if (c == '=')
        return KC_B64_PAD;
    return -1;
}

/*
 * Decode RFC 4648 base64 with the standard alphabet. Padding is required
 * (the symbols come in groups of 4) and '=' may only end the last group;
 * spaces, tabs and line breaks anywhere are skipped, because tools wrap long
 * values and a folded YAML scalar turns line breaks into spaces. Unused low
 * bits of the last symbol are not checked, like Go's decoder, which is what
 * client-go uses. With out == NULL it only checks and counts.
 * Returns 0 with *out_len, or -1 with *why and the byte offset *at.
 */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len,
                      const char **why, size_t *at)
{
    int group[KC_B64_QUAD];
    size_t k = 0, n = 0;
    int ended = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        int v = b64_value(c);
        *at = i;
        if (v < 0) {
            *why = "a character outside the base64 alphabet";
            return -1;
        }
        if (ended) {
            *why = "data after the '=' padding";
            return -1;
        }
        if ((v == KC_B64_PAD && k < 2) || (v != KC_B64_PAD && k == 3 && group[2] == KC_B64_PAD)) {
            *why = "'=' in the wrong place";
            return -1;
        }
        group[k++] = v;
        if (k == KC_B64_QUAD) {
            int pads = (group[2] == KC_B64_PAD) + (group[3] == KC_B64_PAD);
            uint32_t bits = 0;
            for (size_t j = 0; j < KC_B64_QUAD; j++)
                bits = (bits << 6) | (uint32_t)(group[j] == KC_B64_PAD ? 0 : group[j]);
            if (out) {
                out[n] = (unsigned char)(bits >> 16);
                if (pads < 2)
                    out[n + 1] = (unsigned char)(bits >> 8);
                if (pads < 1)
                    out[n + 2] = (unsigned char)bits;
            }
            n += 3 - (size_t)pads;
            ended = pads > 0;
            k = 0;
        }
    }
    if (k != 0) {
        *why = "its length is not a multiple of 4 (padding is required)";
        *at = len;
        return -1;
    }
    *out_len = n;
    return 0;
}

/*
 * Check one value against its kind (see enum kc_kind); `path` names it.
 * Base64 is checked here for every entry, as client-go's decoder does.
 */
static int check_value(const struct kc_walk *w, const struct cps_yaml_node *node, const char *path,
                       enum kc_kind kind)
{
    if (!node || kind == KK_ANY || cps_yaml_is_null(node))
        return 0;
    switch (kind) {
    case KK_STRING:
    case KK_DATA:
        if (node->type != CPS_YAML_SCALAR)
            return fail_at(w, node, "%s: expected a string, got %s", path, kind_of(node));
        if (strlen(node->text) != node->len)
            return fail_at(w, node, "%s: contains a NUL character", path);
        if (kind == KK_DATA) {
            const char *why = NULL;
            size_t at = 0, n = 0;
            if (b64_decode(node->text, node->len, NULL, &n, &why, &at) < 0)
                return fail_at(w, node, "%s: not valid base64: %s (at byte %zu of the value)",
                               path, why, at);
        }
        return 0;
    case KK_BOOL:
        if (cps_yaml_bool(node) < 0) {
            char shown[KC_SHOWN_MAX];
            if (node->type == CPS_YAML_SCALAR)
                return fail_at(w, node, "%s: expected true or false, got %s", path,
                               quote(shown, sizeof shown, node->text, node->len));
            return fail_at(w, node, "%s: expected true or false, got %s", path, kind_of(node));
        }
        return 0;
    case KK_MAP:
        if (node->type != CPS_YAML_MAP)
            return fail_at(w, node, "%s: expected a mapping, got %s", path, kind_of(node));
        return 0;
    case KK_SEQ:
        if (node->type != CPS_YAML_SEQ)
            return fail_at(w, node, "%s: expected a list, got %s", path, kind_of(node));
        return 0;
    case KK_ANY:
        break;
    }
    return 0;
}

/* map_keys, then check_value on each value present. */
static int check_body(const struct kc_walk *w, const struct cps_yaml_node *map, const char *what,
                      const struct kc_key *keys, size_t n_keys, const struct cps_yaml_node **values,
                      const struct cps_yaml_node **key_nodes)
{
    char path[KC_PATH_TEXT_MAX];
    if (map_keys(w, map, what, keys, n_keys, values, key_nodes) < 0)
        return -1;
    for (size_t i = 0; i < n_keys; i++) {
        path_join(path, sizeof path, what, keys[i].name);
        if (check_value(w, values[i], path, keys[i].kind) < 0)
            return -1;
    }
    return 0;
}

/* ---- the schema ----------------------------------------------------------- */

enum { TOP_API_VERSION, TOP_KIND, TOP_CLUSTERS, TOP_USERS, TOP_CONTEXTS, TOP_CURRENT,
       TOP_PREFERENCES, TOP_EXTENSIONS, TOP_COUNT };
static const struct kc_key top_keys[TOP_COUNT] = {
    [TOP_API_VERSION] = {"apiVersion", KK_STRING}, [TOP_KIND] = {"kind", KK_STRING},
    [TOP_CLUSTERS] = {"clusters", KK_SEQ},         [TOP_USERS] = {"users", KK_SEQ},
    [TOP_CONTEXTS] = {"contexts", KK_SEQ},         [TOP_CURRENT] = {"current-context", KK_STRING},
    [TOP_PREFERENCES] = {"preferences", KK_ANY},   [TOP_EXTENSIONS] = {"extensions", KK_ANY},
};

enum { CL_SERVER, CL_TLS_SERVER_NAME, CL_INSECURE, CL_CA, CL_CA_DATA, CL_PROXY_URL,
       CL_DISABLE_COMPRESSION, CL_EXTENSIONS, CL_COUNT };
static const struct kc_key cluster_keys[CL_COUNT] = {
    [CL_SERVER] = {"server", KK_STRING},
    [CL_TLS_SERVER_NAME] = {"tls-server-name", KK_STRING},
    [CL_INSECURE] = {"insecure-skip-tls-verify", KK_BOOL},
    [CL_CA] = {"certificate-authority", KK_STRING},
    [CL_CA_DATA] = {"certificate-authority-data", KK_DATA},
    [CL_PROXY_URL] = {"proxy-url", KK_STRING},
    [CL_DISABLE_COMPRESSION] = {"disable-compression", KK_BOOL},
    [CL_EXTENSIONS] = {"extensions", KK_ANY},
};

enum { US_CERT, US_CERT_DATA, US_KEY, US_KEY_DATA, US_TOKEN, US_TOKEN_FILE, US_AS, US_AS_UID,
       US_AS_GROUPS, US_AS_USER_EXTRA, US_USERNAME, US_PASSWORD, US_AUTH_PROVIDER, US_EXEC,
       US_EXTENSIONS, US_COUNT };
static const struct kc_key user_keys[US_COUNT] = {
    [US_CERT] = {"client-certificate", KK_STRING},
    [US_CERT_DATA] = {"client-certificate-data", KK_DATA},
    [US_KEY] = {"client-key", KK_STRING},
    [US_KEY_DATA] = {"client-key-data", KK_DATA},
    [US_TOKEN] = {"token", KK_STRING},
    [US_TOKEN_FILE] = {"tokenFile", KK_STRING},
    [US_AS] = {"as", KK_STRING},
    [US_AS_UID] = {"as-uid", KK_STRING},
    [US_AS_GROUPS] = {"as-groups", KK_SEQ},
    [US_AS_USER_EXTRA] = {"as-user-extra", KK_MAP},
    [US_USERNAME] = {"username", KK_STRING},
    [US_PASSWORD] = {"password", KK_STRING},
    [US_AUTH_PROVIDER] = {"auth-provider", KK_MAP},
    [US_EXEC] = {"exec", KK_MAP},
    [US_EXTENSIONS] = {"extensions", KK_ANY},
};

enum { CX_CLUSTER, CX_USER, CX_NAMESPACE, CX_EXTENSIONS, CX_COUNT };
static const struct kc_key context_keys[CX_COUNT] = {
    [CX_CLUSTER] = {"cluster", KK_STRING},
    [CX_USER] = {"user", KK_STRING},
    [CX_NAMESPACE] = {"namespace", KK_STRING},
    [CX_EXTENSIONS] = {"extensions", KK_ANY},
};

/* The user keys cpscale refuses when the chosen user sets them, and why. */
static const struct {
    int key;
    const char *why;
} unsupported_user_keys[] = {
    {US_EXEC, "cpscale does not run credential plugins; give it a token, tokenFile or "
              "client certificate"},
    {US_AUTH_PROVIDER, "cpscale does not run auth providers; give it a token, tokenFile or "
                       "client certificate"},
    {US_USERNAME, "basic authentication; give cpscale a token, tokenFile or client certificate"},
    {US_PASSWORD, "basic authentication; give cpscale a token, tokenFile or client certificate"},
    {US_AS, "impersonation"},        {US_AS_UID, "impersonation"},
    {US_AS_GROUPS, "impersonation"}, {US_AS_USER_EXTRA, "impersonation"},
};

/* ---- named lists: clusters, users, contexts ------------------------------- */

struct kc_entry {
    const struct cps_yaml_node *item; /* the list item */
    const struct cps_yaml_node *name; /* its name's value */
    const char *name_text;      /* its bytes (NUL-free: checked) */
    const struct cps_yaml_node *body; /* the cluster/user/context mapping, or NULL */
    size_t index;               /* position in the list */
};

/* The body of a chosen entry, by key (values and keys NULL when absent). */
struct kc_fields {
    const struct cps_yaml_node *values[KC_MAX_KEYS];
    const struct cps_yaml_node *keys[KC_MAX_KEYS];
};

_Static_assert(TOP_COUNT <= KC_MAX_KEYS && CL_COUNT <= KC_MAX_KEYS && US_COUNT <= KC_MAX_KEYS &&
                   CX_COUNT <= KC_MAX_KEYS,
               "KC_MAX_KEYS holds every schema mapping");

struct kc_list {
    const char *list_key;      /* "clusters" */
    const char *body_key;      /* "cluster" */
    const struct kc_key *keys; /* of the body */
    size_t n_keys;
    const struct cps_yaml_node *node; /* the list, or NULL */
    struct kc_entry *entries;   /* in document order */
    struct kc_entry **sorted;   /* by name, then index */
    size_t n;
};

static void list_release(struct kc_list *list)
{
    free(list->sorted);
    free(list->entries);
    list->sorted = NULL;
    list->entries = NULL;
    list->n = 0;
}

/* By name, then by place in the file (so the first of a name sorts first). */
static int entry_cmp(const void *a, const void *b)
{
    const struct kc_entry *x = *(const struct kc_entry *const *)a;
    const struct kc_entry *y = *(const struct kc_entry *const *)b;
    int c = strcmp(x->name_text, y->name_text);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Read one named list (`clusters:`, `users:` or `contexts:`): every item is
 * a mapping of `name` (a non-empty string) and the body, whose keys and
 * value types are checked. Names must be unique, as client-go requires; the
 * check sorts, so it is O(n log n) however long the list is.
 */
static int list_read(const struct kc_walk *w, struct kc_list *list)
{
    char what[KC_PATH_TEXT_MAX], path[KC_PATH_TEXT_MAX];
    if (!list->node || cps_yaml_is_null(list->node))
        return 0;
    size_t cap = list->node->n_items ? list->node->n_items : 1;
    if (!(list->entries = calloc(cap, sizeof *list->entries)) ||
        !(list->sorted = calloc(cap, sizeof *list->sorted)))
        return fail_at(w, list->node, "out of memory");
    for (size_t i = 0; i < list->node->n_items; i++) {
        const struct cps_yaml_node *item = list->node->items[i];
        struct kc_entry *e = &list->entries[list->n];
        struct kc_fields body;
        const struct cps_yaml_node *item_values[2], *item_keys[2];
        const struct kc_key item_keys_table[2] = {{"name", KK_STRING},
                                                  {list->body_key, KK_MAP}};
        e->item = item;
        e->index = list->n;
        snprintf(what, sizeof what, "%s[%zu]", list->list_key, e->index);
        if (item->type != CPS_YAML_MAP)
            return fail_at(w, item, "%s: expected a mapping with name and %s, got %s", what,
                           list->body_key, kind_of(item));
        if (check_body(w, item, what, item_keys_table, 2, item_values, item_keys) < 0)
            return -1;
        e->name = item_values[0];
        e->body = item_values[1];
        if (!e->name)
            return fail_at(w, item, "%s: missing name", what);
        if (!(e->name_text = string_of(e->name)))
            return fail_at(w, e->name, "%s.name: must not be empty", what);
        path_join(path, sizeof path, what, list->body_key);
        if (check_body(w, e->body, path, list->keys, list->n_keys, body.values, body.keys) < 0)
            return -1;
        list->sorted[list->n] = e;
        list->n++;
    }
    qsort(list->sorted, list->n, sizeof *list->sorted, entry_cmp);
    /* report the duplicate that comes first in the file */
    const struct kc_entry *dup = NULL, *first = NULL, *group = NULL;
    for (size_t i = 0; i < list->n; i++) {
        const struct kc_entry *e = list->sorted[i];
        if (group && !strcmp(group->name_text, e->name_text)) {
            if (!dup || e->index < dup->index) {
                dup = e;
                first = group;
            }
        } else {
            group = e;
        }
    }
    if (dup) {
        char shown[KC_SHOWN_MAX];
        return fail_at(w, dup->name,
                       "%s[%zu].name: duplicate %s name %s (first at %s[%zu], line %d)",
                       list->list_key, dup->index, list->body_key,
                       quote(shown, sizeof shown, dup->name_text, dup->name->len),
                       list->list_key, first->index, first->name->line);
    }
    return 0;
}

/* The entry named `name`, or NULL (binary search for the first of that name). */
static const struct kc_entry *list_find(const struct kc_list *list, const char *name)
{
    size_t lo = 0, hi = list->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(list->sorted[mid]->name_text, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < list->n && !strcmp(list->sorted[lo]->name_text, name))
        return list->sorted[lo];
    return NULL;
}

/* " (contexts: "a", "b", ...)" or " (the file defines no contexts)": a hint
 * for "not defined" messages, in file order. */
static const char *list_names(const struct kc_list *list, char *buf, size_t size)
{
    size_t used;
    if (list->n == 0) {
        snprintf(buf, size, " (the file defines no %s)", list->list_key);
        return buf;
    }
    used = (size_t)snprintf(buf, size, " (%s: ", list->list_key);
    for (size_t i = 0; i < list->n && used < size; i++) {
        char shown[KC_SHOWN_MAX];
        const struct cps_yaml_node *name = list->entries[i].name;
        quote(shown, sizeof shown, name->text, name->len);
        if (used + strlen(shown) + sizeof ", ...)" > size) {
            snprintf(buf + used, size - used, "...)");
            return buf;
        }
        used += (size_t)snprintf(buf + used, size - used, "%s%s", shown,
                                 i + 1 < list->n ? ", " : ")");
    }
    return buf;
}

/* The body of an entry list_read accepted, by key. Cannot fail then. */
static void entry_fields(const struct kc_walk *w, const struct kc_list *list,
                         const struct kc_entry *e, struct kc_fields *f)
{
    map_keys(w, e->body, "", list->keys, list->n_keys, f->values, f->keys);
}

/* ---- values that need more than a type check ----------------------------- */

/*
 * Check the chosen cluster's server and return a copy without trailing '/'
 * (so paths can be appended), or NULL with the error filled. It must be an
 * https:// URL with a host and no user info; the value is only quoted in
 * messages through its scheme, since a URL may carry a password.
 */
static char *server_copy(const struct kc_walk *w, const struct cps_yaml_node *node,
                         const char *path)
{
    const char *s = node->text;
    size_t n = node->len, scheme_len = sizeof KC_HTTPS - 1;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7F) {
            fail_at(w, node, "%s: contains a space or a control character", path);
            return NULL;
        }
    }
    if (n < scheme_len || strncasecmp(s, KC_HTTPS, scheme_len) != 0) {
        const char *colon = strstr(s, "://");
        char shown[KC_SHOWN_MAX];
        if (colon)
            fail_at(w, node, "%s: must be an https:// URL (TLS is always verified), got scheme %s",
                    path, quote(shown, sizeof shown, s, (size_t)(colon - s)));
        else
            fail_at(w, node, "%s: must be an https:// URL (TLS is always verified), got no scheme",
                    path);
        return NULL;
    }
    size_t host = scheme_len, end = host;
    while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
        end++;
    if (memchr(s + host, '@', end - host)) {
        fail_at(w, node, "%s: user info in the URL is not supported", path);
        return NULL;
    }
    if (end == host || s[host] == ':') {
        fail_at(w, node, "%s: no host after https://", path);
        return NULL;
    }
    while (n > end && s[n - 1] == '/')
        n--;
    char *copy = malloc(n + 1);
    if (!copy) {
        fail_at(w, node, "out of memory");
        return NULL;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    return copy;
}

/*
 * Lexically clean a '/'-separated path as Go's filepath.Clean does: collapse
 * repeated '/', drop "." elements, let ".." cancel the element before it
 * (never above the root), and give "." for an empty result. `out` holds at
 * least strlen(in) + 2 bytes.
 */
static void path_clean(const char *in, char *out)
{
    size_t n = strlen(in), r = 0, w = 0, floor = 0;
    int rooted = n > 0 && in[0] == '/';
    if (rooted) {
        out[w++] = '/';
        r = floor = 1;
    }
    while (r < n) {
        size_t end = r;
        while (end < n && in[end] != '/')
            end++;
        size_t elem = end - r;
        if (elem == 0 || (elem == 1 && in[r] == '.')) {
            /* empty or "." */
        } else if (elem == 2 && in[r] == '.' && in[r + 1] == '.') {
            if (w > floor) {
                while (w > floor && out[w - 1] != '/')
                    w--;
                if (w > floor)
                    w--; /* the '/' before the element */
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                floor = w;
            }
        } else {
            if (w > (size_t)rooted)
                out[w++] = '/';
            memcpy(out + w, in + r, elem);
            w += elem;
        }
        r = end + 1;
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
}

/*
 * A path from the file as client-go resolves it: absolute paths as written,
 * relative ones joined to the directory of `source` and cleaned. NULL with
 * the error filled when it is too long or memory runs out.
 */
static char *path_resolve(const struct kc_walk *w, const struct cps_yaml_node *node,
                          const char *path)
{
    const char *p = node->text;
    const char *slash = strrchr(w->source, '/');
    size_t dir_len = (p[0] == '/' || !slash) ? 0 : (size_t)(slash - w->source) + 1;
    size_t n = dir_len + node->len;
    char *joined = NULL, *clean = NULL;
    if (n > CPS_KUBECONFIG_PATH_MAX) {
        fail_at(w, node, "%s: the resolved path is longer than %d bytes", path,
                CPS_KUBECONFIG_PATH_MAX);
        return NULL;
    }
    if (p[0] == '/') {
        if (!(clean = malloc(node->len + 1)))
            goto fail;
        memcpy(clean, p, node->len + 1);
        return clean;
    }
    if (!(joined = malloc(n + 1)) || !(clean = malloc(n + 2)))
        goto fail;
    memcpy(joined, w->source, dir_len);
    memcpy(joined + dir_len, p, node->len + 1);
    path_clean(joined, clean);
    free(joined);
    return clean;

fail:
    free(clean);
    free(joined);
    fail_at(w, node, "out of memory");
    return NULL;
}

/* Decode a base64 value (check_value has accepted it) into a new buffer
 * with a NUL after it. The first pass sizes the buffer and checks again, so
 * the second cannot overrun even if a caller skipped the check. -1 with the
 * error filled. */
static int data_copy(const struct kc_walk *w, const struct cps_yaml_node *node, const char *path,
                     unsigned char **out, size_t *out_len)
{
    const char *why = NULL;
    size_t at = 0, n = 0;
    if (b64_decode(node->text, node->len, NULL, &n, &why, &at) < 0)
        return fail_at(w, node, "%s: not valid base64: %s (at byte %zu of the value)", path, why,
                       at);
    if (!(*out = malloc(n + 1)))
        return fail_at(w, node, "out of memory");
    b64_decode(node->text, node->len, *out, out_len, &why, &at);
    (*out)[n] = '\0';
    return 0;
}

static int string_copy(const struct kc_walk *w, const struct cps_yaml_node *node, char **out)
{
    if (!(*out = malloc(node->len + 1)))
        return fail_at(w, node, "out of memory");
    memcpy(*out, node->text, node->len + 1);
    return 0;
}

/*
 * Data or file for one of the three pairs (CA, client cert, client key):
 * when the data decodes to at least one byte it wins and the path is not
 * used, as in client-go's transport; otherwise the path is resolved.
 */
static int data_or_file(const struct kc_walk *w, const struct cps_yaml_node *data,
                        const struct cps_yaml_node *file, const char *path_prefix,
                        const char *file_key, unsigned char **out_data, size_t *out_len,
                        char **out_file)
{
    char path[KC_PATH_TEXT_MAX];
    if (string_of(data)) {
        path_join(path, sizeof path, path_prefix, file_key);
        strncat(path, "-data", sizeof path - strlen(path) - 1);
        if (data_copy(w, data, path, out_data, out_len) < 0)
            return -1;
        if (*out_len > 0)
            return 0;
        free(*out_data);
        *out_data = NULL;
    }
    if (string_of(file)) {
        path_join(path, sizeof path, path_prefix, file_key);
        if (!(*out_file = path_resolve(w, file, path)))
            return -1;
    }
    return 0;
}

/* ---- the chosen context, cluster and user -------------------------------- */

struct kc_doc {
    const struct cps_yaml_node *root;
    const struct cps_yaml_node *values[TOP_COUNT];
    const struct cps_yaml_node *keys[TOP_COUNT];
    struct kc_list clusters, users, contexts;
};

/* What was chosen: the context, and the cluster and user it names. */
struct kc_choice {
    const struct kc_entry *context, *cluster, *user;
    struct kc_fields cx, cl, us;
};

/*
 * Pick the context: the caller's, else current-context. It must exist and
 * name a cluster and a user that exist (client-go's ConfirmUsable), and its
 * namespace, when set, must be an RFC 1123 label.
 */
static int pick_context(const struct kc_walk *w, const struct kc_doc *doc, const char *wanted,
                        struct kc_choice *c)
{
    char names[KC_NAMES_LIST_MAX], shown[KC_SHOWN_MAX], what[KC_PATH_TEXT_MAX];
    const struct cps_yaml_node *current = doc->values[TOP_CURRENT];
    if (!wanted || !*wanted) {
        wanted = string_of(current);
        if (!wanted)
            return fail_at(w, current ? current : doc->root,
                           "no context chosen: current-context is not set%s",
                           list_names(&doc->contexts, names, sizeof names));
        if (!(c->context = list_find(&doc->contexts, wanted)))
            return fail_at(w, current, "current-context: context %s is not defined%s",
                           quote(shown, sizeof shown, wanted, current->len),
                           list_names(&doc->contexts, names, sizeof names));
    } else if (!(c->context = list_find(&doc->contexts, wanted))) {
        const struct cps_yaml_node *at = doc->values[TOP_CONTEXTS];
        if (!at)
            at = doc->root;
        return fail_at(w, at, "context %s is not defined%s",
                       quote(shown, sizeof shown, wanted, strlen(wanted)),
                       list_names(&doc->contexts, names, sizeof names));
    }
    const struct kc_entry *cx = c->context;
    const struct cps_yaml_node *const *v = c->cx.values;
    entry_fields(w, &doc->contexts, cx, &c->cx);
    snprintf(what, sizeof what, "contexts[%zu]%s", cx->index, cx->body ? ".context" : "");
    quote(shown, sizeof shown, cx->name_text, cx->name->len);
    const char *cluster_name = string_of(v[CX_CLUSTER]);
    if (!cluster_name)
        return fail_at(w, cx->body ? cx->body : cx->item,
                       "%s: context %s does not name a cluster", what, shown);
    const char *user_name = string_of(v[CX_USER]);
    if (!user_name)
        return fail_at(w, cx->body ? cx->body : cx->item, "%s: context %s does not name a user",
                       what, shown);
    if (!(c->cluster = list_find(&doc->clusters, cluster_name)))
        return fail_at(w, v[CX_CLUSTER], "%s.cluster: cluster %s is not defined%s", what,
                       quote(shown, sizeof shown, cluster_name, v[CX_CLUSTER]->len),
                       list_names(&doc->clusters, names, sizeof names));
    if (!(c->user = list_find(&doc->users, user_name)))
        return fail_at(w, v[CX_USER], "%s.user: user %s is not defined%s", what,
                       quote(shown, sizeof shown, user_name, v[CX_USER]->len),
                       list_names(&doc->users, names, sizeof names));
    const char *ns = string_of(v[CX_NAMESPACE]);
    if (ns && !cps_k8s_is_dns_label(ns, strlen(ns)))
        return fail_at(w, v[CX_NAMESPACE],
                       "%s.namespace: %s is not a valid namespace (an RFC 1123 label: lower-case "
                       "letters, digits and '-', at most %d)",
                       what, quote(shown, sizeof shown, ns, v[CX_NAMESPACE]->len),
                       CPS_K8S_DNS_LABEL_MAX);
    entry_fields(w, &doc->clusters, c->cluster, &c->cl);
    entry_fields(w, &doc->users, c->user, &c->us);
    return 0;
}

/* The chosen cluster's rules (TLS verified, an https server, a proxy-url of
 * client-go's schemes), then its settings into kc. */
static int take_cluster(const struct kc_walk *w, const struct kc_choice *c,
                        struct cps_kubeconfig *kc)
{
    char what[KC_PATH_TEXT_MAX], path[KC_PATH_TEXT_MAX], shown[KC_SHOWN_MAX];
    const struct kc_entry *cl = c->cluster;
    const struct cps_yaml_node *const *v = c->cl.values;
    snprintf(what, sizeof what, "clusters[%zu]%s", cl->index, cl->body ? ".cluster" : "");
    if (v[CL_INSECURE] && cps_yaml_bool(v[CL_INSECURE]) == 1)
        return fail_at(w, v[CL_INSECURE],
                       "%s.insecure-skip-tls-verify: true is refused: TLS is always verified",
                       what);
    const char *proxy = string_of(v[CL_PROXY_URL]);
    if (proxy && strncmp(proxy, "http://", 7) && strncmp(proxy, "https://", 8) &&
        strncmp(proxy, "socks5://", 9)) /* client-go's schemes; the URL may hold a password */
        return fail_at(w, v[CL_PROXY_URL], "%s.proxy-url: expected an http://, https:// or "
                       "socks5:// URL", what);
    if (proxy && string_copy(w, v[CL_PROXY_URL], &kc->proxy_url) < 0)
        return -1;
    if (!string_of(v[CL_SERVER]))
        return fail_at(w, v[CL_SERVER] ? v[CL_SERVER] : cl->body ? cl->body : cl->item,
                       "%s: cluster %s has no server", what,
                       quote(shown, sizeof shown, cl->name_text, cl->name->len));
    path_join(path, sizeof path, what, "server");
    if (!(kc->server = server_copy(w, v[CL_SERVER], path)))
        return -1;
    if (string_of(v[CL_TLS_SERVER_NAME]) &&
        string_copy(w, v[CL_TLS_SERVER_NAME], &kc->tls_server_name) < 0)
        return -1;
    return data_or_file(w, v[CL_CA_DATA], v[CL_CA], what, "certificate-authority", &kc->ca_data,
                        &kc->ca_data_len, &kc->ca_file);
}

/* Whether the chosen user sets key k: a string other than "", a non-empty
 * list or mapping; and for exec and auth-provider any mapping at all, since
 * client-go then runs them (it tests for a non-nil pointer, not a length). */
static int user_sets(const struct cps_yaml_node *node, int k)
{
    if (!node || cps_yaml_is_null(node))
        return 0;
    if (node->type == CPS_YAML_SCALAR)
        return node->len > 0;
    return node->n_items > 0 || k == US_EXEC || k == US_AUTH_PROVIDER;
}

/*
 * The chosen user's rules (only token, tokenFile and client certificates;
 * a certificate and a key come together), then its credentials into kc.
 * None at all is fine: anonymous.
 */
static int take_user(const struct kc_walk *w, const struct kc_choice *c, struct cps_kubeconfig *kc)
{
    char what[KC_PATH_TEXT_MAX], path[KC_PATH_TEXT_MAX];
    const struct cps_yaml_node *const *v = c->us.values;
    const struct cps_yaml_node *const *keys = c->us.keys;
    snprintf(what, sizeof what, "users[%zu].user", c->user->index);
    for (size_t i = 0; i < ARRAY_LEN(unsupported_user_keys); i++) {
        int k = unsupported_user_keys[i].key;
        if (user_sets(v[k], k))
            return fail_at(w, keys[k], "%s.%s: not supported: %s", what, user_keys[k].name,
                           unsupported_user_keys[i].why);
    }
    if (data_or_file(w, v[US_CERT_DATA], v[US_CERT], what, "client-certificate",
                     &kc->client_cert_data, &kc->client_cert_data_len, &kc->client_cert_file) < 0 ||
        data_or_file(w, v[US_KEY_DATA], v[US_KEY], what, "client-key", &kc->client_key_data,
                     &kc->client_key_data_len, &kc->client_key_file) < 0)
        return -1;
    int has_cert = kc->client_cert_data || kc->client_cert_file;
    int has_key = kc->client_key_data || kc->client_key_file;
    if (has_cert && !has_key) {
        int k = kc->client_cert_data ? US_CERT_DATA : US_CERT;
        return fail_at(w, keys[k],
                       "%s.%s: a client certificate needs a key (client-key or client-key-data)",
                       what, user_keys[k].name);
    }
    if (has_key && !has_cert) {
        int k = kc->client_key_data ? US_KEY_DATA : US_KEY;
        return fail_at(w, keys[k],
                       "%s.%s: a client key needs a certificate (client-certificate or "
                       "client-certificate-data)",
                       what, user_keys[k].name);
    }
    if (string_of(v[US_TOKEN]) && string_copy(w, v[US_TOKEN], &kc->token) < 0)
        return -1;
    if (string_of(v[US_TOKEN_FILE])) {
        path_join(path, sizeof path, what, "tokenFile");
        if (!(kc->token_file = path_resolve(w, v[US_TOKEN_FILE], path)))
            return -1;
    }
    return 0;
}

/* The top level: a mapping; apiVersion v1 and kind Config when given; then
 * the three named lists. */
static int read_top(const struct kc_walk *w, struct kc_doc *doc)
{
    static const struct {
        int key;
        const char *expected;
    } fixed[] = {{TOP_API_VERSION, "v1"}, {TOP_KIND, "Config"}};
    char shown[KC_SHOWN_MAX];
    if (cps_yaml_is_null(doc->root))
        return fail_at(w, doc->root, "the kubeconfig is empty");
    if (doc->root->type != CPS_YAML_MAP)
        return fail_at(w, doc->root,
                       "a kubeconfig must be a mapping (apiVersion, clusters, users, contexts, "
                       "current-context), got %s",
                       kind_of(doc->root));
    if (check_body(w, doc->root, "", top_keys, TOP_COUNT, doc->values, doc->keys) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++) {
        const struct cps_yaml_node *v = doc->values[fixed[i].key];
        const char *text = string_of(v);
        if (text && strcmp(text, fixed[i].expected) != 0)
            return fail_at(w, v, "%s: expected \"%s\", got %s", top_keys[fixed[i].key].name,
                           fixed[i].expected, quote(shown, sizeof shown, text, v->len));
    }
    doc->clusters.node = doc->values[TOP_CLUSTERS];
    doc->users.node = doc->values[TOP_USERS];
    doc->contexts.node = doc->values[TOP_CONTEXTS];
    if (list_read(w, &doc->clusters) < 0 || list_read(w, &doc->users) < 0 ||
        list_read(w, &doc->contexts) < 0)
        return -1;
    return 0;
}

/* ---- public --------------------------------------------------------------- */

/* memset through a volatile pointer, so wiping a secret about to be freed is
 * not optimized away. */
static void *(*const volatile wipe)(void *, int, size_t) = memset;

void cps_kubeconfig_free(struct cps_kubeconfig *kc)
{
    if (!kc)
        return;
    if (kc->token)
        wipe(kc->token, 0, strlen(kc->token));
    if (kc->client_key_data)
        wipe(kc->client_key_data, 0, kc->client_key_data_len);
    free(kc->context_name);
    free(kc->server);
    free(kc->namespace);
    free(kc->ca_data);
    free(kc->ca_file);
    free(kc->tls_server_name);
    free(kc->proxy_url);
    free(kc->token);
    free(kc->token_file);
    free(kc->client_cert_data);
    free(kc->client_key_data);
    free(kc->client_cert_file);
    free(kc->client_key_file);
    free(kc);
}

struct cps_kubeconfig *cps_kubeconfig_parse(const char *bytes, size_t len, const char *source,
                                            const char *context, struct cps_err *err)
{
    struct cps_yaml_node *root = NULL;
    struct kc_walk w = {.source = source ? source : KC_DEFAULT_SOURCE, .err = err};
    struct kc_doc doc;
    struct cps_kubeconfig *kc = NULL;
    struct kc_choice choice;

    memset(&doc, 0, sizeof doc);
    memset(&choice, 0, sizeof choice);
    doc.clusters = (struct kc_list){.list_key = "clusters", .body_key = "cluster",
                                    .keys = cluster_keys, .n_keys = CL_COUNT};
    doc.users = (struct kc_list){.list_key = "users", .body_key = "user", .keys = user_keys,
                                 .n_keys = US_COUNT};
    doc.contexts = (struct kc_list){.list_key = "contexts", .body_key = "context",
                                    .keys = context_keys, .n_keys = CX_COUNT};
    if (!bytes)
        len = 0;
    if (len > CPS_KUBECONFIG_MAX_BYTES) {
        cps_err_set(err, w.source, 0, 0, "larger than %u MiB", CPS_KUBECONFIG_MAX_BYTES >> 20);
        goto fail;
    }
    if (cps_yaml_parse(bytes ? bytes : "", len, w.source, &kc_style, &root, err) < 0)
        goto fail;
    if (!root) {
        cps_err_set(err, w.source, 1, 1, "the kubeconfig is empty");
        goto fail;
    }
    doc.root = root;
    if (read_top(&w, &doc) < 0 || pick_context(&w, &doc, context, &choice) < 0)
        goto fail;
    if (!(kc = calloc(1, sizeof *kc))) {
        cps_err_set(err, w.source, 0, 0, "out of memory");
        goto fail;
    }
    const struct cps_yaml_node *ns = choice.cx.values[CX_NAMESPACE];
    if (string_copy(&w, choice.context->name, &kc->context_name) < 0 ||
        (string_of(ns) && string_copy(&w, ns, &kc->namespace) < 0) ||
        take_cluster(&w, &choice, kc) < 0 || take_user(&w, &choice, kc) < 0)
        goto fail;
    list_release(&doc.contexts);
    list_release(&doc.users);
    list_release(&doc.clusters);
    cps_yaml_node_free(root);
    return kc;

fail:
    cps_kubeconfig_free(kc);
    list_release(&doc.contexts);
    list_release(&doc.users);
    list_release(&doc.clusters);
    cps_yaml_node_free(root);
    return NULL;
}
