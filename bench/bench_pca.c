/* Streaming PCA at the teacher cache's size and at a wider one. Rows are 64
 * latent uniforms times a fixed uniform (64, C) mixing matrix, plus uniform
 * noise; k = 32.
 *   pca_fit         200000 rows of 384 channels: od_pca_add over all rows in
 *                   batches of 4096 plus od_pca_fit
 *   pca_solve       od_pca_fit alone on those sums (covariance and eigen step)
 *   pca_transform   projecting all 200000 rows
 *   pca_fit_1024    as pca_fit, 50000 rows of 1024 channels
 *   pca_solve_1024  as pca_solve, 1024 channels
 * bench/torch_pca.py times scikit-learn's PCA(svd_solver="full") fit and
 * transform, and numpy's eigh of the covariance for the solve cases, on data
 * of the same shape and kind under the same names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/gemm.h"
#include "core/mem.h"
#include "core/rng.h"
#include "eval/pca.h"

#define LATENT 64
#define COMPONENTS 32
#define BATCH 4096

typedef struct bench_data {
    int64_t rows_count, channels;
    float *rows;      /* (rows_count, channels) */
    float *projected; /* (rows_count, COMPONENTS) */
    od_pca_accumulator *acc; /* all rows added, for the solve case */
    od_pca *pca;
} bench_data;

static od_pca_accumulator *add_all(const bench_data *data)
{
    od_error err;
    const int64_t c = data->channels;
    od_pca_accumulator *acc = od_pca_new(c, &err);
    for (int64_t start = 0; acc && start < data->rows_count; start += BATCH) {
        int64_t count = data->rows_count - start < BATCH ? data->rows_count - start : BATCH;
        if (od_pca_add(acc, data->rows + start * c, count, &err) != 0) {
            fprintf(stderr, "bench_pca: %s\n", err.message);
            exit(1);
        }
    }
    if (!acc) {
        fprintf(stderr, "bench_pca: %s\n", err.message);
        exit(1);
    }
    return acc;
}

static void fit_from(bench_data *data, od_pca_accumulator *acc)
{
    od_error err;
    od_pca_free(data->pca);
    data->pca = od_pca_fit(acc, COMPONENTS, &err);
    if (!data->pca) {
        fprintf(stderr, "bench_pca: %s\n", err.message);
        exit(1);
    }
}

static void fit_body(void *context)
{
    bench_data *data = context;
    od_pca_accumulator *acc = add_all(data);
    fit_from(data, acc);
    od_pca_accumulator_free(acc);
}

static void solve_body(void *context)
{
    bench_data *data = context;
    fit_from(data, data->acc);
}

static void transform_body(void *context)
{
    bench_data *data = context;
    od_error err;
    if (od_pca_transform(data->pca, data->rows, data->rows_count, data->projected, &err) != 0) {
        fprintf(stderr, "bench_pca: %s\n", err.message);
        exit(1);
    }
}

/* Runs the cases for rows_count rows of c channels; suffix names them. The
 * 1024-channel fit is timed once: before the QL solver it took half a
 * minute. */
static void run_cases(int64_t rows_count, int64_t c, const char *suffix, int with_transform)
{
    od_rng rng;
    od_rng_seed(&rng, 1);
    float *latent = od_alloc_floats(rows_count * LATENT);
    float *mixing = od_alloc_floats((int64_t)LATENT * c);
    bench_data data = {rows_count, c, od_alloc_floats(rows_count * c), od_alloc_floats(rows_count * COMPONENTS),
                       NULL, NULL};
    if (!latent || !mixing || !data.rows || !data.projected) {
        fprintf(stderr, "bench_pca: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < rows_count * LATENT; i++)
        latent[i] = od_rng_uniform(&rng) - 0.5f;
    for (int64_t i = 0; i < (int64_t)LATENT * c; i++)
        mixing[i] = od_rng_uniform(&rng);
    for (int64_t i = 0; i < rows_count * c; i++)
        data.rows[i] = 0.1f * (od_rng_uniform(&rng) - 0.5f);
    od_sgemm('N', 'N', rows_count, c, LATENT, 1.0f, latent, LATENT, mixing, c, 1.0f, data.rows, c);

    const int fit_repeats = c > 512 ? 1 : 3;
    char name[64];
    double fit_ms = bench_median_ms(fit_body, &data, 0, fit_repeats);
    snprintf(name, sizeof name, "pca_fit%s", suffix);
    bench_report(name, fit_ms, (double)rows_count * c * c);
    data.acc = add_all(&data);
    double solve_ms = bench_median_ms(solve_body, &data, 0, 3);
    snprintf(name, sizeof name, "pca_solve%s", suffix);
    bench_report(name, solve_ms, 0.0);
    if (with_transform) {
        double transform_ms = bench_median_ms(transform_body, &data, 1, 5);
        snprintf(name, sizeof name, "pca_transform%s", suffix);
        bench_report(name, transform_ms, 2.0 * rows_count * c * COMPONENTS);
    }
    od_pca_accumulator_free(data.acc);
    od_pca_free(data.pca);
    od_free(latent);
    od_free(mixing);
    od_free(data.rows);
    od_free(data.projected);
}

int main(void)
{
    run_cases(200000, 384, "", 1);
    run_cases(50000, 1024, "_1024", 0);
    return 0;
}
