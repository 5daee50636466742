#include "decide.h"

#include <math.h>
#include <string.h>

#include "normal_quantile.h"
#include "remembered.h"
#include "units.h"

#define SECONDS_PER_HOUR 3600.0
#define REQUESTS_PER_MILLION 1e6
/* CPU shares outside this band say little about capacity (idle or saturated). */
#define CAPACITY_MIN_CPU 0.02
#define CAPACITY_MAX_CPU 0.97
/* Weight of a new capacity sample in the running estimate. */
#define CAPACITY_EWMA_WEIGHT 0.3
/* After this many samples, one that is off by more than the ratio is an
 * outlier; this many outliers in a row mean the service changed: re-learn. */
#define CAPACITY_TRUSTED_SAMPLES 8
#define CAPACITY_OUTLIER_RATIO 1.5
#define CAPACITY_RELEARN_AFTER 20
/* A window over the SLO or saturated counts as a capacity sample only when
 * it is below the estimate (the pods got slower), by more than rounding. A
 * tolerance of 1 % stalled the estimate 1 % over the truth, where that
 * kept every window over a tight SLO. */
#define CAPACITY_SLOWER (1.0 - 1e-9)
/* A rate below this is treated as idle when taking ratios (req/s). */
#define QPS_FLOOR 1e-3
/* Surprises are clipped to ±this (log) so one outage cannot own the estimate. */
#define SURPRISE_CLIP 2.0
/* Before this many surprise samples the spread defaults to this (log). */
#define SURPRISE_MIN_SAMPLES 16
#define LEVEL_BUCKET_OFFSET 8
#define LN_2 0.69314718055994530942
#define SURPRISE_PRIOR_SD 0.15
/* The tail offset's step per surprise sample at a 15 s interval (sd
 * units; in proportion to the time a sample stands for, as the spread
 * forgets by time): a sample over the quantile moves it up by this x
 * headroom_quantile, one under it down by this x the rest, so it settles
 * where headroom_quantile of the samples lie under it (a stochastic-
 * approximation quantile). 0.02: a day at 15 s can move it 5.8 sd down,
 * and one sample moves it 0.02. The benches read alike from 0.01 to 0.05. */
#define SURPRISE_TAIL_STEP 0.02
#define SURPRISE_TAIL_STEP_MS 15000.0
/* Bounds of the tail offset (sd units), whatever a run of garbage samples
 * says. Asymmetric: below the normal quantile it can sit no lower than the
 * noise the jumps stand out of (about -1 sd at 0.95 in the tests), above
 * it a rare spike at a high quantile lies many sd out (+4.6 sd at 0.99 for
 * 1.6 x spikes in 2 % of the ticks). */
#define SURPRISE_TAIL_MIN (-2.0)
#define SURPRISE_TAIL_MAX 6.0
/* Time constant of the smoothed demand level. */
#define LEVEL_TAU_MS (120 * 1000LL)
/* Time constant of the slow level that bursts are measured against. */
#define SLOW_LEVEL_TAU_MS (15 * 60 * 1000LL)
/* ... and of the recent level that tells when demand has left it
 * (burst_base): at no demand, it halves in about two minutes. Demand has
 * left the slow level when the recent one is under 1 / RECENT_LEVEL_LEFT
 * of it, and a burst is then sized over RECENT_LEVEL_LEFT x the recent
 * level. The two set how long a drop must last before remembered bursts
 * follow it down, a trade between drops that last and dips that come
 * back; on the public traces the band that serves both is narrow (at a
 * ratio of 2, 2.5 minutes failed NASA x90's cost bar, 5 failed UPS x580's;
 * README, point 5 of the policy). */
#define RECENT_LEVEL_TAU_MS (3 * 60 * 1000LL)
#define RECENT_LEVEL_LEFT 2.0
/* The recent peak halves in this time. The forecast may not run past the
 * larger of that peak and PEAK_GROWTH_CAP x the level by more than
 * PEAK_MARGIN: one burst at a low level must not ask for ten times the pods
 * the busiest recent minute needed, nor hold the burst's pods long after. */
#define PEAK_HALFLIFE_MS (60 * 60 * 1000LL)
/* Halflife of the day's peak (day_peak): what a burst the memory keeps
 * against the slow level may ask for, at most (demand_to_serve). */
#define DAY_PEAK_HALFLIFE_MS (24 * 60 * 60 * 1000LL)
#define PEAK_GROWTH_CAP 2.0
#define PEAK_MARGIN 1.25
/* Decision interval assumed before two decisions have been seen. */
#define DEFAULT_INTERVAL_MS (15 * 1000LL)
/* A gap between two decisions longer than this many usual intervals is an
 * outage (the metrics were missing, the controller was down), not the
 * cadence: the usual interval stands in for it. */
#define OUTAGE_INTERVALS 4
/* The demand ring holds entries at least horizon / RING_SPAN_STEPS apart,
 * so that it reaches back past the horizon however long the start-up. */
#define RING_SPAN_STEPS 20
/* The rate window of the metrics queries (decide.h). */
#define METRICS_WINDOW_MS (CPS_METRICS_WINDOW_S * 1000LL)

void cps_policy_state_init(struct cps_policy_state *state)
{
    memset(state, 0, sizeof *state);
}

/* NaN, infinite, negative or implausible (which would reach the pod
 * arithmetic as infinities) */
static int bad_number(double v)
{
    return !isfinite(v) || v < 0.0 || v > CPS_METRIC_IMPLAUSIBLE;
}

/* Which metric a policy decision cannot do without is missing or garbage.
 * The price is not one of them: without it the configured one is used
 * (cps_decision_price). */
static unsigned missing_metrics(const struct cps_observation *obs)
{
    unsigned missing = obs->missing & ~CPS_METRIC_BIT(CPS_METRIC_COST);
    if (bad_number(obs->qps))
        missing |= CPS_METRIC_BIT(CPS_METRIC_QPS);
    if (bad_number(obs->p95_ms))
        missing |= CPS_METRIC_BIT(CPS_METRIC_P95);
    if (bad_number(obs->cpu_utilization))
        missing |= CPS_METRIC_BIT(CPS_METRIC_CPU);
    if (obs->ready_replicas < 0)
        missing |= CPS_METRIC_BIT(CPS_METRIC_READY);
    if (obs->replicas < 0)
        missing |= CPS_METRIC_BIT(CPS_METRIC_REPLICAS);
    return missing;
}

static int64_t ring_time(const struct cps_policy_state *s, int back)
{
    int i = (s->demand_next - 1 - back + 2 * CPS_DEMAND_RING) % CPS_DEMAND_RING;
    return s->demand_newest_ms - s->demand_age_ms[i];
}

/*
 * Record a decision at now_ms: every entry's age grows by the time since
 * the newest. Ages saturate at the int32 range (24.8 days), which only an
 * entry that old can reach; the policy only asks whether an entry is older
 * than the forecast horizon (at most 7 days), so the answers are the
 * int64 times' own.
 */
static void ring_push(struct cps_policy_state *s, int64_t now_ms, double base_qps)
{
    if (s->demand_count > 0) {
        int64_t step = now_ms - s->demand_newest_ms;
        for (int i = 0; i < CPS_DEMAND_RING; i++) {
            int64_t age = (int64_t)s->demand_age_ms[i] + step;
            s->demand_age_ms[i] = age > INT32_MAX ? INT32_MAX : age < INT32_MIN ? INT32_MIN
                                                                                 : (int32_t)age;
        }
    }
    s->demand_newest_ms = now_ms;
    s->demand_age_ms[s->demand_next] = 0;
    s->demand_qps[s->demand_next] = (float)base_qps;
    s->demand_next = (s->demand_next + 1) % CPS_DEMAND_RING;
    if (s->demand_count < CPS_DEMAND_RING)
        s->demand_count++;
}

static double ring_qps(const struct cps_policy_state *s, int back)
{
    int i = (s->demand_next - 1 - back + 2 * CPS_DEMAND_RING) % CPS_DEMAND_RING;
    return (double)s->demand_qps[i];
}

/* log2 of a rate as the load levels see it: at least QPS_FLOOR, and a
 * non-finite rate (inf or NaN) as the top level's. */
static double level_log2(double qps)
{
    if (!(qps < 1e300))
        return (double)(CPS_LEVEL_BUCKETS - LEVEL_BUCKET_OFFSET);
    return log2(qps > QPS_FLOOR ? qps : QPS_FLOOR);
}

/* Load-level bucket of a rate's level_log2: floor of it, offset so 2^-8 is
 * bucket 0, within the buckets. */
static int level_bucket_of_log2(double log2_qps)
{
    int b = (int)floor(log2_qps) + LEVEL_BUCKET_OFFSET;
    if (b < 0)
        return 0;
    if (b >= CPS_LEVEL_BUCKETS)
        return CPS_LEVEL_BUCKETS - 1;
    return b;
}

static int level_bucket(double qps)
{
    return level_bucket_of_log2(level_log2(qps));
}

/*
 * Mean, spread and tail offset (surprise_tail) of demand surprises for a
 * load level: the level's own bucket once it has enough samples, else the
 * pooled neighbours (widening until enough), else a prior (no offset).
 * Returns the number of samples behind it. `tail` may be NULL.
 */
static uint32_t surprise_in_bucket(const struct cps_policy_state *s, int b, double *mean,
                                   double *sd, double *tail)
{
    for (int radius = 0; radius < CPS_LEVEL_BUCKETS; radius++) {
        double w = 0, m = 0, v = 0, offset = 0;
        uint32_t n = 0;
        for (int i = b - radius; i <= b + radius; i++) {
            if (i < 0 || i >= CPS_LEVEL_BUCKETS || s->surprise_samples[i] == 0)
                continue;
            double wi = (double)s->surprise_samples[i];
            w += wi;
            m += wi * s->surprise_mean[i];
            v += wi * (s->surprise_var[i] + s->surprise_mean[i] * s->surprise_mean[i]);
            offset += wi * s->surprise_tail[i];
            n += s->surprise_samples[i];
        }
        if (n >= SURPRISE_MIN_SAMPLES) {
            m /= w;
            v = v / w - m * m;
            *mean = m;
            *sd = sqrt(v > 0 ? v : 0);
            if (tail)
                *tail = offset / w;
            return n;
        }
    }
    *mean = 0.0;
    *sd = SURPRISE_PRIOR_SD;
    if (tail)
        *tail = 0.0;
    return 0;
}

/*
 * The octave of levels above bucket `level_b`'s: the log2 of its bottom
 * edge (req/s), and the mean, spread and tail offset of its surprises
 * (surprise_in_bucket there). 0 at the top octave.
 *
 * The forecast at a level may ask for no more than that edge would with
 * that spread and tail, so that it never falls as the level rises.
 * Spreads are learned per octave of the level, and relative noise is
 * larger at lower rates: without the bound, demand easing from 130 to 120
 * req/s (across 128) met a spread learned wider and asked for more pods
 * than it had at 130, on a level that only fell (on NASA x900, 1,186 of
 * 18,084 scale-ups came on a level that had not risen, with a wider
 * spread). The mean growth stays the level's own where its octave has
 * learned from its own samples: a level that only spikes reach learns to
 * expect a fall, which says nothing about the levels under it (taken from
 * the edge, the forecast of 100 req/s with 1.6 x spikes in 2 % of the
 * decisions covered 9 % of the horizons where 90 % was asked:
 * test_forecast_covers_its_quantile_of_skewed_surprises). Where the
 * octave has fewer than SURPRISE_MIN_SAMPLES of its own and the one above
 * has them, the level's figures are its neighbours' pooled, and the edge's
 * mean bounds it too: the closed loop's demand, easing after a tenfold
 * ramp, crossed from the learned 128-256 req/s octave into 64-128, which
 * had one sample of its own; the pooled mean was 0.25 higher, and the
 * forecast re-raised the pods on flat demand.
 *
 * The next octave only: where spreads narrow as the level grows, its
 * edge asks for the least of those above.
 */
static int next_octave(const struct cps_policy_state *s, int level_b, double *edge_log2,
                       double *mean, double *sd, double *tail)
{
    int next = level_b + 1;
    if (next >= CPS_LEVEL_BUCKETS)
        return 0;
    *edge_log2 = (double)(next - LEVEL_BUCKET_OFFSET);
    surprise_in_bucket(s, next, mean, sd, tail);
    return 1;
}

/* Lower *quantile, which is level x exp(mean_growth + margin), to the
 * edge's quantile over the same base (its `rise` above the level plus its
 * `edge_margin`) where that is the lower (next_octave); 1 when it did. */
static int under_edge(double *quantile, double level, double mean_growth, double margin,
                      double rise, double edge_margin)
{
    if (!(rise + edge_margin < margin))
        return 0;
    *quantile = level * exp(mean_growth + rise + edge_margin);
    return 1;
}

/* A decaying peak: halved every `halflife_ms`, raised to `q` at once;
 * `memo` is the call site's (exp2_remembered). */
static void peak_step(struct remembered *memo, double *peak, double q, double dt_ms,
                      int64_t halflife_ms)
{
    *peak *= exp2_remembered(memo, -dt_ms / (double)halflife_ms);
    if (q > *peak)
        *peak = q;
}

/*
 * The slower memories: the violation budget (and its feedback), the slow
 * and the recent level, the recent and the day's peak, and the burst
 * memory. An observation is the
 * mean of the metrics window, so it is filed at the window's middle; the
 * burst ratios are taken against the slow level and the usual rate from
 * before it, so a burst does not hide in its own baseline. `exceeded`: the
 * observation was over the nominal upper quantile (normal, without the
 * feedback's offset or the learned tail) a horizon before it.
 */
static void learn_bursts_and_budget(const struct cps_target *t, const struct cps_observation *obs,
                                    struct cps_policy_state *s, int64_t now_ms,
                                    int64_t interval_ms, int64_t observed_ms, int exceeded)
{
    double q = obs->qps > QPS_FLOOR ? obs->qps : QPS_FLOOR;
    double usual_rate = s->budget.mean_qps;
    double slow_before = s->slow_level;
    struct cps_slo_tick tick = cps_slo_tick_window(obs->qps, obs->p95_ms > t->slo_latency_p95_ms);
    /* the last scrape's figures where they are usable, else the window's */
    if ((obs->budget_have & CPS_METRIC_BIT(CPS_METRIC_BUDGET_QPS)) && !bad_number(obs->budget_qps))
        tick.served_qps = obs->budget_qps;
    if ((obs->budget_have & CPS_METRIC_BIT(CPS_METRIC_BUDGET_P95)) &&
        !bad_number(obs->budget_p95_ms))
        tick.served_violating = obs->budget_p95_ms > t->slo_latency_p95_ms;
    cps_slo_budget_tick(&s->budget, now_ms, interval_ms, &tick, t->slo_violation_budget,
                        t->slo_budget_window_ms);
    if (slow_before <= 0.0) {
        s->slow_level = q;
        s->recent_level = q;
        s->recent_peak = q;
        s->day_peak = q;
    } else {
        static _Thread_local struct remembered slow_memo = {0.0, 1.0}, recent_memo = {0.0, 1.0},
                                               peak_memo = {0.0, 1.0}, day_memo = {0.0, 1.0};
        double dt = (double)interval_ms;
        s->slow_level += (1.0 - exp_remembered(&slow_memo, -dt / (double)SLOW_LEVEL_TAU_MS)) *
                         (q - s->slow_level);
        s->recent_level += (1.0 - exp_remembered(&recent_memo, -dt / (double)RECENT_LEVEL_TAU_MS)) *
                           (q - s->recent_level);
        peak_step(&peak_memo, &s->recent_peak, q, dt, PEAK_HALFLIFE_MS);
        peak_step(&day_memo, &s->day_peak, q, dt, DAY_PEAK_HALFLIFE_MS);
    }
    if (slow_before > 0.0 && usual_rate > 0.0)
        cps_burst_observe(&s->bursts, observed_ms - METRICS_WINDOW_MS / 2, q / slow_before,
                          q / usual_rate, exceeded);
}

/*
 * The decision clock went back (a restart onto state backfilled by another
 * clock, a clock step). Every "since" the state keeps would be negative,
 * and a negative time step turns a smoothing factor into an amplifier (a
 * level of 1e15, then NaN for good). Re-anchor at now: the ring of recent
 * decisions is dropped, the ready count counts as just changed (capacity
 * is learned again once a whole window has seen it), and the burst
 * memory's open minute and hour start afresh. What was learned (capacity,
 * the spreads, the budget's sums, the burst tables) is kept.
 */
static void time_went_back(struct cps_policy_state *s, int64_t now_ms)
{
    s->level_t_ms = now_ms;
    s->ready_changed_ms = now_ms;
    s->demand_count = 0;
    s->demand_next = 0;
    cps_burst_restart_watch(&s->bursts);
}

/*
 * One step of bucket b's tail offset toward the headroom_quantile `tau` of
 * the surprises, for a sample standing for `interval_ms`: `excess` is how
 * far (sd units, at the spread the forecast had for it) a surprise went
 * past the normal quantile. The normal
 * quantile, mean + z x sd, is right for normal surprises only: where most
 * horizons see the level hold and a few a step or a spike, the spread is
 * the jumps' and mean + z x sd lies above nearly every horizon, so the
 * pods sit a margin too high all the time (a 0.95 quantile covered 98 % of
 * the horizons in test_policy_memory); where the tail is heavier than
 * normal it lies too low. Learned per load level, as the spread is.
 */
static void learn_tail(struct cps_policy_state *s, int b, double excess, double tau,
                       int64_t interval_ms)
{
    /* above 0.95 the step grows as the share over the quantile shrinks, so
     * that the drift toward a quantile in the tail (a 1 % one among spikes
     * in 2 % of the horizons) is as fast as toward a 5 % one */
    double rarity = tau > 0.95 ? 0.05 / (1.0 - tau) : 1.0;
    double step = SURPRISE_TAIL_STEP * rarity * (double)interval_ms / SURPRISE_TAIL_STEP_MS;
    double offset = s->surprise_tail[b];
    offset += excess > offset ? step * tau : -step * (1.0 - tau);
    if (offset > SURPRISE_TAIL_MAX)
        offset = SURPRISE_TAIL_MAX;
    if (offset < SURPRISE_TAIL_MIN)
        offset = SURPRISE_TAIL_MIN;
    s->surprise_tail[b] = (float)offset;
}

/*
 * Learn from one observation: per-pod capacity (from qps and CPU when every
 * pod is ready), the latency line (lib/latency_line.h: from the observed
 * p95 against the queueing model), the spread and tail of demand surprises
 * over the horizon per load level (and how loud each minute of the hour's
 * are: minute_spread.h), the smoothed level, then the slower
 * memories (learn_bursts_and_budget). `startup_ms`: how long new pods take,
 * as the policy plans with it (cps_startup_in_use).
 */
static void learn(const struct cps_target *t, const struct cps_observation *obs,
                  struct cps_policy_state *s, int64_t now_ms, int64_t interval_ms,
                  int64_t horizon_ms, int64_t startup_ms)
{
    const struct cps_policy_params *p = &t->policy;
    int64_t observed_ms = now_ms - p->metrics_lag_ms;
    if (!s->started) {
        s->started = 1;
        s->last_ready = obs->ready_replicas;
        s->ready_changed_ms = now_ms - p->metrics_lag_ms - METRICS_WINDOW_MS;
    } else if (now_ms < s->level_t_ms) {
        time_went_back(s, now_ms);
    }
    if (obs->ready_replicas != s->last_ready) {
        s->last_ready = obs->ready_replicas;
        s->ready_changed_ms = now_ms;
    }
    /* the window's CPU belongs to today's ready count only if that count
     * held over the whole window (plus a decision interval of uncertainty
     * about when between two decisions it changed) */
    int steady = now_ms - s->ready_changed_ms >= p->metrics_lag_ms + METRICS_WINDOW_MS + interval_ms;
    /* capacity: cpu = qps / (ready * μ). A healthy window (within the SLO,
     * not saturated) gives μ. One over the SLO or saturated gives at most an
     * upper bound: CPU capped at 1 overstates μ, and so does a slow
     * dependency (latency up, CPU down). It is taken only when it says the
     * pods are slower than believed, the direction that adds pods: without
     * it, a release slower by more than the margin makes every window
     * unhealthy, and the old μ would stand for good. */
    int healthy = obs->cpu_utilization < CAPACITY_MAX_CPU && obs->p95_ms <= t->slo_latency_p95_ms;
    double mu = obs->ready_replicas > 0 && obs->cpu_utilization > 0.0
                    ? obs->qps / (obs->cpu_utilization * (double)obs->ready_replicas)
                    : 0.0;
    int slower = s->capacity_samples > 0 && mu < s->service_rate_estimate * CAPACITY_SLOWER;
    /* a window that says something about capacity and latency: every pod
     * ready, the count held over it, neither idle nor without traffic */
    int settled = steady && obs->ready_replicas > 0 && obs->ready_replicas == obs->replicas &&
                  obs->cpu_utilization > CAPACITY_MIN_CPU && obs->qps > QPS_FLOOR;
    double per_pod = settled ? obs->qps / (double)obs->ready_replicas : 0.0;
    if (settled && (healthy || slower)) {
        int outlier = s->capacity_samples >= CAPACITY_TRUSTED_SAMPLES &&
                      (mu > s->service_rate_estimate * CAPACITY_OUTLIER_RATIO ||
                       mu < s->service_rate_estimate / CAPACITY_OUTLIER_RATIO);
        if (outlier && ++s->capacity_rejected < CAPACITY_RELEARN_AFTER) {
            /* keep the estimate; a persistent change re-learns below */
        } else {
            if (outlier)
                s->capacity_samples = 0;
            s->capacity_rejected = 0;
            if (s->capacity_samples == 0)
                s->service_rate_estimate = mu;
            else
                s->service_rate_estimate += CAPACITY_EWMA_WEIGHT * (mu - s->service_rate_estimate);
            if (healthy)
                cps_latency_line_learn(&s->latency, s->service_rate_estimate, per_pod,
                                       obs->p95_ms, interval_ms,
                                       s->capacity_samples >= CAPACITY_TRUSTED_SAMPLES,
                                       s->capacity_samples == 0);
            s->capacity_samples++;
        }
    }
    /* the slope also from a settled window a little over the SLO (not
     * saturated): within the SLO only, a noisy p95 loses its high
     * readings and the slope sinks (cps_latency_line_learn_slope) */
    if (settled && !healthy && obs->cpu_utilization < CAPACITY_MAX_CPU &&
        obs->p95_ms <= CPS_SHAPE_OVER_SLO_MAX * t->slo_latency_p95_ms &&
        s->capacity_samples >= CAPACITY_TRUSTED_SAMPLES)
        cps_latency_line_learn_slope(&s->latency, s->service_rate_estimate, per_pod, obs->p95_ms,
                                     interval_ms);
    /* demand surprise: observed log growth over the horizon, filed under
     * the load level it grew from; and whether it went past the forecast's
     * nominal upper quantile from then (at that level's spread, before this
     * sample joins it). Not the margin the budget feedback has moved it to:
     * that offset sinks on a target that never spends its budget, and a
     * threshold below the mean would make every minute "exceed", so that
     * none could stand out on the clock; nor the learned tail, which may
     * sit below the mean as well. The sample then steps the tail. */
    double q = obs->qps > QPS_FLOOR ? obs->qps : QPS_FLOOR;
    int exceeded = 0;
    /* a spike the clock memory knows and that is over before pods asked
     * for now are ready is the memory's to size: learned as a surprise as
     * well, an 8 x spike of one minute each hour kept the spread at four
     * times its noise's, and the pods after every spike with it (23 % of
     * the cost of bench/shapes.py's hourly-spike) */
    int64_t ready_ms = now_ms + startup_ms;
    /* the window is [end - 60 s, end): its last millisecond, so that a
     * window ending on a minute's first does not touch that minute */
    int explained = cps_burst_explains(&s->bursts, q, s->slow_level, PEAK_MARGIN,
                                       observed_ms - METRICS_WINDOW_MS, observed_ms - 1, ready_ms,
                                       ready_ms + interval_ms);
    /* the tail is an offset on headroom_quantile: one learned at another
     * (before a config reload changed it) starts again from 0 */
    if (s->tail_quantile != (float)p->headroom_quantile) {
        memset(s->surprise_tail, 0, sizeof s->surprise_tail);
        s->tail_quantile = (float)p->headroom_quantile;
    }
    for (int back = 0; back < s->demand_count; back++) {
        int64_t age = now_ms - ring_time(s, back);
        if (age < horizon_ms)
            continue;
        if (age > 2 * horizon_ms)
            break; /* from before an outage: not a growth over the horizon */
        double past = ring_qps(s, back);
        double observed_growth = log(q / past);
        double growth = observed_growth;
        if (growth > SURPRISE_CLIP)
            growth = SURPRISE_CLIP;
        if (growth < -SURPRISE_CLIP)
            growth = -SURPRISE_CLIP;
        int b = level_bucket(past);
        double then_mean, then_sd;
        uint32_t then_samples = surprise_in_bucket(s, b, &then_mean, &then_sd, NULL);
        static _Thread_local struct remembered z_up_memo = {0.5, 0.0};
        double z_up = fn_remembered(&z_up_memo, p->headroom_quantile, cps_normal_quantile);
        exceeded = observed_growth > then_mean + z_up * then_sd;
        if (explained)
            break; /* the clock's burst: it still counts as exceeding, for the clock */
        /* the tail against a spread learned from samples, not the prior */
        if (then_samples >= SURPRISE_MIN_SAMPLES && then_sd > 0.0) {
            double z = (growth - then_mean) / then_sd;
            learn_tail(s, b, z - z_up, p->headroom_quantile, interval_ms);
            cps_minute_spread_learn(&s->minute_spread, now_ms, z);
        }
        /* exponential forgetting by elapsed time, halflife from config */
        static _Thread_local struct remembered forget_memo = {0.0, 1.0};
        double weight = s->surprise_samples[b] < SURPRISE_MIN_SAMPLES
                            ? 1.0 / (double)(s->surprise_samples[b] + 1)
                            : 1.0 - exp2_remembered(&forget_memo, -(double)interval_ms /
                                                     (double)p->volatility_halflife_ms);
        double delta = growth - s->surprise_mean[b];
        s->surprise_mean[b] += (float)(weight * delta);
        s->surprise_var[b] = (float)((1.0 - weight) * (s->surprise_var[b] + weight * delta * delta));
        if (s->surprise_samples[b] < UINT32_MAX)
            s->surprise_samples[b]++;
        break;
    }
    /* the base for the next forecasts: a smoothed level, but never below
     * what is observed now, so a real surge is followed at once */
    if (s->level_t_ms == 0 && s->level_ewma == 0.0) {
        s->level_ewma = q;
    } else {
        static _Thread_local struct remembered level_memo = {0.0, 1.0};
        double dt = (double)(now_ms - s->level_t_ms);
        double alpha = 1.0 - exp_remembered(&level_memo, -dt / (double)LEVEL_TAU_MS);
        s->level_ewma += alpha * (q - s->level_ewma);
    }
    s->level_t_ms = now_ms;
    s->base_qps = s->level_ewma > q ? s->level_ewma : q;
    /* entries at least horizon / RING_SPAN_STEPS apart (every decision at
     * the defaults), so the ring reaches past a long start-up's horizon */
    if (s->demand_count == 0 || now_ms - s->demand_newest_ms >= horizon_ms / RING_SPAN_STEPS)
        ring_push(s, now_ms, s->base_qps);
    learn_bursts_and_budget(t, obs, s, now_ms, interval_ms, observed_ms, exceeded);
}

/* SLO-safe requests/s per ready pod: from config, or where the learned
 * latency line meets the SLO (0 before capacity is learned, -1 where no
 * count of pods meets it). */
static double safe_rate_per_pod(const struct cps_target *t, const struct cps_policy_state *s)
{
    if (!t->capacity_auto)
        return t->capacity_rps_per_pod;
    if (s->capacity_samples == 0)
        return 0.0;
    return cps_latency_line_safe_rate(&s->latency, s->service_rate_estimate,
                                      t->slo_latency_p95_ms);
}

static int32_t clamp_i32(int64_t v, int32_t lo, int32_t hi)
{
    if (v < lo)
        return lo;
    if (v > hi)
        return hi;
    return (int32_t)v;
}

/*
 * floor() and ceil() of a pod count computed from money or rates. Decimal
 * figures are not exact in binary: 0.30 / 0.05 is 5.999999999999999 and
 * 10 * 0.7 / 0.5 is 14.000000000000002, so a plain floor or ceil is one pod
 * off exactly at the round figures people configure.
 * ROUND_REL_EPSILON forgives a few ulps of such error; it is relative, so it
 * holds at any magnitude, and far below any real fraction of a pod (1e-9 of
 * a million pods is a thousandth of a pod).
 */
#define ROUND_REL_EPSILON 1e-9

static double floor_tolerant(double x)
{
    return isfinite(x) ? floor(x + fabs(x) * ROUND_REL_EPSILON) : x; /* inf - inf is NaN */
}

static double ceil_tolerant(double x)
{
    return isfinite(x) ? ceil(x - fabs(x) * ROUND_REL_EPSILON) : x;
}

/* See decide.h. A price of 0 (or garbage) from the query is no price:
 * OpenCost answers 0 where it has no pricing data, and taken as a price
 * it would make every pod free and lift the budget cap. */
double cps_decision_price(const struct cps_target *t, const struct cps_observation *obs)
{
    double price = obs->cost_per_pod_hour;
    if (!(obs->missing & CPS_METRIC_BIT(CPS_METRIC_COST)) && isfinite(price) && price > 0.0 &&
        price <= CPS_METRIC_IMPLAUSIBLE)
        return price;
    return t->cost_pod_hour_usd;
}

/* The most pods cost.max_per_hour affords at `price`, within [lo, hi];
 * hi when there is no cap (or no price to apply it with). */
static int32_t budget_cap_pods(const struct cps_target *t, double price, int32_t lo, int32_t hi)
{
    if (!(t->cost_max_per_hour > 0.0) || !(price > 0.0))
        return hi;
    double cap = floor_tolerant(t->cost_max_per_hour / price);
    int32_t cap_pods = cap > (double)hi ? hi : (int32_t)cap;
    return cap_pods < lo ? lo : cap_pods;
}

static int32_t pods_for(double qps, double per_pod)
{
    double n = ceil_tolerant(qps / per_pod);
    if (n > INT32_MAX)
        return INT32_MAX;
    return n < 1.0 ? 1 : (int32_t)n;
}

/*
 * The demand the day's memory (the start-of-hour table) calls for, or 0.
 * It stands in for the metrics while they cannot speak for the hour: from a
 * lead before the hour begins until they have seen a whole window of it,
 * `seen_ms` (the metrics lag plus the window) into the hour. From then on
 * the forecast has the hour's own demand, and the memory, which is the
 * hour's head on earlier days against the usual rate, would only keep
 * pods for a level today does not have: on a quiet day, or where the hour's
 * head was noisy, for the rest of the head (minutes of one or two extra
 * pods an hour, much of the cost at 1 to 4 pods).
 */
static double daily_expected(const struct cps_policy_state *s, int64_t now_ms, int64_t lead_to,
                             int64_t seen_ms)
{
    int64_t into_hour = lead_to % CPS_MS_PER_HOUR;
    if (into_hour < 0)
        into_hour += CPS_MS_PER_HOUR;
    if (now_ms - (lead_to - into_hour) > seen_ms)
        return 0.0;
    return s->budget.mean_qps * cps_burst_hour_expected(&s->bursts, now_ms, lead_to);
}

/*
 * The level a burst of either minute table is sized over. Both keep a
 * burst's size against the slow level it rose from, and that is the level
 * to size it over while demand stays near it. Once demand has left it (the
 * recent level under 1 / RECENT_LEVEL_LEFT of it), the slow level still
 * remembers a surge that is over: sized over it, bursts asked for pods
 * nobody needed (nab-tw-ups at x580: 3 to 8 pods for up to 90 minutes
 * after a surge, where one served). Sized then over RECENT_LEVEL_LEFT x
 * the recent level. A dip that comes back within a minute or two (an
 * outage of the traffic) keeps the slow level: the recent level has not
 * halved yet. Learning stays on the slow level (the ratios the tables
 * keep, and whether a spike is one the clock explains): a burst is a
 * ratio over the level it rose from, whatever the pods were sized over.
 */
static double burst_base(const struct cps_policy_state *s)
{
    double left = s->recent_level * RECENT_LEVEL_LEFT;
    return left < s->slow_level ? left : s->slow_level;
}

/*
 * The demand the pods must be ready for, by mechanism: the forecast's upper
 * quantile (its spread narrowed where the minute of the hour it is judged
 * in, now + `horizon_ms`, is quiet; its headroom moved by the budget
 * feedback), capped against the recent peak, raised to a remembered burst
 * that is due within the lead time. Fills the decision's figures; returns
 * the upper and (through `down_qps`) the scale-down rate, and the point
 * forecast through `point_qps`.
 */
static double demand_to_serve(const struct cps_target *t, struct cps_policy_state *s,
                              int64_t now_ms, int64_t interval_ms, int64_t startup_ms,
                              int64_t horizon_ms, struct cps_decision *d, double *down_qps,
                              double *point_qps, double *unadjusted_qps)
{
    const struct cps_policy_params *p = &t->policy;
    double mean_growth, sd, tail;
    double level_l2 = level_log2(s->base_qps);
    int level_b = level_bucket_of_log2(level_l2);
    surprise_in_bucket(s, level_b, &mean_growth, &sd, &tail);
    /* narrower where the minute the forecast is judged in is quiet */
    double minute_factor = cps_minute_spread_factor(&s->minute_spread, now_ms + horizon_ms);
    sd *= minute_factor;
    d->minute_factor = minute_factor;
    double level = s->base_qps, adjust = s->budget.adjust;
    /* the quantile where the surprises put it: shifted by the learned tail
     * offset, which is learned at headroom_quantile. The scale-down
     * quantile shifts by it only when it is the same quantile: at another
     * one the offset is not known (at 0.99 against 0.95 it may have the
     * other sign), and the normal one is kept */
    static _Thread_local struct remembered z_up_memo = {0.5, 0.0}, z_down_memo = {0.5, 0.0};
    double z_up_normal = fn_remembered(&z_up_memo, p->headroom_quantile, cps_normal_quantile);
    double z_down_normal = fn_remembered(&z_down_memo, p->scale_down_quantile, cps_normal_quantile);
    int down_has_tail = p->scale_down_quantile == p->headroom_quantile;
    double z_up = z_up_normal + tail;
    double z_down = z_down_normal + (down_has_tail ? tail : 0.0);
    /* the same expression gives the same number: one exp, not two, where
     * the quantiles agree (the defaults) or the feedback is at 0 */
    double point = level * exp(mean_growth);
    double up = level * exp(mean_growth + (z_up + adjust) * sd);
    double down = z_down == z_up ? up : level * exp(mean_growth + (z_down + adjust) * sd);
    double unadjusted = adjust == 0.0 ? up : level * exp(mean_growth + z_up * sd);
    /* never more than the same quantiles at the next octave's edge,
     * compared as logarithms over level x exp(mean_growth) */
    double edge_log2, edge_mean, edge_sd, edge_tail;
    if (next_octave(s, level_b, &edge_log2, &edge_mean, &edge_sd, &edge_tail)) {
        edge_sd *= minute_factor;
        /* the edge's mean growth too where only it has learned its own */
        int borrowed = s->surprise_samples[level_b] < SURPRISE_MIN_SAMPLES &&
                       s->surprise_samples[level_b + 1] >= SURPRISE_MIN_SAMPLES;
        double gap = borrowed ? edge_mean - mean_growth : 0.0;
        double rise = LN_2 * (edge_log2 - level_l2);
        double z_up_edge = z_up_normal + edge_tail;
        double z_down_edge = z_down_normal + (down_has_tail ? edge_tail : 0.0);
        if (under_edge(&up, level, mean_growth, (z_up + adjust) * sd, rise,
                       gap + (z_up_edge + adjust) * edge_sd)) {
            d->octave_bound = 1;
            d->octave_sd = edge_sd;
        }
        under_edge(&down, level, mean_growth, (z_down + adjust) * sd, rise,
                   gap + (z_down_edge + adjust) * edge_sd);
        under_edge(&unadjusted, level, mean_growth, z_up * sd, rise, gap + z_up_edge * edge_sd);
    }
    double grown = level * PEAK_GROWTH_CAP;
    double cap = (s->recent_peak > grown ? s->recent_peak : grown) * PEAK_MARGIN;
    d->peak_cap_qps = cap;
    d->bound = adjust != 0.0 ? CPS_BOUND_FEEDBACK : CPS_BOUND_FORECAST;
    if (up > cap) {
        up = cap;
        d->bound = CPS_BOUND_PEAK_CAP;
    }
    if (down > cap)
        down = cap;
    if (unadjusted > cap)
        unadjusted = cap;
    /* a remembered burst due before pods asked for now would be ready for
     * the next decision's: the lead is the start-up plus an interval. A
     * minute on the clock (one that exceeds the forecast far more often
     * than the others) calls for its burst size even in the hours between
     * two of its bursts, but no more than the cap allows: one burst size
     * may be a spike of a hundred times the level. A burst due in its own
     * minute asks for no more than the day's peak allows (with the same
     * margin): its size is kept against the slow level it rose from, and
     * one learned at a quiet level, applied at a busier one, asked for ten
     * times the largest demand of a whole trace (nab-tw-ups at x580: 78
     * pods where the oracle never needs more than 8). Not the recent
     * peak: an hourly burst finds it halved, and would get half its pods */
    d->startup_s = (double)startup_ms / 1000.0;
    d->startup_observed = startup_ms > p->startup_ms;
    int64_t lead_to = now_ms + startup_ms + interval_ms;
    double base = burst_base(s);
    double minute_ratio = cps_burst_minute_expected(&s->bursts, now_ms, lead_to);
    double burst = minute_ratio > 1.0 ? base * minute_ratio : 0.0;
    enum cps_burst_source source = CPS_BURST_RECURRING;
    double day_cap = (s->day_peak > grown ? s->day_peak : grown) * PEAK_MARGIN;
    int capped = burst > day_cap;
    if (capped)
        burst = day_cap;
    double clock_ratio = cps_burst_clock_expected(&s->bursts, now_ms, lead_to);
    double clock = clock_ratio > 1.0 ? base * clock_ratio : 0.0;
    int clock_capped = clock > cap;
    if (clock_capped)
        clock = cap;
    if (clock > burst) {
        burst = clock;
        source = CPS_BURST_ON_THE_CLOCK;
        capped = clock_capped;
    }
    double daily = daily_expected(s, now_ms, lead_to, p->metrics_lag_ms + METRICS_WINDOW_MS);
    if (daily > burst) {
        burst = daily;
        source = CPS_BURST_HOUR_OF_DAY;
        capped = 0;
    }
    /* the memory keeps a typical size of the burst, as the forecast's
     * point is a typical level: the forecast's margin goes on top, up to
     * PEAK_MARGIN, and within the peak cap (never below the size itself) */
    double margin = burst > 0.0 ? exp((z_up + adjust) * sd) : 1.0;
    if (margin > PEAK_MARGIN)
        margin = PEAK_MARGIN;
    if (burst > 0.0 && margin > 1.0) {
        double with_margin = burst * margin;
        if (with_margin > cap && source != CPS_BURST_HOUR_OF_DAY)
            with_margin = cap;
        if (with_margin > burst)
            burst = with_margin;
    }
    if (burst > up) {
        up = burst;
        d->bound = CPS_BOUND_BURST;
        d->burst_qps = burst;
        d->burst_source = source;
        d->burst_capped = capped;
    }
    if (burst > down)
        down = burst;
    if (burst > unadjusted)
        unadjusted = burst;
    d->forecast_qps = up;
    d->surprise_sd = sd;
    d->surprise_tail = tail;
    d->headroom_adjust = adjust;
    *down_qps = down;
    *point_qps = point;
    *unadjusted_qps = unadjusted;
    return up;
}

/*
 * The time this decision stands for: the time since the previous one. The
 * first gap sets the usual interval; later, a gap over OUTAGE_INTERVALS
 * usual intervals is an outage (metrics missing, the controller down), and
 * the usual interval stands in for it: an hour-long gap would otherwise
 * step the budget feedback by an hour's worth at once (to its ceiling),
 * count an hour of requests by one window, and ask the burst memory about
 * the whole coming hour. Each such gap doubles the usual interval toward
 * it, so a cadence made longer by a reload is learned in a few decisions.
 * The clock going back, or the first decision: the usual interval.
 */
static int64_t decision_interval(struct cps_policy_state *s, int64_t now_ms)
{
    int64_t usual = s->interval_ms > 0 ? s->interval_ms : DEFAULT_INTERVAL_MS;
    int64_t gap = s->started ? now_ms - s->level_t_ms : 0;
    if (gap <= 0)
        return usual;
    if (s->interval_ms == 0 || gap <= OUTAGE_INTERVALS * usual) {
        s->interval_ms = gap > INT32_MAX ? INT32_MAX : (int32_t)gap;
        return gap;
    }
    int64_t longer = 2 * usual < gap ? 2 * usual : gap;
    s->interval_ms = longer > INT32_MAX ? INT32_MAX : (int32_t)longer;
    return usual;
}

/*
 * The cpscale policy: the pods that serve, within the SLO, the demand to
 * be ready for over the time new pods take to start and the metrics to
 * show them (demand_to_serve). Scale-downs use their own quantile, since
 * removing a pod is instant and getting it back is not. A cost target trims
 * the safety margin, never the point forecast, at `price` per pod-hour
 * (cps_decision_price). The decision names the
 * mechanism that set the count: the feedback only when the count with its
 * offset differs from the count without.
 */
static int32_t policy_recommend(const struct cps_target *t, const struct cps_observation *obs,
                                double price, struct cps_policy_state *s, int64_t now_ms,
                                struct cps_decision *d)
{
    const struct cps_policy_params *p = &t->policy;
    int32_t current = obs->replicas;
    /* the scale-up being timed, against the decision before this one, read
     * before the interval and learn() move its clock and ready count on */
    if (s->started)
        cps_startup_observe(&s->startup, now_ms,
                            s->interval_ms > 0 ? s->interval_ms : DEFAULT_INTERVAL_MS,
                            now_ms - s->level_t_ms, obs->replicas, obs->ready_replicas,
                            s->last_ready);
    int64_t interval_ms = decision_interval(s, now_ms);
    /* from the middle of the metrics window to the end of the next decision's effect */
    int64_t horizon_ms = p->metrics_lag_ms + p->startup_ms + 2 * interval_ms;
    /* the start-up a burst is led by (the horizon keeps the configured one),
     * from the learned value the gauge exports too (one decay a decision) */
    double learned_ms = cps_startup_learned_ms(&s->startup, now_ms);
    int64_t startup_ms = cps_startup_plan_ms(learned_ms, p->startup_ms);
    d->startup_learned_s = learned_ms / 1000.0;
    learn(t, obs, s, now_ms, interval_ms, horizon_ms, startup_ms);
    double per_pod = safe_rate_per_pod(t, s);
    d->rps_per_pod = per_pod;
    d->latency_shape = cps_latency_line_shape(&s->latency);
    d->level_qps = s->base_qps;
    d->tick_requests = s->budget.last_requests;
    d->tick_violating = s->budget.last_violating;
    d->budget_spent = cps_slo_budget_spent(&s->budget, t->slo_violation_budget);
    d->burn_rate = cps_slo_budget_burn_rate(&s->budget, t->slo_violation_budget);
    if (per_pod <= 0.0) {
        /* Capacity not learned yet (0), or the model says even an idle pod
         * misses the SLO (-1), where more pods cannot fix latency: keep CPU
         * at or below CPS_BOOTSTRAP_CPU, and do not scale down on a guess. */
        int32_t ready = obs->ready_replicas > 0 ? obs->ready_replicas : current;
        double want = ceil_tolerant((double)ready * obs->cpu_utilization / CPS_BOOTSTRAP_CPU);
        d->basis = per_pod == 0.0 ? CPS_BASIS_LEARNING : CPS_BASIS_SLO_UNREACHABLE;
        if (want <= (double)current)
            return current;
        return want > (double)t->max_replicas ? t->max_replicas : (int32_t)want;
    }
    double down, point, unadjusted;
    double up =
        demand_to_serve(t, s, now_ms, interval_ms, startup_ms, horizon_ms, d, &down, &point,
                        &unadjusted);
    int32_t want_up = pods_for(up, per_pod);
    int32_t want_down = pods_for(down, per_pod);
    int32_t want_point = pods_for(point, per_pod);
    int32_t rec = current;
    if (want_up > current)
        rec = want_up;
    else if (want_down < current)
        rec = want_down > want_up ? want_down : want_up;
    if (d->bound == CPS_BOUND_FEEDBACK && pods_for(unadjusted, per_pod) == rec)
        d->bound = CPS_BOUND_FORECAST;
    if (t->cost_target_per_million > 0.0 && price > 0.0 && rec > want_point) {
        double affordable = floor_tolerant(t->cost_target_per_million * point * SECONDS_PER_HOUR /
                                           (price * REQUESTS_PER_MILLION));
        int32_t affordable_pods = affordable >= (double)INT32_MAX ? INT32_MAX : (int32_t)affordable;
        if (affordable_pods < rec) {
            rec = affordable_pods > want_point ? affordable_pods : want_point;
            d->cost_target_pods = rec;
            d->bound = CPS_BOUND_COST_TARGET;
        }
    }
    return rec;
}

/*
 * Decide: policy (or the given recommendation), then the behavior rails,
 * then min/max and the budget cap. Missing data never scales down.
 */
int cps_decide(const struct cps_target *t, const struct cps_observation *obs,
               struct cps_history *history, struct cps_policy_state *state, int64_t now_ms,
               const int32_t *given, struct cps_decision *d)
{
    memset(d, 0, sizeof *d);
    int32_t current = obs->replicas >= 0 ? obs->replicas : 0;
    int32_t lo = t->min_replicas, hi = t->max_replicas;
    d->current = current;
    d->cpu_utilization = obs->cpu_utilization;
    if (t->paused) {
        d->desired = d->recommendation = current;
        d->reason = CPS_REASON_PAUSED;
        d->basis = CPS_BASIS_PAUSED;
        return 0;
    }
    double price = cps_decision_price(t, obs);
    unsigned missing = given ? (obs->missing & CPS_METRIC_BIT(CPS_METRIC_REPLICAS)) : missing_metrics(obs);
    if (missing) {
        int32_t hold = current;
        /* the fallback raises the count, but not past the budget cap */
        int32_t fallback = t->fallback_replicas;
        int32_t cap_pods = budget_cap_pods(t, price, lo, hi);
        if (fallback > cap_pods)
            fallback = cap_pods;
        if (t->on_missing == CPS_MISSING_FALLBACK && fallback > hold) {
            hold = fallback;
            d->reason = CPS_REASON_MISSING_FALLBACK;
        } else {
            d->reason = CPS_REASON_MISSING_HOLD;
        }
        d->basis = CPS_BASIS_MISSING;
        d->missing = missing;
        d->desired = d->recommendation = clamp_i32(hold, lo, hi > lo ? hi : lo);
        if (d->desired < current && current <= hi)
            d->desired = current; /* never down on missing data (inside the bounds) */
        return 0;
    }
    int32_t rec;
    if (given) {
        rec = *given;
        d->basis = CPS_BASIS_GIVEN;
    } else {
        rec = policy_recommend(t, obs, price, state, now_ms, d);
    }
    d->recommendation = rec;
    /* the budget cap bounds the recommendation, before the rails: it is
     * never scaled up past, and a count above it (the price rose) comes
     * down to it at the pace of the scale-down rails, so one wrong price
     * sample cannot take most of the pods away in a tick */
    int32_t cap_pods = budget_cap_pods(t, price, lo, hi);
    int capped = rec > cap_pods && cap_pods < hi; /* at max, the max binds */
    if (capped)
        rec = cap_pods;
    struct cps_behavior_result br;
    cps_behavior_normalize(&t->behavior, history, now_ms, current, rec, lo, hi, &br);
    int32_t desired = br.desired;
    enum cps_reason reason;
    if (br.limit == CPS_BEHAVIOR_SCALE_UP_LIMIT)
        reason = CPS_REASON_SCALE_UP_LIMITED;
    else if (br.limit == CPS_BEHAVIOR_SCALE_DOWN_LIMIT)
        reason = CPS_REASON_SCALE_DOWN_LIMITED;
    else if (br.limit == CPS_BEHAVIOR_TOO_MANY)
        reason = CPS_REASON_CLAMPED_MAX;
    else if (br.limit == CPS_BEHAVIOR_TOO_FEW)
        reason = CPS_REASON_CLAMPED_MIN;
    else if (br.stabilization_held && desired == current)
        reason = CPS_REASON_STABILIZED;
    else if (desired > current)
        reason = CPS_REASON_SCALE_UP;
    else if (desired < current)
        reason = CPS_REASON_SCALE_DOWN;
    else
        reason = CPS_REASON_STEADY;
    if (capped) {
        d->budget_pods = cap_pods;
        if (desired == cap_pods)
            reason = CPS_REASON_BUDGET_CAP;
    }
    d->desired = clamp_i32(desired, lo, hi);
    d->reason = reason;
    d->rail_bound = capped || d->desired != rec || reason == CPS_REASON_STABILIZED;
    if (!given)
        cps_startup_asked(&state->startup, now_ms, current, obs->ready_replicas, d->desired);
    return 0;
}
