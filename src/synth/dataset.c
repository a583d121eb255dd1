/* Benchmark datasets: recipes, splits, resumable scene jobs and the
 * manifest. See dataset.h. */
#define _XOPEN_SOURCE 700
#include "synth/dataset.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/folder.h"
#include "oddone.h"
#include "synth/anomaly.h"
#include "synth/mesh.h"

#define MAX_OBJECTS 12
/* Draws of one scene (or context-flip group) before the dataset fails. */
#define MAX_JOB_ATTEMPTS 8
/* Objects of a context-flip scene, and its scenes per group (ratios 1:5 to 5:1). */
#define FLIP_OBJECTS 6
#define FLIP_RATIOS 5
/* Objects up to this count fit the default placement radius; more widen it and the cameras. */
#define OBJECTS_AT_DEFAULT_RADIUS 7
/* The shape descriptor: two extent ratios and a radial histogram of the surface. */
#define HISTOGRAM_BINS 16
#define DESCRIPTOR_SIZE (2 + HISTOGRAM_BINS)
/* Surface points per descriptor, and the fixed seed that draws them, so a mesh has one descriptor. */
#define DESCRIPTOR_SAMPLES 4096
#define DESCRIPTOR_SEED 0x64657363ULL
/* Descriptor distances of an accepted context-flip pair: above the first the shapes are not the
 * same file twice, below the second they are close. Chosen by eye on procedural pairs. */
#define PAIR_MIN_DISTANCE 1e-3
#define PAIR_MAX_DISTANCE 0.3
#define PATH_SIZE 4096
#define SHAPE_NAME_SIZE 64
#define KIND_NAME_SIZE 24

/* ---- names ----------------------------------------------------------------------- */

const char *od_synth_recipe_name(od_synth_recipe recipe)
{
    switch (recipe) {
    case OD_SYNTH_RECIPE_TOYS:
        return "toys";
    case OD_SYNTH_RECIPE_PARTS:
        return "parts";
    case OD_SYNTH_RECIPE_CONTEXT_FLIP:
        return "context-flip";
    default:
        return "procedural";
    }
}

int od_synth_recipe_parse(const char *name, od_synth_recipe *recipe)
{
    for (int r = OD_SYNTH_RECIPE_PROCEDURAL; r <= OD_SYNTH_RECIPE_CONTEXT_FLIP; r++)
        if (name && strcmp(name, od_synth_recipe_name((od_synth_recipe)r)) == 0) {
            *recipe = (od_synth_recipe)r;
            return 0;
        }
    return -1;
}

od_synth_dataset_options od_synth_dataset_options_default(void)
{
    od_synth_dataset_options o;
    memset(&o, 0, sizeof o);
    o.recipe = OD_SYNTH_RECIPE_PROCEDURAL;
    o.seed = 1;
    o.scenes_per_split = 10;
    o.min_objects = 3;
    o.max_objects = 7;
    o.normal_fraction = 0.2;
    o.unseen_fraction = 12.0 / 51.0;
    o.heldout_fraction = 0.2;
    o.distinct_fraction = 0.1;
    o.distinct_max_chamfer = 0.05;
    o.scene = od_synth_scene_options_default();
    o.scene.anomaly = OD_SYNTH_ANOMALY_RANDOM;
    return o;
}

/* ---- hashing --------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t hash, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++) {
        hash ^= bytes[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

/* Returns a hash of (seed, salt, text) that ranks names for the seeded split rules. */
static uint64_t seeded_hash(uint64_t seed, const char *salt, const char *text)
{
    uint64_t hash = fnv1a(FNV_OFFSET, &seed, sizeof seed);
    hash = fnv1a(hash, salt, strlen(salt) + 1);
    hash = fnv1a(hash, text, strlen(text));
    od_rng rng;
    od_rng_seed(&rng, hash);
    return od_rng_next_u64(&rng);
}

static int hash_file(const char *path, uint64_t *hash, int64_t *bytes)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return -1;
    unsigned char buffer[65536];
    size_t n;
    *hash = FNV_OFFSET;
    *bytes = 0;
    while ((n = fread(buffer, 1, sizeof buffer, file)) > 0) {
        *hash = fnv1a(*hash, buffer, n);
        *bytes += (int64_t)n;
    }
    int failed = ferror(file);
    fclose(file);
    return failed ? -1 : 0;
}

/* ---- folders --------------------------------------------------------------------- */

/* Writes "<folder>/<name>" into out (PATH_SIZE bytes). A path that does not fit is cut short, so it
 * names no existing file and the next open or stat fails with the path in its message. */
static void path_join(char *out, const char *folder, const char *name)
{
    size_t folder_length = strlen(folder);
    if (folder_length >= PATH_SIZE - 1)
        folder_length = PATH_SIZE - 2;
    memcpy(out, folder, folder_length);
    out[folder_length] = '/';
    size_t name_length = strlen(name);
    if (folder_length + 1 + name_length >= PATH_SIZE)
        name_length = PATH_SIZE - folder_length - 2;
    memcpy(out + folder_length + 1, name, name_length);
    out[folder_length + 1 + name_length] = 0;
}

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void)info;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes a folder and everything under it; a missing folder is fine. */
static int remove_tree(const char *path, od_error *err)
{
    struct stat info;
    if (lstat(path, &info) != 0)
        return errno == ENOENT ? 0 : od_fail(err, "%s: cannot read (%s)", path, strerror(errno));
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return od_fail(err, "%s: cannot remove the unfinished scene (%s)", path, strerror(errno));
    return 0;
}

static int is_folder(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct string_list {
    char **items;
    int count, capacity;
} string_list;

static int string_list_add(string_list *list, const char *text)
{
    if (list->count == list->capacity) {
        int capacity = list->capacity ? list->capacity * 2 : 16;
        char **grown = realloc(list->items, (size_t)capacity * sizeof *grown);
        if (!grown)
            return -1;
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count] = strdup(text);
    if (!list->items[list->count])
        return -1;
    list->count++;
    return 0;
}

static void string_list_free(string_list *list)
{
    for (int i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* ---- the mesh library -------------------------------------------------------------- */

/* The one place that decides which files are meshes, and the one place that reads them. */
static int mesh_file_supported(const char *name)
{
    static const char *extensions[] = {".obj", ".ply", ".stl", ".off"};
    size_t length = strlen(name);
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (length > 4 && strcasecmp(name + length - 4, extensions[i]) == 0)
            return 1;
    return 0;
}

/* Reads a mesh and welds it. OBJ files are read with their textures, which od_mesh_load skips. */
static int load_mesh_file(const char *path, od_mesh *mesh, od_error *err)
{
    size_t length = strlen(path);
    int rc;
    if (length > 4 && strcasecmp(path + length - 4, ".obj") == 0) {
        od_mesh_obj_options options = od_mesh_obj_options_default();
        options.read_textures = 1;
        rc = od_mesh_read_obj(path, &options, mesh, err);
    } else {
        rc = od_mesh_load(path, mesh, err);
    }
    if (rc != 0)
        return -1;
    if (od_mesh_weld(mesh, 1e-6f, err) != 0) {
        od_mesh_free(mesh);
        return -1;
    }
    return 0;
}

/* Where a mesh's scenes go. */
typedef enum mesh_role {
    ROLE_TRAIN = 0,   /* train and val */
    ROLE_TEST_SEEN,   /* toys: held out from a seen category */
    ROLE_TEST_UNSEEN, /* toys: an unseen category */
    ROLE_TEST,        /* parts: a held-out shape */
    ROLE_PAIR,        /* context-flip */
    ROLE_COUNT
} mesh_role;

static const char *role_name(mesh_role role)
{
    static const char *names[ROLE_COUNT] = {"train", "test_seen", "test_unseen", "test", "context_flip"};
    return names[role];
}

typedef struct mesh_entry {
    char *relative; /* path under the meshes folder */
    char *group;    /* category (toys) or family (parts) */
    uint64_t hash;  /* FNV-1a 64 of the file's bytes */
    int64_t bytes;
    mesh_role role;
    int partner;             /* context-flip: index of the nearest close mesh, or -1 */
    double partner_distance; /* its descriptor distance */
    cJSON *catalog;          /* the catalog's entry for the file, or NULL */
} mesh_entry;

typedef struct mesh_library {
    char *root;
    const char *kind; /* "toys" or "parts" */
    mesh_entry *meshes;
    int count;
    string_list groups;  /* sorted */
    unsigned char *unseen; /* per group, toys only */
} mesh_library;

static void mesh_library_free(mesh_library *library)
{
    for (int i = 0; i < library->count; i++) {
        free(library->meshes[i].relative);
        free(library->meshes[i].group);
        cJSON_Delete(library->meshes[i].catalog);
    }
    free(library->meshes);
    free(library->root);
    free(library->unseen);
    string_list_free(&library->groups);
    memset(library, 0, sizeof *library);
}

/* Lists the supported files of MESHES/<kind>/<group>/ (depth 0: the kind's folder, whose subfolders
 * are the groups; depth 1: a group's folder, whose subfolders hold a model's textures and are not
 * searched), as paths relative to root. */
static int list_mesh_files(const char *root, const char *relative, int depth, string_list *files, od_error *err)
{
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/%s", root, relative);
    DIR *dir = opendir(path);
    if (!dir)
        return od_fail(err, "%s: cannot open the folder (%s)", path, strerror(errno));
    string_list names = {0};
    struct dirent *entry;
    int rc = 0;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.' && string_list_add(&names, entry->d_name) != 0)
            rc = od_fail(err, "%s: out of memory listing the folder", path);
    closedir(dir);
    if (names.count)
        qsort(names.items, (size_t)names.count, sizeof *names.items, compare_strings);
    for (int i = 0; rc == 0 && i < names.count; i++) {
        char child[PATH_SIZE];
        snprintf(child, sizeof child, "%s/%s", relative, names.items[i]);
        char full[PATH_SIZE];
        path_join(full, root, child);
        if (is_folder(full)) {
            if (depth == 0)
                rc = list_mesh_files(root, child, 1, files, err);
        } else if (depth == 1 && mesh_file_supported(names.items[i]) && string_list_add(files, child) != 0) {
            rc = od_fail(err, "%s: out of memory listing the folder", path);
        }
    }
    string_list_free(&names);
    return rc;
}

/* Finds the catalog entry of a mesh: an object whose "path" is the mesh's path under the meshes
 * folder, in an array that is the catalog itself or its "meshes" member. */
static cJSON *catalog_entry(const cJSON *catalog, const char *relative)
{
    const cJSON *list = cJSON_IsArray(catalog) ? catalog : cJSON_GetObjectItemCaseSensitive(catalog, "meshes");
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(item, "path");
        if (cJSON_IsString(path) && strcmp(path->valuestring, relative) == 0)
            return cJSON_Duplicate(item, 1);
    }
    return NULL;
}

static cJSON *read_json_file(const char *path, od_error *err)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        od_fail(err, "%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t size = 0, capacity = 0;
    char buffer[65536];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, file)) > 0) {
        if (size + n + 1 > capacity) {
            capacity = (size + n + 1) * 2;
            char *grown = realloc(text, capacity);
            if (!grown) {
                free(text);
                fclose(file);
                od_fail(err, "%s: out of memory", path);
                return NULL;
            }
            text = grown;
        }
        memcpy(text + size, buffer, n);
        size += n;
    }
    fclose(file);
    cJSON *root = text ? cJSON_ParseWithLength(text, size) : NULL;
    free(text);
    if (!root)
        od_fail(err, "%s: invalid JSON (expected an object)", path);
    return root;
}

/* Reads MESHES/<kind>/<group>/... into library, sorted by path. */
static int mesh_library_open(const char *meshes_dir, const char *kind, mesh_library *library, od_error *err)
{
    memset(library, 0, sizeof *library);
    library->kind = kind;
    library->root = strdup(meshes_dir);
    string_list files = {0};
    char folder[PATH_SIZE];
    snprintf(folder, sizeof folder, "%s/%s", meshes_dir, kind);
    if (!is_folder(folder))
        return od_fail(err, "%s: missing folder; the %s recipe reads meshes from %s/<group>/ as "
                            "scripts/gather_meshes.sh writes them",
                       folder, kind, folder);
    if (list_mesh_files(meshes_dir, kind, 0, &files, err) != 0) {
        string_list_free(&files);
        return -1;
    }
    char catalog_path[PATH_SIZE];
    snprintf(catalog_path, sizeof catalog_path, "%s/catalog.json", meshes_dir);
    cJSON *catalog = NULL;
    struct stat info;
    if (stat(catalog_path, &info) == 0 && !(catalog = read_json_file(catalog_path, err))) {
        string_list_free(&files);
        return -1;
    }
    int rc = 0;
    library->meshes = calloc((size_t)files.count + 1, sizeof *library->meshes);
    if (!library->meshes)
        rc = od_fail(err, "%s: out of memory for %d meshes", folder, files.count);
    for (int i = 0; rc == 0 && i < files.count; i++) {
        /* kind/<group>/... : the group is the second component. */
        const char *relative = files.items[i];
        const char *group_start = relative + strlen(kind) + 1;
        const char *group_end = strchr(group_start, '/');
        mesh_entry *entry = &library->meshes[library->count];
        entry->relative = strdup(relative);
        entry->group = strndup(group_start, (size_t)(group_end - group_start));
        entry->partner = -1;
        char path[PATH_SIZE];
        snprintf(path, sizeof path, "%s/%s", meshes_dir, relative);
        if (!entry->relative || !entry->group) {
            rc = od_fail(err, "%s: out of memory", folder);
            break;
        }
        library->count++;
        if (hash_file(path, &entry->hash, &entry->bytes) != 0)
            rc = od_fail(err, "%s: cannot read (%s)", path, strerror(errno));
        entry->catalog = catalog ? catalog_entry(catalog, relative) : NULL;
        int known = 0;
        for (int g = 0; g < library->groups.count && !known; g++)
            known = strcmp(library->groups.items[g], entry->group) == 0;
        if (!known && string_list_add(&library->groups, entry->group) != 0)
            rc = od_fail(err, "%s: out of memory", folder);
    }
    cJSON_Delete(catalog);
    string_list_free(&files);
    if (rc == 0 && library->count == 0)
        rc = od_fail(err, "%s: no .obj, .ply, .stl or .off files in any <group> folder", folder);
    if (rc == 0)
        qsort(library->groups.items, (size_t)library->groups.count, sizeof *library->groups.items,
              compare_strings);
    if (rc != 0)
        mesh_library_free(library);
    return rc;
}

typedef struct ranked {
    uint64_t key;
    int index;
} ranked;

static int compare_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->index - y->index;
}

/* Returns round(fraction * count), kept within [1, count - 1] when count >= 2. */
static int held_out_count(double fraction, int count)
{
    int held = (int)floor(fraction * count + 0.5);
    if (count >= 2 && held < 1)
        held = 1;
    if (count >= 2 && held > count - 1)
        held = count - 1;
    return count < 2 ? 0 : held;
}

/* toys: the unseen categories are the first round(unseen_fraction * groups) by a seeded hash of their
 * names. Of each seen category with 3 or more meshes, a fifth (at least one), ranked by a seeded
 * hash of their paths, is held out for test_seen. */
static int assign_toys_roles(mesh_library *library, uint64_t seed, double unseen_fraction, od_error *err)
{
    int groups = library->groups.count;
    if (groups < 2)
        return od_fail(err, "%s/toys: %d category found; the toys recipe needs 2 or more to hold some out",
                       library->root, groups);
    ranked *order = calloc((size_t)groups + (size_t)library->count, sizeof *order);
    library->unseen = calloc((size_t)groups, 1);
    if (!order || !library->unseen) {
        free(order);
        return od_fail(err, "out of memory ranking %d categories", groups);
    }
    for (int g = 0; g < groups; g++)
        order[g] = (ranked){seeded_hash(seed, "unseen category", library->groups.items[g]), g};
    qsort(order, (size_t)groups, sizeof *order, compare_ranked);
    int unseen = held_out_count(unseen_fraction, groups);
    for (int k = 0; k < unseen; k++)
        library->unseen[order[k].index] = 1;

    for (int g = 0; g < groups; g++) {
        int members = 0;
        for (int i = 0; i < library->count; i++) {
            if (strcmp(library->meshes[i].group, library->groups.items[g]) != 0)
                continue;
            library->meshes[i].role = library->unseen[g] ? ROLE_TEST_UNSEEN : ROLE_TRAIN;
            order[members++] = (ranked){seeded_hash(seed, "test_seen mesh", library->meshes[i].relative), i};
        }
        if (library->unseen[g] || members < 3)
            continue;
        qsort(order, (size_t)members, sizeof *order, compare_ranked);
        int held = held_out_count(0.2, members);
        for (int k = 0; k < held; k++)
            library->meshes[order[k].index].role = ROLE_TEST_SEEN;
    }
    free(order);
    return 0;
}

/* parts: the test shapes are the first round(heldout_fraction * count) by a seeded hash of their paths. */
static int assign_parts_roles(mesh_library *library, uint64_t seed, double heldout_fraction, od_error *err)
{
    if (library->count < 2)
        return od_fail(err, "%s/parts: %d mesh found; the parts recipe needs 2 or more to hold some out",
                       library->root, library->count);
    ranked *order = calloc((size_t)library->count, sizeof *order);
    if (!order)
        return od_fail(err, "out of memory ranking %d meshes", library->count);
    for (int i = 0; i < library->count; i++)
        order[i] = (ranked){seeded_hash(seed, "test part", library->meshes[i].relative), i};
    qsort(order, (size_t)library->count, sizeof *order, compare_ranked);
    int held = held_out_count(heldout_fraction, library->count);
    for (int k = 0; k < library->count; k++)
        library->meshes[order[k].index].role = k < held ? ROLE_TEST : ROLE_TRAIN;
    free(order);
    return 0;
}

/* ---- shape descriptors for context-flip pairs -------------------------------------- */

/* Writes two extent ratios (middle / largest, smallest / largest) and a histogram of the distances
 * of DESCRIPTOR_SAMPLES surface points, drawn uniformly by area with a fixed seed, from their mean,
 * relative to the largest distance. Each point is shared linearly between its two nearest bins, so
 * a small change of shape moves the histogram a little even on a mesh of a few large faces. */
static void shape_descriptor(const od_mesh *mesh, float descriptor[DESCRIPTOR_SIZE])
{
    memset(descriptor, 0, DESCRIPTOR_SIZE * sizeof(float));
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    float extent[3] = {max[0] - min[0], max[1] - min[1], max[2] - min[2]};
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++)
            if (extent[b] > extent[a]) {
                float t = extent[a];
                extent[a] = extent[b];
                extent[b] = t;
            }
    if (!(extent[0] > 0) || mesh->face_count == 0)
        return;
    descriptor[0] = extent[1] / extent[0];
    descriptor[1] = extent[2] / extent[0];

    /* Cumulative face areas, to draw faces in proportion to their area. */
    double *cumulative = malloc((size_t)mesh->face_count * sizeof *cumulative);
    double *points = malloc((size_t)DESCRIPTOR_SAMPLES * 3 * sizeof *points);
    if (!cumulative || !points) {
        free(cumulative);
        free(points);
        return;
    }
    double total = 0;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        const float *p[3];
        for (int k = 0; k < 3; k++)
            p[k] = mesh->positions + (int64_t)mesh->faces[f * 3 + k] * 3;
        double u[3], v[3];
        for (int k = 0; k < 3; k++) {
            u[k] = p[1][k] - p[0][k];
            v[k] = p[2][k] - p[0][k];
        }
        double cx = u[1] * v[2] - u[2] * v[1], cy = u[2] * v[0] - u[0] * v[2], cz = u[0] * v[1] - u[1] * v[0];
        total += 0.5 * sqrt(cx * cx + cy * cy + cz * cz);
        cumulative[f] = total;
    }

    od_rng rng;
    od_rng_seed(&rng, DESCRIPTOR_SEED);
    double mean[3] = {0, 0, 0};
    for (int i = 0; total > 0 && i < DESCRIPTOR_SAMPLES; i++) {
        double target = od_rng_uniform(&rng) * total;
        int64_t low = 0, high = mesh->face_count - 1;
        while (low < high) {
            int64_t middle = (low + high) / 2;
            if (cumulative[middle] < target)
                low = middle + 1;
            else
                high = middle;
        }
        double r1 = od_rng_uniform(&rng), r2 = od_rng_uniform(&rng);
        if (r1 + r2 > 1) {
            r1 = 1 - r1;
            r2 = 1 - r2;
        }
        const int32_t *face = mesh->faces + low * 3;
        for (int k = 0; k < 3; k++) {
            double a = mesh->positions[face[0] * 3 + k], b = mesh->positions[face[1] * 3 + k];
            double c = mesh->positions[face[2] * 3 + k];
            points[i * 3 + k] = a + r1 * (b - a) + r2 * (c - a);
            mean[k] += points[i * 3 + k] / DESCRIPTOR_SAMPLES;
        }
    }
    double largest = 0;
    for (int i = 0; total > 0 && i < DESCRIPTOR_SAMPLES; i++) {
        double d2 = 0;
        for (int k = 0; k < 3; k++)
            d2 += (points[i * 3 + k] - mean[k]) * (points[i * 3 + k] - mean[k]);
        points[i * 3] = sqrt(d2);
        largest = fmax(largest, points[i * 3]);
    }
    for (int i = 0; largest > 0 && i < DESCRIPTOR_SAMPLES; i++) {
        double position = points[i * 3] / largest * (HISTOGRAM_BINS - 1);
        int bin = (int)position;
        bin = bin >= HISTOGRAM_BINS - 1 ? HISTOGRAM_BINS - 2 : bin;
        double share = position - bin;
        descriptor[2 + bin] += (float)((1 - share) / DESCRIPTOR_SAMPLES);
        descriptor[3 + bin] += (float)(share / DESCRIPTOR_SAMPLES);
    }
    free(cumulative);
    free(points);
}

static double descriptor_distance(const float *a, const float *b)
{
    double sum = 0;
    for (int k = 0; k < DESCRIPTOR_SIZE; k++)
        sum += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    return sqrt(sum);
}

/* Pairs every mesh with its nearest neighbour of the same group and role, kept when the descriptor
 * distance lies in (PAIR_MIN_DISTANCE, PAIR_MAX_DISTANCE). Returns the count of meshes with a
 * partner. */
static int find_pairs(mesh_library *library, od_error *err)
{
    float *descriptors = calloc((size_t)library->count * DESCRIPTOR_SIZE + 1, sizeof *descriptors);
    if (!descriptors)
        return od_fail(err, "out of memory for %d shape descriptors", library->count);
    for (int i = 0; i < library->count; i++) {
        char path[PATH_SIZE];
        snprintf(path, sizeof path, "%s/%s", library->root, library->meshes[i].relative);
        od_mesh mesh;
        od_error ignored;
        /* An unreadable mesh keeps an empty descriptor and finds no partner. */
        if (load_mesh_file(path, &mesh, &ignored) != 0)
            continue;
        shape_descriptor(&mesh, descriptors + (size_t)i * DESCRIPTOR_SIZE);
        od_mesh_free(&mesh);
    }
    int paired = 0;
    for (int i = 0; i < library->count; i++) {
        mesh_entry *entry = &library->meshes[i];
        double best = INFINITY;
        for (int j = 0; j < library->count; j++) {
            if (j == i || library->meshes[j].role != entry->role || strcmp(library->meshes[j].group, entry->group) != 0)
                continue;
            double d = descriptor_distance(descriptors + (size_t)i * DESCRIPTOR_SIZE,
                                           descriptors + (size_t)j * DESCRIPTOR_SIZE);
            if (d > PAIR_MIN_DISTANCE && d < best) {
                best = d;
                entry->partner = j;
            }
        }
        entry->partner_distance = best;
        if (entry->partner >= 0 && !(best < PAIR_MAX_DISTANCE))
            entry->partner = -1;
        paired += entry->partner >= 0;
    }
    free(descriptors);
    return paired;
}

/* ---- procedural shapes ------------------------------------------------------------- */

enum { PROCEDURAL_BOX, PROCEDURAL_ELLIPSOID, PROCEDURAL_TORUS, PROCEDURAL_STACK, PROCEDURAL_KINDS };

/* A procedural shape: its kind and two proportions in [0, 1] that the kind maps to its ranges. */
typedef struct procedural_shape {
    int kind;
    double p[2];
} procedural_shape;

/* Appends mesh b to a copy of mesh a as a second part; normals only, no materials. */
static int join_parts(const od_mesh *a, const od_mesh *b, od_mesh *out, od_error *err)
{
    if (od_mesh_new(a->vertex_count + b->vertex_count, a->face_count + b->face_count, 1, 0, 0, out, err) != 0)
        return -1;
    const od_mesh *pieces[2] = {a, b};
    int64_t vertex = 0, face = 0;
    for (int part = 0; part < 2; part++) {
        const od_mesh *m = pieces[part];
        memcpy(out->positions + vertex * 3, m->positions, (size_t)m->vertex_count * 3 * sizeof(float));
        if (m->normals)
            memcpy(out->normals + vertex * 3, m->normals, (size_t)m->vertex_count * 3 * sizeof(float));
        for (int64_t f = 0; f < m->face_count; f++) {
            for (int k = 0; k < 3; k++)
                out->faces[(face + f) * 3 + k] = (int32_t)(m->faces[f * 3 + k] + vertex);
            out->face_parts[face + f] = part;
        }
        vertex += m->vertex_count;
        face += m->face_count;
    }
    char **names = calloc(3, sizeof *names);
    if (!names || !(names[0] = strdup("base")) || !(names[1] = strdup("top"))) {
        if (names) {
            free(names[0]);
            free(names);
        }
        od_mesh_free(out);
        return od_fail(err, "procedural shape: out of memory");
    }
    for (int i = 0; i < out->part_count; i++)
        free(out->part_names[i]);
    free(out->part_names);
    out->part_names = names;
    out->part_count = 2;
    return 0;
}

static int make_procedural(const procedural_shape *shape, od_mesh *mesh, char name[SHAPE_NAME_SIZE], od_error *err)
{
    /* Each proportion maps to a range that keeps the shape clearly of its kind. */
    double a = shape->p[0], b = shape->p[1];
    memset(mesh, 0, sizeof *mesh);
    switch (shape->kind) {
    case PROCEDURAL_BOX: {
        float size[3] = {1.0f, (float)(0.35 + 0.65 * a), (float)(0.25 + 0.55 * b)};
        snprintf(name, SHAPE_NAME_SIZE, "box_%03d_%03d", (int)lround(size[1] * 100), (int)lround(size[2] * 100));
        return od_mesh_make_box(size, mesh, err);
    }
    case PROCEDURAL_ELLIPSOID: {
        double y = 0.4 + 0.6 * a, z = 0.3 + 0.6 * b;
        snprintf(name, SHAPE_NAME_SIZE, "ellipsoid_%03d_%03d", (int)lround(y * 100), (int)lround(z * 100));
        if (od_mesh_make_sphere(0.5f, 24, 48, mesh, err) != 0)
            return -1;
        for (int64_t v = 0; v < mesh->vertex_count; v++) {
            mesh->positions[v * 3 + 1] *= (float)y;
            mesh->positions[v * 3 + 2] *= (float)z;
        }
        return od_mesh_compute_normals(mesh, err);
    }
    case PROCEDURAL_TORUS: {
        double minor = 0.35 * (0.2 + 0.45 * a);
        snprintf(name, SHAPE_NAME_SIZE, "torus_%03d", (int)lround(minor / 0.35 * 100));
        return od_mesh_make_torus(0.35f, (float)minor, 48, 24, mesh, err);
    }
    default: {
        /* A flat block with a ball resting on it: two parts, so a part can go missing. */
        double depth = 0.5 + 0.5 * a, radius = 0.2 + 0.25 * b;
        snprintf(name, SHAPE_NAME_SIZE, "stack_%03d_%03d", (int)lround(depth * 100), (int)lround(radius * 100));
        float base_size[3] = {1.0f, (float)depth, 0.3f};
        od_mesh base = {0}, ball = {0};
        int rc = od_mesh_make_box(base_size, &base, err);
        if (rc == 0)
            rc = od_mesh_make_sphere((float)radius, 16, 32, &ball, err);
        for (int64_t v = 0; rc == 0 && v < ball.vertex_count; v++)
            ball.positions[v * 3 + 2] += (float)(0.15 + radius * 0.9);
        if (rc == 0)
            rc = join_parts(&base, &ball, mesh, err);
        od_mesh_free(&base);
        od_mesh_free(&ball);
        return rc;
    }
    }
}

static procedural_shape draw_procedural(od_rng *rng)
{
    procedural_shape shape;
    shape.kind = (int)od_rng_below(rng, PROCEDURAL_KINDS);
    shape.p[0] = od_rng_uniform(rng);
    shape.p[1] = od_rng_uniform(rng);
    return shape;
}

/* Returns a close variant: one proportion moved by 15 to 30 % of its range, reflected into [0, 1]. */
static procedural_shape procedural_partner(const procedural_shape *shape, od_rng *rng)
{
    procedural_shape partner = *shape;
    int which = shape->kind == PROCEDURAL_TORUS ? 0 : (int)od_rng_below(rng, 2);
    double step = 0.15 + 0.15 * od_rng_uniform(rng);
    double moved = partner.p[which] + (od_rng_uniform(rng) < 0.5 ? -step : step);
    if (moved < 0 || moved > 1)
        moved = partner.p[which] + (moved < 0 ? step : -step);
    partner.p[which] = moved;
    return partner;
}

/* ---- scene records ----------------------------------------------------------------- */

enum {
    REJECT_NOT_VISIBLE,
    REJECT_CHECK_FAILED,
    REJECT_SCENE_FAILED,
    REJECT_MESH_FAILED,
    REJECT_DISTINCT_NOT_CLOSE,
    REJECT_REASONS
};

static const char *reject_name(int reason)
{
    static const char *names[REJECT_REASONS] = {"anomaly_not_visible", "anomaly_check_failed", "scene_failed",
                                                "mesh_unreadable", "distinct_not_close"};
    return names[reason];
}

/* What one scene contains and what making it took, as its generation.json stores it. */
typedef struct scene_record {
    char relative[128]; /* the scene folder under the dataset */
    char split[OD_SYNTH_SPLIT_NAME_SIZE];
    int index;
    uint64_t scene_seed;
    int attempts;
    int rejections[REJECT_REASONS];
    int object_count;
    char shapes[MAX_OBJECTS][SHAPE_NAME_SIZE];
    int meshes[MAX_OBJECTS]; /* library index, -1 for a procedural shape */
    char kinds[MAX_OBJECTS][KIND_NAME_SIZE]; /* "" for a normal object */
} scene_record;

typedef struct dataset_run {
    const od_synth_dataset_options *o;
    const char *out_dir;
    mesh_library library; /* empty for procedural shapes */
    int *pairs;           /* context-flip with meshes: indices of meshes with a partner */
    int pair_count;
    char settings[17];    /* hex hash of every option that changes a scene's files */
} dataset_run;

static cJSON *record_to_json(const dataset_run *run, const scene_record *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "recipe", od_synth_recipe_name(run->o->recipe));
    cJSON_AddNumberToObject(root, "dataset_seed", (double)run->o->seed);
    cJSON_AddStringToObject(root, "settings", run->settings);
    cJSON_AddStringToObject(root, "split", r->split);
    cJSON_AddNumberToObject(root, "index", r->index);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->scene_seed);
    cJSON_AddStringToObject(root, "scene_seed", seed);
    cJSON_AddNumberToObject(root, "attempts", r->attempts);
    cJSON *rejections = cJSON_AddObjectToObject(root, "rejections");
    for (int k = 0; k < REJECT_REASONS; k++)
        cJSON_AddNumberToObject(rejections, reject_name(k), r->rejections[k]);
    cJSON *objects = cJSON_AddArrayToObject(root, "objects");
    for (int i = 0; i < r->object_count; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "shape", r->shapes[i]);
        if (r->meshes[i] >= 0)
            cJSON_AddStringToObject(item, "mesh", run->library.meshes[r->meshes[i]].relative);
        else
            cJSON_AddNullToObject(item, "mesh");
        if (r->kinds[i][0])
            cJSON_AddStringToObject(item, "anomaly", r->kinds[i]);
        else
            cJSON_AddNullToObject(item, "anomaly");
        cJSON_AddItemToArray(objects, item);
    }
    return root;
}

static int write_json(const char *path, cJSON *root, od_error *err)
{
    char *text = root ? cJSON_Print(root) : NULL;
    if (!text)
        return od_fail(err, "%s: out of memory writing JSON", path);
    od_atomic_file file;
    int rc = od_atomic_open(&file, path, err);
    if (rc == 0 && (fputs(text, file.stream) == EOF || fputc('\n', file.stream) == EOF)) {
        od_atomic_abort(&file);
        rc = od_fail(err, "%s: write failed (%s)", path, strerror(errno));
    } else if (rc == 0) {
        rc = od_atomic_commit(&file, err);
    }
    cJSON_free(text);
    return rc;
}

static int find_mesh(const mesh_library *library, const char *relative)
{
    for (int i = 0; i < library->count; i++)
        if (strcmp(library->meshes[i].relative, relative) == 0)
            return i;
    return -1;
}

/* Reads a complete scene's generation.json back into r, checking that an earlier run of the same
 * settings wrote it. */
static int read_record(const dataset_run *run, const char *scene_dir, scene_record *r, od_error *err)
{
    char path[PATH_SIZE];
    path_join(path, scene_dir, "generation.json");
    cJSON *root = read_json_file(path, err);
    if (!root)
        return -1;
    int rc = 0;
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(root, "settings");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "scene_seed");
    const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(root, "attempts");
    const cJSON *rejections = cJSON_GetObjectItemCaseSensitive(root, "rejections");
    const cJSON *objects = cJSON_GetObjectItemCaseSensitive(root, "objects");
    if (!cJSON_IsString(settings) || strcmp(settings->valuestring, run->settings) != 0) {
        rc = od_fail(err, "%s: written by another recipe, seed or scene setting (settings %s, expected %s); "
                          "use an empty output folder or the earlier options",
                     path, cJSON_IsString(settings) ? settings->valuestring : "missing", run->settings);
    } else if (!cJSON_IsString(seed) || !cJSON_IsNumber(attempts) || !cJSON_IsObject(rejections) ||
               !cJSON_IsArray(objects) || cJSON_GetArraySize(objects) < 2 ||
               cJSON_GetArraySize(objects) > MAX_OBJECTS) {
        rc = od_fail(err, "%s: invalid record (expected scene_seed, attempts, rejections and 2 to %d objects)",
                     path, MAX_OBJECTS);
    }
    if (rc == 0) {
        r->scene_seed = strtoull(seed->valuestring, NULL, 10);
        r->attempts = attempts->valueint;
        for (int k = 0; k < REJECT_REASONS; k++) {
            const cJSON *count = cJSON_GetObjectItemCaseSensitive(rejections, reject_name(k));
            r->rejections[k] = cJSON_IsNumber(count) ? count->valueint : 0;
        }
        r->object_count = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, objects)
        {
            int i = r->object_count++;
            const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
            const cJSON *mesh = cJSON_GetObjectItemCaseSensitive(item, "mesh");
            const cJSON *anomaly = cJSON_GetObjectItemCaseSensitive(item, "anomaly");
            snprintf(r->shapes[i], SHAPE_NAME_SIZE, "%s", cJSON_IsString(shape) ? shape->valuestring : "");
            r->meshes[i] = cJSON_IsString(mesh) ? find_mesh(&run->library, mesh->valuestring) : -1;
            snprintf(r->kinds[i], KIND_NAME_SIZE, "%s", cJSON_IsString(anomaly) ? anomaly->valuestring : "");
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- scene jobs ------------------------------------------------------------------ */

/* One unit of work: one scene, or one context-flip group of five. */
typedef struct scene_job {
    int split;  /* index into the run's splits */
    int index;  /* scene, or context-flip group */
    int first_record; /* its records start here in the run's record array */
    int record_count; /* 1, or FLIP_RATIOS for a context-flip group */
} scene_job;

/* The scene options for n objects: beyond OBJECTS_AT_DEFAULT_RADIUS the table and the camera
 * distances grow with the square root of the count, so the objects keep their spacing. */
static od_synth_scene_options scene_options_for(const od_synth_dataset_options *o, int object_count)
{
    od_synth_scene_options s = o->scene;
    s.object_count = object_count;
    if (object_count > OBJECTS_AT_DEFAULT_RADIUS) {
        double grow = sqrt((double)object_count / OBJECTS_AT_DEFAULT_RADIUS);
        s.placement_radius *= grow;
        s.camera_distance[0] *= grow;
        s.camera_distance[1] *= grow;
    }
    return s;
}

/* Returns the meshes a split draws from. */
static mesh_role role_for_split(const dataset_run *run, const char *split)
{
    if (strcmp(split, "test_seen") == 0)
        return ROLE_TEST_SEEN;
    if (strcmp(split, "test_unseen") == 0)
        return ROLE_TEST_UNSEEN;
    if (strcmp(split, "test") == 0 && run->o->recipe == OD_SYNTH_RECIPE_PARTS)
        return ROLE_TEST;
    return ROLE_TRAIN;
}

/* Draws one mesh of the given role, uniformly over the library's meshes of that role. */
static int draw_mesh(const mesh_library *library, mesh_role role, od_rng *rng)
{
    int count = 0;
    for (int i = 0; i < library->count; i++)
        count += library->meshes[i].role == role;
    if (count == 0)
        return -1;
    int pick = (int)od_rng_below(rng, (uint64_t)count);
    for (int i = 0; i < library->count; i++)
        if (library->meshes[i].role == role && pick-- == 0)
            return i;
    return -1;
}

/* Loads mesh `index` of the library and names it "<group>_<file stem>". */
static int load_library_mesh(const mesh_library *library, int index, od_mesh *mesh, char name[SHAPE_NAME_SIZE],
                             od_error *err)
{
    const mesh_entry *entry = &library->meshes[index];
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/%s", library->root, entry->relative);
    const char *slash = strrchr(entry->relative, '/');
    const char *stem = slash ? slash + 1 : entry->relative;
    snprintf(name, SHAPE_NAME_SIZE, "%s_%s", entry->group, stem);
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = 0;
    for (char *c = name; *c; c++)
        if (*c == '-' || *c == ' ')
            *c = '_';
    return load_mesh_file(path, mesh, err);
}

static void scene_paths(const dataset_run *run, const scene_record *r, char final[PATH_SIZE], char temp[PATH_SIZE])
{
    snprintf(final, PATH_SIZE, "%s/%s", run->out_dir, r->relative);
    const char *slash = strrchr(r->relative, '/');
    snprintf(temp, PATH_SIZE, "%s/%.*s/.%s.tmp", run->out_dir, (int)(slash - r->relative), r->relative, slash + 1);
}

/* Writes the record into the finished temporary folder and renames it into place. */
static int finish_scene(const dataset_run *run, const scene_record *r, od_error *err)
{
    char final[PATH_SIZE], temp[PATH_SIZE], path[PATH_SIZE];
    scene_paths(run, r, final, temp);
    path_join(path, temp, "generation.json");
    cJSON *json = record_to_json(run, r);
    int rc = write_json(path, json, err);
    cJSON_Delete(json);
    if (rc == 0 && rename(temp, final) != 0)
        rc = od_fail(err, "%s: cannot rename to %s (%s)", temp, final, strerror(errno));
    return rc;
}

/* Generates a parts scene whose odd object, in slot `odd_slot`, is the mesh's close partner. Returns
 * 0, -2 when a mesh failed to load, -3 when the partner lies farther than the Chamfer threshold, or -1
 * when the scene failed. */
static int run_distinct_attempt(const dataset_run *run, scene_record *r, int mesh_index, int count, int odd_slot,
                                uint64_t seed, od_error *err)
{
    const od_synth_dataset_options *o = run->o;
    od_mesh meshes[2] = {{0}};
    char names[2][SHAPE_NAME_SIZE];
    int indices[2] = {mesh_index, run->library.meshes[mesh_index].partner};
    for (int k = 0; k < 2; k++)
        if (load_library_mesh(&run->library, indices[k], &meshes[k], names[k], err) != 0) {
            od_mesh_free(&meshes[0]);
            return -2;
        }
    const od_mesh *candidate = &meshes[1];
    int chosen;
    float chamfer;
    if (od_synth_close_shape(&meshes[0], &candidate, 1, (float)o->distinct_max_chamfer, &chosen, &chamfer, err) != 0) {
        od_mesh_free(&meshes[0]);
        od_mesh_free(&meshes[1]);
        return -3;
    }
    od_synth_object_spec specs[MAX_OBJECTS];
    for (int i = 0; i < count; i++) {
        int odd = i == odd_slot;
        specs[i] = (od_synth_object_spec){&meshes[odd], names[odd], odd ? "distinct" : NULL};
        snprintf(r->shapes[i], SHAPE_NAME_SIZE, "%s", names[odd]);
        r->meshes[i] = indices[odd];
        snprintf(r->kinds[i], KIND_NAME_SIZE, "%s", odd ? "distinct" : "");
    }
    r->object_count = count;
    r->scene_seed = seed;
    od_synth_scene_options s = scene_options_for(o, count);
    s.seed = seed;
    char final[PATH_SIZE], temp[PATH_SIZE];
    scene_paths(run, r, final, temp);
    int rc = remove_tree(temp, err) != 0 || remove_tree(final, err) != 0 ||
                     od_synth_generate_mixed_scene(&s, specs, count, temp, err) != 0
                 ? -1
                 : 0;
    od_mesh_free(&meshes[0]);
    od_mesh_free(&meshes[1]);
    return rc;
}

/* Generates one scene of one shape (toys, parts, procedural). */
static int run_single_job(const dataset_run *run, const scene_job *job, scene_record *r, od_error *err)
{
    const od_synth_dataset_options *o = run->o;
    const char *split = o->splits[job->split].name;
    char final[PATH_SIZE], temp[PATH_SIZE];
    scene_paths(run, r, final, temp);
    od_rng base;
    od_rng_seed(&base, o->seed);
    od_rng split_rng = od_rng_fork(&base, seeded_hash(o->seed, "split", split));
    od_rng scene_rng = od_rng_fork(&split_rng, (uint64_t)job->index);
    mesh_role role = role_for_split(run, split);

    char last_error[sizeof err->message] = "";
    od_error attempt_err_text = {{0}};
    for (int attempt = 0; attempt < MAX_JOB_ATTEMPTS; attempt++) {
        od_rng rng = od_rng_fork(&scene_rng, (uint64_t)attempt);
        int count = o->min_objects + (int)od_rng_below(&rng, (uint64_t)(o->max_objects - o->min_objects + 1));
        int anomalous = od_rng_uniform(&rng) >= o->normal_fraction;
        procedural_shape procedural = draw_procedural(&rng);
        int mesh_index = run->library.count ? draw_mesh(&run->library, role, &rng) : -1;
        uint64_t seed = od_rng_next_u64(&rng);
        int distinct_slot = (int)od_rng_below(&rng, (uint64_t)count);
        int distinct = anomalous && o->recipe == OD_SYNTH_RECIPE_PARTS && mesh_index >= 0 &&
                       run->library.meshes[mesh_index].partner >= 0 && od_rng_uniform(&rng) < o->distinct_fraction;
        r->attempts = attempt + 1;
        if (distinct) {
            int status = run_distinct_attempt(run, r, mesh_index, count, distinct_slot, seed, &attempt_err_text);
            if (status == 0)
                return finish_scene(run, r, err);
            snprintf(last_error, sizeof last_error, "%s", attempt_err_text.message);
            /* A partner too far for a close shape: this draw takes another kind instead. */
            if (status == -3) {
                r->rejections[REJECT_DISTINCT_NOT_CLOSE]++;
            } else {
                r->rejections[status == -2 ? REJECT_MESH_FAILED : REJECT_SCENE_FAILED]++;
                continue;
            }
        }

        od_mesh mesh;
        char name[SHAPE_NAME_SIZE];
        od_error attempt_err = {{0}};
        if (run->library.count && mesh_index < 0)
            return od_fail(err, "%s: no meshes for the split %s", run->library.root, split);
        int loaded = mesh_index >= 0 ? load_library_mesh(&run->library, mesh_index, &mesh, name, &attempt_err)
                                     : make_procedural(&procedural, &mesh, name, &attempt_err);
        if (loaded != 0) {
            r->rejections[REJECT_MESH_FAILED]++;
            snprintf(last_error, sizeof last_error, "%s", attempt_err.message);
            continue;
        }
        od_synth_scene_options s = scene_options_for(o, count);
        s.seed = seed;
        s.anomalous = anomalous;
        od_synth_scene_stats stats = {0};
        if (remove_tree(temp, err) != 0 || remove_tree(final, err) != 0) {
            od_mesh_free(&mesh);
            return -1;
        }
        int rc = od_synth_generate_scene(&s, &mesh, name, temp, &stats, &attempt_err);
        od_mesh_free(&mesh);
        r->rejections[REJECT_CHECK_FAILED] += stats.rejected_check;
        r->rejections[REJECT_NOT_VISIBLE] += stats.rejected - stats.rejected_check;
        if (rc != 0) {
            r->rejections[REJECT_SCENE_FAILED]++;
            snprintf(last_error, sizeof last_error, "%s", attempt_err.message);
            continue;
        }
        r->scene_seed = seed;
        r->object_count = count;
        /* The generator's candidate picks the anomalous object; its label is read back from the paths. */
        char clean[SHAPE_NAME_SIZE];
        snprintf(clean, sizeof clean, "%s", name);
        for (int i = 0; i < count; i++) {
            snprintf(r->shapes[i], SHAPE_NAME_SIZE, "%s", clean);
            r->meshes[i] = mesh_index;
            r->kinds[i][0] = 0;
        }
        if (anomalous) {
            char metadata[PATH_SIZE];
            path_join(metadata, temp, "scene3d.metadata.json");
            cJSON *root = read_json_file(metadata, err);
            if (!root)
                return -1;
            const cJSON *objects = cJSON_GetObjectItemCaseSensitive(root, "objects");
            int i = 0;
            const cJSON *item;
            cJSON_ArrayForEach(item, objects)
            {
                const cJSON *path = cJSON_GetObjectItemCaseSensitive(item, "path");
                if (i < count && cJSON_IsString(path) && strchr(path->valuestring, '-'))
                    snprintf(r->kinds[i], KIND_NAME_SIZE, "%s", od_synth_anomaly_name(stats.kind));
                i++;
            }
            cJSON_Delete(root);
        }
        return finish_scene(run, r, err);
    }
    return od_fail(err, "%s: every one of %d draws failed; the last: %s", final, MAX_JOB_ATTEMPTS, last_error);
}

/* Generates a context-flip group: five scenes of one pair and one seed, 1:5 to 5:1. */
static int run_flip_job(const dataset_run *run, const scene_job *job, scene_record *records, od_error *err)
{
    const od_synth_dataset_options *o = run->o;
    od_rng base;
    od_rng_seed(&base, o->seed);
    od_rng split_rng = od_rng_fork(&base, seeded_hash(o->seed, "split", "context_flip"));
    od_rng group_rng = od_rng_fork(&split_rng, (uint64_t)job->index);

    char last_error[sizeof err->message] = "";
    for (int attempt = 0; attempt < MAX_JOB_ATTEMPTS; attempt++) {
        od_rng rng = od_rng_fork(&group_rng, (uint64_t)attempt);
        procedural_shape shape_a = draw_procedural(&rng);
        procedural_shape shape_b = procedural_partner(&shape_a, &rng);
        int pair = run->pair_count ? (int)od_rng_below(&rng, (uint64_t)run->pair_count) : -1;
        int swap = od_rng_uniform(&rng) < 0.5;
        uint64_t seed = od_rng_next_u64(&rng);
        int slots[FLIP_OBJECTS];
        for (int i = 0; i < FLIP_OBJECTS; i++)
            slots[i] = i;
        for (int i = FLIP_OBJECTS - 1; i > 0; i--) {
            int j = (int)od_rng_below(&rng, (uint64_t)i + 1);
            int t = slots[i];
            slots[i] = slots[j];
            slots[j] = t;
        }

        od_mesh meshes[2] = {{0}};
        char names[2][SHAPE_NAME_SIZE];
        int mesh_index[2] = {-1, -1};
        od_error attempt_err = {{0}};
        int loaded = 0;
        if (pair >= 0) {
            int first = run->pairs[pair];
            mesh_index[swap] = first;
            mesh_index[!swap] = run->library.meshes[first].partner;
            loaded = load_library_mesh(&run->library, mesh_index[0], &meshes[0], names[0], &attempt_err) == 0;
            loaded = loaded && load_library_mesh(&run->library, mesh_index[1], &meshes[1], names[1], &attempt_err) == 0;
        } else {
            loaded = make_procedural(&shape_a, &meshes[0], names[0], &attempt_err) == 0 &&
                     make_procedural(&shape_b, &meshes[1], names[1], &attempt_err) == 0;
        }
        for (int g = 0; g < FLIP_RATIOS; g++)
            records[g].attempts = attempt + 1;
        if (!loaded) {
            od_mesh_free(&meshes[0]);
            od_mesh_free(&meshes[1]);
            records[0].rejections[REJECT_MESH_FAILED]++;
            snprintf(last_error, sizeof last_error, "%s", attempt_err.message);
            continue;
        }
        od_synth_scene_options s = scene_options_for(o, FLIP_OBJECTS);
        s.seed = seed;
        int failed = 0;
        for (int g = 0; g < FLIP_RATIOS && !failed; g++) {
            scene_record *r = &records[g];
            int count_a = g + 1, count_b = FLIP_OBJECTS - count_a;
            od_synth_object_spec specs[FLIP_OBJECTS];
            for (int k = 0; k < FLIP_OBJECTS; k++) {
                int shape = k < count_a ? 0 : 1;
                int odd = (shape == 0 && count_a < count_b) || (shape == 1 && count_b < count_a);
                int slot = slots[k];
                specs[slot].mesh = &meshes[shape];
                specs[slot].shape_name = names[shape];
                specs[slot].anomaly = odd ? "distinct" : NULL;
                snprintf(r->shapes[slot], SHAPE_NAME_SIZE, "%s", names[shape]);
                r->meshes[slot] = mesh_index[shape];
                snprintf(r->kinds[slot], KIND_NAME_SIZE, "%s", odd ? "distinct" : "");
            }
            r->object_count = FLIP_OBJECTS;
            r->scene_seed = seed;
            char final[PATH_SIZE], temp[PATH_SIZE];
            scene_paths(run, r, final, temp);
            if (remove_tree(temp, err) != 0 || remove_tree(final, err) != 0) {
                od_mesh_free(&meshes[0]);
                od_mesh_free(&meshes[1]);
                return -1;
            }
            if (od_synth_generate_mixed_scene(&s, specs, FLIP_OBJECTS, temp, &attempt_err) != 0 ||
                finish_scene(run, r, &attempt_err) != 0)
                failed = 1;
        }
        od_mesh_free(&meshes[0]);
        od_mesh_free(&meshes[1]);
        if (!failed)
            return 0;
        records[0].rejections[REJECT_SCENE_FAILED]++;
        snprintf(last_error, sizeof last_error, "%s", attempt_err.message);
        /* The group's scenes share one seed and pair: a failed one redraws all five. */
        for (int g = 0; g < FLIP_RATIOS; g++) {
            char final[PATH_SIZE], temp[PATH_SIZE];
            scene_paths(run, &records[g], final, temp);
            if (remove_tree(final, err) != 0)
                return -1;
        }
    }
    return od_fail(err, "%s/context_flip: group %d: every one of %d draws failed; the last: %s", run->out_dir,
                   job->index, MAX_JOB_ATTEMPTS, last_error);
}

/* Runs a job unless its scenes are complete from an earlier run; sets *skipped. */
static int run_job(const dataset_run *run, const scene_job *job, scene_record *records, int *skipped,
                   od_error *err)
{
    int complete = 1;
    for (int g = 0; g < job->record_count && complete; g++) {
        char final[PATH_SIZE], temp[PATH_SIZE], record[PATH_SIZE];
        scene_paths(run, &records[g], final, temp);
        path_join(record, final, "generation.json");
        struct stat info;
        complete = stat(record, &info) == 0;
    }
    *skipped = complete;
    if (complete) {
        for (int g = 0; g < job->record_count; g++) {
            char final[PATH_SIZE], temp[PATH_SIZE];
            scene_paths(run, &records[g], final, temp);
            if (read_record(run, final, &records[g], err) != 0 || remove_tree(temp, err) != 0)
                return -1;
        }
        return 0;
    }
    if (run->o->recipe == OD_SYNTH_RECIPE_CONTEXT_FLIP)
        return run_flip_job(run, job, records, err);
    return run_single_job(run, job, records, err);
}

/* ---- options and splits ------------------------------------------------------------ */

static int split_name_valid(const char *name)
{
    if (!name[0])
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return 0;
    return 1;
}

/* The recipe's splits: the ones it makes by default, and whether it accepts other names. */
static int recipe_splits(od_synth_recipe recipe, const char *const **names, int *accepts_any)
{
    static const char *procedural[] = {"train", "val", "test"};
    static const char *toys[] = {"train", "val", "test_seen", "test_unseen"};
    static const char *parts[] = {"train", "val", "test"};
    static const char *flip[] = {"context_flip"};
    *accepts_any = recipe == OD_SYNTH_RECIPE_PROCEDURAL;
    switch (recipe) {
    case OD_SYNTH_RECIPE_TOYS:
        *names = toys;
        return 4;
    case OD_SYNTH_RECIPE_PARTS:
        *names = parts;
        return 3;
    case OD_SYNTH_RECIPE_CONTEXT_FLIP:
        *names = flip;
        return 1;
    default:
        *names = procedural;
        return 3;
    }
}

static int validate_dataset_options(od_synth_dataset_options *o, od_error *err)
{
    if (o->recipe < OD_SYNTH_RECIPE_PROCEDURAL || o->recipe > OD_SYNTH_RECIPE_CONTEXT_FLIP)
        return od_fail(err, "dataset: invalid recipe %d", (int)o->recipe);
    if (o->min_objects < 3 || o->max_objects > MAX_OBJECTS || o->min_objects > o->max_objects)
        return od_fail(err, "dataset: invalid object range %d-%d (expected 3 <= min <= max <= %d, so that a "
                            "scene with an anomaly keeps two normal objects)",
                       o->min_objects, o->max_objects, MAX_OBJECTS);
    if (!(o->normal_fraction >= 0 && o->normal_fraction <= 1))
        return od_fail(err, "dataset: invalid normal fraction %g (expected 0 to 1)", o->normal_fraction);
    if (!(o->distinct_fraction >= 0 && o->distinct_fraction <= 1))
        return od_fail(err, "dataset: invalid distinct fraction %g (expected 0 to 1)", o->distinct_fraction);
    if (!(o->distinct_max_chamfer > 0 && o->distinct_max_chamfer <= 1))
        return od_fail(err, "dataset: invalid distinct Chamfer threshold %g (expected above 0, at most 1)",
                       o->distinct_max_chamfer);
    if (!(o->unseen_fraction > 0 && o->unseen_fraction < 1) || !(o->heldout_fraction > 0 && o->heldout_fraction < 1))
        return od_fail(err, "dataset: invalid unseen fraction %g or held-out fraction %g (expected between 0 and 1)",
                       o->unseen_fraction, o->heldout_fraction);
    if ((o->recipe == OD_SYNTH_RECIPE_TOYS || o->recipe == OD_SYNTH_RECIPE_PARTS) && !o->meshes_dir)
        return od_fail(err, "dataset: the %s recipe needs a meshes folder (--meshes DIR, laid out as "
                            "scripts/gather_meshes.sh writes it)",
                       od_synth_recipe_name(o->recipe));
    const char *const *names;
    int accepts_any;
    int defaults = recipe_splits(o->recipe, &names, &accepts_any);
    if (o->split_count == 0) {
        if (o->scenes_per_split < 1)
            return od_fail(err, "dataset: invalid scenes per split %d (expected 1 or more)", o->scenes_per_split);
        for (int i = 0; i < defaults; i++) {
            snprintf(o->splits[i].name, OD_SYNTH_SPLIT_NAME_SIZE, "%s", names[i]);
            o->splits[i].scene_count = o->scenes_per_split;
        }
        o->split_count = defaults;
    }
    if (o->split_count < 0 || o->split_count > OD_SYNTH_MAX_SPLITS)
        return od_fail(err, "dataset: invalid split count %d (expected 1 to %d)", o->split_count,
                       OD_SYNTH_MAX_SPLITS);
    for (int i = 0; i < o->split_count; i++) {
        const od_synth_split_size *split = &o->splits[i];
        int known = accepts_any && split_name_valid(split->name) && strcmp(split->name, "splits") != 0;
        for (int k = 0; k < defaults && !known; k++)
            known = strcmp(split->name, names[k]) == 0;
        if (!known) {
            char list[256] = "";
            for (int k = 0; k < defaults; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", names[k]);
            return od_fail(err, "dataset: unknown split \"%s\" for the %s recipe (expected %s%s)", split->name,
                           od_synth_recipe_name(o->recipe), list,
                           accepts_any ? ", or any name of letters, digits and '_'" : "");
        }
        if (split->scene_count < 0 || split->scene_count > 1000000)
            return od_fail(err, "dataset: invalid size %d for the split %s (expected 0 to 1000000)",
                           split->scene_count, split->name);
        for (int j = 0; j < i; j++)
            if (strcmp(o->splits[j].name, split->name) == 0)
                return od_fail(err, "dataset: the split %s is given twice", split->name);
    }
    return 0;
}

/* Fills run->settings with a hash of everything that changes a scene's files. */
static void hash_settings(dataset_run *run)
{
    const od_synth_dataset_options *o = run->o;
    const od_synth_scene_options *s = &o->scene;
    char text[1024];
    snprintf(text, sizeof text, "%s|%s|%llu|%d-%d|%.17g|%.17g|%.17g|%d|%d|%d|%d|%.17g|%.17g|%.17g|%.17g|%.17g|%.17g|"
                                "%.17g|%.17g|%d",
             oddone_version(), od_synth_recipe_name(o->recipe), (unsigned long long)o->seed, o->min_objects,
             o->max_objects, o->normal_fraction, o->unseen_fraction, o->heldout_fraction, s->view_count,
             s->image_size, s->supersample, (int)s->anomaly, s->object_size, s->placement_radius, s->min_gap,
             s->camera_distance[0], s->camera_distance[1], s->camera_elevation[0], s->camera_elevation[1],
             s->focal, s->min_anomaly_pixels);
    uint64_t hash = fnv1a(FNV_OFFSET, text, strlen(text));
    /* Only the parts recipe draws distinct shapes, so only its hash depends on their share. */
    if (o->recipe == OD_SYNTH_RECIPE_PARTS) {
        hash = fnv1a(hash, &o->distinct_fraction, sizeof o->distinct_fraction);
        hash = fnv1a(hash, &o->distinct_max_chamfer, sizeof o->distinct_max_chamfer);
    }
    for (int i = 0; i < run->library.count; i++) {
        hash = fnv1a(hash, run->library.meshes[i].relative, strlen(run->library.meshes[i].relative) + 1);
        hash = fnv1a(hash, &run->library.meshes[i].hash, sizeof run->library.meshes[i].hash);
    }
    snprintf(run->settings, sizeof run->settings, "%016llx", (unsigned long long)hash);
}

/* Lays out the jobs and their records: split by split, scene by scene; a context-flip group of
 * five records per job. */
static int plan_jobs(const dataset_run *run, scene_job **jobs_out, int *job_count, scene_record **records_out,
                     int *record_count, od_error *err)
{
    const od_synth_dataset_options *o = run->o;
    int flip = o->recipe == OD_SYNTH_RECIPE_CONTEXT_FLIP;
    int64_t jobs = 0, records = 0;
    for (int s = 0; s < o->split_count; s++) {
        int n = o->splits[s].scene_count;
        int groups = (n + FLIP_RATIOS - 2) / (FLIP_RATIOS - 1);
        jobs += flip ? groups : n;
        records += flip ? (int64_t)groups * FLIP_RATIOS : n;
    }
    scene_job *job = calloc((size_t)jobs + 1, sizeof *job);
    scene_record *record = calloc((size_t)records + 1, sizeof *record);
    if (!job || !record) {
        free(job);
        free(record);
        return od_fail(err, "dataset: out of memory for %lld scenes", (long long)records);
    }
    int j = 0, r = 0;
    for (int s = 0; s < o->split_count; s++) {
        const char *split = o->splits[s].name;
        int n = flip ? (o->splits[s].scene_count + FLIP_RATIOS - 2) / (FLIP_RATIOS - 1) : o->splits[s].scene_count;
        for (int i = 0; i < n; i++) {
            job[j] = (scene_job){s, i, r, flip ? FLIP_RATIOS : 1};
            for (int g = 0; g < job[j].record_count; g++) {
                scene_record *rec = &record[r + g];
                rec->index = i;
                if (flip) {
                    int count_a = g + 1;
                    snprintf(rec->split, sizeof rec->split, "%s",
                             2 * count_a == FLIP_OBJECTS ? "context_flip_tie" : "context_flip");
                    snprintf(rec->relative, sizeof rec->relative, "context_flip/scene_%04d_a%db%d", i, count_a,
                             FLIP_OBJECTS - count_a);
                } else {
                    snprintf(rec->split, sizeof rec->split, "%s", split);
                    snprintf(rec->relative, sizeof rec->relative, "%s/scene_%04d", split, i);
                }
            }
            r += job[j].record_count;
            j++;
        }
    }
    *jobs_out = job;
    *job_count = j;
    *records_out = record;
    *record_count = r;
    return 0;
}

/* ---- the manifest ------------------------------------------------------------------ */

typedef struct kind_count {
    char name[KIND_NAME_SIZE];
    int count;
} kind_count;

static int compare_kinds(const void *a, const void *b)
{
    return strcmp(((const kind_count *)a)->name, ((const kind_count *)b)->name);
}

/* Adds the counts of the records whose split is `split` (NULL: every record) to a new object. */
static cJSON *split_counts(const scene_record *records, int record_count, const char *split)
{
    kind_count kinds[64];
    int kind_total = 0, scenes = 0, all_normal = 0, objects = 0, anomalous = 0, rejections[REJECT_REASONS] = {0};
    for (int i = 0; i < record_count; i++) {
        const scene_record *r = &records[i];
        if (split && strcmp(r->split, split) != 0)
            continue;
        scenes++;
        int odd = 0;
        for (int k = 0; k < REJECT_REASONS; k++)
            rejections[k] += r->rejections[k];
        for (int o = 0; o < r->object_count; o++) {
            objects++;
            if (!r->kinds[o][0])
                continue;
            odd++;
            int found = 0;
            for (int k = 0; k < kind_total && !found; k++)
                if (strcmp(kinds[k].name, r->kinds[o]) == 0) {
                    kinds[k].count++;
                    found = 1;
                }
            if (!found && kind_total < 64) {
                snprintf(kinds[kind_total].name, KIND_NAME_SIZE, "%s", r->kinds[o]);
                kinds[kind_total++].count = 1;
            }
        }
        anomalous += odd;
        all_normal += odd == 0;
    }
    qsort(kinds, (size_t)kind_total, sizeof *kinds, compare_kinds);
    cJSON *counts = cJSON_CreateObject();
    cJSON_AddNumberToObject(counts, "scenes", scenes);
    cJSON_AddNumberToObject(counts, "all_normal_scenes", all_normal);
    cJSON_AddNumberToObject(counts, "objects", objects);
    cJSON_AddNumberToObject(counts, "anomalous_objects", anomalous);
    cJSON *by_kind = cJSON_AddObjectToObject(counts, "anomaly_kinds");
    for (int k = 0; k < kind_total; k++)
        cJSON_AddNumberToObject(by_kind, kinds[k].name, kinds[k].count);
    cJSON *by_reason = cJSON_AddObjectToObject(counts, "rejections");
    for (int k = 0; k < REJECT_REASONS; k++)
        cJSON_AddNumberToObject(by_reason, reject_name(k), rejections[k]);
    return counts;
}

/* Returns the split names of the records in order of first appearance. */
static int record_splits(const scene_record *records, int record_count, const char *names[OD_SYNTH_MAX_SPLITS + 1])
{
    int count = 0;
    for (int i = 0; i < record_count; i++) {
        int known = 0;
        for (int k = 0; k < count && !known; k++)
            known = strcmp(names[k], records[i].split) == 0;
        if (!known && count <= OD_SYNTH_MAX_SPLITS)
            names[count++] = records[i].split;
    }
    return count;
}

static cJSON *build_manifest(const dataset_run *run, const scene_record *records, int record_count)
{
    const od_synth_dataset_options *o = run->o;
    const od_synth_scene_options *s = &o->scene;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "oddone-dataset-1");
    cJSON_AddStringToObject(root, "version", o->version ? o->version : "custom");
    char generator[64];
    snprintf(generator, sizeof generator, "oddone %s", oddone_version());
    cJSON_AddStringToObject(root, "generator", generator);
    cJSON_AddStringToObject(root, "recipe", od_synth_recipe_name(o->recipe));
    cJSON_AddNumberToObject(root, "seed", (double)o->seed);
    cJSON_AddStringToObject(root, "settings", run->settings);

    cJSON *options = cJSON_AddObjectToObject(root, "options");
    int range[2] = {o->min_objects, o->max_objects};
    if (o->recipe == OD_SYNTH_RECIPE_CONTEXT_FLIP)
        range[0] = range[1] = FLIP_OBJECTS;
    cJSON_AddItemToObject(options, "objects", cJSON_CreateIntArray(range, 2));
    cJSON_AddNumberToObject(options, "normal_fraction", o->normal_fraction);
    if (o->recipe == OD_SYNTH_RECIPE_TOYS)
        cJSON_AddNumberToObject(options, "unseen_fraction", o->unseen_fraction);
    if (o->recipe == OD_SYNTH_RECIPE_PARTS) {
        cJSON_AddNumberToObject(options, "heldout_fraction", o->heldout_fraction);
        cJSON_AddNumberToObject(options, "distinct_fraction", o->distinct_fraction);
        cJSON_AddNumberToObject(options, "distinct_max_chamfer", o->distinct_max_chamfer);
    }
    cJSON_AddNumberToObject(options, "views", s->view_count);
    cJSON_AddNumberToObject(options, "image_size", s->image_size);
    cJSON_AddNumberToObject(options, "supersample", s->supersample);
    cJSON_AddNumberToObject(options, "focal", s->focal);
    cJSON_AddStringToObject(options, "anomaly", od_synth_anomaly_name(s->anomaly));
    cJSON_AddNumberToObject(options, "object_size", s->object_size);
    cJSON_AddNumberToObject(options, "min_anomaly_pixels", s->min_anomaly_pixels);
    cJSON_AddStringToObject(options, "meshes", run->library.count ? run->library.root : "procedural");

    const char *names[OD_SYNTH_MAX_SPLITS + 1];
    int split_count = record_splits(records, record_count, names);
    cJSON *sizes = cJSON_AddObjectToObject(root, "sizes");
    for (int k = 0; k < split_count; k++) {
        int n = 0;
        for (int i = 0; i < record_count; i++)
            n += strcmp(records[i].split, names[k]) == 0;
        cJSON_AddNumberToObject(sizes, names[k], n);
    }

    if (o->recipe == OD_SYNTH_RECIPE_TOYS) {
        cJSON *categories = cJSON_AddObjectToObject(root, "categories");
        cJSON *seen = cJSON_AddArrayToObject(categories, "seen");
        cJSON *unseen = cJSON_AddArrayToObject(categories, "unseen");
        for (int g = 0; g < run->library.groups.count; g++)
            cJSON_AddItemToArray(run->library.unseen[g] ? unseen : seen,
                                 cJSON_CreateString(run->library.groups.items[g]));
    }
    if (run->library.count) {
        cJSON *meshes = cJSON_AddArrayToObject(root, "meshes");
        for (int i = 0; i < run->library.count; i++) {
            const mesh_entry *entry = &run->library.meshes[i];
            int uses = 0;
            for (int r = 0; r < record_count; r++)
                for (int k = 0; k < records[r].object_count; k++)
                    uses += records[r].meshes[k] == i;
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "path", entry->relative);
            cJSON_AddStringToObject(item, "group", entry->group);
            cJSON_AddStringToObject(item, "role", role_name(entry->role));
            cJSON_AddNumberToObject(item, "bytes", (double)entry->bytes);
            char hash[20];
            snprintf(hash, sizeof hash, "%016llx", (unsigned long long)entry->hash);
            cJSON_AddStringToObject(item, "fnv1a64", hash);
            cJSON_AddNumberToObject(item, "objects", uses);
            if (entry->partner >= 0) {
                cJSON_AddStringToObject(item, "partner", run->library.meshes[entry->partner].relative);
                cJSON_AddNumberToObject(item, "partner_distance", entry->partner_distance);
            }
            if (entry->catalog)
                cJSON_AddItemToObject(item, "catalog", cJSON_Duplicate(entry->catalog, 1));
            else
                cJSON_AddNullToObject(item, "catalog");
            cJSON_AddItemToArray(meshes, item);
        }
    }

    cJSON_AddItemToObject(root, "totals", split_counts(records, record_count, NULL));
    cJSON *splits = cJSON_AddObjectToObject(root, "splits");
    for (int k = 0; k < split_count; k++)
        cJSON_AddItemToObject(splits, names[k], split_counts(records, record_count, names[k]));
    return root;
}

static int write_split_files(const dataset_run *run, const scene_record *records, int record_count, od_error *err)
{
    char folder[PATH_SIZE];
    snprintf(folder, sizeof folder, "%s/splits", run->out_dir);
    if (od_make_folders(folder, err) != 0)
        return -1;
    const char *names[OD_SYNTH_MAX_SPLITS + 1];
    int split_count = record_splits(records, record_count, names);
    for (int k = 0; k < split_count; k++) {
        char path[PATH_SIZE];
        char file_name[OD_SYNTH_SPLIT_NAME_SIZE + 8];
        snprintf(file_name, sizeof file_name, "%s.txt", names[k]);
        path_join(path, folder, file_name);
        od_atomic_file file;
        if (od_atomic_open(&file, path, err) != 0)
            return -1;
        int failed = 0;
        for (int i = 0; i < record_count && !failed; i++)
            if (strcmp(records[i].split, names[k]) == 0)
                failed = fprintf(file.stream, "%s\n", records[i].relative) < 0;
        if (failed) {
            od_atomic_abort(&file);
            return od_fail(err, "%s: write failed (%s)", path, strerror(errno));
        }
        if (od_atomic_commit(&file, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- the run ---------------------------------------------------------------------- */

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + 1e-9 * (double)(now.tv_nsec - start->tv_nsec);
}

static int open_library(dataset_run *run, od_error *err)
{
    const od_synth_dataset_options *o = run->o;
    if (o->recipe == OD_SYNTH_RECIPE_TOYS)
        return mesh_library_open(o->meshes_dir, "toys", &run->library, err) != 0 ||
                       assign_toys_roles(&run->library, o->seed, o->unseen_fraction, err) != 0
                   ? -1
                   : 0;
    if (o->recipe == OD_SYNTH_RECIPE_PARTS) {
        if (mesh_library_open(o->meshes_dir, "parts", &run->library, err) != 0 ||
            assign_parts_roles(&run->library, o->seed, o->heldout_fraction, err) != 0)
            return -1;
        /* The close shapes of the distinct anomaly; partners share the role, so no test shape
         * reaches training as a partner. */
        return find_pairs(&run->library, err) < 0 ? -1 : 0;
    }
    if (o->recipe != OD_SYNTH_RECIPE_CONTEXT_FLIP || !o->meshes_dir)
        return 0;
    /* Context-flip pairs come from the parts when there are any, else from the toys. */
    char parts[PATH_SIZE];
    snprintf(parts, sizeof parts, "%s/parts", o->meshes_dir);
    if (mesh_library_open(o->meshes_dir, is_folder(parts) ? "parts" : "toys", &run->library, err) != 0)
        return -1;
    for (int i = 0; i < run->library.count; i++)
        run->library.meshes[i].role = ROLE_PAIR;
    int paired = find_pairs(&run->library, err);
    if (paired < 0)
        return -1;
    if (paired == 0)
        return od_fail(err, "%s/%s: no two meshes of one group are close (shape descriptor distance between %g "
                            "and %g); context-flip needs such pairs, or no --meshes for procedural pairs",
                       o->meshes_dir, run->library.kind, PAIR_MIN_DISTANCE, PAIR_MAX_DISTANCE);
    run->pairs = calloc((size_t)paired, sizeof *run->pairs);
    if (!run->pairs)
        return od_fail(err, "out of memory for %d pairs", paired);
    for (int i = 0; i < run->library.count; i++)
        if (run->library.meshes[i].partner >= 0)
            run->pairs[run->pair_count++] = i;
    return 0;
}

int od_synth_generate_dataset(const od_synth_dataset_options *options, const char *out_dir,
                              od_synth_dataset_report *report, od_error *err)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    od_synth_dataset_options o = options ? *options : od_synth_dataset_options_default();
    if (!out_dir)
        return od_fail(err, "dataset: no output folder given");
    if (validate_dataset_options(&o, err) != 0)
        return -1;
    dataset_run run;
    memset(&run, 0, sizeof run);
    run.o = &o;
    run.out_dir = out_dir;
    scene_job *jobs = NULL;
    scene_record *records = NULL;
    int job_count = 0, record_count = 0, rc = -1;
    if (open_library(&run, err) != 0)
        goto done;
    hash_settings(&run);
    if (plan_jobs(&run, &jobs, &job_count, &records, &record_count, err) != 0)
        goto done;
    if (od_make_folders(out_dir, err) != 0)
        goto done;
    for (int s = 0; s < o.split_count; s++) {
        char folder[PATH_SIZE];
        snprintf(folder, sizeof folder, "%s/%s", out_dir,
                 o.recipe == OD_SYNTH_RECIPE_CONTEXT_FLIP ? "context_flip" : o.splits[s].name);
        if (od_make_folders(folder, err) != 0)
            goto done;
    }

    /* Scenes are independent, so they are generated in parallel; each writes only its own folder. */
    int failed_job = -1, scenes_done = 0, skipped_scenes = 0, rejections = 0;
    od_error first_error = {{0}};
    int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int j = 0; j < job_count; j++) {
        int stop;
#pragma omp atomic read
        stop = failed_job;
        if (stop >= 0)
            continue;
        const scene_job *job = &jobs[j];
        od_error job_err = {{0}};
        int skipped = 0;
        int status = run_job(&run, job, records + job->first_record, &skipped, &job_err);
#pragma omp critical(od_dataset_progress)
        {
            if (status != 0 && (failed_job < 0 || j < failed_job)) {
                failed_job = j;
                first_error = job_err;
            }
            scenes_done += job->record_count;
            skipped_scenes += skipped ? job->record_count : 0;
            for (int g = 0; !skipped && g < job->record_count; g++)
                for (int k = 0; k < REJECT_REASONS; k++)
                    rejections += records[job->first_record + g].rejections[k];
            if (o.progress) {
                od_synth_dataset_progress progress = {scenes_done, record_count, skipped_scenes, rejections,
                                                      seconds_since(&start)};
                o.progress(&progress, o.progress_user);
            }
        }
    }
    if (failed_job >= 0) {
        *err = first_error;
        goto done;
    }

    cJSON *manifest = build_manifest(&run, records, record_count);
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/manifest.json", out_dir);
    int written = write_json(path, manifest, err);
    cJSON_Delete(manifest);
    if (written != 0 || write_split_files(&run, records, record_count, err) != 0)
        goto done;

    double seconds = seconds_since(&start);
    int generated = record_count - skipped_scenes;
    cJSON *timing = cJSON_CreateObject();
    cJSON_AddNumberToObject(timing, "seconds", seconds);
    cJSON_AddNumberToObject(timing, "scenes_generated", generated);
    cJSON_AddNumberToObject(timing, "scenes_skipped", skipped_scenes);
    cJSON_AddNumberToObject(timing, "scenes_per_second", seconds > 0 ? generated / seconds : 0);
    cJSON_AddNumberToObject(timing, "threads", threads);
    snprintf(path, sizeof path, "%s/timing.json", out_dir);
    written = write_json(path, timing, err);
    cJSON_Delete(timing);
    if (written != 0)
        goto done;

    if (report) {
        memset(report, 0, sizeof *report);
        report->scenes = record_count;
        report->scenes_generated = generated;
        report->scenes_skipped = skipped_scenes;
        for (int i = 0; i < record_count; i++) {
            for (int k = 0; k < records[i].object_count; k++)
                report->anomalous_objects += records[i].kinds[k][0] != 0;
            for (int k = 0; k < REJECT_REASONS; k++)
                report->rejections += records[i].rejections[k];
        }
        report->seconds = seconds;
    }
    rc = 0;

done:
    free(jobs);
    free(records);
    free(run.pairs);
    mesh_library_free(&run.library);
    return rc;
}
