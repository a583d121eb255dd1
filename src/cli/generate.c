/* `oddone generate`: writes synthetic scenes in the release format. */
#include "cli/generate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/folder.h"
#include "synth/generate.h"
#include "synth/mesh.h"

static void print_generate_usage(FILE *stream)
{
    fprintf(stream,
            "usage: oddone generate -o DIR [OPTIONS]\n"
            "\n"
            "Writes synthetic Odd-One-Out scenes in the ToysAD-8K / PartsAD-15K release format\n"
            "(RGB/, segmentations/, scene3d.metadata.json), readable by `oddone show`. Each scene\n"
            "has several instances of one shape on a checked floor; in most scenes one instance\n"
            "carries an anomaly, marked in its path (\"sphere_000-bump-001.obj\").\n"
            "\n"
            "options:\n"
            "  -o, --output DIR     folder for the scenes (DIR/scene_NNNN); created when missing\n"
            "                       (required)\n"
            "  --scenes N           number of scenes (default 1)\n"
            "  --seed N             random seed; the same seed writes the same files (default 1)\n"
            "  --shape NAME|PATH    sphere, torus, box, a Wavefront OBJ file, or a folder whose\n"
            "                       .obj files are used in name order, one per scene (default:\n"
            "                       the three procedural shapes in turn)\n"
            "  --objects N          instances per scene, 2 to 12 (default 5)\n"
            "  --views N            views per scene (default 20)\n"
            "  --size PIXELS        side of the square views (default 256)\n"
            "  --supersample S      samples per pixel side, 1 to 4 (default 2)\n"
            "  --normal-fraction F  fraction of scenes without an anomaly, in [0, 1] (default 0.2)\n"
            "  --anomaly KIND       bump, material (colours' channels rotated), bend, twist, fracture,\n"
            "                       crack, missing (a part removed) or random (default)\n"
            "                       (default: random, drawn per scene from the seed)\n"
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

/* Lists the .obj files of a folder, sorted by name so that a seed picks the same files anywhere. */
static int list_obj_files(const char *folder, char ***files, int *count, od_error *err)
{
    DIR *dir = opendir(folder);
    if (!dir)
        return od_fail(err, "%s: cannot open the folder (%s)", folder, strerror(errno));
    char **list = NULL;
    int n = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length < 5 || strcmp(entry->d_name + length - 4, ".obj") != 0)
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
        return od_fail(err, "%s: no .obj files in the folder", folder);
    }
    qsort(list, (size_t)n, sizeof *list, compare_names);
    *files = list;
    *count = n;
    return 0;
}

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
    if (od_mesh_read_obj(chosen, NULL, mesh, err) != 0)
        return -1;
    return od_mesh_weld(mesh, 1e-6f, err);
}

int od_cli_generate(int argc, char **argv)
{
    const char *output = NULL, *shape = NULL;
    long scenes = 1, seed = 1;
    double normal_fraction = 0.2;
    od_synth_scene_options options = od_synth_scene_options_default();
    options.anomaly = OD_SYNTH_ANOMALY_RANDOM;
    for (int i = 0; i < argc; i++) {
        const char *argument = argv[i];
        if (strcmp(argument, "-h") == 0 || strcmp(argument, "--help") == 0) {
            print_generate_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "oddone generate: unknown option or missing value: %s\n", argument);
            print_generate_usage(stderr);
            return 2;
        }
        const char *value = argv[++i];
        long number = 0;
        int bad = 0;
        if (strcmp(argument, "-o") == 0 || strcmp(argument, "--output") == 0) {
            output = value;
        } else if (strcmp(argument, "--shape") == 0) {
            shape = value;
        } else if (strcmp(argument, "--scenes") == 0) {
            bad = parse_long(value, 1, 1000000, &scenes);
        } else if (strcmp(argument, "--seed") == 0) {
            bad = parse_long(value, 0, 2147483647L, &seed);
        } else if (strcmp(argument, "--objects") == 0) {
            bad = parse_long(value, 2, 12, &number);
            options.object_count = (int)number;
        } else if (strcmp(argument, "--views") == 0) {
            bad = parse_long(value, 1, 1000, &number);
            options.view_count = (int)number;
        } else if (strcmp(argument, "--size") == 0) {
            bad = parse_long(value, 16, 4096, &number);
            /* The focal length scales with the view so that the field of view stays. */
            options.focal = options.focal * (double)number / options.image_size;
            options.image_size = (int)number;
        } else if (strcmp(argument, "--supersample") == 0) {
            bad = parse_long(value, 1, 4, &number);
            options.supersample = (int)number;
        } else if (strcmp(argument, "--anomaly") == 0) {
            bad = od_synth_anomaly_parse(value, &options.anomaly) != 0;
        } else if (strcmp(argument, "--normal-fraction") == 0) {
            char *end;
            normal_fraction = strtod(value, &end);
            bad = end == value || *end != 0 || !(normal_fraction >= 0 && normal_fraction <= 1);
        } else {
            fprintf(stderr, "oddone generate: unknown option %s\n", argument);
            print_generate_usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "oddone generate: invalid value \"%s\" for %s; see oddone generate --help\n", value,
                    argument);
            return 2;
        }
    }
    if (!output) {
        fprintf(stderr, "oddone generate: -o DIR is required\n");
        print_generate_usage(stderr);
        return 2;
    }
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
        if (list_obj_files(shape, &shape_files, &shape_file_count, &err) != 0) {
            fprintf(stderr, "oddone generate: %s\n", err.message);
            return 1;
        }
    }
    int status = 0;
    od_rng rng;
    od_rng_seed(&rng, (uint64_t)seed);
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
        options.anomalous = od_rng_uniform(&rng) >= normal_fraction;
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
        if (options.anomalous)
            printf("%s: %d x %s, %d views, one anomalous (%lld pixels in its best view, %d candidates "
                   "rejected)\n",
                   dir, options.object_count, shape_name, options.view_count, (long long)stats.anomaly_pixels,
                   stats.rejected);
        else
            printf("%s: %d x %s, %d views, all normal\n", dir, options.object_count, shape_name, options.view_count);
        free(dir);
    }
    for (int i = 0; i < shape_file_count; i++)
        free(shape_files[i]);
    free(shape_files);
    if (status == 0)
        printf("%ld scenes (%d with an anomaly, %d candidates rejected for a barely visible anomaly) in %s\n",
               scenes, anomalous_scenes, rejected, output);
    return status;
}
