/* Tests of scene/overlay: boxes drawn where they project, nothing drawn
 * for a box behind the camera, ground-truth colours and labels, and the
 * top-down sketch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "scene/overlay.h"
#include "scene/scene_internal.h"
#include "scene_fixture.h"
#include "testlib.h"

static od_camera test_camera(void)
{
    od_camera camera;
    memset(&camera, 0, sizeof camera);
    camera.width = 160;
    camera.height = 120;
    double K[9] = {150, 0, 79.5, 0, 150, 59.5, 0, 0, 1};
    memcpy(camera.K, K, sizeof K);
    const double center[3] = {0, -1.5, 0.5}, target[3] = {0, 0, 0};
    fixture_look_at(center, target, camera.world_to_camera);
    return camera;
}

static int pixel_is(const od_image *image, int x, int y, const float color[3])
{
    const float *pixel = &image->pixels[((size_t)y * image->width + x) * 3];
    return fabsf(pixel[0] - color[0]) < 1e-6f && fabsf(pixel[1] - color[1]) < 1e-6f &&
           fabsf(pixel[2] - color[2]) < 1e-6f;
}

static void test_box_edges_drawn_at_projected_corners(void)
{
    od_camera camera = test_camera();
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(160, 120, 3, &image, &err) == 0);
    od_overlay_box box = {{{0.0, 0.0, 0.1}, {0.4, 0.3, 0.2}, 0.4}, {1.0f, 0.0f, 0.0f}, NULL};
    od_overlay_draw_boxes(&image, &camera, &box, 1);

    double corners[8][3];
    od_box_corners(&box.box, corners);
    for (int c = 0; c < 8; c++) {
        double pixel[2];
        OD_CHECK(od_camera_project(&camera, corners[c], pixel, NULL));
        OD_CHECK(pixel_is(&image, (int)lround(pixel[0]), (int)lround(pixel[1]), box.color));
    }
    /* Far from the box nothing changes. */
    const float black[3] = {0, 0, 0};
    OD_CHECK(pixel_is(&image, 2, 2, black));
    OD_CHECK(pixel_is(&image, 157, 117, black));
    od_image_free(&image);
}

static void test_box_behind_camera_draws_nothing(void)
{
    od_camera camera = test_camera();
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(160, 120, 3, &image, &err) == 0);
    /* Behind the camera at (0, -1.5, 0.5): it would project into the image
     * with a sign flip if the depth were ignored. */
    od_overlay_box box = {{{0.0, -3.0, 0.9}, {0.4, 0.3, 0.2}, 0.0}, {1.0f, 1.0f, 1.0f}, "behind"};
    od_overlay_draw_boxes(&image, &camera, &box, 1);
    int drawn = 0;
    for (int64_t i = 0; i < 160 * 120 * 3; i++)
        drawn += image.pixels[i] != 0.0f;
    OD_CHECK(drawn == 0);
    od_image_free(&image);
}

/* Two boxes in the same place: the second label moves off the first, so
 * the first stays readable. The second box's edges cover the first's, so
 * any pixel of the first colour is from its label's text. */
static void test_labels_do_not_cover_each_other(void)
{
    od_camera camera = test_camera();
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(160, 120, 3, &image, &err) == 0);
    const od_box box = {{0.0, 0.0, 0.1}, {0.4, 0.3, 0.2}, 0.0};
    od_overlay_box boxes[2] = {{box, {1.0f, 0.0f, 0.0f}, "0 ODD"}, {box, {0.0f, 1.0f, 0.0f}, "1 NORMAL"}};
    od_overlay_draw_boxes(&image, &camera, boxes, 2);
    int first = 0, second = 0;
    for (int y = 0; y < 120; y++)
        for (int x = 0; x < 160; x++) {
            first += pixel_is(&image, x, y, boxes[0].color);
            second += pixel_is(&image, x, y, boxes[1].color);
        }
    OD_CHECK(first > 20);
    OD_CHECK(second > 20);
    od_image_free(&image);
}

static void test_ground_truth_colours_and_labels(void)
{
    od_scene *scene = od_scene_new(NULL);
    OD_CHECK(scene != NULL);
    if (scene == NULL)
        return;
    od_scene_object *normal = od_scene_add_object(scene, "object", "mug.blend");
    od_scene_object *odd = od_scene_add_object(scene, "object.001", "mug-crack-1.blend");
    OD_CHECK(normal != NULL && odd != NULL);
    if (normal == NULL || odd == NULL) {
        od_scene_free(scene);
        return;
    }
    scene->objects[1].label = OD_LABEL_ANOMALOUS;
    free(scene->objects[1].anomaly_kind);
    scene->objects[1].anomaly_kind = strdup("crack");
    scene->objects[1].truncated = 1;
    od_overlay_box boxes[2];
    char labels[2][128];
    od_overlay_ground_truth(scene, boxes, labels);
    OD_CHECK(strcmp(boxes[0].label, "object normal") == 0);
    OD_CHECK(strcmp(boxes[1].label, "object.001 crack truncated") == 0);
    OD_CHECK(memcmp(boxes[0].color, od_overlay_normal_color, sizeof boxes[0].color) == 0);
    OD_CHECK(memcmp(boxes[1].color, od_overlay_anomalous_color, sizeof boxes[1].color) == 0);
    od_scene_free(scene);
}

static void test_top_view_marks_cameras(void)
{
    od_scene *scene = od_scene_new(NULL);
    OD_CHECK(scene != NULL);
    if (scene == NULL)
        return;
    fixture_camera cameras[4];
    const double target[3] = {0, 0, 0};
    fixture_ring(cameras, 4, 0.8, 30.0, target, 64, 48, 50.0);
    for (int i = 0; i < 4; i++) {
        od_scene_view *view = od_scene_add_view(scene, "v", "v.png");
        OD_CHECK(view != NULL);
        if (view != NULL)
            memcpy(view->camera.world_to_camera, cameras[i].world_to_camera, sizeof cameras[i].world_to_camera);
    }
    for (int k = 0; k < 2; k++) {
        scene->roi_min[k] = -0.5;
        scene->roi_max[k] = 0.5;
    }
    scene->roi_max[2] = 0.3;
    od_image image;
    od_error err;
    OD_CHECK(od_overlay_top_view(scene, NULL, 0, 200, &image, &err) == 0);
    OD_CHECK(image.width == 200 && image.height == 200 && image.channels == 3);
    /* Every camera's dot is drawn in yellow-ish (red > 0.9, blue < 0.3). */
    int found = 0;
    for (int y = 0; y < 200; y++)
        for (int x = 0; x < 200; x++) {
            const float *pixel = &image.pixels[((size_t)y * 200 + x) * 3];
            found += pixel[0] > 0.9f && pixel[1] > 0.8f && pixel[2] < 0.3f;
        }
    OD_CHECK(found >= 4 * 5);
    od_image_free(&image);
    od_scene_free(scene);
}

int main(void)
{
    OD_RUN(test_box_edges_drawn_at_projected_corners);
    OD_RUN(test_box_behind_camera_draws_nothing);
    OD_RUN(test_labels_do_not_cover_each_other);
    OD_RUN(test_ground_truth_colours_and_labels);
    OD_RUN(test_top_view_marks_cameras);
    return od_test_finish();
}
