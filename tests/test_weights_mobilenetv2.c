/* MobileNetV2 with the converted nsfwjs weights against the package's own
 * runtime: tests/oracle/mobilenetv2.cjs ran the same model in pure-JavaScript
 * tfjs on tests/ref/teacher_mobilenetv2_input.png and stored the logits and
 * every fourth channel of block_13_expand_relu.
 *
 * This test needs models/cache/mobilenetv2.safetensors, which is not in the
 * repository: run scripts/fetch_weights.sh first. Without it the test fails
 * with a message naming the script. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "teacher/mobilenetv2.h"
#include "testlib.h"

static od_mobilenetv2 *load_net(int64_t height, int64_t width)
{
    od_error err;
    od_mobilenetv2 *net =
        od_mobilenetv2_load(od_test_source_path(OD_MOBILENETV2_DEFAULT_PATH), height, width, &err);
    if (net == NULL)
        od_test_record(0, __FILE__, __LINE__, err.message);
    return net;
}

static double elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) * 1e-6;
}

static void mobilenetv2_matches_tfjs(void)
{
    od_safetensors *ref = od_test_load_reference("teacher_mobilenetv2");
    od_mobilenetv2 *net = load_net(224, 224);
    od_image image = {0};
    od_error err;
    const int read = od_image_read(od_test_source_path("tests/ref/teacher_mobilenetv2_input.png"),
                                   NULL, &image, &err);
    if (read != 0)
        od_test_record(0, __FILE__, __LINE__, err.message);
    if (ref == NULL || net == NULL || read != 0) {
        od_safetensors_free(ref);
        od_mobilenetv2_free(net);
        od_image_free(&image);
        return;
    }
    OD_CHECK(image.width == 224 && image.height == 224 && image.channels == 3);

    int64_t shape[3];
    OD_CHECK(od_mobilenetv2_layer_shape(net, "block_13_expand_relu", shape, &err) == 0);
    OD_CHECK(shape[0] == 14 && shape[1] == 14 && shape[2] == 576);
    float *mid = od_alloc_floats(14 * 14 * 576);
    float logits[OD_MOBILENETV2_CLASSES];
    OD_CHECK(od_mobilenetv2_forward_image(net, &image, "block_13_expand_relu", mid, logits, &err) == 0);

    od_tensor *want_logits = od_test_tensor(ref, "logits");
    od_tensor *want_mid = od_test_tensor(ref, "block_13_expand_relu_every4");
    if (want_logits != NULL && want_mid != NULL) {
        /* float32 on both sides, with batch norm folded here and applied
         * separately in tfjs, and different summation orders. The measured
         * maximum differences are about 1e-6 for the logits and 1e-5 for
         * block_13_expand_relu (values in [0, 6]). The tolerance leaves a
         * tenfold margin for other thread counts and instruction sets. A
         * wrong padding gives errors of 0.1 to 4. */
        const int64_t kept = want_mid->shape[2];
        float *got_mid = od_alloc_floats(14 * 14 * kept);
        for (int64_t p = 0; p < 14 * 14; p++)
            for (int64_t k = 0; k < kept; k++)
                got_mid[p * kept + k] = mid[p * 576 + k * 4];
        OD_CHECK_CLOSE("block_13_expand_relu", got_mid, want_mid->data, 14 * 14 * kept, 1e-4f, 1e-4f);
        OD_CHECK_CLOSE("logits", logits, want_logits->data, OD_MOBILENETV2_CLASSES, 1e-4f, 1e-4f);
        float max_mid = 0.0f, max_logit = 0.0f;
        for (int64_t i = 0; i < 14 * 14 * kept; i++) {
            const float d = fabsf(got_mid[i] - want_mid->data[i]);
            max_mid = d > max_mid ? d : max_mid;
        }
        for (int i = 0; i < OD_MOBILENETV2_CLASSES; i++) {
            const float d = fabsf(logits[i] - want_logits->data[i]);
            max_logit = d > max_logit ? d : max_logit;
        }
        printf("max abs error vs tfjs: logits %.3g, block_13_expand_relu %.3g\n", max_logit, max_mid);
        od_free(got_mid);
    }

    /* Stopping at the layer gives the same values as running to the end. */
    float *early = od_alloc_floats(14 * 14 * 576);
    OD_CHECK(od_mobilenetv2_forward(net, image.pixels, "block_13_expand_relu", early, NULL, &err) == 0);
    OD_CHECK_IDENTICAL("early stop", early, mid, 14 * 14 * 576);

    struct timespec t0, t1;
    const int runs = 5;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < runs; r++)
        od_mobilenetv2_forward(net, image.pixels, NULL, NULL, logits, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("MobileNetV2 224 x 224 forward to the logits: %.2f ms\n", elapsed_ms(&t0, &t1) / runs);

    od_free(early);
    od_free(mid);
    od_tensor_free(want_logits);
    od_tensor_free(want_mid);
    od_image_free(&image);
    od_mobilenetv2_free(net);
    od_safetensors_free(ref);
}

static void other_sizes_and_bad_arguments(void)
{
    od_error err;
    od_mobilenetv2 *net = load_net(257, 320);
    if (net == NULL)
        return;
    int64_t shape[3];
    OD_CHECK(od_mobilenetv2_layer_shape(net, "block_13_expand_relu", shape, &err) == 0);
    OD_CHECK(shape[0] == 17 && shape[1] == 20 && shape[2] == 576);
    OD_CHECK(od_mobilenetv2_layer_shape(net, "out_relu", shape, &err) == 0);
    OD_CHECK(shape[0] == 9 && shape[1] == 10 && shape[2] == 1280);
    OD_CHECK(od_mobilenetv2_layer_shape(net, "block_17_expand_relu", shape, &err) == -1);
    OD_CHECK(strstr(err.message, "block_17_expand_relu") != NULL);
    OD_CHECK(od_mobilenetv2_layer_shape(net, "block_10_add", shape, &err) == -1);

    float *image = od_alloc_floats(257 * 320 * 3);
    for (int64_t i = 0; i < 257 * 320 * 3; i++)
        image[i] = (float)(i % 251) / 250.0f;
    float logits[OD_MOBILENETV2_CLASSES];
    OD_CHECK(od_mobilenetv2_forward(net, image, NULL, NULL, logits, &err) == -1);
    OD_CHECK(strstr(err.message, "224") != NULL);
    float *mid = od_alloc_floats(17 * 20 * 576);
    OD_CHECK(od_mobilenetv2_forward(net, image, "block_13_expand_relu", mid, NULL, &err) == 0);
    int in_range = 1;
    for (int64_t i = 0; i < 17 * 20 * 576; i++)
        in_range &= mid[i] >= 0.0f && mid[i] <= 6.0f;
    OD_CHECK(in_range);
    od_free(mid);
    od_free(image);
    od_mobilenetv2_free(net);

    OD_CHECK(od_mobilenetv2_load(od_test_source_path(OD_MOBILENETV2_DEFAULT_PATH), 16, 224, &err) == NULL);
    OD_CHECK(od_mobilenetv2_load("/nonexistent/mobilenetv2.safetensors", 224, 224, &err) == NULL);
    OD_CHECK(strstr(err.message, "scripts/fetch_weights.sh") != NULL);
    /* A file with the wrong tensors is rejected with the tensor's name. */
    OD_CHECK(od_mobilenetv2_load(od_test_source_path("tests/ref/teacher_mobilenetv2.safetensors"),
                                 224, 224, &err) == NULL);
    OD_CHECK(strstr(err.message, "Conv1") != NULL);
}

int main(void)
{
    OD_RUN(mobilenetv2_matches_tfjs);
    OD_RUN(other_sizes_and_bad_arguments);
    return od_test_finish();
}
