/*
 * Shards: which of N shard Leases a target belongs to, and the rules a
 * replica follows before it takes or acts on a shard. Pure functions (the
 * controller's shards.c feeds them what it read from the Leases).
 *
 * The hash scheme is versioned. Scheme "fnv1a64-v1": FNV-1a 64 over the
 * bytes of "namespace/Kind/name" (Kind as written in the config, e.g.
 * "Deployment"), modulo N. Every shard Lease carries the scheme and N it was
 * written under ("fnv1a64-v1/6"); a replica acts on no shard while a Lease
 * held (unexpired) by another identity carries another text, so two
 * replicas that map targets to shards differently (a rolling upgrade that
 * changes the hash, or a ConfigMap change of N not yet seen by every
 * replica) never act at once. A change of the hash must change the name.
 */
#ifndef CPS_SHARD_H
#define CPS_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define CPS_SHARD_HASH_NAME "fnv1a64-v1"
#define CPS_SHARD_MAX 256
#define CPS_SHARD_SCHEME_MAX 64
#define CPS_SHARD_LEASE_PREFIX "cpscale-shard-"

/* FNV-1a 64 of "namespace/kind/name". */
uint64_t cps_shard_hash(const char *namespace, const char *kind, const char *name);

/* The shard of a target among n (n >= 1): cps_shard_hash() mod n. */
uint32_t cps_shard_of(const char *namespace, const char *kind, const char *name, uint32_t n);

/* "fnv1a64-v1/N" into out. */
void cps_shard_scheme(uint32_t n, char *out, size_t cap);

/* What a replica last read from one shard Lease. */
struct cps_shard_view {
    const char *holder;  /* "" when free */
    const char *scheme;  /* the Lease's scheme annotation; "" when none */
    int expired;         /* not renewed within its duration, by our clock */
    int seen;            /* 0: never read (no answer yet) */
};

/* 1 when some Lease held, unexpired, by another identity than `self`
 * carries another scheme than `mine` (an absent annotation is another
 * scheme): the replica then acts on no shard. */
int cps_shard_scheme_conflict(const char *mine, const char *self,
                              const struct cps_shard_view *views, size_t n_views);

/* The live replicas: distinct holders of unexpired Leases, self counted
 * always, an identity with any expired Lease not counted (a replica that
 * renews renews all its Leases: one expired means it is gone). */
size_t cps_shard_live_replicas(const char *self, const struct cps_shard_view *views,
                               size_t n_views);

/* How many shards one replica may hold: ceil(n_shards / live). */
uint32_t cps_shard_fair_share(uint32_t n_shards, size_t live);

/* The replica planned to take Lease `index`, as `self` judges from
 * `views` (one per shard, n_views <= CPS_SHARD_MAX), or NULL when that
 * Lease is not an orphan. Orphans: Leases free, or held by a gone identity
 * (cps_shard_live_replicas), never `self`'s. Live replicas in name order
 * each have a target, n_views / live, one more for the first
 * n_views mod live; the orphans in index order are dealt in blocks, each
 * replica getting what it lacks to its target (what it holds of the
 * Leases that are not orphans). Replicas whose views differ only by the
 * planned takes one has read and the other not yet name the same taker
 * (shard.c). The name points into `views` or is `self`. */
const char *cps_shard_taker(const char *self, const struct cps_shard_view *views, size_t n_views,
                            size_t index);

enum cps_shard_free_answer {
    CPS_SHARD_TAKE,  /* take it now */
    CPS_SHARD_FULL,  /* `self` holds its fair share: another takes it */
    CPS_SHARD_LEAVE, /* planned for another replica: look again soon */
};

/* May `self` take free or expired Lease `index` now? `held`: the Leases
 * it holds or is taking, by its own count. Never past its fair share
 * (cps_shard_fair_share); within it, when the plan (cps_shard_taker) names
 * `self` or nobody, or when `self` has left this Lease to its planned
 * taker for `left_ms` >= `leave_for_ms` and it is still free: views that
 * disagree beyond the planned takes (a replica holding nothing is seen by
 * no other; a take outside the plan) may name another taker in each
 * replica, and this bounds how long the Lease stays free then. */
enum cps_shard_free_answer cps_shard_free_lease(const char *self,
                                                const struct cps_shard_view *views,
                                                size_t n_views, size_t index, uint32_t held,
                                                int64_t left_ms, int64_t leave_for_ms);

#endif
