/* COLMAP text models.
 *
 * cameras.txt has one line per camera, "CAMERA_ID MODEL WIDTH HEIGHT
 * PARAMS...". The models read are SIMPLE_PINHOLE (f cx cy), PINHOLE
 * (fx fy cx cy), SIMPLE_RADIAL (f cx cy k), RADIAL (f cx cy k1 k2) and
 * OPENCV (fx fy cx cy k1 k2 p1 p2). COLMAP measures the principal point
 * from the image's top-left corner.
 * images.txt: two lines per image, "IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID
 * NAME" and the image's 2D points (ignored, possibly empty). The quaternion
 * and translation are world-to-camera in OpenCV axes, so the camera centre
 * is -R^T t.
 * points3D.txt (optional): "POINT3D_ID X Y Z R G B ERROR TRACK...".
 * Lines starting with '#' are comments. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "scene/scene_internal.h"

/* A quaternion whose norm differs from 1 by more than this is rejected:
 * COLMAP writes unit quaternions with 17 digits. */
#define QUATERNION_NORM_TOLERANCE 1e-3

typedef struct colmap_camera {
    long id;
    od_intrinsics_spec spec;
    od_distortion distortion;
} colmap_camera;

/* Iterates over the lines of a text buffer without modifying it. */
typedef struct line_reader {
    const char *text;
    size_t size;
    size_t offset;
    int number; /* 1-based number of the last line returned */
} line_reader;

/* Copies the next line (without its end-of-line characters) into `line`
 * and returns its length, or -1 at the end of the text. Lines longer than
 * the buffer are cut; the caller sees the cut through `truncated`. */
static int next_line(line_reader *reader, char *line, size_t capacity, int *truncated)
{
    if (reader->offset >= reader->size)
        return -1;
    const char *start = reader->text + reader->offset;
    size_t remaining = reader->size - reader->offset;
    const char *end = memchr(start, '\n', remaining);
    size_t length = end != NULL ? (size_t)(end - start) : remaining;
    reader->offset += length + (end != NULL ? 1 : 0);
    reader->number++;
    while (length > 0 && (start[length - 1] == '\r'))
        length--;
    *truncated = length >= capacity;
    if (length >= capacity)
        length = capacity - 1;
    memcpy(line, start, length);
    line[length] = '\0';
    /* A NUL inside the line ends it for the parser; keep the real length
     * out of reach so that the two agree. */
    return (int)strlen(line);
}

static int is_blank_or_comment(const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    return *line == '\0' || *line == '#';
}

/* Reads whitespace-separated numbers from *cursor; returns how many it
 * read (up to max_count), stopping at the first token that is not a
 * finite number. */
static int read_numbers(const char **cursor, double *values, int max_count)
{
    int count = 0;
    while (count < max_count) {
        char *end;
        errno = 0;
        double value = strtod(*cursor, &end);
        if (end == *cursor || !isfinite(value) || (*end != '\0' && *end != ' ' && *end != '\t'))
            break;
        values[count++] = value;
        *cursor = end;
    }
    return count;
}

static int read_integer(const char **cursor, long *value)
{
    char *end;
    errno = 0;
    long parsed = strtol(*cursor, &end, 10);
    if (end == *cursor || errno != 0 || (*end != '\0' && *end != ' ' && *end != '\t'))
        return -1;
    *value = parsed;
    *cursor = end;
    return 0;
}

static const char *skip_spaces(const char *cursor)
{
    while (*cursor == ' ' || *cursor == '\t')
        cursor++;
    return cursor;
}

/* Reads one token (a model name) into `token`. */
static int read_token(const char **cursor, char *token, size_t capacity)
{
    const char *start = skip_spaces(*cursor);
    size_t length = strcspn(start, " \t");
    if (length == 0 || length >= capacity)
        return -1;
    memcpy(token, start, length);
    token[length] = '\0';
    *cursor = start + length;
    return 0;
}

/* ---- cameras.txt ---------------------------------------------------------------- */

static int parse_camera_line(const char *line, colmap_camera *camera, const char *where, od_error *err)
{
    const char *cursor = line;
    long id, width, height;
    char model[64];
    if (read_integer(&cursor, &id) != 0 || read_token(&cursor, model, sizeof model) != 0 ||
        read_integer(&cursor, &width) != 0 || read_integer(&cursor, &height) != 0)
        return od_fail(err, "%s: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS...", where);
    if (width < 1 || width > OD_IMAGE_MAX_SIDE || height < 1 || height > OD_IMAGE_MAX_SIDE)
        return od_fail(err, "%s: image size %ld x %ld; expected 1 to %d pixels per side", where, width, height,
                       OD_IMAGE_MAX_SIDE);

    static const struct {
        const char *name;
        int count;
    } models[] = {
        {"SIMPLE_PINHOLE", 3}, {"PINHOLE", 4}, {"SIMPLE_RADIAL", 4}, {"RADIAL", 5}, {"OPENCV", 8},
    };
    int model_index = -1;
    for (int i = 0; i < (int)(sizeof models / sizeof models[0]); i++)
        if (strcmp(model, models[i].name) == 0)
            model_index = i;
    if (model_index < 0)
        return od_fail(err,
                       "%s: camera model %s is not supported; expected SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, "
                       "RADIAL or OPENCV (undistort the images with COLMAP's image_undistorter for others)",
                       where, model);
    double params[9];
    int count = read_numbers(&cursor, params, 9);
    if (count != models[model_index].count || *skip_spaces(cursor) != '\0')
        return od_fail(err, "%s: camera model %s takes %d finite parameters; found %d%s", where, model,
                       models[model_index].count, count, *skip_spaces(cursor) != '\0' ? " and more text" : "");

    memset(camera, 0, sizeof *camera);
    camera->id = id;
    camera->spec = od_intrinsics_spec_empty();
    camera->spec.width = (int)width;
    camera->spec.height = (int)height;
    const char *name = models[model_index].name;
    int separate_focals = strcmp(name, "PINHOLE") == 0 || strcmp(name, "OPENCV") == 0;
    camera->spec.fx = params[0];
    camera->spec.fy = separate_focals ? params[1] : params[0];
    camera->spec.cx = params[separate_focals ? 2 : 1];
    camera->spec.cy = params[separate_focals ? 3 : 2];
    if (strcmp(name, "SIMPLE_RADIAL") == 0) {
        camera->distortion.k1 = params[3];
    } else if (strcmp(name, "RADIAL") == 0) {
        camera->distortion.k1 = params[3];
        camera->distortion.k2 = params[4];
    } else if (strcmp(name, "OPENCV") == 0) {
        camera->distortion.k1 = params[4];
        camera->distortion.k2 = params[5];
        camera->distortion.p1 = params[6];
        camera->distortion.p2 = params[7];
    }
    if (!(camera->spec.fx > 0.0) || !(camera->spec.fy > 0.0))
        return od_fail(err, "%s: focal length %g, %g; expected positive focal lengths in pixels", where,
                       camera->spec.fx, camera->spec.fy);
    return 0;
}

static int parse_cameras(const char *text, size_t size, const char *source, colmap_camera **cameras_out,
                         int *count_out, od_error *err)
{
    *cameras_out = NULL;
    *count_out = 0;
    colmap_camera *cameras = NULL;
    int count = 0;
    line_reader reader = {text, size, 0, 0};
    char line[4096];
    int truncated;
    while (next_line(&reader, line, sizeof line, &truncated) >= 0) {
        if (is_blank_or_comment(line))
            continue;
        char where[600];
        snprintf(where, sizeof where, "%s: line %d", source, reader.number);
        colmap_camera camera;
        if (truncated || parse_camera_line(line, &camera, where, err) != 0) {
            if (truncated)
                od_fail(err, "%s: line longer than %zu characters", where, sizeof line - 1);
            free(cameras);
            return -1;
        }
        for (int i = 0; i < count; i++) {
            if (cameras[i].id == camera.id) {
                free(cameras);
                return od_fail(err, "%s: CAMERA_ID %ld repeats; expected unique ids", where, camera.id);
            }
        }
        colmap_camera *grown = realloc(cameras, (size_t)(count + 1) * sizeof *grown);
        if (grown == NULL) {
            free(cameras);
            return od_fail(err, "%s: out of memory", source);
        }
        cameras = grown;
        cameras[count++] = camera;
    }
    if (count == 0)
        return od_fail(err, "%s: no cameras; expected one line per camera", source);
    *cameras_out = cameras;
    *count_out = count;
    return 0;
}

/* ---- images.txt ------------------------------------------------------------------ */

static int parse_image_line(od_scene *scene, const char *line, const colmap_camera *cameras, int camera_count,
                            long *image_ids, const char *where, od_error *err)
{
    const char *cursor = line;
    long image_id, camera_id;
    double pose[7];
    if (read_integer(&cursor, &image_id) != 0 || read_numbers(&cursor, pose, 7) != 7 ||
        read_integer(&cursor, &camera_id) != 0)
        return od_fail(err, "%s: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME with finite numbers", where);
    const char *name_start = skip_spaces(cursor);
    size_t name_length = strlen(name_start);
    while (name_length > 0 && (name_start[name_length - 1] == ' ' || name_start[name_length - 1] == '\t'))
        name_length--;
    if (name_length == 0)
        return od_fail(err, "%s: NAME is missing; expected the image's file name", where);
    char name[4096];
    memcpy(name, name_start, name_length);
    name[name_length] = '\0';

    for (int v = 0; v < scene->view_count; v++) {
        if (image_ids[v] == image_id)
            return od_fail(err, "%s: IMAGE_ID %ld repeats; expected unique ids", where, image_id);
        if (strcmp(scene->views[v].name, name) == 0)
            return od_fail(err, "%s: NAME %s repeats image %ld; expected each image once", where, name,
                           image_ids[v]);
    }
    const colmap_camera *camera = NULL;
    for (int i = 0; i < camera_count; i++)
        if (cameras[i].id == camera_id)
            camera = &cameras[i];
    if (camera == NULL)
        return od_fail(err, "%s: CAMERA_ID %ld is not in cameras.txt", where, camera_id);

    double norm = sqrt(pose[0] * pose[0] + pose[1] * pose[1] + pose[2] * pose[2] + pose[3] * pose[3]);
    if (fabs(norm - 1.0) > QUATERNION_NORM_TOLERANCE)
        return od_fail(err, "%s: quaternion (%g, %g, %g, %g) has norm %g; expected a unit quaternion", where,
                       pose[0], pose[1], pose[2], pose[3], norm);

    od_scene_view *view = od_scene_add_view(scene, name, name);
    if (view == NULL)
        return od_fail(err, "%s: out of memory", where);
    double rotation[9];
    od_rotation_from_quaternion(pose, rotation);
    double *m = view->camera.world_to_camera;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            m[i * 4 + j] = rotation[i * 3 + j];
        m[i * 4 + 3] = pose[4 + i];
    }
    view->stated = camera->spec;
    view->distortion = camera->distortion;
    image_ids[scene->view_count - 1] = image_id;
    return 0;
}

int od_scene_parse_colmap(od_scene *scene, const char *cameras_text, size_t cameras_size,
                          const char *cameras_source, const char *images_text, size_t images_size,
                          const char *images_source, od_error *err)
{
    colmap_camera *cameras = NULL;
    int camera_count = 0;
    if (parse_cameras(cameras_text, cameras_size, cameras_source, &cameras, &camera_count, err) != 0)
        return -1;

    long *image_ids = NULL;
    int capacity = 0;
    int status = 0;
    line_reader reader = {images_text, images_size, 0, 0};
    char line[8192];
    int truncated;
    /* Image lines alternate with point lines, which may be empty: only
     * comments and blank lines before an image line are skipped. */
    while (next_line(&reader, line, sizeof line, &truncated) >= 0) {
        if (is_blank_or_comment(line))
            continue;
        char where[600];
        snprintf(where, sizeof where, "%s: line %d", images_source, reader.number);
        if (truncated) {
            status = od_fail(err, "%s: line longer than %zu characters", where, sizeof line - 1);
            break;
        }
        if (scene->view_count + 1 > capacity) {
            capacity = capacity == 0 ? 64 : capacity * 2;
            long *grown = realloc(image_ids, (size_t)capacity * sizeof *grown);
            if (grown == NULL) {
                status = od_fail(err, "%s: out of memory", images_source);
                break;
            }
            image_ids = grown;
        }
        status = parse_image_line(scene, line, cameras, camera_count, image_ids, where, err);
        if (status != 0)
            break;
        /* The points line: skipped whatever it holds. The line buffer may
         * cut it, which does not matter here. */
        next_line(&reader, line, sizeof line, &truncated);
    }
    free(image_ids);
    free(cameras);
    return status;
}

/* ---- points3D.txt ------------------------------------------------------------------ */

int od_scene_parse_colmap_points(od_scene *scene, const char *text, size_t size, const char *source,
                                 od_error *err)
{
    free(scene->sparse_points);
    scene->sparse_points = NULL;
    scene->sparse_point_count = 0;
    int64_t capacity = 0;
    line_reader reader = {text, size, 0, 0};
    char line[256];
    int truncated;
    /* Only the first four fields matter; the track after them is cut off
     * by the line buffer. */
    while (next_line(&reader, line, sizeof line, &truncated) >= 0) {
        if (is_blank_or_comment(line))
            continue;
        const char *cursor = line;
        long id;
        double xyz[3];
        if (read_integer(&cursor, &id) != 0 || read_numbers(&cursor, xyz, 3) != 3)
            return od_fail(err, "%s: line %d: expected POINT3D_ID X Y Z ... with finite coordinates", source,
                           reader.number);
        if (scene->sparse_point_count == capacity) {
            capacity = capacity == 0 ? 1024 : capacity * 2;
            double *grown = realloc(scene->sparse_points, (size_t)capacity * 3 * sizeof *grown);
            if (grown == NULL)
                return od_fail(err, "%s: out of memory", source);
            scene->sparse_points = grown;
        }
        memcpy(&scene->sparse_points[scene->sparse_point_count * 3], xyz, sizeof xyz);
        scene->sparse_point_count++;
    }
    return 0;
}

/* ---- loading --------------------------------------------------------------------- */

/* Sets each view's image path: the first of images/NAME, NAME, ../images/NAME
 * and ../../images/NAME under the scene folder that exists. */
static int find_images(od_scene *scene, const char *images_source, od_error *err)
{
    static const char *const prefixes[] = {"images/", "", "../images/", "../../images/"};
    for (int v = 0; v < scene->view_count; v++) {
        od_scene_view *view = &scene->views[v];
        char *found = NULL;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && found == NULL; i++) {
            size_t length = strlen(prefixes[i]) + strlen(view->name) + 1;
            char *relative = malloc(length);
            if (relative == NULL)
                return od_fail(err, "out of memory");
            snprintf(relative, length, "%s%s", prefixes[i], view->name);
            char *candidate = od_scene_join_path(scene->root, relative);
            free(relative);
            if (candidate != NULL && od_scene_is_file(candidate))
                found = candidate;
            else
                free(candidate);
        }
        if (found == NULL)
            return od_fail(err,
                           "%s: view %d (%s): image not found; expected it at %s/images/%s or beside the model",
                           images_source, v, view->name, scene->root, view->name);
        free(view->image_path);
        view->image_path = found;
    }
    return 0;
}

int od_scene_load_colmap(od_scene *scene, const char *model_folder, od_error *err);

int od_scene_load_colmap(od_scene *scene, const char *model_folder, od_error *err)
{
    char *cameras_path = od_scene_join_path(model_folder, "cameras.txt");
    char *images_path = od_scene_join_path(model_folder, "images.txt");
    char *points_path = od_scene_join_path(model_folder, "points3D.txt");
    char *cameras_text = NULL, *images_text = NULL, *points_text = NULL;
    size_t cameras_size = 0, images_size = 0, points_size = 0;
    int status = -1;
    if (cameras_path == NULL || images_path == NULL || points_path == NULL) {
        od_fail(err, "out of memory");
    } else if (od_scene_read_text_file(cameras_path, &cameras_text, &cameras_size, err) == 0 &&
               od_scene_read_text_file(images_path, &images_text, &images_size, err) == 0) {
        scene->metadata_path = od_scene_strdup(images_path);
        status = scene->metadata_path != NULL ? 0 : od_fail(err, "out of memory");
        if (status == 0)
            status = od_scene_parse_colmap(scene, cameras_text, cameras_size, cameras_path, images_text,
                                           images_size, images_path, err);
        if (status == 0)
            status = find_images(scene, images_path, err);
        if (status == 0 && od_scene_is_file(points_path)) {
            status = od_scene_read_text_file(points_path, &points_text, &points_size, err);
            if (status == 0)
                status = od_scene_parse_colmap_points(scene, points_text, points_size, points_path, err);
        }
    }
    free(cameras_text);
    free(images_text);
    free(points_text);
    free(cameras_path);
    free(images_path);
    free(points_path);
    return status;
}
