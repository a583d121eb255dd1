/* Localization from the learned density; see localize.h. */
#include "model/localize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "detect/compare.h"
#include "geometry/dbscan.h"
#include "geometry/floor.h"
#include "geometry/obb.h"
#include "nn/render.h"

od_localize_options od_localize_options_default(double density_threshold)
{
    od_localize_options options = {
        .density_threshold = density_threshold,
        .eps = OD_COMPARE_DEFAULT_EPS,
        .min_points = OD_COMPARE_DEFAULT_MIN_POINTS,
        .min_object_fraction = OD_COMPARE_DEFAULT_MIN_OBJECT_FRACTION,
    };
    return options;
}

void od_localization_free(od_localization *result)
{
    if (result == NULL)
        return;
    free(result->voxels);
    free(result->labels);
    free(result->boxes);
    free(result->voxel_counts);
    free(result->truncated);
    memset(result, 0, sizeof *result);
    result->floor_layer = -1;
}

static int check_options(const od_localize_options *options, od_error *err)
{
    if (!(options->density_threshold > 0.0 && isfinite(options->density_threshold)))
        return od_fail(err, "localize: density threshold %g is not a finite value > 0", options->density_threshold);
    if (!(options->eps > 0.0 && options->eps <= OD_DBSCAN_MAX_EPS))
        return od_fail(err, "localize: DBSCAN eps %g is not in (0, %g]", options->eps, OD_DBSCAN_MAX_EPS);
    if (options->min_points < 1)
        return od_fail(err, "localize: DBSCAN min_points %d is not >= 1", options->min_points);
    if (!(options->min_object_fraction >= 0.0 && options->min_object_fraction <= 1.0))
        return od_fail(err, "localize: minimum object fraction %g is not in [0, 1]", options->min_object_fraction);
    return 0;
}

/* Marks the voxels whose softplus density reaches the threshold, then
 * clears a dense floor layer and everything below it. */
static int threshold_density(const float *density, const od_grid *grid, double threshold, uint8_t *occupied,
                             int *floor_layer, od_error *err)
{
    int64_t count = od_grid_voxel_count(grid);
    for (int64_t v = 0; v < count; v++) {
        if (!isfinite(density[v])) {
            int64_t x = v % grid->dims[0], y = v / grid->dims[0] % grid->dims[1], z = v / grid->dims[0] / grid->dims[1];
            return od_fail(err, "localize: the density of voxel (x %lld, y %lld, z %lld) is %g, not a finite value",
                           (long long)x, (long long)y, (long long)z, (double)density[v]);
        }
    }
    /* One call for the whole volume: the activation opens a parallel region per call. */
    float *sigma = od_alloc_floats(count);
    if (sigma == NULL)
        return od_fail(err, "localize: out of memory for %lld voxels", (long long)count);
    od_render_density_activation(sigma, density, count);
    for (int64_t v = 0; v < count; v++)
        occupied[v] = (double)sigma[v] >= threshold;
    od_free(sigma);
    *floor_layer = (int)od_floor_find_layer(grid, occupied, 0.0, OD_LOCALIZE_FLOOR_SEARCH_HEIGHT,
                                            OD_FLOOR_DEFAULT_LAYER_FRACTION);
    if (*floor_layer >= 0)
        od_floor_remove_below(grid, occupied, grid->origin[2] + (*floor_layer + 1) * grid->voxel_size);
    return 0;
}

/* Drops clusters smaller than min_fraction of the largest and renumbers the
 * others in order; returns the number kept or -1 without memory. */
static int drop_small_clusters(int32_t *labels, int64_t count, int clusters, double min_fraction)
{
    int64_t *sizes = calloc((size_t)(clusters > 0 ? clusters : 1), sizeof *sizes);
    int32_t *renumber = malloc((size_t)(clusters > 0 ? clusters : 1) * sizeof *renumber);
    if (sizes == NULL || renumber == NULL) {
        free(sizes);
        free(renumber);
        return -1;
    }
    for (int64_t q = 0; q < count; q++)
        if (labels[q] >= 0)
            sizes[labels[q]]++;
    int64_t biggest = 0;
    for (int c = 0; c < clusters; c++)
        biggest = sizes[c] > biggest ? sizes[c] : biggest;
    int kept = 0;
    for (int c = 0; c < clusters; c++)
        renumber[c] = (double)sizes[c] >= min_fraction * (double)biggest ? kept++ : -1;
    for (int64_t q = 0; q < count; q++)
        if (labels[q] >= 0)
            labels[q] = renumber[labels[q]];
    free(sizes);
    free(renumber);
    return kept;
}

/* Returns 1 when a voxel lies on the grid's side faces or top. The bottom
 * is the floor, which objects rest on, so it cuts nothing. */
static int on_grid_edge(const od_grid *grid, const int32_t voxel[3])
{
    return voxel[0] == 0 || voxel[0] == grid->dims[0] - 1 || voxel[1] == 0 || voxel[1] == grid->dims[1] - 1 ||
           voxel[2] == grid->dims[2] - 1;
}

static int fit_boxes(const od_grid *grid, od_localization *result, od_error *err)
{
    int objects = result->object_count;
    result->boxes = calloc((size_t)(objects > 0 ? objects : 1), sizeof *result->boxes);
    result->voxel_counts = calloc((size_t)(objects > 0 ? objects : 1), sizeof *result->voxel_counts);
    result->truncated = calloc((size_t)(objects > 0 ? objects : 1), 1);
    if (result->boxes == NULL || result->voxel_counts == NULL || result->truncated == NULL)
        return od_fail(err, "localize: out of memory");
    for (int64_t q = 0; q < result->occupied_count; q++) {
        int32_t label = result->labels[q];
        if (label < 0)
            continue;
        result->voxel_counts[label]++;
        if (on_grid_edge(grid, result->voxels + 3 * q))
            result->truncated[label] = 1;
    }

    /* od_box_fit_voxel_centres puts voxel (i, j, k)'s centre at
     * origin + size * (i, j, k). */
    double centre_origin[3];
    for (int a = 0; a < 3; a++)
        centre_origin[a] = grid->origin[a] + 0.5 * grid->voxel_size;
    for (int o = 0; o < objects; o++) {
        od_box *box = &result->boxes[o];
        if (od_box_fit_voxel_centres(result->voxels, result->labels, result->occupied_count, o, centre_origin,
                                     grid->voxel_size, OD_LOCALIZE_BOX_SIDE_MARGIN, OD_LOCALIZE_BOX_TOP_MARGIN, box,
                                     err) != 0)
            return od_fail_context(err, "localize: object %d", o);
        double bottom = box->center[2] - 0.5 * box->size[2];
        if (bottom > 0.0) {
            double top = bottom + box->size[2];
            box->center[2] = 0.5 * top;
            box->size[2] = top;
        }
    }
    return 0;
}

int od_localize(const float *density, const od_grid *grid, const od_localize_options *options,
                od_localization *result, od_error *err)
{
    if (result == NULL)
        return od_fail(err, "localize: no result to fill");
    memset(result, 0, sizeof *result);
    result->floor_layer = -1;
    if (density == NULL || grid == NULL || options == NULL)
        return od_fail(err, "localize: needs a density volume, a grid and options");
    if (od_grid_validate(grid, err) != 0 || check_options(options, err) != 0)
        return -1;

    int64_t voxel_count = od_grid_voxel_count(grid);
    uint8_t *occupied = malloc((size_t)voxel_count);
    if (occupied == NULL)
        return od_fail(err, "localize: out of memory for %lld voxels", (long long)voxel_count);
    int status = threshold_density(density, grid, options->density_threshold, occupied, &result->floor_layer, err);
    int64_t count = 0;
    for (int64_t v = 0; status == 0 && v < voxel_count; v++)
        count += occupied[v];
    if (status == 0 && count > 0) {
        result->voxels = malloc((size_t)count * 3 * sizeof *result->voxels);
        result->labels = malloc((size_t)count * sizeof *result->labels);
        if (result->voxels == NULL || result->labels == NULL)
            status = od_fail(err, "localize: out of memory for %lld occupied voxels", (long long)count);
    }
    if (status == 0 && count > 0) {
        int64_t p = 0;
        for (int64_t k = 0; k < grid->dims[2]; k++)
            for (int64_t j = 0; j < grid->dims[1]; j++)
                for (int64_t i = 0; i < grid->dims[0]; i++)
                    if (occupied[od_grid_index(grid, i, j, k)]) {
                        result->voxels[3 * p] = (int32_t)i;
                        result->voxels[3 * p + 1] = (int32_t)j;
                        result->voxels[3 * p + 2] = (int32_t)k;
                        p++;
                    }
        result->occupied_count = count;
    }
    free(occupied);
    if (status != 0 || count == 0) {
        if (status != 0)
            od_localization_free(result);
        return status;
    }

    od_dbscan *dbscan = od_dbscan_new(options->eps, options->min_points);
    if (dbscan == NULL) {
        od_localization_free(result);
        return od_fail(err, "localize: out of memory for DBSCAN");
    }
    status = od_dbscan_run(dbscan, result->voxels, count, result->labels, err);
    int clusters = (int)od_dbscan_cluster_count(dbscan);
    od_dbscan_free(dbscan);
    if (status == 0) {
        int kept = drop_small_clusters(result->labels, count, clusters, options->min_object_fraction);
        if (kept < 0)
            status = od_fail(err, "localize: out of memory");
        else {
            result->object_count = kept;
            result->dropped_clusters = clusters - kept;
            status = fit_boxes(grid, result, err);
        }
    }
    if (status != 0)
        od_localization_free(result);
    return status;
}
