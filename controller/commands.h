/*
 * The subcommands of the one cpscale binary. Each returns the process exit
 * code: 0 ok, 1 runtime failure, 2 usage, config or input error.
 */
#ifndef CPS_COMMANDS_H
#define CPS_COMMANDS_H

#include <stddef.h>

#include "config.h"

#define CPS_EXIT_OK 0
#define CPS_EXIT_RUNTIME 1
#define CPS_EXIT_USAGE 2

int cps_cmd_decide(int argc, char **argv);
int cps_cmd_check_config(int argc, char **argv);

/* Read a whole file (at most max_bytes) into a NUL-terminated malloc'd
 * buffer. Returns 0, or -1 with a message printed to stderr. */
int cps_read_file(const char *path, size_t max_bytes, char **bytes, size_t *len);

/* Load and validate a config file, printing "file:line:col: message" on
 * error. Returns NULL on error. */
struct cps_config *cps_load_config_file(const char *path);

#endif
