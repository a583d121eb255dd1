/* Tests of the release-format loader: the real sample scene (values, and
 * ground-truth boxes that sit on the objects' masks in every view), labels
 * from file names, and rejected files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scene/scene.h"
#include "scene_fixture.h"
#include "testlib.h"

/* The sample scene from the ToysAD-8K release, beside the repository. */
static const char *sample_scene(void) { return od_test_source_path("../shared/datasets/toysad8k-sample"); }

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (x < y)
        return -1;
    return x > y;
}

static void test_sample_scene_values(void)
{
    od_scene *scene = NULL;
    od_error err;
    int status = od_scene_load(sample_scene(), NULL, &scene, &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);
    if (scene == NULL)
        return;
    OD_CHECK(scene->format == OD_SCENE_FORMAT_RELEASE);
    OD_CHECK(scene->view_count == 20);
    OD_CHECK(scene->object_count == 3);
    OD_CHECK(scene->has_ground_truth == 1);
    for (int v = 0; v < scene->view_count; v++) {
        const od_camera *camera = &scene->views[v].camera;
        OD_CHECK(camera->width == 256 && camera->height == 256);
        OD_CHECK(fabs(camera->K[0] - 213.3333282470703) < 1e-9);
        OD_CHECK(fabs(camera->K[4] - 213.3333282470703) < 1e-9);
        /* The file's cx = cy = 128 is measured from the image corner. */
        OD_CHECK(camera->K[2] == 127.5 && camera->K[5] == 127.5);
        /* Cameras 0.79 to 0.86 m from the origin, 25 to 32 degrees up. */
        double center[3];
        od_camera_center(camera, center);
        double distance = sqrt(center[0] * center[0] + center[1] * center[1] + center[2] * center[2]);
        double elevation = asin(center[2] / distance) * 180.0 / FIXTURE_PI;
        OD_CHECK(distance > 0.78 && distance < 0.87);
        OD_CHECK(elevation > 24.0 && elevation < 33.0);
        OD_CHECK(scene->views[v].image.pixels == NULL); /* loaded on demand */
        OD_CHECK(scene->views[v].object_mask_paths != NULL);
    }
    OD_CHECK(strcmp(scene->views[7].name, "RGB/0007.png") == 0);

    int anomalous = 0;
    for (int o = 0; o < scene->object_count; o++) {
        const od_scene_object *object = &scene->objects[o];
        if (object->label == OD_LABEL_ANOMALOUS) {
            anomalous++;
            OD_CHECK(strcmp(object->name, "object.001") == 0);
            OD_CHECK(strcmp(object->anomaly_kind, "crack") == 0);
        } else {
            OD_CHECK(strcmp(object->anomaly_kind, "") == 0);
        }
        OD_CHECK(object->truncated == 0);
        /* Boxes rest on the floor: the bottom within 5 mm of z = 0. */
        OD_CHECK(fabs(object->box.center[2] - 0.5 * object->box.size[2]) < 0.005);
    }
    OD_CHECK(anomalous == 1);
    /* object.001: yaw from rotation_matrix [[-0.896, -0.444], [0.444, -0.896]]. */
    OD_CHECK(fabs(scene->objects[0].box.yaw - atan2(0.4437495768070221, -0.8961508274078369)) < 1e-9);
    OD_CHECK(fabs(scene->objects[0].box.size[1] - 0.3334202766418457) < 1e-12);

    /* Images read on demand as RGB at the camera's size. */
    od_image image;
    OD_CHECK(od_scene_read_view_image(scene, 3, &image, &err) == 0);
    OD_CHECK(image.width == 256 && image.height == 256 && image.channels == 3);
    od_image_free(&image);
    od_scene_free(scene);
}

/* For every object and view, the fraction of the object's mask pixels
 * that fall inside the outline of its projected box. */
static void test_sample_boxes_cover_masks(void)
{
    od_scene *scene = NULL;
    od_error err;
    OD_CHECK(od_scene_load(sample_scene(), NULL, &scene, &err) == 0);
    if (scene == NULL)
        return;
    double fractions[64 * 8];
    int count = 0;
    double worst = 1.0;
    for (int o = 0; o < scene->object_count && o < 8; o++) {
        for (int v = 0; v < scene->view_count && v < 64; v++) {
            od_image mask;
            int status = od_scene_read_object_mask(scene, v, o, &mask, &err);
            OD_CHECK(status == 0);
            if (status != 0)
                continue;
            double hull[40];
            int hull_count = od_box_project_hull(&scene->objects[o].box, &scene->views[v].camera, hull);
            int64_t on_object = 0, inside = 0;
            for (int y = 0; y < mask.height; y++)
                for (int x = 0; x < mask.width; x++) {
                    if (mask.pixels[(int64_t)y * mask.width + x] < 0.5f)
                        continue;
                    on_object++;
                    inside += od_convex_polygon_contains(hull, hull_count, x, y);
                }
            od_image_free(&mask);
            if (on_object == 0)
                continue; /* the object is out of this view */
            double fraction = (double)inside / on_object;
            fractions[count++] = fraction;
            if (fraction < worst)
                worst = fraction;
        }
    }
    qsort(fractions, (size_t)count, sizeof *fractions, compare_doubles);
    double median = fractions[count / 2];
    printf("mask pixels inside the projected box: worst %.2f %%, median %.2f %% over %d object views\n",
           100 * worst, 100 * median, count);
    OD_CHECK(count >= 50);
    OD_CHECK(worst >= 0.90);
    OD_CHECK(median >= 0.98);
    od_scene_free(scene);
}

/* ---- synthetic release scenes ---------------------------------------------------- */

static void write_ring_release(const char *dir, const fixture_object *objects, int object_count, int views)
{
    fixture_camera cameras[8];
    const double target[3] = {0, 0, 0.03};
    fixture_ring(cameras, views, 0.8, 30.0, target, 64, 48, 60.0);
    fixture_write_release(dir, cameras, views, objects, object_count, 1);
}

static void test_labels_from_file_names(void)
{
    const char *dir = od_test_temp_dir();
    const fixture_object objects[] = {
        {"a", "/data/mug_003/mug_003.blend", {0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
        {"b", "/data/mug-x/mug_003-fracture-002.blend", {-0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.3},
        {"c", "C:\\\\data\\\\mug_003-bend.blend", {0.1, -0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
        {"d", "", {-0.1, -0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
        {"e", "mug-", {0.0, 0.0, 0.05}, {0.1, 0.1, 0.1}, 0.0},
    };
    write_ring_release(dir, objects, 5, 4);
    od_scene *scene = NULL;
    od_error err;
    int status = od_scene_load(dir, NULL, &scene, &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);
    if (scene == NULL)
        return;
    OD_CHECK(scene->object_count == 5);
    /* The '-' in the folder "mug-x" does not count: only the file name. */
    OD_CHECK(scene->objects[0].label == OD_LABEL_NORMAL);
    OD_CHECK(scene->objects[1].label == OD_LABEL_ANOMALOUS);
    OD_CHECK(strcmp(scene->objects[1].anomaly_kind, "fracture") == 0);
    OD_CHECK(scene->objects[2].label == OD_LABEL_ANOMALOUS);
    OD_CHECK(strcmp(scene->objects[2].anomaly_kind, "bend") == 0);
    OD_CHECK(scene->objects[3].label == OD_LABEL_NORMAL);
    OD_CHECK(scene->objects[4].label == OD_LABEL_ANOMALOUS);
    OD_CHECK(strcmp(scene->objects[4].anomaly_kind, "unknown") == 0);
    OD_CHECK(fabs(scene->objects[1].box.yaw - 0.3) < 1e-12);
    /* No segmentations folder: no masks, and no error. */
    od_image mask;
    int has_mask = 1;
    OD_CHECK(od_scene_read_view_mask(scene, 0, &mask, &has_mask, &err) == 0);
    OD_CHECK(has_mask == 0);
    OD_CHECK(od_scene_read_object_mask(scene, 0, 0, &mask, &err) == -1);
    od_scene_free(scene);
}

static void test_scene_without_anomalies_or_only_anomalies(void)
{
    const fixture_object normal[] = {
        {"a", "x/mug.blend", {0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
        {"b", "x/mug.blend", {-0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
    };
    const fixture_object odd[] = {
        {"a", "x/mug-crack-1.blend", {0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
        {"b", "x/mug-bump-2.blend", {-0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
    };
    for (int which = 0; which < 2; which++) {
        const char *dir = od_test_temp_dir();
        write_ring_release(dir, which == 0 ? normal : odd, 2, 4);
        od_scene *scene = NULL;
        od_error err;
        OD_CHECK(od_scene_load(dir, NULL, &scene, &err) == 0);
        if (scene == NULL)
            continue;
        for (int o = 0; o < 2; o++)
            OD_CHECK(scene->objects[o].label == (which == 0 ? OD_LABEL_NORMAL : OD_LABEL_ANOMALOUS));
        od_scene_free(scene);
    }
}

static void test_one_view_and_no_objects(void)
{
    const char *dir = od_test_temp_dir();
    write_ring_release(dir, NULL, 0, 1);
    od_scene *scene = NULL;
    od_error err;
    int status = od_scene_load(dir, NULL, &scene, &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);
    if (scene == NULL)
        return;
    OD_CHECK(scene->view_count == 1);
    OD_CHECK(scene->object_count == 0);
    OD_CHECK(scene->has_ground_truth == 1);
    od_scene_free(scene);
}

static void test_object_outside_roi_is_truncated(void)
{
    const char *dir = od_test_temp_dir();
    const fixture_object objects[] = {
        {"inside", "mug.blend", {0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
        {"edge", "mug.blend", {0.62, 0.0, 0.05}, {0.2, 0.1, 0.1}, 0.0},
    };
    write_ring_release(dir, objects, 2, 4);
    od_scene *scene = NULL;
    od_error err;
    OD_CHECK(od_scene_load(dir, NULL, &scene, &err) == 0);
    if (scene == NULL)
        return;
    OD_CHECK(scene->objects[0].truncated == 0);
    OD_CHECK(scene->objects[1].truncated == 1);
    od_scene_free(scene);
}

/* Rewrites dir/scene3d.metadata.json with `from` replaced by `to` once. */
static void edit_metadata(const char *dir, const char *from, const char *to)
{
    const char *path = fixture_path(dir, "scene3d.metadata.json");
    FILE *stream = fopen(path, "rb");
    OD_CHECK(stream != NULL);
    if (stream == NULL)
        return;
    char text[65536];
    size_t size = fread(text, 1, sizeof text - 1, stream);
    fclose(stream);
    text[size] = '\0';
    char *at = strstr(text, from);
    OD_CHECK(at != NULL);
    if (at == NULL)
        return;
    char edited[65536 + 256];
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    fixture_write_text(path, edited);
}

static void test_rejects_bad_release_files(void)
{
    const fixture_object objects[] = {
        {"a", "mug.blend", {0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
        {"b", "mug.blend", {-0.1, 0.1, 0.05}, {0.1, 0.1, 0.1}, 0.0},
    };

    /* A missing image names the view and the file. */
    const char *dir = od_test_temp_dir();
    write_ring_release(dir, objects, 2, 4);
    remove(fixture_path(dir, "RGB/0002.png"));
    fixture_check_rejected(dir, NULL, (const char *const[]){"scene3d.metadata.json", "view 2", "RGB/0002.png", "not found", NULL});

    /* A folder where the image should be. */
    dir = od_test_temp_dir();
    write_ring_release(dir, objects, 2, 4);
    remove(fixture_path(dir, "RGB/0001.png"));
    fixture_mkdir(fixture_path(dir, "RGB/0001.png"));
    fixture_check_rejected(dir, NULL, (const char *const[]){"view 1", "is a folder", NULL});

    /* NaN in K, as Python's json module writes it. */
    dir = od_test_temp_dir();
    write_ring_release(dir, objects, 2, 4);
    edit_metadata(dir, "\"K\": [[60, 0,", "\"K\": [[NaN, 0,");
    fixture_check_rejected(dir, NULL, (const char *const[]){"scene3d.metadata.json", "camera.K", "(0, 0)", "finite", NULL});

    /* Zero focal length. */
    dir = od_test_temp_dir();
    write_ring_release(dir, objects, 2, 4);
    edit_metadata(dir, "\"K\": [[60, 0,", "\"K\": [[0, 0,");
    fixture_check_rejected(dir, NULL, (const char *const[]){"camera.K", "positive", NULL});

    /* A principal point outside the image: K made for a larger image. */
    dir = od_test_temp_dir();
    write_ring_release(dir, objects, 2, 4);
    edit_metadata(dir, "[[60, 0, 32]", "[[60, 0, 128]");
    fixture_check_rejected(dir, NULL, (const char *const[]){"view 0", "principal point", "64 x 48", NULL});

    /* A pose whose rotation is scaled (not orthonormal). */
    dir = od_test_temp_dir();
    write_ring_release(dir, objects, 2, 4);
    edit_metadata(dir, "{\"rotation\": [[", "{\"rotation\": [[3, 0, 0, 0], [");
    fixture_check_rejected(dir, NULL, (const char *const[]){"camera.poses[0].rotation", NULL});

    /* Two objects with one name. */
    dir = od_test_temp_dir();
    write_ring_release(dir, objects, 2, 4);
    edit_metadata(dir, "\"name\": \"b\"", "\"name\": \"a\"");
    fixture_check_rejected(dir, NULL, (const char *const[]){"objects[1]", "repeats", NULL});

    /* A box with a zero extent. */
    dir = od_test_temp_dir();
    write_ring_release(dir, objects, 2, 4);
    edit_metadata(dir, "[0.10000000000000001, 0.10000000000000001, 0.10000000000000001]]",
                  "[0.10000000000000001, 0, 0.10000000000000001]]");
    fixture_check_rejected(dir, NULL, (const char *const[]){"objects[0] (a): bbox", "positive", NULL});

    /* Truncated JSON. */
    dir = od_test_temp_dir();
    fixture_write_text(fixture_path(dir, "scene3d.metadata.json"), "{\"camera\": {\"K\": [[1, 0");
    fixture_check_rejected(dir, NULL, (const char *const[]){"scene3d.metadata.json", "invalid JSON", NULL});

    /* An empty folder. */
    dir = od_test_temp_dir();
    fixture_check_rejected(dir, NULL, (const char *const[]){"no scene found", NULL});
}

static void test_cameras_looking_away_are_rejected(void)
{
    /* Poses written with OpenGL camera axes (y and z negated): every
     * camera ends up looking away from the table. */
    const char *dir = od_test_temp_dir();
    fixture_camera cameras[4];
    const double target[3] = {0, 0, 0.03};
    fixture_ring(cameras, 4, 0.8, 30.0, target, 64, 48, 60.0);
    for (int i = 0; i < 4; i++)
        for (int j = 4; j < 12; j++)
            cameras[i].world_to_camera[j] = -cameras[i].world_to_camera[j];
    fixture_write_release(dir, cameras, 4, NULL, 0, 1);
    fixture_check_rejected(dir, NULL, (const char *const[]){"scene3d.metadata.json", "look away", "world-to-camera", "OpenCV", NULL});
}

int main(void)
{
    OD_RUN(test_sample_scene_values);
    OD_RUN(test_sample_boxes_cover_masks);
    OD_RUN(test_labels_from_file_names);
    OD_RUN(test_scene_without_anomalies_or_only_anomalies);
    OD_RUN(test_one_view_and_no_objects);
    OD_RUN(test_object_outside_roi_is_truncated);
    OD_RUN(test_rejects_bad_release_files);
    OD_RUN(test_cameras_looking_away_are_rejected);
    return od_test_finish();
}
