"""Oracles for moe.*: one token and one chosen expert at a time, in float64, from the contract's formulas."""

from __future__ import annotations

import math

import torch

from . import mx
from .quant import dequantize, nibbles

SWIGLU_ALPHA, SWIGLU_LIMIT = 1.702, 7.0  # GPT-OSS (transformers' GptOssConfig swiglu_alpha / swiglu_limit)


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
    t, e = router_logits.shape
    weights = torch.zeros(t, top_k, dtype=torch.float64)
    ids = torch.zeros(t, top_k, dtype=torch.int32)
    bias = [0.0] * e if correction_bias is None else correction_bias.double().tolist()
    for row in range(t):
        logits = router_logits[row].double().tolist()
        if scoring == "softmax":
            top = max(logits)
            exps = [math.exp(v - top) for v in logits]
            scores = [v / sum(exps) for v in exps]
        else:
            scores = [1.0 / (1.0 + math.exp(-v)) for v in logits]
        choice = [s + b for s, b in zip(scores, bias, strict=True)]
        eligible = list(range(e))
        if n_group > 1:
            size = e // n_group
            group_score = []
            for g in range(n_group):
                members = sorted(choice[g * size : (g + 1) * size], reverse=True)
                group_score.append(members[0] + members[1] if correction_bias is not None else members[0])
            best = sorted(range(n_group), key=lambda g: -group_score[g])[:topk_group]
            eligible = [x for x in eligible if x // size in best]
        chosen = sorted(eligible, key=lambda x: -choice[x])[:top_k]
        picked = [scores[x] for x in chosen]
        total = sum(picked) if renormalize else 1.0
        for j, x in enumerate(chosen):
            weights[row, j] = picked[j] / total * routed_scaling_factor
            ids[row, j] = x
    return weights, ids


def _expert_weight(
    w: torch.Tensor,
    e: int,
    scale: torch.Tensor | None,
    zeros: torch.Tensor | None,
    glob: torch.Tensor | None = None,
) -> torch.Tensor:
    """Float64 [N, K] weight of local expert e."""
    if scale is None:
        return w[e].double()
    if scale.dtype in (torch.uint8, torch.float8_e4m3fn):  # mxfp8, mxfp4, nvfp4
        fmt = mx.format_of(w, scale)
        return mx.dequantize(fmt, w[e], scale[e], None if glob is None else glob[e])
    if w.dtype == torch.int32:  # int4: value i of a word is input column 8c + i
        q = nibbles(w[e]).double()
        group = q.shape[1] // scale.shape[-1]
        out = torch.empty_like(q)
        for col in range(q.shape[1]):
            zero = 8.0 if zeros is None else zeros[e, :, col // group].double()
            out[:, col] = (q[:, col] - zero) * scale[e, :, col // group].double()
        return out
    return dequantize(w[e], scale[e])


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
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    out = torch.zeros(hidden.shape, dtype=torch.float64)
    for t in range(hidden.shape[0]):
        x = hidden[t].double()
        for j in range(topk_ids.shape[1]):
            e = int(topk_ids[t, j])
            if expert_map is not None:
                e = int(expert_map[e])
                if e < 0:
                    continue  # another rank holds this expert
            if e not in cache:
                cache[e] = (
                    _expert_weight(w13, e, w13_scale, w13_zeros, w13_global_scale),
                    _expert_weight(w2, e, w2_scale, w2_zeros, w2_global_scale),
                )
            up_proj, down_proj = cache[e]
            gu = up_proj @ x
            if w13_bias is not None:
                gu = gu + w13_bias[e].double()
            half = gu.shape[0] // 2
            g, u = gu[:half], gu[half:]
            if activation == "silu":
                glu = g / (1.0 + torch.exp(-g)) * u
            elif activation == "gelu":
                glu = 0.5 * g * (1.0 + torch.erf(g / math.sqrt(2.0))) * u
            else:  # swiglu_oai
                g = torch.minimum(g, torch.tensor(SWIGLU_LIMIT, dtype=torch.float64))
                u = u.clamp(-SWIGLU_LIMIT, SWIGLU_LIMIT)
                glu = (u + 1.0) * g / (1.0 + torch.exp(-SWIGLU_ALPHA * g))
            y = down_proj @ glu
            if w2_bias is not None:
                y = y + w2_bias[e].double()
            out[t] += float(topk_weights[t, j]) * y
    return out
