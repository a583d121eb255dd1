/* Batch norm, group norm and layer norm over channels-last activations,
 * forward and backward (see norm.h).
 *
 * Per-channel statistics over many rows (batch norm, and group norm within
 * one sample) go through the same two helpers: chunk_moments for the mean
 * and the sum of squared deviations, chunk_grad_sums for the two sums the
 * backward needs. Both walk a chunk of at most OD_NORM_CHUNK channels, so
 * that their partial sums sit on the stack, and split the rows into a fixed
 * number of partitions whose partials are combined in order. The result
 * therefore does not depend on the thread count at all. Within a partition,
 * blocks small enough for L1 are summed in float (two passes for the
 * variance, so no E[x^2] - E[x]^2 cancellation) and the blocks are combined
 * in double with Chan's pairwise update. */
#include "nn/norm.h"

#include <math.h>
#include <string.h>

#include "core/mem.h"
#include "nn/activation.h" /* od_vec16 and the row reductions */

/* Channels per pass; the per-channel partials of one pass live on the stack. */
#define OD_NORM_CHUNK 64
/* Row partitions for the statistics; fixed, so results match across thread counts. */
#define OD_NORM_PARTS 16
/* Minimum rows per partition; smaller inputs use fewer partitions. */
#define OD_NORM_ROWS_PER_PART_MIN 1024
/* Values per block summed in float before the block joins the double totals. */
#define OD_NORM_BLOCK_VALUES 1024
/* Below this many values a row-parallel loop stays on one thread. */
#define OD_NORM_PARALLEL_MIN 32768
/* Channels per task in the layer-norm weight gradients. */
#define OD_LAYERNORM_GRAD_CHUNK 128

#define OD_ALWAYS_INLINE inline __attribute__((always_inline))

static int64_t min_i64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int partition_count(int64_t rows)
{
    int64_t parts = rows / OD_NORM_ROWS_PER_PART_MIN;
    if (parts < 1)
        parts = 1;
    return (int)min_i64(parts, OD_NORM_PARTS);
}

static int64_t block_rows(int64_t width)
{
    int64_t block = OD_NORM_BLOCK_VALUES / width;
    return block < 1 ? 1 : block;
}

/* ---- per-channel statistics over rows ---------------------------------- */

/* Computes the mean and the sum of squared deviations m2 of each of the
 * `width` columns of x, (rows, width) with row stride `stride`. Float block
 * results join the double totals through Chan's update. */
static OD_ALWAYS_INLINE void partition_moments(double *mean, double *m2, const float *x,
                                               int64_t rows, int64_t stride, int64_t width)
{
    const int64_t block = block_rows(width);
    int64_t count = 0;
    for (int64_t c = 0; c < width; c++) {
        mean[c] = 0.0;
        m2[c] = 0.0;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
        const int64_t n = min_i64(block, rows - r0);
        const float *xb = x + r0 * stride;

        /* pass 1: block mean */
        float sum[OD_NORM_CHUNK] = {0};
        for (int64_t r = 0; r < n; r++)
#pragma omp simd
            for (int64_t c = 0; c < width; c++)
                sum[c] += xb[r * stride + c];
        float block_mean[OD_NORM_CHUNK];
        const float inv_n = 1.0f / (float)n;
        for (int64_t c = 0; c < width; c++)
            block_mean[c] = sum[c] * inv_n;

        /* pass 2: squared deviations from the block mean, while the block is in L1 */
        float squares[OD_NORM_CHUNK] = {0};
        for (int64_t r = 0; r < n; r++)
#pragma omp simd
            for (int64_t c = 0; c < width; c++) {
                float d = xb[r * stride + c] - block_mean[c];
                squares[c] += d * d;
            }

        /* join the running totals (Chan et al.'s pairwise update) */
        const double total = (double)(count + n);
        const double weight = (double)n / total;
        const double cross = (double)count * (double)n / total;
        for (int64_t c = 0; c < width; c++) {
            double delta = (double)block_mean[c] - mean[c];
            mean[c] += delta * weight;
            m2[c] += (double)squares[c] + delta * delta * cross;
        }
        count += n;
    }
}

/* Computes mean[c] and m2[c], the sum over rows of (x - mean[c])^2, for
 * the columns of x (rows, width) with row stride `stride`, over all rows
 * split into partitions. mean and m2 are (width). */
static void chunk_moments(double *mean, double *m2, const float *x, int64_t rows, int64_t stride,
                          int64_t width)
{
    const int parts = partition_count(rows);
    double part_mean[OD_NORM_PARTS][OD_NORM_CHUNK];
    double part_m2[OD_NORM_PARTS][OD_NORM_CHUNK];

#pragma omp parallel for schedule(static) if (parts > 1)
    for (int p = 0; p < parts; p++) {
        const int64_t r0 = rows * p / parts;
        const int64_t r1 = rows * (p + 1) / parts;
        const float *xp = x + r0 * stride;
        /* constant widths let the compiler unroll the channel loop into whole vectors */
        switch (width) {
        case 16:
            partition_moments(part_mean[p], part_m2[p], xp, r1 - r0, stride, 16);
            break;
        case 32:
            partition_moments(part_mean[p], part_m2[p], xp, r1 - r0, stride, 32);
            break;
        case 64:
            partition_moments(part_mean[p], part_m2[p], xp, r1 - r0, stride, 64);
            break;
        default:
            partition_moments(part_mean[p], part_m2[p], xp, r1 - r0, stride, width);
            break;
        }
    }

    /* combine the partitions in a fixed order */
    int64_t count = 0;
    for (int64_t c = 0; c < width; c++) {
        mean[c] = 0.0;
        m2[c] = 0.0;
    }
    for (int p = 0; p < parts; p++) {
        const int64_t n = rows * (p + 1) / parts - rows * p / parts;
        const double total = (double)(count + n);
        for (int64_t c = 0; c < width; c++) {
            double delta = part_mean[p][c] - mean[c];
            mean[c] += delta * (double)n / total;
            m2[c] += part_m2[p][c] + delta * delta * (double)count * (double)n / total;
        }
        count += n;
    }
}

/* Computes sum_dy[c], the sum of dy, and sum_dy_xc[c], the sum of
 * dy * (x - center[c]), over the rows of one partition. dy and x are
 * (rows, width) with row stride `stride`. */
static OD_ALWAYS_INLINE void partition_grad_sums(double *sum_dy, double *sum_dy_xc,
                                                 const float *dy, const float *x,
                                                 const float *center, int64_t rows,
                                                 int64_t stride, int64_t width)
{
    const int64_t block = block_rows(width);
    for (int64_t c = 0; c < width; c++) {
        sum_dy[c] = 0.0;
        sum_dy_xc[c] = 0.0;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
        const int64_t n = min_i64(block, rows - r0);
        float block_dy[OD_NORM_CHUNK] = {0};
        float block_dy_xc[OD_NORM_CHUNK] = {0};
        for (int64_t r = r0; r < r0 + n; r++)
#pragma omp simd
            for (int64_t c = 0; c < width; c++) {
                float g = dy[r * stride + c];
                block_dy[c] += g;
                block_dy_xc[c] += g * (x[r * stride + c] - center[c]);
            }
        for (int64_t c = 0; c < width; c++) {
            sum_dy[c] += (double)block_dy[c];
            sum_dy_xc[c] += (double)block_dy_xc[c];
        }
    }
}

/* Computes the sums of partition_grad_sums over all rows, split into
 * partitions. sum_dy and sum_dy_xc are (width). */
static void chunk_grad_sums(double *sum_dy, double *sum_dy_xc, const float *dy, const float *x,
                            const float *center, int64_t rows, int64_t stride, int64_t width)
{
    const int parts = partition_count(rows);
    double part_dy[OD_NORM_PARTS][OD_NORM_CHUNK];
    double part_dy_xc[OD_NORM_PARTS][OD_NORM_CHUNK];

#pragma omp parallel for schedule(static) if (parts > 1)
    for (int p = 0; p < parts; p++) {
        const int64_t r0 = rows * p / parts;
        const int64_t r1 = rows * (p + 1) / parts;
        const float *dyp = dy + r0 * stride;
        const float *xp = x + r0 * stride;
        switch (width) {
        case 16:
            partition_grad_sums(part_dy[p], part_dy_xc[p], dyp, xp, center, r1 - r0, stride, 16);
            break;
        case 32:
            partition_grad_sums(part_dy[p], part_dy_xc[p], dyp, xp, center, r1 - r0, stride, 32);
            break;
        case 64:
            partition_grad_sums(part_dy[p], part_dy_xc[p], dyp, xp, center, r1 - r0, stride, 64);
            break;
        default:
            partition_grad_sums(part_dy[p], part_dy_xc[p], dyp, xp, center, r1 - r0, stride,
                                width);
            break;
        }
    }

    for (int64_t c = 0; c < width; c++) {
        sum_dy[c] = 0.0;
        sum_dy_xc[c] = 0.0;
    }
    for (int p = 0; p < parts; p++)
        for (int64_t c = 0; c < width; c++) {
            sum_dy[c] += part_dy[p][c];
            sum_dy_xc[c] += part_dy_xc[p][c];
        }
}

/* ---- elementwise passes over a channel chunk --------------------------- */

static OD_ALWAYS_INLINE void normalize_rows(float *out, const float *x, const float *center,
                                            const float *scale, const float *shift,
                                            int64_t rows, int64_t stride, int64_t width)
{
#pragma omp parallel for schedule(static) if (rows * width >= OD_NORM_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < width; c++)
            out[r * stride + c] = (x[r * stride + c] - center[c]) * scale[c] + shift[c];
}

/* out = (x - center) * scale + shift per column; out, x are (rows, width)
 * with stride `stride`, center, scale, shift are (width). */
static void chunk_normalize(float *out, const float *x, const float *center, const float *scale,
                            const float *shift, int64_t rows, int64_t stride, int64_t width)
{
    switch (width) {
    case 16:
        normalize_rows(out, x, center, scale, shift, rows, stride, 16);
        break;
    case 32:
        normalize_rows(out, x, center, scale, shift, rows, stride, 32);
        break;
    default:
        normalize_rows(out, x, center, scale, shift, rows, stride, width);
        break;
    }
}

static OD_ALWAYS_INLINE void input_grad_rows(float *d_in, const float *dy, const float *x,
                                             const float *center, const float *coef_dy,
                                             const float *coef_xc, const float *coef_one,
                                             int64_t rows, int64_t stride, int64_t width)
{
#pragma omp parallel for schedule(static) if (rows * width >= OD_NORM_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < width; c++) {
            const int64_t i = r * stride + c;
            d_in[i] += coef_dy[c] * dy[i] + coef_xc[c] * (x[i] - center[c]) + coef_one[c];
        }
}

/* d_in += coef_dy * dy + coef_xc * (x - center) + coef_one per column;
 * d_in, dy, x are (rows, width) with stride `stride`, the rest (width). */
static void chunk_input_grad(float *d_in, const float *dy, const float *x, const float *center,
                             const float *coef_dy, const float *coef_xc, const float *coef_one,
                             int64_t rows, int64_t stride, int64_t width)
{
    switch (width) {
    case 16:
        input_grad_rows(d_in, dy, x, center, coef_dy, coef_xc, coef_one, rows, stride, 16);
        break;
    case 32:
        input_grad_rows(d_in, dy, x, center, coef_dy, coef_xc, coef_one, rows, stride, 32);
        break;
    default:
        input_grad_rows(d_in, dy, x, center, coef_dy, coef_xc, coef_one, rows, stride, width);
        break;
    }
}

/* ---- batch normalization ----------------------------------------------- */

void od_batchnorm_forward(float *out, float *saved_mean, float *saved_rstd, const float *in,
                          const float *gamma, const float *beta, int64_t rows, int64_t channels,
                          float eps)
{
    /* in, out: (rows, channels); saved_mean, saved_rstd, gamma, beta: (channels) */
    if (rows <= 0)
        return;
    for (int64_t c0 = 0; c0 < channels; c0 += OD_NORM_CHUNK) {
        const int64_t width = min_i64(OD_NORM_CHUNK, channels - c0);

        double mean[OD_NORM_CHUNK], m2[OD_NORM_CHUNK];
        chunk_moments(mean, m2, in + c0, rows, channels, width);

        float center[OD_NORM_CHUNK], scale[OD_NORM_CHUNK], shift[OD_NORM_CHUNK];
        for (int64_t c = 0; c < width; c++) {
            const double rstd = 1.0 / sqrt(m2[c] / (double)rows + (double)eps);
            saved_mean[c0 + c] = (float)mean[c];
            saved_rstd[c0 + c] = (float)rstd;
            center[c] = (float)mean[c];
            scale[c] = (float)rstd * (gamma != NULL ? gamma[c0 + c] : 1.0f);
            shift[c] = beta != NULL ? beta[c0 + c] : 0.0f;
        }

        chunk_normalize(out + c0, in + c0, center, scale, shift, rows, channels, width);
    }
}

void od_batchnorm_backward(float *d_in, float *d_gamma, float *d_beta, const float *d_out,
                           const float *in, const float *saved_mean, const float *saved_rstd,
                           const float *gamma, int64_t rows, int64_t channels)
{
    /* d_in, d_out, in: (rows, channels); d_gamma, d_beta, saved_mean,
     * saved_rstd, gamma: (channels).
     * With xhat = (x - mean) * rstd and N = rows:
     *   d_beta  += sum dy,  d_gamma += sum dy * xhat,
     *   d_in    += gamma * rstd * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N). */
    if (rows <= 0)
        return;
    for (int64_t c0 = 0; c0 < channels; c0 += OD_NORM_CHUNK) {
        const int64_t width = min_i64(OD_NORM_CHUNK, channels - c0);

        double sum_dy[OD_NORM_CHUNK], sum_dy_xc[OD_NORM_CHUNK];
        chunk_grad_sums(sum_dy, sum_dy_xc, d_out + c0, in + c0, saved_mean + c0, rows, channels,
                        width);

        float coef_dy[OD_NORM_CHUNK], coef_xc[OD_NORM_CHUNK], coef_one[OD_NORM_CHUNK];
        for (int64_t c = 0; c < width; c++) {
            const double rstd = saved_rstd[c0 + c];
            const double g = gamma != NULL ? gamma[c0 + c] : 1.0;
            if (d_beta != NULL)
                d_beta[c0 + c] += (float)sum_dy[c];
            if (d_gamma != NULL)
                d_gamma[c0 + c] += (float)(sum_dy_xc[c] * rstd);
            coef_dy[c] = (float)(g * rstd);
            coef_xc[c] = (float)(-g * rstd * rstd * rstd * sum_dy_xc[c] / (double)rows);
            coef_one[c] = (float)(-g * rstd * sum_dy[c] / (double)rows);
        }

        if (d_in != NULL)
            chunk_input_grad(d_in + c0, d_out + c0, in + c0, saved_mean + c0, coef_dy, coef_xc,
                             coef_one, rows, channels, width);
    }
}

int od_batchnorm_update_running_stats(float *running_mean, float *running_var,
                                      const float *saved_mean, const float *saved_rstd,
                                      int64_t rows, int64_t channels, float momentum, float eps,
                                      od_error *err)
{
    /* running_mean, running_var, saved_mean, saved_rstd: (channels) */
    if (rows < 2)
        return od_fail(err,
                       "batchnorm: running statistics need at least 2 values per channel, got "
                       "rows = %lld",
                       (long long)rows);
    if (channels < 0)
        return od_fail(err, "batchnorm: channels must be >= 0, got %lld", (long long)channels);
    const double bessel = (double)rows / (double)(rows - 1);
    for (int64_t c = 0; c < channels; c++) {
        const double rstd = saved_rstd[c];
        double biased_var = 1.0 / (rstd * rstd) - (double)eps;
        if (biased_var < 0.0)
            biased_var = 0.0; /* rounding of rstd when the variance is far below eps */
        running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * saved_mean[c];
        running_var[c] = (float)((1.0 - (double)momentum) * running_var[c] +
                                 (double)momentum * biased_var * bessel);
    }
    return 0;
}

void od_batchnorm_inference_forward(float *out, const float *in, const float *running_mean,
                                    const float *running_var, const float *gamma,
                                    const float *beta, int64_t rows, int64_t channels, float eps)
{
    /* in, out: (rows, channels); running_mean, running_var, gamma, beta: (channels) */
    for (int64_t c0 = 0; c0 < channels; c0 += OD_NORM_CHUNK) {
        const int64_t width = min_i64(OD_NORM_CHUNK, channels - c0);
        float scale[OD_NORM_CHUNK], shift[OD_NORM_CHUNK];
        for (int64_t c = 0; c < width; c++) {
            scale[c] = (float)(1.0 / sqrt((double)running_var[c0 + c] + (double)eps)) *
                       (gamma != NULL ? gamma[c0 + c] : 1.0f);
            shift[c] = beta != NULL ? beta[c0 + c] : 0.0f;
        }
        chunk_normalize(out + c0, in + c0, running_mean + c0, scale, shift, rows, channels, width);
    }
}

/* ---- group normalization ----------------------------------------------- */

static int check_groupnorm_shape(int64_t batch, int64_t spatial, int64_t channels, int64_t groups,
                                 od_error *err)
{
    if (batch < 0 || spatial <= 0 || channels <= 0 || groups <= 0)
        return od_fail(err,
                       "groupnorm: invalid shape batch=%lld spatial=%lld channels=%lld "
                       "groups=%lld; expected batch >= 0 and the others > 0",
                       (long long)batch, (long long)spatial, (long long)channels,
                       (long long)groups);
    if (channels % groups != 0)
        return od_fail(err, "groupnorm: groups = %lld does not divide channels = %lld",
                       (long long)groups, (long long)channels);
    return 0;
}

int od_groupnorm_forward(float *out, float *saved_mean, float *saved_rstd, const float *in,
                         const float *gamma, const float *beta, int64_t batch, int64_t spatial,
                         int64_t channels, int64_t groups, float eps, od_error *err)
{
    /* in, out: (batch, spatial, channels); saved_mean, saved_rstd:
     * (batch, groups); gamma, beta: (channels) */
    if (check_groupnorm_shape(batch, spatial, channels, groups, err) != 0)
        return -1;
    double *channel_mean = od_alloc_aligned(2 * (size_t)channels * sizeof(double));
    if (channel_mean == NULL)
        return od_fail(err, "groupnorm: out of memory for %lld channel statistics",
                       (long long)channels);
    double *channel_m2 = channel_mean + channels;
    const int64_t group_size = channels / groups;

    for (int64_t n = 0; n < batch; n++) {
        const float *x = in + n * spatial * channels;
        float *y = out + n * spatial * channels;

        /* per-channel moments over the spatial positions */
        for (int64_t c0 = 0; c0 < channels; c0 += OD_NORM_CHUNK) {
            const int64_t width = min_i64(OD_NORM_CHUNK, channels - c0);
            chunk_moments(channel_mean + c0, channel_m2 + c0, x + c0, spatial, channels, width);
        }

        /* combine the channels of each group: total m2 = within + between channels */
        for (int64_t g = 0; g < groups; g++) {
            const double *mean_g = channel_mean + g * group_size;
            const double *m2_g = channel_m2 + g * group_size;
            double mean = 0.0;
            for (int64_t c = 0; c < group_size; c++)
                mean += mean_g[c];
            mean /= (double)group_size;
            double m2 = 0.0;
            for (int64_t c = 0; c < group_size; c++) {
                const double delta = mean_g[c] - mean;
                m2 += m2_g[c] + (double)spatial * delta * delta;
            }
            const double var = m2 / ((double)spatial * (double)group_size);
            saved_mean[n * groups + g] = (float)mean;
            saved_rstd[n * groups + g] = (float)(1.0 / sqrt(var + (double)eps));
        }

        /* normalise with the group statistics broadcast to their channels */
        for (int64_t c0 = 0; c0 < channels; c0 += OD_NORM_CHUNK) {
            const int64_t width = min_i64(OD_NORM_CHUNK, channels - c0);
            float center[OD_NORM_CHUNK], scale[OD_NORM_CHUNK], shift[OD_NORM_CHUNK];
            for (int64_t c = 0; c < width; c++) {
                const int64_t g = (c0 + c) / group_size;
                center[c] = saved_mean[n * groups + g];
                scale[c] = saved_rstd[n * groups + g] * (gamma != NULL ? gamma[c0 + c] : 1.0f);
                shift[c] = beta != NULL ? beta[c0 + c] : 0.0f;
            }
            chunk_normalize(y + c0, x + c0, center, scale, shift, spatial, channels, width);
        }
    }
    od_free(channel_mean);
    return 0;
}

int od_groupnorm_backward(float *d_in, float *d_gamma, float *d_beta, const float *d_out,
                          const float *in, const float *saved_mean, const float *saved_rstd,
                          const float *gamma, int64_t batch, int64_t spatial, int64_t channels,
                          int64_t groups, od_error *err)
{
    /* d_in, d_out, in: (batch, spatial, channels); saved_mean, saved_rstd:
     * (batch, groups); d_gamma, d_beta, gamma: (channels).
     * Per (sample, group) with M = spatial * channels / groups values,
     * xhat = (x - mean) * rstd and dxhat = dy * gamma[c]:
     *   d_in += rstd * (dxhat - sum(dxhat) / M - xhat * sum(dxhat * xhat) / M). */
    if (check_groupnorm_shape(batch, spatial, channels, groups, err) != 0)
        return -1;
    double *sum_dy = od_alloc_aligned((2 * (size_t)channels + 2 * (size_t)groups) * sizeof(double));
    if (sum_dy == NULL)
        return od_fail(err, "groupnorm: out of memory for %lld channel sums", (long long)channels);
    double *sum_dy_xc = sum_dy + channels;
    double *group_dxhat = sum_dy_xc + channels;   /* sum of dxhat per group */
    double *group_dxhat_xc = group_dxhat + groups; /* sum of dxhat * (x - mean) per group */
    const int64_t group_size = channels / groups;
    const double values_per_group = (double)spatial * (double)group_size;

    for (int64_t n = 0; n < batch; n++) {
        const float *x = in + n * spatial * channels;
        const float *dy = d_out + n * spatial * channels;
        const float *mean = saved_mean + n * groups;
        const float *rstd = saved_rstd + n * groups;

        /* pass 1: per-channel sums of dy and dy * (x - group mean) */
        for (int64_t c0 = 0; c0 < channels; c0 += OD_NORM_CHUNK) {
            const int64_t width = min_i64(OD_NORM_CHUNK, channels - c0);
            float center[OD_NORM_CHUNK];
            for (int64_t c = 0; c < width; c++)
                center[c] = mean[(c0 + c) / group_size];
            chunk_grad_sums(sum_dy + c0, sum_dy_xc + c0, dy + c0, x + c0, center, spatial,
                            channels, width);
        }

        /* parameter gradients, and the per-group sums weighted by gamma */
        for (int64_t g = 0; g < groups; g++) {
            group_dxhat[g] = 0.0;
            group_dxhat_xc[g] = 0.0;
        }
        for (int64_t c = 0; c < channels; c++) {
            const int64_t g = c / group_size;
            const double weight = gamma != NULL ? gamma[c] : 1.0;
            if (d_beta != NULL)
                d_beta[c] += (float)sum_dy[c];
            if (d_gamma != NULL)
                d_gamma[c] += (float)(sum_dy_xc[c] * rstd[g]);
            group_dxhat[g] += weight * sum_dy[c];
            group_dxhat_xc[g] += weight * sum_dy_xc[c];
        }
        if (d_in == NULL)
            continue;

        /* pass 2: input gradient */
        float *dx = d_in + n * spatial * channels;
        for (int64_t c0 = 0; c0 < channels; c0 += OD_NORM_CHUNK) {
            const int64_t width = min_i64(OD_NORM_CHUNK, channels - c0);
            float center[OD_NORM_CHUNK], coef_dy[OD_NORM_CHUNK], coef_xc[OD_NORM_CHUNK],
                coef_one[OD_NORM_CHUNK];
            for (int64_t c = 0; c < width; c++) {
                const int64_t g = (c0 + c) / group_size;
                const double r = rstd[g];
                const double weight = gamma != NULL ? gamma[c0 + c] : 1.0;
                center[c] = mean[g];
                coef_dy[c] = (float)(r * weight);
                coef_xc[c] = (float)(-r * r * r * group_dxhat_xc[g] / values_per_group);
                coef_one[c] = (float)(-r * group_dxhat[g] / values_per_group);
            }
            chunk_input_grad(dx + c0, dy + c0, x + c0, center, coef_dy, coef_xc, coef_one,
                             spatial, channels, width);
        }
    }
    od_free(sum_dy);
    return 0;
}

/* ---- layer normalization ----------------------------------------------- */

/* Sets sum_dxhat to the sum of dy * gamma and sum_dxhat_xc to the sum of
 * dy * gamma * (x - mean) over one row of n channels. A NULL gamma is 1. */
static inline void row_grad_sums(float *sum_dxhat, float *sum_dxhat_xc, const float *dy,
                                 const float *gamma, const float *x, float mean, int64_t n)
{
    od_vec16 acc_dxhat = {0}, acc_dxhat_xc = {0};
    int64_t c = 0;
    for (; c + OD_VEC16_LANES <= n; c += OD_VEC16_LANES) {
        od_vec16 dxhat = od_vec16_load(dy + c);
        if (gamma != NULL)
            dxhat *= od_vec16_load(gamma + c);
        acc_dxhat += dxhat;
        acc_dxhat_xc += dxhat * (od_vec16_load(x + c) - mean);
    }
    float tail_dxhat = 0.0f, tail_dxhat_xc = 0.0f;
    for (; c < n; c++) {
        const float dxhat = dy[c] * (gamma != NULL ? gamma[c] : 1.0f);
        tail_dxhat += dxhat;
        tail_dxhat_xc += dxhat * (x[c] - mean);
    }
    *sum_dxhat = od_vec16_sum_lanes(acc_dxhat) + tail_dxhat;
    *sum_dxhat_xc = od_vec16_sum_lanes(acc_dxhat_xc) + tail_dxhat_xc;
}

void od_layernorm_forward(float *out, float *saved_mean, float *saved_rstd, const float *in,
                          const float *gamma, const float *beta, int64_t rows, int64_t channels,
                          float eps)
{
    /* in, out: (rows, channels); saved_mean, saved_rstd: (rows); gamma, beta: (channels) */
    if (channels <= 0)
        return;
    const float inv_channels = 1.0f / (float)channels;
#pragma omp parallel for schedule(static) if (rows * channels >= OD_NORM_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * channels;
        float *y = out + r * channels;

        const float mean = od_row_sum(x, channels) * inv_channels;
        const float squares = od_row_sum_squared_deviation(x, channels, mean);
        const float rstd = 1.0f / sqrtf(squares * inv_channels + eps);
        saved_mean[r] = mean;
        saved_rstd[r] = rstd;

        if (gamma != NULL && beta != NULL) {
#pragma omp simd
            for (int64_t c = 0; c < channels; c++)
                y[c] = (x[c] - mean) * rstd * gamma[c] + beta[c];
        } else {
#pragma omp simd
            for (int64_t c = 0; c < channels; c++)
                y[c] = (x[c] - mean) * rstd * (gamma != NULL ? gamma[c] : 1.0f) +
                       (beta != NULL ? beta[c] : 0.0f);
        }
    }
}

void od_layernorm_backward(float *d_in, float *d_gamma, float *d_beta, const float *d_out,
                           const float *in, const float *saved_mean, const float *saved_rstd,
                           const float *gamma, int64_t rows, int64_t channels)
{
    /* d_in, d_out, in: (rows, channels); saved_mean, saved_rstd: (rows);
     * d_gamma, d_beta, gamma: (channels).
     * Per row with xhat = (x - mean) * rstd and dxhat = dy * gamma:
     *   d_in += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)). */
    if (channels <= 0)
        return;
    const float inv_channels = 1.0f / (float)channels;

    /* input gradient, one row at a time */
    if (d_in != NULL) {
#pragma omp parallel for schedule(static) if (rows * channels >= OD_NORM_PARALLEL_MIN)
        for (int64_t r = 0; r < rows; r++) {
            const float *x = in + r * channels;
            const float *dy = d_out + r * channels;
            float *dx = d_in + r * channels;
            const float mean = saved_mean[r], rstd = saved_rstd[r];

            float sum_dxhat, sum_dxhat_xhat;
            row_grad_sums(&sum_dxhat, &sum_dxhat_xhat, dy, gamma, x, mean, channels);
            sum_dxhat_xhat *= rstd;
            const float mean_dxhat = sum_dxhat * inv_channels;
            const float mean_dxhat_xhat = sum_dxhat_xhat * inv_channels;
#pragma omp simd
            for (int64_t c = 0; c < channels; c++) {
                const float dxhat = dy[c] * (gamma != NULL ? gamma[c] : 1.0f);
                const float xhat = (x[c] - mean) * rstd;
                dx[c] += rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
            }
        }
    }

    /* weight gradients: sums over rows, one task per chunk of channels so
     * that each sum runs in row order whatever the thread count */
    if (d_gamma == NULL && d_beta == NULL)
        return;
    const int64_t chunks = (channels + OD_LAYERNORM_GRAD_CHUNK - 1) / OD_LAYERNORM_GRAD_CHUNK;
    const int64_t block = block_rows(OD_LAYERNORM_GRAD_CHUNK);
#pragma omp parallel for schedule(static) if (rows * channels >= OD_NORM_PARALLEL_MIN)
    for (int64_t k = 0; k < chunks; k++) {
        const int64_t c0 = k * OD_LAYERNORM_GRAD_CHUNK;
        const int64_t width = min_i64(OD_LAYERNORM_GRAD_CHUNK, channels - c0);
        double total_dy[OD_LAYERNORM_GRAD_CHUNK] = {0};
        double total_dy_xhat[OD_LAYERNORM_GRAD_CHUNK] = {0};
        for (int64_t r0 = 0; r0 < rows; r0 += block) {
            const int64_t r1 = min_i64(rows, r0 + block);
            float block_dy[OD_LAYERNORM_GRAD_CHUNK] = {0};
            float block_dy_xhat[OD_LAYERNORM_GRAD_CHUNK] = {0};
            for (int64_t r = r0; r < r1; r++) {
                const float *x = in + r * channels + c0;
                const float *dy = d_out + r * channels + c0;
                const float mean = saved_mean[r], rstd = saved_rstd[r];
#pragma omp simd
                for (int64_t c = 0; c < width; c++) {
                    block_dy[c] += dy[c];
                    block_dy_xhat[c] += dy[c] * (x[c] - mean) * rstd;
                }
            }
            for (int64_t c = 0; c < width; c++) {
                total_dy[c] += (double)block_dy[c];
                total_dy_xhat[c] += (double)block_dy_xhat[c];
            }
        }
        for (int64_t c = 0; c < width; c++) {
            if (d_beta != NULL)
                d_beta[c0 + c] += (float)total_dy[c];
            if (d_gamma != NULL)
                d_gamma[c0 + c] += (float)total_dy_xhat[c];
        }
    }
}
