/* nftw() is an X/Open extension. */
#define _XOPEN_SOURCE 700

#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

static int checks_failed_in_test;
static int tests_passed;
static int tests_failed;
static const char *current_test = "?";

void od_test_record(int passed, const char *file, int line, const char *text)
{
    if (passed)
        return;
    checks_failed_in_test++;
    fprintf(stderr, "%s:%d: %s: check failed: %s\n", file, line, current_test, text);
}

void od_test_run(const char *name, void (*function)(void))
{
    current_test = name;
    checks_failed_in_test = 0;
    function();
    if (checks_failed_in_test == 0) {
        tests_passed++;
        fprintf(stderr, "PASS %s\n", name);
    } else {
        tests_failed++;
        fprintf(stderr, "FAIL %s (%d checks failed)\n", name, checks_failed_in_test);
    }
}

int od_test_finish(void)
{
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed == 0 ? 0 : 1;
}

int od_check_close(const char *what, const float *got, const float *want, int64_t count, float atol,
                   float rtol, const char *file, int line)
{
    int64_t worst = -1;
    double worst_excess = 0.0;
    int64_t bad = 0;
    double max_abs_error = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double error = fabs((double)got[i] - (double)want[i]);
        double limit = atol + rtol * fabs((double)want[i]);
        if (error > max_abs_error || isnan(error))
            max_abs_error = error;
        if (!(error <= limit)) {
            bad++;
            double excess = isnan(error) ? INFINITY : error - limit;
            if (worst < 0 || excess > worst_excess) {
                worst = i;
                worst_excess = excess;
            }
        }
    }
    if (bad == 0)
        return 1;
    char text[512];
    snprintf(text, sizeof text,
             "%s: %lld of %lld elements outside atol %g rtol %g; worst [%lld] got %.8g want %.8g; "
             "max abs error %.3g",
             what, (long long)bad, (long long)count, atol, rtol, (long long)worst, got[worst], want[worst],
             max_abs_error);
    od_test_record(0, file, line, text);
    return 0;
}

int od_check_identical(const char *what, const float *a, const float *b, int64_t count, const char *file,
                       int line)
{
    for (int64_t i = 0; i < count; i++) {
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            char text[256];
            snprintf(text, sizeof text, "%s: element %lld differs: %.9g vs %.9g", what, (long long)i, a[i], b[i]);
            od_test_record(0, file, line, text);
            return 0;
        }
    }
    return 1;
}

const char *od_test_source_path(const char *relative)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", ODDONE_SOURCE_DIR, relative);
    return path;
}

od_safetensors *od_test_load_reference(const char *name)
{
    char relative[512];
    snprintf(relative, sizeof relative, "tests/ref/%s.safetensors", name);
    od_error err;
    od_safetensors *st = od_safetensors_read(od_test_source_path(relative), &err);
    if (st == NULL)
        od_test_record(0, __FILE__, __LINE__, err.message);
    return st;
}

od_tensor *od_test_tensor(const od_safetensors *reference, const char *name)
{
    od_error err;
    od_tensor *t = od_safetensors_get(reference, name, -1, NULL, &err);
    if (t == NULL)
        od_test_record(0, __FILE__, __LINE__, err.message);
    return t;
}

/* Folders made by od_test_temp_dir, removed at exit. */
static char **temp_dirs;
static size_t temp_dir_count;

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *walk)
{
    (void)info;
    (void)type;
    (void)walk;
    remove(path);
    return 0;
}

static void remove_temp_dirs(void)
{
    const char *keep = getenv("ODDONE_KEEP_TEST_FILES");
    for (size_t i = 0; i < temp_dir_count; i++) {
        if (keep == NULL || *keep == '\0')
            nftw(temp_dirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(temp_dirs[i]);
    }
    free(temp_dirs);
}

const char *od_test_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/oddone-test-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    if (temp_dir_count == 0)
        atexit(remove_temp_dirs);
    char **grown = realloc(temp_dirs, (temp_dir_count + 1) * sizeof *grown);
    char *copy = malloc(strlen(path) + 1);
    if (grown == NULL || copy == NULL) {
        perror("od_test_temp_dir");
        exit(2);
    }
    strcpy(copy, path);
    temp_dirs = grown;
    temp_dirs[temp_dir_count++] = copy;
    return copy;
}
