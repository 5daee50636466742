#include "queue_model.h"

#include <math.h>
#include <stdlib.h>

/* p95: the response time exceeded by 5 % of requests. */
#define P95_TAIL 0.05
/* ln(1 / 0.05): the p95 of an exponential distribution times its rate. */
#define LN_20 2.995732273553991
/* Relative precision of the bisections (docs/model.md §3 asks 1e-9). */
#define BISECT_REL_TOL 1e-12
#define BISECT_MAX_ITER 200
/* Below this relative difference θ and μ are treated as equal (limit form). */
#define THETA_EQ_REL 1e-9
#define MS_PER_S 1000.0

/* P(T > t) for M/M/c FCFS with Erlang C probability erlang_c (docs/model.md §3). */
static double pooled_tail(double mu, double theta, double erlang_c, double t)
{
    double no_wait = (1.0 - erlang_c) * exp(-mu * t);
    if (fabs(mu - theta) <= THETA_EQ_REL * mu)
        return no_wait + erlang_c * exp(-mu * t) * (1.0 + mu * t);
    return no_wait + erlang_c * (mu * exp(-theta * t) - theta * exp(-mu * t)) / (mu - theta);
}

/*
 * Erlang C (probability that an arrival waits) for c servers at offered load
 * a = λ/μ < c, through the stable Erlang B recurrence of docs/model.md §3.
 */
static double erlang_c(double a, int32_t c)
{
    double b = 1.0;
    for (int32_t j = 1; j <= c; j++)
        b = a * b / ((double)j + a * b);
    return (double)c * b / ((double)c - a * (1.0 - b));
}

/*
 * Pooled p95 in seconds (without base): the t where P(T > t) = 0.05, by
 * bisection. The tail is decreasing in t, so grow the upper bound until it
 * falls below 5 %, then halve the bracket to the relative tolerance.
 */
static double pooled_p95_s(double lambda, int32_t c, double mu)
{
    double a = lambda / mu;
    double cw = erlang_c(a, c);
    double theta = (double)c * mu - lambda;
    double lo = 0.0, hi = LN_20 / mu;
    int guard = 0;
    while (pooled_tail(mu, theta, cw, hi) > P95_TAIL && guard++ < BISECT_MAX_ITER)
        hi *= 2.0;
    for (int i = 0; i < BISECT_MAX_ITER && hi - lo > BISECT_REL_TOL * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (pooled_tail(mu, theta, cw, mid) > P95_TAIL)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

double cps_queue_p95_ms(const struct cps_queue_model *model, double lambda, int32_t c)
{
    double mu = model->service_rate;
    if (lambda <= 0.0)
        return model->base_latency_ms + MS_PER_S * LN_20 / mu;
    if (c <= 0 || lambda >= (double)c * mu)
        return INFINITY;
    if (model->routing == CPS_ROUTING_RANDOM)
        return model->base_latency_ms + MS_PER_S * LN_20 / (mu - lambda / (double)c);
    return model->base_latency_ms + MS_PER_S * pooled_p95_s(lambda, c, mu);
}

/*
 * λmax(c): closed form for random routing (p95 is base + ln20/(μ - λ/c));
 * bisection on λ for pooled routing, where p95 increases with λ.
 */
double cps_queue_lambda_max(const struct cps_queue_model *model, double slo_ms, int32_t c)
{
    double mu = model->service_rate;
    double budget_s = (slo_ms - model->base_latency_ms) / MS_PER_S;
    if (c <= 0 || budget_s <= 0.0 || LN_20 / mu > budget_s)
        return 0.0;
    if (model->routing == CPS_ROUTING_RANDOM) {
        double per_pod = mu - LN_20 / budget_s;
        return per_pod > 0.0 ? per_pod * (double)c : 0.0;
    }
    double lo = 0.0, hi = (double)c * mu;
    for (int i = 0; i < BISECT_MAX_ITER && hi - lo > BISECT_REL_TOL * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (cps_queue_p95_ms(model, mid, c) <= slo_ms)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int cps_lambda_table_init(struct cps_lambda_table *table, const struct cps_queue_model *model,
                          double slo_ms, int32_t max_c)
{
    table->max_c = max_c;
    table->lambda_max = malloc(sizeof(double) * ((size_t)max_c + 1));
    if (!table->lambda_max)
        return -1;
    table->lambda_max[0] = 0.0;
    table->linear_step = 0.0;
    if (model->routing == CPS_ROUTING_RANDOM) {
        double one = cps_queue_lambda_max(model, slo_ms, 1);
        table->linear_step = one;
        for (int32_t c = 1; c <= max_c; c++)
            table->lambda_max[c] = one * (double)c;
    } else {
        for (int32_t c = 1; c <= max_c; c++)
            table->lambda_max[c] = cps_queue_lambda_max(model, slo_ms, c);
    }
    return 0;
}

void cps_lambda_table_release(struct cps_lambda_table *table)
{
    if (!table)
        return;
    free(table->lambda_max);
    table->lambda_max = NULL;
    table->max_c = 0;
}

/*
 * λmax is non-decreasing in c, so binary search for the first c that fits.
 * With random routing λmax is linear in c: a division gives the answer,
 * checked against the table so rounding cannot move it by one.
 */
int32_t cps_lambda_table_pods_for(const struct cps_lambda_table *table, double lambda,
                                  int32_t lo, int32_t hi)
{
    if (hi > table->max_c)
        hi = table->max_c;
    if (lo > hi)
        return hi;
    if (lambda <= table->lambda_max[lo])
        return lo;
    if (!(lambda <= table->lambda_max[hi]))
        return hi;
    if (table->linear_step > 0.0) {
        double guess = ceil(lambda / table->linear_step);
        int32_t c = guess < (double)lo ? lo : guess > (double)hi ? hi : (int32_t)guess;
        while (c > lo && lambda <= table->lambda_max[c - 1])
            c--;
        while (c < hi && lambda > table->lambda_max[c])
            c++;
        return c;
    }
    while (hi - lo > 1) {
        int32_t mid = lo + (hi - lo) / 2;
        if (lambda <= table->lambda_max[mid])
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}
