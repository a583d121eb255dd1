/* Evaluation metrics: rank AUROC, ROC points, accuracy, top-1 hit rate,
 * per-group accuracy and bootstrap intervals over scenes. */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

/* Object counts are kept below 2^31 so that the doubled pair counts of
 * the U statistic (at most count^2 / 2) fit in int64. */
#define OD_METRICS_MAX_OBJECTS INT32_MAX

typedef struct scored_object {
    float score;
    uint8_t label;
    int32_t scene;
} scored_object;

static int compare_score(const void *a, const void *b)
{
    float x = ((const scored_object *)a)->score;
    float y = ((const scored_object *)b)->score;
    return (x > y) - (x < y);
}

static int check_inputs(const float *scores, const uint8_t *labels, int64_t n, const char *what,
                        od_error *err)
{
    if (n < 0 || n > OD_METRICS_MAX_OBJECTS)
        return od_fail(err, "%s: object count %lld out of range [0, %d]", what, (long long)n,
                       OD_METRICS_MAX_OBJECTS);
    if (n > 0 && (scores == NULL || labels == NULL))
        return od_fail(err, "%s: scores or labels missing (NULL) for %lld objects", what, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (isnan(scores[i]))
            return od_fail(err, "%s: score %lld is NaN; expected a number", what, (long long)i);
        if (labels[i] > 1)
            return od_fail(err, "%s: label %lld is %d; expected 0 or 1", what, (long long)i, labels[i]);
    }
    return 0;
}

/* Computes the AUROC of objects sorted by ascending score. Each object
 * counts scene_weight[object.scene] times, or once when scene_weight is
 * NULL, so that a bootstrap resample reuses one sort. Within a
 * tie group every positive beats the negatives below the group and ties
 * half of those in it, so 2U = sum over groups of P_g * (2 N_below + N_g). */
static od_metric auroc_sorted(const scored_object *objects, int64_t n, const int32_t *scene_weight)
{
    int64_t twice_u = 0, positives = 0, negatives = 0;
    int64_t i = 0;
    while (i < n) {
        int64_t group_pos = 0, group_neg = 0;
        int64_t j = i;
        while (j < n && objects[j].score == objects[i].score) {
            int64_t w = scene_weight != NULL ? scene_weight[objects[j].scene] : 1;
            if (objects[j].label)
                group_pos += w;
            else
                group_neg += w;
            j++;
        }
        twice_u += group_pos * (2 * negatives + group_neg);
        positives += group_pos;
        negatives += group_neg;
        i = j;
    }
    od_metric out = {0.0, OD_METRIC_UNDEFINED};
    if (positives > 0 && negatives > 0) {
        out.value = (double)twice_u / (2.0 * (double)positives * (double)negatives);
        out.status = OD_METRIC_DEFINED;
    }
    return out;
}

static scored_object *sorted_objects(const float *scores, const uint8_t *labels, const int32_t *scenes,
                                     int64_t n, od_error *err)
{
    scored_object *objects = malloc((size_t)(n > 0 ? n : 1) * sizeof *objects);
    if (objects == NULL) {
        od_fail(err, "out of memory for %lld scored objects", (long long)n);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        objects[i].score = scores[i];
        objects[i].label = labels[i];
        objects[i].scene = scenes != NULL ? scenes[i] : 0;
    }
    qsort(objects, (size_t)n, sizeof *objects, compare_score);
    return objects;
}

int od_auroc(const float *scores, const uint8_t *labels, int64_t n, od_metric *out, od_error *err)
{
    if (check_inputs(scores, labels, n, "auroc", err) != 0)
        return -1;
    scored_object *objects = sorted_objects(scores, labels, NULL, n, err);
    if (objects == NULL)
        return -1;
    *out = auroc_sorted(objects, n, NULL);
    free(objects);
    return 0;
}

/* ---- accumulator ---- */

struct od_auroc_acc {
    float *scores;
    uint8_t *labels;
    int64_t count;
    int64_t capacity;
};

od_auroc_acc *od_auroc_new(void)
{
    return calloc(1, sizeof(od_auroc_acc));
}

void od_auroc_free(od_auroc_acc *acc)
{
    if (acc == NULL)
        return;
    free(acc->scores);
    free(acc->labels);
    free(acc);
}

int od_auroc_add(od_auroc_acc *acc, const float *scores, const uint8_t *labels, int64_t n, od_error *err)
{
    if (acc == NULL)
        return od_fail(err, "auroc accumulator: NULL accumulator");
    if (check_inputs(scores, labels, n, "auroc batch", err) != 0)
        return -1;
    if (n > OD_METRICS_MAX_OBJECTS - acc->count)
        return od_fail(err, "auroc accumulator: more than %d objects", OD_METRICS_MAX_OBJECTS);
    if (acc->count + n > acc->capacity) {
        int64_t capacity = acc->capacity > 0 ? acc->capacity : 256;
        while (capacity < acc->count + n)
            capacity *= 2;
        float *grown_scores = realloc(acc->scores, (size_t)capacity * sizeof *grown_scores);
        if (grown_scores == NULL)
            return od_fail(err, "auroc accumulator: out of memory for %lld objects", (long long)capacity);
        acc->scores = grown_scores;
        uint8_t *grown_labels = realloc(acc->labels, (size_t)capacity);
        if (grown_labels == NULL)
            return od_fail(err, "auroc accumulator: out of memory for %lld objects", (long long)capacity);
        acc->labels = grown_labels;
        acc->capacity = capacity;
    }
    if (n > 0) {
        memcpy(acc->scores + acc->count, scores, (size_t)n * sizeof *scores);
        memcpy(acc->labels + acc->count, labels, (size_t)n);
    }
    acc->count += n;
    return 0;
}

int od_auroc_compute(const od_auroc_acc *acc, od_metric *out, od_error *err)
{
    if (acc == NULL)
        return od_fail(err, "auroc accumulator: NULL accumulator");
    return od_auroc(acc->scores, acc->labels, acc->count, out, err);
}

/* ---- scenes ---- */

int od_eval_set_validate(const od_eval_set *set, od_error *err)
{
    if (set == NULL)
        return od_fail(err, "evaluation set: NULL set");
    if (set->scene_count < 0 || set->scene_count > OD_METRICS_MAX_OBJECTS)
        return od_fail(err, "evaluation set: scene count %lld out of range", (long long)set->scene_count);
    if (set->scene_offsets == NULL)
        return od_fail(err, "evaluation set: scene_offsets missing (NULL)");
    if (set->scene_offsets[0] != 0)
        return od_fail(err, "evaluation set: scene_offsets[0] is %lld; expected 0",
                       (long long)set->scene_offsets[0]);
    for (int64_t s = 0; s < set->scene_count; s++) {
        if (set->scene_offsets[s + 1] < set->scene_offsets[s])
            return od_fail(err, "evaluation set: scene_offsets[%lld] = %lld is below scene_offsets[%lld] = %lld",
                           (long long)(s + 1), (long long)set->scene_offsets[s + 1], (long long)s,
                           (long long)set->scene_offsets[s]);
    }
    if (set->scene_offsets[set->scene_count] != set->count)
        return od_fail(err, "evaluation set: last scene offset is %lld; expected the object count %lld",
                       (long long)set->scene_offsets[set->scene_count], (long long)set->count);
    return check_inputs(set->scores, set->labels, set->count, "evaluation set", err);
}

static int32_t *object_scenes(const od_eval_set *set, od_error *err)
{
    int32_t *scenes = malloc((size_t)(set->count > 0 ? set->count : 1) * sizeof *scenes);
    if (scenes == NULL) {
        od_fail(err, "out of memory for %lld scene indices", (long long)set->count);
        return NULL;
    }
    for (int64_t s = 0; s < set->scene_count; s++)
        for (int64_t i = set->scene_offsets[s]; i < set->scene_offsets[s + 1]; i++)
            scenes[i] = (int32_t)s;
    return scenes;
}

/* Writes each scene's AUROC into per_scene (scene_count). */
static int scene_aurocs(const od_eval_set *set, od_metric *per_scene, od_error *err)
{
    for (int64_t s = 0; s < set->scene_count; s++) {
        int64_t begin = set->scene_offsets[s];
        int64_t n = set->scene_offsets[s + 1] - begin;
        if (od_auroc(set->scores + begin, set->labels + begin, n, &per_scene[s], err) != 0)
            return od_fail_context(err, "scene %lld", (long long)s);
    }
    return 0;
}

/* Mean of the defined per-scene values, each counted weight[s] times (or
 * once when weight is NULL); undefined when no scene has a value. */
static od_metric mean_defined(const od_metric *per_scene, int64_t scene_count, const int32_t *weight,
                              int64_t *used)
{
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t s = 0; s < scene_count; s++) {
        if (per_scene[s].status != OD_METRIC_DEFINED)
            continue;
        int64_t w = weight != NULL ? weight[s] : 1;
        sum += (double)w * per_scene[s].value;
        count += w;
    }
    if (used != NULL)
        *used = count;
    od_metric out = {0.0, OD_METRIC_UNDEFINED};
    if (count > 0) {
        out.value = sum / (double)count;
        out.status = OD_METRIC_DEFINED;
    }
    return out;
}

int od_auroc_scenes(const od_eval_set *set, od_scene_auroc *out, od_error *err)
{
    if (od_eval_set_validate(set, err) != 0)
        return -1;
    if (od_auroc(set->scores, set->labels, set->count, &out->pooled, err) != 0)
        return -1;
    od_metric *per_scene = malloc((size_t)(set->scene_count > 0 ? set->scene_count : 1) * sizeof *per_scene);
    if (per_scene == NULL)
        return od_fail(err, "out of memory for %lld scenes", (long long)set->scene_count);
    if (scene_aurocs(set, per_scene, err) != 0) {
        free(per_scene);
        return -1;
    }
    out->scene_mean = mean_defined(per_scene, set->scene_count, NULL, &out->scenes_used);
    out->scenes_skipped = set->scene_count - out->scenes_used;
    free(per_scene);
    return 0;
}

/* ---- ROC curve ---- */

static int compare_score_descending(const void *a, const void *b)
{
    return compare_score(b, a);
}

int od_roc_curve_compute(const float *scores, const uint8_t *labels, int64_t n, od_roc_curve *curve,
                         od_metric_status *status, od_error *err)
{
    memset(curve, 0, sizeof *curve);
    *status = OD_METRIC_UNDEFINED;
    if (check_inputs(scores, labels, n, "roc curve", err) != 0)
        return -1;
    scored_object *objects = sorted_objects(scores, labels, NULL, n, err);
    if (objects == NULL)
        return -1;
    qsort(objects, (size_t)n, sizeof *objects, compare_score_descending);

    int64_t positives = 0, distinct = 0;
    for (int64_t i = 0; i < n; i++) {
        positives += objects[i].label;
        if (i == 0 || objects[i].score != objects[i - 1].score)
            distinct++;
    }
    int64_t negatives = n - positives;
    if (positives == 0 || negatives == 0) {
        free(objects);
        return 0;
    }

    int64_t count = distinct + 1;
    curve->fpr = malloc((size_t)count * sizeof(double));
    curve->tpr = malloc((size_t)count * sizeof(double));
    curve->thresholds = malloc((size_t)count * sizeof(double));
    if (curve->fpr == NULL || curve->tpr == NULL || curve->thresholds == NULL) {
        free(objects);
        od_roc_curve_free(curve);
        return od_fail(err, "roc curve: out of memory for %lld points", (long long)count);
    }
    curve->fpr[0] = 0.0;
    curve->tpr[0] = 0.0;
    curve->thresholds[0] = (double)objects[0].score + 1.0;
    int64_t true_pos = 0, false_pos = 0, point = 1;
    for (int64_t i = 0; i < n; i++) {
        if (objects[i].label)
            true_pos++;
        else
            false_pos++;
        /* A point closes after the last object of each tie group. */
        if (i + 1 == n || objects[i + 1].score != objects[i].score) {
            curve->fpr[point] = (double)false_pos / (double)negatives;
            curve->tpr[point] = (double)true_pos / (double)positives;
            curve->thresholds[point] = (double)objects[i].score;
            point++;
        }
    }
    curve->count = count;
    *status = OD_METRIC_DEFINED;
    free(objects);
    return 0;
}

void od_roc_curve_free(od_roc_curve *curve)
{
    if (curve == NULL)
        return;
    free(curve->fpr);
    free(curve->tpr);
    free(curve->thresholds);
    memset(curve, 0, sizeof *curve);
}

/* ---- accuracy ---- */

int od_accuracy(const float *scores, const uint8_t *labels, int64_t n, float threshold, od_metric *out,
                od_error *err)
{
    if (isnan(threshold))
        return od_fail(err, "accuracy: threshold is NaN; expected a number");
    if (check_inputs(scores, labels, n, "accuracy", err) != 0)
        return -1;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        uint8_t predicted = scores[i] > threshold ? 1 : 0;
        correct += predicted == labels[i];
    }
    out->status = n > 0 ? OD_METRIC_DEFINED : OD_METRIC_UNDEFINED;
    out->value = n > 0 ? (double)correct / (double)n : 0.0;
    return 0;
}

void od_correct_matched(const uint8_t *matched, const uint8_t *predicted, const uint8_t *labels, int64_t n,
                        uint8_t *correct)
{
    for (int64_t i = 0; i < n; i++)
        correct[i] = (matched[i] != 0 && predicted[i] == labels[i]) ? 1 : 0;
}

od_metric od_mean_correct(const uint8_t *correct, int64_t n)
{
    od_metric out = {0.0, OD_METRIC_UNDEFINED};
    if (n <= 0)
        return out;
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += correct[i] != 0;
    out.value = (double)sum / (double)n;
    out.status = OD_METRIC_DEFINED;
    return out;
}

/* ---- top-1 and groups ---- */

/* Returns scene s's top-1 hit (1, 1/k on a k-way tie at the top, or 0),
 * undefined unless the scene holds exactly one anomalous object. */
static od_metric scene_top1(const od_eval_set *set, int64_t s)
{
    od_metric out = {0.0, OD_METRIC_UNDEFINED};
    int64_t begin = set->scene_offsets[s], end = set->scene_offsets[s + 1];
    int64_t anomalous = 0, odd = -1;
    for (int64_t i = begin; i < end; i++) {
        if (set->labels[i]) {
            anomalous++;
            odd = i;
        }
    }
    if (anomalous != 1)
        return out;
    float top = set->scores[begin];
    for (int64_t i = begin; i < end; i++)
        top = set->scores[i] > top ? set->scores[i] : top;
    int64_t tied = 0;
    for (int64_t i = begin; i < end; i++)
        tied += set->scores[i] == top;
    out.value = set->scores[odd] == top ? 1.0 / (double)tied : 0.0;
    out.status = OD_METRIC_DEFINED;
    return out;
}

int od_top1_hit_rate(const od_eval_set *set, od_top1 *out, od_error *err)
{
    if (od_eval_set_validate(set, err) != 0)
        return -1;
    double hits = 0.0;
    int64_t used = 0;
    for (int64_t s = 0; s < set->scene_count; s++) {
        od_metric hit = scene_top1(set, s);
        if (hit.status != OD_METRIC_DEFINED)
            continue;
        hits += hit.value;
        used++;
    }
    out->scenes_used = used;
    out->rate.status = used > 0 ? OD_METRIC_DEFINED : OD_METRIC_UNDEFINED;
    out->rate.value = used > 0 ? hits / (double)used : 0.0;
    return 0;
}

typedef struct keyed_flag {
    int64_t key;
    uint8_t correct;
} keyed_flag;

static int compare_key(const void *a, const void *b)
{
    int64_t x = ((const keyed_flag *)a)->key;
    int64_t y = ((const keyed_flag *)b)->key;
    return (x > y) - (x < y);
}

int od_group_table_build(const int64_t *keys, const uint8_t *correct, int64_t n, od_group_table *table,
                         od_error *err)
{
    memset(table, 0, sizeof *table);
    if (n < 0)
        return od_fail(err, "group table: object count %lld is negative", (long long)n);
    if (n > 0 && (keys == NULL || correct == NULL))
        return od_fail(err, "group table: keys or correct flags missing (NULL) for %lld objects", (long long)n);
    keyed_flag *items = malloc((size_t)(n > 0 ? n : 1) * sizeof *items);
    if (items == NULL)
        return od_fail(err, "group table: out of memory for %lld objects", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        items[i].key = keys[i];
        items[i].correct = correct[i] != 0;
    }
    qsort(items, (size_t)n, sizeof *items, compare_key);
    int64_t rows = 0;
    for (int64_t i = 0; i < n; i++)
        rows += i == 0 || items[i].key != items[i - 1].key;
    size_t bytes = (size_t)(rows > 0 ? rows : 1) * sizeof(int64_t);
    table->keys = malloc(bytes);
    table->correct = calloc(1, bytes);
    table->total = calloc(1, bytes);
    if (table->keys == NULL || table->correct == NULL || table->total == NULL) {
        free(items);
        od_group_table_free(table);
        return od_fail(err, "group table: out of memory for %lld rows", (long long)rows);
    }
    int64_t row = -1;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || items[i].key != items[i - 1].key) {
            row++;
            table->keys[row] = items[i].key;
        }
        table->correct[row] += items[i].correct;
        table->total[row]++;
    }
    table->count = rows;
    free(items);
    return 0;
}

void od_group_table_free(od_group_table *table)
{
    if (table == NULL)
        return;
    free(table->keys);
    free(table->correct);
    free(table->total);
    memset(table, 0, sizeof *table);
}

/* ---- bootstrap ---- */

/* What a resample needs of one set, computed once: the objects sorted by
 * score with their scene, each scene's own AUROC and top-1 hit, and each
 * scene's count of correct objects. */
typedef struct boot_data {
    const od_eval_set *set;
    scored_object *sorted;
    od_metric *per_scene;
    od_metric *per_scene_top1;
    int64_t *per_scene_correct;
} boot_data;

static void boot_data_free(boot_data *data)
{
    free(data->sorted);
    free(data->per_scene);
    free(data->per_scene_top1);
    free(data->per_scene_correct);
}

static int boot_data_init(boot_data *data, const od_eval_set *set, od_boot_metric metric, od_error *err)
{
    memset(data, 0, sizeof *data);
    data->set = set;
    if (od_eval_set_validate(set, err) != 0)
        return -1;
    if (metric == OD_BOOT_ACCURACY && set->count > 0 && set->correct == NULL)
        return od_fail(err, "bootstrap of accuracy: the set's correct flags are missing (NULL)");
    int32_t *scenes = object_scenes(set, err);
    if (scenes == NULL)
        return -1;
    data->sorted = sorted_objects(set->scores, set->labels, scenes, set->count, err);
    free(scenes);
    size_t scene_slots = (size_t)(set->scene_count > 0 ? set->scene_count : 1);
    data->per_scene = malloc(scene_slots * sizeof(od_metric));
    data->per_scene_top1 = malloc(scene_slots * sizeof(od_metric));
    data->per_scene_correct = calloc(scene_slots, sizeof(int64_t));
    if (data->sorted == NULL || data->per_scene == NULL || data->per_scene_top1 == NULL ||
        data->per_scene_correct == NULL) {
        boot_data_free(data);
        return od_fail(err, "bootstrap: out of memory for %lld scenes", (long long)set->scene_count);
    }
    if (scene_aurocs(set, data->per_scene, err) != 0) {
        boot_data_free(data);
        return -1;
    }
    for (int64_t s = 0; s < set->scene_count; s++) {
        data->per_scene_top1[s] = scene_top1(set, s);
        if (set->correct == NULL)
            continue;
        for (int64_t i = set->scene_offsets[s]; i < set->scene_offsets[s + 1]; i++)
            data->per_scene_correct[s] += set->correct[i] != 0;
    }
    return 0;
}

/* Returns the fraction of correct objects with each scene counted
 * weight[s] times (once when weight is NULL). */
static od_metric weighted_accuracy(const boot_data *data, const int32_t *weight)
{
    const od_eval_set *set = data->set;
    int64_t correct = 0, total = 0;
    for (int64_t s = 0; s < set->scene_count; s++) {
        int64_t w = weight != NULL ? weight[s] : 1;
        correct += w * data->per_scene_correct[s];
        total += w * (set->scene_offsets[s + 1] - set->scene_offsets[s]);
    }
    od_metric out = {0.0, OD_METRIC_UNDEFINED};
    if (total > 0) {
        out.value = (double)correct / (double)total;
        out.status = OD_METRIC_DEFINED;
    }
    return out;
}

/* Computes the metric with each scene counted weight[s] times; weight
 * NULL means the original set. */
static od_metric boot_metric(const boot_data *data, od_boot_metric metric, const int32_t *weight)
{
    switch (metric) {
    case OD_BOOT_POOLED_AUROC:
        return auroc_sorted(data->sorted, data->set->count, weight);
    case OD_BOOT_ACCURACY:
        return weighted_accuracy(data, weight);
    case OD_BOOT_TOP1:
        return mean_defined(data->per_scene_top1, data->set->scene_count, weight, NULL);
    case OD_BOOT_SCENE_AUROC:
    default:
        return mean_defined(data->per_scene, data->set->scene_count, weight, NULL);
    }
}

/* Draws resample b's scene multiplicities into weight (scene_count). */
static void draw_scenes(const od_rng *base, int64_t b, int64_t scene_count, int32_t *weight)
{
    od_rng rng = od_rng_fork(base, (uint64_t)b);
    memset(weight, 0, (size_t)scene_count * sizeof *weight);
    for (int64_t k = 0; k < scene_count; k++)
        weight[od_rng_below(&rng, (uint64_t)scene_count)]++;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double od_percentile_sorted(const double *sorted, int64_t n, double q)
{
    double position = q * (double)(n - 1);
    int64_t below = (int64_t)floor(position);
    if (below >= n - 1)
        return sorted[n - 1];
    double fraction = position - (double)below;
    return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
}

static int check_boot_args(int64_t resamples, double level, od_boot_metric metric, od_error *err)
{
    if (resamples < 1 || resamples > 100000000)
        return od_fail(err, "bootstrap: resamples is %lld; expected 1 to 100000000", (long long)resamples);
    if (!(level > 0.0 && level < 1.0))
        return od_fail(err, "bootstrap: level is %g; expected a value in (0, 1), e.g. 0.95", level);
    if (metric != OD_BOOT_POOLED_AUROC && metric != OD_BOOT_SCENE_AUROC && metric != OD_BOOT_ACCURACY &&
        metric != OD_BOOT_TOP1)
        return od_fail(err, "bootstrap: unknown metric %d", (int)metric);
    return 0;
}

/* Runs the resamples for one or two sets (b may be NULL). For each
 * resample r writes value[r] (metric(a) - metric(b) when paired) and
 * defined[r]; a_better[r] is 1 when metric(a) > metric(b). Resamples run
 * in parallel, each from its own forked stream, so results do not depend
 * on the thread count. */
static int run_resamples(const boot_data *a, const boot_data *b, od_boot_metric metric, int64_t resamples,
                         uint64_t seed, double *value, uint8_t *defined, uint8_t *a_better, od_error *err)
{
    int64_t scene_count = a->set->scene_count;
    od_rng base;
    od_rng_seed(&base, seed);
    int failed = 0;
#pragma omp parallel
    {
        int32_t *weight = malloc((size_t)(scene_count > 0 ? scene_count : 1) * sizeof *weight);
        if (weight == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < resamples; r++) {
            if (weight == NULL)
                continue;
            draw_scenes(&base, r, scene_count, weight);
            od_metric ma = boot_metric(a, metric, weight);
            od_metric mb = b != NULL ? boot_metric(b, metric, weight) : (od_metric){0.0, OD_METRIC_DEFINED};
            defined[r] = ma.status == OD_METRIC_DEFINED && mb.status == OD_METRIC_DEFINED;
            value[r] = defined[r] ? ma.value - mb.value : 0.0;
            a_better[r] = defined[r] && ma.value > mb.value;
        }
        free(weight);
    }
    if (failed)
        return od_fail(err, "bootstrap: out of memory for %lld scene weights", (long long)scene_count);
    return 0;
}

/* Sorts the defined values in place at the front of value and returns
 * their count. */
static int64_t compact_defined(double *value, const uint8_t *defined, int64_t resamples)
{
    int64_t used = 0;
    for (int64_t r = 0; r < resamples; r++)
        if (defined[r])
            value[used++] = value[r];
    qsort(value, (size_t)used, sizeof *value, compare_double);
    return used;
}

int od_bootstrap_ci(const od_eval_set *set, od_boot_metric metric, int64_t resamples, double level,
                    uint64_t seed, od_interval *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    out->estimate.status = OD_METRIC_UNDEFINED;
    if (check_boot_args(resamples, level, metric, err) != 0)
        return -1;
    boot_data data;
    if (boot_data_init(&data, set, metric, err) != 0)
        return -1;
    double *value = malloc((size_t)resamples * sizeof *value);
    uint8_t *defined = malloc((size_t)resamples * 2);
    if (value == NULL || defined == NULL) {
        free(value);
        free(defined);
        boot_data_free(&data);
        return od_fail(err, "bootstrap: out of memory for %lld resamples", (long long)resamples);
    }
    int rc = run_resamples(&data, NULL, metric, resamples, seed, value, defined, defined + resamples, err);
    if (rc == 0) {
        out->estimate = boot_metric(&data, metric, NULL);
        int64_t used = compact_defined(value, defined, resamples);
        out->resamples_used = used;
        out->resamples_skipped = resamples - used;
        if (used > 0) {
            out->lower = od_percentile_sorted(value, used, (1.0 - level) / 2.0);
            out->upper = od_percentile_sorted(value, used, (1.0 + level) / 2.0);
        }
    }
    free(value);
    free(defined);
    boot_data_free(&data);
    return rc;
}

int od_bootstrap_paired(const od_eval_set *a, const od_eval_set *b, od_boot_metric metric, int64_t resamples,
                        double level, uint64_t seed, od_paired_comparison *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    out->difference.status = OD_METRIC_UNDEFINED;
    if (check_boot_args(resamples, level, metric, err) != 0)
        return -1;
    if (a == NULL || b == NULL)
        return od_fail(err, "paired bootstrap: NULL result set");
    if (a->scene_count != b->scene_count)
        return od_fail(err, "paired bootstrap: set A has %lld scenes and set B %lld; expected the same scenes",
                       (long long)a->scene_count, (long long)b->scene_count);
    boot_data data_a, data_b;
    if (boot_data_init(&data_a, a, metric, err) != 0)
        return od_fail_context(err, "paired bootstrap, set A");
    if (boot_data_init(&data_b, b, metric, err) != 0) {
        boot_data_free(&data_a);
        return od_fail_context(err, "paired bootstrap, set B");
    }
    double *value = malloc((size_t)resamples * sizeof *value);
    uint8_t *defined = malloc((size_t)resamples * 2);
    int rc = 0;
    if (value == NULL || defined == NULL)
        rc = od_fail(err, "paired bootstrap: out of memory for %lld resamples", (long long)resamples);
    if (rc == 0)
        rc = run_resamples(&data_a, &data_b, metric, resamples, seed, value, defined, defined + resamples, err);
    if (rc == 0) {
        od_metric ma = boot_metric(&data_a, metric, NULL);
        od_metric mb = boot_metric(&data_b, metric, NULL);
        if (ma.status == OD_METRIC_DEFINED && mb.status == OD_METRIC_DEFINED) {
            out->difference.value = ma.value - mb.value;
            out->difference.status = OD_METRIC_DEFINED;
        }
        int64_t better = 0;
        for (int64_t r = 0; r < resamples; r++)
            better += defined[resamples + r];
        int64_t used = compact_defined(value, defined, resamples);
        out->resamples_used = used;
        out->resamples_skipped = resamples - used;
        if (used > 0) {
            out->lower = od_percentile_sorted(value, used, (1.0 - level) / 2.0);
            out->upper = od_percentile_sorted(value, used, (1.0 + level) / 2.0);
            out->fraction_a_better = (double)better / (double)used;
        }
    }
    free(value);
    free(defined);
    boot_data_free(&data_a);
    boot_data_free(&data_b);
    return rc;
}

static od_metric weighted_ratio(const double *numerator, const double *denominator, int64_t scene_count,
                                const int32_t *weight)
{
    double top = 0.0, bottom = 0.0;
    for (int64_t s = 0; s < scene_count; s++) {
        double w = weight != NULL ? (double)weight[s] : 1.0;
        top += w * numerator[s];
        bottom += w * denominator[s];
    }
    od_metric out = {0.0, OD_METRIC_UNDEFINED};
    if (bottom > 0.0) {
        out.value = top / bottom;
        out.status = OD_METRIC_DEFINED;
    }
    return out;
}

int od_bootstrap_ratio(const double *numerator, const double *denominator, int64_t scene_count,
                       int64_t resamples, double level, uint64_t seed, od_interval *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    out->estimate.status = OD_METRIC_UNDEFINED;
    if (check_boot_args(resamples, level, OD_BOOT_ACCURACY, err) != 0)
        return -1;
    if (scene_count < 0 || scene_count > OD_METRICS_MAX_OBJECTS)
        return od_fail(err, "bootstrap of a ratio: scene count %lld out of range [0, %d]", (long long)scene_count,
                       OD_METRICS_MAX_OBJECTS);
    if (scene_count > 0 && (numerator == NULL || denominator == NULL))
        return od_fail(err, "bootstrap of a ratio: numerators or denominators missing (NULL)");
    for (int64_t s = 0; s < scene_count; s++)
        if (!isfinite(numerator[s]) || !isfinite(denominator[s]) || denominator[s] < 0.0)
            return od_fail(err,
                           "bootstrap of a ratio: scene %lld has numerator %g and denominator %g; expected "
                           "finite values and a denominator >= 0",
                           (long long)s, numerator[s], denominator[s]);
    double *value = malloc((size_t)resamples * sizeof *value);
    uint8_t *defined = malloc((size_t)resamples);
    if (value == NULL || defined == NULL) {
        free(value);
        free(defined);
        return od_fail(err, "bootstrap: out of memory for %lld resamples", (long long)resamples);
    }
    od_rng base;
    od_rng_seed(&base, seed);
    int failed = 0;
#pragma omp parallel
    {
        int32_t *weight = malloc((size_t)(scene_count > 0 ? scene_count : 1) * sizeof *weight);
        if (weight == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < resamples; r++) {
            if (weight == NULL)
                continue;
            draw_scenes(&base, r, scene_count, weight);
            od_metric m = weighted_ratio(numerator, denominator, scene_count, weight);
            defined[r] = m.status == OD_METRIC_DEFINED;
            value[r] = m.value;
        }
        free(weight);
    }
    if (failed) {
        free(value);
        free(defined);
        return od_fail(err, "bootstrap: out of memory for %lld scene weights", (long long)scene_count);
    }
    out->estimate = weighted_ratio(numerator, denominator, scene_count, NULL);
    int64_t used = compact_defined(value, defined, resamples);
    out->resamples_used = used;
    out->resamples_skipped = resamples - used;
    if (used > 0) {
        out->lower = od_percentile_sorted(value, used, (1.0 - level) / 2.0);
        out->upper = od_percentile_sorted(value, used, (1.0 + level) / 2.0);
    }
    free(value);
    free(defined);
    return 0;
}
