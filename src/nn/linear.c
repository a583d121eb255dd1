/* Fully connected layer on od_sgemm (see linear.h). */
#include "nn/linear.h"

#include <string.h>

#include "core/gemm.h"

/* Below this many output values the bias loops stay on one thread. */
#define OD_LINEAR_PARALLEL_MIN 32768
/* Columns per task when summing d_out over rows for the bias gradient. */
#define OD_LINEAR_BIAS_CHUNK 64
/* Rows summed in float before joining the double total of a bias column. */
#define OD_LINEAR_BIAS_BLOCK_ROWS 64

void od_linear_forward(float *out, const float *in, const float *weight, const float *bias,
                       int64_t rows, int64_t in_features, int64_t out_features)
{
    /* in: (rows, in_features); weight: (out_features, in_features);
     * bias: (out_features) or NULL; out: (rows, out_features) */
    if (rows <= 0 || out_features <= 0)
        return;

    /* out starts as the bias broadcast over rows, and the product adds to it */
    float beta = 0.0f;
    if (bias != NULL) {
#pragma omp parallel for schedule(static) if (rows * out_features >= OD_LINEAR_PARALLEL_MIN)
        for (int64_t r = 0; r < rows; r++)
            memcpy(out + r * out_features, bias, (size_t)out_features * sizeof(float));
        beta = 1.0f;
    }
    if (in_features == 0) {
        if (bias == NULL)
            memset(out, 0, (size_t)(rows * out_features) * sizeof(float));
        return;
    }
    od_sgemm('N', 'T', rows, out_features, in_features, 1.0f, in, in_features, weight, in_features,
             beta, out, out_features);
}

void od_linear_backward(float *d_in, float *d_weight, float *d_bias, const float *d_out,
                        const float *in, const float *weight, int64_t rows, int64_t in_features,
                        int64_t out_features)
{
    /* d_in, in: (rows, in_features); d_weight, weight: (out_features,
     * in_features); d_bias: (out_features); d_out: (rows, out_features) */
    if (rows <= 0 || out_features <= 0)
        return;

    /* d_in += d_out (rows, out) x W (out, in) */
    if (d_in != NULL && in_features > 0)
        od_sgemm('N', 'N', rows, in_features, out_features, 1.0f, d_out, out_features, weight,
                 in_features, 1.0f, d_in, in_features);

    /* d_weight += d_out^T (out, rows) x in (rows, in) */
    if (d_weight != NULL && in_features > 0)
        od_sgemm('T', 'N', out_features, in_features, rows, 1.0f, d_out, out_features, in,
                 in_features, 1.0f, d_weight, in_features);

    /* d_bias += column sums of d_out; each chunk of columns sums its rows in
     * order, so the result does not depend on the thread count */
    if (d_bias == NULL)
        return;
    const int64_t chunks = (out_features + OD_LINEAR_BIAS_CHUNK - 1) / OD_LINEAR_BIAS_CHUNK;
#pragma omp parallel for schedule(static) if (rows * out_features >= OD_LINEAR_PARALLEL_MIN)
    for (int64_t k = 0; k < chunks; k++) {
        const int64_t c0 = k * OD_LINEAR_BIAS_CHUNK;
        const int64_t width =
            out_features - c0 < OD_LINEAR_BIAS_CHUNK ? out_features - c0 : OD_LINEAR_BIAS_CHUNK;
        double total[OD_LINEAR_BIAS_CHUNK] = {0};
        for (int64_t r0 = 0; r0 < rows; r0 += OD_LINEAR_BIAS_BLOCK_ROWS) {
            const int64_t r1 =
                rows - r0 < OD_LINEAR_BIAS_BLOCK_ROWS ? rows : r0 + OD_LINEAR_BIAS_BLOCK_ROWS;
            float block[OD_LINEAR_BIAS_CHUNK] = {0};
            for (int64_t r = r0; r < r1; r++) {
                const float *row = d_out + r * out_features + c0;
#pragma omp simd
                for (int64_t c = 0; c < width; c++)
                    block[c] += row[c];
            }
            for (int64_t c = 0; c < width; c++)
                total[c] += (double)block[c];
        }
        for (int64_t c = 0; c < width; c++)
            d_bias[c0 + c] += (float)total[c];
    }
}
