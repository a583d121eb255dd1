#include "eval/pca.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Diagonalises the symmetric matrix a (n, n, both triangles stored) in
 * place with cyclic Jacobi rotations. On return the diagonal of a contains the
 * eigenvalues and row i of vt (n, n) the unit eigenvector of a[i][i].
 * Each rotation (p, q) zeroes a[p][q]; a sweep rotates every pair once and
 * costs about 4 n^3 flops. Returns the sweeps used, or -1 when 100 sweeps
 * did not converge. */
static int jacobi_eigen(double *a, double *vt, int64_t n)
{
    double frobenius2 = 0.0;
    for (int64_t i = 0; i < n * n; i++)
        frobenius2 += a[i] * a[i];
    for (int64_t i = 0; i < n * n; i++)
        vt[i] = 0.0;
    for (int64_t i = 0; i < n; i++)
        vt[i * n + i] = 1.0;
    if (frobenius2 == 0.0)
        return 0;
    /* Off-diagonal entries below this are set to zero without a rotation.
     * That moves an eigenvalue by at most the entry's size, far below what
     * float output can show. */
    const double negligible = 1e-18 * sqrt(frobenius2);
    for (int sweep = 1; sweep <= 100; sweep++) {
        double off2 = 0.0;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++)
                off2 += a[p * n + q] * a[p * n + q];
        if (off2 <= 1e-30 * frobenius2)
            return sweep - 1;
        for (int64_t p = 0; p < n - 1; p++) {
            for (int64_t q = p + 1; q < n; q++) {
                const double apq = a[p * n + q];
                if (fabs(apq) <= negligible) {
                    a[p * n + q] = 0.0;
                    a[q * n + p] = 0.0;
                    continue;
                }
                const double app = a[p * n + p], aqq = a[q * n + q];
                const double theta = (aqq - app) / (2.0 * apq);
                /* t = tan of the rotation angle, the smaller root of
                 * t^2 + 2 theta t - 1 = 0; 1 / (2 theta) when theta^2 would
                 * overflow. */
                double t;
                if (fabs(theta) > 1e150)
                    t = 0.5 / theta;
                else
                    t = (theta >= 0.0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                const double cs = 1.0 / sqrt(t * t + 1.0);
                const double sn = t * cs;
                double *rp = a + p * n, *rq = a + q * n;
                for (int64_t k = 0; k < n; k++) {
                    const double xp = rp[k], xq = rq[k];
                    rp[k] = cs * xp - sn * xq;
                    rq[k] = sn * xp + cs * xq;
                }
                rp[p] = app - t * apq;
                rq[q] = aqq + t * apq;
                rp[q] = 0.0;
                rq[p] = 0.0;
                for (int64_t k = 0; k < n; k++) {
                    if (k == p || k == q)
                        continue;
                    a[k * n + p] = rp[k];
                    a[k * n + q] = rq[k];
                }
                double *vp = vt + p * n, *vq = vt + q * n;
                for (int64_t k = 0; k < n; k++) {
                    const double xp = vp[k], xq = vq[k];
                    vp[k] = cs * xp - sn * xq;
                    vq[k] = sn * xp + cs * xq;
                }
            }
        }
    }
    return -1;
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
    if (jacobi_eigen(cov, vt, c) < 0) {
        free(cov);
        free(vt);
        free(order);
        od_pca_free(pca);
        free(sum);
        od_fail(err, "od_pca_fit: the Jacobi eigenvalue iteration did not converge in 100 sweeps");
        return NULL;
    }
    for (int64_t i = 0; i < c; i++) {
        order[i].value = cov[i * c + i];
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
