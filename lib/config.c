/*
 * The lifecycle of struct cps_config and struct cps_target: built-in
 * defaults (from the schema rows, config_schema.c), deep copy and release.
 * The contract is in config.h; loading is in config_load.c, printing in
 * config_print.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "config_schema.h"
#include "config_walk.h"

/* cpscale's own default: its scale-down quantile already absorbs noise, so
 * it holds recommendations 2 minutes instead of HPA's 5 (measured in
 * bench/quality.py: cheaper at the same violations on the real traces) */
#define DEF_SCALE_DOWN_WINDOW_S 120

/* The sections whose rows live in struct cps_target. */
static const enum cps_config_section target_sections[] = {
    CPS_SEC_TARGET, CPS_SEC_SLO, CPS_SEC_COST, CPS_SEC_CAPACITY, CPS_SEC_MISSING,
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void cps_target_release(struct cps_target *target)
{
    if (!target)
        return;
    cps_config_section_release(CPS_SEC_TARGET, target);
    cps_config_section_release(CPS_SEC_QUERIES, &target->queries);
}

/* Replace each string field of a section in dst (a shallow copy of src)
 * with a copy of its own. On failure the fields not yet copied are NULL. */
static int copy_strings(enum cps_config_section section, void *dst, const void *src)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].type != CPS_CFG_STRING && rows[i].type != CPS_CFG_QUERY)
            continue;
        char **to = cps_config_field(&rows[i], dst);
        const char *const *from = cps_config_cfield(&rows[i], src);
        *to = NULL;
        if (rc == 0 && *from && !(*to = strdup(*from)))
            rc = -1;
    }
    return rc;
}

int cps_target_copy(struct cps_target *dst, const struct cps_target *src)
{
    *dst = *src;
    if (copy_strings(CPS_SEC_TARGET, dst, src) < 0 ||
        copy_strings(CPS_SEC_QUERIES, &dst->queries, &src->queries) < 0) {
        cps_target_release(dst);
        return -1;
    }
    return 0;
}

int cps_target_init_defaults(struct cps_target *target)
{
    memset(target, 0, sizeof *target);
    cps_behavior_default(&target->behavior);
    target->behavior.scale_down.stabilization_window_seconds = DEF_SCALE_DOWN_WINDOW_S;
    target->capacity_auto = 1;
    target->on_missing = CPS_MISSING_HOLD;
    for (size_t i = 0; i < ARRAY_LEN(target_sections); i++) {
        if (cps_config_section_defaults(target_sections[i], target) < 0) {
            cps_target_release(target);
            return -1;
        }
    }
    if (cps_config_section_defaults(CPS_SEC_POLICY, &target->policy) < 0) {
        cps_target_release(target);
        return -1;
    }
    return 0;
}

int cps_config_init_defaults(struct cps_config *config)
{
    memset(config, 0, sizeof *config);
    if (cps_target_init_defaults(&config->defaults) < 0)
        return -1;
    if (cps_config_section_defaults(CPS_SEC_TOP, config) < 0 ||
        cps_config_section_defaults(CPS_SEC_PROMETHEUS, &config->prometheus) < 0 ||
        cps_config_section_defaults(CPS_SEC_LABELS, &config->prometheus) < 0 ||
        cps_config_section_defaults(CPS_SEC_QUERIES, &config->queries) < 0 ||
        cps_config_section_defaults(CPS_SEC_LEADER, &config->leader_election) < 0 ||
        cps_config_section_defaults(CPS_SEC_SHARDING, &config->sharding) < 0 ||
        cps_config_section_defaults(CPS_SEC_SIM, &config->sim) < 0)
        return -1;
    return 0;
}

void cps_config_headers_release(struct cps_prometheus_config *prom)
{
    for (size_t i = 0; i < prom->n_headers; i++) {
        free(prom->header_names[i]);
        free(prom->header_values[i]);
    }
    free(prom->header_names);
    free(prom->header_values);
    prom->header_names = prom->header_values = NULL;
    prom->n_headers = 0;
}

void cps_config_release(struct cps_config *config)
{
    if (!config)
        return;
    free(config->source);
    cps_config_section_release(CPS_SEC_TOP, config);
    cps_config_section_release(CPS_SEC_PROMETHEUS, &config->prometheus);
    cps_config_section_release(CPS_SEC_LABELS, &config->prometheus);
    cps_config_headers_release(&config->prometheus);
    cps_config_section_release(CPS_SEC_QUERIES, &config->queries);
    cps_config_section_release(CPS_SEC_LEADER, &config->leader_election);
    cps_config_section_release(CPS_SEC_SIM, &config->sim);
    cps_target_release(&config->defaults);
    for (size_t i = 0; i < config->n_targets; i++)
        cps_target_release(&config->targets[i]);
    free(config->targets);
    memset(config, 0, sizeof *config);
}

void cps_config_free(struct cps_config *config)
{
    if (!config)
        return;
    cps_config_release(config);
    free(config);
}
