/* Scene generation in the release format. See generate.h. */
#include "synth/generate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "geometry/camera.h"
#include "io/atomic_file.h"
#include "io/folder.h"
#include "io/image.h"
#include "synth/anomaly.h"
#include "synth/depth_png.h"
#include "synth/pose.h"
#include "synth/raster.h"

#define PI 3.14159265358979323846
#define MAX_OBJECTS 12
/* Attempts at placing all instances, and at finding each camera that shows every instance. */
#define PLACEMENT_ATTEMPTS 2000
#define CAMERA_ATTEMPTS 100
/* The status generate_attempt returns when the anomaly failed its own quality check. */
#define ANOMALY_REJECTED (-2)
/* Attempts at a scene whose anomaly is visible enough. */
#define MAX_SCENE_ATTEMPTS 8
/* Room for an object's path in the metadata ("<shape>_000-<kind>-001.obj"). */
#define OBJECT_PATH_SIZE 160

od_synth_scene_options od_synth_scene_options_default(void)
{
    od_synth_scene_options o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    o.object_count = 5;
    o.view_count = 20;
    o.image_size = 256;
    o.supersample = 2;
    o.anomalous = 1;
    o.anomaly = OD_SYNTH_ANOMALY_BUMP;
    o.object_size = 0.1;
    o.placement_radius = 0.3;
    o.min_gap = 0.02;
    o.camera_distance[0] = 0.79;
    o.camera_distance[1] = 0.86;
    o.camera_elevation[0] = 25;
    o.camera_elevation[1] = 32;
    o.focal = 213.3333;
    o.min_anomaly_pixels = 20;
    o.pose = OD_SYNTH_POSE_UPRIGHT;
    return o;
}

/* ---- meshes ---------------------------------------------------------------------- */

static float *copy_floats(const float *source, int64_t count, int *failed)
{
    if (!source)
        return NULL;
    float *copy = malloc((size_t)count * sizeof(float) + 1);
    if (!copy) {
        *failed = 1;
        return NULL;
    }
    memcpy(copy, source, (size_t)count * sizeof(float));
    return copy;
}

int od_mesh_copy(const od_mesh *mesh, od_mesh *out, od_error *err)
{
    if (od_mesh_new(mesh->vertex_count, mesh->face_count, 0, 0, 0, out, err) != 0)
        return -1;
    int failed = 0;
    memcpy(out->positions, mesh->positions, (size_t)mesh->vertex_count * 3 * sizeof(float));
    memcpy(out->faces, mesh->faces, (size_t)mesh->face_count * 3 * sizeof(int32_t));
    memcpy(out->face_materials, mesh->face_materials, (size_t)mesh->face_count * sizeof(int32_t));
    memcpy(out->face_parts, mesh->face_parts, (size_t)mesh->face_count * sizeof(int32_t));
    out->normals = copy_floats(mesh->normals, mesh->vertex_count * 3, &failed);
    out->uvs = copy_floats(mesh->uvs, mesh->vertex_count * 2, &failed);
    out->colors = copy_floats(mesh->colors, mesh->vertex_count * 3, &failed);
    free(out->part_names[0]);
    free(out->part_names);
    out->part_count = 0;
    out->part_names = calloc((size_t)mesh->part_count + 1, sizeof(char *));
    if (!out->part_names)
        failed = 1;
    for (int i = 0; !failed && i < mesh->part_count; i++) {
        out->part_names[i] = strdup(mesh->part_names[i]);
        failed |= out->part_names[i] == NULL;
        out->part_count = i + 1;
    }
    out->materials = calloc((size_t)mesh->material_count + 1, sizeof(od_mesh_material));
    if (!out->materials)
        failed = 1;
    for (int i = 0; !failed && i < mesh->material_count; i++) {
        const od_mesh_material *m = &mesh->materials[i];
        od_mesh_material *c = &out->materials[i];
        out->material_count = i + 1;
        c->name = strdup(m->name);
        memcpy(c->diffuse, m->diffuse, sizeof c->diffuse);
        c->texture_path = m->texture_path ? strdup(m->texture_path) : NULL;
        failed |= !c->name || (m->texture_path && !c->texture_path);
        if (!failed && m->texture.pixels) {
            if (od_image_new(m->texture.width, m->texture.height, m->texture.channels, &c->texture, err) != 0)
                failed = 1;
            else
                memcpy(c->texture.pixels, m->texture.pixels,
                       (size_t)m->texture.width * m->texture.height * m->texture.channels * sizeof(float));
        }
    }
    if (failed) {
        od_mesh_free(out);
        return od_fail(err, "mesh copy: out of memory for %lld vertices", (long long)mesh->vertex_count);
    }
    return 0;
}

int od_synth_bump(const od_mesh *mesh, float rng_value, float height, float sigma, od_mesh *out, od_error *err)
{
    if (mesh->vertex_count == 0)
        return od_fail(err, "bump: the mesh has no vertices");
    if (!(sigma > 0) || !isfinite(height))
        return od_fail(err, "bump: invalid sigma %g or height %g (expected sigma > 0, finite height)", (double)sigma,
                       (double)height);
    if (od_mesh_copy(mesh, out, err) != 0)
        return -1;
    int64_t centre_vertex = (int64_t)(rng_value * (float)mesh->vertex_count);
    if (centre_vertex < 0 || centre_vertex >= mesh->vertex_count)
        centre_vertex = 0;
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    const float *c = mesh->positions + centre_vertex * 3;
    for (int64_t v = 0; v < mesh->vertex_count; v++) {
        const float *p = mesh->positions + v * 3;
        float d2 = 0;
        for (int k = 0; k < 3; k++)
            d2 += (p[k] - c[k]) * (p[k] - c[k]);
        if (d2 > 9 * sigma * sigma)
            continue;
        float direction[3];
        if (mesh->normals) {
            memcpy(direction, mesh->normals + v * 3, sizeof direction);
        } else {
            for (int k = 0; k < 3; k++)
                direction[k] = p[k] - 0.5f * (min[k] + max[k]);
        }
        float length = sqrtf(direction[0] * direction[0] + direction[1] * direction[1] + direction[2] * direction[2]);
        if (!(length > 0))
            continue;
        float offset = height * expf(-d2 / (2 * sigma * sigma)) / length;
        for (int k = 0; k < 3; k++)
            out->positions[v * 3 + k] = p[k] + offset * direction[k];
    }
    /* The old normals would shade the bump as if it were flat. */
    if (out->normals && od_mesh_compute_normals(out, err) != 0) {
        od_mesh_free(out);
        return -1;
    }
    return 0;
}

const char *od_synth_anomaly_name(od_synth_anomaly kind)
{
    switch (kind) {
    case OD_SYNTH_ANOMALY_BUMP:
        return "bump";
    case OD_SYNTH_ANOMALY_MATERIAL:
        return "material";
    case OD_SYNTH_ANOMALY_BEND:
        return "bend";
    case OD_SYNTH_ANOMALY_TWIST:
        return "twist";
    case OD_SYNTH_ANOMALY_FRACTURE:
        return "fracture";
    case OD_SYNTH_ANOMALY_CRACK:
        return "crack";
    case OD_SYNTH_ANOMALY_PART_MISSING:
        return "missing";
    case OD_SYNTH_ANOMALY_TRANSLATED:
        return "translated";
    case OD_SYNTH_ANOMALY_ROTATED:
        return "rotated";
    default:
        return "random";
    }
}

int od_synth_anomaly_parse(const char *name, od_synth_anomaly *kind)
{
    for (int k = OD_SYNTH_ANOMALY_RANDOM; k <= OD_SYNTH_ANOMALY_LAST; k++)
        if (name && strcmp(name, od_synth_anomaly_name((od_synth_anomaly)k)) == 0) {
            *kind = (od_synth_anomaly)k;
            return 0;
        }
    return -1;
}

static void rotate_channels(float rgb[3])
{
    float r = rgb[0], g = rgb[1], b = rgb[2];
    rgb[0] = b;
    rgb[1] = r;
    rgb[2] = g;
}

int od_synth_swap_material(const od_mesh *mesh, od_mesh *out, od_error *err)
{
    if (od_mesh_copy(mesh, out, err) != 0)
        return -1;
    for (int64_t v = 0; out->colors && v < out->vertex_count; v++)
        rotate_channels(out->colors + v * 3);
    for (int i = 0; i < out->material_count; i++)
        rotate_channels(out->materials[i].diffuse);
    return 0;
}

/* ---- placement and cameras ----------------------------------------------------- */

typedef struct instance {
    const od_mesh *mesh;
    float min[3], max[3]; /* bounds in the mesh's frame */
    double x, y, yaw;
    double radius; /* of the bounding circle about the mesh's origin, in the xy plane */
} instance;

static double uniform(od_rng *rng, double low, double high)
{
    return low + (high - low) * (double)od_rng_uniform(rng);
}

static int place_instances(instance *objects, int count, const od_synth_scene_options *o, od_rng *rng,
                           od_error *err)
{
    for (int attempt = 0; attempt < PLACEMENT_ATTEMPTS; attempt++) {
        int placed = 0;
        for (int i = 0; i < count; i++) {
            double r = o->placement_radius * sqrt((double)od_rng_uniform(rng));
            double angle = uniform(rng, 0, 2 * PI);
            objects[i].x = r * cos(angle);
            objects[i].y = r * sin(angle);
            objects[i].yaw = uniform(rng, -PI, PI);
            int clear = 1;
            for (int j = 0; j < i && clear; j++) {
                double dx = objects[i].x - objects[j].x, dy = objects[i].y - objects[j].y;
                clear = sqrt(dx * dx + dy * dy) >= objects[i].radius + objects[j].radius + o->min_gap;
            }
            if (!clear)
                break;
            placed++;
        }
        if (placed == count)
            return 0;
    }
    return od_fail(err, "generate: could not place %d instances of %.3f m within %.3f m of the origin with a gap "
                        "of %.3f m in %d attempts; use fewer or smaller objects or a larger placement radius",
                   count, o->object_size, o->placement_radius, o->min_gap, PLACEMENT_ATTEMPTS);
}

/* Writes the object-to-world transform that rests the instance on the floor. */
static void instance_pose(const instance *object, double model_to_world[16])
{
    double translation[3] = {object->x, object->y, -object->min[2]};
    od_raster_pose(1.0, object->yaw, translation, model_to_world);
}

static void look_at_camera(const double eye[3], const double target[3], int size, double focal, od_camera *camera)
{
    memset(camera, 0, sizeof *camera);
    camera->width = camera->height = size;
    double K[9] = {focal, 0, (size - 1) / 2.0, 0, focal, (size - 1) / 2.0, 0, 0, 1};
    memcpy(camera->K, K, sizeof K);
    od_camera_look_at(camera, eye, target);
}

/* ---- files ---------------------------------------------------------------------- */

static cJSON *json_matrix(const double *values, int rows, int cols)
{
    cJSON *matrix = cJSON_CreateArray();
    for (int i = 0; matrix && i < rows; i++) {
        cJSON *row = cJSON_CreateDoubleArray(values + i * cols, cols);
        if (!row || !cJSON_AddItemToArray(matrix, row)) {
            cJSON_Delete(row);
            cJSON_Delete(matrix);
            return NULL;
        }
    }
    return matrix;
}

static int write_metadata(const char *out_dir, const od_camera *cameras, int view_count, const instance *objects,
                          int object_count, char (*paths)[OBJECT_PATH_SIZE], const char *shape_name,
                          const od_synth_scene_options *o, od_error *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *camera = cJSON_AddObjectToObject(root, "camera");
    /* The release measures the principal point from the top-left corner. */
    double K[9];
    memcpy(K, cameras[0].K, sizeof K);
    K[2] += 0.5;
    K[5] += 0.5;
    cJSON_AddItemToObject(camera, "K", json_matrix(K, 3, 3));
    cJSON *poses = cJSON_AddArrayToObject(camera, "poses");
    for (int v = 0; v < view_count; v++) {
        cJSON *pose = cJSON_CreateObject();
        cJSON_AddItemToObject(pose, "rotation", json_matrix(cameras[v].world_to_camera, 4, 4));
        cJSON_AddItemToArray(poses, pose);
    }
    cJSON *items = cJSON_AddArrayToObject(root, "objects");
    for (int i = 0; i < object_count; i++) {
        const instance *object = &objects[i];
        char name[32];
        if (i == 0)
            snprintf(name, sizeof name, "object");
        else
            snprintf(name, sizeof name, "object.%03d", i);
        const char *path = paths[i];
        double model_to_world[16];
        instance_pose(object, model_to_world);
        double local_centre[3], centre[3], size[3];
        for (int k = 0; k < 3; k++) {
            local_centre[k] = 0.5 * ((double)object->min[k] + object->max[k]);
            size[k] = (double)object->max[k] - object->min[k];
        }
        for (int k = 0; k < 3; k++)
            centre[k] = model_to_world[k * 4] * local_centre[0] + model_to_world[k * 4 + 1] * local_centre[1] +
                        model_to_world[k * 4 + 2] * local_centre[2] + model_to_world[k * 4 + 3];
        double rotation[16];
        od_raster_pose(1.0, object->yaw, centre, rotation);
        double bbox[6] = {centre[0], centre[1], centre[2], size[0], size[1], size[2]};
        double scale[3] = {1, 1, 1};
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", name);
        cJSON_AddStringToObject(item, "path", path);
        cJSON_AddItemToObject(item, "rotation_matrix", json_matrix(rotation, 4, 4));
        cJSON_AddItemToObject(item, "location", cJSON_CreateDoubleArray(centre, 3));
        cJSON_AddItemToObject(item, "scale", cJSON_CreateDoubleArray(scale, 3));
        cJSON_AddItemToObject(item, "bbox", json_matrix(bbox, 2, 3));
        cJSON_AddItemToArray(items, item);
    }
    cJSON *scene = cJSON_AddObjectToObject(root, "scene");
    cJSON_AddStringToObject(scene, "generator", "oddone generate");
    cJSON_AddNumberToObject(scene, "seed", (double)o->seed);
    cJSON_AddStringToObject(scene, "shape", shape_name);
    cJSON_AddStringToObject(scene, "pose", o->pose == OD_SYNTH_POSE_DRAWN   ? "drawn"
                                           : o->pose == OD_SYNTH_POSE_AS_IS ? "as is"
                                                                            : "upright");
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return od_fail(err, "generate: out of memory for the scene metadata");
    size_t length = strlen(out_dir) + 64;
    char *path = malloc(length);
    if (!path) {
        cJSON_free(text);
        return od_fail(err, "generate: out of memory");
    }
    snprintf(path, length, "%s/scene3d.metadata.json", out_dir);
    /* Written last and synced, so its presence means the views before it are on disk. */
    od_atomic_file file;
    int rc = od_atomic_open(&file, path, err);
    if (rc == 0 && fputs(text, file.stream) == EOF) {
        od_atomic_abort(&file);
        rc = od_fail(err, "generate: cannot write %s (%s)", path, strerror(errno));
    } else if (rc == 0) {
        rc = od_atomic_commit(&file, err);
    }
    cJSON_free(text);
    free(path);
    return rc;
}

static int write_view(const char *out_dir, int view, const od_raster_frame *frame, int object_count, od_image *mask,
                      od_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/RGB/%04d.png", out_dir, view);
    if (od_image_write_png(path, &frame->rgb, err) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/depth_png/%04d.png", out_dir, view);
    if (od_write_png16(path, frame->depth, frame->width, frame->height, err) != 0)
        return -1;
    for (int i = 0; i < object_count; i++) {
        char name[32];
        if (i == 0)
            snprintf(name, sizeof name, "object");
        else
            snprintf(name, sizeof name, "object.%03d", i);
        int64_t pixels = (int64_t)frame->width * frame->height;
        for (int64_t p = 0; p < pixels; p++)
            mask->pixels[p] = frame->object_ids[p] == i + 1 ? 1.0f : 0.0f;
        snprintf(path, sizeof path, "%s/segmentations/%s/%s_%04d.png", out_dir, name, name, view);
        if (od_image_write_png(path, mask, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- the scene ------------------------------------------------------------------- */

static int validate_options(const od_synth_scene_options *o, const od_mesh *shape, od_error *err)
{
    if (o->object_count < 2 || o->object_count > MAX_OBJECTS)
        return od_fail(err, "generate: invalid object count %d (expected 2 to %d)", o->object_count, MAX_OBJECTS);
    if (o->view_count < 1 || o->view_count > 1000)
        return od_fail(err, "generate: invalid view count %d (expected 1 to 1000)", o->view_count);
    if (o->image_size < 16 || o->image_size > 4096)
        return od_fail(err, "generate: invalid image size %d (expected 16 to 4096 pixels)", o->image_size);
    if (o->supersample < 1 || o->supersample > 4)
        return od_fail(err, "generate: invalid supersample %d (expected 1 to 4)", o->supersample);
    if (!(o->object_size > 0) || !(o->placement_radius >= 0) || !(o->min_gap >= 0) || !(o->focal > 0))
        return od_fail(err, "generate: invalid object size %g, placement radius %g, gap %g or focal length %g "
                            "(expected positive sizes and focal length)",
                       o->object_size, o->placement_radius, o->min_gap, o->focal);
    if (!(o->camera_distance[0] > 0) || !(o->camera_distance[1] >= o->camera_distance[0]) ||
        !(o->camera_elevation[0] > 0) || !(o->camera_elevation[1] >= o->camera_elevation[0]) ||
        !(o->camera_elevation[1] < 90))
        return od_fail(err, "generate: invalid camera distance [%g, %g] m or elevation [%g, %g] degrees (expected "
                            "0 < low <= high, elevations below 90)",
                       o->camera_distance[0], o->camera_distance[1], o->camera_elevation[0], o->camera_elevation[1]);
    if (o->anomaly < OD_SYNTH_ANOMALY_RANDOM || o->anomaly > OD_SYNTH_ANOMALY_LAST)
        return od_fail(err, "generate: invalid anomaly kind %d", (int)o->anomaly);
    if (o->pose < OD_SYNTH_POSE_UPRIGHT || o->pose > OD_SYNTH_POSE_AS_IS)
        return od_fail(err, "generate: invalid pose mode %d (expected upright, drawn or as is)", (int)o->pose);
    if (o->min_anomaly_pixels < 0)
        return od_fail(err, "generate: invalid minimum anomaly pixel count %d (expected >= 0)", o->min_anomaly_pixels);
    if (!shape || shape->face_count == 0)
        return od_fail(err, "generate: the shape has no faces");
    return 0;
}

/* Draws an anomaly kind uniformly: the part kinds (missing, translated, rotated, last in the enum) only
 * where the shape has two or more parts. */
static od_synth_anomaly draw_kind(const od_mesh *shape, od_rng *rng)
{
    int kinds = OD_SYNTH_ANOMALY_LAST;
    od_error ignored;
    if (od_synth_part_count(shape, &ignored) < 2)
        kinds = OD_SYNTH_ANOMALY_PART_MISSING - 1;
    return (od_synth_anomaly)(OD_SYNTH_ANOMALY_BUMP + (int)od_rng_below(rng, (uint64_t)kinds));
}

/* Writes the RGB of a hue (turns), saturation and value. */
static void hsv_to_rgb(double hue, double saturation, double value, float rgb[3])
{
    static const double offsets[3] = {5, 3, 1};
    hue -= floor(hue);
    for (int c = 0; c < 3; c++) {
        /* The hue's position against each channel's ramp, in sixths of a turn. */
        double k = fmod(6 * hue + offsets[c], 6.0);
        double ramp = fmin(fmax(fmin(k, 4 - k), 0), 1);
        rgb[c] = (float)(value * (1 - saturation * ramp));
    }
}

/* Draws a scene's looks: the floor's pattern (checks, wood-like stripes, noise or plain), colours and
 * scale, a background that brightens from the horizon up, the light's direction, colour and strength,
 * and the colour of objects whose meshes have none. */
static void draw_looks(od_rng *rng, od_raster_options *raster, float object_color[3])
{
    raster->floor_pattern = (int)od_rng_below(rng, 4);
    double hue = uniform(rng, 0, 1), saturation = uniform(rng, 0, 0.35), value = uniform(rng, 0.45, 0.85);
    hsv_to_rgb(hue, saturation, value, raster->floor_color);
    hsv_to_rgb(hue + uniform(rng, -0.05, 0.05), saturation, value - uniform(rng, 0.1, 0.3), raster->floor_color2);
    static const double scales[4][2] = {{0.03, 0.1}, {0.05, 0.05}, {0.03, 0.08}, {0.08, 0.25}};
    raster->floor_check_size = (float)uniform(rng, scales[raster->floor_pattern][0], scales[raster->floor_pattern][1]);
    raster->floor_angle = (float)uniform(rng, 0, PI);
    double sky = uniform(rng, 0, 1);
    hsv_to_rgb(sky, uniform(rng, 0, 0.2), uniform(rng, 0.5, 0.85), raster->background);
    hsv_to_rgb(sky, uniform(rng, 0.1, 0.4), uniform(rng, 0.7, 1.0), raster->background_top);
    double azimuth = uniform(rng, 0, 2 * PI), elevation = uniform(rng, 35, 75) * PI / 180;
    raster->light_direction[0] = (float)(cos(elevation) * cos(azimuth));
    raster->light_direction[1] = (float)(cos(elevation) * sin(azimuth));
    raster->light_direction[2] = (float)sin(elevation);
    double strength = uniform(rng, 0.8, 1.2);
    hsv_to_rgb(uniform(rng, 0.05, 0.6), uniform(rng, 0, 0.15), strength, raster->light_color);
    raster->ambient = (float)uniform(rng, 0.2, 0.4);
    raster->specular = (float)uniform(rng, 0.15, 0.4);
    raster->shininess = (float)uniform(rng, 16, 64);
    hsv_to_rgb(uniform(rng, 0, 1), uniform(rng, 0.45, 0.8), uniform(rng, 0.65, 0.9), object_color);
}

/* Drops the mesh from `start` (NULL for its own orientation) and turns it
 * into its rest pose in place. After a drawn start the drawn yaw is
 * replaced by the mesh's main horizontal axis along x. */
static int rest_mesh(od_mesh *mesh, const double *start, double rotation[9], od_error *err)
{
    od_synth_rest rest;
    if (od_synth_rest_pose(mesh, start, &rest, err) != 0)
        return -1;
    od_synth_rotate_mesh(mesh, rest.rotation);
    if (rotation)
        memcpy(rotation, rest.rotation, sizeof rest.rotation);
    if (start) {
        double yaw[9];
        od_synth_yaw_alignment(mesh, yaw);
        od_synth_rotate_mesh(mesh, yaw);
    }
    return 0;
}

/* Counts the pixels of the anomalous region: marked in the view with the
 * anomalous instance or in the same view with the normal version in its
 * place. */
static int64_t anomaly_pixels(const od_raster_frame *odd, const od_raster_frame *normal)
{
    int64_t count = 0, pixels = (int64_t)odd->width * odd->height;
    for (int64_t p = 0; p < pixels; p++)
        count += odd->marks[p] | normal->marks[p];
    return count;
}

/* Writes an object's path as the release marks it: "<shape>_000.obj", or
 * "<shape>_000-<kind>-001.obj" for an anomalous one (kind not NULL). */
static void object_path(char path[OBJECT_PATH_SIZE], const char *shape_name, const char *kind)
{
    if (kind)
        snprintf(path, OBJECT_PATH_SIZE, "%s_%03d-%s-001.obj", shape_name, 0, kind);
    else
        snprintf(path, OBJECT_PATH_SIZE, "%s_%03d.obj", shape_name, 0);
}

/* Copies a shape's name for paths, with '-' and folder separators made '_'. */
static void clean_shape_name(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s", name && name[0] ? name : "shape");
    for (char *c = out; *c; c++)
        if (*c == '-' || *c == '/' || *c == '\\')
            *c = '_';
}

/* What one candidate scene gave. */
typedef struct attempt_result {
    int64_t visible;        /* maximum over views of the anomalous region's pixels, 0 when all normal */
    int redrawn;            /* the anomaly function's own redraws */
    od_synth_anomaly kind;  /* the kind drawn, RANDOM when all normal */
} attempt_result;

/* Generates one candidate scene from o->seed into out_dir and fills
 * *result. With specs (not NULL), object i is specs[i]'s shape, labelled
 * by specs[i].anomaly, and `shape` and the options' anomaly are not used. */
static int generate_attempt(const od_synth_scene_options *options, const od_mesh *shape, const char *name,
                            const od_synth_object_spec *specs, const char *out_dir, attempt_result *result,
                            od_error *err)
{
    od_synth_scene_options o = *options;
    memset(result, 0, sizeof *result);
    /* The views' files are synced once, before the metadata, not one by one. */
    int sync_each = od_atomic_set_sync(0);
    uint8_t *odd_marks = NULL, *normal_marks = NULL;
    od_mesh normal_in_place = {0};
    od_raster_frame reference = {0};
    od_rng rng;
    od_rng_seed(&rng, o.seed);
    od_mesh normal = {0}, odd = {0};
    od_mesh mixed[MAX_OBJECTS] = {{0}};
    char paths[MAX_OBJECTS][OBJECT_PATH_SIZE];
    od_synth_anomaly_info info = {0};
    od_rasterizer *rasterizer = NULL;
    od_raster_frame frame = {0};
    od_image mask = {0};
    od_camera *cameras = NULL;
    int rc = -1;
    for (int i = 0; specs && i < o.object_count; i++) {
        if (od_mesh_copy(specs[i].mesh, &mixed[i], err) != 0 ||
            od_mesh_normalize(&mixed[i], (float)o.object_size, err) != 0)
            goto done;
        char shape_name[64];
        clean_shape_name(shape_name, sizeof shape_name, specs[i].shape_name);
        object_path(paths[i], shape_name, specs[i].anomaly);
    }
    if (!specs && od_mesh_copy(shape, &normal, err) != 0)
        goto done;
    if (!specs && od_mesh_normalize(&normal, (float)o.object_size, err) != 0)
        goto done;
    if (o.pose != OD_SYNTH_POSE_AS_IS) {
        /* The start orientation draws from its own stream, so the other draws do not depend on the mode. */
        od_rng pose_rng = od_rng_fork(&rng, 0x706f7365);
        double start[9];
        od_synth_random_rotation(&pose_rng, start);
        if (!specs && (rest_mesh(&normal, o.pose == OD_SYNTH_POSE_DRAWN ? start : NULL, NULL, err) != 0 ||
                       od_mesh_normalize(&normal, (float)o.object_size, err) != 0))
            goto done;
        /* Mixed shapes each rest from the same start, so copies of one shape rest alike. */
        for (int i = 0; specs && i < o.object_count; i++)
            if (rest_mesh(&mixed[i], o.pose == OD_SYNTH_POSE_DRAWN ? start : NULL, NULL, err) != 0 ||
                od_mesh_normalize(&mixed[i], (float)o.object_size, err) != 0)
                goto done;
    }
    int anomalous_index = -1;
    od_synth_anomaly kind = o.anomaly;
    if (o.anomalous && !specs) {
        anomalous_index = (int)od_rng_below(&rng, (uint64_t)o.object_count);
        if (kind == OD_SYNTH_ANOMALY_RANDOM)
            kind = draw_kind(&normal, &rng);
        float where = od_rng_uniform(&rng);
        /* The geometric kinds draw from their own stream, so that placement and cameras do not depend
         * on how many draws they take. A failed quality check rejects the candidate. */
        od_rng anomaly_rng = od_rng_fork(&rng, 0x616e6f6d);
        int (*geometric)(const od_mesh *, od_rng *, od_mesh *, od_synth_anomaly_info *, od_error *) = NULL;
        if (kind == OD_SYNTH_ANOMALY_BEND)
            geometric = od_synth_bend;
        else if (kind == OD_SYNTH_ANOMALY_TWIST)
            geometric = od_synth_twist;
        else if (kind == OD_SYNTH_ANOMALY_FRACTURE)
            geometric = od_synth_fracture;
        else if (kind == OD_SYNTH_ANOMALY_CRACK)
            geometric = od_synth_crack;
        else if (kind == OD_SYNTH_ANOMALY_PART_MISSING)
            geometric = od_synth_remove_part;
        else if (kind == OD_SYNTH_ANOMALY_TRANSLATED)
            geometric = od_synth_translate_part;
        else if (kind == OD_SYNTH_ANOMALY_ROTATED)
            geometric = od_synth_rotate_part;
        result->kind = kind;
        if (geometric && geometric(&normal, &anomaly_rng, &odd, &info, err) != 0) {
            result->redrawn = OD_SYNTH_ANOMALY_TRIES;
            rc = ANOMALY_REJECTED;
            goto done;
        }
        result->redrawn = info.rejected;
        /* A bump of 15 % of the object's size over a patch of about a quarter of it. */
        if (kind == OD_SYNTH_ANOMALY_BUMP && od_synth_bump(&normal, where, (float)(0.15 * o.object_size),
                                                           (float)(0.12 * o.object_size), &odd, err) != 0)
            goto done;
        if (kind == OD_SYNTH_ANOMALY_MATERIAL && od_synth_swap_material(&normal, &odd, err) != 0)
            goto done;
        /* The anomalous region: the faces of each version off the other's surface, by 1.5 % of the
         * size, or every face for a material swap. */
        odd_marks = malloc((size_t)odd.face_count + 1);
        normal_marks = calloc((size_t)normal.face_count + 1, 1);
        if (!odd_marks || !normal_marks) {
            od_fail(err, "generate: out of memory for the anomaly's marks");
            goto done;
        }
        if (kind == OD_SYNTH_ANOMALY_MATERIAL) {
            memset(odd_marks, 1, (size_t)odd.face_count);
        } else {
            float tolerance = (float)(0.015 * o.object_size);
            if (od_synth_surface_difference(&odd, &normal, tolerance, odd_marks, NULL, err) != 0 ||
                od_synth_surface_difference(&normal, &odd, tolerance, normal_marks, NULL, err) != 0)
                goto done;
        }
        /* The altered version rests on its own shape; the normal version it is compared with takes the
         * same turn. */
        double turn[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        if (o.pose != OD_SYNTH_POSE_AS_IS && rest_mesh(&odd, NULL, turn, err) != 0)
            goto done;
        if (od_mesh_copy(&normal, &normal_in_place, err) != 0)
            goto done;
        od_synth_rotate_mesh(&normal_in_place, turn);
    }

    for (int i = 0; !specs && i < o.object_count; i++)
        object_path(paths[i], name, i == anomalous_index ? od_synth_anomaly_name(kind) : NULL);

    instance objects[MAX_OBJECTS];
    double largest_radius = 0;
    for (int i = 0; i < o.object_count; i++) {
        instance *object = &objects[i];
        if (specs)
            object->mesh = &mixed[i];
        else
            object->mesh = i == anomalous_index ? &odd : &normal;
        od_mesh_bounds(object->mesh, object->min, object->max);
        double rx = fmax(fabs(object->min[0]), fabs(object->max[0]));
        double ry = fmax(fabs(object->min[1]), fabs(object->max[1]));
        object->radius = sqrt(rx * rx + ry * ry);
        largest_radius = fmax(largest_radius, object->radius);
    }
    /* Mixed shapes share one footprint, so the layout does not depend on which shape each slot gets. */
    for (int i = 0; specs && i < o.object_count; i++)
        objects[i].radius = largest_radius;
    if (place_instances(objects, o.object_count, &o, &rng, err) != 0)
        goto done;

    /* Floor, background, light and the objects' colour vary per scene, from their own stream. */
    od_raster_options raster = od_raster_options_default();
    raster.supersample = o.supersample;
    float object_color[3];
    od_rng look_rng = od_rng_fork(&rng, 0x6c6f6f6b);
    draw_looks(&look_rng, &raster, object_color);

    od_raster_object render_objects[MAX_OBJECTS];
    for (int i = 0; i < o.object_count; i++) {
        render_objects[i].mesh = objects[i].mesh;
        instance_pose(&objects[i], render_objects[i].model_to_world);
        memcpy(render_objects[i].color, object_color, sizeof object_color);
        render_objects[i].face_marks = i == anomalous_index ? odd_marks : NULL;
        if (i == anomalous_index && kind == OD_SYNTH_ANOMALY_MATERIAL)
            rotate_channels(render_objects[i].color);
    }

    cameras = calloc((size_t)o.view_count, sizeof *cameras);
    rasterizer = od_rasterizer_new();
    if (!cameras || !rasterizer) {
        od_fail(err, "generate: out of memory");
        goto done;
    }
    if (od_make_folders(out_dir, err) != 0)
        goto done;
    char folder[4096];
    /* A rejected candidate's metadata goes first, so it is never left beside this candidate's views. */
    snprintf(folder, sizeof folder, "%s/scene3d.metadata.json", out_dir);
    if (remove(folder) != 0 && errno != ENOENT) {
        od_fail(err, "generate: cannot remove %s (%s)", folder, strerror(errno));
        goto done;
    }
    snprintf(folder, sizeof folder, "%s/RGB", out_dir);
    if (od_make_folders(folder, err) != 0)
        goto done;
    snprintf(folder, sizeof folder, "%s/depth_png", out_dir);
    if (od_make_folders(folder, err) != 0)
        goto done;
    snprintf(folder, sizeof folder, "%s/segmentations", out_dir);
    if (od_make_folders(folder, err) != 0)
        goto done;
    for (int i = 0; i < o.object_count; i++) {
        if (i == 0)
            snprintf(folder, sizeof folder, "%s/segmentations/object", out_dir);
        else
            snprintf(folder, sizeof folder, "%s/segmentations/object.%03d", out_dir, i);
        if (od_make_folders(folder, err) != 0)
            goto done;
    }
    if (od_image_new(o.image_size, o.image_size, 1, &mask, err) != 0)
        goto done;

    double target[3] = {0, 0, 0.3 * o.object_size};
    for (int v = 0; v < o.view_count; v++) {
        int found = 0;
        for (int attempt = 0; attempt < CAMERA_ATTEMPTS && !found; attempt++) {
            double azimuth = uniform(&rng, 0, 2 * PI);
            double elevation = uniform(&rng, o.camera_elevation[0], o.camera_elevation[1]) * PI / 180;
            double distance = uniform(&rng, o.camera_distance[0], o.camera_distance[1]);
            double eye[3] = {target[0] + distance * cos(elevation) * cos(azimuth),
                             target[1] + distance * cos(elevation) * sin(azimuth),
                             target[2] + distance * sin(elevation)};
            look_at_camera(eye, target, o.image_size, o.focal, &cameras[v]);
            if (od_rasterizer_render(rasterizer, &cameras[v], render_objects, o.object_count, &raster, &frame, err) !=
                0)
                goto done;
            /* Every instance must show at least a few pixels. */
            int counts[MAX_OBJECTS + 1] = {0};
            for (int64_t p = 0; p < (int64_t)frame.width * frame.height; p++)
                counts[frame.object_ids[p]]++;
            found = 1;
            for (int i = 0; i < o.object_count; i++)
                found &= counts[i + 1] >= 4;
        }
        if (!found) {
            od_fail(err, "generate: view %d: no camera among %d tries sees every instance; widen the camera "
                         "distance or shrink the placement radius",
                    v, CAMERA_ATTEMPTS);
            goto done;
        }
        if (anomalous_index >= 0) {
            /* The same view with the normal version in the anomalous instance's place. */
            od_raster_object swapped = render_objects[anomalous_index];
            render_objects[anomalous_index].mesh = &normal_in_place;
            render_objects[anomalous_index].face_marks = normal_marks;
            memcpy(render_objects[anomalous_index].color, render_objects[(anomalous_index + 1) % o.object_count].color,
                   sizeof swapped.color);
            int status = od_rasterizer_render(rasterizer, &cameras[v], render_objects, o.object_count, &raster,
                                              &reference, err);
            render_objects[anomalous_index] = swapped;
            if (status != 0)
                goto done;
            int64_t pixels = anomaly_pixels(&frame, &reference);
            if (pixels > result->visible)
                result->visible = pixels;
        }
        if (write_view(out_dir, v, &frame, o.object_count, &mask, err) != 0)
            goto done;
    }
    /* One sync for the scene's views, then the metadata, synced on its own. */
    od_atomic_set_sync(sync_each);
    if (od_atomic_sync_folder(out_dir, err) != 0)
        goto done;
    rc = write_metadata(out_dir, cameras, o.view_count, objects, o.object_count, paths, name, &o, err);

done:
    od_image_free(&mask);
    od_raster_frame_free(&reference);
    od_raster_frame_free(&frame);
    od_rasterizer_free(rasterizer);
    free(cameras);
    od_mesh_free(&normal);
    od_mesh_free(&odd);
    for (int i = 0; i < MAX_OBJECTS; i++)
        od_mesh_free(&mixed[i]);
    od_mesh_free(&normal_in_place);
    free(odd_marks);
    free(normal_marks);
    od_atomic_set_sync(sync_each);
    return rc;
}

int od_synth_generate_scene(const od_synth_scene_options *options, const od_mesh *shape, const char *shape_name,
                            const char *out_dir, od_synth_scene_stats *stats, od_error *err)
{
    od_synth_scene_options o = options ? *options : od_synth_scene_options_default();
    if (validate_options(&o, shape, err) != 0)
        return -1;
    char name[64];
    clean_shape_name(name, sizeof name, shape_name);
    od_synth_scene_stats local = {0};
    stats = stats ? stats : &local;
    memset(stats, 0, sizeof *stats);

    /* A scene whose anomaly shows in too few pixels is generated again from
     * a seed derived from the first; the files of a rejected attempt are
     * overwritten, because every attempt writes the same names. */
    od_rng base;
    od_rng_seed(&base, o.seed);
    uint64_t seed = o.seed;
    /* A random kind is drawn once from the scene's seed and kept for the first half of the candidates, so a
     * kind that is often rejected (a crack hidden under the object) still gets its share of scenes. The
     * later candidates draw a kind each, so a shape that no candidate of that kind suits still gets one. */
    od_synth_anomaly scene_kind = o.anomaly;
    if (o.anomalous && o.anomaly == OD_SYNTH_ANOMALY_RANDOM) {
        od_rng kind_rng = od_rng_fork(&base, 0x6b696e64);
        scene_kind = draw_kind(shape, &kind_rng);
    }
    for (int attempt = 0; attempt < MAX_SCENE_ATTEMPTS; attempt++) {
        od_synth_scene_options attempt_options = o;
        attempt_options.seed = seed;
        if (attempt < MAX_SCENE_ATTEMPTS / 2)
            attempt_options.anomaly = scene_kind;
        attempt_result result;
        int status = generate_attempt(&attempt_options, shape, name, NULL, out_dir, &result, err);
        int64_t visible = result.visible;
        if (status != 0 && status != ANOMALY_REJECTED)
            return -1;
        stats->anomaly_pixels = visible;
        stats->seed = seed;
        stats->kind = result.kind;
        stats->redrawn += result.redrawn;
        if (status == 0 && (!o.anomalous || visible >= o.min_anomaly_pixels))
            return 0;
        if (status == ANOMALY_REJECTED && attempt == MAX_SCENE_ATTEMPTS - 1) {
            /* err contains the message of the anomaly's own check. */
            char reason[sizeof err->message];
            snprintf(reason, sizeof reason, "%s", err->message);
            return od_fail(err, "generate: the %s anomaly failed its check in all %d attempts: %s",
                           od_synth_anomaly_name(o.anomaly), MAX_SCENE_ATTEMPTS, reason);
        }
        stats->rejected++;
        if (status == ANOMALY_REJECTED)
            stats->rejected_check++;
        else
            stats->rejected_hidden++;
        od_rng next = od_rng_fork(&base, (uint64_t)attempt + 1);
        seed = od_rng_next_u64(&next);
    }
    return od_fail(err, "generate: the anomaly showed in fewer than %d pixels of every view in %d attempts; "
                        "lower the threshold or enlarge the anomaly",
                   o.min_anomaly_pixels, MAX_SCENE_ATTEMPTS);
}

int od_synth_generate_mixed_scene(const od_synth_scene_options *options, const od_synth_object_spec *objects,
                                  int object_count, const char *out_dir, od_error *err)
{
    od_synth_scene_options o = options ? *options : od_synth_scene_options_default();
    o.object_count = object_count;
    o.anomalous = 0;
    o.anomaly = OD_SYNTH_ANOMALY_RANDOM;
    if (!objects)
        return od_fail(err, "generate: no object specs given");
    if (validate_options(&o, objects[0].mesh, err) != 0)
        return -1;
    /* The metadata's "shape" lists the distinct shape names in order of first use. */
    char names[256] = "";
    for (int i = 0; i < object_count; i++) {
        if (!objects[i].mesh || objects[i].mesh->face_count == 0)
            return od_fail(err, "generate: object %d: the shape has no faces", i);
        char name[64];
        clean_shape_name(name, sizeof name, objects[i].shape_name);
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            char other[64];
            clean_shape_name(other, sizeof other, objects[j].shape_name);
            seen = strcmp(name, other) == 0;
        }
        if (!seen && strlen(names) + strlen(name) + 2 < sizeof names) {
            if (names[0])
                strcat(names, "+");
            strcat(names, name);
        }
    }
    attempt_result result;
    return generate_attempt(&o, NULL, names, objects, out_dir, &result, err) == 0 ? 0 : -1;
}
