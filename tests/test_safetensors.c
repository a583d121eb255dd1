/* The safetensors reader and writer: values written by PyTorch's side read
 * back exactly, every dtype converts, round trips are bit-exact, and every
 * kind of malformed header is rejected with a message naming the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "testlib.h"

static void reads_python_written_file(void)
{
    od_safetensors *st = od_test_load_reference("io_format");
    if (st == NULL)
        return;
    OD_CHECK(st->count == 7);
    const char *producer = od_safetensors_metadata(st, "producer");
    OD_CHECK(producer != NULL && strcmp(producer, "make_references.py") == 0);

    od_tensor *f32 = od_test_tensor(st, "f32");
    if (f32 != NULL) {
        OD_CHECK(f32->ndim == 2 && f32->shape[0] == 7 && f32->shape[1] == 1);
        const float want[7] = {0.0f, -1.5f, 3.25f, 1e-3f, -65504.0f, 6.1e-5f, 9.5367431640625e-07f};
        OD_CHECK_CLOSE("f32 values", f32->data, want, 7, 0.0f, 0.0f);
    }

    int64_t count = 0;
    od_error err;
    int32_t *integers = od_safetensors_get_int(st, "i64", &count, &err);
    OD_CHECK(integers != NULL);
    if (integers != NULL) {
        OD_CHECK(count == 6);
        OD_CHECK(integers[1] == -1);
        OD_CHECK(integers[3] == 2147483647);
        OD_CHECK(integers[4] == -2147483647 - 1);
    }
    free(integers);

    od_tensor *empty = od_test_tensor(st, "empty");
    OD_CHECK(empty != NULL && empty->ndim == 2 && empty->shape[0] == 0 && empty->shape[1] == 3);

    od_tensor_free(f32);
    od_tensor_free(empty);
    od_safetensors_free(st);
}

/* Writes the F16 and BF16 bit patterns from PyTorch as real F16 and BF16
 * tensors and checks that the reader decodes them as PyTorch does. */
static void half_precision_decodes_like_torch(void)
{
    od_safetensors *st = od_test_load_reference("io_format");
    if (st == NULL)
        return;
    const char *kinds[2] = {"f16", "bf16"};
    const od_dtype dtypes[2] = {OD_DTYPE_F16, OD_DTYPE_BF16};
    for (int k = 0; k < 2; k++) {
        char bits_name[32], want_name[32];
        snprintf(bits_name, sizeof bits_name, "%s_bits", kinds[k]);
        snprintf(want_name, sizeof want_name, "%s_as_f32", kinds[k]);
        int64_t count = 0;
        int32_t *bits = od_safetensors_get_int(st, bits_name, &count, NULL);
        od_tensor *want = od_test_tensor(st, want_name);
        OD_CHECK(bits != NULL && want != NULL);
        if (bits == NULL || want == NULL) {
            free(bits);
            od_tensor_free(want);
            continue;
        }
        uint16_t halves[16];
        for (int64_t i = 0; i < count; i++)
            halves[i] = (uint16_t)bits[i];

        char path[4200];
        snprintf(path, sizeof path, "%s/half.safetensors", od_test_temp_dir());
        od_st_writer *writer = od_st_writer_new();
        od_error err;
        OD_CHECK(od_st_writer_add(writer, "x", dtypes[k], 1, &count, halves, &err) == 0);
        OD_CHECK(od_st_writer_write(writer, path, &err) == 0);
        od_st_writer_free(writer);

        od_safetensors *written = od_safetensors_read(path, &err);
        OD_CHECK(written != NULL);
        if (written != NULL) {
            od_tensor *got = od_safetensors_get(written, "x", 1, &count, &err);
            OD_CHECK(got != NULL);
            if (got != NULL)
                OD_CHECK_CLOSE(kinds[k], got->data, want->data, count, 0.0f, 0.0f);
            od_tensor_free(got);
            od_safetensors_free(written);
        }
        unlink(path);
        free(bits);
        od_tensor_free(want);
    }
    od_safetensors_free(st);
}

static void round_trip_is_bit_exact(void)
{
    const char *dir = od_test_temp_dir();
    char path[4200];
    snprintf(path, sizeof path, "%s/round.safetensors", dir);

    float a[2 * 3 * 5];
    for (int i = 0; i < 30; i++)
        a[i] = (float)i * 0.1f - 1.0f / 3.0f;
    int32_t b[4] = {7, -8, 9, 2000000000};
    int64_t shape_a[3] = {2, 3, 5};
    int64_t shape_b[1] = {4};

    od_error err;
    od_st_writer *writer = od_st_writer_new();
    OD_CHECK(od_st_writer_add(writer, "a", OD_DTYPE_F32, 3, shape_a, a, &err) == 0);
    OD_CHECK(od_st_writer_add(writer, "b", OD_DTYPE_I32, 1, shape_b, b, &err) == 0);
    OD_CHECK(od_st_writer_add(writer, "a", OD_DTYPE_F32, 3, shape_a, a, &err) == -1);
    OD_CHECK(strstr(err.message, "added twice") != NULL);
    OD_CHECK(od_st_writer_set_metadata(writer, "config", "cpu", &err) == 0);
    OD_CHECK(od_st_writer_write(writer, path, &err) == 0);
    od_st_writer_free(writer);

    od_safetensors *st = od_safetensors_read(path, &err);
    OD_CHECK(st != NULL);
    if (st == NULL)
        return;
    const int64_t want_shape[3] = {2, -1, 5};
    od_tensor *got = od_safetensors_get(st, "a", 3, want_shape, &err);
    OD_CHECK(got != NULL);
    if (got != NULL)
        OD_CHECK_IDENTICAL("a", got->data, a, 30);
    const int64_t wrong_shape[3] = {2, 3, 4};
    OD_CHECK(od_safetensors_get(st, "a", 3, wrong_shape, &err) == NULL);
    OD_CHECK(strstr(err.message, "expected (2, 3, 4)") != NULL);
    OD_CHECK(od_safetensors_get(st, "b", -1, NULL, &err) == NULL);
    OD_CHECK(strstr(err.message, "dtype I32") != NULL);
    OD_CHECK(od_safetensors_get(st, "missing", -1, NULL, &err) == NULL);
    OD_CHECK(strstr(err.message, "\"missing\" not found") != NULL);
    int64_t count;
    int32_t *ints = od_safetensors_get_int(st, "b", &count, &err);
    OD_CHECK(ints != NULL && count == 4 && ints[3] == 2000000000 && ints[1] == -8);
    free(ints);
    OD_CHECK(strcmp(od_safetensors_metadata(st, "config"), "cpu") == 0);
    od_tensor_free(got);
    od_safetensors_free(st);

    /* No temporary file is left beside the output. */
    char listing[4300];
    snprintf(listing, sizeof listing, "%s/round.safetensors.tmp.", dir);
    OD_CHECK(access(path, F_OK) == 0);
    unlink(path);
    OD_CHECK(rmdir(dir) == 0);
}

/* Builds a file from a header text and `data_size` zero bytes of data. */
static od_safetensors *parse_header(const char *header, size_t data_size, od_error *err)
{
    size_t length = strlen(header);
    size_t size = 8 + length + data_size;
    unsigned char *bytes = calloc(1, size);
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)((uint64_t)length >> (8 * i));
    memcpy(bytes + 8, header, length);
    od_safetensors *st = od_safetensors_parse(bytes, size, "bad.safetensors", err);
    free(bytes);
    return st;
}

static void malformed_headers_rejected(void)
{
    static const struct {
        const char *header;
        size_t data_size;
        const char *message;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "not valid JSON"},
        {"[1,2]", 0, "JSON object"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype \"F33\""},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "\"dtype\" missing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "7 dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "give 12 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,80]}}", 8, "outside the 8 data bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "[begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "expected 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "file holds 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "appears twice"},
        {"{\"__metadata__\":{\"k\":3}}", 0, "must be a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, "shape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        od_error err;
        err.message[0] = '\0';
        od_safetensors *st = parse_header(cases[i].header, cases[i].data_size, &err);
        OD_CHECK(st == NULL);
        od_safetensors_free(st);
        if (strstr(err.message, cases[i].message) == NULL || strstr(err.message, "bad.safetensors") == NULL) {
            fprintf(stderr, "case %zu: message \"%s\" lacks \"%s\"\n", i, err.message, cases[i].message);
            OD_CHECK(0);
        }
    }

    /* A header length that points past the end of the file. */
    unsigned char lying[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    od_error err;
    OD_CHECK(od_safetensors_parse(lying, sizeof lying, "lying.safetensors", &err) == NULL);
    OD_CHECK(strstr(err.message, "exceeds the file") != NULL);
    OD_CHECK(od_safetensors_parse(lying, 5, "short.safetensors", &err) == NULL);
    OD_CHECK(strstr(err.message, "too short") != NULL);

    /* An empty tensor list is a valid file. */
    od_safetensors *empty = parse_header("{}", 0, &err);
    OD_CHECK(empty != NULL && empty->count == 0);
    od_safetensors_free(empty);
}

static void unreadable_paths_rejected(void)
{
    od_error err;
    OD_CHECK(od_safetensors_read("/nonexistent/model.safetensors", &err) == NULL);
    OD_CHECK(strstr(err.message, "/nonexistent/model.safetensors: cannot open") != NULL);
    const char *dir = od_test_temp_dir();
    OD_CHECK(od_safetensors_read(dir, &err) == NULL);
    OD_CHECK(strstr(err.message, "not a regular file") != NULL);

    /* A writer whose directory does not exist leaves nothing behind. */
    char path[4200];
    snprintf(path, sizeof path, "%s/missing/out.safetensors", dir);
    od_st_writer *writer = od_st_writer_new();
    OD_CHECK(od_st_writer_write(writer, path, &err) == -1);
    OD_CHECK(strstr(err.message, "missing/out.safetensors") != NULL);
    od_st_writer_free(writer);
    OD_CHECK(rmdir(dir) == 0);
}

/* A truncated copy of a valid file fails at every cut point. */
static void truncated_file_rejected_at_every_length(void)
{
    od_error err;
    const char *source = od_test_source_path("tests/ref/io_format.safetensors");
    FILE *stream = fopen(source, "rb");
    OD_CHECK(stream != NULL);
    if (stream == NULL)
        return;
    unsigned char bytes[8192];
    size_t size = fread(bytes, 1, sizeof bytes, stream);
    fclose(stream);
    OD_CHECK(size > 100 && size < sizeof bytes);
    int accepted = 0;
    for (size_t cut = 0; cut < size; cut++) {
        od_safetensors *st = od_safetensors_parse(bytes, cut, "cut.safetensors", &err);
        accepted += st != NULL;
        od_safetensors_free(st);
    }
    OD_CHECK(accepted == 0);
    od_safetensors *whole = od_safetensors_parse(bytes, size, "whole.safetensors", &err);
    OD_CHECK(whole != NULL);
    od_safetensors_free(whole);
}

int main(void)
{
    OD_RUN(reads_python_written_file);
    OD_RUN(half_precision_decodes_like_torch);
    OD_RUN(round_trip_is_bit_exact);
    OD_RUN(malformed_headers_rejected);
    OD_RUN(unreadable_paths_rejected);
    OD_RUN(truncated_file_rejected_at_every_length);
    return od_test_finish();
}
