/* Minimum-area oriented boxes of voxel clusters and rotated 3D IoU. */
#include "geometry/obb.h"

#include <math.h>
#include <stdlib.h>

#define PI 3.14159265358979323846

/* Most vertices a rectangle clipped by another rectangle can have: each of
 * the 4 clipping edges adds at most one vertex. */
#define CLIP_MAX_VERTICES 8

/* ---- minimum-area rectangle ------------------------------------------------ */

static double dot_from(const double *origin, const double *point, double ux, double uy)
{
    return (point[0] - origin[0]) * ux + (point[1] - origin[1]) * uy;
}

/* Rewrites (size, yaw) of the same rectangle so that size[0] >= size[1] and
 * yaw is in [-pi/2, pi/2), or in [-pi/4, pi/4) for a square. */
static void normalise_rectangle(double size[2], double *yaw)
{
    if (size[0] < size[1]) {
        double swap = size[0];
        size[0] = size[1];
        size[1] = swap;
        *yaw += 0.5 * PI;
    }
    const double period = size[0] == size[1] ? 0.5 * PI : PI;
    double wrapped = fmod(*yaw + 0.5 * period, period);
    if (wrapped < 0.0)
        wrapped += period;
    wrapped -= 0.5 * period;
    if (wrapped >= 0.5 * period) /* fmod rounding at the upper end */
        wrapped -= period;
    *yaw = wrapped;
}

int od_min_area_rectangle(const double *hull, int count, double center[2], double size[2], double *yaw,
                          od_error *err)
{
    /* hull is (count, 2), counter-clockwise */
    if (hull == NULL || center == NULL || size == NULL || yaw == NULL)
        return od_fail(err, "min_area_rectangle: a buffer is NULL");
    if (count < 1)
        return od_fail(err, "min_area_rectangle: hull has %d vertices, expected >= 1", count);
    if (count == 1) {
        center[0] = hull[0];
        center[1] = hull[1];
        size[0] = size[1] = 0.0;
        *yaw = 0.0;
        return 0;
    }
    if (count == 2) {
        double dx = hull[2] - hull[0], dy = hull[3] - hull[1];
        center[0] = 0.5 * (hull[0] + hull[2]);
        center[1] = 0.5 * (hull[1] + hull[3]);
        size[0] = hypot(dx, dy);
        size[1] = 0.0;
        *yaw = atan2(dy, dx);
        normalise_rectangle(size, yaw);
        return 0;
    }

    /* For edge i with unit direction u and inward normal n (u turned left),
     * the rectangle spans [min u, max u] x [0, max n] measured from the
     * edge's start. The vertices at max u, max n and min u only move
     * forward around the hull as i advances, so each pointer climbs from
     * where it stopped for the previous edge. */
    int right = 0, top = 0, left = 0, pointers_set = 0;
    double best_area = INFINITY;
    for (int i = 0; i < count; i++) {
        const double *start = &hull[i * 2], *end = &hull[((i + 1) % count) * 2];
        double length = hypot(end[0] - start[0], end[1] - start[1]);
        if (length == 0.0)
            continue;
        const double ux = (end[0] - start[0]) / length, uy = (end[1] - start[1]) / length;
        const double nx = -uy, ny = ux;

        if (!pointers_set) {
            pointers_set = 1;
            for (int v = 1; v < count; v++) {
                if (dot_from(start, &hull[v * 2], ux, uy) > dot_from(start, &hull[right * 2], ux, uy))
                    right = v;
                if (dot_from(start, &hull[v * 2], nx, ny) > dot_from(start, &hull[top * 2], nx, ny))
                    top = v;
                if (dot_from(start, &hull[v * 2], ux, uy) < dot_from(start, &hull[left * 2], ux, uy))
                    left = v;
            }
        } else {
            for (int step = 0; step < count; step++) {
                int next = (right + 1) % count;
                if (dot_from(start, &hull[next * 2], ux, uy) <= dot_from(start, &hull[right * 2], ux, uy))
                    break;
                right = next;
            }
            for (int step = 0; step < count; step++) {
                int next = (top + 1) % count;
                if (dot_from(start, &hull[next * 2], nx, ny) <= dot_from(start, &hull[top * 2], nx, ny))
                    break;
                top = next;
            }
            for (int step = 0; step < count; step++) {
                int next = (left + 1) % count;
                if (dot_from(start, &hull[next * 2], ux, uy) >= dot_from(start, &hull[left * 2], ux, uy))
                    break;
                left = next;
            }
        }

        const double max_u = dot_from(start, &hull[right * 2], ux, uy);
        const double min_u = dot_from(start, &hull[left * 2], ux, uy);
        const double max_n = dot_from(start, &hull[top * 2], nx, ny);
        const double area = (max_u - min_u) * max_n;
        if (area < best_area) {
            best_area = area;
            const double mid_u = 0.5 * (max_u + min_u), mid_n = 0.5 * max_n;
            center[0] = start[0] + mid_u * ux + mid_n * nx;
            center[1] = start[1] + mid_u * uy + mid_n * ny;
            size[0] = max_u - min_u;
            size[1] = max_n;
            *yaw = atan2(uy, ux);
        }
    }
    if (!isfinite(best_area))
        return od_fail(err, "min_area_rectangle: all %d hull vertices coincide", count);
    normalise_rectangle(size, yaw);
    return 0;
}

/* ---- boxes of voxel clusters ---------------------------------------------- */

/* Fits the footprint rectangle of the members' squares of side 2 * half
 * around their centres (half 0.5: the voxels' squares; 0: their centres),
 * in grid units, and the members' z index range. */
static int fit_footprint(const int32_t *voxels, const int32_t *labels, int64_t count, int32_t cluster,
                         double voxel_size, double half, double center[2], double size[2], double *yaw,
                         int32_t z_range[2], od_error *err)
{
    /* voxels is (count, 3) as (x, y, z); labels is (count) or NULL */
    if (voxels == NULL && count > 0)
        return od_fail(err, "box_fit_voxels: a buffer is NULL");
    if (!(voxel_size > 0.0 && isfinite(voxel_size)))
        return od_fail(err, "box_fit_voxels: voxel_size is %g, expected a positive finite value", voxel_size);
    if (count < 0 || count > INT32_MAX / 4)
        return od_fail(err, "box_fit_voxels: voxel count %lld is out of range [0, %d]", (long long)count,
                       INT32_MAX / 4);

    /* pass 1: the members' y and z ranges */
    int32_t y_min = INT32_MAX, y_max = INT32_MIN, z_min = INT32_MAX, z_max = INT32_MIN;
    int64_t member_count = 0;
    for (int64_t i = 0; i < count; i++) {
        if (labels != NULL && labels[i] != cluster)
            continue;
        const int32_t *voxel = &voxels[i * 3];
        y_min = voxel[1] < y_min ? voxel[1] : y_min;
        y_max = voxel[1] > y_max ? voxel[1] : y_max;
        z_min = voxel[2] < z_min ? voxel[2] : z_min;
        z_max = voxel[2] > z_max ? voxel[2] : z_max;
        member_count++;
    }
    if (member_count == 0)
        return od_fail(err, "box_fit_voxels: no voxel has label %d among %lld voxels", (int)cluster,
                       (long long)count);

    /* pass 2: the hull of the footprint only depends on the first and last
     * voxel of each row (fixed y), so only their corners go to the hull.
     * A cluster whose y range is over twice its voxel count would make the
     * row table larger than the voxels, so it takes every member's corners. */
    const int64_t row_count = (int64_t)y_max - (int64_t)y_min + 1;
    const int by_rows = row_count <= 2 * member_count;
    const int64_t corner_capacity = by_rows ? 8 * row_count : 4 * member_count;
    double *corners = malloc((size_t)corner_capacity * 2 * sizeof *corners);
    double *hull = malloc((size_t)corner_capacity * 2 * sizeof *hull);
    int32_t *row_ends = by_rows ? malloc((size_t)row_count * 2 * sizeof *row_ends) : NULL;
    if (corners == NULL || hull == NULL || (by_rows && row_ends == NULL)) {
        free(corners);
        free(hull);
        free(row_ends);
        return od_fail(err, "box_fit_voxels: out of memory for %lld voxels", (long long)member_count);
    }
    int corner_count = 0;
    if (by_rows) {
        for (int64_t r = 0; r < row_count; r++) {
            row_ends[r * 2] = INT32_MAX;
            row_ends[r * 2 + 1] = INT32_MIN;
        }
        for (int64_t i = 0; i < count; i++) {
            if (labels != NULL && labels[i] != cluster)
                continue;
            int32_t *ends = &row_ends[((int64_t)voxels[i * 3 + 1] - y_min) * 2];
            ends[0] = voxels[i * 3] < ends[0] ? voxels[i * 3] : ends[0];
            ends[1] = voxels[i * 3] > ends[1] ? voxels[i * 3] : ends[1];
        }
        for (int64_t r = 0; r < row_count; r++) {
            if (row_ends[r * 2] > row_ends[r * 2 + 1])
                continue; /* an empty row */
            const double y = (double)y_min + (double)r;
            for (int e = 0; e < 2; e++)
                for (int c = 0; c < 4; c++) {
                    corners[corner_count * 2] = row_ends[r * 2 + e] + (c & 1 ? half : -half);
                    corners[corner_count * 2 + 1] = y + (c & 2 ? half : -half);
                    corner_count++;
                }
        }
    } else {
        for (int64_t i = 0; i < count; i++) {
            if (labels != NULL && labels[i] != cluster)
                continue;
            for (int c = 0; c < 4; c++) {
                corners[corner_count * 2] = voxels[i * 3] + (c & 1 ? half : -half);
                corners[corner_count * 2 + 1] = voxels[i * 3 + 1] + (c & 2 ? half : -half);
                corner_count++;
            }
        }
    }
    free(row_ends);

    int hull_count = od_convex_hull_2d(corners, corner_count, hull);
    int status = od_min_area_rectangle(hull, hull_count, center, size, yaw, err);
    free(corners);
    free(hull);
    if (status != 0)
        return od_fail_context(err, "box_fit_voxels");
    z_range[0] = z_min;
    z_range[1] = z_max;
    return 0;
}

int od_box_fit_voxels(const int32_t *voxels, const int32_t *labels, int64_t count, int32_t cluster,
                      const double origin[3], double voxel_size, od_box *box, od_error *err)
{
    if (origin == NULL || box == NULL)
        return od_fail(err, "box_fit_voxels: a buffer is NULL");
    double center[2], size[2], yaw;
    int32_t z[2];
    if (fit_footprint(voxels, labels, count, cluster, voxel_size, 0.5, center, size, &yaw, z, err) != 0)
        return -1;
    box->center[0] = origin[0] + voxel_size * center[0];
    box->center[1] = origin[1] + voxel_size * center[1];
    box->center[2] = origin[2] + voxel_size * 0.5 * ((double)z[0] + (double)z[1]);
    box->size[0] = voxel_size * size[0];
    box->size[1] = voxel_size * size[1];
    box->size[2] = voxel_size * ((double)z[1] - (double)z[0] + 1.0);
    box->yaw = yaw;
    return 0;
}

int od_box_fit_voxel_centres(const int32_t *voxels, const int32_t *labels, int64_t count, int32_t cluster,
                             const double origin[3], double voxel_size, double side_margin, double top_margin,
                             od_box *box, od_error *err)
{
    if (origin == NULL || box == NULL)
        return od_fail(err, "box_fit_voxel_centres: a buffer is NULL");
    if (!(side_margin > -0.5 && side_margin < 1.0 && top_margin > -0.5 && top_margin < 1.0))
        return od_fail(err, "box_fit_voxel_centres: margins %g and %g are not in (-0.5, 1) voxels", side_margin,
                       top_margin);
    double center[2], size[2], yaw;
    int32_t z[2];
    if (fit_footprint(voxels, labels, count, cluster, voxel_size, 0.0, center, size, &yaw, z, err) != 0)
        return -1;
    const double bottom = (double)z[0] - 0.5, top = (double)z[1] + top_margin;
    box->center[0] = origin[0] + voxel_size * center[0];
    box->center[1] = origin[1] + voxel_size * center[1];
    box->center[2] = origin[2] + voxel_size * 0.5 * (bottom + top);
    box->size[0] = voxel_size * (size[0] + 2.0 * side_margin);
    box->size[1] = voxel_size * (size[1] + 2.0 * side_margin);
    box->size[2] = voxel_size * (top - bottom);
    box->yaw = yaw;
    return 0;
}

/* ---- rotated IoU ----------------------------------------------------------- */

/* Writes the footprint's corners counter-clockwise, (4, 2). */
static void footprint_corners(const od_box *box, double corners[8])
{
    const double c = cos(box->yaw), s = sin(box->yaw);
    const double half_x = 0.5 * box->size[0], half_y = 0.5 * box->size[1];
    const double local[4][2] = {{-half_x, -half_y}, {half_x, -half_y}, {half_x, half_y}, {-half_x, half_y}};
    for (int i = 0; i < 4; i++) {
        corners[i * 2] = box->center[0] + c * local[i][0] - s * local[i][1];
        corners[i * 2 + 1] = box->center[1] + s * local[i][0] + c * local[i][1];
    }
}

/* Signed distance-like side test: positive when p is left of a -> b. */
static double side_of(const double *a, const double *b, const double *p)
{
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
}

static double polygon_area(const double *polygon, int count)
{
    double twice_area = 0.0;
    for (int i = 0; i < count; i++) {
        const double *p = &polygon[i * 2], *q = &polygon[((i + 1) % count) * 2];
        twice_area += p[0] * q[1] - q[0] * p[1];
    }
    return 0.5 * fabs(twice_area);
}

double od_box_footprint_intersection(const od_box *a, const od_box *b)
{
    if (!(a->size[0] > 0.0 && a->size[1] > 0.0 && b->size[0] > 0.0 && b->size[1] > 0.0))
        return 0.0;
    double clip[8], polygon[2 * CLIP_MAX_VERTICES], next[2 * CLIP_MAX_VERTICES];
    footprint_corners(b, clip);
    footprint_corners(a, polygon);

    /* Coordinates relative to a's centre keep the products small when both
     * boxes sit far from the world origin. */
    const double shift_x = a->center[0], shift_y = a->center[1];
    for (int i = 0; i < 4; i++) {
        clip[i * 2] -= shift_x;
        clip[i * 2 + 1] -= shift_y;
        polygon[i * 2] -= shift_x;
        polygon[i * 2 + 1] -= shift_y;
    }

    /* Sutherland-Hodgman: keep the part of the polygon left of each of b's
     * counter-clockwise edges. */
    int count = 4;
    for (int e = 0; e < 4 && count > 0; e++) {
        const double *edge_start = &clip[e * 2], *edge_end = &clip[((e + 1) % 4) * 2];
        int next_count = 0;
        for (int i = 0; i < count; i++) {
            const double *p = &polygon[i * 2], *q = &polygon[((i + 1) % count) * 2];
            const double side_p = side_of(edge_start, edge_end, p), side_q = side_of(edge_start, edge_end, q);
            if (side_p >= 0.0) {
                next[next_count * 2] = p[0];
                next[next_count * 2 + 1] = p[1];
                next_count++;
            }
            if ((side_p >= 0.0) != (side_q >= 0.0)) {
                const double t = side_p / (side_p - side_q);
                next[next_count * 2] = p[0] + t * (q[0] - p[0]);
                next[next_count * 2 + 1] = p[1] + t * (q[1] - p[1]);
                next_count++;
            }
        }
        count = next_count;
        for (int i = 0; i < 2 * count; i++)
            polygon[i] = next[i];
    }
    return count >= 3 ? polygon_area(polygon, count) : 0.0;
}

double od_box_iou_3d(const od_box *a, const od_box *b)
{
    for (int i = 0; i < 3; i++)
        if (!isfinite(a->center[i]) || !isfinite(a->size[i]) || !isfinite(b->center[i]) || !isfinite(b->size[i]))
            return 0.0;
    if (!isfinite(a->yaw) || !isfinite(b->yaw))
        return 0.0;

    const double a_bottom = a->center[2] - 0.5 * a->size[2], a_top = a->center[2] + 0.5 * a->size[2];
    const double b_bottom = b->center[2] - 0.5 * b->size[2], b_top = b->center[2] + 0.5 * b->size[2];
    const double z_overlap = fmax(0.0, fmin(a_top, b_top) - fmax(a_bottom, b_bottom));
    const double intersection = z_overlap > 0.0 ? od_box_footprint_intersection(a, b) * z_overlap : 0.0;
    const double volume_a = fabs(a->size[0] * a->size[1] * a->size[2]);
    const double volume_b = fabs(b->size[0] * b->size[1] * b->size[2]);
    const double union_volume = volume_a + volume_b - intersection;
    if (!(union_volume > 0.0))
        return 0.0;
    return fmin(1.0, fmax(0.0, intersection / union_volume));
}
