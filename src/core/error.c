#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int od_fail(od_error *err, const char *format, ...)
{
    if (err == NULL)
        return -1;
    va_list args;
    va_start(args, format);
    vsnprintf(err->message, sizeof err->message, format, args);
    va_end(args);
    return -1;
}

int od_fail_context(od_error *err, const char *format, ...)
{
    if (err == NULL)
        return -1;
    char context[OD_ERROR_MESSAGE_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(context, sizeof context, format, args);
    va_end(args);

    char previous[OD_ERROR_MESSAGE_SIZE];
    memcpy(previous, err->message, sizeof previous);
    int used = snprintf(err->message, sizeof err->message, "%s: ", context);
    if (used > 0 && (size_t)used < sizeof err->message) {
        size_t room = sizeof err->message - (size_t)used;
        strncpy(err->message + used, previous, room - 1);
        err->message[sizeof err->message - 1] = '\0';
    }
    return -1;
}

void od_error_clear(od_error *err)
{
    if (err != NULL)
        err->message[0] = '\0';
}
