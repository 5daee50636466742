#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "http.h"
#include "units.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CONNECT_TIMEOUT_MAX_MS 5000L /* a connect slower than this is a dead peer */
#define BODY_INITIAL_CAP 4096
#define DECIMAL_BASE 10
#define LIBSSH2_INIT_NO_CRYPTO 0x0001 /* libssh2.h's flag, stable since 1.2.5 */

/* The machine in client-go's words (GOARCH), from the compiler's target. */
#if defined(__x86_64__)
#define CPS_ARCH "amd64"
#elif defined(__aarch64__)
#define CPS_ARCH "arm64"
#elif defined(__i386__)
#define CPS_ARCH "386"
#elif defined(__arm__)
#define CPS_ARCH "arm"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define CPS_ARCH "ppc64le"
#elif defined(__s390x__)
#define CPS_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define CPS_ARCH "riscv64"
#else
#define CPS_ARCH "unknown"
#endif
#define CPS_USER_AGENT "cpscale/" CPS_VERSION " (linux/" CPS_ARCH ")"

struct socket_watch {
    ev_io io;
    curl_socket_t fd;
    struct cps_http *http;
};

struct cps_http_request {
    struct cps_http *http;
    CURL *easy;                  /* NULL while queued */
    /* what to send, kept until the transfer starts */
    char method[8];
    char *url;
    char *request_body;
    size_t request_body_len;
    int64_t timeout_ms;
    const struct cps_http_tls *tls;
    struct curl_slist *headers;  /* one of them may carry the token */
    char *proxy;                 /* NULL: the environment's; "": none */
    char *body;
    size_t body_len, body_cap, max_body;
    int too_large;
    int (*chunk_cb)(const char *data, size_t len, void *user);
    void *chunk_user;
    int chunk_aborted;
    int (*start_cb)(void *user);
    enum cps_http_lane lane;
    void (*cancel_cb)(void *user);
    int64_t retry_after_ms;
    cps_http_done_cb *done_cb;
    void *user;
    char error[CURL_ERROR_SIZE];
    struct cps_http_request *prev, *next;          /* every request of the client */
    int queued;                                     /* waiting for a transfer slot */
    struct cps_http_request *queue_prev, *queue_next;
};

struct cps_http {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer;
    struct cps_http_request *requests; /* in flight, doubly linked */
    size_t in_flight;
    /* Transfers handed to curl at once are capped per lane: a tick of
     * 2,000 reads would otherwise hold 2,000 sets of curl buffers at the
     * same time, and a class of long transfers (watches, slow PATCHes)
     * would take every connection. The rest wait per lane in order, and
     * their timeout starts when they go. */
    size_t budget[CPS_HTTP_LANE_COUNT], active[CPS_HTTP_LANE_COUNT];
    size_t queued[CPS_HTTP_LANE_COUNT];
    struct cps_http_request *queue_head[CPS_HTTP_LANE_COUNT], *queue_tail[CPS_HTTP_LANE_COUNT];
    ev_timer recheck_timer;      /* cps_http_recheck_queued, from the loop */
    unsigned recheck_lanes;      /* bit per lane */
};

/* The order lanes are served in when slots free up: the Lease first. */
static const enum cps_http_lane lane_order[CPS_HTTP_LANE_COUNT] = {
    CPS_HTTP_LANE_LEASE, CPS_HTTP_LANE_WRITE, CPS_HTTP_LANE_WATCH, CPS_HTTP_LANE_READ};

const char *cps_http_user_agent(void)
{
    return CPS_USER_AGENT;
}

/* libcurl initialises every library it links, and Debian's links libssh2,
 * whose initialisation loads all of OpenSSL's algorithms and engines: 1.6
 * MB of libcrypto pages that cpscale never uses, since its transfers allow
 * only http and https (CURLOPT_PROTOCOLS_STR) and TLS is GnuTLS's.
 * Initialising libssh2 first without its crypto makes libcurl's own call
 * only a count. libssh2 is looked up at run time (it is loaded already,
 * as libcurl's dependency), so a libcurl without it needs nothing. Must
 * run before curl_global_init. */
static void skip_unused_ssh_crypto(void)
{
    void *symbol = dlsym(RTLD_DEFAULT, "libssh2_init");
    if (!symbol)
        return;
    int (*ssh_init)(int flags);
    memcpy(&ssh_init, &symbol, sizeof ssh_init);
    (void)ssh_init(LIBSSH2_INIT_NO_CRYPTO);
}

int cps_http_global_init(void)
{
    skip_unused_ssh_crypto();
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void cps_http_global_cleanup(void)
{
    curl_global_cleanup();
}

static int start_transfer(struct cps_http_request *request);

/* Free the header list, wiping each line first (one holds the token). */
static void wipe_headers(struct cps_http_request *request)
{
    for (struct curl_slist *h = request->headers; h; h = h->next)
        memset(h->data, 0, strlen(h->data));
    curl_slist_free_all(request->headers);
    request->headers = NULL;
}

/* Take a queued request out of its lane's queue (it stays marked queued). */
static void unlink_queued(struct cps_http_request *request)
{
    struct cps_http *http = request->http;
    enum cps_http_lane lane = request->lane;
    if (request->queue_prev)
        request->queue_prev->queue_next = request->queue_next;
    else
        http->queue_head[lane] = request->queue_next;
    if (request->queue_next)
        request->queue_next->queue_prev = request->queue_prev;
    else
        http->queue_tail[lane] = request->queue_prev;
    http->queued[lane]--;
}

/* Free a request that is no longer known to curl. The one place requests
 * are freed. */
static void request_free(struct cps_http_request *request)
{
    struct cps_http *http = request->http;
    enum cps_http_lane lane = request->lane;
    if (request->queued)
        unlink_queued(request);
    else
        http->active[lane]--;
    if (request->prev)
        request->prev->next = request->next;
    else if (http->requests == request)
        http->requests = request->next;
    if (request->next)
        request->next->prev = request->prev;
    http->in_flight--;
    if (request->easy)
        curl_easy_cleanup(request->easy);
    wipe_headers(request);
    free(request->url);
    free(request->proxy);
    free(request->request_body);
    free(request->body);
    free(request);
}

/* Take a request out of its lane's queue into a transfer slot. */
static void dequeue(struct cps_http_request *request)
{
    unlink_queued(request);
    request->queued = 0;
    request->queue_next = request->queue_prev = NULL;
    request->http->active[request->lane]++;
}

/* Complete a request that never reached curl: dropped (its start_cb
 * refused) or refused by curl. Then free it. */
static void complete_unsent(struct cps_http_request *request, int dropped)
{
    struct cps_http_response response = {0};
    response.transport_error = 1;
    response.dropped = dropped;
    response.error = dropped ? "dropped before it was sent" : "could not start the transfer";
    response.retry_after_ms = -1;
    response.body = "";
    request->done_cb(&response, request->user);
    request_free(request);
}

/* Hand waiting requests to curl while their lane has free transfer slots,
 * the Lease's lane first. Each one's start_cb is asked right now, when it
 * leaves the queue: a write decided before the Lease was lost, or too long
 * ago, is dropped here instead of sent. */
static void start_queued(struct cps_http *http)
{
    for (int i = 0; i < CPS_HTTP_LANE_COUNT; i++) {
        enum cps_http_lane lane = lane_order[i];
        while (http->queue_head[lane] && http->active[lane] < http->budget[lane]) {
            struct cps_http_request *request = http->queue_head[lane];
            dequeue(request);
            if (request->start_cb && request->start_cb(request->user) != 0)
                complete_unsent(request, 1);
            else if (start_transfer(request) != 0)
                complete_unsent(request, 0);
        }
    }
}

/* libev: cps_http_recheck_queued's deferred work. After each drop the walk
 * starts again from the head, since the dropped request's callback may
 * have cancelled or queued others. */
static void recheck_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_http *http = timer->data;
    unsigned lanes = http->recheck_lanes;
    http->recheck_lanes = 0;
    for (int lane = 0; lane < CPS_HTTP_LANE_COUNT; lane++) {
        if (!(lanes & (1u << lane)))
            continue;
        struct cps_http_request *request = http->queue_head[lane];
        while (request) {
            if (request->start_cb && request->start_cb(request->user) != 0) {
                dequeue(request);
                complete_unsent(request, 1);
                request = http->queue_head[lane];
            } else {
                request = request->queue_next;
            }
        }
    }
}

void cps_http_recheck_queued(struct cps_http *http, enum cps_http_lane lane)
{
    if (!http || (int)lane < 0 || lane >= CPS_HTTP_LANE_COUNT)
        return;
    http->recheck_lanes |= 1u << lane;
    if (!ev_is_active(&http->recheck_timer)) {
        ev_timer_set(&http->recheck_timer, 0.0, 0.0);
        ev_timer_start(http->loop, &http->recheck_timer);
    }
}

size_t cps_http_queued(const struct cps_http *http, enum cps_http_lane lane)
{
    return http->queued[lane];
}

size_t cps_http_active(const struct cps_http *http, enum cps_http_lane lane)
{
    return http->active[lane];
}

/* Hand every finished transfer to its callback, then free it. Called only
 * after curl_multi_socket_action has returned, never from inside curl. */
static void drain_completed(struct cps_http *http)
{
    CURLMsg *message;
    int left;
    while ((message = curl_multi_info_read(http->multi, &left))) {
        if (message->msg != CURLMSG_DONE)
            continue;
        struct cps_http_request *request = NULL;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&request);
        CURLcode code = message->data.result;
        curl_multi_remove_handle(http->multi, request->easy);

        struct cps_http_response response = {0};
        curl_easy_getinfo(request->easy, CURLINFO_RESPONSE_CODE, &response.status);
        curl_easy_getinfo(request->easy, CURLINFO_TOTAL_TIME, &response.elapsed_s);
        response.retry_after_ms = request->retry_after_ms;
        response.body = request->body ? request->body : "";
        response.body_len = request->body_len;
        if (request->too_large) {
            snprintf(request->error, sizeof request->error,
                     "answer larger than the cap of %zu bytes", request->max_body);
            response.transport_error = 1;
        } else if (request->chunk_aborted) {
            snprintf(request->error, sizeof request->error, "stream aborted by its reader");
            response.transport_error = 1;
        } else if (code != CURLE_OK) {
            if (request->error[0] == '\0')
                snprintf(request->error, sizeof request->error, "%s", curl_easy_strerror(code));
            response.transport_error = 1;
        }
        response.error = response.transport_error ? request->error : NULL;
        request->done_cb(&response, request->user);
        request_free(request);
    }
    start_queued(http);
}

/* libev: a socket curl watches is ready. */
static void socket_ready_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct socket_watch *watch = io->data;
    struct cps_http *http = watch->http;
    int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
                 (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(http->multi, watch->fd, action, &running);
    drain_completed(http);
}

/* libev: curl's timeout expired. */
static void timeout_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_http *http = timer->data;
    int running;
    curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_completed(http);
}

/* curl: set the single timer. The timeout is converted to seconds as a
 * double (no integer division), and a 0 ms timeout is left to the loop's
 * next iteration instead of calling back into curl from here. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct cps_http *http = userp;
    ev_timer_stop(http->loop, &http->timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&http->timer, (double)timeout_ms / CPS_MS_PER_S, 0.0);
        ev_timer_start(http->loop, &http->timer);
    }
    return 0;
}

/* curl: start, change or stop watching a socket. */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct cps_http *http = userp;
    struct socket_watch *watch = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (watch) {
            ev_io_stop(http->loop, &watch->io);
            curl_multi_assign(http->multi, fd, NULL);
            free(watch);
        }
        return 0;
    }
    int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!watch) {
        watch = calloc(1, sizeof *watch);
        if (!watch)
            return -1;
        watch->fd = fd;
        watch->http = http;
        ev_io_init(&watch->io, socket_ready_cb, fd, events);
        watch->io.data = watch;
        curl_multi_assign(http->multi, fd, watch);
    } else {
        ev_io_stop(http->loop, &watch->io);
        ev_io_set(&watch->io, fd, events);
    }
    ev_io_start(http->loop, &watch->io);
    return 0;
}

struct cps_http *cps_http_new(struct ev_loop *loop, const size_t budget[CPS_HTTP_LANE_COUNT])
{
    struct cps_http *http = calloc(1, sizeof *http);
    if (!http)
        return NULL;
    http->loop = loop;
    for (int lane = 0; lane < CPS_HTTP_LANE_COUNT; lane++)
        http->budget[lane] = budget[lane] > 0 ? budget[lane] : 1;
    http->multi = curl_multi_init();
    if (!http->multi) {
        free(http);
        return NULL;
    }
    ev_timer_init(&http->timer, timeout_cb, 0.0, 0.0);
    http->timer.data = http;
    ev_timer_init(&http->recheck_timer, recheck_cb, 0.0, 0.0);
    http->recheck_timer.data = http;
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    /* No CURLMOPT_MAX_HOST_CONNECTIONS: one cap shared by every class is
     * what let 8 watches take all 8 connections and starve the Lease. The
     * lanes' budgets bound the connections instead. */
    return http;
}

void cps_http_cancel(struct cps_http_request *request)
{
    if (!request)
        return;
    if (!request->queued && request->easy)
        curl_multi_remove_handle(request->http->multi, request->easy);
    void (*cancel_cb)(void *) = request->cancel_cb;
    void *user = request->user;
    request_free(request);
    if (cancel_cb)
        cancel_cb(user);
}

void cps_http_cancel_all(struct cps_http *http)
{
    while (http->requests)
        cps_http_cancel(http->requests);
}

void cps_http_free(struct cps_http *http)
{
    if (!http)
        return;
    cps_http_cancel_all(http);
    ev_timer_stop(http->loop, &http->timer);
    ev_timer_stop(http->loop, &http->recheck_timer);
    curl_multi_cleanup(http->multi);
    free(http);
}

size_t cps_http_in_flight(const struct cps_http *http)
{
    return http->in_flight;
}

char *cps_http_escape(struct cps_http *http, const char *text)
{
    (void)http;
    char *escaped = curl_easy_escape(NULL, text, 0);
    if (!escaped)
        return NULL;
    char *copy = strdup(escaped);
    curl_free(escaped);
    return copy;
}

int cps_http_body_append(char **body, size_t *len, size_t *cap, size_t max_bytes,
                         const char *data, size_t n)
{
    if (*len + n > max_bytes)
        return 1;
    if (*len + n + 1 > *cap) {
        size_t grown_cap = *cap ? *cap : BODY_INITIAL_CAP;
        while (grown_cap < *len + n + 1)
            grown_cap *= 2;
        char *grown = realloc(*body, grown_cap);
        if (!grown)
            return -1;
        *body = grown;
        *cap = grown_cap;
    }
    memcpy(*body + *len, data, n);
    *len += n;
    (*body)[*len] = '\0';
    return 0;
}

/* curl: a block of the answer's body. Streams go to chunk_cb (2xx only;
 * an error answer is buffered so its Status can be read); everything else
 * is buffered up to the cap, and the transfer fails past it. */
static size_t body_write_cb(char *data, size_t size, size_t count, void *userp)
{
    struct cps_http_request *request = userp;
    size_t n = size * count;
    if (request->chunk_cb) {
        long status = 0;
        curl_easy_getinfo(request->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            if (request->chunk_cb(data, n, request->chunk_user) != 0) {
                request->chunk_aborted = 1;
                return 0;
            }
            return n;
        }
    }
    int rc = cps_http_body_append(&request->body, &request->body_len, &request->body_cap,
                                  request->max_body, data, n);
    if (rc > 0)
        request->too_large = 1;
    return rc == 0 ? n : 0;
}

/* curl: one header line; only Retry-After is kept (seconds, or an HTTP
 * date turned into the time left). */
static size_t header_cb(char *data, size_t size, size_t count, void *userp)
{
    struct cps_http_request *request = userp;
    size_t n = size * count;
    static const char name[] = "retry-after:";
    if (n > sizeof name && strncasecmp(data, name, sizeof name - 1) == 0) {
        char value[64];
        size_t len = n - (sizeof name - 1);
        if (len >= sizeof value)
            len = sizeof value - 1;
        memcpy(value, data + sizeof name - 1, len);
        value[len] = '\0';
        int64_t ms = cps_http_parse_retry_after(value, (int64_t)time(NULL));
        if (ms >= 0)
            request->retry_after_ms = ms;
    }
    return n;
}

/* Saturating: once past the ceiling in seconds, further digits change
 * nothing, so no value of any length overflows. */
int64_t cps_http_parse_retry_after(const char *value, int64_t now_s)
{
    const int64_t max_s = CPS_HTTP_RETRY_AFTER_MAX_MS / CPS_MS_PER_S;
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    if (end == p)
        return -1;
    if (isdigit((unsigned char)*p)) {
        int64_t seconds = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            if (seconds <= max_s)
                seconds = seconds * DECIMAL_BASE + (*p - '0');
        }
        return seconds > max_s ? CPS_HTTP_RETRY_AFTER_MAX_MS : seconds * CPS_MS_PER_S;
    }
    char date[64];
    size_t len = (size_t)(end - p);
    if (len >= sizeof date)
        return -1;
    memcpy(date, p, len);
    date[len] = '\0';
    time_t when = curl_getdate(date, NULL);
    if (when == (time_t)-1 || *p == '-' || *p == '+')
        return -1;
    if ((int64_t)when <= now_s)
        return 0;
    int64_t delta = (int64_t)when - now_s;
    return delta > max_s ? CPS_HTTP_RETRY_AFTER_MAX_MS : delta * CPS_MS_PER_S;
}

/* Apply the TLS material: the CA file and the client certificate and
 * key. Peer and host verification stay on, always. A given CA is the only
 * trust anchor, as in client-go: the system's CA directory is dropped, so
 * a certificate a public CA issued for the API server's name is not
 * trusted, and GnuTLS does not parse the whole directory for every new
 * connection (1.5 MB of heap each). */
static void apply_tls(CURL *easy, const struct cps_http_tls *tls)
{
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!tls)
        return;
    if (tls->ca_file) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, tls->ca_file);
        curl_easy_setopt(easy, CURLOPT_CAPATH, NULL);
    }
    if (tls->client_cert_file && tls->client_key_file) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, tls->client_cert_file);
        curl_easy_setopt(easy, CURLOPT_SSLKEY, tls->client_key_file);
        curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    }
}

/* Append one header line, copying it (curl_slist_append copies). */
static int add_header(struct cps_http_request *request, const char *line)
{
    struct curl_slist *grown = curl_slist_append(request->headers, line);
    if (!grown)
        return -1;
    request->headers = grown;
    return 0;
}

/* Create the request's curl handle and hand it to curl. Done only when a
 * transfer slot is free, so a queue of thousands costs only these small
 * structs, not thousands of curl handles with their buffers. */
static int start_transfer(struct cps_http_request *request)
{
    CURL *easy = curl_easy_init();
    if (!easy)
        return -1;
    request->easy = easy;
    curl_easy_setopt(easy, CURLOPT_URL, request->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, request);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, request->error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, CPS_USER_AGENT);
    /* over HTTP/2, wait for the one connection to multiplex on rather than
     * opening another per transfer while it is being set up */
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)request->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     request->timeout_ms < CONNECT_TIMEOUT_MAX_MS ? (long)request->timeout_ms
                                                                  : CONNECT_TIMEOUT_MAX_MS);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, body_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, request);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, request);
    if (request->proxy) /* an explicit proxy is used for every host, as client-go's proxy-url */
        curl_easy_setopt(easy, CURLOPT_PROXY, request->proxy);
    if (request->proxy && request->proxy[0])
        curl_easy_setopt(easy, CURLOPT_NOPROXY, "");
    apply_tls(easy, request->tls);
    if (strcmp(request->method, "GET") != 0) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->request_body_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS,
                         request->request_body ? request->request_body : "");
        if (strcmp(request->method, "POST") != 0)
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request->method);
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, request->headers);
    return curl_multi_add_handle(request->http->multi, easy) == CURLM_OK ? 0 : -1;
}

int cps_http_send(struct cps_http *http, const struct cps_http_options *options,
                  cps_http_done_cb *done_cb, void *user, struct cps_http_request **out)
{
    struct cps_http_request *request = calloc(1, sizeof *request);
    if (!request)
        return -1;
    request->http = http;
    request->max_body = options->max_body_bytes;
    request->chunk_cb = options->chunk_cb;
    request->chunk_user = options->chunk_user;
    request->cancel_cb = options->cancel_cb;
    request->start_cb = options->start_cb;
    request->lane = (int)options->lane >= 0 && options->lane < CPS_HTTP_LANE_COUNT
                        ? options->lane
                        : CPS_HTTP_LANE_READ;
    request->retry_after_ms = -1;
    request->done_cb = done_cb;
    request->user = user;
    request->timeout_ms = options->timeout_ms;
    request->tls = options->tls;
    snprintf(request->method, sizeof request->method, "%s",
             options->method ? options->method : "GET");
    request->url = strdup(options->url);
    if (!request->url)
        goto fail;
    if (strcmp(request->method, "GET") != 0 && options->body_len > 0) {
        request->request_body = malloc(options->body_len);
        if (!request->request_body)
            goto fail;
        memcpy(request->request_body, options->body, options->body_len);
        request->request_body_len = options->body_len;
    }

    if (add_header(request, "Accept: application/json") != 0 || add_header(request, "Expect:"))
        goto fail;
    if (options->bearer_token && options->bearer_token[0]) {
        size_t len = strlen("Authorization: Bearer ") + strlen(options->bearer_token) + 1;
        char *line = malloc(len);
        if (!line)
            goto fail;
        snprintf(line, len, "Authorization: Bearer %s", options->bearer_token);
        int rc = add_header(request, line);
        memset(line, 0, len); /* no copy of the token lingers in freed memory */
        free(line);
        if (rc != 0)
            goto fail;
    }
    int credentials = options->bearer_token && options->bearer_token[0];
    for (const char *const *h = options->headers; h && *h; h++) {
        credentials |= strncasecmp(*h, "Authorization:", strlen("Authorization:")) == 0;
        if (add_header(request, *h) != 0)
            goto fail;
    }
    const char *proxy = credentials && strncasecmp(request->url, "http://", 7) == 0
                            ? "" /* never credentials to a proxy in clear text */
                            : options->proxy;
    if (proxy && !(request->proxy = strdup(proxy)))
        goto fail;
    if (strcmp(request->method, "GET") != 0) {
        char content_type[128];
        snprintf(content_type, sizeof content_type, "Content-Type: %s",
                 options->content_type ? options->content_type : "application/json");
        if (add_header(request, content_type) != 0)
            goto fail;
    }

    enum cps_http_lane lane = request->lane;
    if (!http->queue_head[lane] && http->active[lane] < http->budget[lane] &&
        request->start_cb && request->start_cb(user) != 0)
        goto fail; /* it would start now, and its start check refuses it */
    request->next = http->requests;
    if (http->requests)
        http->requests->prev = request;
    http->requests = request;
    http->in_flight++;
    if (!http->queue_head[lane] && http->active[lane] < http->budget[lane]) {
        http->active[lane]++;
        if (start_transfer(request) != 0) {
            request_free(request);
            return -1;
        }
    } else {
        request->queued = 1;
        request->queue_prev = http->queue_tail[lane];
        if (http->queue_tail[lane])
            http->queue_tail[lane]->queue_next = request;
        else
            http->queue_head[lane] = request;
        http->queue_tail[lane] = request;
        http->queued[lane]++;
    }
    if (out)
        *out = request;
    return 0;
fail:
    wipe_headers(request);
    free(request->url);
    free(request->proxy);
    free(request->request_body);
    free(request);
    return -1;
}
