"""Torch-facing norm kernels (contracts in anyaccel.ops.norm) on anyaccel_mlx.ops.norm."""

from __future__ import annotations

import torch

from ..convert import resident, to_mx, to_torch
from ..ops import norm


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return to_torch(norm.rms_norm(to_mx(x), resident(weight), eps), x.device)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
    normed, summed = norm.add_rms_norm(to_mx(x), to_mx(residual), resident(weight), eps)
    residual.copy_(to_torch(summed))
    x.copy_(to_torch(normed))
