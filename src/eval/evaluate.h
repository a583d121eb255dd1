/* Object-level evaluation of a detector on scenes with ground truth: the
 * predicted boxes of each scene are matched to the true objects, and every
 * true object gets the score, label and overlap that the metrics
 * (eval/metrics.h) take.
 *
 * Matching. A predicted box and a true box may match when their rotated 3D
 * IoU (od_box_iou_3d) exceeds OD_EVAL_IOU_THRESHOLD. Matching is one to one
 * and greedy: all candidate pairs are taken in order of decreasing IoU
 * (ties by true index, then predicted index), and a pair is kept when
 * neither box is matched yet. Above an IoU of 0.5 two predictions rarely
 * compete for one true box, so greedy and Hungarian matching almost always
 * agree, and greedy keeps the best-overlapping pair where they do not.
 *
 * Scoring. The objects that the metrics see are the true objects, so that
 * a detector cannot raise its numbers by finding fewer objects:
 * - a true object matched to a scored prediction takes that score;
 * - a missed object, or one matched to a prediction without a score (a
 *   scene where one object only was found), takes -infinity, the lowest
 *   score: the detector reported nothing odd there. A missed anomalous
 *   object thus ranks below every normal one, and a missed normal object
 *   ranks where a confident "normal" would. The score never depends on the
 *   true label;
 * - an object is correct when it is matched and the prediction's label
 *   (odd or normal) equals the true label, so a missed object is always
 *   wrong;
 * - predicted boxes that match no true object have no label and enter no
 *   object-level metric; they are counted as unmatched predictions.
 *
 * Box mIoU is the mean over true objects of the highest IoU any predicted
 * box of the scene reaches with it (0 when none overlaps), whether or not
 * the pair matched. The object count is right in a scene when the number
 * of predicted boxes equals the number of true objects. */
#ifndef ODDONE_EVAL_EVALUATE_H
#define ODDONE_EVAL_EVALUATE_H

#include <stdint.h>

#include "core/error.h"
#include "eval/metrics.h"
#include "geometry/box.h"

/* A predicted box matches a true one when their IoU exceeds this. */
#define OD_EVAL_IOU_THRESHOLD 0.5

/* The group name of normal objects in the per-kind table. */
#define OD_EVAL_NORMAL_KIND "normal"
/* The group name of anomalous objects whose kind is not known. */
#define OD_EVAL_UNKNOWN_KIND "unknown"

/* One true object of a scene. */
typedef struct od_eval_truth {
    od_box box;
    uint8_t label;    /* 0 normal, 1 anomalous */
    const char *kind; /* anomaly kind, e.g. "crack"; NULL or "" when normal or unknown */
} od_eval_truth;

/* One predicted object of a scene. */
typedef struct od_eval_prediction {
    od_box box;
    int has_score;  /* 0 when the detector could not score the object */
    double score;   /* higher is more anomalous; any finite range */
    uint8_t odd;    /* the detector's label: 1 odd, 0 normal */
} od_eval_prediction;

/* One true object as the metrics see it. */
typedef struct od_eval_object {
    int64_t scene;      /* index into od_eval_results.scenes */
    int truth_index;    /* index among the scene's true objects */
    uint8_t label;      /* 0 normal, 1 anomalous */
    char *kind;         /* anomaly kind, OD_EVAL_NORMAL_KIND or OD_EVAL_UNKNOWN_KIND */
    int prediction;     /* matched prediction's index, -1 when missed */
    double iou;         /* IoU with the matched prediction, 0 when missed */
    double best_iou;    /* highest IoU with any prediction of the scene */
    int has_score;      /* 1 when matched to a scored prediction */
    double score;       /* that prediction's score, 0 otherwise */
    uint8_t predicted;  /* the matched prediction's label, 0 when missed */
    uint8_t correct;    /* matched and predicted == label */
    float eval_score;   /* score the AUROC ranks: the score, or -infinity */
} od_eval_object;

typedef struct od_eval_scene {
    char *name;          /* e.g. the scene's path relative to the dataset */
    int truth_count;
    int predicted_count;
    int matched_count;
    int64_t first_object; /* index into od_eval_results.objects */
} od_eval_scene;

/* The objects of many scenes, with the parallel arrays an od_eval_set
 * points into (od_eval_results_set). */
typedef struct od_eval_results {
    int64_t scene_count;
    od_eval_scene *scenes;
    int64_t object_count;
    od_eval_object *objects;
    float *scores;          /* (object_count) eval_score */
    uint8_t *labels;        /* (object_count) */
    uint8_t *correct;       /* (object_count) */
    int64_t *scene_offsets; /* (scene_count + 1) */
    int64_t scene_capacity, object_capacity;
} od_eval_results;

/* Matches predicted boxes to true boxes as the header describes.
 * truth (truth_count), predicted (predicted_count). Writes, per true
 * object, match[t] (the prediction's index or -1), match_iou[t] (0 when
 * unmatched) and best_iou[t] (highest IoU with any prediction, 0 when there
 * is none). Fails on negative counts or when out of memory. */
int od_eval_match(const od_box *truth, int truth_count, const od_box *predicted, int predicted_count,
                  double threshold, int *match, double *match_iou, double *best_iou, od_error *err);

od_eval_results *od_eval_results_new(void);
void od_eval_results_free(od_eval_results *results);

/* Matches one scene's predictions to its truth and appends the scene and
 * its true objects. Rejects NaN or infinite scores and labels other than 0
 * and 1; on error nothing is appended. */
int od_eval_add_scene(od_eval_results *results, const char *name, const od_eval_truth *truth, int truth_count,
                      const od_eval_prediction *predictions, int predicted_count, od_error *err);

/* Appends a scene whose objects are already built (as read back from
 * objects.csv). scene->first_object and objects[].scene are set here, and
 * the strings are copied. */
int od_eval_add_built_scene(od_eval_results *results, const od_eval_scene *scene, const od_eval_object *objects,
                            int object_count, od_error *err);

/* Points set at the results' arrays; valid until the results change. */
void od_eval_results_set(const od_eval_results *results, od_eval_set *set);

/* Accuracy of the objects of one group (anomaly kind or object count). */
typedef struct od_eval_group {
    char name[64];
    int64_t correct;
    int64_t total;
} od_eval_group;

/* Every figure of an evaluation. Intervals are percentile bootstrap
 * intervals over scenes at OD_EVAL_LEVEL; each one's estimate is the
 * figure on the whole set. */
typedef struct od_eval_summary {
    int64_t scene_count;
    int64_t object_count;
    int64_t anomalous_count;
    int64_t predicted_count;          /* predicted boxes, all scenes */
    int64_t matched_count;            /* true objects matched to a prediction */
    int64_t unmatched_predictions;    /* predicted boxes matched to no true object */
    od_scene_auroc auroc;             /* pooled, and averaged over scenes with both classes */
    od_metric matched_auroc;          /* pooled over matched, scored objects only */
    od_top1 top1;                     /* scenes with one anomalous object */
    od_interval pooled_auroc;
    od_interval scene_auroc;
    od_interval accuracy;
    od_interval top1_rate;
    od_interval miou;
    od_interval count_accuracy;       /* fraction of scenes with the object count right */
    od_interval recall;               /* fraction of true objects matched */
    int kind_count;
    od_eval_group *kinds;             /* sorted by name; OD_EVAL_NORMAL_KIND among them */
    int size_count;
    od_eval_group *sizes;             /* per true object count of the scene, ascending */
} od_eval_summary;

#define OD_EVAL_LEVEL 0.95

/* Computes every figure; resamples >= 1 bootstrap draws from seed. */
int od_eval_summarize(const od_eval_results *results, int64_t resamples, uint64_t seed, od_eval_summary *out,
                      od_error *err);
void od_eval_summary_free(od_eval_summary *summary);

/* Picks `count` distinct views out of view_count for the scene called
 * `name`: a partial Fisher-Yates shuffle of 0 .. view_count - 1 driven by
 * od_rng_fork(seed, FNV-1a 64 of name), whose first `count` entries are
 * written to views in ascending order. The same seed and name give the same
 * views, whatever other scenes are evaluated and in which order. Fails when
 * count is not in [1, view_count]. */
int od_eval_pick_views(uint64_t seed, const char *name, int view_count, int count, int *views, od_error *err);

#endif
