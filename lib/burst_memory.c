#include "burst_memory.h"

#include <math.h>
#include <stddef.h>

#include "units.h"

#define SLOT_MAX 255
#define HOUR_MEAN_SLOT 128

/* A slot moves half way up toward a larger value and a quarter of the way
 * down toward a smaller one, by at least one step, and stops on it. */
static uint8_t slot_step(uint8_t slot, double target)
{
    if (target > SLOT_MAX)
        target = SLOT_MAX;
    if (target < 0)
        target = 0;
    double now = slot, moved;
    if (target > now)
        moved = now + ceil((target - now) / 2.0);
    else
        moved = now - ceil((now - target) / 4.0);
    if ((target > now && moved > target) || (target < now && moved < target))
        moved = target;
    return (uint8_t)moved;
}

/* Quantised log ratio; ratios that are not positive numbers count as 1. */
static double log_steps(double ratio, double step)
{
    return ratio > 0 && isfinite(ratio) ? log(ratio) / step : 0.0;
}

/* The share of exceedances moves CPS_BURST_EXCEED_WEIGHT of the way
 * toward 1 (the minute exceeded the forecast this hour) or 0. */
static uint16_t share_step(uint16_t share, int exceeded)
{
    double now = share, target = exceeded ? CPS_BURST_SHARE_ONE : 0.0;
    double moved = now + CPS_BURST_EXCEED_WEIGHT * (target - now);
    return (uint16_t)round(moved);
}

/*
 * See burst_memory.h. An observation belongs to the clock minute of t_ms;
 * when t_ms has moved on to a later minute, the watched minute's peak goes
 * into its slot, and whether any of its observations exceeded the forecast
 * into its share (and, when one did, the peak into its exceed_size); minutes
 * skipped in between learn nothing: no observation saw them. The hour table
 * does the same with the peak of the observations in an hour's first
 * CPS_BURST_HOUR_HEAD_MS.
 */
void cps_burst_observe(struct cps_burst_memory *m, int64_t t_ms, double minute_ratio,
                       double hour_ratio, int exceeded)
{
    int64_t minute = cps_floor_div(t_ms, CPS_MS_PER_MIN) + 1;
    if (m->minute_index != 0 && minute > m->minute_index) {
        int slot = cps_wrap(m->minute_index - 1, CPS_BURST_MINUTES);
        m->minute[slot] = slot_step(m->minute[slot], round(m->minute_peak));
        uint16_t share = share_step(m->exceed_share[slot], m->minute_exceeded);
        m->exceed_share_sum = m->exceed_share_sum - m->exceed_share[slot] + share;
        m->exceed_share[slot] = share;
        if (m->minute_exceeded)
            m->exceed_size[slot] = slot_step(m->exceed_size[slot], round(m->minute_peak));
        m->minute_index = 0;
    }
    double steps = log_steps(minute_ratio, CPS_BURST_STEP);
    if (m->minute_index == 0) {
        m->minute_index = minute;
        m->minute_peak = (float)steps;
        m->minute_exceeded = exceeded ? 1 : 0;
    } else if (minute == m->minute_index) {
        if (steps > m->minute_peak)
            m->minute_peak = (float)steps;
        if (exceeded)
            m->minute_exceeded = 1;
    }

    int64_t hour = cps_floor_div(t_ms, CPS_MS_PER_HOUR) + 1;
    int in_head = t_ms - (hour - 1) * CPS_MS_PER_HOUR < CPS_BURST_HOUR_HEAD_MS;
    if (m->hour_index != 0 && hour > m->hour_index) {
        int slot = cps_wrap(m->hour_index - 1, CPS_BURST_HOURS);
        double target = HOUR_MEAN_SLOT + round(m->hour_peak);
        if (target < 1)
            target = 1; /* 0 is "never seen" */
        if (target > SLOT_MAX)
            target = SLOT_MAX;
        m->hour[slot] = m->hour[slot] == 0 ? (uint8_t)target : slot_step(m->hour[slot], target);
        m->hour_index = 0;
    }
    if (!in_head || !(hour_ratio > 0) || !isfinite(hour_ratio))
        return;
    double hour_steps = log_steps(hour_ratio, CPS_BURST_HOUR_STEP);
    if (m->hour_index == 0) {
        m->hour_index = hour;
        m->hour_peak = (float)hour_steps;
    } else if (hour == m->hour_index && hour_steps > m->hour_peak) {
        m->hour_peak = (float)hour_steps;
    }
}

void cps_burst_restart_watch(struct cps_burst_memory *m)
{
    m->minute_index = 0;
    m->hour_index = 0;
}

/*
 * The largest of sizes[] over the clock minutes that [from_ms, to_ms]
 * touches (each minute once, however long the span), counting only the
 * minutes whose shares[] entry is above `share_above` when shares is not
 * NULL. Both minute tables answer through it.
 */
static int largest_minute_slot(const uint8_t *sizes, const uint16_t *shares, double share_above,
                               int64_t from_ms, int64_t to_ms)
{
    int64_t first = cps_floor_div(from_ms, CPS_MS_PER_MIN);
    int64_t last = cps_floor_div(to_ms, CPS_MS_PER_MIN);
    if (last - first >= CPS_BURST_MINUTES)
        last = first + CPS_BURST_MINUTES - 1;
    int best = 0;
    int slot = cps_wrap(first, CPS_BURST_MINUTES);
    for (int64_t i = first; i <= last; i++) {
        if (sizes[slot] > best && (!shares || shares[slot] > share_above))
            best = sizes[slot];
        if (++slot == CPS_BURST_MINUTES)
            slot = 0; /* the next minute's slot, without a division */
    }
    return best;
}

double cps_burst_minute_expected(const struct cps_burst_memory *m, int64_t from_ms, int64_t to_ms)
{
    int best = largest_minute_slot(m->minute, NULL, 0.0, from_ms, to_ms);
    return best ? exp(best * CPS_BURST_STEP) : 1.0;
}

/*
 * See burst_memory.h. The average share p over the 60 minutes is what any
 * minute would show if exceedances did not keep to the clock. A moving
 * average of weight w over hours counts about n = (2 - w) / w hours, so a
 * minute's share is about a count of rare events out of n: Poisson-like,
 * and skewed where p n is a few (the normal approximation then puts a
 * minute on the clock in a third of the hours by noise alone). On the
 * square-root scale such a count has a spread of 1/2 whatever its mean, so
 * a minute is on the clock when sqrt(share n) stands more than
 * CPS_BURST_EXCEED_Z / 2 above sqrt(p n), and its share is at least
 * CPS_BURST_EXCEED_MIN exceedances' worth. The shares' sum is kept as they
 * move, so a decision reads it rather than adding up 60 slots.
 */
double cps_burst_clock_expected(const struct cps_burst_memory *m, int64_t from_ms, int64_t to_ms)
{
    double mean = m->exceed_share_sum / (CPS_BURST_SHARE_ONE * CPS_BURST_MINUTES);
    double w = CPS_BURST_EXCEED_WEIGHT, hours = (2.0 - w) / w;
    double root = sqrt(mean * hours) + CPS_BURST_EXCEED_Z / 2.0;
    double on_clock = root * root / hours;
    if (on_clock < CPS_BURST_EXCEED_MIN * w)
        on_clock = CPS_BURST_EXCEED_MIN * w;
    int best = largest_minute_slot(m->exceed_size, m->exceed_share,
                                   on_clock * CPS_BURST_SHARE_ONE, from_ms, to_ms);
    return best ? exp(best * CPS_BURST_STEP) : 1.0;
}

/* See burst_memory.h. */
int cps_burst_explains(const struct cps_burst_memory *m, double qps, double slow_level,
                       double tolerance, int64_t seen_from_ms, int64_t seen_to_ms,
                       int64_t lead_from_ms, int64_t lead_to_ms)
{
    if (!(slow_level > 0.0) || !(qps > slow_level))
        return 0;
    double seen = cps_burst_clock_expected(m, seen_from_ms, seen_to_ms);
    if (!(seen > 1.0) || qps > slow_level * seen * tolerance)
        return 0;
    double coming = cps_burst_clock_expected(m, lead_from_ms, lead_to_ms);
    double recurring = cps_burst_minute_expected(m, lead_from_ms, lead_to_ms);
    if (recurring > coming)
        coming = recurring;
    return coming < seen;
}

double cps_burst_hour_expected(const struct cps_burst_memory *m, int64_t from_ms, int64_t to_ms)
{
    int64_t first = cps_floor_div(from_ms, CPS_MS_PER_HOUR);
    int64_t last = cps_floor_div(to_ms, CPS_MS_PER_HOUR);
    double best = 0.0;
    for (int64_t h = first; h <= last && h <= first + 1; h++) {
        int64_t head_from = h * CPS_MS_PER_HOUR, head_to = head_from + CPS_BURST_HOUR_HEAD_MS;
        if (to_ms < head_from || from_ms >= head_to)
            continue;
        int v = m->hour[cps_wrap(h, CPS_BURST_HOURS)];
        if (v == 0)
            continue;
        double r = exp((v - HOUR_MEAN_SLOT) * CPS_BURST_HOUR_STEP);
        if (r > best)
            best = r;
    }
    return best;
}
