/* Trilinear sampling of a channels-last volume at arbitrary points, forward
 * and backward into both the volume and the points. The renderer samples
 * the feature volume along camera rays with it.
 *
 * Coordinates are continuous voxel indices: a point (x, y, z) has x along
 * W, y along H and z along D. Voxel centres sit at integer coordinates, so
 * (0, 0, 0) is the centre of the first voxel and (W-1, H-1, D-1) that of
 * the last. A point mixes the 8 voxels around it
 * with the usual trilinear weights; corners outside the volume count as
 * zero. This is PyTorch's grid_sample(mode="bilinear",
 * padding_mode="zeros", align_corners=True) on an NCDHW volume with the
 * grid x' = 2x / (W-1) - 1, y' = 2y / (H-1) - 1, z' = 2z / (D-1) - 1.
 *
 * An axis of size 1 follows the same rule as any other size: a point at
 * distance t < 1 from the single voxel centre along that axis gets weight
 * 1 - t from it and t from the zero padding beyond it. (grid_sample with
 * align_corners=True instead maps every coordinate on a size-1 axis onto
 * the voxel centre, because its normalisation divides by size - 1 = 0.)
 *
 * A point whose coordinates are not finite, or that lies so far outside
 * that none of its corners is inside, samples zero and gets a zero
 * gradient. The gradient with respect to a coordinate that sits exactly
 * on a voxel centre is the one-sided derivative towards larger
 * coordinates, as in grid_sample (the corner below is floor(x)). */
#ifndef ODDONE_NN_TRILINEAR_H
#define ODDONE_NN_TRILINEAR_H

#include <stdint.h>

#include "core/error.h"

/* volume is (N, D, H, W, C); points is (N, P, 3) as (x, y, z);
 * out is (N, P, C). P may be 0.
 * Fails when a size is not positive (P negative), or the sizes exceed the
 * int32 indices the backward sorts by (N * P points, N * (D+1) * (H+1) *
 * (W+1) cells). */
int od_trilinear_forward(float *out, const float *volume, const float *points, int64_t N,
                         int64_t D, int64_t H, int64_t W, int64_t C, int64_t P, od_error *err);

/* d_volume and volume are (N, D, H, W, C); d_points and points are
 * (N, P, 3); d_out is (N, P, C). Accumulates into d_volume and d_points
 * and skips either when NULL; volume is only read for d_points.
 *
 * d_volume is gathered voxel by voxel from the points sorted by the cell
 * they fall in, in a fixed order, without float atomics. It is therefore
 * deterministic and the same for any thread count. Fails like the
 * forward, or when scratch memory runs out. */
int od_trilinear_backward(float *d_volume, float *d_points, const float *d_out,
                          const float *volume, const float *points, int64_t N, int64_t D,
                          int64_t H, int64_t W, int64_t C, int64_t P, od_error *err);

#endif
