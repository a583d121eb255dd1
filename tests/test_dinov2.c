/* DINOv2 forward against scripts/refs/dinov2.py, a float64 PyTorch model of
 * the same architecture. Its random weights have a reduced size (2 layers,
 * hidden 48, 3 heads of 16, MLP 192, a 3 x 3 position table) and are stored
 * under the Hugging Face key names in tests/ref/dinov2_random_weights.safetensors.
 *
 * Three inputs cover the position-embedding paths: 56 x 70 (a 4 x 5 grid,
 * the table upsampled and not square), 42 x 42 (3 x 3, the table as
 * stored) and 28 x 14 (2 x 1, the table shrunk). The wide and tall inputs
 * run with both position-interpolation formulas. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "io/safetensors.h"
#include "teacher/dinov2.h"
#include "testlib.h"

#define REF_HEADS 3
#define REF_HIDDEN 48

/* The C forward runs in float32 against a float64 reference (whose
 * weights and image are float32 values). The largest error observed over
 * the three inputs is 4.3e-6 on values of order 1; 3e-5 leaves margin for
 * other sgemm paths and thread counts, and a wrong interpolation weight or
 * scale factor already gives errors above 1e-2. */
#define TOKEN_ATOL 3e-5f
#define TOKEN_RTOL 3e-5f

static const char *weights_path(void)
{
    return od_test_source_path("tests/ref/dinov2_random_weights.safetensors");
}

static void check_case(od_dinov2 *net, const char *name, int64_t height, int64_t width)
{
    od_safetensors *ref = od_test_load_reference(name);
    if (ref == NULL)
        return;
    od_tensor *image = od_test_tensor(ref, "image");
    od_tensor *want_patches = od_test_tensor(ref, "patch_tokens");
    od_tensor *want_cls = od_test_tensor(ref, "cls_token");
    od_tensor *want_layer0 = od_test_tensor(ref, "layer0_tokens");
    if (image != NULL && want_patches != NULL && want_cls != NULL && want_layer0 != NULL) {
        OD_CHECK(image->shape[0] == height && image->shape[1] == width);
        const int64_t count = (height / 14) * (width / 14) * REF_HIDDEN;
        OD_CHECK(od_tensor_numel(want_patches) == count);
        float *patches = od_alloc_floats(count);
        float *layer0 = od_alloc_floats(count);
        float cls[REF_HIDDEN];
        od_error err;
        const int status =
            od_dinov2_forward(net, image->data, height, width, patches, cls, 0, layer0, &err);
        if (status != 0)
            od_test_record(0, __FILE__, __LINE__, err.message);
        OD_CHECK_CLOSE(name, patches, want_patches->data, count, TOKEN_ATOL, TOKEN_RTOL);
        OD_CHECK_CLOSE(name, cls, want_cls->data, REF_HIDDEN, TOKEN_ATOL, TOKEN_RTOL);
        OD_CHECK_CLOSE(name, layer0, want_layer0->data, count, TOKEN_ATOL, TOKEN_RTOL);

        /* A second call gives bit-identical tokens. */
        float *again = od_alloc_floats(count);
        OD_CHECK(od_dinov2_forward(net, image->data, height, width, again, NULL, -1, NULL, &err) == 0);
        OD_CHECK_IDENTICAL(name, again, patches, count);
        od_free(again);
        od_free(patches);
        od_free(layer0);
    }
    od_tensor_free(image);
    od_tensor_free(want_patches);
    od_tensor_free(want_cls);
    od_tensor_free(want_layer0);
    od_safetensors_free(ref);
}

static od_dinov2 *load_reference_net(void)
{
    od_error err;
    od_dinov2 *net = od_dinov2_load(weights_path(), REF_HEADS, &err);
    if (net == NULL)
        od_test_record(0, __FILE__, __LINE__, err.message);
    return net;
}

static void dinov2_reads_sizes_from_weights(void)
{
    od_dinov2 *net = load_reference_net();
    if (net == NULL)
        return;
    const od_dinov2_info info = od_dinov2_get_info(net);
    OD_CHECK(info.hidden == 48);
    OD_CHECK(info.heads == 3);
    OD_CHECK(info.mlp_hidden == 192);
    OD_CHECK(info.layers == 2);
    OD_CHECK(info.patch_size == 14);
    OD_CHECK(info.table_side == 3);
    od_dinov2_free(net);
}

static void dinov2_matches_torch_wide_grid(void)
{
    od_dinov2 *net = load_reference_net();
    if (net != NULL)
        check_case(net, "dinov2_wide", 56, 70);
    od_dinov2_free(net);
}

static void dinov2_matches_torch_table_grid(void)
{
    od_dinov2 *net = load_reference_net();
    if (net != NULL)
        check_case(net, "dinov2_table", 42, 42);
    od_dinov2_free(net);
}

static void dinov2_matches_torch_tall_grid(void)
{
    od_dinov2 *net = load_reference_net();
    if (net != NULL)
        check_case(net, "dinov2_tall", 28, 14);
    od_dinov2_free(net);
}

/* Copies the reference weights to dir/file_name, leaving out tensor `skip`
 * and storing tensor `reshape` (if not NULL) with its last dimension one
 * shorter. Tensors are written with `dtype` (F32 or F64). Returns the path
 * in a static buffer, or NULL after recording a failure. */
static const char *write_modified_weights(const char *file_name, const char *skip,
                                          const char *reshape, od_dtype dtype)
{
    static char path[4096];
    od_error err;
    od_safetensors *st = od_safetensors_read(weights_path(), &err);
    if (st == NULL) {
        od_test_record(0, __FILE__, __LINE__, err.message);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/%s", od_test_temp_dir(), file_name);
    od_st_writer *writer = od_st_writer_new();
    od_tensor **tensors = calloc(st->count, sizeof *tensors);
    double **doubles = calloc(st->count, sizeof *doubles);
    int ok = writer != NULL && tensors != NULL && doubles != NULL;
    for (size_t i = 0; ok && i < st->count; i++) {
        const od_st_entry *e = &st->entries[i];
        if (skip != NULL && strcmp(e->name, skip) == 0)
            continue;
        tensors[i] = od_safetensors_get(st, e->name, -1, NULL, &err);
        ok = tensors[i] != NULL;
        if (!ok)
            break;
        int64_t shape[OD_MAX_DIMS];
        memcpy(shape, e->shape, sizeof shape);
        if (reshape != NULL && strcmp(e->name, reshape) == 0)
            shape[e->ndim - 1]--;
        const int64_t count = od_shape_numel(e->ndim, shape);
        if (dtype == OD_DTYPE_F64) {
            doubles[i] = malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
            for (int64_t j = 0; doubles[i] != NULL && j < count; j++)
                doubles[i][j] = tensors[i]->data[j];
            ok = doubles[i] != NULL &&
                 od_st_writer_add(writer, e->name, dtype, e->ndim, shape, doubles[i], &err) == 0;
        } else {
            ok = od_st_writer_add(writer, e->name, dtype, e->ndim, shape, tensors[i]->data, &err) == 0;
        }
    }
    if (ok)
        ok = od_st_writer_write(writer, path, &err) == 0;
    if (!ok)
        od_test_record(0, __FILE__, __LINE__, err.message);
    for (size_t i = 0; tensors != NULL && doubles != NULL && i < st->count; i++) {
        od_tensor_free(tensors[i]);
        free(doubles[i]);
    }
    free(tensors);
    free(doubles);
    od_st_writer_free(writer);
    od_safetensors_free(st);
    return ok ? path : NULL;
}

static void check_size_positions(const char *name, int64_t height, int64_t width)
{
    od_dinov2 *net = load_reference_net();
    if (net == NULL)
        return;
    od_error err;
    OD_CHECK(od_dinov2_set_positions(net, OD_DINOV2_POSITIONS_SIZE, &err) == 0);
    check_case(net, name, height, width);
    od_dinov2_free(net);
}

static void dinov2_size_positions_wide_grid(void)
{
    check_size_positions("dinov2_wide_size", 56, 70);
}

static void dinov2_size_positions_tall_grid(void)
{
    check_size_positions("dinov2_tall_size", 28, 14);
}

static void dinov2_rejects_bad_positions(void)
{
    od_dinov2 *net = load_reference_net();
    if (net == NULL)
        return;
    od_error err;
    OD_CHECK(od_dinov2_set_positions(net, (od_dinov2_positions)7, &err) == -1);
    OD_CHECK(strstr(err.message, "position interpolation 7 is invalid") != NULL);
    od_dinov2_free(net);
}

static void dinov2_accepts_f64_weights(void)
{
    const char *path = write_modified_weights("f64.safetensors", NULL, NULL, OD_DTYPE_F64);
    if (path == NULL)
        return;
    od_error err;
    od_dinov2 *net = od_dinov2_load(path, REF_HEADS, &err);
    if (net == NULL) {
        od_test_record(0, __FILE__, __LINE__, err.message);
        return;
    }
    check_case(net, "dinov2_wide", 56, 70);
    od_dinov2_free(net);
}

static void dinov2_rejects_missing_key(void)
{
    const char *key = "encoder.layer.1.mlp.fc2.bias";
    const char *path = write_modified_weights("missing.safetensors", key, NULL, OD_DTYPE_F32);
    if (path == NULL)
        return;
    od_error err;
    od_dinov2 *net = od_dinov2_load(path, REF_HEADS, &err);
    OD_CHECK(net == NULL);
    OD_CHECK(strstr(err.message, key) != NULL);
    OD_CHECK(strstr(err.message, "not found") != NULL);
    od_dinov2_free(net);
}

static void dinov2_rejects_wrong_shape(void)
{
    const char *key = "encoder.layer.0.attention.attention.key.weight";
    const char *path = write_modified_weights("shape.safetensors", NULL, key, OD_DTYPE_F32);
    if (path == NULL)
        return;
    od_error err;
    od_dinov2 *net = od_dinov2_load(path, REF_HEADS, &err);
    OD_CHECK(net == NULL);
    OD_CHECK(strstr(err.message, key) != NULL);
    OD_CHECK(strstr(err.message, "(48, 47)") != NULL);
    od_dinov2_free(net);
}

static void dinov2_rejects_bad_heads(void)
{
    od_error err;
    /* 48 channels in 5 heads do not split evenly. */
    od_dinov2 *net = od_dinov2_load(weights_path(), 5, &err);
    OD_CHECK(net == NULL);
    OD_CHECK(strstr(err.message, "heads") != NULL);
    od_dinov2_free(net);
}

static void dinov2_rejects_missing_file(void)
{
    od_error err;
    od_dinov2 *net = od_dinov2_load("/nonexistent/model.safetensors", 0, &err);
    OD_CHECK(net == NULL);
    OD_CHECK(strstr(err.message, "facebook/dinov2-small") != NULL);
    od_dinov2_free(net);
}

static void dinov2_forward_image_resizes(void)
{
    od_dinov2 *net = load_reference_net();
    if (net == NULL)
        return;
    od_image image = {0}, resized = {0};
    od_error err;
    OD_CHECK(od_image_new(33, 20, 3, &image, &err) == 0);
    for (int64_t i = 0; i < 33 * 20 * 3; i++)
        image.pixels[i] = (float)((i * 37) % 101) / 100.0f;
    OD_CHECK(od_image_resize(&image, 70, 56, &resized, &err) == 0);

    const int64_t count = 4 * 5 * REF_HIDDEN;
    float *want = od_alloc_floats(count);
    float *got = od_alloc_floats(count);
    OD_CHECK(od_dinov2_forward(net, resized.pixels, 56, 70, want, NULL, -1, NULL, &err) == 0);
    OD_CHECK(od_dinov2_forward_image(net, &image, 56, 70, got, NULL, -1, NULL, &err) == 0);
    OD_CHECK_IDENTICAL("resized forward", got, want, count);

    od_image gray = {0};
    OD_CHECK(od_image_new(70, 56, 1, &gray, &err) == 0);
    OD_CHECK(od_dinov2_forward_image(net, &gray, 56, 70, got, NULL, -1, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "1 channels, expected 3") != NULL);

    od_image_free(&gray);
    od_image_free(&image);
    od_image_free(&resized);
    od_free(want);
    od_free(got);
    od_dinov2_free(net);
}

static void dinov2_rejects_bad_input(void)
{
    od_dinov2 *net = load_reference_net();
    if (net == NULL)
        return;
    float *image = od_alloc_floats(56 * 71 * 3);
    float *tokens = od_alloc_floats(4 * 5 * REF_HIDDEN);
    od_error err;

    OD_CHECK(od_dinov2_forward(net, image, 56, 71, tokens, NULL, -1, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "56x71") != NULL);
    OD_CHECK(strstr(err.message, "multiples of the patch size 14") != NULL);

    OD_CHECK(od_dinov2_forward(net, image, 0, 14, tokens, NULL, -1, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "multiples") != NULL);

    OD_CHECK(od_dinov2_forward(net, image, 56, 70, NULL, NULL, 2, tokens, &err) == -1);
    OD_CHECK(strstr(err.message, "layer index 2") != NULL);

    od_free(image);
    od_free(tokens);
    od_dinov2_free(net);
}

int main(void)
{
    OD_RUN(dinov2_reads_sizes_from_weights);
    OD_RUN(dinov2_matches_torch_wide_grid);
    OD_RUN(dinov2_matches_torch_table_grid);
    OD_RUN(dinov2_matches_torch_tall_grid);
    OD_RUN(dinov2_size_positions_wide_grid);
    OD_RUN(dinov2_size_positions_tall_grid);
    OD_RUN(dinov2_rejects_bad_positions);
    OD_RUN(dinov2_accepts_f64_weights);
    OD_RUN(dinov2_rejects_missing_key);
    OD_RUN(dinov2_rejects_wrong_shape);
    OD_RUN(dinov2_rejects_bad_heads);
    OD_RUN(dinov2_rejects_missing_file);
    OD_RUN(dinov2_forward_image_resizes);
    OD_RUN(dinov2_rejects_bad_input);
    return od_test_finish();
}
