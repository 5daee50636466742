#include "latency_line.h"

#include <math.h>

/* ln(20): the p95 of an exponential response time is ln(20) / rate. */
#define LN_20 2.995732273553991
#define MS_PER_S 1000.0
/* Weight of a new sample in the intercept (fast: a slower dependency
 * shows within minutes). */
#define BASE_EWMA_WEIGHT 0.2
/* The slope's samples are forgotten with this halflife, counted in the
 * time of the windows fitted (the sums decay only as a window joins):
 * a day's load swing shows the slope, and a redeploy's new queue is
 * learned within hours. A sample counts in proportion to the time it
 * stands for, a 15 s decision as one. */
#define SHAPE_HALFLIFE_MS (6 * 3600 * 1000.0)
#define SHAPE_SAMPLE_MS 15000.0
/* The fit is drawn toward M/M/1 as if the M/M/1 terms seen had spread by
 * this share of their mean (the load's spread times about rho / (1 - rho):
 * at rho 0.25, loads spread by 6 %): a smaller spread (one load and its
 * noise) cannot tilt it. At 0.05 it covered little more than half the way from 1 to a
 * true 2 in test_decide's daily cycle; at 0.02, 85 %. */
#define SHAPE_PRIOR_SPREAD 0.02
/* A window whose M/M/1 term is over this multiple of the fit's mean, once
 * the fit holds SHAPE_SETTLED 15 s windows' worth, is left out of the
 * slope: a single window that far out (a 4 x burst whose p95 read low:
 * windows misaligned between metrics, a flood of cheap requests) outweighs
 * hours of the day's loads, and took the slope from 1.67 to 1 and the safe
 * rate from 26 to 3 req/s a pod in one step. The pods keep the M/M/1 term
 * of the loads they run at, near the SLO's, so a real change of load
 * stays within it. */
#define SHAPE_LEVERAGE_MAX 2.0
#define SHAPE_SETTLED 40.0
/* An M/M/1 term over this (ms) is a load the capacity estimate puts at
 * saturation, not a window to learn a line from (the estimate lags a
 * change of capacity by a few windows). */
#define QUEUEING_MAX_MS 1e5
/* M/M/1 is the floor (see cps_latency_line_learn); the ceiling is about
 * a lognormal service time with a coefficient of variation of 3 near
 * saturation. */
#define SHAPE_MIN 1.0
#define SHAPE_MAX 4.0

double cps_latency_line_shape(const struct cps_latency_line *line)
{
    return line->shape > 0.0 ? line->shape : 1.0;
}

/* The M/M/1 term of p95 (ms) at a per-pod `rate` when a pod serves `mu`;
 * 0 for a window not to learn from: a load at or past mu, an M/M/1 term
 * past QUEUEING_MAX_MS, or a p95 that is not a number. */
static double queueing_term_ms(double mu, double rate, double p95_ms)
{
    if (!(mu > rate) || !isfinite(p95_ms))
        return 0.0;
    double x = MS_PER_S * LN_20 / (mu - rate);
    return x > 0.0 && x < QUEUEING_MAX_MS ? x : 0.0;
}

/*
 * The slope: a weighted least-squares fit of p95 on the M/M/1 term,
 * drawn toward 1 (SHAPE_PRIOR_SPREAD), within SHAPE_MIN..SHAPE_MAX. The
 * floor of 1 is on purpose: where the queue is lighter than M/M/1 the pods
 * are over-sized, which the budget feedback undoes by lowering the headroom
 * (down to -4 z); a slope under 1, fitted from loads below the SLO, would
 * size for a queue the loads near the SLO may not keep, and the feedback
 * buys back too little the other way (+3 z at most). In bench/worlds.py's
 * deterministic world a floor of 0.25 took Twitter from 1.30 to 1.69 %
 * over the SLO, and saved nothing on NASA. When the slope moves, the
 * intercept turns with it about the fit's centre, the mean of the loads
 * it has seen: against a standing intercept a slope taken from 1 to 3 had
 * the line predict 120 ms where 100 were seen, the safe rate fall to
 * 1 req/s, the pods go to the maximum and their CPU below what capacity
 * learns from, so that it never recovered. (About the window just seen
 * instead, one window far from the others moved the whole line to where
 * the old slope put that window.)
 */
static void fit_shape(struct cps_latency_line *line, double x, double p95_ms, int64_t interval_ms)
{
    double *sum = line->sums;
    if (sum[0] >= SHAPE_SETTLED && x > SHAPE_LEVERAGE_MAX * sum[1] / sum[0])
        return;
    double keep = exp2(-(double)interval_ms / SHAPE_HALFLIFE_MS);
    double w = (double)interval_ms / SHAPE_SAMPLE_MS;
    sum[0] = keep * sum[0] + w;
    sum[1] = keep * sum[1] + w * x;
    sum[2] = keep * sum[2] + w * p95_ms;
    sum[3] = keep * sum[3] + w * x * x;
    sum[4] = keep * sum[4] + w * x * p95_ms;
    double mean_x = sum[1] / sum[0], mean_y = sum[2] / sum[0];
    double var_x = sum[3] - sum[0] * mean_x * mean_x;
    double cov_xy = sum[4] - sum[0] * mean_x * mean_y;
    double prior = sum[0] * (SHAPE_PRIOR_SPREAD * mean_x) * (SHAPE_PRIOR_SPREAD * mean_x);
    double shape = (cov_xy + prior) / ((var_x > 0.0 ? var_x : 0.0) + prior);
    if (!(shape >= SHAPE_MIN)) /* also NaN */
        shape = SHAPE_MIN;
    if (shape > SHAPE_MAX)
        shape = SHAPE_MAX;
    line->base_ms -= (shape - cps_latency_line_shape(line)) * mean_x;
    line->shape = shape;
}

/*
 * The slope first (when trusted), then the intercept: an average of
 * p95 - shape x the M/M/1 term. At shape 1 the intercept is a base
 * latency and cannot be below 0 (a p95 under the M/M/1 term says the
 * queue is lighter, not that requests take negative time); above 1 it is
 * a tangent's intercept and may.
 */
void cps_latency_line_learn(struct cps_latency_line *line, double mu, double rate, double p95_ms,
                            int64_t interval_ms, int fit_shape_too, int first)
{
    double queueing_ms = queueing_term_ms(mu, rate, p95_ms);
    if (queueing_ms == 0.0)
        return;
    if (fit_shape_too && interval_ms > 0)
        fit_shape(line, queueing_ms, p95_ms, interval_ms);
    double shape = cps_latency_line_shape(line);
    double base = p95_ms - shape * queueing_ms;
    if (shape == 1.0 && base < 0.0)
        base = 0.0;
    if (first)
        line->base_ms = base;
    else
        line->base_ms += BASE_EWMA_WEIGHT * (base - line->base_ms);
}

void cps_latency_line_learn_slope(struct cps_latency_line *line, double mu, double rate,
                                  double p95_ms, int64_t interval_ms)
{
    double queueing_ms = queueing_term_ms(mu, rate, p95_ms);
    if (queueing_ms > 0.0 && interval_ms > 0)
        fit_shape(line, queueing_ms, p95_ms, interval_ms);
}

double cps_latency_line_safe_rate(const struct cps_latency_line *line, double mu, double slo_ms)
{
    double budget_s = (slo_ms - line->base_ms) / MS_PER_S;
    if (budget_s <= 0.0)
        return -1.0;
    double rate = mu - cps_latency_line_shape(line) * LN_20 / budget_s;
    return rate > 0.0 ? rate : -1.0;
}
