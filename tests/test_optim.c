/* Adam and gradient clipping against torch.optim.Adam, torch.optim.AdamW
 * and torch.nn.utils.clip_grad_norm_ (scripts/refs/optim.py) after every
 * step; resuming from saved state; rejected state files and settings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/optim.h"
#include "testlib.h"

#define MAX_PARAMS 16

/* Both sides run the same float32 operations per element, so values agree
 * to an ulp or two of the parameter per step (VALUE_*). Clipping norms can
 * differ in the last bit (PyTorch sums in float32, this code in float64).
 * The update (value - initial value) is compared too, because at lr 1e-5
 * an ulp of the value is a sizable part of one step. A misplaced eps or
 * bias correction moves the update by far more than 2e-5 relative plus
 * two ulps of a value near 1. */
#define VALUE_ATOL 1e-7f
#define VALUE_RTOL 3e-7f
#define UPDATE_ATOL 2e-7f
#define UPDATE_RTOL 2e-5f
/* The first moment is a running sum of gradients of both signs, so it
 * can cancel to far below the gradients: an absolute floor of 1e-8 (an
 * ulp or so of the gradients, which are of order 0.01 to 1). */
#define MOMENT_ATOL 1e-8f
#define MOMENT_RTOL 2e-6f
#define NORM_RTOL 1e-6f
/* An optimizer built from a reference file's metadata, with its own copies
 * of the initial values. */
typedef struct reference_run {
    od_safetensors *reference;
    od_adam *adam;
    int param_count;
    char names[MAX_PARAMS][64];
    od_tensor *value[MAX_PARAMS];
    od_tensor *grad[MAX_PARAMS];
    od_tensor *init[MAX_PARAMS];
    int steps;
    double max_norm;
} reference_run;

static double metadata_number(const od_safetensors *reference, const char *key)
{
    const char *text = od_safetensors_metadata(reference, key);
    OD_CHECK(text != NULL);
    return text != NULL ? strtod(text, NULL) : NAN;
}

static void free_run(reference_run *run)
{
    for (int i = 0; i < run->param_count; i++) {
        od_tensor_free(run->value[i]);
        od_tensor_free(run->grad[i]);
        od_tensor_free(run->init[i]);
    }
    od_adam_free(run->adam);
    od_safetensors_free(run->reference);
    memset(run, 0, sizeof *run);
}

static int open_run(reference_run *run, const char *file)
{
    memset(run, 0, sizeof *run);
    run->reference = od_test_load_reference(file);
    if (run->reference == NULL)
        return -1;
    const char *optimizer = od_safetensors_metadata(run->reference, "optimizer");
    int decoupled = optimizer != NULL && strcmp(optimizer, "adamw") == 0;
    run->steps = (int)metadata_number(run->reference, "steps");
    run->max_norm = metadata_number(run->reference, "max_norm");
    int groups = (int)metadata_number(run->reference, "groups");
    od_error err;
    run->adam = od_adam_new(&err);

    for (int g = 0; g < groups; g++) {
        char key[64];
        od_adam_group_config config;
        snprintf(key, sizeof key, "group%d.lr", g);
        config.lr = metadata_number(run->reference, key);
        snprintf(key, sizeof key, "group%d.beta1", g);
        config.beta1 = metadata_number(run->reference, key);
        snprintf(key, sizeof key, "group%d.beta2", g);
        config.beta2 = metadata_number(run->reference, key);
        snprintf(key, sizeof key, "group%d.eps", g);
        config.eps = metadata_number(run->reference, key);
        snprintf(key, sizeof key, "group%d.weight_decay", g);
        config.weight_decay = metadata_number(run->reference, key);
        config.decoupled_weight_decay = decoupled;
        OD_CHECK(od_adam_add_group(run->adam, &config, &err) == g);

        snprintf(key, sizeof key, "group%d.params", g);
        const char *list = od_safetensors_metadata(run->reference, key);
        OD_CHECK(list != NULL);
        char names[512];
        snprintf(names, sizeof names, "%s", list != NULL ? list : "");
        for (char *save = NULL, *name = strtok_r(names, ",", &save); name != NULL;
             name = strtok_r(NULL, ",", &save)) {
            int i = run->param_count++;
            snprintf(run->names[i], sizeof run->names[i], "%s", name);
            char tensor_name[128];
            snprintf(tensor_name, sizeof tensor_name, "%s.init", name);
            run->init[i] = od_test_tensor(run->reference, tensor_name);
            if (run->init[i] == NULL)
                return -1;
            run->value[i] = od_tensor_clone(run->init[i], &err);
            run->grad[i] = od_tensor_new(run->init[i]->ndim, run->init[i]->shape, &err);
            OD_CHECK(od_adam_add_param(run->adam, g, name, run->value[i]->data, run->grad[i]->data,
                                       run->value[i]->ndim, run->value[i]->shape, &err) == 0);
        }
    }
    OD_CHECK(run->param_count > 0 && od_adam_param_count(run->adam) == run->param_count);
    return 0;
}

/* Copies step `step`'s unclipped gradients into the gradient buffers. */
static void load_gradients(reference_run *run, int step)
{
    for (int i = 0; i < run->param_count; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.grad.%d", run->names[i], step);
        od_tensor *grad = od_test_tensor(run->reference, name);
        if (grad == NULL)
            continue;
        memcpy(run->grad[i]->data, grad->data, (size_t)od_tensor_numel(grad) * sizeof(float));
        od_tensor_free(grad);
    }
}

/* Clips, steps, and returns the norm clipping returned. */
static float clip_and_step(reference_run *run, int step)
{
    load_gradients(run, step);
    float norm = NAN;
    od_error err;
    OD_CHECK(od_adam_clip_grad_norm(run->adam, run->max_norm, &norm, &err) == 0);
    od_adam_step(run->adam);
    return norm;
}

static void check_values(reference_run *run, const char *file, int step)
{
    for (int i = 0; i < run->param_count; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s.value.%d", run->names[i], step);
        od_tensor *want = od_test_tensor(run->reference, name);
        if (want == NULL)
            continue;
        int64_t count = od_tensor_numel(want);
        snprintf(name, sizeof name, "%s %s after step %d", file, run->names[i], step + 1);
        OD_CHECK_CLOSE(name, run->value[i]->data, want->data, count, VALUE_ATOL, VALUE_RTOL);

        float *got_update = malloc((size_t)count * sizeof(float));
        float *want_update = malloc((size_t)count * sizeof(float));
        for (int64_t j = 0; j < count; j++) {
            got_update[j] = run->value[i]->data[j] - run->init[i]->data[j];
            want_update[j] = want->data[j] - run->init[i]->data[j];
        }
        snprintf(name, sizeof name, "%s %s update after step %d", file, run->names[i], step + 1);
        OD_CHECK_CLOSE(name, got_update, want_update, count, UPDATE_ATOL, UPDATE_RTOL);
        free(got_update);
        free(want_update);
        od_tensor_free(want);
    }
}

static void check_against_torch(const char *file)
{
    reference_run run;
    if (open_run(&run, file) != 0) {
        free_run(&run);
        return;
    }
    od_tensor *want_norms = od_test_tensor(run.reference, "total_norm");
    int clipped = 0, unclipped = 0;
    for (int step = 0; step < run.steps && want_norms != NULL; step++) {
        float norm = clip_and_step(&run, step);
        char name[128];
        snprintf(name, sizeof name, "%s total norm of step %d", file, step + 1);
        OD_CHECK_CLOSE(name, &norm, &want_norms->data[step], 1, 0.0f, NORM_RTOL);
        clipped += norm > run.max_norm;
        unclipped += norm < run.max_norm;
        check_values(&run, file, step);
    }
    // the reference must exercise both sides of max_norm
    OD_CHECK(clipped > 0 && unclipped > 0);

    for (int i = 0; i < run.param_count; i++) {
        char name[160];
        OD_CHECK(od_adam_param_steps(run.adam, i) == run.steps);
        int64_t count = od_tensor_numel(run.value[i]);
        snprintf(name, sizeof name, "%s.exp_avg", run.names[i]);
        od_tensor *want = od_test_tensor(run.reference, name);
        if (want != NULL)
            OD_CHECK_CLOSE(name, od_adam_exp_avg(run.adam, i), want->data, count, MOMENT_ATOL, MOMENT_RTOL);
        od_tensor_free(want);
        snprintf(name, sizeof name, "%s.exp_avg_sq", run.names[i]);
        want = od_test_tensor(run.reference, name);
        if (want != NULL)
            OD_CHECK_CLOSE(name, od_adam_exp_avg_sq(run.adam, i), want->data, count, MOMENT_ATOL,
                           MOMENT_RTOL);
        od_tensor_free(want);
    }
    od_tensor_free(want_norms);
    free_run(&run);
}

static void adam_product_settings_match_torch(void) { check_against_torch("optim_adam_product"); }

static void adam_momentum_and_l2_match_torch(void) { check_against_torch("optim_adam_general"); }

static void adamw_matches_torch(void) { check_against_torch("optim_adamw"); }

/* Three steps, save, load into a fresh optimizer over a copy of the
 * parameters, three more steps: the same bits as six uninterrupted steps. */
static void resume_from_saved_state_identical(void)
{
    reference_run whole, resumed;
    if (open_run(&whole, "optim_adam_general") != 0 || open_run(&resumed, "optim_adam_general") != 0) {
        free_run(&whole);
        free_run(&resumed);
        return;
    }
    char path[4200];
    const char *dir = od_test_temp_dir();
    snprintf(path, sizeof path, "%s/adam.safetensors", dir);
    od_error err;

    for (int step = 0; step < 3; step++)
        clip_and_step(&whole, step);
    OD_CHECK(od_adam_save(whole.adam, path, &err) == 0);
    for (int i = 0; i < whole.param_count; i++)
        memcpy(resumed.value[i]->data, whole.value[i]->data,
               (size_t)od_tensor_numel(whole.value[i]) * sizeof(float));
    OD_CHECK(od_adam_load(resumed.adam, path, &err) == 0);
    OD_CHECK(od_adam_param_steps(resumed.adam, 0) == 3);

    for (int step = 3; step < whole.steps; step++) {
        clip_and_step(&whole, step);
        clip_and_step(&resumed, step);
    }
    for (int i = 0; i < whole.param_count; i++) {
        int64_t count = od_tensor_numel(whole.value[i]);
        OD_CHECK_IDENTICAL(whole.names[i], resumed.value[i]->data, whole.value[i]->data, count);
        OD_CHECK_IDENTICAL("exp_avg_sq", od_adam_exp_avg_sq(resumed.adam, i),
                           od_adam_exp_avg_sq(whole.adam, i), count);
    }
    check_values(&resumed, "resumed", whole.steps - 1);

    unlink(path);
    rmdir(dir);
    free_run(&whole);
    free_run(&resumed);
}

/* Builds an optimizer over one parameter of the given shape named "w". */
static od_adam *single_param_adam(float *value, float *grad, int ndim, const int64_t *shape)
{
    od_adam_group_config config = od_adam_group_defaults(1e-3);
    od_adam *adam = od_adam_new(NULL);
    OD_CHECK(od_adam_add_group(adam, &config, NULL) == 0);
    OD_CHECK(od_adam_add_param(adam, 0, "w", value, grad, ndim, shape, NULL) == 0);
    return adam;
}

static void load_rejects_mismatched_state(void)
{
    char path[4200];
    const char *dir = od_test_temp_dir();
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    od_error err;

    float value[12] = {0}, grad[12] = {0}, other_value[3] = {0}, other_grad[3] = {0};
    for (int i = 0; i < 12; i++)
        grad[i] = (float)i - 5.0f;
    const int64_t shape[2] = {3, 4};
    od_adam *saved = single_param_adam(value, grad, 2, shape);
    od_adam_step(saved);
    OD_CHECK(od_adam_save(saved, path, &err) == 0);

    // same element count, other shape
    const int64_t transposed[2] = {4, 3};
    od_adam *wrong_shape = single_param_adam(value, grad, 2, transposed);
    od_adam_step(wrong_shape);
    OD_CHECK(od_adam_load(wrong_shape, path, &err) == -1);
    OD_CHECK(strstr(err.message, "\"w.exp_avg\" has shape (3, 4), expected (4, 3)") != NULL);
    // the failed load changed nothing
    OD_CHECK(od_adam_param_steps(wrong_shape, 0) == 1);
    OD_CHECK_IDENTICAL("moments kept", od_adam_exp_avg_sq(wrong_shape, 0), od_adam_exp_avg_sq(saved, 0), 12);

    // the optimizer has a parameter the file lacks
    od_adam *extra_param = single_param_adam(value, grad, 2, shape);
    const int64_t small[1] = {3};
    OD_CHECK(od_adam_add_param(extra_param, 0, "v", other_value, other_grad, 1, small, &err) == 0);
    OD_CHECK(od_adam_load(extra_param, path, &err) == -1);
    OD_CHECK(strstr(err.message, "\"v.exp_avg\" not found") != NULL);
    OD_CHECK(od_adam_param_steps(extra_param, 0) == 0);

    // the file has a parameter the optimizer lacks
    od_adam *renamed = od_adam_new(&err);
    od_adam_group_config config = od_adam_group_defaults(1e-3);
    OD_CHECK(od_adam_add_group(renamed, &config, &err) == 0);
    OD_CHECK(od_adam_add_param(renamed, 0, "u", value, grad, 2, shape, &err) == 0);
    OD_CHECK(od_adam_load(renamed, path, &err) == -1);
    OD_CHECK(strstr(err.message, "\"w.exp_avg\" belongs to no registered parameter") != NULL);

    // a safetensors file that is no optimizer state
    OD_CHECK(od_adam_load(saved, od_test_source_path("tests/ref/io_format.safetensors"), &err) == -1);
    OD_CHECK(strstr(err.message, "metadata \"format\" missing") != NULL);
    OD_CHECK(od_adam_load(saved, "/nonexistent/adam.safetensors", &err) == -1);
    OD_CHECK(strstr(err.message, "/nonexistent/adam.safetensors") != NULL);

    od_adam_free(saved);
    od_adam_free(wrong_shape);
    od_adam_free(extra_param);
    od_adam_free(renamed);
    unlink(path);
    rmdir(dir);
}

static void bad_settings_rejected(void)
{
    od_error err;
    od_adam *adam = od_adam_new(&err);
    od_adam_group_config config = od_adam_group_defaults(OD_ADAM_LR_BACKBONE);
    OD_CHECK(config.beta1 == 0.0 && config.beta2 == 0.999 && config.eps == 1e-8);

    config.beta1 = 1.0;
    OD_CHECK(od_adam_add_group(adam, &config, &err) == -1);
    OD_CHECK(strstr(err.message, "beta1 must be in [0, 1), got 1") != NULL);
    config = od_adam_group_defaults(-1e-5);
    OD_CHECK(od_adam_add_group(adam, &config, &err) == -1);
    OD_CHECK(strstr(err.message, "lr must be finite and >= 0, got -1e-05") != NULL);
    config = od_adam_group_defaults(1e-5);
    config.eps = NAN;
    OD_CHECK(od_adam_add_group(adam, &config, &err) == -1);
    OD_CHECK(strstr(err.message, "eps") != NULL);
    config = od_adam_group_defaults(1e-5);
    config.weight_decay = -0.1;
    OD_CHECK(od_adam_add_group(adam, &config, &err) == -1);
    OD_CHECK(strstr(err.message, "weight_decay") != NULL);

    float value[2] = {0}, grad[2] = {0};
    const int64_t shape[1] = {2};
    OD_CHECK(od_adam_add_param(adam, 0, "w", value, grad, 1, shape, &err) == -1);
    OD_CHECK(strstr(err.message, "group 0 does not exist (0 groups)") != NULL);
    config = od_adam_group_defaults(OD_ADAM_LR_MATCHER);
    OD_CHECK(od_adam_add_group(adam, &config, &err) == 0);
    OD_CHECK(od_adam_add_param(adam, 0, "w", value, grad, 1, shape, &err) == 0);
    OD_CHECK(od_adam_add_param(adam, 0, "w", value, grad, 1, shape, &err) == -1);
    OD_CHECK(strstr(err.message, "\"w\" added twice") != NULL);
    OD_CHECK(od_adam_add_param(adam, 0, "", value, grad, 1, shape, &err) == -1);
    OD_CHECK(strstr(err.message, "non-empty") != NULL);
    const int64_t negative[1] = {-2};
    OD_CHECK(od_adam_add_param(adam, 0, "n", value, grad, 1, negative, &err) == -1);
    OD_CHECK(strstr(err.message, "invalid shape") != NULL);
    OD_CHECK(od_adam_set_lr(adam, 3, 1e-4, &err) == -1);
    OD_CHECK(strstr(err.message, "group 3 does not exist") != NULL);
    OD_CHECK(od_adam_set_lr(adam, 0, 1e-4, &err) == 0);
    od_adam_free(adam);

    float norm;
    float *grads[1] = {grad};
    const int64_t counts[1] = {2};
    OD_CHECK(od_clip_grad_norm(grads, counts, 1, 0.0, &norm, &err) == -1);
    OD_CHECK(strstr(err.message, "max_norm must be finite and > 0, got 0") != NULL);
    const int64_t bad_counts[1] = {-1};
    OD_CHECK(od_clip_grad_norm(grads, bad_counts, 1, 1.0, &norm, &err) == -1);
    OD_CHECK(strstr(err.message, "tensor 0 has count -1") != NULL);
}

/* Below max_norm the gradients keep their bits; a NaN norm leaves them
 * alone too; empty tensors count for nothing. */
static void clip_below_max_norm_unchanged(void)
{
    float a[5] = {3, 0, 0, 0, 0}, b[1] = {4};
    const float a_before[5] = {3, 0, 0, 0, 0};
    float *grads[3] = {a, NULL, b};
    const int64_t counts[3] = {5, 0, 1};
    float norm = 0.0f;
    od_error err;
    OD_CHECK(od_clip_grad_norm(grads, counts, 3, 5.5, &norm, &err) == 0);
    OD_CHECK(norm == 5.0f);
    OD_CHECK_IDENTICAL("unclipped", a, a_before, 5);

    // above: scaled by max_norm / (norm + 1e-6)
    OD_CHECK(od_clip_grad_norm(grads, counts, 3, 1.0, &norm, &err) == 0);
    OD_CHECK(norm == 5.0f);
    const float want_a = 3.0f / (5.0f + 1e-6f), want_b = 4.0f / (5.0f + 1e-6f);
    OD_CHECK_CLOSE("clipped a", &a[0], &want_a, 1, 0.0f, 1e-6f);
    OD_CHECK_CLOSE("clipped b", &b[0], &want_b, 1, 0.0f, 1e-6f);

    float c[2] = {NAN, 1.0f};
    float *nan_grads[1] = {c};
    const int64_t nan_counts[1] = {2};
    OD_CHECK(od_clip_grad_norm(nan_grads, nan_counts, 1, 1.0, &norm, &err) == 0);
    OD_CHECK(isnan(norm));
    OD_CHECK(c[1] == 1.0f);
}

/* The norm of ~1M gradients over many tensors is the same for 1 and 2
 * threads, and so are the clipped gradients. */
static void clip_identical_across_threads(void)
{
    enum { TENSORS = 9 };
    const int64_t counts[TENSORS] = {1, 4095, 4096, 4097, 300000, 17, 0, 700001, 33};
    float *grads[2][TENSORS];
    od_rng rng;
    od_rng_seed(&rng, 3);
    for (int t = 0; t < TENSORS; t++) {
        grads[0][t] = od_alloc_floats(counts[t]);
        grads[1][t] = od_alloc_floats(counts[t]);
        od_rng_fill_normal(&rng, grads[0][t], counts[t], 0.0f, 1.0f);
        memcpy(grads[1][t], grads[0][t], (size_t)counts[t] * sizeof(float));
    }
    int saved_threads = od_get_num_threads();
    float norms[2];
    od_error err;
    for (int run = 0; run < 2; run++) {
        od_set_num_threads(run + 1);
        OD_CHECK(od_clip_grad_norm(grads[run], counts, TENSORS, 1.0, &norms[run], &err) == 0);
    }
    od_set_num_threads(saved_threads);
    OD_CHECK(norms[0] == norms[1]);
    // about sqrt(1010390) for standard normal values
    OD_CHECK(norms[0] > 990.0f && norms[0] < 1020.0f);
    for (int t = 0; t < TENSORS; t++) {
        OD_CHECK_IDENTICAL("clipped gradients", grads[0][t], grads[1][t], counts[t]);
        od_free(grads[0][t]);
        od_free(grads[1][t]);
    }
}

static void zero_grad_clears_gradients(void)
{
    float value[3] = {1, 2, 3}, grad[3] = {4, 5, 6};
    const float zeros[3] = {0};
    const int64_t shape[1] = {3};
    od_adam *adam = single_param_adam(value, grad, 1, shape);
    od_adam_zero_grad(adam);
    OD_CHECK_IDENTICAL("zeroed", grad, zeros, 3);
    // a zero gradient moves nothing: m = v = 0 and the update is 0 / eps
    const float before[3] = {1, 2, 3};
    od_adam_step(adam);
    OD_CHECK_IDENTICAL("unmoved", value, before, 3);
    od_adam_free(adam);
}

/* Elements 0-31 go through the 16-wide vector loop and element 32 through
 * the scalar tail (with any thread count, since runs are whole multiples
 * of 16). Equal inputs must give equal bits on both paths. */
static void vector_and_scalar_paths_agree(void)
{
    enum { COUNT = 33 };
    float value[COUNT], grad[COUNT];
    od_rng rng;
    od_rng_seed(&rng, 9);
    od_rng_fill_normal(&rng, value, 16, 0.0f, 1.0f);
    const int64_t shape[1] = {COUNT};
    od_adam_group_config config = od_adam_group_defaults(1e-2);
    config.beta1 = 0.9;
    config.weight_decay = 0.1;
    od_adam *adam = od_adam_new(NULL);
    OD_CHECK(od_adam_add_group(adam, &config, NULL) == 0);
    OD_CHECK(od_adam_add_param(adam, 0, "w", value, grad, 1, shape, NULL) == 0);
    for (int i = 16; i < COUNT; i++)
        value[i] = value[i % 16];
    for (int step = 0; step < 3; step++) {
        od_rng_fill_normal(&rng, grad, 16, 0.0f, 1.0f);
        grad[3] = 1e-9f; // where eps dominates
        for (int i = 16; i < COUNT; i++)
            grad[i] = grad[i % 16];
        od_adam_step(adam);
    }
    OD_CHECK_IDENTICAL("second vector", value + 16, value, 16);
    OD_CHECK_IDENTICAL("scalar tail", value + 32, value, 1);
    OD_CHECK(value[0] != 0.0f);
    od_adam_free(adam);
}

int main(void)
{
    OD_RUN(adam_product_settings_match_torch);
    OD_RUN(adam_momentum_and_l2_match_torch);
    OD_RUN(adamw_matches_torch);
    OD_RUN(resume_from_saved_state_identical);
    OD_RUN(load_rejects_mismatched_state);
    OD_RUN(bad_settings_rejected);
    OD_RUN(clip_below_max_norm_unchanged);
    OD_RUN(clip_identical_across_threads);
    OD_RUN(zero_grad_clears_gradients);
    OD_RUN(vector_and_scalar_paths_agree);
    return od_test_finish();
}
