#include "minute_spread.h"

#include <math.h>

/* z^2 of 1 in the table's units: the cap, 4, is 65,532 of 65,535. */
#define CPS_MINUTE_SPREAD_ONE 16383.0
/* A minute's moving mean weighs a new sample at no less than this. */
#define MOVING_WEIGHT_MIN (1.0 / 256.0)

/* The minute of the hour of t_ms (t_ms may be negative). */
static int minute_of_hour(int64_t t_ms)
{
    int64_t minute = (t_ms / 60000) % CPS_MINUTE_SPREAD_SLOTS;
    if (t_ms < 0 && t_ms % 60000 != 0)
        minute--;
    return (int)((minute + CPS_MINUTE_SPREAD_SLOTS) % CPS_MINUTE_SPREAD_SLOTS);
}

/*
 * See minute_spread.h. The first samples of a minute are averaged with
 * equal weight; from the 256th on, each moves the mean by 1/256 of its
 * difference (about 64 hours of samples at one decision each 15 s), so
 * the table follows a schedule that changes within days.
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
    if (weight < MOVING_WEIGHT_MIN)
        weight = MOVING_WEIGHT_MIN;
    double mean = (double)m->z2[slot] / CPS_MINUTE_SPREAD_ONE;
    mean += weight * (z2 - mean);
    m->z2[slot] = (uint16_t)lround(mean * CPS_MINUTE_SPREAD_ONE);
    if (m->samples[slot] == 0)
        m->slots_seen++;
    if (m->samples[slot] < UINT8_MAX)
        m->samples[slot]++;
}

/*
 * See minute_spread.h. The all-minute mean is summed at each call: 60
 * additions, against the exps of a decision.
 */
double cps_minute_spread_factor(const struct cps_minute_spread *m, int64_t t_ms)
{
    if (m->slots_seen < CPS_MINUTE_SPREAD_SLOTS)
        return 1.0;
    uint32_t sum = 0;
    for (int i = 0; i < CPS_MINUTE_SPREAD_SLOTS; i++)
        sum += m->z2[i];
    double all = (double)sum / CPS_MINUTE_SPREAD_SLOTS;
    if (!(all > 0.0))
        return 1.0;
    int slot = minute_of_hour(t_ms);
    double n = (double)m->samples[slot];
    double ratio = (n * (double)m->z2[slot] + CPS_MINUTE_SPREAD_PRIOR * all) /
                   ((n + CPS_MINUTE_SPREAD_PRIOR) * all);
    if (ratio >= 1.0)
        return 1.0;
    double factor = sqrt(ratio);
    return factor < CPS_MINUTE_SPREAD_MIN ? CPS_MINUTE_SPREAD_MIN : factor;
}
