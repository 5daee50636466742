/*
 * Positions in JSON text (lib/json_pos.c): the line:col of the value (or
 * key) at a path, as decide's errors print them. Every expected position
 * was counted by hand on the document above its table (columns count
 * characters, a multi-byte UTF-8 character is one), not taken from the
 * code under test. Then: every prefix of the documents, in a buffer of
 * exactly that size (so ASan sees a read past the end), is looked up
 * without a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "cps_test.h"
#include "json_pos.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_STEPS 4
#define K(name) {.key = (name)}
#define I(n) {.key = NULL, .index = (n)}

struct pos_case {
    const char *name;
    struct cps_json_step path[MAX_STEPS];
    size_t n_steps;
    int at_key;
    int line, col; /* 0:0: not found (-1) */
};

/* Look every case up in text; a row per case. */
static void check_cases(const char *text, const struct pos_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CPS_ROW_BEGIN();
        struct cps_json_cursor at;
        memset(&at, 0, sizeof at);
        int rc = cps_json_locate(text, strlen(text), cases[i].path, cases[i].n_steps,
                                 cases[i].at_key, &at);
        if (cases[i].line == 0) {
            ASSERT_EQ(rc, -1);
        } else {
            ASSERT_EQ(rc, 0);
            ASSERT_EQ(at.line, cases[i].line);
            ASSERT_EQ(at.col, cases[i].col);
        }
        CPS_ROW_END(cases[i].name);
    }
}

/* A decide input over several lines. */
static const char decide_doc[] =
    "{\n"
    "  \"now\": 1000,\n"
    "  \"observation\": {\"qps\": \"x\", \"p95_ms\": 80},\n"
    "  \"history\": {\"recommendations\": [{\"t\": 1, \"replicas\": 2}, {\"t\": 5, \"replicas\": -1}]}\n"
    "}\n";

static const struct pos_case decide_cases[] = {
    {"the document", {{0}}, 0, 0, 1, 1},
    {"now", {K("now")}, 1, 0, 2, 10},
    {"the key now", {K("now")}, 1, 1, 2, 3},
    {"observation", {K("observation")}, 1, 0, 3, 18},
    {"observation.qps", {K("observation"), K("qps")}, 2, 0, 3, 26},
    {"the key observation.qps", {K("observation"), K("qps")}, 2, 1, 3, 19},
    {"observation.p95_ms", {K("observation"), K("p95_ms")}, 2, 0, 3, 41},
    {"history", {K("history")}, 1, 0, 4, 14},
    {"history.recommendations", {K("history"), K("recommendations")}, 2, 0, 4, 34},
    {"history.recommendations[0]", {K("history"), K("recommendations"), I(0)}, 3, 0, 4, 35},
    {"history.recommendations[0].t", {K("history"), K("recommendations"), I(0), K("t")}, 4, 0,
     4, 41},
    {"history.recommendations[0].replicas",
     {K("history"), K("recommendations"), I(0), K("replicas")}, 4, 0, 4, 56},
    {"history.recommendations[1]", {K("history"), K("recommendations"), I(1)}, 3, 0, 4, 60},
    {"history.recommendations[1].t", {K("history"), K("recommendations"), I(1), K("t")}, 4, 0,
     4, 66},
    {"history.recommendations[1].replicas",
     {K("history"), K("recommendations"), I(1), K("replicas")}, 4, 0, 4, 81},
    /* not there */
    {"a missing key", {K("target")}, 1, 0, 0, 0},
    {"a missing nested key", {K("observation"), K("cpu_utilization")}, 2, 0, 0, 0},
    {"an index past the end", {K("history"), K("recommendations"), I(2)}, 3, 0, 0, 0},
    {"a key of an array", {K("history"), K("recommendations"), K("t")}, 3, 0, 0, 0},
    {"an index of an object", {K("observation"), I(0)}, 2, 0, 0, 0},
    {"a key of a number", {K("now"), K("x")}, 2, 0, 0, 0},
    {"the key of an index", {K("history"), K("recommendations"), I(0)}, 3, 1, 0, 0},
    {"a key is not a prefix", {K("no")}, 1, 0, 0, 0},
};

/*
 * Strings that hold what the scan must not take for structure: brackets,
 * quotes and backslashes, escaped and not. As JSON text:
 *   ["a]\"}", {"k\\": [[], {}], "k": "\u005d"}, 7, []]
 */
static const char escapes_doc[] =
    "[\"a]\\\"}\", {\"k\\\\\": [[], {}], \"k\": \"\\u005d\"}, 7, []]";

static const struct pos_case escapes_cases[] = {
    {"[0]", {I(0)}, 1, 0, 1, 2},
    {"[1]", {I(1)}, 1, 0, 1, 11},
    {"[1].\"k\\\\\"", {I(1), K("k\\")}, 2, 0, 1, 19},
    {"[1].\"k\\\\\"[1]", {I(1), K("k\\"), I(1)}, 3, 0, 1, 24},
    {"[1].k", {I(1), K("k")}, 2, 0, 1, 34},
    {"the key [1].k", {I(1), K("k")}, 2, 1, 1, 29},
    {"[2]", {I(2)}, 1, 0, 1, 45},
    {"[3]", {I(3)}, 1, 0, 1, 48},
    {"[3][0] of an empty array", {I(3), I(0)}, 2, 0, 0, 0},
    {"[4]", {I(4)}, 1, 0, 0, 0},
};

/*
 * Non-ASCII keys, raw and escaped: é is 2 bytes and one column, 😀 4 bytes
 * (U+1F600, the pair \ud83d\ude00) and one column. As JSON text:
 *   {"é": {"ü": 3}, "\u00e9t\u00E9": 1, "\ud83d\ude00": 2, "😀x": 4, "\ud83d": 5}
 */
static const char unicode_doc[] =
    "{\"\xc3\xa9\": {\"\xc3\xbc\": 3}, \"\\u00e9t\\u00E9\": 1, \"\\ud83d\\ude00\": 2, "
    "\"\xf0\x9f\x98\x80x\": 4, \"\\ud83d\": 5}";

static const struct pos_case unicode_cases[] = {
    {"é", {K("\xc3\xa9")}, 1, 0, 1, 7},
    {"é.ü", {K("\xc3\xa9"), K("\xc3\xbc")}, 2, 0, 1, 13},
    {"été, escaped in the text", {K("\xc3\xa9t\xc3\xa9")}, 1, 0, 1, 34},
    {"😀, a surrogate pair in the text", {K("\xf0\x9f\x98\x80")}, 1, 0, 1, 53},
    {"the key 😀x", {K("\xf0\x9f\x98\x80x")}, 1, 1, 1, 56},
    {"😀x", {K("\xf0\x9f\x98\x80x")}, 1, 0, 1, 62},
    /* a lone surrogate is no character: no key matches it */
    {"a lone high surrogate", {K("\xed\xa0\xbd")}, 1, 0, 0, 0},
};

/*
 * A byte order mark (one column, as decide's syntax errors count it), CRLF
 * line ends (CR counts as a column, LF ends the line, as in jansson) and
 * tabs (one column each).
 */
static const char bom_doc[] = "\xef\xbb\xbf{\"a\": 1}";
static const struct pos_case bom_cases[] = {
    {"the document after a BOM", {{0}}, 0, 0, 1, 2},
    {"a after a BOM", {K("a")}, 1, 0, 1, 8},
};

static const char crlf_doc[] = "{\r\n  \"a\": [\r\n\ttrue, null],\r\n\t\"b\":\t\"\\n\"}\r\n";
static const struct pos_case crlf_cases[] = {
    {"a", {K("a")}, 1, 0, 2, 8},
    {"a[0]", {K("a"), I(0)}, 2, 0, 3, 2},
    {"a[1]", {K("a"), I(1)}, 2, 0, 3, 8},
    {"the key b", {K("b")}, 1, 1, 4, 2},
    {"b", {K("b")}, 1, 0, 4, 7},
};

static void test_positions(void)
{
    check_cases(decide_doc, decide_cases, ARRAY_LEN(decide_cases));
    check_cases(escapes_doc, escapes_cases, ARRAY_LEN(escapes_cases));
    check_cases(unicode_doc, unicode_cases, ARRAY_LEN(unicode_cases));
    check_cases(bom_doc, bom_cases, ARRAY_LEN(bom_cases));
    check_cases(crlf_doc, crlf_cases, ARRAY_LEN(crlf_cases));
}

/* The cursor's byte offset agrees with its line:col, and a value found can
 * be skipped whole (what a caller walking alongside a tree does). */
static void test_cursor(void)
{
    struct cps_json_step path[] = {K("observation")};
    struct cps_json_cursor at;
    ASSERT_EQ(cps_json_locate(decide_doc, strlen(decide_doc), path, 1, 0, &at), 0);
    ASSERT_EQ(at.at, (size_t)(strstr(decide_doc, "{\"qps\"") - decide_doc));
    ASSERT_EQ(cps_json_skip_value(&at), 0);
    ASSERT_EQ(cps_json_take(&at, ','), 0);
    ASSERT_EQ(cps_json_skip_space(&at), '"');
    ASSERT_TRUE(cps_json_string_is(&at, "history", 7));
    ASSERT_TRUE(!cps_json_string_is(&at, "histor", 6));
    ASSERT_TRUE(!cps_json_string_is(&at, "history2", 8));
    ASSERT_EQ(at.line, 4);
    ASSERT_EQ(at.col, 3);

    /* no text at all */
    struct cps_json_cursor empty;
    cps_json_cursor_init(&empty, NULL, 5);
    ASSERT_EQ(cps_json_skip_space(&empty), -1);
    ASSERT_EQ(cps_json_skip_value(&empty), -1);
    ASSERT_EQ(cps_json_locate("", 0, NULL, 0, 0, &at), -1);
    ASSERT_EQ(cps_json_locate("  \n ", 4, NULL, 0, 0, &at), -1);
}

/* Every prefix of every document, and some garbage, in a buffer of exactly
 * its size: each lookup answers (found or not), never reads past the end. */
static void test_any_bytes(void)
{
    static const char garbage[] = "{\"a\\\":[\"\\u12\":{\"\\ud83d\\u\":[[[\"}}\\";
    const char *docs[] = {decide_doc, escapes_doc, unicode_doc, bom_doc, crlf_doc, garbage};
    const struct cps_json_step paths[][MAX_STEPS] = {
        {K("history"), K("recommendations"), I(1), K("replicas")},
        {I(1), K("k"), I(0), I(0)},
        {K("\xf0\x9f\x98\x80x"), I(0), I(0), I(0)},
        {K("a"), I(1), K("\xe1\x88\xb4"), I(0)},
    };
    for (size_t d = 0; d < ARRAY_LEN(docs); d++) {
        size_t len = strlen(docs[d]);
        for (size_t n = 0; n <= len; n++) {
            char *copy = malloc(n ? n : 1);
            if (!copy)
                return;
            memcpy(copy, docs[d], n);
            for (size_t p = 0; p < ARRAY_LEN(paths); p++)
                for (size_t steps = 0; steps <= MAX_STEPS; steps++)
                    for (int at_key = 0; at_key <= 1; at_key++) {
                        struct cps_json_cursor at;
                        int rc = cps_json_locate(copy, n, paths[p], steps, at_key, &at);
                        ASSERT_TRUE(rc == -1 || (rc == 0 && at.at < n));
                    }
            free(copy);
        }
    }
}

int main(void)
{
    CPS_RUN(test_positions);
    CPS_RUN(test_cursor);
    CPS_RUN(test_any_bytes);
    CPS_TEST_END();
}
