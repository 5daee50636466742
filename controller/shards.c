/*
 * Shards on Leases: one cps_lease per shard, the spreading policy the
 * Leases ask before they write, and the "may I act on this shard" answer
 * (shards.h).
 */
#include "shards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "shard.h"

#define SHARD_LEASE_NAME_MAX 64

struct shard_slot {
    struct cps_shards *set;
    uint32_t index;
    struct cps_lease *lease;
    int leading;
    int64_t approved_ms;  /* when the policy last let it take the Lease; 0: never */
    /* when the policy first left this free Lease to the replica the plan
     * names (cps_shard_taker) and it has stayed free since; 0: not left */
    int64_t left_since_ms;
};

struct cps_shards {
    uint32_t n;
    char scheme[CPS_SHARD_SCHEME_MAX];
    char *identity;
    int64_t retry_period_ms;
    int64_t last_steal_ms;
    int stole_once;
    struct shard_slot *slots;
    cps_shards_change_cb *change_cb;
    void *user;
    uint32_t releases_pending;
    void (*release_done_cb)(void *user);
    void *release_user;
};

/* What every Lease last showed, judged at now_ms, into views[0..n). The
 * views point into the leases: valid until their next answer. */
static void read_views(const struct cps_shards *set, int64_t now_ms,
                       struct cps_shard_view views[CPS_SHARD_MAX])
{
    for (uint32_t i = 0; i < set->n; i++) {
        struct cps_lease_view v;
        cps_lease_view(set->slots[i].lease, now_ms, &v);
        views[i] = (struct cps_shard_view){v.holder, v.scheme, v.expired, v.seen};
    }
}

static uint32_t count_leading(const struct cps_shards *set)
{
    uint32_t held = 0;
    for (uint32_t i = 0; i < set->n; i++)
        held += set->slots[i].leading ? 1u : 0u;
    return held;
}

/* Held, or let taken within the last half retry period (the write may
 * still be out; by the next round it has answered): the Leases of one
 * replica decide one after another, and without these a replica would
 * take every expired Lease in one round. */
static uint32_t count_held_or_taking(const struct cps_shards *set, int64_t now_ms)
{
    uint32_t held = 0;
    for (uint32_t i = 0; i < set->n; i++) {
        const struct shard_slot *slot = &set->slots[i];
        held += slot->leading || (slot->approved_ms > 0 &&
                                  now_ms - slot->approved_ms < set->retry_period_ms / 2);
    }
    return held;
}

/* Unexpired Leases `holder` holds, and whether any Lease is free or
 * expired (those are taken before anything is taken from a holder). */
static uint32_t count_held_by(const struct cps_shard_view *views, uint32_t n, const char *holder,
                              int *any_free)
{
    uint32_t count = 0;
    *any_free = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!views[i].holder[0] || views[i].expired)
            *any_free = 1;
        else if (strcmp(views[i].holder, holder) == 0)
            count++;
    }
    return count;
}

/*
 * How long a free Lease is left to the replica the plan names before this
 * one takes it anyway (cps_shard_free_lease): a retry period. The planned
 * taker judges the Lease expired by its own clock, at most a retry period
 * (and a transfer) after this replica did, and takes it then; only views
 * that disagree beyond the planned takes make it wait longer. The Lease
 * looks again every half period while it leaves one (lease.c,
 * look_again_soon), so the take comes at the second look: "a period" is
 * counted from three quarters of it, the rest being slack for the timers
 * and transfers between the looks.
 */
static int64_t leave_for_ms(const struct cps_shards *set)
{
    return set->retry_period_ms - set->retry_period_ms / 4;
}

/* The policy's answer for a free or expired Lease, and its bookkeeping:
 * when it was first left to another replica, and when it was let taken. */
static int free_lease_policy(struct shard_slot *slot, const struct cps_shard_view *views,
                             uint32_t held, int64_t now)
{
    struct cps_shards *set = slot->set;
    int64_t left_ms = slot->left_since_ms > 0 ? now - slot->left_since_ms : 0;
    switch (cps_shard_free_lease(set->identity, views, set->n, slot->index, held, left_ms,
                                 leave_for_ms(set))) {
    case CPS_SHARD_TAKE: {
        const char *taker = cps_shard_taker(set->identity, views, set->n, slot->index);
        if (slot->left_since_ms > 0 && taker && strcmp(taker, set->identity) != 0) {
            struct cps_log_line line;
            cps_log_begin(&line, CPS_LOG_INFO, "taking a free shard left to another replica");
            cps_log_int(&line, "shard", slot->index);
            cps_log_str(&line, "planned_for", taker);
            cps_log_int(&line, "left_ms", left_ms);
            cps_log_end(&line);
        }
        slot->left_since_ms = 0;
        slot->approved_ms = now;
        return 1;
    }
    case CPS_SHARD_LEAVE:
        if (slot->left_since_ms == 0)
            slot->left_since_ms = now;
        return 0;
    case CPS_SHARD_FULL:
        break;
    }
    slot->left_since_ms = 0;
    return 0;
}

/*
 * lease.h's policy: may this slot's Lease be taken now? Free or expired
 * (holder ""): when every Lease has been read, no other scheme is live,
 * and cps_shard_free_lease() says so: we hold fewer than ceil(N / live
 * replicas), and the plan of cps_shard_taker() names us, or the Lease has
 * been left to the replica it names for a retry period. From a live
 * holder: when nothing is free, that holder has at least two more than we
 * do, and we took none in the last retry period (one move at a time, so
 * the fleet settles instead of swinging).
 */
static int policy_cb(const char *holder, void *user)
{
    struct shard_slot *slot = user;
    struct cps_shards *set = slot->set;
    int64_t now = cps_monotonic_ms();
    if (holder[0])
        slot->left_since_ms = 0; /* taken by someone: no longer left */
    struct cps_shard_view views[CPS_SHARD_MAX];
    read_views(set, now, views);
    for (uint32_t i = 0; i < set->n; i++)
        if (!views[i].seen)
            return 0;
    if (cps_shard_scheme_conflict(set->scheme, set->identity, views, set->n))
        return 0;
    uint32_t held = count_held_or_taking(set, now);
    if (!holder[0])
        return free_lease_policy(slot, views, held, now);
    if (set->stole_once && now - set->last_steal_ms < set->retry_period_ms)
        return 0;
    int any_free;
    uint32_t theirs = count_held_by(views, set->n, holder, &any_free);
    if (any_free || theirs < held + 2)
        return 0;
    set->stole_once = 1;
    set->last_steal_ms = now;
    slot->approved_ms = now;
    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_INFO, "taking a shard from a replica over its share");
    cps_log_int(&line, "shard", slot->index);
    cps_log_str(&line, "from", holder);
    cps_log_int(&line, "theirs", theirs);
    cps_log_int(&line, "ours", held);
    cps_log_end(&line);
    return 1;
}

static void change_cb(int leading, void *user)
{
    struct shard_slot *slot = user;
    struct cps_shards *set = slot->set;
    slot->leading = leading;
    if (set->change_cb)
        set->change_cb(count_leading(set), !leading, set->user);
}

struct cps_shards *cps_shards_new(struct ev_loop *loop, struct cps_kube *kube, uint32_t n_shards,
                                  const struct cps_lease_options *lease,
                                  cps_shards_change_cb *change_cb_, void *user)
{
    struct cps_shards *set = calloc(1, sizeof *set);
    if (!set)
        return NULL;
    set->n = n_shards;
    cps_shard_scheme(n_shards, set->scheme, sizeof set->scheme);
    set->identity = strdup(lease->identity);
    set->retry_period_ms = lease->retry_period_ms;
    set->change_cb = change_cb_;
    set->user = user;
    set->slots = calloc(n_shards, sizeof *set->slots);
    if (!set->identity || !set->slots || n_shards > CPS_SHARD_MAX) {
        cps_shards_free(set);
        return NULL;
    }
    for (uint32_t i = 0; i < n_shards; i++) {
        char name[SHARD_LEASE_NAME_MAX];
        snprintf(name, sizeof name, "%s%u", CPS_SHARD_LEASE_PREFIX, (unsigned)i);
        struct cps_lease_options options = *lease;
        options.name = name;
        options.shard_scheme = set->scheme;
        set->slots[i].set = set;
        set->slots[i].index = i;
        set->slots[i].lease = cps_lease_new(loop, kube, &options, change_cb, &set->slots[i]);
        if (!set->slots[i].lease) {
            cps_shards_free(set);
            return NULL;
        }
        cps_lease_set_policy(set->slots[i].lease, policy_cb);
    }
    return set;
}

void cps_shards_start(struct cps_shards *set)
{
    for (uint32_t i = 0; i < set->n; i++)
        cps_lease_start(set->slots[i].lease);
}

uint32_t cps_shards_count(const struct cps_shards *set)
{
    return set->n;
}

uint32_t cps_shards_of(const struct cps_shards *set, const char *namespace, const char *kind,
                       const char *name)
{
    return cps_shard_of(namespace, kind, name, set->n);
}

/* Another live holder writes another scheme: act on nothing. */
static int scheme_conflict(const struct cps_shards *set, int64_t now_ms)
{
    struct cps_shard_view views[CPS_SHARD_MAX];
    read_views(set, now_ms, views);
    return cps_shard_scheme_conflict(set->scheme, set->identity, views, set->n);
}

int cps_shards_may_act(const struct cps_shards *set, uint32_t shard, int64_t now_ms)
{
    return shard < set->n && cps_lease_held(set->slots[shard].lease, now_ms) &&
           !scheme_conflict(set, now_ms);
}

int cps_shards_holds(const struct cps_shards *set, uint32_t shard, int64_t now_ms)
{
    (void)now_ms;
    return shard < set->n && set->slots[shard].leading;
}

uint32_t cps_shards_held(const struct cps_shards *set, int64_t now_ms)
{
    (void)now_ms;
    return count_leading(set);
}

void cps_shards_render_metrics(const struct cps_shards *set, int64_t now_ms,
                               struct cps_strbuf *text)
{
    if (!set)
        return;
    int conflict = scheme_conflict(set, now_ms);
    cps_strbuf_printf(text, "# HELP cpscale_shards Shard Leases the targets are split over "
                            "(sharding.shards).\n# TYPE cpscale_shards gauge\n"
                            "cpscale_shards %u\n", (unsigned)set->n);
    cps_strbuf_printf(text, "# HELP cpscale_shard_held 1 while this replica holds the shard's "
                            "Lease and may act on its targets.\n"
                            "# TYPE cpscale_shard_held gauge\n");
    for (uint32_t i = 0; i < set->n; i++)
        cps_strbuf_printf(text, "cpscale_shard_held{shard=\"%u\"} %d\n", (unsigned)i,
                          !conflict && cps_lease_held(set->slots[i].lease, now_ms));
    cps_strbuf_printf(text, "# HELP cpscale_shard_scheme_conflict 1 while a live holder of a "
                            "shard Lease writes another hash scheme or shard count (this "
                            "replica then acts on nothing).\n"
                            "# TYPE cpscale_shard_scheme_conflict gauge\n"
                            "cpscale_shard_scheme_conflict %d\n", conflict);
}

static void slot_released_cb(void *user)
{
    struct cps_shards *set = user;
    if (set->releases_pending > 0 && --set->releases_pending == 0 && set->release_done_cb)
        set->release_done_cb(set->release_user);
}

void cps_shards_release(struct cps_shards *set, void (*done_cb)(void *user), void *user)
{
    set->release_done_cb = done_cb;
    set->release_user = user;
    set->releases_pending = set->n + 1; /* held until every release has been asked */
    for (uint32_t i = 0; i < set->n; i++)
        cps_lease_release(set->slots[i].lease, slot_released_cb, set);
    slot_released_cb(set);
}

void cps_shards_free(struct cps_shards *set)
{
    if (!set)
        return;
    for (uint32_t i = 0; set->slots && i < set->n; i++)
        cps_lease_free(set->slots[i].lease);
    free(set->slots);
    free(set->identity);
    free(set);
}
