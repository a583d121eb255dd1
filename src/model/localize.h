/* Localization for the learned model: objects out of the volume network's
 * raw density, with the same clustering and boxes as the training-free
 * detector (detect/compare.h), so that both detectors' boxes are alike.
 *
 * Steps:
 * 1. a voxel is occupied when softplus(raw density) reaches the
 *    threshold (localization.density_threshold of the configuration),
 *    the density that rendering uses (nn/render.h);
 * 2. a dense layer near z = 0 (at least OD_FLOOR_DEFAULT_LAYER_FRACTION
 *    of its voxels occupied, centre within OD_LOCALIZE_FLOOR_SEARCH_HEIGHT)
 *    is the floor: it and the layers below it are cleared, because no
 *    tabletop object fills a layer;
 * 3. DBSCAN (geometry/dbscan.h) on the occupied voxels, with compare's
 *    default radius and minimum neighbours;
 * 4. clusters with fewer voxels than min_object_fraction of the largest
 *    are dropped, and the others are renumbered 0, 1, ... in DBSCAN's
 *    order;
 * 5. one oriented box per cluster, fitted to its voxel centres with
 *    compare's margins (od_box_fit_voxel_centres), its bottom moved down
 *    to z = 0 because objects rest on the floor. A cluster with a voxel
 *    on the grid's side faces or top is marked truncated.
 *
 * The result does not depend on the thread count. */
#ifndef ODDONE_MODEL_LOCALIZE_H
#define ODDONE_MODEL_LOCALIZE_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/box.h"
#include "geometry/grid.h"

/* Margins of od_box_fit_voxel_centres in voxels, the values that
 * detect/compare.c measured for visual-hull occupancy. */
#define OD_LOCALIZE_BOX_SIDE_MARGIN 0.25
#define OD_LOCALIZE_BOX_TOP_MARGIN 0.02

/* Highest centre, above z = 0 in world units, of a layer that can be
 * taken as the floor. */
#define OD_LOCALIZE_FLOOR_SEARCH_HEIGHT 0.1

typedef struct od_localize_options {
    double density_threshold;   /* on softplus(raw density), > 0 */
    double eps;                 /* DBSCAN radius in voxels */
    int min_points;             /* DBSCAN core threshold, itself included */
    double min_object_fraction; /* in [0, 1] */
} od_localize_options;

typedef struct od_localization {
    /* Occupied voxels after floor removal, in (z, y, x) order: grid
     * indices (occupied_count, 3) as (x, y, z), and the object of each
     * (-1 for DBSCAN noise and dropped clusters). */
    int64_t occupied_count;
    int32_t *voxels;
    int32_t *labels;
    int object_count;
    od_box *boxes;          /* (object_count) */
    int64_t *voxel_counts;  /* (object_count) */
    uint8_t *truncated;     /* (object_count): 1 when the grid cuts the object */
    int dropped_clusters;   /* DBSCAN clusters dropped as too small */
    int floor_layer;        /* the dense layer taken as the floor, or -1 */
} od_localization;

/* Returns the options with the given threshold and compare's DBSCAN and
 * cluster-size defaults. */
od_localize_options od_localize_options_default(double density_threshold);

/* Finds the objects in a raw density volume (D, H, W) = grid dims
 * (z, y, x), laid out as geometry/grid.h describes. On failure *result is left
 * empty (safe to free) and err names the problem: an invalid grid or
 * option, a non-finite density, no memory. No occupied voxel is not an
 * error: the result then has no objects. */
int od_localize(const float *density, const od_grid *grid, const od_localize_options *options,
                od_localization *result, od_error *err);

void od_localization_free(od_localization *result);

#endif
