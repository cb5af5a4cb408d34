"""Attention arithmetic for plugins' emulators: float32 on the host, one sequence at a time.

An emulated attention API (FlashAttention-style varlen functions, paged decodes, FlashInfer's wrappers)
gathers a sequence's keys and values, decides which keys each query sees, and computes the softmax here.
Queries [n, Hq, D] sit at the last n positions of a key sequence of length L (bottom-right aligned, as
FlashAttention, FlashInfer and trtllm-gen align causal masks); keys/values are [L, Hkv, D]. This is the
vendor's documented result, not the vendor's numerics: it proves a plugin's argument mapping, never the
kernel.
"""

from __future__ import annotations

import torch


def gather_pages(cache: torch.Tensor, layout: str, pages: torch.Tensor, length: int) -> torch.Tensor:
    """[length, Hkv, D] float32: the first `length` tokens stored in `pages` of a [P, bs, Hkv, D] (NHD) or
    [P, Hkv, bs, D] (HND) cache. Entries past the last needed page are not read (they may be -1)."""
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


def visible(n: int, length: int, *, causal: bool, left: int = -1, right: int = -1) -> torch.Tensor:
    """[n, length] bool: key j is seen by the query at position p when j <= p (causal), p - left <= j
    (left >= 0) and j <= p + right (right >= 0); -1 leaves that side open (FlashAttention's window_size)."""
    pos = torch.arange(length - n, length).unsqueeze(1)
    key = torch.arange(length).unsqueeze(0)
    seen = torch.ones(n, length, dtype=torch.bool)
    if causal:
        seen &= key <= pos
    if left >= 0:
        seen &= key >= pos - left
    if right >= 0:
        seen &= key <= pos + right
    return seen


def attend_visible(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    seen: torch.Tensor,
    scale: float,
    softcap: float = 0.0,
    sinks: torch.Tensor | None = None,
) -> torch.Tensor:
    """q [n, Hq, D], k/v [L, Hkv, D], seen [n, L] bool -> [n, Hq, D] float32. softcap C > 0 applies
    C * tanh(s / C) to the scaled logits; sinks [Hq] add one logit per head that takes part in the softmax
    and contributes no value. Rows that see nothing are 0, as FlashAttention-style kernels write them."""
    hq, hkv = q.shape[1], k.shape[1]
    kf = k.float().repeat_interleave(hq // hkv, dim=1)
    vf = v.float().repeat_interleave(hq // hkv, dim=1)
    logits = torch.einsum("qhd,khd->hqk", q.float(), kf) * scale
    if softcap > 0:
        logits = softcap * torch.tanh(logits / softcap)
    logits = logits.masked_fill(~seen, float("-inf"))
    if sinks is not None:
        sink = sinks.float().view(hq, 1, 1).expand(hq, logits.shape[1], 1)
        logits = torch.cat([logits, sink], dim=-1)
    top = logits.amax(-1, keepdim=True).clamp_min(-1e30)
    p = torch.exp(logits - top)
    denom = p.sum(-1, keepdim=True)
    p = torch.where(denom > 0, p / denom, torch.zeros_like(p))
    if sinks is not None:
        p = p[..., :-1]
    return torch.einsum("hqk,khd->qhd", p, vf)


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
    """[n, Hq, D] float32 for queries at the last n positions. window_left: keys j with
    pos - window_left <= j <= pos (-1: no window); v_scale multiplies the output (fp8 value dequantization).
    Softcap and sinks as in `attend_visible`."""
    n, length = q.shape[0], k.shape[0]
    if length == 0 or n == 0:
        return q.new_zeros(q.shape, dtype=torch.float32)
    seen = visible(n, length, causal=causal, left=window_left)
    return attend_visible(q, k, v, seen, scale, softcap, sinks) * v_scale
