/*
 * Start-up as observed: how long a scale-up's pods take to be ready.
 *
 * `policy.startup` says how long a new pod takes to be ready, as the user
 * knows it. Images grow, nodes fill up and a pod waits for a new one, and
 * readiness probes get slower: a burst the memory pre-scales for a start-up
 * ahead then finds its pods still starting. This times scale-ups from the
 * decision that asked for them until the ready count reaches what they
 * asked for, and keeps a high expectile of those times (a batch is ready
 * when its slowest pod is). The policy leads a remembered burst by the
 * longer of that and the configured start-up, never by less than it is
 * told.
 *
 * Only a clean scale-up is timed, one at a time: every pod was ready when
 * it was asked for (so the ready count reaching the new total means the new
 * pods are ready). A timing is dropped, teaching nothing, when
 * - the total falls below what it waits for (a scale-down, someone else's,
 *   or a PATCH that did not land: a dry run, a lost Lease);
 * - the ready count falls (a rollout or a crash loop is not a start-up);
 * - a decision is missed (metrics missing, paused, a backoff, a clock
 *   jump: the time since the last one is over twice the interval), as the
 *   time would then count the gap;
 * - it runs past CPS_STARTUP_TIMING_MAX_MS (a pod that never becomes ready
 *   says nothing about how long one takes).
 * Decisions come once an interval, so a time is known to an interval: half
 * of one comes off it, and pods ready at the first decision after the ask
 * say only that they took at most an interval (the lead adds one anyway),
 * which counts as 0. One time can at most double the learned value (or
 * take it to two intervals), and the value halves every
 * CPS_STARTUP_HALFLIFE_MS without a new time, back toward the configured
 * start-up. History replayed after a restart has no count asked for to
 * time against (lib/policy_replay.c); the value comes back instead from
 * what the controller exported before it (cps_startup_restore), when
 * Prometheus scrapes cpscale, and is otherwise learned again live.
 *
 * Pure: no I/O, no clock, no allocation.
 */
#ifndef CPS_STARTUP_TIMER_H
#define CPS_STARTUP_TIMER_H

#include <stdint.h>

/* A timing running longer than this is dropped. */
#define CPS_STARTUP_TIMING_MAX_MS (15 * 60 * 1000LL)
/* Without a new time, the learned value halves this often. */
#define CPS_STARTUP_HALFLIFE_MS (24 * 3600 * 1000LL)

struct cps_startup_timer {
    int32_t learned_ms;   /* the high expectile of the times seen, as of learned_at_ms */
    int32_t pending_pods; /* the ready count the timed scale-up waits for (0: none) */
    int64_t pending_ms;   /* when it was asked for */
    int64_t learned_at_ms;
};

/* A decision at `now_ms` asked for `desired` pods where `replicas` existed,
 * `ready` of them ready: starts a timing when that is a scale-up, every pod
 * was ready, and none is running. */
void cps_startup_asked(struct cps_startup_timer *st, int64_t now_ms, int32_t replicas,
                       int32_t ready, int32_t desired);

/* What a decision at `now_ms` sees: `replicas` and `ready` pods, `since_ms`
 * after the decision before (which saw `ready_before` ready), decisions
 * usually `interval_ms` apart. Ends a running timing: learns its time when
 * the ready count has reached what was asked for, or drops it (above). */
void cps_startup_observe(struct cps_startup_timer *st, int64_t now_ms, int64_t interval_ms,
                         int64_t since_ms, int32_t replicas, int32_t ready, int32_t ready_before);

/* The learned value at `now_ms`, decayed since it was learned; 0 when
 * nothing was learned (what cpscale_policy_startup_learned_seconds
 * exports, so that a restart can read it back). */
double cps_startup_learned_ms(const struct cps_startup_timer *st, int64_t now_ms);

/* After a restart: `learned_ms` is the learned value a controller exported
 * before it (cps_startup_learned_ms) at `at_ms`; it becomes the learned
 * value again, as of then, so it goes on halving from there. Not a finite
 * positive time: nothing is restored. Bounded by the longest timing. A
 * timing pending is dropped. The configured start-up is not involved: the
 * policy plans with the longer of the two (cps_startup_in_use), so a
 * config changed since is never overruled by an old config value. */
void cps_startup_restore(struct cps_startup_timer *st, double learned_ms, int64_t at_ms);

/* The start-up to plan with, given the learned value as
 * cps_startup_learned_ms gives it: the configured one, or the learned one
 * when that is longer (rounded to the millisecond). */
int64_t cps_startup_plan_ms(double learned_ms, int64_t configured_ms);

/* The start-up to plan with at `now_ms`: the configured one, or the
 * learned one (decayed since it was learned) when that is longer. */
int64_t cps_startup_in_use(const struct cps_startup_timer *st, int64_t configured_ms,
                           int64_t now_ms);

#endif
