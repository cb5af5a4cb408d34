/* Group-quantized GEMMs for a few input rows (decode) with the activations quantized to int8, the arithmetic
 * of llama.cpp's CPU backend: x is cut into blocks of 32 input features, each block b quantized to
 *   xq = round_half_even(x / d_b), d_b = max|x over the block| / 127  (xq in -127..127; d_b = 0: xq = 0),
 * and the products are integer dot products of the stored weights with xq, scaled once per block:
 *   w4 affine: out[m, n] = sum_b d_b * scale[n, g(b)] * <q[n, b], xq[m, b]> + sum_g offset[n, g] * xs[m, g]
 *   w8 group:  out[m, n] = sum_b d_b * sum_{g in b} scale[n, g] * <q[n, g], xq[m, g]>
 * with xs[m, g] = sum of the quantized x (d_b * xq) over group g: the result is exactly the float GEMM of the
 * dequantized weights with x' = d_b * xq (the contract of W4A16Spec/W8A16Spec activations="int8"), up to
 * float32 rounding order. A 32-byte vector of weights feeds one multiply-add of bytes into eight int32
 * lanes (AVX-512 VNNI / AVX-VNNI vpdpbusd; AVX2 vpmaddubsw + vpmaddwd), against the 4-5 float operations per
 * 8 weights of the float path (quant.c), which keeps decode bound by the weights' bandwidth, not by the
 * decoding.
 *
 * The w4 words hold feature 8c+i in bits 4i of word c, so in memory the 16 bytes of a 32-feature block hold
 * the even features in their low nibbles and the odd ones in their high nibbles. The quantized x is stored
 * per pair of blocks in that order: [even of b | even of b+1 | odd of b | odd of b+1] (a last single block:
 * [even | odd]), so the low and high nibbles of 32 weight bytes meet their features with no shuffle.
 *
 * Each thread takes one contiguous range of output features (a static schedule) and prefetches 2 KB ahead:
 * decode reads weights that are not in cache, and the hardware prefetchers only reach the memory's bandwidth
 * on long streams. Interleaving 16-feature items between threads (a dynamic schedule) left SmolLM2-135M's
 * 120 Q4_1 linears at 5.1 ms per token on 2 Zen 4 cores; one range per thread takes 2.1 ms.
 *
 * Built only for x86-64 with AVX2; elsewhere anyaccel_q8_available() is 0 and the kernels are declined. */
#include <stdlib.h>

#include "scales.h"

int anyaccel_q8_available(void) {
#if defined(__AVX2__)
    return 1;
#else
    return 0;
#endif
}

#if defined(__AVX2__)
#include <immintrin.h>

enum { BLOCK = 32, ROWS = 16, MTILE = 8 };

/* acc + sum over each 4 bytes of u (unsigned) times s (signed), in 8 int32 lanes */
static inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, u, s);
#elif defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    __m256i pairs = _mm256_maddubs_epi16(u, s); /* |15 * 127 * 2|, |128 * 127 * 2| fit int16 */
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* The quantized rows of x. Per row: xq [K] int8 (the w4 order when `pairs`, else the features' own), d [K/32]
 * the block scales; for the w4 order also lanes [(nb+1)/2 * 8], the block scale of each int32 lane of a pair
 * ([d_b x4 | d_b+1 x4]; a last single block [d_b x8]), and gsum [K/G], the sum of d_b * xq over weight
 * group g (the offsets' share). */
typedef struct {
    int8_t *xq;
    float *d, *lanes, *gsum;
    int64_t K, G;
} quantized;

static void free_quantized(quantized *x) {
    free(x->xq);
    free(x->d);
    free(x->lanes);
    free(x->gsum);
}

/* the w4 order of one block's values q: [even of b | even of b+1 | odd of b | odd of b+1] per pair of blocks,
 * [even | odd] for a last single block */
static void store_pairs(int8_t *xq, const int8_t *q, int64_t b, int64_t nb) {
    int single = b == nb - 1 && nb % 2;
    int8_t *dst = xq + (b / 2) * 2 * BLOCK;
    int64_t half = single ? BLOCK / 2 : BLOCK; /* offset of the odd features */
    int64_t at = single ? 0 : (b % 2) * BLOCK / 2;
    for (int i = 0; i < BLOCK / 2; i++) {
        dst[at + i] = q[2 * i];
        dst[at + half + i] = q[2 * i + 1];
    }
}

/* x [M, K] row stride ldx -> quantized rows; pairs != 0: the w4 order (with lanes and gsum). */
static int quantize_rows(const float *x, int64_t M, int64_t K, int64_t ldx, int64_t G, int pairs,
                         quantized *out) {
    int64_t nb = K / BLOCK, npairs = (nb + 1) / 2;
    *out = (quantized){.K = K, .G = G};
    out->xq = malloc((size_t)(M * K));
    out->d = malloc(sizeof(float) * (size_t)(M * nb));
    if (pairs) {
        out->lanes = malloc(sizeof(float) * (size_t)(M * npairs * 8));
        out->gsum = calloc((size_t)(M * (K / G)), sizeof(float));
    }
    if (!out->xq || !out->d || (pairs && (!out->lanes || !out->gsum))) {
        free_quantized(out);
        return -1;
    }
    for (int64_t m = 0; m < M; m++) {
        int8_t *xq = out->xq + m * K;
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + m * ldx + b * BLOCK;
            float amax = 0.0f;
            for (int i = 0; i < BLOCK; i++) amax = fmaxf(amax, fabsf(xb[i]));
            float d = amax / 127.0f;
            int8_t q[BLOCK];
            int sum = 0;
            for (int i = 0; i < BLOCK; i++) {
                q[i] = d > 0.0f ? (int8_t)nearbyintf(xb[i] / d) : 0;
                sum += q[i];
            }
            out->d[m * nb + b] = d;
            if (!pairs) {
                memcpy(xq + b * BLOCK, q, BLOCK);
                continue;
            }
            store_pairs(xq, q, b, nb);
            out->gsum[m * (K / G) + b * BLOCK / G] += d * (float)sum;
            int single = b == nb - 1 && nb % 2;
            float *lanes = out->lanes + (m * npairs + b / 2) * 8;
            for (int l = 0; l < 8; l++)
                if (single || (l < 4) == (b % 2 == 0)) lanes[l] = d;
        }
    }
    return 0;
}

/* [s0 x4 | s1 x4] */
static inline __m256 two_scales(float s0, float s1) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(s0)), _mm_set1_ps(s1), 1);
}

/* one w4 feature (q: K/2 bytes; scale, offset: K/G) for m <= MTILE quantized rows */
static inline __attribute__((always_inline)) void w4_feature(const uint8_t *q, const void *scale,
                                                             const void *offset, int kind, const quantized *x,
                                                             int64_t m0, int m, float *o) {
    const int64_t K = x->K, G = x->G, nb = K / BLOCK, npairs = (nb + 1) / 2;
    const int shift = __builtin_ctzll((unsigned long long)G); /* G a power of two: no division per block */
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256 acc[MTILE];
    for (int j = 0; j < m; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t p = 0; p < nb / 2; p++) {
        __builtin_prefetch(q + p * 32 + 2048);
        __m256i w = _mm256_loadu_si256((const __m256i *)(q + p * 32));
        __m256i lo = _mm256_and_si256(w, low), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), low);
        __m256 s = two_scales(scale_at(scale, kind, (2 * p * BLOCK) >> shift),
                              scale_at(scale, kind, ((2 * p + 1) * BLOCK) >> shift));
        for (int j = 0; j < m; j++) {
            const int8_t *xq = x->xq + (m0 + j) * K + p * 64;
            __m256i xe = _mm256_loadu_si256((const __m256i *)xq), xo = _mm256_loadu_si256((const __m256i *)(xq + 32));
            __m256i d = dot_u8s8(dot_u8s8(_mm256_setzero_si256(), lo, xe), hi, xo);
            __m256 lanes = _mm256_loadu_ps(x->lanes + ((m0 + j) * npairs + p) * 8);
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(d), lanes), s, acc[j]);
        }
    }
    if (nb % 2) { /* a last single block: its 16 bytes as [low nibbles | high nibbles] */
        int64_t b = nb - 1;
        __m128i w = _mm_loadu_si128((const __m128i *)(q + b * 16)), low16 = _mm_set1_epi8(0x0F);
        __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(w, 4), low16), _mm_and_si128(w, low16));
        __m256 s = _mm256_set1_ps(scale_at(scale, kind, (b * BLOCK) >> shift));
        for (int j = 0; j < m; j++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x->xq + (m0 + j) * K + (nb / 2) * 64));
            __m256i d = dot_u8s8(_mm256_setzero_si256(), u, xv);
            __m256 lanes = _mm256_loadu_ps(x->lanes + ((m0 + j) * npairs + nb / 2) * 8);
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(d), lanes), s, acc[j]);
        }
    }
    for (int j = 0; j < m; j++) o[j] = hsum(acc[j]) + scales_dot(offset, kind, x->gsum + (m0 + j) * (K / G), K / G);
}

/* one w8 feature (q: K bytes; scale: K/G, G 16, 32, 64 or 128) for m <= MTILE quantized rows */
static inline __attribute__((always_inline)) void w8_feature(const int8_t *q, const float *scale,
                                                             const quantized *x, int64_t m0, int m, float *o) {
    const int64_t K = x->K, nb = K / BLOCK;
    const int shift = __builtin_ctzll((unsigned long long)x->G);
    __m256 acc[MTILE];
    for (int j = 0; j < m; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __builtin_prefetch(q + b * BLOCK + 1024);
        __m256i w = _mm256_loadu_si256((const __m256i *)(q + b * BLOCK)), u = _mm256_abs_epi8(w);
        __m256 s = two_scales(scale[(b * BLOCK) >> shift], scale[(b * BLOCK + BLOCK / 2) >> shift]);
        for (int j = 0; j < m; j++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x->xq + (m0 + j) * K + b * BLOCK));
            __m256i d = dot_u8s8(_mm256_setzero_si256(), u, _mm256_sign_epi8(xv, w));
            __m256 db = _mm256_set1_ps(x->d[(m0 + j) * nb + b]);
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(d), db), s, acc[j]);
        }
    }
    for (int j = 0; j < m; j++) o[j] = hsum(acc[j]);
}

/* CALL with MT the number of rows as a constant, so that the loops over rows unroll into registers */
#define M_SWITCH(m, CALL)                                \
    switch (m) {                                         \
        case 1: { enum { MT = 1 }; CALL; } break;        \
        case 2: { enum { MT = 2 }; CALL; } break;        \
        case 3: { enum { MT = 3 }; CALL; } break;        \
        case 4: { enum { MT = 4 }; CALL; } break;        \
        case 5: { enum { MT = 5 }; CALL; } break;        \
        case 6: { enum { MT = 6 }; CALL; } break;        \
        case 7: { enum { MT = 7 }; CALL; } break;        \
        default: { enum { MT = MTILE }; CALL; } break;   \
    }

/* x [M, K] row stride ldx (K a multiple of 32 and of G); q [N, K/8] words; scales, offsets [N, K/G] of the
 * given kind (scales.h); bias [N] or NULL; out [M, N]. Returns 0, or -1 when out of memory. */
int anyaccel_w4_affine_q8(const float *x, int64_t M, int64_t K, int64_t ldx, const uint32_t *q, int64_t N,
                          const void *scales, const void *offsets, int kind, int64_t G, const float *bias,
                          float *out) {
    quantized xq;
    if (quantize_rows(x, M, K, ldx, G, 1, &xq)) return -1;
    int64_t groups = K / G, blocks = (N + ROWS - 1) / ROWS;
    const uint8_t *bytes = (const uint8_t *)q;
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t item = 0; item < blocks; item++) {
        int64_t n1 = (item + 1) * ROWS < N ? (item + 1) * ROWS : N;
        for (int64_t m0 = 0; m0 < M; m0 += MTILE) {
            int m = (int)(M - m0 < MTILE ? M - m0 : MTILE);
            for (int64_t n = item * ROWS; n < n1; n++) {
                float o[MTILE];
                const void *s = scales_skip(scales, kind, n * groups), *off = scales_skip(offsets, kind, n * groups);
                if (m == 1) /* decode at batch 1: the scales' kind a constant, as the rows' count */
                    SCALES_SWITCH(kind, w4_feature(bytes + n * (K / 2), s, off, KIND, &xq, m0, 1, o))
                else
                    M_SWITCH(m, w4_feature(bytes + n * (K / 2), s, off, kind, &xq, m0, MT, o))
                for (int j = 0; j < m; j++) out[(m0 + j) * N + n] = bias ? o[j] + bias[n] : o[j];
            }
        }
    }
    free_quantized(&xq);
    return 0;
}

/* x [M, K] row stride ldx (K a multiple of 32 and of G); q [N, K] int8; scales [N, K/G]; bias [N] or NULL;
 * out [M, N]. Returns 0, or -1 when out of memory. */
int anyaccel_w8_group_q8(const float *x, int64_t M, int64_t K, int64_t ldx, const int8_t *q, int64_t N,
                         const float *scales, int64_t G, const float *bias, float *out) {
    quantized xq;
    if (quantize_rows(x, M, K, ldx, G, 0, &xq)) return -1;
    int64_t groups = K / G, blocks = (N + ROWS - 1) / ROWS;
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t item = 0; item < blocks; item++) {
        int64_t n1 = (item + 1) * ROWS < N ? (item + 1) * ROWS : N;
        for (int64_t m0 = 0; m0 < M; m0 += MTILE) {
            int m = (int)(M - m0 < MTILE ? M - m0 : MTILE);
            for (int64_t n = item * ROWS; n < n1; n++) {
                float o[MTILE];
                M_SWITCH(m, w8_feature(q + n * K, scales + n * groups, &xq, m0, MT, o))
                for (int j = 0; j < m; j++) out[(m0 + j) * N + n] = bias ? o[j] + bias[n] : o[j];
            }
        }
    }
    free_quantized(&xq);
    return 0;
}

#else /* no AVX2: declined by anyaccel_q8_available() */

int anyaccel_w4_affine_q8(const float *x, int64_t M, int64_t K, int64_t ldx, const uint32_t *q, int64_t N,
                          const void *scales, const void *offsets, int kind, int64_t G, const float *bias,
                          float *out) {
    return -2;
}

int anyaccel_w8_group_q8(const float *x, int64_t M, int64_t K, int64_t ldx, const int8_t *q, int64_t N,
                         const float *scales, int64_t G, const float *bias, float *out) {
    return -2;
}

#endif
