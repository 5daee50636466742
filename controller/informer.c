#include "informer.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "log.h"
#include "units.h"

#define LIST_PAGE_SIZE 500
#define WATCH_SLACK_MS 30000       /* our own timeout beyond the server's */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000
#define RETRY_JITTER 0.5           /* a wait is stretched by up to half again */
#define HEALTHY_RESET_MS 60000     /* this long without a failure: the wait starts over */
#define SHORT_WATCH_MS 1000        /* a watch that ends sooner (200) counts as a failure */
#define REOPEN_GRACE_MS 5000       /* synced while a watch is being reopened this long */
#define MAX_EVENT_BYTES (8u << 20) /* one watch event (one object) */
#define CONTINUE_MAX 4096
#define PATH_MAX_BYTES 8192

enum informer_phase { PHASE_IDLE = 0, PHASE_LISTING, PHASE_WATCHING, PHASE_WAITING };

struct cps_informer {
    struct ev_loop *loop;
    struct cps_kube *kube;
    char *namespace;
    char *path;                 /* .../deployments */
    int64_t request_timeout_ms;
    int64_t watch_timeout_s;    /* the server ends each watch after this; we reopen it */
    struct cps_informer_callbacks callbacks;
    enum informer_phase phase;
    struct cps_http_request *request;
    ev_timer retry_timer;
    ev_timer progress_timer;    /* restarted by every event and bookmark */
    int64_t retry_ms;           /* the next wait before jitter */
    int64_t last_failure_ms;    /* monotonic; 0: none yet */
    int64_t progress_timeout_ms;
    int64_t watch_started_ms;
    enum cps_informer_relist_reason relist_reason; /* why relist_needed */
    uint64_t relists[CPS_INFORMER_RELIST_REASON_COUNT];
    char resource_version[CPS_KUBE_RV_MAX];
    char continue_token[CONTINUE_MAX];
    uint64_t stamp;             /* number of the LIST in progress */
    uint64_t lists;
    int listed;                 /* a complete LIST has been seen */
    int relist_needed;          /* the watch said 410: LIST, not WATCH */
    int forbidden_hinted;       /* the 403 hint was logged since the last success */
    int64_t unhealthy_since_ms; /* first failure not yet followed by success; 0: healthy */
    char *line;                 /* a watch event being assembled */
    size_t line_len, line_cap;
};

static void start_list(struct cps_informer *informer);
static void start_watch(struct cps_informer *informer);

const char *cps_informer_namespace(const struct cps_informer *informer)
{
    return informer->namespace;
}

uint64_t cps_informer_lists(const struct cps_informer *informer)
{
    return informer->lists;
}

uint64_t cps_informer_relists(const struct cps_informer *informer,
                              enum cps_informer_relist_reason reason)
{
    return reason < CPS_INFORMER_RELIST_REASON_COUNT ? informer->relists[reason] : 0;
}

const char *cps_informer_relist_reason_name(enum cps_informer_relist_reason reason)
{
    static const char *const names[CPS_INFORMER_RELIST_REASON_COUNT] = {
        "gone", "watch_error", "bad_event", "event_too_large", "no_progress", "list_failed"};
    return reason < CPS_INFORMER_RELIST_REASON_COUNT ? names[reason] : "unknown";
}

int cps_informer_synced(const struct cps_informer *informer, int64_t now_ms)
{
    if (!informer->listed)
        return 0;
    return informer->unhealthy_since_ms == 0 ||
           now_ms - informer->unhealthy_since_ms < REOPEN_GRACE_MS;
}

/* What to do about a 403 on this informer's LIST or WATCH (`verb`): RBAC
 * is the usual cause, and which binding is missing depends on the scope.
 * Into buf (cap bytes). */
static void forbidden_hint(const struct cps_informer *informer, const char *verb, char *buf,
                           size_t cap)
{
    if (informer->namespace)
        snprintf(buf, cap,
                 "cpscale's ServiceAccount may not %s Deployments in this namespace: the cpscale "
                 "ClusterRole, bound here by a RoleBinding (manifests/overlays/example/"
                 "target-namespaces.yaml), grants get, list and watch; until the watch works, "
                 "targets are read with GETs, if those are allowed",
                 verb);
    else
        snprintf(buf, cap,
                 "cpscale's ServiceAccount may not %s Deployments in all namespaces, which it "
                 "does when Deployment targets span more than %d namespaces: add "
                 "manifests/components/cluster-scope (list and watch everywhere); until then "
                 "each target is read with GETs",
                 verb, CPS_INFORMER_MAX_NAMESPACES);
}

/* What went wrong with an answer, for the log: the transport's error; for
 * a non-200 answer the server's Status message when it sent one, else the
 * HTTP status and the start of the body (a proxy's error page); for a 200
 * whose body did not decode, `decode_err` (or the answer's own error when
 * NULL). Returns answer->error or buf (cap bytes), which it fills. */
static const char *answer_problem(const struct cps_kube_answer *answer,
                                  const struct cps_err *decode_err, char *buf, size_t cap)
{
    if (answer->transport_error)
        return answer->error;
    if (answer->status == 200) {
        if (!decode_err)
            return answer->error;
        cps_err_format(decode_err, buf, cap);
        return buf;
    }
    struct cps_kube_status status;
    if (cps_kube_decode_status(answer->body, answer->body_len, &status) == 0 &&
        status.message[0]) {
        snprintf(buf, cap, "%s", status.message);
        return buf;
    }
    int shown = answer->body_len < 120 ? (int)answer->body_len : 120;
    snprintf(buf, cap, "HTTP %ld%s%.*s", answer->status, shown ? ": " : "", shown,
             answer->body ? answer->body : "");
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    return buf;
}

/* A warning about this informer's LIST or WATCH. `error` is what went
 * wrong (the server's Status message when it sent one). A 403 carries the
 * hint of forbidden_hint the first time in a run of failures (until a LIST
 * completes or a watch brings an event), not on every retry of a refusal
 * that lasts until someone changes the RBAC. */
static void log_problem(struct cps_informer *informer, const char *message, long code,
                        const char *error)
{
    const char *verb = strncmp(message, "watch", 5) == 0 ? "watch" : "list";
    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_WARN, message);
    cps_log_str(&line, "watch", informer->namespace ? informer->namespace : "(all namespaces)");
    cps_log_int(&line, "code", code);
    if (error)
        cps_log_str(&line, "error", error);
    if (code == 403 && !informer->forbidden_hinted) {
        char hint[360];
        forbidden_hint(informer, verb, hint, sizeof hint);
        cps_log_str(&line, "hint", hint);
        informer->forbidden_hinted = 1;
    }
    cps_log_end(&line);
}

/* The cache may be falling behind from now on (a failure, or a re-list in
 * progress); after REOPEN_GRACE_MS of that the controller stops trusting it. */
static void mark_unhealthy(struct cps_informer *informer)
{
    if (informer->unhealthy_since_ms == 0)
        informer->unhealthy_since_ms = cps_monotonic_ms();
}

/* The wait before the next attempt after a failure, as client-go's
 * reflector backs off: RETRY_FIRST_MS doubling to RETRY_MAX_MS, stretched by
 * a random jitter so that many controllers do not re-list in step. The
 * doubling only starts over once HEALTHY_RESET_MS have passed without a
 * failure: one good event between two failures must not reset it, or a
 * server that answers every watch with 410 gets a LIST storm. */
static int64_t next_wait_ms(struct cps_informer *informer)
{
    int64_t now = cps_monotonic_ms();
    if (informer->last_failure_ms != 0 && now - informer->last_failure_ms >= HEALTHY_RESET_MS)
        informer->retry_ms = RETRY_FIRST_MS;
    informer->last_failure_ms = now;
    double jitter = 1.0 + RETRY_JITTER * ((double)rand() / ((double)RAND_MAX + 1.0));
    int64_t wait_ms = (int64_t)((double)informer->retry_ms * jitter);
    informer->retry_ms = informer->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
                                                               : informer->retry_ms * 2;
    return wait_ms;
}

/* Try again after the backoff: a LIST when `relist` (logged and counted
 * under `reason`), else the watch again from the last resourceVersion. */
static void retry_later(struct cps_informer *informer, int relist,
                        enum cps_informer_relist_reason reason)
{
    ev_timer_stop(informer->loop, &informer->progress_timer);
    informer->phase = PHASE_WAITING;
    if (relist) {
        informer->relist_reason = reason;
        informer->relist_needed = 1;
    }
    mark_unhealthy(informer);
    int64_t wait_ms = next_wait_ms(informer);
    if (informer->relist_needed) {
        informer->relists[informer->relist_reason]++;
        struct cps_log_line line;
        cps_log_begin(&line,
                      informer->relist_reason == CPS_INFORMER_RELIST_GONE ? CPS_LOG_INFO
                                                                          : CPS_LOG_WARN,
                      "listing again after a wait");
        cps_log_str(&line, "watch", informer->namespace ? informer->namespace : "(all namespaces)");
        cps_log_str(&line, "reason", cps_informer_relist_reason_name(informer->relist_reason));
        cps_log_int(&line, "wait_ms", wait_ms);
        cps_log_end(&line);
    }
    ev_timer_set(&informer->retry_timer, (double)wait_ms / CPS_MS_PER_S, 0.0);
    ev_timer_start(informer->loop, &informer->retry_timer);
}

static void retry_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_informer *informer = timer->data;
    if (informer->relist_needed || !informer->listed)
        start_list(informer);
    else
        start_watch(informer);
}

/* ---- LIST ---------------------------------------------------------------- */

static void list_item_cb(const struct cps_kube_deployment *item, void *user)
{
    struct cps_informer *informer = user;
    informer->callbacks.item_cb(item, 0, informer->stamp, informer->callbacks.user);
}

static void list_page_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_informer *informer = user;
    informer->request = NULL;
    if (answer->status == 410) {
        /* the continue token expired: start the list over */
        informer->continue_token[0] = '\0';
        retry_later(informer, 1, CPS_INFORMER_RELIST_GONE);
        return;
    }
    char rv[CPS_KUBE_RV_MAX];
    struct cps_err err = {0};
    if (answer->status != 200 ||
        cps_kube_decode_deployment_list(answer->body, answer->body_len, LIST_PAGE_SIZE,
                                        "deployment list",
                                        list_item_cb, informer, rv, &err) != 0 ||
        cps_kube_list_continue(answer->body, answer->body_len, informer->continue_token,
                               sizeof informer->continue_token) != 0) {
        char text[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8];
        log_problem(informer, "list failed", answer->status,
                    answer_problem(answer, &err, text, sizeof text));
        informer->continue_token[0] = '\0';
        retry_later(informer, 1, CPS_INFORMER_RELIST_LIST_FAILED);
        return;
    }
    if (informer->continue_token[0]) {
        start_list(informer); /* next page, same stamp */
        return;
    }
    memcpy(informer->resource_version, rv, sizeof rv);
    informer->listed = 1;
    informer->forbidden_hinted = 0;
    informer->unhealthy_since_ms = 0;
    informer->relist_needed = 0;
    informer->lists++;
    informer->callbacks.list_done_cb(informer->namespace, informer->stamp,
                                     informer->callbacks.user);
    start_watch(informer);
}

/* Send the next LIST page (a new stamp unless a continue token is held). */
static void start_list(struct cps_informer *informer)
{
    char query[CONTINUE_MAX * 3 + 64];
    if (!informer->continue_token[0]) {
        informer->stamp++;
        snprintf(query, sizeof query, "?limit=%d", LIST_PAGE_SIZE);
    } else {
        char *escaped = cps_http_escape(NULL, informer->continue_token);
        snprintf(query, sizeof query, "?limit=%d&continue=%s", LIST_PAGE_SIZE,
                 escaped ? escaped : "");
        free(escaped);
    }
    char url[PATH_MAX_BYTES + sizeof query];
    snprintf(url, sizeof url, "%s%s", informer->path, query);
    informer->phase = PHASE_LISTING;
    if (cps_kube_request(informer->kube, "list", "deployments", "GET", url, NULL, NULL,
                         informer->request_timeout_ms, list_page_cb, informer,
                         &informer->request) != 0)
        retry_later(informer, 1, CPS_INFORMER_RELIST_LIST_FAILED);
}

/* ---- WATCH --------------------------------------------------------------- */

/* End the watch in progress and LIST again (after the backoff) for `reason`. */
static void need_relist(struct cps_informer *informer, enum cps_informer_relist_reason reason)
{
    if (!informer->relist_needed)
        informer->relist_reason = reason;
    informer->relist_needed = 1;
}

/* One complete watch event line. Returns -1 to end the stream (410). */
static int handle_event(struct cps_informer *informer, const char *line, size_t len)
{
    enum cps_kube_watch_type type;
    struct cps_kube_deployment deployment;
    struct cps_kube_status status;
    struct cps_err err = {0};
    if (cps_kube_decode_watch_event(line, len, "watch event", &type, &deployment, &status,
                                    &err) != 0) {
        char text[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8];
        cps_err_format(&err, text, sizeof text);
        log_problem(informer, "bad watch event; listing again", 0, text);
        need_relist(informer, CPS_INFORMER_RELIST_BAD_EVENT);
        return -1;
    }
    switch (type) {
    case CPS_KUBE_WATCH_ERROR:
        if (status.code != 410)
            log_problem(informer, "watch error; listing again", status.code, status.message);
        need_relist(informer, status.code == 410 ? CPS_INFORMER_RELIST_GONE
                                                 : CPS_INFORMER_RELIST_WATCH_ERROR);
        return -1;
    case CPS_KUBE_WATCH_BOOKMARK:
        /* only its resourceVersion counts: a real server's bookmark object
         * has no name and zeroed spec and status */
        break;
    default:
        informer->callbacks.item_cb(&deployment, type == CPS_KUBE_WATCH_DELETED, 0,
                                    informer->callbacks.user);
        break;
    }
    memcpy(informer->resource_version, deployment.resource_version,
           sizeof informer->resource_version);
    /* progress: the watch is alive (the backoff itself only starts over
     * after HEALTHY_RESET_MS without a failure) */
    ev_timer_again(informer->loop, &informer->progress_timer);
    informer->unhealthy_since_ms = 0;
    informer->forbidden_hinted = 0;
    return 0;
}

/* Streamed body bytes: split into lines, one event per line. */
static int watch_chunk_cb(const char *data, size_t len, void *user)
{
    struct cps_informer *informer = user;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            if (informer->line_len > 0 &&
                handle_event(informer, informer->line, informer->line_len) != 0)
                return -1;
            informer->line_len = 0;
            continue;
        }
        if (informer->line_len + 1 >= informer->line_cap) {
            if (informer->line_cap >= MAX_EVENT_BYTES) {
                log_problem(informer, "watch event too large; listing again", 0, NULL);
                need_relist(informer, CPS_INFORMER_RELIST_TOO_LARGE);
                return -1;
            }
            size_t cap = informer->line_cap ? informer->line_cap * 2 : 65536;
            char *grown = realloc(informer->line, cap);
            if (!grown)
                return -1;
            informer->line = grown;
            informer->line_cap = cap;
        }
        informer->line[informer->line_len++] = data[i];
    }
    return 0;
}

/* The watch ended. A 410 or a bad event: LIST again after the backoff. A
 * normal end (200 after the server's timeoutSeconds): reopen at once; but
 * one that ended within SHORT_WATCH_MS is a failure and waits too (a
 * server that closes every watch at once must not get a reopen storm). */
static void watch_done_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_informer *informer = user;
    informer->request = NULL;
    informer->line_len = 0;
    ev_timer_stop(informer->loop, &informer->progress_timer);
    if (informer->relist_needed || answer->status == 410) {
        retry_later(informer, 1,
                    informer->relist_needed ? informer->relist_reason : CPS_INFORMER_RELIST_GONE);
        return;
    }
    if (answer->status == 200 && !answer->transport_error) {
        int64_t lasted_ms = cps_monotonic_ms() - informer->watch_started_ms;
        int64_t short_ms = informer->watch_timeout_s * CPS_MS_PER_S / 2;
        if (short_ms > SHORT_WATCH_MS)
            short_ms = SHORT_WATCH_MS;
        if (lasted_ms < short_ms) {
            log_problem(informer, "watch ended at once; reopening after a wait", 200, NULL);
            retry_later(informer, 0, CPS_INFORMER_RELIST_GONE);
            return;
        }
        informer->unhealthy_since_ms = 0;
        start_watch(informer); /* the server's timeoutSeconds: reopen */
        return;
    }
    char text[CPS_KUBE_MESSAGE_MAX + 16];
    log_problem(informer, "watch failed", answer->status,
                answer_problem(answer, NULL, text, sizeof text));
    retry_later(informer, 0, CPS_INFORMER_RELIST_GONE);
}

/* No event and no bookmark for progress_timeout_ms: a connection that is
 * open but silent (a stuck proxy, a server that lost the watch) would keep
 * an old cache trusted until the watch's own timeout. Close it, stop
 * trusting the cache at once (targets are read with GETs) and re-list. */
static void progress_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_informer *informer = timer->data;
    ev_timer_stop(informer->loop, &informer->progress_timer);
    if (informer->phase != PHASE_WATCHING)
        return;
    log_problem(informer, "watch made no progress; listing again", 0, NULL);
    cps_http_cancel(informer->request);
    informer->request = NULL;
    informer->line_len = 0;
    informer->listed = 0; /* out of sync until the new LIST is complete */
    retry_later(informer, 1, CPS_INFORMER_RELIST_NO_PROGRESS);
}

static void start_watch(struct cps_informer *informer)
{
    char url[PATH_MAX_BYTES + 256];
    snprintf(url, sizeof url,
             "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
             informer->path, (int)informer->watch_timeout_s, informer->resource_version);
    informer->phase = PHASE_WATCHING;
    informer->line_len = 0;
    informer->watch_started_ms = cps_monotonic_ms();
    /* an open watch keeps the cache trusted while events or bookmarks come;
     * one silent for progress_timeout_ms is closed (progress_cb) */
    if (cps_kube_stream(informer->kube, "watch", "deployments", url,
                        informer->watch_timeout_s * CPS_MS_PER_S + WATCH_SLACK_MS, watch_chunk_cb,
                        watch_done_cb, informer, &informer->request) != 0) {
        retry_later(informer, 0, CPS_INFORMER_RELIST_GONE);
        return;
    }
    if (informer->progress_timeout_ms > 0)
        ev_timer_again(informer->loop, &informer->progress_timer);
}

/* ---- life cycle ---------------------------------------------------------- */

struct cps_informer *cps_informer_new(struct ev_loop *loop, struct cps_kube *kube,
                                      const char *namespace, int64_t request_timeout_ms,
                                      int64_t watch_timeout_ms, int64_t progress_timeout_ms,
                                      const struct cps_informer_callbacks *callbacks)
{
    struct cps_informer *informer = calloc(1, sizeof *informer);
    if (!informer)
        return NULL;
    informer->watch_timeout_s = watch_timeout_ms / CPS_MS_PER_S > 0 ? watch_timeout_ms / CPS_MS_PER_S : 1;
    informer->loop = loop;
    informer->kube = kube;
    informer->request_timeout_ms = request_timeout_ms;
    informer->callbacks = *callbacks;
    informer->retry_ms = RETRY_FIRST_MS;
    informer->progress_timeout_ms = progress_timeout_ms;
    informer->namespace = namespace ? strdup(namespace) : NULL;
    informer->path = cps_kube_path("apps/v1", namespace, "deployments", NULL, NULL);
    if ((namespace && !informer->namespace) || !informer->path ||
        strlen(informer->path) >= PATH_MAX_BYTES) {
        cps_informer_free(informer);
        return NULL;
    }
    ev_timer_init(&informer->retry_timer, retry_cb, 0.0, 0.0);
    informer->retry_timer.data = informer;
    ev_timer_init(&informer->progress_timer, progress_cb, 0.0,
                  progress_timeout_ms > 0 ? (double)progress_timeout_ms / CPS_MS_PER_S : 0.0);
    informer->progress_timer.data = informer;
    return informer;
}

void cps_informer_start(struct cps_informer *informer)
{
    start_list(informer);
}

void cps_informer_free(struct cps_informer *informer)
{
    if (!informer)
        return;
    if (informer->loop) {
        ev_timer_stop(informer->loop, &informer->retry_timer);
        ev_timer_stop(informer->loop, &informer->progress_timer);
    }
    cps_http_cancel(informer->request);
    free(informer->namespace);
    free(informer->path);
    free(informer->line);
    free(informer);
}
