/* A named parameter set: every tensor of the learned model with its name,
 * shape, value and gradient, in one place so that initialisation,
 * zero-grad, checkpoints and the optimizer treat all modules alike.
 *
 * A module registers each tensor when it is built and keeps the returned
 * value and gradient pointers, which stay valid until the set is freed.
 * Names follow PyTorch's state_dict keys (e.g. "stem.0.weight",
 * "down.1.0.bn1.running_mean"), so that a PyTorch module with the same
 * structure saves the same names.
 *
 * Two kinds of tensor: parameters, which have a gradient and are trained,
 * and buffers (batch-norm running statistics), which have none and are
 * only saved and loaded. */
#ifndef ODDONE_MODEL_PARAMS_H
#define ODDONE_MODEL_PARAMS_H

#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"
#include "nn/optim.h"

#define OD_PARAM_NAME_SIZE 128

/* How od_params_initialize fills a tensor. */
typedef enum od_param_init {
    /* PyTorch's default for Conv*d, ConvTranspose3d and Linear weights,
     * kaiming_uniform_(a = sqrt(5)): uniform in [-b, b] with
     * b = 1 / sqrt(fan_in), where fan_in = shape[1] * (product of
     * shape[2:]), as torch.nn.init computes it for both kinds of
     * convolution. */
    OD_PARAM_INIT_KAIMING_UNIFORM = 0,
    /* PyTorch's default bias: uniform in [-b, b], b = 1 / sqrt(fan_in) of
     * the layer's weight (given at registration). */
    OD_PARAM_INIT_BIAS = 1,
    OD_PARAM_INIT_ZEROS = 2,
    OD_PARAM_INIT_ONES = 3,
} od_param_init;

typedef struct od_param {
    char name[OD_PARAM_NAME_SIZE];
    int ndim;
    int64_t shape[OD_MAX_DIMS];
    int64_t count;         /* elements */
    float *value;          /* count floats */
    float *grad;           /* count floats, NULL for a buffer */
    od_param_init init;
    int64_t fan_in;        /* for OD_PARAM_INIT_BIAS */
} od_param;

typedef struct od_params od_params;

od_params *od_params_new(od_error *err);
void od_params_free(od_params *params);

/* Registers a parameter (with a zeroed gradient) or, with trainable = 0, a
 * buffer, and returns it, zero-filled; NULL on an empty, too long or
 * repeated name, an invalid shape or no memory. fan_in is used by
 * OD_PARAM_INIT_BIAS only (pass 0 otherwise). */
od_param *od_params_add(od_params *params, const char *name, int ndim, const int64_t *shape, int trainable,
                        od_param_init init, int64_t fan_in, od_error *err);

int od_params_count(const od_params *params);
od_param *od_params_at(const od_params *params, int index);
/* Returns the tensor of that name, or NULL. */
od_param *od_params_find(const od_params *params, const char *name);
/* Returns the number of trainable elements. */
int64_t od_params_numel(const od_params *params);

/* Fills every tensor by its init rule. Tensor i draws from
 * od_rng_fork(seed, hash of its name), so a tensor's values depend only
 * on the seed, its name and its shape, not on the order of registration. */
void od_params_initialize(od_params *params, uint64_t seed);

/* Sets every gradient to zero. */
void od_params_zero_grad(od_params *params);

/* Writes every tensor (parameters and buffers) as F32 to a safetensors
 * file, atomically, with metadata "format" = OD_PARAMS_FORMAT. */
#define OD_PARAMS_FORMAT "oddone-params-1"
int od_params_save(const od_params *params, const char *path, od_error *err);

/* Loads a file written by od_params_save (or any safetensors file with the
 * same names and shapes in a floating-point dtype). Every tensor of the
 * set must be in the file with its shape, and the file must contain
 * nothing else. On failure the set is left unchanged and the message
 * names the file and the tensor. */
int od_params_load(od_params *params, const char *path, od_error *err);

/* Registers in the optimizer's group `group` every trainable tensor whose
 * name starts with prefix ("" for all) and that is not registered yet
 * by an earlier call; writes the number registered to *registered when
 * not NULL. Call it once per prefix and group (backbone, matcher). */
int od_params_add_to_adam(od_params *params, od_adam *adam, const char *prefix, int group, int *registered,
                          od_error *err);

#endif
