/* od_box_fit_voxel_centres: the box of a voxel cluster's centres grown by
 * measured margins (geometry/obb.h), as the compare detector fits it. */
#include <math.h>
#include <stdint.h>

#include "geometry/obb.h"
#include "testlib.h"

static const double PI = 3.14159265358979323846;

/* A block of 6 x 4 x 3 voxels: centres span 5 x 3 voxels in the floor
 * plane and z indices 0 to 2. */
static void fit_block(void)
{
    int32_t voxels[6 * 4 * 3 * 3];
    int count = 0;
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 6; i++) {
                voxels[count * 3] = i;
                voxels[count * 3 + 1] = j;
                voxels[count * 3 + 2] = k;
                count++;
            }
    const double origin[3] = {1.0, 2.0, 0.25};
    od_box box;
    od_error err;
    OD_CHECK(od_box_fit_voxel_centres(voxels, NULL, count, 0, origin, 0.5, 0.25, 0.1, &box, &err) == 0);
    OD_CHECK(fabs(box.size[0] - 0.5 * 5.5) < 1e-12);
    OD_CHECK(fabs(box.size[1] - 0.5 * 3.5) < 1e-12);
    /* from the bottom face of layer 0 (z = 0) to layer 2's centre plus 0.1 voxel */
    OD_CHECK(fabs(box.size[2] - 0.5 * 2.6) < 1e-12);
    OD_CHECK(fabs(box.center[2] - (0.25 + 0.5 * (-0.5 + 2.1) / 2.0)) < 1e-12);
    OD_CHECK(fabs(box.center[0] - 2.25) < 1e-12 && fabs(box.center[1] - 2.75) < 1e-12);
    OD_CHECK(fabs(box.yaw) < 1e-12 || fabs(fabs(box.yaw) - PI) < 1e-12);

    /* Margins of one half give the box of the voxels' whole cubes in the
     * floor plane, as od_box_fit_voxels does for an axis-aligned block. */
    od_box cubes;
    OD_CHECK(od_box_fit_voxel_centres(voxels, NULL, count, 0, origin, 0.5, 0.5, 0.5, &box, &err) == 0);
    OD_CHECK(od_box_fit_voxels(voxels, NULL, count, 0, origin, 0.5, &cubes, &err) == 0);
    for (int a = 0; a < 3; a++) {
        OD_CHECK(fabs(box.size[a] - cubes.size[a]) < 1e-12);
        OD_CHECK(fabs(box.center[a] - cubes.center[a]) < 1e-12);
    }
}

/* A diagonal row of centres: the rectangle follows the row and is not
 * widened by the cubes' corners. */
static void fit_diagonal_row(void)
{
    int32_t voxels[5 * 3];
    for (int i = 0; i < 5; i++) {
        voxels[i * 3] = i;
        voxels[i * 3 + 1] = i;
        voxels[i * 3 + 2] = 0;
    }
    const double origin[3] = {0, 0, 0};
    od_box box;
    od_error err;
    OD_CHECK(od_box_fit_voxel_centres(voxels, NULL, 5, 0, origin, 1.0, 0.25, 0.0, &box, &err) == 0);
    OD_CHECK(fabs(box.size[0] - (4.0 * sqrt(2.0) + 0.5)) < 1e-9);
    OD_CHECK(fabs(box.size[1] - 0.5) < 1e-9);
    OD_CHECK(fabs(fabs(box.yaw) - PI / 4) < 1e-9);
}

static void fit_one_voxel_and_labels(void)
{
    const int32_t voxels[6] = {3, 4, 1, 7, 7, 7};
    const int32_t labels[2] = {2, 5};
    const double origin[3] = {0, 0, 0};
    od_box box;
    od_error err;
    OD_CHECK(od_box_fit_voxel_centres(voxels, labels, 2, 2, origin, 1.0, 0.3, 0.2, &box, &err) == 0);
    OD_CHECK(fabs(box.size[0] - 0.6) < 1e-12 && fabs(box.size[1] - 0.6) < 1e-12);
    OD_CHECK(fabs(box.size[2] - 0.7) < 1e-12);
    OD_CHECK(fabs(box.center[0] - 3.0) < 1e-12 && fabs(box.center[1] - 4.0) < 1e-12);
}

static void rejects_invalid_arguments(void)
{
    const int32_t voxels[3] = {0, 0, 0};
    const double origin[3] = {0, 0, 0};
    od_box box;
    od_error err;
    OD_CHECK(od_box_fit_voxel_centres(voxels, NULL, 1, 0, origin, 1.0, -0.5, 0.0, &box, &err) != 0);
    OD_CHECK(od_box_fit_voxel_centres(voxels, NULL, 1, 0, origin, 1.0, 0.0, NAN, &box, &err) != 0);
    OD_CHECK(od_box_fit_voxel_centres(voxels, NULL, 1, 0, origin, 0.0, 0.0, 0.0, &box, &err) != 0);
    OD_CHECK(od_box_fit_voxel_centres(voxels, NULL, 1, 0, NULL, 1.0, 0.0, 0.0, &box, &err) != 0);
    OD_CHECK(od_box_fit_voxel_centres(voxels, NULL, 1, 1, origin, 1.0, 0.0, 0.0, &box, &err) == 0);
    const int32_t labels[1] = {0};
    OD_CHECK(od_box_fit_voxel_centres(voxels, labels, 1, 1, origin, 1.0, 0.0, 0.0, &box, &err) != 0);
}

int main(void)
{
    OD_RUN(fit_block);
    OD_RUN(fit_diagonal_row);
    OD_RUN(fit_one_voxel_and_labels);
    OD_RUN(rejects_invalid_arguments);
    return od_test_finish();
}
