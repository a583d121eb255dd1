/* PNG and JPEG decoding into float images, PNG writing, and resizing.
 *
 * Decoding runs in two stages. First libpng or libjpeg produces integer
 * samples (decoded_samples: grey, grey + alpha, RGB or RGBA, 8 or 16 bits
 * per sample, big-endian when 16). Then one conversion turns them into
 * the float layout the caller requested, compositing alpha on the way,
 * and applies the EXIF orientation. Both libraries report errors by
 * longjmp, so each decoder runs its library calls in a function that does
 * the setjmp and keeps every allocation in a context the caller frees. */
#include "io/image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* jpeglib.h needs FILE and size_t declared before it. */
#include <jpeglib.h>
#include <jerror.h>

#include "core/mem.h"
#include "io/atomic_file.h"
#include "io/exif.h"

/* Deflate cannot expand one compressed byte into more than 1032 bytes (a
 * 258-byte match coded in 2 bits), so a PNG whose header declares more
 * pixel bytes than 1032 times its size is truncated or lies. The slack
 * covers the zlib header and tiny images. */
#define DEFLATE_MAX_RATIO 1032
#define DEFLATE_SLACK_BYTES 4096

/* A progressive JPEG may carry any number of scans, and each one is a
 * pass over the coefficients. libjpeg's standard progression writes 10. */
#define JPEG_MAX_SCANS 1000

/* Rec. 601 luma weights, the ones JPEG's YCbCr uses. */
#define LUMA_R 0.299f
#define LUMA_G 0.587f
#define LUMA_B 0.114f

static const float white[3] = {1.0f, 1.0f, 1.0f};
static const float black[3] = {0.0f, 0.0f, 0.0f};

/* Integer samples from a decoder, before conversion to float. */
typedef struct decoded_samples {
    int width;
    int height;
    int channels;         /* 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA */
    int bytes_per_sample; /* 1, or 2 for big-endian 16-bit samples */
    int max_value;        /* the value that means 1.0: 255 or 65535 */
    int stored_bit_depth; /* bits per sample in the file */
    int orientation;      /* EXIF orientation 1 to 8 (1 for PNG) */
    unsigned char *samples; /* (height, width, channels) samples, malloc'd */
} decoded_samples;

od_image_read_options od_image_read_options_default(void)
{
    od_image_read_options options;
    memcpy(options.background, white, sizeof white);
    options.keep_alpha = 0;
    options.max_pixels = OD_IMAGE_DEFAULT_MAX_PIXELS;
    return options;
}

void od_image_free(od_image *image)
{
    if (image == NULL)
        return;
    od_free(image->pixels);
    memset(image, 0, sizeof *image);
}

int od_image_new(int width, int height, int channels, od_image *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    if (width < 1 || height < 1 || width > OD_IMAGE_MAX_SIDE || height > OD_IMAGE_MAX_SIDE)
        return od_fail(err, "image size %d x %d is invalid; expected 1 to %d pixels per side", width,
                       height, OD_IMAGE_MAX_SIDE);
    if (channels != 1 && channels != 3 && channels != 4)
        return od_fail(err, "image channel count %d is invalid; expected 1, 3 or 4", channels);
    float *pixels = od_alloc_floats((int64_t)width * height * channels);
    if (pixels == NULL)
        return od_fail(err, "out of memory for a %d x %d x %d image", width, height, channels);
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->pixels = pixels;
    return 0;
}

static int check_image(const od_image *image, const char *what, od_error *err)
{
    if (image == NULL || image->pixels == NULL)
        return od_fail(err, "%s: the image is empty", what);
    if (image->width < 1 || image->height < 1 || image->width > OD_IMAGE_MAX_SIDE ||
        image->height > OD_IMAGE_MAX_SIDE)
        return od_fail(err, "%s: image size %d x %d is invalid; expected 1 to %d pixels per side", what,
                       image->width, image->height, OD_IMAGE_MAX_SIDE);
    if (image->channels != 1 && image->channels != 3 && image->channels != 4)
        return od_fail(err, "%s: image channel count %d is invalid; expected 1, 3 or 4", what,
                       image->channels);
    return 0;
}

/* ------------------------------------------------------------------------
 * Format detection and limits */

od_image_format od_image_detect_format(const void *bytes, size_t size)
{
    static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = bytes;
    if (size >= sizeof png_signature && memcmp(b, png_signature, sizeof png_signature) == 0)
        return OD_IMAGE_FORMAT_PNG;
    if (size >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return OD_IMAGE_FORMAT_JPEG;
    return OD_IMAGE_FORMAT_UNKNOWN;
}

/* Names formats users commonly mistake for PNG or JPEG, for the error. */
static const char *name_other_format(const unsigned char *b, size_t size)
{
    if (size >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return "GIF";
    if (size >= 2 && b[0] == 'B' && b[1] == 'M')
        return "BMP";
    if (size >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        return "TIFF";
    if (size >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return "WebP";
    if (size >= 4 && b[0] == 0x76 && b[1] == 0x2f && b[2] == 0x31 && b[3] == 0x01)
        return "OpenEXR";
    if (size >= 12 && memcmp(b + 4, "ftyp", 4) == 0)
        return "HEIF/AVIF or another ISO media file";
    if (size >= 2 && b[0] == 0xff && b[1] == 0xd8)
        return "a truncated JPEG";
    if (size >= 1 && b[0] == 0x89)
        return "a truncated PNG";
    return NULL;
}

static int fail_unknown_format(const char *source, const unsigned char *b, size_t size, od_error *err)
{
    char hex[3 * 8 + 1] = "";
    size_t shown = size < 8 ? size : 8;
    for (size_t i = 0; i < shown; i++)
        snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x%s", b[i], i + 1 < shown ? " " : "");
    const char *other = name_other_format(b, size);
    if (other != NULL)
        return od_fail(err, "%s: unsupported image format (%s); expected PNG or JPEG", source, other);
    return od_fail(err, "%s: unknown image format (first bytes %s); expected PNG or JPEG", source, hex);
}

static int check_dimensions(const char *source, const char *format, uint32_t width, uint32_t height,
                            int64_t max_pixels, od_error *err)
{
    if (width == 0 || height == 0)
        return od_fail(err, "%s: %s declares %u x %u pixels; expected a non-empty image", source, format,
                       width, height);
    if (width > OD_IMAGE_MAX_SIDE || height > OD_IMAGE_MAX_SIDE)
        return od_fail(err, "%s: %s is %u x %u pixels, over the limit of %d pixels per side", source,
                       format, width, height, OD_IMAGE_MAX_SIDE);
    /* Both sides are at most 2^15 here, so the product fits in 64 bits. */
    if ((int64_t)width * height > max_pixels)
        return od_fail(err, "%s: %s is %u x %u pixels, over the limit of %lld pixels", source, format,
                       width, height, (long long)max_pixels);
    return 0;
}

/* ------------------------------------------------------------------------
 * PNG decoding (libpng) */

typedef struct png_context {
    const unsigned char *bytes;
    size_t size;
    size_t offset;
    const char *source;
    od_image_mode mode;
    int64_t max_pixels;
    int header_only;
    int truncated;         /* the reader ran past the end of the bytes */
    int own_error;         /* err already contains our own message */
    char message[256];     /* libpng's message */
    png_structp png;
    png_infop info;
    png_bytep *rows;
    decoded_samples *result;
    od_error *err;
} png_context;

static void png_on_error(png_structp png, png_const_charp message)
{
    png_context *context = png_get_error_ptr(png);
    snprintf(context->message, sizeof context->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    /* Warnings (bad ancillary chunks, unknown profiles) leave the pixels
     * intact, so printing them would only add noise to a command's output. */
    (void)png;
    (void)message;
}

static void png_read_from_memory(png_structp png, png_bytep data, size_t length)
{
    png_context *context = png_get_io_ptr(png);
    if (context->size - context->offset < length) {
        context->truncated = 1;
        png_error(png, "the file ends early");
    }
    memcpy(data, context->bytes + context->offset, length);
    context->offset += length;
}

/* Runs every libpng call; returns -1 after a libpng error (message in
 * context->message) or one of ours (context->own_error). */
static int png_decode_with_jump(png_context *context)
{
    png_structp png = context->png;
    png_infop info = context->info;
    if (setjmp(png_jmpbuf(png)))
        return -1;

    png_set_read_fn(png, context, png_read_from_memory);
    /* The limits are checked below with a message of our own. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    decoded_samples *result = context->result;
    result->width = (int)width;
    result->height = (int)height;
    result->stored_bit_depth = bit_depth;
    result->orientation = 1;
    if (check_dimensions(context->source, "PNG", width, height, context->max_pixels, context->err) != 0) {
        context->own_error = 1;
        return -1;
    }
    if (context->header_only)
        return 0;

    size_t stored_rowbytes = ((size_t)width * png_get_channels(png, info) * (size_t)bit_depth + 7) / 8;
    if (stored_rowbytes * height / DEFLATE_MAX_RATIO > context->size + DEFLATE_SLACK_BYTES) {
        od_fail(context->err,
                "%s: truncated or invalid PNG: its header declares %u x %u pixels, more than the "
                "file's %zu bytes can hold",
                context->source, width, height, context->size);
        context->own_error = 1;
        return -1;
    }

    if (context->mode == OD_IMAGE_MODE_GRAY_RAW) {
        if (color_type != PNG_COLOR_TYPE_GRAY) {
            od_fail(context->err,
                    "%s: PNG has colour type %d (%s); expected a greyscale PNG without alpha for raw "
                    "values",
                    context->source, color_type,
                    color_type == PNG_COLOR_TYPE_PALETTE      ? "palette"
                    : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? "grey + alpha"
                    : color_type == PNG_COLOR_TYPE_RGB        ? "RGB"
                                                              : "RGBA");
            context->own_error = 1;
            return -1;
        }
        /* Unpack 1, 2 and 4-bit samples to one byte each, keeping their values. */
        if (bit_depth < 8)
            png_set_packing(png);
    } else {
        if (color_type == PNG_COLOR_TYPE_PALETTE)
            png_set_palette_to_rgb(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS))
            png_set_tRNS_to_alpha(png);
        /* Scales 1, 2 and 4-bit grey to 0..255 (a 1-bit 1 becomes 255). */
        if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
            png_set_expand_gray_1_2_4_to_8(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int out_depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    result->channels = channels;
    result->bytes_per_sample = out_depth == 16 ? 2 : 1;
    result->max_value = out_depth == 16 ? 65535 : 255;
    if (channels < 1 || channels > 4 || rowbytes != (size_t)width * channels * result->bytes_per_sample) {
        od_fail(context->err, "%s: PNG decoding gave %d channels of %d bits; expected 1 to 4 of 8 or 16",
                context->source, channels, out_depth);
        context->own_error = 1;
        return -1;
    }

    result->samples = malloc(rowbytes * height);
    context->rows = malloc(sizeof *context->rows * height);
    if (result->samples == NULL || context->rows == NULL) {
        od_fail(context->err, "%s: out of memory for a %u x %u PNG", context->source, width, height);
        context->own_error = 1;
        return -1;
    }
    for (png_uint_32 y = 0; y < height; y++)
        context->rows[y] = result->samples + (size_t)y * rowbytes;
    png_read_image(png, context->rows);
    /* Reads to IEND, so that a file cut after its last IDAT is rejected too. */
    png_read_end(png, NULL);
    return 0;
}

static int decode_png(const unsigned char *bytes, size_t size, const char *source, od_image_mode mode,
                      int64_t max_pixels, int header_only, decoded_samples *result, od_error *err)
{
    png_context context = {
        .bytes = bytes,
        .size = size,
        .source = source,
        .mode = mode,
        .max_pixels = max_pixels,
        .header_only = header_only,
        .result = result,
        .err = err,
    };
    context.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context, png_on_error, png_on_warning);
    if (context.png != NULL)
        context.info = png_create_info_struct(context.png);
    if (context.png == NULL || context.info == NULL) {
        png_destroy_read_struct(&context.png, NULL, NULL);
        return od_fail(err, "%s: out of memory for the PNG decoder", source);
    }

    int status = png_decode_with_jump(&context);

    png_destroy_read_struct(&context.png, &context.info, NULL);
    free(context.rows);
    if (status == 0)
        return 0;
    free(result->samples);
    result->samples = NULL;
    if (context.own_error)
        return -1;
    if (context.truncated)
        return od_fail(err, "%s: truncated PNG: the file ends before the image data is complete", source);
    return od_fail(err, "%s: invalid PNG: %s", source, context.message);
}

/* ------------------------------------------------------------------------
 * JPEG decoding (libjpeg) */

typedef struct jpeg_context {
    struct jpeg_error_mgr manager; /* first, so that cinfo->err points at the context */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int truncated;
    int too_many_scans;
    int own_error;
    int created;
    struct jpeg_decompress_struct cinfo;
    const unsigned char *bytes;
    size_t size;
    const char *source;
    od_image_mode mode;
    int64_t max_pixels;
    int header_only;
    decoded_samples *result;
    od_error *err;
} jpeg_context;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_context *context = (jpeg_context *)cinfo->err;
    cinfo->err->format_message(cinfo, context->message);
    longjmp(context->jump, 1);
}

/* libjpeg reports damaged data as warnings and goes on with grey pixels.
 * Here they are errors, because a view with invented pixels is silently
 * wrong. Warnings that leave the pixels exact are ignored, and trace
 * messages (level >= 0) are dropped. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level >= 0)
        return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR ||
        code == JWRN_BOGUS_ICC)
        return;
    jpeg_context *context = (jpeg_context *)cinfo->err;
    if (code == JWRN_JPEG_EOF)
        context->truncated = 1;
    cinfo->err->format_message(cinfo, context->message);
    longjmp(context->jump, 1);
}

static void jpeg_on_output(j_common_ptr cinfo)
{
    /* Never print: every message reaches the caller through od_error. */
    (void)cinfo;
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
    if (decompress->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_context *context = (jpeg_context *)cinfo->err;
        context->too_many_scans = 1;
        longjmp(context->jump, 1);
    }
}

static int jpeg_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr marker = cinfo->marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker != JPEG_APP0 + 1)
            continue;
        int orientation = od_exif_orientation(marker->data, marker->data_length);
        if (orientation != 1)
            return orientation;
    }
    return 1;
}

/* Converts 8-bit CMYK rows (Adobe's inverted convention when the Adobe
 * marker is present, which Photoshop writes) to RGB in a new buffer. */
static unsigned char *cmyk_to_rgb(const unsigned char *cmyk, size_t pixel_count, int inverted)
{
    unsigned char *rgb = malloc(pixel_count * 3);
    if (rgb == NULL)
        return NULL;
    for (size_t i = 0; i < pixel_count; i++) {
        unsigned k = inverted ? cmyk[4 * i + 3] : 255u - cmyk[4 * i + 3];
        for (int c = 0; c < 3; c++) {
            unsigned ink = inverted ? cmyk[4 * i + c] : 255u - cmyk[4 * i + c];
            rgb[3 * i + c] = (unsigned char)((ink * k + 127) / 255);
        }
    }
    return rgb;
}

/* Runs every libjpeg call; returns -1 after a libjpeg error (message in
 * context->message) or one of ours (context->own_error). */
static int jpeg_decode_with_jump(jpeg_context *context)
{
    j_decompress_ptr cinfo = &context->cinfo;
    if (setjmp(context->jump))
        return -1;

    jpeg_create_decompress(cinfo);
    context->created = 1;
    context->progress.progress_monitor = jpeg_on_progress;
    cinfo->progress = &context->progress;
    jpeg_mem_src(cinfo, context->bytes, (unsigned long)context->size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(cinfo, TRUE);

    decoded_samples *result = context->result;
    result->orientation = jpeg_orientation(cinfo);
    result->width = (int)cinfo->image_width;
    result->height = (int)cinfo->image_height;
    result->stored_bit_depth = 8;
    if (check_dimensions(context->source, "JPEG", cinfo->image_width, cinfo->image_height,
                         context->max_pixels, context->err) != 0) {
        context->own_error = 1;
        return -1;
    }
    if (context->header_only)
        return 0;
    if (context->mode == OD_IMAGE_MODE_GRAY_RAW) {
        od_fail(context->err,
                "%s: JPEG stores lossy 8-bit values; expected a greyscale PNG for raw values",
                context->source);
        context->own_error = 1;
        return -1;
    }

    int cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    if (cinfo->jpeg_color_space == JCS_GRAYSCALE)
        cinfo->out_color_space = JCS_GRAYSCALE;
    else if (cmyk)
        cinfo->out_color_space = JCS_CMYK;
    else
        cinfo->out_color_space = JCS_RGB;
    jpeg_start_decompress(cinfo);

    int components = cinfo->output_components;
    size_t row_size = (size_t)cinfo->output_width * components;
    result->samples = malloc(row_size * cinfo->output_height);
    if (result->samples == NULL) {
        od_fail(context->err, "%s: out of memory for a %u x %u JPEG", context->source,
                cinfo->output_width, cinfo->output_height);
        context->own_error = 1;
        return -1;
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = result->samples + (size_t)cinfo->output_scanline * row_size;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_decompress(cinfo);

    result->width = (int)cinfo->output_width;
    result->height = (int)cinfo->output_height;
    result->bytes_per_sample = 1;
    result->max_value = 255;
    result->channels = components;
    if (cmyk) {
        unsigned char *rgb = cmyk_to_rgb(result->samples, (size_t)result->width * result->height,
                                         cinfo->saw_Adobe_marker);
        if (rgb == NULL) {
            od_fail(context->err, "%s: out of memory converting CMYK", context->source);
            context->own_error = 1;
            return -1;
        }
        free(result->samples);
        result->samples = rgb;
        result->channels = 3;
    }
    return 0;
}

static int decode_jpeg(const unsigned char *bytes, size_t size, const char *source, od_image_mode mode,
                       int64_t max_pixels, int header_only, decoded_samples *result, od_error *err)
{
    jpeg_context *context = calloc(1, sizeof *context);
    if (context == NULL)
        return od_fail(err, "%s: out of memory for the JPEG decoder", source);
    context->bytes = bytes;
    context->size = size;
    context->source = source;
    context->mode = mode;
    context->max_pixels = max_pixels;
    context->header_only = header_only;
    context->result = result;
    context->err = err;
    context->cinfo.err = jpeg_std_error(&context->manager);
    context->manager.error_exit = jpeg_on_error;
    context->manager.emit_message = jpeg_on_message;
    context->manager.output_message = jpeg_on_output;

    int status = jpeg_decode_with_jump(context);

    if (context->created)
        jpeg_destroy_decompress(&context->cinfo);
    if (status != 0) {
        free(result->samples);
        result->samples = NULL;
        if (context->own_error)
            ;
        else if (context->truncated)
            od_fail(err, "%s: truncated JPEG: the file ends before the image data is complete", source);
        else if (context->too_many_scans)
            od_fail(err, "%s: invalid JPEG: more than %d progressive scans", source, JPEG_MAX_SCANS);
        else
            od_fail(err, "%s: invalid JPEG: %s", source, context->message);
    }
    free(context);
    return status;
}

/* ------------------------------------------------------------------------
 * Conversion to float and orientation */

/* Converts one row of samples to floats in [0, 1], or to the stored
 * integers when raw. */
static void samples_to_floats(const decoded_samples *s, const unsigned char *row, size_t count, int raw,
                              float *out)
{
    if (s->bytes_per_sample == 1) {
        float scale = raw ? 1.0f : 1.0f / 255.0f;
        for (size_t i = 0; i < count; i++)
            out[i] = (float)row[i] * scale;
    } else {
        float scale = raw ? 1.0f : 1.0f / 65535.0f;
        for (size_t i = 0; i < count; i++)
            out[i] = (float)((unsigned)row[2 * i] << 8 | row[2 * i + 1]) * scale;
    }
}

/* Writes one row of `width` pixels in the requested layout. `in` contains
 * in_channels floats per pixel (grey, grey + alpha, RGB or RGBA). */
static void convert_row(const float *in, int in_channels, int width, od_image_mode mode, int keep_alpha,
                        const float background[3], float *out)
{
    if (mode != OD_IMAGE_MODE_COLOR) {
        switch (in_channels) {
        case 1:
            memcpy(out, in, sizeof *out * (size_t)width);
            break;
        case 2:
            for (int x = 0; x < width; x++)
                out[x] = in[2 * x] * in[2 * x + 1];
            break;
        case 3:
            for (int x = 0; x < width; x++)
                out[x] = LUMA_R * in[3 * x] + LUMA_G * in[3 * x + 1] + LUMA_B * in[3 * x + 2];
            break;
        default:
            for (int x = 0; x < width; x++)
                out[x] = (LUMA_R * in[4 * x] + LUMA_G * in[4 * x + 1] + LUMA_B * in[4 * x + 2]) *
                         in[4 * x + 3];
            break;
        }
        return;
    }

    if (keep_alpha) {
        for (int x = 0; x < width; x++) {
            float *o = out + 4 * x;
            switch (in_channels) {
            case 1:
                o[0] = o[1] = o[2] = in[x];
                o[3] = 1.0f;
                break;
            case 2:
                o[0] = o[1] = o[2] = in[2 * x];
                o[3] = in[2 * x + 1];
                break;
            case 3:
                memcpy(o, in + 3 * x, 3 * sizeof *o);
                o[3] = 1.0f;
                break;
            default:
                memcpy(o, in + 4 * x, 4 * sizeof *o);
                break;
            }
        }
        return;
    }

    /* Composite: alpha * colour + (1 - alpha) * background, so a fully
     * transparent pixel is exactly the background. */
    switch (in_channels) {
    case 1:
        for (int x = 0; x < width; x++)
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
        break;
    case 2:
        for (int x = 0; x < width; x++) {
            float alpha = in[2 * x + 1];
            for (int c = 0; c < 3; c++)
                out[3 * x + c] = alpha * in[2 * x] + (1.0f - alpha) * background[c];
        }
        break;
    case 3:
        memcpy(out, in, sizeof *out * 3 * (size_t)width);
        break;
    default:
        for (int x = 0; x < width; x++) {
            float alpha = in[4 * x + 3];
            for (int c = 0; c < 3; c++)
                out[3 * x + c] = alpha * in[4 * x + c] + (1.0f - alpha) * background[c];
        }
        break;
    }
}

/* Rotates or mirrors an image upright after its EXIF orientation. The
 * mapping is affine in (x, y), so it is evaluated once and then walked
 * with strides. */
static int apply_orientation(od_image *image, int orientation, const char *source, od_error *err)
{
    if (orientation < 2 || orientation > 8)
        return 0;
    int width = image->width, height = image->height, channels = image->channels;
    int swap = orientation >= 5;
    od_image upright;
    if (od_image_new(swap ? height : width, swap ? width : height, channels, &upright, err) != 0)
        return od_fail_context(err, "%s: applying the EXIF orientation", source);

    int x0, y0, x1, y1, x2, y2;
    od_exif_upright_position(orientation, width, height, 0, 0, &x0, &y0);
    od_exif_upright_position(orientation, width, height, 1, 0, &x1, &y1);
    od_exif_upright_position(orientation, width, height, 0, 1, &x2, &y2);
    int64_t up_width = upright.width;
    int64_t origin = (int64_t)y0 * up_width + x0;
    int64_t step_x = (int64_t)(y1 - y0) * up_width + (x1 - x0);
    int64_t step_y = (int64_t)(y2 - y0) * up_width + (x2 - x0);

    for (int y = 0; y < height; y++) {
        const float *in = image->pixels + (size_t)y * width * channels;
        int64_t target = origin + step_y * y;
        for (int x = 0; x < width; x++, target += step_x)
            memcpy(upright.pixels + target * channels, in + (size_t)x * channels,
                   sizeof(float) * (size_t)channels);
    }
    od_image_free(image);
    *image = upright;
    return 0;
}

static int samples_to_image(const decoded_samples *s, od_image_mode mode,
                            const od_image_read_options *options, const char *source, od_image *out,
                            od_error *err)
{
    int out_channels = 1;
    if (mode == OD_IMAGE_MODE_COLOR)
        out_channels = options->keep_alpha ? 4 : 3;
    if (od_image_new(s->width, s->height, out_channels, out, err) != 0)
        return od_fail_context(err, "%s", source);
    size_t row_count = (size_t)s->width * s->channels;
    float *row = malloc(sizeof *row * row_count);
    if (row == NULL) {
        od_image_free(out);
        return od_fail(err, "%s: out of memory", source);
    }
    int raw = mode == OD_IMAGE_MODE_GRAY_RAW;
    const float *background = mode == OD_IMAGE_MODE_COLOR ? options->background : black;
    size_t row_bytes = row_count * s->bytes_per_sample;
    for (int y = 0; y < s->height; y++) {
        samples_to_floats(s, s->samples + (size_t)y * row_bytes, row_count, raw, row);
        convert_row(row, s->channels, s->width, mode, options->keep_alpha, background,
                    out->pixels + (size_t)y * s->width * out_channels);
    }
    free(row);
    if (apply_orientation(out, s->orientation, source, err) != 0) {
        od_image_free(out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Entry points */

static int decode_samples(const void *bytes, size_t size, const char *source, od_image_mode mode,
                          int64_t max_pixels, int header_only, decoded_samples *samples, od_error *err)
{
    memset(samples, 0, sizeof *samples);
    if (bytes == NULL || size == 0)
        return od_fail(err, "%s: file is empty (0 bytes); expected a PNG or JPEG image", source);
    switch (od_image_detect_format(bytes, size)) {
    case OD_IMAGE_FORMAT_PNG:
        return decode_png(bytes, size, source, mode, max_pixels, header_only, samples, err);
    case OD_IMAGE_FORMAT_JPEG:
        return decode_jpeg(bytes, size, source, mode, max_pixels, header_only, samples, err);
    default:
        return fail_unknown_format(source, bytes, size, err);
    }
}

int od_image_decode(const void *bytes, size_t size, const char *source, od_image_mode mode,
                    const od_image_read_options *options, od_image *out, int *bit_depth, od_error *err)
{
    memset(out, 0, sizeof *out);
    if (source == NULL)
        source = "image";
    od_image_read_options settings = options != NULL ? *options : od_image_read_options_default();
    if (settings.max_pixels <= 0)
        settings.max_pixels = OD_IMAGE_DEFAULT_MAX_PIXELS;
    if (mode != OD_IMAGE_MODE_COLOR)
        settings.keep_alpha = 0;
    for (int c = 0; c < 3; c++) {
        if (!isfinite(settings.background[c]))
            return od_fail(err, "%s: background colour component %d is not finite", source, c);
    }

    decoded_samples samples;
    if (decode_samples(bytes, size, source, mode, settings.max_pixels, 0, &samples, err) != 0)
        return -1;
    int status = samples_to_image(&samples, mode, &settings, source, out, err);
    if (status == 0 && bit_depth != NULL)
        *bit_depth = samples.stored_bit_depth;
    free(samples.samples);
    return status;
}

/* Reads a whole regular file; folders, devices and empty files are errors. */
static int read_whole_file(const char *path, unsigned char **bytes, size_t *size, od_error *err)
{
    *bytes = NULL;
    *size = 0;
    FILE *stream = fopen(path, "rb");
    if (stream == NULL) {
        if (errno == ENOENT)
            return od_fail(err, "%s: file not found; expected a PNG or JPEG image", path);
        return od_fail(err, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat info;
    if (fstat(fileno(stream), &info) != 0) {
        int saved = errno;
        fclose(stream);
        return od_fail(err, "%s: cannot read its size: %s", path, strerror(saved));
    }
    if (S_ISDIR(info.st_mode)) {
        fclose(stream);
        return od_fail(err, "%s: is a folder; expected a PNG or JPEG image file", path);
    }
    if (!S_ISREG(info.st_mode)) {
        fclose(stream);
        return od_fail(err, "%s: is not a regular file; expected a PNG or JPEG image file", path);
    }
    if (info.st_size == 0) {
        fclose(stream);
        return od_fail(err, "%s: file is empty (0 bytes); expected a PNG or JPEG image", path);
    }
    size_t length = (size_t)info.st_size;
    unsigned char *buffer = malloc(length);
    if (buffer == NULL) {
        fclose(stream);
        return od_fail(err, "%s: out of memory reading %zu bytes", path, length);
    }
    size_t got = fread(buffer, 1, length, stream);
    int read_failed = ferror(stream);
    fclose(stream);
    if (read_failed || got != length) {
        free(buffer);
        return od_fail(err, "%s: read %zu of %zu bytes; the file changed or cannot be read", path, got,
                       length);
    }
    *bytes = buffer;
    *size = length;
    return 0;
}

static int read_image(const char *path, od_image_mode mode, const od_image_read_options *options,
                      od_image *out, int *bit_depth, od_error *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *bytes;
    size_t size;
    if (read_whole_file(path, &bytes, &size, err) != 0)
        return -1;
    int status = od_image_decode(bytes, size, path, mode, options, out, bit_depth, err);
    free(bytes);
    return status;
}

int od_image_read(const char *path, const od_image_read_options *options, od_image *out, od_error *err)
{
    return read_image(path, OD_IMAGE_MODE_COLOR, options, out, NULL, err);
}

int od_image_read_gray(const char *path, od_image *out, od_error *err)
{
    return read_image(path, OD_IMAGE_MODE_GRAY, NULL, out, NULL, err);
}

int od_image_read_gray_raw(const char *path, od_image *out, int *bit_depth, od_error *err)
{
    return read_image(path, OD_IMAGE_MODE_GRAY_RAW, NULL, out, bit_depth, err);
}

int od_image_read_size(const char *path, int *width, int *height, od_error *err)
{
    *width = 0;
    *height = 0;
    unsigned char *bytes;
    size_t size;
    if (read_whole_file(path, &bytes, &size, err) != 0)
        return -1;
    decoded_samples samples;
    int status = decode_samples(bytes, size, path, OD_IMAGE_MODE_COLOR, OD_IMAGE_DEFAULT_MAX_PIXELS, 1,
                                &samples, err);
    free(bytes);
    if (status != 0)
        return -1;
    int swap = samples.orientation >= 5;
    *width = swap ? samples.height : samples.width;
    *height = swap ? samples.width : samples.height;
    return 0;
}

/* ------------------------------------------------------------------------
 * PNG writing */

typedef struct png_write_context {
    char message[256];
} png_write_context;

static void png_on_write_error(png_structp png, png_const_charp message)
{
    png_write_context *context = png_get_error_ptr(png);
    snprintf(context->message, sizeof context->message, "%s", message);
    png_longjmp(png, 1);
}

static int png_write_with_jump(png_structp png, png_infop info, FILE *stream, const od_image *image,
                               png_bytep *rows)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, 0, PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    png_init_io(png, stream);
    png_set_IHDR(png, info, (png_uint_32)image->width, (png_uint_32)image->height, 8,
                 color_types[image->channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

static unsigned char float_to_byte(float value)
{
    /* !(value > 0) also catches NaN. */
    if (!(value > 0.0f))
        return 0;
    if (value >= 1.0f)
        return 255;
    return (unsigned char)(value * 255.0f + 0.5f);
}

int od_image_write_png(const char *path, const od_image *image, od_error *err)
{
    if (check_image(image, path, err) != 0)
        return -1;
    size_t row_size = (size_t)image->width * image->channels;
    size_t total = row_size * image->height;
    unsigned char *bytes = malloc(total);
    png_bytep *rows = malloc(sizeof *rows * (size_t)image->height);
    if (bytes == NULL || rows == NULL) {
        free(bytes);
        free(rows);
        return od_fail(err, "%s: out of memory for a %d x %d PNG", path, image->width, image->height);
    }
    for (size_t i = 0; i < total; i++)
        bytes[i] = float_to_byte(image->pixels[i]);
    for (int y = 0; y < image->height; y++)
        rows[y] = bytes + (size_t)y * row_size;

    od_atomic_file file;
    int status = od_atomic_open(&file, path, err);
    if (status == 0) {
        png_write_context context = {{0}};
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &context, png_on_write_error,
                                                  png_on_warning);
        png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
        if (png == NULL || info == NULL) {
            status = od_fail(err, "%s: out of memory for the PNG encoder", path);
        } else if (png_write_with_jump(png, info, file.stream, image, rows) != 0) {
            status = od_fail(err, "%s: writing the PNG failed: %s", path, context.message);
        }
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

/* ------------------------------------------------------------------------
 * Resizing */

/* The taps of one output pixel along one axis. */
typedef struct resize_taps {
    int first;   /* first input index */
    int count;   /* number of taps */
    int offset;  /* index of the first weight in the weight array */
} resize_taps;

/* Computes PyTorch's antialiased bilinear weights for one axis (triangle
 * filter, support scaled by the downscale factor, weights normalised to
 * sum 1). Returns the weights, or NULL when out of memory. */
static float *resize_weights(int in_size, int out_size, resize_taps *taps)
{
    double scale = (double)in_size / out_size;
    double support = scale >= 1.0 ? scale : 1.0;
    double inverse_scale = scale >= 1.0 ? 1.0 / scale : 1.0;
    int max_taps = (int)ceil(support) * 2 + 1;
    float *weights = malloc(sizeof *weights * (size_t)out_size * max_taps);
    if (weights == NULL)
        return NULL;
    for (int i = 0; i < out_size; i++) {
        double center = scale * (i + 0.5);
        /* Truncation toward zero, as PyTorch casts to int64. */
        int first = (int)(center - support + 0.5);
        if (first < 0)
            first = 0;
        int end = (int)(center + support + 0.5);
        if (end > in_size)
            end = in_size;
        int count = end - first;
        if (count > max_taps)
            count = max_taps;
        float *w = weights + (size_t)i * max_taps;
        double total = 0.0;
        for (int j = 0; j < count; j++) {
            double t = fabs((j + first - center + 0.5) * inverse_scale);
            double value = t < 1.0 ? 1.0 - t : 0.0;
            w[j] = (float)value;
            total += value;
        }
        for (int j = 0; j < count; j++)
            w[j] = total != 0.0 ? (float)(w[j] / total) : 0.0f;
        taps[i].first = first;
        taps[i].count = count;
        taps[i].offset = i * max_taps;
    }
    return weights;
}

int od_image_resize(const od_image *in, int width, int height, od_image *out, od_error *err)
{
    /* in is (in_height, in_width, C); out is (height, width, C) */
    if (out == in) {
        od_image resized;
        if (od_image_resize(in, width, height, &resized, err) != 0)
            return -1;
        od_image_free(out);
        *out = resized;
        return 0;
    }
    memset(out, 0, sizeof *out);
    if (check_image(in, "resize", err) != 0)
        return -1;
    if (width < 1 || height < 1 || width > OD_IMAGE_MAX_SIDE || height > OD_IMAGE_MAX_SIDE)
        return od_fail(err, "resize: target size %d x %d is invalid; expected 1 to %d pixels per side",
                       width, height, OD_IMAGE_MAX_SIDE);
    int channels = in->channels;
    resize_taps *taps_x = malloc(sizeof *taps_x * (size_t)width);
    resize_taps *taps_y = malloc(sizeof *taps_y * (size_t)height);
    float *weights_x = taps_x != NULL ? resize_weights(in->width, width, taps_x) : NULL;
    float *weights_y = taps_y != NULL ? resize_weights(in->height, height, taps_y) : NULL;
    float *horizontal = od_alloc_floats((int64_t)in->height * width * channels);
    int status = 0;
    if (weights_x == NULL || weights_y == NULL || horizontal == NULL)
        status = od_fail(err, "resize: out of memory for %d x %d -> %d x %d", in->width, in->height, width,
                         height);
    if (status == 0)
        status = od_image_new(width, height, channels, out, err);

    if (status == 0) {
        /* pass 1: horizontal, (in_height, in_width, C) -> (in_height, width, C) */
        int64_t row_in = (int64_t)in->width * channels, row_mid = (int64_t)width * channels;
#pragma omp parallel for schedule(static)
        for (int y = 0; y < in->height; y++) {
            const float *src = in->pixels + y * row_in;
            float *dst = horizontal + y * row_mid;
            for (int x = 0; x < width; x++) {
                const resize_taps *t = &taps_x[x];
                const float *w = weights_x + t->offset;
                float *o = dst + (int64_t)x * channels;
                for (int j = 0; j < t->count; j++) {
                    const float *p = src + (int64_t)(t->first + j) * channels;
                    for (int c = 0; c < channels; c++)
                        o[c] += w[j] * p[c];
                }
            }
        }

        /* pass 2: vertical, (in_height, width, C) -> (height, width, C) */
#pragma omp parallel for schedule(static)
        for (int y = 0; y < height; y++) {
            const resize_taps *t = &taps_y[y];
            const float *w = weights_y + t->offset;
            float *dst = out->pixels + y * row_mid;
            for (int j = 0; j < t->count; j++) {
                const float *src = horizontal + (int64_t)(t->first + j) * row_mid;
                for (int64_t i = 0; i < row_mid; i++)
                    dst[i] += w[j] * src[i];
            }
        }
    }
    free(taps_x);
    free(taps_y);
    free(weights_x);
    free(weights_y);
    od_free(horizontal);
    return status;
}

void od_image_scale_intrinsics(const double K_in[9], int in_width, int in_height, int out_width,
                               int out_height, double K_out[9])
{
    double sx = (double)out_width / in_width, sy = (double)out_height / in_height;
    double K[9];
    memcpy(K, K_in, sizeof K);
    K_out[0] = K[0] * sx;
    K_out[1] = K[1] * sx;
    K_out[2] = (K[2] + 0.5) * sx - 0.5;
    K_out[3] = K[3] * sy;
    K_out[4] = K[4] * sy;
    K_out[5] = (K[5] + 0.5) * sy - 0.5;
    K_out[6] = K[6];
    K_out[7] = K[7];
    K_out[8] = K[8];
}
