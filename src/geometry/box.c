#include "geometry/box.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const int od_box_edges[12][2] = {
    /* along x */ {0, 1}, {2, 3}, {4, 5}, {6, 7},
    /* along y */ {0, 2}, {1, 3}, {4, 6}, {5, 7},
    /* along z */ {0, 4}, {1, 5}, {2, 6}, {3, 7},
};

void od_box_corners(const od_box *box, double corners[8][3])
{
    double c = cos(box->yaw), s = sin(box->yaw);
    for (int i = 0; i < 8; i++) {
        double local_x = (i & 1 ? 0.5 : -0.5) * box->size[0];
        double local_y = (i & 2 ? 0.5 : -0.5) * box->size[1];
        double local_z = (i & 4 ? 0.5 : -0.5) * box->size[2];
        corners[i][0] = box->center[0] + c * local_x - s * local_y;
        corners[i][1] = box->center[1] + s * local_x + c * local_y;
        corners[i][2] = box->center[2] + local_z;
    }
}

int od_box_contains(const od_box *box, const double point[3])
{
    double dx = point[0] - box->center[0], dy = point[1] - box->center[1];
    double c = cos(box->yaw), s = sin(box->yaw);
    double local_x = c * dx + s * dy;
    double local_y = -s * dx + c * dy;
    double local_z = point[2] - box->center[2];
    return fabs(local_x) <= 0.5 * box->size[0] && fabs(local_y) <= 0.5 * box->size[1] &&
           fabs(local_z) <= 0.5 * box->size[2];
}

/* ---- 2D convex hulls ------------------------------------------------------- */

static int compare_points(const void *a, const void *b)
{
    const double *p = a, *q = b;
    if (p[0] != q[0])
        return p[0] < q[0] ? -1 : 1;
    if (p[1] != q[1])
        return p[1] < q[1] ? -1 : 1;
    return 0;
}

/* Cross product of (a - o) and (b - o): positive for a left turn when y points up. */
static double cross(const double *o, const double *a, const double *b)
{
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

int od_convex_hull_2d(const double *points, int count, double *hull)
{
    if (count <= 0)
        return 0;
    double *sorted = malloc((size_t)count * 2 * sizeof *sorted);
    if (sorted == NULL)
        return 0;
    memcpy(sorted, points, (size_t)count * 2 * sizeof *sorted);
    qsort(sorted, (size_t)count, 2 * sizeof *sorted, compare_points);

    /* Lower hull left to right, then upper hull right to left; each pops
     * points that do not make a strict left turn. */
    int size = 0;
    for (int i = 0; i < count; i++) {
        while (size >= 2 && cross(&hull[(size - 2) * 2], &hull[(size - 1) * 2], &sorted[i * 2]) <= 0.0)
            size--;
        hull[size * 2] = sorted[i * 2];
        hull[size * 2 + 1] = sorted[i * 2 + 1];
        size++;
    }
    int lower_size = size + 1;
    for (int i = count - 2; i >= 0; i--) {
        while (size >= lower_size && cross(&hull[(size - 2) * 2], &hull[(size - 1) * 2], &sorted[i * 2]) <= 0.0)
            size--;
        hull[size * 2] = sorted[i * 2];
        hull[size * 2 + 1] = sorted[i * 2 + 1];
        size++;
    }
    free(sorted);
    /* The last point repeats the first (when there is more than one point). */
    return size > 1 ? size - 1 : size;
}

int od_convex_polygon_contains(const double *polygon, int count, double x, double y)
{
    if (count < 3)
        return 0;
    double point[2] = {x, y};
    for (int i = 0; i < count; i++) {
        const double *a = &polygon[i * 2];
        const double *b = &polygon[((i + 1) % count) * 2];
        if (cross(a, b, point) < 0.0)
            return 0;
    }
    return 1;
}

/* ---- projection ------------------------------------------------------------- */

int od_box_project_hull(const od_box *box, const od_camera *camera, double hull[40])
{
    double corners[8][3];
    od_box_corners(box, corners);

    /* The part of the box in front of the camera is convex. Its vertices
     * are the corners in front plus the points where edges cross the
     * clipping plane, so the outline is the hull of their projections.
     * Clipping each edge and keeping both ends collects those points. */
    double pixels[24 * 2];
    int pixel_count = 0;
    for (int e = 0; e < 12; e++) {
        double a[2], b[2];
        if (!od_camera_project_segment(camera, corners[od_box_edges[e][0]], corners[od_box_edges[e][1]], a, b))
            continue;
        pixels[pixel_count * 2] = a[0];
        pixels[pixel_count * 2 + 1] = a[1];
        pixel_count++;
        pixels[pixel_count * 2] = b[0];
        pixels[pixel_count * 2 + 1] = b[1];
        pixel_count++;
    }
    if (pixel_count == 0)
        return 0;
    double full_hull[24 * 2];
    int hull_count = od_convex_hull_2d(pixels, pixel_count, full_hull);
    /* A convex polytope with 8 + 12 candidate vertices projects to at most 20. */
    if (hull_count > 20)
        hull_count = 20;
    memcpy(hull, full_hull, (size_t)hull_count * 2 * sizeof *hull);
    return hull_count;
}
