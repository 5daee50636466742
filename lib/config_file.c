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
int cps_read_file_err(const char *path, size_t max_bytes, char **bytes, size_t *len,
                      struct cps_err *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return cps_err_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    int too_large = 0;
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            if (cap >= max_bytes) {
                too_large = 1;
                break;
            }
            char *grown = realloc(buf, cap * 2 + 1);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
    }
    int read_error = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf || too_large || read_error || n == cap) {
        free(buf);
        if (too_large)
            return cps_err_set(err, path, 0, 0, "larger than %zu bytes", max_bytes);
        return cps_err_set(err, path, 0, 0, read_error ? "read error" : "out of memory");
    }
    buf[n] = '\0';
    *bytes = buf;
    *len = n;
    return 0;
}

struct cps_config *cps_load_config_file_err(const char *path, struct cps_err *err)
{
    char *bytes = NULL;
    size_t len = 0;
    if (cps_read_file_err(path, CONFIG_MAX_BYTES, &bytes, &len, err) < 0)
        return NULL;
    struct cps_config *config = cps_config_load_bytes(bytes, len, path, err);
    free(bytes);
    return config;
}
