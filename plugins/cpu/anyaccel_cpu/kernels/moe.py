"""moe.experts on the CPU for models with few experts per choice (E <= 8 * top_k: Mixtral, small Qwen3-MoE).

Decode batches run "dense": every expert for every token, in two GEMMs over all experts at once,

    y = x @ W13_all.T                [T, E * 2I]   W13_all: the E experts' [gate; up] rows stacked
    a = act(gate) * up * route       [T, E * I]    route[t, e]: token t's weight for expert e, 0 if unchosen
    out = a @ W2_all.T               [T, H]        W2_all [H, E * I]: expert e's down_proj in columns e*I..

so the weighted sum over a token's experts falls out of the second GEMM. With a few tokens the experts' bytes
are read once either way, and two large GEMMs on oneDNN-packed weights read them at close to the machine's
bandwidth, where grouping tokens by expert runs E small GEMMs that each pay for their own packing (demo
Qwen3-MoE, E=16, k=4, 8 tokens, 2 cores: 2.5 ms against 3.4 ms for the reference's batched form). The extra
arithmetic is E/k times the routed work, hence the E <= 8 * top_k bound and DENSE_MAX_TOKENS.

Longer batches (prefill) unpack the weights for the call (about 7 ms per [8192, 512] on 2 cores) and run the
reference's grouped-by-expert form. Keeping the contract layout as well would spare that and let batch-1
decode read only its top-k experts, at twice the experts' memory; this kernel keeps one copy.

prepare() packs, once at load time, w13 [E, 2I, H] into W13_all and w2 [E, H, I] into W2_all (both opaque
oneDNN tensors of the shapes above). The kernel reads only those; the contract layout is not kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from anyaccel.ops.moe import MoESpec
from anyaccel.platforms.base import Platform
from anyaccel.providers.reference.moe import experts as grouped_experts

from ..onednn import linear, pack

DENSE_MAX_TOKENS = 32  # above this the unpack + grouped GEMMs cost less than the dense form's extra work


def prepare(spec: MoESpec, weights: dict[str, Any]) -> dict[str, Any]:
    """w13 [E, 2I, H] -> packed [E * 2I, H]; w2 [E, H, I] -> packed [H, E * I] (expert e: columns e*I..)."""
    w13, w2 = weights["w13"], weights["w2"]
    e, h, i = w2.shape
    w2_all = w2.permute(1, 0, 2).reshape(h, e * i)
    return weights | {"w13": pack(w13.reshape(e * 2 * i, h)), "w2": pack(w2_all)}


def experts(spec: MoESpec, platform: Platform) -> Callable[..., torch.Tensor]:
    e, i = spec.num_experts, spec.intermediate_size

    def cpu_experts(
        hidden: torch.Tensor,
        w13: torch.Tensor,
        w2: torch.Tensor,
        topk_weights: torch.Tensor,
        topk_ids: torch.Tensor,
        activation: str = "silu",
        expert_map: torch.Tensor | None = None,
        w13_scale: torch.Tensor | None = None,
        w2_scale: torch.Tensor | None = None,
        w13_zeros: torch.Tensor | None = None,
        w2_zeros: torch.Tensor | None = None,
    ) -> torch.Tensor:
        t, h = hidden.shape
        if t > DENSE_MAX_TOKENS:
            w13_grouped = w13.to_dense().view(e, 2 * i, h)
            w2_grouped = w2.to_dense().view(h, e, i).permute(1, 0, 2)  # [E, H, I] view
            return grouped_experts(
                hidden, w13_grouped, w2_grouped, topk_weights, topk_ids, activation, expert_map
            )
        act = F.silu if activation == "silu" else F.gelu
        ids = topk_ids.long()
        weights = topk_weights.float()
        if expert_map is not None:  # experts on other ranks get weight 0 (their partial sum is theirs)
            ids = expert_map.long()[ids]
            weights = weights.masked_fill(ids < 0, 0.0)
            ids = ids.clamp_min(0)
        route = hidden.new_zeros(t, e).scatter_add_(1, ids, weights)
        y = linear(hidden, w13).view(t, e, 2, i)
        return linear((act(y[:, :, 0]) * y[:, :, 1] * route.unsqueeze(-1)).view(t, e * i), w2)

    return cpu_experts
