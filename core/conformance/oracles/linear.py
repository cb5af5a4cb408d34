"""Oracle for linear.gemm: the product in float64."""

from __future__ import annotations

import torch


def gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    out = x.double() @ weight.double().T
    return out if bias is None else out + bias.double()
