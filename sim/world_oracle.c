/*
 * The oracle of docs/model.md §7, run online beside the policies: c*_k per
 * second, and per pod level the last busy second, so each idle gap is
 * priced when the level is busy again.
 */
#include <math.h>
#include <stdlib.h>

#include "grow.h"
#include "world_internal.h"

#define PRICE_RUNS_FIRST 256 /* oracle price runs allocated at first */

/* Σ price over seconds [a, b), a may be negative (charged at second 0's price). */
static double price_sum(const struct cps_sim *sim, int64_t a, int64_t b)
{
    if (b <= a)
        return 0.0;
    if (!sim->prices_vary)
        return sim->first_price * (double)(b - a);
    double before_zero = 0.0;
    if (a < 0) {
        before_zero = sim->first_price * (double)(-a);
        a = 0;
    }
    const struct oracle_run *o = &sim->oracle;
    /* prefix(x): binary search the run holding x-1 */
    double prefix[2];
    int64_t points[2] = {a, b};
    for (int p = 0; p < 2; p++) {
        int64_t x = points[p];
        size_t lo = 0, hi = o->n_prices;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (o->prices[mid].start <= x)
                lo = mid;
            else
                hi = mid;
        }
        prefix[p] = o->prices[lo].prefix + o->prices[lo].price * (double)(x - o->prices[lo].start);
    }
    return before_zero + prefix[1] - prefix[0];
}

int cps_world_oracle_note_price(struct cps_sim *sim, int64_t k, double price)
{
    struct oracle_run *o = &sim->oracle;
    if (o->n_prices && o->prices[o->n_prices - 1].price == price)
        return 0;
    void *prices = o->prices;
    if (cps_grow(&prices, &o->price_capacity, o->n_prices, sizeof *o->prices,
                 PRICE_RUNS_FIRST) < 0)
        return -1;
    o->prices = prices;
    double prefix = 0.0;
    if (o->n_prices) {
        const struct price_run *last = &o->prices[o->n_prices - 1];
        prefix = last->prefix + last->price * (double)(k - last->start);
    }
    o->prices[o->n_prices].start = k;
    o->prices[o->n_prices].price = price;
    o->prices[o->n_prices].prefix = prefix;
    o->n_prices++;
    return 0;
}

/*
 * Level j becomes busy at second k after being idle since last_busy: price
 * the gap (keep the pod, or delete and recreate it `startup` before k), or
 * its first creation when it was never busy.
 */
static void oracle_level_wakes(struct cps_sim *sim, int32_t j, int64_t k)
{
    struct oracle_run *o = &sim->oracle;
    int64_t last = o->last_busy[j];
    if (last >= 0 && k - last - 1 <= 0)
        return;
    /* with --startup-jitter, this creation's startup + U (§10) */
    int64_t startup = sim->startup_s + cps_variant_jitter(&o->jitter_stream, sim->jitter_s);
    if (last < 0) {
        o->pod_seconds += (double)startup;
        o->cost += price_sum(sim, k - startup, k);
        o->starts++;
        return;
    }
    int64_t gap = k - last - 1;
    double keep = price_sum(sim, last + 1, k);
    if (gap <= startup) {
        o->pod_seconds += (double)gap;
        o->cost += keep;
        return;
    }
    double recreate = price_sum(sim, k - startup, k);
    if (recreate < keep) {
        o->pod_seconds += (double)startup;
        o->cost += recreate;
        o->starts++;
    } else {
        o->pod_seconds += (double)gap;
        o->cost += keep;
    }
}

void cps_world_oracle_second(struct cps_sim *sim, int64_t k, double lambda, double load,
                             double price)
{
    struct oracle_run *o = &sim->oracle;
    int32_t c;
    if (load == o->cache_lambda && k > 0) {
        c = o->cache_c;
    } else {
        c = cps_lambda_table_pods_for(&sim->table, load, sim->setup.min_replicas,
                                      sim->setup.max_replicas);
        o->cache_lambda = load;
        o->cache_c = c;
    }
    if (k == 0) {
        for (int32_t j = 0; j <= sim->setup.max_replicas; j++)
            o->last_busy[j] = -1;
        for (int32_t j = 1; j <= c; j++)
            o->last_busy[j] = 0;
        o->current = c;
    } else if (c > o->current) {
        o->actions++;
        for (int32_t j = o->current + 1; j <= c; j++)
            oracle_level_wakes(sim, j, k);
    } else if (c < o->current) {
        o->actions++;
        for (int32_t j = c + 1; j <= o->current; j++)
            o->last_busy[j] = k - 1;
    }
    o->current = c;
    if (c > o->peak)
        o->peak = c;
    o->pod_seconds += (double)c;
    o->cost += (double)c * price;
    if (lambda > 0.0 && load > sim->table.lambda_max[c]) {
        o->violating_seconds++;
        o->violating_requests += lambda;
    }
}
