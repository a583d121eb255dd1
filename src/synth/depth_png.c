/* 16-bit greyscale PNG writing with libpng. */
#include "synth/depth_png.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/atomic_file.h"

typedef struct png16_context {
    char message[256];
} png16_context;

static void on_error(png_structp png, png_const_charp message)
{
    png16_context *context = png_get_error_ptr(png);
    snprintf(context->message, sizeof context->message, "%s", message);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static int write_with_jump(png_structp png, png_infop info, FILE *stream, int width, int height, png_bytep *rows)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_init_io(png, stream);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

int od_write_png16(const char *path, const uint16_t *values, int width, int height, od_error *err)
{
    if (width <= 0 || height <= 0 || width > 32768 || height > 32768 || !values)
        return od_fail(err, "%s: invalid 16-bit image of %d x %d pixels (expected 1 to 32768 per side)", path, width,
                       height);
    size_t row_size = (size_t)width * 2;
    unsigned char *bytes = malloc(row_size * (size_t)height);
    png_bytep *rows = malloc(sizeof *rows * (size_t)height);
    if (!bytes || !rows) {
        free(bytes);
        free(rows);
        return od_fail(err, "%s: out of memory for a %d x %d PNG", path, width, height);
    }
    /* PNG stores 16-bit samples big-endian. */
    for (size_t i = 0; i < (size_t)width * height; i++) {
        bytes[2 * i] = (unsigned char)(values[i] >> 8);
        bytes[2 * i + 1] = (unsigned char)(values[i] & 0xff);
    }
    for (int y = 0; y < height; y++)
        rows[y] = bytes + (size_t)y * row_size;

    od_atomic_file file;
    int status = od_atomic_open(&file, path, err);
    if (status == 0) {
        png16_context context = {{0}};
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &context, on_error, on_warning);
        png_infop info = png ? png_create_info_struct(png) : NULL;
        if (!png || !info)
            status = od_fail(err, "%s: out of memory for the PNG encoder", path);
        else if (write_with_jump(png, info, file.stream, width, height, rows) != 0)
            status = od_fail(err, "%s: writing the PNG failed: %s", path, context.message);
        png_destroy_write_struct(&png, &info);
        if (status == 0)
            status = od_atomic_commit(&file, err);
        else
            od_atomic_abort(&file);
    }
    free(bytes);
    free(rows);
    return status;
}
