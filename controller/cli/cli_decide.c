/*
 * `cpscale decide [--config FILE] --input OBS.json`: one decision from a
 * JSON observation and history (format in docs/design.md), printed as JSON.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_flags.h"
#include "commands.h"
#include "decide.h"
#include "json_pos.h"
#include "units.h"

#define INPUT_MAX_BYTES (16u << 20)
/* History entries accepted from the input (each is a few bytes of JSON). */
#define HISTORY_MAX_ENTRIES 100000

static void decide_usage(FILE *out)
{
    fputs("usage: cpscale decide [--config FILE] --input OBS.json\n"
          "\n"
          "Make one decision from a JSON observation and history and print\n"
          "{\"desired\": N, \"reason\": \"...\", \"detail\": \"...\", ...}.\n"
          "Input (times in seconds on any consistent clock):\n"
          "  {\"now\": 1000,\n"
          "   \"target\": {\"min_replicas\": 1, \"max_replicas\": 50, \"behavior\": {...}},\n"
          "   \"observation\": {\"qps\": 950, \"p95_ms\": 80.5, \"cpu_utilization\": 0.61,\n"
          "                   \"replicas\": 10, \"ready_replicas\": 9, \"cost_per_pod_hour\": 0.05},\n"
          "   (optional: \"budget_qps\" and \"budget_p95_ms\", of the last scrape interval)\n"
          "   \"history\": {\"recommendations\": [{\"t\": 985, \"replicas\": 12}],\n"
          "               \"scale_events\": [{\"t\": 940, \"change\": 3}]},\n"
          "   \"recommendation\": 14}\n"
          "`target` uses config.yaml's target keys, merged over --config's defaults.\n"
          "With `recommendation`, the policy is skipped and only the rails apply\n"
          "(stabilization, rate limits, min/max, budget cap).\n"
          "A missing or null observation field counts as a missing metric.\n"
          "Exit status: 0 ok, 1 runtime failure, 2 usage, config or input error.\n",
          out);
}

/*
 * The input document: its name in messages ("-" for stdin, as read) and its
 * text. jansson's tree of it keeps no positions, so an error found in the
 * tree is placed back in the text by its path (json_pos.h).
 */
struct input_doc {
    const char *source;
    const char *text;
    size_t len;
};

/* The deepest path decide reads: history.recommendations[i].t. */
#define INPUT_PATH_MAX 4
/* Bytes of a key quoted in a path (an unknown key may be long). */
#define PATH_KEY_SHOWN 100

/* A path from the top-level object: keys and array indices. */
struct input_path {
    struct cps_json_step steps[INPUT_PATH_MAX];
    size_t n;
};

static struct input_path path_key(struct input_path parent, const char *key)
{
    if (parent.n < INPUT_PATH_MAX)
        parent.steps[parent.n++] = (struct cps_json_step){.key = key};
    return parent;
}

static struct input_path path_index(struct input_path parent, size_t index)
{
    if (parent.n < INPUT_PATH_MAX)
        parent.steps[parent.n++] = (struct cps_json_step){.key = NULL, .index = index};
    return parent;
}

/* The path as messages name it, "history.recommendations[3].t" ("$" for
 * the document itself). */
static void path_text(const struct input_path *path, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (path->n == 0)
        snprintf(buf, size, "$");
    for (size_t i = 0; i < path->n && used < size; i++) {
        const struct cps_json_step *step = &path->steps[i];
        int n = step->key ? snprintf(buf + used, size - used, "%s%.*s", i ? "." : "",
                                     PATH_KEY_SHOWN, step->key)
                          : snprintf(buf + used, size - used, "[%zu]", step->index);
        used += n > 0 ? (size_t)n : 0;
    }
}

/*
 * Print "SOURCE:LINE:COL: PATH: message" and return -1. The position is
 * that of the value at `path` or, with at_key, of its key (an unknown
 * key). A value that is not in the text (a required key left out) is
 * placed at the nearest enclosing value that is: the object that lacks it.
 * Without a position at all (not expected: jansson parsed this very text)
 * the message is "SOURCE: PATH: message".
 */
static int input_error(const struct input_doc *doc, const struct input_path *path, int at_key,
                       const char *message)
{
    struct cps_json_cursor at = {.line = 0, .col = 0};
    size_t n = path->n + 1;
    int found = 0;
    while (!found && n-- > 0)
        found = cps_json_locate(doc->text, doc->len, path->steps, n, at_key && n == path->n,
                                &at) == 0;
    char where[INPUT_PATH_MAX * (PATH_KEY_SHOWN + 24)];
    path_text(path, where, sizeof where);
    struct cps_err err;
    cps_err_set(&err, doc->source, found ? at.line : 0, found ? at.col : 0, "%s: %s", where,
                message);
    cps_err_print(stderr, NULL, &err);
    return -1;
}

/* A finite JSON number at parent.key (or NULL/absent -> *present = 0). */
static int get_number(const struct input_doc *doc, json_t *object, struct input_path parent,
                      const char *key, double *out, int *present)
{
    json_t *v = json_object_get(object, key);
    struct input_path path = path_key(parent, key);
    *present = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return input_error(doc, &path, 0, "expected a number");
    double x = json_number_value(v);
    if (!isfinite(x))
        return input_error(doc, &path, 0, "expected a finite number");
    *out = x;
    *present = 1;
    return 0;
}

/* A time in seconds at parent.key: finite and within [0, 1e11] (the year
 * 5138), so that its milliseconds, and those minus any window, fit. */
#define DECIDE_TIME_MAX_S 1e11
static int get_time(const struct input_doc *doc, json_t *object, struct input_path parent,
                    const char *key, double *out, int *present)
{
    if (get_number(doc, object, parent, key, out, present) < 0)
        return -1;
    if (*present && (*out < 0 || *out > DECIDE_TIME_MAX_S)) {
        struct input_path path = path_key(parent, key);
        return input_error(doc, &path, 0, "out of range: seconds since the epoch, 0 to 1e11");
    }
    return 0;
}

/* An integer-valued number within [lo, hi] at parent.key. */
static int get_int(const struct input_doc *doc, json_t *object, struct input_path parent,
                   const char *key, double lo, double hi, int64_t *out, int *present)
{
    double x = 0;
    if (get_number(doc, object, parent, key, &x, present) < 0)
        return -1;
    if (!*present)
        return 0;
    if (x != floor(x) || x < lo || x > hi) {
        char msg[128];
        struct input_path path = path_key(parent, key);
        snprintf(msg, sizeof msg, "expected an integer in [%.0f, %.0f]", lo, hi);
        return input_error(doc, &path, 0, msg);
    }
    *out = (int64_t)x;
    return 0;
}

/* The first key of `object` that is not in known[0..n_known), or NULL. */
static const char *unknown_key(json_t *object, const char *const *known, size_t n_known)
{
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value) {
        size_t i = 0;
        while (i < n_known && strcmp(key, known[i]) != 0)
            i++;
        if (i == n_known)
            return key;
    }
    return NULL;
}

/*
 * Observation fields -> struct; absent, null or negative numbers are marked
 * missing (the decision then holds instead of scaling down).
 */
static int read_observation(const struct input_doc *doc, json_t *o, struct cps_observation *obs)
{
    const struct input_path path = path_key((struct input_path){.n = 0}, "observation");
    memset(obs, 0, sizeof *obs);
    if (!o)
        return input_error(doc, &path, 0, "required (an object with at least \"replicas\")");
    if (!json_is_object(o))
        return input_error(doc, &path, 0, "expected an object");
    static const struct {
        const char *key;
        unsigned bit;
        size_t offset;
    } numbers[] = {
        {"qps", CPS_METRIC_BIT(CPS_METRIC_QPS), offsetof(struct cps_observation, qps)},
        {"p95_ms", CPS_METRIC_BIT(CPS_METRIC_P95), offsetof(struct cps_observation, p95_ms)},
        {"cpu_utilization", CPS_METRIC_BIT(CPS_METRIC_CPU), offsetof(struct cps_observation, cpu_utilization)},
        {"cost_per_pod_hour", CPS_METRIC_BIT(CPS_METRIC_COST), offsetof(struct cps_observation, cost_per_pod_hour)},
        {"budget_qps", CPS_METRIC_BIT(CPS_METRIC_BUDGET_QPS), offsetof(struct cps_observation, budget_qps)},
        {"budget_p95_ms", CPS_METRIC_BIT(CPS_METRIC_BUDGET_P95), offsetof(struct cps_observation, budget_p95_ms)},
    };
    static const char *const known[] = {"qps", "p95_ms", "cpu_utilization", "cost_per_pod_hour",
                                        "budget_qps", "budget_p95_ms", "replicas",
                                        "ready_replicas"};
    const char *unknown = unknown_key(o, known, sizeof known / sizeof known[0]);
    if (unknown) {
        struct input_path key_path = path_key(path, unknown);
        return input_error(doc, &key_path, 1, "unknown key");
    }
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        int present = 0;
        double *slot = (double *)((char *)obs + numbers[i].offset);
        if (get_number(doc, o, path, numbers[i].key, slot, &present) < 0)
            return -1;
        if (!present || *slot < 0.0)
            obs->missing |= numbers[i].bit;
    }
    int64_t n = 0;
    int present = 0;
    if (get_int(doc, o, path, "replicas", 0, 1e6, &n, &present) < 0)
        return -1;
    if (!present) {
        struct input_path replicas = path_key(path, "replicas");
        return input_error(doc, &replicas, 0, "required (the current spec.replicas)");
    }
    obs->replicas = (int32_t)n;
    if (get_int(doc, o, path, "ready_replicas", 0, 1e6, &n, &present) < 0)
        return -1;
    obs->ready_replicas = present ? (int32_t)n : 0;
    if (!present)
        obs->missing |= CPS_METRIC_BIT(CPS_METRIC_READY);
    /* optional: the budget counts by qps and p95_ms without them */
    obs->budget_have = CPS_METRIC_BUDGET_BITS & ~obs->missing;
    obs->missing &= ~CPS_METRIC_BUDGET_BITS;
    return 0;
}

/*
 * One history list (at list_path): n entries {"t": seconds, KEY: integer
 * in [lo, hi]}, each added to the history by add(). 0, or -1 with the
 * error printed at the entry (or its field).
 */
static int read_entries(const struct input_doc *doc, json_t *list, size_t n,
                        struct input_path list_path, const char *key, double lo, double hi,
                        void (*add)(struct cps_history *history, int64_t t_ms, int32_t value),
                        struct cps_history *history)
{
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i);
        struct input_path entry = path_index(list_path, i);
        char message[96];
        double t = 0;
        int64_t v = 0;
        int has_t = 0, has_v = 0;
        if (!json_is_object(e)) {
            snprintf(message, sizeof message, "expected {\"t\": ..., \"%s\": ...}", key);
            return input_error(doc, &entry, 0, message);
        }
        const char *const known[] = {"t", key};
        const char *unknown = unknown_key(e, known, sizeof known / sizeof known[0]);
        if (unknown) {
            struct input_path key_path = path_key(entry, unknown);
            return input_error(doc, &key_path, 1, "unknown key");
        }
        if (get_time(doc, e, entry, "t", &t, &has_t) < 0 ||
            get_int(doc, e, entry, key, lo, hi, &v, &has_v) < 0)
            return -1;
        if (!has_t || !has_v) {
            snprintf(message, sizeof message, "needs \"t\" and \"%s\"", key);
            return input_error(doc, &entry, 0, message);
        }
        add(history, llround(t * CPS_MS_PER_S), (int32_t)v);
    }
    return 0;
}

/* history.recommendations and history.scale_events -> the rails' history. */
static int read_history(const struct input_doc *doc, json_t *h, struct cps_history **out)
{
    const struct input_path path = path_key((struct input_path){.n = 0}, "history");
    const struct input_path recs_path = path_key(path, "recommendations");
    const struct input_path events_path = path_key(path, "scale_events");
    json_t *recs = h ? json_object_get(h, "recommendations") : NULL;
    json_t *events = h ? json_object_get(h, "scale_events") : NULL;
    if (h && !json_is_object(h))
        return input_error(doc, &path, 0, "expected an object");
    static const char *const known[] = {"recommendations", "scale_events"};
    const char *unknown = h ? unknown_key(h, known, sizeof known / sizeof known[0]) : NULL;
    if (unknown) {
        struct input_path key_path = path_key(path, unknown);
        return input_error(doc, &key_path, 1, "unknown key");
    }
    if (recs && !json_is_array(recs))
        return input_error(doc, &recs_path, 0, "expected an array");
    if (events && !json_is_array(events))
        return input_error(doc, &events_path, 0, "expected an array");
    size_t n_recs = recs ? json_array_size(recs) : 0, n_events = events ? json_array_size(events) : 0;
    if (n_recs > HISTORY_MAX_ENTRIES || n_events > HISTORY_MAX_ENTRIES)
        return input_error(doc, n_recs > HISTORY_MAX_ENTRIES ? &recs_path : &events_path, 0,
                           "too many entries");
    struct cps_history *history = cps_history_new(n_recs + 1, n_events + 1);
    if (!history)
        return input_error(doc, &path, 0, "out of memory");
    if (read_entries(doc, recs, n_recs, recs_path, "replicas", 0, 1e6,
                     cps_history_add_recommendation, history) < 0 ||
        read_entries(doc, events, n_events, events_path, "change", -1e6, 1e6,
                     cps_history_add_scale_event, history) < 0) {
        cps_history_free(history);
        return -1;
    }
    *out = history;
    return 0;
}

/* Parse the input document, run cps_decide, print the decision. */
static int decide_json(const char *source, const char *text, size_t len,
                       const struct cps_config *config)
{
    json_error_t jerr;
    /* a UTF-8 byte order mark, as some editors write: skipped, as in configs
     * and traces (the columns of an error still count from the file's start) */
    int bom = len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0;
    json_t *root = json_loadb(text + (bom ? 3 : 0), len - (bom ? 3 : 0), JSON_REJECT_DUPLICATES,
                              &jerr);
    if (!root) {
        if (bom && jerr.line == 1)
            jerr.column += 1; /* the mark is one character */
        fprintf(stderr, "%s:%d:%d: %s\n", source, jerr.line, jerr.column, jerr.text);
        return CPS_EXIT_USAGE;
    }
    const struct input_doc doc = {.source = source, .text = text, .len = len};
    const struct input_path top = {.n = 0};
    int rc = CPS_EXIT_USAGE;
    struct cps_target target;
    int have_target = 0;
    struct cps_history *history = NULL;
    if (!json_is_object(root)) {
        input_error(&doc, &top, 0, "expected a JSON object");
        goto done;
    }
    static const char *const known[] = {"now", "target", "observation", "history",
                                        "recommendation"};
    const char *unknown = unknown_key(root, known, sizeof known / sizeof known[0]);
    if (unknown) {
        struct input_path key_path = path_key(top, unknown);
        input_error(&doc, &key_path, 1,
                    "unknown key (now, target, observation, history, recommendation)");
        goto done;
    }
    double now = 0;
    int present = 0;
    if (get_time(&doc, root, top, "now", &now, &present) < 0)
        goto done;
    if (!present) {
        struct input_path now_path = path_key(top, "now");
        input_error(&doc, &now_path, 0, "required (seconds)");
        goto done;
    }
    json_t *target_json = json_object_get(root, "target");
    struct cps_err err;
    cps_err_clear(&err);
    if (!target_json) {
        if (cps_target_copy(&target, &config->defaults) < 0) {
            rc = CPS_EXIT_RUNTIME;
            goto done;
        }
    } else {
        /* the target's own errors come from the config walk, placed in the
         * text from where the target starts */
        struct input_path target_path = path_key(top, "target");
        struct cps_json_cursor at;
        int located = cps_json_locate(text, len, target_path.steps, target_path.n, 0, &at) == 0;
        if (cps_target_from_json(target_json, &config->defaults, source, located ? &at : NULL,
                                 &target, &err) < 0) {
            cps_err_print(stderr, NULL, &err);
            goto done;
        }
    }
    have_target = 1;
    struct cps_observation obs;
    if (read_observation(&doc, json_object_get(root, "observation"), &obs) < 0)
        goto done;
    if (read_history(&doc, json_object_get(root, "history"), &history) < 0)
        goto done;
    int64_t given = 0;
    int has_given = 0;
    if (get_int(&doc, root, top, "recommendation", 0, 1e6, &given, &has_given) < 0)
        goto done;
    int32_t given32 = (int32_t)given;
    struct cps_policy_state *state = calloc(1, sizeof *state);
    if (!state) {
        rc = CPS_EXIT_RUNTIME;
        goto done;
    }
    cps_policy_state_init(state);
    struct cps_decision d;
    cps_decide(&target, &obs, history, state, llround(now * CPS_MS_PER_S), has_given ? &given32 : NULL,
               &d);
    free(state);
    json_t *out = json_object();
    json_object_set_new(out, "desired", json_integer(d.desired));
    json_object_set_new(out, "reason", json_string(cps_reason_name(d.reason)));
    char detail[512];
    cps_decision_describe(&d, detail, sizeof detail);
    json_object_set_new(out, "detail", json_string(detail));
    json_object_set_new(out, "bound", json_string(cps_decision_bound_name(&d)));
    json_object_set_new(out, "current", json_integer(obs.replicas));
    json_object_set_new(out, "recommendation", json_integer(d.recommendation));
    if (isfinite(d.forecast_qps) && d.forecast_qps > 0)
        json_object_set_new(out, "forecast_qps", json_real(d.forecast_qps));
    if (isfinite(d.rps_per_pod) && d.rps_per_pod > 0)
        json_object_set_new(out, "rps_per_pod", json_real(d.rps_per_pod));
    int wrote = json_dumpf(out, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(out);
    rc = wrote == 0 && putchar('\n') != EOF && fflush(stdout) == 0 ? CPS_EXIT_OK : CPS_EXIT_RUNTIME;
done:
    cps_history_free(history);
    if (have_target)
        cps_target_release(&target);
    json_decref(root);
    return rc;
}

int cli_decide(int argc, char **argv)
{
    static const enum cli_flag decide_flags[] = {
        CLI_FLAG_CONFIG, CLI_FLAG_INPUT, CLI_FLAG_HELP,
    };
    const char *config_path = NULL, *input_path = NULL;
    int opt;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "", decide_flags, CLI_N_FLAGS(decide_flags))) != -1) {
        switch (opt) {
        case CLI_FLAG_CONFIG: config_path = optarg; break;
        case CLI_FLAG_INPUT: input_path = optarg; break;
        case CLI_FLAG_HELP: decide_usage(stdout); return CPS_EXIT_OK;
        default: decide_usage(stderr); return CPS_EXIT_USAGE;
        }
    }
    if (!input_path || optind != argc) {
        decide_usage(stderr);
        return CPS_EXIT_USAGE;
    }
    struct cps_config *config = NULL;
    if (config_path) {
        config = cps_load_config_file(config_path);
        if (!config)
            return CPS_EXIT_USAGE;
    } else {
        config = calloc(1, sizeof *config);
        if (!config)
            return CPS_EXIT_RUNTIME;
        cps_config_init_defaults(config);
    }
    char *text = NULL;
    size_t len = 0;
    int rc;
    if (cps_read_file(input_path, INPUT_MAX_BYTES, &text, &len) < 0)
        rc = CPS_EXIT_USAGE;
    else
        rc = decide_json(input_path, text, len, config);
    free(text);
    cps_config_free(config);
    return rc;
}
