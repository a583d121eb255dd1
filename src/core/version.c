/* The public version and thread calls of include/oddone.h. */
#include "oddone.h"

#include "core/threads.h"

#define STRINGIFY_VALUE(x) #x
#define STRINGIFY(x) STRINGIFY_VALUE(x)

const char *oddone_version(void)
{
    return STRINGIFY(ODDONE_VERSION_MAJOR) "." STRINGIFY(ODDONE_VERSION_MINOR) "." STRINGIFY(ODDONE_VERSION_PATCH);
}

void oddone_set_num_threads(int count) { od_set_num_threads(count); }
