/* moe.experts for float32 weights in the contract layout: w13 [E, 2I, H] (gate rows, then up rows),
 * w2 [E, H, I], both contiguous. Only the chosen experts' rows are read, each once per call:
 *
 *   route    assignments (token t, choice j) grouped by local expert, in token order
 *   stage 1  act[slot] = act(gate . x_t) * (up . x_t)      work items: (expert, block of I rows)
 *   stage 2  out[t] = sum_e w_tj * (w2[e] . act[slot])     work items: blocks of H columns, so each
 *                                                          item owns its columns of out (no atomics)
 *
 * An expert with many rows (prefill) has its block packed k-major once per work item and runs the tiled
 * micro-kernel (tile.h); one with a few rows (decode) streams its weights through dots.h.
 * Experts add up in ascending id order, so results do not depend on the thread count. */
#include "dots.h"
#include "scratch.h"
#include "tile.h"

enum { ACT_SILU = 0, ACT_GELU = 1 };
enum { ROWS = 32 };     /* output rows (of I in stage 1, of H in stage 2) per work item: 2 x TILE_N */
enum { PACK_MIN = 16 }; /* an expert with this many rows has its block packed for the tiled kernel */

/* The routing tables (calling thread) and the packed weight blocks (each OpenMP thread; those threads
 * persist): per-thread scratch (scratch.h). */
static _Thread_local Scratch route_scratch, pack_scratch;

static void activate(float *dst, const float *gate, const float *up, int n, int act) {
    int i = 0;
    if (act == ACT_SILU) {
        for (; i + V8 <= n; i += V8) {
            v8f g = v8_load(gate + i);
            v8_store(dst + i, g / (1.0f + v8_exp(-g)) * v8_load(up + i));
        }
        for (; i < n; i++) dst[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
    } else {
        for (; i < n; i++) dst[i] = 0.5f * gate[i] * (1.0f + erff(gate[i] * (float)M_SQRT1_2)) * up[i];
    }
}

/* Returns 0, -1 for an expert id outside [0, len(expert_map or w13)) or a map entry outside [-1, E),
 * -2 when scratch memory cannot be had. */
int anyaccel_moe_experts_f32(const float *x, int64_t T, int64_t H, const float *w13, const float *w2,
                             int64_t E, int64_t I, const float *topk_weights, const int32_t *topk_ids,
                             int64_t K, const int32_t *expert_map, int64_t num_global, int act,
                             float *out) {
    if (T == 0) return 0;
    int64_t n = T * K;
    size_t ints = (size_t)(2 * E + 1 + 2 * n + E);
    size_t bytes = ints * sizeof(int64_t) + (size_t)n * sizeof(float) + (size_t)n * (size_t)I * sizeof(float);
    int64_t *count = grow(&route_scratch, bytes);
    if (!count) return -2;
    int64_t *offset = count + E, *slot_token = offset + E + 1, *local = slot_token + n, *active = local + n;
    float *slot_weight = (float *)(active + E), *act_rows = slot_weight + n;

    /* route: local expert of every assignment (-1: not here), then a counting sort by expert */
    memset(count, 0, (size_t)E * sizeof *count);
    for (int64_t a = 0; a < n; a++) {
        int64_t id = topk_ids[a];
        if (id < 0 || id >= (expert_map ? num_global : E)) return -1;
        int64_t e = expert_map ? expert_map[id] : id;
        if (e < -1 || e >= E) return -1;
        local[a] = e;
        if (e >= 0) count[e]++;
    }
    int64_t num_active = 0;
    offset[0] = 0;
    for (int64_t e = 0; e < E; e++) {
        offset[e + 1] = offset[e] + count[e];
        if (count[e]) active[num_active++] = e;
        count[e] = offset[e]; /* from here on: the next free slot of expert e */
    }
    for (int64_t a = 0; a < n; a++) {
        if (local[a] < 0) continue;
        int64_t s = count[local[a]]++;
        slot_token[s] = a / K;
        slot_weight[s] = topk_weights[a];
    }

    /* stage 1: act_rows[s] = act(gate . x) * (up . x) for every slot s */
    int64_t row_blocks = (I + ROWS - 1) / ROWS;
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
    for (int64_t item = 0; item < num_active * row_blocks; item++) {
        int64_t e = active[item / row_blocks], r0 = item % row_blocks * ROWS;
        int rows = (int)(I - r0 < ROWS ? I - r0 : ROWS);
        const float *gate_w = w13 + (e * 2 * I + r0) * H, *up_w = gate_w + I * H;
        float gate[TILE_M][ROWS], up[TILE_M][ROWS];
        if (offset[e + 1] - offset[e] >= PACK_MIN) {
            float *packed = grow(&pack_scratch, (size_t)H * 2 * ROWS * sizeof(float));
            if (!packed) {
                failed = 1;
                continue;
            }
            pack_block(gate_w, H, rows, ROWS, H, packed, 2 * ROWS, 0);
            pack_block(up_w, H, rows, ROWS, H, packed, 2 * ROWS, ROWS);
            for (int64_t s0 = offset[e]; s0 < offset[e + 1]; s0 += TILE_M) {
                int m = (int)(offset[e + 1] - s0 < TILE_M ? offset[e + 1] - s0 : TILE_M);
                const float *xs[TILE_M];
                for (int j = 0; j < m; j++) xs[j] = x + slot_token[s0 + j] * H;
                for (int c = 0; c < 2 * ROWS; c += TILE_N) {
                    float part[TILE_M][TILE_N];
                    tile(xs, m, packed + c, 2 * ROWS, H, part);
                    for (int j = 0; j < m; j++)
                        memcpy(c < ROWS ? gate[j] + c : up[j] + c - ROWS, part[j], sizeof part[j]);
                }
                for (int j = 0; j < m; j++) activate(act_rows + (s0 + j) * I + r0, gate[j], up[j], rows, act);
            }
            continue;
        }
        for (int64_t s0 = offset[e]; s0 < offset[e + 1]; s0 += DOT_TILE) {
            int m = (int)(offset[e + 1] - s0 < DOT_TILE ? offset[e + 1] - s0 : DOT_TILE);
            const float *xs[DOT_TILE];
            for (int j = 0; j < m; j++) xs[j] = x + slot_token[s0 + j] * H;
            float g[DOT_TILE], u[DOT_TILE];
            for (int r = 0; r < rows; r++) {
                dots2(gate_w + r * H, up_w + r * H, xs, m, H, g, u);
                for (int j = 0; j < m; j++) gate[j][r] = g[j], up[j][r] = u[j];
            }
            for (int j = 0; j < m; j++) activate(act_rows + (s0 + j) * I + r0, gate[j], up[j], rows, act);
        }
    }

    /* stage 2: out[:, c0:c0+ROWS] = sum over slots of weight * (w2[e] rows . act_rows[s]) */
    int64_t col_blocks = (H + ROWS - 1) / ROWS;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
    for (int64_t item = 0; item < col_blocks; item++) {
        int64_t c0 = item * ROWS;
        int cols = (int)(H - c0 < ROWS ? H - c0 : ROWS);
        for (int64_t t = 0; t < T; t++) memset(out + t * H + c0, 0, (size_t)cols * sizeof(float));
        for (int64_t i = 0; i < num_active; i++) {
            int64_t e = active[i];
            const float *down = w2 + (e * H + c0) * I;
            if (offset[e + 1] - offset[e] >= PACK_MIN) {
                float *packed = grow(&pack_scratch, (size_t)I * ROWS * sizeof(float));
                if (!packed) {
                    failed = 1;
                    break;
                }
                pack_block(down, I, cols, ROWS, I, packed, ROWS, 0);
                for (int64_t s0 = offset[e]; s0 < offset[e + 1]; s0 += TILE_M) {
                    int m = (int)(offset[e + 1] - s0 < TILE_M ? offset[e + 1] - s0 : TILE_M);
                    const float *as[TILE_M];
                    for (int j = 0; j < m; j++) as[j] = act_rows + (s0 + j) * I;
                    for (int c = 0; c < cols; c += TILE_N) {
                        float part[TILE_M][TILE_N];
                        tile(as, m, packed + c, ROWS, I, part);
                        for (int j = 0; j < m; j++) {
                            float *dst = out + slot_token[s0 + j] * H + c0 + c, w = slot_weight[s0 + j];
                            for (int n = 0; n < TILE_N && c + n < cols; n++) dst[n] += w * part[j][n];
                        }
                    }
                }
                continue;
            }
            for (int64_t s0 = offset[e]; s0 < offset[e + 1]; s0 += DOT_TILE) {
                int m = (int)(offset[e + 1] - s0 < DOT_TILE ? offset[e + 1] - s0 : DOT_TILE);
                const float *as[DOT_TILE];
                for (int j = 0; j < m; j++) as[j] = act_rows + (s0 + j) * I;
                for (int c = 0; c < cols; c += 2) {
                    const float *row0 = down + c * I;
                    const float *row1 = c + 1 < cols ? row0 + I : row0; /* odd tail: computed twice */
                    float o0[DOT_TILE], o1[DOT_TILE];
                    dots2(row0, row1, as, m, I, o0, o1);
                    for (int j = 0; j < m; j++) {
                        float *dst = out + slot_token[s0 + j] * H + c0 + c;
                        dst[0] += slot_weight[s0 + j] * o0[j];
                        if (c + 1 < cols) dst[1] += slot_weight[s0 + j] * o1[j];
                    }
                }
            }
        }
    }
    return failed ? -2 : 0;
}
