/*
 * Backfill (backfill.h): the policy's state rebuilt from Prometheus
 * history on a worker thread, handed back to the loop through an ev_async.
 *
 * Threads: the loop thread builds a batch (copies of the targets, the
 * queries as sent, a blocking range client) and starts its worker; the
 * worker touches only its batch, then sets `done` and wakes the loop. The
 * loop joins the worker and swaps the states in between ticks. Shutdown
 * sets `cancel` (the client's transfer aborts) and joins every worker.
 */
#include "backfill.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "json_budget.h"
#include "log.h"
#include "policy_replay.h"
#include "prom_range.h"
#include "promql.h"
#include "query_pick.h"
#include "startup_timer.h"
#include "units.h"

/* A range answer for one target's series holds at most
 * CPS_PROM_RANGE_POINTS points (~300 kB); the body cap leaves room, and
 * the JSON budget bounds the decoded tree: a point `[t,"v"],` is 3 units,
 * plus one series' labels and the envelope (promql.h). */
#define BACKFILL_MIN_STEP_MS (CPS_METRICS_WINDOW_S * 1000LL / 4)
#define BACKFILL_MAX_BODY (4u << 20)
#define UNITS_PER_POINT 4u
#define SOURCE_MAX 96

/* The metrics a backfill reads: what the policy learns from (ready
 * replicas too, which the live tick reads from the Deployment) and the
 * price. Not the budget's last-scrape rate and p95: they change no
 * decision, the replay's budget counts by the window's figures without
 * them, and two more range queries a target would take 40 % more of the
 * batch's time, which later targets need. */
#define BACKFILL_N_METRICS 5
static const enum cps_metric backfill_metrics[BACKFILL_N_METRICS] = {
    CPS_METRIC_QPS, CPS_METRIC_P95, CPS_METRIC_CPU, CPS_METRIC_READY, CPS_METRIC_COST};

/* How long the target's scale-ups took to be ready, as the controllers
 * exported it before this process started (metrics.c:
 * cpscale_policy_startup_learned_seconds, labels namespace and name, which
 * Prometheus keeps only with honor_labels): the one part of the policy
 * state the target's own history cannot rebuild, as it has no count asked
 * for to time scale-ups against. Evaluated at this process's start, over
 * the STARTUP_LOOKBACK_S before it, so that neither this process's own
 * first samples (an in-place restart keeps the pod label) nor a pod gone
 * long before count; the largest of the replicas' (a standby decides and
 * times as the leader does, but may have missed a scale-up). Without a
 * Prometheus that scrapes cpscale the answer is empty and the start-up is
 * learned again live. */
#define STARTUP_GAUGE_QUERY                                                                        \
    "max(last_over_time(cpscale_policy_startup_learned_seconds{namespace=$namespace,"              \
    "name=$deployment}[%llds]))"
#define STARTUP_LOOKBACK_S 900LL

/* One target of a batch: its config (copied), its queries as sent, and
 * what the worker made of them. */
struct backfill_job {
    struct cps_target target;
    char *queries[CPS_METRIC_QUERIED]; /* NULL: not configured */
    char *startup_query;               /* STARTUP_GAUGE_QUERY for this target, or NULL */
    double startup_restored_s;         /* what cps_startup_restore was given, or NAN */
    int single[CPS_METRIC_QUERIED];
    struct cps_policy_state state;
    struct cps_replay_stats stats;
    int failed;
    char error[CPS_ERR_TEXT_MAX];
};

struct backfill_batch {
    struct cps_backfill *owner;
    pthread_t thread;
    int thread_started;
    struct cps_prom_range_client *client;
    char *namespace_label, *deployment_label;
    int64_t end_ms, span_ms, step_ms; /* wall clock */
    int64_t restore_at_ms;            /* this process's start (STARTUP_GAUGE_QUERY), wall */
    int64_t deadline_ms;              /* monotonic */
    struct backfill_job *jobs;
    size_t n_jobs;
    atomic_int done, cancel;
    struct backfill_batch *next;
};

struct cps_backfill {
    struct ev_loop *loop;
    ev_async async;
    struct cps_controller *ctl;
    struct backfill_batch *batches;
};

/* ---- the worker thread -------------------------------------------------- */

static int batch_cancelled(void *user)
{
    struct backfill_batch *b = user;
    return atomic_load(&b->cancel) || cps_monotonic_ms() >= b->deadline_ms;
}

/* Fetch `query` over the span into values (NAN where no sample), the
 * series `match` picks, chunk by chunk, each answer held to a JSON budget
 * before it is decoded. `source` names the answer in errors. 0, or -1 with
 * err. */
static int fetch_series(struct backfill_batch *b, const char *query,
                        const struct cps_prom_match *match, const char *source,
                        const struct cps_prom_span *span, double *values, struct cps_err *err)
{
    for (size_t i = 0; i < span->n_points; i++)
        values[i] = NAN;
    size_t chunks = cps_prom_span_chunks(span);
    for (size_t c = 0; c < chunks; c++) {
        if (batch_cancelled(b))
            return cps_err_set(err, source, 0, 0, "timed out or cancelled");
        cps_prom_range_client_bound(b->client, b->deadline_ms - cps_monotonic_ms(),
                                    batch_cancelled, b);
        size_t first, len = 0;
        double start, end;
        long status = 0;
        const char *body = NULL;
        cps_prom_span_chunk(span, c, &first, &start, &end);
        if (cps_prom_query_range(b->client, query, start, end, span->step, &status, &body, &len,
                                 err) < 0)
            return -1;
        if (status != 200)
            return cps_err_set(err, source, 0, 0, "HTTP %ld from %s", status,
                               cps_prom_range_endpoint(b->client));
        size_t points = (size_t)llround((end - start) / span->step) + 1;
        size_t units = UNITS_PER_POINT * points + CPS_PROM_UNITS_PER_SERIES + CPS_PROM_UNITS_SLACK;
        if (cps_json_budget_check(body, len, units, "range answer", source, err) < 0)
            return -1;
        struct cps_prom_range_stats stats = {0};
        if (cps_prom_decode_range(body, len, span, match, source, values, &stats, err) < 0)
            return -1;
    }
    return 0;
}

/* One of the target's metrics over the span (fetch_series). */
static int fetch_metric(struct backfill_batch *b, struct backfill_job *job,
                        const struct cps_prom_span *span, enum cps_metric m, double *values,
                        struct cps_err *err)
{
    char source[SOURCE_MAX];
    snprintf(source, sizeof source, "prometheus: queries.%s", cps_metric_query_key(m));
    struct cps_prom_match match = {b->namespace_label, b->deployment_label,
                                   job->target.namespace, job->target.name, job->single[m]};
    return fetch_series(b, job->queries[m], &match, source, span, values, err);
}

/* Read back the learned start-up exported before this process started
 * (STARTUP_GAUGE_QUERY at b->restore_at_ms) into job->state, after the
 * replay, as learned then. Any failure leaves the state as replayed: the
 * gauge is there only when Prometheus scrapes cpscale, so its absence is
 * no error. */
static void restore_startup(struct backfill_batch *b, struct backfill_job *job)
{
    job->startup_restored_s = NAN;
    if (!job->startup_query)
        return;
    struct cps_err err;
    cps_err_clear(&err);
    double end = (double)b->restore_at_ms / CPS_MS_PER_S;
    double step = (double)b->step_ms / CPS_MS_PER_S;
    struct cps_prom_span span;
    /* two points, end - step and end (half a step of slack against rounding) */
    if (cps_prom_span_init(&span, end - step, end + step / 2.0, step, &err) < 0 ||
        span.n_points != 2)
        return;
    double values[2];
    struct cps_prom_match match = {"namespace", "name", job->target.namespace, job->target.name,
                                   1};
    if (fetch_series(b, job->startup_query, &match, "prometheus: start-up gauge", &span, values,
                     &err) < 0)
        return;
    double last = isfinite(values[1]) ? values[1] : values[0];
    if (!isfinite(last))
        return;
    job->startup_restored_s = last;
    cps_startup_restore(&job->state.startup, last * CPS_MS_PER_S, b->restore_at_ms);
}

/* Fetch one target's history and replay it into job->state. */
static void run_job(struct backfill_batch *b, struct backfill_job *job)
{
    struct cps_err err;
    cps_err_clear(&err);
    cps_policy_state_init(&job->state);
    struct cps_prom_span span;
    double *values[CPS_METRIC_QUERIED] = {0};
    if (cps_prom_span_init(&span, (double)(b->end_ms - b->span_ms) / CPS_MS_PER_S,
                           (double)b->end_ms / CPS_MS_PER_S, (double)b->step_ms / CPS_MS_PER_S,
                           &err) < 0)
        goto fail;
    struct cps_replay_series series = {(int64_t)llround(span.from * CPS_MS_PER_S), b->step_ms,
                                       span.n_points, {0}};
    for (int k = 0; k < BACKFILL_N_METRICS; k++) {
        enum cps_metric m = backfill_metrics[k];
        if (!job->queries[m])
            continue; /* only an optional one may have none (checked at the start) */
        values[m] = malloc(span.n_points * sizeof(double));
        if (!values[m]) {
            cps_err_set(&err, "backfill", 0, 0, "out of memory");
            goto fail;
        }
        if (fetch_metric(b, job, &span, m, values[m], &err) < 0) {
            if (!cps_metric_is_optional(m))
                goto fail;
            /* as live: without it, its stand-in */
            cps_err_clear(&err);
            continue;
        }
        series.values[m] = values[m];
    }
    if (cps_policy_replay(&job->target, &series, &job->state, &job->stats) < 0) {
        cps_err_set(&err, "backfill", 0, 0, "out of memory");
        goto fail;
    }
    restore_startup(b, job);
    for (int m = 0; m < CPS_METRIC_QUERIED; m++)
        free(values[m]);
    return;
fail:
    for (int m = 0; m < CPS_METRIC_QUERIED; m++)
        free(values[m]);
    job->failed = 1;
    cps_err_format(&err, job->error, sizeof job->error);
}

static void *batch_main(void *arg)
{
    struct backfill_batch *b = arg;
    for (size_t j = 0; j < b->n_jobs; j++) {
        if (b->jobs[j].failed)
            continue;
        run_job(b, &b->jobs[j]);
    }
    atomic_store(&b->done, 1);
    ev_async_send(b->owner->loop, &b->owner->async);
    return NULL;
}

/* ---- the loop thread ---------------------------------------------------- */

static void batch_free(struct backfill_batch *b)
{
    for (size_t j = 0; j < b->n_jobs; j++) {
        cps_target_release(&b->jobs[j].target);
        for (int m = 0; m < CPS_METRIC_QUERIED; m++)
            free(b->jobs[j].queries[m]);
        free(b->jobs[j].startup_query);
    }
    free(b->jobs);
    cps_prom_range_client_free(b->client);
    free(b->namespace_label);
    free(b->deployment_label);
    free(b);
}

/* 1 when a batch not yet applied already works on this target. */
static int in_flight(const struct cps_backfill *bf, const struct cps_target *t)
{
    for (const struct backfill_batch *b = bf->batches; b; b = b->next)
        for (size_t j = 0; j < b->n_jobs; j++)
            if (strcmp(b->jobs[j].target.namespace, t->namespace) == 0 &&
                strcmp(b->jobs[j].target.name, t->name) == 0 &&
                strcmp(b->jobs[j].target.kind, t->kind) == 0)
                return 1;
    return 0;
}

/* A job for one target: its config and its queries as sent. A target
 * without a query for a metric the policy needs fails at once (the
 * optional ones may be missing: their stand-ins serve). 0, or -1 out of
 * memory. */
static int job_init(struct cps_controller *ctl, struct backfill_job *job,
                    const struct cps_target_runtime *rt)
{
    if (cps_target_copy(&job->target, rt->target) != 0)
        return -1;
    job->startup_restored_s = NAN;
    char gauge[sizeof STARTUP_GAUGE_QUERY + 24];
    snprintf(gauge, sizeof gauge, STARTUP_GAUGE_QUERY, STARTUP_LOOKBACK_S);
    struct cps_err gauge_err;
    cps_err_clear(&gauge_err);
    /* NULL only out of memory, or for a name PromQL cannot quote: then the
     * start-up is learned again live, as without a scraped gauge */
    job->startup_query = cps_promql_substitute(gauge, rt->target->namespace, rt->target->name,
                                               &gauge_err);
    for (int k = 0; k < BACKFILL_N_METRICS; k++) {
        enum cps_metric m = backfill_metrics[k];
        const char *text = cps_query_pick(&rt->target->queries, &ctl->config->queries, m);
        if (cps_metric_is_optional(m) && text && !*text)
            text = NULL; /* an empty query turns an optional one off */
        if (!text) {
            if (!cps_metric_is_optional(m) && !job->failed) {
                job->failed = 1;
                snprintf(job->error, sizeof job->error, "no queries.%s configured",
                         cps_metric_query_key(m));
            }
            continue;
        }
        struct cps_err err;
        cps_err_clear(&err);
        job->queries[m] = cps_prom_target_query(text, &ctl->config->prometheus,
                                                rt->target->namespace, rt->target->name,
                                                &job->single[m], &err);
        if (!job->queries[m] && !job->failed) {
            job->failed = 1;
            cps_err_format(&err, job->error, sizeof job->error);
        }
    }
    return 0;
}

/* A batch for every eligible target, with its client. NULL when there is
 * none (or out of memory, or no client: logged). */
static struct backfill_batch *batch_new(struct cps_controller *ctl)
{
    size_t n = 0;
    for (size_t t = 0; t < ctl->n_targets; t++)
        if (!ctl->targets[t].policy->started && !in_flight(ctl->backfill, ctl->targets[t].target))
            n++;
    if (n == 0)
        return NULL;
    struct backfill_batch *b = calloc(1, sizeof *b);
    if (!b || !(b->jobs = calloc(n, sizeof *b->jobs)))
        goto oom;
    b->owner = ctl->backfill;
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        if (rt->policy->started || in_flight(ctl->backfill, rt->target))
            continue;
        if (job_init(ctl, &b->jobs[b->n_jobs++], rt) != 0)
            goto oom;
    }
    b->namespace_label = strdup(ctl->config->prometheus.namespace_label);
    b->deployment_label = strdup(ctl->config->prometheus.deployment_label);
    if (!b->namespace_label || !b->deployment_label)
        goto oom;
    int usage = 0;
    struct cps_err err;
    cps_err_clear(&err);
    b->client = cps_prom_range_client_new(&ctl->config->prometheus, NULL, CPS_BACKFILL_TIMEOUT_MS,
                                          BACKFILL_MAX_BODY, &usage, &err);
    if (!b->client) {
        char text[CPS_ERR_TEXT_MAX];
        cps_err_format(&err, text, sizeof text);
        cps_log_message(CPS_LOG_WARN, "backfill: no Prometheus client", text);
        cps_metrics_record_backfill(&ctl->metrics, CPS_BACKFILL_FAILED, b->n_jobs, 0.0);
        batch_free(b);
        return NULL;
    }
    /* the interval, but never finer than a quarter of the metrics window:
     * finer steps show nothing the window has not averaged away, and at a
     * test's 10 ms interval a day would be millions of points */
    b->step_ms = ctl->config->interval_ms > BACKFILL_MIN_STEP_MS ? ctl->config->interval_ms
                                                                 : BACKFILL_MIN_STEP_MS;
    b->span_ms = ctl->options.backfill_ms;
    /* the decision clock, as the ticks read it (tick.c), not the wall
     * clock: were they apart (the wall clock stepped since the start), the
     * replayed state would be ahead of the next tick or behind it */
    b->end_ms = cps_monotonic_ms() + ctl->wall_offset_ms;
    b->restore_at_ms = ctl->started_ms + ctl->wall_offset_ms;
    b->deadline_ms = cps_monotonic_ms() + CPS_BACKFILL_TIMEOUT_MS;
    return b;
oom:
    cps_log_message(CPS_LOG_ERROR, "backfill: out of memory", NULL);
    if (b)
        batch_free(b);
    return NULL;
}

void cps_backfill_start(struct cps_controller *ctl, const char *why)
{
    /* --once decides once and exits: no state would outlive the tick */
    if (!ctl->backfill || ctl->options.backfill_ms <= 0 || ctl->options.once ||
        ctl->shutting_down)
        return;
    struct backfill_batch *b = batch_new(ctl);
    if (!b)
        return;
    if (pthread_create(&b->thread, NULL, batch_main, b) != 0) {
        cps_log_message(CPS_LOG_ERROR, "backfill: cannot start a thread", NULL);
        cps_metrics_record_backfill(&ctl->metrics, CPS_BACKFILL_FAILED, b->n_jobs, 0.0);
        batch_free(b);
        return;
    }
    b->thread_started = 1;
    b->next = ctl->backfill->batches;
    ctl->backfill->batches = b;
    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_INFO, "backfill started");
    cps_log_str(&line, "why", why);
    cps_log_int(&line, "targets", (long long)b->n_jobs);
    cps_log_num(&line, "span_s", (double)b->span_ms / CPS_MS_PER_S);
    cps_log_num(&line, "step_s", (double)b->step_ms / CPS_MS_PER_S);
    cps_log_end(&line);
}

/* One finished job: swap its state in, or say why not. */
static void apply_job(struct cps_controller *ctl, const struct backfill_batch *b,
                      const struct backfill_job *job)
{
    long index = cps_targets_find(ctl, job->target.namespace, job->target.name);
    struct cps_target_runtime *rt = index >= 0 ? &ctl->targets[index] : NULL;
    const char *skip = NULL;
    if (job->failed) {
        struct cps_log_line line;
        char key[2 * CPS_KUBE_NAME_MAX];
        snprintf(key, sizeof key, "%s/%s", job->target.namespace, job->target.name);
        cps_log_begin(&line, CPS_LOG_WARN, "backfill failed");
        cps_log_str(&line, "target", key);
        cps_log_str(&line, "error", job->error);
        cps_log_end(&line);
        cps_metrics_record_backfill(&ctl->metrics, CPS_BACKFILL_FAILED, 1, 0.0);
        return;
    }
    if (!rt || strcmp(rt->target->kind, job->target.kind) != 0)
        skip = "the target is gone";
    else if (job->stats.replayed == 0)
        skip = "no history";
    else if (rt->policy->started && rt->policy->demand_count > CPS_BACKFILL_LIVE_TICKS_MAX)
        skip = "the live state has learned meanwhile";
    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_INFO, skip ? "backfill dropped" : "backfill applied");
    char key[2 * CPS_KUBE_NAME_MAX];
    snprintf(key, sizeof key, "%s/%s", job->target.namespace, job->target.name);
    cps_log_str(&line, "target", key);
    cps_log_int(&line, "steps", (long long)job->stats.replayed);
    cps_log_int(&line, "steps_missing", (long long)job->stats.skipped);
    if (skip) {
        cps_log_str(&line, "why", skip);
        cps_log_end(&line);
        cps_metrics_record_backfill(&ctl->metrics, CPS_BACKFILL_SKIPPED, 1, 0.0);
        return;
    }
    memcpy(rt->policy, &job->state, sizeof *rt->policy);
    cps_log_num(&line, "budget_spent",
                cps_slo_budget_spent(&rt->policy->budget, rt->target->slo_violation_budget));
    cps_log_num(&line, "capacity_rps", rt->policy->service_rate_estimate);
    if (isfinite(job->startup_restored_s))
        cps_log_num(&line, "startup_exported_s", job->startup_restored_s);
    cps_log_end(&line);
    cps_metrics_record_backfill(&ctl->metrics, CPS_BACKFILL_OK, 1,
                                (double)job->stats.replayed * (double)b->step_ms / CPS_MS_PER_S);
}

void cps_backfill_apply_finished(struct cps_controller *ctl)
{
    struct cps_backfill *bf = ctl->backfill;
    if (!bf || ctl->tick_running)
        return;
    struct backfill_batch **link = &bf->batches;
    while (*link) {
        struct backfill_batch *b = *link;
        if (!atomic_load(&b->done)) {
            link = &b->next;
            continue;
        }
        pthread_join(b->thread, NULL);
        *link = b->next;
        for (size_t j = 0; j < b->n_jobs; j++)
            apply_job(ctl, b, &b->jobs[j]);
        batch_free(b);
    }
}

/* libev: a worker finished. Applied now unless a tick is in flight (then
 * when it has reported). */
static void async_cb(struct ev_loop *loop, ev_async *watcher, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_backfill *bf = watcher->data;
    cps_backfill_apply_finished(bf->ctl);
}

int cps_backfill_init(struct cps_controller *ctl)
{
    struct cps_backfill *bf = calloc(1, sizeof *bf);
    if (!bf)
        return -1;
    bf->loop = ctl->loop;
    bf->ctl = ctl;
    ev_async_init(&bf->async, async_cb);
    bf->async.data = bf;
    ev_async_start(ctl->loop, &bf->async);
    ctl->backfill = bf;
    return 0;
}

void cps_backfill_free(struct cps_controller *ctl)
{
    struct cps_backfill *bf = ctl->backfill;
    if (!bf)
        return;
    for (struct backfill_batch *b = bf->batches; b; b = b->next)
        atomic_store(&b->cancel, 1);
    while (bf->batches) {
        struct backfill_batch *b = bf->batches;
        bf->batches = b->next;
        if (b->thread_started)
            pthread_join(b->thread, NULL);
        batch_free(b);
    }
    ev_async_stop(bf->loop, &bf->async);
    free(bf);
    ctl->backfill = NULL;
}
