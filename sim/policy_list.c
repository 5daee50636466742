/* `--policy` lists into the engine's policy specs (docs/model.md §6). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "world.h"

/*
 * Parse a comma-separated policy list. Names: cpscale, hpa, hpa:TARGET,
 * oracle, static:N. Each spec keeps its own text as its report name.
 */
int cps_sim_parse_policies(const char *list, struct cps_sim_policy_spec *specs, size_t *n_specs,
                           struct cps_err *err)
{
    *n_specs = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= CPS_SIM_POLICY_NAME_MAX)
            return cps_err_set(err, "--policy", 0, 0, "bad policy name \"%.*s\"", (int)len, p);
        if (*n_specs >= CPS_SIM_MAX_POLICIES)
            return cps_err_set(err, "--policy", 0, 0, "more than %d policies",
                               CPS_SIM_MAX_POLICIES);
        struct cps_sim_policy_spec *s = &specs[*n_specs];
        memset(s, 0, sizeof *s);
        memcpy(s->name, p, len);
        s->name[len] = '\0';
        char *rest = NULL;
        if (strcmp(s->name, "cpscale") == 0) {
            s->kind = CPS_SIM_POLICY_CPSCALE;
        } else if (strcmp(s->name, "oracle") == 0) {
            s->kind = CPS_SIM_POLICY_ORACLE;
        } else if (strcmp(s->name, "hpa") == 0) {
            s->kind = CPS_SIM_POLICY_HPA;
        } else if (strncmp(s->name, "hpa:", 4) == 0) {
            s->kind = CPS_SIM_POLICY_HPA;
            errno = 0;
            s->hpa_target = cps_strtod_decimal(s->name + 4, &rest);
            if (errno || rest == s->name + 4 || *rest || !(s->hpa_target > 0.0) ||
                s->hpa_target > 1.0)
                return cps_err_set(err, "--policy", 0, 0,
                                   "\"%s\": the HPA target must be in (0, 1]", s->name);
        } else if (strncmp(s->name, "static:", 7) == 0) {
            s->kind = CPS_SIM_POLICY_STATIC;
            errno = 0;
            long n = strtol(s->name + 7, &rest, 10);
            if (errno || rest == s->name + 7 || *rest || n < 0 || n > 1000000)
                return cps_err_set(err, "--policy", 0, 0,
                                   "\"%s\": static needs a replica count, e.g. static:9", s->name);
            s->static_replicas = (int32_t)n;
        } else {
            return cps_err_set(err, "--policy", 0, 0,
                               "unknown policy \"%s\" (cpscale, hpa, hpa:TARGET, oracle, static:N)",
                               s->name);
        }
        for (size_t i = 0; i < *n_specs; i++)
            if (strcmp(specs[i].name, s->name) == 0)
                return cps_err_set(err, "--policy", 0, 0, "policy \"%s\" listed twice", s->name);
        (*n_specs)++;
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return cps_err_set(err, "--policy", 0, 0, "empty policy name after ','");
    }
    if (*n_specs == 0)
        return cps_err_set(err, "--policy", 0, 0, "no policy given");
    return 0;
}
