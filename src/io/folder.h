/* Output folders. */
#ifndef ODDONE_IO_FOLDER_H
#define ODDONE_IO_FOLDER_H

#include "core/error.h"

/* Creates path and any missing parent folders, as `mkdir -p` does. An
 * existing folder is fine; an existing file of that name is an error. */
int od_make_folders(const char *path, od_error *err);

#endif
