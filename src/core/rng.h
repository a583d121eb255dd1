/* Seeded random numbers: xoshiro256** seeded through splitmix64.
 *
 * Every random choice in oddone draws from an od_rng that the caller owns,
 * so results are bit-identical for a seed. Parallel code gives each work
 * item its own stream with od_rng_fork, never a shared one. */
#ifndef ODDONE_CORE_RNG_H
#define ODDONE_CORE_RNG_H

#include <stdint.h>

typedef struct od_rng {
    uint64_t state[4];
} od_rng;

void od_rng_seed(od_rng *rng, uint64_t seed);

/* Returns an independent stream derived from rng's seed and `stream`,
 * without advancing rng. */
od_rng od_rng_fork(const od_rng *rng, uint64_t stream);

uint64_t od_rng_next_u64(od_rng *rng);

/* Returns a float uniform in [0, 1). */
float od_rng_uniform(od_rng *rng);

/* Returns an integer uniform in [0, bound) for bound > 0, without modulo bias. */
uint64_t od_rng_below(od_rng *rng, uint64_t bound);

/* Returns a standard normal sample (Box-Muller). */
float od_rng_normal(od_rng *rng);

void od_rng_fill_uniform(od_rng *rng, float *out, int64_t count, float low, float high);
void od_rng_fill_normal(od_rng *rng, float *out, int64_t count, float mean, float stddev);

#endif
