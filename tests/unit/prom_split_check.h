/*
 * The split Prometheus decoder held to the whole-tree one: both decode an
 * answer, and the outcome must be the same: the return code, and then
 * either every sample (value bits, timestamp, both labels, in order) or
 * the error (source, line, column, message). Shared by test_promql and the
 * fuzz_prom target. Returns 0 when they agree; on disagreement it names
 * the first difference in `why`.
 */
#ifndef CPS_PROM_SPLIT_CHECK_H
#define CPS_PROM_SPLIT_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql.h"

struct split_check_sample {
    uint64_t value_bits;
    int64_t timestamp_ms;
    char *namespace, *name;
};

struct split_check_run {
    struct split_check_sample *samples;
    size_t n, cap;
    int rc;
    struct cps_err err;
};

static int split_check_record_cb(const struct cps_prom_sample_ref *ref, size_t n, void *user)
{
    (void)n;
    struct split_check_run *run = user;
    if (run->n == run->cap) {
        size_t cap = run->cap ? 2 * run->cap : 16;
        struct split_check_sample *grown = realloc(run->samples, cap * sizeof *grown);
        if (!grown)
            return -1;
        run->samples = grown;
        run->cap = cap;
    }
    struct split_check_sample *s = &run->samples[run->n++];
    memcpy(&s->value_bits, &ref->value, sizeof s->value_bits);
    s->timestamp_ms = ref->timestamp_ms;
    s->namespace = ref->namespace ? strdup(ref->namespace) : NULL;
    s->name = ref->name ? strdup(ref->name) : NULL;
    return 0;
}

static void split_check_release(struct split_check_run *run)
{
    for (size_t i = 0; i < run->n; i++) {
        free(run->samples[i].namespace);
        free(run->samples[i].name);
    }
    free(run->samples);
}

static int split_check_same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int split_check_compare(const char *body, size_t len, size_t max_series, char *why,
                               size_t why_size)
{
    struct split_check_run split = {0}, whole = {0};
    split.rc = cps_prom_decode_instant_each(body, len, "namespace", "deployment", max_series,
                                            "prometheus: qps", split_check_record_cb, &split,
                                            &split.err);
    whole.rc = cps_prom_decode_instant_whole(body, len, "namespace", "deployment", max_series,
                                             "prometheus: qps", split_check_record_cb, &whole,
                                             &whole.err);
    int differ = 0;
    if (split.rc != whole.rc) {
        differ = snprintf(why, why_size, "rc %d, whole tree %d (%s)", split.rc, whole.rc,
                          split.rc ? split.err.message : whole.err.message);
    } else if (split.rc != 0) {
        if (strcmp(split.err.source, whole.err.source) != 0 ||
            split.err.line != whole.err.line || split.err.col != whole.err.col ||
            strcmp(split.err.message, whole.err.message) != 0)
            differ = snprintf(why, why_size, "error %d:%d %s, whole tree %d:%d %s", split.err.line,
                              split.err.col, split.err.message, whole.err.line, whole.err.col,
                              whole.err.message);
    } else if (split.n != whole.n) {
        differ = snprintf(why, why_size, "%zu samples, whole tree %zu", split.n, whole.n);
    } else {
        for (size_t i = 0; i < split.n && !differ; i++) {
            const struct split_check_sample *a = &split.samples[i], *b = &whole.samples[i];
            if (a->value_bits != b->value_bits || a->timestamp_ms != b->timestamp_ms ||
                !split_check_same_text(a->namespace, b->namespace) ||
                !split_check_same_text(a->name, b->name))
                differ = snprintf(why, why_size, "sample %zu differs", i);
        }
    }
    split_check_release(&split);
    split_check_release(&whole);
    return differ ? -1 : 0;
}

#endif
