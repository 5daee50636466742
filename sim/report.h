/*
 * The simulator's report (docs/model.md §8): a table for people, JSON for
 * machines.
 */
#ifndef CPS_SIM_REPORT_H
#define CPS_SIM_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "world.h"

struct cps_sim_report {
    const char *trace;
    int64_t seconds;
    double requests;
    const struct cps_sim_setup *setup;
    const struct cps_target *target;
    size_t n_results;
    const struct cps_sim_result *results;
    size_t gaps;
};

/* Human table. Returns 0, or -1 on a write error. */
int cps_report_write_table(FILE *out, const struct cps_sim_report *report);

/* One JSON object (schema of docs/model.md §8), newline-terminated. */
int cps_report_write_json(FILE *out, const struct cps_sim_report *report);

#endif
