/* Helpers shared by the scene loaders (scene.c, release.c, transforms.c,
 * colmap.c, frame.c); not part of the library's interface. */
#ifndef ODDONE_SCENE_SCENE_INTERNAL_H
#define ODDONE_SCENE_SCENE_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "scene/scene.h"

/* The largest scene metadata file read (JSON or COLMAP text), in bytes. */
#define OD_SCENE_MAX_METADATA_BYTES ((size_t)1 << 30)

char *od_scene_strdup(const char *text);

/* Returns "directory/name" in a new string; name alone when directory is
 * NULL or empty, or when name is absolute. */
char *od_scene_join_path(const char *directory, const char *name);

/* Returns 1 when path names a regular file. */
int od_scene_is_file(const char *path);

/* Returns 1 when path names a directory. */
int od_scene_is_directory(const char *path);

/* Reads a whole regular file into a NUL-terminated buffer. */
int od_scene_read_text_file(const char *path, char **text, size_t *size, od_error *err);

/* Appends a view named `name` (copied) with an identity pose, no
 * intrinsics and no distortion, and returns it; NULL when out of memory. */
od_scene_view *od_scene_add_view(od_scene *scene, const char *name, const char *image_path);

/* Appends an object with the given name and source (copied), normal, and
 * returns it; NULL when out of memory. */
od_scene_object *od_scene_add_object(od_scene *scene, const char *name, const char *source);

/* Returns the index of the first view with this name, or -1. */
int od_scene_find_view(const od_scene *scene, const char *name, int before);

/* An intrinsics spec with every field absent. */
od_intrinsics_spec od_intrinsics_spec_empty(void);

/* ---- JSON -------------------------------------------------------------------- */

/* Parses JSON text, reading the NaN and Infinity that Python writes as
 * infinite numbers so that field checks can reject them by name. Returns
 * NULL with a message naming the line on a syntax error. */
cJSON *od_json_parse(const char *text, size_t size, const char *source, od_error *err);

/* Reads a JSON number field: returns 1 and sets *value when present and a
 * finite number, 0 when absent or null, -1 (with a message naming
 * `where` and the key) when present but not a finite number. */
int od_json_number(const cJSON *object, const char *key, double *value, const char *where, od_error *err);

/* Reads a matrix of numbers (an array of `rows` arrays of `columns`
 * numbers) into a row-major buffer. `what` names it in messages. */
int od_json_matrix(const cJSON *item, int rows, int columns, double *out, const char *what, od_error *err);

/* Returns the number of rows of a JSON array of arrays, or -1 when it is
 * not one. */
int od_json_row_count(const cJSON *item);

/* ---- frame and visibility (frame.c) -------------------------------------------- */

/* Estimates or applies the scene's frame (up, floor, origin, scale) from
 * the options and sets the region of interest; see frame.c. */
int od_scene_set_frame(od_scene *scene, const od_scene_options *options, od_error *err);

/* Rejects a scene where no point of the region of interest is in two
 * views (one, for a single view), or where a view shows none of it. */
int od_scene_check_visibility(const od_scene *scene, od_error *err);

/* Marks objects whose box leaves the region of interest as truncated. */
void od_scene_mark_truncated(od_scene *scene);

#endif
