"""The attention every emulated attention API computes, in float32 on the host.

One sequence at a time: queries [n, Hq, D] at the last n positions of a key sequence of length L
(bottom-right aligned, as FlashInfer, FA4 and trtllm-gen align causal masks), keys/values [L, Hkv, D].
"""

from __future__ import annotations

import torch


def gather_pages(cache: torch.Tensor, layout: str, pages: torch.Tensor, length: int) -> torch.Tensor:
    """[length, Hkv, D] float32: the first `length` tokens stored in `pages` of a [P, bs, Hkv, D] (NHD) or
    [P, Hkv, bs, D] (HND) cache."""
    bs = cache.shape[1] if layout == "NHD" else cache.shape[2]
    need = -(-length // bs)
    if need > pages.numel():
        raise ValueError(f"page table row has {pages.numel()} pages, {need} needed for {length} tokens")
    rows = pages[:need].long()
    if bool((rows < 0).any()) or bool((rows >= cache.shape[0]).any()):
        raise IndexError(f"page index out of range [0, {cache.shape[0]}) among {rows.tolist()}")
    picked = cache[rows].float()
    if layout == "HND":
        picked = picked.transpose(1, 2)
    return picked.reshape(-1, *picked.shape[2:])[:length]


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scale: float,
    causal: bool,
    window_left: int = -1,
    softcap: float = 0.0,
    sinks: torch.Tensor | None = None,
    v_scale: float = 1.0,
) -> torch.Tensor:
    """[n, Hq, D] float32. window_left: keys j with pos - window_left <= j <= pos (-1: no window);
    softcap: C * tanh(s / C) on the scaled logits; sinks [Hq]: one extra logit per head that takes part in
    the softmax and adds no value; v_scale multiplies the output (fp8 value dequantization)."""
    n, hq, _ = q.shape
    length, hkv, _ = k.shape
    if length == 0 or n == 0:
        return q.new_zeros(q.shape, dtype=torch.float32)
    group = hq // hkv
    kf = k.float().repeat_interleave(group, dim=1)
    vf = v.float().repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q.float(), kf) * scale
    if softcap > 0:
        scores = softcap * torch.tanh(scores / softcap)
    pos = torch.arange(length - n, length).unsqueeze(1)
    key = torch.arange(length).unsqueeze(0)
    allowed = torch.ones(n, length, dtype=torch.bool)
    if causal:
        allowed &= key <= pos
    if window_left >= 0:
        allowed &= key >= pos - window_left
    scores = scores.masked_fill(~allowed, float("-inf"))
    if sinks is not None:
        sink = sinks.float().view(hq, 1, 1).expand(hq, n, 1)
        scores = torch.cat([scores, sink], dim=-1)
    probs = torch.softmax(scores, dim=-1)[..., :length]
    probs = torch.nan_to_num(probs)
    return torch.einsum("hqk,khd->qhd", probs, vf) * v_scale
