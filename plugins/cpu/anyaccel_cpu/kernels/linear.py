"""linear.gemm in float32: in C on plain weights (native_gemm), or on oneDNN-packed weights (gemm).

For gemm (the kernel without a C compiler), prepare() reorders each [N, K] weight once into oneDNN's blocked
layout; the call is one oneDNN matmul with the bias fused. With few rows (decode) this reads the weight at
close to memory bandwidth, where MKL's sgemm re-packs it on every call (8 rows times [1024, 512] on 2 AVX2
cores: about 3x faster).
"""

from __future__ import annotations

from typing import Any

import torch

from anyaccel.ops.base import expect_tensor
from anyaccel.ops.linear import LinearSpec

from ..native import native, ptr
from ..onednn import linear, many_rows, pack

OP = "linear.gemm"
FEW_ROWS = 16  # from here on MKL's packing GEMM is faster than streaming dot products


def prepare(spec: LinearSpec, weights: dict[str, Any]) -> dict[str, Any]:
    return weights | {"weight": pack(weights["weight"])}


def gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    if x.shape[0] == 0:
        return x.new_empty(0, weight.shape[0])
    return linear(x, weight, bias)


def native_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Plain [N, K] weights: a few rows in C (csrc/linear.c, the weight rows read in order, one stream),
    many through oneDNN (onednn.many_rows, which packs them per call: many rows repay it). On 2 AVX2 cores,
    8 rows times [1024, 512]: 0.29 ms against 0.33 ms for oneDNN on packed weights; times [16, 512] (an
    MoE router): 24 us against 86 us."""
    m, k = x.shape
    if m >= FEW_ROWS or x.stride(-1) != 1:
        return many_rows(x, weight, bias)
    n = weight.shape[0]
    expect_tensor(OP, "x", x, dtype=torch.float32)
    expect_tensor(OP, "weight", weight, dtype=torch.float32, shape=(n, k))
    if bias is not None:
        expect_tensor(OP, "bias", bias, dtype=torch.float32, shape=(n,))
    # held in names until the call returns: a temporary's memory could be freed once ptr() has read it
    weight = weight.contiguous()
    bias = None if bias is None else bias.contiguous()
    out = torch.empty(m, n, dtype=torch.float32)
    native().anyaccel_gemm_f32(ptr(x), m, k, x.stride(0), ptr(weight), n, ptr(bias), ptr(out))
    return out
