/*
 * `cpscale tune TRACE.csv...`: search the cpscale policy's parameters and
 * its HPA behavior rails for the cheapest setting that keeps SLO violations
 * within a budget on the first part of every trace ("train"), then score
 * the winner on the rest ("test"), against the defaults, against HPA at its
 * best CPU target and against the oracle.
 *
 * The search is one fixed list of candidates drawn from --seed (candidate 0
 * is the starting config itself), so the work splits into independent
 * items: threads (--jobs) and shards (--shard i/N, for a Kubernetes Indexed
 * Job) only change who evaluates what, never the result. A shard writes its
 * figures as JSON; `--merge` combines shard files, and an unsharded run is
 * the merge of its one shard, so both print the same table and fragment.
 *
 * Each part of a trace is replayed as a trace of its own (SIM-MODEL §1-§8
 * from its own second 0), so a policy starts the test part as it would
 * start in production: knowing nothing it has not learned there.
 */
#ifndef CPS_SIM_TUNE_H
#define CPS_SIM_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

/* The searched dimensions, each over a fixed list of levels. */
enum cps_tune_dim {
    CPS_TUNE_HEADROOM_QUANTILE = 0,
    CPS_TUNE_SCALE_DOWN_QUANTILE,
    CPS_TUNE_VOLATILITY_HALFLIFE,
    CPS_TUNE_TREND,
    CPS_TUNE_SEASONALITY,
    CPS_TUNE_DOWN_WINDOW,   /* behavior.scaleDown.stabilizationWindowSeconds */
    CPS_TUNE_DOWN_PERCENT,  /* behavior.scaleDown.policies: Percent value */
    CPS_TUNE_DOWN_PERIOD,   /* ... its periodSeconds */
    CPS_TUNE_UP_PODS,       /* behavior.scaleUp.policies: Pods value (per 15 s) */
    CPS_TUNE_UP_PERCENT,    /* ... and Percent value (per 15 s), selectPolicy Max */
    CPS_TUNE_CAPACITY,      /* capacity.rps_per_pod: as the base says, or a share of the
                               world's SLO-safe rate per pod (a constant safety factor) */
    CPS_TUNE_DIMS
};

/* One candidate: a level per dimension; candidate 0 is the base config as it
 * is (`is_base`), its levels only the nearest ones, for the local search. */
struct cps_tune_candidate {
    uint8_t level[CPS_TUNE_DIMS];
    int is_base;
};

/* Number of levels of a dimension. */
size_t cps_tune_levels(enum cps_tune_dim dim);

/*
 * The candidate list for a seed: [0] the base, then alternately a local
 * move from the base (a few dimensions one or two levels away) and a draw
 * from the whole grid, without repeats. Candidate i depends only on the
 * seed and the candidates before it, so a longer list extends a shorter one.
 */
void cps_tune_candidates(const struct cps_target *base, uint64_t seed, size_t n,
                         struct cps_tune_candidate *out);

/* Set a candidate's parameters in a target (a copy of the base).
 * `safe_rps_per_pod` is λmax(1) of the simulated world at the target's SLO,
 * which the capacity levels are shares of (rounded to 4 significant digits,
 * as the fragment writes them). */
void cps_tune_apply(const struct cps_tune_candidate *candidate, double safe_rps_per_pod,
                    struct cps_target *target);

/* The `defaults:` fragment of config.yaml for a target's policy and behavior
 * (malloc'd, the caller frees; NULL when out of memory). It loads with
 * cps_config_load_bytes and gives back the same values. */
char *cps_tune_fragment(const struct cps_target *target);

/* The command; returns the exit code. */
int cps_tune_main(int argc, char **argv);

#endif
