"""quant.mx_gemm in C (csrc/mx.c) on the block-scaled weights as stored (mxfp8, mxfp4, nvfp4; formats in
anyaccel.ops.microscaling).

`prepare` decodes the block scales once, at load time, to float32 [N, K/block] with nvfp4's global folded
in. A few rows (decode) stream the packed weights, decoding one block at a time through a 256-entry table
into a buffer of one block: the weights are read at 4 or 8 bits and never written out as float32. Many rows
(prefill) dequantize the weight once per call and multiply with torch's F.linear. Quantized activations
(mxfp8, nvfp4) are few rows and are dequantized to float32 first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from anyaccel.ops.base import expect, expect_tensor
from anyaccel.ops.microscaling import FORMATS, MXFormat, decode_scales, dequantize, infer_format
from anyaccel.ops.mx import MXGemmSpec
from anyaccel.platforms.base import Platform

from .. import hugepages
from ..native import native, ptr
from ..onednn import many_rows

OP = "quant.mx_gemm"
FEW_ROWS = 16  # from here on dequantize + BLAS beats streaming the packed weights per 8 rows


def float_scales(fmt: MXFormat, w_scale: torch.Tensor, w_global_scale: torch.Tensor | None) -> torch.Tensor:
    """Block scales as float32 multipliers [N, K/block], the global folded in."""
    scales = decode_scales(fmt, w_scale)
    if w_global_scale is not None:
        scales = scales * w_global_scale.float()
    return scales.contiguous()


def block_matmul(
    x: torch.Tensor, wb: torch.Tensor, scales: torch.Tensor, fmt: MXFormat, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """float32 x [M, K] (contiguous) @ dequant(wb).T (+ bias) -> float32 [M, N], for the weight's bytes
    wb [N, K or K/2] and its float32 block scales [N, K/block] (contiguous, shapes checked by the caller)."""
    m, k = x.shape
    n = wb.shape[0]
    lib = native()
    if m >= FEW_ROWS:
        weight = torch.empty(n, k, dtype=torch.float32)
        lib.anyaccel_mx_dequant_f32(ptr(wb), n, k, int(fmt.packed), ptr(scales), fmt.block, ptr(weight))
        return many_rows(x, weight, bias)
    out = torch.empty(m, n, dtype=torch.float32)
    if m:
        lib.anyaccel_mx_gemm_f32(
            ptr(x), m, k, n, ptr(wb), int(fmt.packed), ptr(scales), fmt.block, ptr(bias), ptr(out)
        )
    return out


def prepare(spec: MXGemmSpec, weights: dict[str, Any]) -> dict[str, Any]:
    fmt = FORMATS[spec.weight_format]
    prepared = weights | {
        "w": weights["w"].contiguous().view(torch.uint8),
        "w_scale": float_scales(fmt, weights["w_scale"], weights.get("w_global_scale")),
    }
    return hugepages.prepare(spec, prepared)  # streamed at every call: in huge pages


def mx_gemm(spec: MXGemmSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    fmt = FORMATS[spec.weight_format]
    n, k = spec.n, spec.k
    native()  # built (or its failure raised) at bind time, not on the first call

    def cpu_mx_gemm(
        a: torch.Tensor,
        w: torch.Tensor,
        w_scale: torch.Tensor,
        out_dtype: torch.dtype,
        a_scale: torch.Tensor | None = None,
        w_global_scale: torch.Tensor | None = None,
        a_global_scale: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if w_scale.dtype != torch.float32:  # not prepared (a direct call): decode the scales now
            w_scale = float_scales(fmt, w_scale, w_global_scale)
        if a_scale is None:
            x = a.float().contiguous()
        else:
            x = dequantize(infer_format(a, a_scale), a, a_scale, a_global_scale).contiguous()
        # the C kernel trusts these shapes: checked on every call, not only under ANYACCEL_VALIDATE
        wb = w.contiguous().view(torch.uint8)
        expect_tensor(OP, "a", x, shape=(None, k))
        expect_tensor(OP, "w", wb, shape=(n, fmt.element_cols(k)))
        expect_tensor(OP, "w_scale", w_scale, shape=(n, fmt.scale_cols(k)))
        expect(OP, w_scale.is_contiguous(), "prepared w_scale must be contiguous")
        bias_f = None if bias is None else bias.float().contiguous()
        if bias_f is not None:
            expect_tensor(OP, "bias", bias_f, shape=(n,))
        return block_matmul(x, wb, w_scale, fmt, bias_f).to(out_dtype)

    return cpu_mx_gemm
