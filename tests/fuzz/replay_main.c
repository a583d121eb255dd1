/* Replays a fuzz corpus through a fuzz target without libFuzzer, so that
 * every build (gcc included, sanitizers or not) checks the saved inputs.
 * usage: replay_<target> CORPUS_DIR */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (dir == NULL) {
        fprintf(stderr, "replay: cannot open corpus folder %s\n", argv[1]);
        return 1;
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        names = realloc(names, (count + 1) * sizeof *names);
        names[count++] = strdup(entry->d_name);
    }
    closedir(dir);
    qsort(names, count, sizeof *names, compare_names);

    int replayed = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
        FILE *stream = fopen(path, "rb");
        if (stream == NULL)
            continue;
        fseek(stream, 0, SEEK_END);
        long size = ftell(stream);
        fseek(stream, 0, SEEK_SET);
        uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
        size_t got = fread(data, 1, (size_t)size, stream);
        fclose(stream);
        LLVMFuzzerTestOneInput(data, got);
        free(data);
        free(names[i]);
        replayed++;
    }
    free(names);
    if (replayed == 0) {
        fprintf(stderr, "replay: corpus folder %s is empty\n", argv[1]);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("%d passed, 0 failed\n", replayed);
    return 0;
}
