/* The 3D side of the learned model: a residual encoder-decoder over the
 * lifted feature volume, and per-voxel heads for density, colour and
 * teacher-space features, forward and backward.
 *
 * Sizes come from the configuration (model/config.h): L levels of
 * channels c[0..L-1], each level half the previous one's size along
 * every axis.
 *
 *   input     (N, D, H, W, Cin) channels-last, Cin = encoder2d.channels
 *   stem      conv3x3x3 Cin -> c0, batchnorm, ReLU
 *   down      at level l: down_blocks[l] residual blocks; then (l < L-1)
 *             the output is kept as skip l and a conv3x3x3 stride 2,
 *             c_l -> c_{l+1}, batchnorm, ReLU goes one level down
 *   up        for l = L-2 .. 0: transposed conv kernel 2 stride 2,
 *             c_{l+1} -> c_l (with bias), + skip l, then up_blocks[l]
 *             residual blocks
 *   trunk     the level-0 output (N, D, H, W, c0)
 *   heads     three per-voxel MLPs over the trunk's channels, each
 *             Linear(c0, hidden), LeakyReLU(0.01), Linear(hidden, out):
 *             density (out 1, raw: nn/render.h applies softplus),
 *             colour (out 3, then a logistic sigmoid, so in [0, 1]),
 *             feature (out k = teacher.channels, raw).
 * A residual block is conv3x3x3, batchnorm, ReLU, conv3x3x3, batchnorm,
 * + input, ReLU. Convolutions before a batchnorm have no bias.
 * This is bench/bench_encdec.c's network made a module, with the heads
 * added; parameter names are those of the matching PyTorch module
 * (scripts/refs/model.py), e.g. "stem.0.weight", "down.1.0.conv1.weight",
 * "up_conv.0.bias", "colour_head.2.weight".
 *
 * Batch norm: a training forward normalises with the batch's statistics
 * (eps 1e-5) and updates the running mean and variance with the
 * configured momentum, as PyTorch's train() mode does. An inference
 * forward normalises with the running statistics, as eval() mode does.
 * The running statistics are buffers of the parameter set, so
 * checkpoints carry them. The backward needs a training forward just
 * before it, because it reads the activations that the forward kept.
 * Two forwards with one backward each (the training step's two view sets)
 * accumulate both gradients.
 *
 * Every layer object is made for the configured shape, so calls after
 * the first allocate nothing. Results are bit-identical from run to run
 * at a given thread count, as the layers' are. */
#ifndef ODDONE_MODEL_VOLUME_NET_H
#define ODDONE_MODEL_VOLUME_NET_H

#include <stdint.h>

#include "core/error.h"
#include "model/config.h"
#include "model/params.h"

#define OD_VOLUME_NET_BN_EPS 1e-5f
#define OD_VOLUME_NET_LEAKY_SLOPE 0.01f

typedef struct od_volume_net_config {
    int64_t batch;
    int64_t dims[3]; /* D, H, W of the input volume (grid z, y, x) */
    int64_t in_channels;
    int levels;
    int64_t channels[OD_MODEL_MAX_LEVELS];
    int down_blocks[OD_MODEL_MAX_LEVELS];
    int up_blocks[OD_MODEL_MAX_LEVELS - 1];
    int64_t head_hidden;
    int64_t feature_channels; /* k of the feature head */
    float batchnorm_momentum;
} od_volume_net_config;

/* Returns the network's settings of a model configuration: the batch, the
 * grid's dims as (D, H, W), encoder2d.channels in, volume_net's sizes and
 * teacher.channels for the feature head. */
od_volume_net_config od_volume_net_config_from_model(const od_model_config *model);

typedef struct od_volume_net od_volume_net;

/* Builds the network and registers its tensors in params, each name
 * prefixed by prefix ("" for none, or e.g. "volume_net."). The tensors
 * are zero until od_params_initialize or od_params_load fills them.
 * Fails on sizes out of range (dims not divisible by 2^(levels - 1)
 * among them), a name clash in params or no memory. */
od_volume_net *od_volume_net_new(const od_volume_net_config *config, od_params *params, const char *prefix,
                                 od_error *err);
void od_volume_net_free(od_volume_net *net);

/* Runs the network on input (N, D, H, W, Cin). training = 1 uses batch
 * statistics, updates the running ones and keeps what the backward needs;
 * training = 0 uses the running statistics. The outputs stay valid until
 * the next forward: see the accessors below. After a training forward,
 * input must stay unchanged until the backward, which reads it. */
int od_volume_net_forward(od_volume_net *net, const float *input, int training, od_error *err);

/* Outputs of the last forward: density (N, D, H, W), colour
 * (N, D, H, W, 3) in [0, 1], features (N, D, H, W, k) and the trunk
 * (N, D, H, W, c0). */
const float *od_volume_net_density(const od_volume_net *net);
const float *od_volume_net_colour(const od_volume_net *net);
const float *od_volume_net_features(const od_volume_net *net);
const float *od_volume_net_trunk(const od_volume_net *net);

/* Backward of the last training forward from the gradients of the three
 * outputs (shapes as above; any may be NULL when no loss reaches that
 * head, which then gets no gradient). Accumulates into the parameters'
 * gradients and, when d_input is not NULL, into d_input (N, D, H, W, Cin).
 * Fails when the last forward was not a training forward. */
int od_volume_net_backward(od_volume_net *net, const float *d_density, const float *d_colour,
                           const float *d_features, float *d_input, od_error *err);

/* Multiply-adds of one forward's convolutions and linear layers. */
double od_volume_net_forward_macs(const od_volume_net *net);

#endif
