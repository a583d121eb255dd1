/* Scene generation: several instances of one shape on a floor, at most one
 * of them altered by an anomaly, rendered from cameras on a hemisphere
 * and written in the ToysAD-8K / PartsAD-15K release format, so that
 * od_scene_load reads generated and released scenes alike.
 *
 * Written files, under the output folder:
 * - RGB/NNNN.png: the views (8-bit RGB);
 * - segmentations/<name>/<name>_NNNN.png: each object's mask per view;
 * - depth_png/NNNN.png: 16-bit depth along the optical axis in
 *   millimetres, 0 where nothing is hit (od_raster_frame's depth);
 * - scene3d.metadata.json: camera.K (shared, principal point measured
 *   from the image's top-left corner as the release does), camera.poses[i]
 *   .rotation (4x4 world-to-camera, OpenCV axes), and per object name,
 *   path, rotation_matrix (4x4 object-to-world: a yaw about z and the box
 *   centre), location, scale and bbox = [centre, size in the object's
 *   frame]. An anomalous object's path carries the kind as the release
 *   does: "sphere_000-bump-001.obj", "sphere_000-material-001.obj".
 * World units are metres, z is up and the floor is z = 0.
 *
 * NOTE: the anomalies so far are bump, material, bend, twist, fracture,
 * crack, part missing, part translated and part rotated (the last seven
 * in synth/anomaly.h); close shape is still to come. */
#ifndef ODDONE_SYNTH_GENERATE_H
#define ODDONE_SYNTH_GENERATE_H

#include <stdint.h>

#include "core/error.h"
#include "synth/mesh.h"

/* The anomaly kinds, each named in the object's path as the release does. */
typedef enum od_synth_anomaly {
    OD_SYNTH_ANOMALY_RANDOM = 0, /* one of the kinds below, drawn from the seed */
    OD_SYNTH_ANOMALY_BUMP,       /* "bump": a smooth bulge on the surface */
    OD_SYNTH_ANOMALY_MATERIAL,   /* "material": the colours' channels rotated (R, G, B) -> (B, R, G) */
    OD_SYNTH_ANOMALY_BEND,       /* "bend": the longest axis bent into an arc of 15 to 45 degrees */
    OD_SYNTH_ANOMALY_TWIST,      /* "twist": cross-sections turned 20 to 90 degrees end to end */
    OD_SYNTH_ANOMALY_FRACTURE,   /* "fracture": 20 to 70 % of the surface cut away by a plane */
    OD_SYNTH_ANOMALY_CRACK,      /* "crack": a thin wedge-shaped groove along a curve */
    OD_SYNTH_ANOMALY_PART_MISSING, /* "missing": one part (group or connected piece) removed */
    OD_SYNTH_ANOMALY_TRANSLATED,   /* "translated": one part moved by 5 to 15 % of the size, still attached */
    OD_SYNTH_ANOMALY_ROTATED,      /* "rotated": one part turned 15 to 60 degrees about its joint */
} od_synth_anomaly;

#define OD_SYNTH_ANOMALY_LAST OD_SYNTH_ANOMALY_ROTATED

/* Returns the name that marks the kind in paths ("bump", "material",
 * "bend", "twist", "fracture", "crack", "missing", "translated",
 * "rotated"), or "random". The release's one sample shows only "crack";
 * the part kinds take the words of NOTES.md ("part translated", "part
 * rotated about its joint"). */
const char *od_synth_anomaly_name(od_synth_anomaly kind);

/* Reads a kind from its name (as od_synth_anomaly_name writes it, or
 * "random"); returns 0, or -1 for an unknown name. */
int od_synth_anomaly_parse(const char *name, od_synth_anomaly *kind);

/* How the instances come to rest on the floor (synth/pose.h). Every
 * normal instance of a scene shares one pose and differs in place and
 * yaw, as in the release, where two normal instances share one bounding
 * box size. The anomalous instance is dropped from the normal one's rest,
 * so a bend or a missing part can tip it over. */
typedef enum od_synth_pose {
    OD_SYNTH_POSE_UPRIGHT = 0, /* dropped from the mesh's own orientation, z up */
    OD_SYNTH_POSE_DRAWN,       /* dropped from an orientation drawn per scene */
    OD_SYNTH_POSE_AS_IS,       /* the mesh's own orientation on its lowest point, not dropped */
} od_synth_pose;

typedef struct od_synth_scene_options {
    uint64_t seed;
    int object_count;        /* instances of the shape, 2 to 12 */
    int view_count;          /* 1 to 1000 */
    int image_size;          /* square views, 16 to 4096 pixels */
    int supersample;         /* samples per pixel side, 1 to 4 */
    int anomalous;           /* 1: one instance gets an anomaly; 0: all normal */
    od_synth_anomaly anomaly; /* which anomaly */
    double object_size;      /* largest extent of each instance, metres */
    double placement_radius; /* instances stand within this distance of the origin, metres */
    double min_gap;          /* minimum distance between the instances' bounding circles, metres */
    double camera_distance[2];  /* range of camera distances from the look-at point, metres */
    double camera_elevation[2]; /* range of elevations above the floor, degrees */
    double focal;               /* focal length in pixels at image_size */
    int min_anomaly_pixels;     /* minimum count of pixels, in the view that shows it best, of the
                                   anomalous region (see od_synth_generate_scene) */
    od_synth_pose pose;         /* how the instances come to rest */
} od_synth_scene_options;

/* What generating one scene took. */
typedef struct od_synth_scene_stats {
    int rejected;           /* candidate scenes rejected: rejected_check + rejected_hidden */
    int rejected_check;     /* ... because the anomaly failed its own quality check on every draw */
    int rejected_hidden;    /* ... because the anomalous region showed in fewer than min_anomaly_pixels
                               pixels of every view */
    int redrawn;            /* anomaly parameters drawn again inside the anomaly functions, over all
                               candidates (od_synth_anomaly_info.rejected) */
    od_synth_anomaly kind;  /* the accepted scene's anomaly kind (the drawn one for RANDOM), RANDOM when
                               all normal */
    int64_t anomaly_pixels; /* the accepted scene's count, as min_anomaly_pixels measures it */
    uint64_t seed;          /* the seed of the accepted candidate */
} od_synth_scene_stats;

/* Returns the defaults, close to the release's geometry: 5 instances of
 * 0.1 m within 0.3 m of the origin, 2 cm apart, 20 views of 256 x 256
 * with 2 x 2 supersampling, cameras 0.79 to 0.86 m away at 25 to 32
 * degrees of elevation, focal length 213.3 pixels, one bump, instances
 * dropped from upright. */
od_synth_scene_options od_synth_scene_options_default(void);

/* Generates one scene of `shape` (any mesh; it is normalised to
 * options->object_size) into out_dir, creating the folders. shape_name
 * names the shape in the objects' paths ('-' is replaced by '_').
 * Deterministic for a seed. The anomalous region is found by
 * od_synth_surface_difference with a tolerance of 1.5 % of object_size.
 * It is the altered version's faces off the normal version's surface,
 * plus the normal version's faces off the altered one's. For a material
 * swap it is the whole instance. Its pixels in a view are those where it shows, in the view
 * itself or in the same view with the normal version in the anomalous
 * instance's place and pose. A candidate whose region shows in fewer
 * than min_anomaly_pixels pixels of every view is rejected and drawn
 * again from a derived seed, up to 8 times; stats (may be NULL) counts
 * the rejections per reason. A geometric anomaly whose own quality
 * check fails on every draw (a twist of a sphere, part missing on a mesh
 * of one part) counts as a rejected candidate too. With
 * OD_SYNTH_ANOMALY_RANDOM the kind is drawn among all of them, part
 * missing, translated and rotated only when the shape has two or more
 * parts. The kind drawn from the seed is kept for the first 4
 * candidates, then each candidate draws its own. Fails on invalid options, when the
 * instances cannot be placed without collisions, when no camera shows
 * every instance, when every candidate is rejected, or on a write error. */
int od_synth_generate_scene(const od_synth_scene_options *options, const od_mesh *shape, const char *shape_name,
                            const char *out_dir, od_synth_scene_stats *stats, od_error *err);

/* One object of a scene whose objects need not share a shape. */
typedef struct od_synth_object_spec {
    const od_mesh *mesh;    /* any mesh; a copy is normalised to the options' object_size */
    const char *shape_name; /* names the shape in the object's path ('-' is replaced by '_') */
    const char *anomaly;    /* NULL for a normal object, else the kind its path carries ("distinct") */
} od_synth_object_spec;

/* Generates one scene of object_count objects (2 to 12), object i of
 * shape objects[i].mesh, into out_dir, with the placement, cameras,
 * lighting and files of od_synth_generate_scene. options->object_count,
 * anomalous, anomaly and min_anomaly_pixels are not used: no anomaly is
 * applied, and an object's label is its spec's anomaly name alone, so an
 * odd object here is one whose shape differs from the others'. The
 * objects are placed as if each had the largest footprint among them, so
 * one seed gives the same layout, floor, light and cameras to every
 * scene that mixes the same two shapes in another ratio. The cameras may
 * still differ where a view shows an object in fewer than 4 pixels.
 * Deterministic for a seed. Fails on invalid options or specs, when the
 * objects cannot be placed, when no camera shows every object, or on a
 * write error. */
int od_synth_generate_mixed_scene(const od_synth_scene_options *options, const od_synth_object_spec *objects,
                                  int object_count, const char *out_dir, od_error *err);

/* Adds a smooth bump to a copy of `mesh`. The bump's centre is vertex
 * floor(rng_value * vertex_count), with rng_value in [0, 1). Vertices
 * within 3 sigma of it move outward by height * exp(-d^2 / (2 sigma^2)),
 * where d is their distance to the centre. They move along their normal,
 * or away from the bounding-box centre when the mesh has no normals. Normals, when present, are recomputed afterwards. */
int od_synth_bump(const od_mesh *mesh, float rng_value, float height, float sigma, od_mesh *out, od_error *err);

/* Copies `mesh` with the channels of its vertex colours and material
 * colours rotated, (R, G, B) -> (B, R, G), so every coloured surface
 * changes hue. A grey surface keeps its colour; the renderer's object
 * colour must be rotated by the caller. */
int od_synth_swap_material(const od_mesh *mesh, od_mesh *out, od_error *err);

/* Copies a mesh with all its arrays. */
int od_mesh_copy(const od_mesh *mesh, od_mesh *out, od_error *err);

#endif
