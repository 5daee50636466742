/*
 * World variants (docs/model.md §10) against independent computations:
 *  - M/D/1: the approximate p95 against a discrete-event simulation
 *    (Lindley's recursion), and the mean response time of the approximate
 *    distribution against Pollaczek-Khinchine's, by integrating the tail;
 *  - lognormal: the tail against a brute-force quadrature in s, its p95 at
 *    ρ = 0 against the lognormal quantile, CV = 1 against exponential where
 *    the approximation reduces to it (ρ -> 1);
 *  - capacity: p95 at λmax is the SLO; exponential λmax is §9's;
 *  - drift μ(t), jitter streams (same seed same run, another seed another
 *    run, one policy's draws do not move another's);
 *  - the worst rolling window on hand-computed traces.
 */
#include <math.h>
#include <stdlib.h>

#include "cps_test.h"
#include "rng.h"
#include "service_times.h"
#include "world.h"
#include "world_variant.h"

#define LN_20 2.995732273553991

static void default_setup(struct cps_sim_setup *s, const char *policies)
{
    memset(s, 0, sizeof *s);
    s->world.service_rate = 100;
    s->world.base_latency_ms = 20;
    s->world.startup_s = 30;
    s->world.price = 0.05;
    s->world.scale = 1;
    s->world.routing = CPS_ROUTING_RANDOM;
    s->world.interval_s = 15;
    s->world.window_s = 60;
    s->world.lag_s = 15;
    s->world.hpa_target = 0.7;
    s->slo_ms = 100;
    s->min_replicas = 1;
    s->max_replicas = 1000;
    cps_sim_variant_defaults(&s->variant);
    struct cps_err err;
    if (cps_sim_parse_policies(policies, s->policies, &s->n_policies, &err) < 0)
        fprintf(stderr, "bad policy list %s: %s\n", policies, err.message);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p95 of the response time of an M/D/1 queue (μ = 1) by simulation. */
static double md1_simulated_p95(double rho, size_t n)
{
    uint64_t rng = 12345;
    double *resp = malloc(n * sizeof *resp), wait = 0.0;
    for (size_t i = 0; i < n; i++) {
        resp[i] = wait + 1.0;
        double gap = -log(cps_rng_uniform_open(&rng)) / rho;
        wait = fmax(0.0, wait + 1.0 - gap);
    }
    qsort(resp, n, sizeof *resp, cmp_double);
    double p95 = resp[(size_t)(0.95 * (double)n)];
    free(resp);
    return p95;
}

static void test_deterministic_against_simulation(void)
{
    struct cps_service_times det = {CPS_SERVICE_DETERMINISTIC, 0.0};
    static const double rhos[] = {0.3, 0.5, 0.8};
    for (size_t i = 0; i < 3; i++) {
        double approx = cps_service_p95_unit(&det, rhos[i]);
        double simulated = md1_simulated_p95(rhos[i], 400000);
        /* the exponential-wait approximation is a little conservative for M/D/1 */
        ASSERT_TRUE(approx >= 0.98 * simulated);
        ASSERT_TRUE(approx <= 1.15 * simulated);
    }
    /* below ρ = 0.05 no more than 5 % wait: p95 is one service time */
    ASSERT_NEAR(cps_service_p95_unit(&det, 0.04), 1.0, 1e-12);
}

/* ∫ P(T > t) dt = E[T]: 1 + ρ (1 + cv²) / (2 (1 − ρ)) by Pollaczek-Khinchine. */
static void test_mean_is_pollaczek_khinchine(void)
{
    struct cps_service_times kinds[] = {{CPS_SERVICE_DETERMINISTIC, 0.0},
                                        {CPS_SERVICE_LOGNORMAL, 2.0},
                                        {CPS_SERVICE_LOGNORMAL, 0.5}};
    static const double rhos[] = {0.3, 0.7};
    for (size_t k = 0; k < 3; k++)
        for (size_t r = 0; r < 2; r++) {
            double rho = rhos[r], cv = kinds[k].cv;
            double expected = 1.0 + rho * (1.0 + cv * cv) / (2.0 * (1.0 - rho));
            double h = 0.01, sum = 0.0;
            for (double t = h / 2; t < 300.0; t += h)
                sum += cps_service_tail(&kinds[k], rho, t) * h;
            ASSERT_NEAR(sum, expected, 2e-3 * expected);
        }
}

/* P(T > t) = P(S > t) + ρ ∫₀ᵗ f(s) e^(−(t−s)/m) ds, here by the midpoint
 * rule in s with a million points. */
static double brute_lognormal_tail(double cv, double rho, double t)
{
    double s2 = log(1.0 + cv * cv), sigma = sqrt(s2), loc = -s2 / 2;
    double m = (1.0 + cv * cv) / (2.0 * (1.0 - rho));
    double tail = 0.5 * erfc((log(t) - loc) / (sigma * sqrt(2.0)));
    size_t n = 1000000;
    double h = t / (double)n, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s = (i + 0.5) * h, z = (log(s) - loc) / sigma;
        sum += exp(-0.5 * z * z) / (s * sigma * 2.5066282746310002) * exp(-(t - s) / m) * h;
    }
    return tail + rho * sum;
}

static void test_lognormal_tail(void)
{
    struct cps_service_times ln2 = {CPS_SERVICE_LOGNORMAL, 2.0};
    static const double points[][2] = {{0.5, 3.0}, {0.8, 10.0}, {0.2, 1.5}};
    for (size_t i = 0; i < 3; i++) {
        double expected = brute_lognormal_tail(2.0, points[i][0], points[i][1]);
        ASSERT_NEAR(cps_service_tail(&ln2, points[i][0], points[i][1]), expected, 1e-5);
    }
    /* ρ = 0: the lognormal's own 95th percentile, exp(loc + 1.6448536 σ) */
    double s2 = log(5.0), quantile = exp(-s2 / 2 + 1.6448536269514722 * sqrt(s2));
    ASSERT_NEAR(cps_service_p95_unit(&ln2, 0.0), quantile, 1e-7 * quantile);
    /* the p95 is where the tail is 5 % */
    ASSERT_NEAR(cps_service_tail(&ln2, 0.6, cps_service_p95_unit(&ln2, 0.6)), 0.05, 1e-9);
}

/* lognormal:1 has the exponential's first two moments; the approximation's
 * wait is then M/M/1's, and it dominates as ρ -> 1. */
static void test_lognormal_cv1_near_exponential(void)
{
    struct cps_service_times ln1 = {CPS_SERVICE_LOGNORMAL, 1.0};
    struct cps_service_table table;
    cps_service_table_init(&table, &ln1);
    ASSERT_NEAR(cps_service_g(&table, 1.0), LN_20, 1e-12);
    ASSERT_NEAR(cps_service_g(&table, 0.99), LN_20, 0.01 * LN_20);
    ASSERT_NEAR(cps_service_p95_unit(&ln1, 0.9) * 0.1, LN_20, 0.03 * LN_20);
    ASSERT_NEAR(cps_service_p95_unit(&ln1, 0.5) * 0.5, LN_20, 0.08 * LN_20);
}

static void test_capacity(void)
{
    struct cps_sim_variant v;
    cps_sim_variant_defaults(&v);
    struct cps_variant_state state;
    cps_variant_init(&state, &v, 100, 20, 100);
    ASSERT_NEAR(state.lambda_max_1, 62.553347, 1e-6); /* docs/model.md §9 */
    ASSERT_NEAR(cps_variant_p95_ms(&state, 50, 1, 100), 79.914645, 1e-6);
    v.service = (struct cps_service_times){CPS_SERVICE_DETERMINISTIC, 0.0};
    cps_variant_init(&state, &v, 100, 20, 100);
    double det = state.lambda_max_1;
    ASSERT_TRUE(det > 62.553347 && det < 100.0); /* less variable service: more capacity */
    ASSERT_NEAR(cps_variant_p95_ms(&state, det * 3, 3, 100), 100.0, 1e-6);
    /* by hand: ρ = det/100 solves 10 (1 + ln(ρ/0.05) / (2 (1 − ρ))) = 80 */
    double rho = det / 100.0;
    ASSERT_NEAR(10.0 * (1.0 + log(rho / 0.05) / (2.0 * (1.0 - rho))), 80.0, 1e-6);
    v.service = (struct cps_service_times){CPS_SERVICE_LOGNORMAL, 2.0};
    cps_variant_init(&state, &v, 100, 20, 100);
    ASSERT_TRUE(state.lambda_max_1 > 0.0 && state.lambda_max_1 < 62.553347);
    ASSERT_NEAR(cps_variant_p95_ms(&state, state.lambda_max_1, 1, 100), 100.0, 1e-6);
    ASSERT_TRUE(isinf(cps_variant_p95_ms(&state, 100, 1, 100)));
}

static void test_drift(void)
{
    struct cps_sim_variant v;
    cps_sim_variant_defaults(&v);
    v.capacity_drift = 0.2;
    struct cps_variant_state state;
    cps_variant_init(&state, &v, 100, 20, 100);
    ASSERT_NEAR(cps_variant_mu_at(&state, 0), 100.0, 1e-12);
    ASSERT_NEAR(cps_variant_mu_at(&state, 21600), 120.0, 1e-9);
    ASSERT_NEAR(cps_variant_mu_at(&state, 64800), 80.0, 1e-9);
    ASSERT_NEAR(cps_variant_mu_at(&state, 86400 + 7200), 100.0 * (1 + 0.2 * 0.5), 1e-9);
    /* at 80/s one pod fits 80 − ln 20 / 0.08 = 42.553347 req/s */
    double load = cps_variant_load(&state, 42.553347, 64800);
    ASSERT_NEAR(load, 62.553347, 1e-5);
}

struct run_figures {
    double cost[4], pod_seconds[4];
};

/* A square wave of load through the engine. */
static struct run_figures run_square(const char *policies, double jitter_s, uint64_t seed)
{
    struct cps_sim_setup s;
    default_setup(&s, policies);
    s.variant.startup_jitter_s = jitter_s;
    s.variant.world_seed = seed;
    struct run_figures f;
    memset(&f, 0, sizeof f);
    struct cps_err err;
    struct cps_sim *sim = cps_sim_new(&s, &err);
    if (!sim)
        return f;
    for (int i = 0; i < 40; i++)
        cps_sim_feed(sim, i % 2 ? 600 : 60, 0.05, 300, &err);
    struct cps_sim_result r[CPS_SIM_MAX_POLICIES];
    cps_sim_finish(sim, r, &err);
    for (size_t i = 0; i < s.n_policies && i < 4; i++) {
        f.cost[i] = r[i].cost_usd;
        f.pod_seconds[i] = r[i].pod_seconds;
    }
    cps_sim_free(sim);
    return f;
}

static void test_jitter_streams(void)
{
    uint64_t stream = cps_variant_stream(1, 0);
    int seen_zero = 0, seen_top = 0, in_range = 1;
    for (int i = 0; i < 10000; i++) {
        int64_t u = cps_variant_jitter(&stream, 9);
        seen_zero |= u == 0;
        seen_top |= u == 9;
        in_range &= u >= 0 && u <= 9;
    }
    ASSERT_TRUE(seen_zero && seen_top && in_range);
    ASSERT_TRUE(cps_variant_stream(1, 0) != cps_variant_stream(1, 1));
    ASSERT_TRUE(cps_variant_stream(1, 0) != cps_variant_stream(2, 0));
    struct run_figures a = run_square("hpa,oracle", 90, 1), b = run_square("hpa,oracle", 90, 1);
    ASSERT_EQ(a.cost[0], b.cost[0]);
    ASSERT_EQ(a.cost[1], b.cost[1]);
    struct run_figures c = run_square("hpa,oracle", 90, 2);
    ASSERT_TRUE(c.pod_seconds[0] != a.pod_seconds[0]);
    ASSERT_TRUE(c.pod_seconds[1] != a.pod_seconds[1]);
    struct run_figures none = run_square("hpa,oracle", 0, 1);
    ASSERT_TRUE(none.pod_seconds[0] != a.pod_seconds[0]);
    /* the policy at position 1 has the same stream whoever is at 0 */
    struct run_figures x = run_square("static:3,hpa", 90, 1), y = run_square("static:9,hpa", 90, 1);
    ASSERT_EQ(x.pod_seconds[1], y.pod_seconds[1]);
}

/* static:1 (62.553347 req/s fit) over hours of 50 req/s, except `hot`
 * seconds at 100 req/s at the start of hour 1; worst window of `hours`. */
static double worst_window(double window_s, int64_t seconds, int64_t hot_from, int64_t hot)
{
    struct cps_sim_setup s;
    default_setup(&s, "static:1");
    s.max_replicas = 1;
    s.variant.budget_window_s = window_s;
    struct cps_err err;
    struct cps_sim *sim = cps_sim_new(&s, &err);
    if (!sim)
        return NAN;
    cps_sim_feed(sim, 50, 0.05, hot_from, &err);
    cps_sim_feed(sim, 100, 0.05, hot, &err);
    cps_sim_feed(sim, 50, 0.05, seconds - hot_from - hot, &err);
    struct cps_sim_result r;
    cps_sim_finish(sim, &r, &err);
    cps_sim_free(sim);
    return r.worst_window_violation_pct;
}

static void test_worst_window(void)
{
    /* hour 1: 1800 s at 100, 1800 s at 50: 180000 of 270000 requests violate */
    ASSERT_NEAR(worst_window(3600, 3 * 3600, 3600, 1800), 100.0 * 180000 / 270000, 1e-9);
    /* two-hour windows: 180000 / (180000 + 270000) */
    ASSERT_NEAR(worst_window(7200, 3 * 3600, 3600, 1800), 40.0, 1e-9);
    /* a window longer than the trace: the whole trace, 180000 / 630000 */
    ASSERT_NEAR(worst_window(7 * 86400, 3 * 3600, 3600, 1800), 100.0 * 180000 / 630000, 1e-9);
    /* the last, partial hour is a bucket of its own: 30 min all at 100 */
    ASSERT_NEAR(worst_window(3600, 2 * 3600 + 1800, 2 * 3600, 1800), 100.0, 1e-9);
    /* hot seconds straddling two hours: the worst one-hour window ends at
     * a whole hour, so 900 s of 100 in hour 0 and 900 s in hour 1 */
    double per_hour = 100.0 * 90000 / (2700 * 50 + 90000);
    ASSERT_NEAR(worst_window(3600, 3 * 3600, 2700, 1800), per_hour, 1e-9);
}

static void test_bad_variants(void)
{
    struct cps_sim_setup s;
    struct cps_err err;
    default_setup(&s, "hpa");
    s.variant.capacity_drift = 1.0;
    ASSERT_TRUE(cps_sim_new(&s, &err) == NULL);
    ASSERT_CONTAINS(err.message, "--capacity-drift");
    default_setup(&s, "hpa");
    s.world.routing = CPS_ROUTING_POOLED;
    s.variant.service.kind = CPS_SERVICE_DETERMINISTIC;
    ASSERT_TRUE(cps_sim_new(&s, &err) == NULL);
    ASSERT_CONTAINS(err.message, "pooled");
    default_setup(&s, "hpa");
    s.variant.budget_window_s = 5400;
    ASSERT_TRUE(cps_sim_new(&s, &err) == NULL);
    struct cps_service_times st;
    ASSERT_EQ(cps_service_times_parse("lognormal:0", &st), -1);
    /* under 0.01: ln(1 + CV^2) goes to 0 and the queue with it (1e-9 cost
     * 11.5 % less than deterministic); 0.01 is the least accepted */
    ASSERT_EQ(cps_service_times_parse("lognormal:1e-9", &st), -1);
    ASSERT_EQ(cps_service_times_parse("lognormal:0.0099", &st), -1);
    ASSERT_EQ(cps_service_times_parse("lognormal:0.01", &st), 0);
    ASSERT_EQ(cps_service_times_parse("lognormal:", &st), -1);
    ASSERT_EQ(cps_service_times_parse("lognormal:2x", &st), -1);
    ASSERT_EQ(cps_service_times_parse("gamma", &st), -1);
    ASSERT_EQ(cps_service_times_parse("lognormal:1.5", &st), 0);
    ASSERT_NEAR(st.cv, 1.5, 0);
}

int main(void)
{
    CPS_RUN(test_deterministic_against_simulation);
    CPS_RUN(test_mean_is_pollaczek_khinchine);
    CPS_RUN(test_lognormal_tail);
    CPS_RUN(test_lognormal_cv1_near_exponential);
    CPS_RUN(test_capacity);
    CPS_RUN(test_drift);
    CPS_RUN(test_jitter_streams);
    CPS_RUN(test_worst_window);
    CPS_RUN(test_bad_variants);
    CPS_TEST_END();
}
