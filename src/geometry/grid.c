#include "geometry/grid.h"

#include <math.h>

od_grid od_grid_default(void)
{
    od_grid grid;
    grid.origin[0] = -0.64;
    grid.origin[1] = -0.64;
    grid.origin[2] = 0.0;
    grid.voxel_size = OD_GRID_DEFAULT_VOXEL_SIZE;
    grid.dims[0] = 64;
    grid.dims[1] = 64;
    grid.dims[2] = 16;
    return grid;
}

int od_grid_validate(const od_grid *grid, od_error *err)
{
    if (!grid)
        return od_fail(err, "grid: NULL grid");
    for (int a = 0; a < 3; a++)
        if (!isfinite(grid->origin[a]))
            return od_fail(err, "grid: origin[%d] is not finite", a);
    if (!isfinite(grid->voxel_size) || !(grid->voxel_size > 0.0))
        return od_fail(err, "grid: voxel size %g must be positive and finite", grid->voxel_size);
    int64_t total = 1;
    for (int a = 0; a < 3; a++) {
        if (grid->dims[a] < 1)
            return od_fail(err, "grid: dims (%lld, %lld, %lld) must be positive", (long long)grid->dims[0],
                           (long long)grid->dims[1], (long long)grid->dims[2]);
        if (grid->dims[a] > OD_GRID_MAX_VOXELS || total > OD_GRID_MAX_VOXELS / grid->dims[a])
            return od_fail(err, "grid: dims (%lld, %lld, %lld) exceed %lld voxels", (long long)grid->dims[0],
                           (long long)grid->dims[1], (long long)grid->dims[2], (long long)OD_GRID_MAX_VOXELS);
        total *= grid->dims[a];
    }
    return 0;
}

int od_grid_from_bounds(const double min[3], const double max[3], double voxel_size, od_grid *out,
                        od_error *err)
{
    if (!min || !max || !out)
        return od_fail(err, "grid: NULL argument");
    if (!isfinite(voxel_size) || !(voxel_size > 0.0))
        return od_fail(err, "grid: voxel size %g must be positive and finite", voxel_size);
    od_grid grid;
    grid.voxel_size = voxel_size;
    for (int a = 0; a < 3; a++) {
        double extent = max[a] - min[a];
        if (!isfinite(min[a]) || !isfinite(max[a]) || !(extent > 0.0))
            return od_fail(err, "grid: bounds [%g, %g] on axis %d must be finite and increasing", min[a], max[a], a);
        /* The 1e-9 keeps an extent that is a whole number of voxels up to
         * rounding (1.28 / 0.02) from gaining one voxel. */
        double count = ceil(extent / voxel_size - 1e-9);
        if (count > (double)OD_GRID_MAX_VOXELS)
            return od_fail(err, "grid: %g voxels on axis %d exceed %lld", count, a, (long long)OD_GRID_MAX_VOXELS);
        grid.origin[a] = min[a];
        grid.dims[a] = count < 1.0 ? 1 : (int64_t)count;
    }
    if (od_grid_validate(&grid, err) != 0)
        return -1;
    *out = grid;
    return 0;
}

int64_t od_grid_voxel_count(const od_grid *grid)
{
    return grid->dims[0] * grid->dims[1] * grid->dims[2];
}

int64_t od_grid_index(const od_grid *grid, int64_t i, int64_t j, int64_t k)
{
    return (k * grid->dims[1] + j) * grid->dims[0] + i;
}

void od_grid_voxel_center(const od_grid *grid, int64_t i, int64_t j, int64_t k, double center[3])
{
    center[0] = grid->origin[0] + ((double)i + 0.5) * grid->voxel_size;
    center[1] = grid->origin[1] + ((double)j + 0.5) * grid->voxel_size;
    center[2] = grid->origin[2] + ((double)k + 0.5) * grid->voxel_size;
}

void od_grid_world_to_voxel(const od_grid *grid, const double point[3], double voxel[3])
{
    for (int a = 0; a < 3; a++)
        voxel[a] = (point[a] - grid->origin[a]) / grid->voxel_size - 0.5;
}

void od_grid_voxel_to_world(const od_grid *grid, const double voxel[3], double point[3])
{
    for (int a = 0; a < 3; a++)
        point[a] = grid->origin[a] + (voxel[a] + 0.5) * grid->voxel_size;
}
