/* Heat maps over views; see heat.h. */
#include "detect/heat.h"

#include <math.h>
#include <stdlib.h>

/* Stops of the colour map at t = 0, 0.25, 0.5, 0.75 and 1. */
static const float heat_stops[5][3] = {
    {0.05f, 0.05f, 0.45f}, {0.0f, 0.65f, 0.95f}, {0.2f, 0.85f, 0.3f}, {1.0f, 0.85f, 0.1f}, {0.9f, 0.05f, 0.05f},
};

void od_heat_color(float t, float rgb[3])
{
    if (!(t > 0.0f))
        t = 0.0f;
    if (t > 1.0f)
        t = 1.0f;
    float position = t * 4.0f;
    int stop = (int)position;
    stop = stop > 3 ? 3 : stop;
    float f = position - (float)stop;
    for (int c = 0; c < 3; c++)
        rgb[c] = (1.0f - f) * heat_stops[stop][c] + f * heat_stops[stop + 1][c];
}

int od_heat_draw(od_image *image, const od_camera *camera, const od_grid *grid, const int32_t *voxels,
                 const float *values, int64_t count, float low, float high, od_error *err)
{
    if (image == NULL || image->pixels == NULL || camera == NULL || grid == NULL ||
        (count > 0 && (voxels == NULL || values == NULL)))
        return od_fail(err, "heat: NULL image, camera, grid, voxels or values");
    if (image->channels != 3 || image->width != camera->width || image->height != camera->height)
        return od_fail(err, "heat: the image is %d x %d with %d channels; expected RGB at the camera's %d x %d",
                       image->width, image->height, image->channels, camera->width, camera->height);
    if (!(high > low))
        return od_fail(err, "heat: the value range [%g, %g] is empty", (double)low, (double)high);
    int width = image->width, height = image->height;
    float *depth = malloc((size_t)width * height * sizeof *depth);
    float *value = malloc((size_t)width * height * sizeof *value);
    if (depth == NULL || value == NULL) {
        free(depth);
        free(value);
        return od_fail(err, "heat: out of memory for a %d x %d view", width, height);
    }
    for (int64_t p = 0; p < (int64_t)width * height; p++) {
        depth[p] = INFINITY;
        value[p] = NAN;
    }

    /* Each voxel covers the square of its projected width around its
     * centre's pixel; the nearest voxel wins. */
    double focal = 0.5 * (camera->K[0] + camera->K[4]);
    for (int64_t q = 0; q < count; q++) {
        if (isnan(values[q]))
            continue;
        double centre[3], pixel[2], z;
        od_grid_voxel_center(grid, voxels[3 * q], voxels[3 * q + 1], voxels[3 * q + 2], centre);
        if (!od_camera_project(camera, centre, pixel, &z))
            continue;
        double radius = 0.5 * focal * grid->voxel_size / z;
        if (pixel[0] + radius < -0.5 || pixel[0] - radius > width - 0.5 || pixel[1] + radius < -0.5 ||
            pixel[1] - radius > height - 0.5)
            continue;
        radius = radius > width + height ? width + height : radius;
        int x0 = (int)floor(pixel[0] - radius + 0.5), x1 = (int)floor(pixel[0] + radius + 0.5);
        int y0 = (int)floor(pixel[1] - radius + 0.5), y1 = (int)floor(pixel[1] + radius + 0.5);
        x0 = x0 < 0 ? 0 : x0;
        y0 = y0 < 0 ? 0 : y0;
        x1 = x1 >= width ? width - 1 : x1;
        y1 = y1 >= height ? height - 1 : y1;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                int64_t p = (int64_t)y * width + x;
                if (z < depth[p]) {
                    depth[p] = (float)z;
                    value[p] = values[q];
                }
            }
    }

    for (int64_t p = 0; p < (int64_t)width * height; p++) {
        if (isnan(value[p]))
            continue;
        float rgb[3];
        od_heat_color((value[p] - low) / (high - low), rgb);
        float *pixel = image->pixels + 3 * p;
        for (int c = 0; c < 3; c++)
            pixel[c] = (1.0f - OD_HEAT_OPACITY) * pixel[c] + OD_HEAT_OPACITY * rgb[c];
    }
    free(depth);
    free(value);
    return 0;
}
