/* Heat maps: where on each object the compare detector found a difference.
 * Each occupied voxel's difference (detect/compare.h) goes through a
 * colour map and is drawn over a view as the voxel's projected square,
 * the nearest voxel in front. Pixels that no scored voxel covers keep the
 * image's colour. */
#ifndef ODDONE_DETECT_HEAT_H
#define ODDONE_DETECT_HEAT_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/camera.h"
#include "geometry/grid.h"
#include "io/image.h"

/* Weight of the colour map over the image where a voxel is drawn. */
#define OD_HEAT_OPACITY 0.65f

/* Writes the colour of t in [0, 1] (clamped; NaN as 0) on a map from dark
 * blue (0) through cyan, green and yellow to red (1). */
void od_heat_color(float t, float rgb[3]);

/* Draws the voxels (count, 3) as (x, y, z) grid indices with their values
 * (count) onto image, an RGB image of the camera's size: a value v maps to
 * (v - low) / (high - low) on the colour map. Voxels whose value is NaN are
 * skipped. Fails on a NULL buffer, an image that is not RGB or not the
 * camera's size, or high <= low. */
int od_heat_draw(od_image *image, const od_camera *camera, const od_grid *grid, const int32_t *voxels,
                 const float *values, int64_t count, float low, float high, od_error *err);

#endif
