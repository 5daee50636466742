#include "world.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "grow.h"
#include "queue_model.h"
#include "units.h"
#include "world_internal.h"

#define SECONDS_PER_HOUR 3600.0
#define REQUESTS_PER_MILLION 1e6
/* The policy sees p95 capped at this many times the SLO (docs/model.md §5). */
#define P95_CAP_FACTOR 10.0
#define PRICE_RUNS_FIRST 256 /* oracle price runs allocated at first */
/* The per-second path is compiled twice, with variants (docs/model.md §10)
 * and without: the default world then pays nothing for them. */
#if defined(__GNUC__)
#define PER_SECOND static inline __attribute__((always_inline))
#else
#define PER_SECOND static inline
#endif


static int64_t round_seconds(double s)
{
    return (int64_t)llround(s);
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static void policy_run_release(struct policy_run *run)
{
    free(run->cohorts);
    free(run->p95.cum);
    free(run->cpu.cum);
    cps_history_free(run->history);
    free(run->policy_state);
    free(run->plot.ready_sum);
    free(run->plot.violating);
    free(run->plot.cost_end);
}

void cps_sim_free(struct cps_sim *sim)
{
    if (!sim)
        return;
    for (size_t i = 0; i < sim->n_runs; i++)
        policy_run_release(&sim->runs[i]);
    free(sim->oracle.idle);
    free(sim->oracle.plot.ready_sum);
    free(sim->oracle.plot.violating);
    free(sim->oracle.plot.cost_end);
    free(sim->oracle.prices);
    free(sim->cum_lambda);
    free(sim->plot_demand);
    cps_budget_release(&sim->budget);
    cps_lambda_table_release(&sim->table);
    free(sim);
}

/* Validate the world: every parameter finite and in its range. */
static int check_setup(const struct cps_sim_setup *s, struct cps_err *err)
{
    const struct cps_sim_params *w = &s->world;
    if (!(w->service_rate > 0.0) || !isfinite(w->service_rate))
        return cps_err_set(err, "sim", 0, 0, "service rate must be > 0");
    if (!(w->base_latency_ms >= 0.0) || w->base_latency_ms > 86400.0 * 1000.0)
        return cps_err_set(err, "sim", 0, 0, "base latency must be in [0, 1d]");
    if (!(w->startup_s >= 0.0) || w->startup_s > 86400.0)
        return cps_err_set(err, "sim", 0, 0, "startup must be in [0, 1d]");
    if (!(w->price >= 0.0) || !isfinite(w->price))
        return cps_err_set(err, "sim", 0, 0, "price must be >= 0");
    if (!(w->scale > 0.0) || !isfinite(w->scale))
        return cps_err_set(err, "sim", 0, 0, "scale must be > 0");
    if (!(w->interval_s >= 1.0) || w->interval_s > 86400.0)
        return cps_err_set(err, "sim", 0, 0, "interval must be in [1s, 1d]");
    if (!(w->window_s >= 1.0) || w->window_s > 86400.0)
        return cps_err_set(err, "sim", 0, 0, "window must be in [1s, 1d]");
    if (!(w->lag_s >= 0.0) || w->lag_s > 86400.0)
        return cps_err_set(err, "sim", 0, 0, "lag must be in [0, 1d]");
    if (!(s->slo_ms > 0.0) || !isfinite(s->slo_ms))
        return cps_err_set(err, "sim", 0, 0, "SLO must be > 0 ms");
    if (s->min_replicas < 0 || s->max_replicas < 1 || s->min_replicas > s->max_replicas ||
        s->max_replicas > 1000000)
        return cps_err_set(err, "sim", 0, 0, "need 0 <= min <= max <= 1000000 replicas");
    if (w->routing == CPS_ROUTING_POOLED && s->max_replicas > CPS_POOLED_MAX_REPLICAS)
        return cps_err_set(err, "sim", 0, 0, "pooled routing: at most %d replicas (the exact "
                           "M/M/c table costs time in the square of the count: 3 s at 5,000, "
                           "46 s at 20,000)", CPS_POOLED_MAX_REPLICAS);
    if (s->n_policies == 0 || s->n_policies > CPS_SIM_MAX_POLICIES)
        return cps_err_set(err, "sim", 0, 0, "no policy to run");
    return cps_sim_variant_check(&s->variant, w->routing, err);
}

/*
 * The variants of docs/model.md §10 (after the policies exist): the λmax
 * table rebuilt from the variant's λmax(1) (random routing, linear in c),
 * each policy's jitter stream from its position, the budget buckets.
 */
static int init_variant(struct cps_sim *sim)
{
    const struct cps_sim_setup *s = &sim->setup;
    const struct cps_sim_variant *v = &s->variant;
    cps_variant_init(&sim->variant, v, s->world.service_rate, s->world.base_latency_ms, s->slo_ms);
    sim->latency_variant = v->service.kind != CPS_SERVICE_EXPONENTIAL || v->capacity_drift > 0.0;
    sim->mu_varies = v->capacity_drift > 0.0;
    sim->jitter_s = round_seconds(v->startup_jitter_s);
    sim->variants = sim->latency_variant || sim->jitter_s;
    if (sim->latency_variant) {
        sim->table.linear_step = sim->variant.lambda_max_1;
        for (int32_t c = 1; c <= sim->table.max_c; c++)
            sim->table.lambda_max[c] = sim->variant.lambda_max_1 * (double)c;
    }
    for (size_t i = 0, r = 0; i < s->n_policies; i++) {
        uint64_t stream = cps_variant_stream(v->world_seed, i);
        if (s->policies[i].kind == CPS_SIM_POLICY_ORACLE)
            sim->oracle.jitter_stream = stream;
        else
            sim->runs[r++].jitter_stream = stream;
    }
    sim->next_hour = CPS_BUDGET_BUCKET_S;
    return cps_budget_init(&sim->budget, s->n_policies, v->budget_window_s);
}

struct cps_sim *cps_sim_new(const struct cps_sim_setup *setup, struct cps_err *err)
{
    if (check_setup(setup, err) < 0)
        return NULL;
    struct cps_sim *sim = calloc(1, sizeof *sim);
    if (!sim) {
        cps_err_set(err, "sim", 0, 0, "out of memory");
        return NULL;
    }
    sim->setup = *setup;
    sim->model.routing = setup->world.routing;
    sim->model.service_rate = setup->world.service_rate;
    sim->model.base_latency_ms = setup->world.base_latency_ms;
    sim->p95_scale_ms = CPS_MS_PER_S * log(20.0) / setup->world.service_rate;
    if (setup->hpa_behavior)
        sim->hpa_behavior = *setup->hpa_behavior;
    else
        cps_behavior_default(&sim->hpa_behavior);
    sim->interval_s = round_seconds(setup->world.interval_s);
    sim->window_s = round_seconds(setup->world.window_s);
    sim->lag_s = round_seconds(setup->world.lag_s);
    sim->startup_s = round_seconds(setup->world.startup_s);
    size_t ring = pow2_at_least((size_t)(sim->lag_s + sim->window_s + 2));
    sim->ring_mask = ring - 1;
    if (cps_lambda_table_init(&sim->table, &sim->model, setup->slo_ms, setup->max_replicas) < 0)
        goto oom;
    sim->cum_lambda = calloc(ring, sizeof(double));
    if (!sim->cum_lambda)
        goto oom;
    size_t cohort_capacity = (size_t)(sim->startup_s / sim->interval_s) + 2;
    for (size_t i = 0; i < setup->n_policies; i++) {
        const struct cps_sim_policy_spec *spec = &setup->policies[i];
        if (spec->kind == CPS_SIM_POLICY_ORACLE) {
            if (sim->oracle.active) {
                cps_err_set(err, "--policy", 0, 0, "oracle listed twice");
                goto fail;
            }
            sim->oracle.active = 1;
            sim->oracle.index = i;
            sim->oracle.idle = malloc(sizeof *sim->oracle.idle * ((size_t)setup->max_replicas + 1));
            if (!sim->oracle.idle)
                goto oom;
            for (size_t m = 0; m < PODS_MEMO_SLOTS; m++)
                sim->oracle.memo[m].load = NAN;
            continue;
        }
        struct policy_run *run = &sim->runs[sim->n_runs++];
        run->spec = *spec;
        run->cohort_capacity = cohort_capacity;
        run->cohorts = calloc(cohort_capacity, sizeof *run->cohorts);
        run->p95.cum = calloc(ring, sizeof(double));
        run->cpu.cum = calloc(ring, sizeof(double));
        if (!run->cohorts || !run->p95.cum || !run->cpu.cum)
            goto oom;
        run->cache_lambda = -1.0;
        run->cache_c = -1;
        run->needs_cpu = spec->kind != CPS_SIM_POLICY_STATIC;
        run->needs_p95 = spec->kind == CPS_SIM_POLICY_CPSCALE;
        const struct cps_behavior *behavior = NULL;
        if (spec->kind == CPS_SIM_POLICY_HPA)
            behavior = &sim->hpa_behavior;
        else if (spec->kind == CPS_SIM_POLICY_CPSCALE)
            behavior = &setup->target->behavior;
        if (behavior) {
            size_t recs, events;
            cps_history_capacity_for(behavior, sim->interval_s * CPS_MS_PER_S, &recs, &events);
            run->history = cps_history_new(recs, events);
            if (!run->history)
                goto oom;
        }
        if (spec->kind == CPS_SIM_POLICY_CPSCALE) {
            if (!setup->target) {
                cps_err_set(err, "sim", 0, 0, "the cpscale policy needs a target config");
                goto fail;
            }
            run->policy_state = malloc(sizeof *run->policy_state);
            if (!run->policy_state)
                goto oom;
            cps_policy_state_init(run->policy_state);
        }
    }
    if (init_variant(sim) < 0)
        goto oom;
    return sim;
oom:
    cps_err_set(err, "sim", 0, 0, "out of memory");
fail:
    cps_sim_free(sim);
    return NULL;
}

int cps_sim_set_steps(struct cps_sim *sim, FILE *out, int64_t every_seconds)
{
    sim->steps_out = out;
    sim->extras = 1;
    sim->steps_every = every_seconds > 0 ? every_seconds : 1;
    if (fputs("policy,t,seconds,qps,replicas,ready,desired,p95_ms,violating,"
              "violating_requests,cost_usd\n",
              out) == EOF)
        return -1;
    return 0;
}

int cps_sim_set_observer(struct cps_sim *sim, size_t policy_index,
                         void (*second_cb)(void *ctx, int64_t k, double lambda, int32_t ready,
                                           double price),
                         void *ctx)
{
    if (policy_index >= sim->setup.n_policies ||
        sim->setup.policies[policy_index].kind == CPS_SIM_POLICY_ORACLE)
        return -1;
    size_t run = 0;
    for (size_t i = 0; i < policy_index; i++)
        run += sim->setup.policies[i].kind != CPS_SIM_POLICY_ORACLE;
    sim->observed = &sim->runs[run];
    sim->observer_cb = second_cb;
    sim->observer_ctx = ctx;
    sim->extras = 1;
    return 0;
}

/* ---- pods ---------------------------------------------------------------- */

/* Pods whose startup is over become ready at the start of second k. */
static void promote_ready(struct policy_run *run, int64_t k)
{
    while (run->cohort_count) {
        struct cohort *c = &run->cohorts[run->cohort_start];
        if (c->ready_at > k)
            break;
        run->ready += c->count;
        run->cohort_start = (run->cohort_start + 1) % run->cohort_capacity;
        run->cohort_count--;
    }
}

/* With --startup-jitter the pending pods are in creation order, not in
 * readiness order: scan them all, keeping the order of those still starting. */
static void promote_ready_jittered(struct policy_run *run, int64_t k)
{
    size_t kept = 0, cap = run->cohort_capacity;
    for (size_t i = 0; i < run->cohort_count; i++) {
        struct cohort c = run->cohorts[(run->cohort_start + i) % cap];
        if (c.ready_at <= k)
            run->ready += c.count;
        else
            run->cohorts[(run->cohort_start + kept++) % cap] = c;
    }
    run->cohort_count = kept;
}

/* Append a cohort of pending pods (the ring doubles when full). */
static int push_cohort(struct policy_run *run, int64_t ready_at, int32_t count)
{
    if (run->cohort_count == run->cohort_capacity) {
        size_t cap = run->cohort_capacity * 2;
        struct cohort *grown = malloc(cap * sizeof *grown);
        if (!grown)
            return -1;
        for (size_t i = 0; i < run->cohort_count; i++)
            grown[i] = run->cohorts[(run->cohort_start + i) % run->cohort_capacity];
        free(run->cohorts);
        run->cohorts = grown;
        run->cohort_start = 0;
        run->cohort_capacity = cap;
    }
    size_t tail = (run->cohort_start + run->cohort_count) % run->cohort_capacity;
    run->cohorts[tail].ready_at = ready_at;
    run->cohorts[tail].count = count;
    run->cohort_count++;
    return 0;
}

/* --startup-jitter (docs/model.md §10): each new pod is ready after startup
 * + U, U drawn from the policy's own stream; one cohort per pod. */
static int add_jittered_pods(struct cps_sim *sim, struct policy_run *run, int64_t k,
                             int32_t change)
{
    for (int32_t p = 0; p < change; p++) {
        int64_t ready_at = k + sim->startup_s + cps_variant_jitter(&run->jitter_stream,
                                                                   sim->jitter_s);
        if (ready_at <= k)
            run->ready++;
        else if (push_cohort(run, ready_at, 1) < 0)
            return -1;
    }
    return 0;
}

/*
 * Move to `desired` pods at second k (docs/model.md §4): new pods exist (and
 * cost) now and are ready after startup; removals take not-ready pods first,
 * youngest first, then ready ones.
 */
static int apply_scale(struct cps_sim *sim, struct policy_run *run, int64_t k, int32_t desired)
{
    int32_t change = desired - run->total;
    if (change == 0)
        return 0;
    run->scale_actions++;
    if (change > 0) {
        run->pod_starts += change;
        run->total += change;
        if (sim->jitter_s)
            return add_jittered_pods(sim, run, k, change);
        if (sim->startup_s == 0) {
            run->ready += change;
            return 0;
        }
        return push_cohort(run, k + sim->startup_s, change);
    }
    int32_t remove = -change;
    run->total -= remove;
    while (remove > 0 && run->cohort_count) {
        size_t tail = (run->cohort_start + run->cohort_count - 1) % run->cohort_capacity;
        struct cohort *c = &run->cohorts[tail];
        int32_t take = c->count < remove ? c->count : remove;
        c->count -= take;
        remove -= take;
        if (c->count == 0)
            run->cohort_count--;
    }
    run->ready -= remove;
    return 0;
}

/* ---- observations ------------------------------------------------------ */

/* p95 of c pods at λ when each serves mu req/s: the variant's (§10), or
 * the default world's (mu is then μ). */
static double world_p95_ms(const struct cps_sim *sim, double lambda, int32_t c, double mu)
{
    if (sim->latency_variant)
        return cps_variant_p95_ms(&sim->variant, lambda, c, mu);
    return cps_queue_p95_ms(&sim->model, lambda, c);
}

/*
 * Capped p95 and CPU busy share of c ready pods at rate λ (docs/model.md §5),
 * computed only for what the policy looks at (HPA reads CPU only, static
 * nothing), with the per-c constants cached: this runs every second.
 */
PER_SECOND void second_metrics(struct cps_sim *sim, struct policy_run *run, double lambda,
                               int32_t c, const int variants)
{
    if (lambda == run->cache_lambda && c == run->cache_c)
        return;
    if (c != run->cache_c) {
        run->cache_c = c;
        run->inv_capacity = c > 0 ? 1.0 / ((double)c * sim->variant.mu_now) : 0.0;
    }
    run->cache_lambda = lambda;
    if (run->needs_p95) {
        double cap = P95_CAP_FACTOR * sim->setup.slo_ms;
        double p95;
        if (variants && sim->latency_variant) {
            p95 = cps_variant_p95_ms(&sim->variant, lambda, c, sim->variant.mu_now);
        } else if (sim->model.routing == CPS_ROUTING_RANDOM && c > 0 && lambda > 0.0) {
            /* base + ln20 / (μ - λ/c), written with the cached 1/(cμ) */
            double free_share = 1.0 - lambda * run->inv_capacity;
            p95 = free_share > 0.0 ? sim->model.base_latency_ms +
                                         sim->p95_scale_ms / free_share
                                   : INFINITY;
        } else {
            p95 = cps_queue_p95_ms(&sim->model, lambda, c);
        }
        run->p95.now = p95 < cap ? p95 : cap;
    }
    if (run->needs_cpu) {
        if (c <= 0)
            run->cpu.now = 1.0;
        else {
            double busy = lambda * run->inv_capacity;
            run->cpu.now = busy < 1.0 ? busy : 1.0;
        }
    }
}

/*
 * What a policy sees at a decision at second k: means over the window
 * [max(0, k-L-W), max(0, k-L)), or the state at time 0 when that is empty.
 */
static void observe(struct cps_sim *sim, struct policy_run *run, int64_t k, double price,
                    struct cps_observation *obs)
{
    int64_t b = k - sim->lag_s;
    if (b < 0)
        b = 0;
    int64_t a = k - sim->lag_s - sim->window_s;
    if (a < 0)
        a = 0;
    memset(obs, 0, sizeof *obs);
    if (b > a) {
        size_t ia = (size_t)a & sim->ring_mask, ib = (size_t)b & sim->ring_mask;
        double n = (double)(b - a);
        obs->qps = (sim->cum_lambda[ib] - sim->cum_lambda[ia]) / n;
        obs->p95_ms = (run->p95.cum[ib] - run->p95.cum[ia]) / n;
        obs->cpu_utilization = (run->cpu.cum[ib] - run->cpu.cum[ia]) / n;
        /* rounding in the prefix sums must not make a mean negative */
        if (obs->qps < 0.0)
            obs->qps = 0.0;
        if (obs->p95_ms < 0.0)
            obs->p95_ms = 0.0;
        if (obs->cpu_utilization < 0.0)
            obs->cpu_utilization = 0.0;
    } else {
        double cap = P95_CAP_FACTOR * sim->setup.slo_ms;
        double p95 = world_p95_ms(sim, sim->lambda0, sim->n0, sim->model.service_rate);
        obs->qps = sim->lambda0;
        obs->p95_ms = p95 < cap ? p95 : cap;
        if (sim->n0 <= 0)
            obs->cpu_utilization = 1.0;
        else {
            double busy = sim->lambda0 / ((double)sim->n0 * sim->model.service_rate);
            obs->cpu_utilization = busy < 1.0 ? busy : 1.0;
        }
    }
    obs->replicas = run->total;
    obs->ready_replicas = run->ready;
    obs->cost_per_pod_hour = price;
}

static int32_t clamp_replicas(const struct cps_sim *sim, int64_t n)
{
    if (n < sim->setup.min_replicas)
        return sim->setup.min_replicas;
    if (n > sim->setup.max_replicas)
        return sim->setup.max_replicas;
    return (int32_t)n;
}

/* One policy decision at second k; the answer is clamped to [min, max]. */
static int decide(struct cps_sim *sim, struct policy_run *run, int64_t k, double price)
{
    int64_t now_ms = k * CPS_MS_PER_S;
    int32_t desired = run->total;
    struct cps_observation obs;
    switch (run->spec.kind) {
    case CPS_SIM_POLICY_STATIC:
        desired = run->spec.static_replicas;
        break;
    case CPS_SIM_POLICY_HPA: {
        observe(sim, run, k, price, &obs);
        double target = run->spec.hpa_target > 0.0 ? run->spec.hpa_target : sim->setup.world.hpa_target;
        int32_t recommendation = cps_hpa_replicas(obs.cpu_utilization, target,
                                                  CPS_HPA_DEFAULT_TOLERANCE, run->total, run->ready);
        struct cps_behavior_result result;
        cps_behavior_normalize(&sim->hpa_behavior, run->history, now_ms, run->total, recommendation,
                               sim->setup.min_replicas, sim->setup.max_replicas, &result);
        desired = result.desired;
        break;
    }
    case CPS_SIM_POLICY_CPSCALE: {
        observe(sim, run, k, price, &obs);
        struct cps_decision decision;
        cps_decide(sim->setup.target, &obs, run->history, run->policy_state, now_ms, NULL,
                   &decision);
        desired = decision.desired;
        break;
    }
    case CPS_SIM_POLICY_ORACLE:
        break;
    }
    desired = clamp_replicas(sim, desired);
    run->desired = desired;
    int32_t change = desired - run->total;
    if (change != 0 && run->history)
        cps_history_add_scale_event(run->history, now_ms, change);
    return apply_scale(sim, run, k, desired);
}

/* ---- oracle -------------------------------------------------------------- */

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

static int oracle_note_price(struct cps_sim *sim, int64_t k, double price)
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

/* price_sum, with the default world's constant price worked out in place:
 * the oracle asks for it for every run of levels that wakes. */
PER_SECOND double price_over(const struct cps_sim *sim, int64_t a, int64_t b)
{
    if (sim->prices_vary)
        return price_sum(sim, a, b);
    return b <= a ? 0.0 : sim->first_price * (double)(b - a);
}

/*
 * A level idle since `last` (-1: never busy) becomes busy at second k, its
 * startup drawn with --startup-jitter: price the gap (keep the pod, or
 * delete and recreate it `startup` before k), or its first creation.
 */
static void oracle_level_wakes_jittered(struct cps_sim *sim, int64_t last, int64_t k)
{
    struct oracle_run *o = &sim->oracle;
    int64_t startup = sim->startup_s;
    if (last < 0) {
        startup += cps_variant_jitter(&o->jitter_stream, sim->jitter_s); /* startup + U (§10) */
        o->pod_seconds += startup;
        o->cost += price_over(sim, k - startup, k);
        o->starts++;
        return;
    }
    int64_t gap = k - last - 1;
    if (gap <= 0)
        return;
    startup += cps_variant_jitter(&o->jitter_stream, sim->jitter_s);
    double keep = price_over(sim, last + 1, k);
    double recreate = gap <= startup ? keep : price_over(sim, k - startup, k);
    if (gap > startup && recreate < keep) {
        o->pod_seconds += startup;
        o->cost += recreate;
        o->starts++;
    } else {
        o->pod_seconds += gap;
        o->cost += keep;
    }
}

/*
 * `n` levels idle since `last` (-1: never busy) become busy at second k,
 * each priced as oracle_level_wakes_jittered prices one. Without jitter
 * they share one startup, so one gap and one price: that is worked out
 * once, and the cost still takes one addition per level, in level order,
 * so that it rounds as the level-by-level sum does.
 */
PER_SECOND void oracle_levels_wake(struct cps_sim *sim, int32_t n, int64_t last, int64_t k,
                                   const int variants)
{
    struct oracle_run *o = &sim->oracle;
    if (variants && sim->jitter_s) {
        for (int32_t i = 0; i < n; i++)
            oracle_level_wakes_jittered(sim, last, k);
        return;
    }
    int64_t startup = sim->startup_s, seconds = startup, starts = 1;
    double price;
    if (last < 0) {
        price = price_over(sim, k - startup, k);
    } else {
        int64_t gap = k - last - 1;
        if (gap <= 0)
            return;
        price = price_over(sim, last + 1, k);
        seconds = gap;
        starts = 0;
        if (gap > startup) {
            double recreate = price_over(sim, k - startup, k);
            if (recreate < price) {
                price = recreate;
                seconds = startup;
                starts = 1;
            }
        }
    }
    o->pod_seconds += seconds * n;
    o->starts += starts * n;
    double cost = o->cost;
    int32_t i = n;
    for (; i >= 4; i -= 4) { /* unrolled, the additions still one by one */
        cost += price;
        cost += price;
        cost += price;
        cost += price;
    }
    for (; i > 0; i--)
        cost += price;
    o->cost = cost;
}

/*
 * cps_lambda_table_pods_for(load, min, max) through a small memo: a
 * trace's rates repeat (whole requests times the scale), and the answer
 * depends on the load alone. Slots hash the load's bits; keys start NaN,
 * equal to nothing.
 */
PER_SECOND int32_t oracle_pods_for(struct cps_sim *sim, double load)
{
    uint64_t bits;
    memcpy(&bits, &load, sizeof bits);
    size_t slot = (size_t)((bits * 0x9E3779B97F4A7C15ULL) >> (64 - PODS_MEMO_BITS));
    struct pods_memo *m = &sim->oracle.memo[slot];
    if (m->load == load)
        return m->c;
    m->load = load;
    m->c = cps_lambda_table_pods_for(&sim->table, load, sim->setup.min_replicas,
                                     sim->setup.max_replicas);
    return m->c;
}

/* Second k of the oracle: λ is the rate, load the rate against the
 * capacity table (λ itself but under drift, §10). */
PER_SECOND void oracle_second(struct cps_sim *sim, int64_t k, double lambda, double load,
                              double price, const int variants)
{
    struct oracle_run *o = &sim->oracle;
    int32_t c = oracle_pods_for(sim, load);
    if (k == 0) {
        /* levels 1..c busy now, the rest never yet */
        o->n_idle = 0;
        if (c < sim->setup.max_replicas)
            o->idle[o->n_idle++] = (struct idle_run){sim->setup.max_replicas, -1};
    } else if (c > o->current) {
        o->actions++;
        /* wake levels current+1..c, a run of the idle stack at a time */
        for (int32_t level = o->current; level < c;) {
            struct idle_run *run = &o->idle[o->n_idle - 1];
            int32_t top = run->top < c ? run->top : c;
            oracle_levels_wake(sim, top - level, run->last, k, variants);
            if (top == run->top)
                o->n_idle--;
            level = top;
        }
    } else if (c < o->current) {
        o->actions++;
        /* levels c+1..current were busy up to k-1 */
        o->idle[o->n_idle++] = (struct idle_run){o->current, k - 1};
    }
    o->current = c;
    if (c > o->peak)
        o->peak = c;
    o->pod_seconds += c;
    o->cost += (double)c * price;
    if (lambda > 0.0 && load > sim->table.lambda_max[c]) {
        o->violating_seconds++;
        o->violating_requests += lambda;
    }
}

/* ---- the per-second loop --------------------------------------------------- */

static int flush_steps(struct cps_sim *sim, struct policy_run *run)
{
    struct steps_accumulator *s = &run->steps;
    if (s->seconds == 0)
        return 0;
    double n = (double)s->seconds;
    int rc = fprintf(sim->steps_out, "%s,%lld,%lld,%.6f,%d,%d,%d,%.6f,%lld,%.6f,%.12g\n",
                     run->spec.name, (long long)s->start, (long long)s->seconds,
                     s->lambda_sum / n, s->replicas, s->ready, s->desired, s->p95_sum / n,
                     (long long)s->violating, s->violating_requests, s->cost / SECONDS_PER_HOUR);
    memset(s, 0, sizeof *s);
    return rc < 0 ? -1 : 0;
}

/*
 * What a policy's second k adds to --steps, the observer and --plot, apart
 * from the per-second loop, which runs without them: `violating` and
 * `cost` are that second's. Returns 0, or -1 with err when --steps fails.
 */
static int policy_extras(struct cps_sim *sim, struct policy_run *run, int64_t k, double lambda,
                         double price, int violating, double cost, size_t bucket,
                         struct cps_err *err)
{
    int32_t c = run->ready;
    if (sim->steps_out) {
        struct steps_accumulator *s = &run->steps;
        if (s->seconds == 0) {
            s->start = k;
            s->replicas = run->total;
            s->ready = run->ready;
            s->desired = run->desired;
        }
        s->seconds++;
        s->lambda_sum += lambda;
        s->p95_sum += world_p95_ms(sim, lambda, c, sim->variant.mu_now);
        s->violating += violating;
        s->violating_requests += violating ? lambda : 0.0;
        s->cost += cost;
        if (s->seconds == sim->steps_every && flush_steps(sim, run) < 0)
            return cps_err_set(err, "--steps", 0, 0, "write failed: %s", strerror(errno));
    }
    if (run == sim->observed)
        sim->observer_cb(sim->observer_ctx, k, lambda, c, price);
    if (sim->plot_max) {
        run->plot.ready_sum[bucket] += c;
        run->plot.violating[bucket] += violating;
        run->plot.cost_end[bucket] = run->cost / SECONDS_PER_HOUR;
    }
    return 0;
}

/* Each policy's violating requests so far, in setup order (the budget's tracks). */
static void budget_totals(const struct cps_sim *sim, double *cum)
{
    for (size_t i = 0, r = 0; i < sim->setup.n_policies; i++)
        cum[i] = sim->setup.policies[i].kind == CPS_SIM_POLICY_ORACLE
                     ? sim->oracle.violating_requests
                     : sim->runs[r++].requests_violating;
}

PER_SECOND int simulate_second(struct cps_sim *sim, double lambda, double price,
                               struct cps_err *err, const int variants)
{
    int64_t k = sim->k;
    /* λ against the capacity table; under drift scaled to μ(k)'s capacity (§10) */
    double load = variants && sim->mu_varies ? cps_variant_load(&sim->variant, lambda, k) : lambda;
    if (k == sim->next_hour) {
        double cum[CPS_SIM_MAX_POLICIES];
        budget_totals(sim, cum);
        cps_budget_close(&sim->budget, cum, sim->requests);
        sim->next_hour += CPS_BUDGET_BUCKET_S;
    }
    if (k == 0) {
        sim->lambda0 = lambda;
        sim->first_price = price;
        sim->n0 = cps_lambda_table_pods_for(&sim->table, load, sim->setup.min_replicas,
                                            sim->setup.max_replicas);
        for (size_t i = 0; i < sim->n_runs; i++) {
            sim->runs[i].ready = sim->runs[i].total = sim->runs[i].desired = sim->n0;
        }
    }
    if (price != sim->first_price)
        sim->prices_vary = 1;
    if ((sim->prices_vary || k == 0) && sim->oracle.active && oracle_note_price(sim, k, price) < 0)
        return cps_err_set(err, "sim", 0, 0, "out of memory");
    int deciding = k == sim->next_decision; /* k % interval == 0, without dividing */
    if (deciding)
        sim->next_decision += sim->interval_s;
    size_t next = (size_t)(k + 1) & sim->ring_mask;
    size_t bucket = sim->plot_max ? cps_world_plot_bucket(sim) : 0;
    int extras = sim->extras;
    for (size_t i = 0; i < sim->n_runs; i++) {
        struct policy_run *run = &sim->runs[i];
        if (run->cohort_count && !(variants && sim->jitter_s))
            promote_ready(run, k);
        else if (run->cohort_count)
            promote_ready_jittered(run, k);
        if (deciding && decide(sim, run, k, price) < 0)
            return cps_err_set(err, "sim", 0, 0, "out of memory");
        int32_t c = run->ready;
        if (variants && sim->mu_varies)
            run->cache_c = -1; /* μ(k) moved: recompute */
        second_metrics(sim, run, lambda, c, variants);
        /* the prefix sums up to second k+1 (entry 0 is the calloc's 0) */
        run->p95.sum += run->p95.now;
        run->cpu.sum += run->cpu.now;
        run->p95.cum[next] = run->p95.sum;
        run->cpu.cum[next] = run->cpu.sum;
        run->pod_seconds += run->total;
        double cost = (double)run->total * price;
        run->cost += cost;
        if (run->total > run->peak)
            run->peak = run->total;
        int violating = lambda > 0.0 && load > sim->table.lambda_max[c];
        if (violating) {
            run->violating_seconds++;
            run->requests_violating += lambda;
        }
        if (extras && policy_extras(sim, run, k, lambda, price, violating, cost, bucket, err) < 0)
            return -1;
    }
    sim->run_lambda += lambda;
    sim->cum_lambda[next] = sim->run_lambda;
    if (sim->plot_max)
        sim->plot_demand[bucket] += lambda;
    sim->requests += lambda;
    if (sim->oracle.active) {
        oracle_second(sim, k, lambda, load, price, variants);
        if (sim->plot_max) {
            struct plot_track *t = &sim->oracle.plot;
            t->ready_sum[bucket] += sim->oracle.current;
            t->violating[bucket] += lambda > 0.0 && load > sim->table.lambda_max[sim->oracle.current];
            /* the oracle's gap and startup costs are settled when a level wakes,
             * so its running cost is exact only at the end; plot what is settled */
            t->cost_end[bucket] = sim->oracle.cost / SECONDS_PER_HOUR;
        }
    }
    sim->k++;
    return 0;
}

int cps_sim_feed(struct cps_sim *sim, double lambda, double price, int64_t seconds,
                 struct cps_err *err)
{
    for (int64_t s = 0; s < seconds; s++)
        if ((sim->variants ? simulate_second(sim, lambda, price, err, 1)
                           : simulate_second(sim, lambda, price, err, 0)) < 0)
            return -1;
    return 0;
}

int64_t cps_sim_seconds(const struct cps_sim *sim)
{
    return sim->k;
}

static void fill_result(struct cps_sim *sim, struct cps_sim_result *r, const char *name,
                        double pod_seconds, double cost_price_seconds, double violating_requests,
                        int64_t violating_seconds, int64_t starts, int64_t actions, int32_t peak)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    double seconds = (double)sim->k;
    r->cost_usd = cost_price_seconds / SECONDS_PER_HOUR;
    r->requests = sim->requests;
    r->cost_per_million = sim->requests > 0.0 ? r->cost_usd / sim->requests * REQUESTS_PER_MILLION
                                              : NAN;
    r->violation_pct = sim->requests > 0.0 ? 100.0 * violating_requests / sim->requests : 0.0;
    r->violation_time_pct = seconds > 0.0 ? 100.0 * (double)violating_seconds / seconds : 0.0;
    r->pod_starts = starts;
    r->scale_actions = actions;
    r->avg_pods = seconds > 0.0 ? pod_seconds / seconds : 0.0;
    r->peak_pods = peak;
    r->pod_seconds = pod_seconds;
    r->violating_requests = violating_requests;
    r->violating_seconds = violating_seconds;
    r->cost_vs_oracle = NAN;
}

int cps_sim_finish(struct cps_sim *sim, struct cps_sim_result *results, struct cps_err *err)
{
    if (sim->k == 0)
        return cps_err_set(err, "sim", 0, 0, "nothing was simulated");
    size_t run = 0;
    for (size_t i = 0; i < sim->setup.n_policies; i++) {
        const struct cps_sim_policy_spec *spec = &sim->setup.policies[i];
        if (spec->kind == CPS_SIM_POLICY_ORACLE) {
            struct oracle_run *o = &sim->oracle;
            fill_result(sim, &results[i], spec->name, (double)o->pod_seconds, o->cost,
                        o->violating_requests, o->violating_seconds, o->starts, o->actions,
                        o->peak);
            continue;
        }
        struct policy_run *r = &sim->runs[run++];
        if (sim->steps_out && flush_steps(sim, r) < 0)
            return cps_err_set(err, "--steps", 0, 0, "write failed: %s", strerror(errno));
        fill_result(sim, &results[i], spec->name, (double)r->pod_seconds, r->cost,
                    r->requests_violating, r->violating_seconds, r->pod_starts, r->scale_actions, r->peak);
    }
    double cum[CPS_SIM_MAX_POLICIES];
    budget_totals(sim, cum);
    cps_budget_finish(&sim->budget, cum, sim->requests, sim->k);
    for (size_t i = 0; i < sim->setup.n_policies; i++)
        results[i].worst_window_violation_pct = sim->budget.worst[i];
    if (sim->oracle.active) {
        double oracle_cost = results[sim->oracle.index].cost_usd;
        for (size_t i = 0; i < sim->setup.n_policies; i++)
            results[i].cost_vs_oracle = oracle_cost > 0.0 ? results[i].cost_usd / oracle_cost : NAN;
    }
    return 0;
}
