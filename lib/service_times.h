/*
 * Service-time distributions of the simulator's world variants
 * (docs/model.md §10): exponential (the default world's M/M/1 per pod),
 * deterministic (M/D/1) and lognormal with a coefficient of variation
 * (M/G/1), with the p95 response time of one pod as a function of its
 * load. Pure; the numerical method is fixed so every run gives the same
 * figures.
 *
 * The M/G/1 response time is approximated as T = W + S with S the service
 * time, P(W > 0) = ρ and W | W > 0 exponential with mean
 * m = (1 + cv²) / (2 μ (1 − ρ)) (the Pollaczek-Khinchine mean wait divided
 * by ρ; exact for M/M/1). Then
 *
 *     P(T > t) = P(S > t) + ρ ∫₀ᵗ f_S(s) e^(−(t − s)/m) ds.
 *
 * μ (1 − ρ) t₉₅ depends on ρ and cv only: that product, G(ρ), is what a
 * table holds (μ = 1 when it is built).
 */
#ifndef CPS_SERVICE_TIMES_H
#define CPS_SERVICE_TIMES_H

enum cps_service_kind {
    CPS_SERVICE_EXPONENTIAL = 0,
    CPS_SERVICE_DETERMINISTIC,
    CPS_SERVICE_LOGNORMAL,
};

struct cps_service_times {
    enum cps_service_kind kind;
    double cv; /* lognormal: coefficient of variation, > 0 */
};

/* Room for "lognormal:CV" as cps_service_times_format writes it. */
#define CPS_SERVICE_TEXT_MAX 48
/* Largest lognormal cv accepted (σ² = ln(1 + cv²) stays moderate). */
#define CPS_SERVICE_CV_MAX 10.0
/* Smallest lognormal cv accepted: below ~1e-8, ln(1 + cv²) is exactly 0 in
 * doubles and the model would lose its queueing altogether; a service that
 * steady is `deterministic`. */
#define CPS_SERVICE_CV_MIN 0.01
/* Intervals of the G(ρ) grid over ρ in [0, 1] (N + 1 points). */
#define CPS_SERVICE_GRID 256

/* Parse "exponential", "deterministic" or "lognormal:CV" (0.01 <= CV <= 10).
 * 0, or -1 when the text is none of them. */
int cps_service_times_parse(const char *text, struct cps_service_times *out);

/* 1 when cps_service_times_parse accepts text (the config schema's check). */
int cps_service_times_valid(const char *text);

/* Write "exponential", "deterministic" or "lognormal:CV" (%g) into buf. */
void cps_service_times_format(const struct cps_service_times *st, char *buf, unsigned long size);

/* P(T > t) of the approximation above, μ = 1 (t in mean service times). */
double cps_service_tail(const struct cps_service_times *st, double rho, double t);

/* t₉₅ with μ = 1 by bisection on cps_service_tail (deterministic: closed
 * form). rho in [0, 1). */
double cps_service_p95_unit(const struct cps_service_times *st, double rho);

/* G(ρ) = (1 − ρ) t₉₅(ρ) at μ = 1 over the grid ρᵢ = i/N, and its use. */
struct cps_service_table {
    struct cps_service_times st;
    double g[CPS_SERVICE_GRID + 1];
};

/* Fill the table (exponential: G = ln 20 everywhere). */
void cps_service_table_init(struct cps_service_table *table, const struct cps_service_times *st);

/* G(ρ): exact for exponential and deterministic, linear interpolation on
 * the grid for lognormal. rho in [0, 1]. */
double cps_service_g(const struct cps_service_table *table, double rho);

/* Largest per-pod rate with base + 1000 G(ρ) / (μ (1 − ρ)) <= slo, for pod
 * rate mu; 0 when even an idle pod misses it. */
double cps_service_lambda_max_per_pod(const struct cps_service_table *table, double mu,
                                      double base_ms, double slo_ms);

#endif
