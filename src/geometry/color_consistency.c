/* Occupancy from colour; see color_consistency.h. */
#include "geometry/color_consistency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct od_color_consistency {
    od_grid grid;
    int64_t voxels;
    int32_t *seen;       /* (D, H, W): views that see the voxel's centre */
    double *sum;         /* (D, H, W, 3): sum of the views' colours */
    double *sum_squares; /* (D, H, W, 3): sum of their squares */
    int32_t *foreground; /* (D, H, W): views whose colour differs from the floor behind the voxel */
    int32_t *background; /* (D, H, W): views whose colour matches it */

    /* The floor texture: square cells of floor_cell world units on the plane
     * z = floor_z, floor_dims[0] of them along x from floor_origin[0] and
     * floor_dims[1] along y from floor_origin[1]. */
    double floor_z, floor_cell, floor_origin[2], foreground_threshold;
    int64_t floor_dims[2], floor_cells;
    int floor_views;
    float *floor_samples; /* (floor_views, floor_cells, 3); NAN where the view does not see the cell */
    float *floor_texture; /* (floor_cells, 3); NULL until finished; NAN where no view sees the cell */
};

od_color_occupancy_options od_color_occupancy_options_default(void)
{
    od_color_occupancy_options options = {
        .max_std = OD_COLOR_DEFAULT_MAX_STD,
        .background_tolerance = OD_COLOR_DEFAULT_BACKGROUND_TOLERANCE,
        .min_views = 2,
    };
    return options;
}

od_color_consistency *od_color_consistency_new(const od_grid *grid, double floor_z, double foreground_threshold)
{
    if (od_grid_validate(grid, NULL) != 0 || !isfinite(floor_z) ||
        !(foreground_threshold >= 0.0 && isfinite(foreground_threshold)))
        return NULL;
    od_color_consistency *colors = calloc(1, sizeof *colors);
    if (colors == NULL)
        return NULL;
    colors->grid = *grid;
    colors->voxels = od_grid_voxel_count(grid);
    colors->seen = calloc((size_t)colors->voxels, sizeof *colors->seen);
    colors->sum = calloc((size_t)colors->voxels * 3, sizeof *colors->sum);
    colors->sum_squares = calloc((size_t)colors->voxels * 3, sizeof *colors->sum_squares);
    colors->foreground = calloc((size_t)colors->voxels, sizeof *colors->foreground);
    colors->background = calloc((size_t)colors->voxels, sizeof *colors->background);
    colors->floor_z = floor_z;
    colors->foreground_threshold = foreground_threshold;
    colors->floor_cell = 0.5 * grid->voxel_size;
    for (int a = 0; a < 2; a++) {
        double extent = (double)grid->dims[a] * grid->voxel_size;
        colors->floor_origin[a] = grid->origin[a] - 0.5 * extent;
        colors->floor_dims[a] = 4 * grid->dims[a];
    }
    colors->floor_cells = colors->floor_dims[0] * colors->floor_dims[1];
    if (colors->seen == NULL || colors->sum == NULL || colors->sum_squares == NULL || colors->foreground == NULL ||
        colors->background == NULL || colors->floor_cells > OD_GRID_MAX_VOXELS) {
        od_color_consistency_free(colors);
        return NULL;
    }
    return colors;
}

void od_color_consistency_free(od_color_consistency *colors)
{
    if (colors == NULL)
        return;
    free(colors->seen);
    free(colors->sum);
    free(colors->sum_squares);
    free(colors->foreground);
    free(colors->background);
    free(colors->floor_samples);
    free(colors->floor_texture);
    free(colors);
}

/* Adds the bilinear sample at (u, w) to rgb, clamping to the image. */
static void add_bilinear(const od_image *image, double u, double w, double rgb[3])
{
    double x = u < 0.0 ? 0.0 : (u > image->width - 1 ? image->width - 1 : u);
    double y = w < 0.0 ? 0.0 : (w > image->height - 1 ? image->height - 1 : w);
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < image->width ? x0 + 1 : x0, y1 = y0 + 1 < image->height ? y0 + 1 : y0;
    double fx = x - x0, fy = y - y0;
    const float *p00 = image->pixels + 3 * ((int64_t)y0 * image->width + x0);
    const float *p01 = image->pixels + 3 * ((int64_t)y0 * image->width + x1);
    const float *p10 = image->pixels + 3 * ((int64_t)y1 * image->width + x0);
    const float *p11 = image->pixels + 3 * ((int64_t)y1 * image->width + x1);
    for (int c = 0; c < 3; c++)
        rgb[c] += (1 - fy) * ((1 - fx) * p00[c] + fx * p01[c]) + fy * ((1 - fx) * p10[c] + fx * p11[c]);
}

/* Writes the projection matrix K [R t] (3 x 4, row-major); fails when not finite. */
static int projection_matrix(const od_camera *camera, double P[12], od_error *err)
{
    const double *K = camera->K, *T = camera->world_to_camera;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            P[r * 4 + c] = K[r * 3 + 0] * T[0 * 4 + c] + K[r * 3 + 1] * T[1 * 4 + c] + K[r * 3 + 2] * T[2 * 4 + c];
    for (int i = 0; i < 12; i++)
        if (!isfinite(P[i]))
            return od_fail(err, "colour consistency: camera K or pose is not finite");
    return 0;
}

static int check_view(const od_color_consistency *colors, const od_camera *camera, const od_image *image,
                      od_error *err)
{
    if (colors == NULL || camera == NULL || image == NULL || image->pixels == NULL)
        return od_fail(err, "colour consistency: NULL accumulator, camera or image");
    if (image->channels != 3)
        return od_fail(err, "colour consistency: the image has %d channels; expected RGB", image->channels);
    if (image->width != camera->width || image->height != camera->height)
        return od_fail(err, "colour consistency: the image is %d x %d but the camera's is %d x %d", image->width,
                       image->height, camera->width, camera->height);
    return 0;
}

/* Writes the mean of five bilinear samples around the projection of a
 * world point and returns 1, or returns 0 when the view does not see it. */
static int sample_point(const od_image *image, const double P[12], double focal, double size, double px, double py,
                        double pz, double rgb[3])
{
    double depth = P[8] * px + P[9] * py + P[10] * pz + P[11];
    if (!(depth > OD_CAMERA_MIN_DEPTH))
        return 0;
    double u = (P[0] * px + P[1] * py + P[2] * pz + P[3]) / depth;
    double w = (P[4] * px + P[5] * py + P[6] * pz + P[7]) / depth;
    /* Seen: the point's pixel lies inside the image, as od_camera_sees. */
    if (!(u >= -0.5 && u < image->width - 0.5 && w >= -0.5 && w < image->height - 0.5))
        return 0;
    double offset = 0.25 * focal * size / depth;
    rgb[0] = rgb[1] = rgb[2] = 0.0;
    add_bilinear(image, u, w, rgb);
    add_bilinear(image, u - offset, w, rgb);
    add_bilinear(image, u + offset, w, rgb);
    add_bilinear(image, u, w - offset, rgb);
    add_bilinear(image, u, w + offset, rgb);
    for (int c = 0; c < 3; c++)
        rgb[c] /= 5.0;
    return 1;
}

int od_color_consistency_add_floor_view(od_color_consistency *colors, const od_camera *camera,
                                        const od_image *image, od_error *err)
{
    if (check_view(colors, camera, image, err) != 0)
        return -1;
    if (colors->floor_texture != NULL)
        return od_fail(err, "colour consistency: the floor texture is already finished");
    double P[12];
    if (projection_matrix(camera, P, err) != 0)
        return -1;
    int64_t cells = colors->floor_cells;
    float *samples = realloc(colors->floor_samples, (size_t)(colors->floor_views + 1) * cells * 3 * sizeof *samples);
    if (samples == NULL)
        return od_fail(err, "colour consistency: out of memory for the floor texture of view %d",
                       colors->floor_views + 1);
    colors->floor_samples = samples;
    float *view_samples = samples + (int64_t)colors->floor_views * cells * 3;
    double focal = 0.5 * (camera->K[0] + camera->K[4]);
#pragma omp parallel for schedule(static)
    for (int64_t cell = 0; cell < cells; cell++) {
        double px = colors->floor_origin[0] + ((double)(cell % colors->floor_dims[0]) + 0.5) * colors->floor_cell;
        double py = colors->floor_origin[1] + ((double)(cell / colors->floor_dims[0]) + 0.5) * colors->floor_cell;
        double rgb[3];
        int seen = sample_point(image, P, focal, colors->floor_cell, px, py, colors->floor_z, rgb);
        for (int c = 0; c < 3; c++)
            view_samples[3 * cell + c] = seen ? (float)rgb[c] : NAN;
    }
    colors->floor_views++;
    return 0;
}

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) ? -1 : (x > y);
}

int od_color_consistency_finish_floor(od_color_consistency *colors, od_error *err)
{
    if (colors == NULL)
        return od_fail(err, "colour consistency: NULL accumulator");
    if (colors->floor_views == 0)
        return 0;
    int64_t cells = colors->floor_cells;
    int views = colors->floor_views;
    colors->floor_texture = malloc((size_t)cells * 3 * sizeof *colors->floor_texture);
    if (colors->floor_texture == NULL)
        return od_fail(err, "colour consistency: out of memory for the floor texture");
#pragma omp parallel for schedule(static)
    for (int64_t cell = 0; cell < cells; cell++) {
        float values[views];
        for (int c = 0; c < 3; c++) {
            int n = 0;
            for (int v = 0; v < views; v++) {
                float value = colors->floor_samples[((int64_t)v * cells + cell) * 3 + c];
                if (!isnan(value))
                    values[n++] = value;
            }
            qsort(values, (size_t)n, sizeof *values, compare_floats);
            colors->floor_texture[3 * cell + c] =
                n == 0 ? NAN : (n % 2 ? values[n / 2] : 0.5f * (values[n / 2 - 1] + values[n / 2]));
        }
    }
    free(colors->floor_samples);
    colors->floor_samples = NULL;
    return 0;
}

/* Returns the floor texture's colour at world (x, y), nearest cell, or
 * NULL outside the texture or where no view saw the floor. */
static const float *floor_color(const od_color_consistency *colors, double x, double y)
{
    double u = (x - colors->floor_origin[0]) / colors->floor_cell;
    double w = (y - colors->floor_origin[1]) / colors->floor_cell;
    if (!(u >= 0.0 && u < (double)colors->floor_dims[0] && w >= 0.0 && w < (double)colors->floor_dims[1]))
        return NULL;
    const float *color = colors->floor_texture + 3 * ((int64_t)w * colors->floor_dims[0] + (int64_t)u);
    return isnan(color[0]) ? NULL : color;
}

int od_color_consistency_add_view(od_color_consistency *colors, const od_camera *camera, const od_image *image,
                                  od_error *err)
{
    if (check_view(colors, camera, image, err) != 0)
        return -1;
    if (colors->floor_views > 0 && colors->floor_texture == NULL)
        return od_fail(err, "colour consistency: call od_color_consistency_finish_floor before adding views");
    double P[12];
    if (projection_matrix(camera, P, err) != 0)
        return -1;
    double eye[3];
    od_camera_center(camera, eye);
    double focal = 0.5 * (camera->K[0] + camera->K[4]);

    const od_grid *g = &colors->grid;
    const int64_t X = g->dims[0], Y = g->dims[1], Z = g->dims[2];
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < Z * Y; row++) {
        int64_t k = row / Y, j = row % Y;
        double py = g->origin[1] + ((double)j + 0.5) * g->voxel_size;
        double pz = g->origin[2] + ((double)k + 0.5) * g->voxel_size;
        for (int64_t i = 0; i < X; i++) {
            double px = g->origin[0] + ((double)i + 0.5) * g->voxel_size;
            double rgb[3];
            if (!sample_point(image, P, focal, g->voxel_size, px, py, pz, rgb))
                continue;
            int64_t v = row * X + i;
            colors->seen[v] += 1;
            for (int c = 0; c < 3; c++) {
                colors->sum[3 * v + c] += rgb[c];
                colors->sum_squares[3 * v + c] += rgb[c] * rgb[c];
            }
            if (colors->floor_texture == NULL)
                continue;

            /* The ray from the camera through the voxel meets the floor at
             * eye + t (voxel - eye), t >= 1, when the camera is above the
             * voxel. */
            if (pz <= colors->floor_z) {
                colors->background[v] += 1;
                continue;
            }
            if (!(eye[2] > pz))
                continue;
            double t = (eye[2] - colors->floor_z) / (eye[2] - pz);
            const float *behind = floor_color(colors, eye[0] + t * (px - eye[0]), eye[1] + t * (py - eye[1]));
            if (behind == NULL)
                continue;
            double distance = 0.0;
            for (int c = 0; c < 3; c++)
                distance += (rgb[c] - behind[c]) * (rgb[c] - behind[c]) / 3.0;
            if (sqrt(distance) > colors->foreground_threshold)
                colors->foreground[v] += 1;
            else
                colors->background[v] += 1;
        }
    }
    return 0;
}

int od_color_consistency_finish(const od_color_consistency *colors, const od_color_occupancy_options *options,
                                uint8_t *occupied, float *mean_color, float *spread, od_error *err)
{
    if (colors == NULL || options == NULL || occupied == NULL)
        return od_fail(err, "colour consistency: NULL accumulator, options or occupancy");
    if (!(options->max_std >= 0.0 && isfinite(options->max_std)))
        return od_fail(err, "colour consistency: the maximum spread %g is not a finite value >= 0", options->max_std);
    if (!(options->background_tolerance >= 0.0 && options->background_tolerance < 1.0))
        return od_fail(err, "colour consistency: the background tolerance %g is not in [0, 1)",
                       options->background_tolerance);
    if (options->min_views < 1)
        return od_fail(err, "colour consistency: min_views %d must be at least 1", options->min_views);
    int floor_test = colors->floor_texture != NULL;
    for (int64_t v = 0; v < colors->voxels; v++) {
        int32_t n = colors->seen[v];
        double variance = 0.0, mean[3] = {0.0, 0.0, 0.0};
        if (n > 0)
            for (int c = 0; c < 3; c++) {
                mean[c] = colors->sum[3 * v + c] / n;
                double squares = colors->sum_squares[3 * v + c] / n - mean[c] * mean[c];
                variance += squares > 0.0 ? squares / 3.0 : 0.0;
            }
        double deviation = sqrt(variance);
        int occupied_here = n >= options->min_views && deviation <= options->max_std;
        if (floor_test) {
            int32_t votes = colors->foreground[v] + colors->background[v];
            /* The 1e-9 keeps tolerance 0.2 of 5 votes at one vote, not zero. */
            int32_t allowed = (int32_t)floor(options->background_tolerance * (double)votes + 1e-9);
            occupied_here = occupied_here && colors->foreground[v] >= options->min_views &&
                            colors->background[v] <= allowed;
        }
        occupied[v] = (uint8_t)occupied_here;
        if (mean_color != NULL)
            for (int c = 0; c < 3; c++)
                mean_color[3 * v + c] = (float)mean[c];
        if (spread != NULL)
            spread[v] = (float)deviation;
    }
    return 0;
}
