/* InceptionV3 and MobileNetV2 run by the Keras graph interpreter with the
 * converted nsfwjs weights, against the package's own runtime. The scripts
 * tests/oracle/inceptionv3.cjs and mobilenetv2.cjs ran the same models in
 * pure-JavaScript tfjs on the committed input PNGs. They stored the logits
 * and a subset of channels of one intermediate layer.
 *
 * This test needs models/cache/inceptionv3.safetensors and
 * mobilenetv2.safetensors, which are not in the repository: run
 * scripts/fetch_weights.sh first. Without them the test fails with a
 * message naming the script. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "teacher/keras_graph.h"
#include "teacher/mobilenetv2.h"
#include "testlib.h"

static double elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) * 1e-6;
}

static float max_abs_difference(const float *a, const float *b, int64_t count)
{
    float max = 0.0f;
    for (int64_t i = 0; i < count; i++) {
        const float d = fabsf(a[i] - b[i]);
        max = d > max ? d : max;
    }
    return max;
}

/* Runs `weights` on `prefix`_input.png and compares the logits and every
 * `step`-th channel of `layer` with `prefix`.safetensors. */
static void compare_with_tfjs(const char *weights, const char *prefix, int size, const char *layer,
                              int step, float atol, float rtol)
{
    char name[128], path[256];
    od_error err;
    snprintf(name, sizeof name, "%s_input.png", prefix);
    snprintf(path, sizeof path, "tests/ref/%s", name);
    od_image image = {0};
    const int read = od_image_read(od_test_source_path(path), NULL, &image, &err);
    if (read != 0)
        od_test_record(0, __FILE__, __LINE__, err.message);
    od_safetensors *ref = od_test_load_reference(prefix);
    od_keras_graph *graph = od_keras_graph_load(od_test_source_path(weights), size, size, NULL, &err);
    if (graph == NULL)
        od_test_record(0, __FILE__, __LINE__, err.message);
    if (read != 0 || ref == NULL || graph == NULL) {
        od_image_free(&image);
        od_safetensors_free(ref);
        od_keras_graph_free(graph);
        return;
    }
    OD_CHECK(image.width == size && image.height == size && image.channels == 3);

    int64_t shape[3];
    OD_CHECK(od_keras_graph_layer_shape(graph, layer, shape, &err) == 0);
    const int64_t positions = shape[0] * shape[1], channels = shape[2];
    float *mid = od_alloc_floats(positions * channels);
    OD_CHECK(od_keras_graph_forward(graph, image.pixels, layer, mid, &err) == 0);
    float logits[8];
    int64_t count = 0;
    OD_CHECK(od_keras_graph_logits(graph, image.pixels, logits, 8, &count, &err) == 0);
    OD_CHECK(count == 5);

    snprintf(name, sizeof name, "%s_every%d", layer, step);
    od_tensor *want_mid = od_test_tensor(ref, name);
    od_tensor *want_logits = od_test_tensor(ref, "logits");
    if (want_mid != NULL && want_logits != NULL) {
        const int64_t kept = want_mid->shape[2];
        OD_CHECK(want_mid->shape[0] == shape[0] && want_mid->shape[1] == shape[1]);
        OD_CHECK(kept == (channels + step - 1) / step);
        float *got = od_alloc_floats(positions * kept);
        for (int64_t p = 0; p < positions; p++)
            for (int64_t k = 0; k < kept; k++)
                got[p * kept + k] = mid[p * channels + k * step];
        OD_CHECK_CLOSE(layer, got, want_mid->data, positions * kept, atol, rtol);
        OD_CHECK_CLOSE("logits", logits, want_logits->data, 5, atol, rtol);
        printf("%s: max abs error vs tfjs: logits %.3g, %s %.3g\n", prefix,
               max_abs_difference(logits, want_logits->data, 5), layer,
               max_abs_difference(got, want_mid->data, positions * kept));
        od_free(got);
    }

    struct timespec t0, t1;
    const int runs = 3;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < runs; r++)
        od_keras_graph_logits(graph, image.pixels, logits, 8, &count, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %d x %d forward to the logits: %.1f ms\n", prefix, size, size,
           elapsed_ms(&t0, &t1) / runs);

    od_free(mid);
    od_tensor_free(want_mid);
    od_tensor_free(want_logits);
    od_image_free(&image);
    od_safetensors_free(ref);
    od_keras_graph_free(graph);
}

static void inceptionv3_matches_tfjs(void)
{
    /* float32 on both sides with different summation orders and batch norm
     * folded here. The measured maximum differences are a few 1e-6 for the
     * logits and about 1e-5 for mixed7. The
     * tolerance leaves a tenfold margin. */
    compare_with_tfjs(OD_INCEPTIONV3_DEFAULT_PATH, "teacher_inceptionv3", 299, "mixed7", 8, 2e-4f,
                      1e-4f);
}

static void graph_runs_mobilenetv2(void)
{
    compare_with_tfjs(OD_MOBILENETV2_DEFAULT_PATH, "teacher_mobilenetv2", 224,
                      "block_13_expand_relu", 4, 1e-4f, 1e-4f);
}

static void other_sizes_and_bad_names(void)
{
    od_error err;
    od_keras_graph *graph = od_keras_graph_load(od_test_source_path(OD_INCEPTIONV3_DEFAULT_PATH),
                                                320, 256, "mixed7", &err);
    if (graph == NULL) {
        od_test_record(0, __FILE__, __LINE__, err.message);
        return;
    }
    int64_t shape[3];
    OD_CHECK(od_keras_graph_layer_shape(graph, "mixed7", shape, &err) == 0);
    OD_CHECK(shape[0] == 18 && shape[1] == 14 && shape[2] == 768);
    OD_CHECK(od_keras_graph_layer_shape(graph, "mixed11", shape, &err) == -1);
    OD_CHECK(strstr(err.message, "mixed11") != NULL);
    od_keras_graph_free(graph);

    /* The Dense head fixes the flattened length, so the whole model needs 299 x 299. */
    OD_CHECK(od_keras_graph_load(od_test_source_path(OD_INCEPTIONV3_DEFAULT_PATH), 320, 256, NULL,
                                 &err) == NULL);
    OD_CHECK(strstr(err.message, "average_pooling2d_10") != NULL);
    OD_CHECK(od_keras_graph_load(od_test_source_path(OD_INCEPTIONV3_DEFAULT_PATH), 299, 299,
                                 "no_such_layer", &err) == NULL);
    OD_CHECK(strstr(err.message, "no_such_layer") != NULL);

    OD_CHECK(od_keras_graph_load("/nonexistent/inceptionv3.safetensors", 299, 299, NULL, &err) == NULL);
    OD_CHECK(strstr(err.message, "scripts/fetch_weights.sh") != NULL);
    OD_CHECK(od_keras_graph_load(od_test_source_path("tests/ref/teacher_inceptionv3.safetensors"),
                                 299, 299, NULL, &err) == NULL);
    OD_CHECK(strstr(err.message, "keras_topology") != NULL);
}

int main(void)
{
    OD_RUN(inceptionv3_matches_tfjs);
    OD_RUN(graph_runs_mobilenetv2);
    OD_RUN(other_sizes_and_bad_names);
    return od_test_finish();
}
