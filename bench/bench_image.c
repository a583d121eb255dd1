/* Image decoding and resizing at the size of a rendered view: decode a
 * 256 x 256 RGBA PNG and resize an RGB view from 256 to 128 pixels.
 * The PNG is left at $TMPDIR/oddone-bench-view.png for the PyTorch peer
 * (bench/torch_image.py), so both sides decode the same bytes. */
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "io/image.h"

typedef struct decode_case {
    unsigned char *bytes;
    size_t size;
} decode_case;

static void decode_once(void *context)
{
    decode_case *c = context;
    od_image image;
    od_error err;
    if (od_image_decode(c->bytes, c->size, "bench", OD_IMAGE_MODE_COLOR, NULL, &image, NULL, &err) != 0) {
        fprintf(stderr, "bench_image: %s\n", err.message);
        exit(1);
    }
    od_image_free(&image);
}

static void resize_once(void *context)
{
    const od_image *view = context;
    od_image small;
    od_error err;
    if (od_image_resize(view, 128, 128, &small, &err) != 0) {
        fprintf(stderr, "bench_image: %s\n", err.message);
        exit(1);
    }
    od_image_free(&small);
}

int main(void)
{
    enum { SIZE = 256 };
    od_error err;
    od_image view;
    if (od_image_new(SIZE, SIZE, 4, &view, &err) != 0) {
        fprintf(stderr, "bench_image: %s\n", err.message);
        return 1;
    }
    /* A smooth pattern with a transparent corner, like a render over an
     * empty background. */
    for (int y = 0; y < SIZE; y++) {
        for (int x = 0; x < SIZE; x++) {
            float *p = &view.pixels[((size_t)y * SIZE + x) * 4];
            p[0] = (float)x / SIZE;
            p[1] = (float)y / SIZE;
            p[2] = (float)((x * y) % SIZE) / SIZE;
            p[3] = x + y < 300 ? 1.0f : 0.0f;
        }
    }
    const char *base = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/oddone-bench-view.png", base && *base ? base : "/tmp");
    if (od_image_write_png(path, &view, &err) != 0) {
        fprintf(stderr, "bench_image: %s\n", err.message);
        return 1;
    }
    od_image_free(&view);

    FILE *stream = fopen(path, "rb");
    decode_case c = {0};
    fseek(stream, 0, SEEK_END);
    c.size = (size_t)ftell(stream);
    fseek(stream, 0, SEEK_SET);
    c.bytes = malloc(c.size);
    if (fread(c.bytes, 1, c.size, stream) != c.size) {
        fprintf(stderr, "bench_image: cannot read back %s\n", path);
        return 1;
    }
    fclose(stream);
    bench_report("png_decode_256_rgba", bench_median_ms(decode_once, &c, 5, 31), 0);

    od_image rgb;
    if (od_image_decode(c.bytes, c.size, path, OD_IMAGE_MODE_COLOR, NULL, &rgb, NULL, &err) != 0) {
        fprintf(stderr, "bench_image: %s\n", err.message);
        return 1;
    }
    bench_report("resize_256_to_128_rgb", bench_median_ms(resize_once, &rgb, 5, 31), 0);
    od_image_free(&rgb);
    free(c.bytes);
    return 0;
}
