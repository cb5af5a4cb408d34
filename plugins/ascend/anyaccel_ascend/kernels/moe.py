"""moe.topk and moe.experts through torch_npu's MoE operators.

topk (softmax scoring): npu_moe_gating_top_k_softmax(logits, None, k) on float32 logits (so the weights it
    returns are float32), then the contract's renormalisation and scaling. On the 310P, as vllm-ascend's
    310P router calls it: float16 logits (its only dtype there) in calls of at most 1024 tokens; it picks the
    experts, and their weights are recomputed in float32 (its float16 ones would round the contract's).
topk (sigmoid scoring, with or without groups and a correction bias): npu_moe_gating_top_k with norm_type 1,
    groups scored by the sum of their two best choice scores when a bias is given (group_select_mode 1,
    DeepSeek-V3) and by their best otherwise (0). Without renormalisation the weights are read from its
    norm output (out_flag) instead of its renormalised y.
experts: npu_moe_init_routing_v2 (tokens sorted by expert; row_idx_type 1: each sorted row's flat source
    index t*k + j; counts per expert) -> npu_grouped_matmul with w13 -> npu_swiglu -> npu_grouped_matmul
    with w2 -> npu_moe_token_unpermute(rows, sorted indices, probs) (which weighs and sums each token's rows;
    vllm-ascend replaced npu_moe_finalize_routing by it for accuracy).
    Weights are prepared once (`prepare`) into the [E, K, N] layout grouped_matmul reads: w13 [E, H, 2I]
    (gate columns first, as the contract's rows) and w2 [E, I, H].
    Expert parallelism: ids are mapped through expert_map to local experts; pairs whose expert lives on
    another rank get weight 0 and are parked on local expert 0 (unpermute needs every (token, slot) row).
"""

from __future__ import annotations

import torch
import torch_npu

from .. import gates


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
    weights, ids, _ = torch_npu.npu_moe_gating_top_k_softmax(router_logits.float(), None, k=top_k)
    return _scaled(weights, ids, renormalize, routed_scaling_factor)


def topk_softmax_310p(
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    ids = torch.cat(
        [
            torch_npu.npu_moe_gating_top_k_softmax(part.to(gates.TOPK_SOFTMAX_310P_DTYPE), None, k=top_k)[1]
            for part in router_logits.split(gates.TOPK_SOFTMAX_310P_TOKENS)
        ]
    )
    # its float16 weights would round the contract's float32 ones: recomputed for the chosen experts
    weights = torch.softmax(router_logits.float(), dim=-1).gather(1, ids.long())
    return _scaled(weights, ids, renormalize, routed_scaling_factor)


def _scaled(weights, ids, renormalize, routed_scaling_factor):
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    if routed_scaling_factor != 1.0:
        weights = weights * routed_scaling_factor
    return weights, ids


def gating_top_k(
    router_logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    n_group=1,
    topk_group=1,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    logits = router_logits.float()
    weights, ids, norm = torch_npu.npu_moe_gating_top_k(
        logits,
        top_k,
        bias=None if correction_bias is None else correction_bias.float(),
        k_group=topk_group,
        group_count=n_group,
        group_select_mode=1 if correction_bias is not None else 0,
        renorm=0,
        norm_type=1,
        out_flag=not renormalize,
        routed_scaling_factor=routed_scaling_factor,
        eps=1e-20,
    )
    if not renormalize:
        weights = norm.gather(1, ids.long()) * routed_scaling_factor
    return weights, ids


def prepare(spec, weights: dict) -> dict:
    """Contract [E, N, K] weights -> the [E, K, N] tensors npu_grouped_matmul multiplies by."""
    return weights | {
        "w13": weights["w13"].transpose(1, 2).contiguous(),
        "w2": weights["w2"].transpose(1, 2).contiguous(),
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
    tokens, top_k = topk_ids.shape
    num_experts = w13.shape[0]
    ids, weights = topk_ids, topk_weights
    if expert_map is not None:
        local = expert_map[topk_ids.long()]
        weights = torch.where(local >= 0, weights, torch.zeros_like(weights))
        ids = local.clamp_min(0).to(torch.int32)
    rows, sorted_idx, counts, _ = torch_npu.npu_moe_init_routing_v2(
        hidden,
        ids.to(torch.int32),
        active_num=tokens * top_k,
        expert_num=num_experts,
        expert_tokens_num_type=1,
        expert_tokens_num_flag=True,
        quant_mode=-1,
        active_expert_range=[0, num_experts],
        row_idx_type=1,
    )
    gmm = {"split_item": 2, "group_type": 0, "group_list_type": 1, "group_list": counts}
    gate_up = torch_npu.npu_grouped_matmul([rows], [w13], **gmm)[0]
    down = torch_npu.npu_grouped_matmul([torch_npu.npu_swiglu(gate_up, dim=-1)], [w2], **gmm)[0]
    out = torch_npu.npu_moe_token_unpermute(down, sorted_idx, probs=weights.to(gates.UNPERMUTE_DTYPE))
    return out.to(hidden.dtype)
