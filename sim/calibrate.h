/*
 * `cpscale calibrate TRACE.csv`: fit the simulated world (docs/model.md §3) to
 * what production showed. From the rows that have qps, p95_ms and replicas,
 * find the service rate μ and the base latency that make
 *
 *     p95 = base + q(μ, qps, replicas)
 *
 * closest in least squares, q being the queueing part of the model for the
 * routing (random: 1000 ln(20) / (μ - qps/replicas) ms). For a given μ the
 * best base is the mean residual, so the fit is a one-dimensional search
 * over μ (its "profile"), which also gives μ's 95 % interval.
 *
 * The fit refuses, with the reason, when the data cannot identify it: too
 * few usable rows, only saturated rows, load per pod that barely varies, a
 * service rate the rows do not pin down, or a model that explains little.
 *
 * Pure apart from reading the trace file and writing the report.
 */
#ifndef CPS_SIM_CALIBRATE_H
#define CPS_SIM_CALIBRATE_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "err.h"

struct cps_calib_row {
    double qps;
    double p95_ms;
    double replicas;
};

struct cps_calib_options {
    enum cps_routing routing;
    double saturated_ms; /* rows with p95 at or above this are saturated */
    double slo_ms;       /* for the SLO-safe rate per pod in the report */
};

struct cps_calib_result {
    double service_rate;         /* μ, req/s per ready pod */
    double service_rate_lo;      /* 95 % profile interval of μ */
    double service_rate_hi;
    double base_latency_ms;
    double r2;                   /* 1 - SSE / SST over the rows used */
    double rmse_ms;
    double residual_p50_ms;      /* percentiles of |residual| */
    double residual_p90_ms;
    double residual_p99_ms;
    double residual_max_ms;
    double load_min, load_p10, load_p50, load_p90, load_max; /* qps / replicas */
    double slo_safe_rps_per_pod; /* λmax(1) / 1 at slo_ms; 0 when the SLO is unreachable */
    size_t rows_total;
    size_t rows_used;
    size_t rows_no_columns;      /* no p95_ms or no replicas */
    size_t rows_idle;            /* qps 0 or no ready replica */
    size_t rows_saturated;       /* p95 at or above saturated_ms */
    size_t rows_outliers;        /* dropped after the first fit */
    size_t rows_subsampled;      /* pooled routing: rows left out to bound the work (by
                                  * subsampling, or of more than CPS_POOLED_MAX_REPLICAS) */
};

/* Minimum rows the fit needs, after every exclusion. */
#define CPS_CALIB_MIN_ROWS 20

/*
 * Fit rows[0, n). Returns 0 with *result filled, or -1 with err saying why
 * the data cannot identify the fit (result still holds the row counts and
 * whatever was measured before the refusal).
 */
int cps_calibrate_fit(const struct cps_calib_row *rows, size_t n,
                      const struct cps_calib_options *options, struct cps_calib_result *result,
                      struct cps_err *err);

/* Every row of a trace file ("-": stdin), kept only for the columns the fit
 * uses, into a malloc'd array the caller frees. 0, or -1 with err. */
int cps_calibrate_read_trace(const char *path, struct cps_calib_row **rows, size_t *n,
                             struct cps_err *err);

/* The human report of a fit of `path`, ending in the `sim:` section for
 * config.yaml; or the same as one JSON object. 0, or -1 on a write error. */
int cps_calibrate_write_report(FILE *out, const char *path, const struct cps_calib_options *o,
                               const struct cps_calib_result *r);
int cps_calibrate_write_json(FILE *out, const char *path, const struct cps_calib_options *o,
                             const struct cps_calib_result *r);

#endif
