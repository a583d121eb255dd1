/* Elementwise activations and GEGLU, forward and backward.
 *
 * Every function works on a flat buffer of `count` floats, so the layout of
 * the tensor (channels-last volume, token sequence) does not matter, except
 * GEGLU, which splits the channel dimension of (rows, 2 * C) into halves.
 *
 * In-place: each forward may be called with out == in. The backward of
 * ReLU and ReLU6 reads the forward's output, so they still work after an
 * in-place forward; LeakyReLU, GELU and GEGLU read the forward's input.
 * d_in may not alias d_out, because the backward accumulates into d_in
 * (d_in += local gradient * d_out), as every backward in oddone does. */
#ifndef ODDONE_NN_ACTIVATION_H
#define ODDONE_NN_ACTIVATION_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ReLU: out = max(in, 0). */
void od_relu_forward(float *out, const float *in, int64_t count);
/* d_in += d_out where out > 0. */
void od_relu_backward(float *d_in, const float *d_out, const float *out, int64_t count);

/* ReLU6: out = min(max(in, 0), 6). */
void od_relu6_forward(float *out, const float *in, int64_t count);
/* d_in += d_out where 0 < out < 6, which is where 0 < in < 6 (PyTorch's
 * hardtanh gradient, zero at both kinks). */
void od_relu6_backward(float *d_in, const float *d_out, const float *out, int64_t count);

/* LeakyReLU: out = in > 0 ? in : negative_slope * in. */
void od_leaky_relu_forward(float *out, const float *in, int64_t count, float negative_slope);
/* d_in += (in > 0 ? 1 : negative_slope) * d_out. */
void od_leaky_relu_backward(float *d_in, const float *d_out, const float *in, int64_t count,
                            float negative_slope);

/* GELU, exact form: out = in * Phi(in) with Phi the standard normal CDF,
 * 0.5 * (1 + erf(in / sqrt(2))). This is PyTorch's default (approximate="none"). */
void od_gelu_forward(float *out, const float *in, int64_t count);
void od_gelu_backward(float *d_in, const float *d_out, const float *in, int64_t count);

/* GELU, tanh form (PyTorch's approximate="tanh"):
 * out = 0.5 * in * (1 + tanh(sqrt(2 / pi) * (in + 0.044715 * in^3))). */
void od_gelu_tanh_forward(float *out, const float *in, int64_t count);
void od_gelu_tanh_backward(float *d_in, const float *d_out, const float *in, int64_t count);

/* GEGLU: in is (rows, 2 * channels), out is (rows, channels).
 * The first half of each row is the value a, the second half the gate b:
 * out = a * gelu(b), with the exact GELU. In PyTorch terms:
 *     a, b = x.chunk(2, dim=-1); out = a * F.gelu(b)
 * out may not alias in (the rows have different lengths). */
void od_geglu_forward(float *out, const float *in, int64_t rows, int64_t channels);
/* d_in is (rows, 2 * channels), d_out is (rows, channels), in is the
 * forward's input (rows, 2 * channels). */
void od_geglu_backward(float *d_in, const float *d_out, const float *in, int64_t rows,
                       int64_t channels);

/* exp(x) in float for x in [-87.33, 88.3], written so that GCC vectorises
 * loops that call it (libm's expf is a scalar call). The range reduction
 * x = n ln2 + r and the degree-6 polynomial for exp(r) on |r| <= ln2 / 2
 * use the coefficients of Cephes' expf (S. Moshier); the error is within
 * 2 ulp. Outside that range the result is wrong (the exponent field wraps),
 * so callers that cannot bound x use od_exp_vec. fmaf keeps the polynomial
 * on fused multiply-adds, which -std=c11 would otherwise not contract. */
static inline float od_exp_vec_in_range(float x)
{
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f;        /* ln 2 with few mantissa bits, so n * ln2_hi is exact */
    const float ln2_lo = 1.428606765330187045e-06f; /* ln 2 - ln2_hi */
    const float round_shift = 12582912.0f;          /* 1.5 * 2^23: adding it rounds to an integer */

    const float shifted = fmaf(x, log2e, round_shift);
    const float n = shifted - round_shift;
    float r = fmaf(n, -ln2_hi, x);
    r = fmaf(n, -ln2_lo, r);

    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p * r, r, r) + 1.0f;

    /* The low mantissa bits of `shifted` hold n; move n + 127 into the exponent field. */
    uint32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* exp(x) in float for any x: inputs below -87.33 (where exp underflows to
 * subnormals) return 0, inputs above 88.3 return exp(88.3) instead of
 * infinity, and NaN stays NaN. Used by GELU, GEGLU and softmax. */
static inline float od_exp_vec(float x)
{
    float clamped = x < -87.33f ? -87.33f : x;
    clamped = clamped > 88.3f ? 88.3f : clamped; /* keeps n <= 127 */
    return x < -87.33f ? 0.0f : od_exp_vec_in_range(clamped);
}

#endif
