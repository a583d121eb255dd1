/* Pictures of a scene for people to check: 3D boxes drawn onto a view,
 * and a top-down sketch of the cameras, the region of interest and the
 * boxes. `oddone show` draws the ground truth with them, and predicted
 * boxes can be drawn the same way. */
#ifndef ODDONE_SCENE_OVERLAY_H
#define ODDONE_SCENE_OVERLAY_H

#include "geometry/box.h"
#include "geometry/camera.h"
#include "io/image.h"
#include "scene/scene.h"

/* Colours (RGB in [0, 1]) for anomalous and normal objects, and for the
 * region of interest. */
extern const float od_overlay_anomalous_color[3];
extern const float od_overlay_normal_color[3];
extern const float od_overlay_roi_color[3];

/* One box to draw, with its colour and an optional label. */
typedef struct od_overlay_box {
    od_box box;
    float color[3];
    const char *label; /* drawn above the box; NULL for none */
} od_overlay_box;

/* Returns the line width in pixels for an image: 1 up to 384 pixels on
 * the longer side, growing with the image so lines stay visible. */
double od_overlay_line_width(const od_image *image);

/* Draws each box's 12 edges, clipped at the camera plane, onto `image`
 * (the camera's size), and its label above the box's highest visible
 * corner on a dark band. */
void od_overlay_draw_boxes(od_image *image, const od_camera *camera, const od_overlay_box *boxes, int count);

/* Draws the region of interest's 12 edges onto `image`. */
void od_overlay_draw_roi(od_image *image, const od_camera *camera, const double roi_min[3], const double roi_max[3]);

/* Draws a size x size top-down sketch of the scene's world seen from +z.
 * Each camera is a dot with a line along its viewing direction and its
 * view number. The sketch also shows the region of interest, the boxes as
 * rotated rectangles with their labels, the x and y axes at the origin
 * and a scale bar in world units. */
int od_overlay_top_view(const od_scene *scene, const od_overlay_box *boxes, int count, int size, od_image *out,
                        od_error *err);

/* Fills boxes[0 .. scene->object_count) from the scene's ground truth:
 * anomalous objects red, normal green, labelled "<name> <kind>" or
 * "<name> normal" (with " truncated" when cut by the region of interest).
 * `labels` receives the label text, 128 bytes per object. */
void od_overlay_ground_truth(const od_scene *scene, od_overlay_box *boxes, char (*labels)[128]);

#endif
