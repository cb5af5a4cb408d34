"""moe.topk through FlashInfer's fused_topk_deepseek and moe.experts through its cutlass_fused_moe.

topk: sigmoid scoring with a correction bias (DeepSeek-V3's routing, grouped or not). The kernel always
renormalises; with renormalize=False the weights are the chosen experts' sigmoid scores (times the scaling
factor), recomputed from the ids. Scores are passed in float32, so the weights come back in float32.

experts: unquantized fp16/bf16 weights. cutlass_fused_moe reads w13 as [up; gate] (its fc1 is [w3; w1]):
`prepare` swaps the halves once at load time. Activation "silu" is its Swiglu, "gelu" its Geglu.
"""

from __future__ import annotations

import torch
from flashinfer.fused_moe import cutlass_fused_moe, fused_topk_deepseek

from anyaccel.ops.moe import MoESpec, TopKSpec

from .kernels.supports import ungrouped_split

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


def experts(spec: MoESpec, platform):
    act_type = SWIGLU if spec.activation == "silu" else GEGLU

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
        return cutlass_fused_moe(
            hidden.contiguous(),
            topk_ids,
            topk_weights,
            w13,
            w2,
            spec.dtype,
            [],
            activation_type=act_type,
        )

    return cutlass_experts
