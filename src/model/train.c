/* The training driver: see train.h. */
#include "model/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/threads.h"
#include "io/atomic_file.h"
#include "io/folder.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "model/augment.h"
#include "model/model_file.h"
#include "model/stage1.h"
#include "model/stage2.h"
#include "nn/optim.h"
#include "scene/dataset.h"
#include "scene/scene.h"
#include "teacher/feature_cache.h"
#include "teacher/teacher.h"

#define PATH_SIZE 4096
/* Streams forked from the run's seed, one per kind of draw. */
#define STREAM_SHUFFLE 1
#define STREAM_VIEWS 2
#define STREAM_AUGMENT 3

od_train_options od_train_options_default(void)
{
    od_train_options o;
    memset(&o, 0, sizeof o);
    o.split = "train";
    o.seed = 1;
    return o;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Writes folder/name into out (PATH_SIZE bytes); fails when too long. */
static int join_path(char *out, const char *folder, const char *name, od_error *err)
{
    if (snprintf(out, PATH_SIZE, "%s/%s", folder, name) >= PATH_SIZE)
        return od_fail(err, "the path %s/%s is longer than %d bytes", folder, name, PATH_SIZE - 1);
    return 0;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads a whole file into a NUL-terminated buffer. */
static char *read_text(const char *path, od_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        od_fail(err, "%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t size = 0, capacity = 0;
    for (;;) {
        if (size + 4096 + 1 > capacity) {
            capacity = capacity * 2 + 8192;
            char *grown = realloc(text, capacity);
            if (grown == NULL) {
                free(text);
                fclose(f);
                od_fail(err, "%s: out of memory", path);
                return NULL;
            }
            text = grown;
        }
        const size_t got = fread(text + size, 1, 4096, f);
        size += got;
        if (got < 4096)
            break;
    }
    const int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(text);
        od_fail(err, "%s: read failed", path);
        return NULL;
    }
    text[size] = '\0';
    return text;
}

static int write_text(const char *path, const char *text, od_error *err)
{
    od_atomic_file file;
    if (od_atomic_open(&file, path, err) != 0)
        return -1;
    if (fputs(text, file.stream) == EOF) {
        od_atomic_abort(&file);
        return od_fail(err, "%s: write failed", path);
    }
    return od_atomic_commit(&file, err);
}

/* ---- scenes ---------------------------------------------------------------------- */

/* One scene of the training set, prepared on first use. */
typedef struct train_scene {
    char *path;          /* the scene folder */
    char *name;          /* the split's relative path, for messages */
    char *cache_path;    /* its teacher cache */
    int dataset;         /* index into the run's datasets */
    od_stage1_scene *prepared; /* NULL until prepared, or when over the memory budget */
    od_camera *cameras;  /* the prepared views' cameras before augmentation */
    int flipped;         /* 1: the prepared views' images are mirrored */
    int kept;            /* 1: counted in the memory budget and kept between steps */
    int64_t bytes;
    int object_count;    /* ground truth, read with the prepared scene */
    od_box *truth;       /* (object_count) boxes before augmentation */
    uint8_t *labels;     /* (object_count) 1 for anomalous */
} train_scene;

typedef struct train_data {
    int scene_count;
    train_scene *scenes;
    od_feature_cache_info cache_info[OD_TRAIN_MAX_DATASETS];
    od_teacher *encoder;
    int64_t memory_used;
} train_data;

static void release_prepared(train_scene *s)
{
    od_stage1_scene_free(s->prepared);
    free(s->cameras);
    free(s->truth);
    free(s->labels);
    s->prepared = NULL;
    s->cameras = NULL;
    s->truth = NULL;
    s->labels = NULL;
    s->object_count = 0;
    s->flipped = 0;
    s->kept = 0;
}

static void train_data_free(train_data *d)
{
    for (int i = 0; i < d->scene_count; i++) {
        release_prepared(&d->scenes[i]);
        free(d->scenes[i].path);
        free(d->scenes[i].name);
        free(d->scenes[i].cache_path);
    }
    free(d->scenes);
    od_teacher_free(d->encoder);
    memset(d, 0, sizeof *d);
}

static char *copy_text(const char *text)
{
    const size_t n = strlen(text) + 1;
    char *copy = malloc(n);
    if (copy != NULL)
        memcpy(copy, text, n);
    return copy;
}

/* Names the command that writes a dataset's missing teacher caches. */
static int fail_missing_cache(const char *dataset, const char *path, const od_model_config *c, od_error *err)
{
    return od_fail(err,
                   "teacher cache %s not found; write the caches with \"oddone teacher %s --model %s --layer %s "
                   "--input-size %lld --channels %lld\"",
                   path, dataset, c->teacher_network, c->teacher_layer, (long long)c->teacher_input_size,
                   (long long)c->teacher_channels);
}

/* Fills the cache metadata that a dataset's caches must carry: the
 * configuration's teacher, the stride and offset recorded in its first
 * cache, and the checksum of its PCA file. */
static int read_cache_info(const char *dataset, const char *folder, const char *first_cache, const od_model_config *c,
                           od_feature_cache_info *info, od_error *err)
{
    memset(info, 0, sizeof *info);
    snprintf(info->network, sizeof info->network, "%s", c->teacher_network);
    snprintf(info->layer, sizeof info->layer, "%s", c->teacher_layer);
    info->input_height = info->input_width = c->teacher_input_size;
    info->channels = c->teacher_channels;
    char pca_path[PATH_SIZE];
    if (join_path(pca_path, folder, "pca.safetensors", err) != 0)
        return -1;
    if (!file_exists(pca_path))
        return fail_missing_cache(dataset, pca_path, c, err);
    if (od_feature_cache_checksum(pca_path, info->pca_checksum, err) != 0)
        return -1;
    od_safetensors *st = od_safetensors_read(first_cache, err);
    if (st == NULL)
        return -1;
    const char *stride = od_safetensors_metadata(st, "stride");
    const char *offset = od_safetensors_metadata(st, "offset");
    char *end_stride = NULL, *end_offset = NULL;
    if (stride != NULL)
        info->stride = strtoll(stride, &end_stride, 10);
    if (offset != NULL)
        info->offset = strtod(offset, &end_offset);
    const int valid = stride != NULL && offset != NULL && *end_stride == '\0' && *end_offset == '\0' &&
                      info->stride > 0 && isfinite(info->offset);
    od_safetensors_free(st);
    if (!valid)
        return od_fail(err, "%s: metadata stride or offset is missing or invalid; recompute the caches with "
                            "\"oddone teacher %s\"",
                       first_cache, dataset);
    return 0;
}

/* Lists every dataset's split and checks that each scene has its cache. */
static int open_data(const od_train_options *o, const od_model_config *c, train_data *d, od_error *err)
{
    for (int k = 0; k < o->dataset_count; k++) {
        od_dataset dataset;
        if (od_dataset_open(o->datasets[k], o->split, &dataset, err) != 0)
            return od_fail_context(err, "dataset %s", o->datasets[k]);
        char folder[PATH_SIZE];
        snprintf(folder, sizeof folder, "%s/features/%s-%s-%lld", o->datasets[k], c->teacher_network,
                 c->teacher_layer, (long long)c->teacher_input_size);
        train_scene *grown = realloc(d->scenes, (size_t)(d->scene_count + dataset.scene_count) * sizeof *grown);
        if (grown == NULL) {
            od_dataset_free(&dataset);
            return od_fail(err, "out of memory for the scene list");
        }
        d->scenes = grown;
        int status = 0;
        for (int i = 0; i < dataset.scene_count && status == 0; i++) {
            train_scene *s = &d->scenes[d->scene_count];
            memset(s, 0, sizeof *s);
            char cache[PATH_SIZE];
            if (snprintf(cache, sizeof cache, "%s/%s.safetensors", folder, dataset.scene_names[i]) >=
                (int)sizeof cache) {
                status = od_fail(err, "the cache path of %s under %s is too long", dataset.scene_names[i], folder);
                break;
            }
            s->path = copy_text(dataset.scenes[i]);
            s->name = copy_text(dataset.scene_names[i]);
            s->cache_path = copy_text(cache);
            s->dataset = k;
            d->scene_count++;
            if (s->path == NULL || s->name == NULL || s->cache_path == NULL)
                status = od_fail(err, "out of memory for the scene list");
            else if (!file_exists(cache))
                status = fail_missing_cache(o->datasets[k], cache, c, err);
            else if (i == 0)
                status = read_cache_info(o->datasets[k], folder, cache, c, &d->cache_info[k], err);
        }
        od_dataset_free(&dataset);
        if (status != 0)
            return -1;
    }
    if (d->scene_count == 0)
        return od_fail(err, "split %s has no scenes", o->split);
    return 0;
}

static int64_t prepared_bytes(const od_stage1_scene *p)
{
    const int64_t per_view = p->encoder_height * p->encoder_width * p->encoder_channels +
                             p->colour_size * p->colour_size * 4 + p->mask_size * p->mask_size +
                             p->feature_size * p->feature_size * (p->teacher_channels + 1);
    return (int64_t)p->view_count * per_view * (int64_t)sizeof(float);
}

/* Prepares scene s (loads it, runs the encoder, reads its teacher cache)
 * unless it is prepared already. */
static int prepare_scene(train_data *d, train_scene *s, const od_model_config *c, int views_needed, od_error *err)
{
    if (s->prepared != NULL)
        return 0;
    od_scene *scene = NULL;
    if (od_scene_load(s->path, NULL, &scene, err) != 0)
        return od_fail_context(err, "scene %s", s->name);
    if (scene->view_count < views_needed) {
        const int count = scene->view_count;
        od_scene_free(scene);
        return od_fail(err, "scene %s has %d views, but a step needs views.build + views.supervise = %d", s->name,
                       count, views_needed);
    }
    od_feature_cache *cache = od_feature_cache_read(s->cache_path, &d->cache_info[s->dataset], err);
    if (cache == NULL) {
        od_scene_free(scene);
        return od_fail_context(err, "scene %s", s->name);
    }
    s->prepared = od_stage1_scene_prepare_cached(scene, c, d->encoder, cache, &d->cache_info[s->dataset], err);
    od_feature_cache_free(cache);
    const int objects = scene->object_count;
    s->cameras = malloc((size_t)scene->view_count * sizeof *s->cameras);
    s->truth = malloc((size_t)(objects > 0 ? objects : 1) * sizeof *s->truth);
    s->labels = malloc((size_t)(objects > 0 ? objects : 1));
    if (s->truth != NULL && s->labels != NULL) {
        s->object_count = objects;
        for (int i = 0; i < objects; i++) {
            s->truth[i] = scene->objects[i].box;
            s->labels[i] = scene->objects[i].label == OD_LABEL_ANOMALOUS;
        }
    }
    od_scene_free(scene);
    if (s->prepared == NULL) {
        release_prepared(s);
        return od_fail_context(err, "scene %s", s->name);
    }
    if (s->cameras == NULL || s->truth == NULL || s->labels == NULL) {
        release_prepared(s);
        return od_fail(err, "out of memory for the cameras and boxes of scene %s", s->name);
    }
    for (int v = 0; v < s->prepared->view_count; v++)
        s->cameras[v] = s->prepared->views[v].camera;
    s->flipped = 0;
    s->bytes = prepared_bytes(s->prepared);
    return 0;
}

/* Keeps a prepared scene in memory while the budget allows, else frees it. */
static void keep_or_release(train_data *d, train_scene *s)
{
    if (s->prepared == NULL || s->kept)
        return;
    if (d->memory_used + s->bytes <= OD_TRAIN_SCENE_MEMORY) {
        d->memory_used += s->bytes;
        s->kept = 1;
    } else {
        release_prepared(s);
    }
}

/* Mirrors every view's maps and targets horizontally. */
static void mirror_scene(od_stage1_scene *p)
{
    for (int v = 0; v < p->view_count; v++) {
        od_stage1_view *view = &p->views[v];
        od_augment_mirror_rows(view->encoder, p->encoder_height, p->encoder_width, p->encoder_channels);
        od_augment_mirror_rows(view->colour, p->colour_size, p->colour_size, 3);
        od_augment_mirror_rows(view->colour_weight, p->colour_size, p->colour_size, 1);
        od_augment_mirror_rows(view->mask, p->mask_size, p->mask_size, 1);
        od_augment_mirror_rows(view->teacher, p->feature_size, p->feature_size, p->teacher_channels);
        od_augment_mirror_rows(view->teacher_weight, p->feature_size, p->feature_size, 1);
    }
}

/* Applies a world change to a prepared scene: its cameras from the
 * originals, its images mirrored when the change's flip differs from
 * theirs. */
static void augment_scene(train_scene *s, const od_augment *a)
{
    if (a->flip != s->flipped) {
        mirror_scene(s->prepared);
        s->flipped = a->flip;
    }
    for (int v = 0; v < s->prepared->view_count; v++)
        od_augment_camera(a, &s->cameras[v], &s->prepared->views[v].camera);
}

/* ---- schedule ----------------------------------------------------------------------- */

/* Returns the scene index of step t: position t mod S of epoch t / S's
 * shuffle of the S scenes. */
static int scene_of_step(const od_rng *base, int64_t step, int scene_count, int *order)
{
    const int64_t epoch = step / scene_count;
    od_rng rng = od_rng_fork(base, STREAM_SHUFFLE);
    rng = od_rng_fork(&rng, (uint64_t)epoch);
    for (int i = 0; i < scene_count; i++)
        order[i] = i;
    for (int i = scene_count - 1; i > 0; i--) {
        const int j = (int)od_rng_below(&rng, (uint64_t)i + 1);
        const int swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
    return order[step % scene_count];
}

/* Draws `count` distinct views out of view_count for step t. */
static void draw_views(const od_rng *base, int64_t step, int view_count, int count, int *pool, int *out)
{
    od_rng rng = od_rng_fork(base, STREAM_VIEWS);
    rng = od_rng_fork(&rng, (uint64_t)step);
    for (int i = 0; i < view_count; i++)
        pool[i] = i;
    for (int i = 0; i < count; i++) {
        const int j = i + (int)od_rng_below(&rng, (uint64_t)(view_count - i));
        const int swap = pool[i];
        pool[i] = pool[j];
        pool[j] = swap;
        out[i] = pool[i];
    }
}

static od_augment augment_of_step(const od_rng *base, int64_t step, const od_model_config *c)
{
    od_rng rng = od_rng_fork(base, STREAM_AUGMENT);
    rng = od_rng_fork(&rng, (uint64_t)step);
    return od_augment_draw(&rng, c->rotation_degrees, c->translation, c->flips);
}

static double learning_rate(double lr, int64_t step, int64_t warmup)
{
    if (warmup <= 0 || step + 1 >= warmup)
        return lr;
    return lr * (double)(step + 1) / (double)warmup;
}

/* ---- the run folder ------------------------------------------------------------------ */

/* Writes RUN/config.json and RUN/run.json, or checks them against this
 * run when RUN has them already. Sets *existing when RUN was started
 * before. */
static int check_run_folder(const od_train_options *o, const cJSON *config_json, int *existing, od_error *err)
{
    char path[PATH_SIZE];
    if (od_make_folders(o->run, err) != 0)
        return -1;
    cJSON *run = cJSON_CreateObject();
    cJSON *data = cJSON_AddArrayToObject(run, "data");
    for (int k = 0; k < o->dataset_count; k++)
        cJSON_AddItemToArray(data, cJSON_CreateString(o->datasets[k]));
    cJSON_AddStringToObject(run, "split", o->split);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(run, "seed", seed);

    const cJSON *mine[2] = {config_json, run};
    const char *names[2] = {"config.json", "run.json"};
    const char *what[2] = {"another configuration", "another seed, split or dataset list"};
    int status = 0;
    *existing = 0;
    for (int i = 0; i < 2 && status == 0; i++) {
        if (join_path(path, o->run, names[i], err) != 0) {
            status = -1;
            break;
        }
        if (file_exists(path)) {
            *existing = 1;
            char *text = read_text(path, err);
            cJSON *theirs = text != NULL ? cJSON_Parse(text) : NULL;
            if (text == NULL)
                status = -1;
            else if (theirs == NULL)
                status = od_fail(err, "%s: invalid JSON; remove the run folder or choose another --out", path);
            else if (!cJSON_Compare(theirs, mine[i], 1))
                status = od_fail(err, "%s records %s than this run; rerun with the same settings to resume, or "
                                      "choose another --out",
                                 path, what[i]);
            cJSON_Delete(theirs);
            free(text);
        } else {
            char *text = cJSON_Print(mine[i]);
            status = text == NULL ? od_fail(err, "out of memory") : write_text(path, text, err);
            free(text);
        }
    }
    cJSON_Delete(run);
    return status;
}

/* Reads RUN/stageN/checkpoint.json: the step and the two file names. */
static int read_checkpoint(const char *folder, int64_t *step, char *params, char *adam, od_error *err)
{
    char path[PATH_SIZE];
    if (join_path(path, folder, "checkpoint.json", err) != 0)
        return -1;
    char *text = read_text(path, err);
    if (text == NULL)
        return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "step");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "params");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "adam");
    int status = 0;
    if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble != floor(s->valuedouble) ||
        !cJSON_IsString(p) || !cJSON_IsString(a) || strchr(p->valuestring, '/') != NULL ||
        strchr(a->valuestring, '/') != NULL)
        status = od_fail(err, "%s: expected an object with a step (integer >= 0) and the params and adam file names",
                         path);
    else {
        *step = (int64_t)s->valuedouble;
        if (join_path(params, folder, p->valuestring, err) != 0 || join_path(adam, folder, a->valuestring, err) != 0)
            status = -1;
    }
    cJSON_Delete(root);
    return status;
}

/* Loads a stage's parameters and Adam state from the checkpoint in folder
 * and writes its step to *step. checkpoint names the checkpoint file in
 * the progress line. */
static int resume_stage(const char *folder, const char *checkpoint, int stage, od_params *params, od_adam *adam,
                        int quiet, int64_t *step, od_error *err)
{
    char params_path[PATH_SIZE], adam_path[PATH_SIZE];
    if (read_checkpoint(folder, step, params_path, adam_path, err) != 0 ||
        od_params_load(params, params_path, err) != 0 || od_adam_load(adam, adam_path, err) != 0)
        return -1;
    if (!quiet)
        fprintf(stderr, "train: stage %d resumes from step %lld of %s\n", stage, (long long)*step, checkpoint);
    return 0;
}

/* Writes a checkpoint of step `step`, then removes the previous one's files. */
static int write_checkpoint(const char *folder, int64_t step, int64_t previous, od_params *params, od_adam *adam,
                            od_error *err)
{
    char name_p[64], name_a[64], path[PATH_SIZE];
    snprintf(name_p, sizeof name_p, "params-%08lld.safetensors", (long long)step);
    snprintf(name_a, sizeof name_a, "adam-%08lld.safetensors", (long long)step);
    if (join_path(path, folder, name_p, err) != 0 || od_params_save(params, path, err) != 0)
        return -1;
    if (join_path(path, folder, name_a, err) != 0 || od_adam_save(adam, path, err) != 0)
        return -1;
    char text[256];
    snprintf(text, sizeof text, "{\n\t\"step\":\t%lld,\n\t\"params\":\t\"%s\",\n\t\"adam\":\t\"%s\"\n}\n",
             (long long)step, name_p, name_a);
    if (join_path(path, folder, "checkpoint.json", err) != 0 || write_text(path, text, err) != 0)
        return -1;
    if (previous >= 0 && previous != step) {
        snprintf(name_p, sizeof name_p, "params-%08lld.safetensors", (long long)previous);
        snprintf(name_a, sizeof name_a, "adam-%08lld.safetensors", (long long)previous);
        if (join_path(path, folder, name_p, err) == 0)
            unlink(path);
        if (join_path(path, folder, name_a, err) == 0)
            unlink(path);
    }
    return 0;
}

#define LOSSES_HEADER "stage,step,total,colour,mask,feature,grad_norm,lr,seconds\n"

/* Keeps the rows of losses.csv up to (stage, step) so that a resumed run
 * logs each step once, and opens it for appending. */
static FILE *open_losses(const char *run, int stage, int64_t step, od_error *err)
{
    char path[PATH_SIZE];
    if (join_path(path, run, "losses.csv", err) != 0)
        return NULL;
    if (file_exists(path)) {
        char *text = read_text(path, err);
        if (text == NULL)
            return NULL;
        od_atomic_file file;
        if (od_atomic_open(&file, path, err) != 0) {
            free(text);
            return NULL;
        }
        fputs(LOSSES_HEADER, file.stream);
        char *line = strchr(text, '\n');
        line = line != NULL ? line + 1 : text + strlen(text);
        while (*line != '\0') {
            char *next = strchr(line, '\n');
            if (next == NULL)
                break; /* a row cut short by a crash */
            int row_stage = 0;
            long long row_step = 0;
            if (sscanf(line, "%d,%lld,", &row_stage, &row_step) == 2 &&
                (row_stage < stage || (row_stage == stage && row_step <= step)))
                fwrite(line, 1, (size_t)(next - line + 1), file.stream);
            line = next + 1;
        }
        free(text);
        if (od_atomic_commit(&file, err) != 0)
            return NULL;
    } else if (write_text(path, LOSSES_HEADER, err) != 0) {
        return NULL;
    }
    FILE *f = fopen(path, "ab");
    if (f == NULL)
        od_fail(err, "%s: cannot open for appending (%s)", path, strerror(errno));
    return f;
}

/* ---- previews ----------------------------------------------------------------------- */

/* Copies a square of side `size` and `channels` channels into the tile at
 * column `tile` of the strip, scaled to `side` by nearest neighbour. With
 * channels > 3 the first three are shown, each stretched by the range in
 * `range` (low, high per channel). */
static void draw_tile(od_image *strip, int tile, int side, const float *data, int64_t size, int64_t channels,
                      const float range[6])
{
    for (int y = 0; y < side; y++) {
        const int64_t i = (int64_t)y * size / side;
        for (int x = 0; x < side; x++) {
            const int64_t j = (int64_t)x * size / side;
            const float *cell = data + (i * size + j) * channels;
            float *pixel = strip->pixels + ((int64_t)y * strip->width + tile * side + x) * 3;
            for (int c = 0; c < 3; c++) {
                if (channels == 1)
                    pixel[c] = cell[0];
                else if (range == NULL)
                    pixel[c] = cell[c];
                else
                    pixel[c] = (cell[c] - range[2 * c]) / fmaxf(range[2 * c + 1] - range[2 * c], 1e-6f);
            }
        }
    }
}

/* Writes RUN/previews/stage1-step-N.png: one strip of six tiles, the
 * rendered colour, its target, the rendered silhouette, the object mask,
 * the rendered teacher features and the teacher's, for the first view of
 * the step's set A. The features show their first three channels as RGB:
 * the caches hold PCA components in order of variance, so these are the
 * top three, each stretched over the target's range. */
static int write_preview(const char *run, int stage, int64_t step, const od_stage1_renders *r, od_error *err)
{
    const int side = (int)r->colour_size;
    od_image strip = {0};
    if (od_image_new(6 * side, side, 3, &strip, err) != 0)
        return -1;
    float range[6];
    const int64_t cells = r->feature_size * r->feature_size, k = r->feature_channels;
    for (int c = 0; c < 3; c++) {
        range[2 * c] = INFINITY;
        range[2 * c + 1] = -INFINITY;
        for (int64_t i = 0; i < cells && c < k; i++) {
            const float v = r->feature_target[i * k + c];
            range[2 * c] = fminf(range[2 * c], v);
            range[2 * c + 1] = fmaxf(range[2 * c + 1], v);
        }
        if (c >= k)
            range[2 * c] = range[2 * c + 1] = 0.0f;
    }
    draw_tile(&strip, 0, side, r->colour, r->colour_size, 3, NULL);
    draw_tile(&strip, 1, side, r->colour_target, r->colour_size, 3, NULL);
    draw_tile(&strip, 2, side, r->mask, r->mask_size, 1, NULL);
    draw_tile(&strip, 3, side, r->mask_target, r->mask_size, 1, NULL);
    if (k >= 3) {
        draw_tile(&strip, 4, side, r->features, r->feature_size, k, range);
        draw_tile(&strip, 5, side, r->feature_target, r->feature_size, k, range);
    }
    char path[PATH_SIZE], name[64];
    snprintf(name, sizeof name, "previews/stage%d-step-%08lld.png", stage, (long long)step);
    int status = join_path(path, run, "previews", err);
    if (status == 0)
        status = od_make_folders(path, err);
    if (status == 0)
        status = join_path(path, run, name, err);
    if (status == 0)
        status = od_image_write_png(path, &strip, err);
    od_image_free(&strip);
    return status;
}

/* ---- stage 1 ------------------------------------------------------------------------ */

static void format_duration(double seconds, char *text, size_t size)
{
    if (seconds < 90.0)
        snprintf(text, size, "%.0f s", seconds);
    else if (seconds < 5400.0)
        snprintf(text, size, "%.0f min", seconds / 60.0);
    else
        snprintf(text, size, "%.1f h", seconds / 3600.0);
}

static int run_stage1(const od_train_options *o, const od_model_config *config, train_data *d, od_error *err)
{
    od_model_config c = *config;
    if (c.variant == OD_MODEL_VARIANT_A || c.variant == OD_MODEL_VARIANT_B)
        c.loss_feature = 0.0;
    const int64_t total = o->steps > 0 ? o->steps : c.stage1_steps;
    const int views_needed = (int)(c.views_build + c.views_supervise);
    char folder[PATH_SIZE], checkpoint[PATH_SIZE];
    if (join_path(folder, o->run, "stage1", err) != 0 || od_make_folders(folder, err) != 0 ||
        join_path(checkpoint, folder, "checkpoint.json", err) != 0)
        return -1;
    const int has_checkpoint = file_exists(checkpoint);

    /* The network's input width is the encoder's: prepare the first scene to learn it. */
    od_rng base;
    od_rng_seed(&base, o->seed ^ 0x545241494e524e47ull);
    int *order = malloc((size_t)d->scene_count * sizeof *order);
    int *pool = NULL, *views = malloc((size_t)views_needed * sizeof *views);
    if (order == NULL || views == NULL) {
        free(order);
        free(views);
        return od_fail(err, "out of memory");
    }
    od_stage1 *s = NULL;
    FILE *losses = NULL;
    int status = prepare_scene(d, &d->scenes[0], &c, views_needed, err);
    if (status == 0 &&
        (s = od_stage1_new(&c, d->scenes[0].prepared->encoder_channels, o->seed, err)) == NULL)
        status = -1;
    if (status == 0)
        keep_or_release(d, &d->scenes[0]);
    int64_t step = 0;
    if (status == 0 && has_checkpoint) {
        status = resume_stage(folder, checkpoint, 1, od_stage1_params(s), od_stage1_adam(s), o->quiet, &step, err);
        if (status == 0)
            od_stage1_set_step_count(s, step);
    }
    if (status == 0 && (losses = open_losses(o->run, 1, step, err)) == NULL)
        status = -1;
    if (status == 0 && step >= total) {
        if (!o->quiet)
            fprintf(stderr, "train: stage 1 is done (%lld of %lld steps)\n", (long long)step, (long long)total);
    }

    int64_t last_checkpoint = has_checkpoint ? step : -1;
    double window_start = now_seconds(), window_steps = 0;
    od_stage1_losses l = {0};
    while (status == 0 && step < total) {
        const double start = now_seconds();
        train_scene *scene = &d->scenes[scene_of_step(&base, step, d->scene_count, order)];
        status = prepare_scene(d, scene, &c, views_needed, err);
        if (status != 0)
            break;
        free(pool);
        pool = malloc((size_t)scene->prepared->view_count * sizeof *pool);
        if (pool == NULL) {
            status = od_fail(err, "out of memory");
            break;
        }
        draw_views(&base, step, scene->prepared->view_count, views_needed, pool, views);
        const od_augment a = augment_of_step(&base, step, &c);
        augment_scene(scene, &a);
        const double lr = learning_rate(c.lr_backbone, step, c.warmup_steps);
        if (od_adam_set_lr(od_stage1_adam(s), 0, lr, err) != 0 ||
            od_stage1_step(s, scene->prepared, views, (int)c.views_build, views + c.views_build,
                           (int)c.views_supervise, &l, err) != 0) {
            status = od_fail_context(err, "scene %s", scene->name);
            break;
        }
        step++;
        const double seconds = now_seconds() - start;
        fprintf(losses, "1,%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f\n", (long long)step, l.total, l.colour, l.mask,
                l.feature, l.grad_norm, lr, seconds);
        fflush(losses);

        if (c.preview_every > 0 && step % c.preview_every == 0) {
            od_stage1_renders r;
            if (od_stage1_last_renders(s, &r, err) != 0 || write_preview(o->run, 1, step, &r, err) != 0)
                status = -1;
        }
        if (status == 0 && ((c.checkpoint_every > 0 && step % c.checkpoint_every == 0) || step == total)) {
            status = write_checkpoint(folder, step, last_checkpoint, od_stage1_params(s), od_stage1_adam(s), err);
            last_checkpoint = step;
        }
        keep_or_release(d, scene);
        window_steps++;
        if (!o->quiet && c.log_every > 0 && (step % c.log_every == 0 || step == total)) {
            const double now = now_seconds(), rate = window_steps / fmax(now - window_start, 1e-9);
            char eta[32];
            format_duration((double)(total - step) / rate, eta, sizeof eta);
            fprintf(stderr,
                    "train: stage 1, step %lld / %lld, loss %.4f (colour %.4f, mask %.4f, feature %.4f), "
                    "grad norm %.3g, %.2f steps/s, ETA %s\n",
                    (long long)step, (long long)total, l.total, l.colour, l.mask, l.feature, l.grad_norm, rate, eta);
            window_start = now;
            window_steps = 0;
        }
    }
    if (losses != NULL && fclose(losses) != 0 && status == 0)
        status = od_fail(err, "%s/losses.csv: write failed", o->run);
    od_stage1_free(s);
    free(order);
    free(pool);
    free(views);
    return status;
}

/* ---- stage 2 ------------------------------------------------------------------------ */

/* Finds the stage-1 parameters that stage 2 starts from: --init (a run
 * folder, whose stage1/checkpoint.json names them, or a parameter file),
 * else RUN's own stage-1 checkpoint. */
static int find_stage1_params(const od_train_options *o, char *path, od_error *err)
{
    const char *source = o->init != NULL ? o->init : o->run;
    struct stat st;
    if (o->init != NULL && stat(o->init, &st) == 0 && S_ISREG(st.st_mode)) {
        snprintf(path, PATH_SIZE, "%s", o->init);
        return 0;
    }
    char folder[PATH_SIZE], checkpoint[PATH_SIZE], adam[PATH_SIZE];
    if (join_path(folder, source, "stage1", err) != 0 || join_path(checkpoint, folder, "checkpoint.json", err) != 0)
        return -1;
    if (!file_exists(checkpoint))
        return od_fail(err, "stage 2 needs a trained stage 1, but %s not found; run --stage 1 first or give "
                            "--init with a stage-1 run folder or parameter file",
                       checkpoint);
    int64_t step = 0;
    return read_checkpoint(folder, &step, path, adam, err);
}

/* Scores the true objects of the split's first OD_TRAIN_FIT_SCENES scenes
 * with the trained model, on views 0 .. views.build - 1 without
 * augmentation, and writes RUN/fit.json:
 * per scene the logits and labels, and in total how many scenes with an
 * anomaly have it as their top-scoring object and how many objects the
 * logit's sign classifies right. It shows how well stage 2 fits its own
 * training scenes, not how it generalises. */
static int evaluate_fit(const od_train_options *o, const od_model_config *c, train_data *d, od_stage2 *s,
                        od_error *err)
{
    const int views_needed = (int)c->views_build;
    int *views = malloc((size_t)views_needed * sizeof *views);
    float *logits = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "scenes");
    int status = views == NULL ? od_fail(err, "out of memory") : 0;
    int anomalous_scenes = 0, top_right = 0, objects = 0, objects_right = 0;
    for (int i = 0; i < views_needed && status == 0; i++)
        views[i] = i;
    const od_augment identity = od_augment_identity();
    for (int i = 0; i < d->scene_count && i < OD_TRAIN_FIT_SCENES && status == 0; i++) {
        train_scene *scene = &d->scenes[i];
        status = prepare_scene(d, scene, c, views_needed, err);
        if (status != 0)
            break;
        augment_scene(scene, &identity);
        free(logits);
        logits = malloc((size_t)(scene->object_count > 0 ? scene->object_count : 1) * sizeof *logits);
        if (logits == NULL) {
            status = od_fail(err, "out of memory");
            break;
        }
        if (od_stage2_classify(s, scene->prepared, views, views_needed, scene->truth, scene->object_count, logits,
                               err) != 0) {
            status = od_fail_context(err, "scene %s", scene->name);
            break;
        }
        int top = 0, any = 0;
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "scene", scene->name);
        cJSON *logit_list = cJSON_AddArrayToObject(entry, "logits");
        cJSON *label_list = cJSON_AddArrayToObject(entry, "labels");
        for (int t = 0; t < scene->object_count; t++) {
            cJSON_AddItemToArray(logit_list, cJSON_CreateNumber(logits[t]));
            cJSON_AddItemToArray(label_list, cJSON_CreateNumber(scene->labels[t]));
            top = logits[t] > logits[top] ? t : top;
            any |= scene->labels[t];
            objects_right += (logits[t] >= 0.0f) == (scene->labels[t] != 0);
        }
        objects += scene->object_count;
        if (any) {
            anomalous_scenes++;
            top_right += scene->labels[top];
        }
        cJSON_AddBoolToObject(entry, "top_is_anomalous", any && scene->labels[top]);
        cJSON_AddItemToArray(list, entry);
        keep_or_release(d, scene);
    }
    cJSON_AddNumberToObject(root, "scenes_with_anomaly", anomalous_scenes);
    cJSON_AddNumberToObject(root, "top_is_anomalous", top_right);
    cJSON_AddNumberToObject(root, "objects", objects);
    cJSON_AddNumberToObject(root, "objects_right", objects_right);
    char path[PATH_SIZE];
    if (status == 0 && join_path(path, o->run, "fit.json", err) == 0) {
        char *text = cJSON_Print(root);
        status = text == NULL ? od_fail(err, "out of memory") : write_text(path, text, err);
        free(text);
    } else if (status == 0) {
        status = -1;
    }
    if (status == 0 && !o->quiet)
        fprintf(stderr,
                "train: fit on the training scenes: the anomalous object scores highest in %d of %d scenes with "
                "one, and %d of %d objects are classified right (%s)\n",
                top_right, anomalous_scenes, objects_right, objects, path);
    cJSON_Delete(root);
    free(views);
    free(logits);
    return status;
}

static int run_stage2(const od_train_options *o, const od_model_config *config, const char *config_text,
                      train_data *d, od_error *err)
{
    od_model_config c = *config;
    const int64_t total = o->steps > 0 ? o->steps : c.stage2_steps;
    const int views_needed = (int)c.views_build;
    char folder[PATH_SIZE], checkpoint[PATH_SIZE];
    if (join_path(folder, o->run, "stage2", err) != 0 || od_make_folders(folder, err) != 0 ||
        join_path(checkpoint, folder, "checkpoint.json", err) != 0)
        return -1;
    const int has_checkpoint = file_exists(checkpoint);

    od_rng base;
    od_rng_seed(&base, o->seed ^ 0x545241494e524e48ull);
    int *order = malloc((size_t)d->scene_count * sizeof *order);
    int *pool = NULL, *views = malloc((size_t)views_needed * sizeof *views);
    od_box *boxes = NULL;
    if (order == NULL || views == NULL) {
        free(order);
        free(views);
        return od_fail(err, "out of memory");
    }
    od_stage2 *s = NULL;
    FILE *losses = NULL;
    int status = prepare_scene(d, &d->scenes[0], &c, views_needed, err);
    if (status == 0 && (s = od_stage2_new(&c, d->scenes[0].prepared->encoder_channels, o->seed, err)) == NULL)
        status = -1;
    if (status == 0)
        keep_or_release(d, &d->scenes[0]);
    int64_t step = 0;
    if (status == 0 && has_checkpoint) {
        status = resume_stage(folder, checkpoint, 2, od_stage2_params(s), od_stage2_adam(s), o->quiet, &step, err);
        if (status == 0)
            od_stage2_set_step_count(s, step);
    } else if (status == 0) {
        char params_path[PATH_SIZE];
        status = find_stage1_params(o, params_path, err);
        if (status == 0)
            status = od_stage2_load_volume_net(s, params_path, err);
        if (status == 0 && !o->quiet)
            fprintf(stderr, "train: stage 2 starts from the stage-1 parameters %s\n", params_path);
    }
    if (status == 0 && (losses = open_losses(o->run, 2, step, err)) == NULL)
        status = -1;
    if (status == 0 && step >= total && !o->quiet)
        fprintf(stderr, "train: stage 2 is done (%lld of %lld steps)\n", (long long)step, (long long)total);

    int64_t last_checkpoint = has_checkpoint ? step : -1;
    double window_start = now_seconds();
    int window_steps = 0, window_objects = 0, window_correct = 0, window_predicted = 0;
    od_stage2_losses l;
    memset(&l, 0, sizeof l);
    while (status == 0 && step < total) {
        const double start = now_seconds();
        train_scene *scene = &d->scenes[scene_of_step(&base, step, d->scene_count, order)];
        status = prepare_scene(d, scene, &c, views_needed, err);
        if (status != 0)
            break;
        free(pool);
        free(boxes);
        pool = malloc((size_t)scene->prepared->view_count * sizeof *pool);
        boxes = malloc((size_t)(scene->object_count > 0 ? scene->object_count : 1) * sizeof *boxes);
        if (pool == NULL || boxes == NULL) {
            status = od_fail(err, "out of memory");
            break;
        }
        draw_views(&base, step, scene->prepared->view_count, views_needed, pool, views);
        const od_augment a = augment_of_step(&base, step, &c);
        augment_scene(scene, &a);
        for (int i = 0; i < scene->object_count; i++)
            od_augment_box(&a, &scene->truth[i], &boxes[i]);
        const double lr = learning_rate(c.lr_matcher, step, c.warmup_steps);
        if (od_adam_set_lr(od_stage2_adam(s), 0, lr, err) != 0 ||
            od_stage2_step(s, scene->prepared, views, views_needed, boxes, scene->labels, scene->object_count, 1,
                           &l, err) != 0) {
            status = od_fail_context(err, "scene %s", scene->name);
            break;
        }
        step++;
        const double seconds = now_seconds() - start;
        fprintf(losses, "2,%lld,%.6g,,,,%.6g,%.6g,%.4f\n", (long long)step, l.classification, l.grad_norm, lr,
                seconds);
        fflush(losses);
        if ((c.checkpoint_every > 0 && step % c.checkpoint_every == 0) || step == total) {
            status = write_checkpoint(folder, step, last_checkpoint, od_stage2_params(s), od_stage2_adam(s), err);
            last_checkpoint = step;
        }
        keep_or_release(d, scene);
        window_steps++;
        window_objects += l.objects;
        window_correct += l.correct;
        window_predicted += l.predicted;
        if (!o->quiet && c.log_every > 0 && (step % c.log_every == 0 || step == total)) {
            const double now = now_seconds(), rate = window_steps / fmax(now - window_start, 1e-9);
            char eta[32];
            format_duration((double)(total - step) / rate, eta, sizeof eta);
            fprintf(stderr,
                    "train: stage 2, step %lld / %lld, loss %.4f, accuracy %.1f %% of %d objects (%d from "
                    "predicted boxes), grad norm %.3g, %.2f steps/s, ETA %s\n",
                    (long long)step, (long long)total, l.classification,
                    100.0 * window_correct / (window_objects > 0 ? window_objects : 1), window_objects,
                    window_predicted, l.grad_norm, rate, eta);
            window_start = now;
            window_steps = window_objects = window_correct = window_predicted = 0;
        }
    }
    if (losses != NULL && fclose(losses) != 0 && status == 0)
        status = od_fail(err, "%s/losses.csv: write failed", o->run);
    char model_path[PATH_SIZE];
    if (status == 0 && step >= total && join_path(model_path, o->run, "model.safetensors", err) != 0)
        status = -1;
    if (status == 0 && step >= total) {
        od_model_encoder encoder;
        memset(&encoder, 0, sizeof encoder);
        snprintf(encoder.network, sizeof encoder.network, "%s", "mobilenetv2");
        snprintf(encoder.layer, sizeof encoder.layer, "%s", OD_TRAIN_ENCODER_LAYER);
        encoder.input_size = c.image_width;
        status = od_model_file_save(model_path, od_stage2_params(s), config_text, &encoder, err);
        if (status == 0 && !o->quiet)
            fprintf(stderr, "train: wrote the model %s\n", model_path);
        if (status == 0)
            status = evaluate_fit(o, &c, d, s, err);
    }
    od_stage2_free(s);
    free(order);
    free(pool);
    free(views);
    free(boxes);
    return status;
}

/* ---- entry ------------------------------------------------------------------------- */

/* Reads the configuration file, applies --variant, and returns both the
 * JSON written to RUN/config.json and the parsed configuration. */
static cJSON *load_config(const od_train_options *o, od_model_config *config, od_error *err)
{
    char *text = read_text(o->config_path, err);
    if (text == NULL)
        return NULL;
    cJSON *json = cJSON_Parse(text);
    free(text);
    if (json == NULL || !cJSON_IsObject(json)) {
        cJSON_Delete(json);
        od_fail(err, "%s: invalid JSON, expected one object", o->config_path);
        return NULL;
    }
    if (o->variant_set) {
        cJSON *variant = cJSON_CreateString(od_model_variant_name(o->variant));
        if (cJSON_GetObjectItemCaseSensitive(json, "variant") != NULL)
            cJSON_ReplaceItemInObjectCaseSensitive(json, "variant", variant);
        else
            cJSON_AddItemToObject(json, "variant", variant);
    }
    char *printed = cJSON_Print(json);
    const int status = printed == NULL ? od_fail(err, "out of memory")
                                       : od_model_config_parse(printed, strlen(printed), o->config_path, config, err);
    free(printed);
    if (status != 0) {
        cJSON_Delete(json);
        return NULL;
    }
    return json;
}

int od_train_run(const od_train_options *o, od_error *err)
{
    if (o == NULL || o->config_path == NULL || o->run == NULL || o->split == NULL)
        return od_fail(err, "train: a configuration, a split and a run folder are required");
    if (o->dataset_count < 1 || o->dataset_count > OD_TRAIN_MAX_DATASETS)
        return od_fail(err, "train: between 1 and %d dataset folders are required, got %d", OD_TRAIN_MAX_DATASETS,
                       o->dataset_count);
    if (o->stage < 0 || o->stage > 2)
        return od_fail(err, "train: stage %d is invalid, expected 1, 2 or 0 for both", o->stage);
    od_model_config config;
    cJSON *config_json = load_config(o, &config, err);
    if (config_json == NULL)
        return -1;
    train_data data;
    memset(&data, 0, sizeof data);
    int existing = 0;
    int status = open_data(o, &config, &data, err);
    if (status == 0 && (data.encoder = od_teacher_open(OD_TEACHER_MOBILENETV2, o->encoder_weights, OD_TRAIN_ENCODER_LAYER,
                                                       config.image_width, err)) == NULL)
        status = -1;
    char checkpoint1[PATH_SIZE], checkpoint2[PATH_SIZE];
    if (status == 0 && (join_path(checkpoint1, o->run, "stage1/checkpoint.json", err) != 0 ||
                        join_path(checkpoint2, o->run, "stage2/checkpoint.json", err) != 0))
        status = -1;
    if (status == 0 && o->resume && !file_exists(checkpoint1) && !file_exists(checkpoint2))
        status = od_fail(err, "--resume: neither %s nor %s was found, so there is no checkpoint to continue from",
                         checkpoint1, checkpoint2);
    if (status == 0)
        status = check_run_folder(o, config_json, &existing, err);
    char *config_text = status == 0 ? cJSON_Print(config_json) : NULL;
    if (status == 0 && config_text == NULL)
        status = od_fail(err, "out of memory");
    cJSON_Delete(config_json);
    if (status == 0 && !o->quiet)
        fprintf(stderr, "train: %s (variant %s), %d scenes from %d datasets, split %s, %d threads, run %s%s\n",
                config.name, od_model_variant_name(config.variant), data.scene_count, o->dataset_count, o->split,
                od_get_num_threads(), o->run, existing ? " (continued)" : "");
    if (status == 0 && o->stage != 2)
        status = run_stage1(o, &config, &data, err);
    if (status == 0 && o->stage != 1)
        status = run_stage2(o, &config, config_text, &data, err);
    free(config_text);
    train_data_free(&data);
    return status;
}
