/* The renders that keep only the raw densities (od_render_forward_densities
 * and od_render_backward_densities) against the renders that keep every
 * sample: the outputs, the kept densities and the volume gradients must be
 * bit-identical, because both run the same arithmetic. test_render checks
 * the full renders against PyTorch. */
#include <stdlib.h>

#include "core/mem.h"
#include "core/rng.h"
#include "nn/render.h"
#include "testlib.h"

#define D 5
#define H 6
#define W 7
#define RAYS 40
#define SAMPLES 9

/* Fills count floats with normal values times scale plus shift. */
static void fill_normal(float *out, int64_t count, od_rng *rng, float scale, float shift)
{
    for (int64_t i = 0; i < count; i++)
        out[i] = scale * od_rng_normal(rng) + shift;
}

static void densities_match_full_samples(void)
{
    const int64_t channel_counts[3] = {0, 3, 16};
    for (int t = 0; t < 3; t++) {
        const int64_t C = channel_counts[t];
        od_rng rng;
        od_rng_seed(&rng, 11 + (uint64_t)t);
        const int64_t voxels = D * H * W, P = RAYS * SAMPLES;
        float *density_volume = od_alloc_floats(voxels);
        float *feature_volume = od_alloc_floats(voxels * (C > 0 ? C : 1));
        float *points = od_alloc_floats(P * 3), *delta = od_alloc_floats(P);
        float *samples = od_alloc_floats(P * (1 + C)), *densities = od_alloc_floats(P);
        float *feature = od_alloc_floats(RAYS * (C > 0 ? C : 1)), *opacity = od_alloc_floats(RAYS);
        float *feature_kept = od_alloc_floats(RAYS * (C > 0 ? C : 1)), *opacity_kept = od_alloc_floats(RAYS);
        float *d_feature = od_alloc_floats(RAYS * (C > 0 ? C : 1)), *d_opacity = od_alloc_floats(RAYS);
        float *d_density = od_alloc_floats(voxels), *d_density_kept = od_alloc_floats(voxels);
        float *d_features = od_alloc_floats(voxels * (C > 0 ? C : 1));
        float *d_features_kept = od_alloc_floats(voxels * (C > 0 ? C : 1));
        fill_normal(density_volume, voxels, &rng, 2.0f, -1.0f);
        fill_normal(feature_volume, voxels * C, &rng, 1.0f, 0.0f);
        /* Points spread half a voxel beyond every face, so some corners and
         * some whole points fall outside the volume. */
        const float sizes[3] = {W, H, D};
        for (int64_t p = 0; p < P; p++) {
            for (int a = 0; a < 3; a++)
                points[p * 3 + a] = (sizes[a] + 2.0f) * od_rng_uniform(&rng) - 1.5f;
            delta[p] = 0.5f * od_rng_uniform(&rng);
        }
        fill_normal(d_feature, RAYS * C, &rng, 1.0f, 0.0f);
        fill_normal(d_opacity, RAYS, &rng, 1.0f, 0.0f);
        for (int64_t v = 0; v < voxels; v++) {
            d_density[v] = d_density_kept[v] = 0.5f;
            for (int64_t c = 0; c < C; c++)
                d_features[v * C + c] = d_features_kept[v * C + c] = -0.25f;
        }

        od_error err = {{0}};
        OD_CHECK(od_render_forward(C > 0 ? feature : NULL, opacity, samples, density_volume, feature_volume, points,
                                   delta, D, H, W, C, RAYS, SAMPLES, &err) == 0);
        OD_CHECK(od_render_forward_densities(C > 0 ? feature_kept : NULL, opacity_kept, densities, density_volume,
                                             feature_volume, points, delta, D, H, W, C, RAYS, SAMPLES, &err) == 0);
        OD_CHECK_IDENTICAL("feature", feature_kept, feature, RAYS * C);
        OD_CHECK_IDENTICAL("opacity", opacity_kept, opacity, RAYS);
        int densities_equal = 1;
        for (int64_t p = 0; p < P; p++)
            densities_equal &= densities[p] == samples[p * (1 + C)];
        OD_CHECK(densities_equal);

        OD_CHECK(od_render_backward(d_density, d_features, C > 0 ? d_feature : NULL, d_opacity, samples, points,
                                    delta, 0, D, H, W, C, RAYS, SAMPLES, &err) == 0);
        OD_CHECK(od_render_backward_densities(d_density_kept, d_features_kept, C > 0 ? d_feature : NULL, d_opacity,
                                              densities, points, delta, D, H, W, C, RAYS, SAMPLES, &err) == 0);
        OD_CHECK_IDENTICAL("d_density", d_density_kept, d_density, voxels);
        OD_CHECK_IDENTICAL("d_features", d_features_kept, d_features, voxels * C);

        /* The gradients were accumulated onto the starting values, and
         * some moved. */
        int moved = 0;
        for (int64_t v = 0; v < voxels; v++)
            moved += d_density[v] != 0.5f;
        OD_CHECK(moved > 0);

        float *buffers[] = {density_volume, feature_volume, points, delta, samples, densities, feature, opacity,
                            feature_kept, opacity_kept, d_feature, d_opacity, d_density, d_density_kept,
                            d_features, d_features_kept};
        for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
            od_free(buffers[i]);
    }
}

static void densities_invalid_arguments_fail(void)
{
    float one[4] = {0.0f, 0.0f, 0.0f, 1.0f};
    float negative = -1.0f;
    od_error err = {{0}};
    OD_CHECK(od_render_forward_densities(NULL, one, NULL, one, NULL, one, one, 1, 1, 1, 0, 1, 1, &err) != 0);
    OD_CHECK(od_render_forward_densities(NULL, one, one, one, NULL, one, &negative, 1, 1, 1, 0, 1, 1, &err) != 0);
    OD_CHECK(od_render_forward_densities(NULL, one, one, one, NULL, one, one, 0, 1, 1, 0, 1, 1, &err) != 0);
    OD_CHECK(od_render_backward_densities(one, NULL, NULL, one, NULL, one, one, 1, 1, 1, 0, 1, 1, &err) != 0);
    OD_CHECK(od_render_backward_densities(one, NULL, NULL, one, one, one, one, 1, 1, 1, 0, 1, 0, &err) != 0);
}

int main(void)
{
    OD_RUN(densities_match_full_samples);
    OD_RUN(densities_invalid_arguments_fail);
    return od_test_finish();
}
