/* Times every convolution shape of the 3D encoder-decoder (bench_encdec.c),
 * forward alone and forward + backward (input, weight and bias gradients),
 * with channels-last activations as the library uses them. Two variants
 * measure design choices and have no PyTorch peer. Cases ending in
 * ".blocked16" run in oneDNN's nCdhw16c layout. Cases ending in
 * ".accumulate" add d_in into the caller's buffer instead of overwriting it.
 *
 * flops count 2 per multiply-add of the full kernel, border taps included
 * (the usual convention); the backward counts twice the forward. oneDNN
 * skips the taps that fall into the zero padding, so GFLOP/s at small
 * sizes can read above the machine's peak. */
#include <string.h>

#include "benchlib.h"
#include "core/mem.h"
#include "nn/conv.h"

typedef struct conv_case {
    const char *name;
    int transposed;
    int64_t in_channels, out_channels;
    int64_t size[3]; /* input D, H, W */
    int64_t kernel, stride, padding;
    int bias;
} conv_case;

/* The shapes of bench_encdec.c, named after channels and input size. */
static const conv_case CASES[] = {
    {"conv3d_stem_32to16_16x64x64", 0, 32, 16, {16, 64, 64}, 3, 1, 1, 0},
    {"conv3d_16to16_16x64x64", 0, 16, 16, {16, 64, 64}, 3, 1, 1, 0},
    {"conv3d_s2_16to32_16x64x64", 0, 16, 32, {16, 64, 64}, 3, 2, 1, 0},
    {"conv3d_32to32_8x32x32", 0, 32, 32, {8, 32, 32}, 3, 1, 1, 0},
    {"conv3d_s2_32to64_8x32x32", 0, 32, 64, {8, 32, 32}, 3, 2, 1, 0},
    {"conv3d_64to64_4x16x16", 0, 64, 64, {4, 16, 16}, 3, 1, 1, 0},
    {"convT3d_64to32_4x16x16", 1, 64, 32, {4, 16, 16}, 2, 2, 0, 1},
    {"convT3d_32to16_8x32x32", 1, 32, 16, {8, 32, 32}, 2, 2, 0, 1},
};

typedef struct bench_state {
    od_conv3d *conv;
    od_conv_transpose3d *transposed;
    float *in, *out, *weight, *bias, *d_in, *d_out, *d_weight, *d_bias;
    int backward;
} bench_state;

static void run_once(void *context)
{
    bench_state *s = context;
    od_error err;
    int rc;
    if (s->conv != NULL) {
        rc = od_conv3d_forward(s->conv, s->out, s->in, s->weight, NULL, &err);
        if (rc == 0 && s->backward)
            rc = od_conv3d_backward(s->conv, s->d_in, s->d_weight, NULL, s->d_out, s->in, s->weight, &err);
    } else {
        rc = od_conv_transpose3d_forward(s->transposed, s->out, s->in, s->weight, s->bias, &err);
        if (rc == 0 && s->backward)
            rc = od_conv_transpose3d_backward(s->transposed, s->d_in, s->d_weight, s->d_bias, s->d_out, s->in,
                                              s->weight, &err);
    }
    if (rc) {
        fprintf(stderr, "bench_conv: %s\n", err.message);
        exit(1);
    }
}

static void fill(float *buffer, int64_t count, float scale)
{
    uint32_t state = 12345u;
    for (int64_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u;
        buffer[i] = scale * ((float)(state >> 8) / 16777216.0f - 0.5f);
    }
}

static void bench_case(const conv_case *c, od_conv_layout layout, od_conv_grad_mode mode, const char *suffix)
{
    od_error err;
    bench_state s;
    memset(&s, 0, sizeof s);
    int64_t out_size[3];
    if (c->transposed) {
        od_conv_transpose3d_config config = {
            .batch = 1, .in_channels = c->in_channels, .out_channels = c->out_channels,
            .in_size = {c->size[0], c->size[1], c->size[2]}, .kernel = {c->kernel, c->kernel, c->kernel},
            .stride = {c->stride, c->stride, c->stride}, .padding = {c->padding, c->padding, c->padding},
            .dilation = {1, 1, 1}, .groups = 1, .bias = c->bias, .input_grad_mode = mode, .layout = layout,
        };
        s.transposed = od_conv_transpose3d_new(&config, &err);
        if (s.transposed == NULL) {
            fprintf(stderr, "bench_conv: %s\n", err.message);
            exit(1);
        }
        od_conv_transpose3d_out_size(s.transposed, out_size);
    } else {
        od_conv3d_config config = {
            .batch = 1, .in_channels = c->in_channels, .out_channels = c->out_channels,
            .in_size = {c->size[0], c->size[1], c->size[2]}, .kernel = {c->kernel, c->kernel, c->kernel},
            .stride = {c->stride, c->stride, c->stride}, .padding = {c->padding, c->padding, c->padding},
            .dilation = {1, 1, 1}, .groups = 1, .bias = c->bias, .input_grad_mode = mode, .layout = layout,
        };
        s.conv = od_conv3d_new(&config, &err);
        if (s.conv == NULL) {
            fprintf(stderr, "bench_conv: %s\n", err.message);
            exit(1);
        }
        od_conv3d_out_size(s.conv, out_size);
    }

    int64_t taps = c->kernel * c->kernel * c->kernel;
    int64_t in_voxels = c->size[0] * c->size[1] * c->size[2];
    int64_t out_voxels = out_size[0] * out_size[1] * out_size[2];
    int64_t in_count = in_voxels * c->in_channels, out_count = out_voxels * c->out_channels;
    int64_t weight_count = c->in_channels * c->out_channels * taps;
    s.in = od_alloc_floats(in_count);
    s.d_in = od_alloc_floats(in_count);
    s.out = od_alloc_floats(out_count);
    s.d_out = od_alloc_floats(out_count);
    s.weight = od_alloc_floats(weight_count);
    s.d_weight = od_alloc_floats(weight_count);
    s.bias = od_alloc_floats(c->out_channels);
    s.d_bias = od_alloc_floats(c->out_channels);
    fill(s.in, in_count, 2.0f);
    fill(s.d_out, out_count, 2.0f);
    fill(s.weight, weight_count, 0.1f);

    /* A transposed convolution's multiply-adds run over its input voxels. */
    double macs = (double)(c->transposed ? in_voxels : out_voxels) * (double)(c->in_channels * c->out_channels * taps);
    char name[160];
    if (mode == OD_CONV_GRAD_OVERWRITE) {
        s.backward = 0;
        snprintf(name, sizeof name, "%s.fwd%s", c->name, suffix);
        bench_report(name, bench_median_ms(run_once, &s, 3, 15), 2.0 * macs);
    }
    s.backward = 1;
    snprintf(name, sizeof name, "%s.fwdbwd%s", c->name, suffix);
    bench_report(name, bench_median_ms(run_once, &s, 3, 15), 6.0 * macs);

    od_conv3d_free(s.conv);
    od_conv_transpose3d_free(s.transposed);
    od_free(s.in);
    od_free(s.d_in);
    od_free(s.out);
    od_free(s.d_out);
    od_free(s.weight);
    od_free(s.d_weight);
    od_free(s.bias);
    od_free(s.d_bias);
}

int main(void)
{
    size_t count = sizeof CASES / sizeof CASES[0];
    for (size_t i = 0; i < count; i++)
        bench_case(&CASES[i], OD_CONV_CHANNELS_LAST, OD_CONV_GRAD_OVERWRITE, "");
    for (size_t i = 0; i < count; i++)
        if (CASES[i].in_channels % 16 == 0 && CASES[i].out_channels % 16 == 0)
            bench_case(&CASES[i], OD_CONV_BLOCKED16, OD_CONV_GRAD_OVERWRITE, ".blocked16");
    for (size_t i = 0; i < count; i++)
        if (CASES[i].stride == 2 && !CASES[i].transposed)
            bench_case(&CASES[i], OD_CONV_CHANNELS_LAST, OD_CONV_GRAD_ACCUMULATE, ".accumulate");
    return 0;
}
