"""RMSNorm (aiter/ops/rmsnorm.py, ROCm/aiter e404860): fp32 statistics, the weight applied in fp32, one
rounding to the input dtype."""

from __future__ import annotations

import torch


def _check(input: torch.Tensor, weight: torch.Tensor) -> None:
    assert input.shape[-1] == weight.shape[0], f"weight {list(weight.shape)} does not match input's last dim"
    assert input.stride(-1) == 1, "input's last dim must be contiguous"


def _norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps) * weight.float()


def rms_norm(input, weight, epsilon, use_model_sensitive_rmsnorm=0):
    _check(input, weight)
    if use_model_sensitive_rmsnorm:
        raise NotImplementedError("emulated rms_norm: use_model_sensitive_rmsnorm=0 only")
    return _norm(input, weight, epsilon).to(input.dtype)


def rmsnorm2d_fwd_with_add(
    out, input, residual_in, residual_out, weight, epsilon, gemma_norm=False, use_model_sensitive_rmsnorm=0
):
    """residual_out = input + residual_in (rounded); out = rms_norm(residual_out). Separate buffers."""
    _check(input, weight)
    if gemma_norm or use_model_sensitive_rmsnorm:
        raise NotImplementedError("emulated rmsnorm2d_fwd_with_add: plain RMSNorm only")
    for t in (residual_in, residual_out, out):
        assert t.shape == input.shape and t.dtype == input.dtype, "buffers must match input"
    residual_out.copy_((input.float() + residual_in.float()).to(input.dtype))
    out.copy_(_norm(residual_out, weight, epsilon).to(out.dtype))
