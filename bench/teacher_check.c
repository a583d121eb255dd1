/* Measures how well each frozen 2D teacher separates a damaged instance
 * from its intact twins, on scenes that `oddone generate` wrote.
 *
 * For each view and instance, the instance's mask (segmentations/) picks
 * the feature cells it covers: the mask is resized to the teacher's input
 * size, and each cell's coverage is the mask's mean over the stride x
 * stride window around the cell centre (teacher.h gives the centres). The
 * pooled vector is the coverage-weighted mean of the cells' features. A
 * view counts for an instance when its coverage adds up to at least
 * --min-cells cells.
 *
 * Each instance is scored by its distance to the nearest other instance of
 * the same mesh in the same scene, with two rules:
 * - "mean": each instance's pooled vectors are L2-normalised and averaged
 *   over its views; the distance is 1 - cosine of the two averages.
 * - "views": d(a, b) is the mean over a's views of the distance (1 -
 *   cosine) from a's view to b's nearest view, so that a pose of a meets
 *   the most similar pose of b.
 * docs/TEACHER.md reports both. "mean" scored higher for every teacher
 * there, likely because averaging smooths out the pose differences.
 * The colour histogram floor is the 8 x 8 x 8 RGB histogram of the mask's
 * pixels in the original view, normalised to sum 1, under the same rules
 * with the total variation distance (half the L1 distance) in place of
 * 1 - cosine.
 *
 * It prints, per teacher configuration, the pooled AUROC of anomalous
 * against normal instances for both rules, the AUROC per anomaly kind
 * (each kind's instances against all normal ones, "views" rule) and the
 * teacher's time per view (resize and forward).
 *
 * usage: teacher_check DATASET [--config NETWORK:LAYER:SIZE]... [--scenes N]
 *                      [--min-cells X] [--dinov2 PATH] */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "benchlib.h"
#include "core/error.h"
#include "core/mem.h"
#include "eval/metrics.h"
#include "io/image.h"
#include "scene/scene.h"
#include "teacher/teacher.h"

#define HISTOGRAM_BINS 8
#define HISTOGRAM_SIZE (HISTOGRAM_BINS * HISTOGRAM_BINS * HISTOGRAM_BINS)
#define MAX_CONFIGS 32
#define MAX_KINDS 16

static const char *const default_configs[] = {
    "inceptionv3:mixed0:299",          "inceptionv3:mixed1:299",          "inceptionv3:mixed2:299",
    "inceptionv3:mixed3:299",          "inceptionv3:mixed4:299",          "inceptionv3:mixed2:448",
    "mobilenetv2:block_3_expand_relu:224", "mobilenetv2:block_6_expand_relu:224",
    "mobilenetv2:block_6_expand_relu:448", "mobilenetv2:block_13_expand_relu:448",
};

/* Scores and labels of every scored instance for one method. */
typedef struct score_list {
    float *mean_scores, *views_scores;
    uint8_t *labels;
    int *kinds; /* index into the kind table; -1 for normal */
    int64_t count, capacity;
} score_list;

typedef struct method {
    char name[160];
    od_teacher *teacher; /* NULL for the colour histogram */
    int64_t dims;        /* length of a pooled vector */
    double forward_ms;
    int64_t forward_views;
    score_list scores;
} method;

static char kind_names[MAX_KINDS][64];
static int kind_count;

static int kind_index(const char *kind)
{
    for (int i = 0; i < kind_count; i++)
        if (strcmp(kind_names[i], kind) == 0)
            return i;
    if (kind_count == MAX_KINDS)
        return MAX_KINDS - 1;
    snprintf(kind_names[kind_count], sizeof kind_names[0], "%s", kind);
    return kind_count++;
}

static void die(const char *what, const od_error *err)
{
    fprintf(stderr, "teacher_check: %s: %s\n", what, err->message);
    exit(1);
}

static void *checked_calloc(size_t count, size_t size)
{
    void *p = calloc(count > 0 ? count : 1, size);
    if (p == NULL) {
        fprintf(stderr, "teacher_check: out of memory\n");
        exit(1);
    }
    return p;
}

static void score_list_push(score_list *list, float mean_score, float views_score, uint8_t label, int kind)
{
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? list->capacity * 2 : 256;
        list->mean_scores = realloc(list->mean_scores, (size_t)list->capacity * sizeof(float));
        list->views_scores = realloc(list->views_scores, (size_t)list->capacity * sizeof(float));
        list->labels = realloc(list->labels, (size_t)list->capacity);
        list->kinds = realloc(list->kinds, (size_t)list->capacity * sizeof(int));
        if (!list->mean_scores || !list->views_scores || !list->labels || !list->kinds) {
            fprintf(stderr, "teacher_check: out of memory\n");
            exit(1);
        }
    }
    list->mean_scores[list->count] = mean_score;
    list->views_scores[list->count] = views_score;
    list->labels[list->count] = label;
    list->kinds[list->count] = kind;
    list->count++;
}

/* The mesh an instance was made from: the file name of its source without
 * folder, extension and the generator's "-<kind>-<NNN>" anomaly suffix. */
static void mesh_stem(const char *source, char *stem, size_t size)
{
    const char *base = strrchr(source, '/');
    base = base != NULL ? base + 1 : source;
    snprintf(stem, size, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot != NULL)
        *dot = '\0';
    char *last = strrchr(stem, '-');
    if (last != NULL && last[1] >= '0' && last[1] <= '9') {
        *last = '\0';
        char *kind = strrchr(stem, '-');
        if (kind != NULL)
            *kind = '\0';
        else
            *last = '-';
    }
}

/* ---- pooling ------------------------------------------------------------------ */

/* Pools features (h, w, c) over the cells that mask_input (size x size, 0..1)
 * covers. Returns the covered cell count (the sum of the coverages). */
static double pool_features(const float *features, const od_teacher_info *info, const float *mask_input,
                            float *pooled)
{
    const int64_t size = info->input_size, s = info->stride, c = info->channels;
    memset(pooled, 0, (size_t)c * sizeof(float));
    double total = 0.0;
    for (int64_t i = 0; i < info->height; i++) {
        for (int64_t j = 0; j < info->width; j++) {
            const double cy = info->offset + (double)(s * i), cx = info->offset + (double)(s * j);
            int64_t y0 = (int64_t)ceil(cy - s / 2.0), x0 = (int64_t)ceil(cx - s / 2.0);
            int64_t y1 = y0 + s, x1 = x0 + s;
            y0 = y0 < 0 ? 0 : y0;
            x0 = x0 < 0 ? 0 : x0;
            y1 = y1 > size ? size : y1;
            x1 = x1 > size ? size : x1;
            if (y1 <= y0 || x1 <= x0)
                continue;
            double sum = 0.0;
            for (int64_t y = y0; y < y1; y++)
                for (int64_t x = x0; x < x1; x++)
                    sum += mask_input[y * size + x];
            const double coverage = sum / (double)((y1 - y0) * (x1 - x0));
            if (coverage <= 0.0)
                continue;
            const float *cell = features + (i * info->width + j) * c;
            for (int64_t k = 0; k < c; k++)
                pooled[k] += (float)coverage * cell[k];
            total += coverage;
        }
    }
    if (total > 0.0)
        for (int64_t k = 0; k < c; k++)
            pooled[k] = (float)(pooled[k] / total);
    return total;
}

static void normalise(float *v, int64_t n)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)v[i] * v[i];
    const double norm = sqrt(sum);
    if (norm > 0.0)
        for (int64_t i = 0; i < n; i++)
            v[i] = (float)(v[i] / norm);
}

/* 1 - cosine for unit vectors, or the total variation distance for
 * histograms. */
static double distance(const float *a, const float *b, int64_t n, int histogram)
{
    double sum = 0.0;
    if (histogram) {
        for (int64_t i = 0; i < n; i++)
            sum += fabs((double)a[i] - b[i]);
        return sum / 2.0;
    }
    for (int64_t i = 0; i < n; i++)
        sum += (double)a[i] * b[i];
    return 1.0 - sum;
}

/* ---- scoring ------------------------------------------------------------------ */

/* vectors (views, objects, dims), valid (views, objects). Scores every
 * instance that has a valid view and a same-mesh twin with one. */
static void score_scene(const od_scene *scene, const char (*stems)[256], const float *vectors,
                        const uint8_t *valid, int64_t dims, int histogram, score_list *out)
{
    const int V = scene->view_count, K = scene->object_count;
    float *means = checked_calloc((size_t)K * (size_t)dims, sizeof(float));
    int *seen = checked_calloc((size_t)K, sizeof(int));
    for (int k = 0; k < K; k++) {
        for (int v = 0; v < V; v++) {
            if (!valid[v * K + k])
                continue;
            const float *x = vectors + ((int64_t)v * K + k) * dims;
            for (int64_t i = 0; i < dims; i++)
                means[k * dims + i] += x[i];
            seen[k]++;
        }
        if (seen[k] > 0) {
            for (int64_t i = 0; i < dims; i++)
                means[k * dims + i] /= (float)seen[k];
            if (!histogram)
                normalise(means + k * dims, dims);
        }
    }
    for (int a = 0; a < K; a++) {
        if (seen[a] == 0)
            continue;
        double best_mean = INFINITY, best_views = INFINITY;
        for (int b = 0; b < K; b++) {
            if (b == a || seen[b] == 0 || strcmp(stems[a], stems[b]) != 0)
                continue;
            const double d_mean = distance(means + a * dims, means + b * dims, dims, histogram);
            double d_views = 0.0;
            for (int v = 0; v < V; v++) {
                if (!valid[v * K + a])
                    continue;
                double nearest = INFINITY;
                for (int w = 0; w < V; w++) {
                    if (!valid[w * K + b])
                        continue;
                    const double d = distance(vectors + ((int64_t)v * K + a) * dims,
                                              vectors + ((int64_t)w * K + b) * dims, dims, histogram);
                    nearest = d < nearest ? d : nearest;
                }
                d_views += nearest;
            }
            d_views /= seen[a];
            best_mean = d_mean < best_mean ? d_mean : best_mean;
            best_views = d_views < best_views ? d_views : best_views;
        }
        if (!isfinite(best_mean))
            continue;
        const od_scene_object *object = &scene->objects[a];
        const int anomalous = object->label == OD_LABEL_ANOMALOUS;
        score_list_push(out, (float)best_mean, (float)best_views, (uint8_t)anomalous,
                        anomalous ? kind_index(object->anomaly_kind) : -1);
    }
    free(means);
    free(seen);
}

/* ---- per scene ---------------------------------------------------------------- */

static void colour_histogram(const od_image *image, const od_image *mask, float *histogram, double *pixels)
{
    memset(histogram, 0, HISTOGRAM_SIZE * sizeof(float));
    double count = 0.0;
    const int64_t n = (int64_t)image->width * image->height;
    for (int64_t p = 0; p < n; p++) {
        if (mask->pixels[p] <= 0.5f)
            continue;
        int bin[3];
        for (int c = 0; c < 3; c++) {
            int b = (int)(image->pixels[p * 3 + c] * HISTOGRAM_BINS);
            if (b < 0)
                b = 0;
            if (b >= HISTOGRAM_BINS)
                b = HISTOGRAM_BINS - 1;
            bin[c] = b;
        }
        histogram[(bin[0] * HISTOGRAM_BINS + bin[1]) * HISTOGRAM_BINS + bin[2]] += 1.0f;
        count += 1.0;
    }
    if (count > 0.0)
        for (int i = 0; i < HISTOGRAM_SIZE; i++)
            histogram[i] = (float)(histogram[i] / count);
    *pixels = count;
}

static void run_scene(const char *path, method *methods, int method_count, double min_cells)
{
    od_error err;
    od_scene *scene = NULL;
    if (od_scene_load(path, NULL, &scene, &err) != 0)
        die(path, &err);
    const int V = scene->view_count, K = scene->object_count;
    char (*stems)[256] = checked_calloc((size_t)K, sizeof *stems);
    for (int k = 0; k < K; k++)
        mesh_stem(scene->objects[k].source, stems[k], sizeof stems[k]);

    od_image *images = checked_calloc((size_t)V, sizeof *images);
    od_image *masks = checked_calloc((size_t)V * (size_t)K, sizeof *masks);
    for (int v = 0; v < V; v++) {
        if (od_scene_read_view_image(scene, v, &images[v], &err) != 0)
            die(path, &err);
        for (int k = 0; k < K; k++)
            if (od_scene_read_object_mask(scene, v, k, &masks[v * K + k], &err) != 0)
                die(path, &err);
    }

    for (int m = 0; m < method_count; m++) {
        method *me = &methods[m];
        const int64_t dims = me->dims;
        float *vectors = checked_calloc((size_t)V * K * (size_t)dims, sizeof(float));
        uint8_t *valid = checked_calloc((size_t)V * K, 1);
        if (me->teacher == NULL) {
            for (int v = 0; v < V; v++) {
                for (int k = 0; k < K; k++) {
                    double pixels;
                    colour_histogram(&images[v], &masks[v * K + k], vectors + ((int64_t)v * K + k) * dims,
                                     &pixels);
                    /* The same visibility rule as the teachers at stride 8 on a 256-pixel view. */
                    valid[v * K + k] = pixels >= min_cells * 64.0;
                }
            }
        } else {
            const od_teacher_info info = od_teacher_get_info(me->teacher);
            float *features = od_alloc_floats(info.height * info.width * info.channels);
            if (features == NULL) {
                fprintf(stderr, "teacher_check: out of memory\n");
                exit(1);
            }
            for (int v = 0; v < V; v++) {
                const double start = bench_now_ms();
                if (od_teacher_run(me->teacher, &images[v], features, &err) != 0)
                    die(me->name, &err);
                me->forward_ms += bench_now_ms() - start;
                me->forward_views++;
                for (int k = 0; k < K; k++) {
                    od_image resized;
                    if (od_image_resize(&masks[v * K + k], (int)info.input_size, (int)info.input_size, &resized,
                                        &err) != 0)
                        die(path, &err);
                    float *pooled = vectors + ((int64_t)v * K + k) * dims;
                    const double cells = pool_features(features, &info, resized.pixels, pooled);
                    od_image_free(&resized);
                    normalise(pooled, dims);
                    valid[v * K + k] = cells >= min_cells;
                }
            }
            od_free(features);
        }
        score_scene(scene, (const char (*)[256])stems, vectors, valid, dims, me->teacher == NULL, &me->scores);
        free(vectors);
        free(valid);
    }

    for (int v = 0; v < V; v++)
        od_image_free(&images[v]);
    for (int i = 0; i < V * K; i++)
        od_image_free(&masks[i]);
    free(images);
    free(masks);
    free(stems);
    od_scene_free(scene);
}

/* ---- report ------------------------------------------------------------------- */

static double auroc_or_nan(const float *scores, const uint8_t *labels, int64_t n)
{
    od_metric metric;
    od_error err;
    if (od_auroc(scores, labels, n, &metric, &err) != 0)
        die("AUROC", &err);
    return metric.status == OD_METRIC_DEFINED ? metric.value : NAN;
}

/* AUROC of one anomaly kind's instances against every normal instance. */
static double kind_auroc(const score_list *list, int kind, int64_t *anomalies)
{
    float *scores = checked_calloc((size_t)list->count, sizeof(float));
    uint8_t *labels = checked_calloc((size_t)list->count, 1);
    int64_t n = 0;
    *anomalies = 0;
    for (int64_t i = 0; i < list->count; i++) {
        if (list->labels[i] && list->kinds[i] != kind)
            continue;
        scores[n] = list->views_scores[i];
        labels[n] = list->labels[i];
        *anomalies += list->labels[i];
        n++;
    }
    const double value = auroc_or_nan(scores, labels, n);
    free(scores);
    free(labels);
    return value;
}

static void print_report(const method *methods, int method_count, int scene_count)
{
    printf("\n%d scenes\n", scene_count);
    printf("%-40s %6s %6s %6s %9s %9s %10s\n", "method", "dims", "map", "stride", "AUROC", "AUROC", "ms/view");
    printf("%-40s %6s %6s %6s %9s %9s %10s\n", "", "", "", "", "(mean)", "(views)", "");
    for (int m = 0; m < method_count; m++) {
        const method *me = &methods[m];
        const score_list *s = &me->scores;
        char map[32] = "-", stride[16] = "-", ms[32] = "-";
        if (me->teacher != NULL) {
            const od_teacher_info info = od_teacher_get_info(me->teacher);
            snprintf(map, sizeof map, "%lld", (long long)info.height);
            snprintf(stride, sizeof stride, "%lld", (long long)info.stride);
            snprintf(ms, sizeof ms, "%.1f", me->forward_ms / (double)(me->forward_views > 0 ? me->forward_views : 1));
        }
        printf("%-40s %6lld %6s %6s %9.3f %9.3f %10s\n", me->name, (long long)me->dims, map, stride,
               auroc_or_nan(s->mean_scores, s->labels, s->count), auroc_or_nan(s->views_scores, s->labels, s->count),
               ms);
    }
    const score_list *first = &methods[0].scores;
    int64_t anomalous = 0;
    for (int64_t i = 0; i < first->count; i++)
        anomalous += first->labels[i];
    printf("instances scored: %lld (%lld anomalous)\n", (long long)first->count, (long long)anomalous);

    printf("\nAUROC per anomaly kind (\"views\" rule; that kind's instances against all normal ones)\n");
    printf("%-40s", "method");
    for (int k = 0; k < kind_count; k++)
        printf(" %9s", kind_names[k]);
    printf("\n");
    for (int m = 0; m < method_count; m++) {
        printf("%-40s", methods[m].name);
        for (int k = 0; k < kind_count; k++) {
            int64_t count;
            printf(" %9.3f", kind_auroc(&methods[m].scores, k, &count));
        }
        printf("\n");
    }
    printf("%-40s", "anomalous instances");
    for (int k = 0; k < kind_count; k++) {
        int64_t count;
        kind_auroc(first, k, &count);
        printf(" %9lld", (long long)count);
    }
    printf("\n");
}

/* ---- main --------------------------------------------------------------------- */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the folders directly under root that contain scene3d.metadata.json. */
static char **list_scenes(const char *root, int *count)
{
    DIR *dir = opendir(root);
    if (dir == NULL) {
        fprintf(stderr, "teacher_check: cannot open %s (%s)\n", root, strerror(errno));
        exit(1);
    }
    char **list = NULL;
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/scene3d.metadata.json", root, entry->d_name);
        if (stat(path, &st) != 0)
            continue;
        list = realloc(list, (size_t)(n + 1) * sizeof *list);
        size_t length = strlen(root) + strlen(entry->d_name) + 2;
        list[n] = malloc(length);
        snprintf(list[n], length, "%s/%s", root, entry->d_name);
        n++;
    }
    closedir(dir);
    if (n > 0)
        qsort(list, (size_t)n, sizeof *list, compare_strings);
    *count = n;
    return list;
}

static void open_config(method *me, const char *text, const char *dinov2_path)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    char *layer = strchr(copy, ':');
    char *size = layer != NULL ? strchr(layer + 1, ':') : NULL;
    if (layer == NULL || size == NULL) {
        fprintf(stderr, "teacher_check: --config expects NETWORK:LAYER:SIZE, got \"%s\"\n", text);
        exit(2);
    }
    *layer++ = '\0';
    *size++ = '\0';
    od_error err;
    od_teacher_network network;
    if (od_teacher_network_parse(copy, &network, &err) != 0)
        die(text, &err);
    me->teacher = od_teacher_open(network, network == OD_TEACHER_DINOV2 ? dinov2_path : NULL, layer,
                                  strtol(size, NULL, 10), &err);
    if (me->teacher == NULL)
        die(text, &err);
    me->dims = od_teacher_get_info(me->teacher).channels;
    snprintf(me->name, sizeof me->name, "%s", text);
}

int main(int argc, char **argv)
{
    const char *dataset = NULL, *dinov2_path = NULL;
    const char *configs[MAX_CONFIGS];
    int config_count = 0, max_scenes = 0;
    double min_cells = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--config") == 0 && value != NULL && config_count < MAX_CONFIGS) {
            configs[config_count++] = value;
            i++;
        } else if (strcmp(argv[i], "--scenes") == 0 && value != NULL) {
            max_scenes = atoi(value);
            i++;
        } else if (strcmp(argv[i], "--min-cells") == 0 && value != NULL) {
            min_cells = atof(value);
            i++;
        } else if (strcmp(argv[i], "--dinov2") == 0 && value != NULL) {
            dinov2_path = value;
            i++;
        } else if (argv[i][0] != '-' && dataset == NULL) {
            dataset = argv[i];
        } else {
            fprintf(stderr, "usage: teacher_check DATASET [--config NETWORK:LAYER:SIZE]... [--scenes N] "
                            "[--min-cells X] [--dinov2 PATH]\n");
            return 2;
        }
    }
    if (dataset == NULL) {
        fprintf(stderr, "usage: teacher_check DATASET [--config NETWORK:LAYER:SIZE]... [--scenes N] "
                        "[--min-cells X] [--dinov2 PATH]\n");
        return 2;
    }
    if (config_count == 0) {
        config_count = (int)(sizeof default_configs / sizeof default_configs[0]);
        for (int i = 0; i < config_count; i++)
            configs[i] = default_configs[i];
    }

    const int method_count = config_count + 1;
    method *methods = checked_calloc((size_t)method_count, sizeof *methods);
    snprintf(methods[0].name, sizeof methods[0].name, "colour histogram 8x8x8");
    methods[0].dims = HISTOGRAM_SIZE;
    for (int i = 0; i < config_count; i++)
        open_config(&methods[i + 1], configs[i], dinov2_path);

    int listed = 0;
    char **scenes = list_scenes(dataset, &listed);
    int scene_count = listed;
    if (scene_count == 0) {
        fprintf(stderr, "teacher_check: no scene folders (with scene3d.metadata.json) under %s\n", dataset);
        return 1;
    }
    if (max_scenes > 0 && max_scenes < scene_count)
        scene_count = max_scenes;
    const double start = bench_now_ms();
    for (int s = 0; s < scene_count; s++) {
        run_scene(scenes[s], methods, method_count, min_cells);
        fprintf(stderr, "\rteacher_check: %d / %d scenes, %.0f s", s + 1, scene_count,
                (bench_now_ms() - start) / 1e3);
    }
    fprintf(stderr, "\n");
    print_report(methods, method_count, scene_count);

    for (int m = 0; m < method_count; m++) {
        od_teacher_free(methods[m].teacher);
        free(methods[m].scores.mean_scores);
        free(methods[m].scores.views_scores);
        free(methods[m].scores.labels);
        free(methods[m].scores.kinds);
    }
    free(methods);
    for (int i = 0; i < listed; i++)
        free(scenes[i]);
    free(scenes);
    return 0;
}
