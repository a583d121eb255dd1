/* Tests of the COLMAP text loader: camera centres from world-to-camera
 * poses, every camera model, undistortion of radial models, agreement with
 * the same cameras written as transforms.json, the floor from sparse
 * points, the automatic scale, and rejected files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scene/scene.h"
#include "scene_fixture.h"
#include "testlib.h"

#define VIEWS 6

static const char *const names[VIEWS] = {"a.png", "b.png", "c.png", "d.png", "e.png", "f.png"};

static void ring_cameras(fixture_camera *cameras)
{
    const double target[3] = {0.0, 0.0, 0.02};
    fixture_ring(cameras, VIEWS, 0.8, 30.0, target, 80, 60, 70.0);
}

static od_scene *load_with(const char *path, const od_scene_options *options)
{
    od_scene *scene = NULL;
    od_error err;
    if (od_scene_load(path, options, &scene, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        OD_CHECK(!"scene loads");
    }
    return scene;
}

static od_scene_options kept_frame(void)
{
    od_scene_options options = od_scene_options_default();
    options.keep_frame = 1;
    return options;
}

/* Writes cameras.txt and images.txt given as text, and 80 x 60 images for
 * the names a.png and b.png, into a fresh folder. */
static const char *write_model(const char *cameras_text, const char *images_text)
{
    const char *dir = od_test_temp_dir();
    fixture_write_text(fixture_path(dir, "cameras.txt"), cameras_text);
    fixture_write_text(fixture_path(dir, "images.txt"), images_text);
    fixture_mkdir(fixture_path(dir, "images"));
    fixture_write_image(fixture_path(dir, "images/a.png"), 80, 60, 0.5f, 0.5f, 0.5f);
    fixture_write_image(fixture_path(dir, "images/b.png"), 80, 60, 0.5f, 0.5f, 0.5f);
    return dir;
}

static void test_camera_center_is_minus_rt_t(void)
{
    /* Two views of a known pose: the quaternion (w, x, y, z) of a camera
     * 1 m along +x looking back at the origin. */
    fixture_camera cameras[2];
    const double target[3] = {0, 0, 0};
    fixture_ring(cameras, 2, 1.0, 20.0, target, 80, 60, 70.0);
    fixture_text images = {0};
    double expected_centers[2][3];
    for (int i = 0; i < 2; i++) {
        double rotation[9], q[4];
        const double *m = cameras[i].world_to_camera;
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                rotation[r * 3 + c] = m[r * 4 + c];
        fixture_quaternion(rotation, q);
        fixture_append(&images, "%d %.17g %.17g %.17g %.17g %.17g %.17g %.17g 1 %s\n\n", i + 1, q[0], q[1], q[2],
                       q[3], m[3], m[7], m[11], names[i]);
        for (int k = 0; k < 3; k++)
            expected_centers[i][k] = -(rotation[0 * 3 + k] * m[3] + rotation[1 * 3 + k] * m[7] +
                                       rotation[2 * 3 + k] * m[11]);
    }
    const char *dir = write_model("1 PINHOLE 80 60 70 70 40 30\n", images.data);
    free(images.data);
    od_scene_options options = kept_frame();
    od_scene *scene = load_with(dir, &options);
    if (scene == NULL)
        return;
    OD_CHECK(scene->format == OD_SCENE_FORMAT_COLMAP);
    for (int i = 0; i < 2; i++) {
        double center[3];
        od_camera_center(&scene->views[i].camera, center);
        for (int k = 0; k < 3; k++)
            OD_CHECK(fabs(center[k] - expected_centers[i][k]) < 1e-9);
        /* The centre is on the ring of radius 1, which t is not. */
        OD_CHECK(fabs(sqrt(center[0] * center[0] + center[1] * center[1] + center[2] * center[2]) - 1.0) < 1e-9);
        const double *m = scene->views[i].camera.world_to_camera;
        OD_CHECK(fabs(center[0] - m[3]) > 0.05 || fabs(center[1] - m[7]) > 0.05 || fabs(center[2] - m[11]) > 0.05);
    }
    od_scene_free(scene);
}

static void test_every_camera_model(void)
{
    /* The same pose in each model; K loses 0.5 on cx and cy. */
    static const struct {
        const char *line;
        double fx, fy, cx, cy, k1, k2, p1, p2;
    } cases[] = {
        {"1 SIMPLE_PINHOLE 80 60 70 41 29\n", 70, 70, 40.5, 28.5, 0, 0, 0, 0},
        {"1 PINHOLE 80 60 70 72 41 29\n", 70, 72, 40.5, 28.5, 0, 0, 0, 0},
        {"1 SIMPLE_RADIAL 80 60 70 41 29 -0.05\n", 70, 70, 40.5, 28.5, -0.05, 0, 0, 0},
        {"1 RADIAL 80 60 70 41 29 -0.05 0.01\n", 70, 70, 40.5, 28.5, -0.05, 0.01, 0, 0},
        {"1 OPENCV 80 60 70 72 41 29 -0.05 0.01 0.001 -0.002\n", 70, 72, 40.5, 28.5, -0.05, 0.01, 0.001, -0.002},
    };
    fixture_camera cameras[2];
    const double target[3] = {0, 0, 0};
    fixture_ring(cameras, 2, 1.0, 20.0, target, 80, 60, 70.0);
    fixture_text images = {0};
    for (int i = 0; i < 2; i++) {
        double rotation[9], q[4];
        const double *m = cameras[i].world_to_camera;
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                rotation[r * 3 + c] = m[r * 4 + c];
        fixture_quaternion(rotation, q);
        /* A points line that is not empty, as COLMAP writes it. */
        fixture_append(&images, "# comment\n%d %.17g %.17g %.17g %.17g %.17g %.17g %.17g 1 %s\n12.5 3.25 -1 40 20 7\n",
                       i + 1, q[0], q[1], q[2], q[3], m[3], m[7], m[11], names[i]);
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *dir = write_model(cases[c].line, images.data);
        od_scene_options options = kept_frame();
        od_scene *scene = load_with(dir, &options);
        if (scene == NULL)
            continue;
        const od_scene_view *view = &scene->views[1];
        OD_CHECK(scene->view_count == 2);
        OD_CHECK(view->camera.K[0] == cases[c].fx && view->camera.K[4] == cases[c].fy);
        OD_CHECK(view->camera.K[2] == cases[c].cx && view->camera.K[5] == cases[c].cy);
        OD_CHECK(view->distortion.k1 == cases[c].k1 && view->distortion.k2 == cases[c].k2);
        OD_CHECK(view->distortion.p1 == cases[c].p1 && view->distortion.p2 == cases[c].p2);
        /* Undistorted images keep the size. */
        od_image image;
        od_error err;
        OD_CHECK(od_scene_read_view_image(scene, 1, &image, &err) == 0);
        OD_CHECK(image.width == 80 && image.height == 60);
        od_image_free(&image);
        od_scene_free(scene);
    }
    free(images.data);
}

static void test_radial_images_undistorted(void)
{
    /* A distorted image of a scene whose colour is linear in the pinhole
     * image's coordinates: red = 0.5 + 0.4 x, green = 0.5 + 0.4 y with
     * (x, y) normalised. After undistortion red and green must be linear
     * in the pixel coordinates again. */
    const int width = 96, height = 72;
    const double f = 60.0, cx = 47.5, cy = 35.5; /* pixel centres on integers */
    const od_distortion distortion = {-0.25, 0.0, 0.0, 0.0, 0.0};
    od_image distorted;
    od_error err;
    OD_CHECK(od_image_new(width, height, 3, &distorted, &err) == 0);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            double xu, yu;
            od_distortion_remove(&distortion, (x - cx) / f, (y - cy) / f, &xu, &yu);
            float *pixel = &distorted.pixels[((size_t)y * width + x) * 3];
            pixel[0] = (float)(0.5 + 0.4 * xu);
            pixel[1] = (float)(0.5 + 0.4 * yu);
            pixel[2] = 0.25f;
        }
    const char *dir = od_test_temp_dir();
    fixture_mkdir(fixture_path(dir, "images"));
    OD_CHECK(od_image_write_png(fixture_path(dir, "images/a.png"), &distorted, &err) == 0);
    OD_CHECK(od_image_write_png(fixture_path(dir, "images/b.png"), &distorted, &err) == 0);
    od_image_free(&distorted);

    fixture_camera cameras[2];
    const double target[3] = {0, 0, 0};
    fixture_ring(cameras, 2, 1.0, 20.0, target, width, height, f);
    fixture_text images = {0};
    for (int i = 0; i < 2; i++) {
        double rotation[9], q[4];
        const double *m = cameras[i].world_to_camera;
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                rotation[r * 3 + c] = m[r * 4 + c];
        fixture_quaternion(rotation, q);
        fixture_append(&images, "%d %.17g %.17g %.17g %.17g %.17g %.17g %.17g 1 %s\n\n", i + 1, q[0], q[1], q[2],
                       q[3], m[3], m[7], m[11], names[i]);
    }
    fixture_text cameras_text = {0};
    fixture_append(&cameras_text, "1 SIMPLE_RADIAL %d %d %g %g %g %g\n", width, height, f, cx + 0.5, cy + 0.5,
                   distortion.k1);
    fixture_write_text(fixture_path(dir, "cameras.txt"), cameras_text.data);
    fixture_write_text(fixture_path(dir, "images.txt"), images.data);
    free(cameras_text.data);
    free(images.data);

    od_scene_options options = kept_frame();
    od_scene *scene = load_with(dir, &options);
    if (scene == NULL)
        return;
    od_image image;
    OD_CHECK(od_scene_read_view_image(scene, 0, &image, &err) == 0);
    if (image.pixels == NULL) {
        od_scene_free(scene);
        return;
    }
    /* Barrel distortion pulls the corners in, so the whole undistorted
     * image has a source. 8-bit storage and bilinear sampling of a
     * slightly curved function: within 1.5 levels of 255. */
    float worst = 0.0f;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            const float *pixel = &image.pixels[((size_t)y * width + x) * 3];
            float red = (float)(0.5 + 0.4 * (x - cx) / f), green = (float)(0.5 + 0.4 * (y - cy) / f);
            worst = fmaxf(worst, fmaxf(fabsf(pixel[0] - red), fabsf(pixel[1] - green)));
        }
    printf("undistortion: worst colour error %.4f (levels of 1/255: %.2f)\n", worst, worst * 255.0f);
    OD_CHECK(worst < 1.5f / 255.0f);
    od_image_free(&image);
    od_scene_free(scene);
}

static void test_transforms_and_colmap_agree(void)
{
    fixture_camera cameras[VIEWS];
    ring_cameras(cameras);
    /* od_test_temp_dir returns a static buffer: keep copies. */
    char colmap_dir[4096], transforms_dir[4096];
    snprintf(colmap_dir, sizeof colmap_dir, "%s", od_test_temp_dir());
    snprintf(transforms_dir, sizeof transforms_dir, "%s", od_test_temp_dir());
    fixture_write_colmap(colmap_dir, cameras, VIEWS, names, 1);
    fixture_write_transforms(transforms_dir, cameras, VIEWS, names, NULL, LAYOUT_FULL_TOP, NULL, 1);

    /* Both in the files' own world, then both through the estimated frame
     * (the same cameras give the same frame; scale 1 for both). */
    for (int estimated = 0; estimated < 2; estimated++) {
        od_scene_options options = od_scene_options_default();
        options.keep_frame = !estimated;
        options.scale = 1.0;
        od_scene *colmap = load_with(colmap_dir, &options);
        od_scene *transforms = load_with(transforms_dir, &options);
        if (colmap == NULL || transforms == NULL) {
            od_scene_free(colmap);
            od_scene_free(transforms);
            return;
        }
        OD_CHECK(colmap->format == OD_SCENE_FORMAT_COLMAP && transforms->format == OD_SCENE_FORMAT_TRANSFORMS);
        OD_CHECK(colmap->view_count == VIEWS && transforms->view_count == VIEWS);
        for (int v = 0; v < VIEWS; v++) {
            float a[25], b[25];
            for (int i = 0; i < 16; i++) {
                a[i] = (float)colmap->views[v].camera.world_to_camera[i];
                b[i] = (float)transforms->views[v].camera.world_to_camera[i];
            }
            for (int i = 0; i < 9; i++) {
                a[16 + i] = (float)colmap->views[v].camera.K[i];
                b[16 + i] = (float)transforms->views[v].camera.K[i];
            }
            OD_CHECK_CLOSE("world_to_camera and K", a, b, 25, 1e-5f, 0.0f);
        }
        od_scene_free(colmap);
        od_scene_free(transforms);
    }
}

/* Moves cameras and points into a world where p' = scale R p + offset. */
static void move_world(fixture_camera *cameras, int count, double *points, int point_count, const double R[9],
                       double scale, const double offset[3])
{
    for (int i = 0; i < count; i++) {
        double *m = cameras[i].world_to_camera;
        double Rc[9], t[3];
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++)
                Rc[r * 3 + c] = m[r * 4 + c];
            t[r] = m[r * 4 + 3];
        }
        /* R_c' = R_c R^T; t_c' = scale t_c - R_c' offset. */
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) {
                double sum = 0.0;
                for (int k = 0; k < 3; k++)
                    sum += Rc[r * 3 + k] * R[c * 3 + k];
                m[r * 4 + c] = sum;
            }
        for (int r = 0; r < 3; r++)
            m[r * 4 + 3] = scale * t[r] - (m[r * 4 + 0] * offset[0] + m[r * 4 + 1] * offset[1] + m[r * 4 + 2] * offset[2]);
    }
    for (int i = 0; i < point_count; i++) {
        double p[3] = {points[i * 3], points[i * 3 + 1], points[i * 3 + 2]};
        for (int r = 0; r < 3; r++)
            points[i * 3 + r] = scale * (R[r * 3] * p[0] + R[r * 3 + 1] * p[1] + R[r * 3 + 2] * p[2]) + offset[r];
    }
}

static void test_floor_from_sparse_points_and_scale(void)
{
    /* The true world: floor z = 0, cameras 0.8 m from a point 2 cm above
     * it, 30 degrees up. Sparse points: a dense floor disc, objects above
     * it, a few stray points below. The file's world is rotated, scaled
     * by 3 and shifted. */
    fixture_camera cameras[VIEWS];
    ring_cameras(cameras);
    enum { FLOOR_POINTS = 400, OBJECT_POINTS = 120, STRAY_POINTS = 12 };
    static double points[(FLOOR_POINTS + OBJECT_POINTS + STRAY_POINTS) * 3];
    int count = 0;
    for (int i = 0; i < FLOOR_POINTS; i++, count++) {
        double angle = i * 2.39996, radius = 0.45 * sqrt((i + 0.5) / FLOOR_POINTS);
        points[count * 3] = radius * cos(angle);
        points[count * 3 + 1] = radius * sin(angle);
        points[count * 3 + 2] = 0.0;
    }
    for (int i = 0; i < OBJECT_POINTS; i++, count++) {
        points[count * 3] = 0.1 + 0.05 * cos(i * 0.7);
        points[count * 3 + 1] = -0.1 + 0.05 * sin(i * 0.7);
        points[count * 3 + 2] = 0.005 + 0.08 * (i % 17) / 17.0;
    }
    for (int i = 0; i < STRAY_POINTS; i++, count++) {
        points[count * 3] = 0.3 * cos(i);
        points[count * 3 + 1] = 0.3 * sin(i);
        points[count * 3 + 2] = -0.05 - 0.02 * i;
    }
    const double R[9] = {0.36, 0.48, -0.8, -0.8, 0.6, 0.0, 0.48, 0.64, 0.6};
    const double offset[3] = {2.0, -1.0, 0.5};
    move_world(cameras, VIEWS, points, count, R, 3.0, offset);

    const char *dir = od_test_temp_dir();
    fixture_write_colmap(dir, cameras, VIEWS, names, 1);
    fixture_text text = {0};
    fixture_append(&text, "# 3D point list\n");
    for (int i = 0; i < count; i++)
        fixture_append(&text, "%d %.17g %.17g %.17g 128 128 128 0.5 1 2 3 4\n", i + 1, points[i * 3],
                       points[i * 3 + 1], points[i * 3 + 2]);

    /* Without points the floor is the plane through the look-at point, 2 cm
     * above the true floor. */
    od_scene *scene = load_with(dir, NULL);
    if (scene == NULL) {
        free(text.data);
        return;
    }
    for (int v = 0; v < VIEWS; v++) {
        double center[3];
        od_camera_center(&scene->views[v].camera, center);
        /* Scale 1/3 brings the 2.4-unit camera distance back to 0.8 m. */
        OD_CHECK(fabs(center[2] - 0.8 * sin(30.0 * FIXTURE_PI / 180.0)) < 1e-6);
        OD_CHECK(fabs(hypot(center[0], center[1]) - 0.8 * cos(30.0 * FIXTURE_PI / 180.0)) < 1e-6);
    }
    OD_CHECK(strstr(scene->frame_note, "no metric scale") != NULL);
    od_scene_free(scene);

    fixture_write_text(fixture_path(dir, "sparse/0/points3D.txt"), text.data);
    free(text.data);
    scene = load_with(dir, NULL);
    if (scene == NULL)
        return;
    OD_CHECK(scene->sparse_point_count == count);
    for (int v = 0; v < VIEWS; v++) {
        double center[3];
        od_camera_center(&scene->views[v].camera, center);
        /* 0.4 m above the look-at point, which is 2 cm above the floor;
         * the floor histogram resolves to a few millimetres. */
        OD_CHECK(fabs(center[2] - 0.42) < 0.003);
    }
    OD_CHECK(strstr(scene->frame_note, "sparse points") != NULL);
    /* world_from_file takes the floor points to z = 0. */
    const double *f = scene->world_from_file;
    for (int i = 0; i < FLOOR_POINTS; i += 50) {
        const double *p = &points[i * 3];
        double z = f[8] * p[0] + f[9] * p[1] + f[10] * p[2] + f[11];
        OD_CHECK(fabs(z) < 0.003);
    }
    od_scene_free(scene);
}

static void test_rejects_bad_colmap_files(void)
{
    /* Each pair is a valid line 1 of images.txt and of b.png, unless edited. */
    const char *good_images = "1 1 0 0 0 0 0 1 1 a.png\n\n2 0.99 0.1411 0 0 0 0 1 1 b.png\n\n";
    const char *good_camera = "1 PINHOLE 80 60 70 70 40 30\n";

    const char *dir = write_model("1 FULL_OPENCV 80 60 70 70 40 30 0 0 0 0 0 0 0 0\n", good_images);
    fixture_check_rejected(dir, NULL, (const char *const[]){"cameras.txt", "line 1", "FULL_OPENCV", "not supported", NULL});

    dir = write_model("# cameras\n1 PINHOLE 80 60 70 70 40\n", good_images);
    fixture_check_rejected(dir, NULL, (const char *const[]){"cameras.txt", "line 2", "takes 4", "found 3", NULL});

    dir = write_model("1 PINHOLE 80 60 70 nan 40 30\n", good_images);
    fixture_check_rejected(dir, NULL, (const char *const[]){"cameras.txt", "line 1", "finite", NULL});

    dir = write_model("1 PINHOLE 80 60 0 70 40 30\n", good_images);
    fixture_check_rejected(dir, NULL, (const char *const[]){"cameras.txt", "focal length", "positive", NULL});

    dir = write_model("1 PINHOLE 80 60 70 70 40 30\n1 PINHOLE 80 60 70 70 40 30\n", good_images);
    fixture_check_rejected(dir, NULL, (const char *const[]){"cameras.txt", "line 2", "CAMERA_ID 1 repeats", NULL});

    dir = write_model(good_camera, "1 1 0 0 0 0 0 1 1 a.png\n\n2 1 0 0 0 0 0 1 1 a.png\n\n");
    fixture_check_rejected(dir, NULL, (const char *const[]){"images.txt", "line 3", "NAME a.png repeats", NULL});

    dir = write_model(good_camera, "1 1 0 0 0 0 0 1 1 a.png\n\n1 1 0 0 0 0 0 1 1 b.png\n\n");
    fixture_check_rejected(dir, NULL, (const char *const[]){"images.txt", "IMAGE_ID 1 repeats", NULL});

    dir = write_model(good_camera, "1 1 0 0 0 0 0 1 7 a.png\n\n");
    fixture_check_rejected(dir, NULL, (const char *const[]){"images.txt", "line 1", "CAMERA_ID 7", NULL});

    dir = write_model(good_camera, "1 2 0 0 0 0 0 1 1 a.png\n\n");
    fixture_check_rejected(dir, NULL, (const char *const[]){"images.txt", "line 1", "norm 2", "unit quaternion", NULL});

    dir = write_model(good_camera, "1 1 0 0 0 0 inf 1 1 a.png\n\n");
    fixture_check_rejected(dir, NULL, (const char *const[]){"images.txt", "line 1", "finite", NULL});

    dir = write_model(good_camera, "1 1 0 0 0 0 0 1 1\n\n");
    fixture_check_rejected(dir, NULL, (const char *const[]){"images.txt", "line 1", NULL});

    dir = write_model(good_camera, "1 1 0 0 0 0 0 1 1 c.png\n\n");
    fixture_check_rejected(dir, NULL, (const char *const[]){"images.txt", "view 0 (c.png)", "image not found", NULL});

    /* cameras.txt states 80 x 60; the image is 80 x 60, so state 100 x 60. */
    dir = write_model("1 PINHOLE 100 60 70 70 40 30\n", good_images);
    fixture_check_rejected(dir, NULL, (const char *const[]){"view 0 (a.png)", "100 x 60", "80 x 60", NULL});

    dir = write_model("", good_images);
    fixture_check_rejected(dir, NULL, (const char *const[]){"cameras.txt", "no cameras", NULL});

    /* The format named explicitly for a folder without a model. */
    od_scene_options options = od_scene_options_default();
    options.format = OD_SCENE_FORMAT_COLMAP;
    fixture_check_rejected(od_test_temp_dir(), &options, (const char *const[]){"no COLMAP text model", NULL});

    od_scene_format format;
    od_error err;
    OD_CHECK(od_scene_format_parse("colmap", &format, &err) == 0 && format == OD_SCENE_FORMAT_COLMAP);
    OD_CHECK(od_scene_format_parse("nerfstudio", &format, &err) == 0 && format == OD_SCENE_FORMAT_TRANSFORMS);
    OD_CHECK(od_scene_format_parse("ply", &format, &err) == -1);
    OD_CHECK(strstr(err.message, "\"ply\"") != NULL && strstr(err.message, "colmap") != NULL);
}

int main(void)
{
    OD_RUN(test_camera_center_is_minus_rt_t);
    OD_RUN(test_every_camera_model);
    OD_RUN(test_radial_images_undistorted);
    OD_RUN(test_transforms_and_colmap_agree);
    OD_RUN(test_floor_from_sparse_points_and_scale);
    OD_RUN(test_rejects_bad_colmap_files);
    return od_test_finish();
}
