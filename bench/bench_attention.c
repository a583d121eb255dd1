/* Attention at the matcher's size: 7 objects of 512 voxels (3584 tokens)
 * with C = 256 channels in 8 heads of 32. Sparse attention lets each voxel
 * attend to 20 voxels in each of the 6 other objects (K = 120 keys per
 * query). Dense attention runs within each object (B = 7, T = 512), for
 * comparison with PyTorch's own MultiheadAttention. bench/torch_attention.py
 * prints the same names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/mem.h"
#include "core/rng.h"
#include "nn/attention.h"

#define OBJECTS 7
#define VOXELS_PER_OBJECT 512
#define CHANNELS 256
#define HEADS 8
#define MATCHES_PER_OBJECT 20
#define KEYS_PER_QUERY (MATCHES_PER_OBJECT * (OBJECTS - 1))

typedef struct bench_case {
    int64_t B, Tq, Tk, K; /* K = 0: dense */
    float *query, *key, *value, *out, *d_out;
    float *d_query, *d_key, *d_value;
    int32_t *index;
    od_mha_params params, grads;
    od_mha_saved saved;
    float *probs; /* the kernels' saved probabilities */
} bench_case;

static void fail(const char *operation, const od_error *err)
{
    fprintf(stderr, "bench_attention: %s failed: %s\n", operation, err->message);
    exit(1);
}

/* Each query of object o lists MATCHES_PER_OBJECT distinct random voxels of
 * every other object, like the matcher's top-k lists. */
static void fill_matcher_index(int32_t *index, od_rng *rng)
{
    int32_t voxels[VOXELS_PER_OBJECT];
    for (int64_t query = 0; query < OBJECTS * VOXELS_PER_OBJECT; query++) {
        const int64_t object = query / VOXELS_PER_OBJECT;
        int32_t *slots = index + query * KEYS_PER_QUERY;
        for (int64_t other = 0; other < OBJECTS; other++) {
            if (other == object)
                continue;
            for (int v = 0; v < VOXELS_PER_OBJECT; v++)
                voxels[v] = (int32_t)(other * VOXELS_PER_OBJECT + v);
            /* A partial Fisher-Yates shuffle draws distinct voxels. */
            for (int m = 0; m < MATCHES_PER_OBJECT; m++) {
                int pick = m + (int)od_rng_below(rng, (uint64_t)(VOXELS_PER_OBJECT - m));
                int32_t swap = voxels[m];
                voxels[m] = voxels[pick];
                voxels[pick] = swap;
                *slots++ = voxels[m];
            }
        }
    }
}

static bench_case case_new(int64_t B, int64_t T, int64_t K)
{
    const int64_t C = CHANNELS;
    bench_case bc = {.B = B, .Tq = T, .Tk = T, .K = K};
    od_rng rng;
    od_rng_seed(&rng, 1);
    const int64_t tokens = B * T * C;
    bc.query = od_alloc_floats(tokens);
    bc.key = od_alloc_floats(tokens);
    bc.value = od_alloc_floats(tokens);
    bc.out = od_alloc_floats(tokens);
    bc.d_out = od_alloc_floats(tokens);
    bc.d_query = od_alloc_floats(tokens);
    bc.d_key = od_alloc_floats(tokens);
    bc.d_value = od_alloc_floats(tokens);
    bc.probs = od_alloc_floats(B * HEADS * T * (K > 0 ? K : T));
    od_rng_fill_normal(&rng, bc.query, tokens, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, bc.key, tokens, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, bc.value, tokens, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, bc.d_out, tokens, 0.0f, 1.0f);
    if (K > 0) {
        bc.index = malloc((size_t)(B * T * K) * sizeof(int32_t));
        fill_matcher_index(bc.index, &rng);
    }
    float *params = od_alloc_floats(4 * C * C + 4 * C);
    float *grads = od_alloc_floats(4 * C * C + 4 * C);
    od_rng_fill_normal(&rng, params, 4 * C * C + 4 * C, 0.0f, 0.0625f);
    bc.params = (od_mha_params){params, params + 3 * C * C, params + 3 * C * C + 3 * C,
                                params + 4 * C * C + 3 * C};
    bc.grads = (od_mha_params){grads, grads + 3 * C * C, grads + 3 * C * C + 3 * C,
                               grads + 4 * C * C + 3 * C};
    od_error err;
    if (bc.probs == NULL || od_mha_saved_alloc(&bc.saved, B, T, T, C, HEADS, K, &err) != 0)
        fail("allocation", &err);
    return bc;
}

static void case_free(bench_case *bc)
{
    od_free(bc->query);
    od_free(bc->key);
    od_free(bc->value);
    od_free(bc->out);
    od_free(bc->d_out);
    od_free(bc->d_query);
    od_free(bc->d_key);
    od_free(bc->d_value);
    od_free(bc->probs);
    free(bc->index);
    od_free(bc->params.in_proj_weight);
    od_free(bc->grads.in_proj_weight);
    od_mha_saved_release(&bc->saved);
}

static void kernel_forward(void *context)
{
    bench_case *bc = context;
    od_error err;
    int status = bc->K > 0 ? od_sparse_attention_forward(bc->out, bc->probs, bc->query, bc->key,
                                                         bc->value, bc->index, bc->B, bc->Tq,
                                                         bc->Tk, bc->K, HEADS, CHANNELS / HEADS, &err)
                           : od_attention_forward(bc->out, bc->probs, bc->query, bc->key, bc->value,
                                                  bc->B, bc->Tq, bc->Tk, HEADS, CHANNELS / HEADS, &err);
    if (status != 0)
        fail("attention forward", &err);
}

static void kernel_forward_backward(void *context)
{
    bench_case *bc = context;
    kernel_forward(bc);
    od_error err;
    int status = bc->K > 0
                     ? od_sparse_attention_backward(bc->d_query, bc->d_key, bc->d_value, bc->d_out,
                                                    bc->probs, bc->query, bc->key, bc->value,
                                                    bc->index, bc->B, bc->Tq, bc->Tk, bc->K, HEADS,
                                                    CHANNELS / HEADS, &err)
                     : od_attention_backward(bc->d_query, bc->d_key, bc->d_value, bc->d_out,
                                             bc->probs, bc->query, bc->key, bc->value, bc->B, bc->Tq,
                                             bc->Tk, HEADS, CHANNELS / HEADS, &err);
    if (status != 0)
        fail("attention backward", &err);
}

static void layer_forward(void *context)
{
    bench_case *bc = context;
    od_error err;
    if (od_mha_forward(bc->out, &bc->saved, bc->query, bc->key, bc->value, bc->index, &bc->params,
                       bc->B, bc->Tq, bc->Tk, CHANNELS, HEADS, bc->K, &err) != 0)
        fail("layer forward", &err);
}

static void layer_forward_backward(void *context)
{
    bench_case *bc = context;
    layer_forward(bc);
    od_error err;
    if (od_mha_backward(bc->d_query, bc->d_key, bc->d_value, &bc->grads, bc->d_out, &bc->saved,
                        bc->query, bc->key, bc->value, bc->index, &bc->params, bc->B, bc->Tq,
                        bc->Tk, CHANNELS, HEADS, bc->K, &err) != 0)
        fail("layer backward", &err);
}

int main(void)
{
    const int warmup = 2, repeats = 10;
    const double C = CHANNELS;

    /* Sparse: one sequence of every object's voxels. */
    bench_case sparse = case_new(1, OBJECTS * VOXELS_PER_OBJECT, KEYS_PER_QUERY);
    const double sparse_pairs = (double)sparse.Tq * (double)sparse.K;
    const double tokens = (double)sparse.Tq;
    /* Scores and weighted values: 2 products of C each per (query, key). */
    bench_report("attention_sparse_fwd", bench_median_ms(kernel_forward, &sparse, warmup, repeats),
                 4.0 * sparse_pairs * C);
    bench_report("attention_sparse_fwdbwd",
                 bench_median_ms(kernel_forward_backward, &sparse, warmup, repeats),
                 12.0 * sparse_pairs * C);
    /* The layer adds four (tokens, C) x (C, C) projections. */
    bench_report("mha_sparse_fwd", bench_median_ms(layer_forward, &sparse, warmup, repeats),
                 4.0 * sparse_pairs * C + 8.0 * tokens * C * C);
    bench_report("mha_sparse_fwdbwd", bench_median_ms(layer_forward_backward, &sparse, warmup, repeats),
                 12.0 * sparse_pairs * C + 24.0 * tokens * C * C);
    case_free(&sparse);

    /* Dense: each object attends within itself. */
    bench_case dense = case_new(OBJECTS, VOXELS_PER_OBJECT, 0);
    const double dense_pairs = (double)OBJECTS * VOXELS_PER_OBJECT * VOXELS_PER_OBJECT;
    bench_report("attention_dense_fwd", bench_median_ms(kernel_forward, &dense, warmup, repeats),
                 4.0 * dense_pairs * C);
    bench_report("attention_dense_fwdbwd",
                 bench_median_ms(kernel_forward_backward, &dense, warmup, repeats),
                 12.0 * dense_pairs * C);
    bench_report("mha_dense_fwd", bench_median_ms(layer_forward, &dense, warmup, repeats),
                 4.0 * dense_pairs * C + 8.0 * tokens * C * C);
    bench_report("mha_dense_fwdbwd", bench_median_ms(layer_forward_backward, &dense, warmup, repeats),
                 12.0 * dense_pairs * C + 24.0 * tokens * C * C);
    case_free(&dense);
    return 0;
}
