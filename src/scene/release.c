/* The ToysAD-8K / PartsAD-15K release format.
 *
 * A scene folder contains RGB/NNNN.png (view i is camera pose i, numbered
 * from 0000), segmentations/<object>/<object>_NNNN.png (one mask per object
 * and view; floor_object is the floor and no object), depth maps, and
 * scene3d.metadata.json with:
 * - camera.K: one 3x3 intrinsics matrix for every view, principal point
 *   measured from the image's top-left corner (Blender's convention);
 * - camera.poses[i].rotation: despite its key, the whole 4x4
 *   world-to-camera matrix in OpenCV axes;
 * - objects[i]: name, path (the .blend file the object came from),
 *   rotation_matrix (4x4 object-to-world, a rotation about z), location and
 *   bbox = [centre, size] with the size along the object's own axes.
 * An object is anomalous when the file name in its path holds a '-': the
 * text after that '-', up to the next '-' or '.', names the anomaly kind
 * ("banana_028-crack-001.blend" is a crack). World units are metres, z is
 * up and the floor is z = 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "scene/scene_internal.h"

/* An object whose own z axis leans more than this from the world's z
 * cannot be described by a yaw alone; the loader warns. In radians (1°). */
#define MAX_OBJECT_TILT 0.0175

/* Sets the object's label and anomaly kind from the file name in `path`. */
static int label_from_path(od_scene_object *object, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *backslash = strrchr(path, '\\');
    if (backslash != NULL && (slash == NULL || backslash > slash))
        slash = backslash;
    const char *file_name = slash != NULL ? slash + 1 : path;
    const char *dash = strchr(file_name, '-');
    if (dash == NULL) {
        object->label = OD_LABEL_NORMAL;
        return 0;
    }
    object->label = OD_LABEL_ANOMALOUS;
    const char *kind = dash + 1;
    size_t length = strcspn(kind, "-.");
    char *copy = length > 0 ? strndup(kind, length) : od_scene_strdup("unknown");
    if (copy == NULL)
        return -1;
    free(object->anomaly_kind);
    object->anomaly_kind = copy;
    return 0;
}

static int parse_intrinsics(const cJSON *camera, double K[9], const char *source, od_error *err)
{
    char what[512];
    snprintf(what, sizeof what, "%s: camera.K", source);
    if (od_json_matrix(cJSON_GetObjectItemCaseSensitive(camera, "K"), 3, 3, K, what, err) != 0)
        return -1;
    if (!(K[0] > 0.0) || !(K[4] > 0.0))
        return od_fail(err, "%s: focal lengths K[0][0] = %g and K[1][1] = %g; expected both positive", what, K[0],
                       K[4]);
    if (K[1] != 0.0 || K[3] != 0.0 || K[6] != 0.0 || K[7] != 0.0 || K[8] != 1.0)
        return od_fail(err, "%s: expected the pinhole form [fx 0 cx; 0 fy cy; 0 0 1]", what);
    return 0;
}

static int parse_poses(od_scene *scene, const cJSON *camera, const double K[9], const char *source, od_error *err)
{
    const cJSON *poses = cJSON_GetObjectItemCaseSensitive(camera, "poses");
    if (!cJSON_IsArray(poses))
        return od_fail(err, "%s: camera.poses is missing or not an array; expected one pose per view", source);
    int index = 0;
    const cJSON *pose;
    cJSON_ArrayForEach(pose, poses)
    {
        char what[512];
        snprintf(what, sizeof what, "%s: camera.poses[%d].rotation", source, index);
        double world_to_camera[16];
        if (od_json_matrix(cJSON_GetObjectItemCaseSensitive(pose, "rotation"), 4, 4, world_to_camera, what, err) !=
            0)
            return -1;
        double rotation[9];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                rotation[i * 3 + j] = world_to_camera[i * 4 + j];
        char why[256];
        if (od_rotation_check(rotation, why, (int)sizeof why) != 0)
            return od_fail(err, "%s: %s", what, why);
        const double *last = world_to_camera + 12;
        if (last[0] != 0.0 || last[1] != 0.0 || last[2] != 0.0 || last[3] != 1.0)
            return od_fail(err, "%s: last row (%g, %g, %g, %g); expected (0, 0, 0, 1)", what, last[0], last[1],
                           last[2], last[3]);

        char name[32];
        snprintf(name, sizeof name, "RGB/%04d.png", index);
        char *image_path = od_scene_join_path(scene->root, name);
        od_scene_view *view = image_path != NULL ? od_scene_add_view(scene, name, image_path) : NULL;
        free(image_path);
        if (view == NULL)
            return od_fail(err, "%s: out of memory", source);
        memcpy(view->camera.world_to_camera, world_to_camera, sizeof world_to_camera);
        view->stated.fx = K[0];
        view->stated.fy = K[4];
        view->stated.cx = K[2];
        view->stated.cy = K[5];
        index++;
    }
    return 0;
}

static int parse_object(od_scene *scene, const cJSON *item, int index, const char *source, od_error *err)
{
    char where[512];
    snprintf(where, sizeof where, "%s: objects[%d]", source, index);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        return od_fail(err, "%s: \"name\" is missing or not a string; expected the object's name", where);
    for (int o = 0; o < scene->object_count; o++)
        if (strcmp(scene->objects[o].name, name->valuestring) == 0)
            return od_fail(err, "%s: name \"%s\" repeats objects[%d]; expected unique names", where,
                           name->valuestring, o);
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(item, "path");
    if (path != NULL && !cJSON_IsString(path))
        return od_fail(err, "%s: \"path\" is not a string", where);
    const char *path_text = path != NULL ? path->valuestring : "";

    char what[600];
    snprintf(what, sizeof what, "%s (%s): rotation_matrix", where, name->valuestring);
    double object_to_world[16];
    if (od_json_matrix(cJSON_GetObjectItemCaseSensitive(item, "rotation_matrix"), 4, 4, object_to_world, what,
                       err) != 0)
        return -1;
    double rotation[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            rotation[i * 3 + j] = object_to_world[i * 4 + j];
    char why[256];
    if (od_rotation_check(rotation, why, (int)sizeof why) != 0)
        return od_fail(err, "%s: %s", what, why);
    double tilt = acos(fmin(1.0, fmax(-1.0, rotation[8])));
    if (tilt > MAX_OBJECT_TILT)
        od_log_warn("scene", "%s (%s): the object is tilted %.1f degrees from upright; its box keeps only the "
                             "rotation about z",
                    where, name->valuestring, tilt * 180.0 / 3.14159265358979323846);

    snprintf(what, sizeof what, "%s (%s): bbox", where, name->valuestring);
    double bbox[6];
    if (od_json_matrix(cJSON_GetObjectItemCaseSensitive(item, "bbox"), 2, 3, bbox, what, err) != 0)
        return -1;
    for (int k = 0; k < 3; k++)
        if (!(bbox[3 + k] > 0.0))
            return od_fail(err, "%s: size (%g, %g, %g); expected three positive extents", what, bbox[3], bbox[4],
                           bbox[5]);

    od_scene_object *object = od_scene_add_object(scene, name->valuestring, path_text);
    if (object == NULL || label_from_path(object, path_text) != 0)
        return od_fail(err, "%s: out of memory", source);
    /* NOTE: the release's scale field is 1 on the sample scene, so whether
     * bbox's size already includes it is unverified; it is used as is. */
    for (int k = 0; k < 3; k++) {
        object->box.center[k] = bbox[k];
        object->box.size[k] = bbox[3 + k];
    }
    object->box.yaw = atan2(rotation[3], rotation[0]);
    return 0;
}

int od_scene_parse_release_metadata(od_scene *scene, const char *text, size_t size, const char *source,
                                    od_error *err)
{
    cJSON *root = od_json_parse(text, size, source, err);
    if (root == NULL)
        return -1;
    int status = -1;
    double K[9];
    const cJSON *camera = cJSON_GetObjectItemCaseSensitive(root, "camera");
    const cJSON *objects = cJSON_GetObjectItemCaseSensitive(root, "objects");
    if (!cJSON_IsObject(root)) {
        od_fail(err, "%s: expected a JSON object at the top", source);
    } else if (!cJSON_IsObject(camera)) {
        od_fail(err, "%s: \"camera\" is missing or not an object; expected camera.K and camera.poses", source);
    } else if (parse_intrinsics(camera, K, source, err) == 0 && parse_poses(scene, camera, K, source, err) == 0) {
        status = 0;
        if (objects != NULL && !cJSON_IsArray(objects))
            status = od_fail(err, "%s: \"objects\" is not an array", source);
        scene->has_ground_truth = objects != NULL;
        int index = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, objects)
        {
            if (status != 0)
                break;
            status = parse_object(scene, item, index++, source, err);
        }
    }
    cJSON_Delete(root);
    return status;
}

/* Sets the per-object mask of every view that has one on disk. */
static int find_object_masks(od_scene *scene, od_error *err)
{
    for (int v = 0; v < scene->view_count && scene->object_count > 0; v++) {
        od_scene_view *view = &scene->views[v];
        view->object_mask_paths = calloc((size_t)scene->object_count, sizeof *view->object_mask_paths);
        if (view->object_mask_paths == NULL)
            return od_fail(err, "out of memory");
        for (int o = 0; o < scene->object_count; o++) {
            const char *name = scene->objects[o].name;
            size_t length = strlen(scene->root) + 2 * strlen(name) + 64;
            char *path = malloc(length);
            if (path == NULL)
                return od_fail(err, "out of memory");
            snprintf(path, length, "%s/segmentations/%s/%s_%04d.png", scene->root, name, name, v);
            if (od_scene_is_file(path))
                view->object_mask_paths[o] = path;
            else
                free(path);
        }
    }
    return 0;
}

int od_scene_load_release(od_scene *scene, od_error *err);

int od_scene_load_release(od_scene *scene, od_error *err)
{
    scene->metadata_path = od_scene_join_path(scene->root, "scene3d.metadata.json");
    if (scene->metadata_path == NULL)
        return od_fail(err, "out of memory");
    char *text = NULL;
    size_t size = 0;
    if (od_scene_read_text_file(scene->metadata_path, &text, &size, err) != 0)
        return -1;
    int status = od_scene_parse_release_metadata(scene, text, size, scene->metadata_path, err);
    free(text);
    if (status != 0)
        return -1;
    return find_object_masks(scene, err);
}
