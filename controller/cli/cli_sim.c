/*
 * `cpscale sim TRACE.csv [flags]`: replay a trace through the world of
 * docs/model.md under each policy and report (or a what-if over one world
 * flag's list of values).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_flags.h"
#include "commands.h"
#include "config.h"
#include "duration.h"
#include "plot.h"
#include "pool.h"
#include "queue_model.h"
#include "replay.h"
#include "report.h"
#include "trace_writer.h"
#include "units.h"
#include "whatif.h"

#define PLOT_POINTS 1000
/* --record-trace writes one row per this many seconds unless --record-step says. */
#define DEFAULT_RECORD_STEP_S 60

static void sim_usage(FILE *out)
{
    fputs("NAME\n"
          "    cpscale sim - replay a trace through cpscale, the HPA and an oracle\n"
          "\n"
          "SYNOPSIS\n"
          "    cpscale sim TRACE.csv [--policy LIST] [--config FILE] [world flags]\n"
          "                [--json] [--steps FILE] [--plot FILE.svg] [--record-trace FILE]\n"
          "    cpscale sim TRACE.csv --WORLD-FLAG V1,V2,... [--json] [--jobs N]   (what-if)\n"
          "\n"
          "DESCRIPTION\n"
          "    Replays a request-rate trace (docs/model.md) through the cpscale policy,\n"
          "    the Kubernetes HPA algorithm and an oracle lower bound, and compares cost\n"
          "    and SLO violations.\n"
          "\n"
          "    What-if: one world flag may list values (--startup 5s,30s,120s, --price\n"
          "    0.02,0.05, or any of --service-rate, --base-latency, --scale, --routing,\n"
          "    --interval, --window, --lag, --hpa-target, --slo, --service-times,\n"
          "    --capacity-drift, --startup-jitter, --world-seed). The trace is replayed\n"
          "    once per value, everything else equal, and a table shows each policy's\n"
          "    cost and violation % and their change against the first value; with\n"
          "    --json, each value's object is that value's `cpscale sim --json` report\n"
          "    plus the changes. One flag takes a list at a time, given once (run a\n"
          "    shell loop for a cross product); --steps, --plot and --record-trace take\n"
          "    one world.\n"
          "\n"
          "OPTIONS\n"
          "  Policies:\n"
          "    --policy LIST          comma-separated: cpscale, hpa, hpa:TARGET, oracle,\n"
          "                           static:N (default cpscale,hpa,oracle)\n"
          "    --config FILE          cpscale's config.yaml: its defaults: and sim: sections\n"
          "    --hpa-target U         HPA CPU utilization target (default 0.7)\n"
          "    --min-replicas N       (default 1)    --max-replicas N  (default 1000)\n"
          "    --slo MS               p95 latency SLO in ms (default: the config's, 100)\n"
          "  World (docs/model.md §3; durations as 20ms, 30s, 5m):\n"
          "    --service-rate MU      req/s one ready pod serves (default 100)\n"
          "    --base-latency D       fixed latency added to each request (default 20ms)\n"
          "    --startup D            pod creation to ready (default 30s)\n"
          "    --price USD            per pod-hour (default 0.05)\n"
          "    --scale S              multiply every rate by S, > 0 (default 1)\n"
          "    --routing random|pooled (default random)\n"
          "    --interval D           decision interval (default 15s)\n"
          "    --window D             metrics window (default 60s)\n"
          "    --lag D                metrics lag (default 15s)\n"
          "  World variants (docs/model.md §10):\n"
          "    --service-times exponential|deterministic|lognormal:CV  per-pod service\n"
          "                           times (default exponential; random routing only\n"
          "                           for the others)\n"
          "    --capacity-drift A     μ(t) = μ (1 + A sin(2πt / 1d)), 0 <= A < 1 (default 0)\n"
          "    --startup-jitter D     each new pod takes startup + U, U uniform in [0, D]\n"
          "                           whole seconds (default 0s)\n"
          "    --world-seed N         seeds the jitter draws (default 1)\n"
          "    --budget-window D      window of worst_window_violation_pct, whole hours\n"
          "                           (default 7d)\n"
          "  Output:\n"
          "    --json                 one JSON object on stdout instead of the table\n"
          "    --steps FILE           per-step CSV (t,qps,replicas,ready,desired,p95_ms,...)\n"
          "    --steps-every N|decision  one row per N seconds (default 1)\n"
          "    --plot FILE.svg        demand, ready pods, SLO violations and cost over time\n"
          "    --record-trace FILE    what one policy's deployment showed, as a trace\n"
          "                           (timestamp,qps,p95_ms,replicas,cost_per_pod_hour): per\n"
          "                           step the mean rate, mean ready pods, request-weighted\n"
          "                           mean p95 (empty when a second was saturated) and mean\n"
          "                           price; the input of `cpscale calibrate`\n"
          "    --record-step D        one row per D (default 60s)\n"
          "    --record-policy NAME   whose pods (default: the first policy but the oracle)\n"
          "    --jobs N               what-if values run in parallel (default: online CPUs)\n"
          "    --quiet                no gap warnings\n"
          "    --help                 this page\n"
          "\n"
          "EXIT STATUS\n"
          "    0 ok; 1 runtime failure; 2 usage, config or trace error.\n"
          "\n"
          "EXAMPLES\n"
          "    cpscale sim week.csv --plot week.svg\n"
          "    cpscale sim week.csv --policy cpscale,hpa:0.5,oracle --json\n"
          "    cpscale sim week.csv --startup 5s,30s,120s\n"
          "    cpscale sim week.csv --service-rate 80 --base-latency 35ms \\\n"
          "        --record-trace seen.csv && cpscale calibrate seen.csv\n",
          out);
}

/* The what-if parameter of a world flag, or -1 for flags that take no list. */
static int list_param_of(int opt)
{
    switch (opt) {
    case CLI_FLAG_SERVICE_RATE: return CPS_WHATIF_SERVICE_RATE;
    case CLI_FLAG_BASE_LATENCY: return CPS_WHATIF_BASE_LATENCY;
    case CLI_FLAG_STARTUP: return CPS_WHATIF_STARTUP;
    case CLI_FLAG_PRICE: return CPS_WHATIF_PRICE;
    case CLI_FLAG_SCALE: return CPS_WHATIF_SCALE;
    case CLI_FLAG_ROUTING: return CPS_WHATIF_ROUTING;
    case CLI_FLAG_INTERVAL: return CPS_WHATIF_INTERVAL;
    case CLI_FLAG_WINDOW: return CPS_WHATIF_WINDOW;
    case CLI_FLAG_LAG: return CPS_WHATIF_LAG;
    case CLI_FLAG_HPA_TARGET: return CPS_WHATIF_HPA_TARGET;
    case CLI_FLAG_SLO: return CPS_WHATIF_SLO;
    case CLI_FLAG_SERVICE_TIMES: return CPS_WHATIF_SERVICE_TIMES;
    case CLI_FLAG_CAPACITY_DRIFT: return CPS_WHATIF_CAPACITY_DRIFT;
    case CLI_FLAG_STARTUP_JITTER: return CPS_WHATIF_STARTUP_JITTER;
    case CLI_FLAG_WORLD_SEED: return CPS_WHATIF_WORLD_SEED;
    default: return -1;
    }
}

/* The setup index of the policy whose pods --record-trace writes. */
static int record_policy_index(const struct cps_sim_setup *setup, const char *name)
{
    for (size_t i = 0; i < setup->n_policies; i++) {
        const struct cps_sim_policy_spec *spec = &setup->policies[i];
        if (spec->kind == CPS_SIM_POLICY_ORACLE)
            continue;
        if (!name || strcmp(spec->name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* The command's number flags (shared parser, this command's name). */
static int parse_number(const char *flag, const char *text, double lo, double hi, double *out)
{
    return cps_parse_number_arg("sim", flag, text, lo, hi, out);
}

static int parse_seconds(const char *flag, const char *text, double *out)
{
    int64_t ms = 0;
    if (cps_duration_parse(text, &ms) < 0) {
        fprintf(stderr, "cpscale sim: %s: \"%s\" is not a duration (e.g. 30s, 5m, 250ms)\n", flag,
                text);
        return -1;
    }
    *out = (double)ms / CPS_MS_PER_S;
    return 0;
}

static const enum cli_flag sim_flags[] = {
    CLI_FLAG_POLICY, CLI_FLAG_CONFIG, CLI_FLAG_HPA_TARGET, CLI_FLAG_MIN_REPLICAS,
    CLI_FLAG_MAX_REPLICAS, CLI_FLAG_SLO, CLI_FLAG_SERVICE_RATE, CLI_FLAG_BASE_LATENCY,
    CLI_FLAG_STARTUP, CLI_FLAG_PRICE, CLI_FLAG_SCALE, CLI_FLAG_ROUTING, CLI_FLAG_INTERVAL,
    CLI_FLAG_WINDOW, CLI_FLAG_LAG, CLI_FLAG_JSON, CLI_FLAG_STEPS, CLI_FLAG_STEPS_EVERY,
    CLI_FLAG_PLOT, CLI_FLAG_QUIET, CLI_FLAG_HELP, CLI_FLAG_RECORD_TRACE, CLI_FLAG_RECORD_STEP,
    CLI_FLAG_RECORD_POLICY, CLI_FLAG_JOBS, CLI_FLAG_SERVICE_TIMES, CLI_FLAG_CAPACITY_DRIFT,
    CLI_FLAG_STARTUP_JITTER, CLI_FLAG_WORLD_SEED, CLI_FLAG_BUDGET_WINDOW,
};

/* The command's flags other than the world, which go into the setup. */
struct sim_args {
    const char *policy_list, *config_path;
    const char *steps_path, *steps_every, *plot_path;
    const char *record_path, *record_policy, *list_text;
    double record_step_s;
    int json, quiet, list_param, jobs;
};

/* A finished parse: OK to run, or the exit code to return now. */
#define PARSE_RUN (-1)

/*
 * The config (--config FILE, found before the other flags so that they
 * override its sim: section; otherwise the defaults). NULL with the exit
 * code in *exit_code.
 */
static struct cps_config *load_config(int argc, char **argv, int *exit_code)
{
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config_path = argv[i] + 9;
    }
    struct cps_config *config = NULL;
    if (config_path) {
        config = cps_load_config_file(config_path);
        *exit_code = CPS_EXIT_USAGE;
        return config;
    }
    config = calloc(1, sizeof *config);
    *exit_code = CPS_EXIT_RUNTIME;
    if (config)
        cps_config_init_defaults(config);
    return config;
}

/* --routing random|pooled. */
static int parse_routing(const char *text, enum cps_routing *out)
{
    if (strcmp(text, "random") == 0)
        *out = CPS_ROUTING_RANDOM;
    else if (strcmp(text, "pooled") == 0)
        *out = CPS_ROUTING_POOLED;
    else {
        fprintf(stderr, "cpscale sim: --routing: \"%s\" is not random or pooled\n", text);
        return -1;
    }
    return 0;
}

/* A single value of a world flag whose rules live in the what-if parser
 * only (the variant flags of docs/model.md §10, and --scale), so that one
 * value and a list of them are held to the same range. */
static int parse_variant_option(int opt, const char *arg, struct cps_sim_setup *setup)
{
    struct cps_err err;
    cps_err_clear(&err);
    double value;
    enum cps_whatif_param param = (enum cps_whatif_param)list_param_of(opt);
    if (cps_whatif_parse_value(param, arg, &value, &err) < 0) {
        cps_err_print(stderr, "cpscale sim: ", &err);
        return -1;
    }
    cps_whatif_apply(param, value, setup, NULL);
    return 0;
}

/* A world or policy flag into the setup (and the target's SLO): 0, -1 on a
 * bad value (printed), 1 when `opt` is not one of them. */
static int parse_world_option(int opt, const char *arg, struct cps_sim_setup *setup,
                              struct cps_target *target)
{
    struct cps_sim_params *w = &setup->world;
    double v;
    switch (opt) {
    case CLI_FLAG_HPA_TARGET: return parse_number("--hpa-target", arg, CPS_SIM_MIN_HPA_TARGET, 1.0,
                                                      &w->hpa_target);
    case CLI_FLAG_MIN_REPLICAS:
        if (cps_parse_whole_arg("sim", "--min-replicas", arg, 0, 1000000, &v) < 0)
            return -1;
        setup->min_replicas = (int32_t)v;
        return 0;
    case CLI_FLAG_MAX_REPLICAS:
        if (cps_parse_whole_arg("sim", "--max-replicas", arg, 1, 1000000, &v) < 0)
            return -1;
        setup->max_replicas = (int32_t)v;
        return 0;
    case CLI_FLAG_SLO:
        if (parse_number("--slo", arg, CPS_SIM_MIN_SLO_MS, CPS_SIM_MAX_SLO_MS, &setup->slo_ms) < 0)
            return -1;
        target->slo_latency_p95_ms = setup->slo_ms;
        return 0;
    case CLI_FLAG_SERVICE_RATE:
        return parse_number("--service-rate", arg, CPS_SIM_MIN_SERVICE_RATE, CPS_SIM_MAX_RATE,
                            &w->service_rate);
    case CLI_FLAG_BASE_LATENCY:
        if (parse_seconds("--base-latency", arg, &v) < 0)
            return -1;
        w->base_latency_ms = v * CPS_MS_PER_S;
        return 0;
    case CLI_FLAG_STARTUP: return parse_seconds("--startup", arg, &w->startup_s);
    case CLI_FLAG_PRICE: return parse_number("--price", arg, 0, CPS_SIM_MAX_PRICE, &w->price);
    case CLI_FLAG_SCALE: return parse_variant_option(opt, arg, setup);
    case CLI_FLAG_ROUTING: return parse_routing(arg, &w->routing);
    case CLI_FLAG_INTERVAL: return parse_seconds("--interval", arg, &w->interval_s);
    case CLI_FLAG_WINDOW: return parse_seconds("--window", arg, &w->window_s);
    case CLI_FLAG_LAG: return parse_seconds("--lag", arg, &w->lag_s);
    case CLI_FLAG_BUDGET_WINDOW:
        if (parse_seconds("--budget-window", arg, &v) < 0)
            return -1;
        if (v < CPS_BUDGET_BUCKET_S || v > CPS_BUDGET_WINDOW_MAX_S ||
            fmod(v, CPS_BUDGET_BUCKET_S) != 0.0) {
            fprintf(stderr, "cpscale sim: --budget-window: \"%s\" is not a whole number of hours "
                    "in [1h, 366d] (e.g. 7d, 30d, 12h)\n", arg);
            return -1;
        }
        setup->variant.budget_window_s = v;
        return 0;
    default:
        return list_param_of(opt) >= 0 ? parse_variant_option(opt, arg, setup) : 1;
    }
}

/* An output or run flag into args: 0, -1 on a bad value, 1 when not one. */
static int parse_output_option(int opt, const char *arg, struct sim_args *a)
{
    double v;
    switch (opt) {
    case CLI_FLAG_POLICY: a->policy_list = arg; return 0;
    case CLI_FLAG_CONFIG: return 0;
    case CLI_FLAG_JSON: a->json = 1; return 0;
    case CLI_FLAG_STEPS: a->steps_path = arg; return 0;
    case CLI_FLAG_STEPS_EVERY: a->steps_every = arg; return 0;
    case CLI_FLAG_PLOT: a->plot_path = arg; return 0;
    case CLI_FLAG_QUIET: a->quiet = 1; return 0;
    case CLI_FLAG_RECORD_TRACE: a->record_path = arg; return 0;
    case CLI_FLAG_RECORD_STEP:
        if (parse_seconds("--record-step", arg, &a->record_step_s) < 0)
            return -1;
        if (a->record_step_s < 1.0) {
            fprintf(stderr, "cpscale sim: --record-step: at least 1s\n");
            return -1;
        }
        return 0;
    case CLI_FLAG_RECORD_POLICY: a->record_policy = arg; return 0;
    case CLI_FLAG_JOBS:
        if (cps_parse_whole_arg("sim", "--jobs", arg, 1, CPS_POOL_MAX_JOBS, &v) < 0)
            return -1;
        a->jobs = (int)v;
        return 0;
    default: return 1;
    }
}

/*
 * Every flag in order; a world flag with a list of values marks a what-if
 * run (one such flag at a time, given once: a second list, or a single
 * value for the listed flag, would leave it unclear which values run, so
 * both are refused rather than one silently kept). A single value given
 * twice keeps the last, as for every other flag. Returns PARSE_RUN, or the
 * exit code when the command ends here (--help, a bad flag or value).
 */
static int parse_args(int argc, char **argv, struct sim_args *a, struct cps_sim_setup *setup,
                      struct cps_target *target)
{
    int opt;
    int given_one_value[CPS_WHATIF_PARAM_COUNT] = {0};
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "", sim_flags, CLI_N_FLAGS(sim_flags))) != -1) {
        int param = list_param_of(opt);
        if (param >= 0 && strchr(optarg, ',')) {
            if (a->list_param >= 0 && a->list_param != param) {
                fprintf(stderr, "cpscale sim: --%s and --%s both list values; what-if takes one "
                        "list at a time\n", cps_whatif_param_name(a->list_param),
                        cps_whatif_param_name(param));
                return CPS_EXIT_USAGE;
            }
            if (a->list_param == param) {
                fprintf(stderr, "cpscale sim: --%s lists values twice; give one list\n",
                        cps_whatif_param_name(param));
                return CPS_EXIT_USAGE;
            }
            a->list_param = param;
            a->list_text = optarg;
            continue;
        }
        if (param >= 0)
            given_one_value[param] = 1;
        if (opt == CLI_FLAG_HELP) {
            sim_usage(stdout);
            return CPS_EXIT_OK;
        }
        int rc = parse_world_option(opt, optarg, setup, target);
        if (rc > 0)
            rc = parse_output_option(opt, optarg, a);
        if (rc < 0)
            return CPS_EXIT_USAGE;
        if (rc > 0) {
            sim_usage(stderr);
            return CPS_EXIT_USAGE;
        }
    }
    if (a->list_param >= 0 && given_one_value[a->list_param]) {
        fprintf(stderr, "cpscale sim: --%s is given both a list and a single value; give one "
                "list\n", cps_whatif_param_name(a->list_param));
        return CPS_EXIT_USAGE;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "cpscale sim: expected one trace file (see --help)\n");
        return CPS_EXIT_USAGE;
    }
    return PARSE_RUN;
}

/* The what-if run over args->list_text's values. Returns the exit code. */
static int run_whatif(const char *trace_path, const struct cps_sim_setup *setup,
                      const struct sim_args *a)
{
    struct cps_whatif whatif;
    struct cps_err err;
    cps_err_clear(&err);
    int input_error = 1;
    if (a->steps_path || a->plot_path || a->record_path) {
        fprintf(stderr, "cpscale sim: --steps, --plot and --record-trace take one world, not "
                "a list of values\n");
        return CPS_EXIT_USAGE;
    }
    if (cps_whatif_parse_list(a->list_param, a->list_text, &whatif, &err) < 0 ||
        cps_whatif_run(trace_path, setup, &whatif, a->jobs, a->json, stdout,
                       a->quiet ? NULL : stderr, &input_error, &err) < 0) {
        cps_err_print(stderr, "cpscale sim: ", &err);
        return input_error ? CPS_EXIT_USAGE : CPS_EXIT_RUNTIME;
    }
    return CPS_EXIT_OK;
}

/* The files one run writes besides the report. */
struct sim_outputs {
    FILE *steps, *record;
    struct cps_trace_writer writer;
    struct cps_trace_replay replay;
};

/*
 * Open --steps and --record-trace and attach them to the engine, and ask
 * for plot data. Returns PARSE_RUN or the exit code (the caller closes
 * whatever was opened).
 */
static int open_outputs(struct cps_sim *sim, const struct cps_sim_setup *setup,
                        const struct sim_args *a, int64_t every, int record_index,
                        struct sim_outputs *o)
{
    if (a->steps_path) {
        o->steps = fopen(a->steps_path, "w");
        if (!o->steps || cps_sim_set_steps(sim, o->steps, every) < 0) {
            fprintf(stderr, "cpscale sim: %s: %s\n", a->steps_path, strerror(errno));
            return CPS_EXIT_RUNTIME;
        }
    }
    if (a->record_path) {
        o->record = fopen(a->record_path, "w");
        if (!o->record ||
            cps_trace_writer_init(&o->writer, o->record, (int64_t)llround(a->record_step_s),
                                  &o->replay.first_t, &(struct cps_queue_model){
                                      setup->world.routing, setup->world.service_rate,
                                      setup->world.base_latency_ms}) < 0) {
            fprintf(stderr, "cpscale sim: %s: %s\n", a->record_path, strerror(errno));
            return CPS_EXIT_RUNTIME;
        }
        cps_sim_set_observer(sim, (size_t)record_index, cps_trace_writer_second_cb, &o->writer);
    }
    if (a->plot_path && cps_sim_enable_plot(sim, PLOT_POINTS) < 0) {
        fprintf(stderr, "cpscale sim: out of memory\n");
        return CPS_EXIT_RUNTIME;
    }
    return PARSE_RUN;
}

/* Finish and close the outputs; a failure turns an OK exit code into 1. */
static int close_outputs(struct sim_outputs *o, const struct sim_args *a, int exit_code)
{
    if (o->record) {
        /* the file is closed whether or not finishing it failed */
        int failed = exit_code == CPS_EXIT_OK && cps_trace_writer_finish(&o->writer) < 0;
        if (fclose(o->record) != 0)
            failed = 1;
        if (failed && exit_code == CPS_EXIT_OK) {
            fprintf(stderr, "cpscale sim: %s: write failed\n", a->record_path);
            exit_code = CPS_EXIT_RUNTIME;
        }
    }
    if (o->steps && fclose(o->steps) != 0 && exit_code == CPS_EXIT_OK) {
        fprintf(stderr, "cpscale sim: %s: write failed\n", a->steps_path);
        exit_code = CPS_EXIT_RUNTIME;
    }
    return exit_code;
}

/* The SVG of --plot (and its name under the table). Returns the exit code. */
static int write_plot(struct cps_sim *sim, const char *trace_path, double first_t,
                      const struct sim_args *a)
{
    struct cps_plot plot;
    struct cps_plot_series series[CPS_SIM_MAX_POLICIES];
    struct cps_err err;
    cps_err_clear(&err);
    int exit_code = CPS_EXIT_OK;
    FILE *out = fopen(a->plot_path, "w");
    if (!out || cps_sim_plot_data(sim, first_t, trace_path, &plot, series) < 0 ||
        cps_plot_write_svg(out, &plot, &err) < 0) {
        fprintf(stderr, "cpscale sim: %s: cannot write the plot\n", a->plot_path);
        exit_code = CPS_EXIT_RUNTIME;
    } else if (!a->json) {
        printf("\nplot: %s\n", a->plot_path);
    }
    if (out && fclose(out) != 0)
        exit_code = CPS_EXIT_RUNTIME;
    return exit_code;
}

/* Replay the trace through the engine and write the report. Returns the
 * exit code. */
static int replay_and_report(struct cps_sim *sim, const char *trace_path,
                             const struct cps_sim_setup *setup, const struct cps_target *target,
                             const struct sim_args *a, struct cps_trace_replay *replay)
{
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_trace_replay_file(trace_path, setup->world.scale, setup->world.price, sim,
                              a->quiet ? NULL : stderr, replay, &err) < 0) {
        cps_err_print(stderr, NULL, &err);
        return strstr(err.message, "out of memory") || strstr(err.message, "write failed")
                   ? CPS_EXIT_RUNTIME
                   : CPS_EXIT_USAGE;
    }
    struct cps_sim_result results[CPS_SIM_MAX_POLICIES];
    if (cps_sim_finish(sim, results, &err) < 0) {
        fprintf(stderr, "cpscale sim: %s\n", err.message);
        return CPS_EXIT_RUNTIME;
    }
    struct cps_sim_report report = {
        .trace = trace_path,
        .seconds = cps_sim_seconds(sim),
        .requests = results[0].requests,
        .setup = setup,
        .target = target,
        .n_results = setup->n_policies,
        .results = results,
        .gaps = replay->gaps,
    };
    if ((a->json ? cps_report_write_json(stdout, &report)
                 : cps_report_write_table(stdout, &report)) < 0) {
        fprintf(stderr, "cpscale sim: writing the report failed\n");
        return CPS_EXIT_RUNTIME;
    }
    if (a->plot_path)
        return write_plot(sim, trace_path, replay->first_t, a);
    return CPS_EXIT_OK;
}

/* One world: every policy in lockstep over one pass of the trace, then the
 * report, the steps, the recorded trace and the plot. Returns the exit code. */
static int run_one(const char *trace_path, const struct cps_sim_setup *setup,
                   const struct cps_target *target, const struct sim_args *a)
{
    int record_index = -1;
    if (a->record_path && (record_index = record_policy_index(setup, a->record_policy)) < 0) {
        fprintf(stderr, "cpscale sim: --record-policy: %s\n",
                a->record_policy ? "no such policy in --policy (and not the oracle)"
                                 : "the oracle has no pods to record: list another policy");
        return CPS_EXIT_USAGE;
    }
    if (a->record_path && (setup->variant.service.kind != CPS_SERVICE_EXPONENTIAL ||
                           setup->variant.capacity_drift > 0.0)) {
        fprintf(stderr, "cpscale sim: --record-trace writes the default world's latency: not "
                "with --service-times or --capacity-drift\n");
        return CPS_EXIT_USAGE;
    }
    if (a->steps_every && !a->steps_path) {
        fprintf(stderr, "cpscale sim: --steps-every needs --steps FILE\n");
        return CPS_EXIT_USAGE;
    }
    int64_t every = 1;
    double v;
    if (a->steps_every) {
        if (strcmp(a->steps_every, "decision") == 0)
            every = (int64_t)llround(setup->world.interval_s);
        else if (cps_parse_whole_arg("sim", "--steps-every", a->steps_every, 1, 1e9, &v) == 0)
            every = (int64_t)v;
        else
            return CPS_EXIT_USAGE;
    }
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_sim *sim = cps_sim_new(setup, &err);
    if (!sim) {
        fprintf(stderr, "cpscale sim: %s\n", err.message);
        return CPS_EXIT_USAGE;
    }
    struct sim_outputs outputs;
    memset(&outputs, 0, sizeof outputs);
    int exit_code = open_outputs(sim, setup, a, every, record_index, &outputs);
    if (exit_code == PARSE_RUN)
        exit_code = replay_and_report(sim, trace_path, setup, target, a, &outputs.replay);
    exit_code = close_outputs(&outputs, a, exit_code);
    cps_sim_free(sim);
    return exit_code;
}

/*
 * Parse flags (config first, so flags override its sim: section), then a
 * what-if over a list of values or one pass over the trace with every
 * policy in lockstep, then report.
 */
int cli_sim(int argc, char **argv)
{
    int exit_code;
    struct cps_config *config = load_config(argc, argv, &exit_code);
    if (!config)
        return exit_code;
    struct sim_args a = {
        .policy_list = "cpscale,hpa,oracle",
        .record_step_s = DEFAULT_RECORD_STEP_S,
        .list_param = -1,
        .jobs = cps_pool_default_jobs(),
    };
    struct cps_sim_setup setup;
    memset(&setup, 0, sizeof setup);
    setup.world = config->sim;
    cps_sim_variant_defaults(&setup.variant);
    if (config->sim.service_times) /* checked by the config loader */
        cps_service_times_parse(config->sim.service_times, &setup.variant.service);
    struct cps_target target = config->defaults;
    setup.slo_ms = target.slo_latency_p95_ms;
    setup.min_replicas = 1;
    setup.max_replicas = 1000;
    exit_code = parse_args(argc, argv, &a, &setup, &target);
    if (exit_code != PARSE_RUN)
        goto done;
    exit_code = CPS_EXIT_USAGE;
    const char *trace_path = argv[optind];
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_sim_parse_policies(a.policy_list, setup.policies, &setup.n_policies, &err) < 0) {
        fprintf(stderr, "cpscale sim: %s: %s\n", err.source, err.message);
        goto done;
    }
    target.min_replicas = setup.min_replicas;
    target.max_replicas = setup.max_replicas;
    setup.target = &target;
    if (a.list_text)
        exit_code = run_whatif(trace_path, &setup, &a);
    else
        exit_code = run_one(trace_path, &setup, &target, &a);
done:
    cps_config_free(config);
    return exit_code;
}
