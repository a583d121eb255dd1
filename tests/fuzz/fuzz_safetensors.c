/* Fuzz target: the safetensors parser and every typed accessor on
 * whatever it accepts. Built by scripts/fuzz.sh with libFuzzer, and
 * replayed over tests/fuzz/corpus/safetensors/ by ctest. */
#include <stdint.h>
#include <stdlib.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    od_error err;
    od_safetensors *st = od_safetensors_parse(data, size, "fuzz.safetensors", &err);
    if (st == NULL)
        return 0;
    for (size_t i = 0; i < st->count; i++) {
        od_tensor *t = od_safetensors_get(st, st->entries[i].name, -1, NULL, &err);
        od_tensor_free(t);
        int64_t count = 0;
        free(od_safetensors_get_int(st, st->entries[i].name, &count, &err));
    }
    od_safetensors_metadata(st, "format");
    od_safetensors_free(st);
    return 0;
}
