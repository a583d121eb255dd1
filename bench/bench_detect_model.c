/* Times the learned detector on a generated 5-view scene at a
 * configuration's sizes (configs/cpu.json by default):
 *
 *   bench_detect_model [CONFIG [RUNS [DENSITY_BIAS]]]   (from the repository root)
 *
 * The model file is the configuration's networks initialised from a fixed
 * seed, because the time does not depend on training except through the
 * occupied voxels and the objects that localization finds (printed). The
 * density head's output bias is set to DENSITY_BIAS (default -0.7),
 * because an untrained head's raw densities vary little around 0. A bias
 * of 0 makes every voxel occupied (one object of 65,536 voxels, whose
 * DBSCAN dominates the time), and -1 leaves none. At -0.7 the cpu configuration finds 5
 * clusters of a few hundred voxels, about what a 5-object scene has.
 * NOTE: these objects are blobs of the untrained network, not the scene's,
 * so a trained model's localization and matcher times can differ.
 *
 * Two measurements, each the median of RUNS runs after one untimed run:
 *   detect_model_5views_cli   `oddone detect MODEL SCENE -o DIR --quiet`
 *                             as a child process, from the files to
 *                             result.json and the pictures: process start,
 *                             loading the model and MobileNetV2, every
 *                             stage, writing; with the child's peak
 *                             resident memory (getrusage's ru_maxrss of the children);
 *   detect_model_5views       od_learned_detect in this process on the
 *                             loaded scene and model, with its stages.
 * The oddone binary is looked up next to this program's folder
 * (BUILD/bench/.. = BUILD/oddone). There is no PyTorch peer. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchlib.h"
#include "detect/learned.h"
#include "model/config.h"
#include "model/model_file.h"
#include "scene/scene.h"
#include "synth/generate.h"

#define VIEWS 5
#define MAX_RUNS 32
#define ENCODER_CHANNELS 24 /* MobileNetV2 block_2_add */
#define DEFAULT_DENSITY_BIAS (-0.7f)

/* Reads a whole text file into a NUL-terminated buffer. Returns NULL on failure. */
static char *read_text(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    char *text = NULL;
    if (fseek(file, 0, SEEK_END) == 0) {
        const long size = ftell(file);
        if (size >= 0 && fseek(file, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1)) != NULL) {
            if (fread(text, 1, (size_t)size, file) == (size_t)size) {
                text[size] = '\0';
            } else {
                free(text);
                text = NULL;
            }
        }
    }
    fclose(file);
    return text;
}

/* Writes the configuration's networks, initialised from a fixed seed, to
 * path, with the density head's output bias set to density_bias. */
static int write_model(const char *config_path, const char *path, float density_bias, od_error *err)
{
    char *text = read_text(config_path);
    if (text == NULL)
        return od_fail(err, "%s: cannot read the configuration", config_path);
    od_model_config config;
    od_params *params = NULL;
    int status = od_model_config_parse(text, strlen(text), config_path, &config, err);
    if (status == 0 && (params = od_params_new(err)) == NULL)
        status = -1;
    if (status == 0)
        status = od_learned_build(&config, ENCODER_CHANNELS, OD_MATCHER_DEFAULT_MAX_OBJECTS, params, NULL, NULL, err);
    if (status == 0) {
        od_params_initialize(params, 1);
        od_param *bias = od_params_find(params, "volume_net.density_head.2.bias");
        if (bias == NULL)
            status = od_fail(err, "%s: the model has no tensor volume_net.density_head.2.bias", config_path);
        else
            bias->value[0] = density_bias;
    }
    if (status == 0) {
        const od_model_encoder encoder = {"mobilenetv2", "block_2_add", config.image_width};
        status = od_model_file_save(path, params, text, &encoder, err);
    }
    od_params_free(params);
    free(text);
    return status;
}

/* Runs `oddone detect` on the scene and waits for it. Writes its wall
 * time in milliseconds and its peak resident memory in MiB. */
static int run_cli(const char *oddone, const char *model, const char *scene, const char *out, double *ms,
                   double *peak_mib, od_error *err)
{
    const double start = bench_now_ms();
    const pid_t child = fork();
    if (child < 0)
        return od_fail(err, "fork failed: %s", strerror(errno));
    if (child == 0) {
        execl(oddone, "oddone", "detect", model, scene, "-o", out, "--quiet", (char *)NULL);
        fprintf(stderr, "bench_detect_model: cannot run %s: %s\n", oddone, strerror(errno));
        _exit(127);
    }
    int status = 0;
    if (waitpid(child, &status, 0) < 0)
        return od_fail(err, "waitpid failed: %s", strerror(errno));
    *ms = bench_now_ms() - start;
    /* The largest peak of the children waited for so far: every child
     * runs the same command. */
    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    *peak_mib = (double)usage.ru_maxrss / 1024.0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return od_fail(err, "%s detect %s %s -o %s failed (exit status %d)", oddone, model, scene, out,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

static double median_of(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, bench_compare_doubles);
    return values[count / 2];
}

int main(int argc, char **argv)
{
    const char *config_path = argc > 1 ? argv[1] : "configs/cpu.json";
    const int runs = argc > 2 ? atoi(argv[2]) : 5;
    const float density_bias = argc > 3 ? strtof(argv[3], NULL) : DEFAULT_DENSITY_BIAS;
    if (runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "bench_detect_model: RUNS must be 1 to %d\n", MAX_RUNS);
        return 2;
    }
    char self[4096];
    snprintf(self, sizeof self, "%s", argv[0]);
    char oddone[4200];
    snprintf(oddone, sizeof oddone, "%s/../oddone", dirname(self));
    if (access(oddone, X_OK) != 0) {
        fprintf(stderr, "bench_detect_model: %s not found; build the oddone target first\n", oddone);
        return 1;
    }

    char dir[] = "/tmp/oddone-bench-detect-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "bench_detect_model: cannot make a temporary folder under /tmp\n");
        return 1;
    }
    char scene_dir[sizeof dir + 16], model_path[sizeof dir + 32], out_dir[sizeof dir + 16];
    snprintf(scene_dir, sizeof scene_dir, "%s/scene", dir);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
    snprintf(out_dir, sizeof out_dir, "%s/out", dir);

    od_error err = {{0}};
    od_mesh torus;
    od_synth_scene_options o = od_synth_scene_options_default();
    o.seed = 3;
    o.view_count = VIEWS;
    o.anomalous = 1;
    int status = od_mesh_make_torus(0.3f, 0.12f, 48, 24, &torus, &err);
    if (status == 0) {
        status = od_synth_generate_scene(&o, &torus, "torus", scene_dir, NULL, &err);
        od_mesh_free(&torus);
    }
    if (status == 0)
        status = write_model(config_path, model_path, density_bias, &err);

    /* the command line, end to end */
    double cli_ms[MAX_RUNS], cli_peak = 0.0;
    for (int i = 0; i <= runs && status == 0; i++) {
        double ms = 0.0, peak = 0.0;
        status = run_cli(oddone, model_path, scene_dir, out_dir, &ms, &peak, &err);
        if (i > 0) {
            cli_ms[i - 1] = ms;
            cli_peak = peak > cli_peak ? peak : cli_peak;
        }
    }

    /* the library call */
    od_scene *scene = NULL;
    od_learned_model *model = NULL;
    if (status == 0)
        status = od_scene_load(scene_dir, NULL, &scene, &err);
    if (status == 0 && (model = od_learned_open(model_path, NULL, &err)) == NULL)
        status = -1;
    const int views[VIEWS] = {0, 1, 2, 3, 4};
    double call_ms[MAX_RUNS], stages[MAX_RUNS][5];
    int objects = 0;
    for (int i = 0; i <= runs && status == 0; i++) {
        od_compare_result result;
        memset(&result, 0, sizeof result);
        const double start = bench_now_ms();
        status = od_learned_detect(model, scene, views, VIEWS, &result, &err);
        const double ms = bench_now_ms() - start;
        if (status == 0 && i > 0) {
            call_ms[i - 1] = ms;
            const double parts[5] = {result.seconds_features, result.seconds_lift, result.seconds_hull,
                                     result.seconds_cluster, result.seconds_score};
            for (int s = 0; s < 5; s++)
                stages[i - 1][s] = 1e3 * parts[s];
            objects = result.object_count;
        }
        od_compare_result_free(&result);
    }

    if (status != 0) {
        fprintf(stderr, "bench_detect_model: %s\n(run it from the repository root, after scripts/fetch_weights.sh)\n",
                err.message);
    } else {
        const double cli = median_of(cli_ms, runs), call = median_of(call_ms, runs);
        bench_report("detect_model_5views_cli", cli, 0.0);
        bench_report("detect_model_5views", call, 0.0);
        fprintf(stderr, "detect (%s, untrained weights, %d views, %d objects found), median of %d runs:\n",
                config_path, VIEWS, objects, runs);
        fprintf(stderr, "  %-26s %8.1f ms, peak resident memory %.1f MiB (ru_maxrss)\n", "oddone detect (process)",
                cli, cli_peak);
        fprintf(stderr, "  %-26s %8.1f ms\n", "od_learned_detect", call);
        const char *names[5] = {"features", "lift", "volume network", "localization", "crops + matcher"};
        for (int s = 0; s < 5; s++) {
            double column[MAX_RUNS];
            for (int i = 0; i < runs; i++)
                column[i] = stages[i][s];
            fprintf(stderr, "    %-24s %8.1f ms\n", names[s], median_of(column, runs));
        }
    }
    od_learned_free(model);
    od_scene_free(scene);
    char command[sizeof dir + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0)
        fprintf(stderr, "bench_detect_model: could not remove %s\n", dir);
    return status == 0 ? 0 : 1;
}
