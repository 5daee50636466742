/*
 * The subcommands of the one cpscale binary. Each returns the process exit
 * code: 0 ok, 1 runtime failure, 2 usage, config or input error.
 */
#ifndef CPS_COMMANDS_H
#define CPS_COMMANDS_H

#include <stddef.h>

#include "config_file.h"
#include "err.h"


int cps_cmd_decide(int argc, char **argv);
int cps_cmd_check_config(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_record(int argc, char **argv);

#endif
