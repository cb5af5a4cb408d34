"""Torch-facing quant.w4a16_gemm and quant.w8a16_gemm (contracts in anyaccel.ops.quant) on
mx.quantized_matmul.

A factory: the binding knows the spec's packing format and group size. Each GPTQ / AWQ weight is repacked
into MLX's affine format the first time it is seen and kept while the weight tensor lives
(convert.resident), so calls after the first cost one quantized matmul (see ops/quant.py for the mapping).
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import torch

from anyaccel.ops.quant import W4A16Spec, W8A16Spec
from anyaccel.platforms.base import Platform
from anyaccel.schemes.packing import awq_unpack, gptq_unpack, pack_rows

from ..convert import maybe_resident, resident, to_mx, to_torch
from ..ops import quant


def repack(
    spec: W4A16Spec,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None,
    g_idx: torch.Tensor | None,
) -> quant.AffineWeight:
    """A GPTQ / AWQ / affine weight in MLX's affine format (ops/quant.py explains the mapping). The affine
    format is MLX's own: its words are viewed as uint32, scales and offsets (MLX's biases) used as given."""
    if spec.format == "affine":
        if qzeros is None:
            raise ValueError("quant.w4a16_gemm (mlx): the affine format needs its offsets (qzeros)")
        words = to_mx(qweight.contiguous()).view(mx.uint32)
        return quant.AffineWeight(words, to_mx(scales.float()), to_mx(qzeros.float()), spec.group_size)
    unpack = gptq_unpack if spec.format == "gptq" else awq_unpack
    q, zeros = unpack(qweight, qzeros)  # q [N, K], zeros [K/G, N] (true zero points) or None
    g = spec.group_size
    scales_t = to_mx(scales.T.float().contiguous())
    biases = quant.affine_bias(scales_t, None if zeros is None else to_mx(zeros.T.contiguous()))
    perm = None
    if g_idx is not None:
        counts = torch.bincount(g_idx.long(), minlength=spec.k // g)
        if counts.numel() != spec.k // g or bool((counts != g).any()):
            raise ValueError(
                f"quant.w4a16_gemm (mlx): act-order g_idx must put exactly {g} input channels in "
                f"each of the {spec.k // g} groups, got group sizes {counts.tolist()[:8]}..."
            )
        order = torch.argsort(g_idx.long(), stable=True)
        q, perm = q[:, order], to_mx(order)
    return quant.AffineWeight(to_mx(pack_rows(q)).view(mx.uint32), scales_t, biases, g, perm)


def w4a16_gemm(spec: W4A16Spec, platform: Platform) -> Callable[..., torch.Tensor]:
    key = f"w4a16:{spec.format}:{spec.group_size}"

    def mlx_w4a16_gemm(
        x: torch.Tensor,
        qweight: torch.Tensor,
        scales: torch.Tensor,
        qzeros: torch.Tensor | None = None,
        g_idx: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        weight = resident(qweight, key, lambda w: repack(spec, w, scales, qzeros, g_idx))
        return to_torch(quant.matmul(to_mx(x), weight, maybe_resident(bias)), x.device)

    return mlx_w4a16_gemm


def repack_int8(qweight: torch.Tensor, scales: torch.Tensor, group_size: int) -> quant.AffineWeight:
    """int8 q * scale as MLX's unsigned 8-bit affine format: (q + 128) * scale - 128 * scale, four bytes per
    uint32 word, the first in the low byte (the little-endian view of the bytes)."""
    unsigned = (qweight.to(torch.int16) + 128).to(torch.uint8).contiguous()
    words = to_mx(unsigned).view(mx.uint32)
    scales_mx = to_mx(scales.float().contiguous())
    return quant.AffineWeight(words, scales_mx, -128 * scales_mx, group_size, bits=8)


def w8a16_gemm(spec: W8A16Spec, platform: Platform) -> Callable[..., torch.Tensor]:
    key = f"w8a16:{spec.group_size}"

    def mlx_w8a16_gemm(
        x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        weight = resident(qweight, key, lambda w: repack_int8(w, scales, spec.group_size))
        return to_torch(quant.matmul(to_mx(x), weight, maybe_resident(bias)), x.device)

    return mlx_w8a16_gemm
