/*
 * The decision: observation + target config + history + now -> desired
 * replicas with a reason. The same code runs in the controller, `cpscale
 * sim`, `cpscale tune` and `cpscale decide`.
 *
 * Pure: no I/O, no clock, no allocation. Learned state (capacity, demand
 * volatility, the violation budget, burst memory) lives in a caller-owned struct
 * cps_policy_state, zeroed by cps_policy_state_init.
 *
 * Order of work: the policy's recommendation; the HPA behavior rails
 * (stabilization, then rate limits); the min/max clamp and the budget cap.
 * A missing, stale, NaN or negative metric never leads to a scale-down.
 */
#ifndef CPS_DECIDE_H
#define CPS_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "behavior.h"
#include "burst_memory.h"
#include "config.h"
#include "latency_line.h"
#include "metric.h"
#include "minute_spread.h"
#include "slo_budget.h"
#include "startup_timer.h"

/* Until capacity is learned, the policy scales up to keep CPU at or below
 * this share (and never down). */
#define CPS_BOOTSTRAP_CPU 0.5

struct cps_observation {
    double qps;                /* requests/s, mean over the metrics window */
    double p95_ms;             /* observed p95 latency */
    double budget_qps;         /* rate and p95 of the last scrape interval, */
    double budget_p95_ms;      /* what the budget counts the tick by */
    unsigned budget_have;      /* which of those two were read, as
                                  CPS_METRIC_BIT(CPS_METRIC_BUDGET_QPS/_P95):
                                  where one was not, the window's stands in */
    double cpu_utilization;    /* busy share of the ready pods, 0..1 */
    double cost_per_pod_hour;  /* USD */
    int32_t replicas;          /* spec.replicas */
    int32_t ready_replicas;
    unsigned missing;          /* CPS_METRIC_* bits the caller could not get */
};

enum cps_reason {
    CPS_REASON_STEADY = 0,            /* the policy wants what there is */
    CPS_REASON_SCALE_UP,
    CPS_REASON_SCALE_DOWN,
    CPS_REASON_SCALE_UP_LIMITED,      /* rate limit held a scale-up back */
    CPS_REASON_SCALE_DOWN_LIMITED,    /* rate limit held a scale-down back */
    CPS_REASON_STABILIZED,            /* a stabilization window held it */
    CPS_REASON_CLAMPED_MIN,
    CPS_REASON_CLAMPED_MAX,
    CPS_REASON_BUDGET_CAP,
    CPS_REASON_MISSING_HOLD,          /* a metric is missing: hold */
    CPS_REASON_MISSING_FALLBACK,      /* a metric is missing: fallback count */
    CPS_REASON_PAUSED,
    CPS_REASON_COUNT
};

/* "scale_up", "missing_metrics_hold", ... (stable: logs, metrics, JSON). */
const char *cps_reason_name(enum cps_reason reason);

/* The rate window of the metrics: the default queries average over it
 * (`rate(...[1m])`, spelled CPS_METRICS_WINDOW_PROMQL) and the decision
 * takes a ready count as settled only once a whole window has seen it.
 * The two spellings are one value; test_config asserts they agree. */
#define CPS_METRICS_WINDOW_S 60
#define CPS_METRICS_WINDOW_PROMQL "1m"

#define CPS_DEMAND_RING 32                /* recent observations kept */
#define CPS_LEVEL_BUCKETS 40              /* log2 buckets of qps, 2^-8 .. 2^31 */

/*
 * What the policy learns about one target, online. Kept small (about
 * 1.6 kB; test_policy_memory checks it stays within 2 kB), since a controller may
 * hold ten thousand of them.
 */
struct cps_policy_state {
    /* capacity: requests/s one ready pod serves at 100 % CPU, learned */
    double service_rate_estimate;
    /* how p95 grows with a pod's load (the SLO-safe rate), learned */
    struct cps_latency_line latency;
    int32_t capacity_samples;
    int32_t capacity_rejected;     /* outliers in a row (a redeploy re-learns) */
    int32_t last_ready;            /* ready pods at the previous decision */
    int32_t started;
    int32_t interval_ms;           /* the usual time between decisions, learned (0: not yet) */
    int64_t ready_changed_ms;      /* when the ready count last changed */
    /* demand: recent observations, for surprise estimation */
    double level_ewma;             /* smoothed qps (time constant LEVEL_TAU) */
    double base_qps;               /* the forecast's base: max(level_ewma, qps) */
    double slow_level;             /* qps smoothed over SLOW_LEVEL_TAU: what bursts rise above */
    double recent_level;           /* qps smoothed over RECENT_LEVEL_TAU: has demand left the slow one */
    double recent_peak;            /* the largest qps seen, decaying (the forecast's cap) */
    double day_peak;               /* the same over about a day (a remembered burst's cap) */
    /* how long scale-ups took to be ready, as seen (lib/startup_timer.h) */
    struct cps_startup_timer startup;
    int64_t level_t_ms;
    /* recent decisions: when (as how long before the newest, in ms, so an
     * entry is 4 bytes, not 8), and the base then */
    int64_t demand_newest_ms;
    int32_t demand_age_ms[CPS_DEMAND_RING];
    float demand_qps[CPS_DEMAND_RING];
    int32_t demand_count, demand_next;
    /* demand surprises (log growth over the horizon), per load level:
     * relative noise is larger at low rates, so one spread for all hours
     * would over-provision the busy hours or under-provision the quiet ones */
    float surprise_mean[CPS_LEVEL_BUCKETS];
    float surprise_var[CPS_LEVEL_BUCKETS];
    uint32_t surprise_samples[CPS_LEVEL_BUCKETS];
    /* where headroom_quantile of the surprises really lies, as an offset
     * (in sd units) on the normal quantile: surprises are far from normal
     * where rare jumps inflate the spread (steps, spikes); learned at
     * tail_quantile (a new headroom_quantile starts them again) */
    float surprise_tail[CPS_LEVEL_BUCKETS];
    float tail_quantile;
    /* how each minute of the hour's surprises compare with the others' */
    struct cps_minute_spread minute_spread;
    /* the violation budget as measured, and the feedback on the headroom */
    struct cps_slo_budget budget;
    /* bursts that recur on the clock */
    struct cps_burst_memory bursts;
};

void cps_policy_state_init(struct cps_policy_state *state);

/* What the recommendation was based on. */
enum cps_basis {
    CPS_BASIS_FORECAST = 0,      /* the demand forecast and learned capacity */
    CPS_BASIS_LEARNING,          /* capacity not learned yet: CPU-based, up only */
    CPS_BASIS_SLO_UNREACHABLE,   /* learned base latency exceeds the SLO */
    CPS_BASIS_GIVEN,             /* `recommendation` given by the caller */
    CPS_BASIS_MISSING,           /* a metric was missing */
    CPS_BASIS_PAUSED,
};

/* Which mechanism set the policy's recommendation (named in the detail,
 * the log line and the Event). */
enum cps_bound {
    CPS_BOUND_FORECAST = 0,  /* the demand forecast at the configured quantiles (as learned) */
    CPS_BOUND_FEEDBACK,      /* the budget feedback moved the headroom, and that moved the count */
    CPS_BOUND_BURST,         /* burst memory: a recurring burst is due */
    CPS_BOUND_PEAK_CAP,      /* the forecast was capped against the recent peak */
    CPS_BOUND_COST_TARGET,   /* the cost target trimmed the margin */
    CPS_BOUND_COUNT
};

/* "forecast", "budget_feedback", "burst_memory", ... (stable: logs, JSON). */
const char *cps_bound_name(enum cps_bound bound);

/* Which burst memory set a decision bound by CPS_BOUND_BURST
 * (lib/burst_memory.h): a burst that came back at its minute in the last
 * hours, a minute on the clock (one that bursts in many hours, not every
 * one), or the start of an hour of the day. */
enum cps_burst_source {
    CPS_BURST_NONE = 0,
    CPS_BURST_RECURRING,
    CPS_BURST_ON_THE_CLOCK,
    CPS_BURST_HOUR_OF_DAY,
};

/*
 * A decision and the figures behind it. Plain numbers, so the hot path
 * (the simulator decides millions of times) formats nothing; call
 * cps_decision_describe for the human-readable detail.
 */
struct cps_decision {
    int32_t desired;
    int32_t recommendation;  /* the policy's (or the given one), before the rails */
    int32_t current;
    enum cps_reason reason;
    enum cps_basis basis;
    unsigned missing;        /* CPS_METRIC_* bits when basis is MISSING */
    double level_qps;        /* the forecast's base */
    double forecast_qps;     /* upper quantile of demand over the horizon */
    double surprise_sd;      /* spread of log demand growth used */
    double surprise_tail;    /* the learned offset on its normal quantile, sd units */
    double headroom_adjust;  /* the budget feedback's offset on the headroom, z units */
    double burst_qps;        /* > 0: the rate a remembered burst calls for */
    enum cps_burst_source burst_source; /* which memory called for it */
    int burst_capped;        /* 1: the peak cap cut what it called for */
    double peak_cap_qps;     /* the cap on the forecast from the recent peak */
    int octave_bound;        /* 1: the octave above's quantile bounded the upper forecast */
    double octave_sd;        /* ... with this spread (the octave above's) */
    double minute_factor;    /* < 1: the spreads narrowed for a quiet minute (minute_spread.h) */
    double tick_requests;    /* requests this tick accounted to the budget */
    int tick_violating;      /* 1: they were served over the SLO */
    double budget_spent;     /* share of the budget spent over the budget window (1 = all) */
    double burn_rate;        /* violating share over the last hour / the budget */
    enum cps_bound bound;    /* what set the policy's recommendation */
    int rail_bound;          /* 1: a rail (rate limit, stabilization, min/max, budget cap)
                                then set the count instead (the reason says which) */
    double rps_per_pod;      /* SLO-safe capacity per ready pod */
    double latency_shape;    /* the queue's p95 as a multiple of M/M/1's, learned (>= 1) */
    double startup_s;        /* the start-up a remembered burst is led by: policy.startup, */
    int startup_observed;    /* ... or (1) a longer one observed */
    double startup_learned_s;/* the observed one, decayed to now (0: none learned) */
    double cpu_utilization;
    int32_t cost_target_pods;/* > 0: the cost target trimmed the margin to this */
    int32_t budget_pods;     /* > 0: the budget cap held the count to this */
};

/* The mechanism that bound the count: "rail" when a rail did, else the
 * policy's (cps_bound_name); for a decision not on the forecast, what it
 * was based on ("learning", "slo_unreachable", "given", "missing_metrics",
 * "paused"). For the log line, the Event and JSON. */
const char *cps_decision_bound_name(const struct cps_decision *decision);

/* The decision's detail as one line of text (e.g. for logs and JSON). */
void cps_decision_describe(const struct cps_decision *decision, char *buf, size_t size);

/* The price per pod-hour a decision uses: the observation's (the cost
 * query's) when it is there, finite, above 0 and not implausible, else the
 * target's configured cost.pod_hour_usd. The controller's cost figures
 * use it too, so they price what the decision priced. */
double cps_decision_price(const struct cps_target *target,
                          const struct cps_observation *observation);

/*
 * Decide for one target. `recommendation` is NULL to run the policy, or
 * points at a given recommendation to apply only the rails (stabilization,
 * rate limits, min/max, budget cap). The history gets the recommendation
 * recorded (as HPA does); the caller records scale events after acting.
 * Returns 0; the decision is always filled.
 */
int cps_decide(const struct cps_target *target, const struct cps_observation *observation,
               struct cps_history *history, struct cps_policy_state *state, int64_t now_ms,
               const int32_t *recommendation, struct cps_decision *decision);

#endif
