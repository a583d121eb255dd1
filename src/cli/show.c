/* `oddone show SCENE -o DIR`: loads a scene in any format, prints what was
 * read (views, sizes, intrinsics, camera positions, objects), and writes
 * every view with the ground-truth boxes drawn on it plus a top-down
 * sketch, so that a user can check a scene before detecting on it. */
#include "cli/show.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/log.h"
#include "io/folder.h"
#include "io/image.h"
#include "scene/overlay.h"
#include "scene/scene.h"

/* Side of the top-down sketch in pixels. */
#define TOP_VIEW_SIZE 640

#define DEGREES_PER_RADIAN (180.0 / 3.14159265358979323846)

static void print_show_usage(FILE *stream)
{
    fprintf(stream,
            "usage: oddone show SCENE -o DIR [OPTIONS]\n"
            "\n"
            "Loads a scene, prints what was read, and writes every view with the ground-truth\n"
            "boxes drawn on it (DIR/views/NNNN.png; anomalous objects red, normal green, the\n"
            "region of interest blue) and a top-down sketch of cameras and boxes (DIR/top.png).\n"
            "\n"
            "SCENE is a folder (or its metadata file) in one of these formats:\n"
            "  release      ToysAD-8K / PartsAD-15K: scene3d.metadata.json, RGB/, segmentations/\n"
            "  transforms   nerfstudio / instant-ngp transforms.json\n"
            "  colmap       COLMAP text model: cameras.txt, images.txt (also in sparse/0)\n"
            "\n"
            "options:\n"
            "  -o, --output DIR       folder for the pictures; created when missing (required)\n"
            "  --format NAME          auto (default: from the folder's files), release, transforms\n"
            "                         or colmap\n"
            "  --scale S              multiply the file's world units by S to get metres\n"
            "                         (default: automatic; COLMAP is scaled so that the cameras\n"
            "                         stand 0.8 m from what they look at)\n"
            "  --up X,Y,Z             up direction in the file's world, for captured scenes\n"
            "                         (default: estimated from the cameras)\n"
            "  --roi X0,Y0,Z0,X1,Y1,Z1  region of interest in the scene's world, in metres after\n"
            "                         scaling (default: -0.64,-0.64,0,0.64,0.64,0.32)\n"
            "  --keep-frame           keep the file's world as it is: no up, floor or scale estimate\n"
            "  --background R,G,B     colour that transparent pixels are composited onto, each in\n"
            "                         [0, 1] (default: 1,1,1, white)\n"
            "  --json                 print the summary as JSON\n"
            "  --quiet                print errors only\n"
            "  -h, --help             print this text\n");
}

/* Parses `count` comma-separated finite numbers. */
static int parse_numbers(const char *option, const char *text, double *values, int count, const char *example)
{
    const char *cursor = text;
    for (int i = 0; i < count; i++) {
        char *end;
        errno = 0;
        values[i] = strtod(cursor, &end);
        int separator_ok = i + 1 < count ? *end == ',' : *end == '\0';
        if (end == cursor || errno != 0 || !isfinite(values[i]) || !separator_ok) {
            fprintf(stderr, "oddone show: %s expects %d finite numbers separated by commas, as %s; got \"%s\"\n",
                    option, count, example, text);
            return -1;
        }
        cursor = end + 1;
    }
    return 0;
}

typedef struct show_arguments {
    const char *scene_path;
    const char *output;
    od_scene_options options;
    int json;
    int quiet;
} show_arguments;

/* Returns 0 to go on, 1 after --help, 2 on a usage error. */
static int parse_arguments(int argc, char **argv, show_arguments *arguments)
{
    memset(arguments, 0, sizeof *arguments);
    arguments->options = od_scene_options_default();
    for (int i = 0; i < argc; i++) {
        const char *argument = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0 ||
                          strcmp(argument, "--format") == 0 || strcmp(argument, "--scale") == 0 ||
                          strcmp(argument, "--up") == 0 || strcmp(argument, "--roi") == 0 ||
                          strcmp(argument, "--background") == 0;
        if (takes_value && value == NULL) {
            fprintf(stderr, "oddone show: %s needs a value; run \"oddone show --help\"\n", argument);
            return 2;
        }
        if (strcmp(argument, "-h") == 0 || strcmp(argument, "--help") == 0) {
            print_show_usage(stdout);
            return 1;
        } else if (strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0) {
            arguments->output = value;
        } else if (strcmp(argument, "--format") == 0) {
            od_error err;
            if (od_scene_format_parse(value, &arguments->options.format, &err) != 0) {
                fprintf(stderr, "oddone show: --format: %s\n", err.message);
                return 2;
            }
        } else if (strcmp(argument, "--scale") == 0) {
            if (parse_numbers("--scale", value, &arguments->options.scale, 1, "0.35") != 0)
                return 2;
            if (!(arguments->options.scale > 0.0)) {
                fprintf(stderr, "oddone show: --scale must be positive; got %s\n", value);
                return 2;
            }
        } else if (strcmp(argument, "--up") == 0) {
            if (parse_numbers("--up", value, arguments->options.up, 3, "0,0,1") != 0)
                return 2;
            arguments->options.has_up = 1;
        } else if (strcmp(argument, "--roi") == 0) {
            double roi[6];
            if (parse_numbers("--roi", value, roi, 6, "-0.5,-0.5,0,0.5,0.5,0.3") != 0)
                return 2;
            memcpy(arguments->options.roi_min, roi, sizeof arguments->options.roi_min);
            memcpy(arguments->options.roi_max, roi + 3, sizeof arguments->options.roi_max);
            arguments->options.has_roi = 1;
        } else if (strcmp(argument, "--background") == 0) {
            double color[3];
            if (parse_numbers("--background", value, color, 3, "0,0,0") != 0)
                return 2;
            for (int k = 0; k < 3; k++) {
                if (color[k] < 0.0 || color[k] > 1.0) {
                    fprintf(stderr, "oddone show: --background values must lie in [0, 1]; got %s\n", value);
                    return 2;
                }
                arguments->options.image_options.background[k] = (float)color[k];
            }
        } else if (strcmp(argument, "--keep-frame") == 0) {
            arguments->options.keep_frame = 1;
        } else if (strcmp(argument, "--json") == 0) {
            arguments->json = 1;
        } else if (strcmp(argument, "--quiet") == 0) {
            arguments->quiet = 1;
        } else if (argument[0] == '-' && argument[1] != '\0') {
            fprintf(stderr, "oddone show: unknown option %s; run \"oddone show --help\"\n", argument);
            return 2;
        } else if (arguments->scene_path == NULL) {
            arguments->scene_path = argument;
        } else {
            fprintf(stderr, "oddone show: more than one scene given (%s and %s)\n", arguments->scene_path, argument);
            return 2;
        }
        if (takes_value)
            i++;
    }
    if (arguments->scene_path == NULL || arguments->output == NULL) {
        fprintf(stderr, "oddone show: %s is missing; usage: oddone show SCENE -o DIR\n",
                arguments->scene_path == NULL ? "the scene" : "the output folder (-o DIR)");
        return 2;
    }
    return 0;
}

/* ---- summary ---------------------------------------------------------------------- */

/* Distance from the origin and elevation above the z = 0 plane, degrees. */
static void camera_position(const od_camera *camera, double center[3], double *distance, double *elevation)
{
    od_camera_center(camera, center);
    *distance = sqrt(center[0] * center[0] + center[1] * center[1] + center[2] * center[2]);
    *elevation = *distance > 0.0 ? asin(center[2] / *distance) * DEGREES_PER_RADIAN : 0.0;
}

static void print_summary(const od_scene *scene)
{
    printf("scene %s\n", scene->root);
    printf("format %s (%s)\n", od_scene_format_name(scene->format), scene->metadata_path);
    printf("frame: %s\n", scene->frame_note);
    printf("region of interest [%g, %g] x [%g, %g] x [%g, %g]\n", scene->roi_min[0], scene->roi_max[0],
           scene->roi_min[1], scene->roi_max[1], scene->roi_min[2], scene->roi_max[2]);

    double min_distance = INFINITY, max_distance = -INFINITY, min_elevation = INFINITY, max_elevation = -INFINITY;
    for (int v = 0; v < scene->view_count; v++) {
        double center[3], distance, elevation;
        camera_position(&scene->views[v].camera, center, &distance, &elevation);
        min_distance = fmin(min_distance, distance);
        max_distance = fmax(max_distance, distance);
        min_elevation = fmin(min_elevation, elevation);
        max_elevation = fmax(max_elevation, elevation);
    }
    printf("%d views; cameras %.3f to %.3f from the origin, %.1f to %.1f degrees above the floor plane\n",
           scene->view_count, min_distance, max_distance, min_elevation, max_elevation);
    printf("  view  name                          size        fx       fy       cx       cy    centre (x, y, z)"
           "            distance  elevation\n");
    for (int v = 0; v < scene->view_count; v++) {
        const od_scene_view *view = &scene->views[v];
        const od_camera *camera = &view->camera;
        double center[3], distance, elevation;
        camera_position(camera, center, &distance, &elevation);
        char size[32];
        snprintf(size, sizeof size, "%dx%d", camera->width, camera->height);
        printf("  %4d  %-28.28s  %-10s  %7.2f  %7.2f  %7.2f  %7.2f  (%7.3f, %7.3f, %7.3f)  %8.3f  %8.1f%s\n", v,
               view->name, size, camera->K[0], camera->K[4], camera->K[2], camera->K[5], center[0], center[1],
               center[2], distance, elevation, od_distortion_is_zero(&view->distortion) ? "" : "  (undistorted)");
    }

    if (!scene->has_ground_truth) {
        printf("no ground truth in this format\n");
        return;
    }
    int anomalous = 0;
    for (int o = 0; o < scene->object_count; o++)
        anomalous += scene->objects[o].label == OD_LABEL_ANOMALOUS;
    printf("%d objects, %d anomalous\n", scene->object_count, anomalous);
    for (int o = 0; o < scene->object_count; o++) {
        const od_scene_object *object = &scene->objects[o];
        const od_box *box = &object->box;
        printf("  %-14s %-9s %-10s centre (%.3f, %.3f, %.3f)  size (%.3f, %.3f, %.3f)  yaw %.1f deg%s\n",
               object->name, object->label == OD_LABEL_ANOMALOUS ? "anomalous" : "normal",
               object->label == OD_LABEL_ANOMALOUS ? object->anomaly_kind : "-", box->center[0], box->center[1],
               box->center[2], box->size[0], box->size[1], box->size[2], box->yaw * DEGREES_PER_RADIAN,
               object->truncated ? "  truncated" : "");
    }
}

static cJSON *vector_json(const double *values, int count)
{
    return cJSON_CreateDoubleArray(values, count);
}

static int print_summary_json(const od_scene *scene)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scene", scene->root);
    cJSON_AddStringToObject(root, "format", od_scene_format_name(scene->format));
    cJSON_AddStringToObject(root, "metadata", scene->metadata_path);
    cJSON_AddStringToObject(root, "frame", scene->frame_note);
    cJSON *roi = cJSON_AddObjectToObject(root, "region_of_interest");
    cJSON_AddItemToObject(roi, "min", vector_json(scene->roi_min, 3));
    cJSON_AddItemToObject(roi, "max", vector_json(scene->roi_max, 3));
    cJSON *views = cJSON_AddArrayToObject(root, "views");
    for (int v = 0; v < scene->view_count; v++) {
        const od_scene_view *view = &scene->views[v];
        double center[3], distance, elevation;
        camera_position(&view->camera, center, &distance, &elevation);
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", view->name);
        cJSON_AddStringToObject(item, "image", view->image_path);
        cJSON_AddNumberToObject(item, "width", view->camera.width);
        cJSON_AddNumberToObject(item, "height", view->camera.height);
        cJSON_AddItemToObject(item, "K", vector_json(view->camera.K, 9));
        cJSON_AddItemToObject(item, "world_to_camera", vector_json(view->camera.world_to_camera, 16));
        cJSON_AddItemToObject(item, "center", vector_json(center, 3));
        cJSON_AddNumberToObject(item, "distance", distance);
        cJSON_AddNumberToObject(item, "elevation_degrees", elevation);
        cJSON_AddBoolToObject(item, "undistorted", !od_distortion_is_zero(&view->distortion));
        cJSON_AddItemToArray(views, item);
    }
    if (scene->has_ground_truth) {
        cJSON *objects = cJSON_AddArrayToObject(root, "objects");
        for (int o = 0; o < scene->object_count; o++) {
            const od_scene_object *object = &scene->objects[o];
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "name", object->name);
            cJSON_AddStringToObject(item, "label", object->label == OD_LABEL_ANOMALOUS ? "anomalous" : "normal");
            cJSON_AddStringToObject(item, "anomaly_kind", object->anomaly_kind);
            cJSON_AddItemToObject(item, "center", vector_json(object->box.center, 3));
            cJSON_AddItemToObject(item, "size", vector_json(object->box.size, 3));
            cJSON_AddNumberToObject(item, "yaw_degrees", object->box.yaw * DEGREES_PER_RADIAN);
            cJSON_AddBoolToObject(item, "truncated", object->truncated);
            cJSON_AddItemToArray(objects, item);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL) {
        fprintf(stderr, "oddone show: out of memory printing the summary\n");
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* ---- pictures ------------------------------------------------------------------------ */

static int write_pictures(const od_scene *scene, const char *output, int quiet, od_error *err)
{
    char views_folder[4096];
    snprintf(views_folder, sizeof views_folder, "%s/views", output);
    if (od_make_folders(views_folder, err) != 0)
        return -1;

    int object_count = scene->object_count;
    od_overlay_box *boxes = calloc((size_t)(object_count > 0 ? object_count : 1), sizeof *boxes);
    char (*labels)[128] = calloc((size_t)(object_count > 0 ? object_count : 1), sizeof *labels);
    if (boxes == NULL || labels == NULL) {
        free(boxes);
        free(labels);
        return od_fail(err, "out of memory");
    }
    od_overlay_ground_truth(scene, boxes, labels);

    /* One view in memory at a time. The progress line rewrites itself on
     * a terminal only. */
    int progress = !quiet && isatty(fileno(stderr));
    int status = 0;
    for (int v = 0; v < scene->view_count && status == 0; v++) {
        od_image image;
        status = od_scene_read_view_image(scene, v, &image, err);
        if (status != 0)
            break;
        od_overlay_draw_roi(&image, &scene->views[v].camera, scene->roi_min, scene->roi_max);
        od_overlay_draw_boxes(&image, &scene->views[v].camera, boxes, object_count);
        char path[4200];
        snprintf(path, sizeof path, "%s/%04d.png", views_folder, v);
        status = od_image_write_png(path, &image, err);
        od_image_free(&image);
        if (progress)
            fprintf(stderr, "\rshow: view %d of %d", v + 1, scene->view_count);
    }
    if (progress)
        fprintf(stderr, "\n");
    if (status == 0) {
        od_image top;
        status = od_overlay_top_view(scene, boxes, object_count, TOP_VIEW_SIZE, &top, err);
        if (status == 0) {
            char path[4200];
            snprintf(path, sizeof path, "%s/top.png", output);
            status = od_image_write_png(path, &top, err);
            od_image_free(&top);
        }
    }
    free(boxes);
    free(labels);
    if (status == 0 && !quiet)
        fprintf(stderr, "show: wrote %d views to %s and the top view to %s/top.png\n", scene->view_count,
                views_folder, output);
    return status;
}

int od_cli_show(int argc, char **argv)
{
    show_arguments arguments;
    int parsed = parse_arguments(argc, argv, &arguments);
    if (parsed == 1)
        return 0;
    if (parsed != 0)
        return parsed;
    if (arguments.quiet || arguments.json)
        od_log_set_level(OD_LOG_WARN);
    if (arguments.quiet)
        od_log_set_level(OD_LOG_ERROR);

    od_scene *scene = NULL;
    od_error err;
    if (od_scene_load(arguments.scene_path, &arguments.options, &scene, &err) != 0) {
        fprintf(stderr, "oddone show: %s\n", err.message);
        return 1;
    }
    int status = 0;
    if (arguments.json)
        status = print_summary_json(scene);
    else if (!arguments.quiet)
        print_summary(scene);
    if (status == 0 && write_pictures(scene, arguments.output, arguments.quiet, &err) != 0) {
        fprintf(stderr, "oddone show: %s\n", err.message);
        status = -1;
    }
    od_scene_free(scene);
    return status == 0 ? 0 : 1;
}
