/* One interface over the frozen 2D teachers: InceptionV3 and MobileNetV2
 * (the nsfwjs@4.3.0 networks that scripts/fetch_weights.sh converts) and
 * DINOv2 (a Hugging Face Dinov2Model checkpoint that the user supplies).
 * DINOv2's head count comes from the config.json beside the checkpoint
 * when there is one, else from hidden / 64.
 *
 * A teacher is opened for one network, one layer and one square input
 * size. Running it resizes an RGB view to input_size x input_size with
 * od_image_resize (antialiased bilinear, the aspect ratio is not kept, as
 * the compare detector does) and returns the layer's feature map
 * (H', W', C) channels-last.
 *
 * Layer names:
 * - inceptionv3: any Keras layer name of the stored topology, e.g. mixed0
 *   to mixed10 (mixed0 to mixed2 are stride 8, mixed3 to mixed7 stride 16).
 * - mobilenetv2: the names in mobilenetv2.h, e.g. block_6_expand_relu
 *   (stride 8) or block_13_expand_relu (stride 16).
 * - dinov2: "last" (patch tokens after the final layer norm) or
 *   "block_<i>" (the output of block i, 0-based, without the final norm).
 *
 * Feature cell (i, j) covers the input around pixel
 *     x = offset + stride * j,  y = offset + stride * i
 * (pixel centres on integers). For InceptionV3 at strides 8, 16 and 32
 * (mixed0 and later) the offset is exact at any input size: 13, 21 and 37,
 * because its "valid" convolutions trim the border at the right and
 * bottom only. For DINOv2's patches it is (stride - 1) / 2, and for
 * MobileNetV2 the usual (stride - 1) / 2 when the input is a multiple of
 * the stride, which ignores the fraction of a pixel that TensorFlow's
 * asymmetric "same" padding shifts each stride-2 stage by. Other layers
 * take the grid as centred in the input: offset = (input_size - 1 -
 * stride * (W' - 1)) / 2.
 * NOTE: the centred rule is approximate for InceptionV3's stem layers
 * (strides 2 and 4) at input sizes other than 299. */
#ifndef ODDONE_TEACHER_TEACHER_H
#define ODDONE_TEACHER_TEACHER_H

#include <stdint.h>

#include "core/error.h"
#include "io/image.h"

typedef enum od_teacher_network {
    OD_TEACHER_INCEPTIONV3 = 0,
    OD_TEACHER_MOBILENETV2 = 1,
    OD_TEACHER_DINOV2 = 2,
} od_teacher_network;

#define OD_TEACHER_NETWORK_COUNT 3
/* The teacher that `oddone teacher` uses when --model names no other. */
#define OD_TEACHER_DEFAULT_NETWORK OD_TEACHER_INCEPTIONV3

/* Sizes of an opened teacher. */
typedef struct od_teacher_info {
    od_teacher_network network;
    const char *network_name; /* "inceptionv3", "mobilenetv2", "dinov2" */
    const char *layer;        /* the teacher's own copy of the layer name */
    int64_t input_size;       /* side of the square input, pixels */
    int64_t height, width;    /* H', W' of the feature map */
    int64_t channels;         /* C */
    int64_t stride;           /* input pixels per feature cell */
    double offset;            /* input pixel of cell 0's centre, see above */
} od_teacher_info;

typedef struct od_teacher od_teacher;

/* Parses "inceptionv3", "mobilenetv2" or "dinov2"; fails with a message
 * listing the names. */
int od_teacher_network_parse(const char *name, od_teacher_network *network, od_error *err);
const char *od_teacher_network_name(od_teacher_network network);

/* Defaults per network. The layer and size come from the measurements in
 * docs/TEACHER.md. The weights path is relative to the repository root,
 * and NULL for DINOv2, whose weights the user names. */
const char *od_teacher_default_layer(od_teacher_network network);
int64_t od_teacher_default_input_size(od_teacher_network network);
const char *od_teacher_default_weights(od_teacher_network network);

/* Opens a teacher. weights_path NULL means the network's default, layer
 * NULL its default layer, input_size 0 its default size. Fails on a
 * missing or invalid weights file, an unknown layer, or an input size
 * that the layer cannot take. DINOv2 needs a multiple of its patch size,
 * and each network needs a map of at least 1 x 1. */
od_teacher *od_teacher_open(od_teacher_network network, const char *weights_path, const char *layer,
                            int64_t input_size, od_error *err);
void od_teacher_free(od_teacher *teacher);

od_teacher_info od_teacher_get_info(const od_teacher *teacher);

/* Runs the teacher on an input already at input_size x input_size:
 * input is (input_size, input_size, 3) RGB in [0, 1]. features receives
 * (H', W', C). */
int od_teacher_run_input(od_teacher *teacher, const float *input, float *features, od_error *err);

/* Resizes an RGB image (3 channels, any size) to the input size and runs
 * the teacher; features as in od_teacher_run_input. */
int od_teacher_run(od_teacher *teacher, const od_image *image, float *features, od_error *err);

#endif
