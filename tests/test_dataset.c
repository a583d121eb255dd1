/* Dataset folders: split lists, the folder-scan fallback and bad split files. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/folder.h"
#include "scene/dataset.h"
#include "testlib.h"

static void write_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    OD_CHECK(file != NULL);
    if (file == NULL)
        return;
    fputs(text, file);
    fclose(file);
}

/* Makes root/name as a release-format scene folder (the marker file is
 * enough for the lister, which does not load scenes). */
static void make_scene(const char *root, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, name);
    OD_CHECK(od_make_folders(path, NULL) == 0);
    snprintf(path, sizeof path, "%s/%s/scene3d.metadata.json", root, name);
    write_text(path, "{}");
}

static void test_scan_without_splits(void)
{
    char root[1024];
    snprintf(root, sizeof root, "%s/scan", od_test_temp_dir());
    make_scene(root, "scene_0001");
    make_scene(root, "scene_0000");
    char other[1100];
    snprintf(other, sizeof other, "%s/not_a_scene", root);
    OD_CHECK(od_make_folders(other, NULL) == 0);

    od_dataset dataset;
    od_error err = {{0}};
    OD_CHECK(od_dataset_open(root, NULL, &dataset, &err) == 0);
    OD_CHECK(dataset.scene_count == 2);
    OD_CHECK(dataset.split_count == 1);
    if (dataset.scene_count == 2) {
        OD_CHECK(strcmp(dataset.scene_names[0], "scene_0000") == 0);
        OD_CHECK(strcmp(dataset.scene_names[1], "scene_0001") == 0);
        char want[1100];
        snprintf(want, sizeof want, "%s/scene_0000", root);
        OD_CHECK(strcmp(dataset.scenes[0], want) == 0);
    }
    OD_CHECK(dataset.split != NULL && strcmp(dataset.split, "all") == 0);
    OD_CHECK(dataset.manifest_path == NULL);
    od_dataset_free(&dataset);

    OD_CHECK(od_dataset_open(root, "train", &dataset, &err) == -1);
    OD_CHECK(strstr(err.message, "\"all\"") != NULL);
}

static void test_single_scene_folder(void)
{
    char root[1024];
    snprintf(root, sizeof root, "%s/single", od_test_temp_dir());
    make_scene(root, ".");
    od_dataset dataset;
    od_error err = {{0}};
    OD_CHECK(od_dataset_open(root, NULL, &dataset, &err) == 0);
    OD_CHECK(dataset.scene_count == 1);
    if (dataset.scene_count == 1)
        OD_CHECK(strcmp(dataset.scenes[0], root) == 0);
    od_dataset_free(&dataset);
}

static void test_split_lists(void)
{
    char root[1024], path[1100];
    snprintf(root, sizeof root, "%s/splits", od_test_temp_dir());
    make_scene(root, "train/scene_0000");
    make_scene(root, "train/scene_0001");
    make_scene(root, "test/scene_0000");
    snprintf(path, sizeof path, "%s/splits", root);
    OD_CHECK(od_make_folders(path, NULL) == 0);
    snprintf(path, sizeof path, "%s/splits/train.txt", root);
    write_text(path, "# training scenes\ntrain/scene_0001\n\n  train/scene_0000/  \r\n");
    snprintf(path, sizeof path, "%s/splits/test.txt", root);
    write_text(path, "test/scene_0000");
    snprintf(path, sizeof path, "%s/manifest.json", root);
    write_text(path, "{\"version\": \"bench-v1\"}");

    od_dataset dataset;
    od_error err = {{0}};
    OD_CHECK(od_dataset_open(root, "train", &dataset, &err) == 0);
    OD_CHECK(dataset.split_count == 2);
    OD_CHECK(dataset.scene_count == 2);
    if (dataset.scene_count == 2) {
        /* The list's order is kept. */
        OD_CHECK(strcmp(dataset.scene_names[0], "train/scene_0001") == 0);
        OD_CHECK(strcmp(dataset.scene_names[1], "train/scene_0000") == 0);
    }
    OD_CHECK(dataset.manifest_path != NULL);
    od_dataset_free(&dataset);

    /* Without a split name, "test" is chosen. */
    OD_CHECK(od_dataset_open(root, NULL, &dataset, &err) == 0);
    OD_CHECK(dataset.split != NULL && strcmp(dataset.split, "test") == 0);
    OD_CHECK(dataset.scene_count == 1);
    od_dataset_free(&dataset);

    OD_CHECK(od_dataset_open(root, "val", &dataset, &err) == -1);
    OD_CHECK(strstr(err.message, "unknown split \"val\"") != NULL);
    OD_CHECK(strstr(err.message, "test, train") != NULL);
}

/* Opens root with split "bad" whose list is `text`; returns the message. */
static const char *open_bad_split(const char *name, const char *text)
{
    static od_error err;
    char root[1024], path[1100];
    snprintf(root, sizeof root, "%s/%s", od_test_temp_dir(), name);
    make_scene(root, "scene_0000");
    snprintf(path, sizeof path, "%s/splits", root);
    OD_CHECK(od_make_folders(path, NULL) == 0);
    snprintf(path, sizeof path, "%s/splits/bad.txt", root);
    write_text(path, text);
    od_dataset dataset;
    memset(&err, 0, sizeof err);
    OD_CHECK(od_dataset_open(root, "bad", &dataset, &err) == -1);
    OD_CHECK(dataset.scene_count == 0 && dataset.scenes == NULL);
    return err.message;
}

static void test_bad_split_files(void)
{
    OD_CHECK(strstr(open_bad_split("parent", "scene_0000\n../elsewhere\n"), "bad.txt:2") != NULL);
    OD_CHECK(strstr(open_bad_split("absolute", "/etc\n"), "absolute path") != NULL);
    OD_CHECK(strstr(open_bad_split("missing", "scene_0000\nscene_9999\n"), "not found") != NULL);
    OD_CHECK(strstr(open_bad_split("twice", "scene_0000\nscene_0000/\n"), "listed twice") != NULL);
    OD_CHECK(strstr(open_bad_split("empty", "# nothing\n\n"), "lists no scene") != NULL);
}

static void test_bad_roots(void)
{
    od_dataset dataset;
    od_error err = {{0}};
    char root[1024], path[1100];
    OD_CHECK(od_dataset_open("/nonexistent/dataset", NULL, &dataset, &err) == -1);
    OD_CHECK(strstr(err.message, "not found") != NULL);

    snprintf(root, sizeof root, "%s/empty_root", od_test_temp_dir());
    OD_CHECK(od_make_folders(root, NULL) == 0);
    OD_CHECK(od_dataset_open(root, NULL, &dataset, &err) == -1);
    OD_CHECK(strstr(err.message, "no scene folder") != NULL);

    snprintf(root, sizeof root, "%s/bad_manifest", od_test_temp_dir());
    make_scene(root, "scene_0000");
    snprintf(path, sizeof path, "%s/manifest.json", root);
    write_text(path, "[1, 2");
    OD_CHECK(od_dataset_open(root, NULL, &dataset, &err) == -1);
    OD_CHECK(strstr(err.message, "manifest.json") != NULL);

    snprintf(root, sizeof root, "%s/ambiguous", od_test_temp_dir());
    make_scene(root, "scene_0000");
    snprintf(path, sizeof path, "%s/splits", root);
    OD_CHECK(od_make_folders(path, NULL) == 0);
    snprintf(path, sizeof path, "%s/splits/a.txt", root);
    write_text(path, "scene_0000\n");
    snprintf(path, sizeof path, "%s/splits/b.txt", root);
    write_text(path, "scene_0000\n");
    OD_CHECK(od_dataset_open(root, NULL, &dataset, &err) == -1);
    OD_CHECK(strstr(err.message, "choose one") != NULL);
}

int main(void)
{
    OD_RUN(test_scan_without_splits);
    OD_RUN(test_single_scene_folder);
    OD_RUN(test_split_lists);
    OD_RUN(test_bad_split_files);
    OD_RUN(test_bad_roots);
    return od_test_finish();
}
