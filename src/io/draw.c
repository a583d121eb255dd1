/* Drawing primitives for the views and sketches that `oddone show`
 * writes. Everything reduces to filling runs of pixels in one row or one
 * column with a fixed colour, after clipping in double precision, so
 * coordinates far outside the image never reach an int conversion. */
#include "io/draw.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Thicker lines and larger discs than this cover any image many times
 * over; the cap keeps infinities out of the arithmetic. */
#define MAX_EXTENT 1.0e7

/* The colour as written into one pixel of `channels` channels. */
typedef struct pixel_value {
    float v[4];
    int channels;
} pixel_value;

static int image_is_drawable(const od_image *image)
{
    return image != NULL && image->pixels != NULL && image->width > 0 && image->height > 0 &&
           (image->channels == 1 || image->channels == 3 || image->channels == 4);
}

static pixel_value make_value(const od_image *image, const float color[3])
{
    pixel_value value = {{0}, image->channels};
    if (image->channels == 1) {
        value.v[0] = 0.299f * color[0] + 0.587f * color[1] + 0.114f * color[2];
    } else {
        memcpy(value.v, color, 3 * sizeof *color);
        value.v[3] = 1.0f;
    }
    return value;
}

static void put_pixel(od_image *image, int x, int y, const pixel_value *value)
{
    float *p = image->pixels + ((size_t)y * image->width + x) * image->channels;
    for (int c = 0; c < value->channels; c++)
        p[c] = value->v[c];
}

/* Fills pixels x0..x1 of row y; the caller has clipped them. */
static void fill_row(od_image *image, int y, int x0, int x1, const pixel_value *value)
{
    for (int x = x0; x <= x1; x++)
        put_pixel(image, x, y, value);
}

/* Clamps a coordinate to [low, high] and converts it to int; NaN never
 * reaches here. */
static int clamp_to_int(double coordinate, int low, int high)
{
    if (coordinate < low)
        return low;
    if (coordinate > high)
        return high;
    return (int)coordinate;
}

/* ------------------------------------------------------------------------
 * Lines */

/* Clips the segment p0-p1 to the rectangle [low_x, high_x] x [low_y,
 * high_y]; returns 0 when nothing of it is inside.
 *
 * Endpoints may be anywhere up to DBL_MAX, where p0 + s * (p1 - p0)
 * would overflow or cancel away every digit that matters in pixels. So
 * the points are first scaled by a power of two (exact) to magnitudes
 * near 1, the entry and exit parameters are found Liang-Barsky style,
 * and each clipped end is put exactly on its boundary, its other
 * coordinate solved from the line equation x * dy - y * dx = k, with
 * k = x0 * y1 - y0 * x1. Unlike interpolating from a far endpoint, this
 * keeps pixel precision for lines through the origin however far their
 * ends are. Horizontal and vertical lines keep their exact coordinate. */
typedef struct clip_end {
    double s;        /* parameter along p0 + s * (p1 - p0), in [0, 1] */
    int boundary;    /* -1: the original endpoint; 0, 1: x = low, high; 2, 3: y = low, high */
} clip_end;

static int clip_against(double direction, double distance, int boundary, clip_end *enter, clip_end *leave)
{
    /* The segment is inside where direction * s <= distance. */
    if (direction == 0.0)
        return distance >= 0.0;
    double s = distance / direction;
    if (direction > 0.0) {
        if (s < enter->s)
            return 0;
        if (s < leave->s) {
            leave->s = s;
            leave->boundary = boundary;
        }
    } else {
        if (s > leave->s)
            return 0;
        if (s > enter->s) {
            enter->s = s;
            enter->boundary = boundary;
        }
    }
    return 1;
}

static int clip_segment(double *x0, double *y0, double *x1, double *y1, double low_x, double low_y,
                        double high_x, double high_y)
{
    double largest = fmax(fmax(fabs(*x0), fabs(*y0)), fmax(fmax(fabs(*x1), fabs(*y1)), 1.0));
    int exponent;
    frexp(largest, &exponent);
    double ax = ldexp(*x0, -exponent), ay = ldexp(*y0, -exponent);
    double bx = ldexp(*x1, -exponent), by = ldexp(*y1, -exponent);
    double bounds[4] = {ldexp(low_x, -exponent), ldexp(high_x, -exponent), ldexp(low_y, -exponent),
                        ldexp(high_y, -exponent)};
    double dx = bx - ax, dy = by - ay;

    clip_end enter = {0.0, -1}, leave = {1.0, -1};
    if (!clip_against(-dx, ax - bounds[0], 0, &enter, &leave) ||
        !clip_against(dx, bounds[1] - ax, 1, &enter, &leave) ||
        !clip_against(-dy, ay - bounds[2], 2, &enter, &leave) ||
        !clip_against(dy, bounds[3] - ay, 3, &enter, &leave))
        return 0;

    double k = ax * by - ay * bx;
    double ends[2][2] = {{ax, ay}, {bx, by}};
    const clip_end *clipped[2] = {&enter, &leave};
    for (int e = 0; e < 2; e++) {
        int boundary = clipped[e]->boundary;
        if (boundary < 0)
            continue;
        double c = bounds[boundary];
        if (boundary < 2) {
            ends[e][0] = c;
            ends[e][1] = dy == 0.0 ? ay : (c * dy - k) / dx;
        } else {
            ends[e][0] = dx == 0.0 ? ax : (k + c * dx) / dy;
            ends[e][1] = c;
        }
    }

    /* Back to pixels, kept inside the rectangle against rounding. */
    *x0 = fmin(fmax(ldexp(ends[0][0], exponent), low_x), high_x);
    *y0 = fmin(fmax(ldexp(ends[0][1], exponent), low_y), high_y);
    *x1 = fmin(fmax(ldexp(ends[1][0], exponent), low_x), high_x);
    *y1 = fmin(fmax(ldexp(ends[1][1], exponent), low_y), high_y);
    return isfinite(*x0) && isfinite(*y0) && isfinite(*x1) && isfinite(*y1);
}

/* Squared distance from (px, py) to the segment (x0, y0)-(x1, y1). */
static double segment_distance_squared(double px, double py, double x0, double y0, double x1, double y1)
{
    double dx = x1 - x0, dy = y1 - y0;
    double length_squared = dx * dx + dy * dy;
    double t = length_squared > 0.0 ? ((px - x0) * dx + (py - y0) * dy) / length_squared : 0.0;
    if (t < 0.0)
        t = 0.0;
    else if (t > 1.0)
        t = 1.0;
    double ex = px - (x0 + t * dx), ey = py - (y0 + t * dy);
    return ex * ex + ey * ey;
}

void od_draw_line(od_image *image, double x0, double y0, double x1, double y1, const float color[3],
                  double thickness)
{
    if (!image_is_drawable(image) || !isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1))
        return;
    if (!(thickness >= 1.0))
        thickness = 1.0;
    if (thickness > MAX_EXTENT)
        thickness = MAX_EXTENT;
    double radius = 0.5 * thickness;
    int width = image->width, height = image->height;

    /* Pixels lie in [0, width - 1]; a segment point further than radius + 1
     * outside cannot be the nearest point to any of them, so clipping to
     * this margin keeps every distance below exact. */
    double margin = radius + 1.0;
    if (!clip_segment(&x0, &y0, &x1, &y1, -margin, -margin, width - 1 + margin, height - 1 + margin))
        return;

    pixel_value value = make_value(image, color);
    double radius_squared = radius * radius;
    int x_major = fabs(x1 - x0) >= fabs(y1 - y0);

    /* Walk the major axis; in each column (or row) only pixels within the
     * band |minor - line(major)| <= radius * sqrt(1 + slope^2) can be within
     * radius of the segment, and each of them is tested exactly. */
    double major0 = x_major ? x0 : y0, major1 = x_major ? x1 : y1;
    double minor0 = x_major ? y0 : x0, minor1 = x_major ? y1 : x1;
    if (major0 > major1) {
        double swap = major0;
        major0 = major1;
        major1 = swap;
        swap = minor0;
        minor0 = minor1;
        minor1 = swap;
    }
    double slope = major1 > major0 ? (minor1 - minor0) / (major1 - major0) : 0.0;
    double band = radius * sqrt(1.0 + slope * slope);
    int major_size = x_major ? width : height, minor_size = x_major ? height : width;
    int major_first = clamp_to_int(ceil(major0 - radius), 0, major_size);
    int major_last = clamp_to_int(floor(major1 + radius), -1, major_size - 1);

    for (int major = major_first; major <= major_last; major++) {
        double center = minor0 + slope * (major - major0);
        int minor_first = clamp_to_int(ceil(center - band), 0, minor_size);
        int minor_last = clamp_to_int(floor(center + band), -1, minor_size - 1);
        for (int minor = minor_first; minor <= minor_last; minor++) {
            int x = x_major ? major : minor, y = x_major ? minor : major;
            if (segment_distance_squared(x, y, x0, y0, x1, y1) <= radius_squared)
                put_pixel(image, x, y, &value);
        }
    }
}

void od_draw_polygon(od_image *image, const double *points, int count, const float color[3],
                     double thickness)
{
    /* points is (count, 2) */
    if (points == NULL || count < 1)
        return;
    for (int i = 0; i < count; i++) {
        int next = (i + 1) % count;
        od_draw_line(image, points[2 * i], points[2 * i + 1], points[2 * next], points[2 * next + 1], color,
                     thickness);
    }
}

/* ------------------------------------------------------------------------
 * Discs and rectangles */

void od_draw_circle(od_image *image, double x, double y, double radius, const float color[3])
{
    if (!image_is_drawable(image) || !isfinite(x) || !isfinite(y))
        return;
    if (!(radius >= 0.0))
        radius = 0.0;
    if (radius > MAX_EXTENT)
        radius = MAX_EXTENT;
    pixel_value value = make_value(image, color);

    double nearest_x = floor(x + 0.5), nearest_y = floor(y + 0.5);
    if (nearest_x >= 0 && nearest_x < image->width && nearest_y >= 0 && nearest_y < image->height)
        put_pixel(image, (int)nearest_x, (int)nearest_y, &value);

    int row_first = clamp_to_int(ceil(y - radius), 0, image->height);
    int row_last = clamp_to_int(floor(y + radius), -1, image->height - 1);
    for (int row = row_first; row <= row_last; row++) {
        double dy = row - y;
        double half = sqrt(fmax(radius * radius - dy * dy, 0.0));
        int column_first = clamp_to_int(ceil(x - half), 0, image->width);
        int column_last = clamp_to_int(floor(x + half), -1, image->width - 1);
        if (column_first <= column_last)
            fill_row(image, row, column_first, column_last, &value);
    }
}

void od_draw_fill_rect(od_image *image, int x0, int y0, int x1, int y1, const float color[3])
{
    if (!image_is_drawable(image))
        return;
    if (x0 > x1) {
        int swap = x0;
        x0 = x1;
        x1 = swap;
    }
    if (y0 > y1) {
        int swap = y0;
        y0 = y1;
        y1 = swap;
    }
    if (x1 < 0 || y1 < 0 || x0 >= image->width || y0 >= image->height)
        return;
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 >= image->width ? image->width - 1 : x1;
    y1 = y1 >= image->height ? image->height - 1 : y1;
    pixel_value value = make_value(image, color);
    for (int y = y0; y <= y1; y++)
        fill_row(image, y, x0, x1, &value);
}

/* ------------------------------------------------------------------------
 * Text */

#define GLYPH_WIDTH 5
#define GLYPH_HEIGHT 7

typedef struct glyph {
    char character;
    const char *rows[GLYPH_HEIGHT]; /* '#' is ink, '.' is background */
} glyph;

/* A 5 x 7 font drawn for oddone's labels. */
static const glyph font[] = {
    {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
    {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
    {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
    {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
    {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
    {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
    {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
    {'D', {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."}},
    {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
    {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
    {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
    {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
    {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
    {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
    {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
    {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
    {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
    {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
    {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
    {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
    {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
    {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
    {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
    {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
    {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
    {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
    {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
    {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
    {';', {".....", ".##..", ".##..", ".....", ".##..", "..#..", ".#..."}},
    {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
    {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
    {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
    {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
    {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
    {'\\', {".....", "#....", ".#...", "..#..", "...#.", "....#", "....."}},
    {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
    {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
    {'[', {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."}},
    {']', {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."}},
    {'<', {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}},
    {'>', {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}},
    {'\'', {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."}},
    {'"', {".#.#.", ".#.#.", ".#.#.", ".....", ".....", ".....", "....."}},
    {'!', {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."}},
    {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
    {'#', {".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."}},
    {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
    {'*', {".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."}},
    {'&', {".##..", "#..#.", "#.#..", ".#...", "#.#.#", "#..#.", ".##.#"}},
    {'@', {".###.", "#...#", "#.###", "#.#.#", "#.###", "#....", ".###."}},
    {'|', {"..#..", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
};

/* Drawn for characters the font lacks, so that they stay visible. */
static const glyph missing_glyph = {
    '\0', {"#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####"}};

static const glyph *find_glyph(char character)
{
    if (character >= 'a' && character <= 'z')
        character = (char)(character - 'a' + 'A');
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++) {
        if (font[i].character == character)
            return &font[i];
    }
    return &missing_glyph;
}

void od_draw_text(od_image *image, int x, int y, const char *text, const float color[3], int scale)
{
    if (!image_is_drawable(image) || text == NULL)
        return;
    if (scale < 1)
        scale = 1;
    /* Positions in 64 bits: long strings at large scales pass INT_MAX. */
    int64_t advance = (int64_t)OD_DRAW_FONT_ADVANCE * scale;
    int64_t line_height = (int64_t)OD_DRAW_FONT_LINE_HEIGHT * scale;
    int64_t left = x, top = y;
    for (const char *c = text; *c != '\0'; c++) {
        if (*c == '\n') {
            left = x;
            top += line_height;
            continue;
        }
        int visible = left < image->width && left + advance > 0 && top < image->height &&
                      top + line_height > 0;
        if (visible && *c != ' ') {
            const glyph *g = find_glyph(*c);
            for (int row = 0; row < GLYPH_HEIGHT; row++) {
                for (int column = 0; column < GLYPH_WIDTH; column++) {
                    if (g->rows[row][column] != '#')
                        continue;
                    int64_t px = left + (int64_t)column * scale, py = top + (int64_t)row * scale;
                    if (px >= image->width || py >= image->height || px + scale <= 0 || py + scale <= 0)
                        continue;
                    int64_t px_end = px + scale - 1, py_end = py + scale - 1;
                    od_draw_fill_rect(image, (int)(px < 0 ? 0 : px), (int)(py < 0 ? 0 : py),
                                      (int)(px_end < image->width ? px_end : image->width - 1),
                                      (int)(py_end < image->height ? py_end : image->height - 1), color);
                }
            }
        }
        left += advance;
    }
}

void od_draw_text_size(const char *text, int scale, int *width, int *height)
{
    *width = 0;
    *height = 0;
    if (text == NULL || text[0] == '\0')
        return;
    if (scale < 1)
        scale = 1;
    int64_t longest = 0, current = 0, lines = 1;
    for (const char *c = text; *c != '\0'; c++) {
        if (*c == '\n') {
            lines++;
            current = 0;
            continue;
        }
        current++;
        if (current > longest)
            longest = current;
    }
    /* The last column and the last line carry no trailing gap. */
    int64_t w = longest > 0 ? longest * OD_DRAW_FONT_ADVANCE * scale - scale : 0;
    int64_t h = (lines - 1) * OD_DRAW_FONT_LINE_HEIGHT * scale + GLYPH_HEIGHT * scale;
    *width = w > INT32_MAX ? INT32_MAX : (int)w;
    *height = h > INT32_MAX ? INT32_MAX : (int)h;
}
