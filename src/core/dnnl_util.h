/* The oneDNN engine and stream that every oneDNN primitive in oddone uses.
 *
 * oneDNN (Debian's libdnnl 2.6, OpenMP runtime) runs on the CPU engine with
 * one in-order stream; both are created on first use and live until exit. */
#ifndef ODDONE_CORE_DNNL_UTIL_H
#define ODDONE_CORE_DNNL_UTIL_H

#include <oneapi/dnnl/dnnl.h>

#include "core/error.h"

/* Returns the CPU engine, or NULL with a message when oneDNN cannot create it. */
dnnl_engine_t od_dnnl_engine(od_error *err);

/* Returns the stream on od_dnnl_engine(). */
dnnl_stream_t od_dnnl_stream(od_error *err);

/* Returns 0 for dnnl_success, else -1 with "what: oneDNN status NAME". */
int od_dnnl_check(dnnl_status_t status, const char *what, od_error *err);

const char *od_dnnl_status_name(dnnl_status_t status);

#endif
