/*
 * Trace CSV (docs/model.md §1) -> rows, from bytes. Pure: the caller reads the
 * file and feeds it in chunks, so a multi-gigabyte trace needs no more memory
 * than one chunk.
 *
 * Columns are found by name in the header (timestamp, qps required; p95_ms,
 * replicas, cost_per_pod_hour optional; others ignored). A UTF-8 BOM and CRLF
 * line endings are accepted, blank lines are skipped, and fields may be
 * double-quoted. Timestamps are Unix epoch seconds (integer or decimal) or
 * RFC 3339. Every error names source:line:col.
 */
#ifndef CPS_TRACE_H
#define CPS_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum cps_trace_field {
    CPS_TRACE_HAS_P95 = 1u << 0,
    CPS_TRACE_HAS_REPLICAS = 1u << 1,
    CPS_TRACE_HAS_COST = 1u << 2,
};

struct cps_trace_row {
    double t;                 /* epoch seconds */
    double qps;
    double p95_ms;
    double replicas;
    double cost_per_pod_hour;
    unsigned has;             /* CPS_TRACE_HAS_* for the optional columns */
    int line;
};

/* Longest line accepted, in bytes. */
#define CPS_TRACE_MAX_LINE 65536
/* Largest rate accepted (req/s); anything above is taken as corrupt data. */
#define CPS_TRACE_MAX_QPS 1e12
/* Timestamps must lie in [0, this) epoch seconds (year 5138). */
#define CPS_TRACE_MAX_EPOCH 1e11
/* Longest span a trace may cover, in seconds (10 years). */
#define CPS_TRACE_MAX_SPAN_S (10.0 * 366 * 86400)

#define CPS_TRACE_MAX_COLUMNS 256

/* What each header column holds, for the data lines' fast path. */
enum cps_trace_column {
    CPS_TRACE_COLUMN_OTHER,
    CPS_TRACE_COLUMN_TIMESTAMP,
    CPS_TRACE_COLUMN_QPS,
    CPS_TRACE_COLUMN_P95,
    CPS_TRACE_COLUMN_REPLICAS,
    CPS_TRACE_COLUMN_COST,
    CPS_TRACE_COLUMN_KINDS
};

struct cps_trace_parser {
    const char *source;
    int line;                 /* lines consumed so far */
    int header_done;
    int bom_checked;
    int n_columns;
    int col_timestamp, col_qps, col_p95, col_replicas, col_cost; /* -1 when absent */
    int rows;
    double first_t, last_t;
    unsigned char column_kind[CPS_TRACE_MAX_COLUMNS]; /* enum cps_trace_column */
};

void cps_trace_parser_init(struct cps_trace_parser *parser, const char *source);

/*
 * Parse the complete lines in buf[0, len). With final == 0 a last line that
 * has no newline is left for the next call (*consumed says where it starts);
 * with final == 1 it is parsed too. Up to `cap` rows are written to `rows`
 * (*n_rows of them); when rows fill up, parsing stops at a line boundary and
 * *consumed tells where to resume. Returns 0, or -1 with err filled.
 */
int cps_trace_parse(struct cps_trace_parser *parser, const char *buf, size_t len, int final,
                    struct cps_trace_row *rows, size_t cap, size_t *n_rows, size_t *consumed,
                    struct cps_err *err);

/* After the last chunk: an error if there was no header or no data row. */
int cps_trace_parser_finish(const struct cps_trace_parser *parser, struct cps_err *err);

/* Parse RFC 3339 ("2024-05-01T12:00:00Z", "...+02:00", fractions) to epoch
 * seconds. Returns 0, or -1 (with *bad_offset the byte that is wrong). */
int cps_rfc3339_parse(const char *text, size_t len, double *epoch, size_t *bad_offset);

/*
 * Gap detection (docs/model.md §1): steps between rows are collected, and after
 * the last row every step longer than 1.5x the median step is a gap. Steps
 * are kept run-length encoded (a trace's steps are nearly all equal), so a
 * two-million-row trace costs a few runs, not two arrays of two million.
 */
struct cps_step_run {
    double step;
    int first_line; /* line of the row that ends the run's first step */
    uint32_t count; /* consecutive rows on consecutive lines with this step */
};

struct cps_step_log {
    struct cps_step_run *runs;
    size_t n_runs, capacity;
    uint64_t steps;
};

struct cps_gap {
    int line;        /* the row after the gap */
    double seconds;  /* the step that ends at that row */
};

void cps_step_log_init(struct cps_step_log *log);
int cps_step_log_add(struct cps_step_log *log, double step, int line);
/* `count` steps of the same size ending at rows first_line, first_line + 1,
 * ...: the same runs as that many cps_step_log_add calls (while a run stays
 * under 2^32 steps). 0, or -1 (out of memory). */
int cps_step_log_add_run(struct cps_step_log *log, double step, int first_line, uint32_t count);
/* Median step (0 when empty). Allocates a scratch copy of the runs; -1 on failure. */
int cps_step_log_median(const struct cps_step_log *log, double *median);
/* Calls found_cb(gap, ctx) for each gap longer than 1.5 x median, in order;
 * returns how many there were. */
size_t cps_step_log_gaps(const struct cps_step_log *log, double median,
                         void (*found_cb)(const struct cps_gap *gap, void *ctx), void *ctx);
void cps_step_log_release(struct cps_step_log *log);

#endif
