/* The losses against PyTorch (scripts/refs/loss.py): values and gradients
 * for both reductions, accumulation and scale of the backward, saturated
 * logits, near-zero cosine norms, all-zero weights, bad arguments, and
 * losses that do not change with the thread count. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/loss.h"
#include "testlib.h"

/* Every loss and gradient is computed in float64 from the float32 inputs
 * and rounded to float32 once (twice for the accumulated gradient), as the
 * references are: a few float32 ulps apart at most. */
#define LOSS_ATOL 1e-7f
#define LOSS_RTOL 1e-6f
#define GRAD_ATOL 1e-9f
#define GRAD_RTOL 1e-6f
/* Scale of the second backward call, which must add 0.25 * gradient. */
#define SECOND_SCALE 0.25f

typedef enum loss_kind { LOSS_BCE, LOSS_MSE, LOSS_COSINE } loss_kind;

static const char *const REDUCTION_NAMES[2] = {"mean", "wmean"};

static int run_forward(loss_kind kind, float *loss, const od_tensor *pred, const od_tensor *target,
                       const float *row_weight, od_loss_reduction reduction, od_error *err)
{
    int64_t rows = pred->shape[0];
    int64_t channels = pred->ndim > 1 ? pred->shape[1] : 1;
    switch (kind) {
    case LOSS_BCE:
        return od_bce_with_logits_forward(loss, pred->data, target->data, rows, OD_BCE_WEIGHT_ANOMALOUS,
                                          OD_BCE_WEIGHT_NORMAL, reduction, err);
    case LOSS_MSE:
        return od_mse_loss_forward(loss, pred->data, target->data, row_weight, rows, channels, reduction,
                                   err);
    default:
        return od_cosine_loss_forward(loss, pred->data, target->data, row_weight, rows, channels,
                                      OD_COSINE_EPS, reduction, err);
    }
}

static int run_backward(loss_kind kind, float *grad, const od_tensor *pred, const od_tensor *target,
                        const float *row_weight, od_loss_reduction reduction, float scale, od_error *err)
{
    int64_t rows = pred->shape[0];
    int64_t channels = pred->ndim > 1 ? pred->shape[1] : 1;
    switch (kind) {
    case LOSS_BCE:
        return od_bce_with_logits_backward(grad, pred->data, target->data, rows, OD_BCE_WEIGHT_ANOMALOUS,
                                           OD_BCE_WEIGHT_NORMAL, reduction, scale, err);
    case LOSS_MSE:
        return od_mse_loss_backward(grad, pred->data, target->data, row_weight, rows, channels, reduction,
                                    scale, err);
    default:
        return od_cosine_loss_backward(grad, pred->data, target->data, row_weight, rows, channels,
                                       OD_COSINE_EPS, reduction, scale, err);
    }
}

/* Compares one reference file: both reductions, forward and backward. */
static void check_reference(const char *file, loss_kind kind)
{
    od_safetensors *reference = od_test_load_reference(file);
    if (reference == NULL)
        return;
    const char *pred_name = kind == LOSS_BCE ? "logits" : "pred";
    const char *target_name = kind == LOSS_BCE ? "targets" : "target";
    od_tensor *pred = od_test_tensor(reference, pred_name);
    od_tensor *target = od_test_tensor(reference, target_name);
    od_tensor *row_weight = NULL;
    if (od_safetensors_find(reference, "row_weight") != NULL)
        row_weight = od_test_tensor(reference, "row_weight");
    if (pred == NULL || target == NULL) {
        od_tensor_free(pred);
        od_tensor_free(target);
        od_safetensors_free(reference);
        return;
    }
    int64_t count = od_tensor_numel(pred);
    float *grad = od_alloc_floats(count);
    float *scaled = od_alloc_floats(count);

    for (int r = 0; r < 2; r++) {
        char name[128];
        snprintf(name, sizeof name, "loss_%s", REDUCTION_NAMES[r]);
        od_tensor *want_loss = od_test_tensor(reference, name);
        snprintf(name, sizeof name, "grad_%s", REDUCTION_NAMES[r]);
        od_tensor *want_grad = od_test_tensor(reference, name);
        if (want_loss == NULL || want_grad == NULL) {
            od_tensor_free(want_loss);
            od_tensor_free(want_grad);
            continue;
        }
        od_error err;
        od_loss_reduction reduction = r == 0 ? OD_LOSS_MEAN : OD_LOSS_WEIGHTED_MEAN;
        const float *weights = row_weight != NULL ? row_weight->data : NULL;
        float loss = NAN;
        OD_CHECK(run_forward(kind, &loss, pred, target, weights, reduction, &err) == 0);
        snprintf(name, sizeof name, "%s loss %s", file, REDUCTION_NAMES[r]);
        OD_CHECK_CLOSE(name, &loss, want_loss->data, 1, LOSS_ATOL, LOSS_RTOL);

        memset(grad, 0, (size_t)count * sizeof *grad);
        OD_CHECK(run_backward(kind, grad, pred, target, weights, reduction, 1.0f, &err) == 0);
        snprintf(name, sizeof name, "%s grad %s", file, REDUCTION_NAMES[r]);
        OD_CHECK_CLOSE(name, grad, want_grad->data, count, GRAD_ATOL, GRAD_RTOL);

        // a second call adds SECOND_SCALE times the gradient on top
        OD_CHECK(run_backward(kind, grad, pred, target, weights, reduction, SECOND_SCALE, &err) == 0);
        for (int64_t i = 0; i < count; i++)
            scaled[i] = (1.0f + SECOND_SCALE) * want_grad->data[i];
        snprintf(name, sizeof name, "%s accumulated grad %s", file, REDUCTION_NAMES[r]);
        OD_CHECK_CLOSE(name, grad, scaled, count, GRAD_ATOL, GRAD_RTOL);

        od_tensor_free(want_loss);
        od_tensor_free(want_grad);
    }
    od_free(grad);
    od_free(scaled);
    od_tensor_free(pred);
    od_tensor_free(target);
    od_tensor_free(row_weight);
    od_safetensors_free(reference);
}

static void bce_matches_torch(void)
{
    check_reference("loss_bce", LOSS_BCE);
    check_reference("loss_bce_soft", LOSS_BCE);
}

static void mse_matches_torch(void)
{
    check_reference("loss_mse_rgb", LOSS_MSE);
    check_reference("loss_mse_mask", LOSS_MSE);
    check_reference("loss_mse_plain", LOSS_MSE);
}

static void cosine_matches_torch(void)
{
    check_reference("loss_cosine", LOSS_COSINE);
    check_reference("loss_cosine_c1", LOSS_COSINE);
    check_reference("loss_cosine_c384", LOSS_COSINE);
    check_reference("loss_cosine_c45", LOSS_COSINE);
}

/* Logits far beyond +-100 give finite losses and gradients in [-w, w]. */
static void bce_saturated_logits_finite(void)
{
    const float logits[4] = {1e4f, -1e4f, 1e4f, -1e4f};
    const float targets[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    float loss = NAN;
    od_error err;
    OD_CHECK(od_bce_with_logits_forward(&loss, logits, targets, 4, 0.7f, 0.3f, OD_LOSS_MEAN, &err) == 0);
    // the two wrong ones cost 0.3 * 1e4 and 0.7 * 1e4, the right ones 0
    const float want_loss = (0.3f * 1e4f + 0.7f * 1e4f) / 4.0f;
    OD_CHECK_CLOSE("saturated loss", &loss, &want_loss, 1, 0.0f, 1e-6f);
    float grad[4] = {0};
    OD_CHECK(od_bce_with_logits_backward(grad, logits, targets, 4, 0.7f, 0.3f, OD_LOSS_MEAN, 1.0f, &err) ==
             0);
    const float want_grad[4] = {0.0f, 0.0f, 0.3f / 4.0f, -0.7f / 4.0f};
    OD_CHECK_CLOSE("saturated grad", grad, want_grad, 4, 1e-9f, 1e-6f);
}

/* A weighted mean over nothing (e.g. a view without object pixels) is 0
 * and leaves the gradient untouched. */
static void zero_weights_give_zero_loss(void)
{
    const float pred[6] = {1, 2, 3, 4, 5, 6};
    const float target[6] = {0, 0, 0, 0, 0, 1};
    const float weight[3] = {0, 0, 0};
    float grad[6] = {9, 9, 9, 9, 9, 9};
    const float unchanged[6] = {9, 9, 9, 9, 9, 9};
    od_error err;
    float loss = NAN;
    OD_CHECK(od_mse_loss_forward(&loss, pred, target, weight, 3, 2, OD_LOSS_WEIGHTED_MEAN, &err) == 0);
    OD_CHECK(loss == 0.0f);
    OD_CHECK(od_mse_loss_backward(grad, pred, target, weight, 3, 2, OD_LOSS_WEIGHTED_MEAN, 1.0f, &err) == 0);
    loss = NAN;
    OD_CHECK(od_cosine_loss_forward(&loss, pred, target, weight, 3, 2, OD_COSINE_EPS, OD_LOSS_WEIGHTED_MEAN,
                                    &err) == 0);
    OD_CHECK(loss == 0.0f);
    OD_CHECK(od_cosine_loss_backward(grad, pred, target, weight, 3, 2, OD_COSINE_EPS, OD_LOSS_WEIGHTED_MEAN,
                                     1.0f, &err) == 0);
    OD_CHECK_IDENTICAL("gradient untouched", grad, unchanged, 6);

    // with class weights of 0 for both classes the BCE weighted mean is 0 too
    loss = NAN;
    OD_CHECK(od_bce_with_logits_forward(&loss, pred, target, 6, 0.0f, 0.0f, OD_LOSS_WEIGHTED_MEAN, &err) ==
             0);
    OD_CHECK(loss == 0.0f);
}

/* A NULL gradient buffer means "not needed": the call succeeds and does nothing. */
static void null_gradient_skipped(void)
{
    const float pred[2] = {1, 2}, target[2] = {0, 1};
    od_error err;
    OD_CHECK(od_mse_loss_backward(NULL, pred, target, NULL, 1, 2, OD_LOSS_MEAN, 1.0f, &err) == 0);
    OD_CHECK(od_cosine_loss_backward(NULL, pred, target, NULL, 1, 2, OD_COSINE_EPS, OD_LOSS_MEAN, 1.0f,
                                     &err) == 0);
    OD_CHECK(od_bce_with_logits_backward(NULL, pred, target, 2, 0.7f, 0.3f, OD_LOSS_MEAN, 1.0f, &err) == 0);
}

static void bad_arguments_rejected(void)
{
    const float pred[4] = {1, 2, 3, 4}, target[4] = {0, 1, 0, 1};
    float grad[4] = {0};
    float loss;
    od_error err;

    OD_CHECK(od_mse_loss_forward(&loss, pred, target, NULL, 0, 4, OD_LOSS_MEAN, &err) == -1);
    OD_CHECK(strstr(err.message, "mse_loss: rows and channels must be positive, got rows 0") != NULL);
    OD_CHECK(od_mse_loss_backward(grad, pred, target, NULL, 2, -1, OD_LOSS_MEAN, 1.0f, &err) == -1);
    OD_CHECK(strstr(err.message, "channels -1") != NULL);
    OD_CHECK(od_mse_loss_forward(&loss, NULL, target, NULL, 1, 4, OD_LOSS_MEAN, &err) == -1);
    OD_CHECK(strstr(err.message, "must not be NULL") != NULL);
    OD_CHECK(od_mse_loss_forward(&loss, pred, target, NULL, INT64_MAX / 2, 4, OD_LOSS_MEAN, &err) == -1);
    OD_CHECK(strstr(err.message, "overflows") != NULL);
    OD_CHECK(od_mse_loss_forward(&loss, pred, target, NULL, 1, 4, (od_loss_reduction)7, &err) == -1);
    OD_CHECK(strstr(err.message, "unknown reduction 7") != NULL);

    OD_CHECK(od_cosine_loss_forward(&loss, pred, target, NULL, 2, 2, -1.0f, OD_LOSS_MEAN, &err) == -1);
    OD_CHECK(strstr(err.message, "cosine_loss: eps must be finite and >= 0, got -1") != NULL);
    OD_CHECK(od_cosine_loss_backward(grad, pred, target, NULL, 2, 2, NAN, OD_LOSS_MEAN, 1.0f, &err) == -1);
    OD_CHECK(strstr(err.message, "eps") != NULL);
    OD_CHECK(od_cosine_loss_forward(NULL, pred, target, NULL, 2, 2, OD_COSINE_EPS, OD_LOSS_MEAN, &err) == -1);
    OD_CHECK(strstr(err.message, "loss must not be NULL") != NULL);

    OD_CHECK(od_bce_with_logits_forward(&loss, pred, target, 4, -0.7f, 0.3f, OD_LOSS_MEAN, &err) == -1);
    OD_CHECK(strstr(err.message, "class weights must be finite and >= 0, got anomalous -0.7") != NULL);
    OD_CHECK(od_bce_with_logits_backward(grad, pred, target, 4, 0.7f, INFINITY, OD_LOSS_MEAN, 1.0f, &err) ==
             -1);
    OD_CHECK(strstr(err.message, "normal inf") != NULL);
    OD_CHECK(od_bce_with_logits_forward(&loss, pred, target, -3, 0.7f, 0.3f, OD_LOSS_MEAN, &err) == -1);
    OD_CHECK(strstr(err.message, "rows -3") != NULL);
    OD_CHECK(od_bce_with_logits_forward(&loss, pred, NULL, 4, 0.7f, 0.3f, OD_LOSS_MEAN, &err) == -1);
    OD_CHECK(strstr(err.message, "logits and targets must not be NULL") != NULL);

    const float zeros[4] = {0};
    OD_CHECK_IDENTICAL("no gradient written on error", grad, zeros, 4);
}

/* The losses are summed in blocks fixed by the sizes, so 1 and 2 threads
 * give the same bits; the gradients are elementwise. */
static void losses_identical_across_threads(void)
{
    const int64_t rows = 5 * 32 * 32, channels = 64;
    const int64_t count = rows * channels;
    float *pred = od_alloc_floats(count);
    float *target = od_alloc_floats(count);
    float *weight = od_alloc_floats(rows);
    float *grad[2] = {od_alloc_floats(count), od_alloc_floats(count)};
    od_rng rng;
    od_rng_seed(&rng, 7);
    od_rng_fill_normal(&rng, pred, count, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, target, count, 0.0f, 1.0f);
    od_rng_fill_uniform(&rng, weight, rows, 0.0f, 1.0f);

    int saved_threads = od_get_num_threads();
    float losses[2][3];
    od_error err;
    for (int run = 0; run < 2; run++) {
        od_set_num_threads(run + 1);
        OD_CHECK(od_cosine_loss_forward(&losses[run][0], pred, target, weight, rows, channels, OD_COSINE_EPS,
                                        OD_LOSS_WEIGHTED_MEAN, &err) == 0);
        OD_CHECK(od_mse_loss_forward(&losses[run][1], pred, target, weight, rows, channels,
                                     OD_LOSS_WEIGHTED_MEAN, &err) == 0);
        OD_CHECK(od_bce_with_logits_forward(&losses[run][2], pred, weight, rows, 0.7f, 0.3f, OD_LOSS_MEAN,
                                            &err) == 0);
        OD_CHECK(od_cosine_loss_backward(grad[run], pred, target, weight, rows, channels, OD_COSINE_EPS,
                                         OD_LOSS_WEIGHTED_MEAN, 1.0f, &err) == 0);
        OD_CHECK(od_mse_loss_backward(grad[run], pred, target, weight, rows, channels, OD_LOSS_WEIGHTED_MEAN,
                                      0.5f, &err) == 0);
    }
    od_set_num_threads(saved_threads);
    OD_CHECK_IDENTICAL("losses", losses[0], losses[1], 3);
    OD_CHECK_IDENTICAL("gradients", grad[0], grad[1], count);
    OD_CHECK(losses[0][0] > 0.9f && losses[0][0] < 1.1f); // random directions: cos near 0

    od_free(pred);
    od_free(target);
    od_free(weight);
    od_free(grad[0]);
    od_free(grad[1]);
}

/* The fused call runs the same kernel over the same blocks as the
 * separate calls, so it must give the same bits. */
static void fused_call_matches_separate_calls(void)
{
    const int64_t rows = 3001, channels = 3; // several summation blocks, odd sizes
    const int64_t count = rows * channels;
    float *pred = od_alloc_floats(count), *target = od_alloc_floats(count), *weight = od_alloc_floats(rows);
    float *separate = od_alloc_floats(count), *fused = od_alloc_floats(count);
    od_rng rng;
    od_rng_seed(&rng, 11);
    od_rng_fill_normal(&rng, pred, count, 0.0f, 2.0f);
    od_rng_fill_uniform(&rng, target, count, 0.0f, 1.0f);
    od_rng_fill_uniform(&rng, weight, rows, 0.0f, 1.0f);
    od_error err;

    for (int kind = 0; kind < 3; kind++) {
        for (int r = 0; r < 2; r++) {
            od_loss_reduction reduction = r == 0 ? OD_LOSS_MEAN : OD_LOSS_WEIGHTED_MEAN;
            float loss_separate = NAN, loss_fused = NAN, loss_only = NAN;
            memset(separate, 0, (size_t)count * sizeof(float));
            memset(fused, 0, (size_t)count * sizeof(float));
            int status = 0;
            if (kind == LOSS_BCE) {
                status |= od_bce_with_logits_forward(&loss_separate, pred, target, count, 0.7f, 0.3f,
                                                     reduction, &err);
                status |= od_bce_with_logits_backward(separate, pred, target, count, 0.7f, 0.3f, reduction,
                                                      0.1f, &err);
                status |= od_bce_with_logits_forward_backward(&loss_fused, fused, pred, target, count, 0.7f,
                                                              0.3f, reduction, 0.1f, &err);
                status |= od_bce_with_logits_forward_backward(&loss_only, NULL, pred, target, count, 0.7f,
                                                              0.3f, reduction, 0.1f, &err);
            } else if (kind == LOSS_MSE) {
                status |= od_mse_loss_forward(&loss_separate, pred, target, weight, rows, channels, reduction,
                                              &err);
                status |= od_mse_loss_backward(separate, pred, target, weight, rows, channels, reduction,
                                               0.1f, &err);
                status |= od_mse_loss_forward_backward(&loss_fused, fused, pred, target, weight, rows,
                                                       channels, reduction, 0.1f, &err);
                status |= od_mse_loss_forward_backward(&loss_only, NULL, pred, target, weight, rows, channels,
                                                       reduction, 0.1f, &err);
            } else {
                status |= od_cosine_loss_forward(&loss_separate, pred, target, weight, rows, channels,
                                                 OD_COSINE_EPS, reduction, &err);
                status |= od_cosine_loss_backward(separate, pred, target, weight, rows, channels,
                                                  OD_COSINE_EPS, reduction, 0.1f, &err);
                status |= od_cosine_loss_forward_backward(&loss_fused, fused, pred, target, weight, rows,
                                                          channels, OD_COSINE_EPS, reduction, 0.1f, &err);
                status |= od_cosine_loss_forward_backward(&loss_only, NULL, pred, target, weight, rows,
                                                          channels, OD_COSINE_EPS, reduction, 0.1f, &err);
            }
            OD_CHECK(status == 0);
            OD_CHECK(loss_separate == loss_fused);
            OD_CHECK(loss_only == loss_fused);
            OD_CHECK(loss_fused > 0.0f);
            OD_CHECK_IDENTICAL("fused gradient", fused, separate, count);
        }
    }
    od_free(pred);
    od_free(target);
    od_free(weight);
    od_free(separate);
    od_free(fused);
}

int main(void)
{
    OD_RUN(bce_matches_torch);
    OD_RUN(mse_matches_torch);
    OD_RUN(cosine_matches_torch);
    OD_RUN(bce_saturated_logits_finite);
    OD_RUN(zero_weights_give_zero_loss);
    OD_RUN(null_gradient_skipped);
    OD_RUN(bad_arguments_rejected);
    OD_RUN(losses_identical_across_threads);
    OD_RUN(fused_call_matches_separate_calls);
    return od_test_finish();
}
