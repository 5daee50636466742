/*
 * The controller's tick: fetch (Kubernetes reads and Prometheus queries,
 * in parallel), then decide and act for each target, then report (one log
 * line per target, /metrics). Every callback finds its controller through
 * its request context (the target runtime or the tick query), never a
 * process global.
 */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "controller.h"
#include "log.h"
#include "units.h"

#define JITTER_LOW 0.5 /* the backoff jitter is drawn in [0.5, 1.5) */
#define PER_MILLION 1e6
#define US_PER_MS 1000

static void tick_finish(struct cps_controller *ctl);

/* After a 429 or 5xx: wait as cps_backoff_delay_ms() says. `failures`
 * counts the consecutive failures of that kind of call (reads and writes
 * apart, so a successful read does not reset the backoff of a failing
 * PATCH). */
static void back_off(struct cps_target_runtime *rt, int *failures, int64_t now_ms,
                     int64_t retry_after_ms)
{
    (*failures)++;
    double jitter = JITTER_LOW + (double)rand() / ((double)RAND_MAX + 1.0);
    rt->backoff_until_ms = now_ms + cps_backoff_delay_ms(*failures, retry_after_ms, jitter);
}

/* One fewer answer outstanding; the last one moves the tick on. */
static void tick_answer_arrived(struct cps_controller *ctl)
{
    if (ctl->tick_pending > 0)
        ctl->tick_pending--;
    if (ctl->tick_pending == 0)
        tick_finish(ctl);
}

/* Note a Kubernetes read failure for a target's log line. */
static void note_read_error(struct cps_target_runtime *rt, const char *what,
                            const struct cps_kube_answer *answer, const char *decode_error)
{
    if (rt->read_error)
        return;
    if (decode_error)
        cps_target_note_error(rt, "%s: %.280s", what, decode_error);
    else if (answer->transport_error)
        cps_target_note_error(rt, "%s: %.280s", what, answer->error);
    else {
        struct cps_kube_status status;
        cps_kube_decode_status(answer->body, answer->body_len, &status);
        cps_target_note_error(rt, "%s: HTTP %ld %s", what, answer->status, status.reason);
    }
}

/* A GET failed (or its answer did not decode: err says why): note it for
 * the log line, and back off after a 429/5xx. */
static void read_failed(struct cps_target_runtime *rt, const char *what,
                        const struct cps_kube_answer *answer, const struct cps_err *err)
{
    char text[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8];
    if (answer->status == 200)
        cps_err_format(err, text, sizeof text);
    note_read_error(rt, what, answer, answer->status == 200 ? text : NULL);
    if (cps_backoff_is_retryable(answer->status))
        back_off(rt, &rt->read_failures, cps_monotonic_ms(), answer->retry_after_ms);
}

/* A GET of the target's scale has answered: decode it into rt->scale. 1 when
 * it holds a scale, 0 (err filled when the body was bad) otherwise. */
static int scale_answer(struct cps_target_runtime *rt, const struct cps_kube_answer *answer,
                        struct cps_err *err)
{
    char key[CPS_TARGET_KEY_MAX];
    rt->scale_request = NULL;
    return answer->status == 200 &&
           cps_kube_decode_scale(answer->body, answer->body_len,
                                 cps_target_key(rt, key, sizeof key), &rt->scale, err) == 0;
}

static void scale_read_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_target_runtime *rt = user; /* stable during a tick: reloads wait for its end */
    struct cps_controller *ctl = rt->controller;
    struct cps_err err = {0};
    if (scale_answer(rt, answer, &err)) {
        rt->have_scale = 1;
        rt->read_failures = 0;
    } else {
        read_failed(rt, "GET scale", answer, &err);
    }
    tick_answer_arrived(ctl);
}

static void object_read_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_target_runtime *rt = user; /* stable during a tick: reloads wait for its end */
    struct cps_controller *ctl = rt->controller;
    rt->object_request = NULL;
    struct cps_err err = {0};
    struct cps_kube_deployment object;
    char key[CPS_TARGET_KEY_MAX];
    if (answer->status == 200 &&
        cps_kube_decode_deployment(answer->body, answer->body_len,
                                   cps_target_key(rt, key, sizeof key), &object, &err) == 0) {
        rt->have_object = 1;
        rt->object_ready = object.ready_replicas;
    } else {
        read_failed(rt, "GET object", answer, &err);
    }
    tick_answer_arrived(ctl);
}

/* A query answered: decode its body into its targets' observations
 * (targets.c); a failed query or an answer that does not decode is
 * counted and logged, and stores nothing. */
static void query_done_cb(enum cps_prom_error error, const char *body, size_t len,
                          const char *message, void *user)
{
    struct cps_tick_query *query = user;
    struct cps_controller *ctl = query->controller;
    query->request = NULL;
    char decode_message[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
    if (error == CPS_PROM_OK) {
        struct cps_err err = {0};
        if (cps_targets_take_answer(ctl, (size_t)(query - ctl->queries), body, len,
                                    cps_wall_ms(), &err) != 0) {
            error = CPS_PROM_ERROR_DECODE;
            cps_err_format(&err, decode_message, sizeof decode_message);
            message = decode_message;
        }
    }
    if (error != CPS_PROM_OK) {
        cps_metrics_record_query_error(&ctl->metrics, query->metric, error);
        struct cps_log_line line;
        cps_log_begin(&line, CPS_LOG_WARN, "query failed");
        cps_log_str(&line, "metric", cps_metric_query_key(query->metric));
        cps_log_str(&line, "error", message);
        cps_log_end(&line);
        tick_answer_arrived(ctl);
        return;
    }
    tick_answer_arrived(ctl);
}

/* The shard of a target (shards only). */
static uint32_t target_shard(const struct cps_controller *ctl, const struct cps_target_runtime *rt)
{
    return cps_shards_of(ctl->shards, rt->target->namespace, rt->target->kind, rt->target->name);
}

/* May this replica write for the target now: it holds the Lease (with
 * shards: its shard's Lease, and no other scheme is live), or there is no
 * leader election. Every write asks it, a PATCH and an Event alike: when
 * it is decided and again when it leaves the HTTP queue. */
static int may_act(const struct cps_controller *ctl, const struct cps_target_runtime *rt,
                   int64_t now_ms)
{
    if (ctl->shards)
        return cps_shards_may_act(ctl->shards, target_shard(ctl, rt), now_ms);
    return !ctl->lease || cps_lease_held(ctl->lease, now_ms);
}

/* Without warm standby a replica decides only for the targets of the
 * shards it holds: the others are neither read nor decided, and the state
 * learned while it held them is forgotten once (a later holder of the
 * shard has its own). 1 when the target sits this tick out. */
static int standby_skips(struct cps_controller *ctl, struct cps_target_runtime *rt, int64_t now)
{
    if (!ctl->shards || ctl->config->sharding.warm_standby ||
        cps_shards_holds(ctl->shards, target_shard(ctl, rt), now)) {
        rt->standby_reset = 0;
        return 0;
    }
    if (!rt->standby_reset) {
        cps_policy_state_init(rt->policy);
        cps_history_clear(rt->history);
        rt->standby_reset = 1;
    }
    rt->action = CPS_ACTION_NOT_LEADER;
    return 1;
}

/* Start a tick: reset each target's reads, send the GETs (or read the
 * watch cache) and the planned queries. Targets backing off send nothing. */
void cps_tick_begin(struct cps_controller *ctl, int64_t now)
{
    ctl->tick_running = 1;
    ctl->tick_pending = 1; /* held until every request has been sent */
    ctl->tick_started_ms = now;
    ctl->tick_now_ms = now + ctl->wall_offset_ms;
    cps_kube_refresh_token(ctl->kube, now);
    cps_prom_refresh_token(ctl->prom);
    ctl->targets_from_cache = 0;
    if (cps_targets_plan_queries(ctl) != 0)
        cps_log_message(CPS_LOG_ERROR, "out of memory planning queries", NULL);
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        rt->controller = ctl;
        rt->have_scale = rt->have_object = 0;
        rt->decided = 0;
        rt->action = CPS_ACTION_NONE;
        free(rt->read_error);
        rt->read_error = NULL;
        rt->conflict_retried = 0;
        memset(&rt->observation, 0, sizeof rt->observation);
        rt->received = 0;
        rt->series_seen = 0;
        rt->read_from_cache = 0;
        if (standby_skips(ctl, rt, now))
            continue;
        if (now < rt->backoff_until_ms) {
            rt->action = CPS_ACTION_BACKING_OFF;
            continue;
        }
        if (cps_watch_cache_read(ctl, rt, now)) {
            ctl->targets_from_cache++;
            continue;
        }
        void *user = rt;
        char *scale_path = cps_targets_path(rt, CPS_PATH_SCALE);
        char scale_of[CPS_KUBE_RESOURCE_MAX + sizeof "/scale"];
        cps_targets_scale_resource(rt, scale_of, sizeof scale_of);
        if (scale_path &&
            cps_kube_request(ctl->kube, "get", scale_of, "GET", scale_path, NULL,
                             NULL, ctl->options.kube_timeout_ms, scale_read_cb, user,
                             &rt->scale_request) == 0)
            ctl->tick_pending++;
        free(scale_path);
        char resource[CPS_KUBE_RESOURCE_MAX];
        cps_kube_resource_of_kind(rt->target->kind, resource, sizeof resource);
        char *object_path = cps_targets_path(rt, CPS_PATH_OBJECT);
        if (object_path &&
            cps_kube_request(ctl->kube, "get", resource, "GET", object_path, NULL, NULL,
                             ctl->options.kube_timeout_ms, object_read_cb, user, &rt->object_request) == 0)
            ctl->tick_pending++;
        free(object_path);
    }
    for (size_t q = 0; q < ctl->n_queries; q++) {
        struct cps_tick_query *query = &ctl->queries[q];
        char source[64];
        snprintf(source, sizeof source, "prometheus: %s", cps_metric_query_key(query->metric));
        if (cps_prom_query(ctl->prom, query->promql, source, query_done_cb, query,
                           &query->request) == 0)
            ctl->tick_pending++;
        else
            cps_metrics_record_query_error(&ctl->metrics, query->metric, CPS_PROM_ERROR_TRANSPORT);
    }
    tick_answer_arrived(ctl); /* drop the hold */
}


/* ---- decide and act ----------------------------------------------------- */

/* The uid of the object read this tick (from the watch cache or the GET
 * of its scale): kubectl describe finds Events by regarding.uid. */
static const char *target_uid(const struct cps_target_runtime *rt)
{
    return rt->read_from_cache ? rt->cached.uid : rt->scale.uid;
}

/* http: an Event write leaves the queue (events.c sends it with this);
 * send it only while this replica may still act for the target, asked
 * now as a PATCH's start is, so a write queued before a step-down or a
 * shard hand-over goes unsent. */
static int event_start_cb(void *user)
{
    const struct cps_target_runtime *rt = user;
    return may_act(rt->controller, rt, cps_monotonic_ms()) ? 0 : -1;
}

/* Record an events.k8s.io/v1 Event about a rescale (best effort; events.c
 * aggregates repeats into a series and rate limits the writes). Only
 * while this replica may still act for the target, asked now: the PATCH
 * it reports may have been answered after the Lease (or the target's
 * shard) was lost, and a replica that is not the leader writes nothing,
 * not even an Event; the occurrence is not counted into the series
 * either. event_start_cb asks again when the write leaves the queue. */
static void post_event(struct cps_controller *ctl, size_t index, int success, int32_t from,
                       int32_t to, const char *why)
{
    struct cps_target_runtime *rt = &ctl->targets[index];
    if (!may_act(ctl, rt, cps_monotonic_ms()))
        return;
    char note[512], key[CPS_EVENT_KEY_MAX];
    snprintf(note, sizeof note, "%d\xe2\x86\x92%d: %s", from, to, why);
    /* a failure's key is its target count and error, not the decision's
     * wording, so that one persistent error is one series */
    if (success)
        snprintf(key, sizeof key, "Normal/SuccessfulRescale/%.370s", note);
    else
        snprintf(key, sizeof key, "Warning/FailedRescale/%d/%.360s", to,
                 cps_target_error(rt));
    struct cps_kube_event event = {
        .namespace = rt->target->namespace,
        .regarding_kind = rt->target->kind,
        .regarding_api_version = rt->target->api_version,
        .regarding_name = rt->target->name,
        .regarding_uid = target_uid(rt),
        .type = success ? "Normal" : "Warning",
        .reason = success ? "SuccessfulRescale" : "FailedRescale",
        .action = "Scale",
        .note = note,
        .reporting_controller = "cpscale.io/controller",
        .reporting_instance = ctl->identity,
        .event_time_us = cps_wall_ms() * US_PER_MS,
    };
    if (cps_events_record(ctl, rt, &event, key, tick_answer_arrived, event_start_cb))
        ctl->tick_pending++;
}

/* Count a failed PATCH under its HTTP code (0: transport). */
static void count_failure(struct cps_target_runtime *rt, long code)
{
    if (!rt->failures && !(rt->failures = calloc(CPS_SCALE_FAILURE_CODES, sizeof *rt->failures)))
        return; /* out of memory: the failure goes uncounted */
    for (int i = 0; i < CPS_SCALE_FAILURE_CODES; i++) {
        if (rt->failures[i].count == 0 || rt->failures[i].code == code) {
            rt->failures[i].code = code;
            rt->failures[i].count++;
            return;
        }
    }
}

static void decide_and_act(struct cps_controller *ctl, size_t index);

/* Decide once more for a target whose PATCH met a 409, on the count just
 * re-read: the policy state and the stabilization history are put back
 * as they were before this tick's decision, so the tick counts once. */
static void decide_again(struct cps_controller *ctl, size_t index)
{
    struct cps_target_runtime *rt = &ctl->targets[index];
    memcpy(rt->policy, &rt->patch->policy_before, sizeof *rt->policy);
    if (rt->history) {
        rt->history->rec_start = rt->history_rec_start;
        rt->history->rec_count = rt->history_rec_count;
    }
    if (rt->decisions[rt->decision.reason] > 0)
        rt->decisions[rt->decision.reason]--;
    cps_metrics_count_slo(rt, -1);
    rt->action = CPS_ACTION_NONE;
    decide_and_act(ctl, index);
}

static void conflict_read_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_target_runtime *rt = user; /* stable during a tick: reloads wait for its end */
    struct cps_controller *ctl = rt->controller;
    struct cps_err err = {0};
    if (scale_answer(rt, answer, &err)) {
        decide_again(ctl, (size_t)(rt - ctl->targets));
    } else {
        rt->action = CPS_ACTION_CONFLICT;
        read_failed(rt, "GET scale after a conflict", answer, &err);
    }
    tick_answer_arrived(ctl);
}

/*
 * A PATCH met 409 (the object changed since it was read: a status write by
 * the deployment controller, an annotation edit). Re-read once within the
 * tick: from the watch cache when it already holds another resourceVersion
 * than the one sent, else with a GET of the scale; then decide again (same
 * rails, same Lease check) and PATCH once more. 1 when that is under way;
 * 0 when it is the second conflict of the tick (it waits for the next).
 */
static int retry_conflict(struct cps_controller *ctl, struct cps_target_runtime *rt)
{
    if (rt->conflict_retried || ctl->shutting_down)
        return 0;
    rt->conflict_retried = 1;
    if (rt->read_from_cache && rt->cached_present &&
        strcmp(rt->cached.resource_version, rt->patch->sent_rv) != 0) {
        rt->scale.spec_replicas = rt->cached.spec_replicas;
        rt->scale.status_replicas = rt->cached.status_replicas;
        memcpy(rt->scale.resource_version, rt->cached.resource_version,
               sizeof rt->scale.resource_version);
        rt->object_ready = rt->cached.ready_replicas;
        decide_again(ctl, (size_t)(rt - ctl->targets));
        return 1;
    }
    char *scale_path = cps_targets_path(rt, CPS_PATH_SCALE);
    char resource[CPS_KUBE_RESOURCE_MAX + sizeof "/scale"];
    cps_targets_scale_resource(rt, resource, sizeof resource);
    int sent = scale_path &&
               cps_kube_request(ctl->kube, "get", resource, "GET", scale_path, NULL,
                                NULL, ctl->options.kube_timeout_ms, conflict_read_cb, rt,
                                &rt->scale_request) == 0;
    free(scale_path);
    if (!sent)
        return 0;
    ctl->tick_pending++;
    return 1;
}

/* Why a PATCH may not start now: -1 when this replica does not hold the
 * Lease (asked now, not when the PATCH was queued), 1 when its decision is
 * older than one interval (a fresher tick decides again), 0 to send. */
static int patch_refusal(const struct cps_target_runtime *rt, int64_t now_ms)
{
    const struct cps_controller *ctl = rt->controller;
    if (!may_act(ctl, rt, now_ms))
        return -1;
    if (now_ms - rt->decided_at_ms > ctl->config->interval_ms)
        return 1;
    return 0;
}

/* http: the PATCH leaves the queue; send it only if it may still go. */
static int patch_start_cb(void *user)
{
    return patch_refusal(user, cps_monotonic_ms()) != 0 ? -1 : 0;
}

/* A PATCH was dropped unsent: note why, for the log line and /metrics. */
static void patch_dropped(struct cps_controller *ctl, struct cps_target_runtime *rt)
{
    int stale = patch_refusal(rt, cps_monotonic_ms()) >= 0;
    rt->action = stale ? CPS_ACTION_STALE : CPS_ACTION_NOT_LEADER;
    cps_metrics_record_write_dropped(&ctl->metrics, stale);
}

static void patch_done_cb(const struct cps_kube_answer *answer, void *user)
{
    struct cps_target_runtime *rt = user;
    struct cps_controller *ctl = rt->controller;
    size_t index = (size_t)(rt - ctl->targets);
    rt->patch_request = NULL;
    if (answer->dropped) {
        patch_dropped(ctl, rt);
        tick_answer_arrived(ctl);
        return;
    }
    int32_t from = rt->patched_from, to = rt->decision.desired;
    char reason[64]; /* "scale_up, bound by burst_memory" */
    snprintf(reason, sizeof reason, "%s, bound by %s", cps_reason_name(rt->decision.reason),
             cps_decision_bound_name(&rt->decision));
    if (answer->status == 200) {
        rt->action = CPS_ACTION_PATCHED;
        rt->write_failures = 0;
        /* as HPA does: the event enters the history once it has happened */
        cps_history_add_scale_event(rt->history, ctl->tick_now_ms, to - from);
        if (to > from)
            rt->scale_ups++;
        else
            rt->scale_downs++;
        cps_metrics_record_scale(&ctl->metrics);
        post_event(ctl, index, 1, from, to, reason);
    } else if (answer->status == 409) {
        count_failure(rt, 409);
        if (!retry_conflict(ctl, rt))
            rt->action = CPS_ACTION_CONFLICT; /* twice in a tick: read again next tick */
    } else {
        rt->action = CPS_ACTION_FAILED;
        count_failure(rt, answer->status);
        note_read_error(rt, "PATCH scale", answer, NULL);
        if (cps_backoff_is_retryable(answer->status) || answer->transport_error)
            back_off(rt, &rt->write_failures, cps_monotonic_ms(), answer->retry_after_ms);
        if (answer->status != 429) {
            char why[400];
            snprintf(why, sizeof why, "%s (failed: %s)", reason, cps_target_error(rt));
            post_event(ctl, index, 0, from, to, why);
        }
    }
    tick_answer_arrived(ctl);
}

/* Decide for one target from what was read, and PATCH when the decision
 * differs from the current count, this replica leads (checked right
 * now, not at the start of the tick), and it is not a dry run. */
static void decide_and_act(struct cps_controller *ctl, size_t index)
{
    struct cps_target_runtime *rt = &ctl->targets[index];
    if (rt->action == CPS_ACTION_BACKING_OFF || rt->standby_reset)
        return;
    if (!rt->have_scale) {
        rt->action = CPS_ACTION_NO_READ; /* no current count: nothing safe to do */
        return;
    }
    struct cps_observation *obs = &rt->observation;
    obs->replicas = rt->scale.spec_replicas;
    obs->ready_replicas = rt->have_object ? rt->object_ready : 0;
    unsigned missing = 0;
    if (!rt->have_object)
        missing |= CPS_METRIC_BIT(CPS_METRIC_READY);
    for (int q = 0; q < CPS_CONTROLLER_N_QUERIED; q++)
        if (!(rt->received & CPS_METRIC_BIT(cps_controller_queried[q])))
            missing |= CPS_METRIC_BIT(cps_controller_queried[q]);
    /* the last scrape's rate and p95 only sharpen the budget's count:
     * without them the window's count, and nothing is held for them */
    obs->budget_have = CPS_METRIC_BUDGET_BITS & ~missing;
    obs->missing = missing & ~CPS_METRIC_BUDGET_BITS;
    /* the price the decision uses, which the cost figures below use too;
     * from here on it is never missing */
    obs->cost_per_pod_hour = cps_decision_price(rt->target, obs);
    obs->missing &= ~CPS_METRIC_BIT(CPS_METRIC_COST);
    /* for decide_again(): kept per target only when a PATCH goes out */
    memcpy(&ctl->policy_before, rt->policy, sizeof *rt->policy);
    /* as Kubernetes' HPA records its initial recommendation: a target seen
     * with no history (a start, a restart, a reload that resized it, a
     * shard taken over cold) keeps its current count for the scale-down
     * window instead of dropping at the first decision. Not under --once,
     * whose one decision would then never scale down. The simulator starts
     * each run with an empty history (docs/model.md section 6). */
    if (rt->history) {
        if (!ctl->options.once)
            cps_history_record_initial(rt->history, ctl->tick_now_ms, obs->replicas);
        rt->history_rec_start = rt->history->rec_start;
        rt->history_rec_count = rt->history->rec_count;
    }
    cps_decide(rt->target, obs, rt->history, rt->policy, ctl->tick_now_ms, NULL, &rt->decision);
    rt->decided = 1;
    rt->decided_at_ms = cps_monotonic_ms();
    rt->decisions[rt->decision.reason]++;
    cps_metrics_count_slo(rt, 1);
    double pods = obs->replicas > 0 ? obs->replicas : 0;
    rt->cost_per_hour = pods * obs->cost_per_pod_hour;
    rt->cost_per_million = (obs->missing & CPS_METRIC_BIT(CPS_METRIC_QPS)) || obs->qps <= 0
                               ? NAN
                               : rt->cost_per_hour / (obs->qps * CPS_S_PER_HOUR) * PER_MILLION;

    int32_t desired = rt->decision.desired;
    if (desired == obs->replicas)
        return;
    if (rt->target->paused) {
        rt->action = CPS_ACTION_PAUSED;
        return;
    }
    if (ctl->options.dry_run) {
        rt->action = CPS_ACTION_DRY_RUN;
        return;
    }
    if (!may_act(ctl, rt, cps_monotonic_ms())) {
        rt->action = CPS_ACTION_NOT_LEADER;
        return;
    }
    /* the rails already clamp; this is the last line of defence */
    if (desired < rt->target->min_replicas || desired > rt->target->max_replicas) {
        rt->action = CPS_ACTION_FAILED;
        return;
    }
    if (!rt->patch && !(rt->patch = malloc(sizeof *rt->patch)))
        return; /* out of memory: no PATCH it could not take back */
    memcpy(&rt->patch->policy_before, &ctl->policy_before, sizeof rt->patch->policy_before);
    char *body = cps_kube_encode_scale_patch(rt->scale.resource_version, desired);
    char *scale_path = cps_targets_path(rt, CPS_PATH_SCALE);
    if (!body || !scale_path) {
        free(body);
        free(scale_path);
        return;
    }
    rt->patched_from = obs->replicas;
    memcpy(rt->patch->sent_rv, rt->scale.resource_version, sizeof rt->patch->sent_rv);
    char resource[CPS_KUBE_RESOURCE_MAX + sizeof "/scale"];
    cps_targets_scale_resource(rt, resource, sizeof resource);
    /* The Lease and the decision's age are checked again when the PATCH
     * leaves the queue (patch_start_cb), not only here. */
    struct cps_kube_call call = {
        .verb = "patch", .resource = resource, .method = "PATCH", .path = scale_path,
        .content_type = "application/merge-patch+json", .body = body,
        .timeout_ms = ctl->options.kube_timeout_ms, .lane = CPS_HTTP_LANE_WRITE,
        .start_cb = patch_start_cb,
    };
    if (cps_kube_call(ctl->kube, &call, patch_done_cb, rt, &rt->patch_request) == 0)
        ctl->tick_pending++;
    else if (patch_refusal(rt, cps_monotonic_ms()) != 0)
        patch_dropped(ctl, rt);
    free(body);
    free(scale_path);
}

static const char *action_name(enum cps_action action)
{
    static const char *const names[] = {"none",     "patched",      "dry_run",
                                        "not_leader", "paused",     "conflict",
                                        "failed",   "backing_off",  "no_read",
                                        "stale"};
    return names[action];
}

/* One log line per target per tick. */
static void log_target(const struct cps_controller *ctl, const struct cps_target_runtime *rt)
{
    (void)ctl;
    struct cps_log_line line;
    enum cps_log_level level = rt->action == CPS_ACTION_FAILED || rt->action == CPS_ACTION_NO_READ
                                   ? CPS_LOG_WARN
                                   : CPS_LOG_INFO;
    cps_log_begin(&line, level, "tick");
    if (!line.enabled)
        return; /* below the level: spare the decision's description */
    char key[CPS_TARGET_KEY_MAX];
    cps_log_str(&line, "target", cps_target_key(rt, key, sizeof key));
    if (rt->decided) {
        const struct cps_observation *obs = &rt->observation;
        cps_log_int(&line, "current", obs->replicas);
        cps_log_int(&line, "ready", obs->ready_replicas);
        cps_log_int(&line, "desired", rt->decision.desired);
        cps_log_str(&line, "reason", cps_reason_name(rt->decision.reason));
        cps_log_str(&line, "bound", cps_decision_bound_name(&rt->decision));
        cps_log_num(&line, "qps", (obs->missing & CPS_METRIC_BIT(CPS_METRIC_QPS)) ? NAN : obs->qps);
        cps_log_num(&line, "p95_ms", (obs->missing & CPS_METRIC_BIT(CPS_METRIC_P95)) ? NAN : obs->p95_ms);
        cps_log_num(&line, "cost_per_million", rt->cost_per_million);
        char detail[512];
        cps_decision_describe(&rt->decision, detail, sizeof detail);
        cps_log_str(&line, "detail", detail);
    }
    cps_log_str(&line, "action", action_name(rt->action));
    if (rt->action == CPS_ACTION_BACKING_OFF)
        cps_log_num(&line, "backoff_s",
                    (double)(rt->backoff_until_ms - cps_monotonic_ms()) / CPS_MS_PER_S);
    if (rt->read_error)
        cps_log_str(&line, "error", rt->read_error);
    cps_log_end(&line);
}

/* Publish /metrics: the controller-wide counters, and the targets'
 * figures when no tick is half done (metrics.c renders at scrape time).
 * The publisher is made on first use and owned by the server. */
static void publisher_free(void *publisher)
{
    cps_metrics_publisher_free(publisher);
}

void cps_tick_publish_metrics(struct cps_controller *ctl)
{
    if (!ctl->server)
        return;
    struct cps_metrics_publisher *pub = cps_server_metrics_source(ctl->server);
    if (!pub) {
        pub = cps_metrics_publisher_new();
        if (!pub)
            return;
        struct cps_server_metrics_source source = {
            .source = pub,
            .open = cps_metrics_stream_open,
            .read = cps_metrics_stream_read,
            .close = cps_metrics_stream_close,
            .destroy = publisher_free,
        };
        cps_server_set_metrics_source(ctl->server, &source);
    }
    if (cps_metrics_publish(pub, ctl, !ctl->tick_running) != 0)
        cps_log_message(CPS_LOG_ERROR, "out of memory publishing /metrics", NULL);
}

static double process_cpu_seconds(void)
{
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    return (double)cpu.tv_sec + (double)cpu.tv_nsec / CPS_NS_PER_S;
}

/* Everything read: decide and act for each target. Everything acted on:
 * report, and run what waited for the tick (reload, shutdown, --once). */
static void tick_finish(struct cps_controller *ctl)
{
    if (!ctl->tick_acting) {
        ctl->tick_acting = 1;
        ctl->tick_pending = 1;
        for (size_t t = 0; t < ctl->n_targets && !ctl->shutting_down; t++)
            decide_and_act(ctl, t);
        if (--ctl->tick_pending > 0)
            return; /* writes out: come back when they are answered */
    }
    ctl->tick_acting = 0;
    for (size_t t = 0; t < ctl->n_targets; t++)
        log_target(ctl, &ctl->targets[t]);
    int64_t now = cps_monotonic_ms();
    double seconds = (double)(now - ctl->tick_started_ms) / CPS_MS_PER_S;
    ctl->ticks++;
    ctl->tick_running = 0;
    cps_metrics_record_tick(&ctl->metrics, seconds, process_cpu_seconds());
    cps_tick_publish_metrics(ctl);
    /* The tick's transient heap (four answers' bodies and the series'
     * spans, MBs at 10,000 targets) is free now but fragmented: hand its
     * pages back so the resident size stays near what the targets hold. */
    malloc_trim(0);
    if (ctl->server)
        cps_server_set_ready(ctl->server, !ctl->shutting_down);
    if (ctl->tick_done_cb)
        ctl->tick_done_cb(ctl);
}

/* Cancel the tick's requests still out (shutdown grace is over). */
void cps_tick_cancel(struct cps_controller *ctl)
{
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        cps_http_cancel(rt->scale_request);
        cps_http_cancel(rt->object_request);
        cps_http_cancel(rt->patch_request);
        cps_http_cancel(rt->event_request);
        rt->scale_request = rt->object_request = rt->patch_request = rt->event_request = NULL;
    }
    for (size_t q = 0; q < ctl->n_queries; q++) {
        cps_http_cancel(ctl->queries[q].request);
        ctl->queries[q].request = NULL;
    }
}
