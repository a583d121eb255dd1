/* Tests of the transforms.json loader. Every intrinsics layout gives the
 * same K, frames are matched to images by file_path, and applied_transform
 * is undone. The up direction and floor are estimated, scenes of many
 * views stream, and bad files are rejected with messages that name the
 * file and the field. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scene/scene.h"
#include "scene_fixture.h"
#include "testlib.h"

#define RING_VIEWS 6

static const char *const ring_names[RING_VIEWS] = {"images/a.png", "images/b.png", "images/c.png",
                                                   "images/d.png", "images/e.png", "images/f.png"};

/* Six 80 x 60 cameras 0.8 m around a point on the table. */
static void ring_cameras(fixture_camera *cameras)
{
    const double target[3] = {0.0, 0.0, 0.02};
    fixture_ring(cameras, RING_VIEWS, 0.8, 30.0, target, 80, 60, 70.0);
}

static od_scene *load_kept_frame(const char *dir)
{
    od_scene_options options = od_scene_options_default();
    options.keep_frame = 1;
    od_scene *scene = NULL;
    od_error err;
    if (od_scene_load(dir, &options, &scene, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        OD_CHECK(!"scene loads");
    }
    return scene;
}

static void check_pose(const od_camera *camera, const double expected[16], double tolerance)
{
    float got[16], want[16];
    for (int i = 0; i < 16; i++) {
        got[i] = (float)camera->world_to_camera[i];
        want[i] = (float)expected[i];
    }
    OD_CHECK_CLOSE("world_to_camera", got, want, 16, (float)tolerance, 0.0f);
}

static void test_same_intrinsics_from_every_layout(void)
{
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    for (int layout = 0; layout < LAYOUT_COUNT; layout++) {
        const char *dir = od_test_temp_dir();
        fixture_write_transforms(dir, cameras, RING_VIEWS, ring_names, NULL, layout, NULL, 1);
        od_scene *scene = load_kept_frame(dir);
        if (scene == NULL)
            continue;
        OD_CHECK(scene->format == OD_SCENE_FORMAT_TRANSFORMS);
        OD_CHECK(scene->view_count == RING_VIEWS);
        for (int v = 0; v < scene->view_count; v++) {
            const od_camera *camera = &scene->views[v].camera;
            /* fx = fy = 70; the file's centred principal point (40, 30)
             * becomes (39.5, 29.5) with pixel centres on integers. */
            int ok = camera->width == 80 && camera->height == 60 && fabs(camera->K[0] - 70.0) < 1e-9 &&
                     fabs(camera->K[4] - 70.0) < 1e-9 && fabs(camera->K[2] - 39.5) < 1e-9 &&
                     fabs(camera->K[5] - 29.5) < 1e-9;
            if (!ok)
                fprintf(stderr, "layout %d view %d: K = [%g %g %g; %g %g %g]\n", layout, v, camera->K[0],
                        camera->K[1], camera->K[2], camera->K[3], camera->K[4], camera->K[5]);
            OD_CHECK(ok);
            check_pose(camera, cameras[v].world_to_camera, 1e-9);
        }
        od_scene_free(scene);
    }
}

static void test_frames_matched_by_name(void)
{
    /* Files 1.png, 2.png, 10.png: as text 10.png sorts before 2.png. The
     * file lists them 10, 1, 2, and each must keep its own pose. */
    const char *dir = od_test_temp_dir();
    fixture_camera cameras[3];
    const double target[3] = {0.0, 0.0, 0.02};
    fixture_ring(cameras, 3, 0.8, 30.0, target, 40, 30, 40.0);
    static const char *const names[3] = {"1.png", "2.png", "10.png"};
    const int order[3] = {2, 0, 1};
    fixture_write_transforms(dir, cameras, 3, names, order, LAYOUT_FULL_TOP, NULL, 1);
    od_scene *scene = load_kept_frame(dir);
    if (scene == NULL)
        return;
    OD_CHECK(scene->view_count == 3);
    for (int v = 0; v < 3; v++) {
        int camera_index = order[v];
        OD_CHECK(strcmp(scene->views[v].name, names[camera_index]) == 0);
        check_pose(&scene->views[v].camera, cameras[camera_index].world_to_camera, 1e-9);
        /* The image is the one written for that camera: its red channel
         * is 0.2 + 0.03 i. */
        od_image image;
        od_error err;
        OD_CHECK(od_scene_read_view_image(scene, v, &image, &err) == 0);
        if (image.pixels != NULL)
            OD_CHECK(fabsf(image.pixels[0] - (0.2f + 0.03f * camera_index)) < 1.0f / 255.0f);
        od_image_free(&image);
    }
    od_scene_free(scene);
}

static void test_applied_transform_undone(void)
{
    /* nerfstudio's ns-process-data swaps y and z and negates the new z,
     * here with a translation added. */
    const double applied[16] = {1, 0, 0, 0.5, 0, 0, 1, -0.2, 0, -1, 0, 0.1, 0, 0, 0, 1};
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    const char *dir = od_test_temp_dir();
    fixture_write_transforms(dir, cameras, RING_VIEWS, ring_names, NULL, LAYOUT_FULL_TOP, applied, 1);
    od_scene *scene = load_kept_frame(dir);
    if (scene == NULL)
        return;
    for (int v = 0; v < RING_VIEWS; v++)
        check_pose(&scene->views[v].camera, cameras[v].world_to_camera, 1e-9);
    od_scene_free(scene);
}

static void test_image_extension_added(void)
{
    /* instant-ngp's NeRF-synthetic files name "./train/r_0" for r_0.png. */
    const char *dir = od_test_temp_dir();
    fixture_camera cameras[2];
    const double target[3] = {0.0, 0.0, 0.02};
    fixture_ring(cameras, 2, 0.8, 30.0, target, 40, 30, 40.0);
    static const char *const names[2] = {"./train/r_0", "./train/r_1"};
    fixture_write_transforms(dir, cameras, 2, names, NULL, LAYOUT_ANGLE_ONLY, NULL, 0);
    fixture_mkdir(fixture_path(dir, "train"));
    fixture_write_image(fixture_path(dir, "train/r_0.png"), 40, 30, 1, 0, 0);
    fixture_write_image(fixture_path(dir, "train/r_1.png"), 40, 30, 0, 1, 0);
    od_scene *scene = load_kept_frame(dir);
    if (scene == NULL)
        return;
    OD_CHECK(strstr(scene->views[1].image_path, "train/r_1.png") != NULL);
    od_scene_free(scene);
}

/* Rotates the world of every camera by `rotation` (row-major 3x3) and
 * scales it: new world point = scale * rotation * old. */
static void move_world(fixture_camera *cameras, int count, const double rotation[9], double scale)
{
    for (int i = 0; i < count; i++) {
        double *m = cameras[i].world_to_camera;
        double R[9], t[3];
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++)
                R[r * 3 + c] = m[r * 4 + c];
            t[r] = m[r * 4 + 3];
        }
        /* p_cam = R p + t with p = rotation^T p' / scale; camera units
         * scale with the world. */
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++) {
                double sum = 0.0;
                for (int k = 0; k < 3; k++)
                    sum += R[r * 3 + k] * rotation[c * 3 + k];
                m[r * 4 + c] = sum;
            }
            m[r * 4 + 3] = scale * t[r];
        }
    }
}

/* A rotation of 50 degrees about the axis (1, 2, 3)/|.|, by Rodrigues. */
static void tilted_rotation(double rotation[9])
{
    double axis[3] = {1, 2, 3};
    double norm = sqrt(14.0);
    for (int k = 0; k < 3; k++)
        axis[k] /= norm;
    double angle = 50.0 * FIXTURE_PI / 180.0, c = cos(angle), s = sin(angle);
    double K[9] = {0, -axis[2], axis[1], axis[2], 0, -axis[0], -axis[1], axis[0], 0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double KK = 0.0;
            for (int k = 0; k < 3; k++)
                KK += K[i * 3 + k] * K[k * 3 + j];
            rotation[i * 3 + j] = (i == j ? 1.0 : 0.0) + s * K[i * 3 + j] + (1 - c) * KK;
        }
}

static void test_up_and_floor_estimated(void)
{
    /* Cameras on a partial arc (90 degrees of azimuth), 35 degrees up,
     * look at a point on the table in a tilted world. The mean of the
     * cameras' up vectors leans toward the arc, but the up found must be
     * the table's normal. */
    enum { VIEWS = 7 };
    fixture_camera cameras[VIEWS];
    const double target[3] = {0.0, 0.0, 0.0};
    double elevation = 35.0 * FIXTURE_PI / 180.0, radius = 0.9;
    for (int i = 0; i < VIEWS; i++) {
        double azimuth = 0.5 * FIXTURE_PI * i / (VIEWS - 1);
        double center[3] = {radius * cos(elevation) * cos(azimuth), radius * cos(elevation) * sin(azimuth),
                            radius * sin(elevation)};
        fixture_look_at(center, target, cameras[i].world_to_camera);
        cameras[i].fx = cameras[i].fy = 50.0;
        cameras[i].cx = 32.0;
        cameras[i].cy = 24.0;
        cameras[i].width = 64;
        cameras[i].height = 48;
    }
    double rotation[9];
    tilted_rotation(rotation);
    move_world(cameras, VIEWS, rotation, 1.0);
    static const char *const names[VIEWS] = {"0.png", "1.png", "2.png", "3.png", "4.png", "5.png", "6.png"};
    const char *dir = od_test_temp_dir();
    fixture_write_transforms(dir, cameras, VIEWS, names, NULL, LAYOUT_FULL_TOP, NULL, 1);

    od_scene *scene = NULL;
    od_error err;
    int status = od_scene_load(dir, NULL, &scene, &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);
    if (scene == NULL)
        return;
    /* In the estimated frame every camera is 0.9 sin 35 deg above the floor
     * through the look-at point, 0.9 cos 35 deg from the z axis, and its x
     * axis is level. transforms.json keeps its units. */
    for (int v = 0; v < VIEWS; v++) {
        double center[3], right[3];
        od_camera_center(&scene->views[v].camera, center);
        od_camera_axes(&scene->views[v].camera, right, NULL, NULL);
        OD_CHECK(fabs(center[2] - radius * sin(elevation)) < 1e-6);
        OD_CHECK(fabs(hypot(center[0], center[1]) - radius * cos(elevation)) < 1e-6);
        OD_CHECK(fabs(right[2]) < 1e-6);
    }
    OD_CHECK(strstr(scene->frame_note, "x axes") != NULL);
    OD_CHECK(strstr(scene->frame_note, "metres") != NULL);
    od_scene_free(scene);

    /* An explicit up overrides the estimate: the tilted world's up. */
    od_scene_options options = od_scene_options_default();
    options.has_up = 1;
    for (int k = 0; k < 3; k++)
        options.up[k] = rotation[k * 3 + 2];
    options.scale = 2.0;
    OD_CHECK(od_scene_load(dir, &options, &scene, &err) == 0);
    if (scene == NULL)
        return;
    for (int v = 0; v < VIEWS; v++) {
        double center[3];
        od_camera_center(&scene->views[v].camera, center);
        OD_CHECK(fabs(center[2] - 2.0 * radius * sin(elevation)) < 1e-6);
    }
    od_scene_free(scene);
}

static void test_many_views_stream(void)
{
    /* 200 views: loading reads image headers only, and images come one at
     * a time. */
    enum { VIEWS = 200 };
    static fixture_camera cameras[VIEWS];
    static char name_storage[VIEWS][32];
    static const char *names[VIEWS];
    const double target[3] = {0.0, 0.0, 0.02};
    fixture_ring(cameras, VIEWS, 0.8, 30.0, target, 24, 16, 20.0);
    for (int i = 0; i < VIEWS; i++) {
        snprintf(name_storage[i], sizeof name_storage[i], "frames/%d.png", i);
        names[i] = name_storage[i];
    }
    const char *dir = od_test_temp_dir();
    fixture_write_transforms(dir, cameras, VIEWS, names, NULL, LAYOUT_FULL_TOP, NULL, 1);
    od_scene *scene = NULL;
    od_error err;
    OD_CHECK(od_scene_load(dir, NULL, &scene, &err) == 0);
    if (scene == NULL)
        return;
    OD_CHECK(scene->view_count == VIEWS);
    int loaded = 0;
    for (int v = 0; v < VIEWS; v++)
        loaded += scene->views[v].image.pixels != NULL;
    OD_CHECK(loaded == 0);
    for (int v = 0; v < VIEWS; v += 37) {
        OD_CHECK(od_scene_load_view_image(scene, v, &err) == 0);
        OD_CHECK(scene->views[v].image.width == 24);
        od_scene_release_view_image(scene, v);
        OD_CHECK(scene->views[v].image.pixels == NULL);
    }
    od_scene_free(scene);
}

static void test_one_view_loads(void)
{
    const char *dir = od_test_temp_dir();
    fixture_camera cameras[1];
    const double target[3] = {0.0, 0.0, 0.02};
    fixture_ring(cameras, 1, 0.8, 30.0, target, 40, 30, 40.0);
    static const char *const names[1] = {"only.png"};
    fixture_write_transforms(dir, cameras, 1, names, NULL, LAYOUT_FULL_TOP, NULL, 1);
    od_scene *scene = NULL;
    od_error err;
    int status = od_scene_load(dir, NULL, &scene, &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);
    if (scene != NULL)
        OD_CHECK(scene->view_count == 1);
    od_scene_free(scene);
}

static void test_resize_view_scales_intrinsics(void)
{
    const char *dir = od_test_temp_dir();
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    fixture_write_transforms(dir, cameras, RING_VIEWS, ring_names, NULL, LAYOUT_FULL_TOP, NULL, 1);
    od_scene_options options = od_scene_options_default();
    options.load_images = 1;
    od_scene *scene = NULL;
    od_error err;
    OD_CHECK(od_scene_load(dir, &options, &scene, &err) == 0);
    if (scene == NULL)
        return;
    OD_CHECK(scene->views[2].image.pixels != NULL);
    /* 80 x 60 to 32 x 48: sx = 0.4, sy = 0.8. */
    OD_CHECK(od_scene_resize_view(scene, 2, 32, 48, &err) == 0);
    const od_camera *camera = &scene->views[2].camera;
    OD_CHECK(scene->views[2].image.width == 32 && scene->views[2].image.height == 48);
    OD_CHECK(camera->width == 32 && camera->height == 48);
    OD_CHECK(fabs(camera->K[0] - 70.0 * 0.4) < 1e-9 && fabs(camera->K[4] - 70.0 * 0.8) < 1e-9);
    OD_CHECK(fabs(camera->K[2] - ((39.5 + 0.5) * 0.4 - 0.5)) < 1e-9);
    OD_CHECK(fabs(camera->K[5] - ((29.5 + 0.5) * 0.8 - 0.5)) < 1e-9);
    /* Resizing an image that is not loaded is an error. */
    od_scene_release_view_image(scene, 3);
    OD_CHECK(od_scene_resize_view(scene, 3, 32, 48, &err) == -1);
    od_scene_free(scene);
}

static void test_views_of_different_sizes(void)
{
    /* Per-frame intrinsics for a 80 x 60 and a 40 x 30 camera. */
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    for (int i = 1; i < RING_VIEWS; i += 2) {
        cameras[i].width = 40;
        cameras[i].height = 30;
        cameras[i].fx = cameras[i].fy = 35.0;
        cameras[i].cx = 20.0;
        cameras[i].cy = 15.0;
    }
    const char *dir = od_test_temp_dir();
    fixture_write_transforms(dir, cameras, RING_VIEWS, ring_names, NULL, LAYOUT_PER_FRAME, NULL, 1);
    od_scene *scene = load_kept_frame(dir);
    if (scene == NULL)
        return;
    for (int v = 0; v < RING_VIEWS; v++) {
        const od_camera *camera = &scene->views[v].camera;
        int small = v % 2 == 1;
        OD_CHECK(camera->width == (small ? 40 : 80) && camera->height == (small ? 30 : 60));
        OD_CHECK(camera->K[0] == (small ? 35.0 : 70.0) && camera->K[2] == (small ? 19.5 : 39.5));
    }
    od_scene_free(scene);
}

static void test_masks_beside_images(void)
{
    const char *dir = od_test_temp_dir();
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    fixture_write_transforms(dir, cameras, RING_VIEWS, ring_names, NULL, LAYOUT_FULL_TOP, NULL, 1);
    fixture_mkdir(fixture_path(dir, "masks"));
    fixture_write_image(fixture_path(dir, "masks/b.png"), 80, 60, 1, 1, 1);
    od_scene *scene = load_kept_frame(dir);
    if (scene == NULL)
        return;
    od_image mask;
    od_error err;
    int has_mask = 0;
    OD_CHECK(od_scene_read_view_mask(scene, 1, &mask, &has_mask, &err) == 0);
    OD_CHECK(has_mask == 1 && mask.channels == 1 && mask.pixels != NULL && mask.pixels[0] == 1.0f);
    od_image_free(&mask);
    OD_CHECK(od_scene_read_view_mask(scene, 0, &mask, &has_mask, &err) == 0);
    OD_CHECK(has_mask == 0);
    od_scene_free(scene);
}

/* ---- rejections ------------------------------------------------------------------ */

/* Writes a valid ring scene into a fresh folder, then replaces the first
 * occurrence of `from` in transforms.json by `to`. Returns the folder. */
static const char *edited_scene(const char *from, const char *to)
{
    const char *dir = od_test_temp_dir();
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    fixture_write_transforms(dir, cameras, RING_VIEWS, ring_names, NULL, LAYOUT_PER_FRAME, NULL, 1);
    const char *path = fixture_path(dir, "transforms.json");
    FILE *stream = fopen(path, "rb");
    static char text[1 << 16];
    size_t size = stream != NULL ? fread(text, 1, sizeof text - 1, stream) : 0;
    if (stream != NULL)
        fclose(stream);
    text[size] = '\0';
    char *at = strstr(text, from);
    OD_CHECK(at != NULL);
    if (at == NULL)
        return dir;
    static char edited[(1 << 16) + 512];
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    fixture_write_text(path, edited);
    return dir;
}

static void test_rejects_bad_transforms(void)
{
    /* NaN in a matrix, as Python writes it (the frame's own matrix moves
     * to an unread key). */
    const char *dir = edited_scene("\"transform_matrix\": [[",
                                   "\"transform_matrix\": [[NaN, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "
                                   "\"unread\": [[");
    fixture_check_rejected(dir, NULL,
                           (const char *const[]){"transforms.json", "frames[0] (images/a.png)", "transform_matrix",
                                                 "(0, 0)", "NaN or infinite", NULL});

    /* Zero focal length. */
    dir = edited_scene("\"fl_x\": 70", "\"fl_x\": 0");
    fixture_check_rejected(dir, NULL,
                           (const char *const[]){"transforms.json", "frames[0] (images/a.png)", "fl_x", "positive", NULL});

    /* Infinite principal point (1e999 overflows). */
    dir = edited_scene("\"cx\": 40", "\"cx\": 1e999");
    fixture_check_rejected(dir, NULL, (const char *const[]){"frames[0]", "\"cx\"", "finite", NULL});

    /* Intrinsics for another image size. */
    dir = edited_scene("\"w\": 80, \"h\": 60", "\"w\": 160, \"h\": 120");
    fixture_check_rejected(dir, NULL,
                           (const char *const[]){"transforms.json", "view 0 (images/a.png)", "160 x 120", "80 x 60",
                                                 NULL});

    /* A principal point outside the image. */
    dir = edited_scene("\"cx\": 40", "\"cx\": 95");
    fixture_check_rejected(dir, NULL, (const char *const[]){"view 0 (images/a.png)", "principal point", NULL});

    /* A scaled rotation. */
    dir = edited_scene("\"transform_matrix\": [[",
                       "\"transform_matrix\": [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]], \"unread\": [[");
    fixture_check_rejected(dir, NULL,
                           (const char *const[]){"frames[0] (images/a.png)", "transform_matrix", "orthonormal", NULL});

    /* A wrong last row. */
    dir = edited_scene("[0, 0, 0, 1]]}", "[0, 0, 1, 1]]}");
    fixture_check_rejected(dir, NULL, (const char *const[]){"transform_matrix", "last row", NULL});

    /* A 2x4 matrix. */
    dir = edited_scene("\"transform_matrix\": [[", "\"transform_matrix\": [[1, 0, 0, 0], [0, 1, 0, 0]], \"x\": [[");
    fixture_check_rejected(dir, NULL, (const char *const[]){"transform_matrix", "4x4 or 3x4", NULL});

    /* A repeated file_path. */
    dir = edited_scene("\"images/b.png\"", "\"images/a.png\"");
    fixture_check_rejected(dir, NULL, (const char *const[]){"frames[1] (images/a.png)", "repeats frames[0]", NULL});

    /* A missing image. */
    dir = edited_scene("\"images/d.png\"", "\"images/missing.png\"");
    fixture_check_rejected(dir, NULL,
                           (const char *const[]){"transforms.json", "view 3 (images/missing.png)", "not found", NULL});

    /* A fisheye camera model. */
    dir = edited_scene("{\n", "{\n  \"camera_model\": \"OPENCV_FISHEYE\",\n");
    fixture_check_rejected(dir, NULL, (const char *const[]){"camera_model", "OPENCV_FISHEYE", "not supported", NULL});

    /* No intrinsics at all. */
    const char *no_intrinsics = od_test_temp_dir();
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    fixture_write_transforms(no_intrinsics, cameras, RING_VIEWS, ring_names, NULL, LAYOUT_COUNT, NULL, 1);
    fixture_check_rejected(no_intrinsics, NULL,
                           (const char *const[]){"view 0 (images/a.png)", "no focal length", "camera_angle_x", NULL});

    /* No frames. */
    dir = od_test_temp_dir();
    fixture_write_text(fixture_path(dir, "transforms.json"), "{\"fl_x\": 10, \"frames\": []}");
    fixture_check_rejected(dir, NULL, (const char *const[]){"transforms.json", "no views", NULL});
    fixture_write_text(fixture_path(dir, "transforms.json"), "{\"fl_x\": 10}");
    fixture_check_rejected(dir, NULL, (const char *const[]){"transforms.json", "\"frames\"", NULL});
    fixture_write_text(fixture_path(dir, "transforms.json"), "");
    fixture_check_rejected(dir, NULL, (const char *const[]){"transforms.json", "invalid JSON", NULL});

    /* Bad options. */
    od_scene_options options = od_scene_options_default();
    options.scale = -1.0;
    fixture_check_rejected(no_intrinsics, &options, (const char *const[]){"scale", NULL});
    options = od_scene_options_default();
    options.has_roi = 1;
    options.roi_max[0] = 1.0;
    options.roi_max[1] = 1.0;
    options.roi_min[2] = 1.0;
    fixture_check_rejected(no_intrinsics, &options, (const char *const[]){"region of interest", "axis z", NULL});
}

static void test_opencv_axes_rejected_as_convention_mistake(void)
{
    /* A file holding camera-to-world in OpenCV axes: read as OpenGL, every
     * camera looks away from the scene. */
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    for (int i = 0; i < RING_VIEWS; i++)
        for (int j = 4; j < 12; j++)
            cameras[i].world_to_camera[j] = -cameras[i].world_to_camera[j];
    for (int keep = 0; keep < 2; keep++) {
        const char *dir = od_test_temp_dir();
        fixture_write_transforms(dir, cameras, RING_VIEWS, ring_names, NULL, LAYOUT_FULL_TOP, NULL, 1);
        od_scene_options options = od_scene_options_default();
        options.keep_frame = keep;
        fixture_check_rejected(dir, &options,
                               (const char *const[]){"transforms.json", "look away", "OpenGL", "camera-to-world", NULL});
    }
}

static void test_view_looking_away_rejected(void)
{
    /* One camera of six turned around. */
    fixture_camera cameras[RING_VIEWS];
    ring_cameras(cameras);
    for (int j = 4; j < 12; j++)
        cameras[4].world_to_camera[j] = -cameras[4].world_to_camera[j];
    const char *dir = od_test_temp_dir();
    fixture_write_transforms(dir, cameras, RING_VIEWS, ring_names, NULL, LAYOUT_FULL_TOP, NULL, 1);
    od_scene_options options = od_scene_options_default();
    options.keep_frame = 1;
    fixture_check_rejected(dir, &options, (const char *const[]){"view 4 (images/e.png)", "sees nothing", NULL});
}

int main(void)
{
    OD_RUN(test_same_intrinsics_from_every_layout);
    OD_RUN(test_frames_matched_by_name);
    OD_RUN(test_applied_transform_undone);
    OD_RUN(test_image_extension_added);
    OD_RUN(test_up_and_floor_estimated);
    OD_RUN(test_many_views_stream);
    OD_RUN(test_one_view_loads);
    OD_RUN(test_resize_view_scales_intrinsics);
    OD_RUN(test_views_of_different_sizes);
    OD_RUN(test_masks_beside_images);
    OD_RUN(test_rejects_bad_transforms);
    OD_RUN(test_opencv_axes_rejected_as_convention_mistake);
    OD_RUN(test_view_looking_away_rejected);
    return od_test_finish();
}
