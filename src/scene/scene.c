/* Scene loading: format detection, the steps every format shares (image
 * sizes, intrinsics, masks, duplicates, frame and visibility checks), and
 * reading images and masks on demand. The format parsers are in
 * release.c, transforms.c and colmap.c. */
#include "scene/scene.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "scene/scene_internal.h"

#define OD_SCENE_PI 3.14159265358979323846

/* ---- small helpers ------------------------------------------------------------ */

char *od_scene_strdup(const char *text)
{
    size_t length = strlen(text) + 1;
    char *copy = malloc(length);
    if (copy != NULL)
        memcpy(copy, text, length);
    return copy;
}

char *od_scene_join_path(const char *directory, const char *name)
{
    if (directory == NULL || directory[0] == '\0' || name[0] == '/')
        return od_scene_strdup(name);
    size_t directory_length = strlen(directory);
    while (directory_length > 1 && directory[directory_length - 1] == '/')
        directory_length--;
    /* "./images/1.png" reads better in messages as "images/1.png". */
    while (name[0] == '.' && name[1] == '/')
        name += 2;
    size_t name_length = strlen(name);
    char *path = malloc(directory_length + 1 + name_length + 1);
    if (path == NULL)
        return NULL;
    memcpy(path, directory, directory_length);
    path[directory_length] = '/';
    memcpy(path + directory_length + 1, name, name_length + 1);
    return path;
}

int od_scene_is_file(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode);
}

int od_scene_is_directory(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

int od_scene_read_text_file(const char *path, char **text, size_t *size, od_error *err)
{
    *text = NULL;
    *size = 0;
    struct stat info;
    if (stat(path, &info) != 0)
        return od_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(info.st_mode))
        return od_fail(err, "%s: not a regular file; expected the scene's metadata file", path);
    if ((size_t)info.st_size > OD_SCENE_MAX_METADATA_BYTES)
        return od_fail(err, "%s: %lld bytes; expected at most %zu for a scene metadata file", path,
                       (long long)info.st_size, OD_SCENE_MAX_METADATA_BYTES);
    FILE *stream = fopen(path, "rb");
    if (stream == NULL)
        return od_fail(err, "%s: cannot open: %s", path, strerror(errno));
    size_t expected = (size_t)info.st_size;
    char *buffer = malloc(expected + 1);
    if (buffer == NULL) {
        fclose(stream);
        return od_fail(err, "%s: out of memory reading %zu bytes", path, expected);
    }
    size_t got = fread(buffer, 1, expected, stream);
    int failed = ferror(stream);
    fclose(stream);
    if (failed || got != expected) {
        free(buffer);
        return od_fail(err, "%s: read failed after %zu of %zu bytes", path, got, expected);
    }
    buffer[got] = '\0';
    *text = buffer;
    *size = got;
    return 0;
}

od_intrinsics_spec od_intrinsics_spec_empty(void)
{
    od_intrinsics_spec spec;
    spec.fx = spec.fy = spec.cx = spec.cy = NAN;
    spec.angle_x = spec.angle_y = NAN;
    spec.width = spec.height = 0;
    return spec;
}

/* ---- scene object -------------------------------------------------------------- */

od_scene *od_scene_new(const char *root)
{
    od_scene *scene = calloc(1, sizeof *scene);
    if (scene == NULL)
        return NULL;
    scene->root = od_scene_strdup(root != NULL ? root : "");
    if (scene->root == NULL) {
        free(scene);
        return NULL;
    }
    for (int i = 0; i < 4; i++)
        scene->world_from_file[i * 5] = 1.0;
    scene->image_options = od_image_read_options_default();
    return scene;
}

void od_scene_free(od_scene *scene)
{
    if (scene == NULL)
        return;
    for (int v = 0; v < scene->view_count; v++) {
        od_scene_view *view = &scene->views[v];
        free(view->name);
        free(view->image_path);
        free(view->mask_path);
        if (view->object_mask_paths != NULL) {
            for (int o = 0; o < scene->object_count; o++)
                free(view->object_mask_paths[o]);
            free(view->object_mask_paths);
        }
        od_image_free(&view->image);
    }
    for (int o = 0; o < scene->object_count; o++) {
        free(scene->objects[o].name);
        free(scene->objects[o].source);
        free(scene->objects[o].anomaly_kind);
    }
    free(scene->views);
    free(scene->objects);
    free(scene->sparse_points);
    free(scene->root);
    free(scene->metadata_path);
    free(scene);
}

od_scene_view *od_scene_add_view(od_scene *scene, const char *name, const char *image_path)
{
    od_scene_view *grown = realloc(scene->views, (size_t)(scene->view_count + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    scene->views = grown;
    od_scene_view *view = &scene->views[scene->view_count];
    memset(view, 0, sizeof *view);
    view->name = od_scene_strdup(name);
    view->image_path = od_scene_strdup(image_path);
    if (view->name == NULL || view->image_path == NULL) {
        free(view->name);
        free(view->image_path);
        return NULL;
    }
    view->stated = od_intrinsics_spec_empty();
    for (int i = 0; i < 4; i++)
        view->camera.world_to_camera[i * 5] = 1.0;
    view->camera.K[8] = 1.0;
    scene->view_count++;
    return view;
}

od_scene_object *od_scene_add_object(od_scene *scene, const char *name, const char *source)
{
    od_scene_object *grown = realloc(scene->objects, (size_t)(scene->object_count + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    scene->objects = grown;
    od_scene_object *object = &scene->objects[scene->object_count];
    memset(object, 0, sizeof *object);
    object->name = od_scene_strdup(name);
    object->source = od_scene_strdup(source);
    object->anomaly_kind = od_scene_strdup("");
    if (object->name == NULL || object->source == NULL || object->anomaly_kind == NULL) {
        free(object->name);
        free(object->source);
        free(object->anomaly_kind);
        return NULL;
    }
    object->label = OD_LABEL_NORMAL;
    scene->object_count++;
    return object;
}

int od_scene_find_view(const od_scene *scene, const char *name, int before)
{
    for (int v = 0; v < before && v < scene->view_count; v++)
        if (strcmp(scene->views[v].name, name) == 0)
            return v;
    return -1;
}

/* ---- options and formats ----------------------------------------------------------- */

od_scene_options od_scene_options_default(void)
{
    od_scene_options options;
    memset(&options, 0, sizeof options);
    options.format = OD_SCENE_FORMAT_AUTO;
    options.image_options = od_image_read_options_default();
    return options;
}

const char *od_scene_format_name(od_scene_format format)
{
    switch (format) {
    case OD_SCENE_FORMAT_RELEASE:
        return "release";
    case OD_SCENE_FORMAT_TRANSFORMS:
        return "transforms";
    case OD_SCENE_FORMAT_COLMAP:
        return "colmap";
    default:
        return "auto";
    }
}

int od_scene_format_parse(const char *name, od_scene_format *format, od_error *err)
{
    static const struct {
        const char *name;
        od_scene_format format;
    } names[] = {
        {"auto", OD_SCENE_FORMAT_AUTO},
        {"release", OD_SCENE_FORMAT_RELEASE},
        {"toysad", OD_SCENE_FORMAT_RELEASE},
        {"transforms", OD_SCENE_FORMAT_TRANSFORMS},
        {"nerfstudio", OD_SCENE_FORMAT_TRANSFORMS},
        {"instant-ngp", OD_SCENE_FORMAT_TRANSFORMS},
        {"colmap", OD_SCENE_FORMAT_COLMAP},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *format = names[i].format;
            return 0;
        }
    }
    return od_fail(err,
                   "unknown scene format \"%s\"; expected auto, release (also toysad), transforms (also "
                   "nerfstudio, instant-ngp) or colmap",
                   name);
}

/* Finds the folder of a COLMAP text model under root: root itself,
 * sparse/0 or sparse. Returns a new string or NULL. */
static char *find_colmap_model(const char *root)
{
    static const char *const candidates[] = {"", "sparse/0", "sparse", "colmap/sparse/0"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        char *folder = candidates[i][0] == '\0' ? od_scene_strdup(root) : od_scene_join_path(root, candidates[i]);
        if (folder == NULL)
            return NULL;
        char *cameras = od_scene_join_path(folder, "cameras.txt");
        char *images = od_scene_join_path(folder, "images.txt");
        int found = cameras != NULL && images != NULL && od_scene_is_file(cameras) && od_scene_is_file(images);
        free(cameras);
        free(images);
        if (found)
            return folder;
        free(folder);
    }
    return NULL;
}

static int folder_has(const char *root, const char *name)
{
    char *path = od_scene_join_path(root, name);
    int found = path != NULL && od_scene_is_file(path);
    free(path);
    return found;
}

int od_scene_detect_format(const char *root, od_scene_format *format, od_error *err)
{
    if (!od_scene_is_directory(root))
        return od_fail(err, "%s: not a folder; expected a scene folder", root);
    int release = folder_has(root, "scene3d.metadata.json");
    int transforms = folder_has(root, "transforms.json");
    char *colmap_model = find_colmap_model(root);
    int colmap = colmap_model != NULL;
    free(colmap_model);

    /* nerfstudio's processed captures hold both transforms.json and the
     * COLMAP model it came from; transforms.json is the one it trains on. */
    if (release) {
        *format = OD_SCENE_FORMAT_RELEASE;
    } else if (transforms) {
        *format = OD_SCENE_FORMAT_TRANSFORMS;
    } else if (colmap) {
        *format = OD_SCENE_FORMAT_COLMAP;
    } else {
        return od_fail(err,
                       "%s: no scene found; expected scene3d.metadata.json (the ToysAD/PartsAD release), "
                       "transforms.json (nerfstudio, instant-ngp) or a COLMAP text model (cameras.txt and "
                       "images.txt, also under sparse/0 or sparse)",
                       root);
    }
    if (release + transforms + colmap > 1)
        od_log_info("scene", "%s contains more than one scene format; reading it as %s (set the format "
                             "to choose another)",
                    root, od_scene_format_name(*format));
    return 0;
}

/* ---- intrinsics ----------------------------------------------------------------- */

/* Focal length in pixels of a field of view across `pixels` pixels. */
static double focal_from_angle(double angle, int pixels) { return 0.5 * pixels / tan(0.5 * angle); }

int od_scene_resolve_camera(od_scene *scene, int view_index, int width, int height, od_error *err)
{
    od_scene_view *view = &scene->views[view_index];
    const od_intrinsics_spec *spec = &view->stated;
    const char *source = scene->metadata_path != NULL ? scene->metadata_path : "scene";

    if (width <= 0 || height <= 0)
        return od_fail(err, "%s: view %d (%s): image size %d x %d; expected a positive size", source, view_index,
                       view->name, width, height);
    if ((spec->width > 0 && spec->width != width) || (spec->height > 0 && spec->height != height))
        return od_fail(err,
                       "%s: view %d (%s): the intrinsics are stated for a %d x %d image but %s is %d x %d; "
                       "expected the image the intrinsics were made for (scale the intrinsics with a "
                       "resized image)",
                       source, view_index, view->name, spec->width, spec->height, view->image_path, width,
                       height);
    for (int i = 0; i < 2; i++) {
        double angle = i == 0 ? spec->angle_x : spec->angle_y;
        if (!isnan(angle) && !(angle > 0.0 && angle < OD_SCENE_PI))
            return od_fail(err, "%s: view %d (%s): field of view %s = %g radians; expected between 0 and pi",
                           source, view_index, view->name, i == 0 ? "camera_angle_x" : "camera_angle_y",
                           angle);
    }

    /* Focal lengths: stated, else from the field of view, else the other
     * axis's (square pixels). */
    double fx = spec->fx, fy = spec->fy;
    if (isnan(fx) && !isnan(spec->angle_x))
        fx = focal_from_angle(spec->angle_x, width);
    if (isnan(fy) && !isnan(spec->angle_y))
        fy = focal_from_angle(spec->angle_y, height);
    if (isnan(fx))
        fx = fy;
    if (isnan(fy))
        fy = fx;
    if (isnan(fx))
        return od_fail(err,
                       "%s: view %d (%s): no focal length; expected fl_x (or fl_y) in pixels, or "
                       "camera_angle_x in radians",
                       source, view_index, view->name);

    /* The file measures the principal point from the top-left corner; K
     * puts pixel centres on integers (see geometry/camera.h). */
    double cx = isnan(spec->cx) ? 0.5 * width : spec->cx;
    double cy = isnan(spec->cy) ? 0.5 * height : spec->cy;

    od_camera *camera = &view->camera;
    camera->width = width;
    camera->height = height;
    memset(camera->K, 0, sizeof camera->K);
    camera->K[0] = fx;
    camera->K[2] = cx - 0.5;
    camera->K[4] = fy;
    camera->K[5] = cy - 0.5;
    camera->K[8] = 1.0;

    char what[512];
    snprintf(what, sizeof what, "%s: view %d (%s)", source, view_index, view->name);
    return od_camera_validate(camera, what, err);
}

/* ---- images ---------------------------------------------------------------------- */

/* Samples the channel-interleaved `image` bilinearly at (x, y), with pixel
 * centres on integers, into out. Returns 0 and leaves out alone when
 * (x, y) lies outside the image. */
static int sample_bilinear(const od_image *image, double x, double y, float *out)
{
    if (!(x >= -0.5 && x <= image->width - 0.5 && y >= -0.5 && y <= image->height - 0.5))
        return 0;
    double clamped_x = fmin(fmax(x, 0.0), image->width - 1.0);
    double clamped_y = fmin(fmax(y, 0.0), image->height - 1.0);
    int x0 = (int)floor(clamped_x), y0 = (int)floor(clamped_y);
    int x1 = x0 + 1 < image->width ? x0 + 1 : x0;
    int y1 = y0 + 1 < image->height ? y0 + 1 : y0;
    float wx = (float)(clamped_x - x0), wy = (float)(clamped_y - y0);
    int channels = image->channels;
    const float *p00 = &image->pixels[((size_t)y0 * image->width + x0) * channels];
    const float *p01 = &image->pixels[((size_t)y0 * image->width + x1) * channels];
    const float *p10 = &image->pixels[((size_t)y1 * image->width + x0) * channels];
    const float *p11 = &image->pixels[((size_t)y1 * image->width + x1) * channels];
    for (int c = 0; c < channels; c++) {
        float top = p00[c] + wx * (p01[c] - p00[c]);
        float bottom = p10[c] + wx * (p11[c] - p10[c]);
        out[c] = top + wy * (bottom - top);
    }
    return 1;
}

/* Resamples a distorted image into the pinhole camera with the same K:
 * every output pixel looks up where the lens put it. Pixels whose source
 * lies outside the image get `fill` (channels values). */
static int undistort_image(const od_image *distorted, const od_camera *camera, const od_distortion *distortion,
                           const float *fill, od_image *out, od_error *err)
{
    if (od_image_new(distorted->width, distorted->height, distorted->channels, out, err) != 0)
        return -1;
    const double fx = camera->K[0], fy = camera->K[4], cx = camera->K[2], cy = camera->K[5];
    const int channels = distorted->channels;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < out->height; y++) {
        for (int x = 0; x < out->width; x++) {
            double normalized_x = (x - cx) / fx, normalized_y = (y - cy) / fy;
            double distorted_x, distorted_y;
            od_distortion_apply(distortion, normalized_x, normalized_y, &distorted_x, &distorted_y);
            float *pixel = &out->pixels[((size_t)y * out->width + x) * channels];
            if (!sample_bilinear(distorted, fx * distorted_x + cx, fy * distorted_y + cy, pixel))
                for (int c = 0; c < channels; c++)
                    pixel[c] = fill[c];
        }
    }
    return 0;
}

static int check_view_index(const od_scene *scene, int view, od_error *err)
{
    if (view < 0 || view >= scene->view_count)
        return od_fail(err, "view %d does not exist; the scene has %d views", view, scene->view_count);
    return 0;
}

int od_scene_read_view_image(const od_scene *scene, int view_index, od_image *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    if (check_view_index(scene, view_index, err) != 0)
        return -1;
    const od_scene_view *view = &scene->views[view_index];
    od_image_read_options options = scene->image_options;
    options.keep_alpha = 0;
    od_image raw;
    if (od_image_read(view->image_path, &options, &raw, err) != 0)
        return od_fail_context(err, "view %d (%s)", view_index, view->name);
    if (raw.width != view->camera.width || raw.height != view->camera.height) {
        int width = raw.width, height = raw.height;
        od_image_free(&raw);
        return od_fail(err, "%s: view %d (%s): image is %d x %d but the camera is %d x %d; was it replaced "
                            "after the scene was loaded?",
                       view->image_path, view_index, view->name, width, height, view->camera.width,
                       view->camera.height);
    }
    if (od_distortion_is_zero(&view->distortion)) {
        *out = raw;
        return 0;
    }
    int status = undistort_image(&raw, &view->camera, &view->distortion, options.background, out, err);
    od_image_free(&raw);
    return status;
}

int od_scene_load_view_image(od_scene *scene, int view, od_error *err)
{
    if (check_view_index(scene, view, err) != 0)
        return -1;
    if (scene->views[view].image.pixels != NULL)
        return 0;
    return od_scene_read_view_image(scene, view, &scene->views[view].image, err);
}

void od_scene_release_view_image(od_scene *scene, int view)
{
    if (view >= 0 && view < scene->view_count)
        od_image_free(&scene->views[view].image);
}

int od_scene_resize_view(od_scene *scene, int view_index, int width, int height, od_error *err)
{
    if (check_view_index(scene, view_index, err) != 0)
        return -1;
    od_scene_view *view = &scene->views[view_index];
    if (view->image.pixels == NULL)
        return od_fail(err, "view %d (%s): image not loaded; load it before resizing", view_index, view->name);
    od_image resized;
    if (od_image_resize(&view->image, width, height, &resized, err) != 0)
        return od_fail_context(err, "view %d (%s)", view_index, view->name);
    od_image_free(&view->image);
    view->image = resized;
    od_camera_resize(&view->camera, width, height);
    return 0;
}

/* ---- masks ---------------------------------------------------------------------- */

/* Reads a mask file as 0/1 at the view's size, undistorted like the image. */
static int read_mask_file(const od_scene *scene, int view_index, const char *path, od_image *out, od_error *err)
{
    const od_scene_view *view = &scene->views[view_index];
    od_image raw;
    if (od_image_read_gray(path, &raw, err) != 0)
        return od_fail_context(err, "view %d (%s): mask", view_index, view->name);
    if (raw.width != view->camera.width || raw.height != view->camera.height) {
        int width = raw.width, height = raw.height;
        od_image_free(&raw);
        return od_fail(err, "%s: mask of view %d (%s) is %d x %d; expected the image's size %d x %d", path,
                       view_index, view->name, width, height, view->camera.width, view->camera.height);
    }
    if (!od_distortion_is_zero(&view->distortion)) {
        const float outside = 0.0f;
        od_image undistorted;
        int status = undistort_image(&raw, &view->camera, &view->distortion, &outside, &undistorted, err);
        od_image_free(&raw);
        if (status != 0)
            return -1;
        raw = undistorted;
    }
    int64_t count = (int64_t)raw.width * raw.height;
    for (int64_t i = 0; i < count; i++)
        raw.pixels[i] = raw.pixels[i] > 0.5f ? 1.0f : 0.0f;
    *out = raw;
    return 0;
}

int od_scene_read_object_mask(const od_scene *scene, int view, int object, od_image *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    if (check_view_index(scene, view, err) != 0)
        return -1;
    if (object < 0 || object >= scene->object_count)
        return od_fail(err, "object %d does not exist; the scene has %d objects", object, scene->object_count);
    const od_scene_view *v = &scene->views[view];
    if (v->object_mask_paths == NULL || v->object_mask_paths[object] == NULL)
        return od_fail(err, "view %d (%s): no mask for object %s", view, v->name, scene->objects[object].name);
    return read_mask_file(scene, view, v->object_mask_paths[object], out, err);
}

int od_scene_view_has_mask(const od_scene *scene, int view)
{
    if (scene == NULL || view < 0 || view >= scene->view_count)
        return 0;
    const od_scene_view *v = &scene->views[view];
    if (v->mask_path != NULL)
        return 1;
    for (int o = 0; v->object_mask_paths != NULL && o < scene->object_count; o++)
        if (v->object_mask_paths[o] != NULL)
            return 1;
    return 0;
}

int od_scene_read_view_mask(const od_scene *scene, int view, od_image *out, int *has_mask, od_error *err)
{
    memset(out, 0, sizeof *out);
    *has_mask = 0;
    if (check_view_index(scene, view, err) != 0)
        return -1;
    const od_scene_view *v = &scene->views[view];
    if (v->mask_path != NULL) {
        if (read_mask_file(scene, view, v->mask_path, out, err) != 0)
            return -1;
        *has_mask = 1;
        return 0;
    }
    if (v->object_mask_paths == NULL)
        return 0;
    for (int o = 0; o < scene->object_count; o++) {
        if (v->object_mask_paths[o] == NULL)
            continue;
        od_image mask;
        if (read_mask_file(scene, view, v->object_mask_paths[o], &mask, err) != 0) {
            od_image_free(out);
            return -1;
        }
        if (out->pixels == NULL) {
            *out = mask;
        } else {
            int64_t count = (int64_t)mask.width * mask.height;
            for (int64_t i = 0; i < count; i++)
                out->pixels[i] = fmaxf(out->pixels[i], mask.pixels[i]);
            od_image_free(&mask);
        }
        *has_mask = 1;
    }
    return 0;
}

/* ---- loading --------------------------------------------------------------------- */

int od_scene_load_release(od_scene *scene, od_error *err);
int od_scene_load_transforms(od_scene *scene, const char *transforms_path, od_error *err);
int od_scene_load_colmap(od_scene *scene, const char *model_folder, od_error *err);

static int validate_options(const od_scene_options *options, od_error *err)
{
    if (!(options->scale >= 0.0) || !isfinite(options->scale))
        return od_fail(err, "scale %g; expected a positive number (or 0 for automatic)", options->scale);
    if (options->has_up) {
        double norm = sqrt(options->up[0] * options->up[0] + options->up[1] * options->up[1] +
                           options->up[2] * options->up[2]);
        if (!isfinite(norm) || norm == 0.0)
            return od_fail(err, "up (%g, %g, %g); expected a finite nonzero vector", options->up[0],
                           options->up[1], options->up[2]);
    }
    if (options->has_roi) {
        for (int k = 0; k < 3; k++)
            if (!isfinite(options->roi_min[k]) || !isfinite(options->roi_max[k]) ||
                !(options->roi_min[k] < options->roi_max[k]))
                return od_fail(err,
                               "region of interest axis %c spans [%g, %g]; expected finite bounds with min < max",
                               "xyz"[k], options->roi_min[k], options->roi_max[k]);
    }
    return 0;
}

/* Resolves every view's camera from its image file's size. */
static int resolve_views(od_scene *scene, od_error *err)
{
    const char *source = scene->metadata_path;
    for (int v = 0; v < scene->view_count; v++) {
        od_scene_view *view = &scene->views[v];
        if (!od_scene_is_file(view->image_path)) {
            const char *problem = od_scene_is_directory(view->image_path) ? "is a folder" : "not found";
            return od_fail(err, "%s: view %d (%s): image file %s %s; expected an image file", source, v,
                           view->name, view->image_path, problem);
        }
        int width = 0, height = 0;
        if (od_image_read_size(view->image_path, &width, &height, err) != 0)
            return od_fail_context(err, "%s: view %d (%s)", source, v, view->name);
        if (od_scene_resolve_camera(scene, v, width, height, err) != 0)
            return -1;
    }
    return 0;
}

/* Rejects two views of one image file: frames are matched to images by
 * their recorded names, so a repeat is an error in the file. */
static int check_duplicate_images(const od_scene *scene, od_error *err)
{
    for (int v = 0; v < scene->view_count; v++) {
        for (int w = 0; w < v; w++) {
            if (strcmp(scene->views[v].image_path, scene->views[w].image_path) == 0)
                return od_fail(err, "%s: views %d and %d both name the image %s; expected each image once",
                               scene->metadata_path, w, v, scene->views[v].image_path);
        }
    }
    return 0;
}

/* Looks for a foreground mask beside the images: masks/<file name> or
 * masks/<stem>.png under the scene folder. */
static int find_masks(od_scene *scene, od_error *err)
{
    char *mask_folder = od_scene_join_path(scene->root, "masks");
    if (mask_folder == NULL)
        return od_fail(err, "out of memory");
    int has_folder = od_scene_is_directory(mask_folder);
    for (int v = 0; v < scene->view_count && has_folder; v++) {
        od_scene_view *view = &scene->views[v];
        if (view->mask_path != NULL)
            continue;
        const char *slash = strrchr(view->image_path, '/');
        const char *file_name = slash != NULL ? slash + 1 : view->image_path;
        char candidate[4096];
        snprintf(candidate, sizeof candidate, "%s/%s", mask_folder, file_name);
        if (!od_scene_is_file(candidate)) {
            const char *dot = strrchr(file_name, '.');
            int stem_length = dot != NULL ? (int)(dot - file_name) : (int)strlen(file_name);
            snprintf(candidate, sizeof candidate, "%s/%.*s.png", mask_folder, stem_length, file_name);
        }
        if (od_scene_is_file(candidate)) {
            view->mask_path = od_scene_strdup(candidate);
            if (view->mask_path == NULL) {
                free(mask_folder);
                return od_fail(err, "out of memory");
            }
        }
    }
    free(mask_folder);
    for (int v = 0; v < scene->view_count; v++) {
        const od_scene_view *view = &scene->views[v];
        if (view->mask_path != NULL && !od_scene_is_file(view->mask_path))
            return od_fail(err, "%s: view %d (%s): mask file %s not found", scene->metadata_path, v, view->name,
                           view->mask_path);
    }
    return 0;
}

/* Splits a path to a scene into its folder and, when the path names a
 * metadata file, the file and the format it implies. */
static int locate_scene(const char *path, od_scene_format requested, char **root, char **file,
                        od_scene_format *format, od_error *err)
{
    *root = NULL;
    *file = NULL;
    *format = requested;
    if (od_scene_is_directory(path)) {
        *root = od_scene_strdup(path);
        if (*root == NULL)
            return od_fail(err, "out of memory");
        if (requested == OD_SCENE_FORMAT_AUTO && od_scene_detect_format(path, format, err) != 0) {
            free(*root);
            *root = NULL;
            return -1;
        }
        return 0;
    }
    if (!od_scene_is_file(path))
        return od_fail(err, "%s: not found; expected a scene folder or its metadata file", path);

    const char *slash = strrchr(path, '/');
    const char *name = slash != NULL ? slash + 1 : path;
    *root = slash != NULL ? strndup(path, (size_t)(slash - path)) : od_scene_strdup(".");
    *file = od_scene_strdup(path);
    if (*root == NULL || *file == NULL) {
        free(*root);
        free(*file);
        *root = *file = NULL;
        return od_fail(err, "out of memory");
    }
    if (requested != OD_SCENE_FORMAT_AUTO)
        return 0;
    size_t length = strlen(name);
    if (strcmp(name, "scene3d.metadata.json") == 0)
        *format = OD_SCENE_FORMAT_RELEASE;
    else if (length > 5 && strcmp(name + length - 5, ".json") == 0)
        *format = OD_SCENE_FORMAT_TRANSFORMS;
    else if (strcmp(name, "cameras.txt") == 0 || strcmp(name, "images.txt") == 0)
        *format = OD_SCENE_FORMAT_COLMAP;
    else {
        free(*root);
        free(*file);
        *root = *file = NULL;
        return od_fail(err,
                       "%s: cannot tell the scene format from this file name; expected a scene folder, "
                       "scene3d.metadata.json, a transforms .json file or COLMAP's cameras.txt",
                       path);
    }
    return 0;
}

/* Runs the format's parser and the steps every format shares. */
static int load_scene(od_scene *scene, const char *file, const od_scene_options *options, od_error *err)
{
    /* pass 1: the format's own files */
    int status = -1;
    if (scene->format == OD_SCENE_FORMAT_RELEASE) {
        status = od_scene_load_release(scene, err);
    } else if (scene->format == OD_SCENE_FORMAT_TRANSFORMS) {
        char *path = file != NULL ? od_scene_strdup(file) : od_scene_join_path(scene->root, "transforms.json");
        status = path != NULL ? od_scene_load_transforms(scene, path, err) : od_fail(err, "out of memory");
        free(path);
    } else if (scene->format == OD_SCENE_FORMAT_COLMAP) {
        char *model = NULL;
        if (file != NULL) {
            const char *slash = strrchr(file, '/');
            model = slash != NULL ? strndup(file, (size_t)(slash - file)) : od_scene_strdup(".");
        } else {
            model = find_colmap_model(scene->root);
        }
        if (model == NULL)
            status = od_fail(err, "%s: no COLMAP text model found; expected cameras.txt and images.txt in the "
                                  "folder, in sparse/0 or in sparse",
                             scene->root);
        else
            status = od_scene_load_colmap(scene, model, err);
        free(model);
    } else {
        status = od_fail(err, "%s: unknown scene format", scene->root);
    }
    if (status != 0)
        return -1;
    if (scene->view_count == 0)
        return od_fail(err, "%s: the scene has no views; expected at least one posed image", scene->metadata_path);

    /* pass 2: images, intrinsics, masks */
    if (check_duplicate_images(scene, err) != 0 || resolve_views(scene, err) != 0 || find_masks(scene, err) != 0)
        return -1;

    /* pass 3: the world frame, then what the cameras see of it */
    if (od_scene_set_frame(scene, options, err) != 0)
        return -1;
    od_scene_mark_truncated(scene);
    if (od_scene_check_visibility(scene, err) != 0)
        return -1;

    if (options->load_images) {
        for (int v = 0; v < scene->view_count; v++)
            if (od_scene_load_view_image(scene, v, err) != 0)
                return -1;
    }
    return 0;
}

int od_scene_load(const char *path, const od_scene_options *options_in, od_scene **out, od_error *err)
{
    *out = NULL;
    od_scene_options options = options_in != NULL ? *options_in : od_scene_options_default();
    if (validate_options(&options, err) != 0)
        return -1;

    char *root = NULL, *file = NULL;
    od_scene_format format;
    if (locate_scene(path, options.format, &root, &file, &format, err) != 0)
        return -1;
    od_scene *scene = od_scene_new(root);
    free(root);
    if (scene == NULL) {
        free(file);
        return od_fail(err, "out of memory");
    }
    scene->format = format;
    scene->image_options = options.image_options;
    scene->image_options.keep_alpha = 0;

    int status = load_scene(scene, file, &options, err);
    free(file);
    if (status != 0) {
        od_scene_free(scene);
        return -1;
    }
    od_log_info("scene", "%s: %d views, %d objects (%s format)", scene->root, scene->view_count,
                scene->object_count, od_scene_format_name(scene->format));
    *out = scene;
    return 0;
}

/* ---- JSON helpers ------------------------------------------------------------------ */

int od_json_number(const cJSON *object, const char *key, double *value, const char *where, od_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    if (item == NULL || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble)) {
        if (cJSON_IsNumber(item))
            return od_fail(err, "%s: \"%s\" is NaN or infinite; expected a finite number", where, key);
        return od_fail(err, "%s: \"%s\" is not a number", where, key);
    }
    *value = item->valuedouble;
    return 1;
}

int od_json_row_count(const cJSON *item)
{
    if (!cJSON_IsArray(item))
        return -1;
    return cJSON_GetArraySize(item);
}

int od_json_matrix(const cJSON *item, int rows, int columns, double *out, const char *what, od_error *err)
{
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != rows)
        return od_fail(err, "%s: expected %d rows of %d numbers", what, rows, columns);
    int row = 0;
    const cJSON *row_item;
    cJSON_ArrayForEach(row_item, item)
    {
        if (!cJSON_IsArray(row_item) || cJSON_GetArraySize(row_item) != columns)
            return od_fail(err, "%s: row %d: expected %d numbers", what, row, columns);
        int column = 0;
        const cJSON *entry;
        cJSON_ArrayForEach(entry, row_item)
        {
            if (!cJSON_IsNumber(entry))
                return od_fail(err, "%s: entry (%d, %d) is not a number", what, row, column);
            if (!isfinite(entry->valuedouble))
                return od_fail(err, "%s: entry (%d, %d) is NaN or infinite; expected a finite number", what,
                               row, column);
            out[row * columns + column] = entry->valuedouble;
            column++;
        }
        row++;
    }
    return 0;
}

/* Returns 1 when text[i..] starts with the bare word `word`. */
static int starts_with_word(const char *text, size_t size, size_t i, const char *word)
{
    size_t length = strlen(word);
    return i + length <= size && memcmp(text + i, word, length) == 0;
}

cJSON *od_json_parse(const char *text, size_t size, const char *source, od_error *err)
{
    /* Python's json module writes NaN, Infinity and -Infinity, which are
     * not JSON. Outside strings they become 1e999 (which parses as
     * infinity), so that the field check names the field instead of the
     * parser stopping at a byte offset. */
    char *copy = malloc(size * 2 + 1);
    if (copy == NULL) {
        od_fail(err, "%s: out of memory", source);
        return NULL;
    }
    size_t length = 0;
    int in_string = 0;
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\' && i + 1 < size) {
                copy[length++] = c;
                copy[length++] = text[++i];
                continue;
            }
            if (c == '"')
                in_string = 0;
            copy[length++] = c;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (starts_with_word(text, size, i, "NaN")) {
            memcpy(copy + length, "1e999", 5);
            length += 5;
            i += 2;
            continue;
        } else if (starts_with_word(text, size, i, "Infinity")) {
            memcpy(copy + length, "1e999", 5);
            length += 5;
            i += 7;
            continue;
        }
        copy[length++] = c;
    }
    copy[length] = '\0';

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, length, &end, 0);
    if (root == NULL) {
        size_t offset = end != NULL && end >= copy ? (size_t)(end - copy) : 0;
        int line = 1;
        for (size_t i = 0; i < offset && i < length; i++)
            line += copy[i] == '\n';
        od_fail(err, "%s: invalid JSON at line %d; expected a JSON object", source, line);
    }
    free(copy);
    return root;
}
