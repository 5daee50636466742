/*
 * The inverse of the standard normal CDF, to turn a quantile into a
 * z-score (the policy's headroom and scale-down quantiles).
 *
 * Pure: no I/O, no state.
 */
#ifndef CPS_NORMAL_QUANTILE_H
#define CPS_NORMAL_QUANTILE_H

/* z such that P(Z <= z) = p for a standard normal Z, to a relative error
 * under 1.2e-9; -inf at p <= 0, +inf at p >= 1, and NaN for a NaN p. */
double cps_normal_quantile(double p);

#endif
