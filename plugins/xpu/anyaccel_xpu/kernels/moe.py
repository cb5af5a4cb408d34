"""moe.topk through vllm-xpu-kernels' _moe_C routing ops and moe.experts through its XpuFusedMoe.

Routing: topk_softmax / topk_sigmoid write (weights float32, ids int32, token-expert indices) into buffers
made here; a correction bias takes part in the CHOICE only, as the contract says. grouped_topk returns its
pair and always scores a group by its two best biased scores, so it serves biased grouped routing; softmax
scores are computed here first (its scoring_func 0 takes activated scores), sigmoid inside (1).

Experts: XpuFusedMoe reads 16-bit weights as [E, K, N] (w13 [E, H, 2I], w2 [E, I, H]); `prepare` transposes
the contract's [E, 2I, H] / [E, H, I] once at load. The fused object is built per call from the prepared
tensors (a few attribute assignments, no copy): what is per layer stays the weights.
"""

from __future__ import annotations

import torch
from vllm_xpu_kernels.fused_moe_interface import XpuFusedMoe

from .. import gates
from .. import vendor_ops as ops


def _buffers(logits: torch.Tensor, top_k: int):
    t = logits.shape[0]
    weights = torch.empty(t, top_k, dtype=torch.float32, device=logits.device)
    ids = torch.empty(t, top_k, dtype=torch.int32, device=logits.device)
    return weights, ids, torch.empty_like(ids)


def topk_softmax(
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    """topk_softmax has no scaling factor: it is applied to its output."""
    weights, ids, token_expert = _buffers(router_logits, top_k)
    ops.moe_C.topk_softmax(weights, ids, token_expert, router_logits, renormalize, correction_bias, None)
    if routed_scaling_factor != 1.0:
        weights.mul_(routed_scaling_factor)
    return weights, ids


def topk_sigmoid(
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    weights, ids, token_expert = _buffers(router_logits, top_k)
    ops.moe_C.topk_sigmoid(
        weights, ids, token_expert, router_logits, renormalize, correction_bias, routed_scaling_factor, None
    )
    return weights, ids


def grouped_topk(
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    scores = torch.softmax(router_logits.float(), dim=-1) if scoring == "softmax" else router_logits
    weights, ids = ops.moe_C.grouped_topk(
        scores,
        n_group,
        topk_group,
        top_k,
        renormalize,
        routed_scaling_factor,
        correction_bias,
        gates.GROUPED_SCORING[scoring],
    )
    return weights.float(), ids.to(torch.int32)


def prepare(spec, weights: dict) -> dict:
    """Once at load: w13 [E, 2I, H] -> [E, H, 2I] and w2 [E, H, I] -> [E, I, H], contiguous."""
    return weights | {
        "w13": weights["w13"].transpose(-1, -2).contiguous(),
        "w2": weights["w2"].transpose(-1, -2).contiguous(),
    }


def experts(
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
    fused = XpuFusedMoe(
        w13,
        None,
        w13_bias,
        w2,
        None,
        w2_bias,
        n_experts_per_token=topk_ids.shape[1],
        activation=activation,
        num_experts=w13.shape[0],
        expert_map=expert_map,
    )
    out = torch.empty_like(hidden)
    fused.apply(out, hidden, topk_weights, topk_ids, expert_map=expert_map)
    return out
