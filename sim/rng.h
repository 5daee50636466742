/*
 * splitmix64: the one small deterministic generator of the simulator's
 * tools (gen-trace's noise and bursts, tune's candidate draws). A state is
 * a uint64_t the caller seeds and owns; the same seed gives the same stream
 * on every platform.
 */
#ifndef CPS_SIM_RNG_H
#define CPS_SIM_RNG_H

#include <stdint.h>

/* 2^53: doubles from the top 53 bits of a 64-bit draw. */
#define CPS_RNG_TWO_POW_53 9007199254740992.0

/* The next 64 random bits. */
uint64_t cps_rng_next(uint64_t *state);

/* Uniform in [0, 1), from the top 53 bits. */
double cps_rng_uniform(uint64_t *state);

/* Uniform in (0, 1): the same bits, centred in their interval (never 0, so
 * its logarithm is finite). */
double cps_rng_uniform_open(uint64_t *state);

#endif
