"""Triton rope.apply (contract in anyaccel.ops.rope).

One launch per tensor (q, then k). A program rotates TOKENS tokens x all heads: it loads the pair halves
(x1, x2) of the first rotary_dim channels, the token's cos/sin row, and copies the pass-through channels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.rope import RopeSpec
from anyaccel.platforms.base import Platform

from .launch import cdiv, next_pow2
from .tuning import Tuning, split_options


@triton.jit
def _rope_kernel(
    x_ptr,
    out_ptr,
    pos_ptr,
    cache_ptr,
    tokens,
    heads,
    head_dim,
    half,
    x_tok_stride,
    x_head_stride,
    cache_stride,
    IS_NEOX: tl.constexpr,
    TOKENS: tl.constexpr,
    BLOCK_HEADS: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
    BLOCK_TAIL: tl.constexpr,
):
    tok = tl.program_id(0) * TOKENS + tl.arange(0, TOKENS)
    head = tl.arange(0, BLOCK_HEADS)
    i = tl.arange(0, BLOCK_HALF)
    tok_ok = tok < tokens
    pos = tl.load(pos_ptr + tok, mask=tok_ok, other=0)
    cs_mask = tok_ok[:, None] & (i < half)[None, :]
    cos = tl.load(cache_ptr + pos[:, None] * cache_stride + i[None, :], mask=cs_mask, other=0.0)[:, None, :]
    sin = tl.load(cache_ptr + pos[:, None] * cache_stride + half + i[None, :], mask=cs_mask, other=0.0)[
        :, None, :
    ]
    if IS_NEOX:
        c1, c2 = i, i + half
    else:
        c1, c2 = 2 * i, 2 * i + 1
    mask = tok_ok[:, None, None] & (head < heads)[None, :, None] & (i < half)[None, None, :]
    src = x_ptr + tok[:, None, None] * x_tok_stride + head[None, :, None] * x_head_stride
    dst = out_ptr + (tok[:, None, None] * heads + head[None, :, None]) * head_dim
    x1 = tl.load(src + c1[None, None, :], mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(src + c2[None, None, :], mask=mask, other=0.0).to(tl.float32)
    out_ty = out_ptr.dtype.element_ty
    tl.store(dst + c1[None, None, :], (x1 * cos - x2 * sin).to(out_ty), mask=mask)
    tl.store(dst + c2[None, None, :], (x2 * cos + x1 * sin).to(out_ty), mask=mask)
    if BLOCK_TAIL > 0:  # partial rotary: channels past rotary_dim are copied unchanged
        t = 2 * half + tl.arange(0, BLOCK_TAIL)
        tail_mask = tok_ok[:, None, None] & (head < heads)[None, :, None] & (t < head_dim)[None, None, :]
        tl.store(dst + t[None, None, :], tl.load(src + t[None, None, :], mask=tail_mask), mask=tail_mask)


def rope(spec: RopeSpec, platform: Platform) -> Callable[..., Any]:
    tuning = Tuning("triton.rope", platform)
    half = spec.rotary_dim // 2
    tail = spec.head_dim - spec.rotary_dim
    block_half, block_tail = next_pow2(half), next_pow2(tail) if tail else 0

    def rotate(x: torch.Tensor, positions: torch.Tensor, cache: torch.Tensor, is_neox: bool) -> torch.Tensor:
        tokens, heads, head_dim = x.shape
        out = torch.empty((tokens, heads, head_dim), dtype=x.dtype, device=x.device)
        if tokens == 0:
            return out
        consts, options = split_options(tuning.pick(tokens))
        _rope_kernel[(cdiv(tokens, consts["TOKENS"]),)](
            x,
            out,
            positions,
            cache,
            tokens,
            heads,
            head_dim,
            half,
            x.stride(0),
            x.stride(1),
            cache.stride(0),
            IS_NEOX=is_neox,
            TOKENS=consts["TOKENS"],
            BLOCK_HEADS=next_pow2(heads),
            BLOCK_HALF=block_half,
            BLOCK_TAIL=block_tail,
            **options,
        )
        return out

    def triton_rope(
        q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin_cache: torch.Tensor, is_neox: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return rotate(q, positions, cos_sin_cache, is_neox), rotate(k, positions, cos_sin_cache, is_neox)

    return triton_rope
