/* Streaming PCA against scikit-learn 1.2's PCA(svd_solver="full") in
 * float64: mean, components (signs fixed so that each component's largest
 * entry is positive), explained variance, its ratio and the projected rows.
 * Feeding the rows in any batches, or with one thread, gives bit-identical
 * results; save and load round-trip exactly; bad arguments and bad files are
 * rejected with messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/rng.h"
#include "eval/pca.h"
#include "io/safetensors.h"
#include "testlib.h"

typedef struct pca_case {
    od_tensor *rows, *mean, *components, *variance, *ratio, *transformed;
    int64_t n, c, k;
} pca_case;

static int load_case(const char *name, pca_case *out)
{
    memset(out, 0, sizeof *out);
    od_safetensors *st = od_test_load_reference(name);
    if (!st)
        return 0;
    out->rows = od_test_tensor(st, "rows");
    out->mean = od_test_tensor(st, "mean");
    out->components = od_test_tensor(st, "components");
    out->variance = od_test_tensor(st, "explained_variance");
    out->ratio = od_test_tensor(st, "explained_variance_ratio");
    out->transformed = od_test_tensor(st, "transformed");
    od_safetensors_free(st);
    if (!out->rows || !out->mean || !out->components || !out->variance || !out->ratio || !out->transformed)
        return 0;
    out->n = out->rows->shape[0];
    out->c = out->rows->shape[1];
    out->k = out->components->shape[0];
    return 1;
}

static void free_case(pca_case *pc)
{
    od_tensor_free(pc->rows);
    od_tensor_free(pc->mean);
    od_tensor_free(pc->components);
    od_tensor_free(pc->variance);
    od_tensor_free(pc->ratio);
    od_tensor_free(pc->transformed);
}

static od_pca *fit_in_batches(const pca_case *pc, const int64_t *batches, int batch_count)
{
    od_error err;
    od_pca_accumulator *acc = od_pca_new(pc->c, &err);
    int64_t start = 0;
    for (int b = 0; start < pc->n; b++) {
        int64_t size = batch_count ? batches[b % batch_count] : pc->n;
        if (size > pc->n - start)
            size = pc->n - start;
        if (od_pca_add(acc, pc->rows->data + start * pc->c, size, &err) != 0) {
            fprintf(stderr, "  %s\n", err.message);
            break;
        }
        start += size;
    }
    od_pca *pca = od_pca_fit(acc, pc->k, &err);
    if (!pca)
        fprintf(stderr, "  %s\n", err.message);
    od_pca_accumulator_free(acc);
    return pca;
}

static void check_case(const char *name)
{
    pca_case pc;
    if (!load_case(name, &pc)) {
        OD_CHECK(!"reference case loads");
        free_case(&pc);
        return;
    }
    od_pca *pca = fit_in_batches(&pc, NULL, 0);
    OD_CHECK(pca != NULL);
    if (pca) {
        OD_CHECK(pca->channels == pc.c && pca->components_count == pc.k && pca->rows == pc.n);
        /* The mean and the components come from double sums over float
         * rows, stored as float: 1e-5 absolute leaves room for the float
         * rounding of values up to about 5 and for eigenvectors whose
         * eigenvalue gaps are 15 % or more. */
        OD_CHECK_CLOSE("mean", pca->mean, pc.mean->data, pc.c, 1e-5f, 1e-6f);
        OD_CHECK_CLOSE("components", pca->components, pc.components->data, pc.k * pc.c, 1e-5f, 0.0f);
        /* Eigenvalues of a double covariance against squared singular
         * values: both near double precision, so float rounding dominates. */
        OD_CHECK_CLOSE("explained_variance", pca->explained_variance, pc.variance->data, pc.k, 0.0f, 1e-6f);
        OD_CHECK_CLOSE("explained_variance_ratio", pca->explained_variance_ratio, pc.ratio->data, pc.k, 0.0f,
                       1e-6f);
        float *projected = calloc((size_t)(pc.n * pc.k), sizeof(float));
        od_error err;
        OD_CHECK(od_pca_transform(pca, pc.rows->data, pc.n, projected, &err) == 0);
        /* Float centring and a float product over C <= 67 terms of size up
         * to about 5: rounding near 1e-6 relative. */
        OD_CHECK_CLOSE("transformed", projected, pc.transformed->data, pc.n * pc.k, 1e-5f, 1e-5f);
        free(projected);
    }
    od_pca_free(pca);
    free_case(&pc);
}

static void matches_sklearn_tall(void) { check_case("pca_tall"); }
static void matches_sklearn_odd(void) { check_case("pca_odd"); }
static void matches_sklearn_wide(void) { check_case("pca_wide"); }

static int same_pca(const od_pca *a, const od_pca *b)
{
    if (!a || !b || a->channels != b->channels || a->components_count != b->components_count)
        return 0;
    const int64_t c = a->channels, k = a->components_count;
    return memcmp(a->mean, b->mean, (size_t)c * sizeof(float)) == 0 &&
           memcmp(a->components, b->components, (size_t)(k * c) * sizeof(float)) == 0 &&
           memcmp(a->explained_variance, b->explained_variance, (size_t)k * sizeof(float)) == 0 &&
           memcmp(a->explained_variance_ratio, b->explained_variance_ratio, (size_t)k * sizeof(float)) == 0;
}

static void batches_and_threads_are_bit_identical(void)
{
    pca_case pc;
    if (!load_case("pca_odd", &pc)) {
        free_case(&pc);
        return;
    }
    od_pca *whole = fit_in_batches(&pc, NULL, 0);
    const int64_t ones[1] = {1};
    const int64_t mixed[5] = {7, 300, 1, 255, 13};
    od_pca *single_rows = fit_in_batches(&pc, ones, 1);
    od_pca *mixed_batches = fit_in_batches(&pc, mixed, 5);
    OD_CHECK(same_pca(whole, single_rows));
    OD_CHECK(same_pca(whole, mixed_batches));
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    od_pca *one_thread = fit_in_batches(&pc, mixed, 5);
    omp_set_num_threads(threads > 2 ? threads : 3);
    od_pca *more_threads = fit_in_batches(&pc, ones, 1);
    omp_set_num_threads(threads);
    OD_CHECK(same_pca(whole, one_thread));
    OD_CHECK(same_pca(whole, more_threads));
    od_pca_free(one_thread);
    od_pca_free(more_threads);
#endif
    od_pca_free(whole);
    od_pca_free(single_rows);
    od_pca_free(mixed_batches);
    free_case(&pc);
}

static void save_and_load_round_trip(void)
{
    pca_case pc;
    if (!load_case("pca_tall", &pc)) {
        free_case(&pc);
        return;
    }
    od_pca *pca = fit_in_batches(&pc, NULL, 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/pca.safetensors", od_test_temp_dir());
    od_error err;
    OD_CHECK(od_pca_save(pca, path, &err) == 0);
    od_pca *loaded = od_pca_load(path, &err);
    OD_CHECK(loaded != NULL);
    OD_CHECK(same_pca(pca, loaded));
    OD_CHECK(loaded && loaded->rows == pc.n);
    od_pca_free(loaded);

    /* A file whose components are not unit vectors is rejected. */
    pca->components[3] += 0.5f;
    OD_CHECK(od_pca_save(pca, path, &err) == 0);
    OD_CHECK(od_pca_load(path, &err) == NULL);
    OD_CHECK(strstr(err.message, "component 0 has norm") != NULL);

    /* A safetensors file of another kind is rejected by its metadata. */
    od_st_writer *writer = od_st_writer_new();
    const int64_t shape[1] = {3};
    const float values[3] = {1, 2, 3};
    od_st_writer_add(writer, "mean", OD_DTYPE_F32, 1, shape, values, &err);
    OD_CHECK(od_st_writer_write(writer, path, &err) == 0);
    od_st_writer_free(writer);
    OD_CHECK(od_pca_load(path, &err) == NULL);
    OD_CHECK(strstr(err.message, "oddone-pca") != NULL);
    od_pca_free(pca);
    free_case(&pc);
}

static void rejects_bad_arguments(void)
{
    od_error err;
    OD_CHECK(od_pca_new(0, &err) == NULL);
    OD_CHECK(strstr(err.message, "channels") != NULL);
    od_pca_accumulator *acc = od_pca_new(4, &err);
    const float rows[12] = {1, 2, 3, 4, 2, 3, 5, 7, 0, 1, 0, 1};
    OD_CHECK(od_pca_fit(acc, 2, &err) == NULL);
    OD_CHECK(strstr(err.message, "at least 2 rows") != NULL);
    OD_CHECK(od_pca_add(acc, rows, 1, &err) == 0);
    OD_CHECK(od_pca_fit(acc, 1, &err) == NULL);
    OD_CHECK(strstr(err.message, "at least 2 rows to estimate a covariance, got 1") != NULL);
    OD_CHECK(od_pca_add(acc, rows + 4, 2, &err) == 0);
    OD_CHECK(od_pca_rows(acc) == 3);
    OD_CHECK(od_pca_fit(acc, 5, &err) == NULL);
    OD_CHECK(strstr(err.message, "k=5 must be in 1..4") != NULL);
    OD_CHECK(od_pca_fit(acc, 0, &err) == NULL);
    OD_CHECK(od_pca_fit(acc, 4, &err) == NULL);
    OD_CHECK(strstr(err.message, "exceed the 3 rows") != NULL);
    const float bad[4] = {1, NAN, 0, 0};
    OD_CHECK(od_pca_add(acc, bad, 1, &err) == -1);
    OD_CHECK(strstr(err.message, "channel 1 is not finite") != NULL);
    OD_CHECK(od_pca_rows(acc) == 3);
    OD_CHECK(od_pca_add(acc, rows, -1, &err) == -1);
    od_pca *pca = od_pca_fit(acc, 2, &err);
    OD_CHECK(pca != NULL);
    /* Constant data: zero variance, and the fit still succeeds. */
    od_pca_accumulator *flat = od_pca_new(3, &err);
    const float same[6] = {1, 1, 1, 1, 1, 1};
    OD_CHECK(od_pca_add(flat, same, 2, &err) == 0);
    od_pca *zero = od_pca_fit(flat, 1, &err);
    OD_CHECK(zero != NULL && zero->explained_variance[0] == 0.0f);
    od_pca_free(zero);
    od_pca_accumulator_free(flat);
    od_pca_free(pca);
    od_pca_accumulator_free(acc);
}

/* Builds a (n, n) = Q diag(lambda) Q^T in double, Q (n, n) orthogonal: the
 * product of four reflections I - 2 u u^T with random dense unit u, so that
 * every eigenvector has entries spread over all n channels. Row i of q is
 * the eigenvector of lambda[i]. */
static void build_known_matrix(int64_t n, const double *lambda, double *q, double *a)
{
    od_rng rng;
    od_rng_seed(&rng, 11);
    double *u = calloc((size_t)n, sizeof(double));
    for (int64_t i = 0; i < n * n; i++)
        q[i] = 0.0;
    for (int64_t i = 0; i < n; i++)
        q[i * n + i] = 1.0;
    for (int reflection = 0; reflection < 4; reflection++) {
        double norm2 = 0.0;
        for (int64_t i = 0; i < n; i++) {
            u[i] = od_rng_normal(&rng);
            norm2 += u[i] * u[i];
        }
        /* rows of q times (I - 2 u u^T / |u|^2) */
        for (int64_t r = 0; r < n; r++) {
            double s = 0.0;
            for (int64_t j = 0; j < n; j++)
                s += q[r * n + j] * u[j];
            for (int64_t j = 0; j < n; j++)
                q[r * n + j] -= 2.0 * s / norm2 * u[j];
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t m = 0; m < n; m++)
                s += q[m * n + i] * lambda[m] * q[m * n + j];
            a[i * n + j] = s;
        }
    /* exact symmetry, as a covariance has */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++)
            a[i * n + j] = a[j * n + i];
    free(u);
}

static int compare_descending(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a < b) - (a > b);
}

/* A 256 x 256 matrix of known eigenpairs with repeated eigenvalues (8 times
 * 10, 20 times 0, 6 times -1), a tight cluster (16 values 5 + i * 1e-11)
 * and a spread rest. Eigenvalues must match to 1e-12 of the largest,
 * eigenvectors must be orthonormal to 1e-12 with residuals |A v - l v| under
 * 1e-11 (double rounding over 256 terms of size 10 is near 1e-13), and each
 * computed vector must lie in the eigenspace of its group (repeated or
 * clustered values compare by subspace: the squared projection onto the
 * group's true vectors is 1 to 1e-10). The solver is also run on 1 and 3
 * threads: the results must be bit-identical. */
static void eigen_solver_matches_known_spectrum(void)
{
    const int64_t n = 256;
    double *lambda = calloc((size_t)n, sizeof(double));
    double *q = calloc((size_t)(n * n), sizeof(double));
    double *a = calloc((size_t)(n * n), sizeof(double));
    double *work = calloc((size_t)(n * n), sizeof(double));
    double *values = calloc((size_t)n, sizeof(double));
    double *vectors = calloc((size_t)(n * n), sizeof(double));
    double *sorted = calloc((size_t)n, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        if (i < 8)
            lambda[i] = 10.0;
        else if (i < 24)
            lambda[i] = 5.0 + (double)(i - 8) * 1e-11;
        else if (i < 44)
            lambda[i] = 0.0;
        else if (i < 50)
            lambda[i] = -1.0;
        else
            lambda[i] = 4.0 * (double)(i - 50) / (double)(n - 50) - 2.0 + 0.001;
    }
    build_known_matrix(n, lambda, q, a);
    memcpy(work, a, (size_t)(n * n) * sizeof(double));
    od_error err;
    OD_CHECK(od_symmetric_eigen(work, n, values, vectors, &err) == 0);

    memcpy(sorted, values, (size_t)n * sizeof(double));
    qsort(sorted, (size_t)n, sizeof(double), compare_descending);
    double *want = calloc((size_t)n, sizeof(double));
    memcpy(want, lambda, (size_t)n * sizeof(double));
    qsort(want, (size_t)n, sizeof(double), compare_descending);
    double worst_value = 0.0;
    for (int64_t i = 0; i < n; i++)
        worst_value = fmax(worst_value, fabs(sorted[i] - want[i]));
    OD_CHECK(worst_value <= 1e-12);

    /* Groups: true eigenvalues closer than 1e-6 belong together. */
    double worst_residual = 0.0, worst_orthogonality = 0.0, worst_subspace = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double *v = vectors + i * n;
        for (int64_t r = 0; r < n; r++) {
            double s = 0.0;
            for (int64_t j = 0; j < n; j++)
                s += a[r * n + j] * v[j];
            worst_residual = fmax(worst_residual, fabs(s - values[i] * v[r]));
        }
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t m = 0; m < n; m++)
                s += v[m] * vectors[j * n + m];
            worst_orthogonality = fmax(worst_orthogonality, fabs(s - (i == j ? 1.0 : 0.0)));
        }
        double projection2 = 0.0;
        for (int64_t m = 0; m < n; m++) {
            if (fabs(lambda[m] - values[i]) > 1e-6)
                continue;
            double s = 0.0;
            for (int64_t j = 0; j < n; j++)
                s += q[m * n + j] * v[j];
            projection2 += s * s;
        }
        worst_subspace = fmax(worst_subspace, fabs(1.0 - projection2));
    }
    OD_CHECK(worst_residual <= 1e-12);
    OD_CHECK(worst_orthogonality <= 1e-13);
    OD_CHECK(worst_subspace <= 1e-12);
    if (worst_value > 1e-12 || worst_residual > 1e-12 || worst_orthogonality > 1e-13 || worst_subspace > 1e-12)
        fprintf(stderr, "  eigen errors: value %g residual %g orthogonality %g subspace %g\n", worst_value,
                worst_residual, worst_orthogonality, worst_subspace);

#ifdef _OPENMP
    int threads = omp_get_max_threads();
    double *values1 = calloc((size_t)n, sizeof(double));
    double *vectors1 = calloc((size_t)(n * n), sizeof(double));
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t == 0 ? 1 : 3);
        memcpy(work, a, (size_t)(n * n) * sizeof(double));
        OD_CHECK(od_symmetric_eigen(work, n, values1, vectors1, &err) == 0);
        OD_CHECK(memcmp(values, values1, (size_t)n * sizeof(double)) == 0);
        OD_CHECK(memcmp(vectors, vectors1, (size_t)(n * n) * sizeof(double)) == 0);
    }
    omp_set_num_threads(threads);
    free(values1);
    free(vectors1);
#endif

    OD_CHECK(od_symmetric_eigen(work, 0, values, vectors, &err) == -1);
    OD_CHECK(strstr(err.message, "n >= 1") != NULL);
    /* 1 x 1: the value itself and the unit vector. */
    double one = 3.5, one_value = 0.0, one_vector = 0.0;
    OD_CHECK(od_symmetric_eigen(&one, 1, &one_value, &one_vector, &err) == 0);
    OD_CHECK(one_value == 3.5 && fabs(one_vector) == 1.0);
    free(want);
    free(lambda);
    free(q);
    free(a);
    free(work);
    free(values);
    free(vectors);
    free(sorted);
}

int main(void)
{
    OD_RUN(matches_sklearn_tall);
    OD_RUN(matches_sklearn_odd);
    OD_RUN(matches_sklearn_wide);
    OD_RUN(batches_and_threads_are_bit_identical);
    OD_RUN(save_and_load_round_trip);
    OD_RUN(rejects_bad_arguments);
    OD_RUN(eigen_solver_matches_known_spectrum);
    return od_test_finish();
}
