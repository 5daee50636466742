/*
 * The pure half of `cpscale record` (sim/prom_range.c): spans split under
 * Prometheus' points limit, range answers decoded for one target (label
 * matching, placeholder queries, NaN/Inf/negative samples, malformed and
 * error answers), and gaps found.
 */
#include <stdlib.h>

#include "cps_test.h"
#include "prom_range.h"

#define PROMETHEUS_POINTS_LIMIT 11000
#define T0 1704067200.0 /* 2024-01-01T00:00:00Z */

static void test_span_chunks(void)
{
    static const struct {
        const char *name;
        double from, to, step;
        size_t points, chunks;
    } cases[] = {
        {"one point", T0, T0, 60, 1, 1},
        {"an hour at 60 s", T0, T0 + 3600, 60, 61, 1},
        {"to between steps", T0, T0 + 3659, 60, 61, 1},
        {"exactly one chunk", T0, T0 + 9999 * 15.0, 15, 10000, 1},
        {"one point more", T0, T0 + 10000 * 15.0, 15, 10001, 2},
        {"28 days at 60 s", T0, T0 + 28 * 86400.0, 60, 40321, 5},
        {"a year at 10 s", T0, T0 + 365 * 86400.0, 10, 3153601, 316},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CPS_ROW_BEGIN();
        struct cps_prom_span span;
        struct cps_err err;
        ASSERT_EQ(cps_prom_span_init(&span, cases[i].from, cases[i].to, cases[i].step, &err), 0);
        ASSERT_EQ(span.n_points, cases[i].points);
        size_t n = cps_prom_span_chunks(&span);
        ASSERT_EQ(n, cases[i].chunks);
        /* the chunks cover every point once, in order, each within the limit */
        size_t next = 0;
        for (size_t c = 0; c < n; c++) {
            size_t first;
            double start, end;
            cps_prom_span_chunk(&span, c, &first, &start, &end);
            ASSERT_EQ(first, next);
            ASSERT_NEAR(start, cases[i].from + (double)first * cases[i].step, 1e-6);
            double points = (end - start) / cases[i].step + 1;
            ASSERT_TRUE(points >= 1 && points <= PROMETHEUS_POINTS_LIMIT);
            next = first + (size_t)llround(points);
        }
        ASSERT_EQ(next, cases[i].points);
        CPS_ROW_END(cases[i].name);
    }
    struct cps_prom_span span;
    struct cps_err err;
    ASSERT_EQ(cps_prom_span_init(&span, T0, T0 - 1, 60, &err), -1);
    ASSERT_EQ(cps_prom_span_init(&span, T0, T0 + 60, 0, &err), -1);
    ASSERT_EQ(cps_prom_span_init(&span, 0, 1e11, 1, &err), -1);
}

static const struct cps_prom_match CLUSTER_WIDE = {"namespace", "deployment", "shop", "web", 0};
static const struct cps_prom_match SINGLE = {"namespace", "deployment", "shop", "web", 1};

/* Decode `body` over 5 points from T0 every 60 s. */
static int decode(const char *body, const struct cps_prom_match *match, double *values,
                  struct cps_prom_range_stats *stats, struct cps_err *err)
{
    struct cps_prom_span span;
    cps_prom_span_init(&span, T0, T0 + 240, 60, err);
    for (int i = 0; i < 5; i++)
        values[i] = NAN;
    memset(stats, 0, sizeof *stats);
    cps_err_clear(err);
    return cps_prom_decode_range(body, strlen(body), &span, match, "test", values, stats, err);
}

static void test_decode_target_series(void)
{
    const char *body =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
        "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"web-canary\"},"
        " \"values\":[[1704067200,\"999\"]]},"
        "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"web\"},"
        " \"values\":[[1704067200,\"10.5\"],[1704067260,\"NaN\"],[1704067320,\"1e300\"],"
        "             [1704067380,\"-2\"],[1704067440.000,\"1e3\"]]},"
        "{\"metric\":{\"namespace\":\"other\",\"deployment\":\"web\"},"
        " \"values\":[[1704067260,\"777\"]]}]}}";
    double v[5];
    struct cps_prom_range_stats st;
    struct cps_err err;
    ASSERT_EQ(decode(body, &CLUSTER_WIDE, v, &st, &err), 0);
    ASSERT_NEAR(v[0], 10.5, 0);
    ASSERT_TRUE(isnan(v[1]) && isnan(v[2]) && isnan(v[3]));
    ASSERT_NEAR(v[4], 1000, 0);
    ASSERT_EQ(st.series, 3);
    ASSERT_EQ(st.matched, 1);
    ASSERT_EQ(st.samples, 2);
    ASSERT_EQ(st.not_finite, 2); /* NaN, and 1e300: over CPS_METRIC_IMPLAUSIBLE */
    ASSERT_EQ(st.negative, 1);
    /* a query written for the target: its one series, whatever its labels */
    const char *single = "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                         "{\"metric\":{},\"values\":[[1704067320,\"3\"]]}]}}";
    ASSERT_EQ(decode(single, &SINGLE, v, &st, &err), 0);
    ASSERT_NEAR(v[2], 3, 0);
    ASSERT_TRUE(isnan(v[0]));
    /* nothing for the target is not an error: the caller reports no data */
    const char *empty = "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\","
                        "\"result\":[]}}";
    ASSERT_EQ(decode(empty, &CLUSTER_WIDE, v, &st, &err), 0);
    ASSERT_EQ(st.samples, 0);
}

static void test_decode_errors(void)
{
    static const struct {
        const char *name;
        const char *body;
        const struct cps_prom_match *match;
        const char *message;
    } cases[] = {
        {"not JSON", "<html>proxy login</html>", &CLUSTER_WIDE, "not JSON"},
        {"error answer",
         "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error at char 5\"}",
         &CLUSTER_WIDE, "bad_data: parse error at char 5"},
        {"no status", "{\"data\":{}}", &CLUSTER_WIDE, "no \"status\""},
        {"vector instead of matrix",
         "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
         &CLUSTER_WIDE, "matrix"},
        {"no result", "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\"}}",
         &CLUSTER_WIDE, "missing"},
        {"sample off the grid",
         "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
         "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"web\"},"
         "\"values\":[[1704067230,\"1\"]]}]}}",
         &CLUSTER_WIDE, "not a step"},
        {"sample after the span",
         "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
         "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"web\"},"
         "\"values\":[[1704067500,\"1\"]]}]}}",
         &CLUSTER_WIDE, "not a step"},
        {"value not a number",
         "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
         "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"web\"},"
         "\"values\":[[1704067200,\"12abc\"]]}]}}",
         &CLUSTER_WIDE, "not a number"},
        {"value as a JSON number",
         "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
         "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"web\"},"
         "\"values\":[[1704067200,12]]}]}}",
         &CLUSTER_WIDE, "expected [time"},
        {"two series for one target",
         "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
         "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"web\",\"pod\":\"a\"},"
         "\"values\":[]},"
         "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"web\",\"pod\":\"b\"},"
         "\"values\":[]}]}}",
         &CLUSTER_WIDE, "aggregate"},
        {"placeholder query with two series",
         "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
         "{\"metric\":{\"pod\":\"a\"},\"values\":[]},{\"metric\":{\"pod\":\"b\"},\"values\":[]}]}}",
         &SINGLE, "must return one"},
        {"duplicate keys", "{\"status\":\"success\",\"status\":\"error\"}", &CLUSTER_WIDE,
         "not JSON"},
        {"a partial answer (success with a warning)",
         "{\"status\":\"success\",\"warnings\":[\"partial response\"],\"data\":{"
         "\"resultType\":\"matrix\",\"result\":[]}}",
         &CLUSTER_WIDE, "warning (partial or doubtful data, not used): partial response"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CPS_ROW_BEGIN();
        double v[5];
        struct cps_prom_range_stats st;
        struct cps_err err;
        ASSERT_EQ(decode(cases[i].body, cases[i].match, v, &st, &err), -1);
        ASSERT_CONTAINS(err.message, cases[i].message);
        ASSERT_STR_EQ(err.source, "test");
        CPS_ROW_END(cases[i].name);
    }
}

struct gap_list {
    struct cps_prom_gap gaps[8];
    size_t n;
};

static void collect_cb(const struct cps_prom_gap *gap, void *ctx)
{
    struct gap_list *l = ctx;
    if (l->n < 8)
        l->gaps[l->n++] = *gap;
}

static void test_gaps(void)
{
    double v[] = {NAN, 1, 2, NAN, NAN, NAN, 3, 4, NAN};
    struct gap_list l = {{{0, 0}}, 0};
    ASSERT_EQ(cps_prom_find_gaps(v, 9, collect_cb, &l), 3);
    ASSERT_EQ(l.gaps[0].first, 0);
    ASSERT_EQ(l.gaps[0].count, 1);
    ASSERT_EQ(l.gaps[1].first, 3);
    ASSERT_EQ(l.gaps[1].count, 3);
    ASSERT_EQ(l.gaps[2].first, 8);
    ASSERT_EQ(l.gaps[2].count, 1);
    double full[] = {1, 2, 3};
    ASSERT_EQ(cps_prom_find_gaps(full, 3, NULL, NULL), 0);
}

int main(void)
{
    test_span_chunks();
    CPS_RUN(test_decode_target_series);
    test_decode_errors();
    CPS_RUN(test_gaps);
    CPS_TEST_END();
}
