#include "minute_spread.h"

#include <math.h>

#include "units.h"

/* z^2 of 1 in the table's units: the cap, 4, is 65,532 of 65,535. */
#define CPS_MINUTE_SPREAD_ONE 16383.0

/* The minute of the hour of t_ms (t_ms may be negative). */
static int minute_of_hour(int64_t t_ms)
{
    return cps_wrap(cps_floor_div(t_ms, CPS_MS_PER_MIN), CPS_MINUTE_SPREAD_SLOTS);
}

/*
 * See minute_spread.h. The first samples of a minute are averaged with
 * equal weight (1/(n+1)); once the count has saturated at 255, each moves
 * the mean by 1/256 of its difference (about 64 hours of samples at one
 * decision each 15 s), so the table follows a schedule that changes
 * within days.
 */
void cps_minute_spread_learn(struct cps_minute_spread *m, int64_t t_ms, double z)
{
    if (!isfinite(z))
        return;
    double z2 = z * z;
    if (z2 > CPS_MINUTE_SPREAD_Z_CAP)
        z2 = CPS_MINUTE_SPREAD_Z_CAP;
    int slot = minute_of_hour(t_ms);
    double weight = 1.0 / ((double)m->samples[slot] + 1.0);
    double mean = (double)m->z2[slot] / CPS_MINUTE_SPREAD_ONE;
    mean += weight * (z2 - mean);
    uint16_t stored = (uint16_t)(mean * CPS_MINUTE_SPREAD_ONE + 0.5); /* rounded: mean >= 0 */
    m->z2_sum += (uint32_t)stored - m->z2[slot]; /* modulo 2^32: the new sum */
    m->z2[slot] = stored;
    if (m->slots_seen == 0)
        m->first_ms = t_ms;
    if (m->samples[slot] == 0)
        m->slots_seen++;
    if (m->samples[slot] < UINT8_MAX)
        m->samples[slot]++;
}

/*
 * See minute_spread.h. The mean of the minutes seen is the running sum
 * over their count (summing the 60 at each decision cost 2.8 % of the
 * simulator's instructions). A minute not seen has no samples, so the
 * prior alone would give it a ratio of 1.
 */
double cps_minute_spread_factor(const struct cps_minute_spread *m, int64_t t_ms)
{
    int slot = minute_of_hour(t_ms);
    if (m->samples[slot] == 0 || t_ms - m->first_ms < CPS_MINUTE_SPREAD_WARMUP_MS)
        return 1.0;
    /* as loud as the mean or louder: the ratio is 1 or more (and 0 / 0 is not taken) */
    if ((uint64_t)m->z2[slot] * m->slots_seen >= m->z2_sum)
        return 1.0;
    double all = (double)m->z2_sum / (double)m->slots_seen;
    double n = (double)m->samples[slot];
    double ratio = (n * (double)m->z2[slot] + CPS_MINUTE_SPREAD_PRIOR * all) /
                   ((n + CPS_MINUTE_SPREAD_PRIOR) * all);
    double factor = sqrt(ratio);
    return factor < CPS_MINUTE_SPREAD_MIN ? CPS_MINUTE_SPREAD_MIN : factor;
}
