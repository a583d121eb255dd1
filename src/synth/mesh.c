/* Triangle meshes: allocation, procedural shapes, normalisation, welding
 * and connected components. The OBJ reader is in mesh_obj.c. */
#include "synth/mesh.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void od_mesh_free(od_mesh *mesh)
{
    if (!mesh)
        return;
    free(mesh->positions);
    free(mesh->normals);
    free(mesh->uvs);
    free(mesh->colors);
    free(mesh->faces);
    free(mesh->face_materials);
    free(mesh->face_parts);
    for (int i = 0; i < mesh->material_count; i++) {
        free(mesh->materials[i].name);
        free(mesh->materials[i].texture_path);
        od_image_free(&mesh->materials[i].texture);
    }
    free(mesh->materials);
    for (int i = 0; i < mesh->part_count; i++)
        free(mesh->part_names[i]);
    free(mesh->part_names);
    memset(mesh, 0, sizeof *mesh);
}

int od_mesh_new(int64_t vertex_count, int64_t face_count, int with_normals, int with_uvs, int with_colors,
                od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    if (vertex_count < 0 || face_count < 0 || vertex_count > OD_MESH_MAX_ELEMENTS ||
        face_count > OD_MESH_MAX_ELEMENTS)
        return od_fail(err, "mesh: invalid size of %lld vertices and %lld faces (expected 0 to %lld each)",
                       (long long)vertex_count, (long long)face_count, (long long)OD_MESH_MAX_ELEMENTS);
    size_t v = (size_t)vertex_count, f = (size_t)face_count;
    out->vertex_count = vertex_count;
    out->face_count = face_count;
    out->positions = calloc(v * 3 + 1, sizeof(float));
    out->faces = calloc(f * 3 + 1, sizeof(int32_t));
    out->face_materials = malloc((f + 1) * sizeof(int32_t));
    out->face_parts = calloc(f + 1, sizeof(int32_t));
    out->part_names = calloc(1, sizeof(char *));
    if (out->part_names)
        out->part_names[0] = strdup("default");
    out->part_count = 1;
    if (with_normals)
        out->normals = calloc(v * 3 + 1, sizeof(float));
    if (with_uvs)
        out->uvs = calloc(v * 2 + 1, sizeof(float));
    if (with_colors)
        out->colors = calloc(v * 3 + 1, sizeof(float));
    if (!out->positions || !out->faces || !out->face_materials || !out->face_parts || !out->part_names ||
        !out->part_names[0] || (with_normals && !out->normals) || (with_uvs && !out->uvs) ||
        (with_colors && !out->colors)) {
        od_mesh_free(out);
        return od_fail(err, "mesh: out of memory for %lld vertices and %lld faces", (long long)vertex_count,
                       (long long)face_count);
    }
    for (size_t i = 0; i < f; i++)
        out->face_materials[i] = -1;
    return 0;
}

int od_mesh_set_color(od_mesh *mesh, const float rgb[3], od_error *err)
{
    if (!mesh->colors) {
        mesh->colors = malloc(((size_t)mesh->vertex_count * 3 + 1) * sizeof(float));
        if (!mesh->colors)
            return od_fail(err, "mesh: out of memory for vertex colours");
    }
    for (int64_t i = 0; i < mesh->vertex_count; i++)
        for (int c = 0; c < 3; c++)
            mesh->colors[i * 3 + c] = rgb[c];
    return 0;
}

int od_mesh_compute_normals(od_mesh *mesh, od_error *err)
{
    if (!mesh->normals) {
        mesh->normals = malloc(((size_t)mesh->vertex_count * 3 + 1) * sizeof(float));
        if (!mesh->normals)
            return od_fail(err, "mesh: out of memory for vertex normals");
    }
    memset(mesh->normals, 0, (size_t)mesh->vertex_count * 3 * sizeof(float));
    for (int64_t f = 0; f < mesh->face_count; f++) {
        const int32_t *tri = mesh->faces + f * 3;
        const float *a = mesh->positions + (int64_t)tri[0] * 3, *b = mesh->positions + (int64_t)tri[1] * 3,
                    *c = mesh->positions + (int64_t)tri[2] * 3;
        float u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, v[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
        /* The cross product's length is twice the area, which weights the sum. */
        float n[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
        for (int k = 0; k < 3; k++)
            for (int d = 0; d < 3; d++)
                mesh->normals[(int64_t)tri[k] * 3 + d] += n[d];
    }
    for (int64_t i = 0; i < mesh->vertex_count; i++) {
        float *n = mesh->normals + i * 3;
        float length = sqrtf(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        for (int d = 0; d < 3; d++)
            n[d] = length > 0 ? n[d] / length : 0;
    }
    return 0;
}

/* ---- procedural shapes ------------------------------------------------------- */

int od_mesh_make_sphere(float radius, int rings, int segments, od_mesh *out, od_error *err)
{
    if (!(radius > 0) || rings < 2 || segments < 3 || rings > 4096 || segments > 4096)
        return od_fail(err, "sphere: invalid radius %g, rings %d or segments %d (expected radius > 0, "
                            "2 <= rings <= 4096, 3 <= segments <= 4096)",
                       (double)radius, rings, segments);
    /* Vertices: both poles, then (rings - 1) latitude circles of `segments`. */
    int64_t vertex_count = 2 + (int64_t)(rings - 1) * segments;
    int64_t face_count = 2 * (int64_t)segments * (rings - 1);
    if (od_mesh_new(vertex_count, face_count, 1, 0, 0, out, err) != 0)
        return -1;
    const double pi = 3.14159265358979323846;
    float *p = out->positions, *n = out->normals;
    n[2] = 1;
    n[5] = -1;
    for (int64_t k = 0; k < 2; k++)
        p[k * 3 + 2] = k == 0 ? radius : -radius;
    for (int ring = 1; ring < rings; ring++) {
        double theta = pi * ring / rings;
        for (int s = 0; s < segments; s++) {
            double phi = 2 * pi * s / segments;
            int64_t v = 2 + (int64_t)(ring - 1) * segments + s;
            double dir[3] = {sin(theta) * cos(phi), sin(theta) * sin(phi), cos(theta)};
            for (int c = 0; c < 3; c++) {
                n[v * 3 + c] = (float)dir[c];
                p[v * 3 + c] = (float)(radius * dir[c]);
            }
        }
    }
    int32_t *f = out->faces;
    int64_t face = 0;
    for (int s = 0; s < segments; s++) {
        int s1 = (s + 1) % segments;
        /* Top cap: the pole, then the first circle, counter-clockwise seen from outside. */
        f[face * 3 + 0] = 0;
        f[face * 3 + 1] = 2 + s;
        f[face * 3 + 2] = 2 + s1;
        face++;
        int32_t last = 2 + (rings - 2) * segments;
        f[face * 3 + 0] = 1;
        f[face * 3 + 1] = last + s1;
        f[face * 3 + 2] = last + s;
        face++;
    }
    for (int ring = 1; ring < rings - 1; ring++) {
        int32_t a0 = 2 + (ring - 1) * segments, b0 = a0 + segments;
        for (int s = 0; s < segments; s++) {
            int s1 = (s + 1) % segments;
            f[face * 3 + 0] = a0 + s;
            f[face * 3 + 1] = b0 + s;
            f[face * 3 + 2] = b0 + s1;
            face++;
            f[face * 3 + 0] = a0 + s;
            f[face * 3 + 1] = b0 + s1;
            f[face * 3 + 2] = a0 + s1;
            face++;
        }
    }
    return 0;
}

int od_mesh_make_torus(float major_radius, float minor_radius, int rings, int segments, od_mesh *out,
                       od_error *err)
{
    if (!(minor_radius > 0) || !(major_radius > minor_radius) || rings < 3 || segments < 3 ||
        rings > 4096 || segments > 4096)
        return od_fail(err, "torus: invalid radii %g, %g, rings %d or segments %d (expected "
                            "0 < minor < major, 3 <= rings, segments <= 4096)",
                       (double)major_radius, (double)minor_radius, rings, segments);
    int64_t vertex_count = (int64_t)rings * segments;
    if (od_mesh_new(vertex_count, 2 * vertex_count, 1, 0, 0, out, err) != 0)
        return -1;
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < rings; i++) {
        double u = 2 * pi * i / rings;
        for (int j = 0; j < segments; j++) {
            double v = 2 * pi * j / segments;
            int64_t k = (int64_t)i * segments + j;
            double normal[3] = {cos(v) * cos(u), cos(v) * sin(u), sin(v)};
            double centre[3] = {major_radius * cos(u), major_radius * sin(u), 0};
            for (int c = 0; c < 3; c++) {
                out->normals[k * 3 + c] = (float)normal[c];
                out->positions[k * 3 + c] = (float)(centre[c] + minor_radius * normal[c]);
            }
        }
    }
    int64_t face = 0;
    for (int i = 0; i < rings; i++) {
        int i1 = (i + 1) % rings;
        for (int j = 0; j < segments; j++) {
            int j1 = (j + 1) % segments;
            int32_t a = i * segments + j, b = i1 * segments + j, c = i1 * segments + j1, d = i * segments + j1;
            int32_t *f = out->faces + face * 3;
            f[0] = a, f[1] = b, f[2] = c;
            f[3] = a, f[4] = c, f[5] = d;
            face += 2;
        }
    }
    return 0;
}

int od_mesh_make_box(const float size[3], od_mesh *out, od_error *err)
{
    if (!(size[0] > 0) || !(size[1] > 0) || !(size[2] > 0))
        return od_fail(err, "box: invalid size (%g, %g, %g) (expected three positive extents)",
                       (double)size[0], (double)size[1], (double)size[2]);
    if (od_mesh_new(24, 12, 1, 0, 0, out, err) != 0)
        return -1;
    /* Each face: its axis, its sign, and two in-plane axes ordered so that
     * (a x b) points along the outward normal. */
    for (int face = 0; face < 6; face++) {
        int axis = face / 2;
        float sign = face % 2 ? 1.0f : -1.0f;
        int a = (axis + 1) % 3, b = (axis + 2) % 3;
        if (sign < 0) {
            int t = a;
            a = b;
            b = t;
        }
        static const float corner[4][2] = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
        for (int k = 0; k < 4; k++) {
            float *p = out->positions + (face * 4 + k) * 3;
            float *n = out->normals + (face * 4 + k) * 3;
            p[axis] = sign * size[axis] / 2;
            p[a] = corner[k][0] * size[a] / 2;
            p[b] = corner[k][1] * size[b] / 2;
            n[axis] = sign;
        }
        int32_t *f = out->faces + face * 6;
        int32_t base = face * 4;
        f[0] = base, f[1] = base + 1, f[2] = base + 2;
        f[3] = base, f[4] = base + 2, f[5] = base + 3;
    }
    return 0;
}

/* ---- clean-up ---------------------------------------------------------------- */

void od_mesh_bounds(const od_mesh *mesh, float min[3], float max[3])
{
    for (int c = 0; c < 3; c++)
        min[c] = max[c] = 0;
    for (int64_t i = 0; i < mesh->vertex_count; i++)
        for (int c = 0; c < 3; c++) {
            float v = mesh->positions[i * 3 + c];
            if (i == 0 || v < min[c])
                min[c] = v;
            if (i == 0 || v > max[c])
                max[c] = v;
        }
}

int od_mesh_normalize(od_mesh *mesh, float size, od_error *err)
{
    if (mesh->vertex_count == 0)
        return od_fail(err, "mesh normalize: the mesh has no vertices");
    if (!(size > 0) || !isfinite(size))
        return od_fail(err, "mesh normalize: invalid size %g (expected a positive finite value)", (double)size);
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    float extent = 0;
    for (int c = 0; c < 3; c++)
        if (max[c] - min[c] > extent)
            extent = max[c] - min[c];
    if (!(extent > 0) || !isfinite(extent))
        return od_fail(err, "mesh normalize: the bounding box extent is %g (expected positive and finite)",
                       (double)extent);
    float scale = size / extent;
    for (int64_t i = 0; i < mesh->vertex_count; i++)
        for (int c = 0; c < 3; c++) {
            float *p = mesh->positions + i * 3 + c;
            *p = (*p - 0.5f * (min[c] + max[c])) * scale;
        }
    return 0;
}

/* A vertex's grid cell, for welding and components. */
typedef struct cell_key {
    int64_t cell[3];
    int64_t vertex;
} cell_key;

static int compare_cell_keys(const void *a, const void *b)
{
    const cell_key *x = a, *y = b;
    for (int c = 0; c < 3; c++)
        if (x->cell[c] != y->cell[c])
            return x->cell[c] < y->cell[c] ? -1 : 1;
    return (x->vertex > y->vertex) - (x->vertex < y->vertex);
}

/* Sorts the vertices by grid cell of size `tolerance`, so that vertices of
 * one cell are adjacent and in index order. */
static cell_key *sorted_cells(const od_mesh *mesh, float tolerance, od_error *err)
{
    if (!(tolerance > 0) || !isfinite(tolerance)) {
        od_fail(err, "mesh: invalid weld tolerance %g (expected a positive finite value)", (double)tolerance);
        return NULL;
    }
    cell_key *keys = malloc(((size_t)mesh->vertex_count + 1) * sizeof *keys);
    if (!keys) {
        od_fail(err, "mesh: out of memory for %lld vertex cells", (long long)mesh->vertex_count);
        return NULL;
    }
    for (int64_t i = 0; i < mesh->vertex_count; i++) {
        for (int c = 0; c < 3; c++) {
            double q = floor((double)mesh->positions[i * 3 + c] / tolerance + 0.5);
            /* Clamp so that huge or non-finite coordinates stay representable. */
            if (!(q > -4e18))
                q = -4e18;
            if (q > 4e18)
                q = 4e18;
            keys[i].cell[c] = (int64_t)q;
        }
        keys[i].vertex = i;
    }
    qsort(keys, (size_t)mesh->vertex_count, sizeof *keys, compare_cell_keys);
    return keys;
}

static int attributes_match(const od_mesh *mesh, int64_t a, int64_t b)
{
    const float eps = 1e-4f;
    if (mesh->uvs)
        for (int c = 0; c < 2; c++)
            if (fabsf(mesh->uvs[a * 2 + c] - mesh->uvs[b * 2 + c]) > eps)
                return 0;
    if (mesh->normals)
        for (int c = 0; c < 3; c++)
            if (fabsf(mesh->normals[a * 3 + c] - mesh->normals[b * 3 + c]) > eps)
                return 0;
    if (mesh->colors)
        for (int c = 0; c < 3; c++)
            if (fabsf(mesh->colors[a * 3 + c] - mesh->colors[b * 3 + c]) > eps)
                return 0;
    return 1;
}

int od_mesh_weld(od_mesh *mesh, float tolerance, od_error *err)
{
    int64_t v_count = mesh->vertex_count;
    cell_key *keys = sorted_cells(mesh, tolerance, err);
    if (!keys)
        return -1;
    int64_t *representative = malloc(((size_t)v_count + 1) * sizeof(int64_t));
    int64_t *new_index = malloc(((size_t)v_count + 1) * sizeof(int64_t));
    if (!representative || !new_index) {
        free(keys);
        free(representative);
        free(new_index);
        return od_fail(err, "mesh weld: out of memory for %lld vertices", (long long)v_count);
    }
    /* Within a cell, each vertex maps to the first earlier vertex with the same attributes. */
    for (int64_t start = 0; start < v_count;) {
        int64_t end = start + 1;
        while (end < v_count && memcmp(keys[end].cell, keys[start].cell, sizeof keys[start].cell) == 0)
            end++;
        for (int64_t i = start; i < end; i++) {
            int64_t v = keys[i].vertex;
            representative[v] = v;
            for (int64_t j = start; j < i; j++) {
                int64_t u = keys[j].vertex;
                if (representative[u] == u && attributes_match(mesh, u, v)) {
                    representative[v] = u;
                    break;
                }
            }
        }
        start = end;
    }
    free(keys);

    /* Renumber in the order of first use by the faces, dropping unused vertices. */
    for (int64_t i = 0; i < v_count; i++)
        new_index[i] = -1;
    int64_t kept = 0, faces_kept = 0;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        int32_t tri[3];
        for (int k = 0; k < 3; k++) {
            int64_t r = representative[mesh->faces[f * 3 + k]];
            tri[k] = (int32_t)r;
        }
        if (tri[0] == tri[1] || tri[1] == tri[2] || tri[0] == tri[2])
            continue;
        for (int k = 0; k < 3; k++) {
            if (new_index[tri[k]] < 0)
                new_index[tri[k]] = kept++;
            mesh->faces[faces_kept * 3 + k] = (int32_t)new_index[tri[k]];
        }
        mesh->face_materials[faces_kept] = mesh->face_materials[f];
        mesh->face_parts[faces_kept] = mesh->face_parts[f];
        faces_kept++;
    }
    /* Move each kept vertex to its new slot; new_index[v] <= v's first-use
     * rank, so copy through a scratch buffer per array. */
    float *arrays[4] = {mesh->positions, mesh->normals, mesh->uvs, mesh->colors};
    int widths[4] = {3, 3, 2, 3};
    for (int a = 0; a < 4; a++) {
        if (!arrays[a])
            continue;
        float *moved = malloc(((size_t)kept * widths[a] + 1) * sizeof(float));
        if (!moved) {
            free(representative);
            free(new_index);
            return od_fail(err, "mesh weld: out of memory for %lld vertices", (long long)kept);
        }
        for (int64_t v = 0; v < v_count; v++)
            if (new_index[v] >= 0)
                memcpy(moved + new_index[v] * widths[a], arrays[a] + v * widths[a], widths[a] * sizeof(float));
        free(arrays[a]);
        arrays[a] = moved;
    }
    mesh->positions = arrays[0];
    mesh->normals = arrays[1];
    mesh->uvs = arrays[2];
    mesh->colors = arrays[3];
    mesh->vertex_count = kept;
    mesh->face_count = faces_kept;
    free(representative);
    free(new_index);
    return 0;
}

/* Joins the sets of a and b under the smaller root, so labels do not depend on the order of joins. */
static void join_sets(int64_t *parent, int64_t a, int64_t b);

static int64_t find_root(int64_t *parent, int64_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void join_sets(int64_t *parent, int64_t a, int64_t b)
{
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

int od_mesh_components(const od_mesh *mesh, float tolerance, int32_t *face_components, od_error *err)
{
    int64_t v_count = mesh->vertex_count;
    cell_key *keys = sorted_cells(mesh, tolerance, err);
    if (!keys)
        return -1;
    int64_t *parent = malloc(((size_t)v_count + 1) * sizeof(int64_t));
    int32_t *label = malloc(((size_t)v_count + 1) * sizeof(int32_t));
    if (!parent || !label) {
        free(keys);
        free(parent);
        free(label);
        return od_fail(err, "mesh components: out of memory for %lld vertices", (long long)v_count);
    }
    for (int64_t i = 0; i < v_count; i++)
        parent[i] = i;
    /* Vertices of one cell are one point; union them with the smallest index as root. */
    for (int64_t i = 1; i < v_count; i++)
        if (memcmp(keys[i].cell, keys[i - 1].cell, sizeof keys[i].cell) == 0) {
            join_sets(parent, keys[i - 1].vertex, keys[i].vertex);
        }
    free(keys);
    for (int64_t f = 0; f < mesh->face_count; f++) {
        const int32_t *tri = mesh->faces + f * 3;
        for (int k = 1; k < 3; k++)
            join_sets(parent, tri[0], tri[k]);
    }
    for (int64_t i = 0; i < v_count; i++)
        label[i] = -1;
    int32_t count = 0;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        int64_t root = find_root(parent, mesh->faces[f * 3]);
        if (label[root] < 0)
            label[root] = count++;
        face_components[f] = label[root];
    }
    free(parent);
    free(label);
    return count;
}

/* ---- parts ------------------------------------------------------------------------ */

static double triangle_area(const od_mesh *mesh, int64_t f)
{
    const int32_t *tri = mesh->faces + f * 3;
    const float *a = mesh->positions + (int64_t)tri[0] * 3, *b = mesh->positions + (int64_t)tri[1] * 3,
                *c = mesh->positions + (int64_t)tri[2] * 3;
    double u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, v[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    double n[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
    double area = 0.5 * sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
    return isfinite(area) ? area : 0;
}

/* Renumbers labels (F) to 0..count-1 in the order of each label's first face; returns count. */
static int compact_labels(int32_t *labels, int64_t face_count, int32_t label_limit, int32_t *map)
{
    for (int32_t i = 0; i < label_limit; i++)
        map[i] = -1;
    int32_t count = 0;
    for (int64_t f = 0; f < face_count; f++) {
        if (map[labels[f]] < 0)
            map[labels[f]] = count++;
        labels[f] = map[labels[f]];
    }
    return count;
}

/* Merges each label whose area is under min_fraction of the total into
 * the nearest label of at least that area, by the gap between their
 * bounding boxes (0 when they overlap; ties go to the lower label). At
 * most 1 / min_fraction labels are that large, which bounds the work.
 * When no label is, every face gets label 0. Returns the new count after
 * compacting, or -1 when out of memory. */
static int merge_small_by_box(const od_mesh *mesh, int32_t *labels, int count, double min_fraction)
{
    double *area = calloc((size_t)count + 1, sizeof(double));
    float *box = malloc(((size_t)count * 6 + 1) * sizeof(float));
    int32_t *target = malloc(((size_t)count + 1) * sizeof(int32_t));
    int32_t *large = malloc(((size_t)count + 1) * sizeof(int32_t));
    if (!area || !box || !target || !large) {
        free(area);
        free(box);
        free(target);
        free(large);
        return -1;
    }
    for (int i = 0; i < count; i++)
        for (int c = 0; c < 3; c++) {
            box[i * 6 + c] = INFINITY;
            box[i * 6 + 3 + c] = -INFINITY;
        }
    double total = 0;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        int32_t l = labels[f];
        double a = triangle_area(mesh, f);
        area[l] += a;
        total += a;
        for (int k = 0; k < 3; k++) {
            const float *p = mesh->positions + (int64_t)mesh->faces[f * 3 + k] * 3;
            for (int c = 0; c < 3; c++) {
                if (p[c] < box[l * 6 + c])
                    box[l * 6 + c] = p[c];
                if (p[c] > box[l * 6 + 3 + c])
                    box[l * 6 + 3 + c] = p[c];
            }
        }
    }
    int large_count = 0;
    for (int i = 0; i < count; i++)
        if (area[i] >= min_fraction * total)
            large[large_count++] = i;
    for (int i = 0; i < count; i++) {
        target[i] = large_count == 0 ? 0 : i;
        if (large_count == 0 || area[i] >= min_fraction * total)
            continue;
        double best_gap = INFINITY;
        for (int k = 0; k < large_count; k++) {
            int j = large[k];
            double gap = 0;
            for (int c = 0; c < 3; c++) {
                double d = fmax(box[i * 6 + c] - box[j * 6 + 3 + c], box[j * 6 + c] - box[i * 6 + 3 + c]);
                if (d > 0)
                    gap += d * d;
            }
            if (gap < best_gap) {
                best_gap = gap;
                target[i] = j;
            }
        }
    }
    for (int64_t f = 0; f < mesh->face_count; f++)
        labels[f] = target[labels[f]];
    int result = compact_labels(labels, mesh->face_count, count, target);
    free(area);
    free(box);
    free(target);
    free(large);
    return result;
}

#define NECK_BINS 64
#define NECK_MAX_PIECES 16

/* Finds the neck along the longest axis (see od_mesh_find_parts); returns
 * 1 and writes the axis and the cut position when there is one. */
static int find_neck(const od_mesh *mesh, int *axis_out, float *cut_out)
{
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    int axis = 0;
    for (int c = 1; c < 3; c++)
        if (max[c] - min[c] > max[axis] - min[axis])
            axis = c;
    double lo = min[axis], length = (double)max[axis] - lo;
    if (!(length > 0) || !isfinite(length))
        return 0;
    double bins[NECK_BINS] = {0};
    double width = length / NECK_BINS;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        /* The area times the sine of the angle between the face's normal and
         * the axis, so that a slice measures the perimeter of its cross-section
         * and flat caps across the axis add nothing. */
        const int32_t *tri = mesh->faces + f * 3;
        const float *a0 = mesh->positions + (int64_t)tri[0] * 3, *a1 = mesh->positions + (int64_t)tri[1] * 3,
                    *a2 = mesh->positions + (int64_t)tri[2] * 3;
        double u[3] = {a1[0] - a0[0], a1[1] - a0[1], a1[2] - a0[2]}, v[3] = {a2[0] - a0[0], a2[1] - a0[1], a2[2] - a0[2]};
        double n[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
        double twice_area = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        if (!(twice_area > 0) || !isfinite(twice_area))
            continue;
        double along = n[axis] / twice_area;
        double a = 0.5 * twice_area * sqrt(fmax(0, 1 - along * along));
        double p0 = INFINITY, p1 = -INFINITY;
        for (int k = 0; k < 3; k++) {
            double p = mesh->positions[(int64_t)mesh->faces[f * 3 + k] * 3 + axis];
            p0 = fmin(p0, p);
            p1 = fmax(p1, p);
        }
        double s0 = (p0 - lo) / width, s1 = (p1 - lo) / width;
        int b0 = (int)fmin(fmax(floor(s0), 0), NECK_BINS - 1), b1 = (int)fmin(fmax(floor(s1), 0), NECK_BINS - 1);
        if (b0 == b1 || !(s1 > s0)) {
            bins[b0] += a;
            continue;
        }
        /* Spread the area over the slices in proportion to the span in each. */
        for (int b = b0; b <= b1; b++) {
            double overlap = fmin(s1, b + 1.0) - fmax(s0, (double)b);
            if (overlap > 0)
                bins[b] += a * overlap / (s1 - s0);
        }
    }
    int first = (int)(0.15 * NECK_BINS), last = (int)(0.85 * NECK_BINS);
    int best = -1;
    double best_ratio = 0.5;
    for (int b = first; b < last; b++) {
        double left = 0, right = 0;
        for (int i = 0; i < b; i++)
            left = fmax(left, bins[i]);
        for (int i = b + 1; i < NECK_BINS; i++)
            right = fmax(right, bins[i]);
        double lighter = fmin(left, right);
        if (!(lighter > 0))
            continue;
        double ratio = bins[b] / lighter;
        if (ratio <= best_ratio && (best < 0 || ratio < best_ratio)) {
            best = b;
            best_ratio = ratio;
        }
    }
    if (best < 0)
        return 0;
    /* Centre the cut on the run of slices about as narrow as the best, so
     * that a long even neck is cut in its middle. */
    int run_start = best, run_end = best;
    while (run_start > first && bins[run_start - 1] <= 1.1 * bins[best])
        run_start--;
    while (run_end + 1 < last && bins[run_end + 1] <= 1.1 * bins[best])
        run_end++;
    *axis_out = axis;
    *cut_out = (float)(lo + (0.5 * (run_start + run_end) + 0.5) * width);
    return 1;
}

/* Splits a one-piece mesh at its neck into connected pieces on each side;
 * returns the piece count (1 when there is no neck), or -1 on failure. */
static int segment_at_neck(const od_mesh *mesh, float tolerance, int32_t *labels, od_error *err)
{
    int64_t F = mesh->face_count, V = mesh->vertex_count;
    int axis;
    float cut;
    if (!find_neck(mesh, &axis, &cut)) {
        for (int64_t f = 0; f < F; f++)
            labels[f] = 0;
        return 1;
    }
    cell_key *keys = sorted_cells(mesh, tolerance, err);
    if (!keys)
        return -1;
    /* Each vertex's representative: the smallest vertex of its cell. */
    int64_t *representative = malloc(((size_t)V + 1) * sizeof(int64_t));
    int64_t *last_face = malloc(((size_t)V * 2 + 1) * sizeof(int64_t));
    int64_t *parent = malloc(((size_t)F + 1) * sizeof(int64_t));
    unsigned char *side = malloc((size_t)F + 1);
    int32_t *map = malloc(((size_t)F + 1) * sizeof(int32_t));
    if (!representative || !last_face || !parent || !side || !map) {
        free(keys);
        free(representative);
        free(last_face);
        free(parent);
        free(side);
        free(map);
        return od_fail(err, "mesh parts: out of memory for %lld faces", (long long)F);
    }
    for (int64_t i = 0, start = 0; i < V; i++) {
        if (memcmp(keys[start].cell, keys[i].cell, sizeof keys[i].cell) != 0)
            start = i;
        representative[keys[i].vertex] = keys[start].vertex;
    }
    free(keys);
    for (int64_t i = 0; i < 2 * V; i++)
        last_face[i] = -1;
    for (int64_t f = 0; f < F; f++) {
        parent[f] = f;
        double centroid = 0;
        for (int k = 0; k < 3; k++)
            centroid += mesh->positions[(int64_t)mesh->faces[f * 3 + k] * 3 + axis];
        side[f] = centroid / 3 >= cut;
    }
    /* Faces on the same side that share a vertex position are one piece. */
    for (int64_t f = 0; f < F; f++)
        for (int k = 0; k < 3; k++) {
            int64_t slot = representative[mesh->faces[f * 3 + k]] * 2 + side[f];
            if (last_face[slot] >= 0)
                join_sets(parent, last_face[slot], f);
            last_face[slot] = f;
        }
    for (int64_t f = 0; f < F; f++)
        labels[f] = (int32_t)find_root(parent, f);
    int count = compact_labels(labels, F, (int32_t)F, map);
    if (count > NECK_MAX_PIECES) {
        /* A cut through many pieces (a comb, a grille) is not a useful split. */
        for (int64_t f = 0; f < F; f++)
            labels[f] = 0;
        count = 1;
    }

    /* Pieces under 2 % of the area join the neighbour (across a shared
     * vertex position) with which they share the most corners. */
    double *area = calloc((size_t)count + 1, sizeof(double));
    int64_t *shared = calloc((size_t)count + 1, sizeof(int64_t));
    int64_t *owner = malloc(((size_t)V + 1) * sizeof(int64_t));
    if (!area || !shared || !owner) {
        free(area);
        free(shared);
        free(owner);
        free(representative);
        free(last_face);
        free(parent);
        free(side);
        free(map);
        return od_fail(err, "mesh parts: out of memory for %d pieces", count);
    }
    double total = 0;
    for (int64_t f = 0; f < F; f++) {
        double a = triangle_area(mesh, f);
        area[labels[f]] += a;
        total += a;
    }
    for (int round = 0; round < count; round++) {
        int smallest = -1;
        for (int i = 0; i < count; i++)
            if (area[i] > 0 && area[i] < 0.02 * total && (smallest < 0 || area[i] < area[smallest]))
                smallest = i;
        if (smallest < 0)
            break;
        /* owner[v]: a label other than smallest that touches the position, if any. */
        for (int64_t v = 0; v < V; v++)
            owner[v] = -1;
        for (int64_t f = 0; f < F; f++)
            if (labels[f] != smallest)
                for (int k = 0; k < 3; k++)
                    owner[representative[mesh->faces[f * 3 + k]]] = labels[f];
        memset(shared, 0, (size_t)count * sizeof(int64_t));
        for (int64_t f = 0; f < F; f++)
            if (labels[f] == smallest)
                for (int k = 0; k < 3; k++) {
                    int64_t o = owner[representative[mesh->faces[f * 3 + k]]];
                    if (o >= 0)
                        shared[o]++;
                }
        int best = -1;
        for (int i = 0; i < count; i++)
            if (shared[i] > 0 && (best < 0 || shared[i] > shared[best]))
                best = i;
        if (best < 0) {
            area[smallest] = -area[smallest]; /* touches nothing: leave it, skip it from now on */
            continue;
        }
        for (int64_t f = 0; f < F; f++)
            if (labels[f] == smallest)
                labels[f] = best;
        area[best] += area[smallest];
        area[smallest] = 0;
    }
    count = compact_labels(labels, F, count, map);
    free(area);
    free(shared);
    free(owner);
    free(representative);
    free(last_face);
    free(parent);
    free(side);
    free(map);
    return count;
}

int od_mesh_find_parts(const od_mesh *mesh, int32_t *face_labels, od_mesh_parts_method *method, od_error *err)
{
    int64_t F = mesh->face_count;
    if (F <= 0 || mesh->vertex_count <= 0)
        return od_fail(err, "mesh parts: the mesh has no faces");
    int32_t *map = malloc(((size_t)(mesh->part_count > 0 ? mesh->part_count : 1) + 1) * sizeof(int32_t));
    if (!map)
        return od_fail(err, "mesh parts: out of memory");
    /* Groups, when two or more have faces. */
    for (int64_t f = 0; f < F; f++) {
        int32_t p = mesh->face_parts[f];
        face_labels[f] = p >= 0 && p < mesh->part_count ? p : 0;
    }
    int count = compact_labels(face_labels, F, mesh->part_count > 0 ? mesh->part_count : 1, map);
    free(map);
    if (count >= 2) {
        if (method)
            *method = OD_MESH_PARTS_GROUPS;
        return count;
    }
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    float size = 0;
    for (int c = 0; c < 3; c++)
        size = fmaxf(size, max[c] - min[c]);
    if (!(size > 0) || !isfinite(size))
        return od_fail(err, "mesh parts: the bounding box extent is %g (expected positive and finite)", (double)size);
    float tolerance = 1e-5f * size;
    count = od_mesh_components(mesh, tolerance, face_labels, err);
    if (count < 0)
        return -1;
    if (count >= 2) {
        count = merge_small_by_box(mesh, face_labels, count, 0.01);
        if (count < 0)
            return od_fail(err, "mesh parts: out of memory for the components");
    }
    if (count >= 2) {
        if (method)
            *method = OD_MESH_PARTS_COMPONENTS;
        return count;
    }
    count = segment_at_neck(mesh, tolerance, face_labels, err);
    if (count < 0)
        return -1;
    if (method)
        *method = count >= 2 ? OD_MESH_PARTS_SEGMENTS : OD_MESH_PARTS_WHOLE;
    return count;
}

int od_mesh_assign_parts(od_mesh *mesh, od_mesh_parts_method *method, od_error *err)
{
    od_mesh_parts_method how;
    int32_t *labels = malloc(((size_t)mesh->face_count + 1) * sizeof(int32_t));
    if (!labels)
        return od_fail(err, "mesh parts: out of memory for %lld faces", (long long)mesh->face_count);
    int count = od_mesh_find_parts(mesh, labels, &how, err);
    if (count < 0) {
        free(labels);
        return -1;
    }
    char **names = calloc((size_t)count + 1, sizeof(char *));
    int failed = names == NULL;
    for (int i = 0; i < count && !failed; i++) {
        char buffer[48];
        const char *name = buffer;
        if (how == OD_MESH_PARTS_GROUPS) {
            /* The group of the part's first face. */
            for (int64_t f = 0; f < mesh->face_count; f++)
                if (labels[f] == i) {
                    int32_t p = mesh->face_parts[f];
                    name = mesh->part_names[p >= 0 && p < mesh->part_count ? p : 0];
                    break;
                }
        } else if (how == OD_MESH_PARTS_COMPONENTS) {
            snprintf(buffer, sizeof buffer, "component_%d", i);
        } else if (how == OD_MESH_PARTS_SEGMENTS) {
            snprintf(buffer, sizeof buffer, "segment_%d", i);
        } else {
            snprintf(buffer, sizeof buffer, "whole");
        }
        names[i] = strdup(name);
        failed = names[i] == NULL;
    }
    if (failed) {
        for (int i = 0; names && i < count; i++)
            free(names[i]);
        free(names);
        free(labels);
        return od_fail(err, "mesh parts: out of memory for %d part names", count);
    }
    for (int i = 0; i < mesh->part_count; i++)
        free(mesh->part_names[i]);
    free(mesh->part_names);
    mesh->part_names = names;
    mesh->part_count = count;
    memcpy(mesh->face_parts, labels, (size_t)mesh->face_count * sizeof(int32_t));
    free(labels);
    if (method)
        *method = how;
    return count;
}

int od_mesh_prepare(od_mesh *mesh, od_mesh_parts_method *method, od_error *err)
{
    if (od_mesh_normalize(mesh, 1.0f, err) != 0 || od_mesh_weld(mesh, 1e-5f, err) != 0)
        return -1;
    if (mesh->face_count == 0)
        return od_fail(err, "mesh prepare: every face collapsed when welding (expected triangles of some area)");
    if (!mesh->normals && od_mesh_compute_normals(mesh, err) != 0)
        return -1;
    return od_mesh_assign_parts(mesh, method, err);
}
