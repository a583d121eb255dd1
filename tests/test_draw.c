/* Drawing primitives: exact pixel sets for lines, discs, polygons,
 * rectangles and text, and safety for coordinates far outside the image,
 * infinite or NaN. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/draw.h"
#include "testlib.h"

static const float red[3] = {1.0f, 0.0f, 0.0f};

/* Returns 1 when pixel (x, y) of an RGB image is exactly `color`. */
static int is_color(const od_image *image, int x, int y, const float color[3])
{
    const float *p = image->pixels + ((size_t)y * image->width + x) * image->channels;
    return p[0] == color[0] && p[1] == color[1] && p[2] == color[2];
}

static int count_drawn(const od_image *image)
{
    int count = 0;
    for (int i = 0; i < image->width * image->height; i++) {
        const float *p = image->pixels + (size_t)i * image->channels;
        int any = 0;
        for (int c = 0; c < image->channels; c++)
            any |= p[c] != 0.0f;
        count += any;
    }
    return count;
}

static void clear(od_image *image)
{
    memset(image->pixels, 0, sizeof(float) * (size_t)image->width * image->height * image->channels);
}

static void line_thin_and_thick(void)
{
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(20, 12, 3, &image, &err) == 0);

    /* Thickness 1 on integer coordinates: exactly the pixels between. */
    od_draw_line(&image, 2, 5, 14, 5, red, 1.0);
    OD_CHECK(count_drawn(&image) == 13);
    for (int x = 2; x <= 14; x++)
        OD_CHECK(is_color(&image, x, 5, red));

    /* Thickness 3 (radius 1.5): rows 4 to 6, and the round caps reach one
     * column past each end, where (4, 4) is sqrt(2) < 1.5 from the end
     * but (3, 5) is 2 away. */
    clear(&image);
    od_draw_line(&image, 5, 5, 10, 5, red, 3.0);
    for (int y = 4; y <= 6; y++) {
        for (int x = 4; x <= 11; x++)
            OD_CHECK(is_color(&image, x, y, red));
    }
    OD_CHECK(count_drawn(&image) == 3 * 8);

    /* A steep line covers every row between its ends, once or twice. */
    clear(&image);
    od_draw_line(&image, 3.2, 0.4, 7.9, 11.1, red, 1.0);
    for (int y = 1; y <= 10; y++) {
        int in_row = 0;
        for (int x = 0; x < image.width; x++)
            in_row += is_color(&image, x, y, red);
        OD_CHECK(in_row >= 1 && in_row <= 2);
    }

    /* A zero-length line is a dot of its thickness. */
    clear(&image);
    od_draw_line(&image, 10, 6, 10, 6, red, 1.0);
    OD_CHECK(count_drawn(&image) == 1 && is_color(&image, 10, 6, red));
    od_image_free(&image);
}

static void line_far_outside_clipped(void)
{
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(16, 10, 3, &image, &err) == 0);

    /* Endpoints 1e30 away: the whole row 3 and nothing else. */
    od_draw_line(&image, -1e30, 3, 1e30, 3, red, 1.0);
    OD_CHECK(count_drawn(&image) == 16);
    for (int x = 0; x < 16; x++)
        OD_CHECK(is_color(&image, x, 3, red));

    /* Endpoints near the largest double: still the whole column 7. */
    clear(&image);
    od_draw_line(&image, 7, -DBL_MAX, 7, DBL_MAX, red, 1.0);
    OD_CHECK(count_drawn(&image) == 10);
    for (int y = 0; y < 10; y++)
        OD_CHECK(is_color(&image, 7, y, red));

    /* A diagonal from far away passes through the image. */
    clear(&image);
    od_draw_line(&image, -1e12, -1e12, 1e12, 1e12, red, 1.0);
    for (int i = 0; i < 10; i++)
        OD_CHECK(is_color(&image, i, i, red));

    /* Entirely outside, NaN, infinite: nothing drawn, no crash. */
    clear(&image);
    od_draw_line(&image, -50, -50, -20, 200, red, 3.0);
    od_draw_line(&image, 100, 2, 1e300, 2, red, 1.0);
    od_draw_line(&image, NAN, 2, 5, 2, red, 1.0);
    od_draw_line(&image, 1, 2, 5, INFINITY, red, 1.0);
    od_draw_line(&image, -DBL_MAX, -DBL_MAX, -DBL_MAX, DBL_MAX, red, 1.0);
    OD_CHECK(count_drawn(&image) == 0);

    /* NaN and absurd thickness are clamped, not trusted. */
    od_draw_line(&image, 2, 2, 4, 2, red, NAN);
    OD_CHECK(count_drawn(&image) == 3);
    clear(&image);
    od_draw_line(&image, 2, 2, 4, 2, red, INFINITY);
    OD_CHECK(count_drawn(&image) == 16 * 10);
    od_image_free(&image);
}

static void circle_pixel_sets(void)
{
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(21, 21, 3, &image, &err) == 0);

    /* Integer points within distance 3 of the origin: 29. */
    od_draw_circle(&image, 10, 10, 3.0, red);
    OD_CHECK(count_drawn(&image) == 29);
    OD_CHECK(is_color(&image, 13, 10, red) && is_color(&image, 10, 7, red));
    OD_CHECK(!is_color(&image, 13, 11, red));

    /* Radius 0 (and NaN) still marks the nearest pixel. */
    clear(&image);
    od_draw_circle(&image, 4.4, 5.6, 0.0, red);
    OD_CHECK(count_drawn(&image) == 1 && is_color(&image, 4, 6, red));
    clear(&image);
    od_draw_circle(&image, 4.4, 5.6, NAN, red);
    OD_CHECK(count_drawn(&image) == 1);

    /* Clipped at the border: a quarter disc plus its two edges. */
    clear(&image);
    od_draw_circle(&image, 0, 0, 3.0, red);
    OD_CHECK(count_drawn(&image) == 11);

    /* Far away or not finite: nothing. */
    clear(&image);
    od_draw_circle(&image, 1e300, 5, 10.0, red);
    od_draw_circle(&image, NAN, 5, 10.0, red);
    od_draw_circle(&image, 5, -INFINITY, 10.0, red);
    OD_CHECK(count_drawn(&image) == 0);
    /* A huge radius covers everything without overflowing. */
    od_draw_circle(&image, 5, 5, 1e300, red);
    OD_CHECK(count_drawn(&image) == 21 * 21);
    od_image_free(&image);
}

static void polygon_outline_closed(void)
{
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(12, 12, 3, &image, &err) == 0);
    const double square[8] = {2, 2, 9, 2, 9, 9, 2, 9};
    od_draw_polygon(&image, square, 4, red, 1.0);
    /* The perimeter of an 8 x 8 pixel square, interior untouched. */
    OD_CHECK(count_drawn(&image) == 28);
    OD_CHECK(is_color(&image, 2, 2, red) && is_color(&image, 9, 9, red));
    OD_CHECK(is_color(&image, 2, 5, red)); /* the closing edge */
    OD_CHECK(!is_color(&image, 5, 5, red));

    /* One point is a dot; zero points or NULL draw nothing. */
    clear(&image);
    od_draw_polygon(&image, square, 1, red, 1.0);
    OD_CHECK(count_drawn(&image) == 1);
    clear(&image);
    od_draw_polygon(&image, square, 0, red, 1.0);
    od_draw_polygon(&image, NULL, 4, red, 1.0);
    OD_CHECK(count_drawn(&image) == 0);
    od_image_free(&image);
}

static void fill_rect_clipped(void)
{
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(10, 8, 3, &image, &err) == 0);
    od_draw_fill_rect(&image, 7, 6, 2, 3, red); /* reversed corners */
    OD_CHECK(count_drawn(&image) == 6 * 4);
    clear(&image);
    od_draw_fill_rect(&image, -100, -100, 2147483647, 1, red);
    OD_CHECK(count_drawn(&image) == 10 * 2);
    clear(&image);
    od_draw_fill_rect(&image, 10, 0, 20, 5, red);
    OD_CHECK(count_drawn(&image) == 0);
    od_image_free(&image);
}

static void gray_and_rgba_targets(void)
{
    od_image gray, rgba;
    od_error err;
    OD_CHECK(od_image_new(5, 5, 1, &gray, &err) == 0);
    OD_CHECK(od_image_new(5, 5, 4, &rgba, &err) == 0);
    const float color[3] = {0.2f, 0.4f, 0.6f};
    od_draw_circle(&gray, 2, 2, 0, color);
    od_draw_circle(&rgba, 2, 2, 0, color);
    /* Grey gets the Rec. 601 luma; RGBA gets the colour at alpha 1. */
    OD_CHECK(fabsf(gray.pixels[12] - (0.299f * 0.2f + 0.587f * 0.4f + 0.114f * 0.6f)) < 1e-7f);
    const float want[4] = {0.2f, 0.4f, 0.6f, 1.0f};
    OD_CHECK_CLOSE("rgba pixel", rgba.pixels + 12 * 4, want, 4, 0.0f, 0.0f);
    OD_CHECK(count_drawn(&gray) == 1 && count_drawn(&rgba) == 1);
    od_image_free(&gray);
    od_image_free(&rgba);

    /* An empty image is ignored. */
    od_image empty = {0};
    od_draw_line(&empty, 0, 0, 5, 5, color, 1.0);
    od_draw_text(&empty, 0, 0, "A", color, 1);
}

/* The glyph rows of 'A', '7' and the hollow box, as designed in draw.c. */
static const char *glyph_a[7] = {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"};
static const char *glyph_7[7] = {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."};
static const char *glyph_box[7] = {"#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####"};

static int matches_glyph(const od_image *image, int left, int top, int scale, const char *rows[7])
{
    for (int y = 0; y < 7 * scale; y++) {
        for (int x = 0; x < 5 * scale; x++) {
            int ink = rows[y / scale][x / scale] == '#';
            if (is_color(image, left + x, top + y, red) != ink)
                return 0;
        }
    }
    return 1;
}

static void text_glyphs_and_size(void)
{
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(40, 36, 3, &image, &err) == 0);

    od_draw_text(&image, 1, 2, "A7", red, 1);
    OD_CHECK(matches_glyph(&image, 1, 2, 1, glyph_a));
    OD_CHECK(matches_glyph(&image, 1 + OD_DRAW_FONT_ADVANCE, 2, 1, glyph_7));
    int drawn_a7 = count_drawn(&image);

    /* Lower case is drawn in upper case. */
    clear(&image);
    od_draw_text(&image, 1, 2, "a7", red, 1);
    OD_CHECK(count_drawn(&image) == drawn_a7 && matches_glyph(&image, 1, 2, 1, glyph_a));

    /* Scale 2 doubles every font pixel; a second line starts 18 rows lower. */
    clear(&image);
    od_draw_text(&image, 3, 0, "7\nA", red, 2);
    OD_CHECK(matches_glyph(&image, 3, 0, 2, glyph_7));
    OD_CHECK(matches_glyph(&image, 3, 2 * OD_DRAW_FONT_LINE_HEIGHT, 2, glyph_a));

    /* Characters outside the font show as a hollow box. */
    clear(&image);
    od_draw_text(&image, 0, 0, "\x01~", red, 1);
    OD_CHECK(matches_glyph(&image, 0, 0, 1, glyph_box));
    OD_CHECK(matches_glyph(&image, OD_DRAW_FONT_ADVANCE, 0, 1, glyph_box));

    /* Every character of the documented set has its own glyph (not the box). */
    const char *documented = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,:;-+_=/\\()[]<>'\"!?#%*&@|";
    for (const char *c = documented; *c != '\0'; c++) {
        clear(&image);
        char text[2] = {*c, '\0'};
        od_draw_text(&image, 0, 0, text, red, 1);
        if (matches_glyph(&image, 0, 0, 1, glyph_box) || count_drawn(&image) == 0)
            fprintf(stderr, "  character '%c' has no glyph\n", *c);
        OD_CHECK(!matches_glyph(&image, 0, 0, 1, glyph_box) && count_drawn(&image) > 0);
    }

    int width = 0, height = 0;
    od_draw_text_size("AB\nC", 1, &width, &height);
    OD_CHECK(width == 2 * OD_DRAW_FONT_ADVANCE - 1 && height == OD_DRAW_FONT_LINE_HEIGHT + 7);
    od_draw_text_size("xyz", 3, &width, &height);
    OD_CHECK(width == 3 * 3 * OD_DRAW_FONT_ADVANCE - 3 && height == 21);
    od_draw_text_size("", 2, &width, &height);
    OD_CHECK(width == 0 && height == 0);

    /* Text partly or wholly off the image, or huge, is clipped safely. */
    clear(&image);
    od_draw_text(&image, -3, -3, "A", red, 1);
    OD_CHECK(count_drawn(&image) > 0);
    od_draw_text(&image, 2147483000, 5, "WIDE TEXT", red, 1000);
    od_draw_text(&image, -2147483000, -2147483000, "A\nB", red, 2147483647);
    od_draw_text(&image, 0, 0, "BIG", red, 1000000);
    OD_CHECK(count_drawn(&image) == 40 * 36);
    od_image_free(&image);
}

int main(void)
{
    OD_RUN(line_thin_and_thick);
    OD_RUN(line_far_outside_clipped);
    OD_RUN(circle_pixel_sets);
    OD_RUN(polygon_outline_closed);
    OD_RUN(fill_rect_clipped);
    OD_RUN(gray_and_rgba_targets);
    OD_RUN(text_glyphs_and_size);
    return od_test_finish();
}
