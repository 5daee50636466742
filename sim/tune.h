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
 * Each part of a trace is replayed as a trace of its own (docs/model.md §1-§8
 * from its own second 0), so a policy starts the test part as it would
 * start in production: knowing nothing it has not learned there.
 */
#ifndef CPS_SIM_TUNE_H
#define CPS_SIM_TUNE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "err.h"
#include "trace_runs.h"
#include "world.h"

/* The searched dimensions, each over a fixed list of levels. */
enum cps_tune_dim {
    CPS_TUNE_HEADROOM_QUANTILE = 0,
    CPS_TUNE_SCALE_DOWN_QUANTILE,
    CPS_TUNE_VOLATILITY_HALFLIFE,
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

/* ---- a run: what the command sets up, a shard's work ----------------------- */

#define CPS_TUNE_MAX_TRACES 64
#define CPS_TUNE_MAX_CANDIDATES 100000
/* The HPA CPU targets searched for its best (0.10, 0.15, ..., 0.95). */
#define CPS_TUNE_HPA_TARGETS 18
#define CPS_TUNE_SHARD_FORMAT "cpscale-tune-shard/1"
/* Shard JSON keeps doubles exact, so a merge sees the shard's very numbers. */
#define CPS_TUNE_JSON_EXACT (JSON_REAL_PRECISION(17))

struct cps_tune_trace {
    const char *label; /* as given on the command line */
    char *path;
    double scale;
    struct cps_trace_runs runs;
    int64_t split_s;   /* train: [0, split_s), test: [split_s, seconds) */
};

/* Everything a run needs; the command fills the options and traces, the
 * functions below the rest. Release with cps_tune_setup_release. */
struct cps_tune_setup {
    struct cps_sim_params world;
    double slo_ms;
    int32_t min_replicas, max_replicas;
    struct cps_target base; /* shallow copy of the config's defaults; strings borrowed */
    size_t n_traces;
    struct cps_tune_trace traces[CPS_TUNE_MAX_TRACES];
    size_t n_candidates;
    struct cps_tune_candidate *candidates;
    double hpa_targets[CPS_TUNE_HPA_TARGETS];
    double safe_rps_per_pod; /* λmax(1) of the world at the SLO */
    double budget_pct, train_fraction;
    uint64_t seed;
    int shard, shards, jobs;
    FILE *progress;
    char fingerprint[24];
};

/* World, base target, HPA targets and SLO-safe rate from the config (scale:
 * NAN to keep the config's); min/max replicas are set before the call. */
void cps_tune_setup_base(struct cps_tune_setup *s, const struct cps_config *config, double scale);

/* Draw s->n_candidates candidates and the shard fingerprint. 0, or -1 when
 * out of memory. */
int cps_tune_draw(struct cps_tune_setup *s);

/*
 * Evaluate this shard's candidates and HPA targets on every training part
 * (and the oracle on every part), pick the shard's best by the global order,
 * score those on the test parts, and return it all as the shard's JSON
 * object (the caller decrefs); *simulated gets the simulated seconds. NULL
 * with err on failure.
 */
json_t *cps_tune_run_shard(const struct cps_tune_setup *s, double *simulated, struct cps_err *err);

/* Free the traces' paths and runs and the candidates (not s itself). */
void cps_tune_setup_release(struct cps_tune_setup *s);

#endif
