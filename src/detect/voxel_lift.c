/* Lifting at a list of voxels; see voxel_lift.h. The sampling code
 * follows od_lift_add_view step for step, so that the two agree exactly. */
#include "detect/voxel_lift.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "geometry/lift.h"

struct od_voxel_lift {
    od_grid grid;
    int64_t count, channels;
    int32_t *voxels; /* (count, 3) */
    float *sum;      /* (count, channels) */
    int32_t *views;  /* (count) */
};

od_voxel_lift *od_voxel_lift_new(const od_grid *grid, const int32_t *voxels, int64_t count, int64_t channels)
{
    if (od_grid_validate(grid, NULL) != 0 || count < 0 || channels < 1 || (count > 0 && voxels == NULL))
        return NULL;
    od_voxel_lift *lift = calloc(1, sizeof *lift);
    if (lift == NULL)
        return NULL;
    lift->grid = *grid;
    lift->count = count;
    lift->channels = channels;
    int64_t rows = count > 0 ? count : 1;
    lift->voxels = malloc((size_t)rows * 3 * sizeof *lift->voxels);
    lift->sum = od_alloc_floats(rows * channels);
    lift->views = calloc((size_t)rows, sizeof *lift->views);
    if (lift->voxels == NULL || lift->sum == NULL || lift->views == NULL) {
        od_voxel_lift_free(lift);
        return NULL;
    }
    if (count > 0)
        memcpy(lift->voxels, voxels, (size_t)count * 3 * sizeof *voxels);
    memset(lift->sum, 0, (size_t)(rows * channels) * sizeof *lift->sum);
    return lift;
}

void od_voxel_lift_free(od_voxel_lift *lift)
{
    if (lift == NULL)
        return;
    free(lift->voxels);
    od_free(lift->sum);
    free(lift->views);
    free(lift);
}

int od_voxel_lift_add_view(od_voxel_lift *lift, const od_camera *camera, const float *features, int64_t fh,
                           int64_t fw, int stride, od_error *err)
{
    if (lift == NULL || camera == NULL || features == NULL)
        return od_fail(err, "voxel lift: NULL argument");
    if (fh < 1 || fw < 1)
        return od_fail(err, "voxel lift: feature map size %lld x %lld must be positive", (long long)fh,
                       (long long)fw);
    if (stride < 1)
        return od_fail(err, "voxel lift: stride %d must be at least 1", stride);
    double K[9];
    od_lift_scale_intrinsics(camera->K, stride, K);
    if (!isfinite(K[0]) || !isfinite(K[4]) || !(K[0] > 0.0) || !(K[4] > 0.0) || !isfinite(K[2]) ||
        !isfinite(K[5]))
        return od_fail(err,
                       "voxel lift: camera focal lengths (%g, %g) and principal point must be finite and positive",
                       camera->K[0], camera->K[4]);
    for (int i = 0; i < 12; i++)
        if (!isfinite(camera->world_to_camera[i]))
            return od_fail(err, "voxel lift: camera pose entry %d is not finite", i);

    /* P = K' [R | t], 3x4: rows give (u * depth, w * depth, depth). */
    const double *T = camera->world_to_camera;
    double P[12];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            P[r * 4 + c] = K[r * 3 + 0] * T[0 * 4 + c] + K[r * 3 + 1] * T[1 * 4 + c] + K[r * 3 + 2] * T[2 * 4 + c];

    const od_grid *g = &lift->grid;
    const int64_t C = lift->channels;
    const double umax = (double)(fw - 1), wmax = (double)(fh - 1);
#pragma omp parallel for schedule(static)
    for (int64_t v = 0; v < lift->count; v++) {
        const int32_t *voxel = lift->voxels + 3 * v;
        double px = g->origin[0] + ((double)voxel[0] + 0.5) * g->voxel_size;
        double py = g->origin[1] + ((double)voxel[1] + 0.5) * g->voxel_size;
        double pz = g->origin[2] + ((double)voxel[2] + 0.5) * g->voxel_size;
        double depth = P[8] * px + P[9] * py + P[10] * pz + P[11];
        if (!(depth > OD_CAMERA_MIN_DEPTH))
            continue;
        double u = (P[0] * px + P[1] * py + P[2] * pz + P[3]) / depth;
        double w = (P[4] * px + P[5] * py + P[6] * pz + P[7]) / depth;
        if (!(u >= 0.0 && u <= umax && w >= 0.0 && w <= wmax))
            continue;
        /* The lower corner is clamped so that the upper one stays inside. */
        int64_t q0 = (int64_t)u, r0 = (int64_t)w;
        if (q0 > fw - 2)
            q0 = fw > 1 ? fw - 2 : 0;
        if (r0 > fh - 2)
            r0 = fh > 1 ? fh - 2 : 0;
        int64_t q1 = fw > 1 ? q0 + 1 : q0, r1 = fh > 1 ? r0 + 1 : r0;
        float a = (float)(u - (double)q0), b = (float)(w - (double)r0);
        float w00 = (1.0f - a) * (1.0f - b), w01 = a * (1.0f - b);
        float w10 = (1.0f - a) * b, w11 = a * b;
        const float *f00 = features + (r0 * fw + q0) * C, *f01 = features + (r0 * fw + q1) * C;
        const float *f10 = features + (r1 * fw + q0) * C, *f11 = features + (r1 * fw + q1) * C;
        float *out = lift->sum + v * C;
        for (int64_t c = 0; c < C; c++)
            out[c] += w00 * f00[c] + w01 * f01[c] + w10 * f10[c] + w11 * f11[c];
        lift->views[v] += 1;
    }
    return 0;
}

int od_voxel_lift_finish(const od_voxel_lift *lift, float *mean, int32_t *views, od_error *err)
{
    if (lift == NULL)
        return od_fail(err, "voxel lift: NULL accumulator");
    const int64_t C = lift->channels;
    if (views != NULL && lift->count > 0)
        memcpy(views, lift->views, (size_t)lift->count * sizeof *views);
    if (mean != NULL)
        for (int64_t v = 0; v < lift->count; v++) {
            int32_t n = lift->views[v];
            float scale = n > 0 ? 1.0f / (float)n : 0.0f;
            for (int64_t c = 0; c < C; c++)
                mean[v * C + c] = lift->sum[v * C + c] * scale;
        }
    return 0;
}
