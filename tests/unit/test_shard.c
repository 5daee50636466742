/*
 * The shard hash (expected values computed apart, by a few lines of Python
 * doing FNV-1a 64 by its definition: h = 0xcbf29ce484222325; for each byte
 * h ^= b; h *= 0x100000001b3 mod 2^64) and the rules on shard Leases.
 */
#include <stdint.h>

#include "cps_test.h"
#include "shard.h"

static void test_hash_values(void)
{
    /* FNV-1a 64 of "" is its offset basis: "//" is two steps from it */
    ASSERT_TRUE(cps_shard_hash("", "", "") == 0x07d69907b49d2e23ULL);
    ASSERT_TRUE(cps_shard_hash("default", "Deployment", "web") == 0xbb505006370ef33dULL);
    ASSERT_TRUE(cps_shard_hash("shop", "StatefulSet", "db") == 0x82d8e37eb98e53d9ULL);
    ASSERT_TRUE(cps_shard_hash("a", "Deployment", "b") == 0xa7e4de3305aae34fULL);
}

static void test_shard_of(void)
{
    ASSERT_EQ(cps_shard_of("default", "Deployment", "web", 6), 3);
    ASSERT_EQ(cps_shard_of("default", "Deployment", "web", 7), 0);
    ASSERT_EQ(cps_shard_of("shop", "StatefulSet", "db", 7), 3);
    ASSERT_EQ(cps_shard_of("a", "Deployment", "b", 7), 6);
    ASSERT_EQ(cps_shard_of("a", "Deployment", "b", 1), 0);
    /* 3,000 targets over 6 shards: Python counts 493 516 508 503 499 481 */
    static const int expected[6] = {493, 516, 508, 503, 499, 481};
    int count[6] = {0};
    for (int i = 0; i < 3000; i++) {
        char ns[16], name[32];
        snprintf(ns, sizeof ns, "ns-%d", i % 10);
        snprintf(name, sizeof name, "app-%d", i);
        count[cps_shard_of(ns, "Deployment", name, 6)]++;
    }
    for (int s = 0; s < 6; s++)
        ASSERT_EQ(count[s], expected[s]);
}

static void test_scheme_text(void)
{
    char text[CPS_SHARD_SCHEME_MAX];
    cps_shard_scheme(6, text, sizeof text);
    ASSERT_STR_EQ(text, "fnv1a64-v1/6");
}

static void test_scheme_conflict(void)
{
    struct cps_shard_view views[3] = {
        {.holder = "a", .scheme = "fnv1a64-v1/6", .seen = 1},
        {.holder = "", .scheme = "", .seen = 1},
        {.holder = "b", .scheme = "fnv1a64-v1/6", .seen = 1},
    };
    ASSERT_EQ(cps_shard_scheme_conflict("fnv1a64-v1/6", "a", views, 3), 0);
    /* another N held by another replica: conflict */
    views[2].scheme = "fnv1a64-v1/8";
    ASSERT_EQ(cps_shard_scheme_conflict("fnv1a64-v1/6", "a", views, 3), 1);
    /* ... unless that Lease expired */
    views[2].expired = 1;
    ASSERT_EQ(cps_shard_scheme_conflict("fnv1a64-v1/6", "a", views, 3), 0);
    /* our own Lease with an old text (we are rewriting it) is no conflict */
    views[2].expired = 0;
    views[2].holder = "a";
    ASSERT_EQ(cps_shard_scheme_conflict("fnv1a64-v1/6", "a", views, 3), 0);
    /* an older version writes no annotation: another scheme */
    views[0].holder = "old";
    views[0].scheme = "";
    ASSERT_EQ(cps_shard_scheme_conflict("fnv1a64-v1/6", "a", views, 3), 1);
    /* a Lease never read counts for nothing */
    views[0].seen = 0;
    ASSERT_EQ(cps_shard_scheme_conflict("fnv1a64-v1/6", "a", views, 3), 0);
}

static void test_live_replicas(void)
{
    struct cps_shard_view views[6] = {
        {.holder = "a", .scheme = "", .seen = 1}, {.holder = "b", .scheme = "", .seen = 1},
        {.holder = "b", .scheme = "", .seen = 1}, {.holder = "c", .scheme = "", .seen = 1},
        {.holder = "", .scheme = "", .seen = 1},  {.holder = "c", .scheme = "", .seen = 0},
    };
    ASSERT_EQ(cps_shard_live_replicas("a", views, 6), 3);
    ASSERT_EQ(cps_shard_live_replicas("z", views, 6), 4);
    /* one of c's Leases expired: c is gone */
    views[5].seen = 1;
    views[5].expired = 1;
    ASSERT_EQ(cps_shard_live_replicas("a", views, 6), 2);
    ASSERT_EQ(cps_shard_fair_share(6, 3), 2);
    ASSERT_EQ(cps_shard_fair_share(6, 2), 3);
    ASSERT_EQ(cps_shard_fair_share(6, 4), 2);
    ASSERT_EQ(cps_shard_fair_share(6, 1), 6);
    ASSERT_EQ(cps_shard_fair_share(7, 3), 3);
}

/* Six shards; replica-0 held shards 1 and 4 and died (SIGKILL); replica-1
 * and replica-2 hold two each. Each survivor's view of each Lease is as
 * old as its last read of it (up to a retry period), and each judges
 * expiry by its own clock, so their views differ. */
#define DEAD "replica-0"
#define R1 "replica-1"
#define R2 "replica-2"

static void set_view(struct cps_shard_view *v, const char *holder, int expired)
{
    *v = (struct cps_shard_view){.holder = holder, .scheme = "fnv1a64-v1/6", .expired = expired,
                                 .seen = 1};
}

static void survivors_views(struct cps_shard_view views[6])
{
    static const char *const holders[6] = {R1, DEAD, R2, R1, DEAD, R2};
    for (int i = 0; i < 6; i++)
        set_view(&views[i], holders[i], 0);
}

/* The two survivors' views in the failing run (test_taker_stale_views). */
static void failing_run_views(struct cps_shard_view *seen_by_1, struct cps_shard_view *seen_by_2)
{
    survivors_views(seen_by_1);
    set_view(&seen_by_1[1], R1, 0);
    set_view(&seen_by_1[4], DEAD, 1);
    survivors_views(seen_by_2);
    set_view(&seen_by_2[4], DEAD, 1);
}

/* The failing run of test_sharding: replica-1 has taken shard 1 (now 3 of
 * 6, its fair share); replica-2 has not read shard 1 since, and by its
 * clock shard 1 has not expired yet, shard 4 has. Both must name the same
 * taker for shard 4, and one that can take it: replica-2. (Before, free
 * Leases were dealt by their position among the Leases each saw free:
 * replica-2 counted shard 4 first and left it to replica-1, which was
 * full; both left it until replica-2 read shard 1 again.) */
static void test_taker_stale_views(void)
{
    struct cps_shard_view seen_by_1[6], seen_by_2[6];
    failing_run_views(seen_by_1, seen_by_2);
    ASSERT_STR_EQ(cps_shard_taker(R1, seen_by_1, 6, 4), R2);
    ASSERT_STR_EQ(cps_shard_taker(R2, seen_by_2, 6, 4), R2);
    /* replica-2 sees shard 1 expired too: still its own shard 4 */
    set_view(&seen_by_2[1], DEAD, 1);
    ASSERT_STR_EQ(cps_shard_taker(R2, seen_by_2, 6, 4), R2);
    ASSERT_STR_EQ(cps_shard_taker(R2, seen_by_2, 6, 1), R1);
}

/* The survivors' answers for shard 4 in the failing run above: exactly
 * one takes it at its first look, without waiting for fresher reads. */
static void test_free_lease_answers(void)
{
    struct cps_shard_view seen_by_1[6], seen_by_2[6];
    failing_run_views(seen_by_1, seen_by_2);
    ASSERT_EQ(cps_shard_free_lease(R1, seen_by_1, 6, 4, 3, 0, 750), CPS_SHARD_FULL);
    ASSERT_EQ(cps_shard_free_lease(R2, seen_by_2, 6, 4, 2, 0, 750), CPS_SHARD_TAKE);
    /* shard 1, before replica-1 took it: replica-1's, and replica-2 leaves it */
    set_view(&seen_by_1[1], DEAD, 1);
    ASSERT_EQ(cps_shard_free_lease(R1, seen_by_1, 6, 1, 2, 0, 750), CPS_SHARD_TAKE);
    set_view(&seen_by_2[1], DEAD, 1);
    ASSERT_EQ(cps_shard_free_lease(R2, seen_by_2, 6, 1, 2, 0, 750), CPS_SHARD_LEAVE);
    /* ... for at most leave_for_ms */
    ASSERT_EQ(cps_shard_free_lease(R2, seen_by_2, 6, 1, 2, 749, 750), CPS_SHARD_LEAVE);
    ASSERT_EQ(cps_shard_free_lease(R2, seen_by_2, 6, 1, 2, 750, 750), CPS_SHARD_TAKE);
    /* never past the fair share, however long it was left */
    ASSERT_EQ(cps_shard_free_lease(R2, seen_by_2, 6, 1, 3, 5000, 750), CPS_SHARD_FULL);
    /* a Lease held by a live replica is no orphan: no taker */
    ASSERT_TRUE(cps_shard_taker(R2, seen_by_2, 6, 0) == NULL);
}

/* Views that disagree beyond the planned takes: replica-1 took shard 4,
 * planned for replica-2 (by the fallback, or a replica seen by no other);
 * replica-2 has not read shard 4 since. For shard 1 replica-1 is full and
 * replica-2's plan still names replica-1: both leave it at first, and
 * replica-2 takes it once it has left it for leave_for_ms. */
static void test_free_lease_fallback(void)
{
    struct cps_shard_view seen_by_1[6], seen_by_2[6];
    survivors_views(seen_by_1);
    set_view(&seen_by_1[1], DEAD, 1);
    set_view(&seen_by_1[4], R1, 0);
    survivors_views(seen_by_2);
    set_view(&seen_by_2[1], DEAD, 1);
    set_view(&seen_by_2[4], DEAD, 1);
    ASSERT_STR_EQ(cps_shard_taker(R1, seen_by_1, 6, 1), R2);
    ASSERT_STR_EQ(cps_shard_taker(R2, seen_by_2, 6, 1), R1);
    ASSERT_EQ(cps_shard_free_lease(R1, seen_by_1, 6, 1, 3, 0, 750), CPS_SHARD_FULL);
    ASSERT_EQ(cps_shard_free_lease(R2, seen_by_2, 6, 1, 2, 0, 750), CPS_SHARD_LEAVE);
    ASSERT_EQ(cps_shard_free_lease(R2, seen_by_2, 6, 1, 2, 500, 750), CPS_SHARD_LEAVE);
    ASSERT_EQ(cps_shard_free_lease(R1, seen_by_1, 6, 1, 3, 1000, 750), CPS_SHARD_FULL);
    ASSERT_EQ(cps_shard_free_lease(R2, seen_by_2, 6, 1, 2, 1000, 750), CPS_SHARD_TAKE);
}

/*
 * The plan does not move as its takes are made, whatever each replica has
 * read of them. For a few fleets (survivors and their Leases, a dead
 * replica's Leases, maybe a released one): the plan from a fresh view;
 * then for every set of planned takes made, and every survivor whose view
 * of each orphan is the old record (expired by its clock or not yet) or
 * the new, for every orphan not yet taken that it sees expired, the
 * survivor names the planned taker; and the takers end at most one apart,
 * each within its fair share.
 */
struct fleet_case {
    int n;
    const char *holders[8]; /* DEAD, "" (released) or a survivor */
    const char *survivors[3];
    int n_survivors;
};

static int planned_ends_balanced(const struct fleet_case *c, const char *const *plan)
{
    int lo = 1 << 30, hi = 0;
    for (int r = 0; r < c->n_survivors; r++) {
        int count = 0;
        for (int i = 0; i < c->n; i++) {
            const char *h = plan[i] ? plan[i] : c->holders[i];
            count += strcmp(h, c->survivors[r]) == 0;
        }
        lo = count < lo ? count : lo;
        hi = count > hi ? count : hi;
    }
    uint32_t share = cps_shard_fair_share((uint32_t)c->n, (size_t)c->n_survivors);
    return hi - lo <= 1 && (uint32_t)hi <= share;
}

static void check_fleet(const struct fleet_case *c)
{
    struct cps_shard_view views[8];
    const char *plan[8] = {0};
    int orphans[8], n_orphans = 0;
    for (int i = 0; i < c->n; i++) {
        int is_orphan = strcmp(c->holders[i], DEAD) == 0 || !c->holders[i][0];
        set_view(&views[i], c->holders[i], strcmp(c->holders[i], DEAD) == 0);
        if (is_orphan)
            orphans[n_orphans++] = i;
    }
    for (int j = 0; j < n_orphans; j++) {
        plan[orphans[j]] =
            cps_shard_taker(c->survivors[0], views, (size_t)c->n, (size_t)orphans[j]);
        ASSERT_TRUE(plan[orphans[j]] != NULL);
        if (!plan[orphans[j]])
            return;
    }
    ASSERT_TRUE(planned_ends_balanced(c, plan));
    /* each orphan: 0 old record unexpired, 1 old record expired, 2 now */
    int n_stale = 1;
    for (int j = 0; j < n_orphans; j++)
        n_stale *= 3;
    for (int taken = 0; taken < (1 << n_orphans); taken++) {
        for (int v = 0; v < c->n_survivors; v++) {
            const char *self = c->survivors[v];
            for (int stale = 0; stale < n_stale; stale++) {
                int code = stale, any_expired = 0;
                for (int j = 0; j < n_orphans; j++, code /= 3) {
                    int i = orphans[j];
                    int is_taken = (taken >> j) & 1;
                    if (code % 3 == 2 || !c->holders[i][0] || strcmp(plan[i], self) == 0)
                        /* its own takes a replica sees at once */
                        set_view(&views[i], is_taken ? plan[i] : c->holders[i],
                                 !is_taken && c->holders[i][0]);
                    else
                        set_view(&views[i], c->holders[i], code % 3 == 1);
                    any_expired |= views[i].expired;
                }
                if (!any_expired)
                    continue; /* the dead one not yet seen gone: no orphan yet */
                for (int j = 0; j < n_orphans; j++) {
                    int i = orphans[j];
                    if ((taken >> j) & 1 || (c->holders[i][0] && !views[i].expired))
                        continue;
                    const char *taker = cps_shard_taker(self, views, (size_t)c->n, (size_t)i);
                    if (!taker || strcmp(taker, plan[i]) != 0) {
                        CPS_FAIL_AT("%s, taken mask %d, view code %d: shard %d to %s, planned %s",
                                    self, taken, stale, i, taker ? taker : "(none)", plan[i]);
                        return;
                    }
                }
            }
        }
    }
}

static void test_plan_stable_under_takes(void)
{
    static const struct fleet_case cases[] = {
        /* the test_sharding fleet after the kill */
        {6, {R1, DEAD, R2, R1, DEAD, R2}, {R1, R2}, 2},
        {6, {DEAD, DEAD, R1, R2, R2, R1}, {R1, R2}, 2},
        /* 4 replicas over 6 shards, one holding 2 dies */
        {6, {R1, DEAD, "replica-3", R2, DEAD, R1}, {R1, R2, "replica-3"}, 3},
        /* 8 shards, 3 survivors unevenly loaded, and a released Lease */
        {8, {DEAD, R1, "", R2, R1, DEAD, "replica-3", R2}, {R1, R2, "replica-3"}, 3},
        /* uneven before the death: replica-2 over its new share keeps its Leases */
        {6, {R2, DEAD, R2, R2, DEAD, R1}, {R1, R2}, 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        check_fleet(&cases[k]);
}

int main(void)
{
    CPS_RUN(test_hash_values);
    CPS_RUN(test_shard_of);
    CPS_RUN(test_scheme_text);
    CPS_RUN(test_scheme_conflict);
    CPS_RUN(test_live_replicas);
    CPS_RUN(test_taker_stale_views);
    CPS_RUN(test_free_lease_answers);
    CPS_RUN(test_free_lease_fallback);
    CPS_RUN(test_plan_stable_under_takes);
    CPS_TEST_END();
}
