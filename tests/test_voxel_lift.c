/* Lifting at a list of voxels equals the dense lift (geometry/lift.h) at
 * those voxels bit for bit, counts included, over three views of random
 * feature maps, one of which misses part of the grid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "detect/voxel_lift.h"
#include "geometry/lift.h"
#include "testlib.h"

static void test_voxel_lift_matches_dense_lift(void)
{
    od_grid grid = {.origin = {-0.16, -0.16, 0.0}, .voxel_size = 0.02, .dims = {16, 16, 8}};
    const int64_t channels = 5, fh = 12, fw = 16;
    const int stride = 4;
    od_rng rng;
    od_rng_seed(&rng, 3);
    float *features = malloc(fh * fw * channels * sizeof *features);

    /* Every third voxel of the grid, in (z, y, x) order. */
    int64_t voxels = od_grid_voxel_count(&grid), count = 0;
    int32_t *points = malloc(voxels * 3 * sizeof *points);
    for (int64_t k = 0; k < grid.dims[2]; k++)
        for (int64_t j = 0; j < grid.dims[1]; j++)
            for (int64_t i = 0; i < grid.dims[0]; i++)
                if ((i + j + k) % 3 == 0) {
                    points[3 * count] = (int32_t)i;
                    points[3 * count + 1] = (int32_t)j;
                    points[3 * count + 2] = (int32_t)k;
                    count++;
                }
    od_lift *dense = od_lift_new(&grid, channels);
    od_voxel_lift *sparse = od_voxel_lift_new(&grid, points, count, channels);
    OD_CHECK(dense != NULL && sparse != NULL);
    od_error err;
    const double eyes[3][3] = {{0.6, 0.1, 0.4}, {-0.5, 0.4, 0.3}, {0.05, -0.2, 0.35}};
    const double target[3] = {0.0, 0.0, 0.05};
    for (int view = 0; view < 3; view++) {
        for (int64_t i = 0; i < fh * fw * channels; i++)
            features[i] = od_rng_uniform(&rng) - 0.5f;
        /* The last view is narrow, so it misses part of the grid. */
        double focal = view == 2 ? 150.0 : 50.0;
        od_camera camera = {.width = fw * stride, .height = fh * stride,
                            .K = {focal, 0.0, 31.5, 0.0, focal, 23.5, 0.0, 0.0, 1.0}};
        od_camera_look_at(&camera, eyes[view], target);
        OD_CHECK(od_lift_add_view(dense, &camera, features, fh, fw, stride, &err) == 0);
        OD_CHECK(od_voxel_lift_add_view(sparse, &camera, features, fh, fw, stride, &err) == 0);
    }
    float *dense_mean = malloc(voxels * channels * sizeof *dense_mean);
    int32_t *dense_count = malloc(voxels * sizeof *dense_count);
    float *sparse_mean = malloc(count * channels * sizeof *sparse_mean);
    int32_t *sparse_count = malloc(count * sizeof *sparse_count);
    OD_CHECK(od_lift_finish(dense, dense_mean, dense_count, &err) == 0);
    OD_CHECK(od_voxel_lift_finish(sparse, sparse_mean, sparse_count, &err) == 0);

    int count_errors = 0, seen_by_all = 0, seen_by_some = 0;
    float *gathered = malloc(count * channels * sizeof *gathered);
    for (int64_t q = 0; q < count; q++) {
        int64_t v = od_grid_index(&grid, points[3 * q], points[3 * q + 1], points[3 * q + 2]);
        count_errors += sparse_count[q] != dense_count[v];
        seen_by_all += sparse_count[q] == 3;
        seen_by_some += sparse_count[q] > 0 && sparse_count[q] < 3;
        memcpy(gathered + q * channels, dense_mean + v * channels, channels * sizeof *gathered);
    }
    printf("voxel lift: %lld voxels, %d seen by all views, %d by some\n", (long long)count, seen_by_all,
           seen_by_some);
    OD_CHECK(count_errors == 0);
    OD_CHECK(seen_by_all > 0);
    OD_CHECK(seen_by_some > 0);
    OD_CHECK_IDENTICAL("voxel lift mean", sparse_mean, gathered, count * channels);

    /* Bad arguments. */
    OD_CHECK(od_voxel_lift_new(&grid, points, count, 0) == NULL);
    OD_CHECK(od_voxel_lift_add_view(sparse, NULL, features, fh, fw, stride, &err) == -1);
    od_camera camera = {.width = 64, .height = 48, .K = {0.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0}};
    od_camera_look_at(&camera, eyes[0], target);
    OD_CHECK(od_voxel_lift_add_view(sparse, &camera, features, fh, fw, stride, &err) == -1);

    od_lift_free(dense);
    od_voxel_lift_free(sparse);
    free(features);
    free(points);
    free(dense_mean);
    free(dense_count);
    free(sparse_mean);
    free(sparse_count);
    free(gathered);
}

int main(void)
{
    OD_RUN(test_voxel_lift_matches_dense_lift);
    return od_test_finish();
}
