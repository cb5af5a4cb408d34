"""Triton attention.decode: split-KV flash-decoding over the paged cache (NHD or HND) (contract in
anyaccel.ops.attention).

Phase 1, grid (batch, kv head, split): one program serves every query head of its kv head (GQA grouping:
the group's rows share each K/V tile load) over one slice of the sequence, and writes the slice's
normalised partial output and log-sum-exp. Phase 2, grid (batch, head block): merges the slices and the
attention sinks. The split count comes from the tuning table (enough programs to fill the device, no slice
shorter than MIN_SPLIT tokens); sliding windows start at the window, so slices before it are empty.
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

from .attention_tile import load_paged, online_step
from .launch import cdiv, fp32_dot, next_pow2
from .tuning import Tuning, split_options


@triton.jit
def _split_kernel(
    q_ptr,
    k_cache_ptr,
    v_cache_ptr,
    bt_ptr,
    seq_lens_ptr,
    k_scale_ptr,
    mid_o_ptr,
    mid_lse_ptr,
    scale,
    window,
    cap,
    group,
    num_kv_heads,
    head_dim,
    split_len,
    num_splits,
    q_b_stride,
    q_h_stride,
    bt_stride,
    stride_block,
    stride_slot,
    stride_head,
    PAGE: tl.constexpr,
    FP8: tl.constexpr,
    SOFTCAP: tl.constexpr,
    WINDOW: tl.constexpr,
    BLOCK_G: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    FP32_DOT: tl.constexpr,
):
    b = tl.program_id(0)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    seq_len = tl.load(seq_lens_ptr + b)
    lo = split * split_len
    hi = tl.minimum(lo + split_len, seq_len)
    if WINDOW:
        lo = tl.maximum(lo, seq_len - window)
    g = tl.arange(0, BLOCK_G)
    d = tl.arange(0, BLOCK_D)
    head = kv_head * group + g
    row_ok = g < group
    q = tl.load(
        q_ptr + b * q_b_stride + head[:, None] * q_h_stride + d[None, :],
        mask=row_ok[:, None] & (d < head_dim)[None, :],
        other=0.0,
    )
    logit_scale = scale
    if FP8:  # an fp8 cache holds k / k_scale: the key scale folds into the logit scale
        logit_scale = scale * tl.load(k_scale_ptr)
    m = tl.full([BLOCK_G], float("-inf"), dtype=tl.float32)
    denom = tl.zeros([BLOCK_G], dtype=tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], dtype=tl.float32)
    bt_row = bt_ptr + b.to(tl.int64) * bt_stride
    for start in range(lo, hi, BLOCK_N):
        pos = start + tl.arange(0, BLOCK_N)
        ok = pos < hi
        k = load_paged(
            k_cache_ptr, bt_row, pos, ok, kv_head, head_dim, d, stride_block, stride_slot, stride_head, PAGE
        )
        v = load_paged(
            v_cache_ptr, bt_row, pos, ok, kv_head, head_dim, d, stride_block, stride_slot, stride_head, PAGE
        )
        m, denom, acc = online_step(
            q, k, v, row_ok[:, None] & ok[None, :], m, denom, acc, logit_scale, 1.0, cap, SOFTCAP, FP32_DOT
        )
    has_keys = denom > 0.0
    lse = tl.where(has_keys, m + tl.log(tl.where(has_keys, denom, 1.0)), float("-inf"))
    out = acc / tl.where(has_keys, denom, 1.0)[:, None]
    mid = (b * num_kv_heads * group + head) * num_splits + split
    tl.store(mid_lse_ptr + mid, lse, mask=row_ok)
    tl.store(
        mid_o_ptr + mid[:, None] * head_dim + d[None, :], out, mask=row_ok[:, None] & (d < head_dim)[None, :]
    )


@triton.jit
def _merge_kernel(
    mid_o_ptr,
    mid_lse_ptr,
    sinks_ptr,
    v_scale_ptr,
    out_ptr,
    num_heads,
    head_dim,
    num_splits,
    out_b_stride,
    out_h_stride,
    FP8: tl.constexpr,
    SINKS: tl.constexpr,
    HEADS: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0)
    head = tl.program_id(1) * HEADS + tl.arange(0, HEADS)
    s = tl.arange(0, BLOCK_S)
    d = tl.arange(0, BLOCK_D)
    head_ok = head < num_heads
    mid = (b * num_heads + head[:, None]) * num_splits + s[None, :]
    ms_ok = head_ok[:, None] & (s < num_splits)[None, :]
    lse = tl.load(mid_lse_ptr + mid, mask=ms_ok, other=float("-inf"))
    top = tl.max(lse, axis=1)
    if SINKS:
        sink = tl.load(sinks_ptr + head, mask=head_ok, other=float("-inf"))
        top = tl.maximum(top, sink)
    top = tl.where(top == float("-inf"), 0.0, top)
    w = tl.exp(lse - top[:, None])
    denom = tl.sum(w, axis=1)
    if SINKS:
        denom += tl.exp(sink - top)
    o = tl.load(
        mid_o_ptr + mid[:, :, None] * head_dim + d[None, None, :],
        mask=ms_ok[:, :, None] & (d < head_dim)[None, None, :],
        other=0.0,
    )
    out = tl.sum(o * w[:, :, None], axis=1) / tl.where(denom > 0.0, denom, 1.0)[:, None]
    if FP8:  # the value scale of an fp8 cache is common to every slice
        out = out * tl.load(v_scale_ptr)
    tl.store(
        out_ptr + b * out_b_stride + head[:, None] * out_h_stride + d[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=head_ok[:, None] & (d < head_dim)[None, :],
    )


def paged_decode(spec: AttentionSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.paged_decode", platform)
    group = spec.num_q_heads // spec.num_kv_heads
    block_g, block_d = max(16, next_pow2(group)), next_pow2(spec.head_dim)
    use_fp32_dot = fp32_dot(spec.dtype)
    fp8 = spec.fp8_kv

    def triton_paged_decode(
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        seq_lens: torch.Tensor,
        max_seq_len: int,
        scale: float,
        sliding_window: int = -1,
        softcap: float = 0.0,
        sinks: torch.Tensor | None = None,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch, num_heads, head_dim = q.shape
        pages = as_nhd(k_cache, spec.kv_layout)  # v_cache has the same strides
        out = torch.empty((batch, num_heads, head_dim), dtype=q.dtype, device=q.device)
        if batch == 0:
            return out
        consts, options = split_options(tuning.pick(max_seq_len))
        block_n = consts["BLOCK_N"]
        span = min(max_seq_len, sliding_window) if sliding_window > 0 else max_seq_len
        wanted = cdiv(consts["TARGET_PROGRAMS"], batch * spec.num_kv_heads)
        split_len = cdiv(max(consts["MIN_SPLIT"], cdiv(span, wanted)), block_n) * block_n
        num_splits = max(1, cdiv(max_seq_len, split_len))
        mid_o = torch.empty((batch, num_heads, num_splits, head_dim), dtype=torch.float32, device=q.device)
        mid_lse = torch.empty((batch, num_heads, num_splits), dtype=torch.float32, device=q.device)
        absent = seq_lens  # stands in for the optional tensors a constexpr switches off; never read
        _split_kernel[(batch, spec.num_kv_heads, num_splits)](
            q,
            k_cache,
            v_cache,
            block_tables,
            seq_lens,
            k_scale if fp8 else absent,
            mid_o,
            mid_lse,
            scale,
            sliding_window,
            softcap,
            group,
            spec.num_kv_heads,
            head_dim,
            split_len,
            num_splits,
            *q.stride()[:2],
            block_tables.stride(0),
            *pages.stride()[:3],
            PAGE=spec.block_size,
            FP8=fp8,
            SOFTCAP=softcap > 0,
            WINDOW=sliding_window > 0,
            BLOCK_G=block_g,
            BLOCK_N=block_n,
            BLOCK_D=block_d,
            FP32_DOT=use_fp32_dot,
            **options,
        )
        heads_per_program = min(consts["MERGE_HEADS"], next_pow2(num_heads))
        _merge_kernel[(batch, cdiv(num_heads, heads_per_program))](
            mid_o,
            mid_lse,
            absent if sinks is None else sinks,
            v_scale if fp8 else absent,
            out,
            num_heads,
            head_dim,
            num_splits,
            out.stride(0),
            out.stride(1),
            FP8=fp8,
            SINKS=sinks is not None,
            HEADS=heads_per_program,
            BLOCK_S=next_pow2(num_splits),
            BLOCK_D=block_d,
        )
        return out

    return triton_paged_decode
