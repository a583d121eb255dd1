/* Lifting: back-projects 2D feature maps of posed views into a voxel grid
 * and averages them over the views that see each voxel.
 *
 * A view's feature map is (fh, fw, C) channels-last, computed at a stride
 * s relative to the camera's image. Feature cell (r, q) summarises image
 * pixels [q s, (q + 1) s) x [r s, (r + 1) s), so its centre is image pixel
 * q s + (s - 1) / 2, with pixel centres at integers (geometry/camera.h).
 * The camera's intrinsics are therefore scaled to the feature map as
 *     fx' = fx / s,  cx' = (cx + 0.5) / s - 0.5  (likewise fy', cy'),
 * which is od_camera_resize's rule for a factor 1 / s. fh and fw need not
 * equal the image size over s (a network may pad or crop its output).
 *
 * A view sees voxel v when v's centre lies in front of the camera
 * (depth > OD_CAMERA_MIN_DEPTH) and projects to feature coordinates (u, w)
 * with 0 <= u <= fw - 1 and 0 <= w <= fh - 1, the region spanned by the
 * feature cells' centres. There the features are sampled bilinearly from
 * the four surrounding cells, which all lie inside the map. This equals
 * PyTorch's grid_sample(mode="bilinear", align_corners=True) at
 * (2u / (fw - 1) - 1, 2w / (fh - 1) - 1). The half cell along the map's
 * border is not used, so no sample mixes in padding.
 *
 * The accumulator streams: it keeps one running sum (voxels, C) and one
 * view count per voxel, so memory does not grow with the number of views.
 *
 *     od_lift *lift = od_lift_new(&grid, C);
 *     for each view: od_lift_add_view(lift, &camera, features, fh, fw, 4, &err);
 *     od_lift_finish(lift, mean, count, &err);
 *     od_lift_free(lift);
 *
 * Each voxel is computed by one thread from its own sum, with views added
 * in call order, so results are bit-identical for any thread count. */
#ifndef ODDONE_GEOMETRY_LIFT_H
#define ODDONE_GEOMETRY_LIFT_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/camera.h"
#include "geometry/grid.h"

typedef struct od_lift od_lift;

/* Returns an empty accumulator for `channels` feature channels on a copy of
 * the grid, or NULL when the grid is invalid, channels < 1 or memory runs
 * out. */
od_lift *od_lift_new(const od_grid *grid, int64_t channels);
void od_lift_free(od_lift *lift);

/* Zeroes the sums and counts, to lift another scene on the same grid. */
void od_lift_clear(od_lift *lift);

/* Writes the feature-map intrinsics for a stride: fx / s, fy / s,
 * (cx + 0.5) / s - 0.5, (cy + 0.5) / s - 0.5. K and K_scaled are row-major
 * 3x3 and may alias. */
void od_lift_scale_intrinsics(const double K[9], int stride, double K_scaled[9]);

/* Adds one view. features is (fh, fw, C) with C the accumulator's channels.
 * The camera's pose and K are used; its width and height are not (the
 * feature map's size is fh x fw).
 * Fails on a NULL pointer, fh or fw < 1, stride < 1, or a K whose scaled
 * focal lengths are not positive and finite. */
int od_lift_add_view(od_lift *lift, const od_camera *camera, const float *features, int64_t fh, int64_t fw,
                     int stride, od_error *err);

/* Returns the number of views added since creation or the last clear. */
int64_t od_lift_view_count(const od_lift *lift);

/* Writes the mean feature of every voxel over the views that see it, and
 * how many views see it. mean is (D, H, W, C), zero where no view sees the
 * voxel; count is (D, H, W). Either may be NULL. The accumulator is left as
 * it is, so more views may be added afterwards. Fails when both are NULL. */
int od_lift_finish(const od_lift *lift, float *mean, int32_t *count, od_error *err);

#endif
