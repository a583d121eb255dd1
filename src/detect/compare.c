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
#include "detect/color_features.h"
#include "detect/match.h"
#include "detect/voxel_lift.h"
#include "geometry/dbscan.h"
#include "geometry/obb.h"
#include "geometry/floor.h"
#include "geometry/visual_hull.h"
#include "io/image.h"
#include "teacher/mobilenetv2.h"
#include "teacher/teacher.h"

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

od_compare_options od_compare_options_default(void)
{
    od_compare_options options = {
        .features = OD_COMPARE_FEATURES_TEACHER,
        .teacher = OD_TEACHER_MOBILENETV2,
        .color_bins = OD_COLOR_FEATURES_DEFAULT_BINS,
        .color_stride = OD_COLOR_FEATURES_DEFAULT_STRIDE,
        .weights_path = OD_MOBILENETV2_DEFAULT_PATH,
        .layer = OD_COMPARE_DEFAULT_LAYER,
        .input_size = OD_COMPARE_DEFAULT_INPUT_SIZE,
        .eps = OD_COMPARE_DEFAULT_EPS,
        .min_points = OD_COMPARE_DEFAULT_MIN_POINTS,
        .top_fraction = OD_COMPARE_DEFAULT_TOP_FRACTION,
        .top_k = OD_COMPARE_DEFAULT_TOP_K,
        .odd_ratio = OD_COMPARE_DEFAULT_ODD_RATIO,
        .min_object_fraction = OD_COMPARE_DEFAULT_MIN_OBJECT_FRACTION,
        .grid = od_grid_default(),
        .occupancy = OD_COMPARE_OCCUPANCY_AUTO,
        .color = od_color_occupancy_options_default(),
        .foreground_threshold = OD_COLOR_DEFAULT_FOREGROUND_THRESHOLD,
        .floor_margin = OD_COMPARE_DEFAULT_FLOOR_MARGIN,
    };
    return options;
}

void od_compare_result_free(od_compare_result *result)
{
    if (result == NULL)
        return;
    for (int o = 0; o < result->object_count && result->objects != NULL; o++) {
        free(result->objects[o].seen_by);
        free(result->objects[o].reference);
    }
    free(result->objects);
    free(result->views);
    free(result->distance);
    free(result->similarity);
    free(result->consensus);
    free(result->occupied_voxels);
    free(result->occupied_object);
    free(result->occupied_difference);
    memset(result, 0, sizeof *result);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) ? -1 : (x > y);
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

/* Colour occupancy looks for a dense floor layer up to this height above
 * z = 0 (world units); objects, not the floor, fill layers higher up. */
#define OD_COMPARE_FLOOR_SEARCH_HEIGHT 0.1

static int view_has_mask(const od_scene_view *view, int object_count)
{
    if (view->mask_path != NULL)
        return 1;
    for (int o = 0; o < object_count && view->object_mask_paths != NULL; o++)
        if (view->object_mask_paths[o] != NULL)
            return 1;
    return 0;
}

/* Margins, in voxels, that an object's box adds to its outermost occupied
 * voxel centres: each side of the footprint rectangle, and the top. With
 * an exact occupancy test of voxel centres, the surface lies half a voxel
 * beyond the outermost centres on average. A hull from few views is larger
 * than the object, so it cancels part of that half voxel.
 * Measured against the ground truth of two generated sets of 12 scenes
 * (`oddone generate --scenes 12 --views 10`, 40 spheres, tori and flat
 * boxes each, 2 cm voxels, the 5 views that `oddone eval --views 5`
 * picks): with margins of 0.5, box sides came out 0.49 voxel too long and
 * heights 0.48 voxel too tall on average, the flat boxes' sides 1.1 too
 * long. With the margins below, the mean errors over the 120 objects are
 * -0.01 voxel (sides) and 0.00 (height). Per shape the sides stay about
 * -0.1 (sphere), -0.6 (torus) and +0.7 (box) voxel off. */
#define OD_COMPARE_BOX_SIDE_MARGIN 0.25
#define OD_COMPARE_BOX_TOP_MARGIN 0.02

/* Returns 1 when a voxel lies on the grid's side faces or top, where an
 * object that goes on would be cut. The bottom is the floor, which objects
 * rest on. */
static int on_grid_edge(const od_grid *grid, const int32_t voxel[3])
{
    return voxel[0] == 0 || voxel[0] == grid->dims[0] - 1 || voxel[1] == 0 || voxel[1] == grid->dims[1] - 1 ||
           voxel[2] == grid->dims[2] - 1;
}

/* Clusters the occupied voxels (result->grid) into objects: fills the
 * result's occupied voxels, objects, boxes, truncation and view flags, and
 * allocates its matrices. */
static int localize(const od_scene *scene, const int *views, int view_count, const od_compare_options *options,
                    const uint8_t *occupied, od_compare_result *result, od_error *err)
{
    const od_grid *grid = &result->grid;
    int64_t voxels = od_grid_voxel_count(grid), point_count = 0;
    for (int64_t i = 0; i < voxels; i++)
        point_count += occupied[i] != 0;
    if (point_count == 0)
        return 0;
    int32_t *points = malloc((size_t)point_count * 3 * sizeof *points);
    int32_t *labels = malloc((size_t)point_count * sizeof *labels);
    float *difference = malloc((size_t)point_count * sizeof *difference);
    result->occupied_voxels = points;
    result->occupied_object = labels;
    result->occupied_difference = difference;
    if (points == NULL || labels == NULL || difference == NULL)
        return od_fail(err, "compare: out of memory");
    result->occupied_count = point_count;
    int64_t X = grid->dims[0], Y = grid->dims[1], Z = grid->dims[2], p = 0;
    for (int64_t k = 0; k < Z; k++)
        for (int64_t j = 0; j < Y; j++)
            for (int64_t i = 0; i < X; i++)
                if (occupied[od_grid_index(grid, i, j, k)]) {
                    points[3 * p] = (int32_t)i;
                    points[3 * p + 1] = (int32_t)j;
                    points[3 * p + 2] = (int32_t)k;
                    difference[p] = NAN;
                    p++;
                }

    od_dbscan *dbscan = od_dbscan_new(options->eps, options->min_points);
    if (dbscan == NULL)
        return od_fail(err, "compare: invalid DBSCAN eps %g or min_points %d", options->eps, options->min_points);
    int status = od_dbscan_run(dbscan, points, point_count, labels, err);
    int clusters = (int)od_dbscan_cluster_count(dbscan);
    od_dbscan_free(dbscan);
    if (status != 0)
        return -1;

    /* Clusters far smaller than the largest are dropped: with few views the
     * hull keeps small ghost regions where only two or three views' masks
     * overlap by chance, away from any object. */
    int64_t *sizes = calloc((size_t)(clusters > 0 ? clusters : 1), sizeof *sizes);
    int32_t *renumber = malloc((size_t)(clusters > 0 ? clusters : 1) * sizeof *renumber);
    if (sizes == NULL || renumber == NULL) {
        free(sizes);
        free(renumber);
        return od_fail(err, "compare: out of memory");
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

    size_t cells = (size_t)(objects > 0 ? objects * objects : 1);
    result->objects = calloc((size_t)(objects > 0 ? objects : 1), sizeof *result->objects);
    result->distance = calloc(cells, sizeof *result->distance);
    result->similarity = calloc(cells, sizeof *result->similarity);
    result->consensus = calloc((size_t)(objects > 0 ? objects : 1), 1);
    if (result->objects == NULL || result->distance == NULL || result->similarity == NULL ||
        result->consensus == NULL)
        return od_fail(err, "compare: out of memory");
    result->object_count = objects;

    /* Boxes. od_box_fit_voxel_centres puts voxel (i, j, k)'s centre at
     * origin + size * (i, j, k). */
    double centre_origin[3];
    for (int a = 0; a < 3; a++)
        centre_origin[a] = grid->origin[a] + 0.5 * grid->voxel_size;
    for (int64_t q = 0; q < point_count; q++)
        if (labels[q] >= 0 && on_grid_edge(grid, points + 3 * q))
            result->objects[labels[q]].truncated = 1;
    for (int o = 0; o < objects; o++) {
        od_compare_object *object = &result->objects[o];
        if (od_box_fit_voxel_centres(points, labels, point_count, o, centre_origin, grid->voxel_size,
                                     OD_COMPARE_BOX_SIDE_MARGIN, OD_COMPARE_BOX_TOP_MARGIN, &object->box, err) != 0)
            return -1;
        /* Colour occupancy loses the layers next to the floor, and the
         * object rests on the floor, so the box reaches down to z = 0. */
        double bottom = object->box.center[2] - 0.5 * object->box.size[2];
        if (result->occupancy == OD_COMPARE_OCCUPANCY_COLOR && bottom > 0.0) {
            double top = bottom + object->box.size[2];
            object->box.center[2] = 0.5 * top;
            object->box.size[2] = top;
        }
        object->seen_by = calloc((size_t)view_count, 1);
        if (object->seen_by == NULL)
            return od_fail(err, "compare: out of memory");
        for (int i = 0; i < view_count; i++) {
            object->seen_by[i] = (uint8_t)od_camera_sees(&scene->views[views[i]].camera, object->box.center);
            object->view_count += object->seen_by[i];
        }
        object->few_views = object->view_count < 2;
    }
    for (int64_t q = 0; q < point_count; q++)
        if (labels[q] >= 0)
            result->objects[labels[q]].voxel_count++;
    return 0;
}

/* Picks every scored object's reference group: the consensus group of
 * the eligible objects without the object itself, or every other scored
 * object when that leaves none. Writes the scores as the mean distance to
 * the group. */
static int assign_references(od_compare_result *result, od_error *err)
{
    int objects = result->object_count;
    uint8_t scored[objects], eligible[objects];
    int eligible_count = 0;
    for (int o = 0; o < objects; o++) {
        const od_compare_object *object = &result->objects[o];
        scored[o] = object->scored_voxels > 0;
        eligible[o] = scored[o] && !object->truncated && !object->few_views;
        eligible_count += eligible[o];
    }
    od_match_consensus_group(result->distance, eligible_count >= 2 ? eligible : scored, objects, result->consensus);
    for (int a = 0; a < objects; a++) {
        od_compare_object *object = &result->objects[a];
        if (!scored[a])
            continue;
        object->reference = malloc((size_t)objects * sizeof *object->reference);
        if (object->reference == NULL)
            return od_fail(err, "compare: out of memory");
        for (int b = 0; b < objects; b++)
            if (b != a && result->consensus[b])
                object->reference[object->reference_count++] = b;
        if (object->reference_count == 0)
            for (int b = 0; b < objects; b++)
                if (b != a && scored[b])
                    object->reference[object->reference_count++] = b;
        if (object->reference_count == 0)
            continue;
        double sum = 0.0;
        for (int r = 0; r < object->reference_count; r++)
            sum += result->distance[a * objects + object->reference[r]];
        object->has_score = 1;
        object->score = sum / object->reference_count;
    }
    return 0;
}

/* Scores the objects of a localized result (detect/match.h): gathers each
 * object's L2-normalised voxel features, matches every pair of objects,
 * picks the reference groups and writes the scores, the similarity matrix
 * and every occupied voxel's difference. mean is the lifted feature of
 * every occupied voxel (occupied_count, channels) and count the views that
 * see it (occupied_count). */
static int score_objects(od_compare_result *result, const od_compare_options *options, const float *mean,
                         const int32_t *count, int64_t channels, od_error *err)
{
    int objects = result->object_count;
    int64_t point_count = result->occupied_count;
    const int32_t *labels = result->occupied_object;
    int status = -1;
    int64_t *offsets = calloc((size_t)objects + 1, sizeof *offsets);
    int64_t *fill = calloc((size_t)objects, sizeof *fill);
    int64_t *row_of_point = malloc((size_t)point_count * sizeof *row_of_point);
    float *features = NULL, *match = NULL, *topk = NULL, *scratch = NULL;
    if (offsets == NULL || fill == NULL || row_of_point == NULL) {
        od_fail(err, "compare: out of memory");
        goto done;
    }

    /* Per object rows: occupied voxels seen by a view, grouped by object. */
    for (int64_t q = 0; q < point_count; q++)
        if (labels[q] >= 0 && count[q] > 0)
            offsets[labels[q] + 1]++;
    for (int o = 0; o < objects; o++) {
        result->objects[o].scored_voxels = offsets[o + 1];
        offsets[o + 1] += offsets[o];
    }
    int64_t total = offsets[objects], largest = 1;
    for (int o = 0; o < objects; o++)
        largest = result->objects[o].scored_voxels > largest ? result->objects[o].scored_voxels : largest;
    features = od_alloc_floats((total > 0 ? total : 1) * channels);
    /* match[b * total + row]: the match distance of a row to object b. */
    match = od_alloc_floats((total > 0 ? total : 1) * objects);
    topk = od_alloc_floats(largest * options->top_k);
    scratch = od_alloc_floats(largest);
    if (features == NULL || match == NULL || topk == NULL || scratch == NULL) {
        od_fail(err, "compare: out of memory");
        goto done;
    }
    for (int64_t q = 0; q < point_count; q++) {
        row_of_point[q] = -1;
        if (labels[q] < 0 || count[q] <= 0)
            continue;
        int64_t row_index = offsets[labels[q]] + fill[labels[q]]++;
        row_of_point[q] = row_index;
        float *row = features + row_index * channels;
        const float *source = mean + q * channels;
        double norm = 0.0;
        for (int64_t c = 0; c < channels; c++)
            norm += (double)source[c] * source[c];
        float scale = norm > 0.0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
        for (int64_t c = 0; c < channels; c++)
            row[c] = source[c] * scale;
    }
    for (int64_t i = 0; i < total * objects; i++)
        match[i] = NAN;

    for (int a = 0; a < objects; a++)
        result->similarity[a * objects + a] = 1.0;
    if (objects < 2) {
        snprintf(result->note, sizeof result->note, "one object only: nothing to compare it with, so no score");
        status = 0;
        goto done;
    }

    /* Every ordered pair: match distances, then distance[a][b]. */
    for (int a = 0; a < objects; a++) {
        int64_t na = result->objects[a].scored_voxels;
        for (int b = 0; b < objects; b++) {
            int64_t nb = result->objects[b].scored_voxels;
            if (b == a || na == 0 || nb == 0)
                continue;
            int k = options->top_k < nb ? options->top_k : (int)nb;
            if (od_match_topk(features + offsets[a] * channels, na, features + offsets[b] * channels, nb, channels,
                              k, topk, NULL, err) != 0)
                goto done;
            float *row_match = match + (int64_t)b * total + offsets[a];
            for (int64_t i = 0; i < na; i++) {
                row_match[i] = topk[i * k + k - 1];
                scratch[i] = row_match[i];
            }
            result->distance[a * objects + b] = od_match_top_fraction_mean(scratch, na, options->top_fraction);
        }
    }
    for (int a = 0; a < objects; a++)
        for (int b = 0; b < objects; b++)
            if (a != b)
                result->similarity[a * objects + b] =
                    1.0 - 0.5 * (result->distance[a * objects + b] + result->distance[b * objects + a]);

    if (assign_references(result, err) != 0)
        goto done;

    /* Each voxel's difference: its mean match distance to the reference group. */
    for (int64_t q = 0; q < point_count; q++) {
        result->occupied_difference[q] = NAN;
        int a = labels[q];
        if (a < 0 || row_of_point[q] < 0 || !result->objects[a].has_score)
            continue;
        const od_compare_object *object = &result->objects[a];
        double sum = 0.0;
        for (int r = 0; r < object->reference_count; r++)
            sum += match[(int64_t)object->reference[r] * total + row_of_point[q]];
        result->occupied_difference[q] = (float)(sum / object->reference_count);
    }
    od_compare_label(result, options->odd_ratio);
    status = 0;

done:
    free(offsets);
    free(fill);
    free(row_of_point);
    od_free(features);
    od_free(match);
    od_free(topk);
    od_free(scratch);
    return status;
}

/* Colour occupancy (geometry/color_consistency.h): the floor texture from
 * every view, then the votes, then floor removal. Reads each image twice,
 * so that memory stays one view's. */
static int color_occupancy(const od_scene *scene, const int *views, int view_count,
                           const od_compare_options *options, od_color_consistency *colors, uint8_t *occupied,
                           od_compare_result *result, od_error *err)
{
    od_image image = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < view_count; i++) {
            int v = views[i];
            if (od_scene_read_view_image(scene, v, &image, err) != 0)
                return -1;
            int status = pass == 0 ? od_color_consistency_add_floor_view(colors, &scene->views[v].camera, &image, err)
                                   : od_color_consistency_add_view(colors, &scene->views[v].camera, &image, err);
            od_image_free(&image);
            if (status != 0)
                return -1;
        }
        if (pass == 0 && od_color_consistency_finish_floor(colors, err) != 0)
            return -1;
    }
    od_color_occupancy_options color = options->color;
    color.min_views = color.min_views > view_count ? view_count : color.min_views;
    if (od_color_consistency_finish(colors, &color, occupied, NULL, NULL, err) != 0)
        return -1;

    /* The floor: the plane z = 0 and a dense low layer, if any. */
    const od_grid *grid = &options->grid;
    double floor_top = options->floor_margin;
    result->floor_layer =
        (int)od_floor_find_layer(grid, occupied, 0.0, OD_COMPARE_FLOOR_SEARCH_HEIGHT, OD_FLOOR_DEFAULT_LAYER_FRACTION);
    if (result->floor_layer >= 0) {
        double layer_top = grid->origin[2] + (result->floor_layer + 1) * grid->voxel_size;
        if (layer_top + options->floor_margin > floor_top)
            floor_top = layer_top + options->floor_margin;
    }
    od_floor_remove_below(grid, occupied, floor_top);
    return 0;
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
    if (options->input_size != 0 && options->input_size < 32)
        return od_fail(err, "compare: input size %d is below 32 pixels", options->input_size);
    if (options->features == OD_COMPARE_FEATURES_COLOR && (options->color_bins < 1 || options->color_stride < 1))
        return od_fail(err, "compare: colour bins %d and stride %d must be at least 1", options->color_bins,
                       options->color_stride);
    if (!(options->top_fraction > 0.0 && options->top_fraction <= 1.0))
        return od_fail(err, "compare: top fraction %g is not in (0, 1]", options->top_fraction);
    if (options->top_k < 1 || options->top_k > OD_MATCH_MAX_K)
        return od_fail(err, "compare: top k %d is not in [1, %d]", options->top_k, OD_MATCH_MAX_K);
    if (!(options->min_object_fraction >= 0.0 && options->min_object_fraction <= 1.0))
        return od_fail(err, "compare: minimum object fraction %g is not in [0, 1]", options->min_object_fraction);
    if (od_grid_validate(&options->grid, err) != 0)
        return -1;
    if (!(options->floor_margin >= 0.0 && options->floor_margin < 1e6))
        return od_fail(err, "compare: floor margin %g is not a finite value >= 0", options->floor_margin);
    if (!(options->foreground_threshold >= 0.0 && options->foreground_threshold < 1e6))
        return od_fail(err, "compare: foreground threshold %g is not a finite value >= 0",
                       options->foreground_threshold);

    double start = now_seconds();
    const od_grid *grid = &options->grid;
    int64_t voxels = od_grid_voxel_count(grid);
    int status = -1;
    od_teacher *teacher = NULL, *opened_teacher = NULL;
    od_voxel_lift *lift = NULL;
    od_visual_hull *hull = NULL;
    od_color_consistency *colors = NULL;
    float *features = NULL, *mean = NULL;
    int32_t *count = NULL;
    uint8_t *occupied = NULL;
    od_image image = {0}, resized = {0}, mask = {0};

    result->views = malloc((size_t)view_count * sizeof *result->views);
    if (result->views == NULL)
        return od_fail(err, "compare: out of memory");
    memcpy(result->views, views, (size_t)view_count * sizeof *views);
    result->view_count = view_count;

    /* Features: the teacher, or colour histograms. Cell (i, j) of a map
     * covers the input around pixel offset + stride * (i, j). */
    int64_t fh, fw, channels, stride, input_size;
    double offset;
    if (options->features == OD_COMPARE_FEATURES_TEACHER) {
        teacher = options->teacher_instance;
        if (teacher == NULL) {
            teacher = opened_teacher =
                od_teacher_open(options->teacher, options->weights_path, options->layer, options->input_size, err);
            if (teacher == NULL)
                goto done;
        }
        od_teacher_info info = od_teacher_get_info(teacher);
        fh = info.height;
        fw = info.width;
        channels = info.channels;
        stride = info.stride;
        offset = info.offset;
        input_size = info.input_size;
        snprintf(result->feature_source, sizeof result->feature_source, "%s", info.network_name);
        snprintf(result->feature_layer, sizeof result->feature_layer, "%s", info.layer);
    } else {
        input_size = options->input_size > 0 ? options->input_size : OD_COMPARE_DEFAULT_INPUT_SIZE;
        stride = options->color_stride;
        fh = fw = input_size / stride;
        channels = 3 * (int64_t)options->color_bins;
        offset = 0.5 * (double)(stride - 1);
        snprintf(result->feature_source, sizeof result->feature_source, "colour");
        snprintf(result->feature_layer, sizeof result->feature_layer, "histogram");
    }
    if (stride < 1 || fh < 2 || fw < 2) {
        od_fail(err, "compare: %s %s gives a %lld x %lld map at input %lld; use a larger input",
                result->feature_source, result->feature_layer, (long long)fh, (long long)fw, (long long)input_size);
        goto done;
    }
    result->feature_height = (int)fh;
    result->feature_width = (int)fw;
    result->feature_channels = (int)channels;
    result->stride = (int)stride;
    result->input_size = (int)input_size;
    result->seconds_load = now_seconds() - start;

    /* Occupancy: masks when every view has one, unless colour is requested. */
    od_compare_occupancy occupancy = options->occupancy;
    if (occupancy == OD_COMPARE_OCCUPANCY_AUTO) {
        occupancy = OD_COMPARE_OCCUPANCY_MASKS;
        for (int i = 0; i < view_count; i++)
            if (!view_has_mask(&scene->views[views[i]], scene->object_count))
                occupancy = OD_COMPARE_OCCUPANCY_COLOR;
    }
    result->occupancy = occupancy;
    result->floor_layer = -1;

    occupied = malloc((size_t)voxels);
    if (occupancy == OD_COMPARE_OCCUPANCY_MASKS)
        hull = od_visual_hull_new(grid);
    else
        colors = od_color_consistency_new(grid, 0.0, options->foreground_threshold);
    if (occupied == NULL || (hull == NULL && colors == NULL)) {
        od_fail(err, "compare: out of memory");
        goto done;
    }

    /* Occupancy first, so that only the occupied voxels are lifted. */
    double t_occupancy = now_seconds();
    if (hull != NULL) {
        for (int i = 0; i < view_count; i++) {
            int v = views[i], has_mask = 0;
            if (od_scene_read_view_mask(scene, v, &mask, &has_mask, err) != 0)
                goto done;
            if (!has_mask) {
                od_fail(err,
                        "compare: view %d (%s) has no object mask; use colour occupancy (--occupancy colour) "
                        "for scenes without masks",
                        v, scene->views[v].name);
                goto done;
            }
            if (od_visual_hull_add_view(hull, &scene->views[v].camera, mask.pixels, mask.width, mask.height, err) !=
                0)
                goto done;
            od_image_free(&mask);
        }
        int min_views = view_count < 2 ? 1 : 2;
        if (od_visual_hull_finish(hull, OD_VISUAL_HULL_DEFAULT_TOLERANCE, min_views, occupied, NULL, err) != 0)
            goto done;
    } else if (color_occupancy(scene, views, view_count, options, colors, occupied, result, err) != 0) {
        goto done;
    }
    result->seconds_hull = now_seconds() - t_occupancy;

    /* Localization. */
    double t_cluster = now_seconds();
    result->grid = *grid;
    if (localize(scene, views, view_count, options, occupied, result, err) != 0)
        goto done;
    result->seconds_cluster = now_seconds() - t_cluster;
    if (result->occupied_count == 0) {
        snprintf(result->note, sizeof result->note, "no occupied voxels: %s",
                 occupancy == OD_COMPARE_OCCUPANCY_MASKS ? "the masks do not intersect in the grid"
                                                         : "no voxel has consistent colours that differ from the floor");
        status = 0;
        goto done;
    }
    if (result->object_count == 0) {
        snprintf(result->note, sizeof result->note, "no object found: every occupied voxel is DBSCAN noise");
        status = 0;
        goto done;
    }

    /* Features and lifting at the occupied voxels, one view at a time. */
    int64_t points = result->occupied_count;
    features = od_alloc_floats(fh * fw * channels);
    mean = od_alloc_floats(points * channels);
    count = malloc((size_t)points * sizeof *count);
    lift = od_voxel_lift_new(grid, result->occupied_voxels, points, channels);
    if (features == NULL || mean == NULL || count == NULL || lift == NULL) {
        od_fail(err, "compare: out of memory");
        goto done;
    }
    for (int i = 0; i < view_count; i++) {
        int v = views[i];
        double t0 = now_seconds();
        if (od_scene_read_view_image(scene, v, &image, err) != 0)
            goto done;
        if (teacher != NULL) {
            if (od_teacher_run(teacher, &image, features, err) != 0)
                goto done;
        } else {
            if (od_image_resize(&image, (int)input_size, (int)input_size, &resized, err) != 0 ||
                od_color_histogram_features(&resized, (int)stride, options->color_bins, features, err) != 0)
                goto done;
            od_image_free(&resized);
        }
        od_image_free(&image);
        double t1 = now_seconds();
        result->seconds_features += t1 - t0;

        /* The lift puts cell j at input pixel stride * j + (stride - 1) / 2;
         * K is shifted by the difference to the map's own offset. */
        od_camera input_camera = scene->views[v].camera;
        od_camera_resize(&input_camera, (int)input_size, (int)input_size);
        double shift = 0.5 * (double)(stride - 1) - offset;
        input_camera.K[2] += shift;
        input_camera.K[5] += shift;
        if (od_voxel_lift_add_view(lift, &input_camera, features, fh, fw, (int)stride, err) != 0)
            goto done;
        result->seconds_lift += now_seconds() - t1;
    }
    double t_finish = now_seconds();
    if (od_voxel_lift_finish(lift, mean, count, err) != 0)
        goto done;
    result->seconds_lift += now_seconds() - t_finish;

    /* Scoring. */
    double t_score = now_seconds();
    if (score_objects(result, options, mean, count, channels, err) != 0)
        goto done;
    result->seconds_score = now_seconds() - t_score;
    status = 0;

done:
    result->seconds_total = now_seconds() - start;
    od_image_free(&image);
    od_image_free(&resized);
    od_image_free(&mask);
    od_teacher_free(opened_teacher);
    od_voxel_lift_free(lift);
    od_visual_hull_free(hull);
    od_color_consistency_free(colors);
    od_free(features);
    od_free(mean);
    free(count);
    free(occupied);
    if (status != 0)
        od_compare_result_free(result);
    else
        od_log_info("compare", "%d objects from %d views in %.3f s", result->object_count, view_count,
                    result->seconds_total);
    return status;
}
