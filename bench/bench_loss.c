/* Losses (fused forward + backward) and one Adam step at the product's sizes.
 * The feature loss runs over 5 views of 32 x 32 rendered rows with 64 or
 * 384 channels, and the colour loss over 5 views of 128 x 128 x 3 (plain,
 * and weighted by a per-pixel mask). The classifier's BCE has 64 logits.
 * Adam and clipping run over 2M parameters in 22 tensors of 1 to 2^20
 * floats. bench/torch_loss.py prints the same names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/mem.h"
#include "core/rng.h"
#include "nn/loss.h"
#include "nn/optim.h"

#define VIEWS 5
#define FEATURE_PIXELS (VIEWS * 32 * 32)
#define COLOUR_PIXELS (VIEWS * 128 * 128)
#define LOGITS 64
/* One BCE call takes well under a microsecond, so a timed body runs it
 * this many times. */
#define BCE_CALLS_PER_BODY 100
/* 2^0 + ... + 2^20 + 1 = 2^21 parameters. */
#define ADAM_TENSORS 22

typedef struct loss_case {
    int64_t rows, channels;
    float *pred, *target, *row_weight, *grad;
} loss_case;

static void fail(const char *what, const od_error *err)
{
    fprintf(stderr, "bench_loss: %s failed: %s\n", what, err->message);
    exit(1);
}

static loss_case case_new(int64_t rows, int64_t channels, od_rng *rng)
{
    loss_case c = {.rows = rows, .channels = channels};
    c.pred = od_alloc_floats(rows * channels);
    c.target = od_alloc_floats(rows * channels);
    c.row_weight = od_alloc_floats(rows);
    c.grad = od_alloc_floats(rows * channels);
    if (c.pred == NULL || c.target == NULL || c.row_weight == NULL || c.grad == NULL) {
        fprintf(stderr, "bench_loss: out of memory\n");
        exit(1);
    }
    od_rng_fill_normal(rng, c.pred, rows * channels, 0.0f, 1.0f);
    od_rng_fill_normal(rng, c.target, rows * channels, 0.0f, 1.0f);
    for (int64_t r = 0; r < rows; r++)
        c.row_weight[r] = od_rng_uniform(rng) < 0.3f ? 1.0f : 0.1f; // object pixels weigh more
    return c;
}

static void case_free(loss_case *c)
{
    od_free(c->pred);
    od_free(c->target);
    od_free(c->row_weight);
    od_free(c->grad);
}

static float sink; // keeps the loss values alive

static void run_cosine(void *context)
{
    loss_case *c = context;
    od_error err;
    float loss;
    if (od_cosine_loss_forward_backward(&loss, c->grad, c->pred, c->target, NULL, c->rows, c->channels,
                                        OD_COSINE_EPS, OD_LOSS_MEAN, 1.0f, &err) != 0)
        fail("cosine loss", &err);
    sink += loss;
}

static void run_mse(void *context)
{
    loss_case *c = context;
    od_error err;
    float loss;
    if (od_mse_loss_forward_backward(&loss, c->grad, c->pred, c->target, NULL, c->rows, c->channels,
                                     OD_LOSS_MEAN, 1.0f, &err) != 0)
        fail("mse loss", &err);
    sink += loss;
}

static void run_mse_weighted(void *context)
{
    loss_case *c = context;
    od_error err;
    float loss;
    if (od_mse_loss_forward_backward(&loss, c->grad, c->pred, c->target, c->row_weight, c->rows, c->channels,
                                     OD_LOSS_MEAN, 1.0f, &err) != 0)
        fail("weighted mse loss", &err);
    sink += loss;
}

static void run_bce(void *context)
{
    loss_case *c = context;
    od_error err;
    float loss;
    for (int call = 0; call < BCE_CALLS_PER_BODY; call++) {
        if (od_bce_with_logits_forward_backward(&loss, c->grad, c->pred, c->target, c->rows,
                                                OD_BCE_WEIGHT_ANOMALOUS, OD_BCE_WEIGHT_NORMAL, OD_LOSS_MEAN,
                                                1.0f, &err) != 0)
            fail("bce loss", &err);
        sink += loss;
    }
}

static void run_adam(void *context)
{
    od_adam *adam = context;
    od_adam_step(adam);
}

static void run_clip(void *context)
{
    od_adam *adam = context;
    od_error err;
    float norm;
    // a max_norm above the norm measures the reduction without rescaling every step
    if (od_adam_clip_grad_norm(adam, 1e9, &norm, &err) != 0)
        fail("clip_grad_norm", &err);
    sink += norm;
}

static void bench_adam(od_rng *rng)
{
    od_error err;
    od_adam *adam = od_adam_new(&err);
    od_adam_group_config backbone = od_adam_group_defaults(OD_ADAM_LR_BACKBONE);
    od_adam_group_config matcher = od_adam_group_defaults(OD_ADAM_LR_MATCHER);
    if (adam == NULL || od_adam_add_group(adam, &backbone, &err) < 0 ||
        od_adam_add_group(adam, &matcher, &err) < 0)
        fail("adam setup", &err);
    float *values[ADAM_TENSORS], *grads[ADAM_TENSORS];
    int64_t total = 0;
    for (int t = 0; t < ADAM_TENSORS; t++) {
        int64_t count = t < ADAM_TENSORS - 1 ? (int64_t)1 << (20 - t) : 1;
        values[t] = od_alloc_floats(count);
        grads[t] = od_alloc_floats(count);
        od_rng_fill_normal(rng, values[t], count, 0.0f, 1.0f);
        od_rng_fill_normal(rng, grads[t], count, 0.0f, 1e-3f);
        char name[32];
        snprintf(name, sizeof name, "p%d", t);
        if (od_adam_add_param(adam, t % 2, name, values[t], grads[t], 1, &count, &err) != 0)
            fail("adam setup", &err);
        total += count;
    }
    // per element: about 12 flops (decay, two moments, sqrt, divide, update)
    bench_report("adam_step_2M", bench_median_ms(run_adam, adam, 3, 21), 12.0 * (double)total);
    bench_report("clip_grad_norm_2M", bench_median_ms(run_clip, adam, 3, 21), 2.0 * (double)total);
    od_adam_free(adam);
    for (int t = 0; t < ADAM_TENSORS; t++) {
        od_free(values[t]);
        od_free(grads[t]);
    }
}

int main(void)
{
    od_rng rng;
    od_rng_seed(&rng, 1);

    loss_case cosine64 = case_new(FEATURE_PIXELS, 64, &rng);
    bench_report("loss_cosine_5120x64", bench_median_ms(run_cosine, &cosine64, 5, 31), 0);
    case_free(&cosine64);
    loss_case cosine384 = case_new(FEATURE_PIXELS, 384, &rng);
    bench_report("loss_cosine_5120x384", bench_median_ms(run_cosine, &cosine384, 5, 31), 0);
    case_free(&cosine384);

    loss_case colour = case_new(COLOUR_PIXELS, 3, &rng);
    bench_report("loss_mse_5x128x128x3", bench_median_ms(run_mse, &colour, 5, 31), 0);
    bench_report("loss_mse_weighted_5x128x128x3", bench_median_ms(run_mse_weighted, &colour, 5, 31), 0);
    case_free(&colour);

    loss_case logits = case_new(LOGITS, 1, &rng);
    for (int64_t i = 0; i < LOGITS; i++)
        logits.target[i] = logits.target[i] > 0.5f ? 1.0f : 0.0f;
    bench_report("loss_bce_64", bench_median_ms(run_bce, &logits, 10, 31) / BCE_CALLS_PER_BODY, 0);
    case_free(&logits);

    bench_adam(&rng);
    if (sink == 12345.0f)
        printf("#\n");
    return 0;
}
