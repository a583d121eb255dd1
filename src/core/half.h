/* IEEE 754 binary16 ("half", numpy's float16) conversion.
 *
 * Halves are passed as uint16_t bit patterns, the form od_st_writer_add
 * takes for OD_DTYPE_F16 tensors. Float to half rounds to nearest, ties to
 * even, as numpy's astype(float16) does. Magnitudes from 65520 up become
 * infinity. Magnitudes below 2^-14 become subnormals, or zero at 2^-25 and
 * below (2^-25 is a tie that rounds to even, which is zero). NaN stays NaN
 * with its sign. Half to float is exact. */
#ifndef ODDONE_CORE_HALF_H
#define ODDONE_CORE_HALF_H

#include <stdint.h>

uint16_t od_float_to_half(float value);
float od_half_to_float(uint16_t bits);

/* Converts count values. The buffers must not overlap. */
void od_floats_to_halves(const float *input, uint16_t *output, int64_t count);
void od_halves_to_floats(const uint16_t *input, float *output, int64_t count);

#endif
