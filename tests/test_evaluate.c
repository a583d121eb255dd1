/* Matching of predicted boxes to ground truth and the evaluation set built
 * from it (src/eval/evaluate.c): hand-made scenes whose expected values are worked
 * out below, and sixty random scenes checked against SciPy's Hungarian
 * matching and scikit-learn 1.2 (scripts/refs/evaluate.py).
 *
 * Tolerances: IoUs within 1e-9, because the reference computes the
 * footprint overlap by another method (a convex hull of corners and edge
 * crossings). AUROCs within 1e-12, as in test_metrics.c. Scores, labels,
 * correct flags and counts are compared exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/evaluate.h"
#include "testlib.h"

#define IOU_TOLERANCE 1e-9
#define AUROC_TOLERANCE 1e-12
#define RESAMPLES 300

static od_box unit_box(double x)
{
    od_box box = {{x, 0.0, 0.5}, {1.0, 1.0, 1.0}, 0.0};
    return box;
}

/* ---- matching ---- */

static void matching_is_greedy_one_to_one(void)
{
    /* Unit cubes shifted by d along x overlap with IoU (1 - d) / (1 + d).
     * P0 at 0.25 overlaps T0 and T1 equally (0.6); P1 at 0.45 overlaps T1
     * best (0.905). Greedy takes T1-P1 first, so P0 goes to T0. */
    od_box truth[2] = {unit_box(0.0), unit_box(0.5)};
    od_box predicted[2] = {unit_box(0.25), unit_box(0.45)};
    int match[2];
    double match_iou[2], best_iou[2];
    od_error err;
    OD_CHECK(od_eval_match(truth, 2, predicted, 2, 0.5, match, match_iou, best_iou, &err) == 0);
    OD_CHECK(match[0] == 0);
    OD_CHECK(match[1] == 1);
    OD_CHECK(fabs(match_iou[0] - 0.6) < 1e-12);
    OD_CHECK(fabs(match_iou[1] - 0.95 / 1.05) < 1e-12);
    OD_CHECK(fabs(best_iou[0] - 0.6) < 1e-12);
    OD_CHECK(fabs(best_iou[1] - 0.95 / 1.05) < 1e-12);
}

static void matching_keeps_best_overlap(void)
{
    /* Two predictions on one true box: the closer one (IoU 0.818) wins and
     * the other (0.667) stays unmatched. */
    od_box truth[1] = {unit_box(0.0)};
    od_box predicted[2] = {unit_box(-0.2), unit_box(0.1)};
    int match[1];
    double match_iou[1], best_iou[1];
    od_error err;
    OD_CHECK(od_eval_match(truth, 1, predicted, 2, 0.5, match, match_iou, best_iou, &err) == 0);
    OD_CHECK(match[0] == 1);
    OD_CHECK(fabs(match_iou[0] - 0.9 / 1.1) < 1e-12);
}

static void matching_needs_iou_above_half(void)
{
    /* A unit cube inside a 2 x 1 x 1 box: IoU exactly 0.5, not above it. */
    od_box truth[1] = {{{0.0, 0.0, 0.5}, {2.0, 1.0, 1.0}, 0.0}};
    od_box predicted[1] = {unit_box(-0.5)};
    int match[1];
    double match_iou[1], best_iou[1];
    od_error err;
    OD_CHECK(od_eval_match(truth, 1, predicted, 1, 0.5, match, match_iou, best_iou, &err) == 0);
    OD_CHECK(match[0] == -1);
    OD_CHECK(match_iou[0] == 0.0);
    OD_CHECK(best_iou[0] == 0.5);
}

static void matching_empty_sides(void)
{
    od_box truth[2] = {unit_box(0.0), unit_box(3.0)};
    int match[2] = {7, 7};
    double match_iou[2] = {1, 1}, best_iou[2] = {1, 1};
    od_error err;
    OD_CHECK(od_eval_match(truth, 2, NULL, 0, 0.5, match, match_iou, best_iou, &err) == 0);
    OD_CHECK(match[0] == -1 && match[1] == -1);
    OD_CHECK(best_iou[0] == 0.0 && best_iou[1] == 0.0);
    OD_CHECK(od_eval_match(NULL, 0, truth, 2, 0.5, NULL, NULL, NULL, &err) == 0);
    OD_CHECK(od_eval_match(truth, -1, truth, 2, 0.5, match, match_iou, best_iou, &err) == -1);
    OD_CHECK(strstr(err.message, "expected counts >= 0") != NULL);
}

/* ---- building the evaluation set ---- */

/* Four true objects and three predictions, one of them a false positive:
 * T0 normal, found, scored 0.2, labelled normal: correct;
 * T1 anomalous crack, found, scored 0.9, labelled odd: correct;
 * T2 anomalous (kind not given), missed: score -inf, wrong;
 * T3 normal, found by an unscored prediction: score -inf, correct. */
static int add_hand_scene(od_eval_results *results, const char *name, od_error *err)
{
    od_eval_truth truth[4] = {
        {unit_box(0.0), 0, NULL},
        {unit_box(3.0), 1, "crack"},
        {unit_box(6.0), 1, ""},
        {unit_box(9.0), 0, NULL},
    };
    od_eval_prediction predictions[4] = {
        {unit_box(20.0), 1, 5.0, 1},  /* false positive */
        {unit_box(3.05), 1, 0.9, 1},
        {unit_box(0.1), 1, 0.2, 0},
        {unit_box(9.0), 0, 0.0, 0},
    };
    return od_eval_add_scene(results, name, truth, 4, predictions, 4, err);
}

static void scene_objects_follow_rules(void)
{
    od_eval_results *results = od_eval_results_new();
    od_error err;
    OD_CHECK(add_hand_scene(results, "hand", &err) == 0);
    OD_CHECK(results->scene_count == 1);
    OD_CHECK(results->object_count == 4);
    OD_CHECK(results->scene_offsets[0] == 0 && results->scene_offsets[1] == 4);
    const od_eval_scene *scene = &results->scenes[0];
    OD_CHECK(strcmp(scene->name, "hand") == 0);
    OD_CHECK(scene->truth_count == 4);
    OD_CHECK(scene->predicted_count == 4);
    OD_CHECK(scene->matched_count == 3);

    const od_eval_object *o = results->objects;
    OD_CHECK(o[0].prediction == 2 && o[0].has_score && results->scores[0] == 0.2f);
    OD_CHECK(o[0].correct == 1 && o[0].predicted == 0);
    OD_CHECK(strcmp(o[0].kind, OD_EVAL_NORMAL_KIND) == 0);
    OD_CHECK(o[1].prediction == 1 && results->scores[1] == 0.9f && o[1].correct == 1);
    OD_CHECK(strcmp(o[1].kind, "crack") == 0);
    OD_CHECK(o[2].prediction == -1 && !o[2].has_score);
    OD_CHECK(isinf(results->scores[2]) && results->scores[2] < 0);
    OD_CHECK(o[2].correct == 0 && o[2].iou == 0.0);
    OD_CHECK(strcmp(o[2].kind, OD_EVAL_UNKNOWN_KIND) == 0);
    OD_CHECK(o[3].prediction == 3 && !o[3].has_score);
    OD_CHECK(isinf(results->scores[3]) && results->scores[3] < 0);
    OD_CHECK(o[3].correct == 1 && o[3].iou == 1.0);

    /* Ranks: 0.9 (anomalous) > 0.2 (normal) > -inf (anomalous, normal tied).
     * Pairs: T1 beats T0 and T3, T2 loses to T0 and ties T3: 2.5 of 4. */
    od_eval_summary summary;
    OD_CHECK(od_eval_summarize(results, RESAMPLES, 3, &summary, &err) == 0);
    OD_CHECK(summary.auroc.pooled.status == OD_METRIC_DEFINED);
    OD_CHECK(summary.auroc.pooled.value == 2.5 / 4.0);
    OD_CHECK(summary.auroc.scenes_used == 1);
    OD_CHECK(summary.pooled_auroc.estimate.value == 2.5 / 4.0);
    OD_CHECK(summary.accuracy.estimate.value == 0.75);
    OD_CHECK(summary.matched_count == 3);
    OD_CHECK(summary.predicted_count == 4);
    OD_CHECK(summary.unmatched_predictions == 1);
    OD_CHECK(summary.count_accuracy.estimate.value == 1.0);
    OD_CHECK(summary.recall.estimate.value == 0.75);
    OD_CHECK(summary.top1.scenes_used == 0); /* two anomalous objects */
    /* Only T0 and T1 are scored: one of each class, ranked right. */
    OD_CHECK(summary.matched_auroc.status == OD_METRIC_DEFINED && summary.matched_auroc.value == 1.0);
    double want_miou = (0.9 / 1.1 + 0.95 / 1.05 + 0.0 + 1.0) / 4.0;
    OD_CHECK(fabs(summary.miou.estimate.value - want_miou) < 1e-12);
    OD_CHECK(summary.kind_count == 3);
    OD_CHECK(strcmp(summary.kinds[0].name, "crack") == 0 && summary.kinds[0].correct == 1);
    OD_CHECK(strcmp(summary.kinds[1].name, "normal") == 0 && summary.kinds[1].total == 2);
    OD_CHECK(strcmp(summary.kinds[2].name, "unknown") == 0 && summary.kinds[2].correct == 0);
    OD_CHECK(summary.size_count == 1 && strcmp(summary.sizes[0].name, "4") == 0);
    OD_CHECK(summary.sizes[0].correct == 3 && summary.sizes[0].total == 4);
    od_eval_summary_free(&summary);
    od_eval_results_free(results);
}

static void bad_scores_rejected(void)
{
    od_eval_results *results = od_eval_results_new();
    od_eval_truth truth[1] = {{unit_box(0.0), 0, NULL}};
    od_eval_prediction prediction = {unit_box(0.0), 1, NAN, 0};
    od_error err;
    OD_CHECK(od_eval_add_scene(results, "nan", truth, 1, &prediction, 1, &err) == -1);
    OD_CHECK(strstr(err.message, "expected a finite number") != NULL);
    prediction.score = INFINITY;
    OD_CHECK(od_eval_add_scene(results, "inf", truth, 1, &prediction, 1, &err) == -1);
    truth[0].label = 2;
    prediction.score = 0.5;
    OD_CHECK(od_eval_add_scene(results, "label", truth, 1, &prediction, 1, &err) == -1);
    OD_CHECK(strstr(err.message, "expected 0 or 1") != NULL);
    OD_CHECK(results->scene_count == 0);
    OD_CHECK(results->object_count == 0);
    od_eval_results_free(results);
}

/* Scenes with one object, equal scores, one class or no objects at all
 * give defined or undefined figures, never NaN. */
static void degenerate_scenes_give_no_nan(void)
{
    od_eval_results *results = od_eval_results_new();
    od_error err;
    od_eval_truth one[1] = {{unit_box(0.0), 0, NULL}};
    od_eval_prediction lone = {unit_box(0.0), 0, 0.0, 0};
    OD_CHECK(od_eval_add_scene(results, "one object", one, 1, &lone, 1, &err) == 0);
    OD_CHECK(od_eval_add_scene(results, "empty", NULL, 0, NULL, 0, &err) == 0);
    od_eval_truth equal[3] = {{unit_box(0.0), 0, NULL}, {unit_box(3.0), 1, "bend"}, {unit_box(6.0), 0, NULL}};
    od_eval_prediction same[3] = {
        {unit_box(0.0), 1, 0.5, 0}, {unit_box(3.0), 1, 0.5, 0}, {unit_box(6.0), 1, 0.5, 0}};
    OD_CHECK(od_eval_add_scene(results, "equal scores", equal, 3, same, 3, &err) == 0);

    od_eval_summary summary;
    OD_CHECK(od_eval_summarize(results, RESAMPLES, 5, &summary, &err) == 0);
    OD_CHECK(summary.auroc.pooled.status == OD_METRIC_DEFINED);
    OD_CHECK(summary.auroc.scenes_used == 1);
    OD_CHECK(summary.auroc.scenes_skipped == 2);
    OD_CHECK(summary.auroc.scene_mean.value == 0.5);
    OD_CHECK(summary.top1.scenes_used == 1);
    OD_CHECK(fabs(summary.top1.rate.value - 1.0 / 3.0) < 1e-12);
    const od_interval *intervals[] = {&summary.pooled_auroc, &summary.scene_auroc, &summary.accuracy,
                                      &summary.top1_rate, &summary.miou, &summary.count_accuracy,
                                      &summary.recall};
    for (size_t i = 0; i < sizeof intervals / sizeof intervals[0]; i++) {
        OD_CHECK(!isnan(intervals[i]->estimate.value));
        OD_CHECK(!isnan(intervals[i]->lower));
        OD_CHECK(!isnan(intervals[i]->upper));
    }
    od_eval_summary_free(&summary);
    od_eval_results_free(results);

    /* All normal: AUROC undefined (value 0, not 0.5), the scene skipped. */
    results = od_eval_results_new();
    equal[1].label = 0;
    OD_CHECK(od_eval_add_scene(results, "all normal", equal, 3, same, 3, &err) == 0);
    OD_CHECK(od_eval_summarize(results, RESAMPLES, 5, &summary, &err) == 0);
    OD_CHECK(summary.auroc.pooled.status == OD_METRIC_UNDEFINED);
    OD_CHECK(summary.auroc.pooled.value == 0.0);
    OD_CHECK(summary.auroc.scenes_skipped == 1);
    OD_CHECK(summary.pooled_auroc.resamples_used == 0);
    OD_CHECK(summary.accuracy.estimate.value == 1.0);
    od_eval_summary_free(&summary);
    od_eval_results_free(results);
}

/* ---- against the reference ---- */

static double *read_f64(const od_safetensors *st, const char *name, int64_t *count)
{
    const od_st_entry *entry = od_safetensors_find(st, name);
    OD_CHECK(entry != NULL);
    if (entry == NULL)
        return NULL;
    uint64_t bytes = entry->end - entry->begin;
    OD_CHECK(entry->dtype == OD_DTYPE_U8 && bytes % 8 == 0);
    *count = (int64_t)(bytes / 8);
    double *values = malloc(bytes > 0 ? bytes : 8);
    memcpy(values, st->data + entry->begin, bytes);
    return values;
}

static int32_t *read_int(const od_safetensors *st, const char *name, int64_t *count)
{
    od_error err;
    int32_t *values = od_safetensors_get_int(st, name, count, &err);
    OD_CHECK(values != NULL);
    return values;
}

static void check_value(const char *name, double got, double want, double tolerance)
{
    int close = fabs(got - want) <= tolerance;
    OD_CHECK(close);
    if (!close)
        printf("  %s: %.17g, reference %.17g\n", name, got, want);
}

/* The reference file's scenes fed through od_eval_add_scene. */
typedef struct reference_scenes {
    od_safetensors *st;
    od_eval_results *results;
    int64_t scene_count;
} reference_scenes;

static const char *const reference_kind_names[4] = {"bend", "crack", "fracture", ""};

typedef double (*score_transform)(double score);

static double identity(double score)
{
    return score;
}

/* Loads the reference scenes; each prediction's score passes through
 * transform first. */
static int load_transformed_scenes(reference_scenes *reference, score_transform transform)
{
    memset(reference, 0, sizeof *reference);
    reference->st = od_test_load_reference("evaluate_scenes");
    if (reference->st == NULL)
        return -1;
    const od_safetensors *st = reference->st;
    int64_t offsets_count = 0, prediction_offsets_count = 0, n = 0, p = 0, k = 0;
    int32_t *offsets = read_int(st, "scene_offsets", &offsets_count);
    int32_t *prediction_offsets = read_int(st, "prediction_offsets", &prediction_offsets_count);
    double *truth_boxes = read_f64(st, "truth_boxes_f64", &k);
    int32_t *labels = read_int(st, "truth_labels", &n);
    int32_t *kinds = read_int(st, "truth_kinds", &n);
    double *prediction_boxes = read_f64(st, "prediction_boxes_f64", &k);
    od_tensor *scores = od_test_tensor(st, "prediction_scores");
    int32_t *has_score = read_int(st, "prediction_has_score", &p);
    int32_t *odd = read_int(st, "prediction_odd", &p);
    int status = -1;
    if (offsets == NULL || prediction_offsets == NULL || truth_boxes == NULL || labels == NULL || kinds == NULL ||
        prediction_boxes == NULL || scores == NULL || has_score == NULL || odd == NULL)
        goto done;
    OD_CHECK(offsets_count == prediction_offsets_count);
    reference->scene_count = offsets_count - 1;
    reference->results = od_eval_results_new();
    status = 0;
    for (int64_t s = 0; s < reference->scene_count && status == 0; s++) {
        int truth_count = offsets[s + 1] - offsets[s];
        int predicted_count = prediction_offsets[s + 1] - prediction_offsets[s];
        od_eval_truth truth[16];
        od_eval_prediction predictions[16];
        OD_CHECK(truth_count <= 16 && predicted_count <= 16);
        for (int t = 0; t < truth_count; t++) {
            int64_t i = offsets[s] + t;
            const double *b = truth_boxes + 7 * i;
            truth[t].box = (od_box){{b[0], b[1], b[2]}, {b[3], b[4], b[5]}, b[6]};
            truth[t].label = (uint8_t)labels[i];
            truth[t].kind = kinds[i] >= 0 ? reference_kind_names[kinds[i]] : NULL;
        }
        for (int j = 0; j < predicted_count; j++) {
            int64_t i = prediction_offsets[s] + j;
            const double *b = prediction_boxes + 7 * i;
            predictions[j].box = (od_box){{b[0], b[1], b[2]}, {b[3], b[4], b[5]}, b[6]};
            predictions[j].has_score = has_score[i];
            predictions[j].score = transform(scores->data[i]);
            predictions[j].odd = (uint8_t)odd[i];
        }
        char name[32];
        snprintf(name, sizeof name, "scene_%04d", (int)s);
        od_error err;
        status = od_eval_add_scene(reference->results, name, truth, truth_count, predictions, predicted_count, &err);
        OD_CHECK(status == 0);
    }
done:
    free(offsets);
    free(prediction_offsets);
    free(truth_boxes);
    free(labels);
    free(kinds);
    free(prediction_boxes);
    od_tensor_free(scores);
    free(has_score);
    free(odd);
    return status;
}

static int load_reference_scenes(reference_scenes *reference)
{
    return load_transformed_scenes(reference, identity);
}

static void free_reference_scenes(reference_scenes *reference)
{
    od_eval_results_free(reference->results);
    od_safetensors_free(reference->st);
}

static void objects_match_reference(void)
{
    reference_scenes reference;
    if (load_reference_scenes(&reference) != 0) {
        free_reference_scenes(&reference);
        return;
    }
    const od_safetensors *st = reference.st;
    const od_eval_results *results = reference.results;
    int64_t n = 0, count = 0;
    int32_t *match = read_int(st, "match", &n);
    double *match_iou = read_f64(st, "match_iou_f64", &count);
    double *best_iou = read_f64(st, "best_iou_f64", &count);
    int32_t *correct = read_int(st, "correct", &count);
    od_tensor *eval_scores = od_test_tensor(st, "eval_scores");
    OD_CHECK(results->object_count == n);
    if (match != NULL && match_iou != NULL && best_iou != NULL && correct != NULL && eval_scores != NULL &&
        results->object_count == n) {
        int same_match = 1, same_correct = 1, same_score = 1;
        double worst_iou = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const od_eval_object *object = &results->objects[i];
            same_match &= object->prediction == match[i];
            same_correct &= object->correct == correct[i];
            same_score &= object->eval_score == eval_scores->data[i];
            worst_iou = fmax(worst_iou, fabs(object->iou - match_iou[i]));
            worst_iou = fmax(worst_iou, fabs(object->best_iou - best_iou[i]));
        }
        OD_CHECK(same_match);
        OD_CHECK(same_correct);
        OD_CHECK(same_score);
        check_value("largest IoU difference", worst_iou, 0.0, IOU_TOLERANCE);
    }
    free(match);
    free(match_iou);
    free(best_iou);
    free(correct);
    od_tensor_free(eval_scores);
    free_reference_scenes(&reference);
}

static double reference_f64(const od_safetensors *st, const char *name)
{
    int64_t count = 0;
    double *values = read_f64(st, name, &count);
    double value = values != NULL && count == 1 ? values[0] : NAN;
    free(values);
    return value;
}

static void summary_matches_reference(void)
{
    reference_scenes reference;
    if (load_reference_scenes(&reference) != 0) {
        free_reference_scenes(&reference);
        return;
    }
    const od_safetensors *st = reference.st;
    od_eval_summary summary;
    od_error err;
    OD_CHECK(od_eval_summarize(reference.results, RESAMPLES, 11, &summary, &err) == 0);
    check_value("pooled AUROC", summary.auroc.pooled.value, reference_f64(st, "pooled_auroc_f64"),
                AUROC_TOLERANCE);
    check_value("scene-mean AUROC", summary.auroc.scene_mean.value, reference_f64(st, "scene_auroc_f64"),
                AUROC_TOLERANCE);
    check_value("matched AUROC", summary.matched_auroc.value, reference_f64(st, "matched_auroc_f64"),
                AUROC_TOLERANCE);
    check_value("accuracy", summary.accuracy.estimate.value, reference_f64(st, "accuracy_f64"), 0.0);
    check_value("top-1", summary.top1.rate.value, reference_f64(st, "top1_f64"), 1e-12);
    check_value("box mIoU", summary.miou.estimate.value, reference_f64(st, "miou_f64"), IOU_TOLERANCE);
    check_value("recall", summary.recall.estimate.value, reference_f64(st, "recall_f64"), 0.0);
    check_value("count accuracy", summary.count_accuracy.estimate.value, reference_f64(st, "count_accuracy_f64"),
                0.0);

    int64_t count = 0;
    int32_t *skipped = read_int(st, "scenes_skipped", &count);
    int32_t *top1_scenes = read_int(st, "top1_scenes", &count);
    if (skipped != NULL)
        OD_CHECK(summary.auroc.scenes_skipped == skipped[0]);
    if (top1_scenes != NULL)
        OD_CHECK(summary.top1.scenes_used == top1_scenes[0]);
    free(skipped);
    free(top1_scenes);

    /* Per-kind rows in name order: bend, crack, fracture, normal, unknown. */
    int32_t *kind_correct = read_int(st, "kind_correct", &count);
    int32_t *kind_total = read_int(st, "kind_total", &count);
    static const char *const kind_rows[5] = {"bend", "crack", "fracture", "normal", "unknown"};
    OD_CHECK(summary.kind_count == 5);
    for (int k = 0; k < 5 && k < summary.kind_count && kind_correct != NULL && kind_total != NULL; k++) {
        OD_CHECK(strcmp(summary.kinds[k].name, kind_rows[k]) == 0);
        OD_CHECK(summary.kinds[k].correct == kind_correct[k]);
        OD_CHECK(summary.kinds[k].total == kind_total[k]);
    }
    free(kind_correct);
    free(kind_total);

    int64_t size_rows = 0;
    int32_t *size_keys = read_int(st, "size_keys", &size_rows);
    int32_t *size_correct = read_int(st, "size_correct", &count);
    int32_t *size_total = read_int(st, "size_total", &count);
    OD_CHECK(summary.size_count == size_rows);
    for (int g = 0; g < size_rows && g < summary.size_count && size_keys != NULL; g++) {
        OD_CHECK(atoi(summary.sizes[g].name) == size_keys[g]);
        OD_CHECK(summary.sizes[g].correct == size_correct[g]);
        OD_CHECK(summary.sizes[g].total == size_total[g]);
    }
    free(size_keys);
    free(size_correct);
    free(size_total);

    /* Every interval contains its estimate. */
    const od_interval *intervals[] = {&summary.pooled_auroc, &summary.scene_auroc, &summary.accuracy,
                                      &summary.top1_rate, &summary.miou, &summary.count_accuracy,
                                      &summary.recall};
    for (size_t i = 0; i < sizeof intervals / sizeof intervals[0]; i++) {
        OD_CHECK(intervals[i]->resamples_used > 0);
        OD_CHECK(intervals[i]->lower <= intervals[i]->estimate.value);
        OD_CHECK(intervals[i]->estimate.value <= intervals[i]->upper);
    }
    od_eval_summary_free(&summary);
    free_reference_scenes(&reference);
}

/* od_bootstrap_ratio draws the same scenes as od_bootstrap_ci, so the
 * ratio of correct objects to objects gives the accuracy interval exactly. */
static void ratio_bootstrap_matches_accuracy(void)
{
    reference_scenes reference;
    if (load_reference_scenes(&reference) != 0) {
        free_reference_scenes(&reference);
        return;
    }
    const od_eval_results *results = reference.results;
    int64_t scenes = results->scene_count;
    double *correct = calloc((size_t)scenes, sizeof *correct);
    double *objects = calloc((size_t)scenes, sizeof *objects);
    for (int64_t s = 0; s < scenes; s++) {
        for (int64_t i = results->scene_offsets[s]; i < results->scene_offsets[s + 1]; i++)
            correct[s] += results->correct[i];
        objects[s] = (double)(results->scene_offsets[s + 1] - results->scene_offsets[s]);
    }
    od_eval_set set;
    od_eval_results_set(results, &set);
    od_interval by_set, by_ratio;
    od_error err;
    OD_CHECK(od_bootstrap_ci(&set, OD_BOOT_ACCURACY, 500, 0.95, 21, &by_set, &err) == 0);
    OD_CHECK(od_bootstrap_ratio(correct, objects, scenes, 500, 0.95, 21, &by_ratio, &err) == 0);
    OD_CHECK(by_ratio.estimate.value == by_set.estimate.value);
    OD_CHECK(by_ratio.lower == by_set.lower);
    OD_CHECK(by_ratio.upper == by_set.upper);
    OD_CHECK(by_ratio.resamples_used == by_set.resamples_used);

    objects[0] = -1.0;
    OD_CHECK(od_bootstrap_ratio(correct, objects, scenes, 500, 0.95, 21, &by_ratio, &err) == -1);
    OD_CHECK(strstr(err.message, "denominator >= 0") != NULL);
    free(correct);
    free(objects);
    free_reference_scenes(&reference);
}

/* Objects read back (as the paired comparison does) give the same figures. */
static void built_scenes_round_trip(void)
{
    reference_scenes reference;
    if (load_reference_scenes(&reference) != 0) {
        free_reference_scenes(&reference);
        return;
    }
    const od_eval_results *results = reference.results;
    od_eval_results *copy = od_eval_results_new();
    od_error err;
    for (int64_t s = 0; s < results->scene_count; s++) {
        const od_eval_scene *scene = &results->scenes[s];
        OD_CHECK(od_eval_add_built_scene(copy, scene, results->objects + scene->first_object, scene->truth_count,
                                         &err) == 0);
    }
    od_eval_summary a, b;
    OD_CHECK(od_eval_summarize(results, RESAMPLES, 2, &a, &err) == 0);
    OD_CHECK(od_eval_summarize(copy, RESAMPLES, 2, &b, &err) == 0);
    OD_CHECK(a.pooled_auroc.estimate.value == b.pooled_auroc.estimate.value);
    OD_CHECK(a.pooled_auroc.lower == b.pooled_auroc.lower);
    OD_CHECK(a.accuracy.upper == b.accuracy.upper);
    OD_CHECK(a.miou.lower == b.miou.lower);
    OD_CHECK(a.count_accuracy.estimate.value == b.count_accuracy.estimate.value);
    OD_CHECK(a.kind_count == b.kind_count);
    od_eval_summary_free(&a);
    od_eval_summary_free(&b);

    od_eval_scene wrong = results->scenes[0];
    wrong.truth_count += 1;
    OD_CHECK(od_eval_add_built_scene(copy, &wrong, results->objects, results->scenes[0].truth_count, &err) == -1);
    od_eval_results_free(copy);
    free_reference_scenes(&reference);
}

static double scale_up(double score)
{
    return ldexp(score, 40) - 1e15;
}

static double sigmoid(double score)
{
    return 1.0 / (1.0 + exp(-score));
}

/* Scores of any range rank the same, so every figure stays the same
 * under a monotonic map: a large scale and shift (exact in float for
 * these scores, so ties stay ties), and the sigmoid of logits. */
static void score_range_keeps_figures(void)
{
    reference_scenes plain, scaled, squashed;
    int loaded = load_reference_scenes(&plain) == 0;
    loaded &= load_transformed_scenes(&scaled, scale_up) == 0;
    loaded &= load_transformed_scenes(&squashed, sigmoid) == 0;
    OD_CHECK(loaded);
    if (loaded) {
        od_eval_summary a, b, c;
        od_error err;
        OD_CHECK(od_eval_summarize(plain.results, RESAMPLES, 4, &a, &err) == 0);
        OD_CHECK(od_eval_summarize(scaled.results, RESAMPLES, 4, &b, &err) == 0);
        OD_CHECK(od_eval_summarize(squashed.results, RESAMPLES, 4, &c, &err) == 0);
        OD_CHECK(a.auroc.pooled.value == b.auroc.pooled.value);
        OD_CHECK(a.auroc.pooled.value == c.auroc.pooled.value);
        OD_CHECK(a.auroc.scene_mean.value == b.auroc.scene_mean.value);
        OD_CHECK(a.auroc.scene_mean.value == c.auroc.scene_mean.value);
        OD_CHECK(a.matched_auroc.value == b.matched_auroc.value);
        OD_CHECK(a.matched_auroc.value == c.matched_auroc.value);
        OD_CHECK(a.top1.rate.value == b.top1.rate.value);
        OD_CHECK(a.top1.rate.value == c.top1.rate.value);
        OD_CHECK(a.pooled_auroc.lower == b.pooled_auroc.lower);
        OD_CHECK(a.pooled_auroc.upper == c.pooled_auroc.upper);
        od_eval_summary_free(&a);
        od_eval_summary_free(&b);
        od_eval_summary_free(&c);
    }
    free_reference_scenes(&plain);
    free_reference_scenes(&scaled);
    free_reference_scenes(&squashed);
}

/* ---- view choice ---- */

static void picked_views_are_seeded(void)
{
    int first[5], again[5], other[5];
    od_error err;
    OD_CHECK(od_eval_pick_views(7, "test/scene_0003", 20, 5, first, &err) == 0);
    OD_CHECK(od_eval_pick_views(7, "test/scene_0003", 20, 5, again, &err) == 0);
    OD_CHECK(memcmp(first, again, sizeof first) == 0);
    for (int i = 0; i < 5; i++) {
        OD_CHECK(first[i] >= 0 && first[i] < 20);
        if (i > 0)
            OD_CHECK(first[i] > first[i - 1]); /* ascending and distinct */
    }
    /* Another seed or another scene picks other views (checked for these
     * names and seeds). */
    OD_CHECK(od_eval_pick_views(8, "test/scene_0003", 20, 5, other, &err) == 0);
    OD_CHECK(memcmp(first, other, sizeof first) != 0);
    OD_CHECK(od_eval_pick_views(7, "test/scene_0004", 20, 5, other, &err) == 0);
    OD_CHECK(memcmp(first, other, sizeof first) != 0);

    int all[4];
    OD_CHECK(od_eval_pick_views(1, "s", 4, 4, all, &err) == 0);
    OD_CHECK(all[0] == 0 && all[1] == 1 && all[2] == 2 && all[3] == 3);
    OD_CHECK(od_eval_pick_views(1, "s", 4, 5, all, &err) == -1);
    OD_CHECK(strstr(err.message, "has 4 views") != NULL);
    OD_CHECK(od_eval_pick_views(1, "s", 4, 0, all, &err) == -1);
}

int main(void)
{
    OD_RUN(matching_is_greedy_one_to_one);
    OD_RUN(matching_keeps_best_overlap);
    OD_RUN(matching_needs_iou_above_half);
    OD_RUN(matching_empty_sides);
    OD_RUN(scene_objects_follow_rules);
    OD_RUN(bad_scores_rejected);
    OD_RUN(degenerate_scenes_give_no_nan);
    OD_RUN(objects_match_reference);
    OD_RUN(summary_matches_reference);
    OD_RUN(ratio_bootstrap_matches_accuracy);
    OD_RUN(built_scenes_round_trip);
    OD_RUN(score_range_keeps_figures);
    OD_RUN(picked_views_are_seeded);
    return od_test_finish();
}
