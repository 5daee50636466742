/*
 * tune's merge of shard results and the final report. An unsharded run is
 * the merge of its one shard, so both print the same table and fragment.
 */
#ifndef CPS_SIM_TUNE_MERGE_H
#define CPS_SIM_TUNE_MERGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"
#include "tune.h"
#include "tune_score.h"

struct cps_tune_merged_trace {
    const char *label;
    double scale;
    int64_t seconds, split_s;
    struct cps_tune_figures oracle[2];
    struct cps_tune_figures tuned[2], base[2], hpa[2];
    size_t hpa_index;
};

struct cps_tune_merged {
    size_t n_traces, n_candidates, feasible;
    struct cps_tune_merged_trace traces[CPS_TUNE_MAX_TRACES];
    double hpa_targets[CPS_TUNE_HPA_TARGETS];
    double budget_pct, train_fraction;
    json_int_t seed;
    size_t best;
    int best_feasible;
    const char *fragment;   /* borrowed from the shard JSON */
    json_t *params;         /* borrowed */
    double simulated_seconds;
};

/*
 * Check that the shards belong together (same format, fingerprint and shard
 * count, each index once; sources[i] names shard i in errors), gather every
 * item's training figures, choose the winner and HPA's best targets, and
 * look up their test figures. m borrows strings from the shards, which must
 * outlive it. 0, or -1 with err.
 */
int cps_tune_merge(json_t *const *shards, const char *const *sources, size_t n_shards,
                   struct cps_tune_merged *m, struct cps_err *err);

/* The human report: header, one block per trace (train and test rows for
 * the tuned and default configs, HPA at its best target and the oracle),
 * then the fragment. Nothing in it depends on --jobs, sharding or time, so
 * runs compare by bytes. 0, or -1 on a write error. */
int cps_tune_write_table(FILE *out, const struct cps_tune_merged *m);

/* The same as a new JSON object (the caller decrefs); elapsed_s < 0: left
 * out. */
json_t *cps_tune_merged_json(const struct cps_tune_merged *m, double elapsed_s);

#endif
