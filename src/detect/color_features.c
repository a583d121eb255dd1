/* Colour-histogram features; see color_features.h. */
#include "detect/color_features.h"

#include <math.h>
#include <string.h>

int od_color_histogram_features(const od_image *image, int stride, int bins, float *features, od_error *err)
{
    if (image == NULL || image->pixels == NULL || features == NULL)
        return od_fail(err, "colour features: NULL image or features");
    if (image->channels != 3)
        return od_fail(err, "colour features: the image has %d channels; expected RGB", image->channels);
    if (bins < 1 || stride < 1)
        return od_fail(err, "colour features: bins %d and stride %d must be at least 1", bins, stride);
    int height = image->height / stride, width = image->width / stride;
    if (height < 1 || width < 1)
        return od_fail(err, "colour features: a %d x %d image is smaller than one %d-pixel cell", image->width,
                       image->height, stride);
    int channels = 3 * bins;
    float weight = 1.0f / (float)(stride * stride);
#pragma omp parallel for schedule(static)
    for (int cell = 0; cell < height * width; cell++) {
        int r = cell / width, q = cell % width;
        float *histogram = features + (int64_t)cell * channels;
        memset(histogram, 0, (size_t)channels * sizeof *histogram);
        for (int y = r * stride; y < (r + 1) * stride; y++)
            for (int x = q * stride; x < (q + 1) * stride; x++) {
                const float *pixel = image->pixels + 3 * ((int64_t)y * image->width + x);
                for (int c = 0; c < 3; c++) {
                    float value = pixel[c] < 0.0f ? 0.0f : (pixel[c] > 1.0f ? 1.0f : pixel[c]);
                    float position = value * (float)bins - 0.5f;
                    float *channel = histogram + c * bins;
                    if (position <= 0.0f) {
                        channel[0] += weight;
                    } else if (position >= (float)(bins - 1)) {
                        channel[bins - 1] += weight;
                    } else {
                        int low = (int)position;
                        float upper = position - (float)low;
                        channel[low] += (1.0f - upper) * weight;
                        channel[low + 1] += upper * weight;
                    }
                }
            }
    }
    return 0;
}
