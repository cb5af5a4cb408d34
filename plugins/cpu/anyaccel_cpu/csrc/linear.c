/* linear.gemm in float32 for a few input rows (decode) and the plain [N, K] weight layout:
 * out[m] = W x[m] + bias. Work items are blocks of ROWS output features; each reads its weight rows one
 * after another (one sequential stream), each row once per DOT_TILE input rows, through dots.h; each thread
 * takes one contiguous range of blocks (long streams for the prefetchers, see q8dot.c). Many input rows are
 * the caller's to send to a packing BLAS. */
#include "dots.h"

enum { ROWS = 64 };

static inline float biased(const float *bias, int64_t n, float value) { return bias ? value + bias[n] : value; }

/* x [M, K] with row stride ldx; w [N, K] contiguous; bias [N] or NULL; out [M, N] contiguous. */
void anyaccel_gemm_f32(const float *x, int64_t M, int64_t K, int64_t ldx, const float *w, int64_t N,
                       const float *bias, float *out) {
    int64_t blocks = (N + ROWS - 1) / ROWS;
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t item = 0; item < blocks; item++) {
        int64_t n0 = item * ROWS, n1 = n0 + ROWS < N ? n0 + ROWS : N;
        if (M == 1) { /* one weight row at a time: one sequential stream (dots.h) */
            for (int64_t n = n0; n < n1; n++) out[n] = biased(bias, n, dot1(w + n * K, x, K));
            continue;
        }
        for (int64_t m0 = 0; m0 < M; m0 += DOT_TILE) {
            int m = (int)(M - m0 < DOT_TILE ? M - m0 : DOT_TILE);
            const float *xs[DOT_TILE];
            for (int j = 0; j < m; j++) xs[j] = x + (m0 + j) * ldx;
            for (int64_t n = n0; n < n1; n++) {
                float o[DOT_TILE];
                dots1(w + n * K, xs, m, K, o);
                for (int j = 0; j < m; j++) out[(m0 + j) * N + n] = biased(bias, n, o[j]);
            }
        }
    }
}
