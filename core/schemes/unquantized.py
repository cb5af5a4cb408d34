"""Unquantized weights in the activation dtype."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import Module

from anyaccel.ops.linear import LinearSpec
from anyaccel.ops.moe import MoESpec

from .base import LinearScheme, MoEScheme, ParamLayout, add_param, register


class UnquantizedLinear(LinearScheme):
    """weight [N, K] in params_dtype, applied with linear.gemm (its kernel may keep it in its own layout)."""

    def create_weights(
        self,
        layer: Module,
        input_size: int,
        output_sizes: Sequence[int],
        params_dtype: torch.dtype,
        full_input_size: int | None = None,
    ) -> None:
        weight = torch.empty(sum(output_sizes), input_size, dtype=params_dtype)
        add_param(layer, "weight", weight, ParamLayout())
        self.spec = LinearSpec(params_dtype, sum(output_sizes), input_size)

    def process_weights_after_loading(self, layer: Module) -> None:
        self._gemm = self.bind_weights(layer, "linear.gemm", self.spec, {"weight": "weight"})

    def apply(self, layer: Module, x: Tensor, bias: Tensor | None = None) -> Tensor:
        if x.dim() == 2:  # the model's case: no view of the result (in-place ops may follow under compile)
            return self._gemm(x, self.weights["weight"], bias)
        out = self._gemm(x.reshape(-1, x.shape[-1]), self.weights["weight"], bias)
        return out.view(*x.shape[:-1], out.shape[-1])


class UnquantizedMoE(MoEScheme):
    """w13_weight [E, 2I, H], w2_weight [E, H, I] in params_dtype."""

    def create_weights(
        self,
        layer: Module,
        num_experts: int,
        hidden_size: int,
        intermediate_size: int,
        top_k: int,
        params_dtype: torch.dtype,
        activation: str = "silu",
        expert_parallel: bool = False,
    ) -> None:
        e, h, i = num_experts, hidden_size, intermediate_size
        add_param(layer, "w13_weight", torch.empty(e, 2 * i, h, dtype=params_dtype), ParamLayout(1, 2))
        add_param(layer, "w2_weight", torch.empty(e, h, i, dtype=params_dtype), ParamLayout(1, 2))
        self.spec = MoESpec(params_dtype, e, top_k, h, i, activation, "none", 128, expert_parallel)


register("none", UnquantizedLinear, UnquantizedMoE)
