/* Tests of synth/raster: coverage of the object id buffer against corners
 * projected with od_camera_project, depth values, perspective-correct
 * colour interpolation, occlusion, near-plane clipping, culling and thread
 * determinism. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geometry/box.h"
#include "synth/raster.h"
#include "testlib.h"

/* Sets a camera at `eye` looking at `target` with world z up, OpenCV axes. */
static void look_at(od_camera *camera, int width, int height, double focal, const double eye[3],
                    const double target[3])
{
    double f[3], right[3], down[3];
    double length = 0;
    for (int d = 0; d < 3; d++) {
        f[d] = target[d] - eye[d];
        length += f[d] * f[d];
    }
    for (int d = 0; d < 3; d++)
        f[d] /= sqrt(length);
    right[0] = f[1];
    right[1] = -f[0];
    right[2] = 0;
    length = sqrt(right[0] * right[0] + right[1] * right[1]);
    right[0] /= length;
    right[1] /= length;
    down[0] = f[1] * right[2] - f[2] * right[1];
    down[1] = f[2] * right[0] - f[0] * right[2];
    down[2] = f[0] * right[1] - f[1] * right[0];
    memset(camera, 0, sizeof *camera);
    camera->width = width;
    camera->height = height;
    /* A principal point off the pixel grid keeps projected corners off sample centres. */
    double K[9] = {focal, 0, width / 2.0 - 0.37, 0, focal, height / 2.0 + 0.21, 0, 0, 1};
    memcpy(camera->K, K, sizeof K);
    const double *rows[3] = {right, down, f};
    for (int i = 0; i < 3; i++) {
        double t = 0;
        for (int d = 0; d < 3; d++) {
            camera->world_to_camera[i * 4 + d] = rows[i][d];
            t -= rows[i][d] * eye[d];
        }
        camera->world_to_camera[i * 4 + 3] = t;
    }
    camera->world_to_camera[15] = 1;
}

static od_raster_options flat_options(void)
{
    od_raster_options o = od_raster_options_default();
    o.draw_floor = 0;
    o.ambient = 1;
    o.specular = 0;
    return o;
}

static void identity(double m[16])
{
    memset(m, 0, 16 * sizeof(double));
    m[0] = m[5] = m[10] = m[15] = 1;
}

/* Returns 1 when (x, y) and its four neighbours at +-margin are all inside
 * the convex polygon, 0 when none is, -1 when it is too close to call. */
static int classify(const double *hull, int count, double x, double y, double margin)
{
    double offsets[5][2] = {{0, 0}, {margin, 0}, {-margin, 0}, {0, margin}, {0, -margin}};
    int inside = 0;
    for (int k = 0; k < 5; k++)
        inside += od_convex_polygon_contains(hull, count, x + offsets[k][0], y + offsets[k][1]);
    if (inside == 5)
        return 1;
    if (inside == 0)
        return 0;
    return -1;
}

/* Checks the id buffer against the hull of projected world points for object `id`. */
static void check_coverage(const od_raster_frame *frame, const od_camera *camera, const double (*points)[3],
                           int point_count, int32_t id, double margin, int *covered_out)
{
    double projected[16], hull[16];
    for (int i = 0; i < point_count; i++)
        OD_CHECK(od_camera_project(camera, points[i], projected + 2 * i, NULL) == 1);
    int n = od_convex_hull_2d(projected, point_count, hull);
    int wrong = 0, covered = 0, unsure = 0;
    for (int y = 0; y < frame->height; y++)
        for (int x = 0; x < frame->width; x++) {
            int c = classify(hull, n, x, y, margin);
            int32_t got = frame->object_ids[y * frame->width + x];
            if (c < 0) {
                unsure++;
                continue;
            }
            if ((c == 1) != (got == id))
                wrong++;
            covered += c == 1;
        }
    if (wrong)
        printf("  %d pixels disagree with the projected outline (%d inside, %d on the edge)\n", wrong, covered,
               unsure);
    OD_CHECK(wrong == 0);
    /* The margin band along the outline is a minority of the pixels. */
    OD_CHECK(unsure < covered);
    *covered_out = covered;
}

static void make_triangle(od_mesh *mesh, const float corners[9])
{
    od_error err;
    OD_CHECK(od_mesh_new(3, 1, 0, 0, 0, mesh, &err) == 0);
    memcpy(mesh->positions, corners, 9 * sizeof(float));
    mesh->faces[0] = 0;
    mesh->faces[1] = 1;
    mesh->faces[2] = 2;
}

static void test_triangle_coverage_exact(void)
{
    od_camera camera;
    double eye[3] = {0.3, -0.9, 0.7}, target[3] = {0, 0, 0.05};
    look_at(&camera, 96, 72, 80, eye, target);
    float corners[9] = {-0.2f, -0.1f, 0.0f, 0.25f, 0.05f, 0.1f, -0.05f, 0.2f, 0.3f};
    od_mesh mesh;
    make_triangle(&mesh, corners);
    od_raster_object object = {.mesh = &mesh, .color = {1, 0, 0}};
    identity(object.model_to_world);
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    od_error err = {{0}};
    od_raster_options o = flat_options();
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
    double points[3][3];
    for (int i = 0; i < 9; i++)
        points[i / 3][i % 3] = corners[i];
    int covered = 0;
    /* 1e-3 pixel: the rasterizer projects float camera-space positions, so
     * its edges can differ from the double projection by about 1e-5 pixel. */
    check_coverage(&frame, &camera, points, 3, 1, 1e-3, &covered);
    OD_CHECK(covered > 200);
    /* Covered pixels are the object's colour (ambient 1 means the albedo). */
    int wrong_colour = 0;
    for (int i = 0; i < frame.width * frame.height; i++) {
        const float *p = frame.rgb.pixels + i * 3;
        int is_object = frame.object_ids[i] == 1;
        if (is_object && !(p[0] == 1 && p[1] == 0 && p[2] == 0))
            wrong_colour++;
        if (!is_object && !(p[0] == 1 && p[1] == 1 && p[2] == 1))
            wrong_colour++;
        if (!is_object && frame.depth[i] != 0)
            wrong_colour++;
    }
    OD_CHECK(wrong_colour == 0);

    /* Supersampled 4x4, the id is the majority of 16 samples, so it can only
     * differ from the exact outline within about half a pixel of an edge. */
    o.supersample = 4;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
    check_coverage(&frame, &camera, points, 3, 1, 0.75, &covered);
    OD_CHECK(covered > 150);
    /* An edge pixel mixes object and background. */
    int mixed = 0;
    for (int i = 0; i < frame.width * frame.height; i++)
        mixed += frame.rgb.pixels[i * 3 + 1] > 0.05f && frame.rgb.pixels[i * 3 + 1] < 0.95f;
    OD_CHECK(mixed > 20);

    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
    od_mesh_free(&mesh);
}

static void test_box_coverage_and_depth(void)
{
    od_camera camera;
    double eye[3] = {-0.5, -0.6, 0.5}, target[3] = {0.02, 0.01, 0.06};
    look_at(&camera, 128, 96, 110, eye, target);
    od_mesh box;
    od_error err = {{0}};
    float size[3] = {0.2f, 0.12f, 0.1f};
    OD_CHECK(od_mesh_make_box(size, &box, &err) == 0);
    od_raster_object object = {.mesh = &box, .color = {0.2f, 0.5f, 0.9f}};
    double translation[3] = {0.03, -0.02, 0.05};
    od_raster_pose(1.0, 0.4, translation, object.model_to_world);
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    od_raster_options o = od_raster_options_default();
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
    od_box gt = {.center = {0.03, -0.02, 0.05}, .size = {0.2, 0.12, 0.1}, .yaw = 0.4};
    double corners[8][3];
    od_box_corners(&gt, corners);
    int covered = 0;
    check_coverage(&frame, &camera, (const double(*)[3])corners, 8, 1, 1e-3, &covered);
    OD_CHECK(covered > 300);

    /* Depth at every object pixel: the nearest box face along the pixel's
     * ray. Depth is stored in whole millimetres, so allow 1 mm of rounding. */
    const double *w = camera.world_to_camera;
    double centre[3];
    od_camera_center(&camera, centre);
    int checked = 0, wrong = 0, floor_wrong = 0;
    for (int y = 0; y < frame.height; y++)
        for (int x = 0; x < frame.width; x++) {
            double d_cam[3] = {(x - camera.K[2]) / camera.K[0], (y - camera.K[5]) / camera.K[4], 1};
            double dir[3];
            for (int a = 0; a < 3; a++)
                dir[a] = w[a] * d_cam[0] + w[4 + a] * d_cam[1] + w[8 + a] * d_cam[2];
            /* Ray against the box, in the box's frame (slab test). */
            double c = cos(-gt.yaw), s = sin(-gt.yaw);
            double o_local[3] = {centre[0] - gt.center[0], centre[1] - gt.center[1], centre[2] - gt.center[2]};
            double ol[3] = {c * o_local[0] - s * o_local[1], s * o_local[0] + c * o_local[1], o_local[2]};
            double dl[3] = {c * dir[0] - s * dir[1], s * dir[0] + c * dir[1], dir[2]};
            double t_near = -INFINITY, t_far = INFINITY;
            for (int a = 0; a < 3; a++) {
                double t1 = (-gt.size[a] / 2 - ol[a]) / dl[a], t2 = (gt.size[a] / 2 - ol[a]) / dl[a];
                t_near = fmax(t_near, fmin(t1, t2));
                t_far = fmin(t_far, fmax(t1, t2));
            }
            int pixel = y * frame.width + x;
            if (frame.object_ids[pixel] == 1 && t_near < t_far) {
                checked++;
                /* d_cam has z = 1, so the ray parameter is the depth. */
                if (fabs(frame.depth[pixel] - t_near * 1000) > 1.0)
                    wrong++;
            } else if (frame.object_ids[pixel] == 0 && dir[2] < 0) {
                double t = -centre[2] / dir[2];
                if (fabs(frame.depth[pixel] - t * 1000) > 1.0)
                    floor_wrong++;
            }
        }
    OD_CHECK(checked > 300);
    OD_CHECK(wrong == 0);
    OD_CHECK(floor_wrong == 0);
    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
    od_mesh_free(&box);
}

static void test_perspective_correct_colour(void)
{
    /* A quad tilted away from the camera whose red channel is linear in
     * world x: screen-linear interpolation would be wrong by several
     * percent in the middle, the perspective-correct one by float error. */
    od_camera camera;
    double eye[3] = {0, -0.6, 0.25}, target[3] = {0, 0.3, 0};
    look_at(&camera, 80, 60, 70, eye, target);
    od_mesh quad;
    od_error err = {{0}};
    OD_CHECK(od_mesh_new(4, 2, 0, 0, 1, &quad, &err) == 0);
    float positions[12] = {-0.3f, -0.2f, 0.01f, 0.3f, -0.2f, 0.01f, 0.3f, 1.5f, 0.01f, -0.3f, 1.5f, 0.01f};
    memcpy(quad.positions, positions, sizeof positions);
    int32_t faces[6] = {0, 1, 2, 0, 2, 3};
    memcpy(quad.faces, faces, sizeof faces);
    for (int v = 0; v < 4; v++) {
        quad.colors[v * 3 + 0] = (positions[v * 3 + 1] + 0.2f) / 1.7f; /* red linear in world y (depth) */
        quad.colors[v * 3 + 1] = (positions[v * 3] + 0.3f) / 0.6f;    /* green linear in world x */
        quad.colors[v * 3 + 2] = 0.5f;
    }
    od_raster_object object = {.mesh = &quad};
    identity(object.model_to_world);
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    od_raster_options o = flat_options();
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
    const double *w = camera.world_to_camera;
    double centre[3];
    od_camera_center(&camera, centre);
    float worst = 0;
    int checked = 0;
    for (int y = 0; y < frame.height; y++)
        for (int x = 0; x < frame.width; x++) {
            int pixel = y * frame.width + x;
            if (frame.object_ids[pixel] != 1)
                continue;
            double d_cam[3] = {(x - camera.K[2]) / camera.K[0], (y - camera.K[5]) / camera.K[4], 1};
            double dir[3];
            for (int a = 0; a < 3; a++)
                dir[a] = w[a] * d_cam[0] + w[4 + a] * d_cam[1] + w[8 + a] * d_cam[2];
            double t = (0.01 - centre[2]) / dir[2];
            double hit[3] = {centre[0] + t * dir[0], centre[1] + t * dir[1], centre[2] + t * dir[2]};
            float want[2] = {(float)((hit[1] + 0.2) / 1.7), (float)((hit[0] + 0.3) / 0.6)};
            for (int c = 0; c < 2; c++)
                worst = fmaxf(worst, fabsf(frame.rgb.pixels[pixel * 3 + c] - want[c]));
            checked++;
        }
    /* 1e-4: float barycentrics over a 60-pixel-deep perspective ramp. */
    OD_CHECK(checked > 1000);
    OD_CHECK(worst < 1e-4f);
    if (worst >= 1e-4f)
        printf("  worst colour error %g over %d pixels\n", (double)worst, checked);
    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
    od_mesh_free(&quad);
}

static void test_occlusion_hides_object(void)
{
    od_camera camera;
    double eye[3] = {0, -1.0, 0.05}, target[3] = {0, 0, 0.05};
    look_at(&camera, 128, 96, 200, eye, target);
    od_mesh big, small;
    od_error err = {{0}};
    float big_size[3] = {0.3f, 0.05f, 0.3f}, small_size[3] = {0.05f, 0.05f, 0.05f};
    OD_CHECK(od_mesh_make_box(big_size, &big, &err) == 0);
    OD_CHECK(od_mesh_make_box(small_size, &small, &err) == 0);
    od_raster_object objects[2] = {{.mesh = &small, .color = {1, 0, 0}}, {.mesh = &big, .color = {0, 1, 0}}};
    double behind[3] = {0, 0.3, 0.05}, in_front[3] = {0, 0, 0.05};
    od_raster_pose(1, 0, behind, objects[0].model_to_world);
    od_raster_pose(1, 0, in_front, objects[1].model_to_world);
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    od_raster_options o = od_raster_options_default();
    OD_CHECK(od_rasterizer_render(r, &camera, objects, 2, &o, &frame, &err) == 0);
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < frame.width * frame.height; i++)
        counts[frame.object_ids[i]]++;
    OD_CHECK(counts[1] == 0);
    OD_CHECK(counts[2] > 100);

    /* Alone, the small box is visible; half behind the big one, fewer pixels. */
    OD_CHECK(od_rasterizer_render(r, &camera, objects, 1, &o, &frame, &err) == 0);
    int alone = 0;
    for (int i = 0; i < frame.width * frame.height; i++)
        alone += frame.object_ids[i] == 1;
    OD_CHECK(alone > 20);
    double half_hidden[3] = {0.2, 0.3, 0.05};
    od_raster_pose(1, 0, half_hidden, objects[0].model_to_world);
    OD_CHECK(od_rasterizer_render(r, &camera, objects, 2, &o, &frame, &err) == 0);
    int partly = 0;
    for (int i = 0; i < frame.width * frame.height; i++)
        partly += frame.object_ids[i] == 1;
    OD_CHECK(partly > 0 && partly < alone);
    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
    od_mesh_free(&big);
    od_mesh_free(&small);
}

static void test_near_plane_clipping(void)
{
    /* A square of floor 200 m wide reaches behind the camera; clipped, it
     * must cover exactly the pixels whose rays reach z = 0. */
    od_camera camera;
    double eye[3] = {0, -0.8, 0.6}, target[3] = {0, 0, 0};
    look_at(&camera, 64, 48, 40, eye, target);
    od_mesh quad;
    od_error err = {{0}};
    OD_CHECK(od_mesh_new(4, 2, 0, 0, 0, &quad, &err) == 0);
    float positions[12] = {-100, -100, 0, 100, -100, 0, 100, 100, 0, -100, 100, 0};
    memcpy(quad.positions, positions, sizeof positions);
    int32_t faces[6] = {0, 1, 2, 0, 2, 3};
    memcpy(quad.faces, faces, sizeof faces);
    od_raster_object object = {.mesh = &quad, .color = {0.5f, 0.5f, 0.5f}};
    identity(object.model_to_world);
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    od_raster_options o = flat_options();
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
    const double *w = camera.world_to_camera;
    int wrong = 0, hits = 0;
    for (int y = 0; y < frame.height; y++)
        for (int x = 0; x < frame.width; x++) {
            double d_cam[3] = {(x - camera.K[2]) / camera.K[0], (y - camera.K[5]) / camera.K[4], 1};
            double dir_z = w[2] * d_cam[0] + w[6] * d_cam[1] + w[10] * d_cam[2];
            /* Rays within 1e-3 of the horizon hit beyond the square's edge or nearly so. */
            if (fabs(dir_z) < 0.05)
                continue;
            int hit = dir_z < 0;
            hits += hit;
            wrong += hit != (frame.object_ids[y * frame.width + x] == 1);
        }
    OD_CHECK(hits > 100);
    OD_CHECK(wrong == 0);
    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
    od_mesh_free(&quad);
}

static void test_culling_and_threads(void)
{
    od_camera camera;
    double eye[3] = {0.4, -0.7, 0.45}, target[3] = {0, 0, 0.08};
    look_at(&camera, 100, 80, 90, eye, target);
    od_mesh sphere;
    od_error err = {{0}};
    OD_CHECK(od_mesh_make_sphere(0.08f, 12, 24, &sphere, &err) == 0);
    od_raster_object object = {.mesh = &sphere, .color = {0.8f, 0.3f, 0.1f}};
    double translation[3] = {0, 0, 0.08};
    od_raster_pose(1, 0.3, translation, object.model_to_world);
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame a = {0}, b = {0};
    od_raster_options o = od_raster_options_default();
    o.supersample = 2;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &a, &err) == 0);
    /* Culling back faces of a closed convex mesh changes nothing, which
     * also checks which winding the rasterizer takes for front faces. */
    o.cull_back_faces = 1;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &b, &err) == 0);
    OD_CHECK_IDENTICAL("culled rgb", a.rgb.pixels, b.rgb.pixels, (int64_t)a.width * a.height * 3);
    OD_CHECK(memcmp(a.object_ids, b.object_ids, (size_t)a.width * a.height * sizeof(int32_t)) == 0);
    int visible = 0;
    for (int i = 0; i < a.width * a.height; i++)
        visible += a.object_ids[i] == 1;
    OD_CHECK(visible > 150);

    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &b, &err) == 0);
    omp_set_num_threads(threads > 1 ? threads : 2);
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &a, &err) == 0);
    omp_set_num_threads(threads);
    OD_CHECK_IDENTICAL("rgb across thread counts", a.rgb.pixels, b.rgb.pixels, (int64_t)a.width * a.height * 3);
    OD_CHECK(memcmp(a.depth, b.depth, (size_t)a.width * a.height * sizeof(uint16_t)) == 0);
    od_raster_frame_free(&a);
    od_raster_frame_free(&b);
    od_rasterizer_free(r);
    od_mesh_free(&sphere);
}

/* Marks follow the marked faces: all faces marked give the object's pixels, the upper half of a sphere
 * gives pixels above its equator only, none marked gives none. */
static void test_face_marks(void)
{
    od_camera camera;
    double eye[3] = {0.0, -0.6, 0.1}, target[3] = {0, 0, 0.1};
    look_at(&camera, 80, 80, 120, eye, target);
    od_mesh sphere;
    od_error err = {{0}};
    OD_CHECK(od_mesh_make_sphere(0.08f, 12, 24, &sphere, &err) == 0);
    uint8_t *marks = calloc((size_t)sphere.face_count, 1);
    od_raster_object object = {.mesh = &sphere, .color = {0.8f, 0.3f, 0.1f}, .face_marks = marks};
    double translation[3] = {0, 0, 0.1};
    od_raster_pose(1, 0, translation, object.model_to_world);
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    od_raster_options o = flat_options();
    int64_t pixels = (int64_t)camera.width * camera.height;
    for (int mode = 0; mode < 3; mode++) {
        for (int64_t f = 0; f < sphere.face_count; f++) {
            float z = 0;
            for (int k = 0; k < 3; k++)
                z += sphere.positions[sphere.faces[f * 3 + k] * 3 + 2];
            marks[f] = mode == 1 || (mode == 2 && z > 0);
        }
        OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
        int64_t marked = 0, object_pixels = 0, below = 0;
        for (int64_t p = 0; p < pixels; p++) {
            marked += frame.marks[p];
            object_pixels += frame.object_ids[p] == 1;
            /* The equator projects onto row 40 - 0.21 + ..., about the image's middle row. */
            below += frame.marks[p] && p / camera.width > camera.height / 2 + 1;
        }
        if (mode == 0)
            OD_CHECK(marked == 0);
        if (mode == 1)
            OD_CHECK(marked == object_pixels && marked > 300);
        if (mode == 2) {
            OD_CHECK(marked > object_pixels / 3 && marked < object_pixels * 2 / 3);
            OD_CHECK(below == 0);
        }
    }
    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
    od_mesh_free(&sphere);
    free(marks);
}

static void test_shadow_on_floor(void)
{
    /* A 10 cm cube lit from +x at 45 degrees casts a shadow 10 cm long
     * towards -x. Floor points in it get ambient light only. */
    od_camera camera;
    double eye[3] = {0.05, -0.7, 0.6}, target[3] = {0, 0, 0};
    look_at(&camera, 128, 96, 120, eye, target);
    od_mesh cube;
    od_error err = {{0}};
    float size[3] = {0.1f, 0.1f, 0.1f};
    OD_CHECK(od_mesh_make_box(size, &cube, &err) == 0);
    od_raster_object object = {.mesh = &cube, .color = {1, 1, 1}};
    double translation[3] = {0, 0, 0.05};
    od_raster_pose(1, 0, translation, object.model_to_world);
    od_raster_options o = od_raster_options_default();
    o.floor_check_size = 0;
    o.light_direction[0] = 1;
    o.light_direction[1] = 0;
    o.light_direction[2] = 1;
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
    /* Floor albedo 0.75: lit it is 0.75 (0.3 + 0.7 cos 45 deg), in shadow 0.75 * 0.3. */
    const float lit = 0.75f * (0.3f + 0.7f * 0.70710678f), dark = 0.75f * 0.3f;
    static const struct {
        double point[3];
        int shadowed;
    } cases[] = {
        {{-0.10, 0.0, 0}, 1},  {{-0.13, -0.03, 0}, 1}, {{-0.07, 0.03, 0}, 1},
        {{0.15, 0.0, 0}, 0},   {{-0.10, 0.12, 0}, 0},  {{-0.20, 0.0, 0}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double pixel[2];
        OD_CHECK(od_camera_project(&camera, cases[i].point, pixel, NULL) == 1);
        int x = (int)lround(pixel[0]), y = (int)lround(pixel[1]);
        OD_CHECK(x >= 0 && x < frame.width && y >= 0 && y < frame.height);
        if (x < 0 || x >= frame.width || y < 0 || y >= frame.height)
            continue;
        int index = y * frame.width + x;
        OD_CHECK(frame.object_ids[index] == 0);
        float want = cases[i].shadowed ? dark : lit;
        /* 1e-5: float shading of a constant factor. */
        if (fabsf(frame.rgb.pixels[index * 3] - want) > 1e-5f) {
            printf("  case %zu: pixel (%d, %d) is %g, expected %g\n", i, x, y, (double)frame.rgb.pixels[index * 3],
                   (double)want);
            OD_CHECK(0);
        }
    }
    /* Without a shadow map the same point is lit. */
    o.shadow_map_size = 0;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
    double pixel[2];
    OD_CHECK(od_camera_project(&camera, cases[0].point, pixel, NULL) == 1);
    int index = (int)lround(pixel[1]) * frame.width + (int)lround(pixel[0]);
    OD_CHECK(fabsf(frame.rgb.pixels[index * 3] - lit) < 1e-5f);
    /* The cube's top faces the light at 45 degrees and is not shadowed by itself. */
    double top[3] = {0.0, 0.0, 0.1};
    o.shadow_map_size = 512;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) == 0);
    OD_CHECK(od_camera_project(&camera, top, pixel, NULL) == 1);
    index = (int)lround(pixel[1]) * frame.width + (int)lround(pixel[0]);
    OD_CHECK(frame.object_ids[index] == 1);
    float top_want = 0.3f + 0.7f * 0.70710678f;
    OD_CHECK(frame.rgb.pixels[index * 3] >= top_want - 1e-4f);
    o.shadow_map_size = 7;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) != 0);
    OD_CHECK(strstr(err.message, "shadow map size 7") != NULL);
    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
    od_mesh_free(&cube);
}

/* Each floor pattern stays between its two colours (lit by ambient 1, no light), the plain floor is
 * one colour, and the background brightens from background at the horizon to background_top above. */
static void test_floor_patterns_and_background(void)
{
    od_camera camera;
    double eye[3] = {0, -1, 0.15}, target[3] = {0, 0, 0.1};
    look_at(&camera, 48, 48, 40, eye, target);
    od_error err = {{0}};
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    od_raster_options o = flat_options();
    o.draw_floor = 1;
    o.shadow_map_size = 0;
    const float light[3] = {0.8f, 0.6f, 0.4f}, dark[3] = {0.2f, 0.3f, 0.1f};
    memcpy(o.floor_color, light, sizeof light);
    memcpy(o.floor_color2, dark, sizeof dark);
    o.floor_check_size = 0.05f;
    o.floor_angle = 0.4f;
    const float horizon[3] = {0.9f, 0.9f, 0.9f}, top[3] = {0.1f, 0.2f, 0.9f};
    memcpy(o.background, horizon, sizeof horizon);
    memcpy(o.background_top, top, sizeof top);
    int64_t pixels = (int64_t)camera.width * camera.height;
    for (int pattern = OD_RASTER_FLOOR_CHECKER; pattern <= OD_RASTER_FLOOR_NOISE; pattern++) {
        o.floor_pattern = pattern;
        OD_CHECK(od_rasterizer_render(r, &camera, NULL, 0, &o, &frame, &err) == 0);
        float low = 2, high = -1;
        int floor_pixels = 0, between = 1;
        for (int64_t p = 0; p < pixels; p++) {
            if (frame.depth[p] == 0)
                continue;
            floor_pixels++;
            for (int c = 0; c < 3; c++) {
                float v = frame.rgb.pixels[p * 3 + c];
                float lo = fminf(light[c], dark[c]) - 1e-4f, hi = fmaxf(light[c], dark[c]) + 1e-4f;
                between &= v >= lo && v <= hi;
            }
            low = fminf(low, frame.rgb.pixels[p * 3]);
            high = fmaxf(high, frame.rgb.pixels[p * 3]);
        }
        OD_CHECK(floor_pixels > pixels / 3);
        OD_CHECK(between);
        if (pattern == OD_RASTER_FLOOR_PLAIN)
            OD_CHECK(low == light[0] && high == light[0]);
        else
            OD_CHECK(high - low > 0.2f); /* the pattern shows */
    }
    /* Above the horizon the rows nearer the top of the image are nearer background_top. */
    o.draw_floor = 0;
    OD_CHECK(od_rasterizer_render(r, &camera, NULL, 0, &o, &frame, &err) == 0);
    float top_blue = frame.rgb.pixels[(0 * camera.width + 24) * 3 + 2];
    float top_red = frame.rgb.pixels[(0 * camera.width + 24) * 3];
    float bottom_red = frame.rgb.pixels[((int64_t)(camera.height - 1) * camera.width + 24) * 3];
    OD_CHECK(top_red < 0.9f - 0.05f);
    OD_CHECK(fabsf(top_blue - 0.9f) < 1e-5f);
    OD_CHECK(fabsf(bottom_red - 0.9f) < 1e-5f); /* below the horizon */
    o.floor_pattern = 9;
    OD_CHECK(od_rasterizer_render(r, &camera, NULL, 0, &o, &frame, &err) != 0);
    OD_CHECK(strstr(err.message, "floor pattern 9") != NULL);
    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
}

static void test_invalid_arguments(void)
{
    od_camera camera;
    double eye[3] = {0, -1, 0.5}, target[3] = {0, 0, 0};
    look_at(&camera, 32, 32, 30, eye, target);
    od_mesh box;
    od_error err = {{0}};
    float size[3] = {0.1f, 0.1f, 0.1f};
    OD_CHECK(od_mesh_make_box(size, &box, &err) == 0);
    od_raster_object object = {.mesh = &box};
    identity(object.model_to_world);
    od_rasterizer *r = od_rasterizer_new();
    od_raster_frame frame = {0};
    od_raster_options o = od_raster_options_default();
    o.supersample = 5;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) != 0);
    OD_CHECK(strstr(err.message, "supersample 5") != NULL);
    o = od_raster_options_default();
    box.faces[7] = 24;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) != 0);
    OD_CHECK(strstr(err.message, "face 2: vertex index 24 out of range") != NULL);
    box.faces[7] = 0;
    object.mesh = NULL;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) != 0);
    OD_CHECK(strstr(err.message, "object 0 has no mesh") != NULL);
    object.mesh = &box;
    camera.K[0] = -1;
    OD_CHECK(od_rasterizer_render(r, &camera, &object, 1, &o, &frame, &err) != 0);
    OD_CHECK(strstr(err.message, "raster camera") != NULL);
    od_raster_frame_free(&frame);
    od_rasterizer_free(r);
    od_mesh_free(&box);
}

int main(void)
{
    OD_RUN(test_triangle_coverage_exact);
    OD_RUN(test_box_coverage_and_depth);
    OD_RUN(test_perspective_correct_colour);
    OD_RUN(test_occlusion_hides_object);
    OD_RUN(test_near_plane_clipping);
    OD_RUN(test_culling_and_threads);
    OD_RUN(test_face_marks);
    OD_RUN(test_shadow_on_floor);
    OD_RUN(test_floor_patterns_and_background);
    OD_RUN(test_invalid_arguments);
    return od_test_finish();
}
