/* Scenes: posed views of one tabletop, read from three folder formats into
 * one in-memory form. This is the first stage of the data path; everything
 * after it (lifting, rendering, detection, drawing) reads od_scene only.
 *
 * Per view a scene has the image file, a pinhole camera (K and a
 * world-to-camera pose in OpenCV axes, see geometry/camera.h), the image's
 * lens distortion (removed when the image is read), and optional masks.
 * When the folder carries ground truth, the scene also has the objects:
 * an oriented box (centre, size, yaw about z), a label and an anomaly kind.
 *
 * Formats:
 * - OD_SCENE_FORMAT_RELEASE, the ToysAD-8K / PartsAD-15K release:
 *   scene3d.metadata.json, RGB/NNNN.png (view i is pose i), and
 *   segmentations/<object>/<object>_NNNN.png. World units are metres, z is
 *   up and the floor is z = 0, so no frame is estimated.
 * - OD_SCENE_FORMAT_TRANSFORMS, nerfstudio / instant-ngp transforms.json:
 *   camera-to-world matrices in OpenGL axes, intrinsics at the top or per
 *   frame in any of their layouts.
 * - OD_SCENE_FORMAT_COLMAP, COLMAP text models (cameras.txt, images.txt,
 *   optional points3D.txt) in the folder, in sparse/0/ or in sparse/.
 *
 * Captured scenes (transforms.json, COLMAP) have no fixed up direction,
 * floor or scale. The loader estimates them, logs what it assumed (also in
 * scene->frame_note), and re-expresses every camera in a world with z up,
 * the floor at z = 0 and the origin under the point the cameras look at:
 * - up is perpendicular to the cameras' x axes, signed so that the photos
 *   are upright and look level or down. When all cameras face one way, up
 *   is the mean of their up vectors (-y in OpenCV axes);
 * - the floor is the lowest dense plane of COLMAP's sparse points near the
 *   look-at point, or else the plane through the look-at point;
 * - COLMAP's arbitrary units are scaled so that the median camera stands
 *   OD_SCENE_CAPTURE_CAMERA_DISTANCE from the look-at point, and
 *   transforms.json units are taken as metres.
 * od_scene_options overrides up, scale and the region of interest, or
 * keeps the file's frame.
 *
 * Loading validates everything before returning: finite matrices,
 * rotations, positive focal lengths, image files present with the size the
 * intrinsics state, unique view names, and that every view sees the region
 * of interest. Any failure is one message naming the file, the field or
 * view, and what was expected.
 *
 * Images are read on demand (od_scene_read_view_image) unless
 * options.load_images asks for all of them at once, so that a scene of
 * hundreds of large views needs memory for one view at a time. */
#ifndef ODDONE_SCENE_SCENE_H
#define ODDONE_SCENE_SCENE_H

#include <stddef.h>

#include "core/error.h"
#include "geometry/box.h"
#include "geometry/camera.h"
#include "io/image.h"

typedef enum od_scene_format {
    OD_SCENE_FORMAT_AUTO = 0,
    OD_SCENE_FORMAT_RELEASE,
    OD_SCENE_FORMAT_TRANSFORMS,
    OD_SCENE_FORMAT_COLMAP,
} od_scene_format;

typedef enum od_object_label {
    OD_LABEL_NORMAL = 0,
    OD_LABEL_ANOMALOUS = 1,
} od_object_label;

/* The default region of interest, in metres in the scene's world (z up,
 * floor at z = 0): a 1.28 m square table area and 0.32 m above it. It
 * contains the release's objects, which lie within about 0.5 m of the
 * origin and are under 0.1 m tall. The planned `cpu` model configuration
 * sizes its voxel grid to the same extent. */
#define OD_SCENE_DEFAULT_ROI_HALF_WIDTH 0.64
#define OD_SCENE_DEFAULT_ROI_HEIGHT 0.32

/* The distance, in metres, from the cameras to the point they look at that
 * a capture without metric scale (COLMAP) is scaled to, unless --scale is
 * given: the release's cameras are 0.79 to 0.86 m from their scene's
 * centre, so a model trained on it sees objects at the sizes it learned. */
#define OD_SCENE_CAPTURE_CAMERA_DISTANCE 0.8

/* What a scene file states about one view's intrinsics, in the file's
 * pixel convention (principal point from the top-left image corner). A
 * field the file omits is NAN, or 0 for the sizes. The loader turns the
 * spec into K once the image's size is known (od_scene_resolve_camera). */
typedef struct od_intrinsics_spec {
    double fx, fy;           /* focal lengths in pixels */
    double cx, cy;           /* principal point, top-left-corner origin */
    double angle_x, angle_y; /* horizontal / vertical field of view, radians */
    int width, height;       /* image size the intrinsics were made for */
} od_intrinsics_spec;

typedef struct od_scene_object {
    char *name;         /* e.g. "object.001" */
    char *source;       /* the file the object came from (the release's "path"), or "" */
    od_box box;         /* world frame of the scene */
    od_object_label label;
    char *anomaly_kind; /* e.g. "crack"; "" when normal */
    int truncated;      /* 1 when part of the box lies outside the region of interest */
} od_scene_object;

typedef struct od_scene_view {
    char *name;       /* as the scene file records it: "RGB/0003.png", a COLMAP NAME, a file_path */
    char *image_path; /* the file on disk */
    char *mask_path;  /* foreground mask (nonzero: some object), or NULL */
    char **object_mask_paths; /* object_count entries, each NULL when absent; NULL when none */
    od_intrinsics_spec stated; /* the file's intrinsics, before resolution */
    od_distortion distortion;  /* of the image file; od_scene_read_view_image removes it */
    od_camera camera;          /* pinhole, for the undistorted image */
    od_image image;            /* RGB when loaded (options.load_images or od_scene_load_view_image); else empty */
} od_scene_view;

typedef struct od_scene_options {
    od_scene_format format;     /* OD_SCENE_FORMAT_AUTO: detect from the folder's files */
    int load_images;            /* 1: read every image during loading; 0: on demand */
    od_image_read_options image_options; /* background that alpha is composited onto, size limit */
    double scale;               /* > 0: world units are multiplied by this; 0: automatic */
    int has_up;                 /* 1: `up` overrides the estimated up direction */
    double up[3];               /* up in the file's world (captured formats only) */
    int has_roi;                /* 1: roi_min/roi_max override the default region of interest */
    double roi_min[3];          /* in the scene's world after scaling, metres when metric */
    double roi_max[3];
    int keep_frame;             /* 1: keep the file's world as is (no up, floor or scale estimate) */
} od_scene_options;

typedef struct od_scene {
    char *root;             /* the scene folder */
    char *metadata_path;    /* the file the cameras came from, for messages */
    od_scene_format format;
    int view_count;
    od_scene_view *views;
    int object_count;       /* ground truth; 0 when the folder has none */
    od_scene_object *objects;
    int has_ground_truth;   /* 1 when the format carries object boxes (even zero of them) */
    double roi_min[3];      /* region of interest in the scene's world */
    double roi_max[3];
    double world_from_file[16]; /* row-major similarity: scene world point = this * file world point */
    char frame_note[512];   /* what was assumed about up, floor and scale */
    od_image_read_options image_options;
    /* Sparse points from the file (COLMAP points3D.txt), (point_count, 3)
     * in the file's world; used to find the floor. */
    double *sparse_points;
    int64_t sparse_point_count;
} od_scene;

/* Returns the defaults: format detected, images on demand, white
 * background, automatic up, floor and scale, the default region of interest. */
od_scene_options od_scene_options_default(void);

/* Returns "release", "transforms" or "colmap" ("auto" for AUTO). */
const char *od_scene_format_name(od_scene_format format);

/* Parses a format name as the command line takes it: "release" (also
 * "toysad"), "transforms" (also "nerfstudio", "instant-ngp"), "colmap" or
 * "auto". Returns -1 with a message listing the names otherwise. */
int od_scene_format_parse(const char *name, od_scene_format *format, od_error *err);

/* Detects the format of a scene folder from the files it holds. */
int od_scene_detect_format(const char *root, od_scene_format *format, od_error *err);

/* Loads and validates a scene folder. options may be NULL for the
 * defaults. On failure *out is NULL and err names the problem. */
int od_scene_load(const char *root, const od_scene_options *options, od_scene **out, od_error *err);

void od_scene_free(od_scene *scene);

/* ---- images and masks ------------------------------------------------------ */

/* Reads view `view`'s image as RGB in [0, 1] (alpha composited onto the
 * scene's background), without lens distortion, at the camera's size.
 * The caller frees *out with od_image_free. */
int od_scene_read_view_image(const od_scene *scene, int view, od_image *out, od_error *err);

/* Reads the image into views[view].image (no-op when already there), and
 * releases it again. */
int od_scene_load_view_image(od_scene *scene, int view, od_error *err);
void od_scene_release_view_image(od_scene *scene, int view);

/* Reads object `object`'s mask in view `view` as one channel, 1 on the
 * object and 0 elsewhere (values above 0.5 in the file), undistorted like
 * the image. Fails when the scene has no such mask. */
int od_scene_read_object_mask(const od_scene *scene, int view, int object, od_image *out, od_error *err);

/* Reads the view's foreground mask (1 on any object): the mask file when
 * there is one, else the union of the object masks. *has_mask is 0 and
 * *out empty when the view has neither. */
int od_scene_read_view_mask(const od_scene *scene, int view, od_image *out, int *has_mask, od_error *err);

/* Returns 1 when od_scene_read_view_mask would find a mask for the view
 * (a mask file or at least one object mask), without reading any file;
 * 0 otherwise, and for a view index out of range. */
int od_scene_view_has_mask(const od_scene *scene, int view);

/* Resizes the view's loaded image to width x height and scales its K to
 * match (od_camera_resize). The image must be loaded. */
int od_scene_resize_view(od_scene *scene, int view, int width, int height, od_error *err);

/* ---- loader steps, for tests and fuzzing --------------------------------------- */

/* Parses the release's scene3d.metadata.json held in memory into an empty
 * scene (od_scene_new): poses, shared intrinsics, objects. Image paths are
 * RGB/NNNN.png under scene->root (or relative when root is NULL). Sizes
 * stay unresolved. `source` names the file in messages. */
int od_scene_parse_release_metadata(od_scene *scene, const char *text, size_t size, const char *source,
                                    od_error *err);

/* Parses a transforms.json held in memory into an empty scene: views in
 * the file's order with their file_path, pose, stated intrinsics and
 * distortion. */
int od_scene_parse_transforms(od_scene *scene, const char *text, size_t size, const char *source,
                              od_error *err);

/* Parses COLMAP's cameras.txt and images.txt held in memory into an empty
 * scene. */
int od_scene_parse_colmap(od_scene *scene, const char *cameras_text, size_t cameras_size,
                          const char *cameras_source, const char *images_text, size_t images_size,
                          const char *images_source, od_error *err);

/* Parses COLMAP's points3D.txt held in memory into scene->sparse_points. */
int od_scene_parse_colmap_points(od_scene *scene, const char *text, size_t size, const char *source,
                                 od_error *err);

/* Returns an empty scene for the parse functions above, rooted at `root`
 * (may be NULL), or NULL when out of memory. */
od_scene *od_scene_new(const char *root);

/* Sets view `view`'s camera size and K from its stated intrinsics for an
 * image of width x height, and validates the camera. Fails when the stated
 * size differs from the image's, or the intrinsics are incomplete or invalid. */
int od_scene_resolve_camera(od_scene *scene, int view, int width, int height, od_error *err);

#endif
