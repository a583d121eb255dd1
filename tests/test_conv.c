/* Convolution layers against PyTorch: every case in tests/ref/conv_*.safetensors
 * (scripts/refs/conv.py) is run forward and backward and compared with
 * F.conv2d, F.conv3d and F.conv_transpose3d computed in float64.
 *
 * Tolerances. The layers compute in float32. An output or input-gradient
 * element sums up to Cin / groups * kernel volume = 864 products of
 * unit-scale values, and the largest error seen against float64 was
 * 2.9e-6; atol 3e-5 leaves a tenfold margin and still catches a wrong tap,
 * which moves an element by ~0.1. The weight and bias gradients sum over
 * every output voxel (up to ~1,000 products, sums up to ~100), and the
 * largest error seen was 1.9e-5, hence atol 2e-4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "nn/conv.h"
#include "testlib.h"

#define ACTIVATION_ATOL 3e-5f
#define ACTIVATION_RTOL 1e-5f
#define PARAMETER_ATOL 2e-4f
#define PARAMETER_RTOL 1e-5f

/* A value the gradient buffers start from, to check that the backward adds
 * to them rather than overwriting them. */
#define PREFILL 0.5f

typedef enum layer_kind { KIND_CONV2D, KIND_CONV3D, KIND_CONV_TRANSPOSE3D } layer_kind;

/* One layer of any kind behind a common interface. */
typedef struct any_layer {
    layer_kind kind;
    od_conv2d *conv2d;
    od_conv3d *conv3d;
    od_conv_transpose3d *transposed;
} any_layer;

/* config as scripts/refs/conv.py stores it. */
typedef struct case_config {
    int64_t batch, in_channels, out_channels, groups, bias;
    int64_t in_size[3], kernel[3], stride[3], padding[3], dilation[3], output_padding[3];
} case_config;

static int read_config(const od_safetensors *st, const char *name, case_config *config)
{
    char key[128];
    snprintf(key, sizeof key, "%s.config", name);
    int64_t count = 0;
    od_error err;
    int32_t *values = od_safetensors_get_int(st, key, &count, &err);
    OD_CHECK(values != NULL && count == 23);
    if (values == NULL || count != 23) {
        free(values);
        return -1;
    }
    config->batch = values[0];
    config->in_channels = values[1];
    config->out_channels = values[2];
    config->groups = values[3];
    config->bias = values[4];
    for (int i = 0; i < 3; i++) {
        config->in_size[i] = values[5 + i];
        config->kernel[i] = values[8 + i];
        config->stride[i] = values[11 + i];
        config->padding[i] = values[14 + i];
        config->dilation[i] = values[17 + i];
        config->output_padding[i] = values[20 + i];
    }
    free(values);
    return 0;
}

static int make_layer(any_layer *layer, layer_kind kind, const case_config *c, od_conv_grad_mode mode,
                      od_conv_layout layout, od_error *err)
{
    memset(layer, 0, sizeof *layer);
    layer->kind = kind;
    if (kind == KIND_CONV2D) {
        od_conv2d_config config = {
            .batch = c->batch, .in_channels = c->in_channels, .out_channels = c->out_channels,
            .in_size = {c->in_size[0], c->in_size[1]}, .kernel = {c->kernel[0], c->kernel[1]},
            .stride = {c->stride[0], c->stride[1]}, .padding = {c->padding[0], c->padding[1]},
            .dilation = {c->dilation[0], c->dilation[1]}, .groups = c->groups, .bias = (int)c->bias,
            .input_grad_mode = mode, .layout = layout,
        };
        layer->conv2d = od_conv2d_new(&config, err);
        return layer->conv2d != NULL ? 0 : -1;
    }
    if (kind == KIND_CONV3D) {
        od_conv3d_config config = {
            .batch = c->batch, .in_channels = c->in_channels, .out_channels = c->out_channels,
            .groups = c->groups, .bias = (int)c->bias, .input_grad_mode = mode, .layout = layout,
        };
        memcpy(config.in_size, c->in_size, sizeof config.in_size);
        memcpy(config.kernel, c->kernel, sizeof config.kernel);
        memcpy(config.stride, c->stride, sizeof config.stride);
        memcpy(config.padding, c->padding, sizeof config.padding);
        memcpy(config.dilation, c->dilation, sizeof config.dilation);
        layer->conv3d = od_conv3d_new(&config, err);
        return layer->conv3d != NULL ? 0 : -1;
    }
    od_conv_transpose3d_config config = {
        .batch = c->batch, .in_channels = c->in_channels, .out_channels = c->out_channels,
        .groups = c->groups, .bias = (int)c->bias, .input_grad_mode = mode, .layout = layout,
    };
    memcpy(config.in_size, c->in_size, sizeof config.in_size);
    memcpy(config.kernel, c->kernel, sizeof config.kernel);
    memcpy(config.stride, c->stride, sizeof config.stride);
    memcpy(config.padding, c->padding, sizeof config.padding);
    memcpy(config.output_padding, c->output_padding, sizeof config.output_padding);
    memcpy(config.dilation, c->dilation, sizeof config.dilation);
    layer->transposed = od_conv_transpose3d_new(&config, err);
    return layer->transposed != NULL ? 0 : -1;
}

static void free_layer(any_layer *layer)
{
    od_conv2d_free(layer->conv2d);
    od_conv3d_free(layer->conv3d);
    od_conv_transpose3d_free(layer->transposed);
}

static int forward(any_layer *layer, float *out, const float *in, const float *weight, const float *bias,
                   od_error *err)
{
    switch (layer->kind) {
    case KIND_CONV2D: return od_conv2d_forward(layer->conv2d, out, in, weight, bias, err);
    case KIND_CONV3D: return od_conv3d_forward(layer->conv3d, out, in, weight, bias, err);
    default: return od_conv_transpose3d_forward(layer->transposed, out, in, weight, bias, err);
    }
}

static int backward(any_layer *layer, float *d_in, float *d_weight, float *d_bias, const float *d_out,
                    const float *in, const float *weight, od_error *err)
{
    switch (layer->kind) {
    case KIND_CONV2D: return od_conv2d_backward(layer->conv2d, d_in, d_weight, d_bias, d_out, in, weight, err);
    case KIND_CONV3D: return od_conv3d_backward(layer->conv3d, d_in, d_weight, d_bias, d_out, in, weight, err);
    default:
        return od_conv_transpose3d_backward(layer->transposed, d_in, d_weight, d_bias, d_out, in, weight, err);
    }
}

/* The reference tensors of one case. */
typedef struct case_tensors {
    od_tensor *in, *weight, *bias, *out, *d_out, *d_in, *d_weight, *d_bias;
} case_tensors;

static od_tensor *case_tensor(const od_safetensors *st, const char *name, const char *tensor)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", name, tensor);
    return od_test_tensor(st, key);
}

static int load_case(const od_safetensors *st, const char *name, int has_bias, case_tensors *t)
{
    memset(t, 0, sizeof *t);
    t->in = case_tensor(st, name, "in");
    t->weight = case_tensor(st, name, "weight");
    t->out = case_tensor(st, name, "out");
    t->d_out = case_tensor(st, name, "d_out");
    t->d_in = case_tensor(st, name, "d_in");
    t->d_weight = case_tensor(st, name, "d_weight");
    if (has_bias) {
        t->bias = case_tensor(st, name, "bias");
        t->d_bias = case_tensor(st, name, "d_bias");
    }
    int ok = t->in && t->weight && t->out && t->d_out && t->d_in && t->d_weight &&
             (!has_bias || (t->bias && t->d_bias));
    return ok ? 0 : -1;
}

static void free_case(case_tensors *t)
{
    od_tensor_free(t->in);
    od_tensor_free(t->weight);
    od_tensor_free(t->bias);
    od_tensor_free(t->out);
    od_tensor_free(t->d_out);
    od_tensor_free(t->d_in);
    od_tensor_free(t->d_weight);
    od_tensor_free(t->d_bias);
}

static float *filled(int64_t count, float value)
{
    float *buffer = od_alloc_floats(count);
    for (int64_t i = 0; buffer != NULL && i < count; i++)
        buffer[i] = value;
    return buffer;
}

static void add_constant(float *target, const float *source, int64_t count, float value)
{
    for (int64_t i = 0; i < count; i++)
        target[i] = source[i] + value;
}

/* Runs one reference case: forward, backward in accumulate mode onto
 * prefilled buffers, backward in overwrite mode onto garbage, each
 * gradient on its own (the others NULL), and bit-identical reruns. */
static void check_case(const od_safetensors *st, layer_kind kind, const char *name)
{
    case_config config;
    if (read_config(st, name, &config))
        return;
    case_tensors t;
    if (load_case(st, name, (int)config.bias, &t)) {
        free_case(&t);
        return;
    }
    int64_t in_count = od_tensor_numel(t.in), out_count = od_tensor_numel(t.out);
    int64_t weight_count = od_tensor_numel(t.weight), bias_count = config.out_channels;
    const float *bias = config.bias ? t.bias->data : NULL;
    char what[160];
    od_error err;

    any_layer layer, overwrite;
    int made = make_layer(&layer, kind, &config, OD_CONV_GRAD_ACCUMULATE, OD_CONV_CHANNELS_LAST, &err);
    if (made)
        fprintf(stderr, "%s: %s\n", name, err.message);
    OD_CHECK(made == 0);
    int made_overwrite = make_layer(&overwrite, kind, &config, OD_CONV_GRAD_OVERWRITE, OD_CONV_CHANNELS_LAST, &err);
    OD_CHECK(made_overwrite == 0);
    if (made || made_overwrite) {
        free_layer(&layer);
        free_layer(&overwrite);
        free_case(&t);
        return;
    }

    /* forward */
    float *out = filled(out_count, -9.0f);
    int rc = forward(&layer, out, t.in->data, t.weight->data, bias, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err.message);
    OD_CHECK(rc == 0);
    snprintf(what, sizeof what, "%s forward", name);
    OD_CHECK_CLOSE(what, out, t.out->data, out_count, ACTIVATION_ATOL, ACTIVATION_RTOL);

    /* backward, accumulating onto PREFILL */
    float *d_in = filled(in_count, PREFILL), *d_weight = filled(weight_count, PREFILL);
    float *d_bias = filled(bias_count, PREFILL);
    float *want_d_in = od_alloc_floats(in_count), *want_d_weight = od_alloc_floats(weight_count);
    float *want_d_bias = od_alloc_floats(bias_count);
    add_constant(want_d_in, t.d_in->data, in_count, PREFILL);
    add_constant(want_d_weight, t.d_weight->data, weight_count, PREFILL);
    if (config.bias)
        add_constant(want_d_bias, t.d_bias->data, bias_count, PREFILL);
    rc = backward(&layer, d_in, d_weight, config.bias ? d_bias : NULL, t.d_out->data, t.in->data,
                  t.weight->data, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err.message);
    OD_CHECK(rc == 0);
    snprintf(what, sizeof what, "%s d_in (accumulate)", name);
    OD_CHECK_CLOSE(what, d_in, want_d_in, in_count, ACTIVATION_ATOL, ACTIVATION_RTOL);
    snprintf(what, sizeof what, "%s d_weight", name);
    OD_CHECK_CLOSE(what, d_weight, want_d_weight, weight_count, PARAMETER_ATOL, PARAMETER_RTOL);
    if (config.bias) {
        snprintf(what, sizeof what, "%s d_bias", name);
        OD_CHECK_CLOSE(what, d_bias, want_d_bias, bias_count, PARAMETER_ATOL, PARAMETER_RTOL);
    }

    /* backward in overwrite mode: d_in starts as garbage, d_weight and
     * d_bias still accumulate */
    float *garbage_d_in = filled(in_count, 1e3f);
    float *d_weight2 = filled(weight_count, PREFILL), *d_bias2 = filled(bias_count, PREFILL);
    rc = backward(&overwrite, garbage_d_in, d_weight2, config.bias ? d_bias2 : NULL, t.d_out->data, t.in->data,
                  t.weight->data, &err);
    OD_CHECK(rc == 0);
    snprintf(what, sizeof what, "%s d_in (overwrite)", name);
    OD_CHECK_CLOSE(what, garbage_d_in, t.d_in->data, in_count, ACTIVATION_ATOL, ACTIVATION_RTOL);
    snprintf(what, sizeof what, "%s d_weight (overwrite layer)", name);
    OD_CHECK_CLOSE(what, d_weight2, want_d_weight, weight_count, PARAMETER_ATOL, PARAMETER_RTOL);

    /* one gradient at a time */
    float *only = filled(in_count, 0.0f);
    OD_CHECK(backward(&layer, only, NULL, NULL, t.d_out->data, NULL, t.weight->data, &err) == 0);
    snprintf(what, sizeof what, "%s d_in alone", name);
    OD_CHECK_CLOSE(what, only, t.d_in->data, in_count, ACTIVATION_ATOL, ACTIVATION_RTOL);
    float *only_weight = filled(weight_count, 0.0f);
    OD_CHECK(backward(&layer, NULL, only_weight, NULL, t.d_out->data, t.in->data, NULL, &err) == 0);
    snprintf(what, sizeof what, "%s d_weight alone", name);
    OD_CHECK_CLOSE(what, only_weight, t.d_weight->data, weight_count, PARAMETER_ATOL, PARAMETER_RTOL);
    if (config.bias) {
        float *only_bias = filled(bias_count, 0.0f);
        OD_CHECK(backward(&layer, NULL, NULL, only_bias, t.d_out->data, t.in->data, NULL, &err) == 0);
        snprintf(what, sizeof what, "%s d_bias alone", name);
        OD_CHECK_CLOSE(what, only_bias, t.d_bias->data, bias_count, PARAMETER_ATOL, PARAMETER_RTOL);
        od_free(only_bias);
    }

    /* determinism: the same call twice gives the same bits */
    float *again_d_in = filled(in_count, 0.0f), *again_d_weight = filled(weight_count, 0.0f);
    OD_CHECK(backward(&layer, again_d_in, again_d_weight, NULL, t.d_out->data, t.in->data, t.weight->data,
                      &err) == 0);
    snprintf(what, sizeof what, "%s d_in rerun", name);
    OD_CHECK_IDENTICAL(what, again_d_in, only, in_count);
    snprintf(what, sizeof what, "%s d_weight rerun", name);
    OD_CHECK_IDENTICAL(what, again_d_weight, only_weight, weight_count);

    od_free(out);
    od_free(d_in);
    od_free(d_weight);
    od_free(d_bias);
    od_free(want_d_in);
    od_free(want_d_weight);
    od_free(want_d_bias);
    od_free(garbage_d_in);
    od_free(d_weight2);
    od_free(d_bias2);
    od_free(only);
    od_free(only_weight);
    od_free(again_d_in);
    od_free(again_d_weight);
    free_layer(&layer);
    free_layer(&overwrite);
    free_case(&t);
}

/* Runs every case listed in the file's "cases" metadata. */
static void check_file(const char *file, layer_kind kind, int expected_cases)
{
    od_safetensors *st = od_test_load_reference(file);
    if (st == NULL)
        return;
    const char *cases = od_safetensors_metadata(st, "cases");
    OD_CHECK(cases != NULL);
    int count = 0;
    if (cases != NULL) {
        char *list = strdup(cases);
        char *save = NULL;
        for (char *name = strtok_r(list, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
            check_case(st, kind, name);
            count++;
        }
        free(list);
    }
    OD_CHECK(count == expected_cases);
    od_safetensors_free(st);
}

static void conv2d_matches_torch(void) { check_file("conv_conv2d", KIND_CONV2D, 9); }
static void conv3d_matches_torch(void) { check_file("conv_conv3d", KIND_CONV3D, 6); }
static void conv3d_wide_matches_torch(void) { check_file("conv_conv3d_wide", KIND_CONV3D, 2); }
static void conv_transpose3d_matches_torch(void)
{
    check_file("conv_conv_transpose3d", KIND_CONV_TRANSPOSE3D, 6);
}

/* (N, S, C) channels-last to (N, C / 16, S, 16) blocked, or back. */
static void convert_blocked(float *target, const float *source, int64_t batch, int64_t spatial,
                            int64_t channels, int to_blocked)
{
    for (int64_t n = 0; n < batch; n++)
        for (int64_t s = 0; s < spatial; s++)
            for (int64_t c = 0; c < channels; c++) {
                int64_t last = (n * spatial + s) * channels + c;
                int64_t blocked = ((n * (channels / 16) + c / 16) * spatial + s) * 16 + c % 16;
                if (to_blocked)
                    target[blocked] = source[last];
                else
                    target[last] = source[blocked];
            }
}

/* Runs a reference case in the blocked16 layout, converting the
 * activations on the way in and out. */
static void check_blocked_case(const char *file, layer_kind kind, const char *name)
{
    od_safetensors *st = od_test_load_reference(file);
    if (st == NULL)
        return;
    case_config config;
    case_tensors t;
    if (read_config(st, name, &config) || load_case(st, name, (int)config.bias, &t)) {
        od_safetensors_free(st);
        return;
    }
    int64_t in_count = od_tensor_numel(t.in), out_count = od_tensor_numel(t.out);
    int64_t weight_count = od_tensor_numel(t.weight);
    int64_t in_spatial = in_count / (config.batch * config.in_channels);
    int64_t out_spatial = out_count / (config.batch * config.out_channels);
    const float *bias = config.bias ? t.bias->data : NULL;
    char what[160];
    od_error err;
    any_layer layer;
    int made = make_layer(&layer, kind, &config, OD_CONV_GRAD_ACCUMULATE, OD_CONV_BLOCKED16, &err);
    OD_CHECK(made == 0);
    if (made) {
        fprintf(stderr, "%s: %s\n", name, err.message);
        free_case(&t);
        od_safetensors_free(st);
        return;
    }

    float *in = od_alloc_floats(in_count), *d_out = od_alloc_floats(out_count);
    float *out = od_alloc_floats(out_count), *d_in = od_alloc_floats(in_count);
    float *result = od_alloc_floats(in_count > out_count ? in_count : out_count);
    float *d_weight = od_alloc_floats(weight_count);
    convert_blocked(in, t.in->data, config.batch, in_spatial, config.in_channels, 1);
    convert_blocked(d_out, t.d_out->data, config.batch, out_spatial, config.out_channels, 1);

    OD_CHECK(forward(&layer, out, in, t.weight->data, bias, &err) == 0);
    convert_blocked(result, out, config.batch, out_spatial, config.out_channels, 0);
    snprintf(what, sizeof what, "%s blocked forward", name);
    OD_CHECK_CLOSE(what, result, t.out->data, out_count, ACTIVATION_ATOL, ACTIVATION_RTOL);

    OD_CHECK(backward(&layer, d_in, d_weight, NULL, d_out, in, t.weight->data, &err) == 0);
    convert_blocked(result, d_in, config.batch, in_spatial, config.in_channels, 0);
    snprintf(what, sizeof what, "%s blocked d_in", name);
    OD_CHECK_CLOSE(what, result, t.d_in->data, in_count, ACTIVATION_ATOL, ACTIVATION_RTOL);
    snprintf(what, sizeof what, "%s blocked d_weight", name);
    OD_CHECK_CLOSE(what, d_weight, t.d_weight->data, weight_count, PARAMETER_ATOL, PARAMETER_RTOL);

    od_free(in);
    od_free(d_out);
    od_free(out);
    od_free(d_in);
    od_free(result);
    od_free(d_weight);
    free_layer(&layer);
    free_case(&t);
    od_safetensors_free(st);
}

static void blocked_layout_matches_torch(void)
{
    check_blocked_case("conv_conv3d_wide", KIND_CONV3D, "wide_stride1");
    check_blocked_case("conv_conv3d_wide", KIND_CONV3D, "wide_stride2");
    check_blocked_case("conv_conv3d", KIND_CONV3D, "wide_32_to_16");
    check_blocked_case("conv_conv2d", KIND_CONV2D, "wide_channels");
    check_blocked_case("conv_conv_transpose3d", KIND_CONV_TRANSPOSE3D, "kernel2_stride2_wide");
}

/* Returns 1 when making the layer fails with a message containing `expected`. */
static int conv3d_rejected(const od_conv3d_config *config, const char *expected)
{
    od_error err;
    memset(&err, 0, sizeof err);
    od_conv3d *conv = od_conv3d_new(config, &err);
    if (conv != NULL) {
        od_conv3d_free(conv);
        fprintf(stderr, "accepted a config that should fail with \"%s\"\n", expected);
        return 0;
    }
    if (strstr(err.message, expected) == NULL) {
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.message, expected);
        return 0;
    }
    return 1;
}

static od_conv3d_config valid_conv3d(void)
{
    od_conv3d_config config = {
        .batch = 1, .in_channels = 4, .out_channels = 6, .in_size = {5, 6, 7}, .kernel = {3, 3, 3},
        .stride = {1, 1, 1}, .padding = {1, 1, 1}, .dilation = {1, 1, 1}, .groups = 1, .bias = 1,
    };
    return config;
}

static void invalid_configs_rejected(void)
{
    od_conv3d_config config = valid_conv3d();
    od_error err;
    od_conv3d *conv = od_conv3d_new(&config, &err);
    OD_CHECK(conv != NULL);
    od_conv3d_free(conv);

    config = valid_conv3d();
    config.batch = 0;
    OD_CHECK(conv3d_rejected(&config, "batch is 0"));
    config = valid_conv3d();
    config.in_channels = -2;
    OD_CHECK(conv3d_rejected(&config, "in_channels is -2"));
    config = valid_conv3d();
    config.stride[1] = 0;
    OD_CHECK(conv3d_rejected(&config, "stride along height is 0"));
    config = valid_conv3d();
    config.dilation[2] = 0;
    OD_CHECK(conv3d_rejected(&config, "dilation along width is 0"));
    config = valid_conv3d();
    config.kernel[0] = 0;
    OD_CHECK(conv3d_rejected(&config, "kernel depth is 0"));
    config = valid_conv3d();
    config.padding[0] = -1;
    OD_CHECK(conv3d_rejected(&config, "padding along depth is -1"));
    config = valid_conv3d();
    config.groups = 4;
    OD_CHECK(conv3d_rejected(&config, "groups (4) must divide"));
    config = valid_conv3d();
    config.groups = 0;
    OD_CHECK(conv3d_rejected(&config, "groups is 0"));
    config = valid_conv3d();
    config.in_size[2] = 2;
    config.kernel[2] = 5;
    config.padding[2] = 1;
    OD_CHECK(conv3d_rejected(&config, "output width would be 0"));
    config = valid_conv3d();
    config.layout = OD_CONV_BLOCKED16;
    OD_CHECK(conv3d_rejected(&config, "multiples of 16"));
    config = valid_conv3d();
    config.bias = 2;
    OD_CHECK(conv3d_rejected(&config, "bias is 2"));
    OD_CHECK(od_conv3d_new(NULL, &err) == NULL);

    od_conv_transpose3d_config transposed = {
        .batch = 1, .in_channels = 2, .out_channels = 2, .in_size = {3, 3, 3}, .kernel = {2, 2, 2},
        .stride = {2, 2, 2}, .output_padding = {0, 2, 0}, .dilation = {1, 1, 1}, .groups = 1,
    };
    od_conv_transpose3d *deconv = od_conv_transpose3d_new(&transposed, &err);
    OD_CHECK(deconv == NULL);
    OD_CHECK(strstr(err.message, "output_padding along height is 2") != NULL);
    transposed.output_padding[1] = 1;
    deconv = od_conv_transpose3d_new(&transposed, &err);
    OD_CHECK(deconv != NULL);
    int64_t out_size[3];
    if (deconv != NULL) {
        od_conv_transpose3d_out_size(deconv, out_size);
        OD_CHECK(out_size[0] == 6 && out_size[1] == 7 && out_size[2] == 6);
    }
    od_conv_transpose3d_free(deconv);

    od_conv2d_config flat = {
        .batch = 1, .in_channels = 3, .out_channels = 3, .in_size = {4, 4}, .kernel = {3, 3},
        .stride = {1, 1}, .padding = {0, 0}, .dilation = {3, 1}, .groups = 1,
    };
    od_conv2d *conv2d = od_conv2d_new(&flat, &err);
    OD_CHECK(conv2d == NULL);
    OD_CHECK(strstr(err.message, "output height would be 0") != NULL);
}

static void call_arguments_checked(void)
{
    od_conv3d_config config = valid_conv3d();
    od_error err;
    od_conv3d *conv = od_conv3d_new(&config, &err);
    OD_CHECK(conv != NULL);
    if (conv == NULL)
        return;
    int64_t out_size[3];
    od_conv3d_out_size(conv, out_size);
    OD_CHECK(out_size[0] == 5 && out_size[1] == 6 && out_size[2] == 7);
    float *in = od_alloc_floats(4 * 5 * 6 * 7), *out = od_alloc_floats(6 * 5 * 6 * 7);
    float *weight = od_alloc_floats(6 * 4 * 27), *bias = od_alloc_floats(6);

    OD_CHECK(od_conv3d_forward(conv, out, in, weight, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "bias is NULL") != NULL);
    OD_CHECK(od_conv3d_forward(conv, out, NULL, weight, bias, &err) == -1);
    OD_CHECK(strstr(err.message, "must not be NULL") != NULL);
    OD_CHECK(od_conv3d_forward(conv, out, in, weight, bias, &err) == 0);
    OD_CHECK(od_conv3d_backward(conv, in, NULL, NULL, out, in, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "needs the weight") != NULL);
    OD_CHECK(od_conv3d_backward(conv, NULL, weight, NULL, out, NULL, weight, &err) == -1);
    OD_CHECK(strstr(err.message, "forward's input") != NULL);
    OD_CHECK(od_conv3d_backward(conv, NULL, weight, NULL, NULL, in, weight, &err) == -1);
    OD_CHECK(strstr(err.message, "d_out must not be NULL") != NULL);
    od_conv3d_free(conv);

    config.bias = 0;
    conv = od_conv3d_new(&config, &err);
    OD_CHECK(conv != NULL);
    if (conv != NULL) {
        OD_CHECK(od_conv3d_forward(conv, out, in, weight, bias, &err) == -1);
        OD_CHECK(strstr(err.message, "without a bias") != NULL);
        OD_CHECK(od_conv3d_backward(conv, NULL, NULL, bias, out, in, weight, &err) == -1);
        OD_CHECK(strstr(err.message, "without a bias") != NULL);
    }
    od_conv3d_free(conv);
    od_free(in);
    od_free(out);
    od_free(weight);
    od_free(bias);
}

static void fill_pattern(float *data, int64_t count, uint32_t seed)
{
    uint32_t state = seed;
    for (int64_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u;
        data[i] = (float)(state >> 8) / 16777216.0f - 0.5f;
    }
}

/* Runs forward and backward twice at an encoder-decoder size, large
 * enough to keep every thread busy, and checks that both runs give the
 * same bits. */
static void check_rerun_identical(layer_kind kind, const case_config *config, int64_t out_voxels,
                                  const char *name)
{
    od_error err;
    any_layer layer;
    int made = make_layer(&layer, kind, config, OD_CONV_GRAD_OVERWRITE, OD_CONV_CHANNELS_LAST, &err);
    OD_CHECK(made == 0);
    if (made)
        return;
    int64_t in_count = config->batch * config->in_size[0] * config->in_size[1] * config->in_size[2] *
                       config->in_channels;
    int64_t out_count = config->batch * out_voxels * config->out_channels;
    int64_t weight_count = config->in_channels * config->out_channels / config->groups * config->kernel[0] *
                           config->kernel[1] * config->kernel[2];
    float *in = od_alloc_floats(in_count), *d_out = od_alloc_floats(out_count);
    float *out = od_alloc_floats(out_count), *weight = od_alloc_floats(weight_count);
    float *bias = od_alloc_floats(config->out_channels);
    fill_pattern(in, in_count, 1);
    fill_pattern(d_out, out_count, 2);
    fill_pattern(weight, weight_count, 3);

    float *d_in[2], *d_weight[2], *d_bias[2];
    for (int run = 0; run < 2; run++) {
        d_in[run] = od_alloc_floats(in_count);
        d_weight[run] = od_alloc_floats(weight_count);
        d_bias[run] = od_alloc_floats(config->out_channels);
        OD_CHECK(forward(&layer, out, in, weight, config->bias ? bias : NULL, &err) == 0);
        OD_CHECK(backward(&layer, d_in[run], d_weight[run], config->bias ? d_bias[run] : NULL, d_out, in, weight,
                          &err) == 0);
    }
    char what[160];
    snprintf(what, sizeof what, "%s d_in", name);
    OD_CHECK_IDENTICAL(what, d_in[0], d_in[1], in_count);
    snprintf(what, sizeof what, "%s d_weight", name);
    OD_CHECK_IDENTICAL(what, d_weight[0], d_weight[1], weight_count);
    snprintf(what, sizeof what, "%s d_bias", name);
    OD_CHECK_IDENTICAL(what, d_bias[0], d_bias[1], config->out_channels);
    for (int run = 0; run < 2; run++) {
        od_free(d_in[run]);
        od_free(d_weight[run]);
        od_free(d_bias[run]);
    }
    od_free(in);
    od_free(d_out);
    od_free(out);
    od_free(weight);
    od_free(bias);
    free_layer(&layer);
}

static void encoder_sizes_rerun_identical(void)
{
    case_config conv = {
        .batch = 1, .in_channels = 16, .out_channels = 16, .groups = 1, .bias = 1,
        .in_size = {16, 64, 64}, .kernel = {3, 3, 3}, .stride = {1, 1, 1}, .padding = {1, 1, 1},
        .dilation = {1, 1, 1},
    };
    check_rerun_identical(KIND_CONV3D, &conv, 16 * 64 * 64, "conv3d 16x64x64 16->16");
    conv.out_channels = 32;
    conv.stride[0] = conv.stride[1] = conv.stride[2] = 2;
    check_rerun_identical(KIND_CONV3D, &conv, 8 * 32 * 32, "conv3d 16x64x64 16->32 stride 2");
    case_config transposed = {
        .batch = 1, .in_channels = 32, .out_channels = 16, .groups = 1, .bias = 1,
        .in_size = {8, 32, 32}, .kernel = {2, 2, 2}, .stride = {2, 2, 2}, .dilation = {1, 1, 1},
    };
    check_rerun_identical(KIND_CONV_TRANSPOSE3D, &transposed, 16 * 64 * 64, "conv_transpose3d 8x32x32 32->16");
}

int main(void)
{
    OD_RUN(conv2d_matches_torch);
    OD_RUN(conv3d_matches_torch);
    OD_RUN(conv3d_wide_matches_torch);
    OD_RUN(conv_transpose3d_matches_torch);
    OD_RUN(blocked_layout_matches_torch);
    OD_RUN(encoder_sizes_rerun_identical);
    OD_RUN(invalid_configs_rejected);
    OD_RUN(call_arguments_checked);
    return od_test_finish();
}
