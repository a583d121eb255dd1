/* Training losses: weighted BCE with logits, MSE and 1 - cosine similarity.
 * See loss.h for the formulas and the reductions. */
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

static int64_t block_end(row_blocks blocks, int block, int64_t rows)
{
    int64_t end = ((int64_t)block + 1) * blocks.rows_per_block;
    return end < rows ? end : rows;
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
        return od_fail(err, "%s: unknown reduction %d (expected OD_LOSS_MEAN or OD_LOSS_WEIGHTED_MEAN)",
                       loss, (int)reduction);
    return 0;
}

/* Sum of row weights, in the same fixed block order as the losses. */
static double sum_row_weights(const float *row_weight, int64_t rows)
{
    row_blocks blocks = split_rows(rows, 1);
    double partial[LOSS_MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (blocks.count > 1)
    for (int b = 0; b < blocks.count; b++) {
        double sum = 0.0;
        int64_t end = block_end(blocks, b, rows);
        for (int64_t r = (int64_t)b * blocks.rows_per_block; r < end; r++)
            sum += row_weight[r];
        partial[b] = sum;
    }
    double total = 0.0;
    for (int b = 0; b < blocks.count; b++)
        total += partial[b];
    return total;
}

/* ---- binary cross-entropy with logits ---------------------------------- */

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

static inline double bce_weight(float target, float weight_anomalous, float weight_normal)
{
    return (double)target * weight_anomalous + (1.0 - (double)target) * weight_normal;
}

/* Sums of w_i * loss_i and of w_i over all elements. */
static void bce_sums(const float *logits, const float *targets, int64_t count, float weight_anomalous,
                     float weight_normal, double *loss_sum, double *weight_sum)
{
    row_blocks blocks = split_rows(count, 1);
    double loss_partial[LOSS_MAX_BLOCKS], weight_partial[LOSS_MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (blocks.count > 1)
    for (int b = 0; b < blocks.count; b++) {
        double losses = 0.0, weights = 0.0;
        int64_t end = block_end(blocks, b, count);
        for (int64_t i = (int64_t)b * blocks.rows_per_block; i < end; i++) {
            double x = logits[i], t = targets[i];
            double w = bce_weight(targets[i], weight_anomalous, weight_normal);
            losses += w * (fmax(x, 0.0) - x * t + log1p(exp(-fabs(x))));
            weights += w;
        }
        loss_partial[b] = losses;
        weight_partial[b] = weights;
    }
    *loss_sum = 0.0;
    *weight_sum = 0.0;
    for (int b = 0; b < blocks.count; b++) {
        *loss_sum += loss_partial[b];
        *weight_sum += weight_partial[b];
    }
}

int od_bce_with_logits_forward(float *loss, const float *logits, const float *targets, int64_t count,
                               float weight_anomalous, float weight_normal, od_loss_reduction reduction,
                               od_error *err)
{
    // logits is (count,), targets is (count,), loss is a scalar
    if (check_bce(logits, targets, count, weight_anomalous, weight_normal, reduction, err) != 0)
        return -1;
    if (loss == NULL)
        return od_fail(err, "bce_with_logits: loss must not be NULL");

    double loss_sum, weight_sum;
    bce_sums(logits, targets, count, weight_anomalous, weight_normal, &loss_sum, &weight_sum);
    if (reduction == OD_LOSS_WEIGHTED_MEAN)
        *loss = weight_sum > 0.0 ? (float)(loss_sum / weight_sum) : 0.0f;
    else
        *loss = (float)(loss_sum / (double)count);
    return 0;
}

int od_bce_with_logits_backward(float *dlogits, const float *logits, const float *targets, int64_t count,
                                float weight_anomalous, float weight_normal, od_loss_reduction reduction,
                                float scale, od_error *err)
{
    // logits is (count,), targets is (count,), dlogits is (count,)
    if (check_bce(logits, targets, count, weight_anomalous, weight_normal, reduction, err) != 0)
        return -1;
    if (dlogits == NULL)
        return 0;

    double denominator = (double)count;
    if (reduction == OD_LOSS_WEIGHTED_MEAN) {
        double loss_sum;
        bce_sums(logits, targets, count, weight_anomalous, weight_normal, &loss_sum, &denominator);
        if (denominator <= 0.0)
            return 0;
    }
    double factor = (double)scale / denominator;

    // d loss_i / d x_i = sigmoid(x_i) - t_i, with exp(-|x|) <= 1 so that nothing overflows
#pragma omp parallel for schedule(static) if (count > LOSS_MIN_BLOCK_ELEMENTS)
    for (int64_t i = 0; i < count; i++) {
        double x = logits[i];
        double e = exp(-fabs(x));
        double sigmoid = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        double w = bce_weight(targets[i], weight_anomalous, weight_normal);
        dlogits[i] += (float)(factor * w * (sigmoid - (double)targets[i]));
    }
    return 0;
}

/* ---- mean squared error ------------------------------------------------- */

static int check_pair(const char *loss, const float *pred, const float *target, int64_t rows, int64_t channels,
                      od_loss_reduction reduction, od_error *err)
{
    if (check_sizes(loss, rows, channels, reduction, err) != 0)
        return -1;
    if (pred == NULL || target == NULL)
        return od_fail(err, "%s: pred and target must not be NULL", loss);
    return 0;
}

/* Sum over rows of w_r * sum_c (pred - target)^2. */
static double mse_sum(const float *pred, const float *target, const float *row_weight, int64_t rows,
                      int64_t channels)
{
    row_blocks blocks = split_rows(rows, channels);
    double partial[LOSS_MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (blocks.count > 1)
    for (int b = 0; b < blocks.count; b++) {
        int64_t begin = (int64_t)b * blocks.rows_per_block;
        int64_t end = block_end(blocks, b, rows);
        double sum = 0.0;
        if (row_weight == NULL || channels == 1) {
            // one flat run of elements, weighted elementwise when channels is 1
            const float *p = pred + begin * channels, *t = target + begin * channels;
            const float *w = row_weight != NULL ? row_weight + begin : NULL;
            int64_t n = (end - begin) * channels;
            if (w == NULL) {
#pragma omp simd reduction(+ : sum)
                for (int64_t i = 0; i < n; i++) {
                    double d = (double)p[i] - (double)t[i];
                    sum += d * d;
                }
            } else {
#pragma omp simd reduction(+ : sum)
                for (int64_t i = 0; i < n; i++) {
                    double d = (double)p[i] - (double)t[i];
                    sum += (double)w[i] * d * d;
                }
            }
        } else {
            for (int64_t r = begin; r < end; r++) {
                const float *p = pred + r * channels, *t = target + r * channels;
                double row = 0.0;
                for (int64_t c = 0; c < channels; c++) {
                    double d = (double)p[c] - (double)t[c];
                    row += d * d;
                }
                sum += (double)row_weight[r] * row;
            }
        }
        partial[b] = sum;
    }
    double total = 0.0;
    for (int b = 0; b < blocks.count; b++)
        total += partial[b];
    return total;
}

/* Returns the divisor of the weighted sum, or 0 when every weight is 0. */
static double mean_denominator(const float *row_weight, int64_t rows, int64_t channels,
                               od_loss_reduction reduction)
{
    if (reduction == OD_LOSS_WEIGHTED_MEAN && row_weight != NULL)
        return sum_row_weights(row_weight, rows) * (double)channels;
    return (double)rows * (double)channels;
}

int od_mse_loss_forward(float *loss, const float *pred, const float *target, const float *row_weight,
                        int64_t rows, int64_t channels, od_loss_reduction reduction, od_error *err)
{
    // pred is (rows, channels), target is (rows, channels), row_weight is (rows,) or NULL
    if (check_pair("mse_loss", pred, target, rows, channels, reduction, err) != 0)
        return -1;
    if (loss == NULL)
        return od_fail(err, "mse_loss: loss must not be NULL");

    double denominator = mean_denominator(row_weight, rows, channels, reduction);
    if (denominator <= 0.0) {
        *loss = 0.0f;
        return 0;
    }
    *loss = (float)(mse_sum(pred, target, row_weight, rows, channels) / denominator);
    return 0;
}

int od_mse_loss_backward(float *dpred, const float *pred, const float *target, const float *row_weight,
                         int64_t rows, int64_t channels, od_loss_reduction reduction, float scale,
                         od_error *err)
{
    // pred, target and dpred are (rows, channels), row_weight is (rows,) or NULL
    if (check_pair("mse_loss", pred, target, rows, channels, reduction, err) != 0)
        return -1;
    if (dpred == NULL)
        return 0;

    double denominator = mean_denominator(row_weight, rows, channels, reduction);
    if (denominator <= 0.0)
        return 0;
    const float factor = (float)(2.0 * (double)scale / denominator);

    int64_t count = rows * channels;
    if (row_weight == NULL) {
#pragma omp parallel for simd schedule(static) if (count > LOSS_MIN_BLOCK_ELEMENTS)
        for (int64_t i = 0; i < count; i++)
            dpred[i] += factor * (pred[i] - target[i]);
    } else if (channels == 1) {
#pragma omp parallel for simd schedule(static) if (count > LOSS_MIN_BLOCK_ELEMENTS)
        for (int64_t i = 0; i < count; i++)
            dpred[i] += factor * row_weight[i] * (pred[i] - target[i]);
    } else {
#pragma omp parallel for schedule(static) if (count > LOSS_MIN_BLOCK_ELEMENTS)
        for (int64_t r = 0; r < rows; r++) {
            const float row_factor = factor * row_weight[r];
            const int64_t offset = r * channels;
            for (int64_t c = 0; c < channels; c++)
                dpred[offset + c] += row_factor * (pred[offset + c] - target[offset + c]);
        }
    }
    return 0;
}

/* ---- 1 - cosine similarity ---------------------------------------------- */

/* Per-row terms in float64: when pred is nearly parallel to target the two
 * terms of the gradient cancel, and float32 would leave an error of about
 * 1e-7 / |pred| where the true gradient is 0. */
typedef struct cosine_row {
    double cosine;
    double pred_norm;   /* max(|pred|, eps) */
    double target_norm; /* max(|target|, eps) */
} cosine_row;

static inline cosine_row cosine_of_row(const float *p, const float *t, int64_t channels, float eps)
{
    double dot = 0.0, pred_squares = 0.0, target_squares = 0.0;
#pragma omp simd reduction(+ : dot, pred_squares, target_squares)
    for (int64_t c = 0; c < channels; c++) {
        double pc = p[c], tc = t[c];
        dot += pc * tc;
        pred_squares += pc * pc;
        target_squares += tc * tc;
    }
    cosine_row row;
    row.pred_norm = fmax(sqrt(pred_squares), (double)eps);
    row.target_norm = fmax(sqrt(target_squares), (double)eps);
    row.cosine = dot / (row.pred_norm * row.target_norm);
    return row;
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

int od_cosine_loss_forward(float *loss, const float *pred, const float *target, const float *row_weight,
                           int64_t rows, int64_t channels, float eps, od_loss_reduction reduction,
                           od_error *err)
{
    // pred is (rows, channels), target is (rows, channels), row_weight is (rows,) or NULL
    if (check_cosine(pred, target, rows, channels, eps, reduction, err) != 0)
        return -1;
    if (loss == NULL)
        return od_fail(err, "cosine_loss: loss must not be NULL");

    double denominator = mean_denominator(row_weight, rows, 1, reduction);
    if (denominator <= 0.0) {
        *loss = 0.0f;
        return 0;
    }

    row_blocks blocks = split_rows(rows, channels);
    double partial[LOSS_MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (blocks.count > 1)
    for (int b = 0; b < blocks.count; b++) {
        double sum = 0.0;
        int64_t end = block_end(blocks, b, rows);
        for (int64_t r = (int64_t)b * blocks.rows_per_block; r < end; r++) {
            cosine_row row = cosine_of_row(pred + r * channels, target + r * channels, channels, eps);
            double w = row_weight != NULL ? (double)row_weight[r] : 1.0;
            sum += w * (1.0 - row.cosine);
        }
        partial[b] = sum;
    }
    double total = 0.0;
    for (int b = 0; b < blocks.count; b++)
        total += partial[b];
    *loss = (float)(total / denominator);
    return 0;
}

int od_cosine_loss_backward(float *dpred, const float *pred, const float *target, const float *row_weight,
                            int64_t rows, int64_t channels, float eps, od_loss_reduction reduction,
                            float scale, od_error *err)
{
    // pred, target and dpred are (rows, channels), row_weight is (rows,) or NULL
    if (check_cosine(pred, target, rows, channels, eps, reduction, err) != 0)
        return -1;
    if (dpred == NULL)
        return 0;

    double denominator = mean_denominator(row_weight, rows, 1, reduction);
    if (denominator <= 0.0)
        return 0;
    const double factor = -(double)scale / denominator; // the loss is 1 - cos

    // d cos / d p = t / (np * nt) - cos * p / np^2, norms clamped as in the forward
#pragma omp parallel for schedule(static) if (rows * channels > LOSS_MIN_BLOCK_ELEMENTS)
    for (int64_t r = 0; r < rows; r++) {
        const float *p = pred + r * channels, *t = target + r * channels;
        float *dp = dpred + r * channels;
        cosine_row row = cosine_of_row(p, t, channels, eps);
        double coef = factor * (row_weight != NULL ? (double)row_weight[r] : 1.0);
        const double target_coef = coef / (row.pred_norm * row.target_norm);
        const double pred_coef = -coef * row.cosine / (row.pred_norm * row.pred_norm);
#pragma omp simd
        for (int64_t c = 0; c < channels; c++)
            dp[c] += (float)(target_coef * (double)t[c] + pred_coef * (double)p[c]);
    }
    return 0;
}
