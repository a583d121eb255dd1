/* Part-to-part matching of the compare detector: top-k matches against a
 * brute-force search, the top-fraction mean, and the consensus group that
 * scores are measured against. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "detect/match.h"
#include "testlib.h"

/* Fills rows (count, channels) with random unit vectors. */
static void random_unit_rows(od_rng *rng, float *rows, int64_t count, int64_t channels)
{
    for (int64_t i = 0; i < count; i++) {
        double norm = 0.0;
        for (int64_t c = 0; c < channels; c++) {
            float value = (float)(2.0 * od_rng_uniform(rng) - 1.0);
            rows[i * channels + c] = value;
            norm += (double)value * value;
        }
        for (int64_t c = 0; c < channels; c++)
            rows[i * channels + c] /= (float)sqrt(norm);
    }
}

/* Checks od_match_topk against sorting every similarity, for a query
 * larger than one similarity block. */
static void test_topk_matches_brute_force(void)
{
    od_rng rng;
    od_rng_seed(&rng, 11);
    const int64_t query_count = 300, reference_count = 77, channels = 19;
    const int k = 5;
    float *query = malloc(query_count * channels * sizeof *query);
    float *reference = malloc(reference_count * channels * sizeof *reference);
    float *distances = malloc(query_count * k * sizeof *distances);
    int64_t *indices = malloc(query_count * k * sizeof *indices);
    random_unit_rows(&rng, query, query_count, channels);
    random_unit_rows(&rng, reference, reference_count, channels);
    od_error err;
    OD_CHECK(od_match_topk(query, query_count, reference, reference_count, channels, k, distances, indices, &err) ==
             0);

    int index_errors = 0;
    float worst = 0.0f;
    for (int64_t i = 0; i < query_count; i++) {
        /* Brute force: k passes, each taking the most similar row not yet taken. */
        uint8_t taken[77] = {0};
        for (int m = 0; m < k; m++) {
            int64_t best = -1;
            double best_similarity = -3.0;
            for (int64_t j = 0; j < reference_count; j++) {
                if (taken[j])
                    continue;
                double similarity = 0.0;
                for (int64_t c = 0; c < channels; c++)
                    similarity += (double)query[i * channels + c] * reference[j * channels + c];
                if (similarity > best_similarity) {
                    best_similarity = similarity;
                    best = j;
                }
            }
            taken[best] = 1;
            index_errors += indices[i * k + m] != best;
            float difference = fabsf(distances[i * k + m] - (float)(1.0 - best_similarity));
            worst = difference > worst ? difference : worst;
        }
        for (int m = 1; m < k; m++)
            index_errors += distances[i * k + m] < distances[i * k + m - 1];
    }
    printf("top-k: %d index errors, worst distance error %.2e\n", index_errors, (double)worst);
    OD_CHECK(index_errors == 0);
    OD_CHECK(worst < 1e-5f);

    /* Bad arguments. */
    OD_CHECK(od_match_topk(query, query_count, reference, reference_count, channels, 0, distances, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "k = 0") != NULL);
    OD_CHECK(od_match_topk(query, query_count, reference, 4, channels, 5, distances, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "exceeds") != NULL);
    OD_CHECK(od_match_topk(query, query_count, reference, reference_count, channels, OD_MATCH_MAX_K + 1, distances,
                           NULL, &err) == -1);
    OD_CHECK(od_match_topk(NULL, query_count, reference, reference_count, channels, 1, distances, NULL, &err) ==
             -1);
    free(query);
    free(reference);
    free(distances);
    free(indices);
}

/* Equal similarities keep the lower reference row first. */
static void test_topk_ties_lower_row_first(void)
{
    const float query[2] = {1.0f, 0.0f};
    const float reference[8] = {0.0f, 1.0f, 1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.0f};
    float distances[3];
    int64_t indices[3];
    od_error err;
    OD_CHECK(od_match_topk(query, 1, reference, 4, 2, 3, distances, indices, &err) == 0);
    OD_CHECK(indices[0] == 1 && indices[1] == 3 && indices[2] == 0);
    OD_CHECK(distances[0] == 0.0f && distances[1] == 0.0f && distances[2] == 1.0f);
}

static void test_top_fraction_mean(void)
{
    float values[10] = {0.1f, 0.9f, 0.3f, 0.7f, 0.5f, 0.2f, 0.8f, 0.4f, 0.6f, 1.0f};
    /* ceil(0.25 * 10) = 3 largest: 1.0, 0.9, 0.8. */
    OD_CHECK(fabs(od_match_top_fraction_mean(values, 10, 0.25) - 0.9) < 1e-6);
    OD_CHECK(fabs(od_match_top_fraction_mean(values, 10, 1.0) - 0.55) < 1e-6);
    /* A tiny fraction still takes one value. */
    OD_CHECK(fabs(od_match_top_fraction_mean(values, 10, 1e-9) - 1.0) < 1e-6);
}

/* Five objects, two of them odd (3 and 4): the group is the three most
 * typical normal ones, whatever the odd ones' distances to each other. */
static void test_consensus_group_skips_odd_objects(void)
{
    double distance[25];
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++)
            distance[a * 5 + b] = a == b ? 0.0 : (a >= 3 || b >= 3) ? 0.5 : 0.1 + 0.01 * (a + b);
    distance[3 * 5 + 4] = distance[4 * 5 + 3] = 0.05; /* the odd ones look alike */
    uint8_t group[5];
    OD_CHECK(od_match_consensus_group(distance, NULL, 5, group) == 3);
    OD_CHECK(group[0] && group[1] && group[2] && !group[3] && !group[4]);

    /* Ineligible objects (say truncated) never join. */
    uint8_t eligible[5] = {1, 0, 1, 1, 1};
    OD_CHECK(od_match_consensus_group(distance, eligible, 5, group) == 2);
    OD_CHECK(group[0] && !group[1] && group[2] && !group[3] && !group[4]);

    /* Fewer than two eligible objects: the group is what is eligible. */
    uint8_t single[5] = {0, 0, 1, 0, 0};
    OD_CHECK(od_match_consensus_group(distance, single, 5, group) == 1);
    OD_CHECK(group[2] && !group[0] && !group[1] && !group[3] && !group[4]);

    /* Three objects with one odd: the two normal ones. */
    double three[9] = {0.0, 0.1, 0.6, 0.12, 0.0, 0.65, 0.6, 0.62, 0.0};
    OD_CHECK(od_match_consensus_group(three, NULL, 3, group) == 2);
    OD_CHECK(group[0] && group[1] && !group[2]);
}

int main(void)
{
    OD_RUN(test_topk_matches_brute_force);
    OD_RUN(test_topk_ties_lower_row_first);
    OD_RUN(test_top_fraction_mean);
    OD_RUN(test_consensus_group_skips_odd_objects);
    return od_test_finish();
}
