#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Replace each control byte of `text` with '?'. */
static void mask_control_bytes(char *text)
{
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

int cps_err_set(struct cps_err *err, const char *source, int line, int col,
                const char *fmt, ...)
{
    if (!err)
        return -1;
    snprintf(err->source, sizeof err->source, "%s", source ? source : "");
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    /* messages quote what was read (a trace field, a YAML value, a file
     * name): a control byte there (a bare CR, an escape sequence) would act
     * on the terminal or split a log line, so it is shown as '?' */
    mask_control_bytes(err->source);
    mask_control_bytes(err->message);
    return -1;
}

void cps_err_format(const struct cps_err *err, char *buf, size_t size)
{
    if (size == 0)
        return;
    if (!err) {
        buf[0] = '\0';
        return;
    }
    const char *source = err->source[0] ? err->source : "<input>";
    if (err->line > 0 && err->col > 0)
        snprintf(buf, size, "%s:%d:%d: %s", source, err->line, err->col, err->message);
    else if (err->line > 0)
        snprintf(buf, size, "%s:%d: %s", source, err->line, err->message);
    else
        snprintf(buf, size, "%s: %s", source, err->message);
}

void cps_err_print(FILE *out, const char *prefix, const struct cps_err *err)
{
    char text[CPS_ERR_TEXT_MAX];
    cps_err_format(err, text, sizeof text);
    fprintf(out, "%s%s\n", (err && err->line > 0) || !prefix ? "" : prefix, text);
}

void cps_err_clear(struct cps_err *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}
