/* Aligned float buffers. Buffers are 64-byte aligned so that AVX-512 loads
 * and oneDNN's blocked kernels never straddle a cache line at the start. */
#ifndef ODDONE_CORE_MEM_H
#define ODDONE_CORE_MEM_H

#include <stddef.h>
#include <stdint.h>

#define OD_ALIGNMENT 64

/* Returns a zero-filled buffer of `count` floats, or NULL when out of memory
 * or when count is negative or too large. od_free releases it. */
float *od_alloc_floats(int64_t count);

/* Returns an uninitialised 64-byte-aligned buffer of `bytes` bytes, or NULL. */
void *od_alloc_aligned(size_t bytes);

void od_free(void *pointer);

#endif
