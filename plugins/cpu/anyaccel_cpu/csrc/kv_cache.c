/* attention.write_kv for float32 caches in NHD layout: token t's k and v rows go to row slot[t] of the
 * caches' flat [num_blocks * block_size, Hkv, D] view; slot -1 (padding) is skipped. */
#include "vec.h"

/* k, v [T, Hkv, D] with strides (st, sh, 1) each; caches contiguous. Returns 0, or -1 when a slot is
 * outside [-1, num_slots). */
int anyaccel_write_kv_f32(const float *k, int64_t k_st, int64_t k_sh, const float *v, int64_t v_st, int64_t v_sh,
                          int64_t T, int64_t Hkv, int64_t D, float *k_cache, float *v_cache, int64_t num_slots,
                          const int64_t *slots) {
    int failed = 0;
    size_t row = (size_t)D * sizeof(float);
    for (int64_t t = 0; t < T; t++) {
        int64_t slot = slots[t];
        if (slot < -1 || slot >= num_slots) failed = 1;
        if (slot < 0 || slot >= num_slots) continue;
        for (int64_t h = 0; h < Hkv; h++) {
            memcpy(k_cache + (slot * Hkv + h) * D, k + t * k_st + h * k_sh, row);
            memcpy(v_cache + (slot * Hkv + h) * D, v + t * v_st + h * v_sh, row);
        }
    }
    return failed ? -1 : 0;
}
