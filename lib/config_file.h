/*
 * Reading files: a whole file into memory, and a config file loaded and
 * validated, with what went wrong in a struct cps_err (file:line:col).
 */
#ifndef CPS_CONFIG_FILE_H
#define CPS_CONFIG_FILE_H

#include <stddef.h>

#include "config.h"

/* Read a whole file ("-": stdin; at most max_bytes) into a NUL-terminated
 * malloc'd buffer the caller frees. Returns 0, or -1 with err filled. */
int cps_read_file_err(const char *path, size_t max_bytes, char **bytes, size_t *len,
                      struct cps_err *err);

/* Load and validate a config file; NULL with err filled on error. The
 * controller's reload uses it to refuse a bad file and keep the old
 * config. */
struct cps_config *cps_load_config_file_err(const char *path, struct cps_err *err);

#endif
