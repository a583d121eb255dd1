/* Tests of synth/mesh: the OBJ reader on small texts that each test
 * writes, its error messages, and normalise, weld and components. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/mesh.h"
#include "testlib.h"

static int parse(const char *text, od_mesh *mesh, od_error *err)
{
    return od_mesh_parse_obj(text, strlen(text), "test.obj", NULL, NULL, mesh, err);
}

static void write_file(const char *path, const char *text)
{
    FILE *file = fopen(path, "wb");
    OD_CHECK(file != NULL);
    if (!file)
        return;
    fputs(text, file);
    fclose(file);
}

static void test_obj_quad_fan_and_index_forms(void)
{
    /* One quad (two triangles) with positive indices, then a triangle with
     * negative indices that reuses the same corners. */
    const char *text = "# comment\n"
                       "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
                       "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
                       "vn 0 0 2\n"
                       "f 1/1/1 2/2/1 3/3/1 4/4/1\r\n"
                       "f -4/-4/-1 -3/-3/-1 -2/-2/-1\n";
    od_mesh mesh;
    od_error err = {{0}};
    OD_CHECK(parse(text, &mesh, &err) == 0);
    OD_CHECK(mesh.face_count == 3);
    OD_CHECK(mesh.vertex_count == 4);
    OD_CHECK(mesh.uvs != NULL && mesh.normals != NULL && mesh.colors == NULL);
    if (mesh.face_count == 3) {
        int32_t want[9] = {0, 1, 2, 0, 2, 3, 0, 1, 2};
        OD_CHECK(memcmp(mesh.faces, want, sizeof want) == 0);
        OD_CHECK(mesh.positions[2 * 3 + 0] == 1 && mesh.positions[2 * 3 + 1] == 1);
        OD_CHECK(mesh.uvs[3 * 2 + 1] == 1);
        /* Normals come back unit length. */
        OD_CHECK(mesh.normals[2] == 1);
    }
    od_mesh_free(&mesh);

    /* i, i//n and i/t forms; a corner with a different uv makes a new vertex. */
    const char *forms = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0.5 0.5\nvn 0 0 1\n"
                        "f 1 2 3\nf 1//1 2//1 3//1\nf 1/1 2/1 3/1\n";
    OD_CHECK(parse(forms, &mesh, &err) == 0);
    OD_CHECK(mesh.face_count == 3);
    OD_CHECK(mesh.vertex_count == 9);
    od_mesh_free(&mesh);
}

static void test_obj_colors_groups_materials(void)
{
    const char *dir = od_test_temp_dir();
    char obj_path[512], mtl_path[512];
    snprintf(obj_path, sizeof obj_path, "%s/thing.obj", dir);
    snprintf(mtl_path, sizeof mtl_path, "%s/thing.mtl", dir);
    write_file(mtl_path, "newmtl red\nKd 1 0 0\nnewmtl blue\nKd 0 0 1\nmap_Kd -s 1 1 1 blue.png\n");
    write_file(obj_path, "mtllib thing.mtl\n"
                         "v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 0 1 0 0 0 1\nv 1 1 0 1 1 1\n"
                         "f 1 2 3\n"
                         "g lid\nusemtl red\nf 2 4 3\n"
                         "o handle\nusemtl blue\nf 1 2 4\n"
                         "g lid\nusemtl unknown\nf 1 3 4\n");
    od_mesh mesh;
    od_error err = {{0}};
    OD_CHECK(od_mesh_read_obj(obj_path, NULL, &mesh, &err) == 0);
    OD_CHECK(mesh.face_count == 4);
    OD_CHECK(mesh.colors != NULL);
    if (mesh.colors) {
        OD_CHECK(mesh.colors[0] == 1 && mesh.colors[1] == 0);
        OD_CHECK(mesh.colors[1 * 3 + 1] == 1);
    }
    OD_CHECK(mesh.part_count == 3);
    if (mesh.part_count == 3 && mesh.face_count == 4) {
        OD_CHECK(strcmp(mesh.part_names[0], "default") == 0);
        OD_CHECK(strcmp(mesh.part_names[1], "lid") == 0);
        OD_CHECK(strcmp(mesh.part_names[2], "handle") == 0);
        int32_t parts[4] = {0, 1, 2, 1};
        OD_CHECK(memcmp(mesh.face_parts, parts, sizeof parts) == 0);
    }
    OD_CHECK(mesh.material_count == 3);
    if (mesh.material_count == 3 && mesh.face_count == 4) {
        OD_CHECK(mesh.face_materials[0] == -1);
        OD_CHECK(strcmp(mesh.materials[mesh.face_materials[1]].name, "red") == 0);
        OD_CHECK(mesh.materials[mesh.face_materials[1]].diffuse[0] == 1);
        const od_mesh_material *blue = &mesh.materials[mesh.face_materials[2]];
        OD_CHECK(blue->diffuse[2] == 1 && blue->diffuse[0] == 0);
        OD_CHECK(blue->texture_path != NULL && strstr(blue->texture_path, "/blue.png") != NULL);
        const od_mesh_material *unknown = &mesh.materials[mesh.face_materials[3]];
        OD_CHECK(strcmp(unknown->name, "unknown") == 0 && fabsf(unknown->diffuse[0] - 0.8f) < 1e-6f);
    }
    od_mesh_free(&mesh);

    /* Reading the missing texture fails and names the material. */
    od_mesh_obj_options options = od_mesh_obj_options_default();
    options.read_textures = 1;
    OD_CHECK(od_mesh_read_obj(obj_path, &options, &mesh, &err) != 0);
    OD_CHECK(strstr(err.message, "blue") != NULL);
    OD_CHECK(mesh.faces == NULL);
}

/* Faces without area, as some exported furniture models hold, are skipped rather than failing the file. */
static void test_obj_skips_degenerate_faces(void)
{
    const char *text = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 5 5 5\n"
                       "f 1 2 3\n"      /* kept */
                       "f 1 5\n"        /* two corners */
                       "f 3 3 5\n"      /* two distinct positions */
                       "f 1 2 2 1\n"    /* four corners, two distinct positions */
                       "f 1 3 3 4\n";   /* kept: (1, 3, 3) is left out, (1, 3, 4) stays */
    od_mesh mesh;
    od_error err = {{0}};
    OD_CHECK(parse(text, &mesh, &err) == 0);
    OD_CHECK(mesh.face_count == 2);
    /* The fifth position, used only by skipped faces, is dropped. */
    OD_CHECK(mesh.vertex_count == 4);
    if (mesh.face_count == 2) {
        int32_t want[6] = {0, 1, 2, 0, 2, 3};
        OD_CHECK(memcmp(mesh.faces, want, sizeof want) == 0);
    }
    od_mesh_free(&mesh);
}

static void test_obj_errors(void)
{
    static const struct {
        const char *text;
        const char *expected; /* part of the message */
    } cases[] = {
        {"v 0 0\nf 1 1 1\n", "test.obj:1: expected 3, 4 or 6 numbers after v"},
        {"v 0 0 x\n", "test.obj:1: expected 3, 4 or 6 numbers"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "test.obj:4: vertex index 4 out of range"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 -4\n", "vertex index -4 out of range"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nf\n", "test.obj:4: expected at least 3 corners"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "test.obj: no faces"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 0\n", "invalid vertex index '0'"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/1 2/1 3/1\n", "test.obj:4: texture index 1 out of range"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1 2\nf 1/1 2/1 3/2\n", "test.obj:6: texture index 2 out of range"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/ 2 3\n", "expected a texture index"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1//x 2 3\n", "invalid normal index 'x'"},
        {"v 0 0 0\n", "no faces"},
        {"v 0 0 0\nv 1 0 0\nv 0 1 0\nmtllib missing.mtl\nf 1 2 3\n", "test.obj:4: mtllib"},
        {"vn 0 1\n", "expected 3 numbers after vn"},
        {"v 1e39 0 0\n", "expected 3, 4 or 6 numbers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        od_mesh mesh;
        od_error err = {{0}};
        int rc = parse(cases[i].text, &mesh, &err);
        OD_CHECK(rc != 0);
        if (rc == 0 || !strstr(err.message, cases[i].expected)) {
            printf("  case %zu: got '%s', expected '%s'\n", i, err.message, cases[i].expected);
            OD_CHECK(0);
        }
        OD_CHECK(mesh.faces == NULL && mesh.positions == NULL);
        od_mesh_free(&mesh);
    }
    od_mesh mesh;
    od_error err = {{0}};
    OD_CHECK(od_mesh_read_obj("/nonexistent/x.obj", NULL, &mesh, &err) != 0);
    OD_CHECK(strstr(err.message, "/nonexistent/x.obj") != NULL);
}

static void test_normalize(void)
{
    const char *text = "v 1 2 3\nv 5 2 3\nv 1 4 4\nf 1 2 3\n";
    od_mesh mesh;
    od_error err = {{0}};
    OD_CHECK(parse(text, &mesh, &err) == 0);
    OD_CHECK(od_mesh_normalize(&mesh, 2.0f, &err) == 0);
    float min[3], max[3];
    od_mesh_bounds(&mesh, min, max);
    /* Largest extent 4 (x) scaled to 2; every axis centred on 0. */
    float want_min[3] = {-1, -0.5f, -0.25f}, want_max[3] = {1, 0.5f, 0.25f};
    OD_CHECK_CLOSE("normalized min", min, want_min, 3, 1e-6f, 0);
    OD_CHECK_CLOSE("normalized max", max, want_max, 3, 1e-6f, 0);
    OD_CHECK(od_mesh_normalize(&mesh, 0, &err) != 0);
    OD_CHECK(strstr(err.message, "invalid size") != NULL);
    od_mesh_free(&mesh);

    OD_CHECK(parse("v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n", &mesh, &err) == 0);
    OD_CHECK(od_mesh_normalize(&mesh, 1, &err) != 0);
    OD_CHECK(strstr(err.message, "extent is 0") != NULL);
    od_mesh_free(&mesh);
}

static void test_weld_and_components(void)
{
    /* Two triangles of a square listed with separate corners (6 vertices),
     * one corner off by 1e-7, and a third triangle far away with a
     * degenerate sliver that collapses after welding. */
    const char *text = "v 0 0 0\nv 1 0 0\nv 1 1 0\n"
                       "v 0 0 0\nv 1 1.0000001 0\nv 0 1 0\n"
                       "v 5 5 5\nv 6 5 5\nv 5 6 5\n"
                       "v 5 5 5\nv 5.0000001 5 5\n"
                       "f 1 2 3\nf 4 5 6\nf 7 8 9\nf 10 11 8\n";
    od_mesh mesh;
    od_error err = {{0}};
    OD_CHECK(parse(text, &mesh, &err) == 0);
    OD_CHECK(mesh.vertex_count == 11);
    int32_t labels[4] = {-1, -1, -1, -1};
    /* Before welding the components still join through shared positions. */
    OD_CHECK(od_mesh_components(&mesh, 1e-4f, labels, &err) == 2);
    int32_t want[4] = {0, 0, 1, 1};
    OD_CHECK(memcmp(labels, want, sizeof want) == 0);

    OD_CHECK(od_mesh_weld(&mesh, 1e-4f, &err) == 0);
    OD_CHECK(mesh.vertex_count == 7);
    OD_CHECK(mesh.face_count == 3);
    if (mesh.face_count == 3) {
        int32_t faces[9] = {0, 1, 2, 0, 2, 3, 4, 5, 6};
        OD_CHECK(memcmp(mesh.faces, faces, sizeof faces) == 0);
    }
    OD_CHECK(od_mesh_components(&mesh, 1e-4f, labels, &err) == 2);
    OD_CHECK(od_mesh_weld(&mesh, -1, &err) != 0);
    OD_CHECK(strstr(err.message, "tolerance") != NULL);
    od_mesh_free(&mesh);

    /* A UV seam keeps its vertices when welding but not in components. */
    const char *seam = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\nvt 0.5 0.5\n"
                       "f 1/1 2/2 3/3\nf 2/5 4/4 3/3\n";
    OD_CHECK(parse(seam, &mesh, &err) == 0);
    OD_CHECK(od_mesh_weld(&mesh, 1e-4f, &err) == 0);
    OD_CHECK(mesh.vertex_count == 5);
    OD_CHECK(od_mesh_components(&mesh, 1e-4f, labels, &err) == 1);
    od_mesh_free(&mesh);
}

static void test_procedural_shapes(void)
{
    od_mesh mesh;
    od_error err = {{0}};
    OD_CHECK(od_mesh_make_sphere(0.5f, 16, 32, &mesh, &err) == 0);
    OD_CHECK(mesh.face_count == 2 * 32 * 15);
    int32_t *labels = malloc((size_t)mesh.face_count * sizeof(int32_t));
    OD_CHECK(od_mesh_components(&mesh, 1e-5f, labels, &err) == 1);
    free(labels);
    /* Every vertex lies on the sphere, and the outward normal is the position's direction. */
    float worst = 0;
    for (int64_t i = 0; i < mesh.vertex_count; i++) {
        const float *p = mesh.positions + i * 3;
        float r = sqrtf(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
        worst = fmaxf(worst, fabsf(r - 0.5f));
    }
    OD_CHECK(worst < 1e-6f);
    /* Faces wind counter-clockwise seen from outside: (b - a) x (c - a) points outward. */
    int outward = 1;
    for (int64_t f = 0; f < mesh.face_count; f++) {
        const float *a = mesh.positions + mesh.faces[f * 3] * 3, *b = mesh.positions + mesh.faces[f * 3 + 1] * 3,
                    *c = mesh.positions + mesh.faces[f * 3 + 2] * 3;
        float u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, v[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
        float n[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
        float centre[3] = {a[0] + b[0] + c[0], a[1] + b[1] + c[1], a[2] + b[2] + c[2]};
        if (n[0] * centre[0] + n[1] * centre[1] + n[2] * centre[2] <= 0)
            outward = 0;
    }
    OD_CHECK(outward);
    od_mesh_free(&mesh);

    OD_CHECK(od_mesh_make_torus(0.3f, 0.1f, 24, 12, &mesh, &err) == 0);
    OD_CHECK(mesh.face_count == 2 * 24 * 12);
    od_mesh_free(&mesh);
    float size[3] = {1, 2, 3};
    OD_CHECK(od_mesh_make_box(size, &mesh, &err) == 0);
    float min[3], max[3];
    od_mesh_bounds(&mesh, min, max);
    float want_max[3] = {0.5f, 1, 1.5f};
    OD_CHECK_CLOSE("box max", max, want_max, 3, 0, 0);
    od_mesh_free(&mesh);
    OD_CHECK(od_mesh_make_sphere(1, 1, 3, &mesh, &err) != 0);
    OD_CHECK(strstr(err.message, "rings") != NULL);
}

int main(void)
{
    OD_RUN(test_obj_quad_fan_and_index_forms);
    OD_RUN(test_obj_colors_groups_materials);
    OD_RUN(test_obj_skips_degenerate_faces);
    OD_RUN(test_obj_errors);
    OD_RUN(test_normalize);
    OD_RUN(test_weld_and_components);
    OD_RUN(test_procedural_shapes);
    return od_test_finish();
}
