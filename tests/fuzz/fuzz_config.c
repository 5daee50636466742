/*
 * Fuzz target: the config.yaml loader (cps_config_load_bytes).
 *
 * Any bytes must load or fail with a message, never crash or leak. When a
 * config loads, its effective config (cps_config_to_yaml) must load again
 * and print the same text (after the header comment, which names the
 * source): `cpscale check-config --print` output is meant to be a valid
 * config. A broken promise aborts, so libFuzzer keeps the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CONFIG_SOURCE "fuzz.yaml"
#define FUZZ_CONFIG_PRINTED_SOURCE "printed.yaml"

/*
 * The round trip of a loaded config: print, load, print again, compare the
 * two printouts past their first line. Aborts on any failure but running
 * out of memory.
 */
static void check_round_trip(const struct cps_config *config)
{
    char *yaml = cps_config_to_yaml(config);
    if (!yaml)
        return;
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_config *again =
        cps_config_load_bytes(yaml, strlen(yaml), FUZZ_CONFIG_PRINTED_SOURCE, &err);
    if (!again)
        abort(); /* the printed config does not load */
    char *yaml2 = cps_config_to_yaml(again);
    if (yaml2) {
        const char *a = strchr(yaml, '\n'), *b = strchr(yaml2, '\n');
        if (!a || !b || strcmp(a, b) != 0)
            abort(); /* printing is not stable */
    }
    free(yaml2);
    cps_config_free(again);
    free(yaml);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_config *config =
        cps_config_load_bytes((const char *)data, size, FUZZ_CONFIG_SOURCE, &err);
    if (!config) {
        if (!err.message[0])
            abort(); /* failed without saying why */
        return 0;
    }
    check_round_trip(config);
    cps_config_free(config);
    return 0;
}
