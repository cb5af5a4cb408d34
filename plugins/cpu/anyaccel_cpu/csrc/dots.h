/* The micro-kernels for a few activation rows (decode): dot products of weight rows with up to DOT_TILE
 * activation rows, each weight vector loaded once for all of them, so the weights stream from memory once:
 * dot1 / dots1 read one weight row at a time (the dense GEMV), dots2 two rows of separate matrices at once
 * (the experts' gate and up rows). Many rows (prefill) use tile.h instead. */
#ifndef ANYACCEL_CPU_DOTS_H
#define ANYACCEL_CPU_DOTS_H

#include "vec.h"

#define DOT_TILE 4
/* Floats ahead of dots2's current weight vectors to prefetch: 4 KB, one or two rows of a small model ahead.
 * The hardware prefetcher alone left 15-20% of the read bandwidth unused on a 2-core EPYC with 8 rows (1.9
 * against 1.6 ms per demo MoE layer), and 4 KB did better than 2 KB. Prefetching past the end of an array is
 * harmless (prefetches never fault). */
#define PREFETCH 1024

/* o0[j] = <w0, x[j]>, o1[j] = <w1, x[j]> over k floats, for j < m (m <= DOT_TILE, a constant where
 * inlined so that the loops over j unroll). */
static inline __attribute__((always_inline)) void dots2_m(const float *w0, const float *w1,
                                                          const float *const *x, int m, int64_t k,
                                                          float *o0, float *o1) {
    v8f a0[DOT_TILE], a1[DOT_TILE];
    for (int j = 0; j < m; j++) a0[j] = a1[j] = v8_splat(0.0f);
    int64_t i = 0;
    for (; i + V8 <= k; i += V8) {
        __builtin_prefetch(w0 + i + PREFETCH);
        __builtin_prefetch(w1 + i + PREFETCH);
        v8f r0 = v8_load(w0 + i), r1 = v8_load(w1 + i);
        for (int j = 0; j < m; j++) {
            v8f xv = v8_load(x[j] + i);
            a0[j] += r0 * xv;
            a1[j] += r1 * xv;
        }
    }
    for (int j = 0; j < m; j++) {
        float s0 = v8_sum(a0[j]), s1 = v8_sum(a1[j]);
        for (int64_t t = i; t < k; t++) {
            s0 += w0[t] * x[j][t];
            s1 += w1[t] * x[j][t];
        }
        o0[j] = s0;
        o1[j] = s1;
    }
}

/* dots2_m with m only known at run time (1 <= m <= DOT_TILE): one unrolled copy per m. */
static inline void dots2(const float *w0, const float *w1, const float *const *x, int m, int64_t k, float *o0,
                         float *o1) {
    switch (m) {
        case 1: dots2_m(w0, w1, x, 1, k, o0, o1); break;
        case 2: dots2_m(w0, w1, x, 2, k, o0, o1); break;
        case 3: dots2_m(w0, w1, x, 3, k, o0, o1); break;
        default: dots2_m(w0, w1, x, DOT_TILE, k, o0, o1); break;
    }
}

/* <w, x> over k floats: one weight row against one activation row (decode at batch 1), 32 floats per step in
 * four independent accumulators. Taking rows one after another keeps the weights a single sequential stream,
 * which the hardware prefetchers follow best: on a 2-core Zen 4, SmolLM2-135M's float32 linears in model
 * order (538 MB) took 10.1-12.7 ms this way against 13.3-15.8 ms reading eight rows side by side and 17.9-19.7
 * ms reading two. */
static inline float dot1(const float *w, const float *x, int64_t k) {
    v8f a0 = v8_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 4 * V8 <= k; i += 4 * V8) {
        a0 += v8_load(w + i) * v8_load(x + i);
        a1 += v8_load(w + i + V8) * v8_load(x + i + V8);
        a2 += v8_load(w + i + 2 * V8) * v8_load(x + i + 2 * V8);
        a3 += v8_load(w + i + 3 * V8) * v8_load(x + i + 3 * V8);
    }
    for (; i + V8 <= k; i += V8) a0 += v8_load(w + i) * v8_load(x + i);
    float s = v8_sum((a0 + a1) + (a2 + a3));
    for (; i < k; i++) s += w[i] * x[i];
    return s;
}

/* o[j] = <w, x[j]> for j < m (m <= DOT_TILE, a constant where inlined): one weight row read once for a few
 * activation rows (decode at batch 2-8), rows taken one after another as in dot1. On 2 Zen 4 cores,
 * SmolLM2-135M's float32 linears at batch 8 took 23.6 ms per step this way against 28.2 reading two rows
 * side by side (dots2). */
static inline __attribute__((always_inline)) void dots1_m(const float *w, const float *const *x, int m,
                                                          int64_t k, float *o) {
    v8f a0[DOT_TILE], a1[DOT_TILE];
    for (int j = 0; j < m; j++) a0[j] = a1[j] = v8_splat(0.0f);
    int64_t i = 0;
    for (; i + 2 * V8 <= k; i += 2 * V8) {
        v8f r0 = v8_load(w + i), r1 = v8_load(w + i + V8);
        for (int j = 0; j < m; j++) {
            a0[j] += r0 * v8_load(x[j] + i);
            a1[j] += r1 * v8_load(x[j] + i + V8);
        }
    }
    for (; i + V8 <= k; i += V8) {
        v8f r0 = v8_load(w + i);
        for (int j = 0; j < m; j++) a0[j] += r0 * v8_load(x[j] + i);
    }
    for (int j = 0; j < m; j++) {
        float s = v8_sum(a0[j] + a1[j]);
        for (int64_t t = i; t < k; t++) s += w[t] * x[j][t];
        o[j] = s;
    }
}

/* dots1_m with m only known at run time (1 <= m <= DOT_TILE): one unrolled copy per m. */
static inline void dots1(const float *w, const float *const *x, int m, int64_t k, float *o) {
    switch (m) {
        case 1: dots1_m(w, x, 1, k, o); break;
        case 2: dots1_m(w, x, 2, k, o); break;
        case 3: dots1_m(w, x, 3, k, o); break;
        default: dots1_m(w, x, DOT_TILE, k, o); break;
    }
}

#endif
