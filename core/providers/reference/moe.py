"""Torch reference for moe.* (contracts in anyaccel.ops.moe).

experts() groups the (token, expert) pairs by local expert with one sort and one host sync (the per-expert
counts), gathers their rows once and runs each expert with tokens once on its contiguous slice, so the Python
loop is over experts (at most E iterations), never over tokens. The weighted outputs are scattered back to
their (token, slot) and the slots summed in one reduction. Everything after the inputs is float32; the output
is rounded once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from anyaccel.schemes.packing import unpack_rows

from .quant import expand_scale


def topk(
    router_logits: torch.Tensor,
    top_k: int,
    scoring: str = "softmax",
    renormalize: bool = True,
    n_group: int = 1,
    topk_group: int = 1,
    correction_bias: torch.Tensor | None = None,
    routed_scaling_factor: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = router_logits.float()
    scores = logits.softmax(dim=-1) if scoring == "softmax" else logits.sigmoid()
    choice = scores if correction_bias is None else scores + correction_bias.float()
    if n_group > 1:
        choice = _keep_best_groups(choice, n_group, topk_group, sum_top2=correction_bias is not None)
    ids = choice.topk(top_k, dim=-1).indices
    weights = scores.gather(1, ids)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights * routed_scaling_factor, ids.to(torch.int32)


def _keep_best_groups(choice: torch.Tensor, n_group: int, topk_group: int, sum_top2: bool) -> torch.Tensor:
    """choice scores with every expert outside the topk_group best groups set to -inf."""
    t, e = choice.shape
    grouped = choice.view(t, n_group, e // n_group)
    group_score = grouped.topk(2, dim=-1).values.sum(-1) if sum_top2 else grouped.amax(dim=-1)
    best = group_score.topk(topk_group, dim=-1).indices
    keep = torch.zeros_like(group_score, dtype=torch.bool).scatter_(1, best, True)
    return grouped.masked_fill(~keep.unsqueeze(-1), float("-inf")).view(t, e)


def _dequantized(
    w: torch.Tensor, e: int, scale: torch.Tensor | None, zeros: torch.Tensor | None
) -> torch.Tensor:
    """Expert e of a stacked weight as float32 [N, K], for every quantization mode of the contract."""
    if scale is None:
        return w[e].float()
    if w.dtype == torch.int32:  # int4_group: [N, K/8] words, scales/zeros [N, K/group]
        q = unpack_rows(w[e]).float()
        group = q.shape[1] // scale.shape[-1]
        zero = 8.0 if zeros is None else zeros[e].float().repeat_interleave(group, dim=1)
        return (q - zero) * scale[e].float().repeat_interleave(group, dim=1)
    return w[e].float() * expand_scale(scale[e], *w[e].shape)  # fp8: [E] or [E, N/128, K/128] multipliers


def experts(
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
    t, k = topk_ids.shape
    local = topk_ids.long().flatten()
    if expert_map is not None:
        local = expert_map.long()[local]  # -1: the expert lives on another rank
    order = local.argsort(stable=True)
    # the one host sync; slot 0 counts remote pairs
    counts = torch.bincount(local + 1, minlength=w13.shape[0] + 1).tolist()
    pairs = order[counts[0] :]  # this rank's (token, slot) pairs, grouped by expert
    act = F.silu if activation == "silu" else F.gelu
    rows = hidden.float()[pairs // k]
    ys = rows.new_empty(rows.shape)
    start = 0
    for e, count in enumerate(counts[1:]):
        if count == 0:
            continue
        end = start + count
        gate, up = (rows[start:end] @ _dequantized(w13, e, w13_scale, w13_zeros).T).chunk(2, dim=-1)
        torch.mm(act(gate) * up, _dequantized(w2, e, w2_scale, w2_zeros).T, out=ys[start:end])
        start = end
    # each pair's weighted output back to its (token, slot), then the k slots of a token summed: one scatter
    # and one reduction instead of an accumulation per expert
    per_slot = rows.new_zeros(t * k, rows.shape[1])
    per_slot[pairs] = ys * topk_weights.float().flatten()[pairs, None]
    return per_slot.view(t, k, -1).sum(dim=1).to(hidden.dtype)
