"""Emulator of flashinfer.rope.apply_rope_with_cos_sin_cache (flashinfer-python 0.7.4).

query [nnz, Hq * head_size], key [nnz, Hk * head_size] (16-bit, last dim contiguous); cos_sin_cache
[max_pos, rotary_dim] float32 (cos then sin); positions [nnz] int32/int64. Returns new (query, key) of the
input shapes; channels past rotary_dim pass through. Arithmetic in fp32, rounded once."""

from __future__ import annotations

import torch

from ..errors import require


def _rotate(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rotary: int, is_neox: bool
) -> torch.Tensor:
    xf = x.float()
    rot = xf[..., :rotary]
    if is_neox:
        x1, x2 = rot[..., : rotary // 2], rot[..., rotary // 2 :]
        out = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    else:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
        out = torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)
    return torch.cat([out, xf[..., rotary:]], dim=-1).to(x.dtype)


def apply_rope_with_cos_sin_cache(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    head_size: int,
    cos_sin_cache: torch.Tensor,
    is_neox: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    require(cos_sin_cache.dtype == torch.float32, "cos_sin_cache should be float32")
    require(cos_sin_cache.dim() == 2, "cos_sin_cache: [max_seq_len, rotary_dim]")
    rotary = cos_sin_cache.shape[1]
    require(rotary % 2 == 0 and rotary <= head_size, f"rotary_dim {rotary} must be even and <= head_size")
    nnz = positions.numel()
    require(positions.dtype in (torch.int32, torch.int64) and positions.dim() == 1, "positions: [nnz] int")
    outs = []
    for name, t in (("query", query), ("key", key)):
        require(t.dim() == 2 and t.shape[0] == nnz, f"{name} must be [nnz, heads * head_size]")
        require(t.shape[1] % head_size == 0, f"head_size must divide the last dim of {name}")
        require(t.stride(-1) == 1, f"{name} must be contiguous in its last dim")
        require(t.dtype in (torch.float16, torch.bfloat16), f"{name}: unsupported dtype {t.dtype}")
        heads = t.view(nnz, -1, head_size)
        row = cos_sin_cache[positions.long()]
        cos, sin = row[:, None, : rotary // 2], row[:, None, rotary // 2 :]
        outs.append(_rotate(heads, cos, sin, rotary, is_neox).view(nnz, -1))
    return outs[0], outs[1]
