/*
 * sim/tune_score.c: the order that picks tune's winner (a shard and the
 * merge must agree on it) and the figures' round trip through shard JSON.
 */
#include <stdio.h>
#include <string.h>

#include "cps_test.h"
#include "tune_score.h"

#define BUDGET 1.0

/* Two candidates' training figures on one trace (oracle cost 1), and
 * whether the first goes before the second. */
static const struct {
    const char *name;
    double a_violation, a_cost;
    size_t ia;
    double b_violation, b_cost;
    size_t ib;
    int a_first;
} orders[] = {
    {"feasible beats cheaper infeasible", 0.5, 9.0, 5, 2.0, 1.0, 1, 1},
    {"infeasible: less excess first", 3.0, 9.0, 5, 4.0, 1.0, 1, 1},
    {"feasible: cheaper first", 0.5, 2.0, 5, 0.9, 3.0, 1, 1},
    {"a tie goes to the lower index", 0.5, 2.0, 5, 0.5, 2.0, 1, 0},
    {"a tie goes to the lower index (reversed)", 0.5, 2.0, 1, 0.5, 2.0, 5, 1},
};

static void test_score_order(void)
{
    struct cps_tune_figures oracle = {.cost_usd = 1.0};
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++) {
        CPS_ROW_BEGIN();
        struct cps_tune_figures a = {.cost_usd = orders[i].a_cost,
                                     .violation_pct = orders[i].a_violation};
        struct cps_tune_figures b = {.cost_usd = orders[i].b_cost,
                                     .violation_pct = orders[i].b_violation};
        struct cps_tune_score sa = cps_tune_score_of(&a, &oracle, 1, BUDGET);
        struct cps_tune_score sb = cps_tune_score_of(&b, &oracle, 1, BUDGET);
        ASSERT_EQ(cps_tune_score_better(&sa, orders[i].ia, &sb, orders[i].ib),
                  orders[i].a_first);
        ASSERT_EQ(cps_tune_score_better(&sb, orders[i].ib, &sa, orders[i].ia),
                  !orders[i].a_first);
        CPS_ROW_END(orders[i].name);
    }
}

static void test_figures_round_trip(void)
{
    struct cps_tune_figures f = {1.25, 0.5, 0.75, 3.5, 1e6, 12, 34, 9, 86400}, g;
    memset(&g, 0, sizeof g);
    json_t *o = cps_tune_figures_json(&f);
    ASSERT_EQ(cps_tune_figures_from_json(o, &g), 0);
    ASSERT_TRUE(memcmp(&f, &g, sizeof f) == 0);
    json_object_del(o, "peak_pods");
    ASSERT_EQ(cps_tune_figures_from_json(o, &g), -1);
    json_decref(o);
}

int main(void)
{
    test_score_order();
    CPS_RUN(test_figures_round_trip);
    CPS_TEST_END();
}
