/* Tests of synth/anomaly: each geometric anomaly keeps its invariant on
 * procedural meshes (sphere, torus, box, a box made of parts) and gives
 * the same mesh for the same seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/anomaly.h"
#include "synth/generate.h"
#include "testlib.h"

typedef int (*anomaly_fn)(const od_mesh *, od_rng *, od_mesh *, od_synth_anomaly_info *, od_error *);

static int meshes_identical(const od_mesh *a, const od_mesh *b)
{
    return a->vertex_count == b->vertex_count && a->face_count == b->face_count &&
           memcmp(a->positions, b->positions, (size_t)a->vertex_count * 3 * sizeof(float)) == 0 &&
           memcmp(a->faces, b->faces, (size_t)a->face_count * 3 * sizeof(int32_t)) == 0;
}

/* Runs `fn` twice from the same seed and checks the results match; returns the first in *out. */
static int run_twice(anomaly_fn fn, const od_mesh *mesh, uint64_t seed, od_mesh *out, od_synth_anomaly_info *info)
{
    od_error err = {{0}};
    od_rng rng;
    od_rng_seed(&rng, seed);
    if (fn(mesh, &rng, out, info, &err) != 0) {
        printf("  %s\n", err.message);
        return -1;
    }
    od_mesh again = {0};
    od_rng_seed(&rng, seed);
    int rc = fn(mesh, &rng, &again, NULL, &err);
    OD_CHECK(rc == 0);
    OD_CHECK(rc == 0 && meshes_identical(out, &again));
    od_mesh_free(&again);
    return 0;
}

static float extent(const od_mesh *mesh)
{
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    return fmaxf(max[0] - min[0], fmaxf(max[1] - min[1], max[2] - min[2]));
}

static int components(const od_mesh *mesh)
{
    od_error err = {{0}};
    int32_t *labels = malloc((size_t)mesh->face_count * sizeof(int32_t) + 1);
    int count = od_mesh_components(mesh, 1e-5f * extent(mesh), labels, &err);
    free(labels);
    return count;
}

static double surface_area(const od_mesh *mesh)
{
    double total = 0;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        const float *a = mesh->positions + mesh->faces[f * 3] * 3, *b = mesh->positions + mesh->faces[f * 3 + 1] * 3,
                    *c = mesh->positions + mesh->faces[f * 3 + 2] * 3;
        double e1[3], e2[3];
        for (int k = 0; k < 3; k++) {
            e1[k] = (double)b[k] - a[k];
            e2[k] = (double)c[k] - a[k];
        }
        double n[3] = {e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]};
        total += 0.5 * sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
    }
    return total;
}

/* A bar (long in x) so that bending and twisting show. */
static void make_bar(od_mesh *bar)
{
    od_error err = {{0}};
    const float size[3] = {1.0f, 0.3f, 0.2f};
    OD_CHECK(od_mesh_make_box(size, bar, &err) == 0);
}

static void check_deform(anomaly_fn fn, const od_mesh *mesh, float low_degrees, float high_degrees, const char *what)
{
    for (uint64_t seed = 1; seed <= 5; seed++) {
        od_mesh out = {0};
        od_synth_anomaly_info info = {0};
        if (run_twice(fn, mesh, seed, &out, &info) != 0) {
            OD_CHECK(!"anomaly failed");
            continue;
        }
        /* Same topology: vertex count and faces unchanged. */
        OD_CHECK(out.vertex_count == mesh->vertex_count);
        OD_CHECK(out.face_count == mesh->face_count &&
                 memcmp(out.faces, mesh->faces, (size_t)mesh->face_count * 3 * sizeof(int32_t)) == 0);
        OD_CHECK(info.parameter >= low_degrees && info.parameter <= high_degrees);
        OD_CHECK(info.measure >= 0.02f);
        if (seed == 1)
            printf("  %s: %.1f degrees, off the surface by %.3f of the size\n", what, (double)info.parameter,
                   (double)info.measure);
        od_mesh_free(&out);
    }
}

static void test_bend(void)
{
    od_mesh bar = {0}, torus = {0};
    od_error err = {{0}};
    make_bar(&bar);
    OD_CHECK(od_mesh_make_torus(0.3f, 0.1f, 32, 16, &torus, &err) == 0);
    check_deform(od_synth_bend, &bar, 15, 45, "bend bar");
    check_deform(od_synth_bend, &torus, 15, 45, "bend torus");
    /* A bar's middle cross-section stays; its ends move. */
    od_mesh out = {0};
    od_rng rng;
    od_rng_seed(&rng, 3);
    OD_CHECK(od_synth_bend(&bar, &rng, &out, NULL, &err) == 0);
    for (int64_t v = 0; v < bar.vertex_count && out.positions; v++)
        OD_CHECK(fabsf(out.positions[v * 3] - bar.positions[v * 3]) < 0.1f);
    od_mesh_free(&out);
    od_mesh_free(&bar);
    od_mesh_free(&torus);
}

static void test_twist(void)
{
    od_mesh bar = {0};
    make_bar(&bar);
    check_deform(od_synth_twist, &bar, 20, 90, "twist bar");
    /* The ends turn in opposite directions and the length along the axis is kept. */
    od_mesh out = {0};
    od_rng rng;
    od_error err = {{0}};
    od_rng_seed(&rng, 4);
    OD_CHECK(od_synth_twist(&bar, &rng, &out, NULL, &err) == 0);
    for (int64_t v = 0; v < bar.vertex_count && out.positions; v++) {
        OD_CHECK(out.positions[v * 3] == bar.positions[v * 3]);
        float r0 = hypotf(bar.positions[v * 3 + 1], bar.positions[v * 3 + 2]);
        float r1 = hypotf(out.positions[v * 3 + 1], out.positions[v * 3 + 2]);
        OD_CHECK(fabsf(r0 - r1) < 1e-5f);
    }
    od_mesh_free(&out);
    /* A sphere is round about every axis: no twist moves it, so the check must reject it. */
    od_mesh sphere = {0};
    OD_CHECK(od_mesh_make_sphere(0.5f, 16, 32, &sphere, &err) == 0);
    od_rng_seed(&rng, 1);
    OD_CHECK(od_synth_twist(&sphere, &rng, &out, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "twist") != NULL);
    od_mesh_free(&sphere);
    od_mesh_free(&bar);
}

typedef struct edge_key {
    long long a[3], b[3];
} edge_key;

static int compare_edge_keys(const void *x, const void *y)
{
    return memcmp(x, y, sizeof(edge_key));
}

/* Returns 1 when every directed edge (by positions rounded to 1e-6) has its reverse: a closed surface. */
static int closed_surface(const od_mesh *mesh)
{
    int64_t count = mesh->face_count * 3;
    edge_key *keys = malloc((size_t)count * sizeof(edge_key));
    for (int64_t f = 0; f < mesh->face_count; f++)
        for (int k = 0; k < 3; k++) {
            const float *p = mesh->positions + mesh->faces[f * 3 + k] * 3;
            const float *q = mesh->positions + mesh->faces[f * 3 + (k + 1) % 3] * 3;
            edge_key *e = &keys[f * 3 + k];
            memset(e, 0, sizeof *e);
            for (int d = 0; d < 3; d++) {
                e->a[d] = llround(p[d] * 1e6);
                e->b[d] = llround(q[d] * 1e6);
            }
        }
    qsort(keys, (size_t)count, sizeof *keys, compare_edge_keys);
    int closed = 1;
    for (int64_t i = 0; i < count && closed; i++) {
        edge_key reverse;
        memcpy(reverse.a, keys[i].b, sizeof reverse.a);
        memcpy(reverse.b, keys[i].a, sizeof reverse.b);
        closed = bsearch(&reverse, keys, (size_t)count, sizeof *keys, compare_edge_keys) != NULL;
    }
    free(keys);
    return closed;
}

static void test_fracture(void)
{
    od_error err = {{0}};
    od_mesh meshes[2] = {{0}};
    OD_CHECK(od_mesh_make_sphere(0.5f, 24, 48, &meshes[0], &err) == 0);
    OD_CHECK(od_mesh_make_torus(0.3f, 0.1f, 48, 24, &meshes[1], &err) == 0);
    const char *names[2] = {"sphere", "torus"};
    int rejected = 0, runs = 0;
    for (int m = 0; m < 2; m++) {
        for (uint64_t seed = 1; seed <= 8; seed++) {
            od_mesh out = {0};
            od_synth_anomaly_info info = {0};
            if (run_twice(od_synth_fracture, &meshes[m], seed, &out, &info) != 0) {
                OD_CHECK(!"fracture failed");
                continue;
            }
            /* The caps close the cut. Over a jagged cut they may cover about as much as the surface that went. */
            OD_CHECK(info.measure >= 0.1f && info.measure <= 0.9f);
            OD_CHECK(closed_surface(&out));
            double fraction = 1 - surface_area(&out) / surface_area(&meshes[m]);
            OD_CHECK(fraction > -0.05 && fraction < info.measure);
            OD_CHECK(components(&out) == 1);
            /* Every vertex is used by a face. */
            char *used = calloc((size_t)out.vertex_count, 1);
            for (int64_t i = 0; i < out.face_count * 3; i++)
                used[out.faces[i]] = 1;
            int64_t unused = 0;
            for (int64_t v = 0; v < out.vertex_count; v++)
                unused += !used[v];
            free(used);
            OD_CHECK(unused == 0);
            if (seed == 1)
                printf("  fracture %s: target %.2f, removed %.3f of the area, %.3f less area with the caps\n",
                       names[m], (double)info.parameter, (double)info.measure, fraction);
            rejected += info.rejected;
            runs++;
            od_mesh_free(&out);
        }
    }
    printf("  fracture: %d candidate planes rejected over %d runs\n", rejected, runs);
    od_mesh_free(&meshes[0]);
    od_mesh_free(&meshes[1]);
}

static void test_crack(void)
{
    od_error err = {{0}};
    od_mesh meshes[3] = {{0}};
    OD_CHECK(od_mesh_make_sphere(0.5f, 24, 48, &meshes[0], &err) == 0);
    OD_CHECK(od_mesh_make_torus(0.3f, 0.1f, 48, 24, &meshes[1], &err) == 0);
    const float size[3] = {1, 0.6f, 0.4f};
    OD_CHECK(od_mesh_make_box(size, &meshes[2], &err) == 0);
    const char *names[3] = {"sphere", "torus", "box"};
    for (int m = 0; m < 3; m++) {
        for (uint64_t seed = 1; seed <= 3; seed++) {
            od_mesh out = {0};
            od_synth_anomaly_info info = {0};
            if (run_twice(od_synth_crack, &meshes[m], seed, &out, &info) != 0) {
                OD_CHECK(!"crack failed");
                continue;
            }
            float s = extent(&meshes[m]);
            OD_CHECK(info.measure >= 0.03f);
            OD_CHECK(info.parameter >= 0.06f && info.parameter <= 0.10f);
            /* Nothing moves outward past the original bounds, and the groove is inside them. */
            float min0[3], max0[3], min1[3], max1[3];
            od_mesh_bounds(&meshes[m], min0, max0);
            od_mesh_bounds(&out, min1, max1);
            for (int k = 0; k < 3; k++)
                OD_CHECK(min1[k] >= min0[k] - 1e-5f * s && max1[k] <= max0[k] + 1e-5f * s);
            /* The subdivided box stays closed: one component, as before. */
            OD_CHECK(components(&out) == components(&meshes[m]));
            OD_CHECK(out.face_count <= 400000);
            if (seed == 1)
                printf("  crack %s: depth %.3f of the size, deepest %.3f, %lld -> %lld faces\n", names[m],
                       (double)info.parameter, (double)info.measure, (long long)meshes[m].face_count,
                       (long long)out.face_count);
            od_mesh_free(&out);
        }
        od_mesh_free(&meshes[m]);
    }
}

/* A crack never comes out on the far side of a plate 10 % or 2 % of its size thick: the result stays
 * within the plate's bounds. On the thin plate only a start on the rim can go deep enough. */
static void test_crack_thin(void)
{
    od_error err = {{0}};
    const float sizes[2][3] = {{1.0f, 1.0f, 0.1f}, {1.0f, 1.0f, 0.02f}};
    for (int p = 0; p < 2; p++) {
        od_mesh plate = {0};
        OD_CHECK(od_mesh_make_box(sizes[p], &plate, &err) == 0);
        int made = 0;
        for (uint64_t seed = 1; seed <= 4; seed++) {
            od_mesh out = {0};
            od_synth_anomaly_info info = {0};
            if (run_twice(od_synth_crack, &plate, seed, &out, &info) != 0)
                continue;
            made++;
            float min[3], max[3];
            od_mesh_bounds(&out, min, max);
            for (int k = 0; k < 3; k++) {
                OD_CHECK(min[k] >= -sizes[p][k] / 2 - 1e-6f);
                OD_CHECK(max[k] <= sizes[p][k] / 2 + 1e-6f);
            }
            od_mesh_free(&out);
        }
        printf("  crack of a plate %.2f thick: %d of 4 seeds\n", (double)sizes[p][2], made);
        if (p == 0)
            OD_CHECK(made == 4);
        od_mesh_free(&plate);
    }
}

/* Three boxes in a row along x, touching: groups "left", "middle", "right" as parts. */
static void make_chain(od_mesh *chain, float spacing)
{
    od_error err = {{0}};
    od_mesh box = {0};
    const float size[3] = {0.3f, 0.3f, 0.3f};
    OD_CHECK(od_mesh_make_box(size, &box, &err) == 0);
    OD_CHECK(od_mesh_new(box.vertex_count * 3, box.face_count * 3, 0, 0, 0, chain, &err) == 0);
    for (int i = 0; i < 3; i++) {
        for (int64_t v = 0; v < box.vertex_count; v++) {
            for (int k = 0; k < 3; k++)
                chain->positions[(i * box.vertex_count + v) * 3 + k] = box.positions[v * 3 + k];
            chain->positions[(i * box.vertex_count + v) * 3] += (float)(i - 1) * spacing;
        }
        for (int64_t f = 0; f < box.face_count; f++) {
            for (int k = 0; k < 3; k++)
                chain->faces[(i * box.face_count + f) * 3 + k] = box.faces[f * 3 + k] + (int32_t)(i * box.vertex_count);
            chain->face_parts[i * box.face_count + f] = i;
        }
    }
    free(chain->part_names[0]);
    free(chain->part_names);
    chain->part_names = calloc(3, sizeof(char *));
    chain->part_names[0] = strdup("left");
    chain->part_names[1] = strdup("middle");
    chain->part_names[2] = strdup("right");
    chain->part_count = 3;
    od_mesh_free(&box);
}

static void make_capped_sphere(od_mesh *sphere);

static void test_part_missing(void)
{
    od_error err = {{0}};
    od_mesh chain = {0};
    /* 0.3 m boxes 0.305 m apart: 5 mm gaps, under 2 % of the 0.905 m size, so the parts hold together. */
    make_chain(&chain, 0.305f);
    OD_CHECK(od_synth_part_count(&chain, &err) == 3);
    int removed[3] = {0};
    for (uint64_t seed = 1; seed <= 20; seed++) {
        od_mesh out = {0};
        od_synth_anomaly_info info = {0};
        if (run_twice(od_synth_remove_part, &chain, seed, &out, &info) != 0) {
            OD_CHECK(!"part missing failed");
            continue;
        }
        int part = (int)info.parameter;
        OD_CHECK(part == 0 || part == 2); /* removing the middle box would split the chain */
        removed[part]++;
        OD_CHECK(out.face_count == chain.face_count * 2 / 3);
        OD_CHECK(out.vertex_count == chain.vertex_count * 2 / 3);
        for (int64_t f = 0; f < out.face_count; f++)
            OD_CHECK(out.face_parts[f] != part);
        od_mesh_free(&out);
    }
    printf("  part missing: left removed %d times, middle %d, right %d\n", removed[0], removed[1], removed[2]);
    OD_CHECK(removed[0] > 0 && removed[2] > 0);
    od_mesh_free(&chain);

    /* Far apart, no part can go without leaving two pieces. */
    make_chain(&chain, 0.6f);
    od_mesh out = {0};
    od_rng rng;
    od_rng_seed(&rng, 1);
    OD_CHECK(od_synth_remove_part(&chain, &rng, &out, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "pieces") != NULL);
    od_mesh_free(&chain);

    /* A single-part mesh has nothing to remove. */
    od_mesh sphere = {0};
    OD_CHECK(od_mesh_make_sphere(0.5f, 8, 16, &sphere, &err) == 0);
    OD_CHECK(od_synth_part_count(&sphere, &err) == 1);
    OD_CHECK(od_synth_remove_part(&sphere, &rng, &out, NULL, &err) != 0);
    od_mesh_free(&sphere);

    /* The cap goes, never the body, although the cap alone would be one piece too. */
    od_mesh capped = {0};
    make_capped_sphere(&capped);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        od_synth_anomaly_info info = {0};
        if (run_twice(od_synth_remove_part, &capped, seed, &out, &info) != 0) {
            OD_CHECK(!"part missing of the capped sphere failed");
            continue;
        }
        int64_t cap_faces = 0;
        for (int64_t f = 0; f < out.face_count; f++)
            cap_faces += out.face_parts[f] == 1;
        OD_CHECK(cap_faces == 0);
        OD_CHECK(out.face_count > 0);
        od_mesh_free(&out);
    }
    od_mesh_free(&capped);

    /* A torus is one connected component. */
    od_mesh torus = {0};
    OD_CHECK(od_mesh_make_torus(0.3f, 0.1f, 16, 8, &torus, &err) == 0);
    OD_CHECK(od_synth_part_count(&torus, &err) == 1);
    od_mesh_free(&torus);
}

/* A sphere whose faces above z = 0.25 form a second group, "cap", sharing the ring of vertices at its
 * edge with the body. */
static void make_capped_sphere(od_mesh *sphere)
{
    od_error err = {{0}};
    OD_CHECK(od_mesh_make_sphere(0.5f, 12, 24, sphere, &err) == 0);
    for (int64_t f = 0; f < sphere->face_count; f++) {
        float z = 0;
        for (int k = 0; k < 3; k++)
            z += sphere->positions[sphere->faces[f * 3 + k] * 3 + 2] / 3;
        sphere->face_parts[f] = z > 0.25f;
    }
    char **names = realloc(sphere->part_names, 2 * sizeof(char *));
    OD_CHECK(names != NULL);
    sphere->part_names = names;
    sphere->part_names[1] = strdup("cap");
    sphere->part_count = 2;
}

/* Checks that out moved only the faces of one part rigidly: every other face keeps its corners, and the
 * moved faces' corners keep their pairwise distances. Returns the moved part. */
static int check_rigid_part(const od_mesh *mesh, const od_mesh *out)
{
    OD_CHECK(out->face_count == mesh->face_count);
    int moved_part = -1;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        int same = 1;
        for (int k = 0; k < 3; k++)
            for (int d = 0; d < 3; d++)
                same &= mesh->positions[mesh->faces[f * 3 + k] * 3 + d] == out->positions[out->faces[f * 3 + k] * 3 + d];
        if (!same) {
            OD_CHECK(moved_part < 0 || moved_part == mesh->face_parts[f]);
            moved_part = mesh->face_parts[f];
        }
        const float *a = mesh->positions + mesh->faces[f * 3] * 3, *b = mesh->positions + mesh->faces[f * 3 + 1] * 3;
        const float *p = out->positions + out->faces[f * 3] * 3, *q = out->positions + out->faces[f * 3 + 1] * 3;
        float before = sqrtf((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
        float after = sqrtf((p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) + (p[2] - q[2]) * (p[2] - q[2]));
        OD_CHECK(fabsf(before - after) < 1e-4f);
    }
    OD_CHECK(moved_part >= 0);
    return moved_part;
}

/* The smallest distance between a vertex of part `part` and a vertex of another part. */
static float part_distance(const od_mesh *mesh, int part)
{
    float best = INFINITY;
    for (int64_t f = 0; f < mesh->face_count; f++) {
        if (mesh->face_parts[f] != part)
            continue;
        for (int64_t g = 0; g < mesh->face_count; g++) {
            if (mesh->face_parts[g] == part)
                continue;
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 3; k++) {
                    const float *p = mesh->positions + mesh->faces[f * 3 + j] * 3;
                    const float *q = mesh->positions + mesh->faces[g * 3 + k] * 3;
                    float d = sqrtf((p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) +
                                    (p[2] - q[2]) * (p[2] - q[2]));
                    best = fminf(best, d);
                }
        }
    }
    return best;
}

static void test_part_moved(void)
{
    od_error err = {{0}};
    od_mesh chain = {0}, cap = {0};
    make_chain(&chain, 0.3f); /* touching boxes: the left one (first of equal areas) is the body */
    make_capped_sphere(&cap);
    const od_mesh *meshes[2] = {&chain, &cap};
    anomaly_fn fns[2] = {od_synth_translate_part, od_synth_rotate_part};
    for (int m = 0; m < 2; m++)
        for (int which = 0; which < 2; which++) {
            int successes = 0;
            for (uint64_t seed = 1; seed <= 8; seed++) {
                od_mesh out = {0};
                od_synth_anomaly_info info = {0};
                if (run_twice(fns[which], meshes[m], seed, &out, &info) != 0)
                    continue;
                successes++;
                int part = check_rigid_part(meshes[m], &out);
                OD_CHECK(part != 0); /* the body stays */
                float size = extent(meshes[m]);
                OD_CHECK(info.measure >= 0.03f);
                if (which == 0)
                    OD_CHECK(info.parameter >= 0.05f && info.parameter <= 0.15f);
                else
                    OD_CHECK(fabsf(info.parameter) >= 15 && fabsf(info.parameter) <= 60);
                if (m == 0) {
                    /* Box corners are 0.3 apart, so an attached box keeps a corner within a side of the rest. */
                    OD_CHECK(part_distance(&out, part) <= 0.3f + 0.02f * size);
                } else {
                    /* The cap's edge ring is split from the body: 24 more vertices. */
                    OD_CHECK(out.vertex_count == cap.vertex_count + 24);
                }
                if (seed == 1)
                    printf("  mesh %d, %s: part %d, parameter %.3f, measure %.3f, %d rejected\n", m,
                           which ? "rotated" : "translated", part, (double)info.parameter, (double)info.measure,
                           info.rejected);
                od_mesh_free(&out);
            }
            OD_CHECK(successes >= 6);
        }
    od_mesh_free(&chain);
    od_mesh_free(&cap);

    /* Boxes 0.3 m apart never touch, so nothing moves and stays attached. */
    make_chain(&chain, 0.6f);
    od_mesh out = {0};
    od_rng rng;
    od_rng_seed(&rng, 1);
    OD_CHECK(od_synth_translate_part(&chain, &rng, &out, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "detached") != NULL);
    OD_CHECK(od_synth_rotate_part(&chain, &rng, &out, NULL, &err) != 0);
    od_mesh_free(&chain);
    od_mesh sphere = {0};
    OD_CHECK(od_mesh_make_sphere(0.5f, 8, 16, &sphere, &err) == 0);
    OD_CHECK(od_synth_translate_part(&sphere, &rng, &out, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "1 part") != NULL);
    od_mesh_free(&sphere);
}

/* Among a copy, a slightly flatter box, a sphere, a torus and a bar, the close shape of a cube is the
 * flatter box; a tight threshold leaves none. */
static void test_close_shape(void)
{
    od_error err = {{0}};
    od_mesh cube = {0}, copy = {0}, flat = {0}, sphere = {0}, torus = {0}, bar = {0};
    const float cube_size[3] = {1, 1, 1}, flat_size[3] = {1, 1, 0.8f}, bar_size[3] = {1, 0.3f, 0.2f};
    OD_CHECK(od_mesh_make_box(cube_size, &cube, &err) == 0);
    OD_CHECK(od_mesh_make_box(cube_size, &copy, &err) == 0);
    OD_CHECK(od_mesh_make_box(flat_size, &flat, &err) == 0);
    OD_CHECK(od_mesh_make_sphere(0.5f, 16, 32, &sphere, &err) == 0);
    OD_CHECK(od_mesh_make_torus(0.35f, 0.15f, 32, 16, &torus, &err) == 0);
    OD_CHECK(od_mesh_make_box(bar_size, &bar, &err) == 0);
    const od_mesh *candidates[5] = {&copy, &sphere, &torus, &flat, &bar};
    int chosen = -1;
    float distance = 0;
    OD_CHECK(od_synth_close_shape(&cube, candidates, 5, 0.1f, &chosen, &distance, &err) == 0);
    printf("  close shape of a cube: candidate %d at a Chamfer distance of %.4f\n", chosen, (double)distance);
    OD_CHECK(chosen == 3);
    OD_CHECK(distance >= 0.01f && distance <= 0.1f);
    OD_CHECK(od_synth_close_shape(&cube, candidates, 5, 0.005f, &chosen, &distance, &err) != 0);
    OD_CHECK(strstr(err.message, "Chamfer") != NULL);
    OD_CHECK(od_synth_close_shape(&cube, candidates, 0, 0.1f, &chosen, &distance, &err) != 0);
    od_mesh_free(&cube);
    od_mesh_free(&copy);
    od_mesh_free(&flat);
    od_mesh_free(&sphere);
    od_mesh_free(&torus);
    od_mesh_free(&bar);
}

static void test_errors(void)
{
    od_error err = {{0}};
    od_mesh empty = {0}, out = {0};
    od_rng rng;
    od_rng_seed(&rng, 1);
    anomaly_fn fns[7] = {od_synth_bend,        od_synth_twist,          od_synth_fracture,    od_synth_crack,
                         od_synth_remove_part, od_synth_translate_part, od_synth_rotate_part};
    for (int i = 0; i < 7; i++) {
        err.message[0] = 0;
        OD_CHECK(fns[i](&empty, &rng, &out, NULL, &err) != 0);
        OD_CHECK(strstr(err.message, "no faces") != NULL);
    }
}

int main(void)
{
    OD_RUN(test_bend);
    OD_RUN(test_twist);
    OD_RUN(test_fracture);
    OD_RUN(test_crack);
    OD_RUN(test_crack_thin);
    OD_RUN(test_part_missing);
    OD_RUN(test_part_moved);
    OD_RUN(test_close_shape);
    OD_RUN(test_errors);
    return od_test_finish();
}
