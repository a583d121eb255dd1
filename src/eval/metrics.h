/* Evaluation metrics for object-level anomaly scores.
 *
 * Scores are floats of any range (probabilities, logits, distances): a
 * higher score means "more anomalous". Labels are 0 (normal) or 1
 * (anomalous). AUROC is computed from ranks (the Mann-Whitney U statistic,
 * tied scores count half), in integer pair counts and one final division,
 * so it does not depend on the range of the scores or on the order in which
 * they arrive.
 *
 * A set that holds one class only has no AUROC. Such a result carries
 * OD_METRIC_UNDEFINED and a value of 0, never 0.5 or NaN; callers count
 * these and report them as skipped.
 *
 * Scene-level metrics take an od_eval_set: objects stored scene after
 * scene, with scene s owning objects [scene_offsets[s], scene_offsets[s+1]). */
#ifndef ODDONE_EVAL_METRICS_H
#define ODDONE_EVAL_METRICS_H

#include <stdint.h>

#include "core/error.h"

typedef enum od_metric_status {
    OD_METRIC_DEFINED = 0,
    OD_METRIC_UNDEFINED = 1, /* one class only, or no objects */
} od_metric_status;

/* A metric value with its status; value is 0 when status is undefined. */
typedef struct od_metric {
    double value;
    od_metric_status status;
} od_metric;

/* Objects of many scenes. scores (count), labels (count, 0 or 1),
 * scene_offsets (scene_count + 1, nondecreasing, first 0, last count).
 * correct (count, 0 or 1; see od_correct_matched) is needed only for the
 * bootstrap of accuracy and may be NULL otherwise. */
typedef struct od_eval_set {
    int64_t count;
    const float *scores;
    const uint8_t *labels;
    int64_t scene_count;
    const int64_t *scene_offsets;
    const uint8_t *correct;
} od_eval_set;

/* ---- AUROC ---- */

/* Computes the AUROC of scores (n) against labels (n). Rejects NaN scores
 * and labels other than 0 and 1; infinities are ordered as usual. */
int od_auroc(const float *scores, const uint8_t *labels, int64_t n, od_metric *out, od_error *err);

/* An accumulator that gives the same AUROC whether the scores arrive in
 * one call or in many batches. */
typedef struct od_auroc_acc od_auroc_acc;

od_auroc_acc *od_auroc_new(void);
void od_auroc_free(od_auroc_acc *acc);
/* Appends a batch; on error nothing of the batch is kept. */
int od_auroc_add(od_auroc_acc *acc, const float *scores, const uint8_t *labels, int64_t n, od_error *err);
int od_auroc_compute(const od_auroc_acc *acc, od_metric *out, od_error *err);

/* AUROC pooled over all objects of a set, and averaged over the scenes that
 * hold both classes. */
typedef struct od_scene_auroc {
    od_metric pooled;
    od_metric scene_mean;
    int64_t scenes_used;    /* scenes with both classes */
    int64_t scenes_skipped; /* scenes with one class or no objects */
} od_scene_auroc;

/* Checks the set's offsets, scores and labels. */
int od_eval_set_validate(const od_eval_set *set, od_error *err);

int od_auroc_scenes(const od_eval_set *set, od_scene_auroc *out, od_error *err);

/* ---- ROC curve ---- */

/* ROC points as scikit-learn 1.2's roc_curve(drop_intermediate=False):
 * one point per distinct score, from the highest down, after a first point
 * (0, 0) whose threshold is the highest score + 1 (computed in double).
 * Point i counts an object as positive when score >= thresholds[i]. */
typedef struct od_roc_curve {
    int64_t count; /* number of points */
    double *fpr;
    double *tpr;
    double *thresholds;
} od_roc_curve;

/* Fills curve (arrays malloc'ed, freed with od_roc_curve_free). With one
 * class only the status is undefined and the curve is empty (count 0). */
int od_roc_curve_compute(const float *scores, const uint8_t *labels, int64_t n, od_roc_curve *curve,
                         od_metric_status *status, od_error *err);
void od_roc_curve_free(od_roc_curve *curve);

/* ---- Accuracy ---- */

/* Fraction of objects whose predicted class (score > threshold means
 * anomalous) equals the label. Use threshold 0.5 for probabilities and 0
 * for logits: sigmoid(x) > 0.5 exactly when x > 0, so both give the same
 * predictions. Undefined for n == 0. */
int od_accuracy(const float *scores, const uint8_t *labels, int64_t n, float threshold, od_metric *out,
                od_error *err);

/* Writes correct[i] = 1 when matched[i] is nonzero and predicted[i] equals
 * labels[i], else 0. This is the rule of the field: a ground-truth object
 * counts as correct only when a predicted box matched it (the caller
 * decides matches, by rotated 3D IoU > 0.5) and its predicted label is
 * right. All buffers are (n). */
void od_correct_matched(const uint8_t *matched, const uint8_t *predicted, const uint8_t *labels, int64_t n,
                        uint8_t *correct);

/* Mean of correct (n, 0 or 1); undefined for n == 0. */
od_metric od_mean_correct(const uint8_t *correct, int64_t n);

/* ---- Top-1 and groups ---- */

/* Top-1 hit rate over the scenes that hold exactly one anomalous object:
 * a scene scores 1 when its anomalous object has the highest score. When
 * the anomalous object ties with k - 1 others at the top the scene scores
 * 1/k, the expected hit of a random tie break. */
typedef struct od_top1 {
    od_metric rate;
    int64_t scenes_used; /* scenes with exactly one anomalous object */
} od_top1;

int od_top1_hit_rate(const od_eval_set *set, od_top1 *out, od_error *err);

/* Accuracy per group (anomaly kind, object count...): one row per distinct
 * key, rows sorted by key. */
typedef struct od_group_table {
    int64_t count; /* number of rows */
    int64_t *keys;
    int64_t *correct;
    int64_t *total;
} od_group_table;

/* Groups objects by keys (n) and counts correct (n, 0 or 1) per group. */
int od_group_table_build(const int64_t *keys, const uint8_t *correct, int64_t n, od_group_table *table,
                         od_error *err);
void od_group_table_free(od_group_table *table);

/* ---- Bootstrap over scenes ---- */

typedef enum od_boot_metric {
    OD_BOOT_POOLED_AUROC,
    OD_BOOT_SCENE_AUROC,
    OD_BOOT_ACCURACY, /* mean of set->correct over all drawn objects */
    OD_BOOT_TOP1,     /* top-1 hit rate over drawn scenes with one anomaly */
} od_boot_metric;

/* A percentile bootstrap interval. Resamples in which the metric is
 * undefined (for example one class only in the drawn scenes) are left out
 * and counted. */
typedef struct od_interval {
    od_metric estimate; /* the metric on the original set */
    double lower;
    double upper;
    int64_t resamples_used;
    int64_t resamples_skipped;
} od_interval;

/* Draws `resamples` sets of scene_count scenes with replacement, computes
 * the metric on each and returns the (1 - level)/2 and (1 + level)/2
 * percentiles (linear interpolation, as numpy.percentile's default).
 * Resample b draws from od_rng_fork(seed, b), so the result depends on the
 * seed only, not on the number of threads. level is e.g. 0.95. */
int od_bootstrap_ci(const od_eval_set *set, od_boot_metric metric, int64_t resamples, double level,
                    uint64_t seed, od_interval *out, od_error *err);

/* A percentile bootstrap interval of a ratio of per-scene sums,
 * sum(numerator[s]) / sum(denominator[s]) (a mean over objects when the
 * denominators are object counts, over scenes when they are 1). Each
 * resample draws scenes exactly as od_bootstrap_ci does with the same seed,
 * so intervals of different metrics share their resamples. A resample
 * whose denominators sum to 0 is undefined and counted as skipped.
 * numerator and denominator are (scene_count); denominators are >= 0. */
int od_bootstrap_ratio(const double *numerator, const double *denominator, int64_t scene_count,
                       int64_t resamples, double level, uint64_t seed, od_interval *out, od_error *err);

/* Returns the q-quantile (q in [0, 1]) of sorted (n > 0, ascending) with
 * linear interpolation between neighbours, as numpy.percentile's default
 * method; the bootstrap uses it for its interval ends. */
double od_percentile_sorted(const double *sorted, int64_t n, double q);

/* Paired comparison of two result sets on the same scenes: both are drawn
 * with the same scene indices. */
typedef struct od_paired_comparison {
    od_metric difference; /* metric(a) - metric(b) on the original sets */
    double lower;         /* percentile interval of the difference */
    double upper;
    double fraction_a_better; /* resamples with metric(a) > metric(b) */
    int64_t resamples_used;
    int64_t resamples_skipped;
} od_paired_comparison;

int od_bootstrap_paired(const od_eval_set *a, const od_eval_set *b, od_boot_metric metric, int64_t resamples,
                        double level, uint64_t seed, od_paired_comparison *out, od_error *err);

#endif
