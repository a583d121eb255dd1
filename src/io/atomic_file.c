/* syncfs is Linux's; the rest of the code base is C11 plus POSIX 2008. */
#ifdef __linux__
#define _GNU_SOURCE
#endif
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether this thread's commits sync each file; see od_atomic_set_sync. */
static _Thread_local int sync_each_file = 1;

int od_atomic_set_sync(int sync_each)
{
    int previous = sync_each_file;
    sync_each_file = sync_each != 0;
    return previous;
}

int od_atomic_sync_folder(const char *folder, od_error *err)
{
    int descriptor = open(folder, O_RDONLY | O_DIRECTORY);
    if (descriptor < 0)
        return od_fail(err, "%s: cannot open the folder to sync it: %s", folder, strerror(errno));
    int failed = 0;
#ifdef __linux__
    failed = syncfs(descriptor) != 0;
#else
    sync();
#endif
    failed = failed || fsync(descriptor) != 0;
    int saved = errno;
    close(descriptor);
    if (failed)
        return od_fail(err, "%s: sync failed: %s", folder, strerror(saved));
    return 0;
}

static char *duplicate_string(const char *text)
{
    size_t length = strlen(text) + 1;
    char *copy = malloc(length);
    if (copy != NULL)
        memcpy(copy, text, length);
    return copy;
}

int od_atomic_open(od_atomic_file *file, const char *path, od_error *err)
{
    memset(file, 0, sizeof *file);
    static const char suffix[] = ".tmp.XXXXXX";
    size_t length = strlen(path);
    file->temp_path = malloc(length + sizeof suffix);
    file->final_path = duplicate_string(path);
    if (file->temp_path == NULL || file->final_path == NULL) {
        od_atomic_abort(file);
        return od_fail(err, "%s: out of memory", path);
    }
    memcpy(file->temp_path, path, length);
    memcpy(file->temp_path + length, suffix, sizeof suffix);

    int descriptor = mkstemp(file->temp_path);
    if (descriptor < 0) {
        int saved = errno;
        free(file->temp_path);
        file->temp_path = NULL;
        od_atomic_abort(file);
        return od_fail(err, "%s: cannot create a temporary file beside it: %s", path, strerror(saved));
    }
    /* mkstemp creates the file with mode 0600; give it the usual mode. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(descriptor, 0666 & ~mask);

    file->stream = fdopen(descriptor, "wb");
    if (file->stream == NULL) {
        int saved = errno;
        close(descriptor);
        od_atomic_abort(file);
        return od_fail(err, "%s: cannot open the temporary file: %s", path, strerror(saved));
    }
    return 0;
}

int od_atomic_commit(od_atomic_file *file, od_error *err)
{
    const char *path = file->final_path;
    int failed = 0;
    int saved = 0;
    if (fflush(file->stream) != 0 || ferror(file->stream)) {
        failed = 1;
        saved = errno;
    }
    if (!failed && sync_each_file && fsync(fileno(file->stream)) != 0) {
        failed = 1;
        saved = errno;
    }
    if (fclose(file->stream) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    file->stream = NULL;
    if (!failed && rename(file->temp_path, path) != 0) {
        failed = 1;
        saved = errno;
    }
    if (failed) {
        od_fail(err, "%s: write failed: %s", path, strerror(saved));
        od_atomic_abort(file);
        return -1;
    }
    free(file->temp_path);
    free(file->final_path);
    file->temp_path = NULL;
    file->final_path = NULL;
    return 0;
}

void od_atomic_abort(od_atomic_file *file)
{
    if (file->stream != NULL) {
        fclose(file->stream);
        file->stream = NULL;
    }
    if (file->temp_path != NULL) {
        unlink(file->temp_path);
        free(file->temp_path);
        file->temp_path = NULL;
    }
    free(file->final_path);
    file->final_path = NULL;
}
