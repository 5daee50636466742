/*
 * Replaying a trace file: the streaming reader and the per-second feed of
 * a simulation engine, shared by `cpscale sim`, what-if, tune and calibrate.
 */
#include "err.h"
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace.h"

#define READ_CHUNK (1u << 20)
#define ROW_BATCH 8192

/*
 * The whole-second index of an instant: second k covers [t0 + k, t0 + k + 1),
 * so an instant belongs to ceil(t - t0). Computed without a libm call: for
 * any |t - t0| < 2^63 (a trace spans at most ten years) truncating and
 * stepping up when something was cut off is exactly ceil.
 */
static int64_t second_of(double t, double t0)
{
    double d = t - t0;
    int64_t k = (int64_t)d;
    return (double)k < d ? k + 1 : k;
}

struct replay_state {
    struct cps_trace_replay *replay;
    int (*feed_cb)(void *ctx, double lambda, double price, int64_t seconds, struct cps_err *err);
    void *feed_ctx;
    double scale, price;
    int have_prev;
    /* the previous row: its time, rate (scaled) and price, and its second */
    double prev_t, prev_lambda, prev_price;
    int64_t prev_second;
    double prev_step;
    /* the run of equal steps on consecutive lines not yet in the step log */
    double run_step;
    int run_first_line;
    uint32_t run_count;
    struct cps_step_log steps;
};

/* `seconds` more at this rate and price (none for a row inside the previous
 * row's second). */
static int feed(struct replay_state *st, double lambda, double price, int64_t seconds,
                struct cps_err *err)
{
    st->replay->seconds += seconds;
    return seconds > 0 ? st->feed_cb(st->feed_ctx, lambda, price, seconds, err) : 0;
}

/* Log the pending run of equal steps and start none. */
static int flush_steps(struct replay_state *st, struct cps_err *err)
{
    uint32_t count = st->run_count;
    st->run_count = 0;
    if (cps_step_log_add_run(&st->steps, st->run_step, st->run_first_line, count) < 0)
        return cps_err_set(err, "trace", 0, 0, "out of memory");
    return 0;
}

/* A step of `step` seconds ending at row `line`, into the pending run of
 * steps when it continues it (the step log's own rule), else logged later. */
static int add_step(struct replay_state *st, double step, int line, struct cps_err *err)
{
    if (st->run_count && st->run_step == step && st->run_count < UINT32_MAX &&
        (int64_t)st->run_first_line + st->run_count == line) {
        st->run_count++;
        return 0;
    }
    if (st->run_count && flush_steps(st, err) < 0)
        return -1;
    st->run_step = step;
    st->run_first_line = line;
    st->run_count = 1;
    return 0;
}

/* The row becomes "the previous row", starting in second `second`. */
static void keep_as_prev(struct replay_state *st, const struct cps_trace_row *row, int64_t second)
{
    st->prev_t = row->t;
    st->prev_lambda = row->qps * st->scale;
    st->prev_price = row->has & CPS_TRACE_HAS_COST ? row->cost_per_pod_hour : st->price;
    st->prev_second = second;
}

/* Row `row` has arrived: the previous row's rate holds until it starts. */
static int replay_row(struct replay_state *st, const struct cps_trace_row *row, struct cps_err *err)
{
    if (!st->have_prev) {
        st->replay->first_t = row->t;
        keep_as_prev(st, row, 0);
        st->have_prev = 1;
        return 0;
    }
    int64_t to = second_of(row->t, st->replay->first_t);
    if (feed(st, st->prev_lambda, st->prev_price, to - st->prev_second, err) < 0)
        return -1;
    st->prev_step = row->t - st->prev_t;
    if (add_step(st, st->prev_step, row->line, err) < 0)
        return -1;
    keep_as_prev(st, row, to);
    return 0;
}

/* The last row lasts as long as the step before it (1 s when it is alone);
 * then the pending run of steps is logged. */
static int replay_last(struct replay_state *st, struct cps_err *err)
{
    double t0 = st->replay->first_t;
    double step = st->replay->rows > 1 ? st->prev_step : 1.0;
    int64_t from = st->prev_second, to = second_of(st->prev_t + step, t0);
    if (to <= from)
        to = from + 1;
    if (feed(st, st->prev_lambda, st->prev_price, to - from, err) < 0)
        return -1;
    return st->run_count ? flush_steps(st, err) : 0;
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

/* Receives the rows read, a batch at a time, in order; 0 or -1 with err. */
typedef int (*rows_cb_fn)(void *ctx, const struct cps_trace_row *rows, size_t n,
                          struct cps_err *err);

/*
 * Stream the file through the parser in READ_CHUNK pieces, keeping an
 * unfinished last line for the next read, and hand rows on as they come,
 * up to ROW_BATCH at a time.
 */
static int read_rows(const char *path, rows_cb_fn rows_cb, void *ctx, struct cps_err *err)
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
            if (n_rows && rows_cb(ctx, rows, n_rows, err) < 0)
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

/* cps_trace_read_file's per-row callback, called for each row of a batch. */
struct each_row {
    int (*row_cb)(void *ctx, const struct cps_trace_row *row, struct cps_err *err);
    void *ctx;
};

static int each_row_cb(void *ctx, const struct cps_trace_row *rows, size_t n, struct cps_err *err)
{
    struct each_row *each = ctx;
    for (size_t i = 0; i < n; i++)
        if (each->row_cb(each->ctx, &rows[i], err) < 0)
            return -1;
    return 0;
}

int cps_trace_read_file(const char *path,
                        int (*row_cb)(void *ctx, const struct cps_trace_row *row,
                                      struct cps_err *err),
                        void *ctx, struct cps_err *err)
{
    struct each_row each = {row_cb, ctx};
    return read_rows(path, each_row_cb, &each, err);
}

/* read_rows' callback for a replay: each row in turn. */
static int replay_rows_cb(void *ctx, const struct cps_trace_row *rows, size_t n,
                          struct cps_err *err)
{
    struct replay_state *st = ctx;
    for (size_t i = 0; i < n; i++) {
        st->replay->rows++;
        if (replay_row(st, &rows[i], err) < 0)
            return -1;
    }
    return 0;
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
    if (read_rows(path, replay_rows_cb, &st, err) < 0 || replay_last(&st, err) < 0)
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
