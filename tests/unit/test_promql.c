/* PromQL escaping, placeholder substitution and instant-answer decoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cps_test.h"
#include "prom_split_check.h"
#include "promql.h"

struct escape_case {
    const char *name;
    const char *in;
    const char *expected;
};

static const struct escape_case escape_cases[] = {
    {"plain", "checkout-api", "\"checkout-api\""},
    {"empty", "", "\"\""},
    {"double quote", "a\"b", "\"a\\\"b\""},
    {"backslash", "a\\b", "\"a\\\\b\""},
    {"newline and tab", "a\nb\tc\r", "\"a\\nb\\tc\\r\""},
    {"closing brace stays literal", "x\"}or{a=\"", "\"x\\\"}or{a=\\\"\""},
    {"control byte", "a\x01z", "\"a\\x01z\""},
    {"DEL", "a\x7f", "\"a\\x7F\""},
    {"UTF-8 kept", "caf\xc3\xa9-\xe6\x97\xa5", "\"caf\xc3\xa9-\xe6\x97\xa5\""},
    {"invalid UTF-8 escaped", "a\xff\xc3", "\"a\\xFF\\xC3\""},
    {"overlong slash escaped", "\xc0\xaf", "\"\\xC0\\xAF\""},
    {"surrogate escaped", "\xed\xa0\x80", "\"\\xED\\xA0\\x80\""},
};

static void test_escape(void)
{
    for (size_t i = 0; i < sizeof escape_cases / sizeof escape_cases[0]; i++) {
        const struct escape_case *tc = &escape_cases[i];
        CPS_ROW_BEGIN();
        char out[256];
        int n = cps_promql_escape_string(tc->in, out, sizeof out);
        ASSERT_STR_EQ(out, tc->expected);
        ASSERT_EQ(n, (long long)strlen(tc->expected));
        CPS_ROW_END(tc->name);
    }
    CPS_ROW_BEGIN();
    char small[4];
    ASSERT_EQ(cps_promql_escape_string("abc", small, sizeof small), -1);
    ASSERT_STR_EQ(small, "");
    CPS_ROW_END("too small a buffer");
}

struct substitute_case {
    const char *name;
    const char *query;
    const char *namespace;
    const char *deployment;
    const char *expected; /* NULL: an error */
};

static const struct substitute_case substitute_cases[] = {
    {"bare placeholders", "rate(x{namespace=$namespace, deployment=$deployment}[1m])", "shop",
     "api", "rate(x{namespace=\"shop\", deployment=\"api\"}[1m])"},
    {"quoted placeholders", "x{namespace=\"$namespace\",pod='$deployment'}", "shop", "api",
     "x{namespace=\"shop\",pod='api'}"},
    {"regex operand", "x{pod=~\"$deployment-[a-z0-9]+\"}", "n", "a.b+c",
     "x{pod=~\"a\\\\.b\\\\+c-[a-z0-9]+\"}"},
    {"regex operand, spaced !~", "x{pod !~ '$deployment.*'}", "n", "a|b",
     "x{pod !~ 'a\\\\|b.*'}"},
    {"quote in a double-quoted string", "x{namespace=\"$namespace\"}", "a\"b", "d",
     "x{namespace=\"a\\\"b\"}"},
    {"injection attempt stays a value", "x{namespace=$namespace}", "a\"} or vector(1) or x{a=\"",
     "d", "x{namespace=\"a\\\"} or vector(1) or x{a=\\\"\"}"},
    {"newline and backslash", "x{deployment=$deployment}", "n", "a\\\nb",
     "x{deployment=\"a\\\\\\nb\"}"},
    {"bare regex operand", "x{deployment=~$deployment, namespace !~ $namespace}", "a|b", "web.v2",
     "x{deployment=~\"web\\\\.v2\", namespace !~ \"a\\\\|b\"}"},
    {"raw string", "x{pod=~`$deployment-.*`}", "n", "a.b", "x{pod=~`a\\.b-.*`}"},
    {"raw string refuses a backtick", "x{pod=`$deployment`}", "n", "a`b", NULL},
    {"longer identifier is not a placeholder", "x{a=\"$namespaces\"}", "n", "d",
     "x{a=\"$namespaces\"}"},
    {"escaped quote inside a string", "x{a=\"\\\"$namespace\"}", "n", "d", "x{a=\"\\\"n\"}"},
    {"comment untouched", "x # $namespace\n+ y{n=$namespace}", "n", "d",
     "x # $namespace\n+ y{n=\"n\"}"},
    {"no placeholders", "sum(rate(x[1m]))", "n", "d", "sum(rate(x[1m]))"},
    {"non-ASCII name", "x{deployment=$deployment}", "n", "\xc3\xa9t\xc3\xa9", "x{deployment=\"\xc3\xa9t\xc3\xa9\"}"},
};

static void test_substitute(void)
{
    for (size_t i = 0; i < sizeof substitute_cases / sizeof substitute_cases[0]; i++) {
        const struct substitute_case *tc = &substitute_cases[i];
        CPS_ROW_BEGIN();
        struct cps_err err = {0};
        char *out = cps_promql_substitute(tc->query, tc->namespace, tc->deployment, &err);
        if (tc->expected) {
            ASSERT_STR_EQ(out, tc->expected);
        } else {
            ASSERT_TRUE(out == NULL);
            ASSERT_CONTAINS(err.message, "backtick");
        }
        free(out);
        CPS_ROW_END(tc->name);
    }
    CPS_ROW_BEGIN();
    ASSERT_TRUE(cps_promql_has_placeholders("x{a=$deployment}"));
    ASSERT_TRUE(cps_promql_has_placeholders("x{a=\"$namespace\"}"));
    ASSERT_TRUE(!cps_promql_has_placeholders("sum by (namespace) (x)"));
    CPS_ROW_END("has placeholders");
}

struct decode_case {
    const char *name;
    const char *body;
    int ok;
    size_t n;
    const char *first_namespace; /* expected labels and value of sample 0 */
    const char *first_name;
    double first_value;
    long long first_ms;
    const char *error_fragment;
    int error_line, error_col;
};

static const struct decode_case decode_cases[] = {
    {"vector", "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
               "{\"metric\":{\"namespace\":\"shop\",\"deployment\":\"api\"},\"value\":[1700000000.5,\"12.25\"]},"
               "{\"metric\":{\"namespace\":\"shop\"},\"value\":[1700000000.5,\"3\"]}]}}",
     1, 2, "shop", "api", 12.25, 1700000000500LL, NULL, 0, 0},
    {"empty vector", "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", 1,
     0, NULL, NULL, 0, 0, NULL, 0, 0},
    {"scalar", "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[10,\"4\"]}}", 1,
     1, NULL, NULL, 4, 10000, NULL, 0, 0},
    {"NaN survives", "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                     "{\"metric\":{},\"value\":[1,\"NaN\"]}]}}",
     1, 1, NULL, NULL, NAN, 1000, NULL, 0, 0},
    {"error status", "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}", 0,
     0, NULL, NULL, 0, 0, "bad_data: parse error", 0, 0},
    {"not JSON", "{\"status\":\n \"success\",,}", 0, 0, NULL, NULL, 0, 0, "not JSON", 2, 12},
    {"garbage", "<html>502</html>", 0, 0, NULL, NULL, 0, 0, "not JSON", 1, 1},
    {"matrix refused", "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}", 0,
     0, NULL, NULL, 0, 0, "instant vector was expected", 0, 0},
    {"value not a string", "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                           "{\"metric\":{},\"value\":[1,2]}]}}",
     0, 0, NULL, NULL, 0, 0, "data.result[0]", 0, 0},
    {"value text junk", "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                        "{\"metric\":{},\"value\":[1,\"12abc\"]}]}}",
     0, 0, NULL, NULL, 0, 0, "data.result[0]", 0, 0},
    {"second sample bad", "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                          "{\"metric\":{\"namespace\":\"a\"},\"value\":[1,\"1\"]},{\"metric\":3}]}}",
     0, 0, NULL, NULL, 0, 0, "data.result[1]", 0, 0},
    {"no status", "{\"data\":{}}", 0, 0, NULL, NULL, 0, 0, "no \"status\"", 0, 0},
    {"no data", "{\"status\":\"success\"}", 0, 0, NULL, NULL, 0, 0, "missing", 0, 0},
    {"duplicate key", "{\"status\":\"success\",\"status\":\"error\"}", 0, 0, NULL, NULL, 0, 0,
     "not JSON", 1, 0},
};

static void test_decode(void)
{
    for (size_t i = 0; i < sizeof decode_cases / sizeof decode_cases[0]; i++) {
        const struct decode_case *tc = &decode_cases[i];
        CPS_ROW_BEGIN();
        struct cps_prom_result result = {0};
        struct cps_err err = {0};
        int rc = cps_prom_decode_instant(tc->body, strlen(tc->body), "namespace", "deployment",
                                         CPS_PROM_MAX_SAMPLES, "prometheus: qps", &result, &err);
        ASSERT_EQ(rc, tc->ok ? 0 : -1);
        if (tc->ok) {
            ASSERT_EQ(result.n_samples, tc->n);
            if (tc->n > 0) {
                const struct cps_prom_sample *s = &result.samples[0];
                if (tc->first_namespace)
                    ASSERT_STR_EQ(s->namespace, tc->first_namespace);
                else
                    ASSERT_TRUE(s->namespace == NULL);
                if (tc->first_name)
                    ASSERT_STR_EQ(s->name, tc->first_name);
                else
                    ASSERT_TRUE(s->name == NULL);
                if (isnan(tc->first_value))
                    ASSERT_TRUE(isnan(s->value));
                else
                    ASSERT_NEAR(s->value, tc->first_value, 1e-12);
                ASSERT_EQ(s->timestamp_ms, tc->first_ms);
            }
        } else {
            ASSERT_EQ(result.n_samples, 0);
            ASSERT_TRUE(result.samples == NULL);
            ASSERT_STR_EQ(err.source, "prometheus: qps");
            ASSERT_CONTAINS(err.message, tc->error_fragment);
            if (tc->error_line)
                ASSERT_EQ(err.line, tc->error_line);
            if (tc->error_col)
                ASSERT_EQ(err.col, tc->error_col);
        }
        cps_prom_result_release(&result);
        CPS_ROW_END(tc->name);
    }
}

/* The series cap is checked on the bytes, before decoding: `[]` items that
 * cost ~130 bytes each decoded are refused, and so is one series too many;
 * strings full of brackets and commas are not counted. */
static void test_decode_budget(void)
{
    static const char head[] = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                               "\"result\":[";
    static const char series[] =
        "{\"metric\":{\"namespace\":\"a\",\"deployment\":\"b,[{:\"},\"value\":[1,\"2\"]}";
    size_t n_items = 100000;
    char *body = malloc(sizeof head + 3 * n_items + 4);
    ASSERT_TRUE(body != NULL);
    size_t len = sizeof head - 1;
    memcpy(body, head, len);
    for (size_t i = 0; i < n_items; i++)
        len += (size_t)sprintf(body + len, i ? ",[]" : "[]");
    len += (size_t)sprintf(body + len, "]}}");
    struct cps_prom_result result = {0};
    struct cps_err err = {0};
    ASSERT_EQ(cps_prom_decode_instant(body, len, "namespace", "deployment", 10, "prometheus: qps",
                                      &result, &err),
              -1);
    ASSERT_CONTAINS(err.message, "memory budget");
    ASSERT_EQ(result.n_samples, 0);
    free(body);
    char text[1024];
    for (size_t n = 1; n <= 3; n++) {
        len = (size_t)snprintf(text, sizeof text, "%s", head);
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? "," : "", series);
        snprintf(text + len, sizeof text - len, "]}}");
        memset(&err, 0, sizeof err);
        int rc = cps_prom_decode_instant(text, strlen(text), "namespace", "deployment", 2,
                                         "prometheus: qps", &result, &err);
        ASSERT_EQ(rc, n <= 2 ? 0 : -1);
        if (rc == 0)
            ASSERT_EQ(result.n_samples, n);
        cps_prom_result_release(&result);
    }
}

/* Answers the split decoder must either take and decode as the whole tree
 * does, or hand to the whole tree: every one is decoded both ways and the
 * outcomes compared (samples, or error and position). */
#define VEC_HEAD "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
#define ONE_SERIES "{\"metric\":{\"namespace\":\"a\",\"deployment\":\"b\"},\"value\":[1,\"2\"]}"
/* as Prometheus writes it: label names in byte order, no spaces */
#define SORTED_SERIES "{\"metric\":{\"deployment\":\"b\",\"namespace\":\"a\"},\"value\":[1,\"2\"]}"
#define SORTED_HEAD "{\"metric\":{\"deployment\":\"b\",\"namespace\":\"a\"},\"value\":"
static const char *const split_cases[] = {
    VEC_HEAD "]}}",
    VEC_HEAD ONE_SERIES "]}}",
    VEC_HEAD ONE_SERIES "," ONE_SERIES "]}}",
    " \n{ \"status\" : \"success\" , \"data\" : { \"resultType\" : \"vector\" , \"result\" : [ "
    ONE_SERIES " ,\n\t" ONE_SERIES " ] } }\n ",
    /* result before resultType; more members around the path */
    "{\"data\":{\"result\":[" ONE_SERIES "],\"resultType\":\"vector\",\"x\":[1,{\"result\":[]}]},"
    "\"status\":\"success\",\"warnings\":[\"w\"]}",
    /* keys on the path spelled with escapes */
    "{\"status\":\"success\",\"d\\u0061ta\":{\"resultType\":\"vector\",\"result\":[" ONE_SERIES "]}}",
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"res\\u0075lt\":[" ONE_SERIES "]}}",
    /* the path twice; a decoy "data" deeper down */
    VEC_HEAD ONE_SERIES "],\"result\":[]}}",
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]},\"data\":{}}",
    "{\"x\":{\"data\":{\"result\":[" ONE_SERIES "]}},\"status\":\"success\",\"data\":"
    "{\"resultType\":\"vector\",\"result\":[]}}",
    /* separators and shapes */
    VEC_HEAD ONE_SERIES ",]}}",
    VEC_HEAD "," ONE_SERIES "]}}",
    VEC_HEAD ONE_SERIES ONE_SERIES "]}}",
    VEC_HEAD ONE_SERIES ",," ONE_SERIES "]}}",
    VEC_HEAD ONE_SERIES ",3]}}",
    VEC_HEAD ONE_SERIES ",[]]}}",
    VEC_HEAD "{\"metric\":{},\"value\":[1,\"2\"]},{\"metric\":{},\"value\":[1,2]}]}}",
    VEC_HEAD "{\"metric\":{},\"value\":[1,\"2\"]},{\"metric\":{},\"value\":[1,\"2\"}]}}",
    VEC_HEAD "{\"metric\":{\"namespace\":\"a\",\"namespace\":\"b\"},\"value\":[1,\"2\"]}]}}",
    VEC_HEAD "{\"metric\":{\"namespace\":\"a]}\"},\"value\":[1,\"2\"]}]}}",
    VEC_HEAD "{\"metric\":{\"namespace\":\"a\\\"]}\"},\"value\":[1,\"2\"]}]}}",
    VEC_HEAD "{\"metric\":{\"namespace\":\"\\u00e9\\ud83d\\ude00\"},\"value\":[1,\"NaN\"]}]}}",
    VEC_HEAD "{\"metric\":{\"namespace\":\"\xff\"},\"value\":[1,\"2\"]}]}}",
    VEC_HEAD "{\"metric\":{\"namespace\":\"a\tb\"},\"value\":[1,\"2\"]}]}}",
    VEC_HEAD ONE_SERIES "]}}   x",
    VEC_HEAD ONE_SERIES "]}",
    VEC_HEAD ONE_SERIES,
    VEC_HEAD "{\"metric\":{\"namespace\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
    "[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
    "]},\"value\":[1,\"2\"]}]}}",
    /* series a guess can match, and near misses of one */
    VEC_HEAD SORTED_SERIES "]}}",
    VEC_HEAD SORTED_SERIES "," ONE_SERIES "," SORTED_SERIES "]}}",
    VEC_HEAD SORTED_HEAD "[1733420000.123,\"+Inf\"]}," SORTED_HEAD "[0,\"-1e-300\"]}]}}",
    VEC_HEAD "{\"metric\":{\"deployment\":\"b\",\"namespace\":\"ab\"},\"value\":[1,\"2\"]}]}}",
    VEC_HEAD "{\"metric\":{\"deployment\":\"b\",\"namespace\":\"\\u0061\"},\"value\":[1,\"2\"]}]}}",
    VEC_HEAD "{\"metric\":{\"deployment\":\"b\",\"namespace\":\"a\"}, \"value\":[1,\"2\"]}]}}",
    VEC_HEAD "{\"metric\":{\"__name__\":\"up\",\"deployment\":\"b\",\"namespace\":\"a\"},"
    "\"value\":[1,\"2\"]}]}}",
    VEC_HEAD SORTED_HEAD "[1,\"2\"] }]}}",
    VEC_HEAD SORTED_HEAD "[1,\"2\"],\"value\":[1,\"3\"]}]}}",
    VEC_HEAD SORTED_HEAD "[1,\"2\"],\"x\":1}]}}",
    VEC_HEAD SORTED_HEAD "[1,2]}]}}",
    VEC_HEAD SORTED_HEAD "[1,\"2\",3]}]}}",
    VEC_HEAD SORTED_HEAD "[[1],\"2\"]}]}}",
    VEC_HEAD SORTED_HEAD "[1,\"2\"}]}}",
    VEC_HEAD SORTED_HEAD "[1,\"2x\"]}]}}",
    VEC_HEAD SORTED_HEAD "[-1,\"2\"]}]}}",
    VEC_HEAD SORTED_HEAD "{}}]}}",
    VEC_HEAD SORTED_HEAD "\"[1,2]\"}]}}",
    /* other statuses and result types */
    "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"x\",\"data\":{\"resultType\":"
    "\"vector\",\"result\":[" ONE_SERIES "]}}",
    "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[" ONE_SERIES "]}}",
    "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"2\"]}}",
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}",
    "[" ONE_SERIES "]",
    "",
};

static void test_split_matches_whole(void)
{
    char why[256];
    size_t taken_before = cps_prom_split_decodes();
    size_t guessed_before = cps_prom_guessed_series();
    for (size_t i = 0; i < sizeof split_cases / sizeof split_cases[0]; i++) {
        CPS_ROW_BEGIN();
        for (size_t cap = 1; cap <= 3; cap++)
            ASSERT_EQ(split_check_compare(split_cases[i], strlen(split_cases[i]),
                                          cap == 3 ? CPS_PROM_MAX_SAMPLES : cap, why, sizeof why),
                      0);
        CPS_ROW_END(split_cases[i]);
    }
    /* the comparison is not vacuous: the well-formed answers went the split way */
    ASSERT_TRUE(cps_prom_split_decodes() - taken_before >= 5 * 3);
    /* nor are the guesses: the four sorted answers' six series were taken
     * by right guesses and by the fixed one, at the two caps that admit
     * them (a near miss must not be; those are parsed whole) */
    ASSERT_TRUE(cps_prom_guessed_series() - guessed_before >= 6 * 2);
}

/* The guesses by name: which series a right guess takes, and which it
 * leaves to jansson's whole parse, counted one answer at a time. */
static void test_guess_taken(void)
{
    static const struct {
        const char *answer;
        size_t guessed;
    } rows[] = {
        {VEC_HEAD SORTED_SERIES "]}}", 1},
        {VEC_HEAD SORTED_SERIES "," SORTED_SERIES "," SORTED_SERIES "]}}", 3},
        {VEC_HEAD ONE_SERIES "]}}", 0}, /* labels not in byte order */
        {VEC_HEAD "{\"metric\":{\"deployment\":\"b\",\"namespace\":\"\\u0061\"},\"value\":[1,\"2\"]}]}}",
         0}, /* an escape spells the same label */
        {VEC_HEAD SORTED_HEAD "[1,\"2\"] }]}}", 0},
        {VEC_HEAD SORTED_HEAD "[1,\"2\"],\"x\":1}]}}", 0},
    };
    char why[256];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        struct split_check_run whole = {0}, run = {0};
        const char *answer = rows[i].answer;
        whole.rc = cps_prom_decode_instant_whole(answer, strlen(answer), "namespace", "deployment",
                                                 16, "prometheus: qps", split_check_record_cb,
                                                 &whole, &whole.err);
        run.guess = SPLIT_CHECK_RIGHT;
        run.whole = &whole;
        size_t before = cps_prom_guessed_series();
        run.rc = cps_prom_decode_instant_guided(answer, strlen(answer), "namespace", "deployment",
                                                16, "prometheus: qps", split_check_guess_cb,
                                                split_check_record_cb, &run, &run.err);
        ASSERT_EQ(whole.rc, 0);
        ASSERT_EQ(cps_prom_guessed_series() - before, rows[i].guessed);
        ASSERT_EQ(split_check_same(&run, &whole, why, sizeof why), 0);
        split_check_release(&run);
        split_check_release(&whole);
        CPS_ROW_END(answer);
    }
}

int main(void)
{
    CPS_RUN(test_escape);
    CPS_RUN(test_substitute);
    CPS_RUN(test_decode);
    CPS_RUN(test_decode_budget);
    CPS_RUN(test_split_matches_whole);
    CPS_RUN(test_guess_taken);
    CPS_TEST_END();
}
