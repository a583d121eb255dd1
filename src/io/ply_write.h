/* PLY point clouds with vertex colours, for viewing a detection in
 * MeshLab or CloudCompare: binary little-endian PLY 1.0 with float x, y, z
 * and uchar red, green, blue per vertex. */
#ifndef ODDONE_IO_PLY_WRITE_H
#define ODDONE_IO_PLY_WRITE_H

#include <stdint.h>

#include "core/error.h"

/* Writes count points, positions (count, 3) in world units and colours
 * (count, 3) as 0-255, to path atomically (io/atomic_file.h): the file
 * appears only when complete. comment (may be NULL) becomes a header
 * comment line and must not contain a newline. Fails on a NULL buffer
 * (with count > 0), a negative count, a newline in the comment or an I/O
 * error. */
int od_ply_write_points(const char *path, const float *positions, const uint8_t *colors, int64_t count,
                        const char *comment, od_error *err);

#endif
