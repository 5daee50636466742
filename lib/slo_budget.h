/*
 * The SLO's violation budget, measured, and the feedback that spends it.
 *
 * The budget is a share of requests (slo.violation_budget, 1 % by default)
 * that may be served while p95 is over the SLO, over a rolling window
 * (slo.budget_window). The policy sees one observation per tick: the rate
 * and the p95 of the last metrics window. A tick's requests (rate x the
 * time since the previous tick) count as violating when its p95 is over the
 * SLO. The controller also reads the p95 of the last scrape interval alone
 * (queries.budget_p95_ms) and counts by that where it has it: a window
 * keeps reading violating for up to its length after the service has
 * recovered, and misses a violation shorter than it. The simulator's report
 * counts exactly, per second.
 *
 * Two exponentially decayed sums keep the measure in a few bytes: one with
 * the budget window as time constant (the budget spent, what an SLO report
 * shows) and one with an hour (the burn rate, what pages someone).
 *
 * The feedback is a stochastic-approximation step on the headroom, in
 * z-score units of the demand-surprise spread: a violating tick raises it by
 * GAIN x (1 - budget), a clean one lowers it by GAIN x budget, each weighted
 * by the tick's requests against the usual rate. It steps on the window's
 * p95 alone, in the simulator and the controller alike. Its fixed point is
 * the one where the window's violating share equals the budget (aimed at
 * 35 % of it, because the one-minute window undercounts short violations:
 * see FEEDBACK_AIM), so on traffic that needs more margin it climbs, on traffic
 * that needs less it comes down, without being told which traffic it is.
 * Up is fast (a violating tick moves it as far as about 285 clean ones at
 * a 1 % budget), down is slow. It is bounded, and
 * the policy caps the forecast besides, so one burst cannot run away with it.
 * The gain is small (a violating tick moves it 0.05 z): violations come in
 * runs, and a large gain swings the headroom after each run, which costs
 * more than it saves (pods cost in proportion to e^(z x spread), convex).
 *
 * Pure: no I/O, no clock.
 */
#ifndef CPS_SLO_BUDGET_H
#define CPS_SLO_BUDGET_H

#include <stdint.h>

/* Time constant of the fast (burn-rate) sums. */
#define CPS_BURN_WINDOW_MS (3600 * 1000LL)
/* Bounds of the headroom adjustment, in z units. */
#define CPS_FEEDBACK_ADJUST_MIN (-4.0)
#define CPS_FEEDBACK_ADJUST_MAX 3.0

struct cps_slo_budget {
    double window_requests;  /* decayed over the budget window */
    double window_violating;
    double burn_requests;    /* decayed over CPS_BURN_WINDOW_MS */
    double burn_violating;
    double mean_qps;         /* the usual rate: decayed mean over a day */
    double adjust;           /* the feedback's headroom offset, z units */
    double last_requests;    /* what the last tick accounted */
    int32_t last_violating;
    int64_t t_ms;            /* time of the last tick, 0 before the first */
};

/* What one tick saw, twice: over the metrics window (what the policy
 * decides on) and as finely as the caller can tell what was served since
 * the previous tick (the controller: the last scrape interval). Where the
 * caller has nothing finer, the two are the same. */
struct cps_slo_tick {
    double window_qps;
    int window_violating;  /* the window's p95 over the SLO */
    double served_qps;
    int served_violating;
};

/*
 * Account one tick: `served_qps` was served over the time since the
 * previous tick, but for no more than `interval_ms`, the usual time
 * between ticks (and for that long on the first): after an outage the
 * tick's window saw only its last minute. Over the SLO when
 * `served_violating`. Decays both sums over the whole time, then steps the
 * feedback, by the time counted, toward spending `budget` (a share, 0.01 =
 * 1 %) by the window's figures: the signal its aim is set for and the
 * simulator runs it on. The sums, what is reported, take the finest
 * measure there is. A tick at the time of the last counts nothing; one
 * before it (the clock went back) counts nothing and starts the clock
 * again from its time. Returns the requests the tick accounted (0 when it
 * counted nothing).
 */
double cps_slo_budget_tick(struct cps_slo_budget *b, int64_t now_ms, int64_t interval_ms,
                           const struct cps_slo_tick *tick, double budget, int64_t window_ms);

/* A tick whose window is the finest measure there is (the simulator's). */
struct cps_slo_tick cps_slo_tick_window(double qps, int violating);

/* Share of the window's requests served over the SLO (0 before any). */
double cps_slo_budget_violating_share(const struct cps_slo_budget *b);

/* The budget spent over the window: that share over the budget (1 = all). */
double cps_slo_budget_spent(const struct cps_slo_budget *b, double budget);

/* The burn rate over the last hour, in the SRE sense: the violating share
 * over the budget (1 = spending exactly the budget; 14.4 = a 30-day budget
 * gone in two days). 0 before any request. */
double cps_slo_budget_burn_rate(const struct cps_slo_budget *b, double budget);

#endif
