#include "eval/pca.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/gemm.h"
#include "core/mem.h"
#include "io/safetensors.h"

struct od_pca_accumulator {
    int64_t channels;   /* C */
    int64_t rows;       /* rows added, buffered ones included */
    int have_shift;
    double *shift;      /* (C), the first row added */
    double *sum;        /* (C), sum of (row - shift) */
    double *outer;      /* (C, C), upper triangle: sum of (row - shift)(row - shift)^T */
    double *chunk;      /* (OD_PCA_CHUNK, C), shifted rows not yet in the sums */
    int64_t chunk_rows;
};

od_pca_accumulator *od_pca_new(int64_t channels, od_error *err)
{
    if (channels < 1 || channels > 65536) {
        od_fail(err, "od_pca_new: channels must be in 1..65536, got %lld", (long long)channels);
        return NULL;
    }
    od_pca_accumulator *acc = calloc(1, sizeof *acc);
    if (!acc) {
        od_fail(err, "od_pca_new: out of memory");
        return NULL;
    }
    acc->channels = channels;
    size_t c = (size_t)channels;
    acc->shift = calloc(c, sizeof(double));
    acc->sum = calloc(c, sizeof(double));
    acc->outer = calloc(c * c, sizeof(double));
    acc->chunk = calloc((size_t)OD_PCA_CHUNK * c, sizeof(double));
    if (!acc->shift || !acc->sum || !acc->outer || !acc->chunk) {
        od_pca_accumulator_free(acc);
        od_fail(err, "od_pca_new: out of memory for %lld channels (the covariance takes %.1f MB)",
                (long long)channels, (double)(c * c * sizeof(double)) / 1e6);
        return NULL;
    }
    return acc;
}

void od_pca_accumulator_free(od_pca_accumulator *acc)
{
    if (!acc)
        return;
    free(acc->shift);
    free(acc->sum);
    free(acc->outer);
    free(acc->chunk);
    free(acc);
}

int64_t od_pca_rows(const od_pca_accumulator *acc)
{
    return acc ? acc->rows : 0;
}

/* Adds shifted rows chunk (n, C) to sum (C) and to the upper triangle of
 * outer (C, C); entries below the diagonal hold partial sums to ignore. Each
 * outer entry belongs to one thread and takes the rows in their order, four
 * at a time from the chunk's start, so the result depends neither on the
 * thread count nor on how callers split their batches (full chunks always
 * start at a multiple of OD_PCA_CHUNK rows). */
static void add_chunk(const double *chunk, int64_t n, int64_t c, double *sum, double *outer)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < c; i++)
            sum[i] += chunk[r * c + i];
    /* Four output rows times four input rows per pass over j: sixteen
     * multiply-adds per four loads of x, which keeps the chunk's trips
     * through the L2 cache from limiting the speed. */
    const int64_t blocks = (c + 3) / 4;
#pragma omp parallel for schedule(static, 1)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t i0 = 4 * b;
        const int64_t rows_in_block = c - i0 < 4 ? c - i0 : 4;
        if (rows_in_block < 4) {
            for (int64_t i = i0; i < c; i++) {
                double *row = outer + i * c;
                for (int64_t r = 0; r < n; r++) {
                    const double *x = chunk + r * c;
                    const double a = x[i];
                    for (int64_t j = i0; j < c; j++)
                        row[j] += a * x[j];
                }
            }
            continue;
        }
        double *o0 = outer + i0 * c, *o1 = o0 + c, *o2 = o1 + c, *o3 = o2 + c;
        int64_t r = 0;
        for (; r + 4 <= n; r += 4) {
            const double *x0 = chunk + r * c, *x1 = x0 + c, *x2 = x1 + c, *x3 = x2 + c;
            const double a00 = x0[i0], a01 = x1[i0], a02 = x2[i0], a03 = x3[i0];
            const double a10 = x0[i0 + 1], a11 = x1[i0 + 1], a12 = x2[i0 + 1], a13 = x3[i0 + 1];
            const double a20 = x0[i0 + 2], a21 = x1[i0 + 2], a22 = x2[i0 + 2], a23 = x3[i0 + 2];
            const double a30 = x0[i0 + 3], a31 = x1[i0 + 3], a32 = x2[i0 + 3], a33 = x3[i0 + 3];
            for (int64_t j = i0; j < c; j++) {
                const double y0 = x0[j], y1 = x1[j], y2 = x2[j], y3 = x3[j];
                o0[j] += (a00 * y0 + a01 * y1) + (a02 * y2 + a03 * y3);
                o1[j] += (a10 * y0 + a11 * y1) + (a12 * y2 + a13 * y3);
                o2[j] += (a20 * y0 + a21 * y1) + (a22 * y2 + a23 * y3);
                o3[j] += (a30 * y0 + a31 * y1) + (a32 * y2 + a33 * y3);
            }
        }
        for (; r < n; r++) {
            const double *x = chunk + r * c;
            for (int64_t i = i0; i < i0 + 4; i++) {
                const double a = x[i];
                double *row = outer + i * c;
                for (int64_t j = i0; j < c; j++)
                    row[j] += a * x[j];
            }
        }
    }
}

int od_pca_add(od_pca_accumulator *acc, const float *rows, int64_t n, od_error *err)
{
    /* rows is (n, C) */
    if (!acc)
        return od_fail(err, "od_pca_add: accumulator is NULL");
    if (n < 0)
        return od_fail(err, "od_pca_add: row count must be >= 0, got %lld", (long long)n);
    if (n == 0)
        return 0;
    if (!rows)
        return od_fail(err, "od_pca_add: rows is NULL");
    const int64_t c = acc->channels;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < c; i++)
            if (!isfinite(rows[r * c + i]))
                return od_fail(err, "od_pca_add: row %lld, channel %lld is not finite (%g)", (long long)r,
                               (long long)i, (double)rows[r * c + i]);
    if (!acc->have_shift) {
        for (int64_t i = 0; i < c; i++)
            acc->shift[i] = rows[i];
        acc->have_shift = 1;
    }
    for (int64_t r = 0; r < n; r++) {
        double *x = acc->chunk + acc->chunk_rows * c;
        for (int64_t i = 0; i < c; i++)
            x[i] = (double)rows[r * c + i] - acc->shift[i];
        acc->chunk_rows++;
        acc->rows++;
        if (acc->chunk_rows == OD_PCA_CHUNK) {
            add_chunk(acc->chunk, acc->chunk_rows, c, acc->sum, acc->outer);
            acc->chunk_rows = 0;
        }
    }
    return 0;
}

void od_pca_free(od_pca *pca)
{
    if (!pca)
        return;
    free(pca->mean);
    free(pca->components);
    free(pca->explained_variance);
    free(pca->explained_variance_ratio);
    free(pca);
}

static od_pca *pca_alloc(int64_t channels, int64_t k)
{
    od_pca *pca = calloc(1, sizeof *pca);
    if (!pca)
        return NULL;
    pca->channels = channels;
    pca->components_count = k;
    pca->mean = calloc((size_t)channels, sizeof(float));
    pca->components = calloc((size_t)(k * channels), sizeof(float));
    pca->explained_variance = calloc((size_t)k, sizeof(float));
    pca->explained_variance_ratio = calloc((size_t)k, sizeof(float));
    if (!pca->mean || !pca->components || !pca->explained_variance || !pca->explained_variance_ratio) {
        od_pca_free(pca);
        return NULL;
    }
    return pca;
}

/* Dot product of x and y (n) with eight partial sums in a fixed order, so
 * that the compiler can vectorise it without reassociating freely and the
 * result depends only on n, never on the thread that computes it. */
static double dot(const double *x, const double *y, int64_t n)
{
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            part[l] += x[i + l] * y[i + l];
    double total = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
    for (; i < n; i++)
        total += x[i] * y[i];
    return total;
}

/* Below this many rows a parallel region costs more than it saves. */
#define EIGEN_PARALLEL_ROWS 256

/* Reduces the symmetric a (n, n, both triangles) to tridiagonal form
 * T = H_{n-3} ... H_0 a H_0 ... H_{n-3} with Householder reflections
 * H_k = I - tau_k v_k v_k^T. Writes diag (n) and off (n - 1, off[i] couples
 * i and i + 1) and, in w (n, n), Q^T = H_{n-3} ... H_0, so that
 * a = Q T Q^T. a is destroyed: row k keeps v_k in columns k + 1 .. n - 1
 * (v_k[k + 1] = 1). tau (n) is scratch. Every step updates the whole
 * trailing block row by row (both triangles), so loops run along
 * contiguous rows; each element is computed by one thread in a fixed order. */
static void tridiagonalise(double *a, int64_t n, double *diag, double *off, double *w, double *tau, double *p)
{
    for (int64_t k = 0; k + 2 < n; k++) {
        const int64_t m = n - k - 1; /* size of the trailing block */
        double *x = a + k * n + k + 1; /* (m), row k right of the diagonal */
        const double tail2 = dot(x + 1, x + 1, m - 1);
        diag[k] = a[k * n + k];
        if (tail2 == 0.0) {
            /* Already tridiagonal in this column: H_k = I. */
            tau[k] = 0.0;
            off[k] = x[0];
            continue;
        }
        const double x0 = x[0];
        const double norm = sqrt(x0 * x0 + tail2);
        /* alpha takes the sign opposite to x0 so that x0 - alpha does not
         * cancel; H_k x = alpha e_1. */
        const double alpha = x0 >= 0.0 ? -norm : norm;
        const double scale = 1.0 / (x0 - alpha);
        tau[k] = (alpha - x0) / alpha;
        off[k] = alpha;
        x[0] = 1.0;
        for (int64_t i = 1; i < m; i++)
            x[i] *= scale;
        /* p = tau B v for the trailing block B, then
         * w' = p - (tau / 2)(p . v) v and B -= v w'^T + w' v^T. */
        const double t = tau[k];
        double *block = a + (k + 1) * n + k + 1;
#pragma omp parallel for schedule(static) if (m > EIGEN_PARALLEL_ROWS)
        for (int64_t i = 0; i < m; i++)
            p[i] = t * dot(block + i * n, x, m);
        const double half = 0.5 * t * dot(p, x, m);
        for (int64_t i = 0; i < m; i++)
            p[i] -= half * x[i];
#pragma omp parallel for schedule(static) if (m > EIGEN_PARALLEL_ROWS)
        for (int64_t i = 0; i < m; i++) {
            double *row = block + i * n;
            const double vi = x[i], pi = p[i];
            for (int64_t j = 0; j < m; j++)
                row[j] -= vi * p[j] + pi * x[j];
        }
    }
    if (n >= 2) {
        diag[n - 2] = a[(n - 2) * n + n - 2];
        off[n - 2] = a[(n - 2) * n + n - 1];
        tau[n - 2] = 0.0;
    }
    diag[n - 1] = a[(n - 1) * n + n - 1];
    /* Q^T is built from the last reflection back. After step k, w contains
     * H_{n-3} ... H_k, which is the identity outside rows and columns
     * k + 1 .. n - 1, so each step touches only that block. */
    memset(w, 0, (size_t)(n * n) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        w[i * n + i] = 1.0;
    for (int64_t k = n - 3; k >= 0; k--) {
        if (tau[k] == 0.0)
            continue;
        const int64_t m = n - k - 1;
        const double *v = a + k * n + k + 1;
        const double t = tau[k];
#pragma omp parallel for schedule(static) if (m > EIGEN_PARALLEL_ROWS)
        for (int64_t i = 0; i < m; i++) {
            double *row = w + (k + 1 + i) * n + k + 1;
            const double s = t * dot(row, v, m);
            for (int64_t j = 0; j < m; j++)
                row[j] -= s * v[j];
        }
    }
}

/* Applies rotations to columns j0 .. j1 - 1 of rows of w (n, n): for
 * r = 0 .. count - 1, rows i = first[r] and i + 1 become
 *   row_i' = c row_i - s row_{i+1},  row_{i+1}' = s row_i + c row_{i+1}
 * with (c, s) = (cs[r], sn[r]), in that order. The columns go 64 at a time,
 * so that the two rows of the current rotation stay in L1. */
static void apply_rotations(double *w, int64_t n, int64_t j0, int64_t j1, const int64_t *first, const double *cs,
                            const double *sn, int64_t count)
{
    const int64_t width = 64;
    for (int64_t b0 = j0; b0 < j1; b0 += width) {
        const int64_t b1 = b0 + width < j1 ? b0 + width : j1;
        for (int64_t r = 0; r < count; r++) {
            double *ri = w + first[r] * n, *rn = ri + n;
            const double c = cs[r], s = sn[r];
            for (int64_t j = b0; j < b1; j++) {
                const double u = ri[j], v = rn[j];
                ri[j] = c * u - s * v;
                rn[j] = s * u + c * v;
            }
        }
    }
}

/* Diagonalises the symmetric tridiagonal matrix (diag (n), off (n, off[i]
 * couples i and i + 1, off[n - 1] is scratch)) by implicit QL steps with
 * Wilkinson shifts, applying each step's rotations to columns j0 .. j1 - 1
 * of the rows of w (n, n). On return diag contains the eigenvalues (unsorted)
 * and row i of w has been turned by the same rotations that carried e_i to
 * the eigenvector of diag[i]. Scratch: first, cs, sn (n each). Returns -1
 * when an eigenvalue needs more than 60 steps. The recurrence on diag and
 * off is O(n) per step and reads nothing from w, so callers may run it
 * once per thread, each thread rotating its own columns. */
static int tridiagonal_ql(double *diag, double *off, int64_t n, double *w, int64_t j0, int64_t j1, int64_t *first,
                          double *cs, double *sn)
{
    for (int64_t l = 0; l < n; l++) {
        for (int steps = 0;; steps++) {
            /* The first negligible coupling at or after l splits off the
             * block l .. m, which is then worked on alone. */
            int64_t m = l;
            while (m + 1 < n && fabs(off[m]) > DBL_EPSILON * (fabs(diag[m]) + fabs(diag[m + 1])))
                m++;
            if (m == l)
                break;
            if (steps == 60)
                return -1;
            /* Wilkinson shift: the eigenvalue of the leading 2 x 2 block
             * (rows l, l + 1) nearer diag[l]. */
            const double theta = (diag[l + 1] - diag[l]) / (2.0 * off[l]);
            const double root = hypot(theta, 1.0);
            const double shift = diag[l] - off[l] / (theta + (theta >= 0.0 ? root : -root));
            /* Chase the bulge from the bottom of the block up to row l with
             * Givens rotations of rows (i, i + 1), i = m - 1 .. l. g and the
             * coupling feed each rotation; lift is what the previous
             * rotations moved off diag[i + 1]. */
            double g = diag[m] - shift, c = 1.0, s = 1.0, lift = 0.0;
            int64_t count = 0;
            int underflow = 0;
            for (int64_t i = m - 1; i >= l; i--) {
                const double f = s * off[i], b = c * off[i];
                const double r = hypot(f, g);
                off[i + 1] = r;
                if (r == 0.0) {
                    /* The coupling vanished: deflate here and restart. */
                    diag[i + 1] -= lift;
                    off[m] = 0.0;
                    underflow = 1;
                    break;
                }
                s = f / r;
                c = g / r;
                const double h = diag[i + 1] - lift;
                const double q = (diag[i] - h) * s + 2.0 * c * b;
                lift = s * q;
                diag[i + 1] = h + lift;
                g = c * q - b;
                first[count] = i;
                cs[count] = c;
                sn[count] = s;
                count++;
            }
            apply_rotations(w, n, j0, j1, first, cs, sn, count);
            if (underflow)
                continue;
            diag[l] -= lift;
            off[l] = g;
            off[m] = 0.0;
        }
    }
    return 0;
}

int od_symmetric_eigen(double *a, int64_t n, double *values, double *vectors, od_error *err)
{
    /* a is (n, n), values (n), vectors (n, n) */
    if (n < 1 || !a || !values || !vectors)
        return od_fail(err, "od_symmetric_eigen: need n >= 1 and non-NULL buffers, got n=%lld", (long long)n);
    /* Each thread runs the QL recurrence on its own copy of the tridiagonal
     * matrix and rotates only its own block of columns. The threads compute
     * the same rotations bit for bit, so no thread waits for another. Each
     * element of vectors is updated by one thread in the same order
     * whatever the thread count. Per thread, scratch contains diag, off, cs
     * and sn (4 n doubles, 6 n allocated because thread 0's slot also
     * serves the reduction's tau and p). */
    const int max_threads = n >= 256 ? omp_get_max_threads() : 1;
    const size_t per_thread = (size_t)(6 * n);
    double *scratch = calloc(per_thread * (size_t)max_threads, sizeof(double));
    int64_t *first = calloc((size_t)n * (size_t)max_threads, sizeof(int64_t));
    if (!scratch || !first) {
        free(scratch);
        free(first);
        return od_fail(err, "od_symmetric_eigen: out of memory for n=%lld", (long long)n);
    }
    double *off = scratch;
    tridiagonalise(a, n, values, off, vectors, scratch + n, scratch + 2 * n);
    for (int t = 1; t < max_threads; t++) {
        memcpy(scratch + per_thread * (size_t)t, values, (size_t)n * sizeof(double));
        memcpy(scratch + per_thread * (size_t)t + n, off, (size_t)n * sizeof(double));
    }
    memmove(scratch + n, off, (size_t)n * sizeof(double));
    memcpy(scratch, values, (size_t)n * sizeof(double));
    int status = 0;
#pragma omp parallel num_threads(max_threads)
    {
        const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
        double *mine = scratch + per_thread * (size_t)t;
        /* Column blocks in multiples of 8 doubles (one 64-byte line). */
        const int64_t lines = (n + 7) / 8;
        const int64_t j0 = 8 * (lines * t / threads), j1 = t + 1 == threads ? n : 8 * (lines * (t + 1) / threads);
        const int result = tridiagonal_ql(mine, mine + n, n, vectors, j0 < n ? j0 : n, j1 < n ? j1 : n,
                                          first + n * t, mine + 2 * n, mine + 3 * n);
        if (t == 0)
            status = result;
    }
    memcpy(values, scratch, (size_t)n * sizeof(double));
    free(scratch);
    free(first);
    if (status != 0)
        return od_fail(err, "od_symmetric_eigen: the QL iteration did not converge in 60 steps for one "
                       "eigenvalue (n=%lld)", (long long)n);
    return 0;
}

typedef struct eigen_order {
    double value;
    int64_t index;
} eigen_order;

/* Decreasing eigenvalue, then increasing index, so that the order is total. */
static int compare_eigen(const void *a, const void *b)
{
    const eigen_order *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? 1 : -1;
    return (x->index > y->index) - (x->index < y->index);
}

od_pca *od_pca_fit(od_pca_accumulator *acc, int64_t k, od_error *err)
{
    if (!acc) {
        od_fail(err, "od_pca_fit: accumulator is NULL");
        return NULL;
    }
    const int64_t c = acc->channels;
    const int64_t n = acc->rows;
    if (n < 2) {
        od_fail(err, "od_pca_fit: need at least 2 rows to estimate a covariance, got %lld", (long long)n);
        return NULL;
    }
    if (k < 1 || k > c) {
        od_fail(err, "od_pca_fit: components k=%lld must be in 1..%lld (the channel count C)", (long long)k,
                (long long)c);
        return NULL;
    }
    if (k > n) {
        od_fail(err, "od_pca_fit: components k=%lld exceed the %lld rows added; at most min(rows, C) "
                "components are defined", (long long)k, (long long)n);
        return NULL;
    }
    double *cov = malloc((size_t)(c * c) * sizeof(double));
    double *sum = malloc((size_t)c * sizeof(double));
    double *vt = malloc((size_t)(c * c) * sizeof(double));
    eigen_order *order = malloc((size_t)c * sizeof *order);
    od_pca *pca = pca_alloc(c, k);
    if (!cov || !vt || !order || !pca || !sum) {
        free(sum);
        free(cov);
        free(vt);
        free(order);
        od_pca_free(pca);
        od_fail(err, "od_pca_fit: out of memory for %lld channels", (long long)c);
        return NULL;
    }
    /* The buffered rows go into copies of the sums, so the accumulator's own
     * chunks keep starting at multiples of OD_PCA_CHUNK rows. */
    memcpy(cov, acc->outer, (size_t)(c * c) * sizeof(double));
    memcpy(sum, acc->sum, (size_t)c * sizeof(double));
    add_chunk(acc->chunk, acc->chunk_rows, c, sum, cov);
    /* cov = (outer - n d d^T) / (n - 1), with d the mean of the shifted rows. */
    const double inv_n = 1.0 / (double)n, inv_dof = 1.0 / (double)(n - 1);
    double trace = 0.0;
    for (int64_t i = 0; i < c; i++) {
        const double di = sum[i] * inv_n;
        for (int64_t j = i; j < c; j++) {
            const double dj = sum[j] * inv_n;
            const double value = (cov[i * c + j] - (double)n * di * dj) * inv_dof;
            cov[i * c + j] = value;
            cov[j * c + i] = value;
        }
        trace += cov[i * c + i];
        pca->mean[i] = (float)(acc->shift[i] + di);
    }
    /* The sums are no longer needed, so their buffer takes the eigenvalues. */
    double *eigenvalues = sum;
    if (od_symmetric_eigen(cov, c, eigenvalues, vt, err) != 0) {
        free(cov);
        free(vt);
        free(order);
        od_pca_free(pca);
        free(sum);
        od_fail_context(err, "od_pca_fit");
        return NULL;
    }
    for (int64_t i = 0; i < c; i++) {
        order[i].value = eigenvalues[i];
        order[i].index = i;
    }
    qsort(order, (size_t)c, sizeof *order, compare_eigen);
    for (int64_t m = 0; m < k; m++) {
        const double *v = vt + order[m].index * c;
        int64_t largest = 0;
        for (int64_t i = 1; i < c; i++)
            if (fabs(v[i]) > fabs(v[largest]))
                largest = i;
        const double sign = v[largest] < 0.0 ? -1.0 : 1.0;
        for (int64_t i = 0; i < c; i++)
            pca->components[m * c + i] = (float)(sign * v[i]);
        /* Rounding can leave a zero eigenvalue slightly negative. */
        const double variance = order[m].value > 0.0 ? order[m].value : 0.0;
        pca->explained_variance[m] = (float)variance;
        pca->explained_variance_ratio[m] = trace > 0.0 ? (float)(variance / trace) : 0.0f;
    }
    pca->rows = n;
    free(sum);
    free(cov);
    free(vt);
    free(order);
    return pca;
}

int od_pca_transform(const od_pca *pca, const float *rows, int64_t n, float *output, od_error *err)
{
    /* rows is (n, C), output is (n, k) */
    if (!pca)
        return od_fail(err, "od_pca_transform: pca is NULL");
    if (n < 0)
        return od_fail(err, "od_pca_transform: row count must be >= 0, got %lld", (long long)n);
    if (n == 0)
        return 0;
    if (!rows || !output)
        return od_fail(err, "od_pca_transform: rows or output is NULL");
    const int64_t c = pca->channels, k = pca->components_count;
    /* Centre a block at a time in float before the product, so that a large
     * mean does not cancel against large products. */
    const int64_t block = n < 1024 ? n : 1024;
    float *centred = od_alloc_floats(block * c);
    if (!centred)
        return od_fail(err, "od_pca_transform: out of memory");
    for (int64_t start = 0; start < n; start += block) {
        const int64_t count = n - start < block ? n - start : block;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < count; r++) {
            const float *x = rows + (start + r) * c;
            float *y = centred + r * c;
            for (int64_t i = 0; i < c; i++)
                y[i] = x[i] - pca->mean[i];
        }
        od_sgemm('N', 'T', count, k, c, 1.0f, centred, c, pca->components, c, 0.0f, output + start * k, k);
    }
    od_free(centred);
    return 0;
}

int od_pca_save(const od_pca *pca, const char *path, od_error *err)
{
    if (!pca || !path)
        return od_fail(err, "od_pca_save: pca or path is NULL");
    const int64_t c = pca->channels, k = pca->components_count;
    const int64_t mean_shape[1] = {c}, components_shape[2] = {k, c}, variance_shape[1] = {k};
    char rows[32];
    snprintf(rows, sizeof rows, "%lld", (long long)pca->rows);
    od_st_writer *writer = od_st_writer_new();
    if (!writer)
        return od_fail(err, "od_pca_save: out of memory");
    int status = 0;
    if (od_st_writer_add(writer, "mean", OD_DTYPE_F32, 1, mean_shape, pca->mean, err) != 0 ||
        od_st_writer_add(writer, "components", OD_DTYPE_F32, 2, components_shape, pca->components, err) != 0 ||
        od_st_writer_add(writer, "explained_variance", OD_DTYPE_F32, 1, variance_shape, pca->explained_variance,
                         err) != 0 ||
        od_st_writer_add(writer, "explained_variance_ratio", OD_DTYPE_F32, 1, variance_shape,
                         pca->explained_variance_ratio, err) != 0 ||
        od_st_writer_set_metadata(writer, "format", "oddone-pca", err) != 0 ||
        od_st_writer_set_metadata(writer, "rows", rows, err) != 0 ||
        od_st_writer_write(writer, path, err) != 0)
        status = od_fail_context(err, "od_pca_save %s", path);
    od_st_writer_free(writer);
    return status;
}

static int all_finite(const float *values, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(values[i]))
            return 0;
    return 1;
}

od_pca *od_pca_load(const char *path, od_error *err)
{
    od_safetensors *st = od_safetensors_read(path, err);
    if (!st)
        return NULL;
    od_pca *pca = NULL;
    od_tensor *mean = NULL, *components = NULL, *variance = NULL, *ratio = NULL;
    const char *format = od_safetensors_metadata(st, "format");
    if (!format || strcmp(format, "oddone-pca") != 0) {
        od_fail(err, "%s: metadata format is %s%s%s, expected \"oddone-pca\"", path, format ? "\"" : "",
                format ? format : "missing", format ? "\"" : "");
        goto done;
    }
    const int64_t any1[1] = {-1};
    if (!(mean = od_safetensors_get(st, "mean", 1, any1, err)))
        goto fail;
    const int64_t c = mean->shape[0];
    const int64_t components_shape[2] = {-1, c};
    if (!(components = od_safetensors_get(st, "components", 2, components_shape, err)))
        goto fail;
    const int64_t k = components->shape[0];
    const int64_t variance_shape[1] = {k};
    if (!(variance = od_safetensors_get(st, "explained_variance", 1, variance_shape, err)) ||
        !(ratio = od_safetensors_get(st, "explained_variance_ratio", 1, variance_shape, err)))
        goto fail;
    if (c < 1 || k < 1) {
        od_fail(err, "%s: needs at least one channel and one component, got C=%lld, k=%lld", path,
                (long long)c, (long long)k);
        goto done;
    }
    if (!all_finite(mean->data, c) || !all_finite(components->data, k * c) || !all_finite(variance->data, k) ||
        !all_finite(ratio->data, k)) {
        od_fail(err, "%s: mean, components or variances contain non-finite values", path);
        goto done;
    }
    for (int64_t m = 0; m < k; m++) {
        double norm2 = 0.0;
        for (int64_t i = 0; i < c; i++)
            norm2 += (double)components->data[m * c + i] * components->data[m * c + i];
        /* float rounding of a unit vector moves its norm by about C * 6e-8 */
        if (fabs(sqrt(norm2) - 1.0) > 1e-3) {
            od_fail(err, "%s: component %lld has norm %g, expected 1", path, (long long)m, sqrt(norm2));
            goto done;
        }
        const float v = variance->data[m], r = ratio->data[m];
        if (v < 0.0f || (m > 0 && v > variance->data[m - 1])) {
            od_fail(err, "%s: explained_variance[%lld] = %g is negative or larger than the one before", path,
                    (long long)m, (double)v);
            goto done;
        }
        if (r < 0.0f || r > 1.0f) {
            od_fail(err, "%s: explained_variance_ratio[%lld] = %g is outside [0, 1]", path, (long long)m,
                    (double)r);
            goto done;
        }
    }
    pca = pca_alloc(c, k);
    if (!pca) {
        od_fail(err, "%s: out of memory", path);
        goto done;
    }
    memcpy(pca->mean, mean->data, (size_t)c * sizeof(float));
    memcpy(pca->components, components->data, (size_t)(k * c) * sizeof(float));
    memcpy(pca->explained_variance, variance->data, (size_t)k * sizeof(float));
    memcpy(pca->explained_variance_ratio, ratio->data, (size_t)k * sizeof(float));
    const char *rows = od_safetensors_metadata(st, "rows");
    pca->rows = rows ? strtoll(rows, NULL, 10) : 0;
    goto done;
fail:
    od_fail_context(err, "od_pca_load");
done:
    od_tensor_free(mean);
    od_tensor_free(components);
    od_tensor_free(variance);
    od_tensor_free(ratio);
    od_safetensors_free(st);
    return pca;
}
