/*
 * docs/model.md §9 against lib/queue_model.c: every check-value row of the
 * form "| random p95(50, 1) | 79.914645 ms |" or
 * "| pooled λmax(10) | 957.737640 req/s |" is read from the document and
 * compared with cps_queue_p95_ms / cps_queue_lambda_max (and, for λmax, with
 * the simulator's table), to the precision the document prints. The
 * document is the contract, so a number edited there without the code (or
 * the reverse) fails here.
 *
 * usage: test_model_doc [PATH]   (default docs/model.md, relative to the
 * repo root, where ctest runs the unit tests). Ends with "N passed, N failed".
 */
#include <stdlib.h>

#include "cps_test.h"
#include "queue_model.h"

#define DOC_DEFAULT_PATH "docs/model.md"
#define DOC_MAX_BYTES (1u << 20)
#define LINE_MAX_BYTES 512
/* The world of §9's check values: μ 100 req/s, base 20 ms, SLO 100 ms. */
#define CHECK_SERVICE_RATE 100.0
#define CHECK_BASE_MS 20.0
#define CHECK_SLO_MS 100.0
/* Pods tabulated for the λmax rows checked against the simulator's table. */
#define CHECK_TABLE_MAX_C 1000
/* Slack for the double behind a printed value, relative to its size. */
#define REL_SLACK 1e-12
/* "λ" in UTF-8. */
#define LAMBDA_UTF8 "\xce\xbb"

struct doc_counts {
    int rows[2][2]; /* [routing][0: p95, 1: λmax] */
    int sections;   /* "## 9." headings seen */
};

/* Digits after the decimal point of a printed number ("79.914645" -> 6). */
static int decimals_of(const char *text)
{
    const char *dot = strchr(text, '.');
    if (!dot)
        return 0;
    int n = 0;
    for (const char *p = dot + 1; *p >= '0' && *p <= '9'; p++)
        n++;
    return n;
}

/* Half a unit in the last printed place: what rounding to it allows. */
static double tolerance_of(const char *text, double value)
{
    return 0.5 * pow(10.0, -decimals_of(text)) + REL_SLACK * fabs(value);
}

/*
 * One table row after the routing word: "p95(λ, c) | V ms |" or
 * "λmax(c) | V req/s |". Checks it and counts it; a row that does not
 * parse is a failure (a typo must not silently drop a check).
 */
static void check_row(const char *line, enum cps_routing routing, const char *rest,
                      struct doc_counts *counts)
{
    struct cps_queue_model model = {routing, CHECK_SERVICE_RATE, CHECK_BASE_MS};
    char value_text[64], unit[16];
    double lambda = 0.0, documented = 0.0;
    int c = 0, consumed = 0;
    if (strncmp(rest, "p95(", 4) == 0) {
        if (sscanf(rest, "p95(%lf, %d) | %63s %15s |%n", &lambda, &c, value_text, unit,
                   &consumed) != 4 || consumed == 0 || sscanf(value_text, "%lf", &documented) != 1) {
            CPS_FAIL_AT("cannot parse the row \"%s\"", line);
            return;
        }
        ASSERT_STR_EQ(unit, "ms");
        double actual = cps_queue_p95_ms(&model, lambda, c);
        ASSERT_NEAR(actual, documented, tolerance_of(value_text, documented));
        counts->rows[routing][0]++;
        return;
    }
    if (strncmp(rest, LAMBDA_UTF8 "max(", strlen(LAMBDA_UTF8 "max(")) == 0) {
        if (sscanf(rest, LAMBDA_UTF8 "max(%d) | %63s %15s |%n", &c, value_text, unit,
                   &consumed) != 3 || consumed == 0 || sscanf(value_text, "%lf", &documented) != 1 ||
            c < 0 || c > CHECK_TABLE_MAX_C) {
            CPS_FAIL_AT("cannot parse the row \"%s\"", line);
            return;
        }
        ASSERT_STR_EQ(unit, "req/s");
        double tolerance = tolerance_of(value_text, documented);
        ASSERT_NEAR(cps_queue_lambda_max(&model, CHECK_SLO_MS, c), documented, tolerance);
        /* the simulator uses the table (c x λmax(1) for random routing) */
        struct cps_lambda_table table;
        if (cps_lambda_table_init(&table, &model, CHECK_SLO_MS, c) < 0) {
            CPS_FAIL_AT("out of memory");
            return;
        }
        ASSERT_NEAR(table.lambda_max[c], documented, tolerance);
        cps_lambda_table_release(&table);
        counts->rows[routing][1]++;
        return;
    }
    CPS_FAIL_AT("unknown quantity in the row \"%s\"", line);
}

/* Walk the document: rows of §9 that start with a routing are checks. */
static void check_document(const char *text, struct doc_counts *counts)
{
    int in_section = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[LINE_MAX_BYTES];
        if (len >= sizeof line)
            len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        if (len && line[len - 1] == '\r')
            line[len - 1] = '\0';
        p = end ? end + 1 : p + strlen(p);

        if (strncmp(line, "## ", 3) == 0) {
            in_section = strncmp(line, "## 9.", 5) == 0;
            counts->sections += in_section;
            continue;
        }
        if (!in_section)
            continue;
        enum cps_routing routing;
        const char *rest;
        if (strncmp(line, "| random ", 9) == 0) {
            routing = CPS_ROUTING_RANDOM;
            rest = line + 9;
        } else if (strncmp(line, "| pooled ", 9) == 0) {
            routing = CPS_ROUTING_POOLED;
            rest = line + 9;
        } else {
            continue;
        }
        CPS_ROW_BEGIN();
        check_row(line, routing, rest, counts);
        CPS_ROW_END(line);
    }
}

/* The whole file as a NUL-terminated string, or NULL. */
static char *read_document(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = malloc(DOC_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, DOC_MAX_BYTES, f) : 0;
    fclose(f);
    if (!text)
        return NULL;
    text[n] = '\0';
    return text;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : DOC_DEFAULT_PATH;
    struct doc_counts counts;
    memset(&counts, 0, sizeof counts);
    char *text = read_document(path);

    CPS_ROW_BEGIN();
    if (!text)
        CPS_FAIL_AT("cannot read %s (run from the repository root)", path);
    CPS_ROW_END("the document can be read");

    if (text)
        check_document(text, &counts);
    free(text);

    /* an empty or renamed table must not pass by checking nothing */
    static const char *const routing_names[2] = {"random", "pooled"};
    static const char *const quantity_names[2] = {"p95", "λmax"};
    CPS_ROW_BEGIN();
    ASSERT_EQ(counts.sections, 1);
    CPS_ROW_END("exactly one \"## 9.\" section");
    for (int r = 0; r < 2; r++) {
        for (int q = 0; q < 2; q++) {
            char name[64];
            snprintf(name, sizeof name, "at least one %s %s row", routing_names[r],
                     quantity_names[q]);
            CPS_ROW_BEGIN();
            ASSERT_TRUE(counts.rows[r][q] > 0);
            CPS_ROW_END(name);
        }
    }
    CPS_TEST_END();
}
