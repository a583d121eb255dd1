/* Visual hull: occupancy of a voxel grid from object masks of posed views.
 *
 * A view sees a voxel when the voxel's centre lies in front of the camera
 * and projects inside the image ([-0.5, width - 0.5) x [-0.5, height - 0.5),
 * as od_camera_sees). The mask is then read at the nearest pixel, and the
 * view votes "inside" when that value exceeds 0.5. A voxel is occupied when
 * at least min_views views see it and at most floor(tolerance * seen) of
 * them vote "outside". Tolerance 0 is the classic hull: every view that
 * sees the voxel must have it inside its mask.
 *
 * The accumulator streams like geometry/lift.h: two counters per voxel,
 * one view at a time. Each voxel is updated by one thread, so the result is
 * the same for any thread count.
 *
 *     od_visual_hull *hull = od_visual_hull_new(&grid);
 *     for each view: od_visual_hull_add_view(hull, &camera, mask, width, height, &err);
 *     od_visual_hull_finish(hull, 0.0, 2, occupied, &err);
 *     od_visual_hull_free(hull); */
#ifndef ODDONE_GEOMETRY_VISUAL_HULL_H
#define ODDONE_GEOMETRY_VISUAL_HULL_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/camera.h"
#include "geometry/grid.h"

/* Default fraction of the views that see a voxel that may put it outside
 * their mask: none, the classic hull. Masks from a segmenter may need more. */
#define OD_VISUAL_HULL_DEFAULT_TOLERANCE 0.0

typedef struct od_visual_hull od_visual_hull;

/* Returns an empty hull on a copy of the grid, or NULL when the grid is
 * invalid or memory runs out. */
od_visual_hull *od_visual_hull_new(const od_grid *grid);
void od_visual_hull_free(od_visual_hull *hull);

/* Adds one view's mask. mask is (height, width), one channel, values
 * above 0.5 inside; its size must equal the camera's image size (the
 * camera projects into image pixels).
 * Fails on a NULL pointer or a size that differs from the camera's. */
int od_visual_hull_add_view(od_visual_hull *hull, const od_camera *camera, const float *mask, int width,
                            int height, od_error *err);

/* Writes occupied (D, H, W): 1 for occupied voxels, 0 otherwise, and, when
 * seen is not NULL, the number of views that see each voxel (D, H, W).
 * Fails when tolerance is not in [0, 1) or min_views < 1. */
int od_visual_hull_finish(const od_visual_hull *hull, double tolerance, int min_views, uint8_t *occupied,
                          int32_t *seen, od_error *err);

#endif
