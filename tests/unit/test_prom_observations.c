/*
 * What `decide` is given from Prometheus answers: a fixed set of answers
 * (well-formed and awkward: NaN, +-Inf, negative values, duplicate series,
 * unknown targets, missing or non-string labels, numeric and malformed
 * values, old timestamps, bad shapes) is decoded into a table of four
 * targets by cps_targets_take_answer(), and every target's observation
 * (value, received, missing) and every error message is printed.
 *
 * The expected text, tests/unit/data/prom_observations.expected, was
 * written by the OLD decoder (jansson tree -> strdup'd label copies ->
 * lookup -> store, before the decoding was reworked for 10,000 targets),
 * by running this test with CPS_WRITE_EXPECTED=that path. The test then
 * checks that the decoder of the day gives decide the very same inputs.
 * Regenerate it only for a deliberate change of behaviour, and say so.
 * The answers are also decoded in Prometheus's label order after a warm-up
 * decode, so that the series are taken by the decoder's guesses from the
 * controller's series memo; that must print the very same text.
 * One such change since: a third series for one target no longer revives
 * a metric the second made missing (the old code toggled, so an odd number
 * of duplicates was used with the last value); the three lines that this
 * changed were regenerated, every other line is the old decoder's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "cps_test.h"
#include "strbuf.h"

#define EXPECTED_PATH "tests/unit/data/prom_observations.expected"
#define NOW_S 1700000000
#define NOW_MS ((int64_t)NOW_S * 1000)

/* qps, p95 and cost are cluster-wide; cpu is one query per target. */
static const char CONFIG[] =
    "queries:\n"
    "  qps: q_qps\n"
    "  p95_ms: q_p95\n"
    "  cpu_utilization: q_cpu{namespace=\"$namespace\",deployment=\"$deployment\"}\n"
    "  cost_per_pod_hour: q_cost\n"
    "targets:\n"
    "  - {namespace: a, deployment: x}\n"
    "  - {namespace: a, deployment: y}\n"
    "  - {namespace: b, deployment: x}\n"
    "  - {namespace: b, deployment: web}\n";

#define OK_HEAD "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
#define OK_TAIL "]}}"
#define S(ns, name, value) \
    "{\"metric\":{\"namespace\":\"" ns "\",\"deployment\":\"" name "\"},\"value\":[1700000000.5,\"" value "\"]}"

/* One answer: the metric whose query it answers, and for a per-target
 * query the target (index into CONFIG's list). */
struct answer {
    const char *what;
    enum cps_metric metric;
    int target; /* -1: the cluster-wide query */
    const char *body;
};

static const struct answer ANSWERS[] = {
    {"plain values", CPS_METRIC_QPS, -1,
     OK_HEAD S("a", "x", "120") "," S("a", "y", "0.25") "," S("b", "x", "1e3") "," S("b", "w\\u0065b", "7") OK_TAIL},
    {"NaN, +Inf, -Inf, negative", CPS_METRIC_P95, -1,
     OK_HEAD S("a", "x", "NaN") "," S("a", "y", "+Inf") "," S("b", "x", "-Inf") "," S("b", "w\\u0065b", "-3") OK_TAIL},
    {"duplicate series, unknown target, missing and numeric labels", CPS_METRIC_COST, -1,
     OK_HEAD S("a", "x", "0.05") "," S("a", "x", "0.06") "," S("a", "nope", "1") "," S("c", "x", "1") ","
     "{\"metric\":{\"deployment\":\"y\"},\"value\":[1700000000,\"2\"]},"
     "{\"metric\":{\"namespace\":\"b\",\"deployment\":7},\"value\":[1700000000,\"2\"]},"
     "{\"metric\":{\"namespace\":\"b\",\"deployment\":\"x\",\"pod\":\"p\"},\"value\":[1700000000,\"0.1\"]},"
     "{\"metric\":{\"namespace\":\"a\",\"deployment\":\"y\"},\"value\":[1600000000,\"0.2\"]}" OK_TAIL},
    {"three series for one target", CPS_METRIC_QPS, -1,
     OK_HEAD S("a", "x", "1") "," S("a", "x", "2") "," S("a", "x", "3") OK_TAIL},
    {"text values strtod reads", CPS_METRIC_QPS, -1,
     OK_HEAD S("a", "x", " 5") "," S("a", "y", "0x10") "," S("b", "x", "inf") "," S("b", "w\\u0065b", "1e400") OK_TAIL},
    {"a per-target answer", CPS_METRIC_CPU, 1,
     OK_HEAD S("a", "y", "0.5") OK_TAIL},
    {"a per-target answer with other series", CPS_METRIC_CPU, 0,
     OK_HEAD S("a", "y", "0.9") "," S("a", "x", "0.4") ","
     "{\"metric\":{},\"value\":[1700000000,\"0.3\"]}" OK_TAIL},
    {"a per-target answer without labels", CPS_METRIC_CPU, 2,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1700000000,\"0.7\"]}]}}"},
    {"a scalar for a per-target query", CPS_METRIC_CPU, 3,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1700000000,\"0.8\"]}}"},
    {"a scalar for a cluster-wide query", CPS_METRIC_QPS, -1,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1700000000,\"9\"]}}"},
    {"empty vector", CPS_METRIC_QPS, -1, OK_HEAD OK_TAIL},
    {"a number where the value string goes", CPS_METRIC_QPS, -1,
     OK_HEAD S("a", "x", "1") ",{\"metric\":{\"namespace\":\"a\",\"deployment\":\"y\"},\"value\":[1700000000,5]}" OK_TAIL},
    {"a value that is not a number", CPS_METRIC_QPS, -1, OK_HEAD S("a", "x", "1") "," S("a", "y", "abc") OK_TAIL},
    {"an empty value", CPS_METRIC_QPS, -1, OK_HEAD S("a", "x", "") OK_TAIL},
    {"a value pair of three", CPS_METRIC_QPS, -1,
     OK_HEAD "{\"metric\":{\"namespace\":\"a\",\"deployment\":\"x\"},\"value\":[1700000000,\"1\",\"2\"]}" OK_TAIL},
    {"a negative time", CPS_METRIC_QPS, -1,
     OK_HEAD "{\"metric\":{\"namespace\":\"a\",\"deployment\":\"x\"},\"value\":[-1,\"1\"]}" OK_TAIL},
    {"a time as a string", CPS_METRIC_QPS, -1,
     OK_HEAD "{\"metric\":{\"namespace\":\"a\",\"deployment\":\"x\"},\"value\":[\"1700000000\",\"1\"]}" OK_TAIL},
    {"metric not an object", CPS_METRIC_QPS, -1,
     OK_HEAD "{\"metric\":[],\"value\":[1700000000,\"1\"]}" OK_TAIL},
    {"an entry that is not an object", CPS_METRIC_QPS, -1, OK_HEAD "3" OK_TAIL},
    {"a matrix", CPS_METRIC_QPS, -1,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}"},
    {"a string result", CPS_METRIC_QPS, -1,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[1700000000,\"x\"]}}"},
    {"status error", CPS_METRIC_QPS, -1,
     "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}"},
    {"no status", CPS_METRIC_QPS, -1, "{\"data\":{}}"},
    {"no result", CPS_METRIC_QPS, -1, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\"}}"},
    {"result not an array", CPS_METRIC_QPS, -1,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}"},
    {"not JSON", CPS_METRIC_QPS, -1, "<html>bad gateway</html>"},
    {"truncated", CPS_METRIC_QPS, -1, OK_HEAD S("a", "x", "1") ","},
    {"a duplicate key", CPS_METRIC_QPS, -1,
     OK_HEAD "{\"metric\":{\"namespace\":\"a\",\"namespace\":\"b\",\"deployment\":\"x\"},\"value\":[1700000000,\"1\"]}" OK_TAIL},
    {"a NUL escaped in a label", CPS_METRIC_QPS, -1,
     OK_HEAD "{\"metric\":{\"namespace\":\"a\\u0000\",\"deployment\":\"x\"},\"value\":[1700000000,\"1\"]}" OK_TAIL},
    {"escaped label names and values", CPS_METRIC_QPS, -1,
     OK_HEAD "{\"metric\":{\"n\\u0061mespace\":\"\\u0062\",\"deployment\":\"x\"},\"value\":[1700000000,\"4\"]}" OK_TAIL},
};

/* Print every target's observation of every queried metric. */
static void print_observations(struct cps_strbuf *out, const struct cps_controller *ctl)
{
    for (size_t t = 0; t < ctl->n_targets; t++) {
        const struct cps_target_runtime *rt = &ctl->targets[t];
        const struct cps_observation *o = &rt->observation;
        cps_strbuf_printf(out, "  %s/%s received=%u missing=%u qps=%.17g p95=%.17g cpu=%.17g cost=%.17g\n",
                          rt->target->namespace, rt->target->name, rt->received, o->missing, o->qps,
                          o->p95_ms, o->cpu_utilization, o->cost_per_pod_hour);
    }
}

/* Clear what a tick starts without (as cps_tick_begin does). */
static void reset_tick(struct cps_controller *ctl)
{
    for (size_t t = 0; t < ctl->n_targets; t++) {
        memset(&ctl->targets[t].observation, 0, sizeof ctl->targets[t].observation);
        ctl->targets[t].received = 0;
        ctl->targets[t].series_seen = 0;
    }
}

/* The query of `a` in the plan. */
static long query_of(const struct cps_controller *ctl, const struct answer *a)
{
    for (size_t q = 0; q < ctl->n_queries; q++)
        if (ctl->queries[q].metric == a->metric && ctl->queries[q].target_index == a->target)
            return (long)q;
    return -1;
}

/*
 * The body as Prometheus orders labels (by name): every metric object
 * {"namespace":"N","deployment":"D"} becomes {"deployment":"D","namespace":"N"},
 * the shape whose series the decoder can take by a guess. Caller frees.
 */
static char *labels_in_prometheus_order(const char *body)
{
    static const char from[] = "{\"namespace\":\"", mid[] = "\",\"deployment\":\"";
    struct cps_strbuf out = CPS_STRBUF_INIT;
    const char *p = body, *at;
    while ((at = strstr(p, from)) != NULL) {
        const char *ns = at + strlen(from), *ns_end = strstr(ns, mid);
        const char *name = ns_end ? ns_end + strlen(mid) : NULL;
        const char *name_end = name ? strstr(name, "\"}") : NULL;
        /* labels with escapes stay put: an error's column must not move */
        if (!name_end || strcspn(ns, "\"\\") < (size_t)(ns_end - ns) ||
            strcspn(name, "\"\\") < (size_t)(name_end - name)) {
            cps_strbuf_printf(&out, "%.*s", (int)(at + 1 - p), p);
            p = at + 1;
            continue;
        }
        cps_strbuf_printf(&out, "%.*s{\"deployment\":\"%.*s\",\"namespace\":\"%.*s\"}",
                          (int)(at - p), p, (int)(name_end - name), name, (int)(ns_end - ns), ns);
        p = name_end + 2;
    }
    cps_strbuf_printf(&out, "%s", p);
    return cps_strbuf_take(&out);
}

/* Decode `a` (its body, or `body` when given) into the tick's table. */
static int take(struct cps_controller *ctl, const struct answer *a, const char *body,
                struct cps_err *err)
{
    long q = query_of(ctl, a);
    if (!body)
        body = a->body;
    return q < 0 ? -2 : cps_targets_take_answer(ctl, (size_t)q, body, strlen(body), NOW_MS, err);
}

/* Each answer alone on a fresh tick, then all of them on one tick (the
 * order of arrival then matters for duplicates across answers). With
 * `warm`, each answer is first decoded once on a tick of its own (all of
 * them, for the together round), so the decoder's guesses come from the
 * series memo as they do from a tick's predecessor, and the labels are in
 * Prometheus's order; the printed observations must not change. */
static void run_answers(struct cps_strbuf *out, struct cps_controller *ctl, int warm)
{
    size_t n_answers = sizeof ANSWERS / sizeof ANSWERS[0];
    char *bodies[sizeof ANSWERS / sizeof ANSWERS[0]] = {0};
    for (size_t i = 0; warm && i < n_answers; i++)
        bodies[i] = labels_in_prometheus_order(ANSWERS[i].body);
    for (int together = 0; together < 2; together++) {
        for (size_t i = 0; together && warm && i < n_answers; i++) {
            struct cps_err ignored = {0};
            reset_tick(ctl);
            take(ctl, &ANSWERS[i], bodies[i], &ignored);
        }
        reset_tick(ctl);
        for (size_t i = 0; i < n_answers; i++) {
            const struct answer *a = &ANSWERS[i];
            if (!together && warm) {
                struct cps_err ignored = {0};
                reset_tick(ctl);
                take(ctl, a, bodies[i], &ignored);
            }
            if (!together)
                reset_tick(ctl);
            struct cps_err err = {0};
            int rc = take(ctl, a, bodies[i], &err);
            char message[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8] = "";
            if (rc == -1)
                cps_err_format(&err, message, sizeof message);
            cps_strbuf_printf(out, "%s%s: rc=%d %s\n", together ? "together " : "", a->what, rc,
                              message);
            if (!together)
                print_observations(out, ctl);
        }
        if (together)
            print_observations(out, ctl);
    }
    for (size_t i = 0; i < n_answers; i++)
        free(bodies[i]);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct cps_strbuf text = CPS_STRBUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cps_strbuf_printf(&text, "%.*s", (int)n, chunk);
    fclose(f);
    return cps_strbuf_take(&text);
}

/* Fail naming the first line of `got` that differs from the expected text. */
static void expect_same_text(const char *how, const char *want, const char *got)
{
    if (!want || !got || strcmp(want, got) == 0)
        return;
    size_t i = 0, line = 1, start = 0;
    while (want[i] && want[i] == got[i]) {
        if (want[i] == '\n')
            line++, start = i + 1;
        i++;
    }
    CPS_FAIL_AT("%s: %s:%zu differs:\n  want: %.200s\n  got:  %.200s", how, EXPECTED_PATH, line,
                want + start, got + start);
}

/* CONFIG's four targets and their query plan in a bare controller; -1
 * (a failed check) when the config does not load. */
static int open_table(struct cps_controller *ctl)
{
    memset(ctl, 0, sizeof *ctl);
    struct cps_err err = {0};
    ctl->config = cps_config_load_bytes(CONFIG, strlen(CONFIG), "test.yaml", &err);
    if (!ctl->config) {
        CPS_FAIL_AT("config: %s", err.message);
        return -1;
    }
    ASSERT_EQ(cps_targets_adopt(ctl, ctl->config), 0);
    ASSERT_EQ(cps_targets_plan_queries(ctl), 0);
    return 0;
}

static void test_same_observations_as_the_old_decoder(void)
{
    struct cps_controller ctl;
    if (open_table(&ctl) != 0)
        return;
    struct cps_strbuf out = CPS_STRBUF_INIT;
    run_answers(&out, &ctl, 0);
    char *got = cps_strbuf_take(&out);
    const char *write_path = getenv("CPS_WRITE_EXPECTED");
    if (write_path && got) {
        FILE *f = fopen(write_path, "wb");
        ASSERT_TRUE(f != NULL);
        if (f) {
            fputs(got, f);
            fclose(f);
        }
    }
    char *want = read_all(EXPECTED_PATH);
    ASSERT_TRUE(want != NULL);
    expect_same_text("as sent", want, got);
    /* the same inputs again when the series are taken by guesses */
    size_t guessed_before = cps_prom_guessed_series();
    run_answers(&out, &ctl, 1);
    char *warm = cps_strbuf_take(&out);
    ASSERT_TRUE(cps_prom_guessed_series() - guessed_before >= 20);
    expect_same_text("guessed", want, warm);
    free(warm);
    free(want);
    free(got);
    cps_targets_free_queries(&ctl);
    cps_targets_release_all(&ctl);
    cps_config_free(ctl.config);
}

/* A qps answer for a/x (target 0) whose body is given. */
struct doubtful_case {
    const char *name;
    const char *body;
    int rc;           /* what cps_targets_take_answer returns */
    int received;     /* a/x's qps taken */
    int missing;      /* a/x's qps marked missing by the decoder */
    double qps;       /* a/x's qps when received */
    const char *error; /* a part of the error message, when rc is -1 */
};

#define AX(value, time) \
    "{\"metric\":{\"namespace\":\"a\",\"deployment\":\"x\"},\"value\":[" time ",\"" value "\"]}"
#define WARNED(warnings) \
    "{\"status\":\"success\",\"warnings\":" warnings ",\"data\":{\"resultType\":\"vector\"," \
    "\"result\":[" AX("5", "1700000000") "]}}"

static const struct doubtful_case DOUBTFUL_CASES[] = {
    /* two series for one target: the query is not one series per target,
     * whatever the first one held */
    {"NaN, then a valid series", OK_HEAD AX("NaN", "1700000000") "," AX("5", "1700000000") OK_TAIL,
     0, 0, 1, 0, NULL},
    {"negative, then a valid series", OK_HEAD AX("-1", "1700000000") "," AX("5", "1700000000") OK_TAIL,
     0, 0, 1, 0, NULL},
    {"an old answer's series, then a valid one",
     OK_HEAD AX("1", "1600000000") "," AX("5", "1700000000") OK_TAIL, 0, 0, 1, 0, NULL},
    {"a valid series, then NaN", OK_HEAD AX("5", "1700000000") "," AX("NaN", "1700000000") OK_TAIL,
     0, 0, 1, 0, NULL},
    /* evaluated 10 minutes after the controller's clock: a skewed clock */
    {"an answer from the future", OK_HEAD AX("5", "1700000600") OK_TAIL, 0, 0, 0, 0, NULL},
    {"an answer a minute ahead (clocks a little apart)", OK_HEAD AX("5", "1700000060") OK_TAIL,
     0, 1, 0, 5, NULL},
    /* at the default 15 s interval an answer may be the metrics window and
     * two intervals old (90 s): older, it is a decision behind */
    {"an answer 85 s old", OK_HEAD AX("5", "1699999915") OK_TAIL, 0, 1, 0, 5, NULL},
    {"an answer 95 s old (a cache)", OK_HEAD AX("5", "1699999905") OK_TAIL, 0, 0, 0, 0, NULL},
    {"an answer four minutes old", OK_HEAD AX("5", "1699999760") OK_TAIL, 0, 0, 0, 0, NULL},
    {"an answer 95 s ahead", OK_HEAD AX("5", "1700000095") OK_TAIL, 0, 0, 0, 0, NULL},
    /* a partial answer says success and warns */
    {"a warning", WARNED("[\"partial response: store 10.0.0.3:10901 did not answer\"]"), -1, 0, 0,
     0, "partial response: store 10.0.0.3"},
    {"information first, then a warning",
     WARNED("[\"PromQL info: metric might not be a counter\",\"PromQL warning: bucket label\"]"), -1,
     0, 0, 0, "PromQL warning: bucket label"},
    {"information only", WARNED("[\"PromQL info: metric might not be a counter\"]"), 0, 1, 0, 5,
     NULL},
    {"an empty warnings list", WARNED("[]"), 0, 1, 0, 5, NULL},
    {"warnings: null", WARNED("null"), 0, 1, 0, 5, NULL},
    {"warnings not a list", WARNED("\"partial\""), -1, 0, 0, 0, "not a list"},
    {"a warning that is not a string", WARNED("[7]"), -1, 0, 0, 0, "not a string"},
};

/*
 * A series that cannot stand for its target, and an answer that is not
 * the whole truth, leave the metric without a value (so the decision never
 * scales down on it): a second series for the target even when the first
 * was invalid, a sample evaluated far from the controller's clock either
 * way, and an answer with a warning that is not information.
 */
static void test_doubtful_answers_leave_the_metric_missing(void)
{
    struct cps_controller ctl;
    if (open_table(&ctl) != 0)
        return;
    const struct answer qps = {"qps", CPS_METRIC_QPS, -1, NULL};
    unsigned bit = CPS_METRIC_BIT(CPS_METRIC_QPS);
    for (size_t i = 0; i < sizeof DOUBTFUL_CASES / sizeof DOUBTFUL_CASES[0]; i++) {
        const struct doubtful_case *c = &DOUBTFUL_CASES[i];
        CPS_ROW_BEGIN();
        reset_tick(&ctl);
        struct cps_err answer_err = {0};
        int rc = take(&ctl, &qps, c->body, &answer_err);
        const struct cps_target_runtime *ax = &ctl.targets[0];
        ASSERT_EQ(rc, c->rc);
        ASSERT_EQ((ax->received & bit) != 0, c->received);
        ASSERT_EQ((ax->observation.missing & bit) != 0, c->missing);
        if (c->received)
            ASSERT_NEAR(ax->observation.qps, c->qps, 0.0);
        if (c->error)
            ASSERT_TRUE(strstr(answer_err.message, c->error) != NULL);
        CPS_ROW_END(c->name);
    }
    cps_targets_free_queries(&ctl);
    cps_targets_release_all(&ctl);
    cps_config_free(ctl.config);
}

int main(void)
{
    CPS_RUN(test_same_observations_as_the_old_decoder);
    CPS_RUN(test_doubtful_answers_leave_the_metric_missing);
    CPS_TEST_END();
}
