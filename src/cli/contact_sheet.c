/* The contact sheet of a dataset. See contact_sheet.h. */
#include "cli/contact_sheet.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/draw.h"
#include "io/image.h"
#include "scene/dataset.h"

#define SHEET_COLUMNS 4
#define SHEET_SCENES 16
/* Side of one tile: the view is shrunk so that the sheet stays a few hundred KB as PNG. */
#define TILE_SIZE 192
#define LABEL_HEIGHT (2 * OD_DRAW_FONT_LINE_HEIGHT + 4)
#define MAX_CANDIDATES 4096
#define PATH_SIZE 4096
#define LABEL_SIZE 96

typedef struct candidate {
    char split[64];
    char scene[PATH_SIZE]; /* the scene folder */
    char name[160];        /* the dataset's folder name (in a benchmark folder) and the scene's folder name */
    char label[LABEL_SIZE];
    int odd[12];           /* object indices with an anomaly */
    int odd_count;
    int used;
} candidate;

static char *read_text(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    char buffer[65536];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, file)) > 0) {
        char *grown = realloc(text, size + n + 1);
        if (!grown) {
            free(text);
            fclose(file);
            return NULL;
        }
        text = grown;
        memcpy(text + size, buffer, n);
        size += n;
        text[size] = 0;
    }
    fclose(file);
    return text;
}

/* Reads the objects' labels from the scene's metadata: an object is odd when the file name in its
 * path carries a '-', and the word after it names the kind. */
static int read_labels(candidate *c, od_error *err)
{
    char path[PATH_SIZE + 32];
    snprintf(path, sizeof path, "%s/scene3d.metadata.json", c->scene);
    char *text = read_text(path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *objects = cJSON_GetObjectItemCaseSensitive(root, "objects");
    if (!cJSON_IsArray(objects)) {
        cJSON_Delete(root);
        return od_fail(err, "%s: missing or invalid (expected an \"objects\" array)", path);
    }
    c->label[0] = 0;
    c->odd_count = 0;
    int index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, objects)
    {
        const cJSON *object_path = cJSON_GetObjectItemCaseSensitive(item, "path");
        const char *name = cJSON_IsString(object_path) ? object_path->valuestring : "";
        const char *slash = strrchr(name, '/');
        const char *dash = strchr(slash ? slash + 1 : name, '-');
        if (dash && c->odd_count < 12) {
            c->odd[c->odd_count++] = index;
            char kind[32];
            size_t length = strcspn(dash + 1, "-.");
            snprintf(kind, sizeof kind, "%.*s", (int)(length < sizeof kind ? length : sizeof kind - 1), dash + 1);
            if (!strstr(c->label, kind))
                snprintf(c->label + strlen(c->label), LABEL_SIZE - strlen(c->label), "%s%s",
                         c->label[0] ? "+" : "", kind);
        }
        index++;
    }
    cJSON_Delete(root);
    if (!c->label[0])
        snprintf(c->label, LABEL_SIZE, "normal");
    return 0;
}

/* Adds the scenes of one split (NULL: the one od_dataset_open picks) to the candidates; prefix
 * (may be "") names the dataset in the labels. */
static int add_split(const char *dataset, const char *split, const char *prefix, candidate *candidates, int *count,
                     od_error *err)
{
    od_dataset listed;
    if (od_dataset_open(dataset, split, &listed, err) != 0)
        return -1;
    for (int i = 0; i < listed.scene_count && *count < MAX_CANDIDATES; i++) {
        candidate *c = &candidates[(*count)++];
        snprintf(c->split, sizeof c->split, "%s", listed.split);
        /* The split is on the label's first line, so the second names the dataset and the folder. */
        const char *slash = strrchr(listed.scene_names[i], '/');
        snprintf(c->name, sizeof c->name, "%s%s", prefix, slash ? slash + 1 : listed.scene_names[i]);
        snprintf(c->scene, sizeof c->scene, "%s", listed.scenes[i]);
    }
    od_dataset_free(&listed);
    return 0;
}

static cJSON *read_manifest(const char *dataset)
{
    char path[PATH_SIZE + 32];
    snprintf(path, sizeof path, "%s/manifest.json", dataset);
    char *text = read_text(path);
    cJSON *manifest = text ? cJSON_Parse(text) : NULL;
    free(text);
    return manifest;
}

/* Adds every split that the manifest's "sizes" names, in its order; without a manifest, the split
 * that od_dataset_open picks. */
static int add_dataset(const char *dataset, const char *prefix, candidate *candidates, int *count, od_error *err)
{
    cJSON *manifest = read_manifest(dataset);
    const cJSON *sizes = cJSON_GetObjectItemCaseSensitive(manifest, "sizes");
    int rc = 0;
    if (cJSON_IsObject(sizes) && cJSON_GetArraySize(sizes) > 0) {
        const cJSON *split;
        cJSON_ArrayForEach(split, sizes)
        {
            if (rc == 0 && cJSON_IsNumber(split) && split->valueint > 0)
                rc = add_split(dataset, split->string, prefix, candidates, count, err);
        }
    } else {
        rc = add_split(dataset, NULL, prefix, candidates, count, err);
    }
    cJSON_Delete(manifest);
    return rc;
}

/* Lists the candidates of a dataset, or of every dataset (a subfolder with manifest.json) of a
 * benchmark folder such as bench-v1's, in name order. */
static int list_candidates(const char *root, candidate *candidates, int *count, od_error *err)
{
    *count = 0;
    cJSON *manifest = read_manifest(root);
    int rc = 0;
    if (manifest) {
        cJSON_Delete(manifest);
        rc = add_dataset(root, "", candidates, count, err);
    } else {
        struct dirent **entries = NULL;
        int n = scandir(root, &entries, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            char sub[PATH_SIZE], prefix[300];
            snprintf(sub, sizeof sub, "%s/%s", root, entries[i]->d_name);
            cJSON *sub_manifest = entries[i]->d_name[0] != '.' ? read_manifest(sub) : NULL;
            if (sub_manifest && rc == 0) {
                snprintf(prefix, sizeof prefix, "%s/", entries[i]->d_name);
                rc = add_dataset(sub, prefix, candidates, count, err);
            }
            cJSON_Delete(sub_manifest);
            free(entries[i]);
        }
        free(entries);
        if (n >= 0 && *count == 0 && rc == 0)
            rc = add_dataset(root, "", candidates, count, err);
        else if (n < 0)
            rc = od_fail(err, "%s: cannot open (%s)", root, strerror(errno));
    }
    if (rc == 0 && *count == 0)
        rc = od_fail(err, "%s: no scenes found", root);
    return rc;
}

/* Picks up to SHEET_SCENES scenes, taking the splits in turn and preferring labels not yet shown. */
static int pick_scenes(candidate *candidates, int count, int picked[SHEET_SCENES], od_error *err)
{
    char splits[64][64];
    int split_count = 0;
    for (int i = 0; i < count; i++) {
        int known = 0;
        for (int s = 0; s < split_count && !known; s++)
            known = strcmp(splits[s], candidates[i].split) == 0;
        if (!known && split_count < 64)
            snprintf(splits[split_count++], 64, "%s", candidates[i].split);
    }
    int total = 0;
    char shown[SHEET_SCENES][LABEL_SIZE];
    /* Labels are read lazily: a split of thousands of scenes costs only the scenes looked at. */
    while (total < SHEET_SCENES && total < count) {
        int progress = 0;
        for (int s = 0; s < split_count && total < SHEET_SCENES; s++) {
            int fallback = -1, chosen = -1, seen = 0;
            for (int i = 0; i < count && chosen < 0 && seen < 200; i++) {
                candidate *c = &candidates[i];
                if (c->used || strcmp(c->split, splits[s]) != 0)
                    continue;
                seen++;
                if (!c->label[0] && read_labels(c, err) != 0)
                    return -1;
                int repeated = 0;
                for (int k = 0; k < total && !repeated; k++)
                    repeated = strcmp(shown[k], c->label) == 0;
                if (!repeated)
                    chosen = i;
                else if (fallback < 0)
                    fallback = i;
            }
            if (chosen < 0)
                chosen = fallback;
            if (chosen < 0)
                continue;
            candidates[chosen].used = 1;
            snprintf(shown[total], LABEL_SIZE, "%s", candidates[chosen].label);
            picked[total++] = chosen;
            progress = 1;
        }
        if (!progress)
            break;
    }
    return total;
}

static void outline_mask(od_image *tile, const od_image *mask, const float color[3])
{
    int x0 = mask->width, y0 = mask->height, x1 = -1, y1 = -1;
    for (int y = 0; y < mask->height; y++)
        for (int x = 0; x < mask->width; x++)
            if (mask->pixels[(int64_t)y * mask->width + x] > 0.5f) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
    if (x1 < 0)
        return;
    double sx = (double)tile->width / mask->width, sy = (double)tile->height / mask->height;
    double corners[8] = {(x0 - 2) * sx, (y0 - 2) * sy, (x1 + 2) * sx, (y0 - 2) * sy,
                         (x1 + 2) * sx, (y1 + 2) * sy, (x0 - 2) * sx, (y1 + 2) * sy};
    od_draw_polygon(tile, corners, 4, color, 2);
}

/* Renders one scene's first view into the sheet at (left, top). */
static int draw_tile(od_image *sheet, const candidate *c, int left, int top, od_error *err)
{
    char path[PATH_SIZE + 128];
    snprintf(path, sizeof path, "%s/RGB/0000.png", c->scene);
    od_image view = {0}, tile = {0};
    if (od_image_read(path, NULL, &view, err) != 0)
        return -1;
    int rc = od_image_resize(&view, TILE_SIZE, TILE_SIZE, &tile, err);
    od_image_free(&view);
    if (rc != 0)
        return -1;
    static const float red[3] = {0.9f, 0.1f, 0.1f};
    for (int k = 0; k < c->odd_count; k++) {
        char name[32];
        if (c->odd[k] == 0)
            snprintf(name, sizeof name, "object");
        else
            snprintf(name, sizeof name, "object.%03d", c->odd[k]);
        snprintf(path, sizeof path, "%s/segmentations/%s/%s_0000.png", c->scene, name, name);
        od_image mask = {0};
        od_error ignored;
        /* An object outside the first view has no mask pixels and gets no outline. */
        if (od_image_read_gray(path, &mask, &ignored) == 0)
            outline_mask(&tile, &mask, red);
        od_image_free(&mask);
    }
    for (int y = 0; y < TILE_SIZE; y++)
        memcpy(sheet->pixels + ((int64_t)(top + LABEL_HEIGHT + y) * sheet->width + left) * 3,
               tile.pixels + (int64_t)y * TILE_SIZE * 3, (size_t)TILE_SIZE * 3 * sizeof(float));
    od_image_free(&tile);
    static const float white[3] = {1, 1, 1};
    char line[2 * LABEL_SIZE + 64];
    snprintf(line, sizeof line, "%s: %s\n%.*s", c->split, c->label, TILE_SIZE / OD_DRAW_FONT_ADVANCE - 1, c->name);
    od_draw_text(sheet, left + 3, top + 2, line, white, 1);
    return 0;
}

int od_cli_contact_sheet(const char *dataset, const char *output, int quiet)
{
    od_error err = {{0}};
    candidate *candidates = calloc(MAX_CANDIDATES, sizeof *candidates);
    od_image sheet = {0};
    int count = 0, status = 1;
    int picked[SHEET_SCENES];
    if (!candidates) {
        fprintf(stderr, "oddone generate: out of memory\n");
        return 1;
    }
    if (list_candidates(dataset, candidates, &count, &err) != 0)
        goto done;
    int total = pick_scenes(candidates, count, picked, &err);
    if (total < 0)
        goto done;
    int rows = (total + SHEET_COLUMNS - 1) / SHEET_COLUMNS;
    if (od_image_new(SHEET_COLUMNS * TILE_SIZE, rows * (TILE_SIZE + LABEL_HEIGHT), 3, &sheet, &err) != 0)
        goto done;
    for (int i = 0; i < total; i++)
        if (draw_tile(&sheet, &candidates[picked[i]], (i % SHEET_COLUMNS) * TILE_SIZE,
                      (i / SHEET_COLUMNS) * (TILE_SIZE + LABEL_HEIGHT), &err) != 0)
            goto done;
    if (od_image_write_png(output, &sheet, &err) != 0)
        goto done;
    if (!quiet)
        printf("contact sheet of %d scenes of %s written to %s\n", total, dataset, output);
    status = 0;

done:
    if (status != 0)
        fprintf(stderr, "oddone generate: %s\n", err.message);
    od_image_free(&sheet);
    free(candidates);
    return status;
}
