/*
 * The minute spread (lib/minute_spread.c): per minute of the hour, how its
 * demand surprises compare with the others'. Expected factors are worked
 * out here from the documented rule (minute_spread.h), not read back.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cps_test.h"
#include "minute_spread.h"

#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)

/* Feed `hours` hours of four samples a minute: `loud_z` in the minutes
 * where minute % loud_every == 0, `quiet_z` in the others. */
static void feed_schedule(struct cps_minute_spread *m, int hours, int loud_every, double loud_z,
                          double quiet_z)
{
    for (int64_t t = 0; t < hours * HOUR_MS; t += 15000) {
        int minute = (int)((t / MINUTE_MS) % 60);
        cps_minute_spread_learn(m, t, minute % loud_every == 0 ? loud_z : quiet_z);
    }
}

/* The rule's factor for a minute whose mean z^2 is `own`, after `n` of
 * its samples, where the mean of all minutes is `all`. */
static double expected_factor(double own, double n, double all)
{
    double ratio = (n * own + CPS_MINUTE_SPREAD_PRIOR * all) / ((n + CPS_MINUTE_SPREAD_PRIOR) * all);
    if (ratio >= 1.0)
        return 1.0;
    double f = sqrt(ratio);
    return f < CPS_MINUTE_SPREAD_MIN ? CPS_MINUTE_SPREAD_MIN : f;
}

/* Nothing is narrowed within an hour of the first sample (the minute a
 * forecast is judged in has only this hour's samples, or none); a minute
 * with no sample keeps its spread after it too, and the mean a seen minute
 * is held against is that of the minutes seen. Three hours of samples in
 * the first half of each hour (z = 3, counted as 2, at :00, :10 and :20;
 * 0.3 in the others): minute :45 has none and keeps 1, and minute :05's
 * factor is the rule's with 12 samples of 0.09 against the mean of the 30
 * minutes seen. */
static void test_warm_up_and_minutes_not_seen(void)
{
    struct cps_minute_spread m;
    memset(&m, 0, sizeof m);
    ASSERT_NEAR(cps_minute_spread_factor(&m, 0), 1.0, 0.0);
    feed_schedule(&m, 1, 10, 3.0, 0.3); /* the first hour: :00:00 to :59:45 */
    ASSERT_NEAR(cps_minute_spread_factor(&m, 59 * MINUTE_MS + 59999), 1.0, 0.0);
    ASSERT_TRUE(cps_minute_spread_factor(&m, HOUR_MS + 5 * MINUTE_MS) < 1.0);
    memset(&m, 0, sizeof m);
    for (int64_t hour = 0; hour < 3; hour++)
        for (int64_t t = 0; t < 30 * MINUTE_MS; t += 15000)
            cps_minute_spread_learn(&m, hour * HOUR_MS + t, (t / MINUTE_MS) % 10 == 0 ? 3.0 : 0.3);
    ASSERT_EQ(m.slots_seen, 30);
    ASSERT_NEAR(cps_minute_spread_factor(&m, 3 * HOUR_MS + 45 * MINUTE_MS), 1.0, 0.0);
    double all = (3 * CPS_MINUTE_SPREAD_Z_CAP + 27 * 0.09) / 30.0;
    ASSERT_NEAR(cps_minute_spread_factor(&m, 3 * HOUR_MS + 5 * MINUTE_MS),
                expected_factor(0.09, 12.0, all), 1e-3);
}

/* Demand that changes only every 10 minutes: z = 3 (counted as 2, the
 * cap) in the minutes on the step, 0.3 in the nine after. After a day
 * (looked up the next), each minute holds 96 samples: a quiet minute's
 * factor is the rule's with own = 0.09 and all = (4 + 9 x 0.09) / 10; the
 * loud minutes keep 1.
 */
static void test_quiet_minutes_narrow_loud_ones_keep(void)
{
    struct cps_minute_spread m;
    memset(&m, 0, sizeof m);
    feed_schedule(&m, 24, 10, 3.0, 0.3);
    double all = (CPS_MINUTE_SPREAD_Z_CAP + 9 * 0.09) / 10.0;
    double quiet = expected_factor(0.09, 96.0, all);
    ASSERT_NEAR(cps_minute_spread_factor(&m, DAY_MS + 3 * MINUTE_MS + 20000), quiet, 1e-3);
    ASSERT_NEAR(cps_minute_spread_factor(&m, DAY_MS + 47 * MINUTE_MS), quiet, 1e-3);
    ASSERT_NEAR(cps_minute_spread_factor(&m, DAY_MS + 20 * MINUTE_MS + 59000), 1.0, 0.0);
    ASSERT_NEAR(cps_minute_spread_factor(&m, DAY_MS + 40 * MINUTE_MS), 1.0, 0.0);
    /* the floor: with no quiet noise at all, 0.5 */
    memset(&m, 0, sizeof m);
    feed_schedule(&m, 24, 10, 3.0, 0.0);
    ASSERT_NEAR(cps_minute_spread_factor(&m, DAY_MS + 3 * MINUTE_MS), CPS_MINUTE_SPREAD_MIN, 0.0);
    /* and a later day of another time: the minute of the hour is what counts */
    ASSERT_NEAR(cps_minute_spread_factor(&m, 30 * HOUR_MS + 3 * MINUTE_MS),
                CPS_MINUTE_SPREAD_MIN, 0.0);
}

/* A seeded uniform draw in [0, 1) (a 64-bit LCG's top 53 bits). */
static double seeded_uniform(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*seed >> 11) / 9007199254740992.0;
}

/* A seeded standard normal draw (Box-Muller). */
static double seeded_normal(uint64_t *seed)
{
    double u1 = seeded_uniform(seed), u2 = seeded_uniform(seed);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/* The least factor over the hour's minutes, looked up on the fourth day. */
static double least_factor(const struct cps_minute_spread *m)
{
    double least = 1.0;
    for (int minute = 0; minute < 60; minute++) {
        double f = cps_minute_spread_factor(m, 3 * DAY_MS + minute * MINUTE_MS);
        if (f < least)
            least = f;
    }
    return least;
}

/* Noise with no schedule narrows no minute by much: normal surprises for
 * three days leave every factor at 0.9 or more; and so do normal surprises
 * with ten bursts of 20 spreads a day at random minutes, since a squared
 * surprise counts for no more than the cap (without it, each minute with a
 * burst in its memory raised the mean of all, and the others sank). */
static void test_noise_and_random_bursts_narrow_nothing(void)
{
    struct cps_minute_spread m;
    memset(&m, 0, sizeof m);
    uint64_t seed = 7;
    for (int64_t t = 0; t < 72 * HOUR_MS; t += 15000)
        cps_minute_spread_learn(&m, t, seeded_normal(&seed));
    ASSERT_TRUE(least_factor(&m) >= 0.9);
    memset(&m, 0, sizeof m);
    seed = 11;
    for (int64_t t = 0; t < 72 * HOUR_MS; t += 15000) {
        double z = seeded_normal(&seed);
        /* forty samples a day (ten minutes' worth) at random */
        if (seeded_uniform(&seed) < 40.0 / 5760.0)
            z = 20.0;
        cps_minute_spread_learn(&m, t, z);
    }
    ASSERT_TRUE(least_factor(&m) >= 0.9);
}

/* Bad samples are ignored; times before 1970 find their minute too. */
static void test_ignores_non_finite_and_handles_negative_time(void)
{
    struct cps_minute_spread m;
    memset(&m, 0, sizeof m);
    cps_minute_spread_learn(&m, 0, NAN);
    cps_minute_spread_learn(&m, 0, INFINITY);
    ASSERT_EQ(m.slots_seen, 0);
    ASSERT_EQ(m.samples[0], 0);
    cps_minute_spread_learn(&m, -1, 1.0); /* 23:59:59.999 the day before: minute 59 */
    ASSERT_EQ(m.samples[59], 1);
    cps_minute_spread_learn(&m, -MINUTE_MS, 1.0); /* exactly a minute before: minute 59 too */
    ASSERT_EQ(m.samples[59], 2);
    cps_minute_spread_learn(&m, -MINUTE_MS - 1, 1.0);
    ASSERT_EQ(m.samples[58], 1);
    /* the count saturates; the mean keeps moving, by 1/256 a sample: after
     * 256 samples of 0 from a mean of 1, (1 - 1/256)^256 of it is left */
    for (int i = 0; i < 300; i++)
        cps_minute_spread_learn(&m, 0, 1.0);
    ASSERT_EQ(m.samples[0], 255);
    ASSERT_NEAR(m.z2[0] / 16383.0, 1.0, 1e-3);
    for (int i = 0; i < 256; i++)
        cps_minute_spread_learn(&m, 0, 0.0);
    ASSERT_NEAR(m.z2[0] / 16383.0, pow(1.0 - 1.0 / 256.0, 256.0), 2e-3);
}

int main(void)
{
    CPS_RUN(test_warm_up_and_minutes_not_seen);
    CPS_RUN(test_quiet_minutes_narrow_loud_ones_keep);
    CPS_RUN(test_noise_and_random_bursts_narrow_nothing);
    CPS_RUN(test_ignores_non_finite_and_handles_negative_time);
    CPS_TEST_END();
}
