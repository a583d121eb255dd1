#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

void *od_alloc_aligned(size_t bytes)
{
    /* aligned_alloc needs a size that is a multiple of the alignment. */
    size_t rounded = (bytes + OD_ALIGNMENT - 1) / OD_ALIGNMENT * OD_ALIGNMENT;
    if (rounded < bytes)
        return NULL;
    if (rounded == 0)
        rounded = OD_ALIGNMENT;
    return aligned_alloc(OD_ALIGNMENT, rounded);
}

float *od_alloc_floats(int64_t count)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX / sizeof(float) - OD_ALIGNMENT)
        return NULL;
    size_t bytes = (size_t)count * sizeof(float);
    float *buffer = od_alloc_aligned(bytes);
    if (buffer != NULL)
        memset(buffer, 0, bytes);
    return buffer;
}

void od_free(void *pointer) { free(pointer); }
