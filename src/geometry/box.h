/* Oriented 3D boxes that rotate about the world's z (up) axis only, as the
 * objects of a tabletop scene rest on the floor, and their projection into
 * views as 2D convex polygons.
 *
 * A box is its centre, its size along its own axes and its yaw: the angle
 * in radians from the world x axis to the box's first axis, counter-
 * clockwise seen from above (+z). Ground truth and predictions both use it. */
#ifndef ODDONE_GEOMETRY_BOX_H
#define ODDONE_GEOMETRY_BOX_H

#include "geometry/camera.h"

typedef struct od_box {
    double center[3]; /* world units */
    double size[3];   /* full extent along the box's own x, y, z axes */
    double yaw;       /* radians about world z */
} od_box;

/* The 12 edges of a box as pairs of indices into od_box_corners' output. */
extern const int od_box_edges[12][2];

/* Writes the 8 corners. Corner i has the offsets (+-size/2) along the box's
 * x, y and z axes given by bits 0, 1 and 2 of i (bit set: +). */
void od_box_corners(const od_box *box, double corners[8][3]);

/* Returns 1 when the world point lies inside the box or on its surface. */
int od_box_contains(const od_box *box, const double point[3]);

/* Writes the convex hull of `count` 2D points (x, y pairs), counter-
 * clockwise when y points up (clockwise on screen, where y points down),
 * without repeated or collinear points, and returns
 * its number of vertices (at most count). hull needs room for 2 * count
 * doubles. Runs Andrew's monotone chain; the input is left unchanged. */
int od_convex_hull_2d(const double *points, int count, double *hull);

/* Returns 1 when (x, y) lies inside or on the convex polygon written by
 * od_convex_hull_2d. A polygon of fewer than 3 vertices contains nothing. */
int od_convex_polygon_contains(const double *polygon, int count, double x, double y);

/* Writes the outline of the box as seen by the camera: the convex hull of
 * the projection of the part of the box in front of the camera (at most
 * 20 vertices, so hull needs 40 doubles). Returns the vertex count, 0 when
 * the whole box is behind the camera. */
int od_box_project_hull(const od_box *box, const od_camera *camera, double hull[40]);

#endif
