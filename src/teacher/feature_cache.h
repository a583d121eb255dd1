/* A scene's teacher features: one safetensors file per scene that contains,
 * for each view, a float16 tensor (H', W', k) of PCA-reduced features. Its
 * metadata names what produced them, so that the reader rejects a cache made
 * by another network, layer, input size, stride or PCA file.
 *
 * Metadata keys: format = "oddone-features", network, layer, input_height,
 * input_width, stride, offset, channels (k) and pca_checksum, the value of
 * od_feature_cache_checksum on the PCA file. offset is the input pixel of
 * feature cell 0's centre (od_teacher_info.offset, pixel centres on
 * integers), written with 17 significant digits so that it reads back
 * exactly. Cell (i, j) is centred at input pixel (offset + stride j,
 * offset + stride i), which for InceptionV3 (13 at stride 8) is not the
 * (stride - 1) / 2 that lifting assumes. Caches written before the offset
 * was recorded lack the key. The reader rejects them, and its message
 * asks the user to recompute them. */
#ifndef ODDONE_TEACHER_FEATURE_CACHE_H
#define ODDONE_TEACHER_FEATURE_CACHE_H

#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"

#define OD_FEATURE_CACHE_TEXT 128

typedef struct od_feature_cache_info {
    char network[OD_FEATURE_CACHE_TEXT];      /* "inceptionv3", "mobilenetv2", "dinov2" */
    char layer[OD_FEATURE_CACHE_TEXT];        /* the network's layer the features come from */
    int64_t input_height, input_width;        /* pixels of the network's input */
    int64_t stride;                           /* input pixels per feature cell */
    double offset;                            /* input pixel of cell 0's centre, finite */
    int64_t channels;                         /* k, after PCA */
    char pca_checksum[OD_FEATURE_CACHE_TEXT]; /* od_feature_cache_checksum of the PCA file */
} od_feature_cache_info;

/* Writes the 64-bit FNV-1a hash of a file's bytes as 16 hex digits into
 * checksum (at least 17 bytes). FNV-1a detects a changed or swapped file;
 * it is no defence against deliberate collisions. */
int od_feature_cache_checksum(const char *path, char *checksum, od_error *err);

typedef struct od_feature_cache_writer od_feature_cache_writer;

/* Returns a writer for one scene; info's text fields must be non-empty and
 * its sizes positive. */
od_feature_cache_writer *od_feature_cache_writer_new(const od_feature_cache_info *info, od_error *err);
void od_feature_cache_writer_free(od_feature_cache_writer *writer);

/* Converts a view's features (height, width, channels) to float16 and keeps
 * them under the view's name until the write. Non-finite values, and values
 * beyond float16's range (magnitude 65520 and up), are an error. */
int od_feature_cache_add_view(od_feature_cache_writer *writer, const char *view, const float *features,
                              int64_t height, int64_t width, od_error *err);

/* Writes all views to path atomically (a reader never sees a partial file). */
int od_feature_cache_write(od_feature_cache_writer *writer, const char *path, od_error *err);

typedef struct od_feature_cache od_feature_cache;

/* Reads a cache file and checks its metadata against expected (every field
 * must match) and every tensor: float16, (H', W', channels), finite. */
od_feature_cache *od_feature_cache_read(const char *path, const od_feature_cache_info *expected, od_error *err);
void od_feature_cache_free(od_feature_cache *cache);

int64_t od_feature_cache_view_count(const od_feature_cache *cache);
/* Returns the name of view i (0 <= i < count), in the file's order. */
const char *od_feature_cache_view_name(const od_feature_cache *cache, int64_t i);

/* Returns a view's features as float (H', W', channels), or NULL with a
 * message when the view is missing. */
od_tensor *od_feature_cache_get(const od_feature_cache *cache, const char *view, od_error *err);

#endif
