/* `oddone generate`: writes synthetic scenes in the release format. */
#include "cli/generate.h"

#include "cli/contact_sheet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/folder.h"
#include "synth/dataset.h"
#include "synth/generate.h"
#include "synth/mesh.h"

static void print_generate_usage(FILE *stream)
{
    fprintf(stream,
            "usage: oddone generate -o DIR [OPTIONS]\n"
            "       oddone generate -o DIR --recipe NAME [--split-sizes SPLIT=N,...] [OPTIONS]\n"
            "       oddone generate -o DIR --bench v1 [--meshes DIR]\n"
            "       oddone generate --contact-sheet DATASET -o FILE.png\n"
            "\n"
            "Writes synthetic Odd-One-Out scenes in the ToysAD-8K / PartsAD-15K release format\n"
            "(RGB/, segmentations/, scene3d.metadata.json), readable by `oddone show`. Each scene\n"
            "has several instances of one shape on a checked floor; in most scenes one instance\n"
            "carries an anomaly, marked in its path (\"sphere_000-bump-001.obj\").\n"
            "\n"
            "Without --recipe the scenes go to DIR/scene_NNNN. With --recipe, DIR becomes a\n"
            "dataset: DIR/<split>/scene_NNNN, DIR/splits/<split>.txt and DIR/manifest.json;\n"
            "a rerun skips the scenes already complete (see docs/BENCHMARK.md).\n"
            "\n"
            "options:\n"
            "  -o, --output DIR     folder for the scenes or the dataset, created when missing;\n"
            "                       with --contact-sheet, the PNG file to write (required)\n"
            "  --scenes N           number of scenes; with --recipe, scenes per split when\n"
            "                       --split-sizes is not given (default 1; 10 with --recipe)\n"
            "  --seed N             random seed; the same seed writes the same files (default 1)\n"
            "  --shape NAME|PATH    sphere, torus, box, a mesh file (.obj, .ply, .stl or .off), or\n"
            "                       a folder whose files of those extensions are used in name\n"
            "                       order, one per scene (default: the three procedural shapes\n"
            "                       in turn); not with --recipe\n"
            "  --recipe NAME        procedural (splits train, val, test; no meshes needed), toys\n"
            "                       (train, val, test_seen, test_unseen; unseen categories never\n"
            "                       in training), parts (train, val, test; test shapes never in\n"
            "                       training) or context-flip (two close shapes, six objects, ratios\n"
            "                       1:5 to 5:1; split context_flip, plus context_flip_tie for 3:3)\n"
            "  --meshes DIR         meshes laid out as scripts/gather_meshes.sh writes them\n"
            "                       (DIR/toys/<category>/, DIR/parts/<family>/, DIR/catalog.json);\n"
            "                       needed by toys and parts, optional for context-flip\n"
            "  --split-sizes LIST   scenes per split, as train=800,val=100,test=300\n"
            "  --objects N|MIN-MAX  objects per scene, 3 to 12, so that a scene with an anomaly\n"
            "                       keeps two normal objects (default 5; 3-7 with --recipe)\n"
            "  --views N            views per scene, 1 to 1000 (default 20)\n"
            "  --size PIXELS        side of the square views, 16 to 4096 (default 256)\n"
            "  --supersample S      samples per pixel side, 1 to 4 (default 2)\n"
            "  --normal-fraction F  fraction of scenes without an anomaly, in [0, 1] (default 0.2)\n"
            "  --anomaly KIND       bump, material (colours' channels rotated), bend, twist, fracture,\n"
            "                       crack, missing (a part removed) or random, drawn per scene from\n"
            "                       the seed (default: random)\n"
            "  --threads N          scenes generated at once with --recipe (default: all cores)\n"
            "  --bench v1           write the frozen benchmark bench-v1 (fixed recipes, seeds and\n"
            "                       sizes; see docs/BENCHMARK.md); --bench-v1 is the same\n"
            "  --contact-sheet DATASET  write a PNG of 16 scenes of a dataset, one view each,\n"
            "                       labelled with split and anomaly kind, odd objects outlined\n"
            "  --quiet              print errors only\n"
            "  -h, --help           print this text\n");
}

static int parse_long(const char *text, long low, long high, long *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != 0 || value < low || value > high)
        return -1;
    *out = value;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns 1 when the file name ends in an extension that od_mesh_load reads, in any letter case. */
static int is_mesh_file_name(const char *name)
{
    static const char *extensions[] = {".obj", ".ply", ".stl", ".off"};
    size_t length = strlen(name);
    if (length < 5)
        return 0;
    for (size_t i = 0; i < sizeof extensions / sizeof *extensions; i++)
        if (strcasecmp(name + length - 4, extensions[i]) == 0)
            return 1;
    return 0;
}

/* Lists the mesh files of a folder, sorted by name so that a seed picks the same files anywhere. */
static int list_mesh_files(const char *folder, char ***files, int *count, od_error *err)
{
    DIR *dir = opendir(folder);
    if (!dir)
        return od_fail(err, "%s: cannot open the folder (%s)", folder, strerror(errno));
    char **list = NULL;
    int n = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (!is_mesh_file_name(entry->d_name))
            continue;
        if (n == capacity) {
            capacity = capacity ? capacity * 2 : 16;
            char **grown = realloc(list, (size_t)capacity * sizeof *grown);
            if (!grown)
                break;
            list = grown;
        }
        size_t size = strlen(folder) + length + 2;
        list[n] = malloc(size);
        if (!list[n])
            break;
        snprintf(list[n], size, "%s/%s", folder, entry->d_name);
        n++;
    }
    closedir(dir);
    if (n == 0) {
        free(list);
        return od_fail(err, "%s: no mesh files in the folder (expected .obj, .ply, .stl or .off)", folder);
    }
    qsort(list, (size_t)n, sizeof *list, compare_names);
    *files = list;
    *count = n;
    return 0;
}

/* Reads a shape: a procedural name, or a path to a mesh file that od_mesh_load reads. */
static int load_shape(const char *shape, int scene, od_mesh *mesh, const char **name, od_error *err)
{
    static const char *procedural[3] = {"sphere", "torus", "box"};
    const char *chosen = shape ? shape : procedural[scene % 3];
    *name = chosen;
    if (strcmp(chosen, "sphere") == 0)
        return od_mesh_make_sphere(0.5f, 32, 64, mesh, err);
    if (strcmp(chosen, "torus") == 0)
        return od_mesh_make_torus(0.35f, 0.15f, 64, 32, mesh, err);
    if (strcmp(chosen, "box") == 0) {
        float size[3] = {1.0f, 0.7f, 0.45f};
        return od_mesh_make_box(size, mesh, err);
    }
    /* The file's name without folder or extension names the shape. */
    const char *slash = strrchr(chosen, '/');
    *name = slash ? slash + 1 : chosen;
    if (od_mesh_load(chosen, mesh, err) != 0)
        return -1;
    return od_mesh_weld(mesh, 1e-6f, err);
}

/* Returns 1 when --shape's value can only be meant as a procedural name: no folder separator, no
 * extension, and no file of that name. */
static int is_unknown_shape_word(const char *shape)
{
    if (strcmp(shape, "sphere") == 0 || strcmp(shape, "torus") == 0 || strcmp(shape, "box") == 0)
        return 0;
    struct stat info;
    return stat(shape, &info) != 0 && !strchr(shape, '/') && !strchr(shape, '.');
}

/* Parses "N" or "MIN-MAX" within [low, high]. */
static int parse_range(const char *text, long low, long high, long *min, long *max)
{
    const char *dash = strchr(text, '-');
    if (!dash)
        return parse_long(text, low, high, min) != 0 ? -1 : (*max = *min, 0);
    char first[32];
    size_t length = (size_t)(dash - text);
    if (length == 0 || length >= sizeof first)
        return -1;
    memcpy(first, text, length);
    first[length] = 0;
    if (parse_long(first, low, high, min) != 0 || parse_long(dash + 1, low, high, max) != 0)
        return -1;
    return *min <= *max ? 0 : -1;
}

/* Parses "name=N,name=N" into splits. */
static int parse_split_sizes(const char *text, od_synth_dataset_options *o)
{
    char copy[1024];
    if (snprintf(copy, sizeof copy, "%s", text) >= (int)sizeof copy)
        return -1;
    o->split_count = 0;
    for (char *item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
        char *equals = strchr(item, '=');
        long count;
        if (!equals || equals == item || o->split_count == OD_SYNTH_MAX_SPLITS)
            return -1;
        *equals = 0;
        if (strlen(item) >= OD_SYNTH_SPLIT_NAME_SIZE || parse_long(equals + 1, 0, 1000000, &count) != 0)
            return -1;
        od_synth_split_size *split = &o->splits[o->split_count++];
        snprintf(split->name, sizeof split->name, "%s", item);
        split->scene_count = (int)count;
    }
    return o->split_count > 0 ? 0 : -1;
}

/* ---- progress -------------------------------------------------------------------- */

typedef struct progress_state {
    const char *label;
    int quiet;
    int interactive;  /* stderr is a terminal: one line rewritten in place */
    int last_printed; /* scenes done at the last printed line */
} progress_state;

static void print_progress(const od_synth_dataset_progress *p, void *user)
{
    progress_state *state = user;
    if (state->quiet)
        return;
    int step = p->scenes_total / 10 > 0 ? p->scenes_total / 10 : 1;
    int last = p->scenes_done == p->scenes_total;
    if (!state->interactive && !last && p->scenes_done - state->last_printed < step)
        return;
    state->last_printed = p->scenes_done;
    int generated = p->scenes_done - p->scenes_skipped;
    double rate = p->seconds > 0 ? generated / p->seconds : 0;
    double eta = rate > 0 ? (p->scenes_total - p->scenes_done) / rate : 0;
    fprintf(stderr, "%sgenerate: %s: %d/%d scenes (%d skipped), %.2f scenes/s, ETA %dm%02ds, %d rejected",
            state->interactive ? "\r" : "", state->label, p->scenes_done, p->scenes_total, p->scenes_skipped, rate,
            (int)(eta / 60), (int)eta % 60, p->rejections);
    if (!state->interactive || last)
        fputc('\n', stderr);
    fflush(stderr);
}

static int run_dataset(od_synth_dataset_options *options, const char *output, const char *label, int quiet)
{
    progress_state state = {label, quiet, isatty(2), 0};
    options->progress = print_progress;
    options->progress_user = &state;
    od_synth_dataset_report report;
    od_error err = {{0}};
    if (od_synth_generate_dataset(options, output, &report, &err) != 0) {
        fprintf(stderr, "oddone generate: %s\n", err.message);
        return 1;
    }
    if (!quiet)
        printf("%s: %d scenes (%d written, %d already complete), %d anomalous objects, %d candidates rejected, "
               "%.1f s; see %s/manifest.json\n",
               label, report.scenes, report.scenes_generated, report.scenes_skipped, report.anomalous_objects,
               report.rejections, report.seconds, output);
    return 0;
}

/* ---- bench-v1 -------------------------------------------------------------------- */

/* One dataset of a frozen benchmark version. Changing any field makes a new version. */
typedef struct bench_part {
    const char *folder;
    od_synth_recipe recipe;
    uint64_t seed;
    const char *sizes;
    int needs_meshes; /* toys or parts meshes under --meshes */
} bench_part;

/* bench-v1: 10 views of 256 x 256 per scene, 3 to 7 objects and 20 % all-normal scenes. Ten views
 * let training use 5 to build the volume and 5 to supervise it. Context-flip uses procedural pairs,
 * so that part needs no meshes. */
static const bench_part BENCH_V1[] = {
    {"procedural", OD_SYNTH_RECIPE_PROCEDURAL, 1001, "train=400,val=50,test=300", 0},
    {"context_flip", OD_SYNTH_RECIPE_CONTEXT_FLIP, 1002, "context_flip=300", 0},
    {"toys", OD_SYNTH_RECIPE_TOYS, 1003, "train=400,val=50,test_seen=300,test_unseen=300", 1},
    {"parts", OD_SYNTH_RECIPE_PARTS, 1004, "train=400,val=50,test=300", 1},
};
#define BENCH_V1_VIEWS 10

static int run_bench_v1(const char *output, const char *meshes, int threads, int quiet)
{
    od_error err = {{0}};
    if (od_make_folders(output, &err) != 0) {
        fprintf(stderr, "oddone generate: %s\n", err.message);
        return 1;
    }
    int made = 0, status = 0;
    for (size_t i = 0; i < sizeof BENCH_V1 / sizeof BENCH_V1[0] && status == 0; i++) {
        const bench_part *part = &BENCH_V1[i];
        char folder[4096], label[64];
        snprintf(folder, sizeof folder, "%s/%s", output, part->folder);
        snprintf(label, sizeof label, "bench-v1/%s", part->folder);
        if (part->needs_meshes) {
            char kind_folder[4096];
            struct stat info;
            snprintf(kind_folder, sizeof kind_folder, "%s/%s", meshes ? meshes : "", part->folder);
            if (!meshes || stat(kind_folder, &info) != 0 || !S_ISDIR(info.st_mode)) {
                fprintf(stderr, "generate: %s skipped: no meshes%s%s (run scripts/gather_meshes.sh and pass "
                                "--meshes DIR)\n",
                        label, meshes ? " in " : "", meshes ? kind_folder : " folder given");
                continue;
            }
        }
        od_synth_dataset_options o = od_synth_dataset_options_default();
        o.recipe = part->recipe;
        o.seed = part->seed;
        o.version = "bench-v1";
        o.meshes_dir = part->needs_meshes ? meshes : NULL;
        o.scene.view_count = BENCH_V1_VIEWS;
        o.threads = threads;
        if (parse_split_sizes(part->sizes, &o) != 0) {
            fprintf(stderr, "oddone generate: bench-v1: invalid built-in sizes %s\n", part->sizes);
            return 1;
        }
        status = run_dataset(&o, folder, label, quiet);
        made += status == 0;
    }
    if (status == 0 && !quiet)
        printf("bench-v1: %d of %zu datasets in %s\n", made, sizeof BENCH_V1 / sizeof BENCH_V1[0], output);
    return status;
}

/* ---- the command ----------------------------------------------------------------- */

typedef struct generate_arguments {
    const char *output, *shape, *recipe, *meshes, *split_sizes, *bench, *contact_sheet;
    long scenes, seed, min_objects, max_objects, threads;
    int scenes_given, objects_given, quiet;
    const char *setting; /* the first option given that sets what a scene contains, or NULL */
    double normal_fraction;
    od_synth_scene_options scene;
} generate_arguments;

/* Parses the arguments; returns 0, -1 after printing a usage error, or 1 after printing the help. */
static int parse_arguments(int argc, char **argv, generate_arguments *a)
{
    memset(a, 0, sizeof *a);
    a->scenes = 1;
    a->seed = 1;
    a->min_objects = a->max_objects = 5;
    a->normal_fraction = 0.2;
    a->scene = od_synth_scene_options_default();
    a->scene.anomaly = OD_SYNTH_ANOMALY_RANDOM;
    for (int i = 0; i < argc; i++) {
        const char *argument = argv[i];
        if (strcmp(argument, "-h") == 0 || strcmp(argument, "--help") == 0) {
            print_generate_usage(stdout);
            return 1;
        }
        if (strcmp(argument, "--quiet") == 0) {
            a->quiet = 1;
            continue;
        }
        if (strcmp(argument, "--bench-v1") == 0) {
            a->bench = "v1";
            continue;
        }
        int known = 0;
        static const char *with_value[] = {"-o", "--output", "--shape", "--scenes", "--seed", "--objects",
                                           "--views", "--size", "--supersample", "--anomaly", "--normal-fraction",
                                           "--recipe", "--meshes", "--split-sizes", "--threads", "--bench",
                                           "--contact-sheet"};
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0] && !known; k++)
            known = strcmp(argument, with_value[k]) == 0;
        if (!known) {
            fprintf(stderr, "oddone generate: unknown option %s; run \"oddone generate --help\"\n", argument);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "oddone generate: %s needs a value; run \"oddone generate --help\"\n", argument);
            return -1;
        }
        const char *value = argv[++i];
        long number = 0;
        const char *expected = NULL;
        static const char *not_settings[] = {"-o", "--output", "--meshes", "--threads", "--bench", "--contact-sheet"};
        int is_setting = 1;
        for (size_t k = 0; k < sizeof not_settings / sizeof not_settings[0]; k++)
            is_setting &= strcmp(argument, not_settings[k]) != 0;
        if (is_setting && !a->setting)
            a->setting = argument;
        if (strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0) {
            a->output = value;
        } else if (strcmp(argument, "--shape") == 0) {
            a->shape = value;
            if (is_unknown_shape_word(value))
                expected = "sphere, torus, box, a Wavefront OBJ file or a folder of them";
        } else if (strcmp(argument, "--recipe") == 0) {
            od_synth_recipe recipe;
            a->recipe = value;
            if (od_synth_recipe_parse(value, &recipe) != 0)
                expected = "procedural, toys, parts or context-flip";
        } else if (strcmp(argument, "--meshes") == 0) {
            a->meshes = value;
        } else if (strcmp(argument, "--split-sizes") == 0) {
            od_synth_dataset_options check = od_synth_dataset_options_default();
            a->split_sizes = value;
            if (parse_split_sizes(value, &check) != 0)
                expected = "SPLIT=N pairs separated by commas, as train=800,val=100,test=300 (at most 8)";
        } else if (strcmp(argument, "--bench") == 0) {
            a->bench = value;
            if (strcmp(value, "v1") != 0)
                expected = "v1, the only benchmark version so far";
        } else if (strcmp(argument, "--contact-sheet") == 0) {
            a->contact_sheet = value;
        } else if (strcmp(argument, "--scenes") == 0) {
            a->scenes_given = 1;
            if (parse_long(value, 1, 1000000, &a->scenes) != 0)
                expected = "an integer from 1 to 1000000";
        } else if (strcmp(argument, "--seed") == 0) {
            if (parse_long(value, 0, 2147483647L, &a->seed) != 0)
                expected = "an integer from 0 to 2147483647";
        } else if (strcmp(argument, "--threads") == 0) {
            if (parse_long(value, 1, 1024, &a->threads) != 0)
                expected = "an integer from 1 to 1024";
        } else if (strcmp(argument, "--objects") == 0) {
            a->objects_given = 1;
            if (parse_range(value, 3, 12, &a->min_objects, &a->max_objects) != 0)
                expected = "N or MIN-MAX with 3 <= MIN <= MAX <= 12";
        } else if (strcmp(argument, "--views") == 0) {
            if (parse_long(value, 1, 1000, &number) != 0)
                expected = "an integer from 1 to 1000";
            a->scene.view_count = (int)number;
        } else if (strcmp(argument, "--size") == 0) {
            if (parse_long(value, 16, 4096, &number) != 0) {
                expected = "an integer from 16 to 4096";
            } else {
                /* The focal length scales with the view so that the field of view stays. */
                a->scene.focal = a->scene.focal * (double)number / a->scene.image_size;
                a->scene.image_size = (int)number;
            }
        } else if (strcmp(argument, "--supersample") == 0) {
            if (parse_long(value, 1, 4, &number) != 0)
                expected = "an integer from 1 to 4";
            a->scene.supersample = (int)number;
        } else if (strcmp(argument, "--anomaly") == 0) {
            if (od_synth_anomaly_parse(value, &a->scene.anomaly) != 0)
                expected = "bump, material, bend, twist, fracture, crack, missing or random";
        } else if (strcmp(argument, "--normal-fraction") == 0) {
            char *end;
            a->normal_fraction = strtod(value, &end);
            if (end == value || *end != 0 || !(a->normal_fraction >= 0 && a->normal_fraction <= 1))
                expected = "a number in [0, 1]";
        }
        if (expected) {
            fprintf(stderr, "oddone generate: %s expects %s; got \"%s\"\n", argument, expected, value);
            return -1;
        }
    }
    if (!a->output) {
        fprintf(stderr, "oddone generate: -o DIR is missing; usage: oddone generate -o DIR [OPTIONS]\n");
        return -1;
    }
    if (a->bench && a->setting) {
        fprintf(stderr, "oddone generate: --bench fixes the recipes, seeds, sizes and scene settings, so %s "
                        "cannot be given with it (only --meshes, --threads and --quiet)\n",
                a->setting);
        return -1;
    }
    if (a->recipe && a->shape) {
        fprintf(stderr, "oddone generate: --shape and --recipe exclude each other; a recipe draws its own "
                        "shapes\n");
        return -1;
    }
    if (a->split_sizes && !a->recipe) {
        fprintf(stderr, "oddone generate: --split-sizes needs --recipe\n");
        return -1;
    }
    return 0;
}

static int run_recipe(const generate_arguments *a)
{
    od_synth_dataset_options o = od_synth_dataset_options_default();
    od_synth_recipe_parse(a->recipe, &o.recipe);
    o.seed = (uint64_t)a->seed;
    o.meshes_dir = a->meshes;
    o.scene = a->scene;
    o.normal_fraction = a->normal_fraction;
    o.threads = (int)a->threads;
    if (a->objects_given) {
        o.min_objects = (int)a->min_objects;
        o.max_objects = (int)a->max_objects;
    }
    if (a->split_sizes)
        parse_split_sizes(a->split_sizes, &o);
    else if (a->scenes_given)
        o.scenes_per_split = (int)a->scenes;
    return run_dataset(&o, a->output, a->recipe, a->quiet);
}

/* Writes DIR/scene_NNNN, one shape per scene, without splits or manifest. */
static int run_shapes(const generate_arguments *a)
{
    const char *output = a->output, *shape = a->shape;
    long scenes = a->scenes;
    od_synth_scene_options options = a->scene;
    od_error folder_err;
    if (od_make_folders(output, &folder_err) != 0) {
        fprintf(stderr, "oddone generate: %s\n", folder_err.message);
        return 1;
    }

    char **shape_files = NULL;
    int shape_file_count = 0;
    struct stat info;
    if (shape && stat(shape, &info) == 0 && S_ISDIR(info.st_mode)) {
        od_error err = {{0}};
        if (list_mesh_files(shape, &shape_files, &shape_file_count, &err) != 0) {
            fprintf(stderr, "oddone generate: %s\n", err.message);
            return 1;
        }
    }
    int status = 0;
    od_rng rng;
    od_rng_seed(&rng, (uint64_t)a->seed);
    int anomalous_scenes = 0, rejected = 0;
    for (long s = 0; s < scenes; s++) {
        od_error err = {{0}};
        od_mesh mesh;
        const char *name = NULL;
        const char *scene_shape = shape_files ? shape_files[s % shape_file_count] : shape;
        if (load_shape(scene_shape, (int)s, &mesh, &name, &err) != 0) {
            fprintf(stderr, "oddone generate: %s\n", err.message);
            status = 1;
            break;
        }
        char shape_name[64];
        snprintf(shape_name, sizeof shape_name, "%s", name);
        char *dot = strrchr(shape_name, '.');
        if (dot && dot != shape_name)
            *dot = 0;
        options.seed = od_rng_next_u64(&rng);
        options.anomalous = od_rng_uniform(&rng) >= a->normal_fraction;
        /* A fixed count draws nothing, so a seed writes the scenes it wrote before ranges existed. */
        options.object_count = (int)a->min_objects;
        if (a->max_objects > a->min_objects)
            options.object_count += (int)od_rng_below(&rng, (uint64_t)(a->max_objects - a->min_objects + 1));
        anomalous_scenes += options.anomalous;
        size_t length = strlen(output) + 32;
        char *dir = malloc(length);
        if (!dir) {
            od_mesh_free(&mesh);
            fprintf(stderr, "oddone generate: out of memory\n");
            status = 1;
            break;
        }
        snprintf(dir, length, "%s/scene_%04ld", output, s);
        od_synth_scene_stats stats;
        int rc = od_synth_generate_scene(&options, &mesh, shape_name, dir, &stats, &err);
        od_mesh_free(&mesh);
        if (rc != 0) {
            fprintf(stderr, "oddone generate: %s: %s\n", dir, err.message);
            free(dir);
            status = 1;
            break;
        }
        rejected += stats.rejected;
        if (a->quiet)
            ;
        else if (options.anomalous)
            printf("%s: %d x %s, %d views, one anomalous (%s, %lld pixels in its best view, %d candidates "
                   "rejected)\n",
                   dir, options.object_count, shape_name, options.view_count, od_synth_anomaly_name(stats.kind),
                   (long long)stats.anomaly_pixels, stats.rejected);
        else
            printf("%s: %d x %s, %d views, all normal\n", dir, options.object_count, shape_name, options.view_count);
        free(dir);
    }
    for (int i = 0; i < shape_file_count; i++)
        free(shape_files[i]);
    free(shape_files);
    if (status == 0 && !a->quiet)
        printf("%ld scenes (%d with an anomaly, %d candidates rejected for a barely visible anomaly) in %s\n",
               scenes, anomalous_scenes, rejected, output);
    return status;
}

int od_cli_generate(int argc, char **argv)
{
    generate_arguments a;
    int parsed = parse_arguments(argc, argv, &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    if (a.contact_sheet)
        return od_cli_contact_sheet(a.contact_sheet, a.output, a.quiet);
    if (a.bench)
        return run_bench_v1(a.output, a.meshes, (int)a.threads, a.quiet);
    if (a.recipe)
        return run_recipe(&a);
    return run_shapes(&a);
}
