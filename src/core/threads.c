#include "core/threads.h"

#include <omp.h>

void od_set_num_threads(int count)
{
    if (count > 0)
        omp_set_num_threads(count);
}

int od_get_num_threads(void) { return omp_get_max_threads(); }
