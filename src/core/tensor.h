/* A tensor: a shape and a dense row-major float buffer that it owns.
 *
 * Layers take raw pointers and explicit sizes (see src/nn/); od_tensor is
 * what models, checkpoints and tests pass around. Activations of the
 * network are channels-last: 2D maps are (N, H, W, C) and volumes are
 * (N, D, H, W, C), so that a voxel's features are contiguous for sampling,
 * lifting and linear layers. Weights keep PyTorch's layout. */
#ifndef ODDONE_CORE_TENSOR_H
#define ODDONE_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define OD_MAX_DIMS 6

typedef struct od_tensor {
    int ndim;
    int64_t shape[OD_MAX_DIMS];
    float *data; /* 64-byte aligned, od_tensor_numel() floats */
} od_tensor;

/* Returns a zero-filled tensor, or NULL with a message when the shape is
 * invalid (ndim outside 0..OD_MAX_DIMS, a negative size, an overflowing
 * element count) or memory runs out. */
od_tensor *od_tensor_new(int ndim, const int64_t *shape, od_error *err);

/* Returns a deep copy of t, or NULL when memory runs out. */
od_tensor *od_tensor_clone(const od_tensor *t, od_error *err);

void od_tensor_free(od_tensor *t);

int64_t od_tensor_numel(const od_tensor *t);

/* Returns 1 when t has exactly this shape. */
int od_tensor_has_shape(const od_tensor *t, int ndim, const int64_t *shape);

/* Writes the shape as "(2, 3, 4)" into buffer and returns buffer. */
char *od_shape_format(int ndim, const int64_t *shape, char *buffer, size_t size);

/* Returns the product of the sizes, or -1 when a size is negative or the
 * product overflows int64_t. */
int64_t od_shape_numel(int ndim, const int64_t *shape);

#endif
