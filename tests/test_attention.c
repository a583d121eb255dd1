/* Multi-head attention against PyTorch (scripts/refs/attention.py): the
 * dense and sparse kernels and the MultiheadAttention-layout layer, with
 * forward outputs, saved probabilities and every gradient. Also: sparse
 * attention with every key listed equals dense attention, backwards
 * accumulate, the sparse kernels give bit-identical results on 1 and 2
 * threads, and invalid sizes and indices are rejected with a message that
 * names the value.
 *
 * Tolerances: the references are float64 and the C code float32. Inputs
 * are standard normal, so scores, outputs and probabilities are O(1) and
 * their float32 rounding error is about 1e-6; the exponential used by the
 * softmax adds a few ulps. Forward values use atol 2e-5, rtol 1e-4.
 * Gradients sum up to Tq or K terms of O(1), so they use atol 1e-4,
 * rtol 1e-4. The layers chain two more products of C terms each, and use
 * atol 1e-4, rtol 1e-3. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "nn/attention.h"
#include "testlib.h"

#define FORWARD_ATOL 2e-6f
#define FORWARD_RTOL 1e-5f
#define GRADIENT_ATOL 5e-6f
#define GRADIENT_RTOL 1e-5f
#define LAYER_ATOL 1e-5f
#define LAYER_RTOL 1e-4f

static int64_t metadata_int(const od_safetensors *st, const char *key)
{
    const char *text = od_safetensors_metadata(st, key);
    OD_CHECK(text != NULL);
    return text != NULL ? atoll(text) : 0;
}

/* ---- kernels ------------------------------------------------------------- */

/* Runs the kernel of one reference file (dense when its K is 0) and
 * compares the output, the probabilities and the three gradients. */
static void check_kernel_reference(const char *name)
{
    od_safetensors *st = od_test_load_reference(name);
    if (st == NULL)
        return;
    const int64_t B = metadata_int(st, "B"), Tq = metadata_int(st, "Tq"),
                  Tk = metadata_int(st, "Tk"), H = metadata_int(st, "H"),
                  Dh = metadata_int(st, "Dh"), K = metadata_int(st, "K");
    const int64_t C = H * Dh, keys = K > 0 ? K : Tk;
    od_tensor *q = od_test_tensor(st, "q"), *k = od_test_tensor(st, "k"),
              *v = od_test_tensor(st, "v"), *want_out = od_test_tensor(st, "out"),
              *want_probs = od_test_tensor(st, "probs"), *d_out = od_test_tensor(st, "d_out"),
              *want_d_q = od_test_tensor(st, "d_q"), *want_d_k = od_test_tensor(st, "d_k"),
              *want_d_v = od_test_tensor(st, "d_v");
    int32_t *index = NULL;
    if (K > 0) {
        int64_t count = 0;
        index = od_safetensors_get_int(st, "index", &count, NULL);
        OD_CHECK(index != NULL && count == B * Tq * K);
    }
    float *out = od_alloc_floats(B * Tq * C), *probs = od_alloc_floats(B * H * Tq * keys);
    float *d_q = od_alloc_floats(B * Tq * C), *d_k = od_alloc_floats(B * Tk * C),
          *d_v = od_alloc_floats(B * Tk * C);
    if (q == NULL || k == NULL || v == NULL || want_out == NULL || want_probs == NULL ||
        d_out == NULL || want_d_q == NULL || want_d_k == NULL || want_d_v == NULL ||
        (K > 0 && index == NULL))
        goto done;

    od_error err = {{0}};
    int status;
    if (K > 0)
        status = od_sparse_attention_forward(out, probs, q->data, k->data, v->data, index, B, Tq, Tk,
                                             K, H, Dh, &err);
    else
        status = od_attention_forward(out, probs, q->data, k->data, v->data, B, Tq, Tk, H, Dh, &err);
    OD_CHECK(status == 0);
    OD_CHECK_CLOSE("out", out, want_out->data, B * Tq * C, FORWARD_ATOL, FORWARD_RTOL);
    OD_CHECK_CLOSE("probs", probs, want_probs->data, B * H * Tq * keys, FORWARD_ATOL, FORWARD_RTOL);

    if (K > 0)
        status = od_sparse_attention_backward(d_q, d_k, d_v, d_out->data, probs, q->data, k->data,
                                              v->data, index, B, Tq, Tk, K, H, Dh, &err);
    else
        status = od_attention_backward(d_q, d_k, d_v, d_out->data, probs, q->data, k->data,
                                       v->data, B, Tq, Tk, H, Dh, &err);
    OD_CHECK(status == 0);
    OD_CHECK_CLOSE("d_q", d_q, want_d_q->data, B * Tq * C, GRADIENT_ATOL, GRADIENT_RTOL);
    OD_CHECK_CLOSE("d_k", d_k, want_d_k->data, B * Tk * C, GRADIENT_ATOL, GRADIENT_RTOL);
    OD_CHECK_CLOSE("d_v", d_v, want_d_v->data, B * Tk * C, GRADIENT_ATOL, GRADIENT_RTOL);

done:
    od_free(out);
    od_free(probs);
    od_free(d_q);
    od_free(d_k);
    od_free(d_v);
    free(index);
    od_tensor_free(q);
    od_tensor_free(k);
    od_tensor_free(v);
    od_tensor_free(want_out);
    od_tensor_free(want_probs);
    od_tensor_free(d_out);
    od_tensor_free(want_d_q);
    od_tensor_free(want_d_k);
    od_tensor_free(want_d_v);
    od_safetensors_free(st);
}

static void dense_kernel_matches_torch(void)
{
    check_kernel_reference("attention_dense_3x5");
    check_kernel_reference("attention_dense_1head");
    check_kernel_reference("attention_dense_4x32");
}

static void sparse_kernel_matches_torch(void)
{
    check_kernel_reference("attention_sparse_3x5");
    check_kernel_reference("attention_sparse_k1");
    check_kernel_reference("attention_sparse_4x32");
}

/* Random inputs of one kernel call, with the buffers for its results. */
typedef struct kernel_data {
    int64_t B, Tq, Tk, K, H, Dh;
    float *q, *k, *v, *d_out;
    int32_t *index;
} kernel_data;

static kernel_data kernel_data_random(int64_t B, int64_t Tq, int64_t Tk, int64_t K, int64_t H,
                                      int64_t Dh, uint64_t seed)
{
    kernel_data data = {B, Tq, Tk, K, H, Dh, NULL, NULL, NULL, NULL, NULL};
    const int64_t C = H * Dh;
    od_rng rng;
    od_rng_seed(&rng, seed);
    data.q = od_alloc_floats(B * Tq * C);
    data.k = od_alloc_floats(B * Tk * C);
    data.v = od_alloc_floats(B * Tk * C);
    data.d_out = od_alloc_floats(B * Tq * C);
    data.index = malloc((size_t)(B * Tq * K) * sizeof(int32_t));
    od_rng_fill_normal(&rng, data.q, B * Tq * C, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, data.k, B * Tk * C, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, data.v, B * Tk * C, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, data.d_out, B * Tq * C, 0.0f, 1.0f);
    for (int64_t e = 0; e < B * Tq * K; e++)
        data.index[e] = (int32_t)od_rng_below(&rng, (uint64_t)Tk);
    return data;
}

static void kernel_data_release(kernel_data *data)
{
    od_free(data->q);
    od_free(data->k);
    od_free(data->v);
    od_free(data->d_out);
    free(data->index);
}

/* Listing keys 0..Tk-1 in order gives dense attention, up to rounding.
 * The head counts cover the sparse kernels' head-minor layout (H dividing
 * 16 and C a multiple of 16, with and without a run of 64 channels) and
 * their general layout. */
static void check_sparse_equals_dense(int64_t H, int64_t Dh)
{
    const int64_t B = 2, Tq = 13, Tk = 17, C = H * Dh;
    kernel_data data = kernel_data_random(B, Tq, Tk, Tk, H, Dh, 11);
    for (int64_t row = 0; row < B * Tq; row++)
        for (int64_t j = 0; j < Tk; j++)
            data.index[row * Tk + j] = (int32_t)j;

    float *out_dense = od_alloc_floats(B * Tq * C), *out_sparse = od_alloc_floats(B * Tq * C);
    float *probs_dense = od_alloc_floats(B * H * Tq * Tk), *probs_sparse = od_alloc_floats(B * H * Tq * Tk);
    float *grads_dense = od_alloc_floats(B * (Tq + 2 * Tk) * C);
    float *grads_sparse = od_alloc_floats(B * (Tq + 2 * Tk) * C);
    od_error err;
    OD_CHECK(od_attention_forward(out_dense, probs_dense, data.q, data.k, data.v, B, Tq, Tk, H, Dh,
                                  &err) == 0);
    OD_CHECK(od_sparse_attention_forward(out_sparse, probs_sparse, data.q, data.k, data.v, data.index,
                                         B, Tq, Tk, Tk, H, Dh, &err) == 0);
    OD_CHECK_CLOSE("out", out_sparse, out_dense, B * Tq * C, 1e-5f, 1e-5f);
    OD_CHECK_CLOSE("probs", probs_sparse, probs_dense, B * H * Tq * Tk, 1e-6f, 1e-5f);

    /* Gradients laid out as d_q, then d_k, then d_v. */
    float *d_k_dense = grads_dense + B * Tq * C, *d_v_dense = d_k_dense + B * Tk * C;
    float *d_k_sparse = grads_sparse + B * Tq * C, *d_v_sparse = d_k_sparse + B * Tk * C;
    OD_CHECK(od_attention_backward(grads_dense, d_k_dense, d_v_dense, data.d_out, probs_dense, data.q,
                                   data.k, data.v, B, Tq, Tk, H, Dh, &err) == 0);
    OD_CHECK(od_sparse_attention_backward(grads_sparse, d_k_sparse, d_v_sparse, data.d_out,
                                          probs_sparse, data.q, data.k, data.v, data.index, B, Tq,
                                          Tk, Tk, H, Dh, &err) == 0);
    OD_CHECK_CLOSE("gradients", grads_sparse, grads_dense, B * (Tq + 2 * Tk) * C, 1e-5f, 1e-4f);

    od_free(out_dense);
    od_free(out_sparse);
    od_free(probs_dense);
    od_free(probs_sparse);
    od_free(grads_dense);
    od_free(grads_sparse);
    kernel_data_release(&data);
}

static void sparse_with_all_keys_equals_dense(void)
{
    const int64_t heads_and_widths[][2] = {{3, 7}, {16, 2}, {1, 16}, {2, 24}, {4, 20}, {8, 32}};
    for (size_t n = 0; n < sizeof heads_and_widths / sizeof heads_and_widths[0]; n++)
        check_sparse_equals_dense(heads_and_widths[n][0], heads_and_widths[n][1]);
}

/* A second backward call adds the same gradients again; NULL gradients are
 * skipped; a forward without saved probabilities gives the same output. */
static void kernels_accumulate_and_skip(void)
{
    const int64_t B = 1, Tq = 9, Tk = 12, K = 5, H = 2, Dh = 6, C = H * Dh;
    kernel_data data = kernel_data_random(B, Tq, Tk, K, H, Dh, 12);
    for (int sparse = 0; sparse <= 1; sparse++) {
        const int64_t keys = sparse ? K : Tk;
        float *out = od_alloc_floats(B * Tq * C), *out_unsaved = od_alloc_floats(B * Tq * C);
        float *probs = od_alloc_floats(B * H * Tq * keys);
        float *once = od_alloc_floats(B * Tk * C), *twice = od_alloc_floats(B * Tk * C);
        od_error err;
        if (sparse) {
            OD_CHECK(od_sparse_attention_forward(out, probs, data.q, data.k, data.v, data.index, B,
                                                 Tq, Tk, K, H, Dh, &err) == 0);
            OD_CHECK(od_sparse_attention_forward(out_unsaved, NULL, data.q, data.k, data.v,
                                                 data.index, B, Tq, Tk, K, H, Dh, &err) == 0);
        } else {
            OD_CHECK(od_attention_forward(out, probs, data.q, data.k, data.v, B, Tq, Tk, H, Dh,
                                          &err) == 0);
            OD_CHECK(od_attention_forward(out_unsaved, NULL, data.q, data.k, data.v, B, Tq, Tk, H,
                                          Dh, &err) == 0);
        }
        OD_CHECK_IDENTICAL("out without saved probs", out_unsaved, out, B * Tq * C);

        /* d_k alone, once into `once` and twice into `twice`. */
        for (int call = 0; call < 3; call++) {
            float *target = call == 0 ? once : twice;
            int status = sparse ? od_sparse_attention_backward(NULL, target, NULL, data.d_out, probs,
                                                               data.q, data.k, data.v, data.index,
                                                               B, Tq, Tk, K, H, Dh, &err)
                                : od_attention_backward(NULL, target, NULL, data.d_out, probs,
                                                        data.q, data.k, data.v, B, Tq, Tk, H, Dh,
                                                        &err);
            OD_CHECK(status == 0);
        }
        float max_abs = 0.0f;
        for (int64_t n = 0; n < B * Tk * C; n++) {
            once[n] *= 2.0f;
            max_abs = fmaxf(max_abs, fabsf(once[n]));
        }
        OD_CHECK(max_abs > 0.1f);
        OD_CHECK_CLOSE(sparse ? "sparse d_k accumulated" : "dense d_k accumulated", twice, once,
                       B * Tk * C, 1e-6f, 1e-6f);
        od_free(out);
        od_free(out_unsaved);
        od_free(probs);
        od_free(once);
        od_free(twice);
    }
    kernel_data_release(&data);
}

/* The sparse kernels give each query and each key to one thread, with a
 * fixed order inside, so 1 and 2 threads agree bit for bit. Hot keys that
 * many queries list exercise the key-major pass. */
static void check_identical_across_thread_counts(int64_t H, int64_t Dh)
{
    const int64_t B = 2, Tq = 300, Tk = 220, K = 19, C = H * Dh;
    kernel_data data = kernel_data_random(B, Tq, Tk, K, H, Dh, 13);
    for (int64_t row = 0; row < B * Tq; row += 3)
        data.index[row * K + 2] = 7;

    float *results[2];
    const int64_t size = B * Tq * C + B * H * Tq * K + B * (Tq + 2 * Tk) * C;
    const int saved_threads = omp_get_max_threads();
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run == 0 ? 1 : 2);
        float *all = results[run] = od_alloc_floats(size);
        float *out = all, *probs = out + B * Tq * C, *d_q = probs + B * H * Tq * K;
        float *d_k = d_q + B * Tq * C, *d_v = d_k + B * Tk * C;
        od_error err;
        OD_CHECK(od_sparse_attention_forward(out, probs, data.q, data.k, data.v, data.index, B, Tq, Tk,
                                             K, H, Dh, &err) == 0);
        OD_CHECK(od_sparse_attention_backward(d_q, d_k, d_v, data.d_out, probs, data.q, data.k, data.v,
                                              data.index, B, Tq, Tk, K, H, Dh, &err) == 0);
    }
    omp_set_num_threads(saved_threads);
    OD_CHECK_IDENTICAL("1 thread vs 2 threads", results[1], results[0], size);
    od_free(results[0]);
    od_free(results[1]);
    kernel_data_release(&data);
}

static void sparse_identical_across_thread_counts(void)
{
    check_identical_across_thread_counts(4, 9);
    check_identical_across_thread_counts(8, 4);
}

static void kernel_rejects_invalid_arguments(void)
{
    const int64_t B = 2, Tq = 4, Tk = 6, K = 3, H = 2, Dh = 4, C = H * Dh;
    kernel_data data = kernel_data_random(B, Tq, Tk, K, H, Dh, 14);
    float *out = od_alloc_floats(B * Tq * C), *probs = od_alloc_floats(B * H * Tq * Tk);
    float *d_q = od_alloc_floats(B * Tq * C);
    od_error err;

    data.index[(1 * Tq + 3) * K + 2] = (int32_t)Tk;
    OD_CHECK(od_sparse_attention_forward(out, probs, data.q, data.k, data.v, data.index, B, Tq, Tk, K,
                                         H, Dh, &err) == -1);
    OD_CHECK(strstr(err.message, "batch item 1, query 3, slot 2 lists key 6") != NULL);
    OD_CHECK(strstr(err.message, "[0, 6)") != NULL);

    data.index[(1 * Tq + 3) * K + 2] = 0;
    data.index[1] = -1;
    OD_CHECK(od_sparse_attention_backward(d_q, NULL, NULL, data.d_out, probs, data.q, data.k, data.v,
                                          data.index, B, Tq, Tk, K, H, Dh, &err) == -1);
    OD_CHECK(strstr(err.message, "batch item 0, query 0, slot 1 lists key -1") != NULL);
    OD_CHECK(strstr(err.message, "sparse attention backward") != NULL);

    OD_CHECK(od_sparse_attention_forward(out, probs, data.q, data.k, data.v, NULL, B, Tq, Tk, K, H,
                                         Dh, &err) == -1);
    OD_CHECK(strstr(err.message, "index array is NULL") != NULL);
    OD_CHECK(od_sparse_attention_forward(out, probs, data.q, data.k, data.v, data.index, B, Tq, Tk, 0,
                                         H, Dh, &err) == -1);
    OD_CHECK(strstr(err.message, "K=0") != NULL);
    OD_CHECK(od_attention_forward(out, probs, data.q, data.k, data.v, B, 0, Tk, H, Dh, &err) == -1);
    OD_CHECK(strstr(err.message, "Tq=0") != NULL);
    OD_CHECK(od_attention_backward(d_q, NULL, NULL, data.d_out, probs, data.q, data.k, data.v, B, Tq,
                                   Tk, H, -2, &err) == -1);
    OD_CHECK(strstr(err.message, "Dh=-2") != NULL);

    od_free(out);
    od_free(probs);
    od_free(d_q);
    kernel_data_release(&data);
}

/* ---- layer ----------------------------------------------------------------- */

static void check_layer_reference(const char *name)
{
    od_safetensors *st = od_test_load_reference(name);
    if (st == NULL)
        return;
    const int64_t B = metadata_int(st, "B"), Tq = metadata_int(st, "Tq"),
                  Tk = metadata_int(st, "Tk"), C = metadata_int(st, "C"),
                  H = metadata_int(st, "H"), K = metadata_int(st, "K");
    const int self_attention = (int)metadata_int(st, "self_attention");
    const char *tensor_names[] = {"query", "out", "probs", "d_out", "d_query", "in_proj_weight",
                                  "in_proj_bias", "out_proj_weight", "out_proj_bias",
                                  "d_in_proj_weight", "d_in_proj_bias", "d_out_proj_weight",
                                  "d_out_proj_bias", "key", "value", "d_key", "d_value"};
    enum { QUERY, OUT, PROBS, D_OUT, D_QUERY, W_IN, B_IN, W_OUT, B_OUT, D_W_IN, D_B_IN, D_W_OUT,
           D_B_OUT, KEY, VALUE, D_KEY, D_VALUE, TENSOR_COUNT };
    od_tensor *t[TENSOR_COUNT] = {NULL};
    int missing = 0;
    for (int n = 0; n < TENSOR_COUNT; n++) {
        if (self_attention && n >= KEY)
            continue;
        t[n] = od_test_tensor(st, tensor_names[n]);
        missing |= t[n] == NULL;
    }
    int32_t *index = NULL;
    if (K > 0) {
        int64_t count = 0;
        index = od_safetensors_get_int(st, "index", &count, NULL);
        missing |= index == NULL || count != B * Tq * K;
    }
    OD_CHECK(!missing);
    od_mha_saved saved = {NULL, NULL, NULL, NULL, NULL};
    od_error err;
    OD_CHECK(od_mha_saved_alloc(&saved, B, Tq, Tk, C, H, K, &err) == 0);
    float *out = od_alloc_floats(B * Tq * C), *out_unsaved = od_alloc_floats(B * Tq * C);
    float *d_query = od_alloc_floats(B * Tq * C), *d_key = od_alloc_floats(B * Tk * C),
          *d_value = od_alloc_floats(B * Tk * C);
    od_mha_params grads = {od_alloc_floats(3 * C * C), od_alloc_floats(3 * C),
                           od_alloc_floats(C * C), od_alloc_floats(C)};
    if (missing || saved.q == NULL)
        goto done;

    od_mha_params params = {t[W_IN]->data, t[B_IN]->data, t[W_OUT]->data, t[B_OUT]->data};
    const float *query = t[QUERY]->data;
    const float *key = self_attention ? query : t[KEY]->data;
    const float *value = self_attention ? query : t[VALUE]->data;
    const int32_t *layer_index = K > 0 ? index : NULL;
    OD_CHECK(od_mha_forward(out, &saved, query, key, value, layer_index, &params, B, Tq, Tk, C, H, K,
                            &err) == 0);
    OD_CHECK_CLOSE("out", out, t[OUT]->data, B * Tq * C, LAYER_ATOL, LAYER_RTOL);
    OD_CHECK_CLOSE("probs", saved.probs, t[PROBS]->data, B * H * Tq * (K > 0 ? K : Tk), LAYER_ATOL,
                   LAYER_RTOL);
    OD_CHECK(od_mha_forward(out_unsaved, NULL, query, key, value, layer_index, &params, B, Tq, Tk, C,
                            H, K, &err) == 0);
    OD_CHECK_IDENTICAL("out without saved activations", out_unsaved, out, B * Tq * C);

    /* Self-attention passes one gradient buffer for all three inputs. */
    float *d_key_target = self_attention ? d_query : d_key;
    float *d_value_target = self_attention ? d_query : d_value;
    OD_CHECK(od_mha_backward(d_query, d_key_target, d_value_target, &grads, t[D_OUT]->data, &saved,
                             query, key, value, layer_index, &params, B, Tq, Tk, C, H, K, &err) == 0);
    OD_CHECK_CLOSE("d_query", d_query, t[D_QUERY]->data, B * Tq * C, LAYER_ATOL, LAYER_RTOL);
    if (!self_attention) {
        OD_CHECK_CLOSE("d_key", d_key, t[D_KEY]->data, B * Tk * C, LAYER_ATOL, LAYER_RTOL);
        OD_CHECK_CLOSE("d_value", d_value, t[D_VALUE]->data, B * Tk * C, LAYER_ATOL, LAYER_RTOL);
    }
    OD_CHECK_CLOSE("d_in_proj_weight", grads.in_proj_weight, t[D_W_IN]->data, 3 * C * C, LAYER_ATOL,
                   LAYER_RTOL);
    OD_CHECK_CLOSE("d_in_proj_bias", grads.in_proj_bias, t[D_B_IN]->data, 3 * C, LAYER_ATOL,
                   LAYER_RTOL);
    OD_CHECK_CLOSE("d_out_proj_weight", grads.out_proj_weight, t[D_W_OUT]->data, C * C, LAYER_ATOL,
                   LAYER_RTOL);
    OD_CHECK_CLOSE("d_out_proj_bias", grads.out_proj_bias, t[D_B_OUT]->data, C, LAYER_ATOL,
                   LAYER_RTOL);

    /* With every gradient NULL the backward has nothing to do and succeeds. */
    OD_CHECK(od_mha_backward(NULL, NULL, NULL, NULL, t[D_OUT]->data, &saved, query, key, value,
                             layer_index, &params, B, Tq, Tk, C, H, K, &err) == 0);

done:
    od_mha_saved_release(&saved);
    od_free(out);
    od_free(out_unsaved);
    od_free(d_query);
    od_free(d_key);
    od_free(d_value);
    od_free(grads.in_proj_weight);
    od_free(grads.in_proj_bias);
    od_free(grads.out_proj_weight);
    od_free(grads.out_proj_bias);
    free(index);
    for (int n = 0; n < TENSOR_COUNT; n++)
        od_tensor_free(t[n]);
    od_safetensors_free(st);
}

static void dense_layer_matches_torch(void)
{
    check_layer_reference("attention_layer_dense");
    check_layer_reference("attention_layer_dense_1head");
}

static void sparse_layer_matches_torch(void)
{
    check_layer_reference("attention_layer_sparse");
    check_layer_reference("attention_layer_sparse_cross");
}

static void layer_rejects_invalid_arguments(void)
{
    const int64_t B = 1, T = 4, C = 6;
    float *buffer = od_alloc_floats(3 * C * C + 3 * C + C * C + C + 2 * B * T * C);
    od_mha_params params = {buffer, buffer + 3 * C * C, buffer + 3 * C * C + 3 * C,
                            buffer + 4 * C * C + 3 * C};
    float *x = buffer + 4 * C * C + 4 * C, *out = x + B * T * C;
    int32_t index[4 * 2] = {0, 1, 2, 3, 0, 1, 2, 9};
    od_mha_saved saved;
    od_error err;

    OD_CHECK(od_mha_forward(out, NULL, x, x, x, NULL, &params, B, T, T, C, 4, 0, &err) == -1);
    OD_CHECK(strstr(err.message, "6 channels do not split into 4 heads") != NULL);
    OD_CHECK(od_mha_forward(out, NULL, x, x, x, index, &params, B, T, T, C, 2, 0, &err) == -1);
    OD_CHECK(strstr(err.message, "K=0") != NULL);
    OD_CHECK(od_mha_forward(out, NULL, x, x, x, index, &params, B, T, T, C, 2, 2, &err) == -1);
    OD_CHECK(strstr(err.message, "query 3, slot 1 lists key 9") != NULL);
    OD_CHECK(od_mha_saved_alloc(&saved, B, T, T, C, 0, 0, &err) == -1);
    OD_CHECK(saved.q == NULL && saved.probs == NULL);
    OD_CHECK(od_mha_backward(out, NULL, NULL, NULL, x, NULL, x, x, x, NULL, &params, B, T, T, C, 2, 0,
                             &err) == -1);
    OD_CHECK(strstr(err.message, "saved") != NULL);
    od_free(buffer);
}

int main(void)
{
    OD_RUN(dense_kernel_matches_torch);
    OD_RUN(sparse_kernel_matches_torch);
    OD_RUN(sparse_with_all_keys_equals_dense);
    OD_RUN(kernels_accumulate_and_skip);
    OD_RUN(sparse_identical_across_thread_counts);
    OD_RUN(kernel_rejects_invalid_arguments);
    OD_RUN(dense_layer_matches_torch);
    OD_RUN(sparse_layer_matches_torch);
    OD_RUN(layer_rejects_invalid_arguments);
    return od_test_finish();
}
