/*
 * The controller's own counters, in the manner of the HPA's `monitor`:
 * the tick records what happened through these functions, and the /metrics
 * rendering (cps_metrics_render, controller.h) reads them. Nothing here
 * knows the tick. The struct is embedded in the controller (no allocation).
 */
#ifndef CPS_METRICS_H
#define CPS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "metric.h"
#include "prom.h"

#define CPS_TICK_BUCKETS 12 /* tick duration histogram buckets */

/* The metrics the controller queries (ready replicas come from the
 * Deployment, never from Prometheus), in the order of its query plan and
 * of cpscale_query_errors_total. */
#define CPS_CONTROLLER_N_QUERIED 6
extern const enum cps_metric cps_controller_queried[CPS_CONTROLLER_N_QUERIED];

/* What became of a target's backfill (cpscale_policy_backfill_total). */
enum cps_backfill_result {
    CPS_BACKFILL_OK = 0,   /* the backfilled state was swapped in */
    CPS_BACKFILL_FAILED,   /* the history could not be read */
    CPS_BACKFILL_SKIPPED,  /* no history, the target gone, or the live state learned first */
    CPS_BACKFILL_RESULT_COUNT
};

/* The backfill's counters (backfill.c records, metrics.c renders). */
struct cps_backfill_metrics {
    uint64_t results[CPS_BACKFILL_RESULT_COUNT];
    double replayed_seconds; /* history replayed into states that were swapped in */
};

struct cps_metrics {
    uint64_t ticks, ticks_skipped;
    uint64_t tick_buckets[CPS_TICK_BUCKETS];
    double tick_seconds_sum;
    double last_tick_cpu_s;
    uint64_t query_errors[CPS_METRIC_QUERIED][CPS_PROM_ERROR_COUNT];
    uint64_t scale_events;
    uint64_t reloads_ok, reloads_refused;
    uint64_t writes_dropped_not_leader, writes_dropped_stale;
    struct cps_backfill_metrics backfill;
};

/* Upper bounds of the tick duration histogram, seconds. */
extern const double cps_tick_bucket_bounds[CPS_TICK_BUCKETS];

/* A tick ended after `seconds`, the process having used `cpu_seconds`. */
void cps_metrics_record_tick(struct cps_metrics *m, double seconds, double cpu_seconds);
void cps_metrics_record_tick_skipped(struct cps_metrics *m);
void cps_metrics_record_query_error(struct cps_metrics *m, enum cps_metric metric,
                                    enum cps_prom_error error);
void cps_metrics_record_scale(struct cps_metrics *m);
/* A PATCH was dropped before it was sent: the Lease was lost (stale = 0)
 * or it had waited past one interval (stale = 1). */
void cps_metrics_record_write_dropped(struct cps_metrics *m, int stale);
/* A config reload was accepted (ok = 1) or refused. */
void cps_metrics_record_reload(struct cps_metrics *m, int ok);
/* `targets` backfills ended with `result`; `replayed_seconds` of history
 * went into states that were swapped in. */
void cps_metrics_record_backfill(struct cps_metrics *m, enum cps_backfill_result result,
                                 size_t targets, double replayed_seconds);

#endif
