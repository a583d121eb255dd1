/* The one EXIF field oddone reads: the orientation of a JPEG photo.
 *
 * Cameras and phones store the sensor's pixels as read out and record in
 * the EXIF orientation tag (0x0112) how to turn them upright. Its values
 * 1 to 8 are the TIFF 6.0 orientations:
 *   1 upright            2 mirrored left-right
 *   3 rotated 180        4 mirrored top-bottom
 *   5 transposed (mirrored about the main diagonal)
 *   6 needs a 90-degree clockwise turn
 *   7 transversed (mirrored about the other diagonal)
 *   8 needs a 90-degree counter-clockwise turn */
#ifndef ODDONE_IO_EXIF_H
#define ODDONE_IO_EXIF_H

#include <stddef.h>

/* Returns the orientation (1 to 8) stored in the payload of a JPEG APP1
 * segment: "Exif\0\0", then a TIFF header in either byte order and IFD0.
 * Returns 1 when the payload is not EXIF, has no orientation tag, or is
 * truncated or malformed. Every offset is checked against `size`. */
int od_exif_orientation(const unsigned char *payload, size_t size);

/* Maps stored pixel (x, y) of a width x height image to its upright
 * position (*upright_x, *upright_y) for an orientation 1 to 8. Orientations
 * 5 to 8 swap width and height. */
void od_exif_upright_position(int orientation, int width, int height, int x, int y, int *upright_x,
                              int *upright_y);

#endif
