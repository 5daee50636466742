/*
 * Decimal numbers from text. strtod also reads hexadecimal ("0x10",
 * "0x1p-3"), which the trace format and the config refuse; every flag and
 * value parser that takes a number through strtod goes through this, so a
 * number means the same on the command line as in a file.
 */
#ifndef CPS_DECIMAL_H
#define CPS_DECIMAL_H

#include <stdlib.h>
#include <string.h>

/* strtod, except that text holding an 'x' reads as no number at all: *end
 * is left at `text` and 0 returned (a caller that requires the whole text
 * to be a number then refuses it). errno as strtod leaves it. */
static inline double cps_strtod_decimal(const char *text, char **end)
{
    if (strpbrk(text, "xX")) {
        *end = (char *)text;
        return 0.0;
    }
    return strtod(text, end);
}

#endif
