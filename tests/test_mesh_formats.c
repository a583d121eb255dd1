/* Tests of the PLY, STL and OFF readers and od_mesh_load. Each test writes
 * its own small files: ASCII and binary forms, a quad face, colours and
 * normals. Also checked: one cube read from all four formats, the error
 * cases, welding and parts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/mesh.h"
#include "testlib.h"

static const char *temp_path(const char *name)
{
    static char path[8][1024];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", od_test_temp_dir(), name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *file = fopen(path, "wb");
    OD_CHECK(file != NULL);
    if (!file)
        return;
    fwrite(data, 1, size, file);
    fclose(file);
}

/* ---- a byte buffer for binary files ---------------------------------------------------- */

typedef struct bytes {
    unsigned char data[4096];
    size_t size;
} bytes;

static void put(bytes *b, const void *data, size_t n)
{
    if (b->size + n <= sizeof b->data) {
        memcpy(b->data + b->size, data, n);
        b->size += n;
    }
}

static void put_text(bytes *b, const char *text)
{
    put(b, text, strlen(text));
}

/* Appends a value of n bytes in little (big = 0) or big endian order. */
static void put_le_or_be(bytes *b, const void *value, int n, int big)
{
    unsigned char tmp[8];
    memcpy(tmp, value, (size_t)n);
    /* The tests run on little endian hosts (x86-64, arm64). */
    if (big)
        for (int i = 0; i < n / 2; i++) {
            unsigned char t = tmp[i];
            tmp[i] = tmp[n - 1 - i];
            tmp[n - 1 - i] = t;
        }
    put(b, tmp, (size_t)n);
}

static void put_float(bytes *b, float v, int big)
{
    put_le_or_be(b, &v, 4, big);
}

static void put_int(bytes *b, int32_t v, int big)
{
    put_le_or_be(b, &v, 4, big);
}

static void put_u8(bytes *b, uint8_t v)
{
    put(b, &v, 1);
}

/* ---- PLY ----------------------------------------------------------------------------- */

/* A unit square as one quad plus a triangle, with normals, uchar colours and uvs. */
static const float square_positions[5][3] = {{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0}, {0.5f, 0.5f, 1}};
static const uint8_t square_colors[5][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {51, 102, 153}};

static const char *ply_header(const char *format)
{
    static char header[1024];
    snprintf(header, sizeof header,
             "ply\nformat %s 1.0\ncomment made by a test\nelement vertex 5\n"
             "property float x\nproperty float y\nproperty float z\n"
             "property float nx\nproperty float ny\nproperty float nz\n"
             "property uchar red\nproperty uchar green\nproperty uchar blue\n"
             "property float s\nproperty float t\n"
             "element face 2\nproperty list uchar int vertex_indices\n"
             "element edge 1\nproperty int vertex1\nproperty list uchar int others\nend_header\n",
             format);
    return header;
}

static void binary_square_ply(bytes *b, int big)
{
    memset(b, 0, sizeof *b);
    put_text(b, ply_header(big ? "binary_big_endian" : "binary_little_endian"));
    for (int v = 0; v < 5; v++) {
        for (int c = 0; c < 3; c++)
            put_float(b, square_positions[v][c], big);
        put_float(b, 0, big);
        put_float(b, 0, big);
        put_float(b, 2, big); /* normals come back unit length */
        for (int c = 0; c < 3; c++)
            put_u8(b, square_colors[v][c]);
        put_float(b, square_positions[v][0], big);
        put_float(b, square_positions[v][1], big);
    }
    put_u8(b, 4);
    for (int k = 0; k < 4; k++)
        put_int(b, k, big);
    put_u8(b, 3);
    put_int(b, 0, big);
    put_int(b, 1, big);
    put_int(b, 4, big);
    put_int(b, 0, big); /* the edge element, skipped */
    put_u8(b, 2);
    put_int(b, 1, big);
    put_int(b, 4, big);
}

static void check_square(const od_mesh *mesh)
{
    OD_CHECK(mesh->vertex_count == 5);
    OD_CHECK(mesh->face_count == 3);
    OD_CHECK(mesh->normals != NULL && mesh->colors != NULL && mesh->uvs != NULL);
    if (mesh->vertex_count != 5 || mesh->face_count != 3 || !mesh->normals || !mesh->colors || !mesh->uvs)
        return;
    int32_t want[9] = {0, 1, 2, 0, 2, 3, 0, 1, 4};
    OD_CHECK(memcmp(mesh->faces, want, sizeof want) == 0);
    for (int v = 0; v < 5; v++)
        for (int c = 0; c < 3; c++) {
            OD_CHECK(mesh->positions[v * 3 + c] == square_positions[v][c]);
            OD_CHECK(fabsf(mesh->colors[v * 3 + c] - square_colors[v][c] / 255.0f) < 1e-6f);
        }
    OD_CHECK(mesh->normals[4 * 3 + 2] == 1);
    OD_CHECK(mesh->uvs[2 * 2 + 0] == 1 && mesh->uvs[2 * 2 + 1] == 1);
    OD_CHECK(mesh->uvs[4 * 2 + 0] == 0.5f);
}

static void test_ply_ascii_and_binary(void)
{
    char text[4096];
    int n = snprintf(text, sizeof text, "%s", ply_header("ascii"));
    for (int v = 0; v < 5; v++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%g %g %g 0 0 2 %d %d %d %g %g\r\n",
                      (double)square_positions[v][0], (double)square_positions[v][1], (double)square_positions[v][2],
                      square_colors[v][0], square_colors[v][1], square_colors[v][2], (double)square_positions[v][0],
                      (double)square_positions[v][1]);
    snprintf(text + n, sizeof text - (size_t)n, "4 0 1 2 3\n3 0 1 4\n0 2 1 4\n");
    od_mesh mesh;
    od_error err = {{0}};
    int rc = od_mesh_parse_ply(text, strlen(text), "square.ply", &mesh, &err);
    OD_CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.message);
    else
        check_square(&mesh);
    od_mesh_free(&mesh);

    for (int big = 0; big < 2; big++) {
        bytes b;
        binary_square_ply(&b, big);
        const char *path = temp_path(big ? "square_be.PLY" : "square_le.ply");
        write_bytes(path, b.data, b.size);
        rc = od_mesh_load(path, &mesh, &err);
        OD_CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "  %s\n", err.message);
        else
            check_square(&mesh);
        od_mesh_free(&mesh);
    }
}

static void test_ply_float_colors_and_face_colors(void)
{
    /* Float vertex colours are kept as they are; u v name the texture
     * coordinates; a face colour gives its triangles vertices of their own. */
    const char *text = "ply\nformat ascii 1.0\nelement vertex 4\n"
                       "property double x\nproperty double y\nproperty double z\n"
                       "property float red\nproperty float green\nproperty float blue\n"
                       "property float u\nproperty float v\n"
                       "element face 2\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
                       "property list uint8 uint32 vertex_index\nend_header\n"
                       "0 0 0 0.25 0.5 0.75 0 0\n1 0 0 1 1 1 1 0\n1 1 0 1 1 1 1 1\n0 1 0 1 1 1 0 1\n"
                       "255 0 0 3 0 1 2\n0 0 0 3 0 2 3\n";
    od_mesh mesh;
    od_error err = {{0}};
    int rc = od_mesh_parse_ply(text, strlen(text), "colors.ply", &mesh, &err);
    OD_CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "  %s\n", err.message);
        return;
    }
    OD_CHECK(mesh.face_count == 2 && mesh.vertex_count == 6);
    OD_CHECK(mesh.colors != NULL && mesh.uvs != NULL);
    if (mesh.colors && mesh.vertex_count == 6) {
        OD_CHECK(mesh.colors[0] == 1 && mesh.colors[1] == 0 && mesh.colors[2] == 0);
        OD_CHECK(mesh.colors[3 * 3 + 0] == 0 && mesh.colors[5 * 3 + 2] == 0);
        OD_CHECK(mesh.uvs[2 * 2 + 0] == 1 && mesh.uvs[2 * 2 + 1] == 1);
    }
    od_mesh_free(&mesh);

    /* Without face colours, float vertex colours pass through. */
    const char *plain = "ply\nformat ascii 1.0\nelement vertex 3\n"
                        "property float x\nproperty float y\nproperty float z\n"
                        "property float red\nproperty float green\nproperty float blue\n"
                        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
                        "0 0 0 0.25 0.5 0.75\n1 0 0 1 1 1\n0 1 0 1 1 1\n3 0 1 2\n";
    rc = od_mesh_parse_ply(plain, strlen(plain), "plain.ply", &mesh, &err);
    OD_CHECK(rc == 0);
    if (rc == 0)
        OD_CHECK(mesh.colors[0] == 0.25f && mesh.colors[1] == 0.5f && mesh.colors[2] == 0.75f);
    od_mesh_free(&mesh);
}

/* ---- STL ----------------------------------------------------------------------------- */

static const char *ascii_two_solids = "solid first\n"
                                      "  facet normal 0 0 1\n    outer loop\n"
                                      "      vertex 0 0 0\n      vertex 1 0 0\n      vertex 1 1 0\n"
                                      "    endloop\n  endfacet\n"
                                      "endsolid first\n"
                                      "solid second\r\n"
                                      "  facet normal 0 0 1\r\n    outer loop\r\n"
                                      "      vertex 0 0 1\r\n      vertex 1 0 1\r\n      vertex 1 1 1\r\n"
                                      "      vertex 0 1 1.5e0\r\n"
                                      "    endloop\r\n  endfacet\r\n"
                                      "endsolid second\r\n";

static void test_stl_ascii_and_binary(void)
{
    od_mesh mesh;
    od_error err = {{0}};
    int rc = od_mesh_parse_stl(ascii_two_solids, strlen(ascii_two_solids), "two.stl", &mesh, &err);
    OD_CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.message);
    if (rc == 0) {
        /* A triangle and a quad (two triangles), each solid a part. */
        OD_CHECK(mesh.face_count == 3 && mesh.vertex_count == 7);
        OD_CHECK(mesh.part_count == 2 && strcmp(mesh.part_names[1], "second") == 0);
        OD_CHECK(mesh.face_parts[0] == 0 && mesh.face_parts[1] == 1 && mesh.face_parts[2] == 1);
        OD_CHECK(mesh.positions[6 * 3 + 2] == 1.5f);
    }
    od_mesh_free(&mesh);

    /* Binary, with a header that starts with "solid" as many exporters write. */
    for (int header_kind = 0; header_kind < 2; header_kind++) {
        bytes b;
        memset(&b, 0, sizeof b);
        char header[80] = {0};
        if (header_kind == 1)
            snprintf(header, sizeof header, "solid facet endsolid exported by a test");
        put(&b, header, 80);
        put_int(&b, 2, 0);
        const float tris[2][9] = {{0, 0, 0, 1, 0, 0, 0, 1, 0}, {0, 0, 0, 0, 1, 0, 0, 0, 1}};
        for (int t = 0; t < 2; t++) {
            for (int k = 0; k < 3; k++)
                put_float(&b, 0, 0);
            for (int k = 0; k < 9; k++)
                put_float(&b, tris[t][k], 0);
            put_u8(&b, 0);
            put_u8(&b, 0);
        }
        const char *path = temp_path("two.Stl");
        write_bytes(path, b.data, b.size);
        rc = od_mesh_load(path, &mesh, &err);
        OD_CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "  %s\n", err.message);
        if (rc == 0) {
            OD_CHECK(mesh.face_count == 2 && mesh.vertex_count == 6);
            OD_CHECK(mesh.positions[5 * 3 + 2] == 1);
            /* Welding joins the shared corners. */
            OD_CHECK(od_mesh_weld(&mesh, 1e-6f, &err) == 0);
            OD_CHECK(mesh.vertex_count == 4);
        }
        od_mesh_free(&mesh);
    }
}

/* ---- OFF ----------------------------------------------------------------------------- */

static void test_off_variants(void)
{
    od_mesh mesh;
    od_error err = {{0}};
    /* Comments, a quad, a face colour in integers and one in decimals. */
    const char *text = "OFF # a comment after the keyword\n"
                       "# a comment line\n\n"
                       "5 3 0\n"
                       "0 0 0\n1 0 0\n1 1 0  # trailing comment\n0 1 0\n0.5 0.5 1\n"
                       "4 0 1 2 3 255 0 0\n"
                       "3 0 1 4 0.0 0.5 1.0 1.0\n"
                       "3 1 2 4\n";
    int rc = od_mesh_parse_off(text, strlen(text), "colors.off", &mesh, &err);
    OD_CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.message);
    if (rc == 0) {
        OD_CHECK(mesh.face_count == 4 && mesh.vertex_count == 12 && mesh.colors != NULL);
        if (mesh.colors && mesh.vertex_count == 12) {
            OD_CHECK(mesh.colors[0] == 1 && mesh.colors[1] == 0);
            OD_CHECK(mesh.colors[6 * 3 + 1] == 0.5f && mesh.colors[6 * 3 + 2] == 1);
            OD_CHECK(mesh.colors[9 * 3 + 0] == 1 && mesh.colors[9 * 3 + 1] == 1); /* uncoloured: white */
            OD_CHECK(mesh.positions[8 * 3 + 2] == 1);
        }
    }
    od_mesh_free(&mesh);

    /* NOFF and COFF: normals and vertex colours, the counts on the keyword's line. */
    const char *noff = "CNOFF 3 1 3\n0 0 0 0 0 3 255 0 0 255\n1 0 0 0 0 1 0 255 0 255\n0 1 0 0 0 1 0 0 1.0 1\n"
                       "3 0 1 2\n";
    rc = od_mesh_parse_off(noff, strlen(noff), "cnoff.off", &mesh, &err);
    OD_CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.message);
    if (rc == 0) {
        OD_CHECK(mesh.vertex_count == 3 && mesh.normals != NULL && mesh.colors != NULL);
        OD_CHECK(mesh.normals[2] == 1);
        OD_CHECK(mesh.colors[0] == 1 && mesh.colors[4] == 1 && mesh.colors[8] == 1);
    }
    od_mesh_free(&mesh);

    /* No keyword at all, and faces spread over lines. */
    const char *bare = "3 1 0\n0 0 0\n1 0 0\n0 1 0\n3\n0 1 2\n";
    rc = od_mesh_parse_off(bare, strlen(bare), "bare.off", &mesh, &err);
    OD_CHECK(rc == 0);
    if (rc == 0)
        OD_CHECK(mesh.face_count == 1 && mesh.colors == NULL);
    od_mesh_free(&mesh);
}

/* ---- one cube in four formats ---------------------------------------------------------- */

static const float cube_corners[8][3] = {{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0},
                                         {0, 0, 1}, {1, 0, 1}, {1, 1, 1}, {0, 1, 1}};
static const int cube_quads[6][4] = {{0, 3, 2, 1}, {4, 5, 6, 7}, {0, 1, 5, 4},
                                     {1, 2, 6, 5}, {2, 3, 7, 6}, {3, 0, 4, 7}};

/* A triangle as its corners' positions, rotated so that the smallest
 * corner comes first (the winding is kept). */
typedef struct tri_key {
    float p[9];
} tri_key;

static int compare_floats9(const void *a, const void *b)
{
    const float *x = ((const tri_key *)a)->p, *y = ((const tri_key *)b)->p;
    for (int i = 0; i < 9; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

static int compare_floats3(const float *x, const float *y)
{
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

static void triangle_keys(const od_mesh *mesh, tri_key *keys)
{
    for (int64_t f = 0; f < mesh->face_count; f++) {
        tri_key corners[3];
        for (int k = 0; k < 3; k++)
            memcpy(corners[k].p, mesh->positions + (int64_t)mesh->faces[f * 3 + k] * 3, 3 * sizeof(float));
        int first = 0;
        for (int k = 1; k < 3; k++)
            if (memcmp(&corners[k], &corners[first], sizeof corners[k]) != 0 &&
                compare_floats3(corners[k].p, corners[first].p) < 0)
                first = k;
        for (int k = 0; k < 3; k++)
            memcpy(keys[f].p + k * 3, corners[(first + k) % 3].p, 3 * sizeof(float));
    }
    qsort(keys, (size_t)mesh->face_count, sizeof *keys, compare_floats9);
}

static void test_cube_from_four_formats(void)
{
    char obj[2048], off[2048], ply[2048], stl[8192];
    int no = 0, nf = 0, np = 0, ns = 0;
    nf += snprintf(off + nf, sizeof off - (size_t)nf, "OFF\n8 6 12\n");
    np += snprintf(ply + np, sizeof ply - (size_t)np,
                   "ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\n"
                   "property float z\nelement face 6\nproperty list uchar int vertex_indices\nend_header\n");
    for (int v = 0; v < 8; v++) {
        no += snprintf(obj + no, sizeof obj - (size_t)no, "v %g %g %g\n", (double)cube_corners[v][0],
                       (double)cube_corners[v][1], (double)cube_corners[v][2]);
        nf += snprintf(off + nf, sizeof off - (size_t)nf, "%g %g %g\n", (double)cube_corners[v][0],
                       (double)cube_corners[v][1], (double)cube_corners[v][2]);
        np += snprintf(ply + np, sizeof ply - (size_t)np, "%g %g %g\n", (double)cube_corners[v][0],
                       (double)cube_corners[v][1], (double)cube_corners[v][2]);
    }
    ns += snprintf(stl + ns, sizeof stl - (size_t)ns, "solid cube\n");
    for (int q = 0; q < 6; q++) {
        const int *c = cube_quads[q];
        no += snprintf(obj + no, sizeof obj - (size_t)no, "f %d %d %d %d\n", c[0] + 1, c[1] + 1, c[2] + 1, c[3] + 1);
        nf += snprintf(off + nf, sizeof off - (size_t)nf, "4 %d %d %d %d\n", c[0], c[1], c[2], c[3]);
        np += snprintf(ply + np, sizeof ply - (size_t)np, "4 %d %d %d %d\n", c[0], c[1], c[2], c[3]);
        /* STL has triangles: the same fan the readers make. */
        for (int t = 0; t < 2; t++) {
            int corner[3] = {c[0], c[1 + t], c[2 + t]};
            ns += snprintf(stl + ns, sizeof stl - (size_t)ns, "facet normal 0 0 0\nouter loop\n");
            for (int k = 0; k < 3; k++)
                ns += snprintf(stl + ns, sizeof stl - (size_t)ns, "vertex %g %g %g\n",
                               (double)cube_corners[corner[k]][0], (double)cube_corners[corner[k]][1],
                               (double)cube_corners[corner[k]][2]);
            ns += snprintf(stl + ns, sizeof stl - (size_t)ns, "endloop\nendfacet\n");
        }
    }
    ns += snprintf(stl + ns, sizeof stl - (size_t)ns, "endsolid cube\n");
    const char *names[4] = {"cube.obj", "cube.OFF", "cube.ply", "cube.stl"};
    const char *texts[4] = {obj, off, ply, stl};
    tri_key reference[12], keys[12];
    for (int i = 0; i < 4; i++) {
        const char *path = temp_path(names[i]);
        write_bytes(path, texts[i], strlen(texts[i]));
        od_mesh mesh;
        od_error err = {{0}};
        int rc = od_mesh_load(path, &mesh, &err);
        OD_CHECK(rc == 0);
        if (rc != 0) {
            fprintf(stderr, "  %s\n", err.message);
            continue;
        }
        OD_CHECK(od_mesh_weld(&mesh, 1e-5f, &err) == 0);
        OD_CHECK(mesh.vertex_count == 8 && mesh.face_count == 12);
        if (mesh.face_count == 12) {
            triangle_keys(&mesh, i == 0 ? reference : keys);
            if (i > 0)
                OD_CHECK(memcmp(reference, keys, sizeof keys) == 0);
        }
        od_mesh_free(&mesh);
    }
}

/* ---- errors ------------------------------------------------------------------------- */

static void expect_error(int rc, const od_error *err, const char *part1, const char *part2)
{
    OD_CHECK(rc != 0);
    OD_CHECK(strstr(err->message, part1) != NULL);
    OD_CHECK(part2 == NULL || strstr(err->message, part2) != NULL);
    if (rc == 0 || !strstr(err->message, part1) || (part2 && !strstr(err->message, part2)))
        fprintf(stderr, "  message was: %s\n", err->message);
}

static void test_errors(void)
{
    od_mesh mesh;
    od_error err = {{0}};
    /* Truncated binary PLY: the whole square but its last 5 bytes. */
    bytes b;
    binary_square_ply(&b, 0);
    int rc = od_mesh_parse_ply(b.data, b.size - 5, "cut.ply", &mesh, &err);
    expect_error(rc, &err, "cut.ply", "byte");
    /* A vertex count far beyond the file. */
    const char *huge = "ply\nformat binary_little_endian 1.0\nelement vertex 2000000000\nproperty float x\n"
                       "property float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\n"
                       "end_header\n0000";
    rc = od_mesh_parse_ply(huge, strlen(huge), "huge.ply", &mesh, &err);
    expect_error(rc, &err, "huge.ply", "bytes");
    /* A bad number in an ASCII PLY names the line, element and property. */
    const char *bad = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                      "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
                      "0 0 0\n1 zero 0\n0 1 0\n3 0 1 2\n";
    rc = od_mesh_parse_ply(bad, strlen(bad), "bad.ply", &mesh, &err);
    expect_error(rc, &err, "bad.ply:11", "vertex 1, y");
    /* A face index out of range. */
    const char *index = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                        "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
                        "0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n";
    rc = od_mesh_parse_ply(index, strlen(index), "index.ply", &mesh, &err);
    expect_error(rc, &err, "index.ply", "out of range");
    rc = od_mesh_parse_ply("plx\n", 4, "magic.ply", &mesh, &err);
    expect_error(rc, &err, "magic.ply:1", "'ply'");

    /* Binary STL whose count is larger than the file. */
    memset(&b, 0, sizeof b);
    char header[80] = {0};
    put(&b, header, 80);
    put_int(&b, 1000, 0);
    put(&b, header, 50);
    rc = od_mesh_parse_stl(b.data, b.size, "short.stl", &mesh, &err);
    expect_error(rc, &err, "short.stl: byte 80", "1000");
    const char *nan_stl = "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 nan\n";
    rc = od_mesh_parse_stl(nan_stl, strlen(nan_stl), "nan.stl", &mesh, &err);
    expect_error(rc, &err, "nan.stl:4", "invalid number");
    rc = od_mesh_parse_stl("tiny", 4, "tiny.stl", &mesh, &err);
    expect_error(rc, &err, "tiny.stl", "84");

    /* OFF: counts beyond the file, a bad number, a bad index. */
    rc = od_mesh_parse_off("OFF\n100000 1 0\n0 0 0\n", 20, "count.off", &mesh, &err);
    expect_error(rc, &err, "count.off:2", "bytes");
    const char *off_bad = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0x\n3 0 1 2\n";
    rc = od_mesh_parse_off(off_bad, strlen(off_bad), "number.off", &mesh, &err);
    expect_error(rc, &err, "number.off:5", "vertex 2");
    const char *off_index = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 -1\n";
    rc = od_mesh_parse_off(off_index, strlen(off_index), "index.off", &mesh, &err);
    expect_error(rc, &err, "index.off:6", "face 0");
    rc = od_mesh_parse_off("4OFF\n", 5, "four.off", &mesh, &err);
    expect_error(rc, &err, "four.off:1", "4OFF");

    /* An element without properties may claim any count without costing time. */
    const char *empty = "ply\nformat ascii 1.0\nelement junk 4000000000000\nelement vertex 3\nproperty float x\n"
                        "property float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\n"
                        "end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n";
    rc = od_mesh_parse_ply(empty, strlen(empty), "empty.ply", &mesh, &err);
    OD_CHECK(rc == 0);
    od_mesh_free(&mesh);

    /* Unknown and missing extensions, and a missing file. */
    rc = od_mesh_load("model.fbx", &mesh, &err);
    expect_error(rc, &err, "model.fbx", ".fbx");
    rc = od_mesh_load("folder.d/model", &mesh, &err);
    expect_error(rc, &err, "folder.d/model", "no extension");
    rc = od_mesh_load(temp_path("absent.ply"), &mesh, &err);
    expect_error(rc, &err, "absent.ply", "cannot open");
    /* Every failure leaves the mesh empty. */
    OD_CHECK(mesh.positions == NULL && mesh.faces == NULL);
}

/* ---- weld and parts ----------------------------------------------------------------- */

/* A tube along x whose radius is profile(x), with `rings` circles of
 * `segments` vertices, open at the ends: one connected piece. */
static void make_tube(int rings, int segments, float (*profile)(float), od_mesh *mesh)
{
    od_error err;
    OD_CHECK(od_mesh_new((int64_t)rings * segments, 2 * (int64_t)(rings - 1) * segments, 0, 0, 0, mesh, &err) == 0);
    for (int i = 0; i < rings; i++) {
        float x = -2 + 4.0f * i / (rings - 1), r = profile(x);
        for (int j = 0; j < segments; j++) {
            float a = 6.2831853f * j / segments;
            float *p = mesh->positions + ((int64_t)i * segments + j) * 3;
            p[0] = x;
            p[1] = r * cosf(a);
            p[2] = r * sinf(a);
        }
    }
    int64_t f = 0;
    for (int i = 0; i + 1 < rings; i++)
        for (int j = 0; j < segments; j++) {
            int32_t a = i * segments + j, b = i * segments + (j + 1) % segments, c = a + segments, d = b + segments;
            int32_t *t = mesh->faces + f * 3;
            t[0] = a, t[1] = b, t[2] = d, t[3] = a, t[4] = d, t[5] = c;
            f += 2;
        }
}

static float dumbbell(float x)
{
    return fabsf(x) > 0.6f ? 0.5f : 0.08f;
}

static float cylinder(float x)
{
    (void)x;
    return 0.4f;
}

static void test_parts(void)
{
    od_error err = {{0}};
    od_mesh mesh;
    od_mesh_parts_method method;
    /* Groups first. */
    const char *grouped = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\ng a\nf 1 2 3\ng b\nf 1 2 4\n";
    OD_CHECK(od_mesh_parse_obj(grouped, strlen(grouped), "g.obj", NULL, NULL, &mesh, &err) == 0);
    OD_CHECK(od_mesh_assign_parts(&mesh, &method, &err) == 2);
    OD_CHECK(method == OD_MESH_PARTS_GROUPS);
    OD_CHECK(mesh.part_count == 2 && strcmp(mesh.part_names[0], "a") == 0 && strcmp(mesh.part_names[1], "b") == 0);
    od_mesh_free(&mesh);

    /* Two separate boxes, welded from an STL-like soup: two components; a
     * tiny third box joins the nearest one. */
    od_mesh boxes[3];
    const float sizes[3][3] = {{1, 1, 1}, {1, 1, 1}, {0.05f, 0.05f, 0.05f}};
    const float offsets[3] = {0, 3, 3.6f};
    for (int i = 0; i < 3; i++)
        OD_CHECK(od_mesh_make_box(sizes[i], &boxes[i], &err) == 0);
    OD_CHECK(od_mesh_new(72, 36, 0, 0, 0, &mesh, &err) == 0);
    for (int i = 0; i < 3; i++) {
        for (int v = 0; v < 24; v++)
            for (int c = 0; c < 3; c++)
                mesh.positions[(i * 24 + v) * 3 + c] = boxes[i].positions[v * 3 + c] + (c == 0 ? offsets[i] : 0);
        for (int k = 0; k < 36; k++)
            mesh.faces[i * 36 + k] = boxes[i].faces[k] + i * 24;
        od_mesh_free(&boxes[i]);
    }
    int32_t labels[36];
    OD_CHECK(od_mesh_find_parts(&mesh, labels, &method, &err) == 2);
    OD_CHECK(method == OD_MESH_PARTS_COMPONENTS);
    OD_CHECK(labels[0] == 0 && labels[12] == 1 && labels[24] == 1);
    od_mesh_free(&mesh);

    /* One piece with a neck: cut into its two ends. */
    make_tube(41, 16, dumbbell, &mesh);
    OD_CHECK(od_mesh_prepare(&mesh, &method, &err) == 2);
    OD_CHECK(method == OD_MESH_PARTS_SEGMENTS);
    OD_CHECK(mesh.part_count == 2 && strcmp(mesh.part_names[1], "segment_1") == 0);
    if (mesh.part_count == 2) {
        /* Every face of one part lies on one side of x = 0. */
        int mixed = 0;
        for (int64_t f = 0; f < mesh.face_count; f++) {
            float x = mesh.positions[(int64_t)mesh.faces[f * 3] * 3];
            if ((x < -0.01f && mesh.face_parts[f] != mesh.face_parts[0]) ||
                (x > 0.01f && mesh.face_parts[f] == mesh.face_parts[0]))
                mixed++;
        }
        OD_CHECK(mixed == 0);
    }
    od_mesh_free(&mesh);

    /* 3000 scattered triangles, none 1 % of the area: one piece, not 3000 parts. */
    OD_CHECK(od_mesh_new(9000, 3000, 0, 0, 0, &mesh, &err) == 0);
    for (int t = 0; t < 3000; t++) {
        float x = (float)(t % 60), y = (float)(t / 60);
        const float corners[9] = {x, y, 0, x + 0.5f, y, 0, x, y + 0.5f, 0};
        memcpy(mesh.positions + t * 9, corners, sizeof corners);
        for (int k = 0; k < 3; k++)
            mesh.faces[t * 3 + k] = t * 3 + k;
    }
    OD_CHECK(od_mesh_assign_parts(&mesh, &method, &err) == 1);
    od_mesh_free(&mesh);

    /* Without a neck (a cylinder, a sphere) the mesh stays whole. */
    make_tube(21, 16, cylinder, &mesh);
    int32_t *all = malloc((size_t)mesh.face_count * sizeof(int32_t));
    OD_CHECK(od_mesh_find_parts(&mesh, all, &method, &err) == 1);
    OD_CHECK(method == OD_MESH_PARTS_WHOLE);
    free(all);
    od_mesh_free(&mesh);
    /* A long box: its flat end caps do not make the middle look narrow. */
    const float bar[3] = {4, 0.5f, 0.5f};
    OD_CHECK(od_mesh_make_box(bar, &mesh, &err) == 0);
    OD_CHECK(od_mesh_prepare(&mesh, &method, &err) == 1);
    OD_CHECK(method == OD_MESH_PARTS_WHOLE);
    od_mesh_free(&mesh);
    OD_CHECK(od_mesh_make_sphere(1, 16, 24, &mesh, &err) == 0);
    OD_CHECK(od_mesh_prepare(&mesh, &method, &err) == 1);
    OD_CHECK(method == OD_MESH_PARTS_WHOLE && strcmp(mesh.part_names[0], "whole") == 0);
    od_mesh_free(&mesh);
}

static void test_weld_keeps_attributes(void)
{
    /* An STL cube is a soup of 36 corners; welding leaves the 8 corners,
     * and the sharp corners of a coloured OFF keep their colours apart. */
    const char *text = "OFF\n4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2 255 0 0\n3 0 2 3 0 0 255\n";
    od_mesh mesh;
    od_error err = {{0}};
    OD_CHECK(od_mesh_parse_off(text, strlen(text), "two.off", &mesh, &err) == 0);
    OD_CHECK(mesh.vertex_count == 6);
    OD_CHECK(od_mesh_weld(&mesh, 1e-4f, &err) == 0);
    OD_CHECK(mesh.vertex_count == 6); /* colours differ: no corner is shared */
    OD_CHECK(od_mesh_set_color(&mesh, (const float[3]){1, 1, 1}, &err) == 0);
    OD_CHECK(od_mesh_weld(&mesh, 1e-4f, &err) == 0);
    OD_CHECK(mesh.vertex_count == 4 && mesh.face_count == 2);
    od_mesh_free(&mesh);
}

int main(void)
{
    OD_RUN(test_ply_ascii_and_binary);
    OD_RUN(test_ply_float_colors_and_face_colors);
    OD_RUN(test_stl_ascii_and_binary);
    OD_RUN(test_off_variants);
    OD_RUN(test_cube_from_four_formats);
    OD_RUN(test_errors);
    OD_RUN(test_parts);
    OD_RUN(test_weld_keeps_attributes);
    return od_test_finish();
}
