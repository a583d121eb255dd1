/* Streaming PCA at the teacher cache's size: 200000 rows of 384 channels
 * (rows = 64 latent uniforms times a fixed uniform (64, 384) mixing matrix,
 * plus uniform noise), k = 32. "pca_fit" times od_pca_add over all rows in
 * batches of 4096 plus od_pca_fit; "pca_transform" times projecting all rows.
 * bench/torch_pca.py times scikit-learn's PCA(svd_solver="full") fit and
 * transform on data of the same shape and kind under the same names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/gemm.h"
#include "core/mem.h"
#include "core/rng.h"
#include "eval/pca.h"

#define ROWS 200000
#define CHANNELS 384
#define LATENT 64
#define COMPONENTS 32
#define BATCH 4096

typedef struct bench_data {
    float *rows;      /* (ROWS, CHANNELS) */
    float *projected; /* (ROWS, COMPONENTS) */
    od_pca *pca;
} bench_data;

static void fit_body(void *context)
{
    bench_data *data = context;
    od_error err;
    od_pca_accumulator *acc = od_pca_new(CHANNELS, &err);
    for (int64_t start = 0; start < ROWS; start += BATCH) {
        int64_t count = ROWS - start < BATCH ? ROWS - start : BATCH;
        if (od_pca_add(acc, data->rows + start * CHANNELS, count, &err) != 0) {
            fprintf(stderr, "bench_pca: %s\n", err.message);
            exit(1);
        }
    }
    od_pca_free(data->pca);
    data->pca = od_pca_fit(acc, COMPONENTS, &err);
    if (!data->pca) {
        fprintf(stderr, "bench_pca: %s\n", err.message);
        exit(1);
    }
    od_pca_accumulator_free(acc);
}

static void transform_body(void *context)
{
    bench_data *data = context;
    od_error err;
    if (od_pca_transform(data->pca, data->rows, ROWS, data->projected, &err) != 0) {
        fprintf(stderr, "bench_pca: %s\n", err.message);
        exit(1);
    }
}

int main(void)
{
    od_rng rng;
    od_rng_seed(&rng, 1);
    float *latent = od_alloc_floats((int64_t)ROWS * LATENT);
    float *mixing = od_alloc_floats((int64_t)LATENT * CHANNELS);
    bench_data data = {od_alloc_floats((int64_t)ROWS * CHANNELS), od_alloc_floats((int64_t)ROWS * COMPONENTS),
                       NULL};
    if (!latent || !mixing || !data.rows || !data.projected) {
        fprintf(stderr, "bench_pca: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < (int64_t)ROWS * LATENT; i++)
        latent[i] = od_rng_uniform(&rng) - 0.5f;
    for (int64_t i = 0; i < (int64_t)LATENT * CHANNELS; i++)
        mixing[i] = od_rng_uniform(&rng);
    for (int64_t i = 0; i < (int64_t)ROWS * CHANNELS; i++)
        data.rows[i] = 0.1f * (od_rng_uniform(&rng) - 0.5f);
    od_sgemm('N', 'N', ROWS, CHANNELS, LATENT, 1.0f, latent, LATENT, mixing, CHANNELS, 1.0f, data.rows, CHANNELS);

    double fit_ms = bench_median_ms(fit_body, &data, 0, 3);
    bench_report("pca_fit", fit_ms, (double)ROWS * CHANNELS * CHANNELS);
    double transform_ms = bench_median_ms(transform_body, &data, 1, 5);
    bench_report("pca_transform", transform_ms, 2.0 * ROWS * CHANNELS * COMPONENTS);
    od_pca_free(data.pca);
    od_free(latent);
    od_free(mixing);
    od_free(data.rows);
    od_free(data.projected);
    return 0;
}
