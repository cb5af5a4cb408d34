"""Torch reference for rope.apply (contract in anyaccel.ops.rope)."""

from __future__ import annotations

import torch


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, is_neox: bool) -> torch.Tensor:
    """x: [T, H, D]; cos/sin: [T, 1, R/2] float32. Returns x with its first R channels rotated."""
    rot = cos.shape[-1] * 2
    xr = x[..., :rot].float()
    if is_neox:
        x1, x2 = xr.chunk(2, dim=-1)
    else:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    o1, o2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    rotated = torch.cat((o1, o2), dim=-1) if is_neox else torch.stack((o1, o2), dim=-1).flatten(-2)
    return torch.cat((rotated.to(x.dtype), x[..., rot:]), dim=-1)


def apply(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin_cache: torch.Tensor, is_neox: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    cos, sin = cos_sin_cache[positions].unsqueeze(1).chunk(2, dim=-1)
    return _rotate(q, cos, sin, is_neox), _rotate(k, cos, sin, is_neox)
