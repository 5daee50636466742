/*
 * Unit tests for sim/plot.c: the tick helpers against hand-computed values,
 * and the SVG itself: well-formed XML, escaped text, no NaN/Inf, one
 * polyline per data line, edge cases, bad input and write errors.
 */
#include <ctype.h>
#include <float.h>
#include <stdlib.h>
#include <unistd.h>

#include "cps_test.h"
#include "plot.h"

#define JULY_3_2024 1719964800.0   /* Wed 2024-07-03 00:00:00 UTC */
#define FIVE_MINUTES 300.0
#define ONE_DAY_OF_BUCKETS 288
#define MAX_POINTS_IN_TEST 4000
#define MAX_SERIES_IN_TEST 200
#define TAG_DEPTH_MAX 64
#define TAG_NAME_MAX 32
#define OUTPUT_BYTES_MAX_2000_POINTS 400000

/* Backing storage for synthetic series. */
static double demand[MAX_POINTS_IN_TEST];
static double pods[MAX_SERIES_IN_TEST][MAX_POINTS_IN_TEST];
static double violations[MAX_SERIES_IN_TEST][MAX_POINTS_IN_TEST];
static double costs[MAX_SERIES_IN_TEST][MAX_POINTS_IN_TEST];
static struct cps_plot_series series[MAX_SERIES_IN_TEST];
static const char *default_names[] = {"cpscale", "hpa", "oracle"};

/* A diurnal-ish plot with n points and k series named from default_names
 * (or "static:N"), starting Wed 2024-07-03 00:00 UTC with 5-minute buckets. */
static struct cps_plot make_plot(size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++) {
        demand[i] = 1000.0 + 800.0 * sin((double)i / 40.0);
        for (size_t s = 0; s < k; s++) {
            pods[s][i] = 10.0 + 8.0 * sin((double)i / 40.0 + 0.2 * (double)s);
            violations[s][i] = (i % 50 == s) ? 12.5 : 0.0;
            costs[s][i] = (i ? costs[s][i - 1] : 0.0) + 0.01 * (double)(s + 1);
        }
    }
    static char static_names[MAX_SERIES_IN_TEST][32];
    for (size_t s = 0; s < k; s++) {
        const char *name = default_names[s % 3];
        if (s >= 3) {
            snprintf(static_names[s], sizeof static_names[s], "static:%zu", s);
            name = static_names[s];
        }
        series[s] = (struct cps_plot_series){name, pods[s], violations[s], costs[s]};
    }
    struct cps_plot plot = {"trace.csv", n, JULY_3_2024, FIVE_MINUTES, demand, k, series};
    return plot;
}

/* Render into memory; returns the NUL-terminated document (caller frees). */
static char *render(const struct cps_plot *plot, int *rc, struct cps_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    cps_err_clear(err);
    *rc = cps_plot_write_svg(f, plot, err);
    fclose(f);
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + len, needle))
        n++;
    return n;
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t len = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < len && p[i] && tolower((unsigned char)p[i]) == needle[i])
            i++;
        if (i == len)
            return 1;
    }
    return 0;
}

/*
 * A small XML well-formedness check: tags balance (a stack of names), one
 * root element <svg>, '&' only starts a known entity, '<' never appears in
 * attribute values, no text outside the root. Returns NULL when fine, or a
 * static description of the first problem.
 */
static const char *xml_problem(const char *s)
{
    static char why[128];
    char stack[TAG_DEPTH_MAX][TAG_NAME_MAX];
    int depth = 0, roots = 0;
    static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (const char *p = s; *p;) {
        if (*p == '&') {
            int ok = 0;
            for (size_t e = 0; e < sizeof entities / sizeof entities[0]; e++)
                if (strncmp(p, entities[e], strlen(entities[e])) == 0)
                    ok = 1;
            if (!ok)
                return "bare '&'";
            p++;
            continue;
        }
        if (*p != '<') {
            if (depth == 0 && !isspace((unsigned char)*p))
                return "text outside the root element";
            p++;
            continue;
        }
        if (strncmp(p, "<?", 2) == 0) {
            const char *end = strstr(p, "?>");
            if (!end)
                return "unterminated <?";
            p = end + 2;
            continue;
        }
        if (strncmp(p, "<!--", 4) == 0) {
            const char *end = strstr(p, "-->");
            if (!end)
                return "unterminated comment";
            p = end + 3;
            continue;
        }
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t name_len = strcspn(name, " \t\n/>");
        if (name_len == 0 || name_len >= TAG_NAME_MAX)
            return "bad tag name";
        const char *q = name + name_len;
        char quote = 0;
        for (; *q && (quote || *q != '>'); q++) {
            if (quote && *q == quote)
                quote = 0;
            else if (!quote && (*q == '"' || *q == '\''))
                quote = *q;
            else if (quote && *q == '<')
                return "'<' inside an attribute value";
        }
        if (!*q)
            return "unterminated tag";
        int self_closing = q[-1] == '/';
        if (closing) {
            if (depth == 0 || strlen(stack[depth - 1]) != name_len ||
                strncmp(stack[depth - 1], name, name_len) != 0) {
                snprintf(why, sizeof why, "mismatched </%.*s>", (int)name_len, name);
                return why;
            }
            depth--;
        } else if (!self_closing) {
            if (depth == 0)
                roots++;
            if (depth == TAG_DEPTH_MAX)
                return "too deep";
            memcpy(stack[depth], name, name_len);
            stack[depth][name_len] = '\0';
            depth++;
        } else if (depth == 0) {
            return "self-closing root";
        }
        p = q + 1;
    }
    if (depth != 0)
        return "unclosed element";
    if (roots != 1)
        return "not exactly one root element";
    if (!strstr(s, "<svg "))
        return "no <svg> root";
    return NULL;
}

/* Every number inside points="..." has at most one decimal digit. */
static int points_have_one_decimal(const char *s)
{
    for (const char *p = strstr(s, " points=\""); p; p = strstr(p, " points=\"")) {
        p += strlen(" points=\"");
        int digits_after_dot = -1;
        for (; *p && *p != '"'; p++) {
            if (*p == '.')
                digits_after_dot = 0;
            else if (isdigit((unsigned char)*p) && digits_after_dot >= 0)
                digits_after_dot++;
            else if (!isdigit((unsigned char)*p))
                digits_after_dot = -1;
            if (digits_after_dot > 1)
                return 0;
        }
    }
    return 1;
}

/* Run xmllint on the document if it is installed: 1 valid, 0 invalid,
 * -1 skipped. */
static int xmllint_check(const char *doc)
{
    if (system("command -v xmllint >/dev/null 2>&1") != 0)
        return -1;
    char path[] = "/tmp/test_plot_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        return -1;
    }
    fputs(doc, f);
    fclose(f);
    char cmd[sizeof path + 64];
    snprintf(cmd, sizeof cmd, "xmllint --noout %s >/dev/null 2>&1", path);
    int status = system(cmd);
    unlink(path);
    return status == 0;
}

/* The checks every successful render must pass. */
static void assert_sane_svg(const char *doc)
{
    ASSERT_TRUE(doc != NULL);
    if (!doc)
        return;
    const char *why = xml_problem(doc);
    if (why)
        CPS_FAIL_AT("not well-formed: %s", why);
    ASSERT_CONTAINS(doc, "xmlns=\"http://www.w3.org/2000/svg\"");
    ASSERT_CONTAINS(doc, "viewBox=\"0 0 1200 900\"");
    ASSERT_TRUE(!contains_ci(doc, "nan"));
    ASSERT_TRUE(!contains_ci(doc, "inf"));
    ASSERT_TRUE(points_have_one_decimal(doc));
    ASSERT_TRUE(xmllint_check(doc) != 0);
}

/* The checker itself must reject what it is there to catch. */
static void test_xml_checker(void)
{
    static const struct {
        const char *doc;
        int ok;
    } rows[] = {
        {"<?xml version=\"1.0\"?>\n<svg a=\"1\"><g><text>x &amp; y</text></g><line/></svg>\n", 1},
        {"<svg a=\"1\"><g></svg>", 0},
        {"<svg a=\"1\"><g></text></g></svg>", 0},
        {"<svg a=\"1\">a & b</svg>", 0},
        {"<svg a=\"<\"></svg>", 0},
        {"<svg a=\"1\"></svg><svg a=\"1\"></svg>", 0},
        {"<svg a=\"1\"><text>", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        ASSERT_EQ(xml_problem(rows[i].doc) == NULL, rows[i].ok);
        CPS_ROW_END(rows[i].doc);
    }
}

static void test_nice_step(void)
{
    static const struct {
        double range;
        int max_ticks;
        double want;
    } rows[] = {
        {100, 5, 20},        /* raw 20: already nice */
        {7, 5, 2},           /* raw 1.4 -> 2 */
        {1, 10, 0.1},        /* raw 0.1 */
        {0.013, 5, 0.005},   /* raw 0.0026 -> 5e-3 */
        {95, 10, 10},        /* raw 9.5 -> 10 */
        {1e6, 4, 5e5},       /* raw 250000 -> 5e5 */
        {30, 7, 5},          /* raw 4.29 -> 5 */
        {2300, 6, 500},      /* raw 383 -> 500 */
        {50, 0, 50},         /* max_ticks < 1 counts as 1 */
        {0, 5, 1},           /* degenerate ranges give 1 */
        {-3, 5, 1},
        {NAN, 5, 1},
        {INFINITY, 5, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        double got = cps_plot_nice_step(rows[i].range, rows[i].max_ticks);
        ASSERT_NEAR(got, rows[i].want, rows[i].want * 1e-12);
        char name[64];
        snprintf(name, sizeof name, "nice_step(%g, %d)", rows[i].range, rows[i].max_ticks);
        CPS_ROW_END(name);
    }
}

static void test_time_step(void)
{
    static const struct {
        double span;
        int max_ticks;
        double want;
    } rows[] = {
        {7 * 86400.0, 10, 86400},      /* a week: daily ticks */
        {2 * 86400.0, 10, 21600},      /* 17280 s raw -> 6 h */
        {86400.0, 10, 10800},          /* 8640 s raw -> 3 h */
        {7200.0, 10, 900},             /* 720 s raw -> 15 min */
        {3600.0, 10, 600},             /* 360 s raw -> 10 min */
        {300.0, 10, 30},               /* 30 s */
        {90 * 86400.0, 10, 14 * 86400},/* 9 days raw -> 2 weeks */
        {400 * 86400.0, 10, 50 * 86400},/* 40 days raw -> 50 days */
        {5.0, 10, 0.5},                /* sub-second: nice seconds */
        {0, 10, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        ASSERT_NEAR(cps_plot_time_step(rows[i].span, rows[i].max_ticks), rows[i].want,
                    rows[i].want * 1e-12);
        char name[64];
        snprintf(name, sizeof name, "time_step(%g, %d)", rows[i].span, rows[i].max_ticks);
        CPS_ROW_END(name);
    }
}

static void test_format_tick(void)
{
    static const struct {
        double value, step;
        const char *want;
    } rows[] = {
        {0, 1, "0"},
        {1500, 500, "1.5k"},
        {1000, 500, "1k"},
        {2e6, 1e6, "2M"},
        {2.5e6, 5e5, "2.5M"},
        {0.012, 0.002, "0.012"},
        {800, 200, "800"},
        {12000, 2000, "12k"},
        {0.5, 0.1, "0.5"},
        {3, 1, "3"},
        {150, 50, "150"},
        {1e15, 2e14, "1P"},
        {4e9, 1e9, "4G"},
        {NAN, 1, "0"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        char buf[32];
        cps_plot_format_tick(rows[i].value, rows[i].step, buf, sizeof buf);
        ASSERT_STR_EQ(buf, rows[i].want);
        CPS_ROW_END(rows[i].want);
    }
    char tiny[3];
    cps_plot_format_tick(123456, 1, tiny, sizeof tiny);
    ASSERT_EQ(strlen(tiny), 2);
}

static void test_basic_render(void)
{
    struct cps_plot plot = make_plot(ONE_DAY_OF_BUCKETS, 3);
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_EQ(count(doc, "<polyline"), 1 + 3 * 3);
        ASSERT_EQ(count(doc, "<polygon"), 1);
        ASSERT_CONTAINS(doc, "<title>trace.csv</title>");
        ASSERT_CONTAINS(doc, ">cpscale</text>");
        ASSERT_CONTAINS(doc, ">hpa</text>");
        ASSERT_CONTAINS(doc, ">oracle</text>");
        ASSERT_CONTAINS(doc, "demand (req/s");
        ASSERT_CONTAINS(doc, "ready pods");
        ASSERT_CONTAINS(doc, "s over SLO / bucket");
        ASSERT_CONTAINS(doc, "cumulative cost (USD)");
        ASSERT_CONTAINS(doc, "stroke-dasharray");            /* oracle */
        ASSERT_CONTAINS(doc, "stroke=\"#0072B2\"");          /* cpscale blue */
        ASSERT_CONTAINS(doc, ">03:00</text>");              /* 3 h ticks */
        ASSERT_CONTAINS(doc, ">Wed 07-03</text>");           /* date under 00:00 */
        ASSERT_CONTAINS(doc, ">Thu 07-04</text>");
        ASSERT_CONTAINS(doc, "time (UTC): 1 day");
        ASSERT_CONTAINS(doc, "288 buckets of 5 min");
        ASSERT_CONTAINS(doc, ">1.5k</text>");                /* demand axis */
        ASSERT_CONTAINS(doc, ">20</text>");                  /* pods axis top */
    }
    free(doc);
}

static void test_week_labels(void)
{
    struct cps_plot plot = make_plot(7 * ONE_DAY_OF_BUCKETS, 3);
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_CONTAINS(doc, ">Sat 07-06</text>");
        ASSERT_CONTAINS(doc, ">Wed 07-10</text>");
        ASSERT_CONTAINS(doc, "time (UTC): 7 days, Wed 2024-07-03 00:00");
        ASSERT_TRUE(strlen(doc) < OUTPUT_BYTES_MAX_2000_POINTS);
    }
    free(doc);
}

static void test_long_span_iso_dates(void)
{
    struct cps_plot plot = make_plot(90 * 24, 2);
    plot.bucket_seconds = 3600.0;
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc)
        ASSERT_CONTAINS(doc, ">2024-07-08</text>");  /* Mondays, two weeks apart */
    free(doc);
}

static void test_escaping(void)
{
    struct cps_plot plot = make_plot(10, 2);
    plot.title = "a & b <c> \"d\" 'e'";
    struct cps_plot_series two[2] = {series[0], series[1]};
    two[1].name = "p<1>&\"q\"";
    plot.series = two;
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_CONTAINS(doc, "<title>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;</title>");
        ASSERT_CONTAINS(doc, "p&lt;1&gt;&amp;&quot;q&quot;");
        ASSERT_TRUE(!strstr(doc, "<c>"));
        ASSERT_TRUE(!strstr(doc, "p<1>"));
    }
    free(doc);
}

static void test_bad_bytes_in_names(void)
{
    struct cps_plot plot = make_plot(10, 2);
    struct cps_plot_series two[2] = {series[0], series[1]};
    two[0].name = "bad\x01\xff name";
    two[1].name = NULL;
    plot.series = two;
    plot.title = "caf\xc3\xa9 \xed\xa0\x80";  /* valid é, then a surrogate */
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_CONTAINS(doc, ">bad?? name</text>");
        ASSERT_CONTAINS(doc, ">(unnamed)</text>");
        ASSERT_CONTAINS(doc, "<title>caf\xc3\xa9 ?\?\?</title>");
    }
    free(doc);
}

static void test_nan_inf_inputs(void)
{
    struct cps_plot plot = make_plot(100, 3);
    plot.title = "t";
    demand[3] = NAN;
    demand[4] = INFINITY;
    demand[5] = -INFINITY;
    demand[6] = -5;
    pods[0][7] = NAN;
    pods[1][8] = INFINITY;
    violations[2][9] = NAN;
    violations[0][10] = -INFINITY;
    costs[0][50] = NAN;
    costs[1][99] = INFINITY;     /* the final value: carries 0.98 forward */
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_EQ(count(doc, "<polyline"), 1 + 3 * 3);
        ASSERT_CONTAINS(doc, "$1.98");            /* hpa: 99 * 0.02 */
    }
    free(doc);
    /* All of a series non-finite. */
    for (size_t i = 0; i < 100; i++)
        pods[2][i] = costs[2][i] = violations[2][i] = demand[i] = NAN;
    doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    free(doc);
}

static void test_single_point(void)
{
    struct cps_plot plot = make_plot(1, 2);
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_EQ(count(doc, "<polyline"), 1 + 3 * 2);
        ASSERT_CONTAINS(doc, "1 bucket of 5 min");
    }
    free(doc);
}

static void test_demand_only(void)
{
    struct cps_plot plot = make_plot(50, 0);
    plot.series = NULL;
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_EQ(count(doc, "<polyline"), 1);
        ASSERT_TRUE(!strstr(doc, ">total<"));
    }
    free(doc);
}

static void test_all_zero(void)
{
    struct cps_plot plot = make_plot(200, 3);
    for (size_t i = 0; i < 200; i++) {
        demand[i] = 0;
        for (size_t s = 0; s < 3; s++)
            pods[s][i] = violations[s][i] = costs[s][i] = 0;
    }
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_EQ(count(doc, "<polyline"), 1 + 3 * 3);
        ASSERT_CONTAINS(doc, ">0.5</text>");   /* a 0..1 axis */
        ASSERT_CONTAINS(doc, "$0<");
    }
    free(doc);
}

static void test_huge_values(void)
{
    struct cps_plot plot = make_plot(100, 3);
    demand[1] = DBL_MAX;
    pods[0][2] = 1e300;
    violations[1][3] = 1e200;
    costs[2][99] = DBL_MAX;
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc)
        ASSERT_CONTAINS(doc, ">1P</text>");    /* capped at CPS_PLOT_VALUE_MAX */
    free(doc);
}

static void test_many_series(void)
{
    struct cps_plot plot = make_plot(100, MAX_SERIES_IN_TEST);
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    assert_sane_svg(doc);
    if (doc) {
        ASSERT_EQ(count(doc, "<polyline"), 1 + 3 * MAX_SERIES_IN_TEST);
        ASSERT_CONTAINS(doc, " more</text>");
    }
    free(doc);
}

static void test_stable_colors(void)
{
    struct cps_plot plot = make_plot(10, 2);
    struct cps_plot_series two[2] = {series[0], series[1]};
    two[0].name = "static:9";
    two[1].name = "cpscale";
    plot.series = two;
    struct cps_err err;
    int rc = -1;
    char *doc = render(&plot, &rc, &err);
    ASSERT_EQ(rc, 0);
    if (doc) {
        ASSERT_EQ(count(doc, "stroke=\"#0072B2\""), 4);   /* cpscale: legend + 3 */
        ASSERT_EQ(count(doc, "stroke=\"#009E73\""), 4);   /* first free colour */
        ASSERT_TRUE(!strstr(doc, "stroke-dasharray"));    /* no oracle */
    }
    free(doc);
}

static void test_bad_input(void)
{
    static const double one[1] = {1};
    static const struct cps_plot_series bad_series = {"x", one, NULL, one};
    static const struct {
        const char *name;
        size_t n_points;
        double start, bucket;
        const double *demand;
        size_t n_series;
        const struct cps_plot_series *series;
        int null_plot;
    } rows[] = {
        {"n_points 0", 0, JULY_3_2024, 300, one, 0, NULL, 0},
        {"too many points", CPS_PLOT_MAX_POINTS + 1, JULY_3_2024, 300, one, 0, NULL, 0},
        {"null plot", 1, JULY_3_2024, 300, one, 0, NULL, 1},
        {"null demand", 1, JULY_3_2024, 300, NULL, 0, NULL, 0},
        {"null series array", 1, JULY_3_2024, 300, one, 2, NULL, 0},
        {"series missing array", 1, JULY_3_2024, 300, one, 1, &bad_series, 0},
        {"bucket 0", 1, JULY_3_2024, 0, one, 0, NULL, 0},
        {"bucket NaN", 1, JULY_3_2024, NAN, one, 0, NULL, 0},
        {"bucket negative", 1, JULY_3_2024, -300, one, 0, NULL, 0},
        {"start NaN", 1, NAN, 300, one, 0, NULL, 0},
        {"start past 9999", 1, 1e12, 300, one, 0, NULL, 0},
        {"span past 9999", 1, JULY_3_2024, 1e300, one, 0, NULL, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        struct cps_plot plot = {"t", rows[i].n_points, rows[i].start, rows[i].bucket,
                                rows[i].demand, rows[i].n_series, rows[i].series};
        struct cps_err err;
        int rc = 0;
        char *doc = render(rows[i].null_plot ? NULL : &plot, &rc, &err);
        ASSERT_EQ(rc, -1);
        ASSERT_TRUE(err.message[0] != '\0');
        ASSERT_TRUE(doc == NULL || doc[0] == '\0');  /* nothing written */
        free(doc);
        CPS_ROW_END(rows[i].name);
    }
    struct cps_plot plot = make_plot(10, 1);
    struct cps_err err;
    cps_err_clear(&err);
    ASSERT_EQ(cps_plot_write_svg(NULL, &plot, &err), -1);
    ASSERT_TRUE(err.message[0] != '\0');
    ASSERT_EQ(cps_plot_write_svg(NULL, &plot, NULL), -1);   /* err is optional */
}

static void test_write_error(void)
{
    FILE *full = fopen("/dev/full", "w");
    if (!full) {
        fprintf(stderr, "  skip test_write_error: no /dev/full\n");
        return;
    }
    struct cps_plot plot = make_plot(ONE_DAY_OF_BUCKETS, 3);
    struct cps_err err;
    cps_err_clear(&err);
    ASSERT_EQ(cps_plot_write_svg(full, &plot, &err), -1);
    ASSERT_CONTAINS(err.message, "writing the SVG failed");
    fclose(full);
}

int main(void)
{
    CPS_RUN(test_xml_checker);
    CPS_RUN(test_nice_step);
    CPS_RUN(test_time_step);
    CPS_RUN(test_format_tick);
    CPS_RUN(test_basic_render);
    CPS_RUN(test_week_labels);
    CPS_RUN(test_long_span_iso_dates);
    CPS_RUN(test_escaping);
    CPS_RUN(test_bad_bytes_in_names);
    CPS_RUN(test_nan_inf_inputs);
    CPS_RUN(test_single_point);
    CPS_RUN(test_demand_only);
    CPS_RUN(test_all_zero);
    CPS_RUN(test_huge_values);
    CPS_RUN(test_many_series);
    CPS_RUN(test_stable_colors);
    CPS_RUN(test_bad_input);
    CPS_RUN(test_write_error);
    CPS_TEST_END();
}
