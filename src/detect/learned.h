/* The learned detector (`--method model`): a trained model file
 * (model/model_file.h) finds the objects of a scene and gives each an
 * anomaly score.
 *
 * Stages, in order:
 * 1. features: each selected view runs through the frozen 2D encoder that
 *    the model file names, at its input size, as stage 1 of training
 *    computes them (model/stage1.h);
 * 2. lifting: the maps are averaged into the configuration's grid
 *    (geometry/lift.h), each camera resized to the encoder's square input;
 * 3. volume network (model/volume_net.h) in inference mode: density,
 *    trunk and feature head;
 * 4. localization (model/localize.h) at localization.density_threshold;
 * 5. crops: each box padded by crop.pad_voxels and made cubic
 *    (od_roi_box_pad_cubic), then the trunk and the feature head cropped
 *    to crop.cells^3 cells and concatenated (trunk channels first), the
 *    mask from the softplus density at the same threshold, empty cells
 *    zero (od_learned_crop);
 * 6. matcher (model/matcher.h): one logit per object; the score is its
 *    logistic sigmoid and an object is odd when its score is >= 0.5.
 *
 * The result is an od_compare_result, so the CLI and evaluation treat both
 * detectors alike. Fields that only compare fills stay empty: the
 * distance and similarity matrices are zero, there is no consensus or
 * reference group, and occupancy is OD_COMPARE_OCCUPANCY_AUTO (neither
 * masks nor colour: the density). Each occupied voxel's difference is its
 * object's score (NAN for noise). Timings: seconds_load opens nothing
 * (the model is opened before) and is 0, seconds_features is the encoder,
 * seconds_lift the lifting, seconds_hull the volume network,
 * seconds_cluster the localization and seconds_score the crops and the
 * matcher.
 *
 * A model file contains the tensors of both networks in one parameter set:
 * the volume network's under "volume_net." and the matcher's under
 * "matcher." (od_learned_build registers them). The volume network takes
 * the encoder layer's channels as its input width and batch 1. */
#ifndef ODDONE_DETECT_LEARNED_H
#define ODDONE_DETECT_LEARNED_H

#include <stdint.h>

#include "core/error.h"
#include "detect/compare.h"
#include "geometry/box.h"
#include "geometry/camera.h"
#include "geometry/grid.h"
#include "model/config.h"
#include "model/matcher.h"
#include "model/model_file.h"
#include "model/params.h"
#include "model/volume_net.h"
#include "scene/scene.h"

/* The default model that `oddone detect SCENE` uses, relative to the
 * working folder. */
#define OD_LEARNED_DEFAULT_MODEL "models/oddone-cpu.safetensors"

/* Score at and above which an object is labelled odd. */
#define OD_LEARNED_ODD_SCORE 0.5

/* Builds the volume network (batch 1, encoder_channels in) and the matcher
 * of a configuration into params under the prefixes above. Either output
 * pointer may be NULL, and the networks are then freed after they have
 * registered their tensors. */
int od_learned_build(const od_model_config *config, int64_t encoder_channels, int64_t max_objects,
                     od_params *params, od_volume_net **volume_net, od_matcher **matcher, od_error *err);

/* Writes the crops and masks of `count` object boxes (before padding):
 * crops (count, n, n, n, c0 + e + k) with the trunk (D, H, W, c0) in
 * channels [0, c0), the lifted encoder features (D, H, W, e) next when
 * lifted_channels e > 0 (crop.lifted), and the feature head (D, H, W, k)
 * last; mask (count, n, n, n) 1 where softplus(density) >=
 * localization.density_threshold, and empty cells of the crops zero.
 * density is raw (D, H, W). scratch needs count n^3 max(c0, e, k) floats. */
int od_learned_crop(const od_model_config *config, const od_grid *grid, const float *trunk, const float *lifted,
                    int64_t lifted_channels, const float *features, const float *density, const od_box *boxes,
                    int64_t count, float *crops, float *mask, float *scratch, od_error *err);

/* A loaded model without its encoder: the networks and the lifting
 * accumulator. Views are added as encoder maps, so tests and callers with
 * their own encoder can run it. */
typedef struct od_learned_net od_learned_net;

/* Builds the networks of an open model file for an encoder of
 * encoder_channels channels and loads their tensors. Fails with the file's
 * message when a tensor is missing or misshapen. */
od_learned_net *od_learned_net_open(const od_model_file *file, int64_t encoder_channels, od_error *err);
void od_learned_net_free(od_learned_net *net);

/* Returns the maximum number of objects scored in one scene. Beyond it
 * the smallest objects are dropped, and the result's note gives how many. */
int64_t od_learned_net_max_objects(const od_learned_net *net);

/* Clears the lifted views, to start a scene. */
void od_learned_net_clear(od_learned_net *net);

/* Lifts one view's encoder map (height, width, encoder_channels) at the
 * given stride. camera is the view's at its image size; it is resized to
 * the encoder's square input of input_size pixels here. */
int od_learned_net_add_view(od_learned_net *net, const od_camera *camera, int64_t input_size, const float *map,
                            int64_t height, int64_t width, int stride, od_error *err);

/* Runs the volume network, localization, crops and matcher on the views
 * added since the last clear and fills *result (views[0 .. view_count) of
 * the scene, used for its cameras). On failure *result is left empty
 * (safe to free). */
int od_learned_net_finish(od_learned_net *net, const od_scene *scene, const int *views, int view_count,
                          od_compare_result *result, od_error *err);

/* Where the objects' boxes come from. */
typedef enum od_learned_boxes {
    /* The model's own density, thresholded and clustered by DBSCAN
     * (model/localize.h), as the Odd-One-Out method localizes. The default
     * unless the model's configuration sets localization.boxes. */
    OD_LEARNED_BOXES_DENSITY = 0,
    /* The training-free detector's: the visual hull of the views' object
     * masks, clustered the same way (detect/compare.h, occupancy masks).
     * Needs a mask for every view. It separates what the matcher can
     * tell from how well the density finds the objects. */
    OD_LEARNED_BOXES_MASKS = 1,
} od_learned_boxes;

/* A loaded model with its encoder. */
typedef struct od_learned_model od_learned_model;

/* Opens a model file and the encoder it names. encoder_weights NULL means
 * the encoder network's default weights file. Returns NULL with a message
 * naming the file on failure. */
od_learned_model *od_learned_open(const char *model_path, const char *encoder_weights, od_error *err);
void od_learned_free(od_learned_model *model);

const od_model_file *od_learned_model_file(const od_learned_model *model);
/* Replaces the localization threshold of the model's configuration
 * (softplus density, per voxel edge) for the calls that follow. Fails
 * unless threshold is finite and > 0. */
int od_learned_set_density_threshold(od_learned_model *model, double threshold, od_error *err);
/* Returns the localization threshold in use. */
double od_learned_density_threshold(const od_learned_model *model);
/* Chooses where the boxes of the calls that follow come from
 * (by default the configuration's localization.boxes, else density). */
int od_learned_set_boxes(od_learned_model *model, od_learned_boxes boxes, od_error *err);
/* Returns the box source in use. */
od_learned_boxes od_learned_get_boxes(const od_learned_model *model);
/* Returns the name of a box source, "density" or "masks". */
const char *od_learned_boxes_name(od_learned_boxes boxes);
/* Writes the box source called name ("density" or "masks") to *out.
 * Returns -1, leaving *out unchanged, for any other name. */
int od_learned_boxes_parse(const char *name, od_learned_boxes *out);

/* Runs the detector on views[0 .. view_count) of the scene. On failure
 * *result is left empty (safe to free) and err names the problem: a bad
 * view index, an unreadable image, a non-finite density. */
int od_learned_detect(od_learned_model *model, const od_scene *scene, const int *views, int view_count,
                      od_compare_result *result, od_error *err);

#endif
