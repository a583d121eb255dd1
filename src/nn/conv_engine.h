/* The engine behind od_conv2d, od_conv3d and od_conv_transpose3d: one
 * layer object for any convolution, 2D or 3D, direct or transposed, with
 * its oneDNN primitives, reorders and buffers. conv.c validates the public
 * configurations and calls it. Nothing outside src/nn/conv*.c includes this.
 *
 * A layer computes in one of three ways, chosen when it is made:
 *  - oneDNN's convolution or deconvolution primitives (the general case).
 *  - For a stride-1 convolution, the input gradient is a forward
 *    convolution of d_out with the flipped, transposed kernel. The forward
 *    takes a sum post-op, which accumulates into d_in for free, and
 *    oneDNN 2.6's forward kernel (brgconv) was faster: 4.0 ms against
 *    5.2 ms for its backward-data kernel, 16 -> 16 channels on a
 *    channels-last 16x64x64 volume, 2 threads of an AMD Zen 4.
 *  - A transposed convolution whose kernel equals its stride (no padding,
 *    dilation 1, one group) is a matrix product and a scatter, because each
 *    input voxel then feeds its own kernel-sized output block. On the same
 *    machine oneDNN 2.6's channels-last deconvolution took 3.4 and 11.8 ms
 *    for the encoder-decoder's two kernel-2 stride-2 cases, and the matrix
 *    product takes 0.4 and 0.2 ms. */
#ifndef ODDONE_NN_CONV_ENGINE_H
#define ODDONE_NN_CONV_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "core/error.h"
#include "nn/conv.h"

/* A convolution as PyTorch describes it. Axes beyond `spatial` are unused. */
typedef struct od_conv_shape {
    const char *kind; /* "conv2d", "conv3d" or "conv_transpose3d", for messages */
    int spatial;      /* 2 or 3 */
    int transposed;
    int64_t batch;
    int64_t in_channels;
    int64_t out_channels;
    int64_t groups;
    int64_t in_size[3];
    int64_t kernel[3];
    int64_t stride[3];
    int64_t padding[3];
    int64_t output_padding[3]; /* transposed only */
    int64_t dilation[3];
    int has_bias;
    od_conv_grad_mode input_grad_mode;
    od_conv_layout layout;
} od_conv_shape;

#define OD_CONV_STEP_MAX_ARGS 8

/* One oneDNN primitive with its argument memories, whose data handles are
 * set before each execution. */
typedef struct od_dnnl_step {
    dnnl_primitive_t primitive;
    int arg_count;
    dnnl_exec_arg_t args[OD_CONV_STEP_MAX_ARGS];
} od_dnnl_step;

typedef enum od_conv_path {
    OD_CONV_PATH_DNNL = 0,
    OD_CONV_PATH_GEMM = 1, /* transposed, kernel == stride */
} od_conv_path;

typedef struct od_conv_layer {
    od_conv_shape shape;
    int64_t out_size[3];
    int64_t in_count;     /* floats in the input */
    int64_t out_count;    /* floats in the output */
    int64_t weight_count; /* floats in the weight */
    od_conv_path path;

    /* oneDNN descriptors of the caller's buffers. */
    dnnl_memory_desc_t src_md, dst_md, user_weight_md, bias_md;
    dnnl_dims_t strides, dilates, padding_l, padding_r;

    /* One scratchpad shared by every primitive of the layer. */
    void *scratchpad;
    size_t scratchpad_bytes;

    /* Forward: the PyTorch-layout weight is reordered into forward_weight
     * unless oneDNN chose PyTorch's layout. */
    dnnl_primitive_desc_t forward_pd;
    od_dnnl_step forward;
    od_dnnl_step forward_weight_reorder;
    float *forward_weight;

    /* Backward, made on the first backward call. */
    int backward_ready;
    int data_by_forward; /* d_in by a forward convolution of d_out */
    od_dnnl_step backward_data;
    od_dnnl_step backward_data_weight_reorder;
    float *flipped_weight;       /* reverse convolution's weight, plain layout */
    float *backward_data_weight; /* in the layout backward_data chose */
    float *d_in_temp;            /* d_in before it is added to the caller's */
    od_dnnl_step backward_weights;
    od_dnnl_step diff_weight_reorder; /* accumulates into the caller's d_weight */
    float *diff_weight;
    float *diff_bias;

    /* GEMM path buffers: the weight as a (Cin, K * Cout) matrix with
     * K = kD * kH * kW, columns ordered (kernel offset, Cout); the product
     * (M, K * Cout) for the M input voxels; the weight gradient matrix; and
     * per-chunk bias sums. */
    float *gemm_weight;
    float *gemm_product;
    float *gemm_diff_weight;
    float *bias_partials;
} od_conv_layer;

/* Fills layer from a validated shape and creates the forward primitive. */
int od_conv_layer_init(od_conv_layer *layer, const od_conv_shape *shape, od_error *err);
void od_conv_layer_release(od_conv_layer *layer);

int od_conv_layer_forward(od_conv_layer *layer, float *out, const float *in, const float *weight,
                          const float *bias, od_error *err);
int od_conv_layer_backward(od_conv_layer *layer, float *d_in, float *d_weight, float *d_bias,
                           const float *d_out, const float *in, const float *weight,
                           od_error *err);

/* The GEMM path (conv_transpose_gemm.c). */
int od_conv_gemm_prepare(od_conv_layer *layer, od_error *err);
void od_conv_gemm_forward(od_conv_layer *layer, float *out, const float *in, const float *weight,
                          const float *bias);
void od_conv_gemm_backward(od_conv_layer *layer, float *d_in, float *d_weight, float *d_bias,
                           const float *d_out, const float *in, const float *weight);

/* Adds the column sums of x (rows, cols) into sums (cols), in a fixed
 * order that does not depend on the thread count. partials has room for
 * OD_CONV_SUM_CHUNKS * cols floats. */
#define OD_CONV_SUM_CHUNKS 64
void od_conv_add_column_sums(float *sums, const float *x, int64_t rows, int64_t cols,
                             float *partials);

#endif
