/* Elementwise activations and GEGLU, forward and backward (see activation.h).
 *
 * The loops are flat over `count` floats, split over OpenMP threads with a
 * static schedule and vectorised with `omp simd`; GELU's erf goes through
 * the vectorisable helpers below instead of libm's scalar erff. */
#include "nn/activation.h"

#include <math.h>

/* Below this many elements a loop stays on one thread: starting the team
 * costs more than the work. */
#define OD_ACTIVATION_PARALLEL_MIN 32768

/* For the same reason GEGLU parallelises over rows only above this many
 * outputs. */
#define OD_GEGLU_PARALLEL_MIN 16384

#define OD_SQRT1_2 0.70710678118654752f      /* 1 / sqrt(2) */
#define OD_INV_SQRT_2PI 0.39894228040143268f /* 1 / sqrt(2 pi) */
#define OD_SQRT_2_OVER_PI 0.79788456080286536f
#define OD_GELU_TANH_CUBIC 0.044715f
#define OD_ERFC_Z_MAX 9.0f

/* erfc(z) / 2 for z >= 0, as t * exp(poly(t) - z^2) with t = 1 / (1 + z / 2):
 * the Chebyshev fit "erfcc" of Press et al., Numerical Recipes in C (2nd
 * ed., section 6.2), whose relative error is below 1.2e-7 for every z >= 0.
 * The factor 1/2 is folded into the constant term as ln(1/2). Being
 * relative, the error keeps the GELU of large negative inputs accurate. */
static inline float half_erfc_nonnegative(float z)
{
    /* erfc(9) = 4e-37; clamping there keeps the exponent inside the range of
     * od_exp_vec_in_range, and larger z change the GELU by under 1e-35. */
    z = z < OD_ERFC_Z_MAX ? z : OD_ERFC_Z_MAX;
    const float t = 1.0f / fmaf(0.5f, z, 1.0f);
    float p = 0.17087277f;
    p = fmaf(p, t, -0.82215223f);
    p = fmaf(p, t, 1.48851587f);
    p = fmaf(p, t, -1.13520398f);
    p = fmaf(p, t, 0.27886807f);
    p = fmaf(p, t, -0.18628806f);
    p = fmaf(p, t, 0.09678418f);
    p = fmaf(p, t, 0.37409196f);
    p = fmaf(p, t, 1.00002368f);
    p = fmaf(p, t, -1.26551223f - 0.69314718f); /* the fit's constant plus ln(1/2) */
    return t * od_exp_vec_in_range(fmaf(-z, z, p));
}

/* Phi(-|x|), the smaller tail of the standard normal distribution. */
static inline float normal_tail(float x)
{
    return half_erfc_nonnegative(fabsf(x) * OD_SQRT1_2);
}

/* Phi(x), the standard normal CDF, from the tail so that x < 0 keeps its
 * relative accuracy. */
static inline float normal_cdf(float x)
{
    const float tail = normal_tail(x);
    return x >= 0.0f ? 1.0f - tail : tail;
}

static inline float normal_pdf(float x)
{
    return OD_INV_SQRT_2PI * od_exp_vec_upto_88(-0.5f * x * x);
}

/* x Phi(x) written as max(x, 0) - |x| Phi(-|x|), which needs no select
 * between the two signs. */
static inline float gelu(float x)
{
    const float positive = x > 0.0f ? x : 0.0f;
    return fmaf(-fabsf(x), normal_tail(x), positive);
}

/* d gelu / dx = Phi(x) + x phi(x). */
static inline float gelu_derivative(float x)
{
    return normal_cdf(x) + x * normal_pdf(x);
}

/* ---- ReLU ---------------------------------------------------------------- */

void od_relu_forward(float *out, const float *in, int64_t count)
{
    /* in and out are (count); the comparison keeps NaN as NaN, as PyTorch does. */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++)
        out[i] = in[i] < 0.0f ? 0.0f : in[i];
}

void od_relu_backward(float *d_in, const float *d_out, const float *out, int64_t count)
{
    /* d_in, d_out and out (the forward's output) are (count). */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++)
        d_in[i] += out[i] > 0.0f ? d_out[i] : 0.0f;
}

/* ---- ReLU6 --------------------------------------------------------------- */

void od_relu6_forward(float *out, const float *in, int64_t count)
{
    /* in and out are (count). */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++) {
        float x = in[i] < 0.0f ? 0.0f : in[i];
        out[i] = x > 6.0f ? 6.0f : x;
    }
}

void od_relu6_backward(float *d_in, const float *d_out, const float *out, int64_t count)
{
    /* d_in, d_out and out (the forward's output) are (count). */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++)
        d_in[i] += (out[i] > 0.0f && out[i] < 6.0f) ? d_out[i] : 0.0f;
}

/* ---- LeakyReLU ----------------------------------------------------------- */

void od_leaky_relu_forward(float *out, const float *in, int64_t count, float negative_slope)
{
    /* in and out are (count). */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++)
        out[i] = in[i] > 0.0f ? in[i] : in[i] * negative_slope;
}

void od_leaky_relu_backward(float *d_in, const float *d_out, const float *in, int64_t count,
                            float negative_slope)
{
    /* d_in, d_out and in (the forward's input) are (count). */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++)
        d_in[i] += in[i] > 0.0f ? d_out[i] : d_out[i] * negative_slope;
}

/* ---- GELU, exact --------------------------------------------------------- */

void od_gelu_forward(float *out, const float *in, int64_t count)
{
    /* in and out are (count). */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++)
        out[i] = gelu(in[i]);
}

void od_gelu_backward(float *d_in, const float *d_out, const float *in, int64_t count)
{
    /* d_in, d_out and in (the forward's input) are (count). */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++)
        d_in[i] += d_out[i] * gelu_derivative(in[i]);
}

/* ---- GELU, tanh form ----------------------------------------------------- */

/* 0.5 * (1 + tanh(u)) equals sigmoid(2u); the sigmoid form has no
 * cancellation for large negative u. */
static inline float gelu_tanh_gate(float x)
{
    float u = OD_SQRT_2_OVER_PI * (x + OD_GELU_TANH_CUBIC * x * x * x);
    return 1.0f / (1.0f + od_exp_vec(-2.0f * u));
}

void od_gelu_tanh_forward(float *out, const float *in, int64_t count)
{
    /* in and out are (count). */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++)
        out[i] = in[i] * gelu_tanh_gate(in[i]);
}

void od_gelu_tanh_backward(float *d_in, const float *d_out, const float *in, int64_t count)
{
    /* d_in, d_out and in (the forward's input) are (count).
     * With s = sigmoid(2u): d(x s)/dx = s + x * 2 s (1 - s) du/dx. */
#pragma omp parallel for simd schedule(static) if (count >= OD_ACTIVATION_PARALLEL_MIN)
    for (int64_t i = 0; i < count; i++) {
        float x = in[i];
        float s = gelu_tanh_gate(x);
        float du_dx = OD_SQRT_2_OVER_PI * (1.0f + 3.0f * OD_GELU_TANH_CUBIC * x * x);
        d_in[i] += d_out[i] * (s + 2.0f * x * s * (1.0f - s) * du_dx);
    }
}

/* ---- GEGLU --------------------------------------------------------------- */

void od_geglu_forward(float *out, const float *in, int64_t rows, int64_t channels)
{
    /* in is (rows, 2 * channels): value a = in[:, :channels], gate b = in[:, channels:].
     * out is (rows, channels) = a * gelu(b). */
#pragma omp parallel for schedule(static) if (rows * channels >= OD_GEGLU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *value = in + r * 2 * channels;
        const float *gate = value + channels;
        float *out_row = out + r * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; c++)
            out_row[c] = value[c] * gelu(gate[c]);
    }
}

void od_geglu_backward(float *d_in, const float *d_out, const float *in, int64_t rows,
                       int64_t channels)
{
    /* d_in and in are (rows, 2 * channels), d_out is (rows, channels).
     * d a += d_out * gelu(b); d b += d_out * a * gelu'(b). */
#pragma omp parallel for schedule(static) if (rows * channels >= OD_GEGLU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *value = in + r * 2 * channels;
        const float *gate = value + channels;
        const float *d_out_row = d_out + r * channels;
        float *d_value = d_in + r * 2 * channels;
        float *d_gate = d_value + channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; c++) {
            float b = gate[c];
            float cdf = normal_cdf(b);
            d_value[c] += d_out_row[c] * b * cdf;
            d_gate[c] += d_out_row[c] * value[c] * (cdf + b * normal_pdf(b));
        }
    }
}
