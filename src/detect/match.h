/* Part-to-part matching between objects, the scoring step of the compare
 * detector (detect/compare.h).
 *
 * Every object is a set of voxel features, one L2-normalised row per
 * occupied voxel that a view sees. For objects a and b:
 * - each voxel of a has its k best matches among the voxels of b, the
 *   rows of b with the highest cosine similarity. The voxel's match
 *   distance to b is the largest of those k cosine distances (1 - cosine),
 *   so a defect must be unlike k parts of b, not just one, to look normal;
 * - distance[a][b] is the mean of the largest top_fraction of a's match
 *   distances to b, so that a local defect counts even when most of the
 *   object matches. The matrix is not symmetric: a part that a lacks does
 *   not raise distance[a][b], only distance[b][a].
 *
 * Scores stay robust to other odd objects through reference groups: the
 * objects whose median symmetric distance to the others is smallest (the
 * most typical ones, at least two and at least half of the eligible
 * objects) form the scene's consensus group. Object a is scored against
 * that group without itself. */
#ifndef ODDONE_DETECT_MATCH_H
#define ODDONE_DETECT_MATCH_H

#include <stdint.h>

#include "core/error.h"

/* Largest k accepted: the k best matches of a row are kept on the stack. */
#define OD_MATCH_MAX_K 64

/* Writes, for every row i of query (query_count, channels), the cosine
 * distances 1 - <query_i, reference_j> to its k most similar rows of
 * reference (reference_count, channels), ascending, as distances
 * (query_count, k). indices (query_count, k) receives the matching rows of
 * reference and may be NULL. Rows should be L2-normalised; the function
 * takes dot products as they are. Equal similarities keep the lower
 * reference row first. Fails on a NULL buffer, counts below 1, or k not in
 * [1, min(reference_count, OD_MATCH_MAX_K)]. */
int od_match_topk(const float *query, int64_t query_count, const float *reference, int64_t reference_count,
                  int64_t channels, int k, float *distances, int64_t *indices, od_error *err);

/* Returns the mean of the largest ceil(fraction * count) of values
 * (count >= 1, fraction in (0, 1]); sorts values in place. */
double od_match_top_fraction_mean(float *values, int64_t count, double fraction);

/* Chooses the consensus group from the directed distance matrix
 * (count, count). eligible (count) marks the objects that may join it
 * (scored, not truncated, seen by two views); NULL means all. The group is
 * the max(2, ceil(m / 2)) eligible objects, m of them in all, with the
 * smallest median of (distance[a][b] + distance[b][a]) / 2 over the other
 * eligible objects b, ties to the lower index. Writes in_group (count) as
 * 0 or 1 and returns the group's size (m when m < 2). */
int od_match_consensus_group(const double *distance, const uint8_t *eligible, int count, uint8_t *in_group);

#endif
