/*
 * Fuzz target: the streaming trace CSV parser (lib/trace.h).
 *
 * Each input is parsed twice: once in one final chunk, and once split in two
 * chunks at a point taken from the input, the way sim/ feeds a file read in
 * pieces (the unconsumed tail of the first chunk is carried in front of the
 * second). Each chunk lives in its own exactly-sized heap buffer so reading
 * past a chunk is caught. The two runs must agree: the same rows, or the
 * same error at the same place; a difference aborts. The rows also go
 * through the step log (median and gaps), as sim/ does with them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rows per parse call: small, so "rows full, resume at *consumed" is hit. */
#define FUZZ_TRACE_ROW_BATCH 3
#define FUZZ_TRACE_SOURCE "fuzz.csv"
/* FNV-1a, 64 bit: a digest of the rows, compared between the two runs. */
#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

struct run_result {
    int rc;            /* 0, or -1 when parse or finish failed */
    uint64_t digest;   /* of every row, in order */
    size_t n_rows;
    struct cps_err err;
};

/* Mix `len` bytes into an FNV-1a digest. */
static uint64_t fnv_mix(uint64_t h, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Digest the meaningful fields of a row, one by one (the struct has
 * padding, and an optional column's value is only set when `has` says so). */
static uint64_t digest_row(uint64_t h, const struct cps_trace_row *row)
{
    h = fnv_mix(h, &row->t, sizeof row->t);
    h = fnv_mix(h, &row->qps, sizeof row->qps);
    if (row->has & CPS_TRACE_HAS_P95)
        h = fnv_mix(h, &row->p95_ms, sizeof row->p95_ms);
    if (row->has & CPS_TRACE_HAS_REPLICAS)
        h = fnv_mix(h, &row->replicas, sizeof row->replicas);
    if (row->has & CPS_TRACE_HAS_COST)
        h = fnv_mix(h, &row->cost_per_pod_hour, sizeof row->cost_per_pod_hour);
    h = fnv_mix(h, &row->has, sizeof row->has);
    return fnv_mix(h, &row->line, sizeof row->line);
}

/* Gap callback: nothing to do, the call itself is what is exercised. */
static void gap_found_cb(const struct cps_gap *gap, void *ctx)
{
    (void)gap;
    (*(size_t *)ctx)++;
}

/*
 * Parse buf[0, len) with `final`, calling the parser again while it stops
 * because the row batch is full, as sim/ does. Rows are digested into `res`
 * and their steps go to `log` (when not NULL). Returns how many bytes were
 * consumed; on a parse error res->rc is -1.
 */
static size_t feed(struct cps_trace_parser *parser, const char *buf, size_t len, int final,
                   struct run_result *res, struct cps_step_log *log, double *prev_t)
{
    size_t offset = 0;
    for (;;) {
        struct cps_trace_row rows[FUZZ_TRACE_ROW_BATCH];
        size_t n_rows = 0, consumed = 0;
        if (cps_trace_parse(parser, buf + offset, len - offset, final, rows,
                            FUZZ_TRACE_ROW_BATCH, &n_rows, &consumed, &res->err) < 0) {
            res->rc = -1;
            return offset;
        }
        if (consumed > len - offset || n_rows > FUZZ_TRACE_ROW_BATCH)
            abort();
        for (size_t i = 0; i < n_rows; i++) {
            res->digest = digest_row(res->digest, &rows[i]);
            if (log && res->n_rows > 0)
                cps_step_log_add(log, rows[i].t - *prev_t, rows[i].line);
            *prev_t = rows[i].t;
            res->n_rows++;
        }
        offset += consumed;
        if (n_rows < FUZZ_TRACE_ROW_BATCH || offset == len)
            return offset;
    }
}

/* One run over the whole input as a single final chunk, with the step log. */
static void run_whole(const uint8_t *data, size_t size, struct run_result *res)
{
    struct cps_trace_parser parser;
    struct cps_step_log log;
    double prev_t = 0;
    cps_trace_parser_init(&parser, FUZZ_TRACE_SOURCE);
    cps_step_log_init(&log);
    feed(&parser, (const char *)data, size, 1, res, &log, &prev_t);
    if (res->rc == 0)
        res->rc = cps_trace_parser_finish(&parser, &res->err);
    if (res->rc == 0) {
        double median = 0;
        size_t gaps = 0;
        if (cps_step_log_median(&log, &median) == 0)
            cps_step_log_gaps(&log, median, gap_found_cb, &gaps);
    }
    cps_step_log_release(&log);
}

/*
 * One run in two chunks split at `split`: the first chunk non-final, then
 * its unconsumed tail followed by the rest as the final chunk.
 */
static void run_split(const uint8_t *data, size_t size, size_t split, struct run_result *res)
{
    struct cps_trace_parser parser;
    double prev_t = 0;
    char *first = malloc(split ? split : 1);
    char *second = NULL;
    if (!first)
        return;
    memcpy(first, data, split);
    cps_trace_parser_init(&parser, FUZZ_TRACE_SOURCE);
    size_t used = feed(&parser, first, split, 0, res, NULL, &prev_t);
    if (res->rc == 0) {
        size_t rest = size - used;
        second = malloc(rest ? rest : 1);
        if (!second) {
            free(first);
            return;
        }
        memcpy(second, data + used, rest);
        feed(&parser, second, rest, 1, res, NULL, &prev_t);
    }
    if (res->rc == 0)
        res->rc = cps_trace_parser_finish(&parser, &res->err);
    free(second);
    free(first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run_result whole = {0, FNV_OFFSET, 0, {{0}, 0, 0, {0}}};
    struct run_result split = whole;
    /* The split point: the first and last bytes, as a 16-bit number. */
    size_t at = size ? ((size_t)data[0] | (size_t)data[size - 1] << 8) % (size + 1) : 0;

    run_whole(data, size, &whole);
    run_split(data, size, at, &split);

    if (whole.rc != split.rc)
        abort();
    if (whole.rc == 0 && (whole.digest != split.digest || whole.n_rows != split.n_rows))
        abort();
    if (whole.rc != 0 && (whole.err.line != split.err.line || whole.err.col != split.err.col ||
                          strcmp(whole.err.message, split.err.message) != 0))
        abort();
    return 0;
}
