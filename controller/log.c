#include "log.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum cps_log_format log_format = CPS_LOG_TEXT;
static enum cps_log_level log_min_level = CPS_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cps_log_setup(enum cps_log_format format, enum cps_log_level min_level, int fd)
{
    log_format = format;
    log_min_level = min_level;
    log_fd = fd;
}

int cps_log_level_parse(const char *text)
{
    if (strcasecmp(text, "warning") == 0)
        return CPS_LOG_WARN;
    for (int i = 0; i <= CPS_LOG_ERROR; i++)
        if (strcasecmp(text, level_names[i]) == 0)
            return i;
    return -1;
}

/* Room kept at the end of every line for the truncation marker, the
 * closing brace and the newline. */
#define LOG_TAIL_RESERVE 24

/* Append raw bytes; when they do not fit, set `overflow` and append
 * nothing (the field being written is then dropped whole, see field_end). */
static void append_raw(struct cps_log_line *line, const char *bytes, size_t n)
{
    if (line->overflow || line->len + n + LOG_TAIL_RESERVE > sizeof line->buffer) {
        line->overflow = 1;
        return;
    }
    memcpy(line->buffer + line->len, bytes, n);
    line->len += n;
}

/* A field is written whole or not at all, so a long value can never leave
 * half a JSON string behind. */
static size_t field_begin(struct cps_log_line *line)
{
    line->overflow = 0;
    return line->len;
}

static void field_end(struct cps_log_line *line, size_t start)
{
    if (line->overflow) {
        line->len = start;
        line->truncated = 1;
        line->overflow = 0;
    }
}

/* 1 when a logfmt value must be quoted (empty, blanks, quotes, '=', or
 * control bytes). */
static int logfmt_needs_quotes(const char *value)
{
    if (!*value)
        return 1;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7F)
            return 1;
    return 0;
}

/* Append value escaped for a JSON string or a quoted logfmt value (the two
 * share the rules that matter: \\, \", \n and \u00XX for control bytes). */
static void append_escaped(struct cps_log_line *line, const char *value)
{
    char escaped[8];
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\') {
            escaped[0] = '\\', escaped[1] = (char)*p;
            append_raw(line, escaped, 2);
        } else if (*p == '\n') {
            append_raw(line, "\\n", 2);
        } else if (*p < 0x20 || *p == 0x7F) {
            snprintf(escaped, sizeof escaped, "\\u%04x", *p);
            append_raw(line, escaped, 6);
        } else {
            append_raw(line, (const char *)p, 1);
        }
    }
}

/* Key plus separator, for either format. */
static void append_key(struct cps_log_line *line, const char *key)
{
    if (log_format == CPS_LOG_JSON) {
        append_raw(line, ",\"", 2);
        append_escaped(line, key);
        append_raw(line, "\":", 2);
    } else {
        append_raw(line, " ", 1);
        append_raw(line, key, strlen(key));
        append_raw(line, "=", 1);
    }
}

void cps_log_str(struct cps_log_line *line, const char *key, const char *value)
{
    if (!line->enabled)
        return;
    if (!value)
        value = "";
    size_t start = field_begin(line);
    append_key(line, key);
    if (log_format == CPS_LOG_JSON || logfmt_needs_quotes(value)) {
        append_raw(line, "\"", 1);
        append_escaped(line, value);
        append_raw(line, "\"", 1);
    } else {
        append_raw(line, value, strlen(value));
    }
    field_end(line, start);
}

/* key=value with the value as is (a number: no quoting in either format). */
static void append_bare_field(struct cps_log_line *line, const char *key, const char *text,
                              size_t len)
{
    size_t start = field_begin(line);
    append_key(line, key);
    append_raw(line, text, len);
    field_end(line, start);
}

void cps_log_int(struct cps_log_line *line, const char *key, long long value)
{
    if (!line->enabled)
        return;
    char text[32];
    int n = snprintf(text, sizeof text, "%lld", value);
    append_bare_field(line, key, text, (size_t)n);
}

void cps_log_num(struct cps_log_line *line, const char *key, double value)
{
    if (!line->enabled)
        return;
    if (!isfinite(value)) {
        cps_log_str(line, key, isnan(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf");
        return;
    }
    char text[40];
    int n = snprintf(text, sizeof text, "%.6g", value);
    append_bare_field(line, key, text, (size_t)n);
}

void cps_log_begin(struct cps_log_line *line, enum cps_log_level level, const char *message)
{
    line->len = 0;
    line->truncated = 0;
    line->overflow = 0;
    line->enabled = level >= log_min_level;
    if (!line->enabled)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             now.tv_nsec / 1000000L);
    if (log_format == CPS_LOG_JSON) {
        /* every later key is written as ,"key": */
        append_raw(line, "{\"time\":\"", 9);
        append_raw(line, stamp, strlen(stamp));
        append_raw(line, "\"", 1);
    } else {
        append_raw(line, "time=", 5);
        append_raw(line, stamp, strlen(stamp));
    }
    cps_log_str(line, "level", level_names[level]);
    cps_log_str(line, "msg", message);
}

void cps_log_end(struct cps_log_line *line)
{
    if (!line->enabled)
        return;
    if (line->truncated) {
        /* LOG_TAIL_RESERVE keeps room for this */
        const char *marker = log_format == CPS_LOG_JSON ? ",\"truncated\":true" : " truncated=true";
        memcpy(line->buffer + line->len, marker, strlen(marker));
        line->len += strlen(marker);
    }
    if (log_format == CPS_LOG_JSON)
        line->buffer[line->len++] = '}';
    line->buffer[line->len++] = '\n';
    const char *p = line->buffer;
    size_t left = line->len;
    while (left > 0) {
        ssize_t n = write(log_fd, p, left);
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    line->enabled = 0;
}

void cps_log_message(enum cps_log_level level, const char *message, const char *error)
{
    struct cps_log_line line;
    cps_log_begin(&line, level, message);
    if (error)
        cps_log_str(&line, "error", error);
    cps_log_end(&line);
}
