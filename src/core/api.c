/* The detector calls of include/oddone.h, on top of detect/learned.h and
 * detect/compare.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oddone.h"

#include "core/error.h"
#include "detect/compare.h"
#include "detect/learned.h"
#include "scene/scene.h"
#include "teacher/teacher.h"

static _Thread_local char last_error[OD_ERROR_MESSAGE_SIZE];

static void set_error(const char *message) { snprintf(last_error, sizeof last_error, "%s", message); }

const char *oddone_last_error(void) { return last_error; }

struct oddone_detector {
    od_learned_model *model;   /* the learned detector, or NULL */
    od_teacher *teacher;       /* compare's teacher, or NULL */
    od_compare_options options; /* compare's settings */
};

struct oddone_result {
    int count;
    oddone_object *objects;
};

oddone_detector *oddone_open_model(const char *model_path, const char *encoder_weights)
{
    if (model_path == NULL) {
        set_error("oddone_open_model: no model path given");
        return NULL;
    }
    oddone_detector *detector = calloc(1, sizeof *detector);
    if (detector == NULL) {
        set_error("oddone_open_model: out of memory");
        return NULL;
    }
    od_error err = {{0}};
    detector->model = od_learned_open(model_path, encoder_weights, &err);
    if (detector->model == NULL) {
        set_error(err.message);
        free(detector);
        return NULL;
    }
    return detector;
}

oddone_detector *oddone_open_compare(const char *teacher_weights)
{
    oddone_detector *detector = calloc(1, sizeof *detector);
    if (detector == NULL) {
        set_error("oddone_open_compare: out of memory");
        return NULL;
    }
    detector->options = od_compare_options_default();
    od_compare_options *options = &detector->options;
    od_error err = {{0}};
    detector->teacher = od_teacher_open(options->teacher, teacher_weights, options->layer, options->input_size, &err);
    if (detector->teacher == NULL) {
        set_error(err.message);
        free(detector);
        return NULL;
    }
    options->teacher_instance = detector->teacher;
    return detector;
}

void oddone_detector_free(oddone_detector *detector)
{
    if (detector == NULL)
        return;
    od_learned_free(detector->model);
    od_teacher_free(detector->teacher);
    free(detector);
}

/* Copies the objects of a detector's result into a public result. */
static oddone_result *copy_result(const od_compare_result *found)
{
    oddone_result *result = calloc(1, sizeof *result);
    if (result == NULL)
        return NULL;
    result->objects = calloc((size_t)(found->object_count > 0 ? found->object_count : 1), sizeof *result->objects);
    if (result->objects == NULL) {
        free(result);
        return NULL;
    }
    result->count = found->object_count;
    for (int o = 0; o < found->object_count; o++) {
        const od_compare_object *object = &found->objects[o];
        oddone_object *out = &result->objects[o];
        memcpy(out->center, object->box.center, sizeof out->center);
        memcpy(out->size, object->box.size, sizeof out->size);
        out->yaw = object->box.yaw;
        out->has_score = object->has_score;
        out->score = object->score;
        out->odd = object->odd;
        out->truncated = object->truncated;
    }
    return result;
}

oddone_result *oddone_detect(oddone_detector *detector, const char *scene_folder, const int *views, int view_count)
{
    if (detector == NULL || scene_folder == NULL) {
        set_error("oddone_detect: needs a detector and a scene folder");
        return NULL;
    }
    if (views != NULL && view_count < 1) {
        set_error("oddone_detect: a view list needs at least one view");
        return NULL;
    }
    od_error err = {{0}};
    od_scene *scene = NULL;
    if (od_scene_load(scene_folder, NULL, &scene, &err) != 0) {
        set_error(err.message);
        return NULL;
    }
    int *all = NULL;
    if (views == NULL) {
        view_count = scene->view_count;
        all = malloc((size_t)(view_count > 0 ? view_count : 1) * sizeof *all);
        if (all == NULL) {
            od_scene_free(scene);
            set_error("oddone_detect: out of memory");
            return NULL;
        }
        for (int v = 0; v < view_count; v++)
            all[v] = v;
        views = all;
    }
    od_compare_result found;
    memset(&found, 0, sizeof found);
    int status = detector->model != NULL
                     ? od_learned_detect(detector->model, scene, views, view_count, &found, &err)
                     : od_compare_detect(scene, views, view_count, &detector->options, &found, &err);
    oddone_result *result = NULL;
    if (status == 0) {
        result = copy_result(&found);
        if (result == NULL)
            od_fail(&err, "oddone_detect: out of memory");
    }
    if (result == NULL)
        set_error(err.message);
    od_compare_result_free(&found);
    free(all);
    od_scene_free(scene);
    return result;
}

int oddone_result_object_count(const oddone_result *result) { return result != NULL ? result->count : 0; }

int oddone_result_object(const oddone_result *result, int index, oddone_object *object)
{
    if (result == NULL || object == NULL || index < 0 || index >= result->count) {
        char message[128];
        snprintf(message, sizeof message, "oddone_result_object: object index %d is out of range (%d objects)", index,
                 result != NULL ? result->count : 0);
        set_error(message);
        return -1;
    }
    *object = result->objects[index];
    return 0;
}

void oddone_result_free(oddone_result *result)
{
    if (result == NULL)
        return;
    free(result->objects);
    free(result);
}
