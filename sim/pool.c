#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Width of the progress bar, in characters. */
#define BAR_WIDTH 30
/* The bar is redrawn at most this often (ms). */
#define PROGRESS_PERIOD_MS 200
#define NS_PER_MS 1000000L
#define NS_PER_S 1000000000L

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    size_t next, done, n_items;
    int running;            /* threads that have not finished */
    int stop;               /* a failure: start nothing new */
    size_t failed_index;    /* lowest failing index so far */
    struct cps_err failure;
    int (*work_cb)(void *ctx, size_t index, struct cps_err *err);
    void *ctx;
};

double cps_pool_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / (double)NS_PER_S;
}

int cps_pool_default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CPS_POOL_MAX_JOBS ? CPS_POOL_MAX_JOBS : (int)n;
}

void cps_progress_draw(FILE *out, const char *label, size_t done, size_t total,
                       double elapsed_s, int final)
{
    char bar[BAR_WIDTH + 1];
    size_t filled = total ? done * BAR_WIDTH / total : BAR_WIDTH;
    for (size_t i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    char eta[48] = "";
    if (!final && done > 0 && done < total)
        snprintf(eta, sizeof eta, ", about %.0f s left",
                 elapsed_s / (double)done * (double)(total - done));
    fprintf(out, "\r%s [%s] %zu/%zu  %.1f s%s\033[K%s", label, bar, done, total, elapsed_s, eta,
            final ? "\n" : "");
    fflush(out);
}

/* A worker: take the next index until none is left or a failure stops the pool. */
static void *worker_main(void *arg)
{
    struct pool *p = arg;
    struct cps_err err;
    pthread_mutex_lock(&p->lock);
    while (!p->stop && p->next < p->n_items) {
        size_t index = p->next++;
        pthread_mutex_unlock(&p->lock);
        cps_err_clear(&err);
        int rc = p->work_cb(p->ctx, index, &err);
        pthread_mutex_lock(&p->lock);
        p->done++;
        if (rc < 0) {
            p->stop = 1;
            if (index < p->failed_index) {
                p->failed_index = index;
                p->failure = err;
            }
        }
        pthread_cond_signal(&p->changed);
    }
    p->running--;
    pthread_cond_signal(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/*
 * Start the threads, then wait for them on a condition variable, waking at
 * least every PROGRESS_PERIOD_MS to redraw the bar. With one job the items
 * still run on a thread of their own, so both paths are the same code.
 */
int cps_pool_run(size_t n_items, int jobs,
                 int (*work_cb)(void *ctx, size_t index, struct cps_err *err), void *ctx,
                 FILE *progress, const char *label, struct cps_err *err)
{
    struct pool p;
    pthread_t threads[CPS_POOL_MAX_JOBS];
    memset(&p, 0, sizeof p);
    p.n_items = n_items;
    p.work_cb = work_cb;
    p.ctx = ctx;
    p.failed_index = SIZE_MAX;
    if (n_items == 0)
        return 0;
    if (jobs < 1)
        jobs = 1;
    if (jobs > CPS_POOL_MAX_JOBS)
        jobs = CPS_POOL_MAX_JOBS;
    if ((size_t)jobs > n_items)
        jobs = (int)n_items;
    if (pthread_mutex_init(&p.lock, NULL) != 0)
        return cps_err_set(err, "pool", 0, 0, "cannot create a mutex");
    if (pthread_cond_init(&p.changed, NULL) != 0) {
        pthread_mutex_destroy(&p.lock);
        return cps_err_set(err, "pool", 0, 0, "cannot create a condition variable");
    }
    double started = cps_pool_now_s();
    int created = 0, rc_create = 0;
    pthread_mutex_lock(&p.lock);
    for (; created < jobs; created++) {
        p.running++;
        rc_create = pthread_create(&threads[created], NULL, worker_main, &p);
        if (rc_create != 0) {
            p.running--;
            p.stop = created == 0; /* with no thread at all nothing would run */
            break;
        }
    }
    while (p.running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += PROGRESS_PERIOD_MS * NS_PER_MS;
        if (until.tv_nsec >= NS_PER_S) {
            until.tv_sec++;
            until.tv_nsec -= NS_PER_S;
        }
        int rc = pthread_cond_timedwait(&p.changed, &p.lock, &until);
        if (progress && (rc == ETIMEDOUT || p.running == 0))
            cps_progress_draw(progress, label, p.done, p.n_items, cps_pool_now_s() - started,
                              0);
    }
    pthread_mutex_unlock(&p.lock);
    for (int i = 0; i < created; i++)
        pthread_join(threads[i], NULL);
    if (progress)
        cps_progress_draw(progress, label, p.done, p.n_items, cps_pool_now_s() - started, 1);
    pthread_cond_destroy(&p.changed);
    pthread_mutex_destroy(&p.lock);
    if (created == 0)
        return cps_err_set(err, "pool", 0, 0, "cannot start a thread: %s", strerror(rc_create));
    if (p.failed_index != SIZE_MAX) {
        if (err)
            *err = p.failure;
        return -1;
    }
    return 0;
}
