/* Training losses: weighted BCE with logits, MSE and 1 - cosine similarity.
 * See loss.h for the formulas and the reductions.
 *
 * Each loss has one block kernel that returns the block's weighted loss
 * sum and, when given a gradient buffer, adds the block's gradient. The
 * forward, the backward and the fused call all run that kernel over the
 * same blocks, so they agree bit for bit. */
#include "nn/loss.h"

#include <math.h>
#include <stdint.h>

/* Sums are split into at most this many blocks, each summed in float64 by
 * one thread and then added in block order. The split depends only on the
 * sizes, never on the thread count. */
#define LOSS_MAX_BLOCKS 256
/* Fewer elements than this per block would cost more in thread start-up
 * than they save. */
#define LOSS_MIN_BLOCK_ELEMENTS 8192

typedef struct row_blocks {
    int64_t rows_per_block;
    int count;
} row_blocks;

static row_blocks split_rows(int64_t rows, int64_t elements_per_row)
{
    int64_t min_rows = (LOSS_MIN_BLOCK_ELEMENTS + elements_per_row - 1) / elements_per_row;
    int64_t even_rows = (rows + LOSS_MAX_BLOCKS - 1) / LOSS_MAX_BLOCKS;
    int64_t per_block = min_rows > even_rows ? min_rows : even_rows;
    if (per_block < 1)
        per_block = 1;
    row_blocks blocks = {per_block, (int)((rows + per_block - 1) / per_block)};
    return blocks;
}

/* A kernel over rows [begin, end) that returns their loss sum and adds
 * their gradient when the context has a gradient buffer. */
typedef double (*block_kernel)(const void *context, int64_t begin, int64_t end);

/* Runs `kernel` over fixed blocks of `rows` and returns the sum of the
 * block sums, added in block order. */
static double sum_over_blocks(block_kernel kernel, const void *context, int64_t rows,
                              int64_t elements_per_row)
{
    row_blocks blocks = split_rows(rows, elements_per_row);
    double partial[LOSS_MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (blocks.count > 1)
    for (int b = 0; b < blocks.count; b++) {
        int64_t begin = (int64_t)b * blocks.rows_per_block;
        int64_t end = begin + blocks.rows_per_block < rows ? begin + blocks.rows_per_block : rows;
        partial[b] = kernel(context, begin, end);
    }
    double total = 0.0;
    for (int b = 0; b < blocks.count; b++)
        total += partial[b];
    return total;
}

static int check_sizes(const char *loss, int64_t rows, int64_t channels, od_loss_reduction reduction,
                       od_error *err)
{
    if (rows <= 0 || channels <= 0)
        return od_fail(err, "%s: rows and channels must be positive, got rows %lld channels %lld", loss,
                       (long long)rows, (long long)channels);
    if (rows > INT64_MAX / channels)
        return od_fail(err, "%s: rows %lld times channels %lld overflows int64", loss, (long long)rows,
                       (long long)channels);
    if (reduction != OD_LOSS_MEAN && reduction != OD_LOSS_WEIGHTED_MEAN)
        return od_fail(err, "%s: unknown reduction %d (expected OD_LOSS_MEAN or OD_LOSS_WEIGHTED_MEAN)", loss,
                       (int)reduction);
    return 0;
}

static double row_weight_block(const void *context, int64_t begin, int64_t end)
{
    const float *row_weight = context;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t r = begin; r < end; r++)
        sum += (double)row_weight[r];
    return sum;
}

/* Returns the divisor of the weighted loss sum: the number of terms, or
 * for the weighted mean terms_per_row * sum of row weights (0 when every
 * weight is 0). */
static double mean_denominator(const float *row_weight, int64_t rows, int64_t terms_per_row,
                               od_loss_reduction reduction)
{
    if (reduction == OD_LOSS_WEIGHTED_MEAN && row_weight != NULL)
        return sum_over_blocks(row_weight_block, row_weight, rows, 1) * (double)terms_per_row;
    return (double)rows * (double)terms_per_row;
}

/* ---- binary cross-entropy with logits ---------------------------------- */

typedef struct bce_context {
    const float *logits;
    const float *targets;
    float weight_anomalous;
    float weight_normal;
    float *dlogits;        /* NULL: loss only */
    double factor;         /* scale / denominator, for the gradient */
    int sum_class_weights; /* 1: the kernel returns sum of w_i instead of the loss */
} bce_context;

static inline double bce_weight(float target, float weight_anomalous, float weight_normal)
{
    return (double)target * weight_anomalous + (1.0 - (double)target) * weight_normal;
}

static double bce_block(const void *context, int64_t begin, int64_t end)
{
    const bce_context *c = context;
    double sum = 0.0;
    for (int64_t i = begin; i < end; i++) {
        double x = c->logits[i], t = c->targets[i];
        double w = bce_weight(c->targets[i], c->weight_anomalous, c->weight_normal);
        if (c->sum_class_weights) {
            sum += w;
            continue;
        }
        // exp(-|x|) <= 1, so neither the loss nor the sigmoid overflows
        double e = exp(-fabs(x));
        sum += w * (fmax(x, 0.0) - x * t + log1p(e));
        if (c->dlogits != NULL) {
            double sigmoid = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            c->dlogits[i] += (float)(c->factor * w * (sigmoid - t));
        }
    }
    return sum;
}

static int check_bce(const float *logits, const float *targets, int64_t count, float weight_anomalous,
                     float weight_normal, od_loss_reduction reduction, od_error *err)
{
    if (check_sizes("bce_with_logits", count, 1, reduction, err) != 0)
        return -1;
    if (logits == NULL || targets == NULL)
        return od_fail(err, "bce_with_logits: logits and targets must not be NULL");
    if (!(weight_anomalous >= 0.0f) || !(weight_normal >= 0.0f) || isinf(weight_anomalous) ||
        isinf(weight_normal))
        return od_fail(err,
                       "bce_with_logits: class weights must be finite and >= 0, got anomalous %g normal %g",
                       (double)weight_anomalous, (double)weight_normal);
    return 0;
}

int od_bce_with_logits_forward_backward(float *loss, float *dlogits, const float *logits,
                                        const float *targets, int64_t count, float weight_anomalous,
                                        float weight_normal, od_loss_reduction reduction, float scale,
                                        od_error *err)
{
    // logits, targets and dlogits are (count,); loss is a scalar
    if (check_bce(logits, targets, count, weight_anomalous, weight_normal, reduction, err) != 0)
        return -1;

    bce_context context = {
        .logits = logits,
        .targets = targets,
        .weight_anomalous = weight_anomalous,
        .weight_normal = weight_normal,
    };
    double denominator = (double)count;
    if (reduction == OD_LOSS_WEIGHTED_MEAN) {
        context.sum_class_weights = 1;
        denominator = sum_over_blocks(bce_block, &context, count, 1);
        context.sum_class_weights = 0;
    }
    if (denominator <= 0.0) {
        if (loss != NULL)
            *loss = 0.0f;
        return 0;
    }

    context.dlogits = dlogits;
    context.factor = (double)scale / denominator;
    double loss_sum = sum_over_blocks(bce_block, &context, count, 1);
    if (loss != NULL)
        *loss = (float)(loss_sum / denominator);
    return 0;
}

int od_bce_with_logits_forward(float *loss, const float *logits, const float *targets, int64_t count,
                               float weight_anomalous, float weight_normal, od_loss_reduction reduction,
                               od_error *err)
{
    if (loss == NULL)
        return od_fail(err, "bce_with_logits: loss must not be NULL");
    return od_bce_with_logits_forward_backward(loss, NULL, logits, targets, count, weight_anomalous,
                                               weight_normal, reduction, 0.0f, err);
}

int od_bce_with_logits_backward(float *dlogits, const float *logits, const float *targets, int64_t count,
                                float weight_anomalous, float weight_normal, od_loss_reduction reduction,
                                float scale, od_error *err)
{
    if (check_bce(logits, targets, count, weight_anomalous, weight_normal, reduction, err) != 0)
        return -1;
    if (dlogits == NULL)
        return 0;
    return od_bce_with_logits_forward_backward(NULL, dlogits, logits, targets, count, weight_anomalous,
                                               weight_normal, reduction, scale, err);
}

/* ---- mean squared error ------------------------------------------------- */

typedef struct mse_context {
    const float *pred;
    const float *target;
    const float *row_weight; /* NULL: every row weighs 1 */
    float *dpred;            /* NULL: loss only */
    int64_t channels;
    float factor; /* 2 * scale / denominator, for the gradient */
} mse_context;

/* Rows [begin, end) with row weights. Inlined with channels = 3 (colour)
 * so that the compiler unrolls the channel loop. */
static inline __attribute__((always_inline)) double mse_weighted_rows(const mse_context *c, int64_t begin,
                                                                      int64_t end, int64_t channels)
{
    double sum = 0.0;
    for (int64_t r = begin; r < end; r++) {
        const float *p = c->pred + r * channels, *t = c->target + r * channels;
        double row = 0.0;
        for (int64_t k = 0; k < channels; k++) {
            double d = (double)p[k] - (double)t[k];
            row += d * d;
        }
        sum += (double)c->row_weight[r] * row;
        if (c->dpred != NULL) {
            const float row_factor = c->factor * c->row_weight[r];
            float *dp = c->dpred + r * channels;
            for (int64_t k = 0; k < channels; k++)
                dp[k] += row_factor * (p[k] - t[k]);
        }
    }
    return sum;
}

static double mse_block(const void *context, int64_t begin, int64_t end)
{
    const mse_context *c = context;
    if (c->row_weight != NULL && c->channels == 3)
        return mse_weighted_rows(c, begin, end, 3);
    if (c->row_weight != NULL && c->channels != 1)
        return mse_weighted_rows(c, begin, end, c->channels);

    // one flat run of elements, weighted elementwise when channels is 1
    const int64_t first = begin * c->channels, last = end * c->channels;
    const float *restrict p = c->pred, *restrict t = c->target, *restrict w = c->row_weight;
    float *restrict dp = c->dpred;
    const float factor = c->factor;
    double sum = 0.0;
    if (w == NULL && dp == NULL) {
#pragma omp simd reduction(+ : sum)
        for (int64_t i = first; i < last; i++) {
            double d = (double)p[i] - (double)t[i];
            sum += d * d;
        }
    } else if (w == NULL) {
#pragma omp simd reduction(+ : sum)
        for (int64_t i = first; i < last; i++) {
            double d = (double)p[i] - (double)t[i];
            sum += d * d;
            dp[i] += factor * (p[i] - t[i]);
        }
    } else if (dp == NULL) {
#pragma omp simd reduction(+ : sum)
        for (int64_t i = first; i < last; i++) {
            double d = (double)p[i] - (double)t[i];
            sum += (double)w[i] * (d * d);
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t i = first; i < last; i++) {
            double d = (double)p[i] - (double)t[i];
            sum += (double)w[i] * (d * d);
            dp[i] += (factor * w[i]) * (p[i] - t[i]);
        }
    }
    return sum;
}

static int check_pair(const char *loss, const float *pred, const float *target, int64_t rows,
                      int64_t channels, od_loss_reduction reduction, od_error *err)
{
    if (check_sizes(loss, rows, channels, reduction, err) != 0)
        return -1;
    if (pred == NULL || target == NULL)
        return od_fail(err, "%s: pred and target must not be NULL", loss);
    return 0;
}

int od_mse_loss_forward_backward(float *loss, float *dpred, const float *pred, const float *target,
                                 const float *row_weight, int64_t rows, int64_t channels,
                                 od_loss_reduction reduction, float scale, od_error *err)
{
    // pred, target and dpred are (rows, channels), row_weight is (rows,) or NULL; loss is a scalar
    if (check_pair("mse_loss", pred, target, rows, channels, reduction, err) != 0)
        return -1;

    double denominator = mean_denominator(row_weight, rows, channels, reduction);
    if (denominator <= 0.0) {
        if (loss != NULL)
            *loss = 0.0f;
        return 0;
    }
    mse_context context = {
        .pred = pred,
        .target = target,
        .row_weight = row_weight,
        .dpred = dpred,
        .channels = channels,
        .factor = (float)(2.0 * (double)scale / denominator),
    };
    double loss_sum = sum_over_blocks(mse_block, &context, rows, channels);
    if (loss != NULL)
        *loss = (float)(loss_sum / denominator);
    return 0;
}

int od_mse_loss_forward(float *loss, const float *pred, const float *target, const float *row_weight,
                        int64_t rows, int64_t channels, od_loss_reduction reduction, od_error *err)
{
    if (loss == NULL)
        return od_fail(err, "mse_loss: loss must not be NULL");
    return od_mse_loss_forward_backward(loss, NULL, pred, target, row_weight, rows, channels, reduction, 0.0f,
                                        err);
}

int od_mse_loss_backward(float *dpred, const float *pred, const float *target, const float *row_weight,
                         int64_t rows, int64_t channels, od_loss_reduction reduction, float scale,
                         od_error *err)
{
    if (check_pair("mse_loss", pred, target, rows, channels, reduction, err) != 0)
        return -1;
    if (dpred == NULL)
        return 0;
    return od_mse_loss_forward_backward(NULL, dpred, pred, target, row_weight, rows, channels, reduction,
                                        scale, err);
}

/* ---- 1 - cosine similarity ---------------------------------------------- */

typedef struct cosine_context {
    const float *pred;
    const float *target;
    const float *row_weight; /* NULL: every row weighs 1 */
    float *dpred;            /* NULL: loss only */
    int64_t channels;
    float eps;
    double factor; /* -scale / denominator, for the gradient of 1 - cos */
} cosine_context;

/* The row terms run in float64: when pred is nearly parallel to target the
 * two terms of the gradient cancel, and float32 would leave an error of
 * about 1e-7 / |pred| where the true gradient is 0. */
static double cosine_block(const void *context, int64_t begin, int64_t end)
{
    const cosine_context *c = context;
    const int64_t channels = c->channels;
    double sum = 0.0;
    for (int64_t r = begin; r < end; r++) {
        const float *p = c->pred + r * channels, *t = c->target + r * channels;
        double dot = 0.0, pred_squares = 0.0, target_squares = 0.0;
#pragma omp simd reduction(+ : dot, pred_squares, target_squares)
        for (int64_t k = 0; k < channels; k++) {
            double pk = p[k], tk = t[k];
            dot += pk * tk;
            pred_squares += pk * pk;
            target_squares += tk * tk;
        }
        // norms clamped separately at eps, as PyTorch 1.13 does
        double pred_norm = fmax(sqrt(pred_squares), (double)c->eps);
        double target_norm = fmax(sqrt(target_squares), (double)c->eps);
        double cosine = dot / (pred_norm * target_norm);
        double w = c->row_weight != NULL ? (double)c->row_weight[r] : 1.0;
        sum += w * (1.0 - cosine);

        if (c->dpred != NULL) {
            // d cos / d p = t / (np * nt) - cos * p / np^2, with the clamped norms
            double coef = c->factor * w;
            double target_coef = coef / (pred_norm * target_norm);
            double pred_coef = -coef * cosine / (pred_norm * pred_norm);
            float *dp = c->dpred + r * channels;
#pragma omp simd
            for (int64_t k = 0; k < channels; k++)
                dp[k] += (float)(target_coef * (double)t[k] + pred_coef * (double)p[k]);
        }
    }
    return sum;
}

static int check_cosine(const float *pred, const float *target, int64_t rows, int64_t channels, float eps,
                        od_loss_reduction reduction, od_error *err)
{
    if (check_pair("cosine_loss", pred, target, rows, channels, reduction, err) != 0)
        return -1;
    if (!(eps >= 0.0f) || isinf(eps))
        return od_fail(err, "cosine_loss: eps must be finite and >= 0, got %g", (double)eps);
    return 0;
}

int od_cosine_loss_forward_backward(float *loss, float *dpred, const float *pred, const float *target,
                                    const float *row_weight, int64_t rows, int64_t channels, float eps,
                                    od_loss_reduction reduction, float scale, od_error *err)
{
    // pred, target and dpred are (rows, channels), row_weight is (rows,) or NULL; loss is a scalar
    if (check_cosine(pred, target, rows, channels, eps, reduction, err) != 0)
        return -1;

    double denominator = mean_denominator(row_weight, rows, 1, reduction);
    if (denominator <= 0.0) {
        if (loss != NULL)
            *loss = 0.0f;
        return 0;
    }
    cosine_context context = {
        .pred = pred,
        .target = target,
        .row_weight = row_weight,
        .dpred = dpred,
        .channels = channels,
        .eps = eps,
        .factor = -(double)scale / denominator,
    };
    double loss_sum = sum_over_blocks(cosine_block, &context, rows, channels);
    if (loss != NULL)
        *loss = (float)(loss_sum / denominator);
    return 0;
}

int od_cosine_loss_forward(float *loss, const float *pred, const float *target, const float *row_weight,
                           int64_t rows, int64_t channels, float eps, od_loss_reduction reduction,
                           od_error *err)
{
    if (loss == NULL)
        return od_fail(err, "cosine_loss: loss must not be NULL");
    return od_cosine_loss_forward_backward(loss, NULL, pred, target, row_weight, rows, channels, eps,
                                           reduction, 0.0f, err);
}

int od_cosine_loss_backward(float *dpred, const float *pred, const float *target, const float *row_weight,
                            int64_t rows, int64_t channels, float eps, od_loss_reduction reduction,
                            float scale, od_error *err)
{
    if (check_cosine(pred, target, rows, channels, eps, reduction, err) != 0)
        return -1;
    if (dpred == NULL)
        return 0;
    return od_cosine_loss_forward_backward(NULL, dpred, pred, target, row_weight, rows, channels, eps,
                                           reduction, scale, err);
}
