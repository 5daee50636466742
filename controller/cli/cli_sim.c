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
#include "commands.h"
#include "config.h"
#include "duration.h"
#include "plot.h"
#include "pool.h"
#include "queue_model.h"
#include "replay.h"
#include "report.h"
#include "trace_writer.h"
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
          "    Replays a request-rate trace (SIM-MODEL.md) through the cpscale policy,\n"
          "    the Kubernetes HPA algorithm and an oracle lower bound, and compares cost\n"
          "    and SLO violations.\n"
          "\n"
          "    What-if: one world flag may list values (--startup 5s,30s,120s, --price\n"
          "    0.02,0.05, or any of --service-rate, --base-latency, --scale, --routing,\n"
          "    --interval, --window, --lag, --hpa-target, --slo). The trace is replayed\n"
          "    once per value, everything else equal, and a table shows each policy's\n"
          "    cost and violation % and their change against the first value; with\n"
          "    --json, each value's object is that value's `cpscale sim --json` report\n"
          "    plus the changes. One flag takes a list at a time (run a shell loop for a\n"
          "    cross product); --steps, --plot and --record-trace take one world.\n"
          "\n"
          "OPTIONS\n"
          "  Policies:\n"
          "    --policy LIST          comma-separated: cpscale, hpa, hpa:TARGET, oracle,\n"
          "                           static:N (default cpscale,hpa,oracle)\n"
          "    --config FILE          cpscale's config.yaml: its defaults: and sim: sections\n"
          "    --hpa-target U         HPA CPU utilization target (default 0.7)\n"
          "    --min-replicas N       (default 1)    --max-replicas N  (default 1000)\n"
          "    --slo MS               p95 latency SLO in ms (default: the config's, 100)\n"
          "  World (SIM-MODEL §3; durations as 20ms, 30s, 5m):\n"
          "    --service-rate MU      req/s one ready pod serves (default 100)\n"
          "    --base-latency D       fixed latency added to each request (default 20ms)\n"
          "    --startup D            pod creation to ready (default 30s)\n"
          "    --price USD            per pod-hour (default 0.05)\n"
          "    --scale S              multiply every rate by S (default 1)\n"
          "    --routing random|pooled (default random)\n"
          "    --interval D           decision interval (default 15s)\n"
          "    --window D             metrics window (default 60s)\n"
          "    --lag D                metrics lag (default 15s)\n"
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

enum sim_option {
    OPT_POLICY = 256, OPT_CONFIG, OPT_HPA_TARGET, OPT_MIN, OPT_MAX, OPT_SLO, OPT_SERVICE_RATE,
    OPT_BASE_LATENCY, OPT_STARTUP, OPT_PRICE, OPT_SCALE, OPT_ROUTING, OPT_INTERVAL, OPT_WINDOW,
    OPT_LAG, OPT_JSON, OPT_STEPS, OPT_STEPS_EVERY, OPT_PLOT, OPT_QUIET, OPT_HELP,
    OPT_RECORD_TRACE, OPT_RECORD_STEP, OPT_RECORD_POLICY, OPT_JOBS,
};

/* The what-if parameter of a world flag, or -1 for flags that take no list. */
static int list_param_of(int opt)
{
    switch (opt) {
    case OPT_SERVICE_RATE: return CPS_WHATIF_SERVICE_RATE;
    case OPT_BASE_LATENCY: return CPS_WHATIF_BASE_LATENCY;
    case OPT_STARTUP: return CPS_WHATIF_STARTUP;
    case OPT_PRICE: return CPS_WHATIF_PRICE;
    case OPT_SCALE: return CPS_WHATIF_SCALE;
    case OPT_ROUTING: return CPS_WHATIF_ROUTING;
    case OPT_INTERVAL: return CPS_WHATIF_INTERVAL;
    case OPT_WINDOW: return CPS_WHATIF_WINDOW;
    case OPT_LAG: return CPS_WHATIF_LAG;
    case OPT_HPA_TARGET: return CPS_WHATIF_HPA_TARGET;
    case OPT_SLO: return CPS_WHATIF_SLO;
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
    *out = (double)ms / 1000.0;
    return 0;
}

/*
 * Parse flags (config first, so flags override its sim: section), run one
 * pass over the trace with every policy in lockstep, then report.
 */
int cli_sim(int argc, char **argv)
{
    static const struct option options[] = {
        {"policy", required_argument, NULL, OPT_POLICY},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"hpa-target", required_argument, NULL, OPT_HPA_TARGET},
        {"min-replicas", required_argument, NULL, OPT_MIN},
        {"max-replicas", required_argument, NULL, OPT_MAX},
        {"slo", required_argument, NULL, OPT_SLO},
        {"service-rate", required_argument, NULL, OPT_SERVICE_RATE},
        {"base-latency", required_argument, NULL, OPT_BASE_LATENCY},
        {"startup", required_argument, NULL, OPT_STARTUP},
        {"price", required_argument, NULL, OPT_PRICE},
        {"scale", required_argument, NULL, OPT_SCALE},
        {"routing", required_argument, NULL, OPT_ROUTING},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"lag", required_argument, NULL, OPT_LAG},
        {"json", no_argument, NULL, OPT_JSON},
        {"steps", required_argument, NULL, OPT_STEPS},
        {"steps-every", required_argument, NULL, OPT_STEPS_EVERY},
        {"plot", required_argument, NULL, OPT_PLOT},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {"record-trace", required_argument, NULL, OPT_RECORD_TRACE},
        {"record-step", required_argument, NULL, OPT_RECORD_STEP},
        {"record-policy", required_argument, NULL, OPT_RECORD_POLICY},
        {"jobs", required_argument, NULL, OPT_JOBS},
        {NULL, 0, NULL, 0},
    };
    const char *policy_list = "cpscale,hpa,oracle", *config_path = NULL;
    const char *steps_path = NULL, *steps_every = NULL, *plot_path = NULL;
    const char *record_path = NULL, *record_policy = NULL, *list_text = NULL;
    double record_step_s = DEFAULT_RECORD_STEP_S;
    int json = 0, quiet = 0, list_param = -1, jobs = cps_pool_default_jobs();
    /* first pass: find --config, so that the other flags override it */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config_path = argv[i] + 9;
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
    struct cps_sim_setup setup;
    memset(&setup, 0, sizeof setup);
    setup.world = config->sim;
    struct cps_target target = config->defaults;
    setup.slo_ms = target.slo_latency_p95_ms;
    setup.min_replicas = 1;
    setup.max_replicas = 1000;
    int exit_code = CPS_EXIT_USAGE;
    double v;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        /* a world flag with a list of values: a what-if run, parsed below */
        if (list_param_of(opt) >= 0 && strchr(optarg, ',')) {
            if (list_param >= 0 && list_param != list_param_of(opt)) {
                fprintf(stderr, "cpscale sim: --%s and --%s both list values; what-if takes one "
                        "list at a time\n", cps_whatif_param_name(list_param),
                        cps_whatif_param_name(list_param_of(opt)));
                goto done;
            }
            list_param = list_param_of(opt);
            list_text = optarg;
            continue;
        }
        switch (opt) {
        case OPT_POLICY: policy_list = optarg; break;
        case OPT_CONFIG: break;
        case OPT_HPA_TARGET:
            if (parse_number("--hpa-target", optarg, 0.01, 1.0, &setup.world.hpa_target) < 0)
                goto done;
            break;
        case OPT_MIN:
            if (parse_number("--min-replicas", optarg, 0, 1000000, &v) < 0)
                goto done;
            setup.min_replicas = (int32_t)v;
            break;
        case OPT_MAX:
            if (parse_number("--max-replicas", optarg, 1, 1000000, &v) < 0)
                goto done;
            setup.max_replicas = (int32_t)v;
            break;
        case OPT_SLO:
            if (parse_number("--slo", optarg, 0.001, 1e9, &setup.slo_ms) < 0)
                goto done;
            target.slo_latency_p95_ms = setup.slo_ms;
            break;
        case OPT_SERVICE_RATE:
            if (parse_number("--service-rate", optarg, 1e-9, 1e12, &setup.world.service_rate) < 0)
                goto done;
            break;
        case OPT_BASE_LATENCY:
            if (parse_seconds("--base-latency", optarg, &v) < 0)
                goto done;
            setup.world.base_latency_ms = v * 1000.0;
            break;
        case OPT_STARTUP:
            if (parse_seconds("--startup", optarg, &setup.world.startup_s) < 0)
                goto done;
            break;
        case OPT_PRICE:
            if (parse_number("--price", optarg, 0, 1e9, &setup.world.price) < 0)
                goto done;
            break;
        case OPT_SCALE:
            if (parse_number("--scale", optarg, 0, 1e12, &setup.world.scale) < 0)
                goto done;
            break;
        case OPT_ROUTING:
            if (strcmp(optarg, "random") == 0)
                setup.world.routing = CPS_ROUTING_RANDOM;
            else if (strcmp(optarg, "pooled") == 0)
                setup.world.routing = CPS_ROUTING_POOLED;
            else {
                fprintf(stderr, "cpscale sim: --routing: \"%s\" is not random or pooled\n", optarg);
                goto done;
            }
            break;
        case OPT_INTERVAL:
            if (parse_seconds("--interval", optarg, &setup.world.interval_s) < 0)
                goto done;
            break;
        case OPT_WINDOW:
            if (parse_seconds("--window", optarg, &setup.world.window_s) < 0)
                goto done;
            break;
        case OPT_LAG:
            if (parse_seconds("--lag", optarg, &setup.world.lag_s) < 0)
                goto done;
            break;
        case OPT_JSON: json = 1; break;
        case OPT_STEPS: steps_path = optarg; break;
        case OPT_STEPS_EVERY: steps_every = optarg; break;
        case OPT_PLOT: plot_path = optarg; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_RECORD_TRACE: record_path = optarg; break;
        case OPT_RECORD_STEP:
            if (parse_seconds("--record-step", optarg, &record_step_s) < 0)
                goto done;
            if (record_step_s < 1.0) {
                fprintf(stderr, "cpscale sim: --record-step: at least 1s\n");
                goto done;
            }
            break;
        case OPT_RECORD_POLICY: record_policy = optarg; break;
        case OPT_JOBS:
            if (parse_number("--jobs", optarg, 1, CPS_POOL_MAX_JOBS, &v) < 0)
                goto done;
            jobs = (int)v;
            break;
        case OPT_HELP:
            sim_usage(stdout);
            exit_code = CPS_EXIT_OK;
            goto done;
        default:
            sim_usage(stderr);
            goto done;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "cpscale sim: expected one trace file (see --help)\n");
        goto done;
    }
    const char *trace_path = argv[optind];
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_sim_parse_policies(policy_list, setup.policies, &setup.n_policies, &err) < 0) {
        fprintf(stderr, "cpscale sim: %s: %s\n", err.source, err.message);
        goto done;
    }
    target.min_replicas = setup.min_replicas;
    target.max_replicas = setup.max_replicas;
    setup.target = &target;
    if (list_text) {
        struct cps_whatif whatif;
        int input_error = 1;
        if (steps_path || plot_path || record_path) {
            fprintf(stderr, "cpscale sim: --steps, --plot and --record-trace take one world, not "
                    "a list of values\n");
            goto done;
        }
        if (cps_whatif_parse_list(list_param, list_text, &whatif, &err) < 0 ||
            cps_whatif_run(argv[optind], &setup, &whatif, jobs, json, stdout, quiet ? NULL : stderr,
                           &input_error, &err) < 0) {
            cps_err_print(stderr, "cpscale sim: ", &err);
            exit_code = input_error ? CPS_EXIT_USAGE : CPS_EXIT_RUNTIME;
            goto done;
        }
        exit_code = CPS_EXIT_OK;
        goto done;
    }
    int record_index = -1;
    if (record_path && (record_index = record_policy_index(&setup, record_policy)) < 0) {
        fprintf(stderr, "cpscale sim: --record-policy: %s\n",
                record_policy ? "no such policy in --policy (and not the oracle)"
                              : "the oracle has no pods to record: list another policy");
        goto done;
    }
    int64_t every = 1;
    if (steps_every) {
        if (strcmp(steps_every, "decision") == 0)
            every = (int64_t)llround(setup.world.interval_s);
        else if (parse_number("--steps-every", steps_every, 1, 1e9, &v) == 0)
            every = (int64_t)v;
        else
            goto done;
    }
    struct cps_sim *sim = cps_sim_new(&setup, &err);
    if (!sim) {
        fprintf(stderr, "cpscale sim: %s\n", err.message);
        goto done;
    }
    FILE *steps = NULL, *record = NULL;
    struct cps_trace_writer writer;
    struct cps_trace_replay replay;
    memset(&replay, 0, sizeof replay);
    if (steps_path) {
        steps = fopen(steps_path, "w");
        if (!steps || cps_sim_set_steps(sim, steps, every) < 0) {
            fprintf(stderr, "cpscale sim: %s: %s\n", steps_path, strerror(errno));
            exit_code = CPS_EXIT_RUNTIME;
            goto free_sim;
        }
    }
    if (record_path) {
        record = fopen(record_path, "w");
        if (!record || cps_trace_writer_init(&writer, record, (int64_t)llround(record_step_s),
                                             &replay.first_t, &(struct cps_queue_model){
                                                 setup.world.routing, setup.world.service_rate,
                                                 setup.world.base_latency_ms}) < 0) {
            fprintf(stderr, "cpscale sim: %s: %s\n", record_path, strerror(errno));
            exit_code = CPS_EXIT_RUNTIME;
            goto free_sim;
        }
        cps_sim_set_observer(sim, (size_t)record_index, cps_trace_writer_second_cb, &writer);
    }
    if (plot_path && cps_sim_enable_plot(sim, PLOT_POINTS) < 0) {
        fprintf(stderr, "cpscale sim: out of memory\n");
        exit_code = CPS_EXIT_RUNTIME;
        goto free_sim;
    }
    if (cps_trace_replay_file(trace_path, setup.world.scale, setup.world.price, sim,
                              quiet ? NULL : stderr, &replay, &err) < 0) {
        cps_err_print(stderr, NULL, &err);
        exit_code = strstr(err.message, "out of memory") || strstr(err.message, "write failed")
                        ? CPS_EXIT_RUNTIME
                        : CPS_EXIT_USAGE;
        goto free_sim;
    }
    struct cps_sim_result results[CPS_SIM_MAX_POLICIES];
    if (cps_sim_finish(sim, results, &err) < 0) {
        fprintf(stderr, "cpscale sim: %s\n", err.message);
        exit_code = CPS_EXIT_RUNTIME;
        goto free_sim;
    }
    struct cps_sim_report report = {
        .trace = trace_path,
        .seconds = cps_sim_seconds(sim),
        .requests = results[0].requests,
        .setup = &setup,
        .target = &target,
        .n_results = setup.n_policies,
        .results = results,
        .gaps = replay.gaps,
    };
    if ((json ? cps_report_write_json(stdout, &report) : cps_report_write_table(stdout, &report)) < 0) {
        fprintf(stderr, "cpscale sim: writing the report failed\n");
        exit_code = CPS_EXIT_RUNTIME;
        goto free_sim;
    }
    exit_code = CPS_EXIT_OK;
    if (plot_path) {
        struct cps_plot plot;
        struct cps_plot_series series[CPS_SIM_MAX_POLICIES];
        FILE *out = fopen(plot_path, "w");
        if (!out || cps_sim_plot_data(sim, replay.first_t, trace_path, &plot, series) < 0 ||
            cps_plot_write_svg(out, &plot, &err) < 0) {
            fprintf(stderr, "cpscale sim: %s: cannot write the plot\n", plot_path);
            exit_code = CPS_EXIT_RUNTIME;
        } else if (!json) {
            printf("\nplot: %s\n", plot_path);
        }
        if (out && fclose(out) != 0)
            exit_code = CPS_EXIT_RUNTIME;
    }
free_sim:
    if (record && ((exit_code == CPS_EXIT_OK && cps_trace_writer_finish(&writer) < 0) |
                   (fclose(record) != 0)) && exit_code == CPS_EXIT_OK) {
        fprintf(stderr, "cpscale sim: %s: write failed\n", record_path);
        exit_code = CPS_EXIT_RUNTIME;
    }
    if (steps && fclose(steps) != 0 && exit_code == CPS_EXIT_OK) {
        fprintf(stderr, "cpscale sim: %s: write failed\n", steps_path);
        exit_code = CPS_EXIT_RUNTIME;
    }
    cps_sim_free(sim);
done:
    cps_config_free(config);
    return exit_code;
}
