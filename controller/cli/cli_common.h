/*
 * Helpers the commands share: parsing a command-line number, reading a file
 * and loading a config, each printing what is wrong in the one format
 * every command uses.
 */
#ifndef CPS_CLI_COMMON_H
#define CPS_CLI_COMMON_H

#include "config_file.h"
#include "err.h"

/* Parse a command-line number for `flag` within [lo, hi]; otherwise print
 * "cpscale COMMAND: FLAG: "TEXT" is not a number in [lo, hi]" to stderr and
 * return -1. */
int cps_parse_number_arg(const char *command, const char *flag, const char *text, double lo,
                         double hi, double *out);

/* The same for a flag that counts (replicas, jobs, seconds between rows):
 * also refused when the number is not whole ("1.5" once ran as 1). */
int cps_parse_whole_arg(const char *command, const char *flag, const char *text, double lo,
                        double hi, double *out);

/* cps_read_file_err, printing "file: message" to stderr on failure. */
int cps_read_file(const char *path, size_t max_bytes, char **bytes, size_t *len);

/* cps_load_config_file_err, printing "file:line:col: message" to stderr on
 * failure. NULL on error; free with cps_config_free. */
struct cps_config *cps_load_config_file(const char *path);

#endif
