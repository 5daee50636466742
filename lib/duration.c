#include "duration.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define DURATION_MAX_MS 1e15  /* ~31,700 years: far past any sane value, far below INT64_MAX */
#define DURATION_MAX_DIGITS 18 /* digits in one number of a duration */

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/*
 * "15s", "5m", "1h", "7d", "250ms", "1.5s", "1h30m" (Go style plus d = 24h,
 * terms add up) or a
 * bare number of seconds. No sign, no spaces, no exponent: a config value
 * either means exactly one thing or is refused. Fractions of a millisecond
 * are rounded to the nearest one.
 */
int cps_duration_parse(const char *text, int64_t *out_ms)
{
    if (!text || !out_ms || !*text)
        return -1;
    const char *p = text;
    double total_ms = 0;
    int terms = 0;
    while (*p) {
        const char *start = p;
        size_t digits = 0;
        while (is_digit((unsigned char)*p)) {
            p++;
            digits++;
        }
        if (*p == '.') {
            p++;
            while (is_digit((unsigned char)*p)) {
                p++;
                digits++;
            }
        }
        if (digits == 0 || digits > DURATION_MAX_DIGITS)
            return -1;
        char number[2 * DURATION_MAX_DIGITS];
        size_t n = (size_t)(p - start);
        if (n >= sizeof number)
            return -1;
        memcpy(number, start, n);
        number[n] = '\0';
        double value = strtod(number, NULL);
        double unit_ms;
        if (p[0] == 'm' && p[1] == 's') {
            unit_ms = 1;
            p += 2;
        } else if (*p == 's') {
            unit_ms = CPS_MS_PER_S;
            p++;
        } else if (*p == 'm') {
            unit_ms = CPS_MS_PER_MIN;
            p++;
        } else if (*p == 'h') {
            unit_ms = CPS_MS_PER_HOUR;
            p++;
        } else if (*p == 'd') {
            unit_ms = CPS_MS_PER_DAY;
            p++;
        } else if (*p == '\0' && terms == 0) {
            unit_ms = CPS_MS_PER_S; /* a bare number is seconds */
        } else {
            return -1;
        }
        total_ms += value * unit_ms;
        terms++;
        if (!(total_ms <= DURATION_MAX_MS))
            return -1;
    }
    *out_ms = (int64_t)llround(total_ms);
    return 0;
}

/* Days only from two days up, so the long-standing "24h" stays as it was. */
void cps_duration_format(char *buf, size_t size, int64_t ms)
{
    if (ms >= 2 * CPS_MS_PER_DAY && ms % CPS_MS_PER_DAY == 0)
        snprintf(buf, size, "%" PRId64 "d", ms / CPS_MS_PER_DAY);
    else if (ms != 0 && ms % CPS_MS_PER_HOUR == 0)
        snprintf(buf, size, "%" PRId64 "h", ms / CPS_MS_PER_HOUR);
    else if (ms != 0 && ms % CPS_MS_PER_MIN == 0)
        snprintf(buf, size, "%" PRId64 "m", ms / CPS_MS_PER_MIN);
    else if (ms % CPS_MS_PER_S == 0)
        snprintf(buf, size, "%" PRId64 "s", ms / CPS_MS_PER_S);
    else
        snprintf(buf, size, "%" PRId64 "ms", ms);
}
