/* Floor removal for occupancy that marks the floor occupied (colour
 * consistency, geometry/color_consistency.h). The floor is the plane
 * z = floor_z of the scene's world (z = 0 in the release format and in
 * captures after the loader's floor estimate), or, when the occupancy
 * itself shows one, the dominant plane: a low layer of the grid that is
 * mostly occupied, which no tabletop object fills. */
#ifndef ODDONE_GEOMETRY_FLOOR_H
#define ODDONE_GEOMETRY_FLOOR_H

#include <stdint.h>

#include "geometry/grid.h"

/* Fraction of a layer's voxels that must be occupied for the layer to be
 * taken as the floor plane. */
#define OD_FLOOR_DEFAULT_LAYER_FRACTION 0.3

/* Returns the lowest z layer whose centre lies at most max_height above
 * floor_z and in which at least min_fraction of the voxels are occupied,
 * or -1 when there is none. occupied is (D, H, W). */
int64_t od_floor_find_layer(const od_grid *grid, const uint8_t *occupied, double floor_z, double max_height,
                            double min_fraction);

/* Clears every occupied voxel whose centre lies below z_top (world
 * units). Returns the number cleared. */
int64_t od_floor_remove_below(const od_grid *grid, uint8_t *occupied, double z_top);

#endif
