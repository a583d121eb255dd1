/* Errors as values.
 *
 * A function that can fail takes an `od_error *` as its last argument and
 * returns 0 on success or -1 on failure. On failure it has written one
 * message into the error that names the file, field or value and what was
 * expected. `err` may be NULL when the caller does not want the message. */
#ifndef ODDONE_CORE_ERROR_H
#define ODDONE_CORE_ERROR_H

#include <stddef.h>

#define OD_ERROR_MESSAGE_SIZE 1024

typedef struct od_error {
    char message[OD_ERROR_MESSAGE_SIZE];
} od_error;

/* Formats the message into err (when not NULL) and returns -1. */
int od_fail(od_error *err, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "context: " to the message already in err and returns -1. */
int od_fail_context(od_error *err, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the message. */
void od_error_clear(od_error *err);

#endif
