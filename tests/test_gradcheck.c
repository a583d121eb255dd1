/* Finite-difference gradient checks of small chains of layers, each ending
 * in a loss, against the chained backward functions.
 *
 * For a few random coordinates of every input and parameter, the central
 * difference (L(x + h) - L(x - h)) / (2h) of the float32 forward, taken in
 * float64, is compared with the analytic gradient. The relative error is
 *     |numeric - analytic| / max(|numeric|, |analytic|, GRAD_FLOOR)
 * and must stay below MAX_RELATIVE_ERROR.
 *
 * Why those numbers: the forward runs in float32, so a loss near 1 carries
 * a rounding noise of about 1e-7, which a step of h = 1e-2 turns into an
 * error of about 1e-5 in the difference quotient. The truncation error
 * h^2 f''' / 6 is of the same order for these smooth layers. A threshold of
 * 1e-2 is far above both, and far below what a wrong gradient gives: a
 * missing factor of 2 is a relative error of 0.5 to 1, a transposed weight
 * or a dropped term is of order 1. GRAD_FLOOR keeps coordinates whose true
 * gradient is nearly 0 from turning that noise into a large relative error.
 *
 * ReLU has a kink at 0, where the difference quotient is meaningless. The
 * chains that contain one record the sign pattern of its input, and a
 * coordinate whose perturbation flips any sign is skipped and replaced by
 * another draw. A tensor with fewer elements than COORDINATES_PER_TENSOR
 * has nothing to replace them with, so at least half of its elements must
 * be checked. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/norm.h"
#include "testlib.h"

#define STEP 1e-2
#define MAX_RELATIVE_ERROR 1e-2
#define GRAD_FLOOR 1e-3
/* Coordinates checked per tensor (all of them when the tensor is smaller). */
#define COORDINATES_PER_TENSOR 6
/* Draws allowed per tensor when coordinates on a ReLU kink are skipped. */
#define MAX_DRAWS_PER_TENSOR 60
#define LAYER_EPS 1e-5f

/* One checked tensor: its values, and its gradient from the backward. */
typedef struct checked_tensor {
    const char *name;
    float *value;
    float *grad;
    int64_t count;
} checked_tensor;

/* A chain of layers. loss() runs the forward and returns the loss, and
 * writes the sign pattern of its ReLU inputs to *kinks (0 without ReLU).
 * gradients() zeroes every gradient and runs forward and backward. */
typedef struct chain {
    const char *name;
    double (*loss)(void *state, uint64_t *kinks);
    void (*gradients)(void *state);
    void *state;
    checked_tensor *tensors;
    int tensor_count;
} chain;

/* Hashes which entries of x are positive, so that a flip anywhere shows. */
static uint64_t sign_pattern(const float *x, int64_t count)
{
    uint64_t hash = 1469598103934665603ull;
    for (int64_t i = 0; i < count; i++)
        hash = (hash ^ (uint64_t)(x[i] > 0.0f)) * 1099511628211ull;
    return hash;
}

/* Checks every tensor of the chain; returns the largest relative error. */
static double check_chain(const chain *c, uint64_t seed)
{
    od_rng rng;
    od_rng_seed(&rng, seed);
    c->gradients(c->state);
    uint64_t base_kinks = 0;
    c->loss(c->state, &base_kinks);

    double worst = 0.0;
    for (int t = 0; t < c->tensor_count; t++) {
        const checked_tensor *tensor = &c->tensors[t];
        int target_count = tensor->count < COORDINATES_PER_TENSOR ? (int)tensor->count : COORDINATES_PER_TENSOR;
        int checked = 0, skipped = 0;
        double tensor_worst = 0.0;
        int64_t worst_index = -1;
        double worst_numeric = 0.0, worst_analytic = 0.0;
        for (int draw = 0; draw < MAX_DRAWS_PER_TENSOR && checked < target_count; draw++) {
            int64_t i = tensor->count <= COORDINATES_PER_TENSOR ? draw
                                                                : (int64_t)od_rng_below(&rng, (uint64_t)tensor->count);
            if (i >= tensor->count)
                break;
            const float saved = tensor->value[i];
            const float plus = saved + (float)STEP, minus = saved - (float)STEP;
            uint64_t kinks_plus = 0, kinks_minus = 0;
            tensor->value[i] = plus;
            double loss_plus = c->loss(c->state, &kinks_plus);
            tensor->value[i] = minus;
            double loss_minus = c->loss(c->state, &kinks_minus);
            tensor->value[i] = saved;
            if (kinks_plus != base_kinks || kinks_minus != base_kinks) {
                skipped++;
                continue;
            }
            // the float32 step actually taken, which differs slightly from 2h
            double numeric = (loss_plus - loss_minus) / ((double)plus - (double)minus);
            double analytic = tensor->grad[i];
            double scale = fmax(fmax(fabs(numeric), fabs(analytic)), GRAD_FLOOR);
            double error = fabs(numeric - analytic) / scale;
            if (!(error <= tensor_worst)) {
                tensor_worst = error;
                worst_index = i;
                worst_numeric = numeric;
                worst_analytic = analytic;
            }
            checked++;
        }
        char text[512];
        snprintf(text, sizeof text,
                 "%s %s: %d coordinates checked (%d on a ReLU kink skipped), worst relative error %.3g at "
                 "[%lld]: numeric %.6g analytic %.6g",
                 c->name, tensor->name, checked, skipped, tensor_worst, (long long)worst_index, worst_numeric,
                 worst_analytic);
        int enough = tensor->count > COORDINATES_PER_TENSOR ? checked == target_count : 2 * checked >= target_count;
        od_test_record(enough && tensor_worst <= MAX_RELATIVE_ERROR, __FILE__, __LINE__, text);
        if (getenv("OD_GRADCHECK_VERBOSE") != NULL)
            fprintf(stderr, "%s\n", text);
        worst = fmax(worst, tensor_worst);
    }
    return worst;
}

static void fill(od_rng *rng, float *x, int64_t count, float mean, float stddev)
{
    od_rng_fill_normal(rng, x, count, mean, stddev);
}

/* ---- linear -> layer norm -> GELU -> linear -> BCE ---------------------- */

enum { MLP_ROWS = 6, MLP_IN = 5, MLP_HIDDEN = 8 };

typedef struct mlp_state {
    float x[MLP_ROWS * MLP_IN], w1[MLP_HIDDEN * MLP_IN], b1[MLP_HIDDEN];
    float gamma[MLP_HIDDEN], beta[MLP_HIDDEN], w2[MLP_HIDDEN], b2[1];
    float targets[MLP_ROWS];
    // activations
    float h1[MLP_ROWS * MLP_HIDDEN], normed[MLP_ROWS * MLP_HIDDEN], act[MLP_ROWS * MLP_HIDDEN];
    float mean[MLP_ROWS], rstd[MLP_ROWS], logits[MLP_ROWS];
    // gradients
    float dx[MLP_ROWS * MLP_IN], dw1[MLP_HIDDEN * MLP_IN], db1[MLP_HIDDEN];
    float dgamma[MLP_HIDDEN], dbeta[MLP_HIDDEN], dw2[MLP_HIDDEN], db2[1];
    float dh1[MLP_ROWS * MLP_HIDDEN], dnormed[MLP_ROWS * MLP_HIDDEN], dact[MLP_ROWS * MLP_HIDDEN];
    float dlogits[MLP_ROWS];
} mlp_state;

static double mlp_loss(void *state, uint64_t *kinks)
{
    mlp_state *s = state;
    od_linear_forward(s->h1, s->x, s->w1, s->b1, MLP_ROWS, MLP_IN, MLP_HIDDEN);
    od_layernorm_forward(s->normed, s->mean, s->rstd, s->h1, s->gamma, s->beta, MLP_ROWS, MLP_HIDDEN, LAYER_EPS);
    od_gelu_forward(s->act, s->normed, MLP_ROWS * MLP_HIDDEN);
    od_linear_forward(s->logits, s->act, s->w2, s->b2, MLP_ROWS, MLP_HIDDEN, 1);
    float loss = NAN;
    od_error err;
    OD_CHECK(od_bce_with_logits_forward(&loss, s->logits, s->targets, MLP_ROWS, OD_BCE_WEIGHT_ANOMALOUS,
                                        OD_BCE_WEIGHT_NORMAL, OD_LOSS_MEAN, &err) == 0);
    *kinks = 0;
    return loss;
}

static void mlp_gradients(void *state)
{
    mlp_state *s = state;
    memset(s->dx, 0, sizeof s->dx);
    memset(s->dw1, 0, sizeof s->dw1);
    memset(s->db1, 0, sizeof s->db1);
    memset(s->dgamma, 0, sizeof s->dgamma);
    memset(s->dbeta, 0, sizeof s->dbeta);
    memset(s->dw2, 0, sizeof s->dw2);
    memset(s->db2, 0, sizeof s->db2);
    memset(s->dh1, 0, sizeof s->dh1);
    memset(s->dnormed, 0, sizeof s->dnormed);
    memset(s->dact, 0, sizeof s->dact);
    memset(s->dlogits, 0, sizeof s->dlogits);
    uint64_t kinks;
    mlp_loss(s, &kinks);

    od_error err;
    OD_CHECK(od_bce_with_logits_backward(s->dlogits, s->logits, s->targets, MLP_ROWS, OD_BCE_WEIGHT_ANOMALOUS,
                                         OD_BCE_WEIGHT_NORMAL, OD_LOSS_MEAN, 1.0f, &err) == 0);
    od_linear_backward(s->dact, s->dw2, s->db2, s->dlogits, s->act, s->w2, MLP_ROWS, MLP_HIDDEN, 1);
    od_gelu_backward(s->dnormed, s->dact, s->normed, MLP_ROWS * MLP_HIDDEN);
    od_layernorm_backward(s->dh1, s->dgamma, s->dbeta, s->dnormed, s->h1, s->mean, s->rstd, s->gamma, MLP_ROWS,
                          MLP_HIDDEN);
    od_linear_backward(s->dx, s->dw1, s->db1, s->dh1, s->x, s->w1, MLP_ROWS, MLP_IN, MLP_HIDDEN);
}

static void mlp_with_bce_matches_differences(void)
{
    static mlp_state s;
    od_rng rng;
    od_rng_seed(&rng, 21);
    fill(&rng, s.x, MLP_ROWS * MLP_IN, 0.0f, 1.0f);
    fill(&rng, s.w1, MLP_HIDDEN * MLP_IN, 0.0f, 0.5f);
    fill(&rng, s.b1, MLP_HIDDEN, 0.0f, 0.1f);
    fill(&rng, s.gamma, MLP_HIDDEN, 1.0f, 0.2f);
    fill(&rng, s.beta, MLP_HIDDEN, 0.0f, 0.2f);
    fill(&rng, s.w2, MLP_HIDDEN, 0.0f, 0.7f);
    s.b2[0] = 0.1f;
    for (int i = 0; i < MLP_ROWS; i++)
        s.targets[i] = (float)(i % 3 == 0);

    checked_tensor tensors[] = {
        {"x", s.x, s.dx, MLP_ROWS * MLP_IN},       {"linear1.weight", s.w1, s.dw1, MLP_HIDDEN * MLP_IN},
        {"linear1.bias", s.b1, s.db1, MLP_HIDDEN}, {"layernorm.weight", s.gamma, s.dgamma, MLP_HIDDEN},
        {"layernorm.bias", s.beta, s.dbeta, MLP_HIDDEN}, {"linear2.weight", s.w2, s.dw2, MLP_HIDDEN},
        {"linear2.bias", s.b2, s.db2, 1},
    };
    chain c = {"linear-layernorm-gelu-linear-bce", mlp_loss, mlp_gradients, &s, tensors,
               (int)(sizeof tensors / sizeof tensors[0])};
    check_chain(&c, 5);
}

/* ---- conv3d -> batch norm -> ReLU -> cosine ----------------------------- */

enum { VOL_N = 2, VOL_D = 3, VOL_H = 4, VOL_W = 5, VOL_CIN = 3, VOL_COUT = 4 };
#define VOL_VOXELS (VOL_N * VOL_D * VOL_H * VOL_W)
#define CONV_WEIGHTS (VOL_COUT * VOL_CIN * 27)

typedef struct volume_state {
    od_conv3d *conv;
    float x[VOL_VOXELS * VOL_CIN], weight[CONV_WEIGHTS], bias[VOL_COUT];
    float gamma[VOL_COUT], beta[VOL_COUT];
    float target[VOL_VOXELS * VOL_COUT];
    // activations
    float conv_out[VOL_VOXELS * VOL_COUT], normed[VOL_VOXELS * VOL_COUT], act[VOL_VOXELS * VOL_COUT];
    float mean[VOL_COUT], rstd[VOL_COUT];
    // gradients
    float dx[VOL_VOXELS * VOL_CIN], dweight[CONV_WEIGHTS], dbias[VOL_COUT];
    float dgamma[VOL_COUT], dbeta[VOL_COUT];
    float dconv_out[VOL_VOXELS * VOL_COUT], dnormed[VOL_VOXELS * VOL_COUT], dact[VOL_VOXELS * VOL_COUT];
} volume_state;

static double volume_loss(void *state, uint64_t *kinks)
{
    volume_state *s = state;
    od_error err;
    OD_CHECK(od_conv3d_forward(s->conv, s->conv_out, s->x, s->weight, s->bias, &err) == 0);
    od_batchnorm_forward(s->normed, s->mean, s->rstd, s->conv_out, s->gamma, s->beta, VOL_VOXELS, VOL_COUT,
                         LAYER_EPS);
    od_relu_forward(s->act, s->normed, VOL_VOXELS * VOL_COUT);
    *kinks = sign_pattern(s->normed, VOL_VOXELS * VOL_COUT);
    float loss = NAN;
    OD_CHECK(od_cosine_loss_forward(&loss, s->act, s->target, NULL, VOL_VOXELS, VOL_COUT, OD_COSINE_EPS,
                                    OD_LOSS_MEAN, &err) == 0);
    return loss;
}

static void volume_gradients(void *state)
{
    volume_state *s = state;
    memset(s->dx, 0, sizeof s->dx);
    memset(s->dweight, 0, sizeof s->dweight);
    memset(s->dbias, 0, sizeof s->dbias);
    memset(s->dgamma, 0, sizeof s->dgamma);
    memset(s->dbeta, 0, sizeof s->dbeta);
    memset(s->dconv_out, 0, sizeof s->dconv_out);
    memset(s->dnormed, 0, sizeof s->dnormed);
    memset(s->dact, 0, sizeof s->dact);
    uint64_t kinks;
    volume_loss(s, &kinks);

    od_error err;
    OD_CHECK(od_cosine_loss_backward(s->dact, s->act, s->target, NULL, VOL_VOXELS, VOL_COUT, OD_COSINE_EPS,
                                     OD_LOSS_MEAN, 1.0f, &err) == 0);
    od_relu_backward(s->dnormed, s->dact, s->act, VOL_VOXELS * VOL_COUT);
    od_batchnorm_backward(s->dconv_out, s->dgamma, s->dbeta, s->dnormed, s->conv_out, s->mean, s->rstd, s->gamma,
                          VOL_VOXELS, VOL_COUT);
    OD_CHECK(od_conv3d_backward(s->conv, s->dx, s->dweight, s->dbias, s->dconv_out, s->x, s->weight, &err) == 0);
}

static void conv_chain_with_cosine_matches_differences(void)
{
    static volume_state s;
    od_conv3d_config config = {
        .batch = VOL_N,
        .in_channels = VOL_CIN,
        .out_channels = VOL_COUT,
        .in_size = {VOL_D, VOL_H, VOL_W},
        .kernel = {3, 3, 3},
        .stride = {1, 1, 1},
        .padding = {1, 1, 1},
        .dilation = {1, 1, 1},
        .groups = 1,
        .bias = 1,
    };
    od_error err;
    s.conv = od_conv3d_new(&config, &err);
    OD_CHECK(s.conv != NULL);
    if (s.conv == NULL)
        return;
    od_rng rng;
    od_rng_seed(&rng, 22);
    fill(&rng, s.x, VOL_VOXELS * VOL_CIN, 0.0f, 1.0f);
    fill(&rng, s.weight, CONV_WEIGHTS, 0.0f, 0.3f);
    fill(&rng, s.bias, VOL_COUT, 0.0f, 0.1f);
    fill(&rng, s.gamma, VOL_COUT, 1.0f, 0.2f);
    fill(&rng, s.beta, VOL_COUT, 0.3f, 0.2f);
    fill(&rng, s.target, VOL_VOXELS * VOL_COUT, 0.5f, 1.0f);

    checked_tensor tensors[] = {
        {"x", s.x, s.dx, VOL_VOXELS * VOL_CIN},
        {"conv.weight", s.weight, s.dweight, CONV_WEIGHTS},
        {"conv.bias", s.bias, s.dbias, VOL_COUT},
        {"batchnorm.weight", s.gamma, s.dgamma, VOL_COUT},
        {"batchnorm.bias", s.beta, s.dbeta, VOL_COUT},
    };
    chain c = {"conv3d-batchnorm-relu-cosine", volume_loss, volume_gradients, &s, tensors,
               (int)(sizeof tensors / sizeof tensors[0])};
    check_chain(&c, 6);
    od_conv3d_free(s.conv);
}

int main(void)
{
    OD_RUN(mlp_with_bce_matches_differences);
    OD_RUN(conv_chain_with_cosine_matches_differences);
    return od_test_finish();
}
