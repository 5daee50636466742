/*
 * The tuner's pure parts (sim/tune.c): the candidate list is a function of
 * the seed alone (and extends itself), candidate 0 is the starting config,
 * candidates apply what they say, and the config fragment loads back into
 * exactly the target it was written from.
 */
#include <stdlib.h>

#include "config.h"
#include "cps_test.h"
#include "tune.h"

#define N_CANDIDATES 300
#define SAFE_RPS 62.553347 /* docs/model.md §9: λmax(1) at the defaults */

static struct cps_tune_candidate a[N_CANDIDATES], b[N_CANDIDATES], c[N_CANDIDATES];

static void test_candidates_deterministic(void)
{
    struct cps_target base;
    ASSERT_EQ(cps_target_init_defaults(&base), 0);
    cps_tune_candidates(&base, 7, N_CANDIDATES, a);
    cps_tune_candidates(&base, 7, N_CANDIDATES, b);
    ASSERT_TRUE(memcmp(a, b, sizeof a) == 0);
    /* a shorter list is a prefix of a longer one */
    memset(c, 0xff, sizeof c);
    cps_tune_candidates(&base, 7, N_CANDIDATES / 3, c);
    ASSERT_TRUE(memcmp(a, c, (N_CANDIDATES / 3) * sizeof a[0]) == 0);
    /* another seed, another list (candidate 0 aside) */
    cps_tune_candidates(&base, 8, N_CANDIDATES, c);
    ASSERT_TRUE(memcmp(a + 1, c + 1, (N_CANDIDATES - 1) * sizeof a[0]) != 0);
    cps_target_release(&base);
}

static void test_candidates_shape(void)
{
    struct cps_target base;
    ASSERT_EQ(cps_target_init_defaults(&base), 0);
    cps_tune_candidates(&base, 1, N_CANDIDATES, a);
    ASSERT_EQ(a[0].is_base, 1);
    int repeats = 0, out_of_range = 0, local_same_as_base = 0;
    for (size_t i = 1; i < N_CANDIDATES; i++) {
        ASSERT_EQ(a[i].is_base, 0);
        for (int d = 0; d < CPS_TUNE_DIMS; d++)
            out_of_range += a[i].level[d] >= cps_tune_levels((enum cps_tune_dim)d);
        for (size_t j = 1; j < i; j++)
            repeats += memcmp(a[i].level, a[j].level, CPS_TUNE_DIMS) == 0;
        if (i % 2 == 1)
            local_same_as_base += memcmp(a[i].level, a[0].level, CPS_TUNE_DIMS) == 0;
    }
    ASSERT_EQ(out_of_range, 0);
    ASSERT_EQ(repeats, 0);
    ASSERT_EQ(local_same_as_base, 0);
    /* every level of every dimension is tried somewhere */
    for (int d = 0; d < CPS_TUNE_DIMS; d++)
        for (size_t l = 0; l < cps_tune_levels((enum cps_tune_dim)d); l++) {
            int seen = 0;
            for (size_t i = 1; i < N_CANDIDATES && !seen; i++)
                seen = a[i].level[d] == l;
            if (!seen)
                CPS_FAIL_AT("dimension %d level %zu never drawn", d, l);
        }
    cps_target_release(&base);
}

/* Load a fragment as a whole config and return its defaults (NULL on error). */
static struct cps_config *load_fragment(const char *fragment)
{
    struct cps_err err;
    struct cps_config *config = cps_config_load_bytes(fragment, strlen(fragment), "fragment", &err);
    if (!config)
        fprintf(stderr, "  fragment: %d:%d: %s\n%s", err.line, err.col, err.message, fragment);
    return config;
}

static void assert_rules_equal(const struct cps_scaling_rules *x, const struct cps_scaling_rules *y)
{
    ASSERT_EQ(x->stabilization_window_seconds, y->stabilization_window_seconds);
    ASSERT_EQ(x->select_policy, y->select_policy);
    ASSERT_EQ(x->n_policies, y->n_policies);
    for (int i = 0; i < x->n_policies && i < y->n_policies; i++) {
        ASSERT_EQ(x->policies[i].type, y->policies[i].type);
        ASSERT_EQ(x->policies[i].value, y->policies[i].value);
        ASSERT_EQ(x->policies[i].period_seconds, y->policies[i].period_seconds);
    }
}

/* Every candidate's fragment is a valid config whose defaults are the
 * candidate's target; untouched keys keep their defaults. */
static void test_fragment_round_trip(void)
{
    struct cps_target base;
    ASSERT_EQ(cps_target_init_defaults(&base), 0);
    cps_tune_candidates(&base, 3, 64, a);
    for (size_t i = 0; i < 64; i++) {
        CPS_ROW_BEGIN();
        struct cps_target t = base;
        cps_tune_apply(&a[i], SAFE_RPS, &t);
        char *fragment = cps_tune_fragment(&t);
        ASSERT_TRUE(fragment != NULL);
        struct cps_config *config = fragment ? load_fragment(fragment) : NULL;
        ASSERT_TRUE(config != NULL);
        if (config) {
            const struct cps_target *d = &config->defaults;
            ASSERT_NEAR(d->policy.headroom_quantile, t.policy.headroom_quantile, 0);
            ASSERT_NEAR(d->policy.scale_down_quantile, t.policy.scale_down_quantile, 0);
            ASSERT_EQ(d->policy.volatility_halflife_ms, t.policy.volatility_halflife_ms);
            ASSERT_EQ(d->policy.seasonality, t.policy.seasonality);
            ASSERT_EQ(d->policy.trend, t.policy.trend);
            ASSERT_EQ(d->capacity_auto, t.capacity_auto);
            ASSERT_NEAR(d->capacity_rps_per_pod, t.capacity_rps_per_pod, 0);
            assert_rules_equal(&d->behavior.scale_up, &t.behavior.scale_up);
            assert_rules_equal(&d->behavior.scale_down, &t.behavior.scale_down);
            /* what tune does not search stays as the defaults say */
            ASSERT_EQ(d->policy.startup_ms, base.policy.startup_ms);
            ASSERT_EQ(d->min_replicas, base.min_replicas);
            ASSERT_NEAR(d->slo_latency_p95_ms, base.slo_latency_p95_ms, 0);
        }
        cps_config_free(config);
        free(fragment);
        CPS_ROW_END(i == 0 ? "fragment of candidate 0" : "fragment of a candidate");
    }
    cps_target_release(&base);
}

/* Candidate 0 changes nothing; others set what their levels say. */
static void test_apply(void)
{
    struct cps_target base;
    ASSERT_EQ(cps_target_init_defaults(&base), 0);
    struct cps_tune_candidate zero = {{0}, 1};
    struct cps_target t = base;
    cps_tune_apply(&zero, SAFE_RPS, &t);
    ASSERT_TRUE(memcmp(&t.policy, &base.policy, sizeof t.policy) == 0);
    ASSERT_TRUE(memcmp(&t.behavior, &base.behavior, sizeof t.behavior) == 0);
    ASSERT_EQ(t.capacity_auto, 1);
    /* the highest level of every dimension */
    struct cps_tune_candidate top = {{0}, 0};
    for (int d = 0; d < CPS_TUNE_DIMS; d++)
        top.level[d] = (uint8_t)(cps_tune_levels((enum cps_tune_dim)d) - 1);
    t = base;
    cps_tune_apply(&top, SAFE_RPS, &t);
    ASSERT_NEAR(t.policy.headroom_quantile, 0.9999, 0);  /* the config's upper bound */
    ASSERT_EQ(t.behavior.scale_down.n_policies, 1);
    ASSERT_EQ(t.behavior.scale_down.policies[0].type, CPS_SCALING_PERCENT);
    ASSERT_EQ(t.behavior.scale_up.n_policies, 2);
    ASSERT_EQ(t.behavior.scale_up.select_policy, CPS_SELECT_MAX);
    /* capacity: a share of the safe rate, 4 significant digits */
    ASSERT_EQ(t.capacity_auto, 0);
    ASSERT_TRUE(t.capacity_rps_per_pod > 0 && t.capacity_rps_per_pod < SAFE_RPS);
    char text[32];
    snprintf(text, sizeof text, "%.4g", t.capacity_rps_per_pod);
    ASSERT_NEAR(strtod(text, NULL), t.capacity_rps_per_pod, 0);
    /* level 0 of capacity keeps the base's setting */
    top.level[CPS_TUNE_CAPACITY] = 0;
    t = base;
    cps_tune_apply(&top, SAFE_RPS, &t);
    ASSERT_EQ(t.capacity_auto, 1);
    cps_target_release(&base);
}

int main(void)
{
    CPS_RUN(test_candidates_deterministic);
    CPS_RUN(test_candidates_shape);
    test_fragment_round_trip();
    CPS_RUN(test_apply);
    CPS_TEST_END();
}
