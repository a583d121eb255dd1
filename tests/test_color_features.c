/* Colour-histogram features: soft binning of known colours, cell layout
 * and sums, and bad arguments. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "detect/color_features.h"
#include "testlib.h"

/* A 8 x 4 image of two 4 x 4 cells: the left one R = 0.5, G = 0, B = 1;
 * the right one R = 0.3125 (between bins 2 and 3 of 8). */
static void test_color_histogram_values(void)
{
    od_image image;
    od_error err;
    OD_CHECK(od_image_new(8, 4, 3, &image, &err) == 0);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 8; x++) {
            float *pixel = image.pixels + 3 * (y * 8 + x);
            pixel[0] = x < 4 ? 0.5f : 0.3125f;
            pixel[1] = 0.0f;
            pixel[2] = 1.0f;
        }
    float features[2 * 24];
    OD_CHECK(od_color_histogram_features(&image, 4, 8, features, &err) == 0);
    /* 0.5 * 8 - 0.5 = 3.5: half to bin 3, half to bin 4. */
    OD_CHECK(fabsf(features[3] - 0.5f) < 1e-6f && fabsf(features[4] - 0.5f) < 1e-6f);
    /* G = 0 and B = 1 lie beyond the first and last centres. */
    OD_CHECK(fabsf(features[8] - 1.0f) < 1e-6f);
    OD_CHECK(fabsf(features[16 + 7] - 1.0f) < 1e-6f);
    /* 0.3125 * 8 - 0.5 = 2: all to bin 2. */
    OD_CHECK(fabsf(features[24 + 2] - 1.0f) < 1e-6f);
    for (int cell = 0; cell < 2; cell++)
        for (int c = 0; c < 3; c++) {
            float sum = 0.0f;
            for (int b = 0; b < 8; b++)
                sum += features[cell * 24 + c * 8 + b];
            OD_CHECK(fabsf(sum - 1.0f) < 1e-5f);
        }
    od_image_free(&image);
}

static void test_color_histogram_rejects_bad_input(void)
{
    od_image image;
    od_error err;
    float features[24];
    OD_CHECK(od_image_new(3, 3, 3, &image, &err) == 0);
    OD_CHECK(od_color_histogram_features(&image, 4, 8, features, &err) == -1);
    OD_CHECK(strstr(err.message, "smaller than one") != NULL);
    OD_CHECK(od_color_histogram_features(&image, 1, 0, features, &err) == -1);
    OD_CHECK(od_color_histogram_features(NULL, 1, 8, features, &err) == -1);
    od_image_free(&image);
    OD_CHECK(od_image_new(4, 4, 1, &image, &err) == 0);
    OD_CHECK(od_color_histogram_features(&image, 4, 8, features, &err) == -1);
    OD_CHECK(strstr(err.message, "expected RGB") != NULL);
    od_image_free(&image);
}

int main(void)
{
    OD_RUN(test_color_histogram_values);
    OD_RUN(test_color_histogram_rejects_bad_input);
    return od_test_finish();
}
