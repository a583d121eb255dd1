/* How often the odd object of one scene ranks first, over seeded subsets
 * of its views, for the training-free detector and for a model file.
 *
 *     sample_subsets SCENE ODD_OBJECT [MODEL [SUBSETS [VIEWS [BOXES]]]]
 *
 * SCENE is a scene folder (e.g. ../shared/datasets/toysad8k-sample),
 * ODD_OBJECT the name of its odd object (object.001 for the sample's
 * cracked banana). MODEL is a model file, or "compare" for the
 * training-free detector with its defaults (MobileNetV2 features, masks
 * for occupancy); default "compare". SUBSETS (default 100) subsets of
 * VIEWS views (default 5) are drawn by a Fisher-Yates shuffle from a
 * fixed seed, the draw bench/bench_detect.c makes, so both detectors see
 * the same subsets. Then one run with every view. BOXES, for a model
 * file, is density or masks (detect/learned.h's box sources); by default the
 * model's own localization.boxes.
 *
 * The top object is the one with the highest score. It counts as the odd
 * object when its box overlaps that object's true box most, with rotated
 * 3D IoU above 0.3. Prints one line per subset with the object count and
 * the top object's true name, then the totals. Nothing is tuned here: the
 * program only counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"
#include "detect/compare.h"
#include "detect/learned.h"
#include "geometry/obb.h"
#include "scene/scene.h"
#include "teacher/teacher.h"

#define SUBSET_SEED 6

/* Returns the true object that the result's top box overlaps most (IoU
 * above 0.3), or -1. */
static int top_truth(const od_scene *scene, const od_compare_result *result)
{
    int top = od_compare_top(result);
    if (top < 0)
        return -1;
    int best = -1;
    double best_iou = 0.3;
    for (int g = 0; g < scene->object_count; g++) {
        double iou = od_box_iou_3d(&result->objects[top].box, &scene->objects[g].box);
        if (iou > best_iou) {
            best_iou = iou;
            best = g;
        }
    }
    return best;
}

typedef struct detector {
    od_learned_model *model; /* NULL: compare */
    od_compare_options options;
} detector;

static int run_detector(detector *d, const od_scene *scene, const int *views, int count,
                        od_compare_result *result, od_error *err)
{
    if (d->model != NULL)
        return od_learned_detect(d->model, scene, views, count, result, err);
    return od_compare_detect(scene, views, count, &d->options, result, err);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sample_subsets SCENE ODD_OBJECT [MODEL|compare [SUBSETS [VIEWS [density|masks]]]]\n");
        return 2;
    }
    const char *scene_path = argv[1];
    const char *odd_name = argv[2];
    const char *model_path = argc > 3 ? argv[3] : "compare";
    int subsets = argc > 4 ? atoi(argv[4]) : 100;
    int view_count = argc > 5 ? atoi(argv[5]) : 5;
    const char *boxes = argc > 6 ? argv[6] : NULL; /* NULL: the model's localization.boxes */
    od_learned_boxes source = OD_LEARNED_BOXES_DENSITY;
    if (boxes != NULL && od_learned_boxes_parse(boxes, &source) != 0) {
        fprintf(stderr, "sample_subsets: invalid box source \"%s\"; expected density or masks\n", boxes);
        return 2;
    }
    od_log_set_level(OD_LOG_WARN);

    od_error err;
    od_scene *scene = NULL;
    if (od_scene_load(scene_path, NULL, &scene, &err) != 0) {
        fprintf(stderr, "sample_subsets: %s\n", err.message);
        return 1;
    }
    if (subsets < 0 || view_count < 1 || view_count > scene->view_count) {
        fprintf(stderr, "sample_subsets: SUBSETS must be >= 0 and VIEWS in [1, %d]\n", scene->view_count);
        od_scene_free(scene);
        return 2;
    }
    int odd = -1;
    for (int g = 0; g < scene->object_count; g++)
        if (strcmp(scene->objects[g].name, odd_name) == 0)
            odd = g;
    if (odd < 0) {
        fprintf(stderr, "sample_subsets: %s has no object called %s\n", scene_path, odd_name);
        od_scene_free(scene);
        return 2;
    }

    detector d = {.model = NULL, .options = od_compare_options_default()};
    if (strcmp(model_path, "compare") == 0) {
        d.options.occupancy = OD_COMPARE_OCCUPANCY_MASKS;
        d.options.teacher_instance = od_teacher_open(d.options.teacher, NULL, NULL, 0, &err);
        if (d.options.teacher_instance == NULL) {
            fprintf(stderr, "sample_subsets: %s\n", err.message);
            od_scene_free(scene);
            return 1;
        }
    } else {
        d.model = od_learned_open(model_path, NULL, &err);
        if (d.model != NULL && boxes != NULL && od_learned_set_boxes(d.model, source, &err) != 0) {
            od_learned_free(d.model);
            d.model = NULL;
        }
        if (d.model == NULL) {
            fprintf(stderr, "sample_subsets: %s\n", err.message);
            od_scene_free(scene);
            return 1;
        }
    }

    od_rng rng;
    od_rng_seed(&rng, SUBSET_SEED);
    int first = 0, done = 0, right_count = 0;
    int *order = malloc((size_t)scene->view_count * sizeof *order);
    for (int s = 0; s <= subsets && order != NULL; s++) {
        int count = view_count;
        for (int i = 0; i < scene->view_count; i++)
            order[i] = i;
        if (s < subsets) {
            for (int i = scene->view_count - 1; i > 0; i--) {
                int j = (int)od_rng_below(&rng, (uint64_t)i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        } else {
            count = scene->view_count; /* the last run: every view */
        }
        od_compare_result result;
        if (run_detector(&d, scene, order, count, &result, &err) != 0) {
            fprintf(stderr, "sample_subsets: subset %d: %s\n", s, err.message);
            continue;
        }
        int top = top_truth(scene, &result);
        if (s < subsets) {
            done++;
            first += top == odd;
            right_count += result.object_count == scene->object_count;
            printf("subset %3d: %d objects, top %s\n", s, result.object_count,
                   top >= 0 ? scene->objects[top].name : "(no true object)");
        } else {
            printf("all %d views: %d objects, top %s\n", count, result.object_count,
                   top >= 0 ? scene->objects[top].name : "(no true object)");
            for (int o = 0; o < result.object_count; o++)
                printf("  object %d: score %.4f%s\n", o, result.objects[o].has_score ? result.objects[o].score : 0.0,
                       result.objects[o].odd ? " odd" : "");
        }
        od_compare_result_free(&result);
    }
    if (subsets > 0)
        printf("%s: %s ranked first in %d of %d %d-view subsets (%d ran, %d with the true object count)\n",
               model_path, odd_name, first, subsets, view_count, done, right_count);
    free(order);
    od_learned_free(d.model);
    od_teacher_free(d.options.teacher_instance);
    od_scene_free(scene);
    return done == subsets ? 0 : 1;
}
