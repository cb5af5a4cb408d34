"""Triton attention.prefill: variable-length flash attention over packed sequences (contract in
anyaccel.ops.attention), optionally attending to each sequence's cached prefix pages first.

Grid (query block, sequence, kv head). GQA rows are packed: a program's ROWS rows are BLOCK_M new tokens x
the (power-of-two padded) query heads of one kv head, so every K/V tile is loaded once for the whole group.
Keys are walked in absolute positions: the cached prefix [0, seq_len - new) from the paged cache (NHD or
HND, fp8 with scales allowed), then the new tokens from k/v. Causal and sliding-window bounds trim both loops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import as_nhd
from anyaccel.platforms.base import Platform

from .attention_tile import add_sinks, load_paged, online_step
from .launch import cdiv, fp32_dot, next_pow2
from .tuning import Tuning, split_options


@triton.jit
def _keep(kpos, qpos, ok, row_ok, window, CAUSAL: tl.constexpr, WINDOW: tl.constexpr):
    """[R, N] mask of the keys at absolute positions kpos each query row (at qpos) attends to."""
    keep = row_ok[:, None] & ok[None, :]
    if CAUSAL:
        keep = keep & (kpos[None, :] <= qpos[:, None])
    if WINDOW:
        keep = keep & (kpos[None, :] > qpos[:, None] - window)
    return keep


@triton.jit
def _prefill_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    cu_ptr,
    seq_lens_ptr,
    sinks_ptr,
    k_cache_ptr,
    v_cache_ptr,
    bt_ptr,
    k_scale_ptr,
    v_scale_ptr,
    out_ptr,
    scale,
    window,
    cap,
    group,
    head_dim,
    q_t_stride,
    q_h_stride,
    o_t_stride,
    o_h_stride,
    k_t_stride,
    k_h_stride,
    v_t_stride,
    v_h_stride,
    bt_stride,
    stride_block,
    stride_slot,
    stride_head,
    CAUSAL: tl.constexpr,
    WINDOW: tl.constexpr,
    SOFTCAP: tl.constexpr,
    SINKS: tl.constexpr,
    PREFIX: tl.constexpr,
    FP8: tl.constexpr,
    PAGE: tl.constexpr,
    G_PAD: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    FP32_DOT: tl.constexpr,
):
    m_block = tl.program_id(0)
    b = tl.program_id(1)
    kv_head = tl.program_id(2)
    first = tl.load(cu_ptr + b)
    n_new = tl.load(cu_ptr + b + 1) - first
    if m_block * BLOCK_M >= n_new:
        return
    prefix = 0
    if PREFIX:
        prefix = tl.load(seq_lens_ptr + b) - n_new
    r = tl.arange(0, BLOCK_M * G_PAD)
    tok = m_block * BLOCK_M + r // G_PAD
    head = kv_head * group + r % G_PAD
    row_ok = (tok < n_new) & (r % G_PAD < group)
    d = tl.arange(0, BLOCK_D)
    d_ok = d < head_dim
    row = (first + tok).to(tl.int64)
    q = tl.load(
        q_ptr + row[:, None] * q_t_stride + head[:, None] * q_h_stride + d[None, :],
        mask=row_ok[:, None] & d_ok[None, :],
        other=0.0,
    )
    qpos = prefix + tok
    # absolute key positions this block can see: [lo, hi)
    hi = prefix + n_new
    if CAUSAL:
        hi = tl.minimum(hi, prefix + (m_block + 1) * BLOCK_M)
    lo = 0
    if WINDOW:
        lo = tl.maximum(0, prefix + m_block * BLOCK_M - window + 1)
    m = tl.full([BLOCK_M * G_PAD], float("-inf"), dtype=tl.float32)
    denom = tl.zeros([BLOCK_M * G_PAD], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M * G_PAD, BLOCK_D], dtype=tl.float32)
    if PREFIX:
        k_scale = 1.0
        v_scale = 1.0
        if FP8:
            k_scale = tl.load(k_scale_ptr)
            v_scale = tl.load(v_scale_ptr)
        bt_row = bt_ptr + b.to(tl.int64) * bt_stride
        for start in range(lo, tl.minimum(prefix, hi), BLOCK_N):
            kpos = start + tl.arange(0, BLOCK_N)
            ok = kpos < prefix
            k = load_paged(
                k_cache_ptr,
                bt_row,
                kpos,
                ok,
                kv_head,
                head_dim,
                d,
                stride_block,
                stride_slot,
                stride_head,
                PAGE,
            )
            v = load_paged(
                v_cache_ptr,
                bt_row,
                kpos,
                ok,
                kv_head,
                head_dim,
                d,
                stride_block,
                stride_slot,
                stride_head,
                PAGE,
            )
            keep = _keep(kpos, qpos, ok, row_ok, window, CAUSAL, WINDOW)
            m, denom, acc = online_step(
                q, k, v, keep, m, denom, acc, scale * k_scale, v_scale, cap, SOFTCAP, FP32_DOT
            )
    for start in range(tl.maximum(lo, prefix), hi, BLOCK_N):
        kpos = start + tl.arange(0, BLOCK_N)
        ok = kpos < hi
        key_row = (first + kpos - prefix).to(tl.int64)
        kv_mask = ok[:, None] & d_ok[None, :]
        k = tl.load(
            k_ptr + key_row[:, None] * k_t_stride + kv_head * k_h_stride + d[None, :], mask=kv_mask, other=0.0
        )
        v = tl.load(
            v_ptr + key_row[:, None] * v_t_stride + kv_head * v_h_stride + d[None, :], mask=kv_mask, other=0.0
        )
        keep = _keep(kpos, qpos, ok, row_ok, window, CAUSAL, WINDOW)
        m, denom, acc = online_step(q, k, v, keep, m, denom, acc, scale, 1.0, cap, SOFTCAP, FP32_DOT)
    if SINKS:
        sinks = tl.load(sinks_ptr + head, mask=row_ok, other=float("-inf"))
        m, denom, acc = add_sinks(m, denom, acc, sinks)
    out = acc / tl.where(denom > 0.0, denom, 1.0)[:, None]
    tl.store(
        out_ptr + row[:, None] * o_t_stride + head[:, None] * o_h_stride + d[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, None] & d_ok[None, :],
    )


def varlen_prefill(spec: AttentionSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.varlen_prefill", platform)
    group = spec.num_q_heads // spec.num_kv_heads
    g_pad, block_d = next_pow2(group), next_pow2(spec.head_dim)
    use_fp32_dot = fp32_dot(spec.dtype)

    def triton_varlen_prefill(
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        cu_seqlens_q: torch.Tensor,
        seq_lens: torch.Tensor,
        max_seqlen_q: int,
        max_seq_len: int,
        scale: float,
        causal: bool = True,
        sliding_window: int = -1,
        softcap: float = 0.0,
        sinks: torch.Tensor | None = None,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        batch = cu_seqlens_q.numel() - 1
        if q.shape[0] == 0 or batch == 0:
            return out
        consts, options = split_options(tuning.pick(max_seqlen_q))
        block_m = max(1, consts["ROWS"] // g_pad)
        absent = seq_lens  # stands in for the optional tensors a constexpr switches off; never read
        _prefill_kernel[(cdiv(max_seqlen_q, block_m), batch, spec.num_kv_heads)](
            q,
            k,
            v,
            cu_seqlens_q,
            seq_lens,
            absent if sinks is None else sinks,
            k_cache,
            v_cache,
            block_tables,
            absent if k_scale is None else k_scale,
            absent if v_scale is None else v_scale,
            out,
            scale,
            sliding_window,
            softcap,
            group,
            q.shape[2],
            *q.stride()[:2],
            *out.stride()[:2],
            *k.stride()[:2],
            *v.stride()[:2],
            block_tables.stride(0),
            *as_nhd(k_cache, spec.kv_layout).stride()[:3],
            CAUSAL=causal,
            WINDOW=sliding_window > 0,
            SOFTCAP=softcap > 0,
            SINKS=sinks is not None,
            PREFIX=spec.prefix,
            FP8=spec.fp8_kv,
            PAGE=spec.block_size,
            G_PAD=g_pad,
            BLOCK_M=block_m,
            BLOCK_N=consts["BLOCK_N"],
            BLOCK_D=block_d,
            FP32_DOT=use_fp32_dot,
            **options,
        )
        return out

    return triton_varlen_prefill
