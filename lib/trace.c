#include "trace.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

#define CPS_UTF8_BOM "\xEF\xBB\xBF"
#define CPS_UTF8_BOM_LEN 3
/* Longest number we copy for strtod (the fast path handles common ones). */
#define NUMBER_TEXT_MAX 128
/* Clinger's fast path: exact when the mantissa fits 53 bits and |exp10| <= 22. */
#define FAST_PATH_MAX_MANTISSA (1ULL << 53)
#define FAST_PATH_MAX_EXP10 22
/* Digits the fast line path reads into a uint64_t without overflow. */
#define FAST_MAX_DIGITS 19
#define GAP_FACTOR 1.5
#define STEP_RUNS_FIRST 64 /* step-log runs allocated at first */

static const double powers_of_ten[FAST_PATH_MAX_EXP10 + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

void cps_trace_parser_init(struct cps_trace_parser *parser, const char *source)
{
    memset(parser, 0, sizeof *parser);
    parser->source = source ? source : "<trace>";
    parser->col_timestamp = parser->col_qps = parser->col_p95 = -1;
    parser->col_replicas = parser->col_cost = -1;
}

/*
 * Parse a decimal number occupying exactly text[0, len). Returns 0 and the
 * value, or -1 with *bad the offset of the first offending byte. The common
 * shapes (digits, a point, an exponent) are converted exactly by Clinger's
 * fast path; anything longer goes through strtod on a bounded copy, so the
 * result is always the correctly rounded double. "nan", "inf" and hex floats
 * are rejected: a trace holds plain decimals.
 */
static int parse_decimal(const char *text, size_t len, double *value, size_t *bad)
{
    size_t i = 0;
    int negative = 0;
    if (i < len && (text[i] == '+' || text[i] == '-')) {
        negative = text[i] == '-';
        i++;
    }
    uint64_t mantissa = 0;
    int digits = 0, exp10 = 0, mantissa_overflow = 0;
    size_t digits_start = i;
    while (i < len && text[i] >= '0' && text[i] <= '9') {
        if (mantissa < FAST_PATH_MAX_MANTISSA)
            mantissa = mantissa * 10 + (uint64_t)(text[i] - '0');
        else {
            mantissa_overflow = 1;
            exp10++;
        }
        digits++;
        i++;
    }
    if (i < len && text[i] == '.') {
        i++;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            if (mantissa < FAST_PATH_MAX_MANTISSA) {
                mantissa = mantissa * 10 + (uint64_t)(text[i] - '0');
                exp10--;
            } else {
                mantissa_overflow = 1;
            }
            digits++;
            i++;
        }
    }
    if (digits == 0) {
        *bad = digits_start < len ? digits_start : (len ? len - 1 : 0);
        return -1;
    }
    int has_exponent = 0;
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        has_exponent = 1;
        size_t exp_start = i;
        i++;
        if (i < len && (text[i] == '+' || text[i] == '-'))
            i++;
        size_t exp_digits = i;
        while (i < len && text[i] >= '0' && text[i] <= '9')
            i++;
        if (i == exp_digits) {
            *bad = exp_start;
            return -1;
        }
    }
    if (i != len) {
        *bad = i;
        return -1;
    }
    if (!has_exponent && !mantissa_overflow && mantissa < FAST_PATH_MAX_MANTISSA &&
        exp10 >= -FAST_PATH_MAX_EXP10 && exp10 <= 0) {
        double v = (double)mantissa;
        if (exp10 < 0)
            v /= powers_of_ten[-exp10];
        *value = negative ? -v : v;
        return 0;
    }
    if (len >= NUMBER_TEXT_MAX) {
        *bad = 0;
        return -1;
    }
    char copy[NUMBER_TEXT_MAX];
    memcpy(copy, text, len);
    copy[len] = '\0';
    *value = strtod(copy, NULL);
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), exact for every year we accept. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int read_digits(const char *text, size_t len, size_t *pos, int count, int *out)
{
    int v = 0;
    for (int k = 0; k < count; k++) {
        if (*pos >= len || text[*pos] < '0' || text[*pos] > '9')
            return -1;
        v = v * 10 + (text[*pos] - '0');
        (*pos)++;
    }
    *out = v;
    return 0;
}

/* Where the parser reports a bad character: here, or the last one. */
static size_t offset_here(size_t pos, size_t len)
{
    return pos < len ? pos : (len ? len - 1 : 0);
}

/* A two-digit field at *pos of at most max. 0, or -1 with *bad at the
 * first non-digit, or at the field when it is out of range. */
static int read_field(const char *text, size_t len, size_t *pos, int max, int *out, size_t *bad)
{
    if (read_digits(text, len, pos, 2, out) < 0) {
        *bad = offset_here(*pos, len);
        return -1;
    }
    if (*out > max) {
        *bad = *pos >= 2 ? *pos - 2 : 0;
        return -1;
    }
    return 0;
}

/* The separator sep at *pos, stepped over. 0, or -1 with *bad on it. */
static int expect_char(const char *text, size_t len, size_t *pos, char sep, size_t *bad)
{
    if (*pos >= len || text[(*pos)++] != sep) {
        *bad = *pos ? *pos - 1 : 0;
        return -1;
    }
    return 0;
}

/* "hh:mm" with hh at most max_hour: a time of day's start or a UTC offset. */
static int read_hh_mm(const char *text, size_t len, size_t *pos, int max_hour, int *hh, int *mm,
                      size_t *bad)
{
    if (read_field(text, len, pos, max_hour, hh, bad) < 0 ||
        expect_char(text, len, pos, ':', bad) < 0)
        return -1;
    return read_field(text, len, pos, 59, mm, bad);
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * RFC 3339 date-time: YYYY-MM-DD[Tt ]hh:mm:ss[.frac](Z|z|±hh:mm). Each part is
 * range-checked (including the day of the month) so a typo is an error, not
 * a different instant. Leap second 60 is accepted and counts as 59+1.
 */
int cps_rfc3339_parse(const char *text, size_t len, double *epoch, size_t *bad_offset)
{
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t pos = 0;
    int year, month, day, hour, minute, second;
    if (read_digits(text, len, &pos, 4, &year) < 0)
        goto fail;
    if (expect_char(text, len, &pos, '-', bad_offset) < 0 ||
        read_field(text, len, &pos, 12, &month, bad_offset) < 0)
        return -1;
    if (month < 1)
        goto fail_field;
    if (expect_char(text, len, &pos, '-', bad_offset) < 0 ||
        read_field(text, len, &pos, 31, &day, bad_offset) < 0)
        return -1;
    if (day < 1 || day > month_days[month - 1] + (month == 2 && is_leap(year)))
        goto fail_field;
    if (pos >= len || (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' '))
        goto fail;
    pos++;
    if (read_hh_mm(text, len, &pos, 23, &hour, &minute, bad_offset) < 0 ||
        expect_char(text, len, &pos, ':', bad_offset) < 0 ||
        read_field(text, len, &pos, 60, &second, bad_offset) < 0)
        return -1;
    double fraction = 0.0;
    if (pos < len && text[pos] == '.') {
        pos++;
        double scale = 0.1;
        size_t start = pos;
        while (pos < len && text[pos] >= '0' && text[pos] <= '9') {
            fraction += (text[pos] - '0') * scale;
            scale *= 0.1;
            pos++;
        }
        if (pos == start)
            goto fail;
    }
    int64_t offset_s = 0;
    if (pos < len && (text[pos] == 'Z' || text[pos] == 'z')) {
        pos++;
    } else if (pos < len && (text[pos] == '+' || text[pos] == '-')) {
        int sign = text[pos] == '-' ? -1 : 1;
        int oh, om;
        pos++;
        if (read_hh_mm(text, len, &pos, 23, &oh, &om, bad_offset) < 0)
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        goto fail;
    }
    if (pos != len)
        goto fail;
    int64_t days = days_from_civil(year, month, day);
    *epoch = (double)(days * 86400 + hour * 3600 + minute * 60 + second - offset_s) + fraction;
    return 0;
fail_field:
    *bad_offset = pos >= 2 ? pos - 2 : 0;
    return -1;
fail:
    *bad_offset = offset_here(pos, len);
    return -1;
}

/* Field boundaries within a line, after unquoting. */
struct field {
    const char *text;
    size_t len;
    size_t col;      /* 0-based byte offset of the field's first byte in the line */
    size_t text_col; /* 0-based offset of text[0] (after an opening quote) */
};

/*
 * Split the next field starting at *pos (a comma or the line end closes it).
 * Quoted fields may hold commas; a doubled quote inside is not unescaped
 * (a trace has no use for quotes inside values) but is skipped over.
 * Returns 0, or -1 with *bad set when a quote is not closed.
 */
static int next_field(const char *line, size_t len, size_t *pos, struct field *field, size_t *bad)
{
    size_t i = *pos;
    field->col = i;
    if (i < len && line[i] == '"') {
        size_t start = i + 1, j = start;
        for (;;) {
            if (j >= len) {
                *bad = i;
                return -1;
            }
            if (line[j] == '"') {
                if (j + 1 < len && line[j + 1] == '"') {
                    j += 2;
                    continue;
                }
                break;
            }
            j++;
        }
        field->text = line + start;
        field->text_col = start;
        field->len = j - start;
        j++;
        if (j < len && line[j] != ',') {
            *bad = j;
            return -1;
        }
        *pos = j;
        return 0;
    }
    const char *comma = memchr(line + i, ',', len - i);
    size_t end = comma ? (size_t)(comma - line) : len;
    field->text = line + i;
    field->text_col = i;
    field->len = end - i;
    *pos = end;
    return 0;
}

/* Trim spaces and tabs around a field (a hand-edited CSV often has them). */
static void trim_field(struct field *field)
{
    while (field->len && (field->text[0] == ' ' || field->text[0] == '\t')) {
        field->text++;
        field->len--;
        field->col++;
        field->text_col++;
    }
    while (field->len && (field->text[field->len - 1] == ' ' || field->text[field->len - 1] == '\t'))
        field->len--;
}

static int field_is(const struct field *field, const char *name)
{
    size_t n = strlen(name);
    return field->len == n && memcmp(field->text, name, n) == 0;
}

/*
 * The header names the columns. Duplicate known names are an error (which
 * one would count?); missing required ones are reported at the header line.
 */
static int parse_header(struct cps_trace_parser *p, const char *line, size_t len,
                        struct cps_err *err)
{
    size_t pos = 0, bad = 0;
    int index = 0;
    for (;;) {
        struct field f;
        if (next_field(line, len, &pos, &f, &bad) < 0)
            return cps_err_set(err, p->source, p->line, (int)bad + 1, "unterminated quote in header");
        trim_field(&f);
        if (index >= CPS_TRACE_MAX_COLUMNS)
            return cps_err_set(err, p->source, p->line, (int)f.col + 1,
                               "more than %d columns in header", CPS_TRACE_MAX_COLUMNS);
        int *slot = NULL;
        unsigned char kind = CPS_TRACE_COLUMN_OTHER;
        if (field_is(&f, "timestamp"))
            slot = &p->col_timestamp, kind = CPS_TRACE_COLUMN_TIMESTAMP;
        else if (field_is(&f, "qps"))
            slot = &p->col_qps, kind = CPS_TRACE_COLUMN_QPS;
        else if (field_is(&f, "p95_ms"))
            slot = &p->col_p95, kind = CPS_TRACE_COLUMN_P95;
        else if (field_is(&f, "replicas"))
            slot = &p->col_replicas, kind = CPS_TRACE_COLUMN_REPLICAS;
        else if (field_is(&f, "cost_per_pod_hour"))
            slot = &p->col_cost, kind = CPS_TRACE_COLUMN_COST;
        p->column_kind[index] = kind;
        if (slot) {
            if (*slot >= 0)
                return cps_err_set(err, p->source, p->line, (int)f.col + 1,
                                   "column \"%.*s\" appears twice in header", (int)f.len, f.text);
            *slot = index;
        }
        index++;
        if (pos >= len)
            break;
        pos++; /* the comma */
    }
    p->n_columns = index;
    if (p->col_timestamp < 0)
        return cps_err_set(err, p->source, p->line, 1,
                           "header has no \"timestamp\" column (required)");
    if (p->col_qps < 0)
        return cps_err_set(err, p->source, p->line, 1, "header has no \"qps\" column (required)");
    p->header_done = 1;
    return 0;
}

/* A numeric field: finite, non-negative, and within `max`. */
static int parse_value(struct cps_trace_parser *p, const struct field *f, const char *column,
                       double max, double *value, struct cps_err *err)
{
    size_t bad = 0;
    if (f->len == 0)
        return cps_err_set(err, p->source, p->line, (int)f->col + 1, "%s: empty value", column);
    if (parse_decimal(f->text, f->len, value, &bad) < 0)
        return cps_err_set(err, p->source, p->line, (int)(f->text_col + bad) + 1,
                           "%s: \"%.*s\" is not a number", column, (int)(f->len > 40 ? 40 : f->len),
                           f->text);
    if (!isfinite(*value))
        return cps_err_set(err, p->source, p->line, (int)f->col + 1,
                           "%s: value out of range", column);
    if (*value < 0.0)
        return cps_err_set(err, p->source, p->line, (int)f->col + 1,
                           "%s: negative value %.*s", column, (int)f->len, f->text);
    if (*value > max)
        return cps_err_set(err, p->source, p->line, (int)f->col + 1,
                           "%s: value %.*s is implausibly large (limit %g)", column,
                           (int)(f->len > 40 ? 40 : f->len), f->text, max);
    return 0;
}

/* A timestamp field: epoch seconds, or RFC 3339 when it has a '-' after the year. */
static int parse_timestamp(struct cps_trace_parser *p, const struct field *f, double *t,
                           struct cps_err *err)
{
    size_t bad = 0;
    if (f->len == 0)
        return cps_err_set(err, p->source, p->line, (int)f->col + 1, "timestamp: empty value");
    if (f->len > 4 && f->text[4] == '-') {
        if (cps_rfc3339_parse(f->text, f->len, t, &bad) < 0)
            return cps_err_set(err, p->source, p->line, (int)(f->text_col + bad) + 1,
                               "timestamp: \"%.*s\" is not RFC 3339 (e.g. 2024-05-01T12:00:00Z)",
                               (int)(f->len > 40 ? 40 : f->len), f->text);
    } else if (parse_decimal(f->text, f->len, t, &bad) < 0) {
        return cps_err_set(err, p->source, p->line, (int)(f->text_col + bad) + 1,
                           "timestamp: \"%.*s\" is neither epoch seconds nor RFC 3339",
                           (int)(f->len > 40 ? 40 : f->len), f->text);
    }
    if (!isfinite(*t) || *t < 0.0 || *t >= CPS_TRACE_MAX_EPOCH)
        return cps_err_set(err, p->source, p->line, (int)f->col + 1,
                           "timestamp: %.*s is outside 1970..5138", (int)(f->len > 40 ? 40 : f->len),
                           f->text);
    return 0;
}

/*
 * One data line -> one row. Every field count mismatch, bad number and
 * out-of-order time is an error at its column; the first error stops.
 */
static int parse_row(struct cps_trace_parser *p, const char *line, size_t len,
                     struct cps_trace_row *row, struct cps_err *err)
{
    size_t pos = 0, bad = 0;
    int index = 0;
    size_t ts_col = 0;
    row->has = 0;
    row->line = p->line;
    for (;;) {
        struct field f;
        if (next_field(line, len, &pos, &f, &bad) < 0)
            return cps_err_set(err, p->source, p->line, (int)bad + 1, "unterminated quote");
        if (index >= p->n_columns)
            return cps_err_set(err, p->source, p->line, (int)f.col + 1,
                               "more fields than the header's %d columns", p->n_columns);
        trim_field(&f);
        if (index == p->col_timestamp) {
            ts_col = f.col;
            if (parse_timestamp(p, &f, &row->t, err) < 0)
                return -1;
        } else if (index == p->col_qps) {
            if (parse_value(p, &f, "qps", CPS_TRACE_MAX_QPS, &row->qps, err) < 0)
                return -1;
        } else if (index == p->col_p95 && f.len) {
            if (parse_value(p, &f, "p95_ms", CPS_TRACE_MAX_QPS, &row->p95_ms, err) < 0)
                return -1;
            row->has |= CPS_TRACE_HAS_P95;
        } else if (index == p->col_replicas && f.len) {
            if (parse_value(p, &f, "replicas", CPS_TRACE_MAX_QPS, &row->replicas, err) < 0)
                return -1;
            row->has |= CPS_TRACE_HAS_REPLICAS;
        } else if (index == p->col_cost && f.len) {
            if (parse_value(p, &f, "cost_per_pod_hour", CPS_TRACE_MAX_QPS,
                            &row->cost_per_pod_hour, err) < 0)
                return -1;
            row->has |= CPS_TRACE_HAS_COST;
        }
        index++;
        if (pos >= len)
            break;
        pos++;
    }
    if (index < p->n_columns)
        return cps_err_set(err, p->source, p->line, (int)len + 1,
                           "%d fields, but the header has %d columns", index, p->n_columns);
    if (p->rows > 0) {
        if (!(row->t > p->last_t))
            return cps_err_set(err, p->source, p->line, (int)ts_col + 1,
                               "timestamp %.17g is not after the previous row's %.17g "
                               "(rows must be in strictly increasing time)",
                               row->t, p->last_t);
        if (row->t - p->first_t > CPS_TRACE_MAX_SPAN_S)
            return cps_err_set(err, p->source, p->line, (int)ts_col + 1,
                               "trace spans more than %.0f days", CPS_TRACE_MAX_SPAN_S / 86400);
    } else {
        p->first_t = row->t;
    }
    p->last_t = row->t;
    p->rows++;
    return 0;
}

/*
 * The fast path below reads text that is known to end in '\n' (the chunk
 * loop hands it everything up to the chunk's last newline), so its scans
 * stop at a newline at the latest and need no length checks of their own.
 */

/* Append the digits at text[*pos] to *mantissa (wrapping past 19 digits,
 * which the caller refuses); returns how many there were. */
static int append_digits(const char *text, size_t *pos, uint64_t *mantissa)
{
    size_t i = *pos;
    uint64_t m = *mantissa;
    unsigned digit;
    while ((digit = (unsigned char)text[i] - (unsigned)'0') < 10) {
        m = m * 10 + digit;
        i++;
    }
    int count = (int)(i - *pos);
    *pos = i;
    *mantissa = m;
    return count;
}

/*
 * A plain number at text[*pos]: digits with an optional point and fraction,
 * at most FAST_MAX_DIGITS digits, the mantissa below 2^53 and at most 22
 * fraction digits. Then m / 10^f is one correctly rounded division of two
 * exact doubles: the same double parse_decimal's fast path (and strtod)
 * gives. Returns 1 with the value and *pos past it; 0 when there is nothing
 * number-like at *pos (an empty field if a separator follows); -1 for
 * anything else, left to the general path.
 */
static int fast_number(const char *text, size_t *pos, double *value)
{
    size_t i = *pos;
    uint64_t mantissa = 0;
    int digits = append_digits(text, &i, &mantissa), fraction = 0;
    if (text[i] == '.') {
        i++;
        fraction = append_digits(text, &i, &mantissa);
        digits += fraction;
        if (digits == 0)
            return -1;
    }
    if (digits == 0)
        return 0;
    if (digits > FAST_MAX_DIGITS || mantissa >= FAST_PATH_MAX_MANTISSA ||
        fraction > FAST_PATH_MAX_EXP10)
        return -1;
    double v = (double)mantissa;
    if (fraction)
        v /= powers_of_ten[fraction];
    *value = v;
    *pos = i;
    return 1;
}

/* Where in a row the fast path puts each kind of column's value. */
static const size_t slot_offset[CPS_TRACE_COLUMN_KINDS] = {
    [CPS_TRACE_COLUMN_TIMESTAMP] = offsetof(struct cps_trace_row, t),
    [CPS_TRACE_COLUMN_QPS] = offsetof(struct cps_trace_row, qps),
    [CPS_TRACE_COLUMN_P95] = offsetof(struct cps_trace_row, p95_ms),
    [CPS_TRACE_COLUMN_REPLICAS] = offsetof(struct cps_trace_row, replicas),
    [CPS_TRACE_COLUMN_COST] = offsetof(struct cps_trace_row, cost_per_pod_hour),
};

/*
 * The fast path for a well-formed data line at buf (which holds a '\n'
 * further on): every field unquoted and untrimmed, the known ones plain
 * numbers (fast_number), the line ending in LF or CRLF, the values in range
 * and the time after the previous row's. Returns the bytes the line takes
 * with its newline, having filled *row and counted the row exactly as
 * parse_row would; or 0, having changed no parser state, when the line needs
 * the general path -- which is where every error (and every unusual but
 * valid line) is handled, so there is one source of messages. Values may
 * equal their limit; timestamps must stay below theirs (as parse_value and
 * parse_timestamp check them).
 */
static size_t fast_row(struct cps_trace_parser *p, const char *buf, struct cps_trace_row *row)
{
    static const unsigned has_bit[CPS_TRACE_COLUMN_KINDS] = {
        [CPS_TRACE_COLUMN_P95] = CPS_TRACE_HAS_P95,
        [CPS_TRACE_COLUMN_REPLICAS] = CPS_TRACE_HAS_REPLICAS,
        [CPS_TRACE_COLUMN_COST] = CPS_TRACE_HAS_COST,
    };
    size_t i = 0;
    unsigned has = 0;
    for (int index = 0;; index++) {
        unsigned kind = p->column_kind[index];
        if (kind != CPS_TRACE_COLUMN_OTHER) {
            double *slot = (double *)((char *)row + slot_offset[kind]);
            int got = fast_number(buf, &i, slot);
            if (got < 0 || (got == 0 && !has_bit[kind]))
                return 0;
            if (got && (kind == CPS_TRACE_COLUMN_TIMESTAMP ? *slot >= CPS_TRACE_MAX_EPOCH
                                                            : *slot > CPS_TRACE_MAX_QPS))
                return 0;
            if (got)
                has |= has_bit[kind];
        } else {
            if (buf[i] == '"')
                return 0;
            while (buf[i] != ',' && buf[i] != '\n' && buf[i] != '\0')
                i++;
        }
        if (index + 1 < p->n_columns) {
            if (buf[i] != ',')
                return 0;
            i++;
            continue;
        }
        if (i > CPS_TRACE_MAX_LINE) /* the line's length, without its CR LF or LF */
            return 0;
        if (buf[i] == '\r')
            i++;
        if (buf[i] != '\n')
            return 0;
        break;
    }
    if (p->rows > 0 && (!(row->t > p->last_t) || row->t - p->first_t > CPS_TRACE_MAX_SPAN_S))
        return 0;
    if (p->rows == 0)
        p->first_t = row->t;
    p->last_t = row->t;
    p->rows++;
    p->line++;
    row->has = has;
    row->line = p->line;
    return i + 1;
}

/* One past the last '\n' in buf[from, len), or `from` when there is none. */
static size_t after_last_newline(const char *buf, size_t from, size_t len)
{
    while (len > from && buf[len - 1] != '\n')
        len--;
    return len;
}

/*
 * The chunk loop: find each newline, strip a CR before it, skip blank lines,
 * and hand the line to the header or row parser. A line longer than
 * CPS_TRACE_MAX_LINE is an error even if it never ends, so a file without
 * newlines cannot make the caller buffer it whole.
 */
int cps_trace_parse(struct cps_trace_parser *p, const char *buf, size_t len, int final,
                    struct cps_trace_row *rows, size_t cap, size_t *n_rows, size_t *consumed,
                    struct cps_err *err)
{
    size_t pos = 0;
    *n_rows = 0;
    *consumed = 0;
    if (!p->bom_checked) {
        if (len < CPS_UTF8_BOM_LEN && !final) {
            return 0;
        }
        if (len >= CPS_UTF8_BOM_LEN && memcmp(buf, CPS_UTF8_BOM, CPS_UTF8_BOM_LEN) == 0)
            pos = CPS_UTF8_BOM_LEN;
        p->bom_checked = 1;
    }
    /* complete lines end by here: the fast path's scans cannot run past it */
    size_t lines_end = after_last_newline(buf, pos, len);
    while (pos < len && *n_rows < cap) {
        if (p->header_done && pos < lines_end) {
            size_t used = fast_row(p, buf + pos, &rows[*n_rows]);
            if (used) {
                pos += used;
                (*n_rows)++;
                continue;
            }
        }
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end;
        if (nl) {
            end = (size_t)(nl - buf);
        } else if (final) {
            end = len;
        } else {
            /* a line's CR may wait for its LF in the next chunk */
            if (len - pos > CPS_TRACE_MAX_LINE + (buf[len - 1] == '\r'))
                return cps_err_set(err, p->source, p->line + 1, CPS_TRACE_MAX_LINE + 1,
                                   "line longer than %d bytes", CPS_TRACE_MAX_LINE);
            break;
        }
        size_t line_len = end - pos;
        p->line++;
        const char *line = buf + pos;
        if (line_len && line[line_len - 1] == '\r')
            line_len--; /* CR LF ends a line as LF does: not part of its length */
        if (line_len > CPS_TRACE_MAX_LINE)
            return cps_err_set(err, p->source, p->line, CPS_TRACE_MAX_LINE + 1,
                               "line longer than %d bytes", CPS_TRACE_MAX_LINE);
        if (memchr(line, '\0', line_len))
            return cps_err_set(err, p->source, p->line,
                               (int)((const char *)memchr(line, '\0', line_len) - line) + 1,
                               "NUL byte in text");
        int blank = 1;
        for (size_t i = 0; i < line_len && blank; i++)
            blank = line[i] == ' ' || line[i] == '\t';
        if (!blank) {
            if (!p->header_done) {
                if (parse_header(p, line, line_len, err) < 0)
                    return -1;
            } else {
                if (parse_row(p, line, line_len, &rows[*n_rows], err) < 0)
                    return -1;
                (*n_rows)++;
            }
        }
        pos = nl ? end + 1 : end;
    }
    *consumed = pos;
    return 0;
}

int cps_trace_parser_finish(const struct cps_trace_parser *p, struct cps_err *err)
{
    if (!p->header_done)
        return cps_err_set(err, p->source, 1, 1, "empty trace: no header row");
    if (p->rows == 0)
        return cps_err_set(err, p->source, p->line + 1, 1,
                           "trace has a header but no data rows");
    return 0;
}

void cps_step_log_init(struct cps_step_log *log)
{
    memset(log, 0, sizeof *log);
}

int cps_step_log_add(struct cps_step_log *log, double step, int line)
{
    return cps_step_log_add_run(log, step, line, 1);
}

/* Extend the last run when the step is the same and the lines follow on
 * (and the count stays within a uint32_t); else start a new run. */
int cps_step_log_add_run(struct cps_step_log *log, double step, int first_line, uint32_t count)
{
    if (count == 0)
        return 0;
    if (log->n_runs) {
        struct cps_step_run *last = &log->runs[log->n_runs - 1];
        if (last->step == step && (uint64_t)last->count + count <= UINT32_MAX &&
            (int64_t)last->first_line + last->count == first_line) {
            last->count += count;
            log->steps += count;
            return 0;
        }
    }
    void *runs = log->runs;
    if (cps_grow(&runs, &log->capacity, log->n_runs, sizeof *log->runs, STEP_RUNS_FIRST) < 0)
        return -1;
    log->runs = runs;
    log->runs[log->n_runs].step = step;
    log->runs[log->n_runs].first_line = first_line;
    log->runs[log->n_runs].count = count;
    log->n_runs++;
    log->steps += count;
    return 0;
}

static int compare_runs_by_step(const void *a, const void *b)
{
    double x = ((const struct cps_step_run *)a)->step, y = ((const struct cps_step_run *)b)->step;
    return (x > y) - (x < y);
}

/* The step at 0-based rank k among all steps, from runs sorted by step. */
static double step_at_rank(const struct cps_step_run *sorted, size_t n, uint64_t k)
{
    uint64_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        seen += sorted[i].count;
        if (k < seen)
            return sorted[i].step;
    }
    return n ? sorted[n - 1].step : 0.0;
}

/* Median of the steps: the middle one, or the mean of the two middle ones. */
int cps_step_log_median(const struct cps_step_log *log, double *median)
{
    *median = 0.0;
    if (log->steps == 0)
        return 0;
    struct cps_step_run *sorted = malloc(log->n_runs * sizeof *sorted);
    if (!sorted)
        return -1;
    memcpy(sorted, log->runs, log->n_runs * sizeof *sorted);
    qsort(sorted, log->n_runs, sizeof *sorted, compare_runs_by_step);
    uint64_t mid = log->steps / 2;
    double upper = step_at_rank(sorted, log->n_runs, mid);
    *median = log->steps % 2 ? upper : 0.5 * (step_at_rank(sorted, log->n_runs, mid - 1) + upper);
    free(sorted);
    return 0;
}

size_t cps_step_log_gaps(const struct cps_step_log *log, double median,
                         void (*found_cb)(const struct cps_gap *gap, void *ctx), void *ctx)
{
    size_t found = 0;
    for (size_t i = 0; i < log->n_runs; i++) {
        const struct cps_step_run *run = &log->runs[i];
        if (!(run->step > GAP_FACTOR * median))
            continue;
        for (uint32_t k = 0; k < run->count; k++) {
            struct cps_gap gap = {run->first_line + (int)k, run->step};
            if (found_cb)
                found_cb(&gap, ctx);
            found++;
        }
    }
    return found;
}

void cps_step_log_release(struct cps_step_log *log)
{
    if (!log)
        return;
    free(log->runs);
    memset(log, 0, sizeof *log);
}
