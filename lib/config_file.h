/*
 * Reading files the commands take: a whole file into memory, and a config
 * file loaded and validated with its error printed as file:line:col. Shared
 * by the simulator's commands and the controller's.
 */
#ifndef CPS_CONFIG_FILE_H
#define CPS_CONFIG_FILE_H

#include <stddef.h>

#include "config.h"

/* Read a whole file ("-": stdin; at most max_bytes) into a NUL-terminated
 * malloc'd buffer the caller frees. Returns 0, or -1 with a message printed
 * to stderr. */
int cps_read_file(const char *path, size_t max_bytes, char **bytes, size_t *len);

/* The same, filling err instead of printing (for the controller, which logs
 * and counts failures). */
int cps_read_file_err(const char *path, size_t max_bytes, char **bytes, size_t *len,
                      struct cps_err *err);

/* Load and validate a config file into err instead of printing; NULL on
 * error. The controller's reload uses it to refuse a bad file and keep the
 * old config. */
struct cps_config *cps_load_config_file_err(const char *path, struct cps_err *err);

/* Load and validate a config file, printing "file:line:col: message" on
 * error. Returns NULL on error; free with cps_config_free. */
struct cps_config *cps_load_config_file(const char *path);

#endif
