/* Wavefront OBJ and MTL reading into od_mesh. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "synth/mesh.h"

od_mesh_obj_options od_mesh_obj_options_default(void)
{
    od_mesh_obj_options options = {.read_textures = 0, .read_materials = 1};
    return options;
}

/* ---- growable arrays ----------------------------------------------------------- */

typedef struct float_array {
    float *data;
    int64_t count, capacity; /* in floats */
} float_array;

typedef struct int_array {
    int32_t *data;
    int64_t count, capacity;
} int_array;

static int float_push(float_array *a, const float *values, int n)
{
    if (a->count + n > a->capacity) {
        int64_t capacity = a->capacity ? a->capacity * 2 : 1024;
        while (capacity < a->count + n)
            capacity *= 2;
        float *data = realloc(a->data, (size_t)capacity * sizeof(float));
        if (!data)
            return -1;
        a->data = data;
        a->capacity = capacity;
    }
    memcpy(a->data + a->count, values, (size_t)n * sizeof(float));
    a->count += n;
    return 0;
}

static int int_push(int_array *a, const int32_t *values, int n)
{
    if (a->count + n > a->capacity) {
        int64_t capacity = a->capacity ? a->capacity * 2 : 1024;
        while (capacity < a->count + n)
            capacity *= 2;
        int32_t *data = realloc(a->data, (size_t)capacity * sizeof(int32_t));
        if (!data)
            return -1;
        a->data = data;
        a->capacity = capacity;
    }
    memcpy(a->data + a->count, values, (size_t)n * sizeof(int32_t));
    a->count += n;
    return 0;
}

/* ---- the parser's state --------------------------------------------------------- */

/* A hash map from a face corner's (position, uv, normal) indices to the
 * output vertex, so that each distinct triple becomes one vertex. */
typedef struct corner_map {
    int32_t *keys;   /* (capacity, 3), -2 marks an empty slot */
    int32_t *values; /* (capacity) */
    int64_t count, capacity;
} corner_map;

typedef struct obj_parser {
    const char *source;
    const char *base_dir;
    od_mesh_obj_options options;
    int64_t line;
    float_array positions, colors, uvs, normals; /* as the file lists them */
    int has_colors;
    /* Output vertices: indices into the file's arrays (-1 for none). */
    int_array vertex_refs; /* (V, 3) */
    int_array faces, face_materials, face_parts;
    int_array corner_keys; /* the (position, uv, normal) indices of the face being read */
    int64_t skipped_faces;     /* face lines with fewer than 3 distinct positions */
    int64_t skipped_triangles; /* fan triangles of other faces with a repeated position */
    int has_uvs, has_normals;
    corner_map map;
    int current_material, current_part;
    od_mesh_material *materials;
    int material_count, material_capacity;
    char **parts;
    int part_count, part_capacity;
} obj_parser;

static uint64_t hash_corner(const int32_t key[3])
{
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < 3; k++) {
        h ^= (uint32_t)key[k];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static int map_grow(corner_map *map)
{
    int64_t capacity = map->capacity ? map->capacity * 2 : 4096;
    int32_t *keys = malloc((size_t)capacity * 3 * sizeof(int32_t));
    int32_t *values = malloc((size_t)capacity * sizeof(int32_t));
    if (!keys || !values) {
        free(keys);
        free(values);
        return -1;
    }
    for (int64_t i = 0; i < capacity; i++)
        keys[i * 3] = -2;
    for (int64_t i = 0; i < map->capacity; i++) {
        if (map->keys[i * 3] == -2)
            continue;
        uint64_t slot = hash_corner(map->keys + i * 3) & (uint64_t)(capacity - 1);
        while (keys[slot * 3] != -2)
            slot = (slot + 1) & (uint64_t)(capacity - 1);
        memcpy(keys + slot * 3, map->keys + i * 3, 3 * sizeof(int32_t));
        values[slot] = map->values[i];
    }
    free(map->keys);
    free(map->values);
    map->keys = keys;
    map->values = values;
    map->capacity = capacity;
    return 0;
}

/* Returns the output vertex of a corner, adding it when new, or -1 when out of memory. */
static int32_t corner_vertex(obj_parser *p, const int32_t key[3])
{
    if ((p->map.count + 1) * 2 > p->map.capacity && map_grow(&p->map) != 0)
        return -1;
    uint64_t mask = (uint64_t)(p->map.capacity - 1);
    uint64_t slot = hash_corner(key) & mask;
    while (p->map.keys[slot * 3] != -2) {
        if (memcmp(p->map.keys + slot * 3, key, 3 * sizeof(int32_t)) == 0)
            return p->map.values[slot];
        slot = (slot + 1) & mask;
    }
    int32_t vertex = (int32_t)(p->vertex_refs.count / 3);
    if (int_push(&p->vertex_refs, key, 3) != 0)
        return -1;
    memcpy(p->map.keys + slot * 3, key, 3 * sizeof(int32_t));
    p->map.values[slot] = vertex;
    p->map.count++;
    return vertex;
}

static void parser_free(obj_parser *p)
{
    free(p->positions.data);
    free(p->colors.data);
    free(p->uvs.data);
    free(p->normals.data);
    free(p->vertex_refs.data);
    free(p->faces.data);
    free(p->face_materials.data);
    free(p->face_parts.data);
    free(p->corner_keys.data);
    free(p->map.keys);
    free(p->map.values);
    for (int i = 0; i < p->material_count; i++) {
        free(p->materials[i].name);
        free(p->materials[i].texture_path);
        od_image_free(&p->materials[i].texture);
    }
    free(p->materials);
    for (int i = 0; i < p->part_count; i++)
        free(p->parts[i]);
    free(p->parts);
}

/* ---- tokens -------------------------------------------------------------------- */

static const char *skip_space(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static const char *token_end(const char *s, const char *end)
{
    while (s < end && *s != ' ' && *s != '\t')
        s++;
    return s;
}

/* Returns a copy of [s, end) with surrounding spaces trimmed, or NULL when out of memory. */
static char *copy_trimmed(const char *s, const char *end)
{
    s = skip_space(s, end);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - s);
    char *copy = malloc(n + 1);
    if (copy) {
        memcpy(copy, s, n);
        copy[n] = 0;
    }
    return copy;
}

/* Parses up to `max` floats from the rest of the line; returns how many. */
static int parse_floats(obj_parser *p, const char *s, const char *end, float *values, int max, int *bad)
{
    int n = 0;
    *bad = 0;
    for (;;) {
        s = skip_space(s, end);
        if (s >= end || n == max)
            return n;
        const char *stop = token_end(s, end);
        char buffer[64];
        size_t length = (size_t)(stop - s);
        if (length >= sizeof buffer) {
            *bad = 1;
            return n;
        }
        memcpy(buffer, s, length);
        buffer[length] = 0;
        char *after;
        errno = 0;
        double v = strtod(buffer, &after);
        if (after == buffer || *after != 0 || !isfinite(v) || fabs(v) > 3.0e38) {
            *bad = 1;
            return n;
        }
        values[n++] = (float)v;
        s = stop;
    }
    (void)p;
}

static int find_or_add_part(obj_parser *p, const char *s, const char *end, od_error *err)
{
    char *name = copy_trimmed(s, end);
    if (!name)
        return od_fail(err, "%s:%lld: out of memory", p->source, (long long)p->line);
    if (!name[0]) {
        free(name);
        name = strdup("default");
        if (!name)
            return od_fail(err, "%s:%lld: out of memory", p->source, (long long)p->line);
    }
    for (int i = 0; i < p->part_count; i++)
        if (strcmp(p->parts[i], name) == 0) {
            free(name);
            p->current_part = i;
            return 0;
        }
    if (p->part_count == p->part_capacity) {
        int capacity = p->part_capacity ? p->part_capacity * 2 : 8;
        char **parts = realloc(p->parts, (size_t)capacity * sizeof(char *));
        if (!parts) {
            free(name);
            return od_fail(err, "%s:%lld: out of memory", p->source, (long long)p->line);
        }
        p->parts = parts;
        p->part_capacity = capacity;
    }
    p->parts[p->part_count] = name;
    p->current_part = p->part_count++;
    return 0;
}

/* Returns the index of the material named `name`, adding a grey one when new; -1 when out of memory. */
static int find_or_add_material(obj_parser *p, const char *name)
{
    for (int i = 0; i < p->material_count; i++)
        if (strcmp(p->materials[i].name, name) == 0)
            return i;
    if (p->material_count == p->material_capacity) {
        int capacity = p->material_capacity ? p->material_capacity * 2 : 8;
        od_mesh_material *materials = realloc(p->materials, (size_t)capacity * sizeof *materials);
        if (!materials)
            return -1;
        p->materials = materials;
        p->material_capacity = capacity;
    }
    od_mesh_material *m = &p->materials[p->material_count];
    memset(m, 0, sizeof *m);
    m->name = strdup(name);
    if (!m->name)
        return -1;
    m->diffuse[0] = m->diffuse[1] = m->diffuse[2] = 0.8f;
    return p->material_count++;
}

/* Joins base_dir and a relative path into a new string; absolute paths are kept. */
static char *join_path(const char *base_dir, const char *path)
{
    if (path[0] == '/' || !base_dir || !base_dir[0])
        return strdup(path);
    size_t n = strlen(base_dir) + strlen(path) + 2;
    char *joined = malloc(n);
    if (joined)
        snprintf(joined, n, "%s/%s", base_dir, path);
    return joined;
}

static int read_text_file(const char *path, char **text, size_t *size, od_error *err)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return od_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    size_t capacity = 1 << 16, count = 0;
    char *data = malloc(capacity);
    while (data) {
        size_t got = fread(data + count, 1, capacity - count, file);
        count += got;
        if (count < capacity)
            break;
        if (capacity >= ((size_t)1 << 31)) {
            fclose(file);
            free(data);
            return od_fail(err, "%s: file larger than 2 GiB", path);
        }
        char *bigger = realloc(data, capacity * 2);
        if (!bigger) {
            free(data);
            data = NULL;
            break;
        }
        data = bigger;
        capacity *= 2;
    }
    int failed = ferror(file);
    fclose(file);
    if (!data)
        return od_fail(err, "%s: out of memory", path);
    if (failed) {
        free(data);
        return od_fail(err, "%s: read error", path);
    }
    *text = data;
    *size = count;
    return 0;
}

/* Calls handle(p, keyword, rest, end, line) for each non-empty, non-comment line. */
typedef int (*line_handler)(obj_parser *p, const char *keyword, size_t keyword_length, const char *rest,
                            const char *end, const char *source, int64_t line, od_error *err);

static int for_each_line(obj_parser *p, const char *text, size_t size, const char *source, line_handler handle,
                         od_error *err)
{
    const char *s = text, *text_end = text + size;
    int64_t line = 0;
    while (s < text_end) {
        const char *end = memchr(s, '\n', (size_t)(text_end - s));
        const char *next = end ? end + 1 : text_end;
        if (!end)
            end = text_end;
        line++;
        const char *hash = memchr(s, '#', (size_t)(end - s));
        if (hash)
            end = hash;
        while (end > s && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        const char *keyword = skip_space(s, end);
        if (keyword < end) {
            const char *keyword_stop = token_end(keyword, end);
            if (handle(p, keyword, (size_t)(keyword_stop - keyword), keyword_stop, end, source, line, err) != 0)
                return -1;
        }
        s = next;
    }
    return 0;
}

static int keyword_is(const char *keyword, size_t length, const char *want)
{
    return strlen(want) == length && memcmp(keyword, want, length) == 0;
}

/* ---- MTL ----------------------------------------------------------------------- */

static int handle_mtl_line(obj_parser *p, const char *keyword, size_t length, const char *rest, const char *end,
                           const char *source, int64_t line, od_error *err)
{
    /* p->current_material is the material being defined (-1 before the
     * first newmtl) and p->base_dir the .mtl file's folder. */
    if (keyword_is(keyword, length, "newmtl")) {
        char *name = copy_trimmed(rest, end);
        if (!name)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        if (!name[0]) {
            free(name);
            return od_fail(err, "%s:%lld: expected a material name after newmtl", source, (long long)line);
        }
        int index = find_or_add_material(p, name);
        free(name);
        if (index < 0)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        p->current_material = index;
        return 0;
    }
    if (keyword_is(keyword, length, "Kd")) {
        if (p->current_material < 0)
            return od_fail(err, "%s:%lld: Kd before any newmtl", source, (long long)line);
        float rgb[3];
        int bad, n = parse_floats(p, rest, end, rgb, 3, &bad);
        if (bad || (n != 1 && n != 3))
            return od_fail(err, "%s:%lld: expected one or three numbers after Kd", source, (long long)line);
        if (n == 1)
            rgb[1] = rgb[2] = rgb[0];
        for (int c = 0; c < 3; c++)
            p->materials[p->current_material].diffuse[c] = fminf(fmaxf(rgb[c], 0.0f), 1.0f);
        return 0;
    }
    if (keyword_is(keyword, length, "map_Kd")) {
        if (p->current_material < 0)
            return od_fail(err, "%s:%lld: map_Kd before any newmtl", source, (long long)line);
        /* Options such as -s or -o come first; the file name is the last token. */
        const char *last = end;
        while (last > rest && last[-1] != ' ' && last[-1] != '\t')
            last--;
        if (last >= end)
            return od_fail(err, "%s:%lld: expected a file name after map_Kd", source, (long long)line);
        char *name = copy_trimmed(last, end);
        if (!name)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        od_mesh_material *m = &p->materials[p->current_material];
        free(m->texture_path);
        m->texture_path = join_path(p->base_dir, name);
        free(name);
        if (!m->texture_path)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        return 0;
    }
    return 0;
}

static int read_mtl(obj_parser *p, const char *name, od_error *err)
{
    char *path = join_path(p->base_dir, name);
    if (!path)
        return od_fail(err, "%s:%lld: out of memory", p->source, (long long)p->line);
    char *text;
    size_t size;
    if (read_text_file(path, &text, &size, err) != 0) {
        free(path);
        return od_fail_context(err, "%s:%lld: mtllib", p->source, (long long)p->line);
    }
    char *mtl_dir = strdup(path);
    if (!mtl_dir) {
        free(text);
        free(path);
        return od_fail(err, "%s: out of memory", name);
    }
    char *slash = strrchr(mtl_dir, '/');
    if (slash)
        *slash = 0;
    const char *saved_dir = p->base_dir;
    int saved_material = p->current_material;
    p->base_dir = slash ? mtl_dir : NULL;
    p->current_material = -1;
    int rc = for_each_line(p, text, size, path, handle_mtl_line, err);
    p->base_dir = saved_dir;
    p->current_material = saved_material;
    free(mtl_dir);
    free(text);
    free(path);
    return rc;
}

/* ---- OBJ ----------------------------------------------------------------------- */

/* Parses one index of a face corner, resolving negative (relative) indices
 * against `count`; writes a 0-based index. */
static int parse_index(obj_parser *p, const char *s, const char *stop, int64_t count, const char *what,
                       int32_t *index, od_error *err)
{
    char buffer[32];
    size_t length = (size_t)(stop - s);
    if (length == 0 || length >= sizeof buffer)
        return od_fail(err, "%s:%lld: expected a %s index in a face corner", p->source, (long long)p->line, what);
    memcpy(buffer, s, length);
    buffer[length] = 0;
    char *after;
    errno = 0;
    long long value = strtoll(buffer, &after, 10);
    if (*after != 0 || errno != 0 || value == 0)
        return od_fail(err, "%s:%lld: invalid %s index '%s' (expected a nonzero integer)", p->source,
                       (long long)p->line, what, buffer);
    long long resolved = value > 0 ? value - 1 : count + value;
    if (resolved < 0 || resolved >= count)
        return od_fail(err, "%s:%lld: %s index %lld out of range (the file has %lld so far)", p->source,
                       (long long)p->line, what, value, (long long)count);
    *index = (int32_t)resolved;
    return 0;
}

/* Parses a face line's corners into p->corner_keys, then fan-triangulates them from the first corner.
 * A face with fewer than 3 distinct positions has no area, so it adds nothing and counts in
 * p->skipped_faces. A fan triangle with a repeated position is left out and counts in
 * p->skipped_triangles. */
static int parse_face(obj_parser *p, const char *rest, const char *end, od_error *err)
{
    p->corner_keys.count = 0;
    const char *s = skip_space(rest, end);
    while (s < end) {
        const char *stop = token_end(s, end);
        int32_t key[3] = {-1, -1, -1};
        const char *slash1 = memchr(s, '/', (size_t)(stop - s));
        const char *v_end = slash1 ? slash1 : stop;
        if (parse_index(p, s, v_end, p->positions.count / 3, "vertex", &key[0], err) != 0)
            return -1;
        if (slash1) {
            const char *t = slash1 + 1;
            const char *slash2 = memchr(t, '/', (size_t)(stop - t));
            const char *t_end = slash2 ? slash2 : stop;
            if (t_end > t) {
                if (parse_index(p, t, t_end, p->uvs.count / 2, "texture", &key[1], err) != 0)
                    return -1;
                p->has_uvs = 1;
            } else if (!slash2) {
                return od_fail(err, "%s:%lld: expected a texture index after '/' in a face corner", p->source,
                               (long long)p->line);
            }
            if (slash2) {
                if (parse_index(p, slash2 + 1, stop, p->normals.count / 3, "normal", &key[2], err) != 0)
                    return -1;
                p->has_normals = 1;
            }
        }
        if (int_push(&p->corner_keys, key, 3) != 0)
            return od_fail(err, "%s:%lld: out of memory", p->source, (long long)p->line);
        s = skip_space(stop, end);
    }
    int64_t corners = p->corner_keys.count / 3;
    if (corners == 0)
        return od_fail(err, "%s:%lld: expected at least 3 corners in a face, got 0", p->source, (long long)p->line);

    /* Counts distinct positions up to 3, which is all a face needs. */
    int32_t distinct[3];
    int distinct_count = 0;
    for (int64_t c = 0; c < corners && distinct_count < 3; c++) {
        int32_t position = p->corner_keys.data[c * 3];
        int seen = 0;
        for (int k = 0; k < distinct_count; k++)
            seen |= distinct[k] == position;
        if (!seen)
            distinct[distinct_count++] = position;
    }
    if (distinct_count < 3) {
        p->skipped_faces++;
        return 0;
    }

    int32_t first = -1, previous = -1;
    const int32_t *keys = p->corner_keys.data;
    for (int64_t c = 0; c < corners; c++) {
        int32_t vertex = corner_vertex(p, p->corner_keys.data + c * 3);
        if (vertex < 0 || p->vertex_refs.count / 3 > OD_MESH_MAX_ELEMENTS)
            return od_fail(err, "%s:%lld: out of memory or over %lld vertices", p->source, (long long)p->line,
                           (long long)OD_MESH_MAX_ELEMENTS);
        if (c == 0) {
            first = vertex;
        } else if (c >= 2 && (keys[0] == keys[(c - 1) * 3] || keys[0] == keys[c * 3] ||
                              keys[(c - 1) * 3] == keys[c * 3])) {
            p->skipped_triangles++;
        } else if (c >= 2) {
            /* Fan from the first corner. */
            int32_t tri[3] = {first, previous, vertex};
            int32_t material = p->current_material, part = p->current_part;
            if (int_push(&p->faces, tri, 3) != 0 || int_push(&p->face_materials, &material, 1) != 0 ||
                int_push(&p->face_parts, &part, 1) != 0)
                return od_fail(err, "%s:%lld: out of memory", p->source, (long long)p->line);
            if (p->faces.count / 3 > OD_MESH_MAX_ELEMENTS)
                return od_fail(err, "%s:%lld: more than %lld faces", p->source, (long long)p->line,
                               (long long)OD_MESH_MAX_ELEMENTS);
        }
        previous = vertex;
    }
    return 0;
}

static int handle_obj_line(obj_parser *p, const char *keyword, size_t length, const char *rest, const char *end,
                           const char *source, int64_t line, od_error *err)
{
    p->line = line;
    int bad;
    if (keyword_is(keyword, length, "v")) {
        float values[7];
        int n = parse_floats(p, rest, end, values, 7, &bad);
        /* x y z, x y z w, or x y z r g b. */
        if (bad || (n != 3 && n != 4 && n != 6))
            return od_fail(err, "%s:%lld: expected 3, 4 or 6 numbers after v", source, (long long)line);
        if (p->positions.count / 3 >= OD_MESH_MAX_ELEMENTS)
            return od_fail(err, "%s:%lld: more than %lld vertices", source, (long long)line,
                           (long long)OD_MESH_MAX_ELEMENTS);
        float white[3] = {1, 1, 1};
        if (n == 6)
            p->has_colors = 1;
        if (float_push(&p->positions, values, 3) != 0 || float_push(&p->colors, n == 6 ? values + 3 : white, 3) != 0)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        return 0;
    }
    if (keyword_is(keyword, length, "vt")) {
        float values[3];
        int n = parse_floats(p, rest, end, values, 3, &bad);
        if (bad || n < 1)
            return od_fail(err, "%s:%lld: expected 1 to 3 numbers after vt", source, (long long)line);
        if (n == 1)
            values[1] = 0;
        if (float_push(&p->uvs, values, 2) != 0)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        return 0;
    }
    if (keyword_is(keyword, length, "vn")) {
        float values[3];
        int n = parse_floats(p, rest, end, values, 3, &bad);
        if (bad || n != 3)
            return od_fail(err, "%s:%lld: expected 3 numbers after vn", source, (long long)line);
        if (float_push(&p->normals, values, 3) != 0)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        return 0;
    }
    if (keyword_is(keyword, length, "f"))
        return parse_face(p, rest, end, err);
    if (keyword_is(keyword, length, "g") || keyword_is(keyword, length, "o"))
        return find_or_add_part(p, rest, end, err);
    if (keyword_is(keyword, length, "usemtl")) {
        char *name = copy_trimmed(rest, end);
        if (!name)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        if (!name[0]) {
            free(name);
            return od_fail(err, "%s:%lld: expected a material name after usemtl", source, (long long)line);
        }
        p->current_material = find_or_add_material(p, name);
        free(name);
        if (p->current_material < 0)
            return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
        return 0;
    }
    if (keyword_is(keyword, length, "mtllib")) {
        if (!p->options.read_materials)
            return 0;
        /* Several file names may follow; each is read in turn. */
        const char *s = skip_space(rest, end);
        if (s >= end)
            return od_fail(err, "%s:%lld: expected a file name after mtllib", source, (long long)line);
        while (s < end) {
            const char *stop = token_end(s, end);
            char *name = copy_trimmed(s, stop);
            if (!name)
                return od_fail(err, "%s:%lld: out of memory", source, (long long)line);
            int rc = read_mtl(p, name, err);
            free(name);
            if (rc != 0)
                return -1;
            s = skip_space(stop, end);
        }
        return 0;
    }
    /* s, l, p, curv and other statements do not affect the triangles. */
    return 0;
}

/* Moves the parser's arrays into an od_mesh. */
static int build_mesh(obj_parser *p, od_mesh *out, od_error *err)
{
    int64_t v_count = p->vertex_refs.count / 3, f_count = p->faces.count / 3;
    if (od_mesh_new(v_count, f_count, p->has_normals, p->has_uvs, p->has_colors, out, err) != 0)
        return -1;
    for (int64_t v = 0; v < v_count; v++) {
        const int32_t *ref = p->vertex_refs.data + v * 3;
        memcpy(out->positions + v * 3, p->positions.data + (int64_t)ref[0] * 3, 3 * sizeof(float));
        if (out->colors)
            memcpy(out->colors + v * 3, p->colors.data + (int64_t)ref[0] * 3, 3 * sizeof(float));
        if (out->uvs && ref[1] >= 0)
            memcpy(out->uvs + v * 2, p->uvs.data + (int64_t)ref[1] * 2, 2 * sizeof(float));
        if (out->normals && ref[2] >= 0) {
            const float *n = p->normals.data + (int64_t)ref[2] * 3;
            float length = sqrtf(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
            for (int c = 0; c < 3; c++)
                out->normals[v * 3 + c] = length > 0 ? n[c] / length : 0;
        }
    }
    if (f_count) {
        memcpy(out->faces, p->faces.data, (size_t)f_count * 3 * sizeof(int32_t));
        memcpy(out->face_materials, p->face_materials.data, (size_t)f_count * sizeof(int32_t));
        memcpy(out->face_parts, p->face_parts.data, (size_t)f_count * sizeof(int32_t));
    }
    /* Hand over parts and materials; the parser no longer owns them. */
    for (int i = 0; i < out->part_count; i++)
        free(out->part_names[i]);
    free(out->part_names);
    out->part_names = p->parts;
    out->part_count = p->part_count;
    p->parts = NULL;
    p->part_count = 0;
    out->materials = p->materials;
    out->material_count = p->material_count;
    p->materials = NULL;
    p->material_count = 0;
    return 0;
}

int od_mesh_parse_obj(const char *text, size_t size, const char *source, const char *base_dir,
                      const od_mesh_obj_options *options, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    obj_parser p;
    memset(&p, 0, sizeof p);
    p.source = source ? source : "OBJ text";
    p.base_dir = base_dir;
    p.options = options ? *options : od_mesh_obj_options_default();
    p.current_material = -1;
    int rc = find_or_add_part(&p, "default", "default" + 7, err);
    if (rc == 0)
        rc = for_each_line(&p, text, size, p.source, handle_obj_line, err);
    if (rc == 0 && (p.skipped_faces > 0 || p.skipped_triangles > 0))
        od_log_warn("mesh", "%s: skipped %lld faces with fewer than 3 distinct corners and %lld fan triangles "
                            "with a repeated corner",
                    p.source, (long long)p.skipped_faces, (long long)p.skipped_triangles);
    if (rc == 0 && p.faces.count == 0)
        rc = od_fail(err, "%s: no faces (expected at least one 'f' line with 3 distinct corners)", p.source);
    if (rc == 0 && p.options.read_textures)
        for (int i = 0; i < p.material_count && rc == 0; i++)
            if (p.materials[i].texture_path)
                rc = od_image_read(p.materials[i].texture_path, NULL, &p.materials[i].texture, err) == 0
                         ? 0
                         : od_fail_context(err, "%s: material %s", p.source, p.materials[i].name);
    if (rc == 0)
        rc = build_mesh(&p, out, err);
    parser_free(&p);
    return rc;
}

int od_mesh_read_obj(const char *path, const od_mesh_obj_options *options, od_mesh *out, od_error *err)
{
    memset(out, 0, sizeof *out);
    char *text;
    size_t size;
    if (read_text_file(path, &text, &size, err) != 0)
        return -1;
    /* mtllib names are relative to the OBJ file's folder. */
    char *dir = strdup(path);
    if (!dir) {
        free(text);
        return od_fail(err, "%s: out of memory", path);
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        dir[0] = 0;
    int rc = od_mesh_parse_obj(text, size, path, slash ? dir : NULL, options, out, err);
    free(dir);
    free(text);
    return rc;
}
