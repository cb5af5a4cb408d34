"""Masked softmax attention of one sequence, as torch_npu's attention functions define it.

Positions are right-aligned ("rightDownCausal"): query row i of a sequence with n query rows and s keys sits
at key position p = s - n + i. Visibility per sparse_mode:
    0 (no atten_mask)  every key
    3 (causal)         keys j <= p
    4 (band)           keys p - pre_tokens <= j <= p + next_tokens
(the documented band: the compressed mask keeps j >= p - pre_tokens, so pre_tokens=W sees W + 1 keys).
A learnable sink adds exp(sink) to the softmax denominator with no value. Rows that see no key are zeros.
"""

from __future__ import annotations

import torch


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    sparse_mode: int,
    pre_tokens: int,
    next_tokens: int,
    sink: torch.Tensor | None,
) -> torch.Tensor:
    """q [n, Hq, D], k/v [s, Hkv, D] -> [n, Hq, D] float32."""
    n, hq, _ = q.shape
    s, hkv, dv = v.shape
    if n == 0:
        return torch.zeros(0, hq, dv)
    if s == 0:
        return torch.zeros(n, hq, dv)
    group = hq // hkv
    kf = k.float().repeat_interleave(group, dim=1)
    vf = v.float().repeat_interleave(group, dim=1)
    logits = torch.einsum("nhd,shd->hns", q.float(), kf) * scale
    pos = torch.arange(n).unsqueeze(1) + (s - n)
    j = torch.arange(s).unsqueeze(0)
    if sparse_mode == 3:
        visible = j <= pos
    elif sparse_mode == 4:
        visible = (j >= pos - pre_tokens) & (j <= pos + next_tokens)
    else:
        visible = torch.ones(n, s, dtype=torch.bool)
    logits = logits.masked_fill(~visible, float("-inf"))
    top = logits.amax(-1, keepdim=True)
    if sink is not None:
        top = torch.maximum(top, sink.float().view(hq, 1, 1))
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    weights = torch.exp(logits - top)
    denom = weights.sum(-1, keepdim=True)
    if sink is not None:
        denom = denom + torch.exp(sink.float().view(hq, 1, 1) - top)
    out = torch.einsum("hns,shd->nhd", weights / denom.clamp_min(1e-30), vf)
    return torch.where(visible.any(-1).view(n, 1, 1), out, torch.zeros_like(out))
