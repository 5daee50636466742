/*
 * cpscale: one binary, several commands (see `cpscale --help`).
 */
#include <stdio.h>
#include <string.h>

#include "calibrate.h"
#include "commands.h"
#include "controller.h"
#include "gen_trace.h"
#include "record.h"
#include "sim_cmd.h"
#include "tune.h"

static void usage(FILE *out)
{
    fputs("usage: cpscale COMMAND [options]\n"
          "\n"
          "cpscale keeps each Deployment at the cheapest replica count that meets its\n"
          "latency SLO, cost target and budget.\n"
          "\n"
          "Commands:\n"
          "  run --config FILE        the controller (in-cluster or --kubeconfig)\n"
          "  sim TRACE.csv            replay a trace against cpscale, HPA and an oracle\n"
          "  decide --input OBS.json  make one decision from a JSON observation\n"
          "  check-config FILE        validate a config and print the effective config\n"
          "  gen-trace                write a synthetic trace (daily cycle, noise, bursts)\n"
          "  calibrate TRACE.csv      fit the simulated world (service rate, base latency)\n"
          "  tune TRACE.csv...        search the policy's parameters on traces (train/test)\n"
          "  record --namespace NS --deployment NAME --from T --to T\n"
          "                           write a target's history from Prometheus as a trace\n"
          "\n"
          "`cpscale COMMAND --help` describes each command.\n"
          "Exit status: 0 ok, 1 runtime failure, 2 usage, config or input error.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CPS_EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        usage(stdout);
        return CPS_EXIT_OK;
    }
    if (strcmp(command, "--version") == 0 || strcmp(command, "version") == 0) {
        printf("cpscale %s\n", CPS_VERSION);
        return CPS_EXIT_OK;
    }
    if (strcmp(command, "run") == 0)
        return cli_run(argc - 1, argv + 1);
    if (strcmp(command, "sim") == 0)
        return cps_sim_main(argc - 1, argv + 1);
    if (strcmp(command, "decide") == 0)
        return cps_cmd_decide(argc - 1, argv + 1);
    if (strcmp(command, "check-config") == 0)
        return cps_cmd_check_config(argc - 1, argv + 1);
    if (strcmp(command, "gen-trace") == 0)
        return cps_gen_trace_main(argc - 1, argv + 1);
    if (strcmp(command, "calibrate") == 0)
        return cps_calibrate_main(argc - 1, argv + 1);
    if (strcmp(command, "tune") == 0)
        return cps_tune_main(argc - 1, argv + 1);
    if (strcmp(command, "record") == 0)
        return cli_record(argc - 1, argv + 1);
    fprintf(stderr, "cpscale: unknown command \"%s\" (see cpscale --help)\n", command);
    return CPS_EXIT_USAGE;
}
