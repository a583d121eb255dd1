/* The compare detector end to end on the sample scene with views 0, 4, 8,
 * 12 and 16. It prints the median time of each stage (teacher load,
 * features, lifting, occupancy, clustering, scoring) and of the whole call
 * over 5 runs, and the process's peak resident memory (getrusage's
 * ru_maxrss). Then it counts how often the cracked banana (object.001)
 * ranks first over seeded 5-view subsets. Run from the repository root, or pass the scene folder,
 * the MobileNetV2 weights, the number of subsets (0 skips them), the
 * occupancy (masks or colour) and the features (teacher or colour):
 *     bench_detect [SCENE [WEIGHTS [SUBSETS [OCCUPANCY [FEATURES]]]]]
 * There is no PyTorch peer: the comparison is the numpy prototype's
 * 1.1 s end to end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "benchlib.h"
#include "core/log.h"
#include "core/rng.h"
#include "detect/compare.h"
#include "geometry/obb.h"
#include "scene/scene.h"
#include "teacher/mobilenetv2.h"
#include "teacher/teacher.h"

#define BENCH_RUNS 5
#define BENCH_SUBSET_SEED 6

static double cpu_seconds(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + 1e-6 * (double)usage.ru_utime.tv_usec + (double)usage.ru_stime.tv_sec +
           1e-6 * (double)usage.ru_stime.tv_usec;
}

static double median_of(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, bench_compare_doubles);
    return values[count / 2];
}

/* Returns 1 when the result's top object is the ground-truth object
 * `name`: the one its box overlaps most, with 3D IoU above 0.3. */
static int top_is(const od_scene *scene, const od_compare_result *result, const char *name)
{
    int top = od_compare_top(result);
    if (top < 0)
        return 0;
    int best = -1;
    double best_iou = 0.3;
    for (int g = 0; g < scene->object_count; g++) {
        double iou = od_box_iou_3d(&result->objects[top].box, &scene->objects[g].box);
        if (iou > best_iou) {
            best_iou = iou;
            best = g;
        }
    }
    return best >= 0 && strcmp(scene->objects[best].name, name) == 0;
}

int main(int argc, char **argv)
{
    const char *scene_path = argc > 1 ? argv[1] : "../shared/datasets/toysad8k-sample";
    const char *weights = argc > 2 ? argv[2] : OD_MOBILENETV2_DEFAULT_PATH;
    int subsets = argc > 3 ? atoi(argv[3]) : 100;
    od_log_set_level(OD_LOG_WARN);
    od_scene *scene = NULL;
    od_error err;
    if (od_scene_load(scene_path, NULL, &scene, &err) != 0) {
        fprintf(stderr, "bench_detect: %s\n", err.message);
        return 1;
    }
    od_compare_options options = od_compare_options_default();
    options.weights_path = weights;
    const char *occupancy = argc > 4 ? argv[4] : "masks";
    options.occupancy = strcmp(occupancy, "colour") == 0 ? OD_COMPARE_OCCUPANCY_COLOR : OD_COMPARE_OCCUPANCY_MASKS;
    const char *features = argc > 5 ? argv[5] : "teacher";
    options.features = strcmp(features, "colour") == 0 ? OD_COMPARE_FEATURES_COLOR : OD_COMPARE_FEATURES_TEACHER;
    printf("occupancy: %s, features: %s\n", options.occupancy == OD_COMPARE_OCCUPANCY_COLOR ? "colour" : "masks",
           options.features == OD_COMPARE_FEATURES_COLOR ? "colour" : "teacher");

    /* Stages, one warm-up call first. CPU time is measured too, because
     * wall time on a shared machine includes waiting for the cores. */
    int views[5] = {0, 4, 8, 12, 16};
    double cpu_start = 0.0;
    double stage[7][BENCH_RUNS];
    for (int run = -1; run < BENCH_RUNS; run++) {
        od_compare_result result;
        if (od_compare_detect(scene, views, 5, &options, &result, &err) != 0) {
            fprintf(stderr, "bench_detect: %s\n", err.message);
            od_scene_free(scene);
            return 1;
        }
        if (run == -1)
            cpu_start = cpu_seconds();
        if (run >= 0) {
            stage[0][run] = result.seconds_load;
            stage[1][run] = result.seconds_features;
            stage[2][run] = result.seconds_lift;
            stage[3][run] = result.seconds_hull;
            stage[4][run] = result.seconds_cluster;
            stage[5][run] = result.seconds_score;
            stage[6][run] = result.seconds_total;
        }
        od_compare_result_free(&result);
    }
    static const char *const names[7] = {"load_teacher", "features", "lift", "occupancy", "cluster", "score", "total"};
    for (int s = 0; s < 7; s++) {
        char name[64];
        snprintf(name, sizeof name, "detect_compare_5views_%s", names[s]);
        bench_report(name, 1e3 * median_of(stage[s], BENCH_RUNS), 0);
    }
    printf("CPU time per detect call %.3f s (user + system, all threads)\n",
           (cpu_seconds() - cpu_start) / BENCH_RUNS);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("peak resident memory %.1f MiB\n", (double)usage.ru_maxrss / 1024.0);

    /* The same call with the teacher opened once beforehand, as a caller
     * that detects on many scenes would do. */
    od_compare_options preloaded = options;
    if (options.features == OD_COMPARE_FEATURES_TEACHER) {
        preloaded.teacher_instance =
            od_teacher_open(options.teacher, options.weights_path, options.layer, options.input_size, &err);
        if (preloaded.teacher_instance == NULL) {
            fprintf(stderr, "bench_detect: %s\n", err.message);
            od_scene_free(scene);
            return 1;
        }
        double totals[BENCH_RUNS];
        for (int run = -1; run < BENCH_RUNS; run++) {
            od_compare_result result;
            if (od_compare_detect(scene, views, 5, &preloaded, &result, &err) != 0) {
                fprintf(stderr, "bench_detect: %s\n", err.message);
                od_teacher_free(preloaded.teacher_instance);
                od_scene_free(scene);
                return 1;
            }
            if (run >= 0)
                totals[run] = result.seconds_total;
            od_compare_result_free(&result);
        }
        bench_report("detect_compare_5views_total_teacher_loaded", 1e3 * median_of(totals, BENCH_RUNS), 0);
    }

    /* Ranking over seeded subsets, drawn as the weights test draws them. */
    od_rng rng;
    od_rng_seed(&rng, BENCH_SUBSET_SEED);
    int first = 0, three = 0, done = 0;
    for (int s = 0; s < subsets; s++) {
        int order[scene->view_count];
        for (int i = 0; i < scene->view_count; i++)
            order[i] = i;
        for (int i = scene->view_count - 1; i > 0; i--) {
            int j = (int)od_rng_below(&rng, (uint64_t)i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        od_compare_result result;
        if (od_compare_detect(scene, order, 5, &preloaded, &result, &err) != 0) {
            fprintf(stderr, "bench_detect: subset %d: %s\n", s, err.message);
            continue;
        }
        done++;
        three += result.object_count == 3;
        first += top_is(scene, &result, "object.001");
        od_compare_result_free(&result);
    }
    if (subsets > 0)
        printf("crack ranked first in %d of %d 5-view subsets (%d ran, %d with three objects)\n", first, subsets,
               done, three);
    od_teacher_free(preloaded.teacher_instance);
    od_scene_free(scene);
    return done == subsets ? 0 : 1;
}
