#include "err.h"
#include "calibrate.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "queue_model.h"
#include "trace.h"
#include "units.h"


/* ln(20): the p95 of an exponential response time is ln(20) / rate. */
#define LN_20 2.995732273553991
/* The load per pod must spread at least this much ((p90 - p10) / p50): with
 * one load level a fast service at high load and a slow one at low load
 * give the same latency, and no fit can tell them apart. */
#define MIN_LOAD_SPREAD 0.1
/* The observed p95 must move at least this much over the span (max - min,
 * relative to the median, and in ms): a latency that never moves has no
 * visible queueing part, so base latency and service rate trade off freely.
 * (Its percentiles may not move: pooled pods queue only near saturation.) */
#define MIN_P95_SPREAD 0.001
#define MIN_P95_SPREAD_MS 0.05
/* μ's 95 % interval may be at most this wide, relative to μ. */
#define MAX_REL_INTERVAL 0.5
/* Below this R² the model explains too little of the latency to be used. */
#define MIN_R2 0.3
/* 95 % point of chi-square with 1 degree of freedom (profile interval). */
#define CHI2_95_1DOF 3.841
/* μ = (highest load per pod) + d, d searched on a log grid from
 * D_MIN_SHARE to D_MAX_SHARE times that load, then refined. */
#define GRID_POINTS 240
#define D_MIN_SHARE 1e-6
#define D_MAX_SHARE 1e4
#define GOLDEN_ITERATIONS 80
#define GOLDEN_RATIO_CONJUGATE 0.6180339887498949
/* Grid steps from the optimum to each search bound, for the interval. */
#define INTERVAL_STEPS (GRID_POINTS / 4)
#define BISECT_ITERATIONS 60
/* Outliers: residuals beyond this many robust SDs (MAD x 1.4826), but not
 * below the floor, are dropped once, if they are at most MAX_SHARE of rows. */
#define OUTLIER_MADS 5.0
#define MAD_TO_SD 1.4826
#define OUTLIER_FLOOR_MS 0.5
#define OUTLIER_MAX_SHARE 0.1
/* Pooled routing's p95 is a bisection per row and μ; bound the rows. */
#define POOLED_MAX_ROWS 2000
#define ROW_BATCH 8192
#define PERCENTILE_10 0.10
#define PERCENTILE_50 0.50
#define PERCENTILE_90 0.90
#define PERCENTILE_99 0.99

struct fit_row {
    double qps, x, y; /* rate, load per pod, observed p95 */
    int32_t c;        /* replicas rounded, for pooled routing */
};

struct fit {
    const struct fit_row *rows;
    size_t n;
    enum cps_routing routing;
    double max_x;
    double *scratch; /* n doubles, for the robust (L1) profile's median */
};

/* The queueing part of the p95 (ms) at service rate mu; INFINITY when saturated. */
static double queue_part(const struct fit *f, const struct fit_row *r, double mu)
{
    if (f->routing == CPS_ROUTING_RANDOM)
        return mu > r->x ? CPS_MS_PER_S * LN_20 / (mu - r->x) : INFINITY;
    struct cps_queue_model model = {CPS_ROUTING_POOLED, mu, 0.0};
    return cps_queue_p95_ms(&model, r->qps, r->c);
}

/* For service rate mu: the best base (>= 0) and the sum of squared errors. */
static double profile(const struct fit *f, double mu, double *base)
{
    double sum = 0.0;
    for (size_t i = 0; i < f->n; i++) {
        double g = queue_part(f, &f->rows[i], mu);
        if (!isfinite(g))
            return INFINITY;
        sum += f->rows[i].y - g;
    }
    double b = sum / (double)f->n;
    if (b < 0.0)
        b = 0.0;
    double sse = 0.0;
    for (size_t i = 0; i < f->n; i++) {
        double e = f->rows[i].y - b - queue_part(f, &f->rows[i], mu);
        sse += e * e;
    }
    if (base)
        *base = b;
    return sse;
}

/* The k-th smallest of a[0, n) (quickselect; reorders a). */
static double select_kth(double *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = a[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/*
 * The robust profile: for service rate mu, the best base under absolute
 * error is the median residual, and the loss is the sum of absolute errors.
 * A few wild rows (a deploy, a cache flush) cannot pull this fit, so its
 * residuals tell the outliers apart before the least-squares fit.
 */
static double profile_l1(const struct fit *f, double mu, double *base)
{
    for (size_t i = 0; i < f->n; i++) {
        double g = queue_part(f, &f->rows[i], mu);
        if (!isfinite(g))
            return INFINITY;
        f->scratch[i] = f->rows[i].y - g;
    }
    double b = select_kth(f->scratch, f->n, f->n / 2);
    if (b < 0.0)
        b = 0.0;
    double sae = 0.0;
    for (size_t i = 0; i < f->n; i++)
        sae += fabs(f->rows[i].y - b - queue_part(f, &f->rows[i], mu));
    if (base)
        *base = b;
    return sae;
}

/* μ from the search coordinate: the log of its distance above the highest load. */
static double mu_of(const struct fit *f, double log_d)
{
    return f->max_x + exp(log_d);
}

/*
 * Minimise the profile: a log grid over the distance of μ above the highest
 * load per pod (the model needs μ above it for every row to be finite), then
 * golden-section refinement between the best point's neighbours.
 */
static double search_mu(const struct fit *f,
                        double (*loss)(const struct fit *f, double mu, double *base),
                        double *best_log_d, double *lo_bound, double *hi_bound)
{
    double scale = f->max_x > 0.0 ? f->max_x : 1.0;
    double a = log(scale * D_MIN_SHARE), b = log(scale * D_MAX_SHARE);
    double step = (b - a) / (GRID_POINTS - 1);
    size_t best = 0;
    double best_sse = INFINITY;
    for (size_t i = 0; i < GRID_POINTS; i++) {
        double sse = loss(f, mu_of(f, a + step * (double)i), NULL);
        if (sse < best_sse) {
            best_sse = sse;
            best = i;
        }
    }
    double lo = a + step * (double)(best > 0 ? best - 1 : 0);
    double hi = a + step * (double)(best + 1 < GRID_POINTS ? best + 1 : best);
    const double ratio = GOLDEN_RATIO_CONJUGATE;
    double x1 = hi - ratio * (hi - lo), x2 = lo + ratio * (hi - lo);
    double f1 = loss(f, mu_of(f, x1), NULL), f2 = loss(f, mu_of(f, x2), NULL);
    for (int i = 0; i < GOLDEN_ITERATIONS; i++) {
        if (f1 <= f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - ratio * (hi - lo);
            f1 = loss(f, mu_of(f, x1), NULL);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + ratio * (hi - lo);
            f2 = loss(f, mu_of(f, x2), NULL);
        }
    }
    double x = f1 <= f2 ? x1 : x2, sse = f1 <= f2 ? f1 : f2;
    if (best_sse < sse) { /* the grid point itself was better (flat profile) */
        x = a + step * (double)best;
        sse = best_sse;
    }
    *best_log_d = x;
    *lo_bound = a;
    *hi_bound = b;
    return sse;
}

/*
 * One side of the profile interval: walk from the optimum towards `end` in
 * grid steps until the SSE passes `limit`, then bisect. Returns the log
 * distance where it crosses, or `end` when it never does (*open = 1).
 */
static double interval_side(const struct fit *f, double from, double end, double limit,
                            int *open)
{
    double step = (end - from) / INTERVAL_STEPS;
    double inside = from, outside = from;
    *open = 1;
    for (int i = 1; i <= INTERVAL_STEPS; i++) {
        outside = from + step * i;
        if (profile(f, mu_of(f, outside), NULL) > limit) {
            *open = 0;
            break;
        }
        inside = outside;
    }
    if (*open)
        return end;
    for (int i = 0; i < BISECT_ITERATIONS; i++) {
        double mid = 0.5 * (inside + outside);
        if (profile(f, mu_of(f, mid), NULL) > limit)
            outside = mid;
        else
            inside = mid;
    }
    return inside;
}

static int compare_double_cb(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    size_t i = (size_t)ceil(p * (double)n);
    if (i > 0)
        i--;
    return sorted[i < n ? i : n - 1];
}

/* Residuals of the fitted model, and their statistics into the result. */
static void residuals(const struct fit *f, double mu, double base, double *r)
{
    for (size_t i = 0; i < f->n; i++)
        r[i] = f->rows[i].y - base - queue_part(f, &f->rows[i], mu);
}

struct fitted {
    double mu, base, sse, log_d, lo_bound, hi_bound;
};

/* Fit with one loss (robust or least squares): the μ that minimises its
 * profile, and that μ's best base. */
static void fit_once(const struct fit *f,
                     double (*loss)(const struct fit *f, double mu, double *base),
                     struct fitted *out)
{
    out->sse = search_mu(f, loss, &out->log_d, &out->lo_bound, &out->hi_bound);
    out->mu = mu_of(f, out->log_d);
    loss(f, out->mu, &out->base);
}

/* The rows the fit can use, into used[] (returns how many): qps, p95_ms and
 * replicas present, not idle, not saturated; for pooled routing at most
 * POOLED_MAX_ROWS of them. The row counts of what was left out go to result. */
static size_t select_rows(const struct cps_calib_row *rows, size_t n,
                          const struct cps_calib_options *options, struct fit_row *used,
                          struct cps_calib_result *result)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cps_calib_row *r = &rows[i];
        if (!isfinite(r->p95_ms) || !isfinite(r->replicas) || !isfinite(r->qps)) {
            result->rows_no_columns++;
            continue;
        }
        /* pooled: the Erlang C of a row costs O(c), so rows of more than
         * CPS_POOLED_MAX_REPLICAS pods are left out to bound the work (and
         * no count wraps through int32) */
        if (options->routing == CPS_ROUTING_POOLED && r->replicas > CPS_POOLED_MAX_REPLICAS) {
            result->rows_subsampled++;
            continue;
        }
        int32_t c = r->replicas <= CPS_POOLED_MAX_REPLICAS ? (int32_t)lround(r->replicas) : 0;
        if (r->qps <= 0.0 || r->replicas <= 0.0 ||
            (options->routing == CPS_ROUTING_POOLED && c < 1)) {
            result->rows_idle++;
            continue;
        }
        if (r->p95_ms >= options->saturated_ms) {
            result->rows_saturated++;
            continue;
        }
        used[m].qps = r->qps;
        used[m].x = r->qps / r->replicas;
        used[m].y = r->p95_ms;
        used[m].c = c;
        m++;
    }
    if (options->routing == CPS_ROUTING_POOLED && m > POOLED_MAX_ROWS) {
        /* every k-th row, deterministically, spread over the whole trace */
        size_t kept = 0;
        for (size_t i = 0; i < POOLED_MAX_ROWS; i++)
            used[kept++] = used[i * m / POOLED_MAX_ROWS];
        result->rows_subsampled = m - kept;
        m = kept;
    }
    return m;
}

/*
 * A robust (L1) first fit, whose residuals find the gross outliers (a
 * deploy, a cache flush, a noisy neighbour): rows beyond OUTLIER_MADS
 * robust deviations are dropped once, from f's rows in place, when they are
 * few enough. best receives the robust fit; work is f->scratch. 0, or -1 when out of memory.
 */
static int drop_outliers(struct fit *f, struct fit_row *used, struct fitted *best,
                         struct cps_calib_result *result)
{
    double *work = f->scratch; /* f's rows are used[0, f->n) */
    size_t m = f->n;
    /* a robust first fit, whose residuals find the gross outliers (a deploy,
     * a cache flush, a noisy neighbour); they are dropped once */
    fit_once(f, profile_l1, best);
    residuals(f, best->mu, best->base, work);
    double *dev = malloc(m * sizeof *dev);
    if (!dev)
        return -1;
    memcpy(dev, work, m * sizeof *dev);
    qsort(dev, m, sizeof *dev, compare_double_cb);
    double median = percentile(dev, m, PERCENTILE_50);
    for (size_t i = 0; i < m; i++)
        dev[i] = fabs(work[i] - median);
    qsort(dev, m, sizeof *dev, compare_double_cb);
    double mad = percentile(dev, m, PERCENTILE_50);
    free(dev);
    double limit = OUTLIER_MADS * MAD_TO_SD * mad;
    if (limit < OUTLIER_FLOOR_MS)
        limit = OUTLIER_FLOOR_MS;
    size_t outliers = 0;
    for (size_t i = 0; i < m; i++)
        outliers += fabs(work[i] - median) > limit;
    if (outliers > 0 && (double)outliers <= OUTLIER_MAX_SHARE * (double)m &&
        m - outliers >= CPS_CALIB_MIN_ROWS) {
        size_t kept = 0;
        for (size_t i = 0; i < m; i++)
            if (!(fabs(work[i] - median) > limit))
                used[kept++] = used[i];
        result->rows_outliers = m - kept;
        m = kept;
        f->n = m;
        f->max_x = 0.0;
        for (size_t i = 0; i < m; i++)
            if (used[i].x > f->max_x)
                f->max_x = used[i].x;
    }
    return 0;
}

/*
 * Select the usable rows, fit, drop outliers once, fit again, then check
 * that the fit is identified before reporting it.
 */
int cps_calibrate_fit(const struct cps_calib_row *rows, size_t n,
                      const struct cps_calib_options *options, struct cps_calib_result *result,
                      struct cps_err *err)
{
    struct fit_row *used = NULL;
    double *work = NULL;
    int rc = -1;
    memset(result, 0, sizeof *result);
    result->rows_total = n;
    used = malloc((n ? n : 1) * sizeof *used);
    work = malloc((n ? n : 1) * sizeof *work);
    if (!used || !work) {
        cps_err_set(err, "calibrate", 0, 0, "out of memory");
        goto fail;
    }
    size_t m = select_rows(rows, n, options, used, result);
    if (m < CPS_CALIB_MIN_ROWS) {
        if (m == 0 && result->rows_saturated > 0)
            cps_err_set(err, "calibrate", 0, 0,
                        "every row with p95_ms is saturated (%zu rows at or above %g ms): "
                        "the latency of an overloaded service says nothing about its speed",
                        result->rows_saturated, options->saturated_ms);
        else
            cps_err_set(err, "calibrate", 0, 0,
                        "too few usable rows: %zu, need at least %d with qps > 0, p95_ms, "
                        "replicas > 0 and p95 below %g ms (%zu rows lack p95_ms or replicas, "
                        "%zu are idle, %zu saturated)",
                        m, CPS_CALIB_MIN_ROWS, options->saturated_ms, result->rows_no_columns,
                        result->rows_idle, result->rows_saturated);
        goto fail;
    }
    for (size_t i = 0; i < m; i++)
        work[i] = used[i].x;
    qsort(work, m, sizeof *work, compare_double_cb);
    result->load_min = work[0];
    result->load_max = work[m - 1];
    result->load_p10 = percentile(work, m, PERCENTILE_10);
    result->load_p50 = percentile(work, m, PERCENTILE_50);
    result->load_p90 = percentile(work, m, PERCENTILE_90);
    if (!(result->load_p90 - result->load_p10 >= MIN_LOAD_SPREAD * result->load_p50)) {
        cps_err_set(err, "calibrate", 0, 0,
                    "load per pod barely varies (10th..90th percentile %.4g..%.4g req/s per "
                    "pod; need a spread of at least %.0f %% of the median): a fast service at "
                    "high load and a slow one at low load look the same, so record a span with "
                    "busy and quiet hours",
                    result->load_p10, result->load_p90, MIN_LOAD_SPREAD * 100.0);
        goto fail;
    }
    struct fit f = {used, m, options->routing, result->load_max, work};
    struct fitted best;
    if (drop_outliers(&f, used, &best, result) < 0) {
        cps_err_set(err, "calibrate", 0, 0, "out of memory");
        goto fail;
    }
    m = f.n;
    for (size_t i = 0; i < m; i++)
        work[i] = used[i].y;
    qsort(work, m, sizeof *work, compare_double_cb);
    double y_min = work[0], y_max = work[m - 1], y50 = percentile(work, m, PERCENTILE_50);
    if (y_max - y_min < MIN_P95_SPREAD * y50 || y_max - y_min < MIN_P95_SPREAD_MS) {
        cps_err_set(err, "calibrate", 0, 0,
                    "p95 barely varies (%.6g..%.6g ms over every usable row): the queueing part "
                    "of the latency never shows, so a fast service with a slow base and a slow "
                    "service with a fast base look the same; record a span with busier hours",
                    y_min, y_max);
        goto fail;
    }
    fit_once(&f, profile, &best);
    result->rows_used = m;
    result->service_rate = best.mu;
    result->base_latency_ms = best.base;
    /* quality */
    double mean = 0.0, sst = 0.0;
    for (size_t i = 0; i < m; i++)
        mean += used[i].y;
    mean /= (double)m;
    for (size_t i = 0; i < m; i++)
        sst += (used[i].y - mean) * (used[i].y - mean);
    result->r2 = sst > 0.0 ? 1.0 - best.sse / sst : NAN;
    result->rmse_ms = sqrt(best.sse / (double)m);
    residuals(&f, best.mu, best.base, work);
    for (size_t i = 0; i < m; i++)
        work[i] = fabs(work[i]);
    qsort(work, m, sizeof *work, compare_double_cb);
    result->residual_p50_ms = percentile(work, m, PERCENTILE_50);
    result->residual_p90_ms = percentile(work, m, PERCENTILE_90);
    result->residual_p99_ms = percentile(work, m, PERCENTILE_99);
    result->residual_max_ms = percentile(work, m, 1.0);
    /* μ's 95 % profile interval: where the SSE rises by chi2(1) x the residual variance */
    double limit_sse = best.sse * (1.0 + CHI2_95_1DOF / (double)(m > 2 ? m - 2 : 1)) +
                       1e-12 * (sst > 0.0 ? sst : 1.0);
    int open_lo = 0, open_hi = 0;
    double lo = interval_side(&f, best.log_d, best.lo_bound, limit_sse, &open_lo);
    double hi = interval_side(&f, best.log_d, best.hi_bound, limit_sse, &open_hi);
    result->service_rate_lo = mu_of(&f, lo);
    result->service_rate_hi = open_hi ? INFINITY : mu_of(&f, hi);
    struct cps_queue_model model = {options->routing, best.mu, best.base};
    result->slo_safe_rps_per_pod = cps_queue_lambda_max(&model, options->slo_ms, 1);
    if (open_hi || (result->service_rate_hi - result->service_rate_lo) >
                       MAX_REL_INTERVAL * result->service_rate) {
        char hi_text[32];
        if (open_hi)
            snprintf(hi_text, sizeof hi_text, "any higher rate");
        else
            snprintf(hi_text, sizeof hi_text, "%.4g", result->service_rate_hi);
        cps_err_set(err, "calibrate", 0, 0,
                    "the rows do not pin down the service rate: anything from %.4g to %s req/s "
                    "per pod fits about as well (95 %%): the pods were never busy enough for "
                    "queueing to show (highest load %.4g req/s per pod), or the latency does not "
                    "follow the load per pod, or it is too noisy",
                    result->service_rate_lo, hi_text, result->load_max);
        goto fail;
    }
    if (!(result->r2 >= MIN_R2)) {
        cps_err_set(err, "calibrate", 0, 0,
                    "the model explains too little of the latency (R² %.3f, need %.1f): latency "
                    "here is driven by something else than the load per pod (dependencies, "
                    "garbage collection, a cache)",
                    result->r2, MIN_R2);
        goto fail;
    }
    rc = 0;
fail:
    free(work);
    free(used);
    return rc;
}

/* ---- the command ------------------------------------------------------- */

/* Rows of a trace file, kept only for the columns calibration uses. */
struct row_list {
    struct cps_calib_row *rows;
    size_t n, capacity;
};

static int add_row(struct row_list *list, const struct cps_trace_row *row)
{
    if (list->n == list->capacity) {
        size_t cap = list->capacity ? 2 * list->capacity : ROW_BATCH;
        struct cps_calib_row *grown = realloc(list->rows, cap * sizeof *grown);
        if (!grown)
            return -1;
        list->rows = grown;
        list->capacity = cap;
    }
    struct cps_calib_row *r = &list->rows[list->n++];
    r->qps = row->qps;
    r->p95_ms = row->has & CPS_TRACE_HAS_P95 ? row->p95_ms : NAN;
    r->replicas = row->has & CPS_TRACE_HAS_REPLICAS ? row->replicas : NAN;
    return 0;
}

struct row_reader {
    struct row_list *list;
    const char *path;
};

/* cps_trace_read_file's row callback: keep the row's columns. */
static int add_row_cb(void *ctx, const struct cps_trace_row *row, struct cps_err *err)
{
    struct row_reader *reader = ctx;
    if (add_row(reader->list, row) < 0)
        return cps_err_set(err, reader->path, 0, 0, "out of memory");
    return 0;
}

int cps_calibrate_read_trace(const char *path, struct cps_calib_row **rows, size_t *n,
                             struct cps_err *err)
{
    struct row_list list = {0};
    struct row_reader reader = {&list, path};
    if (cps_trace_read_file(path, add_row_cb, &reader, err) < 0) {
        free(list.rows);
        return -1;
    }
    *rows = list.rows;
    *n = list.n;
    return 0;
}

/* The human report: rows used and left out (and why), the fitted values with
 * μ's interval, the quality of the fit, the load seen, then the `sim:`
 * section, base latency in whole ms as the config stores it. */
int cps_calibrate_write_report(FILE *out, const char *path, const struct cps_calib_options *o,
                                const struct cps_calib_result *r)
{
    int pooled = o->routing == CPS_ROUTING_POOLED;
    fprintf(out, "calibrate %s: %zu rows, %zu used", path, r->rows_total, r->rows_used);
    fprintf(out, " (left out: %zu without p95_ms or replicas, %zu idle, %zu saturated at p95 >= "
            "%g ms, %zu outliers",
            r->rows_no_columns, r->rows_idle, r->rows_saturated, o->saturated_ms,
            r->rows_outliers);
    if (r->rows_subsampled)
        fprintf(out, ", %zu skipped to bound the pooled fit", r->rows_subsampled);
    fprintf(out, ")\n");
    fprintf(out, "model (%s routing): %s\n\n", pooled ? "pooled" : "random",
            pooled ? "p95 = base + the 95th percentile of an M/M/c response time"
                   : "p95 = base + 1000 ln(20) / (mu - qps/replicas) ms");
    fprintf(out, "service rate mu   %.6g req/s per ready pod (95 %% interval %.6g .. %.6g)\n",
            r->service_rate, r->service_rate_lo, r->service_rate_hi);
    fprintf(out, "base latency      %.4g ms\n", r->base_latency_ms);
    fprintf(out, "fit               R² %.4f, RMSE %.4g ms; |residual| p50 %.4g, p90 %.4g, "
            "p99 %.4g, max %.4g ms\n",
            r->r2, r->rmse_ms, r->residual_p50_ms, r->residual_p90_ms, r->residual_p99_ms,
            r->residual_max_ms);
    fprintf(out, "load per pod      %.4g .. %.4g req/s (p10 %.4g, median %.4g, p90 %.4g); "
            "up to %.0f %% of mu\n",
            r->load_min, r->load_max, r->load_p10, r->load_p50, r->load_p90,
            100.0 * r->load_max / r->service_rate);
    fprintf(out, "\n# for config.yaml (fitted by cpscale calibrate from %zu rows of %s)\n",
            r->rows_used, path);
    if (r->slo_safe_rps_per_pod > 0.0)
        fprintf(out, "# at a p95 SLO of %g ms one pod serves %.4g req/s "
                "(defaults: capacity: rps_per_pod, if not auto)\n",
                o->slo_ms, r->slo_safe_rps_per_pod);
    else
        fprintf(out, "# the base latency is above the %g ms SLO: no pod count meets it\n",
                o->slo_ms);
    /* base latency in whole ms: the config's duration resolution */
    long base_ms = lround(r->base_latency_ms);
    fprintf(out, "sim:\n  service_rate: %.6g\n  base_latency: %ldms\n  routing: %s\n",
            r->service_rate, base_ms < 1 ? 1L : base_ms, pooled ? "pooled" : "random");
    return ferror(out) ? -1 : 0;
}

static json_t *finite_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* keys[i] = values[i] as JSON reals in o, in order. */
static void set_reals(json_t *o, const char *const *keys, const double *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, keys[i], json_real(values[i]));
}

int cps_calibrate_write_json(FILE *out, const char *path, const struct cps_calib_options *o,
                              const struct cps_calib_result *r)
{
    json_t *root = json_object(), *rows = json_object(), *load = json_object(),
           *resid = json_object(), *interval = json_array();
    json_object_set_new(root, "trace", json_string(path));
    json_object_set_new(root, "routing",
                        json_string(o->routing == CPS_ROUTING_POOLED ? "pooled" : "random"));
    json_object_set_new(root, "service_rate", json_real(r->service_rate));
    json_array_append_new(interval, finite_or_null(r->service_rate_lo));
    json_array_append_new(interval, finite_or_null(r->service_rate_hi));
    json_object_set_new(root, "service_rate_interval", interval);
    json_object_set_new(root, "base_latency_ms", json_real(r->base_latency_ms));
    json_object_set_new(root, "r2", finite_or_null(r->r2));
    json_object_set_new(root, "rmse_ms", json_real(r->rmse_ms));
    set_reals(resid, (const char *const[]){"p50", "p90", "p99", "max"},
              (const double[]){r->residual_p50_ms, r->residual_p90_ms, r->residual_p99_ms,
                               r->residual_max_ms},
              4);
    json_object_set_new(root, "residual_abs_ms", resid);
    json_object_set_new(rows, "total", json_integer((json_int_t)r->rows_total));
    json_object_set_new(rows, "used", json_integer((json_int_t)r->rows_used));
    json_object_set_new(rows, "no_columns", json_integer((json_int_t)r->rows_no_columns));
    json_object_set_new(rows, "idle", json_integer((json_int_t)r->rows_idle));
    json_object_set_new(rows, "saturated", json_integer((json_int_t)r->rows_saturated));
    json_object_set_new(rows, "outliers", json_integer((json_int_t)r->rows_outliers));
    json_object_set_new(rows, "subsampled", json_integer((json_int_t)r->rows_subsampled));
    json_object_set_new(root, "rows", rows);
    set_reals(load, (const char *const[]){"min", "p10", "p50", "p90", "max"},
              (const double[]){r->load_min, r->load_p10, r->load_p50, r->load_p90, r->load_max},
              5);
    json_object_set_new(root, "load_per_pod", load);
    json_object_set_new(root, "slo_ms", json_real(o->slo_ms));
    json_object_set_new(root, "slo_safe_rps_per_pod", json_real(r->slo_safe_rps_per_pod));
    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (rc < 0 || fputc('\n', out) == EOF)
        return -1;
    return ferror(out) ? -1 : 0;
}
