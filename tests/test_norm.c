/* Batch norm, group norm and layer norm against PyTorch
 * (scripts/refs/layers.py, float64 autograd): outputs, saved statistics,
 * every gradient, running statistics, inference mode, accumulation,
 * in-place forwards, shape errors, and bit-identical results across
 * thread counts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/threads.h"
#include "nn/norm.h"
#include "testlib.h"

/* Tolerances. Inputs and outputs are O(1), and one case has mean 5 next to
 * a standard deviation of 0.5. The C code accumulates in float within
 * blocks and in double across them, so outputs and saved statistics stay
 * within a few float roundings (1e-5 relative, 2e-6 absolute). Gradients
 * sum up to 2100 float terms per channel, and the parameter gradients
 * reach about 50 in magnitude, hence 2e-5 relative and 1e-5 absolute. */
#define OUT_ATOL 2e-6f
#define OUT_RTOL 1e-5f
#define GRAD_ATOL 1e-5f
#define GRAD_RTOL 2e-5f

/* A reference case: its sizes and named tensors "case{i}.<name>". */
typedef struct ref_case {
    const od_safetensors *st;
    char prefix[32];
    int64_t dims[8];
    int dim_count;
} ref_case;

static int load_case(ref_case *rc, const od_safetensors *st, int index)
{
    rc->st = st;
    snprintf(rc->prefix, sizeof rc->prefix, "case%d", index);
    char key[64];
    snprintf(key, sizeof key, "%s.dims", rc->prefix);
    int64_t count = 0;
    int32_t *dims = od_safetensors_get_int(st, key, &count, NULL);
    OD_CHECK(dims != NULL && count <= 8);
    if (dims == NULL || count > 8) {
        free(dims);
        return -1;
    }
    for (int64_t i = 0; i < count; i++)
        rc->dims[i] = dims[i];
    rc->dim_count = (int)count;
    free(dims);
    return 0;
}

static od_tensor *case_tensor(const ref_case *rc, const char *name)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", rc->prefix, name);
    return od_test_tensor(rc->st, key);
}

static int case_count(const od_safetensors *st)
{
    int64_t n = 0;
    int32_t *count = od_safetensors_get_int(st, "count", &n, NULL);
    int value = (count != NULL && n == 1) ? count[0] : 0;
    free(count);
    OD_CHECK(value > 0);
    return value;
}

static float scalar(const od_safetensors *st, const char *name)
{
    od_tensor *t = od_test_tensor(st, name);
    float value = t != NULL ? t->data[0] : NAN;
    od_tensor_free(t);
    return value;
}

/* Tensors every norm case shares. */
typedef struct norm_case {
    od_tensor *x, *gamma, *beta, *d_out, *out, *mean, *rstd, *d_x, *d_gamma, *d_beta;
} norm_case;

static int load_norm_case(norm_case *nc, const ref_case *rc)
{
    nc->x = case_tensor(rc, "x");
    nc->gamma = case_tensor(rc, "gamma");
    nc->beta = case_tensor(rc, "beta");
    nc->d_out = case_tensor(rc, "d_out");
    nc->out = case_tensor(rc, "out");
    nc->mean = case_tensor(rc, "mean");
    nc->rstd = case_tensor(rc, "rstd");
    nc->d_x = case_tensor(rc, "d_x");
    nc->d_gamma = case_tensor(rc, "d_gamma");
    nc->d_beta = case_tensor(rc, "d_beta");
    return (nc->x && nc->gamma && nc->beta && nc->d_out && nc->out && nc->mean && nc->rstd &&
            nc->d_x && nc->d_gamma && nc->d_beta)
               ? 0
               : -1;
}

static void free_norm_case(norm_case *nc)
{
    od_tensor *all[] = {nc->x,   nc->gamma, nc->beta, nc->d_out,   nc->out,
                        nc->mean, nc->rstd, nc->d_x,  nc->d_gamma, nc->d_beta};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        od_tensor_free(all[i]);
}

static void scale_into(float *dst, const float *src, int64_t count, float factor)
{
    for (int64_t i = 0; i < count; i++)
        dst[i] = factor * src[i];
}

/* ---- batch norm -------------------------------------------------------- */

static void batchnorm_matches_torch(void)
{
    od_safetensors *st = od_test_load_reference("layers_batchnorm");
    if (st == NULL)
        return;
    const float eps = scalar(st, "eps"), momentum = scalar(st, "momentum");
    const int cases = case_count(st);
    for (int i = 0; i < cases; i++) {
        ref_case rc;
        norm_case nc;
        if (load_case(&rc, st, i) != 0)
            continue;
        if (load_norm_case(&nc, &rc) != 0) {
            free_norm_case(&nc);
            continue;
        }
        const int64_t rows = rc.dims[0], channels = rc.dims[1], count = rows * channels;
        printf("batchnorm case %d: rows %lld, channels %lld\n", i, (long long)rows,
               (long long)channels);
        float *out = od_alloc_floats(count);
        float *mean = od_alloc_floats(channels);
        float *rstd = od_alloc_floats(channels);
        float *d_x = od_alloc_floats(count);
        float *d_gamma = od_alloc_floats(channels);
        float *d_beta = od_alloc_floats(channels);
        float *twice = od_alloc_floats(count);

        /* training forward and backward */
        od_batchnorm_forward(out, mean, rstd, nc.x->data, nc.gamma->data, nc.beta->data, rows,
                             channels, eps);
        OD_CHECK_CLOSE("batchnorm out", out, nc.out->data, count, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("batchnorm mean", mean, nc.mean->data, channels, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("batchnorm rstd", rstd, nc.rstd->data, channels, OUT_ATOL, OUT_RTOL);
        od_batchnorm_backward(d_x, d_gamma, d_beta, nc.d_out->data, nc.x->data, mean, rstd,
                              nc.gamma->data, rows, channels);
        OD_CHECK_CLOSE("batchnorm d_x", d_x, nc.d_x->data, count, GRAD_ATOL, GRAD_RTOL);
        OD_CHECK_CLOSE("batchnorm d_gamma", d_gamma, nc.d_gamma->data, channels, GRAD_ATOL,
                       GRAD_RTOL);
        OD_CHECK_CLOSE("batchnorm d_beta", d_beta, nc.d_beta->data, channels, GRAD_ATOL,
                       GRAD_RTOL);

        /* a second backward adds the same gradients again */
        od_batchnorm_backward(d_x, d_gamma, d_beta, nc.d_out->data, nc.x->data, mean, rstd,
                              nc.gamma->data, rows, channels);
        scale_into(twice, nc.d_x->data, count, 2.0f);
        OD_CHECK_CLOSE("batchnorm d_x twice", d_x, twice, count, 2 * GRAD_ATOL, GRAD_RTOL);
        scale_into(twice, nc.d_gamma->data, channels, 2.0f);
        OD_CHECK_CLOSE("batchnorm d_gamma twice", d_gamma, twice, channels, 2 * GRAD_ATOL,
                       GRAD_RTOL);

        /* NULL gradients are skipped */
        od_batchnorm_backward(NULL, NULL, d_beta, nc.d_out->data, nc.x->data, mean, rstd,
                              nc.gamma->data, rows, channels);
        scale_into(twice, nc.d_beta->data, channels, 3.0f);
        OD_CHECK_CLOSE("batchnorm d_beta thrice", d_beta, twice, channels, 3 * GRAD_ATOL,
                       GRAD_RTOL);

        /* in-place forward */
        memcpy(out, nc.x->data, (size_t)count * sizeof(float));
        od_batchnorm_forward(out, mean, rstd, out, nc.gamma->data, nc.beta->data, rows, channels,
                             eps);
        OD_CHECK_CLOSE("batchnorm in place", out, nc.out->data, count, OUT_ATOL, OUT_RTOL);

        /* running statistics, then inference with the old running values */
        od_tensor *running_mean = case_tensor(&rc, "running_mean");
        od_tensor *running_var = case_tensor(&rc, "running_var");
        od_tensor *new_mean = case_tensor(&rc, "new_running_mean");
        od_tensor *new_var = case_tensor(&rc, "new_running_var");
        od_tensor *inference_out = case_tensor(&rc, "inference_out");
        if (running_mean && running_var && new_mean && new_var && inference_out) {
            od_batchnorm_inference_forward(out, nc.x->data, running_mean->data, running_var->data,
                                           nc.gamma->data, nc.beta->data, rows, channels, eps);
            OD_CHECK_CLOSE("batchnorm inference", out, inference_out->data, count, OUT_ATOL,
                           OUT_RTOL);
            float *rm = od_alloc_floats(channels), *rv = od_alloc_floats(channels);
            memcpy(rm, running_mean->data, (size_t)channels * sizeof(float));
            memcpy(rv, running_var->data, (size_t)channels * sizeof(float));
            od_error err;
            OD_CHECK(od_batchnorm_update_running_stats(rm, rv, mean, rstd, rows, channels,
                                                       momentum, eps, &err) == 0);
            OD_CHECK_CLOSE("running mean", rm, new_mean->data, channels, OUT_ATOL, OUT_RTOL);
            OD_CHECK_CLOSE("running var", rv, new_var->data, channels, OUT_ATOL, OUT_RTOL);
            od_free(rm);
            od_free(rv);
        }
        od_tensor_free(running_mean);
        od_tensor_free(running_var);
        od_tensor_free(new_mean);
        od_tensor_free(new_var);
        od_tensor_free(inference_out);

        od_free(out);
        od_free(mean);
        od_free(rstd);
        od_free(d_x);
        od_free(d_gamma);
        od_free(d_beta);
        od_free(twice);
        free_norm_case(&nc);
    }
    od_safetensors_free(st);
}

static void batchnorm_without_affine(void)
{
    /* gamma = beta = NULL. Channel 0 contains 1, 2, 3, 4 and channel 1 contains 5 four times. */
    const float in[8] = {1, 5, 2, 5, 3, 5, 4, 5};
    float out[8], mean[2], rstd[2];
    od_batchnorm_forward(out, mean, rstd, in, NULL, NULL, 4, 2, 0.0f);
    OD_CHECK(fabsf(mean[0] - 2.5f) < 1e-6f);
    OD_CHECK(fabsf(mean[1] - 5.0f) < 1e-6f);
    /* biased variance of 1..4 is 1.25 */
    OD_CHECK(fabsf(rstd[0] - 1.0f / sqrtf(1.25f)) < 1e-6f);
    OD_CHECK(fabsf(out[0] + 1.5f / sqrtf(1.25f)) < 1e-6f);
}

static void batchnorm_running_stats_reject_one_row(void)
{
    float rm[1] = {0}, rv[1] = {1}, mean[1] = {0}, rstd[1] = {1};
    od_error err;
    OD_CHECK(od_batchnorm_update_running_stats(rm, rv, mean, rstd, 1, 1, 0.1f, 1e-5f, &err) == -1);
    OD_CHECK(strstr(err.message, "rows = 1") != NULL);
}

/* The statistics split the rows into a fixed set of partitions, so the
 * result must not depend on the thread count. */
static void batchnorm_identical_across_threads(void)
{
    const int64_t rows = 65536, channels = 16, count = rows * channels;
    float *in = od_alloc_floats(count), *d_out = od_alloc_floats(count);
    float *out[2], *d_in[2], mean[2][16], rstd[2][16], d_gamma[2][16], d_beta[2][16];
    for (int64_t i = 0; i < count; i++) {
        in[i] = sinf((float)i * 0.37f) * 2.0f + 1.0f;
        d_out[i] = cosf((float)i * 0.11f);
    }
    const int saved_threads = od_get_num_threads();
    for (int t = 0; t < 2; t++) {
        od_set_num_threads(t + 1);
        out[t] = od_alloc_floats(count);
        d_in[t] = od_alloc_floats(count);
        memset(d_gamma[t], 0, sizeof d_gamma[t]);
        memset(d_beta[t], 0, sizeof d_beta[t]);
        od_batchnorm_forward(out[t], mean[t], rstd[t], in, NULL, NULL, rows, channels, 1e-5f);
        od_batchnorm_backward(d_in[t], d_gamma[t], d_beta[t], d_out, in, mean[t], rstd[t], NULL,
                              rows, channels);
    }
    od_set_num_threads(saved_threads);
    OD_CHECK_IDENTICAL("out", out[0], out[1], count);
    OD_CHECK_IDENTICAL("mean", mean[0], mean[1], channels);
    OD_CHECK_IDENTICAL("d_in", d_in[0], d_in[1], count);
    OD_CHECK_IDENTICAL("d_gamma", d_gamma[0], d_gamma[1], channels);
    for (int t = 0; t < 2; t++) {
        od_free(out[t]);
        od_free(d_in[t]);
    }
    od_free(in);
    od_free(d_out);
}

/* ---- group norm -------------------------------------------------------- */

static void groupnorm_matches_torch(void)
{
    od_safetensors *st = od_test_load_reference("layers_groupnorm");
    if (st == NULL)
        return;
    const float eps = scalar(st, "eps");
    const int cases = case_count(st);
    for (int i = 0; i < cases; i++) {
        ref_case rc;
        norm_case nc;
        if (load_case(&rc, st, i) != 0)
            continue;
        if (load_norm_case(&nc, &rc) != 0) {
            free_norm_case(&nc);
            continue;
        }
        const int64_t batch = rc.dims[0], spatial = rc.dims[1], channels = rc.dims[2],
                      groups = rc.dims[3];
        const int64_t count = batch * spatial * channels;
        printf("groupnorm case %d: batch %lld, spatial %lld, channels %lld, groups %lld\n", i,
               (long long)batch, (long long)spatial, (long long)channels, (long long)groups);
        float *out = od_alloc_floats(count);
        float *mean = od_alloc_floats(batch * groups);
        float *rstd = od_alloc_floats(batch * groups);
        float *d_x = od_alloc_floats(count);
        float *d_gamma = od_alloc_floats(channels);
        float *d_beta = od_alloc_floats(channels);
        float *twice = od_alloc_floats(count);
        od_error err;

        OD_CHECK(od_groupnorm_forward(out, mean, rstd, nc.x->data, nc.gamma->data, nc.beta->data,
                                      batch, spatial, channels, groups, eps, &err) == 0);
        OD_CHECK_CLOSE("groupnorm out", out, nc.out->data, count, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("groupnorm mean", mean, nc.mean->data, batch * groups, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("groupnorm rstd", rstd, nc.rstd->data, batch * groups, OUT_ATOL, OUT_RTOL);
        OD_CHECK(od_groupnorm_backward(d_x, d_gamma, d_beta, nc.d_out->data, nc.x->data, mean,
                                       rstd, nc.gamma->data, batch, spatial, channels, groups,
                                       &err) == 0);
        OD_CHECK_CLOSE("groupnorm d_x", d_x, nc.d_x->data, count, GRAD_ATOL, GRAD_RTOL);
        OD_CHECK_CLOSE("groupnorm d_gamma", d_gamma, nc.d_gamma->data, channels, GRAD_ATOL,
                       GRAD_RTOL);
        OD_CHECK_CLOSE("groupnorm d_beta", d_beta, nc.d_beta->data, channels, GRAD_ATOL,
                       GRAD_RTOL);

        OD_CHECK(od_groupnorm_backward(d_x, NULL, NULL, nc.d_out->data, nc.x->data, mean, rstd,
                                       nc.gamma->data, batch, spatial, channels, groups,
                                       &err) == 0);
        scale_into(twice, nc.d_x->data, count, 2.0f);
        OD_CHECK_CLOSE("groupnorm d_x twice", d_x, twice, count, 2 * GRAD_ATOL, GRAD_RTOL);

        memcpy(out, nc.x->data, (size_t)count * sizeof(float));
        OD_CHECK(od_groupnorm_forward(out, mean, rstd, out, nc.gamma->data, nc.beta->data, batch,
                                      spatial, channels, groups, eps, &err) == 0);
        OD_CHECK_CLOSE("groupnorm in place", out, nc.out->data, count, OUT_ATOL, OUT_RTOL);

        od_free(out);
        od_free(mean);
        od_free(rstd);
        od_free(d_x);
        od_free(d_gamma);
        od_free(d_beta);
        od_free(twice);
        free_norm_case(&nc);
    }
    od_safetensors_free(st);
}

static void groupnorm_rejects_bad_shapes(void)
{
    float buffer[64] = {0}, stats[8] = {0};
    od_error err;
    OD_CHECK(od_groupnorm_forward(buffer, stats, stats, buffer, NULL, NULL, 1, 4, 6, 4, 1e-5f,
                                  &err) == -1);
    OD_CHECK(strstr(err.message, "does not divide channels = 6") != NULL);
    OD_CHECK(od_groupnorm_forward(buffer, stats, stats, buffer, NULL, NULL, 1, 0, 4, 2, 1e-5f,
                                  &err) == -1);
    OD_CHECK(strstr(err.message, "spatial=0") != NULL);
    OD_CHECK(od_groupnorm_backward(buffer, NULL, NULL, buffer, buffer, stats, stats, NULL, 1, 4,
                                   4, 0, &err) == -1);
    OD_CHECK(strstr(err.message, "groups=0") != NULL);
}

/* ---- layer norm -------------------------------------------------------- */

static void layernorm_matches_torch(void)
{
    od_safetensors *st = od_test_load_reference("layers_layernorm");
    if (st == NULL)
        return;
    const float eps = scalar(st, "eps");
    const int cases = case_count(st);
    for (int i = 0; i < cases; i++) {
        ref_case rc;
        norm_case nc;
        if (load_case(&rc, st, i) != 0)
            continue;
        if (load_norm_case(&nc, &rc) != 0) {
            free_norm_case(&nc);
            continue;
        }
        const int64_t rows = rc.dims[0], channels = rc.dims[1], count = rows * channels;
        printf("layernorm case %d: rows %lld, channels %lld\n", i, (long long)rows,
               (long long)channels);
        float *out = od_alloc_floats(count);
        float *mean = od_alloc_floats(rows);
        float *rstd = od_alloc_floats(rows);
        float *d_x = od_alloc_floats(count);
        float *d_gamma = od_alloc_floats(channels);
        float *d_beta = od_alloc_floats(channels);
        float *twice = od_alloc_floats(count);

        od_layernorm_forward(out, mean, rstd, nc.x->data, nc.gamma->data, nc.beta->data, rows,
                             channels, eps);
        OD_CHECK_CLOSE("layernorm out", out, nc.out->data, count, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("layernorm mean", mean, nc.mean->data, rows, OUT_ATOL, OUT_RTOL);
        OD_CHECK_CLOSE("layernorm rstd", rstd, nc.rstd->data, rows, OUT_ATOL, OUT_RTOL);
        od_layernorm_backward(d_x, d_gamma, d_beta, nc.d_out->data, nc.x->data, mean, rstd,
                              nc.gamma->data, rows, channels);
        OD_CHECK_CLOSE("layernorm d_x", d_x, nc.d_x->data, count, GRAD_ATOL, GRAD_RTOL);
        OD_CHECK_CLOSE("layernorm d_gamma", d_gamma, nc.d_gamma->data, channels, GRAD_ATOL,
                       GRAD_RTOL);
        OD_CHECK_CLOSE("layernorm d_beta", d_beta, nc.d_beta->data, channels, GRAD_ATOL,
                       GRAD_RTOL);

        od_layernorm_backward(d_x, d_gamma, NULL, nc.d_out->data, nc.x->data, mean, rstd,
                              nc.gamma->data, rows, channels);
        scale_into(twice, nc.d_x->data, count, 2.0f);
        OD_CHECK_CLOSE("layernorm d_x twice", d_x, twice, count, 2 * GRAD_ATOL, GRAD_RTOL);
        scale_into(twice, nc.d_gamma->data, channels, 2.0f);
        OD_CHECK_CLOSE("layernorm d_gamma twice", d_gamma, twice, channels, 2 * GRAD_ATOL,
                       GRAD_RTOL);

        memcpy(out, nc.x->data, (size_t)count * sizeof(float));
        od_layernorm_forward(out, mean, rstd, out, nc.gamma->data, nc.beta->data, rows, channels,
                             eps);
        OD_CHECK_CLOSE("layernorm in place", out, nc.out->data, count, OUT_ATOL, OUT_RTOL);

        od_free(out);
        od_free(mean);
        od_free(rstd);
        od_free(d_x);
        od_free(d_gamma);
        od_free(d_beta);
        od_free(twice);
        free_norm_case(&nc);
    }
    od_safetensors_free(st);
}

int main(void)
{
    OD_RUN(batchnorm_matches_torch);
    OD_RUN(batchnorm_without_affine);
    OD_RUN(batchnorm_running_stats_reject_one_row);
    OD_RUN(batchnorm_identical_across_threads);
    OD_RUN(groupnorm_matches_torch);
    OD_RUN(groupnorm_rejects_bad_shapes);
    OD_RUN(layernorm_matches_torch);
    return od_test_finish();
}
