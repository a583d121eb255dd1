/* `oddone detect [MODEL] SCENE -o DIR`: finds the objects of a scene and
 * scores how much each differs from the others, with a trained model
 * (detect/learned.h) or, with `--method compare`, with no training
 * (detect/compare.h). Writes DIR/result.json, the views used with the
 * predicted boxes drawn on them (DIR/overlays/NNNN.png), heat maps and a
 * point cloud. */
#include "cli/detect.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/log.h"
#include "detect/compare.h"
#include "detect/heat.h"
#include "detect/learned.h"
#include "detect/match.h"
#include "io/atomic_file.h"
#include "io/folder.h"
#include "io/image.h"
#include "io/ply_write.h"
#include "scene/overlay.h"
#include "scene/scene.h"
#include "teacher/mobilenetv2.h"
#include "teacher/teacher.h"

#define DEGREES_PER_RADIAN (180.0 / 3.14159265358979323846)

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void print_detect_usage(FILE *stream)
{
    fprintf(stream,
            "usage: oddone detect MODEL SCENE -o DIR [OPTIONS]\n"
            "       oddone detect SCENE -o DIR [OPTIONS]        (the model %s)\n"
            "       oddone detect --method compare SCENE -o DIR [OPTIONS]\n"
            "\n"
            "Finds the objects of a scene and scores how much each one differs from the others.\n"
            "\n"
            "The method model (the default) runs a trained model file: the views' encoder\n"
            "features are lifted into a voxel grid, the volume network's density (or, as the\n"
            "shipped model chooses, the visual hull of the object masks) gives the occupied\n"
            "voxels, DBSCAN splits them into objects, and the matcher compares each\n"
            "object with the others. An object's score is the probability that it is the odd\n"
            "one; it is labelled \"odd\" when the score is at least %.1f.\n"
            "\n"
            "The method compare needs no training: a frozen MobileNetV2's features of the views\n"
            "are lifted into a voxel grid, the visual hull of the object masks (or, without masks,\n"
            "colour consistency across the views) gives the occupied voxels, DBSCAN splits them\n"
            "into objects, and each object's worst-matching parts are compared with every other\n"
            "object.\n"
            "\n"
            "Writes DIR/result.json (boxes, scores, labels, timings; with compare also the\n"
            "pairwise distance and similarity matrices and each score's reference group),\n"
            "DIR/overlays/NNNN.png (each view used, the top-scoring object red, others green),\n"
            "DIR/heat/NNNN.png (each voxel's difference from its best matches in the other\n"
            "objects, over the view) and DIR/scene.ply (the occupied voxels coloured by\n"
            "difference, for MeshLab). With the method model, a voxel's difference is its\n"
            "object's score.\n"
            "\n"
            "With compare, an object is labelled \"odd\" when it has the highest score and that\n"
            "score is at least %.1f times the median score of the other objects; every other\n"
            "object is \"normal\". With fewer than three objects no object is labelled odd.\n"
            "\n"
            "options:\n"
            "  --method NAME          model (the default; without MODEL it runs %s)\n"
            "                         or compare\n"
            "  --model PATH           model file, as the MODEL argument\n"
            "  -o, --output DIR       folder for the results; created when missing (required)\n"
            "  --views I,J,...        view indices to use (default: every view)\n"
            "  --weights PATH         model: the encoder's weights (default: the encoder network's\n"
            "                         file in models/cache/); compare: the teacher's weights\n"
            "                         (default for MobileNetV2: %s,\n"
            "                         written by scripts/fetch_weights.sh)\n"
            "\n"
            "model options:\n"
            "  --density-threshold X  softplus density per voxel edge at which a voxel counts as\n"
            "                         occupied (default: the model's localization.density_threshold)\n"
            "  --boxes SOURCE         density (the model's density, thresholded and clustered) or\n"
            "                         masks (the visual hull of the views' object masks, as compare\n"
            "                         finds its objects; every view needs masks); default: the\n"
            "                         model's localization.boxes, density when it has none\n"
            "\n"
            "compare options:\n"
            "  --features KIND        teacher (default) or colour (a colour histogram of every\n"
            "                         16-pixel cell, no network: the floor a teacher must beat)\n"
            "  --teacher NAME         mobilenetv2 (default), inceptionv3 or dinov2 (needs --weights)\n"
            "  --layer NAME           teacher layer (default for MobileNetV2: %s; e.g.\n"
            "                         block_13_expand_relu; other teachers: their default layer)\n"
            "  --input-size N         side in pixels that views are resized to (default for\n"
            "                         MobileNetV2 and colour: %d; other teachers: their default)\n"
            "  --occupancy MODE       auto (default: masks when every view has one, else colour),\n"
            "                         masks (the visual hull) or colour (colour consistency across\n"
            "                         views against the floor's texture; masks ignored)\n"
            "  --top-k K              best matches per voxel in each other object (default: %d, 1 to %d)\n"
            "\n"
            "  --quiet                print errors only\n"
            "  -h, --help             print this text\n",
            OD_LEARNED_DEFAULT_MODEL, OD_LEARNED_ODD_SCORE, OD_COMPARE_DEFAULT_ODD_RATIO, OD_LEARNED_DEFAULT_MODEL,
            OD_MOBILENETV2_DEFAULT_PATH, OD_COMPARE_DEFAULT_LAYER, OD_COMPARE_DEFAULT_INPUT_SIZE,
            OD_COMPARE_DEFAULT_TOP_K, OD_MATCH_MAX_K);
}

typedef struct detect_arguments {
    const char *scene_path;
    const char *model_path;
    const char *output;
    const char *method;
    const char *views_text;
    od_compare_options options;
    double density_threshold; /* 0: the model's */
    const char *boxes;        /* --boxes as given; NULL: the model's localization.boxes */
    od_learned_boxes box_source; /* --boxes, parsed */
    int quiet;
} detect_arguments;

/* Parses a comma-separated list of non-negative integers into a new array. */
static int parse_views(const char *text, int **views, int *count)
{
    *views = NULL;
    *count = 0;
    size_t length = strlen(text);
    int *list = malloc((length / 2 + 1) * sizeof *list);
    if (list == NULL) {
        fprintf(stderr, "oddone detect: out of memory\n");
        return -1;
    }
    const char *cursor = text;
    int n = 0;
    for (;;) {
        char *end;
        errno = 0;
        long value = strtol(cursor, &end, 10);
        if (end == cursor || errno != 0 || value < 0 || value > INT_MAX || (*end != ',' && *end != '\0')) {
            fprintf(stderr,
                    "oddone detect: --views expects view indices separated by commas, as 0,4,8,12,16; got \"%s\"\n",
                    text);
            free(list);
            return -1;
        }
        list[n++] = (int)value;
        if (*end == '\0')
            break;
        cursor = end + 1;
    }
    *views = list;
    *count = n;
    return 0;
}

/* Sets the method, the model and the scene from the positional arguments
 * and the options. Returns 0 or 2 on a usage error. */
static int choose_method(detect_arguments *arguments, const char *const positional[2], const char *compare_option)
{
    if (positional[1] != NULL) {
        if (arguments->model_path != NULL) {
            fprintf(stderr, "oddone detect: the model is given twice (--model %s and %s)\n", arguments->model_path,
                    positional[0]);
            return 2;
        }
        arguments->model_path = positional[0];
        arguments->scene_path = positional[1];
    } else {
        arguments->scene_path = positional[0];
    }
    if (arguments->method == NULL)
        arguments->method = "model";
    if (strcmp(arguments->method, "compare") == 0) {
        if (arguments->density_threshold > 0.0 || arguments->boxes != NULL) {
            fprintf(stderr, "oddone detect: %s applies to the method model only\n",
                    arguments->boxes != NULL ? "--boxes" : "--density-threshold");
            return 2;
        }
        if (arguments->model_path != NULL) {
            fprintf(stderr, "oddone detect: --method compare takes no model (%s); drop the model or the method\n",
                    arguments->model_path);
            return 2;
        }
    } else if (strcmp(arguments->method, "model") == 0) {
        if (compare_option != NULL) {
            fprintf(stderr, "oddone detect: %s applies to --method compare only\n", compare_option);
            return 2;
        }
        if (arguments->model_path == NULL) {
            FILE *model = fopen(OD_LEARNED_DEFAULT_MODEL, "rb");
            if (model == NULL) {
                fprintf(stderr,
                        "oddone detect: no model given and the default model %s is missing; give a model file "
                        "(oddone detect MODEL SCENE -o DIR) or use the training-free detector with --method "
                        "compare\n",
                        OD_LEARNED_DEFAULT_MODEL);
                return 2;
            }
            fclose(model);
            arguments->model_path = OD_LEARNED_DEFAULT_MODEL;
        }
    } else {
        fprintf(stderr, "oddone detect: unknown method \"%s\"; expected model or compare\n", arguments->method);
        return 2;
    }
    if (arguments->scene_path == NULL || arguments->output == NULL) {
        fprintf(stderr, "oddone detect: %s is missing; usage: oddone detect [MODEL] SCENE -o DIR\n",
                arguments->scene_path == NULL ? "the scene" : "the output folder (-o DIR)");
        return 2;
    }
    return 0;
}

/* Returns 0 to go on, 1 after --help, 2 on a usage error. */
static int parse_arguments(int argc, char **argv, detect_arguments *arguments)
{
    memset(arguments, 0, sizeof *arguments);
    arguments->options = od_compare_options_default();
    int teacher_given = 0, layer_given = 0, weights_given = 0, size_given = 0;
    const char *compare_option = NULL; /* the first option that only compare takes */
    const char *positional[2] = {NULL, NULL};
    for (int i = 0; i < argc; i++) {
        const char *argument = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0 ||
                          strcmp(argument, "--method") == 0 || strcmp(argument, "--views") == 0 ||
                          strcmp(argument, "--layer") == 0 || strcmp(argument, "--input-size") == 0 ||
                          strcmp(argument, "--weights") == 0 || strcmp(argument, "--top-k") == 0 ||
                          strcmp(argument, "--occupancy") == 0 || strcmp(argument, "--teacher") == 0 ||
                          strcmp(argument, "--features") == 0 || strcmp(argument, "--model") == 0 ||
                          strcmp(argument, "--density-threshold") == 0 || strcmp(argument, "--boxes") == 0;
        if (takes_value && value == NULL) {
            fprintf(stderr, "oddone detect: %s needs a value; run \"oddone detect --help\"\n", argument);
            return 2;
        }
        if (strcmp(argument, "-h") == 0 || strcmp(argument, "--help") == 0) {
            print_detect_usage(stdout);
            return 1;
        } else if (strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0) {
            arguments->output = value;
        } else if (strcmp(argument, "--method") == 0) {
            arguments->method = value;
        } else if (strcmp(argument, "--model") == 0) {
            arguments->model_path = value;
        } else if (strcmp(argument, "--boxes") == 0) {
            if (od_learned_boxes_parse(value, &arguments->box_source) != 0) {
                fprintf(stderr, "oddone detect: --boxes expects density or masks; got \"%s\"\n", value);
                return 2;
            }
            arguments->boxes = value;
        } else if (strcmp(argument, "--density-threshold") == 0) {
            char *end;
            errno = 0;
            double threshold = strtod(value, &end);
            if (end == value || *end != '\0' || errno != 0 || !(threshold > 0.0) || threshold > 1e6) {
                fprintf(stderr, "oddone detect: --density-threshold expects a number above 0; got \"%s\"\n",
                        value);
                return 2;
            }
            arguments->density_threshold = threshold;
        } else if (strcmp(argument, "--views") == 0) {
            arguments->views_text = value;
        } else if (strcmp(argument, "--layer") == 0) {
            arguments->options.layer = value;
            layer_given = 1;
        } else if (strcmp(argument, "--weights") == 0) {
            arguments->options.weights_path = value;
            weights_given = 1;
        } else if (strcmp(argument, "--input-size") == 0) {
            char *end;
            errno = 0;
            long size = strtol(value, &end, 10);
            if (end == value || *end != '\0' || errno != 0 || size < 32 || size > 4096) {
                fprintf(stderr, "oddone detect: --input-size expects an integer from 32 to 4096; got \"%s\"\n",
                        value);
                return 2;
            }
            arguments->options.input_size = (int)size;
            size_given = 1;
        } else if (strcmp(argument, "--teacher") == 0) {
            od_error err;
            if (od_teacher_network_parse(value, &arguments->options.teacher, &err) != 0) {
                fprintf(stderr, "oddone detect: --teacher: %s\n", err.message);
                return 2;
            }
            teacher_given = 1;
        } else if (strcmp(argument, "--features") == 0) {
            if (strcmp(value, "teacher") == 0)
                arguments->options.features = OD_COMPARE_FEATURES_TEACHER;
            else if (strcmp(value, "colour") == 0 || strcmp(value, "color") == 0)
                arguments->options.features = OD_COMPARE_FEATURES_COLOR;
            else {
                fprintf(stderr, "oddone detect: --features expects teacher or colour; got \"%s\"\n", value);
                return 2;
            }
        } else if (strcmp(argument, "--occupancy") == 0) {
            if (strcmp(value, "auto") == 0)
                arguments->options.occupancy = OD_COMPARE_OCCUPANCY_AUTO;
            else if (strcmp(value, "masks") == 0)
                arguments->options.occupancy = OD_COMPARE_OCCUPANCY_MASKS;
            else if (strcmp(value, "colour") == 0 || strcmp(value, "color") == 0)
                arguments->options.occupancy = OD_COMPARE_OCCUPANCY_COLOR;
            else {
                fprintf(stderr, "oddone detect: --occupancy expects auto, masks or colour; got \"%s\"\n", value);
                return 2;
            }
        } else if (strcmp(argument, "--top-k") == 0) {
            char *end;
            errno = 0;
            long k = strtol(value, &end, 10);
            if (end == value || *end != '\0' || errno != 0 || k < 1 || k > OD_MATCH_MAX_K) {
                fprintf(stderr, "oddone detect: --top-k expects an integer from 1 to %d; got \"%s\"\n",
                        OD_MATCH_MAX_K, value);
                return 2;
            }
            arguments->options.top_k = (int)k;
        } else if (strcmp(argument, "--quiet") == 0) {
            arguments->quiet = 1;
        } else if (argument[0] == '-' && argument[1] != '\0') {
            fprintf(stderr, "oddone detect: unknown option %s; run \"oddone detect --help\"\n", argument);
            return 2;
        } else if (positional[0] == NULL) {
            positional[0] = argument;
        } else if (positional[1] == NULL) {
            positional[1] = argument;
        } else {
            fprintf(stderr, "oddone detect: too many arguments (%s, %s and %s); usage: oddone detect [MODEL] SCENE "
                            "-o DIR\n",
                    positional[0], positional[1], argument);
            return 2;
        }
        int compare_only = strcmp(argument, "--layer") == 0 || strcmp(argument, "--input-size") == 0 ||
                           strcmp(argument, "--top-k") == 0 || strcmp(argument, "--occupancy") == 0 ||
                           strcmp(argument, "--teacher") == 0 || strcmp(argument, "--features") == 0;
        if (compare_only && compare_option == NULL)
            compare_option = argument;
        if (takes_value)
            i++;
    }
    /* Another teacher starts from its own defaults, not MobileNetV2's. */
    if (teacher_given && arguments->options.teacher != OD_TEACHER_MOBILENETV2) {
        if (!layer_given)
            arguments->options.layer = NULL;
        if (!weights_given)
            arguments->options.weights_path = NULL;
        if (!size_given)
            arguments->options.input_size = 0;
    }
    return choose_method(arguments, positional, compare_option);
}

/* ---- result.json ------------------------------------------------------------------ */

/* The fields of result.json that only the method model writes. */
static void add_model_fields(cJSON *root, const detect_arguments *arguments, const od_learned_model *model,
                             const od_compare_result *result)
{
    const od_model_file *file = od_learned_model_file(model);
    cJSON_AddStringToObject(root, "model", arguments->model_path);
    cJSON_AddStringToObject(root, "configuration", file->config.name);
    cJSON_AddStringToObject(root, "variant", od_model_variant_name(file->config.variant));
    cJSON_AddNumberToObject(root, "density_threshold", od_learned_density_threshold(model));
    cJSON_AddStringToObject(root, "boxes", od_learned_boxes_name(od_learned_get_boxes(model)));
    cJSON *encoder = cJSON_AddObjectToObject(root, "encoder");
    cJSON_AddStringToObject(encoder, "network", result->feature_source);
    cJSON_AddStringToObject(encoder, "layer", result->feature_layer);
    cJSON_AddNumberToObject(encoder, "input_size", result->input_size);
    cJSON_AddNumberToObject(encoder, "stride", result->stride);
    cJSON_AddNumberToObject(encoder, "channels", result->feature_channels);
    char rule[128];
    snprintf(rule, sizeof rule, "odd: a score of at least %g; normal: every other object", OD_LEARNED_ODD_SCORE);
    cJSON_AddStringToObject(root, "label_rule", rule);
    cJSON_AddStringToObject(root, "score",
                            "logistic sigmoid of the matcher's logit: the model's probability that the object "
                            "is anomalous, from comparing it with the other objects");
    cJSON_AddNumberToObject(root, "dropped_clusters", result->dropped_clusters);
    cJSON_AddStringToObject(root, "occupancy", od_learned_boxes_name(od_learned_get_boxes(model)));
    if (result->floor_layer >= 0)
        cJSON_AddNumberToObject(root, "floor_layer", result->floor_layer);
    else
        cJSON_AddNullToObject(root, "floor_layer");
}

/* The fields of result.json that only the method compare writes, before
 * the objects. */
static void add_compare_fields(cJSON *root, const detect_arguments *arguments, const od_compare_result *result)
{
    cJSON *teacher = cJSON_AddObjectToObject(root, "teacher");
    cJSON_AddStringToObject(teacher, "network", result->feature_source);
    cJSON_AddStringToObject(teacher, "layer", result->feature_layer);
    cJSON_AddNumberToObject(teacher, "input_size", result->input_size);
    cJSON_AddNumberToObject(teacher, "stride", result->stride);
    cJSON_AddNumberToObject(teacher, "channels", result->feature_channels);
    char rule[256];
    snprintf(rule, sizeof rule,
             "odd: the highest score when it is at least %g times the median score of the other objects "
             "(three or more objects); normal: every other object",
             arguments->options.odd_ratio);
    cJSON_AddStringToObject(root, "label_rule", rule);
    cJSON_AddStringToObject(root, "score",
                            "mean of the distance row over the object's reference group (the consensus group "
                            "of the most typical objects, without the object itself); distance[a][b] is the "
                            "mean of the largest top_fraction of a's voxels' match distances to b, and a "
                            "voxel's match distance is the largest cosine distance among its top_k best "
                            "matches in b");
    cJSON_AddNumberToObject(root, "top_fraction", arguments->options.top_fraction);
    cJSON_AddNumberToObject(root, "top_k", arguments->options.top_k);
    cJSON_AddNumberToObject(root, "dropped_clusters", result->dropped_clusters);
    cJSON_AddStringToObject(root, "occupancy", result->occupancy == OD_COMPARE_OCCUPANCY_MASKS ? "masks" : "colour");
    if (result->occupancy == OD_COMPARE_OCCUPANCY_COLOR) {
        if (result->floor_layer >= 0)
            cJSON_AddNumberToObject(root, "floor_layer", result->floor_layer);
        else
            cJSON_AddNullToObject(root, "floor_layer");
    }
}

/* The comparison matrices and the consensus group of compare. */
static void add_compare_matrices(cJSON *root, const od_compare_result *result)
{
    /* Row a, column b: how far object a's worst parts are from their
     * nearest parts of object b (1 - cosine). Not symmetric. */
    cJSON *matrix = cJSON_AddArrayToObject(root, "distance_matrix");
    for (int a = 0; a < result->object_count; a++)
        cJSON_AddItemToArray(matrix,
                             cJSON_CreateDoubleArray(result->distance + (size_t)a * result->object_count,
                                                     result->object_count));
    /* Symmetric: 1 - the mean of the two directions' distances. */
    cJSON *similarity = cJSON_AddArrayToObject(root, "similarity_matrix");
    for (int a = 0; a < result->object_count; a++)
        cJSON_AddItemToArray(similarity,
                             cJSON_CreateDoubleArray(result->similarity + (size_t)a * result->object_count,
                                                     result->object_count));
    cJSON *consensus = cJSON_AddArrayToObject(root, "consensus_group");
    for (int o = 0; o < result->object_count; o++)
        if (result->consensus[o])
            cJSON_AddItemToArray(consensus, cJSON_CreateNumber(o));
}

/* model is the open model for the method model, NULL for compare;
 * seconds_load is the time it took to open. */
static cJSON *result_json(const od_scene *scene, const detect_arguments *arguments, const od_learned_model *model,
                          double seconds_load, const od_compare_result *result)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scene", scene->root);
    cJSON_AddStringToObject(root, "method", model != NULL ? "model" : "compare");
    cJSON *views = cJSON_AddArrayToObject(root, "views");
    for (int i = 0; i < result->view_count; i++)
        cJSON_AddItemToArray(views, cJSON_CreateNumber(result->views[i]));
    if (model != NULL)
        add_model_fields(root, arguments, model, result);
    else
        add_compare_fields(root, arguments, result);
    if (result->note[0] != '\0')
        cJSON_AddStringToObject(root, "note", result->note);

    int top = od_compare_top(result);
    cJSON *objects = cJSON_AddArrayToObject(root, "objects");
    for (int o = 0; o < result->object_count; o++) {
        const od_compare_object *object = &result->objects[o];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "index", o);
        cJSON_AddItemToObject(item, "center", cJSON_CreateDoubleArray(object->box.center, 3));
        cJSON_AddItemToObject(item, "size", cJSON_CreateDoubleArray(object->box.size, 3));
        cJSON_AddNumberToObject(item, "yaw", object->box.yaw);
        cJSON_AddNumberToObject(item, "yaw_degrees", object->box.yaw * DEGREES_PER_RADIAN);
        double corners[8][3];
        od_box_corners(&object->box, corners);
        cJSON *corner_list = cJSON_AddArrayToObject(item, "corners");
        for (int c = 0; c < 8; c++)
            cJSON_AddItemToArray(corner_list, cJSON_CreateDoubleArray(corners[c], 3));
        if (object->has_score)
            cJSON_AddNumberToObject(item, "score", object->score);
        else
            cJSON_AddNullToObject(item, "score");
        cJSON_AddStringToObject(item, "label", object->odd ? "odd" : "normal");
        cJSON_AddBoolToObject(item, "top", o == top);
        cJSON_AddNumberToObject(item, "voxels", (double)object->voxel_count);
        cJSON *seen = cJSON_AddArrayToObject(item, "seen_by_views");
        for (int i = 0; i < result->view_count; i++)
            if (object->seen_by[i])
                cJSON_AddItemToArray(seen, cJSON_CreateNumber(result->views[i]));
        cJSON_AddBoolToObject(item, "few_views", object->few_views);
        cJSON_AddBoolToObject(item, "truncated", object->truncated);
        if (model == NULL) {
            cJSON *reference = cJSON_AddArrayToObject(item, "reference_group");
            for (int r = 0; r < object->reference_count; r++)
                cJSON_AddItemToArray(reference, cJSON_CreateNumber(object->reference[r]));
        }
        cJSON_AddItemToArray(objects, item);
    }
    if (model == NULL)
        add_compare_matrices(root, result);
    cJSON *timings = cJSON_AddObjectToObject(root, "seconds");
    if (model != NULL) {
        cJSON_AddNumberToObject(timings, "load_model", seconds_load);
        cJSON_AddNumberToObject(timings, "features", result->seconds_features);
        cJSON_AddNumberToObject(timings, "lift", result->seconds_lift);
        cJSON_AddNumberToObject(timings, "volume_network", result->seconds_hull);
        cJSON_AddNumberToObject(timings, "localize", result->seconds_cluster);
        cJSON_AddNumberToObject(timings, "score", result->seconds_score);
    } else {
        cJSON_AddNumberToObject(timings, "load_teacher", result->seconds_load);
        cJSON_AddNumberToObject(timings, "features", result->seconds_features);
        cJSON_AddNumberToObject(timings, "lift", result->seconds_lift);
        cJSON_AddNumberToObject(timings, "hull", result->seconds_hull);
        cJSON_AddNumberToObject(timings, "cluster", result->seconds_cluster);
        cJSON_AddNumberToObject(timings, "score", result->seconds_score);
    }
    cJSON_AddNumberToObject(timings, "total", result->seconds_total);
    return root;
}

static int write_result(const char *output, cJSON *root, od_error *err)
{
    char *text = cJSON_Print(root);
    if (text == NULL)
        return od_fail(err, "out of memory printing result.json");
    char path[4200];
    snprintf(path, sizeof path, "%s/result.json", output);
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

/* ---- heat maps and the point cloud ------------------------------------------------ */

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) ? -1 : (x > y);
}

/* Writes the colour map's range: from the median voxel difference (so the
 * typical parts are dark) to the largest. Returns 0 when no voxel has a
 * difference. */
static int heat_range(const od_compare_result *result, float *low, float *high)
{
    float *values = malloc((size_t)(result->occupied_count > 0 ? result->occupied_count : 1) * sizeof *values);
    if (values == NULL)
        return 0;
    int64_t n = 0;
    for (int64_t q = 0; q < result->occupied_count; q++)
        if (!isnan(result->occupied_difference[q]))
            values[n++] = result->occupied_difference[q];
    if (n > 0) {
        qsort(values, (size_t)n, sizeof *values, compare_floats);
        *low = values[n / 2];
        *high = values[n - 1] > *low ? values[n - 1] : *low + 1e-6f;
    }
    free(values);
    return n > 0;
}

/* DIR/heat/NNNN.png: each view with every object's voxel differences drawn
 * over it, and the predicted boxes. */
static int write_heat_maps(const od_scene *scene, const char *output, const od_compare_result *result,
                           const od_overlay_box *boxes, float low, float high, od_error *err)
{
    char folder[4096];
    snprintf(folder, sizeof folder, "%s/heat", output);
    if (od_make_folders(folder, err) != 0)
        return -1;
    for (int i = 0; i < result->view_count; i++) {
        int v = result->views[i];
        od_image image;
        if (od_scene_read_view_image(scene, v, &image, err) != 0)
            return -1;
        const od_camera *camera = &scene->views[v].camera;
        int status = od_heat_draw(&image, camera, &result->grid, result->occupied_voxels,
                                  result->occupied_difference, result->occupied_count, low, high, err);
        if (status == 0) {
            od_overlay_draw_boxes(&image, camera, boxes, result->object_count);
            char path[4200];
            snprintf(path, sizeof path, "%s/%04d.png", folder, v);
            status = od_image_write_png(path, &image, err);
        }
        od_image_free(&image);
        if (status != 0)
            return -1;
    }
    return 0;
}

/* DIR/scene.ply: every occupied voxel's centre, coloured by its difference
 * on the heat maps' colour map; voxels without one (DBSCAN noise, dropped
 * clusters, no view) grey. */
static int write_point_cloud(const char *output, const od_compare_result *result, float low, float high,
                             od_error *err)
{
    int64_t count = result->occupied_count;
    float *positions = malloc((size_t)(count > 0 ? count : 1) * 3 * sizeof *positions);
    uint8_t *colors = malloc((size_t)(count > 0 ? count : 1) * 3);
    if (positions == NULL || colors == NULL) {
        free(positions);
        free(colors);
        return od_fail(err, "out of memory for the point cloud");
    }
    for (int64_t q = 0; q < count; q++) {
        const int32_t *voxel = result->occupied_voxels + 3 * q;
        double centre[3];
        od_grid_voxel_center(&result->grid, voxel[0], voxel[1], voxel[2], centre);
        float rgb[3] = {0.5f, 0.5f, 0.5f};
        if (!isnan(result->occupied_difference[q]))
            od_heat_color((result->occupied_difference[q] - low) / (high - low), rgb);
        for (int a = 0; a < 3; a++) {
            positions[3 * q + a] = (float)centre[a];
            colors[3 * q + a] = (uint8_t)lrintf(255.0f * rgb[a]);
        }
    }
    char path[4200], comment[160];
    snprintf(path, sizeof path, "%s/scene.ply", output);
    snprintf(comment, sizeof comment,
             "oddone detect: occupied voxel centres (metres), coloured by difference from %.4f to %.4f", low,
             high);
    int status = od_ply_write_points(path, positions, colors, count, comment, err);
    free(positions);
    free(colors);
    return status;
}

/* ---- overlays ----------------------------------------------------------------------- */

/* DIR/overlays/NNNN.png (each view with the predicted boxes), the heat
 * maps and the point cloud. */
static int write_pictures(const od_scene *scene, const char *output, const od_compare_result *result,
                          od_error *err)
{
    char folder[4096];
    snprintf(folder, sizeof folder, "%s/overlays", output);
    if (od_make_folders(folder, err) != 0)
        return -1;
    int count = result->object_count;
    od_overlay_box *boxes = calloc((size_t)(count > 0 ? count : 1), sizeof *boxes);
    char (*labels)[64] = calloc((size_t)(count > 0 ? count : 1), sizeof *labels);
    if (boxes == NULL || labels == NULL) {
        free(boxes);
        free(labels);
        return od_fail(err, "out of memory");
    }
    int top = od_compare_top(result);
    for (int o = 0; o < count; o++) {
        const od_compare_object *object = &result->objects[o];
        boxes[o].box = object->box;
        memcpy(boxes[o].color, o == top ? od_overlay_anomalous_color : od_overlay_normal_color,
               sizeof boxes[o].color);
        if (object->has_score)
            snprintf(labels[o], sizeof labels[o], "%d %s %.3f", o, object->odd ? "odd" : "normal", object->score);
        else
            snprintf(labels[o], sizeof labels[o], "%d", o);
        boxes[o].label = labels[o];
    }
    int status = 0;
    for (int i = 0; i < result->view_count && status == 0; i++) {
        int v = result->views[i];
        od_image image;
        status = od_scene_read_view_image(scene, v, &image, err);
        if (status != 0)
            break;
        od_overlay_draw_boxes(&image, &scene->views[v].camera, boxes, count);
        char path[4200];
        snprintf(path, sizeof path, "%s/%04d.png", folder, v);
        status = od_image_write_png(path, &image, err);
        od_image_free(&image);
    }
    float low = 0.0f, high = 1.0f;
    int has_heat = heat_range(result, &low, &high);
    if (status == 0 && has_heat)
        status = write_heat_maps(scene, output, result, boxes, low, high, err);
    if (status == 0)
        status = write_point_cloud(output, result, low, high, err);
    free(boxes);
    free(labels);
    return status;
}

static void print_summary(const od_compare_result *result)
{
    printf("%d objects from %d views in %.3f s\n", result->object_count, result->view_count,
           result->seconds_total);
    if (result->note[0] != '\0')
        printf("%s\n", result->note);
    int top = -1; /* the highest score, marked because labels alone may mark no object */
    for (int o = 0; o < result->object_count; o++)
        if (result->objects[o].has_score && (top < 0 || result->objects[o].score > result->objects[top].score))
            top = o;
    for (int o = 0; o < result->object_count; o++) {
        const od_compare_object *object = &result->objects[o];
        const od_box *box = &object->box;
        char score[32];
        if (object->has_score)
            snprintf(score, sizeof score, "%.4f", object->score);
        else
            snprintf(score, sizeof score, "-");
        printf("  %2d  %-6s score %-8s centre (%.3f, %.3f, %.3f)  size (%.3f, %.3f, %.3f)  yaw %.1f deg  "
               "%d views%s%s\n",
               o, object->odd ? "odd" : "normal", score, box->center[0], box->center[1], box->center[2],
               box->size[0], box->size[1], box->size[2], box->yaw * DEGREES_PER_RADIAN, object->view_count,
               object->few_views ? "  (seen by fewer than 2 views)" : "", o == top ? "  <- top score" : "");
    }
}

int od_cli_detect(int argc, char **argv)
{
    detect_arguments arguments;
    int parsed = parse_arguments(argc, argv, &arguments);
    if (parsed == 1)
        return 0;
    if (parsed != 0)
        return parsed;
    if (arguments.quiet)
        od_log_set_level(OD_LOG_ERROR);

    od_scene *scene = NULL;
    od_error err;
    if (od_scene_load(arguments.scene_path, NULL, &scene, &err) != 0) {
        fprintf(stderr, "oddone detect: %s\n", err.message);
        return 1;
    }
    int *views = NULL, view_count = 0;
    if (arguments.views_text != NULL) {
        if (parse_views(arguments.views_text, &views, &view_count) != 0) {
            od_scene_free(scene);
            return 2;
        }
    } else {
        views = malloc((size_t)scene->view_count * sizeof *views);
        if (views == NULL) {
            fprintf(stderr, "oddone detect: out of memory\n");
            od_scene_free(scene);
            return 1;
        }
        for (int v = 0; v < scene->view_count; v++)
            views[v] = v;
        view_count = scene->view_count;
    }

    od_compare_result result;
    memset(&result, 0, sizeof result);
    od_learned_model *model = NULL;
    double seconds_load = 0.0;
    int status = 0;
    if (strcmp(arguments.method, "model") == 0) {
        double start = now_seconds();
        model = od_learned_open(arguments.model_path, arguments.options.weights_path, &err);
        seconds_load = now_seconds() - start;
        status = model == NULL ? -1 : 0;
        if (status == 0 && arguments.density_threshold > 0.0)
            status = od_learned_set_density_threshold(model, arguments.density_threshold, &err);
        if (status == 0 && arguments.boxes != NULL)
            status = od_learned_set_boxes(model, arguments.box_source, &err);
        if (status == 0)
            status = od_learned_detect(model, scene, views, view_count, &result, &err);
    } else {
        status = od_compare_detect(scene, views, view_count, &arguments.options, &result, &err);
    }
    free(views);
    if (status == 0)
        status = od_make_folders(arguments.output, &err);
    if (status == 0) {
        cJSON *root = result_json(scene, &arguments, model, seconds_load, &result);
        status = root == NULL ? od_fail(&err, "out of memory building result.json")
                              : write_result(arguments.output, root, &err);
        cJSON_Delete(root);
    }
    if (status == 0)
        status = write_pictures(scene, arguments.output, &result, &err);
    if (status == 0 && !arguments.quiet) {
        print_summary(&result);
        fprintf(stderr, "detect: wrote %s/result.json, %s/scene.ply and %d views to %s/overlays and %s/heat\n",
                arguments.output, arguments.output, result.view_count, arguments.output, arguments.output);
    }
    if (status != 0)
        fprintf(stderr, "oddone detect: %s\n", err.message);
    od_compare_result_free(&result);
    od_learned_free(model);
    od_scene_free(scene);
    return status == 0 ? 0 : 1;
}
