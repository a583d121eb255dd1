/* Object File Format (OFF, with the C, N and ST prefixes) reading into od_mesh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/mesh.h"
#include "synth/mesh_format.h"

/* A colour token is an integer 0-255 or a decimal in [0, 1] (Geomview's rule). */
static int color_component(const char *token, size_t length, float *value)
{
    int64_t integer;
    if (od_token_int64(token, length, &integer) == 0) {
        if (integer < 0 || integer > 255)
            return -1;
        *value = (float)integer / 255.0f;
        return 0;
    }
    double d;
    if (od_token_double(token, length, &d) != 0)
        return -1;
    if (d < 0)
        d = 0;
    if (d > 1)
        d = 1;
    *value = (float)d;
    return 0;
}

typedef struct off_reader {
    const char *source;
    od_text_cursor c;
    int with_normals, with_colors, with_uvs;
} off_reader;

/* Reads the next token as a number, across lines. */
static int next_number(off_reader *r, const char *what, int64_t index, double *value, od_error *err)
{
    const char *token;
    size_t length;
    char shown[48];
    if (!od_text_next(&r->c, 0, &token, &length))
        return od_fail(err, "%s:%lld: the file ends inside %s %lld (expected a number)", r->source,
                       (long long)r->c.line, what, (long long)index);
    if (od_token_double(token, length, value) != 0 || fabs(*value) > 3e38)
        return od_fail(err, "%s:%lld: %s %lld: invalid number '%s' (expected a finite decimal)", r->source,
                       (long long)r->c.line, what, (long long)index, od_token_text(token, length, shown, sizeof shown));
    return 0;
}

static int next_count(off_reader *r, const char *what, int64_t *value, od_error *err)
{
    const char *token;
    size_t length;
    char shown[48];
    if (!od_text_next(&r->c, 0, &token, &length))
        return od_fail(err, "%s:%lld: the file ends before the %s (expected 'VERTICES FACES EDGES')", r->source,
                       (long long)r->c.line, what);
    if (od_token_int64(token, length, value) != 0 || *value < 0)
        return od_fail(err, "%s:%lld: invalid %s '%s' (expected an integer of 0 or more)", r->source,
                       (long long)r->c.line, what, od_token_text(token, length, shown, sizeof shown));
    return 0;
}

/* Reads the rest of the current line's tokens (up to `max`). */
static int rest_of_line(off_reader *r, const char **tokens, size_t *lengths, int max)
{
    int n = 0;
    const char *token;
    size_t length;
    while (od_text_next(&r->c, 1, &token, &length)) {
        if (n < max) {
            tokens[n] = token;
            lengths[n] = length;
        }
        n++;
    }
    return n;
}

int od_mesh_parse_off(const void *data, size_t size, const char *source, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    off_reader r = {.source = source ? source : "OFF data"};
    r.c = (od_text_cursor){(const char *)data, (const char *)data + size, 1, '#'};
    source = r.source;
    const char *token;
    size_t length;
    char shown[48];
    if (!od_text_next(&r.c, 0, &token, &length))
        return od_fail(err, "%s: empty file (expected 'OFF' and the counts)", source);
    /* The optional keyword: [ST][C][N]OFF. */
    if (length >= 3 && memcmp(token + length - 3, "OFF", 3) == 0) {
        size_t i = 0;
        if (length - i >= 5 && memcmp(token + i, "ST", 2) == 0) {
            r.with_uvs = 1;
            i += 2;
        }
        if (i < length - 3 && token[i] == 'C') {
            r.with_colors = 1;
            i++;
        }
        if (i < length - 3 && token[i] == 'N') {
            r.with_normals = 1;
            i++;
        }
        if (i != length - 3)
            return od_fail(err, "%s:%lld: unsupported keyword '%s' (expected OFF, COFF, NOFF, CNOFF, STOFF or "
                                "STCNOFF; 4OFF and nOFF are not read)",
                           source, (long long)r.c.line, od_token_text(token, length, shown, sizeof shown));
        const char *peek_pos = r.c.pos;
        int64_t peek_line = r.c.line;
        if (od_text_next(&r.c, 1, &token, &length) && length == 6 && memcmp(token, "BINARY", 6) == 0)
            return od_fail(err, "%s:%lld: binary OFF is not read (expected the text form)", source,
                           (long long)r.c.line);
        r.c.pos = peek_pos;
        r.c.line = peek_line;
    } else {
        /* No keyword: the first token is already the vertex count. */
        r.c.pos = token;
    }
    int64_t vertex_count, face_count, edge_count;
    if (next_count(&r, "vertex count", &vertex_count, err) != 0 || next_count(&r, "face count", &face_count, err) != 0)
        return -1;
    /* The edge count is often left out or wrong; it is read when on the same line and ignored. */
    if (od_text_next(&r.c, 1, &token, &length) && od_token_int64(token, length, &edge_count) != 0)
        return od_fail(err, "%s:%lld: invalid edge count '%s' (expected an integer)", source, (long long)r.c.line,
                       od_token_text(token, length, shown, sizeof shown));
    size_t left = (size_t)(r.c.end - r.c.pos);
    /* Each vertex needs at least "0 0 0\n" and each face "3 0 0 0\n". */
    double needed = (double)vertex_count * 6 + (double)face_count * 8;
    if (needed > (double)left + 1)
        return od_fail(err, "%s:%lld: %lld vertices and %lld faces need at least %.0f bytes but %zu are left (a count "
                            "is too large or the file is truncated)",
                       source, (long long)r.c.line, (long long)vertex_count, (long long)face_count, needed, left);
    if (vertex_count > OD_MESH_MAX_ELEMENTS || face_count > OD_MESH_MAX_ELEMENTS)
        return od_fail(err, "%s:%lld: %lld vertices and %lld faces (expected at most %lld each)", source,
                       (long long)r.c.line, (long long)vertex_count, (long long)face_count,
                       (long long)OD_MESH_MAX_ELEMENTS);
    size_t V = (size_t)vertex_count;
    float *positions = malloc((V * 3 + 1) * sizeof(float));
    float *normals = r.with_normals ? malloc((V * 3 + 1) * sizeof(float)) : NULL;
    float *uvs = r.with_uvs ? malloc((V * 2 + 1) * sizeof(float)) : NULL;
    float *colors = malloc((V * 3 + 1) * sizeof(float));
    od_int_list faces = {0};
    od_float_list face_colors = {0};
    unsigned char *face_colored = NULL;
    int64_t face_colored_capacity = 0;
    int rc = 0, any_vertex_color = 0, any_face_color = 0;
    if (!positions || !colors || (r.with_normals && !normals) || (r.with_uvs && !uvs))
        rc = od_fail(err, "%s: out of memory for %lld vertices", source, (long long)vertex_count);
    for (int64_t v = 0; rc == 0 && v < vertex_count; v++) {
        double value;
        for (int k = 0; k < 3 && rc == 0; k++)
            if ((rc = next_number(&r, "vertex", v, &value, err)) == 0)
                positions[v * 3 + k] = (float)value;
        for (int k = 0; r.with_normals && k < 3 && rc == 0; k++)
            if ((rc = next_number(&r, "vertex", v, &value, err)) == 0)
                normals[v * 3 + k] = (float)value;
        if (rc != 0)
            break;
        const char *tokens[8];
        size_t lengths[8];
        int n = rest_of_line(&r, tokens, lengths, 8);
        /* What follows the position and normal: [r g b [a]] [s t]. */
        int uv_tokens = r.with_uvs ? 2 : 0;
        int color_tokens = r.with_colors ? (n - uv_tokens >= 4 ? 4 : 3)
                                         : (n - uv_tokens == 3 || n - uv_tokens == 4 ? n - uv_tokens : 0);
        int expected = (r.with_colors ? 3 : 0) + uv_tokens;
        if (n < expected || n < color_tokens + uv_tokens || n > 8) {
            rc = od_fail(err, "%s:%lld: vertex %lld has %d values after its position%s (expected %d%s)", source,
                         (long long)r.c.line, (long long)v, n, r.with_normals ? " and normal" : "", expected,
                         r.with_colors ? " or one more for alpha" : "");
            break;
        }
        float *color = colors + v * 3;
        color[0] = color[1] = color[2] = 1;
        if (color_tokens >= 3) {
            for (int k = 0; k < 3 && rc == 0; k++)
                if (color_component(tokens[k], lengths[k], &color[k]) != 0)
                    rc = od_fail(err, "%s:%lld: vertex %lld: invalid colour value '%s' (expected 0-255 or 0.0-1.0)",
                                 source, (long long)r.c.line, (long long)v,
                                 od_token_text(tokens[k], lengths[k], shown, sizeof shown));
            any_vertex_color = 1;
        }
        if (r.with_uvs && rc == 0)
            for (int k = 0; k < 2 && rc == 0; k++) {
                double uv;
                const char *t = tokens[color_tokens + k];
                size_t l = lengths[color_tokens + k];
                if (od_token_double(t, l, &uv) != 0)
                    rc = od_fail(err, "%s:%lld: vertex %lld: invalid texture coordinate '%s'", source,
                                 (long long)r.c.line, (long long)v, od_token_text(t, l, shown, sizeof shown));
                else
                    uvs[v * 2 + k] = (float)uv;
            }
    }
    for (int64_t f = 0; rc == 0 && f < face_count; f++) {
        int64_t corners;
        if ((rc = next_count(&r, "face corner count", &corners, err)) != 0)
            break;
        left = (size_t)(r.c.end - r.c.pos);
        if (corners < 3 || (double)corners * 2 > (double)left + 1) {
            rc = od_fail(err, "%s:%lld: face %lld has %lld corners (expected 3 or more, and no more than the %zu "
                              "bytes left can hold)",
                         source, (long long)r.c.line, (long long)f, (long long)corners, left);
            break;
        }
        int32_t first = 0, previous = 0;
        int64_t triangles_before = faces.count / 3;
        for (int64_t k = 0; k < corners && rc == 0; k++) {
            int64_t index;
            if (!od_text_next(&r.c, 0, &token, &length)) {
                rc = od_fail(err, "%s:%lld: the file ends inside face %lld (expected %lld vertex indices)", source,
                             (long long)r.c.line, (long long)f, (long long)corners);
                break;
            }
            if (od_token_int64(token, length, &index) != 0 || index < 0 || index >= vertex_count) {
                rc = od_fail(err, "%s:%lld: face %lld: invalid vertex index '%s' (expected 0 to %lld)", source,
                             (long long)r.c.line, (long long)f, od_token_text(token, length, shown, sizeof shown),
                             (long long)vertex_count - 1);
                break;
            }
            int32_t i = (int32_t)index;
            if (k == 0)
                first = i;
            else if (k >= 2) {
                int32_t tri[3] = {first, previous, i};
                if (faces.count / 3 >= OD_MESH_MAX_ELEMENTS || od_int_list_push(&faces, tri, 3) != 0)
                    rc = od_fail(err, "%s:%lld: out of memory or over %lld triangles", source, (long long)r.c.line,
                                 (long long)OD_MESH_MAX_ELEMENTS);
            }
            previous = i;
        }
        if (rc != 0)
            break;
        /* An optional colour: nothing, a colour map index (ignored), or r g b [a]. */
        const char *tokens[8];
        size_t lengths[8];
        int n = rest_of_line(&r, tokens, lengths, 8);
        float rgb[3] = {1, 1, 1};
        int colored = 0;
        if (n == 3 || n == 4) {
            for (int k = 0; k < 3 && rc == 0; k++)
                if (color_component(tokens[k], lengths[k], &rgb[k]) != 0)
                    rc = od_fail(err, "%s:%lld: face %lld: invalid colour value '%s' (expected 0-255 or 0.0-1.0)",
                                 source, (long long)r.c.line, (long long)f,
                                 od_token_text(tokens[k], lengths[k], shown, sizeof shown));
            colored = 1;
            any_face_color = 1;
        } else if (n > 1) {
            rc = od_fail(err, "%s:%lld: face %lld has %d values after its indices (expected none, a colour index, or "
                              "r g b [a])",
                         source, (long long)r.c.line, (long long)f, n);
        }
        int64_t triangles_now = faces.count / 3;
        if (rc == 0 && triangles_now > face_colored_capacity) {
            int64_t capacity = face_colored_capacity ? face_colored_capacity * 2 : 1024;
            while (capacity < triangles_now)
                capacity *= 2;
            unsigned char *grown = realloc(face_colored, (size_t)capacity);
            if (!grown)
                rc = od_fail(err, "%s: out of memory", source);
            else {
                face_colored = grown;
                face_colored_capacity = capacity;
            }
        }
        for (int64_t t = triangles_before; rc == 0 && t < triangles_now; t++) {
            face_colored[t] = (unsigned char)colored;
            if (od_float_list_push(&face_colors, rgb, 3) != 0)
                rc = od_fail(err, "%s: out of memory", source);
        }
    }
    if (rc == 0) {
        od_mesh_parts_in in = {.vertex_count = vertex_count,
                               .positions = positions,
                               .normals = normals,
                               .uvs = uvs,
                               .colors = any_vertex_color ? colors : NULL,
                               .face_count = faces.count / 3,
                               .faces = faces.data,
                               .face_colors = any_face_color ? face_colors.data : NULL,
                               .face_colored = any_face_color ? face_colored : NULL};
        rc = od_mesh_assemble(&in, source, out, err);
        if (rc == 0 && out->normals)
            for (int64_t v = 0; v < out->vertex_count; v++) {
                float *nv = out->normals + v * 3;
                float norm = sqrtf(nv[0] * nv[0] + nv[1] * nv[1] + nv[2] * nv[2]);
                for (int k = 0; k < 3; k++)
                    nv[k] = norm > 0 ? nv[k] / norm : 0;
            }
    }
    free(positions);
    free(normals);
    free(uvs);
    free(colors);
    free(faces.data);
    free(face_colors.data);
    free(face_colored);
    return rc;
}

int od_mesh_read_off(const char *path, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t size;
    if (od_mesh_file_read(path, &data, &size, err) != 0)
        return -1;
    int rc = od_mesh_parse_off(data, size, path, out, err);
    free(data);
    return rc;
}
