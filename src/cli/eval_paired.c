/* `oddone eval --paired A_DIR B_DIR`: reads two folders that `oddone eval`
 * wrote (scenes.csv and objects.csv) and compares them by a paired
 * bootstrap over scenes (od_bootstrap_paired). Both must hold the same
 * evaluated scenes with the same true objects, or the comparison is
 * rejected. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/eval.h"
#include "eval/evaluate.h"
#include "io/atomic_file.h"
#include "io/folder.h"

#define PAIRED_DEFAULT_RESAMPLES 2000
#define PAIRED_MAX_RESAMPLES 1000000
#define PAIRED_MAX_FIELDS 16

/* ---- CSV reading ---- */

/* A CSV file read whole; next_row splits it into fields in place. */
typedef struct csv_reader {
    char *text;
    char *cursor;
    const char *path;
    int line;
    int field_count;
    char *fields[PAIRED_MAX_FIELDS];
} csv_reader;

static int csv_open(csv_reader *reader, const char *path, od_error *err)
{
    memset(reader, 0, sizeof *reader);
    reader->path = path;
    FILE *stream = fopen(path, "rb");
    if (stream == NULL)
        return od_fail(err, "cannot open %s: %s", path, strerror(errno));
    long size = -1;
    if (fseek(stream, 0, SEEK_END) == 0)
        size = ftell(stream);
    if (size < 0 || fseek(stream, 0, SEEK_SET) != 0) {
        fclose(stream);
        return od_fail(err, "cannot read %s: not a regular file", path);
    }
    reader->text = malloc((size_t)size + 1);
    if (reader->text == NULL) {
        fclose(stream);
        return od_fail(err, "out of memory reading %s (%ld bytes)", path, size);
    }
    size_t got = fread(reader->text, 1, (size_t)size, stream);
    fclose(stream);
    if (got != (size_t)size) {
        free(reader->text);
        reader->text = NULL;
        return od_fail(err, "cannot read %s: short read", path);
    }
    reader->text[size] = '\0';
    if (memchr(reader->text, '\0', (size_t)size) != NULL) {
        free(reader->text);
        reader->text = NULL;
        return od_fail(err, "%s is not a text file (it contains a NUL byte)", path);
    }
    reader->cursor = reader->text;
    return 0;
}

static void csv_close(csv_reader *reader)
{
    free(reader->text);
    reader->text = NULL;
}

/* Splits the next row into fields. Returns 1 for a row, 0 at the end of
 * the file, -1 on a malformed row. */
static int csv_next_row(csv_reader *reader, od_error *err)
{
    char *c = reader->cursor;
    if (*c == '\0')
        return 0;
    reader->line++;
    reader->field_count = 0;
    for (;;) {
        if (reader->field_count == PAIRED_MAX_FIELDS)
            return od_fail(err, "%s, line %d: more than %d fields", reader->path, reader->line, PAIRED_MAX_FIELDS);
        char *out = c;
        reader->fields[reader->field_count++] = out;
        if (*c == '"') {
            c++;
            for (;;) {
                if (*c == '\0')
                    return od_fail(err, "%s, line %d: a quoted field is not closed", reader->path, reader->line);
                if (*c == '"' && c[1] == '"') {
                    *out++ = '"';
                    c += 2;
                } else if (*c == '"') {
                    c++;
                    break;
                } else {
                    *out++ = *c++;
                }
            }
            if (*c != ',' && *c != '\n' && *c != '\r' && *c != '\0')
                return od_fail(err, "%s, line %d: text after a closing quote", reader->path, reader->line);
        } else {
            while (*c != ',' && *c != '\n' && *c != '\r' && *c != '\0')
                out++, c++;
        }
        /* out may point at the separator, so read it before ending the field. */
        char end = *c;
        char after = end != '\0' ? c[1] : '\0';
        *out = '\0';
        if (end == ',') {
            c++;
            continue;
        }
        if (end == '\r' && after == '\n')
            c += 2;
        else if (end != '\0')
            c++;
        reader->cursor = c;
        return 1;
    }
}

/* Checks that the first row is exactly `header` (comma-separated names). */
static int csv_expect_header(csv_reader *reader, const char *header, od_error *err)
{
    int row = csv_next_row(reader, err);
    if (row < 0)
        return -1;
    char joined[512] = "";
    for (int f = 0; row == 1 && f < reader->field_count; f++) {
        size_t used = strlen(joined);
        snprintf(joined + used, sizeof joined - used, f == 0 ? "%s" : ",%s", reader->fields[f]);
    }
    if (row == 0 || strcmp(joined, header) != 0)
        return od_fail(err, "%s: the header is \"%s\"; expected \"%s\" (a file that oddone eval wrote)",
                       reader->path, joined, header);
    return 0;
}

static int field_integer(const csv_reader *reader, int index, const char *name, long low, long high, long *value,
                         od_error *err)
{
    const char *text = reader->fields[index];
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || parsed < low || parsed > high)
        return od_fail(err, "%s, line %d: %s is \"%s\"; expected an integer from %ld to %ld", reader->path,
                       reader->line, name, text, low, high);
    *value = parsed;
    return 0;
}

static int field_double(const csv_reader *reader, int index, const char *name, int allow_infinity, double *value,
                        od_error *err)
{
    const char *text = reader->fields[index];
    char *end;
    errno = 0;
    double parsed = strtod(text, &end);
    if (end == text || *end != '\0' || isnan(parsed) || (!allow_infinity && isinf(parsed)))
        return od_fail(err, "%s, line %d: %s is \"%s\"; expected a %snumber", reader->path, reader->line, name,
                       text, allow_infinity ? "" : "finite ");
    *value = parsed;
    return 0;
}

/* ---- reading a result folder ---- */

/* One evaluated scene as scenes.csv lists it. */
typedef struct listed_scene {
    char *name;
    int truth_count;
    int predicted_count;
    int matched_count;
} listed_scene;

static int read_scene_list(const char *folder, listed_scene **scenes, int *count, od_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/scenes.csv", folder);
    csv_reader reader;
    *scenes = NULL;
    *count = 0;
    if (csv_open(&reader, path, err) != 0)
        return -1;
    int status = csv_expect_header(&reader, OD_EVAL_SCENES_HEADER, err);
    int capacity = 0;
    while (status == 0) {
        int row = csv_next_row(&reader, err);
        if (row <= 0) {
            status = row;
            break;
        }
        if (reader.field_count != 13) {
            status = od_fail(err, "%s, line %d: %d fields; expected 13", path, reader.line, reader.field_count);
            break;
        }
        if (strcmp(reader.fields[1], "ok") != 0)
            continue;
        long truth = 0, predicted = 0, matched = 0;
        if (field_integer(&reader, 3, "truth_objects", 0, INT_MAX, &truth, err) != 0 ||
            field_integer(&reader, 5, "predicted_objects", 0, INT_MAX, &predicted, err) != 0 ||
            field_integer(&reader, 6, "matched", 0, truth, &matched, err) != 0) {
            status = -1;
            break;
        }
        if (*count == capacity) {
            capacity = capacity > 0 ? 2 * capacity : 64;
            listed_scene *grown = realloc(*scenes, (size_t)capacity * sizeof *grown);
            if (grown == NULL) {
                status = od_fail(err, "out of memory reading %s", path);
                break;
            }
            *scenes = grown;
        }
        listed_scene *scene = &(*scenes)[*count];
        scene->name = strdup(reader.fields[0]);
        if (scene->name == NULL) {
            status = od_fail(err, "out of memory reading %s", path);
            break;
        }
        scene->truth_count = (int)truth;
        scene->predicted_count = (int)predicted;
        scene->matched_count = (int)matched;
        (*count)++;
    }
    csv_close(&reader);
    return status;
}

static void free_scene_list(listed_scene *scenes, int count)
{
    for (int s = 0; s < count; s++)
        free(scenes[s].name);
    free(scenes);
}

/* Reads one objects.csv row into object (kind points into the reader). */
static int read_object_row(const csv_reader *reader, od_eval_object *object, const char **scene_name,
                           od_error *err)
{
    if (reader->field_count != 11)
        return od_fail(err, "%s, line %d: %d fields; expected 11", reader->path, reader->line, reader->field_count);
    memset(object, 0, sizeof *object);
    long truth_index = 0, label = 0, prediction = 0, predicted = 0, correct = 0;
    double eval_score = 0.0;
    if (field_integer(reader, 1, "truth_index", 0, INT_MAX, &truth_index, err) != 0 ||
        field_integer(reader, 2, "label", 0, 1, &label, err) != 0 ||
        field_integer(reader, 4, "prediction", -1, INT_MAX, &prediction, err) != 0 ||
        field_double(reader, 5, "iou", 0, &object->iou, err) != 0 ||
        field_double(reader, 6, "best_iou", 0, &object->best_iou, err) != 0 ||
        field_integer(reader, 8, "predicted", 0, 1, &predicted, err) != 0 ||
        field_integer(reader, 9, "correct", 0, 1, &correct, err) != 0 ||
        field_double(reader, 10, "eval_score", 1, &eval_score, err) != 0)
        return -1;
    if (reader->fields[7][0] != '\0') {
        if (field_double(reader, 7, "score", 0, &object->score, err) != 0)
            return -1;
        object->has_score = 1;
    }
    *scene_name = reader->fields[0];
    object->truth_index = (int)truth_index;
    object->label = (uint8_t)label;
    object->kind = reader->fields[3];
    object->prediction = (int)prediction;
    object->predicted = (uint8_t)predicted;
    object->correct = (uint8_t)correct;
    object->eval_score = (float)eval_score;
    return 0;
}

/* Reads a result folder into results, scene by scene as scenes.csv lists
 * the evaluated ones; objects.csv must list their objects in that order. */
static int read_result_folder(const char *folder, od_eval_results *results, od_error *err)
{
    listed_scene *scenes = NULL;
    int scene_count = 0;
    if (read_scene_list(folder, &scenes, &scene_count, err) != 0) {
        free_scene_list(scenes, scene_count);
        return -1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/objects.csv", folder);
    csv_reader reader;
    if (csv_open(&reader, path, err) != 0) {
        free_scene_list(scenes, scene_count);
        return -1;
    }
    int status = csv_expect_header(&reader, OD_EVAL_OBJECTS_HEADER, err);
    int largest = 1;
    for (int s = 0; s < scene_count; s++)
        if (scenes[s].truth_count > largest)
            largest = scenes[s].truth_count;
    od_eval_object *objects = malloc((size_t)largest * sizeof *objects);
    if (objects == NULL && status == 0)
        status = od_fail(err, "out of memory reading %s", path);
    for (int s = 0; s < scene_count && status == 0; s++) {
        const listed_scene *scene = &scenes[s];
        for (int t = 0; t < scene->truth_count && status == 0; t++) {
            int row = csv_next_row(&reader, err);
            if (row == 0)
                status = od_fail(err, "%s ends before object %d of scene %s", path, t, scene->name);
            const char *name = NULL;
            if (row < 0 || status != 0 || read_object_row(&reader, &objects[t], &name, err) != 0) {
                status = -1;
                break;
            }
            if (strcmp(name, scene->name) != 0 || objects[t].truth_index != t)
                status = od_fail(err, "%s, line %d: expected object %d of scene %s (as scenes.csv lists it); found "
                                      "object %d of scene %s",
                                 path, reader.line, t, scene->name, objects[t].truth_index, name);
        }
        if (status != 0)
            break;
        od_eval_scene listed = {
            .name = scene->name,
            .truth_count = scene->truth_count,
            .predicted_count = scene->predicted_count,
            .matched_count = scene->matched_count,
        };
        status = od_eval_add_built_scene(results, &listed, objects, scene->truth_count, err);
    }
    if (status == 0 && csv_next_row(&reader, err) != 0)
        status = od_fail(err, "%s, line %d: more objects than scenes.csv lists", path, reader.line);
    free(objects);
    csv_close(&reader);
    free_scene_list(scenes, scene_count);
    return status;
}

/* Checks that both sets hold the same scenes with the same true objects. */
static int check_same_scenes(const od_eval_results *a, const od_eval_results *b, const char *a_folder,
                             const char *b_folder, od_error *err)
{
    if (a->scene_count != b->scene_count)
        return od_fail(err, "%s has %lld evaluated scenes and %s has %lld; a paired comparison needs the same scenes",
                       a_folder, (long long)a->scene_count, b_folder, (long long)b->scene_count);
    for (int64_t s = 0; s < a->scene_count; s++) {
        const od_eval_scene *x = &a->scenes[s], *y = &b->scenes[s];
        if (strcmp(x->name, y->name) != 0)
            return od_fail(err, "scene %lld is %s in %s but %s in %s; a paired comparison needs the same scenes",
                           (long long)s + 1, x->name, a_folder, y->name, b_folder);
        if (x->truth_count != y->truth_count)
            return od_fail(err, "scene %s has %d true objects in %s but %d in %s", x->name, x->truth_count,
                           a_folder, y->truth_count, b_folder);
        for (int t = 0; t < x->truth_count; t++)
            if (a->labels[x->first_object + t] != b->labels[y->first_object + t])
                return od_fail(err, "scene %s, object %d is labelled %d in %s but %d in %s", x->name, t,
                               a->labels[x->first_object + t], a_folder, b->labels[y->first_object + t], b_folder);
    }
    return 0;
}

/* ---- the comparison ---- */

static void print_usage(FILE *stream)
{
    fprintf(stream, "usage: oddone eval --paired A_DIR B_DIR [-o DIR] [--resamples N] [--seed N]\n"
                    "\n"
                    "Compares two folders that oddone eval wrote, on the same scenes, by a paired\n"
                    "bootstrap: both are resampled with the same scenes, and the differences A - B\n"
                    "get %.0f %% percentile intervals. Prints a table; -o DIR also writes\n"
                    "DIR/paired.json. The defaults are 2000 resamples and seed 1.\n",
            OD_EVAL_LEVEL * 100.0);
}

static int parse_count(const char *option, const char *text, long long low, long long high, long long *value)
{
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || parsed < low || parsed > high) {
        fprintf(stderr, "oddone eval: %s expects an integer from %lld to %lld; got \"%s\"\n", option, low, high,
                text);
        return -1;
    }
    *value = parsed;
    return 0;
}

/* One metric of the comparison. */
typedef struct paired_row {
    const char *name; /* for the table */
    const char *key;  /* for paired.json */
    od_boot_metric metric;
    od_interval alone[2]; /* metric of A and of B on their own (estimate only) */
    od_paired_comparison paired;
} paired_row;

static void print_rows(const char *const folders[2], const od_eval_set *set, long long resamples,
                       const paired_row *rows, int row_count)
{
    printf("A = %s, B = %s: %lld scenes, %lld objects, %lld resamples\n", folders[0], folders[1],
           (long long)set->scene_count, (long long)set->count, resamples);
    printf("  %-26s %8s %8s %9s  %-19s %s\n", "metric", "A", "B", "A - B", "95 % interval", "A better in");
    for (int r = 0; r < row_count; r++) {
        const paired_row *row = &rows[r];
        if (row->paired.difference.status != OD_METRIC_DEFINED) {
            printf("  %-26s %8s %8s %9s  (undefined: one class only)\n", row->name, "-", "-", "-");
            continue;
        }
        char bounds[48] = "-";
        if (row->paired.resamples_used > 0)
            snprintf(bounds, sizeof bounds, "[%+.3f, %+.3f]", row->paired.lower, row->paired.upper);
        printf("  %-26s %8.3f %8.3f %+9.3f  %-19s %.1f %% of resamples\n", row->name, row->alone[0].estimate.value,
               row->alone[1].estimate.value, row->paired.difference.value, bounds,
               100.0 * row->paired.fraction_a_better);
    }
}

static cJSON *number_or_null(od_metric metric)
{
    return metric.status == OD_METRIC_DEFINED ? cJSON_CreateNumber(metric.value) : cJSON_CreateNull();
}

/* Writes DIR/paired.json atomically. */
static int write_paired_json(const char *output, const char *const folders[2], const od_eval_set *set,
                             long long resamples, long long seed, const paired_row *rows, int row_count,
                             od_error *err)
{
    if (od_make_folders(output, err) != 0)
        return -1;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "a", folders[0]);
    cJSON_AddStringToObject(root, "b", folders[1]);
    cJSON_AddNumberToObject(root, "scenes", (double)set->scene_count);
    cJSON_AddNumberToObject(root, "objects", (double)set->count);
    cJSON_AddNumberToObject(root, "resamples", (double)resamples);
    cJSON_AddNumberToObject(root, "seed", (double)seed);
    cJSON_AddNumberToObject(root, "level", OD_EVAL_LEVEL);
    for (int r = 0; r < row_count; r++) {
        const paired_row *row = &rows[r];
        cJSON *item = cJSON_AddObjectToObject(root, row->key);
        cJSON_AddItemToObject(item, "a", number_or_null(row->alone[0].estimate));
        cJSON_AddItemToObject(item, "b", number_or_null(row->alone[1].estimate));
        cJSON_AddItemToObject(item, "difference", number_or_null(row->paired.difference));
        if (row->paired.difference.status == OD_METRIC_DEFINED && row->paired.resamples_used > 0) {
            double bounds[2] = {row->paired.lower, row->paired.upper};
            cJSON_AddItemToObject(item, "interval", cJSON_CreateDoubleArray(bounds, 2));
            cJSON_AddNumberToObject(item, "fraction_a_better", row->paired.fraction_a_better);
        } else {
            cJSON_AddNullToObject(item, "interval");
            cJSON_AddNullToObject(item, "fraction_a_better");
        }
        cJSON_AddNumberToObject(item, "resamples_skipped", (double)row->paired.resamples_skipped);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL)
        return od_fail(err, "out of memory printing paired.json");
    char path[4200];
    snprintf(path, sizeof path, "%s/paired.json", output);
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

int od_cli_eval_paired(int argc, char **argv)
{
    const char *folders[2] = {NULL, NULL};
    const char *output = NULL;
    int folder_count = 0;
    long long resamples = PAIRED_DEFAULT_RESAMPLES, seed = 1;
    for (int i = 0; i < argc; i++) {
        const char *argument = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = strcmp(argument, "--resamples") == 0 || strcmp(argument, "--seed") == 0 ||
                          strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0;
        if (strcmp(argument, "--paired") == 0)
            continue;
        if (strcmp(argument, "-h") == 0 || strcmp(argument, "--help") == 0) {
            print_usage(stdout);
            return 0;
        }
        if (takes_value && value == NULL) {
            fprintf(stderr, "oddone eval: %s needs a value\n", argument);
            return 2;
        }
        if (strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0) {
            output = value;
            i++;
        } else if (strcmp(argument, "--seed") == 0) {
            if (parse_count(argument, value, 0, LLONG_MAX, &seed) != 0)
                return 2;
            i++;
        } else if (strcmp(argument, "--resamples") == 0) {
            if (parse_count(argument, value, 1, PAIRED_MAX_RESAMPLES, &resamples) != 0)
                return 2;
            i++;
        } else if (argument[0] == '-' && argument[1] != '\0') {
            fprintf(stderr, "oddone eval: %s is not an option of --paired; it takes A_DIR B_DIR [-o DIR] "
                            "[--resamples N] [--seed N]\n",
                    argument);
            return 2;
        } else if (folder_count < 2) {
            folders[folder_count++] = argument;
        } else {
            fprintf(stderr, "oddone eval: --paired takes two result folders; got a third, %s\n", argument);
            return 2;
        }
    }
    if (folder_count != 2) {
        fprintf(stderr, "oddone eval: --paired needs two result folders (A_DIR B_DIR); got %d\n", folder_count);
        return 2;
    }

    od_error err;
    od_eval_results *results[2] = {od_eval_results_new(), od_eval_results_new()};
    int status = 1;
    if (results[0] == NULL || results[1] == NULL) {
        fprintf(stderr, "oddone eval: out of memory\n");
        goto done;
    }
    for (int k = 0; k < 2; k++) {
        if (read_result_folder(folders[k], results[k], &err) != 0) {
            fprintf(stderr, "oddone eval: %s\n", err.message);
            goto done;
        }
    }
    if (check_same_scenes(results[0], results[1], folders[0], folders[1], &err) != 0) {
        fprintf(stderr, "oddone eval: %s\n", err.message);
        goto done;
    }

    od_eval_set sets[2];
    od_eval_results_set(results[0], &sets[0]);
    od_eval_results_set(results[1], &sets[1]);
    paired_row rows[] = {
        {.name = "AUROC, pooled", .key = "pooled_auroc", .metric = OD_BOOT_POOLED_AUROC},
        {.name = "AUROC, mean over scenes", .key = "scene_auroc", .metric = OD_BOOT_SCENE_AUROC},
        {.name = "accuracy", .key = "accuracy", .metric = OD_BOOT_ACCURACY},
        {.name = "top-1 hit rate", .key = "top1_hit_rate", .metric = OD_BOOT_TOP1},
    };
    int row_count = (int)(sizeof rows / sizeof rows[0]);
    for (int r = 0; r < row_count; r++) {
        /* One resample suffices for the estimates on A and B alone. */
        if (od_bootstrap_ci(&sets[0], rows[r].metric, 1, OD_EVAL_LEVEL, (uint64_t)seed, &rows[r].alone[0], &err) !=
                0 ||
            od_bootstrap_ci(&sets[1], rows[r].metric, 1, OD_EVAL_LEVEL, (uint64_t)seed, &rows[r].alone[1], &err) !=
                0 ||
            od_bootstrap_paired(&sets[0], &sets[1], rows[r].metric, resamples, OD_EVAL_LEVEL, (uint64_t)seed,
                                &rows[r].paired, &err) != 0) {
            fprintf(stderr, "oddone eval: %s\n", err.message);
            goto done;
        }
    }
    if (output != NULL &&
        write_paired_json(output, folders, &sets[0], resamples, seed, rows, row_count, &err) != 0) {
        fprintf(stderr, "oddone eval: %s\n", err.message);
        goto done;
    }
    print_rows(folders, &sets[0], resamples, rows, row_count);
    status = 0;
done:
    od_eval_results_free(results[0]);
    od_eval_results_free(results[1]);
    return status;
}
