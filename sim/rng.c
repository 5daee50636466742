#include "rng.h"

/* splitmix64 (Steele, Lea, Flood 2014): one add and two xor-multiplies. */
uint64_t cps_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double cps_rng_uniform(uint64_t *state)
{
    return (double)(cps_rng_next(state) >> 11) / CPS_RNG_TWO_POW_53;
}

double cps_rng_uniform_open(uint64_t *state)
{
    return ((double)(cps_rng_next(state) >> 11) + 0.5) / CPS_RNG_TWO_POW_53;
}
