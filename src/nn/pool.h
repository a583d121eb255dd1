/* Average pooling over channels-last maps (N, H, W, C) and volumes
 * (N, D, H, W, C), forward and backward.
 *
 * Semantics follow PyTorch's avg_pool2d / avg_pool3d with ceil_mode=False:
 * the output size of a dimension is floor((in + 2 pad - kernel) / stride) + 1,
 * and windows may reach into the zero padding. With count_include_pad set
 * (PyTorch's default), every window divides by the full kernel volume,
 * padded positions included. Without it, a window divides by the number of
 * input positions it covers. Sizes, kernels, strides and paddings are given
 * per dimension in the order of the layout: {H, W} or {D, H, W}. */
#ifndef ODDONE_NN_POOL_H
#define ODDONE_NN_POOL_H

#include <stdint.h>

#include "core/error.h"

/* Output size of one dimension, or -1 when the window does not fit
 * (kernel < 1, stride < 1, padding < 0, or in + 2 padding < kernel). */
int64_t od_pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding);

/* in is (batch, height, width, channels); out is (batch, out_h, out_w,
 * channels) with out_h, out_w from od_pool_output_size, overwritten.
 * Fails when a size is not positive, a kernel or stride is below 1, or a
 * padding is negative or above half the kernel (PyTorch rejects that too). */
int od_avgpool2d_forward(float *out, const float *in, int64_t batch, int64_t height,
                         int64_t width, int64_t channels, const int64_t kernel[2],
                         const int64_t stride[2], const int64_t padding[2], int count_include_pad,
                         od_error *err);

/* Accumulates d_in (batch, height, width, channels) from d_out (batch,
 * out_h, out_w, channels). Fails on the same shapes as the forward. */
int od_avgpool2d_backward(float *d_in, const float *d_out, int64_t batch, int64_t height,
                          int64_t width, int64_t channels, const int64_t kernel[2],
                          const int64_t stride[2], const int64_t padding[2],
                          int count_include_pad, od_error *err);

/* in is (batch, depth, height, width, channels); out is (batch, out_d,
 * out_h, out_w, channels), overwritten. Fails as the 2D forward does. */
int od_avgpool3d_forward(float *out, const float *in, int64_t batch, int64_t depth, int64_t height,
                         int64_t width, int64_t channels, const int64_t kernel[3],
                         const int64_t stride[3], const int64_t padding[3], int count_include_pad,
                         od_error *err);

/* Accumulates d_in (batch, depth, height, width, channels) from d_out
 * (batch, out_d, out_h, out_w, channels). */
int od_avgpool3d_backward(float *d_in, const float *d_out, int64_t batch, int64_t depth,
                          int64_t height, int64_t width, int64_t channels, const int64_t kernel[3],
                          const int64_t stride[3], const int64_t padding[3],
                          int count_include_pad, od_error *err);

#endif
