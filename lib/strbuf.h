/*
 * A growable text buffer for building output (YAML, JSON fragments,
 * exposition text) with printf. A failed allocation sticks: every later
 * append is a no-op and cps_strbuf_take() returns NULL, so a caller checks
 * once at the end instead of after every append.
 *
 * Ownership: the buffer owns data until cps_strbuf_take() hands it to the
 * caller (free() it) or cps_strbuf_release() frees it.
 */
#ifndef CPS_STRBUF_H
#define CPS_STRBUF_H

#include <stddef.h>

struct cps_strbuf {
    char *data; /* NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    int failed;
};

#define CPS_STRBUF_INIT {NULL, 0, 0, 0}

void cps_strbuf_printf(struct cps_strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cps_strbuf_append(struct cps_strbuf *b, const char *bytes, size_t len);
void cps_strbuf_puts(struct cps_strbuf *b, const char *s);

/* The text ("" if nothing was appended), or NULL after a failure; the
 * buffer is empty again afterwards. */
char *cps_strbuf_take(struct cps_strbuf *b);

/* Free the text (if not taken) and reset the buffer. */
void cps_strbuf_release(struct cps_strbuf *b);

#endif
