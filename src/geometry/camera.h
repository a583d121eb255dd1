/* Pinhole cameras: intrinsics K, world-to-camera poses, projection, lens
 * distortion, and the conversions between the pose conventions that scene
 * files use.
 *
 * Conventions, for every camera in oddone:
 * - Camera axes are OpenCV's: x right, y down, z forward (into the scene).
 * - world_to_camera maps a world point p to camera coordinates
 *   R p + t; it is a row-major 4x4 [R t; 0 0 0 1].
 * - Pixel coordinates put pixel centres on integers: pixel (row i,
 *   column j) has its centre at (j, i) and covers [j - 0.5, j + 0.5), as in
 *   OpenCV and io/image.h. COLMAP, nerfstudio, instant-ngp and Blender
 *   measure the principal point from the image's top-left corner instead
 *   (first pixel centre at (0.5, 0.5)), so the loaders subtract 0.5 from
 *   their cx and cy.
 *
 * Cameras sit at the start of the data path: the scene loaders fill them,
 * and lifting, rendering and drawing project through them. */
#ifndef ODDONE_GEOMETRY_CAMERA_H
#define ODDONE_GEOMETRY_CAMERA_H

#include "core/error.h"

/* Points closer to the camera plane than this depth (in world units, along
 * the optical axis) are behind the camera for projection: they get no pixel.
 * Small enough for captured scenes in arbitrary units. */
#define OD_CAMERA_MIN_DEPTH 1e-6

/* Largest deviation of R R^T from the identity (elementwise) and of det R
 * from 1 accepted as a rotation. Poses written as float32 by renderers and
 * phone apps are orthonormal to about 1e-6; 1e-3 still rejects scaled or
 * sheared matrices, which deviate by far more. */
#define OD_ROTATION_TOLERANCE 1e-3

typedef struct od_camera {
    int width;  /* image size in pixels */
    int height;
    double K[9];                /* row-major [fx 0 cx; 0 fy cy; 0 0 1], pixels */
    double world_to_camera[16]; /* row-major [R t; 0 0 0 1], OpenCV axes */
} od_camera;

/* Lens distortion in OpenCV's model, on normalised coordinates (x, y) =
 * (X/Z, Y/Z): with r2 = x^2 + y^2 and radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3,
 *   xd = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
 *   yd = y radial + p1 (r2 + 2 y^2) + 2 p2 x y.
 * COLMAP's SIMPLE_RADIAL (k1), RADIAL (k1, k2) and OPENCV (k1, k2, p1, p2)
 * models are special cases. All zero means a pinhole camera. */
typedef struct od_distortion {
    double k1, k2, k3;
    double p1, p2;
} od_distortion;

/* ---- projection ---------------------------------------------------------- */

/* Projects a world point. Returns 1 and writes the pixel (and the depth
 * along the optical axis, when depth is not NULL) when the point lies in
 * front of the camera (depth > OD_CAMERA_MIN_DEPTH); returns 0 and writes
 * nothing when it lies on or behind the camera plane. A returned 1 does not
 * mean the pixel is inside the image: see od_camera_sees. */
int od_camera_project(const od_camera *camera, const double point[3], double pixel[2], double *depth);

/* Returns 1 when the world point is in front of the camera and projects
 * inside the image ([-0.5, width - 0.5) x [-0.5, height - 0.5)); 0 otherwise. */
int od_camera_sees(const od_camera *camera, const double point[3]);

/* Clips the world segment a-b to the part in front of the camera
 * (depth >= OD_CAMERA_MIN_DEPTH plus a margin) and projects its ends. Returns 0 when no part of
 * the segment is in front. The pixels may lie outside the image. */
int od_camera_project_segment(const od_camera *camera, const double a[3], const double b[3],
                              double pixel_a[2], double pixel_b[2]);

/* ---- pose queries ---------------------------------------------------------- */

/* Writes the camera centre in world coordinates, -R^T t. */
void od_camera_center(const od_camera *camera, double center[3]);

/* Writes the world directions of the camera's x (right), y (down) and
 * z (forward) axes: the rows of R. Any output may be NULL. */
void od_camera_axes(const od_camera *camera, double right[3], double down[3], double forward[3]);

/* Sets camera->world_to_camera for a camera at eye looking at target in a
 * z-up world, with OpenCV axes and no roll (x right, parallel to the
 * floor). K, width and height are left as they are. eye and target must
 * differ, and the view direction must not be vertical. */
void od_camera_look_at(od_camera *camera, const double eye[3], const double target[3]);

/* Scales K for an image resized to width x height by od_image_resize: with
 * sx = width / old width, fx' = fx sx and cx' = (cx + 0.5) sx - 0.5, the
 * same for y. The pose is unchanged. */
void od_camera_resize(od_camera *camera, int width, int height);

/* ---- validation ---------------------------------------------------------------- */

/* Validates a camera. Every entry of K and the pose must be finite, fx and
 * fy positive, the skew zero and K's last row (0, 0, 1). The principal
 * point must lie inside the image, and the size must be positive. R must
 * be a rotation (orthonormal, det +1) and the pose's last row (0, 0, 0, 1).
 * `what` names the camera in the message ("images.txt, image 3"). */
int od_camera_validate(const od_camera *camera, const char *what, od_error *err);

/* Checks that a row-major 3x3 matrix is a rotation within
 * OD_ROTATION_TOLERANCE. On failure writes the reason into `why` and
 * returns -1. */
int od_rotation_check(const double rotation[9], char *why, int why_size);

/* ---- conventions ---------------------------------------------------------------- */

/* Writes the rotation of a unit quaternion (w, x, y, z), as COLMAP stores
 * it, into a row-major 3x3 matrix. The quaternion is normalised first. */
void od_rotation_from_quaternion(const double quaternion[4], double rotation[9]);

/* Inverts a rigid 4x4 transform [R t; 0 1] (R orthonormal) into
 * [R^T -R^T t; 0 1]. */
void od_rigid_invert(const double transform[16], double inverse[16]);

/* Multiplies two row-major 4x4 matrices: out = a b. out may alias neither. */
void od_mat4_multiply(const double a[16], const double b[16], double out[16]);

/* Converts a camera-to-world matrix in OpenGL axes (x right, y up,
 * z backward), as transforms.json stores it, into a world-to-camera matrix
 * in OpenCV axes. */
void od_camera_from_opengl_camera_to_world(const double camera_to_world[16], double world_to_camera[16]);

/* ---- lens distortion -------------------------------------------------------------- */

/* Returns 1 when every coefficient is zero. */
int od_distortion_is_zero(const od_distortion *distortion);

/* Applies the distortion to normalised coordinates (x, y). */
void od_distortion_apply(const od_distortion *distortion, double x, double y, double *x_distorted,
                         double *y_distorted);

/* Inverts od_distortion_apply by fixed-point iteration, for the mild
 * distortion of ordinary lenses. Returns 0 when it converged, -1 otherwise. */
int od_distortion_remove(const od_distortion *distortion, double x_distorted, double y_distorted, double *x,
                         double *y);

#endif
