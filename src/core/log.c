#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static od_log_level current_level = OD_LOG_INFO;

void od_log_set_level(od_log_level level) { current_level = level; }

od_log_level od_log_get_level(void) { return current_level; }

void od_log(od_log_level level, const char *module, const char *format, ...)
{
    if (level > current_level)
        return;
    /* One fprintf for the whole line keeps lines from two threads apart. */
    char line[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    const char *prefix = level == OD_LOG_ERROR ? "error: " : level == OD_LOG_WARN ? "warning: " : "";
    fprintf(stderr, "%s: %s%s\n", module, prefix, line);
}
