/* The affine format's scales and offsets as the checkpoint stores them: float32, float16 (GGUF Q4_0 / Q4_1)
 * or bfloat16 (MLX), told by a kind (SCALES_F32 / SCALES_F16 / SCALES_BF16, the order of the Python side's
 * SCALE_KINDS). Kernels take them as const void * and read them only through scale_at / scales8 with the
 * kind a compile-time constant (the kernel body inlined once per kind), so that a 16-bit scale costs one
 * conversion instruction where the CPU has one and the loops stay those of float32. A 32-weight Q4_1 group
 * reads 20 bytes with its scale and offset in 16 bits, 24 in float32. */
#ifndef ANYACCEL_CPU_SCALES_H
#define ANYACCEL_CPU_SCALES_H

#include "vec.h"
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

enum { SCALES_F32 = 0, SCALES_F16 = 1, SCALES_BF16 = 2 };

/* IEEE binary16 -> float32, exact (every half is a float) */
static inline float half_to_float(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1f) /* inf, nan */
        bits = sign | 0x7f800000u | (man << 13);
    else if (exp) /* normal: rebias 15 -> 127 */
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    else { /* zero, subnormal: man * 2^-24, exact in float32 */
        float f = (float)man * 5.9604644775390625e-08f;
        memcpy(&bits, &f, sizeof bits);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
#endif
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/* element i of p */
static inline __attribute__((always_inline)) float scale_at(const void *p, int kind, int64_t i) {
    if (kind == SCALES_F32) return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    return kind == SCALES_F16 ? half_to_float(h) : bf16_to_float(h);
}

/* elements i..i+7 of p */
static inline __attribute__((always_inline)) v8f scales8(const void *p, int kind, int64_t i) {
    if (kind == SCALES_F32) return v8_load((const float *)p + i);
#if defined(__F16C__) && defined(__AVX2__)
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    if (kind == SCALES_F16) return (v8f)_mm256_cvtph_ps(h);
    return (v8f)_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
#endif
    v8f out;
    for (int l = 0; l < V8; l++) out[l] = scale_at(p, kind, i + l);
    return out;
}

/* elements at..at+n-1 of p as float32: p itself when it holds float32, else widened into buf (n floats), 8
 * per instruction where the CPU converts vectors (a loop over groups then reads plain floats, as fast as
 * float32 scales, from 2 bytes each) */
static inline __attribute__((always_inline)) const float *widen(const void *p, int kind, int64_t at, int64_t n,
                                                             float *buf) {
    if (kind == SCALES_F32) return (const float *)p + at;
    int64_t i = 0;
    for (; i + V8 <= n; i += V8) v8_store(buf + i, scales8(p, kind, at + i));
    for (; i < n; i++) buf[i] = scale_at(p, kind, at + i);
    return buf;
}

/* <p, b> over n elements: the offsets' share of a feature (its offsets times the group sums of x) */
static inline __attribute__((always_inline)) float scales_dot(const void *p, int kind, const float *b,
                                                              int64_t n) {
    v8f acc = v8_splat(0.0f);
    int64_t i = 0;
    for (; i + V8 <= n; i += V8) acc += scales8(p, kind, i) * v8_load(b + i);
    float sum = v8_sum(acc);
    for (; i < n; i++) sum += scale_at(p, kind, i) * b[i];
    return sum;
}

/* the byte size of one element of a kind */
static inline int64_t scale_bytes(int kind) { return kind == SCALES_F32 ? 4 : 2; }

/* p advanced by n elements */
static inline const void *scales_skip(const void *p, int kind, int64_t n) {
    return (const char *)p + n * scale_bytes(kind);
}

/* CALL with KIND the scales' kind as a constant (the kernel body inlined once per kind) */
#define SCALES_SWITCH(kind, CALL)                              \
    switch (kind) {                                            \
        case SCALES_F16: { enum { KIND = SCALES_F16 }; CALL; } break;   \
        case SCALES_BF16: { enum { KIND = SCALES_BF16 }; CALL; } break; \
        default: { enum { KIND = SCALES_F32 }; CALL; } break;           \
    }

#endif
