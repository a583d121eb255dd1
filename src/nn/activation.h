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
 * (d_in += local gradient * d_out), as every backward in oddone does.
 *
 * The end of the file has inline helpers that GELU, softmax and layer norm
 * share: an exp that GCC vectorises, and sums and maxima over a row. */
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

/* exp(x) in float for x in [-88, 88.37], written so that GCC vectorises
 * loops that call it (libm's expf is a scalar call). The range reduction
 * x = n ln2 + r and the degree-6 polynomial for exp(r) on |r| <= ln2 / 2
 * use the coefficients of Cephes' expf (S. Moshier). The error is within
 * 2 ulp down to -87.33; below that, results under about 1.2e-38 may flush
 * to 0. Outside the range the exponent field wraps and the result is
 * wrong, so callers that cannot bound x use od_exp_vec. fmaf keeps the
 * polynomial on fused multiply-adds, which -std=c11 would not contract. */
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

/* exp(x) in float for any x. Inputs below -88 return 0: the clamp there
 * makes the exponent field 0, so results under about 1.2e-38 flush to 0
 * instead of becoming subnormals. Inputs above 88.37 return exp(88.37),
 * about 2.6e38, instead of up to FLT_MAX or infinity. NaN stays NaN. */
static inline float od_exp_vec(float x)
{
    float clamped = x < -88.0f ? -88.0f : x;
    clamped = clamped > 88.37f ? 88.37f : clamped; /* keeps n <= 127 */
    return od_exp_vec_in_range(clamped);
}

/* exp(x) for x <= 88.37, such as shifted logits or Gaussian exponents,
 * with od_exp_vec's handling of large negative inputs. Skipping the upper
 * clamp saves a compare and a blend per vector in softmax's inner loop. */
static inline float od_exp_vec_upto_88(float x)
{
    return od_exp_vec_in_range(x < -88.0f ? -88.0f : x);
}

/* ---- row reductions ------------------------------------------------------
 * Sums and maxima of contiguous floats in the 16 lanes of a GCC vector,
 * with the lanes combined pairwise at the end and the last n % 16 floats
 * in a scalar tail. `omp simd reduction` would also vectorise them, but
 * GCC 12 finishes such a reduction by adding the lanes one at a time
 * through the stack, which costs as much as the loop itself for rows of a
 * few hundred floats. The order of the additions is fixed, so results are
 * reproducible. */

typedef float od_vec16 __attribute__((vector_size(64)));
typedef int32_t od_vec16_int __attribute__((vector_size(64)));

#define OD_VEC16_LANES 16

static inline od_vec16 od_vec16_load(const float *p)
{
    od_vec16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline od_vec16 od_vec16_max(od_vec16 a, od_vec16 b)
{
    const od_vec16_int a_greater = a > b;
    return (od_vec16)(((od_vec16_int)a & a_greater) | ((od_vec16_int)b & ~a_greater));
}

/* Adds lanes 8-15 to lanes 0-7, then 4-7 to 0-3, and so on. */
static inline float od_vec16_sum_lanes(od_vec16 v)
{
    v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    v += __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return v[0];
}

static inline float od_vec16_max_lanes(od_vec16 v)
{
    v = od_vec16_max(
        v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    v = od_vec16_max(
        v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
    v = od_vec16_max(
        v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
    v = od_vec16_max(
        v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
    return v[0];
}

/* Returns the sum of x[0], ..., x[n - 1]. */
static inline float od_row_sum(const float *x, int64_t n)
{
    od_vec16 acc = {0};
    int64_t c = 0;
    for (; c + OD_VEC16_LANES <= n; c += OD_VEC16_LANES)
        acc += od_vec16_load(x + c);
    float tail = 0.0f;
    for (; c < n; c++)
        tail += x[c];
    return od_vec16_sum_lanes(acc) + tail;
}

/* Returns the sum of a[i] * b[i] for i < n. */
static inline float od_row_dot(const float *a, const float *b, int64_t n)
{
    od_vec16 acc = {0};
    int64_t c = 0;
    for (; c + OD_VEC16_LANES <= n; c += OD_VEC16_LANES)
        acc += od_vec16_load(a + c) * od_vec16_load(b + c);
    float tail = 0.0f;
    for (; c < n; c++)
        tail += a[c] * b[c];
    return od_vec16_sum_lanes(acc) + tail;
}

/* Returns the sum of (x[i] - center)^2 for i < n. */
static inline float od_row_sum_squared_deviation(const float *x, int64_t n, float center)
{
    od_vec16 acc = {0};
    int64_t c = 0;
    for (; c + OD_VEC16_LANES <= n; c += OD_VEC16_LANES) {
        const od_vec16 d = od_vec16_load(x + c) - center;
        acc += d * d;
    }
    float tail = 0.0f;
    for (; c < n; c++)
        tail += (x[c] - center) * (x[c] - center);
    return od_vec16_sum_lanes(acc) + tail;
}

/* Returns the maximum of x[0], ..., x[n - 1], or -inf when n is 0. NaN
 * elements are skipped, so a row of NaN alone also gives -inf. */
static inline float od_row_max(const float *x, int64_t n)
{
    od_vec16 acc = (od_vec16){0} - INFINITY;
    int64_t c = 0;
    for (; c + OD_VEC16_LANES <= n; c += OD_VEC16_LANES)
        acc = od_vec16_max(od_vec16_load(x + c), acc);
    float max = od_vec16_max_lanes(acc);
    for (; c < n; c++)
        max = x[c] > max ? x[c] : max;
    return max;
}

#endif
