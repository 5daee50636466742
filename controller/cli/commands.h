/*
 * The subcommands of the one cpscale binary, in the manner of git's
 * commands[]: one row per command (name, argument synopsis, one-line
 * summary, handler), from which main() dispatches and `cpscale --help`
 * lists the commands. Each handler takes the command's own argv (argv[0]
 * is the command name) and returns the process exit code: 0 ok, 1 runtime
 * failure, 2 usage, config or input error (CPS_EXIT_* of err.h).
 */
#ifndef CPS_COMMANDS_H
#define CPS_COMMANDS_H

#include <stddef.h>

#include "config_file.h"
#include "err.h"

struct cps_command {
    const char *name;     /* as typed: `cpscale NAME` */
    const char *synopsis; /* the arguments shown after the name in --help */
    const char *summary;  /* one line */
    int (*handler)(int argc, char **argv);
};

/* The table, in --help order; `n` receives its length. */
const struct cps_command *cps_commands(size_t *n);

int cli_run(int argc, char **argv);
int cli_sim(int argc, char **argv);
int cli_decide(int argc, char **argv);
int cli_check_config(int argc, char **argv);
int cli_gen_trace(int argc, char **argv);
int cli_calibrate(int argc, char **argv);
int cli_tune(int argc, char **argv);
int cli_record(int argc, char **argv);

#endif
