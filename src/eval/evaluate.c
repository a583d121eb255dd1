/* Matching of predicted boxes to ground truth, the per-object evaluation
 * set, and every figure of an evaluation; see eval/evaluate.h for the
 * rules. */
#include "eval/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "geometry/obb.h"

/* ---- matching ---- */

typedef struct candidate_pair {
    double iou;
    int truth;
    int prediction;
} candidate_pair;

static int compare_pairs(const void *a, const void *b)
{
    const candidate_pair *x = a, *y = b;
    if (x->iou != y->iou)
        return x->iou > y->iou ? -1 : 1;
    if (x->truth != y->truth)
        return x->truth < y->truth ? -1 : 1;
    return (x->prediction > y->prediction) - (x->prediction < y->prediction);
}

int od_eval_match(const od_box *truth, int truth_count, const od_box *predicted, int predicted_count,
                  double threshold, int *match, double *match_iou, double *best_iou, od_error *err)
{
    if (truth_count < 0 || predicted_count < 0)
        return od_fail(err, "matching: %d true and %d predicted boxes; expected counts >= 0", truth_count,
                       predicted_count);
    for (int t = 0; t < truth_count; t++) {
        match[t] = -1;
        match_iou[t] = 0.0;
        best_iou[t] = 0.0;
    }
    if (truth_count == 0 || predicted_count == 0)
        return 0;

    size_t slots = (size_t)truth_count * (size_t)predicted_count;
    candidate_pair *pairs = malloc(slots * sizeof *pairs);
    uint8_t *prediction_used = calloc((size_t)predicted_count, 1);
    if (pairs == NULL || prediction_used == NULL) {
        free(pairs);
        free(prediction_used);
        return od_fail(err, "matching: out of memory for %d x %d box pairs", truth_count, predicted_count);
    }
    size_t pair_count = 0;
    for (int t = 0; t < truth_count; t++) {
        for (int p = 0; p < predicted_count; p++) {
            double iou = od_box_iou_3d(&truth[t], &predicted[p]);
            if (iou > best_iou[t])
                best_iou[t] = iou;
            if (iou > threshold)
                pairs[pair_count++] = (candidate_pair){iou, t, p};
        }
    }

    /* Greedy one-to-one assignment, best overlap first. */
    qsort(pairs, pair_count, sizeof *pairs, compare_pairs);
    for (size_t i = 0; i < pair_count; i++) {
        const candidate_pair *pair = &pairs[i];
        if (match[pair->truth] >= 0 || prediction_used[pair->prediction])
            continue;
        match[pair->truth] = pair->prediction;
        match_iou[pair->truth] = pair->iou;
        prediction_used[pair->prediction] = 1;
    }
    free(pairs);
    free(prediction_used);
    return 0;
}

/* ---- results ---- */

od_eval_results *od_eval_results_new(void)
{
    od_eval_results *results = calloc(1, sizeof *results);
    if (results == NULL)
        return NULL;
    results->scene_offsets = calloc(1, sizeof *results->scene_offsets);
    if (results->scene_offsets == NULL) {
        free(results);
        return NULL;
    }
    return results;
}

void od_eval_results_free(od_eval_results *results)
{
    if (results == NULL)
        return;
    for (int64_t s = 0; s < results->scene_count; s++)
        free(results->scenes[s].name);
    for (int64_t i = 0; i < results->object_count; i++)
        free(results->objects[i].kind);
    free(results->scenes);
    free(results->objects);
    free(results->scores);
    free(results->labels);
    free(results->correct);
    free(results->scene_offsets);
    free(results);
}

static char *copy_string(const char *text)
{
    size_t length = strlen(text);
    char *copy = malloc(length + 1);
    if (copy != NULL)
        memcpy(copy, text, length + 1);
    return copy;
}

/* Grows the arrays to hold one more scene and `objects` more objects. */
static int reserve(od_eval_results *results, int64_t objects, od_error *err)
{
    if (results->scene_count + 1 > results->scene_capacity) {
        int64_t capacity = results->scene_capacity > 0 ? 2 * results->scene_capacity : 16;
        od_eval_scene *scenes = realloc(results->scenes, (size_t)capacity * sizeof *scenes);
        if (scenes == NULL)
            return od_fail(err, "evaluation: out of memory for %lld scenes", (long long)capacity);
        results->scenes = scenes;
        int64_t *offsets = realloc(results->scene_offsets, (size_t)(capacity + 1) * sizeof *offsets);
        if (offsets == NULL)
            return od_fail(err, "evaluation: out of memory for %lld scenes", (long long)capacity);
        results->scene_offsets = offsets;
        results->scene_capacity = capacity;
    }
    int64_t needed = results->object_count + objects;
    if (needed > results->object_capacity) {
        int64_t capacity = results->object_capacity > 0 ? 2 * results->object_capacity : 64;
        while (capacity < needed)
            capacity *= 2;
        od_eval_object *list = realloc(results->objects, (size_t)capacity * sizeof *list);
        if (list == NULL)
            return od_fail(err, "evaluation: out of memory for %lld objects", (long long)capacity);
        results->objects = list;
        float *scores = realloc(results->scores, (size_t)capacity * sizeof *scores);
        if (scores == NULL)
            return od_fail(err, "evaluation: out of memory for %lld objects", (long long)capacity);
        results->scores = scores;
        uint8_t *labels = realloc(results->labels, (size_t)capacity);
        if (labels == NULL)
            return od_fail(err, "evaluation: out of memory for %lld objects", (long long)capacity);
        results->labels = labels;
        uint8_t *correct = realloc(results->correct, (size_t)capacity);
        if (correct == NULL)
            return od_fail(err, "evaluation: out of memory for %lld objects", (long long)capacity);
        results->correct = correct;
        results->object_capacity = capacity;
    }
    return 0;
}

int od_eval_add_built_scene(od_eval_results *results, const od_eval_scene *scene, const od_eval_object *objects,
                            int object_count, od_error *err)
{
    const char *name = scene->name != NULL ? scene->name : "";
    if (object_count < 0 || object_count != scene->truth_count)
        return od_fail(err, "evaluation: scene %s has %d objects but states %d true objects", name, object_count,
                       scene->truth_count);
    for (int i = 0; i < object_count; i++) {
        if (objects[i].label > 1)
            return od_fail(err, "evaluation: scene %s, object %d has label %d; expected 0 or 1", name, i,
                           objects[i].label);
        if (isnan(objects[i].eval_score))
            return od_fail(err, "evaluation: scene %s, object %d has a NaN score", name, i);
    }
    if (reserve(results, object_count, err) != 0)
        return -1;

    od_eval_scene *added = &results->scenes[results->scene_count];
    *added = *scene;
    added->first_object = results->object_count;
    added->name = copy_string(name);
    if (added->name == NULL)
        return od_fail(err, "evaluation: out of memory");
    int64_t base = results->object_count;
    for (int i = 0; i < object_count; i++) {
        od_eval_object *object = &results->objects[base + i];
        *object = objects[i];
        object->scene = results->scene_count;
        const char *kind = objects[i].kind;
        if (kind == NULL || kind[0] == '\0')
            kind = objects[i].label ? OD_EVAL_UNKNOWN_KIND : OD_EVAL_NORMAL_KIND;
        object->kind = copy_string(kind);
        if (object->kind == NULL) {
            for (int j = 0; j < i; j++)
                free(results->objects[base + j].kind);
            free(added->name);
            return od_fail(err, "evaluation: out of memory");
        }
        results->scores[base + i] = object->eval_score;
        results->labels[base + i] = object->label;
        results->correct[base + i] = object->correct;
    }
    results->object_count += object_count;
    results->scene_count++;
    results->scene_offsets[results->scene_count] = results->object_count;
    return 0;
}

int od_eval_add_scene(od_eval_results *results, const char *name, const od_eval_truth *truth, int truth_count,
                      const od_eval_prediction *predictions, int predicted_count, od_error *err)
{
    if (truth_count < 0 || predicted_count < 0)
        return od_fail(err, "evaluation: scene %s has %d true and %d predicted objects; expected counts >= 0",
                       name, truth_count, predicted_count);
    for (int t = 0; t < truth_count; t++)
        if (truth[t].label > 1)
            return od_fail(err, "evaluation: scene %s, true object %d has label %d; expected 0 or 1", name, t,
                           truth[t].label);
    for (int p = 0; p < predicted_count; p++)
        if (predictions[p].has_score && !isfinite(predictions[p].score))
            return od_fail(err, "evaluation: scene %s, predicted object %d has score %g; expected a finite number",
                           name, p, predictions[p].score);

    size_t truth_slots = (size_t)(truth_count > 0 ? truth_count : 1);
    size_t predicted_slots = (size_t)(predicted_count > 0 ? predicted_count : 1);
    od_box *truth_boxes = malloc(truth_slots * sizeof *truth_boxes);
    od_box *predicted_boxes = malloc(predicted_slots * sizeof *predicted_boxes);
    int *match = malloc(truth_slots * sizeof *match);
    double *match_iou = malloc(truth_slots * sizeof *match_iou);
    double *best_iou = malloc(truth_slots * sizeof *best_iou);
    od_eval_object *objects = calloc(truth_slots, sizeof *objects);
    int status = -1;
    if (truth_boxes == NULL || predicted_boxes == NULL || match == NULL || match_iou == NULL || best_iou == NULL ||
        objects == NULL) {
        od_fail(err, "evaluation: out of memory for scene %s", name);
        goto done;
    }
    for (int t = 0; t < truth_count; t++)
        truth_boxes[t] = truth[t].box;
    for (int p = 0; p < predicted_count; p++)
        predicted_boxes[p] = predictions[p].box;
    if (od_eval_match(truth_boxes, truth_count, predicted_boxes, predicted_count, OD_EVAL_IOU_THRESHOLD, match,
                      match_iou, best_iou, err) != 0)
        goto done;

    int matched = 0;
    for (int t = 0; t < truth_count; t++) {
        od_eval_object *object = &objects[t];
        object->truth_index = t;
        object->label = truth[t].label;
        object->kind = (char *)(truth[t].label ? truth[t].kind : NULL);
        object->prediction = match[t];
        object->iou = match_iou[t];
        object->best_iou = best_iou[t];
        object->eval_score = -INFINITY;
        if (match[t] < 0)
            continue;
        const od_eval_prediction *prediction = &predictions[match[t]];
        matched++;
        object->predicted = prediction->odd != 0;
        object->correct = object->predicted == object->label;
        if (prediction->has_score) {
            object->has_score = 1;
            object->score = prediction->score;
            object->eval_score = (float)prediction->score;
        }
    }
    od_eval_scene scene = {
        .name = (char *)name,
        .truth_count = truth_count,
        .predicted_count = predicted_count,
        .matched_count = matched,
    };
    status = od_eval_add_built_scene(results, &scene, objects, truth_count, err);
done:
    free(truth_boxes);
    free(predicted_boxes);
    free(match);
    free(match_iou);
    free(best_iou);
    free(objects);
    return status;
}

void od_eval_results_set(const od_eval_results *results, od_eval_set *set)
{
    set->count = results->object_count;
    set->scores = results->scores;
    set->labels = results->labels;
    set->scene_count = results->scene_count;
    set->scene_offsets = results->scene_offsets;
    set->correct = results->correct;
}

/* ---- summary ---- */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds the per-kind table: one group per distinct kind name, sorted. */
static int kind_groups(const od_eval_results *results, od_eval_summary *out, od_error *err)
{
    int64_t n = results->object_count;
    char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    if (names == NULL)
        return od_fail(err, "evaluation: out of memory for %lld objects", (long long)n);
    for (int64_t i = 0; i < n; i++)
        names[i] = results->objects[i].kind;
    qsort(names, (size_t)n, sizeof *names, compare_strings);
    int64_t distinct = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            names[distinct++] = names[i];
    out->kinds = calloc((size_t)(distinct > 0 ? distinct : 1), sizeof *out->kinds);
    if (out->kinds == NULL) {
        free(names);
        return od_fail(err, "evaluation: out of memory for %lld kinds", (long long)distinct);
    }
    out->kind_count = (int)distinct;
    for (int64_t k = 0; k < distinct; k++)
        snprintf(out->kinds[k].name, sizeof out->kinds[k].name, "%s", names[k]);
    for (int64_t i = 0; i < n; i++) {
        const od_eval_object *object = &results->objects[i];
        char **found = bsearch(&object->kind, names, (size_t)distinct, sizeof *names, compare_strings);
        od_eval_group *group = &out->kinds[found - names];
        group->correct += object->correct;
        group->total++;
    }
    free(names);
    return 0;
}

/* Builds the per-object-count table with od_group_table_build. */
static int size_groups(const od_eval_results *results, od_eval_summary *out, od_error *err)
{
    int64_t n = results->object_count;
    int64_t *keys = malloc((size_t)(n > 0 ? n : 1) * sizeof *keys);
    if (keys == NULL)
        return od_fail(err, "evaluation: out of memory for %lld objects", (long long)n);
    for (int64_t i = 0; i < n; i++)
        keys[i] = results->scenes[results->objects[i].scene].truth_count;
    od_group_table table;
    int status = od_group_table_build(keys, results->correct, n, &table, err);
    free(keys);
    if (status != 0)
        return -1;
    out->sizes = calloc((size_t)(table.count > 0 ? table.count : 1), sizeof *out->sizes);
    if (out->sizes == NULL) {
        od_group_table_free(&table);
        return od_fail(err, "evaluation: out of memory for %lld groups", (long long)table.count);
    }
    out->size_count = (int)table.count;
    for (int64_t g = 0; g < table.count; g++) {
        snprintf(out->sizes[g].name, sizeof out->sizes[g].name, "%lld", (long long)table.keys[g]);
        out->sizes[g].correct = table.correct[g];
        out->sizes[g].total = table.total[g];
    }
    od_group_table_free(&table);
    return 0;
}

/* Per-scene sums for the ratio bootstraps: IoU and object count (mIoU),
 * matched and object count (recall), count right and 1 (count accuracy). */
static int ratio_intervals(const od_eval_results *results, int64_t resamples, uint64_t seed, od_eval_summary *out,
                           od_error *err)
{
    int64_t scenes = results->scene_count;
    size_t slots = (size_t)(scenes > 0 ? scenes : 1);
    double *iou_sum = calloc(slots, sizeof(double));
    double *matched = calloc(slots, sizeof(double));
    double *objects = calloc(slots, sizeof(double));
    double *count_right = calloc(slots, sizeof(double));
    double *ones = calloc(slots, sizeof(double));
    int status = -1;
    if (iou_sum == NULL || matched == NULL || objects == NULL || count_right == NULL || ones == NULL) {
        od_fail(err, "evaluation: out of memory for %lld scenes", (long long)scenes);
        goto done;
    }
    for (int64_t s = 0; s < scenes; s++) {
        const od_eval_scene *scene = &results->scenes[s];
        for (int64_t i = results->scene_offsets[s]; i < results->scene_offsets[s + 1]; i++)
            iou_sum[s] += results->objects[i].best_iou;
        matched[s] = scene->matched_count;
        objects[s] = scene->truth_count;
        count_right[s] = scene->predicted_count == scene->truth_count;
        ones[s] = 1.0;
    }
    if (od_bootstrap_ratio(iou_sum, objects, scenes, resamples, OD_EVAL_LEVEL, seed, &out->miou, err) != 0 ||
        od_bootstrap_ratio(matched, objects, scenes, resamples, OD_EVAL_LEVEL, seed, &out->recall, err) != 0 ||
        od_bootstrap_ratio(count_right, ones, scenes, resamples, OD_EVAL_LEVEL, seed, &out->count_accuracy, err) !=
            0)
        goto done;
    status = 0;
done:
    free(iou_sum);
    free(matched);
    free(objects);
    free(count_right);
    free(ones);
    return status;
}

/* AUROC over the true objects that a scored prediction matched. */
static int matched_auroc(const od_eval_results *results, od_metric *out, od_error *err)
{
    int64_t n = results->object_count;
    float *scores = malloc((size_t)(n > 0 ? n : 1) * sizeof *scores);
    uint8_t *labels = malloc((size_t)(n > 0 ? n : 1));
    if (scores == NULL || labels == NULL) {
        free(scores);
        free(labels);
        return od_fail(err, "evaluation: out of memory for %lld objects", (long long)n);
    }
    int64_t scored_count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!results->objects[i].has_score)
            continue;
        scores[scored_count] = results->objects[i].eval_score;
        labels[scored_count] = results->objects[i].label;
        scored_count++;
    }
    int status = od_auroc(scores, labels, scored_count, out, err);
    free(scores);
    free(labels);
    return status;
}

int od_eval_summarize(const od_eval_results *results, int64_t resamples, uint64_t seed, od_eval_summary *out,
                      od_error *err)
{
    memset(out, 0, sizeof *out);
    od_eval_set set;
    od_eval_results_set(results, &set);
    if (od_eval_set_validate(&set, err) != 0)
        return -1;

    out->scene_count = results->scene_count;
    out->object_count = results->object_count;
    for (int64_t i = 0; i < results->object_count; i++) {
        out->anomalous_count += results->objects[i].label;
        out->matched_count += results->objects[i].prediction >= 0;
    }
    for (int64_t s = 0; s < results->scene_count; s++)
        out->predicted_count += results->scenes[s].predicted_count;
    out->unmatched_predictions = out->predicted_count - out->matched_count;

    if (od_auroc_scenes(&set, &out->auroc, err) != 0 || matched_auroc(results, &out->matched_auroc, err) != 0 ||
        od_top1_hit_rate(&set, &out->top1, err) != 0)
        goto fail;
    if (od_bootstrap_ci(&set, OD_BOOT_POOLED_AUROC, resamples, OD_EVAL_LEVEL, seed, &out->pooled_auroc, err) != 0 ||
        od_bootstrap_ci(&set, OD_BOOT_SCENE_AUROC, resamples, OD_EVAL_LEVEL, seed, &out->scene_auroc, err) != 0 ||
        od_bootstrap_ci(&set, OD_BOOT_ACCURACY, resamples, OD_EVAL_LEVEL, seed, &out->accuracy, err) != 0 ||
        od_bootstrap_ci(&set, OD_BOOT_TOP1, resamples, OD_EVAL_LEVEL, seed, &out->top1_rate, err) != 0)
        goto fail;
    if (ratio_intervals(results, resamples, seed, out, err) != 0 || kind_groups(results, out, err) != 0 ||
        size_groups(results, out, err) != 0)
        goto fail;
    return 0;
fail:
    od_eval_summary_free(out);
    return -1;
}

void od_eval_summary_free(od_eval_summary *summary)
{
    free(summary->kinds);
    free(summary->sizes);
    summary->kinds = NULL;
    summary->sizes = NULL;
    summary->kind_count = 0;
    summary->size_count = 0;
}

/* ---- view choice ---- */

static uint64_t fnv1a_64(const char *text)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        hash ^= *c;
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int od_eval_pick_views(uint64_t seed, const char *name, int view_count, int count, int *views, od_error *err)
{
    if (count < 1 || count > view_count)
        return od_fail(err, "scene %s has %d views; cannot pick %d (expected 1 to %d)", name, view_count, count,
                       view_count);
    int *order = malloc((size_t)view_count * sizeof *order);
    if (order == NULL)
        return od_fail(err, "out of memory for %d views", view_count);
    for (int v = 0; v < view_count; v++)
        order[v] = v;
    od_rng base;
    od_rng_seed(&base, seed);
    od_rng rng = od_rng_fork(&base, fnv1a_64(name));
    for (int i = 0; i < count; i++) {
        int j = i + (int)od_rng_below(&rng, (uint64_t)(view_count - i));
        int swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
    memcpy(views, order, (size_t)count * sizeof *views);
    free(order);
    qsort(views, (size_t)count, sizeof *views, compare_ints);
    return 0;
}
