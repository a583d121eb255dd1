/* A dataset: a folder of scenes with optional split lists.
 *
 * Layout:
 * - scene folders in any format od_scene_load reads, at any relative path;
 * - manifest.json (optional): what made the dataset, written by the
 *   generator; od_dataset_open only checks that it is a JSON object;
 * - splits/<split>.txt (optional): one scene folder path per line, relative
 *   to the dataset folder. Empty lines and lines starting with '#' are
 *   skipped; surrounding spaces are trimmed.
 * Without a splits/ folder, the folders directly under the dataset that hold
 * scene3d.metadata.json, transforms.json or a COLMAP model, sorted by name,
 * form one split called "all". A dataset folder that is itself a scene is
 * the split "all" with one scene. */
#ifndef ODDONE_SCENE_DATASET_H
#define ODDONE_SCENE_DATASET_H

#include "core/error.h"

/* Name of the split made of every scene when the dataset has no split lists. */
#define OD_DATASET_ALL_SPLIT "all"

typedef struct od_dataset {
    char *root;          /* the dataset folder as given */
    char *manifest_path; /* root/manifest.json when present, else NULL */
    int split_count;     /* splits present, sorted by name */
    char **splits;
    char *split;         /* the split listed in scenes */
    int scene_count;
    char **scenes;       /* scene folders: root joined with each relative path */
    char **scene_names;  /* the relative paths as the split list writes them */
} od_dataset;

/* Opens the dataset at root and lists the scenes of `split`. A NULL split
 * picks "test" when present, else the only split, else fails and names
 * the splits to choose from. Fails on a missing folder, an unknown split, a
 * split file that names a missing folder or a path leaving the dataset
 * ("..", absolute), a duplicate scene in one split, or an empty split. */
int od_dataset_open(const char *root, const char *split, od_dataset *dataset, od_error *err);

void od_dataset_free(od_dataset *dataset);

#endif
