/* Triangle meshes for the scene generator: the in-memory form, a Wavefront
 * OBJ reader, and the clean-up steps every mesh goes through before it is
 * placed in a scene (normalise, weld, connected components).
 *
 * Layout, for a mesh of V vertices and F triangles:
 * - positions (V, 3), always present;
 * - normals (V, 3), uvs (V, 2) and colors (V, 3, RGB in [0, 1]), each NULL
 *   when the mesh has none;
 * - faces (F, 3) vertex indices, counter-clockwise seen from the front;
 * - face_materials (F): index into materials, or -1 for none;
 * - face_parts (F): index into part_names, the OBJ group or object that
 *   the face was read in (part 0 is "default" for faces before any g/o).
 * Every array is owned by the mesh and released by od_mesh_free. */
#ifndef ODDONE_SYNTH_MESH_H
#define ODDONE_SYNTH_MESH_H

#include <stdint.h>

#include "core/error.h"
#include "io/image.h"

/* The largest vertex or face count accepted from a file, so that a corrupt
 * count cannot drive a huge allocation: 2^26 (64 M). */
#define OD_MESH_MAX_ELEMENTS ((int64_t)1 << 26)

typedef struct od_mesh_material {
    char *name;
    float diffuse[3];   /* Kd, RGB in [0, 1]; 0.8 grey when the file gives none */
    char *texture_path; /* map_Kd resolved against the .mtl's folder, or NULL */
    od_image texture;   /* RGB when the texture was read (see od_mesh_obj_options), else empty */
} od_mesh_material;

typedef struct od_mesh {
    int64_t vertex_count;
    float *positions; /* (V, 3) */
    float *normals;   /* (V, 3) or NULL */
    float *uvs;       /* (V, 2) or NULL */
    float *colors;    /* (V, 3) or NULL */
    int64_t face_count;
    int32_t *faces;          /* (F, 3) */
    int32_t *face_materials; /* (F), -1 for none */
    int32_t *face_parts;     /* (F) */
    int material_count;
    od_mesh_material *materials;
    int part_count;
    char **part_names;
} od_mesh;

typedef struct od_mesh_obj_options {
    int read_textures; /* 1: read each material's map_Kd image (PNG or JPEG) */
    int read_materials; /* 1: read the mtllib files; 0: keep only the usemtl names */
} od_mesh_obj_options;

/* Returns the defaults: materials read, textures not read. */
od_mesh_obj_options od_mesh_obj_options_default(void);

/* Reads a Wavefront OBJ file. It understands v (with optional r g b after
 * x y z), vt, vn, and f with the index forms i, i/t, i//n, i/t/n and
 * negative (relative) indices. Polygons are fan-triangulated from their
 * first corner. g and o start parts, and usemtl and mtllib files (newmtl,
 * Kd, map_Kd) give materials. Each distinct
 * (position, uv, normal) triple of the faces becomes one vertex, so UV
 * seams keep their own vertices; positions no face uses are dropped.
 * A missing mtllib file is an error; unknown statements are ignored.
 * options may be NULL for the defaults. On failure the message names the
 * file, the line and what was expected, and *out is left empty. */
int od_mesh_read_obj(const char *path, const od_mesh_obj_options *options, od_mesh *out, od_error *err);

/* Parses OBJ text held in memory. mtllib and map_Kd paths are resolved
 * against base_dir (may be NULL for the current folder); `source` names the
 * text in messages. */
int od_mesh_parse_obj(const char *text, size_t size, const char *source, const char *base_dir,
                      const od_mesh_obj_options *options, od_mesh *out, od_error *err);

/* Writes the axis-aligned bounds of the positions; both are 0 for an empty mesh. */
void od_mesh_bounds(const od_mesh *mesh, float min[3], float max[3]);

/* Moves the centre of the bounding box to the origin and scales the mesh
 * uniformly so that its largest extent equals `size`. Normals keep their
 * direction. Fails on an empty mesh or one whose extent is zero or not
 * finite. */
int od_mesh_normalize(od_mesh *mesh, float size, od_error *err);

/* Merges vertices whose positions round to the same cell of a grid of
 * `tolerance` (world units) and whose uvs, normals and colours agree
 * within 1e-4, so that UV seams and hard edges survive. Faces that
 * collapse to a line or a point are removed. Vertex order is the order of
 * first use. NOTE: two positions closer than tolerance that straddle a
 * cell boundary are not merged. */
int od_mesh_weld(od_mesh *mesh, float tolerance, od_error *err);

/* Labels each face with its connected component: faces that share a
 * vertex position (rounded to a grid of `tolerance`, so UV seams do not
 * split a component) are in the same one. face_components (F) receives
 * labels 0..count-1, numbered in the order of each component's first face.
 * Returns the component count, or -1 on failure. */
int od_mesh_components(const od_mesh *mesh, float tolerance, int32_t *face_components, od_error *err);

/* Allocates a mesh of the given sizes: positions and faces zeroed,
 * face_materials -1, face_parts 0, one part "default", and the optional
 * arrays when requested. */
int od_mesh_new(int64_t vertex_count, int64_t face_count, int with_normals, int with_uvs, int with_colors,
                od_mesh *out, od_error *err);

/* Procedural shapes for tests and benchmarks, centred at the origin:
 * - a UV sphere of `radius` with `rings` latitude bands and `segments`
 *   longitude steps (2 * segments * (rings - 1) triangles), with normals;
 * - a torus of major radius R and minor radius r about z, with normals,
 *   2 * rings * segments triangles;
 * - an axis-aligned box of the given full size, 12 triangles, with flat
 *   normals (24 vertices). */
int od_mesh_make_sphere(float radius, int rings, int segments, od_mesh *out, od_error *err);
int od_mesh_make_torus(float major_radius, float minor_radius, int rings, int segments, od_mesh *out,
                       od_error *err);
int od_mesh_make_box(const float size[3], od_mesh *out, od_error *err);

/* Recomputes the vertex normals (allocating them when absent) as the
 * area-weighted mean of the normals of the faces that use each vertex, so
 * vertices that are not shared between faces keep hard edges. */
int od_mesh_compute_normals(od_mesh *mesh, od_error *err);

/* Sets every vertex colour to rgb, allocating colors when absent. */
int od_mesh_set_color(od_mesh *mesh, const float rgb[3], od_error *err);

/* Releases every array and empties the struct; safe on an empty mesh. */
void od_mesh_free(od_mesh *mesh);

#endif
