/*
 * Burst memory: bursts that come back on the clock.
 *
 * Much traffic bursts on a schedule: cron jobs at :00 and :30, batch
 * clients at :02, a morning rush at 09:00. A forecast from the recent past
 * cannot see those coming; a memory of what each clock minute did in
 * earlier hours can, and pods can be started a start-up ahead of them.
 *
 * Two tables, a byte per slot:
 * - minute[60]: per minute of the hour, how far demand rose above the slow
 *   level (log ratio in steps of CPS_BURST_STEP, 0 = not above), learned
 *   from earlier hours;
 * - hour[24]: per hour of the day, the demand of the hour's first minutes
 *   against the usual rate, a day's mean (log ratio in steps of
 *   CPS_BURST_HOUR_STEP, 128 = the mean; 0 = not seen), learned from
 *   earlier days. It is used only around the hour's start: it anticipates
 *   a daily rush, such as business hours after an idle night, where the
 *   recent past says nothing; once the hour has begun, the metrics do (the
 *   decision uses it only until they have seen a whole window of the hour).
 * A slot moves half way toward a larger burst and a quarter of the way
 * toward a smaller one each time its minute (hour) comes round, so a burst
 * that repeats is learned in two or three rounds and one that does not is
 * forgotten in a few.
 *
 * That forgets a burst that comes back on the clock but not every hour (at
 * :32 in one hour of four, irregularly): between two of them the slot has
 * decayed, and the burst finds no pods. Two more tables remember how often:
 * - exceed_share[60]: per minute of the hour, the share of hours in which
 *   demand in that minute exceeded the forecast's nominal upper quantile
 *   (headroom_quantile's, without the budget feedback's offset, which sinks
 *   where the budget goes unspent), a moving average over about
 *   1 / CPS_BURST_EXCEED_WEIGHT hours;
 * - exceed_size[60]: how far demand rose above the slow level in those
 *   hours only (as minute[], but untouched by the hours without one).
 * A minute is on the clock when its share stands out from the average
 * share over all 60 minutes by more than CPS_BURST_EXCEED_Z standard errors
 * of such a count of rare events (a threshold for 60 tests at once, so that
 * noise puts no minute there but by a small chance) and holds more than
 * CPS_BURST_EXCEED_MIN exceedances' worth (one spike is not a schedule).
 * Exceedances that keep to no minute put none on the clock; a burst that
 * keeps coming back at one minute does, and stays there between
 * occurrences. The steps of a trace sampled every 5 minutes fall on 12
 * minutes of the hour alike, and can put those on it: the policy caps what
 * a minute on the clock asks for (decide.c), which keeps that cheap.
 *
 * Pure: no I/O, no clock, no allocation.
 */
#ifndef CPS_BURST_MEMORY_H
#define CPS_BURST_MEMORY_H

#include <stdint.h>

#define CPS_BURST_MINUTES 60
#define CPS_BURST_HOURS 24
/* One step of a slot, in natural log of the ratio: 0.03 = 3 %. */
#define CPS_BURST_STEP 0.03
#define CPS_BURST_HOUR_STEP 0.05
/* The hour table learns from, and is used for, this much of an hour's start. */
#define CPS_BURST_HOUR_HEAD_MS (10 * 60 * 1000LL)
/* Weight of an hour in the moving share of exceedances (a memory of about
 * 32 hours: a burst every fourth hour is seen eight times in it). */
#define CPS_BURST_EXCEED_WEIGHT (1.0 / 32.0)
/* Standard errors over the average share that put a minute on the clock:
 * the normal quantile 1 - 0.05 / 60, a 5 % chance for any of the 60
 * minutes to stand out by noise alone. */
#define CPS_BURST_EXCEED_Z 3.144
/* ... and the least share it takes, in exceedances (one adds
 * CPS_BURST_EXCEED_WEIGHT): more than two recent ones. */
#define CPS_BURST_EXCEED_MIN 2.5
/* exceed_share[] in units of 1 / CPS_BURST_SHARE_ONE */
#define CPS_BURST_SHARE_ONE 65535.0

struct cps_burst_memory {
    uint8_t minute[CPS_BURST_MINUTES];
    uint8_t hour[CPS_BURST_HOURS];
    uint16_t exceed_share[CPS_BURST_MINUTES]; /* x CPS_BURST_SHARE_ONE */
    uint8_t exceed_size[CPS_BURST_MINUTES];   /* steps of CPS_BURST_STEP, as minute[] */
    uint8_t minute_exceeded;  /* an observation of the watched minute exceeded the forecast */
    uint32_t exceed_share_sum; /* Σ exceed_share[], kept with it (the average's numerator) */
    float minute_peak;       /* largest log ratio of the minute being watched */
    float hour_peak;         /* ... of the hour being watched */
    int64_t minute_index;    /* that minute (ms / 60000) + 1, 0 before any */
    int64_t hour_index;      /* that hour (ms / 3600000) + 1, 0 before any */
};

/*
 * Learn from one observation: at `t_ms` (the middle of the metrics
 * window), demand was `minute_ratio` times the slow level and `hour_ratio`
 * times the usual rate, and `exceeded` (non-zero) when it was over the
 * forecast's nominal upper quantile (headroom_quantile of a normal spread,
 * without the budget feedback's offset or the learned tail). A minute's (hour's)
 * slot is updated once the observations have moved past it.
 */
void cps_burst_observe(struct cps_burst_memory *m, int64_t t_ms, double minute_ratio,
                       double hour_ratio, int exceeded);

/* Forget the minute and the hour being watched, without filing them: the
 * clock went back, and later observations would fall before them. */
void cps_burst_restart_watch(struct cps_burst_memory *m);

/* The largest remembered minute ratio (>= 1) over the clock minutes that
 * [from_ms, to_ms] touches. */
double cps_burst_minute_expected(const struct cps_burst_memory *m, int64_t from_ms,
                                 int64_t to_ms);

/* The largest exceed_size ratio (>= 1) over the clock minutes that
 * [from_ms, to_ms] touches and that are on the clock (see above); 1 when
 * none is. */
double cps_burst_clock_expected(const struct cps_burst_memory *m, int64_t from_ms, int64_t to_ms);

/*
 * Whether demand `qps`, seen over [seen_from_ms, seen_to_ms] (a metrics
 * window), is a burst this memory knows and that is over by [lead_from_ms,
 * lead_to_ms] (when pods asked for now would serve): the window touches a
 * minute on the clock (cps_burst_clock_expected: one that exceeds the
 * forecast in more hours than chance explains), demand is above
 * `slow_level` but within that minute's size times `tolerance`, and the
 * memory expects less of the lead, by either table. Such a surge is the
 * memory's to size, not a surprise of the forecast (decide.c). The table
 * of any minute (the recurring one) does not count as knowing: noise puts
 * most minutes a little over the slow level there, and skipping upward
 * surprises on that ground alone would bias the spread low.
 */
int cps_burst_explains(const struct cps_burst_memory *m, double qps, double slow_level,
                       double tolerance, int64_t seen_from_ms, int64_t seen_to_ms,
                       int64_t lead_from_ms, int64_t lead_to_ms);

/* The remembered start-of-hour ratio (to the usual rate) of the hour
 * whose first CPS_BURST_HOUR_HEAD_MS [from_ms, to_ms] touches; 0 when it
 * touches none, or the hour was never seen. */
double cps_burst_hour_expected(const struct cps_burst_memory *m, int64_t from_ms, int64_t to_ms);

#endif
