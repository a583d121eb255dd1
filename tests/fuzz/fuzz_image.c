/* Fuzz target: the PNG and JPEG decoders (format detection, libpng and
 * libjpeg error handling, EXIF parsing, conversion and orientation) in
 * every read mode, then a resize and some drawing on whatever decodes.
 * Built by scripts/fuzz.sh with libFuzzer, and replayed over
 * tests/fuzz/corpus/image/ by ctest. */
#include <stdint.h>
#include <stdlib.h>

#include "io/draw.h"
#include "io/exif.h"
#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Images up to 2^22 pixels: enough for every decoder path, small enough
 * that libFuzzer's 2 GB memory limit is never the finding. */
#define FUZZ_MAX_PIXELS ((int64_t)1 << 22)

static void exercise(const od_image *image)
{
    od_image small;
    od_error err;
    if (od_image_resize(image, image->width / 3 + 1, image->height / 2 + 1, &small, &err) != 0)
        return;
    const float color[3] = {1.0f, 0.5f, 0.0f};
    od_draw_line(&small, -5.0, image->pixels[0] * 40.0, small.width + 5.0, 3.0, color, 2.0);
    od_draw_circle(&small, small.width / 2.0, small.height / 2.0, small.width / 4.0, color);
    od_draw_text(&small, 1, 1, "Ab9", color, 1);
    od_image_free(&small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    od_image_read_options options = od_image_read_options_default();
    options.max_pixels = FUZZ_MAX_PIXELS;
    options.keep_alpha = 1;
    const od_image_mode modes[3] = {OD_IMAGE_MODE_COLOR, OD_IMAGE_MODE_GRAY, OD_IMAGE_MODE_GRAY_RAW};
    for (int m = 0; m < 3; m++) {
        od_image image;
        od_error err;
        int bit_depth = 0;
        if (od_image_decode(data, size, "fuzz", modes[m], &options, &image, &bit_depth, &err) != 0)
            continue;
        if (m == 0)
            exercise(&image);
        od_image_free(&image);
    }
    /* The EXIF parser on its own, as if the input were an APP1 payload. */
    od_exif_orientation(data, size);
    return 0;
}
