/* The queueing model against docs/model.md §9's check values. */
#include "cps_test.h"
#include "queue_model.h"

struct p95_case {
    const char *name;
    enum cps_routing routing;
    double lambda;
    int32_t c;
    double expected_ms;
};

/* docs/model.md §9: μ 100, base 20 ms. */
static const struct p95_case p95_cases[] = {
    {"random p95(50,1)", CPS_ROUTING_RANDOM, 50, 1, 79.914645},
    {"random p95(150,2)", CPS_ROUTING_RANDOM, 150, 2, 139.829291},
    {"random p95(900,10)", CPS_ROUTING_RANDOM, 900, 10, 319.573227},
    {"pooled p95(400,5)", CPS_ROUTING_POOLED, 400, 5, 61.974626},
    {"pooled p95(80,1)", CPS_ROUTING_POOLED, 80, 1, 169.786614},
    {"pooled p95(900,10)", CPS_ROUTING_POOLED, 900, 10, 63.608666},
    /* λ = 0: base + ln(20)/μ = 20 + 29.957323 */
    {"random idle", CPS_ROUTING_RANDOM, 0, 3, 49.957323},
    {"pooled idle", CPS_ROUTING_POOLED, 0, 3, 49.957323},
    {"random idle, no pods", CPS_ROUTING_RANDOM, 0, 0, 49.957323},
};

struct lambda_case {
    const char *name;
    enum cps_routing routing;
    int32_t c;
    double expected;
};

static const struct lambda_case lambda_cases[] = {
    {"random λmax(1)", CPS_ROUTING_RANDOM, 1, 62.553347},
    {"random λmax(10)", CPS_ROUTING_RANDOM, 10, 625.533466},
    {"pooled λmax(1)", CPS_ROUTING_POOLED, 1, 62.553347},
    {"pooled λmax(10)", CPS_ROUTING_POOLED, 10, 957.737640},
    {"pooled λmax(50)", CPS_ROUTING_POOLED, 50, 4956.390881},
    {"λmax(0)", CPS_ROUTING_RANDOM, 0, 0.0},
};

static void test_p95_check_values(void)
{
    for (size_t i = 0; i < sizeof p95_cases / sizeof p95_cases[0]; i++) {
        const struct p95_case *tc = &p95_cases[i];
        CPS_ROW_BEGIN();
        struct cps_queue_model m = {tc->routing, 100.0, 20.0};
        ASSERT_NEAR(cps_queue_p95_ms(&m, tc->lambda, tc->c), tc->expected_ms, 1e-6);
        CPS_ROW_END(tc->name);
    }
}

static void test_lambda_max_check_values(void)
{
    for (size_t i = 0; i < sizeof lambda_cases / sizeof lambda_cases[0]; i++) {
        const struct lambda_case *tc = &lambda_cases[i];
        CPS_ROW_BEGIN();
        struct cps_queue_model m = {tc->routing, 100.0, 20.0};
        ASSERT_NEAR(cps_queue_lambda_max(&m, 100.0, tc->c), tc->expected, 1e-6);
        CPS_ROW_END(tc->name);
    }
}

/* Saturation and no pods give an infinite p95; an SLO below the idle p95
 * gives λmax 0. */
static void test_edges(void)
{
    struct cps_queue_model m = {CPS_ROUTING_RANDOM, 100.0, 20.0};
    ASSERT_TRUE(isinf(cps_queue_p95_ms(&m, 10.0, 0)));
    ASSERT_TRUE(isinf(cps_queue_p95_ms(&m, 100.0, 1)));
    ASSERT_TRUE(isinf(cps_queue_p95_ms(&m, 250.0, 2)));
    m.routing = CPS_ROUTING_POOLED;
    ASSERT_TRUE(isinf(cps_queue_p95_ms(&m, 500.0, 5)));
    /* idle p95 is 49.96 ms: an SLO of 45 ms cannot be met by any count */
    ASSERT_NEAR(cps_queue_lambda_max(&m, 45.0, 10), 0.0, 0.0);
    m.routing = CPS_ROUTING_RANDOM;
    ASSERT_NEAR(cps_queue_lambda_max(&m, 45.0, 10), 0.0, 0.0);
}

/* The table agrees with the direct solution and sizes by it; the linear
 * shortcut for random routing picks the same count as a search would. */
static void test_table(void)
{
    for (int routing = 0; routing < 2; routing++) {
        struct cps_queue_model m = {(enum cps_routing)routing, 100.0, 20.0};
        struct cps_lambda_table table;
        ASSERT_EQ(cps_lambda_table_init(&table, &m, 100.0, 60), 0);
        for (int32_t c = 1; c <= 60; c += 7)
            ASSERT_NEAR(table.lambda_max[c], cps_queue_lambda_max(&m, 100.0, c), 1e-6);
        for (double lambda = 0.0; lambda < 3000.0; lambda += 37.3) {
            int32_t c = cps_lambda_table_pods_for(&table, lambda, 1, 60);
            /* smallest c that fits: c fits, c - 1 does not (unless at the bounds) */
            if (c < 60)
                ASSERT_TRUE(lambda <= table.lambda_max[c]);
            if (c > 1)
                ASSERT_TRUE(lambda > table.lambda_max[c - 1]);
        }
        /* exactly λmax(7) needs 7 pods; a hair more needs 8 */
        ASSERT_EQ(cps_lambda_table_pods_for(&table, table.lambda_max[7], 1, 60), 7);
        ASSERT_EQ(cps_lambda_table_pods_for(&table, table.lambda_max[7] * (1 + 1e-12), 1, 60), 8);
        /* beyond max: max */
        ASSERT_EQ(cps_lambda_table_pods_for(&table, 1e9, 1, 60), 60);
        /* min wins for small loads */
        ASSERT_EQ(cps_lambda_table_pods_for(&table, 1.0, 4, 60), 4);
        cps_lambda_table_release(&table);
    }
}

/* p95 rises with load and falls with pods (both routings). */
static void test_monotone(void)
{
    for (int routing = 0; routing < 2; routing++) {
        struct cps_queue_model m = {(enum cps_routing)routing, 100.0, 20.0};
        double previous = 0.0;
        for (double lambda = 10.0; lambda < 490.0; lambda += 40.0) {
            double p = cps_queue_p95_ms(&m, lambda, 5);
            ASSERT_TRUE(p > previous);
            previous = p;
            ASSERT_TRUE(cps_queue_p95_ms(&m, lambda, 6) < p);
        }
    }
}

int main(void)
{
    test_p95_check_values();
    test_lambda_max_check_values();
    CPS_RUN(test_edges);
    CPS_RUN(test_table);
    CPS_RUN(test_monotone);
    CPS_TEST_END();
}
