/* Training augmentation: one rigid change of the world per step, applied to
 * the cameras and the ground-truth boxes together so that they stay
 * consistent with the images.
 *
 * The change maps a world point p to A p + b with A = Rz(angle) M^flip,
 * where Rz is a rotation about the world z (up) axis, M mirrors the
 * world's x axis and b = (tx, ty, 0) is a translation on the floor. The
 * floor stays at z = 0, so the scene stays inside the grid's height.
 *
 * A mirror cannot be written as a camera pose with det R = +1, which
 * every camera must have. So a flipped step also mirrors each view's
 * images horizontally (pixel column j becomes width - 1 - j) and the
 * camera's x axis: the pose becomes F R A^-1 with F = diag(-1, 1, 1),
 * whose determinant is +1 again, and cx becomes width - 1 - cx. The
 * caller mirrors the view's images and maps (od_augment_mirror_rows). */
#ifndef ODDONE_MODEL_AUGMENT_H
#define ODDONE_MODEL_AUGMENT_H

#include <stdint.h>

#include "core/rng.h"
#include "geometry/box.h"
#include "geometry/camera.h"

typedef struct od_augment {
    double angle;          /* radians about world z */
    double translation[2]; /* metres along world x and y */
    int flip;              /* 1: the world's x axis is mirrored first */
} od_augment;

/* Returns the identity change. */
od_augment od_augment_identity(void);

/* Draws a change: the angle uniform in [-rotation_degrees,
 * rotation_degrees], each translation uniform in [-translation,
 * translation] metres, and flip with probability 1/2 when flips is
 * nonzero. The draws come from rng in that order. */
od_augment od_augment_draw(od_rng *rng, double rotation_degrees, double translation, int flips);

/* Maps a world point: out = A p + b. out may alias p. */
void od_augment_point(const od_augment *augment, const double p[3], double out[3]);

/* Maps a box: its centre as a point and its yaw by the rotation. A
 * mirrored x axis first turns yaw into pi - yaw. The size is unchanged. */
void od_augment_box(const od_augment *augment, const od_box *box, od_box *out);

/* Maps a camera so that it projects the changed world to the pixels where
 * the original camera projected the original world (mirrored horizontally
 * when flip is set; see above). */
void od_augment_camera(const od_augment *augment, const od_camera *camera, od_camera *out);

/* Mirrors an image or map of height x width cells of `channels` floats
 * horizontally, in place. */
void od_augment_mirror_rows(float *data, int64_t height, int64_t width, int64_t channels);

#endif
