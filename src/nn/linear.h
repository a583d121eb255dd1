/* Fully connected layer: y = x W^T + b, forward and backward, on oneDNN's
 * sgemm. The weight keeps PyTorch's (out_features, in_features) layout, so
 * nn.Linear checkpoints load without a transpose. */
#ifndef ODDONE_NN_LINEAR_H
#define ODDONE_NN_LINEAR_H

#include <stdint.h>

/* in is (rows, in_features), weight is (out_features, in_features), bias is
 * (out_features) or NULL, out is (rows, out_features) and is overwritten.
 * out may not alias in. */
void od_linear_forward(float *out, const float *in, const float *weight, const float *bias,
                       int64_t rows, int64_t in_features, int64_t out_features);

/* Accumulates d_in += d_out W (rows, in_features), d_weight += d_out^T in
 * (out_features, in_features) and d_bias += column sums of d_out
 * (out_features); a NULL gradient is skipped. d_out is (rows, out_features)
 * and in is the forward's input. */
void od_linear_backward(float *d_in, float *d_weight, float *d_bias, const float *d_out,
                        const float *in, const float *weight, int64_t rows, int64_t in_features,
                        int64_t out_features);

#endif
