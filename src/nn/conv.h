/* Convolution layers on oneDNN: 2D convolution, 3D convolution and 3D
 * transposed convolution, forward and backward (data, weights and bias).
 *
 * Each layer is an object made for one input shape. _new validates the
 * configuration and creates oneDNN's forward primitive. The backward
 * primitives are created on the first backward call, so inference-only
 * users never pay for them. The object keeps the reordered weights, the
 * scratchpad and every temporary buffer, so forward and backward calls
 * after the first allocate nothing. An object is not thread-safe, so make
 * one call at a time.
 *
 * Layouts at the API boundary:
 *   activations   channels-last, (N, H, W, C) or (N, D, H, W, C)
 *   conv weight   PyTorch's Conv2d/Conv3d layout, (Cout, Cin / groups, kH, kW)
 *                 or (Cout, Cin / groups, kD, kH, kW)
 *   transposed    PyTorch's ConvTranspose3d layout, (Cin, Cout / groups, kD, kH, kW)
 *   bias          (Cout)
 * oneDNN picks its own weight layout; weights are reordered into it once
 * per forward or backward call, never per output element.
 *
 * The backward accumulates (+=) into d_weight and d_bias, and into d_in
 * unless input_grad_mode is OD_CONV_GRAD_OVERWRITE. A NULL gradient pointer
 * skips that gradient.
 *
 * Determinism: oneDNN splits the work by the OpenMP thread count at the
 * time a primitive is created, so one layer object gives bit-identical
 * results call after call (test_conv.c checks this at the encoder-decoder's
 * sizes). Objects made under different thread counts can differ in the
 * last bits of d_weight and d_bias.
 *
 * Sizes follow PyTorch: a convolution's output size along one axis is
 *     floor((in + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1
 * and a transposed convolution's is
 *     (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1. */
#ifndef ODDONE_NN_CONV_H
#define ODDONE_NN_CONV_H

#include <stdint.h>

#include "core/error.h"

/* What the backward does with d_in. Accumulate is oddone's convention.
 * Overwrite saves the caller from zeroing d_in, and for strided
 * convolutions also saves one read-add-write pass over d_in. It applies to
 * d_in only: the weight and bias gradients are always accumulated, at no
 * extra cost, by the reorder that converts them to PyTorch's layout. */
typedef enum od_conv_grad_mode {
    OD_CONV_GRAD_ACCUMULATE = 0,
    OD_CONV_GRAD_OVERWRITE = 1,
} od_conv_grad_mode;

/* Activation layout of in, out, d_in and d_out. Channels-last is the
 * library's layout. Blocked16 is oneDNN's nChw16c / nCdhw16c layout,
 * (N, C / 16, [D,] H, W, 16), kept for layout measurements. It needs every
 * channel count to be a multiple of 16. For N = 1 and C = 16 both layouts
 * store the same bytes. */
typedef enum od_conv_layout {
    OD_CONV_CHANNELS_LAST = 0,
    OD_CONV_BLOCKED16 = 1,
} od_conv_layout;

/* ---- 2D convolution -------------------------------------------------- */

/* Every size must be set: stride, dilation and groups are at least 1
 * (a zeroed field is rejected, not taken as a default). Depthwise is
 * groups == in_channels == out_channels. */
typedef struct od_conv2d_config {
    int64_t batch;
    int64_t in_channels;
    int64_t out_channels;
    int64_t in_size[2];  /* H, W */
    int64_t kernel[2];   /* kH, kW */
    int64_t stride[2];
    int64_t padding[2];  /* zeros added on both sides */
    int64_t dilation[2];
    int64_t groups;
    int bias;            /* 1: the layer adds a bias of (out_channels) */
    od_conv_grad_mode input_grad_mode;
    od_conv_layout layout;
} od_conv2d_config;

typedef struct od_conv2d od_conv2d;

/* Returns a new layer, or NULL with a message naming the invalid field. */
od_conv2d *od_conv2d_new(const od_conv2d_config *config, od_error *err);
void od_conv2d_free(od_conv2d *conv);

/* Writes the output size {H, W} of a valid layer. */
void od_conv2d_out_size(const od_conv2d *conv, int64_t out_size[2]);

/* in is (N, H, W, Cin); weight is (Cout, Cin / groups, kH, kW);
 * bias is (Cout), and must be NULL exactly when the layer has no bias;
 * out is (N, Ho, Wo, Cout). */
int od_conv2d_forward(od_conv2d *conv, float *out, const float *in, const float *weight,
                      const float *bias, od_error *err);

/* d_out is (N, Ho, Wo, Cout), and in and weight are the forward's.
 * d_in is (N, H, W, Cin), d_weight (Cout, Cin / groups, kH, kW), d_bias (Cout).
 * in may be NULL when d_weight and d_bias are NULL, and weight may be NULL
 * when d_in is NULL. */
int od_conv2d_backward(od_conv2d *conv, float *d_in, float *d_weight, float *d_bias,
                       const float *d_out, const float *in, const float *weight, od_error *err);

/* ---- 3D convolution -------------------------------------------------- */

typedef struct od_conv3d_config {
    int64_t batch;
    int64_t in_channels;
    int64_t out_channels;
    int64_t in_size[3];  /* D, H, W */
    int64_t kernel[3];   /* kD, kH, kW */
    int64_t stride[3];
    int64_t padding[3];
    int64_t dilation[3];
    int64_t groups;
    int bias;
    od_conv_grad_mode input_grad_mode;
    od_conv_layout layout;
} od_conv3d_config;

typedef struct od_conv3d od_conv3d;

od_conv3d *od_conv3d_new(const od_conv3d_config *config, od_error *err);
void od_conv3d_free(od_conv3d *conv);

/* Writes the output size {D, H, W} of a valid layer. */
void od_conv3d_out_size(const od_conv3d *conv, int64_t out_size[3]);

/* in is (N, D, H, W, Cin); weight is (Cout, Cin / groups, kD, kH, kW);
 * bias is (Cout) or NULL as configured; out is (N, Do, Ho, Wo, Cout). */
int od_conv3d_forward(od_conv3d *conv, float *out, const float *in, const float *weight,
                      const float *bias, od_error *err);

/* d_out is (N, Do, Ho, Wo, Cout); d_in is (N, D, H, W, Cin);
 * d_weight is (Cout, Cin / groups, kD, kH, kW); d_bias is (Cout). */
int od_conv3d_backward(od_conv3d *conv, float *d_in, float *d_weight, float *d_bias,
                       const float *d_out, const float *in, const float *weight, od_error *err);

/* ---- 3D transposed convolution --------------------------------------- */

/* PyTorch's ConvTranspose3d: padding removes `padding` rows on both sides
 * of the full output, and output_padding adds rows on the high side only
 * (it must be smaller than the stride or the dilation on its axis). */
typedef struct od_conv_transpose3d_config {
    int64_t batch;
    int64_t in_channels;
    int64_t out_channels;
    int64_t in_size[3];  /* D, H, W */
    int64_t kernel[3];
    int64_t stride[3];
    int64_t padding[3];
    int64_t output_padding[3];
    int64_t dilation[3];
    int64_t groups;
    int bias;
    od_conv_grad_mode input_grad_mode;
    od_conv_layout layout;
} od_conv_transpose3d_config;

typedef struct od_conv_transpose3d od_conv_transpose3d;

od_conv_transpose3d *od_conv_transpose3d_new(const od_conv_transpose3d_config *config,
                                             od_error *err);
void od_conv_transpose3d_free(od_conv_transpose3d *conv);

void od_conv_transpose3d_out_size(const od_conv_transpose3d *conv, int64_t out_size[3]);

/* in is (N, D, H, W, Cin); weight is (Cin, Cout / groups, kD, kH, kW);
 * bias is (Cout) or NULL as configured; out is (N, Do, Ho, Wo, Cout). */
int od_conv_transpose3d_forward(od_conv_transpose3d *conv, float *out, const float *in,
                                const float *weight, const float *bias, od_error *err);

/* d_out is (N, Do, Ho, Wo, Cout); d_in is (N, D, H, W, Cin);
 * d_weight is (Cin, Cout / groups, kD, kH, kW); d_bias is (Cout). */
int od_conv_transpose3d_backward(od_conv_transpose3d *conv, float *d_in, float *d_weight,
                                 float *d_bias, const float *d_out, const float *in,
                                 const float *weight, od_error *err);

#endif
