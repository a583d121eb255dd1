/* Softmax against PyTorch (scripts/refs/layers.py, float64 autograd):
 * outputs and input gradients, logits large enough to overflow exp()
 * without the max shift, in-place forwards, accumulation, and identical
 * results across thread counts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/threads.h"
#include "nn/softmax.h"
#include "testlib.h"

/* Tolerances: exp is within 2 ulp and each probability goes through one
 * sum of at most 120 terms and one division, so 1e-5 relative; 1e-7
 * absolute covers probabilities that underflow next to 1. */
#define SOFTMAX_ATOL 1e-7f
#define SOFTMAX_RTOL 1e-5f
/* The gradient y * (dy - sum(dy y)) subtracts numbers of size |dy|,
 * about 3 here, so its absolute error is a few float roundings of 3. */
#define SOFTMAX_GRAD_ATOL 2e-6f

static od_tensor *case_tensor(const od_safetensors *st, int index, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "case%d.%s", index, name);
    return od_test_tensor(st, key);
}

static void softmax_matches_torch(void)
{
    od_safetensors *st = od_test_load_reference("layers_softmax");
    if (st == NULL)
        return;
    int64_t n = 0;
    int32_t *count = od_safetensors_get_int(st, "count", &n, NULL);
    const int cases = count != NULL && n == 1 ? count[0] : 0;
    free(count);
    OD_CHECK(cases == 4);

    for (int i = 0; i < cases; i++) {
        char key[32];
        snprintf(key, sizeof key, "case%d.dims", i);
        int64_t dim_count = 0;
        int32_t *dims = od_safetensors_get_int(st, key, &dim_count, NULL);
        od_tensor *x = case_tensor(st, i, "x");
        od_tensor *d_out = case_tensor(st, i, "d_out");
        od_tensor *want_out = case_tensor(st, i, "out");
        od_tensor *want_d_x = case_tensor(st, i, "d_x");
        OD_CHECK(dims != NULL && dim_count == 2);
        if (dims != NULL && dim_count == 2 && x && d_out && want_out && want_d_x) {
            const int64_t rows = dims[0], channels = dims[1], total = rows * channels;
            printf("softmax case %d: rows %lld, channels %lld\n", i, (long long)rows,
                   (long long)channels);
            float *out = od_alloc_floats(total);
            float *d_x = od_alloc_floats(total);
            float *twice = od_alloc_floats(total);

            od_softmax_forward(out, x->data, rows, channels);
            OD_CHECK_CLOSE("softmax out", out, want_out->data, total, SOFTMAX_ATOL, SOFTMAX_RTOL);
            od_softmax_backward(d_x, d_out->data, out, rows, channels);
            OD_CHECK_CLOSE("softmax d_x", d_x, want_d_x->data, total, SOFTMAX_GRAD_ATOL,
                           SOFTMAX_RTOL);

            od_softmax_backward(d_x, d_out->data, out, rows, channels);
            for (int64_t k = 0; k < total; k++)
                twice[k] = 2.0f * want_d_x->data[k];
            OD_CHECK_CLOSE("softmax d_x twice", d_x, twice, total, 2 * SOFTMAX_GRAD_ATOL,
                           SOFTMAX_RTOL);

            memcpy(out, x->data, (size_t)total * sizeof(float));
            od_softmax_forward(out, out, rows, channels);
            OD_CHECK_CLOSE("softmax in place", out, want_out->data, total, SOFTMAX_ATOL,
                           SOFTMAX_RTOL);

            od_free(out);
            od_free(d_x);
            od_free(twice);
        }
        free(dims);
        od_tensor_free(x);
        od_tensor_free(d_out);
        od_tensor_free(want_out);
        od_tensor_free(want_d_x);
    }
    od_safetensors_free(st);
}

static void softmax_rows_sum_to_one(void)
{
    /* logits near the float limit still give a finite distribution */
    const float in[4] = {1e30f, 1e30f, -1e30f, 0.0f};
    float out[4];
    od_softmax_forward(out, in, 1, 4);
    OD_CHECK(fabsf(out[0] - 0.5f) < 1e-7f);
    OD_CHECK(fabsf(out[1] - 0.5f) < 1e-7f);
    OD_CHECK(out[2] == 0.0f);
    OD_CHECK(out[3] == 0.0f);
}

static void softmax_identical_across_threads(void)
{
    const int64_t rows = 3000, channels = 120, total = rows * channels;
    float *in = od_alloc_floats(total);
    float *out[2] = {od_alloc_floats(total), od_alloc_floats(total)};
    for (int64_t k = 0; k < total; k++)
        in[k] = sinf((float)k * 0.731f) * 4.0f;
    const int saved_threads = od_get_num_threads();
    for (int t = 0; t < 2; t++) {
        od_set_num_threads(t + 1);
        od_softmax_forward(out[t], in, rows, channels);
    }
    od_set_num_threads(saved_threads);
    OD_CHECK_IDENTICAL("softmax 1 vs 2 threads", out[0], out[1], total);
    od_free(in);
    od_free(out[0]);
    od_free(out[1]);
}

int main(void)
{
    OD_RUN(softmax_matches_torch);
    OD_RUN(softmax_rows_sum_to_one);
    OD_RUN(softmax_identical_across_threads);
    return od_test_finish();
}
