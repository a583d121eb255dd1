/* Multi-head scaled dot-product attention, dense and sparse, and the full
 * multi-head attention layer in the layout of PyTorch's
 * torch.nn.MultiheadAttention(batch_first=True).
 *
 * Token sequences are channels-last (B, T, C) with C = H * Dh: head h owns
 * the channels [h * Dh, (h + 1) * Dh) of every token. Scores are scaled by
 * 1 / sqrt(Dh) before the softmax over the keys.
 *
 * Dense attention lets every query attend to every key of its batch item.
 * Sparse attention lets query i of batch item b attend only to the K keys
 * index[b][i][0..K), int32 values in [0, Tk). The matcher uses it to let
 * each voxel of one object attend to its top-k best-matching voxels in the
 * other objects. Sparse attention has gather semantics: every slot of the
 * index list is one softmax term, so a key listed twice gets two terms and
 * twice the weight of a key listed once. With index[b][i] = 0, 1, ..., Tk-1
 * it equals dense attention.
 *
 * The backwards accumulate (+=) into every gradient buffer they receive and
 * skip any that is NULL. Every function here is deterministic, and the
 * sparse backward scatters into the key and value gradients in a key-major
 * pass, so its result does not depend on the thread count either. The
 * dense kernels and the layer call od_sgemm, whose summation order may
 * depend on the thread count. */
#ifndef ODDONE_NN_ATTENTION_H
#define ODDONE_NN_ATTENTION_H

#include <stdint.h>

#include "core/error.h"

/* ---- attention kernels ------------------------------------------------- */

/* Dense attention forward.
 * q and out are (B, Tq, H*Dh); k and v are (B, Tk, H*Dh);
 * saved_probs is (B, H, Tq, Tk), the softmax probabilities for the backward,
 * or NULL when no backward follows.
 * Fails when a size is not positive or scratch memory runs out. */
int od_attention_forward(float *out, float *saved_probs, const float *q, const float *k,
                         const float *v, int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t Dh,
                         od_error *err);

/* Dense attention backward.
 * d_q, d_out and q are (B, Tq, H*Dh); d_k, d_v, k and v are (B, Tk, H*Dh);
 * saved_probs is (B, H, Tq, Tk) from the forward. */
int od_attention_backward(float *d_q, float *d_k, float *d_v, const float *d_out,
                          const float *saved_probs, const float *q, const float *k,
                          const float *v, int64_t B, int64_t Tq, int64_t Tk, int64_t H,
                          int64_t Dh, od_error *err);

/* Sparse attention forward.
 * q and out are (B, Tq, H*Dh); k and v are (B, Tk, H*Dh); index is (B, Tq, K);
 * saved_probs is (B, H, Tq, K), or NULL when no backward follows.
 * Fails when a size is not positive or an index is outside [0, Tk). The
 * message then names the batch item, the query, the slot and the index. */
int od_sparse_attention_forward(float *out, float *saved_probs, const float *q, const float *k,
                                const float *v, const int32_t *index, int64_t B, int64_t Tq,
                                int64_t Tk, int64_t K, int64_t H, int64_t Dh, od_error *err);

/* Sparse attention backward.
 * d_q, d_out and q are (B, Tq, H*Dh); d_k, d_v, k and v are (B, Tk, H*Dh);
 * index is (B, Tq, K); saved_probs is (B, H, Tq, K) from the forward. */
int od_sparse_attention_backward(float *d_q, float *d_k, float *d_v, const float *d_out,
                                 const float *saved_probs, const float *q, const float *k,
                                 const float *v, const int32_t *index, int64_t B, int64_t Tq,
                                 int64_t Tk, int64_t K, int64_t H, int64_t Dh, od_error *err);

/* ---- multi-head attention layer ---------------------------------------- */

/* Weights in torch.nn.MultiheadAttention's layout, so that a state dict
 * converts 1:1. in_proj_weight is (3C, C): rows [0, C) project the query,
 * [C, 2C) the key and [2C, 3C) the value; in_proj_bias is (3C);
 * out_proj_weight is (C, C) and out_proj_bias is (C). The same struct
 * carries the weight gradients in the backward, where a NULL member means
 * that gradient is not needed. */
typedef struct od_mha_params {
    float *in_proj_weight;
    float *in_proj_bias;
    float *out_proj_weight;
    float *out_proj_bias;
} od_mha_params;

/* Activations that the layer's forward saves for its backward. */
typedef struct od_mha_saved {
    float *q;       /* (B, Tq, C) projected queries */
    float *k;       /* (B, Tk, C) projected keys */
    float *v;       /* (B, Tk, C) projected values */
    float *context; /* (B, Tq, C) attention output, the input of out_proj */
    float *probs;   /* (B, H, Tq, Tk) when dense, (B, H, Tq, K) when sparse */
} od_mha_saved;

/* Allocates the saved buffers for a layer call; K = 0 means dense.
 * Fails when a size is invalid or memory runs out, leaving saved empty. */
int od_mha_saved_alloc(od_mha_saved *saved, int64_t B, int64_t Tq, int64_t Tk, int64_t C,
                       int64_t H, int64_t K, od_error *err);

/* Frees the buffers of od_mha_saved_alloc and sets them to NULL. */
void od_mha_saved_release(od_mha_saved *saved);

/* Layer forward: out = out_proj(attention(q_proj(query), k_proj(key), v_proj(value))).
 * query and out are (B, Tq, C); key and value are (B, Tk, C).
 * index is (B, Tq, K) for sparse attention, or NULL for dense attention,
 * which ignores K. saved receives the activations for the backward, or is
 * NULL when no backward follows. query, key and value may be one buffer.
 * Fails when C is not a multiple of H, a size is not positive, an index is
 * outside [0, Tk) or scratch memory runs out. */
int od_mha_forward(float *out, od_mha_saved *saved, const float *query, const float *key,
                   const float *value, const int32_t *index, const od_mha_params *params,
                   int64_t B, int64_t Tq, int64_t Tk, int64_t C, int64_t H, int64_t K,
                   od_error *err);

/* Layer backward.
 * d_query, d_out and query are (B, Tq, C); d_key, d_value, key and value
 * are (B, Tk, C). grads receives the weight gradients, shaped as in params,
 * and saved is what od_mha_forward wrote. For self-attention the caller
 * may pass one buffer as d_query, d_key and d_value, because the three
 * gradients are added into it one after the other. */
int od_mha_backward(float *d_query, float *d_key, float *d_value, od_mha_params *grads,
                    const float *d_out, const od_mha_saved *saved, const float *query,
                    const float *key, const float *value, const int32_t *index,
                    const od_mha_params *params, int64_t B, int64_t Tq, int64_t Tk, int64_t C,
                    int64_t H, int64_t K, od_error *err);

#endif
