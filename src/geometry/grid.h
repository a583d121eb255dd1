/* Voxel grids: the box of world space that lifting, occupancy and the
 * learned model's volumes cover.
 *
 * A grid has an origin (its minimum corner, world units), a cubic voxel
 * size and dims (X, Y, Z) along world x, y and z. Voxel (i, j, k) spans
 * origin + [i, i + 1) * size along x (likewise j along y and k along z),
 * so its centre is origin + (i + 0.5) * size.
 *
 * Volumes on a grid are stored channels-last as (Z, Y, X, C), that is
 * (D, H, W, C) with D along world z, the layout of nn/trilinear.h. The
 * voxel (i, j, k) is element ((k * Y + j) * X + i) * C + c.
 *
 * Continuous voxel coordinates follow nn/trilinear.h: voxel centres sit at
 * integers, so a world point p has coordinate (p - origin) / size - 0.5
 * along each axis. */
#ifndef ODDONE_GEOMETRY_GRID_H
#define ODDONE_GEOMETRY_GRID_H

#include <stdint.h>

#include "core/error.h"

/* The product's default grid: x and y in [-0.64, 0.64] m, z in
 * [0, 0.32] m (the scene loader's default region of interest), 2 cm
 * voxels, so 64 x 64 x 16 voxels. */
#define OD_GRID_DEFAULT_VOXEL_SIZE 0.02

/* Maximum voxel count accepted (2^30), so that voxel x channel products
 * stay far from int64 overflow. */
#define OD_GRID_MAX_VOXELS ((int64_t)1 << 30)

typedef struct od_grid {
    double origin[3];  /* minimum corner (x, y, z), world units */
    double voxel_size; /* edge of a cubic voxel, world units */
    int64_t dims[3];   /* voxel counts along x, y, z: (W, H, D) */
} od_grid;

/* Returns the default grid described above. */
od_grid od_grid_default(void);

/* Returns a grid that covers [min, max] with voxels of edge voxel_size:
 * dims = ceil((max - min) / voxel_size - 1e-9), origin = min. Fails on a
 * non-positive size or extent, or more than OD_GRID_MAX_VOXELS voxels. */
int od_grid_from_bounds(const double min[3], const double max[3], double voxel_size, od_grid *out,
                        od_error *err);

/* Checks that the origin is finite, the voxel size positive and finite and
 * the dims positive with at most OD_GRID_MAX_VOXELS voxels. */
int od_grid_validate(const od_grid *grid, od_error *err);

/* Returns X * Y * Z. */
int64_t od_grid_voxel_count(const od_grid *grid);

/* Returns the linear index ((k * Y + j) * X + i) of voxel (i, j, k). */
int64_t od_grid_index(const od_grid *grid, int64_t i, int64_t j, int64_t k);

/* Writes the world centre of voxel (i, j, k): origin + (index + 0.5) * size. */
void od_grid_voxel_center(const od_grid *grid, int64_t i, int64_t j, int64_t k, double center[3]);

/* Writes the continuous voxel coordinates (x, y, z) of a world point, with
 * voxel centres at integers as nn/trilinear.h expects:
 * (point - origin) / size - 0.5. */
void od_grid_world_to_voxel(const od_grid *grid, const double point[3], double voxel[3]);

/* Writes the world point of continuous voxel coordinates, the inverse of
 * od_grid_world_to_voxel. */
void od_grid_voxel_to_world(const od_grid *grid, const double voxel[3], double point[3]);

#endif
