/* DBSCAN on the occupied voxels of a grid, the localization step that
 * turns occupancy into objects before oriented boxes are fitted.
 *
 * Points are integer voxel coordinates (x, y, z). Two voxels are neighbours
 * when their Euclidean distance, in voxel units, is at most eps. A voxel is
 * a core point when it has at least min_points neighbours, itself included
 * (scikit-learn's min_samples convention). Duplicated coordinates count as
 * separate points, as they do in scikit-learn.
 *
 * Neighbours are found through a hash of the occupied grid rows (fixed y
 * and z). For each row offset (dy, dz) within eps, a voxel's neighbours in
 * that row are a contiguous run of x values, so no neighbour list is stored.
 *
 * Labels do not depend on the input order or on the thread count:
 * - core points and noise (-1) are exactly scikit-learn's;
 * - clusters are numbered 0, 1, ... in the order of their first core voxel
 *   in lexicographic (z, y, x) order;
 * - a border point within eps of core points of several clusters joins
 *   the one with the smallest id. scikit-learn gives it to whichever
 *   cluster reaches it first, which depends on the input order.
 *
 * Usage:
 *     od_dbscan *dbscan = od_dbscan_new(1.5, 5);
 *     od_dbscan_run(dbscan, voxels, count, labels, &err);
 *     int64_t clusters = od_dbscan_cluster_count(dbscan);
 *     od_dbscan_free(dbscan); */
#ifndef ODDONE_GEOMETRY_DBSCAN_H
#define ODDONE_GEOMETRY_DBSCAN_H

#include <stdint.h>

#include "core/error.h"

/* Largest accepted eps in voxels. Joining clusters visits every pair of
 * core voxels within eps, up to about 4.2 eps^3 per voxel (34 000 at 20)
 * in a solid region. */
#define OD_DBSCAN_MAX_EPS 20.0

/* Voxel coordinates must lie in [-OD_DBSCAN_COORD_LIMIT, OD_DBSCAN_COORD_LIMIT)
 * so that a cell packs into a 64-bit hash key. */
#define OD_DBSCAN_COORD_LIMIT (1 << 20)

typedef struct od_dbscan od_dbscan;

/* Returns a DBSCAN object with neighbourhood radius eps (voxel units) and
 * min_points (itself included), or NULL when out of memory or when eps is
 * not in (0, OD_DBSCAN_MAX_EPS] or min_points < 1. */
od_dbscan *od_dbscan_new(double eps, int64_t min_points);
void od_dbscan_free(od_dbscan *dbscan);

/* Clusters the voxels and writes one label per voxel: a cluster id >= 0,
 * or -1 for noise.
 * voxels is (count, 3) as (x, y, z); labels is (count).
 * Fails on a NULL buffer, a negative count, a coordinate out of range or
 * when out of memory. Logs "dbscan: N clusters, M noise voxels". */
int od_dbscan_run(od_dbscan *dbscan, const int32_t *voxels, int64_t count, int32_t *labels, od_error *err);

/* Results of the last successful run. core_flags is (count): 1 for a core
 * point, 0 otherwise; NULL before the first run. */
int64_t od_dbscan_cluster_count(const od_dbscan *dbscan);
int64_t od_dbscan_noise_count(const od_dbscan *dbscan);
const uint8_t *od_dbscan_core_flags(const od_dbscan *dbscan);

#endif
