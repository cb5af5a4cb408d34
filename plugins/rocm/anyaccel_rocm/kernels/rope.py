"""Rotary embedding through aiter.rope_cached_positions_2c_fwd_inplace.

AITER reads cos and sin as separate [max_pos, 1, 1, R/2] caches in q's dtype; the contract passes one
float32 [max_pos, R] cache per call. The split copy is made once per cache tensor (a model passes the same
one every call) and kept with it."""

from __future__ import annotations

import aiter
import torch

from anyaccel.platforms.base import Platform

from . import warmup
from .warmup import attach


def rope(spec, platform: Platform):
    rotary, half = spec.rotary_dim, spec.rotary_dim // 2
    style = 0 if spec.is_neox else 1  # rotate_style: 0 NeoX halves, 1 GPT-J pairs
    held: list = [None, None, None]  # the contract cache, cos, sin

    def tables(cache: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if held[0] is not cache or held[1].dtype != dtype:  # type: ignore[union-attr]
            cos = cache[:, :half].to(dtype).reshape(-1, 1, 1, half).contiguous()
            sin = cache[:, half : 2 * half].to(dtype).reshape(-1, 1, 1, half).contiguous()
            held[:] = [cache, cos, sin]
        return held[1], held[2]

    def run(q, k, positions, cos_sin_cache, is_neox):
        cos, sin = tables(cos_sin_cache, q.dtype)
        q2 = q.clone(memory_format=torch.contiguous_format)  # the contract returns new tensors
        k2 = k.clone(memory_format=torch.contiguous_format)
        t = q.shape[0]
        # as aiter/rotary_embedding.py forward_hip: [1, T, H, D] views, the first rotary_dim channels
        aiter.rope_cached_positions_2c_fwd_inplace(
            q2.view(1, t, *q.shape[1:])[..., :rotary],
            k2.view(1, t, *k.shape[1:])[..., :rotary],
            cos,
            sin,
            positions.view(1, t),
            style,
            True,
            False,
        )
        return q2, k2

    return attach(run, warmup.rope)
