/* Average pooling over channels-last maps and volumes (see pool.h).
 *
 * Both 2D and 3D go through one 3D implementation; a 2D map is a volume of
 * depth 1 pooled with kernel 1 along depth. The forward walks the outputs
 * and sums each window. The backward walks the inputs and gathers every
 * output window that covers them, so no two threads write the same
 * gradient and the summation order is fixed. */
#include "nn/pool.h"

/* Below this many values a loop stays on one thread. */
#define OD_POOL_PARALLEL_MIN 16384
/* Channels summed per pass in a stack accumulator. */
#define OD_POOL_CHANNEL_CHUNK 64

typedef struct pool_geometry {
    int64_t batch, channels;
    int64_t in[3], out[3], kernel[3], stride[3], padding[3];
    int count_include_pad;
} pool_geometry;

int64_t od_pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding)
{
    if (kernel < 1 || stride < 1 || padding < 0 || in + 2 * padding < kernel)
        return -1;
    return (in + 2 * padding - kernel) / stride + 1;
}

/* Fills g from the sizes of `dims` spatial dimensions (2 or 3); a 2D map
 * gets depth 1 with kernel 1. */
static int make_geometry(pool_geometry *g, int dims, int64_t batch, const int64_t *sizes,
                         int64_t channels, const int64_t *kernel, const int64_t *stride,
                         const int64_t *padding, int count_include_pad, const char *name,
                         od_error *err)
{
    static const char *axis_2d[2] = {"height", "width"};
    static const char *axis_3d[3] = {"depth", "height", "width"};
    const char **axis = dims == 2 ? axis_2d : axis_3d;
    const int first = 3 - dims;

    if (batch < 0 || channels <= 0)
        return od_fail(err, "%s: invalid batch = %lld or channels = %lld; expected batch >= 0 "
                            "and channels > 0",
                       name, (long long)batch, (long long)channels);
    g->batch = batch;
    g->channels = channels;
    g->count_include_pad = count_include_pad != 0;
    g->in[0] = g->out[0] = g->kernel[0] = g->stride[0] = 1;
    g->padding[0] = 0;
    for (int i = 0; i < dims; i++) {
        const int d = first + i;
        if (sizes[i] <= 0)
            return od_fail(err, "%s: %s = %lld; expected > 0", name, axis[i], (long long)sizes[i]);
        if (kernel[i] < 1 || stride[i] < 1)
            return od_fail(err, "%s: kernel = %lld and stride = %lld along %s; expected both >= 1",
                           name, (long long)kernel[i], (long long)stride[i], axis[i]);
        if (padding[i] < 0 || padding[i] > kernel[i] / 2)
            return od_fail(err,
                           "%s: padding = %lld along %s; expected between 0 and half the "
                           "kernel (%lld)",
                           name, (long long)padding[i], axis[i], (long long)(kernel[i] / 2));
        const int64_t out = od_pool_output_size(sizes[i], kernel[i], stride[i], padding[i]);
        if (out < 1)
            return od_fail(err, "%s: kernel = %lld does not fit %s = %lld with padding %lld", name,
                           (long long)kernel[i], axis[i], (long long)sizes[i],
                           (long long)padding[i]);
        g->in[d] = sizes[i];
        g->out[d] = out;
        g->kernel[d] = kernel[i];
        g->stride[d] = stride[i];
        g->padding[d] = padding[i];
    }
    return 0;
}

/* Sets [lo, hi) to the input range that output o of dimension d covers,
 * and returns the factor of the window's divisor from this dimension. */
static inline int64_t window(const pool_geometry *g, int d, int64_t o, int64_t *lo, int64_t *hi)
{
    const int64_t start = o * g->stride[d] - g->padding[d];
    const int64_t end = start + g->kernel[d];
    *lo = start > 0 ? start : 0;
    *hi = end < g->in[d] ? end : g->in[d];
    if (!g->count_include_pad)
        return *hi - *lo;
    /* PyTorch clips the padded window at the far padding edge */
    const int64_t padded_end = end < g->in[d] + g->padding[d] ? end : g->in[d] + g->padding[d];
    return padded_end - start;
}

/* Sets [lo, hi) to the outputs of dimension d whose windows contain input i. */
static inline void covering_outputs(const pool_geometry *g, int d, int64_t i, int64_t *lo,
                                    int64_t *hi)
{
    const int64_t first = i + g->padding[d] - g->kernel[d] + 1; /* o * stride >= first */
    *lo = first <= 0 ? 0 : (first + g->stride[d] - 1) / g->stride[d];
    const int64_t last = (i + g->padding[d]) / g->stride[d];
    *hi = last + 1 < g->out[d] ? last + 1 : g->out[d];
}

static void pool_forward(float *out, const float *in, const pool_geometry *g)
{
    /* in: (batch, in0, in1, in2, channels); out: (batch, out0, out1, out2, channels) */
    const int64_t channels = g->channels;
    const int64_t rows = g->batch * g->out[0] * g->out[1];
#pragma omp parallel for schedule(static) if (rows * g->out[2] * channels >= OD_POOL_PARALLEL_MIN)
    for (int64_t row = 0; row < rows; row++) {
        const int64_t n = row / (g->out[0] * g->out[1]);
        const int64_t o0 = row / g->out[1] % g->out[0];
        const int64_t o1 = row % g->out[1];
        int64_t lo0, hi0, lo1, hi1;
        const int64_t count01 = window(g, 0, o0, &lo0, &hi0) * window(g, 1, o1, &lo1, &hi1);
        for (int64_t o2 = 0; o2 < g->out[2]; o2++) {
            int64_t lo2, hi2;
            const float scale = 1.0f / (float)(count01 * window(g, 2, o2, &lo2, &hi2));
            float *y = out + (row * g->out[2] + o2) * channels;
            for (int64_t c0 = 0; c0 < channels; c0 += OD_POOL_CHANNEL_CHUNK) {
                const int64_t width = channels - c0 < OD_POOL_CHANNEL_CHUNK
                                          ? channels - c0
                                          : OD_POOL_CHANNEL_CHUNK;
                float sum[OD_POOL_CHANNEL_CHUNK] = {0};
                for (int64_t i0 = lo0; i0 < hi0; i0++)
                    for (int64_t i1 = lo1; i1 < hi1; i1++)
                        for (int64_t i2 = lo2; i2 < hi2; i2++) {
                            const float *x =
                                in + (((n * g->in[0] + i0) * g->in[1] + i1) * g->in[2] + i2) *
                                         channels +
                                c0;
#pragma omp simd
                            for (int64_t c = 0; c < width; c++)
                                sum[c] += x[c];
                        }
#pragma omp simd
                for (int64_t c = 0; c < width; c++)
                    y[c0 + c] = sum[c] * scale;
            }
        }
    }
}

static void pool_backward(float *d_in, const float *d_out, const pool_geometry *g)
{
    /* d_in: (batch, in0, in1, in2, channels); d_out: (batch, out0, out1, out2, channels) */
    const int64_t channels = g->channels;
    const int64_t rows = g->batch * g->in[0] * g->in[1];
#pragma omp parallel for schedule(static) if (rows * g->in[2] * channels >= OD_POOL_PARALLEL_MIN)
    for (int64_t row = 0; row < rows; row++) {
        const int64_t n = row / (g->in[0] * g->in[1]);
        const int64_t i0 = row / g->in[1] % g->in[0];
        const int64_t i1 = row % g->in[1];
        int64_t olo0, ohi0, olo1, ohi1;
        covering_outputs(g, 0, i0, &olo0, &ohi0);
        covering_outputs(g, 1, i1, &olo1, &ohi1);
        for (int64_t i2 = 0; i2 < g->in[2]; i2++) {
            int64_t olo2, ohi2;
            covering_outputs(g, 2, i2, &olo2, &ohi2);
            float *dx = d_in + (row * g->in[2] + i2) * channels;
            for (int64_t c0 = 0; c0 < channels; c0 += OD_POOL_CHANNEL_CHUNK) {
                const int64_t width = channels - c0 < OD_POOL_CHANNEL_CHUNK
                                          ? channels - c0
                                          : OD_POOL_CHANNEL_CHUNK;
                float sum[OD_POOL_CHANNEL_CHUNK] = {0};
                for (int64_t o0 = olo0; o0 < ohi0; o0++)
                    for (int64_t o1 = olo1; o1 < ohi1; o1++)
                        for (int64_t o2 = olo2; o2 < ohi2; o2++) {
                            int64_t lo, hi;
                            const int64_t count = window(g, 0, o0, &lo, &hi) *
                                                  window(g, 1, o1, &lo, &hi) *
                                                  window(g, 2, o2, &lo, &hi);
                            const float scale = 1.0f / (float)count;
                            const float *dy =
                                d_out +
                                (((n * g->out[0] + o0) * g->out[1] + o1) * g->out[2] + o2) *
                                    channels +
                                c0;
#pragma omp simd
                            for (int64_t c = 0; c < width; c++)
                                sum[c] += dy[c] * scale;
                        }
#pragma omp simd
                for (int64_t c = 0; c < width; c++)
                    dx[c0 + c] += sum[c];
            }
        }
    }
}

int od_avgpool2d_forward(float *out, const float *in, int64_t batch, int64_t height,
                         int64_t width, int64_t channels, const int64_t kernel[2],
                         const int64_t stride[2], const int64_t padding[2], int count_include_pad,
                         od_error *err)
{
    /* in: (batch, height, width, channels); out: (batch, out_h, out_w, channels) */
    pool_geometry g;
    const int64_t sizes[2] = {height, width};
    if (make_geometry(&g, 2, batch, sizes, channels, kernel, stride, padding, count_include_pad,
                      "avgpool2d", err) != 0)
        return -1;
    pool_forward(out, in, &g);
    return 0;
}

int od_avgpool2d_backward(float *d_in, const float *d_out, int64_t batch, int64_t height,
                          int64_t width, int64_t channels, const int64_t kernel[2],
                          const int64_t stride[2], const int64_t padding[2],
                          int count_include_pad, od_error *err)
{
    /* d_in: (batch, height, width, channels); d_out: (batch, out_h, out_w, channels) */
    pool_geometry g;
    const int64_t sizes[2] = {height, width};
    if (make_geometry(&g, 2, batch, sizes, channels, kernel, stride, padding, count_include_pad,
                      "avgpool2d", err) != 0)
        return -1;
    pool_backward(d_in, d_out, &g);
    return 0;
}

int od_avgpool3d_forward(float *out, const float *in, int64_t batch, int64_t depth, int64_t height,
                         int64_t width, int64_t channels, const int64_t kernel[3],
                         const int64_t stride[3], const int64_t padding[3], int count_include_pad,
                         od_error *err)
{
    /* in: (batch, depth, height, width, channels);
     * out: (batch, out_d, out_h, out_w, channels) */
    pool_geometry g;
    const int64_t sizes[3] = {depth, height, width};
    if (make_geometry(&g, 3, batch, sizes, channels, kernel, stride, padding, count_include_pad,
                      "avgpool3d", err) != 0)
        return -1;
    pool_forward(out, in, &g);
    return 0;
}

int od_avgpool3d_backward(float *d_in, const float *d_out, int64_t batch, int64_t depth,
                          int64_t height, int64_t width, int64_t channels, const int64_t kernel[3],
                          const int64_t stride[3], const int64_t padding[3],
                          int count_include_pad, od_error *err)
{
    /* d_in: (batch, depth, height, width, channels);
     * d_out: (batch, out_d, out_h, out_w, channels) */
    pool_geometry g;
    const int64_t sizes[3] = {depth, height, width};
    if (make_geometry(&g, 3, batch, sizes, channels, kernel, stride, padding, count_include_pad,
                      "avgpool3d", err) != 0)
        return -1;
    pool_backward(d_in, d_out, &g);
    return 0;
}
