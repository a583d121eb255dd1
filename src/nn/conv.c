/* The public convolution layers: configuration checks, then the shared
 * engine in conv_engine.c. */
#include "nn/conv.h"

#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "nn/conv_engine.h"

struct od_conv2d {
    od_conv_layer layer;
};

struct od_conv3d {
    od_conv_layer layer;
};

struct od_conv_transpose3d {
    od_conv_layer layer;
};

/* ---- validation ------------------------------------------------------ */

static const char *axis_name(int spatial, int axis)
{
    static const char *names3[3] = {"depth", "height", "width"};
    static const char *names2[2] = {"height", "width"};
    return spatial == 3 ? names3[axis] : names2[axis];
}

static int check_count(const od_conv_shape *shape, const char *what, int64_t count, int64_t *product,
                       od_error *err)
{
    int64_t dims[2] = {*product, count};
    int64_t result = od_shape_numel(2, dims);
    if (result < 0)
        return od_fail(err, "%s: %s overflows a 64-bit element count", shape->kind, what);
    *product = result;
    return 0;
}

static int validate(const od_conv_shape *shape, od_error *err)
{
    const char *kind = shape->kind;
    if (shape->batch < 1)
        return od_fail(err, "%s: batch is %lld; expected >= 1", kind, (long long)shape->batch);
    if (shape->in_channels < 1)
        return od_fail(err, "%s: in_channels is %lld; expected >= 1", kind, (long long)shape->in_channels);
    if (shape->out_channels < 1)
        return od_fail(err, "%s: out_channels is %lld; expected >= 1", kind, (long long)shape->out_channels);
    if (shape->groups < 1)
        return od_fail(err, "%s: groups is %lld; expected >= 1", kind, (long long)shape->groups);
    if (shape->in_channels % shape->groups != 0 || shape->out_channels % shape->groups != 0)
        return od_fail(err, "%s: groups (%lld) must divide in_channels (%lld) and out_channels (%lld)", kind,
                       (long long)shape->groups, (long long)shape->in_channels,
                       (long long)shape->out_channels);
    if (shape->has_bias != 0 && shape->has_bias != 1)
        return od_fail(err, "%s: bias is %d; expected 0 or 1", kind, shape->has_bias);
    if (shape->input_grad_mode != OD_CONV_GRAD_ACCUMULATE && shape->input_grad_mode != OD_CONV_GRAD_OVERWRITE)
        return od_fail(err, "%s: input_grad_mode is %d; expected OD_CONV_GRAD_ACCUMULATE or "
                       "OD_CONV_GRAD_OVERWRITE", kind, (int)shape->input_grad_mode);
    if (shape->layout != OD_CONV_CHANNELS_LAST && shape->layout != OD_CONV_BLOCKED16)
        return od_fail(err, "%s: layout is %d; expected OD_CONV_CHANNELS_LAST or OD_CONV_BLOCKED16", kind,
                       (int)shape->layout);
    if (shape->layout == OD_CONV_BLOCKED16 && (shape->in_channels % 16 != 0 || shape->out_channels % 16 != 0))
        return od_fail(err, "%s: the blocked16 layout needs channel counts that are multiples of 16, "
                       "got in_channels %lld and out_channels %lld", kind, (long long)shape->in_channels,
                       (long long)shape->out_channels);

    int64_t in_count = shape->batch, out_count = shape->batch;
    int64_t weight_count = shape->out_channels;
    if (check_count(shape, "the input", shape->in_channels, &in_count, err) ||
        check_count(shape, "the output", shape->out_channels, &out_count, err) ||
        check_count(shape, "the weight", shape->in_channels / shape->groups, &weight_count, err))
        return -1;
    for (int i = 0; i < shape->spatial; i++) {
        const char *axis = axis_name(shape->spatial, i);
        if (shape->in_size[i] < 1)
            return od_fail(err, "%s: input %s is %lld; expected >= 1", kind, axis, (long long)shape->in_size[i]);
        if (shape->kernel[i] < 1)
            return od_fail(err, "%s: kernel %s is %lld; expected >= 1", kind, axis, (long long)shape->kernel[i]);
        if (shape->stride[i] < 1)
            return od_fail(err, "%s: stride along %s is %lld; expected >= 1", kind, axis,
                           (long long)shape->stride[i]);
        if (shape->dilation[i] < 1)
            return od_fail(err, "%s: dilation along %s is %lld; expected >= 1", kind, axis,
                           (long long)shape->dilation[i]);
        if (shape->padding[i] < 0)
            return od_fail(err, "%s: padding along %s is %lld; expected >= 0", kind, axis,
                           (long long)shape->padding[i]);
        /* Bounds that keep the size arithmetic below far from overflow. */
        const int64_t limit = (int64_t)1 << 30;
        if (shape->in_size[i] > limit || shape->kernel[i] > limit || shape->stride[i] > limit ||
            shape->dilation[i] > limit || shape->padding[i] > limit)
            return od_fail(err, "%s: a size along %s exceeds %lld", kind, axis, (long long)limit);

        int64_t extent = shape->dilation[i] * (shape->kernel[i] - 1) + 1;
        int64_t out;
        if (shape->transposed) {
            int64_t extra = shape->output_padding[i];
            if (extra < 0 || (extra >= shape->stride[i] && extra >= shape->dilation[i]))
                return od_fail(err, "%s: output_padding along %s is %lld; expected >= 0 and smaller than "
                               "the stride (%lld) or the dilation (%lld)", kind, axis, (long long)extra,
                               (long long)shape->stride[i], (long long)shape->dilation[i]);
            out = (shape->in_size[i] - 1) * shape->stride[i] - 2 * shape->padding[i] + extent + extra;
        } else {
            int64_t span = shape->in_size[i] + 2 * shape->padding[i] - extent;
            out = span < 0 ? 0 : span / shape->stride[i] + 1;
        }
        if (out < 1)
            return od_fail(err, "%s: output %s would be %lld (input %lld, kernel %lld, stride %lld, padding "
                           "%lld, dilation %lld); expected >= 1", kind, axis, (long long)out,
                           (long long)shape->in_size[i], (long long)shape->kernel[i], (long long)shape->stride[i],
                           (long long)shape->padding[i], (long long)shape->dilation[i]);
        if (check_count(shape, "the input", shape->in_size[i], &in_count, err) ||
            check_count(shape, "the output", out, &out_count, err) ||
            check_count(shape, "the weight", shape->kernel[i], &weight_count, err))
            return -1;
    }
    return 0;
}

static int make_layer(od_conv_layer *layer, const od_conv_shape *shape, od_error *err)
{
    if (validate(shape, err))
        return -1;
    return od_conv_layer_init(layer, shape, err);
}

static int check_forward_args(const od_conv_layer *layer, const float *out, const float *in,
                              const float *weight, const float *bias, od_error *err)
{
    const char *kind = layer->shape.kind;
    if (out == NULL || in == NULL || weight == NULL)
        return od_fail(err, "%s forward: out, in and weight must not be NULL", kind);
    if (layer->shape.has_bias && bias == NULL)
        return od_fail(err, "%s forward: the layer was made with a bias but bias is NULL", kind);
    if (!layer->shape.has_bias && bias != NULL)
        return od_fail(err, "%s forward: the layer was made without a bias but a bias was passed", kind);
    return 0;
}

static int check_backward_args(const od_conv_layer *layer, const float *d_in, const float *d_weight,
                               const float *d_bias, const float *d_out, const float *in,
                               const float *weight, od_error *err)
{
    const char *kind = layer->shape.kind;
    if (d_out == NULL)
        return od_fail(err, "%s backward: d_out must not be NULL", kind);
    if (d_in != NULL && weight == NULL)
        return od_fail(err, "%s backward: d_in needs the weight, which is NULL", kind);
    if ((d_weight != NULL || d_bias != NULL) && in == NULL)
        return od_fail(err, "%s backward: d_weight and d_bias need the forward's input, which is NULL", kind);
    if (d_bias != NULL && !layer->shape.has_bias)
        return od_fail(err, "%s backward: the layer was made without a bias but d_bias was passed", kind);
    return 0;
}

static void copy_axes(int64_t *target, const int64_t *source, int count)
{
    memcpy(target, source, (size_t)count * sizeof *target);
}

/* ---- 2D convolution -------------------------------------------------- */

od_conv2d *od_conv2d_new(const od_conv2d_config *config, od_error *err)
{
    if (config == NULL) {
        od_fail(err, "conv2d: config is NULL");
        return NULL;
    }
    od_conv_shape shape = {
        .kind = "conv2d", .spatial = 2, .transposed = 0, .batch = config->batch,
        .in_channels = config->in_channels, .out_channels = config->out_channels, .groups = config->groups,
        .has_bias = config->bias, .input_grad_mode = config->input_grad_mode, .layout = config->layout,
    };
    copy_axes(shape.in_size, config->in_size, 2);
    copy_axes(shape.kernel, config->kernel, 2);
    copy_axes(shape.stride, config->stride, 2);
    copy_axes(shape.padding, config->padding, 2);
    copy_axes(shape.dilation, config->dilation, 2);

    od_conv2d *conv = calloc(1, sizeof *conv);
    if (conv == NULL) {
        od_fail(err, "conv2d: out of memory");
        return NULL;
    }
    if (make_layer(&conv->layer, &shape, err)) {
        od_conv2d_free(conv);
        return NULL;
    }
    return conv;
}

void od_conv2d_free(od_conv2d *conv)
{
    if (conv == NULL)
        return;
    od_conv_layer_release(&conv->layer);
    free(conv);
}

void od_conv2d_out_size(const od_conv2d *conv, int64_t out_size[2])
{
    copy_axes(out_size, conv->layer.out_size, 2);
}

int od_conv2d_forward(od_conv2d *conv, float *out, const float *in, const float *weight, const float *bias,
                      od_error *err)
{
    if (check_forward_args(&conv->layer, out, in, weight, bias, err))
        return -1;
    return od_conv_layer_forward(&conv->layer, out, in, weight, bias, err);
}

int od_conv2d_backward(od_conv2d *conv, float *d_in, float *d_weight, float *d_bias, const float *d_out,
                       const float *in, const float *weight, od_error *err)
{
    if (check_backward_args(&conv->layer, d_in, d_weight, d_bias, d_out, in, weight, err))
        return -1;
    return od_conv_layer_backward(&conv->layer, d_in, d_weight, d_bias, d_out, in, weight, err);
}

/* ---- 3D convolution -------------------------------------------------- */

od_conv3d *od_conv3d_new(const od_conv3d_config *config, od_error *err)
{
    if (config == NULL) {
        od_fail(err, "conv3d: config is NULL");
        return NULL;
    }
    od_conv_shape shape = {
        .kind = "conv3d", .spatial = 3, .transposed = 0, .batch = config->batch,
        .in_channels = config->in_channels, .out_channels = config->out_channels, .groups = config->groups,
        .has_bias = config->bias, .input_grad_mode = config->input_grad_mode, .layout = config->layout,
    };
    copy_axes(shape.in_size, config->in_size, 3);
    copy_axes(shape.kernel, config->kernel, 3);
    copy_axes(shape.stride, config->stride, 3);
    copy_axes(shape.padding, config->padding, 3);
    copy_axes(shape.dilation, config->dilation, 3);

    od_conv3d *conv = calloc(1, sizeof *conv);
    if (conv == NULL) {
        od_fail(err, "conv3d: out of memory");
        return NULL;
    }
    if (make_layer(&conv->layer, &shape, err)) {
        od_conv3d_free(conv);
        return NULL;
    }
    return conv;
}

void od_conv3d_free(od_conv3d *conv)
{
    if (conv == NULL)
        return;
    od_conv_layer_release(&conv->layer);
    free(conv);
}

void od_conv3d_out_size(const od_conv3d *conv, int64_t out_size[3])
{
    copy_axes(out_size, conv->layer.out_size, 3);
}

int od_conv3d_forward(od_conv3d *conv, float *out, const float *in, const float *weight, const float *bias,
                      od_error *err)
{
    if (check_forward_args(&conv->layer, out, in, weight, bias, err))
        return -1;
    return od_conv_layer_forward(&conv->layer, out, in, weight, bias, err);
}

int od_conv3d_backward(od_conv3d *conv, float *d_in, float *d_weight, float *d_bias, const float *d_out,
                       const float *in, const float *weight, od_error *err)
{
    if (check_backward_args(&conv->layer, d_in, d_weight, d_bias, d_out, in, weight, err))
        return -1;
    return od_conv_layer_backward(&conv->layer, d_in, d_weight, d_bias, d_out, in, weight, err);
}

/* ---- 3D transposed convolution --------------------------------------- */

od_conv_transpose3d *od_conv_transpose3d_new(const od_conv_transpose3d_config *config, od_error *err)
{
    if (config == NULL) {
        od_fail(err, "conv_transpose3d: config is NULL");
        return NULL;
    }
    od_conv_shape shape = {
        .kind = "conv_transpose3d", .spatial = 3, .transposed = 1, .batch = config->batch,
        .in_channels = config->in_channels, .out_channels = config->out_channels, .groups = config->groups,
        .has_bias = config->bias, .input_grad_mode = config->input_grad_mode, .layout = config->layout,
    };
    copy_axes(shape.in_size, config->in_size, 3);
    copy_axes(shape.kernel, config->kernel, 3);
    copy_axes(shape.stride, config->stride, 3);
    copy_axes(shape.padding, config->padding, 3);
    copy_axes(shape.output_padding, config->output_padding, 3);
    copy_axes(shape.dilation, config->dilation, 3);

    od_conv_transpose3d *conv = calloc(1, sizeof *conv);
    if (conv == NULL) {
        od_fail(err, "conv_transpose3d: out of memory");
        return NULL;
    }
    if (make_layer(&conv->layer, &shape, err)) {
        od_conv_transpose3d_free(conv);
        return NULL;
    }
    return conv;
}

void od_conv_transpose3d_free(od_conv_transpose3d *conv)
{
    if (conv == NULL)
        return;
    od_conv_layer_release(&conv->layer);
    free(conv);
}

void od_conv_transpose3d_out_size(const od_conv_transpose3d *conv, int64_t out_size[3])
{
    copy_axes(out_size, conv->layer.out_size, 3);
}

int od_conv_transpose3d_forward(od_conv_transpose3d *conv, float *out, const float *in, const float *weight,
                                const float *bias, od_error *err)
{
    if (check_forward_args(&conv->layer, out, in, weight, bias, err))
        return -1;
    return od_conv_layer_forward(&conv->layer, out, in, weight, bias, err);
}

int od_conv_transpose3d_backward(od_conv_transpose3d *conv, float *d_in, float *d_weight, float *d_bias,
                                 const float *d_out, const float *in, const float *weight, od_error *err)
{
    if (check_backward_args(&conv->layer, d_in, d_weight, d_bias, d_out, in, weight, err))
        return -1;
    return od_conv_layer_backward(&conv->layer, d_in, d_weight, d_bias, d_out, in, weight, err);
}
