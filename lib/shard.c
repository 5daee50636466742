/*
 * The shard hash and the rules on shard Leases (shard.h).
 */
#include "shard.h"

#include <stdio.h>
#include <string.h>

#define FNV64_OFFSET 14695981039346656037ULL
#define FNV64_PRIME 1099511628211ULL

static uint64_t fnv1a_update(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= FNV64_PRIME;
    }
    return h;
}

uint64_t cps_shard_hash(const char *namespace, const char *kind, const char *name)
{
    uint64_t h = fnv1a_update(FNV64_OFFSET, namespace);
    h = fnv1a_update(h, "/");
    h = fnv1a_update(h, kind);
    h = fnv1a_update(h, "/");
    return fnv1a_update(h, name);
}

uint32_t cps_shard_of(const char *namespace, const char *kind, const char *name, uint32_t n)
{
    if (n <= 1)
        return 0;
    return (uint32_t)(cps_shard_hash(namespace, kind, name) % n);
}

void cps_shard_scheme(uint32_t n, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%u", CPS_SHARD_HASH_NAME, (unsigned)n);
}

/* A Lease another live replica holds. */
static int held_by_other(const struct cps_shard_view *v, const char *self)
{
    return v->seen && v->holder[0] && !v->expired && strcmp(v->holder, self) != 0;
}

int cps_shard_scheme_conflict(const char *mine, const char *self,
                              const struct cps_shard_view *views, size_t n_views)
{
    for (size_t i = 0; i < n_views; i++)
        if (held_by_other(&views[i], self) && strcmp(views[i].scheme, mine) != 0)
            return 1;
    return 0;
}

/* 1 when `holder` has a Lease that expired in its name. */
static int has_expired(const char *holder, const struct cps_shard_view *views, size_t n_views)
{
    for (size_t i = 0; i < n_views; i++)
        if (views[i].seen && views[i].expired && strcmp(views[i].holder, holder) == 0)
            return 1;
    return 0;
}

/* O(n^2) in the number of Leases (at most CPS_SHARD_MAX, each retry
 * period): simpler than a set, and cheap. */
size_t cps_shard_live_replicas(const char *self, const struct cps_shard_view *views,
                               size_t n_views)
{
    size_t live = 1;
    for (size_t i = 0; i < n_views; i++) {
        if (!held_by_other(&views[i], self) || has_expired(views[i].holder, views, n_views))
            continue;
        int counted = 0;
        for (size_t j = 0; j < i && !counted; j++)
            counted = held_by_other(&views[j], self) &&
                      strcmp(views[j].holder, views[i].holder) == 0;
        if (!counted)
            live++;
    }
    return live;
}

uint32_t cps_shard_fair_share(uint32_t n_shards, size_t live)
{
    if (live == 0)
        live = 1;
    return (uint32_t)((n_shards + live - 1) / live);
}

/* 1 when `holder` is live and holds fewer than `share` Leases: a replica
 * that may take a free one. */
static int eligible(const struct cps_shard_view *views, size_t n_views, const char *holder,
                    uint32_t share)
{
    uint32_t count = 0;
    for (size_t i = 0; i < n_views; i++) {
        if (views[i].seen && views[i].expired && strcmp(views[i].holder, holder) == 0)
            return 0; /* gone */
        count += views[i].holder[0] && !views[i].expired && strcmp(views[i].holder, holder) == 0;
    }
    return count < share;
}

/* Survivors of a dead replica must not race for the same Lease (a lost
 * race costs a retry period). Every replica reads the same Leases, so they
 * agree but for timing; a replica that holds nothing is seen by no other,
 * which costs at most a race. */
const char *cps_shard_taker(const char *self, const struct cps_shard_view *views, size_t n_views,
                            size_t index)
{
    uint32_t share = cps_shard_fair_share((uint32_t)n_views,
                                          cps_shard_live_replicas(self, views, n_views));
    const char *names[CPS_SHARD_MAX + 1];
    size_t n_names = 0, position = 0;
    names[n_names++] = self;
    for (size_t i = 0; i < n_views && n_names <= CPS_SHARD_MAX; i++) {
        const char *h = views[i].holder;
        if (!h[0] || views[i].expired || strcmp(h, self) == 0 ||
            !eligible(views, n_views, h, share))
            continue;
        int dup = 0;
        for (size_t k = 0; k < n_names && !dup; k++)
            dup = strcmp(names[k], h) == 0;
        if (!dup)
            names[n_names++] = h;
    }
    for (size_t i = 0; i < index && i < n_views; i++)
        position += !views[i].holder[0] || views[i].expired;
    /* the (position mod n_names)-th name in name order */
    size_t want = position % n_names;
    for (size_t k = 0; k < n_names; k++) {
        size_t below = 0;
        for (size_t m = 0; m < n_names; m++)
            below += strcmp(names[m], names[k]) < 0;
        if (below == want)
            return names[k];
    }
    return NULL;
}
