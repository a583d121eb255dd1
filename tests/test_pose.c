/* Tests of synth/pose: the drop leaves a box, a cylinder, a cone and an L-shape on a face whose support
 * polygon contains the projection of the centre of mass, and a cone stood on its tip falls over. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/pose.h"
#include "testlib.h"

#define PI 3.14159265358979323846

/* A closed frustum about z from z = 0 (radius `bottom`) to z = height (radius `top`; 0 makes a cone
 * with one apex vertex), with `segments` sides, centred so its bounding box is about the origin. */
static void make_frustum(float bottom, float top, float height, int segments, od_mesh *mesh)
{
    od_error err = {{0}};
    int apex = top == 0;
    int64_t vertices = 2 + segments + (apex ? 1 : segments);
    int64_t faces = segments * (apex ? 2 : 4);
    OD_CHECK(od_mesh_new(vertices, faces, 0, 0, 0, mesh, &err) == 0);
    float *p = mesh->positions;
    /* 0: bottom centre, 1: top centre, 2..: bottom ring, then the top ring or the apex. */
    p[0] = p[1] = 0;
    p[2] = -height / 2;
    p[3] = p[4] = 0;
    p[5] = height / 2;
    for (int i = 0; i < segments; i++) {
        double a = 2 * PI * i / segments;
        float *b = p + (2 + i) * 3;
        b[0] = bottom * (float)cos(a);
        b[1] = bottom * (float)sin(a);
        b[2] = -height / 2;
        if (!apex) {
            float *t = p + (2 + segments + i) * 3;
            t[0] = top * (float)cos(a);
            t[1] = top * (float)sin(a);
            t[2] = height / 2;
        }
    }
    int32_t *f = mesh->faces;
    int64_t n = 0;
    for (int i = 0; i < segments; i++) {
        int32_t b0 = 2 + i, b1 = 2 + (i + 1) % segments;
        int32_t t0 = apex ? 1 : 2 + segments + i, t1 = apex ? 1 : 2 + segments + (i + 1) % segments;
        /* Bottom cap (facing -z), side, top cap (facing +z). */
        f[n * 3] = 0, f[n * 3 + 1] = b1, f[n * 3 + 2] = b0, n++;
        f[n * 3] = b0, f[n * 3 + 1] = b1, f[n * 3 + 2] = t1, n++;
        if (!apex) {
            f[n * 3] = b0, f[n * 3 + 1] = t1, f[n * 3 + 2] = t0, n++;
            f[n * 3] = 1, f[n * 3 + 1] = t0, f[n * 3 + 2] = t1, n++;
        }
    }
    OD_CHECK(n == faces);
}

/* Two boxes as one mesh: a foot 0.3 x 0.1 x 0.05 and a post 0.05 x 0.1 x 0.35 standing on its left end. */
static void make_l_shape(od_mesh *mesh)
{
    od_error err = {{0}};
    od_mesh foot = {0}, post = {0};
    const float foot_size[3] = {0.3f, 0.1f, 0.05f}, post_size[3] = {0.05f, 0.1f, 0.35f};
    OD_CHECK(od_mesh_make_box(foot_size, &foot, &err) == 0);
    OD_CHECK(od_mesh_make_box(post_size, &post, &err) == 0);
    OD_CHECK(od_mesh_new(foot.vertex_count + post.vertex_count, foot.face_count + post.face_count, 0, 0, 0, mesh,
                         &err) == 0);
    for (int64_t v = 0; v < foot.vertex_count; v++) {
        memcpy(mesh->positions + v * 3, foot.positions + v * 3, 3 * sizeof(float));
        mesh->positions[v * 3 + 2] += 0.025f;
    }
    for (int64_t v = 0; v < post.vertex_count; v++) {
        float *p = mesh->positions + (foot.vertex_count + v) * 3;
        memcpy(p, post.positions + v * 3, 3 * sizeof(float));
        p[0] += -0.125f;
        p[2] += 0.05f + 0.175f;
    }
    memcpy(mesh->faces, foot.faces, (size_t)foot.face_count * 3 * sizeof(int32_t));
    for (int64_t i = 0; i < post.face_count * 3; i++)
        mesh->faces[foot.face_count * 3 + i] = post.faces[i] + (int32_t)foot.vertex_count;
    od_mesh_free(&foot);
    od_mesh_free(&post);
}

/* Checks a rest pose on its own terms: rotated by it, the mesh's lowest vertices span a polygon that
 * contains the projection of the centre of mass (tested against 360 directions), and the centre of mass is
 * rest->height above them. */
static void check_stable(const od_mesh *mesh, const od_synth_rest *rest, const char *what)
{
    double size = 0;
    float min[3], max[3];
    od_mesh_bounds(mesh, min, max);
    for (int k = 0; k < 3; k++)
        size = fmax(size, (double)max[k] - min[k]);
    const double *R = rest->rotation;
    double *z = malloc((size_t)mesh->vertex_count * 3 * sizeof(double));
    double lowest = INFINITY;
    for (int64_t v = 0; v < mesh->vertex_count; v++) {
        const float *p = mesh->positions + v * 3;
        for (int r = 0; r < 3; r++)
            z[v * 3 + r] = R[r * 3] * p[0] + R[r * 3 + 1] * p[1] + R[r * 3 + 2] * p[2];
        lowest = fmin(lowest, z[v * 3 + 2]);
    }
    double c[3];
    for (int r = 0; r < 3; r++)
        c[r] = R[r * 3] * rest->centre_of_mass[0] + R[r * 3 + 1] * rest->centre_of_mass[1] +
               R[r * 3 + 2] * rest->centre_of_mass[2];
    OD_CHECK(fabs(c[2] - lowest - rest->height) < 1e-6 * size + 1e-9);
    int inside = 1;
    for (int i = 0; i < 360 && inside; i++) {
        double u[2] = {cos(i * PI / 180), sin(i * PI / 180)}, reach = -INFINITY;
        for (int64_t v = 0; v < mesh->vertex_count; v++)
            if (z[v * 3 + 2] - lowest <= 1e-4 * size)
                reach = fmax(reach, (z[v * 3] - c[0]) * u[0] + (z[v * 3 + 1] - c[1]) * u[1]);
        inside = reach > 0;
    }
    if (!inside)
        printf("  %s: the centre of mass lies outside the support polygon\n", what);
    OD_CHECK(inside);
    OD_CHECK(rest->support_area > 0);
    OD_CHECK(rest->height <= rest->start_height + 1e-9);
    /* A rotation: orthonormal rows, determinant 1. */
    for (int r = 0; r < 3; r++)
        for (int s = 0; s < 3; s++) {
            double dot = R[r * 3] * R[s * 3] + R[r * 3 + 1] * R[s * 3 + 1] + R[r * 3 + 2] * R[s * 3 + 2];
            OD_CHECK(fabs(dot - (r == s)) < 1e-9);
        }
    free(z);
}

static void test_box_rest(void)
{
    od_error err = {{0}};
    od_mesh box = {0};
    const float size[3] = {0.4f, 0.2f, 0.1f};
    OD_CHECK(od_mesh_make_box(size, &box, &err) == 0);
    double com[3];
    OD_CHECK(od_synth_centre_of_mass(&box, com, &err) == 0);
    OD_CHECK(fabs(com[0]) < 1e-6 && fabs(com[1]) < 1e-6 && fabs(com[2]) < 1e-6);
    /* Upright is stable and kept exactly. */
    od_synth_rest rest;
    OD_CHECK(od_synth_rest_pose(&box, NULL, &rest, &err) == 0);
    OD_CHECK(rest.steps == 0);
    OD_CHECK(fabs(rest.height - 0.05) < 1e-6);
    OD_CHECK(fabs(rest.support_area - 0.08) < 1e-6);
    const double identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (int i = 0; i < 9; i++)
        OD_CHECK(rest.rotation[i] == identity[i]);
    /* From drawn orientations it lands on a face: its centre of mass 0.05, 0.1 or 0.2 high. */
    int heights[3] = {0, 0, 0};
    for (uint64_t seed = 1; seed <= 60; seed++) {
        od_rng rng;
        od_rng_seed(&rng, seed);
        double start[9];
        od_synth_random_rotation(&rng, start);
        OD_CHECK(od_synth_rest_pose(&box, start, &rest, &err) == 0);
        check_stable(&box, &rest, "box");
        int which = fabs(rest.height - 0.05) < 1e-5 ? 0 : fabs(rest.height - 0.1) < 1e-5 ? 1 : fabs(rest.height - 0.2) < 1e-5 ? 2 : -1;
        OD_CHECK(which >= 0);
        if (which >= 0)
            heights[which]++;
    }
    printf("  box from 60 orientations: on the largest face %d times, the middle %d, the smallest %d\n",
           heights[0], heights[1], heights[2]);
    /* A drop favours the large faces. */
    OD_CHECK(heights[0] > heights[2]);
    od_mesh_free(&box);
}

static void test_cylinder_rest(void)
{
    od_error err = {{0}};
    od_mesh cylinder = {0};
    make_frustum(0.05f, 0.05f, 0.3f, 32, &cylinder);
    od_synth_rest rest;
    OD_CHECK(od_synth_rest_pose(&cylinder, NULL, &rest, &err) == 0);
    OD_CHECK(rest.steps == 0 && fabs(rest.height - 0.15) < 1e-5);
    int standing = 0, lying = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        od_rng rng;
        od_rng_seed(&rng, seed);
        double start[9];
        od_synth_random_rotation(&rng, start);
        OD_CHECK(od_synth_rest_pose(&cylinder, start, &rest, &err) == 0);
        check_stable(&cylinder, &rest, "cylinder");
        /* On a cap (0.15 high) or on a side facet (the apothem, 0.05 cos(pi / 32), high). A face is
         * reached within the contact tolerance, 1e-4 of the size, so it may tilt by that much. */
        standing += fabs(rest.height - 0.15) < 3e-5;
        lying += fabs(rest.height - 0.05 * cos(PI / 32)) < 3e-5;
    }
    printf("  cylinder from 40 orientations: standing %d, lying %d\n", standing, lying);
    OD_CHECK(standing + lying == 40);
    OD_CHECK(lying > standing);
    od_mesh_free(&cylinder);
}

static void test_cone_rest(void)
{
    od_error err = {{0}};
    od_mesh cone = {0};
    make_frustum(0.1f, 0.0f, 0.15f, 32, &cone);
    od_synth_rest rest;
    /* On its base, apex up: stable. The solid's centre of mass is a quarter of the height up. */
    OD_CHECK(od_synth_rest_pose(&cone, NULL, &rest, &err) == 0);
    OD_CHECK(rest.steps == 0);
    OD_CHECK(fabs(rest.height - 0.15 / 4) < 1e-4);
    /* On its tip, apex down (a half turn about x): it falls over, onto its side or its base. */
    const double flipped[9] = {1, 0, 0, 0, -1, 0, 0, 0, -1};
    OD_CHECK(od_synth_rest_pose(&cone, flipped, &rest, &err) == 0);
    check_stable(&cone, &rest, "cone on its tip");
    OD_CHECK(rest.steps > 0);
    OD_CHECK(rest.contacts >= 3);
    OD_CHECK(rest.height < rest.start_height - 0.01);
    printf("  cone on its tip: %d pivots, centre of mass %.4f -> %.4f high\n", rest.steps, rest.start_height,
           rest.height);
    od_mesh_free(&cone);
}

static void test_l_shape_rest(void)
{
    od_error err = {{0}};
    od_mesh shape = {0};
    make_l_shape(&shape);
    od_synth_rest rest;
    /* Upright on its foot: stable. */
    OD_CHECK(od_synth_rest_pose(&shape, NULL, &rest, &err) == 0);
    OD_CHECK(rest.steps == 0);
    /* Upside down on the post's top end: the centre of mass lies over the foot's side, outside the post's
     * 0.05 x 0.1 end, so it tips. */
    double com[3];
    OD_CHECK(od_synth_centre_of_mass(&shape, com, &err) == 0);
    OD_CHECK(com[0] > -0.1);
    const double flipped[9] = {1, 0, 0, 0, -1, 0, 0, 0, -1};
    OD_CHECK(od_synth_rest_pose(&shape, flipped, &rest, &err) == 0);
    check_stable(&shape, &rest, "L-shape upside down");
    OD_CHECK(rest.steps > 0);
    printf("  L-shape upside down: %d pivots, centre of mass %.4f -> %.4f high\n", rest.steps, rest.start_height,
           rest.height);
    for (uint64_t seed = 1; seed <= 30; seed++) {
        od_rng rng;
        od_rng_seed(&rng, seed);
        double start[9];
        od_synth_random_rotation(&rng, start);
        OD_CHECK(od_synth_rest_pose(&shape, start, &rest, &err) == 0);
        check_stable(&shape, &rest, "L-shape");
    }
    od_mesh_free(&shape);
}

static void test_pose_helpers(void)
{
    od_error err = {{0}};
    od_mesh empty = {0};
    od_synth_rest rest;
    OD_CHECK(od_synth_rest_pose(&empty, NULL, &rest, &err) != 0);
    OD_CHECK(strstr(err.message, "no faces") != NULL);
    /* Rotating a mesh moves its normals too. */
    od_mesh box = {0};
    const float size[3] = {1, 1, 1};
    OD_CHECK(od_mesh_make_box(size, &box, &err) == 0);
    const double quarter[9] = {0, -1, 0, 1, 0, 0, 0, 0, 1};
    float p[3], n[3];
    memcpy(p, box.positions, sizeof p);
    memcpy(n, box.normals, sizeof n);
    od_synth_rotate_mesh(&box, quarter);
    OD_CHECK(box.positions[0] == -p[1] && box.positions[1] == p[0] && box.positions[2] == p[2]);
    OD_CHECK(box.normals[0] == -n[1] && box.normals[1] == n[0] && box.normals[2] == n[2]);
    od_mesh_free(&box);

    /* A bar turned 30 degrees about z is turned back by the yaw alignment. */
    const float bar_size[3] = {1, 0.3f, 0.2f};
    OD_CHECK(od_mesh_make_box(bar_size, &box, &err) == 0);
    double a = 30 * PI / 180;
    const double yaw[9] = {cos(a), -sin(a), 0, sin(a), cos(a), 0, 0, 0, 1};
    od_synth_rotate_mesh(&box, yaw);
    double back[9];
    od_synth_yaw_alignment(&box, back);
    od_synth_rotate_mesh(&box, back);
    float min[3], max[3];
    od_mesh_bounds(&box, min, max);
    OD_CHECK(fabsf(max[0] - min[0] - 1) < 1e-5f && fabsf(max[1] - min[1] - 0.3f) < 1e-5f);
    od_mesh_free(&box);
}

int main(void)
{
    OD_RUN(test_box_rest);
    OD_RUN(test_cylinder_rest);
    OD_RUN(test_cone_rest);
    OD_RUN(test_l_shape_rest);
    OD_RUN(test_pose_helpers);
    return od_test_finish();
}
