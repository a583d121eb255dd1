#include "core/half.h"

#include <string.h>

static uint32_t float_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static float bits_float(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Shifts m right by shift (1..31) with round to nearest, ties to even. */
static uint32_t shift_round_even(uint32_t m, int shift)
{
    uint32_t result = m >> shift;
    uint32_t remainder = m & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (result & 1u)))
        result++;
    return result;
}

uint16_t od_float_to_half(float value)
{
    uint32_t x = float_bits(value);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) {
        /* NaN: keep the top mantissa bits, and force one on so that a
         * payload living only in the low bits does not become infinity. */
        uint16_t mantissa = (uint16_t)((x >> 13) & 0x3ffu);
        return (uint16_t)(sign | 0x7c00u | (mantissa ? mantissa : 0x200u));
    }
    if (x >= 0x477ff000u) /* 65520 and up, infinity included */
        return (uint16_t)(sign | 0x7c00u);
    if (x >= 0x38800000u) {
        /* Normal half: rebias the exponent from 127 to 15 (112 << 23) and
         * round away 13 mantissa bits. A carry into the exponent is the
         * correctly rounded next binade. */
        return (uint16_t)(sign | shift_round_even(x - (112u << 23), 13));
    }
    if (x < 0x33000000u) /* below 2^-25, or the tie 2^-25 itself: zero */
        return sign;
    /* Subnormal half: value = m * 2^(e - 150) = (m >> (126 - e)) * 2^-24.
     * Rounding up from 0x3ff gives 0x400, the smallest normal, as it must. */
    uint32_t exponent = x >> 23;
    uint32_t mantissa = (x & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_round_even(mantissa, (int)(126u - exponent)));
}

float od_half_to_float(uint16_t bits)
{
    uint32_t sign = (uint32_t)(bits & 0x8000u) << 16;
    uint32_t exponent = (bits >> 10) & 0x1fu;
    uint32_t mantissa = bits & 0x3ffu;
    if (exponent == 31)
        return bits_float(sign | 0x7f800000u | (mantissa << 13));
    if (exponent != 0)
        return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    /* Zero or subnormal: mantissa * 2^-24 is exact in float. */
    float magnitude = (float)mantissa * 0x1p-24f;
    return sign ? -magnitude : magnitude;
}

void od_floats_to_halves(const float *input, uint16_t *output, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        output[i] = od_float_to_half(input[i]);
}

void od_halves_to_floats(const uint16_t *input, float *output, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        output[i] = od_half_to_float(input[i]);
}
