/* DINOv2 forward pass: loading, position-embedding interpolation, blocks. */
#include "teacher/dinov2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/linear.h"
#include "nn/norm.h"

#define DINOV2_EPS 1e-6f
#define DINOV2_KEY_SIZE 128
/* Rows below this are handled by one thread in the elementwise loops. */
#define DINOV2_PARALLEL_MIN 4096

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

typedef struct dinov2_block {
    od_tensor *norm1_weight, *norm1_bias;
    od_tensor *query_weight, *query_bias;
    od_tensor *key_weight, *key_bias;
    od_tensor *value_weight, *value_bias;
    od_tensor *dense_weight, *dense_bias;
    od_tensor *lambda1;
    od_tensor *norm2_weight, *norm2_bias;
    od_tensor *fc1_weight, *fc1_bias;
    od_tensor *fc2_weight, *fc2_bias;
    od_tensor *lambda2;
} dinov2_block;

struct od_dinov2 {
    od_dinov2_info info;
    od_dinov2_positions positions;
    od_tensor *cls_token;           /* (1, 1, C) */
    od_tensor *mask_token;          /* (1, C) */
    od_tensor *position_embeddings; /* (1, 1 + S * S, C) */
    od_tensor *patch_weight;        /* (C, 3, P, P), read as (C, 3 * P * P) */
    od_tensor *patch_bias;          /* (C) */
    od_tensor *final_norm_weight, *final_norm_bias;
    dinov2_block *blocks;           /* info.layers */
};

/* ---- loading ------------------------------------------------------------ */

/* Reads one tensor of the given shape (-1 matches any size) into *out. */
static int load_tensor(const od_safetensors *st, const char *name, int ndim, const int64_t *shape,
                       od_tensor **out, od_error *err)
{
    *out = od_safetensors_get(st, name, ndim, shape, err);
    return *out == NULL ? -1 : 0;
}

static int load_vector(const od_safetensors *st, const char *name, int64_t size, od_tensor **out,
                       od_error *err)
{
    const int64_t shape[1] = {size};
    return load_tensor(st, name, 1, shape, out, err);
}

static int load_matrix(const od_safetensors *st, const char *name, int64_t rows, int64_t cols,
                       od_tensor **out, od_error *err)
{
    const int64_t shape[2] = {rows, cols};
    return load_tensor(st, name, 2, shape, out, err);
}

static int load_block(const od_safetensors *st, int64_t index, int64_t C, int64_t M,
                      dinov2_block *block, od_error *err)
{
    char name[DINOV2_KEY_SIZE];
#define BLOCK_KEY(suffix) (snprintf(name, sizeof name, "encoder.layer.%lld." suffix, (long long)index), name)
    if (load_vector(st, BLOCK_KEY("norm1.weight"), C, &block->norm1_weight, err) != 0 ||
        load_vector(st, BLOCK_KEY("norm1.bias"), C, &block->norm1_bias, err) != 0 ||
        load_matrix(st, BLOCK_KEY("attention.attention.query.weight"), C, C, &block->query_weight, err) != 0 ||
        load_vector(st, BLOCK_KEY("attention.attention.query.bias"), C, &block->query_bias, err) != 0 ||
        load_matrix(st, BLOCK_KEY("attention.attention.key.weight"), C, C, &block->key_weight, err) != 0 ||
        load_vector(st, BLOCK_KEY("attention.attention.key.bias"), C, &block->key_bias, err) != 0 ||
        load_matrix(st, BLOCK_KEY("attention.attention.value.weight"), C, C, &block->value_weight, err) != 0 ||
        load_vector(st, BLOCK_KEY("attention.attention.value.bias"), C, &block->value_bias, err) != 0 ||
        load_matrix(st, BLOCK_KEY("attention.output.dense.weight"), C, C, &block->dense_weight, err) != 0 ||
        load_vector(st, BLOCK_KEY("attention.output.dense.bias"), C, &block->dense_bias, err) != 0 ||
        load_vector(st, BLOCK_KEY("layer_scale1.lambda1"), C, &block->lambda1, err) != 0 ||
        load_vector(st, BLOCK_KEY("norm2.weight"), C, &block->norm2_weight, err) != 0 ||
        load_vector(st, BLOCK_KEY("norm2.bias"), C, &block->norm2_bias, err) != 0 ||
        load_matrix(st, BLOCK_KEY("mlp.fc1.weight"), M, C, &block->fc1_weight, err) != 0 ||
        load_vector(st, BLOCK_KEY("mlp.fc1.bias"), M, &block->fc1_bias, err) != 0 ||
        load_matrix(st, BLOCK_KEY("mlp.fc2.weight"), C, M, &block->fc2_weight, err) != 0 ||
        load_vector(st, BLOCK_KEY("mlp.fc2.bias"), C, &block->fc2_bias, err) != 0 ||
        load_vector(st, BLOCK_KEY("layer_scale2.lambda1"), C, &block->lambda2, err) != 0)
        return -1;
#undef BLOCK_KEY
    return 0;
}

static void free_block(dinov2_block *block)
{
    od_tensor **members[] = {
        &block->norm1_weight, &block->norm1_bias,   &block->query_weight, &block->query_bias,
        &block->key_weight,   &block->key_bias,     &block->value_weight, &block->value_bias,
        &block->dense_weight, &block->dense_bias,   &block->lambda1,      &block->norm2_weight,
        &block->norm2_bias,   &block->fc1_weight,   &block->fc1_bias,     &block->fc2_weight,
        &block->fc2_bias,     &block->lambda2,
    };
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        od_tensor_free(*members[i]);
        *members[i] = NULL;
    }
}

void od_dinov2_free(od_dinov2 *net)
{
    if (net == NULL)
        return;
    od_tensor_free(net->cls_token);
    od_tensor_free(net->mask_token);
    od_tensor_free(net->position_embeddings);
    od_tensor_free(net->patch_weight);
    od_tensor_free(net->patch_bias);
    od_tensor_free(net->final_norm_weight);
    od_tensor_free(net->final_norm_bias);
    if (net->blocks != NULL) {
        for (int64_t i = 0; i < net->info.layers; i++)
            free_block(&net->blocks[i]);
    }
    free(net->blocks);
    free(net);
}

/* Reads the sizes from the shapes of the embedding and first-block keys. */
static int read_sizes(const od_safetensors *st, int64_t heads, od_dinov2_info *info, od_error *err)
{
    const od_st_entry *cls = od_safetensors_find(st, "embeddings.cls_token");
    if (cls == NULL)
        return od_fail(err, "%s: tensor \"embeddings.cls_token\" not found; expected a Hugging Face "
                       "Dinov2Model checkpoint such as facebook/dinov2-small's model.safetensors",
                       st->source);
    if (cls->ndim != 3 || cls->shape[0] != 1 || cls->shape[1] != 1 || cls->shape[2] <= 0)
        return od_fail(err, "%s: tensor \"embeddings.cls_token\" must have shape (1, 1, C)", st->source);
    info->hidden = cls->shape[2];

    const od_st_entry *patch = od_safetensors_find(st, "embeddings.patch_embeddings.projection.weight");
    if (patch == NULL)
        return od_fail(err, "%s: tensor \"embeddings.patch_embeddings.projection.weight\" not found",
                       st->source);
    if (patch->ndim != 4 || patch->shape[0] != info->hidden || patch->shape[1] != 3 ||
        patch->shape[2] <= 0 || patch->shape[2] != patch->shape[3])
        return od_fail(err, "%s: tensor \"embeddings.patch_embeddings.projection.weight\" must have "
                       "shape (%lld, 3, P, P)", st->source, (long long)info->hidden);
    info->patch_size = patch->shape[2];

    const od_st_entry *position = od_safetensors_find(st, "embeddings.position_embeddings");
    if (position == NULL)
        return od_fail(err, "%s: tensor \"embeddings.position_embeddings\" not found", st->source);
    int64_t side = -1;
    if (position->ndim == 3 && position->shape[0] == 1 && position->shape[2] == info->hidden &&
        position->shape[1] >= 2) {
        side = (int64_t)llround(sqrt((double)(position->shape[1] - 1)));
        if (side * side != position->shape[1] - 1)
            side = -1;
    }
    if (side <= 0)
        return od_fail(err, "%s: tensor \"embeddings.position_embeddings\" must have shape "
                       "(1, 1 + S * S, %lld)", st->source, (long long)info->hidden);
    info->table_side = side;

    const od_st_entry *fc1 = od_safetensors_find(st, "encoder.layer.0.mlp.fc1.weight");
    if (fc1 == NULL)
        return od_fail(err, "%s: tensor \"encoder.layer.0.mlp.fc1.weight\" not found", st->source);
    if (fc1->ndim != 2 || fc1->shape[0] <= 0 || fc1->shape[1] != info->hidden)
        return od_fail(err, "%s: tensor \"encoder.layer.0.mlp.fc1.weight\" must have shape (M, %lld)",
                       st->source, (long long)info->hidden);
    info->mlp_hidden = fc1->shape[0];

    /* Blocks are numbered from 0 without gaps; the first missing norm1 ends them. */
    char name[DINOV2_KEY_SIZE];
    info->layers = 0;
    for (;;) {
        snprintf(name, sizeof name, "encoder.layer.%lld.norm1.weight", (long long)info->layers);
        if (od_safetensors_find(st, name) == NULL)
            break;
        info->layers++;
    }
    if (info->layers == 0)
        return od_fail(err, "%s: tensor \"encoder.layer.0.norm1.weight\" not found", st->source);

    info->heads = heads != 0 ? heads : info->hidden / OD_DINOV2_HEAD_DIM;
    if (info->heads <= 0 || info->hidden % info->heads != 0)
        return od_fail(err, "%s: %lld attention heads do not divide the hidden size %lld; pass the "
                       "checkpoint's num_attention_heads", st->source, (long long)info->heads,
                       (long long)info->hidden);
    return 0;
}

od_dinov2 *od_dinov2_load(const char *path, int64_t heads, od_error *err)
{
    if (heads < 0) {
        od_fail(err, "DINOv2: head count %lld is invalid; pass 0 for hidden / %d", (long long)heads,
                OD_DINOV2_HEAD_DIM);
        return NULL;
    }
    od_safetensors *st = od_safetensors_read(path, err);
    if (st == NULL) {
        od_fail_context(err, "DINOv2 weights (download model.safetensors of facebook/dinov2-small "
                        "from Hugging Face and pass its path)");
        return NULL;
    }
    od_dinov2 *net = calloc(1, sizeof *net);
    if (net == NULL) {
        od_fail(err, "DINOv2: out of memory");
        od_safetensors_free(st);
        return NULL;
    }
    od_dinov2_info info;
    if (read_sizes(st, heads, &info, err) != 0)
        goto fail;

    const int64_t C = info.hidden, P = info.patch_size, S = info.table_side;
    const int64_t cls_shape[3] = {1, 1, C};
    const int64_t mask_shape[2] = {1, C};
    const int64_t position_shape[3] = {1, 1 + S * S, C};
    const int64_t patch_shape[4] = {C, 3, P, P};
    if (load_tensor(st, "embeddings.cls_token", 3, cls_shape, &net->cls_token, err) != 0 ||
        load_tensor(st, "embeddings.mask_token", 2, mask_shape, &net->mask_token, err) != 0 ||
        load_tensor(st, "embeddings.position_embeddings", 3, position_shape,
                    &net->position_embeddings, err) != 0 ||
        load_tensor(st, "embeddings.patch_embeddings.projection.weight", 4, patch_shape,
                    &net->patch_weight, err) != 0 ||
        load_vector(st, "embeddings.patch_embeddings.projection.bias", C, &net->patch_bias, err) != 0 ||
        load_vector(st, "layernorm.weight", C, &net->final_norm_weight, err) != 0 ||
        load_vector(st, "layernorm.bias", C, &net->final_norm_bias, err) != 0)
        goto fail;

    net->blocks = calloc((size_t)info.layers, sizeof *net->blocks);
    if (net->blocks == NULL) {
        od_fail(err, "DINOv2: out of memory");
        goto fail;
    }
    net->info = info;
    for (int64_t i = 0; i < info.layers; i++) {
        if (load_block(st, i, C, info.mlp_hidden, &net->blocks[i], err) != 0)
            goto fail;
    }
    od_safetensors_free(st);
    return net;

fail:
    /* net->info.layers is 0 until the blocks are allocated, and od_dinov2_free
     * skips the NULL tensors of blocks that were not loaded. */
    od_dinov2_free(net);
    od_safetensors_free(st);
    return NULL;
}

od_dinov2_info od_dinov2_get_info(const od_dinov2 *net)
{
    return net->info;
}

int od_dinov2_set_positions(od_dinov2 *net, od_dinov2_positions positions, od_error *err)
{
    if (positions != OD_DINOV2_POSITIONS_SCALE_FACTOR && positions != OD_DINOV2_POSITIONS_SIZE)
        return od_fail(err, "DINOv2: position interpolation %d is invalid; expected "
                       "OD_DINOV2_POSITIONS_SCALE_FACTOR or OD_DINOV2_POSITIONS_SIZE", (int)positions);
    net->positions = positions;
    return 0;
}

/* ---- position embeddings -------------------------------------------------- */

/* PyTorch's cubic convolution weights (A = -0.75) for a tap at fraction t
 * in [0, 1) past the left neighbour: taps at -1, 0, +1, +2. */
static void cubic_weights(float t, float w[4])
{
    const float A = -0.75f;
    const float near0 = t, near1 = 1.0f - t;
    const float far0 = t + 1.0f, far1 = 2.0f - t;
    w[0] = ((A * far0 - 5.0f * A) * far0 + 8.0f * A) * far0 - 4.0f * A;
    w[1] = ((A + 2.0f) * near0 - (A + 3.0f)) * near0 * near0 + 1.0f;
    w[2] = ((A + 2.0f) * near1 - (A + 3.0f)) * near1 * near1 + 1.0f;
    w[3] = ((A * far1 - 5.0f * A) * far1 + 8.0f * A) * far1 - 4.0f * A;
}

/* Source taps and weights of output index i along one axis, as PyTorch's
 * upsample_bicubic2d computes them with align_corners=False; step is the
 * input distance between output samples. Taps outside [0, side) are
 * clamped to the border. */
static void cubic_taps(int64_t i, float step, int64_t side, int64_t taps[4], float w[4])
{
    const float real = step * ((float)i + 0.5f) - 0.5f;
    const float left = floorf(real);
    cubic_weights(real - left, w);
    for (int k = 0; k < 4; k++) {
        int64_t tap = (int64_t)left - 1 + k;
        taps[k] = tap < 0 ? 0 : (tap > side - 1 ? side - 1 : tap);
    }
}

/* Adds the position embeddings for a grid_h x grid_w patch grid to tokens.
 * tokens is (1 + grid_h * grid_w, C), CLS first; the table is
 * (1 + S * S, C). */
static int add_position_embeddings(const od_dinov2 *net, float *tokens, int64_t grid_h,
                                   int64_t grid_w, od_error *err)
{
    const int64_t C = net->info.hidden, S = net->info.table_side;
    const float *table = net->position_embeddings->data;
    for (int64_t c = 0; c < C; c++)
        tokens[c] += table[c];

    if (grid_h == S && grid_w == S) {
        /* transformers returns the stored table for a square grid of its size. */
        for (int64_t i = C; i < (1 + S * S) * C; i++)
            tokens[i] += table[i];
        return 0;
    }

    float step_h, step_w;
    if (net->positions == OD_DINOV2_POSITIONS_SCALE_FACTOR) {
        /* scale_factor = (grid + 0.1) / S in double, as Python computes it;
         * the 0.1 keeps floor(S * scale_factor) from landing one short of
         * grid. PyTorch steps by 1 / scale_factor, rounded to float. */
        const double scale_h = ((double)grid_h + 0.1) / sqrt((double)(S * S));
        const double scale_w = ((double)grid_w + 0.1) / sqrt((double)(S * S));
        if ((int64_t)floor((double)S * scale_h) != grid_h ||
            (int64_t)floor((double)S * scale_w) != grid_w)
            return od_fail(err, "DINOv2: the %lldx%lld position table does not interpolate to a "
                           "%lldx%lld grid", (long long)S, (long long)S, (long long)grid_h,
                           (long long)grid_w);
        step_h = (float)(1.0 / scale_h);
        step_w = (float)(1.0 / scale_w);
    } else {
        step_h = (float)S / (float)grid_h;
        step_w = (float)S / (float)grid_w;
    }

    const float *patch_table = table + C; /* (S, S, C) */
#pragma omp parallel for schedule(static)
    for (int64_t y = 0; y < grid_h; y++) {
        int64_t rows[4], cols[4];
        float wy[4], wx[4];
        cubic_taps(y, step_h, S, rows, wy);
        for (int64_t x = 0; x < grid_w; x++) {
            cubic_taps(x, step_w, S, cols, wx);
            float *out = tokens + (1 + y * grid_w + x) * C;
            /* Interpolate each tap row along x, then the four rows along y,
             * in PyTorch's order. */
            for (int64_t c = 0; c < C; c++) {
                float value = 0.0f;
                for (int r = 0; r < 4; r++) {
                    const float *row = patch_table + rows[r] * S * C + c;
                    const float along_x = row[cols[0] * C] * wx[0] + row[cols[1] * C] * wx[1] +
                                          row[cols[2] * C] * wx[2] + row[cols[3] * C] * wx[3];
                    value += along_x * wy[r];
                }
                out[c] += value;
            }
        }
    }
    return 0;
}

/* ---- forward ---------------------------------------------------------------- */

/* Scratch buffers of one forward; T tokens of width C, MLP width M. */
typedef struct dinov2_scratch {
    float *x;        /* (T, C) the residual stream */
    float *normed;   /* (T, C) */
    float *q, *k, *v;/* (T, C) */
    float *context;  /* (T, C) attention output before the dense projection */
    float *hidden;   /* (T, M); also (G, 3 * P * P) patches for the embedding */
    float *mean, *rstd; /* (T) layer-norm statistics, unused after the call */
} dinov2_scratch;

static void scratch_release(dinov2_scratch *s)
{
    float *buffers[] = {s->x, s->normed, s->q, s->k, s->v, s->context, s->hidden, s->mean, s->rstd};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        od_free(buffers[i]);
    memset(s, 0, sizeof *s);
}

static int scratch_alloc(dinov2_scratch *s, int64_t T, int64_t C, int64_t M, int64_t patch_floats,
                         od_error *err)
{
    memset(s, 0, sizeof *s);
    const int64_t hidden = T * M > patch_floats ? T * M : patch_floats;
    s->x = od_alloc_floats(T * C);
    s->normed = od_alloc_floats(T * C);
    s->q = od_alloc_floats(T * C);
    s->k = od_alloc_floats(T * C);
    s->v = od_alloc_floats(T * C);
    s->context = od_alloc_floats(T * C);
    s->hidden = od_alloc_floats(hidden);
    s->mean = od_alloc_floats(T);
    s->rstd = od_alloc_floats(T);
    if (s->x == NULL || s->normed == NULL || s->q == NULL || s->k == NULL || s->v == NULL ||
        s->context == NULL || s->hidden == NULL || s->mean == NULL || s->rstd == NULL) {
        scratch_release(s);
        return od_fail(err, "DINOv2: out of memory for %lld tokens", (long long)T);
    }
    return 0;
}

/* Normalises the image and writes each patch as one row in the conv
 * weight's (3, P, P) order, so that the patch embedding is one matrix
 * product. image is (height, width, 3); patches is (grid_h * grid_w, 3 * P * P). */
static void extract_patches(float *patches, const float *image, int64_t width, int64_t grid_h,
                            int64_t grid_w, int64_t P)
{
#pragma omp parallel for schedule(static)
    for (int64_t gy = 0; gy < grid_h; gy++) {
        for (int64_t gx = 0; gx < grid_w; gx++) {
            float *row = patches + (gy * grid_w + gx) * 3 * P * P;
            for (int64_t c = 0; c < 3; c++) {
                const float scale = 1.0f / imagenet_std[c];
                for (int64_t py = 0; py < P; py++) {
                    const float *pixels = image + ((gy * P + py) * width + gx * P) * 3 + c;
                    float *dst = row + (c * P + py) * P;
                    for (int64_t px = 0; px < P; px++)
                        dst[px] = (pixels[px * 3] - imagenet_mean[c]) * scale;
                }
            }
        }
    }
}

/* x += lambda * update, per channel. x and update are (T, C); lambda is (C). */
static void add_scaled(float *x, const float *update, const float *lambda, int64_t T, int64_t C)
{
#pragma omp parallel for schedule(static) if (T * C >= DINOV2_PARALLEL_MIN)
    for (int64_t t = 0; t < T; t++) {
        float *row = x + t * C;
        const float *delta = update + t * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            row[c] += lambda[c] * delta[c];
    }
}

/* One pre-norm block on s->x, which is (T, C). */
static int run_block(const od_dinov2 *net, const dinov2_block *b, dinov2_scratch *s, int64_t T,
                     od_error *err)
{
    const int64_t C = net->info.hidden, M = net->info.mlp_hidden, H = net->info.heads;

    od_layernorm_forward(s->normed, s->mean, s->rstd, s->x, b->norm1_weight->data,
                         b->norm1_bias->data, T, C, DINOV2_EPS);
    od_linear_forward(s->q, s->normed, b->query_weight->data, b->query_bias->data, T, C, C);
    od_linear_forward(s->k, s->normed, b->key_weight->data, b->key_bias->data, T, C, C);
    od_linear_forward(s->v, s->normed, b->value_weight->data, b->value_bias->data, T, C, C);
    if (od_attention_forward(s->context, NULL, s->q, s->k, s->v, 1, T, T, H, C / H, err) != 0)
        return od_fail_context(err, "DINOv2 attention");
    /* The dense projection goes into q, which attention no longer needs. */
    od_linear_forward(s->q, s->context, b->dense_weight->data, b->dense_bias->data, T, C, C);
    add_scaled(s->x, s->q, b->lambda1->data, T, C);

    od_layernorm_forward(s->normed, s->mean, s->rstd, s->x, b->norm2_weight->data,
                         b->norm2_bias->data, T, C, DINOV2_EPS);
    od_linear_forward(s->hidden, s->normed, b->fc1_weight->data, b->fc1_bias->data, T, C, M);
    od_gelu_forward(s->hidden, s->hidden, T * M);
    od_linear_forward(s->q, s->hidden, b->fc2_weight->data, b->fc2_bias->data, T, M, C);
    add_scaled(s->x, s->q, b->lambda2->data, T, C);
    return 0;
}

int od_dinov2_forward(const od_dinov2 *net, const float *image, int64_t height, int64_t width,
                      float *patch_tokens, float *cls_token, int64_t layer_index,
                      float *layer_tokens, od_error *err)
{
    /* image: (height, width, 3); patch_tokens, layer_tokens: (height / P, width / P, C);
     * cls_token: (C) */
    const od_dinov2_info *info = &net->info;
    const int64_t C = info->hidden, P = info->patch_size;
    if (height <= 0 || width <= 0 || height % P != 0 || width % P != 0)
        return od_fail(err, "DINOv2: input size %lldx%lld (height x width) is invalid; both sides "
                       "must be positive multiples of the patch size %lld (e.g. %lldx%lld)",
                       (long long)height, (long long)width, (long long)P, (long long)(16 * P),
                       (long long)(16 * P));
    if (layer_tokens != NULL && (layer_index < 0 || layer_index >= info->layers))
        return od_fail(err, "DINOv2: layer index %lld is outside [0, %lld)", (long long)layer_index,
                       (long long)info->layers);

    const int64_t grid_h = height / P, grid_w = width / P, G = grid_h * grid_w, T = 1 + G;
    dinov2_scratch s;
    if (scratch_alloc(&s, T, C, info->mlp_hidden, G * 3 * P * P, err) != 0)
        return -1;

    /* Embeddings: CLS, then the patch projection, then positions. */
    extract_patches(s.hidden, image, width, grid_h, grid_w, P);
    od_linear_forward(s.x + C, s.hidden, net->patch_weight->data, net->patch_bias->data, G, 3 * P * P, C);
    memcpy(s.x, net->cls_token->data, (size_t)C * sizeof(float));
    int status = add_position_embeddings(net, s.x, grid_h, grid_w, err);

    for (int64_t i = 0; status == 0 && i < info->layers; i++) {
        status = run_block(net, &net->blocks[i], &s, T, err);
        if (status == 0 && layer_tokens != NULL && i == layer_index)
            memcpy(layer_tokens, s.x + C, (size_t)(G * C) * sizeof(float));
    }

    if (status == 0 && (patch_tokens != NULL || cls_token != NULL)) {
        od_layernorm_forward(s.normed, s.mean, s.rstd, s.x, net->final_norm_weight->data,
                             net->final_norm_bias->data, T, C, DINOV2_EPS);
        if (cls_token != NULL)
            memcpy(cls_token, s.normed, (size_t)C * sizeof(float));
        if (patch_tokens != NULL)
            memcpy(patch_tokens, s.normed + C, (size_t)(G * C) * sizeof(float));
    }
    scratch_release(&s);
    return status;
}

int od_dinov2_forward_image(const od_dinov2 *net, const od_image *image, int64_t height,
                            int64_t width, float *patch_tokens, float *cls_token,
                            int64_t layer_index, float *layer_tokens, od_error *err)
{
    if (image->channels != 3)
        return od_fail(err, "DINOv2: the image has %d channels, expected 3 (RGB); read it with "
                       "od_image_read", image->channels);
    if (height <= 0 || width <= 0 || height > OD_IMAGE_MAX_SIDE || width > OD_IMAGE_MAX_SIDE)
        return od_fail(err, "DINOv2: input size %lldx%lld (height x width) is invalid",
                       (long long)height, (long long)width);
    if (image->height == height && image->width == width)
        return od_dinov2_forward(net, image->pixels, height, width, patch_tokens, cls_token,
                                 layer_index, layer_tokens, err);

    od_image resized = {0};
    if (od_image_resize(image, (int)width, (int)height, &resized, err) != 0)
        return -1;
    const int status = od_dinov2_forward(net, resized.pixels, height, width, patch_tokens,
                                         cls_token, layer_index, layer_tokens, err);
    od_image_free(&resized);
    return status;
}
