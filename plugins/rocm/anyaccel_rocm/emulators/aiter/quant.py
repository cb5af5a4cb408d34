"""Dynamic and static fp8 quantization (aiter/ops/quant.py, ROCm/aiter e404860): per tensor, per token and
per group of 32/64/128 columns; scale = amax / max(fp8), q = sat(x / scale) in the requested dtype."""

from __future__ import annotations

import torch

from ._device import fp8


def _quantize(x: torch.Tensor, scale: torch.Tensor, quant_dtype: torch.dtype) -> torch.Tensor:
    top = torch.finfo(quant_dtype).max
    return (x.float() / scale).clamp(-top, top).to(quant_dtype)


def _dynamic(groups: torch.Tensor, quant_dtype: torch.dtype) -> torch.Tensor:
    if quant_dtype != fp8():
        raise ValueError(f"unsupported: quant_dtype={quant_dtype} (this gfx's fp8 is {fp8()})")
    return groups.float().abs().amax(-1, keepdim=True).clamp_min(1e-12) / torch.finfo(quant_dtype).max


def per_tensor_quant_hip(x, scale=None, quant_dtype=torch.int8, num_rows=None, num_rows_factor=1):
    assert num_rows is None, "num_rows is not supported for per_tensor_quant_hip"
    if scale is None:
        scale = _dynamic(x.reshape(1, -1), quant_dtype).view(1)
    return _quantize(x, scale.float(), quant_dtype), scale.view(1)


def per_token_quant_hip(x, scale=None, quant_dtype=torch.int8, num_rows=None, num_rows_factor=1):
    if scale is not None:
        raise ValueError("unsupported: static per token quant")
    scale = _dynamic(x, quant_dtype)
    return _quantize(x, scale, quant_dtype), scale


def per_group_quant_hip(
    x,
    scale=None,
    quant_dtype=torch.int8,
    group_size=128,
    transpose_scale=False,
    num_rows=None,
    num_rows_factor=1,
    scale_type=torch.float32,
):
    if scale is not None:
        raise ValueError("unsupported: static per token quant")
    assert group_size in [32, 64, 128], f"unsupported group size {group_size=}, only support [32, 64, 128]"
    if transpose_scale or scale_type != torch.float32:
        raise NotImplementedError("emulated per_group_quant_hip: float32 scales, not transposed")
    groups = x.reshape(*x.shape[:-1], x.shape[-1] // group_size, group_size)  # fails unless K % group == 0
    scale = _dynamic(groups, quant_dtype)
    return _quantize(groups, scale, quant_dtype).view(x.shape), scale.squeeze(-1)
