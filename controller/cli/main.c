/*
 * cpscale: one binary, several commands (see `cpscale --help`). The command
 * table below is the one list of them: dispatch and the usage text both
 * come from it.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

/* The command column of the usage text: a longer name and synopsis gets
 * its own line and the summary goes on the next, at the same column. */
#define USAGE_COMMAND_WIDTH 24

static const struct cps_command commands[] = {
    {"run", "--config FILE", "the controller (in-cluster or --kubeconfig)", cli_run},
    {"sim", "TRACE.csv", "replay a trace against cpscale, HPA and an oracle", cli_sim},
    {"decide", "--input OBS.json", "make one decision from a JSON observation", cli_decide},
    {"check-config", "FILE", "validate a config and print the effective config",
     cli_check_config},
    {"gen-trace", "", "write a synthetic trace (daily cycle, noise, bursts)", cli_gen_trace},
    {"calibrate", "TRACE.csv", "fit the simulated world (service rate, base latency)",
     cli_calibrate},
    {"tune", "TRACE.csv...", "search the policy's parameters on traces (train/test)", cli_tune},
    {"record", "--namespace NS --deployment NAME --from T --to T",
     "write a target's history from Prometheus as a trace", cli_record},
};

const struct cps_command *cps_commands(size_t *n)
{
    *n = sizeof commands / sizeof commands[0];
    return commands;
}

/* The top-level usage: a fixed preamble, one line per table row, a footer. */
static void usage(FILE *out)
{
    fputs("usage: cpscale COMMAND [options]\n"
          "\n"
          "cpscale keeps each Deployment at the cheapest replica count that meets its\n"
          "latency SLO, cost target and budget.\n"
          "\n"
          "Commands:\n",
          out);
    size_t n;
    const struct cps_command *table = cps_commands(&n);
    for (size_t i = 0; i < n; i++) {
        char head[128];
        snprintf(head, sizeof head, "%s%s%s", table[i].name, table[i].synopsis[0] ? " " : "",
                 table[i].synopsis);
        if (strlen(head) > USAGE_COMMAND_WIDTH)
            fprintf(out, "  %s\n  %-*s %s\n", head, USAGE_COMMAND_WIDTH, "", table[i].summary);
        else
            fprintf(out, "  %-*s %s\n", USAGE_COMMAND_WIDTH, head, table[i].summary);
    }
    fputs("\n"
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
    size_t n;
    const struct cps_command *table = cps_commands(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(command, table[i].name) == 0)
            return table[i].handler(argc - 1, argv + 1);
    fprintf(stderr, "cpscale: unknown command \"%s\" (see cpscale --help)\n", command);
    return CPS_EXIT_USAGE;
}
