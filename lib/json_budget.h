/*
 * A bound on what a JSON text costs once decoded, checked before it is
 * decoded. jansson builds a tree in which every value, key and element
 * is its own allocation (an empty array `[]`, 2 bytes on the wire, costs
 * about 130 bytes of heap), so a cap on the bytes received does not cap
 * the memory the tree takes. The budget counts "units": every `{`, `[`,
 * `,` and `:` outside strings, which is an upper bound on the values,
 * keys and elements the tree will hold, minus one.
 */
#ifndef CPS_JSON_BUDGET_H
#define CPS_JSON_BUDGET_H

#include <stddef.h>

#include "err.h"

/* The units of `body` (see above), stopping once past `max_units`. */
size_t cps_json_budget_units(const char *body, size_t len, size_t max_units);

/* 0 when `body` holds at most max_units units, else -1 with err (source,
 * and a message naming the budget and `what` was refused, e.g. "series"). */
int cps_json_budget_check(const char *body, size_t len, size_t max_units, const char *what,
                          const char *source, struct cps_err *err);

#endif
