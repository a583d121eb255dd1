/* Transposed convolution with kernel == stride, no padding, dilation 1 and
 * one group, as a matrix product and a scatter.
 *
 * Each input voxel then writes its own kD x kH x kW block of the output
 * and no two blocks overlap, so with K = kD * kH * kW taps
 *     product (M, K * Cout) = in (M, Cin) x weight matrix (Cin, K * Cout)
 * over the M = N * D * H * W input voxels, and output voxel
 * (n, i * kD + a, j * kH + b, l * kW + c) is row (n, i, j, l) of the
 * product at tap (a, b, c), plus the bias. The backward gathers d_out into
 * the same (M, K * Cout) shape and runs two more matrix products. Only
 * channels-last layouts take this path. */
#include <string.h>

#include "core/gemm.h"
#include "core/mem.h"
#include "nn/conv_engine.h"

/* Sizes with 2D padded to 3D (depth 1, kernel depth 1). */
typedef struct gemm_dims {
    int64_t batch, in_channels, out_channels, taps;
    int64_t in[3], out[3], kernel[3];
} gemm_dims;

static gemm_dims dims_of(const od_conv_layer *layer)
{
    const od_conv_shape *shape = &layer->shape;
    gemm_dims d = {shape->batch, shape->in_channels, shape->out_channels, 1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
    int offset = 3 - shape->spatial;
    for (int i = 0; i < shape->spatial; i++) {
        d.in[offset + i] = shape->in_size[i];
        d.out[offset + i] = layer->out_size[i];
        d.kernel[offset + i] = shape->kernel[i];
        d.taps *= shape->kernel[i];
    }
    return d;
}

int od_conv_gemm_prepare(od_conv_layer *layer, od_error *err)
{
    gemm_dims d = dims_of(layer);
    int64_t matrix = d.in_channels * d.taps * d.out_channels;
    layer->gemm_weight = od_alloc_floats(matrix);
    layer->gemm_diff_weight = od_alloc_floats(matrix);
    layer->gemm_product = od_alloc_floats(layer->out_count);
    layer->bias_partials = od_alloc_floats(OD_CONV_SUM_CHUNKS * d.out_channels);
    if (layer->gemm_weight == NULL || layer->gemm_diff_weight == NULL || layer->gemm_product == NULL ||
        layer->bias_partials == NULL)
        return od_fail(err, "%s: out of memory for %lld floats of buffers", layer->shape.kind,
                       (long long)(2 * matrix + layer->out_count));
    return 0;
}

/* gemm_weight[ci][t * Cout + co] = weight[ci][co][t], weight in PyTorch's
 * ConvTranspose layout (Cin, Cout, taps). */
static void load_weight_matrix(float *matrix, const float *weight, const gemm_dims *d)
{
    for (int64_t ci = 0; ci < d->in_channels; ci++)
        for (int64_t co = 0; co < d->out_channels; co++)
            for (int64_t t = 0; t < d->taps; t++)
                matrix[(ci * d->taps + t) * d->out_channels + co] =
                    weight[(ci * d->out_channels + co) * d->taps + t];
}

/* Locates output row (n, od, oh), one of N * Do * Ho rows of Wo voxels.
 * voxel_row is the product row of input voxel (n, od / kD, oh / kH, 0),
 * and tap_row the flat index of tap (od % kD, oh % kH, 0). */
static void locate_row(const gemm_dims *d, int64_t row, int64_t *voxel_row, int64_t *tap_row)
{
    int64_t oh = row % d->out[1];
    int64_t od = (row / d->out[1]) % d->out[0];
    int64_t n = row / (d->out[1] * d->out[0]);
    int64_t i = od / d->kernel[0], a = od % d->kernel[0];
    int64_t j = oh / d->kernel[1], b = oh % d->kernel[1];
    *voxel_row = ((n * d->in[0] + i) * d->in[1] + j) * d->in[2];
    *tap_row = (a * d->kernel[1] + b) * d->kernel[2];
}

/* out (N, Do, Ho, Wo, Cout) = product rows + bias (bias may be NULL). */
static void scatter_product(float *out, const float *product, const float *bias, const gemm_dims *d)
{
    int64_t channels = d->out_channels;
    int64_t product_row = d->taps * channels;
    int64_t rows = d->batch * d->out[0] * d->out[1];
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        int64_t voxel_row, tap_row;
        locate_row(d, row, &voxel_row, &tap_row);
        float *out_row = out + row * d->out[2] * channels;
        for (int64_t l = 0; l < d->in[2]; l++)
            for (int64_t c = 0; c < d->kernel[2]; c++) {
                const float *block = product + (voxel_row + l) * product_row + (tap_row + c) * channels;
                float *voxel = out_row + (l * d->kernel[2] + c) * channels;
                if (bias != NULL) {
#pragma omp simd
                    for (int64_t co = 0; co < channels; co++)
                        voxel[co] = block[co] + bias[co];
                } else {
                    memcpy(voxel, block, (size_t)channels * sizeof(float));
                }
            }
    }
}

/* product (M, K * Cout) = d_out (N, Do, Ho, Wo, Cout) rearranged. */
static void gather_product(float *product, const float *d_out, const gemm_dims *d)
{
    int64_t channels = d->out_channels;
    int64_t product_row = d->taps * channels;
    int64_t rows = d->batch * d->out[0] * d->out[1];
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        int64_t voxel_row, tap_row;
        locate_row(d, row, &voxel_row, &tap_row);
        const float *d_out_row = d_out + row * d->out[2] * channels;
        for (int64_t l = 0; l < d->in[2]; l++)
            for (int64_t c = 0; c < d->kernel[2]; c++)
                memcpy(product + (voxel_row + l) * product_row + (tap_row + c) * channels,
                       d_out_row + (l * d->kernel[2] + c) * channels, (size_t)channels * sizeof(float));
    }
}

void od_conv_gemm_forward(od_conv_layer *layer, float *out, const float *in, const float *weight,
                          const float *bias)
{
    /* out is (N, Do, Ho, Wo, Cout), in (N, D, H, W, Cin), weight (Cin, Cout, k...). */
    gemm_dims d = dims_of(layer);
    int64_t voxels = d.batch * d.in[0] * d.in[1] * d.in[2];
    int64_t columns = d.taps * d.out_channels;
    load_weight_matrix(layer->gemm_weight, weight, &d);
    od_sgemm('N', 'N', voxels, columns, d.in_channels, 1.0f, in, d.in_channels, layer->gemm_weight, columns,
             0.0f, layer->gemm_product, columns);
    scatter_product(out, layer->gemm_product, bias, &d);
}

void od_conv_gemm_backward(od_conv_layer *layer, float *d_in, float *d_weight, float *d_bias,
                           const float *d_out, const float *in, const float *weight)
{
    /* d_out is (N, Do, Ho, Wo, Cout); d_in and in are (N, D, H, W, Cin);
     * d_weight and weight are (Cin, Cout, k...); d_bias is (Cout). */
    gemm_dims d = dims_of(layer);
    int64_t voxels = d.batch * d.in[0] * d.in[1] * d.in[2];
    int64_t columns = d.taps * d.out_channels;

    if (d_in != NULL || d_weight != NULL)
        gather_product(layer->gemm_product, d_out, &d);

    if (d_in != NULL) {
        float beta = layer->shape.input_grad_mode == OD_CONV_GRAD_ACCUMULATE ? 1.0f : 0.0f;
        load_weight_matrix(layer->gemm_weight, weight, &d);
        od_sgemm('N', 'T', voxels, d.in_channels, columns, 1.0f, layer->gemm_product, columns,
                 layer->gemm_weight, columns, beta, d_in, d.in_channels);
    }

    if (d_weight != NULL) {
        od_sgemm('T', 'N', d.in_channels, columns, voxels, 1.0f, in, d.in_channels, layer->gemm_product,
                 columns, 0.0f, layer->gemm_diff_weight, columns);
        for (int64_t ci = 0; ci < d.in_channels; ci++)
            for (int64_t co = 0; co < d.out_channels; co++)
                for (int64_t t = 0; t < d.taps; t++)
                    d_weight[(ci * d.out_channels + co) * d.taps + t] +=
                        layer->gemm_diff_weight[(ci * d.taps + t) * d.out_channels + co];
    }

    if (d_bias != NULL)
        od_conv_add_column_sums(d_bias, d_out, layer->out_count / d.out_channels, d.out_channels,
                                layer->bias_partials);
}
