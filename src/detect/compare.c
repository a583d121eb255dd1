/* The training-free detector; see compare.h for the stages. */
#include "detect/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/gemm.h"
#include "core/log.h"
#include "core/mem.h"
#include "geometry/dbscan.h"
#include "geometry/lift.h"
#include "geometry/obb.h"
#include "geometry/visual_hull.h"
#include "io/image.h"
#include "teacher/mobilenetv2.h"

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

od_compare_options od_compare_options_default(void)
{
    od_compare_options options = {
        .weights_path = OD_MOBILENETV2_DEFAULT_PATH,
        .layer = OD_COMPARE_DEFAULT_LAYER,
        .input_size = OD_COMPARE_DEFAULT_INPUT_SIZE,
        .eps = OD_COMPARE_DEFAULT_EPS,
        .min_points = OD_COMPARE_DEFAULT_MIN_POINTS,
        .top_fraction = OD_COMPARE_DEFAULT_TOP_FRACTION,
        .odd_ratio = OD_COMPARE_DEFAULT_ODD_RATIO,
        .min_object_fraction = OD_COMPARE_DEFAULT_MIN_OBJECT_FRACTION,
        .grid = od_grid_default(),
    };
    return options;
}

void od_compare_result_free(od_compare_result *result)
{
    if (result == NULL)
        return;
    for (int o = 0; o < result->object_count && result->objects != NULL; o++)
        free(result->objects[o].seen_by);
    free(result->objects);
    free(result->views);
    free(result->distance);
    memset(result, 0, sizeof *result);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) ? -1 : (x > y);
}

static int compare_floats_descending(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) ? -1 : (x < y);
}

/* Median of values (count >= 1); sorts values in place. */
static double median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

int od_compare_top(const od_compare_result *result)
{
    int top = -1;
    for (int o = 0; o < result->object_count; o++)
        if (result->objects[o].has_score && (top < 0 || result->objects[o].score > result->objects[top].score))
            top = o;
    return top;
}

int od_compare_label(od_compare_result *result, double odd_ratio)
{
    for (int o = 0; o < result->object_count; o++)
        result->objects[o].odd = 0;
    int top = od_compare_top(result);
    if (top < 0)
        return -1;
    double others[result->object_count > 0 ? result->object_count : 1];
    int count = 0;
    for (int o = 0; o < result->object_count; o++)
        if (o != top && result->objects[o].has_score)
            others[count++] = result->objects[o].score;
    if (count < 2)
        return -1;
    if (result->objects[top].score < odd_ratio * median(others, count))
        return -1;
    result->objects[top].odd = 1;
    return top;
}

/* distance[a * n + b]: for every row of fa (na, C), 1 - max cosine with the
 * rows of fb (nb, C); both L2-normalised. The largest `top` of the na
 * nearest-neighbour distances are averaged. sim is scratch (na, nb) and
 * nearest scratch (na). */
static double top_nearest_distance(const float *fa, int64_t na, const float *fb, int64_t nb, int64_t channels,
                                   int64_t top, float *sim, float *nearest)
{
    od_sgemm('N', 'T', na, nb, channels, 1.0f, fa, channels, fb, channels, 0.0f, sim, nb);
    for (int64_t i = 0; i < na; i++) {
        float best = -2.0f;
        const float *row = sim + i * nb;
        for (int64_t j = 0; j < nb; j++)
            best = row[j] > best ? row[j] : best;
        nearest[i] = 1.0f - best;
    }
    qsort(nearest, (size_t)na, sizeof *nearest, compare_floats_descending);
    double sum = 0.0;
    for (int64_t i = 0; i < top; i++)
        sum += nearest[i];
    return sum / (double)top;
}

int od_compare_detect(const od_scene *scene, const int *views, int view_count, const od_compare_options *options,
                      od_compare_result *result, od_error *err)
{
    memset(result, 0, sizeof *result);
    if (scene == NULL || views == NULL || options == NULL)
        return od_fail(err, "compare: NULL scene, views or options");
    if (view_count < 1)
        return od_fail(err, "compare: no views selected");
    for (int i = 0; i < view_count; i++)
        if (views[i] < 0 || views[i] >= scene->view_count)
            return od_fail(err, "compare: view %d does not exist; the scene has views 0 to %d", views[i],
                           scene->view_count - 1);
    if (options->input_size < 32)
        return od_fail(err, "compare: input size %d is below 32 pixels", options->input_size);
    if (!(options->top_fraction > 0.0 && options->top_fraction <= 1.0))
        return od_fail(err, "compare: top fraction %g is not in (0, 1]", options->top_fraction);
    if (!(options->min_object_fraction >= 0.0 && options->min_object_fraction <= 1.0))
        return od_fail(err, "compare: minimum object fraction %g is not in [0, 1]", options->min_object_fraction);
    if (od_grid_validate(&options->grid, err) != 0)
        return -1;

    double start = now_seconds();
    const od_grid *grid = &options->grid;
    int64_t voxels = od_grid_voxel_count(grid);
    int status = -1;
    od_mobilenetv2 *net = NULL;
    od_lift *lift = NULL;
    od_visual_hull *hull = NULL;
    od_dbscan *dbscan = NULL;
    float *features = NULL, *mean = NULL, *object_features = NULL, *sim = NULL, *nearest = NULL;
    int32_t *count = NULL, *points = NULL, *labels = NULL;
    uint8_t *occupied = NULL;
    int64_t *object_offsets = NULL;
    od_image image = {0}, resized = {0}, mask = {0};

    result->views = malloc((size_t)view_count * sizeof *result->views);
    if (result->views == NULL)
        return od_fail(err, "compare: out of memory");
    memcpy(result->views, views, (size_t)view_count * sizeof *views);
    result->view_count = view_count;

    /* Teacher. */
    net = od_mobilenetv2_load(options->weights_path, options->input_size, options->input_size, err);
    if (net == NULL)
        goto done;
    int64_t shape[3];
    if (od_mobilenetv2_layer_shape(net, options->layer, shape, err) != 0)
        goto done;
    int64_t fh = shape[0], fw = shape[1], channels = shape[2];
    int stride = (int)(options->input_size / fh);
    if (stride < 1 || fh < 2 || fw < 2) {
        od_fail(err, "compare: layer %s gives a %lld x %lld map at input %d; use a larger input", options->layer,
                (long long)fh, (long long)fw, options->input_size);
        goto done;
    }
    result->feature_height = (int)fh;
    result->feature_width = (int)fw;
    result->feature_channels = (int)channels;
    result->stride = stride;
    result->seconds_load = now_seconds() - start;

    features = od_alloc_floats(fh * fw * channels);
    lift = od_lift_new(grid, channels);
    hull = od_visual_hull_new(grid);
    if (features == NULL || lift == NULL || hull == NULL) {
        od_fail(err, "compare: out of memory");
        goto done;
    }

    /* Features, lifting and hull, one view at a time. */
    for (int i = 0; i < view_count; i++) {
        int v = views[i];
        const od_camera *camera = &scene->views[v].camera;
        int has_mask = 0;
        double t0 = now_seconds();
        if (od_scene_read_view_mask(scene, v, &mask, &has_mask, err) != 0)
            goto done;
        if (!has_mask) {
            od_fail(err,
                    "compare: view %d (%s) has no object mask; detection without masks (occupancy from colour "
                    "consistency) is not supported yet",
                    v, scene->views[v].name);
            goto done;
        }
        if (od_visual_hull_add_view(hull, camera, mask.pixels, mask.width, mask.height, err) != 0)
            goto done;
        od_image_free(&mask);
        double t1 = now_seconds();
        result->seconds_hull += t1 - t0;

        if (od_scene_read_view_image(scene, v, &image, err) != 0)
            goto done;
        if (od_image_resize(&image, options->input_size, options->input_size, &resized, err) != 0)
            goto done;
        od_image_free(&image);
        if (od_mobilenetv2_forward(net, resized.pixels, options->layer, features, NULL, err) != 0)
            goto done;
        od_image_free(&resized);
        double t2 = now_seconds();
        result->seconds_features += t2 - t1;

        od_camera input_camera = *camera;
        od_camera_resize(&input_camera, options->input_size, options->input_size);
        if (od_lift_add_view(lift, &input_camera, features, fh, fw, stride, err) != 0)
            goto done;
        result->seconds_lift += now_seconds() - t2;
    }

    double t_finish = now_seconds();
    mean = od_alloc_floats(voxels * channels);
    count = malloc((size_t)voxels * sizeof *count);
    occupied = malloc((size_t)voxels);
    if (mean == NULL || count == NULL || occupied == NULL) {
        od_fail(err, "compare: out of memory");
        goto done;
    }
    if (od_lift_finish(lift, mean, count, err) != 0)
        goto done;
    double t_hull = now_seconds();
    result->seconds_lift += t_hull - t_finish;
    int min_views = view_count < 2 ? 1 : 2;
    if (od_visual_hull_finish(hull, OD_VISUAL_HULL_DEFAULT_TOLERANCE, min_views, occupied, NULL, err) != 0)
        goto done;
    result->seconds_hull += now_seconds() - t_hull;

    /* Localization. */
    double t_cluster = now_seconds();
    int64_t point_count = 0;
    for (int64_t i = 0; i < voxels; i++)
        point_count += occupied[i] != 0;
    if (point_count == 0) {
        snprintf(result->note, sizeof result->note, "no occupied voxels: the masks do not intersect in the grid");
        status = 0;
        goto done;
    }
    points = malloc((size_t)point_count * 3 * sizeof *points);
    labels = malloc((size_t)point_count * sizeof *labels);
    dbscan = od_dbscan_new(options->eps, options->min_points);
    if (points == NULL || labels == NULL || dbscan == NULL) {
        od_fail(err, dbscan == NULL ? "compare: invalid DBSCAN eps %g or min_points %d" : "compare: out of memory",
                options->eps, options->min_points);
        goto done;
    }
    int64_t X = grid->dims[0], Y = grid->dims[1], Z = grid->dims[2], p = 0;
    for (int64_t k = 0; k < Z; k++)
        for (int64_t j = 0; j < Y; j++)
            for (int64_t i = 0; i < X; i++)
                if (occupied[od_grid_index(grid, i, j, k)]) {
                    points[3 * p] = (int32_t)i;
                    points[3 * p + 1] = (int32_t)j;
                    points[3 * p + 2] = (int32_t)k;
                    p++;
                }
    if (od_dbscan_run(dbscan, points, point_count, labels, err) != 0)
        goto done;
    /* Clusters far smaller than the largest are dropped: with few views the
     * hull keeps small ghost regions where only two or three views' masks
     * overlap by chance, away from any object. */
    int clusters = (int)od_dbscan_cluster_count(dbscan);
    int64_t *sizes = calloc((size_t)(clusters > 0 ? clusters : 1), sizeof *sizes);
    int32_t *renumber = malloc((size_t)(clusters > 0 ? clusters : 1) * sizeof *renumber);
    if (sizes == NULL || renumber == NULL) {
        free(sizes);
        free(renumber);
        od_fail(err, "compare: out of memory");
        goto done;
    }
    int64_t biggest = 0;
    for (int64_t q = 0; q < point_count; q++)
        if (labels[q] >= 0)
            sizes[labels[q]]++;
    for (int c = 0; c < clusters; c++)
        biggest = sizes[c] > biggest ? sizes[c] : biggest;
    int objects = 0;
    for (int c = 0; c < clusters; c++)
        renumber[c] = (double)sizes[c] >= options->min_object_fraction * (double)biggest ? objects++ : -1;
    for (int64_t q = 0; q < point_count; q++)
        if (labels[q] >= 0)
            labels[q] = renumber[labels[q]];
    result->dropped_clusters = clusters - objects;
    free(sizes);
    free(renumber);
    result->objects = calloc((size_t)(objects > 0 ? objects : 1), sizeof *result->objects);
    result->distance = calloc((size_t)(objects > 0 ? objects * objects : 1), sizeof *result->distance);
    if (result->objects == NULL || result->distance == NULL) {
        od_fail(err, "compare: out of memory");
        goto done;
    }
    result->object_count = objects;
    /* od_box_fit_voxels puts voxel (i, j, k)'s centre at origin + size * (i, j, k). */
    double centre_origin[3];
    for (int a = 0; a < 3; a++)
        centre_origin[a] = grid->origin[a] + 0.5 * grid->voxel_size;
    for (int o = 0; o < objects; o++) {
        od_compare_object *object = &result->objects[o];
        if (od_box_fit_voxels(points, labels, point_count, o, centre_origin, grid->voxel_size, &object->box, err) != 0)
            goto done;
        object->seen_by = calloc((size_t)view_count, 1);
        if (object->seen_by == NULL) {
            od_fail(err, "compare: out of memory");
            goto done;
        }
        for (int i = 0; i < view_count; i++) {
            object->seen_by[i] = (uint8_t)od_camera_sees(&scene->views[views[i]].camera, object->box.center);
            object->view_count += object->seen_by[i];
        }
        object->few_views = object->view_count < 2;
    }
    result->seconds_cluster = now_seconds() - t_cluster;
    if (objects == 0) {
        snprintf(result->note, sizeof result->note, "no object found: every occupied voxel is DBSCAN noise");
        status = 0;
        goto done;
    }

    /* Per object features: occupied voxels seen by a view, L2-normalised,
     * grouped by object. */
    double t_score = now_seconds();
    object_offsets = calloc((size_t)objects + 1, sizeof *object_offsets);
    if (object_offsets == NULL) {
        od_fail(err, "compare: out of memory");
        goto done;
    }
    for (int64_t q = 0; q < point_count; q++) {
        int64_t v = od_grid_index(grid, points[3 * q], points[3 * q + 1], points[3 * q + 2]);
        if (labels[q] >= 0) {
            result->objects[labels[q]].voxel_count++;
            if (count[v] > 0)
                object_offsets[labels[q] + 1]++;
        }
    }
    for (int o = 0; o < objects; o++) {
        result->objects[o].scored_voxels = object_offsets[o + 1];
        object_offsets[o + 1] += object_offsets[o];
    }
    int64_t total = object_offsets[objects], largest = 1;
    for (int o = 0; o < objects; o++)
        largest = result->objects[o].scored_voxels > largest ? result->objects[o].scored_voxels : largest;
    object_features = od_alloc_floats((total > 0 ? total : 1) * channels);
    sim = od_alloc_floats(largest * largest);
    nearest = od_alloc_floats(largest);
    int64_t *fill = calloc((size_t)objects, sizeof *fill);
    if (object_features == NULL || sim == NULL || nearest == NULL || fill == NULL) {
        free(fill);
        od_fail(err, "compare: out of memory");
        goto done;
    }
    for (int64_t q = 0; q < point_count; q++) {
        int64_t v = od_grid_index(grid, points[3 * q], points[3 * q + 1], points[3 * q + 2]);
        if (labels[q] < 0 || count[v] <= 0)
            continue;
        float *row = object_features + (object_offsets[labels[q]] + fill[labels[q]]++) * channels;
        const float *source = mean + v * channels;
        double norm = 0.0;
        for (int64_t c = 0; c < channels; c++)
            norm += (double)source[c] * source[c];
        float scale = norm > 0.0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
        for (int64_t c = 0; c < channels; c++)
            row[c] = source[c] * scale;
    }
    free(fill);

    if (objects < 2) {
        snprintf(result->note, sizeof result->note, "one object only: nothing to compare it with, so no score");
    } else {
        for (int a = 0; a < objects; a++) {
            int64_t na = result->objects[a].scored_voxels;
            if (na == 0)
                continue;
            int64_t top = (int64_t)ceil(options->top_fraction * (double)na);
            top = top < 1 ? 1 : top;
            for (int b = 0; b < objects; b++) {
                int64_t nb = result->objects[b].scored_voxels;
                if (b == a || nb == 0)
                    continue;
                result->distance[a * objects + b] =
                    top_nearest_distance(object_features + object_offsets[a] * channels, na,
                                         object_features + object_offsets[b] * channels, nb, channels, top, sim,
                                         nearest);
            }
        }
        for (int a = 0; a < objects; a++) {
            double others[objects];
            int n = 0;
            for (int b = 0; b < objects; b++)
                if (b != a && result->objects[a].scored_voxels > 0 && result->objects[b].scored_voxels > 0)
                    others[n++] = result->distance[a * objects + b];
            if (n > 0) {
                result->objects[a].has_score = 1;
                result->objects[a].score = median(others, n);
            }
        }
        od_compare_label(result, options->odd_ratio);
    }
    result->seconds_score = now_seconds() - t_score;
    status = 0;

done:
    result->seconds_total = now_seconds() - start;
    od_image_free(&image);
    od_image_free(&resized);
    od_image_free(&mask);
    od_mobilenetv2_free(net);
    od_lift_free(lift);
    od_visual_hull_free(hull);
    od_dbscan_free(dbscan);
    od_free(features);
    od_free(mean);
    od_free(object_features);
    od_free(sim);
    od_free(nearest);
    free(count);
    free(points);
    free(labels);
    free(occupied);
    free(object_offsets);
    if (status != 0)
        od_compare_result_free(result);
    else
        od_log_info("compare", "%d objects from %d views in %.3f s", result->object_count, view_count,
                    result->seconds_total);
    return status;
}
