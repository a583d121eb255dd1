/* Part-to-part matching between objects; see match.h. */
#include "detect/match.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/gemm.h"
#include "core/mem.h"

/* Query rows per similarity block, so that scratch stays (block, reference_count). */
#define MATCH_BLOCK_ROWS 256

int od_match_topk(const float *query, int64_t query_count, const float *reference, int64_t reference_count,
                  int64_t channels, int k, float *distances, int64_t *indices, od_error *err)
{
    if (query == NULL || reference == NULL || distances == NULL)
        return od_fail(err, "match: NULL query, reference or distances");
    if (query_count < 1 || reference_count < 1 || channels < 1)
        return od_fail(err, "match: counts must be positive (query %lld, reference %lld, channels %lld)",
                       (long long)query_count, (long long)reference_count, (long long)channels);
    if (k < 1 || k > OD_MATCH_MAX_K)
        return od_fail(err, "match: k = %d is not in [1, %d]", k, OD_MATCH_MAX_K);
    if (k > reference_count)
        return od_fail(err, "match: k = %d exceeds the reference's %lld rows", k, (long long)reference_count);
    int64_t block = query_count < MATCH_BLOCK_ROWS ? query_count : MATCH_BLOCK_ROWS;
    float *similarity = od_alloc_floats(block * reference_count);
    if (similarity == NULL)
        return od_fail(err, "match: out of memory for a %lld x %lld similarity block", (long long)block,
                       (long long)reference_count);

    for (int64_t start = 0; start < query_count; start += block) {
        int64_t rows = query_count - start < block ? query_count - start : block;
        od_sgemm('N', 'T', rows, reference_count, channels, 1.0f, query + start * channels, channels, reference,
                 channels, 0.0f, similarity, reference_count);

        /* Per row, keep the k largest similarities by insertion, best first. */
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const float *row = similarity + r * reference_count;
            float best[k];
            int64_t best_index[k];
            int kept = 0;
            for (int64_t j = 0; j < reference_count; j++) {
                float value = row[j];
                if (kept == k && !(value > best[k - 1]))
                    continue;
                int slot = kept < k ? kept++ : k - 1;
                while (slot > 0 && value > best[slot - 1]) {
                    best[slot] = best[slot - 1];
                    best_index[slot] = best_index[slot - 1];
                    slot--;
                }
                best[slot] = value;
                best_index[slot] = j;
            }
            int64_t i = start + r;
            for (int m = 0; m < k; m++) {
                distances[i * k + m] = 1.0f - best[m];
                if (indices != NULL)
                    indices[i * k + m] = best_index[m];
            }
        }
    }
    od_free(similarity);
    return 0;
}

static int compare_floats_descending(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) ? -1 : (x < y);
}

double od_match_top_fraction_mean(float *values, int64_t count, double fraction)
{
    qsort(values, (size_t)count, sizeof *values, compare_floats_descending);
    int64_t top = (int64_t)ceil(fraction * (double)count);
    top = top < 1 ? 1 : (top > count ? count : top);
    double sum = 0.0;
    for (int64_t i = 0; i < top; i++)
        sum += values[i];
    return sum / (double)top;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) ? -1 : (x > y);
}

int od_match_consensus_group(const double *distance, const uint8_t *eligible, int count, uint8_t *in_group)
{
    memset(in_group, 0, (size_t)count);
    int members = 0;
    for (int a = 0; a < count; a++)
        members += eligible == NULL || eligible[a];
    if (members < 2) {
        for (int a = 0; a < count; a++)
            in_group[a] = eligible == NULL || eligible[a];
        return members;
    }

    /* Typicality: the median symmetric distance to the other eligible objects. */
    double typicality[count], others[count];
    for (int a = 0; a < count; a++) {
        typicality[a] = INFINITY;
        if (eligible != NULL && !eligible[a])
            continue;
        int n = 0;
        for (int b = 0; b < count; b++)
            if (b != a && (eligible == NULL || eligible[b]))
                others[n++] = 0.5 * (distance[a * count + b] + distance[b * count + a]);
        qsort(others, (size_t)n, sizeof *others, compare_doubles);
        typicality[a] = n % 2 ? others[n / 2] : 0.5 * (others[n / 2 - 1] + others[n / 2]);
    }

    int size = (members + 1) / 2;
    size = size < 2 ? 2 : size;
    for (int chosen = 0; chosen < size; chosen++) {
        int best = -1;
        for (int a = 0; a < count; a++)
            if (!in_group[a] && (eligible == NULL || eligible[a]) && (best < 0 || typicality[a] < typicality[best]))
                best = a;
        in_group[best] = 1;
    }
    return size;
}
