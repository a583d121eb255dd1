/* Camera rays clipped to the voxel grid and their sample points; see
 * rays.h for the conventions. */
#include "geometry/rays.h"

#include <math.h>
#include <omp.h>

int od_ray_box_clip(const double origin[3], const double direction[3], const double low[3],
                    const double high[3], double *t_near, double *t_far)
{
    double near = 0.0, far = INFINITY;
    for (int a = 0; a < 3; a++) {
        if (direction[a] == 0.0) {
            if (origin[a] < low[a] || origin[a] > high[a])
                return 0;
            continue;
        }
        const double t0 = (low[a] - origin[a]) / direction[a];
        const double t1 = (high[a] - origin[a]) / direction[a];
        near = fmax(near, fmin(t0, t1));
        far = fmin(far, fmax(t0, t1));
    }
    if (!(far > near) || !isfinite(far))
        return 0;
    *t_near = near;
    *t_far = far;
    return 1;
}

int od_rays_sample(const od_camera *camera, int width, int height, const od_grid *grid,
                   int samples, const od_rng *jitter, float *points, float *delta, od_error *err)
{
    if (camera == NULL || grid == NULL)
        return od_fail(err, "rays: camera and grid must not be NULL");
    if (od_camera_validate(camera, "rays: camera", err) != 0)
        return -1;
    if (od_grid_validate(grid, err) != 0)
        return od_fail_context(err, "rays: grid");
    if (width < 1 || width > OD_RAYS_MAX_SIDE || height < 1 || height > OD_RAYS_MAX_SIDE)
        return od_fail(err, "rays: render size %d x %d; expected each side in [1, %d]", width,
                       height, OD_RAYS_MAX_SIDE);
    if (samples < 1 || samples > OD_RAYS_MAX_SAMPLES)
        return od_fail(err, "rays: %d samples per ray; expected 1 to %d", samples,
                       OD_RAYS_MAX_SAMPLES);

    od_camera render = *camera;
    od_camera_resize(&render, width, height);
    const double fx = render.K[0], fy = render.K[4], cx = render.K[2], cy = render.K[5];
    const double *world_to_camera = render.world_to_camera;

    /* The camera centre -R^T t and the rows of R, in voxel coordinates:
     * a world point p is at (p - origin) / size - 0.5. */
    double centre[3];
    od_camera_center(&render, centre);
    double eye[3], low[3], high[3];
    for (int a = 0; a < 3; a++) {
        eye[a] = (centre[a] - grid->origin[a]) / grid->voxel_size - 0.5;
        low[a] = -0.5;
        high[a] = (double)grid->dims[a] - 0.5;
    }

    const int64_t rays = (int64_t)width * height;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rays; r++) {
        const double u = (double)(r % width), v = (double)(r / width);
        /* The camera-space direction K^-1 (u, v, 1), turned to world axes
         * by R^T. Voxel axes only scale world directions by 1 / voxel
         * size, which the normalisation removes. */
        const double xc = (u - cx) / fx, yc = (v - cy) / fy;
        double direction[3], length = 0.0;
        for (int a = 0; a < 3; a++) {
            direction[a] = world_to_camera[0 * 4 + a] * xc + world_to_camera[1 * 4 + a] * yc +
                           world_to_camera[2 * 4 + a];
            length += direction[a] * direction[a];
        }
        length = sqrt(length);
        for (int a = 0; a < 3; a++)
            direction[a] /= length;

        double t_near = 0.0, t_far = 0.0;
        const int hit = od_ray_box_clip(eye, direction, low, high, &t_near, &t_far);
        const double step = hit ? (t_far - t_near) / samples : 0.0;
        od_rng stream;
        if (jitter != NULL)
            stream = od_rng_fork(jitter, (uint64_t)r);
        for (int s = 0; s < samples; s++) {
            const int64_t i = r * samples + s;
            /* Drawn for missed rays too, so that a ray's offsets do not
             * depend on whether it hits. */
            const double offset = jitter != NULL ? (double)od_rng_uniform(&stream) : 0.5;
            if (delta != NULL)
                delta[i] = (float)step;
            if (points == NULL)
                continue;
            if (!hit) {
                for (int a = 0; a < 3; a++)
                    points[i * 3 + a] = OD_RAY_MISS_COORDINATE;
                continue;
            }
            const double t = t_near + ((double)s + offset) * step;
            for (int a = 0; a < 3; a++) {
                /* Keep rounding from pushing a point past the box. */
                double p = eye[a] + t * direction[a];
                p = p < low[a] ? low[a] : p;
                p = p > high[a] ? high[a] : p;
                points[i * 3 + a] = (float)p;
            }
        }
    }
    return 0;
}
