/* Model files: a small volume network saved with its configuration loads
 * back bit-identical into a network built from the file's configuration.
 * Truncated files, a wrong configuration, missing tensors and bad metadata
 * fail with a message naming the file and the field or tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "model/model_file.h"
#include "model/volume_net.h"
#include "testlib.h"

/* A configuration with a 16 x 16 x 8 grid and a two-level network of 4 and
 * `channels1` channels; `variant` is its variant name. */
static char *small_config(const char *variant, int channels1)
{
    static const char *format =
        "{\"name\": \"small\", \"variant\": \"%s\","
        " \"image\": {\"width\": 32, \"height\": 32},"
        " \"views\": {\"build\": 2, \"supervise\": 2, \"batch\": 1},"
        " \"grid\": {\"min\": [-0.32, -0.32, 0.0], \"max\": [0.32, 0.32, 0.32], \"voxel_size\": 0.04},"
        " \"encoder2d\": {\"channels\": 8},"
        " \"volume_net\": {\"channels\": [4, %d], \"down_blocks\": [1, 1], \"up_blocks\": [1],"
        " \"head_hidden\": 8, \"batchnorm_momentum\": 0.1},"
        " \"teacher\": {\"network\": \"inceptionv3\", \"layer\": \"mixed2\", \"input_size\": 448, \"channels\": 4},"
        " \"render\": {\"samples_per_ray\": 8, \"colour_size\": 8, \"mask_size\": 8, \"feature_size\": 8},"
        " \"localization\": {\"density_threshold\": 0.5},"
        " \"crop\": {\"cells\": 4, \"pad_voxels\": 1},"
        " \"matcher\": {\"channels\": 8, \"heads\": 2, \"blocks\": 1, \"top_k\": 2},"
        " \"loss\": {\"colour\": 1, \"mask\": 1, \"feature\": 1, \"floor_pixel_weight\": 0.1,"
        " \"classification\": 1, \"reconstruction_stage2\": 0.1, \"anomaly_weight\": 0.7, \"normal_weight\": 0.3},"
        " \"optim\": {\"lr_backbone\": 1e-4, \"lr_matcher\": 2e-4, \"beta1\": 0, \"beta2\": 0.999, \"eps\": 1e-8,"
        " \"clip_grad_norm\": 1},"
        " \"schedule\": {\"stage1_steps\": 2, \"stage2_steps\": 2, \"warmup_steps\": 1, \"log_every\": 1,"
        " \"preview_every\": 1, \"checkpoint_every\": 1},"
        " \"augment\": {\"rotation_degrees\": 0, \"translation\": 0, \"flips\": false}}";
    size_t size = strlen(format) + 64;
    char *text = malloc(size);
    snprintf(text, size, format, variant, channels1);
    return text;
}

static const od_model_encoder test_encoder = {"mobilenetv2", "block_2_add", 32};

/* Builds the volume network of a configuration into a new parameter set. */
static od_params *build_params(const od_model_config *config, od_volume_net **net)
{
    od_error err = {{0}};
    od_params *params = od_params_new(&err);
    od_volume_net_config vc = od_volume_net_config_from_model(config);
    vc.in_channels = 24;
    *net = od_volume_net_new(&vc, params, "volume_net.", &err);
    if (*net == NULL)
        fprintf(stderr, "%s\n", err.message);
    return params;
}

static void test_model_file_round_trip(void)
{
    char *text = small_config("B", 8);
    od_model_config config;
    od_error err = {{0}};
    OD_CHECK(od_model_config_parse(text, strlen(text), "small", &config, &err) == 0);
    od_volume_net *net = NULL;
    od_params *params = build_params(&config, &net);
    OD_CHECK(net != NULL);
    od_params_initialize(params, 7);

    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", od_test_temp_dir());
    int status = od_model_file_save(path, params, text, &test_encoder, &err);
    if (status != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(status == 0);

    od_model_file *file = od_model_file_open(path, &err);
    OD_CHECK(file != NULL);
    if (file == NULL) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    OD_CHECK(strcmp(file->config_text, text) == 0);
    OD_CHECK(file->config.variant == OD_MODEL_VARIANT_B);
    OD_CHECK(file->config.channels[1] == 8);
    OD_CHECK(strcmp(file->encoder.network, "mobilenetv2") == 0);
    OD_CHECK(strcmp(file->encoder.layer, "block_2_add") == 0);
    OD_CHECK(file->encoder.input_size == 32);

    od_volume_net *loaded_net = NULL;
    od_params *loaded = build_params(&file->config, &loaded_net);
    OD_CHECK(od_model_file_load_params(file, loaded, &err) == 0);
    OD_CHECK(od_params_count(loaded) == od_params_count(params));
    for (int i = 0; i < od_params_count(params); i++) {
        const od_param *a = od_params_at(params, i);
        const od_param *b = od_params_find(loaded, a->name);
        OD_CHECK(b != NULL);
        if (b != NULL)
            OD_CHECK_IDENTICAL(a->name, a->value, b->value, a->count);
    }
    od_volume_net_free(loaded_net);
    od_params_free(loaded);
    od_model_file_close(file);
done:
    od_volume_net_free(net);
    od_params_free(params);
    free(text);
}

/* Saves a B model of the small configuration under the test folder and
 * returns its path. */
static const char *save_small(const char *name, od_params **params_out, od_volume_net **net_out)
{
    static char path[512];
    char *text = small_config("B", 8);
    od_model_config config;
    od_error err = {{0}};
    od_model_config_parse(text, strlen(text), "small", &config, &err);
    *params_out = build_params(&config, net_out);
    od_params_initialize(*params_out, 3);
    snprintf(path, sizeof path, "%s/%s", od_test_temp_dir(), name);
    OD_CHECK(od_model_file_save(path, *params_out, text, &test_encoder, &err) == 0);
    free(text);
    return path;
}

static void test_model_file_truncated(void)
{
    od_params *params;
    od_volume_net *net;
    const char *path = save_small("whole.safetensors", &params, &net);
    FILE *in = fopen(path, "rb");
    OD_CHECK(in != NULL);
    if (in == NULL)
        return;
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *bytes = malloc((size_t)size);
    OD_CHECK(fread(bytes, 1, (size_t)size, in) == (size_t)size);
    fclose(in);

    char cut[512];
    snprintf(cut, sizeof cut, "%s/cut.safetensors", od_test_temp_dir());
    FILE *out = fopen(cut, "wb");
    fwrite(bytes, 1, (size_t)(size - 100), out);
    fclose(out);
    od_error err = {{0}};
    OD_CHECK(od_model_file_open(cut, &err) == NULL);
    OD_CHECK(strstr(err.message, cut) != NULL);
    free(bytes);
    od_volume_net_free(net);
    od_params_free(params);
}

static void test_model_file_wrong_config(void)
{
    od_params *params;
    od_volume_net *net;
    const char *path = save_small("b8.safetensors", &params, &net);
    od_error err = {{0}};
    od_model_file *file = od_model_file_open(path, &err);
    OD_CHECK(file != NULL);

    /* A network of another width: the shape check names the tensor. */
    char *other_text = small_config("B", 16);
    od_model_config other;
    OD_CHECK(od_model_config_parse(other_text, strlen(other_text), "other", &other, &err) == 0);
    od_volume_net *other_net = NULL;
    od_params *other_params = build_params(&other, &other_net);
    od_params_initialize(other_params, 5);
    const od_param *first = od_params_at(other_params, 0);
    float before = first->value[0];
    OD_CHECK(od_model_file_load_params(file, other_params, &err) == -1);
    OD_CHECK(strstr(err.message, path) != NULL);
    OD_CHECK(strstr(err.message, "has shape") != NULL);
    OD_CHECK(first->value[0] == before);

    /* A set with one more tensor than the file: reported missing. */
    int64_t shape[1] = {3};
    OD_CHECK(od_params_add(params, "extra.weight", 1, shape, 1, OD_PARAM_INIT_ZEROS, 0, &err) != NULL);
    OD_CHECK(od_model_file_load_params(file, params, &err) == -1);
    OD_CHECK(strstr(err.message, "\"extra.weight\" is missing") != NULL);

    od_model_file_close(file);
    od_volume_net_free(other_net);
    od_params_free(other_params);
    od_volume_net_free(net);
    od_params_free(params);
    free(other_text);
}

static void test_model_file_missing_tensor(void)
{
    /* A file whose parameter set lacks a tensor that the networks have. */
    char *text = small_config("full", 8);
    od_error err = {{0}};
    od_params *partial = od_params_new(&err);
    int64_t shape[1] = {4};
    OD_CHECK(od_params_add(partial, "volume_net.stem.1.weight", 1, shape, 1, OD_PARAM_INIT_ONES, 0, &err) != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/partial.safetensors", od_test_temp_dir());
    OD_CHECK(od_model_file_save(path, partial, text, &test_encoder, &err) == 0);

    od_model_file *file = od_model_file_open(path, &err);
    OD_CHECK(file != NULL);
    od_volume_net *net = NULL;
    od_params *params = build_params(&file->config, &net);
    OD_CHECK(od_model_file_load_params(file, params, &err) == -1);
    OD_CHECK(strstr(err.message, path) != NULL);
    OD_CHECK(strstr(err.message, "is missing") != NULL);
    od_model_file_close(file);
    od_volume_net_free(net);
    od_params_free(params);
    od_params_free(partial);
    free(text);
}

/* Writes a file with one tensor and the given metadata (NULL values skipped). */
static const char *write_with_metadata(const char *name, const char *keys[], const char *values[], int count)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", od_test_temp_dir(), name);
    od_error err = {{0}};
    od_st_writer *writer = od_st_writer_new();
    float value = 1.0f;
    int64_t shape[1] = {1};
    od_st_writer_add(writer, "w", OD_DTYPE_F32, 1, shape, &value, &err);
    for (int i = 0; i < count; i++)
        if (values[i] != NULL)
            od_st_writer_set_metadata(writer, keys[i], values[i], &err);
    OD_CHECK(od_st_writer_write(writer, path, &err) == 0);
    od_st_writer_free(writer);
    return path;
}

static void test_model_file_bad_metadata(void)
{
    char *text = small_config("full", 8);
    const char *keys[6] = {"format", "config", "variant", "encoder_network", "encoder_layer", "encoder_input_size"};
    struct {
        const char *values[6];
        const char *expected;
    } cases[] = {
        {{"oddone-params-1", text, "full", "mobilenetv2", "block_2_add", "32"}, "\"format\" is \"oddone-params-1\""},
        {{OD_MODEL_FILE_FORMAT, NULL, "full", "mobilenetv2", "block_2_add", "32"}, "\"config\" is missing"},
        {{OD_MODEL_FILE_FORMAT, "{\"name\": 1}", "full", "mobilenetv2", "block_2_add", "32"}, "\"config\""},
        {{OD_MODEL_FILE_FORMAT, text, "A", "mobilenetv2", "block_2_add", "32"}, "\"variant\" is \"A\""},
        {{OD_MODEL_FILE_FORMAT, text, "full", "resnet", "block_2_add", "32"}, "\"encoder_network\""},
        {{OD_MODEL_FILE_FORMAT, text, "full", "mobilenetv2", NULL, "32"}, "\"encoder_layer\" is missing"},
        {{OD_MODEL_FILE_FORMAT, text, "full", "mobilenetv2", "block_2_add", "32px"}, "\"encoder_input_size\""},
        {{OD_MODEL_FILE_FORMAT, text, "full", "mobilenetv2", "block_2_add", "0"}, "\"encoder_input_size\""},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *path = write_with_metadata("meta.safetensors", keys, cases[c].values, 6);
        od_error err = {{0}};
        od_model_file *file = od_model_file_open(path, &err);
        OD_CHECK(file == NULL);
        OD_CHECK(strstr(err.message, path) != NULL);
        if (strstr(err.message, cases[c].expected) == NULL)
            fprintf(stderr, "case %zu: expected \"%s\" in: %s\n", c, cases[c].expected, err.message);
        OD_CHECK(strstr(err.message, cases[c].expected) != NULL);
        od_model_file_close(file);
    }

    /* Saving checks the configuration text and the encoder. */
    od_error err = {{0}};
    od_params *params = od_params_new(&err);
    char path[512];
    snprintf(path, sizeof path, "%s/never.safetensors", od_test_temp_dir());
    OD_CHECK(od_model_file_save(path, params, "{}", &test_encoder, &err) == -1);
    od_model_encoder bad = test_encoder;
    bad.input_size = 0;
    OD_CHECK(od_model_file_save(path, params, text, &bad, &err) == -1);
    OD_CHECK(fopen(path, "rb") == NULL);
    OD_CHECK(od_model_file_open(path, &err) == NULL);
    OD_CHECK(strstr(err.message, path) != NULL);
    od_params_free(params);
    free(text);
}

int main(void)
{
    OD_RUN(test_model_file_round_trip);
    OD_RUN(test_model_file_truncated);
    OD_RUN(test_model_file_wrong_config);
    OD_RUN(test_model_file_missing_tensor);
    OD_RUN(test_model_file_bad_metadata);
    return od_test_finish();
}
