/* Reading and validating the model configuration (see config.h). */
#include "model/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teacher/teacher.h"

/* Largest configuration file read, far above a real one (a few KB). */
#define MAX_CONFIG_BYTES (1 << 20)

/* cJSON stores numbers as doubles, which hold integers exactly up to 2^53. */
#define MAX_JSON_INTEGER 9007199254740992.0

typedef struct reader {
    const char *source;
    od_error *err;
} reader;

/* ---- fields ------------------------------------------------------------- */

/* Writes "section.name" (or "name" at the top level) into buffer. */
static const char *field_path(const char *section, const char *name, char *buffer, size_t size)
{
    if (section[0] != '\0')
        snprintf(buffer, size, "%s.%s", section, name);
    else
        snprintf(buffer, size, "%s", name);
    return buffer;
}

/* Checks that `object` has exactly the fields `keys` (NULL-terminated),
 * plus an optional "comment" string, each once. */
static int check_fields(reader *r, const cJSON *object, const char *section, const char *const *keys)
{
    char path[128];
    if (!cJSON_IsObject(object))
        return od_fail(r->err, "%s: field %s: expected an object", r->source,
                       section[0] != '\0' ? section : "(top level)");
    for (const cJSON *child = object->child; child != NULL; child = child->next) {
        for (const cJSON *earlier = object->child; earlier != child; earlier = earlier->next)
            if (strcmp(earlier->string, child->string) == 0)
                return od_fail(r->err, "%s: field %s appears twice", r->source,
                               field_path(section, child->string, path, sizeof path));
        if (strcmp(child->string, "comment") == 0) {
            if (!cJSON_IsString(child))
                return od_fail(r->err, "%s: field %s: expected a string", r->source,
                               field_path(section, child->string, path, sizeof path));
            continue;
        }
        int known = 0;
        for (int i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(keys[i], child->string) == 0;
        if (!known) {
            char expected[512] = "";
            for (int i = 0; keys[i] != NULL; i++) {
                size_t used = strlen(expected);
                snprintf(expected + used, sizeof expected - used, "%s%s", i > 0 ? ", " : "", keys[i]);
            }
            return od_fail(r->err, "%s: unknown field %s (expected one of: %s, comment)", r->source,
                           field_path(section, child->string, path, sizeof path), expected);
        }
    }
    for (int i = 0; keys[i] != NULL; i++)
        if (cJSON_GetObjectItemCaseSensitive(object, keys[i]) == NULL)
            return od_fail(r->err, "%s: missing field %s", r->source, field_path(section, keys[i], path, sizeof path));
    return 0;
}

static const cJSON *get(const cJSON *object, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(object, name);
}

/* Checks that item is an integer in [min, max]; `what` names it. */
static int integer_value(reader *r, const cJSON *item, const char *what, int64_t min, int64_t max, int64_t *out)
{
    double value = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!isfinite(value) || value != floor(value) || fabs(value) > MAX_JSON_INTEGER || value < (double)min ||
        value > (double)max)
        return od_fail(r->err, "%s: field %s: expected an integer in [%lld, %lld]", r->source, what,
                       (long long)min, (long long)max);
    *out = (int64_t)value;
    return 0;
}

static int read_int(reader *r, const cJSON *object, const char *section, const char *name, int64_t min, int64_t max,
                    int64_t *out)
{
    char path[128];
    return integer_value(r, get(object, name), field_path(section, name, path, sizeof path), min, max, out);
}

static int read_double(reader *r, const cJSON *object, const char *section, const char *name, double min,
                       double max, double *out)
{
    char path[128];
    const cJSON *item = get(object, name);
    double value = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!isfinite(value) || value < min || value > max)
        return od_fail(r->err, "%s: field %s: expected a number in [%g, %g]", r->source,
                       field_path(section, name, path, sizeof path), min, max);
    *out = value;
    return 0;
}

static int read_bool(reader *r, const cJSON *object, const char *section, const char *name, int *out)
{
    char path[128];
    const cJSON *item = get(object, name);
    if (!cJSON_IsBool(item))
        return od_fail(r->err, "%s: field %s: expected true or false", r->source,
                       field_path(section, name, path, sizeof path));
    *out = cJSON_IsTrue(item) ? 1 : 0;
    return 0;
}

/* Reads a non-empty string shorter than size into out. */
static int read_string(reader *r, const cJSON *object, const char *section, const char *name, char *out, size_t size)
{
    char path[128];
    const cJSON *item = get(object, name);
    if (!cJSON_IsString(item) || item->valuestring[0] == '\0' || strlen(item->valuestring) >= size)
        return od_fail(r->err, "%s: field %s: expected a string of 1 to %zu characters", r->source,
                       field_path(section, name, path, sizeof path), size - 1);
    memcpy(out, item->valuestring, strlen(item->valuestring) + 1);
    return 0;
}

/* Reads an array of min_count to max_count integers in [min, max] and
 * writes its length to *count. */
static int read_int_array(reader *r, const cJSON *object, const char *section, const char *name, int min_count,
                          int max_count, int64_t min, int64_t max, int64_t *out, int *count)
{
    char path[128], element[160];
    field_path(section, name, path, sizeof path);
    const cJSON *array = get(object, name);
    int n = cJSON_IsArray(array) ? cJSON_GetArraySize(array) : -1;
    if (n < min_count || n > max_count)
        return od_fail(r->err, "%s: field %s: expected an array of %d to %d integers", r->source, path, min_count,
                       max_count);
    for (int i = 0; i < n; i++) {
        snprintf(element, sizeof element, "%s[%d]", path, i);
        if (integer_value(r, cJSON_GetArrayItem(array, i), element, min, max, &out[i]) != 0)
            return -1;
    }
    *count = n;
    return 0;
}

static int read_point(reader *r, const cJSON *object, const char *section, const char *name, double limit,
                      double out[3])
{
    char path[128];
    const cJSON *array = get(object, name);
    int ok = cJSON_IsArray(array) && cJSON_GetArraySize(array) == 3;
    for (int i = 0; ok && i < 3; i++) {
        const cJSON *item = cJSON_GetArrayItem(array, i);
        ok = cJSON_IsNumber(item) && isfinite(item->valuedouble) && fabs(item->valuedouble) <= limit;
        if (ok)
            out[i] = item->valuedouble;
    }
    if (!ok)
        return od_fail(r->err, "%s: field %s: expected [x, y, z] in metres, each in [%g, %g]", r->source,
                       field_path(section, name, path, sizeof path), -limit, limit);
    return 0;
}

/* ---- sections ------------------------------------------------------------- */

static int read_top(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const keys[] = {"name", "variant", "image", "views", "grid", "encoder2d", "volume_net",
                                       "teacher", "render", "localization", "crop", "matcher", "loss", "optim",
                                       "schedule", "augment", NULL};
    if (check_fields(r, root, "", keys) != 0 || read_string(r, root, "", "name", c->name, sizeof c->name) != 0)
        return -1;
    static const char *const variants[] = {"full", "A", "B", "C"};
    const cJSON *item = get(root, "variant");
    int found = -1;
    if (cJSON_IsString(item))
        for (int i = 0; i < 4; i++)
            if (strcmp(item->valuestring, variants[i]) == 0)
                found = i;
    if (found < 0)
        return od_fail(r->err, "%s: field variant: expected \"full\", \"A\", \"B\" or \"C\"", r->source);
    c->variant = (od_model_variant)found;
    return 0;
}

static int read_image_and_views(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const image_keys[] = {"width", "height", NULL};
    static const char *const view_keys[] = {"build", "supervise", "batch", NULL};
    const cJSON *image = get(root, "image");
    const cJSON *views = get(root, "views");
    if (check_fields(r, image, "image", image_keys) != 0 ||
        read_int(r, image, "image", "width", 16, 4096, &c->image_width) != 0 ||
        read_int(r, image, "image", "height", 16, 4096, &c->image_height) != 0)
        return -1;
    if (c->image_width % 16 != 0 || c->image_height % 16 != 0)
        return od_fail(r->err, "%s: field image: width and height must be multiples of 16 (the 2D pyramid's "
                               "coarsest stride), got %lld x %lld",
                       r->source, (long long)c->image_width, (long long)c->image_height);
    return check_fields(r, views, "views", view_keys) != 0 ||
                   read_int(r, views, "views", "build", 1, 64, &c->views_build) != 0 ||
                   read_int(r, views, "views", "supervise", 1, 64, &c->views_supervise) != 0 ||
                   read_int(r, views, "views", "batch", 1, 64, &c->batch) != 0
               ? -1
               : 0;
}

static int read_grid(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const keys[] = {"min", "max", "voxel_size", NULL};
    const cJSON *grid = get(root, "grid");
    if (check_fields(r, grid, "grid", keys) != 0 || read_point(r, grid, "grid", "min", 100.0, c->grid_min) != 0 ||
        read_point(r, grid, "grid", "max", 100.0, c->grid_max) != 0 ||
        read_double(r, grid, "grid", "voxel_size", 1e-4, 10.0, &c->voxel_size) != 0)
        return -1;
    static const char axes[3] = {'x', 'y', 'z'};
    for (int axis = 0; axis < 3; axis++) {
        double extent = (c->grid_max[axis] - c->grid_min[axis]) / c->voxel_size;
        double rounded = floor(extent + 0.5);
        /* The box must hold a whole number of voxels, so that the grid is the box. */
        if (!(extent > 0.5) || fabs(extent - rounded) > 1e-6 * rounded || rounded > 4096.0)
            return od_fail(r->err, "%s: field grid: along %c, max - min must be a positive whole number of "
                                   "voxels, at most 4096, got %g voxels of %g m",
                           r->source, axes[axis], extent, c->voxel_size);
        c->grid_dims[axis] = (int64_t)rounded;
    }
    return 0;
}

static int read_volume_net(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const encoder_keys[] = {"channels", NULL};
    const cJSON *encoder = get(root, "encoder2d");
    if (check_fields(r, encoder, "encoder2d", encoder_keys) != 0 ||
        read_int(r, encoder, "encoder2d", "channels", 1, 1024, &c->encoder_channels) != 0)
        return -1;

    static const char *const keys[] = {"channels", "down_blocks", "up_blocks", "head_hidden", "batchnorm_momentum",
                                       NULL};
    const cJSON *net = get(root, "volume_net");
    int64_t values[OD_MODEL_MAX_LEVELS];
    int down_count = 0, up_count = 0;
    if (check_fields(r, net, "volume_net", keys) != 0 ||
        read_int_array(r, net, "volume_net", "channels", 1, OD_MODEL_MAX_LEVELS, 1, 1024, c->channels,
                       &c->levels) != 0 ||
        read_int_array(r, net, "volume_net", "down_blocks", 1, OD_MODEL_MAX_LEVELS, 1, 16, values, &down_count) != 0)
        return -1;
    if (down_count != c->levels)
        return od_fail(r->err, "%s: field volume_net.down_blocks: expected %d entries, one per level of "
                               "volume_net.channels, got %d",
                       r->source, c->levels, down_count);
    for (int i = 0; i < down_count; i++)
        c->down_blocks[i] = (int)values[i];
    if (read_int_array(r, net, "volume_net", "up_blocks", 0, OD_MODEL_MAX_LEVELS - 1, 1, 16, values, &up_count) != 0)
        return -1;
    if (up_count != c->levels - 1)
        return od_fail(r->err, "%s: field volume_net.up_blocks: expected %d entries, one per level but the "
                               "deepest, got %d",
                       r->source, c->levels - 1, up_count);
    for (int i = 0; i < up_count; i++)
        c->up_blocks[i] = (int)values[i];
    if (read_int(r, net, "volume_net", "head_hidden", 1, 4096, &c->head_hidden) != 0 ||
        read_double(r, net, "volume_net", "batchnorm_momentum", 0.0, 1.0, &c->batchnorm_momentum) != 0)
        return -1;

    int64_t factor = (int64_t)1 << (c->levels - 1);
    for (int axis = 0; axis < 3; axis++)
        if (c->grid_dims[axis] % factor != 0)
            return od_fail(r->err, "%s: field volume_net.channels: %d levels halve the grid %d times, so every "
                                   "grid dimension must be divisible by %lld, got %lld x %lld x %lld voxels",
                           r->source, c->levels, c->levels - 1, (long long)factor, (long long)c->grid_dims[0],
                           (long long)c->grid_dims[1], (long long)c->grid_dims[2]);
    return 0;
}

static int read_teacher(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const keys[] = {"network", "layer", "input_size", "channels", NULL};
    const cJSON *teacher = get(root, "teacher");
    if (check_fields(r, teacher, "teacher", keys) != 0 ||
        read_string(r, teacher, "teacher", "network", c->teacher_network, sizeof c->teacher_network) != 0)
        return -1;
    od_teacher_network network;
    if (od_teacher_network_parse(c->teacher_network, &network, NULL) != 0)
        return od_fail(r->err, "%s: field teacher.network: expected \"inceptionv3\", \"mobilenetv2\" or "
                               "\"dinov2\", got \"%s\"",
                       r->source, c->teacher_network);
    return read_string(r, teacher, "teacher", "layer", c->teacher_layer, sizeof c->teacher_layer) != 0 ||
                   read_int(r, teacher, "teacher", "input_size", 16, 4096, &c->teacher_input_size) != 0 ||
                   read_int(r, teacher, "teacher", "channels", 1, 4096, &c->teacher_channels) != 0
               ? -1
               : 0;
}

static int read_render(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const keys[] = {"samples_per_ray", "colour_size", "mask_size", "feature_size", NULL};
    const cJSON *render = get(root, "render");
    int64_t image_side = c->image_width < c->image_height ? c->image_width : c->image_height;
    return check_fields(r, render, "render", keys) != 0 ||
                   read_int(r, render, "render", "samples_per_ray", 1, 4096, &c->samples_per_ray) != 0 ||
                   read_int(r, render, "render", "colour_size", 1, image_side, &c->colour_size) != 0 ||
                   read_int(r, render, "render", "mask_size", 1, image_side, &c->mask_size) != 0 ||
                   read_int(r, render, "render", "feature_size", 1, image_side, &c->feature_size) != 0
               ? -1
               : 0;
}

static int read_objects(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const localization_keys[] = {"density_threshold", NULL};
    static const char *const localization_keys_boxes[] = {"density_threshold", "boxes", NULL};
    static const char *const crop_keys[] = {"cells", "pad_voxels", NULL};
    static const char *const crop_keys_lifted[] = {"cells", "pad_voxels", "lifted", NULL};
    static const char *const matcher_keys[] = {"channels", "heads", "blocks", "top_k", NULL};
    const cJSON *localization = get(root, "localization");
    const cJSON *crop = get(root, "crop");
    const cJSON *matcher = get(root, "matcher");
    /* localization.boxes is optional: files written before it existed
     * localize by density. */
    const int has_boxes = cJSON_IsObject(localization) && get(localization, "boxes") != NULL;
    char boxes[16] = "density";
    /* crop.lifted is optional too: older files crop the volume network's output only. */
    const int has_lifted = cJSON_IsObject(crop) && get(crop, "lifted") != NULL;
    c->crop_lifted = 0;
    if (check_fields(r, localization, "localization", has_boxes ? localization_keys_boxes : localization_keys) != 0 ||
        read_double(r, localization, "localization", "density_threshold", 0.0, 1e6, &c->density_threshold) != 0 ||
        (has_boxes && read_string(r, localization, "localization", "boxes", boxes, sizeof boxes) != 0) ||
        check_fields(r, crop, "crop", has_lifted ? crop_keys_lifted : crop_keys) != 0 ||
        read_int(r, crop, "crop", "cells", 1, 64, &c->crop_cells) != 0 ||
        (has_lifted && read_bool(r, crop, "crop", "lifted", &c->crop_lifted) != 0) ||
        read_double(r, crop, "crop", "pad_voxels", 0.0, 64.0, &c->crop_pad_voxels) != 0 ||
        check_fields(r, matcher, "matcher", matcher_keys) != 0 ||
        read_int(r, matcher, "matcher", "channels", 1, 4096, &c->matcher_channels) != 0 ||
        read_int(r, matcher, "matcher", "heads", 1, 64, &c->matcher_heads) != 0 ||
        read_int(r, matcher, "matcher", "blocks", 1, 16, &c->matcher_blocks) != 0 ||
        read_int(r, matcher, "matcher", "top_k", 1, 4096, &c->top_k) != 0)
        return -1;
    if (strcmp(boxes, "density") != 0 && strcmp(boxes, "masks") != 0)
        return od_fail(r->err, "%s: field localization.boxes: expected \"density\" or \"masks\", got \"%s\"",
                       r->source, boxes);
    c->boxes_from_masks = strcmp(boxes, "masks") == 0;
    if (c->matcher_channels % c->matcher_heads != 0)
        return od_fail(r->err, "%s: field matcher.channels: expected a multiple of matcher.heads (%lld), got %lld",
                       r->source, (long long)c->matcher_heads, (long long)c->matcher_channels);
    return 0;
}

static int read_loss(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const keys[] = {"colour", "mask", "feature", "floor_pixel_weight", "classification",
                                       "reconstruction_stage2", "anomaly_weight", "normal_weight", NULL};
    const cJSON *loss = get(root, "loss");
    if (check_fields(r, loss, "loss", keys) != 0 || read_double(r, loss, "loss", "colour", 0.0, 1e3, &c->loss_colour) != 0 ||
        read_double(r, loss, "loss", "mask", 0.0, 1e3, &c->loss_mask) != 0 ||
        read_double(r, loss, "loss", "feature", 0.0, 1e3, &c->loss_feature) != 0 ||
        read_double(r, loss, "loss", "floor_pixel_weight", 0.0, 1.0, &c->floor_pixel_weight) != 0 ||
        read_double(r, loss, "loss", "classification", 0.0, 1e3, &c->loss_classification) != 0 ||
        read_double(r, loss, "loss", "reconstruction_stage2", 0.0, 1e3, &c->loss_reconstruction_stage2) != 0 ||
        read_double(r, loss, "loss", "anomaly_weight", 0.0, 1.0, &c->anomaly_weight) != 0 ||
        read_double(r, loss, "loss", "normal_weight", 0.0, 1.0, &c->normal_weight) != 0)
        return -1;
    if (c->anomaly_weight + c->normal_weight <= 0.0)
        return od_fail(r->err, "%s: field loss.anomaly_weight: anomaly_weight and normal_weight must not both be 0",
                       r->source);
    return 0;
}

static int read_training(reader *r, const cJSON *root, od_model_config *c)
{
    static const char *const optim_keys[] = {"lr_backbone", "lr_matcher", "beta1", "beta2", "eps", "clip_grad_norm",
                                             NULL};
    static const char *const schedule_keys[] = {"stage1_steps", "stage2_steps",  "warmup_steps",
                                                "log_every",    "preview_every", "checkpoint_every", NULL};
    static const char *const augment_keys[] = {"rotation_degrees", "translation", "flips", NULL};
    const cJSON *optim = get(root, "optim");
    const cJSON *schedule = get(root, "schedule");
    const cJSON *augment = get(root, "augment");
    const int64_t max_steps = 100000000;
    /* Adam needs betas in [0, 1), because beta = 1 would never update the moment. */
    const double below_one = nextafter(1.0, 0.0);
    return check_fields(r, optim, "optim", optim_keys) != 0 ||
                   read_double(r, optim, "optim", "lr_backbone", 0.0, 1.0, &c->lr_backbone) != 0 ||
                   read_double(r, optim, "optim", "lr_matcher", 0.0, 1.0, &c->lr_matcher) != 0 ||
                   read_double(r, optim, "optim", "beta1", 0.0, below_one, &c->beta1) != 0 ||
                   read_double(r, optim, "optim", "beta2", 0.0, below_one, &c->beta2) != 0 ||
                   read_double(r, optim, "optim", "eps", 0.0, 1.0, &c->eps) != 0 ||
                   read_double(r, optim, "optim", "clip_grad_norm", 0.0, 1e9, &c->clip_grad_norm) != 0 ||
                   check_fields(r, schedule, "schedule", schedule_keys) != 0 ||
                   read_int(r, schedule, "schedule", "stage1_steps", 0, max_steps, &c->stage1_steps) != 0 ||
                   read_int(r, schedule, "schedule", "stage2_steps", 0, max_steps, &c->stage2_steps) != 0 ||
                   read_int(r, schedule, "schedule", "warmup_steps", 0, max_steps, &c->warmup_steps) != 0 ||
                   read_int(r, schedule, "schedule", "log_every", 1, max_steps, &c->log_every) != 0 ||
                   read_int(r, schedule, "schedule", "preview_every", 1, max_steps, &c->preview_every) != 0 ||
                   read_int(r, schedule, "schedule", "checkpoint_every", 1, max_steps, &c->checkpoint_every) != 0 ||
                   check_fields(r, augment, "augment", augment_keys) != 0 ||
                   read_double(r, augment, "augment", "rotation_degrees", 0.0, 180.0, &c->rotation_degrees) != 0 ||
                   read_double(r, augment, "augment", "translation", 0.0, 10.0, &c->translation) != 0 ||
                   read_bool(r, augment, "augment", "flips", &c->flips) != 0
               ? -1
               : 0;
}

/* ---- entry points ------------------------------------------------------- */

int od_model_config_parse(const char *text, size_t size, const char *source, od_model_config *config,
                          od_error *err)
{
    memset(config, 0, sizeof *config);
    cJSON *root = cJSON_ParseWithLength(text, size);
    if (root == NULL)
        return od_fail(err, "%s: invalid JSON near byte %td (expected one object of sections)", source,
                       cJSON_GetErrorPtr() != NULL ? cJSON_GetErrorPtr() - text : (ptrdiff_t)0);
    reader r = {source, err};
    int rc = read_top(&r, root, config) != 0 || read_image_and_views(&r, root, config) != 0 ||
                     read_grid(&r, root, config) != 0 || read_volume_net(&r, root, config) != 0 ||
                     read_teacher(&r, root, config) != 0 || read_render(&r, root, config) != 0 ||
                     read_objects(&r, root, config) != 0 || read_loss(&r, root, config) != 0 ||
                     read_training(&r, root, config) != 0
                 ? -1
                 : 0;
    cJSON_Delete(root);
    return rc;
}

int od_model_config_load(const char *path, od_model_config *config, od_error *err)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return od_fail(err, "%s: failed to open the configuration: %s", path, strerror(errno));
    char *text = malloc(MAX_CONFIG_BYTES + 1);
    if (text == NULL) {
        fclose(file);
        return od_fail(err, "%s: out of memory", path);
    }
    size_t size = fread(text, 1, MAX_CONFIG_BYTES + 1, file);
    int read_failed = ferror(file);
    fclose(file);
    int rc;
    if (read_failed)
        rc = od_fail(err, "%s: read failed", path);
    else if (size > MAX_CONFIG_BYTES)
        rc = od_fail(err, "%s: larger than %d bytes, not a configuration", path, MAX_CONFIG_BYTES);
    else
        rc = od_model_config_parse(text, size, path, config, err);
    free(text);
    return rc;
}

const char *od_model_variant_name(od_model_variant variant)
{
    switch (variant) {
    case OD_MODEL_VARIANT_FULL:
        return "full";
    case OD_MODEL_VARIANT_A:
        return "A";
    case OD_MODEL_VARIANT_B:
        return "B";
    case OD_MODEL_VARIANT_C:
        return "C";
    }
    return "unknown";
}
