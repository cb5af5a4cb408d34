"""Torch reference for quant.w4a8_gemm / quant.w8a8_gemm (contracts in anyaccel.ops.a8): the A16 reference
applied, in float32, to the contract's quantized activations, then rounded once to the dtype of x."""

from __future__ import annotations

import torch

from anyaccel.ops.a8 import int8_blocks

from . import quant


def w4a8_gemm(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None = None,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    return quant.w4a16_gemm(int8_blocks(x), qweight, scales, qzeros, g_idx, bias).to(x.dtype)


def w8a8_gemm(
    x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    return quant.w8a16_gemm(int8_blocks(x), qweight, scales, bias).to(x.dtype)
