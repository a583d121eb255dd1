/* Softmax over the last dimension (see softmax.h). Rows are independent, so
 * they are split over threads; within a row the reductions are vectorised
 * in a fixed order, which keeps results identical across thread counts. */
#include "nn/softmax.h"

#include <math.h>

#include "nn/activation.h" /* od_exp_vec */

/* Below this many values a loop stays on one thread. */
#define OD_SOFTMAX_PARALLEL_MIN 16384

void od_softmax_forward(float *out, const float *in, int64_t rows, int64_t channels)
{
    /* in, out: (rows, channels) */
#pragma omp parallel for schedule(static) if (rows * channels >= OD_SOFTMAX_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * channels;
        float *y = out + r * channels;

        float max = -INFINITY;
#pragma omp simd reduction(max : max)
        for (int64_t c = 0; c < channels; c++)
            max = x[c] > max ? x[c] : max;

        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < channels; c++) {
            const float e = od_exp_vec(x[c] - max);
            y[c] = e;
            sum += e;
        }

        const float inv_sum = 1.0f / sum;
#pragma omp simd
        for (int64_t c = 0; c < channels; c++)
            y[c] *= inv_sum;
    }
}

void od_softmax_backward(float *d_in, const float *d_out, const float *out, int64_t rows,
                         int64_t channels)
{
    /* d_in, d_out, out: (rows, channels) */
#pragma omp parallel for schedule(static) if (rows * channels >= OD_SOFTMAX_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *y = out + r * channels;
        const float *dy = d_out + r * channels;
        float *dx = d_in + r * channels;

        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < channels; c++)
            dot += dy[c] * y[c];

#pragma omp simd
        for (int64_t c = 0; c < channels; c++)
            dx[c] += y[c] * (dy[c] - dot);
    }
}
