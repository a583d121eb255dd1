/* Oriented boxes: the minimum-area rectangle of voxel footprints against
 * known results and a brute-force search over angles, and rotated 3D IoU
 * against exact references from scripts/refs/boxes.py and closed forms. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geometry/obb.h"
#include "testlib.h"

#define PI 3.14159265358979323846

static od_box make_box(double cx, double cy, double cz, double sx, double sy, double sz, double yaw)
{
    od_box box = {{cx, cy, cz}, {sx, sy, sz}, yaw};
    return box;
}

/* Reference footprints and IoU come from an exact convex intersection in
 * float64 on float32-rounded boxes, stored as float32: 1e-6 covers that
 * rounding (values are at most a few units) with room to spare. */
static void iou_matches_reference(void)
{
    od_safetensors *st = od_test_load_reference("boxes_iou");
    if (st == NULL)
        return;
    od_tensor *boxes_a = od_test_tensor(st, "boxes_a"), *boxes_b = od_test_tensor(st, "boxes_b");
    od_tensor *footprint = od_test_tensor(st, "footprint"), *iou = od_test_tensor(st, "iou");
    if (boxes_a != NULL && boxes_b != NULL && footprint != NULL && iou != NULL) {
        const int64_t n = footprint->shape[0];
        OD_CHECK(n > 100);
        float *got_footprint = malloc((size_t)n * sizeof *got_footprint);
        float *got_iou = malloc((size_t)n * sizeof *got_iou);
        int symmetric = 1;
        for (int64_t i = 0; i < n; i++) {
            const float *a = &boxes_a->data[i * 7], *b = &boxes_b->data[i * 7];
            od_box box_a = make_box(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
            od_box box_b = make_box(b[0], b[1], b[2], b[3], b[4], b[5], b[6]);
            got_footprint[i] = (float)od_box_footprint_intersection(&box_a, &box_b);
            const double forward = od_box_iou_3d(&box_a, &box_b), backward = od_box_iou_3d(&box_b, &box_a);
            got_iou[i] = (float)forward;
            if (fabs(forward - backward) >= 1e-9) {
                printf("  pair %lld: IoU %.12f one way, %.12f the other\n", (long long)i, forward, backward);
                symmetric = 0;
            }
        }
        OD_CHECK_CLOSE("footprint intersection", got_footprint, footprint->data, n, 1e-6f, 1e-6f);
        OD_CHECK_CLOSE("rotated 3D IoU", got_iou, iou->data, n, 1e-6f, 1e-6f);
        OD_CHECK(symmetric);
        free(got_footprint);
        free(got_iou);
    }
    od_tensor_free(boxes_a);
    od_tensor_free(boxes_b);
    od_tensor_free(footprint);
    od_tensor_free(iou);
    od_safetensors_free(st);
}

static void iou_known_cases(void)
{
    od_box unit = make_box(0, 0, 0, 1, 1, 1, 0);
    od_box turned = make_box(0, 0, 0, 1, 1, 1, PI / 4);
    /* Two unit squares, one turned 45 degrees, overlap in a regular octagon
     * of area 2 (sqrt 2 - 1), so the IoU is 1 / sqrt 2. */
    OD_CHECK(fabs(od_box_footprint_intersection(&unit, &turned) - 2.0 * (sqrt(2.0) - 1.0)) < 1e-12);
    OD_CHECK(fabs(od_box_iou_3d(&unit, &turned) - 1.0 / sqrt(2.0)) < 1e-12);

    od_box same = make_box(3, -2, 1, 2, 0.5, 0.7, 0.9);
    OD_CHECK(fabs(od_box_iou_3d(&same, &same) - 1.0) < 1e-12);

    od_box far = make_box(10, 0, 0, 1, 1, 1, 0.3);
    OD_CHECK(od_box_iou_3d(&unit, &far) == 0.0);

    /* half of a box's height overlaps an identical footprint: 0.5 / 1.5 */
    od_box raised = make_box(0, 0, 0.5, 1, 1, 1, 0);
    OD_CHECK(fabs(od_box_iou_3d(&unit, &raised) - 1.0 / 3.0) < 1e-12);

    /* a small box inside a large one: IoU is the volume ratio */
    od_box large = make_box(0, 0, 0, 4, 4, 4, 0.2), small = make_box(0.3, -0.2, 0.1, 1, 1, 1, 1.1);
    OD_CHECK(fabs(od_box_iou_3d(&large, &small) - 1.0 / 64.0) < 1e-12);

    /* zero-size and non-finite boxes give 0, never NaN */
    od_box empty = make_box(0, 0, 0, 0, 0, 0, 0);
    OD_CHECK(od_box_iou_3d(&empty, &empty) == 0.0);
    OD_CHECK(od_box_iou_3d(&empty, &unit) == 0.0);
    od_box flat = make_box(0, 0, 0, 1, 0, 1, 0);
    OD_CHECK(od_box_iou_3d(&flat, &unit) == 0.0);
    od_box broken = make_box(NAN, 0, 0, 1, 1, 1, 0);
    OD_CHECK(od_box_iou_3d(&broken, &unit) == 0.0);
}

/* Axis-aligned width and height of a point set turned by -angle: the
 * bounding rectangle's sides at that angle. */
static double area_at_angle(const double *points, int count, double angle)
{
    const double c = cos(angle), s = sin(angle);
    double min_u = INFINITY, max_u = -INFINITY, min_v = INFINITY, max_v = -INFINITY;
    for (int i = 0; i < count; i++) {
        double u = c * points[i * 2] + s * points[i * 2 + 1], v = -s * points[i * 2] + c * points[i * 2 + 1];
        min_u = fmin(min_u, u);
        max_u = fmax(max_u, u);
        min_v = fmin(min_v, v);
        max_v = fmax(max_v, v);
    }
    return (max_u - min_u) * (max_v - min_v);
}

/* Voxels (z 2..4) whose centres lie in a length x width rectangle turned by
 * angle about (cx, cy), in voxel units; returns the count. */
static int rotated_rectangle_voxels(double length, double width, double angle, double cx, double cy,
                                    int32_t *voxels, int capacity)
{
    const double c = cos(angle), s = sin(angle);
    int count = 0;
    for (int y = -40; y <= 40; y++)
        for (int x = -40; x <= 40; x++) {
            double dx = x - cx, dy = y - cy;
            double u = c * dx + s * dy, v = -s * dx + c * dy;
            if (fabs(u) > 0.5 * length || fabs(v) > 0.5 * width)
                continue;
            for (int z = 2; z <= 4 && count < capacity; z++) {
                voxels[count * 3] = x;
                voxels[count * 3 + 1] = y;
                voxels[count * 3 + 2] = z;
                count++;
            }
        }
    return count;
}

/* Rotated voxel rectangles: the fitted box contains every voxel corner, and
 * its area is the minimum over angles. A 0.01 degree brute-force search can
 * only be larger, by under 0.1 %. Its yaw and sides are close to the
 * rectangle the voxels were drawn from. */
static void fit_rotated_rectangles(void)
{
    const double cases[][5] = {
        /* length, width, angle (degrees), centre x, centre y */
        {30, 8, 20, 0.3, -0.2}, {24, 6, -35, 1.0, 2.5}, {40, 12, 60, 0, 0}, {20, 10, 89, -3, 4},
        {16, 5, -80, 0.5, 0.5}, {28, 4, 45, 0, 0},
    };
    const int case_count = (int)(sizeof cases / sizeof cases[0]);
    const int capacity = 81 * 81 * 3;
    int32_t *voxels = malloc((size_t)capacity * 3 * sizeof *voxels);
    double *corners = malloc((size_t)capacity * 8 * sizeof *corners);
    const double origin[3] = {0, 0, 0};
    for (int k = 0; k < case_count; k++) {
        const double angle = cases[k][2] * PI / 180.0;
        int count = rotated_rectangle_voxels(cases[k][0], cases[k][1], angle, cases[k][3], cases[k][4], voxels,
                                             capacity);
        od_box box;
        od_error err;
        OD_CHECK(od_box_fit_voxels(voxels, NULL, count, 0, origin, 1.0, &box, &err) == 0);

        int corner_count = 0, contained = 1;
        for (int i = 0; i < count; i++)
            for (int c = 0; c < 8; c++) {
                double corner[3] = {voxels[i * 3] + (c & 1 ? 0.5 : -0.5), voxels[i * 3 + 1] + (c & 2 ? 0.5 : -0.5),
                                    voxels[i * 3 + 2] + (c & 4 ? 0.5 : -0.5)};
                od_box grown = box;
                for (int a = 0; a < 3; a++)
                    grown.size[a] += 1e-9;
                contained &= od_box_contains(&grown, corner);
                if (c < 4) {
                    corners[corner_count * 2] = corner[0];
                    corners[corner_count * 2 + 1] = corner[1];
                    corner_count++;
                }
            }
        OD_CHECK(contained);

        double brute_force = INFINITY;
        for (int step = 0; step < 18000; step++)
            brute_force = fmin(brute_force, area_at_angle(corners, corner_count, step * 0.01 * PI / 180.0));
        const double area = box.size[0] * box.size[1];
        if (!(area <= brute_force + 1e-9 && brute_force <= area * 1.001))
            printf("  case %d: calipers area %.6f, brute force %.6f\n", k, area, brute_force);
        OD_CHECK(area <= brute_force + 1e-9);
        OD_CHECK(brute_force <= area * 1.001);

        /* the voxel staircase shifts the best angle by a few degrees at most
         * for these elongated shapes; the yaw is compared modulo pi */
        double yaw_error = fmod(fabs(box.yaw - angle), PI);
        yaw_error = fmin(yaw_error, PI - yaw_error);
        if (yaw_error > 4.0 * PI / 180.0 || fabs(box.size[0] - cases[k][0]) > 2.0 ||
            fabs(box.size[1] - cases[k][1]) > 2.0)
            printf("  case %d: yaw %.2f deg, size %.2f x %.2f\n", k, box.yaw * 180.0 / PI, box.size[0],
                   box.size[1]);
        OD_CHECK(yaw_error <= 4.0 * PI / 180.0);
        OD_CHECK(fabs(box.size[0] - cases[k][0]) <= 2.0);
        OD_CHECK(fabs(box.size[1] - cases[k][1]) <= 2.0);
        OD_CHECK(box.yaw >= -PI / 2 && box.yaw < PI / 2);
        OD_CHECK(fabs(box.size[2] - 3.0) < 1e-12);
        OD_CHECK(fabs(box.center[2] - 3.0) < 1e-12);
    }
    free(voxels);
    free(corners);
}

static void fit_axis_aligned_block(void)
{
    /* 7 x 3 x 4 voxels from (2, 5, 1), voxel size 0.25, origin (1, -1, 0.5) */
    int32_t voxels[7 * 3 * 4 * 3];
    int count = 0;
    for (int z = 1; z < 5; z++)
        for (int y = 5; y < 8; y++)
            for (int x = 2; x < 9; x++) {
                voxels[count * 3] = x;
                voxels[count * 3 + 1] = y;
                voxels[count * 3 + 2] = z;
                count++;
            }
    const double origin[3] = {1.0, -1.0, 0.5};
    od_box box;
    od_error err;
    OD_CHECK(od_box_fit_voxels(voxels, NULL, count, 0, origin, 0.25, &box, &err) == 0);
    OD_CHECK(fabs(box.size[0] - 7 * 0.25) < 1e-12);
    OD_CHECK(fabs(box.size[1] - 3 * 0.25) < 1e-12);
    OD_CHECK(fabs(box.size[2] - 4 * 0.25) < 1e-12);
    OD_CHECK(fabs(box.yaw) < 1e-12);
    OD_CHECK(fabs(box.center[0] - (1.0 + 5 * 0.25)) < 1e-12);
    OD_CHECK(fabs(box.center[1] - (-1.0 + 6 * 0.25)) < 1e-12);
    OD_CHECK(fabs(box.center[2] - (0.5 + 2.5 * 0.25)) < 1e-12);

    /* the same block swapped in x and y is long along y: yaw -pi/2 */
    for (int i = 0; i < count; i++) {
        int32_t swap = voxels[i * 3];
        voxels[i * 3] = voxels[i * 3 + 1];
        voxels[i * 3 + 1] = swap;
    }
    OD_CHECK(od_box_fit_voxels(voxels, NULL, count, 0, origin, 0.25, &box, &err) == 0);
    OD_CHECK(fabs(box.size[0] - 7 * 0.25) < 1e-12);
    OD_CHECK(fabs(box.size[1] - 3 * 0.25) < 1e-12);
    OD_CHECK(fabs(box.yaw + PI / 2) < 1e-12);
}

/* Voxels (i, i) for i = 0..9: the hull of their corners is a hexagon whose
 * minimum rectangle lies along the diagonal, 10 sqrt 2 by sqrt 2 (area 20,
 * against 100 axis-aligned). */
static void fit_diagonal_line(void)
{
    int32_t voxels[10 * 3];
    for (int i = 0; i < 10; i++) {
        voxels[i * 3] = i;
        voxels[i * 3 + 1] = i;
        voxels[i * 3 + 2] = 0;
    }
    const double origin[3] = {0, 0, 0};
    od_box box;
    od_error err;
    OD_CHECK(od_box_fit_voxels(voxels, NULL, 10, 0, origin, 1.0, &box, &err) == 0);
    OD_CHECK(fabs(box.size[0] - 10.0 * sqrt(2.0)) < 1e-9);
    OD_CHECK(fabs(box.size[1] - sqrt(2.0)) < 1e-9);
    OD_CHECK(fabs(box.yaw - PI / 4) < 1e-9);
    OD_CHECK(fabs(box.center[0] - 4.5) < 1e-9);
    OD_CHECK(fabs(box.center[1] - 4.5) < 1e-9);
}

/* Only voxels with the requested label count; a single voxel gives a cube
 * of side voxel_size and a square footprint yaw in [-pi/4, pi/4). */
static void fit_selects_cluster(void)
{
    const int32_t voxels[] = {0, 0, 0, 1, 0, 0, 50, 60, 7, 2, 0, 0};
    const int32_t labels[] = {0, 0, 1, 0};
    const double origin[3] = {0, 0, 0};
    od_box box;
    od_error err;
    OD_CHECK(od_box_fit_voxels(voxels, labels, 4, 1, origin, 0.5, &box, &err) == 0);
    OD_CHECK(fabs(box.center[0] - 25.0) < 1e-12);
    OD_CHECK(fabs(box.center[1] - 30.0) < 1e-12);
    OD_CHECK(fabs(box.center[2] - 3.5) < 1e-12);
    OD_CHECK(fabs(box.size[0] - 0.5) < 1e-12 && fabs(box.size[1] - 0.5) < 1e-12);
    OD_CHECK(fabs(box.size[2] - 0.5) < 1e-12);
    OD_CHECK(box.yaw >= -PI / 4 && box.yaw < PI / 4);

    OD_CHECK(od_box_fit_voxels(voxels, labels, 4, 0, origin, 0.5, &box, &err) == 0);
    OD_CHECK(fabs(box.size[0] - 1.5) < 1e-12 && fabs(box.size[1] - 0.5) < 1e-12);
    OD_CHECK(fabs(box.center[0] - 0.5) < 1e-12);

    /* rows far apart take the path that hulls every voxel's corners */
    const int32_t sparse[] = {0, 0, 0, 0, 100, 0, 1, 50, 0};
    OD_CHECK(od_box_fit_voxels(sparse, NULL, 3, 0, origin, 0.5, &box, &err) == 0);
    OD_CHECK(fabs(box.size[0] - 101 * 0.5) < 1e-9);
    OD_CHECK(fabs(box.size[1] - 2 * 0.5) < 0.02);
    OD_CHECK(fabs(box.center[1] - 25.0) < 1e-9);
}

static void fit_rejects_invalid_arguments(void)
{
    const int32_t voxels[] = {0, 0, 0};
    const int32_t labels[] = {0};
    const double origin[3] = {0, 0, 0};
    od_box box;
    od_error err;
    OD_CHECK(od_box_fit_voxels(voxels, labels, 1, 3, origin, 1.0, &box, &err) == -1);
    OD_CHECK(strstr(err.message, "no voxel has label 3") != NULL);
    OD_CHECK(od_box_fit_voxels(voxels, NULL, 0, 0, origin, 1.0, &box, &err) == -1);
    OD_CHECK(od_box_fit_voxels(voxels, NULL, 1, 0, origin, 0.0, &box, &err) == -1);
    OD_CHECK(strstr(err.message, "voxel_size") != NULL);
    OD_CHECK(od_box_fit_voxels(voxels, NULL, 1, 0, origin, NAN, &box, &err) == -1);
    OD_CHECK(od_box_fit_voxels(NULL, NULL, 1, 0, origin, 1.0, &box, &err) == -1);

    double center[2], size[2], yaw;
    OD_CHECK(od_min_area_rectangle(NULL, 0, center, size, &yaw, &err) == -1);
    const double point[2] = {1.0, 2.0};
    OD_CHECK(od_min_area_rectangle(point, 0, center, size, &yaw, &err) == -1);
    OD_CHECK(od_min_area_rectangle(point, 1, center, size, &yaw, &err) == 0);
    OD_CHECK(center[0] == 1.0 && center[1] == 2.0 && size[0] == 0.0 && size[1] == 0.0);
    const double segment[4] = {0.0, 0.0, 0.0, 2.0};
    OD_CHECK(od_min_area_rectangle(segment, 2, center, size, &yaw, &err) == 0);
    OD_CHECK(size[0] == 2.0 && size[1] == 0.0 && fabs(yaw + PI / 2) < 1e-12);
    OD_CHECK(center[0] == 0.0 && center[1] == 1.0);
}

int main(void)
{
    OD_RUN(iou_matches_reference);
    OD_RUN(iou_known_cases);
    OD_RUN(fit_rotated_rectangles);
    OD_RUN(fit_axis_aligned_block);
    OD_RUN(fit_diagonal_line);
    OD_RUN(fit_selects_cluster);
    OD_RUN(fit_rejects_invalid_arguments);
    return od_test_finish();
}
