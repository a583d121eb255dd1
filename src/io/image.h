/* Image files: PNG and JPEG in, PNG out, and resizing.
 *
 * Every image in memory is an od_image: float pixels, row-major
 * (height, width, channels), values in [0, 1] (except the raw layout of
 * od_image_read_gray_raw), with 1 (grey), 3 (RGB) or 4 (RGBA, straight
 * alpha) channels. Pixel (x, y) channel c is pixels[(y * width + x) *
 * channels + c]; x grows right and y grows down, so a pinhole projection
 * with OpenCV intrinsics lands pixel centres on integer (x, y).
 *
 * The format comes from the file's first bytes, never from its name:
 * - PNG (libpng): bit depths 1 to 16; grey, grey + alpha, palette (with or
 *   without tRNS transparency), RGB, RGBA; interlaced or not. 16-bit
 *   samples are divided by 65535 and 8-bit ones by 255.
 * - JPEG (libjpeg): grey, YCbCr/RGB and CMYK; the EXIF orientation tag
 *   (APP1 "Exif") is applied, so the returned image is upright and its
 *   width and height are those after the rotation.
 *
 * Alpha: od_image_read composites RGBA onto options->background
 * (out = alpha * colour + (1 - alpha) * background), so fully transparent
 * pixels read as the background whatever colour they store. The default
 * background is white (1, 1, 1).
 *
 * A reader that fails returns -1 with a message that names the file and
 * what was expected (missing file, a folder, an empty or truncated file,
 * an unknown format, a corrupt stream, dimensions over the limits), and
 * leaves *out empty. The libraries print nothing to stderr. */
#ifndef ODDONE_IO_IMAGE_H
#define ODDONE_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The largest width or height accepted, in pixels. */
#define OD_IMAGE_MAX_SIDE 32768
/* The default largest width * height accepted (2^28 pixels, 3 GiB as float
 * RGB): larger images are rejected before any pixel buffer is allocated. */
#define OD_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)1 << 28)

typedef struct od_image {
    int width;
    int height;
    int channels;  /* 1, 3 or 4 */
    float *pixels; /* (height, width, channels); od_image_free releases it */
} od_image;

typedef enum od_image_format {
    OD_IMAGE_FORMAT_UNKNOWN = 0,
    OD_IMAGE_FORMAT_PNG,
    OD_IMAGE_FORMAT_JPEG,
} od_image_format;

/* What od_image_decode returns. */
typedef enum od_image_mode {
    OD_IMAGE_MODE_COLOR,    /* RGB, or RGBA with options->keep_alpha */
    OD_IMAGE_MODE_GRAY,     /* 1 channel in [0, 1]; see od_image_read_gray */
    OD_IMAGE_MODE_GRAY_RAW, /* 1 channel, stored integers; see od_image_read_gray_raw */
} od_image_mode;

typedef struct od_image_read_options {
    float background[3]; /* RGB in [0, 1] that alpha is composited onto */
    int keep_alpha;      /* 1: return 4 channels (RGBA), alpha 1 where the file has none */
    int64_t max_pixels;  /* width * height limit; 0 means OD_IMAGE_DEFAULT_MAX_PIXELS */
} od_image_read_options;

/* Returns the defaults: white background, alpha composited, default limit. */
od_image_read_options od_image_read_options_default(void);

/* Reads a PNG or JPEG as RGB (3 channels), or RGBA when options->keep_alpha.
 * options may be NULL for the defaults. Grey and palette images are
 * expanded to RGB. */
int od_image_read(const char *path, const od_image_read_options *options, od_image *out,
                  od_error *err);

/* Reads an image as one channel in [0, 1], for masks: grey images as
 * stored; colour images as Rec. 601 luma (0.299 R + 0.587 G + 0.114 B).
 * Alpha is composited onto black, so transparent pixels read as 0. */
int od_image_read_gray(const char *path, od_image *out, od_error *err);

/* Reads a greyscale PNG (1, 2, 4, 8 or 16-bit, without alpha) as the
 * stored integers as floats, unscaled (0..65535 for 16-bit), for depth
 * maps whose scale the caller applies. bit_depth (may be NULL) receives
 * the file's bit depth. Colour, palette, alpha and JPEG images are
 * rejected, because their values are not measurements. */
int od_image_read_gray_raw(const char *path, od_image *out, int *bit_depth, od_error *err);

/* Decodes an image held in memory; `source` names it in error messages.
 * The read functions above read the whole file and call this. options
 * may be NULL; in the grey modes only options->max_pixels is used.
 * bit_depth (may be NULL) receives the stored bits per sample (8 for
 * JPEG). */
int od_image_decode(const void *bytes, size_t size, const char *source, od_image_mode mode,
                    const od_image_read_options *options, od_image *out, int *bit_depth,
                    od_error *err);

/* Returns the format that the first bytes announce. */
od_image_format od_image_detect_format(const void *bytes, size_t size);

/* Reads only the header and returns the size of the image that
 * od_image_read would return (after the EXIF orientation). */
int od_image_read_size(const char *path, int *width, int *height, od_error *err);

/* Allocates a width x height image of `channels` channels, all zero. */
int od_image_new(int width, int height, int channels, od_image *out, od_error *err);

/* Writes an 8-bit PNG (grey, RGB or RGBA after the image's channel count).
 * Values are clamped to [0, 1] and rounded; NaN is written as 0. The file
 * appears only when complete (written under a temporary name, then
 * renamed). */
int od_image_write_png(const char *path, const od_image *image, od_error *err);

/* Resizes to width x height with PyTorch's F.interpolate(mode="bilinear",
 * align_corners=False, antialias=True) semantics: a triangle filter whose
 * support widens with the downscale factor, so shrinking averages every
 * input pixel instead of skipping some (no aliasing), and enlarging is
 * plain bilinear. Each axis is separate. Output pixel centre u maps to
 * input coordinate (u + 0.5) * in_width / width - 0.5. out may be in
 * itself, whose old pixels are then freed on success. The caller scales
 * the intrinsics the same way: see od_image_scale_intrinsics. */
int od_image_resize(const od_image *in, int width, int height, od_image *out, od_error *err);

/* Scales a 3 x 3 row-major pinhole K (OpenCV: pixel centres at integer
 * coordinates) for an image resized from in_width x in_height to
 * out_width x out_height by od_image_resize: fx' = fx * sx,
 * cx' = (cx + 0.5) * sx - 0.5, with sx = out_width / in_width (and the
 * same for y); the skew scales by sx. K_out may equal K_in. */
void od_image_scale_intrinsics(const double K_in[9], int in_width, int in_height, int out_width,
                               int out_height, double K_out[9]);

/* Releases the pixels and empties the struct; safe on an empty image. */
void od_image_free(od_image *image);

#endif
