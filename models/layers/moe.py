"""Fused mixture of experts on moe.topk + moe.experts.

Expert weights are stacked: w13 [E_local, 2 * I_local, H] (gate rows, then up rows) and
w2 [E_local, H, I_local].
Tensor parallel splits every expert's intermediate dim; expert parallel gives each rank a contiguous range of
whole experts and passes moe.experts the expert map (global id -> local index, -1 elsewhere). Either way
the output is this rank's partial sum: the caller all-reduces it (once, together with shared experts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from anyaccel.ops.moe import MoESpec, TopKSpec

from ..parallel import SINGLE, Parallel
from .ops import bind
from .weights import WeightSlot, parent, sharded_copy


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


class FusedMoE(nn.Module):
    """forward(hidden [T, H], router_logits [T, E]) -> [T, H], this rank's partial sum."""

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
    ):
        super().__init__()
        self.num_experts, self.hidden_size, self.full_intermediate = (
            num_experts,
            hidden_size,
            intermediate_size,
        )
        self.routing, self.names = routing, names
        if parallel.expert_parallel:
            self.first_expert, local_experts = parallel.split(num_experts, "experts")
            self.i_start, local_i = 0, intermediate_size
            expert_map = torch.full((num_experts,), -1, dtype=torch.int32)
            expert_map[self.first_expert : self.first_expert + local_experts] = torch.arange(
                local_experts, dtype=torch.int32
            )
            self.register_buffer("expert_map", expert_map, persistent=False)
        else:
            self.first_expert, local_experts = 0, num_experts
            self.i_start, local_i = parallel.split(intermediate_size, "moe intermediate size")
            self.expert_map = None
        self.w13 = nn.Parameter(
            torch.empty(local_experts, 2 * local_i, hidden_size, dtype=dtype), requires_grad=False
        )
        self.w2 = nn.Parameter(
            torch.empty(local_experts, hidden_size, local_i, dtype=dtype), requires_grad=False
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
        self.experts = bind(
            self,
            "moe.experts",
            MoESpec(
                dtype,
                local_experts,
                routing.top_k,
                hidden_size,
                local_i,
                expert_parallel=self.expert_map is not None,
            ),
        )

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
        return self.experts(hidden, self.w13, self.w2, weights, ids, "silu", self.expert_map)

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        n, h, i, local_i = self.names, self.hidden_size, self.full_intermediate, self.w2.shape[2]
        local_experts = range(self.first_expert, self.first_expert + self.w13.shape[0])
        for e in range(self.num_experts):
            base = f"{prefix}.{e}"
            if e not in local_experts:  # another rank's expert: present in the checkpoint, read there
                for name, shape in ((n.gate, (i, h)), (n.up, (i, h)), (n.down, (h, i))):
                    yield WeightSlot(f"{base}.{name}.weight", shape, None)
                continue
            w13, w2 = self.w13.data[e - self.first_expert], self.w2.data[e - self.first_expert]
            yield WeightSlot(
                f"{base}.{n.gate}.weight", (i, h), sharded_copy(w13, 0, self.i_start, local_i, 0)
            )
            yield WeightSlot(
                f"{base}.{n.up}.weight", (i, h), sharded_copy(w13, 0, self.i_start, local_i, local_i)
            )
            yield WeightSlot(f"{base}.{n.down}.weight", (h, i), sharded_copy(w2, 1, self.i_start, local_i))
        if self.correction_bias is not None:
            bias = self.correction_bias
            yield WeightSlot(
                f"{parent(prefix)}gate.e_score_correction_bias", tuple(bias.shape), sharded_copy(bias.data)
            )
