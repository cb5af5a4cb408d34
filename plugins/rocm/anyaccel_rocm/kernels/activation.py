"""Gated activations through AITER: silu_and_mul, gelu_and_mul (erf) and gelu_tanh_and_mul."""

from __future__ import annotations

import aiter
import torch

from . import warmup
from .warmup import attach


def _gated(fn, x: torch.Tensor) -> torch.Tensor:
    rows = x.reshape(-1, x.shape[-1])
    out = torch.empty(rows.shape[0], rows.shape[1] // 2, dtype=x.dtype, device=x.device)
    fn(out, rows)
    return out.view(*x.shape[:-1], x.shape[-1] // 2)


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    return _gated(aiter.silu_and_mul, x)


def gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    return _gated(aiter.gelu_tanh_and_mul if approximate == "tanh" else aiter.gelu_and_mul, x)


attach(silu_and_mul, warmup.gated)
attach(gelu_and_mul, warmup.gated)
