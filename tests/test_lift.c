/* Lifting feature maps into a voxel grid: means and view counts against
 * PyTorch's grid_sample (scripts/refs/lift.py), a voxel behind a camera,
 * unseen voxels, determinism across thread counts, the grid helpers and
 * invalid arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/threads.h"
#include "geometry/grid.h"
#include "geometry/lift.h"
#include "testlib.h"

static void check_case(const char *name)
{
    char file[64];
    snprintf(file, sizeof file, "lift_%s", name);
    od_safetensors *st = od_test_load_reference(file);
    if (!st)
        return;
    od_error err;
    int64_t n_dims = 0, n_image = 0, n_stride = 0, n_count = 0;
    int32_t *dims = od_safetensors_get_int(st, "dims", &n_dims, &err);
    int32_t *image = od_safetensors_get_int(st, "image_size", &n_image, &err);
    int32_t *stride = od_safetensors_get_int(st, "stride", &n_stride, &err);
    int32_t *want_count = od_safetensors_get_int(st, "count", &n_count, &err);
    od_tensor *origin = od_test_tensor(st, "origin");
    od_tensor *size = od_test_tensor(st, "voxel_size");
    od_tensor *K = od_test_tensor(st, "K");
    od_tensor *pose = od_test_tensor(st, "pose");
    od_tensor *features = od_test_tensor(st, "features");
    od_tensor *want_mean = od_test_tensor(st, "mean");
    int ok = dims && image && stride && want_count && origin && size && K && pose && features && want_mean &&
             n_dims == 3 && n_image == 2 && n_stride == 1 && features->ndim == 4;
    OD_CHECK(ok);
    if (ok) {
        od_grid grid;
        for (int a = 0; a < 3; a++) {
            grid.origin[a] = origin->data[a];
            grid.dims[a] = dims[a];
        }
        grid.voxel_size = size->data[0];
        int64_t views = features->shape[0], fh = features->shape[1], fw = features->shape[2];
        int64_t C = features->shape[3];
        int64_t voxels = od_grid_voxel_count(&grid);
        OD_CHECK(n_count == voxels);
        od_lift *lift = od_lift_new(&grid, C);
        OD_CHECK(lift != NULL);
        for (int64_t v = 0; v < views && lift; v++) {
            od_camera camera = {.width = image[0], .height = image[1]};
            for (int i = 0; i < 9; i++)
                camera.K[i] = K->data[v * 9 + i];
            for (int i = 0; i < 16; i++)
                camera.world_to_camera[i] = pose->data[v * 16 + i];
            OD_CHECK(od_lift_add_view(lift, &camera, features->data + v * fh * fw * C, fh, fw, stride[0], &err) ==
                     0);
        }
        OD_CHECK(od_lift_view_count(lift) == views);
        float *mean = od_alloc_floats(voxels * C);
        int32_t *count = calloc((size_t)voxels, sizeof *count);
        OD_CHECK(od_lift_finish(lift, mean, count, &err) == 0);
        /* Counts are exact: no centre in these cases lies within 1e-6 of
         * the feature map's border, so float32 and float64 agree. */
        int64_t wrong = 0;
        for (int64_t v = 0; v < voxels; v++)
            wrong += count[v] != want_count[v];
        if (wrong)
            printf("  %s: %lld voxels with a wrong view count\n", name, (long long)wrong);
        OD_CHECK(wrong == 0);
        /* The bilinear weights are float32, made from float64 pixel
         * coordinates, and the features are unit normals summed over at
         * most 5 views: errors stay near 1e-6. */
        OD_CHECK_CLOSE(name, mean, want_mean->data, voxels * C, 2e-5f, 1e-5f);
        free(mean);
        free(count);
        od_lift_free(lift);
    }
    free(dims);
    free(image);
    free(stride);
    free(want_count);
    od_tensor_free(origin);
    od_tensor_free(size);
    od_tensor_free(K);
    od_tensor_free(pose);
    od_tensor_free(features);
    od_tensor_free(want_mean);
    od_safetensors_free(st);
}

static void test_reference_stride4(void) { check_case("stride4"); }
static void test_reference_stride3(void) { check_case("stride3"); }
static void test_reference_stride1(void) { check_case("stride1"); }

/* A camera at the origin looking along +x (OpenCV axes: x right = -y world,
 * y down = -z world, z forward = +x world). */
static od_camera camera_along_x(double position_x)
{
    od_camera camera = {.width = 16, .height = 16};
    double K[9] = {10, 0, 7.5, 0, 10, 7.5, 0, 0, 1};
    double T[16] = {0, -1, 0, 0, 0, 0, -1, 0, 1, 0, 0, -position_x, 0, 0, 0, 1};
    memcpy(camera.K, K, sizeof K);
    memcpy(camera.world_to_camera, T, sizeof T);
    return camera;
}

static void test_behind_camera(void)
{
    /* Three voxels along world x at x = -1, 0, +1 (centres), y = z = 0. */
    od_grid grid = {.origin = {-1.5, -0.5, -0.5}, .voxel_size = 1.0, .dims = {3, 1, 1}};
    od_lift *lift = od_lift_new(&grid, 2);
    od_error err;
    float features[16 * 16 * 2];
    for (int i = 0; i < 16 * 16; i++) {
        features[2 * i] = 1.0f;
        features[2 * i + 1] = (float)i;
    }
    /* The camera at x = 0.5 sees the voxel at x = +1 at the principal
     * point. The voxel at x = -1 lies behind it: a projection that ignored
     * depth would put it at the principal point too, inside the map. */
    od_camera camera = camera_along_x(0.5);
    OD_CHECK(od_lift_add_view(lift, &camera, features, 16, 16, 1, &err) == 0);
    /* The voxel at x = 0 lies behind a second camera at x = 0.25 as well;
     * a camera at x = -5 sees all three. */
    camera = camera_along_x(0.25);
    OD_CHECK(od_lift_add_view(lift, &camera, features, 16, 16, 1, &err) == 0);
    camera = camera_along_x(-5.0);
    OD_CHECK(od_lift_add_view(lift, &camera, features, 16, 16, 1, &err) == 0);
    float mean[6];
    int32_t count[3];
    OD_CHECK(od_lift_finish(lift, mean, count, &err) == 0);
    OD_CHECK(count[0] == 1 && count[1] == 1 && count[2] == 3);
    /* Channel 0 is 1 everywhere, so every seen voxel's mean is exactly 1;
     * channel 1 at the principal point (7.5, 7.5) mixes cells 119, 120,
     * 135 and 136 equally: 127.5. */
    OD_CHECK(mean[0] == 1.0f && mean[2] == 1.0f && mean[4] == 1.0f);
    OD_CHECK(fabsf(mean[5] - 127.5f) < 1e-4f);
    od_lift_free(lift);
}

static void test_unseen_and_stride_rule(void)
{
    /* With stride 4 the principal point 7.5 of a 16-pixel image maps to
     * (7.5 + 0.5) / 4 - 0.5 = 1.5 on a 4-cell map: the centre of the map. */
    double K[9] = {10, 0, 7.5, 0, 10, 7.5, 0, 0, 1}, scaled[9];
    od_lift_scale_intrinsics(K, 4, scaled);
    OD_CHECK(scaled[0] == 2.5 && scaled[4] == 2.5 && scaled[2] == 1.5 && scaled[5] == 1.5);

    /* A voxel far off the optical axis is unseen: count 0 and mean 0. */
    od_grid grid = {.origin = {1.5, -0.5, -0.5}, .voxel_size = 1.0, .dims = {1, 1, 2}};
    od_lift *lift = od_lift_new(&grid, 1);
    float features[16];
    for (int i = 0; i < 16; i++)
        features[i] = (float)i;
    od_camera camera = camera_along_x(-0.5);
    od_error err;
    /* Voxel (2, 0, 0) projects to the map centre (1.5, 1.5); voxel (2, 0, 1)
     * is 1 up at depth 2.5: v = 1.5 - 2.5 / 2.5 = 0.5, row 0.5. */
    OD_CHECK(od_lift_add_view(lift, &camera, features, 4, 4, 4, &err) == 0);
    od_grid far = {.origin = {1.5, 30.0, -0.5}, .voxel_size = 1.0, .dims = {1, 1, 1}};
    od_lift *unseen = od_lift_new(&far, 1);
    OD_CHECK(od_lift_add_view(unseen, &camera, features, 4, 4, 4, &err) == 0);
    float mean[2] = {-1, -1};
    int32_t count[2] = {-1, -1};
    OD_CHECK(od_lift_finish(lift, mean, count, &err) == 0);
    OD_CHECK(count[0] == 1 && count[1] == 1);
    OD_CHECK(fabsf(mean[0] - 7.5f) < 1e-5f); /* cells 5, 6, 9, 10 */
    OD_CHECK(fabsf(mean[1] - 3.5f) < 1e-5f); /* row 0.5, column 1.5 */
    OD_CHECK(od_lift_finish(unseen, mean, count, &err) == 0);
    OD_CHECK(count[0] == 0 && mean[0] == 0.0f);
    od_lift_clear(lift);
    OD_CHECK(od_lift_finish(lift, mean, count, &err) == 0);
    OD_CHECK(count[0] == 0 && count[1] == 0 && mean[0] == 0.0f && od_lift_view_count(lift) == 0);
    od_lift_free(lift);
    od_lift_free(unseen);
}

static void lift_random(int threads, float *mean, int32_t *count)
{
    od_set_num_threads(threads);
    od_grid grid = od_grid_default();
    const int64_t C = 8, fh = 24, fw = 32;
    od_lift *lift = od_lift_new(&grid, C);
    float *features = od_alloc_floats(fh * fw * C);
    od_rng rng;
    od_rng_seed(&rng, 3);
    od_error err;
    for (int v = 0; v < 4; v++) {
        for (int64_t i = 0; i < fh * fw * C; i++)
            features[i] = od_rng_normal(&rng);
        double angle = v * 1.3;
        od_camera camera = {.width = 128, .height = 96};
        double K[9] = {120, 0, 63.5, 0, 120, 47.5, 0, 0, 1};
        memcpy(camera.K, K, sizeof K);
        /* Looking at the origin from distance 1.5, 45 degrees down. */
        double c = cos(angle), s = sin(angle), e = sqrt(0.5);
        double right[3] = {-s, c, 0}, forward[3] = {-c * e, -s * e, -e};
        double down[3] = {forward[1] * right[2] - forward[2] * right[1], forward[2] * right[0] - forward[0] * right[2],
                          forward[0] * right[1] - forward[1] * right[0]};
        double position[3] = {1.5 * c * e, 1.5 * s * e, 1.5 * e};
        const double *rows[3] = {right, down, forward};
        for (int r = 0; r < 3; r++) {
            for (int q = 0; q < 3; q++)
                camera.world_to_camera[r * 4 + q] = rows[r][q];
            camera.world_to_camera[r * 4 + 3] =
                -(rows[r][0] * position[0] + rows[r][1] * position[1] + rows[r][2] * position[2]);
        }
        camera.world_to_camera[15] = 1.0;
        OD_CHECK(od_lift_add_view(lift, &camera, features, fh, fw, 4, &err) == 0);
    }
    OD_CHECK(od_lift_finish(lift, mean, count, &err) == 0);
    free(features);
    od_lift_free(lift);
}

static void test_deterministic_across_threads(void)
{
    od_grid grid = od_grid_default();
    int64_t voxels = od_grid_voxel_count(&grid);
    float *a = od_alloc_floats(voxels * 8), *b = od_alloc_floats(voxels * 8);
    int32_t *ca = calloc((size_t)voxels, sizeof *ca), *cb = calloc((size_t)voxels, sizeof *cb);
    int threads = od_get_num_threads();
    lift_random(1, a, ca);
    lift_random(threads > 1 ? threads : 2, b, cb);
    od_set_num_threads(threads);
    /* Each voxel is summed by one thread in view order: bit-identical. */
    OD_CHECK_IDENTICAL("lift threads", a, b, voxels * 8);
    OD_CHECK(memcmp(ca, cb, (size_t)voxels * sizeof *ca) == 0);
    int64_t seen = 0;
    for (int64_t v = 0; v < voxels; v++)
        seen += ca[v] > 0;
    OD_CHECK(seen > voxels / 10);
    free(a);
    free(b);
    free(ca);
    free(cb);
}

static void test_grid(void)
{
    od_grid grid = od_grid_default();
    OD_CHECK(grid.dims[0] == 64 && grid.dims[1] == 64 && grid.dims[2] == 16);
    OD_CHECK(od_grid_voxel_count(&grid) == 65536);
    double c[3], v[3], back[3];
    od_grid_voxel_center(&grid, 0, 63, 15, c);
    OD_CHECK(fabs(c[0] + 0.63) < 1e-12 && fabs(c[1] - 0.63) < 1e-12 && fabs(c[2] - 0.31) < 1e-12);
    od_grid_world_to_voxel(&grid, c, v);
    OD_CHECK(fabs(v[0]) < 1e-9 && fabs(v[1] - 63) < 1e-9 && fabs(v[2] - 15) < 1e-9);
    od_grid_voxel_to_world(&grid, v, back);
    OD_CHECK(fabs(back[0] - c[0]) < 1e-12 && fabs(back[2] - c[2]) < 1e-12);
    OD_CHECK(od_grid_index(&grid, 1, 2, 3) == (3 * 64 + 2) * 64 + 1);

    od_error err;
    od_grid from;
    double lo[3] = {-0.64, -0.64, 0.0}, hi[3] = {0.64, 0.64, 0.32};
    OD_CHECK(od_grid_from_bounds(lo, hi, 0.02, &from, &err) == 0);
    OD_CHECK(from.dims[0] == 64 && from.dims[1] == 64 && from.dims[2] == 16);
    OD_CHECK(od_grid_from_bounds(lo, hi, 0.0, &from, &err) == -1 && strstr(err.message, "voxel size"));
    OD_CHECK(od_grid_from_bounds(hi, lo, 0.02, &from, &err) == -1 && strstr(err.message, "increasing"));
    od_grid bad = grid;
    bad.dims[2] = 0;
    OD_CHECK(od_grid_validate(&bad, &err) == -1 && strstr(err.message, "positive"));
    bad = grid;
    bad.origin[1] = NAN;
    OD_CHECK(od_grid_validate(&bad, &err) == -1 && strstr(err.message, "origin"));
    OD_CHECK(od_lift_new(&bad, 4) == NULL);
    OD_CHECK(od_lift_new(&grid, 0) == NULL);
}

static void test_bad_arguments(void)
{
    od_grid grid = {.origin = {0, 0, 0}, .voxel_size = 1.0, .dims = {2, 2, 2}};
    od_lift *lift = od_lift_new(&grid, 3);
    od_camera camera = camera_along_x(-5.0);
    float features[4 * 4 * 3] = {0};
    od_error err;
    OD_CHECK(od_lift_add_view(lift, &camera, features, 0, 4, 1, &err) == -1 && strstr(err.message, "size"));
    OD_CHECK(od_lift_add_view(lift, &camera, features, 4, 4, 0, &err) == -1 && strstr(err.message, "stride"));
    OD_CHECK(od_lift_add_view(lift, &camera, NULL, 4, 4, 1, &err) == -1 && strstr(err.message, "NULL"));
    od_camera bad = camera;
    bad.K[0] = -1.0;
    OD_CHECK(od_lift_add_view(lift, &bad, features, 4, 4, 1, &err) == -1 && strstr(err.message, "focal"));
    bad = camera;
    bad.world_to_camera[3] = INFINITY;
    OD_CHECK(od_lift_add_view(lift, &bad, features, 4, 4, 1, &err) == -1 && strstr(err.message, "pose"));
    OD_CHECK(od_lift_finish(lift, NULL, NULL, &err) == -1 && strstr(err.message, "NULL"));
    OD_CHECK(od_lift_view_count(lift) == 0);
    od_lift_free(lift);
}

int main(void)
{
    OD_RUN(test_reference_stride4);
    OD_RUN(test_reference_stride3);
    OD_RUN(test_reference_stride1);
    OD_RUN(test_behind_camera);
    OD_RUN(test_unseen_and_stride_rule);
    OD_RUN(test_deterministic_across_threads);
    OD_RUN(test_grid);
    OD_RUN(test_bad_arguments);
    return od_test_finish();
}
