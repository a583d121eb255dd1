/* Fuzz target: the OFF reader (od_mesh_parse_off), then, on whatever
 * reads, the preparation every mesh goes through (normalise, weld,
 * normals, parts). Built by scripts/fuzz.sh with libFuzzer, and replayed
 * over tests/fuzz/corpus/mesh_off/ by ctest. */
#include <stdint.h>
#include <stdlib.h>

#include "synth/mesh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    od_mesh mesh;
    od_error err;
    if (od_mesh_parse_off(data, size, "fuzz.off", &mesh, &err) != 0)
        return 0;
    int32_t *labels = malloc(((size_t)mesh.face_count + 1) * sizeof(int32_t));
    if (labels)
        od_mesh_find_parts(&mesh, labels, NULL, &err);
    free(labels);
    od_mesh_prepare(&mesh, NULL, &err);
    od_mesh_free(&mesh);
    return 0;
}
