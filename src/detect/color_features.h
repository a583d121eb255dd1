/* Colour-histogram features: the floor that a teacher's features must
 * beat in the compare detector. Each feature cell of `stride` x `stride`
 * pixels gets one histogram of `bins` bins per channel (R, G, B), so
 * 3 * bins channels, each channel's histogram summing to 1 over the cell.
 * Values are binned softly, so a small change of colour changes the
 * histogram a little. A value v in [0, 1] sits at position v * bins - 0.5
 * and splits its weight linearly between the two nearest bin centres.
 * Beyond the first or last centre, all of it goes to that bin. */
#ifndef ODDONE_DETECT_COLOR_FEATURES_H
#define ODDONE_DETECT_COLOR_FEATURES_H

#include <stdint.h>

#include "core/error.h"
#include "io/image.h"

#define OD_COLOR_FEATURES_DEFAULT_BINS 8
#define OD_COLOR_FEATURES_DEFAULT_STRIDE 16

/* Writes the histograms of image (RGB) into features
 * (height / stride, width / stride, 3 * bins), channels-last. Pixels
 * beyond the last whole cell are not used. Fails on a NULL buffer, an
 * image that is not RGB, bins < 1, stride < 1 or an image smaller than
 * one cell. */
int od_color_histogram_features(const od_image *image, int stride, int bins, float *features, od_error *err);

#endif
