/*
 * The API server requests counted for /metrics
 * (cpscale_kube_requests_total{verb,resource,code}): a small fixed table of
 * (verb, resource, code) triples. Every label is kept whole for any
 * resource a valid config can name (a 63-character kind's plural plus
 * "/scale"), and a label that could not fit is cut the same way each time,
 * so one triple is always one series: a duplicate series makes Prometheus
 * refuse the whole scrape. Pure: no I/O, no allocation.
 */
#ifndef CPS_REQUEST_COUNTS_H
#define CPS_REQUEST_COUNTS_H

#include <stddef.h>

#include "kube.h"

/* Distinct triples kept; one past it is dropped from metrics, not from use. */
#define CPS_REQUEST_COUNTS_MAX 128
#define CPS_REQUEST_VERB_MAX 16
#define CPS_REQUEST_RESOURCE_MAX (CPS_KUBE_RESOURCE_MAX + sizeof "/scale")

struct cps_request_count {
    char verb[CPS_REQUEST_VERB_MAX];
    char resource[CPS_REQUEST_RESOURCE_MAX];
    long code; /* the HTTP status; 0 for a transport failure */
    unsigned long long count;
};

struct cps_request_counts {
    struct cps_request_count rows[CPS_REQUEST_COUNTS_MAX];
    size_t n_rows;
};

/* Count one request under (verb, resource, code). */
void cps_request_counts_add(struct cps_request_counts *counts, const char *verb,
                            const char *resource, long code);

#endif
