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

#include <stddef.h>
#include <time.h>

struct cps_prom;

/* The one request setup for Prometheus, shared by the async client below
 * and the blocking query_range client (`cpscale record`): base URL,
 * prometheus.headers, the bearer token (re-read when its file changes),
 * the timeout. Owned by whoever embeds it; cps_prom_setup_release frees. */
struct cps_prom_setup {
    char *base_url;             /* no trailing '/' */
    char **headers;             /* "Name: value", NULL-terminated */
    char *token_file;           /* NULL: no token */
    char *token;                /* wiped when freed */
    struct timespec token_mtime;
    int64_t timeout_ms;
};

/* From config's prometheus section; `url` overrides config->url when not
 * NULL. Reads the token file. 0, or -1 with err (nothing to release). */
int cps_prom_setup_init(struct cps_prom_setup *setup, const struct cps_prometheus_config *config,
                        const char *url, struct cps_err *err);
/* Re-read the token file when it changed. 0, or -1 with err (the old
 * token stays). */
int cps_prom_setup_read_token(struct cps_prom_setup *setup, struct cps_err *err);
void cps_prom_setup_release(struct cps_prom_setup *setup);

#define CPS_PROM_MAX_BODY (32u << 20) /* an answer with 1,000,000 series is ~100 MB: cap lower */

/* The caps on one answer follow the target count (a 30 MB
 * answer of `[]` items peaked at 1.34 GB decoded): at most
 * CPS_PROM_SERIES_PER_TARGET x targets + CPS_PROM_SERIES_SLACK series (a
 * shared query answers for every deployment it matches, targets or not),
 * at most CPS_PROM_BYTES_PER_SERIES bytes each on the wire. */
#define CPS_PROM_SERIES_PER_TARGET 4u
#define CPS_PROM_SERIES_SLACK 5000u /* a cluster's other deployments: narrow a query past it */
#define CPS_PROM_BYTES_PER_SERIES 1024u

/* An answer evaluated longer ago than the metrics window plus two
 * intervals, or as far in the future (a caching proxy, a replay, or a
 * clock skewed by as much either way), is not used: its samples count as
 * missing. 90 s at the default 15 s interval: older, the answer is at
 * least a decision behind and would be decided on as current. Never more
 * than CPS_PROM_MAX_ANSWER_AGE_MS (the old max_staleness default).
 * This is not data staleness (prometheus.max_staleness is deprecated:
 * Prometheus's own lookback drops series that stopped). */
#define CPS_PROM_MAX_ANSWER_AGE_MS (5 * 60 * 1000)
int64_t cps_prom_max_answer_age_ms(int64_t interval_ms);

/* The series cap and the body cap (bytes) for n_targets targets. */
size_t cps_prom_max_series(size_t n_targets);
size_t cps_prom_max_body(size_t n_targets);

/* Why a query failed, for cpscale_query_errors_total{error=...}. */
enum cps_prom_error {
    CPS_PROM_OK = 0,
    CPS_PROM_ERROR_TRANSPORT, /* refused, timed out, TLS, body cap */
    CPS_PROM_ERROR_HTTP,      /* a status other than 200 */
    CPS_PROM_ERROR_DECODE,    /* not the JSON of an instant query */
    CPS_PROM_ERROR_COUNT
};

const char *cps_prom_error_name(enum cps_prom_error error);

/* The answer: when error is CPS_PROM_OK, the body of an HTTP 200 (owned by
 * the callee, valid during the callback; not yet decoded: the caller
 * decodes it straight into its own table), else `message`. */
typedef void cps_prom_done_cb(enum cps_prom_error error, const char *body, size_t len,
                              const char *message, void *user);

/* A client for config's prometheus section (copied), its answers capped
 * for n_targets targets (above). NULL with err set. */
struct cps_prom *cps_prom_new(struct cps_http *http, const struct cps_prometheus_config *config,
                              size_t n_targets, struct cps_err *err);
void cps_prom_free(struct cps_prom *prom);

/* Re-read the bearer token file if it changed. */
void cps_prom_refresh_token(struct cps_prom *prom);

/* Send one instant query. `source` names it in messages ("prometheus: qps").
 * 0, or -1 when it could not be started (no callback then). */
int cps_prom_query(struct cps_prom *prom, const char *promql, const char *source,
                   cps_prom_done_cb *done_cb, void *user, struct cps_http_request **out);

/* ---- blocking query_range (`cpscale record`) ---- */

struct cps_prom_range_client;

/* A blocking client for /api/v1/query_range on the setup of `config`
 * (`url` overrides its URL), each request bounded by timeout_ms and its
 * answer by max_body bytes. The token must be one non-empty line. NULL
 * with err; *usage is then 1 for a config problem (the token), 0 for a
 * runtime one. Free with cps_prom_range_client_free (NULL is a no-op). */
struct cps_prom_range_client *cps_prom_range_client_new(const struct cps_prometheus_config *config,
                                                        const char *url, int64_t timeout_ms,
                                                        size_t max_body, int *usage,
                                                        struct cps_err *err);
void cps_prom_range_client_free(struct cps_prom_range_client *client);

/* Bound the next requests: each gets timeout_ms (the caller passes what
 * is left of its own deadline), and abort_cb(user), when not NULL, is
 * asked while a transfer runs and cancels it by returning non-zero (the
 * request then fails with "cancelled"). For a client used off the loop
 * thread (the controller's backfill). */
void cps_prom_range_client_bound(struct cps_prom_range_client *client, int64_t timeout_ms,
                                 int (*abort_cb)(void *user), void *user);

/* ".../api/v1/query_range", for messages. */
const char *cps_prom_range_endpoint(const struct cps_prom_range_client *client);

/* One POST of `query` over [start, end] at `step` (seconds). 0 with the
 * HTTP status and the body (owned by the client, valid until the next
 * request; NUL-terminated), or -1 with err for a transport failure (no
 * answer, a timeout, the body cap). */
int cps_prom_query_range(struct cps_prom_range_client *client, const char *query, double start,
                         double end, double step, long *status, const char **body, size_t *len,
                         struct cps_err *err);

#endif
