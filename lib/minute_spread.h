/*
 * Minute spread: how the demand surprises of each minute of the hour
 * compare with those of the hour's other minutes.
 *
 * The forecast's margin is its surprise spread (learned per load octave)
 * times a quantile, the same in every minute. Where demand changes only at
 * some minutes of the hour (a service fed by a batch every 5 or 10 minutes,
 * jobs that start on the hour, traffic recorded in 5- or 10-minute steps),
 * the surprises of the minutes in between are near nothing, and a margin
 * sized for the average minute keeps pods idle through them. Minutes whose
 * surprises are as large as any others' are left alone.
 *
 * One table, per minute of the hour: the mean of the squared surprise in
 * units of its octave's spread (z^2), winsorized at CPS_MINUTE_SPREAD_Z_CAP,
 * so that a rare burst cannot make its minute look noisy and every other
 * minute quiet by comparison (ten one-minute bursts a day at random
 * minutes gave every minute without one a narrower margin, and the
 * violations rose). A forecast made at t is judged by the surprise
 * sampled a horizon later, so it asks for the minute of t + horizon: its
 * spread is narrowed by the square root of that minute's mean against the
 * mean of the minutes seen, shrunk toward it by CPS_MINUTE_SPREAD_PRIOR
 * samples, never below CPS_MINUTE_SPREAD_MIN and never above 1. Nothing
 * is narrowed until an hour after the first sample: before, the minute a
 * forecast is judged in has only this hour's samples, or none (where the
 * interval is short, the current minute's few quiet samples narrowed the
 * spread, then the next minute, not seen yet, widened it back at once, and
 * the integration suite's closed loop re-raised its pods on easing
 * demand). A minute with no sample (for ever, where decisions always fall
 * in the same minutes, as at a 2- or 5-minute interval) keeps 1. A
 * noisier minute does not widen it: the octave's spread, its learned tail
 * and the burst memory cover those, and widening on noise alone only added
 * pods. It is the spread that narrows: where the budget feedback has taken
 * the forecast's quantile under the mean (z + offset < 0), a narrower
 * spread brings it up toward the mean, as any quantile under the median.
 *
 * 200 bytes, within the policy state's 2 kB. Pure: no I/O, no clock.
 */
#ifndef CPS_MINUTE_SPREAD_H
#define CPS_MINUTE_SPREAD_H

#include <stdint.h>

#define CPS_MINUTE_SPREAD_SLOTS 60
/* Squared surprises are counted up to this (2 spreads, squared). */
#define CPS_MINUTE_SPREAD_Z_CAP 4.0
/* A minute's mean counts as this many samples of the all-minute mean. */
#define CPS_MINUTE_SPREAD_PRIOR 16.0
/* The spread is narrowed to no less than this share of the octave's. */
#define CPS_MINUTE_SPREAD_MIN 0.5
/* Nothing is narrowed until this long after the first sample. */
#define CPS_MINUTE_SPREAD_WARMUP_MS (3600 * 1000LL)

struct cps_minute_spread {
    uint16_t z2[CPS_MINUTE_SPREAD_SLOTS];     /* mean z^2, in 1/CPS_MINUTE_SPREAD_ONE */
    uint8_t samples[CPS_MINUTE_SPREAD_SLOTS]; /* up to 255: then a 1/256 moving mean */
    uint8_t slots_seen;                       /* minutes with a sample */
    uint32_t z2_sum;                          /* the sum of z2[], kept with it */
    int64_t first_ms;                         /* the first sample's time */
};

/* Learn one surprise `z` (in units of its octave's spread, from its mean)
 * sampled at `t_ms` (Unix ms). Non-finite values are ignored. */
void cps_minute_spread_learn(struct cps_minute_spread *m, int64_t t_ms, double z);

/* The factor (CPS_MINUTE_SPREAD_MIN to 1) on the spread of a forecast
 * judged at `t_ms`: 1 within an hour of the first sample, and while its
 * minute of the hour has no sample. */
double cps_minute_spread_factor(const struct cps_minute_spread *m, int64_t t_ms);

#endif
