#include "service_times.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"

#define P95_TAIL 0.05
#define LN_20 2.995732273553991
#define MS_PER_S 1000.0
#define SQRT_2 1.4142135623730951
#define SQRT_2PI 2.5066282746310002
/* Lognormal quadrature: Simpson over u = ln s in [m - 8σ, min(ln t, m + 8σ)]. */
#define QUAD_INTERVALS 256
#define QUAD_SIGMAS 8.0
/* Bisection on t: stop at hi - lo <= 1e-10 hi; on ρ: at hi - lo <= 1e-12. */
#define T_REL_TOL 1e-10
#define RHO_TOL 1e-12
#define BISECT_MAX_ITER 200

int cps_service_times_parse(const char *text, struct cps_service_times *out)
{
    struct cps_service_times st = {CPS_SERVICE_EXPONENTIAL, 1.0};
    if (strcmp(text, "exponential") == 0) {
        st.kind = CPS_SERVICE_EXPONENTIAL;
    } else if (strcmp(text, "deterministic") == 0) {
        st.kind = CPS_SERVICE_DETERMINISTIC;
        st.cv = 0.0;
    } else if (strncmp(text, "lognormal:", 10) == 0) {
        char *end = NULL;
        errno = 0;
        double cv = cps_strtod_decimal(text + 10, &end);
        if (errno || end == text + 10 || *end || !(cv >= CPS_SERVICE_CV_MIN) ||
            cv > CPS_SERVICE_CV_MAX)
            return -1;
        st.kind = CPS_SERVICE_LOGNORMAL;
        st.cv = cv;
    } else {
        return -1;
    }
    *out = st;
    return 0;
}

int cps_service_times_valid(const char *text)
{
    struct cps_service_times st;
    return text && cps_service_times_parse(text, &st) == 0;
}

void cps_service_times_format(const struct cps_service_times *st, char *buf, unsigned long size)
{
    switch (st->kind) {
    case CPS_SERVICE_DETERMINISTIC: snprintf(buf, size, "deterministic"); break;
    case CPS_SERVICE_LOGNORMAL: snprintf(buf, size, "lognormal:%g", st->cv); break;
    default: snprintf(buf, size, "exponential"); break;
    }
}

/* Mean of W | W > 0 at μ = 1: the Pollaczek-Khinchine mean wait over ρ. */
static double conditional_wait(const struct cps_service_times *st, double rho)
{
    double cv2 = st->kind == CPS_SERVICE_DETERMINISTIC ? 0.0 : st->cv * st->cv;
    if (st->kind == CPS_SERVICE_EXPONENTIAL)
        cv2 = 1.0;
    return (1.0 + cv2) / (2.0 * (1.0 - rho));
}

/*
 * Lognormal with mean 1: σ² = ln(1 + cv²), location −σ²/2. The convolution
 * integral in u = ln s by composite Simpson (fixed 256 intervals over
 * ±8σ), which keeps the result a deterministic function of (ρ, t).
 */
static double lognormal_tail(double cv, double rho, double wait_mean, double t)
{
    double s2 = log(1.0 + cv * cv), sigma = sqrt(s2), loc = -0.5 * s2;
    if (t <= 0.0)
        return 1.0;
    double lt = log(t);
    double tail = 0.5 * erfc((lt - loc) / (sigma * SQRT_2));
    double lo = loc - QUAD_SIGMAS * sigma, hi = loc + QUAD_SIGMAS * sigma;
    if (lt < hi)
        hi = lt;
    if (hi <= lo || rho <= 0.0)
        return tail;
    double h = (hi - lo) / QUAD_INTERVALS, sum = 0.0;
    for (int i = 0; i <= QUAD_INTERVALS; i++) {
        double u = lo + h * i, z = (u - loc) / sigma;
        double f = exp(-0.5 * z * z - (t - exp(u)) / wait_mean) / (sigma * SQRT_2PI);
        double w = (i == 0 || i == QUAD_INTERVALS) ? 1.0 : (i % 2 ? 4.0 : 2.0);
        sum += w * f;
    }
    return tail + rho * sum * h / 3.0;
}

double cps_service_tail(const struct cps_service_times *st, double rho, double t)
{
    double m = conditional_wait(st, rho);
    switch (st->kind) {
    case CPS_SERVICE_DETERMINISTIC:
        return t < 1.0 ? 1.0 : rho * exp(-(t - 1.0) / m);
    case CPS_SERVICE_LOGNORMAL:
        return lognormal_tail(st->cv, rho, m, t);
    default: /* exponential: the M/M/1 response time */
        return exp(-(1.0 - rho) * t);
    }
}

/*
 * t₉₅ at μ = 1. Closed forms for exponential (ln 20 / (1 − ρ)) and
 * deterministic (1 + m ln(ρ / 0.05) when ρ > 0.05, else 1); lognormal by
 * bisection: hi from 1 doubled while the tail exceeds 5 %, then halve
 * [lo, hi] until hi − lo <= 1e-10 hi; the answer is the midpoint.
 */
double cps_service_p95_unit(const struct cps_service_times *st, double rho)
{
    if (st->kind == CPS_SERVICE_EXPONENTIAL)
        return LN_20 / (1.0 - rho);
    if (st->kind == CPS_SERVICE_DETERMINISTIC)
        return rho > P95_TAIL ? 1.0 + conditional_wait(st, rho) * log(rho / P95_TAIL) : 1.0;
    double lo = 0.0, hi = 1.0;
    for (int i = 0; i < BISECT_MAX_ITER && cps_service_tail(st, rho, hi) > P95_TAIL; i++)
        hi *= 2.0;
    for (int i = 0; i < BISECT_MAX_ITER && hi - lo > T_REL_TOL * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (cps_service_tail(st, rho, mid) > P95_TAIL)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* G at ρ = 1: the wait dominates, t₉₅ → m ln 20. */
static double g_at_one(const struct cps_service_times *st)
{
    double cv2 = st->kind == CPS_SERVICE_EXPONENTIAL ? 1.0 : st->cv * st->cv;
    return LN_20 * (1.0 + cv2) / 2.0;
}

void cps_service_table_init(struct cps_service_table *table, const struct cps_service_times *st)
{
    table->st = *st;
    for (int i = 0; i < CPS_SERVICE_GRID; i++) {
        double rho = (double)i / CPS_SERVICE_GRID;
        table->g[i] = st->kind == CPS_SERVICE_LOGNORMAL
                          ? (1.0 - rho) * cps_service_p95_unit(st, rho)
                          : 0.0; /* the other kinds are evaluated exactly */
    }
    table->g[CPS_SERVICE_GRID] = g_at_one(st);
}

double cps_service_g(const struct cps_service_table *table, double rho)
{
    const struct cps_service_times *st = &table->st;
    if (st->kind == CPS_SERVICE_EXPONENTIAL)
        return LN_20;
    if (rho >= 1.0)
        return table->g[CPS_SERVICE_GRID];
    if (rho < 0.0)
        rho = 0.0;
    if (st->kind == CPS_SERVICE_DETERMINISTIC)
        return (1.0 - rho) * cps_service_p95_unit(st, rho);
    double x = rho * CPS_SERVICE_GRID;
    int i = (int)x;
    if (i >= CPS_SERVICE_GRID)
        i = CPS_SERVICE_GRID - 1;
    double frac = x - (double)i;
    return table->g[i] + frac * (table->g[i + 1] - table->g[i]);
}

/*
 * Exponential: μ − ln 20 / b (the default world's formula). Otherwise
 * bisection on ρ in [0, 1]: lo moves to mid when G(mid) <= μ b (1 − mid),
 * until hi − lo <= 1e-12; the answer is lo · μ.
 */
double cps_service_lambda_max_per_pod(const struct cps_service_table *table, double mu,
                                      double base_ms, double slo_ms)
{
    double budget_s = (slo_ms - base_ms) / MS_PER_S;
    if (!(mu > 0.0) || budget_s <= 0.0)
        return 0.0;
    double room = mu * budget_s;
    if (cps_service_g(table, 0.0) > room)
        return 0.0;
    if (table->st.kind == CPS_SERVICE_EXPONENTIAL) {
        double per_pod = mu - LN_20 / budget_s;
        return per_pod > 0.0 ? per_pod : 0.0;
    }
    double lo = 0.0, hi = 1.0;
    for (int i = 0; i < BISECT_MAX_ITER && hi - lo > RHO_TOL; i++) {
        double mid = 0.5 * (lo + hi);
        if (cps_service_g(table, mid) <= room * (1.0 - mid))
            lo = mid;
        else
            hi = mid;
    }
    return lo * mu;
}
