/*
 * Calibration (sim/calibrate.c): rows made from the queueing model of
 * docs/model.md §3 with known parameters, exact and with noise, must give those
 * parameters back; data that cannot identify them must be refused with the
 * reason; rows are accounted for.
 */
#include <stdlib.h>

#include "calibrate.h"
#include "cps_test.h"
#include "queue_model.h"

#define ROWS 600
#define LN_20 2.995732273553991
#define SATURATED_MS 1000.0
#define SLO_MS 100.0

static struct cps_calib_row rows[ROWS];

/* Deterministic noise in [-1, 1) (a linear congruential generator), so a
 * noisy case is the same on every run. */
static double noise(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / 4503599627370496.0 - 1.0;
}

/*
 * Rows over a day-like load curve: load per pod from lo to hi of mu,
 * replicas cycling 3..12, p95 from the model (random routing by formula,
 * pooled through the library) times (1 + rel_noise x U[-1, 1)).
 */
static size_t make_rows(enum cps_routing routing, double mu, double base, double lo, double hi,
                        double rel_noise, size_t n)
{
    uint64_t state = 42;
    struct cps_queue_model model = {routing, mu, base};
    for (size_t i = 0; i < n; i++) {
        double phase = 0.5 - 0.5 * cos(6.283185307179586 * (double)i / (double)n);
        double util = lo + (hi - lo) * phase;
        int c = 3 + (int)(i % 10);
        double qps = util * mu * c;
        double p95 = routing == CPS_ROUTING_RANDOM ? base + 1000.0 * LN_20 / (mu - qps / c)
                                                   : cps_queue_p95_ms(&model, qps, c);
        rows[i].qps = qps;
        rows[i].replicas = c;
        rows[i].p95_ms = p95 * (1.0 + rel_noise * noise(&state));
    }
    return n;
}

static struct cps_calib_options options(enum cps_routing routing)
{
    struct cps_calib_options o = {routing, SATURATED_MS, SLO_MS};
    return o;
}

static void test_recovers_known_worlds(void)
{
    static const struct {
        const char *name;
        enum cps_routing routing;
        double mu, base, lo, hi, noise, tolerance; /* tolerance: relative */
    } cases[] = {
        {"random exact", CPS_ROUTING_RANDOM, 100, 20, 0.1, 0.9, 0, 1e-6},
        {"random exact slow pods", CPS_ROUTING_RANDOM, 12.5, 80, 0.2, 0.85, 0, 1e-6},
        {"random exact fast pods", CPS_ROUTING_RANDOM, 2000, 3, 0.05, 0.7, 0, 1e-6},
        {"random 2% noise", CPS_ROUTING_RANDOM, 80, 35, 0.1, 0.9, 0.02, 0.05},
        {"random 5% noise", CPS_ROUTING_RANDOM, 150, 10, 0.2, 0.9, 0.05, 0.05},
        {"pooled exact", CPS_ROUTING_POOLED, 100, 20, 0.2, 0.95, 0, 1e-4},
        {"pooled 2% noise", CPS_ROUTING_POOLED, 60, 15, 0.3, 0.95, 0.02, 0.05},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CPS_ROW_BEGIN();
        size_t n = make_rows(cases[i].routing, cases[i].mu, cases[i].base, cases[i].lo,
                             cases[i].hi, cases[i].noise, ROWS);
        struct cps_calib_options o = options(cases[i].routing);
        struct cps_calib_result r;
        struct cps_err err;
        int rc = cps_calibrate_fit(rows, n, &o, &r, &err);
        ASSERT_EQ(rc, 0);
        if (rc == 0) {
            ASSERT_NEAR(r.service_rate / cases[i].mu, 1.0, cases[i].tolerance);
            ASSERT_NEAR(r.base_latency_ms / cases[i].base, 1.0, cases[i].tolerance);
            ASSERT_TRUE(r.service_rate_lo <= r.service_rate && r.service_rate <= r.service_rate_hi);
            ASSERT_TRUE(r.r2 > 0.9);
            ASSERT_EQ(r.rows_total, n);
            ASSERT_EQ(r.rows_used + r.rows_outliers + r.rows_subsampled + r.rows_saturated, n);
            if (cases[i].noise == 0)
                ASSERT_TRUE(r.rmse_ms < 1e-3 * cases[i].base);
        } else {
            fprintf(stderr, "  %s: %s\n", cases[i].name, err.message);
        }
        CPS_ROW_END(cases[i].name);
    }
}

/* λmax(1) at the SLO, for the fitted world, is the SLO-safe rate per pod. */
static void test_safe_rate(void)
{
    size_t n = make_rows(CPS_ROUTING_RANDOM, 100, 20, 0.1, 0.9, 0, ROWS);
    struct cps_calib_options o = options(CPS_ROUTING_RANDOM);
    struct cps_calib_result r;
    struct cps_err err;
    ASSERT_EQ(cps_calibrate_fit(rows, n, &o, &r, &err), 0);
    /* docs/model.md §9: λmax(1) = 62.553347 at μ 100, base 20 ms, SLO 100 ms */
    ASSERT_NEAR(r.slo_safe_rps_per_pod, 62.553347, 1e-3);
}

/* Rows that must be left out, and counted as such. */
static void test_row_accounting(void)
{
    size_t n = make_rows(CPS_ROUTING_RANDOM, 100, 20, 0.1, 0.9, 0, 200);
    rows[0].p95_ms = NAN;        /* no p95 */
    rows[1].replicas = NAN;      /* no replicas */
    rows[2].qps = 0;             /* idle */
    rows[3].replicas = 0;        /* no ready pod */
    rows[4].p95_ms = SATURATED_MS;      /* saturated */
    rows[5].p95_ms = 5 * SATURATED_MS;  /* saturated */
    rows[6].p95_ms *= 3;         /* an outlier */
    struct cps_calib_options o = options(CPS_ROUTING_RANDOM);
    struct cps_calib_result r;
    struct cps_err err;
    ASSERT_EQ(cps_calibrate_fit(rows, n, &o, &r, &err), 0);
    ASSERT_EQ(r.rows_no_columns, 2);
    ASSERT_EQ(r.rows_idle, 2);
    ASSERT_EQ(r.rows_saturated, 2);
    ASSERT_EQ(r.rows_outliers, 1);
    ASSERT_EQ(r.rows_used, n - 7);
    ASSERT_NEAR(r.service_rate, 100, 1e-4);
    ASSERT_NEAR(r.base_latency_ms, 20, 1e-4);
}

/* Pooled routing: a row of more pods than CPS_POOLED_MAX_REPLICAS is left
 * out to bound the O(c) Erlang C of each row, and counted; 4294967297 pods
 * used to wrap through int32 to a row of 1 pod. */
static void test_pooled_rows_too_large_are_left_out(void)
{
    size_t n = make_rows(CPS_ROUTING_POOLED, 100, 20, 0.2, 0.95, 0, 200);
    rows[0].replicas = 4294967297.0;
    rows[0].qps = 1.0; /* one pod: a row that, wrapped, would not fit the world */
    rows[1].replicas = CPS_POOLED_MAX_REPLICAS + 1;
    struct cps_calib_options o = options(CPS_ROUTING_POOLED);
    struct cps_calib_result r;
    struct cps_err err;
    ASSERT_EQ(cps_calibrate_fit(rows, n, &o, &r, &err), 0);
    ASSERT_TRUE(r.rows_subsampled >= 2);
    ASSERT_EQ(r.rows_outliers, 0);
    ASSERT_NEAR(r.service_rate, 100, 1e-2);
}

static void test_refusals(void)
{
    static const struct {
        const char *name;
        double lo, hi, noise;
        size_t n;
        int saturate;  /* 1: every p95 at the saturation cut */
        int flat;      /* 1: p95 unrelated to load (a constant plus noise) */
        const char *reason;
    } cases[] = {
        {"too few rows", 0.1, 0.9, 0, 12, 0, 0, "too few usable rows"},
        {"load barely varies", 0.500, 0.505, 0, ROWS, 0, 0, "barely varies"},
        {"only saturated rows", 0.1, 0.9, 0, ROWS, 1, 0, "saturated"},
        {"queueing never shows", 0.001, 0.01, 0.05, ROWS, 0, 0, "do not pin down"},
        {"latency unrelated to load", 0.1, 0.9, 0, ROWS, 0, 1, "does not follow the load"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CPS_ROW_BEGIN();
        size_t n = make_rows(CPS_ROUTING_RANDOM, 100, 20, cases[i].lo, cases[i].hi,
                             cases[i].noise, cases[i].n);
        uint64_t state = 7;
        for (size_t k = 0; k < n; k++) {
            if (cases[i].saturate)
                rows[k].p95_ms = SATURATED_MS;
            if (cases[i].flat)
                rows[k].p95_ms = 50.0 * (1.0 + 0.3 * noise(&state));
        }
        struct cps_calib_options o = options(CPS_ROUTING_RANDOM);
        struct cps_calib_result r;
        struct cps_err err;
        cps_err_clear(&err);
        ASSERT_EQ(cps_calibrate_fit(rows, n, &o, &r, &err), -1);
        ASSERT_CONTAINS(err.message, cases[i].reason);
        CPS_ROW_END(cases[i].name);
    }
}

int main(void)
{
    test_recovers_known_worlds();
    CPS_RUN(test_safe_rate);
    CPS_RUN(test_row_accounting);
    CPS_RUN(test_pooled_rows_too_large_are_left_out);
    test_refusals();
    CPS_TEST_END();
}
