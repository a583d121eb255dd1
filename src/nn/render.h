/* Emission-absorption volume rendering of channels-last voxel volumes,
 * forward and backward: the renderer that supervises the learned volumes
 * with colour, silhouette and teacher-feature images.
 *
 * Rays and their samples come from geometry/rays.h (points in continuous
 * voxel coordinates, steps delta in voxel edges, rays of several views
 * simply concatenated). For ray r with samples i = 0 .. S-1:
 *
 *     sigma_i = softplus(x_i) = log(1 + exp(x_i))     density, >= 0
 *     tau_i   = sigma_i delta_i                       optical depth
 *     alpha_i = 1 - exp(-tau_i)
 *     T_i     = exp(-(tau_0 + ... + tau_{i-1}))       transmittance
 *     w_i     = T_i alpha_i                           weight
 *     feature = sum_i w_i f_i                         (C channels)
 *     opacity = sum_i w_i = 1 - T_S                   the silhouette
 *
 * x is the raw density, sampled from a (D, H, W) volume, and f the
 * features, sampled from a (D, H, W, C) volume (colour: C = 3, teacher
 * features: C = k), both by nn/trilinear.h. The activation is softplus
 * rather than ReLU, because a voxel whose raw density is negative then
 * still receives a gradient, where ReLU would leave it empty for good.
 * Localization thresholds the same sigma (od_render_density_activation). A background colour is not added:
 * the caller mixes one in with (1 - opacity) if it wants one.
 *
 * Numerics: T is a running product of exp(-tau_i), whose rounding error
 * grows by about an ulp per sample and which falls to 0 behind an opaque
 * sample and stays there. The opacity is 1 - exp(-sum tau) from the sum
 * itself. alpha avoids the cancellation in 1 - exp(-tau) for small tau,
 * and softplus and its derivative (the logistic) use forms that neither
 * overflow nor lose the small end. So sigma = 0 gives exactly zero weight
 * and a huge sigma gives alpha = 1 and T = 0 behind it, without NaN. Raw densities that are not finite
 * propagate into the outputs.
 *
 * The backward can keep the feature rendering's gradient out of the
 * density, as the teacher-feature loss requires, because the teacher's
 * features are not consistent across views: with
 * features_reach_density = 0 only the opacity's gradient reaches x.
 *
 * Threads split the rays, and each ray is computed by one thread in a
 * fixed order. In the gradients into the volumes, each voxel adds its
 * samples' contributions in sample order. Results are therefore
 * bit-identical for any thread count. */
#ifndef ODDONE_NN_RENDER_H
#define ODDONE_NN_RENDER_H

#include <stdint.h>

#include "core/error.h"

/* ---- compositing of given samples ----------------------------------------- */

/* density and delta are (R, S); features is (R, S, C) and may be NULL
 * when C = 0 (silhouette only). Writes feature (R, C) when not NULL,
 * opacity (R) when not NULL and the weights w (R, S) when not NULL.
 * Fails on a NULL input that the sizes need, R < 0, S < 1 or C < 0, or a
 * negative delta. */
int od_composite_forward(float *feature, float *opacity, float *weights, const float *density,
                         const float *features, const float *delta, int64_t R, int64_t S,
                         int64_t C, od_error *err);

/* Gradients of the forward above. d_feature is (R, C) and d_opacity (R);
 * either may be NULL (no loss on it). Accumulates into d_density (R, S)
 * and d_features (R, S, C), skipping either when NULL. The forward's
 * weights are recomputed from density and delta. With
 * features_reach_density = 0 the feature's gradient goes into the features
 * only, never into the density. */
int od_composite_backward(float *d_density, float *d_features, const float *d_feature,
                          const float *d_opacity, const float *density, const float *features,
                          const float *delta, int features_reach_density, int64_t R, int64_t S,
                          int64_t C, od_error *err);

/* ---- rendering of volumes --------------------------------------------------- */

/* Renders R rays of S samples each through a raw density volume (D, H, W)
 * and a feature volume (D, H, W, C), which may be NULL when C = 0.
 * points is (R, S, 3) and delta (R, S), from od_rays_sample.
 * Writes feature (R, C) and opacity (R) (either may be NULL) and keeps
 * the samples (R, S, 1 + C) for the backward: the raw density, then the
 * C features, of every sample. Fails on a NULL buffer that the sizes need,
 * invalid sizes, a negative delta, or when scratch memory runs out. */
int od_render_forward(float *feature, float *opacity, float *samples,
                      const float *density_volume, const float *feature_volume,
                      const float *points, const float *delta, int64_t D, int64_t H, int64_t W,
                      int64_t C, int64_t R, int64_t S, od_error *err);

/* Backward of od_render_forward, from the gradients of feature (R, C) and
 * opacity (R) (either may be NULL) and the forward's samples.
 * Accumulates into d_density_volume (D, H, W) and d_feature_volume
 * (D, H, W, C), skipping either when NULL. The gradient with respect to
 * the sample points is not computed (rays are fixed by the cameras).
 * Fails like the forward. */
int od_render_backward(float *d_density_volume, float *d_feature_volume, const float *d_feature,
                       const float *d_opacity, const float *samples, const float *points,
                       const float *delta, int features_reach_density, int64_t D, int64_t H,
                       int64_t W, int64_t C, int64_t R, int64_t S, od_error *err);

/* As od_render_forward, but keeps only the raw density of each sample in
 * densities (R, S), for od_render_backward_densities: a render whose
 * feature gradient must not reach the density needs no more, and a
 * 64-channel render then keeps 65 times less. */
int od_render_forward_densities(float *feature, float *opacity, float *densities,
                                const float *density_volume, const float *feature_volume,
                                const float *points, const float *delta, int64_t D, int64_t H,
                                int64_t W, int64_t C, int64_t R, int64_t S, od_error *err);

/* od_render_backward with features_reach_density = 0, from the densities
 * that od_render_forward_densities kept. Fails like od_render_backward. */
int od_render_backward_densities(float *d_density_volume, float *d_feature_volume, const float *d_feature,
                                 const float *d_opacity, const float *densities, const float *points,
                                 const float *delta, int64_t D, int64_t H, int64_t W, int64_t C, int64_t R,
                                 int64_t S, od_error *err);

/* Writes sigma = softplus(x) for `count` raw densities (out may alias x),
 * the density that rendering uses, for thresholding a volume. */
void od_render_density_activation(float *out, const float *x, int64_t count);

#endif
