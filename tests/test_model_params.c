/* Tests of the named parameter set: initialisation by PyTorch's default
 * rules, zero-grad, safetensors checkpoints with shape checks, and the
 * bridge to Adam. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/params.h"
#include "testlib.h"

/* A conv weight (8, 4, 3, 3, 3), its bias, a batch-norm pair and a
 * running-mean buffer, registered in the given order. */
static od_params *small_set(int reversed)
{
    od_error err;
    od_params *params = od_params_new(&err);
    const int64_t weight_shape[5] = {8, 4, 3, 3, 3};
    const int64_t channel_shape[1] = {8};
    for (int step = 0; step < 2; step++) {
        if (step == reversed) {
            od_params_add(params, "conv.weight", 5, weight_shape, 1, OD_PARAM_INIT_KAIMING_UNIFORM, 0, &err);
            od_params_add(params, "conv.bias", 1, channel_shape, 1, OD_PARAM_INIT_BIAS, 4 * 27, &err);
        } else {
            od_params_add(params, "bn.weight", 1, channel_shape, 1, OD_PARAM_INIT_ONES, 0, &err);
            od_params_add(params, "bn.bias", 1, channel_shape, 1, OD_PARAM_INIT_ZEROS, 0, &err);
            od_params_add(params, "bn.running_mean", 1, channel_shape, 0, OD_PARAM_INIT_ZEROS, 0, &err);
        }
    }
    return params;
}

static void initialization_follows_pytorch_bounds(void)
{
    od_params *params = small_set(0);
    OD_CHECK(od_params_count(params) == 5);
    OD_CHECK(od_params_numel(params) == 8 * 4 * 27 + 8 * 3);
    od_params_initialize(params, 7);

    /* kaiming_uniform_(a = sqrt(5)) on (8, 4, 3, 3, 3): bound 1 / sqrt(4 * 27) */
    const od_param *weight = od_params_find(params, "conv.weight");
    double bound = 1.0 / sqrt(4.0 * 27.0), max_abs = 0.0, sum_squares = 0.0;
    for (int64_t i = 0; i < weight->count; i++) {
        max_abs = fmax(max_abs, fabs(weight->value[i]));
        sum_squares += (double)weight->value[i] * weight->value[i];
    }
    OD_CHECK(max_abs <= bound);
    OD_CHECK(max_abs > 0.9 * bound);
    /* uniform on [-b, b] has variance b^2 / 3; 864 samples land within 15 % */
    double variance = sum_squares / (double)weight->count;
    OD_CHECK(fabs(variance / (bound * bound / 3.0) - 1.0) < 0.15);

    const od_param *bias = od_params_find(params, "conv.bias");
    for (int64_t i = 0; i < bias->count; i++)
        OD_CHECK(fabs(bias->value[i]) <= bound);
    const od_param *gamma = od_params_find(params, "bn.weight");
    const od_param *beta = od_params_find(params, "bn.bias");
    OD_CHECK(gamma->value[0] == 1.0f && gamma->value[7] == 1.0f);
    OD_CHECK(beta->value[0] == 0.0f && beta->value[7] == 0.0f);
    OD_CHECK(od_params_find(params, "bn.running_mean")->grad == NULL);
    od_params_free(params);
}

static void initialization_ignores_registration_order(void)
{
    od_params *forward = small_set(0);
    od_params *reversed = small_set(1);
    od_params *other_seed = small_set(0);
    od_params_initialize(forward, 11);
    od_params_initialize(reversed, 11);
    od_params_initialize(other_seed, 12);
    const od_param *a = od_params_find(forward, "conv.weight");
    const od_param *b = od_params_find(reversed, "conv.weight");
    const od_param *c = od_params_find(other_seed, "conv.weight");
    OD_CHECK_IDENTICAL("conv.weight", a->value, b->value, a->count);
    OD_CHECK(memcmp(a->value, c->value, (size_t)a->count * sizeof(float)) != 0);
    od_params_free(forward);
    od_params_free(reversed);
    od_params_free(other_seed);
}

static void repeated_or_invalid_names_rejected(void)
{
    od_error err;
    od_params *params = small_set(0);
    const int64_t shape[1] = {3};
    OD_CHECK(od_params_add(params, "conv.bias", 1, shape, 1, OD_PARAM_INIT_ZEROS, 0, &err) == NULL);
    OD_CHECK(strstr(err.message, "conv.bias") != NULL);
    OD_CHECK(od_params_add(params, "", 1, shape, 1, OD_PARAM_INIT_ZEROS, 0, &err) == NULL);
    OD_CHECK(od_params_add(params, "bias_without_fan_in", 1, shape, 1, OD_PARAM_INIT_BIAS, 0, &err) == NULL);
    od_params_free(params);
}

static void zero_grad_clears_gradients(void)
{
    od_params *params = small_set(0);
    od_param *weight = od_params_find(params, "conv.weight");
    weight->grad[5] = 3.0f;
    od_params_find(params, "bn.bias")->grad[2] = -1.0f;
    od_params_zero_grad(params);
    OD_CHECK(weight->grad[5] == 0.0f);
    OD_CHECK(od_params_find(params, "bn.bias")->grad[2] == 0.0f);
    od_params_free(params);
}

static void checkpoint_round_trip(void)
{
    od_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/params.safetensors", od_test_temp_dir());
    od_params *saved = small_set(0);
    od_params_initialize(saved, 3);
    od_params_find(saved, "bn.running_mean")->value[4] = 0.25f;
    OD_CHECK(od_params_save(saved, path, &err) == 0);

    od_params *loaded = small_set(1);
    int rc = od_params_load(loaded, path, &err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(rc == 0);
    for (int i = 0; i < od_params_count(saved); i++) {
        const od_param *p = od_params_at(saved, i);
        const od_param *q = od_params_find(loaded, p->name);
        OD_CHECK(q != NULL);
        if (q != NULL)
            OD_CHECK_IDENTICAL(p->name, p->value, q->value, p->count);
    }
    od_params_free(saved);
    od_params_free(loaded);
}

static void checkpoint_mismatch_names_tensor(void)
{
    od_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/params.safetensors", od_test_temp_dir());
    od_params *saved = small_set(0);
    od_params_initialize(saved, 3);
    OD_CHECK(od_params_save(saved, path, &err) == 0);

    /* another shape for conv.weight; the set must stay unchanged */
    od_params *wider = od_params_new(&err);
    const int64_t wide_shape[5] = {8, 5, 3, 3, 3};
    const int64_t channel_shape[1] = {8};
    od_param *weight = od_params_add(wider, "conv.weight", 5, wide_shape, 1, OD_PARAM_INIT_KAIMING_UNIFORM, 0, &err);
    od_params_add(wider, "conv.bias", 1, channel_shape, 1, OD_PARAM_INIT_BIAS, 5 * 27, &err);
    od_params_add(wider, "bn.weight", 1, channel_shape, 1, OD_PARAM_INIT_ONES, 0, &err);
    od_params_add(wider, "bn.bias", 1, channel_shape, 1, OD_PARAM_INIT_ZEROS, 0, &err);
    od_param *mean = od_params_add(wider, "bn.running_mean", 1, channel_shape, 0, OD_PARAM_INIT_ZEROS, 0, &err);
    od_params_initialize(wider, 5);
    float first = weight->value[0];
    OD_CHECK(od_params_load(wider, path, &err) == -1);
    OD_CHECK(strstr(err.message, "\"conv.weight\" has shape (8, 4, 3, 3, 3), expected (8, 5, 3, 3, 3)") != NULL);
    OD_CHECK(strstr(err.message, path) != NULL);
    OD_CHECK(weight->value[0] == first);
    OD_CHECK(mean->value[0] == 0.0f);

    /* a tensor missing from the file */
    od_params *more = small_set(0);
    od_params_add(more, "extra.weight", 1, channel_shape, 1, OD_PARAM_INIT_ZEROS, 0, &err);
    OD_CHECK(od_params_load(more, path, &err) == -1);
    OD_CHECK(strstr(err.message, "\"extra.weight\" is missing") != NULL);

    /* a tensor in the file that the set lacks */
    od_params *fewer = od_params_new(&err);
    od_params_add(fewer, "conv.weight", 5, (const int64_t[]){8, 4, 3, 3, 3}, 1, OD_PARAM_INIT_ZEROS, 0, &err);
    OD_CHECK(od_params_load(fewer, path, &err) == -1);
    OD_CHECK(strstr(err.message, "unexpected tensor") != NULL);

    OD_CHECK(od_params_load(fewer, "/nonexistent/params.safetensors", &err) == -1);
    od_params_free(saved);
    od_params_free(wider);
    od_params_free(more);
    od_params_free(fewer);
}

static void adam_bridge_registers_by_prefix(void)
{
    od_error err;
    od_params *params = small_set(0);
    od_params_initialize(params, 9);
    od_adam *adam = od_adam_new(&err);
    od_adam_group_config backbone = od_adam_group_defaults(1e-2);
    od_adam_group_config matcher = od_adam_group_defaults(2e-2);
    OD_CHECK(od_adam_add_group(adam, &backbone, &err) == 0);
    OD_CHECK(od_adam_add_group(adam, &matcher, &err) == 1);

    int registered = -1;
    OD_CHECK(od_params_add_to_adam(params, adam, "conv.", 0, &registered, &err) == 0);
    OD_CHECK(registered == 2);
    /* everything left, but never the buffer or a tensor registered already */
    OD_CHECK(od_params_add_to_adam(params, adam, "", 1, &registered, &err) == 0);
    OD_CHECK(registered == 2);
    OD_CHECK(od_adam_param_count(adam) == 4);

    od_param *bias = od_params_find(params, "conv.bias");
    od_param *beta = od_params_find(params, "bn.bias");
    float bias_before = bias->value[0];
    bias->grad[0] = 1.0f;
    beta->grad[0] = -1.0f;
    od_adam_step(adam);
    /* Adam's first step moves by lr * sign(grad) (up to eps) */
    OD_CHECK(fabsf(bias->value[0] - (bias_before - 1e-2f)) < 1e-6f);
    OD_CHECK(fabsf(beta->value[0] - 2e-2f) < 1e-6f);
    od_adam_free(adam);
    od_params_free(params);
}

int main(void)
{
    OD_RUN(initialization_follows_pytorch_bounds);
    OD_RUN(initialization_ignores_registration_order);
    OD_RUN(repeated_or_invalid_names_rejected);
    OD_RUN(zero_grad_clears_gradients);
    OD_RUN(checkpoint_round_trip);
    OD_RUN(checkpoint_mismatch_names_tensor);
    OD_RUN(adam_bridge_registers_by_prefix);
    return od_test_finish();
}
