#include "cli_common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"

/*
 * A decimal number (lib/decimal.h) over the whole text, finite and within
 * [lo, hi]; the message names the command and flag so a script's log says
 * which argument was wrong.
 */
int cps_parse_number_arg(const char *command, const char *flag, const char *text, double lo,
                         double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = cps_strtod_decimal(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "cpscale %s: %s: \"%s\" is not a number in [%g, %g]\n", command, flag,
                text, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* As cps_parse_number_arg, for a flag that counts: a whole number. */
int cps_parse_whole_arg(const char *command, const char *flag, const char *text, double lo,
                        double hi, double *out)
{
    double v = 0;
    if (cps_parse_number_arg(command, flag, text, lo, hi, &v) < 0)
        return -1;
    if (v != floor(v)) {
        fprintf(stderr, "cpscale %s: %s: \"%s\" is not a whole number\n", command, flag, text);
        return -1;
    }
    *out = v;
    return 0;
}

int cps_read_file(const char *path, size_t max_bytes, char **bytes, size_t *len)
{
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_read_file_err(path, max_bytes, bytes, len, &err) == 0)
        return 0;
    cps_err_print(stderr, NULL, &err);
    return -1;
}

struct cps_config *cps_load_config_file(const char *path)
{
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_config *config = cps_load_config_file_err(path, &err);
    if (!config)
        cps_err_print(stderr, NULL, &err);
    return config;
}
