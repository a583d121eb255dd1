/* Adam with parameter groups, gradient clipping by global L2 norm, and the
 * optimizer state in safetensors files so that training can resume.
 *
 * The update follows torch.optim.Adam (PyTorch 1.13, single-tensor path):
 *     g  = grad (+ weight_decay * param with the L2 form)
 *     m  = beta1 * m + (1 - beta1) * g
 *     v  = beta2 * v + (1 - beta2) * g * g
 *     param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * where t counts the steps of that parameter from 1. With decoupled weight
 * decay (torch.optim.AdamW) the gradient is left alone and the parameter is
 * first multiplied by 1 - lr * weight_decay. The arithmetic is float32 per
 * element with the bias corrections in float64, as in PyTorch.
 *
 * The optimizer does not own parameters or gradients: it keeps pointers to
 * the model's buffers and owns the two moment buffers of each parameter.
 * The update is elementwise, so the result does not depend on the thread
 * count. */
#ifndef ODDONE_NN_OPTIM_H
#define ODDONE_NN_OPTIM_H

#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"

/* The product's Adam settings: no first-moment averaging, the usual beta2. */
#define OD_ADAM_BETA1 0.0
#define OD_ADAM_BETA2 0.999
#define OD_ADAM_EPS 1e-8
/* Learning rates of the two parameter groups of the product. */
#define OD_ADAM_LR_BACKBONE 1e-5
#define OD_ADAM_LR_MATCHER 2e-5

/* Hyperparameters of one parameter group (Python floats in PyTorch, so
 * float64 here). */
typedef struct od_adam_group_config {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    int decoupled_weight_decay; /* 0: L2 as torch.optim.Adam; 1: as torch.optim.AdamW */
} od_adam_group_config;

/* Returns the product's settings with this learning rate and no weight decay. */
od_adam_group_config od_adam_group_defaults(double lr);

typedef struct od_adam od_adam;

od_adam *od_adam_new(od_error *err);
void od_adam_free(od_adam *adam);

/* Adds a parameter group and returns its index (0, 1, ...), or -1 when a
 * hyperparameter is out of range (lr, eps, weight_decay >= 0, betas in
 * [0, 1), all finite). */
int od_adam_add_group(od_adam *adam, const od_adam_group_config *config, od_error *err);

/* Registers a parameter of shape `shape` in a group. value and grad are the
 * caller's buffers of numel(shape) floats and must outlive the optimizer.
 * The name keys the parameter in saved state, so it must be unique and
 * non-empty. The moments start at zero. */
int od_adam_add_param(od_adam *adam, int group, const char *name, float *value, float *grad, int ndim,
                      const int64_t *shape, od_error *err);

/* Changes a group's learning rate (for a schedule). */
int od_adam_set_lr(od_adam *adam, int group, double lr, od_error *err);

int od_adam_param_count(const od_adam *adam);
/* Returns the number of steps taken by parameter `index` (0 for a new one). */
int64_t od_adam_param_steps(const od_adam *adam, int index);
/* Returns the first-moment (m) or second-moment (v) buffer of parameter `index`. */
const float *od_adam_exp_avg(const od_adam *adam, int index);
const float *od_adam_exp_avg_sq(const od_adam *adam, int index);

/* Applies one update to every registered parameter from its gradient. */
void od_adam_step(od_adam *adam);

/* Sets every registered gradient to zero. */
void od_adam_zero_grad(od_adam *adam);

/* Scales the gradients so that their global L2 norm is at most max_norm,
 * as torch.nn.utils.clip_grad_norm_ (PyTorch 1.13, norm_type 2):
 *     total = sqrt(sum over all tensors of sum g^2)
 *     g *= min(1, max_norm / (total + 1e-6))
 * and writes total, the norm before clipping, to *total_norm. grads[i] has
 * counts[i] floats. The sum of squares runs in float64 over blocks fixed by
 * the sizes, so the result is bit-identical for every thread count.
 * Unlike PyTorch, which fills the gradients with NaN, a non-finite total
 * leaves them unchanged. The caller sees it in *total_norm and can skip
 * the step. max_norm must be finite and > 0. */
int od_clip_grad_norm(float *const *grads, const int64_t *counts, int tensor_count, double max_norm,
                      float *total_norm, od_error *err);

/* od_clip_grad_norm over every gradient registered in the optimizer. */
int od_adam_clip_grad_norm(od_adam *adam, double max_norm, float *total_norm, od_error *err);

/* Writes the state of every parameter to a safetensors file, atomically:
 * "<name>.exp_avg" and "<name>.exp_avg_sq" (F32, the parameter's shape)
 * and "<name>.step" (I64, shape (1,)), with metadata "format" set to
 * OD_ADAM_STATE_FORMAT. Hyperparameters are not stored: they come from
 * the configuration on resume. */
#define OD_ADAM_STATE_FORMAT "oddone-adam-1"
int od_adam_save(const od_adam *adam, const char *path, od_error *err);

/* Loads the state written by od_adam_save into an optimizer with the same
 * parameters registered. Every parameter must be in the file with its
 * shape, and the file must contain nothing else. On any mismatch the
 * optimizer is left unchanged and the message names the tensor. Step
 * counts must fit in int32. */
int od_adam_load(od_adam *adam, const char *path, od_error *err);

#endif
