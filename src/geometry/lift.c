#include "geometry/lift.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct od_lift {
    od_grid grid;
    int64_t channels;
    int64_t voxels;
    int64_t views;
    float *sum;     /* (D, H, W, C) */
    int32_t *count; /* (D, H, W) */
};

od_lift *od_lift_new(const od_grid *grid, int64_t channels)
{
    if (od_grid_validate(grid, NULL) != 0 || channels < 1)
        return NULL;
    int64_t voxels = od_grid_voxel_count(grid);
    if (channels > OD_GRID_MAX_VOXELS / voxels)
        return NULL;
    od_lift *lift = calloc(1, sizeof *lift);
    if (!lift)
        return NULL;
    lift->grid = *grid;
    lift->channels = channels;
    lift->voxels = voxels;
    lift->sum = od_alloc_floats(voxels * channels);
    lift->count = calloc((size_t)voxels, sizeof *lift->count);
    if (!lift->sum || !lift->count) {
        od_lift_free(lift);
        return NULL;
    }
    return lift;
}

void od_lift_free(od_lift *lift)
{
    if (!lift)
        return;
    free(lift->sum);
    free(lift->count);
    free(lift);
}

void od_lift_clear(od_lift *lift)
{
    if (!lift)
        return;
    memset(lift->sum, 0, (size_t)(lift->voxels * lift->channels) * sizeof *lift->sum);
    memset(lift->count, 0, (size_t)lift->voxels * sizeof *lift->count);
    lift->views = 0;
}

int64_t od_lift_view_count(const od_lift *lift)
{
    return lift ? lift->views : 0;
}

void od_lift_scale_intrinsics(const double K[9], int stride, double K_scaled[9])
{
    double s = (double)stride;
    double out[9] = {K[0] / s, K[1] / s, (K[2] + 0.5) / s - 0.5,
                     K[3] / s, K[4] / s, (K[5] + 0.5) / s - 0.5,
                     K[6],     K[7],     K[8]};
    memcpy(K_scaled, out, sizeof out);
}

int od_lift_add_view(od_lift *lift, const od_camera *camera, const float *features, int64_t fh, int64_t fw,
                     int stride, od_error *err)
{
    /* features is (fh, fw, C); lift->sum is (D, H, W, C); lift->count is (D, H, W) */
    if (!lift || !camera || !features)
        return od_fail(err, "lift: NULL argument");
    if (fh < 1 || fw < 1)
        return od_fail(err, "lift: feature map size %lld x %lld must be positive", (long long)fh, (long long)fw);
    if (stride < 1)
        return od_fail(err, "lift: stride %d must be at least 1", stride);
    double K[9];
    od_lift_scale_intrinsics(camera->K, stride, K);
    if (!isfinite(K[0]) || !isfinite(K[4]) || !(K[0] > 0.0) || !(K[4] > 0.0) || !isfinite(K[2]) ||
        !isfinite(K[5]))
        return od_fail(err, "lift: camera focal lengths (%g, %g) and principal point must be finite and positive",
                       camera->K[0], camera->K[4]);
    for (int i = 0; i < 12; i++)
        if (!isfinite(camera->world_to_camera[i]))
            return od_fail(err, "lift: camera pose entry %d is not finite", i);

    /* P = K' [R | t], 3x4: rows give (u * depth, w * depth, depth). */
    const double *T = camera->world_to_camera;
    double P[12];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            P[r * 4 + c] = K[r * 3 + 0] * T[0 * 4 + c] + K[r * 3 + 1] * T[1 * 4 + c] + K[r * 3 + 2] * T[2 * 4 + c];

    const od_grid *g = &lift->grid;
    const int64_t X = g->dims[0], Y = g->dims[1], Z = g->dims[2];
    const int64_t C = lift->channels;
    const double umax = (double)(fw - 1), wmax = (double)(fh - 1);
    float *sum = lift->sum;
    int32_t *count = lift->count;

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
            double u = (P[0] * px + P[1] * py + P[2] * pz + P[3]) / depth;
            double w = (P[4] * px + P[5] * py + P[6] * pz + P[7]) / depth;
            if (!(u >= 0.0 && u <= umax && w >= 0.0 && w <= wmax))
                continue;
            /* The lower corner is clamped so that the upper one stays
             * inside: u = fw - 1 takes weight 1 from the last column. */
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
            int64_t v = row * X + i;
            float *out = sum + v * C;
            for (int64_t c = 0; c < C; c++)
                out[c] += w00 * f00[c] + w01 * f01[c] + w10 * f10[c] + w11 * f11[c];
            count[v] += 1;
        }
    }
    lift->views++;
    return 0;
}

int od_lift_finish(const od_lift *lift, float *mean, int32_t *count, od_error *err)
{
    /* mean is (D, H, W, C); count is (D, H, W) */
    if (!lift)
        return od_fail(err, "lift: NULL accumulator");
    if (!mean && !count)
        return od_fail(err, "lift: both outputs are NULL");
    const int64_t C = lift->channels;
    if (count)
        memcpy(count, lift->count, (size_t)lift->voxels * sizeof *count);
    if (mean) {
#pragma omp parallel for schedule(static)
        for (int64_t v = 0; v < lift->voxels; v++) {
            int32_t n = lift->count[v];
            float scale = n > 0 ? 1.0f / (float)n : 0.0f;
            const float *s = lift->sum + v * C;
            float *m = mean + v * C;
            for (int64_t c = 0; c < C; c++)
                m[c] = s[c] * scale;
        }
    }
    return 0;
}
