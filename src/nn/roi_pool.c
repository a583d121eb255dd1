/* RoI pooling of oriented boxes by trilinear sampling at cell centres; see
 * roi_pool.h. */
#include "nn/roi_pool.h"

#include <math.h>
#include <omp.h>

#include "core/mem.h"
#include "nn/trilinear.h"

void od_roi_box_pad_cubic(const od_box *box, double pad_voxels, const od_grid *grid,
                          od_box *out)
{
    const double pad = pad_voxels * grid->voxel_size;
    double side = 0.0;
    for (int a = 0; a < 3; a++)
        side = fmax(side, box->size[a] + 2.0 * pad);
    *out = *box;
    for (int a = 0; a < 3; a++)
        out->size[a] = side;
}

static int check_common(const char *operation, const od_box *boxes, int64_t count,
                        const od_grid *grid, int cells, od_error *err)
{
    if (grid == NULL || (count > 0 && boxes == NULL))
        return od_fail(err, "%s: grid and boxes must not be NULL", operation);
    if (od_grid_validate(grid, err) != 0)
        return od_fail_context(err, "%s: grid", operation);
    if (cells < 1 || cells > OD_ROI_MAX_CELLS)
        return od_fail(err, "%s: crop side %d; expected 1 to %d cells", operation, cells,
                       OD_ROI_MAX_CELLS);
    if (count < 0 || count > INT32_MAX / ((int64_t)cells * cells * cells))
        return od_fail(err, "%s: %lld boxes; expected 0 to %lld", operation, (long long)count,
                       (long long)(INT32_MAX / ((int64_t)cells * cells * cells)));
    for (int64_t b = 0; b < count; b++) {
        const od_box *box = &boxes[b];
        int ok = isfinite(box->yaw);
        for (int a = 0; a < 3; a++)
            ok = ok && isfinite(box->center[a]) && isfinite(box->size[a]) && box->size[a] >= 0.0;
        if (!ok)
            return od_fail(err, "%s: box %lld has centre (%g, %g, %g), size (%g, %g, %g), yaw %g; "
                                "expected finite values and sizes >= 0",
                           operation, (long long)b, box->center[0], box->center[1],
                           box->center[2], box->size[0], box->size[1], box->size[2], box->yaw);
    }
    return 0;
}

static void box_points(float *points, const od_box *boxes, int64_t count, const od_grid *grid,
                       int cells)
{
    const int64_t per_box = (int64_t)cells * cells * cells;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count * per_box; i++) {
        const od_box *box = &boxes[i / per_box];
        const int64_t cell = i % per_box;
        const int64_t a = cell / ((int64_t)cells * cells), b = (cell / cells) % cells,
                      c = cell % cells;
        /* The cell centre in the box frame, then rotated by yaw about z. */
        const double local_x = ((c + 0.5) / cells - 0.5) * box->size[0];
        const double local_y = ((b + 0.5) / cells - 0.5) * box->size[1];
        const double local_z = ((a + 0.5) / cells - 0.5) * box->size[2];
        const double cy = cos(box->yaw), sy = sin(box->yaw);
        const double world[3] = {box->center[0] + cy * local_x - sy * local_y,
                                 box->center[1] + sy * local_x + cy * local_y,
                                 box->center[2] + local_z};
        double voxel[3];
        od_grid_world_to_voxel(grid, world, voxel);
        for (int axis = 0; axis < 3; axis++)
            points[i * 3 + axis] = (float)voxel[axis];
    }
}

int od_roi_points(float *points, const od_box *boxes, int64_t count, const od_grid *grid,
                  int cells, od_error *err)
{
    if (check_common("roi points", boxes, count, grid, cells, err) != 0)
        return -1;
    if (points == NULL && count > 0)
        return od_fail(err, "roi points: points must not be NULL");
    box_points(points, boxes, count, grid, cells);
    return 0;
}

int od_roi_pool_forward(float *crops, float *mask, const float *volume, const float *occupancy,
                        float threshold, int zero_empty, const od_box *boxes, int64_t count,
                        const od_grid *grid, int cells, int64_t C, od_error *err)
{
    if (check_common("roi pool forward", boxes, count, grid, cells, err) != 0)
        return -1;
    if (C < 1 || crops == NULL || volume == NULL)
        return od_fail(err, "roi pool forward: %lld channels; expected >= 1, with crops and "
                            "volume not NULL",
                       (long long)C);
    const int64_t P = count * cells * cells * cells;
    if (P == 0)
        return 0;
    const int64_t D = grid->dims[2], H = grid->dims[1], W = grid->dims[0];
    float *points = od_alloc_aligned((size_t)(P * 3) * sizeof(float));
    float *sampled = occupancy != NULL ? od_alloc_aligned((size_t)P * sizeof(float)) : NULL;
    int status = 0;
    if (points == NULL || (occupancy != NULL && sampled == NULL)) {
        status = od_fail(err, "roi pool forward: out of memory for %lld cells", (long long)P);
        goto done;
    }
    box_points(points, boxes, count, grid, cells);

    /* step 1: the features at the cell centres. */
    if (od_trilinear_forward(crops, volume, points, 1, D, H, W, C, P, err) != 0) {
        status = od_fail_context(err, "roi pool forward");
        goto done;
    }

    /* step 2: which cells are empty. */
    if (occupancy != NULL &&
        od_trilinear_forward(sampled, occupancy, points, 1, D, H, W, 1, P, err) != 0) {
        status = od_fail_context(err, "roi pool forward: occupancy");
        goto done;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < P; i++) {
        const float full = sampled == NULL || sampled[i] >= threshold ? 1.0f : 0.0f;
        if (mask != NULL)
            mask[i] = full;
        if (zero_empty && full == 0.0f)
            for (int64_t c = 0; c < C; c++)
                crops[i * C + c] = 0.0f;
    }

done:
    od_free(points);
    od_free(sampled);
    return status;
}

int od_roi_pool_backward(float *d_volume, const float *d_crops, const float *mask,
                         const od_box *boxes, int64_t count, const od_grid *grid, int cells,
                         int64_t C, od_error *err)
{
    if (check_common("roi pool backward", boxes, count, grid, cells, err) != 0)
        return -1;
    if (C < 1 || d_crops == NULL || d_volume == NULL)
        return od_fail(err, "roi pool backward: %lld channels; expected >= 1, with d_crops and "
                            "d_volume not NULL",
                       (long long)C);
    const int64_t P = count * cells * cells * cells;
    if (P == 0)
        return 0;
    const int64_t D = grid->dims[2], H = grid->dims[1], W = grid->dims[0];
    float *points = od_alloc_aligned((size_t)(P * 3) * sizeof(float));
    float *masked = mask != NULL ? od_alloc_aligned((size_t)(P * C) * sizeof(float)) : NULL;
    int status = 0;
    if (points == NULL || (mask != NULL && masked == NULL)) {
        status = od_fail(err, "roi pool backward: out of memory for %lld cells", (long long)P);
        goto done;
    }
    box_points(points, boxes, count, grid, cells);
    if (mask != NULL) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < P; i++)
            for (int64_t c = 0; c < C; c++)
                masked[i * C + c] = mask[i] != 0.0f ? d_crops[i * C + c] : 0.0f;
    }
    if (od_trilinear_backward(d_volume, NULL, masked != NULL ? masked : d_crops, NULL, points, 1,
                              D, H, W, C, P, err) != 0)
        status = od_fail_context(err, "roi pool backward");

done:
    od_free(points);
    od_free(masked);
    return status;
}
