/* Determinism of a training step through a small network built from the
 * library's layers: conv3d, batch norm, ReLU, trilinear sampling, linear,
 * multi-head attention, linear, the cosine loss, clipping and Adam.
 *
 * (a) The same seed on the same thread count gives bit-identical
 *     parameters after two Adam steps.
 * (b) One thread and two threads give the same result within a tolerance,
 *     because oneDNN's convolution and sgemm split their reductions over
 *     the threads, so sums are rounded in a different order. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/norm.h"
#include "nn/optim.h"
#include "nn/trilinear.h"
#include "testlib.h"

/* Sizes: a 8^3 volume of 4 channels, 64 sampled points that form 2 groups
 * of 32 tokens for attention with 2 heads. */
enum {
    GRID = 8,
    IN_CHANNELS = 4,
    FEATURES = 8,
    POINTS = 64,
    GROUPS = 2,
    TOKENS = POINTS / GROUPS,
    WIDTH = 16,
    HEADS = 2,
    STEPS = 2,
};
#define VOXELS (GRID * GRID * GRID)
#define MAX_NORM 1.0
#define BN_EPS 1e-5f

/* Across thread counts, the loss and the gradients of the first step are
 * sums rounded in another order, so they agree to a few float32 ulps of
 * the largest terms. The gradient tolerance is GRAD_TOLERANCE times the
 * tensor's scale: its largest gradient, but at least GRAD_SCALE_FLOOR
 * times the network's largest. The floor matters for tensors whose exact
 * gradient is 0 (the conv bias before batch norm, the key bias of
 * attention), where every value is rounding noise. */
#define LOSS_RTOL 1e-5f
#define GRAD_TOLERANCE 1e-4f
#define GRAD_SCALE_FLOOR 1e-3f
/* After the Adam steps: with beta1 = 0 an update is lr * g / (|g| + eps)
 * after bias correction, close to lr * sign(g). Where |g| is well above
 * the rounding noise (GRAD_SIGNAL times the tensor's scale), the two runs
 * move a parameter alike, within PARAM_TOLERANCE_IN_LR * lr. Where it is
 * not, the sign of g is noise, and only Adam's own bound applies. With
 * beta1 = 0, update t moves a parameter by at most sqrt(t) * lr, so after
 * two steps the runs differ by at most 2 * (1 + sqrt(2)) * lr. */
#define GRAD_SIGNAL 1e-3f
#define PARAM_TOLERANCE_IN_LR 1e-2
#define NOISE_PARAM_TOLERANCE_IN_LR (2.0 * (1.0 + 1.41421356))
_Static_assert(STEPS == 2, "NOISE_PARAM_TOLERANCE_IN_LR is the bound for two steps");

enum {
    P_CONV_WEIGHT,
    P_CONV_BIAS,
    P_BN_GAMMA,
    P_BN_BETA,
    P_LINEAR1_WEIGHT,
    P_LINEAR1_BIAS,
    P_IN_PROJ_WEIGHT,
    P_IN_PROJ_BIAS,
    P_OUT_PROJ_WEIGHT,
    P_OUT_PROJ_BIAS,
    P_LINEAR2_WEIGHT,
    P_LINEAR2_BIAS,
    PARAM_COUNT,
};

static const char *const PARAM_NAMES[PARAM_COUNT] = {
    "conv.weight",          "conv.bias",          "bn.weight",           "bn.bias",
    "linear1.weight",       "linear1.bias",       "attn.in_proj_weight", "attn.in_proj_bias",
    "attn.out_proj_weight", "attn.out_proj_bias", "linear2.weight",      "linear2.bias",
};

static const int64_t PARAM_SIZES[PARAM_COUNT] = {
    [P_CONV_WEIGHT] = FEATURES * IN_CHANNELS * 27,
    [P_CONV_BIAS] = FEATURES,
    [P_BN_GAMMA] = FEATURES,
    [P_BN_BETA] = FEATURES,
    [P_LINEAR1_WEIGHT] = WIDTH * FEATURES,
    [P_LINEAR1_BIAS] = WIDTH,
    [P_IN_PROJ_WEIGHT] = 3 * WIDTH * WIDTH,
    [P_IN_PROJ_BIAS] = 3 * WIDTH,
    [P_OUT_PROJ_WEIGHT] = WIDTH * WIDTH,
    [P_OUT_PROJ_BIAS] = WIDTH,
    [P_LINEAR2_WEIGHT] = FEATURES * WIDTH,
    [P_LINEAR2_BIAS] = FEATURES,
};

typedef struct network {
    od_conv3d *conv;
    od_adam *adam;
    float *param[PARAM_COUNT];
    float *grad[PARAM_COUNT];
    float *input, *target;
    float *points; /* (POINTS, 3) sample positions in voxel units */
    // activations
    float *conv_out, *normed, *act, *mean, *rstd;
    float *sampled, *tokens, *attended, *out;
    od_mha_saved saved;
    // activation gradients
    float *d_conv_out, *d_normed, *d_act, *d_sampled, *d_tokens, *d_attended, *d_out;
} network;

static float *floats(int64_t count)
{
    float *buffer = od_alloc_floats(count);
    OD_CHECK(buffer != NULL);
    return buffer;
}

static int network_init(network *net, uint64_t seed)
{
    memset(net, 0, sizeof *net);
    od_error err;
    od_conv3d_config config = {
        .batch = 1,
        .in_channels = IN_CHANNELS,
        .out_channels = FEATURES,
        .in_size = {GRID, GRID, GRID},
        .kernel = {3, 3, 3},
        .stride = {1, 1, 1},
        .padding = {1, 1, 1},
        .dilation = {1, 1, 1},
        .groups = 1,
        .bias = 1,
    };
    net->conv = od_conv3d_new(&config, &err);
    net->adam = od_adam_new(&err);
    if (net->conv == NULL || net->adam == NULL)
        return -1;
    od_adam_group_config backbone = od_adam_group_defaults(OD_ADAM_LR_BACKBONE);
    od_adam_group_config matcher = od_adam_group_defaults(OD_ADAM_LR_MATCHER);
    OD_CHECK(od_adam_add_group(net->adam, &backbone, &err) == 0);
    OD_CHECK(od_adam_add_group(net->adam, &matcher, &err) == 1);

    od_rng rng;
    od_rng_seed(&rng, seed);
    for (int p = 0; p < PARAM_COUNT; p++) {
        net->param[p] = floats(PARAM_SIZES[p]);
        net->grad[p] = floats(PARAM_SIZES[p]);
        float stddev = p == P_CONV_WEIGHT ? 0.2f : 0.3f;
        od_rng_fill_normal(&rng, net->param[p], PARAM_SIZES[p], 0.0f, stddev);
        int group = p <= P_BN_BETA ? 0 : 1;
        OD_CHECK(od_adam_add_param(net->adam, group, PARAM_NAMES[p], net->param[p], net->grad[p], 1,
                                   &PARAM_SIZES[p], &err) == 0);
    }
    for (int64_t c = 0; c < FEATURES; c++)
        net->param[P_BN_GAMMA][c] += 1.0f;

    net->input = floats(VOXELS * IN_CHANNELS);
    net->target = floats(POINTS * FEATURES);
    od_rng_fill_normal(&rng, net->input, VOXELS * IN_CHANNELS, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, net->target, POINTS * FEATURES, 0.0f, 1.0f);
    net->points = floats(POINTS * 3);
    od_rng_fill_uniform(&rng, net->points, POINTS * 3, 0.0f, (float)(GRID - 1));

    net->conv_out = floats(VOXELS * FEATURES);
    net->normed = floats(VOXELS * FEATURES);
    net->act = floats(VOXELS * FEATURES);
    net->mean = floats(FEATURES);
    net->rstd = floats(FEATURES);
    net->sampled = floats(POINTS * FEATURES);
    net->tokens = floats(POINTS * WIDTH);
    net->attended = floats(POINTS * WIDTH);
    net->out = floats(POINTS * FEATURES);
    net->d_conv_out = floats(VOXELS * FEATURES);
    net->d_normed = floats(VOXELS * FEATURES);
    net->d_act = floats(VOXELS * FEATURES);
    net->d_sampled = floats(POINTS * FEATURES);
    net->d_tokens = floats(POINTS * WIDTH);
    net->d_attended = floats(POINTS * WIDTH);
    net->d_out = floats(POINTS * FEATURES);
    OD_CHECK(od_mha_saved_alloc(&net->saved, GROUPS, TOKENS, TOKENS, WIDTH, HEADS, 0, &err) == 0);
    return 0;
}

static void network_free(network *net)
{
    od_conv3d_free(net->conv);
    od_adam_free(net->adam);
    for (int p = 0; p < PARAM_COUNT; p++) {
        od_free(net->param[p]);
        od_free(net->grad[p]);
    }
    float *buffers[] = {net->input,    net->target,     net->conv_out, net->normed, net->act,
                        net->mean,     net->rstd,       net->sampled,  net->tokens, net->attended,
                        net->out,      net->d_conv_out, net->d_normed, net->d_act,  net->d_sampled,
                        net->d_tokens, net->d_attended, net->d_out};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        od_free(buffers[i]);
    od_free(net->points);
    od_mha_saved_release(&net->saved);
}

static od_mha_params attention_params(float *const *tensors)
{
    od_mha_params params = {tensors[P_IN_PROJ_WEIGHT], tensors[P_IN_PROJ_BIAS], tensors[P_OUT_PROJ_WEIGHT],
                            tensors[P_OUT_PROJ_BIAS]};
    return params;
}

/* Forward and backward; the gradients are zeroed first. Returns the loss. */
static float forward_backward(network *net)
{
    od_error err;
    od_adam_zero_grad(net->adam);
    size_t volume_bytes = VOXELS * FEATURES * sizeof(float), point_bytes = POINTS * FEATURES * sizeof(float);
    memset(net->d_conv_out, 0, volume_bytes);
    memset(net->d_normed, 0, volume_bytes);
    memset(net->d_act, 0, volume_bytes);
    memset(net->d_sampled, 0, point_bytes);
    memset(net->d_out, 0, point_bytes);
    memset(net->d_tokens, 0, POINTS * WIDTH * sizeof(float));
    memset(net->d_attended, 0, POINTS * WIDTH * sizeof(float));
    const od_mha_params params = attention_params(net->param);
    od_mha_params grads = attention_params(net->grad);

    // forward
    OD_CHECK(od_conv3d_forward(net->conv, net->conv_out, net->input, net->param[P_CONV_WEIGHT],
                               net->param[P_CONV_BIAS], &err) == 0);
    od_batchnorm_forward(net->normed, net->mean, net->rstd, net->conv_out, net->param[P_BN_GAMMA],
                         net->param[P_BN_BETA], VOXELS, FEATURES, BN_EPS);
    od_relu_forward(net->act, net->normed, VOXELS * FEATURES);
    OD_CHECK(od_trilinear_forward(net->sampled, net->act, net->points, 1, GRID, GRID, GRID, FEATURES, POINTS,
                                  &err) == 0);
    od_linear_forward(net->tokens, net->sampled, net->param[P_LINEAR1_WEIGHT], net->param[P_LINEAR1_BIAS],
                      POINTS, FEATURES, WIDTH);
    OD_CHECK(od_mha_forward(net->attended, &net->saved, net->tokens, net->tokens, net->tokens, NULL, &params,
                            GROUPS, TOKENS, TOKENS, WIDTH, HEADS, 0, &err) == 0);
    od_linear_forward(net->out, net->attended, net->param[P_LINEAR2_WEIGHT], net->param[P_LINEAR2_BIAS],
                      POINTS, WIDTH, FEATURES);
    float loss = NAN;

    // backward
    OD_CHECK(od_cosine_loss_forward_backward(&loss, net->d_out, net->out, net->target, NULL, POINTS, FEATURES,
                                             OD_COSINE_EPS, OD_LOSS_MEAN, 1.0f, &err) == 0);
    od_linear_backward(net->d_attended, net->grad[P_LINEAR2_WEIGHT], net->grad[P_LINEAR2_BIAS], net->d_out,
                       net->attended, net->param[P_LINEAR2_WEIGHT], POINTS, WIDTH, FEATURES);
    OD_CHECK(od_mha_backward(net->d_tokens, net->d_tokens, net->d_tokens, &grads, net->d_attended,
                             &net->saved, net->tokens, net->tokens, net->tokens, NULL, &params, GROUPS,
                             TOKENS, TOKENS, WIDTH, HEADS, 0, &err) == 0);
    od_linear_backward(net->d_sampled, net->grad[P_LINEAR1_WEIGHT], net->grad[P_LINEAR1_BIAS], net->d_tokens,
                       net->sampled, net->param[P_LINEAR1_WEIGHT], POINTS, FEATURES, WIDTH);
    OD_CHECK(od_trilinear_backward(net->d_act, NULL, net->d_sampled, net->act, net->points, 1, GRID, GRID,
                                   GRID, FEATURES, POINTS, &err) == 0);
    od_relu_backward(net->d_normed, net->d_act, net->act, VOXELS * FEATURES);
    od_batchnorm_backward(net->d_conv_out, net->grad[P_BN_GAMMA], net->grad[P_BN_BETA], net->d_normed,
                          net->conv_out, net->mean, net->rstd, net->param[P_BN_GAMMA], VOXELS, FEATURES);
    OD_CHECK(od_conv3d_backward(net->conv, NULL, net->grad[P_CONV_WEIGHT], net->grad[P_CONV_BIAS],
                                net->d_conv_out, net->input, net->param[P_CONV_WEIGHT], &err) == 0);
    return loss;
}

/* What one run leaves: the first step's loss and gradients, and the
 * parameters after STEPS steps. */
typedef struct run_result {
    float loss;
    float *first_grad[PARAM_COUNT];
    float *param[PARAM_COUNT];
} run_result;

static void run_training(run_result *result, int threads)
{
    int saved_threads = od_get_num_threads();
    od_set_num_threads(threads);
    network net;
    memset(result, 0, sizeof *result);
    if (network_init(&net, 1234) == 0) {
        for (int step = 0; step < STEPS; step++) {
            float loss = forward_backward(&net);
            if (step == 0) {
                result->loss = loss;
                for (int p = 0; p < PARAM_COUNT; p++) {
                    result->first_grad[p] = floats(PARAM_SIZES[p]);
                    memcpy(result->first_grad[p], net.grad[p], (size_t)PARAM_SIZES[p] * sizeof(float));
                }
            }
            float norm = NAN;
            od_error err;
            OD_CHECK(od_adam_clip_grad_norm(net.adam, MAX_NORM, &norm, &err) == 0);
            OD_CHECK(isfinite(norm) && norm > 0.0f);
            od_adam_step(net.adam);
        }
        for (int p = 0; p < PARAM_COUNT; p++) {
            result->param[p] = floats(PARAM_SIZES[p]);
            memcpy(result->param[p], net.param[p], (size_t)PARAM_SIZES[p] * sizeof(float));
        }
    }
    network_free(&net);
    od_set_num_threads(saved_threads);
}

static void run_release(run_result *result)
{
    for (int p = 0; p < PARAM_COUNT; p++) {
        od_free(result->first_grad[p]);
        od_free(result->param[p]);
    }
}

static void same_threads_bit_identical(void)
{
    run_result first, second;
    run_training(&first, 2);
    run_training(&second, 2);
    OD_CHECK(first.loss == second.loss);
    OD_CHECK(first.loss > 0.5f && first.loss < 1.5f); // random targets: cosine near 0
    for (int p = 0; p < PARAM_COUNT; p++) {
        if (first.param[p] == NULL || second.param[p] == NULL)
            continue;
        OD_CHECK_IDENTICAL(PARAM_NAMES[p], first.param[p], second.param[p], PARAM_SIZES[p]);
        OD_CHECK_IDENTICAL("first gradient", first.first_grad[p], second.first_grad[p], PARAM_SIZES[p]);
    }
    run_release(&first);
    run_release(&second);
}

static float largest_magnitude(const float *x, int64_t count)
{
    float largest = 0.0f;
    for (int64_t i = 0; i < count; i++)
        largest = fmaxf(largest, fabsf(x[i]));
    return largest;
}

/* Compares the parameters after the steps, element by element, with the
 * tolerance that the element's first gradient allows. */
static void check_params_across_threads(const run_result *one_thread, const run_result *two_threads, int p,
                                        float grad_scale)
{
    double lr = p <= P_BN_BETA ? OD_ADAM_LR_BACKBONE : OD_ADAM_LR_MATCHER;
    int64_t worst = -1;
    double worst_excess = 0.0, worst_limit = 0.0;
    int64_t noise_elements = 0;
    for (int64_t i = 0; i < PARAM_SIZES[p]; i++) {
        int signal = fabsf(one_thread->first_grad[p][i]) >= GRAD_SIGNAL * grad_scale;
        noise_elements += !signal;
        double limit = (signal ? PARAM_TOLERANCE_IN_LR : NOISE_PARAM_TOLERANCE_IN_LR) * lr;
        double difference = fabs((double)two_threads->param[p][i] - (double)one_thread->param[p][i]);
        if (!(difference <= limit) && (worst < 0 || difference - limit > worst_excess)) {
            worst = i;
            worst_excess = difference - limit;
            worst_limit = limit;
        }
    }
    char text[384];
    snprintf(
        text, sizeof text,
        "%s after %d steps, 1 vs 2 threads (%lld of %lld elements with a noise-level gradient): worst [%lld] "
        "exceeds its tolerance %.3g by %.3g",
        PARAM_NAMES[p], STEPS, (long long)noise_elements, (long long)PARAM_SIZES[p], (long long)worst,
        worst_limit, worst_excess);
    od_test_record(worst < 0, __FILE__, __LINE__, text);
}

static void thread_counts_agree(void)
{
    run_result one_thread, two_threads;
    run_training(&one_thread, 1);
    run_training(&two_threads, 2);
    OD_CHECK_CLOSE("loss", &two_threads.loss, &one_thread.loss, 1, 0.0f, LOSS_RTOL);
    float network_largest = 0.0f;
    for (int p = 0; p < PARAM_COUNT; p++)
        if (one_thread.first_grad[p] != NULL)
            network_largest =
                fmaxf(network_largest, largest_magnitude(one_thread.first_grad[p], PARAM_SIZES[p]));
    OD_CHECK(network_largest > 0.0f);

    for (int p = 0; p < PARAM_COUNT; p++) {
        if (one_thread.param[p] == NULL || two_threads.param[p] == NULL)
            continue;
        float scale = fmaxf(largest_magnitude(one_thread.first_grad[p], PARAM_SIZES[p]),
                            GRAD_SCALE_FLOOR * network_largest);
        char name[128];
        snprintf(name, sizeof name, "%s gradient, 1 vs 2 threads", PARAM_NAMES[p]);
        OD_CHECK_CLOSE(name, two_threads.first_grad[p], one_thread.first_grad[p], PARAM_SIZES[p],
                       GRAD_TOLERANCE * scale, 0.0f);
        check_params_across_threads(&one_thread, &two_threads, p, scale);
    }
    run_release(&one_thread);
    run_release(&two_threads);
}

int main(void)
{
    OD_RUN(same_threads_bit_identical);
    OD_RUN(thread_counts_agree);
    return od_test_finish();
}
