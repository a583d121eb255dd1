/* Camera rays through a voxel grid and the sample points along them, the
 * first step of volume rendering (nn/render.h composites the samples).
 *
 * One ray per pixel of a render of width x height pixels, row-major (ray
 * r is pixel row r / width, column r % width). The camera's intrinsics are
 * scaled to the render size by od_camera_resize's rule, so pixel centres
 * sit at integers as everywhere else (geometry/camera.h). A render at the
 * size of the lifted feature maps therefore has its pixel centres where
 * lifting sampled the features. The ray of
 * pixel (row i, column j) leaves the camera centre through the pixel's
 * centre (j, i). Lens distortion is not modelled: rays are pinhole rays.
 *
 * Samples lie only inside the grid's box, not over a fixed depth range:
 * each ray is clipped to the box first (a slab test, starting at the
 * camera centre when the camera is inside), and its S samples split the
 * clipped stretch into S equal strata. Sample s sits at the middle of
 * stratum s, or, with a random stream, at a uniform position inside it
 * (stratified sampling).
 *
 * Units: sample points are continuous voxel coordinates (geometry/grid.h:
 * voxel centres at integers, x along W), ready for nn/trilinear.h, and the
 * step of each sample (delta, the stratum's length) is measured in voxel
 * edges. Density therefore means absorption per voxel edge, whatever the
 * world's scale: a density of 1 absorbs 1 - 1/e of the light over one
 * voxel.
 *
 * A ray that misses the box, only grazes it or has it behind the camera
 * gets delta 0 at every sample and its points at (-2, -2, -2) voxels, which
 * trilinear sampling reads as zero: it renders as empty. */
#ifndef ODDONE_GEOMETRY_RAYS_H
#define ODDONE_GEOMETRY_RAYS_H

#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"
#include "geometry/camera.h"
#include "geometry/grid.h"

/* The voxel coordinate given to every sample of a ray that misses the grid. */
#define OD_RAY_MISS_COORDINATE (-2.0f)

/* Largest render side and sample count accepted, far above what training
 * uses, so that rays x samples x 3 stays well inside int64_t. */
#define OD_RAYS_MAX_SIDE 16384
#define OD_RAYS_MAX_SAMPLES 4096

/* Writes the sample points and steps of every ray of a width x height
 * render of `camera` through `grid`.
 * points is (height * width, samples, 3) voxel coordinates (x, y, z);
 * delta is (height * width, samples) in voxel edges; either may be NULL.
 * jitter NULL puts each sample at the middle of its stratum. Otherwise the
 * ray r draws its offsets from od_rng_fork(jitter, r), so the points are
 * the same for a seed on any thread count. Fork jitter once per view,
 * because views given the same stream get the same offsets. jitter itself
 * is not advanced.
 * Fails on an invalid camera or grid, a size outside
 * [1, OD_RAYS_MAX_SIDE] or a sample count outside [1, OD_RAYS_MAX_SAMPLES]. */
int od_rays_sample(const od_camera *camera, int width, int height, const od_grid *grid,
                   int samples, const od_rng *jitter, float *points, float *delta, od_error *err);

/* Clips the ray origin + t direction, t >= 0, to the box [low, high] (per
 * axis) by the slab test. Returns 1 and writes the parameter range
 * [t_near, t_far] when the ray crosses the box over a positive length,
 * 0 otherwise. direction need not be unit length; a zero component means
 * the ray is parallel to that slab and must start between its planes. */
int od_ray_box_clip(const double origin[3], const double direction[3], const double low[3],
                    const double high[3], double *t_near, double *t_far);

#endif
