/* Geometric anomalies for the scene generator: bend, twist, fracture,
 * crack, part missing, part translated and part rotated. Each takes a mesh (normalised or not), draws its
 * parameters from an od_rng the caller owns, writes an altered copy to
 * *out and checks its own quality criterion; a candidate that fails the
 * check is drawn again from the same rng, up to OD_SYNTH_ANOMALY_TRIES
 * times, after which the function fails. Same mesh and rng state give the
 * same result. Lengths are relative to the mesh's largest bounding-box
 * extent ("size"). */
#ifndef ODDONE_SYNTH_ANOMALY_H
#define ODDONE_SYNTH_ANOMALY_H

#include "core/error.h"
#include "core/rng.h"
#include "synth/mesh.h"

#define OD_SYNTH_ANOMALY_TRIES 16

/* What an anomaly function drew and measured. */
typedef struct od_synth_anomaly_info {
    float parameter; /* bend, twist: angle in degrees; fracture: target removed fraction; crack: depth / size;
                        part missing: index of the removed part */
    float measure;   /* bend, twist: largest distance off the original surface / size; fracture: removed fraction of the
                        surface area; crack: deepest inward displacement / size; part missing: removed
                        fraction of the faces */
    int rejected;    /* candidates that failed the check before this one */
} od_synth_anomaly_info;

/* Bends the mesh in a circular arc about an axis through its bounding-box
 * centre: the longest axis is curved into an arc of 15 to 45 degrees in
 * the plane of the longest axis and one other axis (drawn), towards a
 * drawn side. Faces are kept as they are, so the topology is unchanged.
 * Check: some vertex leaves the original surface (the tangent plane of
 * its nearest original vertex) by at least 2 % of the size, so a slide
 * along the surface does not count. info may be NULL. Normals, when present, are recomputed. */
int od_synth_bend(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info, od_error *err);

/* Twists the mesh about its longest axis through the bounding-box centre:
 * each cross-section turns in proportion to its position along the axis,
 * 20 to 90 degrees from one end to the other, in a drawn direction.
 * Check: as for bend, so a mesh that is round about its longest axis
 * (a sphere, a cylinder) is rejected: its twist does not show. */
int od_synth_twist(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info, od_error *err);

/* Cuts the mesh with a random plane and removes the faces whose centroid
 * lies on one side. The plane's normal is drawn, and its offset is set so
 * that a drawn fraction (20 to 70 %) of the surface area goes. The cut
 * follows the faces' edges, so it is as jagged as the mesh is coarse.
 * When the mesh is closed (every edge has a reverse, by position), each
 * loop the cut opens gets a cap: a fan of triangles about the loop's
 * centroid, with vertices of its own and one flat normal. A loop whose fan
 * would fold over on more than a quarter of its area, or that strays from
 * its plane by more than 0.35 of its radius (a cut along long faces),
 * stays open. Through an open cut the inside of the far wall shows, drawn
 * only when the renderer does not cull back faces. Check: the removed
 * fraction of the surface area (before capping) lies in [10 %, 90 %], and
 * the remainder is one connected piece (faces sharing vertex positions).
 * Area rather than volume, because the mesh need not be closed. */
int od_synth_fracture(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info,
                      od_error *err);

/* Cuts a thin wedge-shaped groove along a curve on the surface: the curve
 * is where the surface meets a drawn plane through a drawn vertex, made
 * wavy by a sine, over a length of 0.7 of the size. Vertices within the
 * groove's half width (3.5 % of the size) move inward, along the negated
 * normal averaged over every face that touches their position, by
 * depth * (1 - |distance| / half width), tapered towards the ends. The
 * depth is 6 to 10 % of the size, and at most half the mesh's thickness
 * under the start (along the inward normal), so a thin wall is not cut
 * through. Where the thickness limits the depth, the groove is 1.5 times
 * as wide. A start whose normal points down (z below
 * -0.5) is drawn again, because the generator rests meshes on the floor
 * with z up. When the mesh is coarser than the groove, it is
 * subdivided as a whole (each triangle into four, midpoints shared, so a
 * closed mesh stays closed) up to 400 000 faces. Check: the deepest
 * inward displacement is at least 3 % of the size and at least 6
 * vertices move by half the depth or more, so a mesh thinner than 6 %
 * of its size everywhere gets no crack. */
int od_synth_crack(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info, od_error *err);

/* Removes one part. The parts are the mesh's groups (face_parts) when it
 * has two or more non-empty ones, else its connected components. The
 * part of the largest surface area, when no other is as large, is the
 * body and stays. The other parts are tried in a drawn order. One is
 * accepted when the others still hold together, either through shared
 * vertex positions or through bounding boxes closer than 2 % of the size
 * (parts that are modelled as separate pieces but touch). The remainder is never empty. Fails on a mesh with
 * fewer than two parts or when no part can go. */
int od_synth_remove_part(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info,
                         od_error *err);

/* Moves one part along a drawn direction by 5 to 15 % of the size. The
 * parts are those of od_synth_remove_part. The part of the largest
 * surface area is the body and stays. The others are tried in a drawn
 * order, four directions each. A vertex that the part shares with the
 * rest is split in two, so the part comes loose at the seam and the rest
 * keeps its shape. Check: the moved part stays attached. Some point of its
 * surface (vertices, face centroids, points 1 % of the size apart) must
 * lie within 2 % of the size of a point of the rest's surface.
 * info->parameter is the distance / size, measure the largest vertex
 * displacement / size. Fails on a mesh with fewer than two parts or when
 * every move detaches the part. */
int od_synth_translate_part(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info,
                            od_error *err);

/* Turns one part by 15 to 60 degrees (either sense) about a drawn axis
 * through its joint. The joint is the centroid of the part's surface
 * points that lie within 2 % of the size of the rest. A part that touches
 * nothing is skipped. Parts, seams and the attachment check are those of
 * od_synth_translate_part. A turn that moves no vertex by 3 % of the size
 * is drawn again. info->parameter is the signed angle in degrees, measure
 * the largest vertex displacement / size. */
int od_synth_rotate_part(const od_mesh *mesh, od_rng *rng, od_mesh *out, od_synth_anomaly_info *info,
                         od_error *err);

/* Marks the faces of `a` that lie off the surface of `b`. marks[f] (a's
 * face count) is 1 when face f's centroid is farther than `tolerance`
 * from every point of b's surface, else 0. The points are b's vertices,
 * face centroids and points tolerance / 3 apart on average. The
 * generator marks an anomalous region this way, both ways round. The
 * altered version's faces off the normal one's surface show a bump or a
 * moved part. The normal version's faces off the altered one's show what
 * a fracture or a missing part took away. count (may be NULL) receives
 * the marked faces. */
int od_synth_surface_difference(const od_mesh *a, const od_mesh *b, float tolerance, uint8_t *marks, int64_t *count,
                                od_error *err);

/* The word that marks a distinct but close shape in an object's path,
 * as the paper's figures name the kind. */
#define OD_SYNTH_DISTINCT_NAME "distinct"

/* Picks a distinct but geometrically close shape for `mesh` among
 * `candidate_count` candidate meshes, for the anomaly that places it among
 * instances of `mesh`. Each mesh is sampled at 1024 surface points and
 * scaled to a largest extent of 1 about its bounding-box centre. The
 * candidates are ranked by a shape descriptor that ignores rotation: the
 * histogram of distances between point pairs (D2) and the spread along
 * the principal axes. The five nearest that are not copies (Chamfer
 * distance 0.01 or more) are tried in order. The first whose symmetric
 * Chamfer distance (mean nearest-point distance, both ways, in units of
 * the size) is at most max_chamfer is accepted: *chosen receives its
 * index and *distance (may be NULL) the Chamfer distance. Chamfer
 * compares the meshes as they are oriented. Fails when no candidate
 * qualifies. */
int od_synth_close_shape(const od_mesh *mesh, const od_mesh *const *candidates, int candidate_count,
                         float max_chamfer, int *chosen, float *distance, od_error *err);

/* Returns the count of parts od_synth_remove_part would see, or -1 on
 * failure. */
int od_synth_part_count(const od_mesh *mesh, od_error *err);

#endif
