/*
 * lib/trace.c reads numbers exactly: every decimal the trace format accepts
 * (docs/model.md §1) must become the same double as the C library's strtod,
 * whichever way the parser takes (its fast path for plain digits on a line
 * that ends in a newline, or the general path). The reference is strtod,
 * an implementation independent of the code under test.
 *
 * Inputs: a table of edge cases (2^53 and neighbours, 19 and 20 digits,
 * 22 and 23 fraction digits, halfway cases, the 1e12 and 1e11 limits) and
 * a few hundred thousand generated decimals of every shape, each parsed
 * both in the middle of a buffer of rows (so the line ends in '\n') and as a
 * last line without one. Plus the step log's run API against single steps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cps_test.h"
#include "trace.h"

#define ROWS_PER_BUFFER 512
#define GENERATED 200000
#define GENERATED_TIMESTAMPS 40000
#define NUMBER_MAX 64
#define LCG_MUL 6364136223846793005ULL
#define LCG_ADD 1442695040888963407ULL
#define QPS_LIMIT 1e12   /* CPS_TRACE_MAX_QPS, from docs/model.md §1 */
#define EPOCH_LIMIT 1e11 /* CPS_TRACE_MAX_EPOCH */

static const char *const edge_cases[] = {
    "0", "0.0", "00", "000000000000000000000", "5.", ".5", "0.1", "0.2", "0.3", "1.005",
    "2.675", "0.1000000000000000055511151231257827", "123456789012345678", /* 18 digits */
    "1234567890123456789",                                                 /* 19 digits */
    "12345678901234567890",                                                /* 20 digits */
    "9007199254740991", "9007199254740992", "9007199254740993", "9007199254740994",
    "9007199254740995", "900719925474099.3", "90071992547409.93", "18014398509481985",
    "0.1234567890123456789", "0.0000000000000000000001",                   /* 22 fraction digits */
    "0.00000000000000000000001",                                           /* 23 */
    "1.0000000000000000000000", "4.35", "4.345", "8.5", "0.5e1", "1e3", "1E3", "1.5e-3",
    "2.5e+2", "0e0", "1000000000000", "1000000000000.0", "999999999999.9999",
    "1000000000000.0001", "1000000000001", "99999999999", "99999999999.5", "100000000000",
    "4503599627370496.5", "4503599627370497.5", "0.000001", "1.7976931348623157", "3.14159",
    "+1", "+0.25", "-0", "-0.0", "1e-400",
};

static uint64_t lcg(uint64_t *state)
{
    *state = *state * LCG_MUL + LCG_ADD;
    return *state >> 33;
}

/* A random decimal of the shapes the format allows: up to 20 integer and
 * 25 fraction digits, sometimes leading zeros or nines, sometimes a point
 * with nothing after it, sometimes an exponent or a plus sign. */
static void generate(uint64_t *state, char *out)
{
    size_t n = 0;
    uint64_t shape = lcg(state);
    if (shape % 50 == 0)
        out[n++] = '+';
    unsigned int_digits = (unsigned)(lcg(state) % 21);
    unsigned frac_digits = shape % 3 ? (unsigned)(lcg(state) % 26) : 0;
    if (int_digits == 0 && frac_digits == 0)
        int_digits = 1;
    char fill = shape % 7 == 0 ? '0' : shape % 11 == 0 ? '9' : 0;
    for (unsigned i = 0; i < int_digits; i++)
        out[n++] = fill && lcg(state) % 4 ? fill : (char)('0' + lcg(state) % 10);
    if (frac_digits || shape % 13 == 0)
        out[n++] = '.';
    for (unsigned i = 0; i < frac_digits; i++)
        out[n++] = fill && lcg(state) % 4 ? fill : (char)('0' + lcg(state) % 10);
    if (shape % 17 == 0)
        n += (size_t)sprintf(out + n, "e%d", (int)(lcg(state) % 40) - 20);
    out[n] = '\0';
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/*
 * Parse "timestamp,qps" rows whose qps are numbers[0, n): every row but the
 * last ends in '\n', the last has no newline and goes in with final = 1.
 * Each qps must be strtod's double; a number above the limit must stop the
 * parse with an error on its own line. Returns the mismatches.
 */
static int check_qps_batch(char numbers[][NUMBER_MAX], size_t n)
{
    static char buf[ROWS_PER_BUFFER * (NUMBER_MAX + 16) + 32];
    static struct cps_trace_row rows[ROWS_PER_BUFFER];
    size_t len = (size_t)sprintf(buf, "timestamp,qps\n");
    size_t first_bad = n;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)sprintf(buf + len, "%zu,%s%s", i + 1, numbers[i], i + 1 < n ? "\n" : "");
        if (first_bad == n && strtod(numbers[i], NULL) > QPS_LIMIT)
            first_bad = i;
    }
    struct cps_trace_parser parser;
    struct cps_err err;
    size_t n_rows = 0, consumed = 0;
    cps_err_clear(&err);
    cps_trace_parser_init(&parser, "n.csv");
    int rc = cps_trace_parse(&parser, buf, len, 1, rows, ROWS_PER_BUFFER, &n_rows, &consumed, &err);
    int mismatches = 0;
    if (first_bad < n) {
        /* the rows before it were parsed; the error names its line (header = 1) */
        if (rc == 0 || err.line != (int)first_bad + 2) {
            CPS_FAIL_AT("qps %s above the limit: rc %d line %d, expected an error on line %zu",
                        numbers[first_bad], rc, err.line, first_bad + 2);
            mismatches++;
        }
        n = first_bad;
    } else if (rc != 0 || n_rows != n) {
        CPS_FAIL_AT("batch of %zu: rc %d, %zu rows (%s)", n, rc, n_rows, err.message);
        return 1;
    }
    for (size_t i = 0; i < n && i < n_rows; i++) {
        double want = strtod(numbers[i], NULL);
        if (!same_double(rows[i].qps, want)) {
            CPS_FAIL_AT("qps \"%s\" (%s): %.17g, strtod gives %.17g", numbers[i],
                        i + 1 < n ? "line with newline" : "last line", rows[i].qps, want);
            mismatches++;
        }
        if (rows[i].line != (int)i + 2 || !same_double(rows[i].t, (double)(i + 1))) {
            CPS_FAIL_AT("row %zu: line %d t %g", i, rows[i].line, rows[i].t);
            mismatches++;
        }
    }
    return mismatches;
}

/* One number as the timestamp of a one-row trace, with and without a
 * newline after it: strtod's double below 1e11, an error at or above. */
static int check_timestamp(const char *number)
{
    int mismatches = 0;
    for (int newline = 0; newline < 2; newline++) {
        char buf[NUMBER_MAX + 32];
        int len = snprintf(buf, sizeof buf, "timestamp,qps\n%s,1%s", number, newline ? "\n" : "");
        struct cps_trace_parser parser;
        struct cps_trace_row row;
        struct cps_err err;
        size_t n_rows = 0, consumed = 0;
        cps_err_clear(&err);
        cps_trace_parser_init(&parser, "t.csv");
        int rc = cps_trace_parse(&parser, buf, (size_t)len, 1, &row, 1, &n_rows, &consumed, &err);
        double want = strtod(number, NULL);
        /* a fifth character '-' makes it RFC 3339 (docs/model.md §1): "80.e-17" is not one */
        int rfc3339 = strlen(number) > 4 && number[4] == '-';
        int ok = !rfc3339 && want < EPOCH_LIMIT && want >= 0.0;
        if (ok && (rc != 0 || n_rows != 1 || !same_double(row.t, want))) {
            CPS_FAIL_AT("timestamp \"%s\": rc %d rows %zu t %.17g, strtod gives %.17g (%s)",
                        number, rc, n_rows, n_rows ? row.t : 0.0, want, err.message);
            mismatches++;
        } else if (!ok && (rc == 0 || err.line != 2 || (!rfc3339 && err.col != 1))) {
            CPS_FAIL_AT("timestamp \"%s\" is out of range: rc %d at %d:%d", number, rc, err.line,
                        err.col);
            mismatches++;
        }
    }
    return mismatches;
}

static void test_edge_cases(void)
{
    static char numbers[2][NUMBER_MAX];
    size_t n = sizeof edge_cases / sizeof edge_cases[0];
    int mismatches = 0;
    for (size_t i = 0; i < n; i++) {
        /* alone (so one above the limit does not hide the rest), then all together */
        snprintf(numbers[0], NUMBER_MAX, "%s", edge_cases[i]);
        snprintf(numbers[1], NUMBER_MAX, "%s", edge_cases[i]);
        mismatches += check_qps_batch(numbers, 2);
        mismatches += check_timestamp(edge_cases[i]);
    }
    ASSERT_EQ(mismatches, 0);
}

static void test_generated(void)
{
    static char numbers[ROWS_PER_BUFFER][NUMBER_MAX];
    uint64_t state = 20240501;
    int mismatches = 0;
    for (size_t done = 0; done < GENERATED && mismatches < 20; done += ROWS_PER_BUFFER) {
        size_t n = 0;
        while (n < ROWS_PER_BUFFER) {
            generate(&state, numbers[n]);
            /* keep the batch within the limit: the limit case is tested above */
            if (strtod(numbers[n], NULL) <= QPS_LIMIT)
                n++;
        }
        mismatches += check_qps_batch(numbers, n);
    }
    for (size_t i = 0; i < GENERATED_TIMESTAMPS && mismatches < 20; i++) {
        char number[NUMBER_MAX];
        generate(&state, number);
        mismatches += check_timestamp(number);
    }
    ASSERT_EQ(mismatches, 0);
}

/* Signs and the odd shapes stay refused or accepted as before, on a line
 * that ends in a newline (the fast path's ground) as on a last line. */
static void test_refused(void)
{
    static const struct {
        const char *qps;
        int col; /* 0: accepted; else the error's column in "1,<qps>" */
    } cases[] = {
        {".", 3},     {"1.2.3", 6},  {"1e", 4},      {"1e+", 4},  {"-1", 3},
        {"0x10", 4},  {"nan", 3},    {"inf", 3},     {"1,5", 0},  {"", 3},
        {" 7", 0},    {"7 ", 0},     {"\"7\"", 0},   {"7\r", 0},  {"1__", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int newline = 0; newline < 2; newline++) {
            char buf[64];
            /* "1,5" makes a third field: the header gets a third column */
            int three = strchr(cases[i].qps, ',') != NULL;
            int len = snprintf(buf, sizeof buf, "timestamp,qps%s\n1,%s%s", three ? ",x" : "",
                               cases[i].qps, newline ? "\n" : "");
            struct cps_trace_parser parser;
            struct cps_trace_row rows[1];
            struct cps_err err;
            size_t n_rows = 0, consumed = 0;
            cps_err_clear(&err);
            cps_trace_parser_init(&parser, "r.csv");
            int rc = cps_trace_parse(&parser, buf, (size_t)len, 1, rows, 1, &n_rows, &consumed,
                                     &err);
            if (cases[i].col == 0) {
                ASSERT_EQ(rc, 0);
                ASSERT_EQ(n_rows, 1);
                ASSERT_TRUE(rows[0].qps == (three ? 1.0 : 7.0));
            } else {
                ASSERT_EQ(rc, -1);
                ASSERT_EQ(err.line, 2);
                ASSERT_EQ(err.col, cases[i].col);
            }
        }
    }
}

/* cps_step_log_add_run gives the runs that single steps give (worked by
 * hand: steps 1,1,1 on lines 2-4, 2 on line 5, 1 on lines 6 and 8). */
static void test_step_log_runs(void)
{
    struct cps_step_log single, runs;
    cps_step_log_init(&single);
    cps_step_log_init(&runs);
    static const struct {
        double step;
        int line;
    } steps[] = {{1, 2}, {1, 3}, {1, 4}, {2, 5}, {1, 6}, {1, 8}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        ASSERT_EQ(cps_step_log_add(&single, steps[i].step, steps[i].line), 0);
    ASSERT_EQ(cps_step_log_add_run(&runs, 1, 2, 2), 0);
    ASSERT_EQ(cps_step_log_add_run(&runs, 1, 4, 1), 0); /* continues the run */
    ASSERT_EQ(cps_step_log_add_run(&runs, 2, 5, 1), 0);
    ASSERT_EQ(cps_step_log_add_run(&runs, 1, 6, 1), 0);
    ASSERT_EQ(cps_step_log_add_run(&runs, 1, 8, 1), 0); /* line 7 missing: a new run */
    ASSERT_EQ(cps_step_log_add_run(&runs, 1, 9, 0), 0); /* nothing */
    ASSERT_EQ(runs.n_runs, 4);
    ASSERT_EQ(runs.steps, 6);
    ASSERT_EQ(single.n_runs, runs.n_runs);
    for (size_t i = 0; i < runs.n_runs && i < single.n_runs; i++) {
        ASSERT_TRUE(runs.runs[i].step == single.runs[i].step);
        ASSERT_EQ(runs.runs[i].first_line, single.runs[i].first_line);
        ASSERT_EQ(runs.runs[i].count, single.runs[i].count);
    }
    ASSERT_EQ(runs.runs[0].count, 3);
    ASSERT_EQ(runs.runs[3].first_line, 8);
    cps_step_log_release(&single);
    cps_step_log_release(&runs);
}

int main(void)
{
    CPS_RUN(test_edge_cases);
    CPS_RUN(test_generated);
    CPS_RUN(test_refused);
    CPS_RUN(test_step_log_runs);
    CPS_TEST_END();
}
