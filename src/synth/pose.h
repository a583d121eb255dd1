/* Resting poses: where a rigid mesh comes to rest on the floor (z = 0)
 * when it is let go in a given orientation, as the generator needs for a
 * "dropped" object.
 *
 * Model: a quasi-static drop. The mesh first touches the floor at its
 * lowest vertex, then pivots about the contact towards its centre of
 * mass until another vertex touches, and so on. At each step the contacts
 * (vertices within 1e-4 of the size of the floor) span a support polygon,
 * the convex hull of the contacts in the floor's plane. When the centre of
 * mass projects inside the polygon the pose is stable and the drop ends.
 * Otherwise the mesh pivots about the point of the polygon nearest to the
 * projection (a vertex or a point on an edge), in the direction of the
 * projection, until the next vertex touches. Each pivot lowers the centre
 * of mass, so the drop ends on one face of the convex hull: the one the
 * drop reaches, which is not always the lowest. Bouncing and sliding are
 * not modelled, so the result is deterministic. A balance exactly on a
 * point or an edge (a cone on its tip) counts as unstable. The mesh then
 * falls to the side whose next contact is reached by the smallest turn,
 * the first of 16 directions on a tie.
 *
 * The centre of mass is that of the enclosed solid when the mesh looks
 * closed (its area-weighted normals sum to under 1e-3 of its area and the
 * volume is positive), else that of the surface, area-weighted. */
#ifndef ODDONE_SYNTH_POSE_H
#define ODDONE_SYNTH_POSE_H

#include "core/error.h"
#include "core/rng.h"
#include "synth/mesh.h"

/* The largest count of pivots of one drop. The test shapes settle in 2 or fewer. */
#define OD_SYNTH_POSE_MAX_STEPS 256

/* Where a drop ended. */
typedef struct od_synth_rest {
    double rotation[9];        /* row-major: mesh frame to the resting frame, floor normal +z */
    double centre_of_mass[3];  /* in the mesh frame */
    double height;             /* of the centre of mass above the floor at rest */
    double start_height;       /* the same in the start orientation, resting on its lowest vertex */
    double support_area;       /* area of the support polygon */
    int contacts;              /* vertices on the floor at rest */
    int steps;                 /* pivots taken */
} od_synth_rest;

/* Drops `mesh` from the orientation `start` (row-major 3x3 rotation,
 * mesh frame to world; NULL for the identity, the mesh's own upright)
 * and writes the rest pose. rest->rotation is a rotation of `start` by
 * the smallest turn that brings the final support face down, so a mesh
 * that is stable in `start` keeps it exactly. Fails on an empty mesh, a
 * mesh of zero or non-finite extent, or a drop that does not settle in
 * OD_SYNTH_POSE_MAX_STEPS pivots. */
int od_synth_rest_pose(const od_mesh *mesh, const double *start, od_synth_rest *rest, od_error *err);

/* Writes a rotation drawn uniformly (from a uniform unit quaternion). */
void od_synth_random_rotation(od_rng *rng, double rotation[9]);

/* Rotates the mesh's positions and normals in place by a row-major 3x3
 * rotation about the origin. */
void od_synth_rotate_mesh(od_mesh *mesh, const double rotation[9]);

/* Writes the turn about z that brings the mesh's main horizontal axis
 * onto x: the principal axis of the surface's x and y (its exact second
 * moments). After a drop from a drawn orientation it removes the
 * drawn yaw, so the mesh's axis-aligned box fits it snugly. */
void od_synth_yaw_alignment(const od_mesh *mesh, double rotation[9]);

/* Writes the centre of mass as described above. */
int od_synth_centre_of_mass(const od_mesh *mesh, double centre[3], od_error *err);

#endif
