/*
 * The split Prometheus decoder held to the whole-tree one: both decode an
 * answer, and the outcome must be the same: the return code, and then
 * either every sample (value bits, timestamp, both labels, in order) or
 * the error (source, line, column, message). The split decoder runs four
 * times: without guesses, and guided by right guesses (the whole tree's
 * own labels, series by series), by guesses shifted one series on, and
 * by one fixed guess (namespace "a", deployment "b") for every series.
 * Shared by test_promql and the fuzz_prom target. Returns 0 when all
 * agree; on disagreement it names the first difference in `why`.
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

enum split_check_guess { SPLIT_CHECK_NO_GUESS, SPLIT_CHECK_RIGHT, SPLIT_CHECK_SHIFTED,
                         SPLIT_CHECK_FIXED };

struct split_check_run {
    struct split_check_sample *samples;
    size_t n, cap;
    int rc;
    struct cps_err err;
    enum split_check_guess guess;
    const struct split_check_run *whole; /* where right and shifted guesses come from */
};

static int split_check_guess_cb(size_t k, const char **namespace, const char **name, void *user)
{
    const struct split_check_run *run = user;
    if (run->guess == SPLIT_CHECK_FIXED) {
        *namespace = "a";
        *name = "b";
        return 0;
    }
    size_t from = run->guess == SPLIT_CHECK_SHIFTED ? k + 1 : k;
    if (run->whole->rc != 0 || from >= run->whole->n)
        return -1;
    *namespace = run->whole->samples[from].namespace;
    *name = run->whole->samples[from].name;
    return 0;
}

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

/* snprintf into `why`, truncating quietly: a message, not a result. */
#define split_check_why(why, size, ...)                                                           \
    do {                                                                                          \
        if (snprintf(why, size, __VA_ARGS__) < 0)                                                 \
            (why)[0] = '\0';                                                                      \
    } while (0)

/* Does `run` come out as `whole` did? 0, or -1 with the difference in why. */
static int split_check_same(const struct split_check_run *run, const struct split_check_run *whole,
                            char *why, size_t why_size)
{
    static const char *const guess_names[] = {"no guess", "right guesses", "shifted guesses",
                                              "a fixed guess"};
    const char *how = guess_names[run->guess];
    if (run->rc != whole->rc) {
        split_check_why(why, why_size, "%s: rc %d, whole tree %d (%s)", how, run->rc, whole->rc,
                 run->rc ? run->err.message : whole->err.message);
        return -1;
    }
    if (run->rc != 0) {
        if (strcmp(run->err.source, whole->err.source) != 0 || run->err.line != whole->err.line ||
            run->err.col != whole->err.col || strcmp(run->err.message, whole->err.message) != 0) {
            split_check_why(why, why_size, "%s: error %d:%d %s, whole tree %d:%d %s", how, run->err.line,
                     run->err.col, run->err.message, whole->err.line, whole->err.col,
                     whole->err.message);
            return -1;
        }
        return 0;
    }
    if (run->n != whole->n) {
        split_check_why(why, why_size, "%s: %zu samples, whole tree %zu", how, run->n, whole->n);
        return -1;
    }
    for (size_t i = 0; i < run->n; i++) {
        const struct split_check_sample *a = &run->samples[i], *b = &whole->samples[i];
        if (a->value_bits != b->value_bits || a->timestamp_ms != b->timestamp_ms ||
            !split_check_same_text(a->namespace, b->namespace) ||
            !split_check_same_text(a->name, b->name)) {
            split_check_why(why, why_size, "%s: sample %zu differs", how, i);
            return -1;
        }
    }
    return 0;
}

static int split_check_compare(const char *body, size_t len, size_t max_series, char *why,
                               size_t why_size)
{
    struct split_check_run whole = {0};
    whole.rc = cps_prom_decode_instant_whole(body, len, "namespace", "deployment", max_series,
                                             "prometheus: qps", split_check_record_cb, &whole,
                                             &whole.err);
    int differ = 0;
    for (int guess = SPLIT_CHECK_NO_GUESS; guess <= SPLIT_CHECK_FIXED && !differ; guess++) {
        struct split_check_run run = {0};
        run.guess = (enum split_check_guess)guess;
        run.whole = &whole;
        run.rc = cps_prom_decode_instant_guided(
            body, len, "namespace", "deployment", max_series, "prometheus: qps",
            guess == SPLIT_CHECK_NO_GUESS ? NULL : split_check_guess_cb, split_check_record_cb,
            &run, &run.err);
        differ = split_check_same(&run, &whole, why, why_size) != 0;
        split_check_release(&run);
    }
    split_check_release(&whole);
    return differ ? -1 : 0;
}

#endif
