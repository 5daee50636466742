#ifndef CPS_REMEMBERED_H
#define CPS_REMEMBERED_H

#include <math.h>

/*
 * exp2 and exp of an argument that repeats (and, through fn_remembered,
 * any pure function of one). The decay factors of a
 * decision depend on its interval, which is the same decision after
 * decision, so each call site keeps its last argument and result in a
 * `static _Thread_local struct remembered` (one per thread: tune decides
 * on several threads), initialised to {0.0, 1.0} for the exps. The
 * decision's normal quantiles, of the configured quantiles, repeat too. The same argument gives
 * the very same result, so no figure changes, and most decisions skip
 * five exps.
 */
struct remembered {
    double x, y;
};

/* fn(x), or the result remembered for the same x; memo starts at a pair
 * with fn(memo->x) == memo->y. */
static inline double fn_remembered(struct remembered *memo, double x, double (*fn)(double))
{
    if (x != memo->x) {
        memo->x = x;
        memo->y = fn(x);
    }
    return memo->y;
}

static inline double exp2_remembered(struct remembered *memo, double x)
{
    return fn_remembered(memo, x, exp2);
}

static inline double exp_remembered(struct remembered *memo, double x)
{
    return fn_remembered(memo, x, exp);
}

#endif
