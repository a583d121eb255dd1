/* Stanford PLY reading (ASCII, binary little and big endian) into od_mesh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/mesh.h"
#include "synth/mesh_format.h"

#define PLY_MAX_PROPERTIES 64
#define PLY_MAX_ELEMENTS 32

typedef enum ply_type {
    PLY_NONE,
    PLY_INT8,
    PLY_UINT8,
    PLY_INT16,
    PLY_UINT16,
    PLY_INT32,
    PLY_UINT32,
    PLY_FLOAT32,
    PLY_FLOAT64
} ply_type;

static const int ply_type_size[] = {0, 1, 1, 2, 2, 4, 4, 4, 8};

/* What a vertex or face property means to the reader. */
typedef enum ply_role {
    ROLE_IGNORED,
    ROLE_X, ROLE_Y, ROLE_Z,
    ROLE_NX, ROLE_NY, ROLE_NZ,
    ROLE_RED, ROLE_GREEN, ROLE_BLUE,
    ROLE_U, ROLE_V,
    ROLE_INDICES
} ply_role;

typedef struct ply_property {
    char name[64];
    ply_type type;       /* the value type, or the item type of a list */
    ply_type count_type; /* PLY_NONE for a scalar */
    ply_role role;
} ply_property;

typedef struct ply_element {
    char name[64];
    int64_t count;
    int property_count;
    ply_property properties[PLY_MAX_PROPERTIES];
} ply_element;

typedef enum ply_format { PLY_ASCII, PLY_BINARY_LE, PLY_BINARY_BE } ply_format;

typedef struct ply_reader {
    const char *source;
    const unsigned char *data;
    size_t size;
    size_t offset;      /* binary: the next byte */
    od_text_cursor text; /* ASCII: the body's cursor */
    ply_format format;
    int element_count;
    ply_element elements[PLY_MAX_ELEMENTS];
} ply_reader;

static ply_type parse_type(const char *token, size_t length)
{
    static const struct {
        const char *name;
        ply_type type;
    } names[] = {{"char", PLY_INT8},     {"int8", PLY_INT8},       {"uchar", PLY_UINT8},    {"uint8", PLY_UINT8},
                 {"short", PLY_INT16},   {"int16", PLY_INT16},     {"ushort", PLY_UINT16},  {"uint16", PLY_UINT16},
                 {"int", PLY_INT32},     {"int32", PLY_INT32},     {"uint", PLY_UINT32},    {"uint32", PLY_UINT32},
                 {"float", PLY_FLOAT32}, {"float32", PLY_FLOAT32}, {"double", PLY_FLOAT64}, {"float64", PLY_FLOAT64}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == length && memcmp(names[i].name, token, length) == 0)
            return names[i].type;
    return PLY_NONE;
}

static int token_is(const char *token, size_t length, const char *word)
{
    return strlen(word) == length && memcmp(token, word, length) == 0;
}

static ply_role vertex_role(const char *name)
{
    static const struct {
        const char *name;
        ply_role role;
    } names[] = {{"x", ROLE_X},           {"y", ROLE_Y},           {"z", ROLE_Z},
                 {"nx", ROLE_NX},         {"ny", ROLE_NY},         {"nz", ROLE_NZ},
                 {"red", ROLE_RED},       {"green", ROLE_GREEN},   {"blue", ROLE_BLUE},
                 {"r", ROLE_RED},         {"g", ROLE_GREEN},       {"b", ROLE_BLUE},
                 {"diffuse_red", ROLE_RED}, {"diffuse_green", ROLE_GREEN}, {"diffuse_blue", ROLE_BLUE},
                 {"s", ROLE_U},           {"t", ROLE_V},           {"u", ROLE_U},
                 {"v", ROLE_V},           {"texture_u", ROLE_U},   {"texture_v", ROLE_V},
                 {"texture_s", ROLE_U},   {"texture_t", ROLE_V}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0)
            return names[i].role;
    return ROLE_IGNORED;
}

/* Reads the header up to end_header; on success the body starts at
 * reader->offset (binary) or reader->text (ASCII). */
static int parse_header(ply_reader *r, od_error *err)
{
    od_text_cursor c = {(const char *)r->data, (const char *)r->data + r->size, 1, 0};
    const char *token;
    size_t length;
    char shown[48];
    if (!od_text_next(&c, 0, &token, &length) || !token_is(token, length, "ply") || c.line != 1)
        return od_fail(err, "%s:1: expected the magic word 'ply' on the first line", r->source);
    od_text_skip_line(&c);
    int have_format = 0;
    ply_element *current = NULL;
    for (;;) {
        if (!od_text_next(&c, 0, &token, &length))
            return od_fail(err, "%s:%lld: the header ends without 'end_header'", r->source, (long long)c.line);
        int64_t line = c.line;
        if (token_is(token, length, "comment") || token_is(token, length, "obj_info")) {
            od_text_skip_line(&c);
            continue;
        }
        if (token_is(token, length, "end_header")) {
            /* The body starts after this line's newline. */
            const char *s = c.pos;
            while (s < c.end && *s != '\n')
                s++;
            if (s >= c.end && r->format != PLY_ASCII)
                return od_fail(err, "%s:%lld: expected a newline after 'end_header'", r->source, (long long)line);
            if (s < c.end)
                s++;
            r->offset = (size_t)(s - (const char *)r->data);
            r->text.pos = s;
            r->text.end = c.end;
            r->text.line = line + 1;
            r->text.comment_char = 0;
            break;
        }
        if (token_is(token, length, "format")) {
            if (!od_text_next(&c, 1, &token, &length))
                return od_fail(err, "%s:%lld: expected ascii, binary_little_endian or binary_big_endian after format",
                               r->source, (long long)line);
            if (token_is(token, length, "ascii"))
                r->format = PLY_ASCII;
            else if (token_is(token, length, "binary_little_endian"))
                r->format = PLY_BINARY_LE;
            else if (token_is(token, length, "binary_big_endian"))
                r->format = PLY_BINARY_BE;
            else
                return od_fail(err, "%s:%lld: unknown format '%s' (expected ascii, binary_little_endian or "
                                    "binary_big_endian)",
                               r->source, (long long)line, od_token_text(token, length, shown, sizeof shown));
            have_format = 1;
            od_text_skip_line(&c);
            continue;
        }
        if (token_is(token, length, "element")) {
            const char *name, *count_token;
            size_t name_length, count_length;
            int64_t count;
            if (!od_text_next(&c, 1, &name, &name_length) || !od_text_next(&c, 1, &count_token, &count_length) ||
                od_token_int64(count_token, count_length, &count) != 0 || count < 0)
                return od_fail(err, "%s:%lld: expected 'element NAME COUNT' with a count of 0 or more", r->source,
                               (long long)line);
            if (r->element_count >= PLY_MAX_ELEMENTS)
                return od_fail(err, "%s:%lld: more than %d elements in the header", r->source, (long long)line,
                               PLY_MAX_ELEMENTS);
            current = &r->elements[r->element_count++];
            memset(current, 0, sizeof *current);
            od_token_text(name, name_length, current->name, sizeof current->name);
            current->count = count;
            od_text_skip_line(&c);
            continue;
        }
        if (token_is(token, length, "property")) {
            if (!current)
                return od_fail(err, "%s:%lld: property before any element", r->source, (long long)line);
            if (current->property_count >= PLY_MAX_PROPERTIES)
                return od_fail(err, "%s:%lld: more than %d properties in element %s", r->source, (long long)line,
                               PLY_MAX_PROPERTIES, current->name);
            ply_property *p = &current->properties[current->property_count];
            memset(p, 0, sizeof *p);
            if (!od_text_next(&c, 1, &token, &length))
                return od_fail(err, "%s:%lld: expected a type after property", r->source, (long long)line);
            if (token_is(token, length, "list")) {
                const char *t1, *t2;
                size_t l1, l2;
                if (!od_text_next(&c, 1, &t1, &l1) || !od_text_next(&c, 1, &t2, &l2))
                    return od_fail(err, "%s:%lld: expected 'property list COUNT_TYPE ITEM_TYPE NAME'", r->source,
                                   (long long)line);
                p->count_type = parse_type(t1, l1);
                p->type = parse_type(t2, l2);
                if (p->count_type == PLY_NONE || p->count_type == PLY_FLOAT32 || p->count_type == PLY_FLOAT64 ||
                    p->type == PLY_NONE)
                    return od_fail(err, "%s:%lld: invalid list types '%s' (expected an integer count type and a "
                                        "known item type)",
                                   r->source, (long long)line, od_token_text(t1, l1, shown, sizeof shown));
            } else {
                p->type = parse_type(token, length);
                if (p->type == PLY_NONE)
                    return od_fail(err, "%s:%lld: unknown property type '%s' (expected char, uchar, short, ushort, "
                                        "int, uint, float, double or their sized names)",
                                   r->source, (long long)line, od_token_text(token, length, shown, sizeof shown));
            }
            if (!od_text_next(&c, 1, &token, &length))
                return od_fail(err, "%s:%lld: expected a property name", r->source, (long long)line);
            od_token_text(token, length, p->name, sizeof p->name);
            current->property_count++;
            od_text_skip_line(&c);
            continue;
        }
        return od_fail(err, "%s:%lld: unknown header keyword '%s' (expected format, element, property, comment or "
                            "end_header)",
                       r->source, (long long)line, od_token_text(token, length, shown, sizeof shown));
    }
    if (!have_format)
        return od_fail(err, "%s: the header has no format line (expected 'format ascii 1.0' or a binary one)",
                       r->source);
    return 0;
}

/* ---- reading values --------------------------------------------------------------- */

/* Reads one value of the type; *value receives it as a double. Integers
 * are exact up to 2^53, which is all a vertex index needs. */
static int read_value(ply_reader *r, ply_type type, double *value, const char *element, int64_t index,
                      const char *property, od_error *err)
{
    if (r->format == PLY_ASCII) {
        const char *token;
        size_t length;
        char shown[48];
        if (!od_text_next(&r->text, 0, &token, &length))
            return od_fail(err, "%s:%lld: the file ends inside %s %lld (expected a value for %s)", r->source,
                           (long long)r->text.line, element, (long long)index, property);
        int64_t integer;
        if (type == PLY_FLOAT32 || type == PLY_FLOAT64) {
            if (od_token_double(token, length, value) != 0)
                return od_fail(err, "%s:%lld: %s %lld, %s: invalid number '%s' (expected a finite decimal)",
                               r->source, (long long)r->text.line, element, (long long)index, property,
                               od_token_text(token, length, shown, sizeof shown));
        } else {
            if (od_token_int64(token, length, &integer) != 0 || integer < -((int64_t)1 << 40) ||
                integer > ((int64_t)1 << 40))
                return od_fail(err, "%s:%lld: %s %lld, %s: invalid integer '%s'", r->source, (long long)r->text.line,
                               element, (long long)index, property, od_token_text(token, length, shown, sizeof shown));
            *value = (double)integer;
        }
        return 0;
    }
    int n = ply_type_size[type];
    if (r->size - r->offset < (size_t)n)
        return od_fail(err, "%s: byte %zu: the file ends inside %s %lld (expected %d bytes for %s)", r->source,
                       r->offset, element, (long long)index, n, property);
    unsigned char bytes[8];
    memcpy(bytes, r->data + r->offset, (size_t)n);
    r->offset += (size_t)n;
    /* Put the bytes in little endian order; the values are then assembled
     * byte by byte, so the host's own order does not matter. */
    if (r->format == PLY_BINARY_BE)
        for (int i = 0; i < n / 2; i++) {
            unsigned char t = bytes[i];
            bytes[i] = bytes[n - 1 - i];
            bytes[n - 1 - i] = t;
        }
    switch (type) {
    case PLY_INT8: *value = (int8_t)bytes[0]; break;
    case PLY_UINT8: *value = bytes[0]; break;
    case PLY_INT16: *value = (int16_t)(bytes[0] | bytes[1] << 8); break;
    case PLY_UINT16: *value = (uint16_t)(bytes[0] | bytes[1] << 8); break;
    case PLY_INT32: *value = (int32_t)((uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
                                       (uint32_t)bytes[3] << 24);
        break;
    case PLY_UINT32: *value = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
                              (uint32_t)bytes[3] << 24;
        break;
    case PLY_FLOAT32: {
        uint32_t u = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        *value = f;
        break;
    }
    case PLY_FLOAT64: {
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
            u = u << 8 | bytes[i];
        double d;
        memcpy(&d, &u, 8);
        *value = d;
        break;
    }
    default: *value = 0; break;
    }
    if (!isfinite(*value))
        return od_fail(err, "%s: byte %zu: %s %lld, %s is not a finite number", r->source, r->offset - (size_t)n,
                       element, (long long)index, property);
    return 0;
}

/* The fewest bytes one element can take in the file, so that its count
 * can be checked against what is left. */
static size_t element_min_bytes(const ply_reader *r, const ply_element *e)
{
    size_t bytes = 0;
    for (int i = 0; i < e->property_count; i++) {
        const ply_property *p = &e->properties[i];
        if (r->format == PLY_ASCII)
            bytes += 2; /* a digit and a separator */
        else
            bytes += (size_t)ply_type_size[p->count_type != PLY_NONE ? p->count_type : p->type];
    }
    return bytes;
}

static float color_value(double value, ply_type type)
{
    if (type == PLY_UINT8)
        return (float)(value / 255.0);
    if (type == PLY_UINT16)
        return (float)(value / 65535.0);
    return (float)value;
}

/* ---- the reader -------------------------------------------------------------------- */

typedef struct ply_lists {
    float *positions, *normals, *uvs, *colors;
    od_int_list faces;
    od_float_list face_colors;
    int64_t vertex_count;
} ply_lists;

static int read_vertices(ply_reader *r, const ply_element *e, ply_lists *out, od_error *err)
{
    int has[ROLE_INDICES] = {0};
    for (int i = 0; i < e->property_count; i++) {
        const ply_property *p = &e->properties[i];
        if (p->count_type != PLY_NONE)
            continue;
        ply_role role = vertex_role(p->name);
        has[role] = 1;
    }
    if (!has[ROLE_X] || !has[ROLE_Y] || !has[ROLE_Z])
        return od_fail(err, "%s: element vertex lacks x, y or z (expected three scalar position properties)",
                       r->source);
    int with_normals = has[ROLE_NX] && has[ROLE_NY] && has[ROLE_NZ];
    int with_colors = has[ROLE_RED] && has[ROLE_GREEN] && has[ROLE_BLUE];
    int with_uvs = has[ROLE_U] && has[ROLE_V];
    size_t n = (size_t)e->count;
    out->vertex_count = e->count;
    out->positions = malloc((n * 3 + 1) * sizeof(float));
    out->normals = with_normals ? malloc((n * 3 + 1) * sizeof(float)) : NULL;
    out->uvs = with_uvs ? malloc((n * 2 + 1) * sizeof(float)) : NULL;
    out->colors = with_colors ? malloc((n * 3 + 1) * sizeof(float)) : NULL;
    if (!out->positions || (with_normals && !out->normals) || (with_uvs && !out->uvs) ||
        (with_colors && !out->colors))
        return od_fail(err, "%s: out of memory for %lld vertices", r->source, (long long)e->count);
    for (int64_t v = 0; v < e->count; v++) {
        for (int i = 0; i < e->property_count; i++) {
            const ply_property *p = &e->properties[i];
            double value;
            if (p->count_type != PLY_NONE) {
                /* A list on a vertex (rare): read and skip its items. */
                if (read_value(r, p->count_type, &value, "vertex", v, p->name, err) != 0)
                    return -1;
                if (value < 0 || value > 1e6)
                    return od_fail(err, "%s: vertex %lld, list %s: invalid item count %g", r->source, (long long)v,
                                   p->name, value);
                for (int64_t k = 0; k < (int64_t)value; k++) {
                    double item;
                    if (read_value(r, p->type, &item, "vertex", v, p->name, err) != 0)
                        return -1;
                }
                continue;
            }
            if (read_value(r, p->type, &value, "vertex", v, p->name, err) != 0)
                return -1;
            float f = (float)value;
            switch (vertex_role(p->name)) {
            case ROLE_X: out->positions[v * 3 + 0] = f; break;
            case ROLE_Y: out->positions[v * 3 + 1] = f; break;
            case ROLE_Z: out->positions[v * 3 + 2] = f; break;
            case ROLE_NX: if (with_normals) out->normals[v * 3 + 0] = f; break;
            case ROLE_NY: if (with_normals) out->normals[v * 3 + 1] = f; break;
            case ROLE_NZ: if (with_normals) out->normals[v * 3 + 2] = f; break;
            case ROLE_RED: if (with_colors) out->colors[v * 3 + 0] = color_value(value, p->type); break;
            case ROLE_GREEN: if (with_colors) out->colors[v * 3 + 1] = color_value(value, p->type); break;
            case ROLE_BLUE: if (with_colors) out->colors[v * 3 + 2] = color_value(value, p->type); break;
            case ROLE_U: if (with_uvs) out->uvs[v * 2 + 0] = f; break;
            case ROLE_V: if (with_uvs) out->uvs[v * 2 + 1] = f; break;
            default: break;
            }
        }
    }
    if (with_normals)
        for (int64_t v = 0; v < e->count; v++) {
            float *nv = out->normals + v * 3;
            float length = sqrtf(nv[0] * nv[0] + nv[1] * nv[1] + nv[2] * nv[2]);
            for (int c = 0; c < 3; c++)
                nv[c] = length > 0 ? nv[c] / length : 0;
        }
    return 0;
}

static int read_faces(ply_reader *r, const ply_element *e, ply_lists *out, od_error *err)
{
    int index_property = -1;
    int color_property[3] = {-1, -1, -1};
    for (int i = 0; i < e->property_count; i++) {
        const ply_property *p = &e->properties[i];
        if (p->count_type != PLY_NONE && index_property < 0 &&
            (strcmp(p->name, "vertex_indices") == 0 || strcmp(p->name, "vertex_index") == 0))
            index_property = i;
        if (p->count_type == PLY_NONE) {
            ply_role role = vertex_role(p->name);
            if (role == ROLE_RED || role == ROLE_GREEN || role == ROLE_BLUE)
                color_property[role - ROLE_RED] = i;
        }
    }
    if (index_property < 0)
        return od_fail(err, "%s: element face has no list property vertex_indices (expected 'property list uchar "
                            "int vertex_indices')",
                       r->source);
    int with_colors = color_property[0] >= 0 && color_property[1] >= 0 && color_property[2] >= 0;
    int32_t corners_inline[64];
    for (int64_t f = 0; f < e->count; f++) {
        float rgb[3] = {1, 1, 1};
        for (int i = 0; i < e->property_count; i++) {
            const ply_property *p = &e->properties[i];
            double value;
            if (p->count_type == PLY_NONE) {
                if (read_value(r, p->type, &value, "face", f, p->name, err) != 0)
                    return -1;
                for (int c = 0; c < 3; c++)
                    if (color_property[c] == i)
                        rgb[c] = color_value(value, p->type);
                continue;
            }
            if (read_value(r, p->count_type, &value, "face", f, p->name, err) != 0)
                return -1;
            /* Each item takes at least one byte (two in ASCII), which bounds a real count. */
            size_t left = r->format == PLY_ASCII ? (size_t)(r->text.end - r->text.pos) : r->size - r->offset;
            size_t item_bytes = r->format == PLY_ASCII ? 2 : (size_t)ply_type_size[p->type];
            if (value < 0 || value * (double)item_bytes > (double)left + 1)
                return od_fail(err, "%s: face %lld, %s: list of %g items does not fit in the %zu bytes left", r->source,
                               (long long)f, p->name, value, left);
            int64_t count = (int64_t)value;
            int32_t *corners = corners_inline;
            if (i == index_property && count > 64) {
                corners = malloc((size_t)count * sizeof(int32_t));
                if (!corners)
                    return od_fail(err, "%s: face %lld: out of memory for %lld corners", r->source, (long long)f,
                                   (long long)count);
            }
            for (int64_t k = 0; k < count; k++) {
                if (read_value(r, p->type, &value, "face", f, p->name, err) != 0) {
                    if (corners != corners_inline)
                        free(corners);
                    return -1;
                }
                if (i != index_property)
                    continue;
                if (value < 0 || value >= (double)out->vertex_count || value != floor(value)) {
                    if (corners != corners_inline)
                        free(corners);
                    return od_fail(err, "%s: face %lld: vertex index %g out of range (expected 0 to %lld)", r->source,
                                   (long long)f, value, (long long)out->vertex_count - 1);
                }
                corners[k] = (int32_t)value;
            }
            if (i != index_property)
                continue;
            if (count < 3) {
                if (corners != corners_inline)
                    free(corners);
                return od_fail(err, "%s: face %lld has %lld corners (expected 3 or more)", r->source, (long long)f,
                               (long long)count);
            }
            int failed = 0;
            for (int64_t k = 1; k + 1 < count && !failed; k++) {
                int32_t tri[3] = {corners[0], corners[k], corners[k + 1]};
                failed = od_int_list_push(&out->faces, tri, 3) != 0;
            }
            if (corners != corners_inline)
                free(corners);
            if (failed)
                return od_fail(err, "%s: face %lld: out of memory", r->source, (long long)f);
            if (out->faces.count / 3 > OD_MESH_MAX_ELEMENTS)
                return od_fail(err, "%s: face %lld: more than %lld triangles", r->source, (long long)f,
                               (long long)OD_MESH_MAX_ELEMENTS);
        }
        if (with_colors) {
            /* Every triangle of this face gets its colour, which may be read after the indices. */
            int64_t triangles_before = out->face_colors.count / 3;
            int64_t triangles_now = out->faces.count / 3;
            for (int64_t t = triangles_before; t < triangles_now; t++)
                if (od_float_list_push(&out->face_colors, rgb, 3) != 0)
                    return od_fail(err, "%s: face %lld: out of memory", r->source, (long long)f);
        }
    }
    return 0;
}

static int skip_element(ply_reader *r, const ply_element *e, od_error *err)
{
    /* An element without properties takes no bytes, so its count is not bounded by the file size. */
    if (e->property_count == 0)
        return 0;
    for (int64_t i = 0; i < e->count; i++)
        for (int j = 0; j < e->property_count; j++) {
            const ply_property *p = &e->properties[j];
            double value;
            if (read_value(r, p->count_type != PLY_NONE ? p->count_type : p->type, &value, e->name, i, p->name,
                           err) != 0)
                return -1;
            if (p->count_type == PLY_NONE)
                continue;
            size_t left = r->format == PLY_ASCII ? (size_t)(r->text.end - r->text.pos) : r->size - r->offset;
            if (value < 0 || value > (double)left)
                return od_fail(err, "%s: %s %lld, %s: list of %g items does not fit in the %zu bytes left", r->source,
                               e->name, (long long)i, p->name, value, left);
            double item;
            for (int64_t k = 0; k < (int64_t)value; k++)
                if (read_value(r, p->type, &item, e->name, i, p->name, err) != 0)
                    return -1;
        }
    return 0;
}

int od_mesh_parse_ply(const void *data, size_t size, const char *source, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    ply_reader *r = calloc(1, sizeof *r);
    if (!r)
        return od_fail(err, "%s: out of memory", source ? source : "PLY data");
    r->source = source ? source : "PLY data";
    r->data = data;
    r->size = size;
    ply_lists lists;
    memset(&lists, 0, sizeof lists);
    int rc = parse_header(r, err);
    int vertex_element = -1, face_element = -1;
    for (int i = 0; rc == 0 && i < r->element_count; i++) {
        if (strcmp(r->elements[i].name, "vertex") == 0 && vertex_element < 0)
            vertex_element = i;
        if (strcmp(r->elements[i].name, "face") == 0 && face_element < 0)
            face_element = i;
    }
    if (rc == 0 && (vertex_element < 0 || face_element < 0))
        rc = od_fail(err, "%s: the header lacks element %s (expected both vertex and face)", r->source,
                     vertex_element < 0 ? "vertex" : "face");
    if (rc == 0 && face_element < vertex_element)
        rc = od_fail(err, "%s: element face comes before element vertex (expected vertices first)", r->source);
    /* Every count must fit in the bytes after the header. */
    if (rc == 0) {
        double needed = 0;
        for (int i = 0; i < r->element_count; i++)
            needed += (double)r->elements[i].count * (double)element_min_bytes(r, &r->elements[i]);
        size_t body = r->size - r->offset;
        if (needed > (double)body + 1)
            rc = od_fail(err, "%s: the header's counts need at least %.0f bytes but the body has %zu (a count is "
                              "too large or the file is truncated)",
                         r->source, needed, body);
    }
    if (rc == 0 && r->elements[vertex_element].count > OD_MESH_MAX_ELEMENTS)
        rc = od_fail(err, "%s: %lld vertices (expected at most %lld)", r->source,
                     (long long)r->elements[vertex_element].count, (long long)OD_MESH_MAX_ELEMENTS);
    for (int i = 0; rc == 0 && i < r->element_count; i++) {
        if (i == vertex_element)
            rc = read_vertices(r, &r->elements[i], &lists, err);
        else if (i == face_element)
            rc = read_faces(r, &r->elements[i], &lists, err);
        else
            rc = skip_element(r, &r->elements[i], err);
    }
    if (rc == 0) {
        unsigned char *colored = NULL;
        int64_t triangles = lists.faces.count / 3;
        int with_face_colors = lists.face_colors.count == triangles * 3 && triangles > 0;
        if (with_face_colors) {
            colored = malloc((size_t)triangles + 1);
            if (!colored)
                rc = od_fail(err, "%s: out of memory", r->source);
            for (int64_t t = 0; colored && t < triangles; t++)
                colored[t] = 1;
        }
        od_mesh_parts_in in = {.vertex_count = lists.vertex_count,
                               .positions = lists.positions,
                               .normals = lists.normals,
                               .uvs = lists.uvs,
                               .colors = lists.colors,
                               .face_count = triangles,
                               .faces = lists.faces.data,
                               .face_colors = with_face_colors ? lists.face_colors.data : NULL,
                               .face_colored = colored};
        if (rc == 0)
            rc = od_mesh_assemble(&in, r->source, out, err);
        free(colored);
    }
    free(lists.positions);
    free(lists.normals);
    free(lists.uvs);
    free(lists.colors);
    free(lists.faces.data);
    free(lists.face_colors.data);
    free(r);
    return rc;
}

int od_mesh_read_ply(const char *path, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t size;
    if (od_mesh_file_read(path, &data, &size, err) != 0)
        return -1;
    int rc = od_mesh_parse_ply(data, size, path, out, err);
    free(data);
    return rc;
}
