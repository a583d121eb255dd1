#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void od_rng_seed(od_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->state[i] = splitmix64(&seed);
}

od_rng od_rng_fork(const od_rng *rng, uint64_t stream)
{
    uint64_t mix = rng->state[0] ^ (rng->state[1] << 1) ^ (stream * 0xd1342543de82ef95ull);
    od_rng child;
    od_rng_seed(&child, mix);
    return child;
}

static uint64_t rotate_left(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t od_rng_next_u64(od_rng *rng)
{
    uint64_t *s = rng->state;
    uint64_t result = rotate_left(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotate_left(s[3], 45);
    return result;
}

float od_rng_uniform(od_rng *rng)
{
    /* The top 24 bits fill a float's mantissa exactly. */
    return (float)(od_rng_next_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

uint64_t od_rng_below(od_rng *rng, uint64_t bound)
{
    uint64_t threshold = -bound % bound;
    for (;;) {
        uint64_t x = od_rng_next_u64(rng);
        if (x >= threshold)
            return x % bound;
    }
}

float od_rng_normal(od_rng *rng)
{
    /* 1 - u lies in (0, 1], so the logarithm is finite. */
    double u1 = 1.0 - (double)(od_rng_next_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
    double u2 = (double)(od_rng_next_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2));
}

void od_rng_fill_uniform(od_rng *rng, float *out, int64_t count, float low, float high)
{
    for (int64_t i = 0; i < count; i++)
        out[i] = low + (high - low) * od_rng_uniform(rng);
}

void od_rng_fill_normal(od_rng *rng, float *out, int64_t count, float mean, float stddev)
{
    for (int64_t i = 0; i < count; i++)
        out[i] = mean + stddev * od_rng_normal(rng);
}
