"""Routing (aiter/ops/moe_op.py topk_softmax, aiter/ops/topk.py biased_grouped_topk; ROCm/aiter e404860):
outputs written in place into caller-allocated buffers."""

from __future__ import annotations

import torch

from ._device import gfx

# compute units of the parts (MI300X/MI325X: 304, MI355X: 256); biased_grouped_topk switches kernels on them
CU_COUNT = {"gfx942": 304, "gfx950": 256}


def _outputs(topk_weights, topk_ids, tokens: int) -> int:
    assert topk_weights.dtype == torch.float32, "topk_weights must be float32"
    assert topk_ids.dtype == torch.int32, "topk_ids must be int32"
    assert topk_weights.shape == topk_ids.shape and topk_weights.shape[0] == tokens, "[tokens, topk] outputs"
    return topk_weights.shape[1]


def topk_softmax(
    topk_weights,
    topk_indices,
    token_expert_indices,
    gating_output,
    need_renorm,
    num_shared_experts=0,
    shared_expert_scoring_func="",
):
    """Softmax over all experts, the k largest, renormalised to sum 1 if need_renorm."""
    if num_shared_experts:
        raise NotImplementedError("emulated topk_softmax: no shared experts")
    k = _outputs(topk_weights, topk_indices, gating_output.shape[0])
    assert token_expert_indices.shape == topk_indices.shape, "token_expert_indices must be [tokens, topk]"
    probs = gating_output.float().softmax(-1)
    w, ids = probs.topk(k, dim=-1)
    if need_renorm:
        w = w / w.sum(-1, keepdim=True)
    topk_weights.copy_(w)
    topk_indices.copy_(ids.to(torch.int32))
    rows = torch.arange(gating_output.shape[0], dtype=torch.int32).view(-1, 1)
    token_expert_indices.copy_(rows + torch.arange(k, dtype=torch.int32) * gating_output.shape[0])


def biased_grouped_topk(
    gating_output,
    correction_bias,
    topk_weights,
    topk_ids,
    num_expert_group,
    topk_group,
    need_renorm,
    routed_scaling_factor=1.0,
):
    """DeepSeek-V3: s = sigmoid(logits); experts chosen by s + bias within the topk_group groups whose two
    best biased scores sum highest; weights are the unbiased s, renormalised, times routed_scaling_factor."""
    t, e = gating_output.shape
    k = _outputs(topk_weights, topk_ids, t)
    if t > CU_COUNT.get(gfx(), 304) * 212 and e // num_expert_group <= 32:  # AITER's moe_fused_gate branch
        assert need_renorm, "Renormalization is required for moe_fused_gate."
    assert correction_bias.shape == (e,), "correction_bias must be [num_experts]"
    assert e % num_expert_group == 0, "num_experts must divide into num_expert_group groups"
    scores = gating_output.float().sigmoid()
    choice = scores + correction_bias.float()
    groups = choice.view(t, num_expert_group, -1)
    group_score = groups.topk(min(2, groups.shape[-1]), dim=-1).values.sum(-1)
    keep = torch.zeros_like(group_score, dtype=torch.bool)
    keep.scatter_(1, group_score.topk(topk_group, dim=-1).indices, True)
    masked = choice.masked_fill(~keep.repeat_interleave(e // num_expert_group, dim=1), float("-inf"))
    ids = masked.topk(k, dim=-1).indices
    w = scores.gather(1, ids)
    if need_renorm:
        w = w / w.sum(-1, keepdim=True)
    topk_weights.copy_(w * routed_scaling_factor)
    topk_ids.copy_(ids.to(torch.int32))


def grouped_topk(
    gating_output,
    topk_weights,
    topk_ids,
    num_expert_group,
    topk_group,
    need_renorm,
    is_softmax=True,
    routed_scaling_factor=1.0,
):
    """DeepSeek-V2: softmax (or sigmoid) scores; a group's score is its best expert's; the k best experts
    of the topk_group best groups, renormalised if asked, times routed_scaling_factor."""
    t, e = gating_output.shape
    k = _outputs(topk_weights, topk_ids, t)
    assert e % num_expert_group == 0, "num_experts must divide into num_expert_group groups"
    logits = gating_output.float()
    scores = logits.softmax(-1) if is_softmax else logits.sigmoid()
    group_score = scores.view(t, num_expert_group, -1).amax(-1)
    keep = torch.zeros_like(group_score, dtype=torch.bool)
    keep.scatter_(1, group_score.topk(topk_group, dim=-1).indices, True)
    masked = scores.masked_fill(~keep.repeat_interleave(e // num_expert_group, dim=1), 0.0)
    w, ids = masked.topk(k, dim=-1)
    if need_renorm:
        w = w / w.sum(-1, keepdim=True)
    topk_weights.copy_(w * routed_scaling_factor)
    topk_ids.copy_(ids.to(torch.int32))
