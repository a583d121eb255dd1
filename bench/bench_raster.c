/* Rendering speed of the scene generator's rasterizer: 256 x 256 views of
 * a scene of five objects of about 5,000 triangles each (UV spheres and
 * tori, procedurally made) on a checked floor with shadows, with 1, 2x2
 * and 4x4 samples per pixel. More cases draw the generator's looks (a
 * noise floor and a background that brightens upwards) and rebuild the
 * shadow map for every view. The last two write the RGB view and the five
 * object masks as PNG files, synced one by one or once per eight views. Each
 * case cycles through eight cameras on a hemisphere. Besides the BENCH
 * lines it prints views per second, and the CPU seconds per view, which
 * give the speed on an idle machine (threads / CPU seconds) when other
 * work shares the cores. Run it with OMP_NUM_THREADS=2 for the
 * generator's target of 50 views per second on 2 cores. There is no
 * PyTorch peer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "benchlib.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "synth/raster.h"

#define VIEW_SIDE 256
#define CAMERA_COUNT 8
#define OBJECT_COUNT 5

typedef struct render_case {
    od_rasterizer *rasterizer;
    od_camera cameras[CAMERA_COUNT];
    od_raster_object objects[OBJECT_COUNT];
    od_raster_options options;
    od_raster_frame frame;
    int next_camera;
    int write_files;
    int batch_sync; /* 1: sync the folder once per cycle of cameras instead of each file */
    int rebuild_shadows;
    char folder[512];
} render_case;

static void fail(const char *message)
{
    fprintf(stderr, "bench_raster: %s\n", message);
    exit(1);
}

/* A camera on a sphere of `radius` about (0, 0, 0.05) at the given
 * azimuth and elevation (radians), looking at that point, OpenCV axes. */
static void hemisphere_camera(double azimuth, double elevation, double radius, od_camera *camera)
{
    double target[3] = {0, 0, 0.05};
    double eye[3] = {target[0] + radius * cos(elevation) * cos(azimuth),
                     target[1] + radius * cos(elevation) * sin(azimuth), target[2] + radius * sin(elevation)};
    memset(camera, 0, sizeof *camera);
    camera->width = camera->height = VIEW_SIDE;
    double K[9] = {280, 0, 127.5, 0, 280, 127.5, 0, 0, 1};
    memcpy(camera->K, K, sizeof K);
    od_camera_look_at(camera, eye, target);
}

static void render_once(void *context)
{
    render_case *c = context;
    od_error err;
    const od_camera *camera = &c->cameras[c->next_camera];
    if (c->rebuild_shadows)
        od_rasterizer_invalidate_shadows(c->rasterizer);
    if (od_rasterizer_render(c->rasterizer, camera, c->objects, OBJECT_COUNT, &c->options, &c->frame, &err) != 0)
        fail(err.message);
    if (c->write_files) {
        char path[600];
        snprintf(path, sizeof path, "%s/%04d.png", c->folder, c->next_camera);
        if (od_image_write_png(path, &c->frame.rgb, &err) != 0)
            fail(err.message);
        od_image mask;
        if (od_image_new(VIEW_SIDE, VIEW_SIDE, 1, &mask, &err) != 0)
            fail(err.message);
        for (int object = 0; object < OBJECT_COUNT; object++) {
            for (int i = 0; i < VIEW_SIDE * VIEW_SIDE; i++)
                mask.pixels[i] = c->frame.object_ids[i] == object + 1 ? 1.0f : 0.0f;
            snprintf(path, sizeof path, "%s/object%d_%04d.png", c->folder, object, c->next_camera);
            if (od_image_write_png(path, &mask, &err) != 0)
                fail(err.message);
        }
        od_image_free(&mask);
        if (c->batch_sync && c->next_camera == CAMERA_COUNT - 1 && od_atomic_sync_folder(c->folder, &err) != 0)
            fail(err.message);
    }
    c->next_camera = (c->next_camera + 1) % CAMERA_COUNT;
}

static void run_case(render_case *c, const char *name, int supersample, int write_files)
{
    c->options.supersample = supersample;
    c->write_files = write_files;
    c->next_camera = 0;
    int previous = od_atomic_set_sync(!c->batch_sync);
    clock_t cpu_start = clock();
    double wall_start = bench_now_ms();
    double ms = bench_median_ms(render_once, c, 4, 32);
    double cpu_per_view = (double)(clock() - cpu_start) / CLOCKS_PER_SEC / 36;
    double wall_per_view = (bench_now_ms() - wall_start) / 1000 / 36;
    od_atomic_set_sync(previous);
    bench_report(name, ms, 0);
    int threads = omp_get_max_threads();
    fprintf(stderr, "%s: %.1f views/s (median), %.1f views/s (mean), %.1f CPU ms per view, %.1f views/s on %d idle "
                    "threads\n",
            name, 1000.0 / ms, 1 / wall_per_view, 1000 * cpu_per_view, threads / cpu_per_view, threads);
}

int main(void)
{
    od_error err;
    od_mesh meshes[OBJECT_COUNT];
    /* 2 * 72 * 35 = 5040 triangles per sphere, 2 * 70 * 36 = 5040 per torus. */
    for (int i = 0; i < OBJECT_COUNT; i++) {
        int rc = i % 2 == 0 ? od_mesh_make_sphere(0.05f, 36, 72, &meshes[i], &err)
                            : od_mesh_make_torus(0.05f, 0.02f, 70, 36, &meshes[i], &err);
        if (rc != 0)
            fail(err.message);
    }
    render_case c;
    memset(&c, 0, sizeof c);
    c.rasterizer = od_rasterizer_new();
    if (!c.rasterizer)
        fail("out of memory");
    c.options = od_raster_options_default();
    long triangles = 0;
    for (int i = 0; i < OBJECT_COUNT; i++) {
        double angle = 2 * 3.14159265358979 * i / OBJECT_COUNT;
        double translation[3] = {0.18 * cos(angle), 0.18 * sin(angle), i % 2 == 0 ? 0.05 : 0.02};
        od_raster_pose(1.0, angle, translation, c.objects[i].model_to_world);
        c.objects[i].mesh = &meshes[i];
        c.objects[i].color[0] = 0.3f + 0.15f * i;
        c.objects[i].color[1] = 0.5f;
        c.objects[i].color[2] = 0.9f - 0.15f * i;
        triangles += (long)meshes[i].face_count;
    }
    for (int k = 0; k < CAMERA_COUNT; k++)
        hemisphere_camera(2 * 3.14159265358979 * k / CAMERA_COUNT, 0.45 + 0.05 * (k % 3), 0.8, &c.cameras[k]);
    fprintf(stderr, "scene: %d objects, %ld triangles, %d x %d views\n", OBJECT_COUNT, triangles, VIEW_SIDE,
            VIEW_SIDE);

    run_case(&c, "raster_view256_ss1", 1, 0);
    run_case(&c, "raster_view256_ss2", 2, 0);
    run_case(&c, "raster_view256_ss4", 4, 0);
    /* The generator's looks: a noise floor, a background brightening upwards. */
    od_raster_options plain = c.options;
    c.options.floor_pattern = OD_RASTER_FLOOR_NOISE;
    c.options.floor_check_size = 0.12f;
    c.options.background[0] = 0.7f;
    c.options.background_top[2] = 0.9f;
    run_case(&c, "raster_view256_ss2_looks", 2, 0);
    c.options.floor_pattern = OD_RASTER_FLOOR_STRIPES;
    c.options.floor_check_size = 0.05f;
    run_case(&c, "raster_view256_ss2_stripes", 2, 0);
    c.options = plain;
    /* The cases above reuse the shadow map across views of the scene, as
     * the generator does; this one rebuilds it for every view. */
    c.rebuild_shadows = 1;
    run_case(&c, "raster_view256_ss2_shadow_rebuilt", 2, 0);
    c.rebuild_shadows = 0;

    const char *tmp = getenv("TMPDIR");
    snprintf(c.folder, sizeof c.folder, "%s/oddone-bench-raster", tmp && tmp[0] ? tmp : "/tmp");
    char command[600];
    snprintf(command, sizeof command, "mkdir -p '%s'", c.folder);
    if (system(command) != 0)
        fail("cannot create the output folder");
    run_case(&c, "raster_write_view256_ss2", 2, 1);
    c.batch_sync = 1;
    run_case(&c, "raster_write_view256_ss2_batched_sync", 2, 1);
    c.batch_sync = 0;

    od_raster_frame_free(&c.frame);
    od_rasterizer_free(c.rasterizer);
    for (int i = 0; i < OBJECT_COUNT; i++)
        od_mesh_free(&meshes[i]);
    return 0;
}
