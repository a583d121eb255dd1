#include "teacher/feature_cache.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "io/safetensors.h"

#define FORMAT_NAME "oddone-features"

int od_feature_cache_checksum(const char *path, char *checksum, od_error *err)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return od_fail(err, "%s: cannot open for the checksum: %s", path, strerror(errno));
    uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a 64-bit offset basis */
    unsigned char buffer[65536];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, file)) > 0)
        for (size_t i = 0; i < got; i++)
            hash = (hash ^ buffer[i]) * 0x100000001b3ull; /* FNV 64-bit prime */
    int failed = ferror(file);
    fclose(file);
    if (failed)
        return od_fail(err, "%s: read failed while computing the checksum", path);
    snprintf(checksum, 17, "%016llx", (unsigned long long)hash);
    return 0;
}

typedef struct cached_view {
    char *name;
    int64_t shape[3]; /* (H', W', channels) */
    uint16_t *halves;
} cached_view;

struct od_feature_cache_writer {
    od_feature_cache_info info;
    cached_view *views;
    int64_t count, capacity;
};

static int check_info(const od_feature_cache_info *info, od_error *err)
{
    if (!info)
        return od_fail(err, "feature cache: info is NULL");
    if (!info->network[0] || !info->layer[0] || !info->pca_checksum[0])
        return od_fail(err, "feature cache: network, layer and pca_checksum must be non-empty");
    if (info->input_height < 1 || info->input_width < 1 || info->stride < 1 || info->channels < 1)
        return od_fail(err, "feature cache: input size %lld x %lld, stride %lld and channels %lld must be positive",
                       (long long)info->input_height, (long long)info->input_width, (long long)info->stride,
                       (long long)info->channels);
    if (!isfinite(info->offset))
        return od_fail(err, "feature cache: offset %g must be finite", info->offset);
    return 0;
}

od_feature_cache_writer *od_feature_cache_writer_new(const od_feature_cache_info *info, od_error *err)
{
    if (check_info(info, err) != 0)
        return NULL;
    od_feature_cache_writer *writer = calloc(1, sizeof *writer);
    if (!writer) {
        od_fail(err, "feature cache: out of memory");
        return NULL;
    }
    writer->info = *info;
    return writer;
}

void od_feature_cache_writer_free(od_feature_cache_writer *writer)
{
    if (!writer)
        return;
    for (int64_t i = 0; i < writer->count; i++) {
        free(writer->views[i].name);
        free(writer->views[i].halves);
    }
    free(writer->views);
    free(writer);
}

int od_feature_cache_add_view(od_feature_cache_writer *writer, const char *view, const float *features,
                              int64_t height, int64_t width, od_error *err)
{
    /* features is (height, width, channels) */
    if (!writer || !view || !view[0] || !features)
        return od_fail(err, "od_feature_cache_add_view: writer, view name and features must be given");
    if (height < 1 || width < 1)
        return od_fail(err, "od_feature_cache_add_view %s: feature map %lld x %lld must be at least 1 x 1", view,
                       (long long)height, (long long)width);
    for (int64_t i = 0; i < writer->count; i++)
        if (strcmp(writer->views[i].name, view) == 0)
            return od_fail(err, "od_feature_cache_add_view: view %s was already added", view);
    const int64_t channels = writer->info.channels;
    const int64_t count = height * width * channels;
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(features[i]) || fabsf(features[i]) >= 65520.0f)
            return od_fail(err, "od_feature_cache_add_view %s: value %g at index %lld is not a finite float16", view,
                           (double)features[i], (long long)i);
    if (writer->count == writer->capacity) {
        int64_t capacity = writer->capacity ? 2 * writer->capacity : 8;
        cached_view *grown = realloc(writer->views, (size_t)capacity * sizeof *grown);
        if (!grown)
            return od_fail(err, "od_feature_cache_add_view: out of memory");
        writer->views = grown;
        writer->capacity = capacity;
    }
    cached_view *entry = &writer->views[writer->count];
    entry->name = strdup(view);
    entry->halves = malloc((size_t)count * sizeof(uint16_t));
    if (!entry->name || !entry->halves) {
        free(entry->name);
        free(entry->halves);
        return od_fail(err, "od_feature_cache_add_view: out of memory");
    }
    entry->shape[0] = height;
    entry->shape[1] = width;
    entry->shape[2] = channels;
    od_floats_to_halves(features, entry->halves, count);
    writer->count++;
    return 0;
}

int od_feature_cache_write(od_feature_cache_writer *writer, const char *path, od_error *err)
{
    if (!writer || !path)
        return od_fail(err, "od_feature_cache_write: writer and path must be given");
    const od_feature_cache_info *info = &writer->info;
    char numbers[5][32];
    snprintf(numbers[0], sizeof numbers[0], "%lld", (long long)info->input_height);
    snprintf(numbers[1], sizeof numbers[1], "%lld", (long long)info->input_width);
    snprintf(numbers[2], sizeof numbers[2], "%lld", (long long)info->stride);
    snprintf(numbers[3], sizeof numbers[3], "%lld", (long long)info->channels);
    snprintf(numbers[4], sizeof numbers[4], "%.17g", info->offset);
    od_st_writer *st = od_st_writer_new();
    if (!st)
        return od_fail(err, "od_feature_cache_write: out of memory");
    int status = 0;
    if (od_st_writer_set_metadata(st, "format", FORMAT_NAME, err) != 0 ||
        od_st_writer_set_metadata(st, "network", info->network, err) != 0 ||
        od_st_writer_set_metadata(st, "layer", info->layer, err) != 0 ||
        od_st_writer_set_metadata(st, "input_height", numbers[0], err) != 0 ||
        od_st_writer_set_metadata(st, "input_width", numbers[1], err) != 0 ||
        od_st_writer_set_metadata(st, "stride", numbers[2], err) != 0 ||
        od_st_writer_set_metadata(st, "offset", numbers[4], err) != 0 ||
        od_st_writer_set_metadata(st, "channels", numbers[3], err) != 0 ||
        od_st_writer_set_metadata(st, "pca_checksum", info->pca_checksum, err) != 0)
        status = -1;
    for (int64_t i = 0; status == 0 && i < writer->count; i++)
        status = od_st_writer_add(st, writer->views[i].name, OD_DTYPE_F16, 3, writer->views[i].shape,
                                  writer->views[i].halves, err);
    if (status == 0)
        status = od_st_writer_write(st, path, err);
    od_st_writer_free(st);
    if (status != 0)
        return od_fail_context(err, "od_feature_cache_write %s", path);
    return 0;
}

struct od_feature_cache {
    od_safetensors *st;
};

static int check_text(const od_safetensors *st, const char *path, const char *key, const char *expected,
                      od_error *err)
{
    const char *value = od_safetensors_metadata(st, key);
    if (!value)
        return od_fail(err, "%s: metadata %s is missing", path, key);
    if (strcmp(value, expected) != 0)
        return od_fail(err, "%s: metadata %s is \"%s\", expected \"%s\"; recompute the cache", path, key, value,
                       expected);
    return 0;
}

static int check_number(const od_safetensors *st, const char *path, const char *key, int64_t expected,
                        od_error *err)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)expected);
    return check_text(st, path, key, text, err);
}

/* Checks the offset key, which caches written before it existed lack. */
static int check_offset(const od_safetensors *st, const char *path, double expected, od_error *err)
{
    const char *value = od_safetensors_metadata(st, "offset");
    if (!value)
        return od_fail(err,
                       "%s: metadata offset (the input pixel of feature cell 0's centre) is missing, so the cache "
                       "was written before the offset was recorded; recompute it with `oddone teacher`",
                       path);
    char *end = NULL;
    errno = 0;
    const double offset = strtod(value, &end);
    if (errno != 0 || end == value || *end != '\0' || !isfinite(offset))
        return od_fail(err, "%s: metadata offset is \"%s\", expected a finite number", path, value);
    if (offset != expected)
        return od_fail(err, "%s: metadata offset is %.17g, expected %.17g; recompute the cache", path, offset,
                       expected);
    return 0;
}

od_feature_cache *od_feature_cache_read(const char *path, const od_feature_cache_info *expected, od_error *err)
{
    if (check_info(expected, err) != 0)
        return NULL;
    od_safetensors *st = od_safetensors_read(path, err);
    if (!st)
        return NULL;
    if (check_text(st, path, "format", FORMAT_NAME, err) != 0 ||
        check_text(st, path, "network", expected->network, err) != 0 ||
        check_text(st, path, "layer", expected->layer, err) != 0 ||
        check_number(st, path, "input_height", expected->input_height, err) != 0 ||
        check_number(st, path, "input_width", expected->input_width, err) != 0 ||
        check_number(st, path, "stride", expected->stride, err) != 0 ||
        check_offset(st, path, expected->offset, err) != 0 ||
        check_number(st, path, "channels", expected->channels, err) != 0 ||
        check_text(st, path, "pca_checksum", expected->pca_checksum, err) != 0) {
        od_safetensors_free(st);
        return NULL;
    }
    for (size_t i = 0; i < st->count; i++) {
        const od_st_entry *entry = &st->entries[i];
        if (entry->dtype != OD_DTYPE_F16 || entry->ndim != 3 || entry->shape[0] < 1 || entry->shape[1] < 1 ||
            entry->shape[2] != expected->channels) {
            char shape[96];
            od_fail(err, "%s: view %s is %s %s, expected F16 (H', W', %lld)", path, entry->name,
                    od_dtype_name(entry->dtype), od_shape_format(entry->ndim, entry->shape, shape, sizeof shape),
                    (long long)expected->channels);
            od_safetensors_free(st);
            return NULL;
        }
        const unsigned char *bytes = st->data + entry->begin;
        for (uint64_t b = 0; b + 1 < entry->end - entry->begin; b += 2) {
            /* little-endian half: an exponent of all ones is infinity or NaN */
            if ((bytes[b + 1] & 0x7c) == 0x7c) {
                od_fail(err, "%s: view %s contains a non-finite value at index %llu", path, entry->name,
                        (unsigned long long)(b / 2));
                od_safetensors_free(st);
                return NULL;
            }
        }
    }
    od_feature_cache *cache = calloc(1, sizeof *cache);
    if (!cache) {
        od_safetensors_free(st);
        od_fail(err, "%s: out of memory", path);
        return NULL;
    }
    cache->st = st;
    return cache;
}

void od_feature_cache_free(od_feature_cache *cache)
{
    if (!cache)
        return;
    od_safetensors_free(cache->st);
    free(cache);
}

int64_t od_feature_cache_view_count(const od_feature_cache *cache)
{
    return cache ? (int64_t)cache->st->count : 0;
}

const char *od_feature_cache_view_name(const od_feature_cache *cache, int64_t i)
{
    if (!cache || i < 0 || i >= (int64_t)cache->st->count)
        return NULL;
    return cache->st->entries[i].name;
}

od_tensor *od_feature_cache_get(const od_feature_cache *cache, const char *view, od_error *err)
{
    if (!cache || !view) {
        od_fail(err, "od_feature_cache_get: cache and view must be given");
        return NULL;
    }
    if (!od_safetensors_find(cache->st, view)) {
        od_fail(err, "%s: view %s not found", cache->st->source, view);
        return NULL;
    }
    return od_safetensors_get(cache->st, view, -1, NULL, err);
}
