#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRBUF_FIRST_CAP 4096

/* Make room for `more` bytes plus the NUL; doubles so appends are O(1)
 * amortised. Returns -1 (and marks the buffer failed) when out of memory. */
static int reserve(struct cps_strbuf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (b->data && b->cap - b->len > more)
        return 0;
    size_t cap = b->cap ? b->cap : STRBUF_FIRST_CAP;
    while (cap - b->len <= more) {
        if (cap > ((size_t)-1) / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
        b->failed = 1;
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

void cps_strbuf_printf(struct cps_strbuf *b, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt,
                          ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        if (reserve(b, (size_t)n) < 0)
            return;
    }
}

void cps_strbuf_append(struct cps_strbuf *b, const char *bytes, size_t len)
{
    if (reserve(b, len) < 0)
        return;
    memcpy(b->data + b->len, bytes, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void cps_strbuf_puts(struct cps_strbuf *b, const char *s)
{
    cps_strbuf_append(b, s, strlen(s));
}

char *cps_strbuf_take(struct cps_strbuf *b)
{
    char *text = NULL;
    if (!b->failed) {
        if (reserve(b, 0) == 0) {
            b->data[b->len] = '\0';
            text = b->data;
            b->data = NULL;
        }
    }
    cps_strbuf_release(b);
    return text;
}

void cps_strbuf_release(struct cps_strbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
