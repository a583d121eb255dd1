#include "geometry/camera.h"

#include "io/image.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Segments are clipped a little in front of OD_CAMERA_MIN_DEPTH so that
 * their clipped ends still project. */
#define SEGMENT_CLIP_DEPTH (2.0 * OD_CAMERA_MIN_DEPTH)

/* ---- projection ---------------------------------------------------------- */

static void transform_point(const double transform[16], const double point[3], double out[3])
{
    for (int row = 0; row < 3; row++)
        out[row] = transform[row * 4 + 0] * point[0] + transform[row * 4 + 1] * point[1] +
                   transform[row * 4 + 2] * point[2] + transform[row * 4 + 3];
}

static void project_camera_point(const od_camera *camera, const double camera_point[3], double pixel[2])
{
    const double *K = camera->K;
    pixel[0] = K[0] * camera_point[0] / camera_point[2] + K[1] * camera_point[1] / camera_point[2] + K[2];
    pixel[1] = K[4] * camera_point[1] / camera_point[2] + K[5];
}

int od_camera_project(const od_camera *camera, const double point[3], double pixel[2], double *depth)
{
    double camera_point[3];
    transform_point(camera->world_to_camera, point, camera_point);
    if (!(camera_point[2] > OD_CAMERA_MIN_DEPTH))
        return 0;
    project_camera_point(camera, camera_point, pixel);
    if (depth != NULL)
        *depth = camera_point[2];
    return 1;
}

int od_camera_sees(const od_camera *camera, const double point[3])
{
    double pixel[2];
    if (!od_camera_project(camera, point, pixel, NULL))
        return 0;
    return pixel[0] >= -0.5 && pixel[0] < camera->width - 0.5 && pixel[1] >= -0.5 &&
           pixel[1] < camera->height - 0.5;
}

int od_camera_project_segment(const od_camera *camera, const double a[3], const double b[3],
                              double pixel_a[2], double pixel_b[2])
{
    double ca[3], cb[3];
    transform_point(camera->world_to_camera, a, ca);
    transform_point(camera->world_to_camera, b, cb);
    int a_in_front = ca[2] >= SEGMENT_CLIP_DEPTH;
    int b_in_front = cb[2] >= SEGMENT_CLIP_DEPTH;
    if (!a_in_front && !b_in_front)
        return 0;

    /* Move the end behind the camera onto the clipping plane along the segment. */
    if (!a_in_front || !b_in_front) {
        double *behind = a_in_front ? cb : ca;
        const double *front = a_in_front ? ca : cb;
        double fraction = (front[2] - SEGMENT_CLIP_DEPTH) / (front[2] - behind[2]);
        for (int k = 0; k < 3; k++)
            behind[k] = front[k] + fraction * (behind[k] - front[k]);
        behind[2] = SEGMENT_CLIP_DEPTH;
    }
    project_camera_point(camera, ca, pixel_a);
    project_camera_point(camera, cb, pixel_b);
    return 1;
}

/* ---- pose queries ---------------------------------------------------------- */

void od_camera_center(const od_camera *camera, double center[3])
{
    const double *m = camera->world_to_camera;
    for (int k = 0; k < 3; k++)
        center[k] = -(m[0 * 4 + k] * m[3] + m[1 * 4 + k] * m[7] + m[2 * 4 + k] * m[11]);
}

void od_camera_axes(const od_camera *camera, double right[3], double down[3], double forward[3])
{
    double *axes[3] = {right, down, forward};
    for (int row = 0; row < 3; row++) {
        if (axes[row] == NULL)
            continue;
        for (int k = 0; k < 3; k++)
            axes[row][k] = camera->world_to_camera[row * 4 + k];
    }
}

void od_camera_resize(od_camera *camera, int width, int height)
{
    od_image_scale_intrinsics(camera->K, camera->width, camera->height, width, height, camera->K);
    camera->width = width;
    camera->height = height;
}

/* ---- validation ---------------------------------------------------------------- */

int od_rotation_check(const double rotation[9], char *why, int why_size)
{
    for (int i = 0; i < 9; i++) {
        if (!isfinite(rotation[i])) {
            snprintf(why, (size_t)why_size, "entry (%d, %d) is %g; expected a finite number", i / 3, i % 3,
                     rotation[i]);
            return -1;
        }
    }
    double worst = 0.0;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            double dot = 0.0;
            for (int k = 0; k < 3; k++)
                dot += rotation[i * 3 + k] * rotation[j * 3 + k];
            double deviation = fabs(dot - (i == j ? 1.0 : 0.0));
            if (deviation > worst)
                worst = deviation;
        }
    }
    if (worst > OD_ROTATION_TOLERANCE) {
        snprintf(why, (size_t)why_size,
                 "the rotation part is not orthonormal (R R^T differs from the identity by %.3g; expected at "
                 "most %g)",
                 worst, OD_ROTATION_TOLERANCE);
        return -1;
    }
    const double *r = rotation;
    double determinant = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) +
                         r[2] * (r[3] * r[7] - r[4] * r[6]);
    if (fabs(determinant - 1.0) > OD_ROTATION_TOLERANCE) {
        snprintf(why, (size_t)why_size,
                 "the rotation part has determinant %.6g; expected +1 (a reflection or a flipped axis "
                 "gives -1)",
                 determinant);
        return -1;
    }
    return 0;
}

int od_camera_validate(const od_camera *camera, const char *what, od_error *err)
{
    const double *K = camera->K;
    for (int i = 0; i < 9; i++)
        if (!isfinite(K[i]))
            return od_fail(err, "%s: intrinsics entry K[%d][%d] is %g; expected a finite number", what, i / 3,
                           i % 3, K[i]);
    for (int i = 0; i < 16; i++)
        if (!isfinite(camera->world_to_camera[i]))
            return od_fail(err, "%s: pose entry (%d, %d) is %g; expected a finite number", what, i / 4, i % 4,
                           camera->world_to_camera[i]);
    if (!(K[0] > 0.0) || !(K[4] > 0.0))
        return od_fail(err, "%s: focal length fx = %g, fy = %g; expected both positive", what, K[0], K[4]);
    if (K[1] != 0.0 || K[3] != 0.0 || K[6] != 0.0 || K[7] != 0.0 || K[8] != 1.0)
        return od_fail(err,
                       "%s: intrinsics K = [%g %g %g; %g %g %g; %g %g %g]; expected the pinhole form "
                       "[fx 0 cx; 0 fy cy; 0 0 1]",
                       what, K[0], K[1], K[2], K[3], K[4], K[5], K[6], K[7], K[8]);
    if (camera->width <= 0 || camera->height <= 0)
        return od_fail(err, "%s: image size %d x %d; expected a positive width and height", what, camera->width,
                       camera->height);
    if (!(K[2] >= -0.5 && K[2] <= camera->width - 0.5 && K[5] >= -0.5 && K[5] <= camera->height - 0.5))
        return od_fail(err,
                       "%s: principal point (cx, cy) = (%g, %g) lies outside the %d x %d image; expected "
                       "intrinsics for this image size (was the image resized without scaling K?)",
                       what, K[2], K[5], camera->width, camera->height);

    double rotation[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            rotation[i * 3 + j] = camera->world_to_camera[i * 4 + j];
    char why[256];
    if (od_rotation_check(rotation, why, (int)sizeof why) != 0)
        return od_fail(err, "%s: pose: %s", what, why);
    const double *last = camera->world_to_camera + 12;
    if (last[0] != 0.0 || last[1] != 0.0 || last[2] != 0.0 || last[3] != 1.0)
        return od_fail(err, "%s: pose's last row is (%g, %g, %g, %g); expected (0, 0, 0, 1)", what, last[0],
                       last[1], last[2], last[3]);
    return 0;
}

/* ---- conventions ---------------------------------------------------------------- */

void od_rotation_from_quaternion(const double quaternion[4], double rotation[9])
{
    double norm = sqrt(quaternion[0] * quaternion[0] + quaternion[1] * quaternion[1] +
                       quaternion[2] * quaternion[2] + quaternion[3] * quaternion[3]);
    double w = quaternion[0] / norm, x = quaternion[1] / norm, y = quaternion[2] / norm,
           z = quaternion[3] / norm;
    rotation[0] = 1.0 - 2.0 * (y * y + z * z);
    rotation[1] = 2.0 * (x * y - w * z);
    rotation[2] = 2.0 * (x * z + w * y);
    rotation[3] = 2.0 * (x * y + w * z);
    rotation[4] = 1.0 - 2.0 * (x * x + z * z);
    rotation[5] = 2.0 * (y * z - w * x);
    rotation[6] = 2.0 * (x * z - w * y);
    rotation[7] = 2.0 * (y * z + w * x);
    rotation[8] = 1.0 - 2.0 * (x * x + y * y);
}

void od_rigid_invert(const double transform[16], double inverse[16])
{
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            inverse[i * 4 + j] = transform[j * 4 + i];
        inverse[i * 4 + 3] = -(transform[0 * 4 + i] * transform[3] + transform[1 * 4 + i] * transform[7] +
                               transform[2 * 4 + i] * transform[11]);
    }
    inverse[12] = 0.0;
    inverse[13] = 0.0;
    inverse[14] = 0.0;
    inverse[15] = 1.0;
}

void od_mat4_multiply(const double a[16], const double b[16], double out[16])
{
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            double sum = 0.0;
            for (int k = 0; k < 4; k++)
                sum += a[i * 4 + k] * b[k * 4 + j];
            out[i * 4 + j] = sum;
        }
    }
}

void od_camera_from_opengl_camera_to_world(const double camera_to_world[16], double world_to_camera[16])
{
    /* OpenGL's camera y and z axes are OpenCV's negated: flip those columns
     * of camera-to-world, then invert. */
    double opencv_camera_to_world[16];
    memcpy(opencv_camera_to_world, camera_to_world, sizeof opencv_camera_to_world);
    for (int row = 0; row < 3; row++) {
        opencv_camera_to_world[row * 4 + 1] = -camera_to_world[row * 4 + 1];
        opencv_camera_to_world[row * 4 + 2] = -camera_to_world[row * 4 + 2];
    }
    od_rigid_invert(opencv_camera_to_world, world_to_camera);
}

/* ---- lens distortion -------------------------------------------------------------- */

int od_distortion_is_zero(const od_distortion *distortion)
{
    return distortion->k1 == 0.0 && distortion->k2 == 0.0 && distortion->k3 == 0.0 && distortion->p1 == 0.0 &&
           distortion->p2 == 0.0;
}

void od_distortion_apply(const od_distortion *distortion, double x, double y, double *x_distorted,
                         double *y_distorted)
{
    const od_distortion *d = distortion;
    double r2 = x * x + y * y;
    double radial = 1.0 + r2 * (d->k1 + r2 * (d->k2 + r2 * d->k3));
    *x_distorted = x * radial + 2.0 * d->p1 * x * y + d->p2 * (r2 + 2.0 * x * x);
    *y_distorted = y * radial + d->p1 * (r2 + 2.0 * y * y) + 2.0 * d->p2 * x * y;
}

int od_distortion_remove(const od_distortion *distortion, double x_distorted, double y_distorted, double *x,
                         double *y)
{
    /* Fixed-point iteration x <- x - (distort(x) - x_distorted), as OpenCV's
     * undistortPoints does; 1e-12 is far below a pixel for any focal length. */
    enum { MAX_ITERATIONS = 100 };
    double ux = x_distorted, uy = y_distorted;
    for (int iteration = 0; iteration < MAX_ITERATIONS; iteration++) {
        double dx, dy;
        od_distortion_apply(distortion, ux, uy, &dx, &dy);
        double ex = dx - x_distorted, ey = dy - y_distorted;
        ux -= ex;
        uy -= ey;
        if (!isfinite(ux) || !isfinite(uy))
            break;
        if (fabs(ex) < 1e-12 && fabs(ey) < 1e-12) {
            *x = ux;
            *y = uy;
            return 0;
        }
    }
    *x = ux;
    *y = uy;
    return -1;
}

void od_camera_look_at(od_camera *camera, const double eye[3], const double target[3])
{
    double forward[3] = {target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]};
    double length = sqrt(forward[0] * forward[0] + forward[1] * forward[1] + forward[2] * forward[2]);
    for (int d = 0; d < 3; d++)
        forward[d] /= length;

    /* right = forward x up (z) lies in the floor plane; down = forward x right. */
    double right[3] = {forward[1], -forward[0], 0};
    length = sqrt(right[0] * right[0] + right[1] * right[1]);
    right[0] /= length;
    right[1] /= length;
    double down[3] = {forward[1] * right[2] - forward[2] * right[1], forward[2] * right[0] - forward[0] * right[2],
                      forward[0] * right[1] - forward[1] * right[0]};

    const double *rows[3] = {right, down, forward};
    for (int i = 0; i < 3; i++) {
        double t = 0;
        for (int d = 0; d < 3; d++) {
            camera->world_to_camera[i * 4 + d] = rows[i][d];
            t -= rows[i][d] * eye[d];
        }
        camera->world_to_camera[i * 4 + 3] = t;
    }
    camera->world_to_camera[12] = camera->world_to_camera[13] = camera->world_to_camera[14] = 0;
    camera->world_to_camera[15] = 1;
}
