#include "scene/overlay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/draw.h"

const float od_overlay_anomalous_color[3] = {1.0f, 0.15f, 0.15f};
const float od_overlay_normal_color[3] = {0.15f, 0.95f, 0.25f};
const float od_overlay_roi_color[3] = {0.2f, 0.8f, 1.0f};

static const float label_background[3] = {0.08f, 0.08f, 0.08f};
static const float sketch_background[3] = {0.12f, 0.12f, 0.13f};
static const float camera_color[3] = {1.0f, 0.85f, 0.2f};
static const float text_color[3] = {0.9f, 0.9f, 0.9f};
static const float x_axis_color[3] = {0.95f, 0.3f, 0.3f};
static const float y_axis_color[3] = {0.3f, 0.9f, 0.3f};

/* Images up to this many pixels on the longer side get 1-pixel lines and
 * scale-1 text. */
#define BASE_IMAGE_SIDE 384

static int longer_side(const od_image *image) { return image->width > image->height ? image->width : image->height; }

double od_overlay_line_width(const od_image *image)
{
    int side = longer_side(image);
    return side <= BASE_IMAGE_SIDE ? 1.0 : (double)side / BASE_IMAGE_SIDE;
}

static int text_scale(const od_image *image)
{
    int scale = longer_side(image) / (2 * BASE_IMAGE_SIDE);
    return scale < 1 ? 1 : scale;
}

/* The pixel rectangles of the labels drawn so far on one image. */
typedef struct label_places {
    int (*rects)[4]; /* left, top, right, bottom, inclusive */
    int count;
} label_places;

static int rects_overlap(const int a[4], const int b[4])
{
    return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

/* Draws text on a dark band with its bottom-centre at (x, y), kept inside
 * the image. When places is not NULL, a label that would cover an earlier
 * one moves up or down by whole label heights (up to 3 each way), to the
 * first free place, and its rectangle is added to places. */
static void draw_label(od_image *image, double x, double y, const char *text, const float color[3],
                       label_places *places)
{
    int scale = text_scale(image);
    int width, height;
    od_draw_text_size(text, scale, &width, &height);
    int left = (int)lround(x - 0.5 * width), first_top = (int)lround(y) - height;
    if (left > image->width - width - 1)
        left = image->width - width - 1;
    if (left < 1)
        left = 1;
    int top = first_top;
    for (int attempt = 0; attempt < 7; attempt++) {
        int shift = (attempt + 1) / 2 * (height + 2) * (attempt % 2 == 1 ? -1 : 1);
        int candidate = first_top + shift;
        if (candidate > image->height - height - 1)
            candidate = image->height - height - 1;
        if (candidate < 1)
            candidate = 1;
        if (attempt == 0)
            top = candidate;
        if (places == NULL)
            break;
        int rect[4] = {left - 1, candidate - 1, left + width, candidate + height - 1}, free_place = 1;
        for (int i = 0; i < places->count && free_place; i++)
            free_place = !rects_overlap(rect, places->rects[i]);
        if (free_place) {
            top = candidate;
            break;
        }
    }
    od_draw_fill_rect(image, left - 1, top - 1, left + width, top + height - 1, label_background);
    od_draw_text(image, left, top, text, color, scale);
    if (places != NULL) {
        int *rect = places->rects[places->count++];
        rect[0] = left - 1;
        rect[1] = top - 1;
        rect[2] = left + width;
        rect[3] = top + height - 1;
    }
}

static void draw_box_edges(od_image *image, const od_camera *camera, const od_box *box, const float color[3],
                           double thickness)
{
    double corners[8][3];
    od_box_corners(box, corners);
    for (int e = 0; e < 12; e++) {
        double a[2], b[2];
        if (od_camera_project_segment(camera, corners[od_box_edges[e][0]], corners[od_box_edges[e][1]], a, b))
            od_draw_line(image, a[0], a[1], b[0], b[1], color, thickness);
    }
}

void od_overlay_draw_boxes(od_image *image, const od_camera *camera, const od_overlay_box *boxes, int count)
{
    double thickness = od_overlay_line_width(image);
    for (int i = 0; i < count; i++)
        draw_box_edges(image, camera, &boxes[i].box, boxes[i].color, thickness);

    /* Labels after every box, so that no edge covers a label. */
    label_places places = {malloc((size_t)(count > 0 ? count : 1) * sizeof *places.rects), 0};
    for (int i = 0; i < count; i++) {
        if (boxes[i].label == NULL)
            continue;
        double corners[8][3];
        od_box_corners(&boxes[i].box, corners);
        double top_x = 0.0, top_y = INFINITY;
        for (int c = 0; c < 8; c++) {
            double pixel[2];
            if (od_camera_project(camera, corners[c], pixel, NULL) && pixel[1] < top_y) {
                top_x = pixel[0];
                top_y = pixel[1];
            }
        }
        if (isfinite(top_y) && top_x > -image->width && top_x < 2.0 * image->width && top_y > 0.0 &&
            top_y < 2.0 * image->height)
            draw_label(image, top_x, top_y - 3.0, boxes[i].label, boxes[i].color,
                       places.rects != NULL ? &places : NULL);
    }
    free(places.rects);
}

void od_overlay_draw_roi(od_image *image, const od_camera *camera, const double roi_min[3], const double roi_max[3])
{
    od_box roi;
    for (int k = 0; k < 3; k++) {
        roi.center[k] = 0.5 * (roi_min[k] + roi_max[k]);
        roi.size[k] = roi_max[k] - roi_min[k];
    }
    roi.yaw = 0.0;
    draw_box_edges(image, camera, &roi, od_overlay_roi_color, od_overlay_line_width(image));
}

void od_overlay_ground_truth(const od_scene *scene, od_overlay_box *boxes, char (*labels)[128])
{
    for (int o = 0; o < scene->object_count; o++) {
        const od_scene_object *object = &scene->objects[o];
        int anomalous = object->label == OD_LABEL_ANOMALOUS;
        boxes[o].box = object->box;
        memcpy(boxes[o].color, anomalous ? od_overlay_anomalous_color : od_overlay_normal_color,
               sizeof boxes[o].color);
        snprintf(labels[o], 128, "%.60s %.40s%s", object->name, anomalous ? object->anomaly_kind : "normal",
                 object->truncated ? " truncated" : "");
        boxes[o].label = labels[o];
    }
}

/* ---- top view --------------------------------------------------------------------- */

/* Maps world (x, y) to the sketch's pixels, +y up, with (center_x,
 * center_y) at the image centre. */
typedef struct sketch_map {
    double center_x, center_y;
    double pixels_per_unit;
    int size;
} sketch_map;

static void to_pixel(const sketch_map *map, double x, double y, double *u, double *v)
{
    *u = 0.5 * map->size + (x - map->center_x) * map->pixels_per_unit;
    *v = 0.5 * map->size - (y - map->center_y) * map->pixels_per_unit;
}

static void draw_world_line(od_image *image, const sketch_map *map, double x0, double y0, double x1, double y1,
                            const float color[3], double thickness)
{
    double u0, v0, u1, v1;
    to_pixel(map, x0, y0, &u0, &v0);
    to_pixel(map, x1, y1, &u1, &v1);
    od_draw_line(image, u0, v0, u1, v1, color, thickness);
}

/* Returns the 1, 2 or 5 times a power of ten nearest below `length`. */
static double round_length(double length)
{
    double power = pow(10.0, floor(log10(length)));
    double steps[3] = {5.0, 2.0, 1.0};
    for (int i = 0; i < 3; i++)
        if (steps[i] * power <= length)
            return steps[i] * power;
    return power;
}

/* Grows [low, high] in x and y to include (x, y). */
static void include_point(double bounds[4], double x, double y)
{
    if (!isfinite(x) || !isfinite(y))
        return;
    bounds[0] = fmin(bounds[0], x);
    bounds[1] = fmax(bounds[1], x);
    bounds[2] = fmin(bounds[2], y);
    bounds[3] = fmax(bounds[3], y);
}

int od_overlay_top_view(const od_scene *scene, const od_overlay_box *boxes, int count, int size, od_image *out,
                        od_error *err)
{
    if (od_image_new(size, size, 3, out, err) != 0)
        return -1;
    od_draw_fill_rect(out, 0, 0, size - 1, size - 1, sketch_background);

    /* pass 1: the extent of everything drawn */
    double bounds[4] = {0.0, 0.0, 0.0, 0.0};
    for (int v = 0; v < scene->view_count; v++) {
        double center[3];
        od_camera_center(&scene->views[v].camera, center);
        include_point(bounds, center[0], center[1]);
    }
    include_point(bounds, scene->roi_min[0], scene->roi_min[1]);
    include_point(bounds, scene->roi_max[0], scene->roi_max[1]);
    for (int i = 0; i < count; i++) {
        double corners[8][3];
        od_box_corners(&boxes[i].box, corners);
        for (int c = 0; c < 4; c++)
            include_point(bounds, corners[c][0], corners[c][1]);
    }
    double span = fmax(bounds[1] - bounds[0], bounds[3] - bounds[2]);
    if (!(span > 0.0))
        span = 1.0;
    const double margin = 0.08 * size;
    sketch_map map = {0.5 * (bounds[0] + bounds[1]), 0.5 * (bounds[2] + bounds[3]), (size - 2.0 * margin) / span,
                      size};
    double thickness = od_overlay_line_width(out);
    double bar = round_length(0.2 * span);

    /* pass 2: axes, region of interest and scale bar */
    draw_world_line(out, &map, 0.0, 0.0, bar, 0.0, x_axis_color, thickness);
    draw_world_line(out, &map, 0.0, 0.0, 0.0, bar, y_axis_color, thickness);
    double u, v;
    to_pixel(&map, bar, 0.0, &u, &v);
    od_draw_text(out, (int)u + 3, (int)v - 3, "x", x_axis_color, text_scale(out));
    to_pixel(&map, 0.0, bar, &u, &v);
    od_draw_text(out, (int)u + 3, (int)v - 3, "y", y_axis_color, text_scale(out));
    const double *lo = scene->roi_min, *hi = scene->roi_max;
    draw_world_line(out, &map, lo[0], lo[1], hi[0], lo[1], od_overlay_roi_color, thickness);
    draw_world_line(out, &map, hi[0], lo[1], hi[0], hi[1], od_overlay_roi_color, thickness);
    draw_world_line(out, &map, hi[0], hi[1], lo[0], hi[1], od_overlay_roi_color, thickness);
    draw_world_line(out, &map, lo[0], hi[1], lo[0], lo[1], od_overlay_roi_color, thickness);
    int bar_pixels = (int)lround(bar * map.pixels_per_unit);
    int bar_y = size - (int)(0.5 * margin);
    od_draw_line(out, margin, bar_y, margin + bar_pixels, bar_y, text_color, thickness);
    char bar_text[64];
    snprintf(bar_text, sizeof bar_text, "%g", bar);
    od_draw_text(out, (int)margin, bar_y - OD_DRAW_FONT_LINE_HEIGHT * text_scale(out) - 1, bar_text, text_color,
                 text_scale(out));
    od_draw_text(out, 4, 4, "top view, +z toward you", text_color, text_scale(out));

    /* pass 3: boxes as their footprints, corners 0-1-3-2 going round */
    for (int i = 0; i < count; i++) {
        double corners[8][3];
        od_box_corners(&boxes[i].box, corners);
        const int order[4] = {0, 1, 3, 2};
        double polygon[8];
        for (int c = 0; c < 4; c++)
            to_pixel(&map, corners[order[c]][0], corners[order[c]][1], &polygon[c * 2], &polygon[c * 2 + 1]);
        od_draw_polygon(out, polygon, 4, boxes[i].color, thickness);
        if (boxes[i].label != NULL) {
            to_pixel(&map, boxes[i].box.center[0], boxes[i].box.center[1], &u, &v);
            draw_label(out, u, v - 0.5 * boxes[i].box.size[1] * map.pixels_per_unit - 2.0, boxes[i].label,
                       boxes[i].color, NULL);
        }
    }

    /* pass 4: cameras, each with its viewing direction and number */
    double direction_length = 0.12 * span;
    for (int view = 0; view < scene->view_count; view++) {
        double center[3], forward[3];
        od_camera_center(&scene->views[view].camera, center);
        od_camera_axes(&scene->views[view].camera, NULL, NULL, forward);
        draw_world_line(out, &map, center[0], center[1], center[0] + direction_length * forward[0],
                        center[1] + direction_length * forward[1], camera_color, thickness);
        to_pixel(&map, center[0], center[1], &u, &v);
        od_draw_circle(out, u, v, 2.0 * thickness + 1.0, camera_color);
        char number[16];
        snprintf(number, sizeof number, "%d", view);
        od_draw_text(out, (int)u + 4, (int)v + 3, number, camera_color, text_scale(out));
    }
    return 0;
}
