/* STL reading (ASCII and binary) into od_mesh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/mesh.h"
#include "synth/mesh_format.h"

static uint32_t read_u32_le(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static float read_f32_le(const unsigned char *b)
{
    uint32_t u = read_u32_le(b);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Binary STL: an 80-byte header, a uint32 triangle count, then 50 bytes
 * per triangle (normal, three corners, a 16-bit attribute). */
static int parse_binary(const unsigned char *data, size_t size, const char *source, od_mesh *out, od_error *err)
{
    if (size < 84)
        return od_fail(err, "%s: %zu bytes (expected a binary STL of at least 84 bytes, or ASCII text starting with "
                            "'solid')",
                       source, size);
    uint32_t count = read_u32_le(data + 80);
    if ((uint64_t)count * 50 > size - 84)
        return od_fail(err, "%s: byte 80: triangle count %u needs %llu bytes but the file has %zu (truncated, or the "
                            "count is wrong)",
                       source, count, 84 + (unsigned long long)count * 50, size);
    if (count == 0)
        return od_fail(err, "%s: byte 80: triangle count 0 (expected at least one triangle)", source);
    if ((int64_t)count > OD_MESH_MAX_ELEMENTS)
        return od_fail(err, "%s: byte 80: %u triangles (expected at most %lld)", source, count,
                       (long long)OD_MESH_MAX_ELEMENTS);
    if (od_mesh_new((int64_t)count * 3, count, 0, 0, 0, out, err) != 0)
        return od_fail_context(err, "%s", source);
    for (uint32_t t = 0; t < count; t++) {
        const unsigned char *record = data + 84 + (size_t)t * 50;
        for (int k = 0; k < 9; k++) {
            float v = read_f32_le(record + 12 + 4 * k);
            if (!isfinite(v)) {
                size_t at = 84 + (size_t)t * 50 + 12 + 4 * (size_t)k;
                od_mesh_free(out);
                return od_fail(err, "%s: byte %zu: triangle %u, corner %d: coordinate is not a finite number", source,
                               at, t, k / 3);
            }
            out->positions[(int64_t)t * 9 + k] = v;
        }
        for (int k = 0; k < 3; k++)
            out->faces[(int64_t)t * 3 + k] = (int32_t)(t * 3 + (uint32_t)k);
    }
    return 0;
}

static int token_is(const char *token, size_t length, const char *word)
{
    return strlen(word) == length && memcmp(token, word, length) == 0;
}

/* ASCII STL: one or more "solid NAME ... endsolid" blocks of
 * "facet normal n n n / outer loop / vertex x y z (3 or more) / endloop /
 * endfacet". Each solid becomes a part. */
static int parse_ascii(const unsigned char *data, size_t size, const char *source, od_mesh *out, od_error *err)
{
    od_text_cursor c = {(const char *)data, (const char *)data + size, 1, 0};
    od_float_list positions = {0};
    od_int_list faces = {0}, face_parts = {0};
    char **names = NULL;
    int name_count = 0;
    const char *token;
    size_t length;
    char shown[48];
    int rc = 0;
    int32_t current_part = -1;
    int in_loop = 0, in_facet = 0;
    int64_t loop_start = 0; /* index of the first vertex of the current loop */
    while (rc == 0 && od_text_next(&c, 0, &token, &length)) {
        int64_t line = c.line;
        if (token_is(token, length, "solid")) {
            if (current_part >= 0 && (in_facet || in_loop)) {
                rc = od_fail(err, "%s:%lld: solid inside an open facet (expected endfacet first)", source,
                             (long long)line);
                break;
            }
            /* The rest of the line is the name. */
            const char *start = c.pos;
            od_text_skip_line(&c);
            const char *stop = c.pos;
            while (stop > start && (stop[-1] == '\n' || stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t'))
                stop--;
            while (start < stop && (*start == ' ' || *start == '\t'))
                start++;
            char name[64];
            od_token_text(start, (size_t)(stop - start), name, sizeof name);
            if (!name[0])
                snprintf(name, sizeof name, "solid_%d", name_count);
            char **grown = realloc(names, (size_t)(name_count + 1) * sizeof(char *));
            if (!grown || !(grown[name_count] = strdup(name))) {
                if (grown)
                    names = grown;
                rc = od_fail(err, "%s:%lld: out of memory", source, (long long)line);
                break;
            }
            names = grown;
            current_part = name_count++;
            continue;
        }
        if (current_part < 0) {
            rc = od_fail(err, "%s:%lld: expected 'solid' at the start of an ASCII STL, got '%s'", source,
                         (long long)line, od_token_text(token, length, shown, sizeof shown));
            break;
        }
        if (token_is(token, length, "facet")) {
            if (in_facet) {
                rc = od_fail(err, "%s:%lld: facet inside a facet (expected endfacet)", source, (long long)line);
                break;
            }
            in_facet = 1;
            od_text_skip_line(&c); /* the normal is recomputed from the corners */
        } else if (token_is(token, length, "outer")) {
            if (!in_facet || in_loop) {
                rc = od_fail(err, "%s:%lld: 'outer loop' outside a facet", source, (long long)line);
                break;
            }
            in_loop = 1;
            loop_start = positions.count / 3;
            od_text_skip_line(&c);
        } else if (token_is(token, length, "vertex")) {
            if (!in_loop) {
                rc = od_fail(err, "%s:%lld: vertex outside 'outer loop'", source, (long long)line);
                break;
            }
            float p[3];
            for (int k = 0; k < 3 && rc == 0; k++) {
                double value;
                if (!od_text_next(&c, 1, &token, &length))
                    rc = od_fail(err, "%s:%lld: expected 3 numbers after vertex, got %d", source, (long long)line, k);
                else if (od_token_double(token, length, &value) != 0 || fabs(value) > 3e38)
                    rc = od_fail(err, "%s:%lld: vertex coordinate %d: invalid number '%s' (expected a finite "
                                      "decimal)",
                                 source, (long long)line, k, od_token_text(token, length, shown, sizeof shown));
                else
                    p[k] = (float)value;
            }
            if (rc == 0 && positions.count / 3 >= OD_MESH_MAX_ELEMENTS)
                rc = od_fail(err, "%s:%lld: more than %lld vertices", source, (long long)line,
                             (long long)OD_MESH_MAX_ELEMENTS);
            if (rc == 0 && od_float_list_push(&positions, p, 3) != 0)
                rc = od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        } else if (token_is(token, length, "endloop")) {
            if (!in_loop) {
                rc = od_fail(err, "%s:%lld: endloop without 'outer loop'", source, (long long)line);
                break;
            }
            int64_t corners = positions.count / 3 - loop_start;
            if (corners < 3) {
                rc = od_fail(err, "%s:%lld: a loop of %lld vertices (expected 3 or more)", source, (long long)line,
                             (long long)corners);
                break;
            }
            for (int64_t k = 1; k + 1 < corners && rc == 0; k++) {
                int32_t tri[3] = {(int32_t)loop_start, (int32_t)(loop_start + k), (int32_t)(loop_start + k + 1)};
                if (od_int_list_push(&faces, tri, 3) != 0 || od_int_list_push(&face_parts, &current_part, 1) != 0)
                    rc = od_fail(err, "%s:%lld: out of memory", source, (long long)line);
            }
            in_loop = 0;
        } else if (token_is(token, length, "endfacet")) {
            if (!in_facet || in_loop) {
                rc = od_fail(err, "%s:%lld: endfacet without a complete facet", source, (long long)line);
                break;
            }
            in_facet = 0;
        } else if (token_is(token, length, "endsolid")) {
            if (in_facet) {
                rc = od_fail(err, "%s:%lld: endsolid inside a facet (expected endfacet first)", source,
                             (long long)line);
                break;
            }
            od_text_skip_line(&c);
        } else {
            rc = od_fail(err, "%s:%lld: unexpected '%s' (expected facet, outer loop, vertex, endloop, endfacet or "
                              "endsolid)",
                         source, (long long)line, od_token_text(token, length, shown, sizeof shown));
        }
    }
    if (rc == 0 && (in_facet || in_loop))
        rc = od_fail(err, "%s:%lld: the file ends inside a facet (expected endloop and endfacet)", source,
                     (long long)c.line);
    if (rc == 0) {
        od_mesh_parts_in in = {.vertex_count = positions.count / 3,
                               .positions = positions.data,
                               .face_count = faces.count / 3,
                               .faces = faces.data,
                               .face_parts = face_parts.data,
                               .part_names = names,
                               .part_count = name_count};
        rc = od_mesh_assemble(&in, source, out, err);
    }
    for (int i = 0; i < name_count; i++)
        free(names[i]);
    free(names);
    free(positions.data);
    free(faces.data);
    free(face_parts.data);
    return rc;
}

/* Text that starts with "solid" and then has "facet" or "endsolid" in
 * its first kilobyte is ASCII; a binary file whose 80-byte header starts
 * with "solid" (many exporters write one) is caught because its size
 * matches 84 + 50 * count exactly. */
static int looks_ascii(const unsigned char *data, size_t size)
{
    size_t i = 0;
    while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    if (size - i < 5 || memcmp(data + i, "solid", 5) != 0)
        return 0;
    if (size >= 84 && 84 + (uint64_t)read_u32_le(data + 80) * 50 == size)
        return 0;
    size_t limit = size < 1024 ? size : 1024;
    for (size_t j = i + 5; j + 5 <= limit; j++)
        if (memcmp(data + j, "facet", 5) == 0 || memcmp(data + j, "endso", 5) == 0)
            return 1;
    for (size_t j = i; j < limit; j++)
        if (data[j] == 0 || (data[j] < 32 && data[j] != '\n' && data[j] != '\r' && data[j] != '\t'))
            return 0;
    return 1;
}

int od_mesh_parse_stl(const void *data, size_t size, const char *source, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    if (!source)
        source = "STL data";
    if (looks_ascii(data, size))
        return parse_ascii(data, size, source, out, err);
    return parse_binary(data, size, source, out, err);
}

int od_mesh_read_stl(const char *path, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t size;
    if (od_mesh_file_read(path, &data, &size, err) != 0)
        return -1;
    int rc = od_mesh_parse_stl(data, size, path, out, err);
    free(data);
    return rc;
}
