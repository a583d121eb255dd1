/* 16-bit greyscale PNG output for depth maps, which od_image_write_png
 * cannot write because it stores 8 bits per sample. */
#ifndef ODDONE_SYNTH_DEPTH_PNG_H
#define ODDONE_SYNTH_DEPTH_PNG_H

#include <stdint.h>

#include "core/error.h"

/* Writes `values` (height, width) as a 16-bit greyscale PNG, the stored
 * integers unchanged, so od_image_read_gray_raw reads them back exactly.
 * The file appears only when complete (written under a temporary name,
 * then renamed). */
int od_write_png16(const char *path, const uint16_t *values, int width, int height, od_error *err);

#endif
