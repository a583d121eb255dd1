/* safetensors files: checkpoints, reference values and feature caches.
 *
 * Layout: an unsigned 64-bit little-endian header length N, N bytes of JSON
 * header, then the raw little-endian tensor bytes. The header maps each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} with
 * offsets relative to the start of the data; an optional "__metadata__"
 * maps strings to strings.
 *
 * The reader validates the whole header before any tensor byte is used:
 * known dtypes, non-negative shapes whose byte size matches the offsets,
 * offsets inside the file, tensors that neither overlap nor leave gaps, and
 * unique names. Any violation is an error naming the file and the field. */
#ifndef ODDONE_IO_SAFETENSORS_H
#define ODDONE_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"

/* The largest header the reader accepts (the format's own limit). */
#define OD_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

typedef enum od_dtype {
    OD_DTYPE_F64,
    OD_DTYPE_F32,
    OD_DTYPE_F16,
    OD_DTYPE_BF16,
    OD_DTYPE_I64,
    OD_DTYPE_I32,
    OD_DTYPE_I16,
    OD_DTYPE_I8,
    OD_DTYPE_U8,
    OD_DTYPE_BOOL,
} od_dtype;

typedef struct od_st_entry {
    char *name;
    od_dtype dtype;
    int ndim;
    int64_t shape[OD_MAX_DIMS];
    uint64_t begin; /* byte offsets into the data section */
    uint64_t end;
} od_st_entry;

typedef struct od_safetensors {
    char *source;             /* file name used in error messages */
    od_st_entry *entries;     /* sorted by begin offset */
    size_t count;
    unsigned char *buffer;    /* the whole file */
    const unsigned char *data;
    uint64_t data_size;
    char **metadata_keys;     /* "__metadata__", count metadata_count */
    char **metadata_values;
    size_t metadata_count;
} od_safetensors;

/* Reads and validates a file. Returns NULL with a message on failure. */
od_safetensors *od_safetensors_read(const char *path, od_error *err);

/* Validates an in-memory file (copied); source names it in messages. */
od_safetensors *od_safetensors_parse(const void *bytes, size_t size, const char *source, od_error *err);

void od_safetensors_free(od_safetensors *st);

const od_st_entry *od_safetensors_find(const od_safetensors *st, const char *name);

/* Returns the metadata value for key, or NULL. */
const char *od_safetensors_metadata(const od_safetensors *st, const char *key);

/* Returns a float copy of a floating-point tensor (F32, F64, F16, BF16).
 * When ndim >= 0 the shape must match `shape`, where an entry of -1 matches
 * any size; otherwise any shape is accepted. */
od_tensor *od_safetensors_get(const od_safetensors *st, const char *name, int ndim,
                              const int64_t *shape, od_error *err);

/* Returns a malloc'ed int32 copy of an integer tensor (I64, I32, I16, I8,
 * U8) and its element count; values outside int32 are an error. */
int32_t *od_safetensors_get_int(const od_safetensors *st, const char *name, int64_t *count,
                                od_error *err);

/* Writer: add tensors (the data is copied at write time, so it must stay
 * valid until od_st_writer_write returns), then write atomically. */
typedef struct od_st_writer od_st_writer;

od_st_writer *od_st_writer_new(void);
void od_st_writer_free(od_st_writer *writer);
int od_st_writer_add(od_st_writer *writer, const char *name, od_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, od_error *err);
int od_st_writer_add_tensor(od_st_writer *writer, const char *name, const od_tensor *t, od_error *err);
int od_st_writer_set_metadata(od_st_writer *writer, const char *key, const char *value, od_error *err);
int od_st_writer_write(od_st_writer *writer, const char *path, od_error *err);

const char *od_dtype_name(od_dtype dtype);
size_t od_dtype_size(od_dtype dtype);

#endif
