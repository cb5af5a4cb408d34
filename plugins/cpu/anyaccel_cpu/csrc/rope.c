/* rope.apply in float32: q and k rotated in one call, each (token, head) row independently:
 *   x1' = x1 c - x2 s,  x2' = x2 c + x1 s,  (c, s) = cache[pos] halves
 * with the pairs (i, i + R/2) (GPT-NeoX) or (2i, 2i + 1) (GPT-J); channels past R are copied. */
#include "vec.h"

static void rotate_row(const float *x, const float *cos, const float *sin, int64_t half, int64_t D, int neox,
                       float *y) {
    if (neox) {
        int64_t i = 0;
        for (; i + V8 <= half; i += V8) {
            v8f x1 = v8_load(x + i), x2 = v8_load(x + half + i), c = v8_load(cos + i), s = v8_load(sin + i);
            v8_store(y + i, x1 * c - x2 * s);
            v8_store(y + half + i, x2 * c + x1 * s);
        }
        for (; i < half; i++) {
            float x1 = x[i], x2 = x[half + i];
            y[i] = x1 * cos[i] - x2 * sin[i];
            y[half + i] = x2 * cos[i] + x1 * sin[i];
        }
    } else {
        for (int64_t i = 0; i < half; i++) {
            float x1 = x[2 * i], x2 = x[2 * i + 1];
            y[2 * i] = x1 * cos[i] - x2 * sin[i];
            y[2 * i + 1] = x2 * cos[i] + x1 * sin[i];
        }
    }
    memcpy(y + 2 * half, x + 2 * half, (size_t)(D - 2 * half) * sizeof(float));
}

/* q [T, Hq, D] with strides (q_st, q_sh, 1), k [T, Hk, D] with (k_st, k_sh, 1); q_out and k_out contiguous;
 * positions [T] int64; cache [max_position, R] float32 (cos, then sin). Returns 0, or -1 when a position is
 * outside [0, max_position). */
int anyaccel_rope_f32(const float *q, int64_t q_st, int64_t q_sh, int64_t Hq, const float *k, int64_t k_st,
                      int64_t k_sh, int64_t Hk, int64_t T, int64_t D, const int64_t *positions,
                      const float *cache, int64_t rotary_dim, int64_t max_position, int neox, float *q_out,
                      float *k_out) {
    int failed = 0;
    int64_t half = rotary_dim / 2;
#pragma omp parallel for if (T * (Hq + Hk) * D >= (1 << 16)) reduction(| : failed)
    for (int64_t t = 0; t < T; t++) {
        int64_t pos = positions[t];
        if (pos < 0 || pos >= max_position) {
            failed = 1;
            continue;
        }
        const float *cos = cache + pos * rotary_dim, *sin = cos + half;
        for (int64_t h = 0; h < Hq; h++)
            rotate_row(q + t * q_st + h * q_sh, cos, sin, half, D, neox, q_out + (t * Hq + h) * D);
        for (int64_t h = 0; h < Hk; h++)
            rotate_row(k + t * k_st + h * k_sh, cos, sin, half, D, neox, k_out + (t * Hk + h) * D);
    }
    return failed ? -1 : 0;
}
