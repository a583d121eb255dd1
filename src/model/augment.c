/* Training augmentation: see augment.h. */
#include "model/augment.h"

#include <math.h>
#include <string.h>

od_augment od_augment_identity(void)
{
    od_augment a;
    memset(&a, 0, sizeof a);
    return a;
}

od_augment od_augment_draw(od_rng *rng, double rotation_degrees, double translation, int flips)
{
    od_augment a = od_augment_identity();
    const double pi = 3.14159265358979323846;
    a.angle = (2.0 * (double)od_rng_uniform(rng) - 1.0) * rotation_degrees * pi / 180.0;
    a.translation[0] = (2.0 * (double)od_rng_uniform(rng) - 1.0) * translation;
    a.translation[1] = (2.0 * (double)od_rng_uniform(rng) - 1.0) * translation;
    a.flip = flips ? (int)(od_rng_next_u64(rng) >> 63) : 0;
    return a;
}

/* Writes A as a row-major 3x3 matrix. */
static void linear_part(const od_augment *a, double m[9])
{
    const double c = cos(a->angle), s = sin(a->angle), f = a->flip ? -1.0 : 1.0;
    /* Rz(angle) diag(f, 1, 1) */
    const double r[9] = {c * f, -s, 0.0, s * f, c, 0.0, 0.0, 0.0, 1.0};
    memcpy(m, r, sizeof r);
}

void od_augment_point(const od_augment *a, const double p[3], double out[3])
{
    double m[9];
    linear_part(a, m);
    const double x = p[0], y = p[1], z = p[2];
    out[0] = m[0] * x + m[1] * y + m[2] * z + a->translation[0];
    out[1] = m[3] * x + m[4] * y + m[5] * z + a->translation[1];
    out[2] = m[6] * x + m[7] * y + m[8] * z;
}

void od_augment_box(const od_augment *a, const od_box *box, od_box *out)
{
    const double pi = 3.14159265358979323846;
    od_box b = *box;
    od_augment_point(a, box->center, b.center);
    double yaw = a->flip ? pi - box->yaw : box->yaw;
    yaw += a->angle;
    b.yaw = atan2(sin(yaw), cos(yaw));
    *out = b;
}

void od_augment_camera(const od_augment *a, const od_camera *camera, od_camera *out)
{
    /* x_cam = R p + t with p = A^-1 (p' - b): R' = R A^-1, t' = t - R A^-1 b.
     * A is orthogonal, so A^-1 = A^T. */
    double m[9];
    linear_part(a, m);
    const double *w = camera->world_to_camera;
    double r[9], t[3];
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            r[i * 3 + j] = w[i * 4 + 0] * m[j * 3 + 0] + w[i * 4 + 1] * m[j * 3 + 1] + w[i * 4 + 2] * m[j * 3 + 2];
        t[i] = w[i * 4 + 3] - (r[i * 3 + 0] * a->translation[0] + r[i * 3 + 1] * a->translation[1]);
    }
    od_camera c = *camera;
    const double f = a->flip ? -1.0 : 1.0; /* F = diag(f, 1, 1) on the camera's x row */
    for (int i = 0; i < 3; i++) {
        const double row = i == 0 ? f : 1.0;
        for (int j = 0; j < 3; j++)
            c.world_to_camera[i * 4 + j] = row * r[i * 3 + j];
        c.world_to_camera[i * 4 + 3] = row * t[i];
    }
    if (a->flip)
        c.K[2] = (double)camera->width - 1.0 - camera->K[2];
    *out = c;
}

void od_augment_mirror_rows(float *data, int64_t height, int64_t width, int64_t channels)
{
    for (int64_t i = 0; i < height; i++) {
        float *row = data + i * width * channels;
        for (int64_t j = 0; j < width / 2; j++) {
            float *a = row + j * channels, *b = row + (width - 1 - j) * channels;
            for (int64_t c = 0; c < channels; c++) {
                const float swap = a[c];
                a[c] = b[c];
                b[c] = swap;
            }
        }
    }
}
