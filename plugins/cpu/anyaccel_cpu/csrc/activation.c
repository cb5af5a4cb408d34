/* activation.silu_and_mul in float32: out[r, i] = silu(x[r, i]) * x[r, I + i], silu(g) = g / (1 + e^-g).
 * One pass over each row's gate and up halves; rows of x are ldx floats apart (a view of a wider
 * projection needs no copy), out is [rows, I] contiguous. */
#include "vec.h"

void anyaccel_silu_and_mul_f32(const float *x, int64_t rows, int64_t I, int64_t ldx, float *out) {
#pragma omp parallel for if (rows * I >= (1 << 16))
    for (int64_t r = 0; r < rows; r++) {
        const float *gate = x + r * ldx, *up = gate + I;
        float *o = out + r * I;
        int64_t i = 0;
        for (; i + V8 <= I; i += V8) {
            v8f g = v8_load(gate + i);
            v8_store(o + i, g / (1.0f + v8_exp(-g)) * v8_load(up + i));
        }
        for (; i < I; i++) o[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
    }
}
