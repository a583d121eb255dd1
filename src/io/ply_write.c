/* PLY point clouds; see ply_write.h. */
#include "io/ply_write.h"

#include <string.h>

#include "io/atomic_file.h"

/* Appends a float as little-endian bytes whatever the host's order. */
static void put_float_le(unsigned char *out, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    for (int i = 0; i < 4; i++)
        out[i] = (unsigned char)(bits >> (8 * i));
}

int od_ply_write_points(const char *path, const float *positions, const uint8_t *colors, int64_t count,
                        const char *comment, od_error *err)
{
    if (path == NULL || (count > 0 && (positions == NULL || colors == NULL)))
        return od_fail(err, "ply: NULL path, positions or colours");
    if (count < 0)
        return od_fail(err, "ply: negative point count %lld for %s", (long long)count, path);
    if (comment != NULL && strpbrk(comment, "\r\n") != NULL)
        return od_fail(err, "ply: the header comment for %s contains a line break", path);
    od_atomic_file file;
    if (od_atomic_open(&file, path, err) != 0)
        return -1;
    fprintf(file.stream, "ply\nformat binary_little_endian 1.0\n");
    if (comment != NULL)
        fprintf(file.stream, "comment %s\n", comment);
    fprintf(file.stream,
            "element vertex %lld\nproperty float x\nproperty float y\nproperty float z\n"
            "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n",
            (long long)count);
    for (int64_t i = 0; i < count; i++) {
        unsigned char record[15];
        for (int a = 0; a < 3; a++)
            put_float_le(record + 4 * a, positions[3 * i + a]);
        memcpy(record + 12, colors + 3 * i, 3);
        if (fwrite(record, sizeof record, 1, file.stream) != 1) {
            od_atomic_abort(&file);
            return od_fail(err, "ply: writing %s failed", path);
        }
    }
    return od_atomic_commit(&file, err);
}
