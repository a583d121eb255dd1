/* Training losses: weighted binary cross-entropy on the anomaly logits,
 * mean squared error on rendered colour and silhouette, and 1 - cosine
 * similarity between rendered and teacher features.
 *
 * Each loss has a forward that writes the scalar loss and a backward that
 * ACCUMULATES scale * d(loss)/d(prediction) into the gradient buffer, where
 * scale is the upstream gradient (the loss weight in the total loss, e.g.
 * 0.1 for reconstruction in stage 2). Only the prediction gets a gradient,
 * because targets are data or a frozen teacher. The fused
 * *_forward_backward call does both in one pass over the data and gives
 * the same bits as the two separate calls. Its loss pointer or gradient
 * buffer may be NULL to skip that output.
 *
 * Sums are taken in float64 over blocks whose bounds depend only on the
 * sizes, and the blocks are added in order, so the loss is bit-identical
 * for every thread count. The gradients are elementwise, so they are too. */
#ifndef ODDONE_NN_LOSS_H
#define ODDONE_NN_LOSS_H

#include <stdint.h>

#include "core/error.h"

/* Class weights of the anomaly classifier's loss. */
#define OD_BCE_WEIGHT_ANOMALOUS 0.7f
#define OD_BCE_WEIGHT_NORMAL 0.3f

/* Epsilon of the cosine loss, PyTorch's default for F.cosine_similarity. */
#define OD_COSINE_EPS 1e-8f

/* How a weighted loss is averaged.
 *
 * OD_LOSS_MEAN divides the weighted sum by the number of terms, as
 * PyTorch's losses do with reduction='mean' and a weight tensor: for
 * BCEWithLogits that is mean(weight * loss) over all elements.
 * OD_LOSS_WEIGHTED_MEAN divides it by the sum of the weights, so that a
 * 0/1 mask gives the mean over the selected terms. When every weight is
 * zero, the weighted mean is defined as a loss of 0 with zero gradient.
 * Without a weight buffer both are the plain mean. */
typedef enum od_loss_reduction {
    OD_LOSS_MEAN,
    OD_LOSS_WEIGHTED_MEAN,
} od_loss_reduction;

/* ---- binary cross-entropy with logits ---------------------------------- */

/* logits is (count,), targets is (count,) with values in [0, 1].
 * The weight of element i is
 *     w_i = t_i * weight_anomalous + (1 - t_i) * weight_normal,
 * the class weight for hard 0/1 targets, interpolated for soft ones. The
 * per-element loss is max(x, 0) - x * t + log1p(exp(-|x|)), which stays
 * finite for logits of +-100 and beyond. Weights must be finite and >= 0.
 * Writes the reduced loss to *loss. */
int od_bce_with_logits_forward(float *loss, const float *logits, const float *targets, int64_t count,
                               float weight_anomalous, float weight_normal, od_loss_reduction reduction,
                               od_error *err);

/* dlogits is (count,): += scale * w_i * (sigmoid(x_i) - t_i) / denominator. */
int od_bce_with_logits_backward(float *dlogits, const float *logits, const float *targets, int64_t count,
                                float weight_anomalous, float weight_normal, od_loss_reduction reduction,
                                float scale, od_error *err);

int od_bce_with_logits_forward_backward(float *loss, float *dlogits, const float *logits,
                                        const float *targets, int64_t count, float weight_anomalous,
                                        float weight_normal, od_loss_reduction reduction, float scale,
                                        od_error *err);

/* ---- mean squared error ------------------------------------------------- */

/* pred and target are (rows, channels); row_weight is (rows,) or NULL and
 * weights every channel of its row (e.g. an object mask over the pixels of
 * an (N, H, W, 3) colour image, or over (N*H*W, 1) silhouette values). For a
 * per-element weight use channels = 1. The weighted sum
 *     sum_r w_r * sum_c (pred - target)^2
 * is divided by rows * channels (OD_LOSS_MEAN) or by channels * sum_r w_r
 * (OD_LOSS_WEIGHTED_MEAN). Weights are expected to be >= 0. */
int od_mse_loss_forward(float *loss, const float *pred, const float *target, const float *row_weight,
                        int64_t rows, int64_t channels, od_loss_reduction reduction, od_error *err);

/* dpred is (rows, channels): += scale * 2 * w_r * (pred - target) / denominator. */
int od_mse_loss_backward(float *dpred, const float *pred, const float *target, const float *row_weight,
                         int64_t rows, int64_t channels, od_loss_reduction reduction, float scale,
                         od_error *err);

int od_mse_loss_forward_backward(float *loss, float *dpred, const float *pred, const float *target,
                                 const float *row_weight, int64_t rows, int64_t channels,
                                 od_loss_reduction reduction, float scale, od_error *err);

/* ---- 1 - cosine similarity ---------------------------------------------- */

/* pred and target are (rows, channels); the similarity is taken along the
 * channels of each row, and row_weight (rows,) or NULL weights the rows
 * (1 - cos) before the reduction (OD_LOSS_MEAN divides by rows).
 *
 * eps follows PyTorch 1.13's F.cosine_similarity: each norm is clamped
 * separately,
 *     cos = sum_c (p_c / max(|p|, eps)) * (t_c / max(|t|, eps)),
 * so a zero row has similarity 0. Its backward uses the clamped norms in
 * the formula of the unclamped gradient,
 *     d cos / d p = t / (np * nt) - cos * p / np^2   with np = max(|p|, eps),
 * which is what PyTorch's autograd returns there too: for a zero pred row
 * the gradient is t / (eps * |t|), very large by design. */
int od_cosine_loss_forward(float *loss, const float *pred, const float *target, const float *row_weight,
                           int64_t rows, int64_t channels, float eps, od_loss_reduction reduction,
                           od_error *err);

/* dpred is (rows, channels): += scale * w_r * (-d cos_r / d pred_r) / denominator. */
int od_cosine_loss_backward(float *dpred, const float *pred, const float *target, const float *row_weight,
                            int64_t rows, int64_t channels, float eps, od_loss_reduction reduction,
                            float scale, od_error *err);

int od_cosine_loss_forward_backward(float *loss, float *dpred, const float *pred, const float *target,
                                    const float *row_weight, int64_t rows, int64_t channels, float eps,
                                    od_loss_reduction reduction, float scale, od_error *err);

#endif
