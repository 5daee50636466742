#include "slo_budget.h"

#include <math.h>
/* A violating tick at the usual rate moves the headroom this far (z units). */
#define FEEDBACK_GAIN 0.05
/* The decision interval the gain is stated for: a tick of another length
 * moves it in proportion, so the speed is per unit of time, not per tick. */
#define FEEDBACK_TICK_MS 15000.0
/* A tick at many times the usual rate counts at most this many times over. */
#define FEEDBACK_WEIGHT_MAX 10.0
/* The feedback aims at this share of the budget. A tick counts as violating
 * when its one-minute window's p95 is over the SLO, so a violation shorter
 * than the window is diluted by the seconds around it and often missed. The
 * worst case is smooth traffic whose noise is independent from one minute
 * to the next: every violation is then an isolated minute, and the measured
 * share came out 0.38-0.49 of the true one on synthetic traces of that kind
 * (bench/shapes.py: daily cycles with 2-20 % noise, near-stationary, weekly
 * with holidays), where at an aim of 60 % the true share reached 1.4 % of a
 * 1 % budget. Aiming under the worst of those keeps the budget there; where
 * violations come in longer runs the measure is closer to the truth (or
 * over it), and the aim only buys a little margin. */
#define FEEDBACK_AIM 0.35
/* Time constant of the usual rate (mean_qps): a tick's feedback weight is
 * its rate against it, and the burst memory's hour table is kept relative
 * to it. A day, not the budget window: after traffic drops tenfold for
 * good, a week-long mean weighed every tick at a tenth for days, the
 * feedback lowered the headroom that much slower and the hour table asked
 * for the old level at the start of each hour (in a probe, +47 % of pod-
 * hours the first day, +8 % the fourth; with a day: +34 %, then +2 % the
 * third day). */
#define USUAL_RATE_TAU_MS (24 * 3600 * 1000.0)
/* Rates below this are idle: they say nothing about the headroom. */
#define IDLE_QPS 1e-3

/* Decay factor of a sum with time constant tau over dt. */
static double decay(double dt_ms, double tau_ms)
{
    return tau_ms > 0 ? exp(-dt_ms / tau_ms) : 0.0;
}

/*
 * See slo_budget.h. The decayed mean rate starts at the first tick's rate,
 * so the first ticks weigh 1; from then on a tick at twice the usual rate
 * carries twice the evidence, as it carries twice the requests.
 */
double cps_slo_budget_tick(struct cps_slo_budget *b, int64_t now_ms, int64_t interval_ms,
                           const struct cps_slo_tick *tick, double budget, int64_t window_ms)
{
    int64_t dt_ms = b->t_ms > 0 ? now_ms - b->t_ms : interval_ms;
    double qps = tick->window_qps;
    if (dt_ms < 0)
        b->t_ms = now_ms; /* the clock went back: start again from now */
    if (dt_ms <= 0 || !isfinite(qps) || qps < 0)
        return 0.0;
    b->t_ms = now_ms;
    /* the sums decay over the whole time since the last tick, but the tick
     * counts requests (and steps the feedback) for at most the usual
     * interval: after an outage its window saw only the last minute, and
     * the stretch before is counted neither as violating nor as clean */
    int64_t counted_ms = dt_ms < interval_ms ? dt_ms : interval_ms;
    double served_qps =
        isfinite(tick->served_qps) && tick->served_qps >= 0 ? tick->served_qps : qps;
    int violating = tick->served_violating;
    double requests = served_qps * (double)counted_ms / 1000.0;
    b->last_requests = requests;
    b->last_violating = violating ? 1 : 0;
    double keep_window = decay((double)dt_ms, (double)window_ms);
    double keep_burn = decay((double)dt_ms, (double)CPS_BURN_WINDOW_MS);
    b->window_requests = b->window_requests * keep_window + requests;
    b->window_violating = b->window_violating * keep_window + (violating ? requests : 0.0);
    b->burn_requests = b->burn_requests * keep_burn + requests;
    b->burn_violating = b->burn_violating * keep_burn + (violating ? requests : 0.0);
    if (b->mean_qps <= 0.0)
        b->mean_qps = qps;
    else
        b->mean_qps += (1.0 - decay((double)dt_ms, USUAL_RATE_TAU_MS)) * (qps - b->mean_qps);
    if (qps < IDLE_QPS || b->mean_qps < IDLE_QPS)
        return requests;
    double weight = qps / b->mean_qps;
    if (weight > FEEDBACK_WEIGHT_MAX)
        weight = FEEDBACK_WEIGHT_MAX;
    double step = FEEDBACK_GAIN * weight * (double)counted_ms / FEEDBACK_TICK_MS;
    budget *= FEEDBACK_AIM;
    b->adjust += tick->window_violating ? step * (1.0 - budget) : -step * budget;
    if (b->adjust > CPS_FEEDBACK_ADJUST_MAX)
        b->adjust = CPS_FEEDBACK_ADJUST_MAX;
    if (b->adjust < CPS_FEEDBACK_ADJUST_MIN)
        b->adjust = CPS_FEEDBACK_ADJUST_MIN;
    return requests;
}

struct cps_slo_tick cps_slo_tick_window(double qps, int violating)
{
    struct cps_slo_tick tick = {qps, violating ? 1 : 0, qps, violating ? 1 : 0};
    return tick;
}

double cps_slo_budget_violating_share(const struct cps_slo_budget *b)
{
    return b->window_requests > 0.0 ? b->window_violating / b->window_requests : 0.0;
}

double cps_slo_budget_spent(const struct cps_slo_budget *b, double budget)
{
    return budget > 0.0 ? cps_slo_budget_violating_share(b) / budget : 0.0;
}

double cps_slo_budget_burn_rate(const struct cps_slo_budget *b, double budget)
{
    if (!(budget > 0.0) || !(b->burn_requests > 0.0))
        return 0.0;
    return b->burn_violating / b->burn_requests / budget;
}
