/* Tests of geometry/camera and geometry/box: projection, points behind the
 * camera, pose conventions, validation messages, resizing, lens
 * distortion, box corners and projected outlines. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "geometry/box.h"
#include "geometry/camera.h"
#include "scene_fixture.h"
#include "testlib.h"

/* A 640 x 480 camera at (0, -2, 0) looking along +y at the origin. */
static od_camera camera_looking_along_y(void)
{
    od_camera camera;
    memset(&camera, 0, sizeof camera);
    camera.width = 640;
    camera.height = 480;
    double K[9] = {500, 0, 319.5, 0, 500, 239.5, 0, 0, 1};
    memcpy(camera.K, K, sizeof K);
    const double center[3] = {0, -2, 0}, target[3] = {0, 0, 0};
    fixture_look_at(center, target, camera.world_to_camera);
    return camera;
}

static void test_project_known_point(void)
{
    od_camera camera = camera_looking_along_y();
    /* World x is the camera's right, world z its up (image y down). */
    const double point[3] = {0.2, 0.0, 0.1};
    double pixel[2], depth;
    OD_CHECK(od_camera_project(&camera, point, pixel, &depth) == 1);
    OD_CHECK(fabs(depth - 2.0) < 1e-12);
    OD_CHECK(fabs(pixel[0] - (319.5 + 500 * 0.2 / 2.0)) < 1e-9);
    OD_CHECK(fabs(pixel[1] - (239.5 - 500 * 0.1 / 2.0)) < 1e-9);
    OD_CHECK(od_camera_sees(&camera, point) == 1);
}

static void test_point_behind_camera_not_visible(void)
{
    od_camera camera = camera_looking_along_y();
    /* (0.01, -3, 0.01) is 1 m behind the camera; a naive x/z projection
     * lands it at (314.5, 244.5), well inside the image. */
    const double behind[3] = {0.01, -3.0, 0.01};
    double pixel[2] = {-7, -7}, depth = -7;
    OD_CHECK(od_camera_project(&camera, behind, pixel, &depth) == 0);
    OD_CHECK(pixel[0] == -7 && pixel[1] == -7 && depth == -7);
    OD_CHECK(od_camera_sees(&camera, behind) == 0);
    double naive_x = 500 * (0.01 / -1.0) + 319.5, naive_y = 500 * (-0.01 / -1.0) + 239.5;
    OD_CHECK(naive_x > 0 && naive_x < 640 && naive_y > 0 && naive_y < 480);

    /* On the camera plane (depth 0) is not visible either. */
    const double on_plane[3] = {0.5, -2.0, 0.0};
    OD_CHECK(od_camera_project(&camera, on_plane, pixel, NULL) == 0);

    /* Inside the frustum's depth range but outside the image: projects,
     * but is not seen. */
    const double aside[3] = {5.0, 0.0, 0.0};
    OD_CHECK(od_camera_project(&camera, aside, pixel, NULL) == 1);
    OD_CHECK(od_camera_sees(&camera, aside) == 0);
}

static void test_segment_clipped_at_camera_plane(void)
{
    od_camera camera = camera_looking_along_y();
    const double front[3] = {0.0, 0.0, 0.0}, behind[3] = {0.0, -4.0, 1.0};
    double a[2], b[2];
    OD_CHECK(od_camera_project_segment(&camera, front, behind, a, b) == 1);
    OD_CHECK(fabs(a[0] - 319.5) < 1e-9 && fabs(a[1] - 239.5) < 1e-9);
    /* The clipped end runs far off the top of the image (upward, y < 0). */
    OD_CHECK(b[1] < -1e5);
    const double behind2[3] = {1.0, -5.0, 0.0};
    OD_CHECK(od_camera_project_segment(&camera, behind, behind2, a, b) == 0);
}

static void test_center_is_minus_rt_t(void)
{
    /* A COLMAP pose: quaternion (w, x, y, z) and translation t. */
    const double quaternion[4] = {0.7, 0.2, -0.5, 0.3};
    double rotation[9];
    od_rotation_from_quaternion(quaternion, rotation);
    char why[256];
    OD_CHECK(od_rotation_check(rotation, why, (int)sizeof why) == 0);

    od_camera camera;
    memset(&camera, 0, sizeof camera);
    const double t[3] = {0.3, -1.2, 2.5};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            camera.world_to_camera[i * 4 + j] = rotation[i * 3 + j];
        camera.world_to_camera[i * 4 + 3] = t[i];
    }
    camera.world_to_camera[15] = 1.0;
    double center[3];
    od_camera_center(&camera, center);
    for (int k = 0; k < 3; k++) {
        double expected = -(rotation[0 * 3 + k] * t[0] + rotation[1 * 3 + k] * t[1] + rotation[2 * 3 + k] * t[2]);
        OD_CHECK(fabs(center[k] - expected) < 1e-12);
        /* The centre is not t (a common mistake). */
    }
    OD_CHECK(fabs(center[0] - t[0]) > 0.1 || fabs(center[1] - t[1]) > 0.1);

    /* The centre maps to the camera origin. */
    double camera_point[3];
    for (int i = 0; i < 3; i++)
        camera_point[i] = camera.world_to_camera[i * 4 + 0] * center[0] + camera.world_to_camera[i * 4 + 1] * center[1] +
                          camera.world_to_camera[i * 4 + 2] * center[2] + camera.world_to_camera[i * 4 + 3];
    for (int k = 0; k < 3; k++)
        OD_CHECK(fabs(camera_point[k]) < 1e-12);
}

static void test_quaternion_known_rotation(void)
{
    /* 90 degrees about z: (cos 45, 0, 0, sin 45). */
    const double quaternion[4] = {sqrt(0.5), 0, 0, sqrt(0.5)};
    double rotation[9];
    od_rotation_from_quaternion(quaternion, rotation);
    const double expected[9] = {0, -1, 0, 1, 0, 0, 0, 0, 1};
    for (int i = 0; i < 9; i++)
        OD_CHECK(fabs(rotation[i] - expected[i]) < 1e-12);
}

static void test_opengl_camera_to_world_conversion(void)
{
    /* An OpenGL camera at (1, 2, 3) looking down -z of the world with
     * identity rotation looks along world -z with image up = world +y. */
    const double camera_to_world[16] = {1, 0, 0, 1, 0, 1, 0, 2, 0, 0, 1, 3, 0, 0, 0, 1};
    od_camera camera = camera_looking_along_y();
    od_camera_from_opengl_camera_to_world(camera_to_world, camera.world_to_camera);
    double center[3], right[3], down[3], forward[3];
    od_camera_center(&camera, center);
    od_camera_axes(&camera, right, down, forward);
    OD_CHECK(fabs(center[0] - 1) < 1e-12 && fabs(center[1] - 2) < 1e-12 && fabs(center[2] - 3) < 1e-12);
    OD_CHECK(fabs(forward[2] + 1) < 1e-12);
    OD_CHECK(fabs(down[1] + 1) < 1e-12);
    OD_CHECK(fabs(right[0] - 1) < 1e-12);
    /* A point in front (world z < 3) projects. */
    const double point[3] = {1, 2, 0};
    double pixel[2];
    OD_CHECK(od_camera_project(&camera, point, pixel, NULL) == 1);
}

static void test_validate_rejects_bad_cameras(void)
{
    od_error err;
    od_camera good = camera_looking_along_y();
    OD_CHECK(od_camera_validate(&good, "cam", &err) == 0);

    od_camera camera = good;
    camera.world_to_camera[5] = NAN;
    OD_CHECK(od_camera_validate(&camera, "images.txt, image 3", &err) == -1);
    OD_CHECK(strstr(err.message, "images.txt, image 3") != NULL && strstr(err.message, "finite") != NULL);

    camera = good;
    camera.K[0] = 0.0;
    OD_CHECK(od_camera_validate(&camera, "cam", &err) == -1);
    OD_CHECK(strstr(err.message, "focal length") != NULL && strstr(err.message, "positive") != NULL);

    camera = good;
    camera.K[4] = -3.0;
    OD_CHECK(od_camera_validate(&camera, "cam", &err) == -1);

    camera = good;
    camera.K[2] = 700.0; /* outside the 640-wide image */
    OD_CHECK(od_camera_validate(&camera, "cam", &err) == -1);
    OD_CHECK(strstr(err.message, "principal point") != NULL);

    camera = good;
    camera.world_to_camera[0] *= 1.1; /* scaled rotation */
    OD_CHECK(od_camera_validate(&camera, "cam", &err) == -1);
    OD_CHECK(strstr(err.message, "orthonormal") != NULL);

    camera = good;
    for (int j = 0; j < 3; j++)
        camera.world_to_camera[j] = -camera.world_to_camera[j]; /* reflection */
    OD_CHECK(od_camera_validate(&camera, "cam", &err) == -1);
    OD_CHECK(strstr(err.message, "determinant") != NULL);

    camera = good;
    camera.K[1] = 2.0;
    OD_CHECK(od_camera_validate(&camera, "cam", &err) == -1);

    camera = good;
    camera.world_to_camera[14] = 1.0;
    OD_CHECK(od_camera_validate(&camera, "cam", &err) == -1);
    OD_CHECK(strstr(err.message, "last row") != NULL);
}

static void test_resize_scales_intrinsics(void)
{
    od_camera camera = camera_looking_along_y();
    /* 640 x 480 to 256 x 128: sx = 0.4, sy = 4/15 (not square). */
    od_camera_resize(&camera, 256, 128);
    double sx = 256.0 / 640.0, sy = 128.0 / 480.0;
    OD_CHECK(camera.width == 256 && camera.height == 128);
    OD_CHECK(fabs(camera.K[0] - 500 * sx) < 1e-9);
    OD_CHECK(fabs(camera.K[4] - 500 * sy) < 1e-9);
    /* Pixel centres on integers: the image centre (319.5) maps to 127.5. */
    OD_CHECK(fabs(camera.K[2] - ((319.5 + 0.5) * sx - 0.5)) < 1e-9);
    OD_CHECK(fabs(camera.K[5] - ((239.5 + 0.5) * sy - 0.5)) < 1e-9);
    OD_CHECK(fabs(camera.K[2] - 127.5) < 1e-9 && fabs(camera.K[5] - 63.5) < 1e-9);

    /* A world point lands on the same relative position of the image:
     * (u + 0.5) scales by sx. */
    od_camera original = camera_looking_along_y();
    const double point[3] = {0.3, 0.5, -0.2};
    double before[2], after[2];
    OD_CHECK(od_camera_project(&original, point, before, NULL) == 1);
    OD_CHECK(od_camera_project(&camera, point, after, NULL) == 1);
    OD_CHECK(fabs((after[0] + 0.5) - (before[0] + 0.5) * sx) < 1e-9);
    OD_CHECK(fabs((after[1] + 0.5) - (before[1] + 0.5) * sy) < 1e-9);
}

static void test_distortion_round_trip(void)
{
    const od_distortion distortion = {-0.12, 0.03, 0.0, 0.001, -0.0005};
    OD_CHECK(!od_distortion_is_zero(&distortion));
    for (double x = -0.6; x <= 0.6; x += 0.2) {
        for (double y = -0.45; y <= 0.45; y += 0.15) {
            double xd, yd, xu, yu;
            od_distortion_apply(&distortion, x, y, &xd, &yd);
            OD_CHECK(od_distortion_remove(&distortion, xd, yd, &xu, &yu) == 0);
            OD_CHECK(fabs(xu - x) < 1e-9 && fabs(yu - y) < 1e-9);
        }
    }
    /* k1 alone: r' = r (1 + k1 r^2). */
    const od_distortion radial = {0.1, 0, 0, 0, 0};
    double xd, yd;
    od_distortion_apply(&radial, 0.5, 0.0, &xd, &yd);
    OD_CHECK(fabs(xd - 0.5 * (1 + 0.1 * 0.25)) < 1e-15 && yd == 0.0);
}

static void test_box_corners_and_contains(void)
{
    od_box box = {{1.0, 2.0, 0.5}, {0.4, 0.2, 1.0}, 0.5 * FIXTURE_PI};
    double corners[8][3];
    od_box_corners(&box, corners);
    /* Yaw 90 degrees: the box's x axis is the world's y. Corner 1 is
     * (+x, -y, -z) in box axes, i.e. world (1 + 0.1, 2 + 0.2, 0). */
    OD_CHECK(fabs(corners[1][0] - 1.1) < 1e-12 && fabs(corners[1][1] - 2.2) < 1e-12 && fabs(corners[1][2]) < 1e-12);
    OD_CHECK(fabs(corners[6][0] - 0.9) < 1e-12 && fabs(corners[6][1] - 1.8) < 1e-12 &&
             fabs(corners[6][2] - 1.0) < 1e-12);
    const double inside[3] = {1.05, 2.15, 0.9}, outside[3] = {1.15, 2.0, 0.5};
    OD_CHECK(od_box_contains(&box, inside));
    OD_CHECK(!od_box_contains(&box, outside));
    for (int e = 0; e < 12; e++) {
        /* Each edge joins corners that differ in exactly one bit. */
        int difference = od_box_edges[e][0] ^ od_box_edges[e][1];
        OD_CHECK(difference == 1 || difference == 2 || difference == 4);
    }
}

static void test_convex_hull_square_with_inner_points(void)
{
    const double points[] = {0, 0, 2, 0, 1, 1, 2, 2, 0, 2, 1, 0, 0.5, 1.5, 2, 2};
    double hull[16];
    int count = od_convex_hull_2d(points, 8, hull);
    OD_CHECK(count == 4);
    OD_CHECK(od_convex_polygon_contains(hull, count, 1.0, 1.0));
    OD_CHECK(od_convex_polygon_contains(hull, count, 2.0, 1.0)); /* on the edge */
    OD_CHECK(!od_convex_polygon_contains(hull, count, 2.1, 1.0));
    OD_CHECK(!od_convex_polygon_contains(hull, count, -0.1, -0.1));
    /* Degenerate inputs. */
    OD_CHECK(od_convex_hull_2d(points, 1, hull) == 1);
    const double line[] = {0, 0, 1, 1, 2, 2};
    OD_CHECK(od_convex_hull_2d(line, 3, hull) == 2);
    OD_CHECK(!od_convex_polygon_contains(hull, 2, 1, 1));
}

static void test_box_hull_covers_projected_interior(void)
{
    od_camera camera = camera_looking_along_y();
    od_box box = {{0.1, 0.3, -0.1}, {0.3, 0.2, 0.15}, 0.7};
    double hull[40];
    int count = od_box_project_hull(&box, &camera, hull);
    OD_CHECK(count >= 4 && count <= 6);
    /* Every point inside the box projects inside the outline. */
    int outside = 0;
    for (int i = 0; i <= 10; i++)
        for (int j = 0; j <= 10; j++)
            for (int k = 0; k <= 10; k++) {
                double local[3] = {(i / 10.0 - 0.5) * box.size[0], (j / 10.0 - 0.5) * box.size[1],
                                   (k / 10.0 - 0.5) * box.size[2]};
                double c = cos(box.yaw), s = sin(box.yaw);
                double point[3] = {box.center[0] + c * local[0] - s * local[1],
                                   box.center[1] + s * local[0] + c * local[1], box.center[2] + local[2]};
                double pixel[2];
                OD_CHECK(od_camera_project(&camera, point, pixel, NULL));
                /* The outline passes through projected corners; allow
                 * round-off on its edges. */
                if (!od_convex_polygon_contains(hull, count, pixel[0], pixel[1]) &&
                    !od_convex_polygon_contains(hull, count, pixel[0] + 1e-9, pixel[1] + 1e-9) &&
                    !od_convex_polygon_contains(hull, count, pixel[0] - 1e-9, pixel[1] - 1e-9))
                    outside++;
            }
    OD_CHECK(outside == 0);

    /* A box around the camera: only the part in front projects. */
    od_box around = {{0.0, -2.0, 0.0}, {1.0, 1.0, 1.0}, 0.0};
    count = od_box_project_hull(&around, &camera, hull);
    OD_CHECK(count >= 3);
    od_box behind = {{0.0, -4.0, 0.0}, {1.0, 1.0, 1.0}, 0.0};
    OD_CHECK(od_box_project_hull(&behind, &camera, hull) == 0);
}

int main(void)
{
    OD_RUN(test_project_known_point);
    OD_RUN(test_point_behind_camera_not_visible);
    OD_RUN(test_segment_clipped_at_camera_plane);
    OD_RUN(test_center_is_minus_rt_t);
    OD_RUN(test_quaternion_known_rotation);
    OD_RUN(test_opengl_camera_to_world_conversion);
    OD_RUN(test_validate_rejects_bad_cameras);
    OD_RUN(test_resize_scales_intrinsics);
    OD_RUN(test_distortion_round_trip);
    OD_RUN(test_box_corners_and_contains);
    OD_RUN(test_convex_hull_square_with_inner_points);
    OD_RUN(test_box_hull_covers_projected_interior);
    return od_test_finish();
}
