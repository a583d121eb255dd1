/* Stage 1 of training: see stage1.h. */
#include "model/stage1.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/rng.h"
#include "geometry/grid.h"
#include "geometry/lift.h"
#include "geometry/rays.h"
#include "model/volume_net.h"
#include "nn/loss.h"
#include "nn/render.h"

/* ---- scenes ------------------------------------------------------------------ */

static void free_view(od_stage1_view *view)
{
    od_free(view->encoder);
    od_free(view->colour);
    od_free(view->colour_weight);
    od_free(view->mask);
    od_free(view->teacher);
    od_free(view->teacher_weight);
    memset(view, 0, sizeof *view);
}

void od_stage1_scene_free(od_stage1_scene *scene)
{
    if (scene == NULL)
        return;
    for (int i = 0; i < scene->view_count; i++)
        free_view(&scene->views[i]);
    free(scene->views);
    free(scene);
}

od_stage1_scene *od_stage1_scene_new(const od_model_config *config, int64_t encoder_height,
                                     int64_t encoder_width, int64_t encoder_channels, int encoder_stride,
                                     int view_count, od_error *err)
{
    if (config == NULL || encoder_height < 1 || encoder_width < 1 || encoder_channels < 1 || encoder_stride < 1 ||
        view_count < 1) {
        od_fail(err, "stage 1: a scene needs a configuration, an encoder map of at least 1 x 1 x 1 cells, a "
                     "stride of at least 1 and at least one view");
        return NULL;
    }
    od_stage1_scene *scene = calloc(1, sizeof *scene);
    od_stage1_view *views = calloc((size_t)view_count, sizeof *views);
    if (scene == NULL || views == NULL) {
        free(scene);
        free(views);
        od_fail(err, "stage 1: out of memory for a scene of %d views", view_count);
        return NULL;
    }
    scene->views = views;
    scene->view_count = view_count;
    scene->encoder_height = encoder_height;
    scene->encoder_width = encoder_width;
    scene->encoder_channels = encoder_channels;
    scene->encoder_stride = encoder_stride;
    scene->colour_size = config->colour_size;
    scene->mask_size = config->mask_size;
    scene->feature_size = config->feature_size;
    scene->teacher_channels = config->teacher_channels;
    return scene;
}

/* Resizes a one- or three-channel image to size x size into out
 * (size^2 x channels floats). */
static int resize_into(const od_image *image, int64_t size, float *out, od_error *err)
{
    od_image small = {0};
    if (od_image_resize(image, (int)size, (int)size, &small, err) != 0)
        return -1;
    memcpy(out, small.pixels, (size_t)(size * size * image->channels) * sizeof(float));
    od_image_free(&small);
    return 0;
}

/* Writes the pixel weights at size x size: 1 on objects, floor_weight on
 * the floor, blended where the resized mask is fractional. */
static int pixel_weights(const od_image *mask, int64_t size, double floor_weight, float *out, od_error *err)
{
    const int64_t count = size * size;
    if (mask == NULL) {
        for (int64_t i = 0; i < count; i++)
            out[i] = (float)floor_weight;
        return 0;
    }
    if (resize_into(mask, size, out, err) != 0)
        return -1;
    for (int64_t i = 0; i < count; i++) {
        const float m = fminf(fmaxf(out[i], 0.0f), 1.0f);
        out[i] = (float)floor_weight + (float)(1.0 - floor_weight) * m;
    }
    return 0;
}

/* Samples the teacher map at the centres of a size x size render's pixels
 * (stage1.h gives the rule). */
static void sample_teacher(const od_stage1_map *map, int64_t size, float *out)
{
    const int64_t C = map->channels;
    const double scale = (double)map->input_size / (double)size;
    for (int64_t i = 0; i < size; i++) {
        double r = (((double)i + 0.5) * scale - 0.5 - map->offset) / (double)map->stride;
        r = fmin(fmax(r, 0.0), (double)(map->height - 1));
        const int64_t r0 = (int64_t)floor(r), r1 = r0 + 1 < map->height ? r0 + 1 : r0;
        const float fr = (float)(r - (double)r0);
        for (int64_t j = 0; j < size; j++) {
            double q = (((double)j + 0.5) * scale - 0.5 - map->offset) / (double)map->stride;
            q = fmin(fmax(q, 0.0), (double)(map->width - 1));
            const int64_t q0 = (int64_t)floor(q), q1 = q0 + 1 < map->width ? q0 + 1 : q0;
            const float fq = (float)(q - (double)q0);
            const float *a = map->features + (r0 * map->width + q0) * C;
            const float *b = map->features + (r0 * map->width + q1) * C;
            const float *c = map->features + (r1 * map->width + q0) * C;
            const float *d = map->features + (r1 * map->width + q1) * C;
            float *o = out + (i * size + j) * C;
            for (int64_t k = 0; k < C; k++) {
                const float top = a[k] + fq * (b[k] - a[k]);
                const float bottom = c[k] + fq * (d[k] - c[k]);
                o[k] = top + fr * (bottom - top);
            }
        }
    }
}

int od_stage1_scene_set_view(od_stage1_scene *scene, const od_model_config *config, int index,
                             const od_image *image, const od_image *mask, const od_camera *camera,
                             const od_stage1_map *encoder, const od_stage1_map *teacher, od_error *err)
{
    if (scene == NULL || config == NULL || image == NULL || camera == NULL || encoder == NULL || teacher == NULL ||
        encoder->features == NULL || teacher->features == NULL)
        return od_fail(err, "stage 1: a view needs its image, camera, encoder map and teacher map");
    if (index < 0 || index >= scene->view_count)
        return od_fail(err, "stage 1: view %d is out of range (the scene has %d views)", index, scene->view_count);
    if (image->channels != 3 || image->width < 1 || image->height < 1)
        return od_fail(err, "stage 1: view %d: the image must be RGB, not %d channels", index, image->channels);
    if (mask != NULL && (mask->channels != 1 || mask->width != image->width || mask->height != image->height))
        return od_fail(err, "stage 1: view %d: the mask must be one channel at the image's size %d x %d", index,
                       image->width, image->height);
    if (encoder->height != scene->encoder_height || encoder->width != scene->encoder_width ||
        encoder->channels != scene->encoder_channels || encoder->stride != scene->encoder_stride)
        return od_fail(err,
                       "stage 1: view %d: the encoder map is %lld x %lld x %lld at stride %lld, expected %lld x "
                       "%lld x %lld at stride %d",
                       index, (long long)encoder->height, (long long)encoder->width, (long long)encoder->channels,
                       (long long)encoder->stride, (long long)scene->encoder_height,
                       (long long)scene->encoder_width, (long long)scene->encoder_channels, scene->encoder_stride);
    if (fabs(encoder->offset - 0.5 * (double)(encoder->stride - 1)) > 1e-6 || encoder->input_size < 1)
        return od_fail(err,
                       "stage 1: view %d: the encoder's first cell centre is at input pixel %g, but lifting "
                       "assumes (stride - 1) / 2 = %g",
                       index, encoder->offset, 0.5 * (double)(encoder->stride - 1));
    if (teacher->channels != scene->teacher_channels || teacher->height < 1 || teacher->width < 1 ||
        teacher->stride < 1 || teacher->input_size < 1 || !isfinite(teacher->offset))
        return od_fail(err, "stage 1: view %d: the teacher map has %lld channels, expected teacher.channels = %lld",
                       index, (long long)teacher->channels, (long long)scene->teacher_channels);

    od_stage1_view *view = &scene->views[index];
    free_view(view);
    const int64_t fc = scene->colour_size * scene->colour_size, fm = scene->mask_size * scene->mask_size,
                  ff = scene->feature_size * scene->feature_size;
    const int64_t encoder_count = scene->encoder_height * scene->encoder_width * scene->encoder_channels;
    view->encoder = od_alloc_floats(encoder_count);
    view->colour = od_alloc_floats(fc * 3);
    view->colour_weight = od_alloc_floats(fc);
    view->mask = od_alloc_floats(fm);
    view->teacher = od_alloc_floats(ff * scene->teacher_channels);
    view->teacher_weight = od_alloc_floats(ff);
    if (view->encoder == NULL || view->colour == NULL || view->colour_weight == NULL || view->mask == NULL ||
        view->teacher == NULL || view->teacher_weight == NULL) {
        free_view(view);
        return od_fail(err, "stage 1: out of memory for view %d", index);
    }
    view->camera = *camera;
    od_camera_resize(&view->camera, (int)encoder->input_size, (int)encoder->input_size);
    memcpy(view->encoder, encoder->features, (size_t)encoder_count * sizeof(float));
    int status = resize_into(image, scene->colour_size, view->colour, err);
    if (status == 0)
        status = pixel_weights(mask, scene->colour_size, config->floor_pixel_weight, view->colour_weight, err);
    if (status == 0 && mask != NULL)
        status = resize_into(mask, scene->mask_size, view->mask, err);
    else if (status == 0)
        memset(view->mask, 0, (size_t)fm * sizeof(float));
    if (status == 0)
        status = pixel_weights(mask, scene->feature_size, config->floor_pixel_weight, view->teacher_weight, err);
    if (status == 0)
        sample_teacher(teacher, scene->feature_size, view->teacher);
    if (status != 0) {
        free_view(view);
        return od_fail_context(err, "stage 1: view %d", index);
    }
    return 0;
}

/* Prepares a scene with the teacher targets from either a teacher (and
 * optional PCA) or a feature cache with its metadata. */
static od_stage1_scene *prepare_scene(const od_scene *scene, const od_model_config *config, od_teacher *encoder,
                                      od_teacher *teacher, const od_pca *pca, const od_feature_cache *cache,
                                      const od_feature_cache_info *cache_info, od_error *err)
{
    if (scene == NULL || config == NULL || encoder == NULL || (teacher == NULL && cache == NULL) ||
        (cache != NULL && cache_info == NULL)) {
        od_fail(err, "stage 1: preparing a scene needs the scene, a configuration, an encoder and a teacher or "
                     "a feature cache with its metadata");
        return NULL;
    }
    const od_teacher_info e = od_teacher_get_info(encoder);
    od_teacher_info t;
    if (teacher != NULL) {
        t = od_teacher_get_info(teacher);
    } else {
        memset(&t, 0, sizeof t);
        if (cache_info->input_height != cache_info->input_width) {
            od_fail(err, "stage 1: the feature cache's input is %lld x %lld, but teachers take square inputs",
                    (long long)cache_info->input_height, (long long)cache_info->input_width);
            return NULL;
        }
        t.network_name = cache_info->network;
        t.layer = cache_info->layer;
        t.input_size = cache_info->input_width;
        t.stride = cache_info->stride;
        t.offset = cache_info->offset;
        t.channels = cache_info->channels;
    }
    if (e.input_size % e.stride != 0 || fabs(e.offset - 0.5 * (double)(e.stride - 1)) > 1e-6) {
        od_fail(err,
                "stage 1: the encoder %s %s at input %lld has its first cell centre at %g, but lifting needs "
                "(stride - 1) / 2 = %g; use an input size that is a multiple of the stride %lld",
                e.network_name, e.layer, (long long)e.input_size, e.offset, 0.5 * (double)(e.stride - 1),
                (long long)e.stride);
        return NULL;
    }
    const int64_t k = pca != NULL ? pca->components_count : t.channels;
    if ((pca != NULL && pca->channels != t.channels) || k != config->teacher_channels) {
        od_fail(err,
                "stage 1: the teacher %s %s gives %lld channels%s, but teacher.channels is %lld",
                t.network_name, t.layer, (long long)k, pca != NULL ? " after the PCA" : "",
                (long long)config->teacher_channels);
        return NULL;
    }
    od_stage1_scene *out = od_stage1_scene_new(config, e.height, e.width, e.channels, (int)e.stride,
                                               scene->view_count, err);
    if (out == NULL)
        return NULL;
    float *encoder_map = od_alloc_floats(e.height * e.width * e.channels);
    float *teacher_map = teacher != NULL ? od_alloc_floats(t.height * t.width * t.channels) : NULL;
    float *reduced = pca != NULL ? od_alloc_floats(t.height * t.width * k) : NULL;
    int status = encoder_map == NULL || (teacher != NULL && teacher_map == NULL) || (pca != NULL && reduced == NULL)
                     ? od_fail(err, "stage 1: out of memory for the feature maps")
                     : 0;
    for (int v = 0; v < scene->view_count && status == 0; v++) {
        od_image image = {0}, mask = {0};
        int has_mask = 0;
        status = od_scene_read_view_image(scene, v, &image, err);
        if (status == 0)
            status = od_scene_read_view_mask(scene, v, &mask, &has_mask, err);
        if (status == 0)
            status = od_teacher_run(encoder, &image, encoder_map, err);
        od_stage1_map tm = {pca != NULL ? reduced : teacher_map, t.height, t.width, k, t.input_size, t.stride,
                            t.offset};
        od_tensor *cached = NULL;
        if (status == 0 && teacher != NULL)
            status = od_teacher_run(teacher, &image, teacher_map, err);
        if (status == 0 && pca != NULL)
            status = od_pca_transform(pca, teacher_map, t.height * t.width, reduced, err);
        if (status == 0 && cache != NULL) {
            cached = od_feature_cache_get(cache, scene->views[v].name, err);
            status = cached == NULL ? -1 : 0;
            if (cached != NULL) {
                tm.features = cached->data;
                tm.height = cached->shape[0];
                tm.width = cached->shape[1];
            }
        }
        if (status == 0) {
            const od_stage1_map em = {encoder_map, e.height, e.width, e.channels, e.input_size, e.stride, e.offset};
            status = od_stage1_scene_set_view(out, config, v, &image, has_mask ? &mask : NULL,
                                              &scene->views[v].camera, &em, &tm, err);
        }
        if (status != 0)
            od_fail_context(err, "%s", scene->views[v].name);
        od_tensor_free(cached);
        od_image_free(&image);
        od_image_free(&mask);
    }
    od_free(encoder_map);
    od_free(teacher_map);
    od_free(reduced);
    if (status != 0) {
        od_stage1_scene_free(out);
        return NULL;
    }
    return out;
}

od_stage1_scene *od_stage1_scene_prepare(const od_scene *scene, const od_model_config *config,
                                         od_teacher *encoder, od_teacher *teacher, const od_pca *pca,
                                         od_error *err)
{
    if (teacher == NULL) {
        od_fail(err, "stage 1: preparing a scene needs a teacher");
        return NULL;
    }
    return prepare_scene(scene, config, encoder, teacher, pca, NULL, NULL, err);
}

od_stage1_scene *od_stage1_scene_prepare_cached(const od_scene *scene, const od_model_config *config,
                                                od_teacher *encoder, const od_feature_cache *cache,
                                                const od_feature_cache_info *info, od_error *err)
{
    if (cache == NULL || info == NULL) {
        od_fail(err, "stage 1: preparing a scene from a cache needs the cache and its metadata");
        return NULL;
    }
    return prepare_scene(scene, config, encoder, NULL, NULL, cache, info, err);
}

/* ---- the step ------------------------------------------------------------------- */

/* Buffers of one render kind (colour, silhouette or features) over the
 * supervising views of a pass. */
typedef struct render_buffers {
    int64_t size;     /* side of each view's render */
    int64_t channels; /* 3, 0 or k */
    int64_t capacity; /* rays allocated */
    int densities_only; /* keeps the raw densities alone, because the features' gradient never reaches the density */
    float *points, *delta, *samples;
    float *out, *opacity, *d_out, *d_opacity;
    float *target, *weight;
} render_buffers;

struct od_stage1 {
    od_model_config config;
    od_grid grid;
    int64_t D, H, W, voxels, in_channels, k, S;
    od_params *params;
    od_volume_net *net;
    od_adam *adam;
    od_lift *lift;
    float *volume_in;
    float *d_density, *d_colour, *d_features;
    render_buffers colour, mask, feature;
    od_rng rng;
    int64_t steps;
    od_stage1_times times;
};

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void free_buffers(render_buffers *b)
{
    od_free(b->points);
    od_free(b->delta);
    od_free(b->samples);
    od_free(b->out);
    od_free(b->opacity);
    od_free(b->d_out);
    od_free(b->d_opacity);
    od_free(b->target);
    od_free(b->weight);
    const int64_t size = b->size, channels = b->channels;
    const int densities_only = b->densities_only;
    memset(b, 0, sizeof *b);
    b->size = size;
    b->channels = channels;
    b->densities_only = densities_only;
}

/* Makes room for `views` renders of the kind. */
static int reserve_buffers(render_buffers *b, int64_t views, int64_t S, od_error *err)
{
    const int64_t rays = views * b->size * b->size;
    if (rays <= b->capacity)
        return 0;
    free_buffers(b);
    const int64_t C = b->channels > 0 ? b->channels : 1;
    b->points = od_alloc_floats(rays * S * 3);
    b->delta = od_alloc_floats(rays * S);
    b->samples = od_alloc_floats(rays * S * (b->densities_only ? 1 : 1 + b->channels));
    b->out = od_alloc_floats(rays * C);
    b->opacity = od_alloc_floats(rays);
    b->d_out = od_alloc_floats(rays * C);
    b->d_opacity = od_alloc_floats(rays);
    b->target = od_alloc_floats(rays * C);
    b->weight = od_alloc_floats(rays);
    if (b->points == NULL || b->delta == NULL || b->samples == NULL || b->out == NULL || b->opacity == NULL ||
        b->d_out == NULL || b->d_opacity == NULL || b->target == NULL || b->weight == NULL) {
        free_buffers(b);
        return od_fail(err, "stage 1: out of memory for the renders of %lld views", (long long)views);
    }
    b->capacity = rays;
    return 0;
}

void od_stage1_free(od_stage1 *s)
{
    if (s == NULL)
        return;
    od_volume_net_free(s->net);
    od_params_free(s->params);
    od_adam_free(s->adam);
    od_lift_free(s->lift);
    od_free(s->volume_in);
    od_free(s->d_density);
    od_free(s->d_colour);
    od_free(s->d_features);
    free_buffers(&s->colour);
    free_buffers(&s->mask);
    free_buffers(&s->feature);
    free(s);
}

od_stage1 *od_stage1_new(const od_model_config *config, int64_t encoder_channels, uint64_t seed, od_error *err)
{
    if (config == NULL || encoder_channels < 1) {
        od_fail(err, "stage 1: needs a configuration and at least one encoder channel");
        return NULL;
    }
    if (config->batch != 1) {
        od_fail(err, "stage 1: views.batch is %lld, but a step trains on one scene (batch 1)",
                (long long)config->batch);
        return NULL;
    }
    od_stage1 *s = calloc(1, sizeof *s);
    if (s == NULL) {
        od_fail(err, "stage 1: out of memory");
        return NULL;
    }
    s->config = *config;
    int status = od_grid_from_bounds(config->grid_min, config->grid_max, config->voxel_size, &s->grid, err);
    s->W = s->grid.dims[0];
    s->H = s->grid.dims[1];
    s->D = s->grid.dims[2];
    s->voxels = s->D * s->H * s->W;
    s->in_channels = encoder_channels;
    s->k = config->teacher_channels;
    s->S = config->samples_per_ray;
    od_volume_net_config net_config = od_volume_net_config_from_model(config);
    net_config.in_channels = encoder_channels;
    if (status == 0 && (s->params = od_params_new(err)) == NULL)
        status = -1;
    if (status == 0 && (s->net = od_volume_net_new(&net_config, s->params, "volume_net.", err)) == NULL)
        status = -1;
    if (status == 0) {
        od_params_initialize(s->params, seed);
        /* Start the scene nearly empty, so that a ray crosses the grid
         * with little opacity. With the default bias (near 0, softplus
         * 0.69 per voxel edge) every ray is opaque within two voxels, and
         * the silhouette loss did not move in 160 steps at lr 1e-4. */
        od_param *density_bias = od_params_find(s->params, "volume_net.density_head.2.bias");
        if (density_bias != NULL)
            for (int64_t i = 0; i < density_bias->count; i++)
                density_bias->value[i] = OD_STAGE1_DENSITY_BIAS;
        s->adam = od_adam_new(err);
        status = s->adam == NULL ? -1 : 0;
    }
    if (status == 0) {
        od_adam_group_config group = {config->lr_backbone, config->beta1, config->beta2, config->eps, 0.0, 0};
        const int index = od_adam_add_group(s->adam, &group, err);
        status = index < 0 ? -1 : od_params_add_to_adam(s->params, s->adam, "", index, NULL, err);
    }
    if (status == 0 && (s->lift = od_lift_new(&s->grid, encoder_channels)) == NULL)
        status = od_fail(err, "stage 1: cannot make the lifting accumulator (out of memory)");
    if (status == 0) {
        s->volume_in = od_alloc_floats(s->voxels * encoder_channels);
        s->d_density = od_alloc_floats(s->voxels);
        s->d_colour = od_alloc_floats(s->voxels * 3);
        s->d_features = od_alloc_floats(s->voxels * s->k);
        if (s->volume_in == NULL || s->d_density == NULL || s->d_colour == NULL || s->d_features == NULL)
            status = od_fail(err, "stage 1: out of memory for the volumes");
    }
    if (status != 0) {
        od_stage1_free(s);
        return NULL;
    }
    s->colour.size = config->colour_size;
    s->colour.channels = 3;
    s->mask.size = config->mask_size;
    s->mask.channels = 0;
    s->feature.size = config->feature_size;
    s->feature.channels = s->k;
    s->feature.densities_only = 1;
    od_rng_seed(&s->rng, seed ^ 0x5354414745314a49ull); /* the jitter's stream, apart from the weights' */
    return s;
}

od_params *od_stage1_params(const od_stage1 *s)
{
    return s->params;
}

od_adam *od_stage1_adam(const od_stage1 *s)
{
    return s->adam;
}

int64_t od_stage1_step_count(const od_stage1 *s)
{
    return s->steps;
}

void od_stage1_set_step_count(od_stage1 *s, int64_t steps)
{
    s->steps = steps;
}

int od_stage1_last_renders(const od_stage1 *s, od_stage1_renders *r, od_error *err)
{
    if (s->colour.capacity == 0 || s->feature.capacity == 0)
        return od_fail(err, "stage 1: no step has rendered yet");
    const int shared = s->mask.size == s->feature.size;
    r->colour = s->colour.out;
    r->colour_target = s->colour.target;
    r->mask = shared ? s->feature.opacity : s->mask.opacity;
    r->mask_target = s->mask.target;
    r->features = s->feature.out;
    r->feature_target = s->feature.target;
    r->colour_size = s->colour.size;
    r->mask_size = s->mask.size;
    r->feature_size = s->feature.size;
    r->feature_channels = s->k;
    return 0;
}

od_stage1_times od_stage1_get_times(const od_stage1 *s)
{
    return s->times;
}

double od_stage1_volume_macs(const od_stage1 *s)
{
    return 2.0 * od_volume_net_forward_macs(s->net);
}

/* Samples the rays of every supervising view for one render kind. */
static int sample_rays(od_stage1 *s, render_buffers *b, const od_stage1_scene *scene, const int *views, int count,
                       const od_rng *stream, od_error *err)
{
    const int64_t per_view = b->size * b->size;
    for (int i = 0; i < count; i++) {
        const od_rng jitter = od_rng_fork(stream, (uint64_t)i);
        if (od_rays_sample(&scene->views[views[i]].camera, (int)b->size, (int)b->size, &s->grid, (int)s->S,
                           &jitter, b->points + i * per_view * s->S * 3, b->delta + i * per_view * s->S, err) != 0)
            return -1;
    }
    return 0;
}

/* One pass: `build` lifts, `supervise` is rendered. Adds 1/2 of the
 * gradient of the weighted total to the parameters and the pass's losses
 * to sums[0..2]. */
static int run_pass(od_stage1 *s, const od_stage1_scene *scene, const int *build, int build_count,
                    const int *supervise, int count, int pass, double sums[3], od_error *err)
{
    const od_model_config *c = &s->config;
    double t0 = now_seconds();
    od_lift_clear(s->lift);
    for (int i = 0; i < build_count; i++) {
        const od_stage1_view *v = &scene->views[build[i]];
        if (od_lift_add_view(s->lift, &v->camera, v->encoder, scene->encoder_height, scene->encoder_width,
                             scene->encoder_stride, err) != 0)
            return -1;
    }
    if (od_lift_finish(s->lift, s->volume_in, NULL, err) != 0)
        return -1;
    double t1 = now_seconds();
    s->times.lift += t1 - t0;

    if (od_volume_net_forward(s->net, s->volume_in, 1, err) != 0)
        return -1;
    const float *density = od_volume_net_density(s->net);
    const float *colour = od_volume_net_colour(s->net);
    const float *features = od_volume_net_features(s->net);
    t0 = now_seconds();
    s->times.volume_forward += t0 - t1;

    render_buffers *kinds[3] = {&s->colour, &s->mask, &s->feature};
    const float *volumes[3] = {colour, NULL, features};
    const od_rng step_stream = od_rng_fork(&s->rng, (uint64_t)s->steps);
    /* At equal sizes the feature render's opacity is the silhouette, so the mask needs no render of its own. */
    const int shared = s->mask.size == s->feature.size;
    for (int kind = 0; kind < 3; kind++) {
        render_buffers *b = kinds[kind];
        const od_rng stream = od_rng_fork(&step_stream, (uint64_t)(pass * 3 + kind));
        const int64_t rays = count * b->size * b->size;
        if (reserve_buffers(b, count, s->S, err) != 0)
            return -1;
        if (kind == 1 && shared)
            continue;
        if (sample_rays(s, b, scene, supervise, count, &stream, err) != 0)
            return -1;
        float *out = b->channels > 0 ? b->out : NULL;
        const int status = b->densities_only
                               ? od_render_forward_densities(out, b->opacity, b->samples, density, volumes[kind],
                                                             b->points, b->delta, s->D, s->H, s->W, b->channels,
                                                             rays, s->S, err)
                               : od_render_forward(out, b->opacity, b->samples, density, volumes[kind], b->points,
                                                   b->delta, s->D, s->H, s->W, b->channels, rays, s->S, err);
        if (status != 0)
            return -1;
    }
    t1 = now_seconds();
    s->times.render_forward += t1 - t0;

    /* targets of the supervising views, concatenated */
    const int64_t pc = s->colour.size * s->colour.size, pm = s->mask.size * s->mask.size,
                  pf = s->feature.size * s->feature.size;
    for (int i = 0; i < count; i++) {
        const od_stage1_view *v = &scene->views[supervise[i]];
        memcpy(s->colour.target + i * pc * 3, v->colour, (size_t)(pc * 3) * sizeof(float));
        memcpy(s->colour.weight + i * pc, v->colour_weight, (size_t)pc * sizeof(float));
        memcpy(s->mask.target + i * pm, v->mask, (size_t)pm * sizeof(float));
        memcpy(s->feature.target + i * pf * s->k, v->teacher, (size_t)(pf * s->k) * sizeof(float));
        memcpy(s->feature.weight + i * pf, v->teacher_weight, (size_t)pf * sizeof(float));
    }
    const int64_t rc = count * pc, rm = count * pm, rf = count * pf;
    memset(s->colour.d_out, 0, (size_t)(rc * 3) * sizeof(float));
    float *opacity = shared ? s->feature.opacity : s->mask.opacity;
    float *d_opacity = shared ? s->feature.d_opacity : s->mask.d_opacity;
    memset(d_opacity, 0, (size_t)rm * sizeof(float));
    memset(s->feature.d_out, 0, (size_t)(rf * s->k) * sizeof(float));
    float loss_colour = 0.0f, loss_mask = 0.0f, loss_feature = 0.0f;
    if (od_mse_loss_forward_backward(&loss_colour, s->colour.d_out, s->colour.out, s->colour.target,
                                     s->colour.weight, rc, 3, OD_LOSS_WEIGHTED_MEAN, (float)(0.5 * c->loss_colour),
                                     err) != 0 ||
        od_mse_loss_forward_backward(&loss_mask, d_opacity, opacity, s->mask.target, NULL, rm, 1,
                                     OD_LOSS_MEAN, (float)(0.5 * c->loss_mask), err) != 0 ||
        od_cosine_loss_forward_backward(&loss_feature, s->feature.d_out, s->feature.out, s->feature.target,
                                        s->feature.weight, rf, s->k, OD_COSINE_EPS, OD_LOSS_WEIGHTED_MEAN,
                                        (float)(0.5 * c->loss_feature), err) != 0)
        return -1;
    sums[0] += loss_colour;
    sums[1] += loss_mask;
    sums[2] += loss_feature;
    t0 = now_seconds();
    s->times.losses += t0 - t1;

    memset(s->d_density, 0, (size_t)s->voxels * sizeof(float));
    memset(s->d_colour, 0, (size_t)(s->voxels * 3) * sizeof(float));
    memset(s->d_features, 0, (size_t)(s->voxels * s->k) * sizeof(float));
    if (od_render_backward(s->d_density, s->d_colour, s->colour.d_out, NULL, s->colour.samples, s->colour.points,
                           s->colour.delta, 1, s->D, s->H, s->W, 3, rc, s->S, err) != 0 ||
        (!shared && od_render_backward(s->d_density, NULL, NULL, s->mask.d_opacity, s->mask.samples,
                                       s->mask.points, s->mask.delta, 1, s->D, s->H, s->W, 0, rm, s->S, err) != 0) ||
        od_render_backward_densities(s->d_density, s->d_features, s->feature.d_out, shared ? d_opacity : NULL,
                                     s->feature.samples, s->feature.points, s->feature.delta, s->D, s->H, s->W, s->k,
                                     rf, s->S, err) != 0)
        return -1;
    t1 = now_seconds();
    s->times.render_backward += t1 - t0;

    if (od_volume_net_backward(s->net, s->d_density, s->d_colour, s->d_features, NULL, err) != 0)
        return -1;
    s->times.volume_backward += now_seconds() - t1;
    return 0;
}

static int check_set(const od_stage1_scene *scene, const int *set, int count, const char *name, od_error *err)
{
    if (set == NULL || count < 1)
        return od_fail(err, "stage 1: view set %s is empty", name);
    for (int i = 0; i < count; i++) {
        if (set[i] < 0 || set[i] >= scene->view_count)
            return od_fail(err, "stage 1: view set %s names view %d, but the scene has %d views", name, set[i],
                           scene->view_count);
        if (scene->views[set[i]].encoder == NULL)
            return od_fail(err, "stage 1: view %d of set %s was never filled", set[i], name);
    }
    return 0;
}

int od_stage1_step(od_stage1 *s, const od_stage1_scene *scene, const int *set_a, int count_a, const int *set_b,
                   int count_b, od_stage1_losses *losses, od_error *err)
{
    if (s == NULL || scene == NULL)
        return od_fail(err, "stage 1: a step needs the trainer and a scene");
    if (scene->encoder_channels != s->in_channels || scene->colour_size != s->colour.size ||
        scene->mask_size != s->mask.size || scene->feature_size != s->feature.size ||
        scene->teacher_channels != s->k)
        return od_fail(err,
                       "stage 1: the scene was prepared for %lld encoder channels and renders %lld/%lld/%lld with "
                       "%lld teacher channels, but the network takes %lld, %lld/%lld/%lld and %lld",
                       (long long)scene->encoder_channels, (long long)scene->colour_size,
                       (long long)scene->mask_size, (long long)scene->feature_size,
                       (long long)scene->teacher_channels, (long long)s->in_channels, (long long)s->colour.size,
                       (long long)s->mask.size, (long long)s->feature.size, (long long)s->k);
    if (check_set(scene, set_a, count_a, "A", err) != 0 || check_set(scene, set_b, count_b, "B", err) != 0)
        return -1;

    od_params_zero_grad(s->params);
    double sums[3] = {0.0, 0.0, 0.0};
    if (run_pass(s, scene, set_a, count_a, set_b, count_b, 0, sums, err) != 0 ||
        run_pass(s, scene, set_b, count_b, set_a, count_a, 1, sums, err) != 0)
        return od_fail_context(err, "stage 1 step %lld", (long long)s->steps);
    const od_model_config *c = &s->config;
    od_stage1_losses l;
    l.colour = 0.5 * sums[0];
    l.mask = 0.5 * sums[1];
    l.feature = 0.5 * sums[2];
    l.total = c->loss_colour * l.colour + c->loss_mask * l.mask + c->loss_feature * l.feature;

    const double t0 = now_seconds();
    float norm = 0.0f;
    /* Without clipping the norm is still measured, against a bound no gradient reaches. */
    const double bound = c->clip_grad_norm > 0.0 ? c->clip_grad_norm : 1e30;
    if (od_adam_clip_grad_norm(s->adam, bound, &norm, err) != 0)
        return -1;
    l.grad_norm = norm;
    if (!isfinite(l.total) || !isfinite(norm))
        return od_fail(err, "stage 1 step %lld: the loss (%g) or the gradient norm (%g) is not finite; the "
                            "parameters were not updated",
                       (long long)s->steps, l.total, (double)norm);
    od_adam_step(s->adam);
    s->times.adam += now_seconds() - t0;
    s->steps++;
    if (losses != NULL)
        *losses = l;
    return 0;
}
