/* The named parameter set (see params.h). */
#include "model/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "io/safetensors.h"

typedef struct param_entry {
    od_param param;
    int in_optimizer; /* registered by od_params_add_to_adam */
} param_entry;

struct od_params {
    param_entry **entries; /* pointers, so that od_param pointers stay valid as the set grows */
    int count, capacity;
};

od_params *od_params_new(od_error *err)
{
    od_params *params = calloc(1, sizeof *params);
    if (params == NULL)
        od_fail(err, "params: out of memory");
    return params;
}

void od_params_free(od_params *params)
{
    if (params == NULL)
        return;
    for (int i = 0; i < params->count; i++) {
        od_free(params->entries[i]->param.value);
        od_free(params->entries[i]->param.grad);
        free(params->entries[i]);
    }
    free(params->entries);
    free(params);
}

int od_params_count(const od_params *params)
{
    return params->count;
}

od_param *od_params_at(const od_params *params, int index)
{
    return index >= 0 && index < params->count ? &params->entries[index]->param : NULL;
}

od_param *od_params_find(const od_params *params, const char *name)
{
    for (int i = 0; i < params->count; i++)
        if (strcmp(params->entries[i]->param.name, name) == 0)
            return &params->entries[i]->param;
    return NULL;
}

int64_t od_params_numel(const od_params *params)
{
    int64_t total = 0;
    for (int i = 0; i < params->count; i++)
        if (params->entries[i]->param.grad != NULL)
            total += params->entries[i]->param.count;
    return total;
}

od_param *od_params_add(od_params *params, const char *name, int ndim, const int64_t *shape, int trainable,
                        od_param_init init, int64_t fan_in, od_error *err)
{
    if (name == NULL || name[0] == '\0' || strlen(name) >= OD_PARAM_NAME_SIZE) {
        od_fail(err, "params: invalid name \"%s\" (expected 1 to %d characters)", name ? name : "",
                OD_PARAM_NAME_SIZE - 1);
        return NULL;
    }
    if (od_params_find(params, name) != NULL) {
        od_fail(err, "params: tensor \"%s\" registered twice", name);
        return NULL;
    }
    int64_t count = ndim >= 0 && ndim <= OD_MAX_DIMS ? od_shape_numel(ndim, shape) : -1;
    if (count < 0 || (init == OD_PARAM_INIT_KAIMING_UNIFORM && ndim < 2) || (init == OD_PARAM_INIT_BIAS && fan_in < 1)) {
        od_fail(err, "params: tensor \"%s\": invalid shape or fan-in for its initialisation", name);
        return NULL;
    }
    if (params->count == params->capacity) {
        int capacity = params->capacity ? 2 * params->capacity : 64;
        param_entry **grown = realloc(params->entries, (size_t)capacity * sizeof *grown);
        if (grown == NULL) {
            od_fail(err, "params: out of memory adding \"%s\"", name);
            return NULL;
        }
        params->entries = grown;
        params->capacity = capacity;
    }
    param_entry *entry = calloc(1, sizeof *entry);
    od_param *p = entry ? &entry->param : NULL;
    if (p != NULL) {
        /* A tensor of zero elements still gets a one-float buffer, so a
         * NULL pointer always means an allocation failure. */
        int64_t allocated = count > 0 ? count : 1;
        p->value = od_alloc_floats(allocated);
        p->grad = NULL;
        if (trainable)
            p->grad = od_alloc_floats(allocated);
    }
    if (p == NULL || p->value == NULL || (trainable && p->grad == NULL)) {
        if (p != NULL) {
            od_free(p->value);
            od_free(p->grad);
        }
        free(entry);
        od_fail(err, "params: out of memory for \"%s\" (%lld floats)", name, (long long)count);
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        p->shape[i] = shape[i];
    p->count = count;
    p->init = init;
    p->fan_in = fan_in;
    params->entries[params->count++] = entry;
    return p;
}

/* ---- initialisation ------------------------------------------------------- */

/* FNV-1a, so that a tensor's random stream follows from its name. */
static uint64_t name_hash(const char *name)
{
    uint64_t hash = 14695981039346656037ull;
    for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++) {
        hash ^= *c;
        hash *= 1099511628211ull;
    }
    return hash;
}

void od_params_initialize(od_params *params, uint64_t seed)
{
    od_rng root;
    od_rng_seed(&root, seed);
    for (int i = 0; i < params->count; i++) {
        od_param *p = &params->entries[i]->param;
        od_rng rng = od_rng_fork(&root, name_hash(p->name));
        switch (p->init) {
        case OD_PARAM_INIT_KAIMING_UNIFORM: {
            int64_t fan_in = p->shape[1];
            for (int d = 2; d < p->ndim; d++)
                fan_in *= p->shape[d];
            float bound = fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
            od_rng_fill_uniform(&rng, p->value, p->count, -bound, bound);
            break;
        }
        case OD_PARAM_INIT_BIAS: {
            float bound = (float)(1.0 / sqrt((double)p->fan_in));
            od_rng_fill_uniform(&rng, p->value, p->count, -bound, bound);
            break;
        }
        case OD_PARAM_INIT_ZEROS:
            memset(p->value, 0, (size_t)p->count * sizeof(float));
            break;
        case OD_PARAM_INIT_ONES:
            for (int64_t j = 0; j < p->count; j++)
                p->value[j] = 1.0f;
            break;
        }
    }
}

void od_params_zero_grad(od_params *params)
{
    for (int i = 0; i < params->count; i++) {
        od_param *p = &params->entries[i]->param;
        if (p->grad != NULL)
            memset(p->grad, 0, (size_t)p->count * sizeof(float));
    }
}

/* ---- checkpoints ------------------------------------------------------------ */

int od_params_save(const od_params *params, const char *path, od_error *err)
{
    od_st_writer *writer = od_st_writer_new();
    if (writer == NULL)
        return od_fail(err, "%s: out of memory", path);
    int rc = od_st_writer_set_metadata(writer, "format", OD_PARAMS_FORMAT, err);
    for (int i = 0; rc == 0 && i < params->count; i++) {
        const od_param *p = &params->entries[i]->param;
        rc = od_st_writer_add(writer, p->name, OD_DTYPE_F32, p->ndim, p->shape, p->value, err);
    }
    if (rc == 0)
        rc = od_st_writer_write(writer, path, err);
    od_st_writer_free(writer);
    return rc;
}

int od_params_load(od_params *params, const char *path, od_error *err)
{
    od_safetensors *file = od_safetensors_read(path, err);
    if (file == NULL)
        return -1;
    int rc = 0;
    char want[96], got[96];

    /* pass 1: check names and shapes, so that a bad file changes nothing */
    for (int i = 0; rc == 0 && i < params->count; i++) {
        const od_param *p = &params->entries[i]->param;
        const od_st_entry *entry = od_safetensors_find(file, p->name);
        if (entry == NULL)
            rc = od_fail(err, "%s: tensor \"%s\" is missing (the checkpoint is of another model or configuration)",
                         path, p->name);
        else if (entry->ndim != p->ndim || memcmp(entry->shape, p->shape, (size_t)p->ndim * sizeof(int64_t)) != 0)
            rc = od_fail(err, "%s: tensor \"%s\" has shape %s, expected %s (the checkpoint is of another "
                              "configuration)",
                         path, p->name, od_shape_format(entry->ndim, entry->shape, got, sizeof got),
                         od_shape_format(p->ndim, p->shape, want, sizeof want));
        else if (entry->dtype != OD_DTYPE_F32 && entry->dtype != OD_DTYPE_F64 && entry->dtype != OD_DTYPE_F16 &&
                 entry->dtype != OD_DTYPE_BF16)
            rc = od_fail(err, "%s: tensor \"%s\" has dtype %s, expected a floating-point dtype", path, p->name,
                         od_dtype_name(entry->dtype));
    }
    for (size_t i = 0; rc == 0 && i < file->count; i++)
        if (od_params_find(params, file->entries[i].name) == NULL)
            rc = od_fail(err, "%s: unexpected tensor \"%s\" (not a tensor of this model)", path,
                         file->entries[i].name);

    /* pass 2: convert every tensor before copying any */
    od_tensor **loaded = rc == 0 ? calloc((size_t)params->count + 1, sizeof *loaded) : NULL;
    if (rc == 0 && loaded == NULL)
        rc = od_fail(err, "%s: out of memory", path);
    for (int i = 0; rc == 0 && i < params->count; i++) {
        const od_param *p = &params->entries[i]->param;
        loaded[i] = od_safetensors_get(file, p->name, p->ndim, p->shape, err);
        if (loaded[i] == NULL)
            rc = -1;
    }
    for (int i = 0; rc == 0 && i < params->count; i++) {
        od_param *p = &params->entries[i]->param;
        memcpy(p->value, loaded[i]->data, (size_t)p->count * sizeof(float));
    }
    for (int i = 0; loaded != NULL && i < params->count; i++)
        od_tensor_free(loaded[i]);
    free(loaded);
    od_safetensors_free(file);
    return rc;
}

/* ---- optimizer -------------------------------------------------------------- */

int od_params_add_to_adam(od_params *params, od_adam *adam, const char *prefix, int group, int *registered,
                          od_error *err)
{
    size_t prefix_length = strlen(prefix);
    int added = 0;
    for (int i = 0; i < params->count; i++) {
        param_entry *entry = params->entries[i];
        od_param *p = &entry->param;
        if (p->grad == NULL || entry->in_optimizer || strncmp(p->name, prefix, prefix_length) != 0)
            continue;
        if (od_adam_add_param(adam, group, p->name, p->value, p->grad, p->ndim, p->shape, err) != 0)
            return -1;
        entry->in_optimizer = 1;
        added++;
    }
    if (registered != NULL)
        *registered = added;
    return 0;
}
