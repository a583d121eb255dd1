/* Drawing onto od_image: lines, filled circles, polygon outlines,
 * rectangles and text in a built-in 5 x 7 bitmap font. Used to draw
 * projected 3D boxes and their labels onto views, and the top-down sketch
 * of a scene.
 *
 * Coordinates are in pixels with pixel centres at integer (x, y), x right
 * and y down, the convention of a pinhole projection with OpenCV
 * intrinsics. Shapes are clipped to the image: any part outside is
 * dropped, and endpoints far outside the image cost no more than ones
 * inside. A shape with a NaN or infinite coordinate draws nothing.
 *
 * Colours are RGB in [0, 1]. On a 1-channel image the Rec. 601 luma of the
 * colour is written; on a 4-channel image alpha is set to 1. Drawing is
 * opaque: no blending and no antialiasing, so drawn pixels hold exactly
 * the colour given. */
#ifndef ODDONE_IO_DRAW_H
#define ODDONE_IO_DRAW_H

#include "io/image.h"

/* Height of a line of text at scale 1, in pixels (7 rows of glyph plus
 * spacing), and the horizontal advance of one character. */
#define OD_DRAW_FONT_LINE_HEIGHT 9
#define OD_DRAW_FONT_ADVANCE 6

/* Draws a segment of `thickness` pixels (at least 1) with round ends:
 * every pixel whose centre lies within thickness / 2 of the segment. */
void od_draw_line(od_image *image, double x0, double y0, double x1, double y1, const float color[3],
                  double thickness);

/* Fills the disc of `radius` pixels around (x, y). The pixel nearest the
 * centre is drawn whenever it is inside the image, so radius 0 draws a
 * single pixel. */
void od_draw_circle(od_image *image, double x, double y, double radius, const float color[3]);

/* Draws the outline of a polygon through `count` points (count, 2) as
 * (x, y) pairs, closing it back to the first point. */
void od_draw_polygon(od_image *image, const double *points, int count, const float color[3],
                     double thickness);

/* Fills the pixels with x0 <= x <= x1 and y0 <= y <= y1 (integer pixel
 * indices, clipped to the image). */
void od_draw_fill_rect(od_image *image, int x0, int y0, int x1, int y1, const float color[3]);

/* Draws text with its top-left corner at pixel (x, y), each font pixel as
 * a scale x scale square (scale >= 1). The font has the digits, the
 * letters (lower case is drawn in upper case) and common punctuation
 * (space . , : ; - + _ = / \ ( ) [ ] < > ' " ! ? # % * & @ |); any other
 * character is drawn as a hollow box. '\n' starts a new line. */
void od_draw_text(od_image *image, int x, int y, const char *text, const float color[3], int scale);

/* Returns the size in pixels that od_draw_text would cover. */
void od_draw_text_size(const char *text, int scale, int *width, int *height);

#endif
