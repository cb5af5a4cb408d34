"""Torch reference for moe.* (contracts in anyaccel.ops.moe).

experts() groups the (token, expert) pairs by local expert with one sort and one host sync (the per-expert
counts) and gathers their rows once. Then either each expert with tokens runs once on its contiguous slice
(the Python loop is over experts, never over tokens), or, when nearly every expert has a few tokens (decode
batches), all experts run in one batched matmul per projection on a [E, most tokens of one expert, H] padded
layout: a few rows per expert leave a per-expert matmul too small to use the CPU's threads, while one bmm
splits the experts between them (measured on the demo MoE at batch 8 with 2 threads: 2.1 ms against 3.5 ms
per layer; with many tokens per expert the loop is faster, the padding costs more than it saves). The
weighted outputs are scattered back to their (token, slot) and the slots summed in one reduction. Everything
after the inputs is float32; the output is rounded once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from anyaccel.ops.base import expect_range
from anyaccel.ops.microscaling import dequantize, infer_format
from anyaccel.ops.moe import SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT
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


# the batched form runs when at least this share of the experts has tokens and none has more than
# DENSE_MAX_ROWS of them
DENSE_MIN_BUSY = 0.75
DENSE_MAX_ROWS = 32


Glu = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def swiglu_oai(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """GPT-OSS's clamped SwiGLU (the contract's "swiglu_oai")."""
    gate = gate.clamp(max=SWIGLU_OAI_LIMIT)
    up = up.clamp(-SWIGLU_OAI_LIMIT, SWIGLU_OAI_LIMIT)
    return (up + 1) * gate * torch.sigmoid(SWIGLU_OAI_ALPHA * gate)


def glu_for(activation: str) -> Glu:
    """glu(gate, up) of the contract's activation."""
    if activation == "swiglu_oai":
        return swiglu_oai
    act = F.silu if activation == "silu" else F.gelu
    return lambda gate, up: act(gate) * up


def _dequantized_all(
    w: torch.Tensor, scale: torch.Tensor | None, zeros: torch.Tensor | None, glob: torch.Tensor | None
) -> torch.Tensor:
    """Every expert of a stacked weight as float32 [E, N, K]."""
    if scale is None:
        return w.float()
    return torch.stack([_dequantized(w, e, scale, zeros, glob) for e in range(w.shape[0])])


def _dequantized(
    w: torch.Tensor,
    e: int,
    scale: torch.Tensor | None,
    zeros: torch.Tensor | None,
    glob: torch.Tensor | None = None,
) -> torch.Tensor:
    """Expert e of a stacked weight as float32 [N, K], for every quantization mode of the contract."""
    if scale is None:
        return w[e].float()
    if scale.dtype in (torch.uint8, torch.float8_e4m3fn):  # block-scaled: mxfp8, mxfp4, nvfp4
        return dequantize(infer_format(w, scale), w[e], scale[e], None if glob is None else glob[e : e + 1])
    if w.dtype == torch.int32:  # int4_group: [N, K/8] words, scales/zeros [N, K/group]
        q = unpack_rows(w[e]).float()
        group = q.shape[1] // scale.shape[-1]
        zero = 8.0 if zeros is None else zeros[e].float().repeat_interleave(group, dim=1)
        return (q - zero) * scale[e].float().repeat_interleave(group, dim=1)
    return w[e].float() * expand_scale(scale[e], *w[e].shape)  # fp8: [E] or [E, N/128, K/128] multipliers


def _run_batched(
    rows: torch.Tensor,
    expert: torch.Tensor,
    per_expert: list[int],
    w13: torch.Tensor,
    w2: torch.Tensor,
    glu: Glu,
    b13: torch.Tensor | None,
    b2: torch.Tensor | None,
) -> torch.Tensor:
    """rows [P, H] fp32 grouped by expert (expert [P]: each row's expert; per_expert: rows per expert),
    dequantized weights [E, 2I, H] / [E, H, I] and float32 biases [E, 2I] / [E, H] or None -> [P, H]: every
    expert in one bmm per projection."""
    sizes = torch.tensor(per_expert, device=rows.device)
    rank = torch.arange(rows.shape[0], device=rows.device) - (sizes.cumsum(0) - sizes)[expert]
    padded = rows.new_zeros(len(per_expert), max(per_expert), rows.shape[1])
    padded[expert, rank] = rows  # row p goes to row rank[p] of its expert's block
    gate_up = torch.bmm(padded, w13.transpose(1, 2))
    if b13 is not None:
        gate_up = gate_up + b13[:, None, :]
    down = torch.bmm(glu(*gate_up.chunk(2, dim=-1)), w2.transpose(1, 2))
    if b2 is not None:
        down = down + b2[:, None, :]
    return down[expert, rank]


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
    w13_bias: torch.Tensor | None = None,
    w2_bias: torch.Tensor | None = None,
    w13_global_scale: torch.Tensor | None = None,
    w2_global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    t, k = topk_ids.shape
    # an id outside the experts would be skipped as remote (-1), count as another expert or fail deep inside
    num_global = w13.shape[0] if expert_map is None else expert_map.numel()
    expect_range("moe.experts", "topk_ids", topk_ids, 0, num_global)
    if expert_map is not None:
        expect_range("moe.experts", "expert_map", expert_map, -1, w13.shape[0])
    local = topk_ids.long().flatten()
    if expert_map is not None:
        local = expert_map.long()[local]  # -1: the expert lives on another rank
    order = local.argsort(stable=True)
    # the one host sync; slot 0 counts remote pairs
    counts = torch.bincount(local + 1, minlength=w13.shape[0] + 1).tolist()
    pairs = order[counts[0] :]  # this rank's (token, slot) pairs, grouped by expert
    glu = glu_for(activation)
    b13 = None if w13_bias is None else w13_bias.float()
    b2 = None if w2_bias is None else w2_bias.float()
    rows = hidden.float()[pairs // k]
    per_expert = counts[1:]
    busy = sum(count > 0 for count in per_expert)
    if busy >= DENSE_MIN_BUSY * len(per_expert) and max(per_expert) <= DENSE_MAX_ROWS:
        w13_all = _dequantized_all(w13, w13_scale, w13_zeros, w13_global_scale)
        w2_all = _dequantized_all(w2, w2_scale, w2_zeros, w2_global_scale)
        ys = _run_batched(rows, local[pairs], per_expert, w13_all, w2_all, glu, b13, b2)
    else:
        ys = rows.new_empty(rows.shape)
        start = 0
        for e, count in enumerate(per_expert):
            if count == 0:
                continue
            end = start + count
            gate_up = rows[start:end] @ _dequantized(w13, e, w13_scale, w13_zeros, w13_global_scale).T
            if b13 is not None:
                gate_up += b13[e]
            down = _dequantized(w2, e, w2_scale, w2_zeros, w2_global_scale)
            torch.mm(glu(*gate_up.chunk(2, dim=-1)), down.T, out=ys[start:end])
            if b2 is not None:
                ys[start:end] += b2[e]
            start = end
    # each pair's weighted output back to its (token, slot), then the k slots of a token summed: one scatter
    # and one reduction instead of an accumulation per expert
    per_slot = rows.new_zeros(t * k, rows.shape[1])
    per_slot[pairs] = ys * topk_weights.float().flatten()[pairs, None]
    return per_slot.view(t, k, -1).sum(dim=1).to(hidden.dtype)
