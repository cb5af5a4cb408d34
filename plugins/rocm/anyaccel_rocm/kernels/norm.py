"""RMSNorm through AITER: aiter.rms_norm and aiter.rmsnorm2d_fwd_with_add (fp32 statistics)."""

from __future__ import annotations

import aiter
import torch

from . import warmup
from .warmup import attach


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """norm.rms_norm: rows of [..., H] (leading dims flattened; a copy only if they are not viewable)."""
    rows = x.reshape(-1, x.shape[-1])
    return aiter.rms_norm(rows, weight, eps).view(x.shape)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
    """norm.add_rms_norm in place. AITER writes separate output and residual buffers and documents no
    aliasing, so results are written to fresh buffers and copied back."""
    out = torch.empty_like(x)
    residual_out = torch.empty_like(residual)
    aiter.rmsnorm2d_fwd_with_add(out, x, residual, residual_out, weight, eps)
    x.copy_(out)
    residual.copy_(residual_out)


attach(rms_norm, warmup.rms_norm)
attach(add_rms_norm, warmup.add_rms_norm)
