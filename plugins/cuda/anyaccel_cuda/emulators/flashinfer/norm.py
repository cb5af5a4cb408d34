"""Emulator of flashinfer.norm.rmsnorm / fused_add_rmsnorm (flashinfer-python 0.7.4): fp16/bf16
only (the kernels dispatch on the 16-bit types), rows contiguous in their last dim, fp32 arithmetic rounded
once."""

from __future__ import annotations

import torch

from ..errors import require

DTYPES = (torch.float16, torch.bfloat16)


def _check(input: torch.Tensor, weight: torch.Tensor) -> None:
    require(input.dim() in (2, 3), f"input must be 2-D or 3-D, got {input.dim()}-D")
    require(input.dtype in DTYPES, f"rmsnorm: unsupported dtype {input.dtype}")
    require(input.stride(-1) == 1, "input must be contiguous in its last dimension")
    require(
        weight.shape == (input.shape[-1],) and weight.dtype == input.dtype,
        "weight: [hidden] in input's dtype",
    )


def _normed(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps) * weight.float()


def rmsnorm(
    input: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    out: torch.Tensor | None = None,
    enable_pdl: bool | None = None,
) -> torch.Tensor:
    _check(input, weight)
    result = _normed(input, weight, eps).to(input.dtype)
    if out is None:
        return result
    require(out.shape == input.shape and out.dtype == input.dtype, "out must be shaped and typed like input")
    out.copy_(result)
    return out


def fused_add_rmsnorm(
    input: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    enable_pdl: bool | None = None,
) -> None:
    """residual += input; input = rmsnorm(residual) * weight; both in place, nothing returned."""
    _check(input, weight)
    require(input.dim() == 2, "fused_add_rmsnorm takes 2-D tensors")
    require(residual.shape == input.shape and residual.dtype == input.dtype, "residual must match input")
    require(input.is_contiguous() and residual.is_contiguous(), "input and residual must be contiguous")
    summed = (input.float() + residual.float()).to(input.dtype)
    residual.copy_(summed)
    input.copy_(_normed(summed, weight, eps).to(input.dtype))
