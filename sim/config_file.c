#include "config_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Config files are small; anything past this is a mistake, not a config. */
#define CONFIG_MAX_BYTES (16u << 20)

/*
 * Read all of `path` ("-": stdin) into a NUL-terminated buffer, refusing
 * files over max_bytes so a wrong path cannot exhaust memory.
 */
int cps_read_file(const char *path, size_t max_bytes, char **bytes, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            if (cap >= max_bytes) {
                fprintf(stderr, "%s: larger than %zu bytes\n", path, max_bytes);
                free(buf);
                buf = NULL;
                break;
            }
            char *grown = realloc(buf, cap * 2 + 1);
            if (!grown) {
                free(buf);
                buf = NULL;
                fprintf(stderr, "%s: out of memory\n", path);
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    int failed = !buf || ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        if (buf)
            fprintf(stderr, "%s: read error\n", path);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *bytes = buf;
    *len = n;
    return 0;
}

struct cps_config *cps_load_config_file(const char *path)
{
    char *bytes = NULL;
    size_t len = 0;
    if (cps_read_file(path, CONFIG_MAX_BYTES, &bytes, &len) < 0)
        return NULL;
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_config *config = cps_config_load_bytes(bytes, len, path, &err);
    free(bytes);
    if (!config) {
        char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
        cps_err_format(&err, msg, sizeof msg);
        fprintf(stderr, "%s\n", msg);
    }
    return config;
}

