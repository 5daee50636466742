/*
 * The API request counters behind cpscale_kube_requests_total
 * (controller/request_counts.c): one row, so one series on /metrics, per
 * (verb, resource, code), with the resource label whole for the longest
 * kind a valid config accepts.
 */
#include <stdio.h>
#include <string.h>

#include "cps_test.h"
#include "request_counts.h"

/* The scale subresource of a 63-character kind (a DNS label, the longest
 * the config accepts): its plural is 64 characters, 70 with "/scale". */
static void longest_kind_label(char *out, size_t size)
{
    char kind_plural[65];
    memset(kind_plural, 'k', 63);
    kind_plural[63] = 's';
    kind_plural[64] = '\0';
    snprintf(out, size, "%s/scale", kind_plural);
}

static void test_longest_resource_is_one_series(void)
{
    static struct cps_request_counts counts;
    memset(&counts, 0, sizeof counts);
    char label[80];
    longest_kind_label(label, sizeof label);
    ASSERT_EQ(strlen(label), 70);
    for (int i = 0; i < 3; i++)
        cps_request_counts_add(&counts, "patch", label, 200);
    ASSERT_EQ(counts.n_rows, 1);
    ASSERT_EQ(counts.rows[0].count, 3);
    ASSERT_STR_EQ(counts.rows[0].resource, label);
    ASSERT_STR_EQ(counts.rows[0].verb, "patch");
}

static void test_overlong_labels_are_cut_the_same_way_each_time(void)
{
    static struct cps_request_counts counts;
    memset(&counts, 0, sizeof counts);
    char resource[300], verb[40];
    memset(resource, 'r', sizeof resource - 1);
    resource[sizeof resource - 1] = '\0';
    memset(verb, 'v', sizeof verb - 1);
    verb[sizeof verb - 1] = '\0';
    for (int i = 0; i < 5; i++)
        cps_request_counts_add(&counts, verb, resource, 500);
    ASSERT_EQ(counts.n_rows, 1);
    ASSERT_EQ(counts.rows[0].count, 5);
    ASSERT_EQ(strlen(counts.rows[0].resource), sizeof counts.rows[0].resource - 1);
    ASSERT_EQ(strlen(counts.rows[0].verb), sizeof counts.rows[0].verb - 1);
}

static void test_triples_and_the_full_table(void)
{
    static struct cps_request_counts counts;
    memset(&counts, 0, sizeof counts);
    cps_request_counts_add(&counts, "get", "deployments/scale", 200);
    cps_request_counts_add(&counts, "get", "deployments/scale", 0);
    cps_request_counts_add(&counts, "patch", "deployments/scale", 200);
    cps_request_counts_add(&counts, "get", "deployments/scale", 200);
    ASSERT_EQ(counts.n_rows, 3);
    ASSERT_EQ(counts.rows[0].count, 2);
    ASSERT_EQ(counts.rows[1].code, 0);
    /* fill the table with distinct codes; one more triple is dropped, the
     * rows already there go on counting */
    for (long code = 1000; counts.n_rows < CPS_REQUEST_COUNTS_MAX; code++)
        cps_request_counts_add(&counts, "list", "deployments", code);
    cps_request_counts_add(&counts, "watch", "deployments", 200);
    ASSERT_EQ(counts.n_rows, CPS_REQUEST_COUNTS_MAX);
    for (size_t i = 0; i < counts.n_rows; i++)
        ASSERT_TRUE(strcmp(counts.rows[i].verb, "watch") != 0);
    cps_request_counts_add(&counts, "get", "deployments/scale", 200);
    ASSERT_EQ(counts.rows[0].count, 3);
}

int main(void)
{
    CPS_RUN(test_longest_resource_is_one_series);
    CPS_RUN(test_overlong_labels_are_cut_the_same_way_each_time);
    CPS_RUN(test_triples_and_the_full_table);
    CPS_TEST_END();
}
