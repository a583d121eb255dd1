/* Multi-head attention: dense and sparse scaled dot-product kernels and the
 * torch.nn.MultiheadAttention-compatible layer around them. See
 * attention.h for the layouts and the sparse index semantics. */
#include "nn/attention.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/gemm.h"
#include "core/mem.h"

/* ---- shared helpers ----------------------------------------------------- */

/* Below this argument expf underflows to subnormals; the softmax treats the
 * term as zero. */
#define EXP_UNDERFLOW_ARGUMENT (-87.0f)
#define EXP_OVERFLOW_ARGUMENT 88.0f

/* exp(x) that gcc vectorises inside a loop (glibc's expf is a scalar call).
 * x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2, then
 * exp(r) by its degree-7 Taylor polynomial (truncation error below
 * 1e-8 relative) and 2^n by writing the exponent bits. The relative error
 * is a few float ulps over [-87, 88]; arguments below -87 return 0. */
static inline float attention_exp(float x)
{
    const float clamped = x < EXP_UNDERFLOW_ARGUMENT
                              ? EXP_UNDERFLOW_ARGUMENT
                              : (x > EXP_OVERFLOW_ARGUMENT ? EXP_OVERFLOW_ARGUMENT : x);
    /* Adding and subtracting 1.5 * 2^23 rounds to the nearest integer. */
    const float round_shift = 12582912.0f;
    const float n = (clamped * 1.44269504088896341f + round_shift) - round_shift;
    /* ln2 split in a part with few mantissa bits, so n * ln2_high is exact. */
    const float r = (clamped - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t bits;
        float value;
    } scale;
    scale.bits = ((int32_t)n + 127) << 23;
    return x < EXP_UNDERFLOW_ARGUMENT ? 0.0f : p * scale.value;
}

/* Partial sums that a dot product keeps, one AVX-512 register of floats. */
#define DOT_LANES 16

/* Replaces row[0..n) by the softmax of scale * row, for scale > 0. The
 * maximum and the sum keep DOT_LANES partial results, like dot(), so that
 * gcc vectorises them in a fixed order. */
static void softmax_in_place(float *row, int64_t n, float scale)
{
    float max = row[0];
    int64_t j = 0;
    if (n >= DOT_LANES) {
        float lanes[DOT_LANES];
        for (int l = 0; l < DOT_LANES; l++)
            lanes[l] = row[l];
        for (j = DOT_LANES; j + DOT_LANES <= n; j += DOT_LANES)
            for (int l = 0; l < DOT_LANES; l++)
                lanes[l] = row[j + l] > lanes[l] ? row[j + l] : lanes[l];
        for (int l = 0; l < DOT_LANES; l++)
            max = lanes[l] > max ? lanes[l] : max;
    }
    for (; j < n; j++)
        max = row[j] > max ? row[j] : max;

    /* exp(scale * (x - max)) <= 1, and the maximum term is exp(0) = 1, so
     * the sum is at least 1. */
    float lanes[DOT_LANES];
    for (int l = 0; l < DOT_LANES; l++)
        lanes[l] = 0.0f;
    for (j = 0; j + DOT_LANES <= n; j += DOT_LANES) {
        for (int l = 0; l < DOT_LANES; l++) {
            row[j + l] = attention_exp(scale * (row[j + l] - max));
            lanes[l] += row[j + l];
        }
    }
    float sum = 0.0f;
    for (; j < n; j++) {
        row[j] = attention_exp(scale * (row[j] - max));
        sum += row[j];
    }
    for (int l = 0; l < DOT_LANES; l++)
        sum += lanes[l];
    const float inverse = 1.0f / sum;
#pragma omp simd
    for (j = 0; j < n; j++)
        row[j] *= inverse;
}

/* How many keys ahead the sparse kernels prefetch the gathered rows: far
 * enough to cover an L3 or DRAM miss while the current key is processed. */
#define PREFETCH_KEYS_AHEAD 4
#define CACHE_LINE_FLOATS 16

/* Requests the cache lines of row[0..n) ahead of use. */
static inline void prefetch_row(const float *row, int64_t n)
{
    for (int64_t c = 0; c < n; c += CACHE_LINE_FLOATS)
        __builtin_prefetch(row + c, 0, 3);
}

/* Returns a . b over n floats. The products go into DOT_LANES partial sums
 * that are folded in halves at the end: gcc vectorises this without
 * -ffast-math, and the order is fixed. The products and sums are separate
 * roundings (no FMA contraction in ISO C mode). */
static inline float dot(const float *a, const float *b, int64_t n)
{
    float lanes[DOT_LANES];
    for (int l = 0; l < DOT_LANES; l++)
        lanes[l] = 0.0f;
    int64_t i = 0;
    for (; i + DOT_LANES <= n; i += DOT_LANES) {
        for (int l = 0; l < DOT_LANES; l++)
            lanes[l] += a[i + l] * b[i + l];
    }
    for (int l = 0; l < DOT_LANES / 2; l++)
        lanes[l] += lanes[l + DOT_LANES / 2];
    for (int l = 0; l < DOT_LANES / 4; l++)
        lanes[l] += lanes[l + DOT_LANES / 4];
    for (int l = 0; l < DOT_LANES / 8; l++)
        lanes[l] += lanes[l + DOT_LANES / 8];
    float sum = lanes[0] + lanes[1];
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

/* Returns a buffer of count floats for data that is written in full before
 * it is read, without zeroing it first; od_free releases it. */
static float *alloc_floats_unset(int64_t count)
{
    return od_alloc_aligned((size_t)count * sizeof(float));
}

/* Returns 1 when every size is positive and the product of all of them
 * fits in int64_t, so that every buffer size and offset below does too. */
static int sizes_valid(const int64_t *sizes, int count)
{
    int64_t product = 1;
    for (int i = 0; i < count; i++) {
        if (sizes[i] <= 0 || __builtin_mul_overflow(product, sizes[i], &product))
            return 0;
    }
    return 1;
}

static int check_kernel_sizes(const char *operation, int64_t B, int64_t Tq, int64_t Tk, int64_t K,
                              int64_t H, int64_t Dh, od_error *err)
{
    /* The largest buffers are (B, H, Tq, Tk) or (B, H, Tq, K) floats and the
     * sparse backward's (B, Tq, K, 2H) scratch. */
    const int64_t sizes[7] = {B, Tq, Tk > K ? Tk : K, H, Dh, 2, (int64_t)sizeof(float)};
    if (Tk <= 0 || K <= 0 || !sizes_valid(sizes, 7) || Tk > INT32_MAX)
        return od_fail(err,
                       "%s: invalid sizes B=%lld Tq=%lld Tk=%lld K=%lld H=%lld Dh=%lld; expected "
                       "positive sizes, Tk <= %d and buffers that fit in memory",
                       operation, (long long)B, (long long)Tq, (long long)Tk, (long long)K,
                       (long long)H, (long long)Dh, INT32_MAX);
    return 0;
}

/* ---- dense attention ----------------------------------------------------- */

int od_attention_forward(float *out, float *saved_probs, const float *q, const float *k,
                         const float *v, int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t Dh,
                         od_error *err)
{
    /* q and out are (B, Tq, H*Dh); k and v are (B, Tk, H*Dh);
     * saved_probs is (B, H, Tq, Tk) or NULL. */
    if (check_kernel_sizes("attention forward", B, Tq, Tk, 1, H, Dh, err) != 0)
        return -1;
    const int64_t C = H * Dh;
    const float scale = 1.0f / sqrtf((float)Dh);
    float *scratch = NULL;
    if (saved_probs == NULL) {
        scratch = alloc_floats_unset(Tq * Tk);
        if (scratch == NULL)
            return od_fail(err, "attention forward: out of memory for %lld x %lld scores",
                           (long long)Tq, (long long)Tk);
    }

    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            const float *q_bh = q + b * Tq * C + h * Dh;
            const float *k_bh = k + b * Tk * C + h * Dh;
            const float *v_bh = v + b * Tk * C + h * Dh;
            float *probs = saved_probs != NULL ? saved_probs + (b * H + h) * Tq * Tk : scratch;

            /* scores = scale * q_h k_h^T, (Tq, Tk); then the softmax of each row. */
            od_sgemm('N', 'T', Tq, Tk, Dh, scale, q_bh, C, k_bh, C, 0.0f, probs, Tk);
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < Tq; i++)
                softmax_in_place(probs + i * Tk, Tk, 1.0f);

            /* out_h = probs v_h, (Tq, Dh), written into head h's channels. */
            od_sgemm('N', 'N', Tq, Dh, Tk, 1.0f, probs, Tk, v_bh, C, 0.0f,
                     out + b * Tq * C + h * Dh, C);
        }
    }
    od_free(scratch);
    return 0;
}

int od_attention_backward(float *d_q, float *d_k, float *d_v, const float *d_out,
                          const float *saved_probs, const float *q, const float *k,
                          const float *v, int64_t B, int64_t Tq, int64_t Tk, int64_t H,
                          int64_t Dh, od_error *err)
{
    /* d_q, d_out and q are (B, Tq, H*Dh); d_k, d_v, k and v are (B, Tk, H*Dh);
     * saved_probs is (B, H, Tq, Tk). */
    if (check_kernel_sizes("attention backward", B, Tq, Tk, 1, H, Dh, err) != 0)
        return -1;
    if (d_q == NULL && d_k == NULL && d_v == NULL)
        return 0;
    const int64_t C = H * Dh;
    const float scale = 1.0f / sqrtf((float)Dh);
    float *d_scores = NULL;
    if (d_q != NULL || d_k != NULL) {
        d_scores = alloc_floats_unset(Tq * Tk);
        if (d_scores == NULL)
            return od_fail(err, "attention backward: out of memory for %lld x %lld scores",
                           (long long)Tq, (long long)Tk);
    }

    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            const float *probs = saved_probs + (b * H + h) * Tq * Tk;
            const float *d_out_bh = d_out + b * Tq * C + h * Dh;
            const int64_t q_offset = b * Tq * C + h * Dh;
            const int64_t kv_offset = b * Tk * C + h * Dh;

            /* d_v_h += probs^T d_out_h, (Tk, Dh). */
            if (d_v != NULL)
                od_sgemm('T', 'N', Tk, Dh, Tq, 1.0f, probs, Tk, d_out_bh, C, 1.0f, d_v + kv_offset, C);
            if (d_scores == NULL)
                continue;

            /* d_probs = d_out_h v_h^T, (Tq, Tk); then through the softmax:
             * d_scores = probs * (d_probs - sum_j probs * d_probs). */
            od_sgemm('N', 'T', Tq, Tk, Dh, 1.0f, d_out_bh, C, v + kv_offset, C, 0.0f, d_scores, Tk);
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < Tq; i++) {
                const float *p = probs + i * Tk;
                float *ds = d_scores + i * Tk;
                const float weighted = dot(p, ds, Tk);
#pragma omp simd
                for (int64_t j = 0; j < Tk; j++)
                    ds[j] = p[j] * (ds[j] - weighted);
            }

            /* d_q_h += scale d_scores k_h and d_k_h += scale d_scores^T q_h. */
            if (d_q != NULL)
                od_sgemm('N', 'N', Tq, Dh, Tk, scale, d_scores, Tk, k + kv_offset, C, 1.0f,
                         d_q + q_offset, C);
            if (d_k != NULL)
                od_sgemm('T', 'N', Tk, Dh, Tq, scale, d_scores, Tk, q + q_offset, C, 1.0f,
                         d_k + kv_offset, C);
        }
    }
    od_free(d_scores);
    return 0;
}

/* ---- sparse attention ----------------------------------------------------- */

/* How the sparse kernels lay out the H*Dh channels of a token.
 *
 * The caller's layout is head-major: channel h * Dh + d. Gathered keys give
 * no contiguous run longer than Dh per head, so per-head dot products end
 * in horizontal sums, which cost more than the products when Dh is small.
 * When H divides DOT_LANES and C is a multiple of it, the kernels first
 * copy the tokens to the head-minor layout d * H + h. There every run of
 * DOT_LANES channels contains DOT_LANES / H channels of each head, always
 * in the same lane positions. One pass over all C channels then yields
 * every head's dot product after folding the lanes down to H, and a
 * per-head weight becomes one repeated lane pattern. */
typedef struct head_layout {
    int64_t H, Dh, C;
    int head_minor; /* 1: channel d * H + h; 0: channel h * Dh + d */
} head_layout;

static head_layout head_layout_choose(int64_t H, int64_t Dh)
{
    head_layout layout = {H, Dh, H * Dh, 0};
    layout.head_minor = DOT_LANES % H == 0 && (H * Dh) % DOT_LANES == 0;
    return layout;
}

/* dst and src are (rows, C): dst[r][d * H + h] = src[r][h * Dh + d]. */
static void to_head_minor(float *dst, const float *src, int64_t rows, const head_layout *layout)
{
    const int64_t H = layout->H, Dh = layout->Dh, C = layout->C;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t h = 0; h < H; h++)
            for (int64_t d = 0; d < Dh; d++)
                dst[r * C + d * H + h] = src[r * C + h * Dh + d];
    }
}

/* Adds one row in the kernels' layout to a row in the caller's layout:
 * dst (C) += src (C), or dst = src when overwrite is set. */
static void add_row_to_head_major(float *dst, const float *src, const head_layout *layout,
                                  int overwrite)
{
    const int64_t H = layout->H, Dh = layout->Dh, C = layout->C;
    if (!layout->head_minor) {
        if (overwrite) {
            memcpy(dst, src, (size_t)C * sizeof(float));
        } else {
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                dst[c] += src[c];
        }
        return;
    }
    for (int64_t h = 0; h < H; h++) {
        for (int64_t d = 0; d < Dh; d++) {
            const float value = src[d * H + h];
            dst[h * Dh + d] = overwrite ? value : dst[h * Dh + d] + value;
        }
    }
}

/* head_dots and add_scaled_heads in the head-minor layout, for a constant
 * number of heads (a power of two up to DOT_LANES) that the switches below
 * pass in, so that gcc unrolls the lane folds and patterns into a few
 * vector instructions. */
static inline void head_dots_minor(float *out, int64_t stride, const float *a, const float *b,
                                   int64_t C, const int heads)
{
    /* Four registers of partial sums, so that the additions of one chunk
     * need not wait for those of the previous one. Lane l sums head
     * l % heads, because heads divides DOT_LANES. */
    float lanes[4 * DOT_LANES];
    for (int l = 0; l < 4 * DOT_LANES; l++)
        lanes[l] = 0.0f;
    int64_t c = 0;
    for (; c + 4 * DOT_LANES <= C; c += 4 * DOT_LANES) {
        for (int l = 0; l < 4 * DOT_LANES; l++)
            lanes[l] += a[c + l] * b[c + l];
    }
    for (; c < C; c += DOT_LANES) {
        for (int l = 0; l < DOT_LANES; l++)
            lanes[l] += a[c + l] * b[c + l];
    }
    /* Fold the halves until `heads` lanes remain; the conditions are
     * constant after inlining. */
    for (int l = 0; l < 2 * DOT_LANES; l++)
        lanes[l] += lanes[l + 2 * DOT_LANES];
    for (int l = 0; l < DOT_LANES; l++)
        lanes[l] += lanes[l + DOT_LANES];
    if (heads <= DOT_LANES / 2)
        for (int l = 0; l < DOT_LANES / 2; l++)
            lanes[l] += lanes[l + DOT_LANES / 2];
    if (heads <= DOT_LANES / 4)
        for (int l = 0; l < DOT_LANES / 4; l++)
            lanes[l] += lanes[l + DOT_LANES / 4];
    if (heads <= DOT_LANES / 8)
        for (int l = 0; l < DOT_LANES / 8; l++)
            lanes[l] += lanes[l + DOT_LANES / 8];
    if (heads <= DOT_LANES / 16)
        lanes[0] += lanes[1];
    for (int h = 0; h < heads; h++)
        out[h * stride] = lanes[h];
}

static inline void add_scaled_heads_minor(float *acc, const float *weight, const float *x,
                                          int64_t C, const int heads)
{
    float pattern[DOT_LANES];
    for (int l = 0; l < DOT_LANES; l++)
        pattern[l] = weight[l % heads];
    for (int64_t c = 0; c < C; c += DOT_LANES) {
        for (int l = 0; l < DOT_LANES; l++)
            acc[c + l] += pattern[l] * x[c + l];
    }
}

/* out[h * stride] = a_h . b_h for every head h of two rows (C) in the
 * kernels' layout. */
static inline void head_dots(float *out, int64_t stride, const float *a, const float *b,
                             const head_layout *layout)
{
    const int64_t H = layout->H, Dh = layout->Dh, C = layout->C;
    if (layout->head_minor) {
        switch (H) {
        case 1: head_dots_minor(out, stride, a, b, C, 1); return;
        case 2: head_dots_minor(out, stride, a, b, C, 2); return;
        case 4: head_dots_minor(out, stride, a, b, C, 4); return;
        case 8: head_dots_minor(out, stride, a, b, C, 8); return;
        default: head_dots_minor(out, stride, a, b, C, 16); return;
        }
    }
    for (int64_t h = 0; h < H; h++)
        out[h * stride] = dot(a + h * Dh, b + h * Dh, Dh);
}

/* acc += weight_h * x_h for every head h: acc and x are rows (C) in the
 * kernels' layout, weight is (H). */
static inline void add_scaled_heads(float *acc, const float *weight, const float *x,
                                    const head_layout *layout)
{
    const int64_t H = layout->H, Dh = layout->Dh, C = layout->C;
    if (layout->head_minor) {
        switch (H) {
        case 1: add_scaled_heads_minor(acc, weight, x, C, 1); return;
        case 2: add_scaled_heads_minor(acc, weight, x, C, 2); return;
        case 4: add_scaled_heads_minor(acc, weight, x, C, 4); return;
        case 8: add_scaled_heads_minor(acc, weight, x, C, 8); return;
        default: add_scaled_heads_minor(acc, weight, x, C, 16); return;
        }
    }
    for (int64_t h = 0; h < H; h++) {
        const float w = weight[h];
#pragma omp simd
        for (int64_t d = 0; d < Dh; d++)
            acc[h * Dh + d] += w * x[h * Dh + d];
    }
}

static int check_index(const char *operation, const int32_t *index, int64_t B, int64_t Tq, int64_t Tk,
                       int64_t K, od_error *err)
{
    if (index == NULL)
        return od_fail(err, "%s: the index array is NULL", operation);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t i = 0; i < Tq; i++) {
            const int32_t *slots = index + (b * Tq + i) * K;
            for (int64_t j = 0; j < K; j++) {
                if (slots[j] < 0 || slots[j] >= Tk)
                    return od_fail(err,
                                   "%s: batch item %lld, query %lld, slot %lld lists key %d, "
                                   "outside the %lld keys [0, %lld)",
                                   operation, (long long)b, (long long)i, (long long)j, (int)slots[j],
                                   (long long)Tk, (long long)Tk);
            }
        }
    }
    return 0;
}

/* Copies of the (rows, C) inputs in the kernels' layout; when that is the
 * caller's layout the pointers alias the inputs and nothing is allocated. */
typedef struct layout_copies {
    const float *rows[4];
    float *owned[4];
} layout_copies;

static int layout_copies_make(layout_copies *copies, const float *const *inputs,
                              const int64_t *row_counts, int count, const head_layout *layout)
{
    memset(copies, 0, sizeof *copies);
    for (int n = 0; n < count; n++) {
        if (!layout->head_minor) {
            copies->rows[n] = inputs[n];
            continue;
        }
        copies->owned[n] = alloc_floats_unset(row_counts[n] * layout->C);
        if (copies->owned[n] == NULL)
            return -1;
        to_head_minor(copies->owned[n], inputs[n], row_counts[n], layout);
        copies->rows[n] = copies->owned[n];
    }
    return 0;
}

static void layout_copies_release(layout_copies *copies)
{
    for (int n = 0; n < 4; n++)
        od_free(copies->owned[n]);
}

/* Prefetches the rows of the keys that slot j + PREFETCH_KEYS_AHEAD lists,
 * from `rows` (Tk, C), and past the end of the list from `next_rows`, which
 * the next phase walks from slot 0 (NULL: none). */
static inline void prefetch_ahead(const float *rows, const float *next_rows, const int32_t *slots,
                                  int64_t j, int64_t K, int64_t C)
{
    const int64_t ahead = j + PREFETCH_KEYS_AHEAD;
    if (ahead < K)
        prefetch_row(rows + (int64_t)slots[ahead] * C, C);
    else if (next_rows != NULL && ahead - K < K)
        prefetch_row(next_rows + (int64_t)slots[ahead - K] * C, C);
}

int od_sparse_attention_forward(float *out, float *saved_probs, const float *q, const float *k,
                                const float *v, const int32_t *index, int64_t B, int64_t Tq,
                                int64_t Tk, int64_t K, int64_t H, int64_t Dh, od_error *err)
{
    /* q and out are (B, Tq, H*Dh); k and v are (B, Tk, H*Dh);
     * index is (B, Tq, K); saved_probs is (B, H, Tq, K) or NULL. */
    const char *operation = "sparse attention forward";
    if (check_kernel_sizes(operation, B, Tq, Tk, K, H, Dh, err) != 0 ||
        check_index(operation, index, B, Tq, Tk, K, err) != 0)
        return -1;
    const head_layout layout = head_layout_choose(H, Dh);
    const int64_t C = layout.C;
    const float scale = 1.0f / sqrtf((float)Dh);
    const int threads = omp_get_max_threads();

    /* Per thread: the probabilities of its current query (H, K), the output
     * row in the kernels' layout (C) and one key's weights (H). */
    const int64_t per_thread = H * K + C + H;
    float *thread_scratch = od_alloc_floats((int64_t)threads * per_thread);
    layout_copies copies;
    const float *inputs[3] = {q, k, v};
    const int64_t row_counts[3] = {B * Tq, B * Tk, B * Tk};
    int copies_failed = layout_copies_make(&copies, inputs, row_counts, 3, &layout);
    if (thread_scratch == NULL || copies_failed != 0) {
        od_free(thread_scratch);
        layout_copies_release(&copies);
        return od_fail(err, "%s: out of memory for the scratch buffers", operation);
    }
    const float *q_rows = copies.rows[0], *k_rows = copies.rows[1], *v_rows = copies.rows[2];

#pragma omp parallel num_threads(threads)
    {
        float *probs = thread_scratch + (int64_t)omp_get_thread_num() * per_thread;
        float *out_acc = probs + H * K;
        float *key_weights = out_acc + C;
#pragma omp for schedule(static)
        for (int64_t row = 0; row < B * Tq; row++) {
            const int64_t b = row / Tq, i = row % Tq;
            const float *q_row = q_rows + row * C;
            const int32_t *slots = index + row * K;
            const float *k_b = k_rows + b * Tk * C;
            const float *v_b = v_rows + b * Tk * C;

            /* scores of every head against each listed key, (H, K). */
            for (int64_t j = 0; j < K; j++) {
                prefetch_ahead(k_b, v_b, slots, j, K, C);
                head_dots(probs + j, K, q_row, k_b + (int64_t)slots[j] * C, &layout);
            }
            for (int64_t h = 0; h < H; h++) {
                float *head_probs = probs + h * K;
                softmax_in_place(head_probs, K, scale);
                if (saved_probs != NULL)
                    memcpy(saved_probs + ((b * H + h) * Tq + i) * K, head_probs,
                           (size_t)K * sizeof(float));
            }

            /* out_h = sum_j probs[h][j] v[slots[j]]_h */
            memset(out_acc, 0, (size_t)C * sizeof(float));
            for (int64_t j = 0; j < K; j++) {
                prefetch_ahead(v_b, NULL, slots, j, K, C);
                for (int64_t h = 0; h < H; h++)
                    key_weights[h] = probs[h * K + j];
                add_scaled_heads(out_acc, key_weights, v_b + (int64_t)slots[j] * C, &layout);
            }
            add_row_to_head_major(out + row * C, out_acc, &layout, 1);
        }
    }
    od_free(thread_scratch);
    layout_copies_release(&copies);
    return 0;
}

/* The transpose of the index lists of one call: for each key (b, t), the
 * entries e = i * K + j of the queries i of batch item b whose slot j lists
 * t, in increasing order of e. */
typedef struct key_lists {
    int64_t *start; /* (B * Tk + 1), key b * Tk + t owns [start[..], start[.. + 1]) */
    int64_t *entry; /* (B * Tq * K) */
} key_lists;

static int key_lists_build(key_lists *lists, const int32_t *index, int64_t B, int64_t Tq,
                           int64_t Tk, int64_t K)
{
    lists->start = od_alloc_aligned((size_t)(B * Tk + 1) * sizeof(int64_t));
    lists->entry = od_alloc_aligned((size_t)(B * Tq * K) * sizeof(int64_t));
    int64_t *fill = od_alloc_aligned((size_t)(B * Tk) * sizeof(int64_t));
    if (lists->start == NULL || lists->entry == NULL || fill == NULL) {
        od_free(fill);
        return -1;
    }

    /* A counting sort over the keys: count, prefix sums, then place the
     * entries in increasing order, so each list comes out sorted. */
    memset(lists->start, 0, (size_t)(B * Tk + 1) * sizeof(int64_t));
    for (int64_t b = 0; b < B; b++) {
        const int32_t *slots = index + b * Tq * K;
        int64_t *count = lists->start + b * Tk + 1;
        for (int64_t e = 0; e < Tq * K; e++)
            count[slots[e]]++;
    }
    for (int64_t key = 0; key < B * Tk; key++)
        lists->start[key + 1] += lists->start[key];
    memcpy(fill, lists->start, (size_t)(B * Tk) * sizeof(int64_t));
    for (int64_t b = 0; b < B; b++) {
        const int32_t *slots = index + b * Tq * K;
        int64_t *next = fill + b * Tk;
        for (int64_t e = 0; e < Tq * K; e++)
            lists->entry[next[slots[e]]++] = e;
    }
    od_free(fill);
    return 0;
}

static void key_lists_release(key_lists *lists)
{
    od_free(lists->start);
    od_free(lists->entry);
}

int od_sparse_attention_backward(float *d_q, float *d_k, float *d_v, const float *d_out,
                                 const float *saved_probs, const float *q, const float *k,
                                 const float *v, const int32_t *index, int64_t B, int64_t Tq,
                                 int64_t Tk, int64_t K, int64_t H, int64_t Dh, od_error *err)
{
    /* d_q, d_out and q are (B, Tq, H*Dh); d_k, d_v, k and v are (B, Tk, H*Dh);
     * index is (B, Tq, K); saved_probs is (B, H, Tq, K). */
    const char *operation = "sparse attention backward";
    if (check_kernel_sizes(operation, B, Tq, Tk, K, H, Dh, err) != 0 ||
        check_index(operation, index, B, Tq, Tk, K, err) != 0)
        return -1;
    if (d_q == NULL && d_k == NULL && d_v == NULL)
        return 0;
    const head_layout layout = head_layout_choose(H, Dh);
    const int64_t C = layout.C;
    const float scale = 1.0f / sqrtf((float)Dh);
    const int threads = omp_get_max_threads();
    const int need_scores = d_q != NULL || d_k != NULL;
    const int need_key_pass = d_k != NULL || d_v != NULL;

    /* weights contains, per entry (b, i, j), the H probabilities and then the H
     * score gradients, already times scale: (B, Tq, K, 2H). Entry-major, so
     * that the key-major pass reads one contiguous run per entry. The score
     * gradients are written, and read, only when d_q or d_k is requested. */
    float *weights = alloc_floats_unset(B * Tq * K * 2 * H);
    /* Per thread: d_probs (H, K) and two accumulator rows (C). */
    const int64_t per_thread = H * K + 2 * C;
    float *thread_scratch = od_alloc_floats((int64_t)threads * per_thread);
    key_lists lists = {NULL, NULL};
    int failed = need_key_pass ? key_lists_build(&lists, index, B, Tq, Tk, K) : 0;
    layout_copies copies;
    const float *inputs[4] = {q, k, v, d_out};
    const int64_t row_counts[4] = {B * Tq, B * Tk, B * Tk, B * Tq};
    failed |= layout_copies_make(&copies, inputs, row_counts, 4, &layout);
    if (weights == NULL || thread_scratch == NULL || failed != 0) {
        od_free(weights);
        od_free(thread_scratch);
        key_lists_release(&lists);
        layout_copies_release(&copies);
        return od_fail(err, "%s: out of memory for the scratch buffers", operation);
    }
    const float *q_rows = copies.rows[0], *k_rows = copies.rows[1], *v_rows = copies.rows[2];
    const float *d_out_rows = copies.rows[3];

#pragma omp parallel num_threads(threads)
    {
        float *d_probs = thread_scratch + (int64_t)omp_get_thread_num() * per_thread;
        float *acc_a = d_probs + H * K, *acc_b = acc_a + C;

        /* Pass 1, query-major: d_probs, d_scores and d_q of each query. */
#pragma omp for schedule(static)
        for (int64_t row = 0; row < B * Tq; row++) {
            const int64_t b = row / Tq, i = row % Tq;
            const int32_t *slots = index + row * K;
            const float *d_out_row = d_out_rows + row * C;
            const float *k_b = k_rows + b * Tk * C;
            const float *v_b = v_rows + b * Tk * C;
            float *row_weights = weights + row * K * 2 * H;

            for (int64_t h = 0; h < H; h++) {
                const float *p = saved_probs + ((b * H + h) * Tq + i) * K;
                for (int64_t j = 0; j < K; j++)
                    row_weights[j * 2 * H + h] = p[j];
            }
            if (!need_scores)
                continue;

            /* d_probs[h][j] = d_out_h . v[slots[j]]_h */
            for (int64_t j = 0; j < K; j++) {
                prefetch_ahead(v_b, d_q != NULL ? k_b : NULL, slots, j, K, C);
                head_dots(d_probs + j, K, d_out_row, v_b + (int64_t)slots[j] * C, &layout);
            }
            /* Through the softmax: d_scores = p * (d_probs - sum_j p d_probs),
             * times scale for the gradients of q and k. */
            for (int64_t h = 0; h < H; h++) {
                const float *p = saved_probs + ((b * H + h) * Tq + i) * K;
                const float weighted = dot(p, d_probs + h * K, K);
                for (int64_t j = 0; j < K; j++)
                    row_weights[j * 2 * H + H + h] = scale * p[j] * (d_probs[h * K + j] - weighted);
            }

            /* d_q_h += sum_j d_scores[h][j] k[slots[j]]_h */
            if (d_q != NULL) {
                memset(acc_a, 0, (size_t)C * sizeof(float));
                for (int64_t j = 0; j < K; j++) {
                    prefetch_ahead(k_b, NULL, slots, j, K, C);
                    add_scaled_heads(acc_a, row_weights + j * 2 * H + H,
                                     k_b + (int64_t)slots[j] * C, &layout);
                }
                add_row_to_head_major(d_q + row * C, acc_a, &layout, 0);
            }
        }

        /* Pass 2, key-major: each key sums the contributions of the entries
         * that list it, in increasing entry order, then adds them to d_k and
         * d_v once. One thread owns a key, so the order and the result do
         * not depend on the thread count or the schedule. */
        if (need_key_pass) {
            float *sum_k = acc_a, *sum_v = acc_b;
#pragma omp for schedule(dynamic, 64)
            for (int64_t key = 0; key < B * Tk; key++) {
                const int64_t b = key / Tk;
                memset(sum_k, 0, (size_t)(2 * C) * sizeof(float));
                const int64_t end = lists.start[key + 1];
                for (int64_t n = lists.start[key]; n < end; n++) {
                    /* The entries come from scattered queries: fetch ahead. */
                    if (n + PREFETCH_KEYS_AHEAD < end) {
                        const int64_t ahead = lists.entry[n + PREFETCH_KEYS_AHEAD];
                        const int64_t ahead_row = b * Tq + ahead / K;
                        __builtin_prefetch(weights + (b * Tq * K + ahead) * 2 * H, 0, 3);
                        if (d_v != NULL)
                            prefetch_row(d_out_rows + ahead_row * C, C);
                        if (d_k != NULL)
                            prefetch_row(q_rows + ahead_row * C, C);
                    }
                    const int64_t e = lists.entry[n];
                    const int64_t row = b * Tq + e / K;
                    const float *entry_weights = weights + (b * Tq * K + e) * 2 * H;
                    if (d_v != NULL)
                        add_scaled_heads(sum_v, entry_weights, d_out_rows + row * C, &layout);
                    if (d_k != NULL)
                        add_scaled_heads(sum_k, entry_weights + H, q_rows + row * C, &layout);
                }
                if (d_k != NULL)
                    add_row_to_head_major(d_k + key * C, sum_k, &layout, 0);
                if (d_v != NULL)
                    add_row_to_head_major(d_v + key * C, sum_v, &layout, 0);
            }
        }
    }

    od_free(weights);
    od_free(thread_scratch);
    key_lists_release(&lists);
    layout_copies_release(&copies);
    return 0;
}

/* ---- multi-head attention layer ------------------------------------------ */

static int check_layer_sizes(const char *operation, int sparse, int64_t B, int64_t Tq, int64_t Tk,
                             int64_t C, int64_t H, int64_t K, od_error *err)
{
    if (H <= 0 || C <= 0 || C % H != 0)
        return od_fail(err, "%s: %lld channels do not split into %lld heads; expected C a "
                            "positive multiple of H",
                       operation, (long long)C, (long long)H);
    if (sparse && K <= 0)
        return od_fail(err, "%s: sparse attention with K=%lld keys per query; expected K >= 1",
                       operation, (long long)K);
    /* The weights are (3C, C) and the activations (B, T, C) floats. */
    const int64_t weight_bytes[4] = {3, C, C, (int64_t)sizeof(float)};
    const int64_t activation_bytes[4] = {B, Tq > Tk ? Tq : Tk, C, (int64_t)sizeof(float)};
    if (!sizes_valid(weight_bytes, 4) || !sizes_valid(activation_bytes, 4))
        return od_fail(err, "%s: invalid sizes B=%lld Tq=%lld Tk=%lld C=%lld", operation, (long long)B,
                       (long long)Tq, (long long)Tk, (long long)C);
    return check_kernel_sizes(operation, B, Tq, Tk, sparse ? K : 1, H, C / H, err);
}

int od_mha_saved_alloc(od_mha_saved *saved, int64_t B, int64_t Tq, int64_t Tk, int64_t C,
                       int64_t H, int64_t K, od_error *err)
{
    memset(saved, 0, sizeof *saved);
    if (check_layer_sizes("multi-head attention", K > 0, B, Tq, Tk, C, H, K, err) != 0)
        return -1;
    saved->q = od_alloc_floats(B * Tq * C);
    saved->k = od_alloc_floats(B * Tk * C);
    saved->v = od_alloc_floats(B * Tk * C);
    saved->context = od_alloc_floats(B * Tq * C);
    saved->probs = od_alloc_floats(B * H * Tq * (K > 0 ? K : Tk));
    if (saved->q == NULL || saved->k == NULL || saved->v == NULL || saved->context == NULL ||
        saved->probs == NULL) {
        od_mha_saved_release(saved);
        return od_fail(err, "multi-head attention: out of memory for the saved activations");
    }
    return 0;
}

void od_mha_saved_release(od_mha_saved *saved)
{
    od_free(saved->q);
    od_free(saved->k);
    od_free(saved->v);
    od_free(saved->context);
    od_free(saved->probs);
    memset(saved, 0, sizeof *saved);
}

/* out = in weight^T + bias. in and out are (rows, C); weight is (C, C)
 * (out, in), bias is (C) or NULL. */
static void linear_forward(float *out, const float *in, const float *weight, const float *bias,
                           int64_t rows, int64_t C)
{
    if (bias != NULL) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            memcpy(out + r * C, bias, (size_t)C * sizeof(float));
    }
    od_sgemm('N', 'T', rows, C, C, 1.0f, in, C, weight, C, bias != NULL ? 1.0f : 0.0f, out, C);
}

/* Backward of linear_forward: d_in += d_out weight, d_weight += d_out^T in,
 * d_bias += column sums of d_out. Any gradient may be NULL. */
static void linear_backward(float *d_in, float *d_weight, float *d_bias, const float *d_out,
                            const float *in, const float *weight, int64_t rows, int64_t C)
{
    if (d_in != NULL)
        od_sgemm('N', 'N', rows, C, C, 1.0f, d_out, C, weight, C, 1.0f, d_in, C);
    if (d_weight != NULL)
        od_sgemm('T', 'N', C, C, rows, 1.0f, d_out, C, in, C, 1.0f, d_weight, C);
    if (d_bias != NULL) {
        /* Serial over rows, vectorised over channels: a fixed order, and
         * cheap next to the products above. */
        for (int64_t r = 0; r < rows; r++) {
            const float *d_out_row = d_out + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                d_bias[c] += d_out_row[c];
        }
    }
}

static const float *offset_or_null(const float *base, int64_t offset)
{
    return base != NULL ? base + offset : NULL;
}

static float *offset_or_null_mutable(float *base, int64_t offset)
{
    return base != NULL ? base + offset : NULL;
}

int od_mha_forward(float *out, od_mha_saved *saved, const float *query, const float *key,
                   const float *value, const int32_t *index, const od_mha_params *params,
                   int64_t B, int64_t Tq, int64_t Tk, int64_t C, int64_t H, int64_t K,
                   od_error *err)
{
    /* query and out are (B, Tq, C); key and value are (B, Tk, C);
     * index is (B, Tq, K) or NULL; params as in od_mha_params. */
    const char *operation = "multi-head attention forward";
    if (check_layer_sizes(operation, index != NULL, B, Tq, Tk, C, H, K, err) != 0)
        return -1;
    if (index != NULL && check_index(operation, index, B, Tq, Tk, K, err) != 0)
        return -1;
    od_mha_saved local = {NULL, NULL, NULL, NULL, NULL};
    if (saved == NULL) {
        local.q = alloc_floats_unset(B * Tq * C);
        local.k = alloc_floats_unset(B * Tk * C);
        local.v = alloc_floats_unset(B * Tk * C);
        local.context = alloc_floats_unset(B * Tq * C);
        if (local.q == NULL || local.k == NULL || local.v == NULL || local.context == NULL) {
            od_mha_saved_release(&local);
            return od_fail(err, "%s: out of memory for the projections", operation);
        }
    }
    const od_mha_saved *buffers = saved != NULL ? saved : &local;

    /* Input projections: rows [0, C), [C, 2C) and [2C, 3C) of in_proj. */
    const float *w = params->in_proj_weight;
    const float *bias = params->in_proj_bias;
    linear_forward(buffers->q, query, w, bias, B * Tq, C);
    linear_forward(buffers->k, key, w + C * C, offset_or_null(bias, C), B * Tk, C);
    linear_forward(buffers->v, value, w + 2 * C * C, offset_or_null(bias, 2 * C), B * Tk, C);

    int status;
    if (index == NULL)
        status = od_attention_forward(buffers->context, buffers->probs, buffers->q, buffers->k,
                                      buffers->v, B, Tq, Tk, H, C / H, err);
    else
        status = od_sparse_attention_forward(buffers->context, buffers->probs, buffers->q,
                                             buffers->k, buffers->v, index, B, Tq, Tk, K, H, C / H,
                                             err);
    if (status == 0)
        linear_forward(out, buffers->context, params->out_proj_weight, params->out_proj_bias,
                       B * Tq, C);
    od_mha_saved_release(&local);
    return status;
}

int od_mha_backward(float *d_query, float *d_key, float *d_value, od_mha_params *grads,
                    const float *d_out, const od_mha_saved *saved, const float *query,
                    const float *key, const float *value, const int32_t *index,
                    const od_mha_params *params, int64_t B, int64_t Tq, int64_t Tk, int64_t C,
                    int64_t H, int64_t K, od_error *err)
{
    /* d_query, d_out and query are (B, Tq, C); d_key, d_value, key and value
     * are (B, Tk, C); index is (B, Tq, K) or NULL. grads and params are laid
     * out as od_mha_params says, and saved is what od_mha_forward wrote. */
    const char *operation = "multi-head attention backward";
    if (check_layer_sizes(operation, index != NULL, B, Tq, Tk, C, H, K, err) != 0)
        return -1;
    if (saved == NULL || saved->q == NULL || saved->k == NULL || saved->v == NULL ||
        saved->context == NULL || saved->probs == NULL)
        return od_fail(err, "%s: the saved activations are missing; pass the od_mha_saved that "
                            "od_mha_forward filled",
                       operation);
    const od_mha_params none = {NULL, NULL, NULL, NULL};
    const od_mha_params *g = grads != NULL ? grads : &none;
    const int64_t rows_q = B * Tq, rows_k = B * Tk;

    /* Which projected gradients are needed at all. */
    const int need_q = d_query != NULL || g->in_proj_weight != NULL || g->in_proj_bias != NULL;
    const int need_k = d_key != NULL || g->in_proj_weight != NULL || g->in_proj_bias != NULL;
    const int need_v = d_value != NULL || g->in_proj_weight != NULL || g->in_proj_bias != NULL;

    float *d_context = od_alloc_floats(rows_q * C);
    float *d_q = need_q ? od_alloc_floats(rows_q * C) : NULL;
    float *d_k = need_k ? od_alloc_floats(rows_k * C) : NULL;
    float *d_v = need_v ? od_alloc_floats(rows_k * C) : NULL;
    int status = 0;
    if (d_context == NULL || (need_q && d_q == NULL) || (need_k && d_k == NULL) ||
        (need_v && d_v == NULL)) {
        status = od_fail(err, "%s: out of memory for the projection gradients", operation);
        goto done;
    }

    /* Output projection: d_context = d_out out_proj_weight, and its weights. */
    linear_backward(d_context, g->out_proj_weight, g->out_proj_bias, d_out, saved->context,
                    params->out_proj_weight, rows_q, C);

    /* Attention, into the zeroed projected gradients. */
    if (index == NULL)
        status = od_attention_backward(d_q, d_k, d_v, d_context, saved->probs, saved->q, saved->k,
                                       saved->v, B, Tq, Tk, H, C / H, err);
    else
        status = od_sparse_attention_backward(d_q, d_k, d_v, d_context, saved->probs, saved->q,
                                              saved->k, saved->v, index, B, Tq, Tk, K, H, C / H,
                                              err);
    if (status != 0)
        goto done;

    /* Input projections, one after the other, so that d_query, d_key and
     * d_value may be one buffer. */
    const float *w = params->in_proj_weight;
    if (need_q)
        linear_backward(d_query, g->in_proj_weight, g->in_proj_bias, d_q, query, w, rows_q, C);
    if (need_k)
        linear_backward(d_key, offset_or_null_mutable(g->in_proj_weight, C * C),
                        offset_or_null_mutable(g->in_proj_bias, C), d_k, key, w + C * C, rows_k, C);
    if (need_v)
        linear_backward(d_value, offset_or_null_mutable(g->in_proj_weight, 2 * C * C),
                        offset_or_null_mutable(g->in_proj_bias, 2 * C), d_v, value, w + 2 * C * C,
                        rows_k, C);

done:
    od_free(d_context);
    od_free(d_q);
    od_free(d_k);
    od_free(d_v);
    return status;
}
