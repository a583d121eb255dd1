/* The learned model's configuration: sizes of the network, rendering,
 * matcher, losses and training schedule, read from a JSON file such as
 * configs/cpu.json or configs/paper.json.
 *
 * The file is one object of sections; every field listed below is
 * required, and a field or section that the reader does not know is
 * rejected, so that a misspelt key fails instead of silently keeping a
 * default. Each object may also carry a "comment" string, which is
 * ignored. Every value is range-checked, and an error names the file, the
 * field (as "section.field" or "section.field[i]") and the expected range.
 *
 *   name          string, 1 to 63 characters
 *   variant       "full", "A", "B" or "C" (the ablation variants: A no
 *                 comparison, B plain attention between objects, C B plus
 *                 teacher distillation, full C plus sparse voxel attention)
 *   image         width, height: pixels the views are resized to, a
 *                 multiple of 16 (the 2D pyramid's coarsest stride)
 *   views         build, supervise: views per scene that build the volume
 *                 and that supervise its rendering; batch: scenes a step
 *   grid          min, max: world box [x, y, z] in metres; voxel_size in
 *                 metres. The dims (box / voxel size) must be divisible by
 *                 2^(levels - 1) for the encoder-decoder.
 *   encoder2d     channels: C of the merged stride-4 map that is lifted
 *   volume_net    channels[levels], down_blocks[levels],
 *                 up_blocks[levels - 1] (levels 0 .. levels - 2 on the
 *                 way up), head_hidden (width of the per-voxel heads'
 *                 hidden layer), batchnorm_momentum
 *   teacher       network ("inceptionv3", "mobilenetv2", "dinov2"), layer,
 *                 input_size (pixels), channels (k, after PCA: the width
 *                 of the feature head)
 *   render        samples_per_ray; colour_size, mask_size, feature_size:
 *                 sides of the square renders that the colour, silhouette
 *                 and teacher-feature losses compare
 *   localization  density_threshold (on the softplus density); boxes,
 *                 optional: "density" (the default) or "masks", where
 *                 detection takes its boxes by default (detect/learned.h)
 *   crop          cells (side of the RoI crop), pad_voxels; lifted,
 *                 optional (default false): the crops also carry the
 *                 volume network's input, the lifted encoder features
 *   matcher       channels, heads (channels divisible by heads), blocks,
 *                 top_k
 *   loss          colour, mask, feature (stage-1 weights),
 *                 floor_pixel_weight (weight of a floor pixel in the colour
 *                 loss relative to an object pixel), classification,
 *                 reconstruction_stage2 (weight of the reconstruction
 *                 losses in stage 2), anomaly_weight, normal_weight (BCE)
 *   optim         lr_backbone, lr_matcher, beta1, beta2, eps,
 *                 clip_grad_norm (0: no clipping)
 *   schedule      stage1_steps, stage2_steps, warmup_steps, log_every,
 *                 preview_every, checkpoint_every
 *   augment       rotation_degrees, translation (metres), flips (bool)
 */
#ifndef ODDONE_MODEL_CONFIG_H
#define ODDONE_MODEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Most levels of the 3D encoder-decoder. */
#define OD_MODEL_MAX_LEVELS 5
#define OD_MODEL_NAME_SIZE 64

typedef enum od_model_variant {
    OD_MODEL_VARIANT_FULL = 0,
    OD_MODEL_VARIANT_A = 1, /* no comparison between objects */
    OD_MODEL_VARIANT_B = 2, /* plain attention between objects */
    OD_MODEL_VARIANT_C = 3, /* B plus teacher-feature distillation */
} od_model_variant;

typedef struct od_model_config {
    char name[OD_MODEL_NAME_SIZE];
    od_model_variant variant;

    int64_t image_width, image_height;
    int64_t views_build, views_supervise, batch;

    double grid_min[3], grid_max[3]; /* metres, (x, y, z) */
    double voxel_size;               /* metres */
    int64_t grid_dims[3];            /* voxels along x, y, z, derived from the box */

    int64_t encoder_channels;

    int levels;
    int64_t channels[OD_MODEL_MAX_LEVELS];
    int down_blocks[OD_MODEL_MAX_LEVELS];
    int up_blocks[OD_MODEL_MAX_LEVELS - 1];
    int64_t head_hidden;
    double batchnorm_momentum;

    char teacher_network[16];
    char teacher_layer[OD_MODEL_NAME_SIZE];
    int64_t teacher_input_size;
    int64_t teacher_channels;

    int64_t samples_per_ray;
    int64_t colour_size, mask_size, feature_size;

    double density_threshold;
    int boxes_from_masks; /* 1 when localization.boxes is "masks" */

    int64_t crop_cells;
    double crop_pad_voxels;
    int crop_lifted; /* crop.lifted: the crops also carry the lifted encoder features */

    int64_t matcher_channels, matcher_heads, matcher_blocks, top_k;

    double loss_colour, loss_mask, loss_feature, floor_pixel_weight;
    double loss_classification, loss_reconstruction_stage2;
    double anomaly_weight, normal_weight;

    double lr_backbone, lr_matcher, beta1, beta2, eps, clip_grad_norm;

    int64_t stage1_steps, stage2_steps, warmup_steps;
    int64_t log_every, preview_every, checkpoint_every;

    double rotation_degrees, translation;
    int flips;
} od_model_config;

/* Reads and validates a configuration file. On failure *config is
 * unspecified and the message names the file and the field. */
int od_model_config_load(const char *path, od_model_config *config, od_error *err);

/* Parses a configuration from `size` bytes of JSON text; source names it
 * in messages. */
int od_model_config_parse(const char *text, size_t size, const char *source,
                          od_model_config *config, od_error *err);

/* Returns "full", "A", "B" or "C". */
const char *od_model_variant_name(od_model_variant variant);

#endif
