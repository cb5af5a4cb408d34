"""Triton attention.write_kv (contract in anyaccel.ops.attention) for paged caches in NHD or HND, addressed
through their [num_blocks, block_size, Hkv, D] strides. Each program stores TOKENS tokens x Hkv x D; padded
tokens (slot -1) are masked out. fp8 caches store sat(k / k_scale) rounded to nearest even."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import as_nhd
from anyaccel.platforms.base import Platform

from .jitlib import saturate_fp8
from .launch import FP8_MAX, FP8_MIN_EXP, cdiv, next_pow2, round_fp8_in_kernel
from .tuning import Tuning, split_options


@triton.jit
def _store_tokens(
    src_ptr,
    cache_ptr,
    scale_ptr,
    tok,
    dst,
    ok,
    h,
    d,
    tok_stride,
    head_stride,
    stride_head,
    FP8: tl.constexpr,
    FP8_MAX: tl.constexpr,
    ROUND: tl.constexpr,
    MIN_EXP: tl.constexpr,
):
    x = tl.load(
        src_ptr + tok[:, None, None] * tok_stride + h[None, :, None] * head_stride + d[None, None, :],
        mask=ok,
        other=0.0,
    )
    if FP8:
        x = saturate_fp8(x.to(tl.float32) / tl.load(scale_ptr), FP8_MAX, ROUND, MIN_EXP)
    tl.store(
        cache_ptr + dst[:, None, None] + h[None, :, None] * stride_head + d[None, None, :],
        x.to(cache_ptr.dtype.element_ty),
        mask=ok,
    )


@triton.jit
def _write_kv_kernel(
    k_ptr,
    v_ptr,
    k_cache_ptr,
    v_cache_ptr,
    slot_ptr,
    k_scale_ptr,
    v_scale_ptr,
    tokens,
    heads,
    head_dim,
    k_tok_stride,
    k_head_stride,
    v_tok_stride,
    v_head_stride,
    stride_block,
    stride_slot,
    stride_head,
    PAGE: tl.constexpr,
    FP8: tl.constexpr,
    FP8_MAX: tl.constexpr,
    ROUND: tl.constexpr,
    MIN_EXP: tl.constexpr,
    TOKENS: tl.constexpr,
    BLOCK_HEADS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    tok = tl.program_id(0) * TOKENS + tl.arange(0, TOKENS)
    slot = tl.load(slot_ptr + tok, mask=tok < tokens, other=-1)
    h = tl.arange(0, BLOCK_HEADS)
    d = tl.arange(0, BLOCK_D)
    ok = (slot >= 0)[:, None, None] & (h < heads)[None, :, None] & (d < head_dim)[None, None, :]
    dst = (slot // PAGE) * stride_block + (slot % PAGE) * stride_slot
    _store_tokens(
        k_ptr,
        k_cache_ptr,
        k_scale_ptr,
        tok,
        dst,
        ok,
        h,
        d,
        k_tok_stride,
        k_head_stride,
        stride_head,
        FP8,
        FP8_MAX,
        ROUND,
        MIN_EXP,
    )
    _store_tokens(
        v_ptr,
        v_cache_ptr,
        v_scale_ptr,
        tok,
        dst,
        ok,
        h,
        d,
        v_tok_stride,
        v_head_stride,
        stride_head,
        FP8,
        FP8_MAX,
        ROUND,
        MIN_EXP,
    )


def write_kv(spec: AttentionSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.write_kv", platform)
    fp8_consts = {
        "FP8": spec.fp8_kv,
        "FP8_MAX": FP8_MAX.get(spec.cache_dtype, 0.0),
        "ROUND": spec.fp8_kv and round_fp8_in_kernel(),
        "MIN_EXP": FP8_MIN_EXP.get(spec.cache_dtype, 0),
    }
    block_heads, block_d = next_pow2(spec.num_kv_heads), next_pow2(spec.head_dim)

    def triton_write_kv(
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> None:
        tokens, heads, head_dim = k.shape
        if tokens == 0:
            return
        consts, options = split_options(tuning.pick(tokens))
        absent = slot_mapping  # stands in for the scales of a non-fp8 cache; never read
        _write_kv_kernel[(cdiv(tokens, consts["TOKENS"]),)](
            k,
            v,
            k_cache,
            v_cache,
            slot_mapping,
            absent if k_scale is None else k_scale,
            absent if v_scale is None else v_scale,
            tokens,
            heads,
            head_dim,
            *k.stride()[:2],
            *v.stride()[:2],
            *as_nhd(k_cache, spec.kv_layout).stride()[:3],
            PAGE=spec.block_size,
            **fp8_consts,
            TOKENS=consts["TOKENS"],
            BLOCK_HEADS=block_heads,
            BLOCK_D=block_d,
            **options,
        )

    return triton_write_kv
