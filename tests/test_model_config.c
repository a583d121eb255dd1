/* Tests of the model configuration reader: the shipped files parse to the
 * documented sizes, and each kind of bad field fails with a message that
 * names the file and the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "testlib.h"

static char *read_text(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *text = malloc((size_t)length + 1);
    *size = fread(text, 1, (size_t)length, file);
    text[*size] = '\0';
    fclose(file);
    return text;
}

static void cpu_config_sizes(void)
{
    od_model_config c;
    od_error err = {{0}};
    int rc = od_model_config_load(od_test_source_path("configs/cpu.json"), &c, &err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(rc == 0);
    OD_CHECK(strcmp(c.name, "cpu") == 0);
    OD_CHECK(c.variant == OD_MODEL_VARIANT_FULL);
    OD_CHECK(c.image_width == 128 && c.image_height == 128);
    OD_CHECK(c.grid_dims[0] == 64 && c.grid_dims[1] == 64 && c.grid_dims[2] == 16);
    OD_CHECK(c.levels == 3);
    OD_CHECK(c.channels[0] == 16 && c.channels[1] == 32 && c.channels[2] == 64);
    OD_CHECK(c.down_blocks[0] == 1 && c.down_blocks[1] == 2 && c.down_blocks[2] == 3);
    OD_CHECK(c.up_blocks[0] == 1 && c.up_blocks[1] == 2);
    OD_CHECK(c.mask_size == 32 && c.feature_size == 32);
    OD_CHECK(c.matcher_heads == 8 && c.matcher_blocks == 3 && c.crop_cells == 8);
    OD_CHECK(c.flips == 1);
    OD_CHECK(c.beta1 == 0.0 && c.beta2 == 0.999);
}

static void paper_config_sizes(void)
{
    od_model_config c;
    od_error err = {{0}};
    int rc = od_model_config_load(od_test_source_path("configs/paper.json"), &c, &err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(rc == 0);
    OD_CHECK(c.image_width == 256);
    OD_CHECK(c.grid_dims[0] == 96 && c.grid_dims[1] == 96 && c.grid_dims[2] == 16);
    OD_CHECK(c.levels == 4 && c.channels[3] == 256);
    OD_CHECK(c.down_blocks[3] == 4 && c.up_blocks[2] == 3);
    OD_CHECK(c.samples_per_ray == 128 && c.teacher_channels == 384);
    OD_CHECK(c.lr_backbone == 1e-5 && c.lr_matcher == 2e-5);
    OD_CHECK(c.anomaly_weight == 0.7 && c.normal_weight == 0.3);
}

/* Returns the cpu configuration with the first occurrence of `from`
 * replaced by `to`, and its length in *size; NULL (after a failed check)
 * when the file cannot be read or does not contain `from`. */
static char *edited_cpu_config(const char *from, const char *to, size_t *size)
{
    size_t text_size;
    char *text = read_text(od_test_source_path("configs/cpu.json"), &text_size);
    OD_CHECK(text != NULL);
    if (text == NULL)
        return NULL;
    char *position = strstr(text, from);
    OD_CHECK(position != NULL);
    if (position == NULL) {
        fprintf(stderr, "  pattern not in cpu.json: %s\n", from);
        free(text);
        return NULL;
    }
    *size = text_size - strlen(from) + strlen(to);
    char *edited = malloc(*size + 1);
    size_t head = (size_t)(position - text);
    memcpy(edited, text, head);
    memcpy(edited + head, to, strlen(to));
    memcpy(edited + head + strlen(to), position + strlen(from), text_size - head - strlen(from));
    edited[*size] = '\0';
    free(text);
    return edited;
}

/* Replaces the first occurrence of `from` in the cpu configuration with
 * `to`, parses the result and checks that it fails with a message that
 * contains `field`. */
static void check_rejected(const char *from, const char *to, const char *field)
{
    size_t edited_size;
    char *edited = edited_cpu_config(from, to, &edited_size);
    if (edited == NULL)
        return;

    od_model_config c;
    od_error err = {{0}};
    int rc = od_model_config_parse(edited, edited_size, "bad.json", &c, &err);
    OD_CHECK(rc == -1);
    int names_file = strstr(err.message, "bad.json") != NULL;
    int names_field = strstr(err.message, field) != NULL;
    OD_CHECK(names_file);
    OD_CHECK(names_field);
    if (rc != -1 || !names_file || !names_field)
        fprintf(stderr, "  case %s -> %s: message \"%s\"\n", from, to, err.message);
    free(edited);
}

static void misspelt_fields_rejected(void)
{
    check_rejected("\"head_hidden\"", "\"head_hiden\"", "unknown field volume_net.head_hiden");
    check_rejected("\"samples_per_ray\"", "\"samples\"", "unknown field render.samples");
    check_rejected("\"variant\": \"full\",", "\"variant\": \"full\", \"extra\": 1,", "unknown field extra");
    check_rejected("\"name\": \"cpu\",", "", "missing field name");
    check_rejected("\"flips\": true", "\"flips\": true, \"flips\": false", "augment.flips appears twice");
}

static void out_of_range_values_rejected(void)
{
    check_rejected("\"variant\": \"full\"", "\"variant\": \"D\"", "variant");
    check_rejected("\"width\": 128", "\"width\": 120", "multiples of 16");
    check_rejected("\"width\": 128", "\"width\": \"128\"", "image.width: expected an integer in [16, 4096]");
    check_rejected("\"build\": 5", "\"build\": 0", "views.build");
    check_rejected("\"build\": 5", "\"build\": 2.5", "views.build");
    check_rejected("\"voxel_size\": 0.02", "\"voxel_size\": 0.03", "grid: along x");
    check_rejected("\"voxel_size\": 0.02", "\"voxel_size\": -1", "grid.voxel_size");
    check_rejected("\"max\": [0.64, 0.64, 0.32]", "\"max\": [0.64, 0.64]", "grid.max");
    check_rejected("\"channels\": [16, 32, 64]", "\"channels\": [16, 0, 64]", "volume_net.channels[1]");
    check_rejected("\"down_blocks\": [1, 2, 3]", "\"down_blocks\": [1, 2]", "volume_net.down_blocks");
    check_rejected("\"up_blocks\": [1, 2]", "\"up_blocks\": [1, 2, 3]", "volume_net.up_blocks");
    check_rejected("\"network\": \"inceptionv3\"", "\"network\": \"resnet\"", "teacher.network");
    check_rejected("\"colour_size\": 64", "\"colour_size\": 256", "render.colour_size");
    check_rejected("\"heads\": 8", "\"heads\": 7", "matcher.channels");
    check_rejected("\"floor_pixel_weight\": 0.1", "\"floor_pixel_weight\": 2", "loss.floor_pixel_weight");
    check_rejected("\"beta2\": 0.999", "\"beta2\": 1.0", "optim.beta2");
    check_rejected("\"lr_backbone\": 1e-3", "\"lr_backbone\": -1e-3", "optim.lr_backbone");
    check_rejected("\"log_every\": 10", "\"log_every\": 0", "schedule.log_every");
    check_rejected("\"flips\": true", "\"flips\": 1", "augment.flips");
    check_rejected("\"render\": {", "\"render\": [{", "");
    check_rejected("\"density_threshold\": 0.5", "\"density_threshold\": 0.5, \"boxes\": \"hull\"",
                   "localization.boxes: expected \"density\" or \"masks\"");
    check_rejected("\"density_threshold\": 0.5", "\"density_threshold\": 0.5, \"boxes\": 1", "localization.boxes");
    check_rejected("\"pad_voxels\": 2", "\"pad_voxels\": 2, \"lifted\": \"yes\"", "crop.lifted: expected true or false");
}

/* localization.boxes is optional, and "masks" sets boxes_from_masks. */
static void boxes_field_parsed(void)
{
    od_model_config c;
    od_error err = {{0}};
    OD_CHECK(od_model_config_load(od_test_source_path("configs/cpu.json"), &c, &err) == 0);
    OD_CHECK(c.boxes_from_masks == 0);

    size_t size;
    char *edited = edited_cpu_config("\"density_threshold\": 0.5", "\"density_threshold\": 0.5, \"boxes\": \"masks\"",
                                     &size);
    if (edited == NULL)
        return;
    OD_CHECK(od_model_config_parse(edited, size, "masks.json", &c, &err) == 0);
    OD_CHECK(c.boxes_from_masks == 1);
    OD_CHECK(c.crop_lifted == 0);
    free(edited);
}

static void grid_not_divisible_rejected(void)
{
    /* 62 voxels along x cannot be halved twice. */
    check_rejected("\"min\": [-0.64, -0.64, 0.0]", "\"min\": [-0.60, -0.64, 0.0]", "divisible by 4");
}

static void invalid_files_rejected(void)
{
    od_model_config c;
    od_error err = {{0}};
    OD_CHECK(od_model_config_load("/nonexistent/model.json", &c, &err) == -1);
    OD_CHECK(strstr(err.message, "/nonexistent/model.json") != NULL);
    OD_CHECK(od_model_config_parse("{\"name\": ", 9, "cut.json", &c, &err) == -1);
    OD_CHECK(strstr(err.message, "cut.json: invalid JSON") != NULL);
    OD_CHECK(od_model_config_parse("[1, 2]", 6, "array.json", &c, &err) == -1);
    OD_CHECK(strstr(err.message, "array.json") != NULL);
}

/* configs/cpu-stage2.json sets the two optional fields. */
static void stage2_config_fields(void)
{
    od_model_config c;
    od_error err = {{0}};
    int rc = od_model_config_load(od_test_source_path("configs/cpu-stage2.json"), &c, &err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err.message);
    OD_CHECK(rc == 0);
    OD_CHECK(c.boxes_from_masks == 1);
    OD_CHECK(c.crop_lifted == 1);
    OD_CHECK(c.beta1 == 0.9);
}

int main(void)
{
    OD_RUN(cpu_config_sizes);
    OD_RUN(paper_config_sizes);
    OD_RUN(misspelt_fields_rejected);
    OD_RUN(boxes_field_parsed);
    OD_RUN(stage2_config_fields);
    OD_RUN(out_of_range_values_rejected);
    OD_RUN(grid_not_divisible_rejected);
    OD_RUN(invalid_files_rejected);
    return od_test_finish();
}
