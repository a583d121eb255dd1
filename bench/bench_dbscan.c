/* DBSCAN and box fitting at the detector's grid size: 5 ellipsoid blobs of
 * 750 to 2500 voxels each plus 400 scattered voxels in a 64 x 64 x 16 grid,
 * eps 1.5 voxels, min_points 5. bench/torch_dbscan.py times scikit-learn's
 * DBSCAN on the same voxels under the same name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/log.h"
#include "geometry/dbscan.h"
#include "geometry/obb.h"

#define GRID_X 64
#define GRID_Y 64
#define GRID_Z 16
#define BLOB_COUNT 5
#define SCATTERED 400
#define EPS 1.5
#define MIN_POINTS 5

/* centre x, y, z and radii x, y, z in voxels; torch_dbscan.py has the same */
static const double BLOBS[BLOB_COUNT][6] = {
    {14, 14, 8, 11, 9, 6}, {46, 16, 8, 10, 10, 6}, {16, 48, 7, 12, 8, 6}, {48, 48, 8, 9, 11, 6}, {32, 32, 8, 6, 6, 5},
};

typedef struct bench_data {
    od_dbscan *dbscan;
    int32_t *voxels;
    int32_t *labels;
    int64_t count;
} bench_data;

/* Writes the blobs' voxels in (z, y, x) loop order, then the scattered
 * ones from a 64-bit LCG (Knuth's MMIX constants), and returns the count. */
static int64_t make_voxels(int32_t *voxels)
{
    int64_t count = 0;
    for (int z = 0; z < GRID_Z; z++)
        for (int y = 0; y < GRID_Y; y++)
            for (int x = 0; x < GRID_X; x++)
                for (int b = 0; b < BLOB_COUNT; b++) {
                    const double *blob = BLOBS[b];
                    double dx = (x - blob[0]) / blob[3], dy = (y - blob[1]) / blob[4], dz = (z - blob[2]) / blob[5];
                    if (dx * dx + dy * dy + dz * dz <= 1.0) {
                        voxels[count * 3] = x;
                        voxels[count * 3 + 1] = y;
                        voxels[count * 3 + 2] = z;
                        count++;
                        break;
                    }
                }
    uint64_t state = 1;
    const int32_t sizes[3] = {GRID_X, GRID_Y, GRID_Z};
    for (int i = 0; i < SCATTERED; i++)
        for (int a = 0; a < 3; a++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            voxels[count * 3 + a] = (int32_t)((state >> 33) % (uint64_t)sizes[a]);
            if (a == 2)
                count++;
        }
    return count;
}

static void run_dbscan(void *context)
{
    bench_data *data = context;
    od_error err;
    if (od_dbscan_run(data->dbscan, data->voxels, data->count, data->labels, &err) != 0) {
        fprintf(stderr, "bench_dbscan: %s\n", err.message);
        exit(1);
    }
}

static void fit_boxes(void *context)
{
    bench_data *data = context;
    const double origin[3] = {0, 0, 0};
    od_error err;
    for (int32_t cluster = 0; cluster < (int32_t)od_dbscan_cluster_count(data->dbscan); cluster++) {
        od_box box;
        if (od_box_fit_voxels(data->voxels, data->labels, data->count, cluster, origin, 0.01, &box, &err) != 0) {
            fprintf(stderr, "bench_dbscan: %s\n", err.message);
            exit(1);
        }
    }
}

int main(void)
{
    od_log_set_level(OD_LOG_WARN);
    bench_data data;
    data.voxels = malloc((size_t)(GRID_X * GRID_Y * GRID_Z + SCATTERED) * 3 * sizeof *data.voxels);
    data.count = make_voxels(data.voxels);
    data.labels = malloc((size_t)data.count * sizeof *data.labels);
    data.dbscan = od_dbscan_new(EPS, MIN_POINTS);
    if (data.voxels == NULL || data.labels == NULL || data.dbscan == NULL) {
        fprintf(stderr, "bench_dbscan: out of memory\n");
        return 1;
    }

    run_dbscan(&data);
    fprintf(stderr, "bench_dbscan: %lld voxels, %lld clusters, %lld noise\n", (long long)data.count,
            (long long)od_dbscan_cluster_count(data.dbscan), (long long)od_dbscan_noise_count(data.dbscan));
    bench_report("dbscan_64x64x16_blobs", bench_median_ms(run_dbscan, &data, 3, 21), 0);
    bench_report("dbscan_boxes_64x64x16_blobs", bench_median_ms(fit_boxes, &data, 3, 21), 0);

    od_dbscan_free(data.dbscan);
    free(data.labels);
    free(data.voxels);
    return 0;
}
