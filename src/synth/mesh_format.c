/* Helpers shared by the PLY, STL and OFF readers. See mesh_format.h. */
#include "synth/mesh_format.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int od_mesh_file_read(const char *path, unsigned char **data, size_t *size, od_error *err)
{
    *data = NULL;
    *size = 0;
    FILE *file = fopen(path, "rb");
    if (!file)
        return od_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    size_t capacity = 1 << 16, count = 0;
    unsigned char *buffer = malloc(capacity);
    while (buffer) {
        size_t got = fread(buffer + count, 1, capacity - count, file);
        count += got;
        if (count < capacity)
            break;
        if (capacity >= ((size_t)1 << 31)) {
            fclose(file);
            free(buffer);
            return od_fail(err, "%s: file larger than 2 GiB (expected a smaller mesh)", path);
        }
        unsigned char *bigger = realloc(buffer, capacity * 2);
        if (!bigger) {
            free(buffer);
            buffer = NULL;
            break;
        }
        buffer = bigger;
        capacity *= 2;
    }
    int failed = ferror(file);
    fclose(file);
    if (!buffer)
        return od_fail(err, "%s: out of memory", path);
    if (failed) {
        free(buffer);
        return od_fail(err, "%s: read error", path);
    }
    *data = buffer;
    *size = count;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int od_text_next(od_text_cursor *cursor, int same_line, const char **token, size_t *length)
{
    const char *s = cursor->pos, *end = cursor->end;
    for (;;) {
        while (s < end && is_space(*s))
            s++;
        if (s >= end) {
            cursor->pos = s;
            return 0;
        }
        if (cursor->comment_char && *s == cursor->comment_char) {
            while (s < end && *s != '\n')
                s++;
            continue;
        }
        if (*s == '\n' || *s == 0) {
            if (same_line) {
                cursor->pos = s;
                return 0;
            }
            if (*s == '\n')
                cursor->line++;
            s++;
            continue;
        }
        break;
    }
    const char *start = s;
    while (s < end && !is_space(*s) && *s != '\n' && *s != 0 && !(cursor->comment_char && *s == cursor->comment_char))
        s++;
    *token = start;
    *length = (size_t)(s - start);
    cursor->pos = s;
    return 1;
}

void od_text_skip_line(od_text_cursor *cursor)
{
    const char *s = cursor->pos;
    while (s < cursor->end && *s != '\n')
        s++;
    if (s < cursor->end) {
        s++;
        cursor->line++;
    }
    cursor->pos = s;
}

int od_token_double(const char *token, size_t length, double *value)
{
    char buffer[64];
    if (length == 0 || length >= sizeof buffer)
        return -1;
    memcpy(buffer, token, length);
    buffer[length] = 0;
    char *stop;
    errno = 0;
    double v = strtod(buffer, &stop);
    /* Underflow to a tiny value is fine; overflow, NaN and Inf are not. */
    if (stop != buffer + length || !isfinite(v) || (errno == ERANGE && fabs(v) > 1))
        return -1;
    *value = v;
    return 0;
}

int od_token_int64(const char *token, size_t length, int64_t *value)
{
    size_t i = 0;
    int negative = 0;
    if (length > 0 && (token[0] == '-' || token[0] == '+')) {
        negative = token[0] == '-';
        i = 1;
    }
    if (i >= length)
        return -1;
    int64_t v = 0;
    for (; i < length; i++) {
        if (token[i] < '0' || token[i] > '9')
            return -1;
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (token[i] - '0');
    }
    *value = negative ? -v : v;
    return 0;
}

const char *od_token_text(const char *token, size_t length, char *buffer, size_t size)
{
    if (size < 8) {
        if (size)
            buffer[0] = 0;
        return buffer;
    }
    size_t n = length < size - 1 ? length : size - 4;
    size_t j = 0;
    /* Control bytes print as '?' so that a binary file does not garble the message. */
    for (size_t i = 0; i < n; i++)
        buffer[j++] = (unsigned char)token[i] < 32 || (unsigned char)token[i] > 126 ? '?' : token[i];
    if (n < length) {
        memcpy(buffer + j, "...", 3);
        j += 3;
    }
    buffer[j] = 0;
    return buffer;
}

int od_float_list_push(od_float_list *list, const float *values, int64_t n)
{
    if (list->count + n > list->capacity) {
        int64_t capacity = list->capacity ? list->capacity * 2 : 1024;
        while (capacity < list->count + n)
            capacity *= 2;
        float *data = realloc(list->data, (size_t)capacity * sizeof(float));
        if (!data)
            return -1;
        list->data = data;
        list->capacity = capacity;
    }
    memcpy(list->data + list->count, values, (size_t)n * sizeof(float));
    list->count += n;
    return 0;
}

int od_int_list_push(od_int_list *list, const int32_t *values, int64_t n)
{
    if (list->count + n > list->capacity) {
        int64_t capacity = list->capacity ? list->capacity * 2 : 1024;
        while (capacity < list->count + n)
            capacity *= 2;
        int32_t *data = realloc(list->data, (size_t)capacity * sizeof(int32_t));
        if (!data)
            return -1;
        list->data = data;
        list->capacity = capacity;
    }
    memcpy(list->data + list->count, values, (size_t)n * sizeof(int32_t));
    list->count += n;
    return 0;
}

int od_mesh_assemble(const od_mesh_parts_in *in, const char *source, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    int64_t F = in->face_count, V = in->vertex_count;
    if (F <= 0)
        return od_fail(err, "%s: no faces (expected at least one triangle)", source);
    int per_corner = 0;
    if (in->face_colors && in->face_colored)
        for (int64_t f = 0; f < F && !per_corner; f++)
            per_corner = in->face_colored[f] != 0;
    int64_t *new_index = NULL;
    int64_t kept = 0;
    if (per_corner) {
        kept = 3 * F;
    } else {
        new_index = malloc(((size_t)V + 1) * sizeof(int64_t));
        if (!new_index)
            return od_fail(err, "%s: out of memory for %lld vertices", source, (long long)V);
        for (int64_t v = 0; v < V; v++)
            new_index[v] = -1;
        for (int64_t i = 0; i < 3 * F; i++)
            new_index[in->faces[i]] = 0;
        for (int64_t v = 0; v < V; v++)
            if (new_index[v] == 0)
                new_index[v] = kept++;
            else
                new_index[v] = -1;
    }
    if (od_mesh_new(kept, F, in->normals != NULL, in->uvs != NULL, in->colors != NULL || per_corner, out, err) !=
        0) {
        free(new_index);
        return od_fail_context(err, "%s", source);
    }
    for (int64_t v = 0; v < (per_corner ? kept : V); v++) {
        int64_t src = per_corner ? in->faces[v] : v;
        int64_t dst = per_corner ? v : new_index[v];
        if (dst < 0)
            continue;
        memcpy(out->positions + dst * 3, in->positions + src * 3, 3 * sizeof(float));
        if (in->normals)
            memcpy(out->normals + dst * 3, in->normals + src * 3, 3 * sizeof(float));
        if (in->uvs)
            memcpy(out->uvs + dst * 2, in->uvs + src * 2, 2 * sizeof(float));
        if (out->colors) {
            const float white[3] = {1, 1, 1};
            const float *c = in->colors ? in->colors + src * 3 : white;
            if (per_corner && in->face_colored[v / 3])
                c = in->face_colors + (v / 3) * 3;
            memcpy(out->colors + dst * 3, c, 3 * sizeof(float));
        }
    }
    for (int64_t i = 0; i < 3 * F; i++)
        out->faces[i] = (int32_t)(per_corner ? i : new_index[in->faces[i]]);
    free(new_index);
    if (in->face_parts && in->part_names && in->part_count > 0) {
        memcpy(out->face_parts, in->face_parts, (size_t)F * sizeof(int32_t));
        if (od_mesh_set_part_names(out, in->part_names, in->part_count, err) != 0) {
            od_mesh_free(out);
            return od_fail_context(err, "%s", source);
        }
    }
    return 0;
}

int od_mesh_set_part_names(od_mesh *mesh, char *const *names, int count, od_error *err)
{
    char **copies = calloc((size_t)count + 1, sizeof(char *));
    if (!copies)
        return od_fail(err, "mesh: out of memory for %d part names", count);
    for (int i = 0; i < count; i++) {
        copies[i] = strdup(names[i] ? names[i] : "");
        if (!copies[i]) {
            for (int j = 0; j < i; j++)
                free(copies[j]);
            free(copies);
            return od_fail(err, "mesh: out of memory for %d part names", count);
        }
    }
    for (int i = 0; i < mesh->part_count; i++)
        free(mesh->part_names[i]);
    free(mesh->part_names);
    mesh->part_names = copies;
    mesh->part_count = count;
    return 0;
}

/* Lower-cases the extension of path into buffer; empty when there is none. */
static void extension_of(const char *path, char *buffer, size_t size)
{
    buffer[0] = 0;
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash) || strlen(dot) >= size)
        return;
    size_t i = 0;
    for (; dot[i]; i++)
        buffer[i] = (char)(dot[i] >= 'A' && dot[i] <= 'Z' ? dot[i] - 'A' + 'a' : dot[i]);
    buffer[i] = 0;
}

int od_mesh_load(const char *path, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    char extension[16];
    extension_of(path, extension, sizeof extension);
    if (strcmp(extension, ".obj") == 0)
        return od_mesh_read_obj(path, NULL, out, err);
    if (strcmp(extension, ".ply") == 0)
        return od_mesh_read_ply(path, out, err);
    if (strcmp(extension, ".stl") == 0)
        return od_mesh_read_stl(path, out, err);
    if (strcmp(extension, ".off") == 0)
        return od_mesh_read_off(path, out, err);
    return od_fail(err, "%s: unknown mesh format '%s' (expected the extension .obj, .ply, .stl or .off)", path,
                   extension[0] ? extension : "no extension");
}
