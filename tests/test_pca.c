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

int main(void)
{
    OD_RUN(matches_sklearn_tall);
    OD_RUN(matches_sklearn_odd);
    OD_RUN(matches_sklearn_wide);
    OD_RUN(batches_and_threads_are_bit_identical);
    OD_RUN(save_and_load_round_trip);
    OD_RUN(rejects_bad_arguments);
    return od_test_finish();
}
