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
 *   against the long-run mean rate (log ratio in steps of
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

struct cps_burst_memory {
    uint8_t minute[CPS_BURST_MINUTES];
    uint8_t hour[CPS_BURST_HOURS];
    float minute_peak;       /* largest log ratio of the minute being watched */
    float hour_peak;         /* ... of the hour being watched */
    int64_t minute_index;    /* that minute (ms / 60000) + 1, 0 before any */
    int64_t hour_index;      /* that hour (ms / 3600000) + 1, 0 before any */
};

/*
 * Learn from one observation: at `t_ms` (the middle of the metrics
 * window), demand was `minute_ratio` times the slow level and `hour_ratio`
 * times the long-run mean. A minute's (hour's) slot is updated once the
 * observations have moved past it.
 */
void cps_burst_observe(struct cps_burst_memory *m, int64_t t_ms, double minute_ratio,
                       double hour_ratio);

/* The largest remembered minute ratio (>= 1) over the clock minutes that
 * [from_ms, to_ms] touches. */
double cps_burst_minute_expected(const struct cps_burst_memory *m, int64_t from_ms,
                                 int64_t to_ms);

/* The remembered start-of-hour ratio (to the long-run mean) of the hour
 * whose first CPS_BURST_HOUR_HEAD_MS [from_ms, to_ms] touches; 0 when it
 * touches none, or the hour was never seen. */
double cps_burst_hour_expected(const struct cps_burst_memory *m, int64_t from_ms, int64_t to_ms);

#endif
