"""RMSNorm on norm.rms_norm / norm.add_rms_norm."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from anyaccel.ops.norm import NormSpec

from .module import Layer
from .ops import bind
from .weights import WeightSlot, whole


class RMSNorm(Layer):
    """weight: [hidden]. forward(x) returns rms_norm(x) (x: [..., hidden], last dim contiguous);
    forward(x, residual) is the pre-norm layer boundary, done IN PLACE on both [T, hidden] tensors:
    residual <- x + residual, x <- rms_norm(residual); returns (x, residual)."""

    def __init__(self, hidden_size: int, eps: float, *, dtype: torch.dtype):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size, dtype=dtype), requires_grad=False)
        spec = NormSpec(dtype, hidden_size)
        self.rms_norm = bind(self, "norm.rms_norm", spec)
        self.add_rms_norm = bind(self, "norm.add_rms_norm", spec)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        if residual is None:
            return self.rms_norm(x, self.weight, self.eps)
        self.add_rms_norm(x, residual, self.weight, self.eps)
        return x, residual

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        yield whole(f"{prefix}.weight", self.weight)
