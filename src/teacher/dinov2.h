/* DINOv2 vision transformer forward pass with the weights of a Hugging Face
 * Dinov2Model checkpoint, such as the model.safetensors of
 * facebook/dinov2-small (ViT-S/14: 12 layers, hidden 384, 6 heads of 64,
 * MLP 1536, a 37 x 37 position table).
 *
 * The keys are those of transformers' Dinov2Model:
 *   embeddings.cls_token                              (1, 1, C)
 *   embeddings.mask_token                             (1, C), checked, unused
 *   embeddings.position_embeddings                    (1, 1 + S * S, C)
 *   embeddings.patch_embeddings.projection.weight     (C, 3, P, P), and .bias (C)
 *   encoder.layer.{i}.norm1.weight, .bias             (C)
 *   encoder.layer.{i}.attention.attention.{query,key,value}.weight (C, C), .bias (C)
 *   encoder.layer.{i}.attention.output.dense.weight   (C, C), .bias (C)
 *   encoder.layer.{i}.layer_scale1.lambda1            (C)
 *   encoder.layer.{i}.norm2.weight, .bias             (C)
 *   encoder.layer.{i}.mlp.fc1.weight                  (M, C), .bias (M)
 *   encoder.layer.{i}.mlp.fc2.weight                  (C, M), .bias (C)
 *   encoder.layer.{i}.layer_scale2.lambda1            (C)
 *   layernorm.weight, .bias                           (C)
 * C, M, P, S and the layer count come from the shapes; every tensor may be
 * F32, F64, F16 or BF16 and is converted to float at load. Layer norms use
 * eps 1e-6 and the MLP the exact (erf) GELU, as the DINOv2 checkpoints do.
 *
 * Each block is pre-norm with layer scale:
 *     x = x + lambda1 * attention(norm1(x))
 *     x = x + lambda2 * fc2(gelu(fc1(norm2(x))))
 * and the final layer norm follows the last block.
 *
 * Position embeddings for a patch grid other than the square S x S table
 * are interpolated as transformers' Dinov2Embeddings.interpolate_pos_encoding
 * does: bicubic (A = -0.75), as PyTorch's F.interpolate(align_corners=False)
 * computes it in float32, with taps outside the table repeating its border.
 * The CLS position is not interpolated. transformers has used two formulas,
 * and od_dinov2_positions selects one. */
#ifndef ODDONE_TEACHER_DINOV2_H
#define ODDONE_TEACHER_DINOV2_H

#include <stdint.h>

#include "core/error.h"
#include "io/image.h"

/* Head width of every released DINOv2 size (ViT-S, B, L and g). */
#define OD_DINOV2_HEAD_DIM 64

typedef struct od_dinov2 od_dinov2;

/* Position-embedding interpolation formula. */
typedef enum od_dinov2_positions {
    /* scale_factor = ((grid_h + 0.1) / S, (grid_w + 0.1) / S), so output
     * index i samples input coordinate (i + 0.5) / scale_factor - 0.5: the
     * formula of transformers 4.38 and of facebookresearch/dinov2 (its
     * interpolate_offset 0.1). The default. */
    OD_DINOV2_POSITIONS_SCALE_FACTOR = 0,
    /* size = (grid_h, grid_w), so output index i samples input coordinate
     * (i + 0.5) * S / grid - 0.5: the formula of transformers' main branch
     * by 2025. */
    OD_DINOV2_POSITIONS_SIZE = 1,
} od_dinov2_positions;

/* Sizes of a loaded model. */
typedef struct od_dinov2_info {
    int64_t hidden;      /* C, the token width */
    int64_t heads;
    int64_t mlp_hidden;  /* M */
    int64_t layers;
    int64_t patch_size;  /* P, pixels per patch side */
    int64_t table_side;  /* S, the position table is S x S patches */
} od_dinov2_info;

/* Loads a checkpoint. heads is the attention head count, which the
 * weights do not record (transformers keeps it in config.json); 0 means
 * hidden / OD_DINOV2_HEAD_DIM, right for every released DINOv2. Each key's
 * presence, dtype and shape is checked, and an error names the file and
 * the key that is missing or wrong. */
od_dinov2 *od_dinov2_load(const char *path, int64_t heads, od_error *err);
void od_dinov2_free(od_dinov2 *net);

od_dinov2_info od_dinov2_get_info(const od_dinov2 *net);

/* Selects the position-embedding interpolation of later forwards. Fails
 * on a value outside the enum. */
int od_dinov2_set_positions(od_dinov2 *net, od_dinov2_positions positions, od_error *err);

/* Runs the network on one image.
 * image is (height, width, 3) RGB in [0, 1]; the forward normalises it
 * with the ImageNet mean (0.485, 0.456, 0.406) and standard deviation
 * (0.229, 0.224, 0.225). height and width must be positive multiples of
 * the patch size; the grid is (height / P, width / P).
 * patch_tokens is (height / P, width / P, C), the patch tokens after the
 * final layer norm, or NULL.
 * cls_token is (C), the CLS token after the final layer norm, or NULL.
 * layer_index selects a block (0 .. layers - 1) whose output patch tokens
 * go to layer_tokens, (height / P, width / P, C), without the final
 * layer norm (transformers' hidden_states[layer_index + 1] less its CLS
 * row); -1 and NULL skip it.
 * Fails on an invalid size or layer index, or when memory runs out. */
int od_dinov2_forward(const od_dinov2 *net, const float *image, int64_t height, int64_t width,
                      float *patch_tokens, float *cls_token, int64_t layer_index,
                      float *layer_tokens, od_error *err);

/* Resizes an RGB image to height x width with od_image_resize (antialiased
 * bilinear) and runs od_dinov2_forward on it; the outputs are as there.
 * Fails when the image does not have 3 channels. */
int od_dinov2_forward_image(const od_dinov2 *net, const od_image *image, int64_t height,
                            int64_t width, float *patch_tokens, float *cls_token,
                            int64_t layer_index, float *layer_tokens, od_error *err);

#endif
