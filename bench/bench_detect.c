/* The compare detector end to end on the sample scene with views 0, 4, 8,
 * 12 and 16: teacher load, features, lifting, hull, clustering and
 * scoring. Also prints the process's peak resident memory. Run from the
 * repository root, or pass the scene folder and the MobileNetV2 weights:
 *     bench_detect [SCENE [WEIGHTS]]
 * There is no PyTorch peer. */
#include <stdio.h>
#include <sys/resource.h>

#include "benchlib.h"
#include "core/log.h"
#include "detect/compare.h"
#include "scene/scene.h"
#include "teacher/mobilenetv2.h"

typedef struct bench_case {
    const od_scene *scene;
    od_compare_options options;
    int failed;
} bench_case;

static void run_detect(void *context)
{
    bench_case *c = context;
    int views[5] = {0, 4, 8, 12, 16};
    od_compare_result result;
    od_error err;
    if (od_compare_detect(c->scene, views, 5, &c->options, &result, &err) != 0) {
        fprintf(stderr, "bench_detect: %s\n", err.message);
        c->failed = 1;
    }
    od_compare_result_free(&result);
}

int main(int argc, char **argv)
{
    const char *scene_path = argc > 1 ? argv[1] : "../shared/datasets/toysad8k-sample";
    const char *weights = argc > 2 ? argv[2] : OD_MOBILENETV2_DEFAULT_PATH;
    od_log_set_level(OD_LOG_WARN);
    od_scene *scene = NULL;
    od_error err;
    if (od_scene_load(scene_path, NULL, &scene, &err) != 0) {
        fprintf(stderr, "bench_detect: %s\n", err.message);
        return 1;
    }
    bench_case c = {.scene = scene, .options = od_compare_options_default()};
    c.options.weights_path = weights;
    double ms = bench_median_ms(run_detect, &c, 1, 5);
    od_scene_free(scene);
    if (c.failed)
        return 1;
    printf("BENCH\tdetect_compare_5views\t%.3f\t0\n", ms);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("peak resident memory %.1f MiB\n", (double)usage.ru_maxrss / 1024.0);
    return 0;
}
