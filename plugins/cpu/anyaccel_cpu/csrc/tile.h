/* The micro-kernel for many rows (prefill): a weight block packed k-major, [K][16 * n] floats, times up to
 * TILE_M activation rows, 16 output columns at a time in 2 x TILE_M vector accumulators (12 of the 16 AVX
 * registers): per k, 2 weight loads and TILE_M broadcasts feed 2 x TILE_M FMAs. Packing a block costs one
 * pass over it, which many rows repay; a few rows (decode) use dots.h instead. */
#ifndef ANYACCEL_CPU_TILE_H
#define ANYACCEL_CPU_TILE_H

#include "vec.h"

#define TILE_M 6
#define TILE_N 16

/* packed[k * ld + col0 + r] = w[r * ldw + k] for r < rows, 0 for rows <= r < width (a ragged block). */
static inline void pack_block(const float *w, int64_t ldw, int rows, int width, int64_t K, float *packed,
                              int64_t ld, int col0) {
    for (int64_t k = 0; k < K; k++) {
        float *dst = packed + k * ld + col0;
        for (int r = 0; r < rows; r++) dst[r] = w[r * ldw + k];
        for (int r = rows; r < width; r++) dst[r] = 0.0f;
    }
}

/* out[i][c] = sum_k x[i][k] * packed[k * ld + c] for i < m, c < TILE_N (m a constant where inlined). */
static inline __attribute__((always_inline)) void tile_m(const float *const *x, int m, const float *packed,
                                                         int64_t ld, int64_t K, float out[TILE_M][TILE_N]) {
    v8f a0[TILE_M], a1[TILE_M];
    for (int i = 0; i < m; i++) a0[i] = a1[i] = v8_splat(0.0f);
    for (int64_t k = 0; k < K; k++) {
        v8f w0 = v8_load(packed + k * ld), w1 = v8_load(packed + k * ld + V8);
        for (int i = 0; i < m; i++) {
            v8f xb = v8_splat(x[i][k]);
            a0[i] += xb * w0;
            a1[i] += xb * w1;
        }
    }
    for (int i = 0; i < m; i++) v8_store(out[i], a0[i]), v8_store(out[i] + V8, a1[i]);
}

static inline void tile(const float *const *x, int m, const float *packed, int64_t ld, int64_t K,
                        float out[TILE_M][TILE_N]) {
    switch (m) {
        case 1: tile_m(x, 1, packed, ld, K, out); break;
        case 2: tile_m(x, 2, packed, ld, K, out); break;
        case 3: tile_m(x, 3, packed, ld, K, out); break;
        case 4: tile_m(x, 4, packed, ld, K, out); break;
        case 5: tile_m(x, 5, packed, ld, K, out); break;
        default: tile_m(x, TILE_M, packed, ld, K, out); break;
    }
}

#endif
