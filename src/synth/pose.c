/* Resting poses by a quasi-static drop. See pose.h. */
#include "synth/pose.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
/* Directions tried when the centre of mass balances exactly over a point. */
#define BALANCE_DIRECTIONS 16

static double dot3(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void cross3(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static void normalize3(double v[3])
{
    double length = sqrt(dot3(v, v));
    if (length > 0)
        for (int k = 0; k < 3; k++)
            v[k] /= length;
}

static double mesh_size(const od_mesh *mesh)
{
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    return fmax(max[0] - min[0], fmax(max[1] - min[1], max[2] - min[2]));
}

int od_synth_centre_of_mass(const od_mesh *mesh, double centre[3], od_error *err)
{
    if (!mesh || mesh->face_count == 0 || mesh->vertex_count == 0)
        return od_fail(err, "rest pose: the mesh has no faces");
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    double origin[3];
    for (int k = 0; k < 3; k++)
        origin[k] = 0.5 * ((double)min[k] + max[k]);
    double volume = 0, area = 0, vector_area[3] = {0, 0, 0};
    double solid[3] = {0, 0, 0}, surface[3] = {0, 0, 0};
    for (int64_t f = 0; f < mesh->face_count; f++) {
        double p[3][3];
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                p[j][k] = (double)mesh->positions[mesh->faces[f * 3 + j] * 3 + k] - origin[k];
        double e1[3], e2[3], n[3], bc[3];
        for (int k = 0; k < 3; k++) {
            e1[k] = p[1][k] - p[0][k];
            e2[k] = p[2][k] - p[0][k];
        }
        cross3(e1, e2, n);
        double a = 0.5 * sqrt(dot3(n, n));
        cross3(p[1], p[2], bc);
        /* The signed volume of the tetrahedron (origin, p0, p1, p2) and its centroid. */
        double v = dot3(p[0], bc) / 6;
        for (int k = 0; k < 3; k++) {
            solid[k] += v * (p[0][k] + p[1][k] + p[2][k]) / 4;
            surface[k] += a * (p[0][k] + p[1][k] + p[2][k]) / 3;
            vector_area[k] += 0.5 * n[k];
        }
        volume += v;
        area += a;
    }
    if (!(area > 0))
        return od_fail(err, "rest pose: the mesh's surface area is zero");
    double bounds_volume = ((double)max[0] - min[0]) * ((double)max[1] - min[1]) * ((double)max[2] - min[2]);
    int closed = sqrt(dot3(vector_area, vector_area)) <= 1e-3 * area && volume > 1e-6 * bounds_volume;
    for (int k = 0; k < 3; k++)
        centre[k] = origin[k] + (closed ? solid[k] / volume : surface[k] / area);
    return 0;
}

void od_synth_random_rotation(od_rng *rng, double rotation[9])
{
    /* A uniform unit quaternion (Shoemake's method). */
    double u1 = od_rng_uniform(rng), u2 = od_rng_uniform(rng), u3 = od_rng_uniform(rng);
    double w = sqrt(1 - u1) * sin(2 * PI * u2), x = sqrt(1 - u1) * cos(2 * PI * u2);
    double y = sqrt(u1) * sin(2 * PI * u3), z = sqrt(u1) * cos(2 * PI * u3);
    double r[9] = {1 - 2 * (y * y + z * z), 2 * (x * y - z * w),     2 * (x * z + y * w),
                   2 * (x * y + z * w),     1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                   2 * (x * z - y * w),     2 * (y * z + x * w),     1 - 2 * (x * x + y * y)};
    memcpy(rotation, r, sizeof r);
}

void od_synth_rotate_mesh(od_mesh *mesh, const double rotation[9])
{
    for (int64_t v = 0; v < mesh->vertex_count; v++) {
        float *arrays[2] = {mesh->positions + v * 3, mesh->normals ? mesh->normals + v * 3 : NULL};
        for (int a = 0; a < 2; a++) {
            float *p = arrays[a];
            if (!p)
                continue;
            double q[3];
            for (int r = 0; r < 3; r++)
                q[r] = rotation[r * 3] * p[0] + rotation[r * 3 + 1] * p[1] + rotation[r * 3 + 2] * p[2];
            for (int k = 0; k < 3; k++)
                p[k] = (float)q[k];
        }
    }
}

void od_synth_yaw_alignment(const od_mesh *mesh, double rotation[9])
{
    /* The surface's exact second moments in x and y: a triangle of area A and corners v0, v1, v2 gives
     * A / 12 (sum_i v_i v_i^T + s s^T) with s = v0 + v1 + v2, and A s / 3 for the first moment. */
    double weight = 0, mean[2] = {0, 0}, xx = 0, xy = 0, yy = 0;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        const int32_t *t = mesh->faces + f * 3;
        const float *a = mesh->positions + t[0] * 3, *b = mesh->positions + t[1] * 3, *c = mesh->positions + t[2] * 3;
        double e1[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, e2[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
        double n[3];
        cross3(e1, e2, n);
        double area = 0.5 * sqrt(dot3(n, n));
        double sx = (double)a[0] + b[0] + c[0], sy = (double)a[1] + b[1] + c[1];
        double sxx = (double)a[0] * a[0] + (double)b[0] * b[0] + (double)c[0] * c[0];
        double sxy = (double)a[0] * a[1] + (double)b[0] * b[1] + (double)c[0] * c[1];
        double syy = (double)a[1] * a[1] + (double)b[1] * b[1] + (double)c[1] * c[1];
        weight += area;
        mean[0] += area * sx / 3;
        mean[1] += area * sy / 3;
        xx += area / 12 * (sxx + sx * sx);
        xy += area / 12 * (sxy + sx * sy);
        yy += area / 12 * (syy + sy * sy);
    }
    double phi = 0;
    if (weight > 0) {
        mean[0] /= weight;
        mean[1] /= weight;
        xx = xx / weight - mean[0] * mean[0];
        xy = xy / weight - mean[0] * mean[1];
        yy = yy / weight - mean[1] * mean[1];
        /* The major axis is at angle phi from x; turning by -phi brings it onto x. */
        phi = 0.5 * atan2(2 * xy, xx - yy);
    }
    double r[9] = {cos(phi), sin(phi), 0, -sin(phi), cos(phi), 0, 0, 0, 1};
    memcpy(rotation, r, sizeof r);
}

/* Writes the rotation by the smallest turn that takes unit u to unit v. */
static void turn_between(const double u[3], const double v[3], double rotation[9])
{
    double axis[3];
    cross3(u, v, axis);
    double s = sqrt(dot3(axis, axis)), c = dot3(u, v);
    if (s < 1e-12) {
        /* Parallel: the identity, or a half turn about any axis perpendicular to u. */
        double other[3] = {fabs(u[0]) < 0.9 ? 1 : 0, fabs(u[0]) < 0.9 ? 0 : 1, 0};
        cross3(u, other, axis);
        normalize3(axis);
        s = 0;
        c = c > 0 ? 1 : -1;
    } else {
        for (int k = 0; k < 3; k++)
            axis[k] /= s;
    }
    double t = 1 - c, x = axis[0], y = axis[1], z = axis[2];
    double r[9] = {c + x * x * t,     x * y * t - z * s, x * z * t + y * s, y * x * t + z * s, c + y * y * t,
                   y * z * t - x * s, z * x * t - y * s, z * y * t + x * s, c + z * z * t};
    memcpy(rotation, r, sizeof r);
}

/* The support polygon in 2D: the convex hull of the contacts, counter-clockwise (Andrew's monotone
 * chain). Returns the hull's vertex count: 1 for a point, 2 for a segment. */
static int compare_points(const void *a, const void *b)
{
    const double *p = a, *q = b;
    if (p[0] != q[0])
        return p[0] < q[0] ? -1 : 1;
    return (p[1] > q[1]) - (p[1] < q[1]);
}

static double turn(const double *o, const double *a, const double *b)
{
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

static int convex_hull_2d(double *points, int count, double *hull, double tolerance)
{
    qsort(points, (size_t)count, 2 * sizeof(double), compare_points);
    int k = 0;
    for (int pass = 0; pass < 2; pass++) {
        int start = k;
        for (int i = 0; i < count; i++) {
            const double *p = points + (pass == 0 ? i : count - 1 - i) * 2;
            /* Pop while the last two and p do not turn left by more than the tolerance. */
            while (k >= start + 2 && turn(hull + (k - 2) * 2, hull + (k - 1) * 2, p) <= tolerance)
                k--;
            hull[k * 2] = p[0];
            hull[k * 2 + 1] = p[1];
            k++;
        }
        k--; /* the last point starts the other chain */
    }
    /* Collapse the duplicates a point or a segment leaves. */
    int unique = 0;
    for (int i = 0; i < k; i++) {
        int same = 0;
        for (int j = 0; j < unique && !same; j++)
            same = fabs(hull[j * 2] - hull[i * 2]) <= tolerance && fabs(hull[j * 2 + 1] - hull[i * 2 + 1]) <= tolerance;
        if (!same) {
            hull[unique * 2] = hull[i * 2];
            hull[unique * 2 + 1] = hull[i * 2 + 1];
            unique++;
        }
    }
    return unique > 0 ? unique : 1;
}

/* The point of segment ab nearest to p. */
static void nearest_on_segment(const double *a, const double *b, const double *p, double out[2])
{
    double d[2] = {b[0] - a[0], b[1] - a[1]};
    double length2 = d[0] * d[0] + d[1] * d[1];
    double t = length2 > 0 ? ((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / length2 : 0;
    if (t < 0)
        t = 0;
    if (t > 1)
        t = 1;
    out[0] = a[0] + t * d[0];
    out[1] = a[1] + t * d[1];
}

/* The turn (radians, in (0, pi]) about the axis through q (3D) perpendicular to the down direction n and
 * the pivot direction d, that brings the next vertex to the floor; -1 when no vertex comes. */
static double pivot_angle(const od_mesh *mesh, const double q[3], const double n[3], const double d[3], double eps)
{
    double best = -1;
    for (int64_t v = 0; v < mesh->vertex_count; v++) {
        const float *p = mesh->positions + v * 3;
        double r[3] = {p[0] - q[0], p[1] - q[1], p[2] - q[2]};
        double a = dot3(r, d), up = -dot3(r, n);
        if (up <= eps && a <= eps)
            continue; /* on the axis, or on the floor behind it */
        double angle = atan2(up, a);
        if (angle > 1e-9 && (best < 0 || angle < best))
            best = angle;
    }
    return best;
}

int od_synth_rest_pose(const od_mesh *mesh, const double *start, od_synth_rest *rest, od_error *err)
{
    memset(rest, 0, sizeof *rest);
    double size = mesh && mesh->face_count > 0 ? mesh_size(mesh) : 0;
    if (!mesh || mesh->face_count == 0 || mesh->vertex_count == 0)
        return od_fail(err, "rest pose: the mesh has no faces");
    if (!(size > 0) || !isfinite(size))
        return od_fail(err, "rest pose: the mesh's extent %g is not positive and finite", size);
    double identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    start = start ? start : identity;
    double com[3];
    if (od_synth_centre_of_mass(mesh, com, err) != 0)
        return -1;
    memcpy(rest->centre_of_mass, com, sizeof com);
    const double eps = 1e-4 * size;
    /* n: the world's down direction in the mesh frame, the third row of start negated, because
     * world = start * mesh. */
    double n[3] = {-start[6], -start[7], -start[8]};
    normalize3(n);
    int64_t V = mesh->vertex_count;
    double *points = malloc((size_t)V * 2 * sizeof(double) + 1);
    double *hull = malloc((size_t)(2 * V + 2) * 2 * sizeof(double));
    if (!points || !hull) {
        free(points);
        free(hull);
        return od_fail(err, "rest pose: out of memory for %lld vertices", (long long)V);
    }
    int rc = -1, flat = 0;
    for (int step = 0; step <= OD_SYNTH_POSE_MAX_STEPS; step++) {
        /* The floor: the plane through the furthest vertex along n. */
        double floor_offset = -INFINITY;
        for (int64_t v = 0; v < V; v++) {
            const float *p = mesh->positions + v * 3;
            double x[3] = {p[0], p[1], p[2]};
            floor_offset = fmax(floor_offset, dot3(x, n));
        }
        double height = floor_offset - dot3(com, n);
        if (step == 0)
            rest->start_height = height;
        /* A basis (e1, e2) of the floor's plane, and the contacts in it. */
        double helper[3] = {fabs(n[0]) < 0.9 ? 1 : 0, fabs(n[0]) < 0.9 ? 0 : 1, 0}, e1[3], e2[3];
        cross3(n, helper, e1);
        normalize3(e1);
        cross3(n, e1, e2);
        int count = 0;
        for (int64_t v = 0; v < V; v++) {
            const float *p = mesh->positions + v * 3;
            double x[3] = {p[0], p[1], p[2]};
            if (floor_offset - dot3(x, n) > eps)
                continue;
            points[count * 2] = dot3(x, e1);
            points[count * 2 + 1] = dot3(x, e2);
            count++;
        }
        int corners = convex_hull_2d(points, count, hull, eps * eps);
        double c[2] = {dot3(com, e1), dot3(com, e2)};
        /* The nearest point of the polygon to c, and whether c lies inside (all left turns). */
        double nearest[2] = {hull[0], hull[1]}, best = INFINITY, area = 0;
        int inside = corners >= 3;
        int edge = -1;
        for (int i = 0; i < corners; i++) {
            const double *a = hull + i * 2, *b = hull + ((i + 1) % corners) * 2;
            double on[2];
            nearest_on_segment(a, b, c, on);
            double d2 = (on[0] - c[0]) * (on[0] - c[0]) + (on[1] - c[1]) * (on[1] - c[1]);
            if (d2 < best) {
                best = d2;
                nearest[0] = on[0];
                nearest[1] = on[1];
                edge = i;
            }
            double length = sqrt((b[0] - a[0]) * (b[0] - a[0]) + (b[1] - a[1]) * (b[1] - a[1]));
            if (corners >= 3 && turn(a, b, c) <= eps * length)
                inside = 0;
            area += 0.5 * (a[0] * b[1] - a[1] * b[0]);
        }
        if (inside) {
            /* Stable: turn n onto the world's down direction, after start. */
            double world_n[3], down[3] = {0, 0, -1}, fix[9];
            for (int r = 0; r < 3; r++)
                world_n[r] = start[r * 3] * n[0] + start[r * 3 + 1] * n[1] + start[r * 3 + 2] * n[2];
            turn_between(world_n, down, fix);
            for (int r = 0; r < 3; r++)
                for (int k = 0; k < 3; k++)
                    rest->rotation[r * 3 + k] =
                        fix[r * 3] * start[k] + fix[r * 3 + 1] * start[3 + k] + fix[r * 3 + 2] * start[6 + k];
            rest->height = height;
            rest->support_area = area;
            rest->contacts = count;
            rest->steps = step;
            rc = 0;
            break;
        }
        if (step == OD_SYNTH_POSE_MAX_STEPS)
            break;
        /* The pivot: about `nearest`, towards c; on a balance, the direction of the smallest turn. */
        double q[3];
        for (int k = 0; k < 3; k++)
            q[k] = com[k] + (floor_offset - dot3(com, n)) * n[k] + (nearest[0] - c[0]) * e1[k] +
                   (nearest[1] - c[1]) * e2[k];
        double away[2] = {c[0] - nearest[0], c[1] - nearest[1]};
        double distance = sqrt(away[0] * away[0] + away[1] * away[1]);
        double d[3], angle = -1;
        if (distance > eps) {
            for (int k = 0; k < 3; k++)
                d[k] = (away[0] * e1[k] + away[1] * e2[k]) / distance;
            angle = pivot_angle(mesh, q, n, d, eps);
        } else {
            /* Candidates: the outward normals of the nearest edge, else 16 directions in the plane. */
            int candidates = 0;
            double options[BALANCE_DIRECTIONS + 2][2];
            if (corners == 2 || (corners >= 3 && edge >= 0)) {
                const double *a = hull + edge * 2, *b = hull + ((edge + 1) % corners) * 2;
                double t[2] = {b[0] - a[0], b[1] - a[1]};
                double length = sqrt(t[0] * t[0] + t[1] * t[1]);
                if (length > 0) {
                    options[candidates][0] = t[1] / length;
                    options[candidates++][1] = -t[0] / length;
                    if (corners == 2) {
                        options[candidates][0] = -t[1] / length;
                        options[candidates++][1] = t[0] / length;
                    }
                }
            }
            if (candidates == 0)
                for (int i = 0; i < BALANCE_DIRECTIONS; i++) {
                    options[candidates][0] = cos(2 * PI * i / BALANCE_DIRECTIONS);
                    options[candidates++][1] = sin(2 * PI * i / BALANCE_DIRECTIONS);
                }
            for (int i = 0; i < candidates; i++) {
                double trial[3];
                for (int k = 0; k < 3; k++)
                    trial[k] = options[i][0] * e1[k] + options[i][1] * e2[k];
                double a = pivot_angle(mesh, q, n, trial, eps);
                if (a > 0 && (angle < 0 || a < angle - 1e-12)) {
                    angle = a;
                    memcpy(d, trial, sizeof d);
                }
            }
        }
        if (angle <= 0) {
            flat = 1;
            break;
        }
        for (int k = 0; k < 3; k++)
            n[k] = cos(angle) * n[k] + sin(angle) * d[k];
        normalize3(n);
    }
    if (rc != 0 && flat)
        od_fail(err, "rest pose: no vertex comes down when the mesh pivots (is the mesh flat?)");
    else if (rc != 0)
        od_fail(err, "rest pose: the drop did not settle in %d pivots", OD_SYNTH_POSE_MAX_STEPS);
    free(points);
    free(hull);
    return rc;
}
