/*
 * The latency line: how a pod's p95 grows with its load, learned online.
 *
 *     p95 = base + shape x 1000 ln20 / (mu - per-pod rate)      (ms)
 *
 * With shape 1 this is an M/M/1 queue behind a fixed base latency, all the
 * policy assumed before: base was learned from p95 minus the M/M/1 term at
 * the loads the pods ran at. A queue heavier than that (heavy-tailed
 * service times) then hid in base, the SLO-safe rate came out far too high
 * (48 req/s a pod where 28 was true in the lognormal world of
 * bench/worlds.py), and the budget feedback, pinned at its ceiling, could
 * not buy that back: 5-9 % of requests over the SLO on a 1 % budget. The
 * shape is now fitted too, as the slope of p95 on the M/M/1 term over the
 * loads a day shows; where the queue is heavier than M/M/1 the line is a
 * tangent to the real curve around those loads, and its intercept may lie
 * below 0. mu itself is learned from CPU by the policy (decide.c).
 *
 * Pure: no I/O, no clock. Part of struct cps_policy_state.
 */
#ifndef CPS_LATENCY_LINE_H
#define CPS_LATENCY_LINE_H

#include <stdint.h>

struct cps_latency_line {
    double base_ms;  /* the intercept: the latency no queue adds, when shape is 1 */
    double shape;    /* the queue's p95 as a multiple of M/M/1's (0: not fitted, read as 1) */
    double sums[5];  /* the fit's exponentially weighted sums: weight, x, p95, x^2, x p95 */
};

/* The shape in use: 1 until one is fitted. */
double cps_latency_line_shape(const struct cps_latency_line *line);

/*
 * Learn from one window within the SLO whose ready count held: p95 at a
 * per-pod `rate` (req/s) of pods that serve `mu`. `fit_shape`: the
 * capacity estimate is trusted enough for the slope (else only the
 * intercept moves); `first`: the first sample, which sets the intercept.
 * A window far above the loads the slope was fitted on moves only the
 * intercept; one at or past mu (or an M/M/1 term over 1e5 ms), or a
 * p95 that is not a number, nothing.
 */
void cps_latency_line_learn(struct cps_latency_line *line, double mu, double rate, double p95_ms,
                            int64_t interval_ms, int fit_shape, int first);

/*
 * Learn the slope alone from a settled window over the SLO (not
 * saturated, its p95 within CPS_SHAPE_OVER_SLO_MAX of it; the policy decides
 * which): fitted on windows within the SLO only, a p95 read with noise
 * loses its high readings near the SLO and the slope sinks to 1 (at
 * +-20 % noise, a queue twice M/M/1 read as M/M/1). The intercept stays
 * with the windows within the SLO.
 */
void cps_latency_line_learn_slope(struct cps_latency_line *line, double mu, double rate,
                                  double p95_ms, int64_t interval_ms);

/*
 * SLO-safe requests/s per pod at service rate `mu`: where the line meets
 * `slo_ms`, mu - shape x ln20 / (slo - base). -1 where even an idle pod is
 * over the SLO (no count of pods can meet it).
 */
double cps_latency_line_safe_rate(const struct cps_latency_line *line, double mu, double slo_ms);

/* How far over the SLO a window's p95 may be for its slope (x the SLO):
 * beyond, windows at loads far past the SLO's say little about where the
 * line meets it (and, with rates mixed within a window, read steeper: at
 * 3 x, the median of bench/quality.py rose 0.73 -> 0.79). */
#define CPS_SHAPE_OVER_SLO_MAX 1.5

#endif
