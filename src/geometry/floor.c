/* Floor removal; see floor.h. */
#include "geometry/floor.h"

int64_t od_floor_find_layer(const od_grid *grid, const uint8_t *occupied, double floor_z, double max_height,
                            double min_fraction)
{
    int64_t layer_size = grid->dims[0] * grid->dims[1];
    for (int64_t k = 0; k < grid->dims[2]; k++) {
        double centre = grid->origin[2] + ((double)k + 0.5) * grid->voxel_size;
        if (centre > floor_z + max_height)
            break;
        int64_t count = 0;
        for (int64_t v = k * layer_size; v < (k + 1) * layer_size; v++)
            count += occupied[v] != 0;
        if ((double)count >= min_fraction * (double)layer_size && count > 0)
            return k;
    }
    return -1;
}

int64_t od_floor_remove_below(const od_grid *grid, uint8_t *occupied, double z_top)
{
    int64_t layer_size = grid->dims[0] * grid->dims[1], cleared = 0;
    for (int64_t k = 0; k < grid->dims[2]; k++) {
        double centre = grid->origin[2] + ((double)k + 0.5) * grid->voxel_size;
        if (!(centre < z_top))
            break;
        for (int64_t v = k * layer_size; v < (k + 1) * layer_size; v++) {
            cleared += occupied[v] != 0;
            occupied[v] = 0;
        }
    }
    return cleared;
}
