#include "promql.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_budget.h"

#define PLACEHOLDER_NAMESPACE "$namespace"
#define PLACEHOLDER_DEPLOYMENT "$deployment"
#define ESCAPED_BYTE_MAX 4 /* "\xHH" */

/* Growable output buffer; `failed` sticks once an allocation fails. */
struct text_buffer {
    char *data;
    size_t len, cap;
    int failed;
};

static void buffer_append(struct text_buffer *buffer, const char *bytes, size_t n)
{
    if (buffer->failed)
        return;
    if (buffer->len + n + 1 > buffer->cap) {
        size_t cap = buffer->cap ? buffer->cap : 64;
        while (cap < buffer->len + n + 1)
            cap *= 2;
        char *grown = realloc(buffer->data, cap);
        if (!grown) {
            buffer->failed = 1;
            return;
        }
        buffer->data = grown;
        buffer->cap = cap;
    }
    memcpy(buffer->data + buffer->len, bytes, n);
    buffer->len += n;
    buffer->data[buffer->len] = '\0';
}

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 when the
 * bytes there are not valid UTF-8 (overlong forms and surrogates included).
 * Escaping such bytes keeps a value from smuggling anything into a query. */
static size_t utf8_sequence_length(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n;
    unsigned min;
    unsigned code;
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2, min = 0x80, code = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3, min = 0x800, code = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4, min = 0x10000, code = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        code = (code << 6) | (s[i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    return n;
}

/* Append `value` escaped for the inside of a PromQL string quoted with
 * `quote` (" or '). When `as_regex` is set, RE2 metacharacters are first
 * prefixed with a backslash, which the string escaping then doubles. */
static void append_escaped(struct text_buffer *buffer, const char *value, char quote,
                           int as_regex)
{
    static const char regex_meta[] = "\\.+*?()|[]{}^$";
    const unsigned char *s = (const unsigned char *)value;
    while (*s) {
        char escaped[ESCAPED_BYTE_MAX + 3];
        if (as_regex && strchr(regex_meta, *s)) {
            buffer_append(buffer, "\\\\", 2);
        }
        if (*s == '\\') {
            buffer_append(buffer, "\\\\", 2);
        } else if (*s == (unsigned char)quote) {
            escaped[0] = '\\', escaped[1] = (char)quote;
            buffer_append(buffer, escaped, 2);
        } else if (*s == '\n') {
            buffer_append(buffer, "\\n", 2);
        } else if (*s == '\r') {
            buffer_append(buffer, "\\r", 2);
        } else if (*s == '\t') {
            buffer_append(buffer, "\\t", 2);
        } else if (*s < 0x20 || *s == 0x7F) {
            snprintf(escaped, sizeof escaped, "\\x%02X", *s);
            buffer_append(buffer, escaped, ESCAPED_BYTE_MAX);
        } else {
            size_t n = utf8_sequence_length(s);
            if (n == 0) {
                snprintf(escaped, sizeof escaped, "\\x%02X", *s);
                buffer_append(buffer, escaped, ESCAPED_BYTE_MAX);
                n = 1;
            } else {
                buffer_append(buffer, (const char *)s, n);
            }
            s += n;
            continue;
        }
        s++;
    }
}

int cps_promql_escape_string(const char *in, char *out, size_t cap)
{
    struct text_buffer buffer = {0};
    buffer_append(&buffer, "\"", 1);
    append_escaped(&buffer, in ? in : "", '"', 0);
    buffer_append(&buffer, "\"", 1);
    int written = -1;
    if (!buffer.failed && buffer.len < cap) {
        memcpy(out, buffer.data, buffer.len + 1);
        written = (int)buffer.len;
    } else if (cap > 0) {
        out[0] = '\0';
    }
    free(buffer.data);
    return written;
}

int cps_promql_has_placeholders(const char *query)
{
    return query && (strstr(query, PLACEHOLDER_NAMESPACE) || strstr(query, PLACEHOLDER_DEPLOYMENT));
}

/* 1 when the string literal opening at query[open] is the right-hand side
 * of a regex matcher (=~ or !~), looking back over blanks. */
static int string_is_regex_operand(const char *query, size_t open)
{
    size_t i = open;
    while (i > 0 && (query[i - 1] == ' ' || query[i - 1] == '\t' || query[i - 1] == '\n' ||
                     query[i - 1] == '\r'))
        i--;
    return i >= 2 && query[i - 1] == '~' && (query[i - 2] == '=' || query[i - 2] == '!');
}

/* Which placeholder (if any) starts at p, and its length. An identifier
 * character right after it (`$namespaces`) means it is not one. */
static const char *placeholder_at(const char *p, const char *namespace, const char *name,
                                  size_t *length)
{
    static const char ident[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    size_t ns_len = strlen(PLACEHOLDER_NAMESPACE), dep_len = strlen(PLACEHOLDER_DEPLOYMENT);
    if (strncmp(p, PLACEHOLDER_NAMESPACE, ns_len) == 0 && !(p[ns_len] && strchr(ident, p[ns_len]))) {
        *length = ns_len;
        return namespace;
    }
    if (strncmp(p, PLACEHOLDER_DEPLOYMENT, dep_len) == 0 &&
        !(p[dep_len] && strchr(ident, p[dep_len]))) {
        *length = dep_len;
        return name;
    }
    return NULL;
}

char *cps_promql_substitute(const char *query, const char *namespace, const char *name,
                            struct cps_err *err)
{
    struct text_buffer buffer = {0};
    char quote = 0;           /* the quote of the string we are in, or 0 */
    int in_regex_string = 0;
    size_t i = 0;
    buffer_append(&buffer, "", 0);
    while (query[i]) {
        char c = query[i];
        size_t placeholder_len = 0;
        const char *value = c == '$' ? placeholder_at(query + i, namespace ? namespace : "",
                                                      name ? name : "", &placeholder_len)
                                     : NULL;
        if (value) {
            if (quote == 0) {
                /* unquoted, it becomes a string of its own; after =~ or !~
                 * that string is a regex, so its metacharacters are escaped
                 * (web.v2 must not match web-v2) */
                buffer_append(&buffer, "\"", 1);
                append_escaped(&buffer, value, '"', string_is_regex_operand(query, i));
                buffer_append(&buffer, "\"", 1);
            } else if (quote == '`') {
                if (strchr(value, '`')) {
                    free(buffer.data);
                    cps_err_set(err, "query", 1, (int)i + 1,
                                "a value with a backtick cannot go into a raw string; use \"...\"");
                    return NULL;
                }
                if (in_regex_string) {
                    /* a raw string takes no escapes: only the regex ones */
                    for (const char *v = value; *v; v++) {
                        if (strchr("\\.+*?()|[]{}^$", *v))
                            buffer_append(&buffer, "\\", 1);
                        buffer_append(&buffer, v, 1);
                    }
                } else {
                    buffer_append(&buffer, value, strlen(value));
                }
            } else {
                append_escaped(&buffer, value, quote, in_regex_string);
            }
            i += placeholder_len;
            continue;
        }
        if (quote == 0) {
            if (c == '"' || c == '\'' || c == '`') {
                quote = c;
                in_regex_string = string_is_regex_operand(query, i);
            } else if (c == '#') {
                /* a comment runs to the end of the line: copy it verbatim */
                size_t end = i;
                while (query[end] && query[end] != '\n')
                    end++;
                buffer_append(&buffer, query + i, end - i);
                i = end;
                continue;
            }
        } else if (c == '\\' && quote != '`' && query[i + 1]) {
            buffer_append(&buffer, query + i, 2);
            i += 2;
            continue;
        } else if (c == quote) {
            quote = 0;
        }
        buffer_append(&buffer, &c, 1);
        i++;
    }
    if (buffer.failed) {
        free(buffer.data);
        cps_err_set(err, "query", 0, 0, "out of memory");
        return NULL;
    }
    return buffer.data;
}

void cps_prom_result_release(struct cps_prom_result *result)
{
    if (!result)
        return;
    for (size_t i = 0; i < result->n_samples; i++) {
        free(result->samples[i].namespace);
        free(result->samples[i].name);
    }
    free(result->samples);
    result->samples = NULL;
    result->n_samples = 0;
}

/* Parse a Prometheus sample pair [<unix seconds>, "<value>"]. The value is a
 * string so NaN and +-Inf survive JSON; strtod reads them. */
static int decode_sample_pair(const json_t *pair, double *value, int64_t *timestamp_ms)
{
    if (!json_is_array(pair) || json_array_size(pair) != 2)
        return -1;
    const json_t *time_node = json_array_get(pair, 0);
    const json_t *value_node = json_array_get(pair, 1);
    if (!json_is_number(time_node) || !json_is_string(value_node))
        return -1;
    double seconds = json_number_value(time_node);
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e11)
        return -1;
    const char *text = json_string_value(value_node);
    char *end = NULL;
    errno = 0;
    double parsed = strtod(text, &end);
    if (end == text || *end != '\0')
        return -1;
    *value = parsed;
    *timestamp_ms = (int64_t)llround(seconds * 1000.0);
    return 0;
}

/*
 * A bump arena for jansson while one answer is decoded. A 10,000-series
 * answer is ~100,000 small jansson allocations: malloc and free were a
 * third of the decode, and the freed tree left the heap fragmented. While
 * an arena is active on a thread, jansson's allocations on that thread
 * come from its blocks and its frees of them are no-ops; the tree is
 * dropped with the blocks at the end of the decode (no json_decref walk).
 * Everything else (other threads, other jansson users) goes to malloc and
 * free as before: json_set_alloc_funcs is process-wide, so the functions
 * check the thread's active arena first.
 */
#define ARENA_FIRST_BLOCK (256u * 1024u)
#define ARENA_MAX_BLOCKS 40
#define ARENA_ALIGN 16u

struct json_arena {
    char *blocks[ARENA_MAX_BLOCKS];
    size_t sizes[ARENA_MAX_BLOCKS];
    size_t n_blocks, used; /* `used` bytes of the last block */
};

static _Thread_local struct json_arena *active_arena;

static void *arena_malloc(size_t n)
{
    struct json_arena *a = active_arena;
    if (!a)
        return malloc(n);
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->n_blocks == 0 || a->used + n > a->sizes[a->n_blocks - 1]) {
        if (a->n_blocks == ARENA_MAX_BLOCKS)
            return NULL;
        size_t size = a->n_blocks ? 2 * a->sizes[a->n_blocks - 1] : ARENA_FIRST_BLOCK;
        if (size < n)
            size = n;
        char *block = malloc(size);
        if (!block)
            return NULL;
        a->blocks[a->n_blocks] = block;
        a->sizes[a->n_blocks++] = size;
        a->used = 0;
    }
    void *p = a->blocks[a->n_blocks - 1] + a->used;
    a->used += n;
    return p;
}

static void arena_free(void *p)
{
    struct json_arena *a = active_arena;
    if (a && p) {
        uintptr_t at = (uintptr_t)p;
        for (size_t i = 0; i < a->n_blocks; i++)
            if (at >= (uintptr_t)a->blocks[i] && at < (uintptr_t)a->blocks[i] + a->sizes[i])
                return; /* dropped with the arena */
    }
    free(p);
}

/* Installed before main, so before any thread exists: jansson's function
 * pointers are plain variables, and setting them while another thread
 * (the backfill worker) was inside jansson would be a data race. Until a
 * thread opens an arena the functions are malloc and free. */
__attribute__((constructor)) static void install_arena_allocator(void)
{
    json_set_alloc_funcs(arena_malloc, arena_free);
}

/* Route this thread's jansson allocations into `a` until arena_end. */
static void arena_begin(struct json_arena *a)
{
    memset(a, 0, sizeof *a);
    active_arena = a;
}

/* Drop what jansson built, keeping the first block for the next tree. */
static void arena_rewind(struct json_arena *a)
{
    for (size_t i = 1; i < a->n_blocks; i++)
        free(a->blocks[i]);
    if (a->n_blocks > 1)
        a->n_blocks = 1;
    a->used = 0;
}

/* Stop routing and free the blocks: whatever jansson built is gone. */
static void arena_end(struct json_arena *a)
{
    active_arena = NULL;
    for (size_t i = 0; i < a->n_blocks; i++)
        free(a->blocks[i]);
    a->n_blocks = 0;
}

/* A label's value inside the tree, NULL when absent or not a string. */
static const char *label_value(const json_t *metric, const char *label)
{
    const json_t *node = label ? json_object_get(metric, label) : NULL;
    return json_is_string(node) ? json_string_value(node) : NULL;
}

/* See promql.h. */
const char *cps_prom_refusing_warning(const json_t *root)
{
    const json_t *warnings = json_object_get(root, "warnings");
    if (!warnings || json_is_null(warnings))
        return NULL;
    if (!json_is_array(warnings))
        return "(\"warnings\" is not a list)";
    size_t i;
    const json_t *warning;
    json_array_foreach(warnings, i, warning) {
        const char *text = json_string_value(warning);
        if (!text)
            return "(a warning that is not a string)";
        if (strncmp(text, "PromQL info:", 12) != 0)
            return text;
    }
    return NULL;
}

/* See promql.h. */
int cps_prom_check_warnings(const json_t *root, const char *source, struct cps_err *err)
{
    const char *warning = cps_prom_refusing_warning(root);
    if (!warning)
        return 0;
    return cps_err_set(err, source, 0, 0,
                       "Prometheus answered with a warning (partial or doubtful data, not used): "
                       "%.300s", warning);
}

/*
 * The reference decoder: the whole answer as one jansson tree, then its
 * checks in document order (JSON, status, result type, series cap, each
 * series' shape). Every error message comes from here, and so does every
 * answer the split decoder below does not take.
 */
static int decode_tree(const char *body, size_t len, const char *namespace_label,
                       const char *name_label, size_t max_series, const char *source,
                       cps_prom_sample_cb *sample_cb, void *user, struct cps_err *err)
{
    json_error_t json_error;
    struct json_arena arena;
    arena_begin(&arena);
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &json_error);
    if (!root) {
        arena_end(&arena);
        return cps_err_set(err, source, json_error.line, json_error.column,
                           "not JSON: %s", json_error.text);
    }
    int rc = -1;
    const char *status = json_string_value(json_object_get(root, "status"));
    if (!status) {
        cps_err_set(err, source, 0, 0, "answer has no \"status\"");
        goto done;
    }
    if (strcmp(status, "success") != 0) {
        const char *type = json_string_value(json_object_get(root, "errorType"));
        const char *message = json_string_value(json_object_get(root, "error"));
        cps_err_set(err, source, 0, 0, "Prometheus answered %s: %s: %s", status,
                    type ? type : "?", message ? message : "(no message)");
        goto done;
    }
    if (cps_prom_check_warnings(root, source, err) != 0)
        goto done;
    const json_t *data = json_object_get(root, "data");
    const char *result_type = json_string_value(json_object_get(data, "resultType"));
    const json_t *result = json_object_get(data, "result");
    if (!result_type || !result) {
        cps_err_set(err, source, 0, 0, "data.resultType or data.result is missing");
        goto done;
    }
    struct cps_prom_sample_ref sample = {0};
    if (strcmp(result_type, "scalar") == 0) {
        if (decode_sample_pair(result, &sample.value, &sample.timestamp_ms) != 0) {
            cps_err_set(err, source, 0, 0, "data.result: expected [time, \"value\"]");
            goto done;
        }
        rc = sample_cb(&sample, 1, user) != 0 ? cps_err_set(err, source, 0, 0, "out of memory")
                                              : 0;
        goto done;
    }
    if (strcmp(result_type, "vector") != 0 || !json_is_array(result)) {
        cps_err_set(err, source, 0, 0, "data.resultType is \"%s\"; an instant vector was expected",
                    result_type);
        goto done;
    }
    size_t n = json_array_size(result);
    if (n > max_series) {
        cps_err_set(err, source, 0, 0, "%zu samples, more than the limit of %zu", n, max_series);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *entry = json_array_get(result, i);
        const json_t *metric = json_object_get(entry, "metric");
        if (!json_is_object(metric) ||
            decode_sample_pair(json_object_get(entry, "value"), &sample.value,
                               &sample.timestamp_ms) != 0) {
            cps_err_set(err, source, 0, 0,
                        "data.result[%zu]: expected {\"metric\": {...}, \"value\": [time, \"value\"]}",
                        i);
            goto done;
        }
        sample.namespace = label_value(metric, namespace_label);
        sample.name = label_value(metric, name_label);
        sample.series = i;
        if (sample_cb(&sample, n, user) != 0) {
            cps_err_set(err, source, 0, 0, "out of memory");
            goto done;
        }
    }
    rc = 0;
done:
    arena_end(&arena); /* the tree goes with it: no json_decref */
    return rc;
}

/* ---- the split decoder: one series' tree at a time ---- */

/*
 * A 10,000-series answer's jansson tree is about twelve times the answer
 * (10.8 MB for 880 kB): building it whole touched fresh pages every tick
 * and was the process's peak. The split decoder finds data.result's
 * array with a structural scan (strings skipped, brackets counted, no
 * validation), has jansson parse the envelope with that array emptied,
 * then each series alone, in one small arena rewound between series.
 * jansson still validates every byte: the envelope and each series span
 * are whole JSON values, and the scan checks that only whitespace and
 * single commas lie between the spans. Whatever the scan does not
 * recognise (escaped or repeated keys on the path, a non-object series,
 * deep nesting, a status other than success, another result type, more
 * series than the cap) goes to decode_tree before any sample is passed.
 */
#define SPLIT_MAX_SERIES_DEPTH 64 /* deeper goes whole, to keep jansson's depth limit exact */

enum split_outcome { SPLIT_DONE, SPLIT_NOT_TAKEN, SPLIT_BAD_ANSWER, SPLIT_CALLBACK_FAILED };

static _Atomic size_t split_decodes; /* answers the split decoder took whole */

size_t cps_prom_split_decodes(void)
{
    return split_decodes;
}

static size_t skip_whitespace(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* From the '"' at i: the index after the closing quote (len when there
 * is none); *escaped is set when the string holds a backslash. */
static size_t skip_string(const char *s, size_t len, size_t i, int *escaped)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\') {
            *escaped = 1;
            i++;
        } else if (s[i] == '"') {
            return i + 1;
        }
    }
    return len;
}

/* From a '{' or '[' at i: the index after the bracket that closes it,
 * SIZE_MAX when none does; *depth is the deepest nesting inside it. */
static size_t skip_container(const char *s, size_t len, size_t i, int *depth)
{
    int level = 0, escaped = 0;
    *depth = 0;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, len, i, &escaped);
            continue;
        }
        if (c == '{' || c == '[') {
            if (++level > *depth)
                *depth = level;
        } else if (c == '}' || c == ']') {
            if (--level == 0)
                return i + 1;
        }
        i++;
    }
    return SIZE_MAX;
}

/* Any value from i: a container, a string, or a scalar up to the next
 * structural byte or whitespace. SIZE_MAX for an unclosed container. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    int ignored = 0;
    if (i >= len)
        return len;
    if (s[i] == '{' || s[i] == '[')
        return skip_container(s, len, i, &ignored);
    if (s[i] == '"')
        return skip_string(s, len, i, &ignored);
    while (i < len && !strchr(",:{}[]\" \t\r\n", s[i]))
        i++;
    return i;
}

/*
 * Walk the members of the object whose '{' is at i, looking for "data"
 * (level 0, the root) holding an object, and in it "result" (level 1)
 * holding an array; the array's '[' and ']' offsets go to *open and
 * *close, and *found counts such arrays. Returns the index after the
 * object's '}', or len on anything unexpected (including a key with an
 * escape, which could spell "data" or "result" another way).
 */
static size_t find_result_member(const char *s, size_t len, size_t i, int level, size_t *open,
                                 size_t *close, int *found)
{
    static const char *const wanted[] = {"data", "result"};
    const size_t wanted_len[] = {4, 6};
    i = skip_whitespace(s, len, i + 1);
    if (i < len && s[i] == '}')
        return i + 1;
    while (i < len) {
        int escaped = 0;
        if (s[i] != '"')
            return len;
        size_t key = i + 1;
        i = skip_string(s, len, i, &escaped);
        if (escaped || i >= len)
            return len;
        size_t key_len = i - 1 - key;
        i = skip_whitespace(s, len, i);
        if (i >= len || s[i] != ':')
            return len;
        i = skip_whitespace(s, len, i + 1);
        if (i >= len)
            return len;
        int on_path = key_len == wanted_len[level] && memcmp(s + key, wanted[level], key_len) == 0;
        if (on_path && level == 0 && s[i] == '{') {
            i = find_result_member(s, len, i, 1, open, close, found);
            if (i >= len)
                return len;
        } else if (on_path && level == 1 && s[i] == '[') {
            int depth = 0;
            *open = i;
            i = skip_container(s, len, i, &depth);
            if (i == SIZE_MAX)
                return len;
            *close = i - 1;
            ++*found;
        } else {
            i = skip_value(s, len, i);
            if (i >= len)
                return len;
        }
        i = skip_whitespace(s, len, i);
        if (i >= len)
            return len;
        if (s[i] == '}')
            return i + 1;
        if (s[i] != ',')
            return len;
        i = skip_whitespace(s, len, i + 1);
    }
    return len;
}

/* The spans of data.result's series, [start, end) pairs; -1 when the
 * answer is not one the split decoder takes. */
static int split_series(const char *s, size_t open, size_t close, size_t max_series,
                        size_t **spans_out, size_t *n_out)
{
    size_t *spans = NULL, n = 0, cap = 0;
    size_t i = skip_whitespace(s, close, open + 1);
    while (i < close) {
        int depth = 0;
        if (s[i] != '{' || n == max_series)
            goto not_taken;
        size_t end = skip_container(s, close, i, &depth);
        if (end == SIZE_MAX || depth > SPLIT_MAX_SERIES_DEPTH || s[end - 1] != '}')
            goto not_taken;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            size_t *grown = realloc(spans, 2 * cap * sizeof *spans);
            if (!grown)
                goto not_taken;
            spans = grown;
        }
        spans[2 * n] = i;
        spans[2 * n + 1] = end;
        n++;
        i = skip_whitespace(s, close, end);
        if (i == close)
            break;
        if (s[i] != ',')
            goto not_taken;
        i = skip_whitespace(s, close, i + 1);
        if (i == close)
            goto not_taken; /* a trailing comma */
    }
    *spans_out = spans;
    *n_out = n;
    return 0;
not_taken:
    free(spans);
    return -1;
}

/* Does the envelope (the answer with data.result emptied) say success,
 * without a warning that refuses it, and an instant vector? Its tree is
 * gone when this returns. */
static int envelope_is_vector(const char *body, size_t len, size_t open, size_t close,
                              struct json_arena *arena)
{
    size_t envelope_len = (open + 1) + (len - close);
    char *envelope = malloc(envelope_len);
    if (!envelope)
        return 0;
    memcpy(envelope, body, open + 1);
    memcpy(envelope + open + 1, body + close, len - close);
    json_t *root = json_loadb(envelope, envelope_len, JSON_REJECT_DUPLICATES, NULL);
    free(envelope);
    const json_t *data = json_object_get(root, "data");
    const char *status = json_string_value(json_object_get(root, "status"));
    const char *result_type = json_string_value(json_object_get(data, "resultType"));
    int ok = status && strcmp(status, "success") == 0 && result_type &&
             strcmp(result_type, "vector") == 0 && json_is_array(json_object_get(data, "result")) &&
             !cps_prom_refusing_warning(root);
    arena_rewind(arena);
    return ok;
}

/* ---- guesses: a series whose bytes are the ones expected ---- */

static _Atomic size_t guessed_series; /* series taken by a matched guess */

size_t cps_prom_guessed_series(void)
{
    return guessed_series;
}

/* Does byte c stand between JSON quotes as itself, in the bytes Prometheus
 * sends? Printable ASCII without '"' and '\\', and without '<', '>' and
 * '&', which Go's JSON encoder may send as \u escapes. Kubernetes names
 * and Prometheus label names are always made of such bytes. */
static int plain_json_byte(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&';
}

/* Match the bytes of `text` at s[*at], advancing *at; with `plain`, each
 * must also be a plain_json_byte. 0, or -1 at the first difference. */
static int match_text(const char *s, size_t len, size_t *at, const char *text, int plain)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++, ++*at)
        if (*at >= len || (unsigned char)s[*at] != *p || (plain && !plain_json_byte(*p)))
            return -1;
    return 0;
}

/*
 * Does the series start with exactly the bytes Prometheus writes for a
 * series with these two labels, up to its sample pair:
 *   {"metric":{"<a>":"<a value>","<b>":"<b value>"},"value":
 * with the label names in byte order (Prometheus keeps label sets sorted)
 * and every name and value made of plain_json_bytes? Then those bytes
 * decode to exactly these labels. *at: where the sample pair starts.
 */
static int match_series_prefix(const char *s, size_t len, const char *label_1,
                               const char *value_1, const char *label_2, const char *value_2,
                               size_t *at)
{
    int order = strcmp(label_1, label_2);
    if (order == 0)
        return -1;
    const char *first[2] = {label_1, value_1}, *second[2] = {label_2, value_2};
    if (order > 0) {
        first[0] = label_2, first[1] = value_2;
        second[0] = label_1, second[1] = value_1;
    }
    *at = 0;
    return match_text(s, len, at, "{\"metric\":{\"", 0) != 0 ||
                   match_text(s, len, at, first[0], 1) != 0 ||
                   match_text(s, len, at, "\":\"", 0) != 0 ||
                   match_text(s, len, at, first[1], 1) != 0 ||
                   match_text(s, len, at, "\",\"", 0) != 0 ||
                   match_text(s, len, at, second[0], 1) != 0 ||
                   match_text(s, len, at, "\":\"", 0) != 0 ||
                   match_text(s, len, at, second[1], 1) != 0 ||
                   match_text(s, len, at, "\"},\"value\":", 0) != 0
               ? -1
               : 0;
}

/*
 * Series k by its guess: when its bytes are the guessed labels' prefix
 * followed by one array that closes right before the series' '}', parse
 * only that array with jansson and fill the sample (labels: the guess's).
 * Those bytes are JSON that decodes to exactly those labels, so the
 * sample is the one the whole series would give. -1: not taken (no guess,
 * other bytes, or a pair that does not decode), and the series is parsed
 * whole, which also reports any error the usual way.
 */
static int decode_guessed(const char *series, size_t len, const char *namespace_label,
                          const char *name_label, size_t k, cps_prom_guess_cb *guess_cb,
                          void *user, struct cps_prom_sample_ref *sample)
{
    const char *namespace = NULL, *name = NULL;
    size_t n = 0;
    if (!namespace_label || !name_label || guess_cb(k, &namespace, &name, user) != 0 ||
        !namespace || !name ||
        match_series_prefix(series, len, namespace_label, namespace, name_label, name, &n) != 0 ||
        n + 2 >= len || series[n] != '[')
        return -1;
    int depth = 0;
    if (skip_container(series, len, n, &depth) != len - 1) /* the pair, then the '}' */
        return -1;
    json_t *pair = json_loadb(series + n, len - 1 - n, JSON_REJECT_DUPLICATES, NULL);
    if (decode_sample_pair(pair, &sample->value, &sample->timestamp_ms) != 0)
        return -1; /* the pair's tree goes when the arena is rewound */
    sample->namespace = namespace;
    sample->name = name;
    return 0;
}

/*
 * The fast decoder for large instant answers: find data.result's bytes,
 * split them into series without a tree, check the envelope alone
 * (success, no refusing warning, a vector), then decode each series on
 * its own (by its guess where one matches) and pass it to sample_cb, with
 * the arena rewound after each, so memory stays one series deep whatever
 * the answer's size. SPLIT_NOT_TAKEN: not the shape this handles (the
 * caller decodes the whole tree, which also words any error);
 * SPLIT_BAD_ANSWER: a series did not decode after some were passed (the
 * caller must refuse the answer: the tick buffers samples until the
 * answer is whole); SPLIT_CALLBACK_FAILED: sample_cb failed.
 */
static enum split_outcome decode_split(const char *body, size_t len, const char *namespace_label,
                                       const char *name_label, size_t max_series,
                                       cps_prom_guess_cb *guess_cb, cps_prom_sample_cb *sample_cb,
                                       void *user)
{
    size_t open = 0, close = 0, *spans = NULL, n = 0;
    size_t guessed = 0; /* added to guessed_series once per answer, not per series */
    int found = 0;
    size_t i = skip_whitespace(body, len, 0);
    if (i >= len || body[i] != '{')
        return SPLIT_NOT_TAKEN;
    i = find_result_member(body, len, i, 0, &open, &close, &found);
    if (i >= len + 1 || skip_whitespace(body, len, i) != len || found != 1 ||
        split_series(body, open, close, max_series, &spans, &n) != 0)
        return SPLIT_NOT_TAKEN;
    struct json_arena arena;
    arena_begin(&arena);
    enum split_outcome outcome = SPLIT_NOT_TAKEN;
    if (!envelope_is_vector(body, len, open, close, &arena))
        goto done;
    outcome = SPLIT_BAD_ANSWER;
    struct cps_prom_sample_ref sample = {0};
    for (size_t k = 0; k < n; k++) {
        const char *series = body + spans[2 * k];
        size_t series_len = spans[2 * k + 1] - spans[2 * k];
        sample.series = k;
        sample.guessed = guess_cb && decode_guessed(series, series_len, namespace_label,
                                                    name_label, k, guess_cb, user, &sample) == 0;
        if (sample.guessed) {
            guessed++;
        } else {
            json_t *entry = json_loadb(series, series_len, JSON_REJECT_DUPLICATES, NULL);
            const json_t *metric = json_object_get(entry, "metric");
            if (!json_is_object(metric) ||
                decode_sample_pair(json_object_get(entry, "value"), &sample.value,
                                   &sample.timestamp_ms) != 0)
                goto done;
            sample.namespace = label_value(metric, namespace_label);
            sample.name = label_value(metric, name_label);
        }
        if (sample_cb(&sample, n, user) != 0) {
            outcome = SPLIT_CALLBACK_FAILED;
            goto done;
        }
        arena_rewind(&arena);
    }
    outcome = SPLIT_DONE;
    split_decodes++;
done:
    guessed_series += guessed;
    arena_end(&arena);
    free(spans);
    return outcome;
}

/* Both entry points: the series cap (at most CPS_PROM_MAX_SAMPLES) and the
 * byte budget it implies, checked before any decoding. */
static int cap_series(const char *body, size_t len, size_t *max_series, const char *source,
                      struct cps_err *err)
{
    if (*max_series > CPS_PROM_MAX_SAMPLES)
        *max_series = CPS_PROM_MAX_SAMPLES;
    return cps_json_budget_check(body, len,
                                 *max_series * CPS_PROM_UNITS_PER_SERIES + CPS_PROM_UNITS_SLACK,
                                 "series cap", source, err);
}

static int ignore_sample_cb(const struct cps_prom_sample_ref *sample, size_t n, void *user)
{
    (void)sample, (void)n, (void)user;
    return 0;
}

int cps_prom_decode_instant_each(const char *body, size_t len, const char *namespace_label,
                                 const char *name_label, size_t max_series, const char *source,
                                 cps_prom_sample_cb *sample_cb, void *user, struct cps_err *err)
{
    return cps_prom_decode_instant_guided(body, len, namespace_label, name_label, max_series,
                                          source, NULL, sample_cb, user, err);
}

int cps_prom_decode_instant_guided(const char *body, size_t len, const char *namespace_label,
                                   const char *name_label, size_t max_series, const char *source,
                                   cps_prom_guess_cb *guess_cb, cps_prom_sample_cb *sample_cb,
                                   void *user, struct cps_err *err)
{
    if (cap_series(body, len, &max_series, source, err) != 0)
        return -1;
    switch (decode_split(body, len, namespace_label, name_label, max_series, guess_cb, sample_cb,
                         user)) {
    case SPLIT_DONE:
        return 0;
    case SPLIT_CALLBACK_FAILED:
        return cps_err_set(err, source, 0, 0, "out of memory");
    case SPLIT_BAD_ANSWER:
        /* the whole tree says what is wrong, where and in which order the
         * reference decoder finds it; its samples are not passed again */
        if (decode_tree(body, len, namespace_label, name_label, max_series, source,
                        ignore_sample_cb, NULL, err) != 0)
            return -1;
        return cps_err_set(err, source, 0, 0, "answer refused: its series did not decode alone");
    case SPLIT_NOT_TAKEN:
        break;
    }
    return decode_tree(body, len, namespace_label, name_label, max_series, source, sample_cb,
                       user, err);
}

int cps_prom_decode_instant_whole(const char *body, size_t len, const char *namespace_label,
                                  const char *name_label, size_t max_series, const char *source,
                                  cps_prom_sample_cb *sample_cb, void *user, struct cps_err *err)
{
    if (cap_series(body, len, &max_series, source, err) != 0)
        return -1;
    return decode_tree(body, len, namespace_label, name_label, max_series, source, sample_cb,
                       user, err);
}

/* cps_prom_decode_instant's visitor: copy the sample and its labels. */
static int copy_sample_cb(const struct cps_prom_sample_ref *ref, size_t n, void *user)
{
    struct cps_prom_result *out = user;
    if (!out->samples) {
        out->samples = calloc(n, sizeof *out->samples);
        if (!out->samples)
            return -1;
    }
    struct cps_prom_sample *sample = &out->samples[out->n_samples];
    sample->value = ref->value;
    sample->timestamp_ms = ref->timestamp_ms;
    sample->namespace = ref->namespace ? strdup(ref->namespace) : NULL;
    sample->name = ref->name ? strdup(ref->name) : NULL;
    out->n_samples++;
    return (ref->namespace && !sample->namespace) || (ref->name && !sample->name) ? -1 : 0;
}

int cps_prom_decode_instant(const char *body, size_t len, const char *namespace_label,
                            const char *name_label, size_t max_series, const char *source,
                            struct cps_prom_result *out, struct cps_err *err)
{
    out->n_samples = 0;
    out->samples = NULL;
    if (cps_prom_decode_instant_each(body, len, namespace_label, name_label, max_series, source,
                                     copy_sample_cb, out, err) != 0) {
        cps_prom_result_release(out);
        return -1;
    }
    return 0;
}
