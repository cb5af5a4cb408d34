/* Group-quantized GEMMs in float32 for a few input rows (decode), reading the weights as stored:
 *   w4 affine: q [N, K/8] uint32 words (feature 8c+i in bits 4i of word c), w = q * scale + offset per group
 *   w8 group:  q [N, K] int8, w = q * scale per group
 * Per output feature and group, the integer values times x are summed first and scaled once:
 *   out[m, n] = sum_g (scale[n, g] * sum_{k in g} q[n, k] x[m, k] + offset[n, g] * sum_{k in g} x[m, k])
 * so a weight costs a decode and one multiply-add per input row; the group sums of x are computed once per
 * call and the offsets' share is one short dot product per feature. Work items are blocks of QROWS output
 * features. w4: one input row (decode at batch 1) takes two features at a time, each x vector feeding both;
 * 2 to 8 rows decode each group's words once into registers and apply them to every row (the weights
 * stream once per 8 rows). w8 streams each weight row once per DOT_TILE input rows. Many input rows are the
 * caller's to send to the dequantize + BLAS path (anyaccel_w4_affine_dequant_f32 /
 * anyaccel_w8_group_dequant_f32).
 * Each thread streams one contiguous range of output features (a static schedule; see q8dot.c for why). On 2
 * Zen 4 cores, the 120 Q4_1 linears of SmolLM2-135M (30 layers) take 3.2 ms per token at batch 1 in the
 * model (cold weights); at batch 8 they are bound by the float32 multiply-adds (8 rows x 106M weights). */
#include <stdlib.h>

#include "dots.h"
#include "scales.h"
#if defined(__AVX2__)
#include <immintrin.h>
#endif

enum { QROWS = 16, SCALE_CHUNK = 64 }; /* SCALE_CHUNK: groups whose 16-bit scales are widened at a time */

typedef int8_t v8c __attribute__((vector_size(8)));
typedef uint32_t v8u __attribute__((vector_size(32)));

/* the 8 four-bit values of a word as floats, value i from bits 4i (one variable shift and a mask) */
static inline v8f nibbles8(uint32_t word) {
    const v8u shifts = {0, 4, 8, 12, 16, 20, 24, 28};
    v8u w = (v8u){0, 0, 0, 0, 0, 0, 0, 0} + word;
    return __builtin_convertvector((v8i)((w >> shifts) & 15u), v8f);
}

/* 8 int8 values as floats. GCC 12 scalarises the generic narrow-to-wide vector conversion (one scalar
 * convert per value, which made the int8 head compute-bound), so x86 with AVX2 uses its widening load. */
static inline v8f bytes8(const int8_t *p) {
#if defined(__AVX2__)
    __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
    v8f out;
    memcpy(&out, &f, sizeof out);
    return out;
#else
    v8c c;
    memcpy(&c, p, sizeof c);
    return __builtin_convertvector(__builtin_convertvector(c, v8i), v8f);
#endif
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

/* one output feature of the w4 affine format for m (<= DOT_TILE) input rows; G a constant where inlined, so
 * that a group's G/8 words unroll */
static inline __attribute__((always_inline)) void w4_row(const uint32_t *q, const void *scale,
                                                         const void *offset, int kind, const float *const *x,
                                                         const float *const *xs, int m, int64_t K,
                                                         int64_t G, float *o) {
    v8f acc[DOT_TILE];
    for (int j = 0; j < m; j++) acc[j] = v8_splat(0.0f);
    int64_t groups = K / G, words = G / 8;
    for (int64_t g = 0; g < groups; g++) {
        v8f part[DOT_TILE];
        for (int j = 0; j < m; j++) part[j] = v8_splat(0.0f);
        const uint32_t *qg = q + g * words;
        __builtin_prefetch(qg + 512);
        for (int64_t c = 0; c < words; c++) {
            v8f w = nibbles8(qg[c]);
            int64_t k = (g * words + c) * 8;
            for (int j = 0; j < m; j++) part[j] += w * v8_load(x[j] + k);
        }
        v8f s = v8_splat(scale_at(scale, kind, g));
        for (int j = 0; j < m; j++) acc[j] += part[j] * s;
    }
    for (int j = 0; j < m; j++) o[j] = v8_sum(acc[j]) + scales_dot(offset, kind, xs[j], groups);
}

/* two output features (rows q0, q1) for one input row: each x vector feeds both, halving the loads of x */
static inline __attribute__((always_inline)) void w4_rows2(const uint32_t *q0, const uint32_t *q1,
                                                           const void *s0, const void *s1, const void *o0,
                                                           const void *o1, int kind, const float *x,
                                                           const float *xs, int64_t K, int64_t G, float *out0,
                                                           float *out1) {
    v8f acc0 = v8_splat(0.0f), acc1 = v8_splat(0.0f);
    int64_t groups = K / G, words = G / 8;
    for (int64_t g0 = 0; g0 < groups; g0 += SCALE_CHUNK) {
        int64_t gn = groups - g0 < SCALE_CHUNK ? groups - g0 : SCALE_CHUNK;
        float b0[SCALE_CHUNK], b1[SCALE_CHUNK];
        const float *f0 = widen(s0, kind, g0, gn, b0), *f1 = widen(s1, kind, g0, gn, b1);
        for (int64_t i = 0; i < gn; i++) {
            int64_t g = g0 + i;
            v8f p0 = v8_splat(0.0f), p1 = v8_splat(0.0f);
            __builtin_prefetch(q0 + g * words + 512);
            __builtin_prefetch(q1 + g * words + 512);
            for (int64_t c = 0; c < words; c++) {
                v8f xv = v8_load(x + (g * words + c) * 8);
                p0 += nibbles8(q0[g * words + c]) * xv;
                p1 += nibbles8(q1[g * words + c]) * xv;
            }
            acc0 += p0 * v8_splat(f0[i]);
            acc1 += p1 * v8_splat(f1[i]);
        }
    }
    *out0 = v8_sum(acc0) + scales_dot(o0, kind, xs, groups);
    *out1 = v8_sum(acc1) + scales_dot(o1, kind, xs, groups);
}

static inline __attribute__((always_inline)) void w4_rows2_g(const uint32_t *q0, const uint32_t *q1,
                                                             const void *s0, const void *s1, const void *o0,
                                                             const void *o1, int kind, const float *x,
                                                             const float *xs, int64_t K, int64_t G,
                                                             float *out0, float *out1) {
    switch (G) {
        case 32: w4_rows2(q0, q1, s0, s1, o0, o1, kind, x, xs, K, 32, out0, out1); break;
        case 64: w4_rows2(q0, q1, s0, s1, o0, o1, kind, x, xs, K, 64, out0, out1); break;
        default: w4_rows2(q0, q1, s0, s1, o0, o1, kind, x, xs, K, G, out0, out1); break;
    }
}

enum { QTILE = 8 };

/* one output feature for m (<= QTILE) input rows: each group's words are decoded once, into registers, and
 * applied to every row (m and G constants where inlined) */
static inline __attribute__((always_inline)) void w4_tile(const uint32_t *q, const void *scale,
                                                          const void *offset, int kind, const float *const *x,
                                                          const float *const *xs, int m, int64_t K,
                                                          int64_t G, float *o) {
    v8f acc[QTILE];
    for (int j = 0; j < m; j++) acc[j] = v8_splat(0.0f);
    int64_t groups = K / G, words = G / 8;
    for (int64_t g = 0; g < groups; g++) {
        v8f w[16];
        const uint32_t *qg = q + g * words;
        __builtin_prefetch(qg + 512);
        for (int64_t c = 0; c < words; c++) w[c] = nibbles8(qg[c]);
        v8f s = v8_splat(scale_at(scale, kind, g));
        for (int j = 0; j < m; j++) {
            const float *xg = x[j] + g * G;
            v8f part = w[0] * v8_load(xg);
            for (int64_t c = 1; c < words; c++) part += w[c] * v8_load(xg + 8 * c);
            acc[j] += part * s;
        }
    }
    for (int j = 0; j < m; j++) o[j] = v8_sum(acc[j]) + scales_dot(offset, kind, xs[j], groups);
}

#define W4_TILE_M(MT)                                                                     \
    switch (G) {                                                                          \
        case 32: w4_tile(q, scale, offset, kind, x, xs, MT, K, 32, o); break;             \
        default: w4_tile(q, scale, offset, kind, x, xs, MT, K, G, o); break;              \
    }

/* the kind of the scales is told per call (one copy of the tiles, not three: batch 2-8 is bound by the
 * multiply-adds, not by reading a scale) */
static void w4_tile_any(const uint32_t *q, const void *scale, const void *offset, int kind,
                        const float *const *x, const float *const *xs, int m, int64_t K, int64_t G, float *o) {
    switch (m) {
        case 2: W4_TILE_M(2) break;
        case 3: W4_TILE_M(3) break;
        case 4: W4_TILE_M(4) break;
        case 5: W4_TILE_M(5) break;
        case 6: W4_TILE_M(6) break;
        case 7: W4_TILE_M(7) break;
        default: W4_TILE_M(QTILE) break;
    }
}

/* w4_row with the group size a constant for the common sizes */
static inline __attribute__((always_inline)) void w4_row_g(const uint32_t *q, const void *scale,
                                                           const void *offset, int kind, const float *const *x,
                                                           const float *const *xs, int m, int64_t K,
                                                           int64_t G, float *o) {
    switch (G) {
        case 32: w4_row(q, scale, offset, kind, x, xs, m, K, 32, o); break;
        case 64: w4_row(q, scale, offset, kind, x, xs, m, K, 64, o); break;
        default: w4_row(q, scale, offset, kind, x, xs, m, K, G, o); break;
    }
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

/* output features n0..n1 for all M input rows, the scales' kind a constant where inlined */
static inline __attribute__((always_inline)) void w4_affine_block(const float *x, int64_t M, int64_t K,
                                                                  int64_t ldx, const uint32_t *q, int64_t N,
                                                                  const void *scales, const void *offsets,
                                                                  int kind, int64_t G, const float *bias,
                                                                  const float *sums, int64_t n0, int64_t n1,
                                                                  float *out) {
    int64_t groups = K / G;
#define W4_SCALES(p, n) scales_skip(p, kind, (n) * groups)
    for (int64_t m0 = 0; m0 < M; m0 += QTILE) {
        int m = (int)(M - m0 < QTILE ? M - m0 : QTILE);
        const float *xr[QTILE], *xs[QTILE];
        for (int j = 0; j < m; j++) xr[j] = x + (m0 + j) * ldx, xs[j] = sums + (m0 + j) * groups;
        int64_t n = n0;
        if (m == 1) /* decode at batch 1: two features at a time */
            for (; n + 1 < n1; n += 2) {
                float a0, a1;
                w4_rows2_g(q + n * (K / 8), q + (n + 1) * (K / 8), W4_SCALES(scales, n), W4_SCALES(scales, n + 1),
                           W4_SCALES(offsets, n), W4_SCALES(offsets, n + 1), kind, xr[0], xs[0], K, G, &a0, &a1);
                out[m0 * N + n] = bias ? a0 + bias[n] : a0;
                out[m0 * N + n + 1] = bias ? a1 + bias[n + 1] : a1;
            }
        for (; n < n1; n++) {
            float o[QTILE];
            const void *s = W4_SCALES(scales, n), *off = W4_SCALES(offsets, n);
            if (m == 1)
                w4_row_g(q + n * (K / 8), s, off, kind, xr, xs, 1, K, G, o);
            else
                w4_tile_any(q + n * (K / 8), s, off, kind, xr, xs, m, K, G, o);
            for (int j = 0; j < m; j++) out[(m0 + j) * N + n] = bias ? o[j] + bias[n] : o[j];
        }
    }
#undef W4_SCALES
}

/* x [M, K] row stride ldx (K a multiple of G, G of 8); q [N, K/8]; scales, offsets [N, K/G] of the given kind
 * (scales.h); bias [N] or NULL; out [M, N] contiguous. Returns 0, or -1 when out of memory. */
int anyaccel_w4_affine_f32(const float *x, int64_t M, int64_t K, int64_t ldx, const uint32_t *q, int64_t N,
                           const void *scales, const void *offsets, int kind, int64_t G, const float *bias,
                           float *out) {
    float *sums = group_sums(x, M, K, ldx, G);
    if (!sums) return -1;
    int64_t blocks = (N + QROWS - 1) / QROWS;
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t item = 0; item < blocks; item++) {
        int64_t n0 = item * QROWS, n1 = n0 + QROWS < N ? n0 + QROWS : N;
        SCALES_SWITCH(kind, w4_affine_block(x, M, K, ldx, q, N, scales, offsets, KIND, G, bias, sums, n0, n1, out))
    }
    free(sums);
    return 0;
}

/* x [M, K] row stride ldx; q [N, K] int8; scales [N, K/G]; bias [N] or NULL; out [M, N] contiguous. */
void anyaccel_w8_group_f32(const float *x, int64_t M, int64_t K, int64_t ldx, const int8_t *q, int64_t N,
                           const float *scales, int64_t G, const float *bias, float *out) {
    int64_t groups = K / G, blocks = (N + QROWS - 1) / QROWS;
#pragma omp parallel for schedule(static) if (blocks > 1)
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
void anyaccel_w4_affine_dequant_f32(const uint32_t *q, int64_t N, int64_t K, const void *scales,
                                    const void *offsets, int kind, int64_t G, float *w) {
    int64_t groups = K / G;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < groups; g++) {
            v8f s = v8_splat(scale_at(scales, kind, n * groups + g));
            v8f o = v8_splat(scale_at(offsets, kind, n * groups + g));
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
