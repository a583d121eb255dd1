/* Volume rendering at the training step's sizes: 5 views of the default
 * 64 x 64 x 16 grid, 64 samples per ray inside the grid, a raw density
 * volume and a feature volume of C = 3 (colour) or C = 64 (teacher
 * features), rendered at 32 x 32 and (colour) 128 x 128. Forward is
 * sampling and compositing; forward + backward adds the gradients into
 * both volumes, from losses on the rendered features and the opacity.
 * Also the ray sampling itself and RoI pooling of 7 boxes to 8 x 8 x 8
 * crops of 64 channels. bench/torch_render.py prints the same names.
 *
 * The cameras are those of the product's scenes: 256 x 256 images with
 * fx = fy = 213.33 and the principal point at the centre, 0.8 m from the
 * grid's centre at 30 degrees elevation, 72 degrees apart. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/mem.h"
#include "core/rng.h"
#include "geometry/box.h"
#include "geometry/rays.h"
#include "nn/render.h"
#include "nn/roi_pool.h"

#define PI 3.14159265358979323846
#define VIEWS 5
#define SAMPLES 64
#define IMAGE_SIDE 256
#define FOCAL 213.33
#define DISTANCE 0.8
#define ELEVATION_DEGREES 30.0
#define BOXES 7
#define FEATURE_CHANNELS 64

typedef struct render_case {
    int side;
    int64_t C, R;
    float *density_volume, *feature_volume, *points, *delta;
    float *feature, *opacity, *samples;
    float *d_feature, *d_opacity, *d_density_volume, *d_feature_volume;
} render_case;

static const od_grid *bench_grid(void)
{
    static od_grid grid;
    grid = od_grid_default();
    return &grid;
}

static void fail(const char *operation, const od_error *err)
{
    fprintf(stderr, "bench_render: %s failed: %s\n", operation, err->message);
    exit(1);
}

/* Writes the camera of view v; torch_render.py builds the same. */
static void view_camera(int v, od_camera *camera)
{
    const double centre = (IMAGE_SIDE - 1) / 2.0;
    *camera = (od_camera){.width = IMAGE_SIDE,
                          .height = IMAGE_SIDE,
                          .K = {FOCAL, 0, centre, 0, FOCAL, centre, 0, 0, 1}};
    const double azimuth = 2.0 * PI * v / VIEWS, elevation = ELEVATION_DEGREES * PI / 180.0;
    const double target[3] = {0.0, 0.0, 0.16};
    const double eye[3] = {target[0] + DISTANCE * cos(elevation) * cos(azimuth),
                           target[1] + DISTANCE * cos(elevation) * sin(azimuth),
                           target[2] + DISTANCE * sin(elevation)};
    od_camera_look_at(camera, eye, target);
}

static void sample_views(int side, float *points, float *delta)
{
    const int64_t per_view = (int64_t)side * side * SAMPLES;
    for (int v = 0; v < VIEWS; v++) {
        od_camera camera;
        view_camera(v, &camera);
        od_error err;
        if (od_rays_sample(&camera, side, side, bench_grid(), SAMPLES, NULL,
                           points + v * per_view * 3, delta + v * per_view, &err) != 0)
            fail("rays", &err);
    }
}

static void rays_body(void *context)
{
    render_case *c = context;
    sample_views(c->side, c->points, c->delta);
}

static void render_case_init(render_case *c, int side, int64_t C, od_rng *rng)
{
    const od_grid *grid = bench_grid();
    const int64_t voxels = od_grid_voxel_count(grid);
    c->side = side;
    c->C = C;
    c->R = (int64_t)VIEWS * side * side;
    const int64_t P = c->R * SAMPLES;
    c->density_volume = od_alloc_floats(voxels);
    c->feature_volume = od_alloc_floats(voxels * C);
    c->points = od_alloc_floats(P * 3);
    c->delta = od_alloc_floats(P);
    c->feature = od_alloc_floats(c->R * C);
    c->opacity = od_alloc_floats(c->R);
    c->samples = od_alloc_floats(P * (1 + C));
    c->d_feature = od_alloc_floats(c->R * C);
    c->d_opacity = od_alloc_floats(c->R);
    c->d_density_volume = od_alloc_floats(voxels);
    c->d_feature_volume = od_alloc_floats(voxels * C);
    od_rng_fill_normal(rng, c->density_volume, voxels, -1.0f, 2.0f);
    od_rng_fill_normal(rng, c->feature_volume, voxels * C, 0.0f, 1.0f);
    od_rng_fill_normal(rng, c->d_feature, c->R * C, 0.0f, 1.0f);
    od_rng_fill_normal(rng, c->d_opacity, c->R, 0.0f, 1.0f);
    sample_views(side, c->points, c->delta);
}

static void render_case_free(render_case *c)
{
    float *buffers[] = {c->density_volume, c->feature_volume, c->points, c->delta,
                        c->feature, c->opacity, c->samples,
                        c->d_feature, c->d_opacity, c->d_density_volume, c->d_feature_volume};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        od_free(buffers[i]);
}

static void forward(void *context)
{
    render_case *c = context;
    const od_grid *g = bench_grid();
    od_error err;
    if (od_render_forward(c->feature, c->opacity, c->samples, c->density_volume, c->feature_volume, c->points, c->delta, g->dims[2],
                          g->dims[1], g->dims[0], c->C, c->R, SAMPLES, &err) != 0)
        fail("render forward", &err);
}

static void forward_backward(void *context)
{
    render_case *c = context;
    const od_grid *g = bench_grid();
    forward(c);
    od_error err;
    if (od_render_backward(c->d_density_volume, c->d_feature_volume, c->d_feature, c->d_opacity,
                           c->samples, c->points, c->delta, 1,
                           g->dims[2], g->dims[1], g->dims[0], c->C, c->R, SAMPLES, &err) != 0)
        fail("render backward", &err);
}

typedef struct roi_case {
    od_box boxes[BOXES];
    float *volume, *occupancy, *crops, *mask, *d_crops, *d_volume;
} roi_case;

static void roi_forward(void *context)
{
    roi_case *c = context;
    od_error err;
    if (od_roi_pool_forward(c->crops, c->mask, c->volume, c->occupancy, 0.5f, 1, c->boxes, BOXES,
                            bench_grid(), OD_ROI_CELLS, FEATURE_CHANNELS, &err) != 0)
        fail("roi pool forward", &err);
}

static void roi_forward_backward(void *context)
{
    roi_case *c = context;
    roi_forward(c);
    od_error err;
    if (od_roi_pool_backward(c->d_volume, c->d_crops, c->mask, c->boxes, BOXES, bench_grid(),
                             OD_ROI_CELLS, FEATURE_CHANNELS, &err) != 0)
        fail("roi pool backward", &err);
}

static void bench_roi(od_rng *rng)
{
    const od_grid *grid = bench_grid();
    const int64_t voxels = od_grid_voxel_count(grid);
    const int64_t cells = (int64_t)BOXES * OD_ROI_CELLS * OD_ROI_CELLS * OD_ROI_CELLS;
    roi_case c = {.volume = od_alloc_floats(voxels * FEATURE_CHANNELS),
                  .occupancy = od_alloc_floats(voxels),
                  .crops = od_alloc_floats(cells * FEATURE_CHANNELS),
                  .mask = od_alloc_floats(cells),
                  .d_crops = od_alloc_floats(cells * FEATURE_CHANNELS),
                  .d_volume = od_alloc_floats(voxels * FEATURE_CHANNELS)};
    od_rng_fill_normal(rng, c.volume, voxels * FEATURE_CHANNELS, 0.0f, 1.0f);
    od_rng_fill_uniform(rng, c.occupancy, voxels, 0.0f, 1.0f);
    od_rng_fill_normal(rng, c.d_crops, cells * FEATURE_CHANNELS, 0.0f, 1.0f);
    /* Objects of 6 to 12 cm on a circle of 0.35 m, padded and made cubic
     * as the release crops them. */
    for (int b = 0; b < BOXES; b++) {
        const double angle = 2.0 * PI * b / BOXES;
        const od_box box = {.center = {0.35 * cos(angle), 0.35 * sin(angle), 0.04},
                            .size = {0.06 + 0.01 * b, 0.08, 0.08},
                            .yaw = 0.4 * b};
        od_roi_box_pad_cubic(&box, 2.0, grid, &c.boxes[b]);
    }
    bench_report("roi_pool_7x8x8x8_c64_fwd", bench_median_ms(roi_forward, &c, 3, 20), 0);
    bench_report("roi_pool_7x8x8x8_c64_fwdbwd", bench_median_ms(roi_forward_backward, &c, 3, 20),
                 0);
    od_free(c.volume);
    od_free(c.occupancy);
    od_free(c.crops);
    od_free(c.mask);
    od_free(c.d_crops);
    od_free(c.d_volume);
}

int main(void)
{
    od_rng rng;
    od_rng_seed(&rng, 1);
    const struct {
        int side;
        int64_t C;
    } cases[] = {{32, 3}, {32, FEATURE_CHANNELS}, {128, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        render_case c;
        render_case_init(&c, cases[i].side, cases[i].C, &rng);
        char name[96];
        if (i != 1) {
            snprintf(name, sizeof name, "rays_5x%dx%d_s64", c.side, c.side);
            bench_report(name, bench_median_ms(rays_body, &c, 2, 10), 0);
        }
        snprintf(name, sizeof name, "render_5x%dx%d_s64_c%lld_fwd", c.side, c.side,
                 (long long)c.C);
        bench_report(name, bench_median_ms(forward, &c, 2, 10), 0);
        snprintf(name, sizeof name, "render_5x%dx%d_s64_c%lld_fwdbwd", c.side, c.side,
                 (long long)c.C);
        bench_report(name, bench_median_ms(forward_backward, &c, 2, 10), 0);
        render_case_free(&c);
    }
    bench_roi(&rng);
    return 0;
}
