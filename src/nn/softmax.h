/* Softmax over the last dimension, forward and backward. */
#ifndef ODDONE_NN_SOFTMAX_H
#define ODDONE_NN_SOFTMAX_H

#include <stdint.h>

/* in and out are (rows, channels); each row of out is
 * exp(in - max) / sum(exp(in - max)), so large logits do not overflow.
 * out may equal in. */
void od_softmax_forward(float *out, const float *in, int64_t rows, int64_t channels);

/* d_in += out * (d_out - sum(d_out * out)) per row; d_in, d_out and out (the
 * forward's output) are (rows, channels). */
void od_softmax_backward(float *d_in, const float *d_out, const float *out, int64_t rows,
                         int64_t channels);

#endif
