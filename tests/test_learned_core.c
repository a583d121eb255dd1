/* The learned detector without its encoder: a tiny random model on the
 * example scene's cameras with random encoder maps. Checks shapes, the
 * result's consistency, determinism and clean errors, not accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "detect/learned.h"
#include "learned_tiny_model.h"
#include "oddone.h"
#include "scene/scene.h"
#include "testlib.h"

#define MAP_SIDE 8
#define MAP_COUNT (MAP_SIDE * MAP_SIDE * TINY_ENCODER_CHANNELS)

static od_scene *load_example(void)
{
    od_scene *scene = NULL;
    od_error err = {{0}};
    if (od_scene_load(od_test_source_path("examples/torus-bump"), NULL, &scene, &err) != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(scene != NULL);
    return scene;
}

static const char *write_model(const char *name, float density_bias)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", od_test_temp_dir(), name);
    od_error err = {{0}};
    int status = tiny_model_write(path, 11, density_bias, NULL, &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);
    return path;
}

/* Lifts random maps (seeded by the view index) for the views and runs the
 * rest of the detector. */
static int run_views(od_learned_net *net, const od_scene *scene, const int *views, int count,
                     od_compare_result *result, od_error *err)
{
    static float map[MAP_COUNT];
    od_learned_net_clear(net);
    for (int i = 0; i < count; i++) {
        od_rng rng;
        od_rng_seed(&rng, 100 + (uint64_t)views[i]);
        for (int e = 0; e < MAP_COUNT; e++)
            map[e] = od_rng_uniform(&rng);
        if (od_learned_net_add_view(net, &scene->views[views[i]].camera, 32, map, MAP_SIDE, MAP_SIDE, 4, err) != 0)
            return -1;
    }
    return od_learned_net_finish(net, scene, views, count, result, err);
}

/* The invariants that every result satisfies. */
static void check_consistent(const od_compare_result *result, int view_count, int64_t max_objects)
{
    OD_CHECK(result->view_count == view_count);
    OD_CHECK(result->object_count >= 0 && result->object_count <= max_objects);
    OD_CHECK(result->grid.dims[0] == 32 && result->grid.dims[1] == 32 && result->grid.dims[2] == 8);
    for (int o = 0; o < result->object_count; o++) {
        const od_compare_object *object = &result->objects[o];
        OD_CHECK(object->has_score);
        OD_CHECK(object->score > 0.0 && object->score < 1.0);
        OD_CHECK(object->odd == (object->score >= 0.5));
        OD_CHECK(object->box.size[0] > 0.0 && object->box.size[2] > 0.0);
        OD_CHECK(fabs(object->box.center[2] - 0.5 * object->box.size[2]) < 1e-9);
        OD_CHECK(object->voxel_count > 0);
    }
    int64_t labelled = 0;
    for (int64_t q = 0; q < result->occupied_count; q++) {
        int32_t label = result->occupied_object[q];
        OD_CHECK(label >= -1 && label < result->object_count);
        if (label >= 0) {
            labelled++;
            OD_CHECK(result->occupied_difference[q] == (float)result->objects[label].score);
        } else {
            OD_CHECK(isnan(result->occupied_difference[q]));
        }
    }
    int64_t counted = 0;
    for (int o = 0; o < result->object_count; o++)
        counted += result->objects[o].voxel_count;
    OD_CHECK(labelled == counted);
}

static void test_learned_random_model(void)
{
    od_scene *scene = load_example();
    if (scene == NULL)
        return;
    const char *path = write_model("random.safetensors", NAN);
    od_error err = {{0}};
    od_model_file *file = od_model_file_open(path, &err);
    OD_CHECK(file != NULL);
    od_learned_net *net = file != NULL ? od_learned_net_open(file, TINY_ENCODER_CHANNELS, &err) : NULL;
    if (net == NULL) {
        fprintf(stderr, "%s\n", err.message);
        OD_CHECK(net != NULL);
        od_model_file_close(file);
        od_scene_free(scene);
        return;
    }
    int views[5] = {0, 4, 8, 12, 16};
    int view_count = scene->view_count < 5 ? scene->view_count : 5;
    for (int i = 0; i < view_count; i++)
        views[i] = i * scene->view_count / view_count;
    od_compare_result first, second;
    int status = run_views(net, scene, views, view_count, &first, &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);
    OD_CHECK(run_views(net, scene, views, view_count, &second, &err) == 0);
    check_consistent(&first, view_count, od_learned_net_max_objects(net));
    OD_CHECK(first.object_count == second.object_count);
    OD_CHECK(first.occupied_count == second.occupied_count);
    for (int o = 0; o < first.object_count && o < second.object_count; o++) {
        OD_CHECK(first.objects[o].score == second.objects[o].score);
        OD_CHECK(memcmp(&first.objects[o].box, &second.objects[o].box, sizeof(od_box)) == 0);
    }
    od_compare_result_free(&first);
    od_compare_result_free(&second);
    od_learned_net_free(net);
    od_model_file_close(file);
    od_scene_free(scene);
}

/* A density bias of 20 makes every voxel dense: the bottom layer is taken
 * as the floor and the rest is one object that the grid cuts. */
static void test_learned_dense_volume(void)
{
    od_scene *scene = load_example();
    if (scene == NULL)
        return;
    const char *path = write_model("dense.safetensors", 20.0f);
    od_error err = {{0}};
    od_model_file *file = od_model_file_open(path, &err);
    od_learned_net *net = file != NULL ? od_learned_net_open(file, TINY_ENCODER_CHANNELS, &err) : NULL;
    OD_CHECK(net != NULL);
    if (net != NULL) {
        int views[2] = {0, 1};
        od_compare_result result;
        int status = run_views(net, scene, views, 2, &result, &err);
        if (status != 0)
            fprintf(stderr, "%s\n", err.message);
        OD_CHECK(status == 0);
        OD_CHECK(result.floor_layer == 0);
        OD_CHECK(result.occupied_count == 32 * 32 * 7);
        OD_CHECK(result.object_count == 1);
        if (result.object_count == 1) {
            OD_CHECK(result.objects[0].truncated == 1);
            OD_CHECK(result.objects[0].voxel_count == 32 * 32 * 7);
        }
        check_consistent(&result, 2, od_learned_net_max_objects(net));
        od_compare_result_free(&result);
    }
    od_learned_net_free(net);
    od_model_file_close(file);
    od_scene_free(scene);
}

/* Crops carry the trunk in the first channels, then lifted_channels of
 * lifted encoder features, then the feature head, and cells outside the
 * dense region are masked and zero. */
static void check_crop_layout(int64_t lifted_channels)
{
    od_model_config config;
    od_error err = {{0}};
    OD_CHECK(od_model_config_parse(tiny_config_text, strlen(tiny_config_text), "tiny", &config, &err) == 0);
    od_grid grid;
    OD_CHECK(od_grid_from_bounds(config.grid_min, config.grid_max, config.voxel_size, &grid, &err) == 0);
    int64_t voxels = od_grid_voxel_count(&grid), c0 = config.channels[0], k = config.teacher_channels;
    int64_t e = lifted_channels, width = c0 + e + k;
    float *trunk = malloc((size_t)(voxels * c0) * sizeof(float));
    float *lifted = malloc((size_t)(voxels * (e > 0 ? e : 1)) * sizeof(float));
    float *features = malloc((size_t)(voxels * k) * sizeof(float));
    float *density = malloc((size_t)voxels * sizeof(float));
    for (int64_t v = 0; v < voxels; v++) {
        for (int64_t c = 0; c < c0; c++)
            trunk[v * c0 + c] = 1.0f + (float)c;
        for (int64_t c = 0; c < e; c++)
            lifted[v * e + c] = 100.0f + (float)c;
        for (int64_t c = 0; c < k; c++)
            features[v * k + c] = -1.0f - (float)c;
        density[v] = -20.0f;
    }
    /* A dense 3 x 3 x 3 block around the box centre. */
    for (int z = 1; z < 4; z++)
        for (int y = 15; y < 18; y++)
            for (int x = 15; x < 18; x++)
                density[od_grid_index(&grid, x, y, z)] = 20.0f;
    od_box box = {.center = {0.02, 0.02, 0.1}, .size = {0.12, 0.12, 0.12}, .yaw = 0.0};
    int64_t n3 = config.crop_cells * config.crop_cells * config.crop_cells;
    int64_t widest = c0 > k ? c0 : k;
    widest = widest > e ? widest : e;
    float *crops = calloc((size_t)(n3 * width), sizeof(float));
    float *mask = calloc((size_t)n3, sizeof(float));
    float *scratch = calloc((size_t)(n3 * widest), sizeof(float));
    const float *lifted_in = e > 0 ? lifted : NULL;
    int status = od_learned_crop(&config, &grid, trunk, lifted_in, e, features, density, &box, 1, crops, mask, scratch,
                                 &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);
    int full = 0, empty_zero = 1, full_values = 1;
    for (int64_t cell = 0; cell < n3; cell++) {
        const float *crop = crops + cell * width;
        if (mask[cell] == 1.0f) {
            full++;
            for (int64_t c = 0; c < c0; c++)
                full_values &= fabsf(crop[c] - (1.0f + (float)c)) < 1e-5f;
            for (int64_t c = 0; c < e; c++)
                full_values &= fabsf(crop[c0 + c] - (100.0f + (float)c)) < 1e-4f;
            for (int64_t c = 0; c < k; c++)
                full_values &= fabsf(crop[c0 + e + c] - (-1.0f - (float)c)) < 1e-5f;
        } else {
            OD_CHECK(mask[cell] == 0.0f);
            for (int64_t c = 0; c < width; c++)
                empty_zero &= crop[c] == 0.0f;
        }
    }
    OD_CHECK(full > 0);
    OD_CHECK(full < n3);
    OD_CHECK(full_values);
    OD_CHECK(empty_zero);
    OD_CHECK(od_learned_crop(&config, &grid, trunk, lifted_in, e, features, density, &box, 0, crops, mask, scratch,
                             &err) == -1);
    OD_CHECK(od_learned_crop(&config, &grid, trunk, NULL, 2, features, density, &box, 1, crops, mask, scratch, &err) ==
             -1);
    free(trunk);
    free(lifted);
    free(features);
    free(density);
    free(crops);
    free(mask);
    free(scratch);
}

static void test_learned_crop_layout(void)
{
    check_crop_layout(0);
}

static void test_learned_crop_layout_lifted(void)
{
    check_crop_layout(3);
}

static void test_learned_bad_input(void)
{
    od_scene *scene = load_example();
    if (scene == NULL)
        return;
    const char *path = write_model("errors.safetensors", NAN);
    od_error err = {{0}};
    od_model_file *file = od_model_file_open(path, &err);
    OD_CHECK(file != NULL);
    if (file == NULL) {
        od_scene_free(scene);
        return;
    }
    /* An encoder of another width: the volume network's first weight does
     * not match, and the message names the file and the tensor. */
    OD_CHECK(od_learned_net_open(file, 16, &err) == NULL);
    OD_CHECK(strstr(err.message, path) != NULL);
    OD_CHECK(strstr(err.message, "volume_net.stem.0.weight") != NULL);

    od_learned_net *net = od_learned_net_open(file, TINY_ENCODER_CHANNELS, &err);
    OD_CHECK(net != NULL);
    if (net != NULL) {
        od_compare_result result;
        int views[1] = {0};
        od_learned_net_clear(net);
        OD_CHECK(od_learned_net_finish(net, scene, views, 1, &result, &err) == -1);
        OD_CHECK(strstr(err.message, "no view was lifted") != NULL);
        int bad[1] = {scene->view_count};
        OD_CHECK(od_learned_net_finish(net, scene, bad, 1, &result, &err) == -1);
        OD_CHECK(strstr(err.message, "out of range") != NULL);
        OD_CHECK(result.object_count == 0 && result.objects == NULL);
        od_compare_result_free(&result);
    }
    od_learned_net_free(net);
    od_model_file_close(file);

    /* A model file that is not there. */
    char missing[512];
    snprintf(missing, sizeof missing, "%s/missing.safetensors", od_test_temp_dir());
    OD_CHECK(od_learned_open(missing, NULL, &err) == NULL);
    OD_CHECK(strstr(err.message, missing) != NULL);
    od_scene_free(scene);
}

/* The public API's errors, which need no weights. */
static void test_learned_api_errors(void)
{
    char missing[512];
    snprintf(missing, sizeof missing, "%s/missing.safetensors", od_test_temp_dir());
    OD_CHECK(oddone_open_model(missing, NULL) == NULL);
    OD_CHECK(strstr(oddone_last_error(), missing) != NULL);
    OD_CHECK(oddone_open_model(NULL, NULL) == NULL);
    OD_CHECK(strstr(oddone_last_error(), "no model path") != NULL);
    OD_CHECK(oddone_detect(NULL, "scene", NULL, 0) == NULL);
    OD_CHECK(strstr(oddone_last_error(), "oddone_detect") != NULL);
    OD_CHECK(oddone_result_object_count(NULL) == 0);
    oddone_object object;
    OD_CHECK(oddone_result_object(NULL, 0, &object) == -1);
    OD_CHECK(strstr(oddone_last_error(), "out of range") != NULL);
    oddone_result_free(NULL);
    oddone_detector_free(NULL);
}

/* The mask check that boxes from masks rely on reads the scene's paths:
 * the example has masks in every view, and an index out of range has none. */
static void test_scene_view_has_mask(void)
{
    od_scene *scene = NULL;
    od_error err = {{0}};
    OD_CHECK(od_scene_load(od_test_source_path("examples/torus-bump"), NULL, &scene, &err) == 0);
    if (scene == NULL)
        return;
    for (int v = 0; v < scene->view_count; v++)
        OD_CHECK(od_scene_view_has_mask(scene, v) == 1);
    OD_CHECK(od_scene_view_has_mask(scene, -1) == 0);
    OD_CHECK(od_scene_view_has_mask(scene, scene->view_count) == 0);
    od_scene_free(scene);
}

/* Box-source names parse both ways, and other names are rejected. */
static void test_learned_boxes_names(void)
{
    od_learned_boxes boxes = OD_LEARNED_BOXES_DENSITY;
    OD_CHECK(od_learned_boxes_parse("masks", &boxes) == 0);
    OD_CHECK(boxes == OD_LEARNED_BOXES_MASKS);
    OD_CHECK(od_learned_boxes_parse("density", &boxes) == 0);
    OD_CHECK(boxes == OD_LEARNED_BOXES_DENSITY);
    OD_CHECK(od_learned_boxes_parse("hull", &boxes) == -1);
    OD_CHECK(od_learned_boxes_parse(NULL, &boxes) == -1);
    OD_CHECK(boxes == OD_LEARNED_BOXES_DENSITY);
    OD_CHECK(strcmp(od_learned_boxes_name(OD_LEARNED_BOXES_MASKS), "masks") == 0);
    OD_CHECK(strcmp(od_learned_boxes_name(OD_LEARNED_BOXES_DENSITY), "density") == 0);
}

int main(void)
{
    OD_RUN(test_learned_random_model);
    OD_RUN(test_learned_dense_volume);
    OD_RUN(test_learned_crop_layout);
    OD_RUN(test_learned_crop_layout_lifted);
    OD_RUN(test_learned_bad_input);
    OD_RUN(test_learned_api_errors);
    OD_RUN(test_learned_boxes_names);
    OD_RUN(test_scene_view_has_mask);
    return od_test_finish();
}
