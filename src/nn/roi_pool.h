/* RoI pooling of oriented boxes. It resamples the part of a channels-last
 * voxel volume inside each box (geometry/box.h: centre, size, yaw) to a
 * fixed n x n x n crop, differentiably. The matcher then compares objects
 * of any size and orientation on the same cells.
 *
 * Cell (a, b, c) of a crop (a along the box's z axis, b along its y axis,
 * c along its x axis, the first axis rotated by yaw from world x) takes one
 * trilinear sample (nn/trilinear.h) at the cell's centre, the box-frame
 * point ((c + 0.5) / n - 0.5) size_x, likewise for y and z. One sample
 * per cell, not a mean of several: with the product's 8-cell crops of
 * boxes padded to about 10 voxels a cell is about one voxel, so one sample
 * already reads every voxel. The volume is zero outside the grid, so the
 * part of a box outside it crops as zero.
 *
 * Empty voxels: a density or occupancy volume (D, H, W) sampled at the
 * same points gives each cell a mask, 1 where the value reaches a
 * threshold and 0 where the cell is empty. The matcher leaves empty cells
 * out; with zero_empty the crop's empty cells are also set to zero and
 * pass no gradient back.
 *
 * Crops are (B, n, n, n, C) channels-last, masks (B, n, n, n). Points and
 * crops are computed in parallel and the gradient comes from
 * nn/trilinear.h's deterministic backward: bit-identical for any thread
 * count. */
#ifndef ODDONE_NN_ROI_POOL_H
#define ODDONE_NN_ROI_POOL_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/box.h"
#include "geometry/grid.h"

/* The product's crop side (NOTES.md: 8 x 8 x 8). */
#define OD_ROI_CELLS 8

/* Largest crop side accepted. */
#define OD_ROI_MAX_CELLS 256

/* Writes the box the release crops for an object box: padded by
 * `pad_voxels` voxels of the grid on every side and made cubic (every
 * side becomes the longest padded side), same centre and yaw. */
void od_roi_box_pad_cubic(const od_box *box, double pad_voxels, const od_grid *grid,
                          od_box *out);

/* Writes the sample points of the crop cells of `count` boxes as
 * continuous voxel coordinates of the grid: points is
 * (count, cells^3, 3). Fails on an invalid grid, cells outside
 * [1, OD_ROI_MAX_CELLS], or a box with a non-finite centre, size or yaw or a
 * negative size. */
int od_roi_points(float *points, const od_box *boxes, int64_t count, const od_grid *grid,
                  int cells, od_error *err);

/* Crops `count` boxes out of volume (D, H, W, C) on the grid (D, H, W
 * = dims z, y, x) into crops (count, cells, cells, cells, C).
 * occupancy (D, H, W) may be NULL: every cell is then full. mask
 * (count, cells, cells, cells) receives 1 for cells whose sampled
 * occupancy is >= threshold and 0 for the others; it may be NULL. With
 * zero_empty the crops of empty cells are 0. */
int od_roi_pool_forward(float *crops, float *mask, const float *volume, const float *occupancy,
                        float threshold, int zero_empty, const od_box *boxes, int64_t count,
                        const od_grid *grid, int cells, int64_t C, od_error *err);

/* Accumulates into d_volume (D, H, W, C) the gradient of the crops,
 * d_crops (count, cells, cells, cells, C). mask is the forward's mask when
 * it zeroed empty cells (their gradient is dropped), NULL otherwise. */
int od_roi_pool_backward(float *d_volume, const float *d_crops, const float *mask,
                         const od_box *boxes, int64_t count, const od_grid *grid, int cells,
                         int64_t C, od_error *err);

#endif
