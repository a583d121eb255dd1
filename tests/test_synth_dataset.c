/* Tests of synth/dataset: split lists are disjoint, unseen categories and
 * held-out parts never reach training, the manifest's counts match the
 * scenes, a seed writes identical files, a removed scene is redone on a
 * rerun, and context-flip labels the minority shape. Sizes are tiny (64 x
 * 64, 2 views) to keep the run short. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/folder.h"
#include "synth/dataset.h"
#include "testlib.h"

#define PATH_SIZE 4096
/* Folders the tests make: short enough that every path built from them fits PATH_SIZE. */
#define ROOT_SIZE 1024

static char *read_all(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = malloc((size_t)length + 1);
    if (data && fread(data, 1, (size_t)length, file) != (size_t)length) {
        free(data);
        data = NULL;
    }
    if (data)
        data[length] = 0;
    fclose(file);
    if (size)
        *size = (size_t)length;
    return data;
}

static cJSON *read_json(const char *folder, const char *name)
{
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    char *text = read_all(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    return root;
}

static od_synth_dataset_options tiny_options(od_synth_recipe recipe, uint64_t seed)
{
    od_synth_dataset_options o = od_synth_dataset_options_default();
    o.recipe = recipe;
    o.seed = seed;
    o.scene.view_count = 2;
    o.scene.image_size = 64;
    o.scene.focal = 213.3333 * 64 / 256;
    o.scene.supersample = 1;
    o.max_objects = 4;
    o.threads = 2;
    return o;
}

static void set_split(od_synth_dataset_options *o, const char *name, int count)
{
    snprintf(o->splits[o->split_count].name, OD_SYNTH_SPLIT_NAME_SIZE, "%s", name);
    o->splits[o->split_count++].scene_count = count;
}

/* Reads a split list into lines (at most `capacity`); returns the count, or -1 when missing. */
static int read_split(const char *dataset, const char *split, char lines[][128], int capacity)
{
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/splits/%s.txt", dataset, split);
    char *text = read_all(path, NULL);
    if (!text)
        return -1;
    int count = 0;
    for (char *line = strtok(text, "\n"); line && count < capacity; line = strtok(NULL, "\n"))
        snprintf(lines[count++], 128, "%s", line);
    free(text);
    return count;
}

/* Compares every file under a with the one under b (and the other way round by count), except
 * timing.json at the top. Returns the count of differing or missing files. */
static int compare_trees(const char *a, const char *b, const char *relative, int *files)
{
    char folder[PATH_SIZE];
    snprintf(folder, sizeof folder, "%s/%s", a, relative);
    DIR *dir = opendir(folder);
    if (!dir)
        return 1;
    int differences = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (!relative[0] && strcmp(entry->d_name, "timing.json") == 0)
            continue;
        char child[PATH_SIZE], path_a[PATH_SIZE * 2], path_b[PATH_SIZE * 2];
        snprintf(child, sizeof child, "%s%s%s", relative, relative[0] ? "/" : "", entry->d_name);
        snprintf(path_a, sizeof path_a, "%s/%s", a, child);
        snprintf(path_b, sizeof path_b, "%s/%s", b, child);
        struct stat info;
        stat(path_a, &info);
        if (S_ISDIR(info.st_mode)) {
            differences += compare_trees(a, b, child, files);
            continue;
        }
        size_t size_a = 0, size_b = 0;
        char *x = read_all(path_a, &size_a), *y = read_all(path_b, &size_b);
        int same = x && y && size_a == size_b && memcmp(x, y, size_a) == 0;
        if (!same)
            printf("  differs: %s\n", child);
        differences += !same;
        (*files)++;
        free(x);
        free(y);
    }
    closedir(dir);
    return differences;
}

static int count_files(const char *root, const char *relative)
{
    char folder[PATH_SIZE];
    snprintf(folder, sizeof folder, "%s/%s", root, relative);
    DIR *dir = opendir(folder);
    if (!dir)
        return 0;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char child[PATH_SIZE], path[PATH_SIZE * 2];
        snprintf(child, sizeof child, "%s/%s", relative, entry->d_name);
        snprintf(path, sizeof path, "%s/%s", root, child);
        struct stat info;
        stat(path, &info);
        count += S_ISDIR(info.st_mode) ? count_files(root, child) : 1;
    }
    closedir(dir);
    return count;
}

static void test_procedural_splits_and_counts(void)
{
    char dir[ROOT_SIZE];
    snprintf(dir, sizeof dir, "%s/procedural", od_test_temp_dir());
    od_synth_dataset_options o = tiny_options(OD_SYNTH_RECIPE_PROCEDURAL, 5);
    set_split(&o, "train", 4);
    set_split(&o, "test", 3);
    o.normal_fraction = 0.3;
    od_synth_dataset_report report;
    od_error err = {{0}};
    int rc = od_synth_generate_dataset(&o, dir, &report, &err);
    if (rc != 0)
        printf("  %s\n", err.message);
    OD_CHECK(rc == 0);
    OD_CHECK(report.scenes == 7);
    OD_CHECK(report.scenes_generated == 7);

    /* The split lists are disjoint and name existing scene folders. */
    char train[8][128], test[8][128];
    OD_CHECK(read_split(dir, "train", train, 8) == 4);
    OD_CHECK(read_split(dir, "test", test, 8) == 3);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            OD_CHECK(strcmp(train[i], test[j]) != 0);
    OD_CHECK(strcmp(train[0], "train/scene_0000") == 0);

    /* The manifest's counts equal what the scenes' metadata marks. */
    cJSON *manifest = read_json(dir, "manifest.json");
    OD_CHECK(manifest != NULL);
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(manifest, "totals");
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(totals, "anomaly_kinds");
    int objects = 0, anomalous = 0, all_normal = 0, kind_mismatch = 0;
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        char (*lines)[128] = s == 0 ? train : test;
        for (int i = 0; i < (s == 0 ? 4 : 3); i++) {
            char scene[2 * ROOT_SIZE];
            snprintf(scene, sizeof scene, "%s/%s", dir, lines[i]);
            cJSON *metadata = read_json(scene, "scene3d.metadata.json");
            OD_CHECK(metadata != NULL);
            int odd = 0;
            const cJSON *item;
            cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(metadata, "objects"))
            {
                const char *path = cJSON_GetObjectItemCaseSensitive(item, "path")->valuestring;
                objects++;
                const char *dash = strchr(path, '-');
                if (!dash)
                    continue;
                odd++;
                char kind[32];
                snprintf(kind, sizeof kind, "%.*s", (int)strcspn(dash + 1, "-"), dash + 1);
                kind_mismatch += !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(kinds, kind));
            }
            anomalous += odd;
            all_normal += odd == 0;
            OD_CHECK(odd <= 1);
            cJSON_Delete(metadata);
        }
        (void)splits;
    }
    OD_CHECK(cJSON_GetObjectItemCaseSensitive(totals, "objects")->valueint == objects);
    OD_CHECK(cJSON_GetObjectItemCaseSensitive(totals, "anomalous_objects")->valueint == anomalous);
    OD_CHECK(cJSON_GetObjectItemCaseSensitive(totals, "all_normal_scenes")->valueint == all_normal);
    OD_CHECK(report.anomalous_objects == anomalous);
    OD_CHECK(kind_mismatch == 0);
    int kind_sum = 0;
    const cJSON *kind;
    cJSON_ArrayForEach(kind, kinds) kind_sum += kind->valueint;
    OD_CHECK(kind_sum == anomalous);
    OD_CHECK(objects >= 7 * 3 && objects <= 7 * 4);
    const cJSON *sizes = cJSON_GetObjectItemCaseSensitive(manifest, "sizes");
    OD_CHECK(cJSON_GetObjectItemCaseSensitive(sizes, "train")->valueint == 4);
    OD_CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(manifest, "recipe")->valuestring, "procedural") == 0);
    cJSON_Delete(manifest);
}

static void test_dataset_deterministic_and_resumable(void)
{
    char first[ROOT_SIZE], second[ROOT_SIZE];
    snprintf(first, sizeof first, "%s/first", od_test_temp_dir());
    snprintf(second, sizeof second, "%s/second", od_test_temp_dir());
    od_synth_dataset_options o = tiny_options(OD_SYNTH_RECIPE_PROCEDURAL, 11);
    set_split(&o, "train", 3);
    set_split(&o, "val", 2);
    od_error err = {{0}};
    OD_CHECK(od_synth_generate_dataset(&o, first, NULL, &err) == 0);
    o.threads = 1; /* the thread count changes nothing */
    OD_CHECK(od_synth_generate_dataset(&o, second, NULL, &err) == 0);
    int files = 0;
    OD_CHECK(compare_trees(first, second, "", &files) == 0);
    OD_CHECK(files > 5 * 4);

    /* A removed scene and a leftover partial one are redone; the complete ones are skipped. */
    char scene[PATH_SIZE], command[PATH_SIZE * 2];
    snprintf(scene, sizeof scene, "%s/train/scene_0001", second);
    snprintf(command, sizeof command, "rm -rf '%s' && mkdir -p '%s/val/.scene_0000.tmp/RGB'", scene, second);
    OD_CHECK(system(command) == 0);
    snprintf(scene, sizeof scene, "%s/val/scene_0001", second);
    snprintf(command, sizeof command, "rm -rf '%s/generation.json'", scene);
    OD_CHECK(system(command) == 0);
    od_synth_dataset_report report;
    OD_CHECK(od_synth_generate_dataset(&o, second, &report, &err) == 0);
    OD_CHECK(report.scenes_skipped == 3);
    OD_CHECK(report.scenes_generated == 2);
    files = 0;
    OD_CHECK(compare_trees(first, second, "", &files) == 0);
    OD_CHECK(count_files(second, "val") == count_files(first, "val"));

    /* A larger split starts with the smaller one's scenes. */
    char larger[ROOT_SIZE];
    snprintf(larger, sizeof larger, "%s/larger", od_test_temp_dir());
    o.splits[0].scene_count = 4;
    OD_CHECK(od_synth_generate_dataset(&o, larger, NULL, &err) == 0);
    files = 0;
    char a[2 * ROOT_SIZE], b[2 * ROOT_SIZE];
    snprintf(a, sizeof a, "%s/train", first);
    snprintf(b, sizeof b, "%s/train", larger);
    OD_CHECK(compare_trees(a, b, "scene_0002", &files) == 0);
    OD_CHECK(files > 0);

    /* Other settings in the same folder are an error, not a silent mix. */
    o.scene.view_count = 3;
    OD_CHECK(od_synth_generate_dataset(&o, second, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "another recipe, seed or scene setting") != NULL);
}

/* Writes an axis-aligned box of the given size as an OBJ file. */
static void write_box(const char *path, double x, double y, double z)
{
    FILE *file = fopen(path, "w");
    if (!file)
        return;
    for (int i = 0; i < 8; i++)
        fprintf(file, "v %g %g %g\n", (i & 1 ? x : 0), (i & 2 ? y : 0), (i & 4 ? z : 0));
    static const int faces[12][3] = {{1, 3, 4}, {1, 4, 2}, {5, 6, 8}, {5, 8, 7}, {1, 2, 6}, {1, 6, 5},
                                     {3, 7, 8}, {3, 8, 4}, {1, 5, 7}, {1, 7, 3}, {2, 4, 8}, {2, 8, 6}};
    for (int f = 0; f < 12; f++)
        fprintf(file, "f %d %d %d\n", faces[f][0], faces[f][1], faces[f][2]);
    fclose(file);
}

/* Makes MESHES/<kind>/<group>/<group>_<i>.obj: `groups` groups of `per_group` boxes each. */
static void make_meshes(const char *root, const char *kind, int groups, int per_group)
{
    static const char *names[] = {"cup", "duck", "lamp", "mug", "robot", "shoe"};
    for (int g = 0; g < groups; g++) {
        char folder[PATH_SIZE];
        snprintf(folder, sizeof folder, "%s/%s/%s", root, kind, names[g]);
        od_error err;
        od_make_folders(folder, &err);
        for (int i = 0; i < per_group; i++) {
            char path[PATH_SIZE * 2];
            snprintf(path, sizeof path, "%s/%s_%d.obj", folder, names[g], i);
            write_box(path, 1.0, 0.4 + 0.1 * g, 0.3 + 0.08 * i);
        }
    }
}

/* Returns the group (second path component) of each object's mesh in a scene's record. */
static int scene_groups(const char *scene, char groups[12][32])
{
    cJSON *record = read_json(scene, "generation.json");
    int count = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(record, "objects"))
    {
        const cJSON *mesh = cJSON_GetObjectItemCaseSensitive(item, "mesh");
        groups[count][0] = 0;
        if (cJSON_IsString(mesh)) {
            const char *start = strchr(mesh->valuestring, '/') + 1;
            snprintf(groups[count], 32, "%.*s", (int)strcspn(start, "/"), start);
        }
        count++;
    }
    cJSON_Delete(record);
    return count;
}

static int in_list(const cJSON *list, const char *name)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, list) if (strcmp(item->valuestring, name) == 0) return 1;
    return 0;
}

static void test_toys_unseen_categories_stay_out_of_training(void)
{
    char meshes[ROOT_SIZE], dir[ROOT_SIZE];
    snprintf(meshes, sizeof meshes, "%s/meshes", od_test_temp_dir());
    snprintf(dir, sizeof dir, "%s/toys", od_test_temp_dir());
    make_meshes(meshes, "toys", 6, 3);
    od_synth_dataset_options o = tiny_options(OD_SYNTH_RECIPE_TOYS, 21);
    o.meshes_dir = meshes;
    o.unseen_fraction = 0.34;
    set_split(&o, "train", 6);
    set_split(&o, "test_seen", 3);
    set_split(&o, "test_unseen", 3);
    od_error err = {{0}};
    int rc = od_synth_generate_dataset(&o, dir, NULL, &err);
    if (rc != 0)
        printf("  %s\n", err.message);
    OD_CHECK(rc == 0);
    cJSON *manifest = read_json(dir, "manifest.json");
    const cJSON *categories = cJSON_GetObjectItemCaseSensitive(manifest, "categories");
    const cJSON *unseen = cJSON_GetObjectItemCaseSensitive(categories, "unseen");
    const cJSON *seen = cJSON_GetObjectItemCaseSensitive(categories, "seen");
    OD_CHECK(cJSON_GetArraySize(unseen) == 2);
    OD_CHECK(cJSON_GetArraySize(seen) == 4);

    /* Meshes held out for test_seen never appear in train. */
    const cJSON *mesh_list = cJSON_GetObjectItemCaseSensitive(manifest, "meshes");
    OD_CHECK(cJSON_GetArraySize(mesh_list) == 18);
    const char *splits[3] = {"train", "test_seen", "test_unseen"};
    for (int s = 0; s < 3; s++) {
        char lines[8][128];
        int n = read_split(dir, splits[s], lines, 8);
        OD_CHECK(n == (s == 0 ? 6 : 3));
        for (int i = 0; i < n; i++) {
            char scene[2 * ROOT_SIZE], groups[12][32];
            snprintf(scene, sizeof scene, "%s/%s", dir, lines[i]);
            int count = scene_groups(scene, groups);
            OD_CHECK(count >= 3);
            for (int k = 0; k < count; k++) {
                if (s == 2)
                    OD_CHECK(in_list(unseen, groups[k]));
                else
                    OD_CHECK(in_list(seen, groups[k]));
            }
            /* Every object of a scene has the same mesh, of the role the split draws from. */
            cJSON *record = read_json(scene, "generation.json");
            const char *mesh = cJSON_GetObjectItemCaseSensitive(
                                   cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(record, "objects"), 0), "mesh")
                                   ->valuestring;
            const cJSON *entry;
            cJSON_ArrayForEach(entry, mesh_list)
            {
                if (strcmp(cJSON_GetObjectItemCaseSensitive(entry, "path")->valuestring, mesh) != 0)
                    continue;
                const char *role = cJSON_GetObjectItemCaseSensitive(entry, "role")->valuestring;
                OD_CHECK(strcmp(role, splits[s]) == 0);
            }
            cJSON_Delete(record);
        }
    }
    cJSON_Delete(manifest);

    /* Another seed holds out other categories, by the same rule. */
    char other[ROOT_SIZE];
    snprintf(other, sizeof other, "%s/toys_other", od_test_temp_dir());
    o.seed = 22;
    o.splits[0].scene_count = 1;
    o.splits[1].scene_count = 1;
    o.splits[2].scene_count = 1;
    OD_CHECK(od_synth_generate_dataset(&o, other, NULL, &err) == 0);
}

static void test_parts_test_shapes_not_in_training(void)
{
    char meshes[ROOT_SIZE], dir[ROOT_SIZE];
    snprintf(meshes, sizeof meshes, "%s/meshes_parts", od_test_temp_dir());
    snprintf(dir, sizeof dir, "%s/parts", od_test_temp_dir());
    make_meshes(meshes, "parts", 2, 5);
    od_synth_dataset_options o = tiny_options(OD_SYNTH_RECIPE_PARTS, 31);
    o.meshes_dir = meshes;
    set_split(&o, "train", 6);
    set_split(&o, "test", 4);
    od_error err = {{0}};
    int rc = od_synth_generate_dataset(&o, dir, NULL, &err);
    if (rc != 0)
        printf("  %s\n", err.message);
    OD_CHECK(rc == 0);
    char train[8][128], test[8][128];
    int n_train = read_split(dir, "train", train, 8), n_test = read_split(dir, "test", test, 8);
    OD_CHECK(n_train == 6);
    OD_CHECK(n_test == 4);
    char used[16][128];
    int used_count = 0;
    for (int i = 0; i < n_train; i++) {
        char scene[2 * ROOT_SIZE];
        snprintf(scene, sizeof scene, "%s/%s", dir, train[i]);
        cJSON *record = read_json(scene, "generation.json");
        const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(record, "objects"), 0);
        snprintf(used[used_count++], 128, "%s", cJSON_GetObjectItemCaseSensitive(first, "mesh")->valuestring);
        cJSON_Delete(record);
    }
    for (int i = 0; i < n_test; i++) {
        char scene[2 * ROOT_SIZE];
        snprintf(scene, sizeof scene, "%s/%s", dir, test[i]);
        cJSON *record = read_json(scene, "generation.json");
        const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(record, "objects"), 0);
        const char *mesh = cJSON_GetObjectItemCaseSensitive(first, "mesh")->valuestring;
        for (int k = 0; k < used_count; k++)
            OD_CHECK(strcmp(mesh, used[k]) != 0);
        cJSON_Delete(record);
    }
    /* 2 of the 10 shapes are held out. */
    cJSON *manifest = read_json(dir, "manifest.json");
    int held = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(manifest, "meshes"))
        held += strcmp(cJSON_GetObjectItemCaseSensitive(entry, "role")->valuestring, "test") == 0;
    OD_CHECK(held == 2);
    cJSON_Delete(manifest);

    /* With every anomaly a close shape, each train scene has one distinct object, a partner of the same
     * role. The test shapes are one per family here, so they have no partner and keep other kinds. */
    char distinct[ROOT_SIZE];
    snprintf(distinct, sizeof distinct, "%s/parts_distinct", od_test_temp_dir());
    o.distinct_fraction = 1;
    o.normal_fraction = 0;
    o.splits[0].scene_count = 3;
    o.splits[1].scene_count = 2;
    rc = od_synth_generate_dataset(&o, distinct, NULL, &err);
    if (rc != 0)
        printf("  %s\n", err.message);
    OD_CHECK(rc == 0);
    manifest = read_json(distinct, "manifest.json");
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(manifest, "totals");
    OD_CHECK(cJSON_GetObjectItemCaseSensitive(totals, "anomalous_objects")->valueint == 5);
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(totals, "anomaly_kinds");
    OD_CHECK(cJSON_GetObjectItemCaseSensitive(kinds, "distinct") != NULL);
    OD_CHECK(cJSON_GetObjectItemCaseSensitive(kinds, "distinct")->valueint == 3);
    int partners = 0;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(manifest, "meshes"))
    {
        const cJSON *partner = cJSON_GetObjectItemCaseSensitive(entry, "partner");
        if (!cJSON_IsString(partner))
            continue;
        partners++;
        const char *role = cJSON_GetObjectItemCaseSensitive(entry, "role")->valuestring;
        const cJSON *other;
        cJSON_ArrayForEach(other, cJSON_GetObjectItemCaseSensitive(manifest, "meshes"))
            if (strcmp(cJSON_GetObjectItemCaseSensitive(other, "path")->valuestring, partner->valuestring) == 0)
                OD_CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(other, "role")->valuestring, role) == 0);
    }
    OD_CHECK(partners == 8);
    cJSON_Delete(manifest);
    char scene[2 * ROOT_SIZE];
    snprintf(scene, sizeof scene, "%s/train/scene_0000", distinct);
    cJSON *metadata = read_json(scene, "scene3d.metadata.json");
    int odd = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(metadata, "objects"))
        odd += strstr(cJSON_GetObjectItemCaseSensitive(item, "path")->valuestring, "-distinct-") != NULL;
    OD_CHECK(odd == 1);
    cJSON_Delete(metadata);
}

/* A partner farther than the Chamfer threshold is no close shape: the scene takes another kind, and the
 * manifest counts the rejection. */
static void test_parts_distinct_needs_close_chamfer(void)
{
    char meshes[ROOT_SIZE], dir[ROOT_SIZE];
    snprintf(meshes, sizeof meshes, "%s/meshes_chamfer", od_test_temp_dir());
    make_meshes(meshes, "parts", 2, 5);
    od_synth_dataset_options o = tiny_options(OD_SYNTH_RECIPE_PARTS, 31);
    o.meshes_dir = meshes;
    set_split(&o, "train", 3);
    set_split(&o, "test", 1);
    o.distinct_fraction = 1;
    o.normal_fraction = 0;
    int distinct[2], not_close[2];
    /* The partner boxes differ by 8 % of the size in one extent: close under 0.05 of the size, not under
     * 0.011 (0.01 is where od_synth_close_shape takes a shape for a copy). */
    const double thresholds[2] = {0.05, 0.011};
    for (int t = 0; t < 2; t++) {
        snprintf(dir, sizeof dir, "%s/parts_chamfer_%d", od_test_temp_dir(), t);
        o.distinct_max_chamfer = thresholds[t];
        od_error err = {{0}};
        int rc = od_synth_generate_dataset(&o, dir, NULL, &err);
        if (rc != 0)
            printf("  %s\n", err.message);
        OD_CHECK(rc == 0);
        cJSON *manifest = read_json(dir, "manifest.json");
        const cJSON *totals = cJSON_GetObjectItemCaseSensitive(manifest, "totals");
        const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(totals, "anomaly_kinds");
        const cJSON *count = cJSON_GetObjectItemCaseSensitive(kinds, "distinct");
        distinct[t] = cJSON_IsNumber(count) ? count->valueint : 0;
        const cJSON *options = cJSON_GetObjectItemCaseSensitive(manifest, "options");
        const cJSON *threshold = cJSON_GetObjectItemCaseSensitive(options, "distinct_max_chamfer");
        OD_CHECK(cJSON_IsNumber(threshold) && threshold->valuedouble == thresholds[t]);
        const cJSON *rejections = cJSON_GetObjectItemCaseSensitive(totals, "rejections");
        count = cJSON_GetObjectItemCaseSensitive(rejections, "distinct_not_close");
        OD_CHECK(cJSON_IsNumber(count));
        not_close[t] = cJSON_IsNumber(count) ? count->valueint : -1;
        OD_CHECK(cJSON_GetObjectItemCaseSensitive(totals, "anomalous_objects")->valueint == 4);
        cJSON_Delete(manifest);
    }
    OD_CHECK(distinct[0] == 3);
    OD_CHECK(not_close[0] == 0);
    /* Each of the 3 train scenes rejects its partner at least once, and a redrawn attempt may again. */
    OD_CHECK(distinct[1] == 0);
    OD_CHECK(not_close[1] >= 3);

    o.distinct_max_chamfer = 0;
    od_error err = {{0}};
    OD_CHECK(od_synth_generate_dataset(&o, dir, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "Chamfer") != NULL);
}

/* Returns the count of objects whose path marks them odd, and copies the first object's location. */
static int flip_scene(const char *dir, const char *name, double location[3])
{
    char scene[2 * ROOT_SIZE];
    snprintf(scene, sizeof scene, "%s/context_flip/%s", dir, name);
    cJSON *metadata = read_json(scene, "scene3d.metadata.json");
    if (!metadata)
        return -1;
    int odd = 0, index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(metadata, "objects"))
    {
        odd += strstr(cJSON_GetObjectItemCaseSensitive(item, "path")->valuestring, "-distinct-") != NULL;
        if (index++ == 0)
            for (int k = 0; k < 3; k++)
                location[k] = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "location"), k)->valuedouble;
    }
    cJSON_Delete(metadata);
    return odd;
}

static void test_context_flip_labels_the_minority(void)
{
    char dir[ROOT_SIZE];
    snprintf(dir, sizeof dir, "%s/flip", od_test_temp_dir());
    od_synth_dataset_options o = tiny_options(OD_SYNTH_RECIPE_CONTEXT_FLIP, 41);
    set_split(&o, "context_flip", 4);
    od_error err = {{0}};
    int rc = od_synth_generate_dataset(&o, dir, NULL, &err);
    if (rc != 0)
        printf("  %s\n", err.message);
    OD_CHECK(rc == 0);
    static const char *names[5] = {"scene_0000_a1b5", "scene_0000_a2b4", "scene_0000_a3b3", "scene_0000_a4b2",
                                   "scene_0000_a5b1"};
    static const int odd[5] = {1, 2, 0, 2, 1};
    double first[3] = {0, 0, 0};
    for (int r = 0; r < 5; r++) {
        double location[3];
        OD_CHECK(flip_scene(dir, names[r], location) == odd[r]);
        /* One seed per group: the layout is the same in every ratio. */
        if (r == 0)
            memcpy(first, location, sizeof first);
        else
            for (int k = 0; k < 3; k++)
                OD_CHECK(location[k] == first[k] || k == 2);
    }
    char lines[8][128];
    OD_CHECK(read_split(dir, "context_flip", lines, 8) == 4);
    OD_CHECK(read_split(dir, "context_flip_tie", lines, 8) == 1);
    OD_CHECK(strcmp(lines[0], "context_flip/scene_0000_a3b3") == 0);
}

static void test_invalid_dataset_options(void)
{
    char dir[ROOT_SIZE];
    snprintf(dir, sizeof dir, "%s/invalid", od_test_temp_dir());
    od_error err = {{0}};
    od_synth_dataset_options o = tiny_options(OD_SYNTH_RECIPE_TOYS, 1);
    OD_CHECK(od_synth_generate_dataset(&o, dir, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "meshes") != NULL);

    o = tiny_options(OD_SYNTH_RECIPE_PARTS, 1);
    o.meshes_dir = dir; /* exists but has no parts/ */
    od_make_folders(dir, &err);
    OD_CHECK(od_synth_generate_dataset(&o, dir, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "parts") != NULL);

    o = tiny_options(OD_SYNTH_RECIPE_PROCEDURAL, 1);
    o.min_objects = 2;
    OD_CHECK(od_synth_generate_dataset(&o, dir, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "object range") != NULL);

    o = tiny_options(OD_SYNTH_RECIPE_TOYS, 1);
    o.meshes_dir = dir;
    set_split(&o, "test", 1);
    OD_CHECK(od_synth_generate_dataset(&o, dir, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "unknown split \"test\"") != NULL);

    o = tiny_options(OD_SYNTH_RECIPE_PROCEDURAL, 1);
    set_split(&o, "../up", 1);
    OD_CHECK(od_synth_generate_dataset(&o, dir, NULL, &err) != 0);

    od_synth_recipe recipe;
    OD_CHECK(od_synth_recipe_parse("context-flip", &recipe) == 0 && recipe == OD_SYNTH_RECIPE_CONTEXT_FLIP);
    OD_CHECK(od_synth_recipe_parse("flip", &recipe) != 0);
}

int main(void)
{
    OD_RUN(test_procedural_splits_and_counts);
    OD_RUN(test_dataset_deterministic_and_resumable);
    OD_RUN(test_toys_unseen_categories_stay_out_of_training);
    OD_RUN(test_parts_test_shapes_not_in_training);
    OD_RUN(test_parts_distinct_needs_close_chamfer);
    OD_RUN(test_context_flip_labels_the_minority);
    OD_RUN(test_invalid_dataset_options);
    return od_test_finish();
}
