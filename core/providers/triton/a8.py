"""Triton quant.w4a8_gemm and quant.w8a8_gemm (contracts in anyaccel.ops.a8): one kernel quantizes the
activations as the contract says (per row, blocks of 32 features: d = amax / 127, x' = d * round(x / d),
ties to even), written back in x's dtype, then the A16 Triton GEMMs multiply x' with the stored weights.
Portable, not the fastest form: a kernel feeding int8 tensor-core dots would skip the float round trip."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from anyaccel.ops.a8 import BLOCK
from anyaccel.ops.quant import W4A16Spec, W8A16Spec
from anyaccel.platforms.base import Platform

from .launch import cdiv
from .w4a16 import w4a16_gemm
from .w8a16 import w8a16_gemm

ROWS = 16  # rows per program; each program quantizes one block of 32 features of them


@triton.jit
def _int8_blocks_kernel(
    x_ptr, y_ptr, rows, cols, x_stride, y_stride, ROWS: tl.constexpr, BLOCK: tl.constexpr
):
    row = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = (row < rows)[:, None] & (col < cols)[None, :]
    x = tl.load(x_ptr + row[:, None] * x_stride + col[None, :], mask=mask, other=0.0).to(tl.float32)
    d = tl.max(tl.abs(x), axis=1) / 127.0
    q = x / tl.where(d > 0, d, 1.0)[:, None]
    q = (q + 12582912.0) - 12582912.0  # + 1.5 * 2^23: round half to even (|q| <= 127)
    y = q * d[:, None]
    tl.store(y_ptr + row[:, None] * y_stride + col[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)


def _int8_blocks(x: torch.Tensor) -> torch.Tensor:
    """The contract's x', in x's dtype."""
    rows, cols = x.shape
    y = torch.empty_like(x)
    if x.numel():
        _int8_blocks_kernel[(cdiv(rows, ROWS), cols // BLOCK)](
            x, y, rows, cols, x.stride(0), y.stride(0), ROWS=ROWS, BLOCK=BLOCK
        )
    return y


def w4a8_gemm(spec: W4A16Spec, platform: Platform) -> Callable[..., Any]:
    gemm = w4a16_gemm(spec, platform)

    def triton_w4a8_gemm(
        x: torch.Tensor,
        qweight: torch.Tensor,
        scales: torch.Tensor,
        qzeros: torch.Tensor | None = None,
        g_idx: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return gemm(_int8_blocks(x), qweight, scales, qzeros, g_idx, bias)

    return triton_w4a8_gemm


def w8a8_gemm(spec: W8A16Spec, platform: Platform) -> Callable[..., Any]:
    gemm = w8a16_gemm(spec, platform)

    def triton_w8a8_gemm(
        x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        return gemm(_int8_blocks(x), qweight, scales, bias)

    return triton_w8a8_gemm
