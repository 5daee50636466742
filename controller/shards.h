/*
 * Shards on Leases (sharding.shards > 1): the targets are split over N
 * Leases cpscale-shard-0 .. cpscale-shard-(N-1) by the versioned hash of
 * lib/shard.h, and each replica competes for all N with the semantics of
 * lease.h (one cps_lease per shard). A replica acts (PATCH, Events) on a
 * target only while it holds that target's shard and no unexpired shard
 * Lease held by another identity carries another scheme.
 *
 * Spreading, judged on what the replica last read from the N Leases:
 * - live replicas = itself + the distinct holders of unexpired Leases
 *   (an identity with an expired Lease is gone); fair share =
 *   ceil(N / live);
 * - a free or expired Lease is taken only when every Lease has been read
 *   once and the replica holds fewer than its fair share, by the plan all
 *   replicas compute alike (lib/shard.h, cps_shard_taker), or when the
 *   replica the plan names has left it free for a retry period;
 * - a replica under its fair share takes, at most once per retry period,
 *   one Lease from a holder over it; it acts on it only renew_deadline
 *   later (lease.h), when the former holder has stopped. A replica that
 *   holds nothing is invisible on the Leases: this is how it gets its
 *   share (3 replicas, 6 shards: 2 each).
 */
#ifndef CPS_SHARDS_H
#define CPS_SHARDS_H

#include <stdint.h>

#include "kube.h"
#include "lease.h"
#include "strbuf.h"

struct ev_loop;
struct cps_shards;

/* Called when the set held changes: how many are held now, and whether
 * one was lost (queued writes must then be checked again). */
typedef void cps_shards_change_cb(uint32_t held, int lost, void *user);

/* `lease` gives namespace, identity and timings (its name is ignored). */
struct cps_shards *cps_shards_new(struct ev_loop *loop, struct cps_kube *kube, uint32_t n_shards,
                                  const struct cps_lease_options *lease,
                                  cps_shards_change_cb *change_cb, void *user);
void cps_shards_start(struct cps_shards *shards);

uint32_t cps_shards_count(const struct cps_shards *shards);

/* The shard of a target (lib/shard.h). */
uint32_t cps_shards_of(const struct cps_shards *shards, const char *namespace, const char *kind,
                       const char *name);

/* 1 while this replica holds the shard's Lease (cps_lease_held) and no
 * other live holder carries another scheme: it may write. */
int cps_shards_may_act(const struct cps_shards *shards, uint32_t shard, int64_t now_ms);

/* 1 while this replica holds the shard's Lease (taken, not yet
 * renew-deadline-old steals included): without warm standby it decides
 * for the shard's targets. */
int cps_shards_holds(const struct cps_shards *shards, uint32_t shard, int64_t now_ms);

/* Shards whose Lease this replica holds now. */
uint32_t cps_shards_held(const struct cps_shards *shards, int64_t now_ms);

/* /metrics: cpscale_shards, cpscale_shard_held{shard}, cpscale_shard_scheme_conflict. */
void cps_shards_render_metrics(const struct cps_shards *shards, int64_t now_ms,
                               struct cps_strbuf *text);

/* Release every Lease held (lease.h); done_cb once all are answered. */
void cps_shards_release(struct cps_shards *shards, void (*done_cb)(void *user), void *user);
void cps_shards_free(struct cps_shards *shards);

#endif
