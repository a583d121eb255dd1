/* Evaluation metrics against scikit-learn 1.2 (roc_auc_score, roc_curve,
 * accuracy_score) on random inputs with ties, large ranges, logits and one
 * class only, plus hand-checked cases for the field's accuracy rule, top-1,
 * group tables and the bootstrap.
 *
 * Tolerances: AUROC within 1e-12. Both sides compute the same rational
 * number. The C code divides two exact integer pair counts once, and
 * scikit-learn sums trapezoids of integer ratios, which adds a few ulps
 * (its largest difference from the exact ratio was 1.1e-16 over 200
 * random sets of up to 2000 scores with ties). ROC points are
 * compared exactly, because both divide the same integer counts once in
 * double. Accuracy is a ratio of integers, so it is exact too. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "eval/metrics.h"
#include "eval/roc_svg.h"
#include "testlib.h"

#define AUROC_TOLERANCE 1e-12

/* Reads a float64 array stored as raw little-endian bytes in a U8 tensor. */
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

static uint8_t *read_u8(const od_safetensors *st, const char *name, int64_t *count)
{
    od_error err;
    int32_t *values = od_safetensors_get_int(st, name, count, &err);
    OD_CHECK(values != NULL);
    if (values == NULL)
        return NULL;
    uint8_t *out = malloc((size_t)(*count > 0 ? *count : 1));
    for (int64_t i = 0; i < *count; i++)
        out[i] = (uint8_t)values[i];
    free(values);
    return out;
}

static void check_case(const char *name)
{
    char file[64];
    snprintf(file, sizeof file, "metrics_%s", name);
    od_safetensors *st = od_test_load_reference(file);
    if (st == NULL)
        return;
    od_tensor *scores = od_test_tensor(st, "scores");
    od_tensor *threshold = od_test_tensor(st, "threshold");
    int64_t n = 0, count = 0;
    uint8_t *labels = read_u8(st, "labels", &n);
    uint8_t *defined = read_u8(st, "auroc_defined", &count);
    double *want_auroc = read_f64(st, "auroc_f64", &count);
    double *want_accuracy = read_f64(st, "accuracy_f64", &count);
    if (scores == NULL || threshold == NULL || labels == NULL || defined == NULL || want_auroc == NULL ||
        want_accuracy == NULL)
        goto done;
    OD_CHECK(od_tensor_numel(scores) == n);
    od_error err;

    /* AUROC in one call. */
    od_metric auroc;
    OD_CHECK(od_auroc(scores->data, labels, n, &auroc, &err) == 0);
    OD_CHECK(auroc.status == (defined[0] ? OD_METRIC_DEFINED : OD_METRIC_UNDEFINED));
    OD_CHECK(!isnan(auroc.value));
    if (defined[0]) {
        OD_CHECK(fabs(auroc.value - want_auroc[0]) <= AUROC_TOLERANCE);
        if (fabs(auroc.value - want_auroc[0]) > AUROC_TOLERANCE)
            printf("  %s: auroc %.17g, sklearn %.17g\n", name, auroc.value, want_auroc[0]);
    } else {
        OD_CHECK(auroc.value == 0.0);
    }

    /* The same scores in uneven batches give the identical number. */
    const int64_t batch_sizes[3] = {1, 7, 64};
    for (int b = 0; b < 3; b++) {
        od_auroc_acc *acc = od_auroc_new();
        for (int64_t begin = 0; begin < n; begin += batch_sizes[b]) {
            int64_t size = n - begin < batch_sizes[b] ? n - begin : batch_sizes[b];
            OD_CHECK(od_auroc_add(acc, scores->data + begin, labels + begin, size, &err) == 0);
        }
        od_metric batched;
        OD_CHECK(od_auroc_compute(acc, &batched, &err) == 0);
        OD_CHECK(batched.status == auroc.status);
        OD_CHECK(batched.value == auroc.value);
        od_auroc_free(acc);
    }

    /* ROC points. */
    od_roc_curve curve;
    od_metric_status status;
    OD_CHECK(od_roc_curve_compute(scores->data, labels, n, &curve, &status, &err) == 0);
    OD_CHECK(status == auroc.status);
    if (defined[0]) {
        int64_t points = 0, tpr_count = 0, thr_count = 0;
        double *fpr = read_f64(st, "fpr_f64", &points);
        double *tpr = read_f64(st, "tpr_f64", &tpr_count);
        double *thresholds = read_f64(st, "thresholds_f64", &thr_count);
        OD_CHECK(curve.count == points);
        if (fpr != NULL && tpr != NULL && thresholds != NULL && curve.count == points) {
            int fpr_same = 1, tpr_same = 1, thr_same = 1;
            for (int64_t i = 0; i < points; i++) {
                fpr_same &= curve.fpr[i] == fpr[i];
                tpr_same &= curve.tpr[i] == tpr[i];
                thr_same &= curve.thresholds[i] == thresholds[i];
            }
            OD_CHECK(fpr_same);
            OD_CHECK(tpr_same);
            OD_CHECK(thr_same);
        }
        free(fpr);
        free(tpr);
        free(thresholds);
    } else {
        OD_CHECK(curve.count == 0);
    }
    od_roc_curve_free(&curve);

    /* Accuracy at the case's threshold. */
    od_metric accuracy;
    OD_CHECK(od_accuracy(scores->data, labels, n, threshold->data[0], &accuracy, &err) == 0);
    OD_CHECK(accuracy.status == OD_METRIC_DEFINED);
    OD_CHECK(accuracy.value == want_accuracy[0]);

done:
    od_tensor_free(scores);
    od_tensor_free(threshold);
    free(labels);
    free(defined);
    free(want_auroc);
    free(want_accuracy);
    od_safetensors_free(st);
}

static void cases_match_sklearn(void)
{
    const char *names[] = {"ties", "probs", "logits", "sigmoid", "large", "equal", "two", "one_class"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_case(names[i]);
}

static void equal_scores_give_half(void)
{
    const float scores[4] = {3.0f, 3.0f, 3.0f, 3.0f};
    const uint8_t labels[4] = {0, 1, 1, 0};
    od_metric auroc;
    OD_CHECK(od_auroc(scores, labels, 4, &auroc, NULL) == 0);
    OD_CHECK(auroc.status == OD_METRIC_DEFINED);
    OD_CHECK(auroc.value == 0.5);
}

static void one_class_is_undefined(void)
{
    const float scores[3] = {0.1f, 0.7f, 0.3f};
    const uint8_t normal[3] = {0, 0, 0};
    const uint8_t anomalous[3] = {1, 1, 1};
    od_metric auroc;
    OD_CHECK(od_auroc(scores, normal, 3, &auroc, NULL) == 0);
    OD_CHECK(auroc.status == OD_METRIC_UNDEFINED && auroc.value == 0.0);
    OD_CHECK(od_auroc(scores, anomalous, 3, &auroc, NULL) == 0);
    OD_CHECK(auroc.status == OD_METRIC_UNDEFINED && auroc.value == 0.0);
    /* One object, and no objects at all. */
    OD_CHECK(od_auroc(scores, anomalous, 1, &auroc, NULL) == 0);
    OD_CHECK(auroc.status == OD_METRIC_UNDEFINED && !isnan(auroc.value));
    OD_CHECK(od_auroc(NULL, NULL, 0, &auroc, NULL) == 0);
    OD_CHECK(auroc.status == OD_METRIC_UNDEFINED && !isnan(auroc.value));
    od_metric accuracy;
    OD_CHECK(od_accuracy(NULL, NULL, 0, 0.5f, &accuracy, NULL) == 0);
    OD_CHECK(accuracy.status == OD_METRIC_UNDEFINED && !isnan(accuracy.value));
}

/* Scaling by 2^100 or 2^-100 keeps the order of the scores, so the AUROC
 * is bit-identical. Infinities at both ends keep it too. */
static void score_range_does_not_matter(void)
{
    enum { N = 301 };
    float scores[N], scaled[N], tiny[N];
    uint8_t labels[N];
    od_rng rng;
    od_rng_seed(&rng, 11);
    for (int i = 0; i < N; i++) {
        scores[i] = od_rng_normal(&rng);
        labels[i] = od_rng_uniform(&rng) < 0.4f;
        scaled[i] = ldexpf(scores[i], 100);
        tiny[i] = ldexpf(scores[i], -100);
    }
    od_metric a, b, c;
    OD_CHECK(od_auroc(scores, labels, N, &a, NULL) == 0);
    OD_CHECK(od_auroc(scaled, labels, N, &b, NULL) == 0);
    OD_CHECK(od_auroc(tiny, labels, N, &c, NULL) == 0);
    OD_CHECK(a.value == b.value && a.value == c.value);

    /* The highest score becomes +inf and the lowest -inf. */
    int top = 0, bottom = 0;
    for (int i = 1; i < N; i++) {
        top = scores[i] > scores[top] ? i : top;
        bottom = scores[i] < scores[bottom] ? i : bottom;
    }
    scaled[top] = INFINITY;
    scaled[bottom] = -INFINITY;
    OD_CHECK(od_auroc(scaled, labels, N, &b, NULL) == 0);
    OD_CHECK(a.value == b.value);
}

static void bad_inputs_rejected(void)
{
    float scores[3] = {0.1f, NAN, 0.3f};
    uint8_t labels[3] = {0, 1, 0};
    od_metric auroc;
    od_error err;
    OD_CHECK(od_auroc(scores, labels, 3, &auroc, &err) == -1);
    OD_CHECK(strstr(err.message, "score 1 is NaN") != NULL);
    scores[1] = 0.2f;
    labels[2] = 2;
    OD_CHECK(od_auroc(scores, labels, 3, &auroc, &err) == -1);
    OD_CHECK(strstr(err.message, "label 2 is 2") != NULL);
    OD_CHECK(od_auroc(scores, labels, -1, &auroc, &err) == -1);

    /* A rejected batch leaves the accumulator as it was. */
    od_auroc_acc *acc = od_auroc_new();
    const float good[2] = {0.9f, 0.1f};
    const uint8_t good_labels[2] = {1, 0};
    OD_CHECK(od_auroc_add(acc, good, good_labels, 2, &err) == 0);
    OD_CHECK(od_auroc_add(acc, scores, labels, 3, &err) == -1);
    OD_CHECK(od_auroc_compute(acc, &auroc, &err) == 0);
    OD_CHECK(auroc.status == OD_METRIC_DEFINED && auroc.value == 1.0);
    od_auroc_free(acc);

    od_metric accuracy;
    OD_CHECK(od_accuracy(good, good_labels, 2, NAN, &accuracy, &err) == -1);
    OD_CHECK(strstr(err.message, "threshold") != NULL);

    const int64_t offsets[3] = {0, 2, 1};
    od_eval_set set = {2, good, good_labels, 2, offsets, NULL};
    od_scene_auroc result;
    OD_CHECK(od_auroc_scenes(&set, &result, &err) == -1);
    OD_CHECK(strstr(err.message, "scene_offsets[2]") != NULL);
    const int64_t short_offsets[2] = {0, 1};
    od_eval_set short_set = {2, good, good_labels, 1, short_offsets, NULL};
    OD_CHECK(od_auroc_scenes(&short_set, &result, &err) == -1);
    OD_CHECK(strstr(err.message, "last scene offset") != NULL);
}

static void scenes_match_sklearn(void)
{
    od_safetensors *st = od_test_load_reference("metrics_scenes");
    if (st == NULL)
        return;
    od_tensor *scores = od_test_tensor(st, "scores");
    int64_t n = 0, scene_points = 0, count = 0;
    uint8_t *labels = read_u8(st, "labels", &n);
    od_error err;
    int32_t *offsets32 = od_safetensors_get_int(st, "scene_offsets", &scene_points, &err);
    int32_t *skipped = od_safetensors_get_int(st, "scenes_skipped", &count, &err);
    double *pooled = read_f64(st, "pooled_f64", &count);
    double *scene_mean = read_f64(st, "scene_mean_f64", &count);
    if (scores != NULL && labels != NULL && offsets32 != NULL && skipped != NULL && pooled != NULL &&
        scene_mean != NULL) {
        int64_t *offsets = malloc((size_t)scene_points * sizeof *offsets);
        for (int64_t s = 0; s < scene_points; s++)
            offsets[s] = offsets32[s];
        od_eval_set set = {n, scores->data, labels, scene_points - 1, offsets, NULL};
        od_scene_auroc result;
        OD_CHECK(od_auroc_scenes(&set, &result, &err) == 0);
        OD_CHECK(result.pooled.status == OD_METRIC_DEFINED);
        OD_CHECK(fabs(result.pooled.value - pooled[0]) <= AUROC_TOLERANCE);
        OD_CHECK(result.scene_mean.status == OD_METRIC_DEFINED);
        /* A mean of up to 40 values: the summation order adds a few ulps. */
        OD_CHECK(fabs(result.scene_mean.value - scene_mean[0]) <= AUROC_TOLERANCE);
        OD_CHECK(result.scenes_skipped == skipped[0]);
        OD_CHECK(result.scenes_skipped > 0);
        OD_CHECK(result.scenes_used + result.scenes_skipped == set.scene_count);
        free(offsets);
    }
    od_tensor_free(scores);
    free(labels);
    free(offsets32);
    free(skipped);
    free(pooled);
    free(scene_mean);
    od_safetensors_free(st);
}

static void no_scene_with_both_classes(void)
{
    const float scores[3] = {0.5f, 0.5f, 0.1f};
    const uint8_t labels[3] = {1, 0, 0};
    const int64_t offsets[3] = {0, 1, 3};
    od_eval_set set = {3, scores, labels, 2, offsets, NULL};
    od_scene_auroc result;
    OD_CHECK(od_auroc_scenes(&set, &result, NULL) == 0);
    OD_CHECK(result.pooled.status == OD_METRIC_DEFINED);
    OD_CHECK(result.pooled.value == 0.75);
    OD_CHECK(result.scene_mean.status == OD_METRIC_UNDEFINED && result.scene_mean.value == 0.0);
    OD_CHECK(result.scenes_used == 0 && result.scenes_skipped == 2);
}

static void matched_rule_needs_box_and_label(void)
{
    /* Objects: matched and right, matched and wrong, unmatched but the
     * label would be right, unmatched and wrong. */
    const uint8_t matched[4] = {1, 1, 0, 0};
    const uint8_t predicted[4] = {1, 0, 0, 1};
    const uint8_t labels[4] = {1, 1, 0, 0};
    uint8_t correct[4];
    od_correct_matched(matched, predicted, labels, 4, correct);
    OD_CHECK(correct[0] == 1 && correct[1] == 0 && correct[2] == 0 && correct[3] == 0);
    od_metric accuracy = od_mean_correct(correct, 4);
    OD_CHECK(accuracy.status == OD_METRIC_DEFINED && accuracy.value == 0.25);
    OD_CHECK(od_mean_correct(correct, 0).status == OD_METRIC_UNDEFINED);
}

static void accuracy_logits_match_probabilities(void)
{
    const float logits[6] = {-3.0f, -0.01f, 0.0f, 0.01f, 2.0f, 40.0f};
    float probabilities[6];
    for (int i = 0; i < 6; i++)
        probabilities[i] = (float)(1.0 / (1.0 + exp(-(double)logits[i])));
    const uint8_t labels[6] = {0, 1, 0, 1, 1, 0};
    od_metric from_logits, from_probabilities;
    OD_CHECK(od_accuracy(logits, labels, 6, 0.0f, &from_logits, NULL) == 0);
    OD_CHECK(od_accuracy(probabilities, labels, 6, 0.5f, &from_probabilities, NULL) == 0);
    /* Right: -3 (0), 0 (0 at the threshold), 0.01 (1), 2 (1). */
    OD_CHECK(from_logits.value == 4.0 / 6.0);
    OD_CHECK(from_probabilities.value == from_logits.value);
}

static void top1_counts_single_odd_scenes(void)
{
    /* Scene 0: the odd object is top. Scene 1: another object is top.
     * Scene 2: the odd object ties with one other at the top (half a hit).
     * Scene 3: two odd objects (left out). Scene 4: none (left out). */
    const float scores[13] = {0.9f, 0.1f, 0.2f, 0.3f, 0.8f, 0.6f, 0.6f, 0.1f, 0.5f, 0.4f, 0.2f, 0.2f, 0.3f};
    const uint8_t labels[13] = {1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0};
    const int64_t offsets[6] = {0, 3, 5, 8, 11, 13};
    od_eval_set set = {13, scores, labels, 5, offsets, NULL};
    od_top1 top1;
    OD_CHECK(od_top1_hit_rate(&set, &top1, NULL) == 0);
    OD_CHECK(top1.scenes_used == 3);
    OD_CHECK(top1.rate.status == OD_METRIC_DEFINED);
    OD_CHECK(top1.rate.value == 1.5 / 3.0);
}

static void group_table_counts_per_key(void)
{
    const int64_t keys[7] = {5, 2, 5, 9, 2, 2, -1};
    const uint8_t correct[7] = {1, 0, 1, 1, 1, 0, 0};
    od_group_table table;
    OD_CHECK(od_group_table_build(keys, correct, 7, &table, NULL) == 0);
    OD_CHECK(table.count == 4);
    if (table.count == 4) {
        const int64_t want_keys[4] = {-1, 2, 5, 9};
        const int64_t want_correct[4] = {0, 1, 2, 1};
        const int64_t want_total[4] = {1, 3, 2, 1};
        for (int r = 0; r < 4; r++) {
            OD_CHECK(table.keys[r] == want_keys[r]);
            OD_CHECK(table.correct[r] == want_correct[r]);
            OD_CHECK(table.total[r] == want_total[r]);
        }
    }
    od_group_table_free(&table);
    OD_CHECK(od_group_table_build(NULL, NULL, 0, &table, NULL) == 0);
    OD_CHECK(table.count == 0);
    od_group_table_free(&table);
}

/* Scenes of `per_scene` objects, one anomalous, whose scores are
 * N(separation, 1) for the anomalous object and N(0, 1) otherwise. The
 * true AUROC is Phi(separation / sqrt 2). */
typedef struct synthetic {
    float *scores;
    uint8_t *labels;
    int64_t *offsets;
    od_eval_set set;
} synthetic;

static synthetic make_synthetic(int64_t scenes, int per_scene, float separation, uint64_t seed)
{
    synthetic s;
    int64_t n = scenes * per_scene;
    s.scores = malloc((size_t)n * sizeof *s.scores);
    s.labels = malloc((size_t)n);
    s.offsets = malloc((size_t)(scenes + 1) * sizeof *s.offsets);
    od_rng rng;
    od_rng_seed(&rng, seed);
    for (int64_t k = 0; k <= scenes; k++)
        s.offsets[k] = k * per_scene;
    for (int64_t i = 0; i < n; i++) {
        s.labels[i] = i % per_scene == 0;
        s.scores[i] = od_rng_normal(&rng) + (s.labels[i] ? separation : 0.0f);
    }
    s.set = (od_eval_set){n, s.scores, s.labels, scenes, s.offsets, NULL};
    return s;
}

static void free_synthetic(synthetic *s)
{
    free(s->scores);
    free(s->labels);
    free(s->offsets);
}

static void percentiles_match_numpy(void)
{
    od_safetensors *st = od_test_load_reference("metrics_percentile");
    if (st == NULL)
        return;
    int64_t n = 0, q_count = 0, want_count = 0;
    double *values = read_f64(st, "values_f64", &n);
    double *quantiles = read_f64(st, "quantiles_f64", &q_count);
    double *want = read_f64(st, "percentiles_f64", &want_count);
    if (values != NULL && quantiles != NULL && want != NULL && q_count == want_count) {
        /* numpy computes the position with q * 100 / 100, so allow a few ulps. */
        for (int64_t k = 0; k < q_count; k++)
            OD_CHECK(fabs(od_percentile_sorted(values, n, quantiles[k]) - want[k]) <= 1e-14);
    }
    const double one[1] = {2.5};
    OD_CHECK(od_percentile_sorted(one, 1, 0.975) == 2.5);
    free(values);
    free(quantiles);
    free(want);
    od_safetensors_free(st);
}

static void bootstrap_is_deterministic(void)
{
    synthetic s = make_synthetic(200, 4, 1.0f, 3);
    od_interval first, again, other, one_thread;
    OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_POOLED_AUROC, 500, 0.95, 42, &first, NULL) == 0);
    OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_POOLED_AUROC, 500, 0.95, 42, &again, NULL) == 0);
    OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_POOLED_AUROC, 500, 0.95, 43, &other, NULL) == 0);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_POOLED_AUROC, 500, 0.95, 42, &one_thread, NULL) == 0);
    omp_set_num_threads(threads);
    OD_CHECK(first.lower == again.lower && first.upper == again.upper);
    OD_CHECK(first.lower == one_thread.lower && first.upper == one_thread.upper);
    OD_CHECK(first.lower != other.lower || first.upper != other.upper);
    OD_CHECK(first.resamples_used == 500 && first.resamples_skipped == 0);
    OD_CHECK(first.lower < first.estimate.value && first.estimate.value < first.upper);
    free_synthetic(&s);
}

static void bootstrap_covers_true_auroc(void)
{
    const double separation = 1.0;
    const double truth = 0.5 * erfc(-separation / 2.0); /* Phi(d / sqrt 2) */
    double widths[2];
    const int64_t scene_counts[2] = {250, 4000};
    for (int k = 0; k < 2; k++) {
        synthetic s = make_synthetic(scene_counts[k], 5, (float)separation, 100 + (uint64_t)k);
        od_interval pooled, scene_mean;
        OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_POOLED_AUROC, 1000, 0.95, 7, &pooled, NULL) == 0);
        OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_SCENE_AUROC, 1000, 0.95, 7, &scene_mean, NULL) == 0);
        OD_CHECK(pooled.lower <= truth && truth <= pooled.upper);
        OD_CHECK(scene_mean.lower <= truth && truth <= scene_mean.upper);
        if (!(pooled.lower <= truth && truth <= pooled.upper))
            printf("  %lld scenes: pooled CI [%.4f, %.4f], truth %.4f\n", (long long)scene_counts[k], pooled.lower,
                   pooled.upper, truth);
        widths[k] = pooled.upper - pooled.lower;
        free_synthetic(&s);
    }
    /* Sixteen times the scenes: the width should shrink about fourfold. */
    OD_CHECK(widths[1] < widths[0] / 2.5);
}

static void bootstrap_one_class_scenes(void)
{
    const float scores[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    const uint8_t labels[4] = {0, 0, 0, 0};
    const int64_t offsets[3] = {0, 2, 4};
    od_eval_set set = {4, scores, labels, 2, offsets, NULL};
    od_interval interval;
    OD_CHECK(od_bootstrap_ci(&set, OD_BOOT_POOLED_AUROC, 50, 0.95, 1, &interval, NULL) == 0);
    OD_CHECK(interval.estimate.status == OD_METRIC_UNDEFINED);
    OD_CHECK(interval.resamples_used == 0 && interval.resamples_skipped == 50);
    OD_CHECK(!isnan(interval.lower) && !isnan(interval.upper));
    od_error err;
    OD_CHECK(od_bootstrap_ci(&set, OD_BOOT_POOLED_AUROC, 0, 0.95, 1, &interval, &err) == -1);
    OD_CHECK(strstr(err.message, "resamples") != NULL);
    OD_CHECK(od_bootstrap_ci(&set, OD_BOOT_POOLED_AUROC, 10, 1.5, 1, &interval, &err) == -1);
    OD_CHECK(strstr(err.message, "level") != NULL);
}

static void bootstrap_accuracy_and_top1(void)
{
    synthetic s = make_synthetic(400, 4, 1.5f, 21);
    uint8_t *correct = malloc((size_t)s.set.count);
    for (int64_t i = 0; i < s.set.count; i++)
        correct[i] = (s.scores[i] > 0.75f) == (s.labels[i] != 0);
    od_error err;
    od_interval interval;
    OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_ACCURACY, 200, 0.95, 3, &interval, &err) == -1);
    OD_CHECK(strstr(err.message, "correct flags are missing") != NULL);

    s.set.correct = correct;
    od_metric accuracy = od_mean_correct(correct, s.set.count);
    OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_ACCURACY, 400, 0.95, 3, &interval, &err) == 0);
    OD_CHECK(interval.estimate.status == OD_METRIC_DEFINED);
    OD_CHECK(interval.estimate.value == accuracy.value);
    OD_CHECK(interval.lower < accuracy.value && accuracy.value < interval.upper);
    OD_CHECK(interval.upper - interval.lower < 0.1);

    od_top1 top1;
    OD_CHECK(od_top1_hit_rate(&s.set, &top1, NULL) == 0);
    OD_CHECK(od_bootstrap_ci(&s.set, OD_BOOT_TOP1, 400, 0.95, 3, &interval, &err) == 0);
    OD_CHECK(fabs(interval.estimate.value - top1.rate.value) <= 1e-15);
    OD_CHECK(interval.lower < top1.rate.value && top1.rate.value < interval.upper);
    OD_CHECK(interval.resamples_used == 400);
    free(correct);
    free_synthetic(&s);
}

static void paired_bootstrap_compares(void)
{
    synthetic strong = make_synthetic(300, 4, 2.0f, 5);
    synthetic weak = make_synthetic(300, 4, 0.5f, 6);
    od_paired_comparison same, better;
    OD_CHECK(od_bootstrap_paired(&strong.set, &strong.set, OD_BOOT_POOLED_AUROC, 400, 0.95, 9, &same, NULL) == 0);
    OD_CHECK(same.difference.status == OD_METRIC_DEFINED && same.difference.value == 0.0);
    OD_CHECK(same.lower == 0.0 && same.upper == 0.0 && same.fraction_a_better == 0.0);

    OD_CHECK(od_bootstrap_paired(&strong.set, &weak.set, OD_BOOT_SCENE_AUROC, 400, 0.95, 9, &better, NULL) == 0);
    OD_CHECK(better.difference.value > 0.2);
    OD_CHECK(better.lower > 0.0 && better.lower < better.difference.value);
    OD_CHECK(better.upper > better.difference.value);
    OD_CHECK(better.fraction_a_better == 1.0);
    OD_CHECK(better.resamples_used == 400);

    synthetic fewer = make_synthetic(299, 4, 0.5f, 6);
    od_error err;
    OD_CHECK(od_bootstrap_paired(&strong.set, &fewer.set, OD_BOOT_POOLED_AUROC, 10, 0.95, 9, &better, &err) == -1);
    OD_CHECK(strstr(err.message, "300 scenes") != NULL);
    free_synthetic(&strong);
    free_synthetic(&weak);
    free_synthetic(&fewer);
}

static char *read_text(const char *path)
{
    FILE *stream = fopen(path, "rb");
    if (stream == NULL)
        return NULL;
    fseek(stream, 0, SEEK_END);
    long size = ftell(stream);
    fseek(stream, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, stream);
    text[got] = '\0';
    fclose(stream);
    return text;
}

static int count_occurrences(const char *text, const char *needle)
{
    int count = 0;
    for (const char *at = strstr(text, needle); at != NULL; at = strstr(at + 1, needle))
        count++;
    return count;
}

static int count_directory_entries(const char *directory)
{
    DIR *dir = opendir(directory);
    if (dir == NULL)
        return -1;
    int count = 0;
    for (struct dirent *entry = readdir(dir); entry != NULL; entry = readdir(dir))
        count += strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
    closedir(dir);
    return count;
}

static void roc_svg_writes_curves(void)
{
    const float scores[6] = {0.9f, 0.8f, 0.8f, 0.3f, 0.2f, 0.1f};
    const uint8_t labels[6] = {1, 0, 1, 0, 1, 0};
    const uint8_t normal[6] = {0, 0, 0, 0, 0, 0};
    od_roc_curve curve, empty;
    od_metric_status status;
    od_metric auroc, undefined;
    OD_CHECK(od_roc_curve_compute(scores, labels, 6, &curve, &status, NULL) == 0);
    OD_CHECK(curve.count == 6);
    OD_CHECK(od_auroc(scores, labels, 6, &auroc, NULL) == 0);
    OD_CHECK(auroc.value == 6.5 / 9.0); /* 3 + 2.5 (one tie) + 1 of 9 pairs */
    OD_CHECK(od_roc_curve_compute(scores, normal, 6, &empty, &status, NULL) == 0);
    OD_CHECK(od_auroc(scores, normal, 6, &undefined, NULL) == 0);
    od_roc_series series[2] = {{&curve, "compare <k=3> & \"mid\"", auroc}, {&empty, "normal only", undefined}};

    const char *directory = od_test_temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/roc.svg", directory);
    od_error err;
    OD_CHECK(od_roc_svg_write(path, series, 2, "ROC, test split", &err) == 0);
    char *text = read_text(path);
    OD_CHECK(text != NULL);
    if (text != NULL) {
        OD_CHECK(strncmp(text, "<?xml", 5) == 0);
        OD_CHECK(strstr(text, "</svg>\n") != NULL);
        OD_CHECK(count_occurrences(text, "<polyline") == 1);
        /* Six points: (0,0) at the lower left of the plot, then one per
         * distinct score; the last is (1,1) at the upper right. */
        OD_CHECK(strstr(text, "points=\"60.00,400.00 ") != NULL);
        OD_CHECK(strstr(text, " 420.00,40.00\"/>") != NULL);
        OD_CHECK(strstr(text, "compare &lt;k=3&gt; &amp; &quot;mid&quot; (AUROC 0.7222)") != NULL);
        OD_CHECK(strstr(text, "normal only (AUROC undefined: one class)") != NULL);
        OD_CHECK(strstr(text, "ROC, test split") != NULL);
    }
    free(text);
    /* Only the final file remains: no temporary file beside it. */
    OD_CHECK(count_directory_entries(directory) == 1);

    /* A missing directory is an error naming the path, and no curve is an error. */
    char missing[1100];
    snprintf(missing, sizeof missing, "%s/no/such/dir/roc.svg", directory);
    OD_CHECK(od_roc_svg_write(missing, series, 2, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "roc.svg") != NULL);
    OD_CHECK(od_roc_svg_write(path, series, 0, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "at least one curve") != NULL);
    od_roc_curve_free(&curve);
    od_roc_curve_free(&empty);
}

int main(void)
{
    OD_RUN(cases_match_sklearn);
    OD_RUN(equal_scores_give_half);
    OD_RUN(one_class_is_undefined);
    OD_RUN(score_range_does_not_matter);
    OD_RUN(bad_inputs_rejected);
    OD_RUN(scenes_match_sklearn);
    OD_RUN(no_scene_with_both_classes);
    OD_RUN(matched_rule_needs_box_and_label);
    OD_RUN(accuracy_logits_match_probabilities);
    OD_RUN(top1_counts_single_odd_scenes);
    OD_RUN(group_table_counts_per_key);
    OD_RUN(percentiles_match_numpy);
    OD_RUN(bootstrap_is_deterministic);
    OD_RUN(bootstrap_covers_true_auroc);
    OD_RUN(bootstrap_one_class_scenes);
    OD_RUN(bootstrap_accuracy_and_top1);
    OD_RUN(paired_bootstrap_compares);
    OD_RUN(roc_svg_writes_curves);
    return od_test_finish();
}
