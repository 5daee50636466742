/*
 * Backfill: after a restart (or a new leader, or a target added by a
 * reload), the policy's learned state is rebuilt from Prometheus history
 * instead of being learned again from nothing. For each target whose state
 * has not started, the target's own queries (qps, p95_ms, cpu_utilization,
 * ready_replicas, cost_per_pod_hour, placeholders substituted as `cpscale
 * record` does) are read with query_range over the span (`run --backfill`,
 * default 24h; 0 disables) at the controller's interval, and replayed
 * through the policy (lib/policy_replay).
 *
 * The fetch and the replay run on a worker thread per batch with its own
 * blocking client, never on the loop. The finished states come back
 * through an ev_async and are swapped in between ticks, only for a target
 * whose live state has still learned little (CPS_BACKFILL_LIVE_TICKS_MAX
 * ticks); otherwise the backfilled state is dropped. Until then the target
 * decides as a fresh one does. Each batch is bounded in time
 * (CPS_BACKFILL_TIMEOUT_MS); results are logged and counted
 * (cpscale_policy_backfill_total{result}).
 */
#ifndef CPS_BACKFILL_H
#define CPS_BACKFILL_H

#include <stdint.h>

#define CPS_BACKFILL_DEFAULT_SPAN_MS (24 * 3600 * 1000LL)
/* A batch's fetches and replays give up after this. */
#define CPS_BACKFILL_TIMEOUT_MS (60 * 1000LL)
/* A live state that has learned from more ticks than this keeps what it
 * learned: the backfilled one is dropped (the ring of recent demand holds
 * 32, so this must stay below it). */
#define CPS_BACKFILL_LIVE_TICKS_MAX 8

struct cps_controller;

/* Set up the hand-back from the workers on the controller's loop. 0, or -1
 * out of memory. Nothing runs until cps_backfill_start. */
int cps_backfill_init(struct cps_controller *ctl);

/* Start one batch for every target whose policy state has not started and
 * that no batch is already working on (`why` names the trigger in the
 * log: "start", "leader", "reload"). Does nothing when the span is 0 or
 * under --once (the state would not outlive its one tick). */
void cps_backfill_start(struct cps_controller *ctl, const char *why);

/* Swap in what finished batches learned. Call between ticks (a tick in
 * flight keeps the state it started with; lifecycle calls this when the
 * tick has reported). */
void cps_backfill_apply_finished(struct cps_controller *ctl);

/* Cancel the batches still running, join their threads, free everything. */
void cps_backfill_free(struct cps_controller *ctl);

#endif
