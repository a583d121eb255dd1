/* Volume rendering and RoI pooling against PyTorch autograd in float64
 * (scripts/refs/render.py). Ray sample points and steps, with rays that
 * miss the grid and a camera inside it. Compositing forward and backward,
 * with sigma near 0 and very large, zero steps and the feature gradient
 * kept out of the density. Rendering of volumes through trilinear
 * sampling. RoI pooling of oriented boxes partly outside the grid, with
 * empty cells masked. Also: stratified jitter stays in its strata and repeats for a
 * seed, results are bit-identical on 1 and 2 threads, the backward
 * accumulates, and invalid arguments fail.
 *
 * Tolerances, for float32 code against float64 references on float32
 * inputs; the errors measured are about 1e-7 for outputs and sample
 * gradients and 5e-7 for volume gradients, and the tolerances leave
 * a tenfold margin or more. Sample points and steps round float64
 * geometry to float32 coordinates up to about 12 voxels (atol 1e-5,
 * 1e-6). Compositing sums at most 17 weighted unit normals, with weights
 * from exponentials of optical depths up to a few hundred: outputs atol
 * 2e-6, rtol 1e-5. A density gradient is a difference of such sums, which
 * cancels to near zero on some samples: atol 1e-6, rtol 1e-5. Volume
 * gradients sum the sample gradients around a voxel: atol 5e-6, rtol 1e-5.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "geometry/rays.h"
#include "nn/render.h"
#include "nn/roi_pool.h"
#include "testlib.h"

#define POINT_ATOL 1e-5f
#define DELTA_ATOL 1e-6f
#define OUT_ATOL 2e-6f
#define OUT_RTOL 1e-5f
#define GRADIENT_ATOL 1e-6f
#define GRADIENT_RTOL 1e-5f
#define VOLUME_GRADIENT_ATOL 5e-6f

static int64_t metadata_int(const od_safetensors *st, const char *key)
{
    const char *text = od_safetensors_metadata(st, key);
    OD_CHECK(text != NULL);
    return text != NULL ? atoll(text) : 0;
}

static int64_t first_int(const od_safetensors *st, const char *name, int index)
{
    od_error err;
    int64_t count = 0;
    int32_t *values = od_safetensors_get_int(st, name, &count, &err);
    OD_CHECK(values != NULL && count > index);
    int64_t value = values != NULL && count > index ? values[index] : 0;
    free(values);
    return value;
}

static od_grid reference_grid(const od_safetensors *st)
{
    od_grid grid = {0};
    od_tensor *origin = od_test_tensor(st, "origin"), *size = od_test_tensor(st, "voxel_size");
    if (origin != NULL && size != NULL) {
        for (int a = 0; a < 3; a++) {
            grid.origin[a] = origin->data[a];
            grid.dims[a] = first_int(st, "dims", a);
        }
        grid.voxel_size = size->data[0];
    }
    od_tensor_free(origin);
    od_tensor_free(size);
    return grid;
}

/* ---- rays ------------------------------------------------------------------ */

typedef struct ray_case {
    od_camera camera;
    od_grid grid;
    int width, height, samples;
    od_tensor *points, *delta;
} ray_case;

static int load_ray_case(const char *name, ray_case *out)
{
    memset(out, 0, sizeof *out);
    od_safetensors *st = od_test_load_reference(name);
    if (st == NULL)
        return -1;
    out->grid = reference_grid(st);
    od_tensor *K = od_test_tensor(st, "K"), *pose = od_test_tensor(st, "pose");
    out->points = od_test_tensor(st, "points");
    out->delta = od_test_tensor(st, "delta");
    out->camera.width = (int)first_int(st, "image_size", 0);
    out->camera.height = (int)first_int(st, "image_size", 1);
    out->width = (int)first_int(st, "render_size", 0);
    out->height = (int)first_int(st, "render_size", 1);
    out->samples = (int)first_int(st, "samples", 0);
    int ok = K != NULL && pose != NULL && out->points != NULL && out->delta != NULL;
    if (ok) {
        for (int i = 0; i < 9; i++)
            out->camera.K[i] = K->data[i];
        for (int i = 0; i < 16; i++)
            out->camera.world_to_camera[i] = pose->data[i];
    }
    od_tensor_free(K);
    od_tensor_free(pose);
    od_safetensors_free(st);
    OD_CHECK(ok);
    return ok ? 0 : -1;
}

static void free_ray_case(ray_case *c)
{
    od_tensor_free(c->points);
    od_tensor_free(c->delta);
}

static void check_rays(const char *name)
{
    ray_case c;
    if (load_ray_case(name, &c) != 0) {
        free_ray_case(&c);
        return;
    }
    const int64_t R = (int64_t)c.width * c.height, S = c.samples;
    OD_CHECK(od_tensor_numel(c.delta) == R * S && od_tensor_numel(c.points) == R * S * 3);
    float *points = od_alloc_floats(R * S * 3), *delta = od_alloc_floats(R * S);
    od_error err;
    OD_CHECK(od_rays_sample(&c.camera, c.width, c.height, &c.grid, c.samples, NULL, points, delta,
                            &err) == 0);
    int64_t wrong_hits = 0;
    for (int64_t r = 0; r < R; r++)
        wrong_hits += (delta[r * S] > 0.0f) != (c.delta->data[r * S] > 0.0f);
    if (wrong_hits)
        printf("  %s: %lld rays hit in one and miss in the other\n", name, (long long)wrong_hits);
    OD_CHECK(wrong_hits == 0);
    OD_CHECK_CLOSE("points", points, c.points->data, R * S * 3, POINT_ATOL, 0.0f);
    OD_CHECK_CLOSE("delta", delta, c.delta->data, R * S, DELTA_ATOL, 0.0f);
    od_free(points);
    od_free(delta);
    free_ray_case(&c);
}

static void rays_match_reference(void)
{
    check_rays("render_rays");
    check_rays("render_rays_inside");
}

/* With jitter, each sample stays inside its stratum (within half a step of
 * the stratum's middle, along the ray, in order), the steps are unchanged,
 * the same seed repeats the points on any thread count and another seed
 * moves them. */
static void jittered_samples_stay_in_their_strata(void)
{
    ray_case c;
    if (load_ray_case("render_rays", &c) != 0) {
        free_ray_case(&c);
        return;
    }
    const int64_t R = (int64_t)c.width * c.height, S = c.samples;
    float *middle = od_alloc_floats(R * S * 3), *step = od_alloc_floats(R * S);
    float *jittered[3], *jittered_delta = od_alloc_floats(R * S);
    od_error err;
    OD_CHECK(od_rays_sample(&c.camera, c.width, c.height, &c.grid, c.samples, NULL, middle, step,
                            &err) == 0);
    const int saved_threads = omp_get_max_threads();
    for (int run = 0; run < 3; run++) {
        od_rng rng;
        od_rng_seed(&rng, run == 2 ? 43 : 42);
        omp_set_num_threads(run == 0 ? 1 : 2);
        jittered[run] = od_alloc_floats(R * S * 3);
        OD_CHECK(od_rays_sample(&c.camera, c.width, c.height, &c.grid, c.samples, &rng,
                                jittered[run], jittered_delta, &err) == 0);
    }
    omp_set_num_threads(saved_threads);
    OD_CHECK_IDENTICAL("same seed", jittered[0], jittered[1], R * S * 3);
    OD_CHECK(memcmp(jittered[0], jittered[2], (size_t)(R * S * 3) * sizeof(float)) != 0);
    OD_CHECK_IDENTICAL("delta", jittered_delta, step, R * S);

    int64_t outside = 0, moved = 0;
    for (int64_t r = 0; r < R; r++) {
        for (int64_t s = 0; s < S; s++) {
            const int64_t i = r * S + s;
            double distance = 0.0;
            for (int a = 0; a < 3; a++) {
                const double d = jittered[0][i * 3 + a] - middle[i * 3 + a];
                distance += d * d;
            }
            distance = sqrt(distance);
            outside += distance > 0.5 * step[i] + 1e-4;
            moved += distance > 1e-3;
        }
    }
    OD_CHECK(outside == 0);
    OD_CHECK(moved > R * S / 4); /* rays that miss keep their points */
    for (int run = 0; run < 3; run++)
        od_free(jittered[run]);
    od_free(middle);
    od_free(step);
    od_free(jittered_delta);
    free_ray_case(&c);
}

static void ray_box_clip_cases(void)
{
    const double low[3] = {0, 0, 0}, high[3] = {1, 1, 1};
    double near = -1, far = -1;
    const double through[3] = {-1, 0.5, 0.5}, along_x[3] = {1, 0, 0};
    OD_CHECK(od_ray_box_clip(through, along_x, low, high, &near, &far) == 1);
    OD_CHECK(fabs(near - 1.0) < 1e-12 && fabs(far - 2.0) < 1e-12);
    /* Parallel to a slab and outside it: a miss. */
    const double above[3] = {-1, 0.5, 1.5};
    OD_CHECK(od_ray_box_clip(above, along_x, low, high, &near, &far) == 0);
    /* The box behind the ray's start: a miss. */
    const double backward[3] = {-1, 0, 0};
    OD_CHECK(od_ray_box_clip(through, backward, low, high, &near, &far) == 0);
    /* Starting inside: from t = 0. */
    const double inside[3] = {0.25, 0.5, 0.5};
    OD_CHECK(od_ray_box_clip(inside, along_x, low, high, &near, &far) == 1);
    OD_CHECK(near == 0.0 && fabs(far - 0.75) < 1e-12);
}

/* ---- compositing ------------------------------------------------------------ */

static void check_composite(const char *name)
{
    od_safetensors *st = od_test_load_reference(name);
    if (st == NULL)
        return;
    const int64_t R = metadata_int(st, "R"), S = metadata_int(st, "S"), C = metadata_int(st, "C");
    const char *names[] = {"density", "delta", "features", "d_feature", "d_opacity", "feature",
                           "opacity", "weights", "d_density", "d_features", "d_density_detached",
                           "d_features_detached"};
    enum { X, DELTA, F, D_FEATURE, D_OPACITY, FEATURE, OPACITY, WEIGHTS, D_X, D_F, D_X_DET,
           D_F_DET, COUNT };
    od_tensor *t[COUNT];
    int ok = 1;
    for (int i = 0; i < COUNT; i++)
        ok &= (t[i] = od_test_tensor(st, names[i])) != NULL;
    if (ok) {
        float *feature = od_alloc_floats(R * C), *opacity = od_alloc_floats(R),
              *weights = od_alloc_floats(R * S), *d_x = od_alloc_floats(R * S),
              *d_f = od_alloc_floats(R * S * C);
        od_error err;
        OD_CHECK(od_composite_forward(feature, opacity, weights, t[X]->data, t[F]->data,
                                      t[DELTA]->data, R, S, C, &err) == 0);
        OD_CHECK_CLOSE("feature", feature, t[FEATURE]->data, R * C, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("opacity", opacity, t[OPACITY]->data, R, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("weights", weights, t[WEIGHTS]->data, R * S, OUT_ATOL, OUT_RTOL);

        OD_CHECK(od_composite_backward(d_x, d_f, t[D_FEATURE]->data, t[D_OPACITY]->data,
                                       t[X]->data, t[F]->data, t[DELTA]->data, 1, R, S, C,
                                       &err) == 0);
        OD_CHECK_CLOSE("d_density", d_x, t[D_X]->data, R * S, GRADIENT_ATOL, GRADIENT_RTOL);
        OD_CHECK_CLOSE("d_features", d_f, t[D_F]->data, R * S * C, GRADIENT_ATOL, GRADIENT_RTOL);

        /* The feature loss kept out of the density. */
        memset(d_x, 0, (size_t)(R * S) * sizeof(float));
        memset(d_f, 0, (size_t)(R * S * C) * sizeof(float));
        OD_CHECK(od_composite_backward(d_x, d_f, t[D_FEATURE]->data, t[D_OPACITY]->data,
                                       t[X]->data, t[F]->data, t[DELTA]->data, 0, R, S, C,
                                       &err) == 0);
        OD_CHECK_CLOSE("d_density detached", d_x, t[D_X_DET]->data, R * S, GRADIENT_ATOL,
                       GRADIENT_RTOL);
        OD_CHECK_CLOSE("d_features detached", d_f, t[D_F_DET]->data, R * S * C, GRADIENT_ATOL,
                       GRADIENT_RTOL);

        /* A second backward adds the same gradients again. */
        OD_CHECK(od_composite_backward(d_x, NULL, t[D_FEATURE]->data, t[D_OPACITY]->data,
                                       t[X]->data, t[F]->data, t[DELTA]->data, 0, R, S, C,
                                       &err) == 0);
        for (int64_t i = 0; i < R * S; i++)
            t[D_X_DET]->data[i] *= 2.0f;
        OD_CHECK_CLOSE("d_density accumulated", d_x, t[D_X_DET]->data, R * S,
                       2.0f * GRADIENT_ATOL, GRADIENT_RTOL);

        /* Only the feature loss, detached: the density gets exactly zero. */
        memset(d_x, 0, (size_t)(R * S) * sizeof(float));
        OD_CHECK(od_composite_backward(d_x, NULL, t[D_FEATURE]->data, NULL, t[X]->data,
                                       t[F]->data, t[DELTA]->data, 0, R, S, C, &err) == 0);
        int64_t nonzero = 0;
        for (int64_t i = 0; i < R * S; i++)
            nonzero += d_x[i] != 0.0f;
        OD_CHECK(nonzero == 0);
        od_free(feature);
        od_free(opacity);
        od_free(weights);
        od_free(d_x);
        od_free(d_f);
    }
    for (int i = 0; i < COUNT; i++)
        od_tensor_free(t[i]);
    od_safetensors_free(st);
}

static void composite_matches_autograd(void)
{
    check_composite("render_composite");
    check_composite("render_composite_c1");
}

/* Raw densities of +-1e30 and steps of 1e3 voxels: no NaN or infinity,
 * opacity 0 or 1, gradients finite. */
static void extreme_densities_stay_finite(void)
{
    enum { R = 3, S = 4, C = 2 };
    const float x[R * S] = {-1e30f, -1e30f, -1e30f, -1e30f, 1e30f, 1e30f, 1e30f, 1e30f,
                            0.0f,   1e30f,  -1e30f, 50.0f};
    const float delta[R * S] = {1e3f, 1e3f, 1e3f, 1e3f, 1e3f, 1e3f, 1e3f, 1e3f,
                                1e-3f, 1e-3f, 1e-3f, 1e-3f};
    float features[R * S * C], d_feature[R * C], d_opacity[R];
    for (int i = 0; i < R * S * C; i++)
        features[i] = (float)(i % 5) - 2.0f;
    for (int i = 0; i < R * C; i++)
        d_feature[i] = 1.0f;
    for (int i = 0; i < R; i++)
        d_opacity[i] = 1.0f;
    float feature[R * C], opacity[R], d_x[R * S] = {0}, d_f[R * S * C] = {0};
    od_error err;
    OD_CHECK(od_composite_forward(feature, opacity, NULL, x, features, delta, R, S, C, &err) == 0);
    OD_CHECK(od_composite_backward(d_x, d_f, d_feature, d_opacity, x, features, delta, 1, R, S, C,
                                   &err) == 0);
    int finite = 1;
    for (int i = 0; i < R * C; i++)
        finite &= isfinite(feature[i]);
    for (int i = 0; i < R * S; i++)
        finite &= isfinite(d_x[i]);
    for (int i = 0; i < R * S * C; i++)
        finite &= isfinite(d_f[i]);
    OD_CHECK(finite);
    OD_CHECK(opacity[0] == 0.0f && opacity[1] == 1.0f && opacity[2] == 1.0f);
    /* The first sample of the opaque ray takes all the weight. */
    OD_CHECK(feature[2] == features[8] && feature[3] == features[9]);
}

/* ---- rendering of volumes ------------------------------------------------------- */

static void render_volume_matches_autograd(void)
{
    od_safetensors *st = od_test_load_reference("render_volume");
    if (st == NULL)
        return;
    const int64_t D = metadata_int(st, "D"), H = metadata_int(st, "H"), W = metadata_int(st, "W"),
                  C = metadata_int(st, "C"), R = metadata_int(st, "R"), S = metadata_int(st, "S");
    const char *names[] = {"density_volume", "feature_volume", "points", "delta", "d_feature",
                           "d_opacity", "feature", "opacity", "d_density_volume",
                           "d_feature_volume", "d_density_volume_detached",
                           "d_feature_volume_detached"};
    enum { DV, FV, POINTS, DELTA, D_FEATURE, D_OPACITY, FEATURE, OPACITY, D_DV, D_FV, D_DV_DET,
           D_FV_DET, COUNT };
    od_tensor *t[COUNT];
    int ok = 1;
    for (int i = 0; i < COUNT; i++)
        ok &= (t[i] = od_test_tensor(st, names[i])) != NULL;
    if (ok) {
        const int64_t voxels = D * H * W;
        float *feature = od_alloc_floats(R * C), *opacity = od_alloc_floats(R),
              *samples = od_alloc_floats(R * S * (1 + C)),
              *d_dv = od_alloc_floats(voxels), *d_fv = od_alloc_floats(voxels * C);
        od_error err;
        OD_CHECK(od_render_forward(feature, opacity, samples, t[DV]->data, t[FV]->data,
                                   t[POINTS]->data, t[DELTA]->data, D, H, W, C, R, S, &err) == 0);
        OD_CHECK_CLOSE("feature", feature, t[FEATURE]->data, R * C, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("opacity", opacity, t[OPACITY]->data, R, OUT_ATOL, OUT_RTOL);
        for (int detached = 0; detached < 2; detached++) {
            memset(d_dv, 0, (size_t)voxels * sizeof(float));
            memset(d_fv, 0, (size_t)(voxels * C) * sizeof(float));
            OD_CHECK(od_render_backward(d_dv, d_fv, t[D_FEATURE]->data, t[D_OPACITY]->data,
                                        samples, t[POINTS]->data, t[DELTA]->data, !detached, D, H, W, C, R,
                                        S, &err) == 0);
            OD_CHECK_CLOSE(detached ? "d_density_volume detached" : "d_density_volume", d_dv,
                           t[detached ? D_DV_DET : D_DV]->data, voxels, VOLUME_GRADIENT_ATOL,
                           GRADIENT_RTOL);
            OD_CHECK_CLOSE(detached ? "d_feature_volume detached" : "d_feature_volume", d_fv,
                           t[detached ? D_FV_DET : D_FV]->data, voxels * C,
                           VOLUME_GRADIENT_ATOL, GRADIENT_RTOL);
        }

        /* Silhouette only (C = 0): the same opacity, and the density
         * gradient of the opacity loss alone, which is the detached case. */
        float *silhouette_samples = od_alloc_floats(R * S);
        memset(opacity, 0, (size_t)R * sizeof(float));
        memset(d_dv, 0, (size_t)voxels * sizeof(float));
        OD_CHECK(od_render_forward(NULL, opacity, silhouette_samples, t[DV]->data, NULL,
                                   t[POINTS]->data, t[DELTA]->data, D, H, W, 0, R, S, &err) == 0);
        OD_CHECK_CLOSE("opacity alone", opacity, t[OPACITY]->data, R, OUT_ATOL, OUT_RTOL);
        OD_CHECK(od_render_backward(d_dv, NULL, NULL, t[D_OPACITY]->data, silhouette_samples,
                                    t[POINTS]->data, t[DELTA]->data, 1, D, H, W, 0, R, S,
                                    &err) == 0);
        OD_CHECK_CLOSE("d_density_volume of the opacity", d_dv, t[D_DV_DET]->data, voxels,
                       VOLUME_GRADIENT_ATOL, GRADIENT_RTOL);
        od_free(silhouette_samples);

        /* Bit-identical on 1 and 2 threads. */
        float *again = od_alloc_floats(R * C), *d_dv_again = od_alloc_floats(voxels),
              *d_fv_again = od_alloc_floats(voxels * C);
        memset(d_dv, 0, (size_t)voxels * sizeof(float));
        memset(d_fv, 0, (size_t)(voxels * C) * sizeof(float));
        const int saved_threads = omp_get_max_threads();
        for (int run = 0; run < 2; run++) {
            omp_set_num_threads(run == 0 ? 1 : 2);
            OD_CHECK(od_render_forward(run == 0 ? feature : again, opacity, samples, t[DV]->data,
                                       t[FV]->data, t[POINTS]->data, t[DELTA]->data, D, H, W, C,
                                       R, S, &err) == 0);
            OD_CHECK(od_render_backward(run == 0 ? d_dv : d_dv_again, run == 0 ? d_fv : d_fv_again,
                                        t[D_FEATURE]->data, t[D_OPACITY]->data, samples,
                                        t[POINTS]->data, t[DELTA]->data, 1, D, H, W, C, R, S,
                                        &err) == 0);
        }
        omp_set_num_threads(saved_threads);
        OD_CHECK_IDENTICAL("feature", feature, again, R * C);
        OD_CHECK_IDENTICAL("d_density_volume", d_dv, d_dv_again, voxels);
        OD_CHECK_IDENTICAL("d_feature_volume", d_fv, d_fv_again, voxels * C);
        od_free(again);
        od_free(d_dv_again);
        od_free(d_fv_again);
        od_free(feature);
        od_free(opacity);
        od_free(samples);
        od_free(d_dv);
        od_free(d_fv);
    }
    for (int i = 0; i < COUNT; i++)
        od_tensor_free(t[i]);
    od_safetensors_free(st);
}

/* Rays from od_rays_sample straight into the renderer: rays that miss
 * render as empty, rays that cross a dense volume are nearly opaque. */
static void rays_render_end_to_end(void)
{
    ray_case c;
    if (load_ray_case("render_rays", &c) != 0) {
        free_ray_case(&c);
        return;
    }
    const int64_t R = (int64_t)c.width * c.height, S = c.samples;
    const int64_t D = c.grid.dims[2], H = c.grid.dims[1], W = c.grid.dims[0], C = 3;
    float *points = od_alloc_floats(R * S * 3), *delta = od_alloc_floats(R * S);
    float *density = od_alloc_floats(D * H * W), *colour = od_alloc_floats(D * H * W * C);
    float *samples = od_alloc_floats(R * S * (1 + C));
    float *image = od_alloc_floats(R * C), *opacity = od_alloc_floats(R);
    for (int64_t i = 0; i < D * H * W; i++)
        density[i] = 30.0f;
    for (int64_t i = 0; i < D * H * W * C; i++)
        colour[i] = 0.25f;
    od_error err;
    OD_CHECK(od_rays_sample(&c.camera, c.width, c.height, &c.grid, c.samples, NULL, points, delta,
                            &err) == 0);
    OD_CHECK(od_render_forward(image, opacity, samples, density, colour, points, delta, D, H, W, C,
                               R, S, &err) == 0);
    int64_t wrong = 0;
    for (int64_t r = 0; r < R; r++) {
        if (delta[r * S] == 0.0f)
            wrong += opacity[r] != 0.0f || image[r * C] != 0.0f;
        else
            wrong += !(opacity[r] > 0.3f);
    }
    OD_CHECK(wrong == 0);
    od_free(points);
    od_free(delta);
    od_free(density);
    od_free(colour);
    od_free(samples);
    od_free(image);
    od_free(opacity);
    free_ray_case(&c);
}

/* ---- RoI pooling ------------------------------------------------------------------ */

static void roi_pool_matches_autograd(void)
{
    od_safetensors *st = od_test_load_reference("render_roi");
    if (st == NULL)
        return;
    const int64_t B = metadata_int(st, "B"), C = metadata_int(st, "C");
    const int cells = (int)metadata_int(st, "cells");
    const char *threshold_text = od_safetensors_metadata(st, "threshold");
    const float threshold = threshold_text != NULL ? (float)atof(threshold_text) : 0.5f;
    od_grid grid = reference_grid(st);
    const char *names[] = {"boxes", "volume", "occupancy", "points", "crops", "crops_masked",
                           "mask", "d_crops", "d_volume", "d_volume_masked"};
    enum { BOXES, VOLUME, OCCUPANCY, POINTS, CROPS, CROPS_MASKED, MASK, D_CROPS, D_VOLUME,
           D_VOLUME_MASKED, COUNT };
    od_tensor *t[COUNT];
    int ok = 1;
    for (int i = 0; i < COUNT; i++)
        ok &= (t[i] = od_test_tensor(st, names[i])) != NULL;
    if (ok) {
        od_box *boxes = calloc((size_t)B, sizeof *boxes);
        for (int64_t b = 0; b < B; b++) {
            const float *v = t[BOXES]->data + b * 7;
            for (int a = 0; a < 3; a++) {
                boxes[b].center[a] = v[a];
                boxes[b].size[a] = v[3 + a];
            }
            boxes[b].yaw = v[6];
        }
        const int64_t P = B * cells * cells * cells, voxels = od_grid_voxel_count(&grid);
        float *points = od_alloc_floats(P * 3), *crops = od_alloc_floats(P * C),
              *mask = od_alloc_floats(P), *d_volume = od_alloc_floats(voxels * C);
        od_error err;
        OD_CHECK(od_roi_points(points, boxes, B, &grid, cells, &err) == 0);
        OD_CHECK_CLOSE("points", points, t[POINTS]->data, P * 3, POINT_ATOL, 0.0f);

        OD_CHECK(od_roi_pool_forward(crops, NULL, t[VOLUME]->data, NULL, threshold, 0, boxes, B,
                                     &grid, cells, C, &err) == 0);
        OD_CHECK_CLOSE("crops", crops, t[CROPS]->data, P * C, OUT_ATOL, OUT_RTOL);
        OD_CHECK(od_roi_pool_forward(crops, mask, t[VOLUME]->data, t[OCCUPANCY]->data, threshold,
                                     1, boxes, B, &grid, cells, C, &err) == 0);
        OD_CHECK_IDENTICAL("mask", mask, t[MASK]->data, P);
        OD_CHECK_CLOSE("crops masked", crops, t[CROPS_MASKED]->data, P * C, OUT_ATOL, OUT_RTOL);

        OD_CHECK(od_roi_pool_backward(d_volume, t[D_CROPS]->data, NULL, boxes, B, &grid, cells, C,
                                      &err) == 0);
        OD_CHECK_CLOSE("d_volume", d_volume, t[D_VOLUME]->data, voxels * C, VOLUME_GRADIENT_ATOL,
                       GRADIENT_RTOL);
        memset(d_volume, 0, (size_t)(voxels * C) * sizeof(float));
        OD_CHECK(od_roi_pool_backward(d_volume, t[D_CROPS]->data, mask, boxes, B, &grid, cells, C,
                                      &err) == 0);
        OD_CHECK_CLOSE("d_volume masked", d_volume, t[D_VOLUME_MASKED]->data, voxels * C,
                       VOLUME_GRADIENT_ATOL, GRADIENT_RTOL);

        /* Padding by 2 voxels and making the box cubic. */
        od_box padded;
        od_roi_box_pad_cubic(&boxes[0], 2.0, &grid, &padded);
        const double side = fmax(fmax(boxes[0].size[0], boxes[0].size[1]), boxes[0].size[2]) +
                            4.0 * grid.voxel_size;
        OD_CHECK(fabs(padded.size[0] - side) < 1e-12 && padded.size[1] == padded.size[0] &&
                 padded.size[2] == padded.size[0] && padded.yaw == boxes[0].yaw);
        free(boxes);
        od_free(points);
        od_free(crops);
        od_free(mask);
        od_free(d_volume);
    }
    for (int i = 0; i < COUNT; i++)
        od_tensor_free(t[i]);
    od_safetensors_free(st);
}

/* ---- invalid arguments ---------------------------------------------------------------- */

static void invalid_arguments_fail(void)
{
    od_error err;
    float x[2] = {0, 0}, delta[2] = {1, -1}, out[2];
    OD_CHECK(od_composite_forward(NULL, out, NULL, x, NULL, delta, 1, 2, 0, &err) == -1);
    OD_CHECK(strstr(err.message, "delta[1]") != NULL);
    delta[1] = NAN;
    OD_CHECK(od_composite_forward(NULL, out, NULL, x, NULL, delta, 1, 2, 0, &err) == -1);
    delta[1] = 1;
    OD_CHECK(od_composite_forward(NULL, out, NULL, x, NULL, delta, 1, 0, 0, &err) == -1);
    OD_CHECK(od_composite_forward(NULL, out, NULL, x, NULL, delta, 1, 2, 3, &err) == -1);
    OD_CHECK(od_composite_forward(NULL, out, NULL, x, NULL, delta, 1, 2, 0, &err) == 0);

    od_camera camera = {.width = 8, .height = 8, .K = {10, 0, 3.5, 0, 10, 3.5, 0, 0, 1}};
    const double eye[3] = {1, 1, 1}, target[3] = {0, 0, 0};
    od_camera_look_at(&camera, eye, target);
    od_grid grid = od_grid_default();
    float points[4 * 3], steps[4];
    OD_CHECK(od_rays_sample(&camera, 2, 2, &grid, 1, NULL, points, steps, &err) == 0);
    OD_CHECK(od_rays_sample(&camera, 2, 2, &grid, 0, NULL, points, steps, &err) == -1);
    OD_CHECK(od_rays_sample(&camera, 0, 2, &grid, 1, NULL, points, steps, &err) == -1);
    camera.K[0] = -1;
    OD_CHECK(od_rays_sample(&camera, 2, 2, &grid, 1, NULL, points, steps, &err) == -1);

    od_box box = {.center = {0, 0, 0.05}, .size = {0.1, -0.1, 0.1}, .yaw = 0};
    float crops[8];
    float volume[1] = {0};
    OD_CHECK(od_roi_pool_forward(crops, NULL, volume, NULL, 0.5f, 0, &box, 1, &grid, 1, 1, &err) ==
             -1);
    OD_CHECK(strstr(err.message, "box 0") != NULL);
    box.size[1] = 0.1;
    OD_CHECK(od_roi_points(points, &box, 1, &grid, 0, &err) == -1);
}

int main(void)
{
    OD_RUN(rays_match_reference);
    OD_RUN(jittered_samples_stay_in_their_strata);
    OD_RUN(ray_box_clip_cases);
    OD_RUN(composite_matches_autograd);
    OD_RUN(extreme_densities_stay_finite);
    OD_RUN(render_volume_matches_autograd);
    OD_RUN(rays_render_end_to_end);
    OD_RUN(roi_pool_matches_autograd);
    OD_RUN(invalid_arguments_fail);
    return od_test_finish();
}
