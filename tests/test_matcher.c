/* Tests of the matcher and classifier against PyTorch
 * (scripts/refs/matcher.py): logits, loss, the crops' gradient and every
 * parameter gradient of one forward and backward for the variants full,
 * A and B; the top-k key lists on the reference and on a hand-made case;
 * invalid object counts and configurations; run-to-run determinism. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "model/matcher.h"
#include "nn/loss.h"
#include "testlib.h"

/* Each tensor must match PyTorch's float64 values within this relative L2
 * error, |got - want| / |want|. float32 rounding gives about 1e-6; a
 * missing gradient term or a wrong layout gives errors of order 1. */
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
            fprintf(stderr, "  %-36s relative L2 error %.2g%s\n", name, error, close ? "" : "  MISMATCH");
    }
    od_tensor_free(want);
}

typedef struct fixture {
    od_safetensors *reference;
    od_matcher_config config;
    od_params *params;
    od_matcher *matcher;
    od_tensor *crops, *mask;
    int64_t objects, crop_count;
} fixture;

static void fixture_close(fixture *f)
{
    od_matcher_free(f->matcher);
    od_params_free(f->params);
    od_tensor_free(f->crops);
    od_tensor_free(f->mask);
    od_safetensors_free(f->reference);
}

/* Loads matcher_<name>.safetensors and builds the matcher with its weights. */
static int fixture_open(fixture *f, const char *name, od_model_variant variant)
{
    memset(f, 0, sizeof *f);
    char file[64];
    snprintf(file, sizeof file, "matcher_%s", name);
    f->reference = od_test_load_reference(file);
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
    f->objects = sizes[0];
    f->config = (od_matcher_config){
        .variant = variant, .cells = sizes[1], .trunk_channels = sizes[2], .teacher_channels = sizes[3],
        .channels = sizes[4], .heads = sizes[5], .blocks = sizes[6], .top_k = sizes[7], .max_objects = 5,
    };
    free(sizes);
    f->params = od_params_new(&err);
    f->matcher = od_matcher_new(&f->config, f->params, "", &err);
    if (f->matcher == NULL)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(f->matcher != NULL);
    if (f->matcher == NULL)
        return -1;
    for (int i = 0; i < od_params_count(f->params); i++) {
        od_param *p = od_params_at(f->params, i);
        od_tensor *value = od_test_tensor(f->reference, p->name);
        if (value == NULL)
            return -1;
        OD_CHECK(od_tensor_has_shape(value, p->ndim, p->shape));
        memcpy(p->value, value->data, (size_t)p->count * sizeof(float));
        od_tensor_free(value);
    }
    f->crops = od_test_tensor(f->reference, "crops");
    f->mask = od_test_tensor(f->reference, "mask");
    if (f->crops == NULL || f->mask == NULL)
        return -1;
    f->crop_count = od_tensor_numel(f->crops);
    return 0;
}

/* One forward, loss and backward compared with PyTorch. */
static void check_variant(const char *name, od_model_variant variant)
{
    fixture f;
    if (fixture_open(&f, name, variant) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    float *logits = od_alloc_floats(f.objects), *d_logits = od_alloc_floats(f.objects);
    uint8_t *labels = calloc((size_t)f.objects, 1);
    float *d_crops = od_alloc_floats(f.crop_count);
    int64_t label_count = 0;
    int32_t *label_values = od_safetensors_get_int(f.reference, "labels", &label_count, &err);
    OD_CHECK(label_values != NULL && label_count == f.objects);
    if (label_values == NULL || label_count != f.objects)
        goto done;
    for (int64_t i = 0; i < f.objects; i++)
        labels[i] = label_values[i] == 1;

    od_params_zero_grad(f.params);
    int forward = od_matcher_forward(f.matcher, f.crops->data, f.mask->data, f.objects, 1, logits, &err);
    if (forward != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(forward == 0);
    check_tensor(f.reference, "logits", logits, f.objects);

    double loss = 0.0;
    OD_CHECK(od_matcher_loss(logits, labels, f.objects, OD_BCE_WEIGHT_ANOMALOUS, OD_BCE_WEIGHT_NORMAL, &loss,
                             d_logits, &err) == 0);
    const float loss_float = (float)loss;
    check_tensor(f.reference, "loss", &loss_float, 1);
    check_tensor(f.reference, "d_logits", d_logits, f.objects);

    int backward = od_matcher_backward(f.matcher, d_logits, d_crops, &err);
    if (backward != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(backward == 0);
    check_tensor(f.reference, "grad.crops", d_crops, f.crop_count);
    for (int i = 0; i < od_params_count(f.params); i++) {
        const od_param *p = od_params_at(f.params, i);
        char grad_name[OD_PARAM_NAME_SIZE + 8];
        snprintf(grad_name, sizeof grad_name, "grad.%s", p->name);
        check_tensor(f.reference, grad_name, p->grad, p->count);
    }
done:
    free(labels);
    od_free(logits);
    od_free(d_logits);
    free(label_values);
    od_free(d_crops);
    fixture_close(&f);
}

static void full_variant_matches_pytorch(void)
{
    check_variant("full", OD_MODEL_VARIANT_FULL);
}

static void variant_a_matches_pytorch(void)
{
    check_variant("A", OD_MODEL_VARIANT_A);
}

static void variant_b_matches_pytorch(void)
{
    check_variant("B", OD_MODEL_VARIANT_B);
}

/* C computes as B; only the trainer's loss weights differ. */
static void variant_c_matches_pytorch_b(void)
{
    check_variant("B", OD_MODEL_VARIANT_C);
}

static void full_key_lists_match_pytorch(void)
{
    fixture f;
    if (fixture_open(&f, "full", OD_MODEL_VARIANT_FULL) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    float logits[8];
    OD_CHECK(od_matcher_forward(f.matcher, f.crops->data, f.mask->data, f.objects, 0, logits, &err) == 0);
    int64_t count = 0;
    int32_t *want = od_safetensors_get_int(f.reference, "index", &count, &err);
    const int64_t tokens = f.config.cells * f.config.cells * f.config.cells;
    const int64_t keys = od_matcher_keys_per_query(f.matcher);
    OD_CHECK(keys == f.config.top_k * (f.objects - 1));
    OD_CHECK(want != NULL && count == f.objects * tokens * keys);
    if (want != NULL && count == f.objects * tokens * keys) {
        int64_t mismatches = 0;
        for (int64_t o = 0; o < f.objects; o++)
            for (int64_t t = 0; t < tokens; t++) {
                const int32_t *got = od_matcher_key_list(f.matcher, o, t);
                for (int64_t s = 0; s < keys; s++)
                    mismatches += got[s] != want[(o * tokens + t) * keys + s];
            }
        if (mismatches != 0)
            fprintf(stderr, "  %lld key list entries differ from PyTorch's\n", (long long)mismatches);
        OD_CHECK(mismatches == 0);
    }
    free(want);
    fixture_close(&f);
}

/* Sets the teacher slice (channels [c0, c0 + 3)) of one cell and marks it occupied. */
static void set_cell(float *crops, float *mask, int64_t cin, int64_t c0, int64_t tokens, int64_t object,
                     int64_t cell, float a, float b, float c, int occupied)
{
    float *teacher = crops + (object * tokens + cell) * cin + c0;
    teacher[0] = a;
    teacher[1] = b;
    teacher[2] = c;
    mask[object * tokens + cell] = occupied ? 1.0f : 0.0f;
}

/* Four objects of 4^3 cells, top_k 3. Query: object 0, cell 0, teacher
 * (1, 0, 0). Object 1: cell 9 is identical (similarity 1), cells 17 and 30
 * have similarity 0.707 (a tie, so 17 first), cell 5 is orthogonal, and
 * cell 2 is identical but empty, so it must not be chosen. Object 2 has
 * two occupied cells, which repeat. Object 3 has none, so all its cells
 * are candidates, all with similarity 0: the lowest indices win. */
static void top_k_choice_known_case(void)
{
    const od_matcher_config config = {
        .variant = OD_MODEL_VARIANT_FULL, .trunk_channels = 2, .teacher_channels = 3, .cells = 4,
        .channels = 8, .heads = 2, .blocks = 1, .top_k = 3, .max_objects = 4,
    };
    const int64_t tokens = 64, cin = 5, c0 = 2, objects = 4;
    od_error err;
    od_params *params = od_params_new(&err);
    od_matcher *matcher = od_matcher_new(&config, params, "matcher.", &err);
    OD_CHECK(matcher != NULL);
    float *crops = od_alloc_floats(objects * tokens * cin);
    float *mask = od_alloc_floats(objects * tokens);
    if (matcher == NULL || crops == NULL || mask == NULL)
        goto done;
    od_params_initialize(params, 3);
    set_cell(crops, mask, cin, c0, tokens, 0, 0, 1.0f, 0.0f, 0.0f, 1);
    set_cell(crops, mask, cin, c0, tokens, 1, 2, 1.0f, 0.0f, 0.0f, 0);
    set_cell(crops, mask, cin, c0, tokens, 1, 5, 0.0f, 1.0f, 0.0f, 1);
    set_cell(crops, mask, cin, c0, tokens, 1, 9, 2.0f, 0.0f, 0.0f, 1);
    set_cell(crops, mask, cin, c0, tokens, 1, 17, 1.0f, 0.0f, 1.0f, 1);
    set_cell(crops, mask, cin, c0, tokens, 1, 30, 3.0f, 3.0f, 0.0f, 1);
    set_cell(crops, mask, cin, c0, tokens, 2, 40, 0.0f, 0.0f, 1.0f, 1);
    set_cell(crops, mask, cin, c0, tokens, 2, 7, 1.0f, 1.0f, 1.0f, 1);

    float logits[4];
    OD_CHECK(od_matcher_forward(matcher, crops, mask, objects, 0, logits, &err) == 0);
    OD_CHECK(od_matcher_keys_per_query(matcher) == 9);
    const int32_t *keys = od_matcher_key_list(matcher, 0, 0);
    OD_CHECK(keys != NULL);
    if (keys != NULL) {
        const int32_t want[9] = {
            64 + 9, 64 + 17, 64 + 30,        /* object 1 */
            128 + 7, 128 + 40, 128 + 7,      /* object 2: 0.577, then 0, repeated */
            192 + 0, 192 + 1, 192 + 2,       /* object 3: no occupied cell */
        };
        for (int s = 0; s < 9; s++) {
            if (keys[s] != want[s])
                fprintf(stderr, "  slot %d: key %d, expected %d\n", s, keys[s], want[s]);
            OD_CHECK(keys[s] == want[s]);
        }
    }
    /* a query of object 1 never lists its own cells */
    const int32_t *other = od_matcher_key_list(matcher, 1, 9);
    OD_CHECK(other != NULL);
    for (int s = 0; other != NULL && s < 9; s++)
        OD_CHECK(other[s] < 64 || other[s] >= 128);
done:
    od_free(crops);
    od_free(mask);
    od_matcher_free(matcher);
    od_params_free(params);
}

static void invalid_object_counts_fail(void)
{
    fixture f;
    if (fixture_open(&f, "full", OD_MODEL_VARIANT_FULL) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    float logits[8];
    err.message[0] = '\0';
    OD_CHECK(od_matcher_forward(f.matcher, f.crops->data, f.mask->data, 0, 1, logits, &err) != 0);
    OD_CHECK(strstr(err.message, "0 objects, expected 1 to 5") != NULL);
    err.message[0] = '\0';
    OD_CHECK(od_matcher_forward(f.matcher, f.crops->data, f.mask->data, 6, 1, logits, &err) != 0);
    OD_CHECK(strstr(err.message, "6 objects, expected 1 to 5") != NULL);
    /* a failed forward leaves nothing for a backward */
    float d_logits[8] = {0};
    err.message[0] = '\0';
    OD_CHECK(od_matcher_backward(f.matcher, d_logits, NULL, &err) != 0);
    OD_CHECK(strstr(err.message, "training forward") != NULL);
    fixture_close(&f);
}

static void invalid_configs_fail(void)
{
    const od_matcher_config good = {
        .variant = OD_MODEL_VARIANT_FULL, .trunk_channels = 2, .teacher_channels = 3, .cells = 4,
        .channels = 8, .heads = 2, .blocks = 1, .top_k = 3, .max_objects = 4,
    };
    od_error err;
    od_params *params = od_params_new(&err);
    od_matcher_config c = good;
    c.heads = 3;
    OD_CHECK(od_matcher_new(&c, params, "", &err) == NULL);
    OD_CHECK(strstr(err.message, "3 heads do not divide 8 channels") != NULL);
    c = good;
    c.max_objects = 0;
    OD_CHECK(od_matcher_new(&c, params, "", &err) == NULL);
    OD_CHECK(strstr(err.message, "max_objects 0") != NULL);
    c = good;
    c.top_k = 0;
    OD_CHECK(od_matcher_new(&c, params, "", &err) == NULL);
    OD_CHECK(strstr(err.message, "top_k 0") != NULL);
    od_params_free(params);
}

static void invalid_loss_inputs_fail(void)
{
    const float logits[2] = {0.5f, -1.0f};
    const uint8_t bad_labels[2] = {0, 2};
    const uint8_t labels[2] = {0, 1};
    float d_logits[2];
    double loss;
    od_error err;
    OD_CHECK(od_matcher_loss(logits, bad_labels, 2, 0.7, 0.3, &loss, d_logits, &err) != 0);
    OD_CHECK(strstr(err.message, "label 2 of object 1") != NULL);
    OD_CHECK(od_matcher_loss(logits, labels, 2, -0.7, 0.3, &loss, d_logits, &err) != 0);
    OD_CHECK(od_matcher_loss(logits, labels, 0, 0.7, 0.3, &loss, d_logits, &err) != 0);
}

/* One object: no other object to compare with, so the attention is skipped. */
static void single_object_runs(void)
{
    fixture f;
    if (fixture_open(&f, "full", OD_MODEL_VARIANT_FULL) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    float logit = NAN, d_logit = 1.0f;
    float *d_crops = od_alloc_floats(f.crop_count);
    OD_CHECK(od_matcher_forward(f.matcher, f.crops->data, f.mask->data, 1, 1, &logit, &err) == 0);
    OD_CHECK(isfinite(logit));
    OD_CHECK(od_matcher_keys_per_query(f.matcher) == 0);
    OD_CHECK(od_matcher_backward(f.matcher, &d_logit, d_crops, &err) == 0);
    od_free(d_crops);
    fixture_close(&f);
}

/* Two forward and backward passes give the same bits. */
static void two_runs_bit_identical(void)
{
    fixture f;
    if (fixture_open(&f, "full", OD_MODEL_VARIANT_FULL) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    float logits[2][8];
    const float d_logits[8] = {0.3f, -0.2f, 0.5f};
    float *d_crops[2] = {od_alloc_floats(f.crop_count), od_alloc_floats(f.crop_count)};
    od_param *embed = od_params_find(f.params, "embed.weight");
    float *embed_grad[2] = {od_alloc_floats(embed->count), od_alloc_floats(embed->count)};
    for (int run = 0; run < 2; run++) {
        od_params_zero_grad(f.params);
        OD_CHECK(od_matcher_forward(f.matcher, f.crops->data, f.mask->data, f.objects, 1, logits[run], &err) == 0);
        OD_CHECK(od_matcher_backward(f.matcher, d_logits, d_crops[run], &err) == 0);
        memcpy(embed_grad[run], embed->grad, (size_t)embed->count * sizeof(float));
    }
    OD_CHECK_IDENTICAL("logits", logits[0], logits[1], f.objects);
    OD_CHECK_IDENTICAL("d_crops", d_crops[0], d_crops[1], f.crop_count);
    OD_CHECK_IDENTICAL("embed.weight gradient", embed_grad[0], embed_grad[1], embed->count);
    for (int run = 0; run < 2; run++) {
        od_free(d_crops[run]);
        od_free(embed_grad[run]);
    }
    fixture_close(&f);
}

/* A call with fewer objects, then one with more, which grows the saved
 * attention activations; the second must still match PyTorch. */
static void object_count_growth_matches(void)
{
    fixture f;
    if (fixture_open(&f, "B", OD_MODEL_VARIANT_B) != 0) {
        fixture_close(&f);
        return;
    }
    od_error err;
    float *logits = od_alloc_floats(f.objects);
    float *d_logits = od_alloc_floats(f.objects);
    OD_CHECK(od_matcher_forward(f.matcher, f.crops->data, f.mask->data, 2, 1, logits, &err) == 0);
    OD_CHECK(od_matcher_backward(f.matcher, d_logits, NULL, &err) == 0);
    OD_CHECK(od_matcher_forward(f.matcher, f.crops->data, f.mask->data, f.objects, 1, logits, &err) == 0);
    check_tensor(f.reference, "logits", logits, f.objects);
    OD_CHECK(od_matcher_keys_per_query(f.matcher) == (f.objects - 1) * f.config.cells * f.config.cells * f.config.cells);
    OD_CHECK(od_matcher_key_list(f.matcher, 0, 0) == NULL);
    od_free(logits);
    od_free(d_logits);
    fixture_close(&f);
}

int main(void)
{
    OD_RUN(full_variant_matches_pytorch);
    OD_RUN(variant_a_matches_pytorch);
    OD_RUN(variant_b_matches_pytorch);
    OD_RUN(variant_c_matches_pytorch_b);
    OD_RUN(full_key_lists_match_pytorch);
    OD_RUN(top_k_choice_known_case);
    OD_RUN(invalid_object_counts_fail);
    OD_RUN(invalid_configs_fail);
    OD_RUN(invalid_loss_inputs_fail);
    OD_RUN(single_object_runs);
    OD_RUN(two_runs_bit_identical);
    OD_RUN(object_count_growth_matches);
    return od_test_finish();
}
