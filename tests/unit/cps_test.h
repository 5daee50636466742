/*
 * Minimal test harness for cpscale's table-driven unit tests.
 *
 * Each runner defines test functions, lists them in main() with CPS_RUN and
 * ends with CPS_TEST_END, which prints "N passed, N failed" and returns a
 * non-zero status when anything failed. A test fails when any ASSERT in it
 * fails; the ASSERT macros print both sides so a failure explains itself.
 */
#ifndef CPS_TEST_H
#define CPS_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int cps_test_passed;
static int cps_test_failed;
static int cps_test_current_failed;

#define CPS_FAIL_AT(...)                                                        \
    do {                                                                       \
        fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                 \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        cps_test_current_failed = 1;                                           \
    } while (0)

#define ASSERT_TRUE(cond)                                                      \
    do {                                                                       \
        if (!(cond)) CPS_FAIL_AT("expected true: %s", #cond);                  \
    } while (0)

#define ASSERT_EQ(actual, expected)                                            \
    do {                                                                       \
        long long cps_a_ = (long long)(actual);                                \
        long long cps_e_ = (long long)(expected);                              \
        if (cps_a_ != cps_e_)                                                  \
            CPS_FAIL_AT("%s == %lld, expected %s == %lld", #actual, cps_a_,    \
                        #expected, cps_e_);                                    \
    } while (0)

#define ASSERT_NEAR(actual, expected, tolerance)                               \
    do {                                                                       \
        double cps_a_ = (double)(actual);                                      \
        double cps_e_ = (double)(expected);                                    \
        if (!(fabs(cps_a_ - cps_e_) <= (tolerance)))                           \
            CPS_FAIL_AT("%s == %.9g, expected %.9g (±%g)", #actual, cps_a_,    \
                        cps_e_, (double)(tolerance));                          \
    } while (0)

#define ASSERT_STR_EQ(actual, expected)                                        \
    do {                                                                       \
        const char *cps_a_ = (actual);                                         \
        const char *cps_e_ = (expected);                                       \
        if (!cps_a_ || !cps_e_ || strcmp(cps_a_, cps_e_) != 0)                 \
            CPS_FAIL_AT("%s == \"%s\", expected \"%s\"", #actual,              \
                        cps_a_ ? cps_a_ : "(null)", cps_e_ ? cps_e_ : "(null)"); \
    } while (0)

#define ASSERT_CONTAINS(haystack, needle)                                      \
    do {                                                                       \
        const char *cps_h_ = (haystack);                                       \
        const char *cps_n_ = (needle);                                         \
        if (!cps_h_ || !strstr(cps_h_, cps_n_))                                \
            CPS_FAIL_AT("%s == \"%s\" does not contain \"%s\"", #haystack,     \
                        cps_h_ ? cps_h_ : "(null)", cps_n_);                   \
    } while (0)

#define CPS_RUN(test_fn)                                                       \
    do {                                                                       \
        cps_test_current_failed = 0;                                           \
        test_fn();                                                             \
        if (cps_test_current_failed) {                                         \
            cps_test_failed++;                                                 \
            fprintf(stderr, "not ok %s\n", #test_fn);                          \
        } else {                                                               \
            cps_test_passed++;                                                 \
        }                                                                      \
    } while (0)

/* For table tests: count each row as its own test. */
#define CPS_ROW_BEGIN() (cps_test_current_failed = 0)
#define CPS_ROW_END(name)                                                      \
    do {                                                                       \
        if (cps_test_current_failed) {                                         \
            cps_test_failed++;                                                 \
            fprintf(stderr, "not ok %s\n", (name));                            \
        } else {                                                               \
            cps_test_passed++;                                                 \
        }                                                                      \
        cps_test_current_failed = 0;                                           \
    } while (0)

#define CPS_TEST_END()                                                         \
    do {                                                                       \
        printf("%d passed, %d failed\n", cps_test_passed, cps_test_failed);    \
        return cps_test_failed ? 1 : 0;                                        \
    } while (0)

#endif
