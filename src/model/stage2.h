/* Stage 2 of training, classification: the matcher and classifier
 * (model/matcher.h) learn to flag the odd object from crops of the frozen
 * stage-1 volume network's output.
 *
 * The volume network is frozen: it runs inference forwards (batch-norm
 * running statistics) and gets no gradient, so the reconstruction losses
 * (loss.reconstruction_stage2) take no part and only the matcher group
 * trains, with optim.lr_matcher. This trades the release's end-to-end
 * fine-tuning for time on a few CPU cores.
 *
 * One step on a scene with true boxes and labels:
 *   1. lift the given views' encoder maps and run the volume network;
 *   2. the objects: with predicted boxes on, od_localize finds boxes in the
 *      density, and od_eval_match pairs them with the true boxes at
 *      OD_STAGE2_MATCH_IOU rotated 3D IoU. A matched true object is cropped
 *      with its predicted box, and an unmatched one with its true box,
 *      jittered. An unmatched prediction is dropped, because it has no
 *      label. With predicted boxes off every true box is jittered;
 *   3. each box is padded by crop.pad_voxels and made cubic, and the trunk
 *      (c0 channels), with crop.lifted the lifted encoder features, and the
 *      feature head (k), concatenated per voxel, are RoI-pooled to
 *      crop.cells^3 crops. A cell is occupied when the
 *      softplus density there reaches localization.density_threshold;
 *      empty cells are zero;
 *   4. matcher forward, weighted BCE (loss.anomaly_weight and
 *      normal_weight), backward, gradient clipping to optim.clip_grad_norm
 *      and one Adam step of the matcher group.
 * The jitter moves the centre by up to OD_STAGE2_JITTER_CENTER of the
 * box's size along x and y, scales each side by up to
 * OD_STAGE2_JITTER_SIZE and turns the yaw by up to
 * OD_STAGE2_JITTER_YAW_DEGREES, uniformly, from the step's seed.
 *
 * The parameter set contains the volume network ("volume_net.") and the
 * matcher ("matcher."), so that one file saves the whole model. */
#ifndef ODDONE_MODEL_STAGE2_H
#define ODDONE_MODEL_STAGE2_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/box.h"
#include "model/config.h"
#include "model/params.h"
#include "model/stage1.h"
#include "nn/optim.h"

#define OD_STAGE2_MATCH_IOU 0.25
#define OD_STAGE2_JITTER_CENTER 0.1
#define OD_STAGE2_JITTER_SIZE 0.1
#define OD_STAGE2_JITTER_YAW_DEGREES 10.0

typedef struct od_stage2_losses {
    double classification; /* weighted BCE, mean over the objects */
    int objects;           /* objects classified */
    int predicted;         /* of them, cropped with a predicted box */
    int correct;           /* objects whose logit has the label's sign */
    double grad_norm;      /* before clipping */
} od_stage2_losses;

typedef struct od_stage2 od_stage2;

/* Builds the volume network (encoder_channels in) and the matcher, both
 * initialised from seed, and the optimizer over the matcher's tensors.
 * Returns NULL with a message. */
od_stage2 *od_stage2_new(const od_model_config *config, int64_t encoder_channels, uint64_t seed, od_error *err);
void od_stage2_free(od_stage2 *stage2);

od_params *od_stage2_params(const od_stage2 *stage2);
od_adam *od_stage2_adam(const od_stage2 *stage2);
int64_t od_stage2_step_count(const od_stage2 *stage2);
void od_stage2_set_step_count(od_stage2 *stage2, int64_t steps);

/* Fills the volume network's tensors from a stage-1 parameter file
 * (od_params_save of stage 1's set: every "volume_net." tensor, with its
 * shape). */
int od_stage2_load_volume_net(od_stage2 *stage2, const char *path, od_error *err);

/* One step on a prepared scene (see above): views[0..count) build the
 * volume; truth (truth_count boxes) and labels (0 normal, 1 anomalous)
 * are the scene's ground truth in the cameras' world. use_predicted
 * switches the predicted boxes on. Fails on a non-finite loss or
 * gradient (the parameters are then unchanged) or more objects than the
 * matcher takes. */
int od_stage2_step(od_stage2 *stage2, const od_stage1_scene *scene, const int *views, int count,
                   const od_box *truth, const uint8_t *labels, int truth_count, int use_predicted,
                   od_stage2_losses *losses, od_error *err);

/* Scores the true objects of a prepared scene without training: the
 * volume from views[0..count), each true box padded as in a step but not
 * jittered, and the matcher's inference forward. Writes truth_count
 * logits. */
int od_stage2_classify(od_stage2 *stage2, const od_stage1_scene *scene, const int *views, int count,
                       const od_box *truth, int truth_count, float *logits, od_error *err);

#endif
