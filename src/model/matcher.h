/* The matcher and classifier of the learned model: each object of a scene
 * compares its voxels with the other objects' voxels by attention, and a
 * small 3D CNN turns the result into one anomaly logit per object,
 * forward and backward.
 *
 * Inputs are the per-scene object crops of nn/roi_pool.h, O objects of
 * n x n x n cells, T = n^3 tokens each:
 *   crops   (O, n, n, n, Cin) channels-last, Cin = c0 + k: channels
 *           [0, c0) are the volume network's trunk (with crop.lifted, the
 *           trunk and then the lifted encoder features), [c0, c0 + k) its
 *           feature head (the teacher space)
 *   mask    (O, n, n, n), 1 = occupied cell, 0 = empty
 *
 * Per token:
 *   embed      Linear(Cin + 3, M) over the crop channels and the cell's
 *              coordinates (i + 0.5) / n - 0.5 for its z, y, x index
 *   blocks     `blocks` pre-norm blocks, x += Attn(LN1(x)), then
 *              x += FF(LN2(x)) with FF = Linear(M, 4M), GEGLU,
 *              Linear(2M, M); Attn is nn/attention.h's multi-head layer
 *              whose queries are the tokens of object o and whose keys
 *              and values are tokens of the other objects only
 *   norm       final LayerNorm, then tokens of empty cells set to zero
 *   classifier per object, Conv3d(M, M, 3, stride 2, pad 1), ReLU,
 *              Conv3d(M, M, 3, stride 2, pad 1), ReLU, flatten in
 *              PyTorch's (C, D, H, W) order, Linear(s^3 M, M), ReLU,
 *              Linear(M, 1). Each convolution maps size n to
 *              floor((n - 1) / 2) + 1, so s = n / 4 when 4 divides n.
 * LayerNorm eps is 1e-5, as PyTorch's default.
 *
 * Variants (model/config.h):
 *   full   sparse attention. For each query cell and each other object j,
 *          the keys are the top_k occupied cells of j whose teacher slice
 *          has the highest cosine similarity to the query cell's teacher
 *          slice (K = top_k (O - 1)). Ties go to the lower cell index.
 *          When j has fewer occupied cells than top_k, its sorted cells
 *          repeat cyclically to fill the list, and a j with no occupied
 *          cell offers all its cells. The choice is made once per forward
 *          from the input crops, and no gradient flows through it.
 *   B, C   plain attention: every cell of every other object
 *          (K = (O - 1) T). This is dense attention batched by object,
 *          over a copy of the other objects' tokens, which gives the
 *          same result as the sparse kernel with the full key list at a
 *          fraction of its time. C differs from B only in how the trainer
 *          weights its losses.
 *   A      no attention (blocks are FF only), so no comparison.
 * With O = 1 there is no other object and attention is skipped, as in A.
 *
 * Parameter names are those of the PyTorch twin in scripts/refs/matcher.py,
 * e.g. "embed.weight", "blocks.0.norm1.weight", "blocks.0.attn.in_proj_weight",
 * "blocks.0.attn.out_proj.bias", "blocks.0.ff.0.weight", "blocks.0.ff.2.bias",
 * "norm.weight", "classifier.0.weight", "classifier.5.weight",
 * "classifier.7.bias". Variant A registers no norm1 and no attn.
 *
 * Memory: every activation buffer is sized at creation for max_objects,
 * except the attention's saved activations. Their probabilities take
 * H O T K floats per block, which for B and C grows with the square of O
 * (about 1.1 GB per block at M = 64, n = 8 and 12 objects), so they grow
 * to the largest O that a call has used. Once the largest scene has been
 * seen, the matcher allocates nothing, but nn/attention.h's layer still
 * allocates its scratch in every call.
 *
 * Determinism: the forward and backward are bit-identical from run to run
 * at a given thread count. Between thread counts the GEMMs and
 * convolutions may differ in the last bits, and so may the top-k
 * similarities, which come from od_sgemm: keys whose similarities tie
 * within rounding may then swap. */
#ifndef ODDONE_MODEL_MATCHER_H
#define ODDONE_MODEL_MATCHER_H

#include <stdint.h>

#include "core/error.h"
#include "model/config.h"
#include "model/params.h"

#define OD_MATCHER_LAYERNORM_EPS 1e-5f
/* Clamp of each norm in the cosine similarity, as F.cosine_similarity's eps. */
#define OD_MATCHER_COSINE_EPS 1e-8f

typedef struct od_matcher_config {
    od_model_variant variant;  /* model/config.h: FULL, A, B, C */
    int64_t trunk_channels;    /* c0 */
    int64_t teacher_channels;  /* k */
    int64_t cells;             /* n, 1 to 32 */
    int64_t channels;          /* M = matcher.channels */
    int64_t heads;             /* matcher.heads, divides M */
    int64_t blocks;            /* matcher.blocks */
    int64_t top_k;             /* matcher.top_k, per other object */
    int64_t max_objects;       /* largest O a call accepts, e.g. 16 */
} od_matcher_config;

/* Default max_objects of od_matcher_config_from_model. */
#define OD_MATCHER_DEFAULT_MAX_OBJECTS 16

/* Returns the matcher's configuration from the model's: c0 is
 * channels[0], plus encoder_channels when crop.lifted is set (the lifted
 * encoder features follow the trunk in each crop), k teacher_channels, n
 * crop_cells, and max_objects is OD_MATCHER_DEFAULT_MAX_OBJECTS (callers
 * may lower it). */
od_matcher_config od_matcher_config_from_model(const od_model_config *model, int64_t encoder_channels);

typedef struct od_matcher od_matcher;

/* Registers the tensors under prefix (e.g. "matcher.") in params and
 * builds the layers. Returns NULL with a message naming the invalid field
 * or the failed allocation. */
od_matcher *od_matcher_new(const od_matcher_config *config, od_params *params,
                           const char *prefix, od_error *err);
void od_matcher_free(od_matcher *matcher);

/* Writes logits (O), one anomaly logit per object. training = 1 keeps what
 * the backward needs. Fails when objects is outside [1, max_objects] or a
 * layer fails. */
int od_matcher_forward(od_matcher *matcher, const float *crops, const float *mask,
                       int64_t objects, int training, float *logits, od_error *err);

/* Accumulates the parameter gradients of sum(logits * d_logits), and adds
 * the crops' gradient into d_crops (O, n, n, n, Cin) when it is not NULL.
 * Needs a training forward just before it, and reads that forward's mask,
 * so the caller keeps the mask unchanged until the backward returns. */
int od_matcher_backward(od_matcher *matcher, const float *d_logits, float *d_crops,
                        od_error *err);

/* Weighted binary cross-entropy over O objects: weight anomaly_weight for
 * label 1, normal_weight for label 0, mean over objects
 * (sum w_i * bce_i / O). Writes the loss and overwrites d_logits (O).
 * Fails when a label is not 0 or 1, a weight is negative or not finite, or
 * objects < 1. */
int od_matcher_loss(const float *logits, const uint8_t *labels, int64_t objects,
                    double anomaly_weight, double normal_weight, double *loss,
                    float *d_logits, od_error *err);

/* Returns K, the keys per query of the last forward, or 0 when it used no
 * attention. For tests and inspection. */
int64_t od_matcher_keys_per_query(const od_matcher *matcher);
/* Returns the last forward's key list of token `token` of object `object`:
 * K token indices o * T + cell into the whole (O T) sequence. Returns NULL
 * when that forward used no attention or an index is out of range. */
const int32_t *od_matcher_key_list(const od_matcher *matcher, int64_t object, int64_t token);

#endif
