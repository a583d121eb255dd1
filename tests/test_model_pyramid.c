/* Tests of the 2D feature pyramid against PyTorch (scripts/refs/model.py):
 * the merged map, every input's gradient and every parameter's gradient. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "model/pyramid.h"
#include "testlib.h"

/* Element-wise: |got - want| <= ATOL + RTOL |want|. The float32 sums of a
 * few dozen terms stay inside it, while a wrong sampling rule (corner
 * alignment tried) misses by errors of order 1. */
#define ATOL 1e-5f
#define RTOL 1e-4f

typedef struct fixture {
    od_safetensors *reference;
    od_pyramid_config config;
    od_params *params;
    od_pyramid *pyramid;
    od_tensor *inputs[3];
} fixture;

static int fixture_open(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->reference = od_test_load_reference("model_pyramid");
    if (f->reference == NULL)
        return -1;
    od_error err;
    int64_t count = 0;
    int32_t *sizes = od_safetensors_get_int(f->reference, "config", &count, &err);
    OD_CHECK(sizes != NULL && count == 8);
    if (sizes == NULL || count != 8) {
        free(sizes);
        return -1;
    }
    f->config = (od_pyramid_config){
        .batch = sizes[0], .height = sizes[1], .width = sizes[2], .levels = sizes[3],
        .in_channels = {sizes[4], sizes[5], sizes[6]}, .out_channels = sizes[7],
    };
    free(sizes);
    f->params = od_params_new(&err);
    f->pyramid = od_pyramid_new(&f->config, f->params, "", &err);
    OD_CHECK(f->pyramid != NULL);
    if (f->pyramid == NULL)
        return -1;
    OD_CHECK(od_params_count(f->params) == 6);
    for (int i = 0; i < od_params_count(f->params); i++) {
        od_param *p = od_params_at(f->params, i);
        od_tensor *value = od_test_tensor(f->reference, p->name);
        if (value == NULL)
            return -1;
        OD_CHECK(od_tensor_has_shape(value, p->ndim, p->shape));
        memcpy(p->value, value->data, (size_t)p->count * sizeof(float));
        od_tensor_free(value);
    }
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "input.%d", i);
        f->inputs[i] = od_test_tensor(f->reference, name);
        if (f->inputs[i] == NULL)
            return -1;
    }
    return 0;
}

static void fixture_close(fixture *f)
{
    od_pyramid_free(f->pyramid);
    od_params_free(f->params);
    for (int i = 0; i < 3; i++)
        od_tensor_free(f->inputs[i]);
    od_safetensors_free(f->reference);
}

static void forward_backward_match_pytorch(void)
{
    fixture f;
    if (fixture_open(&f) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    const od_pyramid_config *c = &f.config;
    const int64_t out_count = c->batch * c->height * c->width * c->out_channels;
    float *out = od_alloc_floats(out_count);
    float *d_inputs[3];
    for (int i = 0; i < 3; i++)
        d_inputs[i] = od_alloc_floats(od_tensor_numel(f.inputs[i]));
    od_tensor *want_out = od_test_tensor(f.reference, "output");
    od_tensor *d_out = od_test_tensor(f.reference, "d_output");
    if (want_out == NULL || d_out == NULL)
        goto done;

    const float *inputs[3] = {f.inputs[0]->data, f.inputs[1]->data, f.inputs[2]->data};
    OD_CHECK(od_pyramid_forward(f.pyramid, inputs, out, &err) == 0);
    OD_CHECK_CLOSE("output", out, want_out->data, out_count, ATOL, RTOL);

    od_params_zero_grad(f.params);
    OD_CHECK(od_pyramid_backward(f.pyramid, d_out->data, d_inputs, &err) == 0);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "grad.input.%d", i);
        od_tensor *want = od_test_tensor(f.reference, name);
        if (want != NULL)
            OD_CHECK_CLOSE(name, d_inputs[i], want->data, od_tensor_numel(want), ATOL, RTOL);
        od_tensor_free(want);
    }
    for (int i = 0; i < od_params_count(f.params); i++) {
        const od_param *p = od_params_at(f.params, i);
        char name[OD_PARAM_NAME_SIZE + 8];
        snprintf(name, sizeof name, "grad.%s", p->name);
        od_tensor *want = od_test_tensor(f.reference, name);
        if (want != NULL)
            OD_CHECK_CLOSE(name, p->grad, want->data, p->count, ATOL, RTOL);
        od_tensor_free(want);
    }

    /* without input gradients only the parameters' gradients grow */
    const od_param *bias = od_params_find(f.params, "lateral.2.bias");
    float before = bias->grad[0];
    OD_CHECK(od_pyramid_backward(f.pyramid, d_out->data, NULL, &err) == 0);
    OD_CHECK(fabsf(bias->grad[0] - 2.0f * before) <= 1e-5f * fabsf(before) + 1e-6f);

done:
    od_tensor_free(want_out);
    od_tensor_free(d_out);
    od_free(out);
    for (int i = 0; i < 3; i++)
        od_free(d_inputs[i]);
    fixture_close(&f);
}

static void invalid_sizes_rejected(void)
{
    od_error err;
    od_params *params = od_params_new(&err);
    od_pyramid_config c = {.batch = 1, .height = 8, .width = 10, .levels = 3, .in_channels = {2, 2, 2},
                           .out_channels = 4};
    OD_CHECK(od_pyramid_new(&c, params, "", &err) == NULL);
    OD_CHECK(strstr(err.message, "multiples of 4") != NULL);
    c.width = 8;
    c.in_channels[2] = 0;
    OD_CHECK(od_pyramid_new(&c, params, "", &err) == NULL);
    OD_CHECK(strstr(err.message, "level 2") != NULL);
    c.in_channels[2] = 2;
    od_pyramid *pyramid = od_pyramid_new(&c, params, "encoder.", &err);
    OD_CHECK(pyramid != NULL);
    OD_CHECK(od_params_find(params, "encoder.lateral.1.weight") != NULL);
    OD_CHECK(od_pyramid_backward(pyramid, NULL, NULL, &err) == -1);
    od_pyramid_free(pyramid);
    od_params_free(params);
}

int main(void)
{
    OD_RUN(forward_backward_match_pytorch);
    OD_RUN(invalid_sizes_rejected);
    return od_test_finish();
}
