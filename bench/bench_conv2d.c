/* Times 2D convolutions at the 2D encoder's sizes: MobileNetV2 layers for
 * five 128 x 128 views (the default configuration's image size), forward
 * and forward + backward, channels-last. Depthwise cases have groups equal
 * to the channel count. flops count 2 per multiply-add of the full kernel;
 * the backward counts twice the forward. */
#include <string.h>

#include "benchlib.h"
#include "core/mem.h"
#include "nn/conv.h"

typedef struct conv2d_case {
    const char *name;
    int64_t in_channels, out_channels;
    int64_t size;             /* input H = W */
    int64_t kernel, stride, padding, dilation, groups;
} conv2d_case;

#define VIEWS 5

static const conv2d_case CASES[] = {
    {"conv2d_first_3to32_s2_128", 3, 32, 128, 3, 2, 1, 1, 1},
    {"conv2d_dw_96_s2_64", 96, 96, 64, 3, 2, 1, 1, 96},
    {"conv2d_dw_144_32", 144, 144, 32, 3, 1, 1, 1, 144},
    {"conv2d_pw_144to24_32", 144, 24, 32, 1, 1, 0, 1, 1},
    {"conv2d_pw_96to576_8", 96, 576, 8, 1, 1, 0, 1, 1},
    {"conv2d_dilated_64_32", 64, 64, 32, 3, 1, 2, 2, 1},
};

typedef struct bench_state {
    od_conv2d *conv;
    float *in, *out, *weight, *d_in, *d_out, *d_weight;
    int backward;
} bench_state;

static void run_once(void *context)
{
    bench_state *s = context;
    od_error err;
    int rc = od_conv2d_forward(s->conv, s->out, s->in, s->weight, NULL, &err);
    if (rc == 0 && s->backward)
        rc = od_conv2d_backward(s->conv, s->d_in, s->d_weight, NULL, s->d_out, s->in, s->weight, &err);
    if (rc) {
        fprintf(stderr, "bench_conv2d: %s\n", err.message);
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

static void bench_case(const conv2d_case *c)
{
    od_error err;
    od_conv2d_config config = {
        .batch = VIEWS, .in_channels = c->in_channels, .out_channels = c->out_channels,
        .in_size = {c->size, c->size}, .kernel = {c->kernel, c->kernel}, .stride = {c->stride, c->stride},
        .padding = {c->padding, c->padding}, .dilation = {c->dilation, c->dilation}, .groups = c->groups,
        .bias = 0, .input_grad_mode = OD_CONV_GRAD_OVERWRITE, .layout = OD_CONV_CHANNELS_LAST,
    };
    bench_state s;
    memset(&s, 0, sizeof s);
    s.conv = od_conv2d_new(&config, &err);
    if (s.conv == NULL) {
        fprintf(stderr, "bench_conv2d: %s: %s\n", c->name, err.message);
        exit(1);
    }
    int64_t out_size[2];
    od_conv2d_out_size(s.conv, out_size);

    int64_t in_count = VIEWS * c->size * c->size * c->in_channels;
    int64_t out_pixels = VIEWS * out_size[0] * out_size[1];
    int64_t out_count = out_pixels * c->out_channels;
    int64_t weight_count = c->out_channels * (c->in_channels / c->groups) * c->kernel * c->kernel;
    s.in = od_alloc_floats(in_count);
    s.d_in = od_alloc_floats(in_count);
    s.out = od_alloc_floats(out_count);
    s.d_out = od_alloc_floats(out_count);
    s.weight = od_alloc_floats(weight_count);
    s.d_weight = od_alloc_floats(weight_count);
    fill(s.in, in_count, 2.0f);
    fill(s.d_out, out_count, 2.0f);
    fill(s.weight, weight_count, 0.1f);

    double macs = (double)out_pixels * (double)weight_count;
    char name[160];
    s.backward = 0;
    snprintf(name, sizeof name, "%s.fwd", c->name);
    bench_report(name, bench_median_ms(run_once, &s, 3, 15), 2.0 * macs);
    s.backward = 1;
    snprintf(name, sizeof name, "%s.fwdbwd", c->name);
    bench_report(name, bench_median_ms(run_once, &s, 3, 15), 6.0 * macs);

    od_conv2d_free(s.conv);
    od_free(s.in);
    od_free(s.d_in);
    od_free(s.out);
    od_free(s.d_out);
    od_free(s.weight);
    od_free(s.d_weight);
}

int main(void)
{
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        bench_case(&CASES[i]);
    return 0;
}
