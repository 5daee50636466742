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

/* 1 when Lease i is free, or held by an identity other than `self` that
 * is gone (has_expired): a Lease the live replicas share out. `self`'s own
 * Leases are never orphans (it renews them, or finds out it cannot). */
static int orphan(const char *self, const struct cps_shard_view *views, size_t n_views, size_t i)
{
    const struct cps_shard_view *v = &views[i];
    return v->seen &&
           (!v->holder[0] ||
            (strcmp(v->holder, self) != 0 && has_expired(v->holder, views, n_views)));
}

/* Insert `name` into names[0..*n) kept in name order, unless there. */
static void add_name(const char **names, size_t *n, const char *name)
{
    size_t at = 0;
    while (at < *n && strcmp(names[at], name) < 0)
        at++;
    if (at < *n && strcmp(names[at], name) == 0)
        return;
    memmove(&names[at + 1], &names[at], (*n - at) * sizeof *names);
    names[at] = name;
    (*n)++;
}

/* What names[k] lacks to its target: n / live, one more for the first
 * n mod live names. */
static size_t lack_of(size_t k, const uint32_t *held, size_t n_views, size_t n_names)
{
    size_t target = n_views / n_names + (k < n_views % n_names);
    return held[k] < target ? target - held[k] : 0;
}

/*
 * The plan is a function of what every live replica reads alike once the
 * dead holder is judged gone, and it does not change as its own takes are
 * made: the orphans in index order are dealt in blocks, each live replica
 * in name order getting as many as it lacks to its target. A planned take
 * moves one orphan out of its taker's block and lowers that taker's lack
 * by one; every other block stays. So a replica that has not yet read some
 * planned takes names the same taker for every remaining orphan as one
 * that has, and a free Lease is never left by everyone because each
 * thinks another will take it. Orphan-ness by the holder being gone, not
 * by the Lease's own expiry, for the same reason: each replica judges the
 * expiry of each Lease by its own clock, up to a retry period apart, but
 * they read the same holder on it.
 *
 * O(n^2) in the number of Leases (at most CPS_SHARD_MAX), asked only for a
 * free Lease: cheap.
 */
const char *cps_shard_taker(const char *self, const struct cps_shard_view *views, size_t n_views,
                            size_t index)
{
    if (index >= n_views || n_views > CPS_SHARD_MAX)
        return NULL;
    unsigned char is_orphan[CPS_SHARD_MAX];
    for (size_t i = 0; i < n_views; i++)
        is_orphan[i] = (unsigned char)orphan(self, views, n_views, i);
    if (!is_orphan[index])
        return NULL;
    const char *names[CPS_SHARD_MAX + 1];
    uint32_t held[CPS_SHARD_MAX + 1] = {0};
    size_t n_names = 0;
    add_name(names, &n_names, self);
    for (size_t i = 0; i < n_views; i++)
        if (held_by_other(&views[i], self) && !has_expired(views[i].holder, views, n_views))
            add_name(names, &n_names, views[i].holder);
    for (size_t i = 0; i < n_views; i++) {
        if (!views[i].seen || !views[i].holder[0] || is_orphan[i])
            continue;
        for (size_t k = 0; k < n_names; k++)
            held[k] += strcmp(names[k], views[i].holder) == 0;
    }
    size_t k = 0, lack = lack_of(0, held, n_views, n_names);
    for (size_t i = 0; i < n_views; i++) {
        if (!is_orphan[i])
            continue;
        while (lack == 0 && ++k < n_names)
            lack = lack_of(k, held, n_views, n_names);
        if (k >= n_names)
            return NULL; /* cannot happen: the targets add up to n_views */
        if (i == index)
            return names[k];
        lack--;
    }
    return NULL;
}

enum cps_shard_free_answer cps_shard_free_lease(const char *self,
                                                const struct cps_shard_view *views,
                                                size_t n_views, size_t index, uint32_t held,
                                                int64_t left_ms, int64_t leave_for_ms)
{
    size_t live = cps_shard_live_replicas(self, views, n_views);
    if (held >= cps_shard_fair_share((uint32_t)n_views, live))
        return CPS_SHARD_FULL;
    const char *taker = cps_shard_taker(self, views, n_views, index);
    if (!taker || strcmp(taker, self) == 0 || left_ms >= leave_for_ms)
        return CPS_SHARD_TAKE;
    return CPS_SHARD_LEAVE;
}
