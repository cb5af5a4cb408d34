"""linear.gemm: the dense (unquantized) matmul of every linear layer.

It is an op, not a bare torch call, so that a platform can keep weights in the layout its GEMM reads fastest,
converted once at load time through the kernel's prepare hook: oneDNN's blocked layout on CPUs (a few-row
matmul then reads the weight at memory bandwidth instead of re-packing it every call), Ascend's FRACTAL_NZ,
a vendor's pre-shuffled tiles. The reference is torch.nn.functional.linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import OpDef, expect, expect_tensor
from .common import preferred_dtype


@dataclass(frozen=True)
class LinearSpec:
    dtype: torch.dtype = torch.float32  # x, weight, bias and output
    n: int = 4096  # output features
    k: int = 4096  # input features


def gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [M, K] @ weight.T (+ bias) -> [M, N] in spec.dtype.

    x:      [M, K] spec.dtype, contiguous in its last dim; M may be 0
    weight: [N, K] spec.dtype in the contract layout (a load-time constant: kernels may prepare it)
    bias:   [N] spec.dtype or None (every kernel takes both)
    Accumulation is at least fp32 for 16-bit dtypes; the output is rounded once.
    """
    raise NotImplementedError


def _fake(x, weight, bias=None):
    return x.new_empty(x.shape[0], weight.shape[0])


def _check_spec(spec: LinearSpec) -> None:
    expect("linear.gemm", spec.n > 0 and spec.k > 0, f"n and k must be positive, got n={spec.n} k={spec.k}")
    expect("linear.gemm", spec.dtype.is_floating_point, f"dtype must be floating point, got {spec.dtype}")


def _check_args(spec: LinearSpec, x, weight, bias=None) -> None:
    op = "linear.gemm"
    expect_tensor(op, "x", x, dims=2, dtype=spec.dtype)
    expect(op, x.shape[1] == spec.k, f"x must be [M, {spec.k}], got {tuple(x.shape)}")
    expect(op, x.stride(-1) == 1, "x must be contiguous in its last dim")
    if bias is not None:
        expect_tensor(op, "bias", bias, shape=(spec.n,), dtype=spec.dtype)


GEMM = OpDef(
    "linear.gemm",
    gemm,
    LinearSpec,
    _fake,
    lambda platform: LinearSpec(preferred_dtype(platform)),
    weights=("weight",),
    check_spec=_check_spec,
    check_args=_check_args,
)
