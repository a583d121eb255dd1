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

    /* Which of the two voxels along each axis are inside. An outside one
     * gets weight 0, and so does every corner it belongs to. */
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

/* How many points ahead the loops prefetch the corner voxels: the rows of
 * consecutive ray samples lie far apart in the volume, so their loads
 * would otherwise wait on the L3 cache one point at a time. */
#define PREFETCH_POINTS_AHEAD 8

/* Requests the cache lines of the 8 corner rows of `point` when all of
 * them are inside the volume item volume_n (D, H, W, C). */
static inline void prefetch_corners(const float *point, const float *volume_n,
                                    const grid_sizes *g)
{
    float frac;
    const int64_t x0 = corner_below(point[0], g->W, &frac);
    const int64_t y0 = corner_below(point[1], g->H, &frac);
    const int64_t z0 = corner_below(point[2], g->D, &frac);
    if (x0 < 0 || x0 + 1 >= g->W || y0 < 0 || y0 + 1 >= g->H || z0 < 0 || z0 + 1 >= g->D)
        return;
    const int64_t sy = g->W * g->C, sz = g->H * g->W * g->C;
    const float *base = volume_n + z0 * sz + y0 * sy + x0 * g->C;
    /* The corners x0 and x0 + 1 are adjacent: 2C floats from each base. */
    const float *pair[4] = {base, base + sy, base + sz, base + sz + sy};
    for (int k = 0; k < 4; k++)
        for (int64_t c = 0; c < 2 * g->C; c += 16)
            __builtin_prefetch(pair[k] + c, 0, 3);
}

/* Returns 1 when the product of the factors fits in int64_t. */
static int product_fits(const int64_t *factors, int count)
{
    int64_t product = 1;
    for (int i = 0; i < count; i++)
        if (__builtin_mul_overflow(product, factors[i], &product))
            return 0;
    return 1;
}

static int check_sizes(const char *operation, int64_t N, int64_t D, int64_t H, int64_t W,
                       int64_t C, int64_t P, od_error *err)
{
    /* Each size below 2^31 keeps D + 1 and every product of two sizes in
     * range; the products of more are checked. */
    const int64_t sizes[6] = {N, D, H, W, C, P};
    int valid = P >= 0;
    for (int i = 0; i < 6; i++)
        valid &= sizes[i] <= INT32_MAX && (i == 5 || sizes[i] > 0);
    if (valid) {
        const int64_t volume_bytes[6] = {N, D, H, W, C, (int64_t)sizeof(float)};
        const int64_t sample_bytes[4] = {N, P, C, (int64_t)sizeof(float)};
        const int64_t cells[4] = {N, D + 1, H + 1, W + 1};
        /* The sort indexes points and cells with int32_t. */
        valid = product_fits(volume_bytes, 6) && product_fits(sample_bytes, 4) &&
                product_fits(cells, 4) && N * P <= INT32_MAX &&
                N * (D + 1) * (H + 1) * (W + 1) < INT32_MAX;
    }
    if (!valid)
        return od_fail(err,
                       "%s: invalid sizes N=%lld D=%lld H=%lld W=%lld C=%lld P=%lld; expected "
                       "positive sizes (P >= 0), at most %d points and %d cells",
                       operation, (long long)N, (long long)D, (long long)H, (long long)W,
                       (long long)C, (long long)P, INT32_MAX, INT32_MAX - 1);
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
        if (sample + PREFETCH_POINTS_AHEAD < N * P) {
            const int64_t ahead = sample + PREFETCH_POINTS_AHEAD;
            prefetch_corners(points + ahead * 3, volume + (ahead / P) * D * H * W * C, &g);
        }
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

/* Returns the sum of the DOT_LANES partial sums, folded in halves. */
static inline float fold_lanes(const float *lanes)
{
    float half[DOT_LANES / 2];
    for (int l = 0; l < DOT_LANES / 2; l++)
        half[l] = lanes[l] + lanes[l + DOT_LANES / 2];
    for (int l = 0; l < DOT_LANES / 4; l++)
        half[l] += half[l + DOT_LANES / 4];
    for (int l = 0; l < DOT_LANES / 8; l++)
        half[l] += half[l + DOT_LANES / 8];
    return half[0] + half[1];
}

/* d_points += d out / d (x, y, z) . d_out for every point.
 *
 * The weight of corner (a, b, c) is wz[a] wy[b] wx[c] with w[0] = 1 - f and
 * w[1] = f, so d out / d x = sum over (a, b) of wz[a] wy[b] (v[a][b][1] -
 * v[a][b][0]), and likewise along y and z. A corner outside the volume has
 * a zero row, which drops its terms. Each gradient is then one dot product
 * with d_out, kept in DOT_LANES partial sums so that gcc vectorises it. */
static void backward_points(float *d_points, const float *d_out, const float *volume,
                            const float *points, const float *zeros, int64_t N, int64_t P,
                            const grid_sizes *g)
{
    const int64_t C = g->C;
#pragma omp parallel for schedule(static)
    for (int64_t sample = 0; sample < N * P; sample++) {
        const int64_t volume_size = g->D * g->H * g->W * C;
        if (sample + PREFETCH_POINTS_AHEAD < N * P) {
            const int64_t ahead = sample + PREFETCH_POINTS_AHEAD;
            prefetch_corners(points + ahead * 3, volume + (ahead / P) * volume_size, g);
        }
        const float *volume_n = volume + (sample / P) * volume_size;
        corners k;
        if (!locate_corners(&k, points + sample * 3, volume_n, zeros, g))
            continue;
        const float *d_out_row = d_out + sample * C;
        const float *r0 = k.row[0], *r1 = k.row[1], *r2 = k.row[2], *r3 = k.row[3];
        const float *r4 = k.row[4], *r5 = k.row[5], *r6 = k.row[6], *r7 = k.row[7];
        const float fx = k.frac[0], fy = k.frac[1], fz = k.frac[2];
        const float wx0 = 1.0f - fx, wy0 = 1.0f - fy, wz0 = 1.0f - fz;
        /* Products of the weights along the two other axes. */
        const float zy00 = wz0 * wy0, zy01 = wz0 * fy, zy10 = fz * wy0, zy11 = fz * fy;
        const float zx00 = wz0 * wx0, zx01 = wz0 * fx, zx10 = fz * wx0, zx11 = fz * fx;
        const float yx00 = wy0 * wx0, yx01 = wy0 * fx, yx10 = fy * wx0, yx11 = fy * fx;

        float lanes_x[DOT_LANES], lanes_y[DOT_LANES], lanes_z[DOT_LANES];
        for (int l = 0; l < DOT_LANES; l++)
            lanes_x[l] = lanes_y[l] = lanes_z[l] = 0.0f;
        int64_t c0 = 0;
        for (; c0 + DOT_LANES <= C; c0 += DOT_LANES) {
            for (int l = 0; l < DOT_LANES; l++) {
                const int64_t c = c0 + l;
                const float along_x = (zy00 * (r1[c] - r0[c]) + zy01 * (r3[c] - r2[c])) +
                                      (zy10 * (r5[c] - r4[c]) + zy11 * (r7[c] - r6[c]));
                const float along_y = (zx00 * (r2[c] - r0[c]) + zx01 * (r3[c] - r1[c])) +
                                      (zx10 * (r6[c] - r4[c]) + zx11 * (r7[c] - r5[c]));
                const float along_z = (yx00 * (r4[c] - r0[c]) + yx01 * (r5[c] - r1[c])) +
                                      (yx10 * (r6[c] - r2[c]) + yx11 * (r7[c] - r3[c]));
                lanes_x[l] += d_out_row[c] * along_x;
                lanes_y[l] += d_out_row[c] * along_y;
                lanes_z[l] += d_out_row[c] * along_z;
            }
        }
        /* The channels past the last full run of DOT_LANES go to lane l. */
        for (int l = 0; c0 + l < C; l++) {
            const int64_t c = c0 + l;
            const float along_x = (zy00 * (r1[c] - r0[c]) + zy01 * (r3[c] - r2[c])) +
                                  (zy10 * (r5[c] - r4[c]) + zy11 * (r7[c] - r6[c]));
            const float along_y = (zx00 * (r2[c] - r0[c]) + zx01 * (r3[c] - r1[c])) +
                                  (zx10 * (r6[c] - r4[c]) + zx11 * (r7[c] - r5[c]));
            const float along_z = (yx00 * (r4[c] - r0[c]) + yx01 * (r5[c] - r1[c])) +
                                  (yx10 * (r6[c] - r2[c]) + yx11 * (r7[c] - r3[c]));
            lanes_x[l] += d_out_row[c] * along_x;
            lanes_y[l] += d_out_row[c] * along_y;
            lanes_z[l] += d_out_row[c] * along_z;
        }
        d_points[sample * 3 + 0] += fold_lanes(lanes_x);
        d_points[sample * 3 + 1] += fold_lanes(lanes_y);
        d_points[sample * 3 + 2] += fold_lanes(lanes_z);
    }
}

/* ---- backward into the volume ----------------------------------------------- */

/* The points sorted by the cell they fall in. Cell (n, cz, cy, cx) of the
 * (N, D+1, H+1, W+1) grid contains the points whose corner below is
 * (z, y, x) = (cz - 1, cy - 1, cx - 1), so its corners are the voxels
 * (cz - 1 .. cz, cy - 1 .. cy, cx - 1 .. cx). */
typedef struct cell_point {
    int32_t sample; /* n * P + p */
    float frac[3];  /* as in corners */
} cell_point;

typedef struct cell_lists {
    int32_t *start;    /* (cells + 1): cell c owns [start[c], start[c + 1]) */
    cell_point *point; /* (points inside), sorted by cell, then by sample */
    float *d_out;      /* (points inside, C): the rows of d_out in the same order */
} cell_lists;

/* Returns the cell of a point of volume item n, or -1 when none of its
 * corners is inside the volume. */
static inline int32_t cell_of_point(const float *point, int64_t n, const grid_sizes *g)
{
    float frac;
    const int64_t x0 = corner_below(point[0], g->W, &frac);
    const int64_t y0 = corner_below(point[1], g->H, &frac);
    const int64_t z0 = corner_below(point[2], g->D, &frac);
    if (x0 == INT64_MIN || y0 == INT64_MIN || z0 == INT64_MIN)
        return -1;
    return (int32_t)(((n * (g->D + 1) + z0 + 1) * (g->H + 1) + y0 + 1) * (g->W + 1) + x0 + 1);
}

/* A stable counting sort of the points by cell, in parallel: each thread
 * counts the cells of a contiguous range of samples, the prefix sums run
 * over (cell, thread) in that order, and each thread then places its
 * range. The output is the same as a serial stable sort's. */
static int cell_lists_build(cell_lists *lists, const float *points, const float *d_out,
                            int64_t N, int64_t P, const grid_sizes *g)
{
    const int64_t C = g->C;
    const int64_t cells = N * (g->D + 1) * (g->H + 1) * (g->W + 1);
    const int64_t samples = N * P;
    const int max_threads = omp_get_max_threads();
    int32_t *cell_of = od_alloc_aligned((size_t)(samples + 1) * sizeof(int32_t));
    /* (threads, cells): first the counts, then each thread's next slot. */
    int32_t *slots = od_alloc_aligned((size_t)max_threads * (size_t)cells * sizeof(int32_t));
    lists->start = od_alloc_aligned((size_t)(cells + 1) * sizeof(int32_t));
    lists->point = od_alloc_aligned((size_t)(samples + 1) * sizeof(cell_point));
    lists->d_out = NULL;
    if (cell_of == NULL || slots == NULL || lists->start == NULL || lists->point == NULL) {
        od_free(cell_of);
        od_free(slots);
        return -1;
    }

#pragma omp parallel num_threads(max_threads)
    {
        const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
        const int64_t first = samples * thread / threads, last = samples * (thread + 1) / threads;
        int32_t *my_slots = slots + (int64_t)thread * cells;

        /* Pass 1: the cell of each of this thread's points, and the counts. */
        memset(my_slots, 0, (size_t)cells * sizeof(int32_t));
        for (int64_t sample = first; sample < last; sample++) {
            cell_of[sample] = cell_of_point(points + sample * 3, sample / P, g);
            if (cell_of[sample] >= 0)
                my_slots[cell_of[sample]]++;
        }
#pragma omp barrier

        /* Pass 2: prefix sums over (cell, thread); slots become the first
         * position of each thread's points in each cell. */
#pragma omp single
        {
            int32_t position = 0;
            for (int64_t cell = 0; cell < cells; cell++) {
                lists->start[cell] = position;
                for (int t = 0; t < threads; t++) {
                    const int32_t count = slots[(int64_t)t * cells + cell];
                    slots[(int64_t)t * cells + cell] = position;
                    position += count;
                }
            }
            lists->start[cells] = position;
            lists->d_out = od_alloc_aligned((size_t)position * (size_t)C * sizeof(float));
        }

        /* Pass 3: place this thread's points and their d_out rows, reading
         * both in sample order. */
        for (int64_t sample = first; sample < last && lists->d_out != NULL; sample++) {
            const int32_t cell = cell_of[sample];
            if (cell < 0)
                continue;
            const int32_t position = my_slots[cell]++;
            cell_point *entry = &lists->point[position];
            entry->sample = (int32_t)sample;
            const float *point = points + sample * 3;
            for (int axis = 0; axis < 3; axis++)
                entry->frac[axis] = point[axis] - floorf(point[axis]);
            memcpy(lists->d_out + (int64_t)position * C, d_out + sample * C,
                   (size_t)C * sizeof(float));
        }
    }
    od_free(cell_of);
    od_free(slots);
    return lists->d_out != NULL ? 0 : -1;
}

static void cell_lists_release(cell_lists *lists)
{
    od_free(lists->start);
    od_free(lists->point);
    od_free(lists->d_out);
}

/* d_volume += the weighted d_out of every point around each voxel.
 * It reads the rows of d_out from lists->d_out, where the points of a cell
 * are contiguous.
 *
 * A thread owns one row of voxels (n, z, y, all x) at a time and sums into
 * row_sums (W, C): the points of the 4 rows of cells that touch the voxel
 * row, each point adding to the 2 voxels x0 and x0 + 1 of its cell. Every
 * voxel thus sums its points in a fixed order (cell row, then cell, then
 * point) whatever the thread count and schedule. */
static void backward_volume(float *d_volume, const cell_lists *lists,
                            float *thread_rows, int64_t N, const grid_sizes *g)
{
    const int64_t D = g->D, H = g->H, W = g->W, C = g->C;
#pragma omp parallel
    {
        float *row_sums = thread_rows + (int64_t)omp_get_thread_num() * W * C;
        /* Dynamic scheduling balances rows with many points against empty
         * ones; it changes no voxel's summation order. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t row = 0; row < N * D * H; row++) {
            const int64_t n = row / (D * H), z = (row / H) % D, y = row % H;
            int touched = 0;

            /* The voxel row lies on the corner above (dz = 0) or below
             * (dz = 1) of the cell rows z + dz, and likewise along y. */
            for (int dz = 0; dz < 2; dz++) {
                for (int dy = 0; dy < 2; dy++) {
                    const int64_t first_cell =
                        ((n * (D + 1) + z + dz) * (H + 1) + y + dy) * (W + 1);
                    const int32_t begin = lists->start[first_cell];
                    const int32_t end = lists->start[first_cell + W + 1];
                    if (begin == end)
                        continue;
                    if (!touched) {
                        memset(row_sums, 0, (size_t)(W * C) * sizeof(float));
                        touched = 1;
                    }
                    for (int64_t cx = 0; cx <= W; cx++) {
                        /* Cell cx has the voxels x = cx - 1 (weight 1 - fx)
                         * and x = cx (weight fx) as corners. */
                        float *below = cx >= 1 ? row_sums + (cx - 1) * C : NULL;
                        float *above = cx < W ? row_sums + cx * C : NULL;
                        for (int32_t e = lists->start[first_cell + cx];
                             e < lists->start[first_cell + cx + 1]; e++) {
                            const cell_point *p = &lists->point[e];
                            const float wz = dz ? 1.0f - p->frac[2] : p->frac[2];
                            const float wy = dy ? 1.0f - p->frac[1] : p->frac[1];
                            const float wzy = wz * wy;
                            const float *d_out_row = lists->d_out + (int64_t)e * C;
                            if (below != NULL) {
                                const float w = wzy * (1.0f - p->frac[0]);
#pragma omp simd
                                for (int64_t c = 0; c < C; c++)
                                    below[c] += w * d_out_row[c];
                            }
                            if (above != NULL) {
                                const float w = wzy * p->frac[0];
#pragma omp simd
                                for (int64_t c = 0; c < C; c++)
                                    above[c] += w * d_out_row[c];
                            }
                        }
                    }
                }
            }
            if (!touched)
                continue;
            float *d_row = d_volume + ((n * D + z) * H + y) * W * C;
#pragma omp simd
            for (int64_t c = 0; c < W * C; c++)
                d_row[c] += row_sums[c];
        }
    }
}

int od_trilinear_backward(float *d_volume, float *d_points, const float *d_out,
                          const float *volume, const float *points, int64_t N, int64_t D,
                          int64_t H, int64_t W, int64_t C, int64_t P, od_error *err)
{
    /* d_volume and volume are (N, D, H, W, C); d_points and points are
     * (N, P, 3); d_out is (N, P, C). */
    const char *operation = "trilinear backward";
    if (check_sizes(operation, N, D, H, W, C, P, err) != 0)
        return -1;
    const grid_sizes g = {D, H, W, C};

    if (d_points != NULL) {
        float *zeros = od_alloc_floats(C);
        if (zeros == NULL)
            return od_fail(err, "%s: out of memory", operation);
        backward_points(d_points, d_out, volume, points, zeros, N, P, &g);
        od_free(zeros);
    }

    if (d_volume != NULL) {
        cell_lists lists = {NULL, NULL, NULL};
        float *thread_rows = od_alloc_floats((int64_t)omp_get_max_threads() * W * C);
        if (thread_rows == NULL || cell_lists_build(&lists, points, d_out, N, P, &g) != 0) {
            od_free(thread_rows);
            cell_lists_release(&lists);
            return od_fail(err, "%s: out of memory for sorting %lld points", operation,
                           (long long)(N * P));
        }
        backward_volume(d_volume, &lists, thread_rows, N, &g);
        od_free(thread_rows);
        cell_lists_release(&lists);
    }
    return 0;
}
