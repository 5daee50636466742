/*
 * The controller's Events about rescales (events.k8s.io/v1), aggregated
 * and rate limited as client-go's event broadcaster and correlator do, so
 * a PATCH that keeps failing does not post one Event per tick:
 *  - an Event isomorphic to the target's open series (same type, reason
 *    and message key, same regarding object) within EVENT_SERIES_WINDOW_MS
 *    is not posted again: its count grows, and the existing Event's
 *    `series` {count, lastObservedTime} is PATCHed; the first repeat at
 *    once (as client-go does), later ones at most every
 *    EVENT_SERIES_HEARTBEAT_MS;
 *  - every write (POST or PATCH) of a target takes a token from a bucket
 *    of EVENT_BURST refilled one per EVENT_REFILL_MS (client-go's
 *    EventSourceObjectSpamFilter values); without a token the occurrence
 *    is only counted.
 * Every Event carries regarding.uid, since `kubectl describe` selects
 * Events by the object's uid. An Event is a write like a PATCH: each one
 * asks the caller's start check (tick.c's: the Lease) when it leaves the
 * HTTP queue, so a write queued before a step-down is dropped unsent (and
 * spends no token).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "log.h"
#include "units.h"

#define US_PER_MS 1000
#define EVENT_SERIES_WINDOW_MS (6 * 60 * 1000)    /* client-go: a series ends after 6 min quiet */
#define EVENT_SERIES_HEARTBEAT_MS (60 * 1000)     /* a growing series is rewritten at most this often */
#define EVENT_BURST 25.0                          /* client-go's spam filter burst ... */
#define EVENT_REFILL_MS (5 * 60 * 1000)           /* ... and refill (one token per 5 min) */

/* Refill the target's bucket up to now and take one token if there is one. */
static int take_token(struct cps_event_series *s, int64_t now_ms)
{
    if (!s->tokens_started) {
        s->tokens_started = 1;
        s->tokens = EVENT_BURST;
        s->tokens_ms = now_ms;
    }
    if (now_ms > s->tokens_ms) {
        s->tokens += (double)(now_ms - s->tokens_ms) / EVENT_REFILL_MS;
        if (s->tokens > EVENT_BURST)
            s->tokens = EVENT_BURST;
        s->tokens_ms = now_ms;
    }
    if (s->tokens < 1.0)
        return 0;
    s->tokens -= 1.0;
    return 1;
}

/* A write that never reached the server (its start check refused it, at
 * once or when it left the queue, or it could not start) spends nothing:
 * its token goes back, and a POST's series is forgotten, since no Event
 * holds it (the next occurrence posts anew instead of only counting into
 * an Event that does not exist). A dropped series PATCH leaves the series
 * as the server holds it; a later occurrence writes the count. */
static void write_unsent(struct cps_event_series *s)
{
    s->tokens += 1.0;
    if (s->tokens > EVENT_BURST)
        s->tokens = EVENT_BURST;
    if (s->written < 1) /* a POST: a series PATCH needs a written Event */
        s->key[0] = '\0';
}

/* The answer to a POST or series PATCH: note what the server now holds
 * (a PATCH of an Event that is gone starts a new series next time). A
 * write dropped unsent is given back (write_unsent). Either way
 * answered_cb follows, once per write that went out. */
static void event_written_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_target_runtime *rt = user; /* stable during a tick: reloads wait for its end */
    struct cps_controller *ctl = rt->controller;
    struct cps_event_series *s = rt->events; /* set: a write went out */
    rt->event_request = NULL;
    if (answer->dropped) {
        write_unsent(s);
        cps_metrics_record_write_dropped(&ctl->metrics, 0);
        struct cps_log_line line;
        cps_log_begin(&line, CPS_LOG_INFO, "event dropped unsent");
        char key[CPS_TARGET_KEY_MAX];
        cps_log_str(&line, "target", cps_target_key(rt, key, sizeof key));
        cps_log_str(&line, "why", "not leader: the Lease or the target's shard was lost");
        cps_log_end(&line);
    } else if (answer->status == 201 || answer->status == 200) {
        s->written = s->sending;
        s->written_ms = cps_monotonic_ms();
    } else {
        if (answer->status == 404 && s->sending > 1)
            s->key[0] = '\0';
        struct cps_log_line line;
        cps_log_begin(&line, CPS_LOG_WARN, "could not post the event");
        char key[CPS_TARGET_KEY_MAX];
        cps_log_str(&line, "target", cps_target_key(rt, key, sizeof key));
        cps_log_int(&line, "code", answer->status);
        if (answer->error)
            cps_log_str(&line, "error", answer->error);
        cps_log_end(&line);
    }
    if (s->answered_cb)
        s->answered_cb(ctl);
}

/* Send one Event write (`verb` "create" or "patch") in the write lane,
 * asking start_cb(rt) when it leaves the queue. 1 when it went out
 * (event_written_cb follows); 0 when it could not start or its start
 * check refused it at once (given back: write_unsent). */
static int send_write(struct cps_controller *ctl, struct cps_target_runtime *rt,
                      int (*start_cb)(void *rt), const char *verb, const char *method,
                      const char *path, const char *content_type, const char *body)
{
    struct cps_kube_call call = {
        .verb = verb, .resource = "events", .method = method, .path = path,
        .content_type = content_type, .body = body,
        .timeout_ms = ctl->options.kube_timeout_ms, .lane = CPS_HTTP_LANE_WRITE,
        .start_cb = start_cb,
    };
    if (cps_kube_call(ctl->kube, &call, event_written_cb, rt, &rt->event_request) == 0)
        return 1;
    write_unsent(rt->events);
    return 0;
}

/* PATCH the open series' count and lastObservedTime into its Event. */
static int patch_series(struct cps_controller *ctl, struct cps_target_runtime *rt,
                        int (*start_cb)(void *rt))
{
    struct cps_event_series *s = rt->events;
    char *body = cps_kube_encode_event_series(s->count, s->last_observed_us);
    if (!body)
        return 0;
    char *events_path = cps_targets_path(rt, CPS_PATH_EVENTS);
    if (!events_path) {
        free(body);
        return 0;
    }
    char path[CPS_EVENT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", events_path, s->name);
    free(events_path);
    s->sending = s->count;
    int sent = send_write(ctl, rt, start_cb, "patch", "PATCH", path,
                          "application/merge-patch+json", body);
    free(body);
    return sent;
}

/* POST a new Event and open a series with it. */
static int post_new(struct cps_controller *ctl, struct cps_target_runtime *rt,
                    const struct cps_kube_event *event, const char *key,
                    int (*start_cb)(void *rt))
{
    struct cps_event_series *s = rt->events;
    char *body = cps_kube_encode_event(event);
    char *events_path = cps_targets_path(rt, CPS_PATH_EVENTS);
    if (!body || !events_path) {
        free(body);
        free(events_path);
        return 0;
    }
    snprintf(s->key, sizeof s->key, "%s", key);
    cps_kube_event_name(event->regarding_name, event->event_time_us, s->name, sizeof s->name);
    s->count = 1;
    s->written = 0;
    s->sending = 1;
    int sent = send_write(ctl, rt, start_cb, "create", "POST", events_path,
                          "application/json", body);
    free(body);
    free(events_path);
    return sent;
}

/*
 * Record one occurrence of `event` (its regarding_uid filled in here) on
 * target `rt`; `key` is its message key (occurrences with equal keys are
 * one series). Each write asks start_cb(rt) when it leaves the HTTP
 * queue (the Lease: the caller checked it before calling, and it may be
 * lost while the write waits). Returns 1 when a write went out:
 * answered_cb(ctl) is then called with its answer, also when start_cb
 * drops it unsent; 0 when the occurrence was only counted (or, out of
 * memory or refused at once by start_cb, dropped). The series is
 * allocated on a target's first Event: most targets never rescale, and
 * it is 728 bytes.
 */
int cps_events_record(struct cps_controller *ctl, struct cps_target_runtime *rt,
                      struct cps_kube_event *event, const char *key,
                      void (*answered_cb)(struct cps_controller *ctl),
                      int (*start_cb)(void *rt))
{
    if (!rt->events && !(rt->events = calloc(1, sizeof *rt->events)))
        return 0;
    struct cps_event_series *s = rt->events;
    int64_t now = cps_monotonic_ms();
    s->answered_cb = answered_cb;
    if (rt->event_request)
        return 0; /* one write at a time per target */
    if (s->key[0] && strcmp(s->key, key) == 0 && now - s->last_observed_ms <= EVENT_SERIES_WINDOW_MS) {
        s->count++;
        s->last_observed_ms = now;
        s->last_observed_us = event->event_time_us;
        if (s->written >= 2 && now - s->written_ms < EVENT_SERIES_HEARTBEAT_MS)
            return 0;
        if (s->written < 1 || !take_token(s, now))
            return 0;
        return patch_series(ctl, rt, start_cb);
    }
    s->last_observed_ms = now;
    s->last_observed_us = event->event_time_us;
    if (!take_token(s, now)) {
        return 0;
    }
    return post_new(ctl, rt, event, key, start_cb);
}
