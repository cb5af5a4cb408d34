"""Torch reference for quant.quantize_mx and quant.mx_gemm: the format module's encoder and decoder, then one
float32 matmul, rounded once."""

from __future__ import annotations

import torch

from anyaccel.ops.microscaling import FORMATS, dequantize, infer_format, quantize


def quantize_mx(
    x: torch.Tensor, fmt: str, global_scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    return quantize(FORMATS[fmt], x, global_scale)


def _real(q: torch.Tensor, scale: torch.Tensor | None, glob: torch.Tensor | None) -> torch.Tensor:
    """An operand as float32 [rows, K]; its format is told by its dtypes."""
    return q.float() if scale is None else dequantize(infer_format(q, scale), q, scale, glob)


def mx_gemm(
    a: torch.Tensor,
    w: torch.Tensor,
    w_scale: torch.Tensor,
    out_dtype: torch.dtype,
    a_scale: torch.Tensor | None = None,
    w_global_scale: torch.Tensor | None = None,
    a_global_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    out = _real(a, a_scale, a_global_scale) @ _real(w, w_scale, w_global_scale).T
    return (out if bias is None else out + bias.float()).to(out_dtype)
