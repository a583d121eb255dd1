/* Triangle meshes for the scene generator: the in-memory form, readers for
 * Wavefront OBJ, PLY, STL and OFF, and the clean-up steps every mesh goes
 * through before it is placed in a scene (normalise, weld, parts).
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

#include <stddef.h>
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
 * A face with fewer than 3 distinct positions (a two-corner line, or
 * corners that repeat a position) has no area: it is skipped, as is a fan
 * triangle that repeats a position, and one warning line counts both. An
 * index out of range is an error naming the line.
 * A missing mtllib file is an error; unknown statements are ignored.
 * options may be NULL for the defaults. On failure the message names the
 * file, the line and what was expected, and *out is left empty. */
int od_mesh_read_obj(const char *path, const od_mesh_obj_options *options, od_mesh *out, od_error *err);

/* Parses OBJ text held in memory. mtllib and map_Kd paths are resolved
 * against base_dir (may be NULL for the current folder); `source` names the
 * text in messages. */
int od_mesh_parse_obj(const char *text, size_t size, const char *source, const char *base_dir,
                      const od_mesh_obj_options *options, od_mesh *out, od_error *err);

/* Reads a Stanford PLY file: ASCII, binary_little_endian or
 * binary_big_endian. The vertex element gives x y z and optionally
 * nx ny nz, red green blue and s t (or u v, texture_u texture_v). Colours
 * in uchar or ushort are scaled to [0, 1], float colours are kept. The
 * face element's list vertex_indices (or vertex_index) of any length is
 * fan-triangulated. A face's own red green blue, when present, colours
 * its triangles, whose corners then get vertices of their own. Other
 * elements and properties are skipped. Every count is checked against the
 * bytes left before anything is allocated. Messages name the file, the
 * line (ASCII) or byte offset (binary), the element, the property and
 * what was expected. */
int od_mesh_read_ply(const char *path, od_mesh *out, od_error *err);
int od_mesh_parse_ply(const void *data, size_t size, const char *source, od_mesh *out, od_error *err);

/* Reads an STL file, binary or ASCII, chosen by content. Text that starts
 * with "solid" and names a facet or endsolid in its first kilobyte is
 * ASCII. Many binary exporters also start their header with "solid", so a
 * file whose size equals 84 + 50 * (the binary count at byte 80) is
 * binary whatever its header contains. Each triangle gets three vertices of
 * its own (od_mesh_weld joins them), and the file's facet normals are not
 * kept. Each ASCII solid becomes a part named after it. */
int od_mesh_read_stl(const char *path, od_mesh *out, od_error *err);
int od_mesh_parse_stl(const void *data, size_t size, const char *source, od_mesh *out, od_error *err);

/* Reads an OFF file. It understands the optional keyword OFF, COFF, NOFF,
 * CNOFF, STOFF or STCNOFF (binary OFF, 4OFF and nOFF are rejected), '#'
 * comments and the counts "V F E" (E is ignored). Each vertex is x y z,
 * then nx ny nz with N, r g b [a] with C and s t with ST. A plain OFF
 * vertex followed by 3 or 4 more values takes them as a colour. Each face
 * is "n i1 .. in", optionally followed by a colour map index (ignored) or
 * r g b [a]. Colours are integers 0-255 or decimals in [0, 1]. Faces are
 * fan-triangulated, and a coloured face gets vertices of its own, as in
 * the PLY reader. */
int od_mesh_read_off(const char *path, od_mesh *out, od_error *err);
int od_mesh_parse_off(const void *data, size_t size, const char *source, od_mesh *out, od_error *err);

/* Reads a mesh by its file name's extension, in any letter case: .obj
 * (od_mesh_read_obj with the default options), .ply, .stl or .off. */
int od_mesh_load(const char *path, od_mesh *out, od_error *err);

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

/* How od_mesh_find_parts split a mesh. */
typedef enum od_mesh_parts_method {
    OD_MESH_PARTS_GROUPS,     /* two or more non-empty face_parts groups */
    OD_MESH_PARTS_COMPONENTS, /* two or more connected components */
    OD_MESH_PARTS_SEGMENTS,   /* one component, cut at a neck */
    OD_MESH_PARTS_WHOLE       /* one component and no neck: one part */
} od_mesh_parts_method;

/* Labels each face with a part and returns the part count, or -1 on
 * failure. Labels run 0..count-1 in the order of each part's first face.
 * The parts are, in order of preference:
 * - the groups (face_parts), when two or more have faces;
 * - else the connected components (od_mesh_components with a tolerance of
 *   1e-5 of the largest extent), when two or more remain. Before that,
 *   each component of under 1 % of the surface area joins the nearest (by
 *   bounding box) component of at least 1 %, so that stray slivers are
 *   not parts. A mesh with no component that large counts as one piece;
 * - else the pieces of a cut at a neck along the longest axis.
 * The neck: each face's area, times the sine of the angle between its
 * normal and the axis, is spread over the 64 slices along the axis that
 * the face spans. A slice then measures the perimeter of its cross-section,
 * and flat caps across the axis count for nothing. Among the slices
 * between 15 % and 85 % of the length, the neck is the one whose measure
 * is the smallest fraction (at most 0.5) of the largest slice on its
 * lighter side. The cut is at the centre of the run of slices within
 * 10 % of the neck's measure. Faces go to the side of the cut that their
 * centroid lies on, each side splits into its connected pieces, and
 * pieces of under 2 % of the area join the neighbouring piece they share
 * most corners with. A cut that leaves more than 16 pieces is not used.
 * So a dumbbell splits into its two ends, while a sphere, a cylinder or
 * a bolt (no side wider than the neck on both ends) stays whole.
 * face_labels has room for face_count labels; method may be NULL. */
int od_mesh_find_parts(const od_mesh *mesh, int32_t *face_labels, od_mesh_parts_method *method, od_error *err);

/* Replaces face_parts and part_names with od_mesh_find_parts's parts.
 * Groups keep their names; components are named "component_N" and
 * segments "segment_N". Returns the part count, or -1 on failure. */
int od_mesh_assign_parts(od_mesh *mesh, od_mesh_parts_method *method, od_error *err);

/* The preparation every loaded mesh goes through: normalise to a largest
 * extent of 1, weld at a tolerance of 1e-5, compute normals when the file
 * had none, and assign parts. Returns the part count, or -1 on failure. */
int od_mesh_prepare(od_mesh *mesh, od_mesh_parts_method *method, od_error *err);

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
