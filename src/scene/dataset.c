#define _POSIX_C_SOURCE 200809L
#include "scene/dataset.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scene/scene.h"

/* Split files larger than this are rejected before reading: a million
 * scenes at 64 bytes a line. */
#define SPLIT_FILE_MAX_BYTES (64L << 20)
#define MANIFEST_MAX_BYTES (64L << 20)

static int is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *join_path(const char *a, const char *b)
{
    size_t length = strlen(a) + strlen(b) + 2;
    char *path = malloc(length);
    if (path != NULL)
        snprintf(path, length, "%s/%s", a, b);
    return path;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A growable list of owned strings. */
typedef struct string_list {
    char **items;
    int count, capacity;
} string_list;

static int list_push(string_list *list, const char *text, od_error *err)
{
    if (list->count == list->capacity) {
        int capacity = list->capacity > 0 ? 2 * list->capacity : 16;
        char **items = realloc(list->items, (size_t)capacity * sizeof(*items));
        if (items == NULL)
            return od_fail(err, "out of memory listing the dataset");
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count] = strdup(text);
    if (list->items[list->count] == NULL)
        return od_fail(err, "out of memory listing the dataset");
    list->count++;
    return 0;
}

static void list_free(string_list *list)
{
    for (int i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof(*list));
}

/* Reads a whole file of at most max_bytes into a NUL-terminated buffer. */
static char *read_text(const char *path, long max_bytes, od_error *err)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        od_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    long size = -1;
    if (fseek(file, 0, SEEK_END) == 0)
        size = ftell(file);
    if (size < 0 || fseek(file, 0, SEEK_SET) != 0) {
        od_fail(err, "%s: cannot read its size", path);
    } else if (size > max_bytes) {
        od_fail(err, "%s: %ld bytes; expected at most %ld", path, size, max_bytes);
    } else if ((text = malloc((size_t)size + 1)) == NULL) {
        od_fail(err, "%s: out of memory reading %ld bytes", path, size);
    } else if (fread(text, 1, (size_t)size, file) != (size_t)size) {
        od_fail(err, "%s: read failed", path);
        free(text);
        text = NULL;
    } else {
        text[size] = '\0';
        if (strlen(text) != (size_t)size) {
            od_fail(err, "%s: contains a NUL byte; expected text", path);
            free(text);
            text = NULL;
        }
    }
    fclose(file);
    return text;
}

/* Lists the names of splits/<name>.txt, sorted. */
static int list_splits(const char *splits_dir, string_list *splits, od_error *err)
{
    DIR *dir = opendir(splits_dir);
    if (dir == NULL)
        return od_fail(err, "%s: cannot open: %s", splits_dir, strerror(errno));
    struct dirent *entry;
    int status = 0;
    while (status == 0 && (entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length <= 4 || strcmp(entry->d_name + length - 4, ".txt") != 0 || entry->d_name[0] == '.')
            continue;
        char name[256];
        if (length - 4 >= sizeof(name))
            continue;
        memcpy(name, entry->d_name, length - 4);
        name[length - 4] = '\0';
        status = list_push(splits, name, err);
    }
    closedir(dir);
    if (status == 0 && splits->count > 0)
        qsort(splits->items, (size_t)splits->count, sizeof(char *), compare_strings);
    return status;
}

/* Lists the scene folders directly under root, sorted by name. */
static int list_scene_folders(const char *root, string_list *scenes, od_error *err)
{
    DIR *dir = opendir(root);
    if (dir == NULL)
        return od_fail(err, "%s: cannot open: %s", root, strerror(errno));
    struct dirent *entry;
    int status = 0;
    while (status == 0 && (entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char *path = join_path(root, entry->d_name);
        if (path == NULL) {
            status = od_fail(err, "out of memory listing %s", root);
            break;
        }
        od_scene_format format;
        if (is_directory(path) && od_scene_detect_format(path, &format, NULL) == 0)
            status = list_push(scenes, entry->d_name, err);
        free(path);
    }
    closedir(dir);
    if (status == 0 && scenes->count > 0)
        qsort(scenes->items, (size_t)scenes->count, sizeof(char *), compare_strings);
    return status;
}

/* Checks that a split file's path stays inside the dataset. */
static int check_relative(const char *file, int line, const char *path, od_error *err)
{
    if (path[0] == '/')
        return od_fail(err, "%s:%d: \"%s\" is an absolute path; expected a path relative to the dataset folder",
                       file, line, path);
    const char *p = path;
    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t length = end != NULL ? (size_t)(end - p) : strlen(p);
        if (length == 2 && p[0] == '.' && p[1] == '.')
            return od_fail(err, "%s:%d: \"%s\" leaves the dataset folder (\"..\"); expected a path inside it",
                           file, line, path);
        p += length;
        if (*p == '/')
            p++;
    }
    return 0;
}

/* Reads splits/<split>.txt into relative scene paths. */
static int read_split(const char *root, const char *file, string_list *scenes, od_error *err)
{
    char *text = read_text(file, SPLIT_FILE_MAX_BYTES, err);
    if (text == NULL)
        return -1;
    int status = 0;
    int line_number = 0;
    char *line = text;
    while (status == 0 && line != NULL && *line != '\0') {
        line_number++;
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *start = line;
        while (*start == ' ' || *start == '\t')
            start++;
        char *end = start + strlen(start);
        while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            *--end = '\0';
        while (end > start + 1 && end[-1] == '/')
            *--end = '\0';
        line = next;
        if (*start == '\0' || *start == '#')
            continue;
        if (check_relative(file, line_number, start, err) != 0) {
            status = -1;
            break;
        }
        for (int i = 0; i < scenes->count; i++) {
            if (strcmp(scenes->items[i], start) == 0) {
                status = od_fail(err, "%s:%d: scene \"%s\" is listed twice; expected each scene once", file,
                                 line_number, start);
                break;
            }
        }
        if (status != 0)
            break;
        char *path = join_path(root, start);
        if (path == NULL) {
            status = od_fail(err, "out of memory reading %s", file);
            break;
        }
        if (!is_directory(path))
            status = od_fail(err, "%s:%d: scene folder %s not found", file, line_number, path);
        free(path);
        if (status == 0)
            status = list_push(scenes, start, err);
    }
    free(text);
    return status;
}

/* Checks that the manifest, when present, is a JSON object. */
static int check_manifest(const char *path, od_error *err)
{
    char *text = read_text(path, MANIFEST_MAX_BYTES, err);
    if (text == NULL)
        return -1;
    cJSON *json = cJSON_Parse(text);
    free(text);
    int status = 0;
    if (json == NULL || !cJSON_IsObject(json))
        status = od_fail(err, "%s: invalid JSON; expected an object (the dataset's manifest)", path);
    cJSON_Delete(json);
    return status;
}

static char *join_split_path(const char *root, const char *split)
{
    size_t length = strlen(root) + strlen(split) + sizeof("/splits/.txt");
    char *path = malloc(length);
    if (path != NULL)
        snprintf(path, length, "%s/splits/%s.txt", root, split);
    return path;
}

static int choose_split(const string_list *splits, const char *root, char **chosen, od_error *err)
{
    for (int i = 0; i < splits->count; i++) {
        if (strcmp(splits->items[i], "test") == 0) {
            *chosen = strdup("test");
            return *chosen != NULL ? 0 : od_fail(err, "out of memory");
        }
    }
    if (splits->count == 1) {
        *chosen = strdup(splits->items[0]);
        return *chosen != NULL ? 0 : od_fail(err, "out of memory");
    }
    char names[512] = "";
    for (int i = 0; i < splits->count; i++) {
        size_t used = strlen(names);
        snprintf(names + used, sizeof(names) - used, "%s%s", i > 0 ? ", " : "", splits->items[i]);
    }
    return od_fail(err, "%s: contains several splits (%s); choose one", root, names);
}

int od_dataset_open(const char *root, const char *split, od_dataset *dataset, od_error *err)
{
    memset(dataset, 0, sizeof(*dataset));
    if (root == NULL || root[0] == '\0')
        return od_fail(err, "no dataset folder given");
    if (!is_directory(root))
        return od_fail(err, "%s: not found or not a folder; expected a dataset folder", root);

    string_list splits = {0}, scenes = {0};
    char *splits_dir = join_path(root, "splits");
    char *manifest = join_path(root, "manifest.json");
    char *chosen = NULL;
    int status = 0;
    if (splits_dir == NULL || manifest == NULL) {
        status = od_fail(err, "out of memory opening %s", root);
        goto done;
    }
    if (is_file(manifest)) {
        if (check_manifest(manifest, err) != 0) {
            status = -1;
            goto done;
        }
        dataset->manifest_path = manifest;
        manifest = NULL;
    }

    if (is_directory(splits_dir)) {
        if (list_splits(splits_dir, &splits, err) != 0) {
            status = -1;
            goto done;
        }
        if (splits.count == 0) {
            status = od_fail(err, "%s: contains no <split>.txt file; expected at least one split list", splits_dir);
            goto done;
        }
        if (split == NULL) {
            if (choose_split(&splits, root, &chosen, err) != 0) {
                status = -1;
                goto done;
            }
        } else {
            int found = 0;
            for (int i = 0; i < splits.count; i++)
                found |= strcmp(splits.items[i], split) == 0;
            if (!found) {
                char names[512] = "";
                for (int i = 0; i < splits.count; i++) {
                    size_t used = strlen(names);
                    snprintf(names + used, sizeof(names) - used, "%s%s", i > 0 ? ", " : "", splits.items[i]);
                }
                status = od_fail(err, "%s: unknown split \"%s\"; expected one of: %s", root, split, names);
                goto done;
            }
            chosen = strdup(split);
        }
        char *file = chosen != NULL ? join_split_path(root, chosen) : NULL;
        if (file == NULL) {
            status = od_fail(err, "out of memory opening %s", root);
            goto done;
        }
        status = read_split(root, file, &scenes, err);
        if (status == 0 && scenes.count == 0)
            status = od_fail(err, "%s: lists no scene; expected one scene folder per line", file);
        free(file);
        if (status != 0)
            goto done;
    } else {
        if (split != NULL && strcmp(split, OD_DATASET_ALL_SPLIT) != 0) {
            status = od_fail(err, "%s: has no splits/ folder, so its only split is \"%s\"; got \"%s\"", root,
                             OD_DATASET_ALL_SPLIT, split);
            goto done;
        }
        if ((status = list_push(&splits, OD_DATASET_ALL_SPLIT, err)) != 0)
            goto done;
        chosen = strdup(OD_DATASET_ALL_SPLIT);
        od_scene_format format;
        if (od_scene_detect_format(root, &format, NULL) == 0)
            status = list_push(&scenes, ".", err);
        else
            status = list_scene_folders(root, &scenes, err);
        if (status != 0)
            goto done;
        if (scenes.count == 0) {
            status = od_fail(err,
                             "%s: contains no scene folder (one with scene3d.metadata.json, transforms.json or a "
                             "COLMAP model) and no splits/ folder",
                             root);
            goto done;
        }
    }

    dataset->root = strdup(root);
    dataset->split = chosen;
    chosen = NULL;
    dataset->split_count = splits.count;
    dataset->splits = splits.items;
    splits.items = NULL;
    splits.count = 0;
    dataset->scene_count = scenes.count;
    dataset->scene_names = scenes.items;
    scenes.items = NULL;
    scenes.count = 0;
    dataset->scenes = calloc((size_t)dataset->scene_count, sizeof(char *));
    if (dataset->root == NULL || dataset->scenes == NULL) {
        status = od_fail(err, "out of memory opening %s", root);
        goto done;
    }
    for (int i = 0; i < dataset->scene_count; i++) {
        dataset->scenes[i] = strcmp(dataset->scene_names[i], ".") == 0 ? strdup(root)
                                                                       : join_path(root, dataset->scene_names[i]);
        if (dataset->scenes[i] == NULL) {
            status = od_fail(err, "out of memory opening %s", root);
            goto done;
        }
    }

done:
    list_free(&splits);
    list_free(&scenes);
    free(splits_dir);
    free(manifest);
    free(chosen);
    if (status != 0)
        od_dataset_free(dataset);
    return status;
}

void od_dataset_free(od_dataset *dataset)
{
    if (dataset == NULL)
        return;
    free(dataset->root);
    free(dataset->manifest_path);
    for (int i = 0; i < dataset->split_count; i++)
        free(dataset->splits[i]);
    free(dataset->splits);
    free(dataset->split);
    for (int i = 0; i < dataset->scene_count; i++) {
        if (dataset->scenes != NULL)
            free(dataset->scenes[i]);
        if (dataset->scene_names != NULL)
            free(dataset->scene_names[i]);
    }
    free(dataset->scenes);
    free(dataset->scene_names);
    memset(dataset, 0, sizeof(*dataset));
}
