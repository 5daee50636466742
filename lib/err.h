/*
 * Errors: every fallible function returns 0 or -1 and fills a caller-owned
 * struct cps_err with where the problem is (source:line:col) and what it is.
 * line and col are 1-based; 0 means "not applicable" and is not printed.
 */
#ifndef CPS_ERR_H
#define CPS_ERR_H

#include <stddef.h>
#include <stdio.h>

/* Process exit codes of every cpscale command. */
#define CPS_EXIT_OK 0      /* done */
#define CPS_EXIT_RUNTIME 1 /* a runtime failure (I/O, a server, memory) */
#define CPS_EXIT_USAGE 2   /* a usage, config or input error */

/* Room for cps_err_format()'s output: source, message and the separators. */
#define CPS_ERR_TEXT_MAX (CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32)

#define CPS_ERR_SOURCE_MAX 256
#define CPS_ERR_MESSAGE_MAX 512

struct cps_err {
    char source[CPS_ERR_SOURCE_MAX];
    int line;
    int col;
    char message[CPS_ERR_MESSAGE_MAX];
};

/* Fill err (if not NULL) and return -1, so callers can `return cps_err_set(...)`.
 * Control bytes in the source and message become '?': they quote input. */
int cps_err_set(struct cps_err *err, const char *source, int line, int col,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Format as "source:line:col: message" (parts that are unset are left out). */
void cps_err_format(const struct cps_err *err, char *buf, size_t size);

/*
 * Print "prefix" then the formatted error and a newline to out. When the
 * error has a position (line > 0), the prefix is left out: a
 * "file:line:col: message" line already says where it comes from.
 * prefix may be NULL or "".
 */
void cps_err_print(FILE *out, const char *prefix, const struct cps_err *err);

/* Reset to "no error". */
void cps_err_clear(struct cps_err *err);

#endif
