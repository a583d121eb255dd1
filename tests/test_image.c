/* Image reading, writing and resizing. Every input is made here with
 * libpng and libjpeg in a temporary folder: PNGs of every colour type and
 * bit depth (interlaced too), JPEGs with an injected EXIF orientation,
 * and broken files of each kind users send.
 *
 * Run with `--write-seeds DIR` to write small valid images for the fuzz
 * corpus instead of testing. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "io/exif.h"
#include "io/image.h"
#include "testlib.h"

static char temp_dir[2048];

static const char *temp_path(const char *name)
{
    static char path[8][4096];
    static int next = 0;
    char *slot = path[next];
    next = (next + 1) % 8;
    snprintf(slot, sizeof path[0], "%s/%s", temp_dir, name);
    return slot;
}

static int contains(const char *text, const char *part)
{
    return strstr(text, part) != NULL;
}

/* ------------------------------------------------------------------------
 * Writers for test inputs */

typedef struct png_spec {
    int width, height;
    int bit_depth;  /* 1, 2, 4, 8, 16 */
    int color_type; /* PNG_COLOR_TYPE_* */
    int interlace;  /* PNG_INTERLACE_NONE or PNG_INTERLACE_ADAM7 */
    const unsigned char *rows; /* packed samples as stored, big-endian for 16 bits */
    const png_color *palette;
    int palette_size;
    const unsigned char *trans_alpha; /* palette tRNS, or NULL */
    int trans_count;
    const png_color_16 *trans_color;  /* grey or RGB tRNS key, or NULL */
} png_spec;

static size_t png_row_bytes(const png_spec *spec)
{
    int channels = spec->color_type == PNG_COLOR_TYPE_GRAY         ? 1
                   : spec->color_type == PNG_COLOR_TYPE_PALETTE    ? 1
                   : spec->color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                   : spec->color_type == PNG_COLOR_TYPE_RGB        ? 3
                                                                   : 4;
    return ((size_t)spec->width * channels * spec->bit_depth + 7) / 8;
}

static int write_png_spec(const char *path, const png_spec *spec)
{
    FILE *stream = fopen(path, "wb");
    if (stream == NULL)
        return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = malloc(sizeof *rows * (size_t)spec->height);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        fclose(stream);
        return -1;
    }
    png_init_io(png, stream);
    png_set_IHDR(png, info, (png_uint_32)spec->width, (png_uint_32)spec->height, spec->bit_depth,
                 spec->color_type, spec->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (spec->palette != NULL)
        png_set_PLTE(png, info, spec->palette, spec->palette_size);
    if (spec->trans_alpha != NULL || spec->trans_color != NULL)
        png_set_tRNS(png, info, spec->trans_alpha, spec->trans_count, spec->trans_color);
    png_write_info(png, info);
    size_t row_bytes = png_row_bytes(spec);
    for (int y = 0; y < spec->height; y++)
        rows[y] = (png_bytep)spec->rows + (size_t)y * row_bytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return fclose(stream);
}

typedef struct jpeg_spec {
    int width, height;
    int components; /* 1 grey or 3 RGB */
    const unsigned char *samples;
    int quality;
    int progressive;
    const unsigned char *app1; /* APP1 payload to inject, or NULL */
    unsigned app1_size;
} jpeg_spec;

static int write_jpeg_spec(const char *path, const jpeg_spec *spec)
{
    FILE *stream = fopen(path, "wb");
    if (stream == NULL)
        return -1;
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr manager;
    cinfo.err = jpeg_std_error(&manager);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, stream);
    cinfo.image_width = (JDIMENSION)spec->width;
    cinfo.image_height = (JDIMENSION)spec->height;
    cinfo.input_components = spec->components;
    cinfo.in_color_space = spec->components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, spec->quality, TRUE);
    if (spec->progressive)
        jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    if (spec->app1 != NULL)
        jpeg_write_marker(&cinfo, JPEG_APP0 + 1, spec->app1, spec->app1_size);
    size_t row_size = (size_t)spec->width * spec->components;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)spec->samples + cinfo.next_scanline * row_size;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return fclose(stream);
}

/* Builds an APP1 payload: "Exif\0\0", a TIFF header in the given byte
 * order, and IFD0 with a dummy ImageWidth entry before Orientation, so
 * that the reader has to walk the entries. Returns its size. */
static unsigned make_exif(unsigned char *out, int orientation, int big_endian)
{
    unsigned char *p = out;
    memcpy(p, "Exif\0\0", 6);
    p += 6;
    unsigned char *tiff = p;
#define PUT16(v)                                                                                 \
    do {                                                                                         \
        unsigned value_ = (unsigned)(v);                                                         \
        if (big_endian) {                                                                        \
            *p++ = (unsigned char)(value_ >> 8);                                                 \
            *p++ = (unsigned char)value_;                                                        \
        } else {                                                                                 \
            *p++ = (unsigned char)value_;                                                        \
            *p++ = (unsigned char)(value_ >> 8);                                                 \
        }                                                                                        \
    } while (0)
#define PUT32(v)                                                                                 \
    do {                                                                                         \
        unsigned long value32_ = (unsigned long)(v);                                             \
        if (big_endian) {                                                                        \
            PUT16(value32_ >> 16);                                                               \
            PUT16(value32_ & 0xffff);                                                            \
        } else {                                                                                 \
            PUT16(value32_ & 0xffff);                                                            \
            PUT16(value32_ >> 16);                                                               \
        }                                                                                        \
    } while (0)
    *p++ = big_endian ? 'M' : 'I';
    *p++ = big_endian ? 'M' : 'I';
    PUT16(42);
    PUT32(8);
    PUT16(2);           /* two entries */
    PUT16(0x0100);      /* ImageWidth, LONG, 1 */
    PUT16(4);
    PUT32(1);
    PUT32(1234);
    PUT16(0x0112);      /* Orientation, SHORT, 1 */
    PUT16(3);
    PUT32(1);
    PUT16(orientation);
    PUT16(0);
    PUT32(0);           /* no next IFD */
#undef PUT16
#undef PUT32
    (void)tiff;
    return (unsigned)(p - out);
}

/* ------------------------------------------------------------------------
 * PNG colour types and bit depths */

static void png_rgb8_exact(void)
{
    const unsigned char rows[2 * 3 * 3] = {0, 1, 2, 253, 254, 255, 10, 20, 30,
                                           40, 50, 60, 128, 127, 126, 255, 0, 255};
    png_spec spec = {.width = 3, .height = 2, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .rows = rows};
    const char *path = temp_path("rgb8.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image image;
    od_error err;
    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    OD_CHECK(image.width == 3 && image.height == 2 && image.channels == 3);
    float want[18];
    for (int i = 0; i < 18; i++)
        want[i] = rows[i] / 255.0f;
    /* 8-bit samples divide exactly by 255 up to float rounding. */
    OD_CHECK_CLOSE("rgb8 values", image.pixels, want, 18, 1e-7f, 0.0f);
    od_image_free(&image);
    OD_CHECK(image.pixels == NULL);
}

static void png_transparent_pixels_read_background(void)
{
    /* Row 0: transparent pure red, opaque green, half-transparent blue.
     * Row 1: transparent pure red again, transparent white, opaque black. */
    const unsigned char rows[2 * 3 * 4] = {255, 0, 0, 0, 0, 255, 0, 255, 0, 0, 255, 128,
                                           255, 0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 255};
    png_spec spec = {.width = 3, .height = 2, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGBA, .rows = rows};
    const char *path = temp_path("rgba8.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image image;
    od_error err;

    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    OD_CHECK(image.channels == 3);
    float half = 128.0f / 255.0f;
    const float on_white[18] = {1, 1, 1, 0, 1, 0, 1 - half, 1 - half, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
    OD_CHECK_CLOSE("rgba on default white", image.pixels, on_white, 18, 1e-6f, 0.0f);
    od_image_free(&image);

    od_image_read_options options = od_image_read_options_default();
    options.background[0] = 0.2f;
    options.background[1] = 0.4f;
    options.background[2] = 0.6f;
    OD_CHECK(od_image_read(path, &options, &image, &err) == 0);
    const float on_grey[18] = {0.2f, 0.4f, 0.6f, 0, 1, 0, (1 - half) * 0.2f, (1 - half) * 0.4f,
                               half + (1 - half) * 0.6f, 0.2f, 0.4f, 0.6f, 0.2f, 0.4f, 0.6f, 0, 0, 0};
    OD_CHECK_CLOSE("rgba on a chosen background", image.pixels, on_grey, 18, 1e-6f, 0.0f);
    od_image_free(&image);

    options.keep_alpha = 1;
    OD_CHECK(od_image_read(path, &options, &image, &err) == 0);
    OD_CHECK(image.channels == 4);
    float straight[24];
    for (int i = 0; i < 24; i++)
        straight[i] = rows[i] / 255.0f;
    OD_CHECK_CLOSE("rgba kept straight", image.pixels, straight, 24, 1e-7f, 0.0f);
    od_image_free(&image);
}

static void png_gray16_scaled_by_65535(void)
{
    /* 0, 32768, 65535, 257 as big-endian 16-bit samples. */
    const unsigned char rows[8] = {0x00, 0x00, 0x80, 0x00, 0xff, 0xff, 0x01, 0x01};
    png_spec spec = {.width = 2, .height = 2, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_GRAY, .rows = rows};
    const char *path = temp_path("gray16.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image image;
    od_error err;

    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    OD_CHECK(image.channels == 3);
    const float rgb[12] = {0, 0, 0, 0.5f, 0.5f, 0.5f, 1, 1, 1, 257.0f / 65535, 257.0f / 65535, 257.0f / 65535};
    /* 32768 / 65535 = 0.500008: within 1e-4 of one half, and a reader
     * that divides by 255 would be off by a factor of 257. */
    OD_CHECK_CLOSE("gray16 as rgb", image.pixels, rgb, 12, 1e-4f, 0.0f);
    OD_CHECK(fabsf(image.pixels[3] - 32768.0f / 65535.0f) < 1e-7f);
    od_image_free(&image);

    OD_CHECK(od_image_read_gray(path, &image, &err) == 0);
    OD_CHECK(image.channels == 1 && image.width == 2 && image.height == 2);
    const float gray[4] = {0, 0.5f, 1, 257.0f / 65535};
    OD_CHECK_CLOSE("gray16 as gray", image.pixels, gray, 4, 1e-4f, 0.0f);
    od_image_free(&image);

    int bit_depth = 0;
    OD_CHECK(od_image_read_gray_raw(path, &image, &bit_depth, &err) == 0);
    OD_CHECK(bit_depth == 16);
    const float raw[4] = {0, 32768, 65535, 257};
    OD_CHECK_CLOSE("gray16 raw", image.pixels, raw, 4, 0.0f, 0.0f);
    od_image_free(&image);
}

static void png_low_bit_gray_expanded(void)
{
    /* One row of 4 pixels per depth: values chosen per depth, packed MSB first. */
    struct {
        int depth;
        unsigned char packed[2];
        float values[4];
    } cases[3] = {
        {1, {0xa0}, {1, 0, 1, 0}},          /* 1010 */
        {2, {0x1b}, {0, 1, 2, 3}},          /* 00 01 10 11 */
        {4, {0x05, 0xfa}, {0, 5, 15, 10}},
    };
    for (int i = 0; i < 3; i++) {
        png_spec spec = {.width = 4, .height = 1, .bit_depth = cases[i].depth,
                         .color_type = PNG_COLOR_TYPE_GRAY, .rows = cases[i].packed};
        const char *path = temp_path("gray_low.png");
        OD_CHECK(write_png_spec(path, &spec) == 0);
        od_image image;
        od_error err;
        int bit_depth = 0;
        OD_CHECK(od_image_read_gray_raw(path, &image, &bit_depth, &err) == 0);
        OD_CHECK(bit_depth == cases[i].depth);
        OD_CHECK_CLOSE("low-bit raw", image.pixels, cases[i].values, 4, 0.0f, 0.0f);
        od_image_free(&image);

        float max_value = (float)((1 << cases[i].depth) - 1);
        float scaled[4];
        for (int k = 0; k < 4; k++)
            scaled[k] = cases[i].values[k] / max_value;
        OD_CHECK(od_image_read_gray(path, &image, &err) == 0);
        OD_CHECK_CLOSE("low-bit scaled", image.pixels, scaled, 4, 1e-6f, 0.0f);
        od_image_free(&image);
    }
}

static void png_gray_alpha_composited(void)
{
    /* 8-bit: (grey 200, alpha 0), (grey 100, alpha 255). */
    const unsigned char rows8[4] = {200, 0, 100, 255};
    png_spec spec = {.width = 2, .height = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA,
                     .rows = rows8};
    const char *path = temp_path("ga8.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image_read_options options = od_image_read_options_default();
    options.background[0] = 0.0f;
    options.background[1] = 0.5f;
    options.background[2] = 1.0f;
    od_image image;
    od_error err;
    OD_CHECK(od_image_read(path, &options, &image, &err) == 0);
    float g = 100.0f / 255.0f;
    const float want8[6] = {0.0f, 0.5f, 1.0f, g, g, g};
    OD_CHECK_CLOSE("grey+alpha 8", image.pixels, want8, 6, 1e-6f, 0.0f);
    od_image_free(&image);

    /* Masks: transparent reads 0 whatever grey it stores. */
    OD_CHECK(od_image_read_gray(path, &image, &err) == 0);
    const float mask[2] = {0.0f, g};
    OD_CHECK_CLOSE("grey+alpha as mask", image.pixels, mask, 2, 1e-6f, 0.0f);
    od_image_free(&image);

    /* 16-bit: grey 65535 at alpha 32768 on black is one half. */
    const unsigned char rows16[4] = {0xff, 0xff, 0x80, 0x00};
    png_spec spec16 = {.width = 1, .height = 1, .bit_depth = 16,
                       .color_type = PNG_COLOR_TYPE_GRAY_ALPHA, .rows = rows16};
    path = temp_path("ga16.png");
    OD_CHECK(write_png_spec(path, &spec16) == 0);
    options.background[0] = options.background[1] = options.background[2] = 0.0f;
    OD_CHECK(od_image_read(path, &options, &image, &err) == 0);
    const float want16[3] = {0.5f, 0.5f, 0.5f};
    OD_CHECK_CLOSE("grey+alpha 16", image.pixels, want16, 3, 1e-4f, 0.0f);
    od_image_free(&image);
}

static void png_palette_and_trns_expanded(void)
{
    const png_color palette[3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    const unsigned char indices[4] = {0, 1, 2, 1};
    png_spec spec = {.width = 2, .height = 2, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_PALETTE,
                     .rows = indices, .palette = palette, .palette_size = 3};
    const char *path = temp_path("palette.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image image;
    od_error err;
    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    OD_CHECK(image.channels == 3 && image.width == 2 && image.height == 2);
    const float want[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0};
    OD_CHECK_CLOSE("palette", image.pixels, want, 12, 0.0f, 0.0f);
    od_image_free(&image);

    /* tRNS: blue (index 2) fully transparent, green (index 1) half. */
    const unsigned char trans[3] = {255, 128, 0};
    spec.trans_alpha = trans;
    spec.trans_count = 3;
    path = temp_path("palette_trns.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    float half = 128.0f / 255.0f;
    const float composited[12] = {1, 0, 0, 1 - half, 1, 1 - half, 1, 1, 1, 1 - half, 1, 1 - half};
    OD_CHECK_CLOSE("palette with tRNS", image.pixels, composited, 12, 1e-6f, 0.0f);
    od_image_free(&image);

    /* A 2-bit palette image packs four indices per byte. */
    const unsigned char packed[1] = {0x24}; /* 00 10 01 00 */
    png_spec spec2 = {.width = 4, .height = 1, .bit_depth = 2, .color_type = PNG_COLOR_TYPE_PALETTE,
                      .rows = packed, .palette = palette, .palette_size = 3};
    path = temp_path("palette2.png");
    OD_CHECK(write_png_spec(path, &spec2) == 0);
    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    const float want2[12] = {1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0};
    OD_CHECK_CLOSE("2-bit palette", image.pixels, want2, 12, 0.0f, 0.0f);
    od_image_free(&image);

    /* Raw values are measurements only in greyscale PNGs. */
    OD_CHECK(od_image_read_gray_raw(path, &image, NULL, &err) != 0);
    OD_CHECK(contains(err.message, path) && contains(err.message, "palette") &&
             contains(err.message, "expected a greyscale PNG"));
    OD_CHECK(image.pixels == NULL);
}

static void png_color_key_trns(void)
{
    /* Grey 8-bit with tRNS key 50, and RGB 16-bit with key (1, 2, 3). */
    const unsigned char gray_rows[2] = {50, 51};
    png_color_16 gray_key = {.gray = 50};
    png_spec spec = {.width = 2, .height = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_GRAY,
                     .rows = gray_rows, .trans_color = &gray_key};
    const char *path = temp_path("gray_key.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image image;
    od_error err;
    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    float v = 51.0f / 255.0f;
    const float want_gray[6] = {1, 1, 1, v, v, v};
    OD_CHECK_CLOSE("grey tRNS key", image.pixels, want_gray, 6, 1e-6f, 0.0f);
    od_image_free(&image);
    /* The raw reader ignores transparency: depth 50 stays 50. */
    OD_CHECK(od_image_read_gray_raw(path, &image, NULL, &err) == 0);
    OD_CHECK(image.pixels[0] == 50.0f && image.pixels[1] == 51.0f);
    od_image_free(&image);

    const unsigned char rgb_rows[12] = {0, 1, 0, 2, 0, 3, 0x80, 0, 0x40, 0, 0xff, 0xff};
    png_color_16 rgb_key = {.red = 1, .green = 2, .blue = 3};
    png_spec spec16 = {.width = 2, .height = 1, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_RGB,
                       .rows = rgb_rows, .trans_color = &rgb_key};
    path = temp_path("rgb16_key.png");
    OD_CHECK(write_png_spec(path, &spec16) == 0);
    od_image_read_options options = od_image_read_options_default();
    options.background[0] = options.background[1] = options.background[2] = 0.25f;
    OD_CHECK(od_image_read(path, &options, &image, &err) == 0);
    const float want_rgb[6] = {0.25f, 0.25f, 0.25f, 32768.0f / 65535, 16384.0f / 65535, 1.0f};
    OD_CHECK_CLOSE("rgb16 tRNS key", image.pixels, want_rgb, 6, 1e-6f, 0.0f);
    od_image_free(&image);
}

static void png_rgba16_composited(void)
{
    /* (65535, 0, 0, alpha 0) and (0, 32768, 65535, alpha 65535). */
    const unsigned char rows[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff};
    png_spec spec = {.width = 2, .height = 1, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_RGBA, .rows = rows};
    const char *path = temp_path("rgba16.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image image;
    od_error err;
    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    const float want[6] = {1, 1, 1, 0, 0.5f, 1};
    OD_CHECK_CLOSE("rgba16", image.pixels, want, 6, 1e-4f, 0.0f);
    od_image_free(&image);
}

static void png_interlaced_matches_plain(void)
{
    enum { W = 13, H = 11 };
    unsigned char rows[H * W * 3];
    for (int i = 0; i < H * W * 3; i++)
        rows[i] = (unsigned char)(i * 37 + 11);
    png_spec spec = {.width = W, .height = H, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB,
                     .interlace = PNG_INTERLACE_ADAM7, .rows = rows};
    const char *path = temp_path("adam7.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image image;
    od_error err;
    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    OD_CHECK(image.width == W && image.height == H);
    float want[H * W * 3];
    for (int i = 0; i < H * W * 3; i++)
        want[i] = rows[i] / 255.0f;
    OD_CHECK_CLOSE("interlaced", image.pixels, want, H * W * 3, 1e-7f, 0.0f);
    od_image_free(&image);
}

static void gray_reader_uses_luma(void)
{
    const unsigned char rows[2 * 4] = {255, 0, 0, 255, 0, 0, 255, 0};
    png_spec spec = {.width = 2, .height = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGBA, .rows = rows};
    const char *path = temp_path("luma.png");
    OD_CHECK(write_png_spec(path, &spec) == 0);
    od_image image;
    od_error err;
    OD_CHECK(od_image_read_gray(path, &image, &err) == 0);
    /* Opaque red: the Rec. 601 weight of red; transparent blue: 0. */
    const float want[2] = {0.299f, 0.0f};
    OD_CHECK_CLOSE("luma", image.pixels, want, 2, 1e-6f, 0.0f);
    od_image_free(&image);
}

/* ------------------------------------------------------------------------
 * JPEG */

/* Fills a w x h RGB image with four flat quadrants: top-left red,
 * top-right green, bottom-left blue, bottom-right white. */
static const unsigned char quadrant_colors[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};

static void fill_quadrants(unsigned char *rgb, int width, int height)
{
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            int quadrant = (y >= height / 2) * 2 + (x >= width / 2);
            memcpy(rgb + ((size_t)y * width + x) * 3, quadrant_colors[quadrant], 3);
        }
    }
}

/* Returns which quadrant colour the pixel has (0-3), or -1. JPEG loss
 * on flat 8 x 8-aligned blocks stays far under the 0.25 margin. */
static int quadrant_at(const od_image *image, int x, int y)
{
    const float *p = image->pixels + ((size_t)y * image->width + x) * image->channels;
    for (int q = 0; q < 4; q++) {
        int match = 1;
        for (int c = 0; c < 3; c++)
            match &= fabsf(p[c] - quadrant_colors[q][c] / 255.0f) < 0.25f;
        if (match)
            return q;
    }
    return -1;
}

static void jpeg_reads_flat_colors(void)
{
    enum { W = 32, H = 32 };
    unsigned char rgb[W * H * 3];
    fill_quadrants(rgb, W, H);
    for (int progressive = 0; progressive < 2; progressive++) {
        jpeg_spec spec = {.width = W, .height = H, .components = 3, .samples = rgb, .quality = 95,
                          .progressive = progressive};
        const char *path = temp_path("flat.jpg");
        OD_CHECK(write_jpeg_spec(path, &spec) == 0);
        od_image image;
        od_error err;
        OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
        OD_CHECK(image.width == W && image.height == H && image.channels == 3);
        /* Quadrant centres are 4 pixels from any colour edge. */
        for (int q = 0; q < 4; q++) {
            int x = (q % 2) * 16 + 8, y = (q / 2) * 16 + 8;
            const float *p = image.pixels + ((size_t)y * W + x) * 3;
            float want[3] = {quadrant_colors[q][0] / 255.0f, quadrant_colors[q][1] / 255.0f,
                             quadrant_colors[q][2] / 255.0f};
            OD_CHECK_CLOSE("jpeg quadrant colour", p, want, 3, 0.04f, 0.0f);
        }
        od_image_free(&image);

        /* As a mask: Rec. 601 luma, which JPEG's Y channel also is. */
        OD_CHECK(od_image_read_gray(path, &image, &err) == 0);
        OD_CHECK(image.channels == 1);
        OD_CHECK(fabsf(image.pixels[8 * W + 8] - 0.299f) < 0.04f);
        od_image_free(&image);

        OD_CHECK(od_image_read_gray_raw(path, &image, NULL, &err) != 0);
        OD_CHECK(contains(err.message, path) && contains(err.message, "JPEG"));
    }

    unsigned char gray[W * H];
    for (int i = 0; i < W * H; i++)
        gray[i] = (i % W) < 16 ? 40 : 200;
    jpeg_spec spec = {.width = W, .height = H, .components = 1, .samples = gray, .quality = 95};
    const char *path = temp_path("gray.jpg");
    OD_CHECK(write_jpeg_spec(path, &spec) == 0);
    od_image image;
    od_error err;
    OD_CHECK(od_image_read(path, NULL, &image, &err) == 0);
    OD_CHECK(image.channels == 3);
    const float dark[3] = {40 / 255.0f, 40 / 255.0f, 40 / 255.0f};
    const float light[3] = {200 / 255.0f, 200 / 255.0f, 200 / 255.0f};
    OD_CHECK_CLOSE("grey jpeg left", image.pixels + (5 * W + 4) * 3, dark, 3, 0.03f, 0.0f);
    OD_CHECK_CLOSE("grey jpeg right", image.pixels + (5 * W + 28) * 3, light, 3, 0.03f, 0.0f);
    od_image_free(&image);
}

/* Where each stored corner quadrant (top-left, top-right, bottom-left,
 * bottom-right) is shown after applying orientation 1 to 8, from the
 * TIFF 6.0 definitions: 6 turns the picture 90 degrees clockwise, so its
 * top-left corner goes to the top-right. */
enum { TL, TR, BL, BR };
static const int upright_corner[9][4] = {
    {TL, TR, BL, BR}, /* unused */
    {TL, TR, BL, BR}, /* 1: as stored */
    {TR, TL, BR, BL}, /* 2: mirrored left-right */
    {BR, BL, TR, TL}, /* 3: rotated 180 */
    {BL, BR, TL, TR}, /* 4: mirrored top-bottom */
    {TL, BL, TR, BR}, /* 5: transposed */
    {TR, BR, TL, BL}, /* 6: rotated 90 clockwise */
    {BR, TR, BL, TL}, /* 7: transversed */
    {BL, TL, BR, TR}, /* 8: rotated 90 counter-clockwise */
};

static void jpeg_exif_orientation_applied(void)
{
    /* 48 x 32 so that a swap of width and height shows; 24 x 16 quadrants
     * keep 8 x 8 blocks flat. */
    enum { W = 48, H = 32 };
    unsigned char rgb[W * H * 3];
    fill_quadrants(rgb, W, H);
    for (int big_endian = 0; big_endian < 2; big_endian++) {
        for (int orientation = 1; orientation <= 8; orientation++) {
            unsigned char exif[64];
            unsigned exif_size = make_exif(exif, orientation, big_endian);
            OD_CHECK(od_exif_orientation(exif, exif_size) == orientation);
            jpeg_spec spec = {.width = W, .height = H, .components = 3, .samples = rgb, .quality = 95,
                              .app1 = exif, .app1_size = exif_size};
            const char *path = temp_path("oriented.jpg");
            OD_CHECK(write_jpeg_spec(path, &spec) == 0);

            od_image image;
            od_error err;
            if (od_image_read(path, NULL, &image, &err) != 0) {
                OD_CHECK(!"oriented JPEG read");
                continue;
            }
            int swapped = orientation >= 5;
            int upright_w = swapped ? H : W, upright_h = swapped ? W : H;
            OD_CHECK(image.width == upright_w && image.height == upright_h);
            int size_w = 0, size_h = 0;
            OD_CHECK(od_image_read_size(path, &size_w, &size_h, &err) == 0);
            OD_CHECK(size_w == upright_w && size_h == upright_h);

            for (int stored = 0; stored < 4; stored++) {
                int corner = upright_corner[orientation][stored];
                int x = (corner == TR || corner == BR) ? upright_w * 3 / 4 : upright_w / 4;
                int y = (corner == BL || corner == BR) ? upright_h * 3 / 4 : upright_h / 4;
                int got = quadrant_at(&image, x, y);
                if (got != stored)
                    fprintf(stderr, "  orientation %d (%s): corner %d shows quadrant %d, expected %d\n",
                            orientation, big_endian ? "MM" : "II", corner, got, stored);
                OD_CHECK(got == stored);
            }
            od_image_free(&image);
        }
    }
}

static void exif_parser_bounds(void)
{
    unsigned char exif[64];
    unsigned size = make_exif(exif, 6, 1);
    OD_CHECK(od_exif_orientation(exif, size) == 6);
    /* Every truncation is either still complete enough or yields 1; ASan
     * checks that no byte past `cut` is read (copied to an exact-size buffer). */
    for (unsigned cut = 0; cut < size; cut++) {
        unsigned char *copy = malloc(cut > 0 ? cut : 1);
        memcpy(copy, exif, cut);
        int orientation = od_exif_orientation(copy, cut);
        OD_CHECK(orientation == 1 || (orientation == 6 && cut >= size - 4));
        free(copy);
    }
    unsigned char bad[64];
    memcpy(bad, exif, size);
    bad[6] = 'X'; /* byte order mark */
    OD_CHECK(od_exif_orientation(bad, size) == 1);
    memcpy(bad, exif, size);
    bad[0] = 'e'; /* not "Exif" */
    OD_CHECK(od_exif_orientation(bad, size) == 1);
    memcpy(bad, exif, size);
    bad[6 + 4] = 0x7f; /* IFD0 offset far past the end (big-endian) */
    OD_CHECK(od_exif_orientation(bad, size) == 1);
    memcpy(bad, exif, size);
    bad[6 + 8] = 0xff; /* entry count 0xff02: entries past the end */
    OD_CHECK(od_exif_orientation(bad, size) == 1);
    size = make_exif(exif, 9, 0); /* out of range */
    OD_CHECK(od_exif_orientation(exif, size) == 1);
    size = make_exif(exif, 0, 1);
    OD_CHECK(od_exif_orientation(exif, size) == 1);
    OD_CHECK(od_exif_orientation(NULL, 100) == 1);
}

/* ------------------------------------------------------------------------
 * Bad files */

static int write_bytes(const char *path, const void *bytes, size_t size)
{
    FILE *stream = fopen(path, "wb");
    if (stream == NULL)
        return -1;
    size_t written = fwrite(bytes, 1, size, stream);
    return (fclose(stream) == 0 && written == size) ? 0 : -1;
}

static unsigned char *read_bytes(const char *path, size_t *size)
{
    FILE *stream = fopen(path, "rb");
    if (stream == NULL)
        return NULL;
    fseek(stream, 0, SEEK_END);
    long length = ftell(stream);
    fseek(stream, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)length);
    *size = fread(bytes, 1, (size_t)length, stream);
    fclose(stream);
    return bytes;
}

/* Reads `path` expecting failure with a message naming the file and
 * containing `part`; also checks the output stays empty. */
static void expect_read_error(const char *path, const char *part)
{
    od_image image;
    od_error err;
    err.message[0] = '\0';
    int status = od_image_read(path, NULL, &image, &err);
    OD_CHECK(status == -1);
    OD_CHECK(image.pixels == NULL && image.width == 0);
    int named = contains(err.message, path), has_part = contains(err.message, part);
    if (!named || !has_part)
        fprintf(stderr, "  unexpected message for %s: \"%s\" (expected \"%s\")\n", path, err.message, part);
    OD_CHECK(named);
    OD_CHECK(has_part);
}

static void missing_folder_empty_rejected(void)
{
    expect_read_error(temp_path("no_such_file.png"), "not found");
    const char *folder = temp_path("a_folder.png");
    OD_CHECK(mkdir(folder, 0755) == 0);
    expect_read_error(folder, "is a folder");
    const char *empty = temp_path("empty.png");
    OD_CHECK(write_bytes(empty, "", 0) == 0);
    expect_read_error(empty, "empty (0 bytes)");

    int width = -1, height = -1;
    od_error err;
    OD_CHECK(od_image_read_size(empty, &width, &height, &err) == -1);
    OD_CHECK(width == 0 && height == 0 && contains(err.message, empty));
}

static void unknown_formats_named(void)
{
    const char *gif = temp_path("picture.png");
    OD_CHECK(write_bytes(gif, "GIF89a\x01\x00\x01\x00", 10) == 0);
    expect_read_error(gif, "GIF");
    const char *text = temp_path("notes.jpg");
    OD_CHECK(write_bytes(text, "hello, world\n", 13) == 0);
    expect_read_error(text, "unknown image format (first bytes 68 65 6c 6c 6f 2c 20 77)");

    /* The format comes from the bytes: a PNG named .jpg reads as PNG. */
    const unsigned char rows[3] = {9, 99, 199};
    png_spec spec = {.width = 1, .height = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .rows = rows};
    const char *misnamed = temp_path("really_a_png.jpg");
    OD_CHECK(write_png_spec(misnamed, &spec) == 0);
    od_image image;
    od_error err;
    OD_CHECK(od_image_read(misnamed, NULL, &image, &err) == 0);
    OD_CHECK(image.pixels != NULL && fabsf(image.pixels[1] - 99 / 255.0f) < 1e-7f);
    od_image_free(&image);
}

static void truncated_png_rejected(void)
{
    enum { W = 40, H = 30 };
    unsigned char rows[W * H * 4];
    for (int i = 0; i < W * H * 4; i++)
        rows[i] = (unsigned char)(i * 7919 >> 3);
    png_spec spec = {.width = W, .height = H, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGBA, .rows = rows};
    const char *whole = temp_path("whole.png");
    OD_CHECK(write_png_spec(whole, &spec) == 0);
    size_t size = 0;
    unsigned char *bytes = read_bytes(whole, &size);
    OD_CHECK(bytes != NULL && size > 100);
    if (bytes == NULL)
        return;

    /* Cuts inside the signature, the header, the pixel data and the
     * final IEND chunk. */
    const size_t cuts[] = {1, 5, 8, 20, 33, 60, size / 2, size - 13, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *cut = temp_path("cut.png");
        OD_CHECK(write_bytes(cut, bytes, cuts[i]) == 0);
        expect_read_error(cut, cuts[i] < 8 ? "PNG" : "truncated PNG");
    }

    /* A flipped byte in the pixel data breaks the chunk's CRC. */
    unsigned char *damaged = malloc(size);
    memcpy(damaged, bytes, size);
    damaged[size / 2] ^= 0x55;
    const char *corrupt = temp_path("corrupt.png");
    OD_CHECK(write_bytes(corrupt, damaged, size) == 0);
    expect_read_error(corrupt, "invalid PNG");
    free(damaged);
    free(bytes);
}

static void truncated_jpeg_rejected(void)
{
    enum { W = 64, H = 48 };
    unsigned char rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (unsigned char)(i * 31 + (i / 97) * 5);
    for (int progressive = 0; progressive < 2; progressive++) {
        jpeg_spec spec = {.width = W, .height = H, .components = 3, .samples = rgb, .quality = 90,
                          .progressive = progressive};
        const char *whole = temp_path("whole.jpg");
        OD_CHECK(write_jpeg_spec(whole, &spec) == 0);
        size_t size = 0;
        unsigned char *bytes = read_bytes(whole, &size);
        if (bytes == NULL) {
            OD_CHECK(bytes != NULL);
            return;
        }
        const size_t cuts[] = {3, 10, 100, size / 2, size - 2};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            const char *cut = temp_path("cut.jpg");
            OD_CHECK(write_bytes(cut, bytes, cuts[i]) == 0);
            expect_read_error(cut, cuts[i] < 100 ? "JPEG" : "truncated JPEG");
        }

        /* A zero height in the frame header (SOF) is invalid. */
        for (size_t i = 2; i + 9 < size; i++) {
            if (bytes[i] == 0xff && (bytes[i + 1] == 0xc0 || bytes[i + 1] == 0xc2)) {
                bytes[i + 5] = 0;
                bytes[i + 6] = 0;
                break;
            }
        }
        const char *corrupt = temp_path("corrupt.jpg");
        OD_CHECK(write_bytes(corrupt, bytes, size) == 0);
        expect_read_error(corrupt, "invalid JPEG");
        free(bytes);
    }
}

/* CRC-32 of PNG chunks (ISO 3309), for hand-made headers. */
static unsigned long crc32_of(const unsigned char *bytes, size_t size)
{
    unsigned long crc = 0xffffffffUL;
    for (size_t i = 0; i < size; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xedb88320UL & (0UL - (crc & 1)));
    }
    return crc ^ 0xffffffffUL;
}

static void put_be32(unsigned char *p, unsigned long value)
{
    p[0] = (unsigned char)(value >> 24);
    p[1] = (unsigned char)(value >> 16);
    p[2] = (unsigned char)(value >> 8);
    p[3] = (unsigned char)value;
}

/* Writes a PNG signature and an IHDR chunk for width x height RGB 8-bit,
 * followed by an empty IDAT and IEND: the header parses, the data cannot
 * hold the pixels. */
static size_t make_png_header(unsigned char *out, unsigned long width, unsigned long height)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(out, signature, 8);
    unsigned char *chunk = out + 8;
    put_be32(chunk, 13);
    memcpy(chunk + 4, "IHDR", 4);
    put_be32(chunk + 8, width);
    put_be32(chunk + 12, height);
    chunk[16] = 8; /* bit depth */
    chunk[17] = 2; /* RGB */
    chunk[18] = chunk[19] = chunk[20] = 0;
    put_be32(chunk + 21, crc32_of(chunk + 4, 17));
    unsigned char *end = chunk + 25;
    put_be32(end, 0);
    memcpy(end + 4, "IDAT", 4);
    put_be32(end + 8, crc32_of(end + 4, 4));
    put_be32(end + 12, 0);
    memcpy(end + 16, "IEND", 4);
    put_be32(end + 20, crc32_of(end + 16, 4));
    return (size_t)(end + 24 - out);
}

static void absurd_dimensions_rejected(void)
{
    unsigned char bytes[128];
    const char *path = temp_path("huge.png");

    size_t size = make_png_header(bytes, 100000, 10);
    OD_CHECK(write_bytes(path, bytes, size) == 0);
    expect_read_error(path, "over the limit of 32768 pixels per side");

    size = make_png_header(bytes, 30000, 30000);
    OD_CHECK(write_bytes(path, bytes, size) == 0);
    expect_read_error(path, "over the limit of 268435456 pixels");

    /* Within the limits, but 57 bytes cannot inflate to 300 MB of pixels:
     * rejected before the pixel buffer is allocated. */
    size = make_png_header(bytes, 10000, 10000);
    OD_CHECK(write_bytes(path, bytes, size) == 0);
    expect_read_error(path, "truncated or invalid PNG");

    /* The same header is fine to read the size from. */
    int width = 0, height = 0;
    od_error err;
    OD_CHECK(od_image_read_size(path, &width, &height, &err) == 0);
    OD_CHECK(width == 10000 && height == 10000);

    /* A caller's own pixel limit. */
    unsigned char rows[4 * 4 * 3] = {0};
    png_spec spec = {.width = 4, .height = 4, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .rows = rows};
    const char *small = temp_path("small.png");
    OD_CHECK(write_png_spec(small, &spec) == 0);
    od_image_read_options options = od_image_read_options_default();
    options.max_pixels = 15;
    od_image image;
    OD_CHECK(od_image_read(small, &options, &image, &err) == -1);
    OD_CHECK(contains(err.message, "over the limit of 15 pixels") && image.pixels == NULL);
    options.max_pixels = 16;
    OD_CHECK(od_image_read(small, &options, &image, &err) == 0);
    od_image_free(&image);
}

/* ------------------------------------------------------------------------
 * Writing */

static void png_write_round_trip(void)
{
    const int channel_counts[3] = {1, 3, 4};
    for (int k = 0; k < 3; k++) {
        int channels = channel_counts[k];
        od_image image;
        od_error err;
        OD_CHECK(od_image_new(5, 3, channels, &image, &err) == 0);
        int count = 5 * 3 * channels;
        for (int i = 0; i < count; i++)
            image.pixels[i] = (float)((i * 53) % 256) / 255.0f;
        const char *path = temp_path("written.png");
        OD_CHECK(od_image_write_png(path, &image, &err) == 0);

        od_image back;
        if (channels == 1) {
            OD_CHECK(od_image_read_gray(path, &back, &err) == 0);
        } else {
            od_image_read_options options = od_image_read_options_default();
            options.keep_alpha = channels == 4;
            OD_CHECK(od_image_read(path, &options, &back, &err) == 0);
        }
        OD_CHECK(back.channels == channels && back.width == 5 && back.height == 3);
        if (back.pixels != NULL)
            OD_CHECK_CLOSE("png round trip", back.pixels, image.pixels, count, 1e-7f, 0.0f);
        od_image_free(&back);
        od_image_free(&image);
    }

    /* Out-of-range values are clamped, NaN is written as 0. */
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(4, 1, 1, &image, &err) == 0);
    image.pixels[0] = -3.0f;
    image.pixels[1] = 7.0f;
    image.pixels[2] = NAN;
    image.pixels[3] = 0.5f;
    const char *path = temp_path("clamped.png");
    OD_CHECK(od_image_write_png(path, &image, &err) == 0);
    od_image back;
    int bit_depth = 0;
    OD_CHECK(od_image_read_gray_raw(path, &back, &bit_depth, &err) == 0);
    OD_CHECK(bit_depth == 8);
    const float want[4] = {0, 255, 0, 128};
    OD_CHECK_CLOSE("clamped", back.pixels, want, 4, 0.0f, 0.0f);
    od_image_free(&back);

    /* An unwritable destination fails, naming it, and leaves no file. */
    const char *bad = temp_path("no_such_folder/out.png");
    OD_CHECK(od_image_write_png(bad, &image, &err) == -1);
    OD_CHECK(contains(err.message, "no_such_folder"));
    struct stat info;
    OD_CHECK(stat(bad, &info) != 0);
    od_image_free(&image);

    /* Invalid images are rejected. */
    od_image broken = {.width = 3, .height = 3, .channels = 2, .pixels = NULL};
    OD_CHECK(od_image_write_png(temp_path("broken.png"), &broken, &err) == -1);
    OD_CHECK(od_image_new(0, 5, 3, &broken, &err) == -1 && broken.pixels == NULL);
    OD_CHECK(od_image_new(5, 5, 2, &broken, &err) == -1);
}

/* ------------------------------------------------------------------------
 * Resizing */

static void resize_matches_pytorch(void)
{
    /* Input (5, 7) with values fmod(i * 0.37, 1); expected values from
     * torch.nn.functional.interpolate(x, size, mode="bilinear",
     * align_corners=False, antialias=True) in PyTorch 1.13, rounded to 7
     * decimals, so the tolerance is 2e-6. */
    od_image in;
    od_error err;
    OD_CHECK(od_image_new(7, 5, 1, &in, &err) == 0);
    for (int i = 0; i < 35; i++)
        in.pixels[i] = (float)fmod(i * 0.37, 1.0);

    const float down_2x3[6] = {0.5175325f, 0.4647059f, 0.4733766f, 0.4735065f, 0.5297326f, 0.517013f};
    const float tall_5x3[15] = {0.3171429f, 0.4041176f, 0.5457143f, 0.6928571f, 0.4647059f,
                                0.4928571f, 0.4971429f, 0.5252941f, 0.2971429f, 0.4442857f,
                                0.5858824f, 0.6728571f, 0.4628571f, 0.47f, 0.4771429f};
    const float up_first_row[11] = {0.0f, 0.1681818f, 0.4036364f, 0.6390909f, 0.5109091f, 0.11f,
                                    0.3454545f, 0.5809091f, 0.8163636f, 0.5063636f, 0.22f};
    const float up_middle_row[11] = {0.18f, 0.3481818f, 0.5836364f, 0.8190909f, 0.6909091f, 0.29f,
                                     0.5254545f, 0.4881818f, 0.0872727f, 0.2318182f, 0.4f};
    const float up_last_row[11] = {0.36f, 0.5281818f, 0.6727273f, 0.2718182f, 0.2345455f, 0.47f,
                                   0.7054545f, 0.6681818f, 0.2672727f, 0.4118182f, 0.58f};
    od_image out;
    OD_CHECK(od_image_resize(&in, 3, 2, &out, &err) == 0);
    OD_CHECK(out.width == 3 && out.height == 2 && out.channels == 1);
    OD_CHECK_CLOSE("downscale 5x7 -> 2x3", out.pixels, down_2x3, 6, 2e-6f, 0.0f);
    od_image_free(&out);

    OD_CHECK(od_image_resize(&in, 3, 5, &out, &err) == 0);
    OD_CHECK_CLOSE("width only 5x7 -> 5x3", out.pixels, tall_5x3, 15, 2e-6f, 0.0f);
    od_image_free(&out);

    OD_CHECK(od_image_resize(&in, 11, 9, &out, &err) == 0);
    OD_CHECK_CLOSE("upscale first row", out.pixels, up_first_row, 11, 2e-6f, 0.0f);
    OD_CHECK_CLOSE("upscale middle row", out.pixels + 4 * 11, up_middle_row, 11, 2e-6f, 0.0f);
    OD_CHECK_CLOSE("upscale last row", out.pixels + 8 * 11, up_last_row, 11, 2e-6f, 0.0f);
    od_image_free(&out);

    OD_CHECK(od_image_resize(&in, 1, 1, &out, &err) == 0);
    OD_CHECK(fabsf(out.pixels[0] - 0.4934139f) < 2e-6f);
    od_image_free(&out);

    OD_CHECK(od_image_resize(&in, 0, 3, &out, &err) == -1);
    OD_CHECK(contains(err.message, "target size 0 x 3"));

    /* Resizing in place replaces the pixels. */
    OD_CHECK(od_image_resize(&in, 3, 2, &in, &err) == 0);
    OD_CHECK(in.width == 3 && in.height == 2);
    OD_CHECK_CLOSE("in-place downscale", in.pixels, down_2x3, 6, 2e-6f, 0.0f);
    od_image_free(&in);
}

static void resize_keeps_flat_colour(void)
{
    /* Every output pixel is a normalised weighted mean, so a flat RGBA
     * image stays flat at any size. */
    od_image in;
    od_error err;
    OD_CHECK(od_image_new(37, 23, 4, &in, &err) == 0);
    const float colour[4] = {0.1f, 0.6f, 0.9f, 0.75f};
    for (int i = 0; i < 37 * 23; i++)
        memcpy(in.pixels + 4 * i, colour, sizeof colour);
    const int sizes[3][2] = {{5, 4}, {37, 23}, {80, 61}};
    for (int s = 0; s < 3; s++) {
        od_image out;
        OD_CHECK(od_image_resize(&in, sizes[s][0], sizes[s][1], &out, &err) == 0);
        int count = sizes[s][0] * sizes[s][1];
        for (int i = 0; i < count; i++)
            OD_CHECK_CLOSE("flat after resize", out.pixels + 4 * i, colour, 4, 1e-6f, 0.0f);
        od_image_free(&out);
    }
    od_image_free(&in);
}

static void intrinsics_follow_resize(void)
{
    /* A projected point at input pixel coordinates (u, v) must land at
     * ((u + 0.5) * sx - 0.5, (v + 0.5) * sy - 0.5) with the scaled K. */
    const double K[9] = {300.0, 0.5, 127.5, 0.0, 310.0, 95.25, 0.0, 0.0, 1.0};
    double scaled[9];
    od_image_scale_intrinsics(K, 256, 192, 64, 96, scaled);
    const double point[3] = {0.3, -0.2, 1.7};
    double u = (K[0] * point[0] + K[1] * point[1]) / point[2] + K[2];
    double v = K[4] * point[1] / point[2] + K[5];
    double u_scaled = (scaled[0] * point[0] + scaled[1] * point[1]) / point[2] + scaled[2];
    double v_scaled = scaled[4] * point[1] / point[2] + scaled[5];
    OD_CHECK(fabs(u_scaled - ((u + 0.5) * 0.25 - 0.5)) < 1e-9);
    OD_CHECK(fabs(v_scaled - ((v + 0.5) * 0.5 - 0.5)) < 1e-9);
    OD_CHECK(scaled[8] == 1.0 && scaled[3] == 0.0 && scaled[6] == 0.0);
}

/* ------------------------------------------------------------------------
 * Fuzz seeds */

static int write_seeds(const char *dir)
{
    snprintf(temp_dir, sizeof temp_dir, "%s", dir);
    unsigned char rgba[8 * 6 * 4], gray16[8 * 6 * 2], rgb[16 * 16 * 3];
    for (int i = 0; i < 8 * 6 * 4; i++)
        rgba[i] = (unsigned char)(i * 29);
    for (int i = 0; i < 8 * 6 * 2; i++)
        gray16[i] = (unsigned char)(i * 13);
    fill_quadrants(rgb, 16, 16);
    const png_color palette[3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    const unsigned char trans[3] = {255, 128, 0};
    const unsigned char indices[8 * 6] = {0, 1, 2, 1, 0, 2, 1, 0};
    const png_spec pngs[] = {
        {.width = 8, .height = 6, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGBA, .rows = rgba},
        {.width = 8, .height = 6, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .rows = rgba,
         .interlace = PNG_INTERLACE_ADAM7},
        {.width = 8, .height = 6, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_GRAY, .rows = gray16},
        {.width = 4, .height = 6, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA, .rows = gray16},
        {.width = 8, .height = 6, .bit_depth = 2, .color_type = PNG_COLOR_TYPE_GRAY, .rows = rgba},
        {.width = 8, .height = 6, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_PALETTE, .rows = indices,
         .palette = palette, .palette_size = 3, .trans_alpha = trans, .trans_count = 3},
    };
    char name[64];
    for (size_t i = 0; i < sizeof pngs / sizeof pngs[0]; i++) {
        snprintf(name, sizeof name, "seed_%zu.png", i);
        if (write_png_spec(temp_path(name), &pngs[i]) != 0)
            return 1;
    }
    unsigned char exif[64];
    unsigned exif_size = make_exif(exif, 6, 1);
    const jpeg_spec jpegs[] = {
        {.width = 16, .height = 16, .components = 3, .samples = rgb, .quality = 75},
        {.width = 16, .height = 16, .components = 3, .samples = rgb, .quality = 75, .progressive = 1},
        {.width = 16, .height = 8, .components = 1, .samples = rgb, .quality = 75, .app1 = exif,
         .app1_size = exif_size},
    };
    for (size_t i = 0; i < sizeof jpegs / sizeof jpegs[0]; i++) {
        snprintf(name, sizeof name, "seed_%zu.jpg", i);
        if (write_jpeg_spec(temp_path(name), &jpegs[i]) != 0)
            return 1;
    }
    return 0;
}

/* Removes the files this program wrote, then its folder. */
static void remove_temp_dir(void)
{
    DIR *dir = opendir(temp_dir);
    if (dir == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", temp_dir, entry->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(dir);
    rmdir(temp_dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    snprintf(temp_dir, sizeof temp_dir, "%s", od_test_temp_dir());

    OD_RUN(png_rgb8_exact);
    OD_RUN(png_transparent_pixels_read_background);
    OD_RUN(png_gray16_scaled_by_65535);
    OD_RUN(png_low_bit_gray_expanded);
    OD_RUN(png_gray_alpha_composited);
    OD_RUN(png_palette_and_trns_expanded);
    OD_RUN(png_color_key_trns);
    OD_RUN(png_rgba16_composited);
    OD_RUN(png_interlaced_matches_plain);
    OD_RUN(gray_reader_uses_luma);
    OD_RUN(jpeg_reads_flat_colors);
    OD_RUN(jpeg_exif_orientation_applied);
    OD_RUN(exif_parser_bounds);
    OD_RUN(missing_folder_empty_rejected);
    OD_RUN(unknown_formats_named);
    OD_RUN(truncated_png_rejected);
    OD_RUN(truncated_jpeg_rejected);
    OD_RUN(absurd_dimensions_rejected);
    OD_RUN(png_write_round_trip);
    OD_RUN(resize_matches_pytorch);
    OD_RUN(resize_keeps_flat_colour);
    OD_RUN(intrinsics_follow_resize);

    remove_temp_dir();
    return od_test_finish();
}
