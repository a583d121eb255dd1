/* The software rasterizer: triangle setup, z-buffer pass, deferred shading
 * and resolve. See raster.h for the conventions. */
#include "synth/raster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sample rows per band of the z-buffer pass; each thread takes whole bands. */
#define BAND_ROWS 16

/* The maximum object count whose shadow map is kept for the next view. */
#define OD_RASTER_SHADOW_CACHE_OBJECTS 64

/* Sample triangle ids below 0. */
#define SAMPLE_EMPTY (-1)
#define SAMPLE_FLOOR (-2)

/* A triangle after clipping, in sample coordinates. */
typedef struct screen_triangle {
    double x[3], y[3]; /* sample-space positions, pixel centres of the sample grid at integers */
    float inverse_depth[3];
    float bary[3][3]; /* barycentric coordinates of each corner in the mesh triangle */
    int32_t object, face;
    int32_t row0, row1, col0, col1; /* inclusive range of sample centres in the bounding box */
} screen_triangle;

struct od_rasterizer {
    screen_triangle *triangles;
    int64_t triangle_count, triangle_capacity;
    float *camera_positions; /* (total vertices, 3), camera space */
    float *camera_normals;   /* (total vertices, 3), camera space, unnormalised */
    int64_t vertex_capacity;
    int64_t *vertex_offsets; /* (objects + 1) */
    int object_capacity;
    float *sample_inverse_depth; /* (Hs, Ws) */
    int32_t *sample_triangle;    /* (Hs, Ws): index into triangles, or SAMPLE_EMPTY / SAMPLE_FLOOR */
    float *sample_weights;       /* (Hs, Ws, 2): perspective-correct weights of corners 1 and 2 */
    int64_t sample_capacity;
    float *shadow_points; /* (total vertices, 3): light-space u, v and depth towards the light */
    int64_t shadow_point_capacity;
    float *shadow_map;    /* (size, size): largest depth towards the light per texel */
    int64_t shadow_map_capacity;
    /* What the current shadow map was built from, to reuse it across the
     * views of one scene: the objects' meshes and poses, the light, the size. */
    int shadow_valid;
    int shadow_object_count;
    const od_mesh *shadow_meshes[OD_RASTER_SHADOW_CACHE_OBJECTS];
    double shadow_poses[OD_RASTER_SHADOW_CACHE_OBJECTS][16];
    float shadow_light[3];
    int shadow_size;
    struct shadow_view *shadow_cached;
};

/* The light's depth map, as shading reads it. */
typedef struct shadow_view shadow_view;
struct shadow_view {
    const float *map; /* NULL when there are no shadows */
    int size;
    double axis_u[3], axis_v[3], axis_w[3]; /* world; w points towards the light */
    double u0, v0;    /* light-space coordinates of the map's corner */
    double texel;     /* world units per texel */
    double bias;      /* depth margin against self-shadowing, world units */
};

od_raster_options od_raster_options_default(void)
{
    od_raster_options o;
    memset(&o, 0, sizeof o);
    o.supersample = 1;
    o.draw_floor = 1;
    o.floor_color[0] = o.floor_color[1] = o.floor_color[2] = 0.75f;
    o.floor_color2[0] = o.floor_color2[1] = o.floor_color2[2] = 0.6f;
    o.floor_check_size = 0.05f;
    o.background[0] = o.background[1] = o.background[2] = 1.0f;
    o.background_top[0] = o.background_top[1] = o.background_top[2] = 1.0f;
    o.light_direction[0] = 0.4f;
    o.light_direction[1] = 0.3f;
    o.light_direction[2] = 1.0f;
    o.light_color[0] = o.light_color[1] = o.light_color[2] = 1.0f;
    o.ambient = 0.3f;
    o.specular = 0.25f;
    o.shininess = 32.0f;
    o.shadow_map_size = 512;
    return o;
}

od_rasterizer *od_rasterizer_new(void)
{
    return calloc(1, sizeof(od_rasterizer));
}

void od_rasterizer_free(od_rasterizer *r)
{
    if (!r)
        return;
    free(r->triangles);
    free(r->camera_positions);
    free(r->camera_normals);
    free(r->vertex_offsets);
    free(r->sample_inverse_depth);
    free(r->sample_triangle);
    free(r->sample_weights);
    free(r->shadow_points);
    free(r->shadow_map);
    free(r->shadow_cached);
    free(r);
}

void od_raster_frame_free(od_raster_frame *frame)
{
    if (!frame)
        return;
    od_image_free(&frame->rgb);
    free(frame->object_ids);
    free(frame->depth);
    free(frame->marks);
    memset(frame, 0, sizeof *frame);
}

void od_raster_pose(double scale, double yaw, const double translation[3], double m[16])
{
    double c = cos(yaw), s = sin(yaw);
    double pose[16] = {scale * c, -scale * s, 0, translation[0], scale * s, scale * c, 0, translation[1],
                       0,         0,          scale, translation[2], 0, 0, 0, 1};
    memcpy(m, pose, sizeof pose);
}

/* ---- setup ---------------------------------------------------------------------- */

static int reserve_vertices(od_rasterizer *r, int64_t count)
{
    if (count <= r->vertex_capacity)
        return 0;
    float *p = realloc(r->camera_positions, (size_t)count * 3 * sizeof(float));
    if (!p)
        return -1;
    r->camera_positions = p;
    float *n = realloc(r->camera_normals, (size_t)count * 3 * sizeof(float));
    if (!n)
        return -1;
    r->camera_normals = n;
    r->vertex_capacity = count;
    return 0;
}

static int push_triangle(od_rasterizer *r, const screen_triangle *t)
{
    if (r->triangle_count == r->triangle_capacity) {
        int64_t capacity = r->triangle_capacity ? r->triangle_capacity * 2 : 4096;
        screen_triangle *grown = realloc(r->triangles, (size_t)capacity * sizeof *grown);
        if (!grown)
            return -1;
        r->triangles = grown;
        r->triangle_capacity = capacity;
    }
    r->triangles[r->triangle_count++] = *t;
    return 0;
}

typedef struct clip_vertex {
    double p[3]; /* camera space */
    float bary[3];
} clip_vertex;

/* The sample-space camera: K scaled to the s x s sample grid. */
typedef struct sample_camera {
    double fx, fy, cx, cy;
    int width, height; /* in samples */
} sample_camera;

/* Projects a convex polygon of camera-space corners (all in front of the
 * near plane) and adds it as a fan of triangles. */
static int add_polygon(od_rasterizer *r, const sample_camera *sc, const clip_vertex *v, int count, int object,
                       int64_t face, int cull)
{
    screen_triangle t;
    t.object = object;
    t.face = (int32_t)face;
    double x[4], y[4];
    for (int k = 0; k < count; k++) {
        x[k] = sc->fx * v[k].p[0] / v[k].p[2] + sc->cx;
        y[k] = sc->fy * v[k].p[1] / v[k].p[2] + sc->cy;
        if (!isfinite(x[k]) || !isfinite(y[k]))
            return 0;
    }
    for (int k = 1; k + 1 < count; k++) {
        int corner[3] = {0, k, k + 1};
        double min_x = INFINITY, max_x = -INFINITY, min_y = INFINITY, max_y = -INFINITY;
        for (int c = 0; c < 3; c++) {
            const clip_vertex *cv = &v[corner[c]];
            t.x[c] = x[corner[c]];
            t.y[c] = y[corner[c]];
            t.inverse_depth[c] = (float)(1.0 / cv->p[2]);
            memcpy(t.bary[c], cv->bary, sizeof t.bary[c]);
            min_x = t.x[c] < min_x ? t.x[c] : min_x;
            max_x = t.x[c] > max_x ? t.x[c] : max_x;
            min_y = t.y[c] < min_y ? t.y[c] : min_y;
            max_y = t.y[c] > max_y ? t.y[c] : max_y;
        }
        if (max_x < 0 || max_y < 0 || min_x > sc->width - 1 || min_y > sc->height - 1)
            continue;
        /* Sample centres lie on integers, so a triangle whose box contains none
         * (common for small triangles) covers no sample and is dropped. */
        t.row0 = min_y > 0 ? (int32_t)ceil(min_y) : 0;
        t.row1 = max_y < sc->height - 1 ? (int32_t)floor(max_y) : sc->height - 1;
        t.col0 = min_x > 0 ? (int32_t)ceil(min_x) : 0;
        t.col1 = max_x < sc->width - 1 ? (int32_t)floor(max_x) : sc->width - 1;
        if (t.row0 > t.row1 || t.col0 > t.col1)
            continue;
        double area = (t.x[1] - t.x[0]) * (t.y[2] - t.y[0]) - (t.y[1] - t.y[0]) * (t.x[2] - t.x[0]);
        if (area == 0)
            continue;
        /* A mesh face counter-clockwise seen from the front is clockwise in
         * y-up terms once y points down, which makes `area` negative here. */
        if (cull && area > 0)
            continue;
        if (push_triangle(r, &t) != 0)
            return -1;
    }
    return 0;
}

/* Clips a triangle to z >= OD_RASTER_NEAR (Sutherland-Hodgman against one
 * plane, at most 4 corners) and adds what remains. */
static int add_triangle(od_rasterizer *r, const sample_camera *sc, const float *a, const float *b, const float *c,
                        int object, int64_t face, int cull)
{
    clip_vertex in[3];
    const float *corners[3] = {a, b, c};
    int inside = 0;
    for (int k = 0; k < 3; k++) {
        for (int d = 0; d < 3; d++) {
            in[k].p[d] = corners[k][d];
            in[k].bary[d] = k == d ? 1.0f : 0.0f;
        }
        inside += in[k].p[2] >= OD_RASTER_NEAR;
    }
    if (inside == 3)
        return add_polygon(r, sc, in, 3, object, face, cull);
    if (inside == 0)
        return 0;
    clip_vertex out[4];
    int count = 0;
    for (int k = 0; k < 3; k++) {
        const clip_vertex *p = &in[k], *q = &in[(k + 1) % 3];
        int p_in = p->p[2] >= OD_RASTER_NEAR, q_in = q->p[2] >= OD_RASTER_NEAR;
        if (p_in)
            out[count++] = *p;
        if (p_in != q_in) {
            double s = (OD_RASTER_NEAR - p->p[2]) / (q->p[2] - p->p[2]);
            clip_vertex m;
            for (int d = 0; d < 3; d++) {
                m.p[d] = p->p[d] + s * (q->p[d] - p->p[d]);
                m.bary[d] = (float)(p->bary[d] + s * (q->bary[d] - p->bary[d]));
            }
            m.p[2] = OD_RASTER_NEAR;
            out[count++] = m;
        }
    }
    return add_polygon(r, sc, out, count, object, face, cull);
}

/* Writes the 3x3 that maps model normals to camera space: the cofactor
 * matrix of the linear part (the inverse transpose times the determinant),
 * signed so that it keeps orientation. */
static void normal_matrix(const double m[9], double n[9])
{
    n[0] = m[4] * m[8] - m[5] * m[7];
    n[1] = m[5] * m[6] - m[3] * m[8];
    n[2] = m[3] * m[7] - m[4] * m[6];
    n[3] = m[2] * m[7] - m[1] * m[8];
    n[4] = m[0] * m[8] - m[2] * m[6];
    n[5] = m[1] * m[6] - m[0] * m[7];
    n[6] = m[1] * m[5] - m[2] * m[4];
    n[7] = m[2] * m[3] - m[0] * m[5];
    n[8] = m[0] * m[4] - m[1] * m[3];
    double det = m[0] * n[0] + m[1] * n[1] + m[2] * n[2];
    if (det < 0)
        for (int i = 0; i < 9; i++)
            n[i] = -n[i];
}

static int validate(const od_camera *camera, const od_raster_object *objects, int object_count,
                    const od_raster_options *o, od_error *err)
{
    if (od_camera_validate(camera, "raster camera", err) != 0)
        return -1;
    if ((int64_t)camera->width * camera->height > ((int64_t)1 << 26))
        return od_fail(err, "raster: image of %d x %d pixels is too large (at most 2^26 pixels)", camera->width,
                       camera->height);
    if (o->shadow_map_size != 0 && (o->shadow_map_size < 16 || o->shadow_map_size > 8192))
        return od_fail(err, "raster: invalid shadow map size %d (expected 0 for none, or 16 to 8192)",
                       o->shadow_map_size);
    if (o->supersample < 1 || o->supersample > 4)
        return od_fail(err, "raster: invalid supersample %d (expected 1, 2, 3 or 4)", o->supersample);
    if (o->floor_pattern < OD_RASTER_FLOOR_CHECKER || o->floor_pattern > OD_RASTER_FLOOR_NOISE)
        return od_fail(err, "raster: invalid floor pattern %d (expected 0 to %d)", o->floor_pattern,
                       (int)OD_RASTER_FLOOR_NOISE);
    if (!(o->floor_check_size >= 0) || !isfinite(o->floor_check_size) || !isfinite(o->floor_angle))
        return od_fail(err, "raster: invalid floor scale %g or angle %g (expected a finite scale >= 0)",
                       (double)o->floor_check_size, (double)o->floor_angle);
    if (!(o->ambient >= 0 && o->ambient <= 1) || !(o->specular >= 0) || !(o->shininess >= 0))
        return od_fail(err, "raster: invalid lighting: ambient %g (expected [0, 1]), specular %g and "
                            "shininess %g (expected >= 0)",
                       (double)o->ambient, (double)o->specular, (double)o->shininess);
    if (object_count < 0 || (object_count > 0 && !objects))
        return od_fail(err, "raster: invalid object list of %d objects", object_count);
    for (int i = 0; i < object_count; i++) {
        const od_mesh *mesh = objects[i].mesh;
        if (!mesh)
            return od_fail(err, "raster: object %d has no mesh", i);
        for (int k = 0; k < 16; k++)
            if (!isfinite(objects[i].model_to_world[k]))
                return od_fail(err, "raster: object %d has a non-finite model-to-world matrix", i);
        for (int64_t f = 0; f < mesh->face_count * 3; f++)
            if (mesh->faces[f] < 0 || mesh->faces[f] >= mesh->vertex_count)
                return od_fail(err, "raster: object %d, face %lld: vertex index %d out of range (the mesh has "
                                    "%lld vertices)",
                               i, (long long)(f / 3), mesh->faces[f], (long long)mesh->vertex_count);
    }
    return 0;
}

/* Transforms every object's vertices to camera space and builds the
 * clipped, projected triangles. */
static int setup(od_rasterizer *r, const od_camera *camera, const sample_camera *sc,
                 const od_raster_object *objects, int object_count, int cull, od_error *err)
{
    if (object_count + 1 > r->object_capacity) {
        int64_t *offsets = realloc(r->vertex_offsets, (size_t)(object_count + 1) * sizeof(int64_t));
        if (!offsets)
            return od_fail(err, "raster: out of memory");
        r->vertex_offsets = offsets;
        r->object_capacity = object_count + 1;
    }
    int64_t total = 0;
    for (int i = 0; i < object_count; i++) {
        r->vertex_offsets[i] = total;
        total += objects[i].mesh->vertex_count;
    }
    r->vertex_offsets[object_count] = total;
    if (reserve_vertices(r, total + 1) != 0)
        return od_fail(err, "raster: out of memory for %lld vertices", (long long)total);

    r->triangle_count = 0;
    for (int i = 0; i < object_count; i++) {
        const od_mesh *mesh = objects[i].mesh;
        double m[16];
        od_mat4_multiply(camera->world_to_camera, objects[i].model_to_world, m);
        double linear[9] = {m[0], m[1], m[2], m[4], m[5], m[6], m[8], m[9], m[10]}, nm[9];
        normal_matrix(linear, nm);
        float *cp = r->camera_positions + r->vertex_offsets[i] * 3;
        float *cn = r->camera_normals + r->vertex_offsets[i] * 3;
        for (int64_t v = 0; v < mesh->vertex_count; v++) {
            const float *p = mesh->positions + v * 3;
            for (int d = 0; d < 3; d++)
                cp[v * 3 + d] = (float)(m[d * 4] * p[0] + m[d * 4 + 1] * p[1] + m[d * 4 + 2] * p[2] + m[d * 4 + 3]);
            if (mesh->normals) {
                const float *n = mesh->normals + v * 3;
                for (int d = 0; d < 3; d++)
                    cn[v * 3 + d] = (float)(nm[d * 3] * n[0] + nm[d * 3 + 1] * n[1] + nm[d * 3 + 2] * n[2]);
            }
        }
        for (int64_t f = 0; f < mesh->face_count; f++) {
            const int32_t *tri = mesh->faces + f * 3;
            if (add_triangle(r, sc, cp + (int64_t)tri[0] * 3, cp + (int64_t)tri[1] * 3, cp + (int64_t)tri[2] * 3, i,
                             f, cull) != 0)
                return od_fail(err, "raster: out of memory for triangles");
        }
    }
    return 0;
}

/* ---- z-buffer pass -------------------------------------------------------------- */

/* Fills one band's samples with the floor (or nothing) as the starting depth. */
static void clear_band(od_rasterizer *r, const od_camera *camera, const sample_camera *sc, int draw_floor, int y0,
                       int y1)
{
    /* The floor's inverse depth is linear on the sample grid: a ray through
     * sample (x, y) has camera direction d = ((x - cx) / fx, (y - cy) / fy, 1),
     * meets z = 0 at world depth t = -C_z / (R^T d)_z, and t is also its depth
     * along the optical axis because d_z = 1. */
    const double *w = camera->world_to_camera;
    double centre[3];
    od_camera_center(camera, centre);
    double gx = 0, gy = 0, g0 = 0;
    int floor_visible = draw_floor && centre[2] > 0;
    if (floor_visible) {
        /* (R^T d)_z = R[0][2] d_x + R[1][2] d_y + R[2][2]. */
        double a = w[2] / sc->fx, b = w[6] / sc->fy;
        double c = w[10] - a * sc->cx - b * sc->cy;
        gx = -a / centre[2];
        gy = -b / centre[2];
        g0 = -c / centre[2];
    }
    for (int y = y0; y < y1; y++) {
        float *depth = r->sample_inverse_depth + (int64_t)y * sc->width;
        int32_t *tri = r->sample_triangle + (int64_t)y * sc->width;
        for (int x = 0; x < sc->width; x++) {
            double inverse = gx * x + gy * y + g0;
            int hit = floor_visible && inverse > 0;
            depth[x] = hit ? (float)inverse : 0.0f;
            tri[x] = hit ? SAMPLE_FLOOR : SAMPLE_EMPTY;
        }
    }
}

static void raster_band(od_rasterizer *r, const sample_camera *sc, int y0, int y1)
{
    for (int64_t index = 0; index < r->triangle_count; index++) {
        const screen_triangle *t = &r->triangles[index];
        if (t->row1 < y0 || t->row0 >= y1)
            continue;
        int row0 = t->row0 > y0 ? t->row0 : y0;
        int row1 = t->row1 < y1 - 1 ? t->row1 : y1 - 1;
        int col0 = t->col0, col1 = t->col1;

        /* Edge k is opposite corner k; e_k(x, y) = gx_k x + gy_k y + c_k is
         * positive inside once the signs are flipped for clockwise triangles. */
        double area = (t->x[1] - t->x[0]) * (t->y[2] - t->y[0]) - (t->y[1] - t->y[0]) * (t->x[2] - t->x[0]);
        double sign = area > 0 ? 1.0 : -1.0;
        double gx[3], gy[3], c[3];
        int include_zero[3];
        for (int k = 0; k < 3; k++) {
            int a = (k + 1) % 3, b = (k + 2) % 3;
            gx[k] = -sign * (t->y[b] - t->y[a]);
            gy[k] = sign * (t->x[b] - t->x[a]);
            c[k] = -(gx[k] * t->x[a] + gy[k] * t->y[a]);
            /* Top-left rule: a sample exactly on an edge belongs to the
             * triangle whose inside lies to the +x side of it, or below it
             * (+y) for a horizontal edge. Two triangles sharing the edge see
             * opposite gradients, so exactly one takes the sample. */
            include_zero[k] = gx[k] > 0 || (gx[k] == 0 && gy[k] > 0);
        }
        double inverse_area = 1.0 / fabs(area);
        float iz0 = t->inverse_depth[0], iz1 = t->inverse_depth[1], iz2 = t->inverse_depth[2];
        for (int y = row0; y <= row1; y++) {
            double e[3];
            for (int k = 0; k < 3; k++)
                e[k] = gx[k] * col0 + gy[k] * y + c[k];
            int64_t row_base = (int64_t)y * sc->width;
            for (int x = col0; x <= col1; x++, e[0] += gx[0], e[1] += gx[1], e[2] += gx[2]) {
                if (e[0] < 0 || e[1] < 0 || e[2] < 0)
                    continue;
                if ((e[0] == 0 && !include_zero[0]) || (e[1] == 0 && !include_zero[1]) ||
                    (e[2] == 0 && !include_zero[2]))
                    continue;
                float l0 = (float)(e[0] * inverse_area), l1 = (float)(e[1] * inverse_area),
                      l2 = (float)(e[2] * inverse_area);
                float iz = l0 * iz0 + l1 * iz1 + l2 * iz2;
                int64_t s = row_base + x;
                if (iz > r->sample_inverse_depth[s]) {
                    r->sample_inverse_depth[s] = iz;
                    r->sample_triangle[s] = (int32_t)index;
                    r->sample_weights[s * 2] = l1 * iz1 / iz;
                    r->sample_weights[s * 2 + 1] = l2 * iz2 / iz;
                }
            }
        }
    }
}

/* ---- shadow map ----------------------------------------------------------------- */

/* Rasterizes one triangle of light-space points into the rows [y0, y1) of
 * the map, keeping the largest depth towards the light. Depth is linear in
 * an orthographic projection, so plain barycentric interpolation is exact. */
static void shadow_triangle(float *map, int size, const shadow_view *view, const float *a, const float *b,
                            const float *c, int y0, int y1)
{
    const float *p[3] = {a, b, c};
    double x[3], y[3];
    for (int k = 0; k < 3; k++) {
        x[k] = (p[k][0] - view->u0) / view->texel - 0.5;
        y[k] = (p[k][1] - view->v0) / view->texel - 0.5;
    }
    double min_y = y[0], max_y = y[0], min_x = x[0], max_x = x[0];
    for (int k = 1; k < 3; k++) {
        min_y = y[k] < min_y ? y[k] : min_y;
        max_y = y[k] > max_y ? y[k] : max_y;
        min_x = x[k] < min_x ? x[k] : min_x;
        max_x = x[k] > max_x ? x[k] : max_x;
    }
    if (max_y < y0 || min_y > y1 - 1 || max_x < 0 || min_x > size - 1)
        return;
    int row0 = min_y > y0 ? (int)ceil(min_y) : y0, row1 = max_y < y1 - 1 ? (int)floor(max_y) : y1 - 1;
    int col0 = min_x > 0 ? (int)ceil(min_x) : 0, col1 = max_x < size - 1 ? (int)floor(max_x) : size - 1;
    double area = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0]);
    if (area == 0)
        return;
    for (int row = row0; row <= row1; row++)
        for (int col = col0; col <= col1; col++) {
            double l1 = ((col - x[0]) * (y[2] - y[0]) - (row - y[0]) * (x[2] - x[0])) / area;
            double l2 = ((x[1] - x[0]) * (row - y[0]) - (y[1] - y[0]) * (col - x[0])) / area;
            double l0 = 1 - l1 - l2;
            /* Closed edges: a shadow map may cover a texel twice, never leave a gap. */
            if (l0 < 0 || l1 < 0 || l2 < 0)
                continue;
            float depth = (float)(l0 * a[2] + l1 * b[2] + l2 * c[2]);
            float *texel = map + (int64_t)row * size + col;
            if (depth > *texel)
                *texel = depth;
        }
}

static int build_shadow_map_now(od_rasterizer *r, const od_raster_object *objects, int object_count,
                                const od_raster_options *o, shadow_view *view, od_error *err);

/* Builds the light's depth map over every object, or leaves view->map NULL
 * when shadows are off or there is nothing to cast them. The map of the
 * previous call is reused when the meshes (by address), poses, light and
 * size are the same. */
static int build_shadow_map(od_rasterizer *r, const od_raster_object *objects, int object_count,
                            const od_raster_options *o, shadow_view *view, od_error *err)
{
    memset(view, 0, sizeof *view);
    int cacheable = object_count <= OD_RASTER_SHADOW_CACHE_OBJECTS;
    if (cacheable && r->shadow_valid && r->shadow_cached && r->shadow_object_count == object_count &&
        r->shadow_size == o->shadow_map_size && memcmp(r->shadow_light, o->light_direction, sizeof r->shadow_light) == 0) {
        int same = 1;
        for (int i = 0; i < object_count && same; i++)
            same = r->shadow_meshes[i] == objects[i].mesh &&
                   memcmp(r->shadow_poses[i], objects[i].model_to_world, sizeof r->shadow_poses[i]) == 0;
        if (same) {
            *view = *r->shadow_cached;
            return 0;
        }
    }
    r->shadow_valid = 0;
    if (build_shadow_map_now(r, objects, object_count, o, view, err) != 0)
        return -1;
    if (cacheable) {
        if (!r->shadow_cached)
            r->shadow_cached = malloc(sizeof *r->shadow_cached);
        if (r->shadow_cached) {
            *r->shadow_cached = *view;
            r->shadow_object_count = object_count;
            for (int i = 0; i < object_count; i++) {
                r->shadow_meshes[i] = objects[i].mesh;
                memcpy(r->shadow_poses[i], objects[i].model_to_world, sizeof r->shadow_poses[i]);
            }
            memcpy(r->shadow_light, o->light_direction, sizeof r->shadow_light);
            r->shadow_size = o->shadow_map_size;
            r->shadow_valid = 1;
        }
    }
    return 0;
}

void od_rasterizer_invalidate_shadows(od_rasterizer *r)
{
    r->shadow_valid = 0;
}

static int build_shadow_map_now(od_rasterizer *r, const od_raster_object *objects, int object_count,
                                const od_raster_options *o, shadow_view *view, od_error *err)
{
    int64_t total = r->vertex_offsets[object_count];
    double w[3] = {o->light_direction[0], o->light_direction[1], o->light_direction[2]};
    double length = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    if (o->shadow_map_size == 0 || total == 0 || !(length > 0))
        return 0;
    for (int d = 0; d < 3; d++)
        w[d] /= length;
    /* u is perpendicular to w and to whichever world axis is least aligned with it. */
    double helper[3] = {0, 0, 0};
    int least = 0;
    for (int d = 1; d < 3; d++)
        if (fabs(w[d]) < fabs(w[least]))
            least = d;
    helper[least] = 1;
    double u[3] = {w[1] * helper[2] - w[2] * helper[1], w[2] * helper[0] - w[0] * helper[2],
                   w[0] * helper[1] - w[1] * helper[0]};
    length = sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    for (int d = 0; d < 3; d++)
        u[d] /= length;
    double v[3] = {w[1] * u[2] - w[2] * u[1], w[2] * u[0] - w[0] * u[2], w[0] * u[1] - w[1] * u[0]};

    if (total > r->shadow_point_capacity) {
        float *points = realloc(r->shadow_points, (size_t)total * 3 * sizeof(float));
        if (!points)
            return od_fail(err, "raster: out of memory for the shadow map's %lld points", (long long)total);
        r->shadow_points = points;
        r->shadow_point_capacity = total;
    }
    double min_u = INFINITY, max_u = -INFINITY, min_v = INFINITY, max_v = -INFINITY;
    for (int i = 0; i < object_count; i++) {
        const od_mesh *mesh = objects[i].mesh;
        const double *m = objects[i].model_to_world;
        float *out = r->shadow_points + r->vertex_offsets[i] * 3;
        for (int64_t k = 0; k < mesh->vertex_count; k++) {
            const float *p = mesh->positions + k * 3;
            double world[3];
            for (int d = 0; d < 3; d++)
                world[d] = m[d * 4] * p[0] + m[d * 4 + 1] * p[1] + m[d * 4 + 2] * p[2] + m[d * 4 + 3];
            double pu = u[0] * world[0] + u[1] * world[1] + u[2] * world[2];
            double pv = v[0] * world[0] + v[1] * world[1] + v[2] * world[2];
            out[k * 3] = (float)pu;
            out[k * 3 + 1] = (float)pv;
            out[k * 3 + 2] = (float)(w[0] * world[0] + w[1] * world[1] + w[2] * world[2]);
            min_u = pu < min_u ? pu : min_u;
            max_u = pu > max_u ? pu : max_u;
            min_v = pv < min_v ? pv : min_v;
            max_v = pv > max_v ? pv : max_v;
        }
    }
    double extent = fmax(max_u - min_u, max_v - min_v);
    if (!(extent > 0) || !isfinite(extent))
        return 0;
    int size = o->shadow_map_size;
    int64_t texels = (int64_t)size * size;
    if (texels > r->shadow_map_capacity) {
        free(r->shadow_map);
        r->shadow_map = malloc((size_t)texels * sizeof(float));
        r->shadow_map_capacity = r->shadow_map ? texels : 0;
        if (!r->shadow_map)
            return od_fail(err, "raster: out of memory for a %d x %d shadow map", size, size);
    }
    /* A margin of 2 % keeps the outermost triangles' texels inside the map. */
    view->texel = extent * 1.04 / size;
    view->u0 = min_u - extent * 0.02;
    view->v0 = min_v - extent * 0.02;
    view->size = size;
    view->bias = 2.0 * view->texel;
    memcpy(view->axis_u, u, sizeof u);
    memcpy(view->axis_v, v, sizeof v);
    memcpy(view->axis_w, w, sizeof w);

    int bands = (size + BAND_ROWS * 4 - 1) / (BAND_ROWS * 4);
    float *map = r->shadow_map;
#pragma omp parallel for schedule(dynamic, 1)
    for (int band = 0; band < bands; band++) {
        int y0 = band * BAND_ROWS * 4, y1 = y0 + BAND_ROWS * 4 < size ? y0 + BAND_ROWS * 4 : size;
        for (int64_t t = (int64_t)y0 * size; t < (int64_t)y1 * size; t++)
            map[t] = -INFINITY;
        for (int i = 0; i < object_count; i++) {
            const od_mesh *mesh = objects[i].mesh;
            const float *points = r->shadow_points + r->vertex_offsets[i] * 3;
            for (int64_t f = 0; f < mesh->face_count; f++) {
                const int32_t *tri = mesh->faces + f * 3;
                shadow_triangle(map, size, view, points + (int64_t)tri[0] * 3, points + (int64_t)tri[1] * 3,
                                points + (int64_t)tri[2] * 3, y0, y1);
            }
        }
    }
    view->map = map;
    return 0;
}

/* Returns 1 when the world point is lit, 0 when an object shadows it. */
static int lit_by_light(const shadow_view *view, const double world[3], float cos_light)
{
    if (!view->map)
        return 1;
    const double *u = view->axis_u, *v = view->axis_v, *w = view->axis_w;
    double pu = u[0] * world[0] + u[1] * world[1] + u[2] * world[2];
    double pv = v[0] * world[0] + v[1] * world[1] + v[2] * world[2];
    double x = (pu - view->u0) / view->texel - 0.5, y = (pv - view->v0) / view->texel - 0.5;
    if (!(x > -0.5 && y > -0.5 && x < view->size - 0.5 && y < view->size - 0.5))
        return 1;
    int col = (int)(x + 0.5), row = (int)(y + 0.5);
    double depth = w[0] * world[0] + w[1] * world[1] + w[2] * world[2];
    /* A surface at a slope to the light changes depth by texel * tan(angle) across a texel, so the margin
     * grows with the slope (up to tan = 8), or a flat surface at a grazing light shadows itself. */
    double c = fabs((double)cos_light);
    double slope = c > 0.124 ? sqrt(1 - c * c) / c : 8.0;
    return view->map[(int64_t)row * view->size + col] <= depth + view->bias + view->texel * slope;
}

/* ---- shading and resolve -------------------------------------------------------- */

typedef struct shading {
    float light[3]; /* unit, camera space, towards the light */
    float floor_normal[3];
    double centre[3];             /* camera centre, world */
    double camera_to_world_r[9];  /* R^T */
    float floor_light[3];         /* diffuse lighting factor of the floor per channel */
    double floor_cos, floor_sin;  /* of the stripes' direction */
    float floor_cos_light;        /* cosine between the floor's normal and the light */
    shadow_view shadow;
} shading;

static void sample_texture(const od_image *texture, float u, float v, float rgb[3])
{
    float x = (u - floorf(u)) * texture->width - 0.5f;
    float y = (1.0f - (v - floorf(v))) * texture->height - 0.5f;
    int x0 = (int)floorf(x), y0 = (int)floorf(y);
    float fx = x - x0, fy = y - y0;
    int w = texture->width, h = texture->height, ch = texture->channels;
    int xs[2] = {((x0 % w) + w) % w, (((x0 + 1) % w) + w) % w};
    int ys[2] = {((y0 % h) + h) % h, (((y0 + 1) % h) + h) % h};
    for (int c = 0; c < 3; c++) {
        int cc = ch == 1 ? 0 : c;
        float p00 = texture->pixels[((int64_t)ys[0] * w + xs[0]) * ch + cc];
        float p01 = texture->pixels[((int64_t)ys[0] * w + xs[1]) * ch + cc];
        float p10 = texture->pixels[((int64_t)ys[1] * w + xs[0]) * ch + cc];
        float p11 = texture->pixels[((int64_t)ys[1] * w + xs[1]) * ch + cc];
        rgb[c] = (p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy;
    }
}

static void light_point(const od_raster_options *o, const shading *sh, const float albedo[3], const float normal[3],
                        const float position[3], float specular, int lit, float rgb[3])
{
    float n[3] = {normal[0], normal[1], normal[2]};
    float view[3] = {-position[0], -position[1], -position[2]};
    float view_length = sqrtf(view[0] * view[0] + view[1] * view[1] + view[2] * view[2]);
    if (view_length > 0)
        for (int d = 0; d < 3; d++)
            view[d] /= view_length;
    /* Light the side that faces the camera. */
    if (n[0] * view[0] + n[1] * view[1] + n[2] * view[2] < 0)
        for (int d = 0; d < 3; d++)
            n[d] = -n[d];
    const float *l = sh->light;
    float diffuse = lit ? fmaxf(0.0f, n[0] * l[0] + n[1] * l[1] + n[2] * l[2]) : 0.0f;
    float highlight = 0;
    if (specular > 0 && diffuse > 0) {
        float h[3] = {l[0] + view[0], l[1] + view[1], l[2] + view[2]};
        float length = sqrtf(h[0] * h[0] + h[1] * h[1] + h[2] * h[2]);
        if (length > 0) {
            float nh = (n[0] * h[0] + n[1] * h[1] + n[2] * h[2]) / length;
            highlight = nh > 0 ? specular * powf(nh, o->shininess) : 0;
        }
    }
    for (int c = 0; c < 3; c++) {
        float value = albedo[c] * (o->ambient + (1 - o->ambient) * diffuse * o->light_color[c]) +
                      highlight * o->light_color[c];
        rgb[c] = fminf(fmaxf(value, 0.0f), 1.0f);
    }
}

static void shade_object(const od_rasterizer *r, const od_raster_object *objects, const od_raster_options *o,
                         const shading *sh, int64_t s, float rgb[3], float *depth)
{
    const screen_triangle *t = &r->triangles[r->sample_triangle[s]];
    const od_raster_object *object = &objects[t->object];
    const od_mesh *mesh = object->mesh;
    float w1 = r->sample_weights[s * 2], w2 = r->sample_weights[s * 2 + 1], w0 = 1 - w1 - w2;
    float b[3];
    for (int k = 0; k < 3; k++)
        b[k] = w0 * t->bary[0][k] + w1 * t->bary[1][k] + w2 * t->bary[2][k];
    const int32_t *face = mesh->faces + (int64_t)t->face * 3;
    int64_t base = r->vertex_offsets[t->object];
    const float *p[3], *n[3];
    for (int k = 0; k < 3; k++) {
        p[k] = r->camera_positions + (base + face[k]) * 3;
        n[k] = r->camera_normals + (base + face[k]) * 3;
    }
    float position[3], normal[3];
    for (int d = 0; d < 3; d++)
        position[d] = b[0] * p[0][d] + b[1] * p[1][d] + b[2] * p[2][d];
    if (mesh->normals) {
        for (int d = 0; d < 3; d++)
            normal[d] = b[0] * n[0][d] + b[1] * n[1][d] + b[2] * n[2][d];
    } else {
        float u[3], v[3];
        for (int d = 0; d < 3; d++) {
            u[d] = p[1][d] - p[0][d];
            v[d] = p[2][d] - p[0][d];
        }
        normal[0] = u[1] * v[2] - u[2] * v[1];
        normal[1] = u[2] * v[0] - u[0] * v[2];
        normal[2] = u[0] * v[1] - u[1] * v[0];
    }
    float length = sqrtf(normal[0] * normal[0] + normal[1] * normal[1] + normal[2] * normal[2]);
    if (length > 0)
        for (int d = 0; d < 3; d++)
            normal[d] /= length;

    float albedo[3];
    int material = mesh->face_materials ? mesh->face_materials[t->face] : -1;
    const od_mesh_material *m = material >= 0 && material < mesh->material_count ? &mesh->materials[material] : NULL;
    if (m && m->texture.pixels && mesh->uvs) {
        float uv[2];
        for (int d = 0; d < 2; d++)
            uv[d] = b[0] * mesh->uvs[face[0] * 2 + d] + b[1] * mesh->uvs[face[1] * 2 + d] +
                    b[2] * mesh->uvs[face[2] * 2 + d];
        sample_texture(&m->texture, uv[0], uv[1], albedo);
    } else if (mesh->colors) {
        for (int c = 0; c < 3; c++)
            albedo[c] = b[0] * mesh->colors[face[0] * 3 + c] + b[1] * mesh->colors[face[1] * 3 + c] +
                        b[2] * mesh->colors[face[2] * 3 + c];
    } else if (m) {
        memcpy(albedo, m->diffuse, sizeof albedo);
    } else {
        memcpy(albedo, object->color, sizeof albedo);
    }
    int lit = 1;
    if (sh->shadow.map) {
        double world[3];
        for (int d = 0; d < 3; d++)
            world[d] = sh->centre[d] + sh->camera_to_world_r[d * 3] * position[0] +
                       sh->camera_to_world_r[d * 3 + 1] * position[1] + sh->camera_to_world_r[d * 3 + 2] * position[2];
        lit = lit_by_light(&sh->shadow, world, normal[0] * sh->light[0] + normal[1] * sh->light[1] +
                                                   normal[2] * sh->light[2]);
    }
    light_point(o, sh, albedo, normal, position, o->specular, lit, rgb);
    *depth = position[2];
}

/* A hash of a lattice point to [0, 1). */
static float lattice_value(int64_t x, int64_t y, uint32_t octave)
{
    uint64_t h = (uint64_t)x * 0x9E3779B97F4A7C15ull ^ (uint64_t)y * 0xC2B2AE3D27D4EB4Full ^ octave * 0x165667B19E3779F9ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

/* Value noise in [0, 1) at (x, y) in lattice units, smoothly interpolated. */
static float value_noise(double x, double y, uint32_t octave)
{
    double fx = floor(x), fy = floor(y);
    int64_t ix = (int64_t)fx, iy = (int64_t)fy;
    float tx = (float)(x - fx), ty = (float)(y - fy);
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    float a = lattice_value(ix, iy, octave), b = lattice_value(ix + 1, iy, octave);
    float c = lattice_value(ix, iy + 1, octave), d = lattice_value(ix + 1, iy + 1, octave);
    return (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
}

/* The weight of floor_color2 at the world point (x, y) of the floor, in [0, 1]. */
static float floor_blend(const od_raster_options *o, const shading *sh, double x, double y)
{
    double scale = o->floor_check_size;
    if (o->floor_pattern == OD_RASTER_FLOOR_STRIPES) {
        double c = sh->floor_cos, s = sh->floor_sin;
        double across = (c * x + s * y) / scale, along = (-s * x + c * y) / scale;
        /* Bands bent by a slow wave and a little noise, sharpened towards the dark grain lines. */
        double phase = across + 0.25 * sin(0.9 * along) + 0.35 * value_noise(across * 0.5, along * 0.1, 7);
        float band = 0.5f + 0.5f * (float)sin(2 * 3.14159265358979 * phase);
        return band * band * band;
    }
    if (o->floor_pattern == OD_RASTER_FLOOR_NOISE) {
        float sum = 0, weight = 0, amplitude = 1;
        double u = x / scale, v = y / scale;
        for (uint32_t octave = 0; octave < 3; octave++) {
            sum += amplitude * value_noise(u, v, octave);
            weight += amplitude;
            amplitude *= 0.5f;
            u *= 2.03;
            v *= 2.03;
        }
        return sum / weight;
    }
    double cell[2] = {floor(x / scale), floor(y / scale)};
    /* Parity in doubles stays defined for cells too far away for an integer type. */
    double sum = cell[0] + cell[1];
    return sum - 2.0 * floor(0.5 * sum) != 0 ? 1.0f : 0.0f;
}

/* The background where a sample's ray hits nothing: background at and below the horizon, blending to
 * background_top straight up. */
static void shade_background(const sample_camera *sc, const od_raster_options *o, const shading *sh, int x, int y,
                             float rgb[3])
{
    double ray[3] = {(x - sc->cx) / sc->fx, (y - sc->cy) / sc->fy, 1};
    const double *rt = sh->camera_to_world_r;
    double up = rt[6] * ray[0] + rt[7] * ray[1] + rt[8] * ray[2];
    double length = sqrt(ray[0] * ray[0] + ray[1] * ray[1] + 1);
    float t = up > 0 ? (float)sqrt(up / length) : 0.0f;
    for (int c = 0; c < 3; c++)
        rgb[c] = (1 - t) * o->background[c] + t * o->background_top[c];
}

static void shade_floor(const od_rasterizer *r, const sample_camera *sc, const od_raster_options *o,
                        const shading *sh, int64_t s, int x, int y, float rgb[3], float *depth)
{
    float z = 1.0f / r->sample_inverse_depth[s];
    const float *albedo = o->floor_color;
    double position[3] = {(x - sc->cx) / sc->fx * z, (y - sc->cy) / sc->fy * z, z};
    const double *rt = sh->camera_to_world_r;
    double world[3];
    for (int d = 0; d < 3; d++)
        world[d] = sh->centre[d] + rt[d * 3] * position[0] + rt[d * 3 + 1] * position[1] + rt[d * 3 + 2] * position[2];
    float mixed[3];
    if (o->floor_check_size > 0 && o->floor_pattern != OD_RASTER_FLOOR_PLAIN) {
        float t = floor_blend(o, sh, world[0], world[1]);
        /* Towards the horizon a sample covers more floor than the pattern's detail, which would alias:
         * the pattern fades to its mean as the sample's footprint, stretched along the view, grows from
         * a quarter to three quarters of the scale. */
        double ray_length = sqrt(position[0] * position[0] + position[1] * position[1] + position[2] * position[2]);
        double ray_up = fabs(rt[6] * position[0] + rt[7] * position[1] + rt[8] * position[2]) / ray_length;
        double footprint = (double)z / sc->fx / fmax(ray_up, 0.02) / o->floor_check_size;
        if (footprint > 0.25) {
            static const float means[4] = {0.5f, 0.0f, 0.3125f, 0.5f};
            float fade = footprint >= 0.75 ? 1.0f : (float)((footprint - 0.25) / 0.5);
            t += fade * (means[o->floor_pattern] - t);
        }
        for (int c = 0; c < 3; c++)
            mixed[c] = (1 - t) * o->floor_color[c] + t * o->floor_color2[c];
        albedo = mixed;
    }
    /* The floor is flat and the light directional, so its lighting is one
     * factor per channel, computed once per view. */
    int lit = lit_by_light(&sh->shadow, world, sh->floor_cos_light);
    for (int c = 0; c < 3; c++) {
        float value = albedo[c] * (lit ? sh->floor_light[c] : o->ambient);
        rgb[c] = value > 1 ? 1 : value;
    }
    *depth = z;
}

static uint16_t depth_to_millimetres(float depth)
{
    double mm = (double)depth * 1000.0 + 0.5;
    if (!(mm >= 1))
        return mm > 0 ? 1 : 0;
    return mm >= 65535 ? 65535 : (uint16_t)mm;
}

static void resolve_row(const od_rasterizer *r, const sample_camera *sc, const od_raster_object *objects,
                        const od_raster_options *o, const shading *sh, int row, od_raster_frame *frame)
{
    int s = o->supersample, count = s * s;
    for (int col = 0; col < frame->width; col++) {
        float sum[3] = {0, 0, 0};
        int32_t ids[16] = {0};
        float depths[16];
        /* Objects are shaded once per triangle per pixel, at the first sample
         * that hits the triangle, as multisampling does: the samples then only
         * antialias the triangles' edges. The floor is shaded per sample, so
         * that its checks are antialiased too. */
        int32_t shaded_triangle[16];
        float shaded_rgb[16][3], shaded_depth[16];
        int shaded_count = 0, marked = 0;
        for (int b = 0; b < s; b++)
            for (int a = 0; a < s; a++) {
                int x = col * s + a, y = row * s + b;
                int64_t index = (int64_t)y * sc->width + x;
                int32_t tri = r->sample_triangle[index];
                float rgb[3], depth = 0;
                int32_t id = 0;
                if (tri >= 0) {
                    int cached = -1;
                    for (int k = 0; k < shaded_count; k++)
                        if (shaded_triangle[k] == tri)
                            cached = k;
                    if (cached < 0) {
                        cached = shaded_count++;
                        shaded_triangle[cached] = tri;
                        shade_object(r, objects, o, sh, index, shaded_rgb[cached], &shaded_depth[cached]);
                    }
                    memcpy(rgb, shaded_rgb[cached], sizeof rgb);
                    depth = shaded_depth[cached];
                    const screen_triangle *t = &r->triangles[tri];
                    id = t->object + 1;
                    marked += objects[t->object].face_marks && objects[t->object].face_marks[t->face];
                } else if (tri == SAMPLE_FLOOR) {
                    shade_floor(r, sc, o, sh, index, x, y, rgb, &depth);
                } else {
                    shade_background(sc, o, sh, x, y, rgb);
                }
                for (int c = 0; c < 3; c++)
                    sum[c] += rgb[c];
                ids[b * s + a] = id;
                depths[b * s + a] = depth;
            }
        /* The pixel's id is the one most samples show (the earliest sample's on
         * a tie); its depth is the nearest of that id's samples. */
        int best = 0, best_count = 0, uniform_ids = 1;
        for (int i = 1; i < count; i++)
            uniform_ids &= ids[i] == ids[0];
        for (int i = 0; i < count && !uniform_ids; i++) {
            int n = 0;
            for (int j = 0; j < count; j++)
                n += ids[j] == ids[i];
            if (n > best_count) {
                best_count = n;
                best = i;
            }
        }
        float nearest = 0;
        for (int i = 0; i < count; i++)
            if (ids[i] == ids[best] && depths[i] > 0 && (nearest == 0 || depths[i] < nearest))
                nearest = depths[i];
        int64_t pixel = (int64_t)row * frame->width + col;
        for (int c = 0; c < 3; c++)
            frame->rgb.pixels[pixel * 3 + c] = sum[c] / (float)count;
        frame->object_ids[pixel] = ids[best];
        frame->marks[pixel] = 2 * marked >= count;
        frame->depth[pixel] = nearest > 0 ? depth_to_millimetres(nearest) : 0;
    }
}

/* ---- render ----------------------------------------------------------------------- */

static int prepare_frame(od_raster_frame *frame, int width, int height, od_error *err)
{
    if (frame->width == width && frame->height == height && frame->rgb.pixels && frame->object_ids && frame->depth &&
        frame->marks)
        return 0;
    od_raster_frame_free(frame);
    if (od_image_new(width, height, 3, &frame->rgb, err) != 0)
        return -1;
    frame->object_ids = malloc((size_t)width * height * sizeof(int32_t));
    frame->depth = malloc((size_t)width * height * sizeof(uint16_t));
    frame->marks = malloc((size_t)width * height);
    if (!frame->object_ids || !frame->depth || !frame->marks) {
        od_raster_frame_free(frame);
        return od_fail(err, "raster: out of memory for a %d x %d frame", width, height);
    }
    frame->width = width;
    frame->height = height;
    return 0;
}

int od_rasterizer_render(od_rasterizer *r, const od_camera *camera, const od_raster_object *objects,
                         int object_count, const od_raster_options *options, od_raster_frame *frame,
                         od_error *err)
{
    od_raster_options o = options ? *options : od_raster_options_default();
    if (validate(camera, objects, object_count, &o, err) != 0)
        return -1;
    int s = o.supersample;
    sample_camera sc = {
        .fx = camera->K[0] * s,
        .fy = camera->K[4] * s,
        .cx = (camera->K[2] + 0.5) * s - 0.5,
        .cy = (camera->K[5] + 0.5) * s - 0.5,
        .width = camera->width * s,
        .height = camera->height * s,
    };
    int64_t samples = (int64_t)sc.width * sc.height;
    if (samples > r->sample_capacity) {
        free(r->sample_inverse_depth);
        free(r->sample_triangle);
        free(r->sample_weights);
        r->sample_inverse_depth = malloc((size_t)samples * sizeof(float));
        r->sample_triangle = malloc((size_t)samples * sizeof(int32_t));
        r->sample_weights = malloc((size_t)samples * 2 * sizeof(float));
        r->sample_capacity = samples;
        if (!r->sample_inverse_depth || !r->sample_triangle || !r->sample_weights) {
            r->sample_capacity = 0;
            return od_fail(err, "raster: out of memory for %lld samples", (long long)samples);
        }
    }
    if (prepare_frame(frame, camera->width, camera->height, err) != 0)
        return -1;
    if (setup(r, camera, &sc, objects, object_count, o.cull_back_faces, err) != 0)
        return -1;

    shading sh;
    const double *w = camera->world_to_camera;
    double light[3];
    double length = 0;
    for (int d = 0; d < 3; d++) {
        light[d] = w[d * 4] * o.light_direction[0] + w[d * 4 + 1] * o.light_direction[1] +
                   w[d * 4 + 2] * o.light_direction[2];
        length += light[d] * light[d];
    }
    length = sqrt(length);
    for (int d = 0; d < 3; d++) {
        sh.light[d] = length > 0 ? (float)(light[d] / length) : 0.0f;
        sh.floor_normal[d] = (float)w[d * 4 + 2];
        for (int e = 0; e < 3; e++)
            sh.camera_to_world_r[d * 3 + e] = w[e * 4 + d];
    }
    od_camera_center(camera, sh.centre);
    sh.floor_cos = cos(o.floor_angle);
    sh.floor_sin = sin(o.floor_angle);
    /* The floor's up normal faces any camera above it (the only one that draws the floor). */
    float floor_diffuse = sh.floor_normal[0] * sh.light[0] + sh.floor_normal[1] * sh.light[1] +
                          sh.floor_normal[2] * sh.light[2];
    sh.floor_cos_light = floor_diffuse;
    floor_diffuse = floor_diffuse > 0 ? floor_diffuse : 0;
    for (int c = 0; c < 3; c++)
        sh.floor_light[c] = o.ambient + (1 - o.ambient) * floor_diffuse * o.light_color[c];

    if (build_shadow_map(r, objects, object_count, &o, &sh.shadow, err) != 0)
        return -1;

    int bands = (sc.height + BAND_ROWS - 1) / BAND_ROWS;
#pragma omp parallel
    {
#pragma omp for schedule(dynamic, 1)
        for (int band = 0; band < bands; band++) {
            int y0 = band * BAND_ROWS, y1 = y0 + BAND_ROWS < sc.height ? y0 + BAND_ROWS : sc.height;
            clear_band(r, camera, &sc, o.draw_floor, y0, y1);
            raster_band(r, &sc, y0, y1);
        }
#pragma omp for schedule(static)
        for (int row = 0; row < frame->height; row++)
            resolve_row(r, &sc, objects, &o, &sh, row, frame);
    }
    return 0;
}
