#include "trace_writer.h"

#include <math.h>
#include <string.h>

int cps_trace_writer_init(struct cps_trace_writer *w, FILE *out, int64_t step_s,
                          const double *first_t,
                          const struct cps_queue_model *model)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->step_s = step_s > 0 ? step_s : 1;
    w->first_t = first_t;
    w->model = *model;
    w->cache_lambda = -1.0;
    w->cache_ready = -1;
    if (fputs("timestamp,qps,p95_ms,replicas,cost_per_pod_hour\n", out) == EOF)
        w->failed = 1;
    return w->failed ? -1 : 0;
}

/* One row from the sums of the step; nothing when the step is empty. */
static void flush_step(struct cps_trace_writer *w)
{
    if (w->seconds == 0)
        return;
    double n = (double)w->seconds;
    char p95[64] = "";
    if (!w->saturated) {
        double value = w->lambda_sum > 0.0 ? w->weighted_p95 / w->lambda_sum : w->plain_p95 / n;
        snprintf(p95, sizeof p95, "%.9g", value);
    }
    if (fprintf(w->out, "%.13g,%.9g,%s,%.9g,%.9g\n", *w->first_t + (double)w->start,
                w->lambda_sum / n, p95, w->ready_sum / n, w->price_sum / n) < 0)
        w->failed = 1;
    w->seconds = 0;
    w->lambda_sum = w->ready_sum = w->price_sum = w->weighted_p95 = w->plain_p95 = 0.0;
    w->saturated = 0;
}

/*
 * Sum one second into the step that holds it. The p95 comes from the queueing
 * model of the world (the same one that decides violations); it is cached
 * because most seconds repeat the previous (λ, ready) pair, and pooled
 * routing's p95 is a bisection.
 */
void cps_trace_writer_second_cb(void *ctx, int64_t k, double lambda, int32_t ready, double price)
{
    struct cps_trace_writer *w = ctx;
    if (w->seconds > 0 && k - w->start >= w->step_s)
        flush_step(w);
    if (w->seconds == 0)
        w->start = k - k % w->step_s;
    if (lambda != w->cache_lambda || ready != w->cache_ready) {
        w->cache_lambda = lambda;
        w->cache_ready = ready;
        w->cache_p95 = cps_queue_p95_ms(&w->model, lambda, ready);
    }
    double p95 = w->cache_p95;
    if (!isfinite(p95))
        w->saturated = 1;
    else {
        w->weighted_p95 += lambda * p95;
        w->plain_p95 += p95;
    }
    w->seconds++;
    w->lambda_sum += lambda;
    w->ready_sum += (double)ready;
    w->price_sum += price;
}

int cps_trace_writer_finish(struct cps_trace_writer *w)
{
    flush_step(w);
    if (fflush(w->out) == EOF || ferror(w->out))
        w->failed = 1;
    return w->failed ? -1 : 0;
}
