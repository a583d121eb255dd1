/* `oddone teacher DATASET --model NAME`: precomputes a frozen 2D teacher's
 * features for every view of a dataset, reduced by PCA, into one float16
 * cache per scene (teacher/feature_cache.h).
 *
 * It opens the teacher (teacher/teacher.h), then fits the PCA on feature
 * cells sampled from views of the fit split, or reuses the PCA of an
 * earlier run with the same fit settings. Last it writes each scene's
 * cache, skipping scenes whose cache already reads back with matching
 * metadata. */
#include "cli/teacher.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/threads.h"
#include "eval/pca.h"
#include "io/atomic_file.h"
#include "io/folder.h"
#include "scene/dataset.h"
#include "scene/scene.h"
#include "teacher/feature_cache.h"
#include "teacher/teacher.h"

#define DEFAULT_CHANNELS 64
#define DEFAULT_FIT_VIEWS 200
#define DEFAULT_FIT_CELLS 256
/* Smallest feature map side accepted, in cells: coarser maps cover a
 * tabletop instance with too few cells to compare its parts. */
#define MIN_MAP_SIDE 16
#define PATH_SIZE 4096

static void print_teacher_usage(FILE *stream)
{
    fprintf(stream,
            "usage: oddone teacher DATASET --model NAME [OPTIONS]\n"
            "\n"
            "Precomputes a frozen 2D teacher's features for every view of a dataset: each view is\n"
            "resized to a square input, the network's layer gives a feature map, and a PCA fitted on\n"
            "the fit split reduces it to C channels. Writes one float16 cache per scene,\n"
            "CACHE_DIR/<scene>.safetensors, and the PCA beside them (CACHE_DIR/pca.safetensors, with\n"
            "its fit settings in CACHE_DIR/pca.json). A rerun skips scenes whose cache matches and\n"
            "reuses a PCA fitted with the same settings.\n"
            "\n"
            "options:\n"
            "  --model NAME        inceptionv3, mobilenetv2 or dinov2 (required)\n"
            "  --layer NAME        the network's layer (defaults: inceptionv3 %s, mobilenetv2\n"
            "                      %s, dinov2 %s; dinov2 also takes block_0 to block_11)\n"
            "  --input-size N      side in pixels that views are resized to (defaults: inceptionv3\n"
            "                      %lld, mobilenetv2 %lld, dinov2 %lld, a multiple of 14); the map must\n"
            "                      be at least %d x %d cells\n"
            "  --channels C        channels kept by the PCA (default %d)\n"
            "  --split NAME        write caches for this split only (default: every split)\n"
            "  --fit-split NAME    split whose views the PCA is fitted on (default: train; a\n"
            "                      dataset without splits/ uses all its scenes)\n"
            "  --fit-views N       at most N views of the fit split, drawn at random (default %d)\n"
            "  --fit-cells N       feature cells drawn per fit view (default %d)\n"
            "  --seed N            seed of the view and cell draws (default 1)\n"
            "  --weights PATH      network weights (defaults: %s and\n"
            "                      %s from scripts/fetch_weights.sh;\n"
            "                      dinov2 needs the model.safetensors of facebook/dinov2-small)\n"
            "  -o, --output DIR    cache folder (default: DATASET/features/<model>-<layer>-<size>)\n"
            "  --threads N         threads (default: OMP_NUM_THREADS or every core)\n"
            "  --quiet             print errors only\n"
            "  -h, --help          print this text\n",
            od_teacher_default_layer(OD_TEACHER_INCEPTIONV3), od_teacher_default_layer(OD_TEACHER_MOBILENETV2),
            od_teacher_default_layer(OD_TEACHER_DINOV2),
            (long long)od_teacher_default_input_size(OD_TEACHER_INCEPTIONV3),
            (long long)od_teacher_default_input_size(OD_TEACHER_MOBILENETV2),
            (long long)od_teacher_default_input_size(OD_TEACHER_DINOV2), MIN_MAP_SIDE, MIN_MAP_SIDE,
            DEFAULT_CHANNELS, DEFAULT_FIT_VIEWS, DEFAULT_FIT_CELLS,
            od_teacher_default_weights(OD_TEACHER_INCEPTIONV3), od_teacher_default_weights(OD_TEACHER_MOBILENETV2));
}

typedef struct teacher_arguments {
    const char *dataset;
    const char *model;
    od_teacher_network network;
    const char *layer;
    long input_size; /* 0: the network's default */
    long channels;
    const char *split; /* NULL: every split */
    const char *fit_split;
    long fit_views;
    long fit_cells;
    long seed;
    const char *weights;
    const char *output;
    long threads; /* 0: unchanged */
    int quiet;
} teacher_arguments;

static int parse_long(const char *text, long low, long high, long *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high)
        return -1;
    *out = value;
    return 0;
}

/* Returns 0 to go on, 1 after --help, 2 on a usage error. */
static int parse_arguments(int argc, char **argv, teacher_arguments *a)
{
    memset(a, 0, sizeof *a);
    a->channels = DEFAULT_CHANNELS;
    a->fit_split = "train";
    a->fit_views = DEFAULT_FIT_VIEWS;
    a->fit_cells = DEFAULT_FIT_CELLS;
    a->seed = 1;
    static const char *const with_value[] = {"--model",  "--layer",     "--input-size", "--channels", "--split",
                                             "--fit-split", "--fit-views", "--fit-cells", "--seed",   "--weights",
                                             "-o",       "--output",    "--threads"};
    for (int i = 0; i < argc; i++) {
        const char *argument = argv[i];
        int takes_value = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            takes_value |= strcmp(argument, with_value[k]) == 0;
        const char *value = takes_value && i + 1 < argc ? argv[i + 1] : NULL;
        if (takes_value && value == NULL) {
            fprintf(stderr, "oddone teacher: %s needs a value; run \"oddone teacher --help\"\n", argument);
            return 2;
        }
        int bad = 0;
        if (strcmp(argument, "-h") == 0 || strcmp(argument, "--help") == 0) {
            print_teacher_usage(stdout);
            return 1;
        } else if (strcmp(argument, "--model") == 0) {
            a->model = value;
        } else if (strcmp(argument, "--layer") == 0) {
            a->layer = value;
        } else if (strcmp(argument, "--input-size") == 0) {
            bad = parse_long(value, 14, 4096, &a->input_size);
        } else if (strcmp(argument, "--channels") == 0) {
            bad = parse_long(value, 1, 4096, &a->channels);
        } else if (strcmp(argument, "--split") == 0) {
            a->split = value;
        } else if (strcmp(argument, "--fit-split") == 0) {
            a->fit_split = value;
        } else if (strcmp(argument, "--fit-views") == 0) {
            bad = parse_long(value, 1, 1000000, &a->fit_views);
        } else if (strcmp(argument, "--fit-cells") == 0) {
            bad = parse_long(value, 1, 1000000, &a->fit_cells);
        } else if (strcmp(argument, "--seed") == 0) {
            bad = parse_long(value, 0, LONG_MAX, &a->seed);
        } else if (strcmp(argument, "--weights") == 0) {
            a->weights = value;
        } else if (strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0) {
            a->output = value;
        } else if (strcmp(argument, "--threads") == 0) {
            bad = parse_long(value, 1, 1024, &a->threads);
        } else if (strcmp(argument, "--quiet") == 0) {
            a->quiet = 1;
        } else if (argument[0] == '-' && argument[1] != '\0') {
            fprintf(stderr, "oddone teacher: unknown option %s; run \"oddone teacher --help\"\n", argument);
            return 2;
        } else if (a->dataset == NULL) {
            a->dataset = argument;
        } else {
            fprintf(stderr, "oddone teacher: more than one dataset given (%s and %s)\n", a->dataset, argument);
            return 2;
        }
        if (bad) {
            const char *range = strcmp(argument, "--input-size") == 0 ? "an integer from 14 to 4096"
                                : strcmp(argument, "--channels") == 0 ? "an integer from 1 to 4096"
                                : strcmp(argument, "--threads") == 0  ? "an integer from 1 to 1024"
                                : strcmp(argument, "--seed") == 0     ? "a non-negative integer"
                                                                      : "an integer from 1 to 1000000";
            fprintf(stderr, "oddone teacher: %s expects %s; got \"%s\"\n", argument, range, value);
            return 2;
        }
        if (takes_value)
            i++;
    }
    if (a->dataset == NULL) {
        fprintf(stderr, "oddone teacher: the dataset is missing; usage: oddone teacher DATASET --model NAME\n");
        return 2;
    }
    if (a->model == NULL) {
        fprintf(stderr, "oddone teacher: --model is missing; expected inceptionv3, mobilenetv2 or dinov2\n");
        return 2;
    }
    od_error err;
    if (od_teacher_network_parse(a->model, &a->network, &err) != 0) {
        fprintf(stderr, "oddone teacher: %s\n", err.message);
        return 2;
    }
    if (a->network == OD_TEACHER_DINOV2 && a->weights == NULL) {
        fprintf(stderr, "oddone teacher: dinov2 needs --weights PATH, the model.safetensors of "
                        "facebook/dinov2-small (see README)\n");
        return 2;
    }
    return 0;
}

/* ---- scene lists ---------------------------------------------------------------- */

typedef struct scene_list {
    int count;
    char **paths; /* scene folders */
    char **names; /* relative to the dataset, as the split files write them */
} scene_list;

static void scene_list_free(scene_list *list)
{
    for (int i = 0; i < list->count; i++) {
        free(list->paths[i]);
        free(list->names[i]);
    }
    free(list->paths);
    free(list->names);
    memset(list, 0, sizeof *list);
}

/* Appends the scenes of a dataset split that the list does not hold yet. */
static int scene_list_add_split(scene_list *list, const char *root, const char *split, od_error *err)
{
    od_dataset dataset;
    if (od_dataset_open(root, split, &dataset, err) != 0)
        return -1;
    int status = 0;
    for (int i = 0; i < dataset.scene_count && status == 0; i++) {
        int known = 0;
        for (int j = 0; j < list->count && !known; j++)
            known = strcmp(list->names[j], dataset.scene_names[i]) == 0;
        if (known)
            continue;
        char **paths = realloc(list->paths, (size_t)(list->count + 1) * sizeof *paths);
        if (paths != NULL)
            list->paths = paths;
        char **names = realloc(list->names, (size_t)(list->count + 1) * sizeof *names);
        if (names != NULL)
            list->names = names;
        char *path = strdup(dataset.scenes[i]), *name = strdup(dataset.scene_names[i]);
        if (paths == NULL || names == NULL || path == NULL || name == NULL) {
            free(path);
            free(name);
            status = od_fail(err, "out of memory listing the scenes of %s", root);
            break;
        }
        list->paths[list->count] = path;
        list->names[list->count] = name;
        list->count++;
    }
    od_dataset_free(&dataset);
    return status;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the split names of DATASET/splits/<name>.txt, sorted; *count is 0
 * when the dataset has no splits folder. */
static int list_split_names(const char *root, char ***names, int *count, od_error *err)
{
    *names = NULL;
    *count = 0;
    char folder[PATH_SIZE];
    snprintf(folder, sizeof folder, "%s/splits", root);
    DIR *dir = opendir(folder);
    if (dir == NULL)
        return 0;
    struct dirent *entry;
    int status = 0;
    while ((entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (entry->d_name[0] == '.' || length < 5 || strcmp(entry->d_name + length - 4, ".txt") != 0)
            continue;
        char **grown = realloc(*names, (size_t)(*count + 1) * sizeof *grown);
        char *name = grown != NULL ? strndup(entry->d_name, length - 4) : NULL;
        if (grown != NULL)
            *names = grown;
        if (name == NULL) {
            status = od_fail(err, "out of memory listing %s", folder);
            break;
        }
        (*names)[(*count)++] = name;
    }
    closedir(dir);
    if (*count > 1)
        qsort(*names, (size_t)*count, sizeof **names, compare_strings);
    return status;
}

/* ---- PCA fit -------------------------------------------------------------------- */

typedef struct fit_view {
    int scene;
    int view;
} fit_view;

static int compare_fit_views(const void *a, const void *b)
{
    const fit_view *x = a, *y = b;
    if (x->scene != y->scene)
        return x->scene < y->scene ? -1 : 1;
    return (x->view > y->view) - (x->view < y->view);
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Draws up to fit_views views of the fit scenes (seeded) and returns them
 * sorted by scene and view. */
static int draw_fit_views(const scene_list *scenes, const teacher_arguments *a, fit_view **out, int *out_count,
                          od_error *err)
{
    fit_view *all = NULL;
    int total = 0;
    for (int s = 0; s < scenes->count; s++) {
        od_scene *scene = NULL;
        if (od_scene_load(scenes->paths[s], NULL, &scene, err) != 0) {
            /* write_caches reports it again and fails the run at the end. */
            fprintf(stderr, "oddone teacher: the PCA fit skips a scene that failed to load: %s\n", err->message);
            continue;
        }
        fit_view *grown = realloc(all, (size_t)(total + scene->view_count) * sizeof *grown);
        if (grown == NULL) {
            od_scene_free(scene);
            free(all);
            return od_fail(err, "out of memory listing the fit views");
        }
        all = grown;
        for (int v = 0; v < scene->view_count; v++)
            all[total++] = (fit_view){s, v};
        od_scene_free(scene);
    }
    if (total == 0) {
        free(all);
        return od_fail(err, "no scene of the fit split could be loaded, so there is no view to fit the PCA on");
    }
    const int keep = total < a->fit_views ? total : (int)a->fit_views;
    od_rng rng;
    od_rng_seed(&rng, (uint64_t)a->seed);
    for (int i = 0; i < keep; i++) {
        const int j = i + (int)od_rng_below(&rng, (uint64_t)(total - i));
        const fit_view swap = all[i];
        all[i] = all[j];
        all[j] = swap;
    }
    qsort(all, (size_t)keep, sizeof *all, compare_fit_views);
    *out = all;
    *out_count = keep;
    return 0;
}

/* Runs the teacher on the drawn views and adds fit_cells random cells of
 * each to the accumulator. */
static int sample_fit_rows(od_teacher *teacher, const scene_list *scenes, const fit_view *views, int count,
                           const teacher_arguments *a, od_pca_accumulator *acc, od_error *err)
{
    const od_teacher_info info = od_teacher_get_info(teacher);
    const int64_t cells = info.height * info.width, c = info.channels;
    const int64_t take = a->fit_cells < cells ? a->fit_cells : cells;
    float *features = od_alloc_floats(cells * c);
    float *rows = od_alloc_floats(take * c);
    int64_t *order = malloc((size_t)cells * sizeof *order);
    od_scene *scene = NULL;
    od_image image = {0};
    int status = 0;
    if (features == NULL || rows == NULL || order == NULL)
        status = od_fail(err, "out of memory for the PCA fit");
    od_rng base;
    od_rng_seed(&base, (uint64_t)a->seed);
    const double start = now_seconds();
    for (int i = 0; i < count && status == 0; i++) {
        if (scene == NULL || i == 0 || views[i].scene != views[i - 1].scene) {
            od_scene_free(scene);
            scene = NULL;
            status = od_scene_load(scenes->paths[views[i].scene], NULL, &scene, err);
            if (status != 0)
                break;
        }
        status = od_scene_read_view_image(scene, views[i].view, &image, err);
        if (status == 0)
            status = od_teacher_run(teacher, &image, features, err);
        od_image_free(&image);
        if (status != 0) {
            od_fail_context(err, "%s view %d", scenes->names[views[i].scene], views[i].view);
            break;
        }
        /* Stream i + 1 of the seed, so that each view's draw depends on
         * its rank in the sorted draw only. */
        od_rng rng = od_rng_fork(&base, (uint64_t)i + 1);
        for (int64_t k = 0; k < cells; k++)
            order[k] = k;
        for (int64_t k = 0; k < take; k++) {
            const int64_t j = k + (int64_t)od_rng_below(&rng, (uint64_t)(cells - k));
            const int64_t swap = order[k];
            order[k] = order[j];
            order[j] = swap;
            memcpy(rows + k * c, features + order[k] * c, (size_t)c * sizeof(float));
        }
        status = od_pca_add(acc, rows, take, err);
        if (!a->quiet && status == 0 && ((i + 1) % 10 == 0 || i + 1 == count))
            fprintf(stderr, "teacher: PCA fit, %d / %d views, %.2f s per view\n", i + 1, count,
                    (now_seconds() - start) / (i + 1));
    }
    od_scene_free(scene);
    od_free(features);
    od_free(rows);
    free(order);
    return status;
}

/* The fit settings stored in pca.json; a rerun reuses the PCA only when
 * they all match. */
static cJSON *fit_settings_json(const od_teacher_info *info, const teacher_arguments *a, const char *fit_split)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "network", info->network_name);
    cJSON_AddStringToObject(root, "layer", info->layer);
    cJSON_AddNumberToObject(root, "input_size", (double)info->input_size);
    cJSON_AddNumberToObject(root, "input_channels", (double)info->channels);
    cJSON_AddNumberToObject(root, "channels", (double)a->channels);
    cJSON_AddStringToObject(root, "fit_split", fit_split);
    cJSON_AddNumberToObject(root, "fit_views", (double)a->fit_views);
    cJSON_AddNumberToObject(root, "fit_cells", (double)a->fit_cells);
    cJSON_AddNumberToObject(root, "seed", (double)a->seed);
    return root;
}

/* Returns 1 when pca.json and pca.safetensors exist, the settings match and
 * the PCA loads with the expected shape and checksum. */
static int pca_reusable(const char *pca_path, const char *settings_path, const cJSON *settings,
                        const od_teacher_info *info, long channels)
{
    FILE *file = fopen(settings_path, "rb");
    if (file == NULL)
        return 0;
    char text[8192];
    size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[length] = '\0';
    cJSON *stored = cJSON_Parse(text);
    if (stored == NULL)
        return 0;
    int match = 1;
    for (const cJSON *item = settings->child; item != NULL && match; item = item->next) {
        const cJSON *other = cJSON_GetObjectItemCaseSensitive(stored, item->string);
        match = other != NULL && cJSON_Compare(item, other, 1);
    }
    const cJSON *checksum = cJSON_GetObjectItemCaseSensitive(stored, "pca_checksum");
    char actual[32];
    od_error err;
    if (match)
        match = cJSON_IsString(checksum) && od_feature_cache_checksum(pca_path, actual, &err) == 0 &&
                strcmp(actual, checksum->valuestring) == 0;
    cJSON_Delete(stored);
    if (!match)
        return 0;
    od_pca *pca = od_pca_load(pca_path, &err);
    match = pca != NULL && pca->channels == info->channels && pca->components_count == channels;
    od_pca_free(pca);
    return match;
}

static int write_json(const char *path, cJSON *root, od_error *err)
{
    char *text = cJSON_Print(root);
    if (text == NULL)
        return od_fail(err, "out of memory printing %s", path);
    od_atomic_file file;
    if (od_atomic_open(&file, path, err) != 0) {
        free(text);
        return -1;
    }
    fputs(text, file.stream);
    fputc('\n', file.stream);
    free(text);
    return od_atomic_commit(&file, err);
}

/* Fits the PCA and writes pca.safetensors and pca.json, or reuses them. */
static int prepare_pca(od_teacher *teacher, const teacher_arguments *a, const char *output, char *checksum,
                       od_pca **out, od_error *err)
{
    *out = NULL;
    const od_teacher_info info = od_teacher_get_info(teacher);
    char pca_path[PATH_SIZE], settings_path[PATH_SIZE];
    if (snprintf(pca_path, sizeof pca_path, "%s/pca.safetensors", output) >= (int)sizeof pca_path ||
        snprintf(settings_path, sizeof settings_path, "%s/pca.json", output) >= (int)sizeof settings_path)
        return od_fail(err, "the cache folder path %s is too long", output);

    char **splits = NULL;
    int split_count = 0;
    if (list_split_names(a->dataset, &splits, &split_count, err) != 0)
        return -1;
    const char *fit_split = split_count > 0 ? a->fit_split : OD_DATASET_ALL_SPLIT;
    cJSON *settings = fit_settings_json(&info, a, fit_split);
    for (int i = 0; i < split_count; i++)
        free(splits[i]);
    free(splits);
    if (settings == NULL)
        return od_fail(err, "out of memory");

    int status = 0;
    if (pca_reusable(pca_path, settings_path, settings, &info, a->channels)) {
        *out = od_pca_load(pca_path, err);
        status = *out != NULL ? od_feature_cache_checksum(pca_path, checksum, err) : -1;
        if (status == 0 && !a->quiet)
            fprintf(stderr, "teacher: reusing %s (same fit settings)\n", pca_path);
        cJSON_Delete(settings);
        return status;
    }

    scene_list scenes = {0};
    fit_view *views = NULL;
    int view_count = 0;
    od_pca_accumulator *acc = NULL;
    status = scene_list_add_split(&scenes, a->dataset, fit_split, err);
    if (status != 0)
        od_fail_context(err, "the fit split (--fit-split)");
    if (status == 0)
        status = draw_fit_views(&scenes, a, &views, &view_count, err);
    if (status == 0 && (acc = od_pca_new(info.channels, err)) == NULL)
        status = -1;
    if (status == 0)
        status = sample_fit_rows(teacher, &scenes, views, view_count, a, acc, err);
    if (status == 0 && od_pca_rows(acc) < a->channels + 1)
        status = od_fail(err, "the PCA fit drew %lld feature cells, too few for %ld channels; raise --fit-views "
                              "or --fit-cells",
                         (long long)od_pca_rows(acc), a->channels);
    if (status == 0 && (*out = od_pca_fit(acc, a->channels, err)) == NULL)
        status = -1;
    if (status == 0)
        status = od_pca_save(*out, pca_path, err);
    if (status == 0)
        status = od_feature_cache_checksum(pca_path, checksum, err);
    if (status == 0) {
        cJSON_AddStringToObject(settings, "pca_checksum", checksum);
        cJSON_AddNumberToObject(settings, "fit_scenes", scenes.count);
        cJSON_AddNumberToObject(settings, "rows", (double)od_pca_rows(acc));
        status = write_json(settings_path, settings, err);
    }
    if (status == 0 && !a->quiet) {
        double variance_kept = 0.0;
        for (int64_t i = 0; i < (*out)->components_count; i++)
            variance_kept += (*out)->explained_variance_ratio[i];
        fprintf(stderr, "teacher: PCA fitted on %lld cells of %d views (split %s), %ld of %lld channels keep "
                        "%.1f %% of the variance; wrote %s\n",
                (long long)od_pca_rows(acc), view_count, fit_split, a->channels, (long long)info.channels,
                100.0 * variance_kept, pca_path);
    }
    if (status != 0) {
        od_pca_free(*out);
        *out = NULL;
    }
    od_pca_accumulator_free(acc);
    free(views);
    scene_list_free(&scenes);
    cJSON_Delete(settings);
    return status;
}

/* ---- caches --------------------------------------------------------------------- */

/* Returns 1 when the cache file reads back with the expected metadata and
 * contains exactly the scene's views. */
static int cache_is_current(const char *path, const od_feature_cache_info *expected, const od_scene *scene)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    od_error err;
    od_feature_cache *cache = od_feature_cache_read(path, expected, &err);
    if (cache == NULL)
        return 0;
    int current = od_feature_cache_view_count(cache) == scene->view_count;
    for (int v = 0; v < scene->view_count && current; v++) {
        int found = 0;
        for (int64_t i = 0; i < od_feature_cache_view_count(cache) && !found; i++)
            found = strcmp(od_feature_cache_view_name(cache, i), scene->views[v].name) == 0;
        current = found;
    }
    od_feature_cache_free(cache);
    return current;
}

/* Makes the folder that will hold a file. */
static int make_parent_folder(const char *path, od_error *err)
{
    char folder[PATH_SIZE];
    snprintf(folder, sizeof folder, "%s", path);
    char *slash = strrchr(folder, '/');
    if (slash == NULL || slash == folder)
        return 0;
    *slash = '\0';
    return od_make_folders(folder, err);
}

/* Runs the teacher and the PCA on every view of a scene and writes its cache. */
static int write_scene_cache(od_teacher *teacher, const od_pca *pca, const od_scene *scene,
                             const od_feature_cache_info *info, const char *path, od_error *err)
{
    const od_teacher_info t = od_teacher_get_info(teacher);
    const int64_t cells = t.height * t.width;
    float *features = od_alloc_floats(cells * t.channels);
    float *reduced = od_alloc_floats(cells * pca->components_count);
    od_feature_cache_writer *writer = od_feature_cache_writer_new(info, err);
    od_image image = {0};
    int status = features == NULL || reduced == NULL ? od_fail(err, "out of memory") : writer == NULL ? -1 : 0;
    for (int v = 0; v < scene->view_count && status == 0; v++) {
        status = od_scene_read_view_image(scene, v, &image, err);
        if (status == 0)
            status = od_teacher_run(teacher, &image, features, err);
        od_image_free(&image);
        if (status == 0)
            status = od_pca_transform(pca, features, cells, reduced, err);
        if (status == 0)
            status = od_feature_cache_add_view(writer, scene->views[v].name, reduced, t.height, t.width, err);
        if (status != 0)
            od_fail_context(err, "view %d (%s)", v, scene->views[v].name);
    }
    if (status == 0)
        status = make_parent_folder(path, err);
    if (status == 0)
        status = od_feature_cache_write(writer, path, err);
    od_feature_cache_writer_free(writer);
    od_free(features);
    od_free(reduced);
    return status;
}

static void format_duration(double seconds, char *text, size_t size)
{
    if (seconds < 90.0)
        snprintf(text, size, "%.0f s", seconds);
    else if (seconds < 5400.0)
        snprintf(text, size, "%.0f min", seconds / 60.0);
    else
        snprintf(text, size, "%.1f h", seconds / 3600.0);
}

/* Writes the cache of every listed scene, skipping those already current.
 * A scene that fails to load is reported on its own line and skipped, so
 * one broken scene does not stop a run over thousands. The call then fails
 * at the end with the count. */
static int write_caches(od_teacher *teacher, const od_pca *pca, const scene_list *scenes,
                        const od_feature_cache_info *info, const char *output, int quiet, od_error *err)
{
    double computed_seconds = 0.0;
    int computed = 0, skipped = 0, unreadable = 0;
    for (int s = 0; s < scenes->count; s++) {
        char path[PATH_SIZE];
        const char *name = strcmp(scenes->names[s], ".") == 0 ? "scene" : scenes->names[s];
        if (snprintf(path, sizeof path, "%s/%s.safetensors", output, name) >= (int)sizeof path)
            return od_fail(err, "the cache path of %s under %s is too long", name, output);
        od_scene *scene = NULL;
        if (od_scene_load(scenes->paths[s], NULL, &scene, err) != 0) {
            fprintf(stderr, "oddone teacher: skipped a scene that failed to load: %s\n", err->message);
            unreadable++;
            continue;
        }
        if (cache_is_current(path, info, scene)) {
            skipped++;
            if (!quiet)
                fprintf(stderr, "teacher: %d / %d scenes, %s: cache is current, skipped\n", s + 1, scenes->count,
                        scenes->names[s]);
            od_scene_free(scene);
            continue;
        }
        const double start = now_seconds();
        const int status = write_scene_cache(teacher, pca, scene, info, path, err);
        const int views = scene->view_count;
        od_scene_free(scene);
        if (status != 0)
            return od_fail_context(err, "%s", scenes->paths[s]);
        const double seconds = now_seconds() - start;
        computed_seconds += seconds;
        computed++;
        if (!quiet) {
            /* The ETA assumes that every remaining scene needs computing. */
            char eta[32];
            format_duration(computed_seconds / computed * (scenes->count - s - 1), eta, sizeof eta);
            fprintf(stderr, "teacher: %d / %d scenes, %s: %d views, %.2f s per view, ETA %s\n", s + 1,
                    scenes->count, scenes->names[s], views, seconds / (views > 0 ? views : 1), eta);
        }
    }
    if (!quiet)
        fprintf(stderr, "teacher: wrote %d caches and skipped %d current ones in %s\n", computed, skipped, output);
    if (unreadable > 0)
        return od_fail(err, "%d of %d scenes failed to load and have no cache (each is named above)", unreadable,
                       scenes->count);
    return 0;
}

/* ---- command -------------------------------------------------------------------- */

/* Opens the teacher and checks the map size and the channel count. Returns
 * the exit status on failure (2 for sizes the user chose), 0 otherwise. */
static int open_teacher(const teacher_arguments *a, od_teacher **out)
{
    od_error err;
    *out = od_teacher_open(a->network, a->weights, a->layer, a->input_size, &err);
    if (*out == NULL) {
        fprintf(stderr, "oddone teacher: %s\n", err.message);
        return 1;
    }
    const od_teacher_info info = od_teacher_get_info(*out);
    if (info.height < MIN_MAP_SIDE || info.width < MIN_MAP_SIDE) {
        const long long needed = (long long)ceil((double)info.input_size * MIN_MAP_SIDE / (double)info.height);
        fprintf(stderr,
                "oddone teacher: %s layer %s at %lld pixels gives a %lld x %lld map, below %d x %d; use "
                "--input-size %lld or more, or an earlier layer\n",
                info.network_name, info.layer, (long long)info.input_size, (long long)info.height,
                (long long)info.width, MIN_MAP_SIDE, MIN_MAP_SIDE, needed);
        od_teacher_free(*out);
        *out = NULL;
        return 2;
    }
    if (a->channels > info.channels) {
        fprintf(stderr, "oddone teacher: --channels %ld exceeds the %lld channels of %s layer %s\n", a->channels,
                (long long)info.channels, info.network_name, info.layer);
        od_teacher_free(*out);
        *out = NULL;
        return 2;
    }
    return 0;
}

int od_cli_teacher(int argc, char **argv)
{
    teacher_arguments a;
    const int parsed = parse_arguments(argc, argv, &a);
    if (parsed == 1)
        return 0;
    if (parsed != 0)
        return parsed;
    /* The scene loader's line per scene would drown the progress lines,
     * which name each scene already. */
    od_log_set_level(a.quiet ? OD_LOG_ERROR : OD_LOG_WARN);
    if (a.threads > 0)
        od_set_num_threads((int)a.threads);

    od_error err;
    struct stat st;
    if (stat(a.dataset, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "oddone teacher: dataset folder %s not found\n", a.dataset);
        return 1;
    }
    /* The scenes to cache: the chosen split, or every split. */
    scene_list scenes = {0};
    char **splits = NULL;
    int split_count = 0, status = list_split_names(a.dataset, &splits, &split_count, &err);
    if (status == 0 && (a.split != NULL || split_count == 0))
        status = scene_list_add_split(&scenes, a.dataset, a.split != NULL ? a.split : OD_DATASET_ALL_SPLIT, &err);
    for (int i = 0; i < split_count; i++) {
        if (status == 0 && a.split == NULL)
            status = scene_list_add_split(&scenes, a.dataset, splits[i], &err);
        free(splits[i]);
    }
    free(splits);
    if (status != 0) {
        fprintf(stderr, "oddone teacher: %s\n", err.message);
        scene_list_free(&scenes);
        return 1;
    }

    od_teacher *teacher = NULL;
    const int opened = open_teacher(&a, &teacher);
    if (opened != 0) {
        scene_list_free(&scenes);
        return opened;
    }
    const od_teacher_info info = od_teacher_get_info(teacher);
    char output[PATH_SIZE];
    if (a.output != NULL)
        snprintf(output, sizeof output, "%s", a.output);
    else
        snprintf(output, sizeof output, "%s/features/%s-%s-%lld", a.dataset, info.network_name, info.layer,
                 (long long)info.input_size);
    if (!a.quiet)
        fprintf(stderr, "teacher: %s layer %s at %lld pixels: %lld x %lld x %lld features, stride %lld; %d scenes\n",
                info.network_name, info.layer, (long long)info.input_size, (long long)info.height,
                (long long)info.width, (long long)info.channels, (long long)info.stride, scenes.count);

    od_feature_cache_info cache_info = {0};
    snprintf(cache_info.network, sizeof cache_info.network, "%s", info.network_name);
    snprintf(cache_info.layer, sizeof cache_info.layer, "%s", info.layer);
    cache_info.input_height = info.input_size;
    cache_info.input_width = info.input_size;
    cache_info.stride = info.stride;
    /* Lifting puts cell j at stride j + (stride - 1) / 2 (3.5 at stride 8).
     * InceptionV3 mixed2 cells sit at 8 j + 13, so readers take the offset
     * from the cache. */
    cache_info.offset = info.offset;
    cache_info.channels = a.channels;

    od_pca *pca = NULL;
    status = od_make_folders(output, &err);
    if (status == 0)
        status = prepare_pca(teacher, &a, output, cache_info.pca_checksum, &pca, &err);
    if (status == 0)
        status = write_caches(teacher, pca, &scenes, &cache_info, output, a.quiet, &err);
    if (status != 0)
        fprintf(stderr, "oddone teacher: %s\n", err.message);
    od_pca_free(pca);
    od_teacher_free(teacher);
    scene_list_free(&scenes);
    return status == 0 ? 0 : 1;
}
