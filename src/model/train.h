/* The training driver behind `oddone train`: stage 1 (reconstruction,
 * model/stage1.h) and stage 2 (classification, model/stage2.h) over a
 * dataset's scenes, with augmentation, progress lines, the loss log,
 * previews and checkpoints that an interrupted run resumes from exactly.
 *
 * A run folder RUN contains:
 *   config.json       the configuration as trained (the file's JSON with the
 *                     variant that --variant chose). A rerun into RUN with
 *                     another configuration is rejected.
 *   run.json          seed, split and dataset folders; a rerun must match.
 *   losses.csv        one row per step: stage, step, total, colour, mask,
 *                     feature, grad_norm, lr, seconds (wall time of the
 *                     step). Stage-2 rows put the classification loss in
 *                     total and leave colour, mask and feature empty;
 *   previews/         stage1-step-NNNNNNNN.png every preview_every stage-1
 *                     steps (stage 2 renders nothing);
 *   stage1/, stage2/  each stage's checkpoint: checkpoint.json names the
 *                     step and the two files of that step,
 *                     params-NNNNNNNN.safetensors (parameters and batch-norm
 *                     statistics) and adam-NNNNNNNN.safetensors (moments and
 *                     per-parameter step counts). Each file is written
 *                     atomically and checkpoint.json last, so a crash leaves
 *                     the previous checkpoint readable;
 *   model.safetensors the whole model (model/model_file.h), written when
 *                     stage 2 reaches its last step;
 *   fit.json          after stage 2, the logits and labels of the first
 *                     OD_TRAIN_FIT_SCENES training scenes' true objects, and
 *                     how often the anomalous one scores highest: how well
 *                     the model fits its training scenes.
 *
 * Every random choice of step t derives from the seed and t alone (the
 * scene order from the seed and the epoch, the views, the augmentation,
 * the ray jitter and the box jitter from the step), so the checkpoint's
 * parameters, Adam state and step count are all that a resume needs: 20
 * steps in one run and 10 + 10 in two give bit-identical parameters at
 * one thread count.
 *
 * Step t (0-based): epoch e = t / S for S scenes, and the scene at
 * position t mod S of epoch e's shuffle. Stage 1 draws views.build +
 * views.supervise distinct views; the first views.build build, the others
 * supervise, and od_stage1_step swaps them for its second pass. Stage 2
 * draws views.build views. A world change (model/augment.h) is applied to
 * every camera and true box. The learning rate rises linearly over
 * schedule.warmup_steps: lr (t + 1) / warmup. Variants A and B train
 * stage 1 without the feature loss (loss.feature = 0).
 *
 * Teacher targets come from the caches that `oddone teacher` writes under
 * DATASET/features/<network>-<layer>-<input_size>/, one file per scene
 * named by the split's relative path, and the frozen 2D encoder is
 * MobileNetV2 block_2_add at image.width pixels, as in model/stage1.h. */
#ifndef ODDONE_MODEL_TRAIN_H
#define ODDONE_MODEL_TRAIN_H

#include <stdint.h>

#include "core/error.h"
#include "model/config.h"

/* The frozen 2D encoder's MobileNetV2 layer (stride 4, 24 channels). */
#define OD_TRAIN_ENCODER_LAYER "block_2_add"
/* Scenes of the split, from its start, that RUN/fit.json scores after
 * stage 2: enough to see the fit, few enough to take minutes. */
#define OD_TRAIN_FIT_SCENES 100
/* Largest number of --data folders. */
#define OD_TRAIN_MAX_DATASETS 16
/* Prepared scenes are kept in memory up to this many bytes; beyond it a
 * scene is prepared again at each of its steps. */
#define OD_TRAIN_SCENE_MEMORY (2LL << 30)

typedef struct od_train_options {
    const char *config_path;
    int variant_set;           /* 1: variant overrides the configuration's */
    od_model_variant variant;
    const char *datasets[OD_TRAIN_MAX_DATASETS];
    int dataset_count;
    const char *split;         /* split of every dataset, e.g. "train" */
    const char *run;           /* the run folder */
    int stage;                 /* 1 or 2: that stage only; 0: stage 1, then stage 2 */
    int64_t steps;             /* > 0: replaces the schedule's steps of each stage run */
    const char *init;          /* stage 2's start: a stage-1 run folder or parameter file; NULL: RUN's stage 1 */
    int resume;                /* 1: RUN must hold a checkpoint to continue from */
    uint64_t seed;
    const char *encoder_weights; /* MobileNetV2 weights; NULL: the default path */
    int quiet;                 /* 1: no progress lines */
} od_train_options;

/* Returns the defaults: split "train", both stages, seed 1, schedule steps. */
od_train_options od_train_options_default(void);

/* Runs the training that the options describe, starting or continuing
 * RUN. Returns 0, or -1 with a message naming the file, field or scene. */
int od_train_run(const od_train_options *options, od_error *err);

#endif
