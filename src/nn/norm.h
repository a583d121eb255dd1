/* Normalization layers over channels-last activations: batch norm, group
 * norm and layer norm, forward and backward.
 *
 * The forwards in training mode save the per-group mean and the reciprocal
 * standard deviation rstd = 1 / sqrt(var + eps) (biased variance, as
 * PyTorch normalises) for the backward. gamma and beta are the affine
 * weight and bias; passing NULL for both means no affine (gamma = 1,
 * beta = 0). The backwards accumulate (+=) into d_in, d_gamma and d_beta,
 * and skip any of them that is NULL.
 *
 * In-place: a forward may be called with out == in, because it reads the
 * whole input to compute the statistics before it writes the output. The
 * backward, though, needs the forward's original input. */
#ifndef ODDONE_NN_NORM_H
#define ODDONE_NN_NORM_H

#include <stdint.h>

#include "core/error.h"

/* ---- batch normalization ---------------------------------------------- */

/* Training forward with batch statistics.
 * in and out are (rows, channels), rows = N * spatial positions;
 * saved_mean and saved_rstd are (channels) outputs; gamma, beta are (channels). */
void od_batchnorm_forward(float *out, float *saved_mean, float *saved_rstd, const float *in,
                          const float *gamma, const float *beta, int64_t rows, int64_t channels,
                          float eps);

/* Training backward. d_in, d_out and in are (rows, channels); d_gamma,
 * d_beta, saved_mean, saved_rstd and gamma are (channels). */
void od_batchnorm_backward(float *d_in, float *d_gamma, float *d_beta, const float *d_out,
                           const float *in, const float *saved_mean, const float *saved_rstd,
                           const float *gamma, int64_t rows, int64_t channels);

/* Updates running statistics after a training forward, as PyTorch does:
 *     running_mean = (1 - momentum) * running_mean + momentum * mean
 *     running_var  = (1 - momentum) * running_var  + momentum * var * rows / (rows - 1)
 * (unbiased variance). The variance is recovered from saved_rstd and eps.
 * All buffers are (channels). Fails when rows < 2, because the unbiased
 * variance is then undefined (PyTorch rejects that batch too). */
int od_batchnorm_update_running_stats(float *running_mean, float *running_var,
                                      const float *saved_mean, const float *saved_rstd,
                                      int64_t rows, int64_t channels, float momentum, float eps,
                                      od_error *err);

/* Inference forward with running statistics. in and out are (rows,
 * channels); running_mean, running_var, gamma and beta are (channels). */
void od_batchnorm_inference_forward(float *out, const float *in, const float *running_mean,
                                    const float *running_var, const float *gamma,
                                    const float *beta, int64_t rows, int64_t channels, float eps);

/* ---- group normalization ---------------------------------------------- */

/* in and out are (batch, spatial, channels), channels-last. The channels
 * split into `groups` contiguous groups of channels / groups each, and each
 * (sample, group) is normalised over spatial * channels / groups values.
 * saved_mean and saved_rstd are (batch, groups); gamma and beta are (channels).
 * Fails when groups does not divide channels or a size is not positive. */
int od_groupnorm_forward(float *out, float *saved_mean, float *saved_rstd, const float *in,
                         const float *gamma, const float *beta, int64_t batch, int64_t spatial,
                         int64_t channels, int64_t groups, float eps, od_error *err);

/* d_in, d_out, in are (batch, spatial, channels); saved_mean, saved_rstd
 * are (batch, groups); d_gamma, d_beta, gamma are (channels). */
int od_groupnorm_backward(float *d_in, float *d_gamma, float *d_beta, const float *d_out,
                          const float *in, const float *saved_mean, const float *saved_rstd,
                          const float *gamma, int64_t batch, int64_t spatial, int64_t channels,
                          int64_t groups, od_error *err);

/* ---- layer normalization ---------------------------------------------- */

/* Normalises each row over its channels. in and out are (rows, channels);
 * saved_mean and saved_rstd are (rows); gamma and beta are (channels). */
void od_layernorm_forward(float *out, float *saved_mean, float *saved_rstd, const float *in,
                          const float *gamma, const float *beta, int64_t rows, int64_t channels,
                          float eps);

void od_layernorm_backward(float *d_in, float *d_gamma, float *d_beta, const float *d_out,
                           const float *in, const float *saved_mean, const float *saved_rstd,
                           const float *gamma, int64_t rows, int64_t channels);

#endif
