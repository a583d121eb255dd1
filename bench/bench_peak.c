/* Measures this machine's FP32 peak with a loop of independent fused
 * multiply-adds on every thread, the denominator of the "fraction of peak"
 * column in bench/run.sh. It prints one BENCH line named "peak_fma" whose
 * flops and milliseconds give GFLOP/s; the peak is the best of several runs. */
#include <immintrin.h>
#include <omp.h>

#include "benchlib.h"

/* Enough independent accumulators to cover FMA latency (4 cycles) times the
 * number of FMA pipes (2) on current x86 cores. */
#define ACCUMULATORS 12
#define ITERATIONS 20000000L

#if defined(__AVX512F__)
typedef __m512 vector;
#define VECTOR_FLOATS 16
#define vector_set1 _mm512_set1_ps
#define vector_fma _mm512_fmadd_ps
#define vector_add _mm512_add_ps
#define vector_sum _mm512_reduce_add_ps
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vector;
#define VECTOR_FLOATS 8
#define vector_set1 _mm256_set1_ps
#define vector_fma _mm256_fmadd_ps
#define vector_add _mm256_add_ps
static float vector_sum(__m256 v)
{
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float total = 0.0f;
    for (int i = 0; i < 8; i++)
        total += lanes[i];
    return total;
}
#else
#error "bench_peak needs AVX2 with FMA or AVX-512"
#endif

static volatile float sink;

static void fma_loop(void *context)
{
    (void)context;
#pragma omp parallel
    {
        vector acc[ACCUMULATORS];
        for (int i = 0; i < ACCUMULATORS; i++)
            acc[i] = vector_set1(1.0f + 1e-3f * (float)(i + omp_get_thread_num()));
        const vector a = vector_set1(0.999999f);
        const vector b = vector_set1(1e-7f);
        for (long n = 0; n < ITERATIONS / 10; n++)
            for (int i = 0; i < ACCUMULATORS; i++)
                acc[i] = vector_fma(acc[i], a, b);
        vector total = acc[0];
        for (int i = 1; i < ACCUMULATORS; i++)
            total = vector_add(total, acc[i]);
        sink = vector_sum(total);
    }
}

int main(void)
{
    int threads = omp_get_max_threads();
    double flops = 2.0 * VECTOR_FLOATS * ACCUMULATORS * (double)(ITERATIONS / 10) * threads;
    double best = 1e300;
    for (int run = 0; run < 5; run++) {
        double ms = bench_median_ms(fma_loop, NULL, 1, 3);
        if (ms < best)
            best = ms;
    }
    fprintf(stderr, "peak: %d threads, %d-float vectors, %.1f GFLOP/s\n", threads, VECTOR_FLOATS,
            flops / (best * 1e6));
    bench_report("peak_fma", best, flops);
    return 0;
}
