/* A small test harness: checks that count failures without stopping,
 * float comparisons that report the worst element, and loading of the
 * reference values that scripts/make_references.py writes to tests/ref/.
 *
 * A test program calls OD_RUN(function) for each test and returns
 * od_test_finish(), which prints "N passed, N failed". */
#ifndef ODDONE_TESTS_TESTLIB_H
#define ODDONE_TESTS_TESTLIB_H

#include <stdint.h>

#include "core/tensor.h"
#include "io/safetensors.h"

void od_test_record(int passed, const char *file, int line, const char *text);

#define OD_CHECK(condition) od_test_record((condition) ? 1 : 0, __FILE__, __LINE__, #condition)

#define OD_RUN(function) od_test_run(#function, function)

void od_test_run(const char *name, void (*function)(void));
int od_test_finish(void);

/* Checks |got - want| <= atol + rtol * |want| elementwise, and prints the
 * worst element on failure. Returns 1 when all are within tolerance. */
int od_check_close(const char *what, const float *got, const float *want, int64_t count, float atol,
                   float rtol, const char *file, int line);
#define OD_CHECK_CLOSE(what, got, want, count, atol, rtol) \
    od_check_close(what, got, want, count, atol, rtol, __FILE__, __LINE__)

/* Checks that two buffers are bit-identical. */
int od_check_identical(const char *what, const float *a, const float *b, int64_t count, const char *file,
                       int line);
#define OD_CHECK_IDENTICAL(what, a, b, count) od_check_identical(what, a, b, count, __FILE__, __LINE__)

/* Loads tests/ref/<name>.safetensors; returns NULL (and records a failure)
 * when it is missing or invalid. */
od_safetensors *od_test_load_reference(const char *name);

/* Returns a float tensor from a reference file; records a failure and
 * returns NULL when it is missing. */
od_tensor *od_test_tensor(const od_safetensors *reference, const char *name);

/* Returns the path of a file under the source tree in a static buffer. */
const char *od_test_source_path(const char *relative);

/* Returns a fresh empty folder under $TMPDIR for the test's files. Each
 * call makes a new one; all are removed when the program exits, unless
 * ODDONE_KEEP_TEST_FILES is set. */
const char *od_test_temp_dir(void);

#endif
