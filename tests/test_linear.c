/* Linear layer against PyTorch (scripts/refs/layers.py, float64 autograd):
 * output, input, weight and bias gradients, with and without a bias, and
 * accumulation of every gradient over two backward calls. */
#include <stdio.h>
#include <stdlib.h>

#include "core/mem.h"
#include "nn/linear.h"
#include "testlib.h"

/* Tolerances: oneDNN's sgemm sums up to 130 float products of O(1)
 * values, and d_weight sums 13 rows, so results sit within about 1e-6 of
 * the float64 reference; 1e-5 absolute and relative leaves room for the
 * blocked summation order. */
#define LINEAR_ATOL 1e-5f
#define LINEAR_RTOL 1e-5f

static od_tensor *case_tensor(const od_safetensors *st, int index, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "case%d.%s", index, name);
    return od_test_tensor(st, key);
}

static void scale_into(float *dst, const float *src, int64_t count, float factor)
{
    for (int64_t i = 0; i < count; i++)
        dst[i] = factor * src[i];
}

static void linear_matches_torch(void)
{
    od_safetensors *st = od_test_load_reference("layers_linear");
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
        OD_CHECK(dims != NULL && dim_count == 4);
        if (dims == NULL || dim_count != 4) {
            free(dims);
            continue;
        }
        const int64_t rows = dims[0], n_in = dims[1], n_out = dims[2];
        const int has_bias = dims[3];
        free(dims);
        printf("linear case %d: rows %lld, in %lld, out %lld, bias %d\n", i, (long long)rows,
               (long long)n_in, (long long)n_out, has_bias);

        od_tensor *x = case_tensor(st, i, "x");
        od_tensor *weight = case_tensor(st, i, "weight");
        od_tensor *d_out = case_tensor(st, i, "d_out");
        od_tensor *want_out = case_tensor(st, i, "out");
        od_tensor *want_d_x = case_tensor(st, i, "d_x");
        od_tensor *want_d_w = case_tensor(st, i, "d_weight");
        od_tensor *bias = has_bias ? case_tensor(st, i, "bias") : NULL;
        od_tensor *want_d_b = has_bias ? case_tensor(st, i, "d_bias") : NULL;
        if (x && weight && d_out && want_out && want_d_x && want_d_w &&
            (!has_bias || (bias && want_d_b))) {
            float *out = od_alloc_floats(rows * n_out);
            float *d_x = od_alloc_floats(rows * n_in);
            float *d_w = od_alloc_floats(n_out * n_in);
            float *d_b = od_alloc_floats(n_out);
            float *twice = od_alloc_floats(rows * n_in + n_out * n_in + n_out);

            /* out starts with garbage, which the forward must overwrite */
            for (int64_t k = 0; k < rows * n_out; k++)
                out[k] = 1e6f;
            od_linear_forward(out, x->data, weight->data, bias ? bias->data : NULL, rows, n_in,
                              n_out);
            OD_CHECK_CLOSE("linear out", out, want_out->data, rows * n_out, LINEAR_ATOL,
                           LINEAR_RTOL);

            od_linear_backward(d_x, d_w, has_bias ? d_b : NULL, d_out->data, x->data,
                               weight->data, rows, n_in, n_out);
            OD_CHECK_CLOSE("linear d_x", d_x, want_d_x->data, rows * n_in, LINEAR_ATOL,
                           LINEAR_RTOL);
            OD_CHECK_CLOSE("linear d_weight", d_w, want_d_w->data, n_out * n_in, LINEAR_ATOL,
                           LINEAR_RTOL);
            if (has_bias)
                OD_CHECK_CLOSE("linear d_bias", d_b, want_d_b->data, n_out, LINEAR_ATOL,
                               LINEAR_RTOL);

            /* a second backward adds the same gradients again */
            od_linear_backward(d_x, d_w, has_bias ? d_b : NULL, d_out->data, x->data,
                               weight->data, rows, n_in, n_out);
            scale_into(twice, want_d_x->data, rows * n_in, 2.0f);
            OD_CHECK_CLOSE("linear d_x twice", d_x, twice, rows * n_in, 2 * LINEAR_ATOL,
                           LINEAR_RTOL);
            scale_into(twice, want_d_w->data, n_out * n_in, 2.0f);
            OD_CHECK_CLOSE("linear d_weight twice", d_w, twice, n_out * n_in, 2 * LINEAR_ATOL,
                           LINEAR_RTOL);
            if (has_bias) {
                scale_into(twice, want_d_b->data, n_out, 2.0f);
                OD_CHECK_CLOSE("linear d_bias twice", d_b, twice, n_out, 2 * LINEAR_ATOL,
                               LINEAR_RTOL);
            }

            /* NULL gradients are skipped: only d_x changes */
            od_linear_backward(d_x, NULL, NULL, d_out->data, x->data, weight->data, rows, n_in,
                               n_out);
            scale_into(twice, want_d_x->data, rows * n_in, 3.0f);
            OD_CHECK_CLOSE("linear d_x thrice", d_x, twice, rows * n_in, 3 * LINEAR_ATOL,
                           LINEAR_RTOL);
            scale_into(twice, want_d_w->data, n_out * n_in, 2.0f);
            OD_CHECK_CLOSE("linear d_weight unchanged", d_w, twice, n_out * n_in,
                           2 * LINEAR_ATOL, LINEAR_RTOL);

            od_free(out);
            od_free(d_x);
            od_free(d_w);
            od_free(d_b);
            od_free(twice);
        }
        od_tensor_free(x);
        od_tensor_free(weight);
        od_tensor_free(d_out);
        od_tensor_free(want_out);
        od_tensor_free(want_d_x);
        od_tensor_free(want_d_w);
        od_tensor_free(bias);
        od_tensor_free(want_d_b);
    }
    od_safetensors_free(st);
}

static void linear_small_example(void)
{
    /* x = [1, 2], W = [[1, 0], [0, 1], [1, 1]], b = [0.5, -1, 0] -> y = [1.5, 1, 3] */
    const float x[2] = {1, 2}, w[6] = {1, 0, 0, 1, 1, 1}, b[3] = {0.5f, -1, 0};
    const float want[3] = {1.5f, 1.0f, 3.0f};
    float y[3];
    od_linear_forward(y, x, w, b, 1, 2, 3);
    OD_CHECK_CLOSE("small linear", y, want, 3, 0.0f, 0.0f);
}

int main(void)
{
    OD_RUN(linear_matches_torch);
    OD_RUN(linear_small_example);
    return od_test_finish();
}
