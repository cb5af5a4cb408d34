"""norm.rms_norm, norm.add_rms_norm, rope.apply and the gated activations through FlashInfer's fused
kernels (fp16/bf16; the records' dtypes say so).

FlashInfer computes each in fp32 and rounds once; the contracts round the normalised value before the
weight product (norm) and allow that difference within the dtype's tolerance.
"""

from __future__ import annotations

import torch
from flashinfer.activation import gelu_and_mul as _gelu_and_mul
from flashinfer.activation import gelu_tanh_and_mul as _gelu_tanh_and_mul
from flashinfer.activation import silu_and_mul as _silu_and_mul
from flashinfer.norm import fused_add_rmsnorm, rmsnorm
from flashinfer.rope import apply_rope_with_cos_sin_cache


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x [..., H] (rows may be strided): FlashInfer takes 2-D rows, so leading dims are flattened (a copy
    only when they cannot be viewed)."""
    return rmsnorm(x.reshape(-1, x.shape[-1]), weight, eps).view(x.shape)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
    """The contract's in-place semantics are fused_add_rmsnorm's: residual += x, x = rmsnorm(residual)."""
    fused_add_rmsnorm(x, residual, weight, eps)


def rope(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin_cache: torch.Tensor, is_neox: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [T, Hq, D], k [T, Hkv, D] (views of a fused projection are copied to FlashInfer's [T, H * D])."""
    tokens, _, dim = q.shape
    q_out, k_out = apply_rope_with_cos_sin_cache(
        positions, q.reshape(tokens, -1), k.reshape(tokens, -1), dim, cos_sin_cache, is_neox
    )
    return q_out.view(q.shape), k_out.view(k.shape)


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    return _silu_and_mul(x)


def gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    return _gelu_tanh_and_mul(x) if approximate == "tanh" else _gelu_and_mul(x)
