/* Group-quantized GEMMs in float32 for a few input rows (decode), reading the weights as stored:
 *   w4 affine: q [N, K/8] uint32 words (feature 8c+i in bits 4i of word c), w = q * scale + offset per group
 *   w8 group:  q [N, K] int8, w = q * scale per group
 * Per output feature and group, the integer values times x are summed first and scaled once:
 *   out[m, n] = sum_g (scale[n, g] * sum_{k in g} q[n, k] x[m, k] + offset[n, g] * sum_{k in g} x[m, k])
 * so a weight costs a decode and one multiply-add per input row; the group sums of x are computed once per
 * call. Work items are blocks of ROWS output features, each streaming its weight rows once for up to
 * DOT_TILE input rows (more rows repeat the stream per tile). Many input rows are the caller's to send to
 * the dequantize + BLAS path (anyaccel_w4_affine_dequant_f32 / anyaccel_w8_group_dequant_f32). */
#include <stdlib.h>

#include "dots.h"

enum { QROWS = 16 };

typedef int8_t v8c __attribute__((vector_size(8)));
typedef uint32_t v8u __attribute__((vector_size(32)));

/* the 8 four-bit values of a word as floats, value i from bits 4i (one variable shift and a mask) */
static inline v8f nibbles8(uint32_t word) {
    const v8u shifts = {0, 4, 8, 12, 16, 20, 24, 28};
    v8u w = (v8u){0, 0, 0, 0, 0, 0, 0, 0} + word;
    return __builtin_convertvector((v8i)((w >> shifts) & 15u), v8f);
}

static inline v8f bytes8(const int8_t *p) {
    v8c c;
    memcpy(&c, p, sizeof c);
    return __builtin_convertvector(c, v8f);
}

/* sums[m * groups + g] = sum of x[m, k] over group g */
static float *group_sums(const float *x, int64_t M, int64_t K, int64_t ldx, int64_t G) {
    int64_t groups = K / G;
    float *sums = malloc(sizeof(float) * (size_t)(M * groups));
    if (!sums) return NULL;
    for (int64_t m = 0; m < M; m++)
        for (int64_t g = 0; g < groups; g++) {
            v8f acc = v8_splat(0.0f);
            const float *p = x + m * ldx + g * G;
            for (int64_t i = 0; i < G; i += V8) acc += v8_load(p + i);
            sums[m * groups + g] = v8_sum(acc);
        }
    return sums;
}

/* one output feature of the w4 affine format for m (<= DOT_TILE) input rows */
static inline __attribute__((always_inline)) void w4_row(const uint32_t *q, const float *scale,
                                                         const float *offset, const float *const *x,
                                                         const float *const *xs, int m, int64_t K,
                                                         int64_t G, float *o) {
    v8f acc[DOT_TILE];
    float off[DOT_TILE];
    for (int j = 0; j < m; j++) acc[j] = v8_splat(0.0f), off[j] = 0.0f;
    int64_t groups = K / G, words = G / 8;
    for (int64_t g = 0; g < groups; g++) {
        v8f part[DOT_TILE];
        for (int j = 0; j < m; j++) part[j] = v8_splat(0.0f);
        const uint32_t *qg = q + g * words;
        __builtin_prefetch(qg + 128);
        for (int64_t c = 0; c < words; c++) {
            v8f w = nibbles8(qg[c]);
            int64_t k = (g * words + c) * 8;
            for (int j = 0; j < m; j++) part[j] += w * v8_load(x[j] + k);
        }
        v8f s = v8_splat(scale[g]);
        for (int j = 0; j < m; j++) {
            acc[j] += part[j] * s;
            off[j] += offset[g] * xs[j][g];
        }
    }
    for (int j = 0; j < m; j++) o[j] = v8_sum(acc[j]) + off[j];
}

static inline __attribute__((always_inline)) void w8_row(const int8_t *q, const float *scale,
                                                         const float *const *x, int m, int64_t K, int64_t G,
                                                         float *o) {
    v8f acc[DOT_TILE];
    for (int j = 0; j < m; j++) acc[j] = v8_splat(0.0f);
    int64_t groups = K / G;
    for (int64_t g = 0; g < groups; g++) {
        v8f part[DOT_TILE];
        for (int j = 0; j < m; j++) part[j] = v8_splat(0.0f);
        const int8_t *qg = q + g * G;
        __builtin_prefetch(qg + 512);
        for (int64_t i = 0; i < G; i += V8) {
            v8f w = bytes8(qg + i);
            for (int j = 0; j < m; j++) part[j] += w * v8_load(x[j] + g * G + i);
        }
        v8f s = v8_splat(scale[g]);
        for (int j = 0; j < m; j++) acc[j] += part[j] * s;
    }
    for (int j = 0; j < m; j++) o[j] = v8_sum(acc[j]);
}

#define TILE_SWITCH(m, CALL)                          \
    switch (m) {                                      \
        case 1: { enum { MT = 1 }; CALL; } break;     \
        case 2: { enum { MT = 2 }; CALL; } break;     \
        case 3: { enum { MT = 3 }; CALL; } break;     \
        default: { enum { MT = DOT_TILE }; CALL; } break; \
    }

/* x [M, K] row stride ldx (K a multiple of G, G of 8); q [N, K/8]; scales, offsets [N, K/G]; bias [N] or
 * NULL; out [M, N] contiguous. Returns 0, or -1 when out of memory. */
int anyaccel_w4_affine_f32(const float *x, int64_t M, int64_t K, int64_t ldx, const uint32_t *q, int64_t N,
                           const float *scales, const float *offsets, int64_t G, const float *bias,
                           float *out) {
    float *sums = group_sums(x, M, K, ldx, G);
    if (!sums) return -1;
    int64_t groups = K / G, blocks = (N + QROWS - 1) / QROWS;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
    for (int64_t item = 0; item < blocks; item++) {
        int64_t n0 = item * QROWS, n1 = n0 + QROWS < N ? n0 + QROWS : N;
        for (int64_t m0 = 0; m0 < M; m0 += DOT_TILE) {
            int m = (int)(M - m0 < DOT_TILE ? M - m0 : DOT_TILE);
            const float *xr[DOT_TILE], *xs[DOT_TILE];
            for (int j = 0; j < m; j++) xr[j] = x + (m0 + j) * ldx, xs[j] = sums + (m0 + j) * groups;
            for (int64_t n = n0; n < n1; n++) {
                float o[DOT_TILE];
                TILE_SWITCH(m, w4_row(q + n * (K / 8), scales + n * groups, offsets + n * groups, xr, xs, MT, K,
                                      G, o))
                for (int j = 0; j < m; j++) out[(m0 + j) * N + n] = bias ? o[j] + bias[n] : o[j];
            }
        }
    }
    free(sums);
    return 0;
}

/* x [M, K] row stride ldx; q [N, K] int8; scales [N, K/G]; bias [N] or NULL; out [M, N] contiguous. */
void anyaccel_w8_group_f32(const float *x, int64_t M, int64_t K, int64_t ldx, const int8_t *q, int64_t N,
                           const float *scales, int64_t G, const float *bias, float *out) {
    int64_t groups = K / G, blocks = (N + QROWS - 1) / QROWS;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
    for (int64_t item = 0; item < blocks; item++) {
        int64_t n0 = item * QROWS, n1 = n0 + QROWS < N ? n0 + QROWS : N;
        for (int64_t m0 = 0; m0 < M; m0 += DOT_TILE) {
            int m = (int)(M - m0 < DOT_TILE ? M - m0 : DOT_TILE);
            const float *xr[DOT_TILE];
            for (int j = 0; j < m; j++) xr[j] = x + (m0 + j) * ldx;
            for (int64_t n = n0; n < n1; n++) {
                float o[DOT_TILE];
                TILE_SWITCH(m, w8_row(q + n * K, scales + n * groups, xr, MT, K, G, o))
                for (int j = 0; j < m; j++) out[(m0 + j) * N + n] = bias ? o[j] + bias[n] : o[j];
            }
        }
    }
}

/* The float32 weight [N, K] (for many input rows, which a packing BLAS multiplies faster). */
void anyaccel_w4_affine_dequant_f32(const uint32_t *q, int64_t N, int64_t K, const float *scales,
                                    const float *offsets, int64_t G, float *w) {
    int64_t groups = K / G;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < groups; g++) {
            v8f s = v8_splat(scales[n * groups + g]), o = v8_splat(offsets[n * groups + g]);
            for (int64_t c = 0; c < G / 8; c++) {
                int64_t k = g * G + c * 8;
                v8_store(w + n * K + k, nibbles8(q[n * (K / 8) + k / 8]) * s + o);
            }
        }
}

void anyaccel_w8_group_dequant_f32(const int8_t *q, int64_t N, int64_t K, const float *scales, int64_t G,
                                   float *w) {
    int64_t groups = K / G;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < groups; g++) {
            v8f s = v8_splat(scales[n * groups + g]);
            for (int64_t i = 0; i < G; i += V8) v8_store(w + n * K + g * G + i, bytes8(q + n * K + g * G + i) * s);
        }
}
