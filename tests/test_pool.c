/* Average pooling against PyTorch's avg_pool2d / avg_pool3d
 * (scripts/refs/layers.py, float64 autograd, NCHW permuted to channels
 * last): outputs and input gradients with padding, uneven kernels and
 * strides, both count_include_pad settings, accumulation, and shape errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "nn/pool.h"
#include "testlib.h"

/* Tolerances: each output averages at most 27 inputs of size O(1) in
 * float, and each gradient gathers at most 8 windows, so a few float
 * roundings: 1e-6 absolute and relative. */
#define POOL_ATOL 1e-6f
#define POOL_RTOL 1e-6f

static od_tensor *case_tensor(const od_safetensors *st, const char *prefix, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    return od_test_tensor(st, key);
}

static int read_count(const od_safetensors *st, const char *name)
{
    int64_t n = 0;
    int32_t *count = od_safetensors_get_int(st, name, &n, NULL);
    const int value = count != NULL && n == 1 ? count[0] : 0;
    free(count);
    OD_CHECK(value > 0);
    return value;
}

/* Runs case `prefix` of a 2D (spatial_dims = 2) or 3D pooling. dims is
 * N, spatial sizes, C, kernel, stride, padding (each per spatial
 * dimension), count_include_pad. */
static void check_pool_case(const od_safetensors *st, const char *prefix, int spatial_dims)
{
    char key[64];
    snprintf(key, sizeof key, "%s.dims", prefix);
    int64_t dim_count = 0;
    int32_t *dims = od_safetensors_get_int(st, key, &dim_count, NULL);
    od_tensor *x = case_tensor(st, prefix, "x");
    od_tensor *d_out = case_tensor(st, prefix, "d_out");
    od_tensor *want_out = case_tensor(st, prefix, "out");
    od_tensor *want_d_x = case_tensor(st, prefix, "d_x");
    const int64_t expected_dims = 2 + 4 * spatial_dims + 1;
    OD_CHECK(dims != NULL && dim_count == expected_dims);
    if (dims == NULL || dim_count != expected_dims || !x || !d_out || !want_out || !want_d_x)
        goto done;

    const int64_t batch = dims[0];
    int64_t sizes[3], kernel[3], stride[3], padding[3];
    for (int i = 0; i < spatial_dims; i++) {
        sizes[i] = dims[1 + i];
        kernel[i] = dims[2 + spatial_dims + i];
        stride[i] = dims[2 + 2 * spatial_dims + i];
        padding[i] = dims[2 + 3 * spatial_dims + i];
    }
    const int64_t channels = dims[1 + spatial_dims];
    const int include_pad = dims[2 + 4 * spatial_dims];
    const int64_t in_count = od_tensor_numel(x), out_count = od_tensor_numel(want_out);
    printf("%s: channels %lld, count_include_pad %d\n", prefix, (long long)channels, include_pad);

    float *out = od_alloc_floats(out_count);
    float *d_x = od_alloc_floats(in_count);
    float *twice = od_alloc_floats(in_count);
    od_error err;
    int status;
    for (int pass = 0; pass < 2; pass++) {
        if (spatial_dims == 2)
            status = od_avgpool2d_backward(d_x, d_out->data, batch, sizes[0], sizes[1], channels,
                                           kernel, stride, padding, include_pad, &err);
        else
            status = od_avgpool3d_backward(d_x, d_out->data, batch, sizes[0], sizes[1], sizes[2],
                                           channels, kernel, stride, padding, include_pad, &err);
        OD_CHECK(status == 0);
    }
    if (spatial_dims == 2)
        status = od_avgpool2d_forward(out, x->data, batch, sizes[0], sizes[1], channels, kernel,
                                      stride, padding, include_pad, &err);
    else
        status = od_avgpool3d_forward(out, x->data, batch, sizes[0], sizes[1], sizes[2], channels,
                                      kernel, stride, padding, include_pad, &err);
    OD_CHECK(status == 0);

    /* the output size formula agrees with PyTorch's */
    int64_t expected_out = batch * channels;
    for (int i = 0; i < spatial_dims; i++)
        expected_out *= od_pool_output_size(sizes[i], kernel[i], stride[i], padding[i]);
    OD_CHECK(expected_out == out_count);

    OD_CHECK_CLOSE(prefix, out, want_out->data, out_count, POOL_ATOL, POOL_RTOL);
    /* after two backward calls, d_x contains twice the gradient */
    for (int64_t k = 0; k < in_count; k++)
        twice[k] = 2.0f * want_d_x->data[k];
    OD_CHECK_CLOSE(prefix, d_x, twice, in_count, 2 * POOL_ATOL, POOL_RTOL);

    od_free(out);
    od_free(d_x);
    od_free(twice);
done:
    free(dims);
    od_tensor_free(x);
    od_tensor_free(d_out);
    od_tensor_free(want_out);
    od_tensor_free(want_d_x);
}

static void avgpool2d_matches_torch(void)
{
    od_safetensors *st = od_test_load_reference("layers_pool");
    if (st == NULL)
        return;
    const int cases = read_count(st, "count2d");
    for (int i = 0; i < cases; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "pool2d%d", i);
        check_pool_case(st, prefix, 2);
    }
    od_safetensors_free(st);
}

static void avgpool3d_matches_torch(void)
{
    od_safetensors *st = od_test_load_reference("layers_pool");
    if (st == NULL)
        return;
    const int cases = read_count(st, "count3d");
    for (int i = 0; i < cases; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "pool3d%d", i);
        check_pool_case(st, prefix, 3);
    }
    od_safetensors_free(st);
}

static void avgpool_padding_divisor(void)
{
    /* A 2x2 map of ones pooled with kernel 3, stride 1, padding 1: every
     * window covers the 4 inputs. Counting the padding divides by 9. */
    const float in[4] = {1, 1, 1, 1};
    float out[4];
    const int64_t kernel[2] = {3, 3}, stride[2] = {1, 1}, padding[2] = {1, 1};
    od_error err;
    OD_CHECK(od_avgpool2d_forward(out, in, 1, 2, 2, 1, kernel, stride, padding, 1, &err) == 0);
    OD_CHECK(out[0] == 4.0f / 9.0f);
    OD_CHECK(od_avgpool2d_forward(out, in, 1, 2, 2, 1, kernel, stride, padding, 0, &err) == 0);
    OD_CHECK(out[0] == 1.0f);
}

static void avgpool_rejects_bad_shapes(void)
{
    float buffer[64] = {0};
    od_error err;
    const int64_t kernel[3] = {2, 2, 2}, stride[3] = {2, 2, 2}, padding[3] = {0, 0, 0};
    const int64_t big_padding[2] = {0, 2}, zero_stride[2] = {2, 0}, big_kernel[2] = {5, 5};

    OD_CHECK(od_avgpool2d_forward(buffer, buffer, 1, 4, 4, 1, kernel, stride, big_padding, 1,
                                  &err) == -1);
    OD_CHECK(strstr(err.message, "padding = 2 along width") != NULL);
    OD_CHECK(od_avgpool2d_forward(buffer, buffer, 1, 4, 4, 1, kernel, zero_stride, padding, 1,
                                  &err) == -1);
    OD_CHECK(strstr(err.message, "stride = 0") != NULL);
    OD_CHECK(od_avgpool2d_backward(buffer, buffer, 1, 4, 4, 1, big_kernel, stride, padding, 1,
                                   &err) == -1);
    OD_CHECK(strstr(err.message, "does not fit height = 4") != NULL);
    OD_CHECK(od_avgpool3d_forward(buffer, buffer, 1, 0, 4, 4, 1, kernel, stride, padding, 1,
                                  &err) == -1);
    OD_CHECK(strstr(err.message, "depth = 0") != NULL);
    OD_CHECK(od_avgpool3d_backward(buffer, buffer, 1, 2, 2, 2, 0, kernel, stride, padding, 1,
                                   &err) == -1);
    OD_CHECK(strstr(err.message, "channels = 0") != NULL);
    OD_CHECK(od_pool_output_size(3, 4, 1, 0) == -1);
    OD_CHECK(od_pool_output_size(64, 2, 2, 0) == 32);
}

int main(void)
{
    OD_RUN(avgpool2d_matches_torch);
    OD_RUN(avgpool3d_matches_torch);
    OD_RUN(avgpool_padding_divisor);
    OD_RUN(avgpool_rejects_bad_shapes);
    return od_test_finish();
}
