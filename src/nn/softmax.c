/* Softmax over the last dimension (see softmax.h). Rows are independent, so
 * they are split over threads. Within a row the reductions run in a fixed
 * order, which keeps results identical across thread counts. */
#include "nn/softmax.h"

#include <math.h>

#include "nn/activation.h" /* od_exp_vec */

/* Below this many values a loop stays on one thread. */
#define OD_SOFTMAX_PARALLEL_MIN 16384
/* Floats per block of the exp pass: one AVX-512 vector. */
#define OD_SOFTMAX_BLOCK 16

/* Returns the sum of 16 lanes, pairwise: a short dependency chain, in a
 * fixed order. Overwrites the lanes. */
static inline float sum_lanes(float lanes[OD_SOFTMAX_BLOCK])
{
    for (int width = OD_SOFTMAX_BLOCK / 2; width >= 1; width /= 2)
        for (int k = 0; k < width; k++)
            lanes[k] += lanes[k + width];
    return lanes[0];
}

void od_softmax_forward(float *out, const float *in, int64_t rows, int64_t channels)
{
    /* in, out: (rows, channels) */
#pragma omp parallel for schedule(static) if (rows * channels >= OD_SOFTMAX_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * channels;
        float *y = out + r * channels;

        /* Every pass walks whole 16-float blocks and one padded partial
         * block: a plain vectorised loop would end each row with scalar
         * iterations on the leftover channels, which for rows of about a
         * hundred channels cost as much as the vector part. */
        const int64_t full = channels - channels % OD_SOFTMAX_BLOCK;
        const int64_t rest = channels - full;

        /* pass 1: row maximum */
        float lane_max[OD_SOFTMAX_BLOCK];
        for (int k = 0; k < OD_SOFTMAX_BLOCK; k++)
            lane_max[k] = -INFINITY;
        for (int64_t c0 = 0; c0 < full; c0 += OD_SOFTMAX_BLOCK)
#pragma omp simd
            for (int k = 0; k < OD_SOFTMAX_BLOCK; k++)
                lane_max[k] = x[c0 + k] > lane_max[k] ? x[c0 + k] : lane_max[k];
#pragma omp simd
        for (int k = 0; k < OD_SOFTMAX_BLOCK; k++)
            if (k < rest && x[full + k] > lane_max[k])
                lane_max[k] = x[full + k];
        for (int width = OD_SOFTMAX_BLOCK / 2; width >= 1; width /= 2)
            for (int k = 0; k < width; k++)
                lane_max[k] = lane_max[k + width] > lane_max[k] ? lane_max[k + width] : lane_max[k];
        const float max = lane_max[0];

        /* pass 2: exponentials and their sum; padding lanes get exp(-inf) = 0 */
        float lane_sum[OD_SOFTMAX_BLOCK] = {0};
        for (int64_t c0 = 0; c0 < full; c0 += OD_SOFTMAX_BLOCK)
#pragma omp simd
            for (int k = 0; k < OD_SOFTMAX_BLOCK; k++) {
                const float e = od_exp_vec(x[c0 + k] - max);
                y[c0 + k] = e;
                lane_sum[k] += e;
            }
        if (rest > 0) {
            float tail[OD_SOFTMAX_BLOCK];
#pragma omp simd
            for (int k = 0; k < OD_SOFTMAX_BLOCK; k++) {
                tail[k] = od_exp_vec(k < rest ? x[full + k] - max : -INFINITY);
                lane_sum[k] += tail[k];
            }
            for (int64_t k = 0; k < rest; k++)
                y[full + k] = tail[k];
        }
        const float sum = sum_lanes(lane_sum);

        /* pass 3: normalise */
        const float inv_sum = 1.0f / sum;
        for (int64_t c0 = 0; c0 < full; c0 += OD_SOFTMAX_BLOCK)
#pragma omp simd
            for (int k = 0; k < OD_SOFTMAX_BLOCK; k++)
                y[c0 + k] *= inv_sum;
#pragma omp simd
        for (int k = 0; k < OD_SOFTMAX_BLOCK; k++)
            if (k < rest)
                y[full + k] *= inv_sum;
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

        /* dot = sum(dy * y), in 16-float blocks like the forward's passes */
        const int64_t full = channels - channels % OD_SOFTMAX_BLOCK;
        const int64_t rest = channels - full;
        float lane_dot[OD_SOFTMAX_BLOCK] = {0};
        for (int64_t c0 = 0; c0 < full; c0 += OD_SOFTMAX_BLOCK)
#pragma omp simd
            for (int k = 0; k < OD_SOFTMAX_BLOCK; k++)
                lane_dot[k] += dy[c0 + k] * y[c0 + k];
#pragma omp simd
        for (int k = 0; k < OD_SOFTMAX_BLOCK; k++)
            if (k < rest)
                lane_dot[k] += dy[full + k] * y[full + k];
        const float dot = sum_lanes(lane_dot);

#pragma omp simd
        for (int64_t c = 0; c < channels; c++)
            dx[c] += y[c] * (dy[c] - dot);
    }
}
