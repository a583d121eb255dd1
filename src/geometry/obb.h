/* Oriented boxes for the localization step. A voxel cluster's box is the
 * minimum-area rectangle of its footprint on the floor, lifted to an od_box
 * by the cluster's z extent. The evaluation measures overlap by the rotated
 * 3D IoU of two boxes that rotate about z only. */
#ifndef ODDONE_GEOMETRY_OBB_H
#define ODDONE_GEOMETRY_OBB_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/box.h"

/* Finds the minimum-area rectangle around a convex polygon by rotating
 * calipers: one side of that rectangle lies on a polygon edge, and the
 * extreme vertices along each edge move monotonically as the edge turns.
 * hull is (count, 2), counter-clockwise without collinear points, as
 * od_convex_hull_2d writes it. Writes the centre, the side lengths and the
 * yaw of the first side, normalised as od_box_fit_voxels documents. One
 * vertex gives sizes 0 and two give a segment with size[1] 0. Fails when
 * count < 1 or a buffer is NULL. */
int od_min_area_rectangle(const double *hull, int count, double center[2], double size[2], double *yaw,
                          od_error *err);

/* Fits the box of the voxels whose label equals cluster (all voxels when
 * labels is NULL).
 * voxels is (count, 3) as (x, y, z) grid indices and labels is (count).
 * The centre of voxel (i, j, k) is at origin + voxel_size * (i, j, k), and a
 * voxel is a cube of side voxel_size.
 * The footprint is the convex hull of the corners of the voxels' squares,
 * not of their centres, so the box encloses every voxel whole. One voxel
 * gives a voxel_size cube, and sizes are not one voxel short, because
 * ground truth boxes enclose the object's whole surface.
 * The height spans the lowest voxel's bottom face to the highest one's top.
 * The result has size[0] >= size[1] and yaw in [-pi/2, pi/2), so the first
 * axis is the long side; a square footprint has yaw in [-pi/4, pi/4).
 * Fails when no voxel has the label, voxel_size is not positive and finite,
 * or a buffer is NULL. */
int od_box_fit_voxels(const int32_t *voxels, const int32_t *labels, int64_t count, int32_t cluster,
                      const double origin[3], double voxel_size, od_box *box, od_error *err);

/* Fits a box to a cluster's voxel centres, for occupancy that marks a
 * voxel by its centre (a visual hull), where the voxels' whole cubes
 * would overstate the object by about half a voxel on every side.
 * Arguments as od_box_fit_voxels. The footprint is the minimum-area
 * rectangle of the members' centres, grown by side_margin on each side.
 * Objects rest on the floor, so the height starts at the lowest voxel's
 * bottom face. It ends at the highest centre plus top_margin. Margins are in voxels, in
 * (-0.5, 1); the caller measures them against ground truth. One voxel
 * gives a footprint of side 2 * side_margin. Fails as od_box_fit_voxels
 * does, and on a margin out of range. */
int od_box_fit_voxel_centres(const int32_t *voxels, const int32_t *labels, int64_t count, int32_t cluster,
                             const double origin[3], double voxel_size, double side_margin, double top_margin,
                             od_box *box, od_error *err);

/* Returns the area where the floor footprints (x, y) of two boxes overlap,
 * by Sutherland-Hodgman clipping of one rectangle by the other. */
double od_box_footprint_intersection(const od_box *a, const od_box *b);

/* Returns the intersection over union of two boxes' volumes: the footprint
 * intersection times the overlap of their z ranges, over the union. Returns
 * 0 when the union is empty (both boxes of zero volume) or a field is not
 * finite, never NaN. */
double od_box_iou_3d(const od_box *a, const od_box *b);

#endif
