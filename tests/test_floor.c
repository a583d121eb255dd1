/* Floor removal: the dense floor layer is found only where it lies and
 * when it is dense enough, and removal clears exactly the layers below a
 * height. */
#include <string.h>

#include "geometry/floor.h"
#include "testlib.h"

/* An 8 x 8 x 6 grid of 0.1 voxels from z = 0: layer 1 is 50 % full (a
 * floor), layer 3 contains a 2 x 2 object. */
static void fill_scene(const od_grid *grid, uint8_t *occupied)
{
    memset(occupied, 0, 8 * 8 * 6);
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 4; i++)
            occupied[od_grid_index(grid, i, j, 1)] = 1;
    for (int j = 3; j < 5; j++)
        for (int i = 3; i < 5; i++)
            occupied[od_grid_index(grid, i, j, 3)] = 1;
}

static void test_floor_find_layer(void)
{
    od_grid grid = {.origin = {0.0, 0.0, 0.0}, .voxel_size = 0.1, .dims = {8, 8, 6}};
    uint8_t occupied[8 * 8 * 6];
    fill_scene(&grid, occupied);
    OD_CHECK(od_floor_find_layer(&grid, occupied, 0.0, 0.3, 0.3) == 1);
    /* Denser than the layer is: no floor. */
    OD_CHECK(od_floor_find_layer(&grid, occupied, 0.0, 0.3, 0.6) == -1);
    /* Layer 1's centre (0.15) lies above a search height of 0.1. */
    OD_CHECK(od_floor_find_layer(&grid, occupied, 0.0, 0.1, 0.3) == -1);
    /* The object's layer is never dense enough. */
    memset(occupied, 0, sizeof occupied);
    occupied[od_grid_index(&grid, 3, 3, 3)] = 1;
    OD_CHECK(od_floor_find_layer(&grid, occupied, 0.0, 1.0, 0.01) == 3);
    OD_CHECK(od_floor_find_layer(&grid, occupied, 0.0, 1.0, 0.02) == -1);
}

static void test_floor_remove_below(void)
{
    od_grid grid = {.origin = {0.0, 0.0, 0.0}, .voxel_size = 0.1, .dims = {8, 8, 6}};
    uint8_t occupied[8 * 8 * 6];
    fill_scene(&grid, occupied);
    /* Centres below 0.2: layers 0 and 1, so the floor's 32 voxels. */
    OD_CHECK(od_floor_remove_below(&grid, occupied, 0.2) == 32);
    int remaining = 0;
    for (int v = 0; v < 8 * 8 * 6; v++)
        remaining += occupied[v];
    OD_CHECK(remaining == 4);
    OD_CHECK(occupied[od_grid_index(&grid, 3, 3, 3)] == 1);
    /* Nothing lies below z = 0. */
    OD_CHECK(od_floor_remove_below(&grid, occupied, 0.0) == 0);
    /* A height above the grid clears everything. */
    OD_CHECK(od_floor_remove_below(&grid, occupied, 10.0) == 4);
}

int main(void)
{
    OD_RUN(test_floor_find_layer);
    OD_RUN(test_floor_remove_below);
    return od_test_finish();
}
