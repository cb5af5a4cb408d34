"""Torch reference for linear.gemm (contract in anyaccel.ops.linear): torch's own matmul."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return F.linear(x, weight, bias)
