/* oneDNN primitives, reorders and buffers of a convolution layer. See
 * conv_engine.h for the three ways a layer computes. */
#include "nn/conv_engine.h"

#include <stdlib.h>
#include <string.h>

#include "core/dnnl_util.h"
#include "core/mem.h"

/* ---- steps: a primitive and its argument memories -------------------- */

static int step_add(od_dnnl_step *step, int arg, const dnnl_memory_desc_t *md, void *handle,
                    const char *what, od_error *err)
{
    dnnl_engine_t engine = od_dnnl_engine(err);
    if (engine == NULL)
        return -1;
    dnnl_memory_t memory = NULL;
    if (od_dnnl_check(dnnl_memory_create(&memory, md, engine, handle != NULL ? handle : DNNL_MEMORY_NONE),
                      what, err))
        return -1;
    step->args[step->arg_count].arg = arg;
    step->args[step->arg_count].memory = memory;
    step->arg_count++;
    return 0;
}

/* Creates the primitive of pd and its scratchpad argument, and raises the
 * layer's scratchpad size to what the primitive needs. */
static int step_create(od_conv_layer *layer, od_dnnl_step *step, const_dnnl_primitive_desc_t pd,
                       const char *what, od_error *err)
{
    if (od_dnnl_check(dnnl_primitive_create(&step->primitive, pd), what, err))
        return -1;
    const dnnl_memory_desc_t *scratchpad_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = scratchpad_md != NULL ? dnnl_memory_desc_get_size(scratchpad_md) : 0;
    if (bytes == 0)
        return 0;
    if (bytes > layer->scratchpad_bytes)
        layer->scratchpad_bytes = bytes;
    return step_add(step, DNNL_ARG_SCRATCHPAD, scratchpad_md, NULL, what, err);
}

static void step_release(od_dnnl_step *step)
{
    for (int i = 0; i < step->arg_count; i++)
        dnnl_memory_destroy(step->args[i].memory);
    if (step->primitive != NULL)
        dnnl_primitive_destroy(step->primitive);
    memset(step, 0, sizeof *step);
}

/* Points argument `arg` at pointer. oneDNN takes non-const handles even
 * for the buffers it only reads. */
static int step_bind(od_dnnl_step *step, int arg, const void *pointer, od_error *err)
{
    for (int i = 0; i < step->arg_count; i++)
        if (step->args[i].arg == arg)
            return od_dnnl_check(dnnl_memory_set_data_handle(step->args[i].memory, (void *)pointer),
                                 "binding a oneDNN argument", err);
    return 0;
}

static int step_run(od_conv_layer *layer, od_dnnl_step *step, const char *what, od_error *err)
{
    dnnl_stream_t stream = od_dnnl_stream(err);
    if (stream == NULL)
        return -1;
    if (step_bind(step, DNNL_ARG_SCRATCHPAD, layer->scratchpad, err))
        return -1;
    if (od_dnnl_check(dnnl_primitive_execute(step->primitive, stream, step->arg_count, step->args), what, err))
        return -1;
    return od_dnnl_check(dnnl_stream_wait(stream), what, err);
}

/* (Re)allocates the shared scratchpad once every primitive is made. */
static int ensure_scratchpad(od_conv_layer *layer, size_t allocated_bytes, od_error *err)
{
    if (layer->scratchpad_bytes <= allocated_bytes && layer->scratchpad != NULL)
        return 0;
    if (layer->scratchpad_bytes == 0)
        return 0;
    od_free(layer->scratchpad);
    layer->scratchpad = od_alloc_aligned(layer->scratchpad_bytes);
    if (layer->scratchpad == NULL)
        return od_fail(err, "%s: out of memory for a %zu-byte oneDNN scratchpad", layer->shape.kind,
                       layer->scratchpad_bytes);
    return 0;
}

/* ---- descriptors ----------------------------------------------------- */

static dnnl_primitive_attr_t new_attr(int accumulate, od_error *err)
{
    dnnl_primitive_attr_t attr = NULL;
    if (od_dnnl_check(dnnl_primitive_attr_create(&attr), "creating oneDNN attributes", err))
        return NULL;
    if (od_dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                      "setting the scratchpad mode", err))
        goto fail;
    if (accumulate) {
        dnnl_post_ops_t post_ops = NULL;
        if (od_dnnl_check(dnnl_post_ops_create(&post_ops), "creating oneDNN post-ops", err))
            goto fail;
        dnnl_status_t status = dnnl_post_ops_append_sum(post_ops, 1.0f);
        if (status == dnnl_success)
            status = dnnl_primitive_attr_set_post_ops(attr, post_ops);
        dnnl_post_ops_destroy(post_ops);
        if (od_dnnl_check(status, "adding a sum post-op", err))
            goto fail;
    }
    return attr;

fail:
    dnnl_primitive_attr_destroy(attr);
    return NULL;
}

/* Activation descriptor (N, C, [D,] H, W) in the layer's layout. */
static int activation_md(dnnl_memory_desc_t *md, const od_conv_shape *shape, int64_t channels,
                         const int64_t *size, od_error *err)
{
    dnnl_dims_t dims = {shape->batch, channels};
    for (int i = 0; i < shape->spatial; i++)
        dims[2 + i] = size[i];
    dnnl_format_tag_t tag;
    if (shape->layout == OD_CONV_BLOCKED16)
        tag = shape->spatial == 3 ? dnnl_nCdhw16c : dnnl_nChw16c;
    else
        tag = shape->spatial == 3 ? dnnl_ndhwc : dnnl_nhwc;
    return od_dnnl_check(dnnl_memory_desc_init_by_tag(md, 2 + shape->spatial, dims, dnnl_f32, tag),
                         "describing an activation", err);
}

/* oneDNN's logical weight dims are (Cout, Cin, k...) or (G, Cout / G,
 * Cin / G, k...), where Cout and Cin are the primitive's output and input
 * channels. PyTorch stores a convolution's weight in that order and a
 * transposed convolution's with the two channel axes swapped (swap_io).
 * With any_format set, the descriptor leaves the layout to oneDNN. */
static int weight_md(dnnl_memory_desc_t *md, const od_conv_shape *shape, int64_t out_channels,
                     int64_t in_channels, int swap_io, int any_format, od_error *err)
{
    int grouped = shape->groups > 1;
    dnnl_dims_t dims;
    int n = 0;
    if (grouped)
        dims[n++] = shape->groups;
    dims[n++] = out_channels / shape->groups;
    dims[n++] = in_channels / shape->groups;
    for (int i = 0; i < shape->spatial; i++)
        dims[n++] = shape->kernel[i];

    /* Plain tags indexed [grouped][swap_io] for 2D and 3D. */
    static const dnnl_format_tag_t tags2[2][2] = {{dnnl_oihw, dnnl_iohw}, {dnnl_goihw, dnnl_giohw}};
    static const dnnl_format_tag_t tags3[2][2] = {{dnnl_oidhw, dnnl_iodhw}, {dnnl_goidhw, dnnl_giodhw}};
    dnnl_format_tag_t tag;
    if (any_format)
        tag = dnnl_format_tag_any;
    else if (shape->spatial == 3)
        tag = tags3[grouped][swap_io != 0];
    else
        tag = tags2[grouped][swap_io != 0];
    return od_dnnl_check(dnnl_memory_desc_init_by_tag(md, n, dims, dnnl_f32, tag),
                         "describing a weight", err);
}

static const dnnl_memory_desc_t *query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* Makes a reorder from src_md to dst_md, unless the two are the same
 * layout and accumulate is 0. Returns 1 when a reorder was made. */
static int make_reorder(od_conv_layer *layer, od_dnnl_step *step, const dnnl_memory_desc_t *src_md,
                        const dnnl_memory_desc_t *dst_md, int accumulate, od_error *err)
{
    if (!accumulate && dnnl_memory_desc_equal(src_md, dst_md))
        return 0;
    dnnl_engine_t engine = od_dnnl_engine(err);
    if (engine == NULL)
        return -1;
    dnnl_primitive_attr_t attr = new_attr(accumulate, err);
    if (attr == NULL)
        return -1;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t status = dnnl_reorder_primitive_desc_create(&pd, src_md, engine, dst_md, engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (od_dnnl_check(status, "creating a weight reorder", err))
        return -1;
    int rc = step_create(layer, step, pd, "creating a weight reorder", err);
    dnnl_primitive_desc_destroy(pd);
    if (rc)
        return -1;
    if (step_add(step, DNNL_ARG_FROM, src_md, NULL, "binding a reorder", err) ||
        step_add(step, DNNL_ARG_TO, dst_md, NULL, "binding a reorder", err))
        return -1;
    return 1;
}

static float *alloc_md_floats(const dnnl_memory_desc_t *md)
{
    return od_alloc_floats((int64_t)(dnnl_memory_desc_get_size(md) / sizeof(float)));
}

/* ---- init and release ------------------------------------------------ */

static int64_t product(const int64_t *values, int count)
{
    int64_t result = 1;
    for (int i = 0; i < count; i++)
        result *= values[i];
    return result;
}

static int init_forward(od_conv_layer *layer, od_error *err)
{
    const od_conv_shape *shape = &layer->shape;
    dnnl_engine_t engine = od_dnnl_engine(err);
    if (engine == NULL)
        return -1;

    dnnl_memory_desc_t any_weight_md;
    if (weight_md(&any_weight_md, shape, shape->out_channels, shape->in_channels, 0, 1, err))
        return -1;
    const dnnl_memory_desc_t *bias = shape->has_bias ? &layer->bias_md : NULL;
    dnnl_status_t status;
    if (shape->transposed) {
        dnnl_deconvolution_desc_t desc;
        status = dnnl_dilated_deconvolution_forward_desc_init(
            &desc, dnnl_forward_training, dnnl_deconvolution_direct, &layer->src_md, &any_weight_md, bias,
            &layer->dst_md, layer->strides, layer->dilates, layer->padding_l, layer->padding_r);
        if (od_dnnl_check(status, "describing the forward deconvolution", err))
            return -1;
        dnnl_primitive_attr_t attr = new_attr(0, err);
        if (attr == NULL)
            return -1;
        status = dnnl_primitive_desc_create(&layer->forward_pd, &desc, attr, engine, NULL);
        dnnl_primitive_attr_destroy(attr);
    } else {
        dnnl_convolution_desc_t desc;
        status = dnnl_dilated_convolution_forward_desc_init(
            &desc, dnnl_forward_training, dnnl_convolution_direct, &layer->src_md, &any_weight_md, bias,
            &layer->dst_md, layer->strides, layer->dilates, layer->padding_l, layer->padding_r);
        if (od_dnnl_check(status, "describing the forward convolution", err))
            return -1;
        dnnl_primitive_attr_t attr = new_attr(0, err);
        if (attr == NULL)
            return -1;
        status = dnnl_primitive_desc_create(&layer->forward_pd, &desc, attr, engine, NULL);
        dnnl_primitive_attr_destroy(attr);
    }
    if (od_dnnl_check(status, "creating the forward primitive descriptor", err))
        return -1;

    const dnnl_memory_desc_t *chosen = query_md(layer->forward_pd, dnnl_query_weights_md);
    int reordered = make_reorder(layer, &layer->forward_weight_reorder, &layer->user_weight_md, chosen, 0, err);
    if (reordered < 0)
        return -1;
    if (reordered) {
        layer->forward_weight = alloc_md_floats(chosen);
        if (layer->forward_weight == NULL)
            return od_fail(err, "%s: out of memory for the reordered weight", shape->kind);
        if (step_bind(&layer->forward_weight_reorder, DNNL_ARG_TO, layer->forward_weight, err))
            return -1;
    }

    od_dnnl_step *step = &layer->forward;
    if (step_create(layer, step, layer->forward_pd, "creating the forward primitive", err) ||
        step_add(step, DNNL_ARG_SRC, &layer->src_md, NULL, "binding the input", err) ||
        step_add(step, DNNL_ARG_WEIGHTS, chosen, layer->forward_weight, "binding the weight", err) ||
        step_add(step, DNNL_ARG_DST, &layer->dst_md, NULL, "binding the output", err))
        return -1;
    if (shape->has_bias && step_add(step, DNNL_ARG_BIAS, &layer->bias_md, NULL, "binding the bias", err))
        return -1;
    return ensure_scratchpad(layer, 0, err);
}

int od_conv_layer_init(od_conv_layer *layer, const od_conv_shape *shape, od_error *err)
{
    memset(layer, 0, sizeof *layer);
    layer->shape = *shape;
    int spatial = shape->spatial;

    /* Output size and oneDNN's asymmetric padding. oneDNN wants the
     * right padding that makes its size formula exact. That is less than
     * PyTorch's symmetric padding when the stride leaves rows unused, and
     * padding - output_padding for a transposed convolution. Both can be
     * negative, which oneDNN 2.6 accepts (tested in test_conv.c). */
    for (int i = 0; i < spatial; i++) {
        int64_t extent = shape->dilation[i] * (shape->kernel[i] - 1) + 1;
        int64_t in = shape->in_size[i];
        int64_t pad = shape->padding[i];
        int64_t out;
        if (shape->transposed) {
            out = (in - 1) * shape->stride[i] - 2 * pad + extent + shape->output_padding[i];
            layer->padding_r[i] = (in - 1) * shape->stride[i] + extent - out - pad;
        } else {
            out = (in + 2 * pad - extent) / shape->stride[i] + 1;
            layer->padding_r[i] = (out - 1) * shape->stride[i] + extent - in - pad;
        }
        layer->out_size[i] = out;
        layer->strides[i] = shape->stride[i];
        layer->dilates[i] = shape->dilation[i] - 1; /* oneDNN counts the gaps */
        layer->padding_l[i] = pad;
    }
    layer->in_count = shape->batch * shape->in_channels * product(shape->in_size, spatial);
    layer->out_count = shape->batch * shape->out_channels * product(layer->out_size, spatial);
    layer->weight_count = shape->out_channels * (shape->in_channels / shape->groups) *
                          product(shape->kernel, spatial);

    int gemm_path = shape->transposed && shape->groups == 1 && shape->layout == OD_CONV_CHANNELS_LAST;
    for (int i = 0; i < spatial; i++)
        gemm_path = gemm_path && shape->kernel[i] == shape->stride[i] && shape->padding[i] == 0 &&
                    shape->output_padding[i] == 0 && shape->dilation[i] == 1;
    if (gemm_path) {
        layer->path = OD_CONV_PATH_GEMM;
        return od_conv_gemm_prepare(layer, err);
    }

    dnnl_dims_t bias_dims = {shape->out_channels};
    if (activation_md(&layer->src_md, shape, shape->in_channels, shape->in_size, err) ||
        activation_md(&layer->dst_md, shape, shape->out_channels, layer->out_size, err) ||
        weight_md(&layer->user_weight_md, shape, shape->out_channels, shape->in_channels, shape->transposed, 0,
                  err) ||
        od_dnnl_check(dnnl_memory_desc_init_by_tag(&layer->bias_md, 1, bias_dims, dnnl_f32, dnnl_x),
                      "describing the bias", err))
        return od_fail_context(err, "%s", shape->kind);
    if (init_forward(layer, err))
        return od_fail_context(err, "%s", shape->kind);
    return 0;
}

void od_conv_layer_release(od_conv_layer *layer)
{
    step_release(&layer->forward);
    step_release(&layer->forward_weight_reorder);
    step_release(&layer->backward_data);
    step_release(&layer->backward_data_weight_reorder);
    step_release(&layer->backward_weights);
    step_release(&layer->diff_weight_reorder);
    if (layer->forward_pd != NULL)
        dnnl_primitive_desc_destroy(layer->forward_pd);
    od_free(layer->scratchpad);
    od_free(layer->forward_weight);
    od_free(layer->flipped_weight);
    od_free(layer->backward_data_weight);
    od_free(layer->d_in_temp);
    od_free(layer->diff_weight);
    od_free(layer->diff_bias);
    od_free(layer->gemm_weight);
    od_free(layer->gemm_product);
    od_free(layer->gemm_diff_weight);
    od_free(layer->bias_partials);
    memset(layer, 0, sizeof *layer);
}

/* ---- forward --------------------------------------------------------- */

int od_conv_layer_forward(od_conv_layer *layer, float *out, const float *in, const float *weight,
                          const float *bias, od_error *err)
{
    if (layer->path == OD_CONV_PATH_GEMM) {
        od_conv_gemm_forward(layer, out, in, weight, bias);
        return 0;
    }

    const float *forward_weight = weight;
    if (layer->forward_weight != NULL) {
        od_dnnl_step *reorder = &layer->forward_weight_reorder;
        if (step_bind(reorder, DNNL_ARG_FROM, weight, err) ||
            step_run(layer, reorder, "reordering the weight", err))
            return od_fail_context(err, "%s forward", layer->shape.kind);
        forward_weight = layer->forward_weight;
    }
    od_dnnl_step *step = &layer->forward;
    if (step_bind(step, DNNL_ARG_SRC, in, err) || step_bind(step, DNNL_ARG_WEIGHTS, forward_weight, err) ||
        step_bind(step, DNNL_ARG_DST, out, err) || step_bind(step, DNNL_ARG_BIAS, bias, err) ||
        step_run(layer, step, "running the convolution", err))
        return od_fail_context(err, "%s forward", layer->shape.kind);
    return 0;
}

/* ---- backward: creation ---------------------------------------------- */

/* Stride 1 lets the input gradient be a forward convolution of d_out with
 * the kernel flipped in space and its channel axes swapped, padded by
 * dilation * (kernel - 1) - padding on each side, which must not be negative. */
static int can_compute_data_by_forward(const od_conv_layer *layer)
{
    const od_conv_shape *shape = &layer->shape;
    if (shape->transposed)
        return 0;
    for (int i = 0; i < shape->spatial; i++) {
        int64_t reach = shape->dilation[i] * (shape->kernel[i] - 1);
        if (shape->stride[i] != 1 || layer->padding_l[i] > reach || layer->padding_r[i] > reach)
            return 0;
    }
    return 1;
}

/* Creates the reorder of a plain weight into the layout `chosen` that a
 * backward-data primitive picked, with its target buffer, unless the two
 * layouts are the same. source may be NULL to bind it per call. */
static int init_backward_data_weight(od_conv_layer *layer, const dnnl_memory_desc_t *plain_md,
                                     const dnnl_memory_desc_t *chosen, const float *source, od_error *err)
{
    od_dnnl_step *reorder = &layer->backward_data_weight_reorder;
    int reordered = make_reorder(layer, reorder, plain_md, chosen, 0, err);
    if (reordered <= 0)
        return reordered;
    layer->backward_data_weight = alloc_md_floats(chosen);
    if (layer->backward_data_weight == NULL)
        return od_fail(err, "out of memory for the backward-data weight");
    if (step_bind(reorder, DNNL_ARG_TO, layer->backward_data_weight, err) ||
        (source != NULL && step_bind(reorder, DNNL_ARG_FROM, source, err)))
        return -1;
    return 0;
}

static int init_backward_data_by_forward(od_conv_layer *layer, od_error *err)
{
    const od_conv_shape *shape = &layer->shape;
    dnnl_engine_t engine = od_dnnl_engine(err);
    if (engine == NULL)
        return -1;

    /* The reverse convolution maps Cout channels to Cin channels. Its
     * plain weight is (G, Cin / G, Cout / G, k...), the forward's with the
     * channel axes swapped: goihw with o = Cin and i = Cout. */
    dnnl_memory_desc_t plain_md, any_md;
    if (weight_md(&plain_md, shape, shape->in_channels, shape->out_channels, 0, 0, err) ||
        weight_md(&any_md, shape, shape->in_channels, shape->out_channels, 0, 1, err))
        return -1;
    dnnl_dims_t padding_l, padding_r;
    for (int i = 0; i < shape->spatial; i++) {
        int64_t reach = shape->dilation[i] * (shape->kernel[i] - 1);
        padding_l[i] = reach - layer->padding_l[i];
        padding_r[i] = reach - layer->padding_r[i];
    }
    dnnl_convolution_desc_t desc;
    if (od_dnnl_check(dnnl_dilated_convolution_forward_desc_init(
                          &desc, dnnl_forward_inference, dnnl_convolution_direct, &layer->dst_md, &any_md,
                          NULL, &layer->src_md, layer->strides, layer->dilates, padding_l, padding_r),
                      "describing the input-gradient convolution", err))
        return -1;
    int accumulate = shape->input_grad_mode == OD_CONV_GRAD_ACCUMULATE;
    dnnl_primitive_attr_t attr = new_attr(accumulate, err);
    if (attr == NULL)
        return -1;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t status = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (od_dnnl_check(status, "creating the input-gradient convolution", err))
        return -1;

    const dnnl_memory_desc_t *chosen = query_md(pd, dnnl_query_weights_md);
    int rc = 0;
    layer->flipped_weight = od_alloc_floats(layer->weight_count);
    if (layer->flipped_weight == NULL)
        rc = od_fail(err, "out of memory for the input-gradient weight");
    if (rc == 0)
        rc = init_backward_data_weight(layer, &plain_md, chosen, layer->flipped_weight, err);
    const float *kernel = layer->backward_data_weight != NULL ? layer->backward_data_weight : layer->flipped_weight;
    od_dnnl_step *step = &layer->backward_data;
    if (rc || step_create(layer, step, pd, "creating the input-gradient convolution", err) ||
        step_add(step, DNNL_ARG_SRC, &layer->dst_md, NULL, "binding d_out", err) ||
        step_add(step, DNNL_ARG_WEIGHTS, chosen, (void *)kernel, "binding the weight", err) ||
        step_add(step, DNNL_ARG_DST, &layer->src_md, NULL, "binding d_in", err))
        rc = -1;
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int init_backward_data_native(od_conv_layer *layer, od_error *err)
{
    const od_conv_shape *shape = &layer->shape;
    dnnl_engine_t engine = od_dnnl_engine(err);
    if (engine == NULL)
        return -1;
    dnnl_memory_desc_t any_md;
    if (weight_md(&any_md, shape, shape->out_channels, shape->in_channels, 0, 1, err))
        return -1;
    dnnl_status_t status;
    dnnl_primitive_attr_t attr = new_attr(0, err);
    if (attr == NULL)
        return -1;
    dnnl_primitive_desc_t pd = NULL;
    if (shape->transposed) {
        dnnl_deconvolution_desc_t desc;
        status = dnnl_dilated_deconvolution_backward_data_desc_init(
            &desc, dnnl_deconvolution_direct, &layer->src_md, &any_md, &layer->dst_md, layer->strides,
            layer->dilates, layer->padding_l, layer->padding_r);
        if (status == dnnl_success)
            status = dnnl_primitive_desc_create(&pd, &desc, attr, engine, layer->forward_pd);
    } else {
        dnnl_convolution_desc_t desc;
        status = dnnl_dilated_convolution_backward_data_desc_init(
            &desc, dnnl_convolution_direct, &layer->src_md, &any_md, &layer->dst_md, layer->strides,
            layer->dilates, layer->padding_l, layer->padding_r);
        if (status == dnnl_success)
            status = dnnl_primitive_desc_create(&pd, &desc, attr, engine, layer->forward_pd);
    }
    dnnl_primitive_attr_destroy(attr);
    if (od_dnnl_check(status, "creating the backward-data primitive", err))
        return -1;

    const dnnl_memory_desc_t *chosen = query_md(pd, dnnl_query_weights_md);
    int rc = init_backward_data_weight(layer, &layer->user_weight_md, chosen, NULL, err);
    od_dnnl_step *step = &layer->backward_data;
    if (rc || step_create(layer, step, pd, "creating the backward-data primitive", err) ||
        step_add(step, DNNL_ARG_DIFF_DST, &layer->dst_md, NULL, "binding d_out", err) ||
        step_add(step, DNNL_ARG_WEIGHTS, chosen, layer->backward_data_weight, "binding the weight", err) ||
        step_add(step, DNNL_ARG_DIFF_SRC, &layer->src_md, NULL, "binding d_in", err))
        rc = -1;
    dnnl_primitive_desc_destroy(pd);
    if (rc)
        return -1;
    if (shape->input_grad_mode == OD_CONV_GRAD_ACCUMULATE) {
        layer->d_in_temp = od_alloc_floats(layer->in_count);
        if (layer->d_in_temp == NULL)
            return od_fail(err, "out of memory for the input-gradient buffer");
    }
    return 0;
}

static int init_backward_weights(od_conv_layer *layer, od_error *err)
{
    const od_conv_shape *shape = &layer->shape;
    dnnl_engine_t engine = od_dnnl_engine(err);
    if (engine == NULL)
        return -1;
    dnnl_memory_desc_t any_md;
    if (weight_md(&any_md, shape, shape->out_channels, shape->in_channels, 0, 1, err))
        return -1;
    const dnnl_memory_desc_t *bias = shape->has_bias ? &layer->bias_md : NULL;
    dnnl_status_t status;
    dnnl_primitive_attr_t attr = new_attr(0, err);
    if (attr == NULL)
        return -1;
    dnnl_primitive_desc_t pd = NULL;
    if (shape->transposed) {
        dnnl_deconvolution_desc_t desc;
        status = dnnl_dilated_deconvolution_backward_weights_desc_init(
            &desc, dnnl_deconvolution_direct, &layer->src_md, &any_md, bias, &layer->dst_md, layer->strides,
            layer->dilates, layer->padding_l, layer->padding_r);
        if (status == dnnl_success)
            status = dnnl_primitive_desc_create(&pd, &desc, attr, engine, layer->forward_pd);
    } else {
        dnnl_convolution_desc_t desc;
        status = dnnl_dilated_convolution_backward_weights_desc_init(
            &desc, dnnl_convolution_direct, &layer->src_md, &any_md, bias, &layer->dst_md, layer->strides,
            layer->dilates, layer->padding_l, layer->padding_r);
        if (status == dnnl_success)
            status = dnnl_primitive_desc_create(&pd, &desc, attr, engine, layer->forward_pd);
    }
    dnnl_primitive_attr_destroy(attr);
    if (od_dnnl_check(status, "creating the backward-weights primitive", err))
        return -1;

    /* The weight gradient goes through a reorder with a sum post-op in
     * every case, which both converts it to PyTorch's layout and adds it
     * into the caller's buffer. */
    const dnnl_memory_desc_t *chosen = query_md(pd, dnnl_query_diff_weights_md);
    int rc = 0;
    layer->diff_weight = alloc_md_floats(chosen);
    layer->diff_bias = od_alloc_floats(shape->out_channels);
    if (layer->diff_weight == NULL || layer->diff_bias == NULL)
        rc = od_fail(err, "out of memory for the weight gradient");
    od_dnnl_step *reorder = &layer->diff_weight_reorder;
    if (rc || make_reorder(layer, reorder, chosen, &layer->user_weight_md, 1, err) < 0 ||
        step_bind(reorder, DNNL_ARG_FROM, layer->diff_weight, err))
        rc = -1;
    od_dnnl_step *step = &layer->backward_weights;
    if (rc || step_create(layer, step, pd, "creating the backward-weights primitive", err) ||
        step_add(step, DNNL_ARG_SRC, &layer->src_md, NULL, "binding the input", err) ||
        step_add(step, DNNL_ARG_DIFF_DST, &layer->dst_md, NULL, "binding d_out", err) ||
        step_add(step, DNNL_ARG_DIFF_WEIGHTS, chosen, layer->diff_weight, "binding d_weight", err))
        rc = -1;
    if (rc == 0 && shape->has_bias &&
        step_add(step, DNNL_ARG_DIFF_BIAS, &layer->bias_md, layer->diff_bias, "binding d_bias", err))
        rc = -1;
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int init_backward(od_conv_layer *layer, od_error *err)
{
    size_t allocated = layer->scratchpad != NULL ? layer->scratchpad_bytes : 0;
    layer->data_by_forward = can_compute_data_by_forward(layer);
    int rc = layer->data_by_forward ? init_backward_data_by_forward(layer, err)
                                    : init_backward_data_native(layer, err);
    if (rc == 0)
        rc = init_backward_weights(layer, err);
    if (rc == 0)
        rc = ensure_scratchpad(layer, allocated, err);
    if (rc == 0)
        layer->backward_ready = 1;
    return rc;
}

/* ---- backward: execution --------------------------------------------- */

/* Writes the reverse convolution's plain weight (G, Cin / G, Cout / G, k...)
 * from PyTorch's (G, Cout / G, Cin / G, k...), flipping every spatial axis. */
static void flip_weight(float *flipped, const float *weight, const od_conv_shape *shape)
{
    int64_t groups = shape->groups;
    int64_t out_per_group = shape->out_channels / groups;
    int64_t in_per_group = shape->in_channels / groups;
    int64_t taps = product(shape->kernel, shape->spatial);
    for (int64_t g = 0; g < groups; g++)
        for (int64_t o = 0; o < out_per_group; o++)
            for (int64_t i = 0; i < in_per_group; i++) {
                const float *source = weight + ((g * out_per_group + o) * in_per_group + i) * taps;
                float *target = flipped + ((g * in_per_group + i) * out_per_group + o) * taps;
                /* Reversing the flat tap index reverses every spatial axis. */
                for (int64_t t = 0; t < taps; t++)
                    target[t] = source[taps - 1 - t];
            }
}

static void add_into(float *target, const float *source, int64_t count)
{
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; i++)
        target[i] += source[i];
}

static int backward_data(od_conv_layer *layer, float *d_in, const float *d_out, const float *weight,
                         od_error *err)
{
    od_dnnl_step *step = &layer->backward_data;
    od_dnnl_step *reorder = &layer->backward_data_weight_reorder;
    if (layer->data_by_forward) {
        flip_weight(layer->flipped_weight, weight, &layer->shape);
        if (layer->backward_data_weight != NULL && step_run(layer, reorder, "reordering the weight", err))
            return -1;
        /* The sum post-op, present in accumulate mode, adds into d_in. */
        if (step_bind(step, DNNL_ARG_SRC, d_out, err) || step_bind(step, DNNL_ARG_DST, d_in, err))
            return -1;
        return step_run(layer, step, "computing the input gradient", err);
    }

    if (layer->backward_data_weight != NULL) {
        if (step_bind(reorder, DNNL_ARG_FROM, weight, err) || step_run(layer, reorder, "reordering the weight", err))
            return -1;
    } else if (step_bind(step, DNNL_ARG_WEIGHTS, weight, err)) {
        return -1;
    }
    float *target = layer->d_in_temp != NULL ? layer->d_in_temp : d_in;
    if (step_bind(step, DNNL_ARG_DIFF_DST, d_out, err) || step_bind(step, DNNL_ARG_DIFF_SRC, target, err) ||
        step_run(layer, step, "computing the input gradient", err))
        return -1;
    if (layer->d_in_temp != NULL)
        add_into(d_in, layer->d_in_temp, layer->in_count);
    return 0;
}

static int backward_weights(od_conv_layer *layer, float *d_weight, float *d_bias, const float *d_out,
                            const float *in, od_error *err)
{
    od_dnnl_step *step = &layer->backward_weights;
    if (step_bind(step, DNNL_ARG_SRC, in, err) || step_bind(step, DNNL_ARG_DIFF_DST, d_out, err) ||
        step_run(layer, step, "computing the weight gradient", err))
        return -1;
    if (d_weight != NULL) {
        od_dnnl_step *reorder = &layer->diff_weight_reorder;
        if (step_bind(reorder, DNNL_ARG_TO, d_weight, err) ||
            step_run(layer, reorder, "adding the weight gradient", err))
            return -1;
    }
    if (d_bias != NULL)
        for (int64_t c = 0; c < layer->shape.out_channels; c++)
            d_bias[c] += layer->diff_bias[c];
    return 0;
}

int od_conv_layer_backward(od_conv_layer *layer, float *d_in, float *d_weight, float *d_bias,
                           const float *d_out, const float *in, const float *weight, od_error *err)
{
    if (layer->path == OD_CONV_PATH_GEMM) {
        od_conv_gemm_backward(layer, d_in, d_weight, d_bias, d_out, in, weight);
        return 0;
    }
    if (!layer->backward_ready && init_backward(layer, err))
        return od_fail_context(err, "%s backward", layer->shape.kind);
    if (d_in != NULL && backward_data(layer, d_in, d_out, weight, err))
        return od_fail_context(err, "%s backward", layer->shape.kind);
    /* oneDNN computes the bias gradient with the weight gradient. When
     * only d_bias is requested, the weight gradient is computed and dropped. */
    if ((d_weight != NULL || d_bias != NULL) && backward_weights(layer, d_weight, d_bias, d_out, in, err))
        return od_fail_context(err, "%s backward", layer->shape.kind);
    return 0;
}

/* ---- deterministic column sums --------------------------------------- */

void od_conv_add_column_sums(float *sums, const float *x, int64_t rows, int64_t cols, float *partials)
{
    int64_t chunk = (rows + OD_CONV_SUM_CHUNKS - 1) / OD_CONV_SUM_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < OD_CONV_SUM_CHUNKS; c++) {
        float *partial = partials + c * cols;
        for (int64_t j = 0; j < cols; j++)
            partial[j] = 0.0f;
        int64_t end = (c + 1) * chunk < rows ? (c + 1) * chunk : rows;
        for (int64_t r = c * chunk; r < end; r++) {
            const float *row = x + r * cols;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++)
                partial[j] += row[j];
        }
    }
    for (int64_t c = 0; c < OD_CONV_SUM_CHUNKS; c++)
        for (int64_t j = 0; j < cols; j++)
            sums[j] += partials[c * cols + j];
}
