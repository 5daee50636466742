/*
 * What-if runs of `cpscale sim`: one world parameter given a list of values
 * (`--startup 5s,30s,120s`, `--price 0.02,0.05`), the trace replayed once
 * per value with everything else equal, and a table of how each value moves
 * every policy's cost and violations against the first value.
 *
 * One parameter takes a list at a time: a table of deltas against one base
 * value reads clearly, and a cross product is a loop in a shell script.
 */
#ifndef CPS_SIM_WHATIF_H
#define CPS_SIM_WHATIF_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "err.h"
#include "world.h"

#define CPS_WHATIF_MAX_VALUES 64
#define CPS_WHATIF_LABEL_MAX 32

enum cps_whatif_param {
    CPS_WHATIF_SERVICE_RATE = 0,
    CPS_WHATIF_BASE_LATENCY,
    CPS_WHATIF_STARTUP,
    CPS_WHATIF_PRICE,
    CPS_WHATIF_SCALE,
    CPS_WHATIF_ROUTING,
    CPS_WHATIF_INTERVAL,
    CPS_WHATIF_WINDOW,
    CPS_WHATIF_LAG,
    CPS_WHATIF_HPA_TARGET,
    CPS_WHATIF_SLO,
    CPS_WHATIF_SERVICE_TIMES,   /* -1 exponential, 0 deterministic, CV > 0 lognormal:CV */
    CPS_WHATIF_CAPACITY_DRIFT,
    CPS_WHATIF_STARTUP_JITTER,
    CPS_WHATIF_WORLD_SEED,
    CPS_WHATIF_PARAM_COUNT
};

struct cps_whatif {
    enum cps_whatif_param param;
    size_t n_values;
    double values[CPS_WHATIF_MAX_VALUES]; /* in the setup's units (s, ms, USD...) */
    char labels[CPS_WHATIF_MAX_VALUES][CPS_WHATIF_LABEL_MAX]; /* as the user wrote them */
};

/* The parameter a `cpscale sim` flag sets ("--startup" -> STARTUP); -1 if
 * the flag takes no list. */
int cps_whatif_param_of_flag(const char *flag);

/* The flag's name without dashes ("startup"), for reports. */
const char *cps_whatif_param_name(enum cps_whatif_param param);

/* Parse one flag value (a single value, not a list) into the setup's units;
 * 0, or -1 with err naming the flag. */
int cps_whatif_parse_value(enum cps_whatif_param param, const char *text, double *value,
                           struct cps_err *err);

/* Parse "5s,30s,120s" for a parameter. 0, or -1 with err. */
int cps_whatif_parse_list(enum cps_whatif_param param, const char *list, struct cps_whatif *out,
                          struct cps_err *err);

/* Set one parameter in a setup and in the cpscale policy's target (the SLO
 * is in both). */
void cps_whatif_apply(enum cps_whatif_param param, double value, struct cps_sim_setup *setup,
                      struct cps_target *target);

/*
 * Replay `trace_path` once per value on `jobs` threads, starting from `base`
 * (whose target the runs copy), and print the table, or with `json` one JSON
 * object, to `out`. Gap warnings go to `warnings` once (NULL: silent).
 * Returns 0, -1 with err: err->line > 0 or a source naming the trace means
 * bad input, anything else a runtime failure (*input_error says which).
 */
int cps_whatif_run(const char *trace_path, const struct cps_sim_setup *base,
                   const struct cps_whatif *whatif, int jobs, int json, FILE *out, FILE *warnings,
                   int *input_error, struct cps_err *err);

#endif
