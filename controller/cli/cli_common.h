/*
 * Helpers the commands share: parsing a command-line number and printing
 * what is wrong with it in the one format every command uses.
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

#endif
