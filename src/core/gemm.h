/* Single-precision matrix product for linear layers and attention.
 *
 * Row-major C = alpha * op(A) * op(B) + beta * C, where op(X) is X or X^T as
 * trans_a / trans_b say ('N' or 'T'). A is M x K after op, B is K x N after
 * op, C is M x N; lda, ldb and ldc are the row strides of the stored
 * matrices. It calls oneDNN's dnnl_sgemm, which runs on the same OpenMP
 * threads as the rest of oddone (OpenBLAS's pthread build would run its own
 * pool beside them). */
#ifndef ODDONE_CORE_GEMM_H
#define ODDONE_CORE_GEMM_H

#include <stdint.h>

void od_sgemm(char trans_a, char trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc);

#endif
