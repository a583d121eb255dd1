/* Model files; see model_file.h. */
#include "model/model_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "teacher/teacher.h"

static int check_encoder(const od_model_encoder *encoder, const char *path, od_error *err)
{
    od_teacher_network network;
    if (od_teacher_network_parse(encoder->network, &network, err) != 0)
        return od_fail_context(err, "%s: metadata \"encoder_network\"", path);
    if (encoder->layer[0] == '\0')
        return od_fail(err, "%s: metadata \"encoder_layer\" is empty, expected a layer name", path);
    if (encoder->input_size < 1 || encoder->input_size > 1 << 16)
        return od_fail(err, "%s: metadata \"encoder_input_size\" is %lld, expected 1 to 65536 pixels", path,
                       (long long)encoder->input_size);
    return 0;
}

int od_model_file_save(const char *path, const od_params *params, const char *config_text,
                       const od_model_encoder *encoder, od_error *err)
{
    if (path == NULL || params == NULL || config_text == NULL || encoder == NULL)
        return od_fail(err, "model file: saving needs a path, parameters, a configuration and an encoder");
    od_model_config config;
    if (od_model_config_parse(config_text, strlen(config_text), path, &config, err) != 0)
        return od_fail_context(err, "%s: metadata \"config\"", path);
    if (check_encoder(encoder, path, err) != 0)
        return -1;

    od_st_writer *writer = od_st_writer_new();
    if (writer == NULL)
        return od_fail(err, "%s: out of memory", path);
    char input_size[32];
    snprintf(input_size, sizeof input_size, "%lld", (long long)encoder->input_size);
    int status = od_st_writer_set_metadata(writer, "format", OD_MODEL_FILE_FORMAT, err);
    if (status == 0)
        status = od_st_writer_set_metadata(writer, "config", config_text, err);
    if (status == 0)
        status = od_st_writer_set_metadata(writer, "variant", od_model_variant_name(config.variant), err);
    if (status == 0)
        status = od_st_writer_set_metadata(writer, "encoder_network", encoder->network, err);
    if (status == 0)
        status = od_st_writer_set_metadata(writer, "encoder_layer", encoder->layer, err);
    if (status == 0)
        status = od_st_writer_set_metadata(writer, "encoder_input_size", input_size, err);
    for (int i = 0; status == 0 && i < od_params_count(params); i++) {
        const od_param *p = od_params_at(params, i);
        status = od_st_writer_add(writer, p->name, OD_DTYPE_F32, p->ndim, p->shape, p->value, err);
    }
    if (status == 0)
        status = od_st_writer_write(writer, path, err);
    od_st_writer_free(writer);
    return status;
}

/* Returns a metadata value, or NULL after a message naming the key. */
static const char *require_metadata(const od_safetensors *st, const char *path, const char *key, od_error *err)
{
    const char *value = od_safetensors_metadata(st, key);
    if (value == NULL)
        od_fail(err, "%s: metadata \"%s\" is missing (not a model file written by oddone train)", path, key);
    return value;
}

static int copy_text(char *out, size_t size, const char *value, const char *path, const char *key, od_error *err)
{
    if (strlen(value) >= size)
        return od_fail(err, "%s: metadata \"%s\" is longer than %zu characters", path, key, size - 1);
    strcpy(out, value);
    return 0;
}

static int read_metadata(const od_safetensors *st, od_model_file *file, od_error *err)
{
    const char *path = file->path;
    const char *format = require_metadata(st, path, "format", err);
    if (format == NULL)
        return -1;
    if (strcmp(format, OD_MODEL_FILE_FORMAT) != 0)
        return od_fail(err, "%s: metadata \"format\" is \"%s\", expected \"%s\"", path, format, OD_MODEL_FILE_FORMAT);

    const char *text = require_metadata(st, path, "config", err);
    if (text == NULL)
        return -1;
    file->config_text = strdup(text);
    if (file->config_text == NULL)
        return od_fail(err, "%s: out of memory", path);
    if (od_model_config_parse(text, strlen(text), path, &file->config, err) != 0)
        return od_fail_context(err, "%s: metadata \"config\"", path);

    const char *variant = require_metadata(st, path, "variant", err);
    if (variant == NULL)
        return -1;
    if (strcmp(variant, od_model_variant_name(file->config.variant)) != 0)
        return od_fail(err, "%s: metadata \"variant\" is \"%s\", but the configuration's variant is \"%s\"", path,
                       variant, od_model_variant_name(file->config.variant));

    const char *network = require_metadata(st, path, "encoder_network", err);
    const char *layer = network != NULL ? require_metadata(st, path, "encoder_layer", err) : NULL;
    const char *size = layer != NULL ? require_metadata(st, path, "encoder_input_size", err) : NULL;
    if (size == NULL)
        return -1;
    if (copy_text(file->encoder.network, sizeof file->encoder.network, network, path, "encoder_network", err) != 0 ||
        copy_text(file->encoder.layer, sizeof file->encoder.layer, layer, path, "encoder_layer", err) != 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long long input_size = strtoll(size, &end, 10);
    if (errno != 0 || end == size || *end != '\0')
        return od_fail(err, "%s: metadata \"encoder_input_size\" is \"%s\", expected a whole number of pixels", path,
                       size);
    file->encoder.input_size = input_size;
    return check_encoder(&file->encoder, path, err);
}

od_model_file *od_model_file_open(const char *path, od_error *err)
{
    if (path == NULL) {
        od_fail(err, "model file: no path given");
        return NULL;
    }
    od_model_file *file = calloc(1, sizeof *file);
    if (file == NULL || (file->path = strdup(path)) == NULL) {
        free(file);
        od_fail(err, "%s: out of memory", path);
        return NULL;
    }
    od_safetensors *st = od_safetensors_read(path, err);
    int status = st != NULL ? read_metadata(st, file, err) : -1;
    od_safetensors_free(st);
    if (status != 0) {
        od_model_file_close(file);
        return NULL;
    }
    return file;
}

int od_model_file_load_params(const od_model_file *file, od_params *params, od_error *err)
{
    if (file == NULL || params == NULL)
        return od_fail(err, "model file: loading needs an open file and a parameter set");
    /* od_params_load reads the file again and checks every name, shape and
     * dtype before it changes anything. */
    return od_params_load(params, file->path, err);
}

void od_model_file_close(od_model_file *file)
{
    if (file == NULL)
        return;
    free(file->path);
    free(file->config_text);
    free(file);
}
