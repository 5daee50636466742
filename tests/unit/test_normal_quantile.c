/*
 * The normal quantile (lib/normal_quantile.c) against published values of
 * the inverse normal CDF, and against the normal CDF computed from the C
 * library's erfc over the whole range, both tails and the middle.
 */
#include <math.h>

#include "cps_test.h"
#include "normal_quantile.h"

/* P(Z <= z) and P(Z > z) for a standard normal Z, from erfc: each keeps
 * its digits in its own tail. */
static double normal_cdf(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

static double normal_upper_tail(double z)
{
    return 0.5 * erfc(z / sqrt(2.0));
}

/* Values printed in statistical tables (and by R's qnorm), to 15 digits. */
static void test_published_values(void)
{
    ASSERT_NEAR(cps_normal_quantile(0.5), 0.0, 1e-12);
    ASSERT_NEAR(cps_normal_quantile(0.95), 1.64485362695147, 1e-8);
    ASSERT_NEAR(cps_normal_quantile(0.975), 1.95996398454005, 1e-8);
    ASSERT_NEAR(cps_normal_quantile(0.99), 2.32634787404084, 1e-8);
    ASSERT_NEAR(cps_normal_quantile(0.999), 3.09023230616781, 1e-8);
    ASSERT_NEAR(cps_normal_quantile(0.01), -2.32634787404084, 1e-8);
    ASSERT_NEAR(cps_normal_quantile(1e-6), -4.75342430882290, 1e-7);
}

/* Over p from 1e-9 to 1 - 1e-9 (a log-spaced sweep into each tail and a
 * linear one through the middle), the CDF of the answer gives p back
 * within what a relative error of 1.2e-9 in z allows (in the tail, the
 * relative change of p is about z times the change of z: 2e-9 (1 + z^2)
 * of the smaller tail probability); the answer rises with p. */
static void test_inverts_the_cdf_everywhere(void)
{
    double previous = -INFINITY;
    for (int i = 0; i <= 2000; i++) {
        double p;
        if (i < 500)
            p = pow(10.0, -9.0 + 8.0 * i / 500.0); /* 1e-9 .. 0.1 */
        else if (i <= 1500)
            p = 0.1 + 0.8 * (i - 500) / 1000.0;
        else
            p = 1.0 - pow(10.0, -1.0 - 8.0 * (i - 1500) / 500.0); /* 0.9 .. 1 - 1e-9 */
        double z = cps_normal_quantile(p);
        ASSERT_TRUE(isfinite(z));
        ASSERT_TRUE(z > previous);
        previous = z;
        double tail = p < 0.5 ? p : 1.0 - p;
        double back = p < 0.5 ? normal_cdf(z) : normal_upper_tail(z);
        ASSERT_NEAR(back, tail, 2e-9 * (1.0 + z * z) * tail);
    }
}

/* The edges: nothing at or beyond 0 and 1 is a finite z, and NaN stays
 * NaN (it is neither). */
static void test_edges(void)
{
    ASSERT_TRUE(isinf(cps_normal_quantile(0.0)) && cps_normal_quantile(0.0) < 0);
    ASSERT_TRUE(isinf(cps_normal_quantile(-1.0)) && cps_normal_quantile(-1.0) < 0);
    ASSERT_TRUE(isinf(cps_normal_quantile(1.0)) && cps_normal_quantile(1.0) > 0);
    ASSERT_TRUE(isinf(cps_normal_quantile(2.0)) && cps_normal_quantile(2.0) > 0);
    ASSERT_TRUE(isnan(cps_normal_quantile(NAN)));
}

int main(void)
{
    CPS_RUN(test_published_values);
    CPS_RUN(test_inverts_the_cdf_everywhere);
    CPS_RUN(test_edges);
    CPS_TEST_END();
}
