/* Writes the tiny test model of learned_tiny_model.h, for the shell
 * checks: learned_make_model PATH [SEED [DENSITY_BIAS [BOXES]]], where a
 * DENSITY_BIAS of "nan" keeps the initial bias and BOXES is written as
 * localization.boxes. */
#include <stdio.h>
#include <stdlib.h>

#include "learned_tiny_model.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: learned_make_model PATH [SEED [DENSITY_BIAS [BOXES]]]\n");
        return 2;
    }
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    float bias = argc > 3 ? strtof(argv[3], NULL) : NAN;
    od_error err = {{0}};
    const char *boxes = argc > 4 ? argv[4] : NULL;
    if (tiny_model_write(argv[1], seed, bias, boxes, &err) != 0) {
        fprintf(stderr, "learned_make_model: %s\n", err.message);
        return 1;
    }
    return 0;
}
