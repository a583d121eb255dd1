/* Times one stage-1 training step (model/stage1.h) of a configuration,
 * configs/cpu.json by default, on a generated 10-view scene: views 0-4
 * and 5-9 are the two sets, each building the volume once and supervising
 * once.
 *
 *   bench_train_step [CONFIG [STEPS]]      (run from the repository root)
 *
 * The frozen maps come from MobileNetV2 block_2_add (stride 4, 24
 * channels) at the configuration's image width. The teacher targets come
 * from the configuration's teacher network, layer and input size, reduced
 * to teacher.channels by a PCA fitted on this scene's own cells.
 * Preparing the scene (both networks on 10 views, once per scene) is
 * timed apart from the step. The scene is also prepared from a feature
 * cache written as `oddone teacher` writes it, and the largest difference
 * of its teacher targets from the direct ones is printed.
 *
 * Printed: one BENCH line for the step (median of STEPS timed steps after
 * one untimed step) with its flops, and on stderr the mean time of each
 * part of the step, the flops, the fraction of the 2-core peak
 * (bench/bench_peak, about 230 GFLOP/s) and the peak resident memory of
 * the steps (VmHWM, reset after the teachers are freed). The flops count the volume
 * network's convolutions and linear layers, 2 per multiply-add, with the
 * backward taken as twice the forward (the input gradient of the stem is
 * not needed, so this slightly overcounts). Rendering and lifting are
 * memory-bound and not counted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchlib.h"
#include "core/mem.h"
#include "core/threads.h"
#include "eval/pca.h"
#include "model/config.h"
#include "model/stage1.h"
#include "scene/scene.h"
#include "synth/generate.h"
#include "teacher/teacher.h"

#define PEAK_GFLOPS 230.0
#define VIEWS 10
#define MAX_STEPS 32

/* Fits a PCA of the teacher's features over every view of the scene. */
static od_pca *fit_pca(const od_scene *scene, od_teacher *teacher, int64_t channels, od_error *err)
{
    const od_teacher_info t = od_teacher_get_info(teacher);
    const int64_t cells = t.height * t.width;
    float *features = od_alloc_floats(cells * t.channels);
    od_pca_accumulator *acc = od_pca_new(t.channels, err);
    od_pca *pca = NULL;
    int status = features == NULL ? od_fail(err, "out of memory") : acc == NULL ? -1 : 0;
    for (int v = 0; v < scene->view_count && status == 0; v++) {
        od_image image = {0};
        status = od_scene_read_view_image(scene, v, &image, err);
        if (status == 0)
            status = od_teacher_run(teacher, &image, features, err);
        if (status == 0)
            status = od_pca_add(acc, features, cells, err);
        od_image_free(&image);
    }
    if (status == 0)
        pca = od_pca_fit(acc, channels, err);
    od_pca_accumulator_free(acc);
    od_free(features);
    return pca;
}

/* Writes the scene's PCA-reduced teacher features to a cache as
 * `oddone teacher` does, reads it back, prepares the scene from it and
 * writes the largest difference of the teacher targets from those of
 * `prepared` (float16 rounding only, when the cell offset is carried). */
static int check_cached_path(const od_scene *scene, const od_model_config *config, od_teacher *encoder,
                             od_teacher *teacher, const od_pca *pca, const od_stage1_scene *prepared,
                             const char *path, double *difference, od_error *err)
{
    const od_teacher_info t = od_teacher_get_info(teacher);
    od_feature_cache_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.network, sizeof info.network, "%s", t.network_name);
    snprintf(info.layer, sizeof info.layer, "%s", t.layer);
    info.input_height = info.input_width = t.input_size;
    info.stride = t.stride;
    info.offset = t.offset;
    info.channels = pca->components_count;
    snprintf(info.pca_checksum, sizeof info.pca_checksum, "%s", "0000000000000000");
    const int64_t cells = t.height * t.width;
    float *features = od_alloc_floats(cells * t.channels), *reduced = od_alloc_floats(cells * info.channels);
    od_feature_cache_writer *writer = od_feature_cache_writer_new(&info, err);
    int status = features == NULL || reduced == NULL ? od_fail(err, "out of memory") : writer == NULL ? -1 : 0;
    for (int v = 0; v < scene->view_count && status == 0; v++) {
        od_image image = {0};
        status = od_scene_read_view_image(scene, v, &image, err);
        if (status == 0)
            status = od_teacher_run(teacher, &image, features, err);
        if (status == 0)
            status = od_pca_transform(pca, features, cells, reduced, err);
        if (status == 0)
            status = od_feature_cache_add_view(writer, scene->views[v].name, reduced, t.height, t.width, err);
        od_image_free(&image);
    }
    if (status == 0)
        status = od_feature_cache_write(writer, path, err);
    od_feature_cache_writer_free(writer);
    od_free(features);
    od_free(reduced);
    od_feature_cache *cache = status == 0 ? od_feature_cache_read(path, &info, err) : NULL;
    od_stage1_scene *cached = cache != NULL ? od_stage1_scene_prepare_cached(scene, config, encoder, cache, &info, err)
                                            : NULL;
    status = cached == NULL ? -1 : 0;
    *difference = 0.0;
    const int64_t count = prepared->feature_size * prepared->feature_size * prepared->teacher_channels;
    for (int v = 0; v < prepared->view_count && status == 0; v++)
        for (int64_t i = 0; i < count; i++)
            *difference = fmax(*difference, fabs(cached->views[v].teacher[i] - prepared->views[v].teacher[i]));
    od_stage1_scene_free(cached);
    od_feature_cache_free(cache);
    return status;
}

/* Resets the process's peak resident memory (VmHWM) to its current
 * resident memory, through /proc/self/clear_refs (Linux 4.0 and later).
 * Returns 0 on success, -1 where that file cannot be written. */
static int reset_peak_memory(void)
{
    FILE *file = fopen("/proc/self/clear_refs", "w");
    if (file == NULL)
        return -1;
    const int written = fputs("5", file) >= 0;
    return fclose(file) == 0 && written ? 0 : -1;
}

/* Returns the process's peak resident memory (VmHWM) in MiB, or -1 when
 * /proc/self/status cannot be read. */
static double peak_memory_mib(void)
{
    FILE *file = fopen("/proc/self/status", "r");
    if (file == NULL)
        return -1.0;
    char line[256];
    double kib = -1.0;
    while (fgets(line, sizeof line, file) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = atof(line + 6);
    fclose(file);
    return kib < 0.0 ? -1.0 : kib / 1024.0;
}

/* Returns the CPU time of the process (all threads), in seconds. On a
 * loaded machine it shows what the step costs when the wall time does not. */
static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *config_path = argc > 1 ? argv[1] : "configs/cpu.json";
    const int steps = argc > 2 ? atoi(argv[2]) : 3;
    if (steps < 1 || steps > MAX_STEPS) {
        fprintf(stderr, "bench_train_step: STEPS must be 1 to %d\n", MAX_STEPS);
        return 2;
    }
    od_error err = {{0}};
    od_model_config config;
    if (od_model_config_load(config_path, &config, &err) != 0) {
        fprintf(stderr, "bench_train_step: %s\n", err.message);
        return 1;
    }

    char dir[] = "/tmp/oddone-bench-train-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "bench_train_step: cannot make a temporary folder under /tmp\n");
        return 1;
    }
    char scene_dir[sizeof dir + 16];
    snprintf(scene_dir, sizeof scene_dir, "%s/scene", dir);
    od_mesh torus;
    od_synth_scene_options o = od_synth_scene_options_default();
    o.seed = 3;
    o.view_count = VIEWS;
    o.anomalous = 0;
    od_scene *scene = NULL;
    od_teacher *encoder = NULL, *teacher = NULL;
    od_pca *pca = NULL;
    od_stage1_scene *prepared = NULL;
    od_stage1 *stage1 = NULL;
    int status = od_mesh_make_torus(0.3f, 0.12f, 48, 24, &torus, &err);
    if (status == 0) {
        status = od_synth_generate_scene(&o, &torus, "torus", scene_dir, NULL, &err);
        od_mesh_free(&torus);
    }
    if (status == 0)
        status = od_scene_load(scene_dir, NULL, &scene, &err);
    od_teacher_network teacher_network = OD_TEACHER_INCEPTIONV3;
    if (status == 0)
        status = od_teacher_network_parse(config.teacher_network, &teacher_network, &err);
    if (status == 0 &&
        (encoder = od_teacher_open(OD_TEACHER_MOBILENETV2, NULL, "block_2_add", config.image_width, &err)) == NULL)
        status = -1;
    if (status == 0 && (teacher = od_teacher_open(teacher_network, NULL, config.teacher_layer,
                                                  config.teacher_input_size, &err)) == NULL)
        status = -1;
    if (status == 0 && (pca = fit_pca(scene, teacher, config.teacher_channels, &err)) == NULL)
        status = -1;
    double prepare_ms = 0.0;
    if (status == 0) {
        const double start = bench_now_ms();
        prepared = od_stage1_scene_prepare(scene, &config, encoder, teacher, pca, &err);
        prepare_ms = bench_now_ms() - start;
        status = prepared == NULL ? -1 : 0;
    }
    double cache_difference = 0.0;
    if (status == 0) {
        char cache_path[sizeof dir + 32];
        snprintf(cache_path, sizeof cache_path, "%s/features.safetensors", dir);
        status = check_cached_path(scene, &config, encoder, teacher, pca, prepared, cache_path, &cache_difference,
                                   &err);
    }
    if (status == 0 && (stage1 = od_stage1_new(&config, prepared->encoder_channels, 1, &err)) == NULL)
        status = -1;

    const int set_a[5] = {0, 1, 2, 3, 4}, set_b[5] = {5, 6, 7, 8, 9};
    double times[MAX_STEPS];
    od_stage1_losses losses = {0};
    /* The networks that prepared the scene are not part of a step: free
     * them before the peak memory of the steps is measured. */
    char encoder_label[128] = "", teacher_label[128] = "";
    double teacher_offset = 0.0;
    if (status == 0) {
        const od_teacher_info e = od_teacher_get_info(encoder), t = od_teacher_get_info(teacher);
        snprintf(encoder_label, sizeof encoder_label, "%s %s at %lld", e.network_name, e.layer,
                 (long long)e.input_size);
        snprintf(teacher_label, sizeof teacher_label, "%s %s at %lld", t.network_name, t.layer,
                 (long long)t.input_size);
        teacher_offset = t.offset;
    }
    od_teacher_free(encoder);
    od_teacher_free(teacher);
    encoder = teacher = NULL;
    const double peak_before = peak_memory_mib();
    const int peak_reset = reset_peak_memory() == 0;
    if (status == 0)
        status = od_stage1_step(stage1, prepared, set_a, 5, set_b, 5, &losses, &err);
    const od_stage1_times before = status == 0 ? od_stage1_get_times(stage1) : (od_stage1_times){0};
    const double cpu_start = cpu_seconds();
    for (int i = 0; i < steps && status == 0; i++) {
        const double start = bench_now_ms();
        status = od_stage1_step(stage1, prepared, set_a, 5, set_b, 5, &losses, &err);
        times[i] = bench_now_ms() - start;
    }
    const double cpu_per_step = (cpu_seconds() - cpu_start) / steps;
    if (status != 0) {
        fprintf(stderr, "bench_train_step: %s\n(run it from the repository root, after scripts/fetch_weights.sh)\n",
                err.message);
    } else {
        qsort(times, (size_t)steps, sizeof times[0], bench_compare_doubles);
        const double ms = times[steps / 2];
        const double flops = 3.0 * 2.0 * od_stage1_volume_macs(stage1);
        bench_report("train_step_stage1", ms, flops);

        const od_stage1_times after = od_stage1_get_times(stage1);
        const double parts[7] = {after.lift - before.lift,
                                 after.volume_forward - before.volume_forward,
                                 after.render_forward - before.render_forward,
                                 after.losses - before.losses,
                                 after.render_backward - before.render_backward,
                                 after.volume_backward - before.volume_backward,
                                 after.adam - before.adam};
        const char *names[7] = {"lift (2 passes)", "volume forward", "render forward", "losses",
                                "render backward", "volume backward", "clip + Adam"};
        fprintf(stderr, "stage-1 step of %s: grid %lld x %lld x %lld, %lld params, losses colour %.4f mask %.4f "
                        "feature %.4f\n",
                config.name, (long long)config.grid_dims[0], (long long)config.grid_dims[1],
                (long long)config.grid_dims[2], (long long)od_params_numel(od_stage1_params(stage1)),
                losses.colour, losses.mask, losses.feature);
        fprintf(stderr, "  %-22s %8.1f ms per scene (%d views: %s, %s + PCA)\n", "features", prepare_ms, VIEWS,
                encoder_label, teacher_label);
        fprintf(stderr, "  teacher targets from a float16 cache differ by at most %.2g (cell offset %g)\n",
                cache_difference, teacher_offset);
        for (int i = 0; i < 7; i++)
            fprintf(stderr, "  %-22s %8.1f ms\n", names[i], 1e3 * parts[i] / steps);
        fprintf(stderr, "  %-22s %8.1f ms (median), %.1f GFLOP, %.1f GFLOP/s, %.0f %% of %.0f GFLOP/s\n", "step",
                ms, flops * 1e-9, flops * 1e-6 / ms, 100.0 * flops * 1e-6 / ms / PEAK_GFLOPS, PEAK_GFLOPS);
        fprintf(stderr, "  %-22s %8.1f ms of CPU time per step, over %d threads\n", "cpu", 1e3 * cpu_per_step,
                od_get_num_threads());
        if (peak_reset)
            fprintf(stderr, "  %-22s %8.1f MiB resident at most during the steps (VmHWM; %.1f MiB before, "
                            "with the teachers)\n",
                    "peak memory", peak_memory_mib(), peak_before);
        else
            fprintf(stderr, "  %-22s %8.1f MiB resident at most in the whole run (VmHWM; /proc/self/clear_refs "
                            "is not writable, so the teachers are included)\n",
                    "peak memory", peak_memory_mib());
    }
    od_stage1_free(stage1);
    od_stage1_scene_free(prepared);
    od_pca_free(pca);
    od_teacher_free(encoder);
    od_teacher_free(teacher);
    od_scene_free(scene);
    char command[sizeof dir + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0)
        fprintf(stderr, "bench_train_step: could not remove %s\n", dir);
    return status == 0 ? 0 : 1;
}
