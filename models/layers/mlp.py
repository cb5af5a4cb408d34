"""The gated MLP: down(act(gate(x)) * up(x)), gate and up fused into one column-parallel matmul."""

from __future__ import annotations

import torch

from anyaccel.ops.activation import ActivationSpec

from ..parallel import SINGLE, Parallel
from .linear import ColumnParallelLinear, QuantConfig, RowParallelLinear
from .module import Layer
from .ops import bind


class GatedMLP(Layer):
    """x: [T, hidden] -> [T, hidden]. The checkpoint holds gate_proj, up_proj and down_proj next to this
    module's name; reduce=False leaves the row-parallel all-reduce to the caller."""

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        parallel: Parallel = SINGLE,
        *,
        dtype: torch.dtype,
        reduce: bool = True,
        quant: QuantConfig = None,
    ):
        super().__init__()
        self.gate_up_proj = ColumnParallelLinear.split(
            hidden_size, intermediate_size, parallel, names=("gate_proj", "up_proj"), dtype=dtype, quant=quant
        )
        self.down_proj = RowParallelLinear(
            intermediate_size, hidden_size, parallel, dtype=dtype, reduce=reduce, quant=quant
        )
        self.act = bind(self, "activation.silu_and_mul", ActivationSpec(dtype, self.down_proj.in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_up_proj(x)))
