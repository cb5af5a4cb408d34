"""Fused mixture of experts on moe.topk + moe.experts.

The experts' weights come from the MoE quantization scheme (anyaccel.schemes.moe_scheme of the checkpoint's
quantization_config): parameters named w13_<x> (gate rows, then up rows: [E_local, 2 * I_local, ...]) and
w2_<x> ([E_local, H, ...]) are filled from each expert's gate/up and down tensors named <x> (weight,
weight_scale_inv, qweight, ...), sharded by their ParamLayout.
Tensor parallel splits every expert's intermediate dim; expert parallel gives each rank a contiguous range of
whole experts and passes moe.experts the expert map (global id -> local index, -1 elsewhere). Either way
the output is this rank's partial sum: the caller all-reduces it (once, together with shared experts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from anyaccel.ops.moe import TopKSpec
from anyaccel.schemes import MoEScheme, moe_scheme

from ..parallel import SINGLE, Parallel
from .linear import QuantConfig
from .module import Layer
from .ops import bind
from .weights import Span, WeightSlot, expert_layout, layout_slot, parent, scheme_params, whole


@dataclass(frozen=True)
class Routing:
    """How tokens choose experts (moe.topk's arguments)."""

    top_k: int
    scoring: str = "softmax"
    renormalize: bool = True
    n_group: int = 1
    topk_group: int = 1
    correction_bias: bool = False  # DeepSeek-V3's e_score_correction_bias, read from the checkpoint
    routed_scaling_factor: float = 1.0


@dataclass(frozen=True)
class ExpertNames:
    """Checkpoint names of expert e's tensors below this module's name: '{name}.{e}.{gate}.weight' etc."""

    gate: str = "gate_proj"
    up: str = "up_proj"
    down: str = "down_proj"


class FusedMoE(Layer):
    """forward(hidden [T, H], router_logits [T, E]) -> [T, H], this rank's partial sum.
    activation: moe.experts' activation of the gate ("silu", "gelu", ...); scheme: the experts' weight
    format when the checkpoint's is not the quantization_config's registered scheme (None: that one)."""

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
        quant: QuantConfig = None,
        activation: str = "silu",
        scheme: MoEScheme | None = None,
    ):
        super().__init__()
        self.num_experts, self.hidden_size = num_experts, hidden_size
        self.full_intermediate = intermediate_size
        self.routing, self.names = routing, names
        if parallel.expert_parallel:
            self.first_expert, self.local_experts = parallel.split(num_experts, "experts")
            self.i_start, self.local_i = 0, intermediate_size
            expert_map = torch.full((num_experts,), -1, dtype=torch.int32)
            expert_map[self.first_expert : self.first_expert + self.local_experts] = torch.arange(
                self.local_experts, dtype=torch.int32
            )
            self.register_buffer("expert_map", expert_map, persistent=False)
        else:
            self.first_expert, self.local_experts = 0, num_experts
            self.i_start, self.local_i = parallel.split(intermediate_size, "moe intermediate size")
            self.expert_map = None
        self.scheme = scheme or moe_scheme(quant)
        self.scheme.create_weights(
            self,
            self.local_experts,
            hidden_size,
            self.local_i,
            routing.top_k,
            dtype,
            activation,
            expert_parallel=self.expert_map is not None,
        )
        self.correction_bias = (
            nn.Parameter(torch.zeros(num_experts, dtype=torch.float32), requires_grad=False)
            if routing.correction_bias
            else None
        )
        self.topk = bind(
            self,
            "moe.topk",
            TopKSpec(
                torch.float32,
                num_experts,
                routing.top_k,
                routing.scoring,
                routing.n_group > 1,
                routing.correction_bias,
            ),
        )

    def process_weights_after_loading(self) -> None:
        """The scheme converts its weights once for the moe.experts kernel it binds (its resolutions feed
        the kernel table)."""
        self.scheme.process_weights_after_loading(self)

    def forward(self, hidden: torch.Tensor, router_logits: torch.Tensor) -> torch.Tensor:
        r = self.routing
        weights, ids = self.topk(
            router_logits,
            r.top_k,
            r.scoring,
            r.renormalize,
            r.n_group,
            r.topk_group,
            self.correction_bias,
            r.routed_scaling_factor,
        )
        return self.scheme.apply(self, hidden, weights, ids, self.expert_map)

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        """Expert e's tensors `{prefix}.{e}.{gate|up|down}.<x>` fill slice e of w13_<x> / w2_<x>; under expert
        parallelism another rank's experts must exist but are not read here."""
        n, h, i = self.names, self.hidden_size, self.full_intermediate
        inter = Span(i, self.i_start, self.local_i)
        params = list(scheme_params(self))
        for e in range(self.num_experts):
            local = e - self.first_expert
            mine = 0 <= local < self.local_experts
            for name, data, layout in params:
                merged, _, suffix = name.partition("_")
                if merged == "w13":  # gate rows, then up rows
                    up = Span(i, self.i_start, self.local_i, self.local_i)
                    sources = [(n.gate, inter, 0), (n.up, up, 1)]
                    full_in = Span(h)
                else:
                    sources, full_in = [(n.down, Span(h), 0)], inter
                for proj, rows, shard in sources:
                    slot = layout_slot(
                        f"{prefix}.{e}.{proj}.{suffix}",
                        data[local if mine else 0],
                        expert_layout(layout),
                        rows,
                        full_in,
                        shard,
                    )
                    yield slot if mine else WeightSlot(slot.name, slot.shape, None)
        if self.correction_bias is not None:
            yield whole(f"{parent(prefix)}gate.e_score_correction_bias", self.correction_bias)
