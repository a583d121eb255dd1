/* Adam with parameter groups, gradient clipping and saved optimizer state.
 * See optim.h for the update and the state file layout. */
#include "nn/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "core/mem.h"
#include "io/safetensors.h"

/* Gradients are summed in blocks of this many floats, each in float64 by
 * one thread, and the blocks are added in order: the norm depends only on
 * the sizes, not on the thread count. */
#define CLIP_BLOCK 4096
/* torch.nn.utils.clip_grad_norm_ adds this to the norm before dividing. */
#define CLIP_NORM_EPS 1e-6
/* Each thread updates a run of whole 64-byte cache lines of a parameter. */
#define ADAM_CHUNK_ALIGN 16
/* Longest "<name>.<suffix>" key of a saved tensor. */
#define STATE_KEY_MAX 512

/* Per-parameter float32 scalars of one step, rounded as PyTorch rounds
 * its Python-float arguments to the tensor's dtype. */
typedef struct adam_scalars {
    float beta1, one_minus_beta1;
    float beta2, one_minus_beta2;
    float neg_step_size;         /* -lr / (1 - beta1^t) */
    float bias_correction2_sqrt; /* sqrt(1 - beta2^t) */
    float eps;
    float l2;    /* weight_decay for the L2 form, else 0 */
    float decay; /* 1 - lr * weight_decay for the decoupled form, else 1 */
} adam_scalars;

typedef struct adam_param {
    char *name;
    int group;
    float *value;
    float *grad;
    float *exp_avg;    /* m, the first moment */
    float *exp_avg_sq; /* v, the second moment */
    int64_t numel;
    int ndim;
    int64_t shape[OD_MAX_DIMS];
    int64_t steps;
    adam_scalars step_scalars; /* of the step in progress */
} adam_param;

struct od_adam {
    od_adam_group_config *groups;
    int group_count;
    adam_param *params;
    int param_count;
};

od_adam_group_config od_adam_group_defaults(double lr)
{
    od_adam_group_config config = {
        .lr = lr,
        .beta1 = OD_ADAM_BETA1,
        .beta2 = OD_ADAM_BETA2,
        .eps = OD_ADAM_EPS,
        .weight_decay = 0.0,
        .decoupled_weight_decay = 0,
    };
    return config;
}

od_adam *od_adam_new(od_error *err)
{
    od_adam *adam = calloc(1, sizeof *adam);
    if (adam == NULL)
        od_fail(err, "adam: out of memory");
    return adam;
}

void od_adam_free(od_adam *adam)
{
    if (adam == NULL)
        return;
    for (int i = 0; i < adam->param_count; i++) {
        free(adam->params[i].name);
        od_free(adam->params[i].exp_avg);
        od_free(adam->params[i].exp_avg_sq);
    }
    free(adam->params);
    free(adam->groups);
    free(adam);
}

static int check_group_config(const od_adam_group_config *c, od_error *err)
{
    if (!(c->lr >= 0.0) || isinf(c->lr))
        return od_fail(err, "adam: lr must be finite and >= 0, got %g", c->lr);
    if (!(c->beta1 >= 0.0 && c->beta1 < 1.0))
        return od_fail(err, "adam: beta1 must be in [0, 1), got %g", c->beta1);
    if (!(c->beta2 >= 0.0 && c->beta2 < 1.0))
        return od_fail(err, "adam: beta2 must be in [0, 1), got %g", c->beta2);
    if (!(c->eps >= 0.0) || isinf(c->eps))
        return od_fail(err, "adam: eps must be finite and >= 0, got %g", c->eps);
    if (!(c->weight_decay >= 0.0) || isinf(c->weight_decay))
        return od_fail(err, "adam: weight_decay must be finite and >= 0, got %g", c->weight_decay);
    return 0;
}

int od_adam_add_group(od_adam *adam, const od_adam_group_config *config, od_error *err)
{
    if (adam == NULL || config == NULL)
        return od_fail(err, "adam: optimizer and config must not be NULL");
    if (check_group_config(config, err) != 0)
        return -1;
    od_adam_group_config *groups = realloc(adam->groups, (size_t)(adam->group_count + 1) * sizeof *groups);
    if (groups == NULL)
        return od_fail(err, "adam: out of memory adding group %d", adam->group_count);
    adam->groups = groups;
    groups[adam->group_count] = *config;
    return adam->group_count++;
}

static int find_param(const od_adam *adam, const char *name, size_t length)
{
    for (int i = 0; i < adam->param_count; i++)
        if (strlen(adam->params[i].name) == length && memcmp(adam->params[i].name, name, length) == 0)
            return i;
    return -1;
}

int od_adam_add_param(od_adam *adam, int group, const char *name, float *value, float *grad, int ndim,
                      const int64_t *shape, od_error *err)
{
    if (adam == NULL || value == NULL || grad == NULL)
        return od_fail(err, "adam: optimizer, value and grad must not be NULL");
    if (name == NULL || name[0] == '\0' || strlen(name) + 16 > STATE_KEY_MAX)
        return od_fail(err, "adam: parameter name must be non-empty and under %d characters",
                       STATE_KEY_MAX - 16);
    if (group < 0 || group >= adam->group_count)
        return od_fail(err, "adam: parameter \"%s\": group %d does not exist (%d groups)", name, group,
                       adam->group_count);
    if (find_param(adam, name, strlen(name)) >= 0)
        return od_fail(err, "adam: parameter \"%s\" added twice", name);
    if (ndim < 0 || ndim > OD_MAX_DIMS || (ndim > 0 && shape == NULL))
        return od_fail(err, "adam: parameter \"%s\": %d dimensions, expected 0 to %d", name, ndim,
                       OD_MAX_DIMS);
    int64_t numel = od_shape_numel(ndim, shape);
    if (numel < 0)
        return od_fail(err, "adam: parameter \"%s\": invalid shape", name);

    adam_param *params = realloc(adam->params, (size_t)(adam->param_count + 1) * sizeof *params);
    if (params == NULL)
        return od_fail(err, "adam: out of memory adding \"%s\"", name);
    adam->params = params;
    adam_param *p = &params[adam->param_count];
    memset(p, 0, sizeof *p);
    p->name = malloc(strlen(name) + 1);
    p->exp_avg = od_alloc_floats(numel);
    p->exp_avg_sq = od_alloc_floats(numel);
    if (p->name == NULL || p->exp_avg == NULL || p->exp_avg_sq == NULL) {
        free(p->name);
        od_free(p->exp_avg);
        od_free(p->exp_avg_sq);
        return od_fail(err, "adam: out of memory for the moments of \"%s\" (%lld floats)", name,
                       (long long)numel);
    }
    strcpy(p->name, name);
    p->group = group;
    p->value = value;
    p->grad = grad;
    p->numel = numel;
    p->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        p->shape[d] = shape[d];
    adam->param_count++;
    return 0;
}

int od_adam_set_lr(od_adam *adam, int group, double lr, od_error *err)
{
    if (adam == NULL || group < 0 || group >= adam->group_count)
        return od_fail(err, "adam: group %d does not exist", group);
    if (!(lr >= 0.0) || isinf(lr))
        return od_fail(err, "adam: lr must be finite and >= 0, got %g", lr);
    adam->groups[group].lr = lr;
    return 0;
}

int od_adam_param_count(const od_adam *adam) { return adam->param_count; }

int64_t od_adam_param_steps(const od_adam *adam, int index) { return adam->params[index].steps; }

const float *od_adam_exp_avg(const od_adam *adam, int index) { return adam->params[index].exp_avg; }

const float *od_adam_exp_avg_sq(const od_adam *adam, int index) { return adam->params[index].exp_avg_sq; }

/* ---- the update ----------------------------------------------------------- */

static adam_scalars scalars_of_step(const od_adam_group_config *c, int64_t step)
{
    double bias_correction1 = 1.0 - pow(c->beta1, (double)step);
    double bias_correction2 = 1.0 - pow(c->beta2, (double)step);
    adam_scalars s = {
        .beta1 = (float)c->beta1,
        .one_minus_beta1 = (float)(1.0 - c->beta1),
        .beta2 = (float)c->beta2,
        .one_minus_beta2 = (float)(1.0 - c->beta2),
        .neg_step_size = (float)(-c->lr / bias_correction1),
        .bias_correction2_sqrt = (float)sqrt(bias_correction2),
        .eps = (float)c->eps,
        .l2 = c->decoupled_weight_decay ? 0.0f : (float)c->weight_decay,
        .decay = c->decoupled_weight_decay ? (float)(1.0 - c->lr * c->weight_decay) : 1.0f,
    };
    return s;
}

/* Updates elements [begin, end) of one parameter. Every operation is an
 * IEEE float32 operation with one rounding, so the AVX-512 loop and the
 * scalar loop give the same bits. The vector loop is written out because
 * GCC keeps sqrtf a library call (for errno) unless -fno-math-errno. */
static void adam_update_range(const adam_param *p, int64_t begin, int64_t end)
{
    // value, grad, exp_avg, exp_avg_sq are (numel,)
    const adam_scalars s = p->step_scalars;
    float *restrict value = p->value;
    const float *restrict grad = p->grad;
    float *restrict m = p->exp_avg;
    float *restrict v = p->exp_avg_sq;
    int64_t i = begin;
#if defined(__AVX512F__)
    const __m512 l2 = _mm512_set1_ps(s.l2), decay = _mm512_set1_ps(s.decay);
    const __m512 beta1 = _mm512_set1_ps(s.beta1), one_minus_beta1 = _mm512_set1_ps(s.one_minus_beta1);
    const __m512 beta2 = _mm512_set1_ps(s.beta2), one_minus_beta2 = _mm512_set1_ps(s.one_minus_beta2);
    const __m512 bias_correction2_sqrt = _mm512_set1_ps(s.bias_correction2_sqrt);
    const __m512 eps = _mm512_set1_ps(s.eps), neg_step_size = _mm512_set1_ps(s.neg_step_size);
    for (; i + 16 <= end; i += 16) {
        __m512 old_value = _mm512_loadu_ps(value + i);
        __m512 g = _mm512_fmadd_ps(old_value, l2, _mm512_loadu_ps(grad + i));
        __m512 param = _mm512_mul_ps(old_value, decay);
        __m512 m_new = _mm512_fmadd_ps(g, one_minus_beta1, _mm512_mul_ps(_mm512_loadu_ps(m + i), beta1));
        __m512 v_new = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), beta2),
                                     _mm512_mul_ps(_mm512_mul_ps(one_minus_beta2, g), g));
        __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(v_new), bias_correction2_sqrt), eps);
        _mm512_storeu_ps(m + i, m_new);
        _mm512_storeu_ps(v + i, v_new);
        __m512 step = _mm512_mul_ps(neg_step_size, _mm512_div_ps(m_new, denom));
        _mm512_storeu_ps(value + i, _mm512_add_ps(param, step));
    }
#endif
    for (; i < end; i++) {
        // fused multiply-adds where PyTorch's vectorised add with alpha uses them
        float g = fmaf(value[i], s.l2, grad[i]);
        float param = value[i] * s.decay;
        float m_new = fmaf(g, s.one_minus_beta1, m[i] * s.beta1);
        float v_new = v[i] * s.beta2 + s.one_minus_beta2 * g * g;
        float denom = sqrtf(v_new) / s.bias_correction2_sqrt + s.eps;
        m[i] = m_new;
        v[i] = v_new;
        value[i] = param + s.neg_step_size * (m_new / denom);
    }
}

void od_adam_step(od_adam *adam)
{
    for (int i = 0; i < adam->param_count; i++) {
        adam_param *p = &adam->params[i];
        p->steps++;
        p->step_scalars = scalars_of_step(&adam->groups[p->group], p->steps);
    }

    // one parallel region for all parameters, each split evenly over the
    // threads in runs of whole cache lines, with no barrier in between
#pragma omp parallel
    {
        const int64_t thread = omp_get_thread_num(), threads = omp_get_num_threads();
        for (int i = 0; i < adam->param_count; i++) {
            const adam_param *p = &adam->params[i];
            int64_t chunk = (p->numel + threads - 1) / threads;
            chunk = (chunk + ADAM_CHUNK_ALIGN - 1) / ADAM_CHUNK_ALIGN * ADAM_CHUNK_ALIGN;
            int64_t begin = thread * chunk < p->numel ? thread * chunk : p->numel;
            int64_t end = begin + chunk < p->numel ? begin + chunk : p->numel;
            adam_update_range(p, begin, end);
        }
    }
}

void od_adam_zero_grad(od_adam *adam)
{
    for (int i = 0; i < adam->param_count; i++)
        memset(adam->params[i].grad, 0, (size_t)adam->params[i].numel * sizeof(float));
}

/* ---- gradient clipping ---------------------------------------------------- */

/* Returns the tensor holding global block `block`: the last t with
 * first_block[t] <= block. */
static int tensor_of_block(const int64_t *first_block, int tensor_count, int64_t block)
{
    int low = 0, high = tensor_count - 1;
    while (low < high) {
        int middle = low + (high - low + 1) / 2;
        if (first_block[middle] <= block)
            low = middle;
        else
            high = middle - 1;
    }
    return low;
}

int od_clip_grad_norm(float *const *grads, const int64_t *counts, int tensor_count, double max_norm,
                      float *total_norm, od_error *err)
{
    // grads[t] is (counts[t],) for t < tensor_count
    if (total_norm == NULL || tensor_count < 0 || (tensor_count > 0 && (grads == NULL || counts == NULL)))
        return od_fail(err, "clip_grad_norm: total_norm, grads and counts must not be NULL");
    if (!(max_norm > 0.0) || isinf(max_norm))
        return od_fail(err, "clip_grad_norm: max_norm must be finite and > 0, got %g", max_norm);
    int64_t block_count = 0;
    for (int t = 0; t < tensor_count; t++) {
        if (counts[t] < 0 || (counts[t] > 0 && grads[t] == NULL))
            return od_fail(err, "clip_grad_norm: tensor %d has count %lld and %s buffer", t,
                           (long long)counts[t], grads[t] == NULL ? "a NULL" : "a");
        block_count += (counts[t] + CLIP_BLOCK - 1) / CLIP_BLOCK;
    }

    // first_block[t] is the global index of tensor t's first block
    int64_t *first_block = malloc((size_t)(tensor_count + 1) * sizeof *first_block);
    double *partial = malloc((size_t)(block_count > 0 ? block_count : 1) * sizeof *partial);
    if (first_block == NULL || partial == NULL) {
        free(first_block);
        free(partial);
        return od_fail(err, "clip_grad_norm: out of memory for %lld blocks", (long long)block_count);
    }
    int64_t next = 0;
    for (int t = 0; t < tensor_count; t++) {
        first_block[t] = next;
        next += (counts[t] + CLIP_BLOCK - 1) / CLIP_BLOCK;
    }
    first_block[tensor_count] = next;

    // pass 1: sum of squares per block
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < block_count; b++) {
        int t = tensor_of_block(first_block, tensor_count, b);
        int64_t begin = (b - first_block[t]) * CLIP_BLOCK;
        int64_t end = begin + CLIP_BLOCK < counts[t] ? begin + CLIP_BLOCK : counts[t];
        const float *g = grads[t];
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = begin; i < end; i++)
            sum += (double)g[i] * (double)g[i];
        partial[b] = sum;
    }
    double squares = 0.0;
    for (int64_t b = 0; b < block_count; b++)
        squares += partial[b];
    float total = (float)sqrt(squares);
    *total_norm = total;

    // pass 2: scale, with the coefficient rounded to float32 as in PyTorch
    float coefficient = (float)(max_norm / (double)(total + (float)CLIP_NORM_EPS));
    if (isfinite(total) && coefficient < 1.0f) {
#pragma omp parallel for schedule(static)
        for (int64_t b = 0; b < block_count; b++) {
            int t = tensor_of_block(first_block, tensor_count, b);
            int64_t begin = (b - first_block[t]) * CLIP_BLOCK;
            int64_t end = begin + CLIP_BLOCK < counts[t] ? begin + CLIP_BLOCK : counts[t];
            float *g = grads[t];
#pragma omp simd
            for (int64_t i = begin; i < end; i++)
                g[i] *= coefficient;
        }
    }
    free(first_block);
    free(partial);
    return 0;
}

int od_adam_clip_grad_norm(od_adam *adam, double max_norm, float *total_norm, od_error *err)
{
    int count = adam->param_count;
    float **grads = malloc((size_t)(count > 0 ? count : 1) * sizeof *grads);
    int64_t *counts = malloc((size_t)(count > 0 ? count : 1) * sizeof *counts);
    if (grads == NULL || counts == NULL) {
        free(grads);
        free(counts);
        return od_fail(err, "clip_grad_norm: out of memory");
    }
    for (int i = 0; i < count; i++) {
        grads[i] = adam->params[i].grad;
        counts[i] = adam->params[i].numel;
    }
    int status = od_clip_grad_norm(grads, counts, count, max_norm, total_norm, err);
    free(grads);
    free(counts);
    return status;
}

/* ---- saved state ---------------------------------------------------------- */

static const char *const STATE_SUFFIXES[3] = {".exp_avg", ".exp_avg_sq", ".step"};

static void state_key(char *key, const char *name, int suffix)
{
    snprintf(key, STATE_KEY_MAX, "%s%s", name, STATE_SUFFIXES[suffix]);
}

int od_adam_save(const od_adam *adam, const char *path, od_error *err)
{
    od_st_writer *writer = od_st_writer_new();
    if (writer == NULL)
        return od_fail(err, "adam: out of memory writing %s", path);
    int64_t *steps = malloc((size_t)(adam->param_count > 0 ? adam->param_count : 1) * sizeof *steps);
    int status = steps == NULL ? od_fail(err, "adam: out of memory writing %s", path) : 0;
    const int64_t one = 1;
    for (int i = 0; i < adam->param_count && status == 0; i++) {
        const adam_param *p = &adam->params[i];
        char key[STATE_KEY_MAX];
        steps[i] = p->steps;
        state_key(key, p->name, 0);
        status = od_st_writer_add(writer, key, OD_DTYPE_F32, p->ndim, p->shape, p->exp_avg, err);
        if (status == 0) {
            state_key(key, p->name, 1);
            status = od_st_writer_add(writer, key, OD_DTYPE_F32, p->ndim, p->shape, p->exp_avg_sq, err);
        }
        if (status == 0) {
            state_key(key, p->name, 2);
            status = od_st_writer_add(writer, key, OD_DTYPE_I64, 1, &one, &steps[i], err);
        }
    }
    if (status == 0)
        status = od_st_writer_set_metadata(writer, "format", OD_ADAM_STATE_FORMAT, err);
    if (status == 0)
        status = od_st_writer_write(writer, path, err);
    od_st_writer_free(writer);
    free(steps);
    return status;
}

/* Returns 1 when `key` is "<name of a registered parameter><suffix>". */
static int is_state_key(const od_adam *adam, const char *key)
{
    size_t length = strlen(key);
    for (int s = 0; s < 3; s++) {
        size_t suffix = strlen(STATE_SUFFIXES[s]);
        if (length > suffix && strcmp(key + length - suffix, STATE_SUFFIXES[s]) == 0 &&
            find_param(adam, key, length - suffix) >= 0)
            return 1;
    }
    return 0;
}

/* The state of one parameter, read and checked before anything is changed. */
typedef struct loaded_state {
    od_tensor *exp_avg;
    od_tensor *exp_avg_sq;
    int64_t steps;
} loaded_state;

static int load_param_state(const od_safetensors *st, const adam_param *p, loaded_state *out, od_error *err)
{
    char key[STATE_KEY_MAX];
    state_key(key, p->name, 0);
    out->exp_avg = od_safetensors_get(st, key, p->ndim, p->shape, err);
    if (out->exp_avg == NULL)
        return -1;
    state_key(key, p->name, 1);
    out->exp_avg_sq = od_safetensors_get(st, key, p->ndim, p->shape, err);
    if (out->exp_avg_sq == NULL)
        return -1;
    state_key(key, p->name, 2);
    int64_t count = 0;
    int32_t *steps = od_safetensors_get_int(st, key, &count, err);
    if (steps == NULL)
        return -1;
    int32_t value = count == 1 ? steps[0] : -1;
    free(steps);
    if (value < 0)
        return od_fail(err, "%s: tensor \"%s\" must hold one step count >= 0", st->source, key);
    out->steps = value;
    return 0;
}

int od_adam_load(od_adam *adam, const char *path, od_error *err)
{
    od_safetensors *st = od_safetensors_read(path, err);
    if (st == NULL)
        return -1;
    const char *format = od_safetensors_metadata(st, "format");
    if (format == NULL || strcmp(format, OD_ADAM_STATE_FORMAT) != 0) {
        if (format == NULL)
            od_fail(err, "%s: metadata \"format\" missing, expected \"%s\" (not an optimizer state file)",
                    path, OD_ADAM_STATE_FORMAT);
        else
            od_fail(err, "%s: metadata \"format\" is \"%s\", expected \"%s\"", path, format,
                    OD_ADAM_STATE_FORMAT);
        od_safetensors_free(st);
        return -1;
    }
    for (size_t e = 0; e < st->count; e++) {
        if (!is_state_key(adam, st->entries[e].name)) {
            od_fail(err, "%s: tensor \"%s\" belongs to no registered parameter (state of another model?)",
                    path, st->entries[e].name);
            od_safetensors_free(st);
            return -1;
        }
    }

    // read and check everything first, so a failure leaves the optimizer as it was
    int count = adam->param_count;
    loaded_state *loaded = calloc((size_t)(count > 0 ? count : 1), sizeof *loaded);
    int status = loaded == NULL ? od_fail(err, "adam: out of memory reading %s", path) : 0;
    for (int i = 0; i < count && status == 0; i++)
        status = load_param_state(st, &adam->params[i], &loaded[i], err);

    for (int i = 0; i < count && status == 0; i++) {
        adam_param *p = &adam->params[i];
        memcpy(p->exp_avg, loaded[i].exp_avg->data, (size_t)p->numel * sizeof(float));
        memcpy(p->exp_avg_sq, loaded[i].exp_avg_sq->data, (size_t)p->numel * sizeof(float));
        p->steps = loaded[i].steps;
    }
    for (int i = 0; loaded != NULL && i < count; i++) {
        od_tensor_free(loaded[i].exp_avg);
        od_tensor_free(loaded[i].exp_avg_sq);
    }
    free(loaded);
    od_safetensors_free(st);
    return status;
}
