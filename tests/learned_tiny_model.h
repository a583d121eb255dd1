/* A tiny randomly initialised model file for the learned detector's
 * tests: a 32 x 32 x 8 grid of 4 cm voxels over the default region, a
 * two-level volume network of 4 and 8 channels, 4-cell crops and a
 * one-block matcher of 8 channels. Its encoder is MobileNetV2
 * block_2_add (24 channels at stride 4) at 32 pixels.
 *
 * Included by the test programs (static functions, no separate object
 * file). */
#ifndef ODDONE_TESTS_LEARNED_TINY_MODEL_H
#define ODDONE_TESTS_LEARNED_TINY_MODEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "detect/learned.h"
#include "model/model_file.h"
#include "model/params.h"

#define TINY_ENCODER_CHANNELS 24

static const char tiny_config_text[] =
    "{\"name\": \"tiny\", \"variant\": \"full\","
    " \"image\": {\"width\": 32, \"height\": 32},"
    " \"views\": {\"build\": 2, \"supervise\": 2, \"batch\": 1},"
    " \"grid\": {\"min\": [-0.64, -0.64, 0.0], \"max\": [0.64, 0.64, 0.32], \"voxel_size\": 0.04},"
    " \"encoder2d\": {\"channels\": 8},"
    " \"volume_net\": {\"channels\": [4, 8], \"down_blocks\": [1, 1], \"up_blocks\": [1],"
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

static const od_model_encoder tiny_encoder = {"mobilenetv2", "block_2_add", 32};

/* Writes the tiny model, initialised from seed, to path. When density_bias
 * is not NAN, the density head's output bias is set to it (a large value
 * makes every voxel dense). A non-NULL boxes is written as
 * localization.boxes. */
static int tiny_model_write(const char *path, uint64_t seed, float density_bias, const char *boxes, od_error *err)
{
    char config_text[sizeof tiny_config_text + 64];
    const char *threshold = "\"density_threshold\": 0.5";
    const char *position = strstr(tiny_config_text, threshold);
    size_t head = (size_t)(position - tiny_config_text) + strlen(threshold);
    if (boxes == NULL)
        snprintf(config_text, sizeof config_text, "%s", tiny_config_text);
    else
        snprintf(config_text, sizeof config_text, "%.*s, \"boxes\": \"%s\"%s", (int)head, tiny_config_text, boxes,
                 tiny_config_text + head);
    od_model_config config;
    if (od_model_config_parse(config_text, strlen(config_text), "tiny", &config, err) != 0)
        return -1;
    od_params *params = od_params_new(err);
    if (params == NULL)
        return -1;
    int status = od_learned_build(&config, TINY_ENCODER_CHANNELS, 4, params, NULL, NULL, err);
    if (status == 0) {
        od_params_initialize(params, seed);
        od_param *bias = od_params_find(params, "volume_net.density_head.2.bias");
        if (bias == NULL)
            status = od_fail(err, "tiny model: no tensor volume_net.density_head.2.bias");
        else if (!isnan(density_bias))
            bias->value[0] = density_bias;
    }
    if (status == 0)
        status = od_model_file_save(path, params, config_text, &tiny_encoder, err);
    od_params_free(params);
    return status;
}

#endif
