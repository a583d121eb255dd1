/* Keras functional model interpreter; see keras_graph.h. */
#include "teacher/keras_graph.h"

#include <cjson/cJSON.h>
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
#include "nn/softmax.h"

#define MAX_INPUTS 8
#define NAME_SIZE 128

typedef enum node_kind {
    NODE_INPUT,
    NODE_CONV,      /* Conv2D and DepthwiseConv2D */
    NODE_BATCHNORM, /* folded into its convolution, or a per-channel scale and shift */
    NODE_ACTIVATION,
    NODE_ZEROPAD,
    NODE_MAXPOOL,
    NODE_AVGPOOL,
    NODE_CONCAT,
    NODE_ADD,
    NODE_IDENTITY, /* Flatten and Dropout: the same floats */
    NODE_DENSE,
} node_kind;

typedef enum activation_kind {
    ACT_LINEAR,
    ACT_RELU, /* min(max(x, 0), relu_max) */
    ACT_SOFTMAX,
} activation_kind;

typedef struct node {
    char name[NAME_SIZE];
    node_kind kind;
    int inputs[MAX_INPUTS];
    int input_count;
    int consumers;
    int64_t h, w, c; /* output shape; a vector is (1, 1, n) */
    float *out;      /* owned unless `alias` */
    int alias;       /* out is an input's buffer (identity, folded batch norm, in-place activation) */
    activation_kind activation;
    float relu_max;
    /* convolution and dense */
    od_conv2d *conv;
    float *weight, *bias;
    int64_t weight_per_out; /* Cin / groups * kH * kW */
    int64_t pad[4]; /* top, bottom, left, right: zero padding (also ZeroPadding2D and pools) */
    float *padded;  /* the input with asymmetric padding applied, when needed */
    float *pre;     /* Dense: values before a softmax activation */
    /* pooling */
    int64_t pool[2], stride[2];
    /* batch norm that is not folded: out = in * scale + shift */
    float *scale, *shift;
} node;

struct od_keras_graph {
    node *nodes;
    int count;
    int64_t height, width;
};

static int find_node(const od_keras_graph *g, const char *name)
{
    for (int i = 0; i < g->count; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return i;
    return -1;
}

void od_keras_graph_free(od_keras_graph *g)
{
    if (g == NULL)
        return;
    for (int i = 0; i < g->count; i++) {
        node *n = &g->nodes[i];
        if (!n->alias)
            od_free(n->out);
        od_conv2d_free(n->conv);
        od_free(n->weight);
        od_free(n->bias);
        od_free(n->padded);
        od_free(n->pre);
        od_free(n->scale);
        od_free(n->shift);
    }
    free(g->nodes);
    free(g);
}

static float *load_floats(const od_safetensors *st, const char *layer, const char *leaf, int ndim,
                          const int64_t *shape, od_error *err)
{
    char name[2 * NAME_SIZE];
    snprintf(name, sizeof name, "%s/%s", layer, leaf);
    od_tensor *t = od_safetensors_get(st, name, ndim, shape, err);
    if (t == NULL)
        return NULL;
    const int64_t count = od_tensor_numel(t);
    float *out = od_alloc_floats(count);
    if (out != NULL)
        memcpy(out, t->data, (size_t)count * sizeof(float));
    else
        od_fail(err, "out of memory for %s", name);
    od_tensor_free(t);
    return out;
}

/* Reads a pair such as "strides": [2, 2] or a single integer. */
static int read_pair(const cJSON *config, const char *key, int64_t pair[2], int64_t fallback)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(config, key);
    if (item == NULL || cJSON_IsNull(item)) {
        pair[0] = pair[1] = fallback;
        return 0;
    }
    if (cJSON_IsNumber(item)) {
        pair[0] = pair[1] = (int64_t)item->valuedouble;
        return 0;
    }
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2)
        return -1;
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetArrayItem(item, i);
        if (!cJSON_IsNumber(v))
            return -1;
        pair[i] = (int64_t)v->valuedouble;
    }
    return 0;
}

static const char *read_string(const cJSON *config, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(config, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* Sets pad[] and the output size of one axis for TensorFlow's "valid" or
 * "same" padding. "same" gives ceil(in / stride) outputs, with the odd
 * padded row at the bottom or right. */
static int64_t padded_axis(int64_t in, int64_t kernel, int64_t stride, int same, int64_t *low,
                           int64_t *high)
{
    if (!same) {
        *low = *high = 0;
        return in < kernel ? 0 : (in - kernel) / stride + 1;
    }
    const int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + kernel - in;
    total = total > 0 ? total : 0;
    *low = total / 2;
    *high = total - *low;
    return out;
}

static int parse_padding(const char *padding, int *same, const char *layer, od_error *err)
{
    if (padding != NULL && strcmp(padding, "same") == 0)
        *same = 1;
    else if (padding != NULL && strcmp(padding, "valid") == 0)
        *same = 0;
    else
        return od_fail(err, "layer %s: padding \"%s\" is not handled", layer,
                       padding ? padding : "(missing)");
    return 0;
}

static int parse_activation(node *n, const char *name, od_error *err)
{
    n->relu_max = INFINITY;
    if (name == NULL || strcmp(name, "linear") == 0)
        n->activation = ACT_LINEAR;
    else if (strcmp(name, "relu") == 0)
        n->activation = ACT_RELU;
    else if (strcmp(name, "softmax") == 0)
        n->activation = ACT_SOFTMAX;
    else
        return od_fail(err, "layer %s: activation \"%s\" is not handled", n->name, name);
    return 0;
}

static int setup_conv(node *n, const node *in, const cJSON *config, const od_safetensors *st,
                      int depthwise, od_error *err)
{
    int64_t kernel[2], stride[2], dilation[2];
    int same = 0;
    if (read_pair(config, "kernel_size", kernel, 1) || read_pair(config, "strides", stride, 1) ||
        read_pair(config, "dilation_rate", dilation, 1))
        return od_fail(err, "layer %s: invalid kernel_size, strides or dilation_rate", n->name);
    if (parse_padding(read_string(config, "padding"), &same, n->name, err))
        return -1;
    if (parse_activation(n, read_string(config, "activation"), err))
        return -1;
    if (dilation[0] != 1 || dilation[1] != 1)
        return od_fail(err, "layer %s: dilated convolutions are not handled", n->name);
    int64_t out_c = in->c, groups = in->c;
    if (!depthwise) {
        const cJSON *filters = cJSON_GetObjectItemCaseSensitive(config, "filters");
        if (!cJSON_IsNumber(filters) || filters->valuedouble < 1)
            return od_fail(err, "layer %s: invalid filters", n->name);
        out_c = (int64_t)filters->valuedouble;
        groups = 1;
    } else {
        const cJSON *multiplier = cJSON_GetObjectItemCaseSensitive(config, "depth_multiplier");
        if (multiplier != NULL && (!cJSON_IsNumber(multiplier) || multiplier->valuedouble != 1))
            return od_fail(err, "layer %s: depth_multiplier other than 1 is not handled", n->name);
    }
    const int64_t wshape[4] = {out_c, in->c / groups, kernel[0], kernel[1]};
    n->weight_per_out = wshape[1] * kernel[0] * kernel[1];
    n->weight = load_floats(st, n->name, depthwise ? "depthwise_kernel" : "kernel", 4, wshape, err);
    if (n->weight == NULL)
        return -1;
    const cJSON *use_bias = cJSON_GetObjectItemCaseSensitive(config, "use_bias");
    if (cJSON_IsTrue(use_bias)) {
        n->bias = load_floats(st, n->name, "bias", 1, &out_c, err);
        if (n->bias == NULL)
            return -1;
    } else {
        n->bias = od_alloc_floats(out_c); /* zeros; a folded batch norm fills it */
        if (n->bias == NULL)
            return od_fail(err, "out of memory");
    }
    n->h = padded_axis(in->h, kernel[0], stride[0], same, &n->pad[0], &n->pad[1]);
    n->w = padded_axis(in->w, kernel[1], stride[1], same, &n->pad[2], &n->pad[3]);
    n->c = out_c;
    if (n->h < 1 || n->w < 1)
        return od_fail(err, "layer %s: the input of %lld x %lld is smaller than the kernel",
                       n->name, (long long)in->h, (long long)in->w);
    const int symmetric = n->pad[0] == n->pad[1] && n->pad[2] == n->pad[3];
    od_conv2d_config cfg = {
        .batch = 1,
        .in_channels = in->c,
        .out_channels = out_c,
        .in_size = {in->h, in->w},
        .kernel = {kernel[0], kernel[1]},
        .stride = {stride[0], stride[1]},
        .padding = {n->pad[0], n->pad[2]},
        .dilation = {1, 1},
        .groups = groups,
        .bias = 1,
    };
    if (!symmetric) {
        cfg.in_size[0] = in->h + n->pad[0] + n->pad[1];
        cfg.in_size[1] = in->w + n->pad[2] + n->pad[3];
        cfg.padding[0] = cfg.padding[1] = 0;
        n->padded = od_alloc_floats(cfg.in_size[0] * cfg.in_size[1] * in->c);
        if (n->padded == NULL)
            return od_fail(err, "out of memory");
    } else {
        n->pad[0] = n->pad[1] = n->pad[2] = n->pad[3] = 0;
    }
    n->conv = od_conv2d_new(&cfg, err);
    if (n->conv == NULL)
        return od_fail_context(err, "layer %s", n->name);
    return 0;
}

/* Reads gamma (or ones when scale is false), beta (or zeros when center is
 * false), the moving mean and variance. Folds them into the input
 * convolution when it feeds only this layer, else keeps a scale and shift. */
static int setup_batchnorm(node *n, node *in, const cJSON *config, const od_safetensors *st,
                           od_error *err)
{
    const int64_t c = in->c;
    const cJSON *eps_item = cJSON_GetObjectItemCaseSensitive(config, "epsilon");
    const double eps = cJSON_IsNumber(eps_item) ? eps_item->valuedouble : 1e-3;
    const cJSON *axis = cJSON_GetObjectItemCaseSensitive(config, "axis");
    if (axis != NULL && !(cJSON_IsNumber(axis) && (axis->valueint == -1 || axis->valueint == 3)))
        return od_fail(err, "layer %s: batch norm over an axis other than channels", n->name);

    float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
    int failed = 0;
    if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(config, "scale")))
        failed |= (gamma = load_floats(st, n->name, "gamma", 1, &c, err)) == NULL;
    if (!failed && !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(config, "center")))
        failed |= (beta = load_floats(st, n->name, "beta", 1, &c, err)) == NULL;
    if (!failed)
        failed |= (mean = load_floats(st, n->name, "moving_mean", 1, &c, err)) == NULL;
    if (!failed)
        failed |= (var = load_floats(st, n->name, "moving_variance", 1, &c, err)) == NULL;

    const int fold = in->kind == NODE_CONV && in->consumers == 1 && in->activation == ACT_LINEAR;
    if (!failed && !fold) {
        n->scale = od_alloc_floats(c);
        n->shift = od_alloc_floats(c);
        if (n->scale == NULL || n->shift == NULL)
            failed = od_fail(err, "out of memory") != 0;
    }
    for (int64_t o = 0; !failed && o < c; o++) {
        const double s = (gamma ? gamma[o] : 1.0) / sqrt((double)var[o] + eps);
        const double shift = (beta ? beta[o] : 0.0) - mean[o] * s;
        if (fold) {
            float *row = in->weight + o * in->weight_per_out;
            for (int64_t i = 0; i < in->weight_per_out; i++)
                row[i] = (float)(row[i] * s);
            in->bias[o] = (float)(in->bias[o] * s + shift);
        } else {
            n->scale[o] = (float)s;
            n->shift[o] = (float)shift;
        }
    }
    n->h = in->h, n->w = in->w, n->c = c;
    n->alias = fold;
    od_free(gamma);
    od_free(beta);
    od_free(mean);
    od_free(var);
    return failed ? -1 : 0;
}

static int setup_pool(node *n, const node *in, const cJSON *config, od_error *err)
{
    int same = 0;
    if (read_pair(config, "pool_size", n->pool, 2) || read_pair(config, "strides", n->stride, -1))
        return od_fail(err, "layer %s: invalid pool_size or strides", n->name);
    if (n->stride[0] < 1) { /* Keras: strides default to the pool size */
        n->stride[0] = n->pool[0];
        n->stride[1] = n->pool[1];
    }
    if (parse_padding(read_string(config, "padding"), &same, n->name, err))
        return -1;
    n->h = padded_axis(in->h, n->pool[0], n->stride[0], same, &n->pad[0], &n->pad[1]);
    n->w = padded_axis(in->w, n->pool[1], n->stride[1], same, &n->pad[2], &n->pad[3]);
    n->c = in->c;
    if (n->h < 1 || n->w < 1)
        return od_fail(err, "layer %s: the input is smaller than the pool", n->name);
    return 0;
}

/* ZeroPadding2D's "padding": an integer, [h, w], or [[top, bottom], [left, right]]. */
static int setup_zeropad(node *n, const node *in, const cJSON *config, od_error *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(config, "padding");
    int ok = 1;
    if (cJSON_IsNumber(p)) {
        n->pad[0] = n->pad[1] = n->pad[2] = n->pad[3] = (int64_t)p->valuedouble;
    } else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 2) {
        for (int axis = 0; axis < 2 && ok; axis++) {
            const cJSON *a = cJSON_GetArrayItem(p, axis);
            if (cJSON_IsNumber(a)) {
                n->pad[2 * axis] = n->pad[2 * axis + 1] = (int64_t)a->valuedouble;
            } else if (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2 &&
                       cJSON_IsNumber(cJSON_GetArrayItem(a, 0)) &&
                       cJSON_IsNumber(cJSON_GetArrayItem(a, 1))) {
                n->pad[2 * axis] = (int64_t)cJSON_GetArrayItem(a, 0)->valuedouble;
                n->pad[2 * axis + 1] = (int64_t)cJSON_GetArrayItem(a, 1)->valuedouble;
            } else {
                ok = 0;
            }
        }
    } else {
        ok = 0;
    }
    for (int i = 0; i < 4; i++)
        ok &= n->pad[i] >= 0 && n->pad[i] <= 1024;
    if (!ok)
        return od_fail(err, "layer %s: invalid padding", n->name);
    n->h = in->h + n->pad[0] + n->pad[1];
    n->w = in->w + n->pad[2] + n->pad[3];
    n->c = in->c;
    return 0;
}

static int setup_dense(node *n, const node *in, const cJSON *config, const od_safetensors *st,
                       od_error *err)
{
    const cJSON *units = cJSON_GetObjectItemCaseSensitive(config, "units");
    if (!cJSON_IsNumber(units) || units->valuedouble < 1)
        return od_fail(err, "layer %s: invalid units", n->name);
    if (parse_activation(n, read_string(config, "activation"), err))
        return -1;
    const int64_t in_features = in->h * in->w * in->c;
    const int64_t out_features = (int64_t)units->valuedouble;
    const int64_t wshape[2] = {out_features, in_features};
    if (in->h != 1 || in->w != 1) {
        /* Dense on a map: Keras applies it per position, which these models never do. */
        return od_fail(err, "layer %s: Dense needs a flat input, got %lld x %lld x %lld (the "
                            "model's head only runs at the input size it was built for)",
                       n->name, (long long)in->h, (long long)in->w, (long long)in->c);
    }
    n->weight = load_floats(st, n->name, "kernel", 2, wshape, err);
    if (n->weight == NULL)
        return -1;
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(config, "use_bias")))
        n->bias = NULL;
    else if ((n->bias = load_floats(st, n->name, "bias", 1, &out_features, err)) == NULL)
        return -1;
    n->weight_per_out = in_features;
    n->h = n->w = 1;
    n->c = out_features;
    n->pre = od_alloc_floats(out_features);
    return n->pre == NULL ? od_fail(err, "out of memory") : 0;
}

/* Flatten gives (1, 1, H * W * C): channels-last memory is already
 * Keras' flattening order. */
static int setup_layer(od_keras_graph *g, node *n, const char *class_name, const cJSON *config,
                       const od_safetensors *st, od_error *err)
{
    node *in = n->input_count > 0 ? &g->nodes[n->inputs[0]] : NULL;
    if (strcmp(class_name, "InputLayer") == 0) {
        n->kind = NODE_INPUT;
        n->h = g->height, n->w = g->width, n->c = 3;
        return 0;
    }
    if (in == NULL)
        return od_fail(err, "layer %s (%s) has no input", n->name, class_name);
    const int single = n->input_count == 1;
    if (strcmp(class_name, "Conv2D") == 0 && single) {
        n->kind = NODE_CONV;
        return setup_conv(n, in, config, st, 0, err);
    }
    if (strcmp(class_name, "DepthwiseConv2D") == 0 && single) {
        n->kind = NODE_CONV;
        return setup_conv(n, in, config, st, 1, err);
    }
    if (strcmp(class_name, "BatchNormalization") == 0 && single) {
        n->kind = NODE_BATCHNORM;
        return setup_batchnorm(n, in, config, st, err);
    }
    if ((strcmp(class_name, "Activation") == 0 || strcmp(class_name, "ReLU") == 0) && single) {
        n->kind = NODE_ACTIVATION;
        n->h = in->h, n->w = in->w, n->c = in->c;
        if (strcmp(class_name, "Activation") == 0)
            return parse_activation(n, read_string(config, "activation"), err);
        const cJSON *max_value = cJSON_GetObjectItemCaseSensitive(config, "max_value");
        const cJSON *slope = cJSON_GetObjectItemCaseSensitive(config, "negative_slope");
        const cJSON *threshold = cJSON_GetObjectItemCaseSensitive(config, "threshold");
        if ((slope != NULL && (!cJSON_IsNumber(slope) || slope->valuedouble != 0)) ||
            (threshold != NULL && (!cJSON_IsNumber(threshold) || threshold->valuedouble != 0)))
            return od_fail(err, "layer %s: ReLU with a negative slope or threshold is not handled",
                           n->name);
        n->activation = ACT_RELU;
        n->relu_max = cJSON_IsNumber(max_value) ? (float)max_value->valuedouble : INFINITY;
        return 0;
    }
    if (strcmp(class_name, "ZeroPadding2D") == 0 && single) {
        n->kind = NODE_ZEROPAD;
        return setup_zeropad(n, in, config, err);
    }
    if ((strcmp(class_name, "MaxPooling2D") == 0 || strcmp(class_name, "AveragePooling2D") == 0) &&
        single) {
        n->kind = class_name[0] == 'M' ? NODE_MAXPOOL : NODE_AVGPOOL;
        return setup_pool(n, in, config, err);
    }
    if (strcmp(class_name, "Concatenate") == 0 || strcmp(class_name, "Add") == 0) {
        n->kind = class_name[0] == 'C' ? NODE_CONCAT : NODE_ADD;
        const cJSON *axis = cJSON_GetObjectItemCaseSensitive(config, "axis");
        if (n->kind == NODE_CONCAT && axis != NULL &&
            !(cJSON_IsNumber(axis) && (axis->valueint == -1 || axis->valueint == 3)))
            return od_fail(err, "layer %s: concatenation off the channel axis", n->name);
        n->h = in->h, n->w = in->w, n->c = 0;
        for (int i = 0; i < n->input_count; i++) {
            const node *other = &g->nodes[n->inputs[i]];
            if (other->h != in->h || other->w != in->w ||
                (n->kind == NODE_ADD && other->c != in->c))
                return od_fail(err, "layer %s: inputs of different shapes", n->name);
            n->c += other->c;
        }
        if (n->kind == NODE_ADD)
            n->c = in->c;
        return 0;
    }
    if ((strcmp(class_name, "Flatten") == 0 || strcmp(class_name, "Dropout") == 0) && single) {
        n->kind = NODE_IDENTITY;
        n->alias = 1;
        n->h = in->h, n->w = in->w, n->c = in->c;
        if (class_name[0] == 'F') {
            n->c = in->h * in->w * in->c;
            n->h = n->w = 1;
        }
        return 0;
    }
    if (strcmp(class_name, "Dense") == 0 && single) {
        n->kind = NODE_DENSE;
        return setup_dense(n, in, config, st, err);
    }
    return od_fail(err, "layer %s: %s with %d inputs is not handled", n->name, class_name,
                   n->input_count);
}

/* Fills nodes[] from the layers list: names, inputs and consumer counts. */
static int read_layers(od_keras_graph *g, const cJSON *layers, od_error *err)
{
    const int count = cJSON_GetArraySize(layers);
    g->nodes = calloc((size_t)(count > 0 ? count : 1), sizeof(node));
    if (g->nodes == NULL)
        return od_fail(err, "out of memory");
    for (int i = 0; i < count; i++) {
        const cJSON *layer = cJSON_GetArrayItem(layers, i);
        const char *name = read_string(layer, "name");
        if (name == NULL || strlen(name) >= NAME_SIZE)
            return od_fail(err, "layer %d has no name or a name over %d characters", i, NAME_SIZE - 1);
        node *n = &g->nodes[i];
        snprintf(n->name, sizeof n->name, "%s", name);
        if (find_node(g, name) >= 0)
            return od_fail(err, "two layers are named %s", name);
        g->count = i + 1;
        const cJSON *inbound = cJSON_GetObjectItemCaseSensitive(layer, "inbound_nodes");
        const int calls = cJSON_GetArraySize(inbound);
        if (calls > 1)
            return od_fail(err, "layer %s is called %d times; shared layers are not handled", name,
                           calls);
        const cJSON *sources = calls == 1 ? cJSON_GetArrayItem(inbound, 0) : NULL;
        const int source_count = cJSON_GetArraySize(sources);
        if (source_count > MAX_INPUTS)
            return od_fail(err, "layer %s has %d inputs, over %d", name, source_count, MAX_INPUTS);
        for (int k = 0; k < source_count; k++) {
            const cJSON *source = cJSON_GetArrayItem(sources, k);
            const cJSON *source_name = cJSON_GetArrayItem(source, 0);
            const int index =
                cJSON_IsString(source_name) ? find_node(g, source_name->valuestring) : -1;
            if (index < 0 || index >= i)
                return od_fail(err, "layer %s: input %d is not a layer defined before it", name, k);
            n->inputs[n->input_count++] = index;
            g->nodes[index].consumers++;
        }
    }
    return 0;
}

od_keras_graph *od_keras_graph_load(const char *path, int64_t height, int64_t width,
                                    const char *last_layer, od_error *err)
{
    if (height < 1 || width < 1 || height > 16384 || width > 16384) {
        od_fail(err, "input size must be 1 to 16384 pixels on each side, got %lld x %lld",
                (long long)height, (long long)width);
        return NULL;
    }
    if (access(path, R_OK) != 0) {
        od_fail(err, "network weights %s are missing: run scripts/fetch_weights.sh from the "
                     "repository root to fetch and convert them", path);
        return NULL;
    }
    od_safetensors *st = od_safetensors_read(path, err);
    if (st == NULL)
        return NULL;
    od_keras_graph *g = calloc(1, sizeof *g);
    cJSON *topology = NULL;
    int status = 0;
    if (g == NULL) {
        status = od_fail(err, "out of memory");
    } else {
        g->height = height;
        g->width = width;
        const char *text = od_safetensors_metadata(st, "keras_topology");
        topology = text != NULL ? cJSON_Parse(text) : NULL;
        if (topology == NULL)
            status = od_fail(err, "no valid keras_topology metadata (convert the file with "
                                  "scripts/fetch_weights.sh)");
    }
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(topology, "config");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(config, "layers");
    if (status == 0 && !cJSON_IsArray(layers))
        status = od_fail(err, "keras_topology has no config.layers list");
    if (status == 0)
        status = read_layers(g, layers, err);
    if (status == 0 && last_layer != NULL) {
        const int last = find_node(g, last_layer);
        if (last < 0)
            status = od_fail(err, "the network has no layer named \"%s\"", last_layer);
        else
            g->count = last + 1;
    }
    for (int i = 0; status == 0 && i < g->count; i++) {
        node *n = &g->nodes[i];
        const cJSON *layer = cJSON_GetArrayItem(layers, i);
        const char *class_name = read_string(layer, "class_name");
        const cJSON *layer_config = cJSON_GetObjectItemCaseSensitive(layer, "config");
        if (class_name == NULL)
            status = od_fail(err, "layer %s has no class_name", n->name);
        else
            status = setup_layer(g, n, class_name, layer_config, st, err);
        if (status != 0)
            break;
        if (n->kind == NODE_INPUT && !(n->alias)) {
            n->out = NULL; /* the caller's image */
            n->alias = 1;
            continue;
        }
        /* An activation works in place on an input that nothing else reads. */
        if (n->kind == NODE_ACTIVATION && g->nodes[n->inputs[0]].consumers == 1 &&
            g->nodes[n->inputs[0]].kind != NODE_INPUT && g->nodes[n->inputs[0]].kind != NODE_IDENTITY)
            n->alias = 1;
        if (n->alias)
            continue;
        n->out = od_alloc_floats(n->h * n->w * n->c);
        if (n->out == NULL)
            status = od_fail(err, "out of memory for layer %s", n->name);
    }
    cJSON_Delete(topology);
    od_safetensors_free(st);
    if (status != 0) {
        od_fail_context(err, "loading %s", path);
        od_keras_graph_free(g);
        return NULL;
    }
    return g;
}

int od_keras_graph_layer_shape(const od_keras_graph *g, const char *layer, int64_t shape[3],
                               od_error *err)
{
    const int index = layer != NULL ? find_node(g, layer) : -1;
    if (index < 0)
        return od_fail(err, "the network has no layer named \"%s\"", layer ? layer : "(null)");
    shape[0] = g->nodes[index].h;
    shape[1] = g->nodes[index].w;
    shape[2] = g->nodes[index].c;
    return 0;
}

/* Copies in (h, w, c) into out with pad = {top, bottom, left, right} zeros around it. */
static void pad_map(float *out, const float *in, int64_t h, int64_t w, int64_t c,
                    const int64_t pad[4])
{
    const int64_t ow = w + pad[2] + pad[3], oh = h + pad[0] + pad[1];
    memset(out, 0, (size_t)(oh * ow * c) * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int64_t y = 0; y < h; y++)
        memcpy(out + ((y + pad[0]) * ow + pad[2]) * c, in + y * w * c,
               (size_t)(w * c) * sizeof(float));
}

/* Max or average pooling with pad = {top, bottom, left, right}. Padded
 * positions are left out: of the max, and of the mean's count, as
 * TensorFlow does. */
static void pool_map(float *out, const float *in, const node *n, const node *src, int average)
{
    const int64_t c = src->c;
#pragma omp parallel for schedule(static)
    for (int64_t oy = 0; oy < n->h; oy++) {
        for (int64_t ox = 0; ox < n->w; ox++) {
            float *o = out + (oy * n->w + ox) * c;
            const int64_t y0 = oy * n->stride[0] - n->pad[0], x0 = ox * n->stride[1] - n->pad[2];
            const int64_t ya = y0 > 0 ? y0 : 0, xa = x0 > 0 ? x0 : 0;
            const int64_t yb = y0 + n->pool[0] < src->h ? y0 + n->pool[0] : src->h;
            const int64_t xb = x0 + n->pool[1] < src->w ? x0 + n->pool[1] : src->w;
            for (int64_t k = 0; k < c; k++)
                o[k] = average ? 0.0f : -INFINITY;
            for (int64_t y = ya; y < yb; y++) {
                for (int64_t x = xa; x < xb; x++) {
                    const float *p = in + (y * src->w + x) * c;
                    if (average) {
                        for (int64_t k = 0; k < c; k++)
                            o[k] += p[k];
                    } else {
                        for (int64_t k = 0; k < c; k++)
                            o[k] = p[k] > o[k] ? p[k] : o[k];
                    }
                }
            }
            if (average) {
                const float inv = 1.0f / (float)((yb - ya) * (xb - xa));
                for (int64_t k = 0; k < c; k++)
                    o[k] *= inv;
            }
        }
    }
}

static void apply_activation(float *x, const node *n, int64_t rows)
{
    const int64_t count = n->h * n->w * n->c;
    if (n->activation == ACT_RELU) {
        if (n->relu_max == 6.0f) {
            od_relu6_forward(x, x, count);
        } else if (isinf(n->relu_max)) {
            od_relu_forward(x, x, count);
        } else {
            const float top = n->relu_max;
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < count; i++)
                x[i] = x[i] > 0.0f ? (x[i] < top ? x[i] : top) : 0.0f;
        }
    } else if (n->activation == ACT_SOFTMAX) {
        od_softmax_forward(x, x, rows, count / rows);
    }
}

static int run_node(od_keras_graph *g, int index, const float *image, od_error *err)
{
    node *n = &g->nodes[index];
    const node *in = n->input_count > 0 ? &g->nodes[n->inputs[0]] : NULL;
    const float *src = in == NULL ? NULL : in->out;
    if (n->kind == NODE_INPUT) {
        n->out = (float *)image; /* read only: every consumer of the input writes elsewhere */
        return 0;
    }
    if (n->alias)
        n->out = (float *)src;
    const int64_t count = n->h * n->w * n->c;
    switch (n->kind) {
    case NODE_INPUT:
    case NODE_IDENTITY:
        break;
    case NODE_CONV:
        if (n->padded != NULL) {
            pad_map(n->padded, src, in->h, in->w, in->c, n->pad);
            src = n->padded;
        }
        if (od_conv2d_forward(n->conv, n->out, src, n->weight, n->bias, err))
            return od_fail_context(err, "layer %s", n->name);
        apply_activation(n->out, n, n->h * n->w);
        break;
    case NODE_BATCHNORM:
        if (!n->alias) {
            const int64_t c = n->c;
#pragma omp parallel for schedule(static)
            for (int64_t p = 0; p < n->h * n->w; p++)
                for (int64_t k = 0; k < c; k++)
                    n->out[p * c + k] = src[p * c + k] * n->scale[k] + n->shift[k];
        }
        break;
    case NODE_ACTIVATION:
        if (!n->alias)
            memcpy(n->out, src, (size_t)count * sizeof(float));
        apply_activation(n->out, n, n->h * n->w);
        break;
    case NODE_ZEROPAD:
        pad_map(n->out, src, in->h, in->w, in->c, n->pad);
        break;
    case NODE_MAXPOOL:
    case NODE_AVGPOOL:
        pool_map(n->out, src, n, in, n->kind == NODE_AVGPOOL);
        break;
    case NODE_CONCAT: {
        int64_t offset = 0;
        for (int i = 0; i < n->input_count; i++) {
            const node *part = &g->nodes[n->inputs[i]];
            const int64_t pc = part->c, c = n->c;
#pragma omp parallel for schedule(static)
            for (int64_t p = 0; p < n->h * n->w; p++)
                memcpy(n->out + p * c + offset, part->out + p * pc, (size_t)pc * sizeof(float));
            offset += pc;
        }
        break;
    }
    case NODE_ADD:
        memcpy(n->out, src, (size_t)count * sizeof(float));
        for (int i = 1; i < n->input_count; i++) {
            const float *other = g->nodes[n->inputs[i]].out;
#pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < count; k++)
                n->out[k] += other[k];
        }
        break;
    case NODE_DENSE:
        od_linear_forward(n->pre, src, n->weight, n->bias, 1, n->weight_per_out, n->c);
        memcpy(n->out, n->pre, (size_t)n->c * sizeof(float));
        apply_activation(n->out, n, 1);
        break;
    }
    return 0;
}

/* Runs layers 0 .. last in the stored order. */
static int run_until(od_keras_graph *g, const float *image, int last, od_error *err)
{
    if (image == NULL)
        return od_fail(err, "the input image is NULL");
    for (int i = 0; i <= last; i++)
        if (run_node(g, i, image, err) != 0)
            return -1;
    return 0;
}

int od_keras_graph_forward(od_keras_graph *g, const float *image, const char *layer, float *out,
                           od_error *err)
{
    const int index = layer != NULL ? find_node(g, layer) : -1;
    if (index < 0)
        return od_fail(err, "the network has no layer named \"%s\"", layer ? layer : "(null)");
    if (run_until(g, image, index, err) != 0)
        return -1;
    const node *n = &g->nodes[index];
    memcpy(out, n->out, (size_t)(n->h * n->w * n->c) * sizeof(float));
    return 0;
}

int od_keras_graph_logits(od_keras_graph *g, const float *image, float *logits, int64_t capacity,
                          int64_t *count, od_error *err)
{
    int last = -1;
    for (int i = 0; i < g->count; i++)
        if (g->nodes[i].kind == NODE_DENSE)
            last = i;
    if (last < 0)
        return od_fail(err, "the network has no Dense layer");
    const node *n = &g->nodes[last];
    if (n->c > capacity)
        return od_fail(err, "the logits need %lld floats, the buffer has %lld", (long long)n->c,
                       (long long)capacity);
    if (run_until(g, image, last, err) != 0)
        return -1;
    memcpy(logits, n->pre, (size_t)n->c * sizeof(float));
    *count = n->c;
    return 0;
}
