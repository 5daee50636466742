/*
 * Units of time used across cpscale. Integer constants: where a computation
 * needs floating point, one of its operands already is (or cast it there),
 * so `x_ms / CPS_MS_PER_S` on an integer is integer division on purpose.
 */
#ifndef CPS_UNITS_H
#define CPS_UNITS_H

#include <stdint.h>

#define CPS_MS_PER_S 1000
#define CPS_S_PER_MIN 60
#define CPS_S_PER_HOUR 3600
#define CPS_S_PER_DAY 86400
#define CPS_MS_PER_MIN (CPS_MS_PER_S * CPS_S_PER_MIN)
#define CPS_MS_PER_HOUR (CPS_MS_PER_S * CPS_S_PER_HOUR)
#define CPS_MS_PER_DAY ((int64_t)CPS_MS_PER_S * CPS_S_PER_DAY)
#define CPS_NS_PER_MS 1000000
#define CPS_NS_PER_S 1000000000L

/* Floor division, for times before the epoch too. */
static inline int64_t cps_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* index modulo n, in 0 .. n - 1 for a negative index too (a clock slot). */
static inline int cps_wrap(int64_t index, int n)
{
    int64_t r = index % n;
    return (int)(r < 0 ? r + n : r);
}

#endif
