/* Portable 8-wide float vectors (GCC/Clang vector extensions): one AVX register on x86-64 built with
 * -march=native, two NEON registers on AArch64, plain loops elsewhere. Loads and stores go through memcpy,
 * so no pointer needs any alignment. */
#ifndef ANYACCEL_CPU_VEC_H
#define ANYACCEL_CPU_VEC_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

#define V8 8

static inline v8f v8_load(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }

static inline v8f v8_splat(float x) { return (v8f){x, x, x, x, x, x, x, x}; }

/* mask ? a : b per lane; masks are what comparisons return (all bits set or none) */
static inline v8f v8_select(v8i mask, v8f a, v8f b) { return (v8f)(((v8i)a & mask) | ((v8i)b & ~mask)); }

static inline v8f v8_min(v8f a, v8f b) { return v8_select(a < b, a, b); }

static inline v8f v8_maxv(v8f a, v8f b) { return v8_select(a > b, a, b); }

static inline float v8_sum(v8f v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

static inline float v8_max(v8f v) {
    float m = v[0];
    for (int i = 1; i < V8; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* exp(x) to about 2 ulp for x in [-87, 88] (Cephes' expf: x = n ln2 + r, exp(r) by a degree-6
 * polynomial, 2^n by building the exponent bits); below -87 the result is flushed to 0. */
static inline v8f v8_exp(v8f x) {
    const v8f hi = v8_splat(88.3762626647950f), lo = v8_splat(-87.3365478515625f);
    x = v8_min(x, hi);
    v8i underflow = x < lo;
    x = v8_maxv(x, lo);
    v8f n = x * 1.44269504088896341f + 0.5f;
    v8i ni = __builtin_convertvector(n, v8i);
    ni -= (v8i)(__builtin_convertvector(ni, v8f) > n) & 1; /* floor */
    n = __builtin_convertvector(ni, v8f);
    v8f r = x - n * 0.693359375f + n * 2.12194440e-4f;
    v8f p = v8_splat(1.9875691500E-4f);
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.0f;
    v8i bits = (ni + 127) << 23;
    v8f scale;
    memcpy(&scale, &bits, sizeof scale);
    v8f y = p * scale;
    return (v8f)((v8i)y & ~underflow);
}

#endif
