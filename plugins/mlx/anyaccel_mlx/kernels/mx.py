"""Torch-facing quant.quantize_mx (MLX array ops, ops/mx.py) and quant.mx_gemm (contracts in anyaccel.ops.mx)
on mx.quantized_matmul's block-scaled modes (ops/mx.py: the contract's layouts are MLX's, so a weight crosses
once, as a view of its bytes, and is kept while the weight tensor lives). Quantized activations (mxfp8,
nvfp4) are few rows: they are decoded to float32 (anyaccel.ops.microscaling) before the matmul, which MLX
takes in floating point only."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import torch

from anyaccel.ops.microscaling import FORMATS, dequantize, infer_format
from anyaccel.ops.mx import MXGemmSpec, MXQuantSpec
from anyaccel.platforms.base import Platform

from ..convert import maybe_resident, resident, to_mx, to_torch
from ..ops import mx as ops


def to_mlx_weight(
    mode: str, w: torch.Tensor, w_scale: torch.Tensor, w_global_scale: torch.Tensor | None
) -> ops.BlockScaledWeight:
    words = to_mx(w.contiguous().view(torch.uint8)).view(mx.uint32)
    scales = to_mx(w_scale.contiguous().view(torch.uint8))
    glob = None if w_global_scale is None else to_mx(w_global_scale.float())
    return ops.BlockScaledWeight(mode, words, scales, glob)


def mx_gemm(spec: MXGemmSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    key = f"mx_gemm:{spec.weight_format}"

    def mlx_mx_gemm(
        a: torch.Tensor,
        w: torch.Tensor,
        w_scale: torch.Tensor,
        out_dtype: torch.dtype,
        a_scale: torch.Tensor | None = None,
        w_global_scale: torch.Tensor | None = None,
        a_global_scale: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        weight = resident(w, key, lambda t: to_mlx_weight(spec.weight_format, t, w_scale, w_global_scale))
        if a_scale is None:
            x = to_mx(a).astype(mx.float32)
        else:
            x = to_mx(dequantize(infer_format(a, a_scale), a, a_scale, a_global_scale))
        out = ops.matmul(x, weight, maybe_resident(bias))
        return to_torch(out, a.device).to(out_dtype)

    return mlx_mx_gemm


def quantize_mx(spec: MXQuantSpec, platform: Platform) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    form = FORMATS[spec.format]

    def mlx_quantize_mx(
        x: torch.Tensor, fmt: str, global_scale: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        glob = None if global_scale is None else to_mx(global_scale.float())
        elements, scales = ops.quantize(to_mx(x), fmt, glob)
        q, s = to_torch(elements, x.device), to_torch(scales, x.device)
        return q.view(form.element_dtype), s.view(form.scale_dtype)

    return mlx_quantize_mx
