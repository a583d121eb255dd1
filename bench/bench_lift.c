/* Lifting at the product's size: 5 views of 256 x 256 pixels, 32-channel
 * feature maps at stride 4 (64 x 64 cells), into the default 64 x 64 x 16
 * grid. Prints the time to add all 5 views and compute the mean, and that
 * time over 5 as the time per view. The cameras are on a circle 0.8 m from
 * the grid's centre, 45 degrees up, looking at the centre, at about the
 * distance of the release's cameras. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "core/mem.h"
#include "core/rng.h"
#include "geometry/grid.h"
#include "geometry/lift.h"

#define VIEWS 5
#define IMAGE 256
#define STRIDE 4
#define CELLS (IMAGE / STRIDE)
#define CHANNELS 32

typedef struct bench_data {
    od_grid grid;
    od_camera cameras[VIEWS];
    float *features; /* (VIEWS, CELLS, CELLS, CHANNELS) */
    float *mean;     /* (16, 64, 64, CHANNELS) */
    int32_t *count;  /* (16, 64, 64) */
    od_lift *lift;
} bench_data;

static void make_camera(int view, od_camera *camera)
{
    double angle = 2.0 * 3.14159265358979323846 * view / VIEWS, e = sqrt(0.5), distance = 0.8;
    double target[3] = {0.0, 0.0, 0.05};
    double c = cos(angle), s = sin(angle);
    double position[3] = {target[0] + distance * c * e, target[1] + distance * s * e, target[2] + distance * e};
    double right[3] = {-s, c, 0}, forward[3] = {-c * e, -s * e, -e};
    double down[3] = {forward[1] * right[2] - forward[2] * right[1], forward[2] * right[0] - forward[0] * right[2],
                      forward[0] * right[1] - forward[1] * right[0]};
    const double *rows[3] = {right, down, forward};
    memset(camera, 0, sizeof *camera);
    camera->width = IMAGE;
    camera->height = IMAGE;
    double K[9] = {280, 0, 127.5, 0, 280, 127.5, 0, 0, 1};
    memcpy(camera->K, K, sizeof K);
    for (int r = 0; r < 3; r++) {
        for (int q = 0; q < 3; q++)
            camera->world_to_camera[r * 4 + q] = rows[r][q];
        camera->world_to_camera[r * 4 + 3] =
            -(rows[r][0] * position[0] + rows[r][1] * position[1] + rows[r][2] * position[2]);
    }
    camera->world_to_camera[15] = 1.0;
}

static void run_lift(void *context)
{
    bench_data *d = context;
    od_lift_clear(d->lift);
    for (int v = 0; v < VIEWS; v++)
        od_lift_add_view(d->lift, &d->cameras[v], d->features + (int64_t)v * CELLS * CELLS * CHANNELS, CELLS, CELLS,
                         STRIDE, NULL);
    od_lift_finish(d->lift, d->mean, d->count, NULL);
}

int main(void)
{
    bench_data d;
    d.grid = od_grid_default();
    int64_t voxels = od_grid_voxel_count(&d.grid);
    d.features = od_alloc_floats((int64_t)VIEWS * CELLS * CELLS * CHANNELS);
    d.mean = od_alloc_floats(voxels * CHANNELS);
    d.count = calloc((size_t)voxels, sizeof *d.count);
    d.lift = od_lift_new(&d.grid, CHANNELS);
    if (!d.features || !d.mean || !d.count || !d.lift) {
        fprintf(stderr, "bench_lift: out of memory\n");
        return 1;
    }
    od_rng rng;
    od_rng_seed(&rng, 1);
    for (int64_t i = 0; i < (int64_t)VIEWS * CELLS * CELLS * CHANNELS; i++)
        d.features[i] = od_rng_normal(&rng);
    for (int v = 0; v < VIEWS; v++)
        make_camera(v, &d.cameras[v]);

    double ms = bench_median_ms(run_lift, &d, 3, 21);
    int64_t seen = 0;
    for (int64_t v = 0; v < voxels; v++)
        seen += d.count[v];
    /* Per seen voxel and view: 4 corners x (multiply + add) per channel. */
    double flops = (double)seen * CHANNELS * 8.0;
    bench_report("lift_5views_256px_stride4_c32", ms, flops);
    bench_report("lift_per_view_256px_stride4_c32", ms / VIEWS, flops / VIEWS);
    printf("# %.1f %% of voxel-view pairs seen\n", 100.0 * (double)seen / (double)(voxels * VIEWS));
    free(d.features);
    free(d.mean);
    free(d.count);
    od_lift_free(d.lift);
    return 0;
}
