/* Benchmark datasets: many generated scenes, split for training and
 * testing by a recipe, with a manifest that records what made them.
 *
 * Layout written under the dataset folder DATASET:
 * - DATASET/<split>/scene_NNNN: one scene each, in the release format of
 *   od_synth_generate_scene, plus generation.json (the scene's seed, its
 *   objects' shapes and labels, and the candidates rejected on the way);
 *   context-flip scenes are DATASET/context_flip/scene_GGGG_aXbY (group
 *   G, X objects of shape A and Y of shape B);
 * - DATASET/splits/<split>.txt: the split's scene folders relative to
 *   DATASET, one a line, in generation order;
 * - DATASET/manifest.json: format, version, recipe, seed, options, the
 *   seen and unseen categories, every mesh with its role, size, FNV-1a
 *   hash and catalog entry, and per split the counts of scenes, objects,
 *   anomaly kinds and rejections;
 * - DATASET/timing.json: this run's wall time and speed. It is the only
 *   file that differs between two runs of one command.
 *
 * Recipes:
 * - procedural: boxes, ellipsoids, tori and two-part stacks with random
 *   proportions; any split names (default train, val, test); needs no
 *   meshes.
 * - toys: meshes under MESHES/toys/<category>/. A seeded rule holds out
 *   unseen_fraction of the categories (ranked by a hash of the seed and
 *   the name). Of each seen category with 3 or more meshes, a fifth (at
 *   least one) is held out for test_seen. train and val draw from the
 *   other meshes of seen categories, test_seen from the held-out meshes,
 *   test_unseen from the unseen categories.
 * - parts: meshes under MESHES/parts/<family>/. heldout_fraction of the
 *   files (ranked by a hash of the seed and the path) are the test
 *   shapes; train and val draw from the others, test from those. In
 *   distinct_fraction of the anomalous scenes the odd object is the
 *   shape's close partner (below) of the same family and role, marked
 *   "distinct", instead of an altered copy. The partner is the nearest by
 *   the shape descriptor and is accepted only when od_synth_close_shape
 *   (synth/anomaly.h) finds their symmetric Chamfer distance (mean
 *   nearest-point distance both ways, both scaled to a largest extent of
 *   1) at most distinct_max_chamfer. Otherwise the scene draws another
 *   kind, and the manifest counts a "distinct_not_close" rejection.
 * - context-flip: two geometrically close shapes A and B, six objects,
 *   in groups of five scenes with 1, 2, 3, 4 and 5 objects of A, one
 *   seed per group (one layout, floor, light and cameras). The minority
 *   shape is odd: the lone A in 1:5, the two A's in 2:4, the two B's in
 *   4:2, the lone B in 5:1, each marked "distinct". A 3:3 scene has no
 *   minority and labels every object normal; it goes to the split
 *   context_flip_tie, the other four ratios to context_flip. The pairs are
 *   procedural shapes with one proportion changed by 15 to 30 %, or with
 *   MESHES, each mesh and its nearest neighbour of the same category or
 *   family by a shape descriptor (sorted extents and a radial histogram
 *   of the surface), when that neighbour is close but not identical.
 *
 * Every scene's choices (shape, object count, anomaly or none, seed)
 * come from a stream forked from the dataset seed by split name and
 * index, so a split of N scenes is the first N scenes of a larger one,
 * and two runs of one command write identical files. A scene is written
 * to DATASET/<split>/.scene_NNNN.tmp and renamed when complete: a rerun
 * skips complete scenes and redoes the others. */
#ifndef ODDONE_SYNTH_DATASET_H
#define ODDONE_SYNTH_DATASET_H

#include <stdint.h>

#include "core/error.h"
#include "synth/generate.h"

typedef enum od_synth_recipe {
    OD_SYNTH_RECIPE_PROCEDURAL = 0,
    OD_SYNTH_RECIPE_TOYS,
    OD_SYNTH_RECIPE_PARTS,
    OD_SYNTH_RECIPE_CONTEXT_FLIP,
} od_synth_recipe;

/* Returns "procedural", "toys", "parts" or "context-flip". */
const char *od_synth_recipe_name(od_synth_recipe recipe);

/* Reads a recipe from its name; returns 0, or -1 for an unknown name. */
int od_synth_recipe_parse(const char *name, od_synth_recipe *recipe);

#define OD_SYNTH_MAX_SPLITS 8
#define OD_SYNTH_SPLIT_NAME_SIZE 32

typedef struct od_synth_split_size {
    char name[OD_SYNTH_SPLIT_NAME_SIZE]; /* letters, digits and '_' */
    int scene_count;                     /* for context_flip: scenes of the four scored ratios, rounded up to
                                            a multiple of 4; each group of 4 adds one context_flip_tie scene */
} od_synth_split_size;

/* The progress of a dataset run, passed to the progress callback after
 * each scene (or context-flip group). */
typedef struct od_synth_dataset_progress {
    int scenes_done;      /* written or found complete */
    int scenes_total;
    int scenes_skipped;   /* found complete from an earlier run */
    int rejections;       /* candidates rejected so far in this run */
    double seconds;       /* since the run started */
} od_synth_dataset_progress;

typedef void (*od_synth_dataset_progress_fn)(const od_synth_dataset_progress *progress, void *user);

typedef struct od_synth_dataset_options {
    od_synth_recipe recipe;
    uint64_t seed;
    const char *meshes_dir; /* meshio's layout (toys/, parts/, catalog.json); required by toys and parts,
                               optional for context-flip, not used by procedural */
    const char *version;    /* written to the manifest ("bench-v1"), or NULL for "custom" */
    int split_count;        /* 0: the recipe's splits, scenes_per_split scenes each */
    od_synth_split_size splits[OD_SYNTH_MAX_SPLITS];
    int scenes_per_split;   /* used when split_count is 0 */
    int min_objects, max_objects; /* objects per scene, 3 <= min <= max <= 12; context-flip uses 6 */
    double normal_fraction;   /* fraction of scenes with no anomaly, in [0, 1] */
    double unseen_fraction;   /* toys: fraction of categories held out as unseen, in (0, 1) */
    double heldout_fraction;  /* parts: fraction of shapes held out for test, in (0, 1) */
    double distinct_fraction; /* parts: fraction of anomalous scenes whose odd object is a close shape, in
                                 [0, 1] */
    double distinct_max_chamfer; /* parts: the largest symmetric Chamfer distance between a shape and its
                                    close partner, as a fraction of the largest extent, in (0, 1] */
    od_synth_scene_options scene; /* views, size, anomaly kind and geometry; seed, object_count and
                                     anomalous are set per scene */
    int threads;              /* scenes generated at once; <= 0 for OpenMP's default */
    od_synth_dataset_progress_fn progress; /* may be NULL */
    void *progress_user;
} od_synth_dataset_options;

/* Returns the defaults: procedural, seed 1, the recipe's splits with 10
 * scenes each, 3 to 7 objects and 20 % all-normal scenes. 12 of 51
 * categories are unseen (as in ToysAD-8K), 20 % of the parts held out, and
 * 10 % of anomalous parts scenes get a distinct close shape, accepted
 * under a Chamfer distance of 0.05 of the shape's size.
 * The scenes take the scene defaults with a random anomaly kind. */
od_synth_dataset_options od_synth_dataset_options_default(void);

/* What a run did; counts cover the whole dataset (skipped scenes too). */
typedef struct od_synth_dataset_report {
    int scenes;
    int scenes_generated;
    int scenes_skipped;
    int anomalous_objects;
    int rejections;      /* candidates and draws rejected, every reason together */
    double seconds;
} od_synth_dataset_report;

/* Generates the dataset into out_dir (created when missing); report may
 * be NULL. Fails on invalid options, on a missing or empty meshes folder
 * where the recipe needs one, or on a split the recipe does not know. It
 * also fails on a scene folder left by other settings, on a scene that
 * fails on every one of 8 draws, and on a write error. */
int od_synth_generate_dataset(const od_synth_dataset_options *options, const char *out_dir,
                              od_synth_dataset_report *report, od_error *err);

#endif
