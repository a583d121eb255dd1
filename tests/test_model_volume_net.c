/* Tests of the 3D encoder-decoder with its heads against PyTorch
 * (scripts/refs/model.py): one training step's outputs, input gradient,
 * every parameter gradient and the updated running statistics, then an
 * inference forward with those statistics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "model/volume_net.h"
#include "testlib.h"

/* Each tensor must match PyTorch's float64 values within this relative L2
 * error, |got - want| / |want|. The float32 computation lands near 1e-6
 * (measured: at most 3e-6 over all tensors); a wiring mistake such as a
 * missing gradient term gives errors of order 1. The margin leaves room
 * for a ReLU input within rounding of zero falling on the other side. */
#define RELATIVE_L2_TOLERANCE 1e-4

static double relative_l2(const float *got, const float *want, int64_t count)
{
    double error_squares = 0.0, reference_squares = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double error = (double)got[i] - (double)want[i];
        error_squares += error * error;
        reference_squares += (double)want[i] * (double)want[i];
    }
    if (isnan(error_squares))
        return INFINITY;
    return sqrt(error_squares / (reference_squares > 0.0 ? reference_squares : 1.0));
}

/* Checks got against the reference tensor `name` of `count` elements. */
static void check_tensor(const od_safetensors *reference, const char *name, const float *got, int64_t count)
{
    od_tensor *want = od_test_tensor(reference, name);
    if (want == NULL)
        return;
    int sized = od_tensor_numel(want) == count;
    OD_CHECK(sized);
    if (sized) {
        double error = relative_l2(got, want->data, count);
        int close = error <= RELATIVE_L2_TOLERANCE;
        OD_CHECK(close);
        if (!close || getenv("ODDONE_TEST_VERBOSE") != NULL)
            fprintf(stderr, "  %-32s relative L2 error %.2g%s\n", name, error, close ? "" : "  MISMATCH");
    }
    od_tensor_free(want);
}

typedef struct fixture {
    od_safetensors *reference;
    od_volume_net_config config;
    od_params *params;
    od_volume_net *net;
    od_tensor *input;
    int64_t voxels; /* N * D * H * W */
} fixture;

static int fixture_open(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->reference = od_test_load_reference("model_volume_net");
    if (f->reference == NULL)
        return -1;
    int64_t count = 0;
    od_error err;
    int32_t *sizes = od_safetensors_get_int(f->reference, "config", &count, &err);
    OD_CHECK(sizes != NULL && count == 16);
    if (sizes == NULL || count != 16) {
        free(sizes);
        return -1;
    }
    od_volume_net_config *c = &f->config;
    c->batch = sizes[0];
    for (int axis = 0; axis < 3; axis++)
        c->dims[axis] = sizes[1 + axis];
    c->in_channels = sizes[4];
    c->levels = sizes[5];
    for (int l = 0; l < 3; l++) {
        c->channels[l] = sizes[6 + l];
        c->down_blocks[l] = sizes[9 + l];
    }
    c->up_blocks[0] = sizes[12];
    c->up_blocks[1] = sizes[13];
    c->head_hidden = sizes[14];
    c->feature_channels = sizes[15];
    c->batchnorm_momentum = 0.1f;
    free(sizes);
    f->voxels = c->batch * c->dims[0] * c->dims[1] * c->dims[2];

    f->params = od_params_new(&err);
    f->net = od_volume_net_new(c, f->params, "", &err);
    if (f->net == NULL)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(f->net != NULL);
    if (f->net == NULL)
        return -1;

    /* every parameter and running statistic from the reference */
    for (int i = 0; i < od_params_count(f->params); i++) {
        od_param *p = od_params_at(f->params, i);
        od_tensor *value = od_test_tensor(f->reference, p->name);
        if (value == NULL)
            return -1;
        OD_CHECK(od_tensor_has_shape(value, p->ndim, p->shape));
        memcpy(p->value, value->data, (size_t)p->count * sizeof(float));
        od_tensor_free(value);
    }
    f->input = od_test_tensor(f->reference, "input");
    return f->input != NULL ? 0 : -1;
}

static void fixture_close(fixture *f)
{
    od_volume_net_free(f->net);
    od_params_free(f->params);
    od_tensor_free(f->input);
    od_safetensors_free(f->reference);
}

static void training_step_matches_pytorch(void)
{
    fixture f;
    if (fixture_open(&f) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    const int64_t k = f.config.feature_channels;
    od_tensor *d_density = od_test_tensor(f.reference, "d_density");
    od_tensor *d_colour = od_test_tensor(f.reference, "d_colour");
    od_tensor *d_features = od_test_tensor(f.reference, "d_features");
    float *d_input = od_alloc_floats(f.voxels * f.config.in_channels);
    if (d_density == NULL || d_colour == NULL || d_features == NULL)
        goto done;

    od_params_zero_grad(f.params);
    OD_CHECK(od_volume_net_forward(f.net, f.input->data, 1, &err) == 0);
    check_tensor(f.reference, "density", od_volume_net_density(f.net), f.voxels);
    check_tensor(f.reference, "colour", od_volume_net_colour(f.net), f.voxels * 3);
    check_tensor(f.reference, "features", od_volume_net_features(f.net), f.voxels * k);

    OD_CHECK(od_volume_net_backward(f.net, d_density->data, d_colour->data, d_features->data, d_input, &err) == 0);
    check_tensor(f.reference, "grad.input", d_input, f.voxels * f.config.in_channels);
    int compared = 0;
    for (int i = 0; i < od_params_count(f.params); i++) {
        const od_param *p = od_params_at(f.params, i);
        char name[OD_PARAM_NAME_SIZE + 16];
        if (p->grad != NULL) {
            snprintf(name, sizeof name, "grad.%s", p->name);
            check_tensor(f.reference, name, p->grad, p->count);
        } else {
            snprintf(name, sizeof name, "after.%s", p->name);
            check_tensor(f.reference, name, p->value, p->count);
        }
        compared++;
    }
    /* Every tensor of the set has a reference, so none was left out. */
    OD_CHECK(compared == od_params_count(f.params));
    OD_CHECK(compared > 100);

    /* inference with the updated running statistics */
    OD_CHECK(od_volume_net_forward(f.net, f.input->data, 0, &err) == 0);
    check_tensor(f.reference, "eval.density", od_volume_net_density(f.net), f.voxels);
    check_tensor(f.reference, "eval.colour", od_volume_net_colour(f.net), f.voxels * 3);
    check_tensor(f.reference, "eval.features", od_volume_net_features(f.net), f.voxels * k);
    /* the inference forward keeps nothing for a backward */
    OD_CHECK(od_volume_net_backward(f.net, d_density->data, NULL, NULL, NULL, &err) == -1);
    OD_CHECK(strstr(err.message, "training forward") != NULL);

done:
    od_tensor_free(d_density);
    od_tensor_free(d_colour);
    od_tensor_free(d_features);
    od_free(d_input);
    fixture_close(&f);
}

/* Two steps on the same input give the same gradients twice over, and a
 * head without a loss leaves its parameters' gradients at zero. */
static void backward_accumulates_and_skips_heads(void)
{
    fixture f;
    if (fixture_open(&f) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    od_tensor *d_density = od_test_tensor(f.reference, "d_density");
    if (d_density == NULL) {
        fixture_close(&f);
        return;
    }
    od_params_zero_grad(f.params);
    OD_CHECK(od_volume_net_forward(f.net, f.input->data, 1, &err) == 0);
    OD_CHECK(od_volume_net_backward(f.net, d_density->data, NULL, NULL, NULL, &err) == 0);
    const od_param *stem = od_params_find(f.params, "stem.0.weight");
    const od_param *colour = od_params_find(f.params, "colour_head.2.weight");
    float *once = od_alloc_floats(stem->count);
    memcpy(once, stem->grad, (size_t)stem->count * sizeof(float));
    double colour_sum = 0.0;
    for (int64_t i = 0; i < colour->count; i++)
        colour_sum += fabs(colour->grad[i]);
    OD_CHECK(colour_sum == 0.0);

    /* the running statistics move, but the training forward uses batch
     * statistics, so the second step's gradients equal the first's */
    OD_CHECK(od_volume_net_forward(f.net, f.input->data, 1, &err) == 0);
    OD_CHECK(od_volume_net_backward(f.net, d_density->data, NULL, NULL, NULL, &err) == 0);
    double error = 0.0, norm = 0.0;
    for (int64_t i = 0; i < stem->count; i++) {
        error += fabs(stem->grad[i] - 2.0 * once[i]);
        norm += fabs(once[i]);
    }
    OD_CHECK(norm > 0.0);
    OD_CHECK(error <= 1e-5 * norm);
    od_free(once);
    od_tensor_free(d_density);
    fixture_close(&f);
}

/* Runs one training step of a fresh network from the reference's
 * parameters and returns a copy of every gradient, concatenated. */
static float *step_gradients(int64_t *count)
{
    fixture f;
    float *gradients = NULL;
    *count = 0;
    if (fixture_open(&f) != 0) {
        fixture_close(&f);
        return NULL;
    }
    od_error err;
    od_tensor *d_features = od_test_tensor(f.reference, "d_features");
    od_tensor *d_colour = od_test_tensor(f.reference, "d_colour");
    if (d_features != NULL && d_colour != NULL) {
        od_params_zero_grad(f.params);
        OD_CHECK(od_volume_net_forward(f.net, f.input->data, 1, &err) == 0);
        OD_CHECK(od_volume_net_backward(f.net, NULL, d_colour->data, d_features->data, NULL, &err) == 0);
        gradients = od_alloc_floats(od_params_numel(f.params));
        for (int i = 0; i < od_params_count(f.params); i++) {
            const od_param *p = od_params_at(f.params, i);
            if (p->grad == NULL)
                continue;
            memcpy(gradients + *count, p->grad, (size_t)p->count * sizeof(float));
            *count += p->count;
        }
    }
    od_tensor_free(d_features);
    od_tensor_free(d_colour);
    fixture_close(&f);
    return gradients;
}

static void training_step_is_reproducible(void)
{
    int64_t first_count, second_count;
    float *first = step_gradients(&first_count);
    float *second = step_gradients(&second_count);
    OD_CHECK(first != NULL && second != NULL);
    OD_CHECK(first_count == second_count && first_count > 0);
    if (first != NULL && second != NULL && first_count == second_count)
        OD_CHECK_IDENTICAL("gradients", first, second, first_count);
    od_free(first);
    od_free(second);
}

/* A checkpoint written after a training step carries the running
 * statistics, so a network loaded from it infers the same outputs. */
static void checkpoint_restores_inference(void)
{
    fixture f;
    if (fixture_open(&f) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/volume_net.safetensors", od_test_temp_dir());
    OD_CHECK(od_volume_net_forward(f.net, f.input->data, 1, &err) == 0);
    OD_CHECK(od_volume_net_forward(f.net, f.input->data, 0, &err) == 0);
    OD_CHECK(od_params_save(f.params, path, &err) == 0);

    od_params *params = od_params_new(&err);
    od_volume_net *loaded = od_volume_net_new(&f.config, params, "", &err);
    OD_CHECK(loaded != NULL);
    int rc = od_params_load(params, path, &err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(rc == 0);
    OD_CHECK(od_volume_net_forward(loaded, f.input->data, 0, &err) == 0);
    OD_CHECK_IDENTICAL("density", od_volume_net_density(loaded), od_volume_net_density(f.net), f.voxels);
    OD_CHECK_IDENTICAL("features", od_volume_net_features(loaded), od_volume_net_features(f.net),
                       f.voxels * f.config.feature_channels);
    /* the step moved the statistics away from the reference's starting values */
    const od_param *mean = od_params_find(params, "down.2.1.bn2.running_mean");
    od_tensor *start = od_test_tensor(f.reference, "down.2.1.bn2.running_mean");
    if (start != NULL)
        OD_CHECK(memcmp(mean->value, start->data, (size_t)mean->count * sizeof(float)) != 0);
    od_tensor_free(start);
    od_volume_net_free(loaded);
    od_params_free(params);
    fixture_close(&f);
}

static void invalid_sizes_rejected(void)
{
    od_error err;
    od_params *params = od_params_new(&err);
    od_volume_net_config c = {
        .batch = 1, .dims = {4, 6, 8}, .in_channels = 2, .levels = 3, .channels = {2, 3, 4},
        .down_blocks = {1, 1, 1}, .up_blocks = {1, 1}, .head_hidden = 4, .feature_channels = 2,
        .batchnorm_momentum = 0.1f,
    };
    /* 6 cannot be halved twice */
    OD_CHECK(od_volume_net_new(&c, params, "", &err) == NULL);
    OD_CHECK(strstr(err.message, "multiple of 4") != NULL);
    c.dims[1] = 8;
    c.up_blocks[1] = 0;
    OD_CHECK(od_volume_net_new(&c, params, "", &err) == NULL);
    OD_CHECK(od_params_count(params) == 0);

    /* a clash with a tensor already in the set */
    c.up_blocks[1] = 1;
    od_volume_net *first = od_volume_net_new(&c, params, "a.", &err);
    OD_CHECK(first != NULL);
    OD_CHECK(od_volume_net_new(&c, params, "a.", &err) == NULL);
    OD_CHECK(strstr(err.message, "a.stem.0.weight") != NULL);
    od_volume_net_free(first);
    od_params_free(params);
}

static void cpu_config_builds(void)
{
    od_error err;
    od_model_config model;
    OD_CHECK(od_model_config_load(od_test_source_path("configs/cpu.json"), &model, &err) == 0);
    od_volume_net_config c = od_volume_net_config_from_model(&model);
    OD_CHECK(c.dims[0] == 16 && c.dims[1] == 64 && c.dims[2] == 64);
    OD_CHECK(c.in_channels == 32 && c.feature_channels == 64);
    od_params *params = od_params_new(&err);
    od_volume_net *net = od_volume_net_new(&c, params, "volume_net.", &err);
    OD_CHECK(net != NULL);
    OD_CHECK(od_params_find(params, "volume_net.up.1.1.bn2.running_var") != NULL);
    OD_CHECK(od_params_find(params, "volume_net.down.2.2.conv2.weight") != NULL);
    /* The convolutions make 5.43 GMAC (bench_encdec's count of the same
     * encoder-decoder) and the three heads 65536 x 3712 MAC = 0.24 GMAC. */
    double gmacs = od_volume_net_forward_macs(net) * 1e-9;
    OD_CHECK(fabs(gmacs - 5.672) < 0.01);
    od_volume_net_free(net);
    od_params_free(params);
}

int main(void)
{
    OD_RUN(training_step_matches_pytorch);
    OD_RUN(backward_accumulates_and_skips_heads);
    OD_RUN(training_step_is_reproducible);
    OD_RUN(checkpoint_restores_inference);
    OD_RUN(invalid_sizes_rejected);
    OD_RUN(cpu_config_builds);
    return od_test_finish();
}
