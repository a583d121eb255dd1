/* Lifting at a list of voxels: geometry/lift.h's rule (bilinear samples of
 * each view's feature map at the voxel centre's projection, averaged over
 * the views that see it) for the occupied voxels only. The compare
 * detector finds occupancy first, and the occupied voxels are about 1 % of
 * the grid, so lifting only them saves most of the work and the
 * (voxels, C) volume. Each voxel's sum is updated by one thread with views
 * added in call order, and the arithmetic is od_lift's, so results equal
 * od_lift's at the same voxels bit for bit.
 *
 *     od_voxel_lift *lift = od_voxel_lift_new(&grid, voxels, count, C);
 *     for each view: od_voxel_lift_add_view(lift, &camera, features, fh, fw, stride, &err);
 *     od_voxel_lift_finish(lift, mean, views_per_voxel, &err);
 *     od_voxel_lift_free(lift); */
#ifndef ODDONE_DETECT_VOXEL_LIFT_H
#define ODDONE_DETECT_VOXEL_LIFT_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/camera.h"
#include "geometry/grid.h"

typedef struct od_voxel_lift od_voxel_lift;

/* Returns an empty accumulator for the voxels (count, 3), (x, y, z) grid
 * indices that are copied, and `channels` channels. Returns NULL when the
 * grid is invalid, count < 0, channels < 1 or memory runs out. */
od_voxel_lift *od_voxel_lift_new(const od_grid *grid, const int32_t *voxels, int64_t count, int64_t channels);
void od_voxel_lift_free(od_voxel_lift *lift);

/* Adds one view's feature map (fh, fw, C), as od_lift_add_view does, with
 * the same failures. */
int od_voxel_lift_add_view(od_voxel_lift *lift, const od_camera *camera, const float *features, int64_t fh,
                           int64_t fw, int stride, od_error *err);

/* Writes mean (count, C), zero where no view sees the voxel, and the
 * views that see each voxel (count). Either may be NULL. */
int od_voxel_lift_finish(const od_voxel_lift *lift, float *mean, int32_t *views, od_error *err);

#endif
