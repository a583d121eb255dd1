/* Visual hull: the tolerance and min_views rules on hand-built views, and
 * occupancy of the real sample scene from its object masks (20 views and
 * 5 views) checked against the ground-truth boxes, with DBSCAN finding
 * one cluster per object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geometry/box.h"
#include "geometry/dbscan.h"
#include "geometry/grid.h"
#include "geometry/visual_hull.h"
#include "scene/scene.h"
#include "testlib.h"

static const char *sample_scene(void) { return od_test_source_path("../shared/datasets/toysad8k-sample"); }

/* A 16 x 16 camera at world x = position_x looking along +x. */
static od_camera camera_along_x(double position_x)
{
    od_camera camera = {.width = 16, .height = 16};
    double K[9] = {10, 0, 7.5, 0, 10, 7.5, 0, 0, 1};
    double T[16] = {0, -1, 0, 0, 0, 0, -1, 0, 1, 0, 0, -position_x, 0, 0, 0, 1};
    memcpy(camera.K, K, sizeof K);
    memcpy(camera.world_to_camera, T, sizeof T);
    return camera;
}

static void test_tolerance_and_min_views(void)
{
    /* Voxels at x = -1, 0, +1. Cameras at x = -5 see all three; a camera
     * at x = 0.5 sees only the voxel at +1 (the others are behind it). */
    od_grid grid = {.origin = {-1.5, -0.5, -0.5}, .voxel_size = 1.0, .dims = {3, 1, 1}};
    od_visual_hull *hull = od_visual_hull_new(&grid);
    float full[256], empty[256] = {0};
    for (int i = 0; i < 256; i++)
        full[i] = 1.0f;
    od_error err;
    od_camera far = camera_along_x(-5.0), near = camera_along_x(0.5);
    for (int v = 0; v < 4; v++)
        OD_CHECK(od_visual_hull_add_view(hull, &far, full, 16, 16, &err) == 0);
    /* The near camera's empty mask votes "outside" for the voxel at +1 only. */
    OD_CHECK(od_visual_hull_add_view(hull, &near, empty, 16, 16, &err) == 0);
    uint8_t occupied[3];
    int32_t seen[3];
    OD_CHECK(od_visual_hull_finish(hull, 0.0, 1, occupied, seen, &err) == 0);
    OD_CHECK(seen[0] == 4 && seen[1] == 4 && seen[2] == 5);
    OD_CHECK(occupied[0] == 1 && occupied[1] == 1 && occupied[2] == 0);
    /* One of five views may disagree at tolerance 0.2, none at 0.19. */
    OD_CHECK(od_visual_hull_finish(hull, 0.2, 1, occupied, NULL, &err) == 0);
    OD_CHECK(occupied[2] == 1);
    OD_CHECK(od_visual_hull_finish(hull, 0.19, 1, occupied, NULL, &err) == 0);
    OD_CHECK(occupied[2] == 0);
    OD_CHECK(od_visual_hull_finish(hull, 0.2, 5, occupied, NULL, &err) == 0);
    OD_CHECK(occupied[0] == 0 && occupied[1] == 0 && occupied[2] == 1);

    OD_CHECK(od_visual_hull_finish(hull, 1.0, 1, occupied, NULL, &err) == -1 && strstr(err.message, "tolerance"));
    OD_CHECK(od_visual_hull_finish(hull, 0.0, 0, occupied, NULL, &err) == -1 && strstr(err.message, "min_views"));
    OD_CHECK(od_visual_hull_add_view(hull, &far, full, 15, 16, &err) == -1 && strstr(err.message, "15 x 16"));
    OD_CHECK(od_visual_hull_add_view(hull, &far, NULL, 16, 16, &err) == -1 && strstr(err.message, "NULL"));
    od_visual_hull_free(hull);
    grid.voxel_size = 0.0;
    OD_CHECK(od_visual_hull_new(&grid) == NULL);
}

/* Returns 1 when the point lies in the box grown by `margin` on every side. */
static int in_dilated_box(const od_box *box, double margin, const double point[3])
{
    od_box grown = *box;
    for (int a = 0; a < 3; a++)
        grown.size[a] += 2.0 * margin;
    return od_box_contains(&grown, point);
}

static void check_scene_hull(od_scene *scene, const int *views, int view_count, double min_inside_fraction,
                             int64_t min_object_voxels)
{
    od_error err;
    od_grid grid = od_grid_default();
    const double h = grid.voxel_size;
    int64_t voxels = od_grid_voxel_count(&grid);
    od_visual_hull *hull = od_visual_hull_new(&grid);
    OD_CHECK(hull != NULL);
    for (int n = 0; n < view_count; n++) {
        od_image mask = {0};
        int has_mask = 0;
        int status = od_scene_read_view_mask(scene, views[n], &mask, &has_mask, &err);
        OD_CHECK(status == 0 && has_mask && mask.channels == 1);
        if (status != 0 || !has_mask) {
            printf("  view %d: %s\n", views[n], status ? err.message : "no mask");
            od_visual_hull_free(hull);
            return;
        }
        OD_CHECK(od_visual_hull_add_view(hull, &scene->views[views[n]].camera, mask.pixels, mask.width,
                                         mask.height, &err) == 0);
        od_image_free(&mask);
    }
    uint8_t *occupied = calloc((size_t)voxels, 1);
    OD_CHECK(od_visual_hull_finish(hull, OD_VISUAL_HULL_DEFAULT_TOLERANCE, 2, occupied, NULL, &err) == 0);

    int objects = scene->object_count;
    int64_t total = 0, near_box = 0, per_object[16] = {0};
    int32_t *points = malloc((size_t)voxels * 3 * sizeof *points);
    for (int64_t k = 0; k < grid.dims[2]; k++)
        for (int64_t j = 0; j < grid.dims[1]; j++)
            for (int64_t i = 0; i < grid.dims[0]; i++) {
                if (!occupied[od_grid_index(&grid, i, j, k)])
                    continue;
                double c[3];
                od_grid_voxel_center(&grid, i, j, k, c);
                int near = 0;
                for (int o = 0; o < objects && o < 16; o++) {
                    near |= in_dilated_box(&scene->objects[o].box, 2.0 * h, c);
                    per_object[o] += in_dilated_box(&scene->objects[o].box, h, c);
                }
                near_box += near;
                points[3 * total] = (int32_t)i;
                points[3 * total + 1] = (int32_t)j;
                points[3 * total + 2] = (int32_t)k;
                total++;
            }
    double fraction = total ? (double)near_box / (double)total : 0.0;
    printf("  %d views: %lld occupied voxels, %.4f within 2 voxels of a box; per object:", view_count,
           (long long)total, fraction);
    for (int o = 0; o < objects && o < 16; o++)
        printf(" %lld", (long long)per_object[o]);
    printf("\n");
    OD_CHECK(fraction >= min_inside_fraction);
    for (int o = 0; o < objects && o < 16; o++)
        OD_CHECK(per_object[o] >= min_object_voxels);

    /* One DBSCAN cluster per object, each centroid inside its box. */
    int32_t *labels = malloc((size_t)(total > 0 ? total : 1) * sizeof *labels);
    od_dbscan *dbscan = od_dbscan_new(1.5, 3);
    OD_CHECK(od_dbscan_run(dbscan, points, total, labels, &err) == 0);
    int64_t clusters = od_dbscan_cluster_count(dbscan);
    printf("  %d views: %lld clusters, %lld noise voxels\n", view_count, (long long)clusters,
           (long long)od_dbscan_noise_count(dbscan));
    OD_CHECK(clusters == objects);
    int matched[16] = {0};
    for (int64_t cl = 0; cl < clusters && cl < 16; cl++) {
        double sum[3] = {0, 0, 0};
        int64_t n = 0;
        for (int64_t p = 0; p < total; p++)
            if (labels[p] == cl) {
                double v[3] = {points[3 * p], points[3 * p + 1], points[3 * p + 2]}, c[3];
                od_grid_voxel_center(&grid, (int64_t)v[0], (int64_t)v[1], (int64_t)v[2], c);
                for (int a = 0; a < 3; a++)
                    sum[a] += c[a];
                n++;
            }
        double centroid[3] = {sum[0] / n, sum[1] / n, sum[2] / n};
        int inside = -1;
        for (int o = 0; o < objects && o < 16; o++)
            if (od_box_contains(&scene->objects[o].box, centroid))
                inside = o;
        printf("  cluster %lld: %lld voxels, centroid (%.3f, %.3f, %.3f) in object %d\n", (long long)cl,
               (long long)n, centroid[0], centroid[1], centroid[2], inside);
        OD_CHECK(inside >= 0);
        if (inside >= 0)
            matched[inside]++;
    }
    for (int o = 0; o < objects && o < 16; o++)
        OD_CHECK(matched[o] == 1);
    od_dbscan_free(dbscan);
    free(labels);
    free(points);
    free(occupied);
    od_visual_hull_free(hull);
}

static void test_sample_scene(void)
{
    od_scene *scene = NULL;
    od_error err;
    int status = od_scene_load(sample_scene(), NULL, &scene, &err);
    OD_CHECK(status == 0);
    if (status != 0) {
        printf("  %s\n", err.message);
        return;
    }
    OD_CHECK(scene->object_count == 3 && scene->view_count == 20);
    int all[64];
    for (int v = 0; v < scene->view_count && v < 64; v++)
        all[v] = v;
    check_scene_hull(scene, all, scene->view_count < 64 ? scene->view_count : 64, 0.99, 100);
    /* Three subsets of 5 views spread around the scene, as detection uses. */
    const int five[3][5] = {{0, 4, 8, 12, 16}, {1, 5, 9, 13, 17}, {2, 7, 11, 15, 19}};
    for (int s = 0; s < 3; s++)
        check_scene_hull(scene, five[s], 5, 0.99, 100);
    od_scene_free(scene);
}

int main(void)
{
    OD_RUN(test_tolerance_and_min_views);
    OD_RUN(test_sample_scene);
    return od_test_finish();
}
