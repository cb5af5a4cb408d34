/* norm.rms_norm / norm.add_rms_norm in float32: y = x * rsqrt(mean(x^2) + eps) * weight over the last dim,
 * one pass to sum squares and one to write. Rows are addressed as [n0, n1] with strides (s0, s1) and the
 * last dim contiguous, so per-head norms of a fused qkv projection's view need no copy. */
#include "vec.h"

static void normalize_row(const float *x, const float *w, float eps, int64_t H, float *y) {
    v8f acc = v8_splat(0.0f);
    int64_t i = 0;
    for (; i + V8 <= H; i += V8) {
        v8f v = v8_load(x + i);
        acc += v * v;
    }
    float sq = v8_sum(acc);
    for (int64_t j = i; j < H; j++) sq += x[j] * x[j];
    float r = 1.0f / sqrtf(sq / (float)H + eps);
    for (i = 0; i + V8 <= H; i += V8) v8_store(y + i, v8_load(x + i) * r * v8_load(w + i));
    for (; i < H; i++) y[i] = x[i] * r * w[i];
}

/* residual == NULL (rms_norm): out [n0 * n1, H] contiguous = norm(x).
 * Otherwise (add_rms_norm): residual += x, then x = norm(residual), in place; out is not used. The residual's
 * rows have strides (r0, r1). */
void anyaccel_rms_norm_f32(const float *x, int64_t n0, int64_t n1, int64_t s0, int64_t s1, int64_t H,
                           const float *w, float eps, float *out, float *residual, int64_t r0, int64_t r1) {
    int64_t rows = n0 * n1;
#pragma omp parallel for if (rows * H >= (1 << 16))
    for (int64_t row = 0; row < rows; row++) {
        int64_t i0 = row / n1, i1 = row % n1;
        const float *src = x + i0 * s0 + i1 * s1;
        if (!residual) {
            normalize_row(src, w, eps, H, out + row * H);
            continue;
        }
        float *res = residual + i0 * r0 + i1 * r1;
        int64_t i = 0;
        for (; i + V8 <= H; i += V8) v8_store(res + i, v8_load(res + i) + v8_load(src + i));
        for (; i < H; i++) res[i] += src[i];
        normalize_row(res, w, eps, H, (float *)src);
    }
}
