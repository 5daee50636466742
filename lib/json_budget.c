#include "json_budget.h"

/* One pass, no allocation: strings (with their escapes) are skipped, the
 * structural bytes counted. It stops early so a hostile answer costs at
 * most one scan of the bytes before the cap. */
size_t cps_json_budget_units(const char *body, size_t len, size_t max_units)
{
    size_t units = 0;
    int in_string = 0;
    for (size_t i = 0; i < len && units <= max_units; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"')
            in_string = 1;
        else if (c == '{' || c == '[' || c == ',' || c == ':')
            units++;
    }
    return units;
}

int cps_json_budget_check(const char *body, size_t len, size_t max_units, const char *what,
                          const char *source, struct cps_err *err)
{
    if (cps_json_budget_units(body, len, max_units) <= max_units)
        return 0;
    return cps_err_set(err, source, 0, 0,
                       "answer refused: more than %zu JSON values, past the memory budget for "
                       "its %s (narrow the query, e.g. with a namespace matcher)",
                       max_units, what);
}
