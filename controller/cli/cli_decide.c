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

static int input_error(const char *source, const char *path, const char *message)
{
    fprintf(stderr, "%s: %s: %s\n", source, path, message);
    return -1;
}

/* A finite JSON number at key (or NULL/absent -> *present = 0). */
static int get_number(const char *source, json_t *object, const char *key, const char *path,
                      double *out, int *present)
{
    json_t *v = json_object_get(object, key);
    *present = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return input_error(source, path, "expected a number");
    double x = json_number_value(v);
    if (!isfinite(x))
        return input_error(source, path, "expected a finite number");
    *out = x;
    *present = 1;
    return 0;
}

/* An integer-valued number within [lo, hi]. */
static int get_int(const char *source, json_t *object, const char *key, const char *path,
                   double lo, double hi, int64_t *out, int *present)
{
    double x = 0;
    if (get_number(source, object, key, path, &x, present) < 0)
        return -1;
    if (!*present)
        return 0;
    if (x != floor(x) || x < lo || x > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "expected an integer in [%.0f, %.0f]", lo, hi);
        return input_error(source, path, msg);
    }
    *out = (int64_t)x;
    return 0;
}

/*
 * Observation fields -> struct; absent, null or negative numbers are marked
 * missing (the decision then holds instead of scaling down).
 */
static int read_observation(const char *source, json_t *o, struct cps_observation *obs)
{
    memset(obs, 0, sizeof *obs);
    if (!json_is_object(o))
        return input_error(source, "observation", "expected an object");
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
    const char *known[] = {"qps", "p95_ms", "cpu_utilization", "cost_per_pod_hour",
                           "budget_qps", "budget_p95_ms", "replicas", "ready_replicas"};
    const char *key;
    json_t *value;
    json_object_foreach(o, key, value) {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            char path[160];
            snprintf(path, sizeof path, "observation.%.100s", key);
            return input_error(source, path, "unknown key");
        }
    }
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "observation.%s", numbers[i].key);
        int present = 0;
        double *slot = (double *)((char *)obs + numbers[i].offset);
        if (get_number(source, o, numbers[i].key, path, slot, &present) < 0)
            return -1;
        if (!present || *slot < 0.0)
            obs->missing |= numbers[i].bit;
    }
    int64_t n = 0;
    int present = 0;
    if (get_int(source, o, "replicas", "observation.replicas", 0, 1e6, &n, &present) < 0)
        return -1;
    if (!present)
        return input_error(source, "observation.replicas", "required (the current spec.replicas)");
    obs->replicas = (int32_t)n;
    if (get_int(source, o, "ready_replicas", "observation.ready_replicas", 0, 1e6, &n, &present) < 0)
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
 * One history list: n entries {"t": seconds, KEY: integer in [lo, hi]},
 * each added to the history by add(). 0, or -1 with the entry's path
 * printed (history.NAME[i]).
 */
static int read_entries(const char *source, json_t *list, size_t n, const char *name,
                        const char *key, double lo, double hi,
                        void (*add)(struct cps_history *history, int64_t t_ms, int32_t value),
                        struct cps_history *history)
{
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i);
        char path[96], message[96];
        snprintf(path, sizeof path, "history.%s[%zu]", name, i);
        double t = 0;
        int64_t v = 0;
        int has_t = 0, has_v = 0;
        if (!json_is_object(e)) {
            snprintf(message, sizeof message, "expected {\"t\": ..., \"%s\": ...}", key);
            return input_error(source, path, message);
        }
        if (get_number(source, e, "t", path, &t, &has_t) < 0 ||
            get_int(source, e, key, path, lo, hi, &v, &has_v) < 0 || !has_t || !has_v) {
            if (has_t && has_v)
                return -1;
            snprintf(message, sizeof message, "needs \"t\" and \"%s\"", key);
            return input_error(source, path, message);
        }
        add(history, llround(t * CPS_MS_PER_S), (int32_t)v);
    }
    return 0;
}

/* history.recommendations and history.scale_events -> the rails' history. */
static int read_history(const char *source, json_t *h, struct cps_history **out)
{
    json_t *recs = h ? json_object_get(h, "recommendations") : NULL;
    json_t *events = h ? json_object_get(h, "scale_events") : NULL;
    if (h && !json_is_object(h))
        return input_error(source, "history", "expected an object");
    if (h) {
        const char *key;
        json_t *value;
        json_object_foreach(h, key, value) {
            if (strcmp(key, "recommendations") && strcmp(key, "scale_events")) {
                char path[160];
                snprintf(path, sizeof path, "history.%.100s", key);
                return input_error(source, path, "unknown key");
            }
        }
    }
    if (recs && !json_is_array(recs))
        return input_error(source, "history.recommendations", "expected an array");
    if (events && !json_is_array(events))
        return input_error(source, "history.scale_events", "expected an array");
    size_t n_recs = recs ? json_array_size(recs) : 0, n_events = events ? json_array_size(events) : 0;
    if (n_recs > HISTORY_MAX_ENTRIES || n_events > HISTORY_MAX_ENTRIES)
        return input_error(source, "history", "too many entries");
    struct cps_history *history = cps_history_new(n_recs + 1, n_events + 1);
    if (!history)
        return input_error(source, "history", "out of memory");
    if (read_entries(source, recs, n_recs, "recommendations", "replicas", 0, 1e6,
                     cps_history_add_recommendation, history) < 0 ||
        read_entries(source, events, n_events, "scale_events", "change", -1e6, 1e6,
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
    int rc = CPS_EXIT_USAGE;
    struct cps_target target;
    int have_target = 0;
    struct cps_history *history = NULL;
    if (!json_is_object(root)) {
        input_error(source, "$", "expected a JSON object");
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "now") && strcmp(key, "target") && strcmp(key, "observation") &&
            strcmp(key, "history") && strcmp(key, "recommendation")) {
            char path[128];
            snprintf(path, sizeof path, "%.100s", key);
            input_error(source, path, "unknown key (now, target, observation, history, recommendation)");
            goto done;
        }
    }
    double now = 0;
    int present = 0;
    if (get_number(source, root, "now", "now", &now, &present) < 0)
        goto done;
    if (!present) {
        input_error(source, "now", "required (seconds)");
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
    } else if (cps_target_from_json(target_json, &config->defaults, source, &target, &err) < 0) {
        cps_err_print(stderr, NULL, &err);
        goto done;
    }
    have_target = 1;
    struct cps_observation obs;
    if (read_observation(source, json_object_get(root, "observation"), &obs) < 0)
        goto done;
    if (read_history(source, json_object_get(root, "history"), &history) < 0)
        goto done;
    int64_t given = 0;
    int has_given = 0;
    if (get_int(source, root, "recommendation", "recommendation", 0, 1e6, &given, &has_given) < 0)
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
