/* moe.topk without expert groups, in float32: per token, scores = softmax(logits) or sigmoid(logits);
 * the k experts with the highest score + bias are chosen (ties: the lower id), their unbiased scores are
 * the weights, renormalised to sum 1 when asked, then scaled. */
#include "scratch.h"
#include "vec.h"

/* each OpenMP thread's scores and choice scores: 2 * E floats */
static _Thread_local Scratch topk_scratch;

/* logits [T, E] contiguous; bias [E] or NULL; weights [T, k] float32 and ids [T, k] int32 out, each row by
 * descending choice score. Returns 0, or -2 when scratch memory cannot be had. */
int anyaccel_topk_f32(const float *logits, int64_t T, int64_t E, int64_t k, int sigmoid, const float *bias,
                       int renormalize, float scaling, float *weights, int32_t *ids) {
    int failed = 0;
#pragma omp parallel for if (T * E >= (1 << 15)) reduction(| : failed)
    for (int64_t t = 0; t < T; t++) {
        const float *x = logits + t * E;
        float *score = grow(&topk_scratch, (size_t)(2 * E) * sizeof(float));
        if (!score) {
            failed = 1;
            continue;
        }
        float *choice = score + E;
        if (sigmoid) {
            for (int64_t e = 0; e < E; e++) score[e] = 1.0f / (1.0f + expf(-x[e]));
        } else {
            float top = -INFINITY, total = 0.0f;
            for (int64_t e = 0; e < E; e++) top = x[e] > top ? x[e] : top;
            for (int64_t e = 0; e < E; e++) total += score[e] = expf(x[e] - top);
            for (int64_t e = 0; e < E; e++) score[e] /= total;
        }
        for (int64_t e = 0; e < E; e++) choice[e] = bias ? score[e] + bias[e] : score[e];
        float *w = weights + t * k, sum = 0.0f;
        int32_t *id = ids + t * k;
        for (int64_t j = 0; j < k; j++) { /* k passes of a max: k is small (at most 8-10 in practice) */
            int64_t best = -1;
            for (int64_t e = 0; e < E; e++)
                if (choice[e] == choice[e] && (best < 0 || choice[e] > choice[best])) best = e;
            if (best < 0) best = 0; /* every score NaN: the contract's NaN is the caller's */
            id[j] = (int32_t)best;
            sum += w[j] = score[best];
            choice[best] = NAN;
        }
        float norm = renormalize && sum > 0 ? scaling / sum : scaling;
        for (int64_t j = 0; j < k; j++) w[j] *= norm;
    }
    return failed ? -2 : 0;
}
