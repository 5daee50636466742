#include "gen_trace.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "trace.h"

#define SECONDS_PER_DAY 86400.0
#define TWO_PI 6.283185307179586
/* 2024-01-01 00:00:00 UTC, a Monday. */
#define DEFAULT_START_EPOCH 1704067200.0
/* Peak traffic at 15:00, trough at 03:00 local (UTC here). */
#define PEAK_HOUR 15.0
#define MAX_BURSTS 4096

/* Standard normal by Box-Muller (one of the pair). */
static double next_normal(uint64_t *state)
{
    double u = cps_rng_uniform_open(state), v = cps_rng_uniform_open(state);
    return sqrt(-2.0 * log(u)) * cos(TWO_PI * v);
}

void cps_gen_params_default(struct cps_gen_params *p)
{
    p->days = 7.0;
    p->step_s = 60.0;
    p->peak_qps = 2000.0;
    p->trough_ratio = 0.2;
    p->weekend_ratio = 0.6;
    p->noise = 0.05;
    p->bursts_per_day = 3.0;
    p->start_epoch = DEFAULT_START_EPOCH;
    p->seed = 1;
    p->with_cost = 0;
}

struct burst {
    double start, ramp, length, factor;
};

/*
 * Demand at time t (seconds from the start): a smooth daily curve between
 * trough and peak (raised cosine peaking at PEAK_HOUR), a weekend dip, and
 * bursts that ramp up, hold and decay, multiplied together.
 */
static double base_rate(const struct cps_gen_params *p, double t)
{
    double day = fmod(t, SECONDS_PER_DAY) / 3600.0;
    double phase = cos(TWO_PI * (day - PEAK_HOUR) / 24.0); /* 1 at the peak */
    double shape = p->trough_ratio + (1.0 - p->trough_ratio) * (0.5 + 0.5 * phase);
    int weekday = (int)floor(t / SECONDS_PER_DAY) % 7; /* 0 = Monday */
    double week = weekday >= 5 ? p->weekend_ratio : 1.0;
    return p->peak_qps * shape * week;
}

static double burst_factor(const struct burst *bursts, size_t n, double t)
{
    double f = 1.0;
    for (size_t i = 0; i < n; i++) {
        const struct burst *b = &bursts[i];
        double x = t - b->start;
        if (x < 0 || x > b->ramp + b->length + b->ramp)
            continue;
        double level;
        if (x < b->ramp)
            level = x / b->ramp;
        else if (x < b->ramp + b->length)
            level = 1.0;
        else
            level = 1.0 - (x - b->ramp - b->length) / b->ramp;
        f *= 1.0 + (b->factor - 1.0) * level;
    }
    return f;
}

int cps_gen_trace_write(FILE *out, const struct cps_gen_params *p)
{
    uint64_t rng = p->seed;
    double span = p->days * SECONDS_PER_DAY;
    size_t n_bursts = (size_t)fmin(MAX_BURSTS, floor(p->bursts_per_day * p->days + 0.5));
    struct burst *bursts = calloc(n_bursts ? n_bursts : 1, sizeof *bursts);
    if (!bursts)
        return -1;
    for (size_t i = 0; i < n_bursts; i++) {
        bursts[i].start = cps_rng_uniform_open(&rng) * span;
        bursts[i].ramp = 60.0 + 120.0 * cps_rng_uniform_open(&rng);
        bursts[i].length = 300.0 + 1500.0 * cps_rng_uniform_open(&rng);
        bursts[i].factor = 1.4 + 1.2 * cps_rng_uniform_open(&rng);
    }
    fputs(p->with_cost ? "timestamp,qps,cost_per_pod_hour\n" : "timestamp,qps\n", out);
    double price = 0.05;
    size_t rows = (size_t)ceil(span / p->step_s);
    for (size_t i = 0; i < rows; i++) {
        double t = (double)i * p->step_s;
        double rate = base_rate(p, t) * burst_factor(bursts, n_bursts, t) *
                      exp(p->noise * next_normal(&rng) - 0.5 * p->noise * p->noise);
        /* a large peak with wide noise can pass what a trace may hold:
         * capped there, so that every trace written reads back */
        if (rate > CPS_TRACE_MAX_QPS)
            rate = CPS_TRACE_MAX_QPS;
        if (p->with_cost) {
            /* spot-like: a slow random walk between 40 % and 100 % of on-demand */
            price *= exp(0.01 * next_normal(&rng));
            price = fmin(0.05, fmax(0.02, price));
            fprintf(out, "%.0f,%.4f,%.5f\n", p->start_epoch + t, rate, price);
        } else {
            fprintf(out, "%.0f,%.4f\n", p->start_epoch + t, rate);
        }
    }
    free(bursts);
    return ferror(out) ? -1 : 0;
}
