/* Writes small synthetic scenes for the scene tests: cameras on a ring
 * around the origin looking at it, and the same cameras as a
 * transforms.json (in any intrinsics layout), a COLMAP text model or the
 * release's scene3d.metadata.json, with solid-colour images.
 *
 * Included by the test programs (static functions, no separate object
 * file). Every path is under a folder from od_test_temp_dir(). */
#ifndef ODDONE_TESTS_SCENE_FIXTURE_H
#define ODDONE_TESTS_SCENE_FIXTURE_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/image.h"
#include "scene/scene.h"
#include "testlib.h"

#define FIXTURE_PI 3.14159265358979323846

/* One synthetic camera: the pose and intrinsics the files will state.
 * cx and cy are in the files' convention (from the top-left corner). */
typedef struct fixture_camera {
    double world_to_camera[16]; /* OpenCV axes */
    double fx, fy, cx, cy;
    int width, height;
} fixture_camera;

/* Intrinsics layouts of transforms.json. */
enum {
    LAYOUT_FULL_TOP,      /* fl_x, fl_y, cx, cy, w, h at the top */
    LAYOUT_ANGLE_ONLY,    /* camera_angle_x only */
    LAYOUT_FL_X_ONLY,     /* fl_x, w, h; no fl_y, cx, cy */
    LAYOUT_PER_FRAME,     /* fl_x, fl_y, cx, cy, w, h in every frame */
    LAYOUT_NO_PRINCIPAL,  /* fl_x, fl_y at the top; no cx, cy */
    LAYOUT_3X4,           /* like FULL_TOP with 3x4 matrices */
    LAYOUT_COUNT
};

/* Returns "dir/name" in one of a few rotating static buffers. */
static inline const char *fixture_path(const char *dir, const char *name)
{
    static char buffers[8][8192];
    static int next;
    char *buffer = buffers[next];
    next = (next + 1) % 8;
    size_t dir_length = strlen(dir), name_length = strlen(name);
    if (dir_length + name_length + 2 > sizeof buffers[0]) {
        OD_CHECK(!"fixture path fits");
        buffer[0] = '\0';
        return buffer;
    }
    memcpy(buffer, dir, dir_length);
    buffer[dir_length] = '/';
    memcpy(buffer + dir_length + 1, name, name_length + 1);
    return buffer;
}

static inline void fixture_mkdir(const char *path) { mkdir(path, 0755); }

static inline void fixture_write_text(const char *path, const char *text)
{
    FILE *stream = fopen(path, "wb");
    OD_CHECK(stream != NULL);
    if (stream == NULL)
        return;
    fputs(text, stream);
    fclose(stream);
}

/* Writes a solid-colour RGB PNG. */
static inline void fixture_write_image(const char *path, int width, int height, float red, float green, float blue)
{
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(width, height, 3, &image, &err) == 0);
    for (int64_t i = 0; i < (int64_t)width * height; i++) {
        image.pixels[i * 3 + 0] = red;
        image.pixels[i * 3 + 1] = green;
        image.pixels[i * 3 + 2] = blue;
    }
    int status = od_image_write_png(path, &image, &err);
    if (status != 0)
        fprintf(stderr, "fixture: %s\n", err.message);
    OD_CHECK(status == 0);
    od_image_free(&image);
}

/* Sets an OpenCV world-to-camera pose at `center` looking at `target`,
 * with world z up and no roll. */
static inline void fixture_look_at(const double center[3], const double target[3], double world_to_camera[16])
{
    double forward[3] = {target[0] - center[0], target[1] - center[1], target[2] - center[2]};
    double norm = sqrt(forward[0] * forward[0] + forward[1] * forward[1] + forward[2] * forward[2]);
    for (int k = 0; k < 3; k++)
        forward[k] /= norm;
    const double up[3] = {0.0, 0.0, 1.0};
    double right[3] = {forward[1] * up[2] - forward[2] * up[1], forward[2] * up[0] - forward[0] * up[2],
                       forward[0] * up[1] - forward[1] * up[0]};
    norm = sqrt(right[0] * right[0] + right[1] * right[1] + right[2] * right[2]);
    for (int k = 0; k < 3; k++)
        right[k] /= norm;
    double down[3] = {forward[1] * right[2] - forward[2] * right[1], forward[2] * right[0] - forward[0] * right[2],
                      forward[0] * right[1] - forward[1] * right[0]};
    const double *rows[3] = {right, down, forward};
    memset(world_to_camera, 0, 16 * sizeof *world_to_camera);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            world_to_camera[i * 4 + j] = rows[i][j];
        world_to_camera[i * 4 + 3] = -(rows[i][0] * center[0] + rows[i][1] * center[1] + rows[i][2] * center[2]);
    }
    world_to_camera[15] = 1.0;
}

/* Places `count` cameras evenly on a ring of `radius` at `elevation`
 * degrees, looking at `target`, with square pixels and a centred
 * principal point. */
static inline void fixture_ring(fixture_camera *cameras, int count, double radius, double elevation_degrees,
                                const double target[3], int width, int height, double focal)
{
    double elevation = elevation_degrees * FIXTURE_PI / 180.0;
    for (int i = 0; i < count; i++) {
        double azimuth = 2.0 * FIXTURE_PI * i / count + 0.3;
        double center[3] = {target[0] + radius * cos(elevation) * cos(azimuth),
                            target[1] + radius * cos(elevation) * sin(azimuth),
                            target[2] + radius * sin(elevation)};
        fixture_look_at(center, target, cameras[i].world_to_camera);
        cameras[i].fx = focal;
        cameras[i].fy = focal;
        cameras[i].cx = 0.5 * width;
        cameras[i].cy = 0.5 * height;
        cameras[i].width = width;
        cameras[i].height = height;
    }
}

/* Inverts a rigid transform (test-side copy, so the fixture does not
 * depend on the code under test). */
static inline void fixture_invert_rigid(const double m[16], double out[16])
{
    memset(out, 0, 16 * sizeof *out);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            out[i * 4 + j] = m[j * 4 + i];
        out[i * 4 + 3] = -(m[0 * 4 + i] * m[3] + m[1 * 4 + i] * m[7] + m[2 * 4 + i] * m[11]);
    }
    out[15] = 1.0;
}

/* Appends printf-style text to a growing buffer. */
typedef struct fixture_text {
    char *data;
    size_t length;
    size_t capacity;
} fixture_text;

static inline void fixture_append(fixture_text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

static inline void fixture_append(fixture_text *text, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int needed = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (text->length + (size_t)needed + 1 > text->capacity) {
        text->capacity = (text->length + (size_t)needed + 1) * 2;
        text->data = realloc(text->data, text->capacity);
    }
    va_start(args, format);
    vsnprintf(text->data + text->length, (size_t)needed + 1, format, args);
    va_end(args);
    text->length += (size_t)needed;
}

/* Writes a 4x4 (or 3x4) matrix as JSON rows with 17 significant digits. */
static inline void fixture_append_matrix(fixture_text *text, const double *m, int rows)
{
    fixture_append(text, "[");
    for (int i = 0; i < rows; i++)
        fixture_append(text, "%s[%.17g, %.17g, %.17g, %.17g]", i > 0 ? ", " : "", m[i * 4], m[i * 4 + 1],
                       m[i * 4 + 2], m[i * 4 + 3]);
    fixture_append(text, "]");
}

/* Returns the transforms.json matrix of a camera: camera-to-world with
 * OpenGL axes, optionally premultiplied by applied (4x4, may be NULL). */
static inline void fixture_opengl_camera_to_world(const fixture_camera *camera, const double *applied,
                                                  double out[16])
{
    double camera_to_world[16];
    fixture_invert_rigid(camera->world_to_camera, camera_to_world);
    for (int row = 0; row < 3; row++) {
        camera_to_world[row * 4 + 1] = -camera_to_world[row * 4 + 1];
        camera_to_world[row * 4 + 2] = -camera_to_world[row * 4 + 2];
    }
    if (applied == NULL) {
        memcpy(out, camera_to_world, sizeof camera_to_world);
        return;
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double sum = 0.0;
            for (int k = 0; k < 4; k++)
                sum += applied[i * 4 + k] * camera_to_world[k * 4 + j];
            out[i * 4 + j] = sum;
        }
}

/* Writes dir/transforms.json for the cameras in the given intrinsics
 * layout, listing the frames in the order `order` gives (NULL: 0..count-1),
 * with names[i] as camera i's file_path. applied (4x4, may be NULL) is
 * written as applied_transform and premultiplied into the frames. Writes
 * the images too when write_images is 1. All cameras share the first
 * camera's intrinsics except in LAYOUT_PER_FRAME. */
static inline void fixture_write_transforms(const char *dir, const fixture_camera *cameras, int count,
                                            const char *const *names, const int *order, int layout,
                                            const double *applied, int write_images)
{
    fixture_text text = {0};
    const fixture_camera *first = &cameras[0];
    fixture_append(&text, "{\n");
    switch (layout) {
    case LAYOUT_FULL_TOP:
    case LAYOUT_3X4:
        fixture_append(&text, "  \"fl_x\": %.17g, \"fl_y\": %.17g, \"cx\": %.17g, \"cy\": %.17g, \"w\": %d, \"h\": %d,\n",
                       first->fx, first->fy, first->cx, first->cy, first->width, first->height);
        break;
    case LAYOUT_ANGLE_ONLY:
        fixture_append(&text, "  \"camera_angle_x\": %.17g,\n", 2.0 * atan(0.5 * first->width / first->fx));
        break;
    case LAYOUT_FL_X_ONLY:
        fixture_append(&text, "  \"fl_x\": %.17g, \"w\": %d, \"h\": %d,\n", first->fx, first->width, first->height);
        break;
    case LAYOUT_NO_PRINCIPAL:
        fixture_append(&text, "  \"fl_x\": %.17g, \"fl_y\": %.17g,\n", first->fx, first->fy);
        break;
    default:
        break;
    }
    if (applied != NULL) {
        fixture_append(&text, "  \"applied_transform\": ");
        fixture_append_matrix(&text, applied, 3);
        fixture_append(&text, ",\n");
    }
    fixture_append(&text, "  \"frames\": [\n");
    for (int n = 0; n < count; n++) {
        int i = order != NULL ? order[n] : n;
        const fixture_camera *camera = &cameras[i];
        double matrix[16];
        fixture_opengl_camera_to_world(camera, applied, matrix);
        fixture_append(&text, "    {\"file_path\": \"%s\", ", names[i]);
        if (layout == LAYOUT_PER_FRAME)
            fixture_append(&text, "\"fl_x\": %.17g, \"fl_y\": %.17g, \"cx\": %.17g, \"cy\": %.17g, \"w\": %d, \"h\": %d, ",
                           camera->fx, camera->fy, camera->cx, camera->cy, camera->width, camera->height);
        fixture_append(&text, "\"transform_matrix\": ");
        fixture_append_matrix(&text, matrix, layout == LAYOUT_3X4 ? 3 : 4);
        fixture_append(&text, "}%s\n", n + 1 < count ? "," : "");
    }
    fixture_append(&text, "  ]\n}\n");
    fixture_write_text(fixture_path(dir, "transforms.json"), text.data);
    free(text.data);

    if (write_images) {
        for (int i = 0; i < count; i++) {
            const char *path = fixture_path(dir, names[i]);
            /* Make the folder the name implies (one level). */
            const char *slash = strrchr(names[i], '/');
            if (slash != NULL) {
                char relative[4096];
                size_t length = (size_t)(slash - names[i]);
                if (length >= sizeof relative)
                    length = sizeof relative - 1;
                memcpy(relative, names[i], length);
                relative[length] = '\0';
                fixture_mkdir(fixture_path(dir, relative));
            }
            fixture_write_image(path, cameras[i].width, cameras[i].height, 0.2f + 0.03f * (float)(i % 20), 0.5f,
                                0.7f);
        }
    }
}

/* Writes the unit quaternion (w, x, y, z) of a rotation matrix (row-major 3x3). */
static inline void fixture_quaternion(const double r[9], double q[4])
{
    double trace = r[0] + r[4] + r[8];
    if (trace > 0.0) {
        double s = 2.0 * sqrt(trace + 1.0);
        q[0] = 0.25 * s;
        q[1] = (r[7] - r[5]) / s;
        q[2] = (r[2] - r[6]) / s;
        q[3] = (r[3] - r[1]) / s;
    } else if (r[0] > r[4] && r[0] > r[8]) {
        double s = 2.0 * sqrt(1.0 + r[0] - r[4] - r[8]);
        q[0] = (r[7] - r[5]) / s;
        q[1] = 0.25 * s;
        q[2] = (r[1] + r[3]) / s;
        q[3] = (r[2] + r[6]) / s;
    } else if (r[4] > r[8]) {
        double s = 2.0 * sqrt(1.0 + r[4] - r[0] - r[8]);
        q[0] = (r[2] - r[6]) / s;
        q[1] = (r[1] + r[3]) / s;
        q[2] = 0.25 * s;
        q[3] = (r[5] + r[7]) / s;
    } else {
        double s = 2.0 * sqrt(1.0 + r[8] - r[0] - r[4]);
        q[0] = (r[3] - r[1]) / s;
        q[1] = (r[2] + r[6]) / s;
        q[2] = (r[5] + r[7]) / s;
        q[3] = 0.25 * s;
    }
}

/* Writes a COLMAP text model of the cameras into dir/sparse/0 and the
 * images into dir/images/ (when write_images), one PINHOLE camera per view
 * with images named names[i]. */
static inline void fixture_write_colmap(const char *dir, const fixture_camera *cameras, int count,
                                        const char *const *names, int write_images)
{
    fixture_mkdir(fixture_path(dir, "sparse"));
    fixture_mkdir(fixture_path(dir, "sparse/0"));
    fixture_mkdir(fixture_path(dir, "images"));
    fixture_text cameras_text = {0}, images_text = {0};
    fixture_append(&cameras_text, "# Camera list with one line of data per camera:\n");
    fixture_append(&images_text, "# Image list with two lines of data per image:\n");
    for (int i = 0; i < count; i++) {
        const fixture_camera *camera = &cameras[i];
        fixture_append(&cameras_text, "%d PINHOLE %d %d %.17g %.17g %.17g %.17g\n", i + 1, camera->width,
                       camera->height, camera->fx, camera->fy, camera->cx, camera->cy);
        double rotation[9], q[4];
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                rotation[r * 3 + c] = camera->world_to_camera[r * 4 + c];
        fixture_quaternion(rotation, q);
        fixture_append(&images_text, "%d %.17g %.17g %.17g %.17g %.17g %.17g %.17g %d %s\n\n", i + 1, q[0], q[1],
                       q[2], q[3], camera->world_to_camera[3], camera->world_to_camera[7],
                       camera->world_to_camera[11], i + 1, names[i]);
    }
    fixture_write_text(fixture_path(dir, "sparse/0/cameras.txt"), cameras_text.data);
    fixture_write_text(fixture_path(dir, "sparse/0/images.txt"), images_text.data);
    free(cameras_text.data);
    free(images_text.data);
    if (write_images)
        for (int i = 0; i < count; i++) {
            char relative[4096];
            snprintf(relative, sizeof relative, "images/%s", names[i]);
            fixture_write_image(fixture_path(dir, relative), cameras[i].width, cameras[i].height, 0.4f, 0.4f, 0.4f);
        }
}

/* One ground-truth object of a release scene. */
typedef struct fixture_object {
    const char *name;
    const char *path;
    double center[3];
    double size[3];
    double yaw;
} fixture_object;

/* Writes dir/scene3d.metadata.json (the first camera's K for all views)
 * and dir/RGB/NNNN.png for the cameras (when write_images). */
static inline void fixture_write_release(const char *dir, const fixture_camera *cameras, int count,
                                         const fixture_object *objects, int object_count, int write_images)
{
    fixture_text text = {0};
    const fixture_camera *first = &cameras[0];
    fixture_append(&text, "{\"objects\": [");
    for (int o = 0; o < object_count; o++) {
        const fixture_object *object = &objects[o];
        double c = cos(object->yaw), s = sin(object->yaw);
        double m[16] = {c, -s, 0, object->center[0], s, c, 0, object->center[1], 0, 0, 1, object->center[2],
                        0, 0, 0, 1};
        fixture_append(&text, "%s{\"name\": \"%s\", \"path\": \"%s\", \"rotation_matrix\": ", o > 0 ? ", " : "",
                       object->name, object->path);
        fixture_append_matrix(&text, m, 4);
        fixture_append(&text,
                       ", \"location\": [%.17g, %.17g, %.17g], \"scale\": [1, 1, 1], \"bbox\": [[%.17g, %.17g, "
                       "%.17g], [%.17g, %.17g, %.17g]]}",
                       object->center[0], object->center[1], object->center[2], object->center[0],
                       object->center[1], object->center[2], object->size[0], object->size[1], object->size[2]);
    }
    fixture_append(&text, "], \"camera\": {\"K\": [[%.17g, 0, %.17g], [0, %.17g, %.17g], [0, 0, 1]], \"poses\": [",
                   first->fx, first->cx, first->fy, first->cy);
    for (int i = 0; i < count; i++) {
        fixture_append(&text, "%s{\"rotation\": ", i > 0 ? ", " : "");
        fixture_append_matrix(&text, cameras[i].world_to_camera, 4);
        fixture_append(&text, "}");
    }
    fixture_append(&text, "]}}\n");
    fixture_write_text(fixture_path(dir, "scene3d.metadata.json"), text.data);
    free(text.data);
    if (write_images) {
        fixture_mkdir(fixture_path(dir, "RGB"));
        for (int i = 0; i < count; i++) {
            char relative[64];
            snprintf(relative, sizeof relative, "RGB/%04d.png", i);
            fixture_write_image(fixture_path(dir, relative), cameras[i].width, cameras[i].height, 0.8f, 0.8f, 0.8f);
        }
    }
}

/* Returns 1 when `text` contains every one of the NULL-terminated needles,
 * printing the text otherwise so that a failed check shows the message. */
static inline int fixture_message_has(const char *text, const char *const *needles)
{
    for (int i = 0; needles[i] != NULL; i++) {
        if (strstr(text, needles[i]) == NULL) {
            fprintf(stderr, "message \"%s\" lacks \"%s\"\n", text, needles[i]);
            return 0;
        }
    }
    return 1;
}

/* Loads `path` with `options` (may be NULL) and checks that loading fails
 * with a message holding every one of the NULL-terminated needles. */
static inline void fixture_check_rejected(const char *path, const od_scene_options *options,
                                          const char *const *needles)
{
    od_scene *scene = (od_scene *)&scene;
    od_error err;
    err.message[0] = '\0';
    OD_CHECK(od_scene_load(path, options, &scene, &err) == -1);
    OD_CHECK(scene == NULL);
    OD_CHECK(fixture_message_has(err.message, needles));
    fprintf(stderr, "rejected: %s\n", err.message);
}

#endif
