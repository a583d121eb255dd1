/* Softmax over the last dimension (see softmax.h). Rows are independent, so
 * they are split over threads. Within a row the reductions run in a fixed
 * order, which keeps results identical across thread counts. */
#include "nn/softmax.h"

#include "nn/activation.h" /* od_exp_vec_upto_88, od_row_max, od_row_sum, od_row_dot */

/* Below this many values a loop stays on one thread. */
#define OD_SOFTMAX_PARALLEL_MIN 16384
/* Floats per block of the exp pass: one AVX-512 vector. */
#define OD_SOFTMAX_BLOCK 16

void od_softmax_forward(float *out, const float *in, int64_t rows, int64_t channels)
{
    /* in, out: (rows, channels) */
#pragma omp parallel for schedule(static) if (rows * channels >= OD_SOFTMAX_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * channels;
        float *y = out + r * channels;

        /* The exp pass runs over whole 16-float blocks plus one padded
         * partial block, because a plain vectorised loop would end each row
         * with scalar exp calls on the leftover channels. For rows of about
         * a hundred channels those cost as much as the vector part. */
        const int64_t full = channels - channels % OD_SOFTMAX_BLOCK;
        const int64_t rest = channels - full;

        /* pass 1: row maximum */
        const float max = od_row_max(x, channels);

        /* pass 2: exponentials and their sum */
#pragma omp simd
        for (int64_t c = 0; c < full; c++)
            y[c] = od_exp_vec_upto_88(x[c] - max);
        if (rest > 0) {
            float tail[OD_SOFTMAX_BLOCK];
#pragma omp simd
            for (int k = 0; k < OD_SOFTMAX_BLOCK; k++)
                tail[k] = od_exp_vec_upto_88(k < rest ? x[full + k] - max : 0.0f);
            for (int64_t k = 0; k < rest; k++)
                y[full + k] = tail[k];
        }
        const float sum = od_row_sum(y, channels);

        /* pass 3: normalise */
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

        const float dot = od_row_dot(dy, y, channels);

#pragma omp simd
        for (int64_t c = 0; c < channels; c++)
            dx[c] += y[c] * (dy[c] - dot);
    }
}
