"""Oracles for norm.*, rope.apply and activation.*: explicit loops over rows and pairs, in float64."""

from __future__ import annotations

import math

import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    rows = x.reshape(-1, x.shape[-1]).double()
    out = torch.empty_like(rows)
    for i, row in enumerate(rows):
        inv = 1.0 / math.sqrt(float((row * row).sum()) / row.numel() + eps)
        # the contract rounds the normalised row to the input dtype before the weight multiplies it
        out[i] = (row * inv).to(x.dtype).double() * weight.double()
    return out.reshape(x.shape)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
    summed = (x.double() + residual.double()).to(x.dtype)
    residual.copy_(summed)
    x.copy_(rms_norm(summed, weight, eps).to(x.dtype))


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    g, u = x[..., :half].double(), x[..., half:].double()
    return g / (1.0 + torch.exp(-g)) * u


def gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    half = x.shape[-1] // 2
    g, u = x[..., :half].double(), x[..., half:].double()
    if approximate == "tanh":
        gelu = 0.5 * g * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (g + 0.044715 * g**3)))
    else:
        gelu = 0.5 * g * (1.0 + torch.erf(g / math.sqrt(2.0)))
    return gelu * u


def rope_apply(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin_cache: torch.Tensor, is_neox: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    half = cos_sin_cache.shape[1] // 2

    def rotate(x: torch.Tensor) -> torch.Tensor:
        out = x.double().clone()
        for t in range(x.shape[0]):
            cos = cos_sin_cache[positions[t], :half].double()
            sin = cos_sin_cache[positions[t], half:].double()
            for i in range(half):
                a, b = (i, i + half) if is_neox else (2 * i, 2 * i + 1)
                x1, x2 = x[t, :, a].double(), x[t, :, b].double()
                out[t, :, a] = x1 * cos[i] - x2 * sin[i]
                out[t, :, b] = x2 * cos[i] + x1 * sin[i]
        return out

    return rotate(q), rotate(k)
