/* The learned detector; see learned.h for the stages. */
#include "detect/learned.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "geometry/lift.h"
#include "model/localize.h"
#include "nn/render.h"
#include "nn/roi_pool.h"
#include "teacher/teacher.h"

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- building and cropping -------------------------------------------------------- */

int od_learned_build(const od_model_config *config, int64_t encoder_channels, int64_t max_objects,
                     od_params *params, od_volume_net **volume_net, od_matcher **matcher, od_error *err)
{
    od_volume_net_config volume_config = od_volume_net_config_from_model(config);
    volume_config.batch = 1;
    volume_config.in_channels = encoder_channels;
    od_volume_net *net = od_volume_net_new(&volume_config, params, "volume_net.", err);
    if (net == NULL)
        return od_fail_context(err, "volume network");
    od_matcher_config matcher_config = od_matcher_config_from_model(config, encoder_channels);
    matcher_config.max_objects = max_objects;
    od_matcher *match = od_matcher_new(&matcher_config, params, "matcher.", err);
    if (match == NULL) {
        od_volume_net_free(net);
        return od_fail_context(err, "matcher");
    }
    if (volume_net != NULL)
        *volume_net = net;
    else
        od_volume_net_free(net);
    if (matcher != NULL)
        *matcher = match;
    else
        od_matcher_free(match);
    return 0;
}

/* Copies a (count, cells, channels) block into channels [offset,
 * offset + channels) of crops whose cells have `width` channels. */
static void interleave(float *crops, int64_t width, int64_t offset, const float *block, int64_t cells,
                       int64_t channels)
{
    for (int64_t c = 0; c < cells; c++)
        memcpy(crops + c * width + offset, block + c * channels, (size_t)channels * sizeof(float));
}

int od_learned_crop(const od_model_config *config, const od_grid *grid, const float *trunk, const float *lifted,
                    int64_t lifted_channels, const float *features, const float *density, const od_box *boxes,
                    int64_t count, float *crops, float *mask, float *scratch, od_error *err)
{
    if (count < 1)
        return od_fail(err, "learned: cropping needs at least one box, got %lld", (long long)count);
    if (lifted_channels < 0 || (lifted_channels > 0 && lifted == NULL))
        return od_fail(err, "learned: %lld lifted channels without their volume", (long long)lifted_channels);
    int64_t voxels = od_grid_voxel_count(grid);
    od_box *padded = malloc((size_t)count * sizeof *padded);
    float *sigma = od_alloc_floats(voxels);
    if (padded == NULL || sigma == NULL) {
        free(padded);
        od_free(sigma);
        return od_fail(err, "learned: out of memory for the crops");
    }
    for (int64_t o = 0; o < count; o++)
        od_roi_box_pad_cubic(&boxes[o], config->crop_pad_voxels, grid, &padded[o]);
    od_render_density_activation(sigma, density, voxels);

    int n = (int)config->crop_cells;
    int64_t c0 = config->channels[0], e = lifted_channels, k = config->teacher_channels, cells = count * n * n * n;
    float threshold = (float)config->density_threshold;
    int status = od_roi_pool_forward(scratch, mask, trunk, sigma, threshold, 1, padded, count, grid, n, c0, err);
    if (status == 0) {
        interleave(crops, c0 + e + k, 0, scratch, cells, c0);
        if (e > 0)
            status = od_roi_pool_forward(scratch, NULL, lifted, sigma, threshold, 1, padded, count, grid, n, e, err);
    }
    if (status == 0 && e > 0)
        interleave(crops, c0 + e + k, c0, scratch, cells, e);
    if (status == 0)
        status = od_roi_pool_forward(scratch, NULL, features, sigma, threshold, 1, padded, count, grid, n, k, err);
    if (status == 0)
        interleave(crops, c0 + e + k, c0 + e, scratch, cells, k);
    free(padded);
    od_free(sigma);
    return status;
}

/* ---- the networks ------------------------------------------------------------------- */

struct od_learned_net {
    od_model_config config;
    od_grid grid;
    int64_t encoder_channels, max_objects;
    int64_t lifted; /* lifted encoder channels in each crop: encoder_channels with crop.lifted, else 0 */
    od_params *params;
    od_volume_net *volume_net;
    od_matcher *matcher;
    od_lift *lift;
    float *volume_in;   /* (D, H, W, encoder_channels) */
    float *crops;       /* (max_objects, n^3, c0 + k) */
    float *mask;        /* (max_objects, n^3) */
    float *scratch;     /* (max_objects, n^3, max(c0, k)) */
    double seconds_lift;
    od_localization *mask_objects; /* objects from the masks for the next finish, or NULL */
};

void od_learned_net_free(od_learned_net *net)
{
    if (net == NULL)
        return;
    od_volume_net_free(net->volume_net);
    od_matcher_free(net->matcher);
    od_params_free(net->params);
    od_lift_free(net->lift);
    od_free(net->volume_in);
    od_free(net->crops);
    od_free(net->mask);
    od_free(net->scratch);
    free(net);
}

od_learned_net *od_learned_net_open(const od_model_file *file, int64_t encoder_channels, od_error *err)
{
    if (file == NULL || encoder_channels < 1) {
        od_fail(err, "learned: opening the networks needs a model file and an encoder of at least 1 channel");
        return NULL;
    }
    od_learned_net *net = calloc(1, sizeof *net);
    if (net == NULL) {
        od_fail(err, "%s: out of memory", file->path);
        return NULL;
    }
    net->config = file->config;
    net->encoder_channels = encoder_channels;
    net->max_objects = OD_MATCHER_DEFAULT_MAX_OBJECTS;
    const od_model_config *config = &net->config;
    int status = od_grid_from_bounds(config->grid_min, config->grid_max, config->voxel_size, &net->grid, err);
    if (status == 0 && (net->params = od_params_new(err)) == NULL)
        status = -1;
    if (status == 0)
        status = od_learned_build(config, encoder_channels, net->max_objects, net->params, &net->volume_net,
                                  &net->matcher, err);
    if (status == 0)
        status = od_model_file_load_params(file, net->params, err);
    if (status != 0) {
        od_fail_context(err, "%s", file->path);
        od_learned_net_free(net);
        return NULL;
    }

    int64_t n3 = config->crop_cells * config->crop_cells * config->crop_cells;
    int64_t c0 = config->channels[0], k = config->teacher_channels;
    net->lifted = config->crop_lifted ? encoder_channels : 0;
    int64_t widest = c0 > k ? c0 : k;
    widest = widest > net->lifted ? widest : net->lifted;
    net->lift = od_lift_new(&net->grid, encoder_channels);
    net->volume_in = od_alloc_floats(od_grid_voxel_count(&net->grid) * encoder_channels);
    net->crops = od_alloc_floats(net->max_objects * n3 * (c0 + net->lifted + k));
    net->mask = od_alloc_floats(net->max_objects * n3);
    net->scratch = od_alloc_floats(net->max_objects * n3 * widest);
    if (net->lift == NULL || net->volume_in == NULL || net->crops == NULL || net->mask == NULL ||
        net->scratch == NULL) {
        od_fail(err, "%s: out of memory for the detector's buffers", file->path);
        od_learned_net_free(net);
        return NULL;
    }
    return net;
}

int64_t od_learned_net_max_objects(const od_learned_net *net) { return net->max_objects; }

void od_learned_net_clear(od_learned_net *net)
{
    od_lift_clear(net->lift);
    net->seconds_lift = 0.0;
}

int od_learned_net_add_view(od_learned_net *net, const od_camera *camera, int64_t input_size, const float *map,
                            int64_t height, int64_t width, int stride, od_error *err)
{
    if (camera == NULL || map == NULL || input_size < 1)
        return od_fail(err, "learned: a view needs its camera, its encoder map and an input size >= 1");
    double start = now_seconds();
    od_camera resized = *camera;
    od_camera_resize(&resized, (int)input_size, (int)input_size);
    int status = od_lift_add_view(net->lift, &resized, map, height, width, stride, err);
    net->seconds_lift += now_seconds() - start;
    return status;
}

/* Keeps the max_objects largest objects (ties: the lower index) and
 * renumbers them in their order; returns how many were dropped. */
static int keep_largest(od_localization *found, int64_t max_objects)
{
    int count = found->object_count;
    if (count <= max_objects)
        return 0;
    int32_t *renumber = malloc((size_t)count * sizeof *renumber);
    if (renumber == NULL)
        return -1;
    for (int o = 0; o < count; o++) {
        int larger = 0;
        for (int p = 0; p < count; p++)
            larger += found->voxel_counts[p] > found->voxel_counts[o] ||
                      (found->voxel_counts[p] == found->voxel_counts[o] && p < o);
        renumber[o] = larger < max_objects ? 0 : -1;
    }
    int kept = 0;
    for (int o = 0; o < count; o++) {
        if (renumber[o] < 0)
            continue;
        renumber[o] = kept;
        found->boxes[kept] = found->boxes[o];
        found->voxel_counts[kept] = found->voxel_counts[o];
        found->truncated[kept] = found->truncated[o];
        kept++;
    }
    for (int64_t q = 0; q < found->occupied_count; q++)
        if (found->labels[q] >= 0)
            found->labels[q] = renumber[found->labels[q]];
    free(renumber);
    found->object_count = kept;
    found->dropped_clusters += count - kept;
    return count - kept;
}

/* Moves the localization into the result and fills each object's box,
 * counts and view flags. */
static int fill_objects(const od_scene *scene, const int *views, int view_count, od_localization *found,
                        od_compare_result *result, od_error *err)
{
    int objects = found->object_count;
    size_t cells = (size_t)(objects > 0 ? objects * objects : 1);
    result->objects = calloc((size_t)(objects > 0 ? objects : 1), sizeof *result->objects);
    result->distance = calloc(cells, sizeof *result->distance);
    result->similarity = calloc(cells, sizeof *result->similarity);
    result->consensus = calloc((size_t)(objects > 0 ? objects : 1), 1);
    result->occupied_difference =
        malloc((size_t)(found->occupied_count > 0 ? found->occupied_count : 1) * sizeof *result->occupied_difference);
    if (result->objects == NULL || result->distance == NULL || result->similarity == NULL ||
        result->consensus == NULL || result->occupied_difference == NULL)
        return od_fail(err, "learned: out of memory");
    result->object_count = objects;
    result->dropped_clusters = found->dropped_clusters;
    result->floor_layer = found->floor_layer;
    result->occupied_count = found->occupied_count;
    result->occupied_voxels = found->voxels;
    result->occupied_object = found->labels;
    found->voxels = NULL;
    found->labels = NULL;
    for (int o = 0; o < objects; o++) {
        od_compare_object *object = &result->objects[o];
        object->box = found->boxes[o];
        object->voxel_count = found->voxel_counts[o];
        object->scored_voxels = found->voxel_counts[o];
        object->truncated = found->truncated[o];
        object->seen_by = calloc((size_t)view_count, 1);
        if (object->seen_by == NULL)
            return od_fail(err, "learned: out of memory");
        for (int i = 0; i < view_count; i++) {
            object->seen_by[i] = (uint8_t)od_camera_sees(&scene->views[views[i]].camera, object->box.center);
            object->view_count += object->seen_by[i];
        }
        object->few_views = object->view_count < 2;
    }
    return 0;
}

/* Crops every object and runs the matcher; fills scores, labels and each
 * voxel's difference (its object's score). */
static int score_objects(od_learned_net *net, od_compare_result *result, od_error *err)
{
    int objects = result->object_count;
    for (int64_t q = 0; q < result->occupied_count; q++)
        result->occupied_difference[q] = NAN;
    if (objects == 0)
        return 0;
    od_box *boxes = malloc((size_t)objects * sizeof *boxes);
    float *logits = malloc((size_t)objects * sizeof *logits);
    if (boxes == NULL || logits == NULL) {
        free(boxes);
        free(logits);
        return od_fail(err, "learned: out of memory");
    }
    for (int o = 0; o < objects; o++)
        boxes[o] = result->objects[o].box;
    int status = od_learned_crop(&net->config, &net->grid, od_volume_net_trunk(net->volume_net), net->volume_in,
                                 net->lifted, od_volume_net_features(net->volume_net),
                                 od_volume_net_density(net->volume_net), boxes, objects, net->crops, net->mask,
                                 net->scratch, err);
    if (status == 0)
        status = od_matcher_forward(net->matcher, net->crops, net->mask, objects, 0, logits, err);
    for (int o = 0; status == 0 && o < objects; o++) {
        od_compare_object *object = &result->objects[o];
        object->has_score = 1;
        object->score = 1.0 / (1.0 + exp(-(double)logits[o]));
        object->odd = object->score >= OD_LEARNED_ODD_SCORE;
    }
    for (int64_t q = 0; status == 0 && q < result->occupied_count; q++)
        if (result->occupied_object[q] >= 0)
            result->occupied_difference[q] = (float)result->objects[result->occupied_object[q]].score;
    free(boxes);
    free(logits);
    return status;
}

int od_learned_net_finish(od_learned_net *net, const od_scene *scene, const int *views, int view_count,
                          od_compare_result *result, od_error *err)
{
    if (result == NULL)
        return od_fail(err, "learned: no result to fill");
    memset(result, 0, sizeof *result);
    result->floor_layer = -1;
    if (net == NULL || scene == NULL || views == NULL || view_count < 1)
        return od_fail(err, "learned: detection needs the networks, a scene and at least one view");
    for (int i = 0; i < view_count; i++)
        if (views[i] < 0 || views[i] >= scene->view_count)
            return od_fail(err, "learned: view index %d is out of range; the scene has views 0 to %d", views[i],
                           scene->view_count - 1);
    if (od_lift_view_count(net->lift) == 0)
        return od_fail(err, "learned: no view was lifted before detection");

    double start = now_seconds();
    result->views = malloc((size_t)view_count * sizeof *result->views);
    if (result->views == NULL)
        return od_fail(err, "learned: out of memory");
    memcpy(result->views, views, (size_t)view_count * sizeof *views);
    result->view_count = view_count;
    result->grid = net->grid;
    result->occupancy = OD_COMPARE_OCCUPANCY_AUTO;

    int status = od_lift_finish(net->lift, net->volume_in, NULL, err);
    double t_volume = now_seconds();
    result->seconds_lift = net->seconds_lift + (t_volume - start);
    if (status == 0)
        status = od_volume_net_forward(net->volume_net, net->volume_in, 0, err);
    double t_localize = now_seconds();
    result->seconds_hull = t_localize - t_volume;

    od_localization found = {0};
    if (status == 0 && net->mask_objects != NULL) {
        found = *net->mask_objects; /* taken over: the caller's copy is emptied */
        memset(net->mask_objects, 0, sizeof *net->mask_objects);
    } else if (status == 0) {
        od_localize_options options = od_localize_options_default(net->config.density_threshold);
        status = od_localize(od_volume_net_density(net->volume_net), &net->grid, &options, &found, err);
    }
    net->mask_objects = NULL;
    int dropped = status == 0 ? keep_largest(&found, net->max_objects) : 0;
    if (dropped < 0)
        status = od_fail(err, "learned: out of memory");
    if (status == 0)
        status = fill_objects(scene, views, view_count, &found, result, err);
    double t_score = now_seconds();
    result->seconds_cluster = t_score - t_localize;
    if (status == 0)
        status = score_objects(net, result, err);
    result->seconds_score = now_seconds() - t_score;
    od_localization_free(&found);
    if (status != 0) {
        od_compare_result_free(result);
        return -1;
    }

    if (result->occupied_count == 0)
        snprintf(result->note, sizeof result->note, "no voxel's density reaches the threshold %g",
                 net->config.density_threshold);
    else if (result->object_count == 0)
        snprintf(result->note, sizeof result->note, "the occupied voxels form no DBSCAN cluster");
    else if (dropped > 0)
        snprintf(result->note, sizeof result->note,
                 "%d smaller objects were dropped: the matcher scores at most %lld objects", dropped,
                 (long long)net->max_objects);
    result->seconds_total = now_seconds() - start;
    return 0;
}

/* ---- with the encoder ----------------------------------------------------------------- */

struct od_learned_model {
    od_model_file *file;
    od_teacher *encoder;
    od_learned_net *net;
    float *map;
    od_learned_boxes boxes;
};

int od_learned_set_boxes(od_learned_model *model, od_learned_boxes boxes, od_error *err)
{
    if (boxes != OD_LEARNED_BOXES_DENSITY && boxes != OD_LEARNED_BOXES_MASKS)
        return od_fail(err, "learned: unknown box source %d", (int)boxes);
    model->boxes = boxes;
    return 0;
}

od_learned_boxes od_learned_get_boxes(const od_learned_model *model)
{
    return model->boxes;
}

const char *od_learned_boxes_name(od_learned_boxes boxes)
{
    return boxes == OD_LEARNED_BOXES_MASKS ? "masks" : "density";
}

int od_learned_boxes_parse(const char *name, od_learned_boxes *out)
{
    if (name != NULL && strcmp(name, "density") == 0)
        *out = OD_LEARNED_BOXES_DENSITY;
    else if (name != NULL && strcmp(name, "masks") == 0)
        *out = OD_LEARNED_BOXES_MASKS;
    else
        return -1;
    return 0;
}

/* Finds the objects as compare does from the views' masks (visual hull,
 * DBSCAN, boxes) on the model's grid, into *found. Colour features keep
 * the call cheap: only its occupancy and boxes are used. */
static int localize_from_masks(const od_learned_model *model, const od_scene *scene, const int *views,
                               int view_count, od_localization *found, od_error *err)
{
    memset(found, 0, sizeof *found);
    for (int i = 0; i < view_count; i++)
        if (!od_scene_view_has_mask(scene, views[i]))
            return od_fail(err,
                           "%s: view %d (%s) has no object mask, and this model takes its boxes from the masks; "
                           "run --method compare (colour occupancy without masks) or --boxes density",
                           scene->root, views[i], scene->views[views[i]].name);
    od_compare_options options = od_compare_options_default();
    options.features = OD_COMPARE_FEATURES_COLOR;
    options.occupancy = OD_COMPARE_OCCUPANCY_MASKS;
    options.grid = model->net->grid;
    od_compare_result hull;
    if (od_compare_detect(scene, views, view_count, &options, &hull, err) != 0)
        return od_fail_context(err, "boxes from masks");
    int objects = hull.object_count;
    found->boxes = malloc((size_t)(objects > 0 ? objects : 1) * sizeof *found->boxes);
    found->voxel_counts = malloc((size_t)(objects > 0 ? objects : 1) * sizeof *found->voxel_counts);
    found->truncated = malloc((size_t)(objects > 0 ? objects : 1));
    if (found->boxes == NULL || found->voxel_counts == NULL || found->truncated == NULL) {
        od_compare_result_free(&hull);
        od_localization_free(found);
        return od_fail(err, "learned: out of memory");
    }
    found->object_count = objects;
    for (int o = 0; o < objects; o++) {
        found->boxes[o] = hull.objects[o].box;
        found->voxel_counts[o] = hull.objects[o].voxel_count;
        found->truncated[o] = (uint8_t)hull.objects[o].truncated;
    }
    found->occupied_count = hull.occupied_count;
    found->voxels = hull.occupied_voxels;
    found->labels = hull.occupied_object;
    hull.occupied_voxels = NULL;
    hull.occupied_object = NULL;
    found->dropped_clusters = hull.dropped_clusters;
    found->floor_layer = -1;
    od_compare_result_free(&hull);
    return 0;
}

int od_learned_set_density_threshold(od_learned_model *model, double threshold, od_error *err)
{
    if (!(threshold > 0.0 && isfinite(threshold)))
        return od_fail(err, "learned: density threshold %g is not a finite value > 0", threshold);
    model->net->config.density_threshold = threshold;
    return 0;
}

double od_learned_density_threshold(const od_learned_model *model)
{
    return model->net->config.density_threshold;
}

void od_learned_free(od_learned_model *model)
{
    if (model == NULL)
        return;
    od_learned_net_free(model->net);
    od_teacher_free(model->encoder);
    od_model_file_close(model->file);
    od_free(model->map);
    free(model);
}

od_learned_model *od_learned_open(const char *model_path, const char *encoder_weights, od_error *err)
{
    od_learned_model *model = calloc(1, sizeof *model);
    if (model == NULL) {
        od_fail(err, "learned: out of memory");
        return NULL;
    }
    model->file = od_model_file_open(model_path, err);
    if (model->file == NULL) {
        od_learned_free(model);
        return NULL;
    }
    model->boxes = model->file->config.boxes_from_masks ? OD_LEARNED_BOXES_MASKS : OD_LEARNED_BOXES_DENSITY;
    const od_model_encoder *encoder = &model->file->encoder;
    od_teacher_network network;
    if (od_teacher_network_parse(encoder->network, &network, err) != 0 ||
        (model->encoder = od_teacher_open(network, encoder_weights, encoder->layer, encoder->input_size, err)) ==
            NULL) {
        od_fail_context(err, "%s: encoder %s %s", model_path, encoder->network, encoder->layer);
        od_learned_free(model);
        return NULL;
    }
    od_teacher_info info = od_teacher_get_info(model->encoder);
    if (info.input_size % info.stride != 0) {
        od_fail(err, "%s: encoder %s %s at input %lld has stride %lld, but lifting needs an input size that is a "
                     "multiple of the stride",
                model_path, encoder->network, encoder->layer, (long long)info.input_size, (long long)info.stride);
        od_learned_free(model);
        return NULL;
    }
    model->net = od_learned_net_open(model->file, info.channels, err);
    model->map = od_alloc_floats(info.height * info.width * info.channels);
    if (model->net == NULL || model->map == NULL) {
        if (model->net != NULL)
            od_fail(err, "%s: out of memory for the encoder map", model_path);
        od_learned_free(model);
        return NULL;
    }
    return model;
}

const od_model_file *od_learned_model_file(const od_learned_model *model) { return model->file; }

int od_learned_detect(od_learned_model *model, const od_scene *scene, const int *views, int view_count,
                      od_compare_result *result, od_error *err)
{
    if (result == NULL)
        return od_fail(err, "learned: no result to fill");
    memset(result, 0, sizeof *result);
    if (model == NULL || scene == NULL || views == NULL || view_count < 1)
        return od_fail(err, "learned: detection needs a model, a scene and at least one view");
    for (int i = 0; i < view_count; i++)
        if (views[i] < 0 || views[i] >= scene->view_count)
            return od_fail(err, "learned: view index %d is out of range; the scene has views 0 to %d", views[i],
                           scene->view_count - 1);

    double start = now_seconds(), seconds_features = 0.0;
    od_teacher_info info = od_teacher_get_info(model->encoder);
    od_learned_net_clear(model->net);
    for (int i = 0; i < view_count; i++) {
        int v = views[i];
        od_image image = {0};
        double t0 = now_seconds();
        int status = od_scene_read_view_image(scene, v, &image, err);
        if (status == 0)
            status = od_teacher_run(model->encoder, &image, model->map, err);
        od_image_free(&image);
        seconds_features += now_seconds() - t0;
        if (status == 0)
            status = od_learned_net_add_view(model->net, &scene->views[v].camera, info.input_size, model->map,
                                             info.height, info.width, (int)info.stride, err);
        if (status != 0)
            return od_fail_context(err, "view %d (%s)", v, scene->views[v].name);
    }
    od_localization mask_objects = {0};
    if (model->boxes == OD_LEARNED_BOXES_MASKS) {
        if (localize_from_masks(model, scene, views, view_count, &mask_objects, err) != 0)
            return -1;
        model->net->mask_objects = &mask_objects;
    }
    int finished = od_learned_net_finish(model->net, scene, views, view_count, result, err);
    od_localization_free(&mask_objects);
    if (finished != 0)
        return -1;

    result->seconds_features = seconds_features;
    result->feature_height = (int)info.height;
    result->feature_width = (int)info.width;
    result->feature_channels = (int)info.channels;
    result->stride = (int)info.stride;
    result->input_size = (int)info.input_size;
    snprintf(result->feature_source, sizeof result->feature_source, "%s", info.network_name);
    snprintf(result->feature_layer, sizeof result->feature_layer, "%s", info.layer);
    result->seconds_total = now_seconds() - start;
    od_log_info("learned", "%d objects from %d views in %.3f s", result->object_count, view_count,
                result->seconds_total);
    return 0;
}
