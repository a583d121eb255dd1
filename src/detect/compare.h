/* The training-free detector (`--method compare`): a frozen teacher's
 * features of a few posed views are lifted into the voxel grid, the
 * occupied voxels are clustered into objects, and every object is compared
 * with the others part by part. The object that differs most from the rest
 * is the odd one.
 *
 * Stages, in order:
 * 1. occupancy: the visual hull of the views' foreground masks, a voxel
 *    seen by at least two views (geometry/visual_hull.h). Without masks,
 *    or with occupancy OD_COMPARE_OCCUPANCY_COLOR, colour consistency
 *    across views with a floor texture (geometry/color_consistency.h). The
 *    floor plane z = 0 and the layers within floor_margin of it are then
 *    removed (geometry/floor.h), and boxes reach down to the floor, since
 *    objects rest on it;
 * 2. localization: DBSCAN on the occupied voxels, clusters under
 *    min_object_fraction of the largest dropped, then one oriented box per
 *    cluster (geometry/dbscan.h, geometry/obb.h);
 * 3. features: each view is resized to input_size x input_size and its K
 *    scaled to match. The teacher's `layer` is computed on it
 *    (teacher/teacher.h; MobileNetV2 by default), or, with features
 *    OD_COMPARE_FEATURES_COLOR, a colour histogram of every
 *    color_stride-pixel cell (detect/color_features.h);
 * 4. lifting: the feature maps are averaged into the occupied voxels one
 *    view at a time (detect/voxel_lift.h, geometry/lift.h's rule);
 * 5. scoring (detect/match.h): each occupied voxel's lifted feature,
 *    L2-normalised. Every voxel of object a has its top_k best matches
 *    among the voxels of object b by cosine similarity, and its match
 *    distance to b is the largest of those k cosine distances.
 *    distance[a][b] is the mean of the largest top_fraction of a's match
 *    distances, so that a local defect counts even when most of the object
 *    matches. The most typical objects form a consensus group, and an
 *    object's score is the mean of distance[a][b] over that group without a
 *    (its reference group). A normal object's score thus stays low when
 *    another object is odd too. Each voxel's difference, shown in heat
 *    maps, is the mean of its match distances to the reference group.
 *
 * Objects with a voxel on the grid's side faces or top are cut by the grid:
 * their box covers the part inside the grid and they are marked truncated.
 * Truncated objects and objects seen by fewer than two views are scored
 * but join no reference group, unless fewer than two objects remain.
 *
 * The object with the highest score is labelled odd; see od_compare_label
 * for the rule. */
#ifndef ODDONE_DETECT_COMPARE_H
#define ODDONE_DETECT_COMPARE_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/box.h"
#include "geometry/color_consistency.h"
#include "geometry/grid.h"
#include "scene/scene.h"
#include "teacher/teacher.h"

#define OD_COMPARE_DEFAULT_LAYER "block_6_expand_relu"
#define OD_COMPARE_DEFAULT_INPUT_SIZE 448
/* DBSCAN radius and minimum neighbours, in voxels of the default 2 cm grid. */
#define OD_COMPARE_DEFAULT_EPS 1.5
#define OD_COMPARE_DEFAULT_MIN_POINTS 3
/* Fraction of an object's voxels, the worst-matching ones, whose
 * nearest-neighbour distances are averaged. */
#define OD_COMPARE_DEFAULT_TOP_FRACTION 0.1
/* Best matches per voxel among another object's voxels. */
#define OD_COMPARE_DEFAULT_TOP_K 3
/* The top-scoring object is "odd" when its score exceeds the median score
 * of the others by at least this factor. */
#define OD_COMPARE_DEFAULT_ODD_RATIO 1.2
/* Clusters with fewer voxels than this fraction of the largest cluster are
 * dropped as hull ghosts (regions where few views' masks overlap by
 * chance). An object much smaller than another in the same scene is lost
 * with them. */
#define OD_COMPARE_DEFAULT_MIN_OBJECT_FRACTION 0.25

/* Layers whose centre lies within this height of the floor are removed
 * from colour occupancy: colours near the floor are hardly affected by
 * parallax, so the floor's texture reads as consistent there. */
#define OD_COMPARE_DEFAULT_FLOOR_MARGIN 0.02

typedef enum od_compare_occupancy {
    OD_COMPARE_OCCUPANCY_AUTO = 0, /* masks when every selected view has one, else colour */
    OD_COMPARE_OCCUPANCY_MASKS,    /* visual hull; fails on a view without a mask */
    OD_COMPARE_OCCUPANCY_COLOR,    /* colour consistency, masks ignored */
} od_compare_occupancy;

typedef enum od_compare_features {
    OD_COMPARE_FEATURES_TEACHER = 0, /* the teacher network's layer */
    OD_COMPARE_FEATURES_COLOR,       /* colour histograms, no network */
} od_compare_features;

typedef struct od_compare_options {
    od_compare_features features;
    od_teacher_network teacher; /* OD_TEACHER_MOBILENETV2 by default */
    /* An opened teacher to use instead of opening one per call (borrowed,
     * not freed), so that a caller detecting on many scenes loads the
     * weights once; NULL by default. teacher, weights_path, layer and
     * input_size are then ignored. */
    od_teacher *teacher_instance;
    const char *weights_path; /* teacher weights; NULL: the network's default (OD_MOBILENETV2_DEFAULT_PATH) */
    const char *layer;        /* teacher layer name; NULL: the network's default */
    int input_size;           /* views are resized to input_size x input_size, >= 32; 0: the teacher's default */
    int color_bins;           /* colour features: bins per channel, >= 1 */
    int color_stride;         /* colour features: cell side in pixels, >= 1 */
    double eps;               /* DBSCAN radius, voxels */
    int min_points;           /* DBSCAN core threshold, itself included */
    double top_fraction;      /* in (0, 1] */
    int top_k;                /* best matches per voxel, in [1, OD_MATCH_MAX_K] */
    double odd_ratio;         /* >= 1 */
    double min_object_fraction; /* in [0, 1] */
    od_grid grid;
    od_compare_occupancy occupancy;
    od_color_occupancy_options color; /* thresholds of colour occupancy */
    double foreground_threshold;      /* colour distance from the floor texture, see color_consistency.h */
    double floor_margin;              /* world units above z = 0 removed from colour occupancy, >= 0 */
} od_compare_options;

typedef struct od_compare_object {
    od_box box;
    int64_t voxel_count;
    int64_t scored_voxels; /* voxels with a lifted feature (seen by a view) */
    int view_count;        /* selected views that see the box centre */
    uint8_t *seen_by;      /* (selected view count): 1 when that view sees the box centre */
    int few_views;         /* 1 when fewer than 2 views see it */
    int truncated;         /* 1 when the grid's side faces or top cut the object */
    int reference_count;
    int *reference;        /* (reference_count) objects its score was measured against */
    int has_score;         /* 0 with one object only */
    double score;
    int odd;               /* 1 for the object labelled odd */
} od_compare_object;

typedef struct od_compare_result {
    int view_count;
    int *views;                 /* (view_count) scene view indices used */
    int object_count;
    int dropped_clusters;       /* DBSCAN clusters dropped as too small */
    od_compare_occupancy occupancy; /* MASKS or COLOR: what was used */
    int floor_layer;            /* colour occupancy: the dense layer taken as the floor, or -1 */
    od_compare_object *objects; /* (object_count) in DBSCAN's cluster order */
    double *distance;           /* (object_count, object_count); row a against column b; 0 on the diagonal */
    double *similarity;         /* (object_count, object_count): 1 - (distance[a][b] + distance[b][a]) / 2 */
    uint8_t *consensus;         /* (object_count): 1 for members of the consensus group */
    /* Occupied voxels after localization, in (z, y, x) order: the grid
     * indices (occupied_count, 3) as (x, y, z), the object of each (-1 for
     * DBSCAN noise and dropped clusters) and each voxel's difference (NAN
     * where there is no score). */
    od_grid grid;
    int64_t occupied_count;
    int32_t *occupied_voxels;
    int32_t *occupied_object;
    float *occupied_difference;
    int feature_height, feature_width, feature_channels, stride;
    char feature_source[32];    /* "mobilenetv2", "inceptionv3", "dinov2" or "colour" */
    char feature_layer[64];     /* the teacher's layer, or "histogram" */
    int input_size;             /* side that the views were resized to */
    char note[256];             /* e.g. why there is no score; "" otherwise */
    /* Seconds per stage; seconds_hull is the occupancy stage, masks or colour. */
    double seconds_load, seconds_features, seconds_lift, seconds_hull, seconds_cluster, seconds_score,
        seconds_total;
} od_compare_result;

od_compare_options od_compare_options_default(void);

/* Runs the detector on views[0 .. view_count) of the scene. On failure
 * *result is left empty (safe to free) and err names the problem: no
 * masks with OD_COMPARE_OCCUPANCY_MASKS, weights missing, an unknown
 * layer, a bad view index. */
int od_compare_detect(const od_scene *scene, const int *views, int view_count, const od_compare_options *options,
                      od_compare_result *result, od_error *err);

/* Sets objects[].odd from the scores. The highest-scoring object is odd
 * when there are at least three scored objects and its score is at least
 * odd_ratio times the median score of the others. With two objects there
 * is no majority to tell which one differs, so neither is odd. Returns the odd
 * object's index or -1. */
int od_compare_label(od_compare_result *result, double odd_ratio);

/* Returns the object index with the highest score, or -1 when none is scored. */
int od_compare_top(const od_compare_result *result);

void od_compare_result_free(od_compare_result *result);

#endif
