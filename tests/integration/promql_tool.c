/*
 * cps_promql_tool: the PromQL codec on the command line, for the injection
 * suite (tests/integration/promql_injection.py), which sends what it prints
 * to a real Prometheus.
 *
 *   cps_promql_tool substitute QUERY NAMESPACE NAME   the query with
 *       $namespace/$deployment replaced (cps_promql_substitute)
 *   cps_promql_tool escape VALUE                       VALUE as a PromQL
 *       string literal (cps_promql_escape_string)
 *
 * Prints the result and a newline; exit 0, or 1 with the error on stderr,
 * 2 on bad usage. Arguments may hold any bytes but NUL (newlines too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "promql.h"

#define LITERAL_CAP 4096

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "substitute") == 0) {
        struct cps_err err = {0};
        char *query = cps_promql_substitute(argv[2], argv[3], argv[4], &err);
        if (!query) {
            fprintf(stderr, "cps_promql_tool: %s\n", err.message);
            return 1;
        }
        printf("%s\n", query);
        free(query);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "escape") == 0) {
        char literal[LITERAL_CAP];
        if (cps_promql_escape_string(argv[2], literal, sizeof literal) < 0) {
            fprintf(stderr, "cps_promql_tool: value too long\n");
            return 1;
        }
        printf("%s\n", literal);
        return 0;
    }
    fprintf(stderr, "usage: cps_promql_tool substitute QUERY NAMESPACE NAME\n"
                    "       cps_promql_tool escape VALUE\n");
    return 2;
}
