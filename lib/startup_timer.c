#include "startup_timer.h"

/* A time over the learned one moves it this far toward it, one under it
 * this far: the estimate rises fast and sinks slowly, to a high expectile
 * (the 0.83 one: where the times over it, each pulling five times as hard
 * for its distance, balance those under it). A burst's pods are late if
 * any is. */
#define STARTUP_UP_WEIGHT 0.5
#define STARTUP_DOWN_WEIGHT 0.1

void cps_startup_asked(struct cps_startup_timer *st, int64_t now_ms, int32_t replicas,
                       int32_t ready, int32_t desired)
{
    if (st->pending_pods > 0 || desired <= replicas || ready < replicas)
        return;
    st->pending_pods = desired;
    st->pending_ms = now_ms;
}

/*
 * See startup_timer.h. The time seen is up to an interval late (the ready
 * count is read once per decision), so half an interval comes off it; a
 * time of 0 or less says only that the pods were ready within an interval.
 */
void cps_startup_observe(struct cps_startup_timer *st, int64_t now_ms, int64_t interval_ms,
                         int32_t replicas, int32_t ready)
{
    if (st->pending_pods <= 0)
        return;
    int64_t took = now_ms - st->pending_ms;
    if (replicas < st->pending_pods || took < 0 || took > CPS_STARTUP_TIMING_MAX_MS) {
        st->pending_pods = 0;
        return;
    }
    if (ready < st->pending_pods)
        return;
    st->pending_pods = 0;
    double seen = (double)took - (double)interval_ms / 2.0;
    if (seen < 0.0)
        seen = 0.0;
    double learned = st->learned_ms;
    if (learned <= 0.0)
        learned = seen;
    else
        learned += (seen > learned ? STARTUP_UP_WEIGHT : STARTUP_DOWN_WEIGHT) * (seen - learned);
    st->learned_ms = (int32_t)(learned + 0.5);
}

int64_t cps_startup_in_use(const struct cps_startup_timer *st, int64_t configured_ms)
{
    return st->learned_ms > configured_ms ? st->learned_ms : configured_ms;
}
