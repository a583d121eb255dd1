/* MobileNetV2 forward pass on the layer library; see mobilenetv2.h. */
#include "teacher/mobilenetv2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/linear.h"

/* Keras' BatchNormalization epsilon in every layer of this network. */
#define BN_EPS 1e-3
#define BLOCKS 17 /* expanded_conv (index 0) and block_1 .. block_16 */
#define HEAD_POOL 7

/* (expansion, output channels, stride) of each inverted residual block. */
static const int block_spec[BLOCKS][3] = {
    {1, 16, 1},                                                 /* expanded_conv */
    {6, 24, 2},  {6, 24, 1},                                    /* 1, 2 */
    {6, 32, 2},  {6, 32, 1},  {6, 32, 1},                       /* 3 .. 5 */
    {6, 64, 2},  {6, 64, 1},  {6, 64, 1},  {6, 64, 1},          /* 6 .. 9 */
    {6, 96, 1},  {6, 96, 1},  {6, 96, 1},                       /* 10 .. 12 */
    {6, 160, 2}, {6, 160, 1}, {6, 160, 1},                      /* 13 .. 15 */
    {6, 320, 1},                                                /* 16 */
};
static const int head_units[3] = {256, 128, OD_MOBILENETV2_CLASSES};

/* A convolution with batch norm folded in: weight (Cout, Cin/groups, kH, kW), bias (Cout). */
typedef struct folded_conv {
    od_conv2d *conv;
    float *weight;
    float *bias;
    int64_t out_h, out_w, out_c;
} folded_conv;

typedef struct block {
    int64_t in_h, in_w, in_c, hidden, out_c, stride;
    int64_t pad_top, pad_left; /* stride 2 only: Keras' ZeroPadding2D, bottom and right are 1 */
    int residual;
    folded_conv expand; /* absent (conv == NULL) in expanded_conv */
    folded_conv depthwise;
    folded_conv project;
} block;

struct od_mobilenetv2 {
    int64_t height, width;
    folded_conv stem; /* Conv1 */
    block blocks[BLOCKS];
    folded_conv top; /* Conv_1 */
    float *dense_w[3], *dense_b[3];
    int64_t dense_in[3];
    /* activations: two ping-pong buffers, the block's hidden maps and the padded copy */
    int64_t max_act, max_hidden, max_padded;
    float *act[2], *hidden[2], *padded;
};

static void folded_free(folded_conv *f)
{
    od_conv2d_free(f->conv);
    od_free(f->weight);
    od_free(f->bias);
}

static float *copy_tensor(const od_safetensors *st, const char *name, int ndim,
                          const int64_t *shape, od_error *err)
{
    od_tensor *t = od_safetensors_get(st, name, ndim, shape, err);
    if (t == NULL)
        return NULL;
    const int64_t n = od_tensor_numel(t);
    float *out = od_alloc_floats(n);
    if (out == NULL) {
        od_tensor_free(t);
        od_fail(err, "out of memory for %s", name);
        return NULL;
    }
    memcpy(out, t->data, (size_t)n * sizeof(float));
    od_tensor_free(t);
    return out;
}

/* Loads <conv>/kernel or <conv>/depthwise_kernel and folds <bn>/{gamma, beta,
 * moving_mean, moving_variance} into it, then makes the oneDNN layer for an
 * input of (in_h, in_w, in_c) with the given padding already applied. */
static int folded_load(folded_conv *f, const od_safetensors *st, const char *conv_name,
                       const char *bn_name, int depthwise, int64_t in_h, int64_t in_w,
                       int64_t in_c, int64_t out_c, int64_t kernel, int64_t stride,
                       int64_t padding, od_error *err)
{
    char name[128];
    const int64_t groups = depthwise ? in_c : 1;
    const int64_t wshape[4] = {out_c, in_c / groups, kernel, kernel};
    snprintf(name, sizeof name, "%s/%s", conv_name, depthwise ? "depthwise_kernel" : "kernel");
    f->weight = copy_tensor(st, name, 4, wshape, err);
    if (f->weight == NULL)
        return -1;
    const char *parts[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    float *bn[4] = {NULL, NULL, NULL, NULL};
    int status = 0;
    for (int p = 0; p < 4 && status == 0; p++) {
        snprintf(name, sizeof name, "%s/%s", bn_name, parts[p]);
        bn[p] = copy_tensor(st, name, 1, &out_c, err);
        if (bn[p] == NULL)
            status = -1;
    }
    f->bias = od_alloc_floats(out_c);
    if (status == 0 && f->bias == NULL)
        status = od_fail(err, "out of memory for %s", bn_name);
    if (status == 0) {
        const int64_t per_out = wshape[1] * kernel * kernel;
        for (int64_t o = 0; o < out_c; o++) {
            const double scale = bn[0][o] / sqrt((double)bn[3][o] + BN_EPS);
            for (int64_t i = 0; i < per_out; i++)
                f->weight[o * per_out + i] = (float)(f->weight[o * per_out + i] * scale);
            f->bias[o] = (float)(bn[1][o] - bn[2][o] * scale);
        }
    }
    for (int p = 0; p < 4; p++)
        od_free(bn[p]);
    if (status != 0)
        return -1;
    const od_conv2d_config config = {
        .batch = 1,
        .in_channels = in_c,
        .out_channels = out_c,
        .in_size = {in_h, in_w},
        .kernel = {kernel, kernel},
        .stride = {stride, stride},
        .padding = {padding, padding},
        .dilation = {1, 1},
        .groups = groups,
        .bias = 1,
    };
    f->conv = od_conv2d_new(&config, err);
    if (f->conv == NULL)
        return od_fail_context(err, "%s", conv_name);
    int64_t out_size[2];
    od_conv2d_out_size(f->conv, out_size);
    f->out_h = out_size[0];
    f->out_w = out_size[1];
    f->out_c = out_c;
    return 0;
}

static int64_t max_i64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

void od_mobilenetv2_free(od_mobilenetv2 *net)
{
    if (net == NULL)
        return;
    folded_free(&net->stem);
    for (int b = 0; b < BLOCKS; b++) {
        folded_free(&net->blocks[b].expand);
        folded_free(&net->blocks[b].depthwise);
        folded_free(&net->blocks[b].project);
    }
    folded_free(&net->top);
    for (int d = 0; d < 3; d++) {
        od_free(net->dense_w[d]);
        od_free(net->dense_b[d]);
    }
    for (int i = 0; i < 2; i++) {
        od_free(net->act[i]);
        od_free(net->hidden[i]);
    }
    od_free(net->padded);
    free(net);
}

od_mobilenetv2 *od_mobilenetv2_load(const char *path, int64_t height, int64_t width,
                                    od_error *err)
{
    if (path == NULL)
        path = OD_MOBILENETV2_DEFAULT_PATH;
    if (height < 32 || width < 32 || height > 16384 || width > 16384) {
        od_fail(err, "MobileNetV2 input must be 32 to 16384 pixels on each side, got %lld x %lld",
                (long long)height, (long long)width);
        return NULL;
    }
    if (access(path, R_OK) != 0) {
        od_fail(err, "MobileNetV2 weights %s are missing: run scripts/fetch_weights.sh from the "
                     "repository root to fetch and convert them", path);
        return NULL;
    }
    od_safetensors *st = od_safetensors_read(path, err);
    if (st == NULL)
        return NULL;
    od_mobilenetv2 *net = calloc(1, sizeof *net);
    if (net == NULL) {
        od_safetensors_free(st);
        od_fail(err, "out of memory");
        return NULL;
    }
    net->height = height;
    net->width = width;

    /* Conv1: ZeroPadding2D then a valid 3 x 3 stride-2 convolution. */
    int64_t pad_top = height % 2, pad_left = width % 2;
    int64_t stem_h = height + pad_top + 1, stem_w = width + pad_left + 1;
    int status = folded_load(&net->stem, st, "Conv1", "bn_Conv1", 0, stem_h, stem_w, 3, 32, 3,
                             2, 0, err);
    net->max_padded = stem_h * stem_w * 3;
    net->max_act = net->stem.out_h * net->stem.out_w * 32;
    int64_t h = net->stem.out_h, w = net->stem.out_w, c = 32;
    for (int b = 0; b < BLOCKS && status == 0; b++) {
        block *bl = &net->blocks[b];
        char prefix[32], conv[64], bn[64];
        if (b == 0)
            snprintf(prefix, sizeof prefix, "expanded_conv");
        else
            snprintf(prefix, sizeof prefix, "block_%d", b);
        bl->in_h = h;
        bl->in_w = w;
        bl->in_c = c;
        bl->hidden = c * block_spec[b][0];
        bl->out_c = block_spec[b][1];
        bl->stride = block_spec[b][2];
        bl->residual = bl->stride == 1 && bl->in_c == bl->out_c;
        if (b > 0) {
            snprintf(conv, sizeof conv, "%s_expand", prefix);
            snprintf(bn, sizeof bn, "%s_expand_BN", prefix);
            status = folded_load(&bl->expand, st, conv, bn, 0, h, w, c, bl->hidden, 1, 1, 0, err);
        }
        if (status != 0)
            break;
        snprintf(conv, sizeof conv, "%s_depthwise", prefix);
        snprintf(bn, sizeof bn, "%s_depthwise_BN", prefix);
        if (bl->stride == 2) {
            bl->pad_top = h % 2;
            bl->pad_left = w % 2;
            const int64_t ph = h + bl->pad_top + 1, pw = w + bl->pad_left + 1;
            net->max_padded = max_i64(net->max_padded, ph * pw * bl->hidden);
            status = folded_load(&bl->depthwise, st, conv, bn, 1, ph, pw, bl->hidden, bl->hidden,
                                 3, 2, 0, err);
        } else {
            status = folded_load(&bl->depthwise, st, conv, bn, 1, h, w, bl->hidden, bl->hidden,
                                 3, 1, 1, err);
        }
        if (status != 0)
            break;
        const int64_t oh = bl->depthwise.out_h, ow = bl->depthwise.out_w;
        snprintf(conv, sizeof conv, "%s_project", prefix);
        snprintf(bn, sizeof bn, "%s_project_BN", prefix);
        status = folded_load(&bl->project, st, conv, bn, 0, oh, ow, bl->hidden, bl->out_c, 1, 1,
                             0, err);
        net->max_hidden = max_i64(net->max_hidden, max_i64(h * w, oh * ow) * bl->hidden);
        h = oh;
        w = ow;
        c = bl->out_c;
        net->max_act = max_i64(net->max_act, h * w * c);
    }
    if (status == 0)
        status = folded_load(&net->top, st, "Conv_1", "Conv_1_bn", 0, h, w, c, 1280, 1, 1, 0, err);
    net->max_act = max_i64(net->max_act, h * w * 1280);
    int64_t in_features = 1280;
    for (int d = 0; d < 3 && status == 0; d++) {
        char name[64];
        const int64_t wshape[2] = {head_units[d], in_features};
        const int64_t bshape[1] = {head_units[d]};
        snprintf(name, sizeof name, "dense_%d/kernel", d + 1);
        net->dense_w[d] = copy_tensor(st, name, 2, wshape, err);
        snprintf(name, sizeof name, "dense_%d/bias", d + 1);
        if (net->dense_w[d] != NULL)
            net->dense_b[d] = copy_tensor(st, name, 1, bshape, err);
        if (net->dense_w[d] == NULL || net->dense_b[d] == NULL)
            status = -1;
        net->dense_in[d] = in_features;
        in_features = head_units[d];
    }
    od_safetensors_free(st);
    if (status == 0) {
        for (int i = 0; i < 2 && status == 0; i++) {
            net->act[i] = od_alloc_floats(net->max_act);
            net->hidden[i] = od_alloc_floats(net->max_hidden);
            if (net->act[i] == NULL || net->hidden[i] == NULL)
                status = od_fail(err, "out of memory for MobileNetV2 activations");
        }
        net->padded = od_alloc_floats(net->max_padded);
        if (status == 0 && net->padded == NULL)
            status = od_fail(err, "out of memory for MobileNetV2 activations");
    }
    if (status != 0) {
        od_fail_context(err, "loading MobileNetV2 from %s", path);
        od_mobilenetv2_free(net);
        return NULL;
    }
    return net;
}

/* Layer name -> the point where forward captures it. */
typedef enum stage {
    STAGE_STEM,      /* Conv1_relu */
    STAGE_EXPAND,    /* block_<i>_expand_relu */
    STAGE_DEPTHWISE, /* *_depthwise_relu */
    STAGE_PROJECT,   /* *_project_BN */
    STAGE_ADD,       /* block_<i>_add */
    STAGE_TOP,       /* out_relu */
} stage;

static int parse_layer(const od_mobilenetv2 *net, const char *layer, stage *where, int *which,
                       int64_t shape[3], od_error *err)
{
    *which = 0;
    if (strcmp(layer, "Conv1_relu") == 0) {
        *where = STAGE_STEM;
        shape[0] = net->stem.out_h, shape[1] = net->stem.out_w, shape[2] = net->stem.out_c;
        return 0;
    }
    if (strcmp(layer, "out_relu") == 0) {
        *where = STAGE_TOP;
        shape[0] = net->top.out_h, shape[1] = net->top.out_w, shape[2] = net->top.out_c;
        return 0;
    }
    int b = -1;
    const char *rest = NULL;
    if (strncmp(layer, "expanded_conv_", 14) == 0) {
        b = 0;
        rest = layer + 14;
    } else if (strncmp(layer, "block_", 6) == 0) {
        char *end = NULL;
        const long v = strtol(layer + 6, &end, 10);
        if (end != layer + 6 && *end == '_' && v >= 1 && v < BLOCKS) {
            b = (int)v;
            rest = end + 1;
        }
    }
    if (b >= 0) {
        const block *bl = &net->blocks[b];
        *which = b;
        if (b > 0 && strcmp(rest, "expand_relu") == 0) {
            *where = STAGE_EXPAND;
            shape[0] = bl->in_h, shape[1] = bl->in_w, shape[2] = bl->hidden;
            return 0;
        }
        if (strcmp(rest, "depthwise_relu") == 0) {
            *where = STAGE_DEPTHWISE;
            shape[0] = bl->depthwise.out_h, shape[1] = bl->depthwise.out_w, shape[2] = bl->hidden;
            return 0;
        }
        if (strcmp(rest, "project_BN") == 0 || (bl->residual && strcmp(rest, "add") == 0)) {
            *where = rest[0] == 'a' ? STAGE_ADD : STAGE_PROJECT;
            shape[0] = bl->project.out_h, shape[1] = bl->project.out_w, shape[2] = bl->out_c;
            return 0;
        }
    }
    return od_fail(err, "MobileNetV2 has no layer named \"%s\" (try block_13_expand_relu, "
                        "block_<i>_depthwise_relu, block_<i>_project_BN, block_<i>_add, "
                        "Conv1_relu or out_relu)", layer);
}

int od_mobilenetv2_layer_shape(const od_mobilenetv2 *net, const char *layer, int64_t shape[3],
                               od_error *err)
{
    stage where;
    int which;
    if (layer == NULL)
        return od_fail(err, "MobileNetV2 layer name is NULL");
    return parse_layer(net, layer, &where, &which, shape, err);
}

/* Copies in (h, w, c) into out (h + top + 1, w + left + 1, c) with zeros on
 * the top/left (top, left rows) and bottom/right (one row), as Keras'
 * ZeroPadding2D before each stride-2 convolution. */
static void pad_map(float *out, const float *in, int64_t h, int64_t w, int64_t c, int64_t top,
                    int64_t left)
{
    const int64_t ow = w + left + 1, oh = h + top + 1;
    memset(out, 0, (size_t)(oh * ow * c) * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int64_t y = 0; y < h; y++)
        memcpy(out + ((y + top) * ow + left) * c, in + y * w * c, (size_t)(w * c) * sizeof(float));
}

static void capture(float *dst, const float *src, int64_t count)
{
    memcpy(dst, src, (size_t)count * sizeof(float));
}

int od_mobilenetv2_forward(od_mobilenetv2 *net, const float *image, const char *layer,
                           float *layer_out, float *logits, od_error *err)
{
    stage where = STAGE_TOP;
    int which = 0;
    int64_t shape[3] = {0, 0, 0};
    if ((layer == NULL) != (layer_out == NULL))
        return od_fail(err, "MobileNetV2 forward: layer and layer_out must both be set or both NULL");
    if (layer != NULL && parse_layer(net, layer, &where, &which, shape, err) != 0)
        return -1;
    if (logits != NULL && (net->top.out_h != HEAD_POOL || net->top.out_w != HEAD_POOL))
        return od_fail(err, "MobileNetV2 logits need a %d x %d input, this object is for %lld x %lld",
                       OD_MOBILENETV2_INPUT_SIZE, OD_MOBILENETV2_INPUT_SIZE,
                       (long long)net->height, (long long)net->width);
    const int64_t capture_count = layer != NULL ? shape[0] * shape[1] * shape[2] : 0;

    pad_map(net->padded, image, net->height, net->width, 3, net->height % 2, net->width % 2);
    float *x = net->act[0], *y = net->act[1];
    if (od_conv2d_forward(net->stem.conv, x, net->padded, net->stem.weight, net->stem.bias, err))
        return -1;
    int64_t count = net->stem.out_h * net->stem.out_w * 32;
    od_relu6_forward(x, x, count);
    if (layer != NULL && where == STAGE_STEM) {
        capture(layer_out, x, capture_count);
        if (logits == NULL)
            return 0;
    }
    for (int b = 0; b < BLOCKS; b++) {
        block *bl = &net->blocks[b];
        const int here = layer != NULL && which == b;
        const float *expanded = x;
        if (bl->expand.conv != NULL) {
            if (od_conv2d_forward(bl->expand.conv, net->hidden[0], x, bl->expand.weight,
                                  bl->expand.bias, err))
                return od_fail_context(err, "block_%d_expand", b);
            od_relu6_forward(net->hidden[0], net->hidden[0], bl->in_h * bl->in_w * bl->hidden);
            expanded = net->hidden[0];
            if (here && where == STAGE_EXPAND) {
                capture(layer_out, expanded, capture_count);
                if (logits == NULL)
                    return 0;
            }
        }
        if (bl->stride == 2) {
            pad_map(net->padded, expanded, bl->in_h, bl->in_w, bl->hidden, bl->pad_top,
                    bl->pad_left);
            expanded = net->padded;
        }
        float *dw = net->hidden[1];
        if (od_conv2d_forward(bl->depthwise.conv, dw, expanded, bl->depthwise.weight,
                              bl->depthwise.bias, err))
            return od_fail_context(err, "block %d depthwise", b);
        const int64_t out_hw = bl->depthwise.out_h * bl->depthwise.out_w;
        od_relu6_forward(dw, dw, out_hw * bl->hidden);
        if (here && where == STAGE_DEPTHWISE) {
            capture(layer_out, dw, capture_count);
            if (logits == NULL)
                return 0;
        }
        if (od_conv2d_forward(bl->project.conv, y, dw, bl->project.weight, bl->project.bias, err))
            return od_fail_context(err, "block %d project", b);
        count = out_hw * bl->out_c;
        if (here && where == STAGE_PROJECT) {
            capture(layer_out, y, capture_count);
            if (logits == NULL)
                return 0;
        }
        if (bl->residual) {
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < count; i++)
                y[i] += x[i];
            if (here && where == STAGE_ADD) {
                capture(layer_out, y, capture_count);
                if (logits == NULL)
                    return 0;
            }
        }
        float *t = x;
        x = y;
        y = t;
    }
    if (od_conv2d_forward(net->top.conv, y, x, net->top.weight, net->top.bias, err))
        return od_fail_context(err, "Conv_1");
    const int64_t top_hw = net->top.out_h * net->top.out_w;
    od_relu6_forward(y, y, top_hw * 1280);
    if (layer != NULL && where == STAGE_TOP)
        capture(layer_out, y, capture_count);
    if (logits == NULL)
        return 0;

    /* Head: 7 x 7 average pooling over the 7 x 7 map is the mean over all
     * positions; then dense + ReLU, dense + ReLU, dense (the logits). */
    float pooled[1280], h1[256], h2[128];
    for (int64_t ch = 0; ch < 1280; ch++)
        pooled[ch] = 0.0f;
    for (int64_t p = 0; p < top_hw; p++)
        for (int64_t ch = 0; ch < 1280; ch++)
            pooled[ch] += y[p * 1280 + ch];
    for (int64_t ch = 0; ch < 1280; ch++)
        pooled[ch] /= (float)top_hw;
    od_linear_forward(h1, pooled, net->dense_w[0], net->dense_b[0], 1, 1280, 256);
    od_relu_forward(h1, h1, 256);
    od_linear_forward(h2, h1, net->dense_w[1], net->dense_b[1], 1, 256, 128);
    od_relu_forward(h2, h2, 128);
    od_linear_forward(logits, h2, net->dense_w[2], net->dense_b[2], 1, 128,
                      OD_MOBILENETV2_CLASSES);
    return 0;
}

int od_mobilenetv2_forward_image(od_mobilenetv2 *net, const od_image *image, const char *layer,
                                 float *layer_out, float *logits, od_error *err)
{
    if (image == NULL || image->pixels == NULL || image->channels != 3)
        return od_fail(err, "MobileNetV2 needs an RGB image (3 channels)");
    if (image->width == net->width && image->height == net->height)
        return od_mobilenetv2_forward(net, image->pixels, layer, layer_out, logits, err);
    od_image resized = {0};
    if (od_image_resize(image, (int)net->width, (int)net->height, &resized, err) != 0)
        return -1;
    const int status = od_mobilenetv2_forward(net, resized.pixels, layer, layer_out, logits, err);
    od_image_free(&resized);
    return status;
}
