/* MobileNetV2 (alpha 1.0) forward pass with the weights of the nsfwjs@4.3.0
 * npm package, converted by scripts/fetch_weights.sh.
 *
 * The network is Keras' MobileNetV2 started from ImageNet weights and
 * fine-tuned on a 5-class task. Its head is average pooling, then dense
 * layers of 256 and 128 units with ReLU and a 5-unit dense layer. The
 * package feeds it RGB values in [0, 1] (pixel / 255) with no further
 * scaling, and so does this forward.
 *
 * Batch norm is folded into the preceding convolution at load:
 * w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps).
 *
 * One object serves one input size (oneDNN layers are made per shape).
 * Intermediate layers carry Keras' names:
 *   Conv1_relu                       (H/2,  W/2,  32)
 *   expanded_conv_project_BN         (H/2,  W/2,  16)
 *   block_<i>_expand_relu            i = 1..16, the block's input size, 6 x its input channels
 *   block_<i>_depthwise_relu         the block's output size, 6 x its input channels
 *   block_<i>_project_BN             the block's output size and channels
 *   block_<i>_add                    blocks with a residual connection
 *   out_relu                         (H/32, W/32, 1280)
 * block_13_expand_relu is (H/16, W/16, 576). The logits (the 5 values
 * before the final softmax) need the 224 x 224 input, for which the head's
 * 7 x 7 pooling covers the whole map. */
#ifndef ODDONE_TEACHER_MOBILENETV2_H
#define ODDONE_TEACHER_MOBILENETV2_H

#include <stdint.h>

#include "core/error.h"
#include "io/image.h"

#define OD_MOBILENETV2_INPUT_SIZE 224
#define OD_MOBILENETV2_CLASSES 5
/* Output path of scripts/fetch_weights.sh, relative to the repository root. */
#define OD_MOBILENETV2_DEFAULT_PATH "models/cache/mobilenetv2.safetensors"

typedef struct od_mobilenetv2 od_mobilenetv2;

/* Loads the converted weights for an input of height x width pixels (each
 * at least 32). Every tensor's shape is checked. A missing file gives an
 * error that names scripts/fetch_weights.sh. */
od_mobilenetv2 *od_mobilenetv2_load(const char *path, int64_t height, int64_t width,
                                    od_error *err);
void od_mobilenetv2_free(od_mobilenetv2 *net);

/* Writes the shape (H, W, C) of a named layer's output; fails on an
 * unknown name. */
int od_mobilenetv2_layer_shape(const od_mobilenetv2 *net, const char *layer, int64_t shape[3],
                               od_error *err);

/* image is (H, W, 3) RGB in [0, 1] at the object's size.
 * layer may be NULL; otherwise layer_out receives that layer's output,
 * (H', W', C') channels-last as od_mobilenetv2_layer_shape returns.
 * logits may be NULL; otherwise it receives (5) values, and the input must
 * be 224 x 224. The forward stops after the last output it needs. */
int od_mobilenetv2_forward(od_mobilenetv2 *net, const float *image, const char *layer,
                           float *layer_out, float *logits, od_error *err);

/* Resizes an RGB image to the object's size with od_image_resize and runs
 * the forward. (The package resizes with bilinear align_corners=True
 * instead, so results for images not already at that size differ a little
 * from the package's.) */
int od_mobilenetv2_forward_image(od_mobilenetv2 *net, const od_image *image, const char *layer,
                                 float *layer_out, float *logits, od_error *err);

#endif
