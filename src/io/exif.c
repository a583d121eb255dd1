/* EXIF orientation: a bounds-checked walk of IFD0 in the TIFF structure
 * that an APP1 "Exif" segment carries. */
#include "io/exif.h"

#include <stdint.h>
#include <string.h>

#define EXIF_SIGNATURE_SIZE 6  /* "Exif\0\0" */
#define TIFF_HEADER_SIZE 8     /* byte order, 42, offset of IFD0 */
#define IFD_ENTRY_SIZE 12      /* tag, type, count, value or offset */
#define TAG_ORIENTATION 0x0112
#define TYPE_SHORT 3

static unsigned read_u16(const unsigned char *p, int big_endian)
{
    return big_endian ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[1] << 8 | p[0]);
}

static uint32_t read_u32(const unsigned char *p, int big_endian)
{
    if (big_endian)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int od_exif_orientation(const unsigned char *payload, size_t size)
{
    if (payload == NULL || size < EXIF_SIGNATURE_SIZE + TIFF_HEADER_SIZE)
        return 1;
    if (memcmp(payload, "Exif\0\0", EXIF_SIGNATURE_SIZE) != 0)
        return 1;

    /* Offsets inside the TIFF structure count from its first byte. */
    const unsigned char *tiff = payload + EXIF_SIGNATURE_SIZE;
    size_t tiff_size = size - EXIF_SIGNATURE_SIZE;
    int big_endian;
    if (tiff[0] == 'I' && tiff[1] == 'I')
        big_endian = 0;
    else if (tiff[0] == 'M' && tiff[1] == 'M')
        big_endian = 1;
    else
        return 1;
    if (read_u16(tiff + 2, big_endian) != 42)
        return 1;

    uint32_t ifd = read_u32(tiff + 4, big_endian);
    if (ifd > tiff_size || tiff_size - ifd < 2)
        return 1;
    unsigned entry_count = read_u16(tiff + ifd, big_endian);
    size_t entries_size = (size_t)entry_count * IFD_ENTRY_SIZE;
    if (tiff_size - ifd - 2 < entries_size)
        return 1;

    for (unsigned i = 0; i < entry_count; i++) {
        const unsigned char *entry = tiff + ifd + 2 + (size_t)i * IFD_ENTRY_SIZE;
        if (read_u16(entry, big_endian) != TAG_ORIENTATION)
            continue;
        /* A single SHORT sits left-aligned in the 4-byte value field. */
        if (read_u16(entry + 2, big_endian) != TYPE_SHORT || read_u32(entry + 4, big_endian) != 1)
            return 1;
        unsigned orientation = read_u16(entry + 8, big_endian);
        return orientation >= 1 && orientation <= 8 ? (int)orientation : 1;
    }
    return 1;
}

void od_exif_upright_position(int orientation, int width, int height, int x, int y, int *upright_x,
                              int *upright_y)
{
    switch (orientation) {
    case 2:
        *upright_x = width - 1 - x;
        *upright_y = y;
        break;
    case 3:
        *upright_x = width - 1 - x;
        *upright_y = height - 1 - y;
        break;
    case 4:
        *upright_x = x;
        *upright_y = height - 1 - y;
        break;
    case 5:
        *upright_x = y;
        *upright_y = x;
        break;
    case 6:
        *upright_x = height - 1 - y;
        *upright_y = x;
        break;
    case 7:
        *upright_x = height - 1 - y;
        *upright_y = width - 1 - x;
        break;
    case 8:
        *upright_x = y;
        *upright_y = width - 1 - x;
        break;
    default:
        *upright_x = x;
        *upright_y = y;
        break;
    }
}
