/* DINOv2 ViT-S/14 forward at its real sizes (12 layers, hidden 384, 6 heads
 * of 64, MLP 1536, a 37 x 37 position table) with random weights. The
 * inputs are a 224 x 224 image (16 x 16 patches) and a 448 x 448 image
 * (32 x 32).
 * bench/torch_dinov2.py prints the same names. flops count 2 per
 * multiply-add of the matrix products (patch embedding, projections, MLP,
 * attention scores and weighted sums). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "benchlib.h"
#include "core/mem.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "teacher/dinov2.h"

#define HIDDEN 384
#define LAYERS 12
#define MLP_HIDDEN 1536
#define PATCH 14
#define TABLE_SIDE 37

typedef struct bench_case {
    od_dinov2 *net;
    float *image, *tokens;
    int64_t size;
} bench_case;

static void fail(const char *operation, const od_error *err)
{
    fprintf(stderr, "bench_dinov2: %s failed: %s\n", operation, err->message);
    exit(1);
}

/* Adds one random tensor: normal values times scale, plus offset. */
static float *add_random(od_st_writer *writer, od_rng *rng, const char *name, int ndim,
                         const int64_t *shape, float scale, float offset)
{
    od_error err;
    const int64_t count = od_shape_numel(ndim, shape);
    float *data = od_alloc_floats(count);
    if (data == NULL) {
        fprintf(stderr, "bench_dinov2: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < count; i++)
        data[i] = offset + scale * od_rng_normal(rng);
    if (od_st_writer_add(writer, name, OD_DTYPE_F32, ndim, shape, data, &err) != 0)
        fail("adding a tensor", &err);
    return data;
}

/* Writes random ViT-S/14 weights under the Hugging Face names to path. */
static void write_random_weights(const char *path)
{
    od_rng rng;
    od_rng_seed(&rng, 1);
    od_st_writer *writer = od_st_writer_new();
    float *buffers[8 + LAYERS * 18];
    int used = 0;
    char name[128];
    const int64_t C = HIDDEN, M = MLP_HIDDEN;
    const int64_t cls[3] = {1, 1, C}, mask[2] = {1, C};
    const int64_t position[3] = {1, 1 + TABLE_SIDE * TABLE_SIDE, C};
    const int64_t patch[4] = {C, 3, PATCH, PATCH};
    const int64_t vector[1] = {C}, mlp_vector[1] = {M};
    const int64_t square[2] = {C, C}, fc1[2] = {M, C}, fc2[2] = {C, M};

    buffers[used++] = add_random(writer, &rng, "embeddings.cls_token", 3, cls, 1.0f, 0.0f);
    buffers[used++] = add_random(writer, &rng, "embeddings.mask_token", 2, mask, 1.0f, 0.0f);
    buffers[used++] = add_random(writer, &rng, "embeddings.position_embeddings", 3, position, 1.0f, 0.0f);
    buffers[used++] = add_random(writer, &rng, "embeddings.patch_embeddings.projection.weight", 4,
                                 patch, 0.04f, 0.0f);
    buffers[used++] = add_random(writer, &rng, "embeddings.patch_embeddings.projection.bias", 1,
                                 vector, 0.1f, 0.0f);
    buffers[used++] = add_random(writer, &rng, "layernorm.weight", 1, vector, 0.1f, 1.0f);
    buffers[used++] = add_random(writer, &rng, "layernorm.bias", 1, vector, 0.1f, 0.0f);
    for (int i = 0; i < LAYERS; i++) {
#define KEY(suffix) (snprintf(name, sizeof name, "encoder.layer.%d." suffix, i), name)
        buffers[used++] = add_random(writer, &rng, KEY("norm1.weight"), 1, vector, 0.1f, 1.0f);
        buffers[used++] = add_random(writer, &rng, KEY("norm1.bias"), 1, vector, 0.1f, 0.0f);
        const char *projections[4] = {"attention.attention.query", "attention.attention.key",
                                      "attention.attention.value", "attention.output.dense"};
        for (int p = 0; p < 4; p++) {
            snprintf(name, sizeof name, "encoder.layer.%d.%s.weight", i, projections[p]);
            buffers[used++] = add_random(writer, &rng, name, 2, square, 0.05f, 0.0f);
            snprintf(name, sizeof name, "encoder.layer.%d.%s.bias", i, projections[p]);
            buffers[used++] = add_random(writer, &rng, name, 1, vector, 0.1f, 0.0f);
        }
        buffers[used++] = add_random(writer, &rng, KEY("layer_scale1.lambda1"), 1, vector, 0.1f, 0.5f);
        buffers[used++] = add_random(writer, &rng, KEY("norm2.weight"), 1, vector, 0.1f, 1.0f);
        buffers[used++] = add_random(writer, &rng, KEY("norm2.bias"), 1, vector, 0.1f, 0.0f);
        buffers[used++] = add_random(writer, &rng, KEY("mlp.fc1.weight"), 2, fc1, 0.05f, 0.0f);
        buffers[used++] = add_random(writer, &rng, KEY("mlp.fc1.bias"), 1, mlp_vector, 0.1f, 0.0f);
        buffers[used++] = add_random(writer, &rng, KEY("mlp.fc2.weight"), 2, fc2, 0.025f, 0.0f);
        buffers[used++] = add_random(writer, &rng, KEY("mlp.fc2.bias"), 1, vector, 0.1f, 0.0f);
        buffers[used++] = add_random(writer, &rng, KEY("layer_scale2.lambda1"), 1, vector, 0.1f, 0.5f);
#undef KEY
    }
    od_error err;
    if (od_st_writer_write(writer, path, &err) != 0)
        fail("writing the weights", &err);
    od_st_writer_free(writer);
    for (int i = 0; i < used; i++)
        od_free(buffers[i]);
}

static void run_forward(void *context)
{
    bench_case *bc = context;
    od_error err;
    if (od_dinov2_forward(bc->net, bc->image, bc->size, bc->size, bc->tokens, NULL, -1, NULL, &err) != 0)
        fail("forward", &err);
}

static double forward_flops(int64_t size)
{
    const double G = (double)(size / PATCH) * (double)(size / PATCH), T = G + 1;
    const double C = HIDDEN, M = MLP_HIDDEN;
    const double embedding = 2.0 * G * 3 * PATCH * PATCH * C;
    const double per_layer = 2.0 * T * (4 * C * C + 2 * C * M) + 4.0 * T * T * C;
    return embedding + LAYERS * per_layer;
}

int main(void)
{
    char path[] = "/tmp/bench_dinov2_XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) {
        perror("bench_dinov2: mkstemp");
        return 1;
    }
    close(fd);
    write_random_weights(path);
    od_error err;
    od_dinov2 *net = od_dinov2_load(path, 0, &err);
    unlink(path);
    if (net == NULL)
        fail("loading", &err);

    const int64_t sizes[2] = {224, 448};
    for (int s = 0; s < 2; s++) {
        const int64_t size = sizes[s], grid = size / PATCH;
        bench_case bc = {.net = net, .size = size};
        bc.image = od_alloc_floats(size * size * 3);
        bc.tokens = od_alloc_floats(grid * grid * HIDDEN);
        od_rng rng;
        od_rng_seed(&rng, 2);
        for (int64_t i = 0; i < size * size * 3; i++)
            bc.image[i] = od_rng_uniform(&rng);
        char name[64];
        snprintf(name, sizeof name, "dinov2_vits14_forward_%lld", (long long)size);
        bench_report(name, bench_median_ms(run_forward, &bc, 2, size > 224 ? 5 : 10),
                     forward_flops(size));
        od_free(bc.image);
        od_free(bc.tokens);
    }
    od_dinov2_free(net);
    return 0;
}
