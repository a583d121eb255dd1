/* nerfstudio and instant-ngp transforms.json.
 *
 * frames[i].transform_matrix is camera-to-world in OpenGL axes (x right,
 * y up, z backward), 4x4 or 3x4, and frames[i].file_path names the image
 * relative to the file's folder (instant-ngp may leave out the extension).
 * Intrinsics sit at the top level, in a frame (overriding the top), or
 * both, in any of these layouts:
 * - fl_x and fl_y in pixels; fl_x alone means square pixels;
 * - camera_angle_x (and camera_angle_y), the field of view in radians;
 * - cx and cy from the image's top-left corner, the image centre when absent;
 * - w and h, the image size the intrinsics were made for;
 * - k1, k2, k3, p1, p2: OpenCV lens distortion, removed when images are read.
 * applied_transform (3x4 or 4x4), written by nerfstudio's ns-process-data,
 * maps the capture's original world (where COLMAP's points live) to the
 * world of the frames. The loader undoes it, so the cameras end up in the
 * original world. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scene/scene_internal.h"

/* A transform_matrix's last row may differ from (0, 0, 0, 1) by this much
 * (float32 round-off in files written by capture apps). */
#define LAST_ROW_TOLERANCE 1e-6

/* Extensions tried, in order, for a file_path without one. */
static const char *const image_extensions[] = {".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG"};

/* Reads the intrinsics and distortion keys of one JSON object over `spec`
 * and `distortion`: what the object has replaces what they hold. */
static int read_intrinsics(const cJSON *object, od_intrinsics_spec *spec, od_distortion *distortion,
                           const char *where, od_error *err)
{
    static const struct {
        const char *key;
        int positive; /* 1: must be > 0 */
    } number_keys[] = {
        {"fl_x", 1}, {"fl_y", 1}, {"cx", 0}, {"cy", 0}, {"camera_angle_x", 1}, {"camera_angle_y", 1},
    };
    double *targets[] = {&spec->fx, &spec->fy, &spec->cx, &spec->cy, &spec->angle_x, &spec->angle_y};
    for (size_t i = 0; i < sizeof number_keys / sizeof number_keys[0]; i++) {
        double value;
        int found = od_json_number(object, number_keys[i].key, &value, where, err);
        if (found < 0)
            return -1;
        if (found == 0)
            continue;
        if (number_keys[i].positive && !(value > 0.0))
            return od_fail(err, "%s: \"%s\" is %g; expected a positive %s", where, number_keys[i].key, value,
                           number_keys[i].key[0] == 'f' ? "focal length in pixels" : "angle in radians");
        *targets[i] = value;
    }

    static const char *const size_keys[] = {"w", "h"};
    int *size_targets[] = {&spec->width, &spec->height};
    for (int i = 0; i < 2; i++) {
        double value;
        int found = od_json_number(object, size_keys[i], &value, where, err);
        if (found < 0)
            return -1;
        if (found == 0)
            continue;
        if (!(value >= 1.0 && value <= OD_IMAGE_MAX_SIDE) || floor(value) != value)
            return od_fail(err, "%s: \"%s\" is %g; expected a whole number of pixels from 1 to %d", where,
                           size_keys[i], value, OD_IMAGE_MAX_SIDE);
        *size_targets[i] = (int)value;
    }

    const cJSON *model = cJSON_GetObjectItemCaseSensitive(object, "camera_model");
    if (model != NULL) {
        if (!cJSON_IsString(model))
            return od_fail(err, "%s: \"camera_model\" is not a string", where);
        if (strcmp(model->valuestring, "OPENCV") != 0 && strcmp(model->valuestring, "PINHOLE") != 0 &&
            strcmp(model->valuestring, "SIMPLE_PINHOLE") != 0)
            return od_fail(err, "%s: camera_model \"%s\" is not supported; expected OPENCV or PINHOLE", where,
                           model->valuestring);
    }

    static const char *const distortion_keys[] = {"k1", "k2", "k3", "p1", "p2"};
    double *distortion_targets[] = {&distortion->k1, &distortion->k2, &distortion->k3, &distortion->p1,
                                    &distortion->p2};
    for (int i = 0; i < 5; i++)
        if (od_json_number(object, distortion_keys[i], distortion_targets[i], where, err) < 0)
            return -1;
    double k4 = 0.0;
    if (od_json_number(object, "k4", &k4, where, err) < 0)
        return -1;
    if (k4 != 0.0)
        return od_fail(err, "%s: \"k4\" is %g; fisheye distortion is not supported, expected k4 = 0", where, k4);
    return 0;
}

/* Reads a 3x4 or 4x4 rigid transform; a 3x4 gets the row (0, 0, 0, 1). */
static int read_rigid(const cJSON *item, double transform[16], const char *what, od_error *err)
{
    int rows = od_json_row_count(item);
    if (rows != 3 && rows != 4)
        return od_fail(err, "%s: expected a 4x4 or 3x4 matrix (rows of numbers)", what);
    if (od_json_matrix(item, rows, 4, transform, what, err) != 0)
        return -1;
    if (rows == 3) {
        transform[12] = transform[13] = transform[14] = 0.0;
        transform[15] = 1.0;
    }
    const double *last = transform + 12;
    if (fabs(last[0]) > LAST_ROW_TOLERANCE || fabs(last[1]) > LAST_ROW_TOLERANCE ||
        fabs(last[2]) > LAST_ROW_TOLERANCE || fabs(last[3] - 1.0) > LAST_ROW_TOLERANCE)
        return od_fail(err, "%s: last row (%g, %g, %g, %g); expected (0, 0, 0, 1)", what, last[0], last[1],
                       last[2], last[3]);
    transform[12] = transform[13] = transform[14] = 0.0;
    transform[15] = 1.0;

    double rotation[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            rotation[i * 3 + j] = transform[i * 4 + j];
    char why[256];
    if (od_rotation_check(rotation, why, (int)sizeof why) != 0)
        return od_fail(err, "%s: %s", what, why);
    return 0;
}

/* Returns the image path for a frame's file_path: relative to the file's
 * folder, with an image extension added when the path has none and the
 * plain name does not exist. */
static char *image_path_for(const char *root, const char *file_path)
{
    char *path = od_scene_join_path(root, file_path);
    if (path == NULL || od_scene_is_file(path))
        return path;
    const char *slash = strrchr(file_path, '/');
    const char *file_name = slash != NULL ? slash + 1 : file_path;
    if (strchr(file_name, '.') != NULL)
        return path;
    size_t length = strlen(path);
    for (size_t i = 0; i < sizeof image_extensions / sizeof image_extensions[0]; i++) {
        char *candidate = malloc(length + strlen(image_extensions[i]) + 1);
        if (candidate == NULL)
            break;
        memcpy(candidate, path, length);
        strcpy(candidate + length, image_extensions[i]);
        if (od_scene_is_file(candidate)) {
            free(path);
            return candidate;
        }
        free(candidate);
    }
    return path;
}

static int parse_frame(od_scene *scene, const cJSON *frame, int index, const od_intrinsics_spec *top_spec,
                       const od_distortion *top_distortion, const double *file_from_original, const char *source,
                       od_error *err)
{
    char where[600];
    snprintf(where, sizeof where, "%s: frames[%d]", source, index);
    if (!cJSON_IsObject(frame))
        return od_fail(err, "%s: expected an object with file_path and transform_matrix", where);
    const cJSON *file_path = cJSON_GetObjectItemCaseSensitive(frame, "file_path");
    if (!cJSON_IsString(file_path) || file_path->valuestring[0] == '\0')
        return od_fail(err, "%s: \"file_path\" is missing or not a string; expected the image's path", where);
    const char *name = file_path->valuestring;
    snprintf(where, sizeof where, "%s: frames[%d] (%s)", source, index, name);
    int earlier = od_scene_find_view(scene, name, scene->view_count);
    if (earlier >= 0)
        return od_fail(err, "%s: file_path repeats frames[%d]; expected each image once", where, earlier);

    char what[700];
    snprintf(what, sizeof what, "%s: transform_matrix", where);
    double camera_to_world[16];
    if (read_rigid(cJSON_GetObjectItemCaseSensitive(frame, "transform_matrix"), camera_to_world, what, err) != 0)
        return -1;

    od_intrinsics_spec spec = *top_spec;
    od_distortion distortion = *top_distortion;
    if (read_intrinsics(frame, &spec, &distortion, where, err) != 0)
        return -1;

    /* Undo applied_transform: camera-to-world in the original world is
     * A^-1 times the frame's. */
    if (file_from_original != NULL) {
        double original_from_file[16], original[16];
        od_rigid_invert(file_from_original, original_from_file);
        od_mat4_multiply(original_from_file, camera_to_world, original);
        memcpy(camera_to_world, original, sizeof original);
    }

    char *image_path = image_path_for(scene->root, name);
    od_scene_view *view = image_path != NULL ? od_scene_add_view(scene, name, image_path) : NULL;
    free(image_path);
    if (view == NULL)
        return od_fail(err, "%s: out of memory", where);
    od_camera_from_opengl_camera_to_world(camera_to_world, view->camera.world_to_camera);
    view->stated = spec;
    view->distortion = distortion;

    const cJSON *mask_path = cJSON_GetObjectItemCaseSensitive(frame, "mask_path");
    if (mask_path != NULL) {
        if (!cJSON_IsString(mask_path) || mask_path->valuestring[0] == '\0')
            return od_fail(err, "%s: \"mask_path\" is not a path", where);
        view->mask_path = od_scene_join_path(scene->root, mask_path->valuestring);
        if (view->mask_path == NULL)
            return od_fail(err, "%s: out of memory", where);
    }
    return 0;
}

int od_scene_parse_transforms(od_scene *scene, const char *text, size_t size, const char *source, od_error *err)
{
    cJSON *root = od_json_parse(text, size, source, err);
    if (root == NULL)
        return -1;
    int status = -1;
    od_intrinsics_spec top_spec = od_intrinsics_spec_empty();
    od_distortion top_distortion = {0};
    const cJSON *frames = cJSON_GetObjectItemCaseSensitive(root, "frames");
    const cJSON *applied = cJSON_GetObjectItemCaseSensitive(root, "applied_transform");
    double file_from_original[16];
    char what[600];
    snprintf(what, sizeof what, "%s: applied_transform", source);

    if (!cJSON_IsObject(root)) {
        od_fail(err, "%s: expected a JSON object at the top", source);
    } else if (!cJSON_IsArray(frames)) {
        od_fail(err, "%s: \"frames\" is missing or not an array; expected one entry per image", source);
    } else if (read_intrinsics(root, &top_spec, &top_distortion, source, err) == 0 &&
               (applied == NULL || read_rigid(applied, file_from_original, what, err) == 0)) {
        status = 0;
        int index = 0;
        const cJSON *frame;
        cJSON_ArrayForEach(frame, frames)
        {
            status = parse_frame(scene, frame, index++, &top_spec, &top_distortion,
                                 applied != NULL ? file_from_original : NULL, source, err);
            if (status != 0)
                break;
        }
    }
    cJSON_Delete(root);
    return status;
}

int od_scene_load_transforms(od_scene *scene, const char *transforms_path, od_error *err);

int od_scene_load_transforms(od_scene *scene, const char *transforms_path, od_error *err)
{
    scene->metadata_path = od_scene_strdup(transforms_path);
    if (scene->metadata_path == NULL)
        return od_fail(err, "out of memory");
    char *text = NULL;
    size_t size = 0;
    if (od_scene_read_text_file(transforms_path, &text, &size, err) != 0)
        return -1;
    int status = od_scene_parse_transforms(scene, text, size, transforms_path, err);
    free(text);
    return status;
}
