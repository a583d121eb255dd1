/* The light feature pyramid of the 2D side: it merges backbone feature
 * maps at strides 4, 8, 16 (, 32) into one stride-4 map of C channels,
 * the map that lifting back-projects into the voxel grid. Forward and
 * backward.
 *
 * For MobileNetV2 the inputs are its blocks' outputs at those strides,
 * e.g. block_2_add (24 channels, stride 4), block_5_add (32, stride 8)
 * and block_12_add (96, stride 16).
 *
 *   level i     input (N, H >> i, W >> i, C_i), stride 4 * 2^i
 *   lateral i   1x1 convolution C_i -> C with bias
 *   merge       out = sum over i of upsample(lateral_i, factor 2^i)
 *   output      (N, H, W, C)
 *
 * Upsampling is bilinear with half-pixel centres, PyTorch's
 * F.interpolate(mode="bilinear", align_corners=False) with an integer
 * scale factor: output pixel o reads input position (o + 0.5) / s - 0.5,
 * clamped at 0 below and at the last pixel above.
 *
 * Parameters carry Conv2d's names and layout: "lateral.<i>.weight"
 * (C, C_i, 1, 1) and "lateral.<i>.bias" (C). The upsampling does not
 * depend on the thread count: threads split output rows in the forward,
 * and in the backward each image's gradient is summed by one thread in a
 * fixed order. */
#ifndef ODDONE_MODEL_PYRAMID_H
#define ODDONE_MODEL_PYRAMID_H

#include <stdint.h>

#include "core/error.h"
#include "model/params.h"

#define OD_PYRAMID_MAX_LEVELS 4

typedef struct od_pyramid_config {
    int64_t batch;
    int64_t height, width; /* of the stride-4 map, level 0 */
    int levels;            /* 1 to OD_PYRAMID_MAX_LEVELS */
    int64_t in_channels[OD_PYRAMID_MAX_LEVELS];
    int64_t out_channels; /* C */
} od_pyramid_config;

typedef struct od_pyramid od_pyramid;

/* Builds the pyramid and registers its tensors in params under prefix.
 * height and width must be divisible by 2^(levels - 1). */
od_pyramid *od_pyramid_new(const od_pyramid_config *config, od_params *params, const char *prefix,
                           od_error *err);
void od_pyramid_free(od_pyramid *pyramid);

/* inputs[i] is level i's map (N, H >> i, W >> i, C_i); out is (N, H, W, C)
 * and is overwritten. The inputs must stay unchanged until the backward,
 * which reads them. */
int od_pyramid_forward(od_pyramid *pyramid, const float *const *inputs, float *out, od_error *err);

/* Backward of the last forward from d_out (N, H, W, C). Accumulates into
 * the parameters' gradients and into d_inputs[i] (shaped as inputs[i])
 * for each i where d_inputs is not NULL and d_inputs[i] is not NULL. */
int od_pyramid_backward(od_pyramid *pyramid, const float *d_out, float *const *d_inputs, od_error *err);

#endif
