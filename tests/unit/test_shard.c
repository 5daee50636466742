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

int main(void)
{
    CPS_RUN(test_hash_values);
    CPS_RUN(test_shard_of);
    CPS_RUN(test_scheme_text);
    CPS_RUN(test_scheme_conflict);
    CPS_RUN(test_live_replicas);
    CPS_TEST_END();
}
