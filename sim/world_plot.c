/*
 * The plot data of `cpscale sim --plot`: per policy (and the oracle) the
 * ready pods, violating seconds and running cost in buckets that double in
 * width when full, so memory stays bounded whatever the trace's length.
 */
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "world_internal.h"


int cps_sim_enable_plot(struct cps_sim *sim, size_t max_points)
{
    size_t cap = 2 * max_points;
    sim->plot_max = max_points;
    sim->extras = 1;
    sim->plot_width = 1;
    sim->plot_demand = calloc(cap, sizeof(double));
    if (!sim->plot_demand)
        return -1;
    for (size_t i = 0; i <= sim->n_runs; i++) {
        if (i == sim->n_runs && !sim->oracle.active)
            break;
        struct plot_track *t = i < sim->n_runs ? &sim->runs[i].plot : &sim->oracle.plot;
        t->ready_sum = calloc(cap, sizeof(double));
        t->violating = calloc(cap, sizeof(double));
        t->cost_end = calloc(cap, sizeof(double));
        if (!t->ready_sum || !t->violating || !t->cost_end)
            return -1;
    }
    return 0;
}

/* Halve the plot's resolution when its buckets are full: merge pairs. */
static void plot_merge(struct cps_sim *sim)
{
    size_t half = sim->plot_count / 2;
    for (size_t i = 0; i < half; i++) {
        sim->plot_demand[i] = sim->plot_demand[2 * i] + sim->plot_demand[2 * i + 1];
        for (size_t r = 0; r < sim->n_runs; r++) {
            struct plot_track *t = &sim->runs[r].plot;
            t->ready_sum[i] = t->ready_sum[2 * i] + t->ready_sum[2 * i + 1];
            t->violating[i] = t->violating[2 * i] + t->violating[2 * i + 1];
            t->cost_end[i] = t->cost_end[2 * i + 1];
        }
        if (sim->oracle.active) {
            struct plot_track *t = &sim->oracle.plot;
            t->ready_sum[i] = t->ready_sum[2 * i] + t->ready_sum[2 * i + 1];
            t->violating[i] = t->violating[2 * i] + t->violating[2 * i + 1];
            t->cost_end[i] = t->cost_end[2 * i + 1];
        }
    }
    sim->plot_count = half;
    sim->plot_width *= 2;
}

/* Advance the plot's bucket cursor by one second; returns the bucket index. */
size_t cps_world_plot_bucket(struct cps_sim *sim)
{
    if (sim->plot_bucket_fill == 0) {
        if (sim->plot_count == 2 * sim->plot_max)
            plot_merge(sim);
        size_t i = sim->plot_count++;
        sim->plot_demand[i] = 0.0;
        for (size_t r = 0; r < sim->n_runs; r++) {
            sim->runs[r].plot.ready_sum[i] = 0.0;
            sim->runs[r].plot.violating[i] = 0.0;
        }
        if (sim->oracle.active) {
            sim->oracle.plot.ready_sum[i] = 0.0;
            sim->oracle.plot.violating[i] = 0.0;
        }
    }
    size_t i = sim->plot_count - 1;
    if (++sim->plot_bucket_fill >= sim->plot_width)
        sim->plot_bucket_fill = 0;
    return i;
}

int cps_sim_plot_data(struct cps_sim *sim, double start_epoch_s, const char *title,
                      struct cps_plot *plot, void *series_out)
{
    struct cps_plot_series *series = series_out;
    if (!sim->plot_max || sim->plot_count == 0)
        return -1;
    size_t n = sim->plot_count;
    /* the last bucket may be partial: its means use its own width */
    double last_width = sim->plot_bucket_fill ? (double)sim->plot_bucket_fill
                                              : (double)sim->plot_width;
    size_t n_tracks = sim->n_runs + (sim->oracle.active ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        double w = i + 1 == n ? last_width : (double)sim->plot_width;
        sim->plot_demand[i] /= w;
        for (size_t r = 0; r < n_tracks; r++) {
            struct plot_track *t = r < sim->n_runs ? &sim->runs[r].plot : &sim->oracle.plot;
            t->ready_sum[i] /= w;
        }
    }
    memset(plot, 0, sizeof *plot);
    plot->title = title;
    plot->n_points = n;
    plot->start_epoch_s = start_epoch_s;
    plot->bucket_seconds = (double)sim->plot_width;
    plot->demand_qps = sim->plot_demand;
    plot->series = series;
    plot->n_series = n_tracks;
    for (size_t r = 0; r < n_tracks; r++) {
        const struct plot_track *t = r < sim->n_runs ? &sim->runs[r].plot : &sim->oracle.plot;
        series[r].name = r < sim->n_runs ? sim->runs[r].spec.name : "oracle";
        series[r].ready_pods = t->ready_sum;
        series[r].violation_seconds = t->violating;
        series[r].cumulative_cost = t->cost_end;
    }
    return 0;
}
