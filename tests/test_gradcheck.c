/* Finite-difference gradient checks of small chains of layers, each ending
 * in a loss, against the chained backward functions.
 *
 * For a few random coordinates of every input and parameter, the central
 * difference (L(x + h) - L(x - h)) / (2h) of the float32 forward, taken in
 * float64, is compared with the analytic gradient. The relative error is
 *     |numeric - analytic| / max(|numeric|, |analytic|, GRAD_FLOOR)
 * and must stay below MAX_RELATIVE_ERROR.
 *
 * Why those numbers: the layers run in float32, so the loss carries a
 * rounding noise of about 1e-7 relative, which a step of h = 3e-3 turns
 * into an absolute error of a few 1e-7 to 1e-6 in the difference quotient.
 * The truncation error h^2 f''' / 6 is smaller still for these smooth
 * layers (measured worst relative error: 9e-4). The loss value is
 * recomputed here in float64 from the last activations, because rounding
 * the loss to float32 would add an error of about 1e-5 at this step. (The
 * float32 loss forwards are checked against PyTorch in test_loss.c.)
 * A threshold of 1e-2 is far above that noise and far below what a wrong
 * gradient gives. A missing factor of 2 is a relative error of 0.5 to 1,
 * and a transposed weight or a dropped term is of order 1. GRAD_FLOOR
 * keeps coordinates whose true gradient is nearly 0 from turning the
 * noise into a large relative error.
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
#include "nn/trilinear.h"
#include "testlib.h"

#define STEP 3e-3
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
        int target_count =
            tensor->count < COORDINATES_PER_TENSOR ? (int)tensor->count : COORDINATES_PER_TENSOR;
        int checked = 0, skipped = 0;
        double tensor_worst = 0.0;
        int64_t worst_index = -1;
        double worst_numeric = 0.0, worst_analytic = 0.0;
        for (int draw = 0; draw < MAX_DRAWS_PER_TENSOR && checked < target_count; draw++) {
            int64_t i = tensor->count <= COORDINATES_PER_TENSOR
                            ? draw
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
        int enough =
            tensor->count > COORDINATES_PER_TENSOR ? checked == target_count : 2 * checked >= target_count;
        od_test_record(enough && tensor_worst <= MAX_RELATIVE_ERROR, __FILE__, __LINE__, text);
        if (getenv("OD_GRADCHECK_VERBOSE") != NULL)
            fprintf(stderr, "%s\n", text);
        worst = fmax(worst, tensor_worst);
    }
    return worst;
}

/* The class-weighted BCE of loss.h with the mean over the count, in float64. */
static double bce_loss_f64(const float *logits, const float *targets, int64_t count)
{
    double sum = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double x = logits[i], t = targets[i];
        double w = t * OD_BCE_WEIGHT_ANOMALOUS + (1.0 - t) * OD_BCE_WEIGHT_NORMAL;
        sum += w * (fmax(x, 0.0) - x * t + log1p(exp(-fabs(x))));
    }
    return sum / (double)count;
}

/* The mean over rows of 1 - cosine similarity, in float64 (no norm here
 * comes near eps). */
static double cosine_loss_f64(const float *pred, const float *target, int64_t rows, int64_t channels)
{
    double sum = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        double dot = 0.0, pred_squares = 0.0, target_squares = 0.0;
        for (int64_t k = 0; k < channels; k++) {
            double p = pred[r * channels + k], t = target[r * channels + k];
            dot += p * t;
            pred_squares += p * p;
            target_squares += t * t;
        }
        sum += 1.0 - dot / (sqrt(pred_squares) * sqrt(target_squares));
    }
    return sum / (double)rows;
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
    od_layernorm_forward(s->normed, s->mean, s->rstd, s->h1, s->gamma, s->beta, MLP_ROWS, MLP_HIDDEN,
                         LAYER_EPS);
    od_gelu_forward(s->act, s->normed, MLP_ROWS * MLP_HIDDEN);
    od_linear_forward(s->logits, s->act, s->w2, s->b2, MLP_ROWS, MLP_HIDDEN, 1);
    *kinks = 0;
    return bce_loss_f64(s->logits, s->targets, MLP_ROWS);
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
    od_layernorm_backward(s->dh1, s->dgamma, s->dbeta, s->dnormed, s->h1, s->mean, s->rstd, s->gamma,
                          MLP_ROWS, MLP_HIDDEN);
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
        {"x", s.x, s.dx, MLP_ROWS * MLP_IN},
        {"linear1.weight", s.w1, s.dw1, MLP_HIDDEN * MLP_IN},
        {"linear1.bias", s.b1, s.db1, MLP_HIDDEN},
        {"layernorm.weight", s.gamma, s.dgamma, MLP_HIDDEN},
        {"layernorm.bias", s.beta, s.dbeta, MLP_HIDDEN},
        {"linear2.weight", s.w2, s.dw2, MLP_HIDDEN},
        {"linear2.bias", s.b2, s.db2, 1},
    };
    chain c = {"linear-layernorm-gelu-linear-bce",       mlp_loss, mlp_gradients, &s, tensors,
               (int)(sizeof tensors / sizeof tensors[0])};
    check_chain(&c, 5);
}

/* ---- conv3d -> batch norm -> ReLU -> trilinear sampling -> cosine ------- */

/* VOL_POINTS points per volume sample the 120 voxels, so that most voxels
 * (and so most input coordinates) get a gradient. */
enum { VOL_N = 2, VOL_D = 3, VOL_H = 4, VOL_W = 5, VOL_CIN = 3, VOL_COUT = 4, VOL_POINTS = 20 };
#define VOL_VOXELS (VOL_N * VOL_D * VOL_H * VOL_W)
#define VOL_SAMPLES (VOL_N * VOL_POINTS)
#define CONV_WEIGHTS (VOL_COUT * VOL_CIN * 27)
/* Sampling is linear between voxel centres but has a kink at each one, so
 * every point coordinate keeps this distance (in voxels, > STEP) from the
 * nearest centre. */
#define POINT_MARGIN 0.1f

typedef struct volume_state {
    od_conv3d *conv;
    float x[VOL_VOXELS * VOL_CIN], weight[CONV_WEIGHTS], bias[VOL_COUT];
    float gamma[VOL_COUT], beta[VOL_COUT];
    float points[VOL_SAMPLES * 3], target[VOL_SAMPLES * VOL_COUT];
    // activations
    float conv_out[VOL_VOXELS * VOL_COUT], normed[VOL_VOXELS * VOL_COUT], act[VOL_VOXELS * VOL_COUT];
    float mean[VOL_COUT], rstd[VOL_COUT], sampled[VOL_SAMPLES * VOL_COUT];
    // gradients
    float dx[VOL_VOXELS * VOL_CIN], dweight[CONV_WEIGHTS], dbias[VOL_COUT];
    float dgamma[VOL_COUT], dbeta[VOL_COUT], dpoints[VOL_SAMPLES * 3];
    float dconv_out[VOL_VOXELS * VOL_COUT], dnormed[VOL_VOXELS * VOL_COUT], dact[VOL_VOXELS * VOL_COUT];
    float dsampled[VOL_SAMPLES * VOL_COUT];
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
    OD_CHECK(od_trilinear_forward(s->sampled, s->act, s->points, VOL_N, VOL_D, VOL_H, VOL_W, VOL_COUT,
                                  VOL_POINTS, &err) == 0);
    return cosine_loss_f64(s->sampled, s->target, VOL_SAMPLES, VOL_COUT);
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
    memset(s->dpoints, 0, sizeof s->dpoints);
    memset(s->dsampled, 0, sizeof s->dsampled);
    uint64_t kinks;
    volume_loss(s, &kinks);

    od_error err;
    OD_CHECK(od_cosine_loss_backward(s->dsampled, s->sampled, s->target, NULL, VOL_SAMPLES, VOL_COUT,
                                     OD_COSINE_EPS, OD_LOSS_MEAN, 1.0f, &err) == 0);
    OD_CHECK(od_trilinear_backward(s->dact, s->dpoints, s->dsampled, s->act, s->points, VOL_N, VOL_D, VOL_H,
                                   VOL_W, VOL_COUT, VOL_POINTS, &err) == 0);
    od_relu_backward(s->dnormed, s->dact, s->act, VOL_VOXELS * VOL_COUT);
    od_batchnorm_backward(s->dconv_out, s->dgamma, s->dbeta, s->dnormed, s->conv_out, s->mean, s->rstd,
                          s->gamma, VOL_VOXELS, VOL_COUT);
    OD_CHECK(od_conv3d_backward(s->conv, s->dx, s->dweight, s->dbias, s->dconv_out, s->x, s->weight, &err) ==
             0);
}

static void conv_chain_with_sampling_matches_differences(void)
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
    fill(&rng, s.target, VOL_SAMPLES * VOL_COUT, 0.5f, 1.0f);
    // (x, y, z) along (W, H, D), each a voxel index plus a fraction away from the centres
    const int64_t extent[3] = {VOL_W, VOL_H, VOL_D};
    for (int64_t i = 0; i < VOL_SAMPLES * 3; i++) {
        float cell = (float)od_rng_below(&rng, (uint64_t)(extent[i % 3] - 1));
        s.points[i] = cell + POINT_MARGIN + (1.0f - 2.0f * POINT_MARGIN) * od_rng_uniform(&rng);
    }

    checked_tensor tensors[] = {
        {"x", s.x, s.dx, VOL_VOXELS * VOL_CIN},
        {"conv.weight", s.weight, s.dweight, CONV_WEIGHTS},
        {"conv.bias", s.bias, s.dbias, VOL_COUT},
        {"batchnorm.weight", s.gamma, s.dgamma, VOL_COUT},
        {"batchnorm.bias", s.beta, s.dbeta, VOL_COUT},
        {"points", s.points, s.dpoints, VOL_SAMPLES * 3},
    };
    chain c = {"conv3d-batchnorm-relu-trilinear-cosine", volume_loss, volume_gradients, &s, tensors,
               (int)(sizeof tensors / sizeof tensors[0])};
    check_chain(&c, 6);
    od_conv3d_free(s.conv);
}

int main(void)
{
    OD_RUN(mlp_with_bce_matches_differences);
    OD_RUN(conv_chain_with_sampling_matches_differences);
    return od_test_finish();
}
