/* DBSCAN on voxels: core points, noise and the partition of core points
 * match scikit-learn's exactly; border points and cluster ids follow the
 * documented canonical rule; labels do not depend on the input order or
 * the thread count; edge cases and invalid arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "geometry/dbscan.h"
#include "testlib.h"

static const char *const CASES[] = {"uniform", "faces", "blobs", "negative", "noise"};
#define CASE_COUNT ((int)(sizeof CASES / sizeof CASES[0]))

typedef struct reference_case {
    int32_t *voxels; /* (count, 3) */
    int32_t *labels; /* (count) scikit-learn's */
    int32_t *core;   /* (count) 1 for scikit-learn's core samples */
    int64_t count;
    double eps;
    int64_t min_points;
} reference_case;

static int load_case(const char *name, reference_case *ref)
{
    char file[64];
    snprintf(file, sizeof file, "dbscan_%s", name);
    memset(ref, 0, sizeof *ref);
    od_safetensors *st = od_test_load_reference(file);
    if (st == NULL)
        return -1;
    od_error err;
    int64_t voxel_values = 0, label_count = 0, core_count = 0;
    ref->voxels = od_safetensors_get_int(st, "voxels", &voxel_values, &err);
    ref->labels = od_safetensors_get_int(st, "labels", &label_count, &err);
    ref->core = od_safetensors_get_int(st, "core", &core_count, &err);
    od_tensor *params = od_test_tensor(st, "params");
    od_safetensors_free(st);
    int ok = ref->voxels != NULL && ref->labels != NULL && ref->core != NULL && params != NULL &&
             voxel_values == 3 * label_count && core_count == label_count;
    OD_CHECK(ok);
    if (ok) {
        ref->count = label_count;
        ref->eps = params->data[0];
        ref->min_points = (int64_t)params->data[1];
    }
    od_tensor_free(params);
    return ok ? 0 : -1;
}

static void free_case(reference_case *ref)
{
    free(ref->voxels);
    free(ref->labels);
    free(ref->core);
}

static int64_t squared_distance(const int32_t *a, const int32_t *b)
{
    int64_t dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return dx * dx + dy * dy + dz * dz;
}

/* Returns 1 when voxel a comes before voxel b in lexicographic (z, y, x) order. */
static int comes_before(const int32_t *a, const int32_t *b)
{
    if (a[2] != b[2])
        return a[2] < b[2];
    if (a[1] != b[1])
        return a[1] < b[1];
    return a[0] < b[0];
}

static void dbscan_matches_sklearn(void)
{
    for (int k = 0; k < CASE_COUNT; k++) {
        reference_case ref;
        if (load_case(CASES[k], &ref) != 0) {
            free_case(&ref);
            continue;
        }
        const int64_t n = ref.count;
        od_dbscan *dbscan = od_dbscan_new(ref.eps, ref.min_points);
        OD_CHECK(dbscan != NULL);
        int32_t *labels = malloc((size_t)n * sizeof *labels);
        od_error err;
        OD_CHECK(od_dbscan_run(dbscan, ref.voxels, n, labels, &err) == 0);
        const uint8_t *core = od_dbscan_core_flags(dbscan);

        /* core and noise sets are exactly scikit-learn's */
        int64_t core_mismatches = 0, noise_mismatches = 0, sklearn_clusters = 0, noise = 0;
        for (int64_t i = 0; i < n; i++) {
            core_mismatches += core[i] != (ref.core[i] != 0);
            noise_mismatches += (labels[i] < 0) != (ref.labels[i] < 0);
            noise += labels[i] < 0;
            if (ref.labels[i] + 1 > sklearn_clusters)
                sklearn_clusters = ref.labels[i] + 1;
        }
        if (core_mismatches || noise_mismatches)
            printf("  %s: %lld core and %lld noise mismatches\n", CASES[k], (long long)core_mismatches,
                   (long long)noise_mismatches);
        OD_CHECK(core_mismatches == 0);
        OD_CHECK(noise_mismatches == 0);
        OD_CHECK(od_dbscan_cluster_count(dbscan) == sklearn_clusters);
        OD_CHECK(od_dbscan_noise_count(dbscan) == noise);

        /* core points: the same partition, as a bijection between ids */
        int32_t *to_sklearn = malloc((size_t)(sklearn_clusters + 1) * sizeof *to_sklearn);
        int32_t *from_sklearn = malloc((size_t)(sklearn_clusters + 1) * sizeof *from_sklearn);
        for (int64_t c = 0; c <= sklearn_clusters; c++)
            to_sklearn[c] = from_sklearn[c] = -1;
        int partition_ok = 1;
        for (int64_t i = 0; i < n && partition_ok; i++) {
            if (!ref.core[i] || labels[i] < 0 || labels[i] >= sklearn_clusters) {
                partition_ok = !ref.core[i];
                continue;
            }
            int32_t ours = labels[i], theirs = ref.labels[i];
            if (to_sklearn[ours] < 0 && from_sklearn[theirs] < 0) {
                to_sklearn[ours] = theirs;
                from_sklearn[theirs] = ours;
            }
            partition_ok = to_sklearn[ours] == theirs && from_sklearn[theirs] == ours;
        }
        OD_CHECK(partition_ok);

        /* border points take the smallest id among their core neighbours,
         * and cluster c's first core voxel in (z, y, x) order precedes
         * cluster c + 1's */
        const int64_t eps_squared = (int64_t)(ref.eps * ref.eps);
        int border_ok = 1;
        int64_t *first = malloc((size_t)(sklearn_clusters + 1) * sizeof *first);
        for (int64_t c = 0; c <= sklearn_clusters; c++)
            first[c] = -1;
        for (int64_t i = 0; i < n; i++) {
            if (core[i]) {
                if (labels[i] < 0 || labels[i] >= sklearn_clusters) {
                    border_ok = 0;
                    continue;
                }
                int64_t *f = &first[labels[i]];
                if (*f < 0 || comes_before(&ref.voxels[i * 3], &ref.voxels[*f * 3]))
                    *f = i;
                continue;
            }
            int32_t want = -1;
            for (int64_t j = 0; j < n; j++)
                if (core[j] && squared_distance(&ref.voxels[i * 3], &ref.voxels[j * 3]) <= eps_squared &&
                    (want < 0 || labels[j] < want))
                    want = labels[j];
            border_ok &= labels[i] == want;
        }
        OD_CHECK(border_ok);
        int order_ok = 1;
        for (int64_t c = 1; c < sklearn_clusters; c++)
            order_ok &= comes_before(&ref.voxels[first[c - 1] * 3], &ref.voxels[first[c] * 3]);
        OD_CHECK(order_ok);

        free(first);
        free(to_sklearn);
        free(from_sklearn);
        free(labels);
        od_dbscan_free(dbscan);
        free_case(&ref);
    }
}

/* Every permutation of the input gives each voxel the same label, and so
 * does running on 1 or 2 threads. */
static void dbscan_labels_independent_of_order_and_threads(void)
{
    reference_case ref;
    if (load_case("blobs", &ref) != 0) {
        free_case(&ref);
        return;
    }
    const int64_t n = ref.count;
    od_dbscan *dbscan = od_dbscan_new(ref.eps, ref.min_points);
    int32_t *base = malloc((size_t)n * sizeof *base), *labels = malloc((size_t)n * sizeof *labels);
    int32_t *shuffled = malloc((size_t)n * 3 * sizeof *shuffled);
    int64_t *permutation = malloc((size_t)n * sizeof *permutation);
    od_error err;
    int threads = od_get_num_threads();
    od_set_num_threads(1);
    OD_CHECK(od_dbscan_run(dbscan, ref.voxels, n, base, &err) == 0);

    od_set_num_threads(2);
    OD_CHECK(od_dbscan_run(dbscan, ref.voxels, n, labels, &err) == 0);
    OD_CHECK(memcmp(base, labels, (size_t)n * sizeof *labels) == 0);

    od_rng rng;
    od_rng_seed(&rng, 17);
    for (int trial = 0; trial < 5; trial++) {
        for (int64_t i = 0; i < n; i++)
            permutation[i] = i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(od_rng_uniform(&rng) * (double)(i + 1));
            if (j > i)
                j = i;
            int64_t swap = permutation[i];
            permutation[i] = permutation[j];
            permutation[j] = swap;
        }
        for (int64_t i = 0; i < n; i++)
            memcpy(&shuffled[i * 3], &ref.voxels[permutation[i] * 3], 3 * sizeof *shuffled);
        od_set_num_threads(trial % 2 + 1);
        OD_CHECK(od_dbscan_run(dbscan, shuffled, n, labels, &err) == 0);
        int same = 1;
        for (int64_t i = 0; i < n; i++)
            same &= labels[i] == base[permutation[i]];
        OD_CHECK(same);
    }
    od_set_num_threads(threads);

    free(permutation);
    free(shuffled);
    free(labels);
    free(base);
    od_dbscan_free(dbscan);
    free_case(&ref);
}

static void dbscan_empty_and_single_voxel(void)
{
    od_error err;
    od_dbscan *dbscan = od_dbscan_new(1.5, 1);
    OD_CHECK(od_dbscan_run(dbscan, NULL, 0, NULL, &err) == 0);
    OD_CHECK(od_dbscan_cluster_count(dbscan) == 0);
    OD_CHECK(od_dbscan_noise_count(dbscan) == 0);

    /* min_points 1: a lone voxel is its own cluster */
    const int32_t voxel[3] = {-3, 7, 2};
    int32_t label = 99;
    OD_CHECK(od_dbscan_run(dbscan, voxel, 1, &label, &err) == 0);
    OD_CHECK(label == 0);
    OD_CHECK(od_dbscan_core_flags(dbscan)[0] == 1);
    od_dbscan_free(dbscan);

    /* min_points 2: a lone voxel is noise */
    dbscan = od_dbscan_new(1.5, 2);
    OD_CHECK(od_dbscan_run(dbscan, voxel, 1, &label, &err) == 0);
    OD_CHECK(label == -1);
    OD_CHECK(od_dbscan_cluster_count(dbscan) == 0);
    OD_CHECK(od_dbscan_noise_count(dbscan) == 1);

    /* two copies of one voxel count twice, so both are core */
    const int32_t twice[6] = {4, 4, 4, 4, 4, 4};
    int32_t labels[2];
    OD_CHECK(od_dbscan_run(dbscan, twice, 2, labels, &err) == 0);
    OD_CHECK(labels[0] == 0 && labels[1] == 0);
    od_dbscan_free(dbscan);
}

/* A line of voxels 2 apart with eps 1.5 has no neighbours: all noise. A
 * chain 1 apart with min_points 3 has cores inside and borders at both ends. */
static void dbscan_all_noise_and_chain_borders(void)
{
    int32_t voxels[10 * 3];
    int32_t labels[10];
    od_error err;
    for (int i = 0; i < 10; i++) {
        voxels[i * 3] = 2 * i;
        voxels[i * 3 + 1] = 0;
        voxels[i * 3 + 2] = 0;
    }
    od_dbscan *dbscan = od_dbscan_new(1.5, 2);
    OD_CHECK(od_dbscan_run(dbscan, voxels, 10, labels, &err) == 0);
    int all_noise = 1;
    for (int i = 0; i < 10; i++)
        all_noise &= labels[i] == -1;
    OD_CHECK(all_noise);
    OD_CHECK(od_dbscan_noise_count(dbscan) == 10);
    od_dbscan_free(dbscan);

    for (int i = 0; i < 10; i++)
        voxels[i * 3] = i;
    dbscan = od_dbscan_new(1.0, 3);
    OD_CHECK(od_dbscan_run(dbscan, voxels, 10, labels, &err) == 0);
    const uint8_t *core = od_dbscan_core_flags(dbscan);
    OD_CHECK(core[0] == 0 && core[9] == 0);
    OD_CHECK(core[1] == 1 && core[8] == 1);
    int one_cluster = 1;
    for (int i = 0; i < 10; i++)
        one_cluster &= labels[i] == 0;
    OD_CHECK(one_cluster);
    od_dbscan_free(dbscan);
}

/* A border voxel between two clusters joins the one with the smaller id,
 * which is the one whose first core voxel comes first in (z, y, x) order. */
static void dbscan_border_joins_smallest_cluster(void)
{
    /* two 3 x 3 squares at x 0..2 and x 6..8 (y 0..2), and a bridge voxel
     * at (4, 1) within eps 2 of both (distance 2 to (2, 1) and (6, 1)) */
    int32_t voxels[19 * 3];
    int n = 0;
    for (int side = 0; side < 2; side++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++) {
                voxels[n * 3] = x + 6 * (1 - side); /* the right square first in the input */
                voxels[n * 3 + 1] = y;
                voxels[n * 3 + 2] = 0;
                n++;
            }
    voxels[n * 3] = 4;
    voxels[n * 3 + 1] = 1;
    voxels[n * 3 + 2] = 0;
    n++;
    int32_t labels[19];
    od_error err;
    od_dbscan *dbscan = od_dbscan_new(2.0, 6);
    OD_CHECK(od_dbscan_run(dbscan, voxels, n, labels, &err) == 0);
    OD_CHECK(od_dbscan_cluster_count(dbscan) == 2);
    OD_CHECK(od_dbscan_core_flags(dbscan)[n - 1] == 0);
    OD_CHECK(labels[0] == 1); /* the right square, first in the input */
    OD_CHECK(labels[9] == 0); /* the left square contains (0, 0, 0) */
    OD_CHECK(labels[n - 1] == 0);
    od_dbscan_free(dbscan);
}

static void dbscan_rejects_invalid_arguments(void)
{
    OD_CHECK(od_dbscan_new(0.0, 3) == NULL);
    OD_CHECK(od_dbscan_new(-1.0, 3) == NULL);
    OD_CHECK(od_dbscan_new(OD_DBSCAN_MAX_EPS + 1.0, 3) == NULL);
    OD_CHECK(od_dbscan_new(1.5, 0) == NULL);

    od_dbscan *dbscan = od_dbscan_new(1.5, 3);
    OD_CHECK(od_dbscan_core_flags(dbscan) == NULL);
    od_error err;
    int32_t labels[2];
    const int32_t far[6] = {0, 0, 0, OD_DBSCAN_COORD_LIMIT, 0, 0};
    OD_CHECK(od_dbscan_run(dbscan, far, 2, labels, &err) == -1);
    OD_CHECK(strstr(err.message, "voxel 1 has coordinate") != NULL);
    OD_CHECK(od_dbscan_run(dbscan, NULL, 2, labels, &err) == -1);
    OD_CHECK(strstr(err.message, "NULL") != NULL);
    OD_CHECK(od_dbscan_run(dbscan, far, -1, labels, &err) == -1);
    OD_CHECK(strstr(err.message, "expected >= 0") != NULL);
    od_dbscan_free(dbscan);
}

int main(void)
{
    OD_RUN(dbscan_matches_sklearn);
    OD_RUN(dbscan_labels_independent_of_order_and_threads);
    OD_RUN(dbscan_empty_and_single_voxel);
    OD_RUN(dbscan_all_noise_and_chain_borders);
    OD_RUN(dbscan_border_joins_smallest_cluster);
    OD_RUN(dbscan_rejects_invalid_arguments);
    return od_test_finish();
}
