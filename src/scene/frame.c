/* The scene's world frame, and which part of it the cameras see.
 *
 * The release's world is fixed: metres, z up, floor at z = 0. Captured
 * scenes (transforms.json, COLMAP) come in whatever frame the capture app
 * or the reconstruction chose, so the loader estimates one and moves every
 * camera into it:
 * - up: the direction perpendicular to every camera's x axis, because an
 *   upright photo has a level x axis whatever its pitch. Its sign agrees
 *   with the mean of the photos' up vectors (-y in OpenCV axes) minus the
 *   mean viewing direction, so the convention is that photos are upright
 *   and look level or down. When the x axes do not pin up down (all
 *   cameras facing one way), up is the mean of the photos' up vectors.
 * - the look-at point: the point nearest to every camera's optical axis.
 * - the floor: the lowest dense plane of the sparse points (COLMAP
 *   points3D.txt) near the look-at point; without points, the plane
 *   through the look-at point.
 * - the scale: 1 for transforms.json (capture apps write metres); for COLMAP,
 *   whose units are arbitrary, the median camera distance to the look-at
 *   point becomes OD_SCENE_CAPTURE_CAMERA_DISTANCE metres.
 * The new world has z up, the floor at z = 0 and the origin on the floor
 * below the look-at point; x follows the file's x axis where it can.
 * Options override each estimate (up, scale, region of interest), or keep
 * the file's frame altogether. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "scene/scene_internal.h"

/* Sample points per axis of the region of interest when checking what the
 * views see; the region is thin in z, so fewer there. */
#define VISIBILITY_SAMPLES_XY 17
#define VISIBILITY_SAMPLES_Z 5

/* Floor search. The heights of the points within one camera distance
 * (horizontally) of the look-at point go into bins of FLOOR_BIN_FRACTION
 * of the median camera distance. The floor is the lowest bin, summed with
 * its neighbours, that has FLOOR_DENSE_FRACTION of the fullest one's
 * count and at least FLOOR_MIN_POINTS points. */
/* A box counts as truncated when a corner leaves the region of interest by
 * more than this fraction of the box's largest side. */
#define TRUNCATION_TOLERANCE 0.05

#define FLOOR_BIN_FRACTION 0.005
#define FLOOR_DENSE_FRACTION 0.25
#define FLOOR_MIN_POINTS 30
#define FLOOR_MAX_BINS 100000

/* ---- small linear algebra --------------------------------------------------------- */

static double dot3(const double a[3], const double b[3]) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

static void cross3(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static double normalize3(double v[3])
{
    double norm = sqrt(dot3(v, v));
    if (norm > 0.0)
        for (int k = 0; k < 3; k++)
            v[k] /= norm;
    return norm;
}

/* Eigen-decomposes a symmetric 3x3 matrix by Jacobi rotations: values in
 * ascending order, vectors[k] the unit eigenvector of values[k]. */
static void symmetric_eigen3(const double matrix[9], double values[3], double vectors[3][3])
{
    double a[3][3], v[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            a[i][j] = matrix[i * 3 + j];
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = fabs(a[0][1]) + fabs(a[0][2]) + fabs(a[1][2]);
        if (off < 1e-300)
            break;
        for (int p = 0; p < 2; p++) {
            for (int q = p + 1; q < 3; q++) {
                if (a[p][q] == 0.0)
                    continue;
                double theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                double t = (theta >= 0.0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < 3; k++) {
                    double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < 3; k++) {
                    double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 3; k++) {
                    double vkp = v[k][p], vkq = v[k][q];
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
        }
    }
    int order[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (a[order[j]][order[j]] < a[order[i]][order[i]]) {
                int swap = order[i];
                order[i] = order[j];
                order[j] = swap;
            }
    for (int k = 0; k < 3; k++) {
        values[k] = a[order[k]][order[k]];
        for (int i = 0; i < 3; i++)
            vectors[k][i] = v[i][order[k]];
    }
}

/* Solves the symmetric 3x3 system A x = b through its eigen-decomposition;
 * returns -1 when the smallest eigenvalue is below min_eigenvalue. */
static int solve_symmetric3(const double A[9], const double b[3], double min_eigenvalue, double x[3])
{
    double values[3], vectors[3][3];
    symmetric_eigen3(A, values, vectors);
    if (!(values[0] >= min_eigenvalue))
        return -1;
    for (int k = 0; k < 3; k++)
        x[k] = 0.0;
    for (int e = 0; e < 3; e++) {
        double coefficient = dot3(vectors[e], b) / values[e];
        for (int k = 0; k < 3; k++)
            x[k] += coefficient * vectors[e][k];
    }
    return 0;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (x < y)
        return -1;
    return x > y;
}

static double median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 == 1 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

/* ---- estimates ----------------------------------------------------------------------- */

/* Estimates up from the cameras (see the file's header); writes where the
 * estimate came from into `source`. */
static void estimate_up(const od_scene *scene, double up[3], const char **source)
{
    double scatter[9] = {0};
    double sign_hint[3] = {0, 0, 0};
    for (int v = 0; v < scene->view_count; v++) {
        double right[3], down[3], forward[3];
        od_camera_axes(&scene->views[v].camera, right, down, forward);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++)
                scatter[i * 3 + j] += right[i] * right[j];
            sign_hint[i] += -down[i] - forward[i];
        }
    }
    double values[3], vectors[3][3];
    symmetric_eigen3(scatter, values, vectors);
    int n = scene->view_count;
    /* The x axes must spread over the horizontal plane: the middle
     * eigenvalue is 0 when they are all parallel, and up to n / 2. */
    if (values[1] >= 0.01 * n && values[0] <= 0.25 * values[1]) {
        memcpy(up, vectors[0], 3 * sizeof *up);
        if (dot3(up, sign_hint) < 0.0)
            for (int k = 0; k < 3; k++)
                up[k] = -up[k];
        *source = "perpendicular to the cameras' x axes";
    } else {
        double mean_up[3] = {0, 0, 0};
        for (int v = 0; v < scene->view_count; v++) {
            double down[3];
            od_camera_axes(&scene->views[v].camera, NULL, down, NULL);
            for (int k = 0; k < 3; k++)
                mean_up[k] -= down[k];
        }
        memcpy(up, mean_up, sizeof mean_up);
        *source = "the cameras' mean up vector";
    }
    if (normalize3(up) == 0.0) {
        up[0] = 0.0;
        up[1] = 0.0;
        up[2] = 1.0;
        *source = "the file's z axis (the cameras give no direction)";
    }
}

/* Estimates the point nearest to every optical axis. Returns -1 when the
 * axes are (nearly) parallel, so that no such point is defined. */
static int estimate_look_at(const od_scene *scene, double look_at[3])
{
    double A[9] = {0}, b[3] = {0};
    for (int v = 0; v < scene->view_count; v++) {
        double center[3], forward[3];
        od_camera_center(&scene->views[v].camera, center);
        od_camera_axes(&scene->views[v].camera, NULL, NULL, forward);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                double projector = (i == j ? 1.0 : 0.0) - forward[i] * forward[j];
                A[i * 3 + j] += projector;
                b[i] += projector * center[j];
            }
        }
    }
    /* An eigenvalue of 0.01 n means the axes span about 6 degrees. */
    return solve_symmetric3(A, b, 0.01 * scene->view_count, look_at);
}

/* Returns the median distance from the cameras to `point`. */
static double median_camera_distance(const od_scene *scene, const double point[3])
{
    double *distances = malloc((size_t)scene->view_count * sizeof *distances);
    if (distances == NULL)
        return 1.0;
    for (int v = 0; v < scene->view_count; v++) {
        double center[3];
        od_camera_center(&scene->views[v].camera, center);
        double offset[3] = {center[0] - point[0], center[1] - point[1], center[2] - point[2]};
        distances[v] = sqrt(dot3(offset, offset));
    }
    double result = median(distances, scene->view_count);
    free(distances);
    return result;
}

/* Finds the height (along up) of the lowest dense plane of the sparse
 * points near the look-at point. Returns -1 when there are too few points. */
static int estimate_floor_from_points(const od_scene *scene, const double up[3], const double look_at[3],
                                      double camera_distance, double *floor_height)
{
    int64_t count = scene->sparse_point_count;
    if (count < FLOOR_MIN_POINTS || !(camera_distance > 0.0))
        return -1;
    double *heights = malloc((size_t)count * sizeof *heights);
    if (heights == NULL)
        return -1;
    int near = 0;
    double look_at_height = dot3(up, look_at);
    for (int64_t i = 0; i < count; i++) {
        const double *p = &scene->sparse_points[i * 3];
        double offset[3] = {p[0] - look_at[0], p[1] - look_at[1], p[2] - look_at[2]};
        double along = dot3(offset, up);
        double horizontal2 = dot3(offset, offset) - along * along;
        if (horizontal2 <= camera_distance * camera_distance)
            heights[near++] = look_at_height + along;
    }
    if (near < FLOOR_MIN_POINTS) {
        free(heights);
        return -1;
    }
    qsort(heights, (size_t)near, sizeof *heights, compare_doubles);
    double low = heights[0], high = heights[near - 1];
    double bin_width = FLOOR_BIN_FRACTION * camera_distance;
    if ((high - low) / bin_width > FLOOR_MAX_BINS)
        bin_width = (high - low) / FLOOR_MAX_BINS;
    int bins = (int)((high - low) / bin_width) + 1;
    int *histogram = calloc((size_t)bins, sizeof *histogram);
    if (histogram == NULL) {
        free(heights);
        return -1;
    }
    for (int i = 0; i < near; i++) {
        int bin = (int)((heights[i] - low) / bin_width);
        histogram[bin < bins ? bin : bins - 1]++;
    }

    /* Sum each bin with its neighbours, so that a plane a little off the
     * estimated up, spread over a few bins, still counts as one. */
    int fullest = 0;
    int *smoothed = malloc((size_t)bins * sizeof *smoothed);
    if (smoothed == NULL) {
        free(histogram);
        free(heights);
        return -1;
    }
    for (int b = 0; b < bins; b++) {
        smoothed[b] = histogram[b] + (b > 0 ? histogram[b - 1] : 0) + (b + 1 < bins ? histogram[b + 1] : 0);
        if (smoothed[b] > fullest)
            fullest = smoothed[b];
    }
    int floor_bin = -1;
    for (int b = 0; b < bins && floor_bin < 0; b++)
        if (smoothed[b] >= FLOOR_MIN_POINTS && smoothed[b] >= FLOOR_DENSE_FRACTION * fullest)
            floor_bin = b;
    int status = -1;
    if (floor_bin >= 0) {
        /* The median height of the points in the chosen bins. */
        double lower = low + (floor_bin - 1) * bin_width, upper = low + (floor_bin + 2) * bin_width;
        int first = 0, last = near;
        while (first < near && heights[first] < lower)
            first++;
        while (last > first && heights[last - 1] >= upper)
            last--;
        if (last > first) {
            *floor_height = heights[first + (last - first) / 2];
            status = 0;
        }
    }
    free(smoothed);
    free(histogram);
    free(heights);
    return status;
}

/* ---- applying a frame ---------------------------------------------------------------- */

/* Moves every camera, object and the region into the frame where a file
 * point p becomes scale * rotation * (p - origin). */
static void apply_similarity(od_scene *scene, const double rotation[9], const double origin[3], double scale)
{
    for (int v = 0; v < scene->view_count; v++) {
        double *m = scene->views[v].camera.world_to_camera;
        /* New R = R rotation^T; new t = scale (R origin + t). */
        double R[9], t[3];
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++)
                R[i * 3 + j] = m[i * 4 + j];
            t[i] = m[i * 4 + 3];
        }
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                double sum = 0.0;
                for (int k = 0; k < 3; k++)
                    sum += R[i * 3 + k] * rotation[j * 3 + k];
                m[i * 4 + j] = sum;
            }
            m[i * 4 + 3] = scale * (R[i * 3 + 0] * origin[0] + R[i * 3 + 1] * origin[1] + R[i * 3 + 2] * origin[2] +
                                    t[i]);
        }
    }
    /* Objects exist only in the release, whose rotation is the identity or
     * a turn about z, so a yaw stays a yaw. */
    double yaw_change = atan2(rotation[3], rotation[0]);
    for (int o = 0; o < scene->object_count; o++) {
        od_box *box = &scene->objects[o].box;
        double offset[3] = {box->center[0] - origin[0], box->center[1] - origin[1], box->center[2] - origin[2]};
        for (int i = 0; i < 3; i++) {
            box->center[i] = scale * dot3(&rotation[i * 3], offset);
            box->size[i] *= scale;
        }
        box->yaw += yaw_change;
    }
    double *f = scene->world_from_file;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            f[i * 4 + j] = scale * rotation[i * 3 + j];
        f[i * 4 + 3] = -scale * dot3(&rotation[i * 3], origin);
    }
    f[12] = f[13] = f[14] = 0.0;
    f[15] = 1.0;
}

/* Builds the rotation that takes `up` to +z and the file's x axis (or y,
 * when x is nearly vertical) to the plane's x direction. */
static void rotation_for_up(const double up[3], double rotation[9])
{
    double x_axis[3] = {1.0, 0.0, 0.0};
    double along = dot3(x_axis, up);
    double x[3] = {x_axis[0] - along * up[0], x_axis[1] - along * up[1], x_axis[2] - along * up[2]};
    if (normalize3(x) < 0.3) {
        double y_axis[3] = {0.0, 1.0, 0.0};
        along = dot3(y_axis, up);
        for (int k = 0; k < 3; k++)
            x[k] = y_axis[k] - along * up[k];
        normalize3(x);
    }
    double y[3];
    cross3(up, x, y);
    for (int k = 0; k < 3; k++) {
        rotation[0 * 3 + k] = x[k];
        rotation[1 * 3 + k] = y[k];
        rotation[2 * 3 + k] = up[k];
    }
}

static void set_default_roi(od_scene *scene, const od_scene_options *options)
{
    if (options->has_roi) {
        memcpy(scene->roi_min, options->roi_min, sizeof scene->roi_min);
        memcpy(scene->roi_max, options->roi_max, sizeof scene->roi_max);
        return;
    }
    scene->roi_min[0] = scene->roi_min[1] = -OD_SCENE_DEFAULT_ROI_HALF_WIDTH;
    scene->roi_max[0] = scene->roi_max[1] = OD_SCENE_DEFAULT_ROI_HALF_WIDTH;
    scene->roi_min[2] = 0.0;
    scene->roi_max[2] = OD_SCENE_DEFAULT_ROI_HEIGHT;
}

static int set_fixed_frame(od_scene *scene, const od_scene_options *options, const char *why, od_error *err)
{
    if (options->has_up) {
        double up[3];
        memcpy(up, options->up, sizeof up);
        normalize3(up);
        if (up[2] < 1.0 - 1e-9)
            return od_fail(err, "%s: up (%g, %g, %g) was given, but %s; expected no up option or (0, 0, 1)",
                           scene->metadata_path, options->up[0], options->up[1], options->up[2], why);
    }
    double scale = options->scale > 0.0 ? options->scale : 1.0;
    if (scale != 1.0) {
        const double identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, origin[3] = {0, 0, 0};
        apply_similarity(scene, identity, origin, scale);
    }
    snprintf(scene->frame_note, sizeof scene->frame_note, "%s; scale %g", why, scale);
    return 0;
}

int od_scene_set_frame(od_scene *scene, const od_scene_options *options, od_error *err)
{
    set_default_roi(scene, options);
    if (scene->format == OD_SCENE_FORMAT_RELEASE)
        return set_fixed_frame(scene, options, "the release's frame is fixed: metres, z up, floor at z = 0", err);
    if (options->keep_frame)
        return set_fixed_frame(scene, options, "kept the file's world frame as asked", err);

    /* pass 1: up */
    double up[3];
    const char *up_source = "given";
    if (options->has_up) {
        memcpy(up, options->up, sizeof up);
        normalize3(up);
    } else {
        estimate_up(scene, up, &up_source);
    }

    /* pass 2: the look-at point and the floor through or below it */
    double look_at[3];
    const char *look_at_note = "";
    if (estimate_look_at(scene, look_at) != 0) {
        double center[3], forward[3];
        od_camera_center(&scene->views[0].camera, center);
        od_camera_axes(&scene->views[0].camera, NULL, NULL, forward);
        for (int k = 0; k < 3; k++)
            look_at[k] = center[k] + forward[k];
        look_at_note = " (the optical axes are parallel: assumed 1 unit in front of view 0; set the region "
                       "of interest to correct it)";
        od_log_warn("scene", "%s: the cameras' optical axes are (nearly) parallel, so where they look is "
                             "unknown; assuming 1 file unit in front of view 0",
                    scene->metadata_path);
    }
    double camera_distance = median_camera_distance(scene, look_at);
    double floor_height = dot3(up, look_at);
    const char *floor_source = "the plane through the cameras' look-at point";
    if (estimate_floor_from_points(scene, up, look_at, camera_distance, &floor_height) == 0)
        floor_source = "the lowest dense plane of the sparse points";

    /* pass 3: scale */
    double scale = 1.0;
    const char *scale_source = "given";
    if (options->scale > 0.0) {
        scale = options->scale;
    } else if (scene->format == OD_SCENE_FORMAT_COLMAP && camera_distance > 0.0) {
        scale = OD_SCENE_CAPTURE_CAMERA_DISTANCE / camera_distance;
        scale_source = "COLMAP has no metric scale: median camera distance set to 0.8 m";
    } else {
        scale_source = "file units taken as metres";
    }

    /* pass 4: move everything into the new frame */
    double rotation[9];
    rotation_for_up(up, rotation);
    double along = dot3(up, look_at) - floor_height;
    double origin[3] = {look_at[0] - along * up[0], look_at[1] - along * up[1], look_at[2] - along * up[2]};
    apply_similarity(scene, rotation, origin, scale);

    snprintf(scene->frame_note, sizeof scene->frame_note,
             "up (%.3f, %.3f, %.3f) in the file's world from %s; floor from %s%s; scale %.4g (%s)", up[0], up[1],
             up[2], up_source, floor_source, look_at_note, scale, scale_source);
    od_log_info("scene", "%s: assumed %s; set --up, --scale or --roi to override", scene->metadata_path,
                scene->frame_note);
    return 0;
}

/* ---- what the views see -------------------------------------------------------------- */

static const char *convention_note(od_scene_format format)
{
    switch (format) {
    case OD_SCENE_FORMAT_RELEASE:
        return "camera.poses[i].rotation was read as a world-to-camera matrix in OpenCV axes (x right, y "
               "down, z forward)";
    case OD_SCENE_FORMAT_TRANSFORMS:
        return "transform_matrix was read as camera-to-world in OpenGL axes (x right, y up, z backward), as "
               "nerfstudio and instant-ngp write it; OpenCV axes or world-to-camera matrices give this error";
    case OD_SCENE_FORMAT_COLMAP:
        return "images.txt poses were read as world-to-camera in OpenCV axes, COLMAP's convention (camera "
               "centre -R^T t)";
    default:
        return "the poses' convention is unknown";
    }
}

static void roi_sample(const od_scene *scene, int i, int j, int k, double point[3])
{
    int index[3] = {i, j, k};
    int samples[3] = {VISIBILITY_SAMPLES_XY, VISIBILITY_SAMPLES_XY, VISIBILITY_SAMPLES_Z};
    for (int a = 0; a < 3; a++)
        point[a] = scene->roi_min[a] + (scene->roi_max[a] - scene->roi_min[a]) * index[a] / (samples[a] - 1);
}

int od_scene_check_visibility(const od_scene *scene, od_error *err)
{
    int sample_count = VISIBILITY_SAMPLES_XY * VISIBILITY_SAMPLES_XY * VISIBILITY_SAMPLES_Z;
    int *seen_by_view = calloc((size_t)scene->view_count, sizeof *seen_by_view);
    int *views_per_sample = calloc((size_t)sample_count, sizeof *views_per_sample);
    if (seen_by_view == NULL || views_per_sample == NULL) {
        free(seen_by_view);
        free(views_per_sample);
        return od_fail(err, "out of memory");
    }
    for (int v = 0; v < scene->view_count; v++) {
        int s = 0;
        for (int i = 0; i < VISIBILITY_SAMPLES_XY; i++) {
            for (int j = 0; j < VISIBILITY_SAMPLES_XY; j++) {
                for (int k = 0; k < VISIBILITY_SAMPLES_Z; k++, s++) {
                    double point[3];
                    roi_sample(scene, i, j, k, point);
                    if (od_camera_sees(&scene->views[v].camera, point)) {
                        seen_by_view[v]++;
                        views_per_sample[s]++;
                    }
                }
            }
        }
    }
    int needed = scene->view_count >= 2 ? 2 : 1;
    int shared = 0;
    for (int s = 0; s < sample_count; s++)
        if (views_per_sample[s] >= needed)
            shared++;
    int blind_view = -1;
    for (int v = 0; v < scene->view_count && blind_view < 0; v++)
        if (seen_by_view[v] == 0)
            blind_view = v;
    free(seen_by_view);
    free(views_per_sample);

    char roi[200];
    snprintf(roi, sizeof roi, "[%g, %g] x [%g, %g] x [%g, %g]", scene->roi_min[0], scene->roi_max[0],
             scene->roi_min[1], scene->roi_max[1], scene->roi_min[2], scene->roi_max[2]);
    if (shared == 0)
        return od_fail(err,
                       "%s: no point of the region of interest %s is seen by %s; the cameras look away from "
                       "it, which usually means a pose convention mistake: %s",
                       scene->metadata_path, roi, needed == 2 ? "two views" : "the view",
                       convention_note(scene->format));
    if (blind_view >= 0)
        return od_fail(err,
                       "%s: view %d (%s) sees nothing of the region of interest %s; expected every view to "
                       "look at the scene (remove the view, or set the region of interest)",
                       scene->metadata_path, blind_view, scene->views[blind_view].name, roi);
    return 0;
}

void od_scene_mark_truncated(od_scene *scene)
{
    for (int o = 0; o < scene->object_count; o++) {
        const od_box *box = &scene->objects[o].box;
        double corners[8][3];
        od_box_corners(box, corners);
        /* Boxes of resting objects reach a few millimetres below the floor
         * (z = 0, the region's bottom); that is not truncation. */
        double largest_side = fmax(box->size[0], fmax(box->size[1], box->size[2]));
        double tolerance = TRUNCATION_TOLERANCE * largest_side;
        int outside = 0;
        for (int c = 0; c < 8; c++)
            for (int k = 0; k < 3; k++)
                if (corners[c][k] < scene->roi_min[k] - tolerance || corners[c][k] > scene->roi_max[k] + tolerance)
                    outside = 1;
        scene->objects[o].truncated = outside;
    }
}
