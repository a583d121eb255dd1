/* Stage 2 of training: see stage2.h. */
#include "model/stage2.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "eval/evaluate.h"
#include "geometry/grid.h"
#include "geometry/lift.h"
#include "io/safetensors.h"
#include "model/localize.h"
#include "model/matcher.h"
#include "model/volume_net.h"
#include "nn/render.h"
#include "nn/roi_pool.h"

struct od_stage2 {
    od_model_config config;
    od_grid grid;
    int64_t voxels, in_channels, c0, k, cells, max_objects;
    int64_t lifted; /* lifted encoder channels in each crop: in_channels with crop.lifted, else 0 */
    od_params *params;
    od_volume_net *net;
    od_matcher *matcher;
    od_adam *adam;
    od_lift *lift;
    float *volume_in;  /* (voxels, in_channels) */
    float *volume;     /* (voxels, c0 + lifted + k): trunk, lifted input, feature head */
    float *occupancy;  /* (voxels) softplus density */
    float *crops, *mask, *logits, *d_logits;
    od_box *boxes;
    uint8_t *labels;
    od_rng rng;
    int64_t steps;
};

void od_stage2_free(od_stage2 *s)
{
    if (s == NULL)
        return;
    od_volume_net_free(s->net);
    od_matcher_free(s->matcher);
    od_params_free(s->params);
    od_adam_free(s->adam);
    od_lift_free(s->lift);
    od_free(s->volume_in);
    od_free(s->volume);
    od_free(s->occupancy);
    od_free(s->crops);
    od_free(s->mask);
    od_free(s->logits);
    od_free(s->d_logits);
    free(s->boxes);
    free(s->labels);
    free(s);
}

od_stage2 *od_stage2_new(const od_model_config *config, int64_t encoder_channels, uint64_t seed, od_error *err)
{
    if (config == NULL || encoder_channels < 1) {
        od_fail(err, "stage 2: needs a configuration and at least one encoder channel");
        return NULL;
    }
    od_stage2 *s = calloc(1, sizeof *s);
    if (s == NULL) {
        od_fail(err, "stage 2: out of memory");
        return NULL;
    }
    s->config = *config;
    int status = od_grid_from_bounds(config->grid_min, config->grid_max, config->voxel_size, &s->grid, err);
    s->voxels = s->grid.dims[0] * s->grid.dims[1] * s->grid.dims[2];
    s->in_channels = encoder_channels;
    s->c0 = config->channels[0];
    s->k = config->teacher_channels;
    s->cells = config->crop_cells;
    s->lifted = config->crop_lifted ? encoder_channels : 0;
    od_volume_net_config net_config = od_volume_net_config_from_model(config);
    net_config.in_channels = encoder_channels;
    net_config.batch = 1;
    od_matcher_config matcher_config = od_matcher_config_from_model(config, encoder_channels);
    s->max_objects = matcher_config.max_objects;
    if (status == 0 && (s->params = od_params_new(err)) == NULL)
        status = -1;
    if (status == 0 && (s->net = od_volume_net_new(&net_config, s->params, "volume_net.", err)) == NULL)
        status = -1;
    if (status == 0 && (s->matcher = od_matcher_new(&matcher_config, s->params, "matcher.", err)) == NULL)
        status = -1;
    if (status == 0) {
        od_params_initialize(s->params, seed);
        s->adam = od_adam_new(err);
        status = s->adam == NULL ? -1 : 0;
    }
    if (status == 0) {
        od_adam_group_config group = {config->lr_matcher, config->beta1, config->beta2, config->eps, 0.0, 0};
        const int index = od_adam_add_group(s->adam, &group, err);
        status = index < 0 ? -1 : od_params_add_to_adam(s->params, s->adam, "matcher.", index, NULL, err);
    }
    if (status == 0 && (s->lift = od_lift_new(&s->grid, encoder_channels)) == NULL)
        status = od_fail(err, "stage 2: cannot make the lifting accumulator (out of memory)");
    if (status == 0) {
        const int64_t T = s->cells * s->cells * s->cells, O = s->max_objects;
        s->volume_in = od_alloc_floats(s->voxels * encoder_channels);
        s->volume = od_alloc_floats(s->voxels * (s->c0 + s->lifted + s->k));
        s->occupancy = od_alloc_floats(s->voxels);
        s->crops = od_alloc_floats(O * T * (s->c0 + s->lifted + s->k));
        s->mask = od_alloc_floats(O * T);
        s->logits = od_alloc_floats(O);
        s->d_logits = od_alloc_floats(O);
        s->boxes = malloc((size_t)O * sizeof *s->boxes);
        s->labels = malloc((size_t)O);
        if (s->volume_in == NULL || s->volume == NULL || s->occupancy == NULL || s->crops == NULL ||
            s->mask == NULL || s->logits == NULL || s->d_logits == NULL || s->boxes == NULL || s->labels == NULL)
            status = od_fail(err, "stage 2: out of memory for the volumes and crops");
    }
    if (status != 0) {
        od_stage2_free(s);
        return NULL;
    }
    od_rng_seed(&s->rng, seed ^ 0x5354414745324a49ull); /* the jitter's stream, apart from the weights' */
    return s;
}

od_params *od_stage2_params(const od_stage2 *s)
{
    return s->params;
}

od_adam *od_stage2_adam(const od_stage2 *s)
{
    return s->adam;
}

int64_t od_stage2_step_count(const od_stage2 *s)
{
    return s->steps;
}

void od_stage2_set_step_count(od_stage2 *s, int64_t steps)
{
    s->steps = steps;
}

int od_stage2_load_volume_net(od_stage2 *s, const char *path, od_error *err)
{
    od_safetensors *st = od_safetensors_read(path, err);
    if (st == NULL)
        return -1;
    static const char prefix[] = "volume_net.";
    int status = 0;
    /* Check every tensor first, so that a failure leaves the set unchanged. */
    for (int pass = 0; pass < 2 && status == 0; pass++) {
        for (int i = 0; i < od_params_count(s->params) && status == 0; i++) {
            od_param *p = od_params_at(s->params, i);
            if (strncmp(p->name, prefix, sizeof prefix - 1) != 0)
                continue;
            od_tensor *t = od_safetensors_get(st, p->name, p->ndim, p->shape, err);
            if (t == NULL) {
                status = od_fail_context(err, "stage-1 parameters %s", path);
                break;
            }
            if (pass == 1)
                memcpy(p->value, t->data, (size_t)p->count * sizeof(float));
            od_tensor_free(t);
        }
    }
    od_safetensors_free(st);
    return status;
}

/* Writes a true box moved, resized and turned by the step's jitter. */
static void jitter_box(od_rng *rng, const od_box *box, od_box *out)
{
    const double pi = 3.14159265358979323846;
    *out = *box;
    for (int axis = 0; axis < 2; axis++)
        out->center[axis] += (2.0 * od_rng_uniform(rng) - 1.0) * OD_STAGE2_JITTER_CENTER * box->size[axis];
    for (int axis = 0; axis < 3; axis++)
        out->size[axis] *= 1.0 + (2.0 * od_rng_uniform(rng) - 1.0) * OD_STAGE2_JITTER_SIZE;
    out->yaw += (2.0 * od_rng_uniform(rng) - 1.0) * OD_STAGE2_JITTER_YAW_DEGREES * pi / 180.0;
}

/* Lifts the views and runs the frozen volume network; fills s->volume
 * (trunk, with crop.lifted the lifted input, and features per voxel) and
 * s->occupancy. */
static int run_volume(od_stage2 *s, const od_stage1_scene *scene, const int *views, int count, od_error *err)
{
    od_lift_clear(s->lift);
    for (int i = 0; i < count; i++) {
        if (views[i] < 0 || views[i] >= scene->view_count)
            return od_fail(err, "stage 2: view %d is out of range (the scene has %d)", views[i], scene->view_count);
        const od_stage1_view *v = &scene->views[views[i]];
        if (od_lift_add_view(s->lift, &v->camera, v->encoder, scene->encoder_height, scene->encoder_width,
                             scene->encoder_stride, err) != 0)
            return -1;
    }
    if (od_lift_finish(s->lift, s->volume_in, NULL, err) != 0 ||
        od_volume_net_forward(s->net, s->volume_in, 0, err) != 0)
        return -1;
    const float *trunk = od_volume_net_trunk(s->net), *features = od_volume_net_features(s->net);
    const int64_t C = s->c0 + s->lifted + s->k;
    for (int64_t v = 0; v < s->voxels; v++) {
        memcpy(s->volume + v * C, trunk + v * s->c0, (size_t)s->c0 * sizeof(float));
        if (s->lifted > 0)
            memcpy(s->volume + v * C + s->c0, s->volume_in + v * s->in_channels, (size_t)s->lifted * sizeof(float));
        memcpy(s->volume + v * C + s->c0 + s->lifted, features + v * s->k, (size_t)s->k * sizeof(float));
    }
    od_render_density_activation(s->occupancy, od_volume_net_density(s->net), s->voxels);
    return 0;
}

/* Picks the box of every true object (see stage2.h) into s->boxes and
 * s->labels; writes how many come from predictions. */
static int choose_boxes(od_stage2 *s, od_rng *rng, const od_box *truth, const uint8_t *labels, int truth_count,
                        int use_predicted, int *predicted, od_error *err)
{
    *predicted = 0;
    int *match = NULL;
    double *match_iou = NULL, *best_iou = NULL;
    od_localization found;
    memset(&found, 0, sizeof found);
    int status = 0;
    if (use_predicted) {
        const od_localize_options options = od_localize_options_default(s->config.density_threshold);
        match = malloc((size_t)truth_count * sizeof *match);
        match_iou = malloc((size_t)truth_count * sizeof *match_iou);
        best_iou = malloc((size_t)truth_count * sizeof *best_iou);
        if (match == NULL || match_iou == NULL || best_iou == NULL)
            status = od_fail(err, "stage 2: out of memory");
        if (status == 0)
            status = od_localize(od_volume_net_density(s->net), &s->grid, &options, &found, err);
        if (status == 0)
            status = od_eval_match(truth, truth_count, found.boxes, found.object_count, OD_STAGE2_MATCH_IOU, match,
                                   match_iou, best_iou, err);
    }
    for (int t = 0; t < truth_count && status == 0; t++) {
        /* Jitter is drawn for every object, so the draws do not depend on the matching. */
        od_box jittered;
        jitter_box(rng, &truth[t], &jittered);
        od_box chosen = jittered;
        if (use_predicted && match[t] >= 0) {
            chosen = found.boxes[match[t]];
            (*predicted)++;
        }
        od_roi_box_pad_cubic(&chosen, s->config.crop_pad_voxels, &s->grid, &s->boxes[t]);
        s->labels[t] = labels[t];
    }
    od_localization_free(&found);
    free(match);
    free(match_iou);
    free(best_iou);
    return status;
}

int od_stage2_step(od_stage2 *s, const od_stage1_scene *scene, const int *views, int count, const od_box *truth,
                   const uint8_t *labels, int truth_count, int use_predicted, od_stage2_losses *losses, od_error *err)
{
    if (s == NULL || scene == NULL || views == NULL || count < 1)
        return od_fail(err, "stage 2: a step needs the trainer, a scene and at least one view");
    if (scene->encoder_channels != s->in_channels)
        return od_fail(err, "stage 2: the scene was prepared for %lld encoder channels, the network takes %lld",
                       (long long)scene->encoder_channels, (long long)s->in_channels);
    if (truth_count < 1 || truth_count > s->max_objects)
        return od_fail(err, "stage 2 step %lld: the scene has %d true objects, expected 1 to %lld",
                       (long long)s->steps, truth_count, (long long)s->max_objects);
    if (run_volume(s, scene, views, count, err) != 0)
        return od_fail_context(err, "stage 2 step %lld", (long long)s->steps);
    od_rng rng = od_rng_fork(&s->rng, (uint64_t)s->steps);
    od_stage2_losses l;
    memset(&l, 0, sizeof l);
    const int64_t C = s->c0 + s->lifted + s->k;
    if (choose_boxes(s, &rng, truth, labels, truth_count, use_predicted, &l.predicted, err) != 0 ||
        od_roi_pool_forward(s->crops, s->mask, s->volume, s->occupancy, (float)s->config.density_threshold, 1,
                            s->boxes, truth_count, &s->grid, (int)s->cells, C, err) != 0)
        return od_fail_context(err, "stage 2 step %lld", (long long)s->steps);

    od_params_zero_grad(s->params);
    if (od_matcher_forward(s->matcher, s->crops, s->mask, truth_count, 1, s->logits, err) != 0 ||
        od_matcher_loss(s->logits, s->labels, truth_count, s->config.anomaly_weight, s->config.normal_weight,
                        &l.classification, s->d_logits, err) != 0)
        return od_fail_context(err, "stage 2 step %lld", (long long)s->steps);
    for (int t = 0; t < truth_count; t++) {
        s->d_logits[t] *= (float)s->config.loss_classification;
        l.correct += (s->logits[t] >= 0.0f) == (s->labels[t] != 0);
    }
    if (od_matcher_backward(s->matcher, s->d_logits, NULL, err) != 0)
        return od_fail_context(err, "stage 2 step %lld", (long long)s->steps);
    float norm = 0.0f;
    const double bound = s->config.clip_grad_norm > 0.0 ? s->config.clip_grad_norm : 1e30;
    if (od_adam_clip_grad_norm(s->adam, bound, &norm, err) != 0)
        return -1;
    l.grad_norm = norm;
    l.objects = truth_count;
    if (!isfinite(l.classification) || !isfinite(norm))
        return od_fail(err, "stage 2 step %lld: the loss (%g) or the gradient norm (%g) is not finite; the "
                            "parameters were not updated",
                       (long long)s->steps, l.classification, (double)norm);
    od_adam_step(s->adam);
    s->steps++;
    if (losses != NULL)
        *losses = l;
    return 0;
}

int od_stage2_classify(od_stage2 *s, const od_stage1_scene *scene, const int *views, int count, const od_box *truth,
                       int truth_count, float *logits, od_error *err)
{
    if (s == NULL || scene == NULL || views == NULL || count < 1 || logits == NULL)
        return od_fail(err, "stage 2: scoring needs the trainer, a scene, at least one view and the output");
    if (scene->encoder_channels != s->in_channels)
        return od_fail(err, "stage 2: the scene was prepared for %lld encoder channels, the network takes %lld",
                       (long long)scene->encoder_channels, (long long)s->in_channels);
    if (truth_count < 1 || truth_count > s->max_objects)
        return od_fail(err, "stage 2: the scene has %d true objects, expected 1 to %lld", truth_count,
                       (long long)s->max_objects);
    if (run_volume(s, scene, views, count, err) != 0)
        return -1;
    for (int t = 0; t < truth_count; t++)
        od_roi_box_pad_cubic(&truth[t], s->config.crop_pad_voxels, &s->grid, &s->boxes[t]);
    return od_roi_pool_forward(s->crops, s->mask, s->volume, s->occupancy, (float)s->config.density_threshold, 1,
                               s->boxes, truth_count, &s->grid, (int)s->cells, s->c0 + s->lifted + s->k, err) != 0 ||
                   od_matcher_forward(s->matcher, s->crops, s->mask, truth_count, 0, logits, err) != 0
               ? -1
               : 0;
}
