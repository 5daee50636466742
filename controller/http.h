/*
 * Non-blocking HTTP(S) on the libev loop: libcurl's multi-socket API in the
 * shape of curl's hiperfifo example (one ev_io per socket curl asks about,
 * one ev_timer for curl's timeout), without that example's known faults:
 * timeouts are not truncated by integer division, curl is never called from
 * inside its own timer callback (a 0 ms timeout is deferred to the loop),
 * and errors are returned, never exit().
 *
 * Every request has a timeout and a cap on its answer's body. TLS peers are
 * always verified. Each completed request calls its callback exactly once
 * from the loop; a request that could not be started returns -1 and never
 * calls it; a cancelled request never calls it.
 *
 * Ownership: the client owns its requests and frees each one in one place,
 * after its curl handle has been removed and before/after its callback
 * (the response is only valid during the callback).
 */
#ifndef CPS_HTTP_H
#define CPS_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct cps_http;
struct cps_http_request;

/* TLS material for one server, as PEM files (the kubeconfig's inline
 * *-data reach here as memory files: see kube.c). */
struct cps_http_tls {
    const char *ca_file;
    const char *client_cert_file;
    const char *client_key_file;
};

/* Request classes. Each has its own queue and its own budget of
 * transfers in curl at once (under HTTP/1.1, of connections), so one class
 * can never starve another: watches that hold their connection for
 * minutes never take the Lease's or the writes' slots, and the Lease is
 * served first from the queue. */
enum cps_http_lane {
    CPS_HTTP_LANE_READ = 0, /* GETs and Prometheus queries (the default) */
    CPS_HTTP_LANE_WRITE,    /* PATCHes and Event POSTs */
    CPS_HTTP_LANE_LEASE,    /* leader election: first out of the queue */
    CPS_HTTP_LANE_WATCH,    /* long-lived streams */
    CPS_HTTP_LANE_COUNT
};

/* The longest Retry-After honoured: the backoff ceiling (5 min). */
#define CPS_HTTP_RETRY_AFTER_MAX_MS (5 * 60 * 1000)

struct cps_http_options {
    const char *method;           /* "GET", "PATCH", "POST", "PUT" */
    const char *url;
    const char *const *headers;   /* NULL-terminated "Name: value" lines, or NULL */
    const char *bearer_token;     /* sent as Authorization; never logged */
    /* NULL: curl's environment rules (https_proxy/HTTPS_PROXY, http_proxy,
     * ALL_PROXY, NO_PROXY); "": no proxy; else the proxy URL (kubeconfig
     * proxy-url). Whatever it says, a request to an http:// URL that
     * carries credentials (a bearer token or an Authorization header) never
     * goes through a proxy: the proxy would read them in clear text. An
     * https:// URL goes through a CONNECT tunnel, credentials inside TLS. */
    const char *proxy;
    const char *body;             /* request body or NULL */
    size_t body_len;
    const char *content_type;     /* of the body */
    int64_t timeout_ms;           /* whole request, including queueing */
    size_t max_body_bytes;        /* the answer's cap */
    const struct cps_http_tls *tls;
    /* For streams (watch): called with each chunk as it arrives instead of
     * buffering the body; return 0 to go on, -1 to abort the transfer. */
    int (*chunk_cb)(const char *data, size_t len, void *user);
    void *chunk_user;             /* chunk_cb's user pointer */
    /* Called with `user` when the request is cancelled (not on completion),
     * so whoever allocated it can free it; may be NULL. */
    void (*cancel_cb)(void *user);
    enum cps_http_lane lane;      /* CPS_HTTP_LANE_READ when left 0 */
    /* Called with `user` right before the transfer starts (when it leaves
     * the queue, or at once); return 0 to send it, -1 to drop it unsent:
     * the done callback then gets response->dropped = 1 (or, when refused
     * inside cps_http_send, that returns -1 and no callback comes). May be
     * NULL. Writes check the Lease and their decision's age here. */
    int (*start_cb)(void *user);
};

struct cps_http_response {
    long status;                  /* HTTP status, 0 when none was received */
    const char *body;             /* NUL-terminated, valid during the callback */
    size_t body_len;
    int transport_error;          /* 1: no complete answer (timeout, refused, TLS, cap) */
    const char *error;            /* what went wrong, for logs */
    int64_t retry_after_ms;       /* from Retry-After, clamped; -1 when absent */
    double elapsed_s;
    int dropped;                  /* 1: never sent (start_cb refused, or dropped queued) */
};

typedef void cps_http_done_cb(const struct cps_http_response *response, void *user);

/* A client on `loop`; budget[lane] caps the transfers of that lane handed
 * to curl at once (0: 1). The others wait in order per lane, and their
 * timeout starts when they go. Over HTTP/1.1 each transfer holds one
 * connection, so the budgets are also the connection budgets; over HTTP/2
 * curl multiplexes them on one connection per host. NULL when curl cannot
 * be set up. */
struct cps_http *cps_http_new(struct ev_loop *loop, const size_t budget[CPS_HTTP_LANE_COUNT]);

/* Ask every queued request of `lane` its start_cb again, soon (from the
 * loop, never from inside the caller), and drop those it refuses (their
 * callbacks get response->dropped). For a lost Lease: queued writes go. */
void cps_http_recheck_queued(struct cps_http *http, enum cps_http_lane lane);

/* Requests of `lane` waiting for a slot, and handed to curl. */
size_t cps_http_queued(const struct cps_http *http, enum cps_http_lane lane);
size_t cps_http_active(const struct cps_http *http, enum cps_http_lane lane);

/* The value of a Retry-After header (delta-seconds, or an HTTP date read
 * against `now_s`, wall-clock seconds) in milliseconds, clamped to
 * [0, CPS_HTTP_RETRY_AFTER_MAX_MS] without overflow however many digits it
 * has; -1 when it is neither form. */
int64_t cps_http_parse_retry_after(const char *value, int64_t now_s);

/* "cpscale/VERSION (linux/ARCH)": sent on every request (API server,
 * Prometheus, record's blocking client), as client-go sends its own. */
const char *cps_http_user_agent(void);

/* Cancel everything in flight (no callbacks) and free. NULL is a no-op. */
void cps_http_free(struct cps_http *http);

/* Start a request. 0 and *out (if not NULL) set to a handle valid until the
 * callback returns or cps_http_cancel; -1 when it could not be started (the
 * callback is then never called). */
int cps_http_send(struct cps_http *http, const struct cps_http_options *options,
                  cps_http_done_cb *done_cb, void *user, struct cps_http_request **out);

/* Abort a request in flight; its callback is not called (its cancel_cb
 * is). NULL is a no-op. */
void cps_http_cancel(struct cps_http_request *request);

/* Abort every request in flight; no callbacks. */
void cps_http_cancel_all(struct cps_http *http);

/* Requests started and not yet completed or cancelled. */
size_t cps_http_in_flight(const struct cps_http *http);

/* Append n bytes to a growing NUL-terminated body (*body, *len, *cap;
 * the caller frees *body), refusing to grow past max_bytes. 0, 1 when the
 * cap would be passed (nothing appended), -1 out of memory. For curl write
 * callbacks, here and in the blocking Prometheus client. */
int cps_http_body_append(char **body, size_t *len, size_t *cap, size_t max_bytes,
                         const char *data, size_t n);

/* URL-encode text for a query string parameter into a malloc'd string. */
char *cps_http_escape(struct cps_http *http, const char *text);

/* Process-wide curl initialisation; call once from main before threads. */
int cps_http_global_init(void);
void cps_http_global_cleanup(void);

#endif
