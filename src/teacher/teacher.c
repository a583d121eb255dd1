#include "teacher/teacher.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "teacher/dinov2.h"
#include "teacher/keras_graph.h"
#include "teacher/mobilenetv2.h"

static const char *const network_names[OD_TEACHER_NETWORK_COUNT] = {"inceptionv3", "mobilenetv2", "dinov2"};

struct od_teacher {
    od_teacher_info info;
    char *layer;
    od_keras_graph *inception;
    od_mobilenetv2 *mobilenet;
    od_dinov2 *dinov2;
    int64_t dinov2_block; /* -1: the final normed tokens */
    od_image resized;
};

int od_teacher_network_parse(const char *name, od_teacher_network *network, od_error *err)
{
    for (int i = 0; name != NULL && i < OD_TEACHER_NETWORK_COUNT; i++) {
        if (strcmp(name, network_names[i]) == 0) {
            *network = (od_teacher_network)i;
            return 0;
        }
    }
    return od_fail(err, "unknown teacher network \"%s\"; expected inceptionv3, mobilenetv2 or dinov2",
                   name != NULL ? name : "(null)");
}

const char *od_teacher_network_name(od_teacher_network network)
{
    return network >= 0 && network < OD_TEACHER_NETWORK_COUNT ? network_names[network] : "unknown";
}

const char *od_teacher_default_layer(od_teacher_network network)
{
    switch (network) {
    case OD_TEACHER_INCEPTIONV3:
        return "mixed2";
    case OD_TEACHER_MOBILENETV2:
        return "block_6_expand_relu";
    case OD_TEACHER_DINOV2:
        return "last";
    }
    return NULL;
}

int64_t od_teacher_default_input_size(od_teacher_network network)
{
    switch (network) {
    case OD_TEACHER_INCEPTIONV3:
        return 448;
    case OD_TEACHER_MOBILENETV2:
        return 448;
    case OD_TEACHER_DINOV2:
        return 224;
    }
    return 0;
}

const char *od_teacher_default_weights(od_teacher_network network)
{
    switch (network) {
    case OD_TEACHER_INCEPTIONV3:
        return OD_INCEPTIONV3_DEFAULT_PATH;
    case OD_TEACHER_MOBILENETV2:
        return OD_MOBILENETV2_DEFAULT_PATH;
    case OD_TEACHER_DINOV2:
        return NULL;
    }
    return NULL;
}

/* Parses a DINOv2 layer name: "last" gives -1, "block_<i>" gives i. */
static int parse_dinov2_layer(const char *layer, int64_t layers, int64_t *block, od_error *err)
{
    if (strcmp(layer, "last") == 0) {
        *block = -1;
        return 0;
    }
    if (strncmp(layer, "block_", 6) == 0) {
        char *end;
        errno = 0;
        long value = strtol(layer + 6, &end, 10);
        if (end != layer + 6 && *end == '\0' && errno == 0 && value >= 0 && value < layers) {
            *block = value;
            return 0;
        }
    }
    return od_fail(err, "DINOv2 has no layer named \"%s\"; expected \"last\" or block_0 to block_%lld", layer,
                   (long long)(layers - 1));
}

/* Reads num_attention_heads from the Hugging Face config.json beside a
 * checkpoint, because the weights do not record the head count. *heads
 * stays 0 (hidden / 64, right for every released DINOv2) when there is no
 * config.json. */
static int read_dinov2_heads(const char *weights_path, int64_t *heads, od_error *err)
{
    *heads = 0;
    char path[4200];
    const char *slash = strrchr(weights_path, '/');
    if (slash == NULL)
        snprintf(path, sizeof path, "config.json");
    else if (snprintf(path, sizeof path, "%.*s/config.json", (int)(slash - weights_path), weights_path) >=
             (int)sizeof path)
        return od_fail(err, "the weights path %s is too long", weights_path);
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return 0;
    char text[65536];
    const size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[length] = '\0';
    cJSON *config = cJSON_Parse(text);
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(config, "num_attention_heads");
    int status = 0;
    if (config == NULL)
        status = od_fail(err, "%s: not valid JSON (expected the checkpoint's Hugging Face config)", path);
    else if (value != NULL && (!cJSON_IsNumber(value) || value->valuedouble < 1 ||
                               value->valuedouble != (double)(int64_t)value->valuedouble))
        status = od_fail(err, "%s: num_attention_heads must be a positive integer", path);
    else if (value != NULL)
        *heads = (int64_t)value->valuedouble;
    cJSON_Delete(config);
    return status;
}

/* Opens the network behind a teacher and fills the feature map's shape. */
static int open_network(od_teacher *t, const char *path, int64_t shape[3], od_error *err)
{
    const int64_t size = t->info.input_size;
    switch (t->info.network) {
    case OD_TEACHER_INCEPTIONV3:
        t->inception = od_keras_graph_load(path, size, size, t->layer, err);
        if (t->inception == NULL)
            return -1;
        return od_keras_graph_layer_shape(t->inception, t->layer, shape, err);
    case OD_TEACHER_MOBILENETV2:
        if (size < 32)
            return od_fail(err, "MobileNetV2 needs an input of at least 32 pixels, got %lld", (long long)size);
        t->mobilenet = od_mobilenetv2_load(path, size, size, err);
        if (t->mobilenet == NULL)
            return -1;
        return od_mobilenetv2_layer_shape(t->mobilenet, t->layer, shape, err);
    case OD_TEACHER_DINOV2: {
        int64_t heads;
        if (read_dinov2_heads(path, &heads, err) != 0)
            return -1;
        t->dinov2 = od_dinov2_load(path, heads, err);
        if (t->dinov2 == NULL)
            return -1;
        const od_dinov2_info info = od_dinov2_get_info(t->dinov2);
        if (parse_dinov2_layer(t->layer, info.layers, &t->dinov2_block, err) != 0)
            return -1;
        if (size % info.patch_size != 0)
            return od_fail(err, "DINOv2's input size must be a multiple of its patch size %lld, got %lld",
                           (long long)info.patch_size, (long long)size);
        shape[0] = size / info.patch_size;
        shape[1] = size / info.patch_size;
        shape[2] = info.hidden;
        t->info.stride = info.patch_size;
        return 0;
    }
    }
    return od_fail(err, "unknown teacher network %d", (int)t->info.network);
}

od_teacher *od_teacher_open(od_teacher_network network, const char *weights_path, const char *layer,
                            int64_t input_size, od_error *err)
{
    if (network < 0 || network >= OD_TEACHER_NETWORK_COUNT) {
        od_fail(err, "unknown teacher network %d", (int)network);
        return NULL;
    }
    const char *name = network_names[network];
    if (weights_path == NULL)
        weights_path = od_teacher_default_weights(network);
    if (weights_path == NULL) {
        od_fail(err, "%s has no default weights; name the checkpoint (the model.safetensors of "
                     "facebook/dinov2-small)", name);
        return NULL;
    }
    if (layer == NULL)
        layer = od_teacher_default_layer(network);
    if (input_size == 0)
        input_size = od_teacher_default_input_size(network);
    if (input_size < 1 || input_size > 16384) {
        od_fail(err, "%s: input size must be 1 to 16384 pixels, got %lld", name, (long long)input_size);
        return NULL;
    }

    od_teacher *t = calloc(1, sizeof *t);
    if (t == NULL || (t->layer = strdup(layer)) == NULL) {
        free(t);
        od_fail(err, "out of memory");
        return NULL;
    }
    t->info.network = network;
    t->info.network_name = name;
    t->info.layer = t->layer;
    t->info.input_size = input_size;
    t->dinov2_block = -1;

    int64_t shape[3];
    if (open_network(t, weights_path, shape, err) != 0) {
        od_fail_context(err, "%s layer %s at %lld pixels", name, layer, (long long)input_size);
        od_teacher_free(t);
        return NULL;
    }
    if (shape[0] < 1 || shape[1] < 1 || shape[0] != shape[1]) {
        od_fail(err, "%s layer %s at %lld pixels gives a %lld x %lld map; expected a square map of at least 1 x 1",
                name, layer, (long long)input_size, (long long)shape[0], (long long)shape[1]);
        od_teacher_free(t);
        return NULL;
    }
    t->info.height = shape[0];
    t->info.width = shape[1];
    t->info.channels = shape[2];
    if (network != OD_TEACHER_DINOV2) {
        /* The Keras networks halve the map at each stride-2 stage, so the
         * nominal stride is the power of two nearest to input / map. */
        const double ratio = (double)input_size / (double)shape[1];
        t->info.stride = (int64_t)1 << (int)lround(log2(ratio > 1.0 ? ratio : 1.0));
    }
    t->info.offset = ((double)input_size - 1.0 - (double)t->info.stride * (double)(shape[1] - 1)) / 2.0;
    if (network == OD_TEACHER_INCEPTIONV3) {
        /* InceptionV3's stem and reductions are "valid" 3 x 3 convolutions
         * and poolings, which map cell j to input pixel stride * j + offset
         * whatever the input size: offset 13 at stride 8 (mixed0 to
         * mixed2), 21 at stride 16 (mixed3 to mixed7), 37 at stride 32. */
        if (t->info.stride == 8)
            t->info.offset = 13.0;
        else if (t->info.stride == 16)
            t->info.offset = 21.0;
        else if (t->info.stride == 32)
            t->info.offset = 37.0;
    }
    return t;
}

void od_teacher_free(od_teacher *teacher)
{
    if (teacher == NULL)
        return;
    od_keras_graph_free(teacher->inception);
    od_mobilenetv2_free(teacher->mobilenet);
    od_dinov2_free(teacher->dinov2);
    od_image_free(&teacher->resized);
    free(teacher->layer);
    free(teacher);
}

od_teacher_info od_teacher_get_info(const od_teacher *teacher)
{
    return teacher->info;
}

int od_teacher_run_input(od_teacher *teacher, const float *input, float *features, od_error *err)
{
    const int64_t size = teacher->info.input_size;
    switch (teacher->info.network) {
    case OD_TEACHER_INCEPTIONV3:
        return od_keras_graph_forward(teacher->inception, input, teacher->layer, features, err);
    case OD_TEACHER_MOBILENETV2:
        return od_mobilenetv2_forward(teacher->mobilenet, input, teacher->layer, features, NULL, err);
    case OD_TEACHER_DINOV2:
        if (teacher->dinov2_block < 0)
            return od_dinov2_forward(teacher->dinov2, input, size, size, features, NULL, -1, NULL, err);
        return od_dinov2_forward(teacher->dinov2, input, size, size, NULL, NULL, teacher->dinov2_block, features,
                                 err);
    }
    return od_fail(err, "unknown teacher network %d", (int)teacher->info.network);
}

int od_teacher_run(od_teacher *teacher, const od_image *image, float *features, od_error *err)
{
    if (image == NULL || image->pixels == NULL || image->channels != 3)
        return od_fail(err, "%s: expected an RGB image (3 channels), got %d channels", teacher->info.network_name,
                       image != NULL ? image->channels : 0);
    const int size = (int)teacher->info.input_size;
    const float *input = image->pixels;
    if (image->width != size || image->height != size) {
        /* od_image_resize writes a new buffer each call; the teacher keeps
         * the last one to free it with the next. */
        od_image_free(&teacher->resized);
        if (od_image_resize(image, size, size, &teacher->resized, err) != 0)
            return -1;
        input = teacher->resized.pixels;
    }
    return od_teacher_run_input(teacher, input, features, err);
}
