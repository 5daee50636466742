/*
 * tune's figures of one run (a policy on one part of one trace), the order
 * that chooses the winner and HPA's best target (a shard and the merge must
 * agree, so both use these), and the figures' JSON form in shard files.
 */
#ifndef CPS_SIM_TUNE_SCORE_H
#define CPS_SIM_TUNE_SCORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum cps_tune_part { CPS_TUNE_TRAIN = 0, CPS_TUNE_TEST = 1 };

struct cps_tune_figures {
    double cost_usd;
    double violation_pct;
    double violation_time_pct;
    double avg_pods;
    double requests;
    int64_t pod_starts;
    int64_t scale_actions;
    int64_t peak_pods;
    int64_t seconds;
};

/* How a candidate did on the training parts. */
struct cps_tune_score {
    int feasible;    /* every trace within the budget */
    double excess;   /* worst violation % above the budget */
    double relative; /* mean over traces of cost / oracle cost */
};

/* Score a candidate's training figures (one per trace) against each
 * trace's budget (cps_tune_trace_budgets). */
struct cps_tune_score cps_tune_score_of(const struct cps_tune_figures *train,
                                        const struct cps_tune_figures *oracle_train,
                                        size_t n_traces, const double *budgets);

/*
 * Each trace's violation budget: --budget, or, on a trace where no HPA
 * target gets that low on the training part, the fewest violations any HPA
 * target reaches there. One hopeless trace (bursts no autoscaler can catch)
 * would otherwise make every candidate infeasible, or push the winner to
 * buy margin everywhere for a trace where margin does not help. `hpa_train`
 * holds n_hpa targets x n_traces figures, target-major (hpa[j * T + t]).
 */
void cps_tune_trace_budgets(const struct cps_tune_figures *hpa_train, size_t n_hpa,
                            size_t n_traces, double budget, double *budgets);

/* Whether a (index ia) goes before b (index ib): a total order. */
int cps_tune_score_better(const struct cps_tune_score *a, size_t ia,
                          const struct cps_tune_score *b, size_t ib);

/* Whether HPA target a (index ia) beats b on one trace. */
int cps_tune_hpa_better(const struct cps_tune_figures *a, size_t ia,
                        const struct cps_tune_figures *b, size_t ib, double budget);

/* Figures as a new JSON object / array of n objects (the caller owns them). */
json_t *cps_tune_figures_json(const struct cps_tune_figures *f);
json_t *cps_tune_figures_array(const struct cps_tune_figures *f, size_t n);

/* A number / integer member of a JSON object: 0, or -1 when missing. */
int cps_tune_json_real(const json_t *o, const char *key, double *out);
int cps_tune_json_int(const json_t *o, const char *key, int64_t *out);

/* Figures back from their JSON object: 0, or -1 when malformed. */
int cps_tune_figures_from_json(const json_t *o, struct cps_tune_figures *f);

#endif
