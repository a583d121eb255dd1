/* Model files: a trained model in one safetensors file, every tensor of its
 * parameter set (model/params.h) as F32, and the metadata needed to build
 * the same networks again:
 *
 *   format              OD_MODEL_FILE_FORMAT
 *   config              the configuration's JSON text (model/config.h)
 *   variant             "full", "A", "B" or "C", the configuration's
 *   encoder_network     the frozen 2D encoder's network ("mobilenetv2")
 *   encoder_layer       its layer ("block_2_add")
 *   encoder_input_size  the square side, in pixels, that views are
 *                       resized to before the encoder
 *
 * Loading is two steps, because the parameter set is made by building the
 * networks from the configuration: od_model_file_open reads and checks the
 * metadata, the caller builds the networks on an empty od_params from
 * file->config, and od_model_file_load_params fills them. Every error
 * names the file and the field or tensor: a truncated file, a missing or
 * invalid metadata field, a configuration that does not parse, a missing,
 * extra or misshapen tensor. */
#ifndef ODDONE_MODEL_MODEL_FILE_H
#define ODDONE_MODEL_MODEL_FILE_H

#include <stdint.h>

#include "core/error.h"
#include "model/config.h"
#include "model/params.h"

#define OD_MODEL_FILE_FORMAT "oddone-model-1"

/* The frozen 2D encoder whose maps the volume network was trained on. */
typedef struct od_model_encoder {
    char network[16];             /* a name od_teacher_network_parse accepts */
    char layer[OD_MODEL_NAME_SIZE];
    int64_t input_size;           /* pixels, >= 1 */
} od_model_encoder;

typedef struct od_model_file {
    char *path;
    char *config_text;         /* NUL-terminated JSON */
    od_model_config config;    /* parsed from config_text */
    od_model_encoder encoder;
} od_model_file;

/* Writes the parameter set and metadata to path atomically (a temporary
 * name, then a rename), so that an existing file is replaced whole or not
 * at all. config_text must parse as a configuration; the variant is taken
 * from it. */
int od_model_file_save(const char *path, const od_params *params, const char *config_text,
                       const od_model_encoder *encoder, od_error *err);

/* Reads and checks a model file's metadata and parses its configuration.
 * Returns NULL with a message on failure. */
od_model_file *od_model_file_open(const char *path, od_error *err);

/* Fills every tensor of params from the file. The file must contain
 * exactly the set's tensors with their shapes; on failure params is left
 * unchanged. */
int od_model_file_load_params(const od_model_file *file, od_params *params, od_error *err);

void od_model_file_close(od_model_file *file);

#endif
