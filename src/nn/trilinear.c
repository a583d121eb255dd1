/* Trilinear sampling of a channels-last volume; see trilinear.h for the
 * coordinate convention and the boundary rules. */
#include "nn/trilinear.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/mem.h"

/* The 8 voxels around a point, in the order (z, y, x) = (0,0,0), (0,0,1),
 * (0,1,0), ..., (1,1,1) of offsets from the corner below the point. A
 * corner outside the volume points at a row of zeros with weight 0, so
 * every point runs the same branch-free loops. */
typedef struct corners {
    const float *row[8]; /* (C) */
    float weight[8];
    float frac[3]; /* x - floor(x), y - floor(y), z - floor(z) */
} corners;

typedef struct grid_sizes {
    int64_t D, H, W, C;
} grid_sizes;

/* Returns the index of the corner below x along an axis of `size` voxels,
 * or INT64_MIN when the point has no corner inside along it: the corners
 * are floor(x) and floor(x) + 1, so x must lie in [-1, size). NaN fails
 * both comparisons. */
static inline int64_t corner_below(float x, int64_t size, float *frac)
{
    if (!(x >= -1.0f && x < (float)size))
        return INT64_MIN;
    const float below = floorf(x);
    *frac = x - below;
    return (int64_t)below;
}

/* Fills the corners of point (x, y, z) in volume item `volume_n` (D, H, W, C).
 * Returns 0 when no corner is inside. Written out corner by corner, without
 * loops or short-circuit conditions, so that it compiles to straight-line
 * code with conditional moves. */
static inline int locate_corners(corners *out, const float *point, const float *volume_n,
                                 const float *zeros, const grid_sizes *g)
{
    float fx = 0.0f, fy = 0.0f, fz = 0.0f;
    const int64_t x0 = corner_below(point[0], g->W, &fx);
    const int64_t y0 = corner_below(point[1], g->H, &fy);
    const int64_t z0 = corner_below(point[2], g->D, &fz);
    if (x0 == INT64_MIN || y0 == INT64_MIN || z0 == INT64_MIN)
        return 0;
    out->frac[0] = fx;
    out->frac[1] = fy;
    out->frac[2] = fz;

    /* Which of the two voxels along each axis are inside; the weight of an
     * outside one is 0, so every corner it belongs to gets weight 0. */
    const int x_below = x0 >= 0, x_above = x0 + 1 < g->W;
    const int y_below = y0 >= 0, y_above = y0 + 1 < g->H;
    const int z_below = z0 >= 0, z_above = z0 + 1 < g->D;
    const float wx0 = x_below ? 1.0f - fx : 0.0f, wx1 = x_above ? fx : 0.0f;
    const float wy0 = y_below ? 1.0f - fy : 0.0f, wy1 = y_above ? fy : 0.0f;
    const float wz0 = z_below ? 1.0f - fz : 0.0f, wz1 = z_above ? fz : 0.0f;

    const int64_t sx = g->C, sy = g->W * g->C, sz = g->H * g->W * g->C;
    const int64_t base = z0 * sz + y0 * sy + x0 * sx;
    out->row[0] = (z_below & y_below & x_below) ? volume_n + base : zeros;
    out->row[1] = (z_below & y_below & x_above) ? volume_n + base + sx : zeros;
    out->row[2] = (z_below & y_above & x_below) ? volume_n + base + sy : zeros;
    out->row[3] = (z_below & y_above & x_above) ? volume_n + base + sy + sx : zeros;
    out->row[4] = (z_above & y_below & x_below) ? volume_n + base + sz : zeros;
    out->row[5] = (z_above & y_below & x_above) ? volume_n + base + sz + sx : zeros;
    out->row[6] = (z_above & y_above & x_below) ? volume_n + base + sz + sy : zeros;
    out->row[7] = (z_above & y_above & x_above) ? volume_n + base + sz + sy + sx : zeros;
    out->weight[0] = wz0 * wy0 * wx0;
    out->weight[1] = wz0 * wy0 * wx1;
    out->weight[2] = wz0 * wy1 * wx0;
    out->weight[3] = wz0 * wy1 * wx1;
    out->weight[4] = wz1 * wy0 * wx0;
    out->weight[5] = wz1 * wy0 * wx1;
    out->weight[6] = wz1 * wy1 * wx0;
    out->weight[7] = wz1 * wy1 * wx1;
    return 1;
}

static int check_sizes(const char *what, int64_t N, int64_t D, int64_t H, int64_t W, int64_t C,
                       int64_t P, od_error *err)
{
    int64_t voxels = 0, cells = 0, samples = 0, values = 0;
    const int positive = N > 0 && D > 0 && H > 0 && W > 0 && C > 0 && P >= 0;
    const int overflow = !positive || __builtin_mul_overflow(N * D, H * W, &voxels) ||
                         __builtin_mul_overflow(voxels, C * (int64_t)sizeof(float), &values) ||
                         __builtin_mul_overflow(N * P, C * (int64_t)sizeof(float), &samples) ||
                         __builtin_mul_overflow(N * (D + 1), (H + 1) * (W + 1), &cells);
    if (overflow || N * P > INT32_MAX || cells >= INT32_MAX)
        return od_fail(err,
                       "%s: invalid sizes N=%lld D=%lld H=%lld W=%lld C=%lld P=%lld; expected "
                       "positive sizes (P >= 0), at most %d points and %d cells",
                       what, (long long)N, (long long)D, (long long)H, (long long)W, (long long)C,
                       (long long)P, INT32_MAX, INT32_MAX - 1);
    return 0;
}

/* ---- forward ---------------------------------------------------------------- */

int od_trilinear_forward(float *out, const float *volume, const float *points, int64_t N,
                         int64_t D, int64_t H, int64_t W, int64_t C, int64_t P, od_error *err)
{
    /* volume is (N, D, H, W, C); points is (N, P, 3); out is (N, P, C). */
    if (check_sizes("trilinear forward", N, D, H, W, C, P, err) != 0)
        return -1;
    float *zeros = od_alloc_floats(C);
    if (zeros == NULL)
        return od_fail(err, "trilinear forward: out of memory");
    const grid_sizes g = {D, H, W, C};

#pragma omp parallel for schedule(static)
    for (int64_t sample = 0; sample < N * P; sample++) {
        const float *volume_n = volume + (sample / P) * D * H * W * C;
        float *out_row = out + sample * C;
        corners k;
        if (!locate_corners(&k, points + sample * 3, volume_n, zeros, &g)) {
            memset(out_row, 0, (size_t)C * sizeof(float));
            continue;
        }
        const float *r0 = k.row[0], *r1 = k.row[1], *r2 = k.row[2], *r3 = k.row[3];
        const float *r4 = k.row[4], *r5 = k.row[5], *r6 = k.row[6], *r7 = k.row[7];
        const float *w = k.weight;
        /* Summed as a tree: shorter dependency chains than left to right. */
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            out_row[c] = ((w[0] * r0[c] + w[1] * r1[c]) + (w[2] * r2[c] + w[3] * r3[c])) +
                         ((w[4] * r4[c] + w[5] * r5[c]) + (w[6] * r6[c] + w[7] * r7[c]));
    }
    od_free(zeros);
    return 0;
}

/* ---- backward into the points ---------------------------------------------- */

/* Partial sums of a dot product: one AVX-512 register of floats. */
#define DOT_LANES 16

/* Returns a . b over n floats in a fixed order that gcc vectorises without
 * -ffast-math: DOT_LANES partial sums folded in halves, then the tail. */
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

/* d_points += d out / d (x, y, z) . d_out for every point. */
static void backward_points(float *d_points, const float *d_out, const float *volume,
                            const float *points, const float *zeros, int64_t N, int64_t P,
                            const grid_sizes *g)
{
    const int64_t C = g->C;
#pragma omp parallel for schedule(static)
    for (int64_t sample = 0; sample < N * P; sample++) {
        const float *volume_n = volume + (sample / P) * g->D * g->H * g->W * C;
        corners k;
        if (!locate_corners(&k, points + sample * 3, volume_n, zeros, g))
            continue;
        const float *d_out_row = d_out + sample * C;
        float corner_dot[8];
        for (int n = 0; n < 8; n++)
            corner_dot[n] = dot(d_out_row, k.row[n], C);

        /* The weight of corner (a, b, c) is wz[a] wy[b] wx[c] with
         * w[0] = 1 - f and w[1] = f, so d w[i] / d f = (i ? 1 : -1). A
         * corner outside has a zero row and so a zero dot product. */
        const float fx = k.frac[0], fy = k.frac[1], fz = k.frac[2];
        const float wx[2] = {1.0f - fx, fx}, wy[2] = {1.0f - fy, fy}, wz[2] = {1.0f - fz, fz};
        const float sign[2] = {-1.0f, 1.0f};
        float gx = 0.0f, gy = 0.0f, gz = 0.0f;
        for (int n = 0; n < 8; n++) {
            const int a = n >> 2, b = (n >> 1) & 1, c = n & 1;
            gx += wz[a] * wy[b] * sign[c] * corner_dot[n];
            gy += wz[a] * sign[b] * wx[c] * corner_dot[n];
            gz += sign[a] * wy[b] * wx[c] * corner_dot[n];
        }
        d_points[sample * 3 + 0] += gx;
        d_points[sample * 3 + 1] += gy;
        d_points[sample * 3 + 2] += gz;
    }
}

/* ---- backward into the volume ----------------------------------------------- */

/* The points sorted by the cell they fall in. Cell (n, cz, cy, cx) of the
 * (N, D+1, H+1, W+1) grid holds the points whose corner below is
 * (z, y, x) = (cz - 1, cy - 1, cx - 1), so its corners are the voxels
 * (cz - 1 .. cz, cy - 1 .. cy, cx - 1 .. cx). */
typedef struct cell_point {
    int32_t sample; /* n * P + p */
    float frac[3];  /* as in corners */
} cell_point;

typedef struct cell_lists {
    int32_t *start;    /* (cells + 1): cell c owns [start[c], start[c + 1]) */
    cell_point *point; /* (points inside), sorted by cell, then by sample */
} cell_lists;

/* A stable counting sort of the points by cell. */
static int cell_lists_build(cell_lists *lists, const float *points, int64_t N, int64_t P,
                            const grid_sizes *g)
{
    const int64_t cells = N * (g->D + 1) * (g->H + 1) * (g->W + 1);
    int32_t *cell_of = od_alloc_aligned((size_t)(N * P + 1) * sizeof(int32_t));
    lists->start = od_alloc_aligned((size_t)(cells + 1) * sizeof(int32_t));
    lists->point = od_alloc_aligned((size_t)(N * P + 1) * sizeof(cell_point));
    if (cell_of == NULL || lists->start == NULL || lists->point == NULL) {
        od_free(cell_of);
        return -1;
    }

    /* Pass 1: the cell of every point, or -1 when no corner is inside. */
#pragma omp parallel for schedule(static)
    for (int64_t sample = 0; sample < N * P; sample++) {
        const float *point = points + sample * 3;
        float frac;
        const int64_t x0 = corner_below(point[0], g->W, &frac);
        const int64_t y0 = corner_below(point[1], g->H, &frac);
        const int64_t z0 = corner_below(point[2], g->D, &frac);
        const int64_t n = sample / P;
        cell_of[sample] = (x0 == INT64_MIN || y0 == INT64_MIN || z0 == INT64_MIN)
                              ? -1
                              : (int32_t)(((n * (g->D + 1) + z0 + 1) * (g->H + 1) + y0 + 1) *
                                              (g->W + 1) +
                                          x0 + 1);
    }

    /* Pass 2: count, prefix sums, then place the points in sample order. */
    memset(lists->start, 0, (size_t)(cells + 1) * sizeof(int32_t));
    for (int64_t sample = 0; sample < N * P; sample++)
        if (cell_of[sample] >= 0)
            lists->start[cell_of[sample] + 1]++;
    for (int64_t cell = 0; cell < cells; cell++)
        lists->start[cell + 1] += lists->start[cell];
    for (int64_t sample = 0; sample < N * P; sample++) {
        const int32_t cell = cell_of[sample];
        if (cell < 0)
            continue;
        /* start[cell] runs ahead while its points are placed; it is reset below. */
        cell_point *entry = &lists->point[lists->start[cell]++];
        entry->sample = (int32_t)sample;
        const float *point = points + sample * 3;
        for (int axis = 0; axis < 3; axis++)
            entry->frac[axis] = point[axis] - floorf(point[axis]);
    }
    /* Each start[c] now holds the end of cell c: shift back by one cell. */
    memmove(lists->start + 1, lists->start, (size_t)cells * sizeof(int32_t));
    lists->start[0] = 0;
    od_free(cell_of);
    return 0;
}

static void cell_lists_release(cell_lists *lists)
{
    od_free(lists->start);
    od_free(lists->point);
}

/* d_volume += the weighted d_out of every point around each voxel. */
static void backward_volume(float *d_volume, const float *d_out, const cell_lists *lists,
                            float *thread_sums, int64_t N, const grid_sizes *g)
{
    const int64_t D = g->D, H = g->H, W = g->W, C = g->C;
#pragma omp parallel
    {
        float *sum = thread_sums + (int64_t)omp_get_thread_num() * C;
        /* One thread owns a row of voxels; dynamic scheduling balances
         * rows with many points against empty ones without changing any
         * voxel's summation order. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t row = 0; row < N * D * H; row++) {
            const int64_t n = row / (D * H), z = (row / H) % D, y = row % H;
            for (int64_t x = 0; x < W; x++) {
                int any = 0;
                /* The voxel is the corner (1 - dz, 1 - dy, 1 - dx) of the
                 * cell (z + dz, y + dy, x + dx), whose corner below is
                 * (z + dz - 1, y + dy - 1, x + dx - 1). */
                for (int dz = 0; dz < 2; dz++) {
                    for (int dy = 0; dy < 2; dy++) {
                        const int64_t cell_row = ((n * (D + 1) + z + dz) * (H + 1) + y + dy) * (W + 1);
                        for (int dx = 0; dx < 2; dx++) {
                            const int64_t cell = cell_row + x + dx;
                            const int32_t begin = lists->start[cell], end = lists->start[cell + 1];
                            for (int32_t e = begin; e < end; e++) {
                                const cell_point *p = &lists->point[e];
                                /* Weight f along an axis where the voxel is
                                 * the corner above, 1 - f where below. */
                                const float wz = dz ? 1.0f - p->frac[2] : p->frac[2];
                                const float wy = dy ? 1.0f - p->frac[1] : p->frac[1];
                                const float wx = dx ? 1.0f - p->frac[0] : p->frac[0];
                                const float w = wz * wy * wx;
                                const float *d_out_row = d_out + (int64_t)p->sample * C;
                                if (!any) {
                                    any = 1;
#pragma omp simd
                                    for (int64_t c = 0; c < C; c++)
                                        sum[c] = w * d_out_row[c];
                                } else {
#pragma omp simd
                                    for (int64_t c = 0; c < C; c++)
                                        sum[c] += w * d_out_row[c];
                                }
                            }
                        }
                    }
                }
                if (!any)
                    continue;
                float *d_voxel = d_volume + (((n * D + z) * H + y) * W + x) * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    d_voxel[c] += sum[c];
            }
        }
    }
}

int od_trilinear_backward(float *d_volume, float *d_points, const float *d_out,
                          const float *volume, const float *points, int64_t N, int64_t D,
                          int64_t H, int64_t W, int64_t C, int64_t P, od_error *err)
{
    /* d_volume and volume are (N, D, H, W, C); d_points and points are
     * (N, P, 3); d_out is (N, P, C). */
    const char *what = "trilinear backward";
    if (check_sizes(what, N, D, H, W, C, P, err) != 0)
        return -1;
    const grid_sizes g = {D, H, W, C};

    if (d_points != NULL) {
        float *zeros = od_alloc_floats(C);
        if (zeros == NULL)
            return od_fail(err, "%s: out of memory", what);
        backward_points(d_points, d_out, volume, points, zeros, N, P, &g);
        od_free(zeros);
    }

    if (d_volume != NULL) {
        cell_lists lists = {NULL, NULL};
        float *thread_sums = od_alloc_floats((int64_t)omp_get_max_threads() * C);
        if (thread_sums == NULL || cell_lists_build(&lists, points, N, P, &g) != 0) {
            od_free(thread_sums);
            cell_lists_release(&lists);
            return od_fail(err, "%s: out of memory for sorting %lld points", what,
                           (long long)(N * P));
        }
        backward_volume(d_volume, d_out, &lists, thread_sums, N, &g);
        od_free(thread_sums);
        cell_lists_release(&lists);
    }
    return 0;
}
