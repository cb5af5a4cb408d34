"""activation.silu_and_mul and activation.gelu_and_mul: the gated MLP's activation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import OpDef, expect, expect_tensor
from .common import preferred_dtype


@dataclass(frozen=True)
class ActivationSpec:
    dtype: torch.dtype = torch.float32
    intermediate_size: int = 11008


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    """x: [..., 2*I] (gate then up along the last dim, contiguous); returns [..., I] in x's dtype:
    out = silu(x[..., :I]) * x[..., I:], computed in fp32 and rounded once."""
    raise NotImplementedError


def gelu_and_mul(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """x: [..., 2*I]; returns gelu(x[..., :I], approximate) * x[..., I:] in x's dtype.
    approximate: "none" (erf) or "tanh", as torch.nn.functional.gelu."""
    raise NotImplementedError


def _fake(x, *args):
    return x.new_empty(*x.shape[:-1], x.shape[-1] // 2)


def _check_spec(op: str):
    def check(spec: ActivationSpec) -> None:
        expect(
            op,
            spec.intermediate_size > 0,
            f"intermediate_size must be positive, got {spec.intermediate_size}",
        )

    return check


def _check_args(op: str):
    def check(spec: ActivationSpec, x, approximate: str = "none") -> None:
        expect_tensor(op, "x", x, dtype=spec.dtype)
        expect(op, x.shape[-1] % 2 == 0, f"x's last dim must be even (gate and up), got {x.shape[-1]}")
        expect(
            op, approximate in ("none", "tanh"), f"approximate must be 'none' or 'tanh', got {approximate!r}"
        )

    return check


def _default(platform) -> ActivationSpec:
    return ActivationSpec(preferred_dtype(platform), 11008)


SILU_AND_MUL = OpDef(
    "activation.silu_and_mul",
    silu_and_mul,
    ActivationSpec,
    _fake,
    _default,
    check_spec=_check_spec("activation.silu_and_mul"),
    check_args=_check_args("activation.silu_and_mul"),
)
GELU_AND_MUL = OpDef(
    "activation.gelu_and_mul",
    gelu_and_mul,
    ActivationSpec,
    _fake,
    _default,
    check_spec=_check_spec("activation.gelu_and_mul"),
    check_args=_check_args("activation.gelu_and_mul"),
)
