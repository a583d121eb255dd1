#include "io/folder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int make_one(const char *path, const char *requested, od_error *err)
{
    if (mkdir(path, 0777) == 0)
        return 0;
    int saved = errno;
    struct stat info;
    if (stat(path, &info) == 0) {
        if (S_ISDIR(info.st_mode))
            return 0;
        return od_fail(err, "%s: %s exists and is not a folder; expected an output folder", requested, path);
    }
    return od_fail(err, "%s: cannot create the folder %s: %s", requested, path, strerror(saved));
}

int od_make_folders(const char *path, od_error *err)
{
    if (path == NULL || path[0] == '\0')
        return od_fail(err, "output folder: empty path; expected a folder name");
    char *copy = malloc(strlen(path) + 1);
    if (copy == NULL)
        return od_fail(err, "%s: out of memory", path);
    strcpy(copy, path);

    /* Create each prefix that ends before a '/', then the whole path. */
    int status = 0;
    for (char *slash = strchr(copy + 1, '/'); slash != NULL && status == 0; slash = strchr(slash + 1, '/')) {
        if (slash[-1] == '/')
            continue;
        *slash = '\0';
        status = make_one(copy, path, err);
        *slash = '/';
    }
    if (status == 0)
        status = make_one(copy, path, err);
    free(copy);
    return status;
}
