/*
 * Table tests for lib/trace.c: the streaming trace CSV parser (docs/model.md §1),
 * the RFC 3339 reader and the step log behind the gap warnings.
 *
 * Every input is parsed several ways (the whole buffer at once; one byte at
 * a time; pseudo-random chunk sizes; with room for many rows, for 3, and for
 * only 1 per call), carrying the unconsumed tail over between calls exactly
 * as a streaming caller does, and every way must give the same rows or the
 * same error. The helper also checks the API contract on each call: nothing
 * written past `cap`, `consumed` within the buffer, no complete line left
 * unconsumed when the rows did not fill, everything consumed on final.
 *
 * Expected values are worked out by hand. Columns are 1-based byte positions
 * in the line (after a BOM on line 1), counted from the literal in the row;
 * the count is in the comment beside it. Epoch values:
 *   days 1970-01-01 .. 2024-01-01 = 54*365 + 13 leap days = 19723
 *   2024-05-01 = 19723 + 31+29+31+30 = 19844 days -> 19844*86400 = 1714521600
 *   2024-05-01T12:00:00Z = 1714521600 + 43200 = 1714564800
 *   2024-02-29T00:00:00Z = (19723 + 31+28) * 86400 = 1709164800
 *   2000-01-01 = (30*365 + 7) * 86400 = 946684800; 2000-02-29 = +59 days = 951782400
 *   2017-01-01 = (47*365 + 12) * 86400 = 1483228800
 *   2025-01-01 = 1704067200 + 366*86400 = 1735689600
 *   10-year span limit = 10*366*86400 = 316224000 s (3660 days)
 *
 * Rows whose expectation the parser does not meet (a parser bug found while
 * writing these tests) carry a non-NULL `bug` note; on failure the note is
 * printed as "PARSER BUG: ...". lib/trace.c is not changed here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cps_test.h"
#include "trace.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* A literal with its exact length (so a row may hold a NUL byte). */
#define LIT(s) (s), (sizeof(s) - 1)

#define SOURCE "t.csv"
#define MAX_ROWS 16        /* most rows any table input produces */
#define MAX_EXPECT 4       /* rows spelled out per valid-table entry */
#define CANARY_LINE (-424242)
/* Feeding one byte at a time re-scans the carried tail on every call, which
 * is quadratic; inputs longer than this skip that feed. */
#define BYTE_FEED_MAX_LEN 4096
#define SMALL_CHUNK_MAX 17
#define LARGE_CHUNK_MAX 4099
#define LCG_MUL 1103515245u
#define LCG_ADD 12345u
#define EPOCH_TOLERANCE 1e-6
#define VALUE_TOLERANCE 1e-9

/* ---- the feeding helper ------------------------------------------------- */

enum feed { FEED_WHOLE, FEED_BYTES, FEED_SMALL, FEED_LARGE };

static const char *const feed_names[] = {"whole", "1-byte", "random<=17", "random<=4099"};

struct outcome {
    int rc;                   /* 0, or -1 from cps_trace_parse or _finish */
    int in_finish;            /* the error came from cps_trace_parser_finish */
    struct cps_trace_row rows[MAX_ROWS];
    size_t n_rows;
    int too_many_rows;        /* the input gave more than MAX_ROWS rows */
    char contract[160];       /* first API-contract violation seen, or "" */
    struct cps_err err;
};

static size_t next_chunk(enum feed feed, uint32_t *seed, size_t left)
{
    size_t n = left;
    *seed = *seed * LCG_MUL + LCG_ADD;
    switch (feed) {
    case FEED_WHOLE: n = left; break;
    case FEED_BYTES: n = 1; break;
    case FEED_SMALL: n = (*seed >> 16) % SMALL_CHUNK_MAX + 1; break;
    case FEED_LARGE: n = (*seed >> 8) % LARGE_CHUNK_MAX + 1; break;
    }
    return n < left ? n : left;
}

static void broke(struct outcome *out, const char *what, size_t a, size_t b)
{
    if (!out->contract[0])
        snprintf(out->contract, sizeof out->contract, "%s (%zu, %zu)", what, a, b);
}

/*
 * Parse text[0, len) the way a streaming reader does: append the next chunk
 * to the unconsumed tail, call cps_trace_parse until a call returns fewer
 * than `cap` rows, keep what it did not consume; final == 1 on the call that
 * sees the last byte. Then cps_trace_parser_finish.
 */
static void feed_parse(const char *text, size_t len, enum feed feed, size_t cap,
                       struct outcome *out)
{
    struct cps_trace_row batch[MAX_ROWS + 1];
    struct cps_trace_parser parser;
    memset(out, 0, sizeof *out);
    cps_err_clear(&out->err);
    cps_trace_parser_init(&parser, SOURCE);
    char *buf = malloc(len + 1);
    if (!buf) {
        broke(out, "out of memory", len, 0);
        out->rc = -1;
        return;
    }
    size_t have = 0, fed = 0;
    uint32_t seed = 7;
    int final = 0;
    while (!final) {
        size_t take = next_chunk(feed, &seed, len - fed);
        memcpy(buf + have, text + fed, take);
        have += take;
        fed += take;
        final = fed == len;
        size_t off = 0;
        for (;;) {
            size_t n = SIZE_MAX, consumed = SIZE_MAX;
            memset(batch, 0, sizeof batch);
            batch[cap].line = CANARY_LINE;
            if (cps_trace_parse(&parser, buf + off, have - off, final, batch, cap, &n, &consumed,
                                &out->err) < 0) {
                out->rc = -1;
                goto done;
            }
            if (batch[cap].line != CANARY_LINE)
                broke(out, "a row was written past cap", cap, 0);
            if (n > cap)
                broke(out, "n_rows > cap", n, cap);
            if (consumed > have - off)
                broke(out, "consumed past the buffer", consumed, have - off);
            if (n > cap || consumed > have - off)
                goto done;
            for (size_t i = 0; i < n; i++) {
                if (out->n_rows < MAX_ROWS)
                    out->rows[out->n_rows++] = batch[i];
                else
                    out->too_many_rows = 1;
            }
            off += consumed;
            if (n < cap)
                break;
            if (consumed == 0) {
                broke(out, "rows filled but nothing consumed", n, cap);
                goto done;
            }
        }
        /* Rows did not fill, so every complete line must be gone (once the
         * parser has seen enough bytes to decide about a BOM). */
        if (parser.bom_checked && memchr(buf + off, '\n', have - off))
            broke(out, "a complete line was left unconsumed at offset", off, have);
        if (final && off != have)
            broke(out, "the final call left bytes unconsumed", off, have);
        if (off) {
            memmove(buf, buf + off, have - off);
            have -= off;
        }
    }
    if (cps_trace_parser_finish(&parser, &out->err) < 0) {
        out->rc = -1;
        out->in_finish = 1;
    }
done:
    free(buf);
}

static int rows_equal(const struct cps_trace_row *a, const struct cps_trace_row *b)
{
    if (a->t != b->t || a->qps != b->qps || a->has != b->has || a->line != b->line)
        return 0;
    if ((a->has & CPS_TRACE_HAS_P95) && a->p95_ms != b->p95_ms)
        return 0;
    if ((a->has & CPS_TRACE_HAS_REPLICAS) && a->replicas != b->replicas)
        return 0;
    if ((a->has & CPS_TRACE_HAS_COST) && a->cost_per_pod_hour != b->cost_per_pod_hour)
        return 0;
    return 1;
}

/* Fail the current test unless `got` (one feed) matches `ref` (whole buffer). */
static void expect_same(const struct outcome *ref, const struct outcome *got, enum feed feed,
                        size_t cap, const char *name)
{
    if (got->contract[0])
        CPS_FAIL_AT("[%s] feed %s cap %zu: API contract: %s", name, feed_names[feed], cap,
                    got->contract);
    if (got->rc != ref->rc) {
        CPS_FAIL_AT("[%s] feed %s cap %zu: rc %d, whole-buffer rc %d (%s)", name, feed_names[feed],
                    cap, got->rc, ref->rc, got->rc ? got->err.message : ref->err.message);
        return;
    }
    if (got->rc < 0) {
        if (got->err.line != ref->err.line || got->err.col != ref->err.col ||
            strcmp(got->err.message, ref->err.message) != 0)
            CPS_FAIL_AT("[%s] feed %s cap %zu: error %d:%d \"%s\", whole buffer %d:%d \"%s\"", name,
                        feed_names[feed], cap, got->err.line, got->err.col, got->err.message,
                        ref->err.line, ref->err.col, ref->err.message);
        return;
    }
    if (got->n_rows != ref->n_rows) {
        CPS_FAIL_AT("[%s] feed %s cap %zu: %zu rows, whole buffer %zu", name, feed_names[feed], cap,
                    got->n_rows, ref->n_rows);
        return;
    }
    for (size_t i = 0; i < got->n_rows; i++)
        if (!rows_equal(&got->rows[i], &ref->rows[i]))
            CPS_FAIL_AT("[%s] feed %s cap %zu: row %zu (t %.17g line %d) differs from whole "
                        "buffer (t %.17g line %d)",
                        name, feed_names[feed], cap, i, got->rows[i].t, got->rows[i].line,
                        ref->rows[i].t, ref->rows[i].line);
}

/* Parse every way; return the whole-buffer outcome in *ref. */
static void parse_every_way(const char *text, size_t len, const char *name, struct outcome *ref)
{
    static const size_t caps[] = {MAX_ROWS, 3, 1};
    static struct outcome got;
    feed_parse(text, len, FEED_WHOLE, MAX_ROWS, ref);
    if (ref->contract[0])
        CPS_FAIL_AT("[%s] whole buffer: API contract: %s", name, ref->contract);
    if (ref->too_many_rows)
        CPS_FAIL_AT("[%s] more than %d rows: enlarge MAX_ROWS", name, MAX_ROWS);
    for (enum feed feed = FEED_WHOLE; feed <= FEED_LARGE; feed++) {
        if (feed == FEED_BYTES && len > BYTE_FEED_MAX_LEN)
            continue;
        for (size_t c = 0; c < ARRAY_LEN(caps); c++) {
            if (feed == FEED_WHOLE && caps[c] == MAX_ROWS)
                continue;
            feed_parse(text, len, feed, caps[c], &got);
            expect_same(ref, &got, feed, caps[c], name);
        }
    }
}

static void print_error(const struct outcome *out, const char *name)
{
    char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
    cps_err_format(&out->err, msg, sizeof msg);
    CPS_FAIL_AT("[%s] unexpected error: %s", name, msg);
}

/* ---- valid traces ------------------------------------------------------- */

struct want_row {
    double t, qps;
    int line;
    unsigned has;
    double p95_ms, replicas, cost;
};

struct valid_case {
    const char *name;
    const char *text;
    size_t len;
    size_t n_rows;
    struct want_row rows[MAX_EXPECT];
};

/* a row with no optional column, and one with them */
#define R(t, qps, line) {(t), (qps), (line), 0, 0, 0, 0}
#define RX(t, qps, line, has, p95, replicas, cost) \
    {(t), (qps), (line), (has), (p95), (replicas), (cost)}

#define P95 CPS_TRACE_HAS_P95
#define REP CPS_TRACE_HAS_REPLICAS
#define COST CPS_TRACE_HAS_COST

static const struct valid_case valid_cases[] = {
    {"minimal", LIT("timestamp,qps\n0,50\n60,500\n"), 2, {R(0, 50, 2), R(60, 500, 3)}},
    {"no trailing newline", LIT("timestamp,qps\n0,50\n60,500"), 2, {R(0, 50, 2), R(60, 500, 3)}},
    {"CRLF", LIT("timestamp,qps\r\n0,50\r\n60,500\r\n"), 2, {R(0, 50, 2), R(60, 500, 3)}},
    {"CRLF, no trailing newline", LIT("timestamp,qps\r\n0,50\r\n60,500"), 2,
     {R(0, 50, 2), R(60, 500, 3)}},
    {"UTF-8 BOM", LIT("\xEF\xBB\xBFtimestamp,qps\n0,50\n60,500\n"), 2,
     {R(0, 50, 2), R(60, 500, 3)}},
    {"BOM + CRLF, no trailing newline", LIT("\xEF\xBB\xBFtimestamp,qps\r\n0,1\r\n1,2"), 2,
     {R(0, 1, 2), R(1, 2, 3)}},
    /* CR-only line 2 is blank */
    {"CRLF blank line", LIT("timestamp,qps\r\n\r\n0,1\r\n"), 1, {R(0, 1, 3)}},
    {"RFC 3339 Z", LIT("timestamp,qps\n2024-05-01T12:00:00Z,50\n2024-05-01T12:01:00Z,60\n"), 2,
     {R(1714564800, 50, 2), R(1714564860, 60, 3)}},
    /* 14:00+02:00 = 12:00Z; 06:31-05:30 = 12:01Z; 12:02:00.5Z = +120.5 s */
    {"RFC 3339 offsets and fraction",
     LIT("timestamp,qps\n2024-05-01T14:00:00+02:00,1\n2024-05-01T06:31:00-05:30,2\n"
         "2024-05-01T12:02:00.5Z,3\n"),
     3, {R(1714564800, 1, 2), R(1714564860, 2, 3), R(1714564920.5, 3, 4)}},
    /* 't', 'z', a space separator and -00:00 are all RFC 3339 */
    {"RFC 3339 lower case, space, -00:00",
     LIT("timestamp,qps\n1970-01-01T00:00:00Z,1\n1970-01-01t00:00:01z,2\n"
         "1970-01-01 00:00:02-00:00,3\n"),
     3, {R(0, 1, 2), R(1, 2, 3), R(2, 3, 4)}},
    /* 2024-05-01T12:00:30Z = 1714564800 + 30 */
    {"epoch and RFC 3339 mixed", LIT("timestamp,qps\n1714564800,5\n2024-05-01T12:00:30Z,6\n"), 2,
     {R(1714564800, 5, 2), R(1714564830, 6, 3)}},
    {"extra columns in any order",
     LIT("host,qps,region,timestamp\nweb-1,50,eu,0\nweb-2,60,us,60\n"), 2,
     {R(0, 50, 2), R(60, 60, 3)}},
    {"optional columns present and empty",
     LIT("timestamp,qps,p95_ms,replicas,cost_per_pod_hour\n0,50,120.5,3,0.07\n60,40,,,\n"
         "120,30,80,,0.1\n"),
     3,
     {RX(0, 50, 2, P95 | REP | COST, 120.5, 3, 0.07),
      RX(60, 40, 3, 0, 0, 0, 0),
      RX(120, 30, 4, P95 | COST, 80, 0, 0.1)}},
    {"optional columns reordered, one missing",
     LIT("replicas,timestamp,cost_per_pod_hour,qps\n4,10,0.5,7\n"), 1,
     {RX(10, 7, 2, REP | COST, 0, 4, 0.5)}},
    {"quoted fields",
     LIT("\"timestamp\",note,\"qps\"\n\"0\",\"hello, world\",\"50\"\n"
         "60,\"a \"\"quoted\"\" word\",70\n"),
     2, {R(0, 50, 2), R(60, 70, 3)}},
    {"spaces and tabs around fields", LIT("timestamp , qps\n  0 ,\t50 \n 60,  70\t\n"), 2,
     {R(0, 50, 2), R(60, 70, 3)}},
    /* lines: 1 blank, 2 blank, 3 header, 4 blank, 5 row, 6 spaces, 7 tab, 8 row, 9 blank */
    {"blank lines", LIT("\n\ntimestamp,qps\n\n0,50\n   \n\t\n60,70\n\n"), 2,
     {R(0, 50, 5), R(60, 70, 8)}},
    {"decimal timestamps and rates",
     LIT("timestamp,qps\n1714564800.25,1.5\n1714564800.75,2.25\n"), 2,
     {R(1714564800.25, 1.5, 2), R(1714564800.75, 2.25, 3)}},
    {"exponent notation", LIT("timestamp,qps\n0,1e3\n1.5e1,2.5E-1\n3e+1,0\n"), 3,
     {R(0, 1000, 2), R(15, 0.25, 3), R(30, 0, 4)}},
    {"sign, leading zeros, bare fraction", LIT("timestamp,qps\n+5,007\n6.,.5\n"), 2,
     {R(5, 7, 2), R(6, 0.5, 3)}},
    /* limit is "> 1e12", so 1e12 itself passes */
    {"largest rate", LIT("timestamp,qps\n0,1e12\n1,1000000000000\n"), 2,
     {R(0, 1e12, 2), R(1, 1e12, 3)}},
    /* limit is "> 316224000 s" after the first row */
    {"span of exactly 10*366 days", LIT("timestamp,qps\n0,1\n316224000,2\n"), 2,
     {R(0, 1, 2), R(316224000, 2, 3)}},
    {"single row", LIT("timestamp,qps\n5,0\n"), 1, {R(5, 0, 2)}},
    /* a trailing comma makes an unnamed third column, so rows have 3 fields */
    {"empty column name", LIT("timestamp,qps,\n0,1,\n1,2,x\n"), 2, {R(0, 1, 2), R(1, 2, 3)}},
    /* 17 digits: the mantissa passes 2^53, so strtod rounds it */
    {"long mantissa", LIT("timestamp,qps\n0,12345678901.234567\n"), 1,
     {R(0, 12345678901.234567, 2)}},
};

static void test_valid_table(void)
{
    static struct outcome out;
    for (size_t i = 0; i < ARRAY_LEN(valid_cases); i++) {
        const struct valid_case *c = &valid_cases[i];
        CPS_ROW_BEGIN();
        parse_every_way(c->text, c->len, c->name, &out);
        if (out.rc != 0) {
            print_error(&out, c->name);
            CPS_ROW_END(c->name);
            continue;
        }
        ASSERT_EQ(out.n_rows, c->n_rows);
        for (size_t r = 0; r < c->n_rows && r < out.n_rows; r++) {
            const struct cps_trace_row *got = &out.rows[r];
            const struct want_row *want = &c->rows[r];
            ASSERT_NEAR(got->t, want->t, EPOCH_TOLERANCE);
            ASSERT_NEAR(got->qps, want->qps, VALUE_TOLERANCE * (1 + want->qps));
            ASSERT_EQ(got->line, want->line);
            ASSERT_EQ(got->has, want->has);
            if (want->has & P95)
                ASSERT_NEAR(got->p95_ms, want->p95_ms, VALUE_TOLERANCE);
            if (want->has & REP)
                ASSERT_NEAR(got->replicas, want->replicas, VALUE_TOLERANCE);
            if (want->has & COST)
                ASSERT_NEAR(got->cost_per_pod_hour, want->cost, VALUE_TOLERANCE);
        }
        CPS_ROW_END(c->name);
    }
}

/* ---- malformed traces --------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *text;
    size_t len;
    int line, col;
    const char *message;      /* substring of the error message */
    const char *bug;          /* non-NULL: the parser is known to get this wrong */
};

#define BAD(name, text, line, col, message) {(name), LIT(text), (line), (col), (message), NULL}
#define BAD_BUG(name, text, line, col, message, bug) \
    {(name), LIT(text), (line), (col), (message), (bug)}

static const struct bad_case bad_cases[] = {
    /* "30,50" on line 4: the timestamp starts at col 1 */
    BAD("decreasing time", "timestamp,qps\n0,50\n60,50\n30,50\n", 4, 1, "strictly increasing"),
    BAD("repeated time", "timestamp,qps\n0,50\n60,50\n60,70\n", 4, 1, "is not after the previous"),
    /* "50,0": '5'1 '0'2 ','3 '0'4 */
    BAD("repeated time, timestamp second", "qps,timestamp\n50,0\n50,0\n", 3, 4,
        "strictly increasing"),
    /* 13:59:59+02:00 = 11:59:59Z, before 12:00:00Z */
    BAD("decreasing RFC 3339 via offset",
        "timestamp,qps\n2024-05-01T12:00:00Z,1\n2024-05-01T13:59:59+02:00,1\n", 3, 1,
        "strictly increasing"),
    /* lines: 1 header, 2 blank, 3 "0,5", 4 blank, 5 "0,6" */
    BAD("line numbers count blank CRLF lines", "timestamp,qps\r\n\r\n0,5\r\n\r\n0,6\r\n", 5, 1,
        "strictly increasing"),
    /* "0,NaN": '0'1 ','2 'N'3 */
    BAD("NaN", "timestamp,qps\n0,NaN\n", 2, 3, "qps: \"NaN\" is not a number"),
    /* "60,nan": '6'1 '0'2 ','3 'n'4 */
    BAD("nan", "timestamp,qps\n0,50\n60,nan\n", 3, 4, "is not a number"),
    BAD("Inf", "timestamp,qps\n0,Inf\n", 2, 3, "is not a number"),
    /* "0,-inf": '-'3 'i'4: the sign is fine, the 'i' is not */
    BAD("-inf", "timestamp,qps\n0,-inf\n", 2, 4, "is not a number"),
    BAD("nan timestamp", "timestamp,qps\nnan,5\n", 2, 1, "neither epoch seconds nor RFC 3339"),
    BAD("negative rate", "timestamp,qps\n0,-5\n", 2, 3, "qps: negative value -5"),
    BAD("small negative rate", "timestamp,qps\n0,-0.001\n", 2, 3, "negative value"),
    /* "0,12a": 'a'5 */
    BAD("text in a number", "timestamp,qps\n0,12a\n", 2, 5, "\"12a\" is not a number"),
    /* "0,0x10": '0'3 'x'4 */
    BAD("hex", "timestamp,qps\n0,0x10\n", 2, 4, "is not a number"),
    /* "0,1 2": ' '4 */
    BAD("space inside a number", "timestamp,qps\n0,1 2\n", 2, 4, "is not a number"),
    /* "0,1e": 'e'4 has no digits after it */
    BAD("exponent without digits", "timestamp,qps\n0,1e\n", 2, 4, "is not a number"),
    BAD("lone point", "timestamp,qps\n0,.\n", 2, 3, "is not a number"),
    /* a BOM is only skipped at the very start of the file */
    BAD("BOM on a data line", "timestamp,qps\n\xEF\xBB\xBF" "0,1\n", 2, 1, "timestamp"),
    BAD("missing qps column", "timestamp,rate\n0,5\n", 1, 1, "no \"qps\" column"),
    BAD("missing timestamp column", "time,qps\n0,5\n", 1, 1, "no \"timestamp\" column"),
    BAD("names are case-sensitive", "Timestamp,QPS\n0,5\n", 1, 1, "no \"timestamp\" column"),
    /* "timestamp," is cols 1-10, "qps," 11-14, the second qps starts at 15 */
    BAD("duplicate column", "timestamp,qps,qps\n0,1,2\n", 1, 15, "\"qps\" appears twice"),
    /* "timestamp," 1-10, " qps," 11-15, ' '16, 't'17 (after trimming) */
    BAD("duplicate timestamp after spaces", "timestamp, qps, timestamp\n0,1,2\n", 1, 17,
        "\"timestamp\" appears twice"),
    BAD("empty file", "", 1, 1, "empty trace"),
    BAD("header only", "timestamp,qps\n", 2, 1, "no data rows"),
    BAD("header only, no newline", "timestamp,qps", 2, 1, "no data rows"),
    BAD("header only with BOM", "\xEF\xBB\xBFtimestamp,qps\n", 2, 1, "no data rows"),
    /* three lines consumed, so "after line 3" */
    BAD("header then blank lines", "timestamp,qps\n\n\n", 4, 1, "no data rows"),
    BAD("blank lines only", "\n\n  \n", 1, 1, "empty trace"),
    BAD("BOM only", "\xEF\xBB\xBF", 1, 1, "empty trace"),
    /* "0,50" has 4 bytes: the missing field would start at col 5 */
    BAD("too few fields", "timestamp,qps,p95_ms\n0,50\n", 2, 5, "2 fields, but the header has 3"),
    BAD("too few fields, CRLF", "timestamp,qps,p95_ms\r\n0,50\r\n", 2, 5, "2 fields"),
    /* "0,50,7": '7'6 */
    BAD("too many fields", "timestamp,qps\n0,50,7\n", 2, 6, "more fields than the header's 2"),
    /* "0,": the empty qps field starts at col 3 */
    BAD("empty qps", "timestamp,qps\n0,\n", 2, 3, "qps: empty value"),
    BAD("empty timestamp", "timestamp,qps\n,5\n", 2, 1, "timestamp: empty value"),
    BAD("huge value", "timestamp,qps\n0,1e400\n", 2, 3, "qps: value out of range"),
    BAD("implausibly large value", "timestamp,qps\n0,1e13\n", 2, 3, "implausibly large"),
    /* "0,5,-1": '-'5 */
    BAD("negative p95_ms", "timestamp,qps,p95_ms\n0,5,-1\n", 2, 5, "p95_ms: negative value"),
    BAD("bad replicas", "timestamp,qps,replicas\n0,5,three\n", 2, 5, "replicas:"),
    /* "0,5,0.05$": '0'5 '.'6 '0'7 '5'8 '$'9 */
    BAD("bad cost", "timestamp,qps,cost_per_pod_hour\n0,5,0.05$\n", 2, 9, "cost_per_pod_hour:"),
    /* "0,\"50": the quote opening at col 3 never closes */
    BAD("unterminated quote", "timestamp,qps\n0,\"50\n", 2, 3, "unterminated quote"),
    /* "timestamp,\"qps": the quote is at col 11 */
    BAD("unterminated quote in header", "timestamp,\"qps\n0,5\n", 1, 11,
        "unterminated quote in header"),
    /* "0,\"5\"x": '"'3 '5'4 '"'5 'x'6 */
    BAD("text after a closing quote", "timestamp,qps\n0,\"5\"x\n", 2, 6, "quote"),
    /* "2024-13-...": the month starts at col 6 */
    BAD("month 13", "timestamp,qps\n2024-13-01T00:00:00Z,5\n", 2, 6, "is not RFC 3339"),
    /* the day starts at col 9 */
    BAD("Feb 30", "timestamp,qps\n2024-02-30T00:00:00Z,5\n", 2, 9, "is not RFC 3339"),
    BAD("Feb 29 in 2023", "timestamp,qps\n2023-02-29T00:00:00Z,5\n", 2, 9, "is not RFC 3339"),
    /* at the end of the text the parser blames its last byte: col 19 (the
     * second '0' of the seconds), as cps_rfc3339_parse's fail: rule states */
    BAD("missing zone", "timestamp,qps\n2024-05-01T12:00:00,5\n", 2, 19, "is not RFC 3339"),
    /* "+0200": the '0' at col 23 where ':' belongs */
    BAD("offset without colon", "timestamp,qps\n2024-05-01T12:00:00+0200,5\n", 2, 23,
        "is not RFC 3339"),
    BAD("timestamp before 1970", "timestamp,qps\n-1,5\n", 2, 1, "outside 1970..5138"),
    BAD("RFC 3339 before 1970", "timestamp,qps\n1969-12-31T23:59:59Z,5\n", 2, 1, "outside 1970"),
    BAD("epoch 1e11 is past the limit", "timestamp,qps\n1e11,5\n", 2, 1, "outside 1970..5138"),
    /* 9999-12-31T23:59:59Z = 253402300799 >= 1e11 */
    BAD("year 9999", "timestamp,qps\n9999-12-31T23:59:59Z,5\n", 2, 1, "outside 1970..5138"),
    BAD("span longer than 10 years", "timestamp,qps\n0,1\n316224001,2\n", 3, 1,
        "spans more than 3660 days"),
    /* "0,5\0": the NUL is byte 4 */
    BAD("NUL byte", "timestamp,qps\n0,5\0\n", 2, 4, "NUL byte"),
    BAD("NUL byte in header", "time\0stamp,qps\n0,1\n", 1, 5, "NUL byte"),
    BAD("NUL byte in last line, no newline", "timestamp,qps\n0,1\n\0", 3, 1, "NUL byte"),

    /* ---- rows the parser gets wrong (see the bug notes) ---------------- */

    /* "0,\"12a\"": '"'3 '1'4 '2'5 'a'6 */
    BAD_BUG("quoted bad number column", "timestamp,qps\n0,\"12a\"\n", 2, 6, "is not a number",
        "a column inside a quoted field is one too small: parse_value adds the offset within "
        "the unquoted text to f->col, which is the opening quote's column; reports 2:5"),
    /* "2024-0x-01": 'x' is byte 7 */
    BAD_BUG("RFC 3339 non-digit inside the month", "timestamp,qps\n2024-0x-01T00:00:00Z,5\n", 2, 7,
        "is not RFC 3339",
        "cps_rfc3339_parse's fail_two/fail_month/fail_day use pos - 2, but read_digits stops at "
        "the bad digit, so pos - 2 lands before the field; reports 2:5 (the '-')"),
};

static void test_bad_table(void)
{
    static struct outcome out;
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        CPS_ROW_BEGIN();
        parse_every_way(c->text, c->len, c->name, &out);
        ASSERT_EQ(out.rc, -1);
        if (out.rc == -1) {
            ASSERT_STR_EQ(out.err.source, SOURCE);
            ASSERT_EQ(out.err.line, c->line);
            ASSERT_EQ(out.err.col, c->col);
            ASSERT_CONTAINS(out.err.message, c->message);
        }
        if (cps_test_current_failed && c->bug)
            fprintf(stderr, "  PARSER BUG (row \"%s\"): %s\n", c->name, c->bug);
        CPS_ROW_END(c->name);
    }
}

/* ---- generated inputs: long lines, many columns ------------------------- */

/* "timestamp,qps\n" + prefix + spaces up to `line_len` bytes + tail. */
static char *long_line_trace(const char *prefix, size_t line_len, const char *tail, size_t *len)
{
    const char *header = "timestamp,qps\n";
    size_t h = strlen(header), p = strlen(prefix), t = strlen(tail);
    char *text = malloc(h + line_len + t + 1);
    if (!text)
        return NULL;
    memcpy(text, header, h);
    memcpy(text + h, prefix, p);
    memset(text + h + p, ' ', line_len - p);
    memcpy(text + h + line_len, tail, t);
    *len = h + line_len + t;
    text[*len] = '\0';
    return text;
}

struct long_case {
    const char *name;
    const char *prefix;
    size_t line_len;      /* bytes of the long line, without its newline */
    const char *tail;
    int ok;               /* else: error at line 2 or 3, col 65537 */
    int line;
};

static const struct long_case long_cases[] = {
    /* "0,5" then spaces (trimmed away): 65536 bytes is the longest accepted */
    {"line of exactly 65536 bytes", "0,5", CPS_TRACE_MAX_LINE, "\n", 1, 2},
    {"line of 65536 bytes, no newline", "0,5", CPS_TRACE_MAX_LINE, "", 1, 2},
    {"line of 65537 bytes", "0,5", CPS_TRACE_MAX_LINE + 1, "\n", 0, 2},
    {"line of 65537 bytes, no newline", "0,5", CPS_TRACE_MAX_LINE + 1, "", 0, 2},
    /* a CRLF ending is not part of the line: Windows files get the same limit */
    {"line of exactly 65536 bytes, CRLF", "0,5", CPS_TRACE_MAX_LINE, "\r\n", 1, 2},
    {"line of 65537 bytes, CRLF", "0,5", CPS_TRACE_MAX_LINE + 1, "\r\n", 0, 2},
    {"line of 70000 bytes then a row", "0,5", 70000, "\n1,6\n", 0, 2},
    /* row 2 is fine, the overlong line is line 3 and never ends */
    {"overlong third line", "0,5\n1,6", 80000, "", 0, 3},
};

static void test_long_lines(void)
{
    static struct outcome out;
    for (size_t i = 0; i < ARRAY_LEN(long_cases); i++) {
        const struct long_case *c = &long_cases[i];
        size_t len = 0;
        CPS_ROW_BEGIN();
        char *text = long_line_trace(c->prefix, c->line_len, c->tail, &len);
        ASSERT_TRUE(text != NULL);
        if (!text) {
            CPS_ROW_END(c->name);
            continue;
        }
        parse_every_way(text, len, c->name, &out);
        if (c->ok) {
            if (out.rc != 0)
                print_error(&out, c->name);
            ASSERT_EQ(out.n_rows, 1);
            ASSERT_NEAR(out.rows[0].t, 0, 0);
            ASSERT_NEAR(out.rows[0].qps, 5, 0);
            ASSERT_EQ(out.rows[0].line, 2);
        } else {
            ASSERT_EQ(out.rc, -1);
            ASSERT_EQ(out.err.line, c->line);
            ASSERT_EQ(out.err.col, CPS_TRACE_MAX_LINE + 1);
            ASSERT_CONTAINS(out.err.message, "line longer than 65536 bytes");
        }
        free(text);
        CPS_ROW_END(c->name);
    }
}

/*
 * 256 columns are allowed, 257 are not. Header "timestamp,qps" (13 bytes)
 * then ",c" per extra column: the field with 0-based index k >= 2 starts at
 * 0-based byte 13 + 2*(k-2) + 1, so index 256 (the 257th) is at byte 522,
 * col 523.
 */
static void test_column_limit(void)
{
    static struct outcome out;
    char text[1024];
    for (int extra = CPS_TRACE_MAX_COLUMNS - 2; extra <= CPS_TRACE_MAX_COLUMNS - 1; extra++) {
        size_t len = (size_t)snprintf(text, sizeof text, "timestamp,qps");
        for (int k = 0; k < extra; k++)
            text[len++] = ',', text[len++] = 'c';
        /* one data row with as many fields */
        len += (size_t)snprintf(text + len, sizeof text - len, "\n0,1");
        for (int k = 0; k < extra; k++)
            text[len++] = ',';
        text[len++] = '\n';
        parse_every_way(text, len, "column limit", &out);
        if (extra == CPS_TRACE_MAX_COLUMNS - 2) {
            if (out.rc != 0)
                print_error(&out, "256 columns");
            ASSERT_EQ(out.n_rows, 1);
        } else {
            ASSERT_EQ(out.rc, -1);
            ASSERT_EQ(out.err.line, 1);
            ASSERT_EQ(out.err.col, 523);
            ASSERT_CONTAINS(out.err.message, "more than 256 columns");
        }
    }
}

/* ---- the chunk API, call by call ---------------------------------------- */

/*
 * consumed / partial-line / cap semantics spelled out on one input:
 * "timestamp,qps\n" is 14 bytes, "0,1\n" 4, "1,2\n" 4, "2,3" 3 (no newline).
 */
static void test_api_steps(void)
{
    static const char text[] = "timestamp,qps\n0,1\n1,2\n2,3";
    struct cps_trace_parser p;
    struct cps_trace_row rows[2];
    struct cps_err err;
    size_t n = 99, consumed = 99;
    cps_err_clear(&err);

    /* cap 1, not final: header + first row, stop after that row */
    cps_trace_parser_init(&p, SOURCE);
    ASSERT_EQ(cps_trace_parse(&p, text, sizeof text - 1, 0, rows, 1, &n, &consumed, &err), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(consumed, 18);
    ASSERT_EQ(rows[0].line, 2);
    ASSERT_NEAR(rows[0].qps, 1, 0);
    /* the rest: one complete line, then "2,3" is left for later */
    ASSERT_EQ(cps_trace_parse(&p, text + 18, sizeof text - 1 - 18, 0, rows, 2, &n, &consumed, &err),
              0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(consumed, 4);
    ASSERT_EQ(rows[0].line, 3);
    /* not final, no newline: nothing happens */
    ASSERT_EQ(cps_trace_parse(&p, text + 22, 3, 0, rows, 2, &n, &consumed, &err), 0);
    ASSERT_EQ(n, 0);
    ASSERT_EQ(consumed, 0);
    /* final: the last line counts */
    ASSERT_EQ(cps_trace_parse(&p, text + 22, 3, 1, rows, 2, &n, &consumed, &err), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(consumed, 3);
    ASSERT_EQ(rows[0].line, 4);
    ASSERT_NEAR(rows[0].t, 2, 0);
    ASSERT_NEAR(rows[0].qps, 3, 0);
    ASSERT_EQ(p.rows, 3);
    ASSERT_EQ(p.line, 4);
    ASSERT_EQ(cps_trace_parser_finish(&p, &err), 0);

    /* a BOM split across calls: fewer than 3 bytes and not final -> wait */
    cps_trace_parser_init(&p, SOURCE);
    ASSERT_EQ(cps_trace_parse(&p, "\xEF\xBB", 2, 0, rows, 2, &n, &consumed, &err), 0);
    ASSERT_EQ(n, 0);
    ASSERT_EQ(consumed, 0);
    /* BOM (3) + header (14) consumed, "0," waits */
    ASSERT_EQ(cps_trace_parse(&p, LIT("\xEF\xBB\xBFtimestamp,qps\n0,"), 0, rows, 2, &n, &consumed,
                              &err),
              0);
    ASSERT_EQ(n, 0);
    ASSERT_EQ(consumed, 17);
    ASSERT_EQ(p.header_done, 1);
    ASSERT_EQ(cps_trace_parse(&p, LIT("0,9\n"), 0, rows, 2, &n, &consumed, &err), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(consumed, 4);
    ASSERT_EQ(rows[0].line, 2);
    ASSERT_NEAR(rows[0].qps, 9, 0);

    /* an error names the source given to init */
    cps_trace_parser_init(&p, "my/trace.csv");
    ASSERT_EQ(cps_trace_parse(&p, LIT("timestamp,qps\n0,x\n"), 1, rows, 2, &n, &consumed, &err),
              -1);
    ASSERT_STR_EQ(err.source, "my/trace.csv");
    ASSERT_EQ(err.line, 2);
    ASSERT_EQ(err.col, 3);
}

/* finish on its own: empty input, and the default source name */
static void test_finish(void)
{
    struct cps_trace_parser p;
    struct cps_err err;
    cps_err_clear(&err);
    cps_trace_parser_init(&p, NULL);
    ASSERT_EQ(cps_trace_parser_finish(&p, &err), -1);
    ASSERT_STR_EQ(err.source, "<trace>");
    ASSERT_EQ(err.line, 1);
    ASSERT_EQ(err.col, 1);
    ASSERT_CONTAINS(err.message, "no header");
    /* no err to fill is allowed */
    ASSERT_EQ(cps_trace_parser_finish(&p, NULL), -1);
}

/* ---- cps_rfc3339_parse -------------------------------------------------- */

struct rfc_case {
    const char *text;
    int ok;
    double epoch;             /* when ok */
    size_t bad_offset;        /* when not: 0-based byte */
    const char *bug;
};

#define OK(text, epoch) {(text), 1, (epoch), 0, NULL}
#define BAD_AT(text, offset) {(text), 0, 0, (offset), NULL}
#define BUG_AT(text, offset, note) {(text), 0, 0, (offset), (note)}

static const struct rfc_case rfc_cases[] = {
    OK("2024-05-01T12:00:00Z", 1714564800),
    OK("2024-05-01T14:00:00+02:00", 1714564800),
    OK("2024-05-01T06:30:00-05:30", 1714564800),
    OK("2024-05-01T12:00:00-00:00", 1714564800),
    OK("2024-05-01t12:00:00z", 1714564800),
    OK("2024-05-01 12:00:00Z", 1714564800),
    OK("2024-05-01T12:00:00.25Z", 1714564800.25),
    /* 12:00:00.5+02:00 = 10:00:00.5Z = 1714564800 - 7200 + 0.5 */
    OK("2024-05-01T12:00:00.5+02:00", 1714557600.5),
    OK("2024-02-29T00:00:00Z", 1709164800),
    OK("2000-02-29T00:00:00Z", 951782400),
    OK("1970-01-01T00:00:00Z", 0),
    /* the parser itself allows a negative result; the trace rejects it */
    OK("1970-01-01T00:00:00+01:00", -3600),
    /* a leap second counts as 59 + 1 */
    OK("2016-12-31T23:59:60Z", 1483228800),
    OK("2024-12-31T23:59:59Z", 1735689599),
    OK("9999-12-31T23:59:59Z", 253402300799.0),
    /* offsets: 0123456789... */
    BAD_AT("2023-02-29T00:00:00Z", 8),
    BAD_AT("1900-02-29T00:00:00Z", 8),
    BAD_AT("2100-02-29T00:00:00Z", 8),
    BAD_AT("2024-04-31T00:00:00Z", 8),
    BAD_AT("2024-05-00T00:00:00Z", 8),
    BAD_AT("2024-13-01T00:00:00Z", 5),
    BAD_AT("2024-00-10T00:00:00Z", 5),
    BAD_AT("2024-05-01T24:00:00Z", 11),
    BAD_AT("2024-05-01T12:60:00Z", 14),
    BAD_AT("2024-05-01T12:00:61Z", 17),
    BAD_AT("2024-05-01X12:00:00Z", 10),
    BAD_AT("2024/05/01T12:00:00Z", 4),
    BAD_AT("20x4-05-01T12:00:00Z", 2),
    BAD_AT("2024-05-01T12:00:00", 18),        /* end of text: its last byte */
    BAD_AT("2024-05-01T12:00:00+0200", 22),
    BAD_AT("2024-05-01T12:00:00+02", 21),     /* end of text: its last byte */
    BAD_AT("2024-05-01T12:00:00+24:00", 20),
    BAD_AT("2024-05-01T12:00:00+02:60", 23),
    BAD_AT("2024-05-01T12:00:00.Z", 20),
    BAD_AT("2024-05-01T12:00:00Zjunk", 20),
    BAD_AT("", 0),
    /* ---- the parser reports the byte before the field (see bug note) ---- */
    BUG_AT("2024-0x-01T00:00:00Z", 6, "bad_offset 4: pos - 2 after read_digits stopped early"),
    BUG_AT("2024-05-01T1:00:00Z", 12, "bad_offset 10: pos - 2 after read_digits stopped early"),
    BUG_AT("2024-05-01T12:00:00+2:00", 21,
           "bad_offset 19: pos - 2 after read_digits stopped early"),
};

static void test_rfc3339_table(void)
{
    for (size_t i = 0; i < ARRAY_LEN(rfc_cases); i++) {
        const struct rfc_case *c = &rfc_cases[i];
        double epoch = -1e300;
        size_t bad = SIZE_MAX;
        CPS_ROW_BEGIN();
        int rc = cps_rfc3339_parse(c->text, strlen(c->text), &epoch, &bad);
        ASSERT_EQ(rc, c->ok ? 0 : -1);
        if (c->ok && rc == 0)
            ASSERT_NEAR(epoch, c->epoch, EPOCH_TOLERANCE);
        if (!c->ok && rc == -1)
            ASSERT_EQ(bad, c->bad_offset);
        if (cps_test_current_failed && c->bug)
            fprintf(stderr, "  PARSER BUG (\"%s\"): %s\n", c->text, c->bug);
        CPS_ROW_END(c->text);
    }
}

/* The parser reads only text[0, len): no terminator is needed or looked at. */
static void test_rfc3339_length(void)
{
    double epoch = 0;
    size_t bad = 0;
    ASSERT_EQ(cps_rfc3339_parse("2024-05-01T12:00:00Zjunk", 20, &epoch, &bad), 0);
    ASSERT_NEAR(epoch, 1714564800, 0);
    /* cut inside the offset: the last byte, 0-based 21, is blamed */
    ASSERT_EQ(cps_rfc3339_parse("2024-05-01T12:00:00+02:00", 22, &epoch, &bad), -1);
    ASSERT_EQ(bad, 21);
}

/* ---- cps_step_log -------------------------------------------------------- */

struct step {
    double step;
    int line;
};

struct median_case {
    const char *name;
    size_t n;
    struct step steps[8];
    double median;
    size_t n_runs;
};

static const struct median_case median_cases[] = {
    {"empty", 0, {{0, 0}}, 0, 0},
    {"one step", 1, {{42, 2}}, 42, 1},
    /* sorted 10 30 60 60 90 -> the 3rd */
    {"odd count", 5, {{60, 2}, {60, 3}, {10, 4}, {30, 5}, {90, 6}}, 60, 4},
    /* sorted 10 20 30 40 -> (20 + 30) / 2 */
    {"even count", 4, {{40, 2}, {10, 3}, {30, 4}, {20, 5}}, 25, 4},
    /* 3 x 10 then 3 x 100 -> ranks 2 and 3 -> (10 + 100) / 2 */
    {"even count across runs", 6, {{10, 2}, {10, 3}, {10, 4}, {100, 5}, {100, 6}, {100, 7}}, 55, 2},
    /* 4 x 10, 2 x 100 -> ranks 2 and 3 are both 10 */
    {"even count inside a run", 6, {{100, 2}, {10, 3}, {10, 4}, {10, 5}, {10, 6}, {100, 7}}, 10, 3},
    /* sorted 0.5 1.5 2.5 -> 1.5 */
    {"fractional", 3, {{2.5, 2}, {0.5, 3}, {1.5, 4}}, 1.5, 3},
};

static void test_step_median(void)
{
    for (size_t i = 0; i < ARRAY_LEN(median_cases); i++) {
        const struct median_case *c = &median_cases[i];
        struct cps_step_log log;
        double median = -1;
        CPS_ROW_BEGIN();
        cps_step_log_init(&log);
        for (size_t k = 0; k < c->n; k++)
            ASSERT_EQ(cps_step_log_add(&log, c->steps[k].step, c->steps[k].line), 0);
        ASSERT_EQ(cps_step_log_median(&log, &median), 0);
        ASSERT_NEAR(median, c->median, 0);
        ASSERT_EQ(log.steps, c->n);
        ASSERT_EQ(log.n_runs, c->n_runs);
        cps_step_log_release(&log);
        CPS_ROW_END(c->name);
    }
}

#define MAX_GAPS 8

struct gap_sink {
    size_t n;
    struct cps_gap gaps[MAX_GAPS];
};

static void collect_gap_cb(const struct cps_gap *gap, void *ctx)
{
    struct gap_sink *sink = ctx;
    if (sink->n < MAX_GAPS)
        sink->gaps[sink->n] = *gap;
    sink->n++;
}

/*
 * Rows on lines 2..19 of a trace: steps end at lines 3..19.
 *   lines 3-12: 60 s (10 steps), line 13: 90 s (= 1.5 x 60, not a gap),
 *   line 14: 91 s (gap), lines 15-16: 60 s, lines 17-18: 300 s (two gaps,
 *   one run), line 19: 60 s.
 * 17 steps: 13 x 60 (lines 3-12, 15, 16, 19), 90, 91, 300, 300 -> sorted,
 * rank 8 (the middle one) is 60 -> median 60.
 */
static void test_step_gaps(void)
{
    struct cps_step_log log;
    struct gap_sink sink = {0};
    double median = 0;
    cps_step_log_init(&log);
    for (int line = 3; line <= 12; line++)
        ASSERT_EQ(cps_step_log_add(&log, 60, line), 0);
    ASSERT_EQ(cps_step_log_add(&log, 90, 13), 0);
    ASSERT_EQ(cps_step_log_add(&log, 91, 14), 0);
    ASSERT_EQ(cps_step_log_add(&log, 60, 15), 0);
    ASSERT_EQ(cps_step_log_add(&log, 60, 16), 0);
    ASSERT_EQ(cps_step_log_add(&log, 300, 17), 0);
    ASSERT_EQ(cps_step_log_add(&log, 300, 18), 0);
    ASSERT_EQ(cps_step_log_add(&log, 60, 19), 0);
    /* runs: 60x10, 90, 91, 60x2, 300x2, 60 */
    ASSERT_EQ(log.n_runs, 6);
    ASSERT_EQ(log.steps, 17);
    ASSERT_EQ(cps_step_log_median(&log, &median), 0);
    ASSERT_NEAR(median, 60, 0);
    ASSERT_EQ(cps_step_log_gaps(&log, median, collect_gap_cb, &sink), 3);
    ASSERT_EQ(sink.n, 3);
    ASSERT_EQ(sink.gaps[0].line, 14);
    ASSERT_NEAR(sink.gaps[0].seconds, 91, 0);
    ASSERT_EQ(sink.gaps[1].line, 17);
    ASSERT_NEAR(sink.gaps[1].seconds, 300, 0);
    ASSERT_EQ(sink.gaps[2].line, 18);
    ASSERT_NEAR(sink.gaps[2].seconds, 300, 0);
    /* without a callback the gaps are still counted */
    ASSERT_EQ(cps_step_log_gaps(&log, median, NULL, NULL), 3);
    /* with a median of 200 only steps > 300 count: none */
    ASSERT_EQ(cps_step_log_gaps(&log, 200, NULL, NULL), 0);
    /* median 60.5 -> limit 90.75: 91 and both 300s */
    ASSERT_EQ(cps_step_log_gaps(&log, 60.5, NULL, NULL), 3);
    /* median 59.9 -> limit 89.85: now 90 is a gap too */
    ASSERT_EQ(cps_step_log_gaps(&log, 59.9, NULL, NULL), 4);
    cps_step_log_release(&log);
    ASSERT_EQ(log.n_runs, 0);
    ASSERT_TRUE(log.runs == NULL);
    cps_step_log_release(&log); /* twice is fine */
    cps_step_log_release(NULL);
}

/*
 * A run only grows when the line follows on: a blank line (line 4 here)
 * between equal steps starts a new run, so gap lines stay exact (2, 3, 5;
 * never 4).
 */
static void test_step_runs(void)
{
    struct cps_step_log log;
    struct gap_sink sink = {0};
    double median = 0;
    cps_step_log_init(&log);
    ASSERT_EQ(cps_step_log_add(&log, 60, 2), 0);
    ASSERT_EQ(cps_step_log_add(&log, 60, 3), 0);
    ASSERT_EQ(cps_step_log_add(&log, 60, 5), 0);
    ASSERT_EQ(log.n_runs, 2);
    ASSERT_EQ(log.steps, 3);
    if (log.n_runs == 2) {
        ASSERT_EQ(log.runs[0].first_line, 2);
        ASSERT_EQ(log.runs[0].count, 2);
        ASSERT_EQ(log.runs[1].first_line, 5);
        ASSERT_EQ(log.runs[1].count, 1);
    }
    ASSERT_EQ(cps_step_log_median(&log, &median), 0);
    ASSERT_NEAR(median, 60, 0);
    /* all equal: nothing exceeds 1.5 x 60 */
    ASSERT_EQ(cps_step_log_gaps(&log, median, collect_gap_cb, &sink), 0);
    /* against a median of 10 every step is a gap, each at its own line */
    ASSERT_EQ(cps_step_log_gaps(&log, 10, collect_gap_cb, &sink), 3);
    ASSERT_EQ(sink.gaps[0].line, 2);
    ASSERT_EQ(sink.gaps[1].line, 3);
    ASSERT_EQ(sink.gaps[2].line, 5);
    cps_step_log_release(&log);

    /* a different step on the next line also starts a run */
    cps_step_log_init(&log);
    ASSERT_EQ(cps_step_log_add(&log, 60, 2), 0);
    ASSERT_EQ(cps_step_log_add(&log, 30, 3), 0);
    ASSERT_EQ(cps_step_log_add(&log, 60, 4), 0);
    ASSERT_EQ(log.n_runs, 3);
    cps_step_log_release(&log);

    /* 1000 equal consecutive steps are one run; 1000 alternating are 1000
     * (past the first allocation) and the median still counts every step:
     * 500 x 1 and 500 x 3 -> ranks 499 (1) and 500 (3) -> 2 */
    cps_step_log_init(&log);
    for (int k = 0; k < 1000; k++)
        ASSERT_EQ(cps_step_log_add(&log, 10, 2 + k), 0);
    ASSERT_EQ(log.n_runs, 1);
    ASSERT_EQ(log.steps, 1000);
    cps_step_log_release(&log);
    cps_step_log_init(&log);
    for (int k = 0; k < 1000; k++)
        ASSERT_EQ(cps_step_log_add(&log, k % 2 ? 3 : 1, 2 + k), 0);
    ASSERT_EQ(log.n_runs, 1000);
    ASSERT_EQ(cps_step_log_median(&log, &median), 0);
    ASSERT_NEAR(median, 2, 0);
    /* limit 3: no step is strictly above it */
    ASSERT_EQ(cps_step_log_gaps(&log, median, NULL, NULL), 0);
    cps_step_log_release(&log);
}

int main(void)
{
    test_valid_table();
    test_bad_table();
    test_long_lines();
    CPS_RUN(test_column_limit);
    CPS_RUN(test_api_steps);
    CPS_RUN(test_finish);
    test_rfc3339_table();
    CPS_RUN(test_rfc3339_length);
    test_step_median();
    CPS_RUN(test_step_gaps);
    CPS_RUN(test_step_runs);
    CPS_TEST_END();
}
