"""Torch-facing activation kernels (contracts in anyaccel.ops.activation)."""

from __future__ import annotations

import torch

from ..convert import to_mx, to_torch
from ..ops import activation


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    return to_torch(activation.silu_and_mul(to_mx(x)), x.device)


def gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    return to_torch(activation.gelu_and_mul(to_mx(x), approximate), x.device)
