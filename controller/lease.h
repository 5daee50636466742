/*
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's
 * semantics (tools/leaderelection):
 *
 * - Every retry_period a candidate GETs the Lease. It takes it (PUT with the
 *   resourceVersion it read, or POST when there is none) when it is free
 *   (empty holderIdentity) or when the record has not changed for
 *   leaseDurationSeconds of *our* monotonic clock since we last saw it
 *   change, as client-go judges expiry by local observation, not by the
 *   holder's clock.
 * - The leader renews every retry_period. If no renewal succeeded within
 *   renew_deadline it stops acting at once (before the lease can expire
 *   for the others, since lease_duration > renew_deadline).
 * - On shutdown the leader releases: holderIdentity "" and a 1 s duration,
 *   so a standby takes over without waiting out the lease. A write of ours
 *   that shutdown cancels may already have been applied, so the release
 *   then reads the Lease first (and empties it only if it names us), and a
 *   release that meets 409 reads it and tries again (two reads at most).
 * - A 409 on the PUT means another candidate won the race: not leader.
 *
 * - Shards (shards.h) add two questions, asked of the owner through
 *   `policy` when set: may a free or expired Lease be taken now (spreading
 *   shards over replicas), and may a Lease another replica holds be taken
 *   from it (a replica under its fair share, the holder over it). A taken
 *   Lease is held at once but counts as held for acting only
 *   renew_deadline after the write: by then the former holder, whose
 *   renewals now meet 409, has stopped acting by its own deadline. The
 *   same wait follows a take of a Lease last written under another shard
 *   scheme, or created: a replica of another scheme reads it within a
 *   retry period and stops.
 *
 * The controller asks cps_lease_held() when each PATCH leaves the HTTP
 * queue (its start check, http.h), so a replica that lost the lease never
 * starts a write; its queued writes are dropped when it steps down.
 */
#ifndef CPS_LEASE_H
#define CPS_LEASE_H

#include <stdint.h>

#include "kube.h"

struct ev_loop;
struct cps_lease;

struct cps_lease_options {
    const char *namespace;
    const char *name;
    const char *identity;
    int64_t lease_duration_ms;
    int64_t renew_deadline_ms;
    int64_t retry_period_ms;
    int64_t request_timeout_ms; /* each GET/PUT; below renew_deadline */
    const char *shard_scheme;   /* written as the scheme annotation; NULL: none */
};

/* Asked by a candidate before it writes (NULL: always yes). `holder` is
 * "" for a free or expired Lease, else the unexpired holder to take it
 * from. 1: take it. */
typedef int cps_lease_policy_cb(const char *holder, void *user);

/* What a candidate last read from its Lease. */
struct cps_lease_view {
    const char *holder;   /* "" when free */
    const char *scheme;   /* "" when not annotated */
    int expired;          /* a holder, not renewed for its duration by our clock */
    int seen;             /* 0 until a GET or a write has answered */
};

/* Called on every change of leadership (1: we lead, 0: we stopped). */
typedef void cps_lease_change_cb(int leading, void *user);

struct cps_lease *cps_lease_new(struct ev_loop *loop, struct cps_kube *kube,
                                const struct cps_lease_options *options,
                                cps_lease_change_cb *change_cb, void *user);

/* Ask `policy` before taking the Lease (shards.c). */
void cps_lease_set_policy(struct cps_lease *lease, cps_lease_policy_cb *policy);

/* The last record read, judged at now_ms (monotonic). The strings live
 * until the next answer. */
void cps_lease_view(const struct cps_lease *lease, int64_t now_ms, struct cps_lease_view *out);

/* Start trying (the first attempt happens at once). */
void cps_lease_start(struct cps_lease *lease);

/* 1 while we lead and the last successful renewal is younger than
 * renew_deadline at now_ms (CLOCK_MONOTONIC). */
int cps_lease_held(const struct cps_lease *lease, int64_t now_ms);

/* Stop the timer, cancel any attempt in flight, and if we lead, release
 * the Lease; done_cb is called once when that is finished (or at once when
 * there is nothing to release). */
void cps_lease_release(struct cps_lease *lease, void (*done_cb)(void *user), void *user);

/* For /metrics: transitions seen on the Lease, and attempts that failed. */
int32_t cps_lease_transitions(const struct cps_lease *lease);

void cps_lease_free(struct cps_lease *lease);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in milliseconds (the only clocks the
 * controller reads). */
int64_t cps_monotonic_ms(void);
int64_t cps_wall_ms(void);

#endif
