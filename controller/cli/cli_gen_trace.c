/* `cpscale gen-trace`: write a synthetic trace (see gen_trace.h). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "cli_flags.h"
#include "commands.h"
#include "gen_trace.h"

/* More rows than this is a typo in --days or --step, not a trace. */
#define MAX_ROWS 50000000.0

/* The command's number flags (shared parser, this command's name). */
static int number_arg(const char *flag, const char *text, double lo, double hi, double *out)
{
    return cps_parse_number_arg("gen-trace", flag, text, lo, hi, out);
}

static void gen_usage(FILE *out)
{
    fputs("usage: cpscale gen-trace [options] [--output FILE]\n"
          "\n"
          "Write a synthetic trace (timestamp,qps): a daily cycle peaking at 15:00 UTC,\n"
          "quieter weekends, log-normal noise and random bursts (flash crowds that ramp\n"
          "up over 1-3 min, hold 5-30 min at 1.4-2.6x, and ramp down). The same seed\n"
          "always gives the same trace. A rate is capped at 1e12, the most a trace holds.\n"
          "\n"
          "  --days D             length (default 7)\n"
          "  --step S             seconds per row (default 60)\n"
          "  --peak QPS           weekday peak (default 2000)\n"
          "  --noise SD           log-normal noise per row (default 0.05)\n"
          "  --bursts-per-day N   (default 3)\n"
          "  --seed N             (default 1)\n"
          "  --with-cost          add a spot-like cost_per_pod_hour column\n"
          "  --output FILE        instead of stdout\n",
          out);
}

/*
 * Flags into generator parameters (--days --step --peak --seed --noise
 * --bursts-per-day --with-cost), then the CSV to stdout or --output FILE.
 */
int cli_gen_trace(int argc, char **argv)
{
    static const enum cli_flag gen_trace_flags[] = {
        CLI_FLAG_DAYS, CLI_FLAG_STEP, CLI_FLAG_PEAK, CLI_FLAG_NOISE,
        CLI_FLAG_BURSTS_PER_DAY, CLI_FLAG_SEED, CLI_FLAG_WITH_COST, CLI_FLAG_OUTPUT,
        CLI_FLAG_HELP,
    };
    struct cps_gen_params p;
    cps_gen_params_default(&p);
    const char *output = NULL;
    double v;
    int opt;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "", gen_trace_flags, CLI_N_FLAGS(gen_trace_flags))) !=
           -1) {
        switch (opt) {
        case CLI_FLAG_DAYS: if (number_arg("--days", optarg, 1.0 / 24, 3660, &p.days) < 0) return 2; break;
        case CLI_FLAG_STEP:
            /* whole seconds: a trace's timestamps are */
            if (number_arg("--step", optarg, 1, 86400, &p.step_s) < 0) return 2;
            if (p.step_s != floor(p.step_s)) {
                fprintf(stderr, "cpscale gen-trace: --step: \"%s\" is not a whole number of "
                        "seconds\n", optarg);
                return 2;
            }
            break;
        case CLI_FLAG_PEAK: if (number_arg("--peak", optarg, 0, 1e9, &p.peak_qps) < 0) return 2; break;
        case CLI_FLAG_NOISE: if (number_arg("--noise", optarg, 0, 2, &p.noise) < 0) return 2; break;
        case CLI_FLAG_BURSTS_PER_DAY: if (number_arg("--bursts-per-day", optarg, 0, 100, &p.bursts_per_day) < 0) return 2; break;
        case CLI_FLAG_SEED:
            if (number_arg("--seed", optarg, 0, 9007199254740992.0, &v) < 0)
                return 2;
            p.seed = (uint64_t)v;
            break;
        case CLI_FLAG_WITH_COST: p.with_cost = 1; break;
        case CLI_FLAG_OUTPUT: output = optarg; break;
        case CLI_FLAG_HELP: gen_usage(stdout); return 0;
        default: gen_usage(stderr); return 2;
        }
    }
    if (optind != argc || p.days * 86400.0 / p.step_s > MAX_ROWS) {
        gen_usage(stderr);
        return 2;
    }
    FILE *out = output ? fopen(output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "cpscale gen-trace: %s: %s\n", output, strerror(errno));
        return 1;
    }
    int rc = cps_gen_trace_write(out, &p);
    if (output && fclose(out) != 0)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "cpscale gen-trace: write failed\n");
        return 1;
    }
    return 0;
}
