/* Geometric anomalies: bend, twist, fracture, crack, part missing, translated and rotated, and the close
 * shape. See anomaly.h. */
#include "synth/anomaly.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/generate.h"

#define PI_F 3.14159265f
/* Maximum face count of a crack's subdivided mesh. */
#define CRACK_MAX_FACES 400000

/* Writes the bounds and returns the largest extent. */
static float mesh_extent(const od_mesh *mesh, float min[3], float max[3])
{
    od_mesh_bounds(mesh, min, max);
    return fmaxf(max[0] - min[0], fmaxf(max[1] - min[1], max[2] - min[2]));
}

static int longest_axis(const float min[3], const float max[3])
{
    int axis = 0;
    for (int k = 1; k < 3; k++)
        if (max[k] - min[k] > max[axis] - min[axis])
            axis = k;
    return axis;
}

static float uniform(od_rng *rng, float low, float high)
{
    return low + (high - low) * od_rng_uniform(rng);
}

static int check_mesh(const od_mesh *mesh, const char *what, od_error *err)
{
    if (!mesh || mesh->vertex_count == 0 || mesh->face_count == 0)
        return od_fail(err, "%s: the mesh has no faces", what);
    float min[3], max[3];
    float size = mesh_extent(mesh, min, max);
    if (!(size > 0) || !isfinite(size))
        return od_fail(err, "%s: the mesh's extent %g is not positive and finite", what, (double)size);
    return 0;
}

static int finish_normals(od_mesh *out, od_error *err)
{
    if (out->normals && od_mesh_compute_normals(out, err) != 0) {
        od_mesh_free(out);
        return -1;
    }
    return 0;
}

/* How far the moved vertices left the original surface, in world units: for up to
 * 1024 vertices, evenly spaced in index, the distance of the moved position to the tangent plane of the
 * nearest original vertex (the largest over vertices that share that position, so that a box's corner
 * counts every face it belongs to). A deformation that slides vertices along the surface, like a twist
 * of a sphere about its axis, scores near 0 where the plain displacement would not. normals (V, 3) are
 * the original's. */
static float off_surface(const od_mesh *original, const float *normals, const od_mesh *moved)
{
    int64_t V = original->vertex_count;
    int64_t step = V > 1024 ? V / 1024 : 1;
    float largest = 0;
    for (int64_t i = 0; i < V; i += step) {
        const float *p = moved->positions + i * 3;
        float nearest = INFINITY;
        for (int64_t v = 0; v < V; v++) {
            const float *q = original->positions + v * 3;
            float d2 = (p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) + (p[2] - q[2]) * (p[2] - q[2]);
            nearest = fminf(nearest, d2);
        }
        float off = 0;
        for (int64_t v = 0; v < V; v++) {
            const float *q = original->positions + v * 3;
            float d[3] = {p[0] - q[0], p[1] - q[1], p[2] - q[2]};
            float d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            if (d2 > nearest * 1.0001f + 1e-12f)
                continue;
            const float *n = normals + v * 3;
            off = fmaxf(off, fabsf(d[0] * n[0] + d[1] * n[1] + d[2] * n[2]));
        }
        largest = fmaxf(largest, off);
    }
    return largest;
}

/* Writes the mesh's unit vertex normals (V, 3): its own, or computed from its faces. */
static float *vertex_normals(const od_mesh *mesh, od_error *err)
{
    od_mesh copy = {0};
    if (od_mesh_copy(mesh, &copy, err) != 0)
        return NULL;
    if (od_mesh_compute_normals(&copy, err) != 0) {
        od_mesh_free(&copy);
        return NULL;
    }
    float *normals = copy.normals;
    copy.normals = NULL;
    od_mesh_free(&copy);
    return normals;
}

/* ---- bend and twist --------------------------------------------------------------- */

int od_synth_bend(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info, od_error *err)
{
    /* positions (V, 3) are read; out gets the same faces and bent positions. */
    if (check_mesh(mesh, "bend", err) != 0)
        return -1;
    float *normals = vertex_normals(mesh, err);
    if (!normals)
        return -1;
    float min[3], max[3];
    float size = mesh_extent(mesh, min, max);
    int along = longest_axis(min, max);
    od_synth_anomaly_info local = {0};
    for (int attempt = 0; attempt < OD_SYNTH_ANOMALY_TRIES; attempt++) {
        float degrees = uniform(rng, 15, 45);
        int across = (along + 1 + (int)od_rng_below(rng, 2)) % 3;
        float side = od_rng_below(rng, 2) ? 1.0f : -1.0f;
        if (od_mesh_copy(mesh, out, err) != 0) {
            free(normals);
            return -1;
        }
        /* The longest extent L becomes an arc of angle theta on a circle of radius R = L / theta whose
         * centre lies R away from the bounding-box centre along `across`: a point at (s, t) maps to
         * s' = (R - t) sin(s / R), t' = R - (R - t) cos(s / R), so s = 0 stays and lengths along the
         * middle line are kept. */
        float length = max[along] - min[along];
        float radius = length / (degrees * PI_F / 180);
        float c_along = 0.5f * (min[along] + max[along]), c_across = 0.5f * (min[across] + max[across]);
        for (int64_t v = 0; v < mesh->vertex_count; v++) {
            float *p = out->positions + v * 3;
            float s = p[along] - c_along, t = side * (p[across] - c_across);
            float phi = s / radius;
            p[along] = c_along + (radius - t) * sinf(phi);
            p[across] = c_across + side * (radius - (radius - t) * cosf(phi));
        }
        local.parameter = degrees;
        local.measure = off_surface(mesh, normals, out) / size;
        if (local.measure >= 0.02f) {
            if (info)
                *info = local;
            free(normals);
            return finish_normals(out, err);
        }
        od_mesh_free(out);
        local.rejected++;
    }
    free(normals);
    return od_fail(err, "bend: no bend moved the surface by 2 %% of the mesh's size in %d tries", OD_SYNTH_ANOMALY_TRIES);
}

int od_synth_twist(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info, od_error *err)
{
    /* positions (V, 3) are read; out gets the same faces and twisted positions. */
    if (check_mesh(mesh, "twist", err) != 0)
        return -1;
    float *normals = vertex_normals(mesh, err);
    if (!normals)
        return -1;
    float min[3], max[3];
    float size = mesh_extent(mesh, min, max);
    int along = longest_axis(min, max);
    int u = (along + 1) % 3, w = (along + 2) % 3;
    od_synth_anomaly_info local = {0};
    for (int attempt = 0; attempt < OD_SYNTH_ANOMALY_TRIES; attempt++) {
        float degrees = uniform(rng, 20, 90);
        float side = od_rng_below(rng, 2) ? 1.0f : -1.0f;
        if (od_mesh_copy(mesh, out, err) != 0) {
            free(normals);
            return -1;
        }
        float length = max[along] - min[along];
        float c[3];
        for (int k = 0; k < 3; k++)
            c[k] = 0.5f * (min[k] + max[k]);
        for (int64_t v = 0; v < mesh->vertex_count; v++) {
            float *p = out->positions + v * 3;
            /* From -degrees / 2 at one end to +degrees / 2 at the other. */
            float angle = side * degrees * PI_F / 180 * (p[along] - c[along]) / length;
            float cu = p[u] - c[u], cw = p[w] - c[w];
            p[u] = c[u] + cosf(angle) * cu - sinf(angle) * cw;
            p[w] = c[w] + sinf(angle) * cu + cosf(angle) * cw;
        }
        local.parameter = degrees;
        local.measure = off_surface(mesh, normals, out) / size;
        if (local.measure >= 0.02f) {
            if (info)
                *info = local;
            free(normals);
            return finish_normals(out, err);
        }
        od_mesh_free(out);
        local.rejected++;
    }
    free(normals);
    return od_fail(err, "twist: no twist moved the surface by 2 %% of the mesh's size in %d tries (is it round about its "
                        "longest axis?)",
                   OD_SYNTH_ANOMALY_TRIES);
}

/* ---- removing faces ----------------------------------------------------------------- */

/* Copies `mesh` keeping only the faces with keep[f] != 0 and the vertices they use, in their order. */
static int keep_faces(const od_mesh *mesh, const uint8_t *keep, od_mesh *out, od_error *err)
{
    if (od_mesh_copy(mesh, out, err) != 0)
        return -1;
    int32_t *remap = malloc((size_t)mesh->vertex_count * sizeof(int32_t) + 1);
    if (!remap) {
        od_mesh_free(out);
        return od_fail(err, "anomaly: out of memory for %lld vertices", (long long)mesh->vertex_count);
    }
    for (int64_t v = 0; v < mesh->vertex_count; v++)
        remap[v] = -1;
    int64_t faces = 0;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        if (!keep[f])
            continue;
        for (int k = 0; k < 3; k++) {
            out->faces[faces * 3 + k] = mesh->faces[f * 3 + k];
            remap[mesh->faces[f * 3 + k]] = 0;
        }
        out->face_materials[faces] = mesh->face_materials[f];
        out->face_parts[faces] = mesh->face_parts[f];
        faces++;
    }
    /* Kept vertices move down to their new index, which is never above the old one. */
    int64_t vertices = 0;
    for (int64_t v = 0; v < mesh->vertex_count; v++) {
        if (remap[v] < 0)
            continue;
        remap[v] = (int32_t)vertices;
        memmove(out->positions + vertices * 3, out->positions + v * 3, 3 * sizeof(float));
        if (out->normals)
            memmove(out->normals + vertices * 3, out->normals + v * 3, 3 * sizeof(float));
        if (out->uvs)
            memmove(out->uvs + vertices * 2, out->uvs + v * 2, 2 * sizeof(float));
        if (out->colors)
            memmove(out->colors + vertices * 3, out->colors + v * 3, 3 * sizeof(float));
        vertices++;
    }
    for (int64_t i = 0; i < faces * 3; i++)
        out->faces[i] = remap[out->faces[i]];
    out->vertex_count = vertices;
    out->face_count = faces;
    free(remap);
    return 0;
}

static double face_area(const od_mesh *mesh, int64_t f)
{
    const float *a = mesh->positions + mesh->faces[f * 3] * 3;
    const float *b = mesh->positions + mesh->faces[f * 3 + 1] * 3;
    const float *c = mesh->positions + mesh->faces[f * 3 + 2] * 3;
    double e1[3], e2[3];
    for (int k = 0; k < 3; k++) {
        e1[k] = (double)b[k] - a[k];
        e2[k] = (double)c[k] - a[k];
    }
    double n[3] = {e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]};
    return 0.5 * sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
}

typedef struct keyed {
    double key;
    int64_t index;
} keyed;

static int compare_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Returns the connected-component count of a mesh, or -1. */
static int component_count(const od_mesh *mesh, float size, od_error *err)
{
    int32_t *labels = malloc((size_t)mesh->face_count * sizeof(int32_t) + 1);
    if (!labels)
        return od_fail(err, "anomaly: out of memory for %lld faces", (long long)mesh->face_count);
    int count = od_mesh_components(mesh, 1e-5f * size, labels, err);
    free(labels);
    return count;
}

static int is_closed(const od_mesh *mesh, float cell, od_error *err, int *closed);
static int cap_open_loops(od_mesh *mesh, float cell, int64_t *cap_faces, od_error *err);

int od_synth_fracture(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info, od_error *err)
{
    /* positions (V, 3) and faces (F, 3) are read; out keeps the faces on one side of the plane. */
    if (check_mesh(mesh, "fracture", err) != 0)
        return -1;
    float min[3], max[3];
    float size = mesh_extent(mesh, min, max);
    int64_t F = mesh->face_count;
    keyed *order = malloc((size_t)F * sizeof(keyed));
    double *areas = malloc((size_t)F * sizeof(double));
    uint8_t *keep = malloc((size_t)F);
    if (!order || !areas || !keep) {
        free(order);
        free(areas);
        free(keep);
        return od_fail(err, "fracture: out of memory for %lld faces", (long long)F);
    }
    double total = 0;
    for (int64_t f = 0; f < F; f++) {
        areas[f] = face_area(mesh, f);
        total += areas[f];
    }
    od_synth_anomaly_info local = {0};
    int rc = -1, closed = 0;
    if (is_closed(mesh, 1e-5f * size, err, &closed) != 0)
        goto done;
    for (int attempt = 0; attempt < OD_SYNTH_ANOMALY_TRIES; attempt++) {
        float normal[3] = {od_rng_normal(rng), od_rng_normal(rng), od_rng_normal(rng)};
        float target = uniform(rng, 0.2f, 0.7f);
        for (int64_t f = 0; f < F; f++) {
            double key = 0;
            for (int k = 0; k < 3; k++) {
                const int32_t *t = mesh->faces + f * 3;
                double centroid = ((double)mesh->positions[t[0] * 3 + k] + mesh->positions[t[1] * 3 + k] +
                                   mesh->positions[t[2] * 3 + k]) / 3;
                key += centroid * normal[k];
            }
            order[f].key = key;
            order[f].index = f;
        }
        qsort(order, (size_t)F, sizeof *order, compare_keyed);
        /* The faces furthest along the normal go until the target fraction of the area has gone. */
        double removed = 0;
        for (int64_t f = 0; f < F; f++)
            keep[f] = 1;
        for (int64_t i = F - 1; i >= 0 && removed + 0.5 * areas[order[i].index] < target * total; i--) {
            keep[order[i].index] = 0;
            removed += areas[order[i].index];
        }
        local.parameter = target;
        local.measure = total > 0 ? (float)(removed / total) : 0;
        if (local.measure >= 0.1f && local.measure <= 0.9f) {
            if (keep_faces(mesh, keep, out, err) != 0)
                goto done;
            int pieces = component_count(out, size, err);
            if (pieces < 0) {
                od_mesh_free(out);
                goto done;
            }
            if (pieces == 1) {
                /* A closed mesh stays closed: each loop the cut opened gets a cap. */
                int64_t cap_faces = 0;
                if (closed && cap_open_loops(out, 1e-5f * size, &cap_faces, err) != 0) {
                    od_mesh_free(out);
                    goto done;
                }
                if (info)
                    *info = local;
                rc = 0;
                goto done;
            }
            od_mesh_free(out);
        }
        local.rejected++;
    }
    od_fail(err, "fracture: no plane removed 10 to 90 %% of the surface and left one piece in %d tries",
            OD_SYNTH_ANOMALY_TRIES);
done:
    free(order);
    free(areas);
    free(keep);
    return rc;
}

/* ---- crack ---------------------------------------------------------------------------- */

typedef struct edge_entry {
    int32_t a, b;  /* a < b */
    int64_t slot;  /* face * 3 + corner of the edge's first vertex */
} edge_entry;

static int compare_edges(const void *x, const void *y)
{
    const edge_entry *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return p->slot < q->slot ? -1 : p->slot > q->slot;
}

/* Splits every triangle into four through its edges' midpoints; faces that share an edge (the same two
 * vertex indices) share its midpoint. Attributes are interpolated. out replaces nothing in mesh. */
static int subdivide(const od_mesh *mesh, od_mesh *out, od_error *err)
{
    int64_t F = mesh->face_count, V = mesh->vertex_count;
    edge_entry *edges = malloc((size_t)F * 3 * sizeof(edge_entry));
    int32_t *mid = malloc((size_t)F * 3 * sizeof(int32_t));
    if (!edges || !mid) {
        free(edges);
        free(mid);
        return od_fail(err, "crack: out of memory subdividing %lld faces", (long long)F);
    }
    for (int64_t f = 0; f < F; f++)
        for (int k = 0; k < 3; k++) {
            int32_t a = mesh->faces[f * 3 + k], b = mesh->faces[f * 3 + (k + 1) % 3];
            edges[f * 3 + k] = (edge_entry){a < b ? a : b, a < b ? b : a, f * 3 + k};
        }
    qsort(edges, (size_t)F * 3, sizeof *edges, compare_edges);
    int64_t added = 0;
    for (int64_t i = 0; i < F * 3; i++) {
        if (i == 0 || edges[i].a != edges[i - 1].a || edges[i].b != edges[i - 1].b)
            added++;
        mid[edges[i].slot] = (int32_t)(V + added - 1);
    }
    od_mesh grown = {0};
    if (od_mesh_new(V + added, F * 4, mesh->normals != NULL, mesh->uvs != NULL, mesh->colors != NULL, &grown, err) !=
        0) {
        free(edges);
        free(mid);
        return -1;
    }
    struct {
        const float *from;
        float *to;
        int width;
    } arrays[4] = {{mesh->positions, grown.positions, 3},
                   {mesh->normals, grown.normals, 3},
                   {mesh->uvs, grown.uvs, 2},
                   {mesh->colors, grown.colors, 3}};
    for (int a = 0; a < 4; a++) {
        if (!arrays[a].from)
            continue;
        int w = arrays[a].width;
        memcpy(arrays[a].to, arrays[a].from, (size_t)V * w * sizeof(float));
        for (int64_t i = 0; i < F * 3; i++) {
            const edge_entry *e = &edges[i];
            int64_t m = mid[e->slot];
            for (int k = 0; k < w; k++)
                arrays[a].to[m * w + k] = 0.5f * (arrays[a].from[e->a * w + k] + arrays[a].from[e->b * w + k]);
        }
    }
    for (int64_t f = 0; f < F; f++) {
        const int32_t *t = mesh->faces + f * 3;
        int32_t m0 = mid[f * 3], m1 = mid[f * 3 + 1], m2 = mid[f * 3 + 2];
        int32_t children[12] = {t[0], m0, m2, m0, t[1], m1, m2, m1, t[2], m0, m1, m2};
        memcpy(grown.faces + f * 12, children, sizeof children);
        for (int c = 0; c < 4; c++) {
            grown.face_materials[f * 4 + c] = mesh->face_materials[f];
            grown.face_parts[f * 4 + c] = mesh->face_parts[f];
        }
    }
    free(edges);
    free(mid);
    /* Materials and part names come from a copy of the mesh. */
    if (od_mesh_copy(mesh, out, err) != 0) {
        od_mesh_free(&grown);
        return -1;
    }
    free(out->positions);
    free(out->normals);
    free(out->uvs);
    free(out->colors);
    free(out->faces);
    free(out->face_materials);
    free(out->face_parts);
    out->vertex_count = grown.vertex_count;
    out->face_count = grown.face_count;
    out->positions = grown.positions;
    out->normals = grown.normals;
    out->uvs = grown.uvs;
    out->colors = grown.colors;
    out->faces = grown.faces;
    out->face_materials = grown.face_materials;
    out->face_parts = grown.face_parts;
    grown.positions = grown.normals = grown.uvs = grown.colors = NULL;
    grown.faces = grown.face_materials = grown.face_parts = NULL;
    grown.vertex_count = grown.face_count = 0;
    od_mesh_free(&grown);
    return 0;
}

typedef struct cell_key {
    int64_t x, y, z;
    int32_t vertex;
} cell_key;

static int compare_cells(const void *a, const void *b)
{
    const cell_key *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    if (p->y != q->y)
        return p->y < q->y ? -1 : 1;
    if (p->z != q->z)
        return p->z < q->z ? -1 : 1;
    return p->vertex < q->vertex ? -1 : p->vertex > q->vertex;
}

/* ---- closing a cut ------------------------------------------------------------------------ */

typedef struct directed_edge {
    int32_t from, to; /* canonical vertices (one per position) */
    int64_t face;
    int corner; /* the face's corner where the edge starts */
} directed_edge;

static int compare_directed(const void *x, const void *y)
{
    const directed_edge *p = x, *q = y;
    if (p->from != q->from)
        return p->from < q->from ? -1 : 1;
    if (p->to != q->to)
        return p->to < q->to ? -1 : 1;
    return p->face < q->face ? -1 : p->face > q->face;
}

/* Writes per vertex the lowest-numbered vertex at the same position (rounded to `cell`). */
static int canonical_vertices(const od_mesh *mesh, float cell, int32_t *canonical)
{
    int64_t V = mesh->vertex_count;
    cell_key *cells = malloc((size_t)V * sizeof(cell_key) + 1);
    if (!cells)
        return -1;
    for (int64_t v = 0; v < V; v++) {
        const float *p = mesh->positions + v * 3;
        cells[v] = (cell_key){llround(p[0] / cell), llround(p[1] / cell), llround(p[2] / cell), (int32_t)v};
    }
    qsort(cells, (size_t)V, sizeof *cells, compare_cells);
    for (int64_t i = 0; i < V; i++) {
        int same = i > 0 && cells[i].x == cells[i - 1].x && cells[i].y == cells[i - 1].y && cells[i].z == cells[i - 1].z;
        canonical[cells[i].vertex] = same ? canonical[cells[i - 1].vertex] : cells[i].vertex;
    }
    free(cells);
    return 0;
}

/* Lists the mesh's directed edges (sorted) and returns their count (3F), or -1 when out of memory. */
static int64_t directed_edges(const od_mesh *mesh, const int32_t *canonical, directed_edge **out)
{
    int64_t F = mesh->face_count;
    directed_edge *edges = malloc((size_t)F * 3 * sizeof(directed_edge) + 1);
    if (!edges)
        return -1;
    for (int64_t f = 0; f < F; f++)
        for (int k = 0; k < 3; k++)
            edges[f * 3 + k] = (directed_edge){canonical[mesh->faces[f * 3 + k]],
                                               canonical[mesh->faces[f * 3 + (k + 1) % 3]], f, k};
    qsort(edges, (size_t)F * 3, sizeof *edges, compare_directed);
    *out = edges;
    return F * 3;
}

/* Returns 1 when the edge to -> from exists. */
static int has_reverse(const directed_edge *edges, int64_t count, const directed_edge *e)
{
    directed_edge key = {e->to, e->from, -1, 0};
    int64_t low = 0, high = count;
    while (low < high) {
        int64_t mid = (low + high) / 2;
        if (compare_directed(&edges[mid], &key) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return low < count && edges[low].from == key.from && edges[low].to == key.to;
}

/* Returns 1 when every edge of the mesh has a reverse, by position: the surface is closed. */
static int is_closed(const od_mesh *mesh, float cell, od_error *err, int *closed)
{
    int32_t *canonical = malloc((size_t)mesh->vertex_count * sizeof(int32_t) + 1);
    directed_edge *edges = NULL;
    if (!canonical || canonical_vertices(mesh, cell, canonical) != 0 || directed_edges(mesh, canonical, &edges) < 0) {
        free(canonical);
        return od_fail(err, "fracture: out of memory for the edges");
    }
    *closed = 1;
    int64_t count = mesh->face_count * 3;
    for (int64_t i = 0; i < count && *closed; i++)
        *closed = has_reverse(edges, count, &edges[i]);
    free(edges);
    free(canonical);
    return 0;
}

/* Closes each loop of open edges with a fan of triangles about the loop's centroid. The cap has vertices of
 * its own (the loop's positions again, and the centroid), so it gets a flat normal and hard edges. */
static int cap_open_loops(od_mesh *mesh, float cell, int64_t *cap_faces, od_error *err)
{
    *cap_faces = 0;
    int64_t V = mesh->vertex_count, F = mesh->face_count;
    int32_t *canonical = malloc((size_t)V * sizeof(int32_t) + 1);
    directed_edge *edges = NULL;
    directed_edge *open = NULL;
    uint8_t *used = NULL;
    int rc = -1;
    if (!canonical || canonical_vertices(mesh, cell, canonical) != 0 || directed_edges(mesh, canonical, &edges) < 0) {
        od_fail(err, "fracture: out of memory for the edges");
        goto done;
    }
    /* The open edges, sorted by their start, so a loop follows from each edge's end. */
    int64_t count = 0;
    open = malloc((size_t)F * 3 * sizeof(directed_edge) + 1);
    used = calloc((size_t)F * 3 + 1, 1);
    if (!open || !used) {
        od_fail(err, "fracture: out of memory for the edges");
        goto done;
    }
    for (int64_t i = 0; i < F * 3; i++)
        if (!has_reverse(edges, F * 3, &edges[i]))
            open[count++] = edges[i];
    if (count == 0) {
        rc = 0;
        goto done;
    }
    /* Each open edge adds two cap vertices at most (its start, and one centroid per loop) and one face. */
    int64_t V2 = V + 2 * count, F2 = F + count;
    float *positions = realloc(mesh->positions, (size_t)V2 * 3 * sizeof(float));
    if (positions)
        mesh->positions = positions;
    float *normals = mesh->normals ? realloc(mesh->normals, (size_t)V2 * 3 * sizeof(float)) : NULL;
    if (normals)
        mesh->normals = normals;
    float *uvs = mesh->uvs ? realloc(mesh->uvs, (size_t)V2 * 2 * sizeof(float)) : NULL;
    if (uvs)
        mesh->uvs = uvs;
    float *colors = mesh->colors ? realloc(mesh->colors, (size_t)V2 * 3 * sizeof(float)) : NULL;
    if (colors)
        mesh->colors = colors;
    int32_t *faces = realloc(mesh->faces, (size_t)F2 * 3 * sizeof(int32_t));
    if (faces)
        mesh->faces = faces;
    int32_t *materials = realloc(mesh->face_materials, (size_t)F2 * sizeof(int32_t));
    if (materials)
        mesh->face_materials = materials;
    int32_t *parts = realloc(mesh->face_parts, (size_t)F2 * sizeof(int32_t));
    if (parts)
        mesh->face_parts = parts;
    if (!positions || (mesh->normals && !normals) || (mesh->uvs && !uvs) || (mesh->colors && !colors) || !faces ||
        !materials || !parts) {
        od_fail(err, "fracture: out of memory for the cap");
        goto done;
    }
    int64_t nv = V, nf = F;
    for (int64_t first = 0; first < count; first++) {
        if (used[first])
            continue;
        /* Follow the loop: the next open edge starts where this one ends. */
        int64_t loop_start_vertex = nv, length = 0;
        double centre[3] = {0, 0, 0};
        int64_t e = first;
        int64_t loop_first_face = nf;
        while (e >= 0 && !used[e]) {
            used[e] = 1;
            const directed_edge *edge = &open[e];
            int32_t start = mesh->faces[edge->face * 3 + edge->corner];
            memcpy(mesh->positions + nv * 3, mesh->positions + (int64_t)start * 3, 3 * sizeof(float));
            if (mesh->uvs)
                memcpy(mesh->uvs + nv * 2, mesh->uvs + (int64_t)start * 2, 2 * sizeof(float));
            if (mesh->colors)
                memcpy(mesh->colors + nv * 3, mesh->colors + (int64_t)start * 3, 3 * sizeof(float));
            for (int k = 0; k < 3; k++)
                centre[k] += mesh->positions[(int64_t)start * 3 + k];
            mesh->face_materials[nf] = mesh->face_materials[edge->face];
            mesh->face_parts[nf] = mesh->face_parts[edge->face];
            nf++;
            nv++;
            length++;
            /* The open edge that starts at this one's end, not yet used. */
            int64_t low = 0, high = count;
            while (low < high) {
                int64_t mid = (low + high) / 2;
                if (open[mid].from < edge->to)
                    low = mid + 1;
                else
                    high = mid;
            }
            e = -1;
            for (int64_t i = low; i < count && open[i].from == edge->to; i++)
                if (!used[i]) {
                    e = i;
                    break;
                }
        }
        int64_t centroid = nv++;
        for (int k = 0; k < 3; k++)
            mesh->positions[centroid * 3 + k] = (float)(centre[k] / (double)length);
        if (mesh->uvs)
            mesh->uvs[centroid * 2] = mesh->uvs[centroid * 2 + 1] = 0;
        if (mesh->colors)
            memcpy(mesh->colors + centroid * 3, mesh->colors + loop_start_vertex * 3, 3 * sizeof(float));
        /* Edge i of the loop runs from copy i to copy i + 1, and the last edge back to copy 0. The cap face
         * runs the other way, so it faces out of the remainder. */
        for (int64_t i = 0; i < length; i++) {
            int64_t a = loop_start_vertex + i, b = loop_start_vertex + (i + 1) % length;
            int32_t *t = mesh->faces + (loop_first_face + i) * 3;
            t[0] = (int32_t)b;
            t[1] = (int32_t)a;
            t[2] = (int32_t)centroid;
        }
        /* The cap's normal is the area-weighted mean of its faces'. A loop that a fan cannot close cleanly
         * stays open. Its fan folds over (faces against the mean normal, at the steps of a jagged cut) on
         * over a quarter of its area, or it strays from its plane by over 0.35 of its extent, as a cut
         * along long faces does. */
        double n[3] = {0, 0, 0}, extent = 0, area = 0, folded = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t i = 0; i < length; i++) {
                const int32_t *t = mesh->faces + (loop_first_face + i) * 3;
                const float *a = mesh->positions + (int64_t)t[0] * 3, *b = mesh->positions + (int64_t)t[1] * 3,
                            *c = mesh->positions + (int64_t)t[2] * 3;
                double e1[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, e2[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
                double face_normal[3] = {e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
                                         e1[0] * e2[1] - e1[1] * e2[0]};
                double twice_area = sqrt(face_normal[0] * face_normal[0] + face_normal[1] * face_normal[1] +
                                         face_normal[2] * face_normal[2]);
                if (pass == 0) {
                    for (int k = 0; k < 3; k++)
                        n[k] += face_normal[k];
                    extent = fmax(extent, sqrt(e2[0] * e2[0] + e2[1] * e2[1] + e2[2] * e2[2]));
                    area += twice_area;
                } else if (face_normal[0] * n[0] + face_normal[1] * n[1] + face_normal[2] * n[2] <= 0) {
                    folded += twice_area;
                }
            }
        double norm = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        double stray = 0;
        for (int64_t v = loop_start_vertex; v < centroid && norm > 0; v++) {
            double off = 0;
            for (int k = 0; k < 3; k++)
                off += (mesh->positions[v * 3 + k] - mesh->positions[centroid * 3 + k]) * n[k] / norm;
            stray = fmax(stray, fabs(off));
        }
        if (!(norm > 0) || folded > 0.25 * area || stray > 0.35 * extent) {
            nv = loop_start_vertex;
            nf = loop_first_face;
            continue;
        }
        if (mesh->normals)
            for (int64_t v = loop_start_vertex; v <= centroid; v++)
                for (int k = 0; k < 3; k++)
                    mesh->normals[v * 3 + k] = (float)(n[k] / norm);
    }
    mesh->vertex_count = nv;
    mesh->face_count = nf;
    *cap_faces = nf - F;
    rc = 0;
done:
    free(canonical);
    free(edges);
    free(open);
    free(used);
    return rc;
}

/* Writes, per vertex, the unit normal averaged (area-weighted) over every face that touches its position
 * (positions equal after rounding to `cell`), so that vertices split at seams or hard edges move alike. */
static int position_normals(const od_mesh *mesh, float cell, float *normals, od_error *err)
{
    int64_t V = mesh->vertex_count;
    cell_key *cells = malloc((size_t)V * sizeof(cell_key));
    int32_t *canonical = malloc((size_t)V * sizeof(int32_t));
    if (!cells || !canonical) {
        free(cells);
        free(canonical);
        return od_fail(err, "crack: out of memory for %lld vertices", (long long)V);
    }
    for (int64_t v = 0; v < V; v++) {
        const float *p = mesh->positions + v * 3;
        cells[v] = (cell_key){llround(p[0] / cell), llround(p[1] / cell), llround(p[2] / cell), (int32_t)v};
    }
    qsort(cells, (size_t)V, sizeof *cells, compare_cells);
    for (int64_t i = 0; i < V; i++) {
        int same = i > 0 && cells[i].x == cells[i - 1].x && cells[i].y == cells[i - 1].y && cells[i].z == cells[i - 1].z;
        canonical[cells[i].vertex] = same ? canonical[cells[i - 1].vertex] : cells[i].vertex;
    }
    memset(normals, 0, (size_t)V * 3 * sizeof(float));
    for (int64_t f = 0; f < mesh->face_count; f++) {
        const int32_t *t = mesh->faces + f * 3;
        const float *a = mesh->positions + t[0] * 3, *b = mesh->positions + t[1] * 3, *c = mesh->positions + t[2] * 3;
        float e1[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, e2[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
        float n[3] = {e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]};
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                normals[canonical[t[j]] * 3 + k] += n[k];
    }
    for (int64_t v = 0; v < V; v++) {
        float *n = normals + canonical[v] * 3;
        float length = sqrtf(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        for (int k = 0; k < 3; k++)
            normals[v * 3 + k] = length > 0 ? n[k] / length : 0;
    }
    free(cells);
    free(canonical);
    return 0;
}

/* Returns the distance from p along the unit direction d to the nearest face hit beyond `skip`
 * (Moller-Trumbore), or INFINITY when no face is hit: the mesh's thickness under p when d points
 * inward. */
static float thickness_along(const od_mesh *mesh, const float p[3], const float d[3], float skip)
{
    float nearest = INFINITY;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        const float *a = mesh->positions + mesh->faces[f * 3] * 3, *b = mesh->positions + mesh->faces[f * 3 + 1] * 3,
                    *c = mesh->positions + mesh->faces[f * 3 + 2] * 3;
        float e1[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, e2[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
        float h[3] = {d[1] * e2[2] - d[2] * e2[1], d[2] * e2[0] - d[0] * e2[2], d[0] * e2[1] - d[1] * e2[0]};
        float det = e1[0] * h[0] + e1[1] * h[1] + e1[2] * h[2];
        if (fabsf(det) < 1e-20f)
            continue;
        float inverse = 1 / det;
        float s[3] = {p[0] - a[0], p[1] - a[1], p[2] - a[2]};
        float u = inverse * (s[0] * h[0] + s[1] * h[1] + s[2] * h[2]);
        if (u < 0 || u > 1)
            continue;
        float q[3] = {s[1] * e1[2] - s[2] * e1[1], s[2] * e1[0] - s[0] * e1[2], s[0] * e1[1] - s[1] * e1[0]};
        float v = inverse * (d[0] * q[0] + d[1] * q[1] + d[2] * q[2]);
        if (v < 0 || u + v > 1)
            continue;
        float t = inverse * (e2[0] * q[0] + e2[1] * q[1] + e2[2] * q[2]);
        if (t > skip && t < nearest)
            nearest = t;
    }
    return nearest;
}

int od_synth_crack(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info, od_error *err)
{
    /* positions (V, 3) and faces (F, 3) are read; out may have more vertices and faces (subdivided). */
    if (check_mesh(mesh, "crack", err) != 0)
        return -1;
    float min[3], max[3];
    float size = mesh_extent(mesh, min, max);
    const float half_length = 0.35f * size;
    od_synth_anomaly_info local = {0};
    od_mesh fine = {0};
    if (od_mesh_copy(mesh, &fine, err) != 0)
        return -1;
    for (;;) {
        /* The mean edge length; subdivide while it exceeds the groove's half width. */
        double sum = 0;
        for (int64_t f = 0; f < fine.face_count; f++)
            for (int k = 0; k < 3; k++) {
                const float *a = fine.positions + fine.faces[f * 3 + k] * 3;
                const float *b = fine.positions + fine.faces[f * 3 + (k + 1) % 3] * 3;
                sum += sqrt((double)(a[0] - b[0]) * (a[0] - b[0]) + (double)(a[1] - b[1]) * (a[1] - b[1]) +
                            (double)(a[2] - b[2]) * (a[2] - b[2]));
            }
        double mean = sum / (3.0 * (double)fine.face_count);
        if (mean <= 0.035 * size || fine.face_count * 4 > CRACK_MAX_FACES)
            break;
        od_mesh finer = {0};
        int rc = subdivide(&fine, &finer, err);
        od_mesh_free(&fine);
        if (rc != 0)
            return -1;
        fine = finer;
    }
    float *normals = malloc((size_t)fine.vertex_count * 3 * sizeof(float) + 1);
    if (!normals) {
        od_mesh_free(&fine);
        return od_fail(err, "crack: out of memory for %lld vertices", (long long)fine.vertex_count);
    }
    if (position_normals(&fine, 1e-5f * size, normals, err) != 0) {
        free(normals);
        od_mesh_free(&fine);
        return -1;
    }
    int rc = -1;
    for (int attempt = 0; attempt < OD_SYNTH_ANOMALY_TRIES; attempt++) {
        int64_t start = (int64_t)od_rng_below(rng, (uint64_t)fine.vertex_count);
        float depth = uniform(rng, 0.06f, 0.10f) * size;
        float wave = uniform(rng, 0, 0.04f) * size, frequency = uniform(rng, 1, 3) * 2 * PI_F / half_length;
        /* The plane's normal n is drawn perpendicular to the start's normal, so the plane cuts the surface
         * across; m = n x normal runs along the path. */
        const float *sn = normals + start * 3;
        /* The generator rests meshes on their lowest point with z up, so a groove that starts on a
         * downward face would be hidden against the floor. */
        if (sn[2] < -0.5f) {
            local.rejected++;
            continue;
        }
        /* On a thin wall the groove would come out on the far side: it goes at most half the thickness
         * under the start deep, and 1.5 times as wide when that cuts it. */
        float half_width = 0.035f * size;
        const float *sp = fine.positions + start * 3;
        float inward[3] = {-sn[0], -sn[1], -sn[2]};
        float thickness = thickness_along(&fine, sp, inward, 1e-4f * size);
        if (depth > 0.5f * thickness) {
            depth = 0.5f * thickness;
            half_width *= 1.5f;
        }
        float r[3] = {od_rng_normal(rng), od_rng_normal(rng), od_rng_normal(rng)};
        float dot = r[0] * sn[0] + r[1] * sn[1] + r[2] * sn[2];
        float n[3] = {r[0] - dot * sn[0], r[1] - dot * sn[1], r[2] - dot * sn[2]};
        float length = sqrtf(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        if (!(length > 0)) {
            local.rejected++;
            continue;
        }
        for (int k = 0; k < 3; k++)
            n[k] /= length;
        float m[3] = {n[1] * sn[2] - n[2] * sn[1], n[2] * sn[0] - n[0] * sn[2], n[0] * sn[1] - n[1] * sn[0]};
        if (od_mesh_copy(&fine, out, err) != 0)
            goto done;
        const float *s = fine.positions + start * 3;
        float deepest = 0;
        int64_t deep = 0;
        for (int64_t v = 0; v < fine.vertex_count; v++) {
            const float *p = fine.positions + v * 3;
            float d[3] = {p[0] - s[0], p[1] - s[1], p[2] - s[2]};
            float reach = sqrtf(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
            if (reach >= half_length)
                continue;
            float along = d[0] * m[0] + d[1] * m[1] + d[2] * m[2];
            float across = d[0] * n[0] + d[1] * n[1] + d[2] * n[2] - wave * sinf(frequency * along);
            if (fabsf(across) >= half_width)
                continue;
            /* Only the sheet of surface near the start: a vertex facing away is on the far side. */
            const float *vn = normals + v * 3;
            if (vn[0] * sn[0] + vn[1] * sn[1] + vn[2] * sn[2] < 0.2f)
                continue;
            float taper = 1 - (reach / half_length) * (reach / half_length);
            float offset = depth * (1 - fabsf(across) / half_width) * taper;
            for (int k = 0; k < 3; k++)
                out->positions[v * 3 + k] = p[k] - offset * vn[k];
            deepest = fmaxf(deepest, offset);
            deep += offset >= 0.5f * depth;
        }
        local.parameter = depth / size;
        local.measure = deepest / size;
        if (local.measure >= 0.03f && deep >= 6) {
            if (info)
                *info = local;
            rc = finish_normals(out, err);
            goto done;
        }
        od_mesh_free(out);
        local.rejected++;
    }
    od_fail(err, "crack: no groove reached 3 %% of the size at 6 vertices in %d tries (is the mesh thinner than 6 %% "
                 "of its size?)",
            OD_SYNTH_ANOMALY_TRIES);
done:
    free(normals);
    od_mesh_free(&fine);
    return rc;
}

/* ---- part missing ------------------------------------------------------------------------ */

/* Writes each face's part into labels (F) and returns the part count: groups when two or more are used,
 * else connected components. */
static int part_labels(const od_mesh *mesh, float size, int32_t *labels, od_error *err)
{
    int used = 0;
    int32_t *seen = calloc((size_t)mesh->part_count + 1, sizeof(int32_t));
    if (!seen)
        return od_fail(err, "part missing: out of memory");
    for (int64_t f = 0; f < mesh->face_count; f++) {
        int32_t p = mesh->face_parts[f];
        if (p >= 0 && p < mesh->part_count && !seen[p]++)
            used++;
    }
    if (used >= 2) {
        /* Renumber the used groups 0..used-1 in order of first face. */
        for (int i = 0; i < mesh->part_count; i++)
            seen[i] = -1;
        int next = 0;
        for (int64_t f = 0; f < mesh->face_count; f++) {
            int32_t p = mesh->face_parts[f];
            p = p >= 0 && p < mesh->part_count ? p : 0;
            if (seen[p] < 0)
                seen[p] = next++;
            labels[f] = seen[p];
        }
        free(seen);
        return next;
    }
    free(seen);
    return od_mesh_components(mesh, 1e-5f * size, labels, err);
}

int od_synth_part_count(const od_mesh *mesh, od_error *err)
{
    if (check_mesh(mesh, "part missing", err) != 0)
        return -1;
    float min[3], max[3];
    float size = mesh_extent(mesh, min, max);
    int32_t *labels = malloc((size_t)mesh->face_count * sizeof(int32_t));
    if (!labels)
        return od_fail(err, "part missing: out of memory");
    int count = part_labels(mesh, size, labels, err);
    free(labels);
    return count;
}

static int find_root(int *parent, int i)
{
    while (parent[i] != i)
        i = parent[i] = parent[parent[i]];
    return i;
}

int od_synth_remove_part(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info,
                         od_error *err)
{
    /* positions (V, 3), faces (F, 3) and face_parts (F) are read; out lacks one part's faces. */
    if (check_mesh(mesh, "part missing", err) != 0)
        return -1;
    float min[3], max[3];
    float size = mesh_extent(mesh, min, max);
    int64_t F = mesh->face_count;
    int32_t *labels = malloc((size_t)F * sizeof(int32_t));
    int32_t *pieces = malloc((size_t)F * sizeof(int32_t));
    uint8_t *keep = malloc((size_t)F);
    if (!labels || !pieces || !keep) {
        free(labels);
        free(pieces);
        free(keep);
        return od_fail(err, "part missing: out of memory for %lld faces", (long long)F);
    }
    int rc = -1;
    int parts = part_labels(mesh, size, labels, err);
    int piece_count = parts >= 0 ? od_mesh_components(mesh, 1e-5f * size, pieces, err) : -1;
    float *boxes = NULL;
    int *order = NULL, *parent = NULL;
    int64_t *part_faces = NULL;
    if (parts < 0 || piece_count < 0)
        goto done;
    if (parts < 2) {
        od_fail(err, "part missing: the mesh has %d part (no groups, one connected piece); nothing can go", parts);
        goto done;
    }
    /* Each connected piece's bounding box, min then max. */
    boxes = malloc((size_t)piece_count * 6 * sizeof(float));
    order = malloc((size_t)parts * sizeof(int));
    parent = malloc((size_t)piece_count * sizeof(int));
    part_faces = calloc((size_t)parts, sizeof(int64_t));
    if (!boxes || !order || !parent || !part_faces) {
        od_fail(err, "part missing: out of memory for %d parts", parts);
        goto done;
    }
    for (int i = 0; i < piece_count * 6; i++)
        boxes[i] = i % 6 < 3 ? INFINITY : -INFINITY;
    /* The body: the part of the largest surface area when no other part is as large. Removing it would
     * leave a handle without its mug. */
    double *areas = calloc((size_t)parts, sizeof(double));
    if (!areas) {
        od_fail(err, "part missing: out of memory for %d parts", parts);
        goto done;
    }
    for (int64_t f = 0; f < F; f++)
        areas[labels[f]] += face_area(mesh, f);
    int body = 0, ties = 0;
    for (int i = 1; i < parts; i++) {
        if (areas[i] > areas[body]) {
            body = i;
            ties = 0;
        } else if (areas[i] == areas[body]) {
            ties++;
        }
    }
    if (ties > 0)
        body = -1;
    free(areas);
    for (int64_t f = 0; f < F; f++) {
        part_faces[labels[f]]++;
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++) {
                float x = mesh->positions[mesh->faces[f * 3 + j] * 3 + k];
                float *box = boxes + pieces[f] * 6;
                box[k] = fminf(box[k], x);
                box[3 + k] = fmaxf(box[3 + k], x);
            }
    }
    /* A drawn order of the parts (Fisher-Yates). */
    for (int i = 0; i < parts; i++)
        order[i] = i;
    for (int i = parts - 1; i > 0; i--) {
        int j = (int)od_rng_below(rng, (uint64_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    od_synth_anomaly_info local = {0};
    const float gap = 0.02f * size;
    for (int attempt = 0; attempt < parts; attempt++) {
        int removed = order[attempt];
        if (removed == body) {
            local.rejected++;
            continue;
        }
        for (int64_t f = 0; f < F; f++)
            keep[f] = labels[f] != removed;
        /* The pieces that the kept faces use, joined when their boxes come within the gap. A piece that
         * mixes the removed part with others is still counted whole, which errs towards accepting. */
        uint8_t *used = calloc((size_t)piece_count, 1);
        if (!used) {
            od_fail(err, "part missing: out of memory");
            goto done;
        }
        for (int64_t f = 0; f < F; f++)
            if (keep[f])
                used[pieces[f]] = 1;
        for (int i = 0; i < piece_count; i++)
            parent[i] = i;
        for (int i = 0; i < piece_count; i++)
            for (int j = i + 1; j < piece_count; j++) {
                if (!used[i] || !used[j])
                    continue;
                const float *a = boxes + i * 6, *b = boxes + j * 6;
                int near = 1;
                for (int k = 0; k < 3; k++)
                    near &= a[k] <= b[3 + k] + gap && b[k] <= a[3 + k] + gap;
                if (near)
                    parent[find_root(parent, i)] = find_root(parent, j);
            }
        int groups = 0;
        for (int i = 0; i < piece_count; i++)
            groups += used[i] && find_root(parent, i) == i;
        free(used);
        if (groups == 1 && part_faces[removed] < F) {
            if (keep_faces(mesh, keep, out, err) != 0)
                goto done;
            local.parameter = (float)removed;
            local.measure = (float)part_faces[removed] / (float)F;
            if (info)
                *info = local;
            rc = 0;
            goto done;
        }
        local.rejected++;
    }
    od_fail(err, "part missing: removing any one of the %d parts leaves the rest in pieces", parts);
done:
    free(labels);
    free(pieces);
    free(keep);
    free(boxes);
    free(order);
    free(parent);
    free(part_faces);
    return rc;
}

/* ---- part translated, part rotated ------------------------------------------------------ */

/* Points on the surface of a set of faces: the faces' vertices and centroids, plus points spread over
 * each face in proportion to its area, `spacing` apart on average. The extra points come from a fixed
 * stream, so a mesh always gives the same points. */
typedef struct point_set {
    float *points; /* (count, 3) */
    int64_t count, capacity;
} point_set;

static int point_set_add(point_set *set, const float p[3])
{
    if (set->count == set->capacity) {
        int64_t capacity = set->capacity ? set->capacity * 2 : 1024;
        float *grown = realloc(set->points, (size_t)capacity * 3 * sizeof(float));
        if (!grown)
            return -1;
        set->points = grown;
        set->capacity = capacity;
    }
    memcpy(set->points + set->count * 3, p, 3 * sizeof(float));
    set->count++;
    return 0;
}

/* Adds the surface points of the faces with (labels[f] == label) == want, or of every face when labels is
 * NULL. */
static int surface_points(const od_mesh *mesh, const int32_t *labels, int32_t label, int want, float spacing,
                          point_set *set)
{
    od_rng rng;
    od_rng_seed(&rng, 0x706f696e74);
    for (int64_t f = 0; f < mesh->face_count; f++) {
        if (labels && (labels[f] == label) != want)
            continue;
        const float *a = mesh->positions + mesh->faces[f * 3] * 3, *b = mesh->positions + mesh->faces[f * 3 + 1] * 3,
                    *c = mesh->positions + mesh->faces[f * 3 + 2] * 3;
        float centroid[3];
        for (int k = 0; k < 3; k++)
            centroid[k] = (a[k] + b[k] + c[k]) / 3;
        if (point_set_add(set, a) != 0 || point_set_add(set, b) != 0 || point_set_add(set, c) != 0 ||
            point_set_add(set, centroid) != 0)
            return -1;
        int64_t extra = (int64_t)(face_area(mesh, f) / ((double)spacing * spacing));
        for (int64_t i = 0; i < extra && i < 4096; i++) {
            float s = od_rng_uniform(&rng), t = od_rng_uniform(&rng);
            if (s + t > 1) {
                s = 1 - s;
                t = 1 - t;
            }
            float p[3];
            for (int k = 0; k < 3; k++)
                p[k] = a[k] + s * (b[k] - a[k]) + t * (c[k] - a[k]);
            if (point_set_add(set, p) != 0)
                return -1;
        }
    }
    return 0;
}

/* A uniform grid over a point set: the points' indices sorted by cell, for queries within one cell size. */
typedef struct point_grid {
    const float *points;
    cell_key *cells; /* (count) sorted by cell; `vertex` is the point's index */
    int64_t count;
    float cell;
} point_grid;

static int grid_build(point_grid *grid, const point_set *set, float cell)
{
    grid->points = set->points;
    grid->count = set->count;
    grid->cell = cell;
    grid->cells = malloc((size_t)set->count * sizeof(cell_key) + 1);
    if (!grid->cells)
        return -1;
    for (int64_t i = 0; i < set->count; i++) {
        const float *p = set->points + i * 3;
        grid->cells[i] = (cell_key){(int64_t)floorf(p[0] / cell), (int64_t)floorf(p[1] / cell),
                                    (int64_t)floorf(p[2] / cell), (int32_t)i};
    }
    qsort(grid->cells, (size_t)set->count, sizeof(cell_key), compare_cells);
    return 0;
}

/* Returns 1 when some grid point lies within grid->cell of p. */
static int grid_near(const point_grid *grid, const float p[3])
{
    int64_t x = (int64_t)floorf(p[0] / grid->cell), y = (int64_t)floorf(p[1] / grid->cell),
            z = (int64_t)floorf(p[2] / grid->cell);
    float limit = grid->cell * grid->cell;
    for (int64_t dx = -1; dx <= 1; dx++)
        for (int64_t dy = -1; dy <= 1; dy++)
            for (int64_t dz = -1; dz <= 1; dz++) {
                cell_key key = {x + dx, y + dy, z + dz, -1};
                /* The first entry of the cell: every entry of a cell has vertex >= 0 > -1. */
                int64_t low = 0, high = grid->count;
                while (low < high) {
                    int64_t mid = (low + high) / 2;
                    if (compare_cells(&grid->cells[mid], &key) < 0)
                        low = mid + 1;
                    else
                        high = mid;
                }
                for (int64_t i = low; i < grid->count; i++) {
                    const cell_key *c = &grid->cells[i];
                    if (c->x != key.x || c->y != key.y || c->z != key.z)
                        break;
                    const float *q = grid->points + (int64_t)c->vertex * 3;
                    float d2 = (p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) +
                               (p[2] - q[2]) * (p[2] - q[2]);
                    if (d2 <= limit)
                        return 1;
                }
            }
    return 0;
}

/* Copies `mesh` so that the faces of part `label` use vertices of their own: a vertex that the part
 * shares with the rest is duplicated, the part's faces take the copy. moving (out->vertex_count) is
 * set to 1 for the vertices the part's faces use. */
static int split_part(const od_mesh *mesh, const int32_t *labels, int32_t label, od_mesh *out, uint8_t **moving,
                      od_error *err)
{
    int64_t V = mesh->vertex_count, F = mesh->face_count;
    uint8_t *use = calloc((size_t)V + 1, 1); /* bit 1: the part uses it; bit 2: the rest does */
    int32_t *copy_of = malloc((size_t)V * sizeof(int32_t) + 1);
    if (!use || !copy_of) {
        free(use);
        free(copy_of);
        return od_fail(err, "part moved: out of memory for %lld vertices", (long long)V);
    }
    for (int64_t f = 0; f < F; f++)
        for (int k = 0; k < 3; k++)
            use[mesh->faces[f * 3 + k]] |= labels[f] == label ? 1 : 2;
    int64_t shared = 0;
    for (int64_t v = 0; v < V; v++)
        copy_of[v] = use[v] == 3 ? (int32_t)(V + shared++) : (int32_t)v;
    int rc = -1;
    if (od_mesh_new(V + shared, F, mesh->normals != NULL, mesh->uvs != NULL, mesh->colors != NULL, out, err) != 0)
        goto done;
    od_mesh copy = {0};
    if (od_mesh_copy(mesh, &copy, err) != 0) {
        od_mesh_free(out);
        goto done;
    }
    /* The arrays of `out` with the copy's materials and part names. */
    for (int64_t v = 0; v < V; v++) {
        int64_t targets[2] = {v, copy_of[v]};
        for (int t = 0; t < (copy_of[v] != v ? 2 : 1); t++) {
            int64_t w = targets[t];
            memcpy(out->positions + w * 3, mesh->positions + v * 3, 3 * sizeof(float));
            if (mesh->normals)
                memcpy(out->normals + w * 3, mesh->normals + v * 3, 3 * sizeof(float));
            if (mesh->uvs)
                memcpy(out->uvs + w * 2, mesh->uvs + v * 2, 2 * sizeof(float));
            if (mesh->colors)
                memcpy(out->colors + w * 3, mesh->colors + v * 3, 3 * sizeof(float));
        }
    }
    for (int64_t f = 0; f < F; f++)
        for (int k = 0; k < 3; k++) {
            int32_t v = mesh->faces[f * 3 + k];
            out->faces[f * 3 + k] = labels[f] == label ? copy_of[v] : v;
        }
    memcpy(out->face_materials, mesh->face_materials, (size_t)F * sizeof(int32_t));
    memcpy(out->face_parts, mesh->face_parts, (size_t)F * sizeof(int32_t));
    for (int i = 0; i < out->part_count; i++)
        free(out->part_names[i]);
    free(out->part_names);
    out->part_names = copy.part_names;
    out->part_count = copy.part_count;
    out->materials = copy.materials;
    out->material_count = copy.material_count;
    copy.part_names = NULL;
    copy.part_count = 0;
    copy.materials = NULL;
    copy.material_count = 0;
    od_mesh_free(&copy);
    *moving = calloc((size_t)(V + shared) + 1, 1);
    if (!*moving) {
        od_mesh_free(out);
        od_fail(err, "part moved: out of memory");
        goto done;
    }
    for (int64_t f = 0; f < F; f++)
        if (labels[f] == label)
            for (int k = 0; k < 3; k++)
                (*moving)[out->faces[f * 3 + k]] = 1;
    rc = 0;
done:
    free(use);
    free(copy_of);
    return rc;
}

/* The parts of a mesh with what moving one of them needs. */
typedef struct part_setup {
    int32_t *labels;   /* (F) part per face */
    int parts;
    double *areas;     /* (parts) surface area */
    int largest;       /* the part of the largest area: the body, which stays */
    float size, gap;   /* the mesh's size and the attachment distance, 2 % of it */
} part_setup;

static void part_setup_free(part_setup *s)
{
    free(s->labels);
    free(s->areas);
}

static int part_setup_make(const od_mesh *mesh, const char *what, part_setup *s, od_error *err)
{
    memset(s, 0, sizeof *s);
    if (check_mesh(mesh, what, err) != 0)
        return -1;
    float min[3], max[3];
    s->size = mesh_extent(mesh, min, max);
    s->gap = 0.02f * s->size;
    s->labels = malloc((size_t)mesh->face_count * sizeof(int32_t));
    if (!s->labels)
        return od_fail(err, "%s: out of memory for %lld faces", what, (long long)mesh->face_count);
    s->parts = part_labels(mesh, s->size, s->labels, err);
    if (s->parts < 0) {
        part_setup_free(s);
        return -1;
    }
    if (s->parts < 2) {
        part_setup_free(s);
        return od_fail(err, "%s: the mesh has %d part (no groups, one connected piece); nothing can move", what,
                       s->parts);
    }
    s->areas = calloc((size_t)s->parts, sizeof(double));
    if (!s->areas) {
        part_setup_free(s);
        return od_fail(err, "%s: out of memory for %d parts", what, s->parts);
    }
    for (int64_t f = 0; f < mesh->face_count; f++)
        s->areas[s->labels[f]] += face_area(mesh, f);
    for (int i = 1; i < s->parts; i++)
        if (s->areas[i] > s->areas[s->largest])
            s->largest = i;
    return 0;
}

/* Surface points of part `label` and of the rest, `gap` / 2 apart on average, and a grid of the rest
 * with cells of `gap`. */
typedef struct part_points {
    point_set part, rest;
    point_grid grid;
} part_points;

static void part_points_free(part_points *p)
{
    free(p->part.points);
    free(p->rest.points);
    free(p->grid.cells);
}

static int part_points_make(const od_mesh *mesh, const part_setup *s, int label, part_points *p, od_error *err)
{
    memset(p, 0, sizeof *p);
    float spacing = 0.5f * s->gap;
    if (surface_points(mesh, s->labels, label, 1, spacing, &p->part) != 0 ||
        surface_points(mesh, s->labels, label, 0, spacing, &p->rest) != 0 || grid_build(&p->grid, &p->rest, s->gap) != 0) {
        part_points_free(p);
        return od_fail(err, "part moved: out of memory for the surface points");
    }
    return 0;
}

/* Returns 1 when some moved point of the part lies within the gap of the rest. `transform` maps a point
 * of the part to its moved place (a 3x4 row-major [A t]). */
static int attached(const part_points *p, const float transform[12])
{
    for (int64_t i = 0; i < p->part.count; i++) {
        const float *q = p->part.points + i * 3;
        float moved[3];
        for (int r = 0; r < 3; r++)
            moved[r] = transform[r * 4] * q[0] + transform[r * 4 + 1] * q[1] + transform[r * 4 + 2] * q[2] +
                       transform[r * 4 + 3];
        if (grid_near(&p->grid, moved))
            return 1;
    }
    return 0;
}

/* Applies the transform to the moving vertices of out (positions, and normals by its rotation), and
 * returns the largest displacement. */
static float move_vertices(od_mesh *out, const uint8_t *moving, const float transform[12])
{
    float largest = 0;
    for (int64_t v = 0; v < out->vertex_count; v++) {
        if (!moving[v])
            continue;
        float *q = out->positions + v * 3;
        float moved[3];
        for (int r = 0; r < 3; r++)
            moved[r] = transform[r * 4] * q[0] + transform[r * 4 + 1] * q[1] + transform[r * 4 + 2] * q[2] +
                       transform[r * 4 + 3];
        float d2 = 0;
        for (int k = 0; k < 3; k++)
            d2 += (moved[k] - q[k]) * (moved[k] - q[k]);
        largest = fmaxf(largest, sqrtf(d2));
        memcpy(q, moved, sizeof moved);
        if (out->normals) {
            float *n = out->normals + v * 3, turned[3];
            for (int r = 0; r < 3; r++)
                turned[r] = transform[r * 4] * n[0] + transform[r * 4 + 1] * n[1] + transform[r * 4 + 2] * n[2];
            memcpy(n, turned, sizeof turned);
        }
    }
    return largest;
}

/* A drawn order of the parts other than the largest (Fisher-Yates); returns the count. */
static int movable_order(const part_setup *s, od_rng *rng, int *order)
{
    int count = 0;
    for (int i = 0; i < s->parts; i++)
        if (i != s->largest)
            order[count++] = i;
    for (int i = count - 1; i > 0; i--) {
        int j = (int)od_rng_below(rng, (uint64_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return count;
}

static void random_direction(od_rng *rng, float d[3])
{
    for (;;) {
        for (int k = 0; k < 3; k++)
            d[k] = od_rng_normal(rng);
        float length = sqrtf(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        if (length > 1e-3f) {
            for (int k = 0; k < 3; k++)
                d[k] /= length;
            return;
        }
    }
}

int od_synth_translate_part(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info,
                            od_error *err)
{
    /* positions (V, 3), faces (F, 3) and face_parts (F) are read; out has the part's vertices moved. */
    part_setup s;
    if (part_setup_make(mesh, "part translated", &s, err) != 0)
        return -1;
    int rc = -1;
    int *order = malloc((size_t)s.parts * sizeof(int));
    if (!order) {
        part_setup_free(&s);
        return od_fail(err, "part translated: out of memory");
    }
    int count = movable_order(&s, rng, order);
    od_synth_anomaly_info local = {0};
    for (int i = 0; i < count; i++) {
        part_points points;
        if (part_points_make(mesh, &s, order[i], &points, err) != 0)
            goto done;
        for (int attempt = 0; attempt < OD_SYNTH_ANOMALY_TRIES / 4; attempt++) {
            float direction[3];
            random_direction(rng, direction);
            float distance = uniform(rng, 0.05f, 0.15f) * s.size;
            float transform[12] = {1, 0, 0, distance * direction[0], 0, 1, 0, distance * direction[1],
                                   0, 0, 1, distance * direction[2]};
            if (!attached(&points, transform)) {
                local.rejected++;
                continue;
            }
            uint8_t *moving = NULL;
            if (split_part(mesh, s.labels, order[i], out, &moving, err) != 0) {
                part_points_free(&points);
                goto done;
            }
            float moved = move_vertices(out, moving, transform);
            free(moving);
            local.parameter = distance / s.size;
            local.measure = moved / s.size;
            if (info)
                *info = local;
            part_points_free(&points);
            rc = 0;
            goto done;
        }
        part_points_free(&points);
    }
    od_fail(err, "part translated: every move of the %d movable parts left the part detached from the rest", count);
done:
    free(order);
    part_setup_free(&s);
    return rc;
}

int od_synth_rotate_part(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info,
                         od_error *err)
{
    /* positions (V, 3), faces (F, 3) and face_parts (F) are read; out has the part's vertices turned. */
    part_setup s;
    if (part_setup_make(mesh, "part rotated", &s, err) != 0)
        return -1;
    int rc = -1;
    int *order = malloc((size_t)s.parts * sizeof(int));
    if (!order) {
        part_setup_free(&s);
        return od_fail(err, "part rotated: out of memory");
    }
    int count = movable_order(&s, rng, order);
    od_synth_anomaly_info local = {0};
    for (int i = 0; i < count; i++) {
        part_points points;
        if (part_points_make(mesh, &s, order[i], &points, err) != 0)
            goto done;
        /* The joint: the centroid of the part's points within the gap of the rest. */
        double joint[3] = {0, 0, 0};
        int64_t touching = 0;
        for (int64_t j = 0; j < points.part.count; j++) {
            const float *q = points.part.points + j * 3;
            if (!grid_near(&points.grid, q))
                continue;
            for (int k = 0; k < 3; k++)
                joint[k] += q[k];
            touching++;
        }
        if (touching == 0) {
            /* The part does not touch the rest even before it turns. */
            local.rejected++;
            part_points_free(&points);
            continue;
        }
        float c[3];
        for (int k = 0; k < 3; k++)
            c[k] = (float)(joint[k] / (double)touching);
        for (int attempt = 0; attempt < OD_SYNTH_ANOMALY_TRIES / 4; attempt++) {
            float axis[3];
            random_direction(rng, axis);
            float degrees = uniform(rng, 15, 60) * (od_rng_below(rng, 2) ? 1.0f : -1.0f);
            /* Rodrigues' rotation about `axis` through the joint c: p' = R (p - c) + c. */
            float a = degrees * PI_F / 180, cs = cosf(a), sn = sinf(a), t = 1 - cs;
            float x = axis[0], y = axis[1], z = axis[2];
            float R[9] = {cs + x * x * t,     x * y * t - z * sn, x * z * t + y * sn,
                          y * x * t + z * sn, cs + y * y * t,     y * z * t - x * sn,
                          z * x * t - y * sn, z * y * t + x * sn, cs + z * z * t};
            float transform[12];
            for (int r = 0; r < 3; r++) {
                transform[r * 4] = R[r * 3];
                transform[r * 4 + 1] = R[r * 3 + 1];
                transform[r * 4 + 2] = R[r * 3 + 2];
                transform[r * 4 + 3] = c[r] - (R[r * 3] * c[0] + R[r * 3 + 1] * c[1] + R[r * 3 + 2] * c[2]);
            }
            if (!attached(&points, transform)) {
                local.rejected++;
                continue;
            }
            uint8_t *moving = NULL;
            if (split_part(mesh, s.labels, order[i], out, &moving, err) != 0) {
                part_points_free(&points);
                goto done;
            }
            float moved = move_vertices(out, moving, transform);
            free(moving);
            if (moved < 0.03f * s.size) {
                /* A small part near its joint hardly moves. */
                od_mesh_free(out);
                local.rejected++;
                continue;
            }
            local.parameter = degrees;
            local.measure = moved / s.size;
            if (info)
                *info = local;
            part_points_free(&points);
            rc = 0;
            goto done;
        }
        part_points_free(&points);
    }
    od_fail(err, "part rotated: no turn of the %d movable parts about their joints moved them by 3 %% of the size "
                 "and kept them attached",
            count);
done:
    free(order);
    part_setup_free(&s);
    return rc;
}

/* ---- where two versions differ ------------------------------------------------------------ */

int od_synth_surface_difference(const od_mesh *a, const od_mesh *b, float tolerance, uint8_t *marks, int64_t *count,
                                od_error *err)
{
    /* positions and faces of both are read; marks (a's F) is written. */
    if (check_mesh(a, "surface difference", err) != 0 || check_mesh(b, "surface difference", err) != 0)
        return -1;
    if (!(tolerance > 0) || !isfinite(tolerance))
        return od_fail(err, "surface difference: invalid tolerance %g (expected > 0)", (double)tolerance);
    point_set points = {0};
    point_grid grid = {0};
    if (surface_points(b, NULL, 0, 1, tolerance / 3, &points) != 0 || grid_build(&grid, &points, tolerance) != 0) {
        free(points.points);
        free(grid.cells);
        return od_fail(err, "surface difference: out of memory for the surface points");
    }
    int64_t marked = 0;
    for (int64_t f = 0; f < a->face_count; f++) {
        float centroid[3];
        for (int k = 0; k < 3; k++)
            centroid[k] = (a->positions[a->faces[f * 3] * 3 + k] + a->positions[a->faces[f * 3 + 1] * 3 + k] +
                           a->positions[a->faces[f * 3 + 2] * 3 + k]) / 3;
        marks[f] = !grid_near(&grid, centroid);
        marked += marks[f];
    }
    if (count)
        *count = marked;
    free(points.points);
    free(grid.cells);
    return 0;
}

/* ---- a distinct but close shape ------------------------------------------------------------ */

#define DESCRIPTOR_BINS 32
#define SHAPE_SAMPLES 1024

/* Writes `count` points drawn uniformly over the mesh's surface (by area, from a fixed stream), moved and
 * scaled so that the bounding box is centred at the origin with a largest extent of 1. */
static int unit_surface_samples(const od_mesh *mesh, int count, float *points, od_error *err)
{
    float min[3], max[3];
    float size = mesh_extent(mesh, min, max);
    int64_t F = mesh->face_count;
    double *cumulative = malloc((size_t)F * sizeof(double));
    if (!cumulative)
        return od_fail(err, "close shape: out of memory for %lld faces", (long long)F);
    double total = 0;
    for (int64_t f = 0; f < F; f++) {
        total += face_area(mesh, f);
        cumulative[f] = total;
    }
    od_rng rng;
    od_rng_seed(&rng, 0x636c6f7365);
    for (int i = 0; i < count; i++) {
        double target = od_rng_uniform(&rng) * total;
        int64_t low = 0, high = F - 1;
        while (low < high) {
            int64_t mid = (low + high) / 2;
            if (cumulative[mid] < target)
                low = mid + 1;
            else
                high = mid;
        }
        const float *a = mesh->positions + mesh->faces[low * 3] * 3, *b = mesh->positions + mesh->faces[low * 3 + 1] * 3,
                    *c = mesh->positions + mesh->faces[low * 3 + 2] * 3;
        float s = od_rng_uniform(&rng), t = od_rng_uniform(&rng);
        if (s + t > 1) {
            s = 1 - s;
            t = 1 - t;
        }
        for (int k = 0; k < 3; k++) {
            float p = a[k] + s * (b[k] - a[k]) + t * (c[k] - a[k]);
            points[i * 3 + k] = (p - 0.5f * (min[k] + max[k])) / size;
        }
    }
    free(cumulative);
    return 0;
}

/* Writes the shape descriptor of unit-sized samples. First the D2 histogram: the distances between
 * sample pairs i and (i * 7 + 1) mod count, in DESCRIPTOR_BINS bins up to sqrt(3), as fractions. Then
 * the square roots of the samples' covariance eigenvalues, in decreasing order. Both ignore how the
 * shape is turned. */
static void shape_descriptor(const float *points, int count, double *descriptor)
{
    memset(descriptor, 0, (DESCRIPTOR_BINS + 3) * sizeof(double));
    for (int i = 0; i < count; i++) {
        const float *p = points + i * 3, *q = points + ((i * 7 + 1) % count) * 3;
        double d = sqrt((double)(p[0] - q[0]) * (p[0] - q[0]) + (double)(p[1] - q[1]) * (p[1] - q[1]) +
                        (double)(p[2] - q[2]) * (p[2] - q[2]));
        int bin = (int)(d / 1.7320508 * DESCRIPTOR_BINS);
        descriptor[bin < DESCRIPTOR_BINS ? bin : DESCRIPTOR_BINS - 1] += 1.0 / count;
    }
    double mean[3] = {0, 0, 0}, c[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < count; i++)
        for (int k = 0; k < 3; k++)
            mean[k] += points[i * 3 + k] / (double)count;
    for (int i = 0; i < count; i++) {
        double d[3] = {points[i * 3] - mean[0], points[i * 3 + 1] - mean[1], points[i * 3 + 2] - mean[2]};
        c[0] += d[0] * d[0] / count;
        c[1] += d[1] * d[1] / count;
        c[2] += d[2] * d[2] / count;
        c[3] += d[0] * d[1] / count;
        c[4] += d[0] * d[2] / count;
        c[5] += d[1] * d[2] / count;
    }
    /* Eigenvalues of the symmetric 3x3 matrix in closed form (trigonometric solution of the cubic). */
    double p1 = c[3] * c[3] + c[4] * c[4] + c[5] * c[5], trace = c[0] + c[1] + c[2], eig[3];
    double q = trace / 3;
    double p2 = (c[0] - q) * (c[0] - q) + (c[1] - q) * (c[1] - q) + (c[2] - q) * (c[2] - q) + 2 * p1;
    double p = sqrt(p2 / 6);
    if (p < 1e-15) {
        eig[0] = eig[1] = eig[2] = q;
    } else {
        double b[6] = {(c[0] - q) / p, (c[1] - q) / p, (c[2] - q) / p, c[3] / p, c[4] / p, c[5] / p};
        double det = b[0] * (b[1] * b[2] - b[5] * b[5]) - b[3] * (b[3] * b[2] - b[5] * b[4]) +
                     b[4] * (b[3] * b[5] - b[1] * b[4]);
        double r = fmax(-1, fmin(1, det / 2));
        double phi = acos(r) / 3;
        eig[0] = q + 2 * p * cos(phi);
        eig[2] = q + 2 * p * cos(phi + 2 * 3.14159265358979 / 3);
        eig[1] = 3 * q - eig[0] - eig[2];
    }
    for (int k = 0; k < 3; k++)
        descriptor[DESCRIPTOR_BINS + k] = sqrt(fmax(eig[k], 0));
}

/* The symmetric Chamfer distance of two unit-sized sample sets: the mean distance from each point to the
 * nearest of the other set, averaged over both directions. */
static double chamfer(const float *a, const float *b, int count)
{
    double total = 0;
    for (int pass = 0; pass < 2; pass++) {
        const float *from = pass ? b : a, *to = pass ? a : b;
        for (int i = 0; i < count; i++) {
            float best = INFINITY;
            for (int j = 0; j < count; j++) {
                float d = (from[i * 3] - to[j * 3]) * (from[i * 3] - to[j * 3]) +
                          (from[i * 3 + 1] - to[j * 3 + 1]) * (from[i * 3 + 1] - to[j * 3 + 1]) +
                          (from[i * 3 + 2] - to[j * 3 + 2]) * (from[i * 3 + 2] - to[j * 3 + 2]);
                best = fminf(best, d);
            }
            total += sqrt(best);
        }
    }
    return total / (2.0 * count);
}

int od_synth_close_shape(const od_mesh *mesh, const od_mesh *const *candidates, int candidate_count,
                         float max_chamfer, int *chosen, float *distance, od_error *err)
{
    if (check_mesh(mesh, "close shape", err) != 0)
        return -1;
    if (candidate_count < 1 || !candidates)
        return od_fail(err, "close shape: no candidate meshes given");
    if (!(max_chamfer > 0))
        return od_fail(err, "close shape: invalid Chamfer threshold %g (expected > 0)", (double)max_chamfer);
    int rc = -1;
    float *reference = malloc((size_t)SHAPE_SAMPLES * 3 * sizeof(float));
    float *samples = malloc((size_t)candidate_count * SHAPE_SAMPLES * 3 * sizeof(float));
    keyed *order = malloc((size_t)candidate_count * sizeof(keyed));
    if (!reference || !samples || !order) {
        od_fail(err, "close shape: out of memory for %d candidates", candidate_count);
        goto done;
    }
    double own[DESCRIPTOR_BINS + 3], other[DESCRIPTOR_BINS + 3];
    if (unit_surface_samples(mesh, SHAPE_SAMPLES, reference, err) != 0)
        goto done;
    shape_descriptor(reference, SHAPE_SAMPLES, own);
    int usable = 0;
    for (int i = 0; i < candidate_count; i++) {
        char what[64];
        snprintf(what, sizeof what, "close shape: candidate %d", i);
        if (check_mesh(candidates[i], what, err) != 0)
            goto done;
        float *points = samples + (size_t)i * SHAPE_SAMPLES * 3;
        if (unit_surface_samples(candidates[i], SHAPE_SAMPLES, points, err) != 0)
            goto done;
        shape_descriptor(points, SHAPE_SAMPLES, other);
        double key = 0;
        for (int k = 0; k < DESCRIPTOR_BINS; k++)
            key += fabs(own[k] - other[k]);
        for (int k = DESCRIPTOR_BINS; k < DESCRIPTOR_BINS + 3; k++)
            key += 2 * fabs(own[k] - other[k]);
        order[usable].key = key;
        order[usable++].index = i;
    }
    qsort(order, (size_t)usable, sizeof *order, compare_keyed);
    /* The nearest by descriptor whose Chamfer distance is at most the threshold, among the five nearest,
     * skipping copies of the mesh (under 1 % of the size off). */
    int tried = 0;
    for (int i = 0; i < usable && tried < 5; i++) {
        double d = chamfer(reference, samples + (size_t)order[i].index * SHAPE_SAMPLES * 3, SHAPE_SAMPLES);
        if (d < 0.01)
            continue;
        tried++;
        if (d <= max_chamfer) {
            *chosen = (int)order[i].index;
            if (distance)
                *distance = (float)d;
            rc = 0;
            goto done;
        }
    }
    od_fail(err, "close shape: none of the %d nearest of %d candidates by shape descriptor lies within a Chamfer "
                 "distance of %g of the size",
            tried, candidate_count, (double)max_chamfer);
done:
    free(reference);
    free(samples);
    free(order);
    return rc;
}
