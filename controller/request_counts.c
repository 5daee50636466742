#include "request_counts.h"

#include <stdio.h>
#include <string.h>

/*
 * See request_counts.h. The labels are cut to the table's fields before
 * they are compared, not after: compared whole, a label longer than its
 * field never matched its own cut copy and took a new row per request, each
 * one the same series on /metrics.
 */
void cps_request_counts_add(struct cps_request_counts *counts, const char *verb,
                            const char *resource, long code)
{
    char verb_label[CPS_REQUEST_VERB_MAX], resource_label[CPS_REQUEST_RESOURCE_MAX];
    snprintf(verb_label, sizeof verb_label, "%s", verb);
    snprintf(resource_label, sizeof resource_label, "%s", resource);
    for (size_t i = 0; i < counts->n_rows; i++) {
        struct cps_request_count *row = &counts->rows[i];
        if (row->code == code && strcmp(row->verb, verb_label) == 0 &&
            strcmp(row->resource, resource_label) == 0) {
            row->count++;
            return;
        }
    }
    if (counts->n_rows == CPS_REQUEST_COUNTS_MAX)
        return;
    struct cps_request_count *row = &counts->rows[counts->n_rows++];
    memcpy(row->verb, verb_label, sizeof verb_label);
    memcpy(row->resource, resource_label, sizeof resource_label);
    row->code = code;
    row->count = 1;
}
