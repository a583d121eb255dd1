#include "core/dnnl_util.h"

#include <stddef.h>

static dnnl_engine_t shared_engine;
static dnnl_stream_t shared_stream;

dnnl_engine_t od_dnnl_engine(od_error *err)
{
    if (shared_engine != NULL)
        return shared_engine;
    dnnl_engine_t engine = NULL;
    if (od_dnnl_check(dnnl_engine_create(&engine, dnnl_cpu, 0), "creating the oneDNN CPU engine", err))
        return NULL;
    shared_engine = engine;
    return shared_engine;
}

dnnl_stream_t od_dnnl_stream(od_error *err)
{
    if (shared_stream != NULL)
        return shared_stream;
    dnnl_engine_t engine = od_dnnl_engine(err);
    if (engine == NULL)
        return NULL;
    dnnl_stream_t stream = NULL;
    if (od_dnnl_check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags),
                      "creating the oneDNN stream", err))
        return NULL;
    shared_stream = stream;
    return shared_stream;
}

const char *od_dnnl_status_name(dnnl_status_t status)
{
    switch (status) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown status";
    }
}

int od_dnnl_check(dnnl_status_t status, const char *what, od_error *err)
{
    if (status == dnnl_success)
        return 0;
    return od_fail(err, "%s: oneDNN returned \"%s\"", what, od_dnnl_status_name(status));
}
