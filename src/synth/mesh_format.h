/* Shared by the PLY, STL and OFF readers (not part of the library's
 * interface): reading a whole file, splitting text into tokens while
 * counting lines, parsing numbers from tokens, and growable arrays that
 * become an od_mesh. */
#ifndef ODDONE_SYNTH_MESH_FORMAT_H
#define ODDONE_SYNTH_MESH_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "synth/mesh.h"

/* Reads a whole file into a new buffer (freed by the caller), up to 2 GiB. */
int od_mesh_file_read(const char *path, unsigned char **data, size_t *size, od_error *err);

/* A cursor over text. Lines are counted from 1; comment_char (0 for none)
 * starts a comment that runs to the end of its line. */
typedef struct od_text_cursor {
    const char *pos, *end;
    int64_t line;
    char comment_char;
} od_text_cursor;

/* Returns the next token in *token and *length, or 0 when the text (or,
 * with same_line set, the current line) has no more. */
int od_text_next(od_text_cursor *cursor, int same_line, const char **token, size_t *length);

/* Moves the cursor to the start of the next line. */
void od_text_skip_line(od_text_cursor *cursor);

/* Parses a whole token as a finite number; returns 0 on success. */
int od_token_double(const char *token, size_t length, double *value);

/* Parses a whole token as a decimal integer (an optional sign, digits
 * only); returns 0 on success, -1 when it is not one or overflows. */
int od_token_int64(const char *token, size_t length, int64_t *value);

/* Copies a token into buffer (size bytes) for messages, cut short with
 * "..." when longer. Returns buffer. */
const char *od_token_text(const char *token, size_t length, char *buffer, size_t size);

/* Growable arrays for readers that do not know their sizes up front. */
typedef struct od_float_list {
    float *data;
    int64_t count, capacity;
} od_float_list;

typedef struct od_int_list {
    int32_t *data;
    int64_t count, capacity;
} od_int_list;

int od_float_list_push(od_float_list *list, const float *values, int64_t n);
int od_int_list_push(od_int_list *list, const int32_t *values, int64_t n);

/* Replaces the mesh's part names with copies of the given ones. */
int od_mesh_set_part_names(od_mesh *mesh, char *const *names, int count, od_error *err);

/* Makes a mesh from what a reader collected: positions (V, 3) and the
 * optional normals, uvs and colors per vertex, triangles (F, 3) already
 * checked to lie in [0, V), and optional face colours (F, 3) with
 * face_colored (F) saying which faces have one. Vertices no triangle uses
 * are dropped, keeping the file's order. When some face has a colour,
 * every triangle gets its own three vertices, coloured with the face's
 * colour, else with the vertex colour, else white. */
typedef struct od_mesh_parts_in {
    int64_t vertex_count;
    const float *positions, *normals, *uvs, *colors;
    int64_t face_count;
    const int32_t *faces;
    const float *face_colors;
    const unsigned char *face_colored;
    const int32_t *face_parts; /* (F) or NULL for one part */
    char *const *part_names;   /* part_count names, or NULL */
    int part_count;
} od_mesh_parts_in;

int od_mesh_assemble(const od_mesh_parts_in *in, const char *source, od_mesh *out, od_error *err);

#endif
