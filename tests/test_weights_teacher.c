/* The unified teacher interface (teacher/teacher.h): map shapes, strides
 * and cell offsets of each network at given input sizes, and features
 * identical to those of the direct network call on the same resized image.
 *
 * Needs models/cache/inceptionv3.safetensors and mobilenetv2.safetensors
 * (scripts/fetch_weights.sh). DINOv2 runs with the small random weights of
 * tests/ref/dinov2_random_weights.safetensors (3 heads, patch 14), copied
 * beside a config.json that states the head count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "io/image.h"
#include "teacher/dinov2.h"
#include "teacher/keras_graph.h"
#include "teacher/mobilenetv2.h"
#include "teacher/teacher.h"
#include "testlib.h"

/* Reads the committed 224 x 224 test input. */
static int read_input(od_image *image)
{
    od_error err;
    if (od_image_read(od_test_source_path("tests/ref/teacher_mobilenetv2_input.png"), NULL, image, &err) != 0) {
        od_test_record(0, __FILE__, __LINE__, err.message);
        return -1;
    }
    return 0;
}

typedef struct shape_case {
    od_teacher_network network;
    const char *layer;
    int64_t input_size;
    int64_t height, channels, stride;
    double offset;
} shape_case;

static void shapes_and_strides(void)
{
    /* InceptionV3's "valid" stem trims the border: mixed0..2 cell j sits
     * at input pixel 8 j + 13, mixed3 cell j at 16 j + 21, mixed8 cell j
     * at 32 j + 37, whatever the input size. */
    static const shape_case cases[] = {
        {OD_TEACHER_INCEPTIONV3, "mixed0", 299, 35, 256, 8, 13.0},
        {OD_TEACHER_INCEPTIONV3, "mixed2", 299, 35, 288, 8, 13.0},
        {OD_TEACHER_INCEPTIONV3, "mixed3", 299, 17, 768, 16, 21.0},
        {OD_TEACHER_INCEPTIONV3, "mixed2", 448, 53, 288, 8, 13.0},
        {OD_TEACHER_INCEPTIONV3, "mixed3", 448, 26, 768, 16, 21.0},
        {OD_TEACHER_INCEPTIONV3, "mixed8", 448, 12, 1280, 32, 37.0},
        {OD_TEACHER_MOBILENETV2, "block_6_expand_relu", 448, 56, 192, 8, 3.5},
        {OD_TEACHER_MOBILENETV2, "block_13_expand_relu", 224, 14, 576, 16, 7.5},
        {OD_TEACHER_MOBILENETV2, "block_3_expand_relu", 224, 56, 144, 4, 1.5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const shape_case *c = &cases[i];
        od_error err;
        od_teacher *teacher = od_teacher_open(c->network, od_test_source_path(od_teacher_default_weights(c->network)),
                                              c->layer, c->input_size, &err);
        if (teacher == NULL) {
            od_test_record(0, __FILE__, __LINE__, err.message);
            continue;
        }
        const od_teacher_info info = od_teacher_get_info(teacher);
        OD_CHECK(info.network == c->network);
        OD_CHECK(strcmp(info.layer, c->layer) == 0);
        OD_CHECK(info.input_size == c->input_size);
        OD_CHECK(info.height == c->height);
        OD_CHECK(info.width == c->height);
        OD_CHECK(info.channels == c->channels);
        OD_CHECK(info.stride == c->stride);
        OD_CHECK(info.offset == c->offset);
        od_teacher_free(teacher);
    }
}

static void defaults_give_16_cells(void)
{
    for (int n = 0; n < OD_TEACHER_NETWORK_COUNT; n++) {
        const od_teacher_network network = (od_teacher_network)n;
        OD_CHECK(od_teacher_default_layer(network) != NULL);
        if (network == OD_TEACHER_DINOV2) {
            OD_CHECK(od_teacher_default_weights(network) == NULL);
            OD_CHECK(od_teacher_default_input_size(network) % 14 == 0);
            OD_CHECK(od_teacher_default_input_size(network) / 14 >= 16);
            continue;
        }
        od_error err;
        od_teacher *teacher =
            od_teacher_open(network, od_test_source_path(od_teacher_default_weights(network)), NULL, 0, &err);
        if (teacher == NULL) {
            od_test_record(0, __FILE__, __LINE__, err.message);
            continue;
        }
        const od_teacher_info info = od_teacher_get_info(teacher);
        OD_CHECK(strcmp(info.layer, od_teacher_default_layer(network)) == 0);
        OD_CHECK(info.input_size == od_teacher_default_input_size(network));
        OD_CHECK(info.height >= 16);
        od_teacher_free(teacher);
    }
}

static void inceptionv3_matches_direct_call(void)
{
    od_image image = {0}, resized = {0};
    if (read_input(&image) != 0)
        return;
    od_error err;
    const char *path = od_test_source_path(OD_INCEPTIONV3_DEFAULT_PATH);
    od_teacher *teacher = od_teacher_open(OD_TEACHER_INCEPTIONV3, path, "mixed2", 299, &err);
    od_keras_graph *graph = od_keras_graph_load(path, 299, 299, "mixed2", &err);
    OD_CHECK(teacher != NULL);
    OD_CHECK(graph != NULL);
    if (teacher != NULL && graph != NULL) {
        const int64_t count = 35 * 35 * 288;
        float *got = od_alloc_floats(count), *want = od_alloc_floats(count);
        OD_CHECK(od_teacher_run(teacher, &image, got, &err) == 0);
        OD_CHECK(od_image_resize(&image, 299, 299, &resized, &err) == 0);
        OD_CHECK(od_keras_graph_forward(graph, resized.pixels, "mixed2", want, &err) == 0);
        OD_CHECK_IDENTICAL("inceptionv3 mixed2", got, want, count);
        /* A second run reuses the teacher's resize buffer. */
        OD_CHECK(od_teacher_run(teacher, &image, got, &err) == 0);
        OD_CHECK_IDENTICAL("inceptionv3 mixed2, second run", got, want, count);
        od_free(got);
        od_free(want);
    }
    od_keras_graph_free(graph);
    od_teacher_free(teacher);
    od_image_free(&resized);
    od_image_free(&image);
}

static void mobilenetv2_matches_direct_call(void)
{
    od_image image = {0};
    if (read_input(&image) != 0)
        return;
    od_error err;
    const char *path = od_test_source_path(OD_MOBILENETV2_DEFAULT_PATH);
    od_teacher *teacher = od_teacher_open(OD_TEACHER_MOBILENETV2, path, "block_6_expand_relu", 448, &err);
    od_mobilenetv2 *net = od_mobilenetv2_load(path, 448, 448, &err);
    OD_CHECK(teacher != NULL);
    OD_CHECK(net != NULL);
    if (teacher != NULL && net != NULL) {
        const int64_t count = 56 * 56 * 192;
        float *got = od_alloc_floats(count), *want = od_alloc_floats(count);
        OD_CHECK(od_teacher_run(teacher, &image, got, &err) == 0);
        OD_CHECK(od_mobilenetv2_forward_image(net, &image, "block_6_expand_relu", want, NULL, &err) == 0);
        OD_CHECK_IDENTICAL("mobilenetv2 block_6_expand_relu", got, want, count);
        od_free(got);
        od_free(want);
    }
    od_mobilenetv2_free(net);
    od_teacher_free(teacher);
    od_image_free(&image);
}

/* Copies the random DINOv2 weights into a temporary folder beside a
 * config.json with heads_text as its num_attention_heads. */
static const char *dinov2_checkpoint(const char *heads_text)
{
    static char path[4096];
    const char *folder = od_test_temp_dir();
    snprintf(path, sizeof path, "%s/model.safetensors", folder);
    FILE *in = fopen(od_test_source_path("tests/ref/dinov2_random_weights.safetensors"), "rb");
    FILE *out = fopen(path, "wb");
    if (in != NULL && out != NULL) {
        char buffer[65536];
        size_t got;
        while ((got = fread(buffer, 1, sizeof buffer, in)) > 0)
            fwrite(buffer, 1, got, out);
    }
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        fclose(out);
    char config[4200];
    snprintf(config, sizeof config, "%s/config.json", folder);
    FILE *file = fopen(config, "w");
    if (file != NULL) {
        fprintf(file, "{\"model_type\": \"dinov2\", \"num_attention_heads\": %s}\n", heads_text);
        fclose(file);
    }
    return path;
}

static void dinov2_matches_direct_call(void)
{
    od_image image = {0};
    if (read_input(&image) != 0)
        return;
    od_error err;
    const char *path = dinov2_checkpoint("3");
    od_dinov2 *net = od_dinov2_load(path, 3, &err);
    OD_CHECK(net != NULL);
    const char *layers[] = {"last", "block_0", "block_1"};
    for (int l = 0; l < 3 && net != NULL; l++) {
        od_teacher *teacher = od_teacher_open(OD_TEACHER_DINOV2, path, layers[l], 56, &err);
        if (teacher == NULL) {
            od_test_record(0, __FILE__, __LINE__, err.message);
            continue;
        }
        const od_teacher_info info = od_teacher_get_info(teacher);
        OD_CHECK(info.height == 4);
        OD_CHECK(info.width == 4);
        OD_CHECK(info.channels == 48);
        OD_CHECK(info.stride == 14);
        OD_CHECK(info.offset == 6.5);
        const int64_t count = 4 * 4 * 48;
        float *got = od_alloc_floats(count), *want = od_alloc_floats(count);
        OD_CHECK(od_teacher_run(teacher, &image, got, &err) == 0);
        if (l == 0)
            OD_CHECK(od_dinov2_forward_image(net, &image, 56, 56, want, NULL, -1, NULL, &err) == 0);
        else
            OD_CHECK(od_dinov2_forward_image(net, &image, 56, 56, NULL, NULL, l - 1, want, &err) == 0);
        OD_CHECK_IDENTICAL(layers[l], got, want, count);
        od_free(got);
        od_free(want);
        od_teacher_free(teacher);
    }
    od_dinov2_free(net);
    od_image_free(&image);
}

static void bad_arguments_are_rejected(void)
{
    od_error err;
    od_teacher_network network;
    OD_CHECK(od_teacher_network_parse("vgg16", &network, &err) == -1);
    OD_CHECK(strstr(err.message, "vgg16") != NULL);
    OD_CHECK(od_teacher_network_parse("mobilenetv2", &network, &err) == 0);
    OD_CHECK(network == OD_TEACHER_MOBILENETV2);

    /* od_test_source_path returns a static buffer that the next call reuses. */
    char inception[4096];
    snprintf(inception, sizeof inception, "%s", od_test_source_path(OD_INCEPTIONV3_DEFAULT_PATH));
    OD_CHECK(od_teacher_open(OD_TEACHER_INCEPTIONV3, inception, "mixed_nine", 299, &err) == NULL);
    OD_CHECK(strstr(err.message, "mixed_nine") != NULL);
    OD_CHECK(od_teacher_open(OD_TEACHER_INCEPTIONV3, inception, "mixed2", -5, &err) == NULL);
    OD_CHECK(od_teacher_open(OD_TEACHER_MOBILENETV2, od_test_source_path(OD_MOBILENETV2_DEFAULT_PATH), NULL, 16,
                             &err) == NULL);
    OD_CHECK(od_teacher_open(OD_TEACHER_INCEPTIONV3, "/nonexistent/inceptionv3.safetensors", NULL, 0, &err) == NULL);
    OD_CHECK(strstr(err.message, "scripts/fetch_weights.sh") != NULL);
    OD_CHECK(od_teacher_open(OD_TEACHER_DINOV2, NULL, NULL, 0, &err) == NULL);
    OD_CHECK(strstr(err.message, "dinov2-small") != NULL);

    const char *dinov2 = dinov2_checkpoint("3");
    OD_CHECK(od_teacher_open(OD_TEACHER_DINOV2, dinov2, "last", 50, &err) == NULL);
    OD_CHECK(strstr(err.message, "multiple of its patch size 14") != NULL);
    OD_CHECK(od_teacher_open(OD_TEACHER_DINOV2, dinov2, "block_2", 56, &err) == NULL);
    OD_CHECK(strstr(err.message, "block_1") != NULL);
    dinov2 = dinov2_checkpoint("\"three\"");
    OD_CHECK(od_teacher_open(OD_TEACHER_DINOV2, dinov2, "last", 56, &err) == NULL);
    OD_CHECK(strstr(err.message, "num_attention_heads") != NULL);

    od_teacher *teacher = od_teacher_open(OD_TEACHER_INCEPTIONV3, inception, "mixed0", 75, &err);
    OD_CHECK(teacher != NULL);
    if (teacher != NULL) {
        od_image grey = {0};
        OD_CHECK(od_image_new(75, 75, 1, &grey, &err) == 0);
        float out[1];
        OD_CHECK(od_teacher_run(teacher, &grey, out, &err) == -1);
        OD_CHECK(strstr(err.message, "3 channels") != NULL);
        od_image_free(&grey);
        od_teacher_free(teacher);
    }
}

int main(void)
{
    OD_RUN(shapes_and_strides);
    OD_RUN(defaults_give_16_cells);
    OD_RUN(inceptionv3_matches_direct_call);
    OD_RUN(mobilenetv2_matches_direct_call);
    OD_RUN(dinov2_matches_direct_call);
    OD_RUN(bad_arguments_are_rejected);
    return od_test_finish();
}
