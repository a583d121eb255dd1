/* `oddone eval --method compare|model DATASET`: runs a detector on every scene
 * of a dataset split, matches its boxes to the ground truth and reports
 * object-level figures (eval/evaluate.h). Writes DIR/metrics.json,
 * DIR/scenes.csv, DIR/objects.csv and DIR/roc.svg, and prints a table.
 * `oddone eval --paired` (eval_paired.c) compares two such folders. */
#include "cli/eval.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/log.h"
#include "detect/compare.h"
#include "detect/learned.h"
#include "eval/evaluate.h"
#include "eval/roc_svg.h"
#include "io/atomic_file.h"
#include "io/folder.h"
#include "scene/dataset.h"
#include "scene/scene.h"
#include "teacher/mobilenetv2.h"

#define EVAL_DEFAULT_OUTPUT "out/eval"
#define EVAL_DEFAULT_RESAMPLES 2000
#define EVAL_MAX_RESAMPLES 1000000
#define EVAL_DEFAULT_SEED 1

static void print_eval_usage(FILE *stream)
{
    fprintf(stream,
            "usage: oddone eval --method compare DATASET [OPTIONS]\n"
            "       oddone eval --method model --model PATH DATASET [OPTIONS]\n"
            "       oddone eval --paired A_DIR B_DIR [-o DIR] [--resamples N] [--seed N]\n"
            "\n"
            "Runs the detector on every scene of a dataset split and scores it against the\n"
            "ground truth, object by object. A predicted box matches a true object when their\n"
            "rotated 3D IoU exceeds %.1f (one to one, greedy by IoU). A true object takes its\n"
            "matched prediction's score; a missed object takes the lowest score (-inf), and\n"
            "counts as wrong. An object is correct when it is matched and its predicted label\n"
            "(odd or normal) is right.\n"
            "\n"
            "Figures: AUROC pooled over the split and averaged over scenes with both classes,\n"
            "accuracy, top-1 hit rate in scenes with one anomalous object, box mIoU, how often\n"
            "the object count is right, accuracy per anomaly kind and per object count, each\n"
            "with a %.0f %% bootstrap interval over scenes. Scenes that fail to load or to run\n"
            "are reported and counted, and the evaluation goes on.\n"
            "\n"
            "Writes DIR/metrics.json, DIR/scenes.csv (one row per scene), DIR/objects.csv (one\n"
            "row per true object: score, label, matched IoU) and DIR/roc.svg.\n"
            "\n"
            "--paired A_DIR B_DIR compares two such result folders on the same scenes: the\n"
            "differences (A - B) of the AUROCs, accuracy and top-1 hit rate with paired\n"
            "bootstrap intervals.\n"
            "\n"
            "options:\n"
            "  --method NAME          compare (the training-free detector) or model (a trained\n"
            "                         model file); required\n"
            "  --model PATH           model file for --method model (default: %s when it exists)\n"
            "  --density-threshold X  --method model: softplus density per voxel edge at which a\n"
            "                         voxel counts as occupied (default: the model's own)\n"
            "  --boxes SOURCE         --method model: density or masks (the visual hull of the\n"
            "                         object masks, as compare finds its objects); default: the\n"
            "                         model's localization.boxes, density when it has none\n"
            "  --split NAME           split of the dataset (default: test when present, else the\n"
            "                         only split; without splits/ every scene folder, \"all\")\n"
            "  --views N              use N views per scene (default: every view). The views are\n"
            "                         a partial Fisher-Yates shuffle seeded by --view-seed and the\n"
            "                         scene's path in the dataset, so the same seed picks the\n"
            "                         same views of a scene whatever else is evaluated. A scene\n"
            "                         with fewer than N views fails and is reported\n"
            "  --view-seed N          seed of the view choice (default %d)\n"
            "  -o, --output DIR       folder for the results; created when missing (default %s)\n"
            "  --resamples N          bootstrap resamples, 1 to %d (default %d)\n"
            "  --seed N               bootstrap seed (default %d)\n"
            "  --weights PATH         compare: teacher weights (default for MobileNetV2: %s);\n"
            "                         model: the encoder's weights (default: its network's file)\n"
            "\n"
            "compare options:\n"
            "  --features KIND        teacher (default) or colour (a colour histogram of every\n"
            "                         16-pixel cell, no network: the floor a teacher must beat)\n"
            "  --teacher NAME         mobilenetv2 (default), inceptionv3 or dinov2 (needs --weights);\n"
            "                         opened once for the whole run\n"
            "  --layer NAME           teacher layer (default for MobileNetV2: %s; other\n"
            "                         teachers: their default layer)\n"
            "  --input-size N         side in pixels that views are resized to (default for\n"
            "                         MobileNetV2 and colour: %d; other teachers: their default)\n"
            "  --occupancy MODE       auto (default: masks when every view has one, else colour),\n"
            "                         masks (the visual hull) or colour (colour consistency)\n"
            "\n"
            "  --quiet                print errors and the table only\n"
            "  -h, --help             print this text\n",
            OD_EVAL_IOU_THRESHOLD, OD_EVAL_LEVEL * 100.0, OD_LEARNED_DEFAULT_MODEL, EVAL_DEFAULT_SEED,
            EVAL_DEFAULT_OUTPUT, EVAL_MAX_RESAMPLES, EVAL_DEFAULT_RESAMPLES, EVAL_DEFAULT_SEED,
            OD_MOBILENETV2_DEFAULT_PATH, OD_COMPARE_DEFAULT_LAYER, OD_COMPARE_DEFAULT_INPUT_SIZE);
}

typedef struct eval_arguments {
    const char *dataset_path;
    const char *split;
    const char *output;
    const char *method;
    const char *model_path;     /* --method model */
    od_learned_model *model;    /* opened once for the run; NULL for compare */
    double density_threshold;   /* --method model: 0 keeps the model's */
    const char *boxes;          /* --method model: --boxes as given, or NULL */
    od_learned_boxes box_source; /* --boxes, parsed */
    const char *compare_option; /* the first option given that only compare takes */
    int views;          /* 0: every view */
    int teacher_given, layer_given, weights_given, size_given;
    uint64_t view_seed;
    int64_t resamples;
    uint64_t seed;
    od_compare_options options;
    int quiet;
} eval_arguments;

/* Parses an integer in [low, high]; prints the error and returns -1 otherwise. */
static int parse_integer(const char *option, const char *text, long long low, long long high, long long *value)
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

/* Checks the method against the options and picks the default model.
 * Prints the error and returns -1 on a usage error. */
static int check_method(eval_arguments *arguments)
{
    if (strcmp(arguments->method, "compare") == 0) {
        if (arguments->density_threshold > 0.0 || arguments->boxes != NULL) {
            fprintf(stderr, "oddone eval: %s applies to --method model only\n",
                    arguments->boxes != NULL ? "--boxes" : "--density-threshold");
            return -1;
        }
        if (arguments->model_path != NULL) {
            fprintf(stderr, "oddone eval: --model applies to --method model only\n");
            return -1;
        }
        return 0;
    }
    if (strcmp(arguments->method, "model") != 0) {
        fprintf(stderr, "oddone eval: unknown method \"%s\"; expected compare or model\n", arguments->method);
        return -1;
    }
    if (arguments->compare_option != NULL) {
        fprintf(stderr, "oddone eval: %s applies to --method compare only\n", arguments->compare_option);
        return -1;
    }
    if (arguments->model_path == NULL) {
        FILE *model = fopen(OD_LEARNED_DEFAULT_MODEL, "rb");
        if (model == NULL) {
            fprintf(stderr, "oddone eval: --method model needs --model PATH; the default model %s is missing\n",
                    OD_LEARNED_DEFAULT_MODEL);
            return -1;
        }
        fclose(model);
        arguments->model_path = OD_LEARNED_DEFAULT_MODEL;
    }
    return 0;
}

/* Returns 0 to go on, 1 after --help, 2 on a usage error. */
static int parse_arguments(int argc, char **argv, eval_arguments *arguments)
{
    memset(arguments, 0, sizeof *arguments);
    arguments->output = EVAL_DEFAULT_OUTPUT;
    arguments->view_seed = EVAL_DEFAULT_SEED;
    arguments->resamples = EVAL_DEFAULT_RESAMPLES;
    arguments->seed = EVAL_DEFAULT_SEED;
    arguments->options = od_compare_options_default();
    for (int i = 0; i < argc; i++) {
        const char *argument = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0 ||
                          strcmp(argument, "--method") == 0 || strcmp(argument, "--split") == 0 ||
                          strcmp(argument, "--views") == 0 || strcmp(argument, "--view-seed") == 0 ||
                          strcmp(argument, "--resamples") == 0 || strcmp(argument, "--seed") == 0 ||
                          strcmp(argument, "--layer") == 0 || strcmp(argument, "--input-size") == 0 ||
                          strcmp(argument, "--weights") == 0 || strcmp(argument, "--teacher") == 0 ||
                          strcmp(argument, "--features") == 0 || strcmp(argument, "--occupancy") == 0 ||
                          strcmp(argument, "--model") == 0 || strcmp(argument, "--density-threshold") == 0 ||
                          strcmp(argument, "--boxes") == 0;
        if (takes_value && value == NULL) {
            fprintf(stderr, "oddone eval: %s needs a value; run \"oddone eval --help\"\n", argument);
            return 2;
        }
        long long number = 0;
        if (strcmp(argument, "-h") == 0 || strcmp(argument, "--help") == 0) {
            print_eval_usage(stdout);
            return 1;
        } else if (strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0) {
            arguments->output = value;
        } else if (strcmp(argument, "--method") == 0) {
            arguments->method = value;
        } else if (strcmp(argument, "--model") == 0) {
            arguments->model_path = value;
        } else if (strcmp(argument, "--boxes") == 0) {
            if (od_learned_boxes_parse(value, &arguments->box_source) != 0) {
                fprintf(stderr, "oddone eval: --boxes expects density or masks; got \"%s\"\n", value);
                return 2;
            }
            arguments->boxes = value;
        } else if (strcmp(argument, "--density-threshold") == 0) {
            char *end;
            errno = 0;
            double threshold = strtod(value, &end);
            if (end == value || *end != '\0' || errno != 0 || !(threshold > 0.0) || threshold > 1e6) {
                fprintf(stderr, "oddone eval: --density-threshold expects a number above 0; got \"%s\"\n", value);
                return 2;
            }
            arguments->density_threshold = threshold;
        } else if (strcmp(argument, "--split") == 0) {
            arguments->split = value;
        } else if (strcmp(argument, "--views") == 0) {
            if (parse_integer(argument, value, 1, INT_MAX, &number) != 0)
                return 2;
            arguments->views = (int)number;
        } else if (strcmp(argument, "--view-seed") == 0) {
            if (parse_integer(argument, value, 0, LLONG_MAX, &number) != 0)
                return 2;
            arguments->view_seed = (uint64_t)number;
        } else if (strcmp(argument, "--resamples") == 0) {
            if (parse_integer(argument, value, 1, EVAL_MAX_RESAMPLES, &number) != 0)
                return 2;
            arguments->resamples = number;
        } else if (strcmp(argument, "--seed") == 0) {
            if (parse_integer(argument, value, 0, LLONG_MAX, &number) != 0)
                return 2;
            arguments->seed = (uint64_t)number;
        } else if (strcmp(argument, "--layer") == 0) {
            arguments->options.layer = value;
            arguments->layer_given = 1;
        } else if (strcmp(argument, "--weights") == 0) {
            arguments->options.weights_path = value;
            arguments->weights_given = 1;
        } else if (strcmp(argument, "--input-size") == 0) {
            if (parse_integer(argument, value, 32, 4096, &number) != 0)
                return 2;
            arguments->options.input_size = (int)number;
            arguments->size_given = 1;
        } else if (strcmp(argument, "--teacher") == 0) {
            od_error err;
            if (od_teacher_network_parse(value, &arguments->options.teacher, &err) != 0) {
                fprintf(stderr, "oddone eval: --teacher: %s\n", err.message);
                return 2;
            }
            arguments->teacher_given = 1;
        } else if (strcmp(argument, "--features") == 0) {
            if (strcmp(value, "teacher") == 0) {
                arguments->options.features = OD_COMPARE_FEATURES_TEACHER;
            } else if (strcmp(value, "colour") == 0 || strcmp(value, "color") == 0) {
                arguments->options.features = OD_COMPARE_FEATURES_COLOR;
            } else {
                fprintf(stderr, "oddone eval: --features expects teacher or colour; got \"%s\"\n", value);
                return 2;
            }
        } else if (strcmp(argument, "--occupancy") == 0) {
            if (strcmp(value, "auto") == 0) {
                arguments->options.occupancy = OD_COMPARE_OCCUPANCY_AUTO;
            } else if (strcmp(value, "masks") == 0) {
                arguments->options.occupancy = OD_COMPARE_OCCUPANCY_MASKS;
            } else if (strcmp(value, "colour") == 0 || strcmp(value, "color") == 0) {
                arguments->options.occupancy = OD_COMPARE_OCCUPANCY_COLOR;
            } else {
                fprintf(stderr, "oddone eval: --occupancy expects auto, masks or colour; got \"%s\"\n", value);
                return 2;
            }
        } else if (strcmp(argument, "--quiet") == 0) {
            arguments->quiet = 1;
        } else if (argument[0] == '-' && argument[1] != '\0') {
            fprintf(stderr, "oddone eval: unknown option %s; run \"oddone eval --help\"\n", argument);
            return 2;
        } else if (arguments->dataset_path == NULL) {
            arguments->dataset_path = argument;
        } else {
            fprintf(stderr, "oddone eval: more than one dataset given (%s and %s)\n", arguments->dataset_path,
                    argument);
            return 2;
        }
        int compare_only = strcmp(argument, "--layer") == 0 || strcmp(argument, "--input-size") == 0 ||
                           strcmp(argument, "--teacher") == 0 || strcmp(argument, "--features") == 0 ||
                           strcmp(argument, "--occupancy") == 0;
        if (compare_only && arguments->compare_option == NULL)
            arguments->compare_option = argument;
        if (takes_value)
            i++;
    }
    /* Another teacher starts from its own defaults, not MobileNetV2's. */
    if (arguments->teacher_given && arguments->options.teacher != OD_TEACHER_MOBILENETV2) {
        if (!arguments->layer_given)
            arguments->options.layer = NULL;
        if (!arguments->weights_given)
            arguments->options.weights_path = NULL;
        if (!arguments->size_given)
            arguments->options.input_size = 0;
    }
    if (arguments->method == NULL) {
        fprintf(stderr, "oddone eval: --method is missing; expected compare or model\n");
        return 2;
    }
    if (check_method(arguments) != 0)
        return 2;
    if (arguments->dataset_path == NULL) {
        fprintf(stderr, "oddone eval: the dataset is missing; usage: oddone eval --method %s DATASET\n",
                arguments->method);
        return 2;
    }
    return 0;
}

/* ---- running the detector ------------------------------------------------------ */

/* What happened to one scene of the split. */
typedef struct scene_run {
    int ok;
    char error[OD_ERROR_MESSAGE_SIZE];
    int view_count;
    int *views;
    double seconds;
    int64_t result_index; /* index into the results' scenes, -1 when failed */
} scene_run;

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* Picks the scene's views: all of them, or arguments->views by the seeded rule. */
static int choose_views(const eval_arguments *arguments, const char *name, int scene_views, scene_run *run,
                        od_error *err)
{
    int count = arguments->views > 0 ? arguments->views : scene_views;
    if (arguments->views > scene_views)
        return od_fail(err, "the scene has %d views, fewer than --views %d", scene_views, arguments->views);
    run->views = malloc((size_t)(count > 0 ? count : 1) * sizeof *run->views);
    if (run->views == NULL)
        return od_fail(err, "out of memory for %d views", count);
    run->view_count = count;
    if (arguments->views == 0) {
        for (int v = 0; v < count; v++)
            run->views[v] = v;
        return 0;
    }
    return od_eval_pick_views(arguments->view_seed, name, scene_views, count, run->views, err);
}

/* Loads one scene, runs the detector on its chosen views and adds the
 * matched objects to results. */
static int evaluate_scene(const eval_arguments *arguments, const char *path, const char *name,
                          od_eval_results *results, scene_run *run, od_error *err)
{
    od_scene *scene = NULL;
    if (od_scene_load(path, NULL, &scene, err) != 0)
        return -1;
    int status = -1;
    od_compare_result detected;
    memset(&detected, 0, sizeof detected);
    od_eval_truth *truth = NULL;
    od_eval_prediction *predictions = NULL;
    if (!scene->has_ground_truth) {
        od_fail(err, "%s has no ground-truth objects (%s format)", scene->metadata_path,
                od_scene_format_name(scene->format));
        goto done;
    }
    if (choose_views(arguments, name, scene->view_count, run, err) != 0)
        goto done;
    int detect_status = arguments->model != NULL
                            ? od_learned_detect(arguments->model, scene, run->views, run->view_count, &detected, err)
                            : od_compare_detect(scene, run->views, run->view_count, &arguments->options, &detected,
                                                err);
    if (detect_status != 0)
        goto done;

    truth = calloc((size_t)(scene->object_count > 0 ? scene->object_count : 1), sizeof *truth);
    predictions = calloc((size_t)(detected.object_count > 0 ? detected.object_count : 1), sizeof *predictions);
    if (truth == NULL || predictions == NULL) {
        od_fail(err, "out of memory");
        goto done;
    }
    for (int t = 0; t < scene->object_count; t++) {
        const od_scene_object *object = &scene->objects[t];
        truth[t].box = object->box;
        truth[t].label = object->label == OD_LABEL_ANOMALOUS;
        truth[t].kind = object->anomaly_kind;
    }
    for (int p = 0; p < detected.object_count; p++) {
        const od_compare_object *object = &detected.objects[p];
        predictions[p].box = object->box;
        predictions[p].has_score = object->has_score;
        predictions[p].score = object->score;
        predictions[p].odd = object->odd != 0;
    }
    status = od_eval_add_scene(results, name, truth, scene->object_count, predictions, detected.object_count, err);
    if (status == 0)
        run->result_index = results->scene_count - 1;
done:
    free(truth);
    free(predictions);
    od_compare_result_free(&detected);
    od_scene_free(scene);
    return status;
}

static void format_duration(double seconds, char *text, size_t size)
{
    if (seconds < 60.0)
        snprintf(text, size, "%.0f s", seconds);
    else if (seconds < 3600.0)
        snprintf(text, size, "%d min %02d s", (int)(seconds / 60.0), (int)fmod(seconds, 60.0));
    else
        snprintf(text, size, "%d h %02d min", (int)(seconds / 3600.0), (int)fmod(seconds / 60.0, 60.0));
}

/* Runs every scene of the split, printing a progress line per scene. */
static void run_scenes(const eval_arguments *arguments, const od_dataset *dataset, od_eval_results *results,
                       scene_run *runs)
{
    double start = now_seconds();
    for (int i = 0; i < dataset->scene_count; i++) {
        scene_run *run = &runs[i];
        run->result_index = -1;
        od_error err;
        od_error_clear(&err);
        double scene_start = now_seconds();
        run->ok = evaluate_scene(arguments, dataset->scenes[i], dataset->scene_names[i], results, run, &err) == 0;
        run->seconds = now_seconds() - scene_start;
        if (!run->ok) {
            snprintf(run->error, sizeof run->error, "%s", err.message);
            fprintf(stderr, "eval: scene %d/%d %s failed: %s\n", i + 1, dataset->scene_count,
                    dataset->scene_names[i], err.message);
        }
        if (arguments->quiet)
            continue;
        double elapsed = now_seconds() - start;
        char eta[32];
        format_duration(elapsed / (i + 1) * (dataset->scene_count - i - 1), eta, sizeof eta);
        if (run->ok) {
            const od_eval_scene *scene = &results->scenes[run->result_index];
            fprintf(stderr, "eval: scene %d/%d %s: %d of %d objects found, %.1f s, ETA %s\n", i + 1,
                    dataset->scene_count, dataset->scene_names[i], scene->matched_count, scene->truth_count,
                    run->seconds, eta);
        }
    }
}

/* ---- per-scene figures ------------------------------------------------------------ */

typedef struct scene_figures {
    int anomalous;
    double box_miou;
    od_metric auroc;
    od_top1 top1;
} scene_figures;

static void compute_scene_figures(const od_eval_results *results, int64_t s, scene_figures *figures)
{
    memset(figures, 0, sizeof *figures);
    int64_t begin = results->scene_offsets[s], end = results->scene_offsets[s + 1];
    double iou_sum = 0.0;
    for (int64_t i = begin; i < end; i++) {
        figures->anomalous += results->labels[i];
        iou_sum += results->objects[i].best_iou;
    }
    figures->box_miou = end > begin ? iou_sum / (double)(end - begin) : 0.0;
    int64_t offsets[2] = {0, end - begin};
    od_eval_set one = {
        .count = end - begin,
        .scores = results->scores + begin,
        .labels = results->labels + begin,
        .scene_count = 1,
        .scene_offsets = offsets,
        .correct = results->correct + begin,
    };
    /* od_eval_add_scene rejected NaN scores and labels other than 0 and 1, so these calls cannot fail. */
    od_auroc(one.scores, one.labels, one.count, &figures->auroc, NULL);
    od_top1_hit_rate(&one, &figures->top1, NULL);
}

/* ---- output files ------------------------------------------------------------------ */

/* Writes a CSV field, quoted when it contains a comma, a quote or a line break. */
static void write_csv_text(FILE *stream, const char *text)
{
    if (strpbrk(text, ",\"\n\r") == NULL) {
        fputs(text, stream);
        return;
    }
    fputc('"', stream);
    for (const char *c = text; *c != '\0'; c++) {
        if (*c == '"')
            fputc('"', stream);
        fputc(*c, stream);
    }
    fputc('"', stream);
}

static void write_scenes_csv(FILE *stream, const od_dataset *dataset, const scene_run *runs,
                             const od_eval_results *results)
{
    fputs(OD_EVAL_SCENES_HEADER "\n", stream);
    for (int i = 0; i < dataset->scene_count; i++) {
        const scene_run *run = &runs[i];
        write_csv_text(stream, dataset->scene_names[i]);
        fprintf(stream, ",%s,", run->ok ? "ok" : "failed");
        for (int v = 0; v < run->view_count; v++)
            fprintf(stream, v == 0 ? "%d" : " %d", run->views[v]);
        if (run->ok) {
            const od_eval_scene *scene = &results->scenes[run->result_index];
            scene_figures figures;
            compute_scene_figures(results, run->result_index, &figures);
            fprintf(stream, ",%d,%d,%d,%d,%d,%.6f,", scene->truth_count, figures.anomalous, scene->predicted_count,
                    scene->matched_count, scene->predicted_count == scene->truth_count, figures.box_miou);
            if (figures.auroc.status == OD_METRIC_DEFINED)
                fprintf(stream, "%.6f", figures.auroc.value);
            fputc(',', stream);
            if (figures.top1.scenes_used > 0)
                fprintf(stream, "%.6f", figures.top1.rate.value);
            fprintf(stream, ",%.3f,\n", run->seconds);
        } else {
            fprintf(stream, ",,,,,,,,,%.3f,", run->seconds);
            write_csv_text(stream, run->error);
            fputc('\n', stream);
        }
    }
}

/* Writes a float so that strtof reads back the same value ("-inf" for
 * missed objects). */
static void write_score(FILE *stream, double value)
{
    if (isinf(value))
        fputs(value < 0 ? "-inf" : "inf", stream);
    else
        fprintf(stream, "%.9g", value);
}

static void write_objects_csv(FILE *stream, const od_eval_results *results)
{
    fputs(OD_EVAL_OBJECTS_HEADER "\n", stream);
    for (int64_t i = 0; i < results->object_count; i++) {
        const od_eval_object *object = &results->objects[i];
        write_csv_text(stream, results->scenes[object->scene].name);
        fprintf(stream, ",%d,%d,", object->truth_index, object->label);
        write_csv_text(stream, object->kind);
        fprintf(stream, ",%d,%.6f,%.6f,", object->prediction, object->iou, object->best_iou);
        if (object->has_score)
            fprintf(stream, "%.17g", object->score);
        fprintf(stream, ",%d,%d,", object->predicted, object->correct);
        write_score(stream, object->eval_score);
        fputc('\n', stream);
    }
}

typedef void (*csv_writer)(FILE *stream, const void *context);

typedef struct csv_context {
    const od_dataset *dataset;
    const scene_run *runs;
    const od_eval_results *results;
} csv_context;

static void write_scenes_file(FILE *stream, const void *context)
{
    const csv_context *c = context;
    write_scenes_csv(stream, c->dataset, c->runs, c->results);
}

static void write_objects_file(FILE *stream, const void *context)
{
    const csv_context *c = context;
    write_objects_csv(stream, c->results);
}

static void write_text_file(FILE *stream, const void *context)
{
    fputs((const char *)context, stream);
    fputc('\n', stream);
}

static int write_file(const char *folder, const char *name, csv_writer writer, const void *context, od_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    od_atomic_file file;
    if (od_atomic_open(&file, path, err) != 0)
        return -1;
    writer(file.stream, context);
    return od_atomic_commit(&file, err);
}

static cJSON *metric_json(od_metric metric)
{
    return metric.status == OD_METRIC_DEFINED ? cJSON_CreateNumber(metric.value) : cJSON_CreateNull();
}

/* {"value": v, "interval": [lower, upper]} with nulls where undefined. */
static cJSON *interval_json(const od_interval *interval)
{
    cJSON *item = cJSON_CreateObject();
    cJSON_AddItemToObject(item, "value", metric_json(interval->estimate));
    if (interval->estimate.status == OD_METRIC_DEFINED && interval->resamples_used > 0) {
        double bounds[2] = {interval->lower, interval->upper};
        cJSON_AddItemToObject(item, "interval", cJSON_CreateDoubleArray(bounds, 2));
    } else {
        cJSON_AddNullToObject(item, "interval");
    }
    cJSON_AddNumberToObject(item, "resamples_skipped", (double)interval->resamples_skipped);
    return item;
}

static cJSON *groups_json(const od_eval_group *groups, int count, const char *key)
{
    cJSON *list = cJSON_CreateArray();
    for (int g = 0; g < count; g++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, key, groups[g].name);
        cJSON_AddNumberToObject(row, "correct", (double)groups[g].correct);
        cJSON_AddNumberToObject(row, "total", (double)groups[g].total);
        cJSON_AddNumberToObject(row, "accuracy", (double)groups[g].correct / (double)groups[g].total);
        cJSON_AddItemToArray(list, row);
    }
    return list;
}

/* Returns the manifest's "version" as a new JSON value, or JSON null when
 * there is no manifest or no version in it. */
static cJSON *benchmark_version(const od_dataset *dataset)
{
    if (dataset->manifest_path == NULL)
        return cJSON_CreateNull();
    FILE *stream = fopen(dataset->manifest_path, "rb");
    if (stream == NULL)
        return cJSON_CreateNull();
    char *text = NULL;
    long size = -1;
    if (fseek(stream, 0, SEEK_END) == 0)
        size = ftell(stream);
    if (size >= 0 && fseek(stream, 0, SEEK_SET) == 0)
        text = malloc((size_t)size + 1);
    cJSON *version = NULL;
    if (text != NULL && fread(text, 1, (size_t)size, stream) == (size_t)size) {
        text[size] = '\0';
        cJSON *manifest = cJSON_Parse(text);
        cJSON *field = cJSON_GetObjectItemCaseSensitive(manifest, "version");
        if (cJSON_IsString(field) || cJSON_IsNumber(field))
            version = cJSON_Duplicate(field, 0);
        cJSON_Delete(manifest);
    }
    free(text);
    fclose(stream);
    if (version == NULL)
        version = cJSON_CreateNull();
    return version;
}

static const char *occupancy_name(od_compare_occupancy occupancy)
{
    switch (occupancy) {
    case OD_COMPARE_OCCUPANCY_MASKS:
        return "masks";
    case OD_COMPARE_OCCUPANCY_COLOR:
        return "colour";
    default:
        return "auto";
    }
}

/* The detector's settings as the run used them: the opened teacher's
 * network, layer and input size, or the colour histograms'. */
static cJSON *detector_json(const eval_arguments *arguments)
{
    const od_compare_options *options = &arguments->options;
    cJSON *detector = cJSON_CreateObject();
    if (arguments->model != NULL) {
        const od_model_file *file = od_learned_model_file(arguments->model);
        cJSON_AddStringToObject(detector, "model", file->path);
        cJSON_AddStringToObject(detector, "configuration", file->config.name);
        cJSON_AddStringToObject(detector, "variant", od_model_variant_name(file->config.variant));
        cJSON_AddStringToObject(detector, "encoder", file->encoder.network);
        cJSON_AddStringToObject(detector, "layer", file->encoder.layer);
        cJSON_AddNumberToObject(detector, "input_size", (double)file->encoder.input_size);
        cJSON_AddNumberToObject(detector, "density_threshold", od_learned_density_threshold(arguments->model));
        cJSON_AddStringToObject(detector, "boxes", od_learned_boxes_name(od_learned_get_boxes(arguments->model)));
        cJSON_AddNumberToObject(detector, "odd_score", OD_LEARNED_ODD_SCORE);
        return detector;
    }
    if (options->features == OD_COMPARE_FEATURES_TEACHER && options->teacher_instance != NULL) {
        od_teacher_info info = od_teacher_get_info(options->teacher_instance);
        cJSON_AddStringToObject(detector, "features", "teacher");
        cJSON_AddStringToObject(detector, "teacher", info.network_name);
        cJSON_AddStringToObject(detector, "layer", info.layer);
        cJSON_AddNumberToObject(detector, "input_size", (double)info.input_size);
        cJSON_AddNumberToObject(detector, "stride", (double)info.stride);
        cJSON_AddNumberToObject(detector, "channels", (double)info.channels);
        const char *weights = options->weights_path != NULL ? options->weights_path
                                                            : od_teacher_default_weights(options->teacher);
        if (weights != NULL)
            cJSON_AddStringToObject(detector, "weights", weights);
        else
            cJSON_AddNullToObject(detector, "weights");
    } else {
        cJSON_AddStringToObject(detector, "features", "colour");
        cJSON_AddNullToObject(detector, "teacher");
        cJSON_AddStringToObject(detector, "layer", "histogram");
        cJSON_AddNumberToObject(detector, "input_size",
                                options->input_size > 0 ? options->input_size : OD_COMPARE_DEFAULT_INPUT_SIZE);
        cJSON_AddNumberToObject(detector, "stride", options->color_stride);
        cJSON_AddNumberToObject(detector, "channels", 3.0 * options->color_bins);
        cJSON_AddNullToObject(detector, "weights");
    }
    cJSON_AddStringToObject(detector, "occupancy", occupancy_name(options->occupancy));
    cJSON_AddNumberToObject(detector, "top_k", options->top_k);
    cJSON_AddNumberToObject(detector, "odd_ratio", options->odd_ratio);
    return detector;
}

static cJSON *metrics_json(const eval_arguments *arguments, const od_dataset *dataset, const scene_run *runs,
                           const od_eval_summary *summary)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "dataset", dataset->root);
    cJSON_AddItemToObject(root, "benchmark_version", benchmark_version(dataset));
    cJSON_AddStringToObject(root, "split", dataset->split);
    cJSON_AddStringToObject(root, "method", arguments->method);
    cJSON_AddItemToObject(root, "detector", detector_json(arguments));
    if (arguments->views > 0)
        cJSON_AddNumberToObject(root, "views", arguments->views);
    else
        cJSON_AddStringToObject(root, "views", "all");
    cJSON_AddNumberToObject(root, "view_seed", (double)arguments->view_seed);
    cJSON_AddNumberToObject(root, "iou_threshold", OD_EVAL_IOU_THRESHOLD);
    cJSON_AddStringToObject(root, "missed_objects",
                            "score -inf (lowest) in the AUROC and top-1; wrong in the accuracy");

    int failed = 0;
    double seconds = 0.0;
    for (int i = 0; i < dataset->scene_count; i++) {
        failed += !runs[i].ok;
        seconds += runs[i].seconds;
    }
    cJSON *scenes = cJSON_AddObjectToObject(root, "scenes");
    cJSON_AddNumberToObject(scenes, "total", dataset->scene_count);
    cJSON_AddNumberToObject(scenes, "evaluated", (double)summary->scene_count);
    cJSON_AddNumberToObject(scenes, "failed", failed);
    cJSON_AddNumberToObject(scenes, "seconds_per_scene", seconds / dataset->scene_count);
    cJSON *failures = cJSON_AddArrayToObject(scenes, "failures");
    for (int i = 0; i < dataset->scene_count; i++) {
        if (runs[i].ok)
            continue;
        cJSON *failure = cJSON_CreateObject();
        cJSON_AddStringToObject(failure, "scene", dataset->scene_names[i]);
        cJSON_AddStringToObject(failure, "error", runs[i].error);
        cJSON_AddItemToArray(failures, failure);
    }

    cJSON *objects = cJSON_AddObjectToObject(root, "objects");
    cJSON_AddNumberToObject(objects, "total", (double)summary->object_count);
    cJSON_AddNumberToObject(objects, "anomalous", (double)summary->anomalous_count);
    cJSON_AddNumberToObject(objects, "matched", (double)summary->matched_count);
    cJSON_AddNumberToObject(objects, "predicted", (double)summary->predicted_count);
    cJSON_AddNumberToObject(objects, "unmatched_predictions", (double)summary->unmatched_predictions);

    cJSON *auroc = cJSON_AddObjectToObject(root, "auroc");
    cJSON_AddItemToObject(auroc, "pooled", interval_json(&summary->pooled_auroc));
    cJSON_AddItemToObject(auroc, "scene_mean", interval_json(&summary->scene_auroc));
    cJSON_AddNumberToObject(auroc, "scenes_used", (double)summary->auroc.scenes_used);
    cJSON_AddNumberToObject(auroc, "scenes_skipped", (double)summary->auroc.scenes_skipped);
    cJSON_AddItemToObject(auroc, "matched_objects", metric_json(summary->matched_auroc));

    cJSON_AddItemToObject(root, "accuracy", interval_json(&summary->accuracy));
    cJSON *top1 = interval_json(&summary->top1_rate);
    cJSON_AddNumberToObject(top1, "scenes_used", (double)summary->top1.scenes_used);
    cJSON_AddItemToObject(root, "top1_hit_rate", top1);
    cJSON_AddItemToObject(root, "box_miou", interval_json(&summary->miou));
    cJSON_AddItemToObject(root, "count_accuracy", interval_json(&summary->count_accuracy));
    cJSON_AddItemToObject(root, "recall", interval_json(&summary->recall));
    cJSON_AddItemToObject(root, "accuracy_per_kind", groups_json(summary->kinds, summary->kind_count, "kind"));
    cJSON_AddItemToObject(root, "accuracy_per_object_count",
                          groups_json(summary->sizes, summary->size_count, "objects"));

    cJSON *bootstrap = cJSON_AddObjectToObject(root, "bootstrap");
    cJSON_AddNumberToObject(bootstrap, "resamples", (double)arguments->resamples);
    cJSON_AddNumberToObject(bootstrap, "seed", (double)arguments->seed);
    cJSON_AddNumberToObject(bootstrap, "level", OD_EVAL_LEVEL);
    return root;
}

static int write_roc(const char *folder, const od_eval_results *results, const od_eval_summary *summary,
                     const char *method, od_error *err)
{
    od_roc_curve curve;
    od_metric_status status;
    if (od_roc_curve_compute(results->scores, results->labels, results->object_count, &curve, &status, err) != 0)
        return -1;
    od_roc_series series = {.curve = &curve, .name = method, .auroc = summary->auroc.pooled};
    char path[4200];
    snprintf(path, sizeof path, "%s/roc.svg", folder);
    int rc = od_roc_svg_write(path, &series, 1, "Object-level ROC, pooled over the split", err);
    od_roc_curve_free(&curve);
    return rc;
}

/* ---- printed table ------------------------------------------------------------------ */

static void print_interval_row(const char *name, const od_interval *interval, const char *note)
{
    if (interval->estimate.status != OD_METRIC_DEFINED) {
        printf("  %-26s %8s  %-17s %s\n", name, "-", "", note);
        return;
    }
    char bounds[48] = "";
    if (interval->resamples_used > 0)
        snprintf(bounds, sizeof bounds, "[%.3f, %.3f]", interval->lower, interval->upper);
    printf("  %-26s %8.3f  %-17s %s\n", name, interval->estimate.value, bounds, note);
}

static void print_groups(const char *title, const od_eval_group *groups, int count)
{
    printf("%s\n", title);
    for (int g = 0; g < count; g++)
        printf("  %-26s %8.3f  (%" PRId64 " of %" PRId64 ")\n", groups[g].name,
               (double)groups[g].correct / (double)groups[g].total, groups[g].correct, groups[g].total);
}

static void print_table(const eval_arguments *arguments, const od_dataset *dataset, const scene_run *runs,
                        const od_eval_summary *summary)
{
    int failed = 0;
    double seconds = 0.0;
    for (int i = 0; i < dataset->scene_count; i++) {
        failed += !runs[i].ok;
        seconds += runs[i].seconds;
    }
    char views[32];
    if (arguments->views > 0)
        snprintf(views, sizeof views, "%d views", arguments->views);
    else
        snprintf(views, sizeof views, "every view");
    printf("%s on %s, split %s: %" PRId64 " of %d scenes evaluated (%d failed), %s, %.2f s per scene\n",
           arguments->method, dataset->root, dataset->split, summary->scene_count, dataset->scene_count, failed,
           views, seconds / dataset->scene_count);
    const od_compare_options *options = &arguments->options;
    if (arguments->model != NULL) {
        const od_model_file *file = od_learned_model_file(arguments->model);
        printf("model: %s (configuration %s, variant %s); encoder %s %s at %lld px\n", file->path,
               file->config.name, od_model_variant_name(file->config.variant), file->encoder.network,
               file->encoder.layer, (long long)file->encoder.input_size);
    } else if (options->features == OD_COMPARE_FEATURES_TEACHER && options->teacher_instance != NULL) {
        od_teacher_info info = od_teacher_get_info(options->teacher_instance);
        printf("features: %s %s at %lld px; occupancy %s\n", info.network_name, info.layer,
               (long long)info.input_size, occupancy_name(options->occupancy));
    } else {
        printf("features: colour histograms at %d px; occupancy %s\n",
               options->input_size > 0 ? options->input_size : OD_COMPARE_DEFAULT_INPUT_SIZE,
               occupancy_name(options->occupancy));
    }
    printf("%" PRId64 " objects (%" PRId64 " anomalous), %" PRId64 " matched; %" PRId64
           " predicted boxes, %" PRId64 " unmatched\n",
           summary->object_count, summary->anomalous_count, summary->matched_count, summary->predicted_count,
           summary->unmatched_predictions);
    printf("  %-26s %8s  %-17s\n", "metric", "value", "95 % interval");
    char note[128];
    print_interval_row("AUROC, pooled", &summary->pooled_auroc, "");
    snprintf(note, sizeof note, "%" PRId64 " scenes, %" PRId64 " skipped (one class)", summary->auroc.scenes_used,
             summary->auroc.scenes_skipped);
    print_interval_row("AUROC, mean over scenes", &summary->scene_auroc, note);
    od_interval matched = {.estimate = summary->matched_auroc};
    print_interval_row("AUROC, matched objects", &matched, "found and scored objects only");
    print_interval_row("accuracy", &summary->accuracy, "matched and label right");
    snprintf(note, sizeof note, "%" PRId64 " scenes with one anomalous object", summary->top1.scenes_used);
    print_interval_row("top-1 hit rate", &summary->top1_rate, note);
    print_interval_row("box mIoU", &summary->miou, "");
    print_interval_row("object count right", &summary->count_accuracy, "fraction of scenes");
    print_interval_row("objects matched", &summary->recall, "IoU > 0.5");
    print_groups("accuracy per anomaly kind", summary->kinds, summary->kind_count);
    print_groups("accuracy per object count", summary->sizes, summary->size_count);
}

/* ---- main ---------------------------------------------------------------------------- */

static int write_outputs(const eval_arguments *arguments, const od_dataset *dataset, const scene_run *runs,
                         const od_eval_results *results, const od_eval_summary *summary, od_error *err)
{
    csv_context context = {dataset, runs, results};
    if (write_file(arguments->output, "scenes.csv", write_scenes_file, &context, err) != 0 ||
        write_file(arguments->output, "objects.csv", write_objects_file, &context, err) != 0 ||
        write_roc(arguments->output, results, summary, arguments->method, err) != 0)
        return -1;
    cJSON *root = metrics_json(arguments, dataset, runs, summary);
    char *text = root != NULL ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (text == NULL)
        return od_fail(err, "out of memory printing metrics.json");
    int status = write_file(arguments->output, "metrics.json", write_text_file, text, err);
    free(text);
    return status;
}

/* Opens the teacher, or with --method model the model and its encoder,
 * once for the whole run, so that a failure that every scene would repeat
 * (weights missing, an unknown layer, a bad model file) stops the run
 * before any scene, and the weights are read once. Colour features need
 * none. */
static int open_teacher(eval_arguments *arguments, od_teacher **teacher, od_error *err)
{
    *teacher = NULL;
    od_compare_options *options = &arguments->options;
    if (strcmp(arguments->method, "model") == 0) {
        arguments->model = od_learned_open(arguments->model_path, options->weights_path, err);
        if (arguments->model == NULL)
            return -1;
        if (arguments->density_threshold > 0.0 &&
            od_learned_set_density_threshold(arguments->model, arguments->density_threshold, err) != 0)
            return -1;
        if (arguments->boxes != NULL)
            return od_learned_set_boxes(arguments->model, arguments->box_source, err);
        return 0;
    }
    if (options->features != OD_COMPARE_FEATURES_TEACHER)
        return 0;
    *teacher = od_teacher_open(options->teacher, options->weights_path, options->layer, options->input_size, err);
    if (*teacher == NULL)
        return -1;
    options->teacher_instance = *teacher;
    return 0;
}

int od_cli_eval(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--paired") == 0)
            return od_cli_eval_paired(argc, argv);
    eval_arguments arguments;
    int parsed = parse_arguments(argc, argv, &arguments);
    if (parsed == 1)
        return 0;
    if (parsed != 0)
        return parsed;

    od_error err;
    od_dataset dataset;
    if (od_dataset_open(arguments.dataset_path, arguments.split, &dataset, &err) != 0) {
        fprintf(stderr, "oddone eval: %s\n", err.message);
        return 1;
    }
    od_teacher *teacher = NULL;
    if (open_teacher(&arguments, &teacher, &err) != 0 || od_make_folders(arguments.output, &err) != 0) {
        fprintf(stderr, "oddone eval: %s\n", err.message);
        od_teacher_free(teacher);
        od_learned_free(arguments.model);
        od_dataset_free(&dataset);
        return 1;
    }

    od_log_level saved_level = od_log_get_level();
    if (saved_level > OD_LOG_WARN)
        od_log_set_level(OD_LOG_WARN); /* the detector's per-stage lines would drown the progress */
    od_eval_results *results = od_eval_results_new();
    scene_run *runs = calloc((size_t)dataset.scene_count, sizeof *runs);
    int status = 1;
    if (results == NULL || runs == NULL) {
        fprintf(stderr, "oddone eval: out of memory for %d scenes\n", dataset.scene_count);
        goto done;
    }
    if (!arguments.quiet)
        fprintf(stderr, "eval: %d scenes of split %s in %s\n", dataset.scene_count, dataset.split, dataset.root);
    run_scenes(&arguments, &dataset, results, runs);
    od_log_set_level(saved_level);
    if (results->scene_count == 0) {
        fprintf(stderr, "oddone eval: all %d scenes failed (errors above); nothing written\n",
                dataset.scene_count);
        goto done;
    }

    od_eval_summary summary;
    if (od_eval_summarize(results, arguments.resamples, arguments.seed, &summary, &err) != 0) {
        fprintf(stderr, "oddone eval: %s\n", err.message);
        goto done;
    }
    if (write_outputs(&arguments, &dataset, runs, results, &summary, &err) != 0) {
        fprintf(stderr, "oddone eval: %s\n", err.message);
        od_eval_summary_free(&summary);
        goto done;
    }
    print_table(&arguments, &dataset, runs, &summary);
    if (!arguments.quiet)
        fprintf(stderr, "eval: wrote metrics.json, scenes.csv, objects.csv and roc.svg to %s\n", arguments.output);
    od_eval_summary_free(&summary);
    status = 0;
done:
    od_log_set_level(saved_level);
    if (runs != NULL)
        for (int i = 0; i < dataset.scene_count; i++)
            free(runs[i].views);
    free(runs);
    od_eval_results_free(results);
    od_teacher_free(teacher);
    od_learned_free(arguments.model);
    od_dataset_free(&dataset);
    return status;
}
