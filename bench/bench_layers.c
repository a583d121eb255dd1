/* Times the layers of src/nn/ (activations, normalization, linear, softmax,
 * average pooling) at the sizes of the default model: volume activations
 * of 16 x 64 x 64 voxels (65536 rows) with 16 and 32 channels, token
 * layers over 7 * 512 = 3584 tokens of width 256, attention softmax over
 * 8 heads x 3584 rows x 120 keys, and a 64 x 64 x 32 pooled map.
 *
 * Each layer prints a "_fwd" line (forward only) and a "_fwdbwd" line
 * (forward then backward). bench/torch_layers.py prints the same names.
 * The backward calls accumulate into the same gradient buffers on every
 * repeat, as a training step that never zeroes them would. */
#include <math.h>
#include <string.h>

#include "benchlib.h"
#include "core/mem.h"
#include "nn/activation.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "nn/pool.h"
#include "nn/softmax.h"

#define WARMUP 3
#define REPEATS 20

#define VOLUME_ROWS 65536 /* 16 x 64 x 64 voxels */
#define TOKENS 3584       /* 7 objects x 512 tokens */
#define TOKEN_WIDTH 256
#define FEED_FORWARD_WIDTH 1024
#define SOFTMAX_ROWS (8 * TOKENS) /* 8 heads */
#define SOFTMAX_KEYS 120
#define NORM_GROUPS 8
#define LEAKY_SLOPE 0.01f
#define EPS 1e-5f

/* One layer call: sizes and every buffer it may touch. */
typedef struct layer_case {
    int64_t rows, channels, out_channels, groups;
    float *in, *out, *d_out, *d_in;
    float *weight, *bias, *d_weight, *d_bias;
    float *gamma, *beta, *d_gamma, *d_beta, *mean, *rstd;
    int64_t pool_size[3]; /* batch, height, width for pooling */
} layer_case;

/* A scratch arena big enough for every case. */
#define ARENA_FLOATS (4 * 1024 * 1024)
static float *arena_in, *arena_out, *arena_d_out, *arena_d_in;

static void fill(float *buffer, int64_t count, float scale, float phase)
{
    for (int64_t i = 0; i < count; i++)
        buffer[i] = scale * sinf((float)i * 0.618f + phase);
}

static layer_case make_case(int64_t rows, int64_t channels, int64_t out_channels)
{
    layer_case lc;
    memset(&lc, 0, sizeof lc);
    lc.rows = rows;
    lc.channels = channels;
    lc.out_channels = out_channels;
    lc.in = arena_in;
    lc.out = arena_out;
    lc.d_out = arena_d_out;
    lc.d_in = arena_d_in;
    const int64_t params = channels > out_channels ? channels : out_channels;
    lc.weight = od_alloc_floats(channels * out_channels);
    lc.d_weight = od_alloc_floats(channels * out_channels);
    lc.bias = od_alloc_floats(params);
    lc.d_bias = od_alloc_floats(params);
    lc.gamma = od_alloc_floats(params);
    lc.beta = od_alloc_floats(params);
    lc.d_gamma = od_alloc_floats(params);
    lc.d_beta = od_alloc_floats(params);
    lc.mean = od_alloc_floats(rows > params ? rows : params);
    lc.rstd = od_alloc_floats(rows > params ? rows : params);
    fill(lc.weight, channels * out_channels, 0.05f, 0.3f);
    fill(lc.bias, params, 0.1f, 0.7f);
    for (int64_t c = 0; c < params; c++)
        lc.gamma[c] = 1.0f + 0.1f * sinf((float)c);
    fill(lc.beta, params, 0.1f, 1.1f);
    return lc;
}

static void free_case(layer_case *lc)
{
    float *owned[] = {lc->weight, lc->d_weight, lc->bias,   lc->d_bias, lc->gamma,
                      lc->beta,   lc->d_gamma,  lc->d_beta, lc->mean,   lc->rstd};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        od_free(owned[i]);
}

/* ---- layer bodies ------------------------------------------------------- */

static void relu_fwd(void *p)
{
    layer_case *c = p;
    od_relu_forward(c->out, c->in, c->rows * c->channels);
}

static void relu_fwdbwd(void *p)
{
    layer_case *c = p;
    od_relu_forward(c->out, c->in, c->rows * c->channels);
    od_relu_backward(c->d_in, c->d_out, c->out, c->rows * c->channels);
}

static void leaky_relu_fwd(void *p)
{
    layer_case *c = p;
    od_leaky_relu_forward(c->out, c->in, c->rows * c->channels, LEAKY_SLOPE);
}

static void leaky_relu_fwdbwd(void *p)
{
    layer_case *c = p;
    od_leaky_relu_forward(c->out, c->in, c->rows * c->channels, LEAKY_SLOPE);
    od_leaky_relu_backward(c->d_in, c->d_out, c->in, c->rows * c->channels, LEAKY_SLOPE);
}

static void gelu_fwd(void *p)
{
    layer_case *c = p;
    od_gelu_forward(c->out, c->in, c->rows * c->channels);
}

static void gelu_fwdbwd(void *p)
{
    layer_case *c = p;
    od_gelu_forward(c->out, c->in, c->rows * c->channels);
    od_gelu_backward(c->d_in, c->d_out, c->in, c->rows * c->channels);
}

static void geglu_fwd(void *p)
{
    layer_case *c = p;
    od_geglu_forward(c->out, c->in, c->rows, c->out_channels);
}

static void geglu_fwdbwd(void *p)
{
    layer_case *c = p;
    od_geglu_forward(c->out, c->in, c->rows, c->out_channels);
    od_geglu_backward(c->d_in, c->d_out, c->in, c->rows, c->out_channels);
}

static void batchnorm_fwd(void *p)
{
    layer_case *c = p;
    od_batchnorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->rows, c->channels,
                         EPS);
}

static void batchnorm_fwdbwd(void *p)
{
    layer_case *c = p;
    od_batchnorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->rows, c->channels,
                         EPS);
    od_batchnorm_backward(c->d_in, c->d_gamma, c->d_beta, c->d_out, c->in, c->mean, c->rstd,
                          c->gamma, c->rows, c->channels);
}

static void groupnorm_fwd(void *p)
{
    layer_case *c = p;
    od_groupnorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, 1, c->rows,
                         c->channels, c->groups, EPS, NULL);
}

static void groupnorm_fwdbwd(void *p)
{
    layer_case *c = p;
    od_groupnorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, 1, c->rows,
                         c->channels, c->groups, EPS, NULL);
    od_groupnorm_backward(c->d_in, c->d_gamma, c->d_beta, c->d_out, c->in, c->mean, c->rstd,
                          c->gamma, 1, c->rows, c->channels, c->groups, NULL);
}

static void layernorm_fwd(void *p)
{
    layer_case *c = p;
    od_layernorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->rows, c->channels,
                         EPS);
}

static void layernorm_fwdbwd(void *p)
{
    layer_case *c = p;
    od_layernorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->rows, c->channels,
                         EPS);
    od_layernorm_backward(c->d_in, c->d_gamma, c->d_beta, c->d_out, c->in, c->mean, c->rstd,
                          c->gamma, c->rows, c->channels);
}

static void linear_fwd(void *p)
{
    layer_case *c = p;
    od_linear_forward(c->out, c->in, c->weight, c->bias, c->rows, c->channels, c->out_channels);
}

static void linear_fwdbwd(void *p)
{
    layer_case *c = p;
    od_linear_forward(c->out, c->in, c->weight, c->bias, c->rows, c->channels, c->out_channels);
    od_linear_backward(c->d_in, c->d_weight, c->d_bias, c->d_out, c->in, c->weight, c->rows,
                       c->channels, c->out_channels);
}

static void softmax_fwd(void *p)
{
    layer_case *c = p;
    od_softmax_forward(c->out, c->in, c->rows, c->channels);
}

static void softmax_fwdbwd(void *p)
{
    layer_case *c = p;
    od_softmax_forward(c->out, c->in, c->rows, c->channels);
    od_softmax_backward(c->d_in, c->d_out, c->out, c->rows, c->channels);
}

static const int64_t pool_kernel[2] = {2, 2}, pool_stride[2] = {2, 2}, pool_padding[2] = {0, 0};

static void avgpool2d_fwd(void *p)
{
    layer_case *c = p;
    od_avgpool2d_forward(c->out, c->in, c->pool_size[0], c->pool_size[1], c->pool_size[2],
                         c->channels, pool_kernel, pool_stride, pool_padding, 1, NULL);
}

static void avgpool2d_fwdbwd(void *p)
{
    layer_case *c = p;
    avgpool2d_fwd(p);
    od_avgpool2d_backward(c->d_in, c->d_out, c->pool_size[0], c->pool_size[1], c->pool_size[2],
                          c->channels, pool_kernel, pool_stride, pool_padding, 1, NULL);
}

/* ---- driver ------------------------------------------------------------- */

static void run(const char *name, void (*fwd)(void *), void (*fwdbwd)(void *), layer_case *lc,
                double fwd_flops)
{
    char label[128];
    snprintf(label, sizeof label, "%s_fwd", name);
    bench_report(label, bench_median_ms(fwd, lc, WARMUP, REPEATS), fwd_flops);
    snprintf(label, sizeof label, "%s_fwdbwd", name);
    bench_report(label, bench_median_ms(fwdbwd, lc, WARMUP, REPEATS), 3.0 * fwd_flops);
}

int main(void)
{
    arena_in = od_alloc_floats(ARENA_FLOATS);
    arena_out = od_alloc_floats(ARENA_FLOATS);
    arena_d_out = od_alloc_floats(ARENA_FLOATS);
    arena_d_in = od_alloc_floats(ARENA_FLOATS);
    if (!arena_in || !arena_out || !arena_d_out || !arena_d_in) {
        fprintf(stderr, "bench_layers: out of memory\n");
        return 1;
    }
    fill(arena_in, ARENA_FLOATS, 2.0f, 0.0f);
    fill(arena_d_out, ARENA_FLOATS, 1.0f, 0.5f);
    char name[96];

    /* volume activations: (1, 16, 64, 64, C) as (65536, C) */
    const int64_t volume_channels[2] = {16, 32};
    for (int k = 0; k < 2; k++) {
        const int64_t channels = volume_channels[k];
        layer_case lc = make_case(VOLUME_ROWS, channels, channels);
        lc.groups = NORM_GROUPS;
        snprintf(name, sizeof name, "relu_%dx%lld", VOLUME_ROWS, (long long)channels);
        run(name, relu_fwd, relu_fwdbwd, &lc, 0);
        snprintf(name, sizeof name, "leaky_relu_%dx%lld", VOLUME_ROWS, (long long)channels);
        run(name, leaky_relu_fwd, leaky_relu_fwdbwd, &lc, 0);
        snprintf(name, sizeof name, "batchnorm_%dx%lld", VOLUME_ROWS, (long long)channels);
        run(name, batchnorm_fwd, batchnorm_fwdbwd, &lc, 0);
        snprintf(name, sizeof name, "groupnorm%d_%dx%lld", NORM_GROUPS, VOLUME_ROWS,
                 (long long)channels);
        run(name, groupnorm_fwd, groupnorm_fwdbwd, &lc, 0);
        free_case(&lc);
    }

    /* token layers: (3584, 256) */
    const int64_t linear_out[2] = {TOKEN_WIDTH, FEED_FORWARD_WIDTH};
    for (int k = 0; k < 2; k++) {
        layer_case lc = make_case(TOKENS, TOKEN_WIDTH, linear_out[k]);
        snprintf(name, sizeof name, "linear_%dx%dto%lld", TOKENS, TOKEN_WIDTH,
                 (long long)linear_out[k]);
        run(name, linear_fwd, linear_fwdbwd, &lc,
            2.0 * TOKENS * TOKEN_WIDTH * (double)linear_out[k]);
        free_case(&lc);
    }
    {
        layer_case lc = make_case(TOKENS, TOKEN_WIDTH, TOKEN_WIDTH);
        snprintf(name, sizeof name, "layernorm_%dx%d", TOKENS, TOKEN_WIDTH);
        run(name, layernorm_fwd, layernorm_fwdbwd, &lc, 0);
        free_case(&lc);
    }
    {
        layer_case lc = make_case(TOKENS, FEED_FORWARD_WIDTH, FEED_FORWARD_WIDTH / 2);
        snprintf(name, sizeof name, "geglu_%dx%dto%d", TOKENS, FEED_FORWARD_WIDTH,
                 FEED_FORWARD_WIDTH / 2);
        run(name, geglu_fwd, geglu_fwdbwd, &lc, 0);
        snprintf(name, sizeof name, "gelu_%dx%d", TOKENS, FEED_FORWARD_WIDTH);
        run(name, gelu_fwd, gelu_fwdbwd, &lc, 0);
        free_case(&lc);
    }
    {
        layer_case lc = make_case(SOFTMAX_ROWS, SOFTMAX_KEYS, SOFTMAX_KEYS);
        snprintf(name, sizeof name, "softmax_%dx%d", SOFTMAX_ROWS, SOFTMAX_KEYS);
        run(name, softmax_fwd, softmax_fwdbwd, &lc, 0);
        free_case(&lc);
    }

    /* pooling: (1, 64, 64, 32), kernel 2, stride 2 */
    {
        layer_case lc = make_case(64 * 64, 32, 32);
        lc.pool_size[0] = 1;
        lc.pool_size[1] = 64;
        lc.pool_size[2] = 64;
        run("avgpool2d_64x64x32_k2", avgpool2d_fwd, avgpool2d_fwdbwd, &lc, 0);
        free_case(&lc);
    }

    od_free(arena_in);
    od_free(arena_out);
    od_free(arena_d_out);
    od_free(arena_d_in);
    return 0;
}
