"""Attention arithmetic shared by the emulated attention functions: fp32, one sequence at a time."""

from __future__ import annotations

import torch


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    visible: torch.Tensor,
    scale: float,
    softcap: float = 0.0,
    sinks: torch.Tensor | None = None,
) -> torch.Tensor:
    """q [Tq, Hq, D], k/v [Tk, Hkv, D], visible [Tq, Tk] bool -> [Tq, Hq, D] float32 (rows that see
    nothing are 0, as FlashAttention-style kernels write them)."""
    hq, hkv = q.shape[1], k.shape[1]
    kf = k.float().repeat_interleave(hq // hkv, dim=1)
    vf = v.float().repeat_interleave(hq // hkv, dim=1)
    logits = torch.einsum("qhd,khd->hqk", q.float(), kf) * scale
    if softcap > 0:
        logits = softcap * torch.tanh(logits / softcap)
    logits = logits.masked_fill(~visible, float("-inf"))
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
