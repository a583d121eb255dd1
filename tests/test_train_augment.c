/* Training augmentation (model/augment.h): a changed camera sees the
 * changed world as the original camera saw the original, mirrored
 * horizontally when the change flips; boxes follow their corners; the
 * draws stay in range and repeat for a seed. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "geometry/box.h"
#include "geometry/camera.h"
#include "model/augment.h"
#include "testlib.h"

static od_camera make_camera(void)
{
    od_camera camera;
    memset(&camera, 0, sizeof camera);
    camera.width = 128;
    camera.height = 96;
    const double K[9] = {100.0, 0.0, 60.3, 0.0, 100.0, 47.1, 0.0, 0.0, 1.0};
    memcpy(camera.K, K, sizeof K);
    const double eye[3] = {0.9, -0.4, 0.6}, target[3] = {0.05, 0.02, 0.05};
    od_camera_look_at(&camera, eye, target);
    return camera;
}

static void check_camera_follows(int flip)
{
    const od_camera camera = make_camera();
    od_augment a = od_augment_identity();
    a.angle = 2.1;
    a.translation[0] = 0.07;
    a.translation[1] = -0.04;
    a.flip = flip;
    od_camera changed;
    od_augment_camera(&a, &camera, &changed);
    OD_CHECK(od_camera_validate(&changed, "augmented camera", NULL) == 0);

    const double points[3][3] = {{0.0, 0.0, 0.0}, {0.1, -0.05, 0.12}, {-0.2, 0.15, 0.03}};
    for (int i = 0; i < 3; i++) {
        double moved[3], pixel[2], pixel_changed[2], depth = 0.0, depth_changed = 0.0;
        od_augment_point(&a, points[i], moved);
        OD_CHECK(od_camera_project(&camera, points[i], pixel, &depth) == 1);
        OD_CHECK(od_camera_project(&changed, moved, pixel_changed, &depth_changed) == 1);
        const double expected_u = flip ? camera.width - 1.0 - pixel[0] : pixel[0];
        OD_CHECK(fabs(pixel_changed[0] - expected_u) < 1e-9);
        OD_CHECK(fabs(pixel_changed[1] - pixel[1]) < 1e-9);
        OD_CHECK(fabs(depth_changed - depth) < 1e-12);
    }
}

static void camera_follows_rotation(void)
{
    check_camera_follows(0);
}

static void camera_follows_flip(void)
{
    check_camera_follows(1);
}

/* Each corner of the changed box is a changed corner of the original. */
static void check_box_follows(int flip)
{
    const od_box box = {{0.1, -0.2, 0.05}, {0.2, 0.1, 0.1}, 0.4};
    od_augment a = od_augment_identity();
    a.angle = -1.3;
    a.translation[0] = 0.02;
    a.translation[1] = 0.09;
    a.flip = flip;
    od_box changed;
    od_augment_box(&a, &box, &changed);
    double corners[8][3], changed_corners[8][3];
    od_box_corners(&box, corners);
    od_box_corners(&changed, changed_corners);
    for (int i = 0; i < 8; i++) {
        double moved[3];
        od_augment_point(&a, corners[i], moved);
        double nearest = INFINITY;
        for (int j = 0; j < 8; j++) {
            const double dx = moved[0] - changed_corners[j][0], dy = moved[1] - changed_corners[j][1],
                         dz = moved[2] - changed_corners[j][2];
            nearest = fmin(nearest, sqrt(dx * dx + dy * dy + dz * dz));
        }
        OD_CHECK(nearest < 1e-9);
    }
}

static void box_follows_rotation(void)
{
    check_box_follows(0);
}

static void box_follows_flip(void)
{
    check_box_follows(1);
}

static void draws_in_range_and_repeat(void)
{
    od_rng rng, again;
    od_rng_seed(&rng, 7);
    od_rng_seed(&again, 7);
    int flips = 0;
    for (int i = 0; i < 200; i++) {
        const od_augment a = od_augment_draw(&rng, 150.0, 0.1, 1);
        const od_augment b = od_augment_draw(&again, 150.0, 0.1, 1);
        OD_CHECK(fabs(a.angle) <= 150.0 * 3.14159265358979323846 / 180.0);
        OD_CHECK(fabs(a.translation[0]) <= 0.1 && fabs(a.translation[1]) <= 0.1);
        OD_CHECK(memcmp(&a, &b, sizeof a) == 0);
        flips += a.flip;
    }
    OD_CHECK(flips > 50 && flips < 150);
    const od_augment none = od_augment_draw(&rng, 0.0, 0.0, 0);
    OD_CHECK(none.angle == 0.0 && none.translation[0] == 0.0 && none.flip == 0);
}

static void mirror_rows_swaps_columns(void)
{
    float data[2 * 3 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const float expected[2 * 3 * 2] = {5, 6, 3, 4, 1, 2, 11, 12, 9, 10, 7, 8};
    od_augment_mirror_rows(data, 2, 3, 2);
    OD_CHECK(memcmp(data, expected, sizeof data) == 0);
}

int main(void)
{
    OD_RUN(camera_follows_rotation);
    OD_RUN(camera_follows_flip);
    OD_RUN(box_follows_rotation);
    OD_RUN(box_follows_flip);
    OD_RUN(draws_in_range_and_repeat);
    OD_RUN(mirror_rows_swaps_columns);
    return od_test_finish();
}
