/* Forward pass of a Keras functional model from its stored topology, for
 * the networks that scripts/fetch_weights.sh converts (InceptionV3 and
 * MobileNetV2 from nsfwjs@4.3.0).
 *
 * The converter stores the Keras model_config as JSON in the safetensors
 * metadata under "keras_topology", and the weights under the manifest's
 * names in PyTorch's layouts. The loader walks the layers in the stored
 * order, which Keras writes so that every layer comes after its inputs,
 * infers each output shape for the requested input size, and folds each
 * BatchNormalization that follows a convolution into that convolution.
 *
 * Layers handled: InputLayer, Conv2D, DepthwiseConv2D (depth multiplier
 * 1), BatchNormalization, Activation (linear, relu, softmax), ReLU (with
 * max_value), ZeroPadding2D, MaxPooling2D, AveragePooling2D, Concatenate
 * and Add on channels, Flatten, Dense, Dropout (identity at inference).
 * Average pooling with "same" padding leaves the padded zeros out of the
 * mean, as TensorFlow does. Any other layer is an error naming it.
 *
 * Activations are channels-last (H, W, C), batch 1. Flatten and Dense need
 * the input size the topology was built for, because Dense fixes the
 * flattened length. */
#ifndef ODDONE_TEACHER_KERAS_GRAPH_H
#define ODDONE_TEACHER_KERAS_GRAPH_H

#include <stdint.h>

#include "core/error.h"

/* Output path of scripts/fetch_weights.sh for InceptionV3, relative to the
 * repository root. Its input size is 299 x 299 and its input RGB in [0, 1]. */
#define OD_INCEPTIONV3_DEFAULT_PATH "models/cache/inceptionv3.safetensors"
#define OD_INCEPTIONV3_INPUT_SIZE 299

typedef struct od_keras_graph od_keras_graph;

/* Loads a converted model for an input of height x width pixels and
 * checks every weight's shape. last_layer NULL builds the whole model.
 * Otherwise only the layers up to that one in the stored order are built,
 * which saves memory and allows input sizes that the Dense head cannot
 * take. The error for a missing file names scripts/fetch_weights.sh as
 * the fix. */
od_keras_graph *od_keras_graph_load(const char *path, int64_t height, int64_t width,
                                    const char *last_layer, od_error *err);
void od_keras_graph_free(od_keras_graph *graph);

/* Writes the output shape of a named layer: (H, W, C) as {H, W, C}, or a
 * vector of n values as {1, 1, n}. Fails on an unknown name. */
int od_keras_graph_layer_shape(const od_keras_graph *graph, const char *layer, int64_t shape[3],
                               od_error *err);

/* image is (H, W, 3) at the loaded size. out receives the named layer's
 * output as od_keras_graph_layer_shape gives it. The forward runs only the
 * layers that come before the named one in the stored order. */
int od_keras_graph_forward(od_keras_graph *graph, const float *image, const char *layer, float *out,
                           od_error *err);

/* Runs the whole model and writes the final Dense layer's values before
 * its activation (for the nsfwjs models, the 5 logits before the softmax).
 * Returns the number of values through *count. */
int od_keras_graph_logits(od_keras_graph *graph, const float *image, float *logits,
                          int64_t capacity, int64_t *count, od_error *err);

#endif
