/* Emission-absorption volume rendering; see render.h for the model, the
 * units and the numerics. */
#include "nn/render.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "nn/trilinear.h"

/* log(1 + exp(x)) without overflow for large x or loss for very negative x. */
static inline float softplus(float x)
{
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

/* The derivative of softplus, 1 / (1 + exp(-x)), without overflow. */
static inline float logistic(float x)
{
    const float e = expf(-fabsf(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
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

#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *x = density + r * S, *step = delta + r * S;
        float *out = feature != NULL ? feature + r * C : NULL;
        if (out != NULL)
            memset(out, 0, (size_t)C * sizeof *out);
        /* depth is the optical depth in front of sample i: T_i = exp(-depth). */
        float depth = 0.0f;
        for (int64_t i = 0; i < S; i++) {
            const float tau = softplus(x[i]) * step[i];
            const float w = expf(-depth) * -expm1f(-tau);
            depth += tau;
            if (weights != NULL)
                weights[r * S + i] = w;
            if (out != NULL) {
                const float *f = features + (r * S + i) * C;
                for (int64_t c = 0; c < C; c++)
                    out[c] += w * f[c];
            }
        }
        if (opacity != NULL)
            opacity[r] = -expm1f(-depth);
    }
    return 0;
}

/* The backward for a ray, with
 *     w_i = exp(-D_i) - exp(-D_{i+1}),  D_i = tau_0 + ... + tau_{i-1},
 * so dw_i / dtau_k = -w_i for k < i, T_{k+1} for k = i and 0 for k > i.
 * With g_i the loss gradient of w_i (d_opacity, plus d_feature . f_i when
 * the features reach the density):
 *     dL / dtau_k = g_k T_{k+1} - sum_{i > k} g_i w_i,
 * a suffix sum, taken from the back so that no large terms cancel.
 * When `accumulate` is 0 the gradients are written instead of added. */
static int composite_backward(float *d_density, float *d_features, const float *d_feature,
                              const float *d_opacity, const float *density,
                              const float *features, const float *delta,
                              int features_reach_density, int accumulate, int64_t R, int64_t S,
                              int64_t C, od_error *err)
{
    const int feature_to_density = features_reach_density && d_feature != NULL && C > 0;
    int failed = 0;
#pragma omp parallel
    {
        /* Per sample: the weight, T_{i+1} and the weight's gradient. */
        float *scratch = od_alloc_aligned((size_t)(3 * S) * sizeof(float));
        if (scratch == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        float *weight = scratch, *after = scratch + S, *g = scratch + 2 * S;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            if (failed)
                continue;
            const float *x = density + r * S, *step = delta + r * S;
            const float *d_out = d_feature != NULL ? d_feature + r * C : NULL;
            const float d_alpha_sum = d_opacity != NULL ? d_opacity[r] : 0.0f;

            /* pass 1, front to back: weights, transmittance and the
             * gradient into the features. */
            float depth = 0.0f;
            for (int64_t i = 0; i < S; i++) {
                const float tau = softplus(x[i]) * step[i];
                weight[i] = expf(-depth) * -expm1f(-tau);
                depth += tau;
                after[i] = expf(-depth);
                float gi = d_alpha_sum;
                const float *f = features != NULL ? features + (r * S + i) * C : NULL;
                if (feature_to_density) {
                    float dot = 0.0f;
                    for (int64_t c = 0; c < C; c++)
                        dot += d_out[c] * f[c];
                    gi += dot;
                }
                g[i] = gi;
                if (d_features != NULL) {
                    float *df = d_features + (r * S + i) * C;
                    if (d_out == NULL) {
                        if (!accumulate)
                            memset(df, 0, (size_t)C * sizeof *df);
                    } else if (accumulate) {
                        for (int64_t c = 0; c < C; c++)
                            df[c] += weight[i] * d_out[c];
                    } else {
                        for (int64_t c = 0; c < C; c++)
                            df[c] = weight[i] * d_out[c];
                    }
                }
            }
            if (d_density == NULL)
                continue;

            /* pass 2, back to front: the density gradient through tau. */
            float behind = 0.0f; /* sum over i > k of g_i w_i */
            for (int64_t k = S - 1; k >= 0; k--) {
                const float d_tau = g[k] * after[k] - behind;
                behind += g[k] * weight[k];
                const float d_x = d_tau * step[k] * logistic(x[k]);
                if (accumulate)
                    d_density[r * S + k] += d_x;
                else
                    d_density[r * S + k] = d_x;
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
                              delta, features_reach_density, 1, R, S, C, err);
}

/* ---- rendering of volumes ----------------------------------------------------- */

int od_render_forward(float *feature, float *opacity, float *density_samples,
                      float *feature_samples, const float *density_volume,
                      const float *feature_volume, const float *points, const float *delta,
                      int64_t D, int64_t H, int64_t W, int64_t C, int64_t R, int64_t S,
                      od_error *err)
{
    if (check_sizes("render forward", R, S, C, err) != 0)
        return -1;
    if (density_samples == NULL || density_volume == NULL || points == NULL || delta == NULL ||
        (C > 0 && (feature_samples == NULL || feature_volume == NULL)))
        return od_fail(err, "render forward: the volumes, points, delta and sample buffers "
                            "must not be NULL");

    /* step 1: sample the raw density and the features at every point. */
    if (od_trilinear_forward(density_samples, density_volume, points, 1, D, H, W, 1, R * S,
                             err) != 0)
        return od_fail_context(err, "render forward: density");
    if (C > 0 && od_trilinear_forward(feature_samples, feature_volume, points, 1, D, H, W, C,
                                      R * S, err) != 0)
        return od_fail_context(err, "render forward: features");

    /* step 2: composite along each ray. */
    if (od_composite_forward(feature, opacity, NULL, density_samples, feature_samples, delta, R,
                             S, C, err) != 0)
        return od_fail_context(err, "render forward");
    return 0;
}

int od_render_backward(float *d_density_volume, float *d_feature_volume, const float *d_feature,
                       const float *d_opacity, const float *density_samples,
                       const float *feature_samples, const float *points, const float *delta,
                       int features_reach_density, int64_t D, int64_t H, int64_t W, int64_t C,
                       int64_t R, int64_t S, od_error *err)
{
    if (check_sizes("render backward", R, S, C, err) != 0)
        return -1;
    if (density_samples == NULL || points == NULL || delta == NULL ||
        (C > 0 && feature_samples == NULL))
        return od_fail(err, "render backward: the saved samples, points and delta must not be "
                            "NULL");
    if (check_delta("render backward", delta, R * S, err) != 0)
        return -1;
    const int want_density = d_density_volume != NULL &&
                             (d_opacity != NULL || (features_reach_density && d_feature != NULL));
    const int want_features = d_feature_volume != NULL && d_feature != NULL && C > 0;
    if ((!want_density && !want_features) || R == 0)
        return 0;

    /* step 1: gradients of the samples, written into scratch. */
    float *d_density = want_density ? od_alloc_aligned((size_t)(R * S) * sizeof(float)) : NULL;
    float *d_features =
        want_features ? od_alloc_aligned((size_t)(R * S * C) * sizeof(float)) : NULL;
    int status = 0;
    if ((want_density && d_density == NULL) || (want_features && d_features == NULL)) {
        status = od_fail(err, "render backward: out of memory for the gradients of %lld samples",
                         (long long)(R * S));
        goto done;
    }
    if (composite_backward(d_density, d_features, d_feature, d_opacity, density_samples,
                           feature_samples, delta, features_reach_density, 0, R, S, C, err) != 0) {
        status = od_fail_context(err, "render backward");
        goto done;
    }

    /* step 2: through trilinear sampling into the volumes. */
    if (want_density && od_trilinear_backward(d_density_volume, NULL, d_density, NULL, points, 1,
                                              D, H, W, 1, R * S, err) != 0) {
        status = od_fail_context(err, "render backward: density");
        goto done;
    }
    if (want_features && od_trilinear_backward(d_feature_volume, NULL, d_features, NULL, points,
                                               1, D, H, W, C, R * S, err) != 0)
        status = od_fail_context(err, "render backward: features");

done:
    od_free(d_density);
    od_free(d_features);
    return status;
}
