#include "world_variant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define TWO_PI 6.283185307179586
#define PERCENT 100.0
/* Mixes a policy's position into the seed (an odd 64-bit constant). */
#define STREAM_MIX 0xD1B54A32D192ED03ULL

void cps_sim_variant_defaults(struct cps_sim_variant *v)
{
    memset(v, 0, sizeof *v);
    v->service.kind = CPS_SERVICE_EXPONENTIAL;
    v->service.cv = 1.0;
    v->world_seed = 1;
    v->budget_window_s = CPS_BUDGET_WINDOW_DEFAULT_S;
}

int cps_sim_variant_check(const struct cps_sim_variant *v, enum cps_routing routing,
                          struct cps_err *err)
{
    if (!(v->capacity_drift >= 0.0) || !(v->capacity_drift < 1.0))
        return cps_err_set(err, "sim", 0, 0, "--capacity-drift must be in [0, 1)");
    if (!(v->startup_jitter_s >= 0.0) || v->startup_jitter_s > CPS_VARIANT_DAY_S)
        return cps_err_set(err, "sim", 0, 0, "--startup-jitter must be in [0, 1d]");
    double w = v->budget_window_s;
    if (w != 0.0 && (!(w >= CPS_BUDGET_BUCKET_S) || w > CPS_BUDGET_WINDOW_MAX_S ||
                     fmod(w, CPS_BUDGET_BUCKET_S) != 0.0))
        return cps_err_set(err, "sim", 0, 0, "--budget-window must be a whole number of hours in "
                           "[1h, 366d]");
    if (v->service.kind == CPS_SERVICE_LOGNORMAL &&
        (!(v->service.cv >= CPS_SERVICE_CV_MIN) || v->service.cv > CPS_SERVICE_CV_MAX))
        return cps_err_set(err, "sim", 0, 0, "--service-times lognormal CV must be in [%g, %g]",
                           CPS_SERVICE_CV_MIN, CPS_SERVICE_CV_MAX);
    if (routing == CPS_ROUTING_POOLED && v->service.kind != CPS_SERVICE_EXPONENTIAL)
        return cps_err_set(err, "sim", 0, 0, "--service-times: pooled routing is modelled for "
                           "exponential service times only "
                           "(docs/model.md §10); use --routing random");
    if (routing == CPS_ROUTING_POOLED && v->capacity_drift > 0.0)
        return cps_err_set(err, "sim", 0, 0, "--capacity-drift: pooled routing is modelled "
                           "without drift only (docs/model.md §10); "
                           "use --routing random");
    return 0;
}

void cps_variant_init(struct cps_variant_state *v, const struct cps_sim_variant *settings,
                      double mu, double base_ms, double slo_ms)
{
    memset(v, 0, sizeof *v);
    cps_service_table_init(&v->table, &settings->service);
    v->mu = v->mu_now = mu;
    v->base_ms = base_ms;
    v->slo_ms = slo_ms;
    v->drift = settings->capacity_drift;
    v->lambda_max_1 = cps_service_lambda_max_per_pod(&v->table, mu, base_ms, slo_ms);
}

double cps_variant_mu_at(const struct cps_variant_state *v, int64_t k)
{
    return v->mu * (1.0 + v->drift * sin(TWO_PI * (double)k / CPS_VARIANT_DAY_S));
}

double cps_variant_load(struct cps_variant_state *v, double lambda, int64_t k)
{
    v->mu_now = cps_variant_mu_at(v, k);
    if (v->lambda_max_1 <= 0.0)
        return lambda;
    double now = cps_service_lambda_max_per_pod(&v->table, v->mu_now, v->base_ms, v->slo_ms);
    if (now <= 0.0)
        return lambda > 0.0 ? INFINITY : 0.0;
    return lambda * (v->lambda_max_1 / now);
}

/* The three cases of docs/model.md §3, then base + 1000 G(ρ) / (μ (1 − ρ)). */
double cps_variant_p95_ms(const struct cps_variant_state *v, double lambda, int32_t c,
                          double mu)
{
    if (lambda <= 0.0)
        return v->base_ms + 1000.0 * cps_service_g(&v->table, 0.0) / mu;
    if (c <= 0 || lambda >= (double)c * mu)
        return INFINITY;
    double rho = lambda / ((double)c * mu);
    return v->base_ms + 1000.0 * cps_service_g(&v->table, rho) / (mu * (1.0 - rho));
}

/*
 * t = seed XOR ((position + 1) × 0xD1B54A32D192ED03); the stream's state
 * starts at splitmix64's first output from state t, so neighbouring
 * positions do not share a shifted sequence.
 */
uint64_t cps_variant_stream(uint64_t seed, size_t position)
{
    uint64_t t = seed ^ ((uint64_t)(position + 1) * STREAM_MIX);
    return cps_rng_next(&t);
}

int64_t cps_variant_jitter(uint64_t *stream, int64_t d)
{
    if (d <= 0)
        return 0;
    int64_t u = (int64_t)(cps_rng_uniform(stream) * (double)(d + 1));
    return u > d ? d : u;
}

/* ---- worst rolling budget window ------------------------------------------ */

int cps_budget_init(struct cps_budget *b, size_t n_tracks, double window_s)
{
    memset(b, 0, sizeof *b);
    if (window_s <= 0.0)
        window_s = CPS_BUDGET_WINDOW_DEFAULT_S;
    b->hours = (int64_t)llround(window_s / CPS_BUDGET_BUCKET_S);
    if (b->hours < 1)
        b->hours = 1;
    b->n_tracks = n_tracks;
    size_t h = (size_t)b->hours, n = n_tracks ? n_tracks : 1;
    b->requests = calloc(h, sizeof(double));
    b->violating = calloc(h * n, sizeof(double));
    b->last_violating = calloc(n, sizeof(double));
    b->worst = calloc(n, sizeof(double));
    if (!b->requests || !b->violating || !b->last_violating || !b->worst) {
        cps_budget_release(b);
        return -1;
    }
    return 0;
}

void cps_budget_release(struct cps_budget *b)
{
    free(b->requests);
    free(b->violating);
    free(b->last_violating);
    free(b->worst);
    memset(b, 0, sizeof *b);
}

/* Each track's share over the buckets in the ring (the last min(closed,
 * hours) buckets), kept when it is the worst so far. */
static void budget_evaluate(struct cps_budget *b)
{
    size_t n = (size_t)(b->closed < b->hours ? b->closed : b->hours);
    double requests = 0.0;
    for (size_t i = 0; i < n; i++)
        requests += b->requests[i];
    if (!(requests > 0.0))
        return;
    for (size_t t = 0; t < b->n_tracks; t++) {
        const double *ring = &b->violating[t * (size_t)b->hours];
        double violating = 0.0;
        for (size_t i = 0; i < n; i++)
            violating += ring[i];
        double pct = PERCENT * violating / requests;
        if (pct > b->worst[t])
            b->worst[t] = pct;
    }
}

void cps_budget_close(struct cps_budget *b, const double *cum_violating, double cum_requests)
{
    size_t slot = (size_t)(b->closed % b->hours);
    b->requests[slot] = cum_requests - b->last_requests;
    b->last_requests = cum_requests;
    for (size_t t = 0; t < b->n_tracks; t++) {
        b->violating[t * (size_t)b->hours + slot] = cum_violating[t] - b->last_violating[t];
        b->last_violating[t] = cum_violating[t];
    }
    b->closed++;
    if (b->closed >= b->hours)
        budget_evaluate(b);
}

void cps_budget_finish(struct cps_budget *b, const double *cum_violating, double cum_requests,
                       int64_t seconds)
{
    if (seconds > b->closed * CPS_BUDGET_BUCKET_S) /* the last bucket, whole or partial */
        cps_budget_close(b, cum_violating, cum_requests);
    if (b->closed < b->hours)
        budget_evaluate(b);
}
