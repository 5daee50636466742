/*
 * Structured logging for the controller: one line per event, logfmt
 * (`time=... level=info msg="tick" target=shop/api desired=5`) or JSON
 * (`--log-format json`), on stderr.
 *
 * A line is built field by field into a fixed buffer and written with one
 * write(2), so lines from the loop never interleave. Values are escaped;
 * secrets are never passed here (the callers log token *files*, not tokens).
 */
#ifndef CPS_LOG_H
#define CPS_LOG_H

#include <stddef.h>
#include <stdint.h>

enum cps_log_level { CPS_LOG_DEBUG = 0, CPS_LOG_INFO, CPS_LOG_WARN, CPS_LOG_ERROR };
enum cps_log_format { CPS_LOG_TEXT = 0, CPS_LOG_JSON };

#define CPS_LOG_LINE_MAX 4096

/* Process-wide settings (set once at start-up, before the loop runs). */
void cps_log_setup(enum cps_log_format format, enum cps_log_level min_level, int fd);

/* "debug", "info", "warn"/"warning", "error" -> level; -1 if unknown. */
int cps_log_level_parse(const char *text);

struct cps_log_line {
    char buffer[CPS_LOG_LINE_MAX];
    size_t len;
    int enabled;   /* 0 when below the level: the field calls do nothing */
    int truncated; /* a field was dropped for want of room */
    int overflow;  /* the field being written does not fit */
};

/* Start a line with time, level and message. */
void cps_log_begin(struct cps_log_line *line, enum cps_log_level level, const char *message);
void cps_log_str(struct cps_log_line *line, const char *key, const char *value);
void cps_log_int(struct cps_log_line *line, const char *key, long long value);
/* Numbers keep 6 significant digits; NaN/Inf are written as strings. */
void cps_log_num(struct cps_log_line *line, const char *key, double value);
/* Write the line (with a newline) in one write(2). */
void cps_log_end(struct cps_log_line *line);

/* One-field convenience: a message and an optional "error" text. */
void cps_log_message(enum cps_log_level level, const char *message, const char *error);

#endif
