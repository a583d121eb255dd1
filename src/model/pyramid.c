/* The 2D feature pyramid (see pyramid.h). */
#include "model/pyramid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "nn/linear.h"

struct od_pyramid {
    od_pyramid_config config;
    od_param *weight[OD_PYRAMID_MAX_LEVELS]; /* (C, C_i, 1, 1) */
    od_param *bias[OD_PYRAMID_MAX_LEVELS];   /* (C) */
    float *lateral[OD_PYRAMID_MAX_LEVELS];   /* (N, H >> i, W >> i, C) for i >= 1 */
    float *d_lateral;                        /* scratch of level 1's size */
    const float *inputs[OD_PYRAMID_MAX_LEVELS];
    int forwarded;
};

/* Pixels of level i: N * (H >> i) * (W >> i). */
static int64_t level_rows(const od_pyramid_config *c, int level)
{
    return c->batch * (c->height >> level) * (c->width >> level);
}

od_pyramid *od_pyramid_new(const od_pyramid_config *config, od_params *params, const char *prefix, od_error *err)
{
    const od_pyramid_config *c = config;
    if (c->levels < 1 || c->levels > OD_PYRAMID_MAX_LEVELS) {
        od_fail(err, "pyramid: %d levels, expected 1 to %d", c->levels, OD_PYRAMID_MAX_LEVELS);
        return NULL;
    }
    const int64_t factor = (int64_t)1 << (c->levels - 1);
    if (c->batch < 1 || c->height < factor || c->width < factor || c->height % factor != 0 ||
        c->width % factor != 0 || c->height > 16384 || c->width > 16384) {
        od_fail(err, "pyramid: batch %lld, map %lld x %lld: expected a batch of at least 1 and sides that are "
                     "multiples of %lld (2^(levels - 1)), at most 16384",
                (long long)c->batch, (long long)c->height, (long long)c->width, (long long)factor);
        return NULL;
    }
    for (int i = 0; i < c->levels; i++)
        if (c->in_channels[i] < 1 || c->in_channels[i] > 4096) {
            od_fail(err, "pyramid: level %d has %lld input channels, expected 1 to 4096", i,
                    (long long)c->in_channels[i]);
            return NULL;
        }
    if (c->out_channels < 1 || c->out_channels > 4096) {
        od_fail(err, "pyramid: %lld output channels, expected 1 to 4096", (long long)c->out_channels);
        return NULL;
    }

    od_pyramid *pyramid = calloc(1, sizeof *pyramid);
    if (pyramid == NULL) {
        od_fail(err, "pyramid: out of memory");
        return NULL;
    }
    pyramid->config = *c;
    const char *p = prefix != NULL ? prefix : "";
    char name[OD_PARAM_NAME_SIZE];
    for (int i = 0; i < c->levels; i++) {
        snprintf(name, sizeof name, "%slateral.%d.weight", p, i);
        const int64_t weight_shape[4] = {c->out_channels, c->in_channels[i], 1, 1};
        pyramid->weight[i] = od_params_add(params, name, 4, weight_shape, 1, OD_PARAM_INIT_KAIMING_UNIFORM, 0, err);
        if (pyramid->weight[i] == NULL)
            goto fail;
        snprintf(name, sizeof name, "%slateral.%d.bias", p, i);
        pyramid->bias[i] = od_params_add(params, name, 1, &c->out_channels, 1, OD_PARAM_INIT_BIAS,
                                         c->in_channels[i], err);
        if (pyramid->bias[i] == NULL)
            goto fail;
        if (i > 0) {
            pyramid->lateral[i] = od_alloc_floats(level_rows(c, i) * c->out_channels);
            if (pyramid->lateral[i] == NULL)
                goto out_of_memory;
        }
    }
    if (c->levels > 1) {
        pyramid->d_lateral = od_alloc_floats(level_rows(c, 1) * c->out_channels);
        if (pyramid->d_lateral == NULL)
            goto out_of_memory;
    }
    return pyramid;

out_of_memory:
    od_fail(err, "pyramid: out of memory");
fail:
    od_pyramid_free(pyramid);
    return NULL;
}

void od_pyramid_free(od_pyramid *pyramid)
{
    if (pyramid == NULL)
        return;
    for (int i = 0; i < OD_PYRAMID_MAX_LEVELS; i++)
        od_free(pyramid->lateral[i]);
    od_free(pyramid->d_lateral);
    free(pyramid);
}

/* ---- bilinear upsampling by an integer factor ------------------------------- */

/* The two input pixels that output pixel o reads along one axis of `in`
 * pixels at factor s, and their weights (PyTorch's half-pixel rule). */
typedef struct tap {
    int64_t first, second;
    float first_weight, second_weight;
} tap;

static tap source_tap(int64_t o, int64_t s, int64_t in)
{
    float position = ((float)o + 0.5f) / (float)s - 0.5f;
    if (position < 0.0f)
        position = 0.0f;
    tap t;
    t.first = (int64_t)position;
    if (t.first > in - 1)
        t.first = in - 1;
    t.second = t.first < in - 1 ? t.first + 1 : t.first;
    t.second_weight = position - (float)t.first;
    t.first_weight = 1.0f - t.second_weight;
    return t;
}

/* out (N, h s, w s, C) += upsample(in (N, h, w, C)). */
static void upsample_add_forward(float *out, const float *in, int64_t batch, int64_t h, int64_t w, int64_t s,
                                 int64_t channels)
{
    const int64_t out_h = h * s, out_w = w * s;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < batch * out_h; row++) {
        const int64_t n = row / out_h;
        const tap ty = source_tap(row % out_h, s, h);
        const float *in_top = in + (n * h + ty.first) * w * channels;
        const float *in_bottom = in + (n * h + ty.second) * w * channels;
        float *out_row = out + row * out_w * channels;
        for (int64_t ox = 0; ox < out_w; ox++) {
            const tap tx = source_tap(ox, s, w);
            const float *a = in_top + tx.first * channels, *b = in_top + tx.second * channels;
            const float *c = in_bottom + tx.first * channels, *d = in_bottom + tx.second * channels;
            float *o = out_row + ox * channels;
            for (int64_t k = 0; k < channels; k++)
                o[k] += ty.first_weight * (tx.first_weight * a[k] + tx.second_weight * b[k]) +
                        ty.second_weight * (tx.first_weight * c[k] + tx.second_weight * d[k]);
        }
    }
}

/* d_in (N, h, w, C) += the upsampling's transpose applied to d_out
 * (N, h s, w s, C). One thread scatters one image in a fixed order, so the
 * sums do not depend on the thread count. */
static void upsample_backward(float *d_in, const float *d_out, int64_t batch, int64_t h, int64_t w, int64_t s,
                              int64_t channels)
{
    const int64_t out_h = h * s, out_w = w * s;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < batch; n++) {
        for (int64_t oy = 0; oy < out_h; oy++) {
            const tap ty = source_tap(oy, s, h);
            float *top = d_in + (n * h + ty.first) * w * channels;
            float *bottom = d_in + (n * h + ty.second) * w * channels;
            const float *g_row = d_out + (n * out_h + oy) * out_w * channels;
            for (int64_t ox = 0; ox < out_w; ox++) {
                const tap tx = source_tap(ox, s, w);
                const float *g = g_row + ox * channels;
                const float wa = ty.first_weight * tx.first_weight, wb = ty.first_weight * tx.second_weight;
                const float wc = ty.second_weight * tx.first_weight, wd = ty.second_weight * tx.second_weight;
                float *a = top + tx.first * channels, *b = top + tx.second * channels;
                float *c = bottom + tx.first * channels, *d = bottom + tx.second * channels;
                for (int64_t k = 0; k < channels; k++) {
                    a[k] += wa * g[k];
                    b[k] += wb * g[k];
                    c[k] += wc * g[k];
                    d[k] += wd * g[k];
                }
            }
        }
    }
}

/* ---- forward and backward ----------------------------------------------------- */

int od_pyramid_forward(od_pyramid *pyramid, const float *const *inputs, float *out, od_error *err)
{
    const od_pyramid_config *c = &pyramid->config;
    for (int i = 0; i < c->levels; i++)
        if (inputs == NULL || inputs[i] == NULL)
            return od_fail(err, "pyramid: input of level %d missing", i);

    /* level 0's lateral conv writes the output; coarser levels add onto it */
    od_linear_forward(out, inputs[0], pyramid->weight[0]->value, pyramid->bias[0]->value, level_rows(c, 0),
                      c->in_channels[0], c->out_channels);
    for (int i = 1; i < c->levels; i++) {
        od_linear_forward(pyramid->lateral[i], inputs[i], pyramid->weight[i]->value, pyramid->bias[i]->value,
                          level_rows(c, i), c->in_channels[i], c->out_channels);
        upsample_add_forward(out, pyramid->lateral[i], c->batch, c->height >> i, c->width >> i, (int64_t)1 << i,
                             c->out_channels);
    }
    for (int i = 0; i < c->levels; i++)
        pyramid->inputs[i] = inputs[i];
    pyramid->forwarded = 1;
    return 0;
}

int od_pyramid_backward(od_pyramid *pyramid, const float *d_out, float *const *d_inputs, od_error *err)
{
    if (!pyramid->forwarded)
        return od_fail(err, "pyramid: backward needs a forward before it");
    const od_pyramid_config *c = &pyramid->config;
    for (int i = 0; i < c->levels; i++) {
        const float *d_lateral = d_out;
        if (i > 0) {
            const int64_t count = level_rows(c, i) * c->out_channels;
            memset(pyramid->d_lateral, 0, (size_t)count * sizeof(float));
            upsample_backward(pyramid->d_lateral, d_out, c->batch, c->height >> i, c->width >> i, (int64_t)1 << i,
                              c->out_channels);
            d_lateral = pyramid->d_lateral;
        }
        float *d_input = d_inputs != NULL ? d_inputs[i] : NULL;
        od_linear_backward(d_input, pyramid->weight[i]->grad, pyramid->bias[i]->grad, d_lateral, pyramid->inputs[i],
                           pyramid->weight[i]->value, level_rows(c, i), c->in_channels[i], c->out_channels);
    }
    return 0;
}
