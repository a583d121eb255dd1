/* Emission-absorption volume rendering; see render.h for the model, the
 * units and the numerics. */
#include "nn/render.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* log(1 + e) for e in [0, 1], to about an ulp: the rounding of 1 + e is
 * corrected by e / (u - 1) (Goldberg's form). glibc's log1pf costs about
 * twice its logf. */
static inline float log1p_unit(float e)
{
    const float u = 1.0f + e;
    return u == 1.0f ? e : logf(u) * (e / (u - 1.0f));
}

/* log(1 + exp(x)) without overflow for large x or loss for very negative x. */
static inline float softplus(float x)
{
    return fmaxf(x, 0.0f) + log1p_unit(expf(-fabsf(x)));
}

/* 1 - exp(-tau) for tau >= 0, the opacity of one sample, accurate to a
 * few float32 ulps relative also for tiny tau. glibc's expm1f took a
 * sixth of the renderer's time, so small tau takes a Taylor polynomial
 * (truncation below 2e-9 relative for tau < 1/4) and larger tau takes
 * expf, whose rounding is then below 3e-7 relative to alpha >= 0.22. */
static inline float opacity_of(float tau)
{
    if (tau < 0.25f)
        return tau * (1.0f - tau * (1.0f / 2.0f - tau * (1.0f / 6.0f - tau * (1.0f / 24.0f -
                      tau * (1.0f / 120.0f - tau * (1.0f / 720.0f - tau * (1.0f / 5040.0f)))))));
    return 1.0f - expf(-tau);
}

/* The derivative of softplus, 1 / (1 + exp(-x)), from sigma = softplus(x):
 * exp(-sigma) = 1 / (1 + exp(x)), so the logistic is 1 - exp(-sigma),
 * accurate by opacity_of also where it is tiny (x very negative). */
static inline float logistic_of_softplus(float sigma)
{
    return opacity_of(sigma);
}

void od_render_density_activation(float *out, const float *x, int64_t count)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; i++)
        out[i] = softplus(x[i]);
}

static int check_sizes(const char *operation, int64_t R, int64_t S, int64_t C, od_error *err)
{
    if (R < 0 || S < 1 || C < 0)
        return od_fail(err, "%s: rays %lld, samples %lld, channels %lld; expected rays >= 0, "
                            "samples >= 1 and channels >= 0",
                       operation, (long long)R, (long long)S, (long long)C);
    int64_t product;
    if (__builtin_mul_overflow(R, S, &product) || __builtin_mul_overflow(product, C + 3, &product))
        return od_fail(err, "%s: %lld rays x %lld samples x %lld channels overflow", operation,
                       (long long)R, (long long)S, (long long)C);
    return 0;
}

static int check_delta(const char *operation, const float *delta, int64_t count, od_error *err)
{
    int64_t bad = -1;
#pragma omp parallel for schedule(static) reduction(max : bad)
    for (int64_t i = 0; i < count; i++)
        if (!(delta[i] >= 0.0f))
            bad = i > bad ? i : bad;
    if (bad >= 0)
        return od_fail(err, "%s: delta[%lld] is %g; expected a step >= 0 in voxel edges",
                       operation, (long long)bad, (double)delta[bad]);
    return 0;
}

/* ---- compositing ------------------------------------------------------------ */

/* Where a ray's samples lie: sample i of ray r has its raw density at
 * density[(r S + i) density_stride] and its C features from
 * features + (r S + i) feature_stride. The public functions pass separate
 * buffers (strides 1 and C), the renderer one interleaved buffer
 * (R, S, 1 + C) with density first (strides 1 + C). */
typedef struct sample_layout {
    int64_t density_stride, feature_stride;
} sample_layout;

/* Composites ray r (see sample_layout for where its samples lie). */
static inline void composite_ray(float *feature, float *opacity, float *weights,
                                 const float *density, const float *features, const float *delta,
                                 sample_layout layout, int64_t r, int64_t S, int64_t C)
{
    const float *step = delta + r * S;
    float *out = feature != NULL ? feature + r * C : NULL;
    if (out != NULL)
        memset(out, 0, (size_t)C * sizeof *out);
    /* T is the transmittance in front of sample i; depth the optical
     * depth, kept for an accurate opacity when it is small. */
    float T = 1.0f, depth = 0.0f;
    for (int64_t i = 0; i < S; i++) {
        const int64_t sample = r * S + i;
        const float tau = softplus(density[sample * layout.density_stride]) * step[i];
        const float w = T * opacity_of(tau);
        T *= expf(-tau);
        depth += tau;
        if (weights != NULL)
            weights[sample] = w;
        if (out != NULL) {
            const float *f = features + sample * layout.feature_stride;
            for (int64_t c = 0; c < C; c++)
                out[c] += w * f[c];
        }
    }
    if (opacity != NULL)
        opacity[r] = opacity_of(depth);
}

static void composite_forward(float *feature, float *opacity, float *weights, const float *density,
                              const float *features, const float *delta, sample_layout layout,
                              int64_t R, int64_t S, int64_t C)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++)
        composite_ray(feature, opacity, weights, density, features, delta, layout, r, S, C);
}

int od_composite_forward(float *feature, float *opacity, float *weights, const float *density,
                         const float *features, const float *delta, int64_t R, int64_t S,
                         int64_t C, od_error *err)
{
    if (check_sizes("composite forward", R, S, C, err) != 0)
        return -1;
    if (density == NULL || delta == NULL || (C > 0 && features == NULL))
        return od_fail(err, "composite forward: density, delta and (with channels) features "
                            "must not be NULL");
    if (check_delta("composite forward", delta, R * S, err) != 0)
        return -1;
    const sample_layout layout = {1, C};
    composite_forward(feature, opacity, weights, density, features, delta, layout, R, S, C);
    return 0;
}

/* The backward for a ray, with
 *     w_i = exp(-D_i) - exp(-D_{i+1}),  D_i = tau_0 + ... + tau_{i-1},
 * so dw_i / dtau_k = -w_i for k < i, T_{k+1} for k = i and 0 for k > i.
 * With g_i the loss gradient of w_i (d_opacity, plus d_feature . f_i when
 * the features reach the density):
 *     dL / dtau_k = g_k T_{k+1} - sum_{i > k} g_i w_i,
 * a suffix sum, taken from the back so that no large terms cancel.
 * Writes the weights w_i to weight[0..S) and, when d_x is not NULL, the
 * gradient of each raw density to d_x[0..S). `scratch` has room for 3 S
 * floats. The gradient of the features f_i is weight[i] d_out. */
static void ray_backward(float *weight, float *d_x, float *scratch, const float *d_out, float d_alpha_sum,
                         const float *density, const float *features, const float *delta,
                         sample_layout layout, int feature_to_density, int64_t r, int64_t S, int64_t C)
{
    float *after = scratch, *g = scratch + S, *sigma = scratch + 2 * S;
    const float *step = delta + r * S;

    /* pass 1, front to back: weights, transmittance and the gradient of
     * each weight. */
    float T = 1.0f;
    for (int64_t i = 0; i < S; i++) {
        const int64_t sample = r * S + i;
        sigma[i] = softplus(density[sample * layout.density_stride]);
        const float tau = sigma[i] * step[i];
        weight[i] = T * opacity_of(tau);
        T *= expf(-tau);
        after[i] = T;
        float gi = d_alpha_sum;
        if (feature_to_density) {
            const float *f = features + sample * layout.feature_stride;
            float dot = 0.0f;
            for (int64_t c = 0; c < C; c++)
                dot += d_out[c] * f[c];
            gi += dot;
        }
        g[i] = gi;
    }
    if (d_x == NULL)
        return;

    /* pass 2, back to front: the density gradient through tau. */
    float behind = 0.0f; /* sum over i > k of g_i w_i */
    for (int64_t k = S - 1; k >= 0; k--) {
        const float d_tau = g[k] * after[k] - behind;
        behind += g[k] * weight[k];
        d_x[k] = d_tau * step[k] * logistic_of_softplus(sigma[k]);
    }
}

/* Accumulates the gradients of od_composite_backward ray by ray.
 * d_density and d_features are laid out like density and features. */
static int composite_backward(float *d_density, float *d_features, const float *d_feature,
                              const float *d_opacity, const float *density,
                              const float *features, const float *delta,
                              int features_reach_density, int64_t R, int64_t S, int64_t C,
                              od_error *err)
{
    const int feature_to_density = features_reach_density && d_feature != NULL && C > 0;
    const sample_layout layout = {1, C};
    int failed = 0;
#pragma omp parallel
    {
        /* Per sample: the weight, the density gradient, T_{i+1}, the
         * weight's gradient and sigma. */
        float *scratch = od_alloc_aligned((size_t)(5 * S) * sizeof(float));
        if (scratch == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        float *weight = scratch, *d_x = scratch + S;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            if (failed)
                continue;
            const float *d_out = d_feature != NULL ? d_feature + r * C : NULL;
            const float d_alpha_sum = d_opacity != NULL ? d_opacity[r] : 0.0f;
            ray_backward(weight, d_density != NULL ? d_x : NULL, scratch + 2 * S, d_out, d_alpha_sum, density,
                         features, delta, layout, feature_to_density, r, S, C);
            for (int64_t i = 0; i < S; i++) {
                const int64_t sample = r * S + i;
                if (d_features != NULL && d_out != NULL) {
                    float *df = d_features + sample * C;
                    for (int64_t c = 0; c < C; c++)
                        df[c] += weight[i] * d_out[c];
                }
                if (d_density != NULL)
                    d_density[sample] += d_x[i];
            }
        }
        od_free(scratch);
    }
    if (failed)
        return od_fail(err, "composite backward: out of memory for %lld samples of scratch",
                       (long long)S);
    return 0;
}

int od_composite_backward(float *d_density, float *d_features, const float *d_feature,
                          const float *d_opacity, const float *density, const float *features,
                          const float *delta, int features_reach_density, int64_t R, int64_t S,
                          int64_t C, od_error *err)
{
    if (check_sizes("composite backward", R, S, C, err) != 0)
        return -1;
    if (density == NULL || delta == NULL || (C > 0 && features == NULL))
        return od_fail(err, "composite backward: density, delta and (with channels) features "
                            "must not be NULL");
    if (check_delta("composite backward", delta, R * S, err) != 0)
        return -1;
    if (C == 0)
        d_features = NULL;
    return composite_backward(d_density, d_features, d_feature, d_opacity, density, features,
                              delta, features_reach_density, R, S, C, err);
}

/* ---- rendering of volumes ----------------------------------------------------- */

/* The trilinear corners of a point: the voxel index of each corner
 * ((z H + y) W + x) and its weight, in the order (z, y, x) = (0,0,0),
 * (0,0,1), (0,1,0), ..., (1,1,1). A corner outside the volume gets index
 * -1 and weight 0 and is read from a row of zeros, as in nn/trilinear.c,
 * so every point runs the same loops. */
typedef struct point_corners {
    int64_t offset[8];
    float weight[8];
} point_corners;

/* Fills the corners of point (x, y, z) in a (D, H, W) grid by
 * nn/trilinear.h's rules. Returns 0 when the point lies outside [-1, size)
 * along an axis or is not finite: it then samples zero. */
static inline int locate(point_corners *k, const float *point, int64_t D, int64_t H, int64_t W)
{
    const float x = point[0], y = point[1], z = point[2];
    if (!(x >= -1.0f && x < (float)W && y >= -1.0f && y < (float)H && z >= -1.0f && z < (float)D))
        return 0;
    const float x_floor = floorf(x), y_floor = floorf(y), z_floor = floorf(z);
    const int64_t x0 = (int64_t)x_floor, y0 = (int64_t)y_floor, z0 = (int64_t)z_floor;
    const float fx = x - x_floor, fy = y - y_floor, fz = z - z_floor;
    const int x_below = x0 >= 0, x_above = x0 + 1 < W;
    const int y_below = y0 >= 0, y_above = y0 + 1 < H;
    const int z_below = z0 >= 0, z_above = z0 + 1 < D;
    const float wx0 = x_below ? 1.0f - fx : 0.0f, wx1 = x_above ? fx : 0.0f;
    const float wy0 = y_below ? 1.0f - fy : 0.0f, wy1 = y_above ? fy : 0.0f;
    const float wz0 = z_below ? 1.0f - fz : 0.0f, wz1 = z_above ? fz : 0.0f;
    const int64_t base = (z0 * H + y0) * W + x0, sy = W, sz = H * W;
    k->offset[0] = (z_below & y_below & x_below) ? base : -1;
    k->offset[1] = (z_below & y_below & x_above) ? base + 1 : -1;
    k->offset[2] = (z_below & y_above & x_below) ? base + sy : -1;
    k->offset[3] = (z_below & y_above & x_above) ? base + sy + 1 : -1;
    k->offset[4] = (z_above & y_below & x_below) ? base + sz : -1;
    k->offset[5] = (z_above & y_below & x_above) ? base + sz + 1 : -1;
    k->offset[6] = (z_above & y_above & x_below) ? base + sz + sy : -1;
    k->offset[7] = (z_above & y_above & x_above) ? base + sz + sy + 1 : -1;
    k->weight[0] = wz0 * wy0 * wx0;
    k->weight[1] = wz0 * wy0 * wx1;
    k->weight[2] = wz0 * wy1 * wx0;
    k->weight[3] = wz0 * wy1 * wx1;
    k->weight[4] = wz1 * wy0 * wx0;
    k->weight[5] = wz1 * wy0 * wx1;
    k->weight[6] = wz1 * wy1 * wx0;
    k->weight[7] = wz1 * wy1 * wx1;
    return 1;
}

/* Writes out[c] = the trilinear sample of volume (D, H, W, C) at the
 * corners k, summed as a tree in nn/trilinear.c's order. zeros is a row of
 * C zeros for the corners outside the volume. */
static inline void interpolate(float *out, const float *volume, const float *zeros, const point_corners *k,
                               int64_t C)
{
    const float *row[8];
    for (int j = 0; j < 8; j++)
        row[j] = k->offset[j] >= 0 ? volume + k->offset[j] * C : zeros;
    const float *r0 = row[0], *r1 = row[1], *r2 = row[2], *r3 = row[3];
    const float *r4 = row[4], *r5 = row[5], *r6 = row[6], *r7 = row[7];
    const float *w = k->weight;
#pragma omp simd
    for (int64_t c = 0; c < C; c++)
        out[c] = ((w[0] * r0[c] + w[1] * r1[c]) + (w[2] * r2[c] + w[3] * r3[c])) +
                 ((w[4] * r4[c] + w[5] * r5[c]) + (w[6] * r6[c] + w[7] * r7[c]));
}

/* Samples and composites every ray in one sweep, so the volumes are read
 * in place and each sample's features go straight into the ray's sum.
 * Keeps, per sample, the raw density and (keep_features) its C features
 * in kept (R, S, 1 + C), or the raw density alone in kept (R, S). The
 * arithmetic is that of od_trilinear_forward followed by compositing. */
static int render_forward(float *feature, float *opacity, float *kept, int keep_features,
                          const float *density_volume, const float *feature_volume,
                          const float *points, const float *delta, int64_t D, int64_t H, int64_t W,
                          int64_t C, int64_t R, int64_t S, od_error *err)
{
    const int64_t stride = keep_features ? 1 + C : 1;
    int failed = 0;
#pragma omp parallel
    {
        /* A row of zeros for corners outside the volume, then room for one
         * sample's features when they are not kept. */
        const int64_t row_length = C > 1 ? C : 1;
        float *scratch = od_alloc_aligned((size_t)(2 * row_length) * sizeof(float));
        float *f_scratch = scratch != NULL ? scratch + row_length : NULL;
        if (scratch != NULL)
            memset(scratch, 0, (size_t)row_length * sizeof(float));
        else {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            if (failed)
                continue;
            const float *step = delta + r * S;
            float *out = feature != NULL ? feature + r * C : NULL;
            if (out != NULL)
                memset(out, 0, (size_t)C * sizeof *out);
            float T = 1.0f, depth = 0.0f;
            for (int64_t i = 0; i < S; i++) {
                const int64_t sample = r * S + i;
                float *kept_row = kept + sample * stride;
                float *f = keep_features ? kept_row + 1 : f_scratch;
                point_corners k;
                if (locate(&k, points + sample * 3, D, H, W)) {
                    interpolate(kept_row, density_volume, scratch, &k, 1);
                    if (C > 0)
                        interpolate(f, feature_volume, scratch, &k, C);
                } else {
                    kept_row[0] = 0.0f;
                    if (C > 0)
                        memset(f, 0, (size_t)C * sizeof *f);
                }
                /* composite_ray's arithmetic, sample by sample */
                const float tau = softplus(kept_row[0]) * step[i];
                const float w = T * opacity_of(tau);
                T *= expf(-tau);
                depth += tau;
                if (out != NULL)
                    for (int64_t c = 0; c < C; c++)
                        out[c] += w * f[c];
            }
            if (opacity != NULL)
                opacity[r] = opacity_of(depth);
        }
        od_free(scratch);
    }
    if (failed)
        return od_fail(err, "render forward: out of memory for %lld channels of scratch", (long long)C);
    return 0;
}

static int check_render_arguments(const char *operation, const float *kept, const float *density_volume,
                                  const float *feature_volume, const float *points, const float *delta,
                                  int64_t D, int64_t H, int64_t W, int64_t C, int64_t R, int64_t S,
                                  od_error *err)
{
    if (check_sizes(operation, R, S, C, err) != 0)
        return -1;
    if (kept == NULL || density_volume == NULL || points == NULL || delta == NULL ||
        (C > 0 && feature_volume == NULL))
        return od_fail(err, "%s: the volumes, points, delta and samples must not be NULL", operation);
    if (D < 1 || H < 1 || W < 1 || D > INT64_MAX / H / W / (C + 1))
        return od_fail(err, "%s: volume %lld x %lld x %lld x %lld; expected positive sizes", operation,
                       (long long)D, (long long)H, (long long)W, (long long)C);
    return check_delta(operation, delta, R * S, err);
}

int od_render_forward(float *feature, float *opacity, float *samples,
                      const float *density_volume, const float *feature_volume,
                      const float *points, const float *delta, int64_t D, int64_t H, int64_t W,
                      int64_t C, int64_t R, int64_t S, od_error *err)
{
    if (check_render_arguments("render forward", samples, density_volume, feature_volume, points, delta, D, H,
                               W, C, R, S, err) != 0)
        return -1;
    return render_forward(feature, opacity, samples, 1, density_volume, feature_volume, points, delta, D, H, W,
                          C, R, S, err);
}

int od_render_forward_densities(float *feature, float *opacity, float *densities,
                                const float *density_volume, const float *feature_volume,
                                const float *points, const float *delta, int64_t D, int64_t H,
                                int64_t W, int64_t C, int64_t R, int64_t S, od_error *err)
{
    if (check_render_arguments("render forward", densities, density_volume, feature_volume, points, delta, D,
                               H, W, C, R, S, err) != 0)
        return -1;
    return render_forward(feature, opacity, densities, 0, density_volume, feature_volume, points, delta, D, H,
                          W, C, R, S, err);
}

/* Adds the trilinear gradient of R rays of S samples into d_density_volume
 * (D, H, W) and d_feature_volume (D, H, W, C), either NULL to skip it.
 * Sample p of ray r = p / S has the density gradient d_x[p] and the
 * feature gradient weight[p] d_feature[r] (C floats), formed here so that
 * no (R, S, C) buffer of sample gradients is written and read back.
 * nn/trilinear.h's rules apply: a point outside [-1, size) along an axis,
 * or not finite, contributes nothing, and corners outside the volume are
 * dropped.
 *
 * Each thread owns a band of rows along y and scans every sample in order,
 * adding only into the corners of its band. A voxel therefore sums its
 * contributions in sample order whatever the thread count, without atomics
 * or sorting: bit-identical on any number of threads. Scanning costs a few
 * loads and compares per sample and thread. Measured on one thread
 * (bench_render, CPU time), this backward took about a third less time than
 * od_trilinear_backward's sort by cell for the 64-channel render, and a
 * fifth less for the 128 x 128 colour render. */
static void scatter_samples(float *d_density_volume, float *d_feature_volume, const float *d_x,
                            const float *weight, const float *d_feature, const float *points,
                            int64_t R, int64_t S, int64_t D, int64_t H, int64_t W, int64_t C)
{
#pragma omp parallel
    {
        const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
        const int64_t y_low = H * thread / threads, y_high = H * (thread + 1) / threads;
        for (int64_t p = 0; p < R * S; p++) {
            const float x = points[p * 3], y = points[p * 3 + 1], z = points[p * 3 + 2];
            if (!(y >= -1.0f && y < (float)H))
                continue;
            const float y_floor = floorf(y);
            const int64_t y0 = (int64_t)y_floor;
            if (y0 + 1 < y_low || y0 >= y_high)
                continue;
            if (!(x >= -1.0f && x < (float)W && z >= -1.0f && z < (float)D))
                continue;
            const float x_floor = floorf(x), z_floor = floorf(z);
            const int64_t x0 = (int64_t)x_floor, z0 = (int64_t)z_floor;
            const float fx = x - x_floor, fy = y - y_floor, fz = z - z_floor;
            const float wx[2] = {1.0f - fx, fx}, wy[2] = {1.0f - fy, fy}, wz[2] = {1.0f - fz, fz};
            const float g_density = d_density_volume != NULL ? d_x[p] : 0.0f;
            const float sample_weight = d_feature_volume != NULL ? weight[p] : 0.0f;
            const float *g_feature = d_feature_volume != NULL ? d_feature + (p / S) * C : NULL;
            for (int dz = 0; dz < 2; dz++) {
                const int64_t zi = z0 + dz;
                if (zi < 0 || zi >= D)
                    continue;
                for (int dy = 0; dy < 2; dy++) {
                    const int64_t yi = y0 + dy;
                    if (yi < y_low || yi >= y_high)
                        continue;
                    for (int dx = 0; dx < 2; dx++) {
                        const int64_t xi = x0 + dx;
                        if (xi < 0 || xi >= W)
                            continue;
                        const float w = wz[dz] * wy[dy] * wx[dx];
                        const int64_t voxel = (zi * H + yi) * W + xi;
                        if (d_density_volume != NULL)
                            d_density_volume[voxel] += w * g_density;
                        if (g_feature != NULL) {
                            float *row = d_feature_volume + voxel * C;
                            for (int64_t c = 0; c < C; c++)
                                row[c] += w * (sample_weight * g_feature[c]);
                        }
                    }
                }
            }
        }
    }
}

/* od_render_backward from kept samples: (R, S, 1 + C) when
 * keep_features, else the raw densities (R, S) alone, whose features then
 * must not reach the density. */
static int render_backward(float *d_density_volume, float *d_feature_volume, const float *d_feature,
                           const float *d_opacity, const float *kept, int keep_features, const float *points,
                           const float *delta, int features_reach_density, int64_t D, int64_t H, int64_t W,
                           int64_t C, int64_t R, int64_t S, od_error *err)
{
    if (check_sizes("render backward", R, S, C, err) != 0)
        return -1;
    if (kept == NULL || points == NULL || delta == NULL)
        return od_fail(err, "render backward: the saved samples, points and delta must not be NULL");
    if (D < 1 || H < 1 || W < 1 || D > INT64_MAX / H / W / (C + 1))
        return od_fail(err, "render backward: volume %lld x %lld x %lld x %lld; expected positive sizes",
                       (long long)D, (long long)H, (long long)W, (long long)C);
    if (check_delta("render backward", delta, R * S, err) != 0)
        return -1;
    const int want_density = d_density_volume != NULL &&
                             (d_opacity != NULL || (features_reach_density && d_feature != NULL));
    const int want_features = d_feature_volume != NULL && d_feature != NULL && C > 0;
    if ((!want_density && !want_features) || R == 0)
        return 0;

    /* step 1: the weight and the raw density's gradient of every sample. */
    float *weight = od_alloc_aligned((size_t)(2 * R * S) * sizeof(float));
    if (weight == NULL)
        return od_fail(err, "render backward: out of memory for the gradients of %lld samples",
                       (long long)(R * S));
    float *d_x = weight + R * S;
    const sample_layout layout = {keep_features ? 1 + C : 1, keep_features ? 1 + C : 0};
    const float *kept_features = keep_features ? kept + 1 : NULL;
    const int feature_to_density = features_reach_density && d_feature != NULL && C > 0;
    int failed = 0;
#pragma omp parallel
    {
        float *scratch = od_alloc_aligned((size_t)(3 * S) * sizeof(float));
        if (scratch == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            if (failed)
                continue;
            const float *d_out = d_feature != NULL ? d_feature + r * C : NULL;
            const float d_alpha_sum = d_opacity != NULL ? d_opacity[r] : 0.0f;
            ray_backward(weight + r * S, want_density ? d_x + r * S : NULL, scratch, d_out, d_alpha_sum, kept,
                         kept_features, delta, layout, feature_to_density, r, S, C);
        }
        od_free(scratch);
    }

    /* step 2: through trilinear sampling into the volumes. */
    if (!failed)
        scatter_samples(want_density ? d_density_volume : NULL, want_features ? d_feature_volume : NULL, d_x,
                        weight, d_feature, points, R, S, D, H, W, C);
    od_free(weight);
    if (failed)
        return od_fail(err, "render backward: out of memory for %lld samples of scratch", (long long)S);
    return 0;
}

int od_render_backward(float *d_density_volume, float *d_feature_volume, const float *d_feature,
                       const float *d_opacity, const float *samples, const float *points,
                       const float *delta, int features_reach_density, int64_t D, int64_t H,
                       int64_t W, int64_t C, int64_t R, int64_t S, od_error *err)
{
    return render_backward(d_density_volume, d_feature_volume, d_feature, d_opacity, samples, 1, points, delta,
                           features_reach_density, D, H, W, C, R, S, err);
}

int od_render_backward_densities(float *d_density_volume, float *d_feature_volume, const float *d_feature,
                                 const float *d_opacity, const float *densities, const float *points,
                                 const float *delta, int64_t D, int64_t H, int64_t W, int64_t C, int64_t R,
                                 int64_t S, od_error *err)
{
    return render_backward(d_density_volume, d_feature_volume, d_feature, d_opacity, densities, 0, points, delta,
                           0, D, H, W, C, R, S, err);
}
