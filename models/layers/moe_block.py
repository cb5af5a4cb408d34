"""The sparse MoE block of a decoder layer: router -> FusedMoE (+ shared experts) -> one all-reduce."""

from __future__ import annotations

import torch
from torch import nn

from ..parallel import SINGLE, Parallel
from .linear import QuantConfig, ReplicatedLinear
from .module import Layer
from .moe import ExpertNames, FusedMoE, Routing


class SparseMoEBlock(Layer):
    """x: [T, H] -> [T, H]. The router `gate` [E, H] runs in `router_dtype` (DeepSeek-V3 routes in float32);
    `shared_experts` (a GatedMLP built with reduce=False, or None) sees every token. `quant` selects the
    experts' scheme; the router stays unquantized (quantized checkpoints keep it in full precision)."""

    def __init__(
        self,
        num_experts: int,
        hidden_size: int,
        intermediate_size: int,
        routing: Routing,
        parallel: Parallel = SINGLE,
        *,
        dtype: torch.dtype,
        names: ExpertNames = ExpertNames(),
        shared_experts: nn.Module | None = None,
        router_dtype: torch.dtype | None = None,
        quant: QuantConfig = None,
    ):
        super().__init__()
        self.parallel = parallel
        self.router_dtype = router_dtype or dtype
        self.gate = ReplicatedLinear(hidden_size, num_experts, dtype=self.router_dtype)
        self.experts = FusedMoE(
            num_experts,
            hidden_size,
            intermediate_size,
            routing,
            parallel,
            dtype=dtype,
            names=names,
            quant=quant,
        )
        self.shared_experts = shared_experts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.experts(x, self.gate(x.to(self.router_dtype)))
        if self.shared_experts is not None:
            out = out + self.shared_experts(x)
        return self.parallel.all_reduce(out)
