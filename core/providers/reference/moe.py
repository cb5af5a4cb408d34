"""Torch reference for moe.* (contracts in anyaccel.ops.moe).

experts() groups the (token, expert) pairs by local expert with one sort and runs each expert once on its
tokens, so the Python loop is over experts (at most E iterations), never over tokens. Everything after the
inputs is float32; the output is rounded once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from anyaccel.schemes.packing import unpack_rows

from .quant import expand_scale


def topk(router_logits: torch.Tensor, top_k: int, scoring: str = "softmax", renormalize: bool = True,
         n_group: int = 1, topk_group: int = 1, correction_bias: torch.Tensor | None = None,
         routed_scaling_factor: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
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


def _dequantized(w: torch.Tensor, e: int, scale: torch.Tensor | None,
                 zeros: torch.Tensor | None) -> torch.Tensor:
    """Expert e of a stacked weight as float32 [N, K], for every quantization mode of the contract."""
    if scale is None:
        return w[e].float()
    if w.dtype == torch.int32:  # int4_group: [N, K/8] words, scales/zeros [N, K/group]
        q = unpack_rows(w[e]).float()
        group = q.shape[1] // scale.shape[-1]
        zero = 8.0 if zeros is None else zeros[e].float().repeat_interleave(group, dim=1)
        return (q - zero) * scale[e].float().repeat_interleave(group, dim=1)
    return w[e].float() * expand_scale(scale[e], *w[e].shape)  # fp8: [E] or [E, N/128, K/128] multipliers


def experts(hidden: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor, topk_weights: torch.Tensor,
            topk_ids: torch.Tensor, activation: str = "silu", expert_map: torch.Tensor | None = None,
            w13_scale: torch.Tensor | None = None, w2_scale: torch.Tensor | None = None,
            w13_zeros: torch.Tensor | None = None, w2_zeros: torch.Tensor | None = None) -> torch.Tensor:
    k = topk_ids.shape[1]
    local = topk_ids.long().flatten()
    if expert_map is not None:
        local = expert_map.long()[local]  # -1: the expert lives on another rank
    order = local.argsort(stable=True)
    counts = torch.bincount(local + 1, minlength=w13.shape[0] + 1).tolist()  # slot 0 counts remote pairs
    act = F.silu if activation == "silu" else F.gelu
    x = hidden.float()
    pair_weights = topk_weights.float().flatten()
    out = torch.zeros_like(x)
    start = counts[0]
    for e, count in enumerate(counts[1:]):
        if count == 0:
            continue
        pairs = order[start:start + count]
        start += count
        tokens = pairs // k
        gate, up = (x[tokens] @ _dequantized(w13, e, w13_scale, w13_zeros).T).chunk(2, dim=-1)
        y = (act(gate) * up) @ _dequantized(w2, e, w2_scale, w2_zeros).T
        out.index_add_(0, tokens, y * pair_weights[pairs, None])
    return out.to(hidden.dtype)
