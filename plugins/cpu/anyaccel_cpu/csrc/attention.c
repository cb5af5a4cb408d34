/* attention.decode for a float32 query and float32 paged cache in NHD layout ([blocks, block_size, Hkv, D],
 * contiguous). One work item per (sequence, KV head) reads that head's keys and values once for all the
 * query heads that share it (grouped-query attention), page by page; with fewer such items than four per
 * thread (batch 1 of a model with 3 KV heads on 2 threads: one thread would do two thirds of the work),
 * each query head is an item of its own, its group's pages read again from cache. Online softmax:
 *
 *   m' = max(m, max_p s_p),  l' = l e^(m - m') + sum_p e^(s_p - m'),  acc' = acc e^(m - m') + sum_p e^(s_p - m') v_p
 *
 * A sink (a per-head logit with no value) is the starting state m = sink, l = 1. */
#include <omp.h>

#include "scratch.h"
#include "vec.h"

/* each OpenMP thread's running maxima, sums and page scores: G * (2 + block_size) floats */
static _Thread_local Scratch decode_scratch;

/* s[j] = <q, keys + j * stride> for j < n: four keys at a time, so four independent FMA chains */
static void scores(const float *q, const float *keys, int64_t stride, int64_t n, int64_t D, float *s) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *k0 = keys + j * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        v8f a0 = v8_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
        int64_t d = 0;
        for (; d + V8 <= D; d += V8) {
            v8f qv = v8_load(q + d);
            a0 += qv * v8_load(k0 + d);
            a1 += qv * v8_load(k1 + d);
            a2 += qv * v8_load(k2 + d);
            a3 += qv * v8_load(k3 + d);
        }
        float t0 = v8_sum(a0), t1 = v8_sum(a1), t2 = v8_sum(a2), t3 = v8_sum(a3);
        for (; d < D; d++) t0 += q[d] * k0[d], t1 += q[d] * k1[d], t2 += q[d] * k2[d], t3 += q[d] * k3[d];
        s[j] = t0, s[j + 1] = t1, s[j + 2] = t2, s[j + 3] = t3;
    }
    for (; j < n; j++) {
        const float *k = keys + j * stride;
        v8f a = v8_splat(0.0f);
        int64_t d = 0;
        for (; d + V8 <= D; d += V8) a += v8_load(q + d) * v8_load(k + d);
        float t = v8_sum(a);
        for (; d < D; d++) t += q[d] * k[d];
        s[j] = t;
    }
}

/* acc = acc * c + sum_j p[j] * (values + j * stride) over D floats, 32 at a time in registers */
static void accumulate(float *acc, float c, const float *p, const float *values, int64_t stride, int64_t n,
                       int64_t D) {
    int64_t d = 0;
    for (; d + 4 * V8 <= D; d += 4 * V8) {
        v8f a0 = v8_load(acc + d) * c, a1 = v8_load(acc + d + 8) * c;
        v8f a2 = v8_load(acc + d + 16) * c, a3 = v8_load(acc + d + 24) * c;
        for (int64_t j = 0; j < n; j++) {
            const float *v = values + j * stride + d;
            a0 += p[j] * v8_load(v), a1 += p[j] * v8_load(v + 8);
            a2 += p[j] * v8_load(v + 16), a3 += p[j] * v8_load(v + 24);
        }
        v8_store(acc + d, a0), v8_store(acc + d + 8, a1), v8_store(acc + d + 16, a2), v8_store(acc + d + 24, a3);
    }
    for (; d + V8 <= D; d += V8) {
        v8f a = v8_load(acc + d) * c;
        for (int64_t j = 0; j < n; j++) a += p[j] * v8_load(values + j * stride + d);
        v8_store(acc + d, a);
    }
    for (; d < D; d++) {
        float a = acc[d] * c;
        for (int64_t j = 0; j < n; j++) a += p[j] * values[j * stride + d];
        acc[d] = a;
    }
}

/* Asks for one head's rows of a page (block_size tokens of D floats, token_stride apart) ahead of use: in a
 * decode step the cache is cold (the weights streamed through since the layer last read it), and the
 * prefetchers cannot guess the next page of a block table. SmolLM2-135M, 30 layers at 230 tokens: 0.85 ->
 * 0.65 ms per step from a cold cache. */
static void prefetch_page(const float *rows, int64_t block_size, int64_t token_stride, int64_t D) {
    for (int64_t j = 0; j < block_size; j++)
        for (int64_t d = 0; d < D; d += 16) __builtin_prefetch(rows + j * token_stride + d);
}

/* exp of n <= block_size floats in place (the tail lane group padded through a copy) */
static void exp_inplace(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + V8 <= n; i += V8) v8_store(x + i, v8_exp(v8_load(x + i)));
    if (i < n) {
        float pad[V8] = {0};
        memcpy(pad, x + i, (size_t)(n - i) * sizeof(float));
        v8f e = v8_exp(v8_load(pad));
        memcpy(x + i, &e, (size_t)(n - i) * sizeof(float));
    }
}

/* q [B, Hq, D] with strides (q_sb, q_sh, 1); out [B, Hq, D] contiguous; block_tables [B, max_blocks] int32;
 * seq_lens [B] int32; sinks [Hq] float32 or NULL. Returns 0, -1 when a sequence's table names a block
 * outside [0, num_blocks) among its first ceil(len / block_size) entries or its length exceeds
 * max_blocks * block_size (that sequence's output is then zeros, never another sequence's), -2 when scratch
 * memory cannot be had. Only a sequence's own pages are read, and only its first len slots of them. */
int anyaccel_paged_decode_f32(const float *q, int64_t B, int64_t Hq, int64_t D, int64_t q_sb, int64_t q_sh,
                              const float *k_cache, const float *v_cache, int64_t num_blocks,
                              int64_t block_size, int64_t Hkv, const int32_t *block_tables,
                              int64_t max_blocks, const int32_t *seq_lens, float scale, int64_t window,
                              float softcap, const float *sinks, float *out) {
    int64_t group = Hq / Hkv, token_stride = Hkv * D;
    int64_t split = B * Hkv < 4 * (int64_t)omp_get_max_threads() ? group : 1; /* items per (sequence, head) */
    int64_t G = group / split; /* query heads per item */
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
    for (int64_t item = 0; item < B * Hkv * split; item++) {
        int64_t b = item / (Hkv * split), h = item / split % Hkv, first = h * group + item % split * G;
        int64_t len = seq_lens[b];
        float *o = out + (b * Hq + first) * D;
        if (len <= 0 || len > max_blocks * block_size) {
            memset(o, 0, (size_t)(G * D) * sizeof(float));
            failed |= len > 0 ? 1 : 0;
            continue;
        }
        float *m = grow(&decode_scratch, (size_t)(G * (2 + block_size)) * sizeof(float));
        if (!m) {
            memset(o, 0, (size_t)(G * D) * sizeof(float));
            failed |= 2;
            continue;
        }
        float *l = m + G, *s = l + G; /* s: G rows of block_size scores */
        for (int64_t g = 0; g < G; g++) {
            m[g] = sinks ? sinks[first + g] : -INFINITY;
            l[g] = sinks ? 1.0f : 0.0f;
            memset(o + g * D, 0, (size_t)D * sizeof(float));
        }
        int64_t start = window > 0 && len > window ? len - window : 0;
        for (int64_t page = start / block_size; page * block_size < len; page++) {
            int64_t block = block_tables[b * max_blocks + page];
            if (block < 0 || block >= num_blocks) {
                memset(o, 0, (size_t)(G * D) * sizeof(float));
                failed |= 1;
                break;
            }
            int64_t p0 = page * block_size < start ? start - page * block_size : 0;
            int64_t p1 = len - page * block_size < block_size ? len - page * block_size : block_size;
            const float *keys = k_cache + block * block_size * token_stride + h * D;
            const float *values = v_cache + block * block_size * token_stride + h * D;
            int64_t n = p1 - p0;
            int64_t next = (page + 1) * block_size < len ? block_tables[b * max_blocks + page + 1] : -1;
            if (next >= 0 && next < num_blocks) { /* the next page's keys and values, read meanwhile */
                prefetch_page(k_cache + next * block_size * token_stride + h * D, block_size, token_stride, D);
                prefetch_page(v_cache + next * block_size * token_stride + h * D, block_size, token_stride, D);
            }
            for (int64_t g = 0; g < G; g++) {
                float *sg = s + g * block_size;
                scores(q + b * q_sb + (first + g) * q_sh, keys + p0 * token_stride, token_stride, n, D, sg);
                float top = m[g];
                for (int64_t j = 0; j < n; j++) {
                    float x = sg[j] * scale;
                    if (softcap > 0) x = softcap * tanhf(x / softcap);
                    sg[j] = x;
                    top = x > top ? x : top;
                }
                float correction = expf(m[g] - top); /* 0 on the first page without a sink */
                for (int64_t j = 0; j < n; j++) sg[j] -= top;
                exp_inplace(sg, n);
                float total = 0.0f;
                for (int64_t j = 0; j < n; j++) total += sg[j];
                l[g] = l[g] * correction + total;
                m[g] = top;
                accumulate(o + g * D, correction, sg, values + p0 * token_stride, token_stride, n, D);
            }
        }
        for (int64_t g = 0; g < G; g++) {
            float inv = l[g] > 0 ? 1.0f / l[g] : 0.0f;
            for (int64_t d = 0; d < D; d++) o[g * D + d] *= inv;
        }
    }
    return failed & 2 ? -2 : failed ? -1 : 0;
}
