/*
 * `cpscale check-config FILE`, and the file helpers the commands share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"

static void check_config_usage(FILE *out)
{
    fputs("usage: cpscale check-config FILE\n"
          "\n"
          "Validate a cpscale config.yaml. On success, print the effective config\n"
          "(every default filled in, every target resolved) as YAML and exit 0.\n"
          "On error, print FILE:LINE:COL: message and exit 2.\n",
          out);
}

int cli_check_config(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        check_config_usage(stdout);
        return CPS_EXIT_OK;
    }
    if (argc != 2) {
        check_config_usage(stderr);
        return CPS_EXIT_USAGE;
    }
    struct cps_config *config = cps_load_config_file(argv[1]);
    if (!config)
        return CPS_EXIT_USAGE;
    if (config->warning[0])
        fprintf(stderr, "warning: %s\n", config->warning);
    char *yaml = cps_config_to_yaml(config);
    cps_config_free(config);
    if (!yaml) {
        fprintf(stderr, "cpscale check-config: out of memory\n");
        return CPS_EXIT_RUNTIME;
    }
    fputs(yaml, stdout);
    free(yaml);
    return fflush(stdout) == 0 ? CPS_EXIT_OK : CPS_EXIT_RUNTIME;
}
