/* The matcher and classifier of the learned model (see matcher.h). */
#include "model/matcher.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gemm.h"
#include "core/mem.h"
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/norm.h"

/* ---- layers and buffers ----------------------------------------------------- */

typedef struct layernorm_unit {
    od_param *gamma, *beta; /* (M) */
    float *out;             /* (R, M) */
    float *mean, *rstd;     /* (R) */
} layernorm_unit;

typedef struct matcher_block {
    int has_attention; /* registered: not variant A */
    layernorm_unit norm1, norm2;
    od_param *in_proj_weight, *in_proj_bias, *out_proj_weight, *out_proj_bias;
    od_mha_saved saved;
    int64_t saved_objects; /* object count that saved is sized for, 0 before the first call */
    od_param *ff0_weight, *ff0_bias, *ff2_weight, *ff2_bias; /* (4M, M), (4M), (M, 2M), (M) */
    /* kept for the backward, each (R, width): the block's input, the
     * stream after the attention (it aliases input when a call skips
     * attention), ff.0's output (4M) and the GEGLU's output (2M) */
    float *input, *middle, *hidden, *gated;
    float *middle_storage;
} matcher_block;

typedef struct conv_layer {
    od_conv3d *conv;             /* batch 1: the classifier runs object by object */
    od_param *weight, *bias;     /* (M, M, 3, 3, 3), (M) */
    int64_t in_cells, out_cells; /* cells of one object in and out */
} conv_layer;

struct od_matcher {
    od_matcher_config config;
    int64_t tokens;      /* T = n^3 */
    int64_t in_features; /* Cin + 3 */
    int64_t max_rows;    /* max_objects T */
    int64_t max_keys;    /* keys per query at max_objects, 0 for variant A */
    int64_t flat;        /* (n/4)^3 M, the first linear layer's input */

    od_param *embed_weight, *embed_bias;
    matcher_block *blocks;
    layernorm_unit norm;
    conv_layer conv1, conv2;
    od_param *linear1_weight, *linear1_bias, *linear2_weight, *linear2_bias;

    /* forward activations */
    float *embed_input; /* (R, Cin + 3) */
    float *stream;      /* (R, M): the last block's output */
    float *attention_out, *ff_out;
    float *masked;      /* (R, M): the final LayerNorm's output times the mask */
    float *others;      /* (O, (O - 1) T, M): plain attention's keys, the other objects' tokens */
    float *conv1_out;   /* (O, s1^3, M) after ReLU */
    float *conv2_out;   /* (O, s2^3, M) after ReLU */
    float *flat_in;     /* (O, M s2^3), PyTorch's flatten order */
    float *linear1_out; /* (O, M) after ReLU */

    /* top-k choice */
    float *unit_teacher;    /* (R, k) teacher slices scaled to unit norm */
    float *candidate_units; /* (R, k): unit_teacher of each object's candidate cells, in list order */
    float *similarity;      /* (T, T): one query object's cosine similarities to one other object's candidates */
    float *top_similarity;  /* (R, top_k) scratch of the selection */
    int32_t *occupied;      /* (max_objects, T): each object's occupied cells, ascending */
    int64_t *occupied_count;
    int32_t *key_index;     /* (R, K) */

    /* backward */
    float *d_stream, *d_normed, *d_hidden, *d_gated, *d_embed_input, *d_others;
    float *d_masked, *d_conv1, *d_conv2, *d_flat, *d_linear1;

    /* state of the last forward */
    const float *mask;
    int64_t objects, keys;
    int attention_used;
    int trained;
};

static void zero_floats(float *data, int64_t count)
{
    memset(data, 0, (size_t)count * sizeof(float));
}

static void add_floats(float *target, const float *source, int64_t count)
{
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; i++)
        target[i] += source[i];
}

/* ReLU's backward in place: d stays where the forward's output is positive. */
static void relu_backward_in_place(float *d, const float *out, int64_t count)
{
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; i++)
        d[i] = out[i] > 0.0f ? d[i] : 0.0f;
}

/* ---- construction ----------------------------------------------------------- */

typedef struct builder {
    od_params *params;
    const char *prefix;
    od_error *err;
    int failed;
} builder;

static void *buffer_bytes(builder *b, size_t bytes)
{
    if (b->failed)
        return NULL;
    void *data = od_alloc_aligned(bytes > 0 ? bytes : 1);
    if (data == NULL) {
        b->failed = 1;
        od_fail(b->err, "matcher: out of memory for a buffer of %zu bytes", bytes);
        return NULL;
    }
    memset(data, 0, bytes);
    return data;
}

static float *buffer(builder *b, int64_t count)
{
    return buffer_bytes(b, (size_t)count * sizeof(float));
}

static od_param *tensor(builder *b, const char *name, int ndim, const int64_t *shape,
                        od_param_init init, int64_t fan_in)
{
    if (b->failed)
        return NULL;
    char full[OD_PARAM_NAME_SIZE];
    if (snprintf(full, sizeof full, "%s%s", b->prefix, name) >= (int)sizeof full) {
        b->failed = 1;
        od_fail(b->err, "matcher: parameter name %s%s too long", b->prefix, name);
        return NULL;
    }
    od_param *p = od_params_add(b->params, full, ndim, shape, 1, init, fan_in, b->err);
    b->failed = p == NULL;
    return p;
}

/* Registers Linear(in, out) as "<name>.weight" and "<name>.bias". */
static void linear_init(builder *b, const char *name, int64_t in, int64_t out, od_param **weight,
                        od_param **bias)
{
    char full[OD_PARAM_NAME_SIZE];
    snprintf(full, sizeof full, "%s.weight", name);
    *weight = tensor(b, full, 2, (const int64_t[]){out, in}, OD_PARAM_INIT_KAIMING_UNIFORM, 0);
    snprintf(full, sizeof full, "%s.bias", name);
    *bias = tensor(b, full, 1, (const int64_t[]){out}, OD_PARAM_INIT_BIAS, in);
}

static void layernorm_init(builder *b, layernorm_unit *unit, const char *name, int64_t rows,
                           int64_t channels)
{
    char full[OD_PARAM_NAME_SIZE];
    snprintf(full, sizeof full, "%s.weight", name);
    unit->gamma = tensor(b, full, 1, (const int64_t[]){channels}, OD_PARAM_INIT_ONES, 0);
    snprintf(full, sizeof full, "%s.bias", name);
    unit->beta = tensor(b, full, 1, (const int64_t[]){channels}, OD_PARAM_INIT_ZEROS, 0);
    unit->out = buffer(b, rows * channels);
    unit->mean = buffer(b, rows);
    unit->rstd = buffer(b, rows);
}

static void layernorm_release(layernorm_unit *unit)
{
    od_free(unit->out);
    od_free(unit->mean);
    od_free(unit->rstd);
}

/* MultiheadAttention's own initialisation is Xavier-uniform for
 * in_proj_weight and zero biases. The parameter set has no Xavier rule, so
 * in_proj_weight takes the Linear default, whose bound 1 / sqrt(M) is 0.82
 * times Xavier's sqrt(6 / 4M). */
static void block_init(builder *b, matcher_block *blk, int index, const od_matcher_config *c,
                       int64_t rows)
{
    const int64_t m = c->channels;
    char name[64]; /* short, so that linear_init's "<name>.weight" fits OD_PARAM_NAME_SIZE */
    blk->has_attention = c->variant != OD_MODEL_VARIANT_A;
    if (blk->has_attention) {
        snprintf(name, sizeof name, "blocks.%d.norm1", index);
        layernorm_init(b, &blk->norm1, name, rows, m);
        snprintf(name, sizeof name, "blocks.%d.attn.in_proj_weight", index);
        blk->in_proj_weight = tensor(b, name, 2, (const int64_t[]){3 * m, m}, OD_PARAM_INIT_KAIMING_UNIFORM, 0);
        snprintf(name, sizeof name, "blocks.%d.attn.in_proj_bias", index);
        blk->in_proj_bias = tensor(b, name, 1, (const int64_t[]){3 * m}, OD_PARAM_INIT_ZEROS, 0);
        snprintf(name, sizeof name, "blocks.%d.attn.out_proj.weight", index);
        blk->out_proj_weight = tensor(b, name, 2, (const int64_t[]){m, m}, OD_PARAM_INIT_KAIMING_UNIFORM, 0);
        snprintf(name, sizeof name, "blocks.%d.attn.out_proj.bias", index);
        blk->out_proj_bias = tensor(b, name, 1, (const int64_t[]){m}, OD_PARAM_INIT_ZEROS, 0);
        blk->middle_storage = buffer(b, rows * m);
    }
    snprintf(name, sizeof name, "blocks.%d.norm2", index);
    layernorm_init(b, &blk->norm2, name, rows, m);
    snprintf(name, sizeof name, "blocks.%d.ff.0", index);
    linear_init(b, name, m, 4 * m, &blk->ff0_weight, &blk->ff0_bias);
    snprintf(name, sizeof name, "blocks.%d.ff.2", index);
    linear_init(b, name, 2 * m, m, &blk->ff2_weight, &blk->ff2_bias);
    blk->input = buffer(b, rows * m);
    blk->hidden = buffer(b, rows * 4 * m);
    blk->gated = buffer(b, rows * 2 * m);
}

static void block_release(matcher_block *blk)
{
    layernorm_release(&blk->norm1);
    layernorm_release(&blk->norm2);
    od_mha_saved_release(&blk->saved);
    od_free(blk->middle_storage);
    od_free(blk->input);
    od_free(blk->hidden);
    od_free(blk->gated);
}

/* Conv3d(M, M, 3, stride 2, padding 1) with bias, registered as "<name>.weight" and "<name>.bias". */
static void conv_init(builder *b, conv_layer *layer, const char *name, int64_t channels, int64_t in_size)
{
    char full[OD_PARAM_NAME_SIZE];
    const int64_t out_size = (in_size - 1) / 2 + 1;
    layer->in_cells = in_size * in_size * in_size;
    layer->out_cells = out_size * out_size * out_size;
    snprintf(full, sizeof full, "%s.weight", name);
    layer->weight = tensor(b, full, 5, (const int64_t[]){channels, channels, 3, 3, 3},
                           OD_PARAM_INIT_KAIMING_UNIFORM, 0);
    snprintf(full, sizeof full, "%s.bias", name);
    layer->bias = tensor(b, full, 1, (const int64_t[]){channels}, OD_PARAM_INIT_BIAS, channels * 27);
    if (b->failed)
        return;
    od_conv3d_config config = {
        .batch = 1, .in_channels = channels, .out_channels = channels,
        .in_size = {in_size, in_size, in_size}, .kernel = {3, 3, 3}, .stride = {2, 2, 2},
        .padding = {1, 1, 1}, .dilation = {1, 1, 1}, .groups = 1, .bias = 1,
        .input_grad_mode = OD_CONV_GRAD_OVERWRITE,
    };
    layer->conv = od_conv3d_new(&config, b->err);
    b->failed = layer->conv == NULL;
}

static int validate_config(const od_matcher_config *c, od_error *err)
{
    if (c->variant != OD_MODEL_VARIANT_FULL && c->variant != OD_MODEL_VARIANT_A &&
        c->variant != OD_MODEL_VARIANT_B && c->variant != OD_MODEL_VARIANT_C)
        return od_fail(err, "matcher: variant %d, expected full, A, B or C", (int)c->variant);
    if (c->trunk_channels < 0 || c->trunk_channels > 4096)
        return od_fail(err, "matcher: trunk channels %lld, expected 0 to 4096", (long long)c->trunk_channels);
    if (c->teacher_channels < 1 || c->teacher_channels > 4096)
        return od_fail(err, "matcher: teacher channels %lld, expected 1 to 4096",
                       (long long)c->teacher_channels);
    if (c->cells < 1 || c->cells > 32)
        return od_fail(err, "matcher: crop cells %lld, expected 1 to 32", (long long)c->cells);
    if (c->channels < 1 || c->channels > 4096)
        return od_fail(err, "matcher: channels %lld, expected 1 to 4096", (long long)c->channels);
    if (c->heads < 1 || c->channels % c->heads != 0)
        return od_fail(err, "matcher: %lld heads do not divide %lld channels", (long long)c->heads,
                       (long long)c->channels);
    if (c->blocks < 0 || c->blocks > 64)
        return od_fail(err, "matcher: %lld blocks, expected 0 to 64", (long long)c->blocks);
    if (c->max_objects < 1 || c->max_objects > 256)
        return od_fail(err, "matcher: max_objects %lld, expected 1 to 256", (long long)c->max_objects);
    if (c->variant == OD_MODEL_VARIANT_FULL && (c->top_k < 1 || c->top_k > 4096))
        return od_fail(err, "matcher: top_k %lld, expected 1 to 4096", (long long)c->top_k);
    const int64_t tokens = c->cells * c->cells * c->cells;
    const int64_t rows = c->max_objects * tokens;
    if (c->variant == OD_MODEL_VARIANT_FULL && (double)rows * (double)(c->max_objects - 1) * (double)c->top_k >
                                                   (double)INT32_MAX)
        return od_fail(err, "matcher: key lists of %lld objects x %lld tokens x %lld keys per object are too large; "
                            "lower max_objects or top_k",
                       (long long)c->max_objects, (long long)tokens, (long long)c->top_k);
    return 0;
}

od_matcher_config od_matcher_config_from_model(const od_model_config *model, int64_t encoder_channels)
{
    od_matcher_config c;
    memset(&c, 0, sizeof c);
    c.variant = model->variant;
    c.trunk_channels = model->channels[0] + (model->crop_lifted ? encoder_channels : 0);
    c.teacher_channels = model->teacher_channels;
    c.cells = model->crop_cells;
    c.channels = model->matcher_channels;
    c.heads = model->matcher_heads;
    c.blocks = model->matcher_blocks;
    c.top_k = model->top_k;
    c.max_objects = OD_MATCHER_DEFAULT_MAX_OBJECTS;
    return c;
}

od_matcher *od_matcher_new(const od_matcher_config *config, od_params *params, const char *prefix,
                           od_error *err)
{
    if (config == NULL || params == NULL)
        return od_fail(err, "matcher: configuration and parameter set must not be NULL"), NULL;
    if (validate_config(config, err) != 0)
        return NULL;
    od_matcher *mt = calloc(1, sizeof *mt);
    if (mt == NULL)
        return od_fail(err, "matcher: out of memory"), NULL;
    const od_matcher_config *c = &mt->config;
    mt->config = *config;
    const int64_t n = c->cells, m = c->channels;
    mt->tokens = n * n * n;
    mt->in_features = c->trunk_channels + c->teacher_channels + 3;
    mt->max_rows = c->max_objects * mt->tokens;
    if (c->variant == OD_MODEL_VARIANT_A)
        mt->max_keys = 0;
    else
        mt->max_keys = (c->max_objects - 1) * (c->variant == OD_MODEL_VARIANT_FULL ? c->top_k : mt->tokens);
    const int64_t size1 = (n - 1) / 2 + 1, size2 = (size1 - 1) / 2 + 1;
    mt->flat = size2 * size2 * size2 * m;

    builder b = {.params = params, .prefix = prefix != NULL ? prefix : "", .err = err};
    const int64_t rows = mt->max_rows;
    linear_init(&b, "embed", mt->in_features, m, &mt->embed_weight, &mt->embed_bias);
    mt->blocks = b.failed ? NULL : calloc((size_t)(c->blocks > 0 ? c->blocks : 1), sizeof *mt->blocks);
    if (!b.failed && mt->blocks == NULL) {
        b.failed = 1;
        od_fail(err, "matcher: out of memory");
    }
    for (int64_t i = 0; i < c->blocks && !b.failed; i++)
        block_init(&b, &mt->blocks[i], (int)i, c, rows);
    layernorm_init(&b, &mt->norm, "norm", rows, m);
    conv_init(&b, &mt->conv1, "classifier.0", m, n);
    conv_init(&b, &mt->conv2, "classifier.2", m, size1);
    linear_init(&b, "classifier.5", mt->flat, m, &mt->linear1_weight, &mt->linear1_bias);
    linear_init(&b, "classifier.7", m, 1, &mt->linear2_weight, &mt->linear2_bias);

    const int64_t objects = c->max_objects;
    mt->embed_input = buffer(&b, rows * mt->in_features);
    mt->stream = buffer(&b, rows * m);
    mt->attention_out = buffer(&b, rows * m);
    mt->ff_out = buffer(&b, rows * m);
    mt->masked = buffer(&b, rows * m);
    mt->conv1_out = buffer(&b, objects * mt->conv1.out_cells * m);
    mt->conv2_out = buffer(&b, objects * mt->conv2.out_cells * m);
    mt->flat_in = buffer(&b, objects * mt->flat);
    mt->linear1_out = buffer(&b, objects * m);
    if (c->variant == OD_MODEL_VARIANT_B || c->variant == OD_MODEL_VARIANT_C) {
        mt->others = buffer(&b, rows * (objects - 1) * m);
        mt->d_others = buffer(&b, rows * (objects - 1) * m);
    }
    if (c->variant == OD_MODEL_VARIANT_FULL) {
        mt->unit_teacher = buffer(&b, rows * c->teacher_channels);
        mt->candidate_units = buffer(&b, rows * c->teacher_channels);
        mt->similarity = buffer(&b, mt->tokens * mt->tokens);
        mt->top_similarity = buffer(&b, rows * (c->top_k > 0 ? c->top_k : 1));
        mt->occupied = buffer_bytes(&b, (size_t)rows * sizeof(int32_t));
        mt->occupied_count = buffer_bytes(&b, (size_t)objects * sizeof(int64_t));
        mt->key_index = buffer_bytes(&b, (size_t)rows * (size_t)mt->max_keys * sizeof(int32_t));
    }
    mt->d_stream = buffer(&b, rows * m);
    mt->d_normed = buffer(&b, rows * m);
    mt->d_hidden = buffer(&b, rows * 4 * m);
    mt->d_gated = buffer(&b, rows * 2 * m);
    mt->d_embed_input = buffer(&b, rows * mt->in_features);
    mt->d_masked = buffer(&b, rows * m);
    mt->d_conv1 = buffer(&b, objects * mt->conv1.out_cells * m);
    mt->d_conv2 = buffer(&b, objects * mt->conv2.out_cells * m);
    mt->d_flat = buffer(&b, objects * mt->flat);
    mt->d_linear1 = buffer(&b, objects * m);
    if (b.failed) {
        od_matcher_free(mt);
        return NULL;
    }
    return mt;
}

void od_matcher_free(od_matcher *mt)
{
    if (mt == NULL)
        return;
    if (mt->blocks != NULL)
        for (int64_t i = 0; i < mt->config.blocks; i++)
            block_release(&mt->blocks[i]);
    free(mt->blocks);
    layernorm_release(&mt->norm);
    od_conv3d_free(mt->conv1.conv);
    od_conv3d_free(mt->conv2.conv);
    void *owned[] = {mt->embed_input, mt->stream, mt->attention_out, mt->ff_out, mt->masked, mt->others,
                     mt->d_others,
                     mt->conv1_out, mt->conv2_out, mt->flat_in, mt->linear1_out, mt->unit_teacher,
                     mt->candidate_units, mt->similarity,
                     mt->top_similarity, mt->occupied, mt->occupied_count, mt->key_index,
                     mt->d_stream, mt->d_normed, mt->d_hidden, mt->d_gated, mt->d_embed_input,
                     mt->d_masked, mt->d_conv1, mt->d_conv2, mt->d_flat, mt->d_linear1};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        od_free(owned[i]);
    free(mt);
}

/* ---- key lists -------------------------------------------------------------- */

/* Scales each token's teacher slice to unit norm (norm clamped to eps),
 * lists every object's candidate cells (the occupied ones, or all when none
 * is) and copies their unit vectors into candidate_units. */
static void prepare_similarity(od_matcher *mt, const float *crops, const float *mask, int64_t objects)
{
    const int64_t tokens = mt->tokens, k = mt->config.teacher_channels;
    const int64_t cin = mt->in_features - 3, offset = mt->config.trunk_channels;
    const int64_t rows = objects * tokens;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *teacher = crops + r * cin + offset;
        double squares = 0.0;
        for (int64_t c = 0; c < k; c++)
            squares += (double)teacher[c] * (double)teacher[c];
        double norm = sqrt(squares);
        const float scale = (float)(1.0 / (norm > OD_MATCHER_COSINE_EPS ? norm : OD_MATCHER_COSINE_EPS));
        float *unit = mt->unit_teacher + r * k;
        for (int64_t c = 0; c < k; c++)
            unit[c] = teacher[c] * scale;
    }
    for (int64_t o = 0; o < objects; o++) {
        int32_t *list = mt->occupied + o * tokens;
        int64_t count = 0;
        for (int64_t t = 0; t < tokens; t++)
            if (mask[o * tokens + t] > 0.5f)
                list[count++] = (int32_t)t;
        if (count == 0) /* no occupied cell: every cell is a candidate */
            for (int64_t t = 0; t < tokens; t++)
                list[count++] = (int32_t)t;
        mt->occupied_count[o] = count;
        for (int64_t i = 0; i < count; i++)
            memcpy(mt->candidate_units + (o * tokens + i) * k, mt->unit_teacher + (o * tokens + list[i]) * k,
                   (size_t)k * sizeof(float));
    }
}

/* Fills keys[0, top_k) for one query and one other object j: j's
 * candidate cells sorted by similarity, highest first, ties to the lower
 * cell index, repeated cyclically when j has fewer than top_k candidates.
 * Candidates arrive in ascending cell order, and a new one replaces the
 * worst kept only when strictly more similar, which keeps the lower index
 * among equals. */
static void select_top_k(int32_t *keys, float *similarity, const float *scores, const od_matcher *mt,
                         int64_t j)
{
    const int64_t top_k = mt->config.top_k, tokens = mt->tokens;
    const int32_t *candidates = mt->occupied + j * tokens;
    const int64_t count = mt->occupied_count[j];
    const int64_t keep = count < top_k ? count : top_k;
    int64_t kept = 0;
    for (int64_t i = 0; i < count; i++) {
        const int64_t token = j * tokens + candidates[i];
        const float s = scores[i];
        if (kept == keep && !(s > similarity[kept - 1]))
            continue;
        int64_t at = kept < keep ? kept++ : keep - 1;
        while (at > 0 && s > similarity[at - 1]) {
            similarity[at] = similarity[at - 1];
            keys[at] = keys[at - 1];
            at--;
        }
        similarity[at] = s;
        keys[at] = (int32_t)token;
    }
    for (int64_t slot = keep; slot < top_k; slot++)
        keys[slot] = keys[slot % keep];
}

/* Writes the top-k key list of every query token for this call's objects. */
static void build_key_lists(od_matcher *mt, const float *crops, const float *mask, int64_t objects)
{
    const int64_t tokens = mt->tokens;
    prepare_similarity(mt, crops, mask, objects);
    const int64_t k = mt->config.teacher_channels, top_k = mt->config.top_k;
    for (int64_t o = 0; o < objects; o++)
        for (int64_t j = 0; j < objects; j++) {
            if (j == o)
                continue;
            /* similarity (T, count_j) = unit_o (T, k) candidate_units_j^T */
            const int64_t count = mt->occupied_count[j];
            od_sgemm('N', 'T', tokens, count, k, 1.0f, mt->unit_teacher + o * tokens * k, k,
                     mt->candidate_units + j * tokens * k, k, 0.0f, mt->similarity, count);
            const int64_t slot = (j < o ? j : j - 1) * top_k;
#pragma omp parallel for schedule(static)
            for (int64_t t = 0; t < tokens; t++) {
                const int64_t r = o * tokens + t;
                select_top_k(mt->key_index + r * mt->keys + slot, mt->top_similarity + r * top_k,
                             mt->similarity + t * count, mt, j);
            }
        }
}

int64_t od_matcher_keys_per_query(const od_matcher *mt)
{
    return mt->attention_used ? mt->keys : 0;
}

const int32_t *od_matcher_key_list(const od_matcher *mt, int64_t object, int64_t token)
{
    if (!mt->attention_used || mt->key_index == NULL || object < 0 || object >= mt->objects || token < 0 || token >= mt->tokens)
        return NULL;
    return mt->key_index + (object * mt->tokens + token) * mt->keys;
}

/* ---- forward ---------------------------------------------------------------- */

static od_mha_params mha_values(const matcher_block *blk)
{
    return (od_mha_params){blk->in_proj_weight->value, blk->in_proj_bias->value,
                           blk->out_proj_weight->value, blk->out_proj_bias->value};
}

static od_mha_params mha_grads(const matcher_block *blk)
{
    return (od_mha_params){blk->in_proj_weight->grad, blk->in_proj_bias->grad,
                           blk->out_proj_weight->grad, blk->out_proj_bias->grad};
}

/* Builds the embedding's input: crop channels, then the cell's z, y, x coordinates. */
static void fill_embed_input(od_matcher *mt, const float *crops, int64_t rows)
{
    const int64_t n = mt->config.cells, tokens = mt->tokens;
    const int64_t cin = mt->in_features - 3;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *row = mt->embed_input + r * mt->in_features;
        memcpy(row, crops + r * cin, (size_t)cin * sizeof(float));
        const int64_t t = r % tokens;
        const int64_t index[3] = {t / (n * n), (t / n) % n, t % n};
        for (int axis = 0; axis < 3; axis++)
            row[cin + axis] = (float)(((double)index[axis] + 0.5) / (double)n - 0.5);
    }
}

/* Sizes the block's saved attention activations for `objects` objects.
 * They grow to the largest count seen, because for plain attention they
 * scale with the square of the object count (about 1.1 GB per block at
 * M = 64, n = 8 and 12 objects), too much to reserve for max_objects. */
static int saved_reserve(od_matcher *mt, matcher_block *blk, int64_t objects, od_error *err)
{
    if (blk->saved_objects >= objects)
        return 0;
    const int64_t tokens = mt->tokens, m = mt->config.channels, heads = mt->config.heads;
    od_mha_saved_release(&blk->saved);
    blk->saved_objects = 0;
    int failed;
    if (mt->config.variant == OD_MODEL_VARIANT_FULL)
        failed = od_mha_saved_alloc(&blk->saved, 1, objects * tokens, objects * tokens, m, heads,
                                    (objects - 1) * mt->config.top_k, err);
    else
        failed = od_mha_saved_alloc(&blk->saved, objects, tokens, (objects - 1) * tokens, m, heads, 0, err);
    if (failed != 0)
        return od_fail_context(err, "matcher: attention for %lld objects", (long long)objects);
    blk->saved_objects = objects;
    return 0;
}

/* Copies, for each object o, the tokens of every other object in order
 * into others[o], the keys and values of o's plain attention. */
static void gather_others(od_matcher *mt, const float *tokens_in, int64_t objects)
{
    const int64_t block = mt->tokens * mt->config.channels;
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < objects; o++) {
        float *row = mt->others + o * (objects - 1) * block;
        for (int64_t j = 0, slot = 0; j < objects; j++)
            if (j != o)
                memcpy(row + (slot++) * block, tokens_in + j * block, (size_t)block * sizeof(float));
    }
}

/* Adds the gradient of others back to the tokens it was copied from. Each
 * destination sums its O - 1 copies in object order, so the result does
 * not depend on the thread count. */
static void scatter_others(float *d_tokens, const od_matcher *mt, int64_t objects)
{
    const int64_t block = mt->tokens * mt->config.channels;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < objects; j++)
        for (int64_t o = 0; o < objects; o++) {
            if (o == j)
                continue;
            const int64_t slot = j < o ? j : j - 1;
            const float *source = mt->d_others + (o * (objects - 1) + slot) * block;
            float *target = d_tokens + j * block;
            for (int64_t i = 0; i < block; i++)
                target[i] += source[i];
        }
}

/* attention_out = Attn(norm1.out): sparse over the top-k key lists (full)
 * or dense over the other objects' tokens, batched by object (B, C). */
static int attention_forward(od_matcher *mt, matcher_block *blk, int64_t objects, od_error *err)
{
    if (saved_reserve(mt, blk, objects, err) != 0)
        return -1;
    const int64_t tokens = mt->tokens, m = mt->config.channels, heads = mt->config.heads;
    const od_mha_params params = mha_values(blk);
    const float *x = blk->norm1.out;
    int failed;
    if (mt->config.variant == OD_MODEL_VARIANT_FULL) {
        failed = od_mha_forward(mt->attention_out, &blk->saved, x, x, x, mt->key_index, &params, 1,
                                objects * tokens, objects * tokens, m, heads, mt->keys, err);
    } else {
        gather_others(mt, x, objects);
        failed = od_mha_forward(mt->attention_out, &blk->saved, x, mt->others, mt->others, NULL, &params,
                                objects, tokens, (objects - 1) * tokens, m, heads, 0, err);
    }
    return failed != 0 ? od_fail_context(err, "matcher: attention") : 0;
}

/* d_normed = gradient of the attention's input, from d_out; accumulates the weight gradients. */
static int attention_backward(od_matcher *mt, matcher_block *blk, const float *d_out, int64_t objects,
                              od_error *err)
{
    const int64_t tokens = mt->tokens, m = mt->config.channels, heads = mt->config.heads;
    od_mha_params grads = mha_grads(blk);
    const od_mha_params params = mha_values(blk);
    const float *x = blk->norm1.out;
    zero_floats(mt->d_normed, objects * tokens * m);
    int failed;
    if (mt->config.variant == OD_MODEL_VARIANT_FULL) {
        failed = od_mha_backward(mt->d_normed, mt->d_normed, mt->d_normed, &grads, d_out, &blk->saved, x, x, x,
                                 mt->key_index, &params, 1, objects * tokens, objects * tokens, m, heads,
                                 mt->keys, err);
    } else {
        /* key and value are one buffer, so their gradients may share one too */
        const int64_t keys = (objects - 1) * tokens;
        gather_others(mt, x, objects);
        zero_floats(mt->d_others, objects * keys * m);
        failed = od_mha_backward(mt->d_normed, mt->d_others, mt->d_others, &grads, d_out, &blk->saved, x,
                                 mt->others, mt->others, NULL, &params, objects, tokens, keys, m, heads, 0, err);
        if (failed == 0)
            scatter_others(mt->d_normed, mt, objects);
    }
    return failed != 0 ? od_fail_context(err, "matcher: attention backward") : 0;
}

static int block_forward(od_matcher *mt, matcher_block *blk, float *x, int64_t rows, od_error *err)
{
    const int64_t m = mt->config.channels, count = rows * m;
    const float eps = OD_MATCHER_LAYERNORM_EPS;
    memcpy(blk->input, x, (size_t)count * sizeof(float));
    blk->middle = blk->input;
    if (mt->attention_used) {
        od_layernorm_forward(blk->norm1.out, blk->norm1.mean, blk->norm1.rstd, x, blk->norm1.gamma->value,
                             blk->norm1.beta->value, rows, m, eps);
        if (attention_forward(mt, blk, rows / mt->tokens, err) != 0)
            return -1;
        add_floats(x, mt->attention_out, count);
        memcpy(blk->middle_storage, x, (size_t)count * sizeof(float));
        blk->middle = blk->middle_storage;
    }
    od_layernorm_forward(blk->norm2.out, blk->norm2.mean, blk->norm2.rstd, x, blk->norm2.gamma->value,
                         blk->norm2.beta->value, rows, m, eps);
    od_linear_forward(blk->hidden, blk->norm2.out, blk->ff0_weight->value, blk->ff0_bias->value, rows, m, 4 * m);
    od_geglu_forward(blk->gated, blk->hidden, rows, 2 * m);
    od_linear_forward(mt->ff_out, blk->gated, blk->ff2_weight->value, blk->ff2_bias->value, rows, 2 * m, m);
    add_floats(x, mt->ff_out, count);
    return 0;
}

/* Conv3d, ReLU, Conv3d, ReLU, flatten, Linear, ReLU, Linear on the masked tokens. */
static int classifier_forward(od_matcher *mt, int64_t objects, float *logits, od_error *err)
{
    const int64_t m = mt->config.channels;
    const int64_t cells1 = mt->conv1.out_cells, cells2 = mt->conv2.out_cells;
    for (int64_t o = 0; o < objects; o++) {
        float *out1 = mt->conv1_out + o * cells1 * m;
        float *out2 = mt->conv2_out + o * cells2 * m;
        if (od_conv3d_forward(mt->conv1.conv, out1, mt->masked + o * mt->tokens * m, mt->conv1.weight->value,
                              mt->conv1.bias->value, err) != 0)
            return od_fail_context(err, "matcher: classifier.0");
        od_relu_forward(out1, out1, cells1 * m);
        if (od_conv3d_forward(mt->conv2.conv, out2, out1, mt->conv2.weight->value, mt->conv2.bias->value,
                              err) != 0)
            return od_fail_context(err, "matcher: classifier.2");
        od_relu_forward(out2, out2, cells2 * m);
        /* (cells, M) channels-last to PyTorch's (M, cells) flatten order */
        float *flat = mt->flat_in + o * mt->flat;
        for (int64_t cell = 0; cell < cells2; cell++)
            for (int64_t c = 0; c < m; c++)
                flat[c * cells2 + cell] = out2[cell * m + c];
    }
    od_linear_forward(mt->linear1_out, mt->flat_in, mt->linear1_weight->value, mt->linear1_bias->value, objects,
                      mt->flat, m);
    od_relu_forward(mt->linear1_out, mt->linear1_out, objects * m);
    od_linear_forward(logits, mt->linear1_out, mt->linear2_weight->value, mt->linear2_bias->value, objects, m, 1);
    return 0;
}

int od_matcher_forward(od_matcher *mt, const float *crops, const float *mask, int64_t objects, int training,
                       float *logits, od_error *err)
{
    if (mt == NULL || crops == NULL || mask == NULL || logits == NULL)
        return od_fail(err, "matcher: forward needs a matcher, crops, mask and logits, got a NULL pointer");
    mt->trained = 0;
    if (objects < 1 || objects > mt->config.max_objects)
        return od_fail(err, "matcher: %lld objects, expected 1 to %lld (max_objects of the matcher's configuration)",
                       (long long)objects, (long long)mt->config.max_objects);
    const int64_t m = mt->config.channels, rows = objects * mt->tokens;
    mt->objects = objects;
    mt->mask = mask;
    mt->attention_used = mt->config.variant != OD_MODEL_VARIANT_A && objects > 1 && mt->config.blocks > 0;
    mt->keys = 0;
    if (mt->attention_used && mt->config.variant == OD_MODEL_VARIANT_FULL) {
        mt->keys = (objects - 1) * mt->config.top_k;
        build_key_lists(mt, crops, mask, objects);
    } else if (mt->attention_used) {
        mt->keys = (objects - 1) * mt->tokens;
    }

    fill_embed_input(mt, crops, rows);
    od_linear_forward(mt->stream, mt->embed_input, mt->embed_weight->value, mt->embed_bias->value, rows,
                      mt->in_features, m);
    for (int64_t i = 0; i < mt->config.blocks; i++)
        if (block_forward(mt, &mt->blocks[i], mt->stream, rows, err) != 0)
            return od_fail_context(err, "block %lld", (long long)i);

    od_layernorm_forward(mt->norm.out, mt->norm.mean, mt->norm.rstd, mt->stream, mt->norm.gamma->value,
                         mt->norm.beta->value, rows, m, OD_MATCHER_LAYERNORM_EPS);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < m; c++)
            mt->masked[r * m + c] = mt->norm.out[r * m + c] * mask[r];
    if (classifier_forward(mt, objects, logits, err) != 0)
        return -1;
    mt->trained = training != 0;
    return 0;
}

/* ---- backward --------------------------------------------------------------- */

static int classifier_backward(od_matcher *mt, const float *d_logits, od_error *err)
{
    const int64_t m = mt->config.channels, objects = mt->objects;
    const int64_t cells1 = mt->conv1.out_cells, cells2 = mt->conv2.out_cells;
    zero_floats(mt->d_linear1, objects * m);
    od_linear_backward(mt->d_linear1, mt->linear2_weight->grad, mt->linear2_bias->grad, d_logits, mt->linear1_out,
                       mt->linear2_weight->value, objects, m, 1);
    relu_backward_in_place(mt->d_linear1, mt->linear1_out, objects * m);
    zero_floats(mt->d_flat, objects * mt->flat);
    od_linear_backward(mt->d_flat, mt->linear1_weight->grad, mt->linear1_bias->grad, mt->d_linear1, mt->flat_in,
                       mt->linear1_weight->value, objects, mt->flat, m);
    for (int64_t o = 0; o < objects; o++) {
        const float *d_flat = mt->d_flat + o * mt->flat;
        float *d2 = mt->d_conv2 + o * cells2 * m, *d1 = mt->d_conv1 + o * cells1 * m;
        const float *out2 = mt->conv2_out + o * cells2 * m, *out1 = mt->conv1_out + o * cells1 * m;
        for (int64_t cell = 0; cell < cells2; cell++)
            for (int64_t c = 0; c < m; c++)
                d2[cell * m + c] = out2[cell * m + c] > 0.0f ? d_flat[c * cells2 + cell] : 0.0f;
        if (od_conv3d_backward(mt->conv2.conv, d1, mt->conv2.weight->grad, mt->conv2.bias->grad, d2, out1,
                               mt->conv2.weight->value, err) != 0)
            return od_fail_context(err, "matcher: classifier.2 backward");
        relu_backward_in_place(d1, out1, cells1 * m);
        if (od_conv3d_backward(mt->conv1.conv, mt->d_masked + o * mt->tokens * m, mt->conv1.weight->grad,
                               mt->conv1.bias->grad, d1, mt->masked + o * mt->tokens * m, mt->conv1.weight->value,
                               err) != 0)
            return od_fail_context(err, "matcher: classifier.0 backward");
    }
    return 0;
}

/* d_stream is the gradient at the block's output on entry and at its input on return. */
static int block_backward(od_matcher *mt, matcher_block *blk, int64_t rows, od_error *err)
{
    const int64_t m = mt->config.channels, count = rows * m;
    float *d_x = mt->d_stream;

    zero_floats(mt->d_gated, rows * 2 * m);
    od_linear_backward(mt->d_gated, blk->ff2_weight->grad, blk->ff2_bias->grad, d_x, blk->gated,
                       blk->ff2_weight->value, rows, 2 * m, m);
    zero_floats(mt->d_hidden, rows * 4 * m);
    od_geglu_backward(mt->d_hidden, mt->d_gated, blk->hidden, rows, 2 * m);
    zero_floats(mt->d_normed, count);
    od_linear_backward(mt->d_normed, blk->ff0_weight->grad, blk->ff0_bias->grad, mt->d_hidden, blk->norm2.out,
                       blk->ff0_weight->value, rows, m, 4 * m);
    od_layernorm_backward(d_x, blk->norm2.gamma->grad, blk->norm2.beta->grad, mt->d_normed, blk->middle,
                          blk->norm2.mean, blk->norm2.rstd, blk->norm2.gamma->value, rows, m);

    if (mt->attention_used) {
        if (attention_backward(mt, blk, d_x, rows / mt->tokens, err) != 0)
            return -1;
        od_layernorm_backward(d_x, blk->norm1.gamma->grad, blk->norm1.beta->grad, mt->d_normed, blk->input,
                              blk->norm1.mean, blk->norm1.rstd, blk->norm1.gamma->value, rows, m);
    }
    return 0;
}

int od_matcher_backward(od_matcher *mt, const float *d_logits, float *d_crops, od_error *err)
{
    if (mt == NULL || d_logits == NULL)
        return od_fail(err, "matcher: backward needs a matcher and d_logits, got a NULL pointer");
    if (!mt->trained)
        return od_fail(err, "matcher: backward without a training forward before it");
    const int64_t m = mt->config.channels, rows = mt->objects * mt->tokens;
    if (classifier_backward(mt, d_logits, err) != 0)
        return -1;

    /* masked = LayerNorm(stream) * mask */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < m; c++)
            mt->d_masked[r * m + c] *= mt->mask[r];
    zero_floats(mt->d_stream, rows * m);
    /* stream still holds the last block's output, the final LayerNorm's input */
    od_layernorm_backward(mt->d_stream, mt->norm.gamma->grad, mt->norm.beta->grad, mt->d_masked, mt->stream,
                          mt->norm.mean, mt->norm.rstd, mt->norm.gamma->value, rows, m);
    for (int64_t i = mt->config.blocks - 1; i >= 0; i--)
        if (block_backward(mt, &mt->blocks[i], rows, err) != 0)
            return od_fail_context(err, "block %lld", (long long)i);

    const int64_t features = mt->in_features, cin = features - 3;
    if (d_crops == NULL) {
        od_linear_backward(NULL, mt->embed_weight->grad, mt->embed_bias->grad, mt->d_stream, mt->embed_input,
                           mt->embed_weight->value, rows, features, m);
        return 0;
    }
    zero_floats(mt->d_embed_input, rows * features);
    od_linear_backward(mt->d_embed_input, mt->embed_weight->grad, mt->embed_bias->grad, mt->d_stream,
                       mt->embed_input, mt->embed_weight->value, rows, features, m);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cin; c++)
            d_crops[r * cin + c] += mt->d_embed_input[r * features + c];
    return 0;
}

/* ---- loss ------------------------------------------------------------------- */

int od_matcher_loss(const float *logits, const uint8_t *labels, int64_t objects, double anomaly_weight,
                    double normal_weight, double *loss, float *d_logits, od_error *err)
{
    if (logits == NULL || labels == NULL || loss == NULL || d_logits == NULL)
        return od_fail(err, "matcher loss: logits, labels, loss and d_logits must not be NULL");
    if (objects < 1)
        return od_fail(err, "matcher loss: %lld objects, expected at least 1", (long long)objects);
    if (!(isfinite(anomaly_weight) && anomaly_weight >= 0.0 && isfinite(normal_weight) && normal_weight >= 0.0))
        return od_fail(err, "matcher loss: class weights %g (anomaly) and %g (normal), expected finite and >= 0",
                       anomaly_weight, normal_weight);
    for (int64_t i = 0; i < objects; i++)
        if (labels[i] > 1)
            return od_fail(err, "matcher loss: label %u of object %lld, expected 0 or 1", (unsigned)labels[i],
                           (long long)i);
    double sum = 0.0;
    for (int64_t i = 0; i < objects; i++) {
        const double x = logits[i], t = labels[i];
        const double w = labels[i] ? anomaly_weight : normal_weight;
        sum += w * (fmax(x, 0.0) - x * t + log1p(exp(-fabs(x))));
        const double sigmoid = x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
        d_logits[i] = (float)(w * (sigmoid - t) / (double)objects);
    }
    *loss = sum / (double)objects;
    return 0;
}
