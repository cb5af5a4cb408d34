"""moe.topk through FlashInfer's fused_topk_deepseek and moe.experts through its cutlass_fused_moe.

topk: sigmoid scoring with a correction bias (DeepSeek-V3's routing, grouped or not). The kernel always
renormalises; with renormalize=False the weights are the chosen experts' sigmoid scores (times the scaling
factor), recomputed from the ids. Scores are passed in float32, so the weights come back in float32.

experts: unquantized fp16/bf16 weights. cutlass_fused_moe reads w13 as [up; gate] (its fc1 is [w3; w1]):
`prepare` swaps the halves once at load time. Activation "silu" is its Swiglu, "gelu" its Geglu.

Expert parallelism: cutlass_fused_moe takes global expert ids with ep_size / ep_rank; this rank holds experts
ep_rank * E ... (ep_rank + 1) * E - 1 (E = w13.shape[0]) and pairs routed to any other id add nothing
(its expandInputRows marks them invalid). The contract's expert_map is read once per map tensor (a per-layer
constant; see expert_placement):
- a contiguous, aligned placement (rank r holds r * E ... r * E + E - 1) is passed as it is: ep_size =
  E_global / E, ep_rank = r, topk_ids untouched;
- any other placement (the contract's "any") becomes a device table global id -> local id, E for experts held
  elsewhere, applied per call; the kernel then runs as rank 0 of 2, so the pairs sent to E (rank 1's first
  expert) are skipped as the library skips other ranks' experts, at no compute.
Tensor parallelism is in the shapes already (I is this rank's shard, the caller all-reduces); the kernel's
tp_size / tp_rank only choose the rank that adds fc2's bias (tp_rank 0), and no bias is served, so they stay
1 / 0.
"""

from __future__ import annotations

import torch
from flashinfer.fused_moe import cutlass_fused_moe, fused_topk_deepseek

from anyaccel.ops.moe import MoESpec, TopKSpec

from .kernels.supports import ungrouped_split
from .per_tensor import PerTensor

# flashinfer.tllm_enums.ActivationType values (flashinfer-python 0.7.4)
SWIGLU, GEGLU = 3, 4


def topk(spec: TopKSpec, platform):
    """Ungrouped routing runs as grouped routing with every group kept (n_group = topk_group = g from
    ungrouped_split): choosing the groups then removes no expert, so the selection is the plain top-k."""
    split = None if spec.grouped else ungrouped_split(spec.num_experts, spec.top_k)

    def deepseek_topk(
        router_logits,
        top_k,
        scoring="softmax",
        renormalize=True,
        n_group=1,
        topk_group=1,
        correction_bias=None,
        routed_scaling_factor=1.0,
    ):
        groups, kept = (n_group, topk_group) if split is None else (split, split)
        scores = router_logits.float().contiguous()
        bias = correction_bias.float().contiguous()
        weights = torch.empty(scores.shape[0], top_k, dtype=torch.float32, device=scores.device)
        ids = torch.empty(scores.shape[0], top_k, dtype=torch.int32, device=scores.device)
        fused_topk_deepseek(scores, bias, groups, kept, top_k, routed_scaling_factor, weights, ids)
        if not renormalize:
            weights = torch.sigmoid(scores).gather(1, ids.long()) * routed_scaling_factor
        return weights, ids

    return deepseek_topk


def prepare(spec: MoESpec, weights: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
    """w13 [E, 2I, H] as [gate; up] -> [up; gate], contiguous; the other weights as they are."""
    w13 = weights["w13"]
    assert w13 is not None
    inter = w13.shape[1] // 2
    return {**weights, "w13": torch.cat([w13[:, inter:], w13[:, :inter]], dim=1).contiguous()}


def expert_parallel_args(
    expert_map: torch.Tensor, local_experts: int
) -> tuple[torch.Tensor | None, int, int]:
    """(id table or None, ep_size, ep_rank) for cutlass_fused_moe from the contract's expert_map [E_global]
    (global id -> local index, -1 elsewhere). Reads the map on the host: call it once per map tensor."""
    held = expert_map.cpu().long()
    total, e = held.numel(), local_experts
    first = int((held == 0).nonzero()[0]) if bool((held == 0).any()) else -1
    contiguous = torch.full_like(held, -1)
    if first >= 0 and first % e == 0 and total % e == 0:
        contiguous[first : first + e] = torch.arange(e)
        if torch.equal(held, contiguous):
            return None, total // e, first // e
    table = torch.where(held >= 0, held, torch.full_like(held, e)).to(torch.int32)
    return table.to(expert_map.device), 2, 0


def experts(spec: MoESpec, platform):
    act_type = SWIGLU if spec.activation == "silu" else GEGLU
    placements = PerTensor(lambda expert_map: expert_parallel_args(expert_map, spec.num_experts))

    def cutlass_experts(
        hidden,
        w13,
        w2,
        topk_weights,
        topk_ids,
        activation="silu",
        expert_map=None,
        w13_scale=None,
        w2_scale=None,
        w13_zeros=None,
        w2_zeros=None,
        w13_bias=None,
        w2_bias=None,
        w13_global_scale=None,
        w2_global_scale=None,
    ):
        table, ep_size, ep_rank = (None, 1, 0) if expert_map is None else placements(expert_map)
        if table is not None:
            topk_ids = table[topk_ids.long()]
        return cutlass_fused_moe(
            hidden.contiguous(),
            topk_ids,
            topk_weights,
            w13,
            w2,
            spec.dtype,
            [],
            ep_size=ep_size,
            ep_rank=ep_rank,
            activation_type=act_type,
        )

    return cutlass_experts
