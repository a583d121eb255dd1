#include "io/safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "io/atomic_file.h"

static const struct {
    const char *name;
    od_dtype dtype;
    size_t size;
} dtype_table[] = {
    {"F64", OD_DTYPE_F64, 8},  {"F32", OD_DTYPE_F32, 4}, {"F16", OD_DTYPE_F16, 2},
    {"BF16", OD_DTYPE_BF16, 2}, {"I64", OD_DTYPE_I64, 8}, {"I32", OD_DTYPE_I32, 4},
    {"I16", OD_DTYPE_I16, 2},  {"I8", OD_DTYPE_I8, 1},   {"U8", OD_DTYPE_U8, 1},
    {"BOOL", OD_DTYPE_BOOL, 1},
};
#define DTYPE_COUNT (sizeof dtype_table / sizeof dtype_table[0])

const char *od_dtype_name(od_dtype dtype)
{
    for (size_t i = 0; i < DTYPE_COUNT; i++)
        if (dtype_table[i].dtype == dtype)
            return dtype_table[i].name;
    return "?";
}

size_t od_dtype_size(od_dtype dtype)
{
    for (size_t i = 0; i < DTYPE_COUNT; i++)
        if (dtype_table[i].dtype == dtype)
            return dtype_table[i].size;
    return 0;
}

static char *duplicate_string(const char *text)
{
    size_t length = strlen(text) + 1;
    char *copy = malloc(length);
    if (copy != NULL)
        memcpy(copy, text, length);
    return copy;
}

void od_safetensors_free(od_safetensors *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->count; i++)
        free(st->entries[i].name);
    for (size_t i = 0; i < st->metadata_count; i++) {
        free(st->metadata_keys[i]);
        free(st->metadata_values[i]);
    }
    free(st->metadata_keys);
    free(st->metadata_values);
    free(st->entries);
    free(st->buffer);
    free(st->source);
    free(st);
}

/* ---- header validation ------------------------------------------------ */

/* Reads a JSON number that must be a non-negative integer below 2^53. */
static int read_index(const cJSON *item, uint64_t *value)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double number = item->valuedouble;
    if (!(number >= 0.0) || number > 9007199254740992.0 || floor(number) != number)
        return -1;
    *value = (uint64_t)number;
    return 0;
}

static int parse_entry(od_safetensors *st, const cJSON *item, od_st_entry *entry, od_error *err)
{
    const char *src = st->source;
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return od_fail(err, "%s: tensor \"%s\": expected an object with dtype, shape and data_offsets", src, name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dtype))
        return od_fail(err, "%s: tensor \"%s\": field \"dtype\" missing or not a string", src, name);
    size_t d = 0;
    while (d < DTYPE_COUNT && strcmp(dtype_table[d].name, dtype->valuestring) != 0)
        d++;
    if (d == DTYPE_COUNT)
        return od_fail(err, "%s: tensor \"%s\": unknown dtype \"%s\"", src, name, dtype->valuestring);
    entry->dtype = dtype_table[d].dtype;

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    if (!cJSON_IsArray(shape))
        return od_fail(err, "%s: tensor \"%s\": field \"shape\" missing or not an array", src, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > OD_MAX_DIMS)
        return od_fail(err, "%s: tensor \"%s\": shape has %d dimensions, at most %d supported", src, name,
                       ndim, OD_MAX_DIMS);
    entry->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        uint64_t size;
        if (read_index(cJSON_GetArrayItem(shape, i), &size) != 0)
            return od_fail(err, "%s: tensor \"%s\": shape[%d] is not a non-negative integer", src, name, i);
        entry->shape[i] = (int64_t)size;
    }

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return od_fail(err, "%s: tensor \"%s\": field \"data_offsets\" must be [begin, end]", src, name);
    if (read_index(cJSON_GetArrayItem(offsets, 0), &entry->begin) != 0 ||
        read_index(cJSON_GetArrayItem(offsets, 1), &entry->end) != 0)
        return od_fail(err, "%s: tensor \"%s\": data_offsets must be non-negative integers", src, name);
    if (entry->begin > entry->end || entry->end > st->data_size)
        return od_fail(err, "%s: tensor \"%s\": data_offsets [%llu, %llu] outside the %llu data bytes", src,
                       name, (unsigned long long)entry->begin, (unsigned long long)entry->end,
                       (unsigned long long)st->data_size);

    int64_t numel = od_shape_numel(ndim, entry->shape);
    size_t element_size = dtype_table[d].size;
    if (numel < 0 || (uint64_t)numel > UINT64_MAX / element_size)
        return od_fail(err, "%s: tensor \"%s\": shape too large", src, name);
    if ((uint64_t)numel * element_size != entry->end - entry->begin)
        return od_fail(err, "%s: tensor \"%s\": shape and dtype give %llu bytes but data_offsets span %llu",
                       src, name, (unsigned long long)((uint64_t)numel * element_size),
                       (unsigned long long)(entry->end - entry->begin));

    entry->name = duplicate_string(name);
    if (entry->name == NULL)
        return od_fail(err, "%s: out of memory", src);
    return 0;
}

static int parse_metadata(od_safetensors *st, const cJSON *item, od_error *err)
{
    if (!cJSON_IsObject(item))
        return od_fail(err, "%s: \"__metadata__\" must be an object of strings", st->source);
    size_t count = (size_t)cJSON_GetArraySize(item);
    st->metadata_keys = calloc(count ? count : 1, sizeof(char *));
    st->metadata_values = calloc(count ? count : 1, sizeof(char *));
    if (st->metadata_keys == NULL || st->metadata_values == NULL)
        return od_fail(err, "%s: out of memory", st->source);
    const cJSON *pair;
    cJSON_ArrayForEach(pair, item) {
        if (!cJSON_IsString(pair))
            return od_fail(err, "%s: __metadata__ \"%s\": value must be a string", st->source, pair->string);
        st->metadata_keys[st->metadata_count] = duplicate_string(pair->string);
        st->metadata_values[st->metadata_count] = duplicate_string(pair->valuestring);
        st->metadata_count++;
        if (st->metadata_keys[st->metadata_count - 1] == NULL ||
            st->metadata_values[st->metadata_count - 1] == NULL)
            return od_fail(err, "%s: out of memory", st->source);
    }
    return 0;
}

static int compare_entries(const void *a, const void *b)
{
    const od_st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    /* Empty tensors share offsets with their neighbours; order them first. */
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_names(const void *a, const void *b)
{
    const od_st_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int validate_layout(od_safetensors *st, od_error *err)
{
    /* Names must be unique; sort pointers by name to find repeats in n log n. */
    const od_st_entry **by_name = malloc((st->count ? st->count : 1) * sizeof *by_name);
    if (by_name == NULL)
        return od_fail(err, "%s: out of memory", st->source);
    for (size_t i = 0; i < st->count; i++)
        by_name[i] = &st->entries[i];
    qsort(by_name, st->count, sizeof *by_name, compare_names);
    for (size_t i = 1; i < st->count; i++) {
        if (strcmp(by_name[i]->name, by_name[i - 1]->name) == 0) {
            od_fail(err, "%s: tensor \"%s\" appears twice in the header", st->source, by_name[i]->name);
            free(by_name);
            return -1;
        }
    }
    free(by_name);

    qsort(st->entries, st->count, sizeof *st->entries, compare_entries);
    uint64_t cursor = 0;
    for (size_t i = 0; i < st->count; i++) {
        const od_st_entry *e = &st->entries[i];
        if (e->begin != cursor)
            return od_fail(err, "%s: tensor \"%s\": data_offsets begin at %llu, expected %llu "
                                "(tensors must cover the data without gaps or overlaps)",
                           st->source, e->name, (unsigned long long)e->begin, (unsigned long long)cursor);
        cursor = e->end;
    }
    if (cursor != st->data_size)
        return od_fail(err, "%s: tensors cover %llu data bytes but the file holds %llu", st->source,
                       (unsigned long long)cursor, (unsigned long long)st->data_size);
    return 0;
}

static od_safetensors *parse_owned(unsigned char *buffer, size_t size, const char *source, od_error *err)
{
    od_safetensors *st = calloc(1, sizeof *st);
    if (st == NULL) {
        free(buffer);
        od_fail(err, "%s: out of memory", source);
        return NULL;
    }
    st->buffer = buffer;
    st->source = duplicate_string(source);
    if (st->source == NULL) {
        od_safetensors_free(st);
        od_fail(err, "%s: out of memory", source);
        return NULL;
    }

    if (size < 8) {
        od_fail(err, "%s: %zu bytes, too short for a safetensors header length", source, size);
        goto fail;
    }
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--)
        header_length = (header_length << 8) | buffer[i];
    if (header_length > OD_SAFETENSORS_MAX_HEADER || header_length > size - 8) {
        od_fail(err, "%s: header length %llu exceeds the file (%zu bytes) or the %u-byte limit", source,
                (unsigned long long)header_length, size, OD_SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    if (header_length < 2 || buffer[8] != '{') {
        od_fail(err, "%s: header must be a JSON object starting with '{'", source);
        goto fail;
    }
    st->data = buffer + 8 + header_length;
    st->data_size = size - 8 - header_length;

    cJSON *header = cJSON_ParseWithLength((const char *)buffer + 8, (size_t)header_length);
    if (header == NULL || !cJSON_IsObject(header)) {
        cJSON_Delete(header);
        od_fail(err, "%s: header is not valid JSON", source);
        goto fail;
    }

    size_t item_count = (size_t)cJSON_GetArraySize(header);
    st->entries = calloc(item_count ? item_count : 1, sizeof *st->entries);
    if (st->entries == NULL) {
        cJSON_Delete(header);
        od_fail(err, "%s: out of memory", source);
        goto fail;
    }
    const cJSON *item;
    int metadata_seen = 0;
    cJSON_ArrayForEach(item, header) {
        int status;
        if (strcmp(item->string, "__metadata__") == 0) {
            if (metadata_seen) {
                od_fail(err, "%s: \"__metadata__\" appears twice", source);
                status = -1;
            } else {
                status = parse_metadata(st, item, err);
            }
            metadata_seen = 1;
        } else {
            status = parse_entry(st, item, &st->entries[st->count], err);
            if (status == 0)
                st->count++;
        }
        if (status != 0) {
            cJSON_Delete(header);
            goto fail;
        }
    }
    cJSON_Delete(header);
    if (validate_layout(st, err) != 0)
        goto fail;
    return st;

fail:
    od_safetensors_free(st);
    return NULL;
}

od_safetensors *od_safetensors_parse(const void *bytes, size_t size, const char *source, od_error *err)
{
    unsigned char *copy = malloc(size ? size : 1);
    if (copy == NULL) {
        od_fail(err, "%s: out of memory for %zu bytes", source, size);
        return NULL;
    }
    memcpy(copy, bytes, size);
    return parse_owned(copy, size, source, err);
}

od_safetensors *od_safetensors_read(const char *path, od_error *err)
{
    FILE *stream = fopen(path, "rb");
    if (stream == NULL) {
        od_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat info;
    if (fstat(fileno(stream), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(stream);
        od_fail(err, "%s: not a regular file", path);
        return NULL;
    }
    size_t size = (size_t)info.st_size;
    unsigned char *buffer = malloc(size ? size : 1);
    if (buffer == NULL) {
        fclose(stream);
        od_fail(err, "%s: out of memory for %zu bytes", path, size);
        return NULL;
    }
    size_t got = fread(buffer, 1, size, stream);
    int read_error = ferror(stream);
    fclose(stream);
    if (got != size || read_error) {
        free(buffer);
        od_fail(err, "%s: read %zu of %zu bytes", path, got, size);
        return NULL;
    }
    return parse_owned(buffer, size, path, err);
}

const od_st_entry *od_safetensors_find(const od_safetensors *st, const char *name)
{
    for (size_t i = 0; i < st->count; i++)
        if (strcmp(st->entries[i].name, name) == 0)
            return &st->entries[i];
    return NULL;
}

const char *od_safetensors_metadata(const od_safetensors *st, const char *key)
{
    for (size_t i = 0; i < st->metadata_count; i++)
        if (strcmp(st->metadata_keys[i], key) == 0)
            return st->metadata_values[i];
    return NULL;
}

/* ---- typed access ------------------------------------------------------ */

static uint64_t load_le(const unsigned char *p, size_t size)
{
    uint64_t value = 0;
    for (size_t i = size; i-- > 0;)
        value = (value << 8) | p[i];
    return value;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {
            /* Subnormal half: normalise into a float. */
            int shift = 0;
            while (!(mantissa & 0x400)) {
                mantissa <<= 1;
                shift++;
            }
            mantissa &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - shift + 1) << 23) | (mantissa << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static int check_shape(const od_safetensors *st, const od_st_entry *e, int ndim, const int64_t *shape,
                       od_error *err)
{
    if (ndim < 0)
        return 0;
    int matches = e->ndim == ndim;
    for (int i = 0; matches && i < ndim; i++)
        if (shape[i] >= 0 && shape[i] != e->shape[i])
            matches = 0;
    if (matches)
        return 0;
    char got[256], want[256];
    od_shape_format(e->ndim, e->shape, got, sizeof got);
    od_shape_format(ndim, shape, want, sizeof want);
    return od_fail(err, "%s: tensor \"%s\" has shape %s, expected %s (-1 is any size)", st->source, e->name,
                   got, want);
}

od_tensor *od_safetensors_get(const od_safetensors *st, const char *name, int ndim, const int64_t *shape,
                              od_error *err)
{
    const od_st_entry *e = od_safetensors_find(st, name);
    if (e == NULL) {
        od_fail(err, "%s: tensor \"%s\" not found", st->source, name);
        return NULL;
    }
    if (e->dtype != OD_DTYPE_F32 && e->dtype != OD_DTYPE_F64 && e->dtype != OD_DTYPE_F16 &&
        e->dtype != OD_DTYPE_BF16) {
        od_fail(err, "%s: tensor \"%s\" has dtype %s, expected a floating-point dtype", st->source, name,
                od_dtype_name(e->dtype));
        return NULL;
    }
    if (check_shape(st, e, ndim, shape, err) != 0)
        return NULL;
    od_tensor *t = od_tensor_new(e->ndim, e->shape, err);
    if (t == NULL)
        return NULL;
    int64_t numel = od_tensor_numel(t);
    const unsigned char *p = st->data + e->begin;
    size_t element_size = od_dtype_size(e->dtype);
    for (int64_t i = 0; i < numel; i++, p += element_size) {
        uint64_t bits = load_le(p, element_size);
        switch (e->dtype) {
        case OD_DTYPE_F32: {
            uint32_t word = (uint32_t)bits;
            memcpy(&t->data[i], &word, sizeof word);
            break;
        }
        case OD_DTYPE_F64: {
            double value;
            memcpy(&value, &bits, sizeof value);
            t->data[i] = (float)value;
            break;
        }
        case OD_DTYPE_F16:
            t->data[i] = half_to_float((uint16_t)bits);
            break;
        default: { /* BF16 is the top half of a float. */
            uint32_t word = (uint32_t)bits << 16;
            memcpy(&t->data[i], &word, sizeof word);
            break;
        }
        }
    }
    return t;
}

int32_t *od_safetensors_get_int(const od_safetensors *st, const char *name, int64_t *count, od_error *err)
{
    const od_st_entry *e = od_safetensors_find(st, name);
    if (e == NULL) {
        od_fail(err, "%s: tensor \"%s\" not found", st->source, name);
        return NULL;
    }
    int is_signed = e->dtype == OD_DTYPE_I64 || e->dtype == OD_DTYPE_I32 || e->dtype == OD_DTYPE_I16 ||
                    e->dtype == OD_DTYPE_I8;
    if (!is_signed && e->dtype != OD_DTYPE_U8) {
        od_fail(err, "%s: tensor \"%s\" has dtype %s, expected an integer dtype", st->source, name,
                od_dtype_name(e->dtype));
        return NULL;
    }
    int64_t numel = od_shape_numel(e->ndim, e->shape);
    int32_t *values = malloc((size_t)(numel ? numel : 1) * sizeof *values);
    if (values == NULL) {
        od_fail(err, "%s: out of memory", st->source);
        return NULL;
    }
    size_t element_size = od_dtype_size(e->dtype);
    const unsigned char *p = st->data + e->begin;
    for (int64_t i = 0; i < numel; i++, p += element_size) {
        uint64_t bits = load_le(p, element_size);
        int64_t value = (int64_t)bits;
        if (is_signed && element_size < 8 && (bits >> (element_size * 8 - 1)) & 1)
            value = (int64_t)(bits | (~UINT64_C(0) << (element_size * 8)));
        if (value < INT32_MIN || value > INT32_MAX) {
            free(values);
            od_fail(err, "%s: tensor \"%s\" element %lld = %lld does not fit in int32", st->source, name,
                    (long long)i, (long long)value);
            return NULL;
        }
        values[i] = (int32_t)value;
    }
    *count = numel;
    return values;
}

/* ---- writer ------------------------------------------------------------ */

typedef struct writer_entry {
    char *name;
    od_dtype dtype;
    int ndim;
    int64_t shape[OD_MAX_DIMS];
    const void *data;
    uint64_t bytes;
} writer_entry;

struct od_st_writer {
    writer_entry *entries;
    size_t count;
    size_t capacity;
    cJSON *metadata;
};

od_st_writer *od_st_writer_new(void) { return calloc(1, sizeof(od_st_writer)); }

void od_st_writer_free(od_st_writer *writer)
{
    if (writer == NULL)
        return;
    for (size_t i = 0; i < writer->count; i++)
        free(writer->entries[i].name);
    free(writer->entries);
    cJSON_Delete(writer->metadata);
    free(writer);
}

int od_st_writer_add(od_st_writer *writer, const char *name, od_dtype dtype, int ndim, const int64_t *shape,
                     const void *data, od_error *err)
{
    if (ndim < 0 || ndim > OD_MAX_DIMS)
        return od_fail(err, "safetensors writer: tensor \"%s\" has %d dimensions, expected 0 to %d", name,
                       ndim, OD_MAX_DIMS);
    if (strcmp(name, "__metadata__") == 0 || name[0] == '\0')
        return od_fail(err, "safetensors writer: invalid tensor name \"%s\"", name);
    for (size_t i = 0; i < writer->count; i++)
        if (strcmp(writer->entries[i].name, name) == 0)
            return od_fail(err, "safetensors writer: tensor \"%s\" added twice", name);
    int64_t numel = od_shape_numel(ndim, shape);
    if (numel < 0)
        return od_fail(err, "safetensors writer: tensor \"%s\" has an invalid shape", name);
    if (writer->count == writer->capacity) {
        size_t capacity = writer->capacity ? writer->capacity * 2 : 16;
        writer_entry *grown = realloc(writer->entries, capacity * sizeof *grown);
        if (grown == NULL)
            return od_fail(err, "safetensors writer: out of memory");
        writer->entries = grown;
        writer->capacity = capacity;
    }
    writer_entry *e = &writer->entries[writer->count];
    e->name = duplicate_string(name);
    if (e->name == NULL)
        return od_fail(err, "safetensors writer: out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->data = data;
    e->bytes = (uint64_t)numel * od_dtype_size(dtype);
    writer->count++;
    return 0;
}

int od_st_writer_add_tensor(od_st_writer *writer, const char *name, const od_tensor *t, od_error *err)
{
    return od_st_writer_add(writer, name, OD_DTYPE_F32, t->ndim, t->shape, t->data, err);
}

int od_st_writer_set_metadata(od_st_writer *writer, const char *key, const char *value, od_error *err)
{
    if (writer->metadata == NULL && (writer->metadata = cJSON_CreateObject()) == NULL)
        return od_fail(err, "safetensors writer: out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(writer->metadata, key);
    if (cJSON_AddStringToObject(writer->metadata, key, value) == NULL)
        return od_fail(err, "safetensors writer: out of memory");
    return 0;
}

static int is_little_endian(void)
{
    const uint16_t probe = 1;
    unsigned char first;
    memcpy(&first, &probe, 1);
    return first == 1;
}

int od_st_writer_write(od_st_writer *writer, const char *path, od_error *err)
{
    if (!is_little_endian())
        return od_fail(err, "%s: writing safetensors needs a little-endian machine", path);

    cJSON *header = cJSON_CreateObject();
    if (header == NULL)
        return od_fail(err, "%s: out of memory", path);
    if (writer->metadata != NULL)
        cJSON_AddItemToObject(header, "__metadata__", cJSON_Duplicate(writer->metadata, 1));
    uint64_t offset = 0;
    for (size_t i = 0; i < writer->count; i++) {
        const writer_entry *e = &writer->entries[i];
        cJSON *item = cJSON_AddObjectToObject(header, e->name);
        cJSON *shape = cJSON_CreateArray();
        cJSON *offsets = cJSON_CreateArray();
        if (item == NULL || shape == NULL || offsets == NULL) {
            cJSON_Delete(shape);
            cJSON_Delete(offsets);
            cJSON_Delete(header);
            return od_fail(err, "%s: out of memory", path);
        }
        cJSON_AddStringToObject(item, "dtype", od_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
        cJSON_AddItemToObject(item, "shape", shape);
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(offset + e->bytes)));
        cJSON_AddItemToObject(item, "data_offsets", offsets);
        offset += e->bytes;
    }
    char *text = cJSON_PrintUnformatted(header);
    cJSON_Delete(header);
    if (text == NULL)
        return od_fail(err, "%s: out of memory", path);

    /* Pad the header with spaces so that the data starts 8-byte aligned. */
    size_t text_length = strlen(text);
    size_t header_length = (text_length + 7) / 8 * 8;
    unsigned char length_bytes[8];
    for (int i = 0; i < 8; i++)
        length_bytes[i] = (unsigned char)((uint64_t)header_length >> (8 * i));

    od_atomic_file file;
    if (od_atomic_open(&file, path, err) != 0) {
        free(text);
        return -1;
    }
    fwrite(length_bytes, 1, 8, file.stream);
    fwrite(text, 1, text_length, file.stream);
    for (size_t i = text_length; i < header_length; i++)
        fputc(' ', file.stream);
    free(text);
    for (size_t i = 0; i < writer->count; i++)
        if (writer->entries[i].bytes > 0)
            fwrite(writer->entries[i].data, 1, (size_t)writer->entries[i].bytes, file.stream);
    return od_atomic_commit(&file, err);
}
