/*
 * Durations as the config writes them ("15s", "5m", "1h30m", "250ms") and
 * back. One parser and one formatter for the config, the command line and
 * every report, so a value printed can always be read back.
 */
#ifndef CPS_DURATION_H
#define CPS_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Room for any formatted duration. */
#define CPS_DURATION_TEXT_MAX 32

/*
 * Parse "15s", "5m", "1h", "7d" (24h), "250ms", "1.5s", "1h30m" (terms add up) or a bare
 * number of seconds into milliseconds. No sign, no spaces, no exponent: a
 * value either means exactly one thing or is refused (-1). Fractions of a
 * millisecond are rounded to the nearest one.
 */
int cps_duration_parse(const char *text, int64_t *out_ms);

/* Format in the largest unit that divides it exactly: 15s, 5m, 6h, 7d, 250ms
 * (days from 2d up; one day prints as 24h). */
void cps_duration_format(char *buf, size_t size, int64_t ms);

#endif
