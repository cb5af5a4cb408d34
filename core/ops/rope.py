"""rope.apply: rotary position embedding from a precomputed cos/sin cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import OpDef, expect, expect_range, expect_tensor
from .common import preferred_dtype


@dataclass(frozen=True)
class RopeSpec:
    dtype: torch.dtype = torch.float32
    head_dim: int = 128
    rotary_dim: int = 128
    is_neox: bool = True
    num_q_heads: int = 32
    num_kv_heads: int = 8


def apply(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin_cache: torch.Tensor, is_neox: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the first rotary_dim channels of every head of q and k; returns new (q, k).

    q:             [T, Hq, D] in spec.dtype (a view of a fused qkv projection is fine: last dim contiguous)
    k:             [T, Hkv, D]
    positions:     [T] int64, the absolute position of each token
    cos_sin_cache: [max_position, rotary_dim] float32: cos in the first rotary_dim/2 columns, sin in the rest
                   (rotary_dim <= D; channels past rotary_dim pass through unchanged: partial rotary)
    is_neox:       True: rotate halves (x[:r/2], x[r/2:]) as GPT-NeoX/Llama;
                   False: rotate interleaved pairs (x[0::2], x[1::2]) as GPT-J
    For a pair (x1, x2) with c, s = cache[pos]:  x1' = x1*c - x2*s,  x2' = x2*c + x1*s  (computed in fp32).
    """
    raise NotImplementedError


def _fake(q, k, positions, cos_sin_cache, is_neox):
    return torch.empty_like(q), torch.empty_like(k)


def _check_spec(spec: RopeSpec) -> None:
    op = "rope.apply"
    expect(
        op,
        0 < spec.rotary_dim <= spec.head_dim and spec.rotary_dim % 2 == 0,
        f"rotary_dim must be even and in (0, head_dim={spec.head_dim}], got {spec.rotary_dim}",
    )


def _check_args(spec: RopeSpec, q, k, positions, cos_sin_cache, is_neox) -> None:
    op = "rope.apply"
    expect_tensor(op, "q", q, shape=(None, spec.num_q_heads, spec.head_dim), dtype=spec.dtype)
    expect_tensor(op, "k", k, shape=(q.shape[0], spec.num_kv_heads, spec.head_dim), dtype=spec.dtype)
    expect_tensor(op, "positions", positions, shape=(q.shape[0],), dtype=torch.int64)
    expect_tensor(op, "cos_sin_cache", cos_sin_cache, shape=(None, spec.rotary_dim), dtype=torch.float32)
    expect(op, is_neox == spec.is_neox, f"is_neox={is_neox} but the kernel was bound for {spec.is_neox}")
    rows = cos_sin_cache.shape[0]
    expect_range(op, "positions", positions, 0, rows, f"(the cos/sin cache has {rows} rows)")


def _default(platform) -> RopeSpec:
    return RopeSpec(preferred_dtype(platform))


APPLY = OpDef("rope.apply", apply, RopeSpec, _fake, _default, check_spec=_check_spec, check_args=_check_args)
