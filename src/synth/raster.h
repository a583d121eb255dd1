/* A software rasterizer for the scene generator: renders meshes placed in
 * a world (z up, floor at z = 0) through an od_camera (K and a
 * world-to-camera pose in OpenCV axes) into an RGB image, an object id
 * buffer (the per-object masks) and a 16-bit depth map.
 *
 * Pipeline per view: vertices to camera space, triangles clipped at a near
 * plane and projected, a z-buffer pass that keeps per sample the nearest
 * triangle and its perspective-correct barycentric coordinates, then one
 * shading pass per sample (deferred, so hidden surfaces cost no shading)
 * and a resolve of the s x s samples of each pixel.
 *
 * Sampling: with supersample s, pixel (row i, column j) has s x s samples
 * at x = j - 0.5 + (a + 0.5) / s, y = i - 0.5 + (b + 0.5) / s; with s = 1
 * the sample is the pixel centre (j, i), the convention of
 * geometry/camera.h. A sample is covered by a triangle when it lies inside
 * it, or on an edge that is a top or left edge, so that triangles sharing
 * an edge cover each sample once.
 *
 * Shading: the albedo is, in order of precedence, the material's texture
 * (bilinear, repeating, at the interpolated uv), the vertex colours, the
 * material's Kd, then the object's colour. The light is one directional
 * light: ambient + (1 - ambient) * max(0, n.l) * light colour for the
 * diffuse part, plus Blinn-Phong specular * max(0, n.h)^shininess. Faces
 * are lit from whichever side the camera sees.
 *
 * Shadows: the objects are rendered once per view into a depth map seen
 * from the light (an orthographic projection along the light direction
 * that covers the objects). A point whose light-space depth lies behind
 * the map's by more than two texels, plus one texel times the tangent of
 * its surface's angle to the light (at most 8), gets ambient light only.
 * Objects cast shadows on each other and on the floor; the floor casts
 * none. The map
 * is reused for the next view while the objects' meshes (by address) and
 * poses, the light and the map size stay the same, so a caller that edits
 * a mesh in place between views calls od_rasterizer_invalidate_shadows.
 *
 * Threads: OpenMP over bands of rows; the output does not depend on the
 * thread count, because each sample sees the triangles in a fixed order and
 * keeps the first of equally near ones. */
#ifndef ODDONE_SYNTH_RASTER_H
#define ODDONE_SYNTH_RASTER_H

#include <stdint.h>

#include "core/error.h"
#include "geometry/camera.h"
#include "io/image.h"
#include "synth/mesh.h"

/* Samples closer to the camera than this depth (world units along the
 * optical axis) are clipped away. */
#define OD_RASTER_NEAR 1e-3

typedef struct od_raster_object {
    const od_mesh *mesh;
    double model_to_world[16]; /* row-major 4x4 [A t; 0 0 0 1], A invertible */
    float color[3];            /* albedo when the mesh has no colours or materials */
    const uint8_t *face_marks; /* (F) or NULL: faces whose pixels the frame's marks show */
} od_raster_object;

/* The floor's procedural textures, each a blend of floor_color and
 * floor_color2 at the scale floor_check_size (world units). */
typedef enum od_raster_floor_pattern {
    OD_RASTER_FLOOR_CHECKER = 0, /* checks of side floor_check_size in the two colours */
    OD_RASTER_FLOOR_PLAIN,       /* floor_color only */
    OD_RASTER_FLOOR_STRIPES,     /* wood-like wavy bands floor_check_size apart, across floor_angle */
    OD_RASTER_FLOOR_NOISE,       /* value noise of three octaves, the largest floor_check_size across */
} od_raster_floor_pattern;

typedef struct od_raster_options {
    int supersample;          /* samples per pixel side: 1, 2, 3 or 4 */
    int draw_floor;           /* 1: draw the plane z = 0 */
    int floor_pattern;        /* an od_raster_floor_pattern */
    float floor_color[3];     /* albedo of the floor's light checks, or the pattern's first colour */
    float floor_color2[3];    /* albedo of the dark checks, or the pattern's second colour */
    float floor_check_size;   /* side of a check or the pattern's scale, world units; 0 for a plain floor */
    float floor_angle;        /* direction of the stripes, radians about z */
    float background[3];      /* RGB where nothing is hit, at and below the horizon */
    float background_top[3];  /* RGB where nothing is hit, straight up; the colour blends with the
                                 elevation of the sample's ray */
    float light_direction[3]; /* world direction from the scene towards the light */
    float light_color[3];
    float ambient;            /* fraction of the albedo lit without the light, in [0, 1] */
    float specular;           /* Blinn-Phong weight, 0 for none */
    float shininess;          /* Blinn-Phong exponent */
    int cull_back_faces;      /* 1: skip triangles wound clockwise on screen */
    int shadow_map_size;      /* side of the light's depth map in texels (16 to 8192), 0 for no shadows */
} od_raster_options;

/* One rendered view at pixel resolution. */
typedef struct od_raster_frame {
    int width, height;
    od_image rgb;        /* (height, width, 3) */
    int32_t *object_ids; /* (height, width): 0 for floor or background, k + 1 for object k */
    uint16_t *depth;     /* (height, width): depth along the optical axis in millimetres of world
                            units (world units taken as metres), 0 where nothing is hit,
                            65535 at or beyond 65.535 */
    uint8_t *marks;      /* (height, width): 1 where at least half the samples show a face that its
                            object's face_marks marks, else 0 */
} od_raster_frame;

typedef struct od_rasterizer od_rasterizer;

/* Returns the defaults: no supersampling, a grey checked floor of 5 cm
 * checks, a white background, a light from above and the side, 0.3 ambient, 0.25 specular of
 * shininess 32, no culling, a 512 x 512 shadow map. */
od_raster_options od_raster_options_default(void);

/* Returns a rasterizer whose buffers are reused from view to view, or
 * NULL when out of memory. */
od_rasterizer *od_rasterizer_new(void);
void od_rasterizer_free(od_rasterizer *rasterizer);

/* Makes the next render rebuild the shadow map. */
void od_rasterizer_invalidate_shadows(od_rasterizer *rasterizer);

/* Renders `object_count` objects through `camera` into *frame, which is
 * allocated (or reallocated to the camera's size) here; start from a zeroed
 * frame and release it with od_raster_frame_free. options may be NULL for
 * the defaults. Fails on an invalid camera or options, a NULL mesh, or a
 * face index outside its mesh. */
int od_rasterizer_render(od_rasterizer *rasterizer, const od_camera *camera, const od_raster_object *objects,
                         int object_count, const od_raster_options *options, od_raster_frame *frame,
                         od_error *err);

void od_raster_frame_free(od_raster_frame *frame);

/* Sets a row-major 4x4 model-to-world transform: uniform scale, then a
 * rotation of `yaw` radians about z, then a translation. */
void od_raster_pose(double scale, double yaw, const double translation[3], double model_to_world[16]);

#endif
