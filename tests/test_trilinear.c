/* Trilinear volume sampling against PyTorch's grid_sample
 * (scripts/refs/trilinear.py): outputs and the gradients into the volume and
 * the points, for points inside, outside, on voxel centres and on borders,
 * odd sizes and axes of size 1. Also: the backward accumulates and skips
 * NULL gradients, non-finite points sample zero, results are bit-identical
 * on 1 and 2 threads, and invalid sizes are rejected.
 *
 * Tolerances: the references are float64 and the C code float32 with
 * float32 inputs. An output sums 8 weighted O(1) values (atol 2e-6,
 * rtol 1e-5). A volume gradient sums the weighted d_out of every point
 * around a voxel, up to a few dozen in the clustered case, and a point
 * gradient sums 8 dot products of C terms: both use atol 1e-5, rtol 1e-5. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "nn/trilinear.h"
#include "testlib.h"

#define OUT_ATOL 2e-6f
#define OUT_RTOL 1e-5f
#define GRADIENT_ATOL 1e-5f
#define GRADIENT_RTOL 1e-5f

static int64_t metadata_int(const od_safetensors *st, const char *key)
{
    const char *text = od_safetensors_metadata(st, key);
    OD_CHECK(text != NULL);
    return text != NULL ? atoll(text) : 0;
}

static void check_reference(const char *name)
{
    od_safetensors *st = od_test_load_reference(name);
    if (st == NULL)
        return;
    const int64_t N = metadata_int(st, "N"), D = metadata_int(st, "D"), H = metadata_int(st, "H"),
                  W = metadata_int(st, "W"), C = metadata_int(st, "C"), P = metadata_int(st, "P");
    od_tensor *volume = od_test_tensor(st, "volume"), *points = od_test_tensor(st, "points"),
              *d_out = od_test_tensor(st, "d_out"), *want_out = od_test_tensor(st, "out"),
              *want_d_volume = od_test_tensor(st, "d_volume"),
              *want_d_points = od_test_tensor(st, "d_points");
    const int64_t voxels = N * D * H * W * C;
    float *out = od_alloc_floats(N * P * C), *d_volume = od_alloc_floats(voxels),
          *d_points = od_alloc_floats(N * P * 3);
    if (volume != NULL && points != NULL && d_out != NULL && want_out != NULL &&
        want_d_volume != NULL && want_d_points != NULL) {
        OD_CHECK(od_tensor_numel(volume) == voxels && od_tensor_numel(points) == N * P * 3);
        od_error err;
        OD_CHECK(od_trilinear_forward(out, volume->data, points->data, N, D, H, W, C, P, &err) == 0);
        OD_CHECK_CLOSE(name, out, want_out->data, N * P * C, OUT_ATOL, OUT_RTOL);
        OD_CHECK(od_trilinear_backward(d_volume, d_points, d_out->data, volume->data, points->data,
                                       N, D, H, W, C, P, &err) == 0);
        OD_CHECK_CLOSE("d_volume", d_volume, want_d_volume->data, voxels, GRADIENT_ATOL,
                       GRADIENT_RTOL);
        OD_CHECK_CLOSE("d_points", d_points, want_d_points->data, N * P * 3, GRADIENT_ATOL,
                       GRADIENT_RTOL);
    }
    od_free(out);
    od_free(d_volume);
    od_free(d_points);
    od_tensor_free(volume);
    od_tensor_free(points);
    od_tensor_free(d_out);
    od_tensor_free(want_out);
    od_tensor_free(want_d_volume);
    od_tensor_free(want_d_points);
    od_safetensors_free(st);
}

static void matches_grid_sample(void)
{
    check_reference("trilinear_small");
    check_reference("trilinear_clustered");
    check_reference("trilinear_c32");
}

static void size1_axes_pad_with_zeros(void)
{
    check_reference("trilinear_size1");
    check_reference("trilinear_size1_w");
}

/* Random data for the tests below: points over [-1.5, size + 0.5] per
 * axis, a third of them snapped to quarter-voxel steps so that many share
 * cells. */
typedef struct sample_data {
    int64_t N, D, H, W, C, P;
    float *volume, *points, *d_out;
} sample_data;

static sample_data sample_data_random(int64_t N, int64_t D, int64_t H, int64_t W, int64_t C,
                                      int64_t P, uint64_t seed)
{
    sample_data data = {N, D, H, W, C, P, NULL, NULL, NULL};
    od_rng rng;
    od_rng_seed(&rng, seed);
    data.volume = od_alloc_floats(N * D * H * W * C);
    data.points = od_alloc_floats(N * P * 3);
    data.d_out = od_alloc_floats(N * P * C);
    od_rng_fill_normal(&rng, data.volume, N * D * H * W * C, 0.0f, 1.0f);
    od_rng_fill_normal(&rng, data.d_out, N * P * C, 0.0f, 1.0f);
    const int64_t sizes[3] = {W, H, D};
    for (int64_t p = 0; p < N * P; p++) {
        for (int axis = 0; axis < 3; axis++) {
            float x = od_rng_uniform(&rng) * (float)(sizes[axis] + 2) - 1.5f;
            data.points[p * 3 + axis] = p % 3 == 0 ? roundf(x * 4.0f) / 4.0f : x;
        }
    }
    return data;
}

static void sample_data_release(sample_data *data)
{
    od_free(data->volume);
    od_free(data->points);
    od_free(data->d_out);
}

/* Calling the backward twice doubles the gradients; NULL skips one. */
static void backward_accumulates_and_skips(void)
{
    sample_data s = sample_data_random(2, 5, 6, 7, 4, 300, 21);
    const int64_t voxels = s.N * s.D * s.H * s.W * s.C;
    float *once_volume = od_alloc_floats(voxels), *twice_volume = od_alloc_floats(voxels);
    float *once_points = od_alloc_floats(s.N * s.P * 3), *twice_points = od_alloc_floats(s.N * s.P * 3);
    od_error err;
    OD_CHECK(od_trilinear_backward(once_volume, NULL, s.d_out, s.volume, s.points, s.N, s.D, s.H, s.W,
                                   s.C, s.P, &err) == 0);
    OD_CHECK(od_trilinear_backward(NULL, once_points, s.d_out, s.volume, s.points, s.N, s.D, s.H, s.W,
                                   s.C, s.P, &err) == 0);
    for (int call = 0; call < 2; call++)
        OD_CHECK(od_trilinear_backward(twice_volume, twice_points, s.d_out, s.volume, s.points, s.N, s.D,
                                       s.H, s.W, s.C, s.P, &err) == 0);
    float largest = 0.0f;
    for (int64_t i = 0; i < voxels; i++) {
        once_volume[i] *= 2.0f;
        largest = fmaxf(largest, fabsf(once_volume[i]));
    }
    for (int64_t i = 0; i < s.N * s.P * 3; i++)
        once_points[i] *= 2.0f;
    OD_CHECK(largest > 0.5f);
    OD_CHECK_CLOSE("d_volume twice", twice_volume, once_volume, voxels, 1e-6f, 1e-6f);
    OD_CHECK_CLOSE("d_points twice", twice_points, once_points, s.N * s.P * 3, 1e-6f, 1e-6f);
    od_free(once_volume);
    od_free(twice_volume);
    od_free(once_points);
    od_free(twice_points);
    sample_data_release(&s);
}

/* NaN, infinite and far-away points sample zero and get no gradient, and
 * leave the volume gradient untouched. */
static void non_finite_points_sample_zero(void)
{
    const int64_t D = 3, H = 4, W = 5, C = 6, P = 6;
    sample_data s = sample_data_random(1, D, H, W, C, P, 22);
    const float bad[6][3] = {{NAN, 1.0f, 1.0f}, {1.0f, INFINITY, 1.0f}, {1.0f, 1.0f, -INFINITY},
                             {1e30f, 1.0f, 1.0f}, {-1e30f, -1e30f, -1e30f}, {1.0f, 1.0f, -1.0001f}};
    memcpy(s.points, bad, sizeof bad);
    float *out = od_alloc_floats(P * C), *d_volume = od_alloc_floats(D * H * W * C);
    float *d_points = od_alloc_floats(P * 3), *zeros = od_alloc_floats(D * H * W * C);
    for (int64_t i = 0; i < P * C; i++)
        out[i] = 7.0f;
    od_error err;
    OD_CHECK(od_trilinear_forward(out, s.volume, s.points, 1, D, H, W, C, P, &err) == 0);
    OD_CHECK_CLOSE("out", out, zeros, P * C, 0.0f, 0.0f);
    OD_CHECK(od_trilinear_backward(d_volume, d_points, s.d_out, s.volume, s.points, 1, D, H, W, C, P,
                                   &err) == 0);
    OD_CHECK_CLOSE("d_volume", d_volume, zeros, D * H * W * C, 0.0f, 0.0f);
    OD_CHECK_CLOSE("d_points", d_points, zeros, P * 3, 0.0f, 0.0f);
    od_free(out);
    od_free(d_volume);
    od_free(d_points);
    od_free(zeros);
    sample_data_release(&s);
}

/* Each output, each point gradient and each voxel gradient is computed by
 * one thread in a fixed order, so 1 and 2 threads agree bit for bit. */
static void identical_across_thread_counts(void)
{
    sample_data s = sample_data_random(2, 6, 16, 16, 8, 20000, 23);
    const int64_t voxels = s.N * s.D * s.H * s.W * s.C;
    const int64_t size = s.N * s.P * s.C + voxels + s.N * s.P * 3;
    float *results[2];
    const int saved_threads = omp_get_max_threads();
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run == 0 ? 1 : 2);
        float *out = results[run] = od_alloc_floats(size);
        float *d_volume = out + s.N * s.P * s.C, *d_points = d_volume + voxels;
        od_error err;
        OD_CHECK(od_trilinear_forward(out, s.volume, s.points, s.N, s.D, s.H, s.W, s.C, s.P, &err) == 0);
        OD_CHECK(od_trilinear_backward(d_volume, d_points, s.d_out, s.volume, s.points, s.N, s.D, s.H,
                                       s.W, s.C, s.P, &err) == 0);
    }
    omp_set_num_threads(saved_threads);
    OD_CHECK_IDENTICAL("1 thread vs 2 threads", results[1], results[0], size);
    od_free(results[0]);
    od_free(results[1]);
    sample_data_release(&s);
}

static void rejects_invalid_sizes(void)
{
    float buffer[64] = {0};
    od_error err;
    OD_CHECK(od_trilinear_forward(buffer, buffer, buffer, 1, 2, 2, 2, 0, 1, &err) == -1);
    OD_CHECK(strstr(err.message, "trilinear forward: invalid sizes") != NULL);
    OD_CHECK(strstr(err.message, "C=0") != NULL);
    OD_CHECK(od_trilinear_backward(buffer, buffer, buffer, buffer, buffer, 1, 2, 2, 2, 1, -1, &err) == -1);
    OD_CHECK(strstr(err.message, "P=-1") != NULL);
    OD_CHECK(od_trilinear_forward(buffer, buffer, buffer, 1, 4000000, 4000000, 4000000, 1, 1, &err) == -1);
    OD_CHECK(strstr(err.message, "D=4000000") != NULL);
    /* No points is valid and does nothing. */
    OD_CHECK(od_trilinear_forward(buffer, buffer, buffer, 1, 2, 2, 2, 1, 0, &err) == 0);
    OD_CHECK(od_trilinear_backward(buffer, buffer, buffer, buffer, buffer, 1, 2, 2, 2, 1, 0, &err) == 0);
}

int main(void)
{
    OD_RUN(matches_grid_sample);
    OD_RUN(size1_axes_pad_with_zeros);
    OD_RUN(backward_accumulates_and_skips);
    OD_RUN(non_finite_points_sample_zero);
    OD_RUN(identical_across_thread_counts);
    OD_RUN(rejects_invalid_sizes);
    return od_test_finish();
}
