/* Teacher feature cache. Views written as float16 read back as exactly the
 * float16 rounding of what went in. The metadata must match what the reader
 * expects, field by field. Bad views and bad files are rejected with
 * messages, writes leave no temporary files, and the checksum is FNV-1a. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "teacher/feature_cache.h"
#include "testlib.h"

static od_feature_cache_info make_info(void)
{
    od_feature_cache_info info;
    memset(&info, 0, sizeof info);
    strcpy(info.network, "inceptionv3");
    strcpy(info.layer, "mixed5");
    info.input_height = 299;
    info.input_width = 299;
    info.stride = 16;
    info.offset = 21.0;
    info.channels = 16;
    strcpy(info.pca_checksum, "0123456789abcdef");
    return info;
}

static char *write_text_file(const char *name, const char *text)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", od_test_temp_dir(), name);
    FILE *file = fopen(path, "wb");
    fputs(text, file);
    fclose(file);
    return path;
}

static void checksum_is_fnv1a(void)
{
    char checksum[17];
    od_error err;
    /* Published FNV-1a 64-bit test values: "" and "a". */
    OD_CHECK(od_feature_cache_checksum(write_text_file("empty", ""), checksum, &err) == 0);
    OD_CHECK(strcmp(checksum, "cbf29ce484222325") == 0);
    OD_CHECK(od_feature_cache_checksum(write_text_file("a", "a"), checksum, &err) == 0);
    OD_CHECK(strcmp(checksum, "af63dc4c8601ec8c") == 0);
    OD_CHECK(od_feature_cache_checksum("/nonexistent/pca.safetensors", checksum, &err) == -1);
    OD_CHECK(strstr(err.message, "cannot open") != NULL);
}

static void views_round_trip_as_float16(void)
{
    od_feature_cache_info info = make_info();
    const int64_t h = 5, w = 7, c = info.channels;
    float *first = malloc((size_t)(h * w * c) * sizeof(float));
    for (int64_t i = 0; i < h * w * c; i++)
        first[i] = (float)sin(0.37 * (double)i) * 40.0f + 1e-6f * (float)i;
    float second[16];
    for (int i = 0; i < 16; i++)
        second[i] = -3.3f * (float)i;
    od_error err;
    od_feature_cache_writer *writer = od_feature_cache_writer_new(&info, &err);
    OD_CHECK(writer != NULL);
    OD_CHECK(od_feature_cache_add_view(writer, "frame_002", first, h, w, &err) == 0);
    OD_CHECK(od_feature_cache_add_view(writer, "frame_001", second, 1, 1, &err) == 0);
    OD_CHECK(od_feature_cache_add_view(writer, "frame_001", second, 1, 1, &err) == -1);
    OD_CHECK(strstr(err.message, "already added") != NULL);
    char path[1024];
    const char *dir = od_test_temp_dir();
    snprintf(path, sizeof path, "%s/scene.safetensors", dir);
    OD_CHECK(od_feature_cache_write(writer, path, &err) == 0);
    od_feature_cache_writer_free(writer);

    /* The atomic write leaves only the final file in the folder. */
    int entries = 0;
    DIR *listing = opendir(dir);
    for (struct dirent *e; listing && (e = readdir(listing));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            entries++;
    if (listing)
        closedir(listing);
    OD_CHECK(entries == 1);

    od_feature_cache *cache = od_feature_cache_read(path, &info, &err);
    OD_CHECK(cache != NULL);
    if (cache) {
        OD_CHECK(od_feature_cache_view_count(cache) == 2);
        od_tensor *got = od_feature_cache_get(cache, "frame_002", &err);
        OD_CHECK(got && got->ndim == 3 && got->shape[0] == h && got->shape[1] == w && got->shape[2] == c);
        if (got) {
            float *want = malloc((size_t)(h * w * c) * sizeof(float));
            for (int64_t i = 0; i < h * w * c; i++)
                want[i] = od_half_to_float(od_float_to_half(first[i]));
            OD_CHECK_IDENTICAL("frame_002", got->data, want, h * w * c);
            /* float16 keeps 11 significant bits: relative error <= 2^-11. */
            OD_CHECK_CLOSE("frame_002 vs float", got->data, first, h * w * c, 1e-4f, 4.9e-4f);
            free(want);
        }
        od_tensor_free(got);
        got = od_feature_cache_get(cache, "frame_001", &err);
        OD_CHECK(got && got->shape[0] == 1 && got->shape[1] == 1);
        if (got)
            OD_CHECK_CLOSE("frame_001", got->data, second, 16, 0.0f, 4.9e-4f);
        od_tensor_free(got);
        OD_CHECK(od_feature_cache_get(cache, "frame_003", &err) == NULL);
        OD_CHECK(strstr(err.message, "frame_003 not found") != NULL);
    }
    od_feature_cache_free(cache);

    /* Every metadata field must match what the reader expects. */
    od_feature_cache_info other = info;
    strcpy(other.network, "dinov2");
    OD_CHECK(od_feature_cache_read(path, &other, &err) == NULL);
    OD_CHECK(strstr(err.message, "network is \"inceptionv3\", expected \"dinov2\"") != NULL);
    other = info;
    other.stride = 14;
    OD_CHECK(od_feature_cache_read(path, &other, &err) == NULL);
    OD_CHECK(strstr(err.message, "stride") != NULL);
    other = info;
    strcpy(other.pca_checksum, "fedcba9876543210");
    OD_CHECK(od_feature_cache_read(path, &other, &err) == NULL);
    OD_CHECK(strstr(err.message, "pca_checksum") != NULL);
    other = info;
    other.channels = 8;
    OD_CHECK(od_feature_cache_read(path, &other, &err) == NULL);
    other = info;
    other.offset = 7.5;
    OD_CHECK(od_feature_cache_read(path, &other, &err) == NULL);
    OD_CHECK(strstr(err.message, "offset is 21, expected 7.5") != NULL);
    free(first);
}

static void rejects_bad_views_and_files(void)
{
    od_feature_cache_info info = make_info();
    od_error err;
    od_feature_cache_info empty = info;
    empty.layer[0] = '\0';
    OD_CHECK(od_feature_cache_writer_new(&empty, &err) == NULL);
    OD_CHECK(strstr(err.message, "non-empty") != NULL);
    od_feature_cache_writer *writer = od_feature_cache_writer_new(&info, &err);
    float values[16] = {0};
    OD_CHECK(od_feature_cache_add_view(writer, "v", values, 0, 1, &err) == -1);
    values[3] = NAN;
    OD_CHECK(od_feature_cache_add_view(writer, "v", values, 1, 1, &err) == -1);
    OD_CHECK(strstr(err.message, "index 3") != NULL);
    values[3] = 70000.0f;
    OD_CHECK(od_feature_cache_add_view(writer, "v", values, 1, 1, &err) == -1);
    od_feature_cache_writer_free(writer);

    /* Correct metadata but a float32 view, then a float16 infinity. */
    const char *keys[9] = {"format", "network", "layer", "input_height", "input_width", "stride", "channels",
                           "pca_checksum", "offset"};
    const char *values_text[9] = {"oddone-features", "inceptionv3", "mixed5", "299", "299", "16", "16",
                                  "0123456789abcdef", "21"};
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.safetensors", od_test_temp_dir());
    for (int variant = 0; variant < 2; variant++) {
        od_st_writer *st = od_st_writer_new();
        for (int i = 0; i < 9; i++)
            od_st_writer_set_metadata(st, keys[i], values_text[i], &err);
        const int64_t shape[3] = {1, 1, 16};
        float floats[16] = {0};
        uint16_t halves[16] = {0};
        halves[5] = 0x7c00;
        if (variant == 0)
            od_st_writer_add(st, "v", OD_DTYPE_F32, 3, shape, floats, &err);
        else
            od_st_writer_add(st, "v", OD_DTYPE_F16, 3, shape, halves, &err);
        OD_CHECK(od_st_writer_write(st, path, &err) == 0);
        od_st_writer_free(st);
        OD_CHECK(od_feature_cache_read(path, &info, &err) == NULL);
        OD_CHECK(strstr(err.message, variant == 0 ? "expected F16" : "non-finite value at index 5") != NULL);
    }

    /* A cache written before the offset was recorded, and one with an offset that is no number. */
    for (int variant = 0; variant < 2; variant++) {
        od_st_writer *st = od_st_writer_new();
        for (int i = 0; i < 8; i++)
            od_st_writer_set_metadata(st, keys[i], values_text[i], &err);
        if (variant == 1)
            od_st_writer_set_metadata(st, "offset", "21 px", &err);
        const int64_t shape[3] = {1, 1, 16};
        uint16_t halves[16] = {0};
        od_st_writer_add(st, "v", OD_DTYPE_F16, 3, shape, halves, &err);
        OD_CHECK(od_st_writer_write(st, path, &err) == 0);
        od_st_writer_free(st);
        OD_CHECK(od_feature_cache_read(path, &info, &err) == NULL);
        OD_CHECK(strstr(err.message, variant == 0 ? "recompute it with `oddone teacher`" : "expected a finite number") !=
                 NULL);
    }
    od_feature_cache_info infinite = info;
    infinite.offset = INFINITY;
    OD_CHECK(od_feature_cache_writer_new(&infinite, &err) == NULL);
    OD_CHECK(strstr(err.message, "offset") != NULL);
}

int main(void)
{
    OD_RUN(checksum_is_fnv1a);
    OD_RUN(views_round_trip_as_float16);
    OD_RUN(rejects_bad_views_and_files);
    return od_test_finish();
}
