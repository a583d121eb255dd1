/* Files written under a temporary name and renamed into place on success,
 * so that a reader never sees a partial file, even after a crash or a full
 * disk. The temporary file sits in the destination's directory, because
 * rename(2) is atomic only within one file system. */
#ifndef ODDONE_IO_ATOMIC_FILE_H
#define ODDONE_IO_ATOMIC_FILE_H

#include <stdio.h>

#include "core/error.h"

typedef struct od_atomic_file {
    FILE *stream;      /* write here between open and commit */
    char *final_path;
    char *temp_path;
} od_atomic_file;

/* Creates "<path>.tmp.XXXXXX" and opens it for writing. */
int od_atomic_open(od_atomic_file *file, const char *path, od_error *err);

/* Flushes, syncs and closes the temporary file, then renames it to the
 * final path. On any failure the temporary file is removed. */
int od_atomic_commit(od_atomic_file *file, od_error *err);

/* Sets whether this thread's commits sync each file before the rename
 * (1, the default) or only flush it (0), leaving the sync to one
 * od_atomic_sync_folder call after a batch of files. A writer of many
 * small files (the scene generator writes seven PNG files per view) then
 * waits for the disk once per batch instead of once per file. Returns the
 * previous setting. Until that sync a crash can leave a renamed file
 * empty or short, so a batch is complete only when a file written after
 * the sync (the scene's metadata) exists. */
int od_atomic_set_sync(int sync_each);

/* Flushes to disk every file written so far on the file system that contains
 * `folder` (syncfs on Linux, sync elsewhere), then the folder's entries. */
int od_atomic_sync_folder(const char *folder, od_error *err);

/* Closes and removes the temporary file; safe to call after commit. */
void od_atomic_abort(od_atomic_file *file);

#endif
