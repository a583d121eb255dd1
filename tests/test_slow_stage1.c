/* Tests of model/stage1: on a tiny generated scene and a tiny network,
 * 30 reconstruction steps cut the total loss at least in half, and two
 * runs from one seed give bit-identical parameters.
 *
 * The frozen 2D maps are computed here without network weights, so the
 * test needs no models/cache/. The encoder map is the view's colour
 * averaged over 4 x 4 pixel cells (stride 4, the centre rule of lifting).
 * The teacher map is a fixed random projection, through tanh, of the
 * colour averaged over 8 x 8 cells, declared with an off-centre first cell
 * as InceptionV3's maps have. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "model/config.h"
#include "model/params.h"
#include "model/stage1.h"
#include "scene/scene.h"
#include "synth/generate.h"
#include "teacher/feature_cache.h"
#include "testlib.h"

#define IMAGE 64
#define ENCODER_STRIDE 4
#define TEACHER_STRIDE 8
#define TEACHER_CHANNELS 8
#define STEPS 30

static od_model_config tiny_config(void)
{
    od_model_config c;
    od_error err = {{0}};
    const int loaded = od_model_config_load(od_test_source_path("configs/cpu.json"), &c, &err);
    OD_CHECK(loaded == 0);
    if (loaded != 0)
        printf("  %s\n", err.message);
    c.image_width = c.image_height = IMAGE;
    const double half = 0.32, height = 0.16, voxel = 0.04;
    c.grid_min[0] = c.grid_min[1] = -half;
    c.grid_max[0] = c.grid_max[1] = half;
    c.grid_min[2] = 0.0;
    c.grid_max[2] = height;
    c.voxel_size = voxel;
    c.grid_dims[0] = c.grid_dims[1] = 16;
    c.grid_dims[2] = 4;
    c.levels = 2;
    c.channels[0] = 8;
    c.channels[1] = 16;
    c.down_blocks[0] = 1;
    c.down_blocks[1] = 1;
    c.up_blocks[0] = 1;
    c.head_hidden = 16;
    c.teacher_channels = TEACHER_CHANNELS;
    c.samples_per_ray = 24;
    c.colour_size = 16;
    c.mask_size = 8; /* as feature_size, so the silhouette comes from the feature render as in cpu.json */
    c.feature_size = 8;
    c.lr_backbone = 1e-2;
    return c;
}

/* Mean of each channel over stride x stride cells of an image (channels c). */
static void pool(const od_image *image, int stride, float *out)
{
    const int h = image->height / stride, w = image->width / stride, c = image->channels;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
            for (int k = 0; k < c; k++) {
                double sum = 0.0;
                for (int y = 0; y < stride; y++)
                    for (int x = 0; x < stride; x++)
                        sum += image->pixels[((i * stride + y) * image->width + j * stride + x) * c + k];
                out[(i * w + j) * c + k] = (float)(sum / (stride * stride));
            }
}

/* Prepares the stage-1 scene of a generated scene with the frozen maps
 * described at the top. */
static od_stage1_scene *prepare(const od_scene *scene, const od_model_config *config)
{
    od_error err = {{0}};
    const int fe = IMAGE / ENCODER_STRIDE, ft = IMAGE / TEACHER_STRIDE;
    od_stage1_scene *out = od_stage1_scene_new(config, fe, fe, 3, ENCODER_STRIDE, scene->view_count, &err);
    OD_CHECK(out != NULL);
    float projection[3 * TEACHER_CHANNELS];
    od_rng rng;
    od_rng_seed(&rng, 99);
    od_rng_fill_normal(&rng, projection, 3 * TEACHER_CHANNELS, 0.0f, 2.0f);
    float *encoder = od_alloc_floats(fe * fe * 3), *pooled = od_alloc_floats(ft * ft * 3),
          *teacher = od_alloc_floats(ft * ft * TEACHER_CHANNELS);
    for (int v = 0; out != NULL && v < scene->view_count; v++) {
        od_image image = {0}, small = {0}, mask = {0};
        int has_mask = 0;
        OD_CHECK(od_scene_read_view_image(scene, v, &image, &err) == 0);
        OD_CHECK(od_scene_read_view_mask(scene, v, &mask, &has_mask, &err) == 0);
        OD_CHECK(has_mask);
        OD_CHECK(od_image_resize(&image, IMAGE, IMAGE, &small, &err) == 0);
        pool(&small, ENCODER_STRIDE, encoder);
        pool(&small, TEACHER_STRIDE, pooled);
        for (int p = 0; p < ft * ft; p++)
            for (int k = 0; k < TEACHER_CHANNELS; k++) {
                float sum = 0.0f;
                for (int c = 0; c < 3; c++)
                    sum += projection[k * 3 + c] * (pooled[p * 3 + c] - 0.5f);
                teacher[p * TEACHER_CHANNELS + k] = tanhf(sum);
            }
        const od_stage1_map em = {encoder, fe, fe, 3, IMAGE, ENCODER_STRIDE, 1.5};
        const od_stage1_map tm = {teacher, ft, ft, TEACHER_CHANNELS, IMAGE, TEACHER_STRIDE, 5.0};
        const int rc = od_stage1_scene_set_view(out, config, v, &image, &mask, &scene->views[v].camera, &em, &tm,
                                                &err);
        if (rc != 0)
            printf("  %s\n", err.message);
        OD_CHECK(rc == 0);
        od_image_free(&image);
        od_image_free(&small);
        od_image_free(&mask);
    }
    od_free(encoder);
    od_free(pooled);
    od_free(teacher);
    return out;
}

/* Loads the scene folder again and prepares it for config. */
static od_stage1_scene *prepare_scene_again(const char *dir, const od_model_config *config)
{
    od_error err = {{0}};
    od_scene *scene = NULL;
    OD_CHECK(od_scene_load(dir, NULL, &scene, &err) == 0);
    if (scene == NULL)
        return NULL;
    od_stage1_scene *prepared = prepare(scene, config);
    od_scene_free(scene);
    return prepared;
}

/* Trains STEPS steps from seed and returns the trainer; writes the first
 * and last total losses. */
static od_stage1 *train(const od_stage1_scene *scene, const od_model_config *config, uint64_t seed,
                        double *first, double *last)
{
    od_error err = {{0}};
    od_stage1 *s = od_stage1_new(config, 3, seed, &err);
    OD_CHECK(s != NULL);
    if (s == NULL) {
        printf("  %s\n", err.message);
        return NULL;
    }
    const int a[2] = {0, 2}, b[2] = {1, 3};
    for (int step = 0; step < STEPS; step++) {
        od_stage1_losses l;
        const int rc = od_stage1_step(s, scene, a, 2, b, 2, &l, &err);
        OD_CHECK(rc == 0);
        if (rc != 0) {
            printf("  %s\n", err.message);
            break;
        }
        if (step == 0)
            *first = l.total;
        *last = l.total;
        if (step == 0 || step == STEPS - 1)
            printf("  step %2d: total %.5f (colour %.5f, mask %.5f, feature %.5f), gradient norm %.3f\n", step,
                   l.total, l.colour, l.mask, l.feature, l.grad_norm);
    }
    return s;
}

static void test_stage1_training(void)
{
    od_mesh torus;
    od_error err = {{0}};
    OD_CHECK(od_mesh_make_torus(0.3f, 0.12f, 32, 16, &torus, &err) == 0);
    od_synth_scene_options o = od_synth_scene_options_default();
    o.seed = 11;
    o.view_count = 4;
    o.object_count = 3;
    o.image_size = IMAGE;
    o.supersample = 1;
    o.anomalous = 0;
    o.focal = 213.3 * IMAGE / 256.0;
    o.placement_radius = 0.15;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/scene", od_test_temp_dir());
    int rc = od_synth_generate_scene(&o, &torus, "torus", dir, NULL, &err);
    od_mesh_free(&torus);
    if (rc != 0)
        printf("  %s\n", err.message);
    OD_CHECK(rc == 0);
    od_scene *scene = NULL;
    OD_CHECK(rc == 0 && od_scene_load(dir, NULL, &scene, &err) == 0);
    if (scene == NULL)
        return;
    const od_model_config config = tiny_config();
    od_stage1_scene *prepared = prepare(scene, &config);
    od_scene_free(scene);
    if (prepared == NULL)
        return;

    double first = 0.0, last = 0.0, first2 = 0.0, last2 = 0.0;
    od_stage1 *one = train(prepared, &config, 5, &first, &last);
    od_stage1 *two = train(prepared, &config, 5, &first2, &last2);
    OD_CHECK(one != NULL);
    OD_CHECK(two != NULL);
    if (one != NULL && two != NULL) {
        /* The stated factor: 30 steps at least halve the total loss. */
        OD_CHECK(isfinite(last) && last < 0.5 * first);
        OD_CHECK(first == first2);
        OD_CHECK(last == last2);
        const od_params *p = od_stage1_params(one), *q = od_stage1_params(two);
        OD_CHECK(od_params_count(p) == od_params_count(q));
        for (int i = 0; i < od_params_count(p) && i < od_params_count(q); i++) {
            const od_param *x = od_params_at(p, i), *y = od_params_at(q, i);
            OD_CHECK_IDENTICAL(x->name, x->value, y->value, x->count);
        }
        OD_CHECK(od_stage1_step_count(one) == STEPS);
    }

    /* A silhouette of its own size takes a render of its own, and trains too. */
    od_model_config separate = config;
    separate.mask_size = 16;
    od_stage1_scene *prepared_separate = prepare_scene_again(dir, &separate);
    if (prepared_separate != NULL) {
        double first3 = 0.0, last3 = 0.0;
        od_stage1 *three = train(prepared_separate, &separate, 5, &first3, &last3);
        OD_CHECK(isfinite(last3));
        OD_CHECK(last3 < 0.5 * first3);
        od_stage1_free(three);
    }
    od_stage1_scene_free(prepared_separate);

    /* bad inputs: an index out of range, an empty set */
    if (one != NULL) {
        const int bad[1] = {7}, good[1] = {0};
        OD_CHECK(od_stage1_step(one, prepared, bad, 1, good, 1, NULL, &err) == -1);
        OD_CHECK(strstr(err.message, "view 7") != NULL);
        OD_CHECK(od_stage1_step(one, prepared, good, 0, good, 1, NULL, &err) == -1);
        OD_CHECK(strstr(err.message, "empty") != NULL);
    }
    od_stage1_free(one);
    od_stage1_free(two);
    od_stage1_scene_free(prepared);
}

/* Teacher targets from a feature cache equal those from the maps that
 * went into it (up to float16), because the cache carries the cells'
 * offset; the (stride - 1) / 2 that lifting assumes gives other targets. */
static void test_stage1_cached_teacher_offset(void)
{
    od_error err = {{0}};
    const od_model_config config = tiny_config();
    const int ft = IMAGE / TEACHER_STRIDE, fe = IMAGE / ENCODER_STRIDE;
    float *teacher = od_alloc_floats(ft * ft * TEACHER_CHANNELS), *encoder = od_alloc_floats(fe * fe * 3);
    for (int i = 0; i < ft * ft * TEACHER_CHANNELS; i++)
        teacher[i] = sinf(0.37f * (float)i);
    memset(encoder, 0, (size_t)(fe * fe * 3) * sizeof(float));
    od_feature_cache_info info;
    memset(&info, 0, sizeof info);
    strcpy(info.network, "inceptionv3");
    strcpy(info.layer, "mixed2");
    info.input_height = info.input_width = IMAGE;
    info.stride = TEACHER_STRIDE;
    info.offset = 5.0;
    info.channels = TEACHER_CHANNELS;
    strcpy(info.pca_checksum, "0123456789abcdef");
    char path[1024];
    snprintf(path, sizeof path, "%s/features.safetensors", od_test_temp_dir());
    od_feature_cache_writer *writer = od_feature_cache_writer_new(&info, &err);
    OD_CHECK(writer != NULL);
    OD_CHECK(od_feature_cache_add_view(writer, "RGB/0000.png", teacher, ft, ft, &err) == 0);
    OD_CHECK(od_feature_cache_write(writer, path, &err) == 0);
    od_feature_cache_writer_free(writer);
    od_feature_cache *cache = od_feature_cache_read(path, &info, &err);
    OD_CHECK(cache != NULL);
    od_tensor *cached = cache != NULL ? od_feature_cache_get(cache, "RGB/0000.png", &err) : NULL;
    OD_CHECK(cached != NULL);

    od_image image = {0};
    OD_CHECK(od_image_new(IMAGE, IMAGE, 3, &image, &err) == 0);
    od_camera camera = {IMAGE, IMAGE, {60.0, 0.0, 31.5, 0.0, 60.0, 31.5, 0.0, 0.0, 1.0},
                        {1, 0, 0, 0, 0, -1, 0, 0.1, 0, 0, -1, 1.0, 0, 0, 0, 1}};
    const od_stage1_map em = {encoder, fe, fe, 3, IMAGE, ENCODER_STRIDE, 1.5};
    const od_stage1_map direct = {teacher, ft, ft, TEACHER_CHANNELS, IMAGE, TEACHER_STRIDE, 5.0};
    const od_stage1_map centred = {teacher, ft, ft, TEACHER_CHANNELS, IMAGE, TEACHER_STRIDE, 3.5};
    od_stage1_scene *scene = od_stage1_scene_new(&config, fe, fe, 3, ENCODER_STRIDE, 3, &err);
    OD_CHECK(scene != NULL);
    if (scene != NULL && cached != NULL) {
        const od_stage1_map from_cache = {cached->data, cached->shape[0], cached->shape[1], info.channels,
                                          info.input_width, info.stride, info.offset};
        OD_CHECK(od_stage1_scene_set_view(scene, &config, 0, &image, NULL, &camera, &em, &direct, &err) == 0);
        OD_CHECK(od_stage1_scene_set_view(scene, &config, 1, &image, NULL, &camera, &em, &from_cache, &err) == 0);
        OD_CHECK(od_stage1_scene_set_view(scene, &config, 2, &image, NULL, &camera, &em, &centred, &err) == 0);
        const int64_t count = config.feature_size * config.feature_size * TEACHER_CHANNELS;
        OD_CHECK_CLOSE("cached targets", scene->views[1].teacher, scene->views[0].teacher, count, 1e-3f, 0.0f);
        double difference = 0.0;
        for (int64_t i = 0; i < count; i++)
            difference = fmax(difference, fabs(scene->views[2].teacher[i] - scene->views[0].teacher[i]));
        OD_CHECK(difference > 0.1);
        /* an encoder map off the lifting centre rule is rejected */
        const od_stage1_map shifted = {encoder, fe, fe, 3, IMAGE, ENCODER_STRIDE, 2.0};
        OD_CHECK(od_stage1_scene_set_view(scene, &config, 0, &image, NULL, &camera, &shifted, &direct, &err) ==
                 -1);
        OD_CHECK(strstr(err.message, "lifting") != NULL);
    }
    od_stage1_scene_free(scene);
    od_image_free(&image);
    od_tensor_free(cached);
    od_feature_cache_free(cache);
    od_free(teacher);
    od_free(encoder);
}

int main(void)
{
    OD_RUN(test_stage1_cached_teacher_offset);
    OD_RUN(test_stage1_training);
    return od_test_finish();
}
