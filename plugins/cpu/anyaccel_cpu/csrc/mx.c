/* quant.mx_gemm on the CPU for the block-scaled formats (anyaccel.ops.microscaling): the weights are read as
 * stored (two e2m1 per byte, element 2i in the low nibble, or e4m3 bytes) and decoded block by block through
 * a 256-entry table into a buffer of one block, which is dotted with the rows of x. The block scales come
 * as float32 [N, K / block] (decoded once at load time, nvfp4's global folded in).
 *
 * A few rows (decode) stream the packed weights once per 8 rows; anyaccel_mx_dequant_f32 serves the many-row
 * path (dequantize once, then BLAS). */
#include <stdint.h>
#include <string.h>

#include "vec.h"

#define MX_ROWS 8 /* rows of x per pass over the weights */
#define MX_MAX_BLOCK 32

static const float E2M1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                               -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* float8_e4m3fn: sign, 4 exponent bits (bias 7), 3 mantissa bits; S.1111.111 is NaN */
static float e4m3_value(unsigned b) {
    unsigned e = (b >> 3) & 15, m = b & 7;
    float mag = e == 0 ? (float)m / 8.0f * 0.015625f : ldexpf(1.0f + (float)m / 8.0f, (int)e - 7);
    if (e == 15 && m == 7) mag = NAN;
    return (b & 0x80) ? -mag : mag;
}

/* one table for both: fp4 bytes give two values (low nibble first), fp8 bytes one */
static void build_table(int fp4, float table[256][2]) {
    for (unsigned b = 0; b < 256; b++) {
        table[b][0] = fp4 ? E2M1[b & 15] : e4m3_value(b);
        table[b][1] = fp4 ? E2M1[b >> 4] : 0.0f;
    }
}

/* the block of `block` values that starts at value index `start` of weight row `row` (row-major bytes) */
static inline void decode_block(const uint8_t *row, int fp4, int64_t start, int64_t block, float table[256][2],
                                float *buf) {
    if (fp4) {
        const uint8_t *bytes = row + start / 2;
        for (int64_t t = 0; t < block / 2; t++) {
            buf[2 * t] = table[bytes[t]][0];
            buf[2 * t + 1] = table[bytes[t]][1];
        }
    } else {
        for (int64_t t = 0; t < block; t++) buf[t] = table[row[start + t]][0];
    }
}

void anyaccel_mx_gemm_f32(const float *x, int64_t m, int64_t k, int64_t n, const uint8_t *w, int fp4,
                          const float *scales, int64_t block, const float *bias, float *out) {
    float table[256][2];
    build_table(fp4, table);
    const int64_t blocks = k / block, row_bytes = fp4 ? k / 2 : k;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *wrow = w + j * row_bytes;
        float buf[MX_MAX_BLOCK];
        for (int64_t r0 = 0; r0 < m; r0 += MX_ROWS) {
            const int64_t rows = m - r0 < MX_ROWS ? m - r0 : MX_ROWS;
            float acc[MX_ROWS] = {0};
            for (int64_t b = 0; b < blocks; b++) {
                decode_block(wrow, fp4, b * block, block, table, buf);
                const float s = scales[j * blocks + b];
                for (int64_t r = 0; r < rows; r++) {
                    const float *xr = x + (r0 + r) * k + b * block;
                    v8f d = v8_splat(0.0f);
                    for (int64_t t = 0; t < block; t += V8) d += v8_load(buf + t) * v8_load(xr + t);
                    acc[r] += s * v8_sum(d);
                }
            }
            for (int64_t r = 0; r < rows; r++) out[(r0 + r) * n + j] = acc[r] + (bias ? bias[j] : 0.0f);
        }
    }
}

void anyaccel_mx_dequant_f32(const uint8_t *w, int64_t n, int64_t k, int fp4, const float *scales,
                             int64_t block, float *out) {
    float table[256][2];
    build_table(fp4, table);
    const int64_t blocks = k / block, row_bytes = fp4 ? k / 2 : k;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j++) {
        for (int64_t b = 0; b < blocks; b++) {
            float *dst = out + j * k + b * block;
            decode_block(w + j * row_bytes, fp4, b * block, block, table, dst);
            const float s = scales[j * blocks + b];
            for (int64_t t = 0; t < block; t++) dst[t] *= s;
        }
    }
}
