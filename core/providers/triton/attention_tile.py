"""Device helpers shared by the Triton attention kernels: paged-cache tile loads and the online-softmax step.

Softmax statistics are fp32 natural exp/log; a fully masked row keeps max -inf and weight 0, never NaN.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .jitlib import mma, soft_cap


@triton.jit
def load_paged(
    cache_ptr,
    bt_row_ptr,
    pos,
    ok,
    kv_head,
    head_dim,
    d,
    stride_block,
    stride_slot,
    stride_head,
    PAGE: tl.constexpr,
):
    """Rows `pos` (absolute token positions, masked by `ok`) of one kv head of a paged cache addressed through
    its [num_blocks, block_size, Hkv, D] strides (NHD, or HND's transposed view): [len(pos), len(d)] in the
    cache dtype."""
    page = tl.load(bt_row_ptr + pos // PAGE, mask=ok, other=0).to(tl.int64)
    offs = page * stride_block + (pos % PAGE) * stride_slot + kv_head * stride_head
    return tl.load(
        cache_ptr + offs[:, None] + d[None, :], mask=ok[:, None] & (d < head_dim)[None, :], other=0.0
    )


@triton.jit
def online_step(
    q, k, v, valid, m, denom, acc, logit_scale, v_scale, cap, SOFTCAP: tl.constexpr, FP32_DOT: tl.constexpr
):
    """One key tile of flash attention. q [R, D] (compute dtype), k/v [N, D] (any dtype, converted exactly to
    q's), valid [R, N]; m, denom [R] and acc [R, D] fp32 running max, denominator and numerator.
    logit_scale multiplies q.k (softmax scale x k_scale); v_scale multiplies v (fp8 caches)."""
    dt = q.dtype
    s = (
        mma(tl.zeros([q.shape[0], k.shape[0]], dtype=tl.float32), q, tl.trans(k.to(dt)), FP32_DOT)
        * logit_scale
    )
    s = soft_cap(s, SOFTCAP, cap)
    s = tl.where(valid, s, float("-inf"))
    m_new = tl.maximum(m, tl.max(s, axis=1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    alpha = tl.exp(m - m_safe)
    p = tl.exp(s - m_safe[:, None])
    denom = denom * alpha + tl.sum(p, axis=1)
    acc = mma(acc * alpha[:, None], (p * v_scale).to(dt), v.to(dt), FP32_DOT)
    return m_new, denom, acc


@triton.jit
def add_sinks(m, denom, acc, sinks):
    """Join per-row sink logits to the softmax denominator (they contribute no value)."""
    m_new = tl.maximum(m, sinks)
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows outside the tile: no keys and no sink
    alpha = tl.exp(m - m_safe)
    return m_new, denom * alpha + tl.exp(sinks - m_safe), acc * alpha[:, None]
