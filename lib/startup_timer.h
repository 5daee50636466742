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
 * A scale-up is timed only when every pod was ready as it was asked for (so
 * the ready count reaching the new total means the new pods are ready), and
 * one at a time. The timing is dropped when the total falls below what was
 * asked for (a scale-down, someone else's, a PATCH that did not land) and
 * after CPS_STARTUP_TIMING_MAX_MS (a pod that never becomes ready says
 * nothing about how long one takes). Decisions come once an interval, so
 * a time is known to an interval: half of one is taken off.
 *
 * Pure: no I/O, no clock, no allocation.
 */
#ifndef CPS_STARTUP_TIMER_H
#define CPS_STARTUP_TIMER_H

#include <stdint.h>

/* A timing running longer than this is dropped. */
#define CPS_STARTUP_TIMING_MAX_MS (15 * 60 * 1000LL)

struct cps_startup_timer {
    int32_t learned_ms;   /* the high expectile of the times seen (0: none yet) */
    int32_t pending_pods; /* the ready count the timed scale-up waits for (0: none) */
    int64_t pending_ms;   /* when it was asked for */
};

/* A decision at `now_ms` asked for `desired` pods where `replicas` existed,
 * `ready` of them ready: starts a timing when that is a scale-up, every pod
 * was ready, and none is running. */
void cps_startup_asked(struct cps_startup_timer *st, int64_t now_ms, int32_t replicas,
                       int32_t ready, int32_t desired);

/* The counts seen at a decision at `now_ms`, `interval_ms` after the one
 * before: ends a running timing (learning its time when the ready count has
 * reached what was asked for). */
void cps_startup_observe(struct cps_startup_timer *st, int64_t now_ms, int64_t interval_ms,
                         int32_t replicas, int32_t ready);

/* The start-up to plan with: the configured one, or the learned one when
 * that is longer. */
int64_t cps_startup_in_use(const struct cps_startup_timer *st, int64_t configured_ms);

#endif
