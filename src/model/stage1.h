/* Stage 1 of training, reconstruction: the 3D network learns to render
 * each scene's views from features lifted out of other views of it.
 *
 * The 2D encoder is frozen in this stage: its feature maps are computed
 * once per scene (od_stage1_scene) and reused by every step on that scene.
 * The issue allows this trade of faithfulness for time; the pyramid
 * (model/pyramid.h) is not trained here. The frozen maps go straight into
 * lifting, so the volume network's input width is the encoder layer's
 * channel count, not encoder2d.channels.
 *
 * One step on a scene with view sets A and B:
 *   1. lift A's encoder maps into the grid (geometry/lift.h);
 *   2. run the volume network (model/volume_net.h) in training mode;
 *   3. render B's views through the grid (nn/render.h): colour at
 *      render.colour_size, the silhouette at render.mask_size and the
 *      teacher-space features at render.feature_size, with stratified
 *      samples drawn from the step's seed. When mask_size equals
 *      feature_size, the feature render's opacity is the silhouette;
 *   4. losses against B's targets:
 *      colour   MSE, each pixel weighted 1 on an object and
 *               loss.floor_pixel_weight on the floor (weighted mean), so
 *               that the floor does not turn into one big object. No
 *               background colour is mixed in: a transparent ray renders
 *               black;
 *      mask     MSE between the silhouette (opacity) and the union of the
 *               object masks. MSE rather than BCE, because the opacity is
 *               a probability and not a logit;
 *      feature  1 - cosine between rendered and teacher features, rows
 *               weighted as the colour pixels. Its gradient reaches the
 *               feature head only, never the density;
 *      total    loss.colour * colour + loss.mask * mask + loss.feature *
 *               feature;
 *   5. backward through the renders and the volume network;
 * then the same with A and B swapped (B builds, A supervises). The two
 * passes' gradients add up with weight 1/2 each, so the reported loss is
 * the mean of the two. Then the gradient is clipped to
 * optim.clip_grad_norm (0: not clipped), and Adam takes one step with
 * optim.lr_backbone, beta1, beta2 and eps.
 *
 * Targets at render sizes. Render pixel centres follow geometry/rays.h:
 * pixel (i, j) of an F x F render sits at image coordinate
 * (j + 0.5) W / F - 0.5, so the colour and mask targets are the view's
 * image and mask resized to F x F by od_image_resize. Teacher features
 * come as a map over the teacher's square input of side S (the view
 * resized to S x S, the aspect ratio not kept, as teacher/teacher.h does)
 * with cell (r, q) centred at input pixel (offset + stride q,
 * offset + stride r). Render pixel (i, j) sits at input pixel
 * x = (j + 0.5) S / F - 0.5, that is cell q = (x - offset) / stride, and
 * the target is the map sampled bilinearly there, clamped to the map's
 * cell centres at the border. The offset matters: InceptionV3's mixed2
 * has its first cell centre at input pixel 13, not at stride / 2 - 0.5.
 *
 * Determinism: every layer is bit-identical for a thread count, the ray
 * jitter of view v in pass p of step t is forked from the seed by
 * (t, p, v), so two runs with one seed give bit-identical parameters. */
#ifndef ODDONE_MODEL_STAGE1_H
#define ODDONE_MODEL_STAGE1_H

#include <stdint.h>

#include "core/error.h"
#include "eval/pca.h"
#include "geometry/camera.h"
#include "io/image.h"
#include "model/config.h"
#include "model/params.h"
#include "nn/optim.h"
#include "scene/scene.h"
#include "teacher/feature_cache.h"
#include "teacher/teacher.h"

/* A frozen feature map of one view: (height, width, channels)
 * channels-last, over a square input of input_size pixels (the view
 * resized to it), cell (r, q) centred at input pixel (offset + stride q,
 * offset + stride r). */
typedef struct od_stage1_map {
    const float *features;
    int64_t height, width, channels;
    int64_t input_size;
    int64_t stride;
    double offset;
} od_stage1_map;

/* What one view contributes: its camera and encoder map (to build the
 * volume), and its targets at the render sizes (to supervise it). */
typedef struct od_stage1_view {
    od_camera camera;        /* resized to the encoder's input size */
    float *encoder;          /* (encoder_height, encoder_width, encoder_channels) */
    float *colour;           /* (colour_size^2, 3) in [0, 1] */
    float *colour_weight;    /* (colour_size^2): 1 on objects, floor_pixel_weight elsewhere */
    float *mask;             /* (mask_size^2) in [0, 1] */
    float *teacher;          /* (feature_size^2, teacher.channels) */
    float *teacher_weight;   /* (feature_size^2), as colour_weight */
} od_stage1_view;

/* A scene's views with their frozen maps and targets, kept in memory so
 * that every step on the scene reuses them. */
typedef struct od_stage1_scene {
    int view_count;
    od_stage1_view *views;
    int64_t encoder_height, encoder_width, encoder_channels;
    int encoder_stride; /* input pixels per encoder cell; the centre rule of geometry/lift.h */
    int64_t colour_size, mask_size, feature_size, teacher_channels;
} od_stage1_scene;

/* Returns an empty scene for the configuration's render sizes and an
 * encoder map of the given size and stride, or NULL with a message. */
od_stage1_scene *od_stage1_scene_new(const od_model_config *config, int64_t encoder_height,
                                     int64_t encoder_width, int64_t encoder_channels, int encoder_stride,
                                     int view_count, od_error *err);
void od_stage1_scene_free(od_stage1_scene *scene);

/* Fills view `index` from its image (RGB, any size), its foreground mask
 * (one channel at the image's size, 1 on objects; NULL: no object
 * anywhere), its camera at the image's size, the encoder map (input_size
 * = the square side the camera is resized to, stride the scene's,
 * offset (stride - 1) / 2 as lifting assumes) and the teacher map
 * (channels = the configuration's teacher.channels). Fails on sizes that
 * do not match the scene. */
int od_stage1_scene_set_view(od_stage1_scene *scene, const od_model_config *config, int index,
                             const od_image *image, const od_image *mask, const od_camera *camera,
                             const od_stage1_map *encoder, const od_stage1_map *teacher, od_error *err);

/* Fills every view of a loaded scene: reads its images and masks, runs the
 * frozen encoder (a teacher opened on a layer whose input size is a
 * multiple of its stride, e.g. MobileNetV2 block_2_add at the
 * configuration's image width, so that the lifting centre rule holds) and
 * the teacher, whose features pca reduces to teacher.channels (NULL when
 * the teacher's layer already has that many). Scene views without masks
 * count as floor everywhere. Returns NULL with a message on failure. */
od_stage1_scene *od_stage1_scene_prepare(const od_scene *scene, const od_model_config *config,
                                         od_teacher *encoder, od_teacher *teacher, const od_pca *pca,
                                         od_error *err);

/* As od_stage1_scene_prepare, but the teacher targets come from a cache
 * that `oddone teacher` wrote for this scene (teacher/feature_cache.h),
 * read with its metadata: each view's map is the cache's entry under the
 * view's name, with the cache's stride and cell offset. The cache's input
 * must be square and its channels teacher.channels. */
od_stage1_scene *od_stage1_scene_prepare_cached(const od_scene *scene, const od_model_config *config,
                                                od_teacher *encoder, const od_feature_cache *cache,
                                                const od_feature_cache_info *info, od_error *err);

/* Seconds spent in each part of the steps so far (both passes). */
typedef struct od_stage1_times {
    double lift, volume_forward, render_forward, losses, render_backward, volume_backward, adam;
} od_stage1_times;

/* Losses of one step, the mean over the two passes, unweighted, and the
 * weighted total; grad_norm is the gradient's L2 norm before clipping. */
typedef struct od_stage1_losses {
    double colour, mask, feature, total;
    double grad_norm;
} od_stage1_losses;

typedef struct od_stage1 od_stage1;

/* Initial bias of the density head's output (raw density, before the
 * softplus): softplus(-5) = 0.0067 per voxel edge, so a ray across the
 * 64-voxel grid starts with an opacity of about 0.35. */
#define OD_STAGE1_DENSITY_BIAS (-5.0f)

/* Builds the volume network for the configuration with encoder_channels
 * input channels, registers it in a new parameter set under
 * "volume_net.", initialises it from seed (the density head's output bias
 * to OD_STAGE1_DENSITY_BIAS), and makes the optimizer. The
 * configuration must have batch 1. Returns NULL with a message. */
od_stage1 *od_stage1_new(const od_model_config *config, int64_t encoder_channels, uint64_t seed,
                         od_error *err);
void od_stage1_free(od_stage1 *stage1);

od_params *od_stage1_params(const od_stage1 *stage1);
od_adam *od_stage1_adam(const od_stage1 *stage1);
/* Steps taken so far (the index that the next step's jitter is forked by). */
int64_t od_stage1_step_count(const od_stage1 *stage1);
/* Sets the step count when training resumes from a checkpoint, so that
 * the next step's jitter is forked as in an unbroken run. */
void od_stage1_set_step_count(od_stage1 *stage1, int64_t steps);
/* The time split accumulated over every step so far. */
od_stage1_times od_stage1_get_times(const od_stage1 *stage1);

/* One step on a prepared scene: set_a[0..count_a) and set_b[0..count_b)
 * index its views (each at least 1, the two sets need not be disjoint).
 * Writes the losses to *losses when not NULL. Fails on an index out of
 * range, a scene whose encoder channels differ from the network's, or a
 * non-finite loss or gradient. Then the trainable parameters are left
 * unchanged, but the batch-norm running statistics have moved. */
int od_stage1_step(od_stage1 *stage1, const od_stage1_scene *scene, const int *set_a, int count_a,
                   const int *set_b, int count_b, od_stage1_losses *losses, od_error *err);

/* The renders of the last step's second pass for the first view of set A
 * (set B built the volume), with that view's targets, for previews.
 * Channels-last squares of colour_size (3 channels), mask_size (1) and
 * feature_size (feature_channels). Valid until the next step. */
typedef struct od_stage1_renders {
    const float *colour, *colour_target;
    const float *mask, *mask_target;
    const float *features, *feature_target;
    int64_t colour_size, mask_size, feature_size, feature_channels;
} od_stage1_renders;

/* Fills *renders; fails before the first step. */
int od_stage1_last_renders(const od_stage1 *stage1, od_stage1_renders *renders, od_error *err);

/* Multiply-adds of one step's volume network (two forwards), for
 * benchmarks; the backward is about twice that. */
double od_stage1_volume_macs(const od_stage1 *stage1);

#endif
