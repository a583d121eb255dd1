#include "geometry/visual_hull.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct od_visual_hull {
    od_grid grid;
    int64_t voxels;
    int32_t *seen;   /* (D, H, W): views in front with the centre inside the image */
    int32_t *inside; /* (D, H, W): of those, views whose mask covers the centre */
};

od_visual_hull *od_visual_hull_new(const od_grid *grid)
{
    if (od_grid_validate(grid, NULL) != 0)
        return NULL;
    od_visual_hull *hull = calloc(1, sizeof *hull);
    if (!hull)
        return NULL;
    hull->grid = *grid;
    hull->voxels = od_grid_voxel_count(grid);
    hull->seen = calloc((size_t)hull->voxels, sizeof *hull->seen);
    hull->inside = calloc((size_t)hull->voxels, sizeof *hull->inside);
    if (!hull->seen || !hull->inside) {
        od_visual_hull_free(hull);
        return NULL;
    }
    return hull;
}

void od_visual_hull_free(od_visual_hull *hull)
{
    if (!hull)
        return;
    free(hull->seen);
    free(hull->inside);
    free(hull);
}

int od_visual_hull_add_view(od_visual_hull *hull, const od_camera *camera, const float *mask, int width,
                            int height, od_error *err)
{
    /* mask is (height, width); hull->seen and hull->inside are (D, H, W) */
    if (!hull || !camera || !mask)
        return od_fail(err, "visual hull: NULL argument");
    if (width != camera->width || height != camera->height || width < 1 || height < 1)
        return od_fail(err, "visual hull: mask is %d x %d but the camera's image is %d x %d", width, height,
                       camera->width, camera->height);
    const double *K = camera->K, *T = camera->world_to_camera;
    double P[12];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            P[r * 4 + c] = K[r * 3 + 0] * T[0 * 4 + c] + K[r * 3 + 1] * T[1 * 4 + c] + K[r * 3 + 2] * T[2 * 4 + c];
    for (int i = 0; i < 12; i++)
        if (!isfinite(P[i]))
            return od_fail(err, "visual hull: camera K or pose is not finite");

    const od_grid *g = &hull->grid;
    const int64_t X = g->dims[0], Y = g->dims[1], Z = g->dims[2];
    int32_t *seen = hull->seen, *inside = hull->inside;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < Z * Y; row++) {
        int64_t k = row / Y, j = row % Y;
        double py = g->origin[1] + ((double)j + 0.5) * g->voxel_size;
        double pz = g->origin[2] + ((double)k + 0.5) * g->voxel_size;
        for (int64_t i = 0; i < X; i++) {
            double px = g->origin[0] + ((double)i + 0.5) * g->voxel_size;
            double depth = P[8] * px + P[9] * py + P[10] * pz + P[11];
            if (!(depth > OD_CAMERA_MIN_DEPTH))
                continue;
            /* Nearest pixel: pixel q covers [q - 0.5, q + 0.5). */
            double u = (P[0] * px + P[1] * py + P[2] * pz + P[3]) / depth + 0.5;
            double w = (P[4] * px + P[5] * py + P[6] * pz + P[7]) / depth + 0.5;
            if (!(u >= 0.0 && u < (double)width && w >= 0.0 && w < (double)height))
                continue;
            int64_t q = (int64_t)u, r = (int64_t)w;
            int64_t v = row * X + i;
            seen[v] += 1;
            inside[v] += mask[r * width + q] > 0.5f;
        }
    }
    return 0;
}

int od_visual_hull_finish(const od_visual_hull *hull, double tolerance, int min_views, uint8_t *occupied,
                          int32_t *seen, od_error *err)
{
    /* occupied and seen are (D, H, W) */
    if (!hull || !occupied)
        return od_fail(err, "visual hull: NULL argument");
    if (!(tolerance >= 0.0 && tolerance < 1.0))
        return od_fail(err, "visual hull: tolerance %g must be in [0, 1)", tolerance);
    if (min_views < 1)
        return od_fail(err, "visual hull: min_views %d must be at least 1", min_views);
    for (int64_t v = 0; v < hull->voxels; v++) {
        int32_t n = hull->seen[v];
        int32_t outside = n - hull->inside[v];
        /* The 1e-9 keeps tolerance 0.2 of 5 views at one view, not zero. */
        int32_t allowed = (int32_t)floor(tolerance * (double)n + 1e-9);
        occupied[v] = (uint8_t)(n >= min_views && outside <= allowed);
    }
    if (seen)
        memcpy(seen, hull->seen, (size_t)hull->voxels * sizeof *seen);
    return 0;
}
