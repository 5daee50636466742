/* `cpscale calibrate TRACE.csv`: fit the simulated world (see calibrate.h). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "cli_common.h"
#include "cli_flags.h"
#include "commands.h"
#include "config.h"
#include "decimal.h"

/* Rows with p95 at or above SATURATED_SLOS x the SLO are saturated by default. */
#define SATURATED_SLOS 10.0
#define DEFAULT_SLO_MS 100.0

static void calibrate_usage(FILE *out)
{
    fputs("NAME\n"
          "    cpscale calibrate - fit the simulated world to a recorded trace\n"
          "\n"
          "SYNOPSIS\n"
          "    cpscale calibrate TRACE.csv [--routing random|pooled] [--config FILE]\n"
          "                      [--slo MS] [--saturated-above MS] [--json]\n"
          "\n"
          "DESCRIPTION\n"
          "    Fits the service rate mu (requests/s one ready pod serves) and the base\n"
          "    latency of docs/model.md to the rows of TRACE.csv that have qps, p95_ms and\n"
          "    replicas (as `cpscale record` writes them), so that `cpscale sim` and\n"
          "    `cpscale tune` replay production in a world that behaves like it:\n"
          "\n"
          "        p95 = base + 1000 ln(20) / (mu - qps/replicas)  ms   (random routing)\n"
          "\n"
          "    or the M/M/c tail of docs/model.md §3 for pooled routing. The fit is least\n"
          "    squares; for each mu the best base is the mean residual, so mu is found by\n"
          "    a one-dimensional search, which also gives its 95 % interval. Rows without\n"
          "    those columns, idle rows (qps 0 or no replica) and saturated rows (p95 at\n"
          "    or above --saturated-above) are left out; gross outliers (beyond 5 robust\n"
          "    SDs, at most 10 % of rows) are dropped once and the fit repeated.\n"
          "\n"
          "    It reports the fit (R², RMSE, percentiles of the absolute residuals, rows\n"
          "    used and left out, the load per pod seen) and prints the `sim:` section to\n"
          "    paste into config.yaml. It refuses, saying why, when the data cannot\n"
          "    identify the fit: fewer than 20 usable rows, only saturated rows, load per\n"
          "    pod that barely varies (10th..90th percentile spread below 20 % of the\n"
          "    median), a mu whose 95 % interval is wider than half of mu or unbounded,\n"
          "    or R² below 0.3.\n"
          "\n"
          "OPTIONS\n"
          "    --routing random|pooled  the model to fit (default: the config's sim.routing,\n"
          "                             random)\n"
          "    --config FILE            take routing and the SLO from this config\n"
          "    --slo MS                 p95 SLO, for the safe rate per pod and the default\n"
          "                             saturation cut (default: the config's, 100)\n"
          "    --saturated-above MS     rows with p95 at or above this are saturated\n"
          "                             (default 10 x the SLO)\n"
          "    --json                   one JSON object on stdout instead of the report\n"
          "    --help                   this page\n"
          "\n"
          "EXIT STATUS\n"
          "    0 fitted; 1 runtime failure; 2 usage, config or trace error, or the data\n"
          "    cannot identify the fit (the reason is printed).\n"
          "\n"
          "EXAMPLES\n"
          "    cpscale record --prometheus http://prometheus:9090 --namespace shop \\\n"
          "        --deployment web --from now-7d --to now --output web.csv\n"
          "    cpscale calibrate web.csv\n"
          "    cpscale sim web.csv --service-rate 83.2 --base-latency 35ms --record-trace w.csv\n"
          "    cpscale calibrate w.csv --json\n",
          out);
}

static int number_arg(const char *flag, const char *text, double lo, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = cps_strtod_decimal(text, &end);
    if (errno || end == text || *end || !isfinite(v) || !(v > lo)) {
        fprintf(stderr, "cpscale calibrate: %s: \"%s\" is not a number above %g\n", flag, text,
                lo);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parse, take routing and SLO from --config (flags win), read the rows, fit,
 * report. A refusal is exit 2 with the reason on stderr. */
int cli_calibrate(int argc, char **argv)
{
    static const enum cli_flag calibrate_flags[] = {
        CLI_FLAG_ROUTING, CLI_FLAG_CONFIG, CLI_FLAG_SLO, CLI_FLAG_SATURATED_ABOVE,
        CLI_FLAG_JSON, CLI_FLAG_HELP,
    };
    const char *routing = NULL, *config_path = NULL;
    double slo = NAN, saturated = NAN;
    int json = 0, opt;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "", calibrate_flags, CLI_N_FLAGS(calibrate_flags))) !=
           -1) {
        switch (opt) {
        case CLI_FLAG_ROUTING: routing = optarg; break;
        case CLI_FLAG_CONFIG: config_path = optarg; break;
        case CLI_FLAG_SLO:
            if (number_arg("--slo", optarg, 0.0, &slo) < 0)
                return CPS_EXIT_USAGE;
            break;
        case CLI_FLAG_SATURATED_ABOVE:
            if (number_arg("--saturated-above", optarg, 0.0, &saturated) < 0)
                return CPS_EXIT_USAGE;
            break;
        case CLI_FLAG_JSON: json = 1; break;
        case CLI_FLAG_HELP: calibrate_usage(stdout); return CPS_EXIT_OK;
        default:
            fprintf(stderr, "usage: cpscale calibrate TRACE.csv [options] (see --help)\n");
            return CPS_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "cpscale calibrate: expected one trace file (see --help)\n");
        return CPS_EXIT_USAGE;
    }
    const char *path = argv[optind];
    struct cps_calib_options o = {CPS_ROUTING_RANDOM, 0.0, DEFAULT_SLO_MS};
    if (config_path) {
        struct cps_config *config = cps_load_config_file(config_path);
        if (!config)
            return CPS_EXIT_USAGE;
        o.routing = config->sim.routing;
        o.slo_ms = config->defaults.slo_latency_p95_ms;
        cps_config_free(config);
    }
    if (routing && strcmp(routing, "random") == 0)
        o.routing = CPS_ROUTING_RANDOM;
    else if (routing && strcmp(routing, "pooled") == 0)
        o.routing = CPS_ROUTING_POOLED;
    else if (routing) {
        fprintf(stderr, "cpscale calibrate: --routing: \"%s\" is not random or pooled\n", routing);
        return CPS_EXIT_USAGE;
    }
    if (isfinite(slo))
        o.slo_ms = slo;
    o.saturated_ms = isfinite(saturated) ? saturated : SATURATED_SLOS * o.slo_ms;
    struct cps_calib_row *rows = NULL;
    size_t n_rows = 0;
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_calibrate_read_trace(path, &rows, &n_rows, &err) < 0) {
        cps_err_print(stderr, NULL, &err);
        return strstr(err.message, "out of memory") ? CPS_EXIT_RUNTIME : CPS_EXIT_USAGE;
    }
    struct cps_calib_result result;
    int rc = cps_calibrate_fit(rows, n_rows, &o, &result, &err);
    free(rows);
    if (rc < 0) {
        fprintf(stderr, "cpscale calibrate: %s: cannot fit: %s\n", path, err.message);
        return strstr(err.message, "out of memory") ? CPS_EXIT_RUNTIME : CPS_EXIT_USAGE;
    }
    if ((json ? cps_calibrate_write_json(stdout, path, &o, &result)
              : cps_calibrate_write_report(stdout, path, &o, &result)) < 0 ||
        fflush(stdout) == EOF) {
        fprintf(stderr, "cpscale calibrate: writing the report failed\n");
        return CPS_EXIT_RUNTIME;
    }
    return CPS_EXIT_OK;
}
