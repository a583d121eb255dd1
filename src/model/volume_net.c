/* The 3D residual encoder-decoder and its per-voxel heads (see
 * volume_net.h). */
#include "model/volume_net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/norm.h"

enum { HEAD_DENSITY, HEAD_COLOUR, HEAD_FEATURE, HEAD_COUNT };
static const char *const HEAD_NAMES[HEAD_COUNT] = {"density_head", "colour_head", "feature_head"};

/* ---- layers ----------------------------------------------------------------- */

typedef struct conv_unit {
    od_conv3d *conv;
    od_param *weight; /* (Cout, Cin, 3, 3, 3) */
} conv_unit;

typedef struct bn_unit {
    int64_t rows, channels;
    od_param *gamma, *beta, *running_mean, *running_var;
    float *mean, *rstd; /* (channels), saved by the training forward */
} bn_unit;

/* conv, batchnorm, ReLU: the stem and the stride-2 convolutions down */
typedef struct conv_bn_relu {
    conv_unit conv;
    bn_unit bn;
    int64_t out_count;
    float *h, *y; /* kept for the backward: the conv's output, the unit's output */
} conv_bn_relu;

typedef struct block {
    conv_unit conv1, conv2;
    bn_unit bn1, bn2;
    /* kept for the backward, each (rows, C): conv1's output, the first
     * ReLU's output (conv2's input), conv2's output, the block's output */
    float *h1, *r1, *h2, *y;
} block;

typedef struct level {
    int64_t dims[3]; /* D, H, W */
    int64_t channels, rows, count; /* rows = N * D * H * W, count = rows * channels */
    block *down, *up;
    int down_count, up_count;
    conv_bn_relu down_conv; /* to level + 1, except at the deepest level */
    /* from level + 1 up to this one, except at the deepest level */
    od_conv_transpose3d *up_conv;
    od_param *up_weight, *up_bias; /* (C_{l+1}, C_l, 2, 2, 2), (C_l) */
    float *z;                       /* up_conv's output + the skip */
    float *scratch[3], *grad[2];    /* gradients of this level's size */
    float *d_skip;                  /* set by the backward: one of grad[] */
} level;

typedef struct head {
    int64_t out_channels;
    od_param *w1, *b1, *w2, *b2; /* (hidden, C0), (hidden), (out, hidden), (out) */
    /* (rows, hidden): LeakyReLU(trunk W1^T + b1), kept for the backward.
     * Its sign is that of the pre-activation (the slope is positive), so
     * the LeakyReLU backward can read it in place of its input. */
    float *activated;
    float *out; /* (rows, out_channels) */
} head;

struct od_volume_net {
    od_volume_net_config config;
    level levels[OD_MODEL_MAX_LEVELS];
    conv_bn_relu stem;
    head heads[HEAD_COUNT];
    float *d_trunk, *d_activated, *d_hidden, *d_head_out;
    const float *input; /* of the last training forward */
    int trained;        /* 1 after a training forward */
    double macs;
};

static void zero(float *data, int64_t count)
{
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; i++)
        data[i] = 0.0f;
}

static void add(float *target, const float *source, int64_t count)
{
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; i++)
        target[i] += source[i];
}

/* ---- construction ----------------------------------------------------------- */

typedef struct builder {
    od_params *params;
    const char *prefix;
    int64_t batch;
    od_error *err;
    int failed;
} builder;

static float *buffer(builder *b, int64_t count)
{
    if (b->failed)
        return NULL;
    float *data = od_alloc_floats(count);
    if (data == NULL) {
        b->failed = 1;
        od_fail(b->err, "volume_net: out of memory for %lld floats", (long long)count);
    }
    return data;
}

static od_param *tensor(builder *b, const char *name, int ndim, const int64_t *shape, int trainable,
                        od_param_init init, int64_t fan_in)
{
    if (b->failed)
        return NULL;
    char full[OD_PARAM_NAME_SIZE];
    if (snprintf(full, sizeof full, "%s%s", b->prefix, name) >= (int)sizeof full) {
        b->failed = 1;
        od_fail(b->err, "volume_net: parameter name %s%s too long", b->prefix, name);
        return NULL;
    }
    od_param *p = od_params_add(b->params, full, ndim, shape, trainable, init, fan_in, b->err);
    b->failed = p == NULL;
    return p;
}

static void conv_init(builder *b, conv_unit *unit, const char *name, int64_t cin, int64_t cout, const int64_t *dims,
                      int64_t stride, od_conv_grad_mode mode)
{
    if (b->failed)
        return;
    od_conv3d_config config = {
        .batch = b->batch, .in_channels = cin, .out_channels = cout, .in_size = {dims[0], dims[1], dims[2]},
        .kernel = {3, 3, 3}, .stride = {stride, stride, stride}, .padding = {1, 1, 1}, .dilation = {1, 1, 1},
        .groups = 1, .bias = 0, .input_grad_mode = mode,
    };
    unit->conv = od_conv3d_new(&config, b->err);
    b->failed = unit->conv == NULL;
    const int64_t shape[5] = {cout, cin, 3, 3, 3};
    unit->weight = tensor(b, name, 5, shape, 1, OD_PARAM_INIT_KAIMING_UNIFORM, 0);
}

static void bn_init(builder *b, bn_unit *bn, const char *prefix, int64_t rows, int64_t channels)
{
    char name[OD_PARAM_NAME_SIZE];
    const int64_t shape[1] = {channels};
    bn->rows = rows;
    bn->channels = channels;
    snprintf(name, sizeof name, "%s.weight", prefix);
    bn->gamma = tensor(b, name, 1, shape, 1, OD_PARAM_INIT_ONES, 0);
    snprintf(name, sizeof name, "%s.bias", prefix);
    bn->beta = tensor(b, name, 1, shape, 1, OD_PARAM_INIT_ZEROS, 0);
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    bn->running_mean = tensor(b, name, 1, shape, 0, OD_PARAM_INIT_ZEROS, 0);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    bn->running_var = tensor(b, name, 1, shape, 0, OD_PARAM_INIT_ONES, 0);
    bn->mean = buffer(b, channels);
    bn->rstd = buffer(b, channels);
}

/* Names follow nn.Sequential(Conv3d, BatchNorm3d, ReLU): "<prefix>.0", "<prefix>.1". */
static void conv_bn_relu_init(builder *b, conv_bn_relu *unit, const char *prefix, int64_t cin, int64_t cout,
                              const int64_t *in_dims, int64_t stride, double *macs)
{
    char name[OD_PARAM_NAME_SIZE];
    snprintf(name, sizeof name, "%s.0.weight", prefix);
    conv_init(b, &unit->conv, name, cin, cout, in_dims, stride, OD_CONV_GRAD_ACCUMULATE);
    int64_t out_voxels = 1;
    for (int axis = 0; axis < 3; axis++)
        out_voxels *= (in_dims[axis] - 1) / stride + 1;
    snprintf(name, sizeof name, "%s.1", prefix);
    bn_init(b, &unit->bn, name, b->batch * out_voxels, cout);
    unit->out_count = b->batch * out_voxels * cout;
    unit->h = buffer(b, unit->out_count);
    unit->y = buffer(b, unit->out_count);
    *macs += (double)(b->batch * out_voxels) * (double)(cin * cout * 27);
}

static void block_init(builder *b, block *blk, const char *prefix, const level *lv, double *macs)
{
    char name[OD_PARAM_NAME_SIZE];
    /* conv1 accumulates into d_x, which already contains the skip path's
     * gradient; conv2 writes a scratch buffer. */
    snprintf(name, sizeof name, "%s.conv1.weight", prefix);
    conv_init(b, &blk->conv1, name, lv->channels, lv->channels, lv->dims, 1, OD_CONV_GRAD_ACCUMULATE);
    snprintf(name, sizeof name, "%s.bn1", prefix);
    bn_init(b, &blk->bn1, name, lv->rows, lv->channels);
    snprintf(name, sizeof name, "%s.conv2.weight", prefix);
    conv_init(b, &blk->conv2, name, lv->channels, lv->channels, lv->dims, 1, OD_CONV_GRAD_OVERWRITE);
    snprintf(name, sizeof name, "%s.bn2", prefix);
    bn_init(b, &blk->bn2, name, lv->rows, lv->channels);
    blk->h1 = buffer(b, lv->count);
    blk->r1 = buffer(b, lv->count);
    blk->h2 = buffer(b, lv->count);
    blk->y = buffer(b, lv->count);
    *macs += 2.0 * (double)lv->rows * (double)(lv->channels * lv->channels * 27);
}

/* Names follow nn.Sequential(Linear, LeakyReLU, Linear): "<name>.0", "<name>.2". */
static void head_init(builder *b, head *h, const char *name_prefix, int64_t rows, int64_t in, int64_t hidden,
                      int64_t out, double *macs)
{
    char name[OD_PARAM_NAME_SIZE];
    h->out_channels = out;
    snprintf(name, sizeof name, "%s.0.weight", name_prefix);
    h->w1 = tensor(b, name, 2, (const int64_t[]){hidden, in}, 1, OD_PARAM_INIT_KAIMING_UNIFORM, 0);
    snprintf(name, sizeof name, "%s.0.bias", name_prefix);
    h->b1 = tensor(b, name, 1, (const int64_t[]){hidden}, 1, OD_PARAM_INIT_BIAS, in);
    snprintf(name, sizeof name, "%s.2.weight", name_prefix);
    h->w2 = tensor(b, name, 2, (const int64_t[]){out, hidden}, 1, OD_PARAM_INIT_KAIMING_UNIFORM, 0);
    snprintf(name, sizeof name, "%s.2.bias", name_prefix);
    h->b2 = tensor(b, name, 1, (const int64_t[]){out}, 1, OD_PARAM_INIT_BIAS, hidden);
    h->activated = buffer(b, rows * hidden);
    h->out = buffer(b, rows * out);
    *macs += (double)rows * (double)(in * hidden + hidden * out);
}

static int validate_config(const od_volume_net_config *c, od_error *err)
{
    if (c->batch < 1 || c->batch > 1024)
        return od_fail(err, "volume_net: batch %lld, expected 1 to 1024", (long long)c->batch);
    if (c->levels < 1 || c->levels > OD_MODEL_MAX_LEVELS)
        return od_fail(err, "volume_net: %d levels, expected 1 to %d", c->levels, OD_MODEL_MAX_LEVELS);
    const int64_t factor = (int64_t)1 << (c->levels - 1);
    for (int axis = 0; axis < 3; axis++)
        if (c->dims[axis] < factor || c->dims[axis] % factor != 0 || c->dims[axis] > 4096)
            return od_fail(err, "volume_net: input size %lld x %lld x %lld, expected every size a multiple of %lld "
                                "(2^(levels - 1)) and at most 4096",
                           (long long)c->dims[0], (long long)c->dims[1], (long long)c->dims[2], (long long)factor);
    if (c->in_channels < 1 || c->in_channels > 4096 || c->head_hidden < 1 || c->head_hidden > 4096 ||
        c->feature_channels < 1 || c->feature_channels > 4096)
        return od_fail(err, "volume_net: input channels %lld, head width %lld and feature channels %lld must be "
                            "1 to 4096",
                       (long long)c->in_channels, (long long)c->head_hidden, (long long)c->feature_channels);
    for (int l = 0; l < c->levels; l++) {
        if (c->channels[l] < 1 || c->channels[l] > 4096)
            return od_fail(err, "volume_net: level %d has %lld channels, expected 1 to 4096", l,
                           (long long)c->channels[l]);
        if (c->down_blocks[l] < 1 || c->down_blocks[l] > 16 || (l < c->levels - 1 && (c->up_blocks[l] < 1 ||
                                                                                       c->up_blocks[l] > 16)))
            return od_fail(err, "volume_net: level %d: residual blocks down and up must be 1 to 16", l);
    }
    if (!(c->batchnorm_momentum >= 0.0f && c->batchnorm_momentum <= 1.0f))
        return od_fail(err, "volume_net: batchnorm momentum %g, expected 0 to 1", (double)c->batchnorm_momentum);
    return 0;
}

od_volume_net_config od_volume_net_config_from_model(const od_model_config *model)
{
    od_volume_net_config c;
    memset(&c, 0, sizeof c);
    c.batch = model->batch;
    c.dims[0] = model->grid_dims[2];
    c.dims[1] = model->grid_dims[1];
    c.dims[2] = model->grid_dims[0];
    c.in_channels = model->encoder_channels;
    c.levels = model->levels;
    for (int l = 0; l < model->levels; l++) {
        c.channels[l] = model->channels[l];
        c.down_blocks[l] = model->down_blocks[l];
        if (l < model->levels - 1)
            c.up_blocks[l] = model->up_blocks[l];
    }
    c.head_hidden = model->head_hidden;
    c.feature_channels = model->teacher_channels;
    c.batchnorm_momentum = (float)model->batchnorm_momentum;
    return c;
}

od_volume_net *od_volume_net_new(const od_volume_net_config *config, od_params *params, const char *prefix,
                                 od_error *err)
{
    if (validate_config(config, err) != 0)
        return NULL;
    od_volume_net *net = calloc(1, sizeof *net);
    if (net == NULL) {
        od_fail(err, "volume_net: out of memory");
        return NULL;
    }
    net->config = *config;
    builder b = {params, prefix != NULL ? prefix : "", config->batch, err, 0};
    const int L = config->levels;
    char name[OD_PARAM_NAME_SIZE];

    for (int l = 0; l < L; l++) {
        level *lv = &net->levels[l];
        for (int axis = 0; axis < 3; axis++)
            lv->dims[axis] = config->dims[axis] >> l;
        lv->channels = config->channels[l];
        lv->rows = config->batch * lv->dims[0] * lv->dims[1] * lv->dims[2];
        lv->count = lv->rows * lv->channels;
        for (int i = 0; i < 3; i++)
            lv->scratch[i] = buffer(&b, lv->count);
        for (int i = 0; i < 2; i++)
            lv->grad[i] = buffer(&b, lv->count);
    }

    conv_bn_relu_init(&b, &net->stem, "stem", config->in_channels, config->channels[0], config->dims, 1, &net->macs);
    for (int l = 0; l < L && !b.failed; l++) {
        level *lv = &net->levels[l];
        lv->down_count = config->down_blocks[l];
        lv->down = calloc((size_t)lv->down_count, sizeof *lv->down);
        if (lv->down == NULL) {
            b.failed = 1;
            od_fail(err, "volume_net: out of memory");
            break;
        }
        for (int i = 0; i < lv->down_count; i++) {
            snprintf(name, sizeof name, "down.%d.%d", l, i);
            block_init(&b, &lv->down[i], name, lv, &net->macs);
        }
        if (l == L - 1)
            break;

        snprintf(name, sizeof name, "down_conv.%d", l);
        conv_bn_relu_init(&b, &lv->down_conv, name, lv->channels, config->channels[l + 1], lv->dims, 2, &net->macs);

        const level *below = &net->levels[l + 1];
        if (!b.failed) {
            od_conv_transpose3d_config up = {
                .batch = config->batch, .in_channels = below->channels, .out_channels = lv->channels,
                .in_size = {below->dims[0], below->dims[1], below->dims[2]}, .kernel = {2, 2, 2},
                .stride = {2, 2, 2}, .dilation = {1, 1, 1}, .groups = 1, .bias = 1,
                .input_grad_mode = OD_CONV_GRAD_OVERWRITE,
            };
            lv->up_conv = od_conv_transpose3d_new(&up, err);
            b.failed = lv->up_conv == NULL;
        }
        snprintf(name, sizeof name, "up_conv.%d.weight", l);
        lv->up_weight = tensor(&b, name, 5, (const int64_t[]){below->channels, lv->channels, 2, 2, 2}, 1,
                               OD_PARAM_INIT_KAIMING_UNIFORM, 0);
        snprintf(name, sizeof name, "up_conv.%d.bias", l);
        lv->up_bias = tensor(&b, name, 1, (const int64_t[]){lv->channels}, 1, OD_PARAM_INIT_BIAS, lv->channels * 8);
        lv->z = buffer(&b, lv->count);
        net->macs += (double)below->rows * (double)(below->channels * lv->channels * 8);

        lv->up_count = config->up_blocks[l];
        lv->up = calloc((size_t)lv->up_count, sizeof *lv->up);
        if (lv->up == NULL) {
            b.failed = 1;
            od_fail(err, "volume_net: out of memory");
            break;
        }
        for (int i = 0; i < lv->up_count; i++) {
            snprintf(name, sizeof name, "up.%d.%d", l, i);
            block_init(&b, &lv->up[i], name, lv, &net->macs);
        }
    }

    const int64_t rows = net->levels[0].rows, c0 = config->channels[0], hidden = config->head_hidden;
    const int64_t head_out[HEAD_COUNT] = {1, 3, config->feature_channels};
    for (int h = 0; h < HEAD_COUNT; h++)
        head_init(&b, &net->heads[h], HEAD_NAMES[h], rows, c0, hidden, head_out[h], &net->macs);
    net->d_trunk = buffer(&b, rows * c0);
    net->d_activated = buffer(&b, rows * hidden);
    net->d_hidden = buffer(&b, rows * hidden);
    net->d_head_out = buffer(&b, rows * 3);
    if (b.failed) {
        od_volume_net_free(net);
        return NULL;
    }
    return net;
}

static void conv_unit_free(conv_unit *unit)
{
    od_conv3d_free(unit->conv);
}

static void bn_unit_free(bn_unit *bn)
{
    od_free(bn->mean);
    od_free(bn->rstd);
}

static void conv_bn_relu_free(conv_bn_relu *unit)
{
    conv_unit_free(&unit->conv);
    bn_unit_free(&unit->bn);
    od_free(unit->h);
    od_free(unit->y);
}

static void blocks_free(block *blocks, int count)
{
    for (int i = 0; blocks != NULL && i < count; i++) {
        conv_unit_free(&blocks[i].conv1);
        conv_unit_free(&blocks[i].conv2);
        bn_unit_free(&blocks[i].bn1);
        bn_unit_free(&blocks[i].bn2);
        od_free(blocks[i].h1);
        od_free(blocks[i].r1);
        od_free(blocks[i].h2);
        od_free(blocks[i].y);
    }
    free(blocks);
}

void od_volume_net_free(od_volume_net *net)
{
    if (net == NULL)
        return;
    conv_bn_relu_free(&net->stem);
    for (int l = 0; l < OD_MODEL_MAX_LEVELS; l++) {
        level *lv = &net->levels[l];
        blocks_free(lv->down, lv->down_count);
        blocks_free(lv->up, lv->up_count);
        conv_bn_relu_free(&lv->down_conv);
        od_conv_transpose3d_free(lv->up_conv);
        od_free(lv->z);
        for (int i = 0; i < 3; i++)
            od_free(lv->scratch[i]);
        for (int i = 0; i < 2; i++)
            od_free(lv->grad[i]);
    }
    for (int h = 0; h < HEAD_COUNT; h++) {
        od_free(net->heads[h].activated);
        od_free(net->heads[h].out);
    }
    od_free(net->d_trunk);
    od_free(net->d_activated);
    od_free(net->d_hidden);
    od_free(net->d_head_out);
    free(net);
}

/* ---- forward ---------------------------------------------------------------- */

typedef struct pass {
    od_volume_net *net;
    int training;
    od_error *err;
    int failed;
} pass;

static void bn_forward(pass *p, bn_unit *bn, float *out, const float *in)
{
    if (p->failed)
        return;
    if (!p->training) {
        od_batchnorm_inference_forward(out, in, bn->running_mean->value, bn->running_var->value, bn->gamma->value,
                                       bn->beta->value, bn->rows, bn->channels, OD_VOLUME_NET_BN_EPS);
        return;
    }
    od_batchnorm_forward(out, bn->mean, bn->rstd, in, bn->gamma->value, bn->beta->value, bn->rows, bn->channels,
                         OD_VOLUME_NET_BN_EPS);
    p->failed = od_batchnorm_update_running_stats(bn->running_mean->value, bn->running_var->value, bn->mean,
                                                  bn->rstd, bn->rows, bn->channels,
                                                  p->net->config.batchnorm_momentum, OD_VOLUME_NET_BN_EPS,
                                                  p->err) != 0;
}

static void conv_forward(pass *p, conv_unit *unit, float *out, const float *in)
{
    if (!p->failed)
        p->failed = od_conv3d_forward(unit->conv, out, in, unit->weight->value, NULL, p->err) != 0;
}

static void conv_bn_relu_forward(pass *p, conv_bn_relu *unit, const float *x)
{
    conv_forward(p, &unit->conv, unit->h, x);
    bn_forward(p, &unit->bn, unit->y, unit->h);
    od_relu_forward(unit->y, unit->y, unit->out_count);
}

static void block_forward(pass *p, block *blk, const float *x, int64_t count)
{
    conv_forward(p, &blk->conv1, blk->h1, x);
    bn_forward(p, &blk->bn1, blk->r1, blk->h1);
    od_relu_forward(blk->r1, blk->r1, count);
    conv_forward(p, &blk->conv2, blk->h2, blk->r1);
    bn_forward(p, &blk->bn2, blk->y, blk->h2);
    add(blk->y, x, count);
    od_relu_forward(blk->y, blk->y, count);
}

/* The output of level l's down blocks (also skip l). */
static const float *down_output(const od_volume_net *net, int l)
{
    const level *lv = &net->levels[l];
    return lv->down[lv->down_count - 1].y;
}

/* The output of level l on the way up; the deepest level has no up blocks. */
static const float *up_output(const od_volume_net *net, int l)
{
    const level *lv = &net->levels[l];
    return l == net->config.levels - 1 ? down_output(net, l) : lv->up[lv->up_count - 1].y;
}

static void logistic(float *data, int64_t count)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; i++)
        data[i] = 1.0f / (1.0f + expf(-data[i]));
}

static void heads_forward(od_volume_net *net, const float *trunk)
{
    const int64_t rows = net->levels[0].rows, c0 = net->config.channels[0], hidden = net->config.head_hidden;
    for (int h = 0; h < HEAD_COUNT; h++) {
        head *hd = &net->heads[h];
        od_linear_forward(hd->activated, trunk, hd->w1->value, hd->b1->value, rows, c0, hidden);
        od_leaky_relu_forward(hd->activated, hd->activated, rows * hidden, OD_VOLUME_NET_LEAKY_SLOPE);
        od_linear_forward(hd->out, hd->activated, hd->w2->value, hd->b2->value, rows, hidden, hd->out_channels);
    }
    logistic(net->heads[HEAD_COLOUR].out, rows * 3);
}

int od_volume_net_forward(od_volume_net *net, const float *input, int training, od_error *err)
{
    pass p = {net, training, err, 0};
    const int L = net->config.levels;
    net->trained = 0;

    /* encoder: stem, then each level's blocks and the step down */
    conv_bn_relu_forward(&p, &net->stem, input);
    const float *x = net->stem.y;
    for (int l = 0; l < L; l++) {
        level *lv = &net->levels[l];
        for (int i = 0; i < lv->down_count; i++) {
            block_forward(&p, &lv->down[i], x, lv->count);
            x = lv->down[i].y;
        }
        if (l == L - 1)
            break;
        conv_bn_relu_forward(&p, &lv->down_conv, x);
        x = lv->down_conv.y;
    }

    /* decoder: up one level, add the skip, then the level's blocks */
    for (int l = L - 2; l >= 0; l--) {
        level *lv = &net->levels[l];
        if (!p.failed)
            p.failed = od_conv_transpose3d_forward(lv->up_conv, lv->z, x, lv->up_weight->value, lv->up_bias->value,
                                                   err) != 0;
        add(lv->z, down_output(net, l), lv->count);
        x = lv->z;
        for (int i = 0; i < lv->up_count; i++) {
            block_forward(&p, &lv->up[i], x, lv->count);
            x = lv->up[i].y;
        }
    }
    if (p.failed)
        return od_fail_context(err, "volume_net forward");

    heads_forward(net, x);
    net->input = input;
    net->trained = training;
    return 0;
}

const float *od_volume_net_density(const od_volume_net *net)
{
    return net->heads[HEAD_DENSITY].out;
}

const float *od_volume_net_colour(const od_volume_net *net)
{
    return net->heads[HEAD_COLOUR].out;
}

const float *od_volume_net_features(const od_volume_net *net)
{
    return net->heads[HEAD_FEATURE].out;
}

const float *od_volume_net_trunk(const od_volume_net *net)
{
    return up_output(net, 0);
}

double od_volume_net_forward_macs(const od_volume_net *net)
{
    return net->macs;
}

/* ---- backward --------------------------------------------------------------- */

static void bn_backward(bn_unit *bn, float *d_in, const float *d_out, const float *in)
{
    od_batchnorm_backward(d_in, bn->gamma->grad, bn->beta->grad, d_out, in, bn->mean, bn->rstd, bn->gamma->value,
                          bn->rows, bn->channels);
}

static void conv_backward(pass *p, conv_unit *unit, float *d_in, const float *d_out, const float *in)
{
    if (!p->failed)
        p->failed = od_conv3d_backward(unit->conv, d_in, unit->weight->grad, NULL, d_out, in, unit->weight->value,
                                       p->err) != 0;
}

/* Accumulates into d_x (may be NULL) from d_y; x is the unit's input and
 * s the scratch of the unit's output level. */
static void conv_bn_relu_backward(pass *p, conv_bn_relu *unit, float *d_x, const float *d_y, const float *x,
                                  level *s)
{
    zero(s->scratch[0], unit->out_count);
    od_relu_backward(s->scratch[0], d_y, unit->y, unit->out_count);
    zero(s->scratch[1], unit->out_count);
    bn_backward(&unit->bn, s->scratch[1], s->scratch[0], unit->h);
    conv_backward(p, &unit->conv, d_x, s->scratch[1], x);
}

/* Writes d_x (which must differ from d_y) from d_y; x is the block's input. */
static void block_backward(pass *p, block *blk, float *d_x, const float *d_y, const float *x, level *lv)
{
    float *a = lv->scratch[0], *b = lv->scratch[1], *c = lv->scratch[2];
    const int64_t count = lv->count;

    /* through the final ReLU: d_x is now the skip path's gradient */
    zero(d_x, count);
    od_relu_backward(d_x, d_y, blk->y, count);

    /* second conv; its input gradient overwrites b */
    zero(a, count);
    bn_backward(&blk->bn2, a, d_x, blk->h2);
    conv_backward(p, &blk->conv2, b, a, blk->r1);

    /* first conv, accumulated onto the skip path's gradient */
    zero(c, count);
    od_relu_backward(c, b, blk->r1, count);
    zero(a, count);
    bn_backward(&blk->bn1, a, c, blk->h1);
    conv_backward(p, &blk->conv1, d_x, a, x);
}

/* Runs `count` blocks backward from d_top and returns the gradient of the
 * first block's input, which lies in one of the level's grad buffers
 * (or is d_top itself when count is 0). */
static float *blocks_backward(pass *p, block *blocks, int count, const float *first_input, float *d_top, level *lv)
{
    float *d_y = d_top;
    for (int i = count - 1; i >= 0; i--) {
        float *d_x = d_y == lv->grad[0] ? lv->grad[1] : lv->grad[0];
        const float *x = i > 0 ? blocks[i - 1].y : first_input;
        block_backward(p, &blocks[i], d_x, d_y, x, lv);
        d_y = d_x;
    }
    return d_y;
}

/* Accumulates the heads' gradients into net->d_trunk (zeroed here). */
static void heads_backward(od_volume_net *net, const float *trunk, const float *const d_outs[HEAD_COUNT])
{
    const int64_t rows = net->levels[0].rows, c0 = net->config.channels[0], hidden = net->config.head_hidden;
    zero(net->d_trunk, rows * c0);
    for (int h = 0; h < HEAD_COUNT; h++) {
        head *hd = &net->heads[h];
        if (d_outs[h] == NULL)
            continue;
        const float *d_out = d_outs[h];
        if (h == HEAD_COLOUR) {
            /* through the logistic: d = d_out * s (1 - s) */
            float *d_pre = net->d_head_out;
            const float *s = hd->out;
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < rows * 3; i++)
                d_pre[i] = d_out[i] * s[i] * (1.0f - s[i]);
            d_out = d_pre;
        }
        zero(net->d_activated, rows * hidden);
        od_linear_backward(net->d_activated, hd->w2->grad, hd->b2->grad, d_out, hd->activated, hd->w2->value, rows,
                           hidden, hd->out_channels);
        zero(net->d_hidden, rows * hidden);
        od_leaky_relu_backward(net->d_hidden, net->d_activated, hd->activated, rows * hidden,
                               OD_VOLUME_NET_LEAKY_SLOPE);
        od_linear_backward(net->d_trunk, hd->w1->grad, hd->b1->grad, net->d_hidden, trunk, hd->w1->value, rows, c0,
                           hidden);
    }
}

int od_volume_net_backward(od_volume_net *net, const float *d_density, const float *d_colour,
                           const float *d_features, float *d_input, od_error *err)
{
    if (!net->trained)
        return od_fail(err, "volume_net: backward needs a training forward just before it");
    pass p = {net, 1, err, 0};
    const int L = net->config.levels;
    const float *const d_outs[HEAD_COUNT] = {d_density, d_colour, d_features};
    heads_backward(net, up_output(net, 0), d_outs);

    /* decoder, from level 0 down: blocks, then the transposed conv. The
     * gradient at z = up(x) + skip is also the skip's first part; the step
     * down adds its input gradient to it later. */
    float *d = net->d_trunk;
    for (int l = 0; l < L - 1; l++) {
        level *lv = &net->levels[l];
        level *below = &net->levels[l + 1];
        float *d_z = blocks_backward(&p, lv->up, lv->up_count, lv->z, d, lv);
        lv->d_skip = d_z;
        if (!p.failed)
            p.failed = od_conv_transpose3d_backward(lv->up_conv, below->grad[0], lv->up_weight->grad,
                                                    lv->up_bias->grad, d_z, up_output(net, l + 1),
                                                    lv->up_weight->value, err) != 0;
        d = below->grad[0];
    }

    /* encoder, from the deepest level up: blocks, then the step down (or
     * the stem) into the level above's skip gradient */
    for (int l = L - 1; l >= 0; l--) {
        level *lv = &net->levels[l];
        if (l < L - 1)
            d = lv->d_skip;
        const float *first_input = l == 0 ? net->stem.y : net->levels[l - 1].down_conv.y;
        float *d_x = blocks_backward(&p, lv->down, lv->down_count, first_input, d, lv);
        if (l == 0)
            conv_bn_relu_backward(&p, &net->stem, d_input, d_x, net->input, lv);
        else
            conv_bn_relu_backward(&p, &net->levels[l - 1].down_conv, net->levels[l - 1].d_skip, d_x,
                                  down_output(net, l - 1), lv);
    }
    if (p.failed)
        return od_fail_context(err, "volume_net backward");
    return 0;
}
