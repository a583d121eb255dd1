/* Tests of synth/generate: a generated scene reads back through
 * od_scene_load as a release scene, its masks lie inside the projected
 * boxes, the anomaly is marked in the object's path, and a seed gives the
 * same files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geometry/box.h"
#include "scene/scene.h"
#include "synth/generate.h"
#include "testlib.h"

static char *read_all(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = malloc((size_t)length + 1);
    if (data && fread(data, 1, (size_t)length, file) != (size_t)length) {
        free(data);
        data = NULL;
    }
    fclose(file);
    *size = (size_t)length;
    return data;
}

static int files_equal(const char *a, const char *b)
{
    size_t size_a = 0, size_b = 0;
    char *x = read_all(a, &size_a), *y = read_all(b, &size_b);
    int equal = x && y && size_a == size_b && memcmp(x, y, size_a) == 0;
    free(x);
    free(y);
    return equal;
}

static void test_generated_scene_loads(void)
{
    od_mesh torus;
    od_error err = {{0}};
    OD_CHECK(od_mesh_make_torus(0.3f, 0.12f, 48, 24, &torus, &err) == 0);
    od_synth_scene_options o = od_synth_scene_options_default();
    o.seed = 7;
    o.view_count = 6;
    o.object_count = 4;
    o.image_size = 128;
    o.focal = 106.7;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/scene", od_test_temp_dir());
    od_synth_scene_stats stats;
    int rc = od_synth_generate_scene(&o, &torus, "torus-x", dir, &stats, &err);
    if (rc != 0)
        printf("  %s\n", err.message);
    OD_CHECK(rc == 0);

    od_scene *scene = NULL;
    rc = od_scene_load(dir, NULL, &scene, &err);
    if (rc != 0)
        printf("  %s\n", err.message);
    OD_CHECK(rc == 0);
    if (!scene) {
        od_mesh_free(&torus);
        return;
    }
    OD_CHECK(scene->format == OD_SCENE_FORMAT_RELEASE);
    OD_CHECK(scene->view_count == 6);
    OD_CHECK(scene->object_count == 4);
    int anomalous = 0;
    for (int i = 0; i < scene->object_count; i++) {
        const od_scene_object *object = &scene->objects[i];
        if (object->label == OD_LABEL_ANOMALOUS) {
            anomalous++;
            OD_CHECK(strcmp(object->anomaly_kind, "bump") == 0);
            /* '-' in the shape name must not read as a second anomaly mark. */
            OD_CHECK(strcmp(object->source, "torus_x_000-bump-001.obj") == 0);
        }
        /* Resting on the floor: the box's bottom at z = 0 (float rounding allowed). */
        OD_CHECK(fabs(object->box.center[2] - object->box.size[2] / 2) < 1e-6);
        OD_CHECK(fabs(object->box.size[0] - 0.1) < 0.03);
    }
    OD_CHECK(anomalous == 1);
    OD_CHECK(stats.anomaly_pixels >= o.min_anomaly_pixels);
    /* The loaded camera equals the rendered one: principal point at the
     * centre of the 128-pixel image in the pixel-centre convention. */
    OD_CHECK(fabs(scene->views[0].camera.K[2] - 63.5) < 1e-9);
    OD_CHECK(scene->views[0].camera.width == 128);

    /* Every mask pixel lies inside its object's projected box, and every
     * object shows in every view. */
    int outside = 0, total = 0, empty = 0;
    for (int v = 0; v < scene->view_count; v++)
        for (int i = 0; i < scene->object_count; i++) {
            od_image mask;
            OD_CHECK(od_scene_read_object_mask(scene, v, i, &mask, &err) == 0);
            if (!mask.pixels)
                continue;
            double hull[40];
            int count = od_box_project_hull(&scene->objects[i].box, &scene->views[v].camera, hull);
            int pixels = 0;
            for (int y = 0; y < mask.height; y++)
                for (int x = 0; x < mask.width; x++) {
                    if (mask.pixels[y * mask.width + x] < 0.5f)
                        continue;
                    pixels++;
                    /* 2x2 supersampling takes a pixel for the object when 2 of
                     * its 4 samples are, so its centre may lie up to half a
                     * pixel outside the exact outline. */
                    int inside = 0;
                    for (int k = 0; k < 9 && !inside; k++)
                        inside = od_convex_polygon_contains(hull, count, x + 0.5 * (k % 3 - 1), y + 0.5 * (k / 3 - 1));
                    outside += !inside;
                }
            total += pixels;
            empty += pixels == 0;
            od_image_free(&mask);
        }
    OD_CHECK(outside == 0);
    OD_CHECK(empty == 0);
    OD_CHECK(total > 6 * 4 * 30);

    /* The 16-bit depth of view 0: on each object within its box's reach of
     * the box centre's depth, and nonzero on most of the image (the floor),
     * though the sky above the horizon may show at 0. */
    char depth_path[1200];
    snprintf(depth_path, sizeof depth_path, "%s/depth_png/0000.png", dir);
    od_image depth;
    int bit_depth = 0;
    OD_CHECK(od_image_read_gray_raw(depth_path, &depth, &bit_depth, &err) == 0);
    OD_CHECK(bit_depth == 16);
    if (depth.pixels) {
        int far_off = 0, zero = 0, checked = 0;
        for (int i = 0; i < scene->object_count; i++) {
            od_image mask;
            OD_CHECK(od_scene_read_object_mask(scene, 0, i, &mask, &err) == 0);
            double centre_depth = 0;
            OD_CHECK(od_camera_project(&scene->views[0].camera, scene->objects[i].box.center, (double[2]){0, 0},
                                       &centre_depth) == 1);
            for (int p = 0; mask.pixels && p < mask.width * mask.height; p++)
                if (mask.pixels[p] > 0.5f) {
                    checked++;
                    far_off += fabs(depth.pixels[p] / 1000.0 - centre_depth) > 0.1;
                }
            od_image_free(&mask);
        }
        for (int p = 0; p < depth.width * depth.height; p++)
            zero += depth.pixels[p] == 0;
        OD_CHECK(checked > 100);
        OD_CHECK(far_off == 0);
        OD_CHECK(zero < depth.width * depth.height / 2);
        od_image_free(&depth);
    }
    od_scene_free(scene);

    /* The same seed writes the same files. */
    char again[1024];
    snprintf(again, sizeof again, "%s/again", od_test_temp_dir());
    OD_CHECK(od_synth_generate_scene(&o, &torus, "torus-x", again, NULL, &err) == 0);
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/scene3d.metadata.json", dir);
    snprintf(b, sizeof b, "%s/scene3d.metadata.json", again);
    OD_CHECK(files_equal(a, b));
    snprintf(a, sizeof a, "%s/RGB/0005.png", dir);
    snprintf(b, sizeof b, "%s/RGB/0005.png", again);
    OD_CHECK(files_equal(a, b));
    od_mesh_free(&torus);
}

static void test_all_normal_scene(void)
{
    od_mesh box;
    od_error err = {{0}};
    float size[3] = {1, 0.6f, 0.4f};
    OD_CHECK(od_mesh_make_box(size, &box, &err) == 0);
    od_synth_scene_options o = od_synth_scene_options_default();
    o.anomalous = 0;
    o.view_count = 2;
    o.image_size = 64;
    o.focal = 53.3;
    o.supersample = 1;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/normal", od_test_temp_dir());
    OD_CHECK(od_synth_generate_scene(&o, &box, "crate", dir, NULL, &err) == 0);
    od_scene *scene = NULL;
    OD_CHECK(od_scene_load(dir, NULL, &scene, &err) == 0);
    if (scene) {
        OD_CHECK(scene->object_count == 5);
        for (int i = 0; i < scene->object_count; i++)
            OD_CHECK(scene->objects[i].label == OD_LABEL_NORMAL);
        od_scene_free(scene);
    }
    od_mesh_free(&box);
}

/* Dropped from a drawn orientation, a bar rests on one of its faces: every instance of a scene shares
 * one height, 0.02, 0.03 or 0.1 m for a 1 x 0.3 x 0.2 bar of 0.1 m, and the heights vary over seeds. */
static void test_drawn_pose_scene(void)
{
    od_mesh bar;
    od_error err = {{0}};
    float size[3] = {1, 0.3f, 0.2f};
    OD_CHECK(od_mesh_make_box(size, &bar, &err) == 0);
    int seen[3] = {0, 0, 0};
    for (uint64_t seed = 1; seed <= 8; seed++) {
        od_synth_scene_options o = od_synth_scene_options_default();
        o.seed = seed;
        o.anomalous = 0;
        o.pose = OD_SYNTH_POSE_DRAWN;
        o.object_count = 3;
        o.view_count = 1;
        o.image_size = 64;
        o.focal = 213.3333 * 64 / 256;
        o.supersample = 1;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/drawn_pose_%d", od_test_temp_dir(), (int)seed);
        int rc = od_synth_generate_scene(&o, &bar, "bar", dir, NULL, &err);
        if (rc != 0)
            printf("  %s\n", err.message);
        OD_CHECK(rc == 0);
        od_scene *scene = NULL;
        OD_CHECK(od_scene_load(dir, NULL, &scene, &err) == 0);
        for (int i = 0; scene && i < scene->object_count; i++) {
            double height = scene->objects[i].box.size[2];
            OD_CHECK(fabs(height - scene->objects[0].box.size[2]) < 1e-6);
            OD_CHECK(fabs(scene->objects[i].box.center[2] - height / 2) < 1e-6);
            int which = fabs(height - 0.02) < 1e-4 ? 0 : fabs(height - 0.03) < 1e-4 ? 1 : fabs(height - 0.1) < 1e-4 ? 2 : -1;
            OD_CHECK(which >= 0);
            if (which >= 0 && i == 0)
                seen[which]++;
        }
        od_scene_free(scene);
    }
    printf("  drawn poses over 8 seeds: on the largest face %d, the middle %d, the end %d\n", seen[0], seen[1],
           seen[2]);
    OD_CHECK(seen[0] > 0 && seen[1] > 0);
    od_mesh_free(&bar);
}

static void test_material_swap_scene(void)
{
    od_mesh sphere;
    od_error err = {{0}};
    OD_CHECK(od_mesh_make_sphere(0.5f, 16, 32, &sphere, &err) == 0);
    od_synth_scene_options o = od_synth_scene_options_default();
    o.anomaly = OD_SYNTH_ANOMALY_MATERIAL;
    o.view_count = 2;
    o.image_size = 96;
    o.focal = 80;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/material", od_test_temp_dir());
    OD_CHECK(od_synth_generate_scene(&o, &sphere, "ball", dir, NULL, &err) == 0);
    od_scene *scene = NULL;
    OD_CHECK(od_scene_load(dir, NULL, &scene, &err) == 0);
    if (scene) {
        od_image rgb;
        OD_CHECK(od_scene_read_view_image(scene, 0, &rgb, &err) == 0);
        int anomalous = 0;
        int brightest[2] = {-1, -1}; /* the strongest channel of the normal and the swapped instances */
        for (int i = 0; i < scene->object_count; i++) {
            od_image mask;
            OD_CHECK(od_scene_read_object_mask(scene, 0, i, &mask, &err) == 0);
            double sum[3] = {0, 0, 0};
            int count = 0;
            for (int p = 0; mask.pixels && rgb.pixels && p < mask.width * mask.height; p++)
                if (mask.pixels[p] > 0.5f) {
                    count++;
                    for (int c = 0; c < 3; c++)
                        sum[c] += rgb.pixels[p * 3 + c];
                }
            od_image_free(&mask);
            OD_CHECK(count > 0);
            /* The scene's object colour is drawn with a saturation of 0.45 or more, so rotating its
             * channels moves the strongest channel one place on. */
            int is_odd = scene->objects[i].label == OD_LABEL_ANOMALOUS;
            anomalous += is_odd;
            if (is_odd)
                OD_CHECK(strcmp(scene->objects[i].anomaly_kind, "material") == 0);
            int strongest = sum[1] > sum[0] ? 1 : 0;
            strongest = sum[2] > sum[strongest] ? 2 : strongest;
            OD_CHECK(brightest[is_odd] < 0 || brightest[is_odd] == strongest);
            brightest[is_odd] = strongest;
        }
        OD_CHECK(anomalous == 1);
        OD_CHECK(brightest[0] >= 0 && brightest[1] == (brightest[0] + 1) % 3);
        od_image_free(&rgb);
        od_scene_free(scene);
    }

    /* Swapping rotates the channels of vertex and material colours. */
    od_mesh swapped;
    float orange[3] = {0.9f, 0.5f, 0.1f};
    OD_CHECK(od_mesh_set_color(&sphere, orange, &err) == 0);
    OD_CHECK(od_synth_swap_material(&sphere, &swapped, &err) == 0);
    float want[3] = {0.1f, 0.9f, 0.5f};
    OD_CHECK_CLOSE("rotated colour", swapped.colors, want, 3, 0, 0);
    od_mesh_free(&swapped);
    od_mesh_free(&sphere);
}

static void test_obj_shape_scene(void)
{
    /* A blue block with a yellow handle, as two OBJ objects with materials. */
    const char *dir = od_test_temp_dir();
    char obj_path[1024], mtl_path[1024], scene_dir[1024];
    snprintf(obj_path, sizeof obj_path, "%s/mug.obj", dir);
    snprintf(mtl_path, sizeof mtl_path, "%s/mug.mtl", dir);
    snprintf(scene_dir, sizeof scene_dir, "%s/mug_scene", dir);
    FILE *file = fopen(mtl_path, "wb");
    OD_CHECK(file != NULL);
    if (!file)
        return;
    fputs("newmtl body\nKd 0.2 0.4 0.9\nnewmtl handle\nKd 0.9 0.9 0.2\n", file);
    fclose(file);
    file = fopen(obj_path, "wb");
    OD_CHECK(file != NULL);
    if (!file)
        return;
    fputs("mtllib mug.mtl\no body\nusemtl body\n"
          "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 0 1.5\nv 1 0 1.5\nv 1 1 1.5\nv 0 1 1.5\n"
          "f 1 4 3 2\nf 5 6 7 8\nf 1 2 6 5\nf 2 3 7 6\nf 3 4 8 7\nf 4 1 5 8\n"
          "o handle\nusemtl handle\n"
          "v 1 0.4 0.5\nv 1.4 0.4 0.5\nv 1.4 0.6 0.5\nv 1 0.6 0.5\n"
          "v 1 0.4 1.0\nv 1.4 0.4 1.0\nv 1.4 0.6 1.0\nv 1 0.6 1.0\n"
          "f 9 12 11 10\nf 13 14 15 16\nf 9 10 14 13\nf 10 11 15 14\nf 11 12 16 15\nf 12 9 13 16\n",
          file);
    fclose(file);
    od_mesh mug;
    od_error err = {{0}};
    OD_CHECK(od_mesh_read_obj(obj_path, NULL, &mug, &err) == 0);
    OD_CHECK(mug.part_count == 3 && mug.material_count == 2);
    od_synth_scene_options o = od_synth_scene_options_default();
    o.view_count = 2;
    o.image_size = 96;
    o.focal = 80;
    OD_CHECK(od_synth_generate_scene(&o, &mug, "mug", scene_dir, NULL, &err) == 0);
    od_scene *scene = NULL;
    OD_CHECK(od_scene_load(scene_dir, NULL, &scene, &err) == 0);
    if (scene) {
        od_image rgb;
        OD_CHECK(od_scene_read_view_image(scene, 1, &rgb, &err) == 0);
        for (int i = 0; i < scene->object_count; i++) {
            od_image mask;
            OD_CHECK(od_scene_read_object_mask(scene, 1, i, &mask, &err) == 0);
            double blue = 0, red = 0;
            for (int p = 0; mask.pixels && rgb.pixels && p < mask.width * mask.height; p++)
                if (mask.pixels[p] > 0.5f) {
                    red += rgb.pixels[p * 3];
                    blue += rgb.pixels[p * 3 + 2];
                }
            /* The body's Kd is blue, so the material colours reach the image. */
            OD_CHECK(blue > red && blue > 0);
            od_image_free(&mask);
        }
        od_image_free(&rgb);
        od_scene_free(scene);
    }
    od_mesh_free(&mug);
}

static void test_generate_errors(void)
{
    od_mesh box;
    od_error err = {{0}};
    float size[3] = {1, 1, 1};
    OD_CHECK(od_mesh_make_box(size, &box, &err) == 0);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/bad", od_test_temp_dir());
    od_synth_scene_options o = od_synth_scene_options_default();
    o.object_count = 13;
    OD_CHECK(od_synth_generate_scene(&o, &box, "box", dir, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "invalid object count 13") != NULL);
    /* No anomaly can show in a million pixels of a 32 x 32 view, so every candidate is rejected. */
    o = od_synth_scene_options_default();
    o.view_count = 1;
    o.image_size = 32;
    o.focal = 26.7;
    o.min_anomaly_pixels = 1000000;
    od_synth_scene_stats stats;
    OD_CHECK(od_synth_generate_scene(&o, &box, "box", dir, &stats, &err) != 0);
    OD_CHECK(strstr(err.message, "fewer than 1000000 pixels of every view in 8 attempts") != NULL);
    OD_CHECK(stats.rejected == 8);
    /* Twelve 10 cm objects cannot stand 2 cm apart within 5 cm of the origin. */
    o = od_synth_scene_options_default();
    o.object_count = 12;
    o.placement_radius = 0.05;
    OD_CHECK(od_synth_generate_scene(&o, &box, "box", dir, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "could not place 12 instances") != NULL);
    o = od_synth_scene_options_default();
    /* Missing parents are created, so only a path through a file fails. */
    char blocked[4200];
    snprintf(blocked, sizeof blocked, "%s/plain-file", dir);
    FILE *plain = fopen(blocked, "w");
    OD_CHECK(plain != NULL);
    if (plain != NULL)
        fclose(plain);
    strcat(blocked, "/scene");
    OD_CHECK(od_synth_generate_scene(&o, &box, "box", blocked, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "plain-file exists and is not a folder") != NULL);
    od_mesh_free(&box);
}

static void test_bump_moves_vertices_outward(void)
{
    od_mesh sphere, bumped;
    od_error err = {{0}};
    OD_CHECK(od_mesh_make_sphere(1.0f, 24, 48, &sphere, &err) == 0);
    OD_CHECK(od_synth_bump(&sphere, 0.5f, 0.2f, 0.2f, &bumped, &err) == 0);
    float largest = 0;
    int moved = 0;
    for (int64_t v = 0; v < sphere.vertex_count; v++) {
        const float *p = bumped.positions + v * 3;
        float r = sqrtf(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
        OD_CHECK(r >= 1.0f - 1e-6f);
        largest = fmaxf(largest, r);
        moved += r > 1.001f;
    }
    /* The bump's peak is its height above the unit sphere. */
    OD_CHECK(fabsf(largest - 1.2f) < 1e-5f);
    OD_CHECK(moved > 10 && moved < sphere.vertex_count / 4);
    od_mesh_free(&bumped);
    od_mesh_free(&sphere);
}

/* Three boxes in a row along x with 5 mm gaps, one group each: a shape of three parts. */
static void make_three_part_shape(od_mesh *shape)
{
    od_error err = {{0}};
    od_mesh box = {0};
    const float size[3] = {0.3f, 0.3f, 0.3f};
    OD_CHECK(od_mesh_make_box(size, &box, &err) == 0);
    OD_CHECK(od_mesh_new(box.vertex_count * 3, box.face_count * 3, 0, 0, 0, shape, &err) == 0);
    for (int i = 0; i < 3; i++) {
        for (int64_t v = 0; v < box.vertex_count; v++) {
            for (int k = 0; k < 3; k++)
                shape->positions[(i * box.vertex_count + v) * 3 + k] = box.positions[v * 3 + k];
            shape->positions[(i * box.vertex_count + v) * 3] += (float)(i - 1) * 0.305f;
        }
        for (int64_t f = 0; f < box.face_count; f++) {
            for (int k = 0; k < 3; k++)
                shape->faces[(i * box.face_count + f) * 3 + k] = box.faces[f * 3 + k] + (int32_t)(i * box.vertex_count);
            shape->face_parts[i * box.face_count + f] = i;
        }
    }
    free(shape->part_names[0]);
    free(shape->part_names);
    shape->part_names = calloc(3, sizeof(char *));
    for (int i = 0; i < 3; i++)
        shape->part_names[i] = strdup(i == 0 ? "left" : i == 1 ? "middle" : "right");
    shape->part_count = 3;
    od_mesh_free(&box);
}

/* One small scene per geometric kind (3 objects, 4 views of 128 x 128): it is generated, passes the
 * visibility check, and the anomalous object's path names the kind. */
static void test_geometric_kinds(void)
{
    od_error err = {{0}};
    od_mesh sphere = {0}, torus = {0}, bar = {0}, parts = {0};
    const float bar_size[3] = {1.0f, 0.3f, 0.2f};
    OD_CHECK(od_mesh_make_sphere(0.5f, 16, 32, &sphere, &err) == 0);
    OD_CHECK(od_mesh_make_torus(0.3f, 0.12f, 32, 16, &torus, &err) == 0);
    OD_CHECK(od_mesh_make_box(bar_size, &bar, &err) == 0);
    make_three_part_shape(&parts);
    struct {
        od_synth_anomaly kind;
        const od_mesh *shape;
        const char *name;
    } cases[] = {{OD_SYNTH_ANOMALY_BEND, &torus, "bend"},         {OD_SYNTH_ANOMALY_TWIST, &bar, "twist"},
                 {OD_SYNTH_ANOMALY_FRACTURE, &sphere, "fracture"}, {OD_SYNTH_ANOMALY_CRACK, &sphere, "crack"},
                 {OD_SYNTH_ANOMALY_PART_MISSING, &parts, "missing"}, {OD_SYNTH_ANOMALY_TRANSLATED, &parts, "translated"},
                 {OD_SYNTH_ANOMALY_ROTATED, &parts, "rotated"}};
    int rejected = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        od_synth_anomaly parsed = OD_SYNTH_ANOMALY_RANDOM;
        OD_CHECK(od_synth_anomaly_parse(cases[c].name, &parsed) == 0 && parsed == cases[c].kind);
        od_synth_scene_options o = od_synth_scene_options_default();
        o.seed = 11;
        o.anomaly = cases[c].kind;
        o.object_count = 3;
        o.view_count = 4;
        o.image_size = 128;
        o.focal = 213.3333 * 128 / 256;
        o.object_size = 0.2;
        o.placement_radius = 0.25;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/kind_%s", od_test_temp_dir(), cases[c].name);
        od_synth_scene_stats stats = {0};
        int rc = od_synth_generate_scene(&o, cases[c].shape, "shape", dir, &stats, &err);
        if (rc != 0)
            printf("  %s: %s\n", cases[c].name, err.message);
        OD_CHECK(rc == 0);
        OD_CHECK(stats.anomaly_pixels >= o.min_anomaly_pixels);
        OD_CHECK(stats.kind == cases[c].kind);
        OD_CHECK(stats.rejected == stats.rejected_check + stats.rejected_hidden);
        printf("  %s: %lld pixels of the anomalous region in the best view, %d candidates rejected (%d by the "
               "check, %d hidden), %d redraws\n",
               cases[c].name, (long long)stats.anomaly_pixels, stats.rejected, stats.rejected_check,
               stats.rejected_hidden, stats.redrawn);
        rejected += stats.rejected;
        od_scene *scene = NULL;
        OD_CHECK(rc == 0 && od_scene_load(dir, NULL, &scene, &err) == 0);
        int anomalous = 0;
        for (int i = 0; scene && i < scene->object_count; i++)
            if (scene->objects[i].label == OD_LABEL_ANOMALOUS) {
                anomalous++;
                OD_CHECK(strcmp(scene->objects[i].anomaly_kind, cases[c].name) == 0);
            }
        OD_CHECK(anomalous == 1);
        od_scene_free(scene);
    }
    (void)rejected;
    /* A twist of a sphere never shows: every candidate is rejected, with the twist's own reason. */
    od_synth_scene_options o = od_synth_scene_options_default();
    o.anomaly = OD_SYNTH_ANOMALY_TWIST;
    o.object_count = 3;
    o.view_count = 1;
    o.image_size = 32;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/kind_twist_sphere", od_test_temp_dir());
    od_synth_scene_stats stats = {0};
    OD_CHECK(od_synth_generate_scene(&o, &sphere, "ball", dir, &stats, &err) != 0);
    OD_CHECK(strstr(err.message, "twist") != NULL);
    OD_CHECK(stats.rejected_check == 7 && stats.rejected_hidden == 0);
    od_synth_anomaly unknown;
    OD_CHECK(od_synth_anomaly_parse("dent", &unknown) != 0);
    od_mesh_free(&sphere);
    od_mesh_free(&torus);
    od_mesh_free(&bar);
    od_mesh_free(&parts);
}

int main(void)
{
    OD_RUN(test_generated_scene_loads);
    OD_RUN(test_all_normal_scene);
    OD_RUN(test_drawn_pose_scene);
    OD_RUN(test_material_swap_scene);
    OD_RUN(test_obj_shape_scene);
    OD_RUN(test_generate_errors);
    OD_RUN(test_bump_moves_vertices_outward);
    OD_RUN(test_geometric_kinds);
    return od_test_finish();
}
