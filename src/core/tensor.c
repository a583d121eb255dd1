#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

int64_t od_shape_numel(int ndim, const int64_t *shape)
{
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return -1;
        if (shape[i] != 0 && numel > INT64_MAX / shape[i])
            return -1;
        numel *= shape[i];
    }
    return numel;
}

char *od_shape_format(int ndim, const int64_t *shape, char *buffer, size_t size)
{
    size_t used = 0;
    used += (size_t)snprintf(buffer + used, size - used, "(");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buffer + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size)
        snprintf(buffer + used, size - used, ")");
    return buffer;
}

od_tensor *od_tensor_new(int ndim, const int64_t *shape, od_error *err)
{
    if (ndim < 0 || ndim > OD_MAX_DIMS) {
        od_fail(err, "tensor: %d dimensions requested, expected 0 to %d", ndim, OD_MAX_DIMS);
        return NULL;
    }
    int64_t numel = od_shape_numel(ndim, shape);
    if (numel < 0) {
        char text[256];
        od_fail(err, "tensor: invalid shape %s", od_shape_format(ndim, shape, text, sizeof text));
        return NULL;
    }
    od_tensor *t = calloc(1, sizeof *t);
    if (t == NULL) {
        od_fail(err, "tensor: out of memory");
        return NULL;
    }
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = od_alloc_floats(numel);
    if (t->data == NULL) {
        free(t);
        od_fail(err, "tensor: out of memory for %lld floats", (long long)numel);
        return NULL;
    }
    return t;
}

od_tensor *od_tensor_clone(const od_tensor *t, od_error *err)
{
    od_tensor *copy = od_tensor_new(t->ndim, t->shape, err);
    if (copy != NULL)
        memcpy(copy->data, t->data, (size_t)od_tensor_numel(t) * sizeof(float));
    return copy;
}

void od_tensor_free(od_tensor *t)
{
    if (t == NULL)
        return;
    od_free(t->data);
    free(t);
}

int64_t od_tensor_numel(const od_tensor *t) { return od_shape_numel(t->ndim, t->shape); }

int od_tensor_has_shape(const od_tensor *t, int ndim, const int64_t *shape)
{
    if (t->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i])
            return 0;
    return 1;
}
