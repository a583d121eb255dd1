/* Mesh loading and preparation.
 *
 * Without arguments it times od_mesh_load on one sphere written as OBJ,
 * ASCII and binary PLY, ASCII and binary STL and OFF, then
 * od_mesh_prepare, and prints BENCH lines.
 *
 * With arguments it checks real meshes instead:
 *   bench_mesh_load --catalog DIR   every mesh in DIR/catalog.json
 *                                   (written by scripts/gather_meshes.sh)
 *   bench_mesh_load FILE...         the given files
 * Each mesh is loaded and prepared, one line per mesh is printed
 * (MESH, ok or failed, the path, vertices, faces, parts and how they
 * were found, milliseconds, or the error message), then a summary per
 * kind and extension. The exit status is 1 when any mesh failed. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "synth/mesh.h"

static const char *method_names[] = {"groups", "components", "segments", "whole"};

/* ---- writers for the timing run ----------------------------------------------------------- */

static int write_obj(const od_mesh *mesh, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (int64_t v = 0; v < mesh->vertex_count; v++)
        fprintf(f, "v %.6f %.6f %.6f\n", mesh->positions[v * 3], mesh->positions[v * 3 + 1],
                mesh->positions[v * 3 + 2]);
    for (int64_t t = 0; t < mesh->face_count; t++)
        fprintf(f, "f %d %d %d\n", mesh->faces[t * 3] + 1, mesh->faces[t * 3 + 1] + 1, mesh->faces[t * 3 + 2] + 1);
    return fclose(f);
}

static int write_off(const od_mesh *mesh, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "OFF\n%lld %lld 0\n", (long long)mesh->vertex_count, (long long)mesh->face_count);
    for (int64_t v = 0; v < mesh->vertex_count; v++)
        fprintf(f, "%.6f %.6f %.6f\n", mesh->positions[v * 3], mesh->positions[v * 3 + 1], mesh->positions[v * 3 + 2]);
    for (int64_t t = 0; t < mesh->face_count; t++)
        fprintf(f, "3 %d %d %d\n", mesh->faces[t * 3], mesh->faces[t * 3 + 1], mesh->faces[t * 3 + 2]);
    return fclose(f);
}

/* The host is assumed little endian, as PLY binary_little_endian and STL are. */
static int write_ply(const od_mesh *mesh, const char *path, int binary)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fprintf(f,
            "ply\nformat %s 1.0\nelement vertex %lld\nproperty float x\nproperty float y\nproperty float z\n"
            "element face %lld\nproperty list uchar int vertex_indices\nend_header\n",
            binary ? "binary_little_endian" : "ascii", (long long)mesh->vertex_count, (long long)mesh->face_count);
    for (int64_t v = 0; v < mesh->vertex_count; v++) {
        if (binary)
            fwrite(mesh->positions + v * 3, sizeof(float), 3, f);
        else
            fprintf(f, "%.6f %.6f %.6f\n", mesh->positions[v * 3], mesh->positions[v * 3 + 1],
                    mesh->positions[v * 3 + 2]);
    }
    for (int64_t t = 0; t < mesh->face_count; t++) {
        if (binary) {
            unsigned char three = 3;
            fwrite(&three, 1, 1, f);
            fwrite(mesh->faces + t * 3, sizeof(int32_t), 3, f);
        } else {
            fprintf(f, "3 %d %d %d\n", mesh->faces[t * 3], mesh->faces[t * 3 + 1], mesh->faces[t * 3 + 2]);
        }
    }
    return fclose(f);
}

static int write_stl(const od_mesh *mesh, const char *path, int binary)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    if (binary) {
        char header[80] = "binary STL written by bench_mesh_load";
        uint32_t count = (uint32_t)mesh->face_count;
        fwrite(header, 1, 80, f);
        fwrite(&count, 4, 1, f);
    } else {
        fprintf(f, "solid sphere\n");
    }
    for (int64_t t = 0; t < mesh->face_count; t++) {
        if (binary) {
            float record[12] = {0};
            for (int k = 0; k < 3; k++)
                memcpy(record + 3 + k * 3, mesh->positions + (int64_t)mesh->faces[t * 3 + k] * 3, 3 * sizeof(float));
            uint16_t attribute = 0;
            fwrite(record, sizeof(float), 12, f);
            fwrite(&attribute, 2, 1, f);
        } else {
            fprintf(f, "facet normal 0 0 0\nouter loop\n");
            for (int k = 0; k < 3; k++) {
                const float *p = mesh->positions + (int64_t)mesh->faces[t * 3 + k] * 3;
                fprintf(f, "vertex %.6f %.6f %.6f\n", p[0], p[1], p[2]);
            }
            fprintf(f, "endloop\nendfacet\n");
        }
    }
    if (!binary)
        fprintf(f, "endsolid sphere\n");
    return fclose(f);
}

typedef struct load_case {
    const char *path;
    od_mesh mesh;
    int prepare;
} load_case;

static void load_body(void *context)
{
    load_case *c = context;
    od_error err;
    od_mesh_free(&c->mesh);
    if (od_mesh_load(c->path, &c->mesh, &err) != 0) {
        fprintf(stderr, "bench_mesh_load: %s\n", err.message);
        exit(1);
    }
    if (c->prepare && od_mesh_prepare(&c->mesh, NULL, &err) < 0) {
        fprintf(stderr, "bench_mesh_load: %s\n", err.message);
        exit(1);
    }
}

static int timing_run(void)
{
    od_mesh sphere;
    od_error err;
    if (od_mesh_make_sphere(1, 256, 400, &sphere, &err) != 0) {
        fprintf(stderr, "bench_mesh_load: %s\n", err.message);
        return 1;
    }
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    static const char *kinds[] = {"obj", "ply_ascii", "ply_binary", "stl_ascii", "stl_binary", "off"};
    static const char *extensions[] = {"obj", "ply", "ply", "stl", "stl", "off"};
    char paths[6][512];
    int failed = 0;
    for (int k = 0; k < 6; k++) {
        snprintf(paths[k], sizeof paths[k], "%s/bench_mesh_load_%ld_%s.%s", dir, (long)getpid(), kinds[k],
                 extensions[k]);
        int rc = k == 0   ? write_obj(&sphere, paths[k])
                 : k <= 2 ? write_ply(&sphere, paths[k], k == 2)
                 : k <= 4 ? write_stl(&sphere, paths[k], k == 4)
                          : write_off(&sphere, paths[k]);
        if (rc != 0) {
            fprintf(stderr, "bench_mesh_load: failed to write %s (check that TMPDIR is writable)\n", paths[k]);
            failed = 1;
        }
    }
    for (int k = 0; k < 6 && !failed; k++) {
        load_case c = {.path = paths[k]};
        char name[96];
        snprintf(name, sizeof name, "mesh_load_%s_%lldtri", kinds[k], (long long)sphere.face_count);
        double ms = bench_median_ms(load_body, &c, 1, 5);
        printf("BENCH\t%s\t%.3f\t0\n", name, ms);
        c.prepare = 1;
        snprintf(name, sizeof name, "mesh_load_prepare_%s_%lldtri", kinds[k], (long long)sphere.face_count);
        ms = bench_median_ms(load_body, &c, 1, 5);
        printf("BENCH\t%s\t%.3f\t0\n", name, ms);
        od_mesh_free(&c.mesh);
    }
    for (int k = 0; k < 6; k++)
        remove(paths[k]);
    od_mesh_free(&sphere);
    return failed;
}

/* ---- checking real meshes ------------------------------------------------------------------- */

typedef struct tally {
    char key[64];
    int ok, failed;
    int methods[4];
    int64_t faces;
    double ms;
} tally;

static tally tallies[64];
static int tally_count;

static tally *tally_for(const char *key)
{
    for (int i = 0; i < tally_count; i++)
        if (strcmp(tallies[i].key, key) == 0)
            return &tallies[i];
    if (tally_count == 64)
        return &tallies[63];
    tally *t = &tallies[tally_count++];
    snprintf(t->key, sizeof t->key, "%s", key);
    return t;
}

static int check_mesh(const char *path, const char *kind)
{
    const char *dot = strrchr(path, '.');
    char key[64];
    snprintf(key, sizeof key, "%s %s", kind, dot ? dot + 1 : "?");
    tally *t = tally_for(key);
    od_mesh mesh;
    od_error err;
    double start = bench_now_ms();
    od_mesh_parts_method method;
    int parts = -1;
    int64_t vertices = 0, faces = 0;
    int rc = od_mesh_load(path, &mesh, &err);
    if (rc == 0) {
        vertices = mesh.vertex_count;
        faces = mesh.face_count;
        parts = od_mesh_prepare(&mesh, &method, &err);
    }
    double ms = bench_now_ms() - start;
    if (rc != 0 || parts < 0) {
        printf("MESH\tfailed\t%s\t%s\n", path, err.message);
        t->failed++;
        if (rc == 0)
            od_mesh_free(&mesh);
        return -1;
    }
    printf("MESH\tok\t%s\t%lld\t%lld\t%d\t%s\t%.1f\n", path, (long long)vertices, (long long)faces, parts,
           method_names[method], ms);
    t->ok++;
    t->methods[method]++;
    t->faces += faces;
    t->ms += ms;
    od_mesh_free(&mesh);
    return 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (text) {
        size_t got = fread(text, 1, (size_t)size, f);
        text[got] = 0;
    }
    fclose(f);
    return text;
}

static int check_catalog(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/catalog.json", dir);
    char *text = read_all(path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *meshes = root ? cJSON_GetObjectItemCaseSensitive(root, "meshes") : NULL;
    if (!cJSON_IsArray(meshes)) {
        fprintf(stderr, "bench_mesh_load: %s: missing or invalid (expected a JSON object with a meshes array)\n",
                path);
        cJSON_Delete(root);
        return 2;
    }
    int failed = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, meshes)
    {
        const cJSON *relative = cJSON_GetObjectItemCaseSensitive(entry, "path");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(entry, "kind");
        if (!cJSON_IsString(relative))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, relative->valuestring);
        failed |= check_mesh(path, cJSON_IsString(kind) ? kind->valuestring : "mesh") != 0;
    }
    cJSON_Delete(root);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return timing_run();
    int failed = 0;
    if (strcmp(argv[1], "--catalog") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: bench_mesh_load [--catalog DIR | FILE...]\n");
            return 2;
        }
        failed = check_catalog(argv[2]);
        if (failed == 2)
            return 2;
    } else {
        for (int i = 1; i < argc; i++)
            failed |= check_mesh(argv[i], "mesh") != 0;
    }
    printf("SUMMARY\tkind ext\tok\tfailed\tgroups\tcomponents\tsegments\twhole\tmean_faces\tmean_ms\n");
    for (int i = 0; i < tally_count; i++) {
        const tally *t = &tallies[i];
        printf("SUMMARY\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.1f\n", t->key, t->ok, t->failed, t->methods[0],
               t->methods[1], t->methods[2], t->methods[3], t->ok ? (double)t->faces / t->ok : 0,
               t->ok ? t->ms / t->ok : 0);
    }
    return failed ? 1 : 0;
}
