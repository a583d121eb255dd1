/* Activations against PyTorch (scripts/refs/layers.py, float64 autograd):
 * forward outputs, input gradients, accumulation into d_in, in-place
 * forwards, GEGLU's halves, and the vectorised exp used by GELU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "nn/activation.h"
#include "testlib.h"

/* Tolerances. ReLU and ReLU6 select or copy values, so they must match
 * exactly. LeakyReLU multiplies by 0.2f, which differs from 0.2 in the last
 * bit, hence 1e-6 relative. GELU's erfc has a relative error below 1.2e-7
 * and exp about 2 ulp, so a few roundings more stay within 2e-6 relative.
 * The 1e-7 absolute bound covers outputs that are tiny next to the input.
 * GEGLU's gate gradient a * (Phi(b) + b phi(b)) cancels near b = -0.75,
 * where terms of size |a d_out| * 0.3 (up to about 3 here) leave a result
 * near 0.01, so a few float roundings of those terms allow 2e-6 absolute. */
#define EXACT_ATOL 0.0f
#define EXACT_RTOL 0.0f
#define LEAKY_RTOL 1e-6f
#define GELU_ATOL 1e-7f
#define GELU_RTOL 2e-6f
#define GEGLU_GRAD_ATOL 2e-6f

#define LEAKY_SLOPE 0.2f

typedef void (*forward_fn)(float *out, const float *in, int64_t count);
typedef void (*backward_fn)(float *d_in, const float *d_out, const float *saved, int64_t count);

static void leaky_forward(float *out, const float *in, int64_t count)
{
    od_leaky_relu_forward(out, in, count, LEAKY_SLOPE);
}

static void leaky_backward(float *d_in, const float *d_out, const float *in, int64_t count)
{
    od_leaky_relu_backward(d_in, d_out, in, count, LEAKY_SLOPE);
}

static od_tensor *case_tensor(const od_safetensors *st, const char *prefix, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    return od_test_tensor(st, key);
}

/* Runs one activation on the shared input and checks the output, the
 * gradient, that a second backward adds the gradient again, and that the
 * forward works in place. backward_reads_output selects the buffer the
 * backward takes: the forward's output (1) or its input (0). */
static void check_activation(const char *name, forward_fn forward, backward_fn backward,
                             int backward_reads_output, float atol, float rtol)
{
    od_safetensors *st = od_test_load_reference("layers_activation");
    if (st == NULL)
        return;
    od_tensor *x = od_test_tensor(st, "x");
    od_tensor *d_out = od_test_tensor(st, "d_out");
    od_tensor *want_out = case_tensor(st, name, "out");
    od_tensor *want_d_in = case_tensor(st, name, "d_in");
    if (x == NULL || d_out == NULL || want_out == NULL || want_d_in == NULL)
        goto done;
    const int64_t count = od_tensor_numel(x);
    float *out = od_alloc_floats(count);
    float *d_in = od_alloc_floats(count);
    float *twice = od_alloc_floats(count);

    forward(out, x->data, count);
    OD_CHECK_CLOSE(name, out, want_out->data, count, atol, rtol);

    const float *saved = backward_reads_output ? out : x->data;
    backward(d_in, d_out->data, saved, count);
    OD_CHECK_CLOSE(name, d_in, want_d_in->data, count, atol, rtol);

    backward(d_in, d_out->data, saved, count);
    for (int64_t i = 0; i < count; i++)
        twice[i] = 2.0f * want_d_in->data[i];
    OD_CHECK_CLOSE("second backward accumulates", d_in, twice, count, 2.0f * atol, rtol);

    /* in place: out == in */
    memcpy(out, x->data, (size_t)count * sizeof(float));
    forward(out, out, count);
    OD_CHECK_CLOSE("in-place forward", out, want_out->data, count, atol, rtol);

    od_free(out);
    od_free(d_in);
    od_free(twice);
done:
    od_tensor_free(x);
    od_tensor_free(d_out);
    od_tensor_free(want_out);
    od_tensor_free(want_d_in);
    od_safetensors_free(st);
}

static void relu_matches_torch(void)
{
    check_activation("relu", od_relu_forward, od_relu_backward, 1, EXACT_ATOL, EXACT_RTOL);
}

static void relu6_matches_torch(void)
{
    check_activation("relu6", od_relu6_forward, od_relu6_backward, 1, EXACT_ATOL, EXACT_RTOL);
}

static void leaky_relu_matches_torch(void)
{
    check_activation("leaky_relu", leaky_forward, leaky_backward, 0, 0.0f, LEAKY_RTOL);
}

static void gelu_matches_torch(void)
{
    check_activation("gelu", od_gelu_forward, od_gelu_backward, 0, GELU_ATOL, GELU_RTOL);
}

static void gelu_tanh_matches_torch(void)
{
    check_activation("gelu_tanh", od_gelu_tanh_forward, od_gelu_tanh_backward, 0, GELU_ATOL,
                     GELU_RTOL);
}

static void relu_kinks_have_zero_gradient(void)
{
    /* PyTorch passes no gradient at exactly 0 (ReLU, ReLU6) nor at 6 (ReLU6). */
    const float in[3] = {0.0f, 6.0f, 3.0f};
    const float d_out[3] = {1.0f, 1.0f, 1.0f};
    float out[3], d_in[3] = {0.0f, 0.0f, 0.0f};
    od_relu6_forward(out, in, 3);
    od_relu6_backward(d_in, d_out, out, 3);
    OD_CHECK(d_in[0] == 0.0f);
    OD_CHECK(d_in[1] == 0.0f);
    OD_CHECK(d_in[2] == 1.0f);

    float relu_d_in[1] = {0.0f};
    od_relu_forward(out, in, 1);
    od_relu_backward(relu_d_in, d_out, out, 1);
    OD_CHECK(relu_d_in[0] == 0.0f);
}

static void geglu_matches_torch(void)
{
    od_safetensors *st = od_test_load_reference("layers_activation");
    if (st == NULL)
        return;
    for (int i = 0; i < 3; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "geglu%d", i);
        int64_t dim_count = 0;
        char key[64];
        snprintf(key, sizeof key, "%s.dims", prefix);
        int32_t *dims = od_safetensors_get_int(st, key, &dim_count, NULL);
        od_tensor *x = case_tensor(st, prefix, "x");
        od_tensor *d_out = case_tensor(st, prefix, "d_out");
        od_tensor *want_out = case_tensor(st, prefix, "out");
        od_tensor *want_d_in = case_tensor(st, prefix, "d_in");
        OD_CHECK(dims != NULL && dim_count == 2);
        if (dims != NULL && dim_count == 2 && x && d_out && want_out && want_d_in) {
            const int64_t rows = dims[0], channels = dims[1];
            float *out = od_alloc_floats(rows * channels);
            float *d_in = od_alloc_floats(rows * 2 * channels);
            od_geglu_forward(out, x->data, rows, channels);
            OD_CHECK_CLOSE(prefix, out, want_out->data, rows * channels, GELU_ATOL, GELU_RTOL);
            od_geglu_backward(d_in, d_out->data, x->data, rows, channels);
            OD_CHECK_CLOSE(prefix, d_in, want_d_in->data, rows * 2 * channels,
                           GEGLU_GRAD_ATOL, GELU_RTOL);
            od_free(out);
            od_free(d_in);
        }
        free(dims);
        od_tensor_free(x);
        od_tensor_free(d_out);
        od_tensor_free(want_out);
        od_tensor_free(want_d_in);
    }
    od_safetensors_free(st);
}

static void geglu_value_is_first_half(void)
{
    /* a = 2 (value, first half), b = 1 (gate): out = 2 * gelu(1) = 2 * 0.8413447. */
    const float in[2] = {2.0f, 1.0f};
    float out[1];
    od_geglu_forward(out, in, 1, 1);
    OD_CHECK(fabsf(out[0] - 2.0f * 0.84134475f) < 1e-6f);
}

/* Large buffers take the multi-threaded path; each element is computed
 * alone, so the result must equal small serial calls bit for bit. */
static void large_buffers_match_serial(void)
{
    const int64_t count = 200003;
    const int64_t piece = 1000;
    float *in = od_alloc_floats(count);
    float *whole = od_alloc_floats(count);
    float *pieces = od_alloc_floats(count);
    for (int64_t i = 0; i < count; i++)
        in[i] = (float)((i * 7919) % 2001 - 1000) * 0.01f;
    od_gelu_forward(whole, in, count);
    for (int64_t i = 0; i < count; i += piece)
        od_gelu_forward(pieces + i, in + i, count - i < piece ? count - i : piece);
    OD_CHECK_IDENTICAL("gelu threaded vs serial", whole, pieces, count);
    od_free(in);
    od_free(whole);
    od_free(pieces);
}

static void exp_vec_is_accurate(void)
{
    /* Relative error within 3 ulp (2^-23 each) over the normal range, 0 in
     * the underflow range and no infinity beyond the top of the range. */
    double worst = 0.0;
    for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
        double want = exp((double)x);
        double error = fabs((double)od_exp_vec(x) - want) / want;
        if (error > worst)
            worst = error;
    }
    printf("exp_vec: worst relative error %.3g\n", worst);
    OD_CHECK(worst < 3.0 * 1.1920929e-7);
    OD_CHECK(od_exp_vec(0.0f) == 1.0f);
    OD_CHECK(od_exp_vec(-100.0f) == 0.0f);
    OD_CHECK(isfinite(od_exp_vec(1000.0f)));
    OD_CHECK(isnan(od_exp_vec(NAN)));
}

/* The row reductions cover whole 16-float blocks, a scalar tail, and
 * lengths 0 and 1; the maximum is exact, sums within float rounding. */
static void row_reductions_match_double(void)
{
    float a[40], b[40];
    for (int i = 0; i < 40; i++) {
        a[i] = sinf((float)i * 1.3f) * 3.0f;
        b[i] = cosf((float)i * 0.7f);
    }
    for (int n = 0; n <= 40; n++) {
        double sum = 0.0, dot = 0.0, squares = 0.0;
        float max = -INFINITY;
        for (int i = 0; i < n; i++) {
            sum += a[i];
            dot += (double)a[i] * b[i];
            squares += ((double)a[i] - 0.25) * ((double)a[i] - 0.25);
            max = a[i] > max ? a[i] : max;
        }
        OD_CHECK(fabs(od_row_sum(a, n) - sum) < 1e-5);
        OD_CHECK(fabs(od_row_dot(a, b, n) - dot) < 1e-5);
        OD_CHECK(fabs(od_row_sum_squared_deviation(a, n, 0.25f) - squares) < 1e-4);
        OD_CHECK(od_row_max(a, n) == max);
    }
}

int main(void)
{
    OD_RUN(relu_matches_torch);
    OD_RUN(relu6_matches_torch);
    OD_RUN(leaky_relu_matches_torch);
    OD_RUN(gelu_matches_torch);
    OD_RUN(gelu_tanh_matches_torch);
    OD_RUN(relu_kinks_have_zero_gradient);
    OD_RUN(geglu_matches_torch);
    OD_RUN(geglu_value_is_first_half);
    OD_RUN(large_buffers_match_serial);
    OD_RUN(exp_vec_is_accurate);
    OD_RUN(row_reductions_match_double);
    return od_test_finish();
}
