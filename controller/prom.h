/*
 * The Prometheus client: one non-blocking instant query on the shared HTTP
 * client, decoded into samples keyed by the target labels.
 *
 * The bearer token file (prometheus.bearer_token_file) is read at start
 * and again when its modification time changes, so a rotated token is
 * picked up; custom headers (prometheus.headers) go on every query.
 */
#ifndef CPS_PROM_H
#define CPS_PROM_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "http.h"
#include "promql.h"

struct cps_prom;

#define CPS_PROM_MAX_BODY (32u << 20) /* an answer with 1,000,000 series is ~100 MB: cap lower */

/* Why a query failed, for cpscale_query_errors_total{error=...}. */
enum cps_prom_error {
    CPS_PROM_OK = 0,
    CPS_PROM_ERROR_TRANSPORT, /* refused, timed out, TLS, body cap */
    CPS_PROM_ERROR_HTTP,      /* a status other than 200 */
    CPS_PROM_ERROR_DECODE,    /* not the JSON of an instant query */
    CPS_PROM_ERROR_COUNT
};

const char *cps_prom_error_name(enum cps_prom_error error);

/* The answer: `result` when error is CPS_PROM_OK (owned by the callee:
 * valid during the callback), else `message`. */
typedef void cps_prom_done_cb(enum cps_prom_error error, const struct cps_prom_result *result,
                              const char *message, void *user);

/* A client for config's prometheus section (copied). NULL with err set. */
struct cps_prom *cps_prom_new(struct cps_http *http, const struct cps_prometheus_config *config,
                              struct cps_err *err);
void cps_prom_free(struct cps_prom *prom);

/* Re-read the bearer token file if it changed. */
void cps_prom_refresh_token(struct cps_prom *prom);

/* Send one instant query. `source` names it in messages ("prometheus: qps").
 * 0, or -1 when it could not be started (no callback then). */
int cps_prom_query(struct cps_prom *prom, const char *promql, const char *source,
                   cps_prom_done_cb *done_cb, void *user, struct cps_http_request **out);

#endif
