/* Localization from a raw density on a 32 x 32 x 8 grid of 2 cm voxels.
 * Blobs of known extent give one box each, and noise and small clusters
 * are dropped. A dense floor layer is cleared, objects at the grid's edge
 * are truncated, and bad input fails cleanly. */
#include <math.h>
#include <string.h>

#include "geometry/grid.h"
#include "model/localize.h"
#include "testlib.h"

#define X 32
#define Y 32
#define Z 8

/* Raw densities far below and above the threshold of 0.5 on softplus. */
#define EMPTY (-10.0f)
#define FULL 5.0f

static od_grid test_grid(void)
{
    od_grid grid = {.origin = {-0.32, -0.32, 0.0}, .voxel_size = 0.02, .dims = {X, Y, Z}};
    return grid;
}

static void fill_block(float *density, const od_grid *grid, int x0, int x1, int y0, int y1, int z0, int z1,
                       float value)
{
    for (int k = z0; k < z1; k++)
        for (int j = y0; j < y1; j++)
            for (int i = x0; i < x1; i++)
                density[od_grid_index(grid, i, j, k)] = value;
}

static void fill_empty(float *density)
{
    for (int v = 0; v < X * Y * Z; v++)
        density[v] = EMPTY;
}

/* Voxel index i's centre along an axis starting at origin. */
static double centre(double origin, int i)
{
    return origin + (i + 0.5) * 0.02;
}

static void test_localize_two_blobs(void)
{
    od_grid grid = test_grid();
    static float density[X * Y * Z];
    fill_empty(density);
    fill_block(density, &grid, 4, 10, 4, 8, 0, 4, FULL);    /* 6 x 4 x 4 on the floor */
    fill_block(density, &grid, 20, 24, 16, 26, 1, 5, FULL); /* 4 x 10 x 4, one layer up */
    fill_block(density, &grid, 14, 15, 28, 29, 3, 4, FULL); /* one voxel: DBSCAN noise */
    fill_block(density, &grid, 26, 28, 4, 6, 0, 2, FULL);   /* 8 voxels: under a quarter of 96 */

    od_localize_options options = od_localize_options_default(0.5);
    od_localization result;
    od_error err = {0};
    int status = od_localize(density, &grid, &options, &result, &err);
    OD_CHECK(status == 0);
    if (status != 0)
        return;
    OD_CHECK(result.occupied_count == 96 + 160 + 1 + 8);
    OD_CHECK(result.object_count == 2);
    OD_CHECK(result.dropped_clusters == 1);
    OD_CHECK(result.floor_layer == -1);
    if (result.object_count != 2) {
        od_localization_free(&result);
        return;
    }
    OD_CHECK(result.voxel_counts[0] == 96);
    OD_CHECK(result.voxel_counts[1] == 160);
    OD_CHECK(!result.truncated[0]);
    OD_CHECK(!result.truncated[1]);

    /* Object 0: centres x 4..9, y 4..7, plus a quarter voxel on each side;
     * from the floor to the top centre plus 0.02 voxel. */
    const od_box *a = &result.boxes[0];
    double margin = 0.25 * 0.02;
    OD_CHECK(fabs(a->center[0] - 0.5 * (centre(-0.32, 4) + centre(-0.32, 9))) < 1e-9);
    OD_CHECK(fabs(a->center[1] - 0.5 * (centre(-0.32, 4) + centre(-0.32, 7))) < 1e-9);
    OD_CHECK(fabs(a->size[0] - (5 * 0.02 + 2 * margin)) < 1e-9);
    OD_CHECK(fabs(a->size[1] - (3 * 0.02 + 2 * margin)) < 1e-9);
    OD_CHECK(fabs(a->size[2] - (centre(0.0, 3) + 0.02 * 0.02)) < 1e-9);
    OD_CHECK(fabs(a->center[2] - 0.5 * a->size[2]) < 1e-9);
    OD_CHECK(fabs(a->yaw) < 1e-9);

    /* Object 1 starts one layer up but reaches down to the floor; its long
     * side runs along y. */
    const od_box *b = &result.boxes[1];
    OD_CHECK(fabs(b->size[0] - (9 * 0.02 + 2 * margin)) < 1e-9);
    OD_CHECK(fabs(b->size[1] - (3 * 0.02 + 2 * margin)) < 1e-9);
    OD_CHECK(fabs(b->center[2] - 0.5 * b->size[2]) < 1e-9);
    OD_CHECK(fabs(b->size[2] - (centre(0.0, 4) + 0.02 * 0.02)) < 1e-9);
    OD_CHECK(fabs(fabs(b->yaw) - acos(0.0)) < 1e-9);

    /* Voxels come in (z, y, x) order with their labels. */
    OD_CHECK(result.voxels[0] == 4 && result.voxels[1] == 4 && result.voxels[2] == 0);
    OD_CHECK(result.labels[0] == 0);
    int noise = 0;
    for (int64_t q = 0; q < result.occupied_count; q++)
        noise += result.labels[q] < 0;
    OD_CHECK(noise == 9);
    od_localization_free(&result);
}

static void test_localize_threshold_on_softplus(void)
{
    od_grid grid = test_grid();
    static float density[X * Y * Z];
    fill_empty(density);
    /* softplus(x) = 0.5 at x = log(e^0.5 - 1) = -0.4328: just above passes,
     * just below does not. */
    double edge = log(exp(0.5) - 1.0);
    fill_block(density, &grid, 4, 8, 4, 8, 0, 4, (float)(edge + 1e-3));
    fill_block(density, &grid, 20, 24, 20, 24, 0, 4, (float)(edge - 1e-3));
    od_localize_options options = od_localize_options_default(0.5);
    od_localization result;
    od_error err = {0};
    OD_CHECK(od_localize(density, &grid, &options, &result, &err) == 0);
    OD_CHECK(result.occupied_count == 64);
    OD_CHECK(result.object_count == 1);
    od_localization_free(&result);
}

static void test_localize_floor_and_edge(void)
{
    od_grid grid = test_grid();
    static float density[X * Y * Z];
    fill_empty(density);
    fill_block(density, &grid, 0, X, 0, Y, 0, 1, FULL);      /* a dense floor layer */
    fill_block(density, &grid, 0, 4, 10, 16, 1, 5, FULL);    /* touches x = 0 */
    fill_block(density, &grid, 12, 18, 12, 18, 1, 5, FULL);  /* inside */
    od_localize_options options = od_localize_options_default(0.5);
    od_localization result;
    od_error err = {0};
    OD_CHECK(od_localize(density, &grid, &options, &result, &err) == 0);
    OD_CHECK(result.floor_layer == 0);
    OD_CHECK(result.occupied_count == 96 + 144);
    OD_CHECK(result.object_count == 2);
    if (result.object_count == 2) {
        OD_CHECK(result.truncated[0] == 1);
        OD_CHECK(result.truncated[1] == 0);
        OD_CHECK(fabs(result.boxes[1].center[2] - 0.5 * result.boxes[1].size[2]) < 1e-9);
    }
    od_localization_free(&result);
}

static void test_localize_empty_volume(void)
{
    od_grid grid = test_grid();
    static float density[X * Y * Z];
    fill_empty(density);
    od_localize_options options = od_localize_options_default(0.5);
    od_localization result;
    od_error err = {0};
    OD_CHECK(od_localize(density, &grid, &options, &result, &err) == 0);
    OD_CHECK(result.occupied_count == 0);
    OD_CHECK(result.object_count == 0);
    od_localization_free(&result);
}

static void test_localize_bad_input(void)
{
    od_grid grid = test_grid();
    static float density[X * Y * Z];
    fill_empty(density);
    od_localize_options options = od_localize_options_default(0.5);
    od_localization result;
    od_error err = {0};

    density[od_grid_index(&grid, 3, 2, 1)] = NAN;
    OD_CHECK(od_localize(density, &grid, &options, &result, &err) == -1);
    OD_CHECK(strstr(err.message, "(x 3, y 2, z 1)") != NULL);
    OD_CHECK(result.object_count == 0 && result.boxes == NULL);
    density[od_grid_index(&grid, 3, 2, 1)] = EMPTY;

    options.density_threshold = 0.0;
    OD_CHECK(od_localize(density, &grid, &options, &result, &err) == -1);
    OD_CHECK(strstr(err.message, "density threshold") != NULL);

    options = od_localize_options_default(0.5);
    options.eps = 0.0;
    OD_CHECK(od_localize(density, &grid, &options, &result, &err) == -1);
    OD_CHECK(strstr(err.message, "eps") != NULL);

    options = od_localize_options_default(0.5);
    options.min_object_fraction = 1.5;
    OD_CHECK(od_localize(density, &grid, &options, &result, &err) == -1);

    options = od_localize_options_default(0.5);
    od_grid bad = grid;
    bad.voxel_size = 0.0;
    OD_CHECK(od_localize(density, &bad, &options, &result, &err) == -1);
    OD_CHECK(od_localize(NULL, &grid, &options, &result, &err) == -1);
    od_localization_free(&result);
}

int main(void)
{
    OD_RUN(test_localize_two_blobs);
    OD_RUN(test_localize_threshold_on_softplus);
    OD_RUN(test_localize_floor_and_edge);
    OD_RUN(test_localize_empty_volume);
    OD_RUN(test_localize_bad_input);
    return od_test_finish();
}
