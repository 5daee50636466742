#include "lease.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube_json.h"
#include "log.h"
#include "units.h"

#define RELEASED_LEASE_DURATION_S 1 /* what client-go writes on release */
/* A release reads the Lease at most this often (before its PUT, after a 409). */
#define RELEASE_READS_MAX 2

enum lease_step {
    STEP_IDLE = 0, STEP_GET, STEP_CREATE, STEP_UPDATE,
    STEP_RELEASE,     /* the PUT that empties the holder */
    STEP_RELEASE_GET  /* the read before it, when the record we hold may be stale */
};

struct cps_lease {
    struct ev_loop *loop;
    struct cps_kube *kube;
    char *namespace, *name, *identity;
    char *lease_path;  /* .../leases/NAME */
    char *leases_path; /* .../leases */
    int64_t lease_duration_ms, renew_deadline_ms, retry_period_ms, request_timeout_ms;
    char *shard_scheme;        /* NULL: no annotation */
    cps_lease_policy_cb *policy;
    /* the write in flight takes the Lease from a live holder, or from a
     * record of another shard scheme (or none): held for acting only
     * renew_deadline after it succeeds (act_after_ms) */
    int stealing;
    int64_t act_after_ms;
    cps_lease_change_cb *change_cb;
    void *user;
    ev_timer timer;
    int leading;
    int64_t last_renew_ms;     /* monotonic time of the attempt that last renewed */
    int64_t attempt_started_ms;
    struct cps_kube_lease observed;
    int64_t observed_at_ms;    /* monotonic time we last saw the record change */
    int have_observed;
    /* the timer's next firing is wake_at_expiry's: the record observed may
     * then be taken with no read before the write (see retry_cb) */
    int expiry_wake;
    enum lease_step step;
    struct cps_http_request *in_flight;
    int released;
    int release_reads;  /* reads of the Lease this release made (RELEASE_READS_MAX) */
    void (*release_done_cb)(void *user);
    void *release_user;
};

int64_t cps_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * CPS_MS_PER_S + now.tv_nsec / CPS_NS_PER_MS;
}

int64_t cps_wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * CPS_MS_PER_S + now.tv_nsec / CPS_NS_PER_MS;
}

/* Change leadership, telling the controller. */
static void set_leading(struct cps_lease *lease, int leading, const char *why)
{
    if (lease->leading == leading)
        return;
    lease->leading = leading;
    struct cps_log_line line;
    cps_log_begin(&line, leading ? CPS_LOG_INFO : CPS_LOG_WARN,
                  leading ? "became leader" : "stopped leading");
    cps_log_str(&line, "lease", lease->name);
    cps_log_str(&line, "identity", lease->identity);
    cps_log_str(&line, "why", why);
    cps_log_end(&line);
    if (lease->change_cb)
        lease->change_cb(leading, lease->user);
}

int cps_lease_held(const struct cps_lease *lease, int64_t now_ms)
{
    return lease->leading && !lease->released && now_ms >= lease->act_after_ms &&
           now_ms - lease->last_renew_ms < lease->renew_deadline_ms;
}

void cps_lease_set_policy(struct cps_lease *lease, cps_lease_policy_cb *policy)
{
    lease->policy = policy;
}

void cps_lease_view(const struct cps_lease *lease, int64_t now_ms, struct cps_lease_view *out)
{
    const struct cps_kube_lease *o = &lease->observed;
    out->seen = lease->have_observed;
    out->holder = lease->have_observed ? o->holder_identity : "";
    out->scheme = lease->have_observed ? o->shard_scheme : "";
    out->expired = lease->have_observed && o->holder_identity[0] &&
                   lease->observed_at_ms + (int64_t)o->lease_duration_s * CPS_MS_PER_S <= now_ms;
}

/* Step down when the renew deadline has passed without a renewal. */
static void check_deadline(struct cps_lease *lease, int64_t now_ms)
{
    if (lease->leading && now_ms - lease->last_renew_ms >= lease->renew_deadline_ms)
        set_leading(lease, 0, "no renewal within the renew deadline");
}

/* A failed attempt logs at WARN whether or not we lead: a candidate that
 * can never reach the Lease (no connection, 403, 5xx) must say so, or it
 * waits forever in silence. A Lease held by another replica is not a
 * failure and is not logged here. */
static void log_attempt_failure(struct cps_lease *lease, const char *what,
                                const struct cps_kube_answer *answer)
{
    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_WARN, "lease attempt failed");
    cps_log_str(&line, "lease", lease->name);
    cps_log_str(&line, "step", what);
    cps_log_int(&line, "code", answer->status);
    if (answer->error)
        cps_log_str(&line, "error", answer->error);
    cps_log_end(&line);
}

/* Remember a record read from (or written to) the API server; a change in
 * its resourceVersion restarts our local expiry clock. */
static void observe(struct cps_lease *lease, const struct cps_kube_lease *record, int64_t now_ms)
{
    if (!lease->have_observed ||
        strcmp(lease->observed.resource_version, record->resource_version) != 0) {
        lease->observed = *record;
        lease->observed_at_ms = now_ms;
        lease->have_observed = 1;
    }
}

static void write_done_cb(const struct cps_kube_answer *answer, void *user);

/* Every Lease request goes in the Lease's own lane (http.h): first out of
 * the queue, with its own transfer slots, so slow PATCHes or open watches
 * never delay a renewal. */
static int lease_request(struct cps_lease *lease, const char *verb, const char *method,
                         const char *path, const char *body, cps_kube_done_cb *done_cb)
{
    struct cps_kube_call call = {
        .verb = verb, .resource = "leases", .method = method, .path = path,
        .content_type = body ? "application/json" : NULL, .body = body,
        .timeout_ms = lease->request_timeout_ms, .lane = CPS_HTTP_LANE_LEASE,
    };
    return cps_kube_call(lease->kube, &call, done_cb, lease, &lease->in_flight);
}

/* Send our record: POST to create, PUT (with the read resourceVersion) to
 * take over or renew, PUT with an empty holder to release. */
static void send_record(struct cps_lease *lease, enum lease_step step,
                        const struct cps_kube_lease *record)
{
    char *body = cps_kube_encode_lease(lease->namespace, lease->name, record);
    if (!body)
        return;
    int rc;
    if (step == STEP_CREATE)
        rc = lease_request(lease, "create", "POST", lease->leases_path, body, write_done_cb);
    else
        rc = lease_request(lease, "update", "PUT", lease->lease_path, body, write_done_cb);
    free(body);
    if (rc == 0)
        lease->step = step;
}

/* The record we write now: ours, renewed at wall-clock `now`; a takeover
 * bumps leaseTransitions and sets acquireTime, as client-go does. */
static void build_record(const struct cps_lease *lease, const struct cps_kube_lease *current,
                         struct cps_kube_lease *record)
{
    int64_t wall = cps_wall_ms();
    memset(record, 0, sizeof *record);
    snprintf(record->holder_identity, sizeof record->holder_identity, "%s", lease->identity);
    record->lease_duration_s = (int32_t)(lease->lease_duration_ms / CPS_MS_PER_S);
    record->renew_time_ms = wall;
    if (current && strcmp(current->holder_identity, lease->identity) == 0) {
        record->acquire_time_ms = current->acquire_time_ms ? current->acquire_time_ms : wall;
        record->lease_transitions = current->lease_transitions;
    } else {
        record->acquire_time_ms = wall;
        record->lease_transitions = current ? current->lease_transitions + 1 : 0;
    }
    if (current)
        snprintf(record->resource_version, sizeof record->resource_version, "%s",
                 current->resource_version);
    if (lease->shard_scheme)
        snprintf(record->shard_scheme, sizeof record->shard_scheme, "%s", lease->shard_scheme);
}

static void release_after_read(struct cps_lease *lease);
static void finish_release(struct cps_lease *lease);

/*
 * A create, update or release of the Lease has answered. A release that
 * met 409 reads the Lease once and tries again (release_after_read);
 * otherwise it only logs and hands over to release_done_cb. A written record (200/201) is
 * what the server now holds: it is observed, the renewal counts from when
 * the attempt started (not when it answered, so a slow answer never
 * stretches the renew deadline), and a takeover acts only after the former
 * holder's renew deadline. A 409 means another candidate wrote first, so
 * this replica stops leading at once; any other failure leads nowhere but
 * the renew-deadline check, which stops acting when renewals keep failing.
 */
static void write_done_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_lease *lease = user;
    enum lease_step step = lease->step;
    int stealing = lease->stealing;
    lease->in_flight = NULL;
    lease->step = STEP_IDLE;
    lease->stealing = 0;
    int64_t now = cps_monotonic_ms();
    if (step == STEP_RELEASE) {
        if (answer->status == 409 && lease->release_reads < RELEASE_READS_MAX) {
            release_after_read(lease); /* written since we read it: read it again */
            return;
        }
        if (answer->status != 200)
            log_attempt_failure(lease, "release", answer);
        else
            cps_log_message(CPS_LOG_INFO, "released the lease", NULL);
        finish_release(lease);
        return;
    }
    if (answer->status == 200 || answer->status == 201) {
        struct cps_kube_lease written;
        struct cps_err err = {0};
        if (cps_kube_decode_lease(answer->body, answer->body_len, "lease", &written, &err) == 0)
            observe(lease, &written, now);
        lease->last_renew_ms = lease->attempt_started_ms;
        if (stealing) /* the former holder (or another scheme) acts until its renew deadline */
            lease->act_after_ms = now + lease->renew_deadline_ms;
        set_leading(lease, 1, step == STEP_CREATE ? "created the lease"
                              : stealing         ? "took the lease; acting after the renew deadline"
                                                 : "holds the lease");
        return;
    }
    /* 409: another candidate wrote first; anything else: try again later */
    log_attempt_failure(lease, step == STEP_CREATE ? "create" : "update", answer);
    if (answer->status == 409)
        set_leading(lease, 0, "another holder updated the lease first");
    check_deadline(lease, now);
}

/* Make the next attempt in `first_ms`, then every retry period again;
 * `at_expiry` marks it as wake_at_expiry's (see retry_cb). */
static void rearm(struct cps_lease *lease, double first_ms, int at_expiry)
{
    ev_timer_stop(lease->loop, &lease->timer);
    ev_timer_set(&lease->timer, first_ms / CPS_MS_PER_S,
                 (double)lease->retry_period_ms / CPS_MS_PER_S);
    ev_timer_start(lease->loop, &lease->timer);
    lease->expiry_wake = at_expiry;
}

/* Shards only: when the Lease another holds expires before the next
 * attempt, make the next attempt at its expiry (then every retry period
 * again), so that a dead holder's shard moves lease_duration after its
 * last renewal was seen, not up to a retry period later; that attempt
 * writes at once, without a read (retry_cb). The single leader Lease keeps
 * client-go's plain period. */
static void wake_at_expiry(struct cps_lease *lease, int64_t left_ms)
{
    if (left_ms <= 0 || left_ms >= lease->retry_period_ms)
        return;
    rearm(lease, (double)(left_ms + 1), 1);
}

static void consider_record(struct cps_lease *lease, const struct cps_kube_lease *current,
                            int64_t now);

/* Shards only: a free or expired Lease the policy left to another replica
 * is read again in half a retry period rather than a whole one. The
 * replica it was left to takes it when it judges it expired by its own
 * clock, up to a retry period after this one did; if the views of the two
 * disagree (shards.c), the policy takes it itself after a period, and
 * these looks are when it can. A plain read, not the write at expiry: the
 * point is a fresh view. Costs a read per half period only while a Lease
 * stays free and left. */
static void look_again_soon(struct cps_lease *lease)
{
    rearm(lease, (double)lease->retry_period_ms / 2.0, 0);
}

/*
 * The Lease has been read. 404: there is none, so it is created (when the
 * shard policy leaves it to this replica). Otherwise the record is
 * observed and consider_record decides whether to renew, take over an
 * expired one, or wait; a failed or undecodable read only runs the
 * renew-deadline check, so a leader that cannot read its Lease stops
 * acting in time.
 */
static void get_done_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_lease *lease = user;
    lease->in_flight = NULL;
    lease->step = STEP_IDLE;
    int64_t now = cps_monotonic_ms();
    if (answer->status == 404) {
        /* no Lease yet: seen, and free */
        memset(&lease->observed, 0, sizeof lease->observed);
        lease->observed_at_ms = now;
        lease->have_observed = 1;
        if (lease->policy && !lease->policy("", lease->user))
            return;
        lease->stealing = lease->shard_scheme != NULL; /* see below: no scheme before */
        struct cps_kube_lease record;
        build_record(lease, NULL, &record);
        send_record(lease, STEP_CREATE, &record);
        return;
    }
    struct cps_kube_lease current;
    struct cps_err err = {0};
    if (answer->status != 200 ||
        cps_kube_decode_lease(answer->body, answer->body_len, "lease", &current, &err) != 0) {
        log_attempt_failure(lease, "get", answer);
        check_deadline(lease, now);
        return;
    }
    consider_record(lease, &current, now);
}

/* Decide on a Lease record read now (or, at its expiry, the one observed
 * unchanged for lease_duration): renew it if ours, take it if free or
 * expired (or, with a policy, from a live holder), else wait. The write
 * carries the record's resourceVersion, so it succeeds only if nobody
 * wrote the Lease since; a 409 ends the attempt. */
static void consider_record(struct cps_lease *lease, const struct cps_kube_lease *current,
                            int64_t now)
{
    observe(lease, current, now);
    int ours = strcmp(current->holder_identity, lease->identity) == 0;
    int64_t duration_ms = (int64_t)current->lease_duration_s * CPS_MS_PER_S;
    int live_holder = current->holder_identity[0] && lease->observed_at_ms + duration_ms > now;
    if (!ours && live_holder) {
        set_leading(lease, 0, "the lease is held by another replica");
        if (lease->policy)
            wake_at_expiry(lease, lease->observed_at_ms + duration_ms - now);
        if (!lease->policy || !lease->policy(current->holder_identity, lease->user))
            return;
        lease->stealing = 1;
    } else if (!ours && lease->policy && !lease->policy("", lease->user)) {
        look_again_soon(lease); /* free or expired, but not ours to take now */
        return;
    } else if (!ours && lease->shard_scheme &&
               strcmp(current->shard_scheme, lease->shard_scheme) != 0) {
        /* last written under another scheme (or none): a replica of that
         * scheme may act on its own Leases until it reads this one, within
         * a retry period; waiting out renew_deadline covers that */
        lease->stealing = 1;
    }
    struct cps_kube_lease record;
    build_record(lease, current, &record);
    send_record(lease, STEP_UPDATE, &record);
}

/* The record another replica holds, seen unchanged for its whole
 * lease_duration by our clock: expired, by client-go's rule. */
static int observed_expired(const struct cps_lease *lease, int64_t now)
{
    const struct cps_kube_lease *o = &lease->observed;
    return lease->have_observed && o->holder_identity[0] &&
           strcmp(o->holder_identity, lease->identity) != 0 &&
           lease->observed_at_ms + (int64_t)o->lease_duration_s * CPS_MS_PER_S <= now;
}

/* libev: time for the next acquire-or-renew attempt. */
static void retry_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_lease *lease = timer->data;
    int64_t now = cps_monotonic_ms();
    check_deadline(lease, now);
    if (lease->in_flight || lease->released)
        return; /* the previous attempt is still out; its own timeout ends it */
    lease->attempt_started_ms = now;
    lease->stealing = 0;
    int at_expiry = lease->expiry_wake;
    lease->expiry_wake = 0;
    if (at_expiry && observed_expired(lease, now)) {
        /* A shard's dead holder: write over the record we watched expire,
         * with its resourceVersion, instead of reading it first. A read
         * would return the same record (any write since makes ours fail
         * with 409), so this only saves a round trip from the hand-over. */
        struct cps_kube_lease seen = lease->observed;
        consider_record(lease, &seen, now);
        return;
    }
    if (lease_request(lease, "get", "GET", lease->lease_path, NULL, get_done_cb) == 0)
        lease->step = STEP_GET;
}

struct cps_lease *cps_lease_new(struct ev_loop *loop, struct cps_kube *kube,
                                const struct cps_lease_options *options,
                                cps_lease_change_cb *change_cb, void *user)
{
    struct cps_lease *lease = calloc(1, sizeof *lease);
    if (!lease)
        return NULL;
    lease->loop = loop;
    lease->kube = kube;
    lease->namespace = strdup(options->namespace);
    lease->name = strdup(options->name);
    lease->identity = strdup(options->identity);
    lease->lease_path =
        cps_kube_path("coordination.k8s.io/v1", options->namespace, "leases", options->name, NULL);
    lease->leases_path =
        cps_kube_path("coordination.k8s.io/v1", options->namespace, "leases", NULL, NULL);
    lease->lease_duration_ms = options->lease_duration_ms;
    lease->renew_deadline_ms = options->renew_deadline_ms;
    lease->retry_period_ms = options->retry_period_ms;
    lease->request_timeout_ms = options->request_timeout_ms;
    lease->shard_scheme = options->shard_scheme ? strdup(options->shard_scheme) : NULL;
    lease->change_cb = change_cb;
    lease->user = user;
    if (!lease->namespace || !lease->name || !lease->identity || !lease->lease_path ||
        !lease->leases_path) {
        cps_lease_free(lease);
        return NULL;
    }
    ev_timer_init(&lease->timer, retry_cb, 0.0, (double)options->retry_period_ms / CPS_MS_PER_S);
    lease->timer.data = lease;
    return lease;
}

void cps_lease_start(struct cps_lease *lease)
{
    ev_timer_start(lease->loop, &lease->timer);
}

int32_t cps_lease_transitions(const struct cps_lease *lease)
{
    return lease->have_observed ? lease->observed.lease_transitions : 0;
}

/* Hand over to the release's done callback, once. */
static void finish_release(struct cps_lease *lease)
{
    void (*done_cb)(void *user) = lease->release_done_cb;
    lease->release_done_cb = NULL;
    if (done_cb)
        done_cb(lease->release_user);
}

/* PUT `current` back with an empty holder and a 1 s duration, carrying its
 * resourceVersion; 0 when the request is out (write_done_cb answers it). */
static int send_release(struct cps_lease *lease, const struct cps_kube_lease *current)
{
    struct cps_kube_lease record = *current;
    record.holder_identity[0] = '\0';
    record.lease_duration_s = RELEASED_LEASE_DURATION_S;
    record.renew_time_ms = cps_wall_ms();
    char *body = cps_kube_encode_lease(lease->namespace, lease->name, &record);
    int rc = body ? lease_request(lease, "update", "PUT", lease->lease_path, body, write_done_cb)
                  : -1;
    free(body);
    if (rc == 0)
        lease->step = STEP_RELEASE;
    return rc;
}

/*
 * The Lease as read for the release. Still ours: released with the
 * resourceVersion just read. Anyone else's, or none (404): nothing of ours
 * is left to release, and another holder's record is never emptied. Not
 * readable (no answer, 5xx, a body that does not decode): the record we
 * last saw is released if it names us, as without the read; its
 * resourceVersion may be stale, which costs a 409, never another's Lease.
 */
static void release_get_done_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_lease *lease = user;
    lease->in_flight = NULL;
    lease->step = STEP_IDLE;
    struct cps_kube_lease current;
    struct cps_err err = {0};
    const struct cps_kube_lease *ours = NULL;
    if (answer->status == 200 &&
        cps_kube_decode_lease(answer->body, answer->body_len, "lease", &current, &err) == 0) {
        if (strcmp(current.holder_identity, lease->identity) == 0)
            ours = &current;
    } else if (answer->status != 404) {
        log_attempt_failure(lease, "release", answer);
        if (lease->have_observed && strcmp(lease->observed.holder_identity, lease->identity) == 0)
            ours = &lease->observed;
    }
    if (ours && send_release(lease, ours) == 0)
        return;
    finish_release(lease);
}

/* Read the Lease before releasing it (at most RELEASE_READS_MAX times a
 * release): the record we hold may be older than the server's, as when a
 * write of ours was cancelled after the server had applied it. */
static void release_after_read(struct cps_lease *lease)
{
    lease->release_reads++;
    if (lease_request(lease, "get", "GET", lease->lease_path, NULL, release_get_done_cb) == 0)
        lease->step = STEP_RELEASE_GET;
    else
        finish_release(lease);
}

/*
 * Shutting down: no more attempts, and the Lease is handed back if it may
 * be ours. A write of ours still in flight is cancelled on our side, but
 * the server may have applied it already (a renewal, or a take of the
 * Lease), so then the release reads the Lease first and empties it only if
 * it names us. A leader with nothing in flight PUTs its observed record at
 * once. A release PUT that meets 409 (written since: the server may also
 * apply a cancelled write after answering our read) reads and tries again,
 * within RELEASE_READS_MAX reads. Without that, a renewal cancelled
 * mid-flight left the Lease held until it expired, and a standby waited
 * out lease_duration. A second call (a second SIGTERM) while the release
 * is under way only takes over the callback, so the release goes on; once
 * it has finished, the callback is called at once.
 */
void cps_lease_release(struct cps_lease *lease, void (*done_cb)(void *user), void *user)
{
    if (lease->released) {
        if (lease->in_flight) {
            lease->release_done_cb = done_cb;
            lease->release_user = user;
        } else if (done_cb) {
            done_cb(user);
        }
        return;
    }
    ev_timer_stop(lease->loop, &lease->timer);
    int write_in_flight = 0;
    if (lease->in_flight) {
        write_in_flight = lease->step == STEP_CREATE || lease->step == STEP_UPDATE;
        cps_http_cancel(lease->in_flight);
        lease->in_flight = NULL;
        lease->step = STEP_IDLE;
    }
    int was_leading = lease->leading;
    lease->released = 1;
    set_leading(lease, 0, "shutting down");
    lease->release_done_cb = done_cb;
    lease->release_user = user;
    if (write_in_flight)
        release_after_read(lease);
    else if (!was_leading || !lease->have_observed || send_release(lease, &lease->observed) != 0)
        finish_release(lease);
}

void cps_lease_free(struct cps_lease *lease)
{
    if (!lease)
        return;
    if (lease->loop)
        ev_timer_stop(lease->loop, &lease->timer);
    free(lease->namespace);
    free(lease->name);
    free(lease->identity);
    free(lease->lease_path);
    free(lease->leases_path);
    free(lease->shard_scheme);
    free(lease);
}
