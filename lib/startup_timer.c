#include "startup_timer.h"

#include <math.h>

/* A time over the learned one moves it this far toward it, one under it
 * this far: the estimate rises fast and sinks slowly, to a high expectile
 * (the 0.83 one: where the times over it, each pulling five times as hard
 * for its distance, balance those under it). A burst's pods are late if
 * any is. */
#define STARTUP_UP_WEIGHT 0.5
#define STARTUP_DOWN_WEIGHT 0.1
/* A decision more than this many intervals after the one before was missed. */
#define STARTUP_GAP_INTERVALS 2

void cps_startup_asked(struct cps_startup_timer *st, int64_t now_ms, int32_t replicas,
                       int32_t ready, int32_t desired)
{
    if (st->pending_pods > 0 || desired <= replicas || ready < replicas)
        return;
    st->pending_pods = desired;
    st->pending_ms = now_ms;
}

/* The learned value at `now_ms`: halved every CPS_STARTUP_HALFLIFE_MS since
 * it was learned (as learned when the clock reads earlier). */
static double learned_at(const struct cps_startup_timer *st, int64_t now_ms)
{
    double age = (double)(now_ms - st->learned_at_ms);
    double value = (double)st->learned_ms;
    return age > 0.0 ? value * exp2(-age / (double)CPS_STARTUP_HALFLIFE_MS) : value;
}

/* See startup_timer.h. */
void cps_startup_observe(struct cps_startup_timer *st, int64_t now_ms, int64_t interval_ms,
                         int64_t since_ms, int32_t replicas, int32_t ready, int32_t ready_before)
{
    if (st->pending_pods <= 0)
        return;
    int64_t took = now_ms - st->pending_ms;
    if (replicas < st->pending_pods || ready < ready_before || took < 0 ||
        took > CPS_STARTUP_TIMING_MAX_MS || since_ms > STARTUP_GAP_INTERVALS * interval_ms) {
        st->pending_pods = 0;
        return;
    }
    if (ready < st->pending_pods)
        return;
    st->pending_pods = 0;
    double seen = took > interval_ms ? (double)took - (double)interval_ms / 2.0 : 0.0;
    double learned = learned_at(st, now_ms);
    double moved = learned + (seen > learned ? STARTUP_UP_WEIGHT : STARTUP_DOWN_WEIGHT) *
                                 (seen - learned);
    double most = 2.0 * (learned > (double)interval_ms ? learned : (double)interval_ms);
    if (moved > most)
        moved = most;
    st->learned_ms = (int32_t)(moved + 0.5);
    st->learned_at_ms = now_ms;
}

double cps_startup_learned_ms(const struct cps_startup_timer *st, int64_t now_ms)
{
    return learned_at(st, now_ms);
}

void cps_startup_restore(struct cps_startup_timer *st, double learned_ms, int64_t at_ms)
{
    st->pending_pods = 0;
    if (!isfinite(learned_ms) || !(learned_ms > 0.0))
        return;
    double most = (double)CPS_STARTUP_TIMING_MAX_MS; /* no timing is ever longer */
    st->learned_ms = (int32_t)((learned_ms < most ? learned_ms : most) + 0.5);
    st->learned_at_ms = at_ms;
}

int64_t cps_startup_in_use(const struct cps_startup_timer *st, int64_t configured_ms,
                           int64_t now_ms)
{
    return cps_startup_plan_ms(learned_at(st, now_ms), configured_ms);
}

int64_t cps_startup_plan_ms(double learned_ms, int64_t configured_ms)
{
    return learned_ms > (double)configured_ms ? (int64_t)(learned_ms + 0.5) : configured_ms;
}
