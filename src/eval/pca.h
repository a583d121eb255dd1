/* Principal component analysis of feature rows, fitted by streaming.
 *
 * An accumulator takes rows (N, C) in any number of batches and keeps, in
 * double, the sum of the rows and the C x C sum of outer products of the rows
 * minus the first row seen (a shift that keeps the covariance free of the
 * cancellation a large mean would cause). Rows are added in fixed chunks of
 * OD_PCA_CHUNK rows counted from the first row, so the sums, and everything
 * fitted from them, are bit-identical however the rows were split into
 * batches and whatever the thread count.
 *
 * Fitting forms the covariance (divided by N - 1, as scikit-learn's
 * explained_variance_ is), diagonalises it in double with
 * od_symmetric_eigen (Householder tridiagonalisation, then implicit QL) and
 * keeps the k eigenvectors of largest eigenvalue. Costs: adding N rows is
 * N * C^2 / 2 multiply-adds; the fit is about 9 C^3 flops whatever the
 * spectrum, and is bit-identical for any thread count. bench/bench_pca.c
 * measured the eigen step (pca_solve) at 36 ms for C = 384 and 0.7 s for
 * C = 1024 on one core of a loaded 2-core AMD EPYC with AVX-512; cyclic
 * Jacobi, used before, took 0.69 s and 32 s.
 * NOTE: numpy's eigh (LAPACK syevd) takes 0.22 s at C = 1024 on the same
 * machine. The QL rotations stream the whole eigenvector matrix once per
 * step; applying several steps' rotations per pass would close much of
 * that gap.
 *
 * Sign convention: each component's entry of largest magnitude (the first
 * such entry on ties) is positive, as scikit-learn's
 * svd_flip(u_based_decision=False) makes it. scikit-learn 1.2's PCA instead
 * decides the sign from the projected training rows (u_based_decision=True),
 * which a streaming fit no longer has. */
#ifndef ODDONE_EVAL_PCA_H
#define ODDONE_EVAL_PCA_H

#include <stdint.h>

#include "core/error.h"

#define OD_PCA_CHUNK 256

typedef struct od_pca_accumulator od_pca_accumulator;

typedef struct od_pca {
    int64_t channels;           /* C */
    int64_t components_count;   /* k */
    int64_t rows;               /* N, the rows the fit saw */
    float *mean;                /* (C) */
    float *components;          /* (k, C), unit rows, by decreasing variance */
    float *explained_variance;  /* (k), eigenvalues of the covariance */
    float *explained_variance_ratio; /* (k), share of the total variance */
} od_pca;

/* Returns an empty accumulator for rows of `channels` values. */
od_pca_accumulator *od_pca_new(int64_t channels, od_error *err);
void od_pca_accumulator_free(od_pca_accumulator *acc);

/* Adds rows (n, C). Non-finite values are an error (nothing is added then). */
int od_pca_add(od_pca_accumulator *acc, const float *rows, int64_t n, od_error *err);

/* Returns the number of rows added so far. */
int64_t od_pca_rows(const od_pca_accumulator *acc);

/* Fits k components from the rows added so far; the accumulator stays
 * usable. Needs 1 <= k <= C and at least 2 rows. */
od_pca *od_pca_fit(od_pca_accumulator *acc, int64_t k, od_error *err);

void od_pca_free(od_pca *pca);

/* Projects rows: output (n, k) = (rows (n, C) - mean) * components^T. */
int od_pca_transform(const od_pca *pca, const float *rows, int64_t n, float *output, od_error *err);

/* Diagonalises the symmetric matrix a (n, n, both triangles stored, destroyed)
 * in double: Householder reduction to tridiagonal form, then implicit QL
 * steps with Wilkinson shifts. Writes the eigenvalues, unsorted, to values
 * (n) and the unit eigenvector of values[i] to row i of vectors (n, n).
 * Costs about 2 n^3 flops for the reduction (it updates both triangles, so
 * that its loops run along rows), 4/3 n^3 to form its orthogonal factor
 * and about 6 n^3 for the rotations of the QL steps, which the threads share
 * by columns. The result is bit-identical for any thread count. Fails only
 * when an eigenvalue needs more than 60 QL steps. */
int od_symmetric_eigen(double *a, int64_t n, double *values, double *vectors, od_error *err);

/* Writes tensors "mean" (C), "components" (k, C), "explained_variance" (k)
 * and "explained_variance_ratio" (k) with metadata format=oddone-pca and the
 * row count, atomically. */
int od_pca_save(const od_pca *pca, const char *path, od_error *err);

/* Reads a file od_pca_save wrote and checks shapes, finiteness, unit-norm
 * components and non-increasing non-negative variances. */
od_pca *od_pca_load(const char *path, od_error *err);

#endif
