/*
 * The HTTP client's pure parts (controller/http.c): the Retry-After parser
 * (no overflow on any length, clamped to the 5-minute backoff ceiling) and
 * the User-Agent every request carries. No network.
 */
#include <stdint.h>
#include <string.h>

#include "backoff.h"
#include "cps_test.h"
#include "http.h"

#define NOW_S INT64_C(1700000000) /* Tue, 14 Nov 2023 22:13:20 GMT */

static void test_retry_after(void)
{
    static const struct {
        const char *name;
        const char *value;
        int64_t want_ms;
    } rows[] = {
        {"seconds", "5", 5000},
        {"zero", "0", 0},
        {"leading blanks and CRLF", " \t 7\r\n", 7000},
        {"the ceiling itself", "300", 300000},
        {"one past the ceiling", "301", 300000},
        {"31 years (the reported freeze)", "1000000000", 300000},
        {"19 digits: INT64_MAX", "9223372036854775807", 300000},
        {"20 digits: signed overflow before", "99999999999999999999", 300000},
        {"60 digits", "999999999999999999999999999999999999999999999999999999999999", 300000},
        {"leading zeros", "000000000000000000000000012", 12000},
        {"negative", "-5", -1},
        {"plus sign", "+5", -1},
        {"trailing junk", "5s", -1},
        {"decimal", "1.5", -1},
        {"empty", "", -1},
        {"blank", "  \r\n", -1},
        {"not a date", "soon", -1},
        {"HTTP date 10 s ahead", "Tue, 14 Nov 2023 22:13:30 GMT", 10000},
        {"HTTP date in the past", "Tue, 14 Nov 2023 22:00:00 GMT", 0},
        {"HTTP date a year ahead", "Thu, 14 Nov 2024 22:13:20 GMT", 300000},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CPS_ROW_BEGIN();
        ASSERT_EQ(cps_http_parse_retry_after(rows[i].value, NOW_S), rows[i].want_ms);
        CPS_ROW_END(rows[i].name);
    }
    ASSERT_EQ(CPS_HTTP_RETRY_AFTER_MAX_MS, CPS_BACKOFF_MAX_MS);
}

static void test_user_agent(void)
{
    const char *agent = cps_http_user_agent();
    char want[64];
    snprintf(want, sizeof want, "cpscale/%s (linux/", CPS_VERSION);
    ASSERT_TRUE(strncmp(agent, want, strlen(want)) == 0);
    ASSERT_TRUE(agent[strlen(agent) - 1] == ')');
    ASSERT_TRUE(strstr(agent, "unknown") == NULL);
}

int main(void)
{
    CPS_RUN(test_retry_after);
    CPS_RUN(test_user_agent);
    CPS_TEST_END();
}
