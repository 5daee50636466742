/*
 * /metrics: the controller's state in the Prometheus text format 0.0.4.
 *
 * The loop PUBLISHES after each tick: every target's figures go into a
 * compact snapshot (numbers and the two labels, no text), and the few kB
 * of controller-wide counters are rendered into it as text. The text of
 * the per-target families is RENDERED WHEN SCRAPED, on libmicrohttpd's
 * thread, target by target into the server's small block buffer
 * (metrics_stream_read): no multi-MB string per tick, none per scrape.
 *
 * Consistency: snapshots are immutable while read. A scrape takes a
 * reference to the current snapshot under the publisher's mutex and
 * streams from it without the lock, however slow the client; the loop
 * writes a snapshot only while nobody reads it: the current one in place
 * (under the mutex, so no scrape can start meanwhile; ~1 ms at 10,000
 * targets) when no scrape holds it, else a spare, which it then swaps in.
 * So a scrape sees one tick's figures, never a mix, and never blocks a
 * tick for longer than that copy. A seqlock was not chosen because a
 * streamed scrape cannot be retried once bytes are sent; a plain mutex
 * held for a whole scrape would let a slow client stall the loop.
 * Per-target figures are taken only at the end of a tick: a publish in
 * the middle of one (leadership changed) refreshes only the
 * controller-wide part.
 */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "metrics.h"
#include "strbuf.h"

#define text_printf cps_strbuf_printf

const enum cps_metric cps_controller_queried[CPS_CONTROLLER_N_QUERIED] = {
    CPS_METRIC_QPS, CPS_METRIC_P95, CPS_METRIC_CPU, CPS_METRIC_COST, CPS_METRIC_BUDGET_QPS,
    CPS_METRIC_BUDGET_P95};

const double cps_tick_bucket_bounds[CPS_TICK_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1,    2.5,   5,    10,  30};

void cps_metrics_record_tick(struct cps_metrics *m, double seconds, double cpu_seconds)
{
    for (int b = 0; b < CPS_TICK_BUCKETS; b++)
        if (seconds <= cps_tick_bucket_bounds[b])
            m->tick_buckets[b]++;
    m->tick_seconds_sum += seconds;
    m->ticks++;
    m->last_tick_cpu_s = cpu_seconds;
}

void cps_metrics_record_tick_skipped(struct cps_metrics *m)
{
    m->ticks_skipped++;
}

void cps_metrics_record_query_error(struct cps_metrics *m, enum cps_metric metric,
                                    enum cps_prom_error error)
{
    if ((unsigned)metric < CPS_METRIC_QUERIED && (unsigned)error < CPS_PROM_ERROR_COUNT)
        m->query_errors[metric][error]++;
}

void cps_metrics_record_scale(struct cps_metrics *m)
{
    m->scale_events++;
}

void cps_metrics_record_write_dropped(struct cps_metrics *m, int stale)
{
    if (stale)
        m->writes_dropped_stale++;
    else
        m->writes_dropped_not_leader++;
}

void cps_metrics_record_reload(struct cps_metrics *m, int ok)
{
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_refused++;
}

void cps_metrics_record_backfill(struct cps_metrics *m, enum cps_backfill_result result,
                                 size_t targets, double replayed_seconds)
{
    if ((unsigned)result < CPS_BACKFILL_RESULT_COUNT)
        m->backfill.results[result] += targets;
    m->backfill.replayed_seconds += replayed_seconds;
}

static void header(struct cps_strbuf *text, const char *name, const char *type, const char *help)
{
    text_printf(text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void cps_metrics_count_slo(struct cps_target_runtime *rt, int sign)
{
    const struct cps_decision *d = &rt->decision;
    if (d->basis != CPS_BASIS_FORECAST)
        return;
    rt->slo_requests += sign * d->tick_requests;
    if (d->tick_violating)
        rt->slo_violating_requests += sign * d->tick_requests;
    if (rt->slo_requests < 0.0)
        rt->slo_requests = 0.0; /* rounding of a take-back: counters never go down */
    if (rt->slo_violating_requests < 0.0)
        rt->slo_violating_requests = 0.0;
    if (sign > 0) {
        rt->slo_counted = 1;
        rt->slo_budget_spent = d->budget_spent;
        rt->slo_burn_rate = d->burn_rate;
        rt->headroom_adjust = d->headroom_adjust;
        rt->forecast_tail = d->surprise_tail;
        rt->minute_factor = d->minute_factor;
        rt->latency_shape = d->latency_shape;
        rt->pod_safe_rps = d->rps_per_pod;
        rt->startup_s = d->startup_s;
        rt->startup_learned_s = d->startup_learned_s;
    }
}

/* A value read at the last tick: NaN (no sample) before any decision. */
static double decided(const struct cps_target_runtime *rt, double value)
{
    return rt->decided ? value : NAN;
}
/* An observed metric: NaN when it was missing at the last tick. */
static double observed(const struct cps_target_runtime *rt, enum cps_metric metric, double value)
{
    return !(rt->observation.missing & CPS_METRIC_BIT(metric)) ? decided(rt, value) : NAN;
}
/* A configured figure where 0 means "none". */
static double configured(double value)
{
    return value > 0 ? value : NAN;
}

static double pick_desired(const struct cps_target_runtime *rt)
{
    return decided(rt, rt->decision.desired);
}
static double pick_current(const struct cps_target_runtime *rt)
{
    return decided(rt, rt->observation.replicas);
}
static double pick_ready(const struct cps_target_runtime *rt)
{
    return observed(rt, CPS_METRIC_READY, rt->observation.ready_replicas);
}
static double pick_min(const struct cps_target_runtime *rt)
{
    return rt->target->min_replicas;
}
static double pick_max(const struct cps_target_runtime *rt)
{
    return rt->target->max_replicas;
}
static double pick_qps(const struct cps_target_runtime *rt)
{
    return observed(rt, CPS_METRIC_QPS, rt->observation.qps);
}
static double pick_p95(const struct cps_target_runtime *rt)
{
    return observed(rt, CPS_METRIC_P95, rt->observation.p95_ms);
}
static double pick_slo(const struct cps_target_runtime *rt)
{
    return rt->target->slo_latency_p95_ms;
}
static double pick_cost_per_million(const struct cps_target_runtime *rt)
{
    return decided(rt, rt->cost_per_million);
}
static double pick_cost_target(const struct cps_target_runtime *rt)
{
    return configured(rt->target->cost_target_per_million);
}
static double pick_cost_per_hour(const struct cps_target_runtime *rt)
{
    return decided(rt, rt->cost_per_hour);
}
static double pick_budget(const struct cps_target_runtime *rt)
{
    return configured(rt->target->cost_max_per_hour);
}
/* The SLO budget's figures: NaN (no sample) before a decision on the forecast. */
static double slo_figure(const struct cps_target_runtime *rt, double value)
{
    return rt->slo_counted ? value : NAN;
}
static double pick_slo_requests(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->slo_requests);
}
static double pick_slo_violating(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->slo_violating_requests);
}
static double pick_budget_spent(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->slo_budget_spent);
}
static double pick_burn_rate(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->slo_burn_rate);
}
static double pick_headroom_adjust(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->headroom_adjust);
}
static double pick_forecast_tail(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->forecast_tail);
}
static double pick_minute_factor(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->minute_factor);
}
static double pick_latency_shape(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->latency_shape);
}
static double pick_pod_safe_rps(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->pod_safe_rps);
}
static double pick_startup(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->startup_s);
}
static double pick_startup_learned(const struct cps_target_runtime *rt)
{
    return slo_figure(rt, rt->startup_learned_s);
}
static double pick_violation_budget(const struct cps_target_runtime *rt)
{
    return rt->target->slo_violation_budget;
}

/* The per-target families whose value is one number per target, in the
 * order they are rendered: 19 gauges, then 2 counters. */
struct target_family {
    const char *name, *help;
    double (*pick)(const struct cps_target_runtime *rt);
};
static const struct target_family target_gauges[] = {
    {"cpscale_target_desired_replicas",
     "Replicas the last decision asked for.",
     pick_desired},
    {"cpscale_target_current_replicas",
     "spec.replicas of the scale subresource at the last tick.",
     pick_current},
    {"cpscale_target_ready_replicas",
     "Ready replicas of the target at the last tick.",
     pick_ready},
    {"cpscale_target_min_replicas",
     "Configured min_replicas.",
     pick_min},
    {"cpscale_target_max_replicas",
     "Configured max_replicas.",
     pick_max},
    {"cpscale_target_qps",
     "Requests per second seen at the last tick.",
     pick_qps},
    {"cpscale_target_p95_latency_ms",
     "p95 latency seen at the last tick, milliseconds.",
     pick_p95},
    {"cpscale_target_slo_latency_p95_ms",
     "The p95 latency SLO, milliseconds.",
     pick_slo},
    {"cpscale_target_cost_per_million_requests_usd",
     "Cost per million requests at the last tick, USD.",
     pick_cost_per_million},
    {"cpscale_target_cost_target_per_million_requests_usd",
     "Configured cost target per million requests, USD.",
     pick_cost_target},
    {"cpscale_target_cost_per_hour_usd",
     "Cost of the current replicas per hour, USD.",
     pick_cost_per_hour},
    {"cpscale_target_cost_max_per_hour_usd",
     "Configured budget cap per hour, USD.",
     pick_budget},
    {"cpscale_slo_violation_budget_ratio",
     "Configured SLO violation budget: the share of requests that may be served over the "
     "SLO (0.01 = 1 %).",
     pick_violation_budget},
    {"cpscale_slo_budget_spent_ratio",
     "Share of the violation budget spent over the budget window (1 = all), at the last "
     "decision on the forecast.",
     pick_budget_spent},
    {"cpscale_slo_burn_rate",
     "Violating share of the requests over the last hour divided by the budget (1 = "
     "spending exactly the budget), at the last decision on the forecast.",
     pick_burn_rate},
    {"cpscale_policy_headroom_adjust",
     "The budget feedback's offset on the headroom, in z units of the demand spread "
     "(bounded to -4..3), at the last decision on the forecast.",
     pick_headroom_adjust},
    {"cpscale_policy_forecast_tail",
     "Where the forecast's headroom_quantile of demand surprises lies, learned, as an offset "
     "on the normal quantile in units of the demand spread (bounded to -2..6), at the last "
     "decision on the forecast.",
     pick_forecast_tail},
    {"cpscale_policy_minute_spread_factor",
     "The factor on the demand spread for the minute of the hour the forecast is judged in "
     "(0.5..1; below 1 where that minute's demand surprises are quieter than the hour's "
     "others), at the last decision on the forecast.",
     pick_minute_factor},
    {"cpscale_policy_latency_shape",
     "How much faster a pod's p95 grows with its load than an M/M/1 queue's, learned from "
     "the observed p95 (1..4; above 1 where service times are heavy-tailed), at the last "
     "decision on the forecast.",
     pick_latency_shape},
    {"cpscale_policy_pod_safe_rps",
     "Requests/s one ready pod serves within the SLO, by the learned capacity and latency "
     "line (or capacity.rps_per_pod), at the last decision on the forecast.",
     pick_pod_safe_rps},
    {"cpscale_policy_startup_seconds",
     "The start-up the policy starts a remembered burst's pods ahead by: policy.startup, or "
     "the longer one its scale-ups took to be ready (observed), at the last decision on the "
     "forecast.",
     pick_startup},
    {"cpscale_policy_startup_learned_seconds",
     "How long the target's scale-ups took to be ready, as learned (halving a day without a "
     "new time; 0 when none was timed), at the last decision on the forecast: read back by "
     "the backfill after a restart.",
     pick_startup_learned},
};
static const struct target_family target_counters[] = {
    {"cpscale_slo_requests_total",
     "Requests accounted to the SLO violation budget (the rate of the last scrape interval, "
     "else of the metrics window, times the time since the last tick), on ticks decided "
     "on the forecast.",
     pick_slo_requests},
    {"cpscale_slo_violating_requests_total",
     "Of cpscale_slo_requests_total, those of ticks whose p95 of the last scrape interval "
     "(else of the metrics window) was over the SLO.",
     pick_slo_violating},
};
#define N_GAUGES (sizeof target_gauges / sizeof target_gauges[0])
#define N_COUNTERS (sizeof target_counters / sizeof target_counters[0])
#define N_VALUES (N_GAUGES + N_COUNTERS)

static void render_globals(struct cps_strbuf *out, const struct cps_controller *ctl);

/* ---- snapshots ----------------------------------------------------------- */

/* One target's figures as of the last tick's end (NaN: no sample). */
struct snapshot_target {
    uint32_t namespace_at, name_at; /* offsets into the snapshot's labels */
    double values[N_VALUES];        /* target_gauges then target_counters */
    uint32_t decisions[CPS_REASON_COUNT];
    uint64_t scale_ups, scale_downs;
    uint32_t failures_at, n_failures; /* entries in the snapshot's failures */
};

struct snapshot {
    int readers;                   /* scrapes streaming from it, and the loop while it
                                    * fills it as a spare (publisher lock) */
    size_t n_targets, cap_targets;
    struct snapshot_target *targets;
    struct cps_strbuf labels;      /* "namespace\0name\0" per target */
    struct cps_strbuf failures;    /* struct cps_scale_failure_count entries, only the
                                    * codes a target has seen (most have none) */
    struct cps_strbuf globals;     /* the controller-wide text */
};

#define MAX_SNAPSHOTS 8 /* a snapshot neither current nor read is freed */

struct cps_metrics_publisher {
    pthread_mutex_t lock;
    struct snapshot *current;
    struct snapshot *all[MAX_SNAPSHOTS];
    size_t n_all;
};

static void snapshot_free(struct snapshot *snap)
{
    if (!snap)
        return;
    free(snap->targets);
    cps_strbuf_release(&snap->labels);
    cps_strbuf_release(&snap->failures);
    cps_strbuf_release(&snap->globals);
    free(snap);
}

/* Copy every target's figures from the table (the loop's, at a tick's
 * end). 0, or -1 out of memory (the snapshot then holds no targets). */
static int snapshot_fill_targets(struct snapshot *snap, const struct cps_controller *ctl)
{
    snap->n_targets = 0;
    snap->labels.len = 0;
    snap->failures.len = 0;
    if (ctl->n_targets > snap->cap_targets) {
        struct snapshot_target *grown = realloc(snap->targets, ctl->n_targets * sizeof *grown);
        if (!grown)
            return -1;
        snap->targets = grown;
        snap->cap_targets = ctl->n_targets;
    }
    for (size_t t = 0; t < ctl->n_targets; t++) {
        const struct cps_target_runtime *rt = &ctl->targets[t];
        struct snapshot_target *st = &snap->targets[t];
        st->namespace_at = (uint32_t)snap->labels.len;
        cps_strbuf_append(&snap->labels, rt->target->namespace, strlen(rt->target->namespace) + 1);
        st->name_at = (uint32_t)snap->labels.len;
        cps_strbuf_append(&snap->labels, rt->target->name, strlen(rt->target->name) + 1);
        for (size_t g = 0; g < N_GAUGES; g++)
            st->values[g] = target_gauges[g].pick(rt);
        for (size_t c = 0; c < N_COUNTERS; c++)
            st->values[N_GAUGES + c] = target_counters[c].pick(rt);
        memcpy(st->decisions, rt->decisions, sizeof st->decisions);
        st->scale_ups = rt->scale_ups;
        st->scale_downs = rt->scale_downs;
        st->failures_at = (uint32_t)(snap->failures.len / sizeof(struct cps_scale_failure_count));
        st->n_failures = 0;
        for (size_t f = 0; rt->failures && f < CPS_SCALE_FAILURE_CODES && rt->failures[f].count;
             f++, st->n_failures++)
            cps_strbuf_append(&snap->failures, (const char *)&rt->failures[f],
                              sizeof rt->failures[f]);
    }
    if (snap->labels.failed || snap->failures.failed)
        return -1;
    snap->n_targets = ctl->n_targets;
    return 0;
}

/* The controller-wide text, rendered anew. 0, or -1 out of memory. */
static int snapshot_fill_globals(struct snapshot *snap, const struct cps_controller *ctl)
{
    snap->globals.len = 0;
    snap->globals.failed = 0;
    render_globals(&snap->globals, ctl);
    return snap->globals.failed ? -1 : 0;
}

/* Copy `from`'s targets into `to` (a mid-tick publish keeps them). */
static int snapshot_copy_targets(struct snapshot *to, const struct snapshot *from)
{
    to->n_targets = 0;
    to->labels.len = 0;
    to->failures.len = 0;
    if (!from || from->n_targets == 0)
        return 0;
    if (from->n_targets > to->cap_targets) {
        struct snapshot_target *grown = realloc(to->targets, from->n_targets * sizeof *grown);
        if (!grown)
            return -1;
        to->targets = grown;
        to->cap_targets = from->n_targets;
    }
    memcpy(to->targets, from->targets, from->n_targets * sizeof *to->targets);
    cps_strbuf_append(&to->labels, from->labels.data, from->labels.len);
    if (from->failures.len)
        cps_strbuf_append(&to->failures, from->failures.data, from->failures.len);
    if (to->labels.failed || to->failures.failed)
        return -1;
    to->n_targets = from->n_targets;
    return 0;
}

struct cps_metrics_publisher *cps_metrics_publisher_new(void)
{
    struct cps_metrics_publisher *pub = calloc(1, sizeof *pub);
    if (pub)
        pthread_mutex_init(&pub->lock, NULL);
    return pub;
}

void cps_metrics_publisher_free(struct cps_metrics_publisher *pub)
{
    if (!pub)
        return;
    for (size_t i = 0; i < pub->n_all; i++)
        snapshot_free(pub->all[i]);
    pthread_mutex_destroy(&pub->lock);
    free(pub);
}

/* Free every snapshot that is neither current nor read (lock held): a
 * snapshot is ~270 bytes a target, and a spare is only needed while a
 * scrape still reads the current one when the loop publishes, which is
 * rare; keeping one around would cost that much memory all the time. */
static void trim_spares(struct cps_metrics_publisher *pub)
{
    for (size_t i = 0; i < pub->n_all && pub->n_all > 1;) {
        struct snapshot *snap = pub->all[i];
        if (snap != pub->current && snap->readers == 0) {
            snapshot_free(snap);
            pub->all[i] = pub->all[--pub->n_all];
        } else {
            i++;
        }
    }
}

/* An unread snapshot that is not the current one (lock held), made when
 * there is none; NULL out of memory or past MAX_SNAPSHOTS. */
static struct snapshot *take_spare(struct cps_metrics_publisher *pub)
{
    for (size_t i = 0; i < pub->n_all; i++)
        if (pub->all[i] != pub->current && pub->all[i]->readers == 0)
            return pub->all[i];
    if (pub->n_all == MAX_SNAPSHOTS)
        return NULL;
    struct snapshot *snap = calloc(1, sizeof *snap);
    if (snap)
        pub->all[pub->n_all++] = snap;
    return snap;
}

int cps_metrics_publish(struct cps_metrics_publisher *pub, const struct cps_controller *ctl,
                        int with_targets)
{
    pthread_mutex_lock(&pub->lock);
    struct snapshot *current = pub->current;
    int rc;
    if (current && current->readers == 0) {
        /* nobody reads it and nobody can start while the lock is held */
        rc = (with_targets ? snapshot_fill_targets(current, ctl) : 0) |
             snapshot_fill_globals(current, ctl);
        pthread_mutex_unlock(&pub->lock);
        return rc ? -1 : 0;
    }
    struct snapshot *spare = take_spare(pub);
    /* The loop holds the spare as a reader while it fills it outside the
     * lock: a scrape that ends meanwhile trims every snapshot neither
     * current nor read, and would otherwise free this one under us. Not
     * being current, it is reached by no scrape. */
    if (spare)
        spare->readers++;
    pthread_mutex_unlock(&pub->lock);
    if (!spare)
        return -1;
    rc = (with_targets || !current ? snapshot_fill_targets(spare, ctl)
                                   : snapshot_copy_targets(spare, current)) |
         snapshot_fill_globals(spare, ctl);
    pthread_mutex_lock(&pub->lock);
    spare->readers--;
    pub->current = spare;
    trim_spares(pub);
    pthread_mutex_unlock(&pub->lock);
    return rc ? -1 : 0;
}

/* ---- streaming ------------------------------------------------------------ */

/* Where a scrape is: a family (the per-target value families, then
 * decisions, scale events, failures, then the controller-wide text), a
 * target in it and a row of that target; `line` holds the rendered line
 * not yet handed out. */
struct metrics_stream {
    struct cps_metrics_publisher *pub;
    struct snapshot *snap;
    size_t family, target, row;
    int header_done;
    char line[2048];
    size_t line_len, line_at;
    size_t globals_at;
};

enum { FAMILY_DECISIONS = N_VALUES, FAMILY_SCALE_EVENTS, FAMILY_FAILURES, FAMILY_GLOBALS };

/* Append `value` escaped per the text format (\\, \" and \n) at out[*n],
 * never past cap - 1. */
static void put_label(char *out, size_t cap, size_t *n, const char *value)
{
    for (const char *p = value; *p && *n + 2 < cap; p++) {
        if (*p == '\\' || *p == '"' || *p == '\n') {
            out[(*n)++] = '\\';
            out[(*n)++] = *p == '\n' ? 'n' : *p;
        } else {
            out[(*n)++] = *p;
        }
    }
}

static void put_text(char *out, size_t cap, size_t *n, const char *text)
{
    size_t len = strlen(text);
    if (*n + len >= cap)
        len = *n < cap - 1 ? cap - 1 - *n : 0;
    memcpy(out + *n, text, len);
    *n += len;
}

/* `value` as "%.17g" writes it (NaN as "NaN"). Integers below 2^53 are
 * written digit by digit: the same text (%.17g prints every digit of an
 * integer under 1e17 with no exponent) for a fraction of printf's cost,
 * and most samples are counts. */
static void put_number(char *out, size_t cap, size_t *n, double value)
{
    char digits[32];
    if (isnan(value)) {
        put_text(out, cap, n, "NaN");
        return;
    }
    if (value == floor(value) && fabs(value) < 9007199254740992.0 && !(value == 0 && signbit(value))) {
        long long integer = (long long)value;
        unsigned long long magnitude = integer < 0 ? 0ULL - (unsigned long long)integer
                                                   : (unsigned long long)integer;
        size_t i = sizeof digits;
        digits[--i] = '\0';
        do {
            digits[--i] = (char)('0' + magnitude % 10);
            magnitude /= 10;
        } while (magnitude);
        if (integer < 0)
            digits[--i] = '-';
        put_text(out, cap, n, digits + i);
        return;
    }
    snprintf(digits, sizeof digits, "%.17g", value);
    put_text(out, cap, n, digits);
}

/* name{namespace="..",name=".."[,extra="..."]} value, the text the
 * per-target samples always had. */
static void stream_sample(struct metrics_stream *s, const char *metric,
                          const struct snapshot_target *st, const char *extra_label,
                          const char *extra_value, double value)
{
    char *out = s->line;
    size_t cap = sizeof s->line, n = 0;
    put_text(out, cap, &n, metric);
    put_text(out, cap, &n, "{namespace=\"");
    put_label(out, cap, &n, s->snap->labels.data + st->namespace_at);
    put_text(out, cap, &n, "\",name=\"");
    put_label(out, cap, &n, s->snap->labels.data + st->name_at);
    put_text(out, cap, &n, "\"");
    if (extra_label) {
        put_text(out, cap, &n, ",");
        put_text(out, cap, &n, extra_label);
        put_text(out, cap, &n, "=\"");
        put_label(out, cap, &n, extra_value);
        put_text(out, cap, &n, "\"");
    }
    put_text(out, cap, &n, "} ");
    put_number(out, cap, &n, value);
    put_text(out, cap, &n, "\n");
    s->line_len = n;
}

static void stream_header(struct metrics_stream *s, const char *name, const char *type,
                          const char *help)
{
    int n = snprintf(s->line, sizeof s->line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                     type);
    s->line_len = n < 0 ? 0 : (size_t)n < sizeof s->line ? (size_t)n : sizeof s->line - 1;
}

/* The per-target line of the family at (target, row), or 0 when that
 * target has no more rows in it. */
static int stream_target_row(struct metrics_stream *s)
{
    const struct snapshot_target *st = &s->snap->targets[s->target];
    if (s->family < N_VALUES) {
        double value = st->values[s->family];
        if (s->row > 0 || isnan(value))
            return 0;
        stream_sample(s, s->family < N_GAUGES ? target_gauges[s->family].name
                                              : target_counters[s->family - N_GAUGES].name,
                      st, NULL, NULL, value);
        return 1;
    }
    if (s->family == FAMILY_DECISIONS) {
        while (s->row < CPS_REASON_COUNT && !st->decisions[s->row])
            s->row++;
        if (s->row >= CPS_REASON_COUNT)
            return 0;
        stream_sample(s, "cpscale_decisions_total", st, "reason",
                      cps_reason_name((enum cps_reason)s->row), (double)st->decisions[s->row]);
        return 1;
    }
    if (s->family == FAMILY_SCALE_EVENTS) {
        if (s->row > 1)
            return 0;
        stream_sample(s, "cpscale_scale_events_total", st, "direction", s->row ? "down" : "up",
                      (double)(s->row ? st->scale_downs : st->scale_ups));
        return 1;
    }
    if (s->row >= st->n_failures)
        return 0;
    struct cps_scale_failure_count failure;
    memcpy(&failure,
           s->snap->failures.data + (st->failures_at + (size_t)s->row) * sizeof failure,
           sizeof failure);
    char code[16];
    snprintf(code, sizeof code, "%ld", failure.code);
    stream_sample(s, "cpscale_scale_failures_total", st, "code", code, (double)failure.count);
    return 1;
}

/* The header of a non-value family. */
static void stream_family_header(struct metrics_stream *s)
{
    if (s->family < N_GAUGES)
        stream_header(s, target_gauges[s->family].name, "gauge", target_gauges[s->family].help);
    else if (s->family < N_VALUES)
        stream_header(s, target_counters[s->family - N_GAUGES].name, "counter",
                      target_counters[s->family - N_GAUGES].help);
    else if (s->family == FAMILY_DECISIONS)
        stream_header(s, "cpscale_decisions_total", "counter", "Decisions by reason.");
    else if (s->family == FAMILY_SCALE_EVENTS)
        stream_header(s, "cpscale_scale_events_total", "counter",
                      "Successful rescales (PATCH of the scale subresource) by direction.");
    else
        stream_header(s, "cpscale_scale_failures_total", "counter",
                      "Failed rescales by HTTP code (0: no answer).");
}

/* Render the next line into s->line; 0 once the per-target part is done. */
static int stream_next_line(struct metrics_stream *s)
{
    while (s->family < FAMILY_GLOBALS) {
        if (!s->header_done) {
            s->header_done = 1;
            stream_family_header(s);
            return 1;
        }
        while (s->target < s->snap->n_targets) {
            int more = stream_target_row(s);
            s->row++;
            if (more)
                return 1;
            s->target++;
            s->row = 0;
        }
        s->family++;
        s->target = s->row = 0;
        s->header_done = 0;
    }
    return 0;
}

void *cps_metrics_stream_open(void *publisher)
{
    struct cps_metrics_publisher *pub = publisher;
    struct metrics_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_lock(&pub->lock);
    s->snap = pub->current;
    if (s->snap)
        s->snap->readers++;
    pthread_mutex_unlock(&pub->lock);
    s->pub = pub;
    return s;
}

long cps_metrics_stream_read(void *stream, char *buf, size_t cap)
{
    struct metrics_stream *s = stream;
    size_t filled = 0;
    while (s->snap && filled < cap) {
        if (s->line_at < s->line_len) {
            size_t n = s->line_len - s->line_at;
            if (n > cap - filled)
                n = cap - filled;
            memcpy(buf + filled, s->line + s->line_at, n);
            s->line_at += n;
            filled += n;
            continue;
        }
        s->line_at = s->line_len = 0;
        if (stream_next_line(s))
            continue;
        size_t left = s->snap->globals.len - s->globals_at;
        if (left == 0)
            break;
        if (left > cap - filled)
            left = cap - filled;
        memcpy(buf + filled, s->snap->globals.data + s->globals_at, left);
        s->globals_at += left;
        filled += left;
    }
    return (long)filled;
}

void cps_metrics_stream_close(void *stream)
{
    struct metrics_stream *s = stream;
    if (!s)
        return;
    if (s->snap) {
        pthread_mutex_lock(&s->pub->lock);
        s->snap->readers--;
        trim_spares(s->pub);
        pthread_mutex_unlock(&s->pub->lock);
    }
    free(s);
    /* The scrape ran on the HTTP server's thread, whose malloc arena keeps
     * what the connection and the response freed (~200 kB): hand it back,
     * as the loop does after a tick. A scrape comes every 15-60 s. */
    malloc_trim(0);
}

char *cps_metrics_render(const struct cps_controller *ctl, size_t *len)
{
    struct cps_metrics_publisher *pub = cps_metrics_publisher_new();
    if (!pub || cps_metrics_publish(pub, ctl, 1) != 0) {
        cps_metrics_publisher_free(pub);
        return NULL;
    }
    struct cps_strbuf text = CPS_STRBUF_INIT;
    void *stream = cps_metrics_stream_open(pub);
    char block[4096];
    long n;
    while (stream && (n = cps_metrics_stream_read(stream, block, sizeof block)) > 0)
        cps_strbuf_append(&text, block, (size_t)n);
    cps_metrics_stream_close(stream);
    cps_metrics_publisher_free(pub);
    if (!stream || text.failed) {
        cps_strbuf_release(&text);
        return NULL;
    }
    *len = text.len;
    return cps_strbuf_take(&text);
}

static void emit_kube_count(const char *verb, const char *resource, long code,
                            unsigned long long count, void *user)
{
    struct cps_strbuf *text = user;
    text_printf(text, "cpscale_kube_requests_total{verb=\"%s\",resource=\"%s\",code=\"%ld\"} %llu\n",
                verb, resource, code, count);
}

/* The backfill's block: results per target, and the history replayed. */
static void render_backfill(struct cps_strbuf *text, const struct cps_backfill_metrics *b)
{
    static const char *const names[CPS_BACKFILL_RESULT_COUNT] = {"ok", "failed", "skipped"};
    header(text, "cpscale_policy_backfill_total", "counter",
           "Policy state backfills from Prometheus history, per target, by result.");
    for (int r = 0; r < CPS_BACKFILL_RESULT_COUNT; r++)
        text_printf(text, "cpscale_policy_backfill_total{result=\"%s\"} %llu\n", names[r],
                    (unsigned long long)b->results[r]);
    header(text, "cpscale_policy_backfill_replayed_seconds_total", "counter",
           "Seconds of history replayed into the policy states that were swapped in.");
    text_printf(text, "cpscale_policy_backfill_replayed_seconds_total %.9g\n",
                b->replayed_seconds);
}

/* Everything after the per-target families: the controller-wide
 * counters (a few kB whatever the target count). */
static void render_globals(struct cps_strbuf *out, const struct cps_controller *ctl)
{
    struct cps_strbuf text = *out;
    const struct cps_metrics *m = &ctl->metrics;

    header(&text, "cpscale_query_errors_total", "counter",
           "Prometheus queries that failed, by metric and kind of error.");
    for (int q = 0; q < CPS_CONTROLLER_N_QUERIED; q++)
        for (int e = 1; e < CPS_PROM_ERROR_COUNT; e++)
            text_printf(&text, "cpscale_query_errors_total{metric=\"%s\",error=\"%s\"} %llu\n",
                        cps_metric_query_key(cps_controller_queried[q]),
                        cps_prom_error_name((enum cps_prom_error)e),
                        (unsigned long long)m->query_errors[cps_controller_queried[q]][e]);
    header(&text, "cpscale_prometheus_queries_per_tick", "gauge",
           "Distinct Prometheus queries sent in the last tick.");
    text_printf(&text, "cpscale_prometheus_queries_per_tick %zu\n", ctl->n_queries);
    header(&text, "cpscale_targets_read_from_watch", "gauge",
           "Targets whose replicas came from the LIST+WATCH cache in the last tick.");
    text_printf(&text, "cpscale_targets_read_from_watch %zu\n", ctl->targets_from_cache);
    uint64_t lists = 0;
    for (size_t i = 0; i < ctl->n_informers; i++)
        lists += cps_informer_lists(ctl->informers[i]);
    header(&text, "cpscale_watch_lists_total", "counter",
           "Complete LISTs of Deployments (the first, then one per 410 Gone or failure).");
    text_printf(&text, "cpscale_watch_lists_total %llu\n", (unsigned long long)lists);
    header(&text, "cpscale_watch_relists_total", "counter",
           "LISTs started again after a backoff, by reason (gone, watch_error, bad_event, "
           "event_too_large, no_progress, list_failed).");
    for (int r = 0; r < CPS_INFORMER_RELIST_REASON_COUNT; r++) {
        uint64_t relists = 0;
        for (size_t i = 0; i < ctl->n_informers; i++)
            relists += cps_informer_relists(ctl->informers[i], (enum cps_informer_relist_reason)r);
        text_printf(&text, "cpscale_watch_relists_total{reason=\"%s\"} %llu\n",
                    cps_informer_relist_reason_name((enum cps_informer_relist_reason)r),
                    (unsigned long long)relists);
    }
    header(&text, "cpscale_kube_requests_total", "counter",
           "Kubernetes API requests by verb, resource and HTTP code (0: no answer).");
    if (ctl->kube)
        cps_kube_each_count(ctl->kube, emit_kube_count, &text);

    header(&text, "cpscale_tick_duration_seconds", "histogram",
           "Time from the start of a tick to its last answer.");
    for (int b = 0; b < CPS_TICK_BUCKETS; b++)
        text_printf(&text, "cpscale_tick_duration_seconds_bucket{le=\"%g\"} %llu\n",
                    cps_tick_bucket_bounds[b], (unsigned long long)m->tick_buckets[b]);
    text_printf(&text, "cpscale_tick_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)m->ticks);
    text_printf(&text, "cpscale_tick_duration_seconds_sum %.9g\n", m->tick_seconds_sum);
    text_printf(&text, "cpscale_tick_duration_seconds_count %llu\n",
                (unsigned long long)m->ticks);
    header(&text, "cpscale_ticks_total", "counter", "Ticks completed.");
    text_printf(&text, "cpscale_ticks_total %llu\n", (unsigned long long)m->ticks);
    header(&text, "cpscale_ticks_skipped_total", "counter",
           "Ticks skipped because the previous one was still running.");
    text_printf(&text, "cpscale_ticks_skipped_total %llu\n",
                (unsigned long long)m->ticks_skipped);
    header(&text, "cpscale_process_cpu_seconds", "gauge",
           "CPU time the controller had used at the end of the last tick.");
    text_printf(&text, "cpscale_process_cpu_seconds %.9g\n", m->last_tick_cpu_s);

    header(&text, "cpscale_writes_dropped_total", "counter",
           "Writes dropped unsent when they left the queue: PATCHes and Event writes "
           "when the Lease was lost (not_leader), PATCHes whose decision was older than "
           "one interval (stale).");
    text_printf(&text, "cpscale_writes_dropped_total{reason=\"not_leader\"} %llu\n",
                (unsigned long long)m->writes_dropped_not_leader);
    text_printf(&text, "cpscale_writes_dropped_total{reason=\"stale\"} %llu\n",
                (unsigned long long)m->writes_dropped_stale);
    header(&text, "cpscale_leader", "gauge", "1 while this replica holds the leader Lease.");
    text_printf(&text, "cpscale_leader %d\n", ctl->lease || ctl->shards ? ctl->leading : 1);
    cps_shards_render_metrics(ctl->shards, cps_monotonic_ms(), &text);
    header(&text, "cpscale_config_generation", "gauge",
           "Configs loaded so far (1 at start, +1 per accepted reload).");
    text_printf(&text, "cpscale_config_generation %llu\n",
                (unsigned long long)ctl->config_generation);
    header(&text, "cpscale_config_reloads_total", "counter", "Config reloads by result.");
    text_printf(&text, "cpscale_config_reloads_total{result=\"ok\"} %llu\n",
                (unsigned long long)m->reloads_ok);
    text_printf(&text, "cpscale_config_reloads_total{result=\"refused\"} %llu\n",
                (unsigned long long)m->reloads_refused);
    render_backfill(&text, &m->backfill);
    header(&text, "cpscale_build_info", "gauge", "The running version.");
    text_printf(&text, "cpscale_build_info{version=\"%s\"} 1\n", CPS_VERSION);
    *out = text;
}
