/*
 * tune's merge of shard results and the final report. An unsharded run is
 * the merge of its one shard, so both print the same table and fragment.
 */
#ifndef CPS_SIM_TUNE_MERGE_H
#define CPS_SIM_TUNE_MERGE_H

#include <jansson.h>
#include <stddef.h>

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

/* Print the merged result to stdout (the table and fragment, or JSON; the
 * fragment also to fragment_path when given; elapsed_s < 0: not shown).
 * Returns the command's exit code. */
int cps_tune_report(const struct cps_tune_merged *m, int json, const char *fragment_path,
                    double elapsed_s);

#endif
