/*
 * Replaying a trace file: the streaming reader and the per-second feed of
 * a simulation engine, shared by `cpscale sim`, what-if, tune and calibrate.
 */
#include "err.h"
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace.h"

#define READ_CHUNK (1u << 20)
#define ROW_BATCH 8192

/* The whole-second index of an instant: second k covers [t0 + k, t0 + k + 1). */
static int64_t second_of(double t, double t0)
{
    return (int64_t)ceil(t - t0);
}

struct replay_state {
    struct cps_trace_replay *replay;
    int (*feed_cb)(void *ctx, double lambda, double price, int64_t seconds, struct cps_err *err);
    void *feed_ctx;
    double scale, price;
    int have_prev;
    struct cps_trace_row prev;
    double prev_step;
    struct cps_step_log steps;
};

/* Row `row` has arrived: the previous row's rate holds until it starts. */
static int replay_row(struct replay_state *st, const struct cps_trace_row *row, struct cps_err *err)
{
    if (!st->have_prev) {
        st->replay->first_t = row->t;
        st->prev = *row;
        st->have_prev = 1;
        return 0;
    }
    double t0 = st->replay->first_t;
    int64_t from = second_of(st->prev.t, t0), to = second_of(row->t, t0);
    double price = st->prev.has & CPS_TRACE_HAS_COST ? st->prev.cost_per_pod_hour : st->price;
    if (st->feed_cb(st->feed_ctx, st->prev.qps * st->scale, price, to - from, err) < 0)
        return -1;
    st->replay->seconds += to - from;
    st->prev_step = row->t - st->prev.t;
    if (cps_step_log_add(&st->steps, st->prev_step, row->line) < 0)
        return cps_err_set(err, "trace", 0, 0, "out of memory");
    st->prev = *row;
    return 0;
}

/* The last row lasts as long as the step before it (1 s when it is alone). */
static int replay_last(struct replay_state *st, struct cps_err *err)
{
    double t0 = st->replay->first_t;
    double step = st->replay->rows > 1 ? st->prev_step : 1.0;
    int64_t from = second_of(st->prev.t, t0), to = second_of(st->prev.t + step, t0);
    if (to <= from)
        to = from + 1;
    double price = st->prev.has & CPS_TRACE_HAS_COST ? st->prev.cost_per_pod_hour : st->price;
    if (st->feed_cb(st->feed_ctx, st->prev.qps * st->scale, price, to - from, err) < 0)
        return -1;
    st->replay->seconds += to - from;
    return 0;
}

struct gap_printer {
    FILE *out;
    const char *path;
    double median;
};

static void print_gap_cb(const struct cps_gap *gap, void *ctx)
{
    struct gap_printer *g = ctx;
    if (g->out)
        fprintf(g->out,
                "%s:%d: warning: gap of %.0f s before this row (median step %.0f s); "
                "the previous rate is carried forward\n",
                g->path, gap->line, gap->seconds, g->median);
}

static int feed_sim_cb(void *ctx, double lambda, double price, int64_t seconds,
                       struct cps_err *err)
{
    return cps_sim_feed(ctx, lambda, price, seconds, err);
}

int cps_trace_replay_file(const char *path, double scale, double price, struct cps_sim *sim,
                          FILE *warnings, struct cps_trace_replay *replay, struct cps_err *err)
{
    return cps_trace_replay_file_cb(path, scale, price, feed_sim_cb, sim, warnings, replay, err);
}

/*
 * Stream the file through the parser in READ_CHUNK pieces, keeping an
 * unfinished last line for the next read, and feed rows as they come.
 */
int cps_trace_read_file(const char *path,
                        int (*row_cb)(void *ctx, const struct cps_trace_row *row,
                                      struct cps_err *err),
                        void *ctx, struct cps_err *err)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cps_err_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
    char *buf = malloc(READ_CHUNK + CPS_TRACE_MAX_LINE + 2);
    struct cps_trace_row *rows = malloc(ROW_BATCH * sizeof *rows);
    int rc = -1;
    if (!buf || !rows) {
        cps_err_set(err, path, 0, 0, "out of memory");
        goto fail;
    }
    struct cps_trace_parser parser;
    cps_trace_parser_init(&parser, path);
    size_t have = 0;
    int eof = 0;
    while (!eof || have > 0) {
        if (!eof && have < READ_CHUNK) {
            ssize_t n = read(fd, buf + have, READ_CHUNK + CPS_TRACE_MAX_LINE + 1 - have);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                cps_err_set(err, path, 0, 0, "read failed: %s", strerror(errno));
                goto fail;
            }
            if (n == 0)
                eof = 1;
            have += (size_t)n;
        }
        /* parse every complete line in the buffer, a batch of rows at a time,
         * then move the unfinished tail to the front once */
        size_t offset = 0, n_rows, consumed;
        do {
            n_rows = consumed = 0;
            if (cps_trace_parse(&parser, buf + offset, have - offset, eof, rows, ROW_BATCH,
                                &n_rows, &consumed, err) < 0)
                goto fail;
            for (size_t i = 0; i < n_rows; i++)
                if (row_cb(ctx, &rows[i], err) < 0)
                    goto fail;
            offset += consumed;
        } while (n_rows == ROW_BATCH);
        memmove(buf, buf + offset, have - offset);
        have -= offset;
        if (eof && offset == 0)
            break;
    }
    if (cps_trace_parser_finish(&parser, err) < 0)
        goto fail;
    rc = 0;
fail:
    free(rows);
    free(buf);
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/* cps_trace_read_file's row callback for a replay. */
static int replay_row_cb(void *ctx, const struct cps_trace_row *row, struct cps_err *err)
{
    struct replay_state *st = ctx;
    st->replay->rows++;
    return replay_row(st, row, err);
}

int cps_trace_replay_file_cb(const char *path, double scale, double price,
                             int (*feed_cb)(void *ctx, double lambda, double price,
                                            int64_t seconds, struct cps_err *err),
                             void *feed_ctx, FILE *warnings,
                             struct cps_trace_replay *replay, struct cps_err *err)
{
    struct replay_state st;
    memset(&st, 0, sizeof st);
    memset(replay, 0, sizeof *replay);
    st.replay = replay;
    st.feed_cb = feed_cb;
    st.feed_ctx = feed_ctx;
    st.scale = scale;
    st.price = price;
    cps_step_log_init(&st.steps);
    int rc = -1;
    double median = 0.0;
    if (cps_trace_read_file(path, replay_row_cb, &st, err) < 0 || replay_last(&st, err) < 0)
        goto done;
    if (cps_step_log_median(&st.steps, &median) < 0) {
        cps_err_set(err, path, 0, 0, "out of memory");
        goto done;
    }
    struct gap_printer printer = {warnings, path, median};
    replay->gaps = cps_step_log_gaps(&st.steps, median, print_gap_cb, &printer);
    rc = 0;
done:
    cps_step_log_release(&st.steps);
    return rc;
}
