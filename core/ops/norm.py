"""norm.rms_norm and norm.add_rms_norm."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import OpDef, expect, expect_tensor
from .common import preferred_dtype


@dataclass(frozen=True)
class NormSpec:
    dtype: torch.dtype = torch.float32
    hidden_size: int = 4096


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMS normalisation over the last dim.

    x:      [..., H] in spec.dtype; the last dim is contiguous (leading dims may be strided)
    weight: [H] in spec.dtype
    eps:    added to the mean square before the reciprocal square root
    returns a new tensor shaped and typed like x:
        out = (x_f32 * rsqrt(mean(x_f32 ** 2, -1) + eps)).to(dtype) * weight
    Accumulation is in fp32 whatever the input dtype (as in Llama/Qwen's reference code).
    """
    raise NotImplementedError


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
    """Fused residual add and RMS normalisation, IN PLACE (the pre-norm transformer's layer boundary).

    x, residual: [T, H] contiguous, spec.dtype; weight: [H]
    After the call:
        residual <- x + residual                 (rounded to dtype: the stream the next layer adds to)
        x        <- rms_norm(residual, weight, eps)
    Both tensors are overwritten and nothing is returned; callers keep using the same buffers.
    """
    raise NotImplementedError


def _fake_rms_norm(x, weight, eps):
    return torch.empty_like(x)


def _fake_add_rms_norm(x, residual, weight, eps):
    return None


def _check_spec(op: str):
    def check(spec: NormSpec) -> None:
        expect(op, spec.hidden_size > 0, f"hidden_size must be positive, got {spec.hidden_size}")
        expect(op, spec.dtype.is_floating_point, f"dtype must be floating point, got {spec.dtype}")

    return check


def _check_rms(spec: NormSpec, x, weight, eps) -> None:
    expect_tensor("norm.rms_norm", "x", x, dtype=spec.dtype)
    expect_tensor("norm.rms_norm", "weight", weight, shape=(x.shape[-1],))
    expect("norm.rms_norm", x.stride(-1) == 1, "x must be contiguous in its last dim")


def _check_add_rms(spec: NormSpec, x, residual, weight, eps) -> None:
    op = "norm.add_rms_norm"
    expect_tensor(op, "x", x, dims=2, dtype=spec.dtype)
    expect_tensor(op, "residual", residual, shape=tuple(x.shape), dtype=spec.dtype)
    expect_tensor(op, "weight", weight, shape=(x.shape[-1],))
    expect(op, x.is_contiguous() and residual.is_contiguous(), "x and residual must be contiguous (in place)")


def _default(platform) -> NormSpec:
    return NormSpec(preferred_dtype(platform), 4096)


RMS_NORM = OpDef(
    "norm.rms_norm",
    rms_norm,
    NormSpec,
    _fake_rms_norm,
    _default,
    check_spec=_check_spec("norm.rms_norm"),
    check_args=_check_rms,
)
ADD_RMS_NORM = OpDef(
    "norm.add_rms_norm",
    add_rms_norm,
    NormSpec,
    _fake_add_rms_norm,
    _default,
    mutates=("x", "residual"),
    check_spec=_check_spec("norm.add_rms_norm"),
    check_args=_check_add_rms,
)
