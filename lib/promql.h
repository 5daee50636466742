/*
 * PromQL and the Prometheus HTTP API, pure parts: escaping values into
 * queries, `$namespace`/`$deployment` substitution, and decoding an instant
 * query's JSON answer into (namespace, name, value, time) samples.
 *
 * Nothing here does I/O; controller/prom.c sends the requests.
 */
#ifndef CPS_PROMQL_H
#define CPS_PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Write `in` as a double-quoted PromQL string literal into out (cap bytes,
 * NUL-terminated): backslash, double quote and control bytes are escaped
 * (\\, \", \n, \r, \t, \xHH), and so is any byte that is not part of valid
 * UTF-8, so no value can end the literal early or change the query around
 * it. Returns the length written (without the NUL), or -1 when cap is too
 * small (out is then an empty string when cap > 0). */
int cps_promql_escape_string(const char *in, char *out, size_t cap);

/* Replace each `$namespace` and `$deployment` in query by the target's
 * namespace and name. Where the placeholder stands alone it becomes a
 * complete string literal (`{namespace=$namespace}`); inside a quoted string
 * (`"$namespace"`, `'$deployment'`, `"$deployment-.*"`) the value is escaped
 * for that string, and when the string is the operand of =~ or !~ it is also
 * escaped as a regular expression, so `pod=~"$deployment-.*"` matches only
 * that Deployment's pods. A value that cannot be written into a backtick raw
 * string (it holds a backtick) is an error. Returns a malloc'd query the
 * caller frees, or NULL with err set. */
char *cps_promql_substitute(const char *query, const char *namespace, const char *name,
                            struct cps_err *err);

/* 1 when the query has a `$namespace` or `$deployment` placeholder (it then
 * runs once per target instead of once per tick). */
int cps_promql_has_placeholders(const char *query);

/* One sample of an instant vector (or the scalar, with NULL labels). */
struct cps_prom_sample {
    char *namespace;      /* value of the namespace label, or NULL */
    char *name;           /* value of the deployment label, or NULL */
    double value;         /* may be NaN or +-Inf, as Prometheus sent it */
    int64_t timestamp_ms; /* the sample's evaluation time */
};

struct cps_prom_result {
    size_t n_samples;
    struct cps_prom_sample *samples;
};

/* Hard cap on the samples one answer may hold, whatever max_series says. */
#define CPS_PROM_MAX_SAMPLES 1000000
/* JSON units (see json_budget.h) one series may cost: `{"metric": {...},
 * "value": [t, "v"]}` is 6 plus 2 per label, so 32 allows 13 labels. At
 * about 130 bytes of jansson heap per unit, that bounds the decoded answer
 * to ~4 KiB per series. */
#define CPS_PROM_UNITS_PER_SERIES 32u
/* The envelope around the series: status, data, resultType, warnings. */
#define CPS_PROM_UNITS_SLACK 64u

/* Prometheus's "warnings" on a successful answer: a partial answer (a
 * Thanos or Cortex store that did not answer, a query limit) or doubtful
 * data (a histogram without its "le" label) says success and warns. Such an
 * answer is refused like a failed one, so a partial sum never stands for
 * the whole (and so never scales down). Notes that Prometheus itself marks
 * as information ("PromQL info: ...", sent among the warnings by 2.45-2.49)
 * do not refuse it. Returns the first refusing warning's text (a
 * placeholder when the field is malformed), or NULL when there is none.
 * `root` is the answer's jansson root. */
struct json_t;
const char *cps_prom_refusing_warning(const struct json_t *root);

/* -1 with err set (naming `source` and the warning) when the answer has
 * a refusing warning (cps_prom_refusing_warning), else 0. */
int cps_prom_check_warnings(const struct json_t *root, const char *source, struct cps_err *err);

/* Decode the JSON body of /api/v1/query. `namespace_label` and `name_label`
 * are the label names that identify a target (config prometheus.labels).
 * Vector and scalar results are accepted; a matrix or string result, a
 * status other than "success", a malformed sample or more than
 * `max_series` samples (capped at CPS_PROM_MAX_SAMPLES) is an error. The
 * cap is checked on the bytes BEFORE they are decoded (json_budget.h:
 * CPS_PROM_UNITS_PER_SERIES each), so memory is bounded by the series
 * cap, not by the bytes received. `source` names the answer in
 * messages ("prometheus: qps"); JSON syntax errors carry line:col, shape
 * errors the JSON path. On success `out` owns its samples: release with
 * cps_prom_result_release. On failure `out` is left empty. */
int cps_prom_decode_instant(const char *body, size_t len, const char *namespace_label,
                            const char *name_label, size_t max_series, const char *source,
                            struct cps_prom_result *out, struct cps_err *err);

/* One sample as the decoder walks the answer: the labels point into the
 * decoded tree (valid only during the callback; NULL when absent). */
struct cps_prom_sample_ref {
    const char *namespace, *name;
    double value;
    int64_t timestamp_ms;
    size_t series;  /* its position in data.result (0 for a scalar) */
    int guessed;    /* 1: the labels are the guess's, matched byte for byte */
};

/* Called for each sample in answer order; `n` is the answer's sample
 * count. Non-zero stops the walk (out of memory). */
typedef int cps_prom_sample_cb(const struct cps_prom_sample_ref *sample, size_t n, void *user);

/* cps_prom_decode_instant without the copies: the same checks, caps and
 * messages, but each sample goes to sample_cb as the tree is walked and
 * the tree is freed before returning; nothing is allocated per sample.
 * On -1 (err set) some samples may already have been passed: a caller
 * that must not act on a bad answer keeps them until 0 is returned. */
int cps_prom_decode_instant_each(const char *body, size_t len, const char *namespace_label,
                                 const char *name_label, size_t max_series, const char *source,
                                 cps_prom_sample_cb *sample_cb, void *user, struct cps_err *err);

/* cps_prom_decode_instant_each by the whole-tree path alone, which is the
 * reference the split path is held to (the differential fuzz target and
 * test_promql compare the two). Same contract. */
int cps_prom_decode_instant_whole(const char *body, size_t len, const char *namespace_label,
                                  const char *name_label, size_t max_series, const char *source,
                                  cps_prom_sample_cb *sample_cb, void *user, struct cps_err *err);

/* A guess at series k's labels: the target it was the last time. 0 and
 * *namespace, *name set (valid until the decode returns), or -1 for none. */
typedef int cps_prom_guess_cb(size_t series, const char **namespace, const char **name,
                              void *user);

/* cps_prom_decode_instant_each with guesses, for answers that come back
 * with the same series in the same order tick after tick. Before series
 * k is parsed, guess_cb names the target expected there; the decoder
 * compares the series' bytes with the exact bytes Prometheus sends for
 * that target (the metric object holding only the two labels, in
 * label-name order, no escapes needed). On a match only the
 * sample pair [time, "value"] goes through jansson, and the sample is
 * passed with guessed = 1 and the guess's labels: the same sample the
 * whole tree gives, since those bytes decode to exactly those labels.
 * Anything else (no guess, other bytes, other labels, whitespace, a
 * label needing an escape) is parsed whole as before. Same contract and
 * outcome as cps_prom_decode_instant_each; guess_cb NULL is that. */
int cps_prom_decode_instant_guided(const char *body, size_t len, const char *namespace_label,
                                   const char *name_label, size_t max_series, const char *source,
                                   cps_prom_guess_cb *guess_cb, cps_prom_sample_cb *sample_cb,
                                   void *user, struct cps_err *err);

/* How many series the guided decoder has taken by a matched guess in this
 * process: for the tests, which must know the guess path ran. */
size_t cps_prom_guessed_series(void);

/* How many answers the split decoder has decoded in this process (the
 * rest went whole): for the tests, which must know the split path ran. */
size_t cps_prom_split_decodes(void);

/* Free what a result owns and leave it empty. NULL is a no-op. */
void cps_prom_result_release(struct cps_prom_result *result);

#endif
