/* Timing helpers shared by the bench_*.c programs.
 *
 * Every benchmark prints one line per measured case:
 *     BENCH<TAB>name<TAB>milliseconds<TAB>flops
 * where milliseconds is the median of the timed repeats and flops the
 * floating-point operations of one call (0 when not meaningful). The
 * PyTorch peers in bench/torch_*.py print the same line with the same
 * name, and bench/run.sh joins the two into one table. */
#ifndef ODDONE_BENCH_BENCHLIB_H
#define ODDONE_BENCH_BENCHLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int bench_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs body(context) `warmup` times untimed, then `repeats` times timed
 * (at most 64), and returns the median in milliseconds. */
static inline double bench_median_ms(void (*body)(void *), void *context, int warmup, int repeats)
{
    double times[64];
    if (repeats > 64)
        repeats = 64;
    for (int i = 0; i < warmup; i++)
        body(context);
    for (int i = 0; i < repeats; i++) {
        double start = bench_now_ms();
        body(context);
        times[i] = bench_now_ms() - start;
    }
    qsort(times, (size_t)repeats, sizeof times[0], bench_compare_doubles);
    return times[repeats / 2];
}

static inline void bench_report(const char *name, double ms, double flops)
{
    printf("BENCH\t%s\t%.4f\t%.0f\n", name, ms, flops);
    fflush(stdout);
}

#endif
