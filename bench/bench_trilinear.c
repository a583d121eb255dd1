/* Trilinear sampling at the renderer's size: a (1, 16, 64, 64, 32)
 * feature volume sampled by 5 views x 32 x 32 rays x 64 samples = 327680
 * points, forward and forward + backward (into the volume and the points).
 * bench/torch_trilinear.py prints the same names. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/mem.h"
#include "core/rng.h"
#include "nn/trilinear.h"

#define PI 3.14159265358979323846
#define DEPTH 16
#define HEIGHT 64
#define WIDTH 64
#define CHANNELS 32
#define VIEWS 5
#define RAYS_PER_SIDE 32
#define SAMPLES_PER_RAY 64
#define POINTS ((int64_t)VIEWS * RAYS_PER_SIDE * RAYS_PER_SIDE * SAMPLES_PER_RAY)

typedef struct bench_data {
    float *volume, *points, *out, *d_out, *d_volume, *d_points;
} bench_data;

/* Cameras on a circle around the volume, 30 degrees above its middle,
 * look at its centre. Each pixel's ray crosses a square image plane
 * through the centre that spans the volume's width. The 64 samples of a
 * ray are spread evenly over the stretch where it crosses the volume's box
 * [-0.5, size - 0.5] per axis, as a renderer samples between the near and
 * far bounds. A ray that misses the box gets its samples over the box's
 * width around the centre.
 * Coordinates are voxel indices (x along W, y along H, z along D).
 * torch_trilinear.py computes the same points. */
static void fill_ray_points(float *points)
{
    const double size[3] = {WIDTH, HEIGHT, DEPTH};
    const double centre[3] = {(WIDTH - 1) / 2.0, (HEIGHT - 1) / 2.0, (DEPTH - 1) / 2.0};
    const double radius = 1.5 * WIDTH, half_extent = 0.5 * WIDTH;
    const double elevation = 30.0 * PI / 180.0;
    int64_t n = 0;
    for (int view = 0; view < VIEWS; view++) {
        const double azimuth = 2.0 * PI * view / VIEWS;
        const double origin[3] = {centre[0] + radius * cos(elevation) * cos(azimuth),
                                  centre[1] + radius * cos(elevation) * sin(azimuth),
                                  centre[2] + radius * sin(elevation)};
        /* Image plane axes: right is horizontal, up is orthogonal to it and
         * to the viewing direction. */
        const double right[3] = {-sin(azimuth), cos(azimuth), 0.0};
        const double up[3] = {-sin(elevation) * cos(azimuth), -sin(elevation) * sin(azimuth),
                              cos(elevation)};
        for (int row = 0; row < RAYS_PER_SIDE; row++) {
            for (int col = 0; col < RAYS_PER_SIDE; col++) {
                const double u = ((col + 0.5) / RAYS_PER_SIDE * 2.0 - 1.0) * half_extent;
                const double v = ((row + 0.5) / RAYS_PER_SIDE * 2.0 - 1.0) * half_extent;
                double direction[3], length = 0.0;
                for (int a = 0; a < 3; a++) {
                    direction[a] = centre[a] + u * right[a] + v * up[a] - origin[a];
                    length += direction[a] * direction[a];
                }
                length = sqrt(length);
                /* Slab test: the ray's parameter range inside the box. */
                double near = 0.0, far = 1e30;
                for (int a = 0; a < 3; a++) {
                    direction[a] /= length;
                    if (fabs(direction[a]) < 1e-12)
                        continue;
                    double t0 = (-0.5 - origin[a]) / direction[a];
                    double t1 = (size[a] - 0.5 - origin[a]) / direction[a];
                    near = fmax(near, fmin(t0, t1));
                    far = fmin(far, fmax(t0, t1));
                }
                if (near >= far) {
                    near = radius - half_extent;
                    far = radius + half_extent;
                }
                for (int s = 0; s < SAMPLES_PER_RAY; s++) {
                    const double t = near + (s + 0.5) / SAMPLES_PER_RAY * (far - near);
                    for (int a = 0; a < 3; a++)
                        points[n * 3 + a] = (float)(origin[a] + t * direction[a]);
                    n++;
                }
            }
        }
    }
}

static void fail(const char *operation, const od_error *err)
{
    fprintf(stderr, "bench_trilinear: %s failed: %s\n", operation, err->message);
    exit(1);
}

static void forward(void *context)
{
    bench_data *d = context;
    od_error err;
    if (od_trilinear_forward(d->out, d->volume, d->points, 1, DEPTH, HEIGHT, WIDTH, CHANNELS, POINTS,
                             &err) != 0)
        fail("forward", &err);
}

static void forward_backward(void *context)
{
    bench_data *d = context;
    forward(d);
    od_error err;
    if (od_trilinear_backward(d->d_volume, d->d_points, d->d_out, d->volume, d->points, 1, DEPTH,
                              HEIGHT, WIDTH, CHANNELS, POINTS, &err) != 0)
        fail("backward", &err);
}

int main(void)
{
    const int64_t voxels = (int64_t)DEPTH * HEIGHT * WIDTH * CHANNELS;
    bench_data d = {od_alloc_floats(voxels), od_alloc_floats(POINTS * 3),
                    od_alloc_floats(POINTS * CHANNELS), od_alloc_floats(POINTS * CHANNELS),
                    od_alloc_floats(voxels), od_alloc_floats(POINTS * 3)};
    od_rng rng;
    od_rng_seed(&rng, 1);
    od_rng_fill_normal(&rng, d.volume, voxels, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, d.d_out, POINTS * CHANNELS, 0.0f, 1.0f);
    fill_ray_points(d.points);

    /* 8 corners, a multiply and an add per channel each; the backward does
     * that once for the volume and once for the points. */
    const double forward_flops = 16.0 * CHANNELS * (double)POINTS;
    bench_report("trilinear_fwd", bench_median_ms(forward, &d, 3, 20), forward_flops);
    bench_report("trilinear_fwdbwd", bench_median_ms(forward_backward, &d, 3, 20), 3.0 * forward_flops);

    od_free(d.volume);
    od_free(d.points);
    od_free(d.out);
    od_free(d.d_out);
    od_free(d.d_volume);
    od_free(d.d_points);
    return 0;
}
